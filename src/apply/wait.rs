//! Waiting for readiness, and noticing early when it will not come:
//! ExternalSecrets until `Ready=True`; StatefulSets until the rollout is done
//! (`observedGeneration`, `updatedReplicas`, `readyReplicas`, scale-down
//! finished), looking at the pods and claims on each poll for failures that
//! will not heal by waiting (Unschedulable, CrashLoopBackOff,
//! ImagePullBackOff, a claim that cannot be provisioned).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kube::Client;
use kube::api::ListParams;
use serde_json::Value;

use crate::live::{self, KindInfo, kinds};

/// How a wait ended badly.
#[derive(Debug, Clone, PartialEq)]
pub enum WaitError {
    /// A failure that waiting will not fix.
    Failed(String),
    /// Not ready in time; the last status seen.
    Timeout(String),
    /// Ctrl-C.
    Interrupted,
    /// The API failed.
    Api(String),
}

impl std::fmt::Display for WaitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WaitError::Failed(m) => write!(f, "{m}"),
            WaitError::Timeout(m) => write!(f, "timed out waiting: {m}"),
            WaitError::Interrupted => write!(f, "interrupted"),
            WaitError::Api(m) => write!(f, "{m}"),
        }
    }
}

/// Whether a kind is waited for.
pub fn waits_for(kind: &str) -> bool {
    matches!(kind, "StatefulSet" | "ExternalSecret")
}

fn s<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

fn i(v: &Value, p: &str) -> i64 {
    v.pointer(p).and_then(Value::as_i64).unwrap_or(0)
}

/// Waits for one object; `status` is called with a one-line progress text.
#[allow(clippy::too_many_arguments)]
pub async fn wait_ready(
    client: &Client,
    info: &'static KindInfo,
    namespace: Option<&str>,
    name: &str,
    timeout: Duration,
    poll: Duration,
    cancel: &Arc<AtomicBool>,
    status: &(dyn Fn(&str) + Send + Sync),
) -> Result<(), WaitError> {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("waiting for the first status");
    loop {
        if cancel.load(Ordering::SeqCst) {
            return Err(WaitError::Interrupted);
        }
        let obj = live::get(client, info, namespace, name)
            .await
            .map_err(|e| WaitError::Api(format!("reading {}: {}", name, live::describe(&e))))?;
        let Some(obj) = obj else {
            return Err(WaitError::Failed(format!(
                "{} {name} disappeared",
                info.kind
            )));
        };
        let done = match info.kind {
            "ExternalSecret" => external_secret(&obj, &mut last)?,
            "StatefulSet" => {
                let done = statefulset(&obj, &mut last);
                if !done {
                    pod_failures(client, &obj, namespace.unwrap_or_default()).await?;
                }
                done
            }
            _ => true,
        };
        if done {
            return Ok(());
        }
        status(&last);
        if Instant::now() >= deadline {
            return Err(WaitError::Timeout(last));
        }
        // Sleep in small steps so Ctrl-C is noticed quickly.
        let until = Instant::now() + poll;
        while Instant::now() < until {
            if cancel.load(Ordering::SeqCst) {
                return Err(WaitError::Interrupted);
            }
            tokio::time::sleep(poll.min(Duration::from_millis(100))).await;
        }
    }
}

fn external_secret(obj: &Value, last: &mut String) -> Result<bool, WaitError> {
    let ready = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"));
    match ready {
        Some(c) if c["status"] == "True" => Ok(true),
        Some(c) if c["status"] == "False" => Err(WaitError::Failed(format!(
            "ExternalSecret {} is not Ready: {} {}",
            s(obj, "/metadata/name"),
            s(c, "/reason"),
            s(c, "/message")
        ))),
        _ => {
            *last = "waiting for External Secrets to sync".into();
            Ok(false)
        }
    }
}

fn statefulset(obj: &Value, last: &mut String) -> bool {
    let want = obj
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let generation = i(obj, "/metadata/generation");
    let observed = i(obj, "/status/observedGeneration");
    let replicas = i(obj, "/status/replicas");
    let ready = i(obj, "/status/readyReplicas");
    let updated = i(obj, "/status/updatedReplicas");
    let cur = s(obj, "/status/currentRevision");
    let upd = s(obj, "/status/updateRevision");
    *last = format!("{ready}/{want} ready, {updated}/{want} updated");
    if observed < generation {
        *last = "waiting for the controller to observe the change".into();
        return false;
    }
    if replicas > want {
        *last = format!("scaling down: {replicas} → {want}, {ready} ready");
        return false;
    }
    ready == want && updated == want && replicas == want && (upd.is_empty() || cur == upd)
}

