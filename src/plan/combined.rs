//! One plan for both halves: the Azure half's changes as rows (wave 0) in
//! the same table and JSON as the Kubernetes rows.

use std::collections::BTreeMap;

use super::{Needs, Op, Plan, PlanRow, Scope};
use crate::azure::plan::AzurePlan;
use crate::render::{PendingValue, Wave};

/// What a placeholder shows in a plan when the Azure half will only create
/// the value during this apply (like Terraform's "known after apply").
pub const KNOWN_AFTER_APPLY: &str = "(known after the Azure half is applied)";

/// Placeholder values for planning the Kubernetes half together with the
/// Azure half: what Azure already has, and for the rest a marker that only
/// ever reaches a dry-run and the diff, never the cluster (apply re-plans
/// with the real values).
pub fn preview_resolved(az: &AzurePlan, pending: &[PendingValue]) -> BTreeMap<String, String> {
    let mut resolved = az.resolved.clone();
    for p in pending {
        resolved
            .entry(p.placeholder.clone())
            .or_insert_with(|| KNOWN_AFTER_APPLY.to_string());
    }
    resolved
}

/// The Azure changes as plan rows; field changes become the row's diff.
pub fn azure_rows(az: &AzurePlan) -> Vec<PlanRow> {
    az.changes
        .iter()
        .map(|c| {
            let summary = c.summary_row();
            let diff = (!c.fields.is_empty()).then(|| {
                c.fields
                    .iter()
                    .map(|f| {
                        format!(
                            "  {}: {} → {}{}\n",
                            f.field,
                            f.live,
                            f.desired,
                            if f.immutable { " (immutable)" } else { "" }
                        )
                    })
                    .collect::<String>()
            });
            let reason = match summary.label.as_str() {
                "create (generated)" | "exists" => format!("{}: {}", summary.label, summary.reason),
                _ => summary.reason,
            };
            PlanRow {
                wave: Wave::Azure,
                scope: Scope::Azure,
                kind: c.kind.as_str().to_string(),
                namespace: None,
                name: c.name.clone(),
                action: c.action,
                reason: Some(reason),
                drift: vec![],
                needs: c.needs_replace_flag().then_some(Needs::AllowReplace),
                diff,
                // Azure rows are shown here; the Azure half applies them.
                op: Op::None,
                api_version: String::new(),
            }
        })
        .collect()
}

/// `kube` with the Azure rows in front (they apply first).
pub fn combine(mut kube: Plan, az: &AzurePlan) -> Plan {
    let mut rows = azure_rows(az);
    rows.append(&mut kube.rows);
    kube.rows = rows;
    kube.refusals.splice(0..0, az.refusals());
    kube
}

/// A plan of the Azure half alone (`--only azure`).
pub fn azure_only(blueprint: &str, az: &AzurePlan) -> Plan {
    Plan {
        blueprint: blueprint.to_string(),
        rows: azure_rows(az),
        refusals: az.refusals(),
        notes: Vec::new(),
        inventory: Default::default(),
    }
}
