//! Scenario tests of the Azure half of plan/apply against the local ARM /
//! Key Vault double (tests/support/arm_double), through the real HTTP client.

#[path = "support/arm_double/mod.rs"]
mod arm_double;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arm_double::{ArmDouble, FaultKind};
use serde_json::{Value, json};
use stateplan::azure::apply::{ApplyOptions, apply};
use stateplan::azure::client::{AzureClient, Endpoints, HttpStack, RetryPolicy};
use stateplan::azure::credential::StaticToken;
use stateplan::azure::plan::{Action, AzurePlan, PlanOptions, plan};
use stateplan::azure::{AzureArgs, AzureError, resolve_placeholders};
use stateplan::pipeline::{self, Loaded};

const CLUSTER: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-data-prod/providers/Microsoft.ContainerService/managedClusters/aks-prod";
const ISSUER: &str = "https://northeurope.oic.prod-aks.azure.com/b6c948ef-f6b5-4384-8354-da3a15eca969/4f1b7a0c-0000-0000-0000-000000000000/";
const POOL: &str = "ordersdb";

fn blueprint(node_pool: &str) -> String {
    format!(
        r#"name = "orders"

[target]
subscription = "00000000-0000-0000-0000-000000000000"
resource_group = "rg-data-prod"
cluster = "aks-prod"
location = "northeurope"
key_vault = "kv-data-prod"

[workloads.orders-db]
engine = "postgres"
version = "17"
replicas = 3
storage = "200Gi"
tier = "fast-ssd"
redundancy = "zone-redundant"
namespace = "orders"
resources = {{ cpu = "2", memory = "8Gi" }}
secrets = ["app-password"]
node_pool = {{ {node_pool} }}
"#
    )
}

fn load(node_pool: &str) -> Loaded {
    load_text(&blueprint(node_pool))
}

