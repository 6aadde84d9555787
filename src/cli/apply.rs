//! `apply`: plan, confirm, apply in waves, wait for readiness.
//! Exit codes: 0 applied (or nothing to do), 1 error/refused/declined,
//! 130 interrupted (Ctrl-C; re-running continues where it stopped).

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::plan::{ClusterArgs, prepare, print_error, print_plan, runtime, target};
use super::{EXIT_ERROR, Output};
use crate::apply::{self, ApplyError, ApplyOptions, ApplyReport, Event, Outcome, Reporter, lease};
use crate::azure;
use crate::live;
use crate::pipeline::Loaded;
use crate::plan::{self, Desired, Plan, PlanOptions, combined};

/// Exit code after Ctrl-C.
pub const EXIT_INTERRUPTED: u8 = 130;

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Do not ask for confirmation (required without a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Take over fields another field manager owns (kubectl edit, an HPA…).
    #[arg(long)]
    pub force_conflicts: bool,
    /// Delete and re-create objects whose immutable fields change.
    #[arg(long)]
    pub allow_replace: bool,
    /// Longest wait for one object to become ready (e.g. 90s, 10m, 1h).
    #[arg(long, value_name = "DURATION", default_value = "20m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Do not wait for readiness between waves.
    #[arg(long)]
    pub no_wait: bool,
    /// If another apply of this blueprint runs, wait for it (up to --timeout).
    #[arg(long)]
    pub wait_for_lock: bool,
}

/// `90s`, `10m`, `1h30m`, `2h`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<u64>() {
        return Ok(Duration::from_secs(n));
    }
    let mut total = 0u64;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num
            .parse()
            .map_err(|_| format!("`{s}` is not a duration; use e.g. 90s, 10m or 1h30m"))?;
        num.clear();
        total += n * match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => {
                return Err(format!(
                    "`{s}`: unknown unit `{c}`; use s, m or h (e.g. 10m)"
                ));
            }
        };
    }
    if !num.is_empty() || total == 0 {
        return Err(format!(
            "`{s}` is not a duration; use e.g. 90s, 10m or 1h30m"
        ));
    }
    Ok(Duration::from_secs(total))
}

/// Progress on a terminal: one line per object, a spinner with elapsed
/// time while waiting. Without a terminal: plain lines on stderr.
struct Progress {
    multi: Option<MultiProgress>,
    bars: Mutex<Vec<(String, ProgressBar)>>,
}

impl Progress {
    fn new(tty: bool) -> Progress {
        Progress {
            multi: tty.then(MultiProgress::new),
            bars: Mutex::new(Vec::new()),
        }
    }
    fn bar(&self, key: &str) -> Option<ProgressBar> {
        let multi = self.multi.as_ref()?;
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, b)) = bars.iter().find(|(k, _)| k == key) {
            return Some(b.clone());
        }
        let b = multi.add(ProgressBar::new_spinner());
        b.set_style(
            ProgressStyle::with_template("{spinner} {prefix} [{elapsed}] {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        b.set_prefix(key.to_string());
        b.enable_steady_tick(Duration::from_millis(120));
        bars.push((key.to_string(), b.clone()));
        Some(b)
    }
    fn line(&self, s: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(s);
            }
            None => {
                let _ = writeln!(std::io::stderr().lock(), "{s}");
            }
        }
    }
}

impl Reporter for Progress {
    fn event(&self, e: Event<'_>) {
        match e {
            Event::Start { row, step } => {
                if let Some(b) = self.bar(&row.key()) {
                    b.set_message(format!("{step}…"));
                }
            }
            Event::Done { row, step } => match self.bar(&row.key()) {
                Some(b) => b.finish_with_message(step.to_string()),
                None => self.line(&format!("{} {step}", row.key())),
            },
            Event::Waiting { key, status } => match self.bar(key) {
                Some(b) => {
                    b.reset_elapsed();
                    b.set_message(format!("waiting: {status}"));
                }
                None => self.line(&format!("{key} waiting: {status}")),
            },
            Event::Ready { key, elapsed } => match self.bar(key) {
                Some(b) => b.finish_with_message(format!("ready after {}s", elapsed.as_secs())),
                None => self.line(&format!("{key} ready after {}s", elapsed.as_secs())),
            },
            Event::Failed { key, message } => match self.bar(key) {
                Some(b) => b.abandon_with_message(format!("failed: {message}")),
                None => self.line(&format!("{key} failed: {message}")),
            },
        }
    }
}

