//! An in-process test double of the Kubernetes API server, speaking real
//! HTTP/1.1 on 127.0.0.1 so stateplan's real `kube` client can talk to it.
//!
//! It behaves like the server recorded in `tests/fixtures/kube/` (see the
//! README there): discovery, GET/LIST with selectors, server-side apply with
//! field ownership, conflicts, dry-run and defaulting, strict schema errors,
//! immutable fields, PVC expansion rules, orphan/background deletion, Lease
//! optimistic concurrency, watch streams, and a stepped StatefulSet /
//! PVC / ExternalSecret controller with failure hooks.
//!
//! Include it from an integration test or bench with
//! `#[path = "support/kube_double/mod.rs"] mod kube_double;`, then
//! `let d = KubeDouble::start().await;` and point a client at `d.url()`
//! (`Client::try_from(Config::new(d.url().parse()?))`).
//!
//! Where it follows a v1.33 server rather than the v1.24 recordings:
//! `persistentVolumeClaimRetentionPolicy` is defaulted, and the immutable
//! StatefulSet message lists 'ordinals' and 'revisionHistoryLimit' among the
//! mutable fields. Growing a PVC whose class lacks `allowVolumeExpansion` is
//! the resize admission plugin's 403 `Forbidden` (as on a real server), not a
//! 422. kube's client retries 429/503/504 by itself (`Config::default_retry`).
//!
//! Not simulated: authentication/RBAC, admission webhooks, HTTP/2, protobuf,
//! `sendInitialEvents`/watch-list, 410 Gone for old resourceVersions (all
//! events are kept), server-side field pruning of unknown fields other than
//! the apply-path error, `$patch` directives of strategic merge patch,
//! graceful pod termination, Namespace `Terminating` (deletion is immediate),
//! PVC protection (a claim in use is deleted at once), scale subresources,
//! Velero itself (Schedules are stored only), nodes.
#![allow(dead_code)]

mod controller;
mod defaults;
mod fieldset;
mod schema;
mod util;
mod validate;

pub use controller::PodFault;
pub use util::ApiError;

use fieldset::{
    FieldSet, Scope, collect, from_fields_v1, get, has_ancestor, has_descendant_or_self,
    path_string, remove, to_fields_v1,
};
use hyper::body::{Body, Bytes, Frame, Incoming};
use hyper::{Request, Response};
use schema::{Schema, builtin_def, crd_defaults, typed_errors};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;
use util::{FieldSelector, LabelSelector, now_secs, parse_query, percent_decode, rfc3339};

/// A kind the double serves.
#[derive(Clone, Debug)]
pub struct ResourceType {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    /// Has a `/status` subresource: `status` is ignored on the main resource.
    pub status_sub: bool,
    /// `metadata.generation` is maintained.
    pub has_generation: bool,
    pub crd: bool,
    schema: Schema,
}

impl ResourceType {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
    fn gvk_string(&self) -> String {
        format!("{}/{}, Kind={}", self.group, self.version, self.kind)
    }
}

/// One field manager's entry in `metadata.managedFields`.
#[derive(Clone, Debug, PartialEq)]
struct Managed {
    manager: String,
    operation: String,
    api_version: String,
    time: String,
    subresource: Option<String>,
    fields: FieldSet,
}

impl Managed {
    fn same_id(&self, manager: &str, operation: &str, sub: Option<&str>) -> bool {
        self.manager == manager && self.operation == operation && self.subresource.as_deref() == sub
    }
    fn describe(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            s.push_str(&format!(" with subresource {sub:?}"));
        }
        if self.operation == "Update" {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }
}

#[derive(Clone, Debug)]
struct Stored {
    /// The object without `managedFields`.
    obj: Value,
    managed: Vec<Managed>,
}

/// (group, plural, namespace or "", name)
type Key = (String, String, String, String);

struct WatchEvent {
    rv: u64,
    group: String,
    plural: String,
    ns: String,
    ty: &'static str,
    object: Value,
}

struct Fault {
    method: String,
    prefix: String,
    status: u16,
    delay: Option<Duration>,
    remaining: usize,
}

struct State {
    rv: u64,
    next_uid: u64,
    next_ip: u32,
    types: Vec<ResourceType>,
    objects: BTreeMap<Key, Stored>,
    events: Vec<WatchEvent>,
    requests: Vec<String>,
    faults: Vec<Fault>,
    ctl: controller::CtlState,
    notify: tokio::sync::watch::Sender<u64>,
    port: u16,
    /// Controller writes skip validation and admission.
    skip_validation: bool,
}

struct Shared {
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The running double. Dropping it stops the server.
pub struct KubeDouble {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
    ticker: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for KubeDouble {
    fn drop(&mut self) {
        self.server.abort();
        if let Some(t) = self.ticker.lock().unwrap_or_else(|e| e.into_inner()).take() {
            t.abort();
        }
    }
}

/// group, version, kind, plural, namespaced, status subresource, generation, short names
type BuiltinRow = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    bool,
    bool,
    &'static [&'static str],
);

fn builtin_types() -> Vec<ResourceType> {
    let t: &[BuiltinRow] = &[
        (
            "",
            "v1",
            "Namespace",
            "namespaces",
            false,
            true,
            false,
            &["ns"],
        ),
        (
            "",
            "v1",
            "ServiceAccount",
            "serviceaccounts",
            true,
            false,
            false,
            &["sa"],
        ),
        (
            "",
            "v1",
            "ConfigMap",
            "configmaps",
            true,
            false,
            false,
            &["cm"],
        ),
        ("", "v1", "Secret", "secrets", true, false, false, &[]),
        ("", "v1", "Service", "services", true, true, false, &["svc"]),
        (
            "",
            "v1",
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            true,
            true,
            false,
            &["pvc"],
        ),
        (
            "",
            "v1",
            "PersistentVolume",
            "persistentvolumes",
            false,
            true,
            false,
            &["pv"],
        ),
        ("", "v1", "Pod", "pods", true, true, false, &["po"]),
        ("", "v1", "Node", "nodes", false, true, false, &["no"]),
        ("", "v1", "Event", "events", true, false, false, &["ev"]),
        (
            "storage.k8s.io",
            "v1",
            "StorageClass",
            "storageclasses",
            false,
            false,
            false,
            &["sc"],
        ),
        (
            "apps",
            "v1",
            "StatefulSet",
            "statefulsets",
            true,
            true,
            true,
            &["sts"],
        ),
        (
            "policy",
            "v1",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
            true,
            true,
            true,
            &["pdb"],
        ),
        (
            "coordination.k8s.io",
            "v1",
            "Lease",
            "leases",
            true,
            false,
            false,
            &[],
        ),
        (
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
            true,
            true,
            &["crd", "crds"],
        ),
    ];
    t.iter()
        .map(|(g, v, k, p, ns, st, gen_, sn)| ResourceType {
            group: g.to_string(),
            version: v.to_string(),
            kind: k.to_string(),
            plural: p.to_string(),
            singular: k.to_lowercase(),
            namespaced: *ns,
            short_names: sn.iter().map(|s| s.to_string()).collect(),
            status_sub: *st,
            has_generation: *gen_,
            crd: false,
            schema: match builtin_def(g, v, k) {
                Some(d) => Schema::Builtin(d),
                None => Schema::Untyped,
            },
        })
        .collect()
}

/// The response of a request handled synchronously.
struct Reply {
    code: u16,
    body: Value,
    content_type: &'static str,
    headers: Vec<(&'static str, String)>,
}

impl Reply {
    fn json(code: u16, body: Value) -> Self {
        Reply {
            code,
            body,
            content_type: "application/json",
            headers: Vec::new(),
        }
    }
    fn err(e: ApiError) -> Self {
        let mut r = Reply::json(e.code, e.body);
        if e.code == 429 {
            r.headers.push(("Retry-After", "1".into()));
        }
        r
    }
}

type Query = Vec<(String, String)>;

fn qget<'a>(q: &'a Query, k: &str) -> Option<&'a str> {
    q.iter()
        .rev()
        .find(|(a, _)| a == k)
        .map(|(_, v)| v.as_str())
}

fn truthy(v: Option<&str>) -> bool {
    matches!(v, Some("1" | "true" | "True"))
}

/// Response body: whole, or a stream of watch lines.
pub enum RespBody {
    Full(Option<Bytes>),
    Stream(tokio::sync::mpsc::Receiver<Bytes>),
}

impl Body for RespBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            RespBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            RespBody::Stream(rx) => rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b)))),
        }
    }
    fn is_end_stream(&self) -> bool {
        matches!(self, RespBody::Full(None))
    }
    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            RespBody::Full(Some(b)) => hyper::body::SizeHint::with_exact(b.len() as u64),
            RespBody::Full(None) => hyper::body::SizeHint::with_exact(0),
            RespBody::Stream(_) => hyper::body::SizeHint::default(),
        }
    }
}

fn http_response(r: Reply) -> Response<RespBody> {
    let bytes = match &r.body {
        Value::String(s) if r.content_type.starts_with("text/") => s.clone().into_bytes(),
        v => {
            let mut b = serde_json::to_vec(v).unwrap_or_default();
            b.push(b'\n');
            b
        }
    };
    let mut builder = Response::builder()
        .status(r.code)
        .header("Content-Type", r.content_type)
        .header("Cache-Control", "no-cache, private");
    for (k, v) in &r.headers {
        builder = builder.header(*k, v.as_str());
    }
    builder
        .body(RespBody::Full(Some(Bytes::from(bytes))))
        .unwrap_or_else(|_| Response::new(RespBody::Full(None)))
}

