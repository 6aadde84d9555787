//! Stage 6: apply. Under the blueprint's Lease: plan, refuse what is unsafe
//! or needs a flag, confirm, then walk the rows wave by wave — server-side
//! apply (field manager `stateplan`, strict validation), PVC expansion,
//! orphan-delete + re-create — waiting for each wave's ExternalSecrets and
//! StatefulSets before starting the next. The inventory is extended before
//! the first change, so an interrupted apply still knows what it owns; every
//! step is idempotent, so re-running converges.

pub mod lease;
pub mod wait;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use serde_json::json;

use crate::live::inventory::{self, Inventory};
use crate::live::{self, LiveError, kinds};
use crate::plan::{self, Desired, FIELD_MANAGER, Needs, Op, Plan, PlanOptions, PlanRow};
use lease::{LockError, LockOptions};
use wait::WaitError;

/// How to apply.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub plan: PlanOptions,
    /// Take fields other managers own (server-side apply `force`).
    pub force_conflicts: bool,
    /// Delete and re-create objects whose immutable fields change.
    pub allow_replace: bool,
    /// Wait for readiness after each wave.
    pub wait: bool,
    /// Longest wait for one object.
    pub timeout: Duration,
    /// Status poll interval while waiting.
    pub poll: Duration,
    /// Lease duration (a crashed apply's lease is taken over after this).
    pub lease_duration: Duration,
    /// Wait up to this long for another apply's lease.
    pub wait_for_lock: Option<Duration>,
    /// Set (e.g. by Ctrl-C) to stop between objects.
    pub cancel: Arc<AtomicBool>,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            plan: PlanOptions::default(),
            force_conflicts: false,
            allow_replace: false,
            wait: true,
            timeout: Duration::from_secs(20 * 60),
            poll: Duration::from_secs(2),
            lease_duration: Duration::from_secs(60),
            wait_for_lock: None,
            cancel: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// Progress, as it happens.
#[derive(Debug, Clone)]
pub enum Event<'a> {
    /// About to change an object.
    Start { row: &'a PlanRow, step: &'a str },
    /// Changed.
    Done { row: &'a PlanRow, step: &'a str },
    /// Waiting for readiness; `status` is the latest one-liner.
    Waiting { key: &'a str, status: &'a str },
    /// Ready after `elapsed`.
    Ready { key: &'a str, elapsed: Duration },
    /// Failed.
    Failed { key: &'a str, message: &'a str },
}