fn ask(question: &str) -> bool {
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "{question} [y/N] ");
    let _ = err.flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes")
}

pub fn run(out: &Output, templates: Option<&Path>, args: ApplyArgs) -> u8 {
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if !args.yes && !interactive {
        out.note("error: refusing to apply without confirmation: standard input is not a terminal\nhelp: review the changes with `stateplan plan FILE`, then run `stateplan apply FILE --yes`");
        return EXIT_ERROR;
    }
    let loaded = match prepare(out, templates, &args.cluster) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let rt = match runtime(out) {
        Ok(r) => r,
        Err(code) => return code,
    };
    if !args.cluster.kubernetes() {
        return rt.block_on(azure_only(out, &args, &loaded));
    }
    let desired = Desired {
        blueprint: &loaded.state.blueprint.name,
        objects: &loaded.rendered.objects,
        pending: &loaded.rendered.pending,
        workloads: &loaded.state.workloads,
    };
    let opts = ApplyOptions {
        plan: PlanOptions {
            prune: args.cluster.prune,
            state_namespace: args.cluster.state_namespace.clone(),
            allow_replica_change: args.cluster.allow_replica_change,
            ..Default::default()
        },
        force_conflicts: args.force_conflicts,
        allow_replace: args.allow_replace,
        wait: !args.no_wait,
        timeout: args.timeout,
        wait_for_lock: args.wait_for_lock.then_some(args.timeout),
        ..Default::default()
    };
    let progress = Progress::new(std::io::stderr().is_terminal() && !out.json());
    let color = out.color && std::io::stdout().is_terminal();
    let json = out.json();
    let yes = args.yes;
    let confirmed = Arc::new(AtomicBool::new(false));
    let confirmed2 = confirmed.clone();
    let mut confirm = |p: &Plan| {
        if !json {
            out.stdout(&plan::render_text(p, color, false));
        }
        let ok = yes || ask("Apply these changes?");
        confirmed2.store(ok, Ordering::SeqCst);
        ok
    };
    let cancel = opts.cancel.clone();
    let azure_half = args.cluster.azure();
    let result = rt.block_on(async {
        let client = live::connect(&target(&args.cluster))
            .await
            .map_err(|e| Failure::Apply(ApplyError::Live(e)))?;
        let watcher = tokio::spawn(async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                // Before anything changed (or on a second Ctrl-C): stop now.
                if !confirmed.load(Ordering::SeqCst) || cancel.load(Ordering::SeqCst) {
                    let _ = writeln!(
                        std::io::stderr().lock(),
                        "\ninterrupted{}",
                        if confirmed.load(Ordering::SeqCst) {
                            ""
                        } else {
                            "; nothing was changed"
                        }
                    );
                    std::process::exit(i32::from(EXIT_INTERRUPTED));
                }
                cancel.store(true, Ordering::SeqCst);
                let _ = writeln!(
                    std::io::stderr().lock(),
                    "\nstopping after the current step (Ctrl-C again to quit at once)…"
                );
            }
        });
        // One lease for both halves: a second apply of this blueprint
        // cannot interleave with the Azure half either.
        let held = lease::acquire(
            &client,
            desired.blueprint,
            &lease::holder_identity(),
            &apply::lock_options(&opts),
        )
        .await
        .map_err(|e| Failure::Apply(ApplyError::Lock(e)))?;
        let r = if azure_half {
            both_halves(
                out,
                &args,
                &loaded,
                &client,
                &desired,
                &opts,
                &mut confirm,
                &progress,
                &held,
            )
            .await
        } else {
            apply::run_locked(&client, &desired, &opts, &mut confirm, &progress, &held)
                .await
                .map_err(Failure::Apply)
        };
        held.release().await;
        watcher.abort();
        r
    });
    let report = match result {
        Ok(r) => r,
        Err(Failure::Apply(e)) => {
            if let ApplyError::Refused { plan, .. } = &e
                && !json
            {
                out.stdout(&plan::render_text(plan, color, false));
            }
            return print_error(out, &e.to_string());
        }
        Err(Failure::Azure(e)) => return print_error(out, &e),
    };
    let code = match &report.outcome {
        Outcome::NoChanges => {
            if !json {
                out.note("No changes: the cluster matches the blueprint.");
            }
            0
        }
        Outcome::Applied => {
            if !json {
                out.note(&format!(
                    "Applied {} change(s){}.",
                    report.done.len(),
                    if opts.wait {
                        "; everything is ready"
                    } else {
                        " (not waited for: --no-wait)"
                    }
                ));
            }
            0
        }
        Outcome::Declined => {
            out.note("Nothing was changed.");
            EXIT_ERROR
        }
        Outcome::Interrupted => {
            out.note(&format!(
                "Interrupted. Done: {}.\nNot done: {}.\nRe-run `stateplan apply` to continue: it picks up where this stopped.",
                list(&report.done),
                list(&report.remaining)
            ));
            EXIT_INTERRUPTED
        }
        Outcome::Failed(m) => {
            out.note(&format!(
                "error: {m}\nDone: {}.\nNot done: {}.\nFix the cause and re-run `stateplan apply`: it continues from the current state.",
                list(&report.done),
                list(&report.remaining)
            ));
            EXIT_ERROR
        }
    };
    if json {
        let v = serde_json::json!({
            "plan": plan::render_json(&report.plan),
            "outcome": match &report.outcome {
                Outcome::NoChanges => "no-changes".to_string(),
                Outcome::Applied => "applied".into(),
                Outcome::Declined => "declined".into(),
                Outcome::Interrupted => "interrupted".into(),
                Outcome::Failed(m) => format!("failed: {m}"),
            },
            "done": report.done,
            "remaining": report.remaining,
            "exit_code": code,
        });
        out.stdout(&format!(
            "{}\n",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        ));
    }
    code
}

