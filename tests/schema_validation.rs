//! Every object stateplan renders — for every example blueprint, the
//! platform-team override and the starter blueprint of every engine — is
//! valid against the strict Kubernetes v1.33 and CRD schemas (unknown fields
//! are errors).

mod support;

use std::path::Path;
use std::sync::LazyLock;

use stateplan::pipeline;
use support::schema::Validator;

static VALIDATOR: LazyLock<Validator> = LazyLock::new(Validator::load);

fn validate_blueprint(path: &str, templates: Option<&Path>) -> usize {
    let loaded = match pipeline::load(path, templates) {
        Ok(l) => l,
        Err(d) => panic!("{path} does not render:\n{}", d.render(false)),
    };
    let mut failures = Vec::new();
    for o in &loaded.rendered.objects {
        if let Err(errors) = VALIDATOR.validate(&o.body) {
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
