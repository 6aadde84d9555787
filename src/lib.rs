//! stateplan: compile a short TOML blueprint into everything a stateful
//! workload needs on AKS, plan it against the live cluster and apply it safely.
//!
//! The modules follow the pipeline:
//! `blueprint` (parse, validate) → `compile` (decisions, typed desired state)
//! → `render` (manifests, Azure bodies) → `live` → `plan` → `apply`.

pub mod apply;
pub mod azure;
pub mod blueprint;
pub mod catalog;
pub mod cli;
pub mod compile;
pub mod diagnostics;
pub mod live;
pub mod panics;
pub mod parallel;
pub mod pipeline;
pub mod plan;
pub mod render;
