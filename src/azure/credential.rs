//! Bearer tokens for ARM and Key Vault, behind a small trait so tests (and
//! other credential sources later) can plug in.
//!
//! [`default_token_source`] uses `azure_identity` 1.x:
//! `WorkloadIdentityCredential` when `AZURE_FEDERATED_TOKEN_FILE` is set (CI,
//! in-cluster), otherwise `DeveloperToolsCredential` (Azure CLI, then azd).
//! `azure_core` is built without reqwest: its token requests go through our
//! hyper client ([`HyperTransport`]).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use azure_core::credentials::TokenCredential;
use azure_core::http::{AsyncRawResponse, ClientOptions, HttpClient, Transport};
use hyper::body::Bytes;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};

use super::AzureError;
use super::client::HttpStack;

/// A bearer token. `Debug` is redacted.
#[derive(Clone)]
pub struct BearerToken {
    token: String,
    /// Unix seconds; `None` = does not expire (static tokens).
    expires_on: Option<i64>,
}

impl BearerToken {
    pub fn new(token: impl Into<String>, expires_on: Option<i64>) -> Self {
        BearerToken {
            token: token.into(),
            expires_on,
        }
    }

    pub(crate) fn secret(&self) -> &str {
        &self.token
    }

    fn fresh(&self) -> bool {
        match self.expires_on {
            None => true,
            Some(t) => t - 300 > now_secs(),
        }
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerToken")
            .field("token", &"<redacted>")
            .field("expires_on", &self.expires_on)
            .finish()
    }
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub type TokenFuture<'a> =
    Pin<Box<dyn Future<Output = Result<BearerToken, AzureError>> + Send + 'a>>;

/// Something that hands out bearer tokens for a scope
/// (`https://management.azure.com/.default`).
pub trait TokenSource: Send + Sync {
    fn token<'a>(&'a self, scope: &'a str) -> TokenFuture<'a>;
    /// What it is, for messages (`Azure CLI / azd`, `workload identity`).
    fn describe(&self) -> String;
}

/// A fixed token (tests, or a token obtained elsewhere).
#[derive(Debug, Clone)]
pub struct StaticToken(BearerToken);

impl StaticToken {
    pub fn new(token: impl Into<String>) -> Self {
        StaticToken(BearerToken::new(token, None))
    }
}

impl TokenSource for StaticToken {
    fn token<'a>(&'a self, _scope: &'a str) -> TokenFuture<'a> {
        let t = self.0.clone();
        Box::pin(async move { Ok(t) })
    }
    fn describe(&self) -> String {
        "a static token".into()
    }
}

/// `azure_identity` credentials, cached per scope until 5 minutes before
/// expiry.
pub struct IdentityTokens {
    credential: Arc<dyn TokenCredential>,
    workload_identity: bool,
    cache: Mutex<HashMap<String, BearerToken>>,
}

impl fmt::Debug for IdentityTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityTokens")
            .field("source", &self.describe())
            .finish_non_exhaustive()
    }
}

const LOGIN_HINT: &str = "run `az login` (or `azd auth login`) and select the subscription with `az account set -s <subscription>`; in CI or a pod, use workload identity (AZURE_FEDERATED_TOKEN_FILE, AZURE_CLIENT_ID, AZURE_TENANT_ID)";

impl TokenSource for IdentityTokens {
    fn token<'a>(&'a self, scope: &'a str) -> TokenFuture<'a> {
        Box::pin(async move {
            if let Ok(cache) = self.cache.lock()
                && let Some(t) = cache.get(scope).filter(|t| t.fresh())
            {
                return Ok(t.clone());
            }
            let t = self
                .credential
                .get_token(&[scope], None)
                .await
                .map_err(|e| {
                    let what = if self.workload_identity {
                        "workload identity (AZURE_FEDERATED_TOKEN_FILE is set) did not produce a token; check AZURE_CLIENT_ID, AZURE_TENANT_ID, the token file and the federated credential".to_string()
                    } else {
                        format!("no Azure credential worked: {LOGIN_HINT}")
                    };
                    AzureError::Credential(format!("{what}\n  cause: {e}"))
                })?;
            let token = BearerToken::new(
                t.token.secret().to_string(),
                Some(t.expires_on.unix_timestamp()),
            );
            if let Ok(mut cache) = self.cache.lock() {
                cache.insert(scope.to_string(), token.clone());
            }
            Ok(token)
        })
    }
    fn describe(&self) -> String {
        if self.workload_identity {
            "workload identity".into()
        } else {
            "Azure CLI / azd".into()
        }
    }
}

