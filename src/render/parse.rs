//! Parsing template output (one YAML document) into a `serde_json::Value`.
//!
//! Most of what templates produce is one-line JSON written by `| tojson`
//! after `key: ` or `- ` (metadata, containers, env entries...): about 60% of
//! the bytes of a large render. A YAML parser reads JSON several times slower
//! than a JSON parser, so such values are parsed with serde_json and the YAML
//! parser only sees a short placeholder in their place. The result is the
//! same `Value` serde-saphyr produces for the whole text; anything this fast
//! path cannot prove equal goes to serde-saphyr whole:
//!
//! - a JSON value is taken out only if it is *canonical*: serde_json
//!   serialises it back to exactly the same bytes. Duplicate keys, odd number
//!   spellings, trailing comments or spaces never qualify.
//! - the placeholder is a plain scalar of a private-use character and an
//!   index; documents that already contain that character are never touched.
//! - after parsing, every placeholder must come back exactly once, as a whole
//!   string value. A placeholder inside a longer string (a block scalar, a
//!   quoted or multi-line scalar, a key) means the line was not a value of
//!   its own, and the document is parsed again as written.
//! - if the shortened text does not parse, the original is parsed, so errors
//!   and their positions always refer to what the template produced.

use std::borrow::Cow;

use granit_parser::{Event, Options, Parser, ScalarStyle};
use serde_json::{Map, Value};

/// Starts every placeholder; U+E000 is a private-use character no template
/// or blueprint has a reason to produce.
const MARK: char = '\u{E000}';

/// Values shorter than this are left to the YAML parser: taking them out
/// costs about as much as parsing them.
const MIN_JSON_LEN: usize = 16;

/// Parses one YAML document. Same result, and same errors, as
/// `serde_saphyr::from_str::<Value>(doc)`.
pub(super) fn document(doc: &str) -> Result<Value, serde_saphyr::Error> {
    let fast = fast_path(doc);
    #[cfg(test)]
    if let Some(v) = &fast {
        tests::FAST_PATHS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let whole = serde_saphyr::from_str::<Value>(doc).ok();
        assert_eq!(Some(v), whole.as_ref(), "fast path differs for:\n{doc}");
    }
    match fast {
        Some(v) => Ok(v),
        None => serde_saphyr::from_str(doc),
    }
}

/// `None` when the result cannot be shown to equal serde-saphyr's.
fn fast_path(doc: &str) -> Option<Value> {
    if doc.len() > MAX_BYTES || doc.contains(MARK) {
        return None;
    }
    let (text, mut taken) = take_out_json(doc);
    let v = build(&text, &mut taken)?;
    taken.iter().all(Option::is_none).then_some(v)
}

/// The document with each canonical JSON value replaced by a placeholder,
/// and the values taken out.
fn take_out_json(doc: &str) -> (Cow<'_, str>, Vec<Option<Value>>) {
    let mut short = String::new();
    let mut taken = Vec::new();
    let mut copied = 0;
    let mut line_start = 0;
    for line in doc.split_inclusive('\n') {
        let body = line.strip_suffix('\n').unwrap_or(line);
        let rest = &body[value_start(body)..];
        let candidate =
            rest.len() >= MIN_JSON_LEN && (rest.starts_with('{') || rest.starts_with('['));
        if let Some(v) = candidate.then(|| canonical_json(rest)).flatten() {
            let rest_start = line_start + body.len() - rest.len();
            short.push_str(&doc[copied..rest_start]);
            short.push(MARK);
            short.push_str(&taken.len().to_string());
            copied = line_start + body.len();
            taken.push(Some(v));
        }
        line_start += line.len();
    }
    if taken.is_empty() {
        return (Cow::Borrowed(doc), taken);
    }
    short.push_str(&doc[copied..]);
    (Cow::Owned(short), taken)
}

/// Documents deeper, larger or with more nodes than this go to serde-saphyr,
/// whose budget (depth 64, 250,000 nodes, 64 MiB of text) then decides.
const MAX_DEPTH: usize = 32;
const MAX_NODES: usize = 100_000;
const MAX_BYTES: usize = 1 << 20;

