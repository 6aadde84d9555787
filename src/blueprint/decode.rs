//! A small reader over `toml`'s spanned document tree that reports every
//! problem it sees (instead of stopping at the first, as serde would) and
//! suggests the closest known key for a typo.

use std::collections::BTreeMap;
use std::ops::Range;

use toml::Spanned as TomlSpanned;
use toml::de::{DeTable, DeValue};

use super::Spanned;
use crate::diagnostics::Diagnostic;

pub(crate) type Value<'i> = TomlSpanned<DeValue<'i>>;

/// Collects diagnostics while decoding one file.
pub(crate) struct Reader {
    pub diags: Vec<Diagnostic>,
}

/// A table being read: knows its allowed keys and what it is called in
/// messages (`[workloads.orders-db]`, `backup`).
pub(crate) struct Table<'t, 'i> {
    pub table: &'t DeTable<'i>,
    pub span: Range<usize>,
    pub what: String,
}

impl Reader {
    pub fn new() -> Self {
        Reader { diags: Vec::new() }
    }

    pub fn error(&mut self, span: Range<usize>, message: impl Into<String>) -> &mut Diagnostic {
        self.diags.push(Diagnostic::error(message).at(span));
        self.diags.last_mut().expect("just pushed")
    }

    /// Opens `value` as a table whose keys must all be in `known`.
    pub fn table<'t, 'i>(
        &mut self,
        value: &'t Value<'i>,
        what: impl Into<String>,
        known: &[&str],
    ) -> Option<Table<'t, 'i>> {
        let what = what.into();
        match value.get_ref() {
            DeValue::Table(table) => {
                let t = Table {
                    table,
                    span: value.span(),
                    what,
                };
                self.check_keys(&t, known);
                Some(t)
            }
            other => {
                let span = value.span();
                let d = Diagnostic::error(format!(
                    "{what} must be a table, found {}",
                    type_name(other)
                ))
                .at(span)
                .hint(format!(
                    "write it as a table: {what} = {{ ... }} or a [section]"
                ));
                self.diags.push(d);
                None
            }
        }
    }

    fn check_keys(&mut self, t: &Table<'_, '_>, known: &[&str]) {
        for key in t.table.keys() {
            let name = key.get_ref().as_ref();
            if known.contains(&name) {
                continue;
            }
            let mut d = Diagnostic::error(format!("unknown key `{name}` in {}", t.what))
                .at(key.span())
                .label("not a known key");
            d = match did_you_mean(name, known.iter().copied()) {
                Some(s) => d.hint(format!("did you mean `{s}`?")),
                None => d.hint(format!("known keys: {}", known.join(", "))),
            };
            self.diags.push(d);
        }
    }

    /// A required string.
    pub fn req_str(
        &mut self,
        t: &Table<'_, '_>,
        key: &str,
        example: &str,
    ) -> Option<Spanned<String>> {
        match t.get(key) {
            Some(v) => self.str_value(v, &format!("`{key}`")),
            None => {
                let d = Diagnostic::error(format!("{} is missing required key `{key}`", t.what))
                    .at(header_span(t))
                    .hint(format!("add `{key} = {example}`"));
                self.diags.push(d);
                None
            }
        }
    }

    pub fn opt_str(&mut self, t: &Table<'_, '_>, key: &str) -> Option<Spanned<String>> {
        t.get(key)
            .and_then(|v| self.str_value(v, &format!("`{key}`")))
    }

    pub fn str_value(&mut self, v: &Value<'_>, what: &str) -> Option<Spanned<String>> {
        match v.get_ref() {
            DeValue::String(s) => Some(Spanned::new(s.to_string(), v.span())),
            other => {
                let mut d = Diagnostic::error(format!(
                    "{what} must be a string, found {}",
                    type_name(other)
                ))
                .at(v.span());
                d = match other {
                    DeValue::Integer(i) => d.hint(format!("quote it: \"{}\"", i.as_str())),
                    DeValue::Float(f) => d.hint(format!("quote it: \"{}\"", f.as_str())),
                    DeValue::Boolean(b) => d.hint(format!("quote it: \"{b}\"")),
                    _ => d.hint("write a string in double quotes"),
                };
                self.diags.push(d);
                None
            }
        }
    }

