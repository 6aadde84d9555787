//! The strict schema harness (tests/support/schema.rs) can both pass and fail.

#[path = "support/schema.rs"]
mod schema;

use std::sync::LazyLock;

use schema::Validator;
use serde_json::{Value, json};

static VALIDATOR: LazyLock<Validator> = LazyLock::new(Validator::load);

/// The JSON object at the start of a fixture (recorded responses end with an
/// `HTTP <status>` line after the body).
fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/kube/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    serde_json::Deserializer::from_str(&text)
        .into_iter::<Value>()
        .next()
        .unwrap_or_else(|| panic!("{path} is empty"))
        .unwrap_or_else(|e| panic!("parse {path}: {e}"))
}

/// The errors of a manifest that must be invalid. For the kinds stateplan
/// renders, the reduced bundle it embeds finds the same errors.
fn violations(manifest: &Value) -> Vec<String> {
    match VALIDATOR.validate(manifest) {
        Ok(()) => panic!("expected schema violations, got none for:\n{manifest:#}"),
        Err(errors) => {
            let embedded = stateplan::render::strict::Validator::embedded().expect("loads");
            let key = |f: &str| {
                manifest
                    .get(f)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            if embedded.kinds().contains(&(key("apiVersion"), key("kind"))) {
                assert_eq!(embedded.validate(manifest), Err(errors.clone()));
            }
            errors
        }
    }
}

fn assert_error(errors: &[String], path: &str, fragment: &str) {
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with(&format!("{path}: ")) && e.contains(fragment)),
        "no error at {path} mentioning {fragment:?}; errors: {errors:#?}"
    );
}

fn velero_schedule() -> Value {
    json!({
        "apiVersion": "velero.io/v1",
        "kind": "Schedule",
        "metadata": {
            "name": "orders-db-daily",
            "namespace": "velero",
            "labels": {"app.kubernetes.io/managed-by": "stateplan"}
        },
        "spec": {
            "schedule": "0 2 * * *",
            "useOwnerReferencesInBackup": false,
            "template": {
                "includedNamespaces": ["orders"],
                "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "orders-db"}},
                "snapshotVolumes": true,
                "ttl": "720h0m0s",
                "metadata": {"labels": {"app.kubernetes.io/managed-by": "stateplan"}}
            }
        }
    })
}

fn secret_store() -> Value {
    json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "SecretStore",
        "metadata": {"name": "orders-db", "namespace": "orders"},
        "spec": {
            "refreshInterval": 3600,
            "provider": {
                "azurekv": {
                    "authType": "WorkloadIdentity",
                    "vaultUrl": "https://kv-data-prod.vault.azure.net",
                    "serviceAccountRef": {"name": "orders-db"}
                }
            }
        }
    })
}

fn external_secret() -> Value {
    json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": "orders-db", "namespace": "orders"},
        "spec": {
            "refreshInterval": "1h",
            "secretStoreRef": {"kind": "SecretStore", "name": "orders-db"},
            "target": {"name": "orders-db", "creationPolicy": "Owner"},
            "data": [{
                "secretKey": "superuser-password",
                "remoteRef": {"key": "orders-db-superuser-password"}
            }]
        }
    })
}

#[test]
fn statefulset_fixture_is_valid() {
    VALIDATOR.assert_valid(&fixture("request-statefulset.json"));
    // What the server answered (defaulted, with managedFields) is valid too.
    VALIDATOR.assert_valid(&fixture("ssa-dryrun-create-statefulset.json"));
}

