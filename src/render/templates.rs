//! Running the catalog's minijinja templates and turning their output into
//! checked objects.

use minijinja::value::{Serde, Value as JinjaValue};
use minijinja::{Environment, Error as JinjaError, UndefinedBehavior};
use serde_json::Value;

use super::RenderErrors;
use super::checks;
use super::object::{DesiredObject, Wave};
use super::strict;
use crate::catalog::{Catalog, Origin};
use crate::compile::{DesiredState, Workload};
use crate::diagnostics::{Diagnostic, SourceFile};

/// Instructions one template render may run: ample for any sensible
/// template (the built-in ones need a few thousand), about a second of work
/// for a runaway one.
const TEMPLATE_FUEL: u64 = 20_000_000;

/// The most one render of one template may write. Fuel bounds the number
/// of instructions, not what they write (`{{ "x" * 100000000 }}` is one
/// instruction): without a cap, a loop of those would take gigabytes before
/// any check saw the text. The built-in templates write at most a few KiB,
/// and the API server takes no object over 1.5 MiB (etcd's request limit),
/// so 8 MiB leaves room for several objects at that limit.
const MAX_TEMPLATE_OUTPUT: usize = 8 << 20;

/// Where a template's output starts: more than most templates write.
const CAPPED_START: usize = 4096;

/// A template's output, refusing to grow past [`MAX_TEMPLATE_OUTPUT`].
struct Capped(Vec<u8>);

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + buf.len() > MAX_TEMPLATE_OUTPUT {
            return Err(std::io::Error::other("template output too large"));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A template environment holding every template of a catalog.
pub struct Renderer<'c> {
    env: Environment<'c>,
    catalog: &'c Catalog,
    /// Set when a platform team's templates are in use: every object is
    /// then validated against the Kubernetes and CRD schemas. The built-in
    /// templates' objects are validated by the test suite instead.
    strict: Option<&'static strict::Validator>,
    /// For each template whose output went past [`MAX_TEMPLATE_OUTPUT`],
    /// the template file and byte of the write that did (see
    /// [`Self::over_cap_error`]).
    over_cap: crate::parallel::OnceMap<String, Option<(String, usize)>>,
}

