//! Scenario tests of the Kubernetes API server double (tests/support/kube_double),
//! driven through the real `kube` client over HTTP and compared with the
//! recordings of a real API server in tests/fixtures/kube.

#[path = "support/kube_double/mod.rs"]
mod kube_double;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, PersistentVolumeClaim, Pod};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::{Client, Config};
use kube_double::{KubeDouble, PodFault};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NS: &str = "orders";

/// A recorded fixture (the trailing `HTTP <code>` line dropped).
fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/kube/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with("HTTP "))
        .collect::<Vec<_>>()
        .join("\n");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn client(d: &KubeDouble) -> Client {
    let mut cfg = Config::new(d.url().parse().expect("url"));
    cfg.default_namespace = NS.into();
    Client::try_from(cfg).expect("client")
}

fn sts_api(c: &Client) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("apps", "v1", "StatefulSet"));
    Api::namespaced_with(c.clone(), NS, &ar)
}

fn dyn_api(c: &Client, group: &str, version: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
    let ar =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
    Api::namespaced_with(c.clone(), NS, &ar)
}

fn ssa() -> PatchParams {
    PatchParams::apply("stateplan")
}

/// The fixture's request body, with storage and replicas as given.
fn statefulset(storage: &str, replicas: i64) -> Value {
    let mut v = fixture("request-statefulset.json");
    v["spec"]["replicas"] = json!(replicas);
    v["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] =
        json!(storage);
    v
}

fn api_error(e: kube::Error) -> Value {
    match e {
        kube::Error::Api(s) => serde_json::to_value(&*s).expect("status"),
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// A double with namespace `orders` and StorageClasses `fast-ssd`
/// (expandable) and `fixed` (not).
async fn cluster() -> (KubeDouble, Client) {
    let d = KubeDouble::start().await;
    d.seed(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}));
    d.seed(json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "fast-ssd"},
        "provisioner": "disk.csi.azure.com", "parameters": {"skuName": "PremiumV2_LRS"},
        "allowVolumeExpansion": true, "volumeBindingMode": "WaitForFirstConsumer"}));
    d.seed(json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "fixed"},
        "provisioner": "disk.csi.azure.com", "parameters": {"skuName": "Premium_LRS"}}));
    d.reset_requests();
    let c = client(&d);
    (d, c)
}

