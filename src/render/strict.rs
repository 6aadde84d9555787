//! Strict schema validation of rendered objects: what the API server would
//! reject with `fieldValidation=Strict` (an unknown or misspelt field, a
//! wrong type, a missing required field), found offline.
//!
//! The schemas are data. [`Validator::embedded`] reads `schemas/bundle.json`:
//! the Kubernetes 1.33 JSON Schemas (strict variant) of the kinds stateplan
//! renders with the definitions they reference, and the served versions of
//! the External Secrets and Velero CRDs. `schemas/README.md` says where they
//! come from; a test checks that the bundle is exactly what those upstream
//! files reduce to.
//!
//! The built-in templates are validated against the full upstream schemas by
//! the test suite. At render time every object is validated when a platform
//! team's templates are in use, the one source of objects the test suite has
//! not seen.
//!
//! Not checked (the API server does these, a schema cannot): CEL rules
//! (`x-kubernetes-validations`), `format`s (e.g. `int32`), list-type and
//! map-type uniqueness.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, OnceLock};

use crate::parallel::OnceMap;

use serde_json::{Map, Value, json};

/// The Kubernetes version whose schemas the bundle holds.
pub const KUBERNETES_VERSION: &str = "1.33";

/// Where `/api/_definitions.json` resolves from the Kubernetes schemas' `$id`s
/// (`https://kubernetes.io/api/<kind>/...`); the definitions carry this `$id`.
const DEFINITIONS_URI: &str = "https://kubernetes.io/api/_definitions.json";
/// `$defs` key of `metav1.ObjectMeta`.
const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";
/// Longest message kept per violation (some messages embed the whole value).
const MAX_MESSAGE: usize = 400;

/// The schemas a [`Validator`] is built from.
#[derive(Debug, Clone, PartialEq)]
pub struct Bundle {
    /// `_definitions.json`: `$id`, `$schema` and `$defs`, which the kind
    /// schemas `$ref`.
    pub definitions: Value,
    /// Top-level schemas of built-in kinds, each naming its kind in
    /// `x-kubernetes-group-version-kind`.
    pub kinds: Vec<Value>,
    /// CustomResourceDefinitions; each version's schema is at
    /// `spec.versions[*].schema.openAPIV3Schema`.
    pub crds: Vec<Value>,
}

impl Bundle {
    /// Reads the JSON form written by [`Bundle::to_json`].
    pub fn from_json(v: Value) -> Result<Bundle, String> {
        let Value::Object(mut map) = v else {
            return Err("schema bundle is not a JSON object".into());
        };
        let mut list = |key: &str| match map.remove(key) {
            Some(Value::Array(items)) => Ok(items),
            _ => Err(format!("schema bundle has no `{key}` list")),
        };
        let (kinds, crds) = (list("kinds")?, list("crds")?);
        let definitions = map
            .remove("definitions")
            .filter(Value::is_object)
            .ok_or("schema bundle has no `definitions` object")?;
        Ok(Bundle {
            definitions,
            kinds,
            crds,
        })
    }

    /// `{"kubernetes": "1.33", "definitions": …, "kinds": […], "crds": […]}`.
    pub fn to_json(&self) -> Value {
        json!({
            "kubernetes": KUBERNETES_VERSION,
            "definitions": self.definitions,
            "kinds": self.kinds,
            "crds": self.crds,
        })
    }
}

type Key = (String, String);
type Compiled = Arc<OnceLock<Result<jsonschema::Validator, String>>>;

/// Validates Kubernetes manifests against strict schemas. Build once and
/// share: it is `Sync`, and compiles the schema of each kind once, on first
/// use.
pub struct Validator {
    /// The definitions, indexed once and shared by every compiled kind.
    registry: jsonschema::Registry<'static>,
    /// The same definitions, to look up the fields a schema declares when
    /// suggesting one for an unknown field.
    definitions: Value,
    /// (apiVersion, kind) → top-level schema of a built-in kind.
    kube: HashMap<Key, Value>,
    crds: Vec<Value>,
    /// (apiVersion, kind) → compiled validator (or why it could not be built).
    compiled: OnceMap<Key, Result<jsonschema::Validator, String>>,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator")
            .field("kinds", &self.kinds())
            .finish_non_exhaustive()
    }
}

static EMBEDDED: LazyLock<Result<Validator, String>> = LazyLock::new(|| {
    let text = include_str!("schemas/bundle.json");
    let v = serde_json::from_str(text).map_err(|e| format!("schemas/bundle.json: {e}"))?;
    Validator::new(Bundle::from_json(v)?)
});

