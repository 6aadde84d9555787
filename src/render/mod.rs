//! Stage 3: compiled workloads → Kubernetes manifests (through the catalog's
//! minijinja templates) and Azure resource bodies.
//!
//! Whatever a template produces is parsed and checked here before it leaves
//! the tool: valid YAML, a known kind, names and namespaces where Kubernetes
//! wants them, ownership labels, no Secret objects, and the restricted Pod
//! Security Standard for engines that claim it.

pub mod azure;
mod checks;
pub mod gitops;
mod object;
mod parse;
mod templates;

use std::collections::BTreeMap;

use serde_json::Value;

pub use azure::AzureResource;
pub use object::{DesiredObject, Wave};
pub use templates::Renderer;

use crate::compile::{DesiredState, PENDING_PREFIX};
use crate::diagnostics::{Diagnostic, SourceFile};

/// Everything `render` produces for one blueprint.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// Kubernetes objects in apply order.
    pub objects: Vec<DesiredObject>,
    /// Azure resources (wave 0), in apply order.
    pub azure: Vec<AzureResource>,
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

/// Renders all workloads of a compiled blueprint.
pub fn render(state: &DesiredState, renderer: &Renderer<'_>) -> Result<Rendered, RenderErrors> {
    let mut errors = RenderErrors::default();
    let mut objects: Vec<DesiredObject> = Vec::new();
    // Shared objects (Namespaces, StorageClasses) are rendered by every
    // workload that uses them; identical copies merge, different ones are an
    // error naming both workloads.
    let mut shared: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for (w, result) in state.workloads.iter().zip(render_all(state, renderer)) {
        match result {
            Ok(list) => {
                for obj in list {
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
    // workload keeps workload.toml order.
    objects.sort_by_key(|o| o.wave);
    let azure = azure::resources(state);
    let mut pending = Vec::new();
    for o in &objects {
        find_pending(&o.body, &mut String::new(), &o.key(), &mut pending);
    }
    for a in &azure {
        find_pending(
            &a.body,
            &mut String::new(),
            &format!("azure:{}", a.display_name()),
            &mut pending,
        );
    }
    Ok(Rendered {
        objects,
        azure,
        pending,
    })
}

/// Renders every workload, spreading them over the available cores. Results
/// come back in blueprint order, so output stays deterministic.
fn render_all(
    state: &DesiredState,
    renderer: &Renderer<'_>,
) -> Vec<Result<Vec<DesiredObject>, RenderErrors>> {
    let n = state.workloads.len();
    let threads = std::thread::available_parallelism()
        .map_or(1, |p| p.get())
        .min(n / 16)
        .max(1);
    if threads == 1 {
        return state
            .workloads
            .iter()
            .map(|w| renderer.workload(state, w))
            .collect();
    }
    let chunk = n.div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = state
            .workloads
            .chunks(chunk)
            .map(|ws| {
                (
                    ws.len(),
                    scope.spawn(move || {
                        ws.iter()
                            .map(|w| renderer.workload(state, w))
                            .collect::<Vec<_>>()
                    }),
                )
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|(len, h)| {
                // A panicking render thread is a bug; report it per workload
                // rather than taking the process down.
                h.join().unwrap_or_else(|_| {
                    (0..len)
                        .map(|_| {
                            Err(RenderErrors {
                                diagnostics: vec![Diagnostic::error(
                                    "internal error while rendering; please report it",
                                )],
                                sources: Vec::new(),
                            })
                        })
                        .collect()
                })
            })
            .collect()
    })
}

fn find_pending(v: &Value, path: &mut String, object: &str, out: &mut Vec<PendingValue>) {
    match v {
        Value::String(s) if s.starts_with(PENDING_PREFIX) => out.push(PendingValue {
            object: object.to_string(),
            field: path.clone(),
            placeholder: s.clone(),
        }),
        Value::Object(map) => {
            for (k, v) in map {
                let len = path.len();
                path.push('/');
                path.push_str(&k.replace('~', "~0").replace('/', "~1"));
                find_pending(v, path, object, out);
                path.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("/{i}"));
                find_pending(v, path, object, out);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// Serialises objects as one multi-document YAML stream.
pub fn to_yaml_stream(objects: &[DesiredObject]) -> String {
    let mut out = String::new();
    for o in objects {
        out.push_str("---\n");
        out.push_str(&to_yaml(&o.body));
    }
    out
}

/// One object as YAML. Serialising a `serde_json::Value` cannot fail.
pub fn to_yaml(v: &Value) -> String {
    let mut s = serde_saphyr::to_string(v).unwrap_or_default();
    while s.ends_with("\n\n") {
        s.pop();
    }
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}
