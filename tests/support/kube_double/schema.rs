//! Schemas: the Kubernetes v1.33 OpenAPI definitions (strict JSON Schema copy in
//! `tests/schemas/kubernetes/v1.33-strict/_definitions.json`) for built-in
//! kinds, and `openAPIV3Schema` of installed CRDs. Used for the server-side
//! apply type information (list types and keys, atomic maps), for "field not
//! declared in schema" errors and for CRD structural defaulting.

use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

pub struct BuiltinDefs {
    defs: Map<String, Value>,
    by_gvk: HashMap<(String, String, String), String>,
}

static BUILTIN: OnceLock<Option<BuiltinDefs>> = OnceLock::new();

pub fn schemas_dir() -> String {
    format!("{}/tests/schemas", env!("CARGO_MANIFEST_DIR"))
}

pub fn builtin() -> Option<&'static BuiltinDefs> {
    BUILTIN
        .get_or_init(|| {
            let path = format!(
                "{}/kubernetes/v1.33-strict/_definitions.json",
                schemas_dir()
            );
            let text = std::fs::read_to_string(path).ok()?;
            let v: Value = serde_json::from_str(&text).ok()?;
            let Value::Object(mut top) = v else {
                return None;
            };
            let Some(Value::Object(defs)) = top.remove("$defs") else {
                return None;
            };
            let mut by_gvk = HashMap::new();
            for (name, d) in &defs {
                if let Some(Value::Array(gvks)) = d.get("x-kubernetes-group-version-kind") {
                    if gvks.len() != 1 {
                        continue;
                    }
                    let g = &gvks[0];
                    let s = |k: &str| g.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                    by_gvk.insert((s("group"), s("version"), s("kind")), name.clone());
                }
            }
            Some(BuiltinDefs { defs, by_gvk })
        })
        .as_ref()
}

/// The definition name of a built-in kind, if the definitions are available.
pub fn builtin_def(group: &str, version: &str, kind: &str) -> Option<String> {
    builtin()?
        .by_gvk
        .get(&(group.to_string(), version.to_string(), kind.to_string()))
        .cloned()
}

static CRD_CACHE: OnceLock<Mutex<HashMap<String, Option<Arc<Value>>>>> = OnceLock::new();

/// Loads (once per process) a CRD manifest, YAML or JSON.
pub fn load_crd_file(path: &str) -> Option<Arc<Value>> {
    let cache = CRD_CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(v) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(path) {
        return v.clone();
    }
    let parsed = std::fs::read_to_string(path).ok().and_then(|text| {
        serde_json::from_str::<Value>(&text)
            .ok()
            .or_else(|| serde_saphyr::from_str::<Value>(&text).ok())
    });
    let parsed = parsed.map(Arc::new);
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(path.to_string(), parsed.clone());
    parsed
}

/// The schema of a kind.
#[derive(Clone, Debug)]
pub enum Schema {
    Builtin(String),
    Crd(Arc<Value>),
    Untyped,
}

impl Schema {
    pub fn root(&self) -> Node<'_> {
        match self {
            Schema::Builtin(name) => Node(builtin().and_then(|b| b.defs.get(name))),
            Schema::Crd(v) => Node(Some(v)),
            Schema::Untyped => Node(None),
        }
    }
}

/// How a list merges under server-side apply.
#[derive(Clone, Debug, PartialEq)]
pub enum ListType {
    Atomic,
    Set,
    Map(Vec<String>),
}

/// A position in a schema; `None` = untyped (anything goes, lists atomic).
#[derive(Clone, Copy, Debug)]
pub struct Node<'a>(pub Option<&'a Value>);

fn resolve(mut v: &Value) -> &Value {
    for _ in 0..16 {
        let Some(r) = v.get("$ref").and_then(Value::as_str) else {
            break;
        };
        let Some(name) = r.rsplit("$defs/").next() else {
            break;
        };
        match builtin().and_then(|b| b.defs.get(name)) {
            Some(d) => v = d,
            None => break,
        }
    }
    v
}

impl<'a> Node<'a> {
    fn v(self) -> Option<&'a Value> {
        self.0.map(resolve)
    }

    pub fn is_typed(self) -> bool {
        self.0.is_some()
    }

    /// The schema of field `name`; `None` when the field is not declared.
    pub fn field(self, name: &str) -> Option<Node<'a>> {
        let Some(v) = self.v() else {
            return Some(Node(None));
        };
        if let Some(p) = v.get("properties").and_then(|p| p.get(name)) {
            return Some(Node(Some(p)));
        }
        let preserve = v
            .get("x-kubernetes-preserve-unknown-fields")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        match v.get("additionalProperties") {
            Some(ap @ Value::Object(_)) => return Some(Node(Some(ap))),
            Some(Value::Bool(true)) => return Some(Node(None)),
            _ => {}
        }
        if preserve || v.get("properties").is_none() {
            return Some(Node(None));
        }
        None
    }

    pub fn items(self) -> Node<'a> {
        Node(self.v().and_then(|v| v.get("items")))
    }

    pub fn list_type(self) -> ListType {
        let Some(v) = self.v() else {
            return ListType::Atomic;
        };
        match v.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("map") => {
                let keys: Vec<String> = v
                    .get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default();
                if keys.is_empty() {
                    ListType::Atomic
                } else {
                    ListType::Map(keys)
                }
            }
            Some("set") => ListType::Set,
            Some(_) => ListType::Atomic,
            None => match v
                .get("x-kubernetes-patch-merge-key")
                .and_then(Value::as_str)
            {
                Some(k) => ListType::Map(vec![k.to_string()]),
                None => ListType::Atomic,
            },
        }
    }

    pub fn is_atomic_map(self) -> bool {
        self.v()
            .and_then(|v| v.get("x-kubernetes-map-type"))
            .and_then(Value::as_str)
            == Some("atomic")
    }

    fn types(self) -> Vec<&'a str> {
        let Some(v) = self.v() else {
            return vec![];
        };
        if v.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true)
            || v.get("oneOf").is_some()
            || v.get("anyOf").is_some()
        {
            return vec![];
        }
        match v.get("type") {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        }
    }
}

