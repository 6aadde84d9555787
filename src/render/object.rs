//! The unit every later stage works on: one rendered Kubernetes object with
//! the metadata plan and apply need to order, own and diff it.

use serde::Serialize;

/// Apply waves, in the order apply walks them. Dependencies only point to
/// earlier waves, so waiting for a wave to be ready before starting the next
/// one is always safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Wave {
    /// Azure resources (node pools, identities, Key Vault secrets).
    Azure = 0,
    /// Namespaces and StorageClasses: everything else lives in or uses them.
    Foundation = 1,
    /// ServiceAccounts, SecretStore, ExternalSecret, ConfigMaps.
    Identity = 2,
    /// Services and PodDisruptionBudgets.
    Network = 3,
    /// StatefulSets (waits for rollout).
    Workload = 4,
    /// Velero Schedules: only useful once the data exists.
    Backup = 5,
}

impl Wave {
    /// The wave a Kubernetes kind belongs to, or `None` for kinds stateplan
    /// never renders.
    pub fn for_kind(kind: &str) -> Option<Wave> {
        Some(match kind {
            "Namespace" | "StorageClass" => Wave::Foundation,
            "ServiceAccount" | "SecretStore" | "ExternalSecret" | "ConfigMap" => Wave::Identity,
            "Service" | "PodDisruptionBudget" => Wave::Network,
            "StatefulSet" => Wave::Workload,
            "Schedule" => Wave::Backup,
            _ => return None,
        })
    }
}

/// One rendered Kubernetes object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DesiredObject {
    /// `apiVersion`, e.g. `apps/v1`.
    pub api_version: String,
    /// `kind`, e.g. `StatefulSet`.
    pub kind: String,
    /// `metadata.namespace`; `None` for cluster-scoped kinds.
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
    /// When apply creates it.
    pub wave: Wave,
    /// The workload that produced it; `None` for objects shared by several
    /// workloads (Namespaces, StorageClasses).
    pub workload: Option<String>,
    /// The full manifest, exactly as rendered and validated.
    pub body: serde_json::Value,
}

impl DesiredObject {
    /// `kind/namespace/name` (or `kind/name`), the key plans are sorted and
    /// reported by.
    pub fn key(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/{}/{}", self.kind, ns, self.name),
            None => format!("{}/{}", self.kind, self.name),
        }
    }
}
