//! Reading a template's `{% … %}` and `{{ … }}` tags as text, for
//! diagnostics only: which import a broken tag is, and which macro an
//! expression calls. minijinja exposes no syntax tree, and on these error
//! paths a small reader of the tags that stateplan's templates use is
//! enough; anything it does not recognise gets no extra help, never wrong
//! help.

use std::ops::Range;

/// The statement tags of `source`: where each one's inside starts, and the
/// inside without its whitespace-control marks (`-`, `+`) and outer spaces.
fn statements(source: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut from = 0;
    std::iter::from_fn(move || {
        let open = source[from..].find("{%").map(|i| from + i + 2)?;
        let close = source[open..].find("%}").map_or(source.len(), |i| open + i);
        from = close;
        let inner = source[open..close]
            .trim_start_matches(['-', '+'])
            .trim_end_matches(['-', '+'])
            .trim();
        let start = inner.as_ptr() as usize - source.as_ptr() as usize;
        Some((start, inner))
    })
}

/// A plain name, as minijinja's identifiers (ASCII here).
fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The last `as` in `s` with white space (a line break too) on both sides.
fn last_as(s: &str) -> Option<usize> {
    s.rmatch_indices("as").map(|(i, _)| i).find(|&i| {
        s[..i].ends_with(char::is_whitespace) && s[i + 2..].starts_with(char::is_whitespace)
    })
}

/// `word` followed by white space at the start of `s`: the rest.
fn keyword<'s>(s: &'s str, word: &str) -> Option<&'s str> {
    s.strip_prefix(word)
        .filter(|rest| rest.starts_with(char::is_whitespace))
}

/// The text of a quoted string at the start of `s`.
fn quoted(s: &str) -> Option<&str> {
    let quote = s.chars().next().filter(|c| matches!(c, '"' | '\''))?;
    let rest = &s[1..];
    rest.find(quote).map(|end| &rest[..end])
}

/// Where the alias of the first `{% import … as ALIAS %}` that is not a
/// plain name is, if there is one (minijinja's compiler panics on it).
pub(super) fn bad_import_alias(source: &str) -> Option<Range<usize>> {
    for (start, tag) in statements(source) {
        let Some(rest) = keyword(tag, "import") else {
            continue;
        };
        let Some(at) = last_as(rest) else {
            continue;
        };
        let alias = rest[at + 2..].trim();
        let alias = ["without context", "with context"]
            .iter()
            .find_map(|c| alias.strip_suffix(c))
            .map_or(alias, str::trim_end);
        if !alias.is_empty() && !is_name(alias) {
            let offset = start + (alias.as_ptr() as usize - tag.as_ptr() as usize);
            return Some(offset..offset + alias.len());
        }
    }
    None
}

/// The macro an expression calls, if the `{{ … }}` around byte `pos` of
/// `source` starts with a call: `m.metadata(` (a macro of an imported
/// module) or `labels(` (a macro of this file, or one imported by name).
pub(super) fn called_at(source: &str, pos: usize) -> Option<Call<'_>> {
    // The opening braces may be at `pos` itself.
    let mut upto = pos.saturating_add(2).min(source.len());
    while !source.is_char_boundary(upto) {
        upto -= 1;
    }
    let open = source[..upto].rfind("{{")?;
    if source.get(open..pos.max(open))?.contains("}}") {
        return None;
    }
    let expr = source[open + 2..]
        .trim_start_matches(['-', '+'])
        .trim_start();
    let end = expr
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(expr.len());
    if !expr[end..].trim_start().starts_with('(') {
        return None;
    }
    match expr[..end].split_once('.') {
        Some((module, name)) if is_name(module) && is_name(name) => Some(Call {
            module: Some(module),
            name,
        }),
        None if is_name(&expr[..end]) => Some(Call {
            module: None,
            name: &expr[..end],
        }),
        _ => None,
    }
}

/// A macro call found by [`called_at`].
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Call<'s> {
    /// The alias of the imported module (`m` in `m.metadata(…)`).
    pub module: Option<&'s str>,
    pub name: &'s str,
}

/// The template `{% import "NAME" as alias %}` in `source` imports.
pub(super) fn imported_as<'s>(source: &'s str, alias: &str) -> Option<&'s str> {
    statements(source).find_map(|(_, tag)| {
        let rest = keyword(tag, "import")?;
        let at = last_as(rest)?;
        let named = rest[at + 2..].split_whitespace().next()?;
        (named == alias).then_some(())?;
        quoted(rest.trim_start())
    })
}

