//! Defaulting of built-in kinds, as the API server's defaulters do (the subset
//! stateplan's kinds need; shapes follow the recorded fixtures).

use super::util::{at_mut, default_at};
use serde_json::{Map, Value, json};

/// Defaults `obj` (a whole object of `group`/`kind`). `new_cluster_ip` is called
/// when a Service needs an address.
pub fn apply(group: &str, kind: &str, obj: &mut Value, new_cluster_ip: &mut dyn FnMut() -> String) {
    match (group, kind) {
        ("apps", "StatefulSet") => statefulset(obj),
        ("", "Service") => service(obj, new_cluster_ip),
        ("", "PersistentVolumeClaim") => {
            pvc_spec(at_mut(obj, &["spec"]));
            default_at(obj, &["status"], json!({"phase": "Pending"}));
        }
        ("", "Pod") => {
            pod_spec(at_mut(obj, &["spec"]));
            default_at(obj, &["spec", "enableServiceLinks"], json!(true));
            default_at(obj, &["spec", "serviceAccountName"], json!("default"));
            default_at(obj, &["spec", "serviceAccount"], json!("default"));
            default_at(obj, &["spec", "priority"], json!(0));
            default_at(
                obj,
                &["spec", "preemptionPolicy"],
                json!("PreemptLowerPriority"),
            );
            default_at(
                obj,
                &["status"],
                json!({"phase": "Pending", "qosClass": "BestEffort"}),
            );
        }
        ("", "Namespace") => {
            if let Some(name) = obj
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .map(String::from)
            {
                default_at(
                    obj,
                    &["metadata", "labels", "kubernetes.io/metadata.name"],
                    json!(name),
                );
            }
            default_at(obj, &["spec", "finalizers"], json!(["kubernetes"]));
            default_at(obj, &["status", "phase"], json!("Active"));
        }
        ("", "Secret") => {
            default_at(obj, &["type"], json!("Opaque"));
            // stringData is write-only: merged into data.
            if let Some(Value::Object(sd)) = obj
                .as_object_mut()
                .and_then(|m| m.shift_remove("stringData"))
            {
                let data = at_mut(obj, &["data"]);
                if !data.is_object() {
                    *data = Value::Object(Map::new());
                }
                if let Value::Object(d) = data {
                    for (k, v) in sd {
                        let s = v.as_str().unwrap_or_default().to_string();
                        d.insert(k, json!(super::util::base64(s.as_bytes())));
                    }
                }
            }
        }
        ("storage.k8s.io", "StorageClass") => {
            default_at(obj, &["reclaimPolicy"], json!("Delete"));
            default_at(obj, &["volumeBindingMode"], json!("Immediate"));
        }
        ("policy", "PodDisruptionBudget") => {
            default_at(
                obj,
                &["status"],
                json!({"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}),
            );
        }
        ("", "Event") => {
            default_at(obj, &["type"], json!("Normal"));
        }
        _ => {}
    }
}

fn statefulset(obj: &mut Value) {
    default_at(obj, &["spec", "replicas"], json!(1));
    default_at(obj, &["spec", "podManagementPolicy"], json!("OrderedReady"));
    default_at(
        obj,
        &["spec", "updateStrategy", "type"],
        json!("RollingUpdate"),
    );
    if obj
        .pointer("/spec/updateStrategy/type")
        .and_then(Value::as_str)
        == Some("RollingUpdate")
    {
        default_at(
            obj,
            &["spec", "updateStrategy", "rollingUpdate", "partition"],
            json!(0),
        );
    }
    default_at(obj, &["spec", "revisionHistoryLimit"], json!(10));
    default_at(
        obj,
        &["spec", "persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
    );
    template_meta(at_mut(obj, &["spec", "template", "metadata"]));
    pod_spec(at_mut(obj, &["spec", "template", "spec"]));
    if let Some(Value::Array(vcts)) = obj.pointer_mut("/spec/volumeClaimTemplates") {
        for vct in vcts.iter_mut() {
            if let Value::Object(m) = vct {
                // The server writes kind/apiVersion first.
                let mut out = Map::new();
                out.insert(
                    "kind".into(),
                    m.shift_remove("kind")
                        .unwrap_or(json!("PersistentVolumeClaim")),
                );
                out.insert(
                    "apiVersion".into(),
                    m.shift_remove("apiVersion").unwrap_or(json!("v1")),
                );
                out.append(m);
                *m = out;
            }
            template_meta(at_mut(vct, &["metadata"]));
            pvc_spec(at_mut(vct, &["spec"]));
            default_at(vct, &["status"], json!({"phase": "Pending"}));
        }
    }
    default_at(
        obj,
        &["status"],
        json!({"replicas": 0, "availableReplicas": 0}),
    );
}

/// `creationTimestamp: null` in embedded object metadata, as Go serialises it.
fn template_meta(meta: &mut Value) {
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    if let Value::Object(m) = meta
        && !m.contains_key("creationTimestamp")
    {
        m.insert("creationTimestamp".into(), Value::Null);
    }
}

fn pvc_spec(spec: &mut Value) {
    default_at(spec, &["volumeMode"], json!("Filesystem"));
}

/// PodSpec defaults (pod template or pod).
pub fn pod_spec(spec: &mut Value) {
    for list in ["initContainers", "containers"] {
        if let Some(Value::Array(cs)) = spec.get_mut(list) {
            for c in cs.iter_mut() {
                container(c);
            }
        }
    }
    default_at(spec, &["restartPolicy"], json!("Always"));
    default_at(spec, &["terminationGracePeriodSeconds"], json!(30));
    default_at(spec, &["dnsPolicy"], json!("ClusterFirst"));
    default_at(spec, &["securityContext"], json!({}));
    default_at(spec, &["schedulerName"], json!("default-scheduler"));
    if let Some(Value::Array(vols)) = spec.get_mut("volumes") {
        for v in vols.iter_mut() {
            for src in ["configMap", "secret"] {
                if let Some(s) = v.get_mut(src) {
                    default_at(s, &["defaultMode"], json!(420));
                }
            }
            if let Some(p) = v.get_mut("projected") {
                default_at(p, &["defaultMode"], json!(420));
            }
        }
    }
}

fn container(c: &mut Value) {
    if let Some(Value::Array(ports)) = c.get_mut("ports") {
        for p in ports.iter_mut() {
            default_at(p, &["protocol"], json!("TCP"));
        }
    }
    default_at(c, &["resources"], json!({}));
    default_at(
        c,
        &["terminationMessagePath"],
        json!("/dev/termination-log"),
    );
    default_at(c, &["terminationMessagePolicy"], json!("File"));
    let image = c
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let latest = {
        let last = image.rsplit('/').next().unwrap_or("");
        !image.contains('@') && (!last.contains(':') || last.ends_with(":latest"))
    };
    default_at(
        c,
        &["imagePullPolicy"],
        json!(if latest { "Always" } else { "IfNotPresent" }),
    );
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(probe) {
            default_at(p, &["timeoutSeconds"], json!(1));
            default_at(p, &["periodSeconds"], json!(10));
            default_at(p, &["successThreshold"], json!(1));
            default_at(p, &["failureThreshold"], json!(3));
            if let Some(h) = p.get_mut("httpGet") {
                default_at(h, &["scheme"], json!("HTTP"));
            }
        }
    }
    if let Some(Value::Array(env)) = c.get_mut("env") {
        for e in env.iter_mut() {
            if let Some(fr) = e.pointer_mut("/valueFrom/fieldRef") {
                default_at(fr, &["apiVersion"], json!("v1"));
            }
        }
    }
}

fn service(obj: &mut Value, new_ip: &mut dyn FnMut() -> String) {
    let spec = at_mut(obj, &["spec"]);
    default_at(spec, &["type"], json!("ClusterIP"));
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_string();
    if ty != "ExternalName" {
        if spec.get("clusterIP").is_none_or(Value::is_null)
            || spec.get("clusterIP").and_then(Value::as_str) == Some("")
        {
            spec["clusterIP"] = json!(new_ip());
        }
        let ip = spec["clusterIP"].clone();
        default_at(spec, &["clusterIPs"], json!([ip]));
        default_at(spec, &["ipFamilies"], json!(["IPv4"]));
        default_at(spec, &["ipFamilyPolicy"], json!("SingleStack"));
        default_at(spec, &["internalTrafficPolicy"], json!("Cluster"));
    }
    default_at(spec, &["sessionAffinity"], json!("None"));
    if ty == "LoadBalancer" || ty == "NodePort" {
        default_at(spec, &["externalTrafficPolicy"], json!("Cluster"));
    }
    if let Some(Value::Array(ports)) = spec.get_mut("ports") {
        for p in ports.iter_mut() {
            default_at(p, &["protocol"], json!("TCP"));
            if let Some(port) = p.get("port").cloned() {
                default_at(p, &["targetPort"], port);
            }
        }
    }
    default_at(obj, &["status"], json!({"loadBalancer": {}}));
}
