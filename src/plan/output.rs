//! Showing a plan: a summary table, a unified diff per changed object
//! (coloured on a terminal), or the same as JSON.

use serde_json::{Value, json};

use super::{Action, Plan};
use crate::render::to_yaml;

/// A unified diff of two objects as YAML (`Null` = absent).
pub fn unified(before: &Value, after: &Value, key: &str) -> String {
    let a = if before.is_null() {
        String::new()
    } else {
        to_yaml(before)
    };
    let b = if after.is_null() {
        String::new()
    } else {
        to_yaml(after)
    };
    let diff = similar::TextDiff::from_lines(&a, &b);
    diff.unified_diff()
        .context_radius(3)
        .header(&format!("live/{key}"), &format!("planned/{key}"))
        .to_string()
}

fn paint(s: &str, code: &str, color: bool) -> String {
    if color {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

fn action_color(a: Action) -> &'static str {
    match a {
        Action::Create => "32",
        Action::Update => "33",
        Action::Replace => "35",
        Action::Delete => "31",
        Action::Unchanged => "2",
    }
}

/// The plan as text: table, diffs, drift, refusals, summary line.
pub fn render_text(plan: &Plan, color: bool, show_unchanged: bool) -> String {
    let mut out = String::new();
    let rows: Vec<_> = plan
        .rows
        .iter()
        .filter(|r| show_unchanged || r.is_change())
        .collect();
    if !rows.is_empty() {
        let w_obj = rows.iter().map(|r| r.key().len()).max().unwrap_or(6).max(6);
        out.push_str(&paint(
            &format!(
                "{:<4} {:<10} {:<9} {:<w_obj$}  REASON\n",
                "WAVE", "SCOPE", "ACTION", "OBJECT"
            ),
            "1",
            color,
        ));
        for r in &rows {
            let scope = match r.scope {
                super::Scope::Azure => "azure",
                super::Scope::Kubernetes => "kubernetes",
            };
            let mut reason = r.reason.clone().unwrap_or_default();
            if let Some(n) = r.needs {
                if !reason.is_empty() {
                    reason.push_str("; ");
                }
                reason.push_str(&format!("needs {}", n.flag()));
            }
            out.push_str(&format!(
                "{:<4} {:<10} {} {:<w_obj$}  {}\n",
                r.wave as u8,
                scope,
                paint(
                    &format!("{:<9}", r.action.as_str()),
                    action_color(r.action),
                    color
                ),
                r.key(),
                reason
            ));
        }
    }
    for r in plan.rows.iter().filter(|r| r.is_change()) {
        out.push('\n');
        out.push_str(&paint(
            &format!("# {} {}\n", r.action.as_str(), r.key()),
            "1",
            color,
        ));
        for d in &r.drift {
            let values = match (&d.live, &d.desired) {
                (Some(l), Some(w)) => format!(" (live {l}, blueprint {w})"),
                _ => String::new(),
            };
            out.push_str(&paint(
                &format!(
                    "# drift: {} is owned by {:?}{values}; apply stops here unless --force-conflicts\n",
                    if d.field.is_empty() { "a field" } else { &d.field },
                    d.manager
                ),
                "33",
                color,
            ));
        }
        if let Some(diff) = &r.diff {
            for line in diff.lines() {
                let code = if line.starts_with("+++") || line.starts_with("---") {
                    "1"
                } else if line.starts_with('+') {
                    "32"
                } else if line.starts_with('-') {
                    "31"
                } else if line.starts_with("@@") {
                    "36"
                } else {
                    ""
                };
                if code.is_empty() {
                    out.push_str(line);
                } else {
                    out.push_str(&paint(line, code, color));
                }
                out.push('\n');
            }
        }
    }
    for n in &plan.notes {
        out.push_str(&format!("\nnote: {n}\n"));
    }
    for r in &plan.refusals {
        out.push_str(&paint(&format!("\nerror: {r}\n"), "31", color));
    }
    let s = plan.summary();
    let n = |a| s.get(&a).copied().unwrap_or(0);
    out.push_str(&format!(
        "\nPlan for {}: {} to create, {} to update, {} to replace, {} to delete, {} unchanged.\n",
        plan.blueprint,
        n(Action::Create),
        n(Action::Update),
        n(Action::Replace),
        n(Action::Delete),
        n(Action::Unchanged)
    ));
    if !plan.refusals.is_empty() {
        out.push_str("Nothing can be applied until the errors above are fixed.\n");
    } else if plan.changes() == 0 {
        out.push_str("No changes: the cluster matches the blueprint.\n");
    }
    out
}

/// The plan as JSON (`--output json`): same rows, diffs, refusals.
pub fn render_json(plan: &Plan) -> Value {
    let s = plan.summary();
    let n = |a| s.get(&a).copied().unwrap_or(0);
    json!({
        "blueprint": plan.blueprint,
        "summary": {
            "create": n(Action::Create),
            "update": n(Action::Update),
            "replace": n(Action::Replace),
            "delete": n(Action::Delete),
            "unchanged": n(Action::Unchanged),
        },
        "rows": plan.rows,
        "refusals": plan.refusals,
        "notes": plan.notes,
        "exit_code": plan.exit_code(),
    })
}