fn load_text(text: &str) -> Loaded {
    let dir = std::env::temp_dir().join(format!(
        "stateplan-azure-{}-{}",
        std::process::id(),
        uuid_like()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("blueprint.toml");
    std::fs::write(&path, text).expect("write blueprint");
    let loaded = pipeline::load(path.to_str().expect("utf-8 path"), None)
        .unwrap_or_else(|d| panic!("blueprint does not load: {d:?}"));
    let _ = std::fs::remove_dir_all(&dir);
    loaded
}

fn uuid_like() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn base() -> Loaded {
    load(r#"vm_size = "Standard_E8ds_v5", count = 3"#)
}

fn sku(name: &str, zones: &[&str]) -> Value {
    json!({
        "resourceType": "virtualMachines",
        "name": name,
        "tier": "Standard",
        "size": name.trim_start_matches("Standard_"),
        "family": "standardEDSv5Family",
        "locations": ["northeurope"],
        "locationInfo": [{
            "location": "northeurope",
            "zones": zones,
            "zoneDetails": [{"name": zones, "capabilities": [{"name": "UltraSSDAvailable", "value": "True"}]}]
        }],
        "capabilities": [
            {"name": "vCPUs", "value": "8"},
            {"name": "PremiumIO", "value": "True"},
            {"name": "EphemeralOSDiskSupported", "value": "True"}
        ],
        "restrictions": []
    })
}

struct Env {
    d: ArmDouble,
    client: AzureClient,
    progress: Arc<Mutex<Vec<String>>>,
}

async fn env() -> Env {
    let d = ArmDouble::start().await;
    d.set_cluster(CLUSTER, Some(ISSUER), true);
    let mut skus = ArmDouble::example_skus();
    skus.push(sku("Standard_E8ds_v5", &["1", "2", "3"]));
    skus.push(sku("Standard_E16ds_v5", &["1", "2", "3"]));
    d.set_skus(skus);
    let endpoints = Endpoints::new(Some(&d.url()), Some(&d.url())).expect("loopback endpoints");
    let progress = Arc::new(Mutex::new(Vec::new()));
    let p = progress.clone();
    let client = AzureClient::new(
        HttpStack::new().expect("http stack"),
        endpoints,
        Arc::new(StaticToken::new("test-token")),
    )
    .with_retry(RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_secs(2),
        poll_interval: Duration::from_millis(5),
        operation_timeout: Duration::from_secs(30),
        request_timeout: Duration::from_secs(10),
    })
    .with_progress(Arc::new(move |pr| {
        if let Ok(mut v) = p.lock() {
            v.push(format!("{} {}", pr.resource, pr.status));
        }
    }));
    Env {
        d,
        client,
        progress,
    }
}

async fn plan_of(e: &Env, l: &Loaded, allow_replace: bool) -> Result<AzurePlan, AzureError> {
    plan(
        &e.client,
        &l.state,
        &l.rendered.azure,
        &PlanOptions { allow_replace },
    )
    .await
}

fn actions(p: &AzurePlan) -> Vec<(String, &'static str, String)> {
    p.summary()
        .into_iter()
        .map(|r| (r.label, r.kind, r.name))
        .collect()
}

async fn applied(e: &Env, l: &Loaded) -> AzurePlan {
    let p = plan_of(e, l, false).await.expect("plan");
    let report = apply(&e.client, &p, &ApplyOptions::default())
        .await
        .unwrap_or_else(|f| panic!("apply failed: {f}"));
    assert!(report.follow_ups.is_empty(), "{:?}", report.follow_ups);
    p
}

#[tokio::test]
async fn fresh_create_then_replan_has_no_changes() {
    let e = env().await;
    let l = base();
    let p = plan_of(&e, &l, false).await.expect("plan");
    let rows = actions(&p);
    assert_eq!(rows[0], ("create".into(), "AgentPool", POOL.into()));
    assert_eq!(rows[1].0, "create");
    assert_eq!(rows[1].1, "UserAssignedIdentity");
    assert_eq!(rows[2].1, "FederatedIdentityCredential");
    // The secrets, then one role assignment on each (its scope must exist).
    let kinds: Vec<&str> = rows[3..].iter().map(|r| r.1).collect();
    assert_eq!(
        kinds,
        [
            "KeyVaultSecret",
            "KeyVaultSecret",
            "KeyVaultSecret",
            "RoleAssignment",
            "RoleAssignment",
            "RoleAssignment"
        ]
    );
    let secrets: Vec<_> = rows.iter().filter(|r| r.1 == "KeyVaultSecret").collect();
    assert!(secrets.iter().all(|r| r.0 == "create (generated)"));
    assert_eq!(p.change_count(), 9);
    // Plan reads only.
    assert!(e.d.writes().is_empty(), "{:?}", e.d.writes());

    let report = apply(&e.client, &p, &ApplyOptions::default())
        .await
        .unwrap_or_else(|f| panic!("apply failed: {f}"));
    assert_eq!(report.applied.len(), 9);
    // Long-running agent pool creation was polled, with progress.
    let progress = e.progress.lock().expect("lock").clone();
    assert!(
        progress
            .iter()
            .any(|p| p == "AgentPool/ordersdb InProgress"),
        "{progress:?}"
    );
    assert!(
        progress.iter().any(|p| p == "AgentPool/ordersdb Succeeded"),
        "{progress:?}"
    );
    let pool =
        e.d.resource(&format!("{CLUSTER}/agentPools/{POOL}"))
            .expect("pool");
    assert_eq!(pool["properties"]["provisioningState"], "Succeeded");
    assert_eq!(
        pool["properties"]["availabilityZones"],
        json!(["1", "2", "3"])
    );

    // Azure-assigned values flow back, keyed by placeholder.
    let identity =
        e.d.resource(&l.state.workloads[0].identity.id)
            .expect("identity");
    let client_id = identity["properties"]["clientId"]
        .as_str()
        .expect("clientId");
    let principal = identity["properties"]["principalId"]
        .as_str()
        .expect("principalId");
    let key = "stateplan-pending:azure/identity/id-orders-orders-db/clientId";
    assert_eq!(
        report.resolved.get(key).map(String::as_str),
        Some(client_id)
    );
    assert_eq!(
        report
            .resolved
            .get("stateplan-pending:azure/cluster/aks-prod/oidcIssuerUrl")
            .map(String::as_str),
        Some(ISSUER)
    );
    let fic =
        e.d.resource(&format!(
            "{}/federatedIdentityCredentials/aks-prod-orders-orders-db-secrets",
            l.state.workloads[0].identity.id
        ))
        .expect("federated credential");
    assert_eq!(fic["properties"]["issuer"], ISSUER);
    assert_eq!(
        fic["properties"]["subject"],
        "system:serviceaccount:orders:orders-db-secrets"
    );
    // Each secret readable by its workload's identity, and only that secret.
    let vault_id = &l.state.target.vault_id;
    let mut scopes = Vec::new();
    for ra in l
        .rendered
        .azure
        .iter()
        .filter(|r| r.kind.as_str() == "RoleAssignment")
    {
        let live_ra = e.d.resource(&ra.id).expect("live role assignment");
        assert_eq!(live_ra["properties"]["principalId"], principal);
        assert!(
            live_ra["properties"]["roleDefinitionId"]
                .as_str()
                .is_some_and(|r| r.ends_with("/4633458b-17de-408a-b874-0445c86b69e6"))
        );
        scopes.push(
            live_ra["properties"]["scope"]
                .as_str()
                .expect("scope")
                .to_string(),
        );
    }
    let expected: Vec<String> = ["app-password", "replication-password", "superuser-password"]
        .iter()
        .map(|s| format!("{vault_id}/secrets/orders-db-{s}"))
        .collect();
    scopes.sort();
    assert_eq!(scopes, expected);

    // The Kubernetes half can fill in its placeholders: none left.
    let mut sa = l
        .rendered
        .objects
        .iter()
        .find(|o| o.body["kind"] == "ServiceAccount" && o.body.to_string().contains("client-id"))
        .expect("ESO service account")
        .body
        .clone();
    resolve_placeholders(&mut sa, &report.resolved);
    assert_eq!(
        sa["metadata"]["annotations"]["azure.workload.identity/client-id"],
        client_id
    );
    // External Secrets needs the tenant next to the client ID.
    assert_eq!(
        sa["metadata"]["annotations"]["azure.workload.identity/tenant-id"],
        identity["properties"]["tenantId"]
    );
    assert!(!sa.to_string().contains("stateplan-pending:"));

    // Secrets: generated, 32 alphanumerics, never in any output.
    let values: Vec<String> =
        e.d.secret_names()
            .iter()
            .map(|n| e.d.secret_value(n).expect("value"))
            .collect();
    assert_eq!(values.len(), 3);
    for v in &values {
        assert_eq!(v.len(), 32);
        assert!(v.bytes().all(|b| b.is_ascii_alphanumeric()));
    }
    let outputs = [
        serde_json::to_string(&p).expect("plan json"),
        p.to_text(),
        format!("{p:?}"),
        serde_json::to_string(&report).expect("report json"),
        format!("{report:?}"),
        format!("{:?}", e.progress.lock().expect("lock")),
    ];
    for v in &values {
        for o in &outputs {
            assert!(!o.contains(v.as_str()), "secret value leaked");
        }
    }

    // Re-plan: nothing to do, nothing written.
    e.d.clear_requests();
    let again = plan_of(&e, &l, false).await.expect("re-plan");
    assert!(!again.has_changes(), "{}", again.to_text());
    assert!(again.changes.iter().all(|c| c.action == Action::Unchanged));
    assert!(
        again
            .summary()
            .iter()
            .filter(|r| r.kind == "KeyVaultSecret")
            .all(|r| r.label == "exists")
    );
    assert_eq!(again.resolved.get(key).map(String::as_str), Some(client_id));
    assert!(e.d.writes().is_empty());
    // No SKU list on a no-op plan; one request per resource otherwise, and
    // one for a vault-wide assignment an earlier version may have left.
    let reqs = e.d.requests();
    assert!(
        !reqs.iter().any(|r| r.contains("Microsoft.Compute/skus")),
        "{reqs:?}"
    );
    assert_eq!(reqs.len(), 2 + 8 + 1, "{reqs:?}");
    let again_report = apply(&e.client, &again, &ApplyOptions::default())
        .await
        .expect("no-op apply");
    assert!(again_report.applied.is_empty());
    assert!(e.d.writes().is_empty());
}

/// The longest names the blueprint allows (63-character namespace,
/// 40-character workload) still make names ARM accepts: the federated
/// credential's would be 121 characters if not shortened.
#[tokio::test]
async fn longest_names_are_accepted_by_arm() {
    let e = env().await;
    let (name, namespace) = ("o".repeat(40), "n".repeat(63));
    let text = blueprint(r#"vm_size = "Standard_E8ds_v5", count = 3"#)
        .replace("[workloads.orders-db]", &format!("[workloads.{name}]"))
        .replace(
            "namespace = \"orders\"",
            &format!("namespace = \"{namespace}\""),
        );
    let l = load_text(&text);
    let fic = &l.state.workloads[0].identity.federated_credential;
    assert!(format!("aks-prod-{namespace}-{name}-secrets").len() > 120);
    assert!(fic.len() <= 120 && fic.starts_with("aks-prod-nnn"), "{fic}");
    let p = applied(&e, &l).await;
    assert!(
        actions(&p)
            .iter()
            .any(|r| r.1 == "FederatedIdentityCredential" && &r.2 == fic),
        "{:?}",
        actions(&p)
    );
}

#[tokio::test]
async fn count_change_is_an_in_place_update() {
    let e = env().await;
    applied(&e, &base()).await;
    let l = load(r#"vm_size = "Standard_E8ds_v5", count = 5"#);
    let p = plan_of(&e, &l, false).await.expect("plan");
    let pool = &p.changes[0];
    assert_eq!(pool.action, Action::Update, "{}", p.to_text());
    assert_eq!(pool.fields.len(), 1, "{:?}", pool.fields);
    assert_eq!(pool.fields[0].field, "properties.count");
    assert_eq!(pool.fields[0].live, json!(3));
    assert_eq!(pool.fields[0].desired, json!(5));
    assert!(!pool.fields[0].immutable);
    assert_eq!(p.change_count(), 1, "{}", p.to_text());
    e.d.clear_requests();
    apply(&e.client, &p, &ApplyOptions::default())
        .await
        .unwrap_or_else(|f| panic!("{f}"));
    let puts: Vec<_> = e.d.writes();
    assert_eq!(puts, vec![format!("PUT {CLUSTER}/agentPools/{POOL}")]);
    let live =
        e.d.resource(&format!("{CLUSTER}/agentPools/{POOL}"))
            .expect("pool");
    assert_eq!(live["properties"]["count"], 5);
    assert!(!plan_of(&e, &l, false).await.expect("re-plan").has_changes());
    assert_eq!(p.changes[0].reason, "in place: count");
    // Fewer nodes: the plan says what AKS does with them.
    let fewer = load(r#"vm_size = "Standard_E8ds_v5", count = 3"#);
    let p = plan_of(&e, &fewer, false).await.expect("plan");
    assert!(
        p.changes[0]
            .reason
            .starts_with("in place: count; fewer nodes: AKS chooses which nodes go"),
        "{}",
        p.changes[0].reason
    );
}

/// A plan that would take the cluster past AKS's 100 node pools is refused
/// before anything is created.
#[tokio::test]
async fn a_cluster_full_of_node_pools_is_refused_at_plan() {
    let e = env().await;
    for i in 0..100 {
        let name = format!("pool{i:03}");
        e.d.put_resource(
            &format!("{CLUSTER}/agentPools/{name}"),
            json!({"name": name, "properties": {"count": 1, "vmSize": "Standard_D2ds_v5", "mode": "User"}}),
        );
    }
    let err = plan_of(&e, &base(), false).await.expect_err("refused");
    assert!(matches!(err, AzureError::Precondition(_)), "{err}");
    assert!(
        err.to_string()
            .contains("has 100 node pools and this plan adds 1; AKS allows at most 100"),
        "{err}"
    );
    assert!(e.d.writes().is_empty(), "{:?}", e.d.writes());
}

/// An agent pool PUT replaces the whole pool: an update must send back
/// what stateplan does not manage (subnet, upgrade settings, version).
#[tokio::test]
async fn pool_update_keeps_what_stateplan_does_not_manage() {
    let e = env().await;
    applied(&e, &base()).await;
    let id = format!("{CLUSTER}/agentPools/{POOL}");
    let mut live = e.d.resource(&id).expect("pool");
    let subnet = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/vnet/subnets/db";
    live["properties"]["vnetSubnetID"] = json!(subnet);
    live["properties"]["upgradeSettings"] = json!({"maxSurge": "1"});
    live["properties"]["orchestratorVersion"] = json!("1.32.6");
    live["properties"]["currentOrchestratorVersion"] = json!("1.32.6");
    e.d.put_resource(&id, live);

    let l = load(r#"vm_size = "Standard_E8ds_v5", count = 5"#);
    let p = plan_of(&e, &l, false).await.expect("plan");
    assert_eq!(p.changes[0].action, Action::Update, "{}", p.to_text());
    apply(&e.client, &p, &ApplyOptions::default())
        .await
        .unwrap_or_else(|f| panic!("{f}"));
    let after = e.d.resource(&id).expect("pool");
    assert_eq!(after["properties"]["count"], 5);
    assert_eq!(after["properties"]["vnetSubnetID"], subnet);
    assert_eq!(
        after["properties"]["upgradeSettings"],
        json!({"maxSurge": "1"})
    );
    assert_eq!(
        after["properties"]["orchestratorVersion"], "1.32.6",
        "an update must not upgrade the pool"
    );
    assert!(!plan_of(&e, &l, false).await.expect("re-plan").has_changes());
}

#[tokio::test]
async fn vm_size_change_is_a_replace_that_needs_the_flag() {
    let e = env().await;
    applied(&e, &base()).await;
    let l = load(r#"vm_size = "Standard_E16ds_v5", count = 3"#);
    let p = plan_of(&e, &l, false).await.expect("plan");
    let pool = &p.changes[0];
    assert_eq!(pool.action, Action::Replace);
    assert_eq!(pool.fields[0].field, "properties.vmSize");
    assert!(pool.fields[0].immutable);
    assert_eq!(pool.blocked.as_deref(), Some("needs --allow-replace"));
    assert_eq!(pool.replacement.as_deref(), Some("ordersdb2"));
    assert_eq!(p.summary()[0].label, "replace (blocked)");

    // Refused without the flag; nothing changed.
    e.d.clear_requests();
    let err = apply(&e.client, &p, &ApplyOptions::default())
        .await
        .expect_err("must refuse");
    let msg = err.to_string();
    assert!(
        msg.contains("--allow-replace") && msg.contains("vmSize"),
        "{msg}"
    );
    assert!(e.d.requests().is_empty());

    // With the flag: a new pool; the old one still runs workloads → kept.
    let p = plan_of(&e, &l, true).await.expect("plan");
    let opts = ApplyOptions {
        allow_replace: true,
        ..Default::default()
    };
    let report = apply(&e.client, &p, &opts)
        .await
        .unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(report.follow_ups.len(), 1, "{report:?}");
    assert!(report.follow_ups[0].contains("kept"));
    let new =
        e.d.resource(&format!("{CLUSTER}/agentPools/ordersdb2"))
            .expect("new pool");
    assert_eq!(new["properties"]["vmSize"], "Standard_E16ds_v5");
    assert_eq!(new["properties"]["nodeLabels"]["stateplan.io/pool"], POOL);
    assert!(
        e.d.resource(&format!("{CLUSTER}/agentPools/{POOL}"))
            .is_some()
    );

    // Next plan: the new pool matches, the old one is superseded.
    let p = plan_of(&e, &l, false).await.expect("plan");
    let rows = actions(&p);
    assert_eq!(
        rows[0],
        ("unchanged".into(), "AgentPool", "ordersdb2".into())
    );
    assert_eq!(rows[1], ("delete".into(), "AgentPool", POOL.into()));
    // Only once the caller says no workload runs there is it deleted.
    let opts = ApplyOptions {
        idle_pools: BTreeSet::from([POOL.to_string()]),
        ..Default::default()
    };
    apply(&e.client, &p, &opts)
        .await
        .unwrap_or_else(|f| panic!("{f}"));
    assert!(
        e.d.resource(&format!("{CLUSTER}/agentPools/{POOL}"))
            .is_none()
    );
    assert!(!plan_of(&e, &l, false).await.expect("plan").has_changes());
}

#[tokio::test]
async fn existing_secret_is_untouched() {
    let e = env().await;
    e.d.seed_secret("orders-db-app-password", "chosen-by-a-human");
    let l = base();
    let p = plan_of(&e, &l, false).await.expect("plan");
    let row = p
        .summary()
        .into_iter()
        .find(|r| r.name == "orders-db-app-password")
        .expect("row");
    assert_eq!(row.label, "exists");
    assert_eq!(row.action, "unchanged");
    let text = p.to_text();
    assert!(!text.contains("chosen-by-a-human"));
    assert!(
        !serde_json::to_string(&p)
            .expect("json")
            .contains("chosen-by-a-human")
    );
    apply(&e.client, &p, &ApplyOptions::default())
        .await
        .unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(
        e.d.secret_value("orders-db-app-password").as_deref(),
        Some("chosen-by-a-human")
    );
    assert_eq!(e.d.secret_versions("orders-db-app-password"), 1);
    assert_eq!(e.d.secret_versions("orders-db-superuser-password"), 1);
}

/// Earlier versions gave each identity read access to the whole vault.
/// Plan replaces that with per-secret assignments and deletes it last.
#[tokio::test]
async fn a_vault_wide_assignment_is_replaced_by_per_secret_ones() {
    let e = env().await;
    let l = base();
    applied(&e, &l).await;
    let identity = &l.state.workloads[0].identity;
    let principal =
        e.d.resource(&identity.id).expect("identity")["properties"]["principalId"].clone();
    let old =
        stateplan::render::azure::vault_wide_assignment_id(&l.state.target.vault_id, &identity.id);
    e.d.put_resource(
        &old,
        json!({"id": old, "name": old.rsplit('/').next(), "type": "Microsoft.Authorization/roleAssignments",
               "properties": {"principalId": principal, "scope": l.state.target.vault_id,
                              "roleDefinitionId": "/subscriptions/00000000-0000-0000-0000-000000000000/providers/Microsoft.Authorization/roleDefinitions/4633458b-17de-408a-b874-0445c86b69e6"}}),
    );
    let p = plan_of(&e, &l, false).await.expect("plan");
    let rows = actions(&p);
    assert_eq!(rows.len(), 10, "{rows:?}");
    let last = rows.last().expect("rows");
    assert_eq!(
        (last.0.as_str(), last.1),
        ("delete", "RoleAssignment"),
        "{rows:?}"
    );
    let reason = &p.changes.last().expect("changes").reason;
    assert_eq!(
        reason,
        "vault-wide read access of id-orders-orders-db, replaced by one assignment per secret"
    );
    assert_eq!(p.change_count(), 1);
    apply(&e.client, &p, &ApplyOptions::default())
        .await
        .unwrap_or_else(|f| panic!("{f}"));
    assert!(e.d.resource(&old).is_none());
    assert!(!plan_of(&e, &l, false).await.expect("plan").has_changes());
}

#[tokio::test]
async fn a_secret_generated_for_another_blueprint_is_refused() {
    // Staging and production blueprints sharing a vault, both with a
    // workload orders-db: production must not adopt staging's password.
    let e = env().await;
    e.d.seed_secret_tagged(
        "orders-db-app-password",
        "staging-value",
        json!({"managed-by": "stateplan", "stateplan-blueprint": "orders-staging", "stateplan-workload": "orders-db"}),
    );
    let l = base();
    let p = plan_of(&e, &l, false).await.expect("plan");
    assert_eq!(
        p.refusals(),
        vec!["KeyVaultSecret/orders-db-app-password: the secret belongs to workload orders-db of blueprint orders-staging (its tags), whose database uses its value; give this blueprint its own key_vault or rename the workload".to_string()]
    );
    // The plan as shown refuses (exit 1) and says why; no flag lifts it.
    let shown = stateplan::plan::combined::azure_only("orders", &p);
    assert_eq!(shown.exit_code(), 1);
    assert!(shown.rows.iter().all(|r| r.needs.is_none()));
    let err = apply(
        &e.client,
        &p,
        &ApplyOptions {
            allow_replace: true,
            ..Default::default()
        },
    )
    .await
    .expect_err("refused");
    assert!(matches!(err.error, AzureError::Precondition(_)), "{err}");
    // Nothing was changed.
    assert!(e.d.resource(&l.state.workloads[0].identity.id).is_none());
    assert_eq!(e.d.secret_versions("orders-db-app-password"), 1);
    assert_eq!(
        e.d.secret_names(),
        vec!["orders-db-app-password".to_string()]
    );
}

#[tokio::test]
async fn failed_long_running_operation_reports_azures_message() {
    let e = env().await;
    e.d.fault(
        "PUT",
        "/agentpools/",
        1,
        FaultKind::FailOperation {
            code: "QuotaExceeded".into(),
            message: "Operation could not be completed as it results in exceeding approved standardEDSv5Family Cores quota.".into(),
        },
    );
    let l = base();
    let p = plan_of(&e, &l, false).await.expect("plan");
    let err = apply(&e.client, &p, &ApplyOptions::default())
        .await
        .expect_err("must fail");
    let msg = err.to_string();
    assert!(msg.contains("AgentPool/ordersdb"), "{msg}");
    assert!(msg.contains("Failed (QuotaExceeded)"), "{msg}");
    assert!(
        msg.contains("exceeding approved standardEDSv5Family Cores quota"),
        "{msg}"
    );
    assert!(matches!(err.error, AzureError::Operation { .. }));
    // Stopped at the pool: no identity was created.
    assert!(e.d.resource(&l.state.workloads[0].identity.id).is_none());
    // Re-running converges (the failed pool is re-applied).
    let p = plan_of(&e, &l, false).await.expect("plan");
    assert_eq!(p.changes[0].action, Action::Update, "{}", p.to_text());
    apply(&e.client, &p, &ApplyOptions::default())
        .await
        .unwrap_or_else(|f| panic!("{f}"));
    assert!(!plan_of(&e, &l, false).await.expect("plan").has_changes());
}

#[tokio::test]
async fn throttling_is_retried_after_retry_after() {
    let e = env().await;
    e.d.fault(
        "GET",
        "/agentpools",
        2,
        FaultKind::Throttle { retry_after: 1 },
    );
    let started = std::time::Instant::now();
    let l = base();
    let p = plan_of(&e, &l, false)
        .await
        .expect("plan succeeds after retries");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "Retry-After honoured"
    );
    assert_eq!(p.change_count(), 9);
    let pool_lists =
        e.d.requests()
            .iter()
            .filter(|r| r.ends_with("/agentPools"))
            .count();
    assert_eq!(pool_lists, 3);

    // Bounded: a server that keeps throttling ends in a typed error.
    e.d.fault(
        "GET",
        "/userassignedidentities/",
        10,
        FaultKind::Throttle { retry_after: 0 },
    );
    let err = plan_of(&e, &l, false).await.expect_err("gives up");
    assert_eq!(err.status(), Some(429), "{err}");
    assert_eq!(err.code(), Some("TooManyRequests"));
}

#[tokio::test]
async fn plain_http_to_a_non_loopback_endpoint_is_refused() {
    let err = Endpoints::new(Some("http://management.example.com"), None).expect_err("refused");
    assert!(err.to_string().contains("not a loopback address"), "{err}");
    let args = AzureArgs {
        arm_endpoint: None,
        keyvault_endpoint: Some("http://10.1.2.3:8080".into()),
    };
    let err = args.endpoints().expect_err("refused");
    assert!(err.to_string().contains("--keyvault-endpoint"), "{err}");
    assert!(
        AzureArgs {
            arm_endpoint: Some("http://127.0.0.1:9".into()),
            keyvault_endpoint: Some("https://{vault}.vault.azure.cn".into()),
        }
        .endpoints()
        .is_ok()
    );
}

#[tokio::test]
async fn missing_oidc_issuer_names_the_fix() {
    let e = env().await;
    e.d.set_cluster(CLUSTER, None, false);
    let err = plan_of(&e, &base(), false).await.expect_err("must fail");
    let msg = err.to_string();
    assert!(
        msg.contains("the OIDC issuer and workload identity"),
        "{msg}"
    );
    assert!(
        msg.contains("az aks update --enable-oidc-issuer --enable-workload-identity -g rg-data-prod -n aks-prod"),
        "{msg}"
    );
}

#[tokio::test]
async fn vm_size_not_offered_in_a_zone() {
    let e = env().await;
    e.d.set_skus(vec![sku("Standard_E8ds_v5", &["1", "2"])]);
    let err = plan_of(&e, &base(), false).await.expect_err("must fail");
    let msg = err.to_string();
    assert!(
        msg.contains(
            "Standard_E8ds_v5 is not offered in zone 3 of northeurope for this subscription"
        ),
        "{msg}"
    );
    assert!(e.d.writes().is_empty());
}

#[tokio::test]
async fn unknown_properties_are_rejected_like_arm() {
    let e = env().await;
    let err = e
        .client
        .arm_put::<_, Value>(
            &format!("{CLUSTER}/agentPools/bogus"),
            "2026-08-01",
            &json!({"properties": {"vmSize": "Standard_E8ds_v5", "turbo": true}}),
            "AgentPool/bogus",
        )
        .await
        .expect_err("400");
    assert_eq!(err.status(), Some(400));
    assert_eq!(err.code(), Some("InvalidRequestContent"));
    assert!(
        err.to_string().contains("Could not find member 'turbo'"),
        "{err}"
    );
    // 404 from ARM is `None` for a GET, a typed error otherwise.
    let none: Option<Value> = e
        .client
        .arm_get(&format!("{CLUSTER}/agentPools/nothere"), "2026-08-01")
        .await
        .expect("404 → None");
    assert!(none.is_none());
    let err = e
        .client
        .arm_get::<Value>(&format!("{CLUSTER}/agentPools/x"), "2019-01-01")
        .await
        .expect_err("bad api-version");
    assert_eq!(err.code(), Some("InvalidApiVersionParameter"));
}

#[tokio::test]
async fn no_credential_says_to_run_az_login() {
    // Meaningful only where neither workload identity nor a logged-in CLI
    // is around (as on CI runners and here).
    let on_path = |tool: &str| {
        std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).exists()))
    };
    if std::env::var_os("AZURE_FEDERATED_TOKEN_FILE").is_some() || on_path("az") || on_path("azd") {
        return;
    }
    let http = HttpStack::new().expect("http stack");
    let tokens = stateplan::azure::credential::default_token_source(&http).expect("source");
    assert_eq!(tokens.describe(), "Azure CLI / azd");
    let err = tokens
        .token("https://management.azure.com/.default")
        .await
        .expect_err("no credential here");
    let msg = err.to_string();
    assert!(msg.contains("run `az login`"), "{msg}");
}
