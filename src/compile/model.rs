//! The typed desired state: what each workload needs, with every choice made.
//! Templates receive these types (serialized) as their context.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::blueprint::{Redundancy, Tier};
use crate::catalog::{BackupHook, EngineProfile};

/// Marks a value that only exists after Azure creates something. Rendered
/// verbatim so it can never pass for a real value, and listed by `render`.
pub const PENDING_PREFIX: &str = "stateplan-pending:";

/// Everything one blueprint wants.
#[derive(Debug, Clone, Serialize)]
pub struct DesiredState {
    pub blueprint: BlueprintInfo,
    pub target: TargetInfo,
    pub workloads: Vec<Workload>,
    /// Node pools, one per pool name (workloads may share one).
    pub node_pools: Vec<NodePoolPlan>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BlueprintInfo {
    pub name: String,
    pub file: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetInfo {
    pub subscription: String,
    pub resource_group: String,
    pub cluster: String,
    pub location: String,
    pub key_vault: String,
    /// `https://<vault>.vault.azure.net/`
    pub vault_url: String,
    /// ARM ID of the vault (scope of the role assignment).
    pub vault_id: String,
    /// ARM ID of the cluster.
    pub cluster_id: String,
}

/// One compiled workload.
#[derive(Debug, Clone, Serialize)]
pub struct Workload {
    pub name: String,
    pub namespace: String,
    pub engine: Arc<EngineProfile>,
    pub version: String,
    pub image: String,
    pub replicas: u32,
    /// Per-replica volume size as written (`200Gi`).
    pub storage: String,
    pub storage_gib: u64,
    pub tier: Tier,
    pub redundancy: Redundancy,
    pub resources: Resources,
    pub storage_class: StorageClassPlan,
    pub pool: String,
    pub spread: Spread,
    pub pdb: Option<PdbPlan>,
    pub backup: Option<BackupPlan>,
    pub secrets: Vec<SecretPlan>,
    pub identity: IdentityPlan,
    pub names: Names,
    /// Labels on every object of this workload (ownership + user labels).
    pub labels: BTreeMap<String, String>,
    /// The subset that selects this workload's pods (stable, never changes).
    pub selector: BTreeMap<String, String>,
    /// User annotations, added to every object of this workload.
    pub annotations: BTreeMap<String, String>,
    /// For `explain`; templates have no use for the prose, and leaving it out
    /// of their context keeps per-workload rendering cheaper.
    #[serde(skip)]
    pub decisions: Vec<Decision>,
}

/// Names of the objects derived from the workload name.
#[derive(Debug, Clone, Serialize)]
pub struct Names {
    pub statefulset: String,
    pub headless_service: String,
    pub client_service: String,
    pub config_map: String,
    /// The Secret External Secrets writes.
    pub secret: String,
    pub secret_store: String,
    pub external_secret: String,
    /// Runs the database pods; no API token mounted.
    pub service_account: String,
    /// Used by External Secrets to read Key Vault (workload identity).
    pub eso_service_account: String,
    pub pdb: String,
    pub schedule: String,
    pub volume_claim: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Resources {
    pub cpu: String,
    pub memory: String,
    pub cpu_limit: Option<String>,
    pub memory_limit: String,
    /// Requests in numbers, for VM sizing and engine memory settings.
    pub cpu_millis: u64,
    pub memory_mib: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StorageClassPlan {
    pub name: String,
    pub provisioner: String,
    pub sku: String,
    pub parameters: BTreeMap<String, String>,
    pub binding_mode: String,
    pub access_mode: String,
    pub mount_options: Vec<String>,
    pub iops: Option<u64>,
    pub mbps: Option<u64>,
    pub zone_redundant_disk: bool,
}

/// The AKS agent pool a workload runs on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodePoolPlan {
    pub name: String,
    pub vm_size: String,
    pub zones: Vec<String>,
    pub count: Option<u32>,
    pub min_count: Option<u32>,
    pub max_count: Option<u32>,
    pub os_disk_size_gb: u32,
    pub max_pods: u32,
    pub ultra_ssd: bool,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<String>,
    /// Workloads placed on it.
    pub workloads: Vec<String>,
}

/// Pod placement rules.
#[derive(Debug, Clone, Serialize)]
pub struct Spread {
    /// One replica per zone (`topology.kubernetes.io/zone`, DoNotSchedule).
    pub zones: bool,
    /// One replica per node (`kubernetes.io/hostname`).
    pub hosts: bool,
    /// `DoNotSchedule` when there are at least as many nodes as replicas.
    pub host_when_unsatisfiable: String,
    /// Label/taint reserving the pool: `stateplan.io/pool`.
    pub pool_label: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PdbPlan {
    pub max_unavailable: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackupPlan {
    pub schedule: String,
    /// Velero `ttl` (Go duration).
    pub ttl: String,
    pub storage_location: Option<String>,
    pub pre: Option<BackupHook>,
    pub post: Option<BackupHook>,
}

/// One secret: generated into Key Vault, synced into the workload's Secret.
#[derive(Debug, Clone, Serialize)]
pub struct SecretPlan {
    /// Key in the Kubernetes Secret.
    pub key: String,
    /// Key Vault secret name.
    pub vault_name: String,
    pub length: usize,
    pub alphabet: crate::catalog::Alphabet,
    /// Needed by the engine (vs. added by the blueprint).
    pub engine: bool,
}

/// The Azure identity External Secrets uses to read the vault.
#[derive(Debug, Clone, Serialize)]
pub struct IdentityPlan {
    pub name: String,
    pub id: String,
    /// Known after Azure creates the identity: a [`PENDING_PREFIX`] value.
    pub client_id: String,
    /// The identity's Entra tenant, also a [`PENDING_PREFIX`] value. External
    /// Secrets needs it to exchange the service account token, and falls
    /// back to its controller's environment only when that controller runs
    /// with workload identity itself.
    pub tenant_id: String,
    pub federated_credential: String,
    pub subject: String,
}

/// One explained choice. Every workload keeps a dozen of these for
/// `explain`; fixed wording is borrowed rather than copied into each.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    /// What was decided (`disk`, `vm-size`, `pdb`, ...).
    pub topic: Cow<'static, str>,
    /// The outcome, short.
    pub choice: String,
    /// The rule that produced it.
    pub rule: Cow<'static, str>,
    /// Why, in a sentence or two.
    pub reason: Cow<'static, str>,
}
