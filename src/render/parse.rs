//! Parsing template output (one YAML document) into a `serde_json::Value`.
//!
//! Templates produce a narrow slice of YAML: block mappings and sequences
//! with plain keys, one-line JSON written by `| tojson` (about 60% of the
//! bytes of a large render), plain and quoted scalars, and literal block
//! scalars for config files. A general YAML parser reads that several times
//! slower than this line-by-line reader of exactly that slice, which was the
//! largest cost of rendering a big blueprint.
//!
//! The result is always the `Value` serde-saphyr produces for the same text.
//! The reader never guesses: the moment a document steps outside the slice
//! it knows (a tab in the indentation, a flow collection that is not
//! one-line JSON spelt the way YAML reads it too, an anchor, a tag, a
//! comment after a value, a folded or indented block scalar, a multi-line
//! plain or quoted scalar, a duplicate or null key, a number in an unusual
//! spelling, any syntax error...) it
//! gives up and serde-saphyr parses the whole document as written, so
//! errors and their positions always come from serde-saphyr. Under
//! `cfg(test)` every document the reader does accept is also parsed by
//! serde-saphyr and the two results are asserted equal.

use serde_json::{Map, Value};

/// Parses one YAML document. Same result, and same errors, as
/// `serde_saphyr::from_str::<Value>(doc)`.
pub(super) fn document(doc: &str) -> Result<Value, serde_saphyr::Error> {
    let fast = fast_path(doc);
    #[cfg(test)]
    tests::count(fast.is_some());
    #[cfg(test)]
    if let Some(v) = &fast {
        let whole = serde_saphyr::from_str::<Value>(doc).ok();
        assert_eq!(Some(v), whole.as_ref(), "fast path differs for:\n{doc}");
    }
    match fast {
        Some(v) => Ok(v),
        None => serde_saphyr::from_str(doc),
    }
}

/// The byte offset in `doc` of what the JSON pointer `pointer` (such as
/// `/spec/ports/0/port`) names: the key of a mapping entry, the start of
/// a sequence item, or for `""` the start of the document's content. `None`
/// when the document does not hold it. For diagnostics only: it runs a full
/// YAML parser with positions.
pub(super) fn locate(doc: &str, pointer: &str) -> Option<usize> {
    use granit_parser::{Event, Parser};
    /// An open collection and where in it the parser is.
    enum Frame {
        /// The last key read, and whether a key comes next.
        Map { key: String, expect_key: bool },
        /// The index of the next item.
        Seq { next: usize },
    }
    let target: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    // Whether the node starting now, under the open collections, is the
    // target (its last step `last`).
    let is_target = |stack: &[Frame], last: &str| {
        stack.len() + 1 == target.len()
            && target[stack.len()] == last
            && stack.iter().zip(&target).all(|(f, t)| match f {
                Frame::Map { key, .. } => key == t,
                Frame::Seq { next } => next.to_string() == *t,
            })
    };
    let mut stack: Vec<Frame> = Vec::new();
    for event in Parser::new_from_str(doc) {
        let (event, span) = event.ok()?;
        let offset = || {
            span.start
                .byte_offset()
                .or_else(|| doc.char_indices().nth(span.start.index()).map(|(i, _)| i))
        };
        // A node starts: a key, or a value (a scalar or a collection).
        let starts = matches!(
            event,
            Event::Scalar(..) | Event::MappingStart(..) | Event::SequenceStart(..)
        );
        if starts && target.is_empty() {
            return offset();
        }
        if starts {
            match stack.last_mut() {
                Some(Frame::Map { key, expect_key }) if *expect_key => {
                    let Event::Scalar(text, ..) = &event else {
                        return None; // a complex key: not JSON-shaped
                    };
                    *key = text.to_string();
                    *expect_key = false;
                    let (k, parents) = (key.clone(), stack.len() - 1);
                    if is_target(&stack[..parents], &k) {
                        return offset();
                    }
                    continue;
                }
                Some(Frame::Seq { next }) => {
                    let i = next.to_string();
                    let parents = stack.len() - 1;
                    if is_target(&stack[..parents], &i) {
                        return offset();
                    }
                }
                _ => {}
            }
        }
        match event {
            Event::MappingStart(..) => stack.push(Frame::Map {
                key: String::new(),
                expect_key: true,
            }),
            Event::SequenceStart(..) => stack.push(Frame::Seq { next: 0 }),
            Event::MappingEnd | Event::SequenceEnd | Event::Scalar(..) => {
                if !matches!(event, Event::Scalar(..)) {
                    stack.pop();
                }
                // The value is complete: a key comes next, or the next item.
                match stack.last_mut() {
                    Some(Frame::Map { expect_key, .. }) => *expect_key = true,
                    Some(Frame::Seq { next }) => *next += 1,
                    None => {}
                }
            }
            _ => {}
        }
    }
    None
}