impl Validator {
    /// The validator of the schemas built into stateplan (read on first use).
    pub fn embedded() -> Result<&'static Validator, &'static str> {
        EMBEDDED.as_ref().map_err(String::as_str)
    }

    /// Indexes a bundle; kinds are compiled when first validated.
    pub fn new(bundle: Bundle) -> Result<Validator, String> {
        let registry = jsonschema::Registry::new()
            .draft(jsonschema::Draft::Draft202012)
            .add(DEFINITIONS_URI, bundle.definitions.clone())
            .and_then(|builder| builder.prepare())
            .map_err(|e| format!("schema definitions: {e}"))?;
        let mut kube = HashMap::new();
        for schema in bundle.kinds {
            let gvks = schema
                .get("x-kubernetes-group-version-kind")
                .and_then(Value::as_array)
                .filter(|g| !g.is_empty())
                .ok_or("a kind schema has no x-kubernetes-group-version-kind")?;
            for gvk in gvks {
                let field = |name: &str| gvk.get(name).and_then(Value::as_str).unwrap_or("");
                let (group, version, kind) = (field("group"), field("version"), field("kind"));
                if version.is_empty() || kind.is_empty() {
                    return Err(format!("malformed group-version-kind {gvk}"));
                }
                kube.insert(
                    (api_version(group, version), kind.to_owned()),
                    schema.clone(),
                );
            }
        }
        Ok(Validator {
            registry,
            definitions: bundle.definitions,
            kube,
            crds: bundle.crds,
            compiled: OnceMap::default(),
        })
    }

    /// Validates one manifest (its `apiVersion` and `kind` pick the schema).
    ///
    /// `Err` lists every violation as `"<JSON pointer>: <message>"` (`/` for
    /// the object itself); an unknown field is reported at its own path,
    /// e.g. `/spec/bogus: unknown field "bogus" (not declared in schema)`,
    /// with the declared field it probably meant. A kind without a schema is
    /// a violation.
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
            .map_err(|e| vec![e.clone()])?;
        // Built only when a field is unknown.
        let root = std::cell::OnceCell::new();
        collect(validator, manifest, |path, field| {
            let root = root.get_or_init(|| self.schema(api_version, kind).unwrap_or_default());
            self.suggest(root, path, field)
        })
    }

    /// Validates a value against one of the Kubernetes definitions, e.g.
    /// `io.k8s.api.core.v1.Container`; violations as in [`Self::validate`],
    /// with paths inside `value`.
    pub fn validate_definition(&self, definition: &str, value: &Value) -> Result<(), Vec<String>> {
        // `$defs` is no API version, so the key cannot meet a kind's.
        let cell = self.cell("$defs", definition);
        let validator = cell
            .get_or_init(|| {
                let schema = json!({
                    "$schema": DRAFT_2020_12,
                    "$ref": format!("{DEFINITIONS_URI}#/$defs/{definition}"),
                });
                jsonschema::options()
                    .with_draft(jsonschema::Draft::Draft202012)
                    .with_registry(&self.registry)
                    .build(&schema)
                    .map_err(|e| format!("no schema for {definition}: {e}"))
            })
            .as_ref()
            .map_err(|e| vec![format!("/: {e}")])?;
        let root = json!({"$ref": format!("#/$defs/{definition}")});
        collect(validator, value, |path, field| {
            self.suggest(&root, path, field)
        })
    }

    /// A field the schema `root` declares for the object at `path` (a JSON
    /// pointer into the instance) that `field` is probably a misspelling of.
    fn suggest(&self, root: &Value, path: &str, field: &str) -> Option<String> {
        let mut node = self.resolve(root);
        for segment in path.split('/').skip(1) {
            let segment = segment.replace("~1", "/").replace("~0", "~");
            let next = node
                .get("properties")
                .and_then(|p| p.get(&segment))
                .or_else(|| segment.parse::<usize>().ok().and(node.get("items")))
                .or_else(|| node.get("additionalProperties").filter(|a| a.is_object()))?;
            node = self.resolve(next);
        }
        let declared = node.get("properties").and_then(Value::as_object)?;
        crate::blueprint::did_you_mean(field, declared.keys().map(String::as_str))
            .map(str::to_owned)
    }

    /// Follows `$ref`s to the definitions (a few levels at most).
    fn resolve<'a>(&'a self, mut node: &'a Value) -> &'a Value {
        for _ in 0..8 {
            let Some((_, name)) = node
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.split_once("#/$defs/"))
            else {
                break;
            };
            match self.definitions.get("$defs").and_then(|d| d.get(name)) {
                Some(def) => node = def,
                None => break,
            }
        }
        node
    }

    /// The (apiVersion, kind) pairs that have a schema, sorted.
    pub fn kinds(&self) -> Vec<Key> {
        let mut kinds: Vec<Key> = self.kube.keys().cloned().collect();
        for crd in &self.crds {
            let kind = str_at(crd, "/spec/names/kind").unwrap_or("?");
            let group = str_at(crd, "/spec/group").unwrap_or("?");
            for version in versions(crd) {
                if let Some(v) = version.get("name").and_then(Value::as_str) {
                    kinds.push((api_version(group, v), kind.to_owned()));
                }
            }
        }
        kinds.sort();
        kinds
    }

    /// The cache cell of a kind's compiled validator.
    fn cell(&self, api_version: &str, kind: &str) -> Compiled {
        self.compiled
            .cell((api_version.to_owned(), kind.to_owned()))
    }

    /// The kind's validator; `Err` is a violation line, as [`Self::validate`]
    /// reports it.
    fn compile(&self, api_version: &str, kind: &str) -> Result<jsonschema::Validator, String> {
        let schema = self.schema(api_version, kind)?;
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .with_registry(&self.registry)
            .build(&schema)
            .map_err(|e| format!("/: the schema of {api_version} {kind} does not compile: {e}"))
    }

    /// The schema for (apiVersion, kind): a built-in kind, else a CRD version.
    /// `Err` is a violation line pointing at the field that picked no
    /// schema: the apiVersion when the kind has a schema under another one,
    /// else the kind.
    fn schema(&self, api_version: &str, kind: &str) -> Result<Value, String> {
        if let Some(schema) = self.kube.get(&(api_version.to_owned(), kind.to_owned())) {
            return Ok(schema.clone());
        }
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        if let Some(crd) = self.crds.iter().find(|c| {
            str_at(c, "/spec/group") == Some(group) && str_at(c, "/spec/names/kind") == Some(kind)
        }) {
            return crd_schema(crd, api_version, version, kind).map_err(|e| match e {
                CrdError::Version(e) => format!("/apiVersion: {e}"),
                CrdError::Malformed(e) => format!("/: {e}"),
            });
        }
        let same_kind: Vec<String> = self
            .kinds()
            .into_iter()
            .filter(|(_, k)| k == kind)
            .map(|(a, _)| a)
            .collect();
        Err(if same_kind.is_empty() {
            format!("/kind: no schema for {api_version} {kind}")
        } else {
            format!(
                "/apiVersion: no schema for {api_version} {kind}; {kind} is {}",
                same_kind.join(" or ")
            )
        })
    }
}