impl<'c> Renderer<'c> {
    /// Compiles every `.j2` file of the catalog; syntax errors are reported
    /// for all templates at once, naming file and line.
    pub fn new(catalog: &'c Catalog) -> Result<Renderer<'c>, RenderErrors> {
        let mut env = Environment::new();
        // A typo in a template must fail loudly, not render an empty string.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // A platform team's template with a runaway loop fails with its
        // name instead of hanging the render; the built-in templates use
        // a few thousand instructions per render.
        env.set_fuel(Some(TEMPLATE_FUEL));
        // Values are interpolated verbatim (names are validated DNS labels);
        // free-form user data goes through `| tojson`, which is valid YAML.
        // JSON auto-escaping would quote values inside scripts and config files.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        super::filters::register(&mut env);
        let mut errors = RenderErrors::default();
        for f in catalog.files().filter(|f| f.name.ends_with(".j2")) {
            let compiled =
                crate::panics::contain(|| env.add_template_owned(f.name.clone(), f.source.clone()));
            let d = match compiled {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => template_error(catalog, &e),
                Err(panic) => compiler_failure(f, &panic),
            };
            errors.diagnostics.push(d);
            errors
                .sources
                .push(SourceFile::new(f.display_path(), f.source.clone()));
        }
        let platform = catalog
            .files()
            .any(|f| matches!(f.origin, Origin::PlatformTeam(_)));
        let strict = match platform.then(strict::Validator::embedded) {
            None => None,
            Some(Ok(v)) => Some(v),
            Some(Err(e)) => {
                errors.diagnostics.push(Diagnostic::error(format!(
                    "internal error: the built-in schemas do not load ({e}); please report it"
                )));
                None
            }
        };
        if errors.diagnostics.is_empty() {
            Ok(Renderer {
                env,
                catalog,
                strict,
                over_cap: Default::default(),
            })
        } else {
            Err(errors)
        }
    }

    /// Renders one workload's objects in `workload.toml` order.
    pub fn workload(
        &self,
        state: &DesiredState,
        w: &Workload,
    ) -> Result<Vec<DesiredObject>, RenderErrors> {
        let mut errors = RenderErrors::default();
        let bp = JinjaValue::from(Serde(&state.blueprint));
        let target = JinjaValue::from(Serde(&state.target));
        let wv = JinjaValue::from(Serde(w));
        let base =
            minijinja::context! { bp => bp.clone(), target => target.clone(), w => wv.clone() };
        let pod_template = format!("engines/{}/pod.yaml.j2", w.engine.name);
        let pod = match self.render_yaml(&pod_template, base.clone(), w, &mut errors) {
            Some(mut out) if out.docs.len() == 1 => {
                let (at, mut pod) = out.docs.pop().unwrap_or((0..0, Value::Null));
                checks::pod_fragment(&pod, w, &pod_template, &mut errors.diagnostics);
                if let Some(v) = self.strict.filter(|_| errors.diagnostics.is_empty()) {
                    checks::pod_fragment_schema(&pod, v, &pod_template, &mut errors.diagnostics);
                }
                let rendering = Rendering {
                    template: &pod_template,
                    ctx: &base,
                    text: &out.text,
                    workload: w,
                };
                self.place(&mut errors, 0, &rendering, at);
                // Templates may rely on every key being there.
                if let Some(map) = pod.as_object_mut() {
                    for key in ["initContainers", "volumes"] {
                        map.entry(key).or_insert_with(|| Value::Array(Vec::new()));
                    }
                    map.entry("configFiles")
                        .or_insert_with(|| Value::Object(Default::default()));
                }
                pod
            }
            Some(_) => {
                errors.diagnostics.push(
                    Diagnostic::error(format!("{pod_template} must render exactly one YAML mapping (containers, volumes, configFiles)"))
                        .in_file(self.display_path(&pod_template)),
                );
                Value::Null
            }
            None => Value::Null,
        };
        if !errors.diagnostics.is_empty() {
            Diagnostic::name_file(&mut errors.diagnostics, &self.display_path(&pod_template));
            return Err(errors);
        }
        // One flat map: a merged context (`..base`) looks every name up twice.
        let ctx = minijinja::context! { bp, target, w => wv, pod => JinjaValue::from(Serde(&pod)) };
        let mut objects = Vec::new();
        // The template that wrote each object, and where in its output: a
        // problem the checks across objects find is pointed at a template
        // line by rendering that template again (only then).
        let mut origins: Vec<(&str, std::ops::Range<usize>)> = Vec::new();
        for name in &self.catalog.manifest.objects {
            let Some(out) = self.render_yaml(name, ctx.clone(), w, &mut errors) else {
                continue;
            };
            for (at, body) in out.docs {
                let before = errors.diagnostics.len();
                checks::object(&body, w, name, &mut errors.diagnostics);
                // Only an object the guard rails passed: a nameless or
                // unknown kind of object is reported once, by them.
                if let Some(v) = self.strict.filter(|_| errors.diagnostics.len() == before) {
                    checks::schema(&body, v, name, &mut errors.diagnostics);
                }
                if errors.diagnostics.len() > before {
                    let rendering = Rendering {
                        template: name,
                        ctx: &ctx,
                        text: &out.text,
                        workload: w,
                    };
                    self.place(&mut errors, before, &rendering, at);
                    let file = self.rendered_name(name, w);
                    Diagnostic::name_file(&mut errors.diagnostics[before..], &file);
                    self.blame_metadata_override(&mut errors.diagnostics[before..]);
                    continue;
                }
                objects.push(to_desired(body, w));
                origins.push((name, at));
            }
        }
        for (i, d) in checks::workload_consistency(&objects) {
            let before = errors.diagnostics.len();
            errors.diagnostics.push(d);
            let (template, at) = &origins[i];
            // Templates are deterministic: the same text as the first time.
            let text = self
                .env
                .get_template(template)
                .and_then(|t| t.render(ctx.clone()));
            if let Ok(text) = text {
                let rendering = Rendering {
                    template,
                    ctx: &ctx,
                    text: &text,
                    workload: w,
                };
                self.place(&mut errors, before, &rendering, at.clone());
            }
        }
        if errors.diagnostics.is_empty() {
            Ok(objects)
        } else {
            Diagnostic::name_file(&mut errors.diagnostics, &self.display_path_for_object(w));
            Err(errors)
        }
    }

    /// Ownership labels come from `kubernetes/_metadata.j2`; when a platform
    /// team overrides it, a missing label is most likely that file's doing,
    /// not the object template's that reports it.
    fn blame_metadata_override(&self, diagnostics: &mut [Diagnostic]) {
        let Some(meta) = self
            .catalog
            .file("kubernetes/_metadata.j2")
            .filter(|f| f.overrides_builtin)
        else {
            return;
        };
        for d in diagnostics
            .iter_mut()
            .filter(|d| d.message.contains("lacks the label"))
        {
            d.hint = Some(format!(
                "the labels come from the metadata macros, which {} overrides: check that its labels() and metadata() keep w.labels",
                meta.display_path()
            ));
        }
    }

    fn display_path(&self, name: &str) -> String {
        self.catalog
            .file(name)
            .map_or_else(|| format!("templates/{name}"), |f| f.display_path())
    }

    /// Names a template's output for one workload in diagnostics.
    fn rendered_name(&self, name: &str, w: &Workload) -> String {
        format!(
            "{} (rendered for workload {})",
            self.display_path(name),
            w.name
        )
    }

    fn display_path_for_object(&self, w: &Workload) -> String {
        format!("(rendered objects of workload {})", w.name)
    }

    /// Points each diagnostic from `first` on that names a rendered field
    /// (a check's or the schema's) at the template line that wrote the
    /// field, when that can be told; `doc` is where the document is in the
    /// output.
    fn place(
        &self,
        errors: &mut RenderErrors,
        first: usize,
        out: &Rendering<'_>,
        doc: std::ops::Range<usize>,
    ) {
        let RenderErrors {
            diagnostics,
            sources,
        } = errors;
        let text = &out.text[doc.clone()];
        for d in diagnostics.iter_mut().skip(first) {
            if d.file.is_some() {
                continue;
            }
            let Some(mut pointer) = d.pointer.as_deref() else {
                continue;
            };
            // A missing field (a nameless object) is pointed at the
            // nearest enclosing one that is there, at worst the document.
            let found = loop {
                if let Some(x) = super::parse::locate(text, pointer) {
                    break Some(x);
                }
                if pointer.is_empty() {
                    break None;
                }
                pointer = pointer.rsplit_once('/').map_or("", |(parent, _)| parent);
            };
            if let Some(x) = found {
                self.at_source(d, out, doc.start + x, sources);
            }
        }
    }

    /// Points `d` at the template line that wrote byte `x` of the output,
    /// labelled with what that line became. `false` (and `d` unchanged)
    /// when that cannot be told.
    fn at_source(
        &self,
        d: &mut Diagnostic,
        out: &Rendering<'_>,
        x: usize,
        sources: &mut Vec<SourceFile>,
    ) -> bool {
        let (text, w) = (out.text, out.workload);
        // Positions from a YAML parser's columns may fall inside a character.
        let x = floor_char_boundary(text, x);
        let Some((file, pos)) = self.written_by(out.template, out.ctx, x) else {
            return false;
        };
        let rendered_line = text[..x].matches('\n').count() + 1;
        let line_start = text[..x].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[x..].find('\n').map_or(text.len(), |i| x + i);
        add_source(sources, file);
        let rendered = excerpt(text, line_start..line_end, x);
        let src = &file.source;
        let src_start = src[..pos].rfind('\n').map_or(0, |i| i + 1);
        let src_end = src[pos..].find('\n').map_or(src.len(), |i| pos + i);
        // The rendered line is shown when it differs from the template's.
        let label = if rendered == src[src_start..src_end] {
            format!("line {rendered_line} of the output for workload {}", w.name)
        } else {
            format!(
                "written as line {rendered_line} of the output for workload {}: `{rendered}`",
                w.name
            )
        };
        d.file = Some(file.display_path());
        d.span = Some(pos..pos + 1);
        d.label = Some(label);
        // A macro's output is written where it is called: say where the
        // macro is, which is where a mistake in that output is fixed.
        if let Some((name, path, line)) = self.macro_called_at(file, pos) {
            let rest = d.hint.take().map(|h| format!("; {h}")).unwrap_or_default();
            d.hint = Some(format!(
                "this expression writes what macro `{name}` returns, and the macro is defined at {path}:{line}{rest}"
            ));
        }
        true
    }

    /// The macro the expression at byte `pos` of `file` calls: its name, and
    /// the path and line of its definition, followed through imports.
    fn macro_called_at(
        &self,
        file: &crate::catalog::TemplateFile,
        pos: usize,
    ) -> Option<(String, String, usize)> {
        let call = super::tags::called_at(&file.source, pos)?;
        let mut name = call.name;
        let mut here = match call.module {
            Some(alias) => self
                .catalog
                .file(super::tags::imported_as(&file.source, alias)?)?,
            None => file,
        };
        // Re-exports (`_macros.j2` imports the metadata macros by name) are
        // followed a few steps; a cycle or a deeper chain gets no hint.
        for _ in 0..4 {
            match super::tags::macro_source(&here.source, name)? {
                super::tags::MacroSource::Here(at) => {
                    let line = here.source[..at].matches('\n').count() + 1;
                    return Some((name.to_owned(), here.display_path(), line));
                }
                super::tags::MacroSource::From(template, there) => {
                    here = self.catalog.file(template)?;
                    name = there;
                }
            }
        }
        None
    }

    /// Renders a template and parses its output as a YAML stream, dropping
    /// empty documents. Errors name the template (and, for YAML errors, point
    /// at the template line that wrote the offending text, or show the
    /// rendered text).
    fn render_yaml(
        &self,
        name: &str,
        ctx: JinjaValue,
        w: &Workload,
        errors: &mut RenderErrors,
    ) -> Option<TemplateOutput> {
        let tmpl = match self.env.get_template(name) {
            Ok(t) => t,
            Err(e) => {
                errors.diagnostics.push(template_error(self.catalog, &e));
                return None;
            }
        };
        let mut capped = Capped(Vec::with_capacity(CAPPED_START));
        let rendered = tmpl
            .render_captured_to(ctx.clone(), &mut capped)
            .map(|_| String::from_utf8(std::mem::take(&mut capped.0)));
        let text = match rendered {
            Ok(Ok(t)) => t,
            // minijinja writes only whole strings: cannot happen.
            Ok(Err(_)) => {
                errors.diagnostics.push(Diagnostic::error(format!(
                    "internal error: template {name} wrote invalid UTF-8; please report it"
                )));
                return None;
            }
            Err(e) if e.kind() == minijinja::ErrorKind::WriteFailure => {
                let d = self.over_cap_error(name, &ctx, capped.0.len(), w, &mut errors.sources);
                errors.diagnostics.push(d);
                return None;
            }
            Err(e) => {
                let d = template_error(self.catalog, &e);
                if let Some(f) = self.catalog.file(e.name().unwrap_or(name)) {
                    errors
                        .sources
                        .push(SourceFile::new(f.display_path(), f.source.clone()));
                }
                errors.diagnostics.push(d);
                return None;
            }
        };
        let mut docs = Vec::new();
        for (offset, doc) in split_documents(&text) {
            if doc
                .lines()
                .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
            {
                continue;
            }
            match super::parse::document(doc) {
                Ok(Value::Null) => {}
                Ok(v) => docs.push((offset..offset + doc.len(), v)),
                Err(e) => {
                    let (line, col) = yaml_error_position(&e.to_string());
                    let at = line_col_offset(doc, line, col).map(|o| offset + o);
                    let mut d = Diagnostic::error(format!("template {name} produced invalid YAML: {}", yaml_error_message(&e.to_string())))
                        .hint("check the template's indentation and quoting; values from data are safest written with `| tojson`");
                    // Pointed at the template line that wrote the offending
                    // text; failing that, at the rendered text.
                    let out = Rendering {
                        template: name,
                        ctx: &ctx,
                        text: &text,
                        workload: w,
                    };
                    let placed =
                        at.is_some_and(|x| self.at_source(&mut d, &out, x, &mut errors.sources));
                    if !placed {
                        let rendered_name = self.rendered_name(name, w);
                        errors
                            .sources
                            .push(SourceFile::new(rendered_name.clone(), text.clone()));
                        d = d.in_file(rendered_name);
                        if let Some(x) = at {
                            d = d.at(x..x + 1);
                        }
                    }
                    errors.diagnostics.push(d);
                    return None;
                }
            }
        }
        Some(TemplateOutput { text, docs })
    }

    /// A template's output went past [`MAX_TEMPLATE_OUTPUT`] after
    /// `written` bytes: pointed at the line whose write did. Finding it
    /// renders the template a few dozen times up to the cap (about a
    /// second), so it is found once per template and every workload's error
    /// points there.
    fn over_cap_error(
        &self,
        name: &str,
        ctx: &JinjaValue,
        written: usize,
        w: &Workload,
        sources: &mut Vec<SourceFile>,
    ) -> Diagnostic {
        let d = Diagnostic::error(format!(
            "template {name} wrote more than {} MiB for workload {}",
            MAX_TEMPLATE_OUTPUT >> 20,
            w.name
        ))
        .hint("a template writes a few KiB per object; look for a loop over a huge range or a string repeated many times");
        let found = self
            .over_cap
            .cell(name.to_owned())
            .get_or_init(|| {
                self.written_by(name, ctx, written)
                    .map(|(file, pos)| (file.name.clone(), pos))
            })
            .clone();
        let Some((file, pos)) =
            found.and_then(|(file, pos)| Some((self.catalog.file(&file)?, pos)))
        else {
            return d.in_file(self.display_path(name));
        };
        add_source(sources, file);
        let mut d = d.in_file(file.display_path()).at(pos..pos + 1);
        d.label = Some(format!(
            "this write took the output for workload {} past the cap",
            w.name
        ));
        d
    }

    /// The template file and byte offset in it that wrote byte `x` of
    /// `name`'s output. minijinja keeps no map from output to source, so
    /// this renders again with ever more fuel (each instruction spends
    /// some) until the output reaches `x`: the instruction that then runs
    /// out of fuel is the one that writes it, and the error names its
    /// template and line. Only run for an error, where a few dozen renders
    /// of one template are nothing.
    fn written_by(
        &self,
        name: &str,
        ctx: &JinjaValue,
        x: usize,
    ) -> Option<(&crate::catalog::TemplateFile, usize)> {
        // Output and error of a render stopped after `fuel`.
        let run = |fuel: u64| {
            let mut env = self.env.clone();
            env.set_fuel(Some(fuel));
            let mut out = Vec::new();
            let err = env
                .get_template(name)
                .ok()?
                .render_captured_to(ctx.clone(), &mut out)
                .err();
            Some((out.len(), err.is_none(), (out, err)))
        };
        // `below` is stopped at the instruction that writes byte `x`;
        // `after` has run it.
        let (below, (after, _)) = least_fuel_past(x, TEMPLATE_FUEL, run)?;
        let (before, err) = below;
        let err = err.filter(|e| e.kind() == minijinja::ErrorKind::OutOfFuel)?;
        let written = std::str::from_utf8(after.get(before.len()..)?).ok()?;
        let file = self.catalog.file(err.name()?)?;
        let source = file.source.as_str();
        let line_start = source
            .split_inclusive('\n')
            .take(err.line()?.saturating_sub(1))
            .map(str::len)
            .sum::<usize>();
        let line_len = source[line_start..]
            .find('\n')
            .map_or(source.len() - line_start, |i| i + 1);
        // Text written as it stands in the template starts on the
        // instruction's line: point at the very byte. An expression's
        // output is not in the template: point at the expression.
        let pos = match source[line_start..].find(written) {
            Some(p) if !written.is_empty() && p < line_len => line_start + p + (x - before.len()),
            _ => err.range().map_or(line_start, |r| r.start),
        };
        Some((
            file,
            floor_char_boundary(source, pos.min(source.len().saturating_sub(1))),
        ))
    }
}

/// The search behind [`Renderer::written_by`]: the least fuel whose render
/// writes more than `x` bytes, given that a render with more fuel writes at
/// least as much. `run(fuel)` renders and returns the output's length,
/// whether the render finished, and what the caller keeps of it; the result
/// is what `run` kept for that fuel and for one less (`Default` for zero
/// fuel). `None` when a render that finishes, or one with more than
/// `limit`, does not get that far.
///
/// Doubling, then halving: the renders that halve cost about the template's
/// whole fuel each. Steps along the line through the range's ends (regula
/// falsi, with the Illinois rule) saved a quarter of the renders when output
/// grows evenly with fuel, but none for the case that makes a search slow,
/// a long loop that writes nothing, and took more in the worst case.
fn least_fuel_past<T: Default>(
    x: usize,
    limit: u64,
    mut run: impl FnMut(u64) -> Option<(usize, bool, T)>,
) -> Option<(T, T)> {
    let (mut lo, mut below) = (0, T::default());
    let mut hi = 1;
    let mut after = loop {
        let (len, finished, kept) = run(hi)?;
        if len > x {
            break kept;
        }
        if finished || hi > limit {
            return None;
        }
        (lo, below) = (hi, kept);
        hi *= 2;
    };
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        let (len, _, kept) = run(mid)?;
        if len > x {
            (hi, after) = (mid, kept);
        } else {
            (lo, below) = (mid, kept);
        }
    }
    Some((below, after))
}

