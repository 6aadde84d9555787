//! Compiled state → Azure resource bodies (typed, in the official REST
//! shapes). Values Azure assigns on creation are [`PENDING_PREFIX`]
//! placeholders until the Azure layer fills them in.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::azure::models::{
    AgentPool, AgentPoolProperties, FederatedIdentityCredential,
    FederatedIdentityCredentialProperties, GeneratePolicy, RoleAssignment,
    RoleAssignmentProperties, SecretSpec, UserAssignedIdentity,
};
use crate::azure::{
    AKS_API_VERSION, AUTHORIZATION_API_VERSION, KEYVAULT_API_VERSION, MSI_API_VERSION,
    WORKLOAD_IDENTITY_AUDIENCE,
};
use crate::compile::{DesiredState, KEY_VAULT_SECRETS_USER, PENDING_PREFIX};

/// Which Azure resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum AzureKind {
    AgentPool,
    UserAssignedIdentity,
    FederatedIdentityCredential,
    RoleAssignment,
    KeyVaultSecret,
}

impl AzureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AzureKind::AgentPool => "AgentPool",
            AzureKind::UserAssignedIdentity => "UserAssignedIdentity",
            AzureKind::FederatedIdentityCredential => "FederatedIdentityCredential",
            AzureKind::RoleAssignment => "RoleAssignment",
            AzureKind::KeyVaultSecret => "KeyVaultSecret",
        }
    }
}

/// One desired Azure resource.
#[derive(Debug, Clone, Serialize)]
pub struct AzureResource<A = Value> {
    pub kind: AzureKind,
    pub name: String,
    /// ARM resource ID, or the Key Vault secret URL.
    pub id: String,
    /// Printed as `apiVersion`, as in the `azure/*.json` files.
    #[serde(rename = "apiVersion")]
    pub api_version: &'static str,
    /// Workloads it serves (node pools may serve several).
    pub workloads: Vec<String>,
    /// The request body (for Key Vault secrets: the generation policy; the
    /// value is never part of the desired state).
    pub body: A,
}

/// What an Azure body can be kept as once rendered.
pub trait AzureBody: Sized + std::fmt::Debug {
    fn from_value(v: Value) -> Self;
    /// The body as a tree (parsed again for text bodies).
    fn value(&self) -> Cow<'_, Value>;
}

impl AzureBody for Value {
    fn from_value(v: Value) -> Self {
        v
    }

    fn value(&self) -> Cow<'_, Value> {
        Cow::Borrowed(self)
    }
}

/// An Azure body kept as compact JSON text: a fraction of the memory of a
/// `Value` tree, for commands that only write bodies out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Json(Box<str>);

impl AzureBody for Json {
    fn from_value(v: Value) -> Self {
        // Serialising a Value cannot fail, and neither can reading it back.
        Json(serde_json::to_string(&v).unwrap_or_default().into())
    }

    fn value(&self) -> Cow<'_, Value> {
        Cow::Owned(serde_json::from_str(&self.0).unwrap_or(Value::Null))
    }
}

impl<A> AzureResource<A> {
    /// The same resource with its body kept as `B`.
    pub fn map_body<B>(self, f: impl FnOnce(A) -> B) -> AzureResource<B> {
        AzureResource {
            kind: self.kind,
            name: self.name,
            id: self.id,
            api_version: self.api_version,
            workloads: self.workloads,
            body: f(self.body),
        }
    }

    pub fn display_name(&self) -> String {
        format!("{}/{}", self.kind.as_str(), self.name)
    }

    /// File name under `azure/` in a GitOps tree.
    pub fn file_name(&self) -> String {
        let kind = match self.kind {
            AzureKind::AgentPool => "agentpool",
            AzureKind::UserAssignedIdentity => "identity",
            AzureKind::FederatedIdentityCredential => "federatedcredential",
            AzureKind::RoleAssignment => "roleassignment",
            AzureKind::KeyVaultSecret => "keyvaultsecret",
        };
        format!("{kind}-{}.json", self.name)
    }
}

fn json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// The placeholder for a value Azure assigns.
pub fn pending(what: &str) -> String {
    format!("{PENDING_PREFIX}{what}")
}

/// All Azure resources of a blueprint, in apply order.
pub fn resources(state: &DesiredState) -> Vec<AzureResource> {
    resources_as(state, &mut Vec::new())
}