#[test]
fn unknown_field_in_pod_spec_is_reported_at_its_path() {
    let mut sts = fixture("request-statefulset.json");
    sts["spec"]["template"]["spec"]["bogus"] = json!(true);
    let errors = violations(&sts);
    assert_eq!(
        errors,
        [r#"/spec/template/spec/bogus: unknown field "bogus" (not declared in schema)"#]
    );
}

#[test]
fn wrong_type_is_reported() {
    let mut sts = fixture("request-statefulset.json");
    sts["spec"]["replicas"] = json!("three");
    assert_error(
        &violations(&sts),
        "/spec/replicas",
        r#""three" is not of type"#,
    );
}

#[test]
fn every_violation_is_listed() {
    let mut sts = fixture("request-statefulset.json");
    sts["spec"]["replicas"] = json!("three");
    sts["metadata"]["labelz"] = json!({});
    sts["spec"]["volumeClaimTemplates"][0]["spec"]["accessModes"] = json!("ReadWriteOnce");
    let errors = violations(&sts);
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert_error(&errors, "/metadata/labelz", "unknown field");
    assert_error(&errors, "/spec/replicas", "not of type");
    assert_error(
        &errors,
        "/spec/volumeClaimTemplates/0/spec/accessModes",
        "not of type",
    );
}

#[test]
fn velero_schedule_is_valid() {
    VALIDATOR.assert_valid(&velero_schedule());
    // The object a real API server accepted (server-set metadata included).
    VALIDATOR.assert_valid(&fixture("ssa-dryrun-create-velero-schedule.json"));
}

#[test]
fn velero_schedule_unknown_field_is_rejected_like_the_api_server() {
    // Mirrors fixtures ssa-dryrun-crd-unknown-field-strict.txt:
    // ".spec.template.bogusField: field not declared in schema".
    let mut schedule = velero_schedule();
    schedule["spec"]["template"]["bogusField"] = json!("x");
    assert_eq!(
        violations(&schedule),
        [r#"/spec/template/bogusField: unknown field "bogusField" (not declared in schema)"#]
    );
}

#[test]
fn crd_metadata_is_checked_as_object_meta() {
    let mut schedule = velero_schedule();
    schedule["metadata"]["labelz"] = json!({"a": "b"});
    schedule["metadata"]["labels"]["n"] = json!(3);
    let errors = violations(&schedule);
    assert_error(&errors, "/metadata/labelz", "unknown field");
    assert_error(&errors, "/metadata/labels/n", "not of type");
}

#[test]
fn crd_apiversion_and_kind_are_pinned_and_required_fields_enforced() {
    let mut schedule = velero_schedule();
    schedule["spec"]
        .as_object_mut()
        .expect("spec")
        .remove("schedule");
    assert_error(
        &violations(&schedule),
        "/spec",
        r#""schedule" is a required property"#,
    );
}

#[test]
fn external_secrets_azure_key_vault_workload_identity_is_valid() {
    VALIDATOR.assert_valid(&secret_store());
    VALIDATOR.assert_valid(&external_secret());
}

#[test]
fn secret_store_typo_is_rejected() {
    let mut store = secret_store();
    let azurekv = store["spec"]["provider"]["azurekv"]
        .as_object_mut()
        .expect("azurekv");
    let url = azurekv.remove("vaultUrl").expect("vaultUrl");
    azurekv.insert("vaultURL".into(), url);
    let errors = violations(&store);
    assert_error(
        &errors,
        "/spec/provider/azurekv/vaultURL",
        "unknown field \"vaultURL\"",
    );
    assert_error(
        &errors,
        "/spec/provider/azurekv",
        "\"vaultUrl\" is a required",
    );

    let mut store = secret_store();
    store["spec"]["provider"]["azurekv"]["authType"] = json!("WorkloadIdentities");
    assert_error(
        &violations(&store),
        "/spec/provider/azurekv/authType",
        "WorkloadIdentity",
    );
}

#[test]
fn external_secret_typo_is_rejected() {
    let mut secret = external_secret();
    secret["spec"]["secretStoreRef"]["nmae"] = json!("orders-db");
    assert_error(
        &violations(&secret),
        "/spec/secretStoreRef/nmae",
        "unknown field \"nmae\"",
    );
}

#[test]
fn crd_int_or_string_accepts_both_and_nothing_else() {
    let mut store = secret_store();
    store["spec"]["refreshInterval"] = json!("1h");
    VALIDATOR.assert_valid(&store);
    store["spec"]["refreshInterval"] = json!(true);
    assert_error(&violations(&store), "/spec/refreshInterval", "not of type");
}

#[test]
fn unserved_crd_version_is_an_error() {
    let mut store = secret_store();
    store["apiVersion"] = json!("external-secrets.io/v1beta1");
    // The apiVersion picked a version the API server does not serve.
    assert_error(&violations(&store), "/apiVersion", "not served");
}

#[test]
fn pod_disruption_budget_is_valid() {
    let mut pdb = json!({
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "orders-db", "namespace": "orders"},
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "orders-db"}}
        }
    });
    VALIDATOR.assert_valid(&pdb);
    pdb["spec"]["maxUnavailable"] = json!("34%");
    VALIDATOR.assert_valid(&pdb);
    pdb["spec"]["maxUnavailable"] = json!(1.5);
    violations(&pdb);
}