impl KubeDouble {
    /// Binds 127.0.0.1:0 and serves on the current tokio runtime.
    pub async fn start() -> KubeDouble {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0 for the Kubernetes API double");
        let addr = listener.local_addr().expect("local address");
        let (notify, _) = tokio::sync::watch::channel(0u64);
        let mut state = State {
            rv: 100,
            next_uid: 1,
            next_ip: 10,
            types: builtin_types(),
            objects: BTreeMap::new(),
            events: Vec::new(),
            requests: Vec::new(),
            faults: Vec::new(),
            ctl: controller::CtlState::default(),
            notify,
            port: addr.port(),
            skip_validation: false,
        };
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let _ = state.seed(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
                "kube-apiserver",
            );
        }
        state.requests.clear();
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
        });
        let s2 = shared.clone();
        let server = tokio::spawn(async move {
            loop {
                let (stream, _) = match listener.accept().await {
                    Ok(c) => c,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let shared = s2.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| handle(shared.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        KubeDouble {
            shared,
            addr,
            server,
            ticker: Mutex::new(None),
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests served (including injected failures).
    pub fn request_count(&self) -> usize {
        self.shared.lock().requests.len()
    }

    /// `METHOD /path?decoded-query`, in order.
    pub fn requests(&self) -> Vec<String> {
        self.shared.lock().requests.clone()
    }

    pub fn reset_requests(&self) {
        self.shared.lock().requests.clear();
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().rv
    }

    /// Puts an object in the store as if another client had created it
    /// (field manager `kubectl-create`, operation Update, unless the object
    /// carries `metadata.managedFields`). `status` given is kept. Replaces an
    /// existing object of the same name. Returns the stored object.
    pub fn seed(&self, obj: Value) -> Value {
        self.seed_as("kubectl-create", obj)
    }

    pub fn seed_as(&self, manager: &str, obj: Value) -> Value {
        match self.shared.lock().seed(obj, manager) {
            Ok(v) => v,
            Err(e) => panic!("seed failed: {}", e.body),
        }
    }

    /// Server-side apply from inside the test (as another field manager).
    pub fn apply_as(&self, manager: &str, obj: Value, force: bool) -> Result<Value, ApiError> {
        let mut st = self.shared.lock();
        let (ti, key) = st.locate(&obj)?;
        st.ssa(ti, key, obj, manager, force, false).map(|(_, v)| v)
    }

    /// The stored object, rendered as GET returns it.
    pub fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let st = self.shared.lock();
        let ti = st.type_by_gvk(api_version, kind)?;
        let rt = &st.types[ti];
        let key = (
            rt.group.clone(),
            rt.plural.clone(),
            namespace.unwrap_or("").to_string(),
            name.to_string(),
        );
        st.objects.get(&key).map(|s| st.render(ti, s))
    }

    /// All stored objects of a kind (optionally in one namespace).
    pub fn list(&self, api_version: &str, kind: &str, namespace: Option<&str>) -> Vec<Value> {
        let st = self.shared.lock();
        let Some(ti) = st.type_by_gvk(api_version, kind) else {
            return vec![];
        };
        let rt = &st.types[ti];
        st.objects
            .iter()
            .filter(|(k, _)| {
                k.0 == rt.group && k.1 == rt.plural && namespace.is_none_or(|n| k.2 == n)
            })
            .map(|(_, s)| st.render(ti, s))
            .collect()
    }

    /// Deletes an object directly (no cascading). Returns whether it existed.
    pub fn remove(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> bool {
        let mut st = self.shared.lock();
        let Some(ti) = st.type_by_gvk(api_version, kind) else {
            return false;
        };
        let rt = &st.types[ti];
        let key = (
            rt.group.clone(),
            rt.plural.clone(),
            namespace.unwrap_or("").to_string(),
            name.to_string(),
        );
        st.delete_now(ti, &key).is_some()
    }

    /// Makes a CRD's kind served. Its schema (for strict validation, list
    /// types and defaulting) is read from `tests/schemas/crds/<group>_<plural>.yaml`
    /// when that file exists.
    pub fn install_crd(
        &self,
        group: &str,
        version: &str,
        kind: &str,
        plural: &str,
        namespaced: bool,
    ) {
        self.shared
            .lock()
            .install_crd(group, version, kind, plural, namespaced);
    }

    /// Velero Schedule (velero.io/v1) and ESO SecretStore / ExternalSecret
    /// (external-secrets.io/v1).
    pub fn install_stateplan_crds(&self) {
        self.install_crd("velero.io", "v1", "Schedule", "schedules", true);
        self.install_crd(
            "external-secrets.io",
            "v1",
            "SecretStore",
            "secretstores",
            true,
        );
        self.install_crd(
            "external-secrets.io",
            "v1",
            "ExternalSecret",
            "externalsecrets",
            true,
        );
    }

    /// The next `n` requests with this method (`"*"` = any) whose path starts
    /// with `path_prefix` fail with `status` (a real `Status` body; 429 also
    /// sends `Retry-After: 1`).
    pub fn fail_next(&self, method: &str, path_prefix: &str, status: u16, n: usize) {
        self.shared.lock().faults.push(Fault {
            method: method.to_uppercase(),
            prefix: path_prefix.to_string(),
            status,
            delay: None,
            remaining: n,
        });
    }

    /// The next `n` matching requests are answered only after `delay`
    /// (client-side timeouts).
    pub fn delay_next(&self, method: &str, path_prefix: &str, delay: Duration, n: usize) {
        self.shared.lock().faults.push(Fault {
            method: method.to_uppercase(),
            prefix: path_prefix.to_string(),
            status: 0,
            delay: Some(delay),
            remaining: n,
        });
    }

    /// One controller pass: StatefulSet pods/PVCs/status, PVC binding and
    /// resize, ExternalSecret/SecretStore status, PDB status. Returns whether
    /// anything changed.
    pub fn tick(&self) -> bool {
        self.shared.lock().tick()
    }

    /// Ticks until nothing changes (at most `max` passes); returns passes run.
    pub fn settle(&self, max: usize) -> usize {
        let mut n = 0;
        while n < max && self.tick() {
            n += 1;
        }
        n
    }

    /// Runs the controller on a timer (`Some(interval)`), or stops it (`None`).
    /// Must be called inside a tokio runtime.
    pub fn set_controller(&self, interval: Option<Duration>) {
        let mut t = self.ticker.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = t.take() {
            old.abort();
        }
        if let Some(every) = interval {
            let shared = self.shared.clone();
            *t = Some(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    shared.lock().tick();
                }
            }));
        }
    }

    /// Makes pod `<ns>/<name>` fail (now or when the controller creates it);
    /// `None` clears the fault.
    pub fn set_pod_fault(&self, namespace: &str, pod: &str, fault: Option<PodFault>) {
        let mut st = self.shared.lock();
        let k = (namespace.to_string(), pod.to_string());
        match fault {
            Some(f) => st.ctl.pod_faults.insert(k, f),
            None => st.ctl.pod_faults.remove(&k),
        };
    }

    /// Keeps PVC `<ns>/<name>` Pending with a `ProvisioningFailed` event
    /// carrying `message`; `None` lets it bind.
    pub fn set_pvc_pending(&self, namespace: &str, pvc: &str, message: Option<&str>) {
        let mut st = self.shared.lock();
        let k = (namespace.to_string(), pvc.to_string());
        match message {
            Some(m) => st.ctl.pvc_faults.insert(k, m.to_string()),
            None => st.ctl.pvc_faults.remove(&k),
        };
    }

    /// Makes ExternalSecret `<ns>/<name>` report Ready=False with `message`
    /// (`None`: Ready=True, the default).
    pub fn set_external_secret_failure(&self, namespace: &str, name: &str, message: Option<&str>) {
        let mut st = self.shared.lock();
        let k = (namespace.to_string(), name.to_string());
        match message {
            Some(m) => st.ctl.es_faults.insert(k, m.to_string()),
            None => st.ctl.es_faults.remove(&k),
        };
    }
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<RespBody>, Infallible> {
    use http_body_util::BodyExt;
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let has_query = req.uri().query().is_some();
    let raw_query = req.uri().query().unwrap_or("").to_string();
    let header = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (ct, accept, ua) = (
        header("content-type"),
        header("accept"),
        header("user-agent"),
    );
    let fault = {
        let mut st = shared.lock();
        let line = if !has_query {
            format!("{method} {path}")
        } else {
            format!("{method} {path}?{}", percent_decode(&raw_query))
        };
        st.requests.push(line);
        st.take_fault(&method, &path)
    };
    if let Some((status, delay)) = fault {
        match delay {
            Some(d) => tokio::time::sleep(d).await,
            None => return Ok(http_response(Reply::err(ApiError::injected(status)))),
        }
    }
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return Ok(http_response(Reply::err(ApiError::bad_request(format!(
                "unable to read request body: {e}"
            )))));
        }
    };
    let q = parse_query(&raw_query);
    if method == "GET" && truthy(qget(&q, "watch")) {
        return Ok(watch(shared, &path, &q));
    }
    let reply = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        shared
            .lock()
            .dispatch(&method, &path, &q, &ct, &accept, &ua, &body)
    }))
    .unwrap_or_else(|_| Reply::err(ApiError::internal("kube double: handler panicked")));
    Ok(http_response(reply))
}

/// A parsed resource URL.
struct Target {
    ti: usize,
    ns: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

impl State {
    fn take_fault(&mut self, method: &str, path: &str) -> Option<(u16, Option<Duration>)> {
        let f = self.faults.iter_mut().find(|f| {
            f.remaining > 0
                && (f.method == "*" || f.method == method)
                && path.starts_with(&f.prefix)
        })?;
        f.remaining -= 1;
        let out = (f.status, f.delay);
        self.faults.retain(|f| f.remaining > 0);
        Some(out)
    }