/// A collection being built.
enum Frame {
    Seq(Vec<Value>),
    /// The map so far and the key waiting for its value.
    Map(Map<String, Value>, Option<String>),
}

/// Builds a `Value` from the YAML parser's events, putting the taken-out
/// JSON values in place of their placeholders. Covers what templates
/// produce; `None` for anything whose meaning serde-saphyr decides with more
/// rules than this (tags, anchors, aliases, merge keys, duplicate or
/// non-string keys, scalars that might be numbers in another spelling), for
/// a placeholder anywhere but as a whole plain scalar, and for every syntax
/// error.
fn build(text: &str, taken: &mut [Option<Value>]) -> Option<Value> {
    // Without placeholders no scalar can hold the mark (the document was
    // checked for it), so the per-scalar search is skipped.
    let has_placeholders = !taken.is_empty();
    let marked = |s: &str| has_placeholders && s.contains(MARK);
    let mut options = Options::default();
    options.set_emit_comments(false);
    let mut stack: Vec<Frame> = Vec::new();
    let mut root = None;
    let mut documents = 0;
    for (events, item) in Parser::new_from_str_with_options(text, options).enumerate() {
        let (event, _) = item.ok()?;
        if events > MAX_NODES {
            return None;
        }
        let awaiting_key = matches!(stack.last(), Some(Frame::Map(_, None)));
        let value = match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => continue,
            Event::DocumentStart(..) => {
                documents += 1;
                if documents > 1 {
                    return None;
                }
                continue;
            }
            Event::Scalar(text, style, anchor, tag) => {
                if anchor != 0 || tag.is_some() {
                    return None;
                }
                let plain = style == ScalarStyle::Plain;
                if awaiting_key {
                    if marked(&text) || (plain && (is_null(&text) || text == "<<")) {
                        return None;
                    }
                    if let Some(Frame::Map(_, key)) = stack.last_mut() {
                        *key = Some(text.into_owned());
                    }
                    continue;
                }
                match text.strip_prefix(MARK) {
                    Some(index) if plain => {
                        let slot = index.parse::<usize>().ok().and_then(|i| taken.get_mut(i))?;
                        let v = slot.take()?;
                        if stack.len() + depth(&v) > MAX_DEPTH {
                            return None;
                        }
                        v
                    }
                    _ if marked(&text) => return None,
                    _ if plain => plain_scalar(text)?,
                    _ => Value::String(text.into_owned()),
                }
            }
            Event::SequenceStart(_, anchor, ref tag) | Event::MappingStart(_, anchor, ref tag) => {
                if anchor != 0 || tag.is_some() || awaiting_key || stack.len() >= MAX_DEPTH {
                    return None;
                }
                stack.push(if matches!(event, Event::SequenceStart(..)) {
                    Frame::Seq(Vec::new())
                } else {
                    Frame::Map(Map::new(), None)
                });
                continue;
            }
            Event::SequenceEnd => match stack.pop()? {
                Frame::Seq(items) => Value::Array(items),
                Frame::Map(..) => return None,
            },
            Event::MappingEnd => match stack.pop()? {
                Frame::Map(map, None) => Value::Object(map),
                _ => return None,
            },
            _ => return None,
        };
        match stack.last_mut() {
            None if root.is_none() => root = Some(value),
            None => return None,
            Some(Frame::Seq(items)) => items.push(value),
            Some(Frame::Map(map, key)) => {
                if map.insert(key.take()?, value).is_some() {
                    return None;
                }
            }
        }
    }
    Some(root.unwrap_or(Value::Null))
}

