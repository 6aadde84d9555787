//! Azure: typed ARM and Key Vault resource models (the shapes of the official
//! REST API examples) and the API versions stateplan speaks.

pub mod apply;
pub mod client;
pub mod credential;
mod error;
pub mod models;
pub mod plan;
mod run;
pub mod secret;
pub mod skus;

pub use error::AzureError;
pub use plan::resolve_placeholders;
pub use run::{AzureArgs, apply, plan};

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
