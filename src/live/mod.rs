//! Stage 4 (Kubernetes half): the live cluster. Client construction from the
//! usual kubeconfig conventions, the kinds stateplan renders and where they
//! are served, CRD presence, and fetching what stateplan owns with as few
//! requests as possible: one LIST per kind (across namespaces when allowed,
//! otherwise one per kind and namespace) with the ownership label selector.

pub mod inventory;
pub mod kinds;
pub mod pools;
mod retry;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use futures::StreamExt;
use kube::api::{Api, DynamicObject, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::Value;

pub use kinds::KindInfo;
pub use retry::{is_retryable, with_retry};

use crate::compile::{LABEL_BLUEPRINT, MANAGED_BY};

/// How many LIST requests run at once.
pub const LIST_CONCURRENCY: usize = 8;

/// Where the cluster is: `--kubeconfig`, `--context`; otherwise `KUBECONFIG`,
/// `~/.kube/config` or the in-cluster service account, as kubectl does.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
}

/// Errors talking to the cluster, worded for the user.
#[derive(Debug)]
pub enum LiveError {
    /// No usable kubeconfig / in-cluster config.
    Config(String),
    /// A request failed.
    Api { what: String, source: kube::Error },
    /// Kinds the blueprint needs are not served (CRDs not installed).
    MissingKinds(Vec<MissingKind>),
    /// Anything else (unexpected response shape, …).
    Other(String),
}

/// A kind the cluster does not serve.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MissingKind {
    pub api_version: String,
    pub kind: String,
    /// Objects of the blueprint that need it.
    pub needed_by: Vec<String>,
    /// What to install.
    pub install: String,
}

impl std::fmt::Display for LiveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LiveError::Config(m) => write!(
                f,
                "cannot find the cluster: {m}\nhelp: set KUBECONFIG, pass --kubeconfig FILE / --context NAME, or run inside a pod with a service account"
            ),
            LiveError::Api { what, source } => write!(f, "{what}: {}", describe(source)),
            LiveError::MissingKinds(list) => {
                writeln!(
                    f,
                    "the cluster does not serve kinds this blueprint needs; nothing was changed:"
                )?;
                for m in list {
                    writeln!(
                        f,
                        "  {} {} (needed by {})",
                        m.api_version,
                        m.kind,
                        m.needed_by.join(", ")
                    )?;
                    write!(f, "    help: {}", m.install)?;
                    writeln!(f)?;
                }
                Ok(())
            }
            LiveError::Other(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for LiveError {}

/// One line for a kube error: the API server's message when there is one.
pub fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => {
            let mut m = format!("{} ({} {})", s.message, s.code, s.reason);
            if s.code == 401 || s.code == 403 {
                m.push_str(
                    "; check your credentials and RBAC (`kubectl auth can-i --list`) for this context",
                );
            }
            m
        }
        kube::Error::HyperError(_) | kube::Error::Service(_) => format!(
            "{e}; cannot reach the API server: check the kubeconfig's server address, your network/VPN and that the cluster is running"
        ),
        other => other.to_string(),
    }
}

/// The HTTP status of an API error, if it is one.
pub fn status_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

/// Builds a client following kubeconfig conventions.
pub async fn connect(target: &Target) -> Result<Client, LiveError> {
    let opts = KubeConfigOptions {
        context: target.context.clone(),
        ..Default::default()
    };
    let config = match &target.kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path)
                .map_err(|e| LiveError::Config(format!("{}: {e}", path.display())))?;
            Config::from_custom_kubeconfig(kc, &opts)
                .await
                .map_err(|e| LiveError::Config(format!("{}: {e}", path.display())))?
        }
        None if target.context.is_some() => Config::from_kubeconfig(&opts)
            .await
            .map_err(|e| LiveError::Config(e.to_string()))?,
        None => Config::infer()
            .await
            .map_err(|e| LiveError::Config(e.to_string()))?,
    };
    Client::try_from(config).map_err(|e| LiveError::Config(e.to_string()))
}

/// `kind/namespace/name` or `kind/name`, as [`crate::render::DesiredObject::key`].
pub fn object_key(kind: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{kind}/{ns}/{name}"),
        None => format!("{kind}/{name}"),
    }
}

/// The key of a live object (kind from the caller: lists omit it per item).
pub fn key_of(kind: &str, obj: &Value) -> Option<String> {
    let name = obj.pointer("/metadata/name")?.as_str()?;
    let ns = obj.pointer("/metadata/namespace").and_then(Value::as_str);
    Some(object_key(kind, ns, name))
}

/// Label selector for what a blueprint owns: namespaced objects carry the
/// blueprint label, shared cluster-scoped ones only `managed-by`.
pub fn owner_selector(info: &KindInfo, blueprint: &str) -> String {
    if info.namespaced {
        format!(
            "{}={},{LABEL_BLUEPRINT}={blueprint}",
            MANAGED_BY.0, MANAGED_BY.1
        )
    } else {
        format!("{}={}", MANAGED_BY.0, MANAGED_BY.1)
    }
}

