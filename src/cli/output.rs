//! Where and how the CLI prints: colour only on a terminal (or when asked),
//! diagnostics on stderr, data on stdout.

use std::io::{IsTerminal, Write};

use super::{ColorChoice, Format};
use crate::diagnostics::Diagnostics;

/// Output settings for one run.
pub struct Output {
    /// Colour on stderr (diagnostics, notes).
    pub color: bool,
    /// Colour on stdout (explain, plan); decided separately so piping
    /// stdout to a file never captures escape codes.
    pub color_stdout: bool,
    pub format: Format,
}

impl Output {
    pub fn new(choice: ColorChoice, format: Format) -> Self {
        let auto = |tty: bool| match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && tty,
        };
        Output {
            color: auto(std::io::stderr().is_terminal()),
            color_stdout: auto(std::io::stdout().is_terminal()),
            format,
        }
    }

    pub fn json(&self) -> bool {
        self.format == Format::Json
    }

    /// Writes data to stdout. A closed pipe (`| head`) is not an error.
    pub fn stdout(&self, s: &str) {
        self.stdout_all([s]);
    }

    /// Writes many pieces of data to stdout in large writes: a rendered
    /// stream is tens of thousands of objects, and a write (and flush) per
    /// object was a system call each.
    pub fn stdout_all<'a>(&self, parts: impl IntoIterator<Item = &'a str>) {
        let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
        for part in parts {
            if out.write_all(part.as_bytes()).is_err() {
                return;
            }
        }
        let _ = out.flush();
    }

    /// Writes a note to stderr.
    pub fn note(&self, s: &str) {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{s}");
    }

    /// Prints diagnostics: rendered on stderr for text output, as JSON on
    /// stdout with `--output json` when `as_json`.
    pub fn diagnostics(&self, d: &Diagnostics, as_json: bool) {
        if d.is_empty() {
            return;
        }
        if self.json() && as_json {
            let v = serde_json::json!({ "diagnostics": d.items() });
            self.stdout(&format!(
                "{}\n",
                serde_json::to_string_pretty(&v).unwrap_or_default()
            ));
        } else {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(d.render(self.color).as_bytes());
        }
    }

    /// Prints one error that belongs to no file (a missing template, a
    /// folder that cannot be written): text on stderr, or with `--output
    /// json` the same `{"diagnostics": [...]}` document as blueprint errors.
    pub fn error(&self, message: impl Into<String>, hint: impl Into<String>) {
        let mut d = Diagnostics::new();
        d.push(crate::diagnostics::Diagnostic::error(message).hint(hint));
        self.diagnostics(&d, true);
    }

    /// Bold text for stdout.
    pub fn bold(&self, s: &str) -> String {
        if self.color_stdout {
            format!("\x1b[1m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    /// Dim text for stdout.
    pub fn dim(&self, s: &str) -> String {
        if self.color_stdout {
            format!("\x1b[2m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
}
