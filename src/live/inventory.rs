//! The inventory: a ConfigMap per blueprint listing every object stateplan
//! has applied for it, so `--prune` finds objects the blueprint dropped even
//! in namespaces it no longer renders into. It carries `managed-by` but not
//! the blueprint label, so it is never itself a prune candidate.

use std::collections::BTreeSet;

use kube::Client;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use super::{get, kinds, with_retry};
use crate::compile::MANAGED_BY;

/// Label naming the blueprint an inventory belongs to.
pub const LABEL_INVENTORY: &str = "stateplan.io/inventory";

/// One owned object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Entry {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl Entry {
    pub fn key(&self) -> String {
        super::object_key(&self.kind, self.namespace.as_deref(), &self.name)
    }
    fn line(&self) -> String {
        format!(
            "{} {} {} {}",
            self.api_version,
            self.kind,
            self.namespace.as_deref().unwrap_or("-"),
            self.name
        )
    }
    fn parse(line: &str) -> Option<Entry> {
        let mut it = line.split_whitespace();
        let (a, k, ns, n) = (it.next()?, it.next()?, it.next()?, it.next()?);
        Some(Entry {
            api_version: a.into(),
            kind: k.into(),
            namespace: (ns != "-").then(|| ns.to_string()),
            name: n.into(),
        })
    }
}

/// The recorded objects of one blueprint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inventory {
    pub entries: BTreeSet<Entry>,
}

/// `stateplan-inventory-<blueprint>`
pub fn name(blueprint: &str) -> String {
    format!("stateplan-inventory-{blueprint}")
}

/// Reads the inventory (empty when there is none yet). One GET.
pub async fn read(
    client: &Client,
    namespace: &str,
    blueprint: &str,
) -> Result<Inventory, kube::Error> {
    let Some(cm) = get(
        client,
        &kinds::CONFIG_MAP,
        Some(namespace),
        &name(blueprint),
    )
    .await?
    else {
        return Ok(Inventory::default());
    };
    let text = cm
        .pointer("/data/objects")
        .and_then(Value::as_str)
        .unwrap_or("");
    Ok(Inventory {
        entries: text.lines().filter_map(Entry::parse).collect(),
    })
}

/// Writes the inventory (server-side apply, field manager `stateplan`).
pub async fn write(
    client: &Client,
    namespace: &str,
    blueprint: &str,
    inv: &Inventory,
) -> Result<(), kube::Error> {
    let objects: String = inv.entries.iter().map(|e| e.line() + "\n").collect();
    let body = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name(blueprint),
            "namespace": namespace,
            "labels": {MANAGED_BY.0: MANAGED_BY.1, LABEL_INVENTORY: blueprint},
        },
        "data": {"blueprint": blueprint, "objects": objects},
    });
    let api = kinds::CONFIG_MAP.api(client, Some(namespace));
    let pp = PatchParams::apply(crate::plan::FIELD_MANAGER).force();
    let patch = Patch::Apply(&body);
    let cm_name = name(blueprint);
    with_retry(|| api.patch(&cm_name, &pp, &patch)).await?;
    Ok(())
}