/// Documents deeper, larger or with more nodes than this go to serde-saphyr,
/// whose budget (depth 64, 250,000 nodes, 64 MiB of text) then decides.
const MAX_DEPTH: usize = 32;
const MAX_NODES: usize = 100_000;
const MAX_BYTES: usize = 1 << 20;

/// `None` when the document is outside the slice of YAML [`Reader`] knows.
fn fast_path(doc: &str) -> Option<Value> {
    // Checking bytes first: most documents are ASCII, and decoding every
    // character was a noticeable share of reading them.
    let ascii = |b: &u8| matches!(b, b'\n' | b'\t' | b' '..=b'~');
    if doc.len() > MAX_BYTES || !(doc.as_bytes().iter().all(ascii) || doc.chars().all(printable)) {
        return None;
    }
    let mut reader = Reader::new(doc);
    let v = match reader.peek()? {
        Next::End => Value::Null,
        Next::Line(col, text) => reader.block(col, text, 0)?,
    };
    matches!(reader.peek()?, Next::End).then_some(v)
}

/// Characters the reader lets through: printable ASCII, line feeds, tabs
/// (which only block scalar content may hold), and non-ASCII characters YAML
/// treats as ordinary printable text. Carriage returns, other control
/// characters, the byte-order mark and the Unicode line and paragraph
/// separators are left to serde-saphyr.
fn printable(c: char) -> bool {
    matches!(c, '\n' | '\t' | ' '..='~' | '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
        && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{FEFF}')
}

/// What comes next in the document, skipping blank and comment lines.
enum Next<'a> {
    /// A line's indentation and its text after the indentation.
    Line(usize, &'a str),
    End,
}

/// Reads a document line by line. Every method returns `None` as soon as
/// the text leaves the slice of YAML it knows.
struct Reader<'a> {
    doc: &'a str,
    /// Where the next line to read starts.
    at: usize,
    /// Where that line ends (its line break, or the end of `doc`): found
    /// once per line, as the line is looked at several times.
    end: usize,
    /// Whether `doc` has a tab anywhere; most have none, and then no line
    /// needs checking for one.
    tabs: bool,
    nodes: usize,
}

impl<'a> Reader<'a> {
    fn new(doc: &'a str) -> Reader<'a> {
        let mut r = Reader {
            doc,
            at: 0,
            end: 0,
            tabs: doc.contains('\t'),
            nodes: 0,
        };
        r.seek(0);
        r
    }

    fn seek(&mut self, at: usize) {
        self.at = at.min(self.doc.len());
        self.end = self.doc[self.at..]
            .find('\n')
            .map_or(self.doc.len(), |i| self.at + i);
    }

    /// The line starting at `at`, without its line break; `None` at the
    /// end. (A final empty line after the last break is blank either way.)
    fn line(&self) -> Option<&'a str> {
        (self.at < self.doc.len()).then(|| &self.doc[self.at..self.end])
    }

    fn next_line(&mut self) {
        self.seek(self.end + 1);
    }

