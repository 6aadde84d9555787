//! Comparing desired and live objects without perpetual diffs: server-owned
//! metadata and `status` are dropped, quantities compare by value, and
//! "desired is satisfied by live" means every field stateplan sets has that
//! value live (defaults the server added are fine) and stateplan owns no
//! field it no longer sets (which server-side apply would remove).

use serde_json::{Map, Value};

use crate::blueprint::Quantity;

/// Metadata fields the server sets; never part of a diff.
const SERVER_METADATA: &[&str] = &[
    "managedFields",
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "generation",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// `kubectl apply`'s record of the last manifest it applied.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// A copy without server-owned metadata, kubectl's last-applied record and
/// `status`.
pub fn normalize(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(map) = v.as_object_mut() {
        map.remove("status");
        if let Some(Value::Object(meta)) = map.get_mut("metadata") {
            for f in SERVER_METADATA {
                meta.remove(*f);
            }
            // kubectl's copy of what it last applied: a whole second object
            // in a diff, which may hold what a hand-written manifest had in
            // it (a password in an env value). Server-side apply leaves it.
            if let Some(Value::Object(a)) = meta.get_mut("annotations") {
                a.remove(LAST_APPLIED);
            }
            for f in ["labels", "annotations"] {
                if meta
                    .get(f)
                    .is_some_and(|m| m.as_object().is_some_and(Map::is_empty))
                {
                    meta.remove(f);
                }
            }
        }
    }
    v
}

/// Keys under which strings are resource quantities.
fn is_quantity_context(key: &str) -> bool {
    matches!(
        key,
        "requests" | "limits" | "capacity" | "allocatable" | "hard" | "used"
    )
}

/// Whether two strings are equal, or equal quantities where quantities live.
fn same_string(a: &str, b: &str, quantity: bool) -> bool {
    a == b
        || (quantity
            && matches!((Quantity::parse(a), Quantity::parse(b)), (Ok(x), Ok(y)) if x.milli() == y.milli()))
}

fn same_number(a: &serde_json::Number, b: &serde_json::Number) -> bool {
    match (a.as_i64(), b.as_i64()) {
        (Some(x), Some(y)) => x == y,
        _ => a.as_f64() == b.as_f64(),
    }
}

/// Every field of `desired` is present in `live` with the same value.
/// Lists compare item by item (same length); extra fields in live (server
/// defaults) are allowed.
pub fn satisfied(desired: &Value, live: &Value) -> bool {
    sat(desired, live, false, "")
}

fn sat(d: &Value, l: &Value, quantity: bool, key: &str) -> bool {
    match (d, l) {
        (Value::Null, _) => true,
        (Value::Object(dm), Value::Object(lm)) => dm.iter().all(|(k, dv)| match lm.get(k) {
            Some(lv) => sat(dv, lv, quantity || is_quantity_context(k), k),
            None => dv.is_null(),
        }),
        (Value::Array(da), Value::Array(la)) => {
            da.len() == la.len() && da.iter().zip(la).all(|(a, b)| sat(a, b, quantity, key))
        }
        (Value::String(a), Value::String(b)) => same_string(a, b, quantity || key == "sizeLimit"),
        (Value::Number(a), Value::Number(b)) => same_number(a, b),
        // A number where the server keeps a quantity string (`cpu: 2`).
        (Value::Number(a), Value::String(b)) if quantity => same_string(&a.to_string(), b, true),
        _ => d == l,
    }
}

/// Both ways: the same object up to quantity spelling.
pub fn equivalent(a: &Value, b: &Value) -> bool {
    satisfied(a, b) && satisfied(b, a)
}

/// The `fieldsV1` stateplan's apply owns on a live object, if any.
pub fn applied_fields<'a>(live: &'a Value, manager: &str) -> Option<&'a Value> {
    live.pointer("/metadata/managedFields")?
        .as_array()?
        .iter()
        .find(|m| {
            m.get("manager").and_then(Value::as_str) == Some(manager)
                && m.get("operation").and_then(Value::as_str) == Some("Apply")
                && m.get("subresource").is_none_or(Value::is_null)
        })?
        .get("fieldsV1")
}

/// Whether every field in a `fieldsV1` set is still set by `desired`: if
/// not, server-side apply would remove it, so the object would change.
/// Unknown entry shapes answer `false` (the caller then asks the server).
pub fn owned_fields_in(fields: &Value, desired: &Value) -> bool {
    let Some(map) = fields.as_object() else {
        return false;
    };
    map.iter().all(|(k, child)| {
        if k == "." {
            return true;
        }
        let sub_ok = |d: &Value| {
            child
                .as_object()
                .is_none_or(|c| c.is_empty() || c.len() == 1 && c.contains_key("."))
                || owned_fields_in(child, d)
        };
        if let Some(name) = k.strip_prefix("f:") {
            match desired.get(name) {
                Some(d) if !d.is_null() => sub_ok(d),
                _ => false,
            }
        } else if let Some(key) = k.strip_prefix("k:") {
            let Ok(Value::Object(want)) = serde_json::from_str::<Value>(key) else {
                return false;
            };
            let Some(items) = desired.as_array() else {
                return false;
            };
            items
                .iter()
                .find(|item| {
                    want.iter().all(|(wk, wv)| {
                        item.get(wk).is_some_and(|iv| match (iv, wv) {
                            (Value::Number(a), Value::Number(b)) => same_number(a, b),
                            _ => iv == wv,
                        }) || (wk == "protocol" && wv == "TCP" && item.get(wk).is_none())
                    })
                })
                .is_some_and(sub_ok)
        } else if let Some(val) = k.strip_prefix("v:") {
            let Ok(want) = serde_json::from_str::<Value>(val) else {
                return false;
            };
            desired
                .as_array()
                .is_some_and(|items| items.contains(&want))
        } else if let Some(idx) = k.strip_prefix("i:") {
            match (idx.parse::<usize>(), desired.as_array()) {
                (Ok(i), Some(items)) => items.get(i).is_some_and(sub_ok),
                _ => false,
            }
        } else {
            false
        }
    })
}

