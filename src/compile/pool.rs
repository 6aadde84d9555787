//! Resources + storage + redundancy → the AKS agent pool a workload runs on.

use std::collections::BTreeMap;

use super::{Compiler, Decision, LABEL_POOL, NodePoolPlan, Resources, StorageClassPlan};
use crate::blueprint::rules::pool_name_from;
use crate::blueprint::{Redundancy, WorkloadSpec};
use crate::catalog::VmSize;
use crate::diagnostics::Diagnostic;

/// What the AKS daemonsets on a database node request (kube-proxy, the CNI,
/// the Azure Disk and Files CSI drivers, cloud-node-manager, and room for
/// monitoring and security agents such as Container Insights or Defender).
const DAEMONSET_CPU_MILLIS: u64 = 500;
const DAEMONSET_MEMORY_MIB: u64 = 1024;
/// The kubelet's hard eviction threshold on AKS (memory.available < 100Mi).
const EVICTION_MEMORY_MIB: u64 = 100;
/// Share of a VM's nominal memory the kernel reports as the node's capacity
/// (firmware and kernel keep the rest): about 97.5% on Dv5/Ev5 sizes.
const VISIBLE_MEMORY_PERMILLE: u64 = 975;
/// Memory per vCPU from which the memory-optimised family is cheaper.
const MEMORY_FAMILY_MIB_PER_CPU: u64 = 6 * 1024;
const DEFAULT_OS_DISK_GB: u32 = 128;
/// Database pools run few pods; a low maxPods keeps the kubelet's memory
/// reservation (which grows with maxPods) small.
const DEFAULT_MAX_PODS: u32 = 30;