/// The ObjectMeta schema (for `metadata` of CRDs too).
pub fn object_meta<'a>() -> Node<'a> {
    Node(builtin().and_then(|b| {
        b.defs
            .get("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
    }))
}

/// The schema of top-level field `name` of an object of this schema.
pub fn top_field<'a>(root: Node<'a>, name: &str) -> Option<Node<'a>> {
    if name == "metadata" {
        let m = object_meta();
        if m.is_typed() {
            return Some(m);
        }
    }
    root.field(name)
}

/// Errors of a typed conversion, as the apply path words them
/// (`.spec.template.bogusField: field not declared in schema`).
pub fn typed_errors(root: Node<'_>, obj: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    if let Value::Object(m) = obj {
        for (k, v) in m {
            if k == "apiVersion" || k == "kind" {
                continue;
            }
            let path = format!(".{k}");
            match top_field(root, k) {
                Some(n) => walk(n, v, &path, &mut errs),
                None => errs.push(format!("{path}: field not declared in schema")),
            }
        }
    }
    errs
}

fn walk(node: Node<'_>, v: &Value, path: &str, errs: &mut Vec<String>) {
    if !node.is_typed() || v.is_null() {
        return;
    }
    let types = node.types();
    let ok = |t: &str| types.is_empty() || types.contains(&t);
    match v {
        Value::Object(m) => {
            if !ok("object") {
                errs.push(format!("{path}: expected {}, got map", types.join(" or ")));
                return;
            }
            for (k, child) in m {
                let p = format!("{path}.{k}");
                match node.field(k) {
                    Some(n) => walk(n, child, &p, errs),
                    None => errs.push(format!("{p}: field not declared in schema")),
                }
            }
        }
        Value::Array(items) => {
            if !ok("array") {
                errs.push(format!("{path}: expected {}, got list", types.join(" or ")));
                return;
            }
            let it = node.items();
            let lt = node.list_type();
            for (i, item) in items.iter().enumerate() {
                let p = match (&lt, item) {
                    (ListType::Map(keys), Value::Object(o)) => {
                        let parts: Vec<String> = keys
                            .iter()
                            .filter_map(|k| o.get(k).map(|kv| format!("{k}={kv}")))
                            .collect();
                        format!("{path}[{}]", parts.join(","))
                    }
                    _ => format!("{path}[{i}]"),
                };
                walk(it, item, &p, errs);
            }
        }
        Value::String(_) => {
            if !ok("string") {
                errs.push(format!(
                    "{path}: expected {}, got string",
                    expected_word(&types)
                ));
            }
        }
        Value::Bool(_) => {
            if !ok("boolean") {
                errs.push(format!(
                    "{path}: expected {}, got bool",
                    expected_word(&types)
                ));
            }
        }
        Value::Number(n) => {
            let int_ok = ok("integer") && (n.is_i64() || n.is_u64());
            if !(ok("number") || int_ok) {
                errs.push(format!(
                    "{path}: expected {}, got number",
                    expected_word(&types)
                ));
            }
        }
        Value::Null => {}
    }
}

fn expected_word(types: &[&str]) -> String {
    let t: Vec<&str> = types.iter().copied().filter(|t| *t != "null").collect();
    match t.as_slice() {
        ["integer"] | ["number"] => "numeric (int or float)".into(),
        ["object"] => "map".into(),
        ["array"] => "list".into(),
        ["boolean"] => "bool".into(),
        other => other.join(" or "),
    }
}

/// Structural defaulting of CRD schemas: `default` of absent properties of
/// present objects.
pub fn crd_defaults(node: Node<'_>, v: &mut Value) {
    let Some(schema) = node.v() else {
        return;
    };
    match v {
        Value::Object(m) => {
            if let Some(Value::Object(props)) = schema.get("properties") {
                for (k, p) in props {
                    if !m.contains_key(k)
                        && let Some(d) = p.get("default")
                    {
                        m.insert(k.clone(), d.clone());
                    }
                }
            }
            for (k, child) in m.iter_mut() {
                if let Some(n) = node.field(k) {
                    crd_defaults(n, child);
                }
            }
        }
        Value::Array(items) => {
            let it = node.items();
            for item in items {
                crd_defaults(it, item);
            }
        }
        _ => {}
    }
}
