//! `plan`: the difference between the blueprint and the live cluster.
//! Exit codes: 0 no changes, 2 changes, 1 error.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use super::{EXIT_ERROR, Output};
use crate::azure::{self, AzureArgs};
use crate::live::{self, Target};
use crate::pipeline::{self, Loaded};
use crate::plan::{self, DEFAULT_STATE_NAMESPACE, Desired, Plan, PlanOptions, combined};

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
    /// Let through a scale-down the engine needs steps for (removing
    /// members, decommissioning nodes), once they are done; without it,
    /// plan refuses and names the steps.
    #[arg(long)]
    pub allow_replica_change: bool,
    /// Namespace of stateplan's inventory ConfigMaps and Leases.
    #[arg(long, value_name = "NS", default_value = DEFAULT_STATE_NAMESPACE)]
    pub state_namespace: String,
    #[command(flatten)]
    pub azure: AzureArgs,
}

impl ClusterArgs {
    pub fn kubernetes(&self) -> bool {
        self.only != Some(Only::Azure)
    }

    pub fn azure(&self) -> bool {
        self.only != Some(Only::Kubernetes)
    }
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Also list unchanged objects in the table.
    #[arg(long)]
    pub show_unchanged: bool,
}

/// The offline pipeline; `Err` is the exit code to stop with.
pub(super) fn prepare(
    out: &Output,
    templates: Option<&Path>,
    args: &ClusterArgs,
) -> Result<Loaded, u8> {
    let loaded = pipeline::load(&args.file, templates).map_err(|d| {
        out.diagnostics(&d, out.json());
        EXIT_ERROR
    })?;
    out.diagnostics(&loaded.diagnostics, false);
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

/// Plans the Azure half (when `--only` allows it) and the Kubernetes half
/// (with Azure's values, or "known after apply" markers for values the Azure
/// half will create), as one plan.
pub(super) async fn plan_both(
    args: &ClusterArgs,
    loaded: &Loaded,
    allow_replace: bool,
) -> Result<(Plan, Option<azure::plan::AzurePlan>), String> {
    let azure_plan = if args.azure() {
        let client = args.azure.client().map_err(|e| e.to_string())?;
        let opts = azure::plan::PlanOptions { allow_replace };
        Some(
            azure::plan(&client, loaded, &opts)
                .await
                .map_err(|e| e.to_string())?,
        )
    } else {
        None
    };
    if !args.kubernetes() {
        let az = azure_plan.as_ref().ok_or("nothing to plan")?;
        return Ok((
            combined::azure_only(&loaded.state.blueprint.name, az),
            azure_plan,
        ));
    }
    let desired = Desired {
        blueprint: &loaded.state.blueprint.name,
        objects: &loaded.rendered.objects,
        pending: &loaded.rendered.pending,
        workloads: &loaded.state.workloads,
    };
    let opts = PlanOptions {
        prune: args.prune,
        state_namespace: args.state_namespace.clone(),
        allow_replica_change: args.allow_replica_change,
        resolved: azure_plan
            .as_ref()
            .map(|az| combined::preview_resolved(az, &loaded.rendered.pending))
            .unwrap_or_default(),
        ..Default::default()
    };
    let client = live::connect(&target(args))
        .await
        .map_err(|e| e.to_string())?;
    let kube = plan::plan(&client, &desired, &opts)
        .await
        .map_err(|e| e.to_string())?;
    let plan = match &azure_plan {
        Some(az) => combined::combine(kube, az),
        None => kube,
    };
    Ok((plan, azure_plan))
}

/// Prints a plan as text (coloured on a terminal) or JSON.
pub(super) fn print_plan(out: &Output, p: &Plan, show_unchanged: bool) {
    if out.json() {
        out.stdout(&format!(
            "{}\n",
            serde_json::to_string_pretty(&plan::render_json(p)).unwrap_or_default()
        ));
    } else {
        out.stdout(&plan::render_text(p, out.color_stdout, show_unchanged));
    }
}

pub(super) fn print_error(out: &Output, e: &str) -> u8 {
    if out.json() {
        out.stdout(&format!(
            "{}\n",
            serde_json::json!({"error": e, "exit_code": EXIT_ERROR})
        ));
    }
    out.note(&format!("error: {e}"));
    EXIT_ERROR
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
    match rt.block_on(plan_both(&args.cluster, &loaded, false)) {
        Ok((p, _)) => {
            print_plan(out, &p, args.show_unchanged);
            p.exit_code()
        }
        Err(e) => print_error(out, &e),
    }
}