/// Why an apply stopped before or while changing things.
enum Failure {
    Apply(ApplyError),
    /// The Azure half failed (planning or applying); the message says what
    /// was already done.
    Azure(String),
}

/// The Azure half first (wave 0), then the Kubernetes half with the values
/// Azure assigned, after one confirmation of the combined plan.
#[allow(clippy::too_many_arguments)]
async fn both_halves(
    out: &Output,
    args: &ApplyArgs,
    loaded: &Loaded,
    client: &kube::Client,
    desired: &Desired<'_>,
    opts: &ApplyOptions,
    confirm: &mut (dyn FnMut(&Plan) -> bool + Send),
    progress: &Progress,
    held: &lease::Held,
) -> Result<ApplyReport, Failure> {
    let az_client = args
        .cluster
        .azure
        .client()
        .map_err(|e| Failure::Azure(e.to_string()))?;
    let az_plan_opts = azure::plan::PlanOptions {
        allow_replace: args.allow_replace,
    };
    let az = azure::plan(&az_client, loaded, &az_plan_opts)
        .await
        .map_err(|e| Failure::Azure(e.to_string()))?;
    // The Kubernetes half as it will be once Azure has run: its values where
    // Azure has them, a "known after apply" marker where it will create them.
    let mut preview = opts.plan.clone();
    preview.resolved = combined::preview_resolved(&az, desired.pending);
    let kube_plan = plan::plan(client, desired, &preview)
        .await
        .map_err(|e| Failure::Apply(ApplyError::Live(e)))?;
    let full = combined::combine(kube_plan, &az);
    let reasons = apply::refusals(&full, opts);
    if !reasons.is_empty() {
        return Err(Failure::Apply(ApplyError::Refused {
            plan: Box::new(full),
            reasons,
        }));
    }
    let report = |plan: Plan, outcome| ApplyReport {
        plan,
        outcome,
        done: Vec::new(),
        remaining: Vec::new(),
    };
    if full.changes() == 0 {
        return Ok(report(full, Outcome::NoChanges));
    }
    if !confirm(&full) {
        return Ok(report(full, Outcome::Declined));
    }
    // Pools the plan would remove (superseded by a replacement) are deleted
    // only if no stateplan pod runs on them any more.
    let leaving: Vec<String> = az
        .changes
        .iter()
        .filter(|c| {
            c.kind == crate::render::azure::AzureKind::AgentPool
                && c.action == azure::plan::Action::Delete
        })
        .map(|c| c.name.clone())
        .collect();
    let az_opts = azure::apply::ApplyOptions {
        allow_replace: args.allow_replace,
        idle_pools: live::pools::idle_pools(client, &leaving).await,
        on_event: Some(Arc::new(|line: &str| {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        })),
    };
    let az_report = match azure::apply(&az_client, &az, &az_opts).await {
        Ok(r) => r,
        Err(f) => {
            return Err(Failure::Azure(format!(
                "{f}\nNothing in Kubernetes was changed; re-run `stateplan apply` after fixing the cause."
            )));
        }
    };
    for f in &az_report.follow_ups {
        out.note(&format!("note: {f}"));
    }
    let mut kube_opts = opts.clone();
    kube_opts.plan.resolved = az.resolved.clone();
    kube_opts.plan.resolved.extend(az_report.resolved.clone());
    // Already confirmed as part of the combined plan.
    let mut go = |_: &Plan| true;
    let mut kube_report = apply::run_locked(client, desired, &kube_opts, &mut go, progress, held)
        .await
        .map_err(Failure::Apply)?;
    let azure_done = az_report.applied.iter().map(|a| {
        format!(
            "{} {}/{} ({})",
            a.action.as_str(),
            a.kind.as_str(),
            a.name,
            a.outcome
        )
    });
    kube_report.done.splice(0..0, azure_done);
    if kube_report.outcome == Outcome::NoChanges {
        kube_report.outcome = Outcome::Applied;
    }
    kube_report.plan = combined::combine(kube_report.plan, &az);
    Ok(kube_report)
}

