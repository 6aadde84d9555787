//! Azure and Kubernetes halves together, as `stateplan apply` runs them:
//! one combined plan (Azure rows first), Azure applied first, then the
//! Kubernetes half with the values Azure assigned — no placeholder ever
//! reaches the cluster — and a re-plan with no changes.

#[path = "support/arm_double/mod.rs"]
mod arm_double;
#[path = "support/kube_double/mod.rs"]
mod kube_double;

use std::sync::Arc;
use std::time::Duration;

use arm_double::ArmDouble;
use kube::{Client, Config};
use kube_double::KubeDouble;
use serde_json::json;
use stateplan::apply::{self, ApplyOptions, Outcome, Quiet};
use stateplan::azure::client::{AzureClient, Endpoints, HttpStack};
use stateplan::azure::credential::StaticToken;
use stateplan::compile::PENDING_PREFIX;
use stateplan::pipeline;
use stateplan::plan::{self, Desired, PlanOptions, Scope, combined};

const CLUSTER: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-data-prod/providers/Microsoft.ContainerService/managedClusters/aks-prod";
const ISSUER: &str = "https://westeurope.oic.prod-aks.azure.com/tenant/issuer/";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_both_halves_then_replan_is_clean() {
    // Azure: a cluster with workload identity, SKUs for westeurope.
    let arm = ArmDouble::start().await;
    arm.set_cluster(CLUSTER, Some(ISSUER), true);
    let mut skus = ArmDouble::example_skus();
    skus.push(json!({
        "resourceType": "virtualMachines",
        "name": "Standard_E8ds_v5",
        "tier": "Standard",
        "size": "E8ds_v5",
        "family": "standardEDSv5Family",
        "locations": ["westeurope"],
        "locationInfo": [{"location": "westeurope", "zones": ["1", "2", "3"], "zoneDetails": []}],
        "capabilities": [{"name": "vCPUs", "value": "8"}, {"name": "PremiumIO", "value": "True"}],
        "restrictions": []
    }));
    arm.set_skus(skus);
    let az = AzureClient::new(
        HttpStack::new().expect("http"),
        Endpoints::new(Some(&arm.url()), Some(&arm.url())).expect("loopback endpoints"),
        Arc::new(StaticToken::new("test-token")),
    );
    // Kubernetes: CRDs installed, a controller making pods ready.
    let kd = KubeDouble::start().await;
    kd.install_stateplan_crds();
    kd.seed(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "velero"}}));
    kd.set_controller(Some(Duration::from_millis(5)));
    let kube = Client::try_from(Config::new(kd.url().parse().expect("url"))).expect("client");

    let loaded = pipeline::load("blueprints/postgres-ha.toml", None).expect("renders");
    let desired = Desired {
        blueprint: &loaded.state.blueprint.name,
        objects: &loaded.rendered.objects,
        pending: &loaded.rendered.pending,
        workloads: &loaded.state.workloads,
    };

    // 1. The combined plan: Azure rows (wave 0) first, Kubernetes rows with
    //    "known after apply" where Azure will create the value.
    let az_plan = stateplan::azure::plan(&az, &loaded, &Default::default())
        .await
        .expect("azure plan");
    assert!(az_plan.has_changes());
    let preview = PlanOptions {
        resolved: combined::preview_resolved(&az_plan, desired.pending),
        ..Default::default()
    };
    let kube_plan = plan::plan(&kube, &desired, &preview)
        .await
        .expect("kube plan");
    assert!(kube_plan.refusals.is_empty(), "{:?}", kube_plan.refusals);
    let full = combined::combine(kube_plan, &az_plan);
    assert_eq!(full.rows[0].scope, Scope::Azure);
    assert!(full.rows.iter().any(|r| r.scope == Scope::Kubernetes));
    let first_kube = full
        .rows
        .iter()
        .position(|r| r.scope == Scope::Kubernetes)
        .expect("kube rows");
    assert!(
        full.rows[first_kube..]
            .iter()
            .all(|r| r.scope == Scope::Kubernetes),
        "Azure rows come first"
    );
    assert_eq!(full.exit_code(), 2);
    let text = plan::render_text(&full, false, false);
    assert!(text.contains("azure"), "{text}");
    assert!(
        text.contains("create (generated)"),
        "secrets are generated, never shown: {text}"
    );

    // 2. Azure first; its report resolves every placeholder.
    let report = stateplan::azure::apply(&az, &az_plan, &Default::default())
        .await
        .expect("azure apply");
    let mut resolved = az_plan.resolved.clone();
    resolved.extend(report.resolved.clone());
    for p in &loaded.rendered.pending {
        assert!(
            resolved.contains_key(&p.placeholder),
            "unresolved {}",
            p.placeholder
        );
    }

    // 3. Kubernetes with the real values.
    let opts = ApplyOptions {
        plan: PlanOptions {
            resolved: resolved.clone(),
            ..Default::default()
        },
        timeout: Duration::from_secs(20),
        poll: Duration::from_millis(20),
        lease_duration: Duration::from_secs(5),
        ..Default::default()
    };
    let mut yes = |_: &plan::Plan| true;
    let k = apply::run(&kube, &desired, &opts, &mut yes, &Quiet)
        .await
        .expect("kube apply");
    assert_eq!(k.outcome, Outcome::Applied);
    let sa = kd
        .get("v1", "ServiceAccount", Some("orders"), "orders-db-secrets")
        .expect("service account");
    let client_id = sa["metadata"]["annotations"]["azure.workload.identity/client-id"]
        .as_str()
        .expect("annotation");
    assert!(
        !client_id.starts_with(PENDING_PREFIX) && !client_id.contains("known after"),
        "{client_id}"
    );
    let identity = report
        .resolved
        .iter()
        .find(|(k, _)| k.ends_with("/clientId"))
        .expect("client id resolved");
    assert_eq!(client_id, identity.1);

    // 4. Both halves re-plan to no changes.
    let again = stateplan::azure::plan(&az, &loaded, &Default::default())
        .await
        .expect("azure re-plan");
    assert!(!again.has_changes(), "{}", again.to_text());
    let k2 = plan::plan(
        &kube,
        &desired,
        &PlanOptions {
            resolved: again.resolved.clone(),
            ..Default::default()
        },
    )
    .await
    .expect("kube re-plan");
    let full2 = combined::combine(k2, &again);
    assert_eq!(
        full2.changes(),
        0,
        "{}",
        plan::render_text(&full2, false, true)
    );
    assert_eq!(full2.exit_code(), 0);
}

