//! Changes to a running workload that rolling out a new StatefulSet cannot
//! make safely: a downgrade (every engine) and what the engine's profile
//! lists under `[changes]` (a static membership, a scale-down that needs
//! engine steps first, a major upgrade that needs a migration). They become
//! plan refusals, so `apply` changes nothing.

use serde_json::Value;

use crate::catalog::ChangeRules;
use crate::compile::Workload;
use crate::render::DesiredObject;

/// The label that carries the engine version on every object.
const VERSION: &str = "/metadata/labels/app.kubernetes.io~1version";

/// What the change from `live` to `body` (a StatefulSet of `w`) needs.
pub(super) struct Verdict {
    /// Reasons apply must not run.
    pub refusals: Vec<String>,
    /// Allowed by a flag, but worth saying.
    pub notes: Vec<String>,
}

/// Checks the version and replica count of a StatefulSet change.
pub(super) fn check(
    o: &DesiredObject,
    body: &Value,
    live: &Value,
    w: &Workload,
    allow_replica_change: bool,
) -> Verdict {
    let mut v = Verdict {
        refusals: Vec::new(),
        notes: Vec::new(),
    };
    let key = o.key();
    let rules: &ChangeRules = &w.engine.changes;

    if let (Some(from), Some(to)) = (label(live), label(body))
        && let (Some(a), Some(b)) = (numbers(from), numbers(to))
    {
        if b < a {
            v.refusals.push(format!(
                "{key}: version {from} → {to} is a downgrade: {} {to} cannot be trusted with data files {from} has written, and most engines refuse them. Keep version = \"{from}\"; going back means restoring a backup taken before the upgrade into a new workload",
                w.engine.name
            ));
        } else if a.first() != b.first()
            && let Some(reason) = &rules.major_version
        {
            let reason = fill(reason, &[("from", from), ("to", to)]);
            v.refusals
                .push(format!("{key}: version {from} → {to}: {reason}"));
        }
    }

    let replicas = |x: &Value| x.pointer("/spec/replicas").and_then(Value::as_u64);
    // The API server defaults an unset count to 1.
    let (from, to) = (replicas(live).unwrap_or(1), replicas(body).unwrap_or(1));
    // The rule that applies, if any: a fixed membership, or a scale-down
    // that needs the engine's steps first.
    let rule = match (&rules.replicas, &rules.scale_down) {
        _ if from == to => return v,
        (Some(reason), _) => Rule::Refuse(reason),
        (None, Some(reason)) if to < from => Rule::Steps(reason),
        _ => return v,
    };
    let removed: Vec<u64> = (to..from).rev().collect();
    let pods = removed
        .iter()
        .map(|i| format!("{}-{i}", w.names.statefulset))
        .collect::<Vec<_>>();
    let hosts = pods
        .iter()
        .map(|p| {
            format!(
                "{p}.{}.{}.svc.cluster.local",
                w.names.headless_service, w.namespace
            )
        })
        .collect::<Vec<_>>();
    let (from_s, to_s) = (from.to_string(), to.to_string());
    let (pods, hosts) = (pods.join(", "), hosts.join(", "));
    let fill = |reason: &str| {
        fill(
            reason,
            &[
                ("from", &from_s),
                ("to", &to_s),
                ("removed", &pods),
                ("removed_hosts", &hosts),
            ],
        )
    };
    match rule {
        Rule::Steps(_) if allow_replica_change => v.notes.push(format!(
            "{key}: replicas {from} → {to} allowed by --allow-replica-change: the {} steps for {pods} that plan names without the flag are taken as done",
            w.engine.name
        )),
        Rule::Refuse(reason) | Rule::Steps(reason) => v
            .refusals
            .push(format!("{key}: replicas {from} → {to}: {}", fill(reason))),
    }
    v
}

/// What a replica-count change meets.
enum Rule<'r> {
    /// Refused whatever the flags.
    Refuse(&'r str),
    /// Refused until `--allow-replica-change`.
    Steps(&'r str),
}

/// What a change of the pod template does to a running StatefulSet, for
/// its plan row: every pod restarts, and for an engine with one writable
/// primary, writes pause while replica 0 does. `None` when the template
/// (what the pods run) is unchanged.
pub(super) fn restarts(body: &Value, live: &Value, w: &Workload) -> Option<String> {
    fn template(v: &Value) -> &Value {
        const NONE: &Value = &Value::Null;
        v.pointer("/spec/template").unwrap_or(NONE)
    }
    if super::normalize::satisfied(template(body), template(live)) {
        return None;
    }
    let n = body
        .pointer("/spec/replicas")
        .and_then(Value::as_u64)
        .unwrap_or(1);
    let sts = &w.names.statefulset;
    let order = if n == 1 {
        format!("{sts}-0 restarts")
    } else {
        format!(
            "the {n} pods restart one at a time, {sts}-{} first and {sts}-0 last",
            n - 1
        )
    };
    let primary = if w.engine.client_routing == "primary" {
        format!(" ({sts}-0 is the primary: writes pause while it restarts)")
    } else {
        String::new()
    };
    Some(format!("pod template changes: {order}{primary}"))
}

fn label(v: &Value) -> Option<&str> {
    v.pointer(VERSION).and_then(Value::as_str)
}

/// `8.4` → `[8, 4]`; `None` for anything that is not dotted numbers.
fn numbers(version: &str) -> Option<Vec<u64>> {
    version.split('.').map(|p| p.parse().ok()).collect()
}

/// Replaces `{name}` with its value.
fn fill(text: &str, values: &[(&str, &str)]) -> String {
    values.iter().fold(text.to_string(), |t, (k, v)| {
        t.replace(&format!("{{{k}}}"), v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_as_numbers() {
        assert!(numbers("8.4") > numbers("8.0"));
        assert!(numbers("17") > numbers("9"));
        assert_eq!(numbers("8.x"), None);
        assert_eq!(
            fill("{from} → {to} ({from})", &[("from", "3"), ("to", "5")]),
            "3 → 5 (3)"
        );
    }
}
