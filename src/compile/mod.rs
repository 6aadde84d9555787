//! Stage 2: blueprint + catalog → [`DesiredState`]. Every choice stateplan
//! makes for the user (disk SKU, VM size, PDB, spread, backups) is made here
//! and recorded as a [`Decision`] so `explain` can say which rule picked it.

mod model;
mod pool;
mod storage;

pub(crate) use storage::fnv1a;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

pub use model::*;

use crate::blueprint::{
    Blueprint, Quantity, Redundancy, Spanned, Target, WorkloadSpec, did_you_mean,
};
use crate::catalog::{Catalog, EngineProfile};
use crate::diagnostics::Diagnostic;

/// The label every object stateplan owns carries.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "stateplan");
pub const LABEL_BLUEPRINT: &str = "stateplan.io/blueprint";
pub const LABEL_WORKLOAD: &str = "stateplan.io/workload";
pub const LABEL_POOL: &str = "stateplan.io/pool";

/// Default backup policy when the blueprint sets none.
const DEFAULT_BACKUP_SCHEDULE: &str = "0 2 * * *";
const DEFAULT_RETENTION_HOURS: u64 = 14 * 24;

/// "Key Vault Secrets User": read secret contents, nothing else.
pub const KEY_VAULT_SECRETS_USER: &str = "4633458b-17de-408a-b874-0445c86b69e6";

/// Compiles a parsed blueprint. Diagnostics point into the blueprint file.
pub fn compile(bp: &Blueprint, catalog: &Catalog) -> (Option<DesiredState>, Vec<Diagnostic>) {
    // Without a valid `[target]` the workloads are compiled against a
    // stand-in, only for their diagnostics: no state is returned.
    let target = target_info(bp.target.as_ref().unwrap_or(&STAND_IN));
    // Each workload compiles on its own; what they share (node pools,
    // identity names) is checked afterwards, in blueprint order, so
    // diagnostics come out in the same order on every run.
    let compiled = crate::parallel::map(bp.workloads.len(), 64, |i| {
        let mut c = Compiler {
            catalog,
            diags: Vec::new(),
        };
        let out = c.workload(bp, &target, &bp.workloads[i]);
        (out, c.diags)
    });
    let mut c = Compiler {
        catalog,
        diags: Vec::new(),
    };
    for engine in &bp.engines_of_invalid {
        c.engine(engine);
    }
    let mut workloads = Vec::new();
    let mut pools = pool::Pools::default();
    for (spec, result) in bp.workloads.iter().zip(compiled) {
        let Some((out, diags)) = result else {
            c.diags.push(
                Diagnostic::error(format!(
                    "internal error while compiling workload {}; please report it",
                    spec.name.value
                ))
                .at(spec.name.span.clone()),
            );
            continue;
        };
        c.diags.extend(diags);
        if let Some((w, pool)) = out {
            pools.merge(pool, spec, &mut c.diags);
            workloads.push(w);
        }
    }
    c.check_cross_workload(&workloads, bp);
    let pools = pools.into_vec();
    if pools.len() >= MAX_AGENT_POOLS {
        // A warning, not an error: the tree can still be rendered (and split
        // over clusters); plan refuses what the cluster cannot hold.
        c.diags.push(
            Diagnostic::warning(format!(
                "this blueprint needs {} node pools; an AKS cluster holds at most {MAX_AGENT_POOLS}, its system pool included",
                pools.len()
            ))
            .hint("let workloads share pools by giving them the same node_pool.name, or split the blueprint over clusters"),
        );
    }
    let mut diags = c.diags;
    Diagnostic::name_file(&mut diags, &bp.file.path);
    if bp.target.is_none() || diags.iter().any(Diagnostic::is_error) {
        return (None, diags);
    }
    let state = DesiredState {
        blueprint: BlueprintInfo {
            name: bp.name.value.clone(),
            file: bp.file.path.clone(),
        },
        target,
        workloads,
        node_pools: pools,
    };
    (Some(state), diags)
}

