//! Writing a manifest as YAML, byte for byte the way serde-saphyr writes
//! it, in a fraction of the time.
//!
//! Every manifest `render` prints went through serde-saphyr's serializer,
//! and for a large blueprint that was a sixth of the work. Manifests are
//! mostly mappings of short identifiers, so this writer lays out mappings
//! and sequences itself (serde-saphyr's default style: two-space indent,
//! sequences at their key's column, `{}`/`[]` for empty collections) and
//! writes the strings it can prove serde-saphyr leaves plain, and plain
//! multi-line text as literal blocks. Any other scalar is written by
//! serde-saphyr on its own and placed here (a block or folded scalar's
//! lines indented two columns past its key or dash, as serde-saphyr
//! indents them); a key that is not a plain identifier sends the whole
//! manifest to serde-saphyr. Under `cfg(test)` every manifest this writer
//! produces is compared with serde-saphyr's output.

use serde_json::{Map, Value};

/// `v` as one YAML document; `None` when serde-saphyr must write it.
pub(super) fn document(v: &Value) -> Option<String> {
    let map = v.as_object().filter(|m| !m.is_empty())?;
    let mut w = Writer {
        out: String::with_capacity(1024),
        scratch: String::new(),
    };
    w.mapping(map, 0, false)?;
    Some(w.out)
}

struct Writer {
    out: String,
    /// Reused for scalars serde-saphyr writes.
    scratch: String,
}

impl Writer {
    fn indent(&mut self, n: usize) {
        self.out.extend(std::iter::repeat_n(' ', n));
    }

    /// Entries at column `col`; the first one continues the current line
    /// (after `- `) when `inline`.
    fn mapping(&mut self, map: &Map<String, Value>, col: usize, inline: bool) -> Option<()> {
        for (i, (key, value)) in map.iter().enumerate() {
            if i > 0 || !inline {
                self.indent(col);
            }
            if !plain_key(key) {
                return None;
            }
            self.out.push_str(key);
            self.out.push(':');
            match value {
                Value::Object(m) if !m.is_empty() => {
                    self.out.push('\n');
                    self.mapping(m, col + 2, false)?;
                }
                Value::Array(items) if !items.is_empty() => {
                    self.out.push('\n');
                    self.sequence(items, col, false)?;
                }
                _ => {
                    self.out.push(' ');
                    self.scalar(value, col)?;
                }
            }
        }
        Some(())
    }

    fn sequence(&mut self, items: &[Value], col: usize, inline: bool) -> Option<()> {
        for (i, item) in items.iter().enumerate() {
            if i > 0 || !inline {
                self.indent(col);
            }
            self.out.push_str("- ");
            match item {
                Value::Object(m) if !m.is_empty() => self.mapping(m, col + 2, true)?,
                Value::Array(items) if !items.is_empty() => self.sequence(items, col + 2, true)?,
                _ => self.scalar(item, col)?,
            }
        }
        Some(())
    }

    /// A scalar or empty collection, and the line break after it. `owner`
    /// is the column of its key or `-`: block scalar lines go two further.
    fn scalar(&mut self, v: &Value, owner: usize) -> Option<()> {
        match v {
            Value::Null => self.out.push_str("null"),
            Value::Bool(b) => self.out.push_str(if *b { "true" } else { "false" }),
            Value::Object(_) => self.out.push_str("{}"),
            Value::Array(_) => self.out.push_str("[]"),
            Value::Number(n) if n.is_i64() || n.is_u64() => {
                use std::fmt::Write;
                let _ = write!(self.out, "{n}");
            }
            Value::String(s) if plain_value(s) => self.out.push_str(s),
            Value::String(s) if literal_block(s) => {
                self.literal(s, owner);
                return Some(());
            }
            // Quoted and other block strings, floats: serde-saphyr's choice of
            // style, escapes, folding and number format, written alone and
            // indented here.
            _ => return self.saphyr_scalar(v, owner),
        }
        self.out.push('\n');
        Some(())
    }

    /// A multi-line string as a literal block: `|` when it ends with one
    /// line break, `|-` when it ends with none; empty lines carry no
    /// indentation.
    fn literal(&mut self, s: &str, owner: usize) {
        let content = s.strip_suffix('\n').unwrap_or(s);
        self.out.push_str(if content.len() < s.len() {
            "|\n"
        } else {
            "|-\n"
        });
        for line in content.split('\n') {
            if !line.is_empty() {
                self.indent(owner + 2);
                self.out.push_str(line);
            }
            self.out.push('\n');
        }
    }