/// Raw HTTP/1.1 exchange (for malformed requests the client would not send).
async fn raw(
    d: &KubeDouble,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, Value) {
    let addr = d.url().trim_start_matches("http://").to_string();
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.expect("write");
    s.write_all(body).await.expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("read");
    let text = String::from_utf8_lossy(&out).to_string();
    let code: u16 = text[9..12].parse().expect("status code");
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    (
        code,
        serde_json::from_str(body.trim()).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn discovery_version_and_crds() {
    let (d, c) = cluster().await;
    let v = c.apiserver_version().await.expect("version");
    assert_eq!(v.major, "1");
    let groups = c.list_api_groups().await.expect("groups");
    let names: Vec<&str> = groups.groups.iter().map(|g| g.name.as_str()).collect();
    for g in ["apps", "policy", "storage.k8s.io", "coordination.k8s.io"] {
        assert!(names.contains(&g), "{g} in {names:?}");
    }
    assert!(!names.contains(&"velero.io"), "CRDs absent until installed");
    let apps = c
        .list_api_group_resources("apps/v1")
        .await
        .expect("apps/v1");
    let sts = apps
        .resources
        .iter()
        .find(|r| r.name == "statefulsets")
        .expect("statefulsets");
    let want = fixture("discovery-apps-v1.json");
    let want_sts = want["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "statefulsets")
        .unwrap();
    assert_eq!(sts.namespaced, want_sts["namespaced"].as_bool().unwrap());
    assert_eq!(sts.kind, "StatefulSet");
    assert_eq!(json!(sts.verbs), want_sts["verbs"]);
    assert!(
        apps.resources
            .iter()
            .any(|r| r.name == "statefulsets/status")
    );
    let core = c.list_core_api_resources("v1").await.expect("core");
    let pvc = core
        .resources
        .iter()
        .find(|r| r.name == "persistentvolumeclaims")
        .unwrap();
    assert!(pvc.namespaced);
    let ns = core
        .resources
        .iter()
        .find(|r| r.name == "namespaces")
        .unwrap();
    assert!(!ns.namespaced);

    // An uninstalled CRD's path is a 404 Status.
    let schedules = dyn_api(&c, "velero.io", "v1", "Schedule", "schedules");
    let e = api_error(schedules.list(&ListParams::default()).await.unwrap_err());
    assert_eq!(e["code"], 404);
    assert_eq!(e["reason"], "NotFound");

    d.install_stateplan_crds();
    let discovery = kube::Discovery::new(c.clone())
        .run()
        .await
        .expect("discovery");
    assert!(discovery.has_group("velero.io"));
    assert!(discovery.has_group("external-secrets.io"));
    let (ar, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk(
            "external-secrets.io",
            "v1",
            "ExternalSecret",
        ))
        .expect("ExternalSecret served");
    assert_eq!(ar.plural, "externalsecrets");
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
    let agg = kube::Discovery::new(c.clone())
        .run_aggregated()
        .await
        .expect("aggregated discovery");
    assert!(
        agg.resolve_gvk(&GroupVersionKind::gvk("apps", "v1", "StatefulSet"))
            .is_some()
    );
    assert!(agg.has_group("velero.io"));
    // The CRD object itself is readable.
    let crds = Api::<DynamicObject>::all_with(
        c.clone(),
        &ApiResource::from_gvk(&GroupVersionKind::gvk(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
        )),
    );
    assert!(crds.get_opt("schedules.velero.io").await.unwrap().is_some());
}

#[tokio::test]
async fn not_found_and_unknown_paths_are_status_bodies() {
    let (d, c) = cluster().await;
    let e = api_error(sts_api(&c).get("orders-db").await.unwrap_err());
    let want = fixture("get-notfound-404.json");
    assert_eq!(e["code"], want["code"]);
    assert_eq!(e["reason"], want["reason"]);
    assert_eq!(e["message"], want["message"]);
    assert_eq!(e["details"], want["details"]);

    let (code, body) = raw(
        &d,
        "GET",
        "/apis/nope.example.com/v1/widgets",
        "application/json",
        b"",
    )
    .await;
    assert_eq!(code, 404);
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["reason"], "NotFound");
    let (code, body) = raw(&d, "GET", "/definitely/not/an/api", "application/json", b"").await;
    assert_eq!((code, body["kind"].as_str()), (404, Some("Status")));
}

#[tokio::test]
async fn ssa_dry_run_create_returns_defaulted_object_like_the_fixture() {
    let (d, c) = cluster().await;
    let api = sts_api(&c);
    let got = api
        .patch(
            "orders-db",
            &ssa().dry_run(),
            &Patch::Apply(statefulset("200Gi", 3)),
        )
        .await
        .expect("dry-run apply");
    let got = serde_json::to_value(&got).unwrap();
    let want = fixture("ssa-dryrun-create-statefulset.json");
    // v1.33 also defaults persistentVolumeClaimRetentionPolicy (1.24 did not).
    let mut spec = got["spec"].clone();
    assert_eq!(
        spec["persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
    );
    spec.as_object_mut()
        .unwrap()
        .remove("persistentVolumeClaimRetentionPolicy");
    assert_eq!(spec, want["spec"], "defaulted spec");
    assert_eq!(got["status"], want["status"]);
    assert_eq!(got["metadata"]["labels"], want["metadata"]["labels"]);
    assert_eq!(got["metadata"]["generation"], 1);
    assert!(got["metadata"]["uid"].is_string());
    assert!(
        got["metadata"].get("resourceVersion").is_none(),
        "dry-run create has no resourceVersion"
    );
    let mf = &got["metadata"]["managedFields"];
    assert_eq!(mf.as_array().unwrap().len(), 1);
    assert_eq!(mf[0]["manager"], "stateplan");
    assert_eq!(mf[0]["operation"], "Apply");
    assert_eq!(
        mf[0]["fieldsV1"],
        want["metadata"]["managedFields"][0]["fieldsV1"]
    );
    // Nothing stored.
    assert!(api.get_opt("orders-db").await.unwrap().is_none());
    assert!(
        d.get("apps/v1", "StatefulSet", Some(NS), "orders-db")
            .is_none()
    );
    assert!(
        d.requests()[0]
            .starts_with("PATCH /apis/apps/v1/namespaces/orders/statefulsets/orders-db?")
    );
    assert!(d.requests()[0].contains("dryRun=All"));
}

#[tokio::test]
async fn ssa_create_then_identical_apply_changes_nothing() {
    let (_d, c) = cluster().await;
    let api: Api<StatefulSet> = Api::namespaced(c.clone(), NS);
    let created = api
        .patch("orders-db", &ssa(), &Patch::Apply(statefulset("200Gi", 3)))
        .await
        .expect("apply");
    let rv = created.metadata.resource_version.clone().expect("rv");
    let want = fixture("ssa-apply-statefulset.json");
    let got = serde_json::to_value(&created).unwrap();
    assert_eq!(
        got["metadata"]["managedFields"][0]["fieldsV1"],
        want["metadata"]["managedFields"][0]["fieldsV1"]
    );
    let again = api
        .patch("orders-db", &ssa(), &Patch::Apply(statefulset("200Gi", 3)))
        .await
        .expect("re-apply");
    assert_eq!(
        again.metadata.resource_version.as_deref(),
        Some(rv.as_str())
    );
    // Strict validation + force on an unchanged object: still no change.
    let again = api
        .patch(
            "orders-db",
            &ssa().force().validation_strict(),
            &Patch::Apply(statefulset("200Gi", 3)),
        )
        .await
        .expect("re-apply");
    assert_eq!(
        again.metadata.resource_version.as_deref(),
        Some(rv.as_str())
    );
    // A change bumps resourceVersion and generation.
    let changed = api
        .patch("orders-db", &ssa(), &Patch::Apply(statefulset("200Gi", 5)))
        .await
        .expect("scale");
    assert_ne!(
        changed.metadata.resource_version.as_deref(),
        Some(rv.as_str())
    );
    assert_eq!(changed.metadata.generation, Some(2));
    assert_eq!(changed.spec.unwrap().replicas, Some(5));
}

#[tokio::test]
async fn conflict_with_another_field_manager_then_force() {
    let (d, c) = cluster().await;
    let api = sts_api(&c);
    api.patch("orders-db", &ssa(), &Patch::Apply(statefulset("200Gi", 3)))
        .await
        .expect("apply");
    // kubectl edit (as an applier with force) takes .spec.replicas.
    d.apply_as(
        "kubectl-edit",
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
               "metadata": {"name": "orders-db", "namespace": NS}, "spec": {"replicas": 4}}),
        true,
    )
    .expect("kubectl-edit");
    let live = d
        .get("apps/v1", "StatefulSet", Some(NS), "orders-db")
        .unwrap();
    assert_eq!(live["spec"]["replicas"], 4);
    let mf = live["metadata"]["managedFields"].as_array().unwrap();
    let stateplan = mf.iter().find(|m| m["manager"] == "stateplan").unwrap();
    assert!(
        stateplan["fieldsV1"]["f:spec"].get("f:replicas").is_none(),
        "replicas moved away"
    );
    let kubectl = mf.iter().find(|m| m["manager"] == "kubectl-edit").unwrap();
    assert_eq!(kubectl["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));

    let e = api_error(
        api.patch("orders-db", &ssa(), &Patch::Apply(statefulset("200Gi", 3)))
            .await
            .unwrap_err(),
    );
    let want = fixture("ssa-apply-conflict-409.txt");
    assert_eq!(e["code"], want["code"]);
    assert_eq!(e["reason"], want["reason"]);
    assert_eq!(e["message"], want["message"]);
    assert_eq!(e["details"]["causes"], want["details"]["causes"]);
    // Dry-run reports the same conflict.
    let e = api_error(
        api.patch(
            "orders-db",
            &ssa().dry_run(),
            &Patch::Apply(statefulset("200Gi", 3)),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e["code"], 409);
    // Same value as the other manager: shared, no conflict.
    api.patch("orders-db", &ssa(), &Patch::Apply(statefulset("200Gi", 4)))
        .await
        .expect("same value is no conflict");

    let forced = api
        .patch(
            "orders-db",
            &ssa().force(),
            &Patch::Apply(statefulset("200Gi", 3)),
        )
        .await
        .expect("force");
    let forced = serde_json::to_value(&forced).unwrap();
    assert_eq!(forced["spec"]["replicas"], 3);
    let mf = forced["metadata"]["managedFields"].as_array().unwrap();
    assert!(mf.iter().all(|m| m["manager"] != "kubectl-edit"), "{mf:?}");
}

#[tokio::test]
async fn update_managers_conflict_too_and_name_their_api_version() {
    let (_d, c) = cluster().await;
    let api = sts_api(&c);
    api.patch("orders-db", &ssa(), &Patch::Apply(statefulset("200Gi", 3)))
        .await
        .unwrap();
    let hpa = PatchParams {
        field_manager: Some("hpa-controller".into()),
        ..Default::default()
    };
    api.patch(
        "orders-db",
        &hpa,
        &Patch::Merge(json!({"spec": {"replicas": 6}})),
    )
    .await
    .expect("merge patch");
    let e = api_error(
        api.patch("orders-db", &ssa(), &Patch::Apply(statefulset("200Gi", 3)))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        e["message"],
        "Apply failed with 1 conflict: conflict with \"hpa-controller\" using apps/v1: .spec.replicas"
    );
}

#[tokio::test]
async fn immutable_volume_claim_template_is_422() {
    let (_d, c) = cluster().await;
    let api = sts_api(&c);
    api.patch("orders-db", &ssa(), &Patch::Apply(statefulset("200Gi", 3)))
        .await
        .unwrap();
    let e = api_error(
        api.patch(
            "orders-db",
            &ssa().dry_run(),
            &Patch::Apply(statefulset("300Gi", 3)),
        )
        .await
        .unwrap_err(),
    );
    let want = fixture("ssa-dryrun-immutable-vct-422.txt");
    assert_eq!(e["code"], want["code"]);
    assert_eq!(e["reason"], want["reason"]);
    assert_eq!(e["details"]["name"], want["details"]["name"]);
    assert_eq!(e["details"]["group"], want["details"]["group"]);
    assert_eq!(e["details"]["kind"], want["details"]["kind"]);
    assert_eq!(e["details"]["causes"][0]["reason"], "FieldValueForbidden");
    assert_eq!(e["details"]["causes"][0]["field"], "spec");
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.starts_with("StatefulSet.apps \"orders-db\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template'"),
        "{msg}"
    );
    // serviceName is immutable too; replicas/template/revisionHistoryLimit are not.
    let mut v = statefulset("200Gi", 3);
    v["spec"]["serviceName"] = json!("other");
    let e = api_error(
        api.patch("orders-db", &ssa(), &Patch::Apply(v))
            .await
            .unwrap_err(),
    );
    assert_eq!(e["code"], 422);
    let mut v = statefulset("200Gi", 2);
    v["spec"]["revisionHistoryLimit"] = json!(3);
    v["spec"]["template"]["spec"]["containers"][0]["image"] = json!("postgres:16.4");
    api.patch("orders-db", &ssa(), &Patch::Apply(v))
        .await
        .expect("mutable fields");
}

#[tokio::test]
async fn storage_class_parameters_are_immutable() {
    let (_d, c) = cluster().await;
    let api = Api::<DynamicObject>::all_with(
        c.clone(),
        &ApiResource::from_gvk(&GroupVersionKind::gvk(
            "storage.k8s.io",
            "v1",
            "StorageClass",
        )),
    );
    let sc = |sku: &str| {
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "balanced"},
               "provisioner": "disk.csi.azure.com", "parameters": {"skuName": sku}, "allowVolumeExpansion": true})
    };
    api.patch("balanced", &ssa(), &Patch::Apply(sc("StandardSSD_LRS")))
        .await
        .expect("create");
    let e = api_error(
        api.patch("balanced", &ssa(), &Patch::Apply(sc("Premium_LRS")))
            .await
            .unwrap_err(),
    );
    assert_eq!(e["code"], 422);
    assert_eq!(
        e["message"],
        "StorageClass.storage.k8s.io \"balanced\" is invalid: parameters: Forbidden: updates to parameters are forbidden."
    );
}