/// The Azure resources with bodies kept as `A`, each converted as soon as
/// it is built; placeholders in the bodies are added to `found`.
pub fn resources_as<A: AzureBody>(
    state: &DesiredState,
    found: &mut Vec<super::PendingValue>,
) -> Vec<AzureResource<A>> {
    let t = &state.target;
    let mut tags = BTreeMap::new();
    tags.insert("managed-by".to_string(), "stateplan".to_string());
    tags.insert(TAG_BLUEPRINT.to_string(), state.blueprint.name.clone());
    let mut out = Sink {
        list: Vec::new(),
        found,
    };

    for p in &state.node_pools {
        let autoscale = p.min_count.is_some();
        let body = AgentPool {
            properties: AgentPoolProperties {
                count: p.count.or(p.min_count),
                vm_size: p.vm_size.clone(),
                os_disk_size_gb: Some(p.os_disk_size_gb),
                os_disk_type: Some("Managed".into()),
                os_type: Some("Linux".into()),
                mode: Some("User".into()),
                pool_type: Some("VirtualMachineScaleSets".into()),
                availability_zones: (!p.zones.is_empty()).then(|| p.zones.clone()),
                enable_auto_scaling: Some(autoscale),
                min_count: p.min_count,
                max_count: p.max_count,
                max_pods: Some(p.max_pods),
                node_labels: Some(p.labels.clone()),
                node_taints: Some(p.taints.clone()),
                enable_ultra_ssd: p.ultra_ssd.then_some(true),
                tags: Some(tags.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        out.push(AzureResource {
            kind: AzureKind::AgentPool,
            name: p.name.clone(),
            id: format!("{}/agentPools/{}", t.cluster_id, p.name),
            api_version: AKS_API_VERSION,
            workloads: p.workloads.clone(),
            body: json(&body),
        });
    }

    for w in &state.workloads {
        let identity = &w.identity;
        out.push(AzureResource {
            kind: AzureKind::UserAssignedIdentity,
            name: identity.name.clone(),
            id: identity.id.clone(),
            api_version: MSI_API_VERSION,
            workloads: vec![w.name.clone()],
            body: json(&UserAssignedIdentity {
                location: t.location.clone(),
                tags: tags.clone(),
                ..Default::default()
            }),
        });
        out.push(AzureResource {
            kind: AzureKind::FederatedIdentityCredential,
            name: identity.federated_credential.clone(),
            id: format!(
                "{}/federatedIdentityCredentials/{}",
                identity.id, identity.federated_credential
            ),
            api_version: MSI_API_VERSION,
            workloads: vec![w.name.clone()],
            body: json(&FederatedIdentityCredential {
                properties: FederatedIdentityCredentialProperties {
                    issuer: pending(&format!("azure/cluster/{}/oidcIssuerUrl", t.cluster)),
                    subject: identity.subject.clone(),
                    audiences: vec![WORKLOAD_IDENTITY_AUDIENCE.into()],
                },
                ..Default::default()
            }),
        });
        for s in &w.secrets {
            let mut secret_tags = tags.clone();
            secret_tags.insert(TAG_WORKLOAD.into(), w.name.clone());
            out.push(AzureResource {
                kind: AzureKind::KeyVaultSecret,
                name: s.vault_name.clone(),
                id: format!("{}secrets/{}", t.vault_url, s.vault_name),
                api_version: KEYVAULT_API_VERSION,
                workloads: vec![w.name.clone()],
                body: json(&SecretSpec {
                    vault: t.key_vault.clone(),
                    name: s.vault_name.clone(),
                    generate: GeneratePolicy {
                        length: s.length,
                        alphabet: s.alphabet,
                    },
                    content_type: "text/plain".into(),
                    tags: secret_tags,
                }),
            });
        }
        // One assignment per secret, scoped to that secret, after it
        // exists: a workload's identity reads its own secrets and nothing
        // else in the vault (a vault-wide role would let anyone who can
        // create an ExternalSecret in its namespace read every secret).
        let role_definition_id = format!(
            "/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{KEY_VAULT_SECRETS_USER}",
            t.subscription
        );
        for s in &w.secrets {
            let scope = secret_scope(&t.vault_id, &s.vault_name);
            let name = role_assignment_name(&scope, &identity.id, KEY_VAULT_SECRETS_USER);
            out.push(AzureResource {
                kind: AzureKind::RoleAssignment,
                id: format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"),
                name,
                api_version: AUTHORIZATION_API_VERSION,
                workloads: vec![w.name.clone()],
                body: json(&RoleAssignment {
                    properties: RoleAssignmentProperties {
                        role_definition_id: role_definition_id.clone(),
                        principal_id: pending(&format!(
                            "azure/identity/{}/principalId",
                            identity.name
                        )),
                        principal_type: Some("ServicePrincipal".into()),
                        scope: None,
                    },
                    ..Default::default()
                }),
            });
        }
    }
    out.list
}

/// Collects resources, converting each body as soon as it is built so a
/// large blueprint never holds all of them as trees.
struct Sink<'p, A> {
    list: Vec<AzureResource<A>>,
    found: &'p mut Vec<super::PendingValue>,
}

impl<A: AzureBody> Sink<'_, A> {
    fn push(&mut self, r: AzureResource<Value>) {
        super::find_pending(
            &r.body,
            &mut Vec::new(),
            &format!("azure:{}", r.display_name()),
            self.found,
        );
        self.list.push(r.map_body(A::from_value));
    }
}

/// The Azure tag naming the blueprint a resource belongs to.
pub const TAG_BLUEPRINT: &str = "stateplan-blueprint";
/// The Azure tag naming the workload a Key Vault secret belongs to.
pub const TAG_WORKLOAD: &str = "stateplan-workload";

/// The ARM scope of one Key Vault secret (role assignments on it).
pub fn secret_scope(vault_id: &str, secret: &str) -> String {
    format!("{vault_id}/secrets/{secret}")
}

/// The vault-wide assignment earlier versions made for `identity_id`:
/// plan deletes it, since the per-secret ones replace it.
pub fn vault_wide_assignment_id(vault_id: &str, identity_id: &str) -> String {
    format!(
        "{vault_id}/providers/Microsoft.Authorization/roleAssignments/{}",
        role_assignment_name(vault_id, identity_id, KEY_VAULT_SECRETS_USER)
    )
}

/// A role assignment's name must be a GUID; deriving it from scope, principal
/// and role makes re-applying idempotent (the same assignment is found, not
/// duplicated).
pub fn role_assignment_name(scope: &str, identity_id: &str, role: &str) -> String {
    let key = format!(
        "{}|{}|{role}",
        scope.to_ascii_lowercase(),
        identity_id.to_ascii_lowercase()
    );
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, key.as_bytes()).to_string()
}
