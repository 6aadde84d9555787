//! A local test double of Azure Resource Manager and the Key Vault data
//! plane, speaking HTTP/1.1 on 127.0.0.1 so stateplan's real client talks to
//! it. Answers follow the official REST examples in `tests/fixtures/azure/`
//! (README there):
//!
//! - AKS managed cluster GET (seeded), agent pools GET/LIST/PUT/DELETE with
//!   201/200 + `Azure-AsyncOperation` polling to `Succeeded`/`Failed`, delete
//!   202 + `Location`; changing an immutable property is ARM's 400.
//! - Managed identities (Azure assigns clientId/principalId/tenantId),
//!   federated identity credentials, role assignments (a principal must
//!   exist: else 400 `PrincipalNotFound`; changing one is 400
//!   `RoleAssignmentUpdateNotPermitted`), `Microsoft.Compute/skus`.
//! - Key Vault secrets GET/PUT (404 `SecretNotFound`; PUT adds a version).
//! - Bodies sent are checked against the examples' shapes: an unknown
//!   property or a value of another JSON type → 400 `InvalidRequestContent`.
//! - A wrong `api-version` → 400 `InvalidApiVersionParameter`; no bearer
//!   token → 401.
//! - Faults: 429 with `Retry-After`, any status with an ARM error body, a
//!   failed long-running operation with Azure's message.
//!
//! Not simulated: eventual consistency, tags-only PATCH, ARM throttling
//! headers (`x-ms-ratelimit-*`), Key Vault soft-delete, pagination
//! (`nextLink` is always null).
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use serde_json::{Map, Value, json};

const AKS: &str = "2026-08-01";
const MSI: &str = "2024-11-30";
const AUTHZ: &str = "2022-04-01";
const SKUS: &str = "2021-07-01";
const KV: &str = "2025-07-01";

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/azure/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The allowed properties of a body and an example value of each.
#[derive(Debug, Default, Clone)]
struct Shape(BTreeMap<String, Value>);

