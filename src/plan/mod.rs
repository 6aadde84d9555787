//! Stage 5: the plan. Rendered objects are compared with what is live, one
//! row per object (Kubernetes now; Azure rows slot into the same table and
//! JSON): create / update / replace / delete / unchanged, the reason, drift
//! by other field managers, and a redacted unified diff.
//!
//! How an object's row is decided:
//! 1. live objects come from one LIST per kind (see [`crate::live`]);
//! 2. if every desired field already has its value live and stateplan owns
//!    no field it stopped setting, the object is unchanged: no request;
//! 3. otherwise the server is asked: server-side apply dry-run with
//!    `fieldManager=stateplan`, `fieldValidation=Strict`; its answer (the
//!    object after defaulting and merging) is compared with live after
//!    normalising, or its error says why not (409: another manager owns a
//!    field — drift; 422: an immutable field — replace);
//! 4. StatefulSet `volumeClaimTemplates` are checked first: storage growth
//!    becomes "expand each PVC → orphan-delete → re-create", shrinking is
//!    refused.

pub mod combined;
pub mod normalize;
mod output;
mod statefulset;
mod transition;

use std::collections::{BTreeMap, BTreeSet};

use kube::Client;
use kube::api::{Patch, PatchParams};
use serde::Serialize;
use serde_json::Value;

pub use output::{render_json, render_text};

use crate::compile::{PENDING_PREFIX, Workload};
use crate::live::inventory::{self, Entry, Inventory};
use crate::live::{self, KindInfo, LiveError, kinds};
use crate::render::{DesiredObject, PendingValue, Wave};

/// The field manager of every stateplan write.
pub const FIELD_MANAGER: &str = "stateplan";

/// Where the inventory ConfigMaps and Leases live unless told otherwise.
pub const DEFAULT_STATE_NAMESPACE: &str = "kube-system";

/// Which half of the world a row is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    Azure,
    Kubernetes,
}

/// What apply will do to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Create,
    Update,
    Replace,
    Delete,
    Unchanged,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Replace => "replace",
            Action::Delete => "delete",
            Action::Unchanged => "unchanged",
        }
    }
}

/// A field another field manager owns with a value different from the
/// blueprint's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    /// The other manager (`kubectl-edit`, `kube-controller-manager`, an HPA…).
    pub manager: String,
    /// The field, as the server names it (`.spec.replicas`).
    pub field: String,
    /// Its live value, when shown (never for Secret data).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<String>,
    /// The blueprint's value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desired: Option<String>,
}

/// A flag apply needs before it does this row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Needs {
    #[serde(rename = "--allow-replace")]
    AllowReplace,
    #[serde(rename = "--force-conflicts")]
    ForceConflicts,
}

impl Needs {
    pub fn flag(self) -> &'static str {
        match self {
            Needs::AllowReplace => "--allow-replace",
            Needs::ForceConflicts => "--force-conflicts",
        }
    }
}

/// What apply does for a row (not serialised: bodies may hold values the
/// plan output must not show).
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Nothing.
    None,
    /// Server-side apply of the body.
    Apply(Value),
    /// Grow a PVC's `spec.resources.requests.storage` (merge patch: the
    /// StatefulSet controller owns the field, so SSA would conflict).
    ExpandClaim { storage: String },
    /// Delete (StatefulSets with `propagationPolicy: Orphan`: pods and
    /// claims stay), wait until gone, then apply the body.
    Recreate { body: Value, orphan: bool },
    /// Delete (prune).
    Delete,
}

/// One row of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlanRow {
    pub wave: Wave,
    pub scope: Scope,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    pub action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<Drift>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub needs: Option<Needs>,
    /// Unified diff (live → planned), Secret data redacted; `None` when unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    #[serde(skip)]
    pub op: Op,
    #[serde(skip)]
    pub api_version: String,
}

impl PlanRow {
    /// `Kind/namespace/name` or `Kind/name`.
    pub fn key(&self) -> String {
        live::object_key(&self.kind, self.namespace.as_deref(), &self.name)
    }
    pub fn is_change(&self) -> bool {
        self.action != Action::Unchanged
    }
}

