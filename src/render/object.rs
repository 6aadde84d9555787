//! The unit every later stage works on: one rendered Kubernetes object with
//! the metadata plan and apply need to order, own and diff it.

use std::borrow::Cow;

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

/// One rendered Kubernetes object. The body is a `serde_json::Value` for
/// plan and apply; `render` and `check` keep it as [`Yaml`] text instead, so
/// a large blueprint never holds all its objects as trees.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DesiredObject<B = serde_json::Value> {
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
    pub body: B,
}

/// What an object's body can be kept as once rendered and checked.
pub trait Body: PartialEq + Send + Sized {
    /// How the Azure bodies of the same render are kept.
    type Azure: super::azure::AzureBody;
    /// Takes a checked manifest.
    fn from_value(v: serde_json::Value) -> Self;
    /// The manifest as one YAML document.
    fn yaml(&self) -> Cow<'_, str>;
}

impl Body for serde_json::Value {
    type Azure = serde_json::Value;

    fn from_value(v: serde_json::Value) -> Self {
        v
    }

    fn yaml(&self) -> Cow<'_, str> {
        Cow::Owned(super::to_yaml(self))
    }
}

/// A manifest already written as YAML (by [`super::to_yaml`]). Equal text
/// means equal manifests: the writer is deterministic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Yaml(pub String);

impl Body for Yaml {
    type Azure = super::azure::Json;

    fn from_value(v: serde_json::Value) -> Self {
        let mut text = super::to_yaml(&v);
        // Kept until the whole blueprint is rendered: drop the slack the
        // writer's doubling left (up to half of every buffer).
        text.shrink_to_fit();
        Yaml(text)
    }

    fn yaml(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.0)
    }
}

impl<B> DesiredObject<B> {
    /// The same object with its body kept as `C`.
    pub fn map_body<C>(self, f: impl FnOnce(B) -> C) -> DesiredObject<C> {
        DesiredObject {
            api_version: self.api_version,
            kind: self.kind,
            namespace: self.namespace,
            name: self.name,
            wave: self.wave,
            workload: self.workload,
            body: f(self.body),
        }
    }

    /// `kind/namespace/name` (or `kind/name`), the key plans are sorted and
    /// reported by.
    pub fn key(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/{}/{}", self.kind, ns, self.name),
            None => format!("{}/{}", self.kind, self.name),
        }
    }
}
