//! Every object stateplan renders — for every example blueprint, the
//! platform-team override and the starter blueprint of every engine — is
//! valid against the strict Kubernetes v1.33 and CRD schemas (unknown fields
//! are errors).

mod support;

use std::path::Path;
use std::sync::LazyLock;

use stateplan::pipeline;
use stateplan::render::strict;
use support::schema::{self, Validator};

static VALIDATOR: LazyLock<Validator> = LazyLock::new(Validator::load);

fn validate_blueprint(path: &str, templates: Option<&Path>) -> usize {
    let loaded = match pipeline::load(path, templates) {
        Ok(l) => l,
        Err(d) => panic!("{path} does not render:\n{}", d.render(false)),
    };
    let mut failures = Vec::new();
    for o in &loaded.rendered.objects {
        let result = VALIDATOR.validate(&o.body);
        // What stateplan checks at render time says the same.
        assert_eq!(embedded().validate(&o.body), result, "{}", o.key());
        if let Err(errors) = result {
            failures.push(format!("{} ({path}):\n  {}", o.key(), errors.join("\n  ")));
        }
    }
    assert!(
        failures.is_empty(),
        "schema violations:\n{}",
        failures.join("\n")
    );
    loaded.rendered.objects.len()
}

fn embedded() -> &'static strict::Validator {
    strict::Validator::embedded().expect("the embedded schema bundle loads")
}

/// Every (apiVersion, kind) a rendered object may have.
const RENDERED_KINDS: [(&str, &str); 10] = [
    ("v1", "Namespace"),
    ("storage.k8s.io/v1", "StorageClass"),
    ("v1", "ServiceAccount"),
    ("external-secrets.io/v1", "SecretStore"),
    ("external-secrets.io/v1", "ExternalSecret"),
    ("v1", "ConfigMap"),
    ("v1", "Service"),
    ("policy/v1", "PodDisruptionBudget"),
    ("apps/v1", "StatefulSet"),
    ("velero.io/v1", "Schedule"),
];

/// The schemas stateplan embeds (`src/render/schemas/bundle.json`) are
/// exactly what the upstream files in `tests/schemas` reduce to. After
/// refreshing those, run `UPDATE_SCHEMAS=1 cargo test --test
/// schema_validation` and review the diff.
#[test]
fn the_embedded_bundle_is_derived_from_the_upstream_schemas() {
    let bundle = schema::embedded_bundle(&schema::schemas_dir(), &RENDERED_KINDS)
        .unwrap_or_else(|e| panic!("{e}"));
    let expected = serde_json::to_string_pretty(&bundle.to_json()).expect("serializes") + "\n";
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/render/schemas/bundle.json");
    if std::env::var_os("UPDATE_SCHEMAS").is_some() {
        std::fs::write(&path, &expected).expect("write bundle.json");
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "{} differs from the reduced upstream schemas; run UPDATE_SCHEMAS=1 cargo test --test schema_validation and review the diff",
        path.display()
    );
    let kinds: Vec<(String, String)> = RENDERED_KINDS
        .iter()
        .map(|(a, k)| (a.to_string(), k.to_string()))
        .collect();
    let mut sorted = kinds.clone();
    sorted.sort();
    assert_eq!(embedded().kinds(), sorted);
}

#[test]
fn example_blueprints_render_schema_valid_objects() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("blueprints");
    let mut total = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("blueprints/")
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        total += validate_blueprint(&p.to_string_lossy(), None);
    }
    assert!(total > 80, "only {total} objects validated");
}

#[test]
fn platform_override_renders_schema_valid_objects() {
    let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/platform-templates");
    validate_blueprint("tests/platform-blueprint.toml", Some(&templates));
}

#[test]
fn every_kind_we_render_is_covered() {
    let loaded = pipeline::load("blueprints/design-example.toml", None).expect("renders");
    let mut kinds: Vec<&str> = loaded
        .rendered
        .objects
        .iter()
        .map(|o| o.kind.as_str())
        .collect();
    kinds.sort();
    kinds.dedup();
    assert_eq!(
        kinds,
        [
            "ConfigMap",
            "ExternalSecret",
            "Namespace",
            "PodDisruptionBudget",
            "Schedule",
            "SecretStore",
            "Service",
            "ServiceAccount",
            "StatefulSet",
            "StorageClass"
        ]
    );
}