/// Compiles workloads when `[target]` is invalid. No compile rule reads
/// the target, so the stand-in changes no diagnostic.
static STAND_IN: std::sync::LazyLock<Target> = std::sync::LazyLock::new(|| {
    let s = |v: &str| Spanned::new(v.to_string(), 0..0);
    Target {
        subscription: s("00000000-0000-0000-0000-000000000000"),
        resource_group: s("invalid-target"),
        cluster: s("invalid-target"),
        location: s("invalid-target"),
        key_vault: s("invalid-target"),
    }
});

fn target_info(t: &Target) -> TargetInfo {
    let rg_id = format!(
        "/subscriptions/{}/resourceGroups/{}",
        t.subscription.value, t.resource_group.value
    );
    TargetInfo {
        subscription: t.subscription.value.clone(),
        resource_group: t.resource_group.value.clone(),
        cluster: t.cluster.value.clone(),
        location: t.location.value.clone(),
        key_vault: t.key_vault.value.clone(),
        vault_url: format!("https://{}.vault.azure.net/", t.key_vault.value),
        vault_id: format!(
            "{rg_id}/providers/Microsoft.KeyVault/vaults/{}",
            t.key_vault.value
        ),
        cluster_id: format!(
            "{rg_id}/providers/Microsoft.ContainerService/managedClusters/{}",
            t.cluster.value
        ),
    }
}

pub(crate) struct Compiler<'a> {
    catalog: &'a Catalog,
    diags: Vec<Diagnostic>,
}

