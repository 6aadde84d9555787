//! Strict schema validation of rendered manifests against the upstream
//! schema files in `tests/schemas/`, for integration tests.
//!
//! Include it from a test crate with
//! `#[path = "support/schema.rs"] mod schema;` and build one [`Validator`]
//! per test binary (e.g. in a `static LazyLock`).
//!
//! The validating is stateplan's own ([`stateplan::render::strict`]); the data
//! is not: here it is the upstream files, copied verbatim (see
//! `tests/schemas/README.md`), not the reduced bundle stateplan embeds:
//!
//! * built-in kinds: the Kubernetes v1.33 *strict* JSON Schemas
//!   (`additionalProperties: false` everywhere), whose `$ref`s to
//!   `/api/_definitions.json` resolve to the local `_definitions.json`;
//! * custom resources: the `openAPIV3Schema` of the CRD version, made strict
//!   the way the API server does with `fieldValidation=Strict` (see
//!   [`stateplan::render::strict::strictify`]), with `apiVersion`/`kind` pinned and `metadata` checked
//!   against `ObjectMeta`.
//!
//! [`embedded_bundle`] computes, from the same files, the bundle stateplan
//! embeds (`src/render/schemas/bundle.json`).
//!
//! Errors are `"<JSON pointer>: <message>"`, one per violation; an unknown
//! field is reported at its own path, e.g.
//! `/spec/template/spec/bogus: unknown field "bogus" (not declared in schema)`.

// Each test crate includes this module and uses a different part of it.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use stateplan::render::strict::{self, Bundle};

const KUBE_DIR: &str = "kubernetes/v1.33-strict";
const CRD_DIR: &str = "crds";
/// `$defs` key of `metav1.ObjectMeta`, which the CRD kinds reference.
const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

/// Validates Kubernetes manifests against the upstream strict schemas.
pub struct Validator(strict::Validator);

impl Validator {
    /// Loads the schemas under `tests/schemas` of this crate.
    ///
    /// # Panics
    ///
    /// If the schema files are missing or malformed (run `tests/schemas/refresh.sh`).
    pub fn load() -> Validator {
        Self::try_load(&schemas_dir()).unwrap_or_else(|e| panic!("schema harness: {e}"))
    }

    /// Loads the schemas under `dir` (which holds `kubernetes/v1.33-strict/` and `crds/`).
    pub fn try_load(dir: &Path) -> Result<Validator, String> {
        strict::Validator::new(upstream_bundle(dir)?).map(Validator)
    }

    /// Validates one manifest (its `apiVersion`/`kind` pick the schema).
    ///
    /// `Err` lists every violation as `"path: message"` (path is a JSON pointer,
    /// `/` for the object itself). An apiVersion/kind without a schema is an error.
    pub fn validate(&self, manifest: &Value) -> Result<(), Vec<String>> {
        self.0.validate(manifest)
    }

    /// Panics with every violation (and the object's identity) if `manifest` is invalid.
    #[track_caller]
    pub fn assert_valid(&self, manifest: &Value) {
        if let Err(errors) = self.validate(manifest) {
            let name = |f: &str| manifest.get(f).and_then(Value::as_str).unwrap_or("?");
            let object = manifest
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("?");
            let mut message = format!(
                "{} {} {object:?} does not match its schema:",
                name("apiVersion"),
                name("kind")
            );
            for error in errors {
                let _ = write!(message, "\n  {error}");
            }
            panic!("{message}");
        }
    }
}

/// `tests/schemas` of this crate.
pub fn schemas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemas")
}

/// Every schema file under `dir`, as they are.
pub fn upstream_bundle(dir: &Path) -> Result<Bundle, String> {
    let kube_dir = dir.join(KUBE_DIR);
    let definitions = read_json(&kube_dir.join("_definitions.json"))?;
    let mut kinds = Vec::new();
    for path in list(&kube_dir, "json")? {
        if path.file_name().is_none_or(|n| n != "_definitions.json") {
            kinds.push(read_json(&path)?);
        }
    }
    let mut crds = Vec::new();
    for path in list(&dir.join(CRD_DIR), "yaml")? {
        let text = read(&path)?;
        crds.push(
            serde_saphyr::from_str::<Value>(&text)
                .map_err(|e| format!("{}: invalid YAML: {e}", path.display()))?,
        );
    }
    Ok(Bundle {
        definitions,
        kinds,
        crds,
    })
}

