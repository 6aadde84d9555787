//! Diagnostics: what went wrong, where (file:line:column with a source
//! snippet), and how to fix it.
//!
//! Every stage reports problems as [`Diagnostic`]s instead of returning early,
//! so a user sees all errors of a file at once.

use std::ops::Range;

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};

/// How bad a diagnostic is. Errors stop the pipeline before anything is
/// written or changed; warnings are printed and the command goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// One problem, optionally pointing at a span of a source file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// What is wrong, one sentence.
    pub message: String,
    /// The file the span points into (blueprint, template or profile).
    pub file: Option<String>,
    /// Byte range in `file`.
    #[serde(skip)]
    pub span: Option<Range<usize>>,
    /// 1-based line and column of the span start, filled in by
    /// [`Diagnostics::locate`] so JSON output and tests can use them.
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Short label printed under the highlighted source.
    pub label: Option<String>,
    /// How to fix it.
    pub hint: Option<String>,
    /// For a problem in a rendered object: the JSON pointer of the field it
    /// is about, by which the renderer finds the template line that wrote it.
    #[serde(skip)]
    pub pointer: Option<String>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>) -> Self {
        Self::new(Severity::Error, message)
    }

    pub fn warning(message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, message)
    }

    fn new(severity: Severity, message: impl Into<String>) -> Self {
        Diagnostic {
            severity,
            message: message.into(),
            file: None,
            span: None,
            line: None,
            column: None,
            label: None,
            hint: None,
            pointer: None,
        }
    }

    /// Points the diagnostic at `span` of the file it is later attached to.
    pub fn at(mut self, span: Range<usize>) -> Self {
        self.span = Some(span);
        self
    }

    pub fn in_file(mut self, file: impl Into<String>) -> Self {
        self.file = Some(file.into());
        self
    }

    /// Names `file` for every diagnostic of `diags` that names none yet:
    /// a later stage saying where an earlier one's findings are.
    pub fn name_file(diags: &mut [Diagnostic], file: &str) {
        for d in diags.iter_mut().filter(|d| d.file.is_none()) {
            d.file = Some(file.to_string());
        }
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// The JSON pointer of the rendered field the diagnostic is about.
    pub fn pointer(mut self, pointer: impl Into<String>) -> Self {
        self.pointer = Some(pointer.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// A source file diagnostics point into.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: String,
    pub text: String,
    /// Byte offset of each line's start, built on first use: a file with
    /// thousands of errors is located in linear time, not quadratic.
    line_starts: std::sync::OnceLock<Vec<usize>>,
}

impl SourceFile {
    pub fn new(path: impl Into<String>, text: impl Into<String>) -> Self {
        SourceFile {
            path: path.into(),
            text: text.into(),
            line_starts: std::sync::OnceLock::new(),
        }
    }

    fn line_starts(&self) -> &[usize] {
        self.line_starts.get_or_init(|| {
            std::iter::once(0)
                .chain(self.text.match_indices('\n').map(|(i, _)| i + 1))
                .collect()
        })
    }

    /// Index (0-based) of the line holding byte `offset`.
    fn line_index(&self, offset: usize) -> usize {
        self.line_starts()
            .partition_point(|&start| start <= offset)
            .saturating_sub(1)
    }

    /// 1-based line and column (in characters) of a byte offset. Offsets past
    /// the end or inside a UTF-8 sequence are clamped, never panic.
    pub fn line_column(&self, offset: usize) -> (usize, usize) {
        let offset = clamp_span(&self.text, offset..offset).start;
        let line = self.line_index(offset);
        let start = self.line_starts()[line];
        let column = self.text[start..offset].chars().count() + 1;
        (line + 1, column)
    }

    /// The whole lines `span` touches, as (text, 1-based first line, span
    /// within that text): what a snippet shows, without handing the
    /// renderer the whole file for every diagnostic.
    fn excerpt(&self, span: Range<usize>) -> (&str, usize, Range<usize>) {
        let span = clamp_span(&self.text, span);
        let starts = self.line_starts();
        let first = self.line_index(span.start);
        let last = self.line_index(span.end.saturating_sub(1).max(span.start));
        let from = starts[first];
        let to = starts.get(last + 1).copied().unwrap_or(self.text.len());
        (
            &self.text[from..to],
            first + 1,
            span.start - from..span.end - from,
        )
    }
}

/// A collection of diagnostics from one run, with the files they point into.
#[derive(Debug, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
    files: Vec<SourceFile>,
}

impl Diagnostics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a source file so spans into it can be shown.
    pub fn add_file(&mut self, file: SourceFile) {
        if !self.files.iter().any(|f| f.path == file.path) {
            self.files.push(file);
        }
    }

    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.items.push(diagnostic);
    }

    pub fn extend(&mut self, diagnostics: impl IntoIterator<Item = Diagnostic>) {
        self.items.extend(diagnostics);
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    pub fn error_count(&self) -> usize {
        self.items.iter().filter(|d| d.is_error()).count()
    }

    pub fn warning_count(&self) -> usize {
        self.items.len() - self.error_count()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Fills in line and column for every diagnostic with a span, and sorts
    /// them by file and position so output reads top to bottom.
    pub fn locate(&mut self) {
        for d in &mut self.items {
            if let (Some(path), Some(span)) = (&d.file, &d.span)
                && let Some(f) = self.files.iter().find(|f| &f.path == path)
            {
                let (line, column) = f.line_column(span.start);
                d.line = Some(line);
                d.column = Some(column);
            }
        }
        self.items.sort_by(|a, b| {
            (&a.file, a.span.as_ref().map(|s| s.start))
                .cmp(&(&b.file, b.span.as_ref().map(|s| s.start)))
        });
    }

    pub fn items(&self) -> &[Diagnostic] {
        &self.items
    }

    /// Renders all diagnostics rustc-style, followed by a one-line summary.
    pub fn render(&self, color: bool) -> String {
        let renderer = if color {
            Renderer::styled()
        } else {
            Renderer::plain()
        };
        let mut out = String::new();
        for d in &self.items {
            out.push_str(&renderer.render(&self.report(d)));
            out.push_str("\n\n");
        }
        let (errors, warnings) = (self.error_count(), self.warning_count());
        if errors > 0 || warnings > 0 {
            out.push_str(&summary(errors, warnings));
            out.push('\n');
        }
        out
    }

    fn report<'a>(&'a self, d: &'a Diagnostic) -> Vec<Group<'a>> {
        let level = match d.severity {
            Severity::Error => Level::ERROR,
            Severity::Warning => Level::WARNING,
        };
        let file = d
            .file
            .as_ref()
            .and_then(|p| self.files.iter().find(|f| &f.path == p));
        let title = level.primary_title(d.message.as_str());
        let mut group = match (file, &d.span) {
            (Some(f), Some(span)) => {
                let (text, line, span) = f.excerpt(span.clone());
                let mut ann = AnnotationKind::Primary.span(span);
                if let Some(label) = &d.label {
                    ann = ann.label(label.as_str());
                }
                title.element(
                    Snippet::source(text)
                        .line_start(line)
                        .path(f.path.as_str())
                        .fold(true)
                        .annotation(ann),
                )
            }
            // A file without a position (or one not loaded, such as a
            // template) is still named.
            _ => match &d.file {
                Some(path) => {
                    let mut origin = annotate_snippets::Origin::path(path.as_str());
                    // A position known without a text to show (a file that
                    // is not UTF-8).
                    if let (Some(line), Some(column)) = (d.line, d.column) {
                        origin = origin.line(line).char_column(column);
                    }
                    title.element(origin)
                }
                None => Group::with_title(title),
            },
        };
        if let Some(hint) = &d.hint {
            group = group.element(Level::HELP.message(hint.as_str()));
        }
        vec![group]
    }
}

fn summary(errors: usize, warnings: usize) -> String {
    let plural = |n: usize, word: &str| {
        if n == 1 {
            format!("{n} {word}")
        } else {
            format!("{n} {word}s")
        }
    };
    match (errors, warnings) {
        (0, w) => plural(w, "warning"),
        (e, 0) => plural(e, "error"),
        (e, w) => format!("{}, {}", plural(e, "error"), plural(w, "warning")),
    }
}

/// Keeps spans inside the text and on character boundaries, so a wrong span
/// can never make the renderer panic.
fn clamp_span(text: &str, span: Range<usize>) -> Range<usize> {
    let fix = |mut i: usize| {
        i = i.min(text.len());
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let start = fix(span.start);
    let end = fix(span.end.max(start));
    start..end
}

/// A key as one step of a JSON pointer (RFC 6901): `~` and `/` escaped.
pub fn pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_tokens_escape_tilde_before_slash() {
        // `~1` must not become `~01`: `~` is escaped first.
        assert_eq!(pointer_token("a/b~c"), "a~1b~0c");
        assert_eq!(pointer_token("~1"), "~01");
        assert_eq!(
            pointer_token("app.kubernetes.io/name"),
            "app.kubernetes.io~1name"
        );
    }

    #[test]
    fn line_column_counts_characters_not_bytes() {
        let f = SourceFile::new("b.toml", "a = 1\nné = \"x\"\n");
        assert_eq!(f.line_column(0), (1, 1));
        assert_eq!(f.line_column(6), (2, 1));
        // 'é' is two bytes; the '=' after "né " is the 4th character.
        assert_eq!(f.line_column(10), (2, 4));
        assert_eq!(f.line_column(10_000), (3, 1));
    }

    #[test]
    fn line_index_agrees_with_counting() {
        let text = "a\n\nné = 1\r\nlast";
        let f = SourceFile::new("c.toml", text);
        for offset in 0..=text.len() + 2 {
            let o = clamp_span(text, offset..offset).start;
            let before = &text[..o];
            let line = before.matches('\n').count() + 1;
            let start = before.rfind('\n').map_or(0, |i| i + 1);
            assert_eq!(
                f.line_column(offset),
                (line, before[start..].chars().count() + 1),
                "{offset}"
            );
        }
        // A snippet shows the lines of the span only.
        assert_eq!(f.excerpt(3..7), ("né = 1\r\n", 3, 0..4));
        assert_eq!(f.excerpt(0..4), ("a\n\nné = 1\r\n", 1, 0..4));
        assert_eq!(f.excerpt(50..60), ("last", 4, 4..4));
    }

    #[test]
    fn render_shows_path_line_column_and_hint() {
        let mut d = Diagnostics::new();
        d.add_file(SourceFile::new("x.toml", "[target]\ncluster = 3\n"));
        d.push(
            Diagnostic::error("`cluster` must be a string")
                .in_file("x.toml")
                .at(19..20)
                .label("found an integer")
                .hint("quote it: cluster = \"aks-prod\""),
        );
        d.locate();
        let text = d.render(false);
        assert!(text.contains("x.toml:2:11"), "{text}");
        assert!(text.contains("help: quote it"), "{text}");
        assert!(text.ends_with("1 error\n"), "{text}");
        assert_eq!(d.items()[0].line, Some(2));
        assert_eq!(d.items()[0].column, Some(11));
    }

    #[test]
    fn out_of_range_spans_do_not_panic() {
        let mut d = Diagnostics::new();
        d.add_file(SourceFile::new("x.toml", "é"));
        d.push(Diagnostic::error("x").in_file("x.toml").at(1..99));
        d.locate();
        assert!(d.render(false).contains("x.toml"));
    }
}