impl Compiler<'_> {
    fn error(
        &mut self,
        span: std::ops::Range<usize>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.diags
            .push(Diagnostic::error(message).at(span).hint(hint));
    }

    fn warn(
        &mut self,
        span: std::ops::Range<usize>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.diags
            .push(Diagnostic::warning(message).at(span).hint(hint));
    }

    fn engine(&mut self, name: &Spanned<String>) -> Option<Arc<EngineProfile>> {
        if let Some(p) = self.catalog.engine(&name.value) {
            return Some(p.clone());
        }
        let known: Vec<&str> = self.catalog.engine_names().collect();
        let suggestion =
            did_you_mean(&name.value, self.catalog.engine_names_and_aliases()).map(|s| {
                self.catalog
                    .engine(s)
                    .map_or(s.to_string(), |p| p.name.clone())
            });
        let hint = match suggestion {
            Some(s) => format!("did you mean `{s}`? engines: {}", known.join(", ")),
            None => format!(
                "engines: {}; a platform team can add one under engines/<name>/ in --templates",
                known.join(", ")
            ),
        };
        self.error(
            name.span.clone(),
            format!("unknown engine `{}`", name.value),
            hint,
        );
        None
    }

    fn workload(
        &mut self,
        bp: &Blueprint,
        target: &TargetInfo,
        spec: &WorkloadSpec,
    ) -> Option<(Workload, NodePoolPlan)> {
        let profile = self.engine(&spec.engine)?;
        let mut decisions = Vec::new();
        let name = spec.name.value.clone();
        let errors_before = self.diags.iter().filter(|d| d.is_error()).count();

        // Version.
        let version = match &spec.version {
            Some(v) if profile.versions.contains_key(&v.value) => v.value.clone(),
            Some(v) => {
                let known: Vec<&str> = profile.versions.keys().map(String::as_str).collect();
                self.error(
                    v.span.clone(),
                    format!("{} version `{}` is not available", profile.name, v.value),
                    format!(
                        "versions: {} (default {})",
                        known.join(", "),
                        profile.default_version
                    ),
                );
                return None;
            }
            None => profile.default_version.clone(),
        };
        let image = profile.versions.get(&version).cloned().unwrap_or_default();
        decisions.push(Decision {
            topic: "image".into(),
            choice: image.clone(),
            rule: if spec.version.is_some() { "blueprint version".into() } else { "engine default version".into() },
            reason: format!(
                "{} {version} pinned to an exact image tag so every render and every node runs the same build.",
                profile.name
            ).into(),
        });

        // Replicas and quorum.
        let replicas = spec.replicas.value;
        self.check_quorum(&profile, &spec.replicas);
        decisions.push(Decision {
            topic: "replication".into(),
            choice: format!("{replicas} replica{}", if replicas == 1 { "" } else { "s" }),
            rule: "engine quorum rules".into(),
            reason: profile.quorum.model.clone().into(),
        });

        // Resources.
        let resources = self.resources(spec, &profile, &mut decisions)?;

        // Storage.
        let storage = storage::decide(self, spec, &profile)?;

        // Namespace.
        let namespace = spec
            .namespace
            .as_ref()
            .map_or_else(|| name.clone(), |n| n.value.clone());
        if let Some(why) = reserved_namespace(&namespace) {
            let (span, hint) = match &spec.namespace {
                Some(ns) => (
                    ns.span.clone(),
                    format!(
                        "give the workload a namespace of its own, e.g. namespace = \"{name}-db\""
                    ),
                ),
                None => (
                    spec.name.span.clone(),
                    format!(
                        "the namespace defaults to the workload name; rename the workload, or use the table form [workloads.{name}] with namespace = \"{name}-db\""
                    ),
                ),
            };
            self.error(span, format!("namespace `{namespace}` {why}; stateplan owns its workloads' namespaces and labels them with a Pod Security level"), hint);
        }

        // Node pool.
        let pool = pool::decide(self, spec, &resources, &storage.plan, &mut decisions)?;
        let storage = storage::finish(self, spec, storage, &pool.vm_size, &mut decisions);

        // Spread.
        let zone_spread = spec.redundancy.value == Redundancy::ZoneRedundant && replicas > 1;
        let nodes = pool.count.or(pool.max_count).unwrap_or(replicas);
        let spread = Spread {
            zones: zone_spread,
            hosts: replicas > 1,
            host_when_unsatisfiable: if nodes >= replicas {
                "DoNotSchedule".into()
            } else {
                "ScheduleAnyway".into()
            },
            pool_label: LABEL_POOL.into(),
        };
        decisions.push(spread_decision(spec, &storage, &profile.quorum));

        // PDB.
        let pdb = if replicas >= 2 {
            decisions.push(Decision {
                topic: "pdb".into(),
                choice: "maxUnavailable: 1".into(),
                rule: "replicas >= 2: one pod may be evicted at a time".into(),
                reason: format!(
                    "Node drains and upgrades evict at most one {} pod at a time, so quorum and redundancy are kept. {}",
                    profile.name, profile.pdb.reason
                ).into(),
            });
            Some(PdbPlan { max_unavailable: 1 })
        } else {
            decisions.push(Decision {
                topic: "pdb".into(),
                choice: "none".into(),
                rule: "replicas = 1: no drain-blocking PDB".into(),
                reason: "With one replica any PodDisruptionBudget would either block node drains and AKS upgrades forever (maxUnavailable 0) or protect nothing; a single replica accepts downtime during maintenance. Use 3 replicas for availability.".into(),
            });
            None
        };

        // Backup.
        let backup = self.backup(spec, &profile, &mut decisions);

        // Secrets: the engine's own, plus any the blueprint adds.
        let mut secrets: Vec<SecretPlan> = profile
            .secrets
            .iter()
            .map(|s| SecretPlan {
                key: s.name.clone(),
                vault_name: format!("{name}-{}", s.name),
                length: s.length,
                alphabet: s.alphabet,
                engine: true,
            })
            .collect();
        if let Some(extra) = &spec.secrets {
            for s in &extra.value {
                if secrets.iter().any(|p| p.key == s.value) {
                    continue;
                }
                secrets.push(SecretPlan {
                    key: s.value.clone(),
                    vault_name: format!("{name}-{}", s.value),
                    length: 32,
                    alphabet: crate::catalog::Alphabet::Alphanumeric,
                    engine: false,
                });
            }
        }
        for s in &secrets {
            if s.vault_name.len() > 127 {
                self.error(
                    spec.name.span.clone(),
                    format!(
                        "Key Vault secret name `{}` is longer than 127 characters",
                        s.vault_name
                    ),
                    "shorten the workload or secret name",
                );
            }
        }
        decisions.push(Decision {
            topic: "secrets".into(),
            choice: secrets.iter().map(|s| s.vault_name.as_str()).collect::<Vec<_>>().join(", "),
            rule: "engine secrets + blueprint secrets".into(),
            reason: format!(
                "Generated with a CSPRNG into Key Vault {} when missing and never overwritten; External Secrets syncs them into Secret {name}-credentials using workload identity, so no secret value is in the blueprint, the rendered manifests or Git. The identity may read these secrets only (a role assignment on each), not the rest of the vault.",
                target.key_vault
            ).into(),
        });

        let security_choice = if profile.security.restricted {
            "restricted"
        } else {
            "baseline"
        };
        decisions.push(Decision {
            topic: "pod-security".into(),
            choice: security_choice.into(),
            rule: "Pod Security Standards".into(),
            reason: profile.security.reason.clone().into(),
        });
        decisions.push(changes_decision(&profile.changes));

        // Labels.
        let mut selector = BTreeMap::new();
        selector.insert("app.kubernetes.io/name".to_string(), profile.name.clone());
        selector.insert("app.kubernetes.io/instance".to_string(), name.clone());
        let mut labels = selector.clone();
        labels.insert(MANAGED_BY.0.into(), MANAGED_BY.1.into());
        labels.insert(LABEL_BLUEPRINT.into(), bp.name.value.clone());
        labels.insert(LABEL_WORKLOAD.into(), name.clone());
        labels.insert("app.kubernetes.io/version".into(), version.clone());
        for (k, v) in &spec.labels {
            labels.insert(k.clone(), v.value.clone());
        }
        let annotations = spec
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), v.value.clone()))
            .collect();

        let names = Names {
            statefulset: name.clone(),
            headless_service: format!("{name}-headless"),
            client_service: name.clone(),
            config_map: format!("{name}-config"),
            secret: format!("{name}-credentials"),
            secret_store: format!("{name}-keyvault"),
            external_secret: format!("{name}-credentials"),
            service_account: name.clone(),
            eso_service_account: format!("{name}-secrets"),
            pdb: name.clone(),
            schedule: schedule_name(&namespace, &name),
            volume_claim: "data".into(),
        };
        let identity_name = format!("id-{}-{name}", bp.name.value);
        let identity = IdentityPlan {
            id: format!(
                "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{identity_name}",
                target.subscription, target.resource_group
            ),
            client_id: format!("{PENDING_PREFIX}azure/identity/{identity_name}/clientId"),
            tenant_id: format!("{PENDING_PREFIX}azure/identity/{identity_name}/tenantId"),
            federated_credential: federated_credential_name(
                &target.cluster,
                &namespace,
                &names.eso_service_account,
            ),
            subject: format!(
                "system:serviceaccount:{namespace}:{}",
                names.eso_service_account
            ),
            name: identity_name,
        };

        if self.diags.iter().filter(|d| d.is_error()).count() > errors_before {
            return None;
        }
        let w = Workload {
            name,
            namespace,
            engine: profile,
            version,
            image,
            replicas,
            storage: spec.storage.value.as_str().to_string(),
            storage_gib: spec.storage.value.gib_ceil(),
            tier: spec.tier.value,
            redundancy: spec.redundancy.value,
            resources,
            pool: pool.name.clone(),
            storage_class: storage,
            spread,
            pdb,
            backup,
            secrets,
            identity,
            names,
            labels,
            selector,
            annotations,
            decisions,
        };
        Some((w, pool))
    }

    fn check_quorum(&mut self, profile: &EngineProfile, replicas: &Spanned<u32>) {
        let n = replicas.value;
        if let Some(f) = profile.quorum.forbidden.iter().find(|f| f.replicas == n) {
            self.error(
                replicas.span.clone(),
                format!(
                    "{} with {n} replicas is refused: {}",
                    profile.name, f.reason
                ),
                "use 3 replicas for high availability (or 1 for development)",
            );
        } else if let Some(max) = profile.quorum.max.filter(|&m| n > m) {
            self.error(
                replicas.span.clone(),
                format!(
                    "{} supports at most {max} replicas in stateplan's layout, found {n}",
                    profile.name
                ),
                format!("use at most {max} replicas"),
            );
        } else if profile.quorum.warn_even && n >= 4 && n.is_multiple_of(2) {
            self.warn(
                replicas.span.clone(),
                format!(
                    "{n} {} replicas tolerate no more failures than {}",
                    profile.name,
                    n - 1
                ),
                format!(
                    "an odd count keeps a majority with fewer nodes; consider {} or {}",
                    n - 1,
                    n + 1
                ),
            );
        }
    }

    fn resources(
        &mut self,
        spec: &WorkloadSpec,
        profile: &EngineProfile,
        decisions: &mut Vec<Decision>,
    ) -> Option<Resources> {
        let r = spec.resources.as_ref();
        let default_q = |s: &str| Quantity::parse(s).ok();
        let cpu = r
            .and_then(|r| r.cpu.as_ref())
            .map(|q| q.value.clone())
            .or_else(|| default_q(&profile.resources.cpu));
        let memory = r
            .and_then(|r| r.memory.as_ref())
            .map(|q| q.value.clone())
            .or_else(|| default_q(&profile.resources.memory));
        let (Some(cpu), Some(memory)) = (cpu, memory) else {
            self.error(
                spec.span.clone(),
                format!(
                    "engine profile {} has invalid default resources",
                    profile.name
                ),
                "fix [resources] in the engine's profile.toml",
            );
            return None;
        };
        let memory_mib = (memory.units_ceil().max(0) as u64).div_ceil(1 << 20);
        if memory_mib < 256 {
            let span = r
                .and_then(|r| r.memory.as_ref())
                .map_or(spec.span.clone(), |m| m.span.clone());
            self.error(
                span,
                format!("memory {memory} is below the 256Mi any database engine needs"),
                "request at least 256Mi; most engines want 1Gi or more (omit resources for the engine's default)",
            );
        }
        let memory_limit = r.and_then(|r| r.memory_limit.as_ref());
        if let Some(l) = memory_limit
            && l.value.milli() < memory.milli()
        {
            self.error(
                l.span.clone(),
                format!(
                    "memory_limit {} is below the memory request {memory}",
                    l.value
                ),
                "a limit must be at least the request",
            );
        }
        let cpu_limit = r.and_then(|r| r.cpu_limit.as_ref());
        if let Some(l) = cpu_limit
            && l.value.milli() < cpu.milli()
        {
            self.error(
                l.span.clone(),
                format!("cpu_limit {} is below the cpu request {cpu}", l.value),
                "a limit must be at least the request",
            );
        }
        decisions.push(Decision {
            topic: "resources".into(),
            choice: format!(
                "requests cpu {cpu}, memory {memory}; limits memory {}{}",
                memory_limit.map_or(memory.to_string(), |l| l.value.to_string()),
                cpu_limit.map_or(String::new(), |l| format!(", cpu {}", l.value))
            ),
            rule: if r.is_some() { "blueprint resources".into() } else { "engine default resources".into() },
            reason: "Memory limit equals the request so the pod is never OOM-killed for using memory it was promised; no CPU limit by default because CFS throttling causes latency spikes in databases while requests already guarantee the share.".into(),
        });
        Some(Resources {
            cpu: cpu.to_string(),
            memory: memory.to_string(),
            cpu_limit: cpu_limit.map(|l| l.value.to_string()),
            memory_limit: memory_limit.map_or(memory.to_string(), |l| l.value.to_string()),
            cpu_millis: cpu.milli().max(0) as u64,
            memory_mib,
        })
    }

    fn backup(
        &mut self,
        spec: &WorkloadSpec,
        profile: &EngineProfile,
        decisions: &mut Vec<Decision>,
    ) -> Option<BackupPlan> {
        let b = &spec.backup;
        if b.enabled.as_ref().is_some_and(|e| !e.value) {
            if b.schedule.is_some() || b.retain.is_some() {
                let span = b
                    .enabled
                    .as_ref()
                    .map_or(spec.span.clone(), |e| e.span.clone());
                self.warn(
                    span,
                    "backup is disabled, so its schedule and retain are ignored",
                    "remove them or set enabled = true",
                );
            }
            decisions.push(Decision {
                topic: "backup".into(),
                choice: "disabled".into(),
                rule: "blueprint backup.enabled = false".into(),
                reason: "No Velero Schedule is rendered; the volumes are still never deleted by stateplan (reclaimPolicy Retain).".into(),
            });
            return None;
        }
        let schedule = b
            .schedule
            .as_ref()
            .map_or(DEFAULT_BACKUP_SCHEDULE.to_string(), |s| s.value.clone());
        let hours = b
            .retain
            .as_ref()
            .map_or(DEFAULT_RETENTION_HOURS, |r| r.value.hours);
        let ttl = crate::blueprint::rules::Retention { hours }.go_duration();
        decisions.push(Decision {
            topic: "backup".into(),
            choice: format!(
                "Velero schedule \"{schedule}\" (UTC), kept {}",
                human_hours(hours)
            ),
            rule: if b.schedule.is_some() || b.retain.is_some() {
                "blueprint backup".into()
            } else {
                "default: daily at 02:00 UTC, kept 14 days".into()
            },
            reason: format!(
                "Velero snapshots the workload's volumes (namespace + instance label selector). {}",
                profile.backup.reason
            )
            .into(),
        });
        Some(BackupPlan {
            schedule,
            ttl,
            storage_location: b.storage_location.as_ref().map(|s| s.value.clone()),
            pre: profile.backup.pre.clone(),
            post: profile.backup.post.clone(),
        })
    }

    fn check_cross_workload(&mut self, workloads: &[Workload], bp: &Blueprint) {
        // Workload names are unique (TOML keys) and pools are checked in
        // `pool::merge`; identity and Key Vault secret names combine names
        // with a `-`, so two different pairs can spell the same one.
        let span_of = |name: &str| {
            bp.workloads
                .iter()
                .find(|s| s.name.value == name)
                .map_or(0..0, |s| s.name.span.clone())
        };
        // (what, name) → the first workload to claim it.
        let mut taken: BTreeMap<(&str, &str), &str> = BTreeMap::new();
        for w in workloads {
            // `<namespace>-<workload>` names: ("a-a", "db") and ("a", "a-db")
            // meet. Schedules share the velero namespace; credential files
            // share the tree's azure/ folder. A shared secret would hand one
            // workload's password to the other.
            let joined = "these names join namespace and workload with '-', so namespace a-a with workload db meets namespace a with workload a-db; rename one workload or namespace";
            let names = [
                ("identity", w.identity.name.as_str(), "rename one workload"),
                ("the Velero Schedule name", w.names.schedule.as_str(), joined),
                (
                    "the federated credential name",
                    w.identity.federated_credential.as_str(),
                    joined,
                ),
            ]
            .into_iter()
            .chain(w.secrets.iter().map(|s| {
                (
                    "Key Vault secret",
                    s.vault_name.as_str(),
                    "a secret is stored as <workload>-<secret>, so `app` with secret `db-password` and `app-db` with `password` meet; rename a workload or the extra secret",
                )
            }));
            for (what, name, hint) in names {
                match taken.insert((what, name), &w.name) {
                    Some(first) if first != w.name => self.error(
                        span_of(&w.name),
                        format!(
                            "workloads `{first}` and `{}` would share {what} `{name}`",
                            w.name
                        ),
                        hint,
                    ),
                    _ => {}
                }
            }
        }
    }
}

