//! Strict schema validation of rendered manifests, for integration tests.
//!
//! Include it from a test crate with
//! `#[path = "support/schema.rs"] mod schema;` and build one [`Validator`]
//! per test binary (e.g. in a `static LazyLock`); it is `Sync`, and compiles
//! the schema of each kind once, on first use.
//!
//! Schemas live in `tests/schemas/` (see the README there for provenance):
//!
//! * built-in kinds: the Kubernetes v1.33 *strict* JSON Schemas
//!   (`additionalProperties: false` everywhere), whose `$ref`s to
//!   `/api/_definitions.json` resolve to the local `_definitions.json`;
//! * custom resources: the `openAPIV3Schema` of the CRD version, made strict
//!   the way the API server does with `fieldValidation=Strict` (see
//!   [`strictify`]), with `apiVersion`/`kind` pinned and `metadata` checked
//!   against `ObjectMeta`.
//!
//! Not checked (the API server does these, a schema cannot): CEL rules
//! (`x-kubernetes-validations`), `format`s (e.g. `int32`, `date-time`),
//! list-type/map-type uniqueness, defaulting. CRD fields that are not
//! `nullable: true` reject `null` (the API server would silently prune it; a
//! renderer should not emit it).
//!
//! Errors are `"<JSON pointer>: <message>"`, one per violation; an unknown
//! field is reported at its own path, e.g.
//! `/spec/template/spec/bogus: unknown field "bogus" (not declared in schema)`.

// Each test crate includes this module and uses a different part of it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use serde_json::{Map, Value, json};

/// Where `/api/_definitions.json` resolves from the Kubernetes schemas' `$id`s
/// (`https://kubernetes.io/api/<kind>/...`); `_definitions.json` carries this `$id`.
const DEFINITIONS_URI: &str = "https://kubernetes.io/api/_definitions.json";
/// `$defs` key of `metav1.ObjectMeta` in `_definitions.json`.
const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";
const KUBE_DIR: &str = "kubernetes/v1.33-strict";
const CRD_DIR: &str = "crds";
/// Longest message kept per violation (some messages embed the whole instance).
const MAX_MESSAGE: usize = 400;

type Key = (String, String);
type Compiled = Arc<OnceLock<Result<jsonschema::Validator, String>>>;

/// Validates Kubernetes manifests against strict schemas. Build once, reuse.
pub struct Validator {
    /// `_definitions.json`, indexed once and shared by every compiled kind.
    registry: jsonschema::Registry<'static>,
    /// (apiVersion, kind) → top-level schema of a built-in kind.
    kube: HashMap<Key, Value>,
    /// CRD files, parsed on first use.
    crds: Vec<CrdFile>,
    /// (apiVersion, kind) → compiled validator (or why it could not be built).
    compiled: Mutex<HashMap<Key, Compiled>>,
}

struct CrdFile {
    path: PathBuf,
    /// API group, from the file name `<group>_<plural>.yaml`.
    group: String,
    plural: String,
    parsed: OnceLock<Result<Value, String>>,
}