    fn now(&self) -> String {
        rfc3339(now_secs())
    }

    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn type_idx(&self, group: &str, version: &str, plural: &str) -> Option<usize> {
        self.types
            .iter()
            .position(|t| t.group == group && t.version == version && t.plural == plural)
    }

    fn type_by_gvk(&self, api_version: &str, kind: &str) -> Option<usize> {
        let (g, v) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        self.types
            .iter()
            .position(|t| t.group == g && t.version == v && t.kind == kind)
    }

    fn type_of_plural(&self, group: &str, plural: &str) -> Option<usize> {
        self.types
            .iter()
            .position(|t| t.group == group && t.plural == plural)
    }

    /// The type and key of a whole object (apiVersion, kind, metadata).
    fn locate(&self, obj: &Value) -> Result<(usize, Key), ApiError> {
        let av = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
        let ti = self.type_by_gvk(av, kind).ok_or_else(|| {
            ApiError::bad_request(format!("no kind {kind:?} is registered for version {av:?}"))
        })?;
        let rt = &self.types[ti];
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let ns = if rt.namespaced {
            obj.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("default")
                .to_string()
        } else {
            String::new()
        };
        Ok((ti, (rt.group.clone(), rt.plural.clone(), ns, name)))
    }

    /// The object as the server returns it (kind/apiVersion, managedFields).
    fn render(&self, ti: usize, s: &Stored) -> Value {
        let rt = &self.types[ti];
        let mut obj = s.obj.clone();
        if let Value::Object(m) = &mut obj {
            m.insert("kind".into(), json!(rt.kind));
            m.insert("apiVersion".into(), json!(rt.api_version()));
        }
        let mut managed: Vec<&Managed> =
            s.managed.iter().filter(|m| !m.fields.is_empty()).collect();
        managed.sort_by(|a, b| {
            a.operation
                .cmp(&b.operation)
                .then(a.time.cmp(&b.time))
                .then(a.manager.cmp(&b.manager))
                .then(a.subresource.cmp(&b.subresource))
        });
        if !managed.is_empty() {
            let entries: Vec<Value> = managed
                .iter()
                .map(|m| {
                    let mut e = Map::new();
                    e.insert("manager".into(), json!(m.manager));
                    e.insert("operation".into(), json!(m.operation));
                    e.insert("apiVersion".into(), json!(m.api_version));
                    e.insert("time".into(), json!(m.time));
                    e.insert("fieldsType".into(), json!("FieldsV1"));
                    e.insert("fieldsV1".into(), to_fields_v1(&m.fields));
                    if let Some(sub) = &m.subresource {
                        e.insert("subresource".into(), json!(sub));
                    }
                    Value::Object(e)
                })
                .collect();
            if let Some(Value::Object(meta)) = obj.get_mut("metadata") {
                meta.insert("managedFields".into(), Value::Array(entries));
            }
        }
        if let Some(meta) = obj.get_mut("metadata") {
            util::reorder(
                meta,
                &[
                    "name",
                    "generateName",
                    "namespace",
                    "uid",
                    "resourceVersion",
                    "generation",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "labels",
                    "annotations",
                    "ownerReferences",
                    "finalizers",
                    "managedFields",
                ],
            );
        }
        if rt.crd {
            util::reorder(&mut obj, &["apiVersion", "kind", "metadata"]);
        } else {
            util::reorder(&mut obj, &["kind", "apiVersion", "metadata"]);
        }
        obj
    }

    fn emit(&mut self, ti: usize, key: &Key, ty: &'static str, object: Value, rv: u64) {
        let rt = &self.types[ti];
        self.events.push(WatchEvent {
            rv,
            group: rt.group.clone(),
            plural: rt.plural.clone(),
            ns: key.2.clone(),
            ty,
            object,
        });
        self.notify.send_replace(rv);
    }

    fn storage_class(&self, name: &str) -> Option<Value> {
        self.objects
            .get(&(
                "storage.k8s.io".to_string(),
                "storageclasses".to_string(),
                String::new(),
                name.to_string(),
            ))
            .map(|s| s.obj.clone())
    }

    fn namespace_exists(&self, ns: &str) -> bool {
        self.objects.contains_key(&(
            String::new(),
            "namespaces".to_string(),
            String::new(),
            ns.to_string(),
        ))
    }

    fn scope(&self, ti: usize, status_write: bool) -> Scope {
        let rt = &self.types[ti];
        if status_write {
            Scope {
                status: true,
                main: false,
            }
        } else {
            Scope {
                status: !rt.status_sub,
                main: true,
            }
        }
    }

    /// Defaults (built-in and CRD structural).
    fn default_obj(&mut self, ti: usize, obj: &mut Value) {
        let (group, kind) = (self.types[ti].group.clone(), self.types[ti].kind.clone());
        let mut next_ip = self.next_ip;
        defaults::apply(&group, &kind, obj, &mut || {
            next_ip += 1;
            format!("10.0.{}.{}", next_ip / 250, next_ip % 250 + 1)
        });
        self.next_ip = next_ip;
        if self.types[ti].crd {
            let schema = self.types[ti].schema.clone();
            crd_defaults(schema.root(), obj);
        }
    }

    /// Ownership for a non-apply write by `manager`: fields that changed move
    /// to it.
    fn update_managed(
        &self,
        ti: usize,
        managed: &mut Vec<Managed>,
        old: Option<&Value>,
        new: &Value,
        manager: &str,
        sub: Option<&str>,
    ) {
        let rt = &self.types[ti];
        let scope = self.scope(ti, sub == Some("status"));
        let root = rt.schema.root();
        let new_set = collect(new, root, &scope);
        let changed: FieldSet = new_set
            .into_iter()
            .filter(|p| match old {
                None => true,
                Some(o) => {
                    let membership =
                        matches!(p.last(), Some(fieldset::PE::K(_) | fieldset::PE::V(_)));
                    if membership {
                        get(o, p).is_none()
                    } else {
                        get(o, p) != get(new, p)
                    }
                }
            })
            .collect();
        if !changed.is_empty() {
            for m in managed.iter_mut() {
                if !m.same_id(manager, "Update", sub) {
                    m.fields.retain(|p| !changed.contains(p));
                }
            }
            let now = self.now();
            match managed
                .iter_mut()
                .find(|m| m.same_id(manager, "Update", sub))
            {
                Some(m) => {
                    m.fields.extend(changed);
                    m.time = now;
                }
                None => managed.push(Managed {
                    manager: manager.to_string(),
                    operation: "Update".into(),
                    api_version: rt.api_version(),
                    time: now,
                    subresource: sub.map(String::from),
                    fields: changed,
                }),
            }
        }
        prune_managed(managed, new);
    }

    /// Stores `new` (after validation) unless it equals `old`; bumps
    /// resourceVersion/generation; emits the watch event. Returns the rendered
    /// object.
    #[allow(clippy::too_many_arguments)]
    fn commit(
        &mut self,
        ti: usize,
        key: Key,
        mut new: Stored,
        old: Option<&Stored>,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let rt = self.types[ti].clone();
        match old {
            Some(old) => {
                if !self.skip_validation {
                    validate::on_update(&rt.group, &rt.kind, &old.obj, &new.obj, &|n| {
                        self.storage_class(n)
                    })?;
                }
                if new.obj == old.obj && new.managed == old.managed {
                    return Ok(self.render(ti, old));
                }
                if rt.has_generation && strip_meta_status(&old.obj) != strip_meta_status(&new.obj) {
                    let g = old
                        .obj
                        .pointer("/metadata/generation")
                        .and_then(Value::as_i64)
                        .unwrap_or(1);
                    new.obj["metadata"]["generation"] = json!(g + 1);
                }
                if dry_run {
                    return Ok(self.render(ti, &new));
                }
                let rv = self.next_rv();
                new.obj["metadata"]["resourceVersion"] = json!(rv.to_string());
                let rendered = self.render(ti, &new);
                self.objects.insert(key.clone(), new);
                self.emit(ti, &key, "MODIFIED", rendered.clone(), rv);
                Ok(rendered)
            }
            None => {
                validate::on_create(&rt.group, &rt.kind, &new.obj)?;
                if rt.namespaced && !self.namespace_exists(&key.2) {
                    return Err(ApiError::namespace_not_found(&key.2));
                }
                self.next_uid += 1;
                let uid = util::uid(self.next_uid);
                let now = self.now();
                if let Some(Value::Object(meta)) = new.obj.get_mut("metadata") {
                    meta.insert("uid".into(), json!(uid));
                    meta.insert("creationTimestamp".into(), json!(now));
                    if rt.has_generation {
                        meta.insert("generation".into(), json!(1));
                    }
                }
                if dry_run {
                    return Ok(self.render(ti, &new));
                }
                let rv = self.next_rv();
                new.obj["metadata"]["resourceVersion"] = json!(rv.to_string());
                let rendered = self.render(ti, &new);
                self.objects.insert(key.clone(), new);
                self.emit(ti, &key, "ADDED", rendered.clone(), rv);
                Ok(rendered)
            }
        }
    }