/// Nesting depth of a value: 0 for a scalar.
fn depth(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// YAML's null spellings (plain scalars only).
fn is_null(s: &str) -> bool {
    matches!(s, "" | "~" | "null" | "Null" | "NULL")
}

/// A plain scalar the way serde-saphyr types it for a `Value`: null, YAML
/// 1.1 booleans, decimal integers and simple decimals; text that cannot be a
/// number in any spelling is a string. `None` for the rest (hex, octal,
/// exponents, `.inf`, underscores...), which serde-saphyr decides.
fn plain_scalar(text: Cow<'_, str>) -> Option<Value> {
    let s = text.as_ref();
    if is_null(s) {
        return Some(Value::Null);
    }
    const TRUE: [&str; 4] = ["true", "yes", "y", "on"];
    const FALSE: [&str; 4] = ["false", "no", "n", "off"];
    if TRUE.iter().any(|t| s.eq_ignore_ascii_case(t)) {
        return Some(Value::Bool(true));
    }
    if FALSE.iter().any(|t| s.eq_ignore_ascii_case(t)) {
        return Some(Value::Bool(false));
    }
    let unsigned = s.strip_prefix(['-', '+']).unwrap_or(s);
    match unsigned.as_bytes().first() {
        Some(b'0'..=b'9') => {}
        // `.5`, `-.inf`: serde-saphyr decides.
        Some(b'.') => return None,
        // Words, and signs before words (`-inf` stays text in YAML).
        _ => return Some(Value::String(text.into_owned())),
    }
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let leading_zero = |t: &str| t.starts_with('0') && t.len() > 1;
    if !s.starts_with('+') && s != "-0" && !leading_zero(unsigned) {
        if digits(unsigned) && unsigned.len() <= 18 {
            let n: i64 = s.parse().ok()?;
            return Some(Value::from(n));
        }
        if let Some((int, frac)) = unsigned.split_once('.')
            && digits(int)
            && digits(frac)
            && int.len() + frac.len() <= 15
        {
            return serde_json::Number::from_f64(s.parse().ok()?).map(Value::Number);
        }
    }
    // Every spelling of a YAML number is made of these; anything else
    // (`200Gi`, `500m`, `30s`, `0 2 * * *`) is text.
    let numeric = |b: u8| b.is_ascii_hexdigit() || b"xXoObB._+-:".contains(&b);
    if unsigned.bytes().all(numeric) {
        None
    } else {
        Some(Value::String(text.into_owned()))
    }
}

/// Byte offset where a line's value would start: after indentation, any
/// number of `- ` and at most one plain `key: `. Lines with anything else
/// (quoted keys, tags, anchors) keep their text.
fn value_start(line: &str) -> usize {
    let bytes = line.as_bytes();
    let mut i = bytes.iter().take_while(|&&b| b == b' ').count();
    while bytes[i..].starts_with(b"- ") {
        i += 2;
    }
    let key_len = bytes[i..]
        .iter()
        .take_while(|&&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'-'))
        .count();
    let first_ok = bytes
        .get(i)
        .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
    if key_len > 0 && first_ok && bytes[i + key_len..].starts_with(b": ") {
        i += key_len + 2;
    }
    i
}