/// Applies the fixture StatefulSet and lets the controller run to readiness.
async fn running_statefulset(d: &KubeDouble, c: &Client, storage_class: &str) {
    let mut v = statefulset("200Gi", 3);
    v["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] = json!(storage_class);
    sts_api(c)
        .patch("orders-db", &ssa(), &Patch::Apply(v))
        .await
        .expect("apply");
    let passes = d.settle(100);
    assert!(passes < 100, "controller settles");
}

#[tokio::test]
async fn controller_creates_pods_and_claims_like_the_real_one() {
    let (d, c) = cluster().await;
    running_statefulset(&d, &c, "fast-ssd").await;
    let sts: Api<StatefulSet> = Api::namespaced(c.clone(), NS);
    let live = sts.get("orders-db").await.unwrap();
    let st = live.status.clone().unwrap();
    assert_eq!(st.replicas, 3);
    assert_eq!(st.ready_replicas, Some(3));
    assert_eq!(st.updated_replicas, Some(3));
    assert_eq!(st.observed_generation, Some(1));
    assert_eq!(st.current_revision, st.update_revision);
    let live_v = serde_json::to_value(&live).unwrap();
    let mf = live_v["metadata"]["managedFields"].as_array().unwrap();
    assert!(
        mf.iter()
            .any(|m| m["subresource"] == "status" && m["operation"] == "Update")
    );

    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(c.clone(), NS);
    let list = pvcs.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 3);
    let want = fixture("list-pvcs-created-by-statefulset.json");
    let want0 = &want["items"][0];
    let got0 = serde_json::to_value(pvcs.get("data-orders-db-0").await.unwrap()).unwrap();
    assert_eq!(got0["metadata"]["labels"], want0["metadata"]["labels"]);
    assert_eq!(
        got0["metadata"]["finalizers"],
        want0["metadata"]["finalizers"]
    );
    for f in ["accessModes", "resources", "storageClassName", "volumeMode"] {
        assert_eq!(got0["spec"][f], want0["spec"][f], "{f}");
    }
    assert_eq!(got0["status"]["phase"], "Bound");
    assert_eq!(got0["status"]["capacity"]["storage"], "200Gi");

    let pods: Api<Pod> = Api::namespaced(c.clone(), NS);
    let pod = pods.get("orders-db-2").await.unwrap();
    let labels = pod.metadata.labels.clone().unwrap();
    assert_eq!(labels["app.kubernetes.io/name"], "orders-db");
    assert_eq!(labels["statefulset.kubernetes.io/pod-name"], "orders-db-2");
    assert_eq!(
        pod.metadata.owner_references.unwrap()[0].kind,
        "StatefulSet"
    );
    assert_eq!(pod.status.unwrap().phase.as_deref(), Some("Running"));

    // Rolling update and scale down.
    let mut v = statefulset("200Gi", 2);
    v["spec"]["template"]["spec"]["containers"][0]["image"] = json!("postgres:16.4");
    sts_api(&c)
        .patch("orders-db", &ssa(), &Patch::Apply(v))
        .await
        .unwrap();
    d.settle(100);
    let live = sts.get("orders-db").await.unwrap();
    let st = live.status.unwrap();
    assert_eq!(
        (st.replicas, st.ready_replicas, st.updated_replicas),
        (2, Some(2), Some(2))
    );
    assert_eq!(st.observed_generation, Some(2));
    assert!(pods.get_opt("orders-db-2").await.unwrap().is_none());
    assert!(
        pvcs.get_opt("data-orders-db-2").await.unwrap().is_some(),
        "scale down keeps claims"
    );
    let image = pods
        .get("orders-db-0")
        .await
        .unwrap()
        .spec
        .unwrap()
        .containers[0]
        .image
        .clone();
    assert_eq!(image.as_deref(), Some("postgres:16.4"));
}

#[tokio::test]
async fn pvc_expansion_rules() {
    let (d, c) = cluster().await;
    running_statefulset(&d, &c, "fast-ssd").await;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(c.clone(), NS);
    let storage = |s: &str| json!({"spec": {"resources": {"requests": {"storage": s}}}});
    // Bound + expandable class: allowed; the resize completes on the next pass.
    pvcs.patch(
        "data-orders-db-0",
        &PatchParams::default(),
        &Patch::Merge(storage("300Gi")),
    )
    .await
    .expect("expand");
    d.tick();
    let got = pvcs.get("data-orders-db-0").await.unwrap();
    assert_eq!(got.status.unwrap().capacity.unwrap()["storage"].0, "300Gi");
    // SSA works too.
    let claim = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data-orders-db-1", "namespace": NS},
        "spec": {"resources": {"requests": {"storage": "300Gi"}}}});
    // SSA over a claim the StatefulSet controller created conflicts (it owns
    // the field, as on a real cluster) unless forced.
    let e = api_error(
        pvcs.patch("data-orders-db-1", &ssa(), &Patch::Apply(claim.clone()))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        e["details"]["causes"][0]["message"],
        "conflict with \"kube-controller-manager\" using v1"
    );
    pvcs.patch("data-orders-db-1", &ssa().force(), &Patch::Apply(claim))
        .await
        .expect("ssa expand");
    // Shrinking: 422.
    let e = api_error(
        pvcs.patch(
            "data-orders-db-0",
            &PatchParams::default(),
            &Patch::Merge(storage("100Gi")),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e["code"], 422);
    assert_eq!(
        e["details"]["causes"][0]["field"],
        "spec.resources.requests.storage"
    );
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("field can not be less than previous value")
    );

    // Unbound claim: 422 like the recording.
    d.set_pvc_pending(
        NS,
        "data-pending-0",
        Some("failed to provision volume: quota exceeded"),
    );
    d.seed(json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data-pending-0", "namespace": NS},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "fast-ssd",
                 "resources": {"requests": {"storage": "200Gi"}}}}));
    let e = api_error(
        pvcs.patch(
            "data-pending-0",
            &PatchParams::default(),
            &Patch::Merge(storage("300Gi")),
        )
        .await
        .unwrap_err(),
    );
    let want = fixture("pvc-expand-unbound-422.txt");
    assert_eq!(e["code"], want["code"]);
    assert_eq!(e["reason"], want["reason"]);
    assert_eq!(e["details"]["kind"], want["details"]["kind"]);
    assert_eq!(
        e["details"]["causes"][0]["reason"],
        want["details"]["causes"][0]["reason"]
    );
    assert_eq!(e["details"]["causes"][0]["field"], "spec");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("PersistentVolumeClaim \"data-pending-0\" is invalid: spec: Forbidden: spec is immutable after creation except resources.requests")
    );

    // Class without allowVolumeExpansion: the resize admission plugin's 403.
    d.seed(json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data-fixed-0", "namespace": NS},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "fixed",
                 "resources": {"requests": {"storage": "200Gi"}}},
        "status": {"phase": "Bound"}}));
    let e = api_error(
        pvcs.patch(
            "data-fixed-0",
            &PatchParams::default(),
            &Patch::Merge(storage("300Gi")),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e["code"], 403);
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .ends_with("only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize")
    );
}