    /// A fresh object's metadata for `key` from a request body's metadata.
    fn fresh_metadata(&self, ti: usize, key: &Key, body: &Value) -> Map<String, Value> {
        let mut meta = Map::new();
        meta.insert("name".into(), json!(key.3));
        if self.types[ti].namespaced {
            meta.insert("namespace".into(), json!(key.2));
        }
        if let Some(Value::Object(bm)) = body.get("metadata") {
            for (k, v) in bm {
                if matches!(
                    k.as_str(),
                    "labels" | "annotations" | "finalizers" | "ownerReferences" | "generateName"
                ) {
                    meta.insert(k.clone(), v.clone());
                }
            }
        }
        meta
    }

    /// Server-side apply.
    fn ssa(
        &mut self,
        ti: usize,
        key: Key,
        applied: Value,
        manager: &str,
        force: bool,
        dry_run: bool,
    ) -> Result<(u16, Value), ApiError> {
        let rt = self.types[ti].clone();
        let root = rt.schema.root();
        let errs = typed_errors(root, &applied);
        if !errs.is_empty() {
            let who = if key.2.is_empty() {
                key.3.clone()
            } else {
                format!("{}/{}", key.2, key.3)
            };
            return Err(ApiError::internal(format!(
                "failed to create typed patch object ({who}; {}): {}",
                rt.gvk_string(),
                errs.join("\n")
            )));
        }
        let mut applied = applied;
        let mut precondition_rv = None;
        if let Some(Value::Object(meta)) = applied.get_mut("metadata") {
            precondition_rv = meta
                .get("resourceVersion")
                .and_then(Value::as_str)
                .map(String::from);
            for f in [
                "managedFields",
                "uid",
                "creationTimestamp",
                "generation",
                "resourceVersion",
                "selfLink",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
            ] {
                meta.shift_remove(f);
            }
        }
        if rt.status_sub
            && let Value::Object(m) = &mut applied
        {
            m.shift_remove("status");
        }
        let aset = collect(&applied, root, &self.scope(ti, false));
        let now = self.now();
        let old = self.objects.get(&key).cloned();
        let Some(old) = old else {
            if precondition_rv.is_some() {
                return Err(ApiError::not_found(&rt.group, &rt.plural, &key.3));
            }
            let mut obj = applied.clone();
            if let Value::Object(m) = &mut obj {
                m.shift_remove("kind");
                m.shift_remove("apiVersion");
                let meta = self.fresh_metadata(ti, &key, &applied);
                m.insert("metadata".into(), Value::Object(meta));
                if rt.status_sub {
                    m.shift_remove("status");
                }
            }
            self.default_obj(ti, &mut obj);
            let aset: FieldSet = aset
                .into_iter()
                .filter(|p| get(&obj, p).is_some())
                .collect();
            let managed = if aset.is_empty() {
                vec![]
            } else {
                vec![Managed {
                    manager: manager.into(),
                    operation: "Apply".into(),
                    api_version: rt.api_version(),
                    time: now,
                    subresource: None,
                    fields: aset,
                }]
            };
            let v = self.commit(ti, key, Stored { obj, managed }, None, dry_run)?;
            return Ok((201, v));
        };
        if let Some(p) = precondition_rv
            && old
                .obj
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                != Some(p.as_str())
        {
            return Err(ApiError::modified(&rt.group, &rt.plural, &key.3));
        }
        // Conflicts with other managers.
        let mut conflicts: Vec<(usize, fieldset::Path)> = Vec::new();
        for (i, m) in old.managed.iter().enumerate() {
            if m.same_id(manager, "Apply", None) {
                continue;
            }
            for p in aset.intersection(&m.fields) {
                if matches!(p.last(), Some(fieldset::PE::K(_) | fieldset::PE::V(_))) {
                    continue;
                }
                let lv = get(&old.obj, p);
                if lv.is_some() && lv != get(&applied, p) {
                    conflicts.push((i, p.clone()));
                }
            }
        }
        let mut managed = old.managed.clone();
        if !conflicts.is_empty() {
            if !force {
                return Err(conflict_error(&old.managed, &conflicts));
            }
            for (i, p) in &conflicts {
                managed[*i].fields.remove(p);
            }
        }
        let mut merged = fieldset::merge(&old.obj, &applied, root, true);
        if let Value::Object(m) = &mut merged {
            m.shift_remove("kind");
            m.shift_remove("apiVersion");
            if let Some(meta) = old.obj.get("metadata") {
                let mut meta = meta.clone();
                let merged_meta = m.get("metadata").cloned().unwrap_or(Value::Null);
                for f in ["labels", "annotations", "finalizers", "ownerReferences"] {
                    if let Some(v) = merged_meta.get(f) {
                        meta[f] = v.clone();
                    }
                }
                m.insert("metadata".into(), meta);
            }
            if rt.status_sub {
                match old.obj.get("status") {
                    Some(s) => {
                        m.insert("status".into(), s.clone());
                    }
                    None => {
                        m.shift_remove("status");
                    }
                }
            }
        }
        // Fields this manager dropped, owned by nobody else, are removed.
        let prev = managed
            .iter()
            .find(|m| m.same_id(manager, "Apply", None))
            .map(|m| m.fields.clone())
            .unwrap_or_default();
        let mut dropped: Vec<&fieldset::Path> = prev.difference(&aset).collect();
        dropped.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in dropped {
            let others = managed
                .iter()
                .filter(|m| !m.same_id(manager, "Apply", None));
            let mut owned = false;
            for m in others {
                if has_descendant_or_self(&m.fields, p) || has_ancestor(&m.fields, p) {
                    owned = true;
                    break;
                }
            }
            if !owned {
                remove(&mut merged, p);
            }
        }
        if rt.group.is_empty() && rt.kind == "Service" {
            keep_cluster_ip(&old.obj, &mut merged);
        }
        self.default_obj(ti, &mut merged);
        // Write-only inputs (Secret stringData) leave nothing to own.
        let aset: FieldSet = aset
            .into_iter()
            .filter(|p| get(&merged, p).is_some())
            .collect();
        match managed
            .iter_mut()
            .find(|m| m.same_id(manager, "Apply", None))
        {
            Some(m) => {
                if m.fields != aset {
                    m.fields = aset;
                    m.time = now;
                }
            }
            None => managed.push(Managed {
                manager: manager.into(),
                operation: "Apply".into(),
                api_version: rt.api_version(),
                time: now,
                subresource: None,
                fields: aset,
            }),
        }
        prune_managed(&mut managed, &merged);
        let v = self.commit(
            ti,
            key,
            Stored {
                obj: merged,
                managed,
            },
            Some(&old),
            dry_run,
        )?;
        Ok((200, v))
    }

    /// Creates (POST) an object.
    fn create(
        &mut self,
        ti: usize,
        ns: Option<&str>,
        mut body: Value,
        manager: &str,
        dry_run: bool,
    ) -> Result<(u16, Value), ApiError> {
        let rt = self.types[ti].clone();
        check_kind(&rt, &body)?;
        let mut name = body
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if name.is_empty() {
            match body
                .pointer("/metadata/generateName")
                .and_then(Value::as_str)
            {
                Some(g) => {
                    self.next_uid += 1;
                    name = format!(
                        "{g}{}",
                        &format!("{:x}", util::fnv(&self.next_uid.to_le_bytes()))[..5]
                    );
                }
                None => {
                    return Err(ApiError::invalid(
                        &rt.kind,
                        &rt.group,
                        "",
                        vec![util::FieldError::required(
                            "metadata.name",
                            "name or generateName is required",
                        )],
                    ));
                }
            }
        }
        if let (Some(ns), Some(bns)) = (
            ns,
            body.pointer("/metadata/namespace").and_then(Value::as_str),
        ) && ns != bns
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let key = (
            rt.group.clone(),
            rt.plural.clone(),
            ns.unwrap_or("").to_string(),
            name.clone(),
        );
        if self.objects.contains_key(&key) {
            return Err(ApiError::already_exists(&rt.group, &rt.plural, &name));
        }
        let status = if rt.status_sub {
            None
        } else {
            body.get("status").cloned()
        };
        let meta = self.fresh_metadata(ti, &key, &body);
        if let Value::Object(m) = &mut body {
            m.shift_remove("kind");
            m.shift_remove("apiVersion");
            m.shift_remove("status");
            m.insert("metadata".into(), Value::Object(meta));
            if let Some(s) = status {
                m.insert("status".into(), s);
            }
        }
        self.default_obj(ti, &mut body);
        let mut managed = Vec::new();
        self.update_managed(ti, &mut managed, None, &body, manager, None);
        let v = self.commit(ti, key, Stored { obj: body, managed }, None, dry_run)?;
        Ok((201, v))
    }

    /// PUT / non-apply PATCH: `new` is the whole intended object.
    #[allow(clippy::too_many_arguments)]
    fn update(
        &mut self,
        ti: usize,
        key: Key,
        old: Stored,
        new: Value,
        manager: &str,
        sub: Option<&str>,
        dry_run: bool,
    ) -> Result<(u16, Value), ApiError> {
        let rt = self.types[ti].clone();
        let mut obj = new;
        if let Value::Object(m) = &mut obj {
            m.shift_remove("kind");
            m.shift_remove("apiVersion");
            // Server-owned metadata stays.
            let mut meta = old.obj.get("metadata").cloned().unwrap_or(json!({}));
            for f in ["labels", "annotations", "finalizers", "ownerReferences"] {
                match m.get("metadata").and_then(|bm| bm.get(f)) {
                    Some(v) if sub != Some("status") => meta[f] = v.clone(),
                    None if sub != Some("status") => {
                        if let Value::Object(mm) = &mut meta {
                            mm.shift_remove(f);
                        }
                    }
                    _ => {}
                }
            }
            m.insert("metadata".into(), meta);
            if sub == Some("status") {
                // Only status changes through /status.
                let status = m.get("status").cloned();
                let mut base = old.obj.clone();
                match status {
                    Some(s) => base["status"] = s,
                    None => {
                        if let Value::Object(b) = &mut base {
                            b.shift_remove("status");
                        }
                    }
                }
                base["metadata"] = m["metadata"].clone();
                *m = match base {
                    Value::Object(b) => b,
                    _ => Map::new(),
                };
            } else if rt.status_sub {
                match old.obj.get("status") {
                    Some(s) => {
                        m.insert("status".into(), s.clone());
                    }
                    None => {
                        m.shift_remove("status");
                    }
                }
            }
        }
        if rt.group.is_empty() && rt.kind == "Service" {
            keep_cluster_ip(&old.obj, &mut obj);
        }
        self.default_obj(ti, &mut obj);
        let mut managed = old.managed.clone();
        self.update_managed(ti, &mut managed, Some(&old.obj), &obj, manager, sub);
        let v = self.commit(ti, key, Stored { obj, managed }, Some(&old), dry_run)?;
        Ok((200, v))
    }

