//! `explain`: every decision, the rule that made it, and why.

use std::path::Path;

use super::{EXIT_ERROR, Output};
use crate::pipeline;

pub fn run(out: &Output, templates: Option<&Path>, file: &str) -> u8 {
    let loaded = match pipeline::load(file, templates) {
        Ok(l) => l,
        Err(d) => {
            out.diagnostics(&d, true);
            return EXIT_ERROR;
        }
    };
    let s = &loaded.state;
    if out.json() {
        let v: Vec<_> = s
            .workloads
            .iter()
            .map(|w| serde_json::json!({ "workload": w.name, "engine": w.engine.name, "decisions": w.decisions }))
            .collect();
        let doc = serde_json::json!({ "diagnostics": loaded.diagnostics.items(), "workloads": v });
        out.stdout(&format!(
            "{}\n",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        ));
        return 0;
    }
    out.diagnostics(&loaded.diagnostics, false);
    let mut text = String::new();
    for w in &s.workloads {
        text.push_str(&out.bold(&format!(
            "{} — {} {}, {} replica{}, {} {} per replica, {}\n",
            w.name,
            w.engine.name,
            w.version,
            w.replicas,
            if w.replicas == 1 { "" } else { "s" },
            w.storage,
            w.tier,
            w.redundancy
        )));
        for d in &w.decisions {
            text.push_str(&format!("\n  {}: {}\n", out.bold(&d.topic), d.choice));
            text.push_str(&format!("    {} {}\n", out.dim("rule:"), d.rule));
            for (i, line) in wrap(&d.reason, 88).iter().enumerate() {
                let label = if i == 0 {
                    out.dim("why: ")
                } else {
                    "     ".to_string()
                };
                text.push_str(&format!("    {label} {line}\n"));
            }
        }
        text.push('\n');
    }
    out.stdout(&text);
    0
}

fn wrap(s: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in s.split_whitespace() {
        let last = lines.last_mut().expect("never empty");
        if !last.is_empty() && last.len() + 1 + word.len() > width {
            lines.push(word.to_string());
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(word);
        }
    }
    lines
}