    /// An integer or a string holding one; TOML users write both.
    pub fn opt_int(
        &mut self,
        t: &Table<'_, '_>,
        key: &str,
        min: i64,
        max: i64,
    ) -> Option<Spanned<i64>> {
        let v = t.get(key)?;
        let parsed = match v.get_ref() {
            DeValue::Integer(i) => {
                i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()).ok()
            }
            DeValue::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        let out_of_range = |found: &str| {
            (
                format!("`{key}` must be between {min} and {max}, found {found}"),
                format!("use a value from {min} to {max}"),
            )
        };
        let (message, hint) = match parsed {
            Some(n) if (min..=max).contains(&n) => return Some(Spanned::new(n, v.span())),
            Some(n) => out_of_range(&n.to_string()),
            // An integer that does not even fit 64 bits.
            None if matches!(v.get_ref(), DeValue::Integer(_)) => {
                out_of_range("a number far larger")
            }
            None => (
                format!(
                    "`{key}` must be a whole number, found {}",
                    describe(v.get_ref())
                ),
                format!("for example `{key} = {min}`"),
            ),
        };
        self.diags
            .push(Diagnostic::error(message).at(v.span()).hint(hint));
        None
    }

    pub fn opt_bool(&mut self, t: &Table<'_, '_>, key: &str) -> Option<Spanned<bool>> {
        let v = t.get(key)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some(Spanned::new(*b, v.span())),
            other => {
                let d = Diagnostic::error(format!(
                    "`{key}` must be true or false, found {}",
                    type_name(other)
                ))
                .at(v.span())
                .hint(format!(
                    "write `{key} = true` or `{key} = false`, without quotes"
                ));
                self.diags.push(d);
                None
            }
        }
    }

    /// A list of strings; a single string is accepted as a one-element list.
    pub fn opt_str_list(
        &mut self,
        t: &Table<'_, '_>,
        key: &str,
    ) -> Option<Spanned<Vec<Spanned<String>>>> {
        let v = t.get(key)?;
        match v.get_ref() {
            DeValue::Array(items) => {
                let list = items
                    .iter()
                    .filter_map(|item| self.str_value(item, &format!("each entry of `{key}`")))
                    .collect();
                Some(Spanned::new(list, v.span()))
            }
            DeValue::String(s) => Some(Spanned::new(
                vec![Spanned::new(s.to_string(), v.span())],
                v.span(),
            )),
            other => {
                let d = Diagnostic::error(format!(
                    "`{key}` must be a list of strings, found {}",
                    type_name(other)
                ))
                .at(v.span())
                .hint(format!("for example `{key} = [\"a\", \"b\"]`"));
                self.diags.push(d);
                None
            }
        }
    }

    /// A table of string → string (labels, annotations).
    pub fn opt_str_map(
        &mut self,
        t: &Table<'_, '_>,
        key: &str,
    ) -> BTreeMap<String, Spanned<String>> {
        let mut out = BTreeMap::new();
        let Some(v) = t.get(key) else { return out };
        let DeValue::Table(table) = v.get_ref() else {
            let d = Diagnostic::error(format!(
                "`{key}` must be a table of strings, found {}",
                type_name(v.get_ref())
            ))
            .at(v.span())
            .hint(format!("for example `{key} = {{ team = \"payments\" }}`"));
            self.diags.push(d);
            return out;
        };
        for (k, val) in table {
            if let Some(s) = self.str_value(val, &format!("`{key}.{}`", k.get_ref())) {
                out.insert(
                    k.get_ref().to_string(),
                    Spanned::new(s.value, k.span().start..s.span.end),
                );
            }
        }
        out
    }
}

impl<'t, 'i> Table<'t, 'i> {
    pub fn get(&self, key: &str) -> Option<&'t Value<'i>> {
        self.table.get(key)
    }
}

/// Where to point "missing key" errors: the table itself.
fn header_span(t: &Table<'_, '_>) -> Range<usize> {
    t.span.start
        ..t.span
            .start
            .saturating_add(1)
            .min(t.span.end.max(t.span.start))
}

pub(crate) fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

fn describe(v: &DeValue<'_>) -> String {
    match v {
        DeValue::String(s) => format!("\"{s}\""),
        DeValue::Float(f) => f.as_str().to_string(),
        other => type_name(other).to_string(),
    }
}

/// The closest candidate by edit distance, if it is plausibly a typo.
pub fn did_you_mean<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let input_l = input.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| {
            (
                strsim::damerau_levenshtein(&input_l, &c.to_ascii_lowercase()),
                c,
            )
        })
        .filter(|&(d, c)| {
            d <= (c.len().max(input.len()) / 3).max(1)
                || c.starts_with(&input_l) && input_l.len() >= 3
        })
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::did_you_mean;

    #[test]
    fn suggests_close_names_only() {
        let c = ["postgres", "mysql", "mongodb", "valkey"];
        assert_eq!(did_you_mean("postgress", c), Some("postgres"));
        assert_eq!(did_you_mean("postgresql", c), Some("postgres"));
        assert_eq!(did_you_mean("mongo", c), Some("mongodb"));
        assert_eq!(did_you_mean("oracle", c), None);
    }
}