pub(super) fn decide(
    c: &mut Compiler<'_>,
    spec: &WorkloadSpec,
    res: &Resources,
    storage: &StorageClassPlan,
    decisions: &mut Vec<Decision>,
) -> Option<NodePoolPlan> {
    let np = &spec.node_pool;
    let name = match &np.name {
        Some(n) => n.value.clone(),
        None => match pool_name_from(&spec.name.value) {
            Some(n) => n,
            None => {
                c.error(spec.name.span.clone(), format!("cannot derive an AKS node pool name from `{}`", spec.name.value), "set node_pool = { name = \"dbpool\" } (1-12 lower-case letters and digits, starting with a letter)");
                return None;
            }
        },
    };
    let tier_profile = c.catalog.tier(spec.tier.value).cloned();
    let zonal_only = tier_profile.as_ref().is_some_and(|t| t.zonal_only);
    let ultra = tier_profile.as_ref().is_some_and(|t| t.requires_ultra_ssd);
    let needs_premium =
        storage.provisioner == "disk.csi.azure.com" && storage.sku.starts_with("Premium") || ultra;

    // VM size. One replica runs per node, so the node must leave room for
    // the pod after what AKS reserves and runs on every node.
    let max_pods = np
        .max_pods
        .as_ref()
        .map_or(DEFAULT_MAX_PODS, |v| v.value as u32);
    let fits_requests = |s: &VmSize| {
        let (cpu, mib) = allocatable(s, max_pods);
        cpu >= res.cpu_millis && mib >= res.memory_mib
    };
    let vm_size = match &np.vm_size {
        Some(v) => {
            let known = c
                .catalog
                .vm_sizes
                .iter()
                .find(|s| s.name.eq_ignore_ascii_case(&v.value));
            match known {
                Some(known) => {
                    if !fits_requests(known) {
                        c.error(v.span.clone(), format!("{} leaves {} for pods, less than the requests of cpu {} and memory {}", known.name, describe_allocatable(allocatable(known, max_pods)), res.cpu, res.memory), "AKS reserves CPU and memory for the kubelet and its daemonsets on every node; choose a larger vm_size or lower resources");
                    }
                    if ultra && !known.ultra_ssd {
                        c.error(
                            v.span.clone(),
                            format!("{} does not support Ultra Disk", known.name),
                            "choose a size with Ultra Disk support, e.g. Standard_E8ds_v5",
                        );
                    }
                    if needs_premium && !known.premium_io {
                        c.error(v.span.clone(), format!("{} cannot attach {} disks (no premium storage support)", known.name, storage.sku), "choose a size with an 's' in its features, e.g. Standard_D8ds_v5 or Standard_E8ds_v5");
                    }
                }
                None => {
                    if needs_premium && !supports_premium(&v.value) {
                        c.error(v.span.clone(), format!("{} cannot attach {} disks (no premium storage support)", v.value, storage.sku), "choose a size with an 's' in its features, e.g. Standard_D8ds_v5 or Standard_E8ds_v5");
                    } else {
                        c.warn(v.span.clone(), format!("{} is not in azure/vm-sizes.toml, so whether it fits cpu {} and memory {} is not checked offline", v.value, res.cpu, res.memory), "apply checks that the size exists in the location; add it to the platform team's azure/vm-sizes.toml to have it checked here");
                    }
                }
            }
            let name = known.map_or_else(|| v.value.clone(), |k| k.name.clone());
            decisions.push(Decision {
                topic: "vm-size".into(),
                choice: match known {
                    Some(k) => format!("{name} ({} vCPU, {} GiB; {} for pods)", k.vcpus, k.memory_gib, describe_allocatable(allocatable(k, max_pods))),
                    None => name.clone(),
                },
                rule: "blueprint node_pool.vm_size".into(),
                reason: "Set explicitly in the blueprint; checked offline against azure/vm-sizes.toml (capacity, premium storage, Ultra Disk), and against Azure's resource SKUs for the location at apply time.".into(),
            });
            name
        }
        None => {
            let per_cpu = res.memory_mib * 1000 / res.cpu_millis.max(1);
            let family = if per_cpu >= MEMORY_FAMILY_MIB_PER_CPU {
                "memory"
            } else {
                "general"
            };
            let fits = |s: &&VmSize| fits_requests(s) && s.premium_io && (!ultra || s.ultra_ssd);
            // Disk performance the blueprint asks for must reach the disk:
            // a disk without host caching is limited by the VM. Preferred
            // in this order: family and disk, any family and disk, family,
            // any size that fits.
            let explicit_iops = storage.iops.filter(|_| spec.disk.iops.is_some());
            let explicit_mbps = storage.mbps.filter(|_| spec.disk.throughput_mbps.is_some());
            let drives_disk = |s: &&VmSize| {
                explicit_iops
                    .zip(s.max_uncached_iops)
                    .is_none_or(|(d, m)| m >= d)
                    && explicit_mbps
                        .zip(s.max_uncached_mbps)
                        .is_none_or(|(d, m)| m >= d)
            };
            let mut candidates: Vec<&VmSize> = Vec::new();
            for pass in 0..4 {
                candidates = c
                    .catalog
                    .vm_sizes
                    .iter()
                    .filter(fits)
                    .filter(|s| pass % 2 == 1 || s.family == family)
                    .filter(|s| pass >= 2 || drives_disk(s))
                    .collect();
                if !candidates.is_empty() {
                    break;
                }
            }
            candidates.sort_by_key(|s| (s.vcpus, s.memory_gib));
            let Some(size) = candidates.first() else {
                c.error(spec.span.clone(), format!("no VM size in azure/vm-sizes.toml leaves room for cpu {} and memory {} on a node", res.cpu, res.memory), "AKS reserves CPU and memory for the kubelet and its daemonsets on every node; lower resources, or set node_pool.vm_size to a larger size");
                return None;
            };
            let reserved_cpu = kube_reserved_cpu_millis(u64::from(size.vcpus));
            decisions.push(Decision {
                topic: "vm-size".into(),
                choice: format!("{} ({} vCPU, {} GiB; {} for pods)", size.name, size.vcpus, size.memory_gib, describe_allocatable(allocatable(size, max_pods))),
                rule: format!(
                    "smallest {} size with premium storage whose allocatable CPU and memory hold the requests",
                    if family == "memory" { "memory-optimised" } else { "general-purpose" }
                ).into(),
                reason: format!(
                    "Requests are cpu {} and memory {} ({} MiB per vCPU; {} GiB per vCPU or more picks the memory-optimised Edsv5 family, else general-purpose Ddsv5). One replica runs per node; from each node AKS reserves {reserved_cpu}m CPU for the kubelet (by core count), 20 MB per pod (max {max_pods}) + 50 MB of memory and a {EVICTION_MEMORY_MIB}Mi eviction threshold, the kernel keeps about {}% of memory, and {DAEMONSET_CPU_MILLIS}m / {DAEMONSET_MEMORY_MIB}Mi is left for the AKS daemonsets.{}",
                    res.cpu, res.memory, per_cpu, MEMORY_FAMILY_MIB_PER_CPU / 1024, (1000 - VISIBLE_MEMORY_PERMILLE) as f64 / 10.0,
                    if explicit_iops.is_some() || explicit_mbps.is_some() {
                        " The size must also drive the disk performance the blueprint asks for (its limits for disks without host caching, from azure/vm-sizes.toml)."
                    } else {
                        ""
                    }
                ).into(),
            });
            size.name.clone()
        }
    };

    // Zones.
    let replicas = spec.replicas.value;
    let zones: Vec<String> = match &np.zones {
        Some(z) => {
            let list: Vec<String> = z.value.iter().map(|s| s.value.clone()).collect();
            match spec.redundancy.value {
                Redundancy::Zonal if list.len() != 1 => c.error(z.span.clone(), format!("zonal keeps all replicas in one zone, but node_pool.zones lists {}", list.len()), "list exactly one zone, e.g. zones = [\"2\"], or use redundancy = \"zone-redundant\""),
                Redundancy::ZoneRedundant if replicas > 1 && list.len() < 2 => c.error(z.span.clone(), "zone-redundant needs a node pool in at least two zones", "use zones = [\"1\", \"2\", \"3\"]"),
                _ => {}
            }
            list
        }
        None => match spec.redundancy.value {
            Redundancy::ZoneRedundant => vec!["1".into(), "2".into(), "3".into()],
            Redundancy::Zonal => vec!["1".into()],
            // One zone, not three: the disks stay in the zone they were
            // created in, and a node replaced in an upgrade (or a pool
            // scaled up) must come up there too.
            Redundancy::None if zonal_only => vec!["1".into()],
            Redundancy::None => Vec::new(),
        },
    };
    if zonal_only && zones.is_empty() {
        let span = np
            .zones
            .as_ref()
            .map_or(spec.tier.span.clone(), |z| z.span.clone());
        c.error(
            span,
            format!(
                "{} disks attach only to VMs in availability zones",
                storage.sku
            ),
            "give the node pool zones, e.g. zones = [\"1\", \"2\", \"3\"]",
        );
    }

    // Size.
    let count = np.count.as_ref().map(|c| c.value as u32);
    let (min_count, max_count) = (
        np.min_count.as_ref().map(|c| c.value as u32),
        np.max_count.as_ref().map(|c| c.value as u32),
    );
    // A single zone-redundant replica survives a zone loss only if a node
    // can come up in another zone: by default its pool autoscales to a
    // second node when the pod cannot be scheduled, and costs nothing extra
    // until then.
    let standby = spec.redundancy.value == Redundancy::ZoneRedundant
        && replicas == 1
        && count.is_none()
        && min_count.is_none();
    let (min_count, max_count) = if standby {
        (Some(1), Some(2))
    } else {
        (min_count, max_count)
    };
    let count = if min_count.is_some() {
        None
    } else {
        Some(count.unwrap_or(replicas))
    };
    let capacity = count.or(max_count).unwrap_or(replicas);
    if capacity < replicas {
        let span = np
            .count
            .as_ref()
            .or(np.max_count.as_ref())
            .map_or(spec.replicas.span.clone(), |c| c.span.clone());
        c.warn(span, format!("the pool has {capacity} node(s) for {replicas} replicas, so some replicas share a node"), format!("losing that node loses several replicas; use at least {replicas} nodes"));
    }
    let os_disk_size_gb = np
        .os_disk_size_gb
        .as_ref()
        .map_or(DEFAULT_OS_DISK_GB, |v| v.value as u32);

    decisions.push(Decision {
        topic: "node-pool".into(),
        choice: format!(
            "{name}: {vm_size}, {}, zones {}{}",
            match (count, min_count, max_count) {
                (Some(n), _, _) => format!("{n} node(s)"),
                (None, Some(a), Some(b)) => format!("autoscale {a}-{b} nodes"),
                _ => String::new(),
            },
            if zones.is_empty() { "none (regional)".to_string() } else { zones.join(",") },
            if ultra { ", Ultra SSD enabled" } else { "" }
        ),
        rule: "one node per replica; pool reserved by taint".into(),
        reason: format!(
            "A dedicated User pool labelled and tainted {LABEL_POOL}={name}:NoSchedule keeps other pods off the database nodes; the StatefulSet selects it and tolerates the taint.{}",
            if spec.redundancy.value == Redundancy::None && zonal_only && np.zones.is_none() {
                " The tier's disks attach only to VMs in an availability zone and stay in the zone they were created in, so without zone redundancy the pool is kept in zone 1: a node replaced during an upgrade comes up where the disks are."
            } else if standby {
                " The pool autoscales from 1 to 2 nodes so the cluster autoscaler can add a node in a surviving zone when the replica's node is lost."
            } else {
                ""
            }
        ).into(),
    });

    let mut labels = BTreeMap::new();
    labels.insert(LABEL_POOL.to_string(), name.clone());
    Some(NodePoolPlan {
        taints: vec![format!("{LABEL_POOL}={name}:NoSchedule")],
        name,
        vm_size,
        zones,
        count,
        min_count,
        max_count,
        os_disk_size_gb,
        max_pods,
        ultra_ssd: ultra,
        labels,
        workloads: vec![spec.name.value.clone()],
    })
}

