//! Stage 3: compiled workloads → Kubernetes manifests (through the catalog's
//! minijinja templates) and Azure resource bodies.
//!
//! Whatever a template produces is parsed and checked here before it leaves
//! the tool: valid YAML, a known kind, names and namespaces where Kubernetes
//! wants them, ownership labels, no Secret objects, and the restricted Pod
//! Security Standard for engines that claim it.

pub mod azure;
mod checks;
mod emit;
mod filters;
pub mod gitops;
mod object;
mod parse;
pub mod strict;
mod tags;
mod templates;

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

pub use azure::{AzureResource, Json};
pub use object::{Body, DesiredObject, Wave, Yaml};
pub use templates::Renderer;

use crate::compile::{DesiredState, PENDING_PREFIX, Workload};
use crate::diagnostics::{Diagnostic, SourceFile};

/// Everything `render` produces for one blueprint.
#[derive(Debug)]
pub struct Rendered<B: Body = Value> {
    /// Kubernetes objects in apply order.
    pub objects: Vec<DesiredObject<B>>,
    /// Azure resources (wave 0), in apply order.
    pub azure: Vec<AzureResource<<B as Body>::Azure>>,
    /// Values known only after Azure creates something.
    pub pending: Vec<PendingValue>,
}

/// A placeholder in the output and what will fill it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PendingValue {
    /// `ServiceAccount/orders/orders-db-secrets` or `azure:federatedIdentityCredential/...`.
    pub object: String,
    /// JSON pointer of the field.
    pub field: String,
    /// The placeholder as rendered.
    pub placeholder: String,
}

/// Errors from rendering, with the rendered sources they point into.
#[derive(Debug, Default)]
pub struct RenderErrors {
    pub diagnostics: Vec<Diagnostic>,
    pub sources: Vec<SourceFile>,
}

/// Renders all workloads of a compiled blueprint, bodies as `Value`s.
pub fn render(state: &DesiredState, renderer: &Renderer<'_>) -> Result<Rendered, RenderErrors> {
    render_as(state, renderer)
}

/// Renders all workloads, keeping each body as `B`. Each workload's objects
/// are turned into `B` on the thread that rendered them.
pub fn render_as<B: Body>(
    state: &DesiredState,
    renderer: &Renderer<'_>,
) -> Result<Rendered<B>, RenderErrors> {
    let mut errors = RenderErrors::default();
    let results = render_all::<B>(state, renderer);
    let total = results.iter().map(|r| r.as_ref().map_or(0, Vec::len)).sum();
    // Sized up front: for a large blueprint this is the biggest allocation
    // that lives to the end.
    let mut objects: Vec<DesiredObject<B>> = Vec::with_capacity(total);
    // Placeholders with the wave and position of their object, to be listed
    // in apply order.
    let mut pending: Vec<(Wave, usize, PendingValue)> = Vec::new();
    // Shared objects (Namespaces, StorageClasses) are rendered by every
    // workload that uses them; identical copies merge, different ones are an
    // error naming both workloads.
    let mut shared: BTreeMap<String, (usize, String)> = BTreeMap::new();
    // Every other object belongs to one workload, once: a second copy
    // would silently replace the first in the cluster and in the tree.
    // Indexed by a hash of its identity, pointing into `objects`: a large
    // blueprint has tens of thousands and memory is tight.
    let mut owned: HashMap<u64, usize> = HashMap::new();
    for (w, result) in state.workloads.iter().zip(results) {
        match result {
            Ok(list) => {
                for (obj, found) in list {
                    if obj.workload.is_some() {
                        let same = |o: &DesiredObject<B>| {
                            (&o.kind, &o.namespace, &o.name)
                                == (&obj.kind, &obj.namespace, &obj.name)
                        };
                        let earlier = match owned.entry(identity_hash(&obj)) {
                            Entry::Vacant(slot) => {
                                slot.insert(objects.len());
                                None
                            }
                            // Two identities with one hash: look them all up.
                            Entry::Occupied(first) => Some(*first.get())
                                .filter(|&i| same(&objects[i]))
                                .or_else(|| objects.iter().position(same)),
                        };
                        if let Some(i) = earlier {
                            let key = obj.key();
                            let first = objects[i].workload.as_deref().unwrap_or_default();
                            errors.diagnostics.push(if first == w.name {
                                Diagnostic::error(format!("workload `{}` renders {key} twice", w.name))
                                    .in_file(&state.blueprint.file)
                                    .hint("a template writes the same object twice (two documents with one name); check the platform team's templates")
                            } else {
                                Diagnostic::error(format!("workloads `{first}` and `{}` both render {key}", w.name))
                                    .in_file(&state.blueprint.file)
                                    .hint("object names join the namespace and workload names with '-' (Velero Schedules: <namespace>-<workload>), so different pairs can meet; rename one workload")
                            });
                            continue;
                        }
                    }
                    if obj.workload.is_none() {
                        let key = obj.key();
                        if let Some((i, first)) = shared.get(&key) {
                            if objects[*i].body != obj.body {
                                errors.diagnostics.push(
                                    Diagnostic::error(format!("workloads `{first}` and `{}` render different versions of {key}", w.name))
                                        .in_file(&state.blueprint.file)
                                        .hint("objects shared between workloads (Namespaces, StorageClasses) must be identical; check that the engines agree on the namespace's Pod Security level or use separate namespaces"),
                                );
                            }
                            continue;
                        }
                        shared.insert(key, (objects.len(), w.name.clone()));
                    }
                    pending.extend(found.into_iter().map(|p| (obj.wave, objects.len(), p)));
                    objects.push(obj);
                }
            }
            Err(e) => {
                errors.diagnostics.extend(e.diagnostics);
                errors.sources.extend(e.sources);
            }
        }
    }
    if !errors.diagnostics.is_empty() {
        return Err(errors);
    }
    // Stable sort: within a wave, workloads keep blueprint order and each
    // workload keeps workload.toml order. Placeholders follow their objects.
    objects.sort_by_key(|o| o.wave);
    pending.sort_by_key(|(wave, i, _)| (*wave, *i));
    let mut pending: Vec<PendingValue> = pending.into_iter().map(|(_, _, p)| p).collect();
    // After the render, not alongside it on a thread of its own: that was
    // about 2% faster on 1000 workloads but raised the peak by 5 MiB (to
    // 61 MB with `-o`), as the bodies then live with the render's buffers.
    let azure = azure::resources_as(state, &mut pending);
    Ok(Rendered {
        objects,
        azure,
        pending,
    })
}

