//! Stage 3: compiled workloads → Kubernetes manifests and Azure bodies.

mod object;

pub use object::{DesiredObject, Wave};