/// The plan for one blueprint.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub blueprint: String,
    /// Rows in apply order.
    pub rows: Vec<PlanRow>,
    /// Reasons apply must not run at all (storage shrink, unresolved Azure
    /// values, missing namespaces…). Any refusal makes `plan` exit 1.
    pub refusals: Vec<String>,
    /// Things worth knowing that change nothing.
    pub notes: Vec<String>,
    /// The inventory as read (apply extends it).
    #[serde(skip)]
    pub inventory: Inventory,
}

/// Exit code: no changes.
pub const EXIT_NO_CHANGES: u8 = 0;
/// Exit code: changes planned.
pub const EXIT_CHANGES: u8 = 2;
/// Exit code: error / refused.
pub const EXIT_ERROR: u8 = 1;

impl Plan {
    /// Counts per action.
    pub fn summary(&self) -> BTreeMap<Action, usize> {
        let mut m = BTreeMap::new();
        for r in &self.rows {
            *m.entry(r.action).or_insert(0) += 1;
        }
        m
    }
    pub fn changes(&self) -> usize {
        self.rows.iter().filter(|r| r.is_change()).count()
    }
    /// 0 no changes, 2 changes, 1 refused.
    pub fn exit_code(&self) -> u8 {
        if !self.refusals.is_empty() {
            EXIT_ERROR
        } else if self.changes() > 0 {
            EXIT_CHANGES
        } else {
            EXIT_NO_CHANGES
        }
    }
}

/// What to plan.
pub struct Desired<'a> {
    pub blueprint: &'a str,
    /// In apply order.
    pub objects: &'a [DesiredObject],
    /// Placeholders for values only Azure knows.
    pub pending: &'a [PendingValue],
    /// The compiled workloads: what their engines allow to change.
    pub workloads: &'a [Workload],
}

/// How to plan.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// Plan deletions of objects the blueprint no longer has.
    pub prune: bool,
    /// Namespace of inventory ConfigMaps and Leases.
    pub state_namespace: String,
    /// Placeholder → real value, from the Azure half.
    pub resolved: BTreeMap<String, String>,
    /// Ask the server (dry-run) even where live provably satisfies the
    /// blueprint: slower, for checking the shortcut.
    pub always_dry_run: bool,
    /// Let through replica-count changes the engine needs steps for
    /// (profile `changes.scale_down`), once the user has taken them.
    pub allow_replica_change: bool,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            prune: false,
            state_namespace: DEFAULT_STATE_NAMESPACE.into(),
            resolved: BTreeMap::new(),
            always_dry_run: false,
            allow_replica_change: false,
        }
    }
}