/// What `plan` will refuse once the workload runs (see `plan::transition`).
fn changes_decision(c: &crate::catalog::ChangeRules) -> Decision {
    let mut refused = vec!["a version downgrade"];
    if c.major_version.is_some() {
        refused.push("a major version upgrade");
    }
    if c.replicas.is_some() {
        refused.push("any change of the replica count");
    }
    let last = refused.pop().unwrap_or_default();
    let list = if refused.is_empty() {
        last.to_string()
    } else {
        format!("{} and {last}", refused.join(", "))
    };
    let mut reason = format!(
        "Once the workload runs, plan refuses {list}, which the engine cannot take by rolling out new pods."
    );
    if c.scale_down.is_some() {
        reason.push_str(" A scale-down is refused until the engine's own steps are done (plan names them) and --allow-replica-change is passed.");
    }
    reason.push_str(" Any other change to the pod template or the engine's config files restarts the pods one at a time, highest ordinal first.");
    Decision {
        topic: "changes".into(),
        choice: format!("refuses {list}"),
        rule: "engine change rules".into(),
        reason: reason.into(),
    }
}

fn spread_decision(
    spec: &WorkloadSpec,
    storage: &StorageClassPlan,
    quorum: &crate::catalog::QuorumRules,
) -> Decision {
    let n = spec.replicas.value;
    // An engine that keeps each piece of data on fewer replicas than it
    // runs places those copies without knowing zones.
    let partial = quorum.copies.filter(|&k| n > k).map(|k| {
        format!(
            " Each piece of data lives on {k} of the {n} replicas, placed without regard to zones, so two of its copies can share a zone and a zone loss can take it below its quorum. {}",
            quorum.copies_note.as_deref().unwrap_or_default()
        )
    });
    let (choice, rule, reason): (String, Cow<'static, str>, Cow<'static, str>) = match spec.redundancy.value {
        Redundancy::ZoneRedundant if n > 1 => (
            if n <= 3 {
                "one replica per zone and per node".to_string()
            } else {
                "spread evenly over 3 zones, one replica per node".to_string()
            },
            "zone-redundant with >= 2 replicas".into(),
            match (&partial, storage.zone_redundant_disk) {
                (Some(partial), _) => format!(
                    "Replicas are spread over zones 1-3 (topologySpreadConstraints on topology.kubernetes.io/zone, maxSkew 1, DoNotSchedule) and over nodes, each with its own {} volume.{partial}",
                    storage.sku
                ),
                (None, true) => format!(
                    "Replicas are spread over zones 1-3 (topologySpreadConstraints on topology.kubernetes.io/zone, maxSkew 1, DoNotSchedule) and over nodes; each replica has its own {} volume, replicated across zones, and the engine replicates the data too, so losing a zone stops at most one replica.",
                    storage.sku
                ),
                (None, false) => format!(
                    "Replicas are spread over zones 1-3 (topologySpreadConstraints on topology.kubernetes.io/zone, maxSkew 1, DoNotSchedule) and over nodes; each replica keeps a zonal {} disk in its zone and the engine replicates the data, so losing a zone loses at most one copy.",
                    storage.sku
                ),
            }
            .into(),
        ),
        Redundancy::ZoneRedundant => (
            "single replica on a zone-redundant disk".to_string(),
            "zone-redundant with 1 replica".into(),
            format!(
                "With one replica there is nothing to spread; instead the volume is {} (synchronously replicated across three zones) and the node pool can add a node in another zone. Kubernetes does not replace a StatefulSet pod on an unreachable node by itself: after a zone outage, mark the lost node out of service (kubectl taint nodes NODE node.kubernetes.io/out-of-service=nodeshutdown:NoExecute) or force-delete the pod, and it restarts in a surviving zone with the same data.",
                storage.sku
            )
            .into(),
        ),
        Redundancy::Zonal => (
            "all replicas in one zone, one per node".to_string(),
            "zonal".into(),
            "The node pool spans a single zone: lowest latency between replicas, but a zone outage takes the whole workload down.".into(),
        ),
        Redundancy::None => (
            "no zone rules; one replica per node".to_string(),
            "none".into(),
            "No zone placement rules are added; pods land wherever the pool has nodes.".into(),
        ),
    };
    Decision {
        topic: "placement".into(),
        choice,
        rule,
        reason,
    }
}