/// `apply --only azure`: plan, confirm and apply the Azure half alone.
async fn azure_only(out: &Output, args: &ApplyArgs, loaded: &Loaded) -> u8 {
    let client = match args.cluster.azure.client() {
        Ok(c) => c,
        Err(e) => return print_error(out, &e.to_string()),
    };
    let opts = azure::plan::PlanOptions {
        allow_replace: args.allow_replace,
    };
    let az = match azure::plan(&client, loaded, &opts).await {
        Ok(p) => p,
        Err(e) => return print_error(out, &e.to_string()),
    };
    let shown = combined::azure_only(&loaded.state.blueprint.name, &az);
    print_plan(out, &shown, false);
    let refusals = az.refusals();
    if !refusals.is_empty() {
        return print_error(
            out,
            &format!(
                "refusing to apply; nothing was changed: {}",
                refusals.join("; ")
            ),
        );
    }
    if az.needs_replace_flag() && !args.allow_replace {
        return print_error(
            out,
            "refusing to apply; nothing was changed: node pool properties that cannot change in place differ; pass --allow-replace to create a replacement pool",
        );
    }
    if !az.has_changes() {
        out.note("No changes: Azure matches the blueprint.");
        return 0;
    }
    if !args.yes && !ask("Apply these changes?") {
        out.note("Nothing was changed.");
        return EXIT_ERROR;
    }
    let az_opts = azure::apply::ApplyOptions {
        allow_replace: args.allow_replace,
        idle_pools: Default::default(),
        on_event: Some(Arc::new(|line: &str| {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        })),
    };
    match azure::apply(&client, &az, &az_opts).await {
        Ok(r) => {
            for f in &r.follow_ups {
                out.note(&format!("note: {f}"));
            }
            out.note(&format!(
                "Applied {} Azure change(s). The Kubernetes half (`stateplan apply FILE --only kubernetes`) keeps the values now live, or re-render for GitOps.",
                r.applied.len()
            ));
            0
        }
        Err(f) => print_error(out, &f.to_string()),
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "nothing".into()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("m").is_err());
    }
}