/// The JSON value of `text` if serde_json writes it back byte for byte.
fn canonical_json(text: &str) -> Option<Value> {
    let v: Value = serde_json::from_str(text).ok()?;
    (serde_json::to_string(&v).ok()? == text).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Documents the fast path took (each one checked against serde-saphyr
    /// in `document`).
    pub(super) static FAST_PATHS: std::sync::atomic::AtomicUsize =
        std::sync::atomic::AtomicUsize::new(0);

    /// Every example blueprint and the platform-team override render through
    /// `document`, which checks each fast-path result against serde-saphyr.
    #[test]
    fn every_example_agrees_with_serde_saphyr() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut runs: Vec<(std::path::PathBuf, Option<std::path::PathBuf>)> =
            std::fs::read_dir(root.join("blueprints"))
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| (e.path(), None))
                .collect();
        runs.push((
            root.join("tests/platform-blueprint.toml"),
            Some(root.join("tests/platform-templates")),
        ));
        assert!(runs.len() >= 9);
        let before = FAST_PATHS.load(std::sync::atomic::Ordering::Relaxed);
        for (file, templates) in runs {
            let path = file.to_string_lossy();
            if let Err(d) = crate::pipeline::load(&path, templates.as_deref()) {
                panic!("{path}: {}", d.render(false));
            }
        }
        // Each example has several objects with canonical JSON lines.
        assert!(FAST_PATHS.load(std::sync::atomic::Ordering::Relaxed) - before > 50);
    }

    fn plain(doc: &str) -> Option<Value> {
        serde_saphyr::from_str::<Value>(doc).ok()
    }

    /// The fast path either agrees with serde-saphyr or steps aside.
    fn agrees(doc: &str) {
        let got = document(doc).ok();
        assert_eq!(got, plain(doc), "differs for:\n{doc}");
    }

    fn taken(doc: &str) -> usize {
        take_out_json(doc).1.len()
    }

    #[test]
    fn takes_out_canonical_json_values() {
        let doc = "metadata: {\"name\":\"a\",\"labels\":{\"x\":\"y\"}}\nspec:\n  containers: [{\"name\":\"db\",\"ports\":[1,2]}]\n  env:\n  - {\"name\":\"A\",\"value\":\"1\"}\n  - - {\"name\":\"nested\",\"v\":[]}\n";
        assert_eq!(taken(doc), 4);
        assert!(fast_path(doc).is_some());
        agrees(doc);
    }

    #[test]
    fn a_placeholder_that_is_not_a_whole_value_falls_back() {
        let cases = [
            // JSON text inside a literal block scalar.
            "config: |\n  - {\"name\":\"inside\",\"x\":1}\n  key: {\"also\":\"inside!!\"}\n",
            // ... and inside a folded one.
            "config: >\n  - {\"name\":\"inside\",\"x\":1}\n",
            // A multi-line single-quoted scalar.
            "a: 'x\n  - {\"name\":\"inside\",\"x\":1}\n  '\n",
            // A multi-line plain scalar.
            "a: word\n  - {\"name\":\"inside\",\"x\":1}\n",
        ];
        for doc in cases {
            assert!(taken(doc) > 0, "nothing taken out of:\n{doc}");
            assert!(fast_path(doc).is_none(), "fast path taken for:\n{doc}");
            agrees(doc);
        }
    }

    #[test]
    fn only_canonical_json_is_taken_out() {
        for doc in [
            "a: {\"dup\":1,\"dup\":2,\"pad\":0}\n",
            "a: {\"spaced\": 1, \"more\": 2}\n",
            "a: {\"n\":1e5,\"padding\":true}\n",
            "a: {\"name\":\"x\",\"v\":1} # comment\n",
            "a: {\"name\":\"x\",\"v\":1}   \n",
            "a: &anchor {\"name\":\"x\",\"v\":1}\nb: *anchor\n",
            "\"quoted\": {\"name\":\"x\",\"v\":1}\n",
        ] {
            assert_eq!(taken(doc), 0, "taken out of:\n{doc}");
            agrees(doc);
        }
    }

    /// Scalars typed like serde-saphyr types them, or left to it.
    #[test]
    fn plain_scalars_are_typed_like_serde_saphyr() {
        let scalars = [
            "0",
            "-0",
            "+1",
            "7",
            "-7",
            "007",
            "1.5",
            "1.50",
            "0.5",
            "00.5",
            "-2.25",
            "1e5",
            "1E5",
            "0x1F",
            "0o17",
            "0b101",
            "1_000",
            ".5",
            "-.inf",
            ".nan",
            "inf",
            "-inf",
            "nan",
            "yes",
            "No",
            "ON",
            "off",
            "y",
            "Y",
            "n",
            "~",
            "null",
            "NULL",
            "Null",
            "nULL",
            "true",
            "True",
            "tRUE",
            "200Gi",
            "500m",
            "30s",
            "3d",
            "1:30",
            "168h0m0s",
            "12345678901234567890",
            "999999999999999999",
            "-999999999999999999",
            "1.",
            "1.5.6",
            "2026-11-21",
            "-",
            "-foo",
            "+foo",
            "1e999",
            "123abc",
            "abc123",
            "3.14159265358979323",
            "0.1",
            "100000000000000.5",
            "a b",
            "x:y",
        ];
        for s in scalars {
            agrees(&format!("k: {s}\n"));
            agrees(&format!("- {s}\n"));
            agrees(&format!("{s}: v\n"));
            agrees(&format!("k: [{s}]\n"));
        }
        for s in ["\"1\"", "'true'", "|\n  text\n", ">-\n  folded\n  text\n"] {
            agrees(&format!("k: {s}\n"));
        }
    }

    #[test]
    fn keys_and_structure() {
        for doc in [
            "a: 1\na: 2\n",
            "<<: {a: 1}\nb: 2\n",
            "~: v\n",
            "null: v\n",
            "? [a, b]\n: v\n",
            "a: !!str 5\n",
            "a: !custom x\n",
            "a: &x 1\nb: *x\n",
            "a:\n  b:\n    c: [1, {d: e}]\n",
            "[1, 2]\n",
            "plain\n",
            "",
            "# only a comment\n",
            "a: 1\n---\nb: 2\n",
            "%YAML 1.2\n---\na: 1\n",
            "a: 1\n...\n",
            "? - {\"name\":\"inside\",\"x\":1}\n: v\n",
            "a:\tb\n",
            "a: 'it''s'\n",
            "a: \"esc\\n\\t\\u00e9\"\n",
            "- - - x\n",
            "a: {b: [1, {c: d}], e: f}\n",
            "a: [1, 2,]\n",
            "a: <<\n",
            "a: x # trailing comment\n# own line\nb: y\n",
        ] {
            agrees(doc);
        }
        for n in [20, 40, 63, 64, 65, 100] {
            let deep = format!("{}1{}\n", "[".repeat(n), "]".repeat(n));
            agrees(&deep);
            agrees(&format!("k: {deep}"));
            agrees(&format!(
                "k:\n  k: {}\n",
                deep.replace('1', "\"deep json value\"")
            ));
        }
    }

    /// Random one-byte edits of a document mixing every construct templates
    /// use: whatever the fast path accepts must equal serde-saphyr's result
    /// (`document` asserts it), and nothing panics.
    #[test]
    fn mutations_agree_with_serde_saphyr() {
        let seed = "metadata: {\"name\":\"db\",\"labels\":{\"app\":\"x\"}}\nspec:\n  replicas: 3\n  ratio: 1.5\n  size: 200Gi\n  on: yes\n  empty:\n  quoted: 'a''b'\n  dq: \"x\\ty\"\n  list:\n  - {\"name\":\"A\",\"value\":\"1\"}\n  - plain words\n  - [1, two, {k: v}]\n  script: |\n    #!/bin/sh\n    echo {\"not\":\"json here\"}\n  folded: >-\n    one\n    two\n";
        let bytes: &[u8] = b":-{}[]'\"#|> \n\t,&*!0a";
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % bound as u64) as usize
        };
        for _ in 0..3000 {
            let mut doc = seed.as_bytes().to_vec();
            for _ in 0..1 + next(3) {
                let at = next(doc.len());
                match next(3) {
                    0 => {
                        doc.remove(at);
                    }
                    1 => doc.insert(at, bytes[next(bytes.len())]),
                    _ => doc[at] = bytes[next(bytes.len())],
                }
            }
            if let Ok(doc) = String::from_utf8(doc) {
                agrees(&doc);
            }
        }
    }

    #[test]
    fn flow_context_and_crlf() {
        agrees("a: {\n  k: {\"name\":\"x\",\"v\":[1]}\n}\n");
        agrees("a: [\n  - {\"name\":\"x\",\"v\":[1]}\n]\n");
        agrees("a: {\"name\":\"x\",\"v\":[1]}\r\nb: 1\r\n");
    }

    #[test]
    fn errors_come_from_the_text_as_written() {
        let doc = "a: {\"name\":\"x\",\"v\":[1]}\nb: [unclosed\n";
        let fast = document(doc).map_err(|e| e.to_string());
        let whole = serde_saphyr::from_str::<Value>(doc).map_err(|e| e.to_string());
        assert!(fast.is_err());
        assert_eq!(fast, whole);
    }

    #[test]
    fn documents_with_the_mark_are_left_alone() {
        let doc = format!("a: \"{MARK}0\"\nb: {{\"name\":\"x\",\"v\":[1]}}\n");
        assert!(fast_path(&doc).is_none());
        agrees(&doc);
    }
}
