//! The Azure half of `apply` (wave 0): node pools (long-running), then per
//! workload the managed identity, its federated credential (issuer from the
//! cluster), the role assignment (principal from the identity) and the Key
//! Vault secrets (generated when missing, never overwritten, never shown).
//! Returns the Azure-assigned values keyed by their placeholders so the
//! Kubernetes half can fill them in.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::client::AzureClient;
use super::models::{AgentPool, RoleAssignment, SecretSpec, UserAssignedIdentity};
use super::plan::{
    Action, AzureChange, AzurePlan, has_placeholder, record_identity, resolve_placeholders,
};
use super::{AKS_API_VERSION, AzureError, secret};
use crate::render::azure::AzureKind;

/// Receives one line per change (progress output).
pub type EventFn = Arc<dyn Fn(&str) + Send + Sync>;

/// Options for applying.
#[derive(Clone, Default)]
pub struct ApplyOptions {
    /// Allow node pool replacement (immutable property changes).
    pub allow_replace: bool,
    /// AKS pools the caller checked run no stateplan workload pods (from the
    /// Kubernetes side). Only these may be deleted; any other superseded pool
    /// is kept and reported as a follow-up.
    pub idle_pools: BTreeSet<String>,
    /// Told before and after each change (one line, for progress output).
    pub on_event: Option<EventFn>,
}

impl fmt::Debug for ApplyOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApplyOptions")
            .field("allow_replace", &self.allow_replace)
            .field("idle_pools", &self.idle_pools)
            .finish_non_exhaustive()
    }
}

/// One change carried out (or skipped).
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    pub action: Action,
    pub kind: AzureKind,
    pub name: String,
    /// `created`, `updated`, `replaced by pgorders2`, `kept: ...`.
    pub outcome: String,
}

/// What apply did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ApplyReport {
    pub applied: Vec<Applied>,
    /// Placeholder → Azure-assigned value (identity clientId/principalId/
    /// tenantId, cluster OIDC issuer).
    pub resolved: BTreeMap<String, String>,
    /// Things left for the operator or a later run (old pools still in use).
    pub follow_ups: Vec<String>,
}

/// Apply stopped: what was done before the error.
#[derive(Debug)]
pub struct ApplyFailed {
    pub report: ApplyReport,
    pub error: AzureError,
}