fn versions(crd: &Value) -> impl Iterator<Item = &Value> {
    crd.pointer("/spec/versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// Why a CRD gives no schema for a version.
enum CrdError {
    /// The CRD has no such version, or does not serve it: the manifest's
    /// apiVersion is wrong.
    Version(String),
    /// The CRD itself is malformed.
    Malformed(String),
}

/// The strict schema of one version of a CRD, as the API server applies it
/// with `fieldValidation=Strict`.
fn crd_schema(
    crd: &Value,
    api_version: &str,
    version: &str,
    kind: &str,
) -> Result<Value, CrdError> {
    let names: Vec<&str> = versions(crd)
        .filter_map(|v| v.get("name").and_then(Value::as_str))
        .collect();
    let entry = versions(crd)
        .find(|v| v.get("name").and_then(Value::as_str) == Some(version))
        .ok_or_else(|| {
            CrdError::Version(format!(
                "{kind} has no version {version:?} (it has {})",
                names.join(", ")
            ))
        })?;
    if entry.get("served").and_then(Value::as_bool) != Some(true) {
        return Err(CrdError::Version(format!(
            "{api_version} {kind} is not served by the API server (served: false)"
        )));
    }
    let mut schema = entry
        .pointer("/schema/openAPIV3Schema")
        .cloned()
        .ok_or_else(|| format!("{api_version} {kind} has no openAPIV3Schema"))
        .map_err(CrdError::Malformed)?;
    strictify(&mut schema);
    let root = schema
        .as_object_mut()
        .ok_or_else(|| format!("the openAPIV3Schema of {api_version} {kind} is not an object"))
        .map_err(CrdError::Malformed)?;
    let properties = root
        .entry("properties")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or_else(|| format!("the properties of {api_version} {kind} are not an object"))
        .map_err(CrdError::Malformed)?;
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
/// Fields that are not `nullable: true` reject `null` (the API server would
/// silently prune it; a template should not write it).
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

/// Every violation of `value`, once each. `suggest(path, field)` names the
/// declared field an unknown one probably meant.
fn collect(
    validator: &jsonschema::Validator,
    value: &Value,
    suggest: impl Fn(&str, &str) -> Option<String>,
) -> Result<(), Vec<String>> {
    let mut errors: Vec<String> = Vec::new();
    for error in validator.iter_errors(value) {
        for line in describe(&error, &suggest) {
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

/// One line per violation; an unknown field is reported at its own path.
fn describe(
    error: &jsonschema::ValidationError<'_>,
    suggest: &impl Fn(&str, &str) -> Option<String>,
) -> Vec<String> {
    let path = error.instance_path().as_str();
    if let jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } =
        error.kind()
    {
        return unexpected
            .iter()
            .map(|field| {
                let escaped = crate::diagnostics::pointer_token(field);
                let hint = suggest(path, field)
                    .map(|s| format!("; did you mean {s:?}?"))
                    .unwrap_or_default();
                format!("{path}/{escaped}: unknown field {field:?} (not declared in schema){hint}")
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

#[cfg(test)]
mod tests {
    use super::*;

    fn service(spec: Value) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "db", "namespace": "orders"},
            "spec": spec,
        })
    }

    #[test]
    fn the_embedded_bundle_knows_every_kind_stateplan_renders() {
        let v = Validator::embedded().expect("bundle loads");
        let kinds: Vec<String> = v
            .kinds()
            .into_iter()
            .map(|(a, k)| format!("{a} {k}"))
            .collect();
        assert_eq!(
            kinds,
            [
                "apps/v1 StatefulSet",
                "external-secrets.io/v1 ExternalSecret",
                "external-secrets.io/v1 SecretStore",
                "policy/v1 PodDisruptionBudget",
                "storage.k8s.io/v1 StorageClass",
                "v1 ConfigMap",
                "v1 Namespace",
                "v1 Service",
                "v1 ServiceAccount",
                "velero.io/v1 Schedule",
            ]
        );
        // Every kind an object may have (the waves) has a schema.
        for (_, kind) in v.kinds() {
            assert!(super::super::Wave::for_kind(&kind).is_some(), "{kind}");
        }
    }

    #[test]
    fn unknown_fields_wrong_types_and_unknown_versions_are_violations() {
        let v = Validator::embedded().expect("bundle loads");
        let ok =
            service(json!({"type": "ClusterIP", "ports": [{"port": 5432, "targetPort": "pg"}]}));
        assert_eq!(v.validate(&ok), Ok(()));
        let bad = service(json!({
            "tpye": "ClusterIP",
            "ports": [{"port": "5432", "protocl": "TCP"}],
            "zzz": 1
        }));
        let errors = v.validate(&bad).expect_err("invalid");
        // A misspelt field is suggested the declared one it is closest to,
        // at any depth (through arrays and `$ref`s); a field like no other
        // gets no suggestion.
        for e in [
            r#"/spec/tpye: unknown field "tpye" (not declared in schema); did you mean "type"?"#,
            r#"/spec/ports/0/protocl: unknown field "protocl" (not declared in schema); did you mean "protocol"?"#,
            r#"/spec/zzz: unknown field "zzz" (not declared in schema)"#,
        ] {
            assert!(errors.contains(&e.to_string()), "{e} not in {errors:?}");
        }
        assert!(
            errors.iter().any(|e| e.starts_with("/spec/ports/0/port: ")),
            "{errors:?}"
        );
        let mut beta = ok.clone();
        beta["apiVersion"] = json!("v1beta1");
        assert_eq!(
            v.validate(&beta),
            Err(vec![
                "/apiVersion: no schema for v1beta1 Service; Service is v1".to_string()
            ])
        );
        // A definition on its own, e.g. a container of an engine's pod template.
        let container = json!({"name": "db", "image": "postgres:17", "imagePullPolicyy": "Always"});
        assert_eq!(
            v.validate_definition("io.k8s.api.core.v1.Container", &container),
            Err(vec![
                r#"/imagePullPolicyy: unknown field "imagePullPolicyy" (not declared in schema); did you mean "imagePullPolicy"?"#
                    .to_string()
            ])
        );
        assert!(
            v.validate_definition("io.k8s.api.core.v1.Nope", &container)
                .is_err()
        );
        // A CRD kind: strict like the API server, unknown fields rejected.
        let schedule = json!({
            "apiVersion": "velero.io/v1",
            "kind": "Schedule",
            "metadata": {"name": "s", "namespace": "velero"},
            "spec": {"schedule": "0 2 * * *", "template": {"ttl": "720h0m0s", "snapshotVolume": true}}
        });
        assert_eq!(
            v.validate(&schedule),
            Err(vec![
                r#"/spec/template/snapshotVolume: unknown field "snapshotVolume" (not declared in schema); did you mean "snapshotVolumes"?"#
                    .to_string()
            ])
        );
    }
}