#[tokio::test]
async fn orphan_delete_keeps_pods_and_claims_and_background_delete_removes_pods() {
    let (d, c) = cluster().await;
    running_statefulset(&d, &c, "fast-ssd").await;
    let api = sts_api(&c);
    let pods: Api<Pod> = Api::namespaced(c.clone(), NS);
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(c.clone(), NS);

    let dry = api
        .delete("orders-db", &DeleteParams::orphan().dry_run())
        .await
        .expect("dry-run delete");
    let obj = dry.left().expect("orphan delete returns the object");
    let obj = serde_json::to_value(&obj).unwrap();
    let want = fixture("delete-statefulset-orphan-dryrun.txt");
    assert_eq!(
        obj["metadata"]["finalizers"],
        want["metadata"]["finalizers"]
    );
    assert!(obj["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(obj["metadata"]["deletionGracePeriodSeconds"], 0);
    assert!(
        api.get_opt("orders-db").await.unwrap().is_some(),
        "dry run keeps it"
    );

    d.reset_requests();
    api.delete("orders-db", &DeleteParams::orphan())
        .await
        .expect("orphan delete");
    assert_eq!(
        d.requests(),
        vec!["DELETE /apis/apps/v1/namespaces/orders/statefulsets/orders-db?".to_string()]
    );
    assert!(api.get_opt("orders-db").await.unwrap().is_none());
    let left = pods.list(&ListParams::default()).await.unwrap();
    assert_eq!(left.items.len(), 3, "pods stay");
    assert!(
        left.items
            .iter()
            .all(|p| p.metadata.owner_references.is_none()),
        "orphaned"
    );
    assert_eq!(
        pvcs.list(&ListParams::default()).await.unwrap().items.len(),
        3
    );

    // Re-created with a bigger template (the storage growth flow): adopts pods.
    let mut v = statefulset("300Gi", 3);
    v["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] = json!("fast-ssd");
    let created = api
        .patch("orders-db", &ssa(), &Patch::Apply(v))
        .await
        .expect("re-create");
    d.settle(100);
    let pod = pods.get("orders-db-0").await.unwrap();
    assert_eq!(
        pod.metadata.owner_references.unwrap()[0].uid,
        created.metadata.uid.clone().unwrap()
    );

    let gone = api
        .delete("orders-db", &DeleteParams::background())
        .await
        .expect("delete");
    let status = gone.right().expect("a Status");
    assert_eq!(status.details.unwrap().name, "orders-db");
    assert!(
        pods.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty(),
        "pods deleted"
    );
    assert_eq!(
        pvcs.list(&ListParams::default()).await.unwrap().items.len(),
        3,
        "claims retained"
    );
}

#[tokio::test]
async fn lease_create_conflict_and_optimistic_concurrency() {
    let (_d, c) = cluster().await;
    let leases: Api<Lease> = Api::namespaced(c.clone(), NS);
    let want = fixture("lease-create-201.json");
    let mut body: Lease = serde_json::from_value(json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "stateplan-orders", "namespace": NS}, "spec": want["spec"].clone()
    }))
    .unwrap();
    let created = leases
        .create(&PostParams::default(), &body)
        .await
        .expect("create");
    let created_v = serde_json::to_value(&created).unwrap();
    assert_eq!(created_v["spec"], want["spec"]);
    assert!(created.metadata.uid.is_some() && created.metadata.resource_version.is_some());
    let e = api_error(
        leases
            .create(&PostParams::default(), &body)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (e["code"].as_u64(), e["reason"].as_str()),
        (Some(409), Some("AlreadyExists"))
    );

    // Renew with the current resourceVersion.
    body.metadata.resource_version = created.metadata.resource_version.clone();
    body.spec.as_mut().unwrap().holder_identity = Some("stateplan@host-b".into());
    let renewed = leases
        .replace("stateplan-orders", &PostParams::default(), &body)
        .await
        .expect("renew");
    assert_ne!(
        renewed.metadata.resource_version,
        created.metadata.resource_version
    );
    // A second writer with the stale version loses.
    let e = api_error(
        leases
            .replace("stateplan-orders", &PostParams::default(), &body)
            .await
            .unwrap_err(),
    );
    let want = fixture("lease-update-stale-409.txt");
    assert_eq!(e["code"], want["code"]);
    assert_eq!(e["reason"], want["reason"]);
    assert_eq!(e["message"], want["message"]);
    assert_eq!(e["details"], want["details"]);
}

#[tokio::test]
async fn watch_streams_added_modified_deleted_and_ends_after_timeout() {
    let (_d, c) = cluster().await;
    let api = sts_api(&c);
    let list = api.list(&ListParams::default()).await.unwrap();
    let rv = list.metadata.resource_version.clone().unwrap();
    let wp = WatchParams::default()
        .timeout(2)
        .labels("app.kubernetes.io/managed-by=stateplan");
    let mut stream = api.watch(&wp, &rv).await.expect("watch").boxed();
    api.patch("orders-db", &ssa(), &Patch::Apply(statefulset("200Gi", 3)))
        .await
        .unwrap();
    api.patch("orders-db", &ssa(), &Patch::Apply(statefulset("200Gi", 4)))
        .await
        .unwrap();
    api.delete("orders-db", &DeleteParams::orphan())
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut kinds = Vec::new();
    while let Some(ev) = stream.next().await {
        match ev.expect("event") {
            WatchEvent::Added(o) => kinds.push(format!("ADDED {}", o.metadata.name.unwrap())),
            WatchEvent::Modified(_) => kinds.push("MODIFIED".into()),
            WatchEvent::Deleted(o) => {
                assert!(o.metadata.deletion_timestamp.is_some());
                kinds.push("DELETED".into())
            }
            WatchEvent::Bookmark(_) => kinds.push("BOOKMARK".into()),
            WatchEvent::Error(e) => panic!("watch error {e:?}"),
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stream ended at the timeout"
    );
    assert_eq!(kinds[0], "ADDED orders-db");
    assert_eq!(
        &kinds[1..4],
        ["MODIFIED", "MODIFIED", "DELETED"],
        "{kinds:?}"
    );

    // Without a resourceVersion: synthetic ADDED for what exists.
    api.patch("orders-db", &ssa(), &Patch::Apply(statefulset("200Gi", 3)))
        .await
        .unwrap();
    let mut s = api
        .watch(&WatchParams::default().timeout(1), "0")
        .await
        .unwrap()
        .boxed();
    let first = s.next().await.unwrap().unwrap();
    assert!(matches!(first, WatchEvent::Added(_)));
}

#[tokio::test]
async fn fixture_watch_lines_parse_as_the_double_writes_them() {
    // The recorded stream and the double's share the line shape.
    let path = format!(
        "{}/tests/fixtures/kube/watch-statefulsets.jsonl",
        env!("CARGO_MANIFEST_DIR")
    );
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let ev: WatchEvent<StatefulSet> = serde_json::from_str(line).expect("watch line");
        assert!(matches!(ev, WatchEvent::Added(_) | WatchEvent::Deleted(_)));
    }
}