/// The line `line` of `text`, cut to about 160 characters around `at`
/// when longer (a line of JSON can hold a whole object).
fn excerpt(text: &str, line: std::ops::Range<usize>, at: usize) -> String {
    const WIDTH: usize = 160;
    let whole = &text[line.clone()];
    if whole.chars().count() <= WIDTH {
        return whole.to_owned();
    }
    let start = floor_char_boundary(text, at.saturating_sub(WIDTH / 2).max(line.start));
    let end = floor_char_boundary(text, (start + WIDTH).min(line.end));
    let dots = |cut: bool| if cut { "…" } else { "" };
    format!(
        "{}{}{}",
        dots(start > line.start),
        &text[start..end],
        dots(end < line.end)
    )
}

/// `i`, or the start of the character it falls inside (`str::floor_char_boundary`
/// is newer than the supported Rust).
fn floor_char_boundary(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// One template's output for one workload, as diagnostics point into it.
struct Rendering<'a> {
    template: &'a str,
    ctx: &'a JinjaValue,
    text: &'a str,
    workload: &'a Workload,
}

/// What one template rendered: its text, and each YAML document in it
/// with where it is in the text.
struct TemplateOutput {
    text: String,
    docs: Vec<(std::ops::Range<usize>, Value)>,
}

/// Converts a checked manifest into a [`DesiredObject`].
fn to_desired(body: Value, w: &Workload) -> DesiredObject {
    let s = |p: &str| {
        checks::at(&body, p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let kind = s("/kind");
    let namespace = checks::at(&body, "/metadata/namespace")
        .and_then(Value::as_str)
        .map(str::to_string);
    let shared = matches!(kind.as_str(), "Namespace" | "StorageClass");
    DesiredObject {
        api_version: s("/apiVersion"),
        wave: Wave::for_kind(&kind).unwrap_or(Wave::Workload),
        name: s("/metadata/name"),
        kind,
        namespace,
        workload: (!shared).then(|| w.name.clone()),
        body,
    }
}

fn template_error(catalog: &Catalog, e: &JinjaError) -> Diagnostic {
    let name = e.name().unwrap_or("<template>");
    let file = catalog
        .file(name)
        .map_or_else(|| format!("templates/{name}"), |f| f.display_path());
    let what = match (e.kind(), e.detail()) {
        (minijinja::ErrorKind::OutOfFuel, _) => format!(
            "ran more than {TEMPLATE_FUEL} instructions without finishing (a loop over a huge range, or loops nested too deep?)"
        ),
        (kind, Some(detail)) => format!("{kind}: {detail}"),
        (kind, None) => kind.to_string(),
    };
    let line = e.line().map(|l| format!(" (line {l})")).unwrap_or_default();
    let mut d = Diagnostic::error(format!("template {name}{line}: {what}"))
        .in_file(file)
        .hint("fix the template; `stateplan templates show NAME` prints the built-in version to compare with");
    if let Some(r) = e.range() {
        d = d.at(r);
    }
    d
}

/// Adds a template's source to those diagnostics can show, once.
fn add_source(sources: &mut Vec<SourceFile>, file: &crate::catalog::TemplateFile) {
    if !sources.iter().any(|s| s.path == file.display_path()) {
        sources.push(SourceFile::new(file.display_path(), file.source.clone()));
    }
}

/// A template minijinja's compiler panicked on (a minijinja bug, but the
/// template is what has to change). The one known trigger, an `import`
/// whose `as` is not followed by a plain name, is pointed at.
fn compiler_failure(f: &crate::catalog::TemplateFile, panic: &str) -> Diagnostic {
    if let Some(alias) = super::tags::bad_import_alias(&f.source) {
        return Diagnostic::error(format!(
            "template {}: `import … as` must be followed by a name, not `{}`",
            f.name,
            &f.source[alias.clone()]
        ))
        .in_file(f.display_path())
        .at(alias)
        .hint("write e.g. `{% import \"kubernetes/_metadata.j2\" as m %}` and call the macros as `m.metadata(...)`");
    }
    // The hook's report ends with the panic's message.
    let message = panic.lines().last().unwrap_or(panic);
    Diagnostic::error(format!(
        "template {}: minijinja failed while compiling it ({message})",
        f.name
    ))
    .in_file(f.display_path())
    .hint("this is a bug in minijinja that something in this template triggers; check the template's `{% … %}` tags, and please report it to stateplan with the template")
}

/// Splits a YAML stream at `---` lines, keeping each document's offset.
fn split_documents(text: &str) -> Vec<(usize, &str)> {
    // Most templates write one document; no need to look at every line.
    if !text.contains("---") {
        return vec![(0, text)];
    }
    let mut docs = Vec::new();
    let mut start = 0;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_end() == "---" {
            docs.push((start, &text[start..pos]));
            start = pos + line.len();
        }
        pos += line.len();
    }
    docs.push((start, &text[start..]));
    docs
}

/// serde-saphyr's message without its "error: line L column C:" prefix:
/// the diagnostic points at the place itself.
fn yaml_error_message(msg: &str) -> &str {
    let first = msg.lines().next().unwrap_or(msg);
    let rest = first.strip_prefix("error: ").unwrap_or(first);
    match rest.strip_prefix("line ").and_then(|r| r.split_once(": ")) {
        Some((position, message)) if position.contains(" column ") => message,
        _ => rest,
    }
}

/// serde-saphyr errors start with "line L column C:".
fn yaml_error_position(msg: &str) -> (usize, usize) {
    let num_after = |key: &str| {
        msg.find(key).and_then(|i| {
            msg[i + key.len()..]
                .trim_start()
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|n| n.parse().ok())
        })
    };
    (
        num_after("line").unwrap_or(1),
        num_after("column").unwrap_or(1),
    )
}