    /// The next line with content, without consuming it. Tabs are only
    /// allowed inside block scalars, which are read separately.
    fn peek(&mut self) -> Option<Next<'a>> {
        while let Some(line) = self.line() {
            let text = line.trim_start_matches(' ');
            if self.tabs && text.contains('\t') {
                return None;
            }
            if text.is_empty() || text.starts_with('#') {
                self.next_line();
                continue;
            }
            return Some(Next::Line(line.len() - text.len(), text));
        }
        Some(Next::End)
    }

    /// Counts a node against the limits.
    fn node(&mut self, depth: usize) -> Option<()> {
        self.nodes += 1;
        (self.nodes <= MAX_NODES && depth <= MAX_DEPTH).then_some(())
    }

    /// A block collection starting at column `col` of the current line,
    /// where `text` begins.
    fn block(&mut self, col: usize, text: &'a str, depth: usize) -> Option<Value> {
        if is_entry(text) {
            self.sequence(col, text, depth)
        } else if split_key(text).is_some() {
            self.mapping(col, text, depth)
        } else {
            // A multi-line plain scalar, a flow collection over several
            // lines, a root scalar...
            None
        }
    }

    /// A node that starts on the current line at column `col`, after `- `
    /// or as a whole line: a collection or a scalar. `owner` is the column
    /// of the entry or key it belongs to.
    fn inline(&mut self, col: usize, text: &'a str, owner: usize, depth: usize) -> Option<Value> {
        if is_entry(text) || split_key(text).is_some() {
            self.block(col, text, depth)
        } else {
            self.scalar(text, owner, depth)
        }
    }

    /// The value of `key:` or `-` with nothing after it: a collection on
    /// the following lines, a sequence at the key's own column, or null.
    fn nested(&mut self, owner: usize, is_key: bool, depth: usize) -> Option<Value> {
        self.next_line();
        match self.peek()? {
            Next::Line(col, text) if col > owner => self.block(col, text, depth),
            Next::Line(col, text) if is_key && col == owner && is_entry(text) => {
                self.sequence(col, text, depth)
            }
            _ => {
                self.node(depth)?;
                Some(Value::Null)
            }
        }
    }

    fn sequence(&mut self, col: usize, mut text: &'a str, depth: usize) -> Option<Value> {
        self.node(depth)?;
        let mut items = Vec::new();
        loop {
            let after = &text[1..];
            let rest = after.trim_start_matches(' ');
            items.push(if rest.is_empty() {
                self.nested(col, false, depth + 1)?
            } else {
                let item_col = col + 1 + (after.len() - rest.len());
                self.inline(item_col, rest, col, depth + 1)?
            });
            match self.peek()? {
                Next::Line(c, t) if c == col && is_entry(t) => text = t,
                // Deeper: a continuation line. At the same column, a key
                // ends a sequence that is its mapping's value; whoever
                // called decides whether that line may follow.
                Next::Line(c, _) if c > col => return None,
                _ => return Some(Value::Array(items)),
            }
        }
    }

    fn mapping(&mut self, col: usize, mut text: &'a str, depth: usize) -> Option<Value> {
        self.node(depth)?;
        let mut map = Map::new();
        loop {
            let (key, rest) = split_key(text)?;
            let value = if rest.is_empty() {
                self.nested(col, true, depth + 1)?
            } else {
                self.scalar(rest.trim_start_matches(' '), col, depth + 1)?
            };
            if map.insert(key.to_string(), value).is_some() {
                return None;
            }
            match self.peek()? {
                Next::Line(c, t) if c == col && split_key(t).is_some() => text = t,
                Next::Line(c, _) if c >= col => return None,
                _ => return Some(Value::Object(map)),
            }
        }
    }

    /// A scalar (or one-line JSON value) that is the rest of the current
    /// line, or a literal block scalar starting there. Consumes its lines.
    fn scalar(&mut self, text: &'a str, owner: usize, depth: usize) -> Option<Value> {
        self.node(depth)?;
        if let Some(chomp) = text.strip_prefix('|') {
            let keep_last_break = match chomp {
                "" => true,
                "-" => false,
                // `|+` (keep trailing lines) and indentation indicators
                // (`|2`): left to serde-saphyr.
                _ => return None,
            };
            self.next_line();
            return self.literal(owner, keep_last_break).map(Value::String);
        }
        self.next_line();
        match *text.as_bytes().first()? {
            b'{' | b'[' => {
                let (v, nodes) = plain_json(text, depth)?;
                // The root was counted above, as this scalar.
                self.nodes += nodes - 1;
                (self.nodes <= MAX_NODES).then_some(v)
            }
            b'"' => double_quoted(text).map(Value::String),
            b'\'' => single_quoted(text).map(Value::String),
            _ if is_plain(text) => plain_scalar(text),
            _ => None,
        }
    }

    /// The lines of a literal block scalar whose header belongs to the
    /// entry or key at column `owner`, with clip (`|`) or strip (`|-`)
    /// chomping. Only the common shape: content indentation taken from the
    /// first line, blank lines no longer than that indentation, no tabs in
    /// the indentation.
    fn literal(&mut self, owner: usize, keep_last_break: bool) -> Option<String> {
        let mut indent = None;
        let mut longest_leading_blank = 0;
        let mut text = String::new();
        let mut blanks = 0;
        while let Some(line) = self.line() {
            let spaces = line.len() - line.trim_start_matches(' ').len();
            let rest = &line[spaces..];
            if rest.trim_start_matches([' ', '\t']).is_empty() {
                match indent {
                    _ if rest.contains('\t') => return None,
                    None => longest_leading_blank = longest_leading_blank.max(spaces),
                    Some(i) if spaces > i => return None,
                    Some(_) => {}
                }
                blanks += 1;
                self.next_line();
                continue;
            }
            let i = match indent {
                Some(i) => i,
                None if spaces > owner && spaces >= longest_leading_blank => {
                    indent = Some(spaces);
                    spaces
                }
                // Empty content, or a blank line deeper than the content.
                None => return None,
            };
            if spaces < i {
                break;
            }
            if !text.is_empty() || blanks > 0 {
                for _ in 0..blanks + usize::from(!text.is_empty()) {
                    text.push('\n');
                }
            }
            blanks = 0;
            text.push_str(&line[i..]);
            self.next_line();
        }
        indent?;
        if keep_last_break {
            text.push('\n');
        }
        Some(text)
    }
}