#[tokio::test]
async fn injected_failures_and_request_log() {
    let (d, c) = cluster().await;
    let api = sts_api(&c);
    // kube's client retries 429/503/504 itself (Retry-After honoured).
    d.fail_next(
        "GET",
        "/apis/apps/v1/namespaces/orders/statefulsets",
        429,
        2,
    );
    api.list(&ListParams::default())
        .await
        .expect("retried until it succeeds");
    assert_eq!(d.request_count(), 3, "{:?}", d.requests());
    // Without the client's retry layer the 429 is visible.
    let mut cfg = Config::new(d.url().parse().unwrap());
    cfg.default_retry = false;
    let plain = sts_api(&Client::try_from(cfg).unwrap());
    d.fail_next(
        "GET",
        "/apis/apps/v1/namespaces/orders/statefulsets",
        429,
        1,
    );
    let e = api_error(plain.list(&ListParams::default()).await.unwrap_err());
    assert_eq!(
        (e["code"].as_u64(), e["reason"].as_str()),
        (Some(429), Some("TooManyRequests"))
    );
    d.fail_next("*", "/apis/apps", 503, 1);
    assert_eq!(
        api_error(plain.get_opt("x").await.unwrap_err())["code"],
        503
    );
    d.fail_next("PATCH", "/apis/apps", 500, 1);
    let e = api_error(
        api.patch("orders-db", &ssa(), &Patch::Apply(statefulset("200Gi", 3)))
            .await
            .unwrap_err(),
    );
    assert_eq!(e["code"], 500);
    assert!(
        d.get("apps/v1", "StatefulSet", Some(NS), "orders-db")
            .is_none(),
        "failed request changed nothing"
    );

    // A slow answer trips a client read timeout.
    d.delay_next("GET", "/apis/apps", Duration::from_millis(1500), 1);
    let mut cfg = Config::new(d.url().parse().unwrap());
    cfg.read_timeout = Some(Duration::from_millis(300));
    let impatient = sts_api(&Client::try_from(cfg).unwrap());
    assert!(impatient.list(&ListParams::default()).await.is_err());

    assert_eq!(d.request_count(), d.requests().len());
    assert_eq!(
        d.requests()[0],
        "GET /apis/apps/v1/namespaces/orders/statefulsets?"
    );
    d.reset_requests();
    assert_eq!(d.request_count(), 0);
}

#[tokio::test]
async fn list_with_selectors_across_namespaces() {
    let (d, c) = cluster().await;
    d.seed(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "cache"}}));
    let cm = |ns: &str, name: &str, labels: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns, "labels": labels}, "data": {"a": "b"}});
    d.seed(cm(
        NS,
        "a",
        json!({"app.kubernetes.io/managed-by": "stateplan", "tier": "db"}),
    ));
    d.seed(cm(
        NS,
        "b",
        json!({"app.kubernetes.io/managed-by": "stateplan", "tier": "cache"}),
    ));
    d.seed(cm(
        "cache",
        "c",
        json!({"app.kubernetes.io/managed-by": "stateplan", "tier": "cache", "legacy": "yes"}),
    ));
    d.seed(cm(NS, "d", json!({"app.kubernetes.io/managed-by": "helm"})));
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("", "v1", "ConfigMap"));
    let ns_api: Api<DynamicObject> = Api::namespaced_with(c.clone(), NS, &ar);
    let all: Api<DynamicObject> = Api::all_with(c.clone(), &ar);
    let names = |l: kube::api::ObjectList<DynamicObject>| -> Vec<String> {
        l.items
            .into_iter()
            .map(|o| o.metadata.name.unwrap())
            .collect()
    };
    let sel = |s: &str| ListParams::default().labels(s);
    assert_eq!(
        names(
            ns_api
                .list(&sel("app.kubernetes.io/managed-by=stateplan"))
                .await
                .unwrap()
        ),
        ["a", "b"]
    );
    assert_eq!(
        names(
            all.list(&sel("app.kubernetes.io/managed-by=stateplan"))
                .await
                .unwrap()
        ),
        ["c", "a", "b"]
    );
    assert_eq!(
        names(all.list(&sel("tier in (cache,web),!legacy")).await.unwrap()),
        ["b"]
    );
    assert_eq!(
        names(
            all.list(&sel("tier,app.kubernetes.io/managed-by!=helm"))
                .await
                .unwrap()
        ),
        ["c", "a", "b"]
    );
    let raw_list = ns_api.list(&sel("tier=db")).await.unwrap();
    assert!(raw_list.metadata.resource_version.is_some());
    let page = ns_api.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(page.items.len(), 2);
    let rest = ns_api
        .list(
            &ListParams::default()
                .limit(2)
                .continue_token(page.metadata.continue_.as_deref().unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert_eq!(
        names(
            ns_api
                .list(&ListParams::default().fields("metadata.name=d"))
                .await
                .unwrap()
        ),
        ["d"]
    );

    // The list shape matches the recording: items without kind/apiVersion.
    let sts = sts_api(&c);
    sts.patch("orders-db", &ssa(), &Patch::Apply(statefulset("200Gi", 3)))
        .await
        .unwrap();
    let (code, body) = raw(
        &d,
        "GET",
        "/apis/apps/v1/namespaces/orders/statefulsets?labelSelector=app.kubernetes.io%2Fmanaged-by%3Dstateplan",
        "application/json",
        b"",
    )
    .await;
    let want = fixture("list-statefulsets.json");
    assert_eq!(code, 200);
    assert_eq!(body["kind"], want["kind"]);
    assert_eq!(body["apiVersion"], want["apiVersion"]);
    assert!(body["items"][0].get("kind").is_none());
    assert_eq!(
        body["items"][0]["spec"]["volumeClaimTemplates"],
        want["items"][0]["spec"]["volumeClaimTemplates"]
    );
}

#[tokio::test]
async fn crd_apply_defaulting_and_strict_unknown_field() {
    let (d, c) = cluster().await;
    let schedules = dyn_api(&c, "velero.io", "v1", "Schedule", "schedules");
    let schedule = json!({"apiVersion": "velero.io/v1", "kind": "Schedule",
        "metadata": {"name": "orders-db-daily", "namespace": NS},
        "spec": {"schedule": "0 2 * * *", "template": {"includedNamespaces": [NS], "snapshotVolumes": true, "ttl": "720h0m0s"}}});
    d.install_stateplan_crds();
    let got = schedules
        .patch(
            "orders-db-daily",
            &ssa().dry_run().validation_strict(),
            &Patch::Apply(schedule.clone()),
        )
        .await
        .expect("dry-run");
    let got = serde_json::to_value(&got).unwrap();
    let want = fixture("ssa-dryrun-create-velero-schedule.json");
    assert_eq!(got["spec"], want["spec"]);
    assert_eq!(
        got["metadata"]["managedFields"][0]["fieldsV1"],
        want["metadata"]["managedFields"][0]["fieldsV1"]
    );
    let mut bad = schedule.clone();
    bad["spec"]["template"]["bogusField"] = json!(true);
    let e = api_error(
        schedules
            .patch(
                "orders-db-daily",
                &ssa().dry_run().validation_strict(),
                &Patch::Apply(bad),
            )
            .await
            .unwrap_err(),
    );
    let want = fixture("ssa-dryrun-crd-unknown-field-strict.txt");
    assert_eq!(e["code"], want["code"]);
    assert_eq!(e["message"], want["message"]);
    // Built-in kinds are checked against the v1.33 schema the same way.
    let mut bad = statefulset("200Gi", 3);
    bad["spec"]["bogus"] = json!(1);
    let e = api_error(
        sts_api(&c)
            .patch("orders-db", &ssa(), &Patch::Apply(bad))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        e["message"],
        "failed to create typed patch object (orders/orders-db; apps/v1, Kind=StatefulSet): .spec.bogus: field not declared in schema"
    );

    // ExternalSecret: Ready once the controller ran, target Secret created.
    let es = dyn_api(
        &c,
        "external-secrets.io",
        "v1",
        "ExternalSecret",
        "externalsecrets",
    );
    let body = json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
        "metadata": {"name": "orders-db", "namespace": NS},
        "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "kv", "kind": "SecretStore"},
                 "target": {"name": "orders-db-secrets"},
                 "data": [{"secretKey": "superuser-password", "remoteRef": {"key": "orders-db-superuser-password"}}]}});
    es.patch("orders-db", &ssa().validation_strict(), &Patch::Apply(body))
        .await
        .expect("apply ES");
    d.tick();
    let got = es.get("orders-db").await.unwrap();
    assert_eq!(got.data["status"]["conditions"][0]["status"], "True");
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(c.clone(), NS);
    let s = secrets
        .get("orders-db-secrets")
        .await
        .expect("target secret");
    assert!(s.data.unwrap().contains_key("superuser-password"));
    d.set_external_secret_failure(
        NS,
        "orders-db",
        Some("could not get secret data from provider"),
    );
    d.tick();
    let got = es.get("orders-db").await.unwrap();
    assert_eq!(got.data["status"]["conditions"][0]["status"], "False");
    assert_eq!(
        got.data["status"]["conditions"][0]["reason"],
        "SecretSyncedError"
    );
}

