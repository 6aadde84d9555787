//! `plan`: the difference between the blueprint and the live cluster.
//! Exit codes: 0 no changes, 2 changes, 1 error.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use super::{EXIT_ERROR, Output};
use crate::live::{self, Target};
use crate::pipeline::{self, Loaded};
use crate::plan::{self, DEFAULT_STATE_NAMESPACE, Desired, PlanOptions};

/// Which half of the world to plan or apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Only {
    Kubernetes,
    Azure,
}

/// Options `plan` and `apply` share.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// The blueprint (`-` reads standard input).
    pub file: String,
    /// Kubeconfig file (default: KUBECONFIG, ~/.kube/config, in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to use.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Plan/apply only one half (teams that manage Azure elsewhere use
    /// `--only kubernetes`).
    #[arg(long, value_enum, value_name = "HALF")]
    pub only: Option<Only>,
    /// Delete objects this blueprint owns but no longer renders (never
    /// PersistentVolumeClaims, Namespaces or StorageClasses).
    #[arg(long)]
    pub prune: bool,
    /// Namespace of stateplan's inventory ConfigMaps and Leases.
    #[arg(long, value_name = "NS", default_value = DEFAULT_STATE_NAMESPACE)]
    pub state_namespace: String,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Also list unchanged objects in the table.
    #[arg(long)]
    pub show_unchanged: bool,
}

/// The offline pipeline, plus the `--only azure` / Azure-half notice.
/// `None` means: stop with this exit code.
pub(super) fn prepare(
    out: &Output,
    templates: Option<&Path>,
    args: &ClusterArgs,
) -> Result<Loaded, u8> {
    if args.only == Some(Only::Azure) {
        out.note("error: the Azure half of plan/apply is wired separately and is not part of this build yet; use `--only kubernetes` for the Kubernetes half");
        return Err(EXIT_ERROR);
    }
    let loaded = pipeline::load(&args.file, templates).map_err(|d| {
        out.diagnostics(&d, out.json());
        EXIT_ERROR
    })?;
    out.diagnostics(&loaded.diagnostics, false);
    if args.only.is_none() && !out.json() {
        out.note(&out.dim(
            "note: the Azure half is not wired into this build yet: planning the Kubernetes half only (as with --only kubernetes)",
        ));
    }
    Ok(loaded)
}

pub(super) fn runtime(out: &Output) -> Result<tokio::runtime::Runtime, u8> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| {
            out.note(&format!("error: cannot start the async runtime: {e}"));
            EXIT_ERROR
        })
}

pub(super) fn target(args: &ClusterArgs) -> Target {
    Target {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
    }
}

pub fn run(out: &Output, templates: Option<&Path>, args: PlanArgs) -> u8 {
    let loaded = match prepare(out, templates, &args.cluster) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let rt = match runtime(out) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let desired = Desired {
        blueprint: &loaded.state.blueprint.name,
        objects: &loaded.rendered.objects,
        pending: &loaded.rendered.pending,
    };
    let opts = PlanOptions {
        prune: args.cluster.prune,
        state_namespace: args.cluster.state_namespace.clone(),
        ..Default::default()
    };
    let result = rt.block_on(async {
        let client = live::connect(&target(&args.cluster)).await?;
        plan::plan(&client, &desired, &opts).await
    });
    match result {
        Ok(p) => {
            if out.json() {
                out.stdout(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(&plan::render_json(&p)).unwrap_or_default()
                ));
            } else {
                // Colour only when stdout itself is a terminal (not `> plan.txt`).
                let color = out.color && std::io::IsTerminal::is_terminal(&std::io::stdout());
                out.stdout(&plan::render_text(&p, color, args.show_unchanged));
            }
            p.exit_code()
        }
        Err(e) => {
            if out.json() {
                out.stdout(&format!(
                    "{}\n",
                    serde_json::json!({"error": e.to_string(), "exit_code": EXIT_ERROR})
                ));
            }
            out.note(&format!("error: {e}"));
            EXIT_ERROR
        }
    }
}
