//! `init`: a commented starter blueprint, rendered from the catalog's
//! `starter.toml.j2` so platform teams can ship their own.

use std::path::{Path, PathBuf};

use clap::Args;
use minijinja::value::{Serde, Value};

use super::{EXIT_ERROR, Output};
use crate::pipeline;

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Engine of the example workload.
    #[arg(long, default_value = "postgres")]
    pub engine: String,
    /// Name of the example workload.
    #[arg(long, default_value = "orders-db")]
    pub name: String,
    /// Where to write it (`-` for standard output).
    #[arg(default_value = "blueprint.toml")]
    pub file: PathBuf,
    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
}

pub fn run(out: &Output, templates: Option<&Path>, args: InitArgs) -> u8 {
    let catalog = match pipeline::catalog(templates) {
        Ok(c) => c,
        Err(d) => {
            out.diagnostics(&d, false);
            return EXIT_ERROR;
        }
    };
    let Some(engine) = catalog.engine(&args.engine) else {
        let names: Vec<&str> = catalog.engine_names().collect();
        let suggestion = crate::blueprint::did_you_mean(&args.engine, names.iter().copied())
            .map(|s| format!("did you mean `{s}`? "))
            .unwrap_or_default();
        out.note(&format!(
            "error: unknown engine `{}`\nhelp: {suggestion}engines: {}",
            args.engine,
            names.join(", ")
        ));
        return EXIT_ERROR;
    };
    // The name becomes a TOML table key and the workload's name: refuse
    // what `check` would refuse, before writing a file that fails it.
    if !crate::blueprint::rules::is_dns_label(
        &args.name,
        crate::blueprint::rules::MAX_WORKLOAD_NAME,
    ) {
        out.note(&format!(
            "error: workload name `{}` is not valid\nhelp: use at most {} lower-case letters, digits and '-', not starting or ending with '-', e.g. orders-db",
            args.name.escape_debug(),
            crate::blueprint::rules::MAX_WORKLOAD_NAME
        ));
        return EXIT_ERROR;
    }
    let Some(starter) = catalog.file("starter.toml.j2") else {
        out.note("error: the templates have no starter.toml.j2");
        return EXIT_ERROR;
    };
    let file_name = args.file.display().to_string();
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    // A platform team's starter is user input; see `crate::panics`.
    let text = crate::panics::contain(|| {
        env.render_str(
            &starter.source,
            minijinja::context! { engine => Value::from(Serde(engine.as_ref())), name => args.name, file => file_name.clone() },
        )
    });
    let text = match text {
        Ok(Ok(t)) if t.ends_with('\n') => t,
        Ok(Ok(t)) => t + "\n",
        Err(panic) => {
            out.note(&format!(
                "error: {}: minijinja failed on it ({})\nhelp: check the template's `{{% … %}}` tags against the built-in one (`stateplan templates show starter.toml.j2`)",
                starter.display_path(),
                panic.lines().last().unwrap_or(&panic)
            ));
            return EXIT_ERROR;
        }
        Ok(Err(e)) => {
            out.note(&format!(
                "error: {} (line {}): {e}",
                starter.display_path(),
                e.line().unwrap_or(0)
            ));
            return EXIT_ERROR;
        }
    };
    if file_name == "-" {
        out.stdout(&text);
        return 0;
    }
    if args.file.exists() && !args.force {
        out.note(&format!("error: {file_name} already exists\nhelp: pass --force to overwrite it, or choose another file name"));
        return EXIT_ERROR;
    }
    if let Err(e) = std::fs::write(&args.file, text) {
        out.note(&format!("error: cannot write {file_name}: {e}"));
        return EXIT_ERROR;
    }
    out.note(&format!(
        "wrote {file_name}; next: stateplan check {file_name}"
    ));
    0
}
