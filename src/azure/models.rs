//! Typed ARM and Key Vault bodies. Field names follow the official REST
//! specifications (see tests/fixtures/azure). Read-only fields are optional
//! and never serialised when absent, so one type serves requests and responses.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `Microsoft.ContainerService/managedClusters/agentPools`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentPool {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub properties: AgentPoolProperties,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentPoolProperties {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    pub vm_size: String,
    #[serde(
        rename = "osDiskSizeGB",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_disk_size_gb: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_disk_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub pool_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zones: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_auto_scaling: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pods: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_taints: Option<Vec<String>>,
    #[serde(
        rename = "enableUltraSSD",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub enable_ultra_ssd: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    /// Read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
    /// The pool's Kubernetes version. stateplan never sets it: a pool is
    /// created at the cluster's version, and an update keeps the live one
    /// (upgrades are the platform team's, through AKS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orchestrator_version: Option<String>,
    /// Every other property of a live pool (subnet, upgrade settings,
    /// kubelet config, OS SKU, ...). An agent pool PUT replaces the whole
    /// resource, so an update sends these back unchanged.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl AgentPoolProperties {
    /// Properties AKS computes; sending them back in a PUT is not ours to do.
    pub const READ_ONLY: [&'static str; 4] = [
        "currentOrchestratorVersion",
        "eTag",
        "nodeImageVersion",
        "provisioningState",
    ];
}

/// `Microsoft.ManagedIdentity/userAssignedIdentities`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserAssignedIdentity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub location: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Read-only: assigned by Azure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<IdentityProperties>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityProperties {
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub principal_id: Option<String>,
    #[serde(default)]
    pub tenant_id: Option<String>,
}

/// `.../userAssignedIdentities/{name}/federatedIdentityCredentials`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FederatedIdentityCredential {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub properties: FederatedIdentityCredentialProperties,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FederatedIdentityCredentialProperties {
    pub issuer: String,
    pub subject: String,
    pub audiences: Vec<String>,
}

/// `Microsoft.Authorization/roleAssignments`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub properties: RoleAssignmentProperties,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignmentProperties {
    pub role_definition_id: String,
    pub principal_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_type: Option<String>,
    /// Read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// A Key Vault secret as stateplan plans it: name and generation policy,
/// never a value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretSpec {
    pub vault: String,
    pub name: String,
    /// Generated with a CSPRNG only when the secret does not exist; an
    /// existing secret is never overwritten.
    pub generate: GeneratePolicy,
    pub content_type: String,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GeneratePolicy {
    pub length: usize,
    pub alphabet: crate::catalog::Alphabet,
}