/// The byte offset of 1-based `line` and `col` (counted in characters, as
/// serde-saphyr counts them).
fn line_col_offset(text: &str, line: usize, col: usize) -> Option<usize> {
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            let within = l
                .char_indices()
                .nth(col.saturating_sub(1))
                .map_or(l.len(), |(b, _)| b);
            return Some(offset + within);
        }
        offset += l.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A template as the fuel search sees it: `written[f]` bytes are out
    /// after `f` instructions, and fuel `f` runs the first `f`. Returns the
    /// search's answer as (fuel below, fuel after) and the number of
    /// renders it took.
    fn search(written: &[usize], x: usize) -> (Option<(u64, u64)>, usize) {
        let mut renders = 0;
        let last = written.len() - 1;
        let found = least_fuel_past(x, TEMPLATE_FUEL, |fuel| {
            renders += 1;
            let ran = last.min(usize::try_from(fuel).unwrap_or(usize::MAX));
            Some((written[ran], ran == last, fuel))
        });
        (found, renders)
    }

    #[test]
    fn fuel_search_finds_the_instruction_that_writes_a_byte() {
        let mut next = super::super::test_random(7);
        // Output spread over the template: a third of the instructions
        // write nothing, the others a few bytes.
        let even: Vec<usize> = (0..5000).map(|_| next(3).min(1) * (1 + next(40))).collect();
        // A long loop that writes nothing before the text, and one between.
        let loop_first: Vec<usize> = std::iter::repeat_n(0, 300_000)
            .chain(std::iter::repeat_n(20, 300))
            .collect();
        let loop_between: Vec<usize> = std::iter::repeat_n(12, 200)
            .chain(std::iter::repeat_n(0, 300_000))
            .chain(std::iter::repeat_n(12, 200))
            .collect();
        for (name, writes) in [
            ("even", &even),
            ("loop first", &loop_first),
            ("loop between", &loop_between),
        ] {
            let written: Vec<usize> = std::iter::once(0)
                .chain(writes.iter().scan(0, |sum, w| {
                    *sum += w;
                    Some(*sum)
                }))
                .collect();
            let total = written[writes.len()];
            // Doubling up to the length, then halving back down: about
            // twice its number of binary digits.
            let bound = 2 * (usize::BITS - writes.len().leading_zeros()) as usize + 1;
            for x in (0..total + 3).step_by(13) {
                let (found, renders) = search(&written, x);
                // The first fuel past `x`, read off the table.
                let least = written.partition_point(|&len| len <= x) as u64;
                let expected = (least <= writes.len() as u64).then(|| (least - 1, least));
                assert_eq!(found, expected, "{name}: byte {x}");
                assert!(renders <= bound, "{name}: byte {x}: {renders} renders");
            }
        }
    }

    #[test]
    fn long_lines_are_cut_around_the_error() {
        let line = format!("  key: {}X{}", "a".repeat(200), "b".repeat(200));
        let text = format!("first\n{line}\nlast\n");
        let at = text.find('X').expect("X");
        let cut = excerpt(&text, 6..6 + line.len(), at);
        assert!(cut.starts_with('…') && cut.ends_with('…'), "{cut}");
        assert!(cut.contains('X') && cut.chars().count() <= 162, "{cut}");
        assert_eq!(excerpt(&text, 0..5, 2), "first");
        let wide = "é".repeat(250);
        assert!(excerpt(&wide, 0..wide.len(), 201).chars().count() <= 162);
    }

    #[test]
    fn yaml_columns_count_characters() {
        let text = "a: 1\n  note: ééé: x\n";
        let at = line_col_offset(text, 2, 12).expect("on line 2");
        assert_eq!(&text[at..], ": x\n");
        assert_eq!(line_col_offset(text, 2, 99), Some(text.len()));
        assert_eq!(line_col_offset(text, 9, 1), None);
    }

    #[test]
    fn yaml_messages_lose_their_position_prefix() {
        assert_eq!(
            yaml_error_message("error: line 7 column 6: illegal placement of ':' indicator\nmore"),
            "illegal placement of ':' indicator"
        );
        assert_eq!(yaml_error_message("line 2: odd"), "line 2: odd");
        assert_eq!(yaml_error_message("something else"), "something else");
    }

    #[test]
    fn split_keeps_offsets() {
        let docs = split_documents("a: 1\n---\nb: 2\n");
        assert_eq!(docs, vec![(0, "a: 1\n"), (9, "b: 2\n")]);
        assert_eq!(split_documents("a: b---c\n"), vec![(0, "a: b---c\n")]);
        assert_eq!(
            split_documents("a: 1\n---  \n"),
            vec![(0, "a: 1\n"), (11, "")]
        );
    }

    #[test]
    fn yaml_positions() {
        assert_eq!(yaml_error_position("line 3 column 7: bad"), (3, 7));
        assert_eq!(line_col_offset("ab\ncd\n", 2, 2), Some(4));
    }
}