/// `- item` or a lone `-`.
fn is_entry(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

/// A plain `key:` at the start of `text`, and what follows the colon
/// (empty, or starting with a space). Keys are restricted to the characters
/// Kubernetes keys use; null keys (`null: x`) are left to serde-saphyr.
fn split_key(text: &str) -> Option<(&str, &str)> {
    let bytes = text.as_bytes();
    if !bytes.first()?.is_ascii_alphanumeric() && bytes[0] != b'_' {
        return None;
    }
    let len = bytes
        .iter()
        .take_while(|&&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'-'))
        .count();
    let rest = text[len..].strip_prefix(':')?;
    let key = &text[..len];
    if !(rest.is_empty() || rest.starts_with(' ')) || is_null(key) {
        return None;
    }
    // `key:   ` would be null after trailing spaces; rare enough to leave.
    (rest.is_empty() || !rest.trim_start_matches(' ').is_empty()).then_some((key, rest))
}

/// A plain scalar that is the whole rest of a line: no indicator first, no
/// comment, no `: `, no trailing space or colon, no tab.
fn is_plain(text: &str) -> bool {
    let bytes = text.as_bytes();
    let first_ok = match bytes[0] {
        b'-' | b'+' => bytes
            .get(1)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'.'),
        b => !b"?:,[]{}#&*!|>'\"%@`-\t ".contains(&b),
    };
    first_ok
        && !text.ends_with([' ', ':'])
        && !text.contains(": ")
        && !text.contains(" #")
        && !text.contains('\t')
}

/// A double-quoted scalar on one line, with the escapes JSON and YAML
/// share (the rest are left to serde-saphyr).
fn double_quoted(text: &str) -> Option<String> {
    let mut line = JsonLine::new(text);
    let s = line.string()?;
    (line.at == text.len()).then_some(s)
}

/// A single-quoted scalar on one line: `''` is a quote.
fn single_quoted(text: &str) -> Option<String> {
    let inner = text.strip_prefix('\'')?.strip_suffix('\'')?;
    if inner.replace("''", "").contains('\'') {
        return None;
    }
    Some(inner.replace("''", "'"))
}

/// YAML's null spellings (plain scalars only).
fn is_null(s: &str) -> bool {
    matches!(s, "" | "~" | "null" | "Null" | "NULL")
}

/// A plain scalar the way serde-saphyr types it for a `Value`: null, YAML
/// 1.1 booleans, decimal integers and simple decimals; text that cannot be a
/// number in any spelling is a string. `None` for the rest (hex, octal,
/// exponents, `.inf`, underscores...), which serde-saphyr decides.
fn plain_scalar(s: &str) -> Option<Value> {
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
        _ => return Some(Value::String(s.to_string())),
    }
    if let Some(n) = integer(s) {
        return Some(n);
    }
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !s.starts_with('+')
        && let Some((int, frac)) = unsigned.split_once('.')
        && digits(int)
        && digits(frac)
        && !int.starts_with('0')
        && int.len() + frac.len() <= 15
    {
        return serde_json::Number::from_f64(s.parse().ok()?).map(Value::Number);
    }
    // Every spelling of a YAML number is made of these; anything else
    // (`200Gi`, `500m`, `30s`, `0 2 * * *`) is text.
    let numeric = |b: u8| b.is_ascii_hexdigit() || b"xXoObB._+-:".contains(&b);
    if unsigned.bytes().all(numeric) {
        None
    } else {
        Some(Value::String(s.to_string()))
    }
}

/// A decimal integer as YAML and JSON both read it: an optional `-`, no
/// leading zeros, no `-0`, small enough for an `i64`.
fn integer(s: &str) -> Option<Value> {
    let unsigned = s.strip_prefix('-').unwrap_or(s);
    let plain = !unsigned.is_empty()
        && unsigned.len() <= 18
        && unsigned.bytes().all(|b| b.is_ascii_digit())
        && (unsigned == "0" || !unsigned.starts_with('0'))
        && s != "-0";
    plain
        .then(|| s.parse::<i64>().ok().map(Value::from))
        .flatten()
}

