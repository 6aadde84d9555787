//! A thin typed ARM + Key Vault REST client on the HTTP/TLS stack `kube`
//! already builds (hyper 1, hyper-util, hyper-rustls with ring and the
//! platform verifier).
//!
//! - Endpoints are configurable; plain `http` only for loopback hosts.
//! - Retries with backoff on 429/5xx and transport errors, honouring
//!   `Retry-After`, bounded by [`RetryPolicy`].
//! - Long-running operations: `Azure-AsyncOperation`, else `Location`, else
//!   the resource's `provisioningState`, with a progress callback.
//! - The bearer token is only sent to the configured endpoints' origins.
//! - Request bodies never appear in errors; Key Vault answers (which echo
//!   the secret value) are parsed into types without a value and dropped.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::AzureError;
use super::credential::TokenSource;
use super::secret::SecretValue;

/// Default ARM endpoint (public cloud).
pub const DEFAULT_ARM_ENDPOINT: &str = "https://management.azure.com";
/// Default Key Vault endpoint template; `{vault}` is the vault name.
pub const DEFAULT_KEYVAULT_ENDPOINT: &str = "https://{vault}.vault.azure.net";

pub(crate) type Https = HttpsConnector<HttpConnector>;

/// The shared hyper client (one connection pool for ARM, Key Vault and token
/// requests).
#[derive(Clone)]
pub struct HttpStack {
    pub(crate) client: HyperClient<Https, Full<Bytes>>,
}

impl std::fmt::Debug for HttpStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpStack")
    }
}

impl HttpStack {
    /// hyper + rustls (ring) with the operating system's trust store, as kube
    /// builds it.
    pub fn new() -> Result<Self, AzureError> {
        use rustls_platform_verifier::BuilderVerifierExt;
        let tls = rustls::ClientConfig::builder()
            .with_platform_verifier()
            .map_err(|e| AzureError::Endpoint(format!("cannot set up TLS: {e}")))?
            .with_no_client_auth();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let client = HyperClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(https);
        Ok(HttpStack { client })
    }

    /// One request, no retries. The body is read completely.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: &str,
        headers: HeaderMap,
        body: Bytes,
        timeout: Duration,
    ) -> Result<RawResponse, String> {
        let uri: Uri = url.parse().map_err(|e| format!("bad URL: {e}"))?;
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .body(Full::new(body))
            .map_err(|e| format!("cannot build request: {e}"))?;
        *req.headers_mut() = headers;
        let fut = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| error_chain(&e))?;
            let (parts, body) = resp.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| format!("reading the answer: {e}"))?
                .to_bytes();
            Ok(RawResponse {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
            })
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {}s", timeout.as_secs())),
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// A complete HTTP answer.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Where ARM and Key Vault are.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// ARM base URL, no trailing slash.
    pub arm: String,
    /// Key Vault base URL; `{vault}` is replaced by the vault name.
    pub keyvault: String,
}

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints {
            arm: DEFAULT_ARM_ENDPOINT.into(),
            keyvault: DEFAULT_KEYVAULT_ENDPOINT.into(),
        }
    }
}

impl Endpoints {
    /// Checks both endpoints (https, or http to a loopback address only).
    pub fn new(arm: Option<&str>, keyvault: Option<&str>) -> Result<Self, AzureError> {
        let arm = arm.unwrap_or(DEFAULT_ARM_ENDPOINT).trim_end_matches('/');
        let keyvault = keyvault
            .unwrap_or(DEFAULT_KEYVAULT_ENDPOINT)
            .trim_end_matches('/');
        check_endpoint("--arm-endpoint", arm)?;
        check_endpoint("--keyvault-endpoint", &keyvault.replace("{vault}", "vault"))?;
        Ok(Endpoints {
            arm: arm.into(),
            keyvault: keyvault.into(),
        })
    }

    /// The data-plane URL of a vault, no trailing slash.
    pub fn vault_url(&self, vault: &str) -> String {
        self.keyvault.replace("{vault}", vault)
    }