    /// serde-saphyr writes a lone scalar the way it writes it inside a
    /// document; block scalar lines are indented two columns past their
    /// owner, which for a lone scalar is column 0.
    fn saphyr_scalar(&mut self, v: &Value, owner: usize) -> Option<()> {
        self.scratch.clear();
        serde_saphyr::to_fmt_writer(&mut self.scratch, v).ok()?;
        let (first, body) = self.scratch.split_once('\n')?;
        self.out.push_str(first);
        self.out.push('\n');
        if body.is_empty() {
            return Some(());
        }
        if !first.starts_with(['|', '>']) {
            return None;
        }
        for line in body.split_inclusive('\n') {
            if line != "\n" {
                let text = line.strip_prefix("  ")?;
                self.out.extend(std::iter::repeat_n(' ', owner + 2));
                self.out.push_str(text);
            } else {
                self.out.push('\n');
            }
        }
        self.out.ends_with('\n').then_some(())
    }
}

/// Longest string serde-saphyr keeps on one line without folding it.
const MAX_PLAIN: usize = 80;

/// Words YAML 1.1 reads as booleans, null, or special floats (any case).
const WORDS: [&str; 11] = [
    "true", "false", "null", "yes", "no", "y", "n", "on", "off", "nan", "inf",
];

/// Bytes YAML numbers, timestamps and base-60 numbers are spelled with.
const NUMBER_BYTES: &[u8] = b"0123456789abcdefABCDEFxXoObBeE._+-: tTzZiInN,";

/// A key serde-saphyr writes plain: an identifier-like word (letters,
/// digits, `-`, `_`, `.`, `/`) that YAML would not read as anything but a
/// string.
fn plain_key(s: &str) -> bool {
    let b = s.as_bytes();
    starts_plain(b)
        && b[0] != b'/'
        && b.len() <= MAX_PLAIN
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'/'))
        && !is_word(s)
}

/// A value serde-saphyr writes plain (a subset of what it writes plain:
/// printable ASCII that starts with a letter or `/`, or with a digit and
/// holds a letter no number has, like `200Gi`; no `#`, `: ` or trailing
/// `:` or space; not a YAML 1.1 keyword).
fn plain_value(s: &str) -> bool {
    let b = s.as_bytes();
    starts_plain(b)
        && b.len() <= MAX_PLAIN
        && b.iter().all(|c| (b' '..=b'~').contains(c) && *c != b'#')
        && !s.ends_with([' ', ':'])
        && !s.contains(": ")
        && !is_word(s)
}

/// Starts with a letter or `/`, or with a digit and holds a byte no YAML
/// number or timestamp has.
fn starts_plain(b: &[u8]) -> bool {
    match b.first() {
        Some(c) if c.is_ascii_alphabetic() || *c == b'/' => true,
        Some(c) if c.is_ascii_digit() => b.iter().any(|c| !NUMBER_BYTES.contains(c)),
        _ => false,
    }
}

/// A string serde-saphyr writes as a literal block without an indentation
/// indicator or keep chomping (a subset of when it does): several lines of
/// printable ASCII or tabs, not starting with a space or an empty line,
/// ending with at most one line break.
fn literal_block(s: &str) -> bool {
    s.contains('\n')
        && !s.starts_with([' ', '\n'])
        && !s.ends_with("\n\n")
        && s.bytes().all(|b| matches!(b, b'\n' | b'\t' | b' '..=b'~'))
}