impl CrdFile {
    fn parsed(&self) -> Result<&Value, String> {
        self.parsed
            .get_or_init(|| {
                let text = read(&self.path)?;
                serde_saphyr::from_str::<Value>(&text)
                    .map_err(|e| format!("{}: invalid YAML: {e}", self.path.display()))
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl Validator {
    /// Loads the schemas under `tests/schemas` of this crate.
    ///
    /// # Panics
    ///
    /// If the schema files are missing or malformed (run `tests/schemas/refresh.sh`).
    pub fn load() -> Validator {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemas");
        Self::try_load(&dir).unwrap_or_else(|e| panic!("schema harness: {e}"))
    }

    /// Loads the schemas under `dir` (which holds `kubernetes/v1.33-strict/` and `crds/`).
    pub fn try_load(dir: &Path) -> Result<Validator, String> {
        let kube_dir = dir.join(KUBE_DIR);
        let definitions_path = kube_dir.join("_definitions.json");
        let definitions = read_json(&definitions_path)?;
        let registry = jsonschema::Registry::new()
            .draft(jsonschema::Draft::Draft202012)
            .add(DEFINITIONS_URI, definitions)
            .and_then(|builder| builder.prepare())
            .map_err(|e| format!("{}: {e}", definitions_path.display()))?;

        let mut kube = HashMap::new();
        for path in list(&kube_dir, "json")? {
            if path.file_name().is_some_and(|n| n == "_definitions.json") {
                continue;
            }
            let schema = read_json(&path)?;
            let gvks = schema
                .get("x-kubernetes-group-version-kind")
                .and_then(Value::as_array)
                .ok_or_else(|| format!("{}: no x-kubernetes-group-version-kind", path.display()))?;
            for gvk in gvks {
                let field = |name: &str| gvk.get(name).and_then(Value::as_str).unwrap_or("");
                let (group, version, kind) = (field("group"), field("version"), field("kind"));
                if version.is_empty() || kind.is_empty() {
                    return Err(format!("{}: malformed group-version-kind", path.display()));
                }
                kube.insert(
                    (api_version(group, version), kind.to_owned()),
                    schema.clone(),
                );
            }
        }

        let mut crds = Vec::new();
        for path in list(&dir.join(CRD_DIR), "yaml")? {
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            let (group, plural) = stem
                .split_once('_')
                .ok_or_else(|| format!("{}: expected <group>_<plural>.yaml", path.display()))?;
            crds.push(CrdFile {
                group: group.to_owned(),
                plural: plural.to_owned(),
                path,
                parsed: OnceLock::new(),
            });
        }

        Ok(Validator {
            registry,
            kube,
            crds,
            compiled: Mutex::new(HashMap::new()),
        })
    }

    /// Validates one manifest (its `apiVersion`/`kind` pick the schema).
    ///
    /// `Err` lists every violation as `"path: message"` (path is a JSON pointer,
    /// `/` for the object itself). An apiVersion/kind without a schema is an error.
    pub fn validate(&self, manifest: &Value) -> Result<(), Vec<String>> {
        let field = |name: &str| manifest.get(name).and_then(Value::as_str);
        let (Some(api_version), Some(kind)) = (field("apiVersion"), field("kind")) else {
            return Err(vec![
                "/: manifest has no string apiVersion and kind; cannot pick a schema".to_owned(),
            ]);
        };
        let cell = self.cell(api_version, kind);
        let validator = cell
            .get_or_init(|| self.compile(api_version, kind))
            .as_ref()
            .map_err(|e| vec![format!("/: {e}")])?;
        let mut errors: Vec<String> = Vec::new();
        for error in validator.iter_errors(manifest) {
            for line in describe(&error) {
                if !errors.contains(&line) {
                    errors.push(line);
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
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

    /// The (apiVersion, kind) pairs that have a schema, sorted.
    pub fn kinds(&self) -> Vec<Key> {
        let mut kinds: Vec<Key> = self.kube.keys().cloned().collect();
        for crd in &self.crds {
            if let Ok(parsed) = crd.parsed() {
                let kind = str_at(parsed, "/spec/names/kind").unwrap_or("?");
                for version in parsed
                    .pointer("/spec/versions")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(v) = version.get("name").and_then(Value::as_str) {
                        kinds.push((api_version(&crd.group, v), kind.to_owned()));
                    }
                }
            }
        }
        kinds.sort();
        kinds
    }

    /// The cache cell of a kind's compiled validator. The map is locked only to
    /// find the cell; the cell compiles once, even when several test threads ask
    /// at the same time, without blocking the threads validating other kinds.
    fn cell(&self, api_version: &str, kind: &str) -> Compiled {
        let mut map = self.compiled.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(
            map.entry((api_version.to_owned(), kind.to_owned()))
                .or_default(),
        )
    }

    fn compile(&self, api_version: &str, kind: &str) -> Result<jsonschema::Validator, String> {
        let schema = self.schema(api_version, kind)?;
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .with_registry(&self.registry)
            .build(&schema)
            .map_err(|e| format!("schema of {api_version} {kind} does not compile: {e}"))
    }

    /// The schema for (apiVersion, kind): a built-in kind, else a CRD version.
    fn schema(&self, api_version: &str, kind: &str) -> Result<Value, String> {
        if let Some(schema) = self.kube.get(&(api_version.to_owned(), kind.to_owned())) {
            return Ok(schema.clone());
        }
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        // The file whose plural matches the kind first: parse as few big CRDs as possible.
        let guess = format!("{}s", kind.to_lowercase());
        let mut candidates: Vec<&CrdFile> = self.crds.iter().filter(|c| c.group == group).collect();
        candidates.sort_by_key(|c| c.plural != guess);
        for crd in candidates {
            let parsed = crd.parsed()?;
            if str_at(parsed, "/spec/group") == Some(group)
                && str_at(parsed, "/spec/names/kind") == Some(kind)
            {
                return crd_schema(parsed, &crd.path, api_version, version, kind);
            }
        }
        let mut known: Vec<String> = self.kube.keys().map(|(a, k)| format!("{a} {k}")).collect();
        known.sort();
        let crd_files: Vec<String> = self
            .crds
            .iter()
            .map(|c| format!("{}_{}", c.group, c.plural))
            .collect();
        Err(format!(
            "no schema for apiVersion {api_version:?} kind {kind:?} \
             (built-in: {}; CRDs: {}); add it under tests/schemas",
            known.join(", "),
            crd_files.join(", ")
        ))
    }
}

/// The strict schema of one version of a CRD, as the API server applies it with
/// `fieldValidation=Strict`.
fn crd_schema(
    crd: &Value,
    path: &Path,
    api_version: &str,
    version: &str,
    kind: &str,
) -> Result<Value, String> {
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{}: no spec.versions", path.display()))?;
    let names: Vec<&str> = versions
        .iter()
        .filter_map(|v| v.get("name").and_then(Value::as_str))
        .collect();
    let entry = versions
        .iter()
        .find(|v| v.get("name").and_then(Value::as_str) == Some(version))
        .ok_or_else(|| {
            format!(
                "{kind} has no version {version:?} (CRD {} has {})",
                path.display(),
                names.join(", ")
            )
        })?;
    if entry.get("served").and_then(Value::as_bool) != Some(true) {
        return Err(format!(
            "{api_version} {kind} is not served by the API server (served: false in {})",
            path.display()
        ));
    }
    let mut schema = entry
        .pointer("/schema/openAPIV3Schema")
        .cloned()
        .ok_or_else(|| format!("{}: {version} has no openAPIV3Schema", path.display()))?;
    strictify(&mut schema);
    let root = schema
        .as_object_mut()
        .ok_or_else(|| format!("{}: openAPIV3Schema is not an object", path.display()))?;
    let properties = root
        .entry("properties")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or_else(|| format!("{}: properties is not an object", path.display()))?;
    properties.insert(
        "apiVersion".into(),
        json!({"type": "string", "enum": [api_version]}),
    );
    properties.insert("kind".into(), json!({"type": "string", "enum": [kind]}));
    properties.insert("metadata".into(), object_meta_ref());
    root.insert("additionalProperties".into(), Value::Bool(false));
    root.insert("$schema".into(), json!(DRAFT_2020_12));
    root.insert(
        "$id".into(),
        json!(format!("https://kubernetes.io/apis/{api_version}/{kind}")),
    );
    Ok(schema)
}

fn object_meta_ref() -> Value {
    json!({"$ref": format!("{DEFINITIONS_URI}#/$defs/{OBJECT_META}")})
}

/// Makes a structural (OpenAPI v3) CRD schema behave like the API server with
/// `fieldValidation=Strict`, in JSON Schema 2020-12 terms:
///
/// * an object schema without `additionalProperties` and without
///   `x-kubernetes-preserve-unknown-fields: true` gets `additionalProperties: false`
///   (the server prunes, i.e. under Strict rejects, fields its schema does not declare);
/// * `x-kubernetes-int-or-string: true` accepts an integer or a string;
/// * `nullable: true` also accepts `null`;
/// * `x-kubernetes-embedded-resource: true` declares `apiVersion`, `kind`, `metadata`.
///
/// Only the structural part (`properties`, `items`, `additionalProperties`) is made
/// strict; `allOf`/`anyOf`/`oneOf`/`not` branches only get the type fixes, since
/// in a structural schema they merely restrict fields declared outside them.
pub fn strictify(schema: &mut Value) {
    walk(schema, true);
}

fn walk(schema: &mut Value, structural: bool) {
    let Some(node) = schema.as_object_mut() else {
        return;
    };
    let flag = |node: &Map<String, Value>, name: &str| node.get(name) == Some(&Value::Bool(true));

    if flag(node, "x-kubernetes-int-or-string") && !node.contains_key("type") {
        node.insert("type".into(), json!(["integer", "string"]));
    }
    if flag(node, "nullable") {
        match node.get_mut("type") {
            Some(Value::String(t)) => {
                let t = std::mem::take(t);
                node.insert("type".into(), json!([t, "null"]));
            }
            Some(Value::Array(types)) if !types.contains(&json!("null")) => {
                types.push(json!("null"));
            }
            _ => {}
        }
    }
    if structural {
        if flag(node, "x-kubernetes-embedded-resource") {
            let properties = node.entry("properties").or_insert_with(|| json!({}));
            if let Some(properties) = properties.as_object_mut() {
                for name in ["apiVersion", "kind"] {
                    properties
                        .entry(name)
                        .or_insert_with(|| json!({"type": "string"}));
                }
                properties.entry("metadata").or_insert_with(object_meta_ref);
            }
        }
        let is_object = node.contains_key("properties")
            || node.get("type") == Some(&json!("object"))
            || node
                .get("type")
                .and_then(Value::as_array)
                .is_some_and(|t| t.contains(&json!("object")));
        if is_object
            && !node.contains_key("additionalProperties")
            && !flag(node, "x-kubernetes-preserve-unknown-fields")
        {
            node.insert("additionalProperties".into(), Value::Bool(false));
        }
    }

    if let Some(Value::Object(properties)) = node.get_mut("properties") {
        for property in properties.values_mut() {
            walk(property, structural);
        }
    }
    for name in ["items", "additionalProperties", "not"] {
        if let Some(child) = node.get_mut(name) {
            walk(child, structural && name != "not");
        }
    }
    for name in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = node.get_mut(name) {
            for branch in branches {
                walk(branch, false);
            }
        }
    }
}

/// One line per violation; an unknown field is reported at its own path.
fn describe(error: &jsonschema::ValidationError<'_>) -> Vec<String> {
    let path = error.instance_path().as_str();
    if let jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } =
        error.kind()
    {
        return unexpected
            .iter()
            .map(|field| {
                let escaped = field.replace('~', "~0").replace('/', "~1");
                format!("{path}/{escaped}: unknown field {field:?} (not declared in schema)")
            })
            .collect();
    }
    let mut message = error.to_string();
    if message.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    let path = if path.is_empty() { "/" } else { path };
    vec![format!("{path}: {message}")]
}

fn api_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    }
}

fn str_at<'v>(value: &'v Value, pointer: &str) -> Option<&'v str> {
    value.pointer(pointer).and_then(Value::as_str)
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