/// Workload identity when `AZURE_FEDERATED_TOKEN_FILE` is set, else the
/// Azure CLI / azd.
pub fn default_token_source(http: &HttpStack) -> Result<Arc<dyn TokenSource>, AzureError> {
    let federated = std::env::var_os("AZURE_FEDERATED_TOKEN_FILE").is_some_and(|v| !v.is_empty());
    let credential: Arc<dyn TokenCredential> = if federated {
        let mut options = azure_identity::WorkloadIdentityCredentialOptions::default();
        options.credential_options.client_options = ClientOptions {
            transport: Some(Transport::new(Arc::new(HyperTransport(http.clone())))),
            ..Default::default()
        };
        azure_identity::WorkloadIdentityCredential::new(Some(options)).map_err(|e| {
            AzureError::Credential(format!(
                "AZURE_FEDERATED_TOKEN_FILE is set but workload identity is not configured: {e}; set AZURE_CLIENT_ID and AZURE_TENANT_ID (the AKS workload identity webhook does), or unset AZURE_FEDERATED_TOKEN_FILE to use `az login`"
            ))
        })?
    } else {
        azure_identity::DeveloperToolsCredential::new(None).map_err(|e| {
            AzureError::Credential(format!("cannot use the Azure CLI / azd: {e}; {LOGIN_HINT}"))
        })?
    };
    Ok(Arc::new(IdentityTokens {
        credential,
        workload_identity: federated,
        cache: Mutex::new(HashMap::new()),
    }))
}

/// `azure_core`'s HTTP client trait on our hyper client, so `azure_identity`
/// needs no reqwest (and no second TLS stack).
#[derive(Debug, Clone)]
pub struct HyperTransport(pub HttpStack);

#[async_trait::async_trait]
impl HttpClient for HyperTransport {
    async fn execute_request(
        &self,
        request: &azure_core::http::Request,
    ) -> azure_core::Result<AsyncRawResponse> {
        use azure_core::error::{Error, ErrorKind};
        let method = hyper::Method::from_bytes(request.method().as_ref().as_bytes())
            .map_err(|e| Error::with_message(ErrorKind::Other, e.to_string()))?;
        let mut headers = HeaderMap::new();
        for (k, v) in request.headers().iter() {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(k.as_str().as_bytes()),
                HeaderValue::from_str(v.as_str()),
            ) {
                headers.insert(name, value);
            }
        }
        let body = match request.body() {
            azure_core::http::Body::Bytes(b) => Bytes::copy_from_slice(b),
            #[allow(unreachable_patterns)]
            _ => {
                return Err(Error::with_message(
                    ErrorKind::Other,
                    "streaming request bodies are not supported by stateplan's transport",
                ));
            }
        };
        let resp = self
            .0
            .send(
                method,
                request.url().as_str(),
                headers,
                body,
                Duration::from_secs(60),
            )
            .await
            .map_err(|e| Error::with_message(ErrorKind::Io, e))?;
        let mut out = azure_core::http::headers::Headers::new();
        for (k, v) in resp.headers.iter() {
            if let Ok(v) = v.to_str() {
                out.insert(k.as_str().to_string(), v.to_string());
            }
        }
        Ok(AsyncRawResponse::from_bytes(
            resp.status.into(),
            out,
            resp.body,
        ))
    }
}