/// Receives progress events (TTY spinners, plain lines, tests).
pub trait Reporter: Send + Sync {
    fn event(&self, e: Event<'_>);
}

/// Reports nothing.
pub struct Quiet;
impl Reporter for Quiet {
    fn event(&self, _: Event<'_>) {}
}

/// How an apply ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Nothing to do.
    NoChanges,
    /// Everything applied (and ready, when waiting).
    Applied,
    /// The user said no.
    Declined,
    /// Ctrl-C (or the lease was lost): stopped between objects.
    Interrupted,
    /// A step failed; later steps were not run.
    Failed(String),
}

/// The result of an apply that got as far as a plan.
#[derive(Debug)]
pub struct ApplyReport {
    pub plan: Plan,
    pub outcome: Outcome,
    /// `action Kind/ns/name` of every step done, in order.
    pub done: Vec<String>,
    /// Steps not done.
    pub remaining: Vec<String>,
}

/// Why apply did not start.
#[derive(Debug)]
pub enum ApplyError {
    Lock(LockError),
    Live(LiveError),
    /// The plan has refusals, or rows needing a flag not given. Nothing
    /// was changed.
    Refused {
        plan: Box<Plan>,
        reasons: Vec<String>,
    },
}

impl std::fmt::Display for ApplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApplyError::Lock(e) => write!(f, "{e}"),
            ApplyError::Live(e) => write!(f, "{e}"),
            ApplyError::Refused { reasons, .. } => {
                writeln!(f, "refusing to apply; nothing was changed:")?;
                for r in reasons {
                    writeln!(f, "  - {r}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ApplyError {}

/// Plans and applies under the blueprint's lease. `confirm` sees the plan
/// (and prints it) and says whether to go ahead.
pub async fn run(
    client: &Client,
    desired: &Desired<'_>,
    opts: &ApplyOptions,
    confirm: &mut (dyn FnMut(&Plan) -> bool + Send),
    reporter: &dyn Reporter,
) -> Result<ApplyReport, ApplyError> {
    let holder = lease::holder_identity();
    let lock = lock_options(opts);
    let held = lease::acquire(client, desired.blueprint, &holder, &lock)
        .await
        .map_err(ApplyError::Lock)?;
    let result = locked(client, desired, opts, confirm, reporter, &held).await;
    held.release().await;
    result
}

/// Why the plan cannot be applied with these options.
pub fn refusals(plan: &Plan, opts: &ApplyOptions) -> Vec<String> {
    let mut reasons = plan.refusals.clone();
    for r in &plan.rows {
        match r.needs {
            Some(Needs::AllowReplace) if !opts.allow_replace => reasons.push(format!(
                "{} must be replaced ({}); pass --allow-replace to delete and re-create it",
                r.key(),
                r.reason.as_deref().unwrap_or("immutable field changed")
            )),
            Some(Needs::ForceConflicts) if !opts.force_conflicts => {
                let owners: Vec<String> = r
                    .drift
                    .iter()
                    .map(|d| {
                        format!(
                            "{} owned by {:?}",
                            if d.field.is_empty() {
                                "a field"
                            } else {
                                &d.field
                            },
                            d.manager
                        )
                    })
                    .collect();
                reasons.push(format!(
                    "{}: conflict: {}; pass --force-conflicts to take the field(s) over, or change the blueprint to match",
                    r.key(),
                    owners.join(", ")
                ))
            }
            _ => {}
        }
    }
    reasons
}

/// Like [`run`], for a caller that already holds the blueprint's lease
/// (the CLI takes it before applying the Azure half, so both halves run under
/// one lock).
pub async fn run_locked(
    client: &Client,
    desired: &Desired<'_>,
    opts: &ApplyOptions,
    confirm: &mut (dyn FnMut(&Plan) -> bool + Send),
    reporter: &dyn Reporter,
    held: &lease::Held,
) -> Result<ApplyReport, ApplyError> {
    locked(client, desired, opts, confirm, reporter, held).await
}

/// The lock options [`run`] uses.
pub fn lock_options(opts: &ApplyOptions) -> LockOptions {
    LockOptions {
        namespace: opts.plan.state_namespace.clone(),
        duration: opts.lease_duration,
        wait: opts.wait_for_lock,
        poll: Duration::from_millis(500).min(opts.lease_duration / 4),
    }
}

async fn locked(
    client: &Client,
    desired: &Desired<'_>,
    opts: &ApplyOptions,
    confirm: &mut (dyn FnMut(&Plan) -> bool + Send),
    reporter: &dyn Reporter,
    held: &lease::Held,
) -> Result<ApplyReport, ApplyError> {
    let plan = plan::plan(client, desired, &opts.plan)
        .await
        .map_err(ApplyError::Live)?;
    let reasons = refusals(&plan, opts);
    if !reasons.is_empty() {
        return Err(ApplyError::Refused {
            plan: Box::new(plan),
            reasons,
        });
    }
    let ns = &opts.plan.state_namespace;
    let mut inv = Inventory {
        entries: plan.inventory.entries.clone(),
    };
    inv.entries.extend(plan::entries(desired.objects));
    let write_inv = |inv: Inventory| async move {
        inventory::write(client, ns, desired.blueprint, &inv)
            .await
            .map_err(|source| {
                ApplyError::Live(LiveError::Api {
                    what: "writing the inventory".into(),
                    source,
                })
            })
    };
    if plan.changes() == 0 {
        if inv != plan.inventory {
            write_inv(inv).await?;
        }
        return Ok(ApplyReport {
            plan,
            outcome: Outcome::NoChanges,
            done: vec![],
            remaining: vec![],
        });
    }
    if !confirm(&plan) {
        return Ok(ApplyReport {
            plan,
            outcome: Outcome::Declined,
            done: vec![],
            remaining: vec![],
        });
    }
    // Record ownership before the first change.
    if inv != plan.inventory {
        write_inv(inv.clone()).await?;
    }

    let steps: Vec<&PlanRow> = plan.rows.iter().filter(|r| r.is_change()).collect();
    let mut done: Vec<String> = Vec::new();
    let mut pruned: BTreeSet<String> = BTreeSet::new();
    let mut waits: Vec<&PlanRow> = Vec::new();
    let mut outcome = Outcome::Applied;
    let mut idx = 0;
    while idx < steps.len() {
        let r = steps[idx];
        // A new wave starts only when the previous one is ready.
        if let Some(prev) = waits.first()
            && prev.wave != r.wave
            && let Err(o) = flush_waits(client, opts, reporter, &mut waits).await
        {
            outcome = o;
            break;
        }
        if opts.cancel.load(Ordering::SeqCst) || held.lost() {
            outcome = Outcome::Interrupted;
            break;
        }
        match step(client, r, opts, reporter).await {
            Ok(()) => {
                done.push(format!("{} {}", r.action.as_str(), r.key()));
                if matches!(r.op, Op::Delete) {
                    pruned.insert(r.key());
                }
                if opts.wait
                    && wait::waits_for(&r.kind)
                    && matches!(r.op, Op::Apply(_) | Op::Recreate { .. })
                {
                    waits.push(r);
                }
            }
            Err(message) => {
                reporter.event(Event::Failed {
                    key: &r.key(),
                    message: &message,
                });
                outcome = Outcome::Failed(format!("{}: {message}", r.key()));
                break;
            }
        }
        idx += 1;
    }
    if outcome == Outcome::Applied
        && let Err(o) = flush_waits(client, opts, reporter, &mut waits).await
    {
        outcome = o;
    }
    let remaining: Vec<String> = steps[idx.min(steps.len())..]
        .iter()
        .map(|r| format!("{} {}", r.action.as_str(), r.key()))
        .collect();
    if !pruned.is_empty() {
        inv.entries.retain(|e| !pruned.contains(&e.key()));
        write_inv(inv).await?;
    }
    Ok(ApplyReport {
        plan,
        outcome,
        done,
        remaining,
    })
}

async fn flush_waits(
    client: &Client,
    opts: &ApplyOptions,
    reporter: &dyn Reporter,
    waits: &mut Vec<&PlanRow>,
) -> Result<(), Outcome> {
    for r in waits.drain(..) {
        let Some(info) = kinds::lookup(&r.api_version, &r.kind) else {
            continue;
        };
        let key = r.key();
        let started = Instant::now();
        let status = |s: &str| {
            reporter.event(Event::Waiting {
                key: &key,
                status: s,
            })
        };
        match wait::wait_ready(
            client,
            info,
            r.namespace.as_deref(),
            &r.name,
            opts.timeout,
            opts.poll,
            &opts.cancel,
            &status,
        )
        .await
        {
            Ok(()) => reporter.event(Event::Ready {
                key: &key,
                elapsed: started.elapsed(),
            }),
            Err(WaitError::Interrupted) => return Err(Outcome::Interrupted),
            Err(e) => {
                let message = e.to_string();
                reporter.event(Event::Failed {
                    key: &key,
                    message: &message,
                });
                return Err(Outcome::Failed(format!("{key}: {message}")));
            }
        }
    }
    Ok(())
}

/// Runs one step of a row between its Start and Done events.
async fn reported(
    reporter: &dyn Reporter,
    row: &PlanRow,
    (start, done): (&str, &str),
    work: impl std::future::Future<Output = Result<(), String>>,
) -> Result<(), String> {
    reporter.event(Event::Start { row, step: start });
    work.await?;
    reporter.event(Event::Done { row, step: done });
    Ok(())
}

/// Server-side apply of one object (retried on transient errors).
async fn server_side_apply(
    api: &Api<DynamicObject>,
    name: &str,
    pp: &PatchParams,
    body: &serde_json::Value,
) -> Result<(), kube::Error> {
    let patch = Patch::Apply(body);
    live::with_retry(|| api.patch(name, pp, &patch))
        .await
        .map(|_| ())
}

/// One row's change. Errors are messages for the user.
async fn step(
    client: &Client,
    r: &PlanRow,
    opts: &ApplyOptions,
    reporter: &dyn Reporter,
) -> Result<(), String> {
    let info = kinds::lookup(&r.api_version, &r.kind)
        .ok_or_else(|| format!("unknown kind {} {}", r.api_version, r.kind))?;
    let api = info.api(client, r.namespace.as_deref());
    let mut pp = PatchParams::apply(FIELD_MANAGER).validation_strict();
    if opts.force_conflicts {
        pp = pp.force();
    }
    let api_err = |what: &str, e: kube::Error| match &e {
        kube::Error::Api(s) if s.code == 409 && s.reason == "Conflict" => format!(
            "{what}: {}; another field manager changed these fields since the plan — re-run plan, or pass --force-conflicts",
            s.message
        ),
        _ => format!("{what}: {}", live::describe(&e)),
    };
    match &r.op {
        Op::None => Ok(()),
        Op::Apply(body) => {
            let apply = async {
                server_side_apply(&api, &r.name, &pp, body)
                    .await
                    .map_err(|e| api_err("server-side apply", e))
            };
            reported(reporter, r, ("apply", "applied"), apply).await
        }
        Op::ExpandClaim { storage } => {
            let expand = async {
                let patch = json!({"spec": {"resources": {"requests": {"storage": storage}}}});
                let mp = PatchParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..Default::default()
                };
                let patch = Patch::Merge(&patch);
                live::with_retry(|| api.patch(&r.name, &mp, &patch))
                    .await
                    .map(|_| ())
                    .map_err(|e| api_err("expanding the claim", e))
            };
            reported(reporter, r, ("expand", "expanded"), expand).await
        }
        Op::Recreate { body, orphan } => {
            reporter.event(Event::Start {
                row: r,
                step: if *orphan { "orphan-delete" } else { "delete" },
            });
            let dp = if *orphan {
                DeleteParams::orphan()
            } else {
                DeleteParams::background()
            };
            delete_and_wait(client, info, r, &dp, opts).await?;
            let apply = async {
                server_side_apply(&api, &r.name, &pp, body)
                    .await
                    .map_err(|e| api_err("re-creating", e))
            };
            reported(reporter, r, ("re-create", "re-created"), apply).await
        }
        Op::Delete => {
            // Defence in depth: never PVCs or Namespaces, only what we own.
            if matches!(
                r.kind.as_str(),
                "PersistentVolumeClaim" | "Namespace" | "StorageClass"
            ) {
                return Err(format!("stateplan never deletes a {}", r.kind));
            }
            reporter.event(Event::Start {
                row: r,
                step: "delete",
            });
            delete_and_wait(client, info, r, &DeleteParams::background(), opts).await?;
            reporter.event(Event::Done {
                row: r,
                step: "deleted",
            });
            Ok(())
        }
    }
}

async fn delete_and_wait(
    client: &Client,
    info: &'static live::KindInfo,
    r: &PlanRow,
    dp: &DeleteParams,
    opts: &ApplyOptions,
) -> Result<(), String> {
    let api = info.api(client, r.namespace.as_deref());
    match live::with_retry(|| api.delete(&r.name, dp)).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(e) => return Err(format!("deleting: {}", live::describe(&e))),
    }
    let deadline = Instant::now() + opts.timeout;
    loop {
        match live::get(client, info, r.namespace.as_deref(), &r.name).await {
            Ok(None) => return Ok(()),
            Ok(Some(_)) if Instant::now() < deadline => {
                tokio::time::sleep(opts.poll.min(Duration::from_millis(500))).await;
            }
            Ok(Some(_)) => return Err("still present after the timeout".into()),
            Err(e) => return Err(format!("reading: {}", live::describe(&e))),
        }
    }
}
