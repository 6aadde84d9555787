//! The offline pipeline every command starts with: read the blueprint, load
//! the catalog, parse, compile, render. Nothing here touches the network or
//! writes files.

use std::path::Path;

use crate::blueprint;
use crate::catalog::Catalog;
use crate::compile::{self, DesiredState};
use crate::diagnostics::{Diagnostic, Diagnostics, SourceFile};
use crate::render::{self, Body, Rendered, Renderer};

/// A blueprint taken through every offline stage.
pub struct Loaded<B: Body = serde_json::Value> {
    pub catalog: Catalog,
    pub state: DesiredState,
    pub rendered: Rendered<B>,
    /// Warnings (errors stop the pipeline).
    pub diagnostics: Diagnostics,
}

/// Loads the catalog (built-ins + `templates` overrides).
pub fn catalog(templates: Option<&Path>) -> Result<Catalog, Diagnostics> {
    Catalog::load(templates).map_err(|(diags, sources)| {
        let mut d = Diagnostics::new();
        for s in sources {
            d.add_file(s);
        }
        d.extend(diags);
        d.locate();
        d
    })
}

/// Reads and parses a blueprint file (`-` reads standard input).
pub fn read_blueprint(path: &str) -> Result<String, Box<Diagnostic>> {
    let bytes = if path == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut buf)
            .map_err(|e| Diagnostic::error(format!("cannot read standard input: {e}")))?;
        buf
    } else {
        std::fs::read(path).map_err(|e| {
            let hint = match e.kind() {
                std::io::ErrorKind::NotFound => {
                    "check the path; `stateplan init` writes a starter blueprint"
                }
                std::io::ErrorKind::IsADirectory => "pass a blueprint file, not a folder",
                _ => "check the file's permissions",
            };
            Diagnostic::error(format!("cannot read {path}: {e}")).hint(hint)
        })?
    };
    blueprint::decode_bytes(path, &bytes)
}

/// Runs parse → compile → render. On error, every diagnostic found so far.
pub fn load(path: &str, templates: Option<&Path>) -> Result<Loaded, Diagnostics> {
    load_as(path, templates)
}

/// [`load`], keeping object bodies as `B` (e.g. [`render::Yaml`] for
/// commands that only print them).
pub fn load_as<B: Body>(path: &str, templates: Option<&Path>) -> Result<Loaded<B>, Diagnostics> {
    let mut diags = Diagnostics::new();
    let fail = |mut d: Diagnostics| {
        d.locate();
        Err(d)
    };
    let text = match read_blueprint(path) {
        Ok(t) => t,
        Err(e) => {
            diags.push(*e);
            return fail(diags);
        }
    };
    diags.add_file(SourceFile::new(path, text.clone()));
    let catalog = catalog(templates)?;
    if templates.is_some() {
        diags.extend(catalog.unused_files());
    }
    let (bp, parse_diags) = blueprint::parse(path, &text);
    diags.extend(parse_diags);
    let Some(bp) = bp else { return fail(diags) };
    let (state, compile_diags) = compile::compile(&bp, &catalog);
    diags.extend(compile_diags);
    let Some(state) = state.filter(|_| !diags.has_errors()) else {
        return fail(diags);
    };
    let rendered = match Renderer::new(&catalog).and_then(|r| render::render_as(&state, &r)) {
        Ok(r) => r,
        Err(e) => {
            for s in e.sources {
                diags.add_file(s);
            }
            diags.extend(e.diagnostics);
            return fail(diags);
        }
    };
    diags.locate();
    Ok(Loaded {
        catalog,
        state,
        rendered,
        diagnostics: diags,
    })
}