/// CPU AKS reserves for the kubelet and the OS on a node with `vcpus`
/// cores: 60m for the first core, 100m for two, 140m for four, then 10m
/// for every further core (the AKS "resource reservations" table: 180m at
/// 8 cores, 740m at 64).
fn kube_reserved_cpu_millis(vcpus: u64) -> u64 {
    match vcpus {
        0 | 1 => 60,
        2 | 3 => 100,
        n => 140 + 10 * (n - 4),
    }
}

/// What a node of `size` leaves for pods, in millicores and MiB: capacity
/// minus AKS's kubelet reservation (CPU by core count; memory 20 MB per pod
/// of `max_pods` plus 50 MB), the eviction threshold and the daemonsets.
fn allocatable(size: &VmSize, max_pods: u32) -> (u64, u64) {
    let vcpus = u64::from(size.vcpus);
    let cpu = (vcpus * 1000).saturating_sub(kube_reserved_cpu_millis(vcpus) + DAEMONSET_CPU_MILLIS);
    let capacity_mib = u64::from(size.memory_gib) * 1024 * VISIBLE_MEMORY_PERMILLE / 1000;
    // 20 MB per pod + 50 MB, in MiB (1 MB = 0.954 MiB), capped at a quarter
    // of the node as AKS does.
    let kube_reserved_mib =
        ((20 * u64::from(max_pods) + 50) * 1_000_000 / (1 << 20)).min(capacity_mib / 4);
    let memory =
        capacity_mib.saturating_sub(kube_reserved_mib + EVICTION_MEMORY_MIB + DAEMONSET_MEMORY_MIB);
    (cpu, memory)
}

