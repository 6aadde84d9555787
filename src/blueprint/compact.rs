//! The compact form: `cache = "valkey 3 replicas 20Gi balanced zone-redundant"`.
//!
//! Grammar: `<engine> <N> replicas <size> <tier> <redundancy>` (`1 replica`
//! is accepted too). Every token is checked and an error points at the
//! token's own column inside the string.

use std::collections::BTreeMap;
use std::ops::Range;

use super::decode::Reader;
use super::{BackupSpec, DiskSpec, Form, NodePoolSpec, Spanned, WorkloadSpec, rules};

pub(crate) const GRAMMAR: &str = "\"<engine> <N> replicas <size> <tier> <redundancy>\", e.g. \"postgres 3 replicas 200Gi fast-ssd zone-redundant\"";

pub(crate) fn parse(
    r: &mut Reader,
    name: Spanned<String>,
    text: &str,
    span: Range<usize>,
    body_offset: Option<usize>,
) -> Result<WorkloadSpec, Option<Spanned<String>>> {
    // Token spans are exact when the string has no escapes; otherwise every
    // error points at the whole string.
    let token_span = |range: Range<usize>| match body_offset {
        Some(o) => o + range.start..o + range.end,
        None => span.clone(),
    };
    let tokens: Vec<Spanned<String>> = tokenize(text)
        .map(|(range, tok)| Spanned::new(tok.to_string(), token_span(range)))
        .collect();
    let end_span = match body_offset {
        Some(o) => o + text.len()..o + text.len(),
        None => span.clone(),
    };
    let missing = |r: &mut Reader, what: &str| {
        r.error(
            end_span.clone(),
            format!(
                "workload `{}`: the compact form is missing {what}",
                name.value
            ),
        )
        .hint = Some(format!("write {GRAMMAR}"));
    };

    let Some(engine) = tokens.first().cloned() else {
        r.error(
            span.clone(),
            format!("workload `{}` is an empty string", name.value),
        )
        .hint = Some(format!("write {GRAMMAR}"));
        return Err(None);
    };
    let is_name = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    let engine_ok = is_name(&engine.value);
    // A workload with errors still names its engine, for compile to check.
    let failed = || Err(engine_ok.then(|| engine.clone()));
    if !engine_ok {
        let lower = engine.value.to_ascii_lowercase();
        let hint = if is_name(&lower) {
            format!("engine names are lower-case: did you mean `{lower}`?")
        } else {
            format!("the first word names the engine; write {GRAMMAR}")
        };
        r.error(
            engine.span.clone(),
            format!("`{}` is not an engine name", engine.value),
        )
        .hint = Some(hint);
    }

    let replicas = match tokens.get(1) {
        Some(t) => match t.value.parse::<u32>() {
            Ok(0) => {
                r.error(t.span.clone(), "replicas must be at least 1").hint =
                    Some("use 1 for development, 3 for high availability".into());
                None
            }
            Ok(n) if n > 99 => {
                r.error(
                    t.span.clone(),
                    format!("{n} replicas is more than stateplan supports (99)"),
                )
                .hint = Some("use at most 99 replicas".into());
                None
            }
            Ok(n) => Some(Spanned::new(n, t.span.clone())),
            Err(_) => {
                r.error(
                    t.span.clone(),
                    format!("expected the number of replicas, found `{}`", t.value),
                )
                .hint = Some(format!("write {GRAMMAR}"));
                None
            }
        },
        None => {
            missing(r, "the replica count");
            return failed();
        }
    };

    match tokens.get(2) {
        Some(t) if t.value == "replicas" || t.value == "replica" => {}
        Some(t) => {
            let hint = if super::did_you_mean(&t.value, ["replicas", "replica"]).is_some() {
                "write `replicas` (or `replica` after 1)".to_string()
            } else {
                format!("write {GRAMMAR}")
            };
            r.error(
                t.span.clone(),
                format!("expected `replicas` after the count, found `{}`", t.value),
            )
            .hint = Some(hint);
        }
        None => {
            missing(r, "the word `replicas`");
            return failed();
        }
    }

    let storage = match tokens.get(3) {
        Some(t) => rules::storage(r, t),
        None => {
            missing(r, "the storage size (e.g. 200Gi)");
            return failed();
        }
    };
    let tier = match tokens.get(4) {
        Some(t) => rules::tier(r, t),
        None => {
            missing(
                r,
                "the storage tier (fast-ssd, balanced, standard, ultra or shared-files)",
            );
            return failed();
        }
    };
    let redundancy = match tokens.get(5) {
        Some(t) => rules::redundancy(r, t),
        None => {
            missing(r, "the redundancy (zone-redundant, zonal or none)");
            return failed();
        }
    };
    for extra in tokens.iter().skip(6) {
        r.error(
            extra.span.clone(),
            format!("unexpected `{}` after the redundancy", extra.value),
        )
        .hint = Some(format!(
            "the compact form has six words; use a [workloads.{}] table for more settings",
            name.value
        ));
    }

    let (true, Some(replicas), Some(storage), Some(tier), Some(redundancy)) =
        (engine_ok, replicas, storage, tier, redundancy)
    else {
        return failed();
    };
    Ok(WorkloadSpec {
        name,
        form: Form::Compact,
        span,
        engine,
        version: None,
        replicas,
        storage,
        tier,
        redundancy,
        namespace: None,
        resources: None,
        backup: BackupSpec::default(),
        secrets: None,
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
        node_pool: NodePoolSpec::default(),
        disk: DiskSpec::default(),
    })
}

/// Whitespace-separated tokens with their byte ranges.
fn tokenize(text: &str) -> impl Iterator<Item = (Range<usize>, &str)> {
    let mut rest = 0;
    std::iter::from_fn(move || {
        let tail = &text[rest..];
        let start = rest + (tail.len() - tail.trim_start().len());
        if start >= text.len() {
            return None;
        }
        let len = text[start..]
            .find(char::is_whitespace)
            .unwrap_or(text.len() - start);
        rest = start + len;
        Some((start..start + len, &text[start..start + len]))
    })
}

#[cfg(test)]
mod tests {
    use super::tokenize;

    #[test]
    fn tokens_keep_offsets() {
        let toks: Vec<_> = tokenize("  valkey 3\treplicas ").collect();
        assert_eq!(
            toks,
            vec![(2..8, "valkey"), (9..10, "3"), (11..19, "replicas")]
        );
    }
}