/// Node pools an AKS cluster can have, system pools included.
pub const MAX_AGENT_POOLS: usize = 100;

/// Why a namespace cannot hold a workload, if it cannot. stateplan renders
/// and labels each workload's Namespace (Pod Security level, ownership), so
/// a namespace the cluster or its add-ons run in would be relabelled, and
/// the restricted level would stop their privileged pods from starting.
fn reserved_namespace(ns: &str) -> Option<&'static str> {
    const ADD_ONS: [&str; 7] = [
        "velero",
        "external-secrets",
        "gatekeeper-system",
        "app-routing-system",
        "aks-command",
        "calico-system",
        "tigera-operator",
    ];
    if ns == "default" {
        Some("is the cluster's default namespace, shared by everything deployed without one")
    } else if ns.starts_with("kube-") {
        Some("is reserved for Kubernetes itself (the `kube-` prefix)")
    } else if ADD_ONS.contains(&ns) {
        Some("belongs to a cluster add-on (Velero, External Secrets or an AKS add-on)")
    } else {
        None
    }
}

/// Velero Schedules live in the `velero` namespace, so the name carries the
/// workload's namespace; Velero copies it into a label value (max 63), so a
/// long one is shortened with a hash that keeps it unique.
fn schedule_name(namespace: &str, name: &str) -> String {
    let full = format!("{namespace}-{name}");
    if full.len() <= 63 {
        return full;
    }
    format!("{name}-{:08x}", fnv1a(&full) as u32)
}