/// `3.4 CPU / 12.9 GiB`.
fn describe_allocatable((cpu, mib): (u64, u64)) -> String {
    format!(
        "{:.2} CPU / {:.1} GiB",
        cpu as f64 / 1000.0,
        mib as f64 / 1024.0
    )
}

/// Premium storage support from the size name: the feature letters after the
/// vCPU count contain `s` (`D8ds_v5`, `E16as_v5`) or the family is `DS`/`GS`.
/// The authoritative check (`PremiumIO` capability) runs against Azure.
pub fn supports_premium(vm_size: &str) -> bool {
    let rest = vm_size.strip_prefix("Standard_").unwrap_or(vm_size);
    let base = rest.split('_').next().unwrap_or("");
    let family: String = base
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    let features: String = base
        .chars()
        .skip_while(|c| c.is_ascii_alphabetic())
        .skip_while(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    features.contains('s') || family.ends_with('S')
}

/// The node pools of a blueprint in first-use order, found by name (a
/// fleet can have one per workload).
#[derive(Default)]
pub(super) struct Pools {
    list: Vec<NodePoolPlan>,
    /// Pool name → its place in `list`, and whether the blueprint named it
    /// (rather than stateplan deriving it from the workload name).
    by_name: BTreeMap<String, (usize, bool)>,
}

impl Pools {
    pub(super) fn into_vec(self) -> Vec<NodePoolPlan> {
        self.list
    }

    /// Folds a workload's pool in; workloads naming the same pool must
    /// agree on everything but size, which adds up. Only pools the
    /// blueprint names are shared: two derived names that collide (long
    /// workload names cut to 12 characters) are an error, not a silently
    /// shared pool.
    pub(super) fn merge(
        &mut self,
        pool: NodePoolPlan,
        spec: &WorkloadSpec,
        diags: &mut Vec<Diagnostic>,
    ) {
        let named = spec.node_pool.name.is_some();
        match self.by_name.get(&pool.name) {
            Some(&(i, existing_named)) if named && existing_named => {
                merge_into(&mut self.list[i], pool, spec, diags);
            }
            Some(&(i, _)) => {
                let other = self.list[i].workloads.join(", ");
                diags.push(
                    Diagnostic::error(format!(
                        "workloads `{other}` and `{}` would both run on node pool `{}`",
                        spec.name.value, pool.name
                    ))
                    .at(spec.name.span.clone())
                    .hint("a pool name is derived from the workload name (lower-case letters and digits, at most 12), and these two derive the same; give one a pool of its own with the table form and node_pool = { name = \"...\" }, or give both the same node_pool.name to share the pool on purpose"),
                );
            }
            None => {
                self.by_name
                    .insert(pool.name.clone(), (self.list.len(), named));
                self.list.push(pool);
            }
        }
    }
}

fn merge_into(
    existing: &mut NodePoolPlan,
    pool: NodePoolPlan,
    spec: &WorkloadSpec,
    diags: &mut Vec<Diagnostic>,
) {
    let span = spec
        .node_pool
        .name
        .as_ref()
        .map_or(spec.name.span.clone(), |n| n.span.clone());
    let differs = [
        ("vm_size", existing.vm_size != pool.vm_size),
        ("zones", existing.zones != pool.zones),
        ("Ultra SSD", existing.ultra_ssd != pool.ultra_ssd),
        (
            "os_disk_size_gb",
            existing.os_disk_size_gb != pool.os_disk_size_gb,
        ),
        ("max_pods", existing.max_pods != pool.max_pods),
        (
            "autoscaling",
            existing.count.is_some() != pool.count.is_some(),
        ),
    ];
    if let Some((what, _)) = differs.iter().find(|(_, d)| *d) {
        diags.push(
            Diagnostic::error(format!("node pool `{}` is shared with {} but its {what} differs", pool.name, existing.workloads.join(", ")))
                .at(span)
                .hint("workloads sharing a pool need the same vm_size, zones, tier family and sizing mode; give this workload its own node_pool.name"),
        );
        return;
    }
    let add = |a: Option<u32>, b: Option<u32>| a.zip(b).map(|(a, b)| a + b);
    existing.count = add(existing.count, pool.count);
    existing.min_count = add(existing.min_count, pool.min_count);
    existing.max_count = add(existing.max_count, pool.max_count);
    existing.workloads.extend(pool.workloads);
}

#[cfg(test)]
mod tests {
    use super::supports_premium;

    #[test]
    fn premium_support_from_name() {
        for yes in [
            "Standard_D8ds_v5",
            "Standard_E16as_v5",
            "Standard_DS2_v2",
            "Standard_D4s_v3",
            "Standard_L8s_v3",
        ] {
            assert!(supports_premium(yes), "{yes}");
        }
        for no in [
            "Standard_D8d_v5",
            "Standard_A2_v2",
            "Standard_D4_v3",
            "Standard_F4",
        ] {
            assert!(!supports_premium(no), "{no}");
        }
    }
}
