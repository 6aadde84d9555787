//! Entry points for the CLI: the `--arm-endpoint` / `--keyvault-endpoint`
//! arguments and `plan` / `apply` over a loaded blueprint.

use std::sync::Arc;

use super::AzureError;
use super::apply::{self, ApplyFailed, ApplyOptions, ApplyReport};
use super::client::{AzureClient, Endpoints, HttpStack};
use super::credential::{TokenSource, default_token_source};
use super::plan::{self, AzurePlan, PlanOptions};
use crate::pipeline::Loaded;

/// Where ARM and Key Vault are; the CLI flattens this into `plan`/`apply`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AzureArgs {
    /// ARM endpoint (sovereign clouds, tests) [default: https://management.azure.com].
    /// Plain http is accepted only for loopback addresses.
    #[arg(long, env = "STATEPLAN_ARM_ENDPOINT", value_name = "URL")]
    pub arm_endpoint: Option<String>,
    /// Key Vault endpoint; `{vault}` is replaced by the vault name
    /// [default: https://{vault}.vault.azure.net].
    #[arg(long, env = "STATEPLAN_KEYVAULT_ENDPOINT", value_name = "URL")]
    pub keyvault_endpoint: Option<String>,
}

impl AzureArgs {
    /// The checked endpoints (http only to loopback).
    pub fn endpoints(&self) -> Result<Endpoints, AzureError> {
        Endpoints::new(
            self.arm_endpoint.as_deref(),
            self.keyvault_endpoint.as_deref(),
        )
    }

    /// A client with the default credentials (workload identity, else
    /// Azure CLI / azd).
    pub fn client(&self) -> Result<AzureClient, AzureError> {
        let endpoints = self.endpoints()?;
        let http = HttpStack::new()?;
        let tokens = default_token_source(&http)?;
        Ok(AzureClient::new(http, endpoints, tokens))
    }

    /// A client with the given token source (tests, embedding).
    pub fn client_with(&self, tokens: Arc<dyn TokenSource>) -> Result<AzureClient, AzureError> {
        Ok(AzureClient::new(
            HttpStack::new()?,
            self.endpoints()?,
            tokens,
        ))
    }
}

/// Plans the Azure half of a loaded blueprint.
pub async fn plan(
    client: &AzureClient,
    loaded: &Loaded,
    opts: &PlanOptions,
) -> Result<AzurePlan, AzureError> {
    plan::plan(client, &loaded.state, &loaded.rendered.azure, opts).await
}

/// Applies a plan made by [`plan`]; the report's `resolved` map fills the
/// Kubernetes objects' placeholders ([`super::resolve_placeholders`]).
pub async fn apply(
    client: &AzureClient,
    plan: &AzurePlan,
    opts: &ApplyOptions,
) -> Result<ApplyReport, ApplyFailed> {
    apply::apply(client, plan, opts).await
}
