//! `check` and `render`.

use std::path::{Path, PathBuf};

use clap::Args;

use super::{EXIT_ERROR, Output};
use crate::pipeline::{self, Loaded};
use crate::render::{Body, Yaml, gitops};

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The blueprint (`-` reads standard input).
    pub file: String,
    /// Write a GitOps tree here instead of printing a YAML stream.
    #[arg(short = 'o', long = "out", value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write into a non-empty folder stateplan did not create.
    #[arg(long)]
    pub force: bool,
}

/// `check`: the whole offline pipeline, nothing written.
pub fn check(out: &Output, templates: Option<&Path>, file: &str) -> u8 {
    match pipeline::load_as::<Yaml>(file, templates) {
        Ok(loaded) => {
            let s = &loaded.state;
            if out.json() {
                // Warnings and what was checked, in one document.
                let v = serde_json::json!({
                    "diagnostics": loaded.diagnostics.items(),
                    "workloads": s.workloads.len(),
                    "kubernetes_objects": loaded.rendered.objects.len(),
                    "azure_resources": loaded.rendered.azure.len(),
                });
                out.stdout(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(&v).unwrap_or_default()
                ));
            } else {
                out.diagnostics(&loaded.diagnostics, false);
                out.note(&format!(
                    "{} {file}: {} workload{}, {} Kubernetes objects, {} Azure resources",
                    "ok",
                    s.workloads.len(),
                    if s.workloads.len() == 1 { "" } else { "s" },
                    loaded.rendered.objects.len(),
                    loaded.rendered.azure.len()
                ));
            }
            0
        }
        Err(d) => {
            out.diagnostics(&d, true);
            EXIT_ERROR
        }
    }
}

/// Placeholders listed on stderr; a large fleet has four per workload, and
/// the full list is in the GitOps tree and the JSON output.
const PENDING_LISTED: usize = 12;

pub fn run(out: &Output, templates: Option<&Path>, args: RenderArgs) -> u8 {
    if out.json() && args.out.is_none() {
        return print_json(out, templates, &args.file);
    }
    let Some(loaded) = load::<Yaml>(out, templates, &args.file) else {
        return EXIT_ERROR;
    };
    let r = &loaded.rendered;
    match &args.out {
        Some(dir) => {
            let files = gitops::tree(r, &loaded.state);
            if let Err(e) = gitops::write(dir, &files, args.force) {
                let hint = match e {
                    gitops::WriteError::NotOurs(_) => {
                        "choose an empty folder, or pass --force to write into it anyway"
                    }
                    gitops::WriteError::OtherBlueprint(..) => {
                        "render each blueprint into a folder of its own (e.g. gitops/<blueprint>), or pass --force to replace that render"
                    }
                    gitops::WriteError::Symlink(_) => {
                        "render writes and deletes only plain files and folders inside the output folder, so that a link in a repository cannot make it touch files elsewhere; remove the link (nothing was written)"
                    }
                    gitops::WriteError::Io(..) => "check the path and its permissions",
                };
                out.error(e.to_string(), hint);
                return EXIT_ERROR;
            }
            if out.json() {
                let v = serde_json::json!({ "diagnostics": loaded.diagnostics.items(), "directory": dir, "files": files.paths().collect::<Vec<_>>(), "pending": r.pending });
                out.stdout(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(&v).unwrap_or_default()
                ));
            } else {
                out.note(&format!(
                    "wrote {} files to {} ({} Kubernetes objects, {} Azure resources under azure/)",
                    files.len(),
                    dir.display(),
                    r.objects.len(),
                    r.azure.len()
                ));
            }
        }
        None => {
            // Object by object: the stream of a large blueprint is never
            // held in memory as one string.
            out.stdout_all(r.objects.iter().flat_map(|o| ["---\n", o.body.0.as_str()]));
            out.note(&format!(
                "{} Kubernetes objects on stdout in apply order; {} Azure resources are written with -o DIR (azure/*.json)",
                r.objects.len(),
                r.azure.len()
            ));
        }
    }
    if !r.pending.is_empty() && !out.json() {
        out.note(&format!(
            "{} value(s) are known only after Azure creates the identities and are rendered as `stateplan-pending:` placeholders:",
            r.pending.len()
        ));
        for p in r.pending.iter().take(PENDING_LISTED) {
            out.note(&format!(
                "  {} {} ← {}",
                p.object,
                p.field,
                p.placeholder
                    .trim_start_matches(crate::compile::PENDING_PREFIX)
            ));
        }
        if r.pending.len() > PENDING_LISTED {
            let all = if args.out.is_some() {
                "all of them are in azure/pending-values.json"
            } else {
                "`-o DIR` writes all of them to azure/pending-values.json; `--output json` prints them"
            };
            out.note(&format!(
                "  ... and {} more ({all})",
                r.pending.len() - PENDING_LISTED
            ));
        }
        out.note("  `stateplan apply` fills them in. For GitOps: apply the Azure half (`stateplan apply FILE --only azure`), then set these values in the repository (e.g. a kustomize patch); `render` works offline and cannot know them.");
    }
    0
}

/// `render --output json`: every object as JSON, with the Azure bodies and
/// the pending values.
fn print_json(out: &Output, templates: Option<&Path>, file: &str) -> u8 {
    let Some(loaded) = load::<serde_json::Value>(out, templates, file) else {
        return EXIT_ERROR;
    };
    let r = &loaded.rendered;
    let v = serde_json::json!({
        "diagnostics": loaded.diagnostics.items(),
        "kubernetes": r.objects.iter().map(|o| &o.body).collect::<Vec<_>>(),
        "azure": r.azure,
        "pending": r.pending,
    });
    out.stdout(&format!(
        "{}\n",
        serde_json::to_string_pretty(&v).unwrap_or_default()
    ));
    0
}

/// Runs the offline pipeline; `None` on errors. Errors are printed (as
/// JSON on stdout with `--output json`); warnings too in text mode, while
/// JSON output carries them in its document.
fn load<B: Body>(out: &Output, templates: Option<&Path>, file: &str) -> Option<Loaded<B>> {
    match pipeline::load_as::<B>(file, templates) {
        Ok(loaded) => {
            if !out.json() {
                out.diagnostics(&loaded.diagnostics, false);
            }
            Some(loaded)
        }
        Err(d) => {
            out.diagnostics(&d, true);
            None
        }
    }
}