/// A hash of an object's kind, namespace and name.
fn identity_hash<B: Body>(o: &DesiredObject<B>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (&o.kind, &o.namespace, &o.name).hash(&mut h);
    h.finish()
}

/// One workload's objects with their bodies as `B`, each with the
/// placeholders it contains.
type WorkloadResult<B> = Result<Vec<(DesiredObject<B>, Vec<PendingValue>)>, RenderErrors>;

fn render_workload<B: Body>(
    state: &DesiredState,
    renderer: &Renderer<'_>,
    w: &Workload,
) -> WorkloadResult<B> {
    let objects = renderer.workload(state, w)?;
    Ok(objects
        .into_iter()
        .map(|o| {
            let mut pending = Vec::new();
            find_pending(&o.body, &mut Vec::new(), &o.key(), &mut pending);
            (o.map_body(B::from_value), pending)
        })
        .collect())
}

/// Renders every workload over the available cores. Results come back in
/// blueprint order, so output stays deterministic.
fn render_all<B: Body>(state: &DesiredState, renderer: &Renderer<'_>) -> Vec<WorkloadResult<B>> {
    let results = crate::parallel::map(state.workloads.len(), 16, |i| {
        render_workload(state, renderer, &state.workloads[i])
    });
    results
        .into_iter()
        .zip(&state.workloads)
        .map(|(result, w)| {
            result.unwrap_or_else(|| {
                Err(RenderErrors {
                    diagnostics: vec![Diagnostic::error(format!(
                        "internal error while rendering workload {}; please report it",
                        w.name
                    ))],
                    sources: Vec::new(),
                })
            })
        })
        .collect()
}

/// A step of the path to the value being looked at.
enum Step<'v> {
    Key(&'v str),
    Index(usize),
}

/// Collects the placeholders in `v`. Runs over every node of every object,
/// so the JSON pointer is only spelled out for the few strings that match.
fn find_pending<'v>(
    v: &'v Value,
    path: &mut Vec<Step<'v>>,
    object: &str,
    out: &mut Vec<PendingValue>,
) {
    match v {
        Value::String(s) if s.starts_with(PENDING_PREFIX) => {
            let mut field = String::new();
            for step in path.iter() {
                field.push('/');
                match step {
                    Step::Key(k) => field.push_str(&crate::diagnostics::pointer_token(k)),
                    Step::Index(i) => field.push_str(&i.to_string()),
                }
            }
            out.push(PendingValue {
                object: object.to_string(),
                field,
                placeholder: s.clone(),
            });
        }
        Value::Object(map) => {
            for (k, v) in map {
                path.push(Step::Key(k));
                find_pending(v, path, object, out);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                path.push(Step::Index(i));
                find_pending(v, path, object, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// One object as YAML, the way serde-saphyr writes it.
pub fn to_yaml(v: &Value) -> String {
    let fast = emit::document(v).map(one_final_break);
    #[cfg(test)]
    if let Some(text) = &fast {
        assert_eq!(text, &saphyr_yaml(v), "fast writer differs for {v}");
    }
    fast.unwrap_or_else(|| saphyr_yaml(v))
}

/// Serialising a `serde_json::Value` cannot fail.
fn saphyr_yaml(v: &Value) -> String {
    one_final_break(serde_saphyr::to_string(v).unwrap_or_default())
}

/// Documents are joined with `---` lines: each ends with exactly one line
/// break (a kept trailing blank line of a block scalar would otherwise
/// look like part of the separator).
fn one_final_break(mut s: String) -> String {
    while s.ends_with("\n\n") {
        s.pop();
    }
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

/// A small deterministic random source for the tests that compare the fast
/// reader and writer with serde-saphyr on generated input: `next(bound)` is
/// in `0..bound` (xorshift64).
#[cfg(test)]
fn test_random(mut state: u64) -> impl FnMut(usize) -> usize {
    move |bound: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % bound as u64) as usize
    }
}