/// Computes the plan against the live cluster.
pub async fn plan(
    client: &Client,
    desired: &Desired<'_>,
    opts: &PlanOptions,
) -> Result<Plan, LiveError> {
    let bp = desired.blueprint;
    // Kinds of every desired object; CRDs must be served before anything else.
    let mut objects: Vec<(&'static KindInfo, DesiredObject)> = Vec::new();
    let mut needed: BTreeMap<&'static KindInfo, Vec<String>> = BTreeMap::new();
    for o in desired.objects {
        let info = kinds::lookup(&o.api_version, &o.kind).ok_or_else(|| {
            LiveError::Other(format!(
                "{}: stateplan does not know how to apply {} {}",
                o.key(),
                o.api_version,
                o.kind
            ))
        })?;
        needed.entry(info).or_default().push(o.key());
        objects.push((info, o.clone()));
    }
    live::check_kinds(client, &needed).await?;

    let inventory = inventory::read(client, &opts.state_namespace, bp)
        .await
        .map_err(|source| LiveError::Api {
            what: "reading the inventory".into(),
            source,
        })?;

    // One LIST per kind (and namespace): everything desired or recorded.
    let mut scopes: BTreeMap<&'static KindInfo, BTreeSet<String>> = BTreeMap::new();
    for (info, o) in &objects {
        scopes
            .entry(info)
            .or_default()
            .extend(o.namespace.iter().cloned());
    }
    for e in &inventory.entries {
        if let Some(info) = kinds::lookup(&e.api_version, &e.kind) {
            scopes
                .entry(info)
                .or_default()
                .extend(e.namespace.iter().cloned());
        }
    }
    let live_objs = live::fetch_owned(client, bp, &scopes).await?.objects;

    let mut plan = Plan {
        blueprint: bp.to_string(),
        rows: Vec::new(),
        refusals: Vec::new(),
        notes: Vec::new(),
        inventory: inventory.clone(),
    };

    // Namespaces the blueprint uses but does not create must exist.
    let desired_ns: BTreeSet<&str> = objects
        .iter()
        .filter(|(i, _)| i.kind == "Namespace")
        .map(|(_, o)| o.name.as_str())
        .collect();
    let live_ns: BTreeSet<String> = live_objs
        .keys()
        .filter_map(|k| k.strip_prefix("Namespace/").map(str::to_string))
        .collect();
    let mut creating_ns: BTreeSet<String> = BTreeSet::new();
    let used_ns: BTreeSet<&str> = objects
        .iter()
        .filter_map(|(_, o)| o.namespace.as_deref())
        .collect();
    for ns in used_ns {
        if live_ns.contains(ns) {
            continue;
        }
        let exists = live::get(client, &kinds::NAMESPACE, None, ns)
            .await
            .map_err(|source| LiveError::Api {
                what: format!("reading namespace {ns}"),
                source,
            })?
            .is_some();
        if exists {
            continue;
        }
        if desired_ns.contains(ns) {
            creating_ns.insert(ns.to_string());
        } else {
            let users: Vec<String> = objects
                .iter()
                .filter(|(_, o)| o.namespace.as_deref() == Some(ns))
                .map(|(_, o)| o.key())
                .collect();
            let hint = if ns == "velero" {
                " (is Velero installed? its Schedules live in its namespace)"
            } else {
                ""
            };
            plan.refusals.push(format!(
                "namespace {ns} does not exist and the blueprint does not create it{hint}; needed by {}",
                users.join(", ")
            ));
        }
    }

    let ctx = Ctx {
        client,
        blueprint: bp,
        live: &live_objs,
        creating_ns: &creating_ns,
        always_dry_run: opts.always_dry_run,
    };
    let workloads: BTreeMap<&str, &Workload> = desired
        .workloads
        .iter()
        .map(|w| (w.name.as_str(), w))
        .collect();
    for (info, o) in &objects {
        let mut body = o.body.clone();
        let live = live_objs.get(&o.key());
        // A running StatefulSet: what its engine cannot take, and what its
        // pods go through.
        let running = match (live, o.workload.as_deref().and_then(|n| workloads.get(n))) {
            (Some(live), Some(w)) if info.kind == "StatefulSet" => Some((live, *w)),
            _ => None,
        };
        if let Some((live, w)) = running {
            let v = transition::check(o, &body, live, w, opts.allow_replica_change);
            plan.refusals.extend(v.refusals);
            plan.notes.extend(v.notes);
        }
        if let Some(refusal) = fill_pending(o, &mut body, live, desired.pending, &opts.resolved) {
            plan.refusals.push(refusal);
            plan.rows.push(row(o, Action::Create, Op::None, None));
            continue;
        }
        let restarts = running.and_then(|(live, w)| transition::restarts(&body, live, w));
        let mut rows = ctx.object(info, o, body, live, &mut plan.refusals).await?;
        // The StatefulSet's own row (claims may come first) says what its
        // pods go through.
        if let Some(note) = restarts
            && let Some(r) = rows
                .iter_mut()
                .find(|r| r.kind == "StatefulSet" && r.is_change())
        {
            r.reason = Some(match r.reason.take() {
                Some(reason) => format!("{reason}; {note}"),
                None => note,
            });
        }
        plan.rows.extend(rows);
    }

    // Deletions: objects this blueprint owns (labels) that it no longer
    // renders, found by the LISTs above (which cover every inventory entry).
    let desired_keys: BTreeSet<String> = objects.iter().map(|(_, o)| o.key()).collect();
    let mut stale: Vec<(&'static KindInfo, &Value)> = Vec::new();
    for (key, obj) in &live_objs {
        if desired_keys.contains(key) {
            continue;
        }
        let Some(info) = key.split('/').next().and_then(kinds::by_kind) else {
            continue;
        };
        if !info.namespaced {
            // Shared cluster-scoped objects (Namespaces, StorageClasses)
            // carry no blueprint label: never ours alone to delete.
            continue;
        }
        if live::owned_by(obj, bp, true) {
            stale.push((info, obj));
        }
    }
    for e in &inventory.entries {
        if !desired_keys.contains(&e.key())
            && matches!(e.kind.as_str(), "Namespace" | "StorageClass")
        {
            plan.notes.push(format!(
                "{} is no longer in the blueprint; {}s are shared and never pruned",
                e.key(),
                e.kind
            ));
        }
    }
    if !stale.is_empty() {
        if opts.prune {
            // Reverse wave order: dependents go first.
            stale.sort_by_key(|(info, _)| std::cmp::Reverse(Wave::for_kind(info.kind)));
            for (info, obj) in stale {
                let name = obj
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let ns = obj.pointer("/metadata/namespace").and_then(Value::as_str);
                let live_n = normalize::redact(info.kind, &normalize::normalize(obj), None);
                plan.rows.push(PlanRow {
                    wave: Wave::for_kind(info.kind).unwrap_or(Wave::Backup),
                    scope: Scope::Kubernetes,
                    kind: info.kind.to_string(),
                    namespace: ns.map(str::to_string),
                    name: name.to_string(),
                    action: Action::Delete,
                    reason: Some("no longer in the blueprint (--prune)".into()),
                    drift: vec![],
                    needs: None,
                    diff: Some(output::unified(
                        &live_n,
                        &Value::Null,
                        &live::key_of(info.kind, obj).unwrap_or_default(),
                    )),
                    op: Op::Delete,
                    api_version: info.api_version(),
                });
            }
        } else {
            let keys: Vec<String> = stale
                .iter()
                .filter_map(|(i, o)| live::key_of(i.kind, o))
                .collect();
            plan.notes.push(format!(
                "{} object(s) are no longer in the blueprint and are kept; `--prune` deletes them: {}",
                keys.len(),
                keys.join(", ")
            ));
        }
    }
    Ok(plan)
}

/// Replaces `stateplan-pending:` placeholders: with the Azure half's value,
/// else with the value already live; otherwise a refusal (a placeholder
/// must never reach the cluster).
fn fill_pending(
    o: &DesiredObject,
    body: &mut Value,
    live: Option<&Value>,
    pending: &[PendingValue],
    resolved: &BTreeMap<String, String>,
) -> Option<String> {
    let key = o.key();
    let mut missing = Vec::new();
    for p in pending.iter().filter(|p| p.object == key) {
        let value = resolved.get(&p.placeholder).cloned().or_else(|| {
            live.and_then(|l| l.pointer(&p.field))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty() && !s.starts_with(PENDING_PREFIX))
                .map(str::to_string)
        });
        match (value, body.pointer_mut(&p.field)) {
            (Some(v), Some(slot)) => *slot = Value::String(v),
            _ => missing.push(format!(
                "{} ({})",
                p.field,
                p.placeholder.trim_start_matches(PENDING_PREFIX)
            )),
        }
    }
    (!missing.is_empty()).then(|| {
        format!(
            "{key} needs values only Azure knows: {}; apply the Azure half first (`stateplan apply FILE`, or `--only azure`), then `--only kubernetes` keeps the live value",
            missing.join(", ")
        )
    })
}

fn row(o: &DesiredObject, action: Action, op: Op, reason: Option<String>) -> PlanRow {
    PlanRow {
        wave: o.wave,
        scope: Scope::Kubernetes,
        kind: o.kind.clone(),
        namespace: o.namespace.clone(),
        name: o.name.clone(),
        action,
        reason,
        drift: vec![],
        needs: None,
        diff: None,
        op,
        api_version: o.api_version.clone(),
    }
}

struct Ctx<'a> {
    client: &'a Client,
    /// The blueprint being planned.
    blueprint: &'a str,
    live: &'a BTreeMap<String, Value>,
    creating_ns: &'a BTreeSet<String>,
    always_dry_run: bool,
}