    /// Deletes immediately, with a DELETED event. Returns the last state.
    fn delete_now(&mut self, ti: usize, key: &Key) -> Option<Value> {
        let stored = self.objects.remove(key)?;
        let rv = self.next_rv();
        let mut rendered = self.render(ti, &stored);
        rendered["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.emit(ti, key, "DELETED", rendered.clone(), rv);
        Some(rendered)
    }

    /// Objects whose ownerReferences name `uid`.
    fn dependents(&self, uid: &str) -> Vec<(usize, Key)> {
        self.objects
            .iter()
            .filter(|(_, s)| {
                s.obj
                    .pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(|refs| {
                        refs.iter()
                            .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid))
                    })
            })
            .filter_map(|(k, _)| self.type_of_plural(&k.0, &k.1).map(|ti| (ti, k.clone())))
            .collect()
    }

    fn delete(
        &mut self,
        ti: usize,
        key: Key,
        q: &Query,
        body: &[u8],
    ) -> Result<(u16, Value), ApiError> {
        let rt = self.types[ti].clone();
        let opts: Value = if body.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?
        };
        let dry_run = qget(q, "dryRun") == Some("All")
            || opts
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|v| v == "All"));
        let policy = qget(q, "propagationPolicy")
            .map(String::from)
            .or_else(|| {
                opts.get("propagationPolicy")
                    .and_then(Value::as_str)
                    .map(String::from)
            })
            .or_else(|| {
                opts.get("orphanDependents")
                    .and_then(Value::as_bool)
                    .filter(|b| *b)
                    .map(|_| "Orphan".to_string())
            })
            .unwrap_or_else(|| "Background".into());
        let Some(stored) = self.objects.get(&key).cloned() else {
            return Err(ApiError::not_found(&rt.group, &rt.plural, &key.3));
        };
        let uid = stored
            .obj
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if let Some(pre) = opts.get("preconditions") {
            if let Some(pu) = pre.get("uid").and_then(Value::as_str)
                && pu != uid
            {
                return Err(ApiError::with_message(
                    409,
                    "Conflict",
                    format!(
                        "Precondition failed: UID in precondition: {pu}, UID in object meta: {uid}"
                    ),
                ));
            }
            if let Some(prv) = pre.get("resourceVersion").and_then(Value::as_str)
                && Some(prv)
                    != stored
                        .obj
                        .pointer("/metadata/resourceVersion")
                        .and_then(Value::as_str)
            {
                return Err(ApiError::modified(&rt.group, &rt.plural, &key.3));
            }
        }
        let orphan = policy == "Orphan";
        let mut shown = self.render(ti, &stored);
        shown["metadata"]["deletionTimestamp"] = json!(self.now());
        shown["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        if orphan {
            let fins = util::at_mut(&mut shown, &["metadata", "finalizers"]);
            if !fins.is_array() {
                *fins = json!([]);
            }
            if let Value::Array(a) = fins {
                a.push(json!("orphan"));
            }
        }
        if let Some(meta) = shown.get_mut("metadata") {
            util::reorder(
                meta,
                &[
                    "name",
                    "generateName",
                    "namespace",
                    "uid",
                    "resourceVersion",
                    "generation",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "labels",
                    "annotations",
                    "ownerReferences",
                    "finalizers",
                    "managedFields",
                ],
            );
        }
        let success = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": {"name": key.3, "group": rt.group, "kind": rt.plural, "uid": uid}
        });
        let returns_object = orphan || rt.kind == "Pod" || rt.kind == "Namespace";
        if dry_run {
            return Ok((200, if returns_object { shown } else { success }));
        }
        if orphan {
            // Finalizer "orphan": visible, then GC strips owner references and deletes.
            let rv = self.next_rv();
            shown["metadata"]["resourceVersion"] = json!(rv.to_string());
            self.emit(ti, &key, "MODIFIED", shown.clone(), rv);
            for (dti, dkey) in self.dependents(&uid) {
                if let Some(mut dep) = self.objects.get(&dkey).cloned() {
                    let old = dep.clone();
                    if let Some(Value::Array(refs)) =
                        dep.obj.pointer_mut("/metadata/ownerReferences")
                    {
                        refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid.as_str()));
                    }
                    if let Some(Value::Object(meta)) = dep.obj.get_mut("metadata")
                        && meta
                            .get("ownerReferences")
                            .and_then(Value::as_array)
                            .is_some_and(Vec::is_empty)
                    {
                        meta.shift_remove("ownerReferences");
                    }
                    let new_obj = dep.obj.clone();
                    self.update_managed(
                        dti,
                        &mut dep.managed,
                        Some(&old.obj),
                        &new_obj,
                        "kube-controller-manager",
                        None,
                    );
                    let _ = self.commit(dti, dkey, dep, Some(&old), false);
                }
            }
            let stored_last = self.objects.remove(&key);
            if stored_last.is_some() {
                let rv = self.next_rv();
                let mut last = shown.clone();
                last["metadata"]["resourceVersion"] = json!(rv.to_string());
                self.emit(ti, &key, "DELETED", last, rv);
            }
            return Ok((200, shown));
        }
        self.delete_now(ti, &key);
        // Background/Foreground: the garbage collector deletes dependents.
        let mut queue = vec![uid];
        while let Some(u) = queue.pop() {
            for (dti, dkey) in self.dependents(&u) {
                if let Some(d) = self.delete_now(dti, &dkey)
                    && let Some(du) = d.pointer("/metadata/uid").and_then(Value::as_str)
                {
                    queue.push(du.to_string());
                }
            }
        }
        if rt.kind == "Namespace" && rt.group.is_empty() {
            let inside: Vec<Key> = self
                .objects
                .keys()
                .filter(|k| k.2 == key.3)
                .cloned()
                .collect();
            for k in inside {
                if let Some(dti) = self.type_of_plural(&k.0, &k.1) {
                    self.delete_now(dti, &k);
                }
            }
        }
        Ok((200, if returns_object { shown } else { success }))
    }

    fn list(&self, ti: usize, ns: Option<&str>, q: &Query) -> Result<Value, ApiError> {
        let rt = &self.types[ti];
        let ls = LabelSelector::parse(qget(q, "labelSelector").unwrap_or(""))
            .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
        let fs = FieldSelector::parse(qget(q, "fieldSelector").unwrap_or(""))
            .map_err(ApiError::bad_request)?;
        let mut items: Vec<Value> = Vec::new();
        for (k, s) in &self.objects {
            if k.0 != rt.group || k.1 != rt.plural || ns.is_some_and(|n| n != k.2) {
                continue;
            }
            if !ls.matches(s.obj.pointer("/metadata/labels")) {
                continue;
            }
            let mut r = self.render(ti, s);
            if !fs.matches(&r) {
                continue;
            }
            if !rt.crd
                && let Value::Object(m) = &mut r
            {
                m.shift_remove("kind");
                m.shift_remove("apiVersion");
            }
            items.push(r);
        }
        let mut meta = Map::new();
        meta.insert("resourceVersion".into(), json!(self.rv.to_string()));
        let offset: usize = qget(q, "continue")
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let limit: usize = qget(q, "limit").and_then(|l| l.parse().ok()).unwrap_or(0);
        let total = items.len();
        let mut items: Vec<Value> = items.into_iter().skip(offset).collect();
        if limit > 0 && items.len() > limit {
            items.truncate(limit);
            meta.insert("continue".into(), json!((offset + limit).to_string()));
            meta.insert("remainingItemCount".into(), json!(total - offset - limit));
        }
        Ok(json!({
            "kind": format!("{}List", rt.kind),
            "apiVersion": rt.api_version(),
            "metadata": meta,
            "items": items,
        }))
    }

    fn install_crd(
        &mut self,
        group: &str,
        version: &str,
        kind: &str,
        plural: &str,
        namespaced: bool,
    ) {
        let file = format!("{}/crds/{group}_{plural}.yaml", schema::schemas_dir());
        let crd = schema::load_crd_file(&file);
        let ver = crd.as_ref().and_then(|c| {
            c.pointer("/spec/versions")
                .and_then(Value::as_array)
                .and_then(|vs| {
                    vs.iter()
                        .find(|v| v.get("name").and_then(Value::as_str) == Some(version))
                })
                .cloned()
        });
        let schema = ver
            .as_ref()
            .and_then(|v| v.pointer("/schema/openAPIV3Schema"))
            .map(|s| Schema::Crd(Arc::new(s.clone())))
            .unwrap_or(Schema::Untyped);
        let status_sub = ver
            .as_ref()
            .is_some_and(|v| v.pointer("/subresources/status").is_some());
        let short_names = crd
            .as_ref()
            .and_then(|c| c.pointer("/spec/names/shortNames"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        self.types
            .retain(|t| !(t.group == group && t.version == version && t.plural == plural));
        self.types.push(ResourceType {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: plural.into(),
            singular: kind.to_lowercase(),
            namespaced,
            short_names,
            status_sub,
            has_generation: true,
            crd: true,
            schema,
        });
        let mut obj = match crd {
            Some(c) => (*c).clone(),
            None => json!({
                "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "spec": {"group": group, "scope": if namespaced {"Namespaced"} else {"Cluster"},
                    "names": {"kind": kind, "plural": plural, "singular": kind.to_lowercase(), "listKind": format!("{kind}List")},
                    "versions": [{"name": version, "served": true, "storage": true,
                        "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
            }),
        };
        obj["metadata"] = json!({"name": format!("{plural}.{group}")});
        obj["status"] = json!({
            "acceptedNames": {"kind": kind, "plural": plural},
            "conditions": [{"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"}],
            "storedVersions": [version]
        });
        let _ = self.seed(obj, "kube-apiserver");
    }

    /// Puts an object in the store (see `KubeDouble::seed`).
    fn seed(&mut self, obj: Value, manager: &str) -> Result<Value, ApiError> {
        let (ti, key) = self.locate(&obj)?;
        let rt = self.types[ti].clone();
        let mut body = obj.clone();
        let given_managed = obj
            .pointer("/metadata/managedFields")
            .and_then(Value::as_array)
            .cloned();
        let meta = self.fresh_metadata(ti, &key, &obj);
        let status = obj.get("status").cloned();
        if let Value::Object(m) = &mut body {
            m.shift_remove("kind");
            m.shift_remove("apiVersion");
            m.insert("metadata".into(), Value::Object(meta));
        }
        self.default_obj(ti, &mut body);
        if let Some(s) = status {
            let merged = fieldset::merge(
                body.get("status").unwrap_or(&Value::Null),
                &s,
                schema::Node(None),
                false,
            );
            body["status"] = merged;
        }
        let managed = match given_managed {
            Some(entries) => entries
                .iter()
                .map(|e| Managed {
                    manager: e
                        .get("manager")
                        .and_then(Value::as_str)
                        .unwrap_or("unknown")
                        .into(),
                    operation: e
                        .get("operation")
                        .and_then(Value::as_str)
                        .unwrap_or("Update")
                        .into(),
                    api_version: e
                        .get("apiVersion")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .into(),
                    time: e.get("time").and_then(Value::as_str).unwrap_or("").into(),
                    subresource: e
                        .get("subresource")
                        .and_then(Value::as_str)
                        .map(String::from),
                    fields: from_fields_v1(e.get("fieldsV1").unwrap_or(&Value::Null)),
                })
                .collect(),
            None => {
                let mut m = Vec::new();
                let scope = Scope {
                    status: true,
                    main: true,
                };
                let fields = collect(&body, rt.schema.root(), &scope);
                m.push(Managed {
                    manager: manager.into(),
                    operation: "Update".into(),
                    api_version: rt.api_version(),
                    time: self.now(),
                    subresource: None,
                    fields,
                });
                m
            }
        };
        if let Some(old) = self.objects.remove(&key) {
            // Keep identity of the replaced object.
            for f in ["uid", "creationTimestamp"] {
                if let Some(v) = old.obj.pointer(&format!("/metadata/{f}")) {
                    body["metadata"][f] = v.clone();
                }
            }
        }
        let ns_ok = !rt.namespaced || self.namespace_exists(&key.2);
        if !ns_ok {
            // Seeding may precede the namespace: create it.
            let _ = self.seed(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": key.2}}),
                manager,
            );
        }
        let uid = body.pointer("/metadata/uid").cloned();
        let created = body.pointer("/metadata/creationTimestamp").cloned();
        let mut v = self.commit(ti, key.clone(), Stored { obj: body, managed }, None, false)?;
        // commit assigned a fresh uid; restore a kept one.
        if let (Some(u), Some(s)) = (uid, self.objects.get_mut(&key)) {
            s.obj["metadata"]["uid"] = u.clone();
            if let Some(c) = created {
                s.obj["metadata"]["creationTimestamp"] = c;
            }
            v["metadata"]["uid"] = u;
        }
        Ok(v)
    }

    #[allow(clippy::too_many_arguments)]
    fn dispatch(
        &mut self,
        method: &str,
        path: &str,
        q: &Query,
        ct: &str,
        accept: &str,
        ua: &str,
        body: &[u8],
    ) -> Reply {
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let aggregated = accept.contains("as=APIGroupDiscoveryList");
        let discovery = |r: Option<Value>| match r {
            Some(v) if method == "GET" => Reply::json(200, v),
            Some(_) => Reply::err(ApiError::method_not_allowed()),
            None => Reply::err(ApiError::unknown_path()),
        };
        match segs.as_slice() {
            ["version"] => discovery(Some(json!({
                "major": "1", "minor": "33", "gitVersion": "v1.33.0+kube-double",
                "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
                "buildDate": "2025-04-23T00:00:00Z", "goVersion": "go1.24.2", "compiler": "gc",
                "platform": "linux/amd64"
            }))),
            ["healthz" | "readyz" | "livez"] => Reply {
                code: 200,
                body: json!("ok"),
                content_type: "text/plain; charset=utf-8",
                headers: vec![],
            },
            ["api"] if aggregated => {
                let mut r = Reply::json(200, self.aggregated(true));
                r.content_type =
                    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
                r
            }
            ["apis"] if aggregated => {
                let mut r = Reply::json(200, self.aggregated(false));
                r.content_type =
                    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
                r
            }
            ["api"] => discovery(Some(json!({
                "kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": format!("127.0.0.1:{}", self.port)}]
            }))),
            ["apis"] => discovery(Some(self.group_list())),
            ["api", "v1"] => discovery(Some(self.resource_list("", "v1"))),
            ["apis", g] => discovery(self.group(g)),
            ["apis", g, v] => {
                let known = self.types.iter().any(|t| t.group == *g && t.version == *v);
                discovery(known.then(|| self.resource_list(g, v)))
            }
            ["api", "v1", rest @ ..] => self.resource(method, "", "v1", rest, q, ct, ua, body),
            ["apis", g, v, rest @ ..] => self.resource(method, g, v, rest, q, ct, ua, body),
            _ => Reply::err(ApiError::unknown_path()),
        }
    }

    fn target(&self, group: &str, version: &str, rest: &[&str]) -> Option<Target> {
        let namespaced_plural = |p: &str| {
            self.type_idx(group, version, p)
                .is_some_and(|ti| self.types[ti].namespaced)
        };
        let (ns, tail) = match rest {
            ["namespaces", ns, plural, ..] if namespaced_plural(plural) => {
                (Some(ns.to_string()), &rest[2..])
            }
            _ => (None, rest),
        };
        let plural = tail.first()?;
        if tail.len() > 3 {
            return None;
        }
        let ti = self.type_idx(group, version, plural)?;
        let rt = &self.types[ti];
        let name = tail.get(1).map(|s| percent_decode(s));
        let sub = tail.get(2).map(|s| s.to_string());
        if !rt.namespaced && ns.is_some() {
            return None;
        }
        if rt.namespaced && ns.is_none() && name.is_some() {
            return None;
        }
        if sub
            .as_deref()
            .is_some_and(|s| s != "status" || !rt.status_sub)
        {
            return None;
        }
        Some(Target { ti, ns, name, sub })
    }

    #[allow(clippy::too_many_arguments)]
    fn resource(
        &mut self,
        method: &str,
        group: &str,
        version: &str,
        rest: &[&str],
        q: &Query,
        ct: &str,
        ua: &str,
        body: &[u8],
    ) -> Reply {
        let Some(t) = self.target(group, version, rest) else {
            return Reply::err(ApiError::unknown_path());
        };
        match self.resource_inner(method, t, q, ct, ua, body) {
            Ok((code, v)) => Reply::json(code, v),
            Err(e) => Reply::err(e),
        }
    }

    fn resource_inner(
        &mut self,
        method: &str,
        t: Target,
        q: &Query,
        ct: &str,
        ua: &str,
        body: &[u8],
    ) -> Result<(u16, Value), ApiError> {
        let rt = self.types[t.ti].clone();
        let dry_run = match qget(q, "dryRun") {
            None | Some("") => false,
            Some("All") => true,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "Invalid dry run value: {other:?}; supported values: \"All\""
                )));
            }
        };
        let manager_q = qget(q, "fieldManager").map(String::from);
        let manager = manager_q.clone().unwrap_or_else(|| {
            let m = ua.split('/').next().unwrap_or("").trim();
            if m.is_empty() {
                "unknown".into()
            } else {
                m.to_string()
            }
        });
        let ns = t.ns.as_deref();
        let Some(name) = t.name.clone() else {
            return match method {
                "GET" => Ok((200, self.list(t.ti, ns, q)?)),
                "POST" if rt.namespaced && ns.is_none() => Err(ApiError::method_not_allowed()),
                "POST" => {
                    let v = parse_body(body)?;
                    self.create(t.ti, ns, v, &manager, dry_run)
                }
                "DELETE" => {
                    let list = self.list(t.ti, ns, q)?;
                    let names: Vec<String> = list["items"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|i| {
                                    i.pointer("/metadata/name")
                                        .and_then(Value::as_str)
                                        .map(String::from)
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    for n in names {
                        let key = (
                            rt.group.clone(),
                            rt.plural.clone(),
                            ns.unwrap_or("").to_string(),
                            n,
                        );
                        if !dry_run {
                            self.delete(t.ti, key, q, body)?;
                        }
                    }
                    Ok((200, list))
                }
                _ => Err(ApiError::method_not_allowed()),
            };
        };
        let key = (
            rt.group.clone(),
            rt.plural.clone(),
            ns.unwrap_or("").to_string(),
            name.clone(),
        );
        let sub = t.sub.as_deref();
        match method {
            "GET" => match self.objects.get(&key) {
                Some(s) => Ok((200, self.render(t.ti, s))),
                None => Err(ApiError::not_found(&rt.group, &rt.plural, &name)),
            },
            "DELETE" if sub.is_none() => self.delete(t.ti, key, q, body),
            "PUT" => {
                let v = parse_body(body)?;
                check_kind(&rt, &v)?;
                check_name(&v, &name, ns)?;
                strict_check(&rt, &v, q)?;
                let Some(old) = self.objects.get(&key).cloned() else {
                    return Err(ApiError::not_found(&rt.group, &rt.plural, &name));
                };
                if let Some(rv) = v
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    && old
                        .obj
                        .pointer("/metadata/resourceVersion")
                        .and_then(Value::as_str)
                        != Some(rv)
                {
                    return Err(ApiError::modified(&rt.group, &rt.plural, &name));
                }
                self.update(t.ti, key, old, v, &manager, sub, dry_run)
            }
            "PATCH" => {
                let ct_base = ct.split(';').next().unwrap_or("").trim();
                match ct_base {
                    "application/apply-patch+yaml" | "application/apply-patch+cbor" => {
                        if sub.is_some() {
                            return Err(ApiError::bad_request(
                                "apply to a subresource is not supported by the double",
                            ));
                        }
                        let Some(mgr) = manager_q else {
                            return Err(ApiError::bad_request(
                                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                            ));
                        };
                        let v = parse_apply_body(body)?;
                        check_kind(&rt, &v)?;
                        check_name(&v, &name, ns)?;
                        let force = truthy(qget(q, "force"));
                        self.ssa(t.ti, key, v, &mgr, force, dry_run)
                    }
                    "application/merge-patch+json"
                    | "application/strategic-merge-patch+json"
                    | "application/json-patch+json" => {
                        let patch = parse_body(body)?;
                        let Some(old) = self.objects.get(&key).cloned() else {
                            return Err(ApiError::not_found(&rt.group, &rt.plural, &name));
                        };
                        let current = self.render(t.ti, &old);
                        let patched = match ct_base {
                            "application/json-patch+json" => json_patch(&current, &patch)?,
                            "application/strategic-merge-patch+json" => {
                                strategic_merge(&current, &patch, rt.schema.root(), true)
                            }
                            _ => merge_patch(&current, &patch),
                        };
                        if let Some(rv) = patch
                            .pointer("/metadata/resourceVersion")
                            .and_then(Value::as_str)
                            && current
                                .pointer("/metadata/resourceVersion")
                                .and_then(Value::as_str)
                                != Some(rv)
                        {
                            return Err(ApiError::modified(&rt.group, &rt.plural, &name));
                        }
                        strict_check(&rt, &patched, q)?;
                        self.update(t.ti, key, old, patched, &manager, sub, dry_run)
                    }
                    other => Err(ApiError::unsupported_media_type(other)),
                }
            }
            _ => Err(ApiError::method_not_allowed()),
        }
    }

    fn group_list(&self) -> Value {
        let mut groups: Vec<Value> = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        for t in &self.types {
            if t.group.is_empty() || seen.contains(&t.group) {
                continue;
            }
            seen.push(t.group.clone());
            if let Some(g) = self.group(&t.group) {
                groups.push(g);
            }
        }
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
    }

    fn group(&self, g: &str) -> Option<Value> {
        let versions: Vec<Value> = self
            .types
            .iter()
            .filter(|t| t.group == g && !g.is_empty())
            .map(|t| t.version.clone())
            .fold(Vec::<String>::new(), |mut a, v| {
                if !a.contains(&v) {
                    a.push(v);
                }
                a
            })
            .into_iter()
            .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
            .collect();
        let first = versions.first()?.clone();
        Some(
            json!({"kind": "APIGroup", "apiVersion": "v1", "name": g, "versions": versions, "preferredVersion": first}),
        )
    }

    fn resource_list(&self, g: &str, v: &str) -> Value {
        let verbs = json!([
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch"
        ]);
        let mut resources = Vec::new();
        for t in self.types.iter().filter(|t| t.group == g && t.version == v) {
            let mut r = json!({
                "name": t.plural, "singularName": t.singular, "namespaced": t.namespaced,
                "kind": t.kind, "verbs": verbs,
            });
            if !t.short_names.is_empty() {
                r["shortNames"] = json!(t.short_names);
            }
            resources.push(r);
            if t.status_sub {
                resources.push(json!({
                    "name": format!("{}/status", t.plural), "singularName": "", "namespaced": t.namespaced,
                    "kind": t.kind, "verbs": ["get", "patch", "update"],
                }));
            }
        }
        let gv = if g.is_empty() {
            v.to_string()
        } else {
            format!("{g}/{v}")
        };
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
    }

    /// Aggregated discovery (apidiscovery.k8s.io/v2).
    fn aggregated(&self, core: bool) -> Value {
        let mut groups: Vec<String> = Vec::new();
        for t in &self.types {
            if t.group.is_empty() == core && !groups.contains(&t.group) {
                groups.push(t.group.clone());
            }
        }
        let items: Vec<Value> = groups
            .iter()
            .map(|g| {
                let mut versions: Vec<String> = Vec::new();
                for t in self.types.iter().filter(|t| &t.group == g) {
                    if !versions.contains(&t.version) {
                        versions.push(t.version.clone());
                    }
                }
                let vs: Vec<Value> = versions
                    .iter()
                    .map(|v| {
                        let resources: Vec<Value> = self
                            .types
                            .iter()
                            .filter(|t| &t.group == g && &t.version == v)
                            .map(|t| {
                                let mut r = json!({
                                    "resource": t.plural,
                                    "responseKind": {"group": t.group, "version": t.version, "kind": t.kind},
                                    "scope": if t.namespaced {"Namespaced"} else {"Cluster"},
                                    "singularResource": t.singular,
                                    "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
                                });
                                if !t.short_names.is_empty() {
                                    r["shortNames"] = json!(t.short_names);
                                }
                                if t.status_sub {
                                    r["subresources"] = json!([{"subresource": "status",
                                        "responseKind": {"group": t.group, "version": t.version, "kind": t.kind},
                                        "verbs": ["get", "patch", "update"]}]);
                                }
                                r
                            })
                            .collect();
                        json!({"version": v, "resources": resources, "freshness": "Current"})
                    })
                    .collect();
                json!({"metadata": {"name": g, "creationTimestamp": null}, "versions": vs})
            })
            .collect();
        json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
    }
}