#[tokio::test]
async fn failures_show_in_pods_and_events() {
    let (d, c) = cluster().await;
    let msg = "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.";
    d.set_pod_fault(NS, "orders-db-0", Some(PodFault::Unschedulable(msg.into())));
    running_statefulset(&d, &c, "fast-ssd").await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), NS);
    let p0 = pods.get("orders-db-0").await.unwrap();
    let st = p0.status.unwrap();
    assert_eq!(st.phase.as_deref(), Some("Pending"));
    let cond = &st.conditions.unwrap()[0];
    assert_eq!(
        (cond.type_.as_str(), cond.status.as_str()),
        ("PodScheduled", "False")
    );
    assert_eq!(cond.reason.as_deref(), Some("Unschedulable"));
    assert_eq!(cond.message.as_deref(), Some(msg));
    // OrderedReady: nothing after the stuck pod.
    assert!(pods.get_opt("orders-db-1").await.unwrap().is_none());
    let events: Api<Event> = Api::namespaced(c.clone(), NS);
    let evs = events
        .list(
            &ListParams::default()
                .fields("involvedObject.name=orders-db-0,involvedObject.kind=Pod"),
        )
        .await
        .unwrap();
    let ev = evs
        .items
        .iter()
        .find(|e| e.reason.as_deref() == Some("FailedScheduling"))
        .expect("event");
    assert_eq!(ev.message.as_deref(), Some(msg));
    assert_eq!(ev.type_.as_deref(), Some("Warning"));

    d.set_pod_fault(NS, "orders-db-0", None);
    d.set_pod_fault(NS, "orders-db-1", Some(PodFault::CrashLoopBackOff));
    d.settle(50);
    let p1 = pods.get("orders-db-1").await.unwrap();
    let cs = &p1.status.unwrap().container_statuses.unwrap()[0];
    assert_eq!(
        cs.state
            .as_ref()
            .unwrap()
            .waiting
            .as_ref()
            .unwrap()
            .reason
            .as_deref(),
        Some("CrashLoopBackOff")
    );
    assert!(!cs.ready);

    d.set_pod_fault(NS, "orders-db-1", Some(PodFault::ImagePullBackOff));
    d.tick();
    let p1 = pods.get("orders-db-1").await.unwrap();
    let cs = &p1.status.unwrap().container_statuses.unwrap()[0];
    assert_eq!(
        cs.state
            .as_ref()
            .unwrap()
            .waiting
            .as_ref()
            .unwrap()
            .reason
            .as_deref(),
        Some("ImagePullBackOff")
    );

    // A claim that cannot be provisioned.
    d.set_pod_fault(NS, "orders-db-1", None);
    d.set_pvc_pending(
        NS,
        "data-orders-db-2",
        Some("failed to provision volume with StorageClass \"fast-ssd\": disk quota exceeded"),
    );
    d.settle(50);
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(c.clone(), NS);
    assert_eq!(
        pvcs.get("data-orders-db-2")
            .await
            .unwrap()
            .status
            .unwrap()
            .phase
            .as_deref(),
        Some("Pending")
    );
    let evs = events
        .list(&ListParams::default().fields("involvedObject.name=data-orders-db-2"))
        .await
        .unwrap();
    assert!(evs.items.iter().any(|e| {
        e.reason.as_deref() == Some("ProvisioningFailed")
            && e.message
                .as_deref()
                .unwrap_or("")
                .contains("quota exceeded")
    }));
    let sts: Api<StatefulSet> = Api::namespaced(c.clone(), NS);
    assert_eq!(
        sts.get("orders-db")
            .await
            .unwrap()
            .status
            .unwrap()
            .ready_replicas,
        Some(2)
    );
}

#[tokio::test]
async fn fields_dropped_by_the_applier_are_removed_unless_shared() {
    let (d, c) = cluster().await;
    let cms = dyn_api(&c, "", "v1", "ConfigMap", "configmaps");
    let cm = |labels: Value, data: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "conf", "namespace": NS, "labels": labels}, "data": data});
    cms.patch(
        "conf",
        &ssa(),
        &Patch::Apply(cm(json!({"a": "1", "b": "2"}), json!({"x": "1", "y": "2"}))),
    )
    .await
    .unwrap();
    d.apply_as(
        "other",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "conf", "namespace": NS, "labels": {"b": "2"}}}),
        false,
    )
    .expect("shared label");
    let got = cms
        .patch(
            "conf",
            &ssa(),
            &Patch::Apply(cm(json!({}), json!({"x": "1"}))),
        )
        .await
        .unwrap();
    let labels = got.metadata.labels.unwrap();
    assert!(!labels.contains_key("a"), "dropped and unshared: removed");
    assert_eq!(labels["b"], "2", "still owned by another manager");
    assert_eq!(got.data["data"], json!({"x": "1"}));
}