/// `live` with `desired` laid over it: what the object looks like after an
/// apply, for diffs where the server cannot tell us (replacements).
/// Lists are taken from `desired`, each item laid over the live item at the
/// same index.
pub fn overlay(live: &Value, desired: &Value) -> Value {
    match (live, desired) {
        (Value::Object(l), Value::Object(d)) => {
            let mut out = l.clone();
            for (k, dv) in d {
                let merged = match l.get(k) {
                    Some(lv) => overlay(lv, dv),
                    None => dv.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(d)) => Value::Array(
            d.iter()
                .enumerate()
                .map(|(i, dv)| match l.get(i) {
                    Some(lv) => overlay(lv, dv),
                    None => dv.clone(),
                })
                .collect(),
        ),
        _ => desired.clone(),
    }
}

/// Replaces Secret `data`/`stringData` values so they never reach output.
/// Changed values are marked (the new side says "changed") without showing
/// either value.
pub fn redact(kind: &str, obj: &Value, other: Option<&Value>) -> Value {
    let mut v = obj.clone();
    if kind != "Secret" {
        return v;
    }
    for field in ["data", "stringData"] {
        if let Some(Value::Object(map)) = v.get_mut(field) {
            for (k, val) in map.iter_mut() {
                let before = other
                    .and_then(|o| o.get(field))
                    .and_then(|m| m.get(k.as_str()));
                let changed = other.is_some() && before != Some(&*val);
                *val = Value::String(if changed {
                    "(redacted, changed)".into()
                } else {
                    "(redacted)".into()
                });
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kubectls_last_applied_record_is_never_shown() {
        let live = json!({"metadata": {"name": "db", "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": "{\"env\":[{\"name\":\"PASSWORD\",\"value\":\"hunter2\"}]}",
            "team": "payments"
        }}, "status": {"ready": true}});
        assert_eq!(
            normalize(&live),
            json!({"metadata": {"name": "db", "annotations": {"team": "payments"}}})
        );
    }

    #[test]
    fn quantities_compare_by_value_in_resource_contexts() {
        let d = json!({"resources": {"requests": {"cpu": "2000m", "memory": "1Gi"}}});
        let l = json!({"resources": {"requests": {"cpu": "2", "memory": "1073741824"}}});
        assert!(satisfied(&d, &l));
        assert!(!satisfied(
            &json!({"image": "2000m"}),
            &json!({"image": "2"})
        ));
        assert!(satisfied(
            &json!({"spec": {"resources": {"requests": {"storage": "200Gi"}}}}),
            &json!({"spec": {"resources": {"requests": {"storage": "200Gi"}}, "volumeMode": "Filesystem"}})
        ));
    }

    #[test]
    fn defaults_are_fine_but_list_lengths_must_match() {
        let d = json!({"ports": [{"port": 80}]});
        assert!(satisfied(
            &d,
            &json!({"ports": [{"port": 80, "protocol": "TCP"}]})
        ));
        assert!(!satisfied(
            &d,
            &json!({"ports": [{"port": 80}, {"port": 81}]})
        ));
        assert!(!satisfied(&json!({"a": 1}), &json!({})));
    }

    #[test]
    fn owned_fields_must_still_be_desired() {
        let fields = json!({"f:metadata": {"f:labels": {".": {}, "f:a": {}}}, "f:spec": {"f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}}}}});
        let d = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"ports": [{"port": 80}]}});
        assert!(owned_fields_in(&fields, &d));
        let dropped = json!({"metadata": {"labels": {}}, "spec": {"ports": [{"port": 80}]}});
        assert!(!owned_fields_in(&fields, &dropped));
        let other_port =
            json!({"metadata": {"labels": {"a": "1"}}, "spec": {"ports": [{"port": 81}]}});
        assert!(!owned_fields_in(&fields, &other_port));
        assert!(owned_fields_in(
            &json!({"f:x": {"v:\"a\"": {}}}),
            &json!({"x": ["a"]})
        ));
    }

    #[test]
    fn secrets_are_redacted() {
        let live = json!({"data": {"p": "c2VjcmV0"}});
        let want = json!({"data": {"p": "b3RoZXI="}});
        let r = redact("Secret", &want, Some(&live));
        assert_eq!(r["data"]["p"], "(redacted, changed)");
        assert!(!r.to_string().contains("b3RoZXI"));
        assert_eq!(redact("Secret", &live, None)["data"]["p"], "(redacted)");
    }
}
