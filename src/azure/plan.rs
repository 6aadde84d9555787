//! The Azure half of `plan`: read live state (cluster, agent pools,
//! identities, federated credentials, role assignments, Key Vault secret
//! existence) and decide per resource: create / update / replace / delete /
//! unchanged. Independent of the Kubernetes plan; rows share its summary
//! columns (action, kind, name, reason).

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::client::AzureClient;
use super::models::{
    AgentPool, AgentPoolProperties, FederatedIdentityCredential, RoleAssignment, SecretSpec,
    UserAssignedIdentity,
};
use super::skus::{self, ResourceSku, SkuNeeds};
use super::{AKS_API_VERSION, AzureError, COMPUTE_SKUS_API_VERSION};
use crate::compile::{DesiredState, LABEL_POOL, PENDING_PREFIX};
use crate::render::azure::{
    AzureKind, AzureResource, TAG_BLUEPRINT, TAG_WORKLOAD, pending, vault_wide_assignment_id,
};

/// The `blocked` reason of a pool replace planned without the flag.
pub const REPLACE_NEEDS_FLAG: &str = "needs --allow-replace";

/// Concurrent reads while fetching live state.
const READ_CONCURRENCY: usize = 8;

/// What to do with one resource: the same actions as Kubernetes rows, so
/// both halves share one plan table.
pub use crate::plan::Action;

/// One field that differs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    /// `properties.count`.
    pub field: String,
    pub live: Value,
    pub desired: Value,
    /// Cannot change in place (needs a replace).
    pub immutable: bool,
}

/// The planned action for one Azure resource.
#[derive(Debug, Clone, Serialize)]
pub struct AzureChange {
    pub action: Action,
    pub kind: AzureKind,
    /// Resource name (for a replaced or superseded pool: the live pool).
    pub name: String,
    /// ARM ID or Key Vault secret URL of the resource acted on.
    pub id: String,
    pub workloads: Vec<String>,
    /// Short reason for the summary row.
    pub reason: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldChange>,
    /// Why apply will refuse this change (e.g. a replace without the flag).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
    /// Pool replace: the name of the new pool that takes over.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replacement: Option<String>,
    /// The body apply sends, placeholders filled where already known. For
    /// Key Vault secrets: the generation policy, never a value.
    pub desired: Value,
    /// The rendered resource's name (the blueprint's pool name for pools).
    #[serde(skip)]
    pub source: String,
}

/// A summary row, in the same columns as the Kubernetes rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SummaryRow {
    /// `create`, `update`, `replace`, `delete`, `unchanged`.
    pub action: &'static str,
    /// What is shown: `create (generated)`, `exists`, `replace (needs --allow-replace)`.
    pub label: String,
    pub kind: &'static str,
    pub name: String,
    pub reason: String,
}

/// The live cluster facts the Azure half depends on.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterInfo {
    pub id: String,
    pub oidc_issuer_url: String,
}

/// The Azure half of a plan.
#[derive(Debug, Clone, Serialize)]
pub struct AzurePlan {
    pub cluster: ClusterInfo,
    /// In apply order: node pools, then per workload identity, federated
    /// credential, secrets, a role assignment per secret; last, deletions
    /// of the vault-wide assignments earlier versions made.
    pub changes: Vec<AzureChange>,
    /// Placeholder → value for everything already known from live state.
    pub resolved: BTreeMap<String, String>,
}

impl AzurePlan {
    /// Anything to do.
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action != Action::Unchanged)
    }

    /// Number of changes (not unchanged).
    pub fn change_count(&self) -> usize {
        self.changes
            .iter()
            .filter(|c| c.action != Action::Unchanged)
            .count()
    }

    /// Whether a change waits for `--allow-replace`.
    pub fn needs_replace_flag(&self) -> bool {
        self.changes.iter().any(AzureChange::needs_replace_flag)
    }

    /// Changes apply refuses whatever the flags, as `Kind/name: why`.
    pub fn refusals(&self) -> Vec<String> {
        self.changes
            .iter()
            .filter_map(|c| {
                c.refused()
                    .map(|why| format!("{}/{}: {why}", c.kind.as_str(), c.name))
            })
            .collect()
    }

    /// Summary rows, one per resource.
    pub fn summary(&self) -> Vec<SummaryRow> {
        self.changes.iter().map(AzureChange::summary_row).collect()
    }

    /// Plain-text table (action, kind/name, reason) plus field changes.
    pub fn to_text(&self) -> String {
        let rows = self.summary();
        let w = rows.iter().map(|r| r.label.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (row, c) in rows.iter().zip(&self.changes) {
            out.push_str(&format!(
                "{:w$}  {}/{}  {}\n",
                row.label, row.kind, row.name, row.reason
            ));
            for f in &c.fields {
                out.push_str(&format!(
                    "{:w$}    {}: {} → {}{}\n",
                    "",
                    f.field,
                    f.live,
                    f.desired,
                    if f.immutable { " (immutable)" } else { "" }
                ));
            }
        }
        out
    }
}

