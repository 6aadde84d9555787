//! StatefulSet fields the API server will not update: `volumeClaimTemplates`,
//! `selector`, `serviceName`, `podManagementPolicy`.
//!
//! Storage growth is safe and planned without a flag: expand each existing
//! claim (its StorageClass must allow expansion), delete the StatefulSet with
//! `propagationPolicy: Orphan` (pods and claims stay, the database keeps
//! running), re-create it with the new template (it adopts the pods).
//! Shrinking is refused: a claim cannot shrink and stateplan never deletes
//! one. Anything else is a replace that needs `--allow-replace`.

use kube::api::ListParams;
use serde_json::{Value, json};

use super::{Action, Ctx, Needs, Op, PlanRow, Scope, normalize, output, row};
use crate::blueprint::Quantity;
use crate::live::{self, LiveError, kinds};
use crate::render::DesiredObject;

struct Growth {
    template: String,
    from: String,
    to: String,
    class: Option<String>,
}

fn storage(vct: &Value) -> Option<&str> {
    vct.pointer("/spec/resources/requests/storage")
        .and_then(Value::as_str)
}

fn milli(q: &str) -> Option<i128> {
    Quantity::parse(q).ok().map(|q| q.milli())
}

fn without_storage(vct: &Value) -> Value {
    let mut v = vct.clone();
    if let Some(Value::Object(r)) = v.pointer_mut("/spec/resources/requests") {
        r.remove("storage");
    }
    v
}