/// A superseded node pool may be deleted only when no stateplan pod runs on
/// it; other pods do not keep it, and an unreadable cluster keeps every pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_pools_are_those_without_stateplan_pods() {
    use stateplan::live::pools::{AGENT_POOL_LABEL, idle_pools};
    let kd = KubeDouble::start().await;
    for (node, pool) in [("aks-old-1", "old"), ("aks-new-1", "new")] {
        kd.seed(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node, "labels": {AGENT_POOL_LABEL: pool}}}));
    }
    kd.seed(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "db"}}));
    let pod = |name: &str, node: &str, ours: bool| {
        let labels = if ours {
            json!({"app.kubernetes.io/managed-by": "stateplan"})
        } else {
            json!({"app": "other"})
        };
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "db", "labels": labels},
               "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x:1"}]}})
    };
    kd.seed(pod("orders-db-0", "aks-old-1", true));
    kd.seed(pod("other", "aks-new-1", false));
    let kube = Client::try_from(Config::new(kd.url().parse().expect("url"))).expect("client");
    let pools = ["old".to_string(), "new".to_string(), "gone".to_string()];
    let idle = idle_pools(&kube, &pools).await;
    assert_eq!(idle.into_iter().collect::<Vec<_>>(), ["gone", "new"]);
    assert!(kd.remove("v1", "Pod", Some("db"), "orders-db-0"));
    let idle = idle_pools(&kube, &pools).await;
    assert_eq!(idle.len(), 3);

    // A cluster that cannot be read keeps every pool.
    let unreachable =
        Client::try_from(Config::new("http://127.0.0.1:9".parse().expect("url"))).expect("client");
    assert!(idle_pools(&unreachable, &pools).await.is_empty());
}