    /// The token scope for ARM.
    pub fn arm_scope(&self) -> String {
        match origin(&self.arm) {
            Some((_, host, _)) if is_loopback(&host) => {
                format!("{DEFAULT_ARM_ENDPOINT}/.default")
            }
            _ => format!("{}/.default", self.arm),
        }
    }

    /// The token scope for Key Vault (`https://vault.azure.net/.default` in
    /// the public cloud; the vault host without its first label elsewhere).
    pub fn keyvault_scope(&self) -> String {
        let url = self.vault_url("vault");
        match origin(&url) {
            Some((_, host, _)) if !is_loopback(&host) && !self.keyvault.contains("{vault}") => {
                format!("https://{host}/.default")
            }
            Some((_, host, _)) if !is_loopback(&host) => match host.split_once('.') {
                Some((_, rest)) => format!("https://{rest}/.default"),
                None => "https://vault.azure.net/.default".into(),
            },
            _ => "https://vault.azure.net/.default".into(),
        }
    }
}

/// (scheme, host, port) of a URL.
fn origin(url: &str) -> Option<(String, String, u16)> {
    let uri: Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let host = uri
        .host()?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let port = uri
        .port_u16()
        .unwrap_or(if scheme == "http" { 80 } else { 443 });
    Some((scheme, host, port))
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

/// `https://…`, or `http://…` to a loopback address (tests, local proxies).
pub fn check_endpoint(flag: &str, url: &str) -> Result<(), AzureError> {
    let Some((scheme, host, _)) = origin(url) else {
        return Err(AzureError::Endpoint(format!(
            "{flag} `{url}` is not an absolute URL (expected e.g. {DEFAULT_ARM_ENDPOINT})"
        )));
    };
    match scheme.as_str() {
        "https" => Ok(()),
        "http" if is_loopback(&host) => Ok(()),
        "http" => Err(AzureError::Endpoint(format!(
            "{flag} `{url}` uses plain http to `{host}`, which is not a loopback address; tokens and secrets would travel unencrypted. Use https (plain http is accepted only for 127.0.0.1, ::1 and localhost)"
        ))),
        other => Err(AzureError::Endpoint(format!(
            "{flag} `{url}` has scheme `{other}`; use https"
        ))),
    }
}

/// Bounds for retries and waits.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per request (1 = no retry).
    pub max_attempts: u32,
    /// First backoff when Azure gives no `Retry-After`; doubles each time.
    pub base_delay: Duration,
    /// Longest single wait (also caps `Retry-After`).
    pub max_delay: Duration,
    /// Poll interval for long-running operations without `Retry-After`.
    pub poll_interval: Duration,
    /// Give up waiting for a long-running operation after this long.
    pub operation_timeout: Duration,
    /// Per-request timeout.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            poll_interval: Duration::from_secs(5),
            operation_timeout: Duration::from_secs(45 * 60),
            request_timeout: Duration::from_secs(100),
        }
    }
}

/// A waiting long-running operation.
#[derive(Debug, Clone)]
pub struct Progress {
    /// What is being waited for (`AgentPool/pgorders`).
    pub resource: String,
    /// Azure's status (`InProgress`, `Creating`, ...).
    pub status: String,
    pub elapsed: Duration,
}

/// Called while long-running operations are waited for.
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// ARM / Key Vault client.
#[derive(Clone)]
pub struct AzureClient {
    http: HttpStack,
    tokens: Arc<dyn TokenSource>,
    endpoints: Endpoints,
    retry: RetryPolicy,
    progress: Option<ProgressFn>,
}

impl std::fmt::Debug for AzureClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureClient")
            .field("endpoints", &self.endpoints)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// ARM's error body.
#[derive(Debug, Default, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub error: Option<ErrorDetail>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct ErrorDetail {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub details: Vec<ErrorDetail>,
}

impl ErrorDetail {
    /// The message with the inner details ARM often puts the cause in.
    fn full_message(&self) -> String {
        let mut m = self.message.clone();
        for d in &self.details {
            let inner = d.full_message();
            if !inner.is_empty() && !m.contains(&inner) {
                m.push_str(&format!(" [{}: {inner}]", d.code));
            }
        }
        m
    }
}