/// The bundle stateplan embeds, computed from the upstream files under
/// `dir`: the schemas of the kinds stateplan renders (`kinds`, as
/// `(apiVersion, kind)`), the definitions they reach and only the served
/// versions of the CRDs. Descriptions are dropped: they are most of the
/// bytes and no part of validating.
pub fn embedded_bundle(dir: &Path, kinds: &[(&str, &str)]) -> Result<Bundle, String> {
    let all = upstream_bundle(dir)?;
    let wanted = |group: &str, version: &str, kind: &str| {
        let api_version = if group.is_empty() {
            version.to_owned()
        } else {
            format!("{group}/{version}")
        };
        kinds.contains(&(api_version.as_str(), kind))
    };
    let gvk_wanted = |schema: &Value| {
        schema
            .get("x-kubernetes-group-version-kind")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|g| {
                let f = |n: &str| g.get(n).and_then(Value::as_str).unwrap_or("");
                wanted(f("group"), f("version"), f("kind"))
            })
    };
    let mut out_kinds: Vec<Value> = all.kinds.into_iter().filter(gvk_wanted).collect();
    out_kinds.iter_mut().for_each(strip_descriptions);

    let mut crds = Vec::new();
    for mut crd in all.crds {
        let group = crd
            .pointer("/spec/group")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let kind = crd
            .pointer("/spec/names/kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let Some(Value::Array(versions)) = crd.pointer_mut("/spec/versions") else {
            continue;
        };
        versions.retain(|v| {
            v.get("served") == Some(&Value::Bool(true))
                && v.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| wanted(&group, n, &kind))
        });
        for v in versions.iter_mut() {
            if let Some(schema) = v.pointer_mut("/schema/openAPIV3Schema") {
                strip_descriptions(schema);
            }
        }
        if !versions.is_empty() {
            crds.push(crd);
        }
    }

    // The definitions the kinds reach, following `$ref`s.
    let defs = all
        .definitions
        .get("$defs")
        .and_then(Value::as_object)
        .ok_or("_definitions.json has no $defs")?;
    let mut reached = BTreeSet::new();
    let mut todo: Vec<String> = vec![OBJECT_META.to_owned()];
    for k in &out_kinds {
        refs(k, &mut todo);
    }
    while let Some(name) = todo.pop() {
        if reached.insert(name.clone()) {
            let def = defs
                .get(&name)
                .ok_or_else(|| format!("no definition {name}"))?;
            refs(def, &mut todo);
        }
    }
    let mut kept = Map::new();
    for name in reached {
        let mut def = defs[&name].clone();
        strip_descriptions(&mut def);
        kept.insert(name, def);
    }
    let mut definitions = all.definitions.clone();
    definitions["$defs"] = Value::Object(kept);
    Ok(Bundle {
        definitions,
        kinds: out_kinds,
        crds,
    })
}

/// The `$defs` names `v` refers to.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref")
                && let Some((_, name)) = r.split_once("#/$defs/")
            {
                out.push(name.to_owned());
            }
            map.values().for_each(|c| refs(c, out));
        }
        Value::Array(items) => items.iter().for_each(|c| refs(c, out)),
        _ => {}
    }
}

/// Drops the `description` keyword of every schema node. Only schema
/// positions are walked, so a property (or a default value) that happens to
/// be called `description` stays.
fn strip_descriptions(schema: &mut Value) {
    let Some(node) = schema.as_object_mut() else {
        return;
    };
    if node.get("description").is_some_and(Value::is_string) {
        node.remove("description");
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(child) = node.get_mut(key) {
            strip_descriptions(child);
        }
    }
    for key in ["properties", "patternProperties", "$defs"] {
        if let Some(Value::Object(children)) = node.get_mut(key) {
            children.values_mut().for_each(strip_descriptions);
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = node.get_mut(key) {
            branches.iter_mut().for_each(strip_descriptions);
        }
    }
}

fn read(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read {}: {e} (run tests/schemas/refresh.sh?)",
            path.display()
        )
    })
}

fn read_json(path: &Path) -> Result<Value, String> {
    serde_json::from_str(&read(path)?).map_err(|e| format!("{}: invalid JSON: {e}", path.display()))
}

/// Files in `dir` with extension `ext`, sorted.
fn list(dir: &Path, ext: &str) -> Result<Vec<PathBuf>, String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
            .path();
        if path.extension().is_some_and(|e| e == ext) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}