/// Fails early on pod or claim problems that will not heal by waiting.
async fn pod_failures(client: &Client, sts: &Value, ns: &str) -> Result<(), WaitError> {
    let selector = live::match_labels_selector(sts);
    let lp = ListParams::default().labels(&selector);
    let api = kinds::POD.api(client, Some(ns));
    let pods = live::with_retry(|| api.list(&lp))
        .await
        .map_err(|e| WaitError::Api(format!("listing pods in {ns}: {}", live::describe(&e))))?;
    let mut pending_claims = false;
    for p in pods.items {
        let Some(p) = live::to_value(&kinds::POD, p) else {
            continue;
        };
        let pname = s(&p, "/metadata/name").to_string();
        if let Some(c) = p
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| c["type"] == "PodScheduled"))
            && c["status"] == "False"
            && s(c, "/reason") == "Unschedulable"
        {
            let msg = s(c, "/message").to_string();
            if msg.contains("unbound immediate PersistentVolumeClaims")
                || msg.contains("persistentvolumeclaim")
            {
                pending_claims = true;
                continue;
            }
            // The cluster autoscaler may be adding a node: keep waiting then.
            if !scale_up_triggered(client, ns, &pname).await {
                return Err(WaitError::Failed(format!(
                    "pod {ns}/{pname} cannot be scheduled: {msg}"
                )));
            }
        }
        for list in ["/status/initContainerStatuses", "/status/containerStatuses"] {
            for cs in p
                .pointer(list)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let reason = s(cs, "/state/waiting/reason");
                if matches!(
                    reason,
                    "CrashLoopBackOff"
                        | "ImagePullBackOff"
                        | "ErrImagePull"
                        | "InvalidImageName"
                        | "CreateContainerConfigError"
                ) {
                    let mut msg =
                        format!("pod {ns}/{pname} container {}: {reason}", s(cs, "/name"));
                    let m = s(cs, "/state/waiting/message");
                    if !m.is_empty() {
                        msg.push_str(&format!(": {m}"));
                    }
                    if reason == "CrashLoopBackOff" {
                        let code = cs.pointer("/lastState/terminated/exitCode");
                        if let Some(code) = code {
                            msg.push_str(&format!(
                                " (last exit code {code}, {})",
                                s(cs, "/lastState/terminated/reason")
                            ));
                        }
                        msg.push_str(&format!(
                            "; see `kubectl logs -n {ns} {pname} -c {} --previous`",
                            s(cs, "/name")
                        ));
                    }
                    return Err(WaitError::Failed(msg));
                }
            }
        }
        if s(&p, "/status/phase") == "Pending" {
            pending_claims = true;
        }
    }
    if pending_claims || selector.is_empty() {
        claim_failures(client, &selector, ns).await?;
    }
    Ok(())
}

async fn scale_up_triggered(client: &Client, ns: &str, pod: &str) -> bool {
    let api = kinds::EVENT.api(client, Some(ns));
    let lp = ListParams::default().fields(&format!(
        "involvedObject.kind=Pod,involvedObject.name={pod}"
    ));
    match live::with_retry(|| api.list(&lp)).await {
        Ok(list) => list.items.into_iter().any(|e| {
            live::to_value(&kinds::EVENT, e).is_some_and(|v| s(&v, "/reason") == "TriggeredScaleUp")
        }),
        Err(_) => false,
    }
}

/// Pending claims with a `ProvisioningFailed` warning: no StorageClass,
/// quota exceeded, zone mismatch…
async fn claim_failures(client: &Client, selector: &str, ns: &str) -> Result<(), WaitError> {
    let api = kinds::PVC.api(client, Some(ns));
    let lp = ListParams::default().labels(selector);
    let claims = live::with_retry(|| api.list(&lp))
        .await
        .map_err(|e| WaitError::Api(format!("listing claims in {ns}: {}", live::describe(&e))))?;
    for c in claims.items {
        let Some(c) = live::to_value(&kinds::PVC, c) else {
            continue;
        };
        if s(&c, "/status/phase") != "Pending" {
            continue;
        }
        let cname = s(&c, "/metadata/name").to_string();
        let ev = kinds::EVENT.api(client, Some(ns));
        let lp = ListParams::default().fields(&format!(
            "involvedObject.kind=PersistentVolumeClaim,involvedObject.name={cname}"
        ));
        let Ok(events) = live::with_retry(|| ev.list(&lp)).await else {
            continue;
        };
        for e in events.items {
            let Some(e) = live::to_value(&kinds::EVENT, e) else {
                continue;
            };
            if s(&e, "/type") == "Warning" && s(&e, "/reason") == "ProvisioningFailed" {
                return Err(WaitError::Failed(format!(
                    "PersistentVolumeClaim {ns}/{cname} is Pending: {}",
                    s(&e, "/message")
                )));
            }
        }
    }
    Ok(())
}