#[derive(Debug, Deserialize)]
struct AsyncOperation {
    #[serde(default)]
    status: String,
    #[serde(default)]
    error: Option<ErrorDetail>,
}

#[derive(Debug, Deserialize)]
struct ListPage<T> {
    #[serde(default = "Vec::new")]
    value: Vec<T>,
    #[serde(default, rename = "nextLink")]
    next_link: Option<String>,
}

/// What the client learned about a Key Vault secret: never its value.
#[derive(Debug, Default, Deserialize)]
struct SecretMeta {
    /// Absent or `null` when the secret has none.
    #[serde(default)]
    tags: Option<BTreeMap<String, String>>,
}

/// Which service a request goes to (scope and error body handling).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    Arm,
    KeyVault,
}

impl AzureClient {
    pub fn new(http: HttpStack, endpoints: Endpoints, tokens: Arc<dyn TokenSource>) -> AzureClient {
        AzureClient {
            http,
            tokens,
            endpoints,
            retry: RetryPolicy::default(),
            progress: None,
        }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn with_progress(mut self, progress: ProgressFn) -> Self {
        self.progress = Some(progress);
        self
    }

    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    fn arm_url(&self, path: &str, api_version: &str, query: &str) -> String {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut url = format!("{}{path}{sep}api-version={api_version}", self.endpoints.arm);
        if !query.is_empty() {
            url.push('&');
            url.push_str(query);
        }
        url
    }

    /// The bearer token only goes to the configured origins.
    fn check_origin(&self, url: &str, service: Service) -> Result<(), AzureError> {
        let allowed = match service {
            Service::Arm => origin(&self.endpoints.arm),
            Service::KeyVault => None,
        };
        match (service, origin(url), allowed) {
            (Service::KeyVault, Some(_), _) => Ok(()),
            (Service::Arm, Some(o), Some(a)) if o == a => Ok(()),
            _ => Err(AzureError::Endpoint(format!(
                "Azure asked to poll `{url}`, which is not on the ARM endpoint {}; refusing to send the token there",
                self.endpoints.arm
            ))),
        }
    }

    /// One request with retries on 429/5xx/transport errors.
    async fn request(
        &self,
        service: Service,
        method: Method,
        url: &str,
        body: Option<Bytes>,
    ) -> Result<RawResponse, AzureError> {
        self.check_origin(url, service)?;
        let scope = match service {
            Service::Arm => self.endpoints.arm_scope(),
            Service::KeyVault => self.endpoints.keyvault_scope(),
        };
        let mut delay = self.retry.base_delay;
        let attempts = self.retry.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let token = self.tokens.token(&scope).await?;
            let mut headers = HeaderMap::new();
            let auth =
                HeaderValue::from_str(&format!("Bearer {}", token.secret())).map_err(|_| {
                    AzureError::Credential("the token is not a valid header value".into())
                })?;
            headers.insert(AUTHORIZATION, auth);
            headers.insert(
                hyper::header::USER_AGENT,
                HeaderValue::from_static(concat!("stateplan/", env!("CARGO_PKG_VERSION"))),
            );
            if body.is_some() {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            }
            let result = self
                .http
                .send(
                    method.clone(),
                    url,
                    headers,
                    body.clone().unwrap_or_default(),
                    self.retry.request_timeout,
                )
                .await;
            let retryable = match &result {
                Err(_) => true,
                Ok(r) => r.status == 429 || matches!(r.status, 500 | 502 | 503 | 504),
            };
            if !retryable || attempt >= attempts {
                return match result {
                    Ok(r) => Ok(r),
                    Err(message) => Err(AzureError::Transport {
                        method: method.to_string(),
                        url: url.into(),
                        message,
                    }),
                };
            }
            let wait = result
                .as_ref()
                .ok()
                .and_then(retry_after)
                .unwrap_or(delay)
                .min(self.retry.max_delay);
            tokio::time::sleep(wait).await;
            delay = (delay * 2).min(self.retry.max_delay);
        }
    }