/// Drops owned paths that no longer exist, and empty entries.
fn prune_managed(managed: &mut Vec<Managed>, obj: &Value) {
    for m in managed.iter_mut() {
        m.fields.retain(|p| get(obj, p).is_some());
    }
    managed.retain(|m| !m.fields.is_empty());
}

fn strip_meta_status(v: &Value) -> Value {
    let mut v = v.clone();
    if let Value::Object(m) = &mut v {
        m.shift_remove("metadata");
        m.shift_remove("status");
    }
    v
}

/// Services keep their allocated clusterIP(s) when an update omits them.
fn keep_cluster_ip(old: &Value, new: &mut Value) {
    for f in ["clusterIP", "clusterIPs"] {
        if new.pointer(&format!("/spec/{f}")).is_none()
            && let Some(v) = old.pointer(&format!("/spec/{f}"))
        {
            new["spec"][f] = v.clone();
        }
    }
}

fn conflict_error(managed: &[Managed], conflicts: &[(usize, fieldset::Path)]) -> ApiError {
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(i, p)| {
            json!({"reason": "FieldManagerConflict", "message": format!("conflict with {}", managed[*i].describe()), "field": path_string(p)})
        })
        .collect();
    let message = if conflicts.len() == 1 {
        let (i, p) = &conflicts[0];
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            managed[*i].describe(),
            path_string(p)
        )
    } else {
        let mut by: Vec<(String, Vec<String>)> = Vec::new();
        for (i, p) in conflicts {
            let d = managed[*i].describe();
            match by.iter_mut().find(|(m, _)| *m == d) {
                Some((_, ps)) => ps.push(path_string(p)),
                None => by.push((d, vec![path_string(p)])),
            }
        }
        by.sort();
        let mut lines = Vec::new();
        for (m, ps) in by {
            lines.push(format!("conflicts with {m}:"));
            for p in ps {
                lines.push(format!("- {p}"));
            }
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    ApiError {
        code: 409,
        body: json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": "Conflict", "details": {"causes": causes}, "code": 409
        }),
    }
}

fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
    })
}

/// Apply bodies are YAML (JSON is YAML).
fn parse_apply_body(body: &[u8]) -> Result<Value, ApiError> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return Ok(v);
    }
    let text = std::str::from_utf8(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
    serde_saphyr::from_str::<Value>(text)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
}

fn check_kind(rt: &ResourceType, v: &Value) -> Result<(), ApiError> {
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request is not a JSON object",
        ));
    }
    let av = v.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
    if kind.is_empty() || av.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Object 'Kind' is missing in '{}'",
            serde_json::to_string(v).unwrap_or_default()
        )));
    }
    if av != rt.api_version() || kind != rt.kind {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({}) or kind {kind} does not match {}",
            rt.api_version(),
            rt.kind
        )));
    }
    Ok(())
}

fn check_name(v: &Value, name: &str, ns: Option<&str>) -> Result<(), ApiError> {
    if let Some(n) = v.pointer("/metadata/name").and_then(Value::as_str)
        && n != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        )));
    }
    if let (Some(ns), Some(bns)) = (ns, v.pointer("/metadata/namespace").and_then(Value::as_str))
        && ns != bns
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

/// `fieldValidation=Strict` on create/update/patch: unknown fields are a 400.
fn strict_check(rt: &ResourceType, v: &Value, q: &Query) -> Result<(), ApiError> {
    if qget(q, "fieldValidation") != Some("Strict") {
        return Ok(());
    }
    let mut body = v.clone();
    if let Some(Value::Object(meta)) = body.get_mut("metadata") {
        meta.shift_remove("managedFields");
    }
    let errs = typed_errors(rt.schema.root(), &body);
    if errs.is_empty() {
        return Ok(());
    }
    let fields: Vec<String> = errs
        .iter()
        .filter_map(|e| e.strip_suffix(": field not declared in schema"))
        .map(|f| format!("unknown field {:?}", f.trim_start_matches('.')))
        .collect();
    Err(ApiError::bad_request(format!(
        "strict decoding error: {}",
        fields.join(", ")
    )))
}

