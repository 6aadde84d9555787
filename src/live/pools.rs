//! Which AKS node pools still run stateplan workloads: a replaced pool is
//! deleted only once none of our pods is on it.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Client;
use kube::api::{Api, ListParams};

use crate::compile::MANAGED_BY;

/// The node label AKS puts on every node with its agent pool's name.
pub const AGENT_POOL_LABEL: &str = "kubernetes.azure.com/agentpool";

/// The subset of `pools` on which no pod labelled
/// `app.kubernetes.io/managed-by=stateplan` runs. Any error reading the
/// cluster makes every pool count as busy: deleting a pool is never the
/// default when in doubt.
pub async fn idle_pools(client: &Client, pools: &[String]) -> BTreeSet<String> {
    let mut idle = BTreeSet::new();
    if pools.is_empty() {
        return idle;
    }
    let pods: Api<Pod> = Api::all(client.clone());
    let selector = format!("{}={}", MANAGED_BY.0, MANAGED_BY.1);
    let Ok(ours) = pods.list(&ListParams::default().labels(&selector)).await else {
        return idle;
    };
    let busy_nodes: BTreeSet<String> = ours
        .items
        .iter()
        .filter_map(|p| p.spec.as_ref()?.node_name.clone())
        .collect();
    let nodes: Api<Node> = Api::all(client.clone());
    for pool in pools {
        let lp = ListParams::default().labels(&format!("{AGENT_POOL_LABEL}={pool}"));
        let Ok(list) = nodes.list(&lp).await else {
            continue;
        };
        let busy = list.items.iter().any(|n| {
            n.metadata
                .name
                .as_ref()
                .is_some_and(|name| busy_nodes.contains(name))
        });
        if !busy {
            idle.insert(pool.clone());
        }
    }
    idle
}