    /// Turns an error answer into a typed error. Key Vault bodies are only
    /// read through the error shape (a set-secret answer echoes the value).
    fn api_error(&self, method: &Method, url: &str, resp: &RawResponse) -> AzureError {
        let detail = serde_json::from_slice::<ErrorBody>(&resp.body)
            .ok()
            .and_then(|b| b.error)
            .unwrap_or_default();
        AzureError::Api {
            status: resp.status,
            method: method.to_string(),
            url: strip_query(url),
            code: detail.code.clone(),
            message: detail.full_message(),
        }
    }

    fn decode<T: DeserializeOwned>(url: &str, body: &[u8]) -> Result<T, AzureError> {
        serde_json::from_slice(body).map_err(|e| AzureError::Decode {
            url: strip_query(url),
            message: e.to_string(),
        })
    }

    /// GET an ARM resource; `None` on 404.
    pub async fn arm_get<T: DeserializeOwned>(
        &self,
        id: &str,
        api_version: &str,
    ) -> Result<Option<T>, AzureError> {
        let url = self.arm_url(id, api_version, "");
        let resp = self.request(Service::Arm, Method::GET, &url, None).await?;
        match resp.status {
            200 => Self::decode(&url, &resp.body).map(Some),
            404 => Ok(None),
            _ => Err(self.api_error(&Method::GET, &url, &resp)),
        }
    }

    /// GET a collection, following `nextLink`.
    pub async fn arm_list<T: DeserializeOwned>(
        &self,
        path: &str,
        api_version: &str,
        query: &str,
    ) -> Result<Vec<T>, AzureError> {
        let mut url = self.arm_url(path, api_version, query);
        let mut out = Vec::new();
        for _ in 0..1000 {
            let resp = self.request(Service::Arm, Method::GET, &url, None).await?;
            if resp.status != 200 {
                return Err(self.api_error(&Method::GET, &url, &resp));
            }
            let page: ListPage<T> = Self::decode(&url, &resp.body)?;
            out.extend(page.value);
            match page.next_link.filter(|l| !l.is_empty()) {
                Some(next) => url = next,
                None => return Ok(out),
            }
        }
        Err(AzureError::Decode {
            url: strip_query(&url),
            message: "more than 1000 pages".into(),
        })
    }

    /// PUT an ARM resource and wait for the operation; returns the final
    /// resource.
    pub async fn arm_put<B: Serialize, T: DeserializeOwned>(
        &self,
        id: &str,
        api_version: &str,
        body: &B,
        what: &str,
    ) -> Result<T, AzureError> {
        let url = self.arm_url(id, api_version, "");
        let bytes = serde_json::to_vec(body).map_err(|e| AzureError::Decode {
            url: strip_query(&url),
            message: format!("cannot encode the request: {e}"),
        })?;
        let resp = self
            .request(Service::Arm, Method::PUT, &url, Some(Bytes::from(bytes)))
            .await?;
        if !(200..=202).contains(&resp.status) {
            return Err(self.api_error(&Method::PUT, &url, &resp));
        }
        let done = self.wait(what, &Method::PUT, &url, &resp).await?;
        let body = match done {
            Some(b) => b,
            None => {
                // Read the resource as it is now.
                let r = self.request(Service::Arm, Method::GET, &url, None).await?;
                if r.status != 200 {
                    return Err(self.api_error(&Method::GET, &url, &r));
                }
                r.body
            }
        };
        Self::decode(&url, &body)
    }

    /// DELETE an ARM resource and wait; a missing resource is fine.
    pub async fn arm_delete(
        &self,
        id: &str,
        api_version: &str,
        what: &str,
    ) -> Result<(), AzureError> {
        let url = self.arm_url(id, api_version, "");
        let resp = self
            .request(Service::Arm, Method::DELETE, &url, None)
            .await?;
        match resp.status {
            200 | 204 | 404 => Ok(()),
            202 | 201 => self
                .wait(what, &Method::DELETE, &url, &resp)
                .await
                .map(|_| ()),
            _ => Err(self.api_error(&Method::DELETE, &url, &resp)),
        }
    }

    fn report(&self, resource: &str, status: &str, started: Instant) {
        if let Some(p) = &self.progress {
            p(&Progress {
                resource: resource.into(),
                status: status.into(),
                elapsed: started.elapsed(),
            });
        }
    }

