//! One apply per blueprint at a time: a `coordination.k8s.io/v1` Lease
//! `stateplan-<blueprint>`, taken with optimistic concurrency (create, or
//! replace at the read resourceVersion), renewed while apply runs, released
//! at the end. A lease whose holder stopped renewing for longer than its
//! duration is stale and taken over.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};

use crate::compile::MANAGED_BY;
use crate::live::{self, LiveError};

/// Why the lock could not be taken.
#[derive(Debug)]
pub enum LockError {
    /// Another apply holds it.
    Held {
        lease: String,
        holder: String,
        since: Option<String>,
        renewed_secs_ago: Option<i64>,
    },
    Live(LiveError),
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::Held {
                lease,
                holder,
                since,
                renewed_secs_ago,
            } => {
                write!(
                    f,
                    "another apply of this blueprint is running: held by {holder}"
                )?;
                if let Some(s) = since {
                    write!(f, " since {s}")?;
                }
                if let Some(r) = renewed_secs_ago {
                    write!(f, " (renewed {r}s ago)")?;
                }
                write!(
                    f,
                    " — Lease {lease}\nhelp: wait for it to finish, or pass --wait-for-lock; a holder that stops renewing is taken over once the lease expires"
                )
            }
            LockError::Live(e) => write!(f, "{e}"),
        }
    }
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// `user@host pid N #k`: unique per apply, readable in the error.
pub fn holder_identity() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "someone".into());
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("{user}@{host} pid {} #{seq}", std::process::id())
}

/// How to take the lock.
#[derive(Debug, Clone)]
pub struct LockOptions {
    pub namespace: String,
    pub duration: Duration,
    /// Wait for a held lease until this long has passed.
    pub wait: Option<Duration>,
    pub poll: Duration,
}

/// A held lease; renewed in the background until released or dropped.
pub struct Held {
    api: Api<Lease>,
    name: String,
    current: Arc<Mutex<Lease>>,
    renewer: tokio::task::JoinHandle<()>,
    lost: Arc<AtomicBool>,
}

fn now() -> MicroTime {
    MicroTime(Timestamp::now())
}

fn fresh_spec(holder: &str, duration: Duration, transitions: i32) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(holder.to_string()),
        lease_duration_seconds: Some(duration.as_secs().max(1) as i32),
        acquire_time: Some(now()),
        renew_time: Some(now()),
        lease_transitions: Some(transitions),
        ..Default::default()
    }
}

/// Takes the lease for `blueprint`.
pub async fn acquire(
    client: &Client,
    blueprint: &str,
    holder: &str,
    opts: &LockOptions,
) -> Result<Held, LockError> {
    let api: Api<Lease> = Api::namespaced(client.clone(), &opts.namespace);
    let name = format!("stateplan-{blueprint}");
    let started = std::time::Instant::now();
    let api_err = |what: &str, source| {
        LockError::Live(LiveError::Api {
            what: format!("{what} Lease {}/{name}", opts.namespace),
            source,
        })
    };
    loop {
        let existing = live::with_retry(|| api.get_opt(&name))
            .await
            .map_err(|e| api_err("reading", e))?;
        let attempt = match existing {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        namespace: Some(opts.namespace.clone()),
                        labels: Some([(MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string())].into()),
                        ..Default::default()
                    },
                    spec: Some(fresh_spec(holder, opts.duration, 0)),
                };
                api.create(&PostParams::default(), &lease).await
            }
            Some(cur) => {
                let spec = cur.spec.clone().unwrap_or_default();
                let held_by = spec.holder_identity.clone().filter(|h| !h.is_empty());
                let last = spec
                    .renew_time
                    .as_ref()
                    .or(spec.acquire_time.as_ref())
                    .map(|t| t.0);
                let secs = i64::from(spec.lease_duration_seconds.unwrap_or(0));
                let age = last.map(|t| Timestamp::now().as_second() - t.as_second());
                let expired = age.is_none_or(|a| a > secs);
                match held_by {
                    Some(h) if h != holder && !expired => {
                        if let Some(w) = opts.wait
                            && started.elapsed() < w
                        {
                            tokio::time::sleep(opts.poll).await;
                            continue;
                        }
                        return Err(LockError::Held {
                            lease: format!("{}/{name}", opts.namespace),
                            holder: h,
                            since: spec.acquire_time.map(|t| t.0.to_string()),
                            renewed_secs_ago: age,
                        });
                    }
                    prev => {
                        let transitions = spec.lease_transitions.unwrap_or(0)
                            + i32::from(prev.is_some_and(|p| p != holder));
                        let mut next = cur.clone();
                        next.spec = Some(fresh_spec(holder, opts.duration, transitions));
                        api.replace(&name, &PostParams::default(), &next).await
                    }
                }
            }
        };
        match attempt {
            Ok(lease) => {
                let current = Arc::new(Mutex::new(lease));
                let lost = Arc::new(AtomicBool::new(false));
                let renewer = tokio::spawn(renew(
                    api.clone(),
                    name.clone(),
                    current.clone(),
                    lost.clone(),
                    opts.duration,
                ));
                return Ok(Held {
                    api,
                    name,
                    current,
                    renewer,
                    lost,
                });
            }
            // Someone else wrote in between: read again.
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => return Err(api_err("taking", e)),
        }
    }
}

async fn renew(
    api: Api<Lease>,
    name: String,
    current: Arc<Mutex<Lease>>,
    lost: Arc<AtomicBool>,
    duration: Duration,
) {
    let every = (duration / 3).max(Duration::from_millis(50));
    loop {
        tokio::time::sleep(every).await;
        let mut next = current.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(spec) = next.spec.as_mut() {
            spec.renew_time = Some(now());
        }
        match api.replace(&name, &PostParams::default(), &next).await {
            Ok(l) => *current.lock().unwrap_or_else(|e| e.into_inner()) = l,
            Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => {
                lost.store(true, Ordering::SeqCst);
                return;
            }
            Err(_) => {} // transient: try again next round
        }
    }
}

impl Held {
    /// Whether another apply took the lease over (this one must stop).
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Stops renewing and clears the holder so the next apply need not wait.
    pub async fn release(self) {
        self.renewer.abort();
        if self.lost() {
            return;
        }
        let mut next = self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(spec) = next.spec.as_mut() {
            spec.holder_identity = None;
            spec.renew_time = Some(now());
        }
        let _ = self
            .api
            .replace(&self.name, &PostParams::default(), &next)
            .await;
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}