impl AzureChange {
    /// Blocked only until `--allow-replace` is passed.
    pub fn needs_replace_flag(&self) -> bool {
        self.blocked.as_deref() == Some(REPLACE_NEEDS_FLAG)
    }

    /// Why apply refuses this change whatever the flags.
    pub fn refused(&self) -> Option<&str> {
        self.blocked
            .as_deref()
            .filter(|_| !self.needs_replace_flag())
    }

    pub fn summary_row(&self) -> SummaryRow {
        let label = match (self.kind, self.action) {
            (AzureKind::KeyVaultSecret, Action::Create) => "create (generated)".to_string(),
            (AzureKind::KeyVaultSecret, Action::Unchanged) => "exists".to_string(),
            (_, a) if self.blocked.is_some() => format!("{} (blocked)", a.as_str()),
            (_, a) => a.as_str().to_string(),
        };
        let reason = match &self.blocked {
            Some(b) => format!("{}; {b}", self.reason),
            None => self.reason.clone(),
        };
        SummaryRow {
            action: self.action.as_str(),
            label,
            kind: self.kind.as_str(),
            name: self.name.clone(),
            reason,
        }
    }
}

/// Options for planning.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Allow replacing node pools whose immutable properties changed.
    pub allow_replace: bool,
}

/// `Microsoft.ContainerService/managedClusters`, the fields read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedCluster {
    #[serde(default)]
    pub properties: ManagedClusterProperties,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedClusterProperties {
    #[serde(default)]
    pub oidc_issuer_profile: Option<OidcIssuerProfile>,
    #[serde(default)]
    pub security_profile: Option<SecurityProfile>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct OidcIssuerProfile {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default, rename = "issuerURL")]
    pub issuer_url: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityProfile {
    #[serde(default)]
    pub workload_identity: Option<WorkloadIdentityProfile>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct WorkloadIdentityProfile {
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// Reads the cluster; errors name the `az aks update` flags that fix it.
pub async fn read_cluster(
    client: &AzureClient,
    state: &DesiredState,
) -> Result<ClusterInfo, AzureError> {
    let t = &state.target;
    let Some(cluster) = client
        .arm_get::<ManagedCluster>(&t.cluster_id, AKS_API_VERSION)
        .await?
    else {
        return Err(AzureError::precondition(format!(
            "AKS cluster {} not found in resource group {} of subscription {}; check [target] in the blueprint and `az account show`",
            t.cluster, t.resource_group, t.subscription
        )));
    };
    let p = cluster.properties;
    let oidc = p.oidc_issuer_profile.unwrap_or_default();
    let issuer = oidc.issuer_url.filter(|u| !u.is_empty());
    let wi = p
        .security_profile
        .and_then(|s| s.workload_identity)
        .and_then(|w| w.enabled)
        .unwrap_or(false);
    let mut missing = Vec::new();
    if !oidc.enabled.unwrap_or(false) || issuer.is_none() {
        missing.push("the OIDC issuer");
    }
    if !wi {
        missing.push("workload identity");
    }
    match issuer {
        Some(issuer) if missing.is_empty() => Ok(ClusterInfo {
            id: t.cluster_id.clone(),
            oidc_issuer_url: issuer,
        }),
        _ => Err(AzureError::precondition(format!(
            "AKS cluster {} does not have {} enabled; External Secrets reads Key Vault through workload identity. Enable it with:\n  az aks update --enable-oidc-issuer --enable-workload-identity -g {} -n {}",
            t.cluster,
            missing.join(" and "),
            t.resource_group,
            t.cluster
        ))),
    }
}

/// Placeholder keys for an identity's Azure-assigned values.
pub fn identity_placeholders(identity: &str) -> [(String, &'static str); 3] {
    [
        (
            pending(&format!("azure/identity/{identity}/clientId")),
            "clientId",
        ),
        (
            pending(&format!("azure/identity/{identity}/principalId")),
            "principalId",
        ),
        (
            pending(&format!("azure/identity/{identity}/tenantId")),
            "tenantId",
        ),
    ]
}

/// The placeholder of the cluster's OIDC issuer.
pub fn issuer_placeholder(cluster: &str) -> String {
    pending(&format!("azure/cluster/{cluster}/oidcIssuerUrl"))
}

pub(crate) fn record_identity(
    resolved: &mut BTreeMap<String, String>,
    name: &str,
    live: &UserAssignedIdentity,
) {
    let Some(p) = &live.properties else { return };
    for (key, field) in identity_placeholders(name) {
        let v = match field {
            "clientId" => &p.client_id,
            "principalId" => &p.principal_id,
            _ => &p.tenant_id,
        };
        if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
            resolved.insert(key, v.clone());
        }
    }
}

/// Replaces every `stateplan-pending:` placeholder found in `resolved`
/// inside the strings of `value` (recursively).
pub fn resolve_placeholders(value: &mut Value, resolved: &BTreeMap<String, String>) {
    match value {
        Value::String(s) if s.contains(PENDING_PREFIX) => {
            // Longest keys first so no key is a prefix of a longer match.
            let mut keys: Vec<&String> = resolved.keys().collect();
            keys.sort_by_key(|k| std::cmp::Reverse(k.len()));
            for k in keys {
                if s.contains(k.as_str()) {
                    *s = s.replace(k.as_str(), &resolved[k]);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|v| resolve_placeholders(v, resolved)),
        Value::Object(o) => o
            .values_mut()
            .for_each(|v| resolve_placeholders(v, resolved)),
        _ => {}
    }
}

/// Whether a value still holds a placeholder.
pub fn has_placeholder(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains(PENDING_PREFIX),
        Value::Array(a) => a.iter().any(has_placeholder),
        Value::Object(o) => o.values().any(has_placeholder),
        _ => false,
    }
}

/// The other name a replaced pool gets (blue/green): AKS pool names are at
/// most 12 characters, so the base is cut to 11 and a digit appended.
pub fn alternate_pool_name(name: &str) -> String {
    let base: String = name.chars().take(11).collect();
    let alt = format!("{base}2");
    if alt == name { format!("{base}3") } else { alt }
}

fn managed_by_stateplan(p: &AgentPool) -> bool {
    p.properties
        .tags
        .as_ref()
        .is_some_and(|t| t.get("managed-by").map(String::as_str) == Some("stateplan"))
}

fn pool_label(p: &AgentPool) -> Option<&str> {
    p.properties
        .node_labels
        .as_ref()
        .and_then(|l| l.get(LABEL_POOL))
        .map(String::as_str)
}

fn sorted(v: &Option<Vec<String>>) -> Vec<String> {
    let mut v = v.clone().unwrap_or_default();
    v.sort();
    v
}

/// Immutable properties that differ (desired vs live).
fn immutable_changes(desired: &AgentPool, live: &AgentPool) -> Vec<FieldChange> {
    let d = &desired.properties;
    let l = &live.properties;
    let mut out = Vec::new();
    let mut push = |field: &str, live: Value, desired: Value| {
        out.push(FieldChange {
            field: format!("properties.{field}"),
            live,
            desired,
            immutable: true,
        })
    };
    if !d.vm_size.eq_ignore_ascii_case(&l.vm_size) {
        push("vmSize", json!(l.vm_size), json!(d.vm_size));
    }
    if sorted(&d.availability_zones) != sorted(&l.availability_zones) {
        push(
            "availabilityZones",
            json!(sorted(&l.availability_zones)),
            json!(sorted(&d.availability_zones)),
        );
    }
    if let (Some(dv), Some(lv)) = (&d.os_disk_type, &l.os_disk_type)
        && !dv.eq_ignore_ascii_case(lv)
    {
        push("osDiskType", json!(lv), json!(dv));
    }
    if let (Some(dv), Some(lv)) = (d.os_disk_size_gb, l.os_disk_size_gb)
        && dv != lv
    {
        push("osDiskSizeGB", json!(lv), json!(dv));
    }
    if let (Some(dv), Some(lv)) = (d.max_pods, l.max_pods)
        && dv != lv
    {
        push("maxPods", json!(lv), json!(dv));
    }
    if d.enable_ultra_ssd.unwrap_or(false) != l.enable_ultra_ssd.unwrap_or(false) {
        push(
            "enableUltraSSD",
            json!(l.enable_ultra_ssd.unwrap_or(false)),
            json!(d.enable_ultra_ssd.unwrap_or(false)),
        );
    }
    out
}

/// Properties that change in place.
fn mutable_changes(desired: &AgentPool, live: &AgentPool) -> Vec<FieldChange> {
    let d = &desired.properties;
    let l = &live.properties;
    let mut out = Vec::new();
    let mut push = |field: &str, live: Value, desired: Value| {
        out.push(FieldChange {
            field: format!("properties.{field}"),
            live,
            desired,
            immutable: false,
        })
    };
    let d_auto = d.enable_auto_scaling.unwrap_or(false);
    let l_auto = l.enable_auto_scaling.unwrap_or(false);
    if d_auto != l_auto {
        push("enableAutoScaling", json!(l_auto), json!(d_auto));
    }
    if d_auto {
        if d.min_count != l.min_count {
            push("minCount", json!(l.min_count), json!(d.min_count));
        }
        if d.max_count != l.max_count {
            push("maxCount", json!(l.max_count), json!(d.max_count));
        }
    } else if d.count.is_some() && d.count != l.count {
        push("count", json!(l.count), json!(d.count));
    }
    let empty = BTreeMap::new();
    let dl = d.node_labels.as_ref().unwrap_or(&empty);
    let ll = l.node_labels.as_ref().unwrap_or(&empty);
    if dl != ll {
        push("nodeLabels", json!(ll), json!(dl));
    }
    if sorted(&d.node_taints) != sorted(&l.node_taints) {
        push(
            "nodeTaints",
            json!(sorted(&l.node_taints)),
            json!(sorted(&d.node_taints)),
        );
    }
    if let (Some(dm), Some(lm)) = (&d.mode, &l.mode)
        && !dm.eq_ignore_ascii_case(lm)
    {
        push("mode", json!(lm), json!(dm));
    }
    let lt = l.tags.as_ref().unwrap_or(&empty);
    if let Some(dt) = &d.tags
        && dt.iter().any(|(k, v)| lt.get(k) != Some(v))
    {
        push("tags", json!(lt), json!(dt));
    }
    out
}

/// The body of an in-place update: desired, except that the autoscaler owns
/// the count (kept, clamped to the new range).
/// The PUT body of an in-place pool update: the desired properties over
/// the live pool's others. An agent pool PUT replaces the whole resource;
/// sending only what stateplan manages would drop the pool's subnet,
/// upgrade settings or kubelet config, and a missing orchestratorVersion
/// would move the pool to the control plane's version.
pub(crate) fn update_body(desired: &AgentPool, live: &AgentPool) -> AgentPool {
    let mut body = desired.clone();
    body.properties.orchestrator_version = live.properties.orchestrator_version.clone();
    for (k, v) in &live.properties.other {
        if !AgentPoolProperties::READ_ONLY.contains(&k.as_str()) {
            body.properties
                .other
                .entry(k.clone())
                .or_insert_with(|| v.clone());
        }
    }
    if desired.properties.enable_auto_scaling.unwrap_or(false) {
        let min = desired.properties.min_count.unwrap_or(0);
        let max = desired.properties.max_count.unwrap_or(u32::MAX);
        let count = live
            .properties
            .count
            .unwrap_or(min)
            .clamp(min, max.max(min));
        body.properties.count = Some(count);
    }
    body
}

fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn from_value<T: serde::de::DeserializeOwned>(
    r: &AzureResource,
    v: &Value,
) -> Result<T, AzureError> {
    serde_json::from_value(v.clone()).map_err(|e| AzureError::Decode {
        url: r.id.clone(),
        message: format!("rendered body does not match its type: {e}"),
    })
}

fn change(r: &AzureResource, action: Action, reason: impl Into<String>) -> AzureChange {
    AzureChange {
        action,
        kind: r.kind,
        name: r.name.clone(),
        id: r.id.clone(),
        workloads: r.workloads.clone(),
        reason: reason.into(),
        fields: Vec::new(),
        blocked: None,
        replacement: None,
        desired: r.body.clone(),
        source: r.name.clone(),
    }
}

fn pool_id(cluster_id: &str, name: &str) -> String {
    format!("{cluster_id}/agentPools/{name}")
}

/// Plans the node pools against the live ones.
fn plan_pools(
    state: &DesiredState,
    resources: &[AzureResource],
    live: &[AgentPool],
    opts: &PlanOptions,
) -> Result<Vec<AzureChange>, AzureError> {
    let cluster_id = &state.target.cluster_id;
    let live_names: Vec<&str> = live.iter().filter_map(|p| p.name.as_deref()).collect();
    let mut out = Vec::new();
    for r in resources.iter().filter(|r| r.kind == AzureKind::AgentPool) {
        let desired: AgentPool = from_value(r, &r.body)?;
        let candidates: Vec<&AgentPool> = live
            .iter()
            .filter(|p| {
                p.name.as_deref() == Some(r.name.as_str())
                    || (managed_by_stateplan(p) && pool_label(p) == Some(r.name.as_str()))
            })
            .collect();
        if candidates.is_empty() {
            out.push(change(r, Action::Create, "new node pool"));
            continue;
        }
        let exact_first = |a: &&&AgentPool, b: &&&AgentPool| {
            let ka = a.name.as_deref() != Some(r.name.as_str());
            let kb = b.name.as_deref() != Some(r.name.as_str());
            ka.cmp(&kb)
        };
        let mut matching: Vec<&&AgentPool> = candidates
            .iter()
            .filter(|p| immutable_changes(&desired, p).is_empty())
            .collect();
        matching.sort_by(exact_first);
        let current: &AgentPool = match matching.first() {
            Some(p) => p,
            None => {
                let mut all: Vec<&&AgentPool> = candidates.iter().collect();
                all.sort_by(exact_first);
                all[0]
            }
        };
        let current_name = current.name.clone().unwrap_or_else(|| r.name.clone());
        let immutable = immutable_changes(&desired, current);
        let mut c = change(r, Action::Unchanged, "");
        c.name = current_name.clone();
        c.id = pool_id(cluster_id, &current_name);
        if immutable.is_empty() {
            let mut fields = mutable_changes(&desired, current);
            let failed = current
                .properties
                .provisioning_state
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("Failed"));
            if !fields.is_empty() || failed {
                c.action = Action::Update;
                let names: Vec<&str> = fields
                    .iter()
                    .map(|f| f.field.trim_start_matches("properties."))
                    .collect();
                c.reason = if fields.is_empty() {
                    "last operation failed; re-applying".into()
                } else {
                    format!("in place: {}", names.join(", "))
                };
                // The Azure half runs first, and AKS picks the nodes to
                // remove by its own rules, not by the pods on them.
                let shrinks = fields.iter().any(|f| {
                    f.field == "properties.count"
                        && matches!((f.live.as_u64(), f.desired.as_u64()), (Some(l), Some(d)) if d < l)
                });
                if shrinks {
                    c.reason.push_str("; fewer nodes: AKS chooses which nodes go and drains them before the StatefulSet scales down, so a database pod on one of them may wait for a node in its disk's zone (scale the StatefulSet down first with --only kubernetes to avoid it)");
                }
            } else {
                c.reason = "matches".into();
            }
            c.desired = to_value(&update_body(&desired, current));
            c.fields.append(&mut fields);
        } else {
            c.action = Action::Replace;
            let names: Vec<&str> = immutable
                .iter()
                .map(|f| f.field.trim_start_matches("properties."))
                .collect();
            c.reason = format!(
                "immutable {} changed: new pool, workloads move, old pool removed once idle",
                names.join(", ")
            );
            c.fields = immutable;
            let free = [r.name.clone(), alternate_pool_name(&r.name)]
                .into_iter()
                .find(|n| !live_names.contains(&n.as_str()));
            match free {
                Some(n) => c.replacement = Some(n),
                None => {
                    c.blocked = Some(format!(
                        "both {} and {} exist: finish the previous replacement first (the old pool is deleted once no stateplan workload runs on it)",
                        r.name,
                        alternate_pool_name(&r.name)
                    ))
                }
            }
            if c.blocked.is_none() && !opts.allow_replace {
                c.blocked = Some(REPLACE_NEEDS_FLAG.into());
            }
        }
        out.push(c);
        // Other live pools carrying this pool's label were superseded by a
        // replacement.
        for p in candidates {
            let Some(name) = p.name.as_deref() else {
                continue;
            };
            if name == current_name {
                continue;
            }
            let mut d = change(r, Action::Delete, "");
            d.name = name.to_string();
            d.id = pool_id(cluster_id, name);
            d.reason = format!(
                "superseded by {current_name}; deleted only when no stateplan workload runs on it"
            );
            d.desired = Value::Null;
            out.push(d);
        }
    }
    Ok(out)
}

/// Workloads' disk SKUs needing premium storage, per pool.
fn premium_needs(state: &DesiredState, pool: &str) -> Option<String> {
    let why: Vec<String> = state
        .workloads
        .iter()
        .filter(|w| w.pool == pool)
        .filter(|w| {
            w.storage_class.provisioner == "disk.csi.azure.com"
                && (w.storage_class.sku.starts_with("Premium")
                    || w.storage_class.sku.starts_with("UltraSSD"))
        })
        .map(|w| format!("{}'s {} disks", w.name, w.storage_class.sku))
        .collect();
    (!why.is_empty()).then(|| why.join(" and "))
}

/// Validates the VM sizes of pools being created or replaced.
async fn validate_skus(
    client: &AzureClient,
    state: &DesiredState,
    changes: &[AzureChange],
) -> Result<(), AzureError> {
    let pools: Vec<&crate::compile::NodePoolPlan> = state
        .node_pools
        .iter()
        .filter(|p| {
            changes.iter().any(|c| {
                c.kind == AzureKind::AgentPool
                    && matches!(c.action, Action::Create | Action::Replace)
                    && c.source == p.name
            })
        })
        .collect();
    if pools.is_empty() {
        return Ok(());
    }
    let t = &state.target;
    let location = t.location.to_ascii_lowercase();
    let skus: Vec<ResourceSku> = client
        .arm_list(
            &format!(
                "/subscriptions/{}/providers/Microsoft.Compute/skus",
                t.subscription
            ),
            COMPUTE_SKUS_API_VERSION,
            &format!("%24filter=location%20eq%20%27{location}%27"),
        )
        .await?;
    let mut problems = Vec::new();
    for p in pools {
        for msg in skus::check(
            &skus,
            &SkuNeeds {
                vm_size: &p.vm_size,
                location: &t.location,
                zones: &p.zones,
                premium_for: premium_needs(state, &p.name),
                ultra_ssd: p.ultra_ssd,
            },
        ) {
            problems.push(format!("node pool {}: {msg}", p.name));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(AzureError::Precondition(problems))
    }
}

/// Live state of one non-pool resource.
enum Live {
    Identity(Option<UserAssignedIdentity>),
    Credential(Option<FederatedIdentityCredential>),
    Role(Option<RoleAssignment>),
    /// The secret's tags, `None` when it does not exist.
    Secret(Option<BTreeMap<String, String>>),
}

async fn read_live(client: &AzureClient, r: &AzureResource) -> Result<Live, AzureError> {
    Ok(match r.kind {
        AzureKind::UserAssignedIdentity => {
            Live::Identity(client.arm_get(&r.id, r.api_version).await?)
        }
        AzureKind::FederatedIdentityCredential => {
            Live::Credential(client.arm_get(&r.id, r.api_version).await?)
        }
        AzureKind::RoleAssignment => Live::Role(client.arm_get(&r.id, r.api_version).await?),
        AzureKind::KeyVaultSecret => {
            let spec: SecretSpec = from_value(r, &r.body)?;
            Live::Secret(client.secret_tags(&spec.vault, &spec.name).await?)
        }
        AzureKind::AgentPool => Live::Secret(None),
    })
}

fn last_segment(id: &str) -> String {
    id.rsplit('/').next().unwrap_or(id).to_ascii_lowercase()
}

/// The identity name whose principal a role assignment refers to.
fn identity_of(principal_placeholder: &str) -> Option<&str> {
    principal_placeholder
        .strip_prefix(PENDING_PREFIX)?
        .strip_prefix("azure/identity/")?
        .strip_suffix("/principalId")
}

/// Plans the Azure half: reads live state and compares.
pub async fn plan(
    client: &AzureClient,
    state: &DesiredState,
    resources: &[AzureResource],
    opts: &PlanOptions,
) -> Result<AzurePlan, AzureError> {
    let cluster = read_cluster(client, state).await?;
    let mut resolved = BTreeMap::new();
    resolved.insert(
        issuer_placeholder(&state.target.cluster),
        cluster.oidc_issuer_url.clone(),
    );

    let live_pools: Vec<AgentPool> = if resources.iter().any(|r| r.kind == AzureKind::AgentPool) {
        client
            .arm_list(
                &format!("{}/agentPools", state.target.cluster_id),
                AKS_API_VERSION,
                "",
            )
            .await?
    } else {
        Vec::new()
    };
    let mut changes = plan_pools(state, resources, &live_pools, opts)?;
    let new_pools = changes
        .iter()
        .filter(|c| {
            c.kind == AzureKind::AgentPool && matches!(c.action, Action::Create | Action::Replace)
        })
        .count();
    if live_pools.len() + new_pools > crate::compile::MAX_AGENT_POOLS {
        return Err(AzureError::precondition(format!(
            "cluster {} has {} node pools and this plan adds {new_pools}; AKS allows at most {} per cluster",
            state.target.cluster,
            live_pools.len(),
            crate::compile::MAX_AGENT_POOLS
        )));
    }
    validate_skus(client, state, &changes).await?;

    let others: Vec<&AzureResource> = resources
        .iter()
        .filter(|r| r.kind != AzureKind::AgentPool)
        .collect();
    let lives: Vec<Live> = futures::stream::iter(others.iter().map(|r| read_live(client, r)))
        .buffered(READ_CONCURRENCY)
        .try_collect()
        .await?;

    // Identities first: their principal/client IDs resolve the rest.
    let mut live_identities = Vec::new();
    for (r, live) in others.iter().zip(&lives) {
        if let Live::Identity(Some(i)) = live {
            record_identity(&mut resolved, &r.name, i);
            live_identities.push(*r);
        }
    }
    for (r, live) in others.iter().zip(lives) {
        let mut desired = r.body.clone();
        resolve_placeholders(&mut desired, &resolved);
        let mut c = change(r, Action::Unchanged, "");
        c.desired = desired.clone();
        match live {
            Live::Identity(None) => {
                c.action = Action::Create;
                c.reason = "new managed identity".into();
            }
            Live::Identity(Some(l)) => {
                let d: UserAssignedIdentity = from_value(r, &desired)?;
                if !d.location.eq_ignore_ascii_case(&l.location) {
                    c.action = Action::Replace;
                    c.reason = format!("location is {}, blueprint says {}", l.location, d.location);
                    c.blocked = Some(format!(
                        "an identity cannot move; delete {} (and its federated credentials) or rename the workload",
                        r.name
                    ));
                } else if d.tags.iter().any(|(k, v)| l.tags.get(k) != Some(v)) {
                    c.action = Action::Update;
                    c.reason = "tags".into();
                    c.fields.push(FieldChange {
                        field: "tags".into(),
                        live: to_value(&l.tags),
                        desired: to_value(&d.tags),
                        immutable: false,
                    });
                } else {
                    c.reason = "matches".into();
                }
            }
            Live::Credential(None) => {
                c.action = Action::Create;
                c.reason = "new federated credential".into();
            }
            Live::Credential(Some(l)) => {
                let d: FederatedIdentityCredential = from_value(r, &desired)?;
                let (dp, lp) = (&d.properties, &l.properties);
                for (field, lv, dv) in [
                    ("properties.issuer", json!(lp.issuer), json!(dp.issuer)),
                    ("properties.subject", json!(lp.subject), json!(dp.subject)),
                    (
                        "properties.audiences",
                        json!(sorted(&Some(lp.audiences.clone()))),
                        json!(sorted(&Some(dp.audiences.clone()))),
                    ),
                ] {
                    if lv != dv {
                        c.fields.push(FieldChange {
                            field: field.into(),
                            live: lv,
                            desired: dv,
                            immutable: false,
                        });
                    }
                }
                if c.fields.is_empty() {
                    c.reason = "matches".into();
                } else {
                    c.action = Action::Update;
                    c.reason = "in place: issuer/subject/audiences".into();
                }
            }
            Live::Role(None) => {
                c.action = Action::Create;
                c.reason = "Key Vault Secrets User on this secret".into();
            }
            Live::Role(Some(l)) => {
                let d: RoleAssignment = from_value(r, &desired)?;
                let pending_principal = d.properties.principal_id.starts_with(PENDING_PREFIX);
                let principal_differs = !pending_principal
                    && !d
                        .properties
                        .principal_id
                        .eq_ignore_ascii_case(&l.properties.principal_id);
                let role_differs = last_segment(&d.properties.role_definition_id)
                    != last_segment(&l.properties.role_definition_id);
                if principal_differs || role_differs || pending_principal {
                    c.action = Action::Replace;
                    c.reason = if pending_principal {
                        format!(
                            "identity {} is new; the assignment is recreated for its principal",
                            identity_of(
                                r.body["properties"]["principalId"]
                                    .as_str()
                                    .unwrap_or_default()
                            )
                            .unwrap_or("?")
                        )
                    } else {
                        "assigned to another principal or role (assignments are immutable)".into()
                    };
                    c.fields.push(FieldChange {
                        field: "properties.principalId".into(),
                        live: json!(l.properties.principal_id),
                        desired: json!(d.properties.principal_id),
                        immutable: true,
                    });
                } else {
                    c.reason = "matches".into();
                }
            }
            Live::Secret(Some(tags)) => {
                let spec: SecretSpec = from_value(r, &r.body)?;
                c.reason = "exists; never overwritten".into();
                c.blocked = foreign_secret(&spec, &tags);
            }
            Live::Secret(None) => {
                let spec: SecretSpec = from_value(r, &r.body)?;
                c.action = Action::Create;
                c.reason = format!(
                    "generated: {} {}",
                    spec.generate.length,
                    match spec.generate.alphabet {
                        crate::catalog::Alphabet::Alphanumeric => "alphanumeric characters",
                        crate::catalog::Alphabet::Hex => "hex characters",
                        crate::catalog::Alphabet::Base64Bytes => "random bytes (base64)",
                    }
                );
            }
        }
        changes.push(c);
    }
    changes.extend(vault_wide_assignments(client, state, &live_identities).await?);
    Ok(AzurePlan {
        cluster,
        changes,
        resolved,
    })
}

/// Deletions of the vault-wide role assignments earlier versions made for
/// identities that exist: the per-secret assignments (planned before these)
/// replace them, and left in place they keep every secret in the vault
/// readable to the workload.
async fn vault_wide_assignments(
    client: &AzureClient,
    state: &DesiredState,
    live_identities: &[&AzureResource],
) -> Result<Vec<AzureChange>, AzureError> {
    let ids: Vec<String> = live_identities
        .iter()
        .map(|r| vault_wide_assignment_id(&state.target.vault_id, &r.id))
        .collect();
    let found: Vec<Option<RoleAssignment>> = futures::stream::iter(
        ids.iter()
            .map(|id| client.arm_get(id, crate::azure::AUTHORIZATION_API_VERSION)),
    )
    .buffered(READ_CONCURRENCY)
    .try_collect()
    .await?;
    Ok(live_identities
        .iter()
        .zip(ids)
        .zip(found)
        .filter(|(_, live)| live.is_some())
        .map(|((r, id), _)| {
            let mut c = change(
                r,
                Action::Delete,
                format!(
                    "vault-wide read access of {}, replaced by one assignment per secret",
                    r.name
                ),
            );
            c.kind = AzureKind::RoleAssignment;
            c.name = id.rsplit('/').next().unwrap_or_default().to_string();
            c.id = id;
            c.desired = Value::Null;
            c
        })
        .collect())
}

/// Why an existing secret must not be used: stateplan tagged it for another
/// blueprint or workload, whose database already uses the value. Two
/// blueprints sharing a vault (staging and production, say) with a workload
/// of the same name would otherwise share a password. A secret without
/// stateplan's tags was put there by hand and is used as it is.
pub(crate) fn foreign_secret(
    spec: &SecretSpec,
    live_tags: &BTreeMap<String, String>,
) -> Option<String> {
    fn owner(tags: &BTreeMap<String, String>) -> (Option<&String>, Option<&String>) {
        (tags.get(TAG_BLUEPRINT), tags.get(TAG_WORKLOAD))
    }
    let (Some(live_bp), Some(live_w)) = owner(live_tags) else {
        return None;
    };
    (owner(&spec.tags) != (Some(live_bp), Some(live_w))).then(|| {
        format!(
            "the secret belongs to workload {live_w} of blueprint {live_bp} (its tags), whose database uses its value; give this blueprint its own key_vault or rename the workload"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_resolve_inside_strings() {
        let mut v = json!({"a": ["stateplan-pending:azure/identity/x/clientId"], "b": "pre stateplan-pending:azure/cluster/c/oidcIssuerUrl", "c": 1});
        let mut m = BTreeMap::new();
        m.insert(
            "stateplan-pending:azure/identity/x/clientId".to_string(),
            "cid".to_string(),
        );
        m.insert(issuer_placeholder("c"), "https://issuer/".to_string());
        resolve_placeholders(&mut v, &m);
        assert_eq!(v, json!({"a": ["cid"], "b": "pre https://issuer/", "c": 1}));
        assert!(!has_placeholder(&v));
    }

    #[test]
    fn alternate_names_fit_aks_limits() {
        assert_eq!(alternate_pool_name("pgorders"), "pgorders2");
        assert_eq!(alternate_pool_name("abcdefghijkl"), "abcdefghijk2");
        assert_eq!(alternate_pool_name("abcdefghijk2"), "abcdefghijk3");
        assert_eq!(
            identity_of(&pending("azure/identity/id-a/principalId")),
            Some("id-a")
        );
    }
}