    fn poll_delay(&self, resp: &RawResponse) -> Duration {
        retry_after(resp)
            .unwrap_or(self.retry.poll_interval)
            .min(self.retry.max_delay)
    }

    /// Waits for a long-running operation. `Some(body)` when the final
    /// answer carried the resource.
    async fn wait(
        &self,
        what: &str,
        method: &Method,
        url: &str,
        first: &RawResponse,
    ) -> Result<Option<Bytes>, AzureError> {
        let started = Instant::now();
        let deadline = started + self.retry.operation_timeout;
        let timeout = || AzureError::Timeout {
            resource: what.into(),
            waited: started.elapsed(),
        };
        if let Some(op_url) = first.header("azure-asyncoperation").map(str::to_owned) {
            let mut delay = self.poll_delay(first);
            self.report(what, "Accepted", started);
            loop {
                if Instant::now() + delay > deadline {
                    return Err(timeout());
                }
                tokio::time::sleep(delay).await;
                let r = self
                    .request(Service::Arm, Method::GET, &op_url, None)
                    .await?;
                if r.status != 200 {
                    return Err(self.api_error(&Method::GET, &op_url, &r));
                }
                let op: AsyncOperation = Self::decode(&op_url, &r.body)?;
                self.report(what, &op.status, started);
                match op.status.as_str() {
                    s if s.eq_ignore_ascii_case("Succeeded") => return Ok(None),
                    s if s.eq_ignore_ascii_case("Failed") || s.eq_ignore_ascii_case("Canceled") => {
                        let e = op.error.unwrap_or_default();
                        return Err(AzureError::Operation {
                            resource: what.into(),
                            status: op.status.clone(),
                            code: e.code.clone(),
                            message: e.full_message(),
                        });
                    }
                    _ => delay = self.poll_delay(&r),
                }
            }
        }
        if let Some(loc) = first.header("location").map(str::to_owned) {
            let mut delay = self.poll_delay(first);
            self.report(what, "Accepted", started);
            loop {
                if Instant::now() + delay > deadline {
                    return Err(timeout());
                }
                tokio::time::sleep(delay).await;
                let r = self.request(Service::Arm, Method::GET, &loc, None).await?;
                match r.status {
                    202 => {
                        self.report(what, "InProgress", started);
                        delay = self.poll_delay(&r);
                    }
                    200 | 201 if *method == Method::PUT && !r.body.is_empty() => {
                        self.report(what, "Succeeded", started);
                        return Ok(Some(r.body));
                    }
                    200 | 201 | 204 => {
                        self.report(what, "Succeeded", started);
                        return Ok(None);
                    }
                    _ => return Err(self.api_error(&Method::GET, &loc, &r)),
                }
            }
        }
        // No operation header: follow the resource's provisioningState.
        if *method != Method::PUT {
            return Ok(None);
        }
        let mut body = first.body.clone();
        loop {
            let state = provisioning_state(&body);
            match state.as_deref() {
                None => return Ok(Some(body)),
                Some(s) if s.eq_ignore_ascii_case("Succeeded") => return Ok(Some(body)),
                Some(s)
                    if s.eq_ignore_ascii_case("Failed") || s.eq_ignore_ascii_case("Canceled") =>
                {
                    return Err(AzureError::Operation {
                        resource: what.into(),
                        status: s.into(),
                        code: String::new(),
                        message: "provisioningState became ".to_string() + s,
                    });
                }
                Some(s) => self.report(what, s, started),
            }
            if Instant::now() + self.retry.poll_interval > deadline {
                return Err(timeout());
            }
            tokio::time::sleep(self.retry.poll_interval).await;
            let r = self.request(Service::Arm, Method::GET, url, None).await?;
            if r.status != 200 {
                return Err(self.api_error(&Method::GET, url, &r));
            }
            body = r.body;
        }
    }