#[tokio::test]
async fn namespace_must_exist_and_bad_requests_are_rejected_without_panics() {
    let (d, c) = cluster().await;
    let other: Api<DynamicObject> = Api::namespaced_with(
        c.clone(),
        "nowhere",
        &ApiResource::from_gvk(&GroupVersionKind::gvk("apps", "v1", "StatefulSet")),
    );
    let mut v = statefulset("200Gi", 3);
    v["metadata"]["namespace"] = json!("nowhere");
    let e = api_error(
        other
            .patch("orders-db", &ssa(), &Patch::Apply(v))
            .await
            .unwrap_err(),
    );
    assert_eq!(e["message"], "namespaces \"nowhere\" not found");

    let p = "/apis/apps/v1/namespaces/orders/statefulsets";
    let cases: Vec<(&str, String, &str, &[u8])> = vec![
        ("POST", p.into(), "application/json", b"{not json"),
        ("POST", p.into(), "application/json", b"[1,2,3]"),
        (
            "POST",
            p.into(),
            "application/json",
            b"{\"apiVersion\":\"v1\",\"kind\":\"Pod\"}",
        ),
        (
            "PATCH",
            format!("{p}/x?fieldManager=t"),
            "application/apply-patch+yaml",
            b"{{{: ::",
        ),
        (
            "PATCH",
            format!("{p}/x?fieldManager=t"),
            "application/apply-patch+yaml",
            b"\"just a string\"",
        ),
        (
            "PATCH",
            format!("{p}/x"),
            "application/apply-patch+yaml",
            b"{}",
        ),
        (
            "PATCH",
            format!("{p}/x"),
            "application/merge-patch+json",
            b"{}",
        ),
        ("PATCH", format!("{p}/x"), "text/plain", b"{}"),
        (
            "PATCH",
            format!("{p}/x?dryRun=Maybe"),
            "application/merge-patch+json",
            b"{}",
        ),
        ("DELETE", format!("{p}/x"), "application/json", b"{bad"),
        (
            "GET",
            format!("{p}?labelSelector=a%20in%20b"),
            "application/json",
            b"",
        ),
        ("PUT", format!("{p}/x"), "application/json", b"\xff\xfe"),
        (
            "GET",
            "/api/v1/namespaces/orders/pods/x/log".into(),
            "application/json",
            b"",
        ),
    ];
    for (m, path, ct, body) in cases {
        let (code, status) = raw(&d, m, &path, ct, body).await;
        assert!((400..500).contains(&code), "{m} {path}: {code} {status}");
        assert_eq!(status["kind"], "Status", "{m} {path}");
    }
    // A JSON patch on a live object, including a failing test op.
    let cms = dyn_api(&c, "", "v1", "ConfigMap", "configmaps");
    cms.patch(
        "j",
        &ssa(),
        &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "j", "namespace": NS}, "data": {"a": "1"}})),
    )
    .await
    .unwrap();
    let (code, _) = raw(
        &d,
        "PATCH",
        "/api/v1/namespaces/orders/configmaps/j",
        "application/json-patch+json",
        br#"[{"op":"test","path":"/data/a","value":"2"}]"#,
    )
    .await;
    assert_eq!(code, 422);
    let (code, body) = raw(
        &d,
        "PATCH",
        "/api/v1/namespaces/orders/configmaps/j",
        "application/json-patch+json",
        br#"[{"op":"replace","path":"/data/a","value":"2"},{"op":"add","path":"/data/b","value":"3"}]"#,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(body["data"], json!({"a": "2", "b": "3"}));
    // Still serving.
    assert!(c.apiserver_version().await.is_ok());
}