fn is_word(s: &str) -> bool {
    s.len() <= 5 && WORDS.iter().any(|w| s.eq_ignore_ascii_case(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saphyr(v: &Value) -> String {
        serde_saphyr::to_string(v).unwrap_or_default()
    }

    /// The writer either matches serde-saphyr byte for byte or steps
    /// aside. Whether it wrote the value.
    fn matches(v: &Value) -> bool {
        match document(v) {
            Some(text) => {
                assert_eq!(text, saphyr(v), "differs for {v}");
                true
            }
            None => false,
        }
    }

    /// Every object of every example is written by this writer, identical
    /// to serde-saphyr's output.
    #[test]
    fn examples_match_serde_saphyr() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let (mut objects, mut written) = (0, 0);
        for entry in std::fs::read_dir(root.join("blueprints"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = entry.path().to_string_lossy().to_string();
            let loaded = match crate::pipeline::load(&path, None) {
                Ok(l) => l,
                Err(d) => panic!("{path}: {}", d.render(false)),
            };
            for o in &loaded.rendered.objects {
                objects += 1;
                let fast = matches(&o.body);
                assert!(fast, "not written by the fast writer: {}", o.body);
                written += usize::from(fast);
            }
        }
        assert!(
            objects > 100 && written == objects,
            "{written} of {objects}"
        );
    }

    #[test]
    fn lays_out_collections_like_serde_saphyr() {
        let v = serde_json::json!({
            "k": {"a": 1, "b": [1, 2]},
            "s": [[1, 2], [], {}],
            "m": [{"a": {"b": 1}, "c": [1, [2, 3]]}],
            "deep": [[["x"]], {"a": [{"b": []}]}],
            "e": {}, "f": [], "nothing": null, "t": true, "neg": -5,
            "big": 18446744073709551615u64,
        });
        assert!(matches(&v));
    }

    #[test]
    fn scalars_match_serde_saphyr() {
        let strings = [
            "plain",
            "a b",
            "5.0",
            "4",
            "200Gi",
            "500m",
            "1Ti",
            "10s",
            "0 2 * * *",
            "2026-01-01",
            "1e3",
            "0x1F",
            "12:30",
            "-a",
            "-",
            "- a",
            "?x",
            "a: b",
            "x:y",
            "x:",
            "docker.io/x:5",
            "",
            " lead",
            "trail ",
            "yes",
            "Yes",
            "y",
            "N",
            "on",
            "OFF",
            "null",
            "~",
            "nan",
            ".inf",
            "=",
            "<<",
            "---",
            "...",
            "#x",
            "a #b",
            "a#b",
            "it's",
            "a\"b",
            "back\\slash",
            "\ttab",
            "é",
            "日本",
            "a\u{85}b",
            "\u{feff}",
            "line\nline",
            "trailing\n",
            "/var/lib/data",
            "{braces}",
            "[x]",
            "a,b",
            "*star",
            "&amp",
            "!bang",
            "%pct",
            "@at",
            "`tick`",
            "|pipe",
            ">gt",
            "'q'",
            "\"dq\"",
            "a very long value that goes on and on and on and on and on and on and on and on",
            "a very long value that goes on and on and on and on and on and on and on and on!",
            "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij",
            "aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii jjjj kkkk llll mmmm nnnn oooo pppp qqqq rrrr",
            "aaaa: bbbb cccc dddd eeee ffff gggg hhhh iiii jjjj kkkk llll mmmm nnnn oooo pppp qqqq rrrr",
            "  x\ny",
            "x\n\n",
            "\nx",
            "x\n\n\ny\n",
            "#!/bin/sh\nset -eu\n  indented\n",
            "a\tb\nc",
            "a\r\nb",
            "a\n  \nb",
            "a \nb ",
            "- a\n- b\n",
            "key: v\n# c\n",
            "x\n",
            "first line\nand a second line that is much longer than eighty characters, to see if it folds\n",
            "10-init.sh",
            "5",
            "1e3x",
            "2026-01-01T00:00:00Z",
            "1Gi",
        ];
        let mut written = 0;
        for s in strings {
            for v in [
                serde_json::json!({ "k": s }),
                serde_json::json!({ "k": [s, {"in": s}] }),
                serde_json::json!({ "k": { "n": [[s]] } }),
                serde_json::json!({ s: 1 }),
            ] {
                written += usize::from(matches(&v));
            }
        }
        for n in [
            serde_json::json!(1.5),
            serde_json::json!(-0.0),
            serde_json::json!(1e300),
        ] {
            assert!(matches(&serde_json::json!({ "f": n })));
        }
        assert!(written > 100, "only {written} written by the fast writer");
    }

    /// Random documents built from tricky pieces: whatever the writer
    /// produces must equal serde-saphyr's output.
    #[test]
    fn random_documents_match_serde_saphyr() {
        let pieces = [
            "a", "b c", "5", "0.5", "Gi", "-", ":", " ", "#", "'", "\"", "\n", "yes", "x", "1",
            "é", "\t", ",", "/", "null", "e", "?", "{", "---",
        ];
        let mut next = super::super::test_random(0x2545_f491_4f6c_dd1d);
        let (mut tried, mut written) = (0, 0);
        for _ in 0..3000 {
            let text = |next: &mut dyn FnMut(usize) -> usize| {
                (0..1 + next(4))
                    .map(|_| pieces[next(pieces.len())])
                    .collect::<String>()
            };
            let mut map = Map::new();
            for _ in 0..1 + next(4) {
                let key = if next(3) == 0 {
                    text(&mut next)
                } else {
                    "key".to_string() + &next(9).to_string()
                };
                let value = match next(5) {
                    0 => Value::String(text(&mut next)),
                    1 => Value::Array(
                        (0..next(3))
                            .map(|_| Value::String(text(&mut next)))
                            .collect(),
                    ),
                    2 => serde_json::json!({ "inner": text(&mut next), "n": next(100) }),
                    3 => serde_json::json!([{ "a": text(&mut next) }, [text(&mut next)]]),
                    _ => Value::from(next(1000) as f64 / 8.0),
                };
                map.insert(key, value);
            }
            tried += 1;
            written += usize::from(matches(&Value::Object(map)));
        }
        assert!(
            written * 8 > tried,
            "{written} of {tried} written by the fast writer"
        );
    }
}