impl Shape {
    fn add(&mut self, obj: Option<&Value>) {
        if let Some(Value::Object(m)) = obj {
            for (k, v) in m {
                self.0.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }

    /// `Err(message)` like ARM's for the first unknown or mistyped property.
    fn check(&self, body: &Value, type_name: &str) -> Result<(), String> {
        let Value::Object(m) = body else {
            return Err(format!(
                "The request content was invalid: expected an object of type '{type_name}'."
            ));
        };
        for (k, v) in m {
            let Some(example) = self.0.get(k) else {
                return Err(format!(
                    "The request content was invalid and could not be deserialized: 'Could not find member '{k}' on object of type '{type_name}'. Path '{k}'.'"
                ));
            };
            if !same_type(example, v) && !v.is_null() {
                return Err(format!(
                    "The request content was invalid and could not be deserialized: 'Error converting value {v} to the type of '{type_name}.{k}'. Path '{k}'.'"
                ));
            }
        }
        Ok(())
    }
}

fn same_type(a: &Value, b: &Value) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

struct Shapes {
    agentpool_props: Shape,
    identity_top: Shape,
    fic_props: Shape,
    ra_props: Shape,
    secret_set: Shape,
}

fn shapes() -> Shapes {
    let mut agentpool_props = Shape::default();
    for f in [
        "AgentPoolsCreate_Update.json",
        "AgentPoolsCreate_Ephemeral.json",
        "AgentPoolsCreate_EnableUltraSSD.json",
        "AgentPools_Update.json",
        "AgentPoolsGet.json",
    ] {
        let fx = fixture(f);
        agentpool_props.add(fx.pointer("/parameters/parameters/properties"));
        for code in ["200", "201"] {
            agentpool_props.add(fx.pointer(&format!("/responses/{code}/body/properties")));
        }
    }
    // In the 2026-08-01 spec (ManagedClusterAgentPoolProfileProperties) but in
    // none of the examples above.
    for (k, v) in [
        ("availabilityZones", json!(["1"])),
        ("type", json!("VirtualMachineScaleSets")),
        ("enableAutoScaling", json!(true)),
        ("minCount", json!(1)),
        ("maxCount", json!(1)),
        ("osDiskSizeGB", json!(128)),
        ("osDiskType", json!("Managed")),
        (
            "vnetSubnetID",
            json!(
                "/subscriptions/x/resourceGroups/x/providers/Microsoft.Network/virtualNetworks/x/subnets/x"
            ),
        ),
    ] {
        agentpool_props.0.entry(k.into()).or_insert(v);
    }
    let mut identity_top = Shape::default();
    identity_top.add(fixture("MSI-IdentityCreate.json").pointer("/parameters/parameters"));
    let mut fic_props = Shape::default();
    fic_props.add(
        fixture("MSI-FederatedIdentityCredentialCreate.json")
            .pointer("/parameters/parameters/properties"),
    );
    let mut ra_props = Shape::default();
    ra_props.add(
        fixture("Authorization-RoleAssignments_CreateForResource.json")
            .pointer("/parameters/parameters/properties"),
    );
    let mut secret_set = Shape::default();
    secret_set.add(fixture("KeyVault-SetSecret-example.json").pointer("/parameters/parameters"));
    // SecretSetParameters (2025-07-01) properties the example does not show.
    secret_set.0.insert("tags".into(), json!({}));
    secret_set.0.insert("contentType".into(), json!(""));
    secret_set.0.insert("attributes".into(), json!({}));
    Shapes {
        agentpool_props,
        identity_top,
        fic_props,
        ra_props,
        secret_set,
    }
}

/// A programmed misbehaviour.
#[derive(Debug, Clone)]
pub enum FaultKind {
    /// 429 with `Retry-After: secs`.
    Throttle { retry_after: u64 },
    /// An error status with an ARM error body.
    Status {
        status: u16,
        code: String,
        message: String,
    },
    /// The long-running operation started by the matching PUT ends `Failed`.
    FailOperation { code: String, message: String },
}

#[derive(Debug, Clone)]
struct Fault {
    method: String,
    path_contains: String,
    remaining: u32,
    kind: FaultKind,
}

#[derive(Debug, Clone)]
struct Operation {
    /// Lower-cased resource path it works on.
    resource: String,
    polls_left: u32,
    outcome: Result<(), (String, String)>,
    delete: bool,
}

#[derive(Debug, Clone)]
struct Secret {
    value: String,
    versions: Vec<String>,
    content_type: Option<String>,
    tags: Value,
}

#[derive(Default)]
struct State {
    /// Lower-cased path → resource body.
    resources: BTreeMap<String, Value>,
    secrets: BTreeMap<String, Secret>,
    skus: Vec<Value>,
    ops: HashMap<String, Operation>,
    faults: Vec<Fault>,
    requests: Vec<String>,
    /// Bodies received (for leak checks: the test can look for values).
    bodies: Vec<String>,
    next: u64,
    polls_per_operation: u32,
}

/// The running double.
pub struct ArmDouble {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ArmDouble {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Ctx {
    state: Arc<Mutex<State>>,
    shapes: Shapes,
    base: String,
}

impl ArmDouble {
    pub async fn start() -> ArmDouble {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(State {
            polls_per_operation: 2,
            ..Default::default()
        }));
        let ctx = Arc::new(Ctx {
            state: state.clone(),
            shapes: shapes(),
            base: format!("http://{addr}"),
        });
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let ctx = ctx.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let ctx = ctx.clone();
                        async move { Ok::<_, Infallible>(handle(&ctx, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        ArmDouble { addr, state, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn st(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Seeds the managed cluster.
    pub fn set_cluster(&self, id: &str, oidc_issuer: Option<&str>, workload_identity: bool) {
        let name = id.rsplit('/').next().unwrap_or_default();
        let body = json!({
            "id": id,
            "name": name,
            "type": "Microsoft.ContainerService/ManagedClusters",
            "location": "northeurope",
            "properties": {
                "provisioningState": "Succeeded",
                "kubernetesVersion": "1.33.2",
                "oidcIssuerProfile": match oidc_issuer {
                    Some(u) => json!({"enabled": true, "issuerURL": u}),
                    None => json!({"enabled": false}),
                },
                "securityProfile": {"workloadIdentity": {"enabled": workload_identity}},
            }
        });
        self.st().resources.insert(id.to_ascii_lowercase(), body);
    }

    /// The SKUs `Microsoft.Compute/skus` lists.
    pub fn set_skus(&self, skus: Vec<Value>) {
        self.st().skus = skus;
    }

    /// The SKU list of the official example (westus).
    pub fn example_skus() -> Vec<Value> {
        fixture("ListAvailableResourceSkusForARegion.json")
            .pointer("/responses/200/body/value")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }

    /// Polls of an async operation before it finishes.
    pub fn set_polls_per_operation(&self, n: u32) {
        self.st().polls_per_operation = n;
    }

    pub fn resource(&self, id: &str) -> Option<Value> {
        self.st().resources.get(&id.to_ascii_lowercase()).cloned()
    }

    pub fn put_resource(&self, id: &str, body: Value) {
        self.st().resources.insert(id.to_ascii_lowercase(), body);
    }

    pub fn remove_resource(&self, id: &str) {
        self.st().resources.remove(&id.to_ascii_lowercase());
    }

    /// Resource paths stored under a prefix.
    pub fn resource_ids(&self, prefix: &str) -> Vec<String> {
        let p = prefix.to_ascii_lowercase();
        self.st()
            .resources
            .keys()
            .filter(|k| k.starts_with(&p))
            .cloned()
            .collect()
    }

    pub fn seed_secret(&self, name: &str, value: &str) {
        self.seed_secret_tagged(name, value, json!({}));
    }

    pub fn seed_secret_tagged(&self, name: &str, value: &str, tags: Value) {
        self.st().secrets.insert(
            name.into(),
            Secret {
                value: value.into(),
                versions: vec!["00000000000000000000000000000001".into()],
                content_type: None,
                tags,
            },
        );
    }

    pub fn secret_value(&self, name: &str) -> Option<String> {
        self.st().secrets.get(name).map(|s| s.value.clone())
    }

    pub fn secret_versions(&self, name: &str) -> usize {
        self.st().secrets.get(name).map_or(0, |s| s.versions.len())
    }

    pub fn secret_names(&self) -> Vec<String> {
        self.st().secrets.keys().cloned().collect()
    }

    /// `METHOD /path` of every request, in order (query dropped).
    pub fn requests(&self) -> Vec<String> {
        self.st().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.st().requests.clear();
    }

    /// Requests other than GET.
    pub fn writes(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| !r.starts_with("GET "))
            .collect()
    }

    /// The next `times` requests with `method` whose path contains
    /// `path_contains` (case-insensitive) get the fault.
    pub fn fault(&self, method: &str, path_contains: &str, times: u32, kind: FaultKind) {
        self.st().faults.push(Fault {
            method: method.into(),
            path_contains: path_contains.to_ascii_lowercase(),
            remaining: times,
            kind,
        });
    }
}

fn respond(status: u16, headers: &[(&str, String)], body: Option<&Value>) -> Response<Full<Bytes>> {
    let mut b = Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(*k, v.as_str());
    }
    let bytes = match body {
        Some(v) => {
            b = b.header("content-type", "application/json; charset=utf-8");
            Bytes::from(serde_json::to_vec(v).unwrap_or_default())
        }
        None => Bytes::new(),
    };
    b.body(Full::new(bytes))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn arm_error(status: u16, code: &str, message: &str) -> Response<Full<Bytes>> {
    respond(
        status,
        &[],
        Some(&json!({"error": {"code": code, "message": message}})),
    )
}

fn query(uri: &hyper::Uri) -> HashMap<String, String> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace("%20", " ").replace("%27", "'")))
        .collect()
}

fn uuid_from(seed: &str) -> String {
    // Deterministic, GUID-shaped (FNV-1a based).
    let mut h: u128 = 0x6c62272e07bb014262b821756295c58d;
    for b in seed.bytes() {
        h ^= u128::from(b);
        h = h.wrapping_mul(0x0000000001000000000000000000013B);
    }
    let s = format!("{h:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &s[0..8],
        &s[8..12],
        &s[12..16],
        &s[16..20],
        &s[20..32]
    )
}

async fn handle(ctx: &Ctx, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().to_string();
    let uri = req.uri().clone();
    let path = uri.path().to_string();
    let lower = path.to_ascii_lowercase();
    let q = query(&uri);
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return arm_error(400, "InvalidRequest", "could not read the body"),
    };
    let mut st = ctx.state.lock().unwrap_or_else(|e| e.into_inner());
    st.requests.push(format!("{method} {path}"));
    if !body.is_empty() {
        st.bodies.push(String::from_utf8_lossy(&body).into_owned());
    }
    if !auth
        .as_deref()
        .is_some_and(|a| a.starts_with("Bearer ") && a.len() > 7)
    {
        return arm_error(
            401,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
        );
    }
    // Faults.
    let mut fail_op = None;
    if let Some(i) = st
        .faults
        .iter()
        .position(|f| f.remaining > 0 && f.method == method && lower.contains(&f.path_contains))
    {
        st.faults[i].remaining -= 1;
        match st.faults[i].kind.clone() {
            FaultKind::Throttle { retry_after } => {
                return respond(
                    429,
                    &[("retry-after", retry_after.to_string())],
                    Some(
                        &json!({"error": {"code": "TooManyRequests", "message": "The request is being throttled."}}),
                    ),
                );
            }
            FaultKind::Status {
                status,
                code,
                message,
            } => return arm_error(status, &code, &message),
            FaultKind::FailOperation { code, message } => fail_op = Some((code, message)),
        }
    }
    let api = q.get("api-version").cloned().unwrap_or_default();
    let json_body: Option<Value> = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => Some(v),
            Err(e) => {
                return arm_error(
                    400,
                    "InvalidRequestContent",
                    &format!("The request content was invalid and could not be deserialized: {e}"),
                );
            }
        }
    };
    let segs: Vec<&str> = lower.trim_matches('/').split('/').collect();
    let st = &mut *st;

    // Async operations.
    if lower.contains("/providers/microsoft.containerservice/locations/") {
        let id = segs.last().copied().unwrap_or_default().to_string();
        let results = lower.contains("/operationresults/");
        let Some(op) = st.ops.get_mut(&id) else {
            return arm_error(404, "NotFound", "Operation not found.");
        };
        if op.polls_left > 1 {
            op.polls_left -= 1;
            return if results {
                respond(
                    202,
                    &[("location", format!("{}{path}?api-version={AKS}", ctx.base))],
                    None,
                )
            } else {
                respond(200, &[], Some(&json!({"name": id, "status": "InProgress"})))
            };
        }
        let op = op.clone();
        st.ops.remove(&id);
        let final_state = if op.outcome.is_ok() {
            "Succeeded"
        } else {
            "Failed"
        };
        if op.delete && op.outcome.is_ok() {
            st.resources.remove(&op.resource);
        } else if let Some(r) = st.resources.get_mut(&op.resource) {
            r["properties"]["provisioningState"] = json!(final_state);
        }
        if results {
            return respond(204, &[], None);
        }
        return match op.outcome {
            Ok(()) => respond(200, &[], Some(&json!({"name": id, "status": "Succeeded"}))),
            Err((code, message)) => respond(
                200,
                &[],
                Some(
                    &json!({"name": id, "status": "Failed", "error": {"code": code, "message": message}}),
                ),
            ),
        };
    }

    // Key Vault data plane.
    if segs.first() == Some(&"secrets") && segs.len() == 2 {
        if api != KV {
            return arm_error(
                400,
                "BadParameter",
                &format!("The specified version ({api}) is not recognized."),
            );
        }
        let name = path
            .trim_matches('/')
            .split('/')
            .nth(1)
            .unwrap_or_default()
            .to_string();
        return match method.as_str() {
            "GET" => match st.secrets.get(&name) {
                Some(s) => respond(
                    200,
                    &[],
                    Some(&json!({
                        "value": s.value,
                        "id": format!("{}/secrets/{name}/{}", ctx.base, s.versions.last().cloned().unwrap_or_default()),
                        "contentType": s.content_type,
                        "tags": s.tags,
                        "attributes": {"enabled": true, "created": 1493938410, "updated": 1493938410, "recoveryLevel": "Recoverable+Purgeable"}
                    })),
                ),
                None => arm_error(
                    404,
                    "SecretNotFound",
                    &format!(
                        "A secret with (name/id) {name} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
                    ),
                ),
            },
            "PUT" => {
                let Some(b) = json_body else {
                    return arm_error(400, "BadParameter", "The request body is missing.");
                };
                if let Err(m) = ctx.shapes.secret_set.check(&b, "SecretSetParameters") {
                    return arm_error(400, "BadParameter", &m);
                }
                let Some(value) = b.get("value").and_then(Value::as_str) else {
                    return arm_error(400, "BadParameter", "Property 'value' is required.");
                };
                st.next += 1;
                let version = format!("{:032x}", st.next);
                let s = st.secrets.entry(name.clone()).or_insert(Secret {
                    value: String::new(),
                    versions: vec![],
                    content_type: None,
                    tags: json!({}),
                });
                s.value = value.to_string();
                s.versions.push(version.clone());
                s.content_type = b
                    .get("contentType")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                s.tags = b.get("tags").cloned().unwrap_or(json!({}));
                respond(
                    200,
                    &[],
                    Some(&json!({
                        "value": value,
                        "id": format!("{}/secrets/{name}/{version}", ctx.base),
                        "attributes": {"enabled": true, "created": 1493938459, "updated": 1493938459, "recoveryLevel": "Recoverable+Purgeable"}
                    })),
                )
            }
            _ => arm_error(405, "MethodNotAllowed", "method not allowed"),
        };
    }

    // ARM resources.
    let n = segs.len();
    let is = |i: usize, s: &str| segs.get(i).is_some_and(|x| *x == s);
    let provider_at = |p: &str| segs.iter().rposition(|s| *s == p);

    // Compute SKUs.
    if n == 5
        && is(0, "subscriptions")
        && is(2, "providers")
        && lower.ends_with("/microsoft.compute/skus")
    {
        if api != SKUS {
            return bad_api(&api);
        }
        let loc = q
            .get("%24filter")
            .or_else(|| q.get("$filter"))
            .and_then(|f| f.split('\'').nth(1))
            .map(str::to_ascii_lowercase);
        let value: Vec<Value> = st
            .skus
            .iter()
            .filter(|s| match &loc {
                Some(l) => s["locations"].as_array().is_some_and(|a| {
                    a.iter().any(|x| {
                        x.as_str().map(str::to_ascii_lowercase).as_deref() == Some(l.as_str())
                    })
                }),
                None => true,
            })
            .cloned()
            .collect();
        return respond(200, &[], Some(&json!({"value": value, "nextLink": null})));
    }

    // Role assignments: {scope}/providers/Microsoft.Authorization/roleAssignments/{name}
    if let Some(i) = provider_at("microsoft.authorization")
        && is(i + 1, "roleassignments")
        && n == i + 3
    {
        if api != AUTHZ {
            return bad_api(&api);
        }
        let name = segs[i + 2];
        return match method.as_str() {
            "GET" => match st.resources.get(&lower) {
                Some(r) => respond(200, &[], Some(r)),
                None => arm_error(
                    404,
                    "RoleAssignmentNotFound",
                    &format!("The role assignment '{name}' is not found."),
                ),
            },
            "DELETE" => match st.resources.remove(&lower) {
                Some(r) => respond(200, &[], Some(&r)),
                None => respond(204, &[], None),
            },
            "PUT" => {
                let Some(b) = json_body else {
                    return arm_error(
                        400,
                        "InvalidRequestContent",
                        "The request content was invalid.",
                    );
                };
                if let Err(m) = check_top(&b, &["properties"]).and_then(|_| {
                    ctx.shapes
                        .ra_props
                        .check(&b["properties"], "RoleAssignmentProperties")
                }) {
                    return arm_error(400, "InvalidRequestContent", &m);
                }
                let principal = b["properties"]["principalId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let known = st.resources.values().any(|r| {
                    r["properties"]["principalId"].as_str() == Some(principal.as_str())
                        && r["type"].as_str()
                            == Some("Microsoft.ManagedIdentity/userAssignedIdentities")
                });
                if !known {
                    return arm_error(
                        400,
                        "PrincipalNotFound",
                        &format!(
                            "Principal {} does not exist in the directory 72f988bf-86f1-41af-91ab-2d7cd011db47. Check that you have the correct principal ID.",
                            principal.replace('-', "")
                        ),
                    );
                }
                let scope = format!(
                    "/{}",
                    path.trim_matches('/')
                        .rsplitn(5, '/')
                        .nth(4)
                        .unwrap_or_default()
                );
                let mut props = b["properties"].clone();
                props["scope"] = json!(scope);
                let stored = json!({
                    "properties": props,
                    "id": path,
                    "type": "Microsoft.Authorization/roleAssignments",
                    "name": name,
                });
                if let Some(existing) = st.resources.get(&lower) {
                    if existing["properties"]["principalId"] != stored["properties"]["principalId"]
                        || existing["properties"]["roleDefinitionId"]
                            != stored["properties"]["roleDefinitionId"]
                    {
                        return arm_error(
                            400,
                            "RoleAssignmentUpdateNotPermitted",
                            "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
                        );
                    }
                    return respond(200, &[], Some(existing));
                }
                st.resources.insert(lower.clone(), stored.clone());
                respond(201, &[], Some(&stored))
            }
            _ => arm_error(405, "MethodNotAllowed", "method not allowed"),
        };
    }

    // Resource group scoped providers.
    if !(n >= 8 && is(0, "subscriptions") && is(2, "resourcegroups") && is(4, "providers")) {
        return arm_error(
            404,
            "InvalidResourceType",
            &format!("The resource type could not be found for path '{path}'."),
        );
    }
    let provider = segs[5];
    let rg = path
        .trim_matches('/')
        .split('/')
        .nth(3)
        .unwrap_or_default()
        .to_string();
    match (provider, segs[6]) {
        ("microsoft.containerservice", "managedclusters") => {
            if api != AKS {
                return bad_api(&api);
            }
            let cluster_key = segs[..8].join("/");
            let cluster_key = format!("/{cluster_key}");
            if !st.resources.contains_key(&cluster_key) {
                return arm_error(
                    404,
                    "ResourceNotFound",
                    &format!(
                        "The Resource 'Microsoft.ContainerService/managedClusters/{}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
                        segs[7]
                    ),
                );
            }
            if n == 8 {
                return match method.as_str() {
                    "GET" => respond(200, &[], st.resources.get(&cluster_key)),
                    _ => arm_error(
                        405,
                        "MethodNotAllowed",
                        "only GET is simulated for clusters",
                    ),
                };
            }
            if !is(8, "agentpools") {
                return arm_error(404, "NotFound", "not simulated");
            }
            if n == 9 {
                let prefix = format!("{lower}/");
                let value: Vec<Value> = st
                    .resources
                    .iter()
                    .filter(|(k, _)| {
                        k.starts_with(&prefix) && k[prefix.len()..].find('/').is_none()
                    })
                    .map(|(_, v)| v.clone())
                    .collect();
                return respond(200, &[], Some(&json!({"value": value})));
            }
            if n != 10 {
                return arm_error(404, "NotFound", "not simulated");
            }
            let pool = path
                .trim_matches('/')
                .split('/')
                .nth(9)
                .unwrap_or_default()
                .to_string();
            match method.as_str() {
                "GET" => match st.resources.get(&lower) {
                    Some(r) => respond(200, &[], Some(r)),
                    None => arm_error(
                        404,
                        "NotFound",
                        &format!(
                            "Could not find agent pool {pool} in the managed cluster {}.",
                            segs[7]
                        ),
                    ),
                },
                "DELETE" => {
                    if !st.resources.contains_key(&lower) {
                        return respond(204, &[], None);
                    }
                    st.next += 1;
                    let id = uuid_from(&format!("op{}", st.next));
                    let polls = st.polls_per_operation;
                    st.ops.insert(
                        id.clone(),
                        Operation {
                            resource: lower.clone(),
                            polls_left: polls,
                            outcome: Ok(()),
                            delete: true,
                        },
                    );
                    if let Some(r) = st.resources.get_mut(&lower) {
                        r["properties"]["provisioningState"] = json!("Deleting");
                    }
                    respond(
                        202,
                        &[(
                            "location",
                            format!(
                                "{}/subscriptions/{}/providers/Microsoft.ContainerService/locations/northeurope/operationresults/{id}?api-version={AKS}",
                                ctx.base, segs[1]
                            ),
                        )],
                        None,
                    )
                }
                "PUT" => {
                    let Some(b) = json_body else {
                        return arm_error(
                            400,
                            "InvalidRequestContent",
                            "The request content was invalid.",
                        );
                    };
                    if let Err(m) = check_top(&b, &["properties"]).and_then(|_| {
                        ctx.shapes
                            .agentpool_props
                            .check(&b["properties"], "ManagedClusterAgentPoolProfileProperties")
                    }) {
                        return arm_error(400, "InvalidRequestContent", &m);
                    }
                    let mut props = b["properties"].clone();
                    let existing = st.resources.get(&lower).cloned();
                    if let Some(e) = &existing {
                        for f in [
                            "vmSize",
                            "osDiskSizeGB",
                            "osDiskType",
                            "maxPods",
                            "enableUltraSSD",
                        ] {
                            if let Some(v) = props.get(f)
                                && e["properties"].get(f).is_some_and(|ev| ev != v)
                            {
                                return arm_error(
                                    400,
                                    "PropertyChangeNotAllowed",
                                    &format!("Changing property '{f}' is not allowed."),
                                );
                            }
                        }
                        // A PUT replaces the pool: leaving out its subnet asks
                        // to move it, which AKS refuses.
                        if e["properties"].get("vnetSubnetID").is_some()
                            && props.get("vnetSubnetID") != e["properties"].get("vnetSubnetID")
                        {
                            return arm_error(
                                400,
                                "PropertyChangeNotAllowed",
                                "Changing property 'vnetSubnetID' is not allowed.",
                            );
                        }
                        let mut ez: Vec<String> =
                            serde_json::from_value(e["properties"]["availabilityZones"].clone())
                                .unwrap_or_default();
                        let mut dz: Vec<String> =
                            serde_json::from_value(props["availabilityZones"].clone())
                                .unwrap_or_default();
                        ez.sort();
                        dz.sort();
                        if ez != dz {
                            return arm_error(
                                400,
                                "PropertyChangeNotAllowed",
                                "Changing property 'availabilityZones' is not allowed.",
                            );
                        }
                    }
                    let obj = props.as_object_mut().map(|m| m as &mut Map<String, Value>);
                    if let Some(m) = obj {
                        m.entry("maxPods").or_insert(json!(110));
                        m.entry("osDiskType").or_insert(json!("Managed"));
                        // Left out, the version is the control plane's: a
                        // PUT without it upgrades an older pool.
                        let version = m
                            .get("orchestratorVersion")
                            .cloned()
                            .unwrap_or_else(|| json!("1.33.2"));
                        m.insert("orchestratorVersion".into(), version.clone());
                        m.insert("currentOrchestratorVersion".into(), version);
                        m.insert(
                            "nodeImageVersion".into(),
                            json!("AKSUbuntu-2204gen2containerd-202507.21.0"),
                        );
                        m.insert(
                            "provisioningState".into(),
                            json!(if existing.is_some() {
                                "Updating"
                            } else {
                                "Creating"
                            }),
                        );
                    }
                    let stored = json!({
                        "name": pool,
                        "type": "Microsoft.ContainerService/managedClusters/agentPools",
                        "id": path,
                        "properties": props,
                    });
                    st.resources.insert(lower.clone(), stored.clone());
                    st.next += 1;
                    let id = uuid_from(&format!("op{}", st.next));
                    let polls = st.polls_per_operation;
                    st.ops.insert(
                        id.clone(),
                        Operation {
                            resource: lower.clone(),
                            polls_left: polls,
                            outcome: match fail_op {
                                Some(f) => Err(f),
                                None => Ok(()),
                            },
                            delete: false,
                        },
                    );
                    let status = if existing.is_some() { 200 } else { 201 };
                    respond(
                        status,
                        &[(
                            "azure-asyncoperation",
                            format!(
                                "{}/subscriptions/{}/providers/Microsoft.ContainerService/locations/northeurope/operations/{id}?api-version={AKS}",
                                ctx.base, segs[1]
                            ),
                        )],
                        Some(&stored),
                    )
                }
                _ => arm_error(405, "MethodNotAllowed", "method not allowed"),
            }
        }
        ("microsoft.managedidentity", "userassignedidentities") => {
            if api != MSI {
                return bad_api(&api);
            }
            let orig: Vec<&str> = path.trim_matches('/').split('/').collect();
            let identity_key = format!("/{}", segs[..8].join("/"));
            if n == 8 {
                return match method.as_str() {
                    "GET" => match st.resources.get(&lower) {
                        Some(r) => respond(200, &[], Some(r)),
                        None => arm_error(
                            404,
                            "ResourceNotFound",
                            &format!(
                                "The Resource 'Microsoft.ManagedIdentity/userAssignedIdentities/{}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
                                orig[7]
                            ),
                        ),
                    },
                    "PUT" => {
                        let Some(b) = json_body else {
                            return arm_error(
                                400,
                                "InvalidRequestContent",
                                "The request content was invalid.",
                            );
                        };
                        if let Err(m) = ctx.shapes.identity_top.check(&b, "Identity") {
                            return arm_error(400, "InvalidRequestContent", &m);
                        }
                        let existing = st.resources.get(&lower).cloned();
                        let props = existing
                            .as_ref()
                            .map(|e| e["properties"].clone())
                            .unwrap_or_else(|| {
                                json!({
                                    "clientId": uuid_from(&format!("client:{lower}")),
                                    "principalId": uuid_from(&format!("principal:{lower}")),
                                    "tenantId": "b6c948ef-f6b5-4384-8354-da3a15eca969",
                                    "isolationScope": "None",
                                })
                            });
                        let stored = json!({
                            "name": orig[7],
                            "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
                            "id": path,
                            "location": b["location"],
                            "tags": b.get("tags").cloned().unwrap_or(json!({})),
                            "properties": props,
                        });
                        st.resources.insert(lower.clone(), stored.clone());
                        respond(
                            if existing.is_some() { 200 } else { 201 },
                            &[],
                            Some(&stored),
                        )
                    }
                    _ => arm_error(405, "MethodNotAllowed", "method not allowed"),
                };
            }
            if n == 10 && is(8, "federatedidentitycredentials") {
                return match method.as_str() {
                    "GET" => match st.resources.get(&lower) {
                        Some(r) => respond(200, &[], Some(r)),
                        None => arm_error(
                            404,
                            "NotFound",
                            &format!("Federated identity credential '{}' not found.", orig[9]),
                        ),
                    },
                    "PUT" => {
                        // The REST spec's pattern for the name parameter.
                        let name = orig[9];
                        let valid = (3..=120).contains(&name.len())
                            && name.starts_with(|c: char| c.is_ascii_alphanumeric())
                            && name
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                        if !valid {
                            return arm_error(
                                400,
                                "BadRequest",
                                &format!(
                                    "The federated identity credential name '{name}' is invalid: it must match ^[a-zA-Z0-9]{{1}}[a-zA-Z0-9-_]{{2,119}}$."
                                ),
                            );
                        }
                        if !st.resources.contains_key(&identity_key) {
                            return arm_error(
                                404,
                                "ParentResourceNotFound",
                                &format!(
                                    "Can not perform requested operation on nested resource. Parent resource '{}' not found.",
                                    orig[7]
                                ),
                            );
                        }
                        let Some(b) = json_body else {
                            return arm_error(
                                400,
                                "InvalidRequestContent",
                                "The request content was invalid.",
                            );
                        };
                        if let Err(m) = check_top(&b, &["properties"]).and_then(|_| {
                            ctx.shapes
                                .fic_props
                                .check(&b["properties"], "FederatedIdentityCredentialProperties")
                        }) {
                            return arm_error(400, "InvalidRequestContent", &m);
                        }
                        let issuer = b["properties"]["issuer"].as_str().unwrap_or_default();
                        if !issuer.starts_with("https://") {
                            return arm_error(
                                400,
                                "BadRequest",
                                &format!(
                                    "Invalid issuer '{issuer}': the issuer must be an https URL."
                                ),
                            );
                        }
                        let existed = st.resources.contains_key(&lower);
                        let stored = json!({
                            "name": orig[9],
                            "type": "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials",
                            "id": path,
                            "properties": b["properties"],
                        });
                        st.resources.insert(lower.clone(), stored.clone());
                        respond(if existed { 200 } else { 201 }, &[], Some(&stored))
                    }
                    _ => arm_error(405, "MethodNotAllowed", "method not allowed"),
                };
            }
            arm_error(404, "NotFound", "not simulated")
        }
        _ => arm_error(
            404,
            "InvalidResourceType",
            &format!("The resource type could not be found for path '{path}'."),
        ),
    }
}

fn bad_api(api: &str) -> Response<Full<Bytes>> {
    arm_error(
        400,
        "InvalidApiVersionParameter",
        &format!("The api-version '{api}' is invalid or not supported for this resource type."),
    )
}

fn check_top(b: &Value, allowed: &[&str]) -> Result<(), String> {
    let Value::Object(m) = b else {
        return Err("The request content was invalid: expected an object.".into());
    };
    for k in m.keys() {
        if !allowed.contains(&k.as_str()) && !["id", "name", "type"].contains(&k.as_str()) {
            return Err(format!(
                "The request content was invalid and could not be deserialized: 'Could not find member '{k}' on object of type 'Resource'. Path '{k}'.'"
            ));
        }
    }
    Ok(())
}
