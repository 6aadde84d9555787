//! The kinds stateplan renders or touches, and where the API server serves
//! them. A fixed table: render only produces these kinds, so plan and apply
//! need no discovery round trip beyond checking that CRD groups exist.

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};

/// One served kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KindInfo {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
    /// For CRDs: what to install when the cluster does not serve it.
    pub install: Option<&'static str>,
}

impl KindInfo {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn resource(&self) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(self.group, self.version, self.kind),
            self.plural,
        )
    }

    /// A dynamic API handle, namespaced when `ns` is given.
    pub fn api(&self, client: &Client, ns: Option<&str>) -> Api<DynamicObject> {
        let ar = self.resource();
        match ns {
            Some(ns) if self.namespaced => Api::namespaced_with(client.clone(), ns, &ar),
            _ => Api::all_with(client.clone(), &ar),
        }
    }
}

const fn k(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    install: Option<&'static str>,
) -> KindInfo {
    KindInfo {
        group,
        version,
        kind,
        plural,
        namespaced,
        install,
    }
}

const ESO: &str = "install External Secrets Operator (https://external-secrets.io, chart `external-secrets/external-secrets`, v0.17 or later serves external-secrets.io/v1)";
const VELERO: &str = "install Velero (https://velero.io; `velero install` or the `vmware-tanzu/velero` chart) so backup Schedules can be created";

pub static NAMESPACE: KindInfo = k("", "v1", "Namespace", "namespaces", false, None);
pub static STORAGE_CLASS: KindInfo = k(
    "storage.k8s.io",
    "v1",
    "StorageClass",
    "storageclasses",
    false,
    None,
);
pub static SERVICE_ACCOUNT: KindInfo = k("", "v1", "ServiceAccount", "serviceaccounts", true, None);
pub static CONFIG_MAP: KindInfo = k("", "v1", "ConfigMap", "configmaps", true, None);
pub static SECRET: KindInfo = k("", "v1", "Secret", "secrets", true, None);
pub static SERVICE: KindInfo = k("", "v1", "Service", "services", true, None);
pub static PVC: KindInfo = k(
    "",
    "v1",
    "PersistentVolumeClaim",
    "persistentvolumeclaims",
    true,
    None,
);
pub static POD: KindInfo = k("", "v1", "Pod", "pods", true, None);
pub static EVENT: KindInfo = k("", "v1", "Event", "events", true, None);
pub static PDB: KindInfo = k(
    "policy",
    "v1",
    "PodDisruptionBudget",
    "poddisruptionbudgets",
    true,
    None,
);
pub static STATEFUL_SET: KindInfo = k("apps", "v1", "StatefulSet", "statefulsets", true, None);
pub static LEASE: KindInfo = k("coordination.k8s.io", "v1", "Lease", "leases", true, None);
pub static SECRET_STORE: KindInfo = k(
    "external-secrets.io",
    "v1",
    "SecretStore",
    "secretstores",
    true,
    Some(ESO),
);
pub static EXTERNAL_SECRET: KindInfo = k(
    "external-secrets.io",
    "v1",
    "ExternalSecret",
    "externalsecrets",
    true,
    Some(ESO),
);
pub static SCHEDULE: KindInfo = k(
    "velero.io",
    "v1",
    "Schedule",
    "schedules",
    true,
    Some(VELERO),
);

static ALL: [&KindInfo; 15] = [
    &NAMESPACE,
    &STORAGE_CLASS,
    &SERVICE_ACCOUNT,
    &CONFIG_MAP,
    &SECRET,
    &SERVICE,
    &PVC,
    &POD,
    &EVENT,
    &PDB,
    &STATEFUL_SET,
    &LEASE,
    &SECRET_STORE,
    &EXTERNAL_SECRET,
    &SCHEDULE,
];

/// The kind for an `apiVersion` + `kind` pair.
pub fn lookup(api_version: &str, kind: &str) -> Option<&'static KindInfo> {
    ALL.iter()
        .copied()
        .find(|k| k.kind == kind && k.api_version() == api_version)
}

/// The kind by name alone (inventory entries, table rows).
pub fn by_kind(kind: &str) -> Option<&'static KindInfo> {
    ALL.iter().copied().find(|k| k.kind == kind)
}