/// `None` when no immutable field changes.
pub(super) async fn immutable(
    ctx: &Ctx<'_>,
    o: &DesiredObject,
    body: &Value,
    live: &Value,
    refusals: &mut Vec<String>,
) -> Result<Option<Vec<PlanRow>>, LiveError> {
    let key = o.key();
    let empty = Vec::new();
    let want = body
        .pointer("/spec/volumeClaimTemplates")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let have = live
        .pointer("/spec/volumeClaimTemplates")
        .and_then(Value::as_array)
        .unwrap_or(&empty);

    let mut other: Vec<String> = Vec::new();
    for f in ["selector", "serviceName", "podManagementPolicy"] {
        if let Some(d) = body.pointer(&format!("/spec/{f}"))
            && !live
                .pointer(&format!("/spec/{f}"))
                .is_some_and(|l| normalize::equivalent(d, l))
        {
            other.push(format!("spec.{f}"));
        }
    }
    let name_of = |v: &Value| {
        v.pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let mut growth: Vec<Growth> = Vec::new();
    let mut shrink: Vec<String> = Vec::new();
    if want.len() != have.len() || want.iter().zip(have).any(|(w, h)| name_of(w) != name_of(h)) {
        other.push("spec.volumeClaimTemplates (templates added, removed or renamed)".into());
    } else {
        for (w, h) in want.iter().zip(have) {
            let tname = name_of(w);
            if !normalize::satisfied(&without_storage(w), &without_storage(h)) {
                let class = |v: &Value| {
                    v.pointer("/spec/storageClassName")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                };
                other.push(match (class(h), class(w)) {
                    // The claims exist: a new class reaches only new replicas.
                    (Some(old), Some(new)) if old != new => format!(
                        "spec.volumeClaimTemplates[{tname}] storageClassName {old} → {new} (existing claims and their disks keep {old}; only replicas added later get {new}; changing existing disks means az disk update or a data migration)"
                    ),
                    _ => format!("spec.volumeClaimTemplates[{tname}] (other than storage)"),
                });
            }
            let (Some(ws), Some(hs)) = (storage(w), storage(h)) else {
                continue;
            };
            match (milli(ws), milli(hs)) {
                (Some(a), Some(b)) if a > b => growth.push(Growth {
                    template: tname,
                    from: hs.to_string(),
                    to: ws.to_string(),
                    class: w
                        .pointer("/spec/storageClassName")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                }),
                (Some(a), Some(b)) if a < b => shrink.push(format!(
                    "{key}: volumeClaimTemplate `{tname}` would shrink from {hs} to {ws}; PersistentVolumeClaims cannot shrink and stateplan never deletes a volume. Keep storage at {hs} or more (moving to smaller disks means a new workload and a data migration)"
                )),
                _ => {}
            }
        }
    }

    if !shrink.is_empty() {
        refusals.extend(shrink);
        return Ok(Some(vec![row(
            o,
            Action::Replace,
            Op::None,
            Some("refused: storage shrink".into()),
        )]));
    }
    if !other.is_empty() {
        let selector_same = !other.iter().any(|f| f == "spec.selector");
        let planned = normalize::overlay(&normalize::normalize(live), body);
        let mut r = row(
            o,
            Action::Replace,
            Op::Recreate {
                body: body.clone(),
                orphan: selector_same,
            },
            Some(format!(
                "immutable field(s) changed: {}; the StatefulSet is deleted ({}) and re-created",
                other.join(", "),
                if selector_same {
                    "pods and claims stay"
                } else {
                    "pods restart, claims stay"
                }
            )),
        );
        r.needs = Some(Needs::AllowReplace);
        r.diff = Some(ctx.diff(o, live, &planned));
        return Ok(Some(vec![r]));
    }
    if growth.is_empty() {
        return Ok(None);
    }

    // Storage growth.
    let ns = o.namespace.clone().unwrap_or_default();
    let mut rows = Vec::new();
    for g in &growth {
        let Some(class) = &g.class else {
            refusals.push(format!(
                "{key}: volumeClaimTemplate `{}` grows but names no StorageClass, so stateplan cannot check that it allows expansion",
                g.template
            ));
            continue;
        };
        let sc = match ctx.live.get(&format!("StorageClass/{class}")) {
            Some(v) => Some(v.clone()),
            None => live::get(ctx.client, &kinds::STORAGE_CLASS, None, class)
                .await
                .map_err(|source| LiveError::Api {
                    what: format!("reading StorageClass {class}"),
                    source,
                })?,
        };
        let allows = sc
            .as_ref()
            .and_then(|s| s.get("allowVolumeExpansion"))
            .and_then(Value::as_bool)
            == Some(true);
        if !allows {
            refusals.push(format!(
                "{key}: cannot grow `{}` from {} to {}: StorageClass {class} {}; volumes of this class cannot be expanded in place (a new class needs a new workload and a data migration)",
                g.template,
                g.from,
                g.to,
                if sc.is_some() { "does not set allowVolumeExpansion: true" } else { "does not exist" }
            ));
        }
    }
    if !refusals.is_empty() {
        return Ok(Some(vec![row(
            o,
            Action::Replace,
            Op::None,
            Some("refused: storage cannot grow".into()),
        )]));
    }

    // The claims the StatefulSet made: `<template>-<statefulset>-<ordinal>`.
    let selector = live::match_labels_selector(live);
    let api = kinds::PVC.api(ctx.client, Some(&ns));
    let lp = ListParams::default().labels(&selector);
    let claims = live::with_retry(|| api.list(&lp))
        .await
        .map_err(|source| LiveError::Api {
            what: format!("listing PersistentVolumeClaims in {ns}"),
            source,
        })?;
    for g in &growth {
        let prefix = format!("{}-{}-", g.template, o.name);
        let to = milli(&g.to).unwrap_or(0);
        let mut items: Vec<Value> = claims
            .items
            .iter()
            .filter_map(|c| live::to_value(&kinds::PVC, c.clone()))
            .filter(|c| {
                c.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .and_then(|n| n.strip_prefix(&prefix))
                    .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
            })
            .collect();
        items.sort_by_key(|c| {
            c.pointer("/metadata/name")
                .and_then(Value::as_str)
                .and_then(|n| n.strip_prefix(&prefix))
                .and_then(|i| i.parse::<u64>().ok())
                .unwrap_or(0)
        });
        for c in items {
            let cname = c
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let cur = storage(&c).unwrap_or("0").to_string();
            if milli(&cur).is_some_and(|m| m >= to) {
                continue;
            }
            let phase = c
                .pointer("/status/phase")
                .and_then(Value::as_str)
                .unwrap_or("");
            if phase != "Bound" {
                refusals.push(format!(
                    "PersistentVolumeClaim/{ns}/{cname} is {} and cannot be expanded until it is bound; fix the claim first (`kubectl describe pvc -n {ns} {cname}`)",
                    if phase.is_empty() { "not bound" } else { phase }
                ));
                continue;
            }
            let before = json!({"spec": {"resources": {"requests": {"storage": cur}}}});
            let after = json!({"spec": {"resources": {"requests": {"storage": g.to}}}});
            rows.push(PlanRow {
                wave: o.wave,
                scope: Scope::Kubernetes,
                kind: "PersistentVolumeClaim".into(),
                namespace: Some(ns.clone()),
                name: cname.clone(),
                action: Action::Update,
                reason: Some(format!("expand {cur} → {}", g.to)),
                drift: vec![],
                needs: None,
                diff: Some(output::unified(
                    &before,
                    &after,
                    &format!("PersistentVolumeClaim/{ns}/{cname}"),
                )),
                op: Op::ExpandClaim {
                    storage: g.to.clone(),
                },
                api_version: "v1".into(),
            });
        }
    }
    let planned = normalize::overlay(&normalize::normalize(live), body);
    let mut r = row(
        o,
        Action::Replace,
        Op::Recreate {
            body: body.clone(),
            orphan: true,
        },
        Some(format!(
            "storage grows ({}): expand {} claim(s), delete the StatefulSet with propagationPolicy=Orphan (pods and claims stay), re-create it with the new template",
            growth
                .iter()
                .map(|g| format!("{} {} → {}", g.template, g.from, g.to))
                .collect::<Vec<_>>()
                .join(", "),
            rows.len()
        )),
    );
    r.diff = Some(ctx.diff(o, live, &planned));
    rows.push(r);
    Ok(Some(rows))
}
