//! Azure: typed ARM and Key Vault resource models (the shapes of the official
//! REST API examples) and the API versions stateplan speaks.

pub mod models;

/// `Microsoft.ContainerService` (agent pools, managed clusters).
pub const AKS_API_VERSION: &str = "2026-08-01";
/// `Microsoft.Compute/skus`.
pub const COMPUTE_SKUS_API_VERSION: &str = "2021-07-01";
/// `Microsoft.ManagedIdentity` (identities, federated credentials).
pub const MSI_API_VERSION: &str = "2024-11-30";
/// `Microsoft.Authorization/roleAssignments`.
pub const AUTHORIZATION_API_VERSION: &str = "2022-04-01";
/// Key Vault data plane (secrets).
pub const KEYVAULT_API_VERSION: &str = "2025-07-01";
/// The audience AKS workload identity tokens are exchanged for.
pub const WORKLOAD_IDENTITY_AUDIENCE: &str = "api://AzureADTokenExchange";