#[test]
fn the_other_rendered_kinds_are_valid() {
    let labels = json!({"app.kubernetes.io/managed-by": "stateplan"});
    let meta = json!({"name": "orders-db", "namespace": "orders", "labels": labels});
    for manifest in [
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "orders", "labels": labels}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {
            "name": "orders-db", "namespace": "orders",
            "labels": {"azure.workload.identity/use": "true"},
            "annotations": {"azure.workload.identity/client-id": "00000000-0000-0000-0000-000000000000"}}}),
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": "fast-ssd"}, "provisioner": "disk.csi.azure.com",
            "parameters": {"skuName": "PremiumV2_LRS"}, "allowVolumeExpansion": true,
            "reclaimPolicy": "Retain", "volumeBindingMode": "WaitForFirstConsumer"}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": {
            "clusterIP": "None", "publishNotReadyAddresses": true,
            "selector": {"app.kubernetes.io/name": "orders-db"},
            "ports": [{"name": "postgres", "port": 5432, "targetPort": "postgres"}]}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"a": "b"}}),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque",
            "stringData": {"a": "b"}}),
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
            "spec": {"holderIdentity": "stateplan", "leaseDurationSeconds": 30}}),
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta, "spec": {
            "accessModes": ["ReadWriteOnce"], "storageClassName": "fast-ssd",
            "resources": {"requests": {"storage": "200Gi"}}}}),
    ] {
        VALIDATOR.assert_valid(&manifest);
    }
}

#[test]
fn unknown_kind_is_an_error_not_a_pass() {
    let widget =
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}});
    let errors = violations(&widget);
    assert_eq!(errors.len(), 1);
    // A kind with no schema under any apiVersion: the kind is what is wrong.
    assert_error(&errors, "/kind", "no schema for example.com/v1 Widget");
    // A known group with the wrong version, and a known version with a wrong kind.
    assert_error(
        &violations(&json!({"apiVersion": "policy/v1beta1", "kind": "PodDisruptionBudget"})),
        "/apiVersion",
        "PodDisruptionBudget is policy/v1",
    );
    assert_error(
        &violations(&json!({"apiVersion": "velero.io/v1", "kind": "Backup"})),
        "/kind",
        "no schema for velero.io/v1 Backup",
    );
    assert_error(
        &violations(&json!({"kind": "Service"})),
        "/",
        "no string apiVersion and kind",
    );
}

#[test]
fn strictify_follows_api_server_rules() {
    let mut crd_schema = json!({
        "type": "object",
        "properties": {
            "port": {"x-kubernetes-int-or-string": true,
                     "anyOf": [{"type": "integer"}, {"type": "string"}]},
            "note": {"type": "string", "nullable": true},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "map": {"type": "object", "additionalProperties": {"type": "string"}},
            "nested": {"type": "object", "properties": {"a": {"type": "string"}},
                       "anyOf": [{"required": ["a"]}, {"properties": {"a": {"maxLength": 3}}}]}
        }
    });
    stateplan::render::strict::strictify(&mut crd_schema);
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&crd_schema)
        .expect("strictified schema compiles");
    let valid = json!({"port": "http", "note": null, "free": {"x": 1}, "map": {"k": "v"},
                       "nested": {"a": "long value"}});
    assert!(validator.is_valid(&valid));
    assert!(validator.is_valid(&json!({"port": 8080})));
    for invalid in [
        json!({"port": 1.5}),
        json!({"unknown": 1}),
        json!({"nested": {"a": "x", "b": 1}}),
        json!({"map": {"k": 1}}),
    ] {
        assert!(!validator.is_valid(&invalid), "{invalid} should be invalid");
    }
}

#[test]
fn many_objects_validate_quickly() {
    let sts = fixture("request-statefulset.json");
    let schedule = velero_schedule();
    let started = std::time::Instant::now();
    for _ in 0..300 {
        VALIDATOR.assert_valid(&sts);
        VALIDATOR.assert_valid(&schedule);
    }
    // Generous bound: compiled schemas are cached, so this is milliseconds.
    assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
}