/// One-line JSON (what `| tojson` writes, spaces between tokens allowed, as
/// in `{"port": 6379}`), read only where YAML reads it the same way:
/// duplicate keys, numbers other than plain integers, `\u` and `\/`
/// escapes and tabs are where YAML and JSON can disagree, and go to
/// serde-saphyr.
/// Returns the value and its number of nodes; `depth` is where it sits in
/// the document, and nothing deeper than [`MAX_DEPTH`] is read.
fn plain_json(text: &str, depth: usize) -> Option<(Value, usize)> {
    let mut json = JsonLine::new(text);
    let v = json.value(depth)?;
    json.spaces();
    (json.at == text.len()).then_some((v, json.nodes))
}

/// A cursor over one line of JSON.
struct JsonLine<'a> {
    text: &'a str,
    at: usize,
    /// Values read so far.
    nodes: usize,
}

impl<'a> JsonLine<'a> {
    fn new(text: &'a str) -> JsonLine<'a> {
        JsonLine {
            text,
            at: 0,
            nodes: 0,
        }
    }

    fn next_byte(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn spaces(&mut self) {
        while self.next_byte() == Some(b' ') {
            self.at += 1;
        }
    }

    /// Skips spaces, then `byte` if it comes next.
    fn eat(&mut self, byte: u8) -> bool {
        self.spaces();
        let found = self.next_byte() == Some(byte);
        self.at += usize::from(found);
        found
    }

    fn value(&mut self, depth: usize) -> Option<Value> {
        self.nodes += 1;
        if depth > MAX_DEPTH {
            return None;
        }
        self.spaces();
        match self.next_byte()? {
            b'{' => {
                self.at += 1;
                let mut map = serde_json::Map::new();
                if self.eat(b'}') {
                    return Some(Value::Object(map));
                }
                loop {
                    self.spaces();
                    let key = self.string()?;
                    if !self.eat(b':') {
                        return None;
                    }
                    let v = self.value(depth + 1)?;
                    if map.insert(key, v).is_some() {
                        return None;
                    }
                    if self.eat(b'}') {
                        return Some(Value::Object(map));
                    }
                    if !self.eat(b',') {
                        return None;
                    }
                }
            }
            b'[' => {
                self.at += 1;
                let mut items = Vec::new();
                if self.eat(b']') {
                    return Some(Value::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    if self.eat(b']') {
                        return Some(Value::Array(items));
                    }
                    if !self.eat(b',') {
                        return None;
                    }
                }
            }
            b'"' => self.string().map(Value::String),
            b'-' | b'0'..=b'9' => self.integer(),
            _ => {
                let rest = self.text.get(self.at..)?;
                let (word, v) = [
                    ("true", Value::Bool(true)),
                    ("false", Value::Bool(false)),
                    ("null", Value::Null),
                ]
                .into_iter()
                .find(|(word, _)| rest.starts_with(word))?;
                self.at += word.len();
                Some(v)
            }
        }
    }

    /// A string starting at the cursor, with the escapes JSON and YAML
    /// share (`\"`, `\\`, `\n`, `\t`, `\r`, `\b`, `\f`).
    fn string(&mut self) -> Option<String> {
        if self.next_byte()? != b'"' {
            return None;
        }
        self.at += 1;
        let mut out = String::new();
        let mut from = self.at;
        loop {
            match self.next_byte()? {
                b'"' => {
                    out.push_str(self.text.get(from..self.at)?);
                    self.at += 1;
                    return Some(out);
                }
                b'\\' => {
                    out.push_str(self.text.get(from..self.at)?);
                    out.push(match self.text.as_bytes().get(self.at + 1)? {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'n' => '\n',
                        b't' => '\t',
                        b'r' => '\r',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        _ => return None,
                    });
                    self.at += 2;
                    from = self.at;
                }
                // Raw control characters are not JSON.
                0..=0x1f => return None,
                _ => self.at += 1,
            }
        }
    }

    /// An integer (see [`integer`]); anything that goes on like a number
    /// (`1.5`, `1e3`) is refused.
    fn integer(&mut self) -> Option<Value> {
        let start = self.at;
        self.at += usize::from(self.next_byte() == Some(b'-'));
        while self.next_byte().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        if matches!(self.next_byte(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        integer(self.text.get(start..self.at)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::cell::Cell;

    thread_local! {
        /// Documents this thread parsed with and without the fast path
        /// (each fast one checked against serde-saphyr in `document`).
        static READ: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
    }

    pub(super) fn count(fast: bool) {
        READ.with(|r| {
            let (f, s) = r.get();
            r.set(if fast { (f + 1, s) } else { (f, s + 1) });
        });
    }

    #[test]
    fn locate_finds_keys_and_items_in_block_and_flow_style() {
        let doc = "apiVersion: v1\nkind: Service\nspec:\n  type: ClusterIP\n  ports:\n  - {\"name\": \"pg\", \"port\": 5432}\n  - name: b\n    port: 2\n  selector: {\"a/b\": \"x\"}\n";
        let at = |p: &str| {
            locate(doc, p).map(|o| &doc[o..doc[o..].find('\n').map_or(doc.len(), |e| o + e)])
        };
        assert_eq!(at("/spec/type"), Some("type: ClusterIP"));
        assert_eq!(at("/spec/ports/0/port"), Some("\"port\": 5432}"));
        assert_eq!(at("/spec/ports/1"), Some("name: b"));
        assert_eq!(at("/spec/ports/1/port"), Some("port: 2"));
        assert_eq!(at("/spec/selector/a~1b"), Some("\"a/b\": \"x\"}"));
        assert_eq!(at("/kind"), Some("kind: Service"));
        // Not in the document (nor the key "", which `/` names); "" is
        // where the document's content starts, after comments and `---`.
        assert_eq!(at("/spec/bogus"), None);
        assert_eq!(at("/spec/ports/2"), None);
        assert_eq!(at("/"), None);
        assert_eq!(at(""), Some("apiVersion: v1"));
        assert_eq!(locate("# made by hand\n---\n\n  kind: A\n", ""), Some(22));
        assert_eq!(locate("# only a comment\n", ""), None);
        // What comes before a syntax error is still found; nothing after it.
        assert_eq!(locate("a: 1\nb: [1\n", "/a"), Some(0));
        assert_eq!(locate("a: 1\nb: [1\n", "/c"), None);
    }

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
        // Small blueprints render on the calling thread.
        READ.with(|r| r.set((0, 0)));
        for (file, templates) in runs {
            let path = file.to_string_lossy();
            if let Err(d) = crate::pipeline::load(&path, templates.as_deref()) {
                panic!("{path}: {}", d.render(false));
            }
        }
        // Everything the built-in and example templates write stays inside
        // what the fast path reads: falling back would only cost time, so
        // this guards speed, while `document` guards correctness.
        let (fast, slow) = READ.with(Cell::get);
        assert!(fast > 150, "only {fast} documents read by the fast path");
        assert_eq!(slow, 0, "{slow} documents needed serde-saphyr");
    }

    fn plain(doc: &str) -> Option<Value> {
        serde_saphyr::from_str::<Value>(doc).ok()
    }

    /// The fast path either agrees with serde-saphyr or steps aside.
    /// Whether it took the document.
    fn agrees(doc: &str) -> bool {
        let got = document(doc).ok();
        assert_eq!(got, plain(doc), "differs for:\n{doc}");
        fast_path(doc).is_some()
    }

    /// `s` as a mapping value, a sequence entry and a key: how many of the
    /// three the fast path read (each one checked by [`agrees`]).
    fn agrees_in_block_positions(s: &str) -> usize {
        [format!("k: {s}\n"), format!("- {s}\n"), format!("{s}: v\n")]
            .iter()
            .filter(|doc| agrees(doc))
            .count()
    }

    /// Everything the built-in templates write, read without serde-saphyr.
    #[test]
    fn reads_what_templates_write() {
        let doc = concat!(
            "# a comment\n",
            "apiVersion: apps/v1\n",
            "metadata: {\"name\":\"a\",\"labels\":{\"x\":\"y\"}}\n",
            "spec:\n",
            "  replicas: 3\n",
            "  ratio: 1.5\n",
            "  version: \"5.0\"\n",
            "  quoted: 'it''s'\n",
            "  empty:\n",
            "  emptyList: []\n",
            "\n",
            "  containers: [{\"name\":\"db\",\"ports\":[1,2]}]\n",
            "  env:\n",
            "  - {\"name\":\"A\",\"value\":\"1\"}\n",
            "  - - {\"name\":\"nested\",\"v\":[]}\n",
            "    - plain words, with {braces} and a#hash\n",
            "  -\n",
            "    deeper: true\n",
            "  - name: x\n",
            "    # between keys\n",
            "    command:\n",
            "    - /bin/sh\n",
            "    - -c\n",
            "    script: |\n",
            "      #!/bin/sh\n",
            "\n",
            "        indented more\n",
            "      echo {\"not\":\"json here\"}\n",
            "\n",
            "    stripped: |-\n",
            "      one\n",
            "      two\n",
            "  tail: end\n",
        );
        let v = fast_path(doc).expect("the fast path reads template output");
        assert_eq!(v["spec"]["env"][2]["deeper"], Value::Bool(true));
        assert_eq!(
            v["spec"]["env"][3]["script"],
            "#!/bin/sh\n\n  indented more\necho {\"not\":\"json here\"}\n"
        );
        agrees(doc);
    }

    #[test]
    fn json_looking_text_inside_scalars_stays_text() {
        // Read by the fast path: a literal block is text, whatever it holds.
        let doc = "config: |\n  - {\"name\":\"inside\",\"x\":1}\n  key: {\"also\":\"inside!!\"}\n";
        assert!(fast_path(doc).is_some());
        agrees(doc);
        for doc in [
            // Folded blocks, multi-line quoted and plain scalars: left alone.
            "config: >\n  - {\"name\":\"inside\",\"x\":1}\n",
            "a: 'x\n  - {\"name\":\"inside\",\"x\":1}\n  '\n",
            "a: word\n  - {\"name\":\"inside\",\"x\":1}\n",
        ] {
            assert!(fast_path(doc).is_none(), "fast path taken for:\n{doc}");
            agrees(doc);
        }
    }

    #[test]
    fn spaced_json_is_read_as_json() {
        for doc in [
            "a: {\"spaced\": 1, \"more\": [2, 3]}\n",
            "a: [ \"x\" , {\"k\" : \"v w\"} ]\n",
            "a: {\"name\":\"x\",\"v\":1}   \n",
            "a: {\"s\": \"a \\\" b\", \"t\": \"\\\\\"}\n",
            // Spaces inside strings are content, not padding.
            "a: [\"a b\", \" \", \"\"]\n",
            "a: {\"esc\":\"l1\\nl2\\tt\\r\\b\\f\",\"é\":\"日本\"}\n",
            "a: [0, -1, 17, 123456789012345678, -123456789012345678, true, false, null, {}, []]\n",
            "a: {\"nested\":{\"deeper\":[{\"x\":[[1]]}]},\"k\":{ }}\n",
        ] {
            assert!(fast_path(doc).is_some(), "fast path refused:\n{doc}");
            agrees(doc);
        }
    }

    #[test]
    fn only_canonical_json_is_read_as_json() {
        for doc in [
            "a: {\"dup\":1,\"dup\":2,\"pad\":0}\n",
            "a: {\"n\":1e5,\"padding\":true}\n",
            "a: {\"name\":\"x\",\"v\":1} # comment\n",
            "a: &anchor {\"name\":\"x\",\"v\":1}\nb: *anchor\n",
            "\"quoted\": {\"name\":\"x\",\"v\":1}\n",
            "a: [1, two]\n",
            // Spellings YAML and JSON may read differently.
            "a: [1.5]\n",
            "a: [-0]\n",
            "a: [007]\n",
            "a: [1234567890123456789012]\n",
            "a: [\"\\u0041\"]\n",
            "a: [\"\\/\"]\n",
            "a: [\"\\ud83d\\ude00\"]\n",
            "a: [1,\t2]\n",
            // Not JSON at all.
            "a: [1,]\n",
            "a: {\"k\" 1}\n",
            "a: {\"k\":1,}\n",
            "a: [\"open]\n",
            "a: [truex]\n",
            "a: [1] [2]\n",
        ] {
            assert!(fast_path(doc).is_none(), "fast path taken for:\n{doc}");
            agrees(doc);
        }
    }

    /// Literal block scalars in every shape around the one the reader
    /// knows: each either read identically or left to serde-saphyr.
    #[test]
    fn literal_blocks_agree_with_serde_saphyr() {
        let bodies = [
            "  a\n  b\n",
            "  a\n\n  b\n",
            "  a\n  \n  b\n",
            "  a\n      \n  b\n",
            "\n  a\n",
            "    \n  a\n",
            "  \n    a\n",
            "  a\n\n\n",
            "  a\n  ",
            "  a",
            "  a\n    b\n  c\n",
            "    a\n  b\n",
            "  # not a comment\n  a\n",
            "  a\n # trailing comment\n",
            "  a\tb\n",
            "  \ta\n",
            "\ta\n",
            "  a\n\t\n",
            "  a\n  \t\n",
            "",
            "\n",
            "  ---\n",
            "b: 1\n",
            "  a\nb: 1\n",
            "  a\n  b: 1\n",
            "  a\n\nb: 1\n",
            "  a\n   b\n",
            "  é ü 日本\n",
        ];
        let mut fast = 0;
        for header in ["|", "|-", "|+", "|2", ">", "| # c", "|  "] {
            for body in bodies {
                for doc in [
                    format!("k: {header}\n{body}"),
                    format!("- {header}\n{body}"),
                    format!("- k: {header}\n{body}"),
                    format!("x:\n  k: {header}\n{body}"),
                    format!("x:\n- k: {header}\n{}", body.replace('\n', "\n  ")),
                ] {
                    fast += usize::from(agrees(&doc));
                }
            }
        }
        assert!(fast > 60, "only {fast} read by the fast path");
        assert!(fast_path("k: |\n  a\n\n  b\n").is_some());
        assert!(fast_path("- k: |-\n    a\n").is_some());
    }

    #[test]
    fn quoted_scalars_and_text_beyond_ascii() {
        let scalars = [
            "\"\"",
            "''",
            "\"a\\\"b\"",
            "\"\\/\"",
            "\"\\b\\f\\u0000\\u00e9\"",
            "\"\\ud83d\\ude00\"",
            "\"\\x41\"",
            "\"a\tb\"",
            "\"unterminated",
            "\"a\" b",
            "'a' b",
            "'a''",
            "''''",
            "'a'''",
            "'a''b'",
            "'# not a comment'",
            "café",
            "日本語",
            "a\u{a0}",
            "\u{a0}a",
            "a\u{2028}b",
            "a\u{85}b",
            "\u{feff}a",
            "a\u{fffd}",
            "😀",
            "\"😀\"",
        ];
        let mut fast = 0;
        for s in scalars {
            fast += agrees_in_block_positions(s);
            fast += usize::from(agrees(&format!("k: {{\"j\":[{s}]}}\n")));
        }
        // Enough of them are read by the fast path for the comparison to
        // mean something.
        assert!(fast >= 30, "only {fast} read by the fast path");
        assert!(fast_path("k: café\n- x").is_none());
        assert!(fast_path("k: \"café ☕\"\n").is_some());
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
        let mut fast = 0;
        for s in scalars {
            fast += agrees_in_block_positions(s);
            // Flow YAML, not JSON: always serde-saphyr's.
            agrees(&format!("k: [{s}]\n"));
        }
        assert!(fast >= 100, "only {fast} read by the fast path");
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

    /// Random one-byte edits of documents mixing every construct templates
    /// use: whatever the fast path accepts must equal serde-saphyr's result
    /// (`document` asserts it), and nothing panics.
    #[test]
    fn mutations_agree_with_serde_saphyr() {
        let seeds = [
            "metadata: {\"name\":\"db\",\"labels\":{\"app\":\"x\"}}\nspec:\n  replicas: 3\n  ratio: 1.5\n  size: 200Gi\n  on: yes\n  empty:\n  quoted: 'a''b'\n  dq: \"x\\ty\"\n  list:\n  - {\"name\":\"A\",\"value\":\"1\"}\n  - plain words\n  - [1,\"two\",{\"k\":\"v\"}]\n  script: |\n    #!/bin/sh\n    echo {\"not\":\"json here\"}\n  stripped: |-\n    one\n    two\n",
            "kind: ConfigMap\ndata:\n  a.conf: |\n    x = 1\n\n      y: [2]\n    # z\n  b.sh: |-\n    run\nlist:\n- - x\n  - 'y'\n-\n  k: \"v\"\n- k: v\n  l:\n  - 1\n  - -2.5\n  m: ~\nname: café\n",
        ];
        let bytes: &[u8] = b":-{}[]'\"#|> \n\t,&*!0a~\r";
        let mut next = super::super::test_random(0x9e37_79b9_7f4a_7c15);
        for seed in seeds {
            assert!(agrees(seed), "fast path refused the seed:\n{seed}");
            let (mut tried, mut fast) = (0, 0);
            for _ in 0..4000 {
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
                    tried += 1;
                    fast += usize::from(agrees(&doc));
                }
            }
            // Most edits keep the document inside the slice the reader
            // knows, so the comparison above is not vacuous.
            assert!(
                fast * 8 > tried,
                "{fast} of {tried} edits read by the fast path"
            );
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
}