/// Label selector (`k=v,k=v`) from a workload's `spec.selector.matchLabels`:
/// lists its pods and claims.
pub fn match_labels_selector(workload: &Value) -> String {
    workload
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// Whether a live object carries this blueprint's ownership labels.
pub fn owned_by(obj: &Value, blueprint: &str, namespaced: bool) -> bool {
    let labels = obj.pointer("/metadata/labels");
    let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    label(MANAGED_BY.0) == Some(MANAGED_BY.1)
        && (!namespaced || label(LABEL_BLUEPRINT) == Some(blueprint))
}

/// Checks that every kind in `needed` (kind → object keys) is served. One
/// request (`GET /apis`); core groups are always served.
pub async fn check_kinds(
    client: &Client,
    needed: &BTreeMap<&'static KindInfo, Vec<String>>,
) -> Result<(), LiveError> {
    if needed.keys().all(|k| k.install.is_none()) {
        return Ok(());
    }
    let groups = with_retry(|| client.list_api_groups())
        .await
        .map_err(|source| LiveError::Api {
            what: "discovering API groups".into(),
            source,
        })?;
    let served: BTreeSet<(String, String)> = groups
        .groups
        .iter()
        .flat_map(|g| {
            g.versions
                .iter()
                .map(move |v| (g.name.clone(), v.version.clone()))
        })
        .collect();
    let missing: Vec<MissingKind> = needed
        .iter()
        .filter(|(k, _)| {
            k.install.is_some() && !served.contains(&(k.group.to_string(), k.version.to_string()))
        })
        .map(|(k, objs)| MissingKind {
            api_version: k.api_version(),
            kind: k.kind.to_string(),
            needed_by: objs.clone(),
            install: k.install.unwrap_or_default().to_string(),
        })
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(LiveError::MissingKinds(missing))
    }
}

/// Live objects by key, normalised nowhere (exactly as the server sent them,
/// with `apiVersion`/`kind` filled in).
#[derive(Debug, Default, Clone)]
pub struct LiveObjects {
    pub objects: BTreeMap<String, Value>,
}

/// Lists what `blueprint` owns of each kind in the given namespaces (`None`
/// for cluster-scoped kinds). Namespaced kinds spanning several namespaces
/// are listed across all namespaces in one request; on 403 (namespace-scoped
/// RBAC) it falls back to one LIST per namespace.
pub async fn fetch_owned(
    client: &Client,
    blueprint: &str,
    scopes: &BTreeMap<&'static KindInfo, BTreeSet<String>>,
) -> Result<LiveObjects, LiveError> {
    // (kind, Some(ns)) = one namespace; (kind, None) = all / cluster-scoped.
    let mut lists: Vec<(&'static KindInfo, Option<String>)> = Vec::new();
    for (info, namespaces) in scopes {
        if !info.namespaced || namespaces.len() > 1 {
            lists.push((info, None));
        } else {
            for ns in namespaces {
                lists.push((info, Some(ns.clone())));
            }
        }
    }
    let mut out = LiveObjects::default();
    let results: Vec<_> = futures::stream::iter(lists)
        .map(|(info, ns)| async move {
            let r = list_one(client, info, ns.as_deref(), blueprint).await;
            (info, ns, r)
        })
        .buffer_unordered(LIST_CONCURRENCY)
        .collect()
        .await;
    let mut fallback: Vec<(&'static KindInfo, String)> = Vec::new();
    for (info, ns, r) in results {
        match r {
            Ok(items) => {
                for item in items {
                    if let Some(k) = key_of(info.kind, &item) {
                        out.objects.insert(k, item);
                    }
                }
            }
            Err(e) if ns.is_none() && info.namespaced && status_code(&e) == Some(403) => {
                for n in scopes.get(info).into_iter().flatten() {
                    fallback.push((info, n.clone()));
                }
            }
            Err(source) => {
                return Err(LiveError::Api {
                    what: format!(
                        "listing {}{}",
                        info.plural,
                        ns.map(|n| format!(" in namespace {n}")).unwrap_or_default()
                    ),
                    source,
                });
            }
        }
    }
    let results: Vec<_> = futures::stream::iter(fallback)
        .map(|(info, ns)| async move {
            let r = list_one(client, info, Some(&ns), blueprint).await;
            (info, ns, r)
        })
        .buffer_unordered(LIST_CONCURRENCY)
        .collect()
        .await;
    for (info, ns, r) in results {
        let items = r.map_err(|source| LiveError::Api {
            what: format!("listing {} in namespace {ns}", info.plural),
            source,
        })?;
        for item in items {
            if let Some(k) = key_of(info.kind, &item) {
                out.objects.insert(k, item);
            }
        }
    }
    Ok(out)
}

async fn list_one(
    client: &Client,
    info: &'static KindInfo,
    ns: Option<&str>,
    blueprint: &str,
) -> Result<Vec<Value>, kube::Error> {
    let api = info.api(client, ns);
    let lp = ListParams::default().labels(&owner_selector(info, blueprint));
    let list = with_retry(|| api.list(&lp)).await?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|o| to_value(info, o))
        .collect())
}

/// A `DynamicObject` as JSON with `apiVersion`/`kind` set (lists leave them out).
pub fn to_value(info: &KindInfo, o: DynamicObject) -> Option<Value> {
    let mut v = serde_json::to_value(o).ok()?;
    let map = v.as_object_mut()?;
    map.insert("apiVersion".into(), Value::String(info.api_version()));
    map.insert("kind".into(), Value::String(info.kind.to_string()));
    Some(v)
}

/// GET one object; `None` when it does not exist.
pub async fn get(
    client: &Client,
    info: &'static KindInfo,
    ns: Option<&str>,
    name: &str,
) -> Result<Option<Value>, kube::Error> {
    let api: Api<DynamicObject> = info.api(client, ns);
    let got = with_retry(|| api.get_opt(name)).await?;
    Ok(got.and_then(|o| to_value(info, o)))
}