/// What the server said to a dry-run apply.
enum DryRun {
    Ok(Value),
    Conflict(Vec<Drift>),
    Immutable(String),
}

impl Ctx<'_> {
    async fn dry_run(
        &self,
        info: &'static KindInfo,
        o: &DesiredObject,
        body: &Value,
        force: bool,
    ) -> Result<DryRun, LiveError> {
        let api = info.api(self.client, o.namespace.as_deref());
        let mut pp = PatchParams::apply(FIELD_MANAGER)
            .dry_run()
            .validation_strict();
        if force {
            pp = pp.force();
        }
        let patch = Patch::Apply(body);
        match live::with_retry(|| api.patch(&o.name, &pp, &patch)).await {
            Ok(obj) => live::to_value(info, obj)
                .map(DryRun::Ok)
                .ok_or_else(|| LiveError::Other(format!("{}: unreadable dry-run answer", o.key()))),
            Err(kube::Error::Api(s)) if s.code == 409 && s.reason == "Conflict" => {
                let causes = s
                    .details
                    .as_ref()
                    .map(|d| d.causes.clone())
                    .unwrap_or_default();
                let drift = causes
                    .iter()
                    .map(|c| Drift {
                        manager: conflict_manager(&c.message),
                        field: c.field.clone(),
                        live: None,
                        desired: None,
                    })
                    .collect::<Vec<_>>();
                let drift = if drift.is_empty() {
                    vec![Drift {
                        manager: conflict_manager(&s.message),
                        field: String::new(),
                        live: None,
                        desired: None,
                    }]
                } else {
                    drift
                };
                Ok(DryRun::Conflict(drift))
            }
            Err(kube::Error::Api(s)) if s.code == 422 && is_immutable(&s.message) => {
                Ok(DryRun::Immutable(s.message.clone()))
            }
            Err(source) => Err(LiveError::Api {
                what: format!("{}: server-side apply dry-run", o.key()),
                source,
            }),
        }
    }

    /// The rows for one desired object.
    async fn object(
        &self,
        info: &'static KindInfo,
        o: &DesiredObject,
        body: Value,
        live: Option<&Value>,
        refusals: &mut Vec<String>,
    ) -> Result<Vec<PlanRow>, LiveError> {
        let key = o.key();
        let Some(live) = live else {
            // In a namespace this plan creates: the server cannot dry-run it yet.
            if o.namespace
                .as_ref()
                .is_some_and(|ns| self.creating_ns.contains(ns))
            {
                let diff =
                    output::unified(&Value::Null, &normalize::redact(&o.kind, &body, None), &key);
                let mut r = row(o, Action::Create, Op::Apply(body), None);
                r.diff = Some(diff);
                return Ok(vec![r]);
            }
            return match self.dry_run(info, o, &body, false).await? {
                DryRun::Ok(got) => {
                    let existed = got.pointer("/metadata/resourceVersion").is_some();
                    if existed {
                        // Exists without our labels: adopt it (an update).
                        let live = live::get(self.client, info, o.namespace.as_deref(), &o.name)
                            .await
                            .map_err(|source| LiveError::Api {
                                what: format!("reading {key}"),
                                source,
                            })?
                            .unwrap_or(Value::Null);
                        // Another blueprint's object (the same workload and
                        // namespace in two blueprints): taking it over would
                        // leave the two overwriting each other.
                        if let Some(other) = live
                            .pointer("/metadata/labels")
                            .and_then(|l| l.get(crate::compile::LABEL_BLUEPRINT))
                            .and_then(Value::as_str)
                            .filter(|b| *b != self.blueprint)
                        {
                            refusals.push(format!(
                                "{key} belongs to blueprint {other} (its {} label); two blueprints would keep overwriting it: rename the workload or its namespace in one of them",
                                crate::compile::LABEL_BLUEPRINT
                            ));
                            return Ok(vec![row(
                                o,
                                Action::Update,
                                Op::None,
                                Some(format!("owned by blueprint {other}")),
                            )]);
                        }
                        Ok(vec![self.update_row(
                            o,
                            body,
                            &live,
                            &got,
                            Some("exists without stateplan's labels: adopt".into()),
                        )])
                    } else {
                        let diff = output::unified(
                            &Value::Null,
                            &normalize::redact(&o.kind, &body, None),
                            &key,
                        );
                        let mut r = row(o, Action::Create, Op::Apply(body), None);
                        r.diff = Some(diff);
                        Ok(vec![r])
                    }
                }
                DryRun::Conflict(drift) => {
                    let mut r = row(
                        o,
                        Action::Update,
                        Op::Apply(body),
                        Some("exists, fields owned by another manager".into()),
                    );
                    r.drift = drift;
                    r.needs = Some(Needs::ForceConflicts);
                    Ok(vec![r])
                }
                DryRun::Immutable(msg) => {
                    let mut r = row(
                        o,
                        Action::Replace,
                        Op::Recreate {
                            body,
                            orphan: false,
                        },
                        Some(msg),
                    );
                    r.needs = Some(Needs::AllowReplace);
                    Ok(vec![r])
                }
            };
        };

        if info.kind == "StatefulSet"
            && let Some(rows) = statefulset::immutable(self, o, &body, live, refusals).await?
        {
            return Ok(rows);
        }

        // Provably satisfied: no request.
        if !self.always_dry_run
            && normalize::satisfied(&body, live)
            && normalize::applied_fields(live, FIELD_MANAGER)
                .is_some_and(|f| normalize::owned_fields_in(f, &body))
        {
            return Ok(vec![row(o, Action::Unchanged, Op::None, None)]);
        }

        match self.dry_run(info, o, &body, false).await? {
            DryRun::Ok(got) => Ok(vec![self.update_row(o, body, live, &got, None)]),
            DryRun::Conflict(mut drift) => {
                for d in &mut drift {
                    if o.kind != "Secret" {
                        let ptr = field_pointer(&d.field);
                        d.live = live.pointer(&ptr).map(short);
                        d.desired = body.pointer(&ptr).map(short);
                    }
                }
                // What forcing would change.
                let diff = match self.dry_run(info, o, &body, true).await? {
                    DryRun::Ok(got) => Some(self.diff(o, live, &got)),
                    _ => None,
                };
                let managers: BTreeSet<&str> = drift.iter().map(|d| d.manager.as_str()).collect();
                let mut r = row(
                    o,
                    Action::Update,
                    Op::Apply(body.clone()),
                    Some(format!(
                        "drift: {} changed by {}",
                        drift
                            .iter()
                            .map(|d| d.field.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        managers.into_iter().collect::<Vec<_>>().join(", ")
                    )),
                );
                r.drift = drift;
                r.needs = Some(Needs::ForceConflicts);
                r.diff = diff;
                Ok(vec![r])
            }
            DryRun::Immutable(msg) => {
                let planned = normalize::overlay(&normalize::normalize(live), &body);
                let mut r = row(
                    o,
                    Action::Replace,
                    Op::Recreate {
                        body: body.clone(),
                        orphan: info.kind == "StatefulSet",
                    },
                    Some(format!("immutable field changed: {msg}")),
                );
                r.needs = Some(Needs::AllowReplace);
                r.diff = Some(self.diff(o, live, &planned));
                Ok(vec![r])
            }
        }
    }

    fn diff(&self, o: &DesiredObject, live: &Value, planned: &Value) -> String {
        let l = normalize::normalize(live);
        let p = normalize::normalize(planned);
        output::unified(
            &normalize::redact(&o.kind, &l, None),
            &normalize::redact(&o.kind, &p, Some(&l)),
            &o.key(),
        )
    }

    fn update_row(
        &self,
        o: &DesiredObject,
        body: Value,
        live: &Value,
        got: &Value,
        reason: Option<String>,
    ) -> PlanRow {
        let l = normalize::normalize(live);
        let g = normalize::normalize(got);
        if normalize::equivalent(&l, &g) && reason.is_none() {
            return row(o, Action::Unchanged, Op::None, None);
        }
        let mut r = row(o, Action::Update, Op::Apply(body), reason);
        r.diff = Some(self.diff(o, live, got));
        r
    }
}