/// Where `{% macro name(` is in `source`, or the template a
/// `{% from "NAME" import …, name, … %}` in it brings `name` from.
pub(super) fn macro_source<'s>(source: &'s str, name: &str) -> Option<MacroSource<'s>> {
    statements(source).find_map(|(start, tag)| {
        if let Some(rest) = keyword(tag, "macro") {
            let defined = rest.split('(').next().map(str::trim);
            return (defined == Some(name)).then_some(MacroSource::Here(start));
        }
        let rest = keyword(tag, "from")?.trim_start();
        let template = quoted(rest)?;
        let names = rest[template.len() + 2..].trim_start();
        let names = keyword(names, "import")?;
        // `a, b as c`: each is known here by its last word, and there by
        // its first.
        names.split(',').find_map(|n| {
            let words: Vec<&str> = n.split_whitespace().collect();
            (words.last() == Some(&name)).then(|| MacroSource::From(template, words[0]))
        })
    })
}

/// Where a macro is, as far as one file tells.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum MacroSource<'s> {
    /// Defined in this file, its `macro` tag at this byte.
    Here(usize),
    /// Imported from this template, where it has this name.
    From(&'s str, &'s str),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_import_aliases_are_found() {
        let alias = |src: &'static str| bad_import_alias(src).map(move |r| &src[r]);
        assert_eq!(alias("{% import \"a.j2\" as -m %}"), Some("-m"));
        assert_eq!(alias("x\n{%- import 'a.j2' as m() -%}"), Some("m()"));
        assert_eq!(
            alias("{% import 'a as b.j2' as (x, y) with context %}"),
            Some("(x, y)")
        );
        assert_eq!(alias("{%+ import 'a' as 1 without context %}"), Some("1"));
        assert_eq!(alias("{% import 'a'\n   as ---\nm %}"), Some("---\nm"));
        // Plain names, other tags and text are left alone.
        for ok in [
            "{% import \"a.j2\" as m -%}",
            "{% import 'a' as _m2 with context %}",
            "{% from 'a' import b as -c %}",
            "{% set importer = 1 %} import x as -y",
            "{% importx as -y %}",
            "{% import 'a' as",
        ] {
            assert_eq!(alias(ok), None, "{ok}");
        }
    }

    #[test]
    fn calls_are_read_from_the_expression_around_a_position() {
        let src =
            "a: {{ m.metadata(w.name) }}\nb: {{- labels() }}\nc: {{ w.name }}\nd: {{ x | f(1) }}\n";
        let at = |s: &str| src.find(s).expect("in source");
        assert_eq!(
            called_at(src, at(".metadata")),
            Some(Call {
                module: Some("m"),
                name: "metadata"
            })
        );
        // Any byte of the tag, its braces included.
        assert_eq!(
            called_at(src, at("{{ m.")).map(|c| c.name),
            Some("metadata")
        );
        assert_eq!(
            called_at(src, at("w.name)")).map(|c| c.name),
            Some("metadata")
        );
        assert_eq!(
            called_at(src, at("labels")),
            Some(Call {
                module: None,
                name: "labels"
            })
        );
        // No call, a filter call, or outside any expression.
        assert_eq!(called_at(src, at("w.name }}")), None);
        assert_eq!(called_at(src, at("x | f")), None);
        assert_eq!(called_at(src, at("c:")), None);
        assert_eq!(called_at(src, src.len()), None);
    }

    #[test]
    fn macros_are_traced_through_imports() {
        let object = "{% import \"kubernetes/_macros.j2\" as m -%}\n{%- import 'x.j2' as other %}";
        assert_eq!(imported_as(object, "m"), Some("kubernetes/_macros.j2"));
        assert_eq!(imported_as(object, "other"), Some("x.j2"));
        assert_eq!(imported_as(object, "n"), None);
        let macros = "{% from \"kubernetes/_metadata.j2\" import labels, shared_labels as sl, metadata %}\n{% macro resources() -%}x{%- endmacro %}";
        assert_eq!(
            macro_source(macros, "metadata"),
            Some(MacroSource::From("kubernetes/_metadata.j2", "metadata"))
        );
        assert_eq!(
            macro_source(macros, "sl"),
            Some(MacroSource::From(
                "kubernetes/_metadata.j2",
                "shared_labels"
            ))
        );
        assert_eq!(macro_source(macros, "shared_labels"), None);
        let at = macros.find("macro resources").expect("defined");
        assert_eq!(
            macro_source(macros, "resources"),
            Some(MacroSource::Here(at))
        );
        assert_eq!(macro_source(macros, "peer"), None);
    }
}
