//! Field sets of server-side apply: which fields a manager owns, in the
//! `fieldsV1` shape (`f:spec`, `k:{"name":"postgres"}`, `v:"x"`, `.`), plus
//! path-wise get/remove and the apply merge.

use super::schema::{ListType, Node, top_field};
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// One step of a field path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PE {
    /// A field of a map/struct.
    F(String),
    /// An item of an associative list, by its key fields (name, JSON value),
    /// sorted by name.
    K(Vec<(String, String)>),
    /// An item of a set list, by its JSON value.
    V(String),
    /// An item of a list by index (only from parsed fieldsV1).
    I(usize),
}

pub type Path = Vec<PE>;
pub type FieldSet = BTreeSet<Path>;

/// `.spec.template.spec.containers[name="postgres"].image`
pub fn path_string(p: &[PE]) -> String {
    let mut s = String::new();
    for e in p {
        match e {
            PE::F(f) => {
                s.push('.');
                s.push_str(f);
            }
            PE::K(kv) => {
                let parts: Vec<String> = kv.iter().map(|(k, v)| format!("{k}={v}")).collect();
                s.push_str(&format!("[{}]", parts.join(",")));
            }
            PE::V(v) => s.push_str(&format!("[={v}]")),
            PE::I(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

fn pe_key(e: &PE) -> String {
    match e {
        PE::F(f) => format!("f:{f}"),
        PE::K(kv) => {
            let parts: Vec<String> = kv
                .iter()
                .map(|(k, v)| format!("{}:{v}", Value::String(k.clone())))
                .collect();
            format!("k:{{{}}}", parts.join(","))
        }
        PE::V(v) => format!("v:{v}"),
        PE::I(i) => format!("i:{i}"),
    }
}

/// Renders a field set as `fieldsV1`.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    fn build(set: &FieldSet, prefix: &[PE], depth: usize) -> Map<String, Value> {
        let mut m = Map::new();
        // Children at this depth, in order; "." marks a path that is a member
        // and has children too (a pure leaf renders as {}).
        let mut children: Vec<&PE> = Vec::new();
        for p in set.range(prefix.to_vec()..) {
            if !p.starts_with(prefix) {
                break;
            }
            if p.len() > depth {
                let c = &p[depth];
                if children.last() != Some(&c) {
                    children.push(c);
                }
            }
        }
        for c in children {
            let mut child_path = prefix.to_vec();
            child_path.push(c.clone());
            let mut sub = build(set, &child_path, depth + 1);
            if set.contains(&child_path) && !sub.is_empty() {
                let mut with_dot = Map::new();
                with_dot.insert(".".into(), Value::Object(Map::new()));
                with_dot.append(&mut sub);
                sub = with_dot;
            }
            m.insert(pe_key(c), Value::Object(sub));
        }
        m
    }
    Value::Object(build(set, &[], 0))
}

/// Parses `fieldsV1`.
pub fn from_fields_v1(v: &Value) -> FieldSet {
    fn walk(v: &Value, prefix: &mut Path, out: &mut FieldSet) {
        let Value::Object(m) = v else { return };
        if m.is_empty() && !prefix.is_empty() {
            out.insert(prefix.clone());
            return;
        }
        for (k, child) in m {
            if k == "." {
                out.insert(prefix.clone());
                continue;
            }
            let pe = if let Some(f) = k.strip_prefix("f:") {
                PE::F(f.to_string())
            } else if let Some(j) = k.strip_prefix("k:") {
                match serde_json::from_str::<Map<String, Value>>(j) {
                    Ok(obj) => {
                        let mut kv: Vec<(String, String)> =
                            obj.into_iter().map(|(k, v)| (k, v.to_string())).collect();
                        kv.sort();
                        PE::K(kv)
                    }
                    Err(_) => continue,
                }
            } else if let Some(j) = k.strip_prefix("v:") {
                PE::V(j.to_string())
            } else if let Some(i) = k.strip_prefix("i:") {
                match i.parse() {
                    Ok(i) => PE::I(i),
                    Err(_) => continue,
                }
            } else {
                continue;
            };
            prefix.push(pe);
            walk(child, prefix, out);
            prefix.pop();
        }
    }
    let mut out = FieldSet::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

/// The key of an associative-list item (missing `protocol` defaults to TCP,
/// as the server's schema does).
pub fn item_key(item: &Value, keys: &[String]) -> Option<Vec<(String, String)>> {
    let o = item.as_object()?;
    let mut kv = Vec::new();
    for k in keys {
        let v = match o.get(k) {
            Some(v) if !v.is_null() => v.to_string(),
            _ if k == "protocol" => "\"TCP\"".to_string(),
            _ => return None,
        };
        kv.push((k.clone(), v));
    }
    kv.sort();
    Some(kv)
}

fn key_matches(item: &Value, kv: &[(String, String)]) -> bool {
    let keys: Vec<String> = kv.iter().map(|(k, _)| k.clone()).collect();
    item_key(item, &keys).as_deref() == Some(kv)
}

/// Which top-level parts of an object count for field ownership.
pub struct Scope {
    /// Include `status` (status subresource writes, or kinds without one).
    pub status: bool,
    /// Include everything except `status`.
    pub main: bool,
}

/// The field set of `obj` (an applied configuration or a whole object).
pub fn collect(obj: &Value, root: Node<'_>, scope: &Scope) -> FieldSet {
    let mut out = FieldSet::new();
    let Value::Object(m) = obj else { return out };
    for (k, v) in m {
        match k.as_str() {
            "apiVersion" | "kind" => continue,
            "status" if !scope.status => continue,
            "status" => {}
            _ if !scope.main => continue,
            _ => {}
        }
        let node = top_field(root, k).unwrap_or(Node(None));
        if k == "metadata" {
            let Value::Object(meta) = v else { continue };
            for (mk, mv) in meta {
                if matches!(
                    mk.as_str(),
                    "labels" | "annotations" | "finalizers" | "ownerReferences"
                ) {
                    let mut p = vec![PE::F("metadata".into()), PE::F(mk.clone())];
                    walk_collect(mv, node.field(mk).unwrap_or(Node(None)), &mut p, &mut out);
                }
            }
            continue;
        }
        let mut p = vec![PE::F(k.clone())];
        walk_collect(v, node, &mut p, &mut out);
    }
    out
}

fn walk_collect(v: &Value, node: Node<'_>, p: &mut Path, out: &mut FieldSet) {
    match v {
        Value::Object(m) if !m.is_empty() && !node.is_atomic_map() => {
            for (k, child) in m {
                p.push(PE::F(k.clone()));
                walk_collect(child, node.field(k).unwrap_or(Node(None)), p, out);
                p.pop();
            }
        }
        Value::Array(items) if !items.is_empty() => match node.list_type() {
            ListType::Map(keys) => {
                let ks: Option<Vec<_>> = items.iter().map(|i| item_key(i, &keys)).collect();
                let Some(ks) = ks else {
                    out.insert(p.clone());
                    return;
                };
                let it = node.items();
                for (item, kv) in items.iter().zip(ks) {
                    p.push(PE::K(kv));
                    out.insert(p.clone());
                    if let Value::Object(m) = item {
                        for (k, child) in m {
                            p.push(PE::F(k.clone()));
                            walk_collect(child, it.field(k).unwrap_or(Node(None)), p, out);
                            p.pop();
                        }
                    }
                    p.pop();
                }
            }
            ListType::Set if items.iter().all(|i| !i.is_object() && !i.is_array()) => {
                for item in items {
                    p.push(PE::V(item.to_string()));
                    out.insert(p.clone());
                    p.pop();
                }
            }
            _ => {
                out.insert(p.clone());
            }
        },
        _ => {
            out.insert(p.clone());
        }
    }
}

/// The value at a path.
pub fn get<'a>(obj: &'a Value, p: &[PE]) -> Option<&'a Value> {
    let mut cur = obj;
    for e in p {
        cur = match (e, cur) {
            (PE::F(f), Value::Object(m)) => m.get(f)?,
            (PE::K(kv), Value::Array(a)) => a.iter().find(|i| key_matches(i, kv))?,
            (PE::V(v), Value::Array(a)) => a.iter().find(|i| json_eq(i, v))?,
            (PE::I(i), Value::Array(a)) => a.get(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Whether `v` serialises to the JSON text `text`.
fn json_eq(v: &Value, text: &str) -> bool {
    v.to_string().as_str() == text
}

/// Removes the value at a path (a field, or a list item).
pub fn remove(obj: &mut Value, p: &[PE]) {
    let Some((last, parent)) = p.split_last() else {
        return;
    };
    let mut cur = obj;
    for e in parent {
        let next = match (e, cur) {
            (PE::F(f), Value::Object(m)) => m.get_mut(f),
            (PE::K(kv), Value::Array(a)) => a.iter_mut().find(|i| key_matches(i, kv)),
            (PE::V(v), Value::Array(a)) => a.iter_mut().find(|i| json_eq(i, v)),
            (PE::I(i), Value::Array(a)) => a.get_mut(*i),
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    match (last, cur) {
        (PE::F(f), Value::Object(m)) => {
            m.shift_remove(f);
        }
        (PE::K(kv), Value::Array(a)) => a.retain(|i| !key_matches(i, kv)),
        (PE::V(v), Value::Array(a)) => a.retain(|i| !json_eq(i, v)),
        (PE::I(i), Value::Array(a)) if *i < a.len() => {
            a.remove(*i);
        }
        _ => {}
    }
}

/// Merges an applied configuration into a live object: maps field-wise,
/// associative lists by key, set lists by value, everything else replaced.
pub fn merge(live: &Value, applied: &Value, node: Node<'_>, top: bool) -> Value {
    match (live, applied) {
        (Value::Object(l), Value::Object(a)) if !node.is_atomic_map() => {
            let mut out = l.clone();
            for (k, av) in a {
                let child = if top {
                    top_field(node, k).unwrap_or(Node(None))
                } else {
                    node.field(k).unwrap_or(Node(None))
                };
                let merged = match l.get(k) {
                    Some(lv) => merge(lv, av, child, false),
                    None => av.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(a)) => match node.list_type() {
            ListType::Map(keys) => {
                let it = node.items();
                let mut out: Vec<Value> = Vec::new();
                for li in l {
                    let lk = item_key(li, &keys);
                    let ai = lk
                        .as_ref()
                        .and_then(|k| a.iter().find(|ai| item_key(ai, &keys).as_ref() == Some(k)));
                    out.push(match ai {
                        Some(ai) => merge(li, ai, it, false),
                        None => li.clone(),
                    });
                }
                for ai in a {
                    let ak = item_key(ai, &keys);
                    let present = ak.is_some() && l.iter().any(|li| item_key(li, &keys) == ak);
                    if !present {
                        out.push(ai.clone());
                    }
                }
                Value::Array(out)
            }
            ListType::Set => {
                let mut out = l.clone();
                for ai in a {
                    if !out.contains(ai) {
                        out.push(ai.clone());
                    }
                }
                Value::Array(out)
            }
            ListType::Atomic => applied.clone(),
        },
        _ => applied.clone(),
    }
}

/// Every path of `set` that is `p` or below it.
pub fn has_descendant_or_self(set: &FieldSet, p: &[PE]) -> bool {
    set.range(p.to_vec()..)
        .next()
        .is_some_and(|q| q.starts_with(p))
}

/// Whether any path in `set` is a strict ancestor of `p` (owns `p` atomically).
pub fn has_ancestor(set: &FieldSet, p: &[PE]) -> bool {
    (1..p.len()).any(|n| set.contains(&p[..n]))
}