/// `conflict with "kubectl-edit" using apps/v1` → `kubectl-edit`.
fn conflict_manager(message: &str) -> String {
    message
        .split('"')
        .nth(1)
        .unwrap_or("another field manager")
        .to_string()
}

/// `.spec.replicas` → `/spec/replicas` (list items like `[name="x"]` are
/// not followed).
fn field_pointer(field: &str) -> String {
    let mut p = String::new();
    for part in field.trim_start_matches('.').split('.') {
        if part.contains('[') {
            break;
        }
        p.push('/');
        p.push_str(&crate::diagnostics::pointer_token(part));
    }
    p
}

fn short(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.len() > 80 {
        format!("{}…", s.chars().take(80).collect::<String>())
    } else {
        s
    }
}

fn is_immutable(message: &str) -> bool {
    message.contains("immutable")
        || message.contains("Forbidden: updates to")
        || message.contains("field is immutable")
}

/// Entries for the inventory from a plan's desired objects.
pub fn entries(objects: &[DesiredObject]) -> BTreeSet<Entry> {
    objects
        .iter()
        .map(|o| Entry {
            api_version: o.api_version.clone(),
            kind: o.kind.clone(),
            namespace: o.namespace.clone(),
            name: o.name.clone(),
        })
        .collect()
}