/// RFC 7386 JSON merge patch.
fn merge_patch(target: &Value, patch: &Value) -> Value {
    match patch {
        Value::Object(p) => {
            let mut out = match target {
                Value::Object(t) => t.clone(),
                _ => Map::new(),
            };
            for (k, v) in p {
                if v.is_null() {
                    out.shift_remove(k);
                } else {
                    let merged = merge_patch(out.get(k).unwrap_or(&Value::Null), v);
                    out.insert(k.clone(), merged);
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// Strategic merge patch, approximated: merge patch, with lists that have
/// merge keys merged by key.
fn strategic_merge(target: &Value, patch: &Value, node: schema::Node<'_>, top: bool) -> Value {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            let mut out = t.clone();
            for (k, v) in p {
                if k.starts_with("$") {
                    continue;
                }
                let child = if top {
                    schema::top_field(node, k).unwrap_or(schema::Node(None))
                } else {
                    node.field(k).unwrap_or(schema::Node(None))
                };
                if v.is_null() {
                    out.shift_remove(k);
                } else {
                    let merged =
                        strategic_merge(out.get(k).unwrap_or(&Value::Null), v, child, false);
                    out.insert(k.clone(), merged);
                }
            }
            Value::Object(out)
        }
        (Value::Array(_), Value::Array(_)) => match node.list_type() {
            schema::ListType::Map(_) => fieldset::merge(target, patch, node, false),
            _ => patch.clone(),
        },
        (_, p) => merge_patch(&Value::Null, p),
    }
}

/// RFC 6902 JSON patch (add, remove, replace, test).
fn json_patch(target: &Value, patch: &Value) -> Result<Value, ApiError> {
    let ops = patch
        .as_array()
        .ok_or_else(|| ApiError::bad_request("json patch must be an array of operations"))?;
    let mut doc = target.clone();
    for op in ops {
        let kind = op.get("op").and_then(Value::as_str).unwrap_or("");
        let path = op.get("path").and_then(Value::as_str).unwrap_or("");
        let (parent, last) = match path.rsplit_once('/') {
            Some((p, l)) => (p.to_string(), l.replace("~1", "/").replace("~0", "~")),
            None => {
                return Err(ApiError::bad_request(format!(
                    "invalid json patch path {path:?}"
                )));
            }
        };
        let bad = || {
            ApiError::with_message(
                422,
                "Invalid",
                format!(
                    "the server rejected our request due to an error in our request: json patch {kind} operation does not apply: doc is missing path: {path:?}"
                ),
            )
        };
        match kind {
            "test" => {
                if doc.pointer(path) != op.get("value") {
                    return Err(ApiError::with_message(
                        422,
                        "Invalid",
                        format!(
                            "the server rejected our request due to an error in our request: testing value {path} failed"
                        ),
                    ));
                }
            }
            "remove" => {
                let p = doc.pointer_mut(&parent).ok_or_else(bad)?;
                match p {
                    Value::Object(m) => {
                        m.shift_remove(&last).ok_or_else(bad)?;
                    }
                    Value::Array(a) => {
                        let i: usize = last.parse().map_err(|_| bad())?;
                        if i >= a.len() {
                            return Err(bad());
                        }
                        a.remove(i);
                    }
                    _ => return Err(bad()),
                }
            }
            "add" | "replace" => {
                let value = op.get("value").cloned().unwrap_or(Value::Null);
                let p = doc.pointer_mut(&parent).ok_or_else(bad)?;
                match p {
                    Value::Object(m) => {
                        if kind == "replace" && !m.contains_key(&last) {
                            return Err(bad());
                        }
                        m.insert(last, value);
                    }
                    Value::Array(a) => {
                        if last == "-" {
                            a.push(value);
                        } else {
                            let i: usize = last.parse().map_err(|_| bad())?;
                            if kind == "replace" {
                                *a.get_mut(i).ok_or_else(bad)? = value;
                            } else if i <= a.len() {
                                a.insert(i, value);
                            } else {
                                return Err(bad());
                            }
                        }
                    }
                    _ => return Err(bad()),
                }
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unsupported json patch operation {other:?}"
                )));
            }
        }
    }
    Ok(doc)
}

/// `GET …?watch=1`: a stream of `{"type":…,"object":…}` lines.
fn watch(shared: Arc<Shared>, path: &str, q: &Query) -> Response<RespBody> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (group, version, rest): (&str, &str, &[&str]) = match segs.as_slice() {
        ["api", "v1", rest @ ..] => ("", "v1", rest),
        ["apis", g, v, rest @ ..] => (g, v, rest),
        _ => return http_response(Reply::err(ApiError::unknown_path())),
    };
    let st = shared.lock();
    let Some(t) = st.target(group, version, rest) else {
        return http_response(Reply::err(ApiError::unknown_path()));
    };
    let ls = match LabelSelector::parse(qget(q, "labelSelector").unwrap_or("")) {
        Ok(l) => l,
        Err(e) => return http_response(Reply::err(ApiError::bad_request(e))),
    };
    let mut fs_text = qget(q, "fieldSelector").unwrap_or("").to_string();
    if let Some(n) = &t.name {
        // Watching one object by URL.
        if !fs_text.is_empty() {
            fs_text.push(',');
        }
        fs_text.push_str(&format!("metadata.name={n}"));
    }
    let fs = match FieldSelector::parse(&fs_text) {
        Ok(f) => f,
        Err(e) => return http_response(Reply::err(ApiError::bad_request(e))),
    };
    let timeout = qget(q, "timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(1800);
    let bookmarks = truthy(qget(q, "allowWatchBookmarks"));
    let rt = st.types[t.ti].clone();
    let ns = t.ns.clone();
    let matches = move |ev_ns: &str, obj: &Value| {
        ns.as_deref().is_none_or(|n| n == ev_ns)
            && ls.matches(obj.pointer("/metadata/labels"))
            && fs.matches(obj)
    };
    let start_rv: Option<u64> = qget(q, "resourceVersion")
        .and_then(|s| s.parse().ok())
        .filter(|r| *r > 0);
    let mut initial: Vec<Value> = Vec::new();
    let cursor = match start_rv {
        Some(rv) => rv,
        None => {
            for (k, s) in &st.objects {
                if k.0 == rt.group && k.1 == rt.plural {
                    let r = st.render(t.ti, s);
                    if matches(&k.2, &r) {
                        initial.push(json!({"type": "ADDED", "object": r}));
                    }
                }
            }
            st.rv
        }
    };
    let mut rx = st.notify.subscribe();
    drop(st);
    let (tx, body_rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let line = |v: &Value| {
        let mut b = serde_json::to_vec(v).unwrap_or_default();
        b.push(b'\n');
        Bytes::from(b)
    };
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
        for ev in &initial {
            if tx.send(line(ev)).await.is_err() {
                return;
            }
        }
        let mut cursor = cursor;
        loop {
            let batch: Vec<Value> = {
                let st = shared.lock();
                let out = st
                    .events
                    .iter()
                    .filter(|e| {
                        e.rv > cursor
                            && e.group == rt.group
                            && e.plural == rt.plural
                            && matches(&e.ns, &e.object)
                    })
                    .map(|e| json!({"type": e.ty, "object": e.object}))
                    .collect();
                cursor = st.rv;
                out
            };
            for ev in &batch {
                if tx.send(line(ev)).await.is_err() {
                    return;
                }
            }
            tokio::select! {
                r = rx.changed() => { if r.is_err() { return; } }
                _ = tokio::time::sleep_until(deadline) => {
                    if bookmarks {
                        let bm = json!({"type": "BOOKMARK", "object": {"kind": rt.kind, "apiVersion": rt.api_version(),
                            "metadata": {"resourceVersion": cursor.to_string()}}});
                        let _ = tx.send(line(&bm)).await;
                    }
                    return;
                }
                _ = tx.closed() => return,
            }
        }
    });
    Response::builder()
        .status(200)
        .header("Content-Type", "application/json")
        .header("Cache-Control", "no-cache, private")
        .body(RespBody::Stream(body_rx))
        .unwrap_or_else(|_| Response::new(RespBody::Full(None)))
}
