//! Validation and admission rules that stateplan runs into: immutable
//! fields, PVC expansion, names.

use super::util::{ApiError, FieldError, parse_quantity};
use serde_json::Value;

/// Create-time validation.
pub fn on_create(group: &str, kind: &str, obj: &Value) -> Result<(), ApiError> {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut errs = Vec::new();
    if !is_dns_subdomain(name) {
        errs.push(FieldError::invalid(
            "metadata.name",
            format!("{name:?}"),
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ));
    }
    if (group, kind) == ("apps", "StatefulSet") {
        errs.extend(statefulset_common(obj));
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(kind, group, name, errs))
    }
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

fn statefulset_common(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let sel = obj.pointer("/spec/selector/matchLabels");
    let labels = obj.pointer("/spec/template/metadata/labels");
    if let Some(Value::Object(sel)) = sel {
        let ok = sel
            .iter()
            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v));
        if !ok {
            errs.push(FieldError::invalid(
                "spec.template.metadata.labels",
                format!("{}", labels.cloned().unwrap_or(Value::Null)),
                "`selector` does not match template `labels`",
            ));
        }
    } else if obj.pointer("/spec/selector").is_none() {
        errs.push(FieldError::required("spec.selector", ""));
    }
    errs
}

/// Update-time validation (old and new whole objects). `storage_class`
/// looks a StorageClass up by name (for PVC resize admission).
pub fn on_update(
    group: &str,
    kind: &str,
    old: &Value,
    new: &Value,
    storage_class: &dyn Fn(&str) -> Option<Value>,
) -> Result<(), ApiError> {
    let name = new
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut errs = Vec::new();
    match (group, kind) {
        ("apps", "StatefulSet") => {
            let strip = |v: &Value| {
                let mut s = v.get("spec").cloned().unwrap_or(Value::Null);
                if let Value::Object(m) = &mut s {
                    for f in [
                        "replicas",
                        "ordinals",
                        "template",
                        "updateStrategy",
                        "revisionHistoryLimit",
                        "persistentVolumeClaimRetentionPolicy",
                        "minReadySeconds",
                    ] {
                        m.shift_remove(f);
                    }
                }
                s
            };
            if strip(old) != strip(new) {
                errs.push(FieldError::forbidden(
                    "spec",
                    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
                ));
            }
            errs.extend(statefulset_common(new));
        }
        ("storage.k8s.io", "StorageClass") => {
            for f in ["parameters", "provisioner", "reclaimPolicy"] {
                if old.get(f) != new.get(f) {
                    errs.push(FieldError::forbidden(
                        f,
                        format!("updates to {f} are forbidden."),
                    ));
                }
            }
            if old.get("volumeBindingMode") != new.get("volumeBindingMode") {
                errs.push(FieldError::invalid(
                    "volumeBindingMode",
                    format!("{}", new.get("volumeBindingMode").unwrap_or(&Value::Null)),
                    "field is immutable",
                ));
            }
        }
        ("", "Service") => {
            let o = old.pointer("/spec/clusterIP");
            let n = new.pointer("/spec/clusterIP");
            if o.is_some() && o != n {
                errs.push(FieldError::invalid(
                    "spec.clusterIP",
                    format!("{}", n.unwrap_or(&Value::Null)),
                    "field is immutable",
                ));
            }
        }
        ("", "PersistentVolumeClaim") => return pvc_update(&name, old, new, storage_class),
        _ => {}
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(kind, group, &name, errs))
    }
}

fn pvc_update(
    name: &str,
    old: &Value,
    new: &Value,
    storage_class: &dyn Fn(&str) -> Option<Value>,
) -> Result<(), ApiError> {
    let spec_wo_requests = |v: &Value| {
        let mut s = v.get("spec").cloned().unwrap_or(Value::Null);
        if let Some(Value::Object(r)) = s.pointer_mut("/resources") {
            r.shift_remove("requests");
        }
        if let Value::Object(m) = &mut s {
            m.shift_remove("volumeAttributesClassName");
            // Binding fills volumeName in once.
            if old.pointer("/spec/volumeName").is_none() {
                m.shift_remove("volumeName");
            }
        }
        s
    };
    let old_req = old.pointer("/spec/resources/requests");
    let new_req = new.pointer("/spec/resources/requests");
    let bound = old.pointer("/status/phase").and_then(Value::as_str) == Some("Bound");
    let immutable_err = || {
        let detail = format!(
            "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n  core.PersistentVolumeClaimSpec{{\n  \tAccessModes: {},\n  \tResources: core.VolumeResourceRequirements{{\n- \t\tRequests: {},\n+ \t\tRequests: {},\n  \t}},\n  \tStorageClassName: {},\n  }}\n",
            old.pointer("/spec/accessModes").unwrap_or(&Value::Null),
            old_req.unwrap_or(&Value::Null),
            new_req.unwrap_or(&Value::Null),
            old.pointer("/spec/storageClassName")
                .unwrap_or(&Value::Null),
        );
        ApiError::invalid(
            "PersistentVolumeClaim",
            "",
            name,
            vec![FieldError::forbidden("spec", detail)],
        )
    };
    if spec_wo_requests(old) != spec_wo_requests(new) {
        return Err(immutable_err());
    }
    if old_req == new_req {
        return Ok(());
    }
    if !bound {
        return Err(immutable_err());
    }
    let q = |r: Option<&Value>| r.and_then(|r| r.get("storage")).and_then(parse_quantity);
    let (o, n) = (q(old_req), q(new_req));
    if let (Some(o), Some(n)) = (o, n) {
        if n < o {
            return Err(ApiError::invalid(
                "PersistentVolumeClaim",
                "",
                name,
                vec![FieldError::forbidden(
                    "spec.resources.requests.storage",
                    "field can not be less than previous value",
                )],
            ));
        }
        if n > o {
            // Admission plugin PersistentVolumeClaimResize: 403 Forbidden.
            let class = new
                .pointer("/spec/storageClassName")
                .and_then(Value::as_str)
                .unwrap_or("");
            let allowed = storage_class(class)
                .and_then(|sc| sc.get("allowVolumeExpansion").and_then(Value::as_bool))
                .unwrap_or(false);
            if !allowed {
                return Err(ApiError::forbidden_admission(
                    "persistentvolumeclaims",
                    name,
                    "only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize",
                ));
            }
        }
    }
    Ok(())
}