/// ARM refuses federated identity credential names over 120 characters;
/// a long cluster and namespace can exceed that, so such a name is cut
/// and ends in a hash of the whole that keeps it unique and stable.
fn federated_credential_name(cluster: &str, namespace: &str, service_account: &str) -> String {
    const MAX: usize = 120;
    let full = format!("{cluster}-{namespace}-{service_account}");
    if full.len() <= MAX {
        return full;
    }
    // A cluster name with errors (already reported) may not be ASCII.
    let mut cut = MAX - 9;
    while !full.is_char_boundary(cut) {
        cut -= 1;
    }
    let head = full[..cut].trim_end_matches(['-', '_']);
    format!("{head}-{:08x}", fnv1a(&full) as u32)
}

fn human_hours(h: u64) -> String {
    if h.is_multiple_of(24 * 7) {
        format!("{} week(s)", h / (24 * 7))
    } else if h.is_multiple_of(24) {
        format!("{} days", h / 24)
    } else {
        format!("{h} hours")
    }
}

#[cfg(test)]
mod tests {
    use super::{federated_credential_name, schedule_name};

    #[test]
    fn schedule_names_fit_a_label_value() {
        assert_eq!(schedule_name("orders", "orders-db"), "orders-orders-db");
        let long = schedule_name(&"n".repeat(63), &"w".repeat(40));
        assert!(
            long.len() <= 63 && long.starts_with(&"w".repeat(40)),
            "{long}"
        );
        assert_ne!(long, schedule_name(&"m".repeat(63), &"w".repeat(40)));
    }

    #[test]
    fn federated_credential_names_fit_arm() {
        assert_eq!(
            federated_credential_name("aks-prod", "orders", "orders-db-secrets"),
            "aks-prod-orders-orders-db-secrets"
        );
        let sa = format!("{}-secrets", "w".repeat(40));
        let long = federated_credential_name(&"c".repeat(63), &"n".repeat(63), &sa);
        assert_eq!(long.len(), 120, "{long}");
        assert!(long.starts_with(&"c".repeat(63)), "{long}");
        assert_ne!(
            long,
            federated_credential_name(&"c".repeat(63), &"m".repeat(63), &sa)
        );
        // Cut where a `-` would end the head: no `--` before the hash.
        let dashed = federated_credential_name(&"c".repeat(110), "ns", &sa);
        assert!(!dashed.contains("--") && dashed.len() <= 120, "{dashed}");
        // An invalid (non-ASCII) cluster name never splits a character.
        let wide = federated_credential_name(&"é".repeat(70), "ns", &sa);
        assert!(wide.len() <= 120, "{wide}");
    }
}