#[tokio::test]
async fn reapplying_every_stateplan_kind_is_a_no_op() {
    let (d, c) = cluster().await;
    d.install_stateplan_crds();
    let labels =
        json!({"app.kubernetes.io/managed-by": "stateplan", "stateplan.io/workload": "orders-db"});
    let objs = vec![
        (
            "",
            "v1",
            "Namespace",
            "namespaces",
            false,
            json!({"metadata": {"name": NS, "labels": labels}}),
        ),
        (
            "storage.k8s.io",
            "v1",
            "StorageClass",
            "storageclasses",
            false,
            json!({
            "metadata": {"name": "sp-fast"}, "provisioner": "disk.csi.azure.com",
            "parameters": {"skuName": "PremiumV2_LRS", "DiskIOPSReadWrite": "3000"},
            "allowVolumeExpansion": true, "volumeBindingMode": "WaitForFirstConsumer", "reclaimPolicy": "Retain"}),
        ),
        (
            "",
            "v1",
            "ServiceAccount",
            "serviceaccounts",
            true,
            json!({"metadata": {"name": "orders-db",
            "annotations": {"azure.workload.identity/client-id": "00000000-0000-0000-0000-000000000001"}}}),
        ),
        (
            "",
            "v1",
            "ConfigMap",
            "configmaps",
            true,
            json!({"metadata": {"name": "orders-db-config"}, "data": {"postgresql.conf": "max_connections = 200\n"}}),
        ),
        (
            "",
            "v1",
            "Secret",
            "secrets",
            true,
            json!({"metadata": {"name": "orders-db-bootstrap"}, "stringData": {"user": "postgres"}}),
        ),
        (
            "",
            "v1",
            "Service",
            "services",
            true,
            json!({"metadata": {"name": "orders-db-headless"},
            "spec": {"clusterIP": "None", "publishNotReadyAddresses": true, "selector": {"app.kubernetes.io/name": "orders-db"},
                     "ports": [{"name": "postgres", "port": 5432}]}}),
        ),
        (
            "",
            "v1",
            "Service",
            "services",
            true,
            json!({"metadata": {"name": "orders-db"},
            "spec": {"selector": {"app.kubernetes.io/name": "orders-db"}, "ports": [{"name": "postgres", "port": 5432, "targetPort": "postgres"}]}}),
        ),
        (
            "policy",
            "v1",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
            true,
            json!({"metadata": {"name": "orders-db"},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": "orders-db"}}}}),
        ),
        (
            "external-secrets.io",
            "v1",
            "SecretStore",
            "secretstores",
            true,
            json!({"metadata": {"name": "orders-db-kv"},
            "spec": {"provider": {"azurekv": {"vaultUrl": "https://kv-data-prod.vault.azure.net", "authType": "WorkloadIdentity",
                "serviceAccountRef": {"name": "orders-db"}}}}}),
        ),
        (
            "external-secrets.io",
            "v1",
            "ExternalSecret",
            "externalsecrets",
            true,
            json!({"metadata": {"name": "orders-db"},
            "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "orders-db-kv", "kind": "SecretStore"},
                     "target": {"name": "orders-db-secrets", "creationPolicy": "Owner"},
                     "data": [{"secretKey": "superuser-password", "remoteRef": {"key": "orders-db-superuser-password"}}]}}),
        ),
        (
            "velero.io",
            "v1",
            "Schedule",
            "schedules",
            true,
            json!({"metadata": {"name": "orders-db-daily"},
            "spec": {"schedule": "0 2 * * *", "template": {"includedNamespaces": [NS], "snapshotVolumes": true, "ttl": "720h0m0s",
                     "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "orders-db"}}}}}),
        ),
        ("apps", "v1", "StatefulSet", "statefulsets", true, {
            let mut v = statefulset("200Gi", 3);
            v["spec"]["template"]["spec"]["containers"][0]["env"] =
                json!([{"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"}]);
            v["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] =
                json!({"exec": {"command": ["pg_isready"]}});
            v["spec"]["template"]["spec"]["tolerations"] = json!([{"key": "workload", "operator": "Equal", "value": "orders-db", "effect": "NoSchedule"}]);
            v["spec"]["template"]["spec"]["topologySpreadConstraints"] = json!([{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "orders-db"}}}]);
            v
        }),
    ];
    let apply_all = |pass: u32| {
        let c = c.clone();
        let objs = objs.clone();
        async move {
            let mut rvs = Vec::new();
            for (g, v, kind, plural, namespaced, body) in objs {
                let ar =
                    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(g, v, kind), plural);
                let api: Api<DynamicObject> = if namespaced {
                    Api::namespaced_with(c.clone(), NS, &ar)
                } else {
                    Api::all_with(c.clone(), &ar)
                };
                let mut body = body.clone();
                body["apiVersion"] = json!(ar.api_version);
                body["kind"] = json!(kind);
                if namespaced {
                    body["metadata"]["namespace"] = json!(NS);
                }
                let name = body["metadata"]["name"].as_str().unwrap().to_string();
                let got = api
                    .patch(&name, &ssa().validation_strict(), &Patch::Apply(body))
                    .await
                    .unwrap_or_else(|e| panic!("pass {pass}: {kind} {name}: {e}"));
                rvs.push((
                    format!("{kind}/{name}"),
                    got.metadata.resource_version.unwrap(),
                ));
            }
            rvs
        }
    };
    let first = apply_all(1).await;
    // Managed-fields times have second precision: make a change visible.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = apply_all(2).await;
    assert_eq!(first, second, "re-apply changed objects");
    // The controller's status writes do not disturb stateplan's fields either.
    d.settle(100);
    let third = apply_all(3).await;
    for ((k, a), (_, b)) in second.iter().zip(third.iter()) {
        if !k.starts_with("StatefulSet")
            && !k.starts_with("PodDisruptionBudget")
            && !k.starts_with("ExternalSecret")
            && !k.starts_with("SecretStore")
        {
            assert_eq!(a, b, "{k}");
        }
    }
    let fourth = apply_all(4).await;
    assert_eq!(third, fourth);
}

#[tokio::test]
async fn timed_controller_brings_a_statefulset_to_readiness() {
    let (d, c) = cluster().await;
    d.set_controller(Some(Duration::from_millis(5)));
    let sts: Api<StatefulSet> = Api::namespaced(c.clone(), NS);
    sts.patch("orders-db", &ssa(), &Patch::Apply(statefulset("200Gi", 3)))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let s = sts
            .get("orders-db")
            .await
            .unwrap()
            .status
            .unwrap_or_default();
        if s.ready_replicas == Some(3) && s.observed_generation == Some(1) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not ready in time: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    d.set_controller(None);
    // Service ports are keyed by port and protocol in managedFields, as on a real server.
    let svc = dyn_api(&c, "", "v1", "Service", "services");
    let got = svc
        .patch(
            "orders-db",
            &ssa(),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "orders-db", "namespace": NS},
                "spec": {"selector": {"app.kubernetes.io/name": "orders-db"}, "ports": [{"name": "postgres", "port": 5432}]}})),
        )
        .await
        .unwrap();
    let got = serde_json::to_value(&got).unwrap();
    assert_eq!(
        got["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"],
        json!({"f:ports": {"k:{\"port\":5432,\"protocol\":\"TCP\"}": {".": {}, "f:name": {}, "f:port": {}}}, "f:selector": {}})
    );
    assert_eq!(
        got["spec"]["ports"][0],
        json!({"name": "postgres", "port": 5432, "protocol": "TCP", "targetPort": 5432})
    );
    assert_eq!(got["spec"]["type"], "ClusterIP");
    assert!(
        got["spec"]["clusterIP"]
            .as_str()
            .unwrap()
            .starts_with("10.0.")
    );
}

#[tokio::test]
async fn odd_shapes_in_patches_never_crash_the_handler() {
    let (d, c) = cluster().await;
    sts_api(&c)
        .patch("orders-db", &ssa(), &Patch::Apply(statefulset("200Gi", 3)))
        .await
        .unwrap();
    d.settle(100);
    let sts = "/apis/apps/v1/namespaces/orders/statefulsets/orders-db";
    let pvc = "/api/v1/namespaces/orders/persistentvolumeclaims/data-orders-db-0";
    let merge = "application/merge-patch+json";
    let smp = "application/strategic-merge-patch+json";
    let apply = "application/apply-patch+yaml";
    let sts_fm = format!("{sts}?fieldManager=x");
    let sts_force = format!("{sts}?fieldManager=x&force=true");
    let cases: Vec<(&str, &str, &str, &[u8])> = vec![
        ("PATCH", sts, merge, br#"{"spec": 5}"#),
        ("PATCH", sts, merge, br#"{"metadata": []}"#),
        ("PATCH", sts, merge, br#"{"metadata": {"labels": "x"}}"#),
        ("PATCH", sts, merge, br#"{"spec": {"template": {"spec": {"containers": "x"}}}}"#),
        ("PATCH", sts, smp, br#"{"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}"#),
        ("PATCH", sts, smp, br#"{"spec": {"volumeClaimTemplates": [1, "a", null]}}"#),
        ("PATCH", sts, merge, b"null"),
        ("PATCH", sts, merge, b"[]"),
        ("PATCH", pvc, merge, br#"{"spec": {"resources": {"requests": {"storage": "lots"}}}}"#),
        ("PATCH", pvc, merge, br#"{"spec": {"resources": {"requests": {"storage": 12}}}}"#),
        ("PATCH", pvc, merge, br#"{"spec": null, "status": null}"#),
        ("PATCH", &sts_fm, apply, br#"{"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": "x"}"#),
        ("PATCH", &sts_fm, apply, br#"{"apiVersion": "apps/v1", "kind": "StatefulSet", "spec": {"replicas": "three"}}"#),
        ("PATCH", &sts_fm, apply, br#"{"apiVersion": "apps/v1", "kind": "StatefulSet", "spec": {"template": {"spec": {"containers": [{"ports": [{"containerPort": "x"}]}]}}}}"#),
        ("PATCH", &sts_force, apply, b"apiVersion: apps/v1\nkind: StatefulSet\nspec:\n  replicas: 2\n"),
        ("PUT", sts, "application/json", br#"{"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "orders-db"}, "spec": []}"#),
        ("POST", "/api/v1/namespaces/orders/configmaps", "application/json", br#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "x-"}, "data": {"a": 1}}"#),
        ("DELETE", sts, "application/json", br#"{"propagationPolicy": 5, "preconditions": {"uid": 3}}"#),
    ];
    for (m, path, ct, body) in cases {
        let (code, status) = raw(&d, m, path, ct, body).await;
        assert_ne!(
            status["message"],
            "kube double: handler panicked",
            "{m} {path} {}",
            String::from_utf8_lossy(body)
        );
        assert!(
            code < 500 || status["kind"] == "Status",
            "{m} {path}: {code}"
        );
        d.tick();
    }
    d.settle(100);
    assert!(c.apiserver_version().await.is_ok());
}