impl fmt::Display for ApplyFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.error)?;
        if !self.report.applied.is_empty() {
            write!(
                f,
                "\n  {} Azure change(s) were made before this; re-running apply converges",
                self.report.applied.len()
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for ApplyFailed {}

fn emit(opts: &ApplyOptions, msg: &str) {
    if let Some(f) = &opts.on_event {
        f(msg);
    }
}

fn decode<T: serde::de::DeserializeOwned>(c: &AzureChange, v: &Value) -> Result<T, AzureError> {
    serde_json::from_value(v.clone()).map_err(|e| AzureError::Decode {
        url: c.id.clone(),
        message: format!("planned body does not match its type: {e}"),
    })
}

/// Refuses up front what apply must not do.
fn preflight(plan: &AzurePlan, opts: &ApplyOptions) -> Result<(), AzureError> {
    let mut problems = Vec::new();
    for c in &plan.changes {
        let pool_replace = c.kind == AzureKind::AgentPool && c.action == Action::Replace;
        match &c.blocked {
            Some(_) if c.needs_replace_flag() && opts.allow_replace => {}
            Some(b) if !c.needs_replace_flag() => problems.push(format!(
                "{}/{}: {} refused: {b}",
                c.kind.as_str(),
                c.name,
                c.action.as_str()
            )),
            _ if pool_replace && !opts.allow_replace => problems.push(format!(
                "{}/{}: replace refused: {} cannot change on an existing node pool; re-run with --allow-replace to create a new pool the workloads move to (the old pool is deleted only once no stateplan workload runs on it)",
                c.kind.as_str(),
                c.name,
                c.fields
                    .iter()
                    .map(|f| f.field.trim_start_matches("properties."))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            _ => {}
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(AzureError::Precondition(problems))
    }
}

/// Applies the plan's Azure changes in order. Nothing is changed when a
/// change is blocked (e.g. a replace without `allow_replace`).
pub async fn apply(
    client: &AzureClient,
    plan: &AzurePlan,
    opts: &ApplyOptions,
) -> Result<ApplyReport, ApplyFailed> {
    let mut report = ApplyReport {
        resolved: plan.resolved.clone(),
        ..Default::default()
    };
    if let Err(error) = preflight(plan, opts) {
        return Err(ApplyFailed { report, error });
    }
    for c in &plan.changes {
        if let Err(error) = apply_one(client, c, opts, &mut report).await {
            return Err(ApplyFailed { report, error });
        }
    }
    Ok(report)
}

async fn apply_one(
    client: &AzureClient,
    c: &AzureChange,
    opts: &ApplyOptions,
    report: &mut ApplyReport,
) -> Result<(), AzureError> {
    let what = format!("{}/{}", c.kind.as_str(), c.name);
    let mut desired = c.desired.clone();
    resolve_placeholders(&mut desired, &report.resolved);
    let done = |outcome: String, report: &mut ApplyReport| {
        emit(opts, &format!("{what}: {outcome}"));
        report.applied.push(Applied {
            action: c.action,
            kind: c.kind,
            name: c.name.clone(),
            outcome,
        });
    };
    match (c.kind, c.action) {
        (_, Action::Unchanged) => {}
        (AzureKind::AgentPool, Action::Create | Action::Update) => {
            emit(
                opts,
                &format!("{what}: {} (waiting for AKS)", c.action.as_str()),
            );
            let body: AgentPool = decode(c, &desired)?;
            let _: AgentPool = client.arm_put(&c.id, AKS_API_VERSION, &body, &what).await?;
            done(
                if c.action == Action::Create {
                    "created"
                } else {
                    "updated"
                }
                .into(),
                report,
            );
        }
        (AzureKind::AgentPool, Action::Replace) => {
            let Some(new_name) = &c.replacement else {
                return Err(AzureError::precondition(format!(
                    "{what}: no free name for the replacement pool"
                )));
            };
            let cluster_id =
                c.id.rsplit_once("/agentPools/")
                    .map(|(cl, _)| cl.to_string())
                    .unwrap_or_default();
            let new_id = format!("{cluster_id}/agentPools/{new_name}");
            let new_what = format!("AgentPool/{new_name}");
            emit(
                opts,
                &format!("{what}: replacing with {new_name} (waiting for AKS)"),
            );
            let body: AgentPool = decode(c, &desired)?;
            let _: AgentPool = client
                .arm_put(&new_id, AKS_API_VERSION, &body, &new_what)
                .await?;
            let outcome = if opts.idle_pools.contains(&c.name) {
                client.arm_delete(&c.id, AKS_API_VERSION, &what).await?;
                format!("replaced by {new_name}; old pool deleted")
            } else {
                report.follow_ups.push(format!(
                    "node pool {} was replaced by {new_name} but still runs stateplan workloads: it is kept. Drain its nodes (`kubectl drain -l agentpool={}`) so the pods move to {new_name}, then re-run apply to delete it",
                    c.name, c.name
                ));
                format!("replaced by {new_name}; old pool kept until idle")
            };
            done(outcome, report);
        }
        (AzureKind::AgentPool, Action::Delete) => {
            if opts.idle_pools.contains(&c.name) {
                client.arm_delete(&c.id, AKS_API_VERSION, &what).await?;
                done("deleted".into(), report);
            } else {
                report.follow_ups.push(format!(
                    "superseded node pool {} still runs stateplan workloads (or that is unknown): kept. Drain it, then re-run apply",
                    c.name
                ));
                done("kept: still in use".into(), report);
            }
        }
        (AzureKind::UserAssignedIdentity, Action::Create | Action::Update) => {
            let body: UserAssignedIdentity = decode(c, &desired)?;
            let live: UserAssignedIdentity = client
                .arm_put(&c.id, super::MSI_API_VERSION, &body, &what)
                .await?;
            record_identity(&mut report.resolved, &c.source, &live);
            done(
                if c.action == Action::Create {
                    "created"
                } else {
                    "updated"
                }
                .into(),
                report,
            );
        }
        (AzureKind::FederatedIdentityCredential, Action::Create | Action::Update) => {
            if has_placeholder(&desired) {
                return Err(AzureError::precondition(format!(
                    "{what}: the cluster's OIDC issuer is unknown"
                )));
            }
            let _: Value = client
                .arm_put(&c.id, super::MSI_API_VERSION, &desired, &what)
                .await?;
            done(
                if c.action == Action::Create {
                    "created"
                } else {
                    "updated"
                }
                .into(),
                report,
            );
        }
        (AzureKind::RoleAssignment, Action::Delete) => {
            client
                .arm_delete(&c.id, super::AUTHORIZATION_API_VERSION, &what)
                .await?;
            done("deleted".into(), report);
        }
        (AzureKind::RoleAssignment, Action::Create | Action::Replace | Action::Update) => {
            if has_placeholder(&desired) {
                return Err(AzureError::precondition(format!(
                    "{what}: the identity's principal ID is unknown (was the identity created?)"
                )));
            }
            if c.action != Action::Create {
                client
                    .arm_delete(&c.id, super::AUTHORIZATION_API_VERSION, &what)
                    .await?;
            }
            let body: RoleAssignment = decode(c, &desired)?;
            put_role_assignment(client, &c.id, &body, &what).await?;
            done(
                if c.action == Action::Create {
                    "created"
                } else {
                    "replaced"
                }
                .into(),
                report,
            );
        }
        (AzureKind::KeyVaultSecret, Action::Create) => {
            let spec: SecretSpec = decode(c, &c.desired)?;
            // Checked again right before writing: never overwrite a secret
            // that appeared since the plan.
            if let Some(tags) = client.secret_tags(&spec.vault, &spec.name).await? {
                if let Some(why) = super::plan::foreign_secret(&spec, &tags) {
                    return Err(AzureError::precondition(format!(
                        "KeyVaultSecret/{} appeared since the plan: {why}",
                        spec.name
                    )));
                }
                done("exists (created since the plan); untouched".into(), report);
                return Ok(());
            }
            let value = secret::generate(spec.generate.length, spec.generate.alphabet)?;
            client
                .secret_set(
                    &spec.vault,
                    &spec.name,
                    &value,
                    &spec.content_type,
                    &spec.tags,
                )
                .await
                .map_err(|e| secret_hint(e, &spec))?;
            drop(value);
            done("created (generated)".into(), report);
        }
        (kind, action) => {
            return Err(AzureError::precondition(format!(
                "{}/{}: {} is not supported for {}",
                kind.as_str(),
                c.name,
                action.as_str(),
                kind.as_str()
            )));
        }
    }
    Ok(())
}

/// A new identity's service principal takes a moment to replicate in Entra
/// ID; `PrincipalNotFound` is retried for a while.
async fn put_role_assignment(
    client: &AzureClient,
    id: &str,
    body: &RoleAssignment,
    what: &str,
) -> Result<(), AzureError> {
    let retry = client.retry_policy().clone();
    let mut waited = Duration::ZERO;
    let limit = Duration::from_secs(120).min(retry.operation_timeout);
    loop {
        match client
            .arm_put::<_, Value>(id, super::AUTHORIZATION_API_VERSION, body, what)
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if e.status() == Some(409) && e.code() == Some("RoleAssignmentExists") => {
                return Ok(());
            }
            Err(e) if e.code() == Some("PrincipalNotFound") && waited < limit => {
                let d = retry.poll_interval;
                tokio::time::sleep(d).await;
                waited += d;
            }
            Err(e) => return Err(e),
        }
    }
}

fn secret_hint(e: AzureError, spec: &SecretSpec) -> AzureError {
    match e {
        AzureError::Api {
            status: 409,
            method,
            url,
            code,
            message,
        } => AzureError::Api {
            status: 409,
            method,
            url,
            code,
            message: format!(
                "{message}\n  hint: a deleted secret named {} is kept by soft-delete; recover it (`az keyvault secret recover --vault-name {} -n {}`) or purge it",
                spec.name, spec.vault, spec.name
            ),
        },
        other => other,
    }
}
