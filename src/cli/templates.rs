//! `templates list` and `templates show`.

use std::path::Path;

use clap::Subcommand;

use super::{EXIT_ERROR, Output};
use crate::pipeline;

#[derive(Debug, Subcommand)]
pub enum TemplatesCommand {
    /// Every template and data file in effect, with its origin.
    List,
    /// Print one template or data file.
    Show {
        /// Relative name, e.g. kubernetes/statefulset.yaml.j2 or engines/postgres/profile.toml.
        name: String,
    },
}

pub fn run(out: &Output, templates: Option<&Path>, cmd: TemplatesCommand) -> u8 {
    let catalog = match pipeline::catalog(templates) {
        Ok(c) => c,
        Err(d) => {
            out.diagnostics(&d, true);
            return EXIT_ERROR;
        }
    };
    match cmd {
        TemplatesCommand::List => {
            if out.json() {
                let files: Vec<_> = catalog.files().collect();
                out.stdout(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(&files).unwrap_or_default()
                ));
                return 0;
            }
            let width = catalog.files().map(|f| f.name.len()).max().unwrap_or(0);
            let mut text = String::new();
            for f in catalog.files() {
                let origin = if f.overrides_builtin {
                    format!("{} (overrides built-in)", f.origin)
                } else {
                    f.origin.to_string()
                };
                text.push_str(&format!("{:width$}  {}\n", f.name, out.dim(&origin)));
            }
            let engines: Vec<&str> = catalog.engine_names().collect();
            text.push_str(&format!("\nengines: {}\n", engines.join(", ")));
            out.stdout(&text);
            0
        }
        TemplatesCommand::Show { name } => match catalog.file(&name) {
            Some(f) => {
                if out.json() {
                    let v = serde_json::json!({ "name": f.name, "origin": f.origin, "source": f.source });
                    out.stdout(&format!(
                        "{}\n",
                        serde_json::to_string_pretty(&v).unwrap_or_default()
                    ));
                } else {
                    out.note(&format!("# {} ({})", f.name, f.origin));
                    out.stdout(&f.source);
                }
                0
            }
            None => {
                let names: Vec<&str> = catalog.files().map(|f| f.name.as_str()).collect();
                let hint = match crate::blueprint::did_you_mean(&name, names.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "`stateplan templates list` shows every name".to_string(),
                };
                out.error(format!("no template named `{name}`"), hint);
                EXIT_ERROR
            }
        },
    }
}