    /// A Key Vault secret's tags (empty when it has none), or `None` when
    /// it does not exist. The answer (which holds the value) is parsed into
    /// a type without a value field and dropped.
    pub async fn secret_tags(
        &self,
        vault: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, AzureError> {
        let url = format!(
            "{}/secrets/{name}?api-version={}",
            self.endpoints.vault_url(vault),
            super::KEYVAULT_API_VERSION
        );
        let resp = self
            .request(Service::KeyVault, Method::GET, &url, None)
            .await?;
        match resp.status {
            200 => {
                let meta: SecretMeta = Self::decode(&url, &resp.body).unwrap_or_default();
                Ok(Some(meta.tags.unwrap_or_default()))
            }
            404 => Ok(None),
            _ => Err(self.api_error(&Method::GET, &url, &resp)),
        }
    }

    /// Creates a secret. The body (the only place the value goes) is never
    /// part of an error; the answer (which echoes the value) is dropped.
    pub async fn secret_set(
        &self,
        vault: &str,
        name: &str,
        value: &SecretValue,
        content_type: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), AzureError> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct SetSecret<'a> {
            value: &'a str,
            content_type: &'a str,
            tags: &'a BTreeMap<String, String>,
        }
        let url = format!(
            "{}/secrets/{name}?api-version={}",
            self.endpoints.vault_url(vault),
            super::KEYVAULT_API_VERSION
        );
        let body = zeroize::Zeroizing::new(
            serde_json::to_vec(&SetSecret {
                value: value.expose(),
                content_type,
                tags,
            })
            .map_err(|_| AzureError::Decode {
                url: strip_query(&url),
                message: "cannot encode the secret request".into(),
            })?,
        );
        let resp = self
            .request(
                Service::KeyVault,
                Method::PUT,
                &url,
                Some(Bytes::copy_from_slice(&body)),
            )
            .await?;
        drop(body);
        match resp.status {
            200 | 201 => Ok(()),
            _ => Err(self.api_error(&Method::PUT, &url, &resp)),
        }
    }
}

fn provisioning_state(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.pointer("/properties/provisioningState")?
        .as_str()
        .map(str::to_owned)
}

/// `Retry-After` (seconds), or `retry-after-ms` / `x-ms-retry-after-ms`.
fn retry_after(resp: &RawResponse) -> Option<Duration> {
    for h in ["retry-after-ms", "x-ms-retry-after-ms"] {
        if let Some(ms) = resp.header(h).and_then(|v| v.trim().parse::<u64>().ok()) {
            return Some(Duration::from_millis(ms));
        }
    }
    resp.header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

fn strip_query(url: &str) -> String {
    url.split('?').next().unwrap_or(url).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_http_only_for_loopback() {
        assert!(Endpoints::new(Some("http://127.0.0.1:8080"), None).is_ok());
        assert!(Endpoints::new(Some("http://[::1]:8080"), None).is_ok());
        assert!(Endpoints::new(Some("http://localhost:1"), None).is_ok());
        let e =
            Endpoints::new(Some("http://management.example.com"), None).expect_err("must refuse");
        assert!(e.to_string().contains("not a loopback"), "{e}");
        assert!(Endpoints::new(None, Some("http://10.0.0.1/{vault}")).is_err());
        assert!(Endpoints::new(Some("ftp://x"), None).is_err());
    }

    #[test]
    fn scopes() {
        let d = Endpoints::default();
        assert_eq!(d.arm_scope(), "https://management.azure.com/.default");
        assert_eq!(d.keyvault_scope(), "https://vault.azure.net/.default");
        assert_eq!(d.vault_url("kv1"), "https://kv1.vault.azure.net");
        let cn = Endpoints::new(
            Some("https://management.chinacloudapi.cn"),
            Some("https://{vault}.vault.azure.cn"),
        )
        .expect("ok");
        assert_eq!(cn.keyvault_scope(), "https://vault.azure.cn/.default");
        let local =
            Endpoints::new(Some("http://127.0.0.1:1/"), Some("http://127.0.0.1:1")).expect("ok");
        assert_eq!(local.arm, "http://127.0.0.1:1");
        assert_eq!(local.arm_scope(), "https://management.azure.com/.default");
        assert_eq!(local.keyvault_scope(), "https://vault.azure.net/.default");
    }
}
