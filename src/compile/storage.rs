//! Tier + redundancy → StorageClass: which Azure disk (or share), which SKU,
//! provisioned performance, binding mode.

use std::collections::BTreeMap;

use super::{Compiler, Decision, StorageClassPlan};
use crate::blueprint::{Redundancy, Spanned, Tier, WorkloadSpec};
use crate::catalog::EngineProfile;

/// A StorageClass before the node's VM is known: its performance may still
/// be lowered to what the VM drives, and its name (a hash of the final
/// parameters) and the `explain` entries follow from that, in [`finish`].
pub(super) struct Draft {
    pub plan: StorageClassPlan,
    /// The `disk` decision, its choice written by [`finish`].
    disk: Decision,
}

pub(super) fn decide(
    c: &mut Compiler<'_>,
    spec: &WorkloadSpec,
    profile: &EngineProfile,
) -> Option<Draft> {
    let tier = spec.tier.value;
    let Some(t) = c.catalog.tier(tier).cloned() else {
        c.error(
            spec.tier.span.clone(),
            format!("tier `{tier}` is missing from azure/storage-tiers.toml"),
            "restore the built-in tier or add it to the platform team's file",
        );
        return None;
    };
    let gib = spec.storage.value.gib_ceil();
    let size_span = spec.storage.span.clone();
    if gib < t.min_size_gib {
        c.error(
            size_span.clone(),
            format!(
                "{tier} volumes must be at least {} GiB, found {}",
                t.min_size_gib, spec.storage.value
            ),
            format!("use storage = \"{}Gi\" or more", t.min_size_gib),
        );
    }
    if gib > t.max_size_gib {
        c.error(
            size_span.clone(),
            format!(
                "{tier} volumes can be at most {} GiB, found {}",
                t.max_size_gib, spec.storage.value
            ),
            "split the data or choose another tier",
        );
    }
    if !(spec.storage.value.units_ceil() as u128).is_multiple_of(1 << 30) {
        c.warn(
            size_span.clone(),
            format!(
                "storage {} is not a whole number of GiB; Azure rounds it up to {gib}Gi",
                spec.storage.value
            ),
            match crate::blueprint::rules::binary_spelling(&spec.storage.value) {
                Some(binary) => format!("did you mean storage = \"{binary}\"? Kubernetes uses Gi/Ti for binary sizes; otherwise write storage = \"{gib}Gi\""),
                None => format!("write storage = \"{gib}Gi\""),
            },
        );
    }
    if t.provisioner != "disk.csi.azure.com"
        && let Some(why) = &profile.shared_files_warning
    {
        c.warn(
            spec.tier.span.clone(),
            format!("{} on a network file share: {why}", profile.name),
            "use a disk tier (fast-ssd, balanced or standard); each replica gets its own disk",
        );
    }
    if let Some(min) = profile.min_storage_gib.filter(|&m| gib < m) {
        c.warn(
            size_span.clone(),
            format!("{} usually needs at least {min}Gi of storage", profile.name),
            format!("use storage = \"{min}Gi\" or more"),
        );
    }

    let single_replica_zr =
        spec.redundancy.value == Redundancy::ZoneRedundant && spec.replicas.value == 1;
    // A file share is not placed in a zone its pod chooses (and the CSI
    // driver puts equal shares in one storage account), so with any number
    // of replicas only a zone-redundant share survives a zone loss.
    let shared_zr =
        spec.redundancy.value == Redundancy::ZoneRedundant && t.provisioner != "disk.csi.azure.com";
    let sku = if single_replica_zr || shared_zr {
        match &t.zrs_sku {
            Some(z) => z.clone(),
            None => {
                c.error(
                    spec.redundancy.span.clone(),
                    format!("zone-redundant with 1 replica needs a zone-redundant disk, and {tier} ({}) has none", t.sku),
                    "a single replica survives a zone loss only if its disk is replicated across zones (ZRS): use tier = \"balanced\" (Premium_ZRS) or \"standard\" (StandardSSD_ZRS), or run 3 replicas, one per zone",
                );
                return None;
            }
        }
    } else {
        t.sku.clone()
    };

    let mut parameters: BTreeMap<String, String> = BTreeMap::new();
    parameters.insert("skuName".into(), sku.clone());
    parameters.extend(t.parameters.clone());
    let (mut iops, mut mbps) = (None, None);
    match &t.performance {
        Some(p) => {
            let max_iops = p
                .max_iops
                .min(p.max_iops_per_gib.saturating_mul(gib))
                .max(p.min_iops);
            let want_iops = spec
                .disk
                .iops
                .as_ref()
                .map_or(p.default_iops.min(max_iops), |i| i.value as u64);
            check_asked(
                c,
                spec.disk.iops.as_ref(),
                &sku,
                (want_iops, p.min_iops, max_iops),
                ("IOPS", "iops"),
                format!("{tier} with {gib} GiB"),
                format!(
                    "Azure allows at most {} IOPS per GiB on {sku} ({} in all); grow the disk or lower iops",
                    p.max_iops_per_gib, p.max_iops
                ),
            );
            let max_mbps = p
                .max_mbps
                .min((want_iops as f64 * p.max_mbps_per_iops) as u64)
                .max(p.min_mbps);
            let want_mbps = spec
                .disk
                .throughput_mbps
                .as_ref()
                .map_or(p.default_mbps.min(max_mbps), |m| m.value as u64);
            check_asked(
                c,
                spec.disk.throughput_mbps.as_ref(),
                &sku,
                (want_mbps, p.min_mbps, max_mbps),
                ("MBps", "throughput_mbps"),
                format!("{tier} with {want_iops} IOPS"),
                format!(
                    "throughput may be at most {} MBps per provisioned IOPS ({} in all); raise iops or lower throughput_mbps",
                    p.max_mbps_per_iops, p.max_mbps
                ),
            );
            iops = Some(want_iops);
            mbps = Some(want_mbps);
        }
        None => {
            for (v, key) in [
                (&spec.disk.iops, "iops"),
                (&spec.disk.throughput_mbps, "throughput_mbps"),
            ] {
                if let Some(v) = v {
                    c.error(v.span.clone(), format!("disk.{key} applies only to tiers with provisioned performance (fast-ssd, ultra), not {tier}"), format!("remove disk.{key}, or use tier = \"fast-ssd\""));
                }
            }
        }
    }

    let is_disk = t.provisioner == "disk.csi.azure.com";
    let binding_mode = if is_disk {
        "WaitForFirstConsumer"
    } else {
        "Immediate"
    };
    let disk = Decision {
        topic: "disk".into(),
        choice: String::new(),
        rule: format!(
            "tier {tier}{}",
            if shared_zr {
                " + zone-redundant → ZRS (file shares are not zonal)"
            } else if single_replica_zr {
                " + zone-redundant with 1 replica → ZRS"
            } else {
                ""
            }
        )
        .into(),
        reason: format!(
            "{} {}",
            t.reason,
            if is_disk {
                "StorageClass: reclaimPolicy Retain (deleting a claim never deletes the data), allowVolumeExpansion true, volumeBindingMode WaitForFirstConsumer so each disk is created in the zone its pod is scheduled to."
            } else {
                "StorageClass: reclaimPolicy Retain, allowVolumeExpansion true, volumeBindingMode Immediate (file shares are not zonal)."
            }
        ).into(),
    };
    Some(Draft {
        plan: StorageClassPlan {
            name: String::new(),
            provisioner: t.provisioner.clone(),
            zone_redundant_disk: sku.ends_with("_ZRS"),
            sku,
            parameters,
            binding_mode: binding_mode.into(),
            access_mode: t.access_mode.clone(),
            mount_options: t.mount_options.clone(),
            iops,
            mbps,
        },
        disk,
    })
}

/// Completes a StorageClass once the node's VM size is known: performance
/// fitted to the VM, the name, and the `disk` and `storage-class` entries
/// of `explain`.
pub(super) fn finish(
    c: &mut Compiler<'_>,
    spec: &WorkloadSpec,
    draft: Draft,
    vm_size: &str,
    decisions: &mut Vec<Decision>,
) -> StorageClassPlan {
    let Draft { mut plan, mut disk } = draft;
    if let Some(lowered) = fit_to_vm(c, spec, &mut plan, vm_size) {
        disk.reason = format!("{} {lowered}", disk.reason).into();
    }
    if let Some((iops, mbps)) = plan.iops.zip(plan.mbps) {
        plan.parameters
            .insert("DiskIOPSReadWrite".into(), iops.to_string());
        plan.parameters
            .insert("DiskMBpsReadWrite".into(), mbps.to_string());
    }
    plan.name = class_name(
        spec.tier.value,
        plan.zone_redundant_disk,
        &plan.provisioner,
        &plan.binding_mode,
        &plan.parameters,
        &plan.mount_options,
    );
    disk.choice = format!(
        "{}{} ({} {} GiB per replica, {})",
        plan.sku,
        plan.iops
            .zip(plan.mbps)
            .map_or_else(String::new, |(i, m)| format!(", {i} IOPS, {m} MBps")),
        plan.provisioner,
        spec.storage.value.gib_ceil(),
        plan.access_mode
    );
    decisions.push(disk);
    decisions.push(Decision {
        topic: "storage-class".into(),
        choice: plan.name.clone(),
        rule: "stateplan-<tier>-<hash of parameters>".into(),
        reason: "StorageClass parameters are immutable; naming the class by a hash of them means a changed tier setting yields a new class, and the old one stays for the volumes that use it.".into(),
    });
    plan
}

/// StorageClass parameters are immutable, so the class is named by a hash
/// of them: a changed setting yields a new class.
fn class_name(
    tier: Tier,
    zrs: bool,
    provisioner: &str,
    binding_mode: &str,
    parameters: &BTreeMap<String, String>,
    mount_options: &[String],
) -> String {
    let fingerprint = format!("{provisioner}|{binding_mode}|{parameters:?}|{mount_options:?}");
    format!(
        "stateplan-{}{}-{:08x}",
        tier.name(),
        if zrs { "-zrs" } else { "" },
        fnv1a(&fingerprint) as u32
    )
}

/// Matches provisioned disk performance to the node's VM, once the pool is
/// decided. A disk without host caching (Premium SSD v2, Ultra) is limited
/// by the VM's uncached throughput: performance the tier gives by default
/// is lowered to what the VM drives (never below the tier's minimum);
/// performance the blueprint asks for is kept, with a warning when the VM
/// cannot deliver it. Returns the sentence `explain` adds when it lowered
/// anything.
fn fit_to_vm(
    c: &mut Compiler<'_>,
    spec: &WorkloadSpec,
    plan: &mut StorageClassPlan,
    vm_size: &str,
) -> Option<String> {
    let (iops, mbps) = plan.iops.zip(plan.mbps)?;
    let size = c
        .catalog
        .vm_sizes
        .iter()
        .find(|s| s.name == vm_size)?
        .clone();
    let perf = c.catalog.tier(spec.tier.value)?.performance.clone()?;
    let mut fit = |want: u64,
                   max: Option<u64>,
                   min: u64,
                   explicit: Option<&Spanned<i64>>,
                   what: &str,
                   key: &str|
     -> u64 {
        let Some(max) = max.filter(|&m| want > m) else {
            return want;
        };
        match explicit {
            Some(v) => {
                c.warn(v.span.clone(), format!("{vm_size} drives at most {max} {what} to a disk without host caching; this disk is provisioned for {want}"), format!("performance the VM cannot use is paid for but not delivered; lower disk.{key}, or set node_pool.vm_size to a larger size"));
                want
            }
            None => max.max(min),
        }
    };
    let new_iops = fit(
        iops,
        size.max_uncached_iops,
        perf.min_iops,
        spec.disk.iops.as_ref(),
        "IOPS",
        "iops",
    );
    let new_mbps = fit(
        mbps,
        size.max_uncached_mbps,
        perf.min_mbps,
        spec.disk.throughput_mbps.as_ref(),
        "MBps",
        "throughput_mbps",
    );
    // Throughput is bounded by IOPS too; lowering IOPS may lower it.
    let new_mbps = if spec.disk.throughput_mbps.is_none() {
        new_mbps
            .min((new_iops as f64 * perf.max_mbps_per_iops) as u64)
            .max(perf.min_mbps)
    } else {
        new_mbps
    };
    if (new_iops, new_mbps) == (iops, mbps) {
        return None;
    }
    plan.iops = Some(new_iops);
    plan.mbps = Some(new_mbps);
    let limit = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
    Some(format!(
        "The tier's default of {iops} IOPS / {mbps} MBps is lowered to what {vm_size} drives to a disk without host caching ({} IOPS / {} MBps): more would be paid for but not delivered. Set disk.iops / disk.throughput_mbps to ask for more; the node's VM size then grows to match.",
        limit(size.max_uncached_iops),
        limit(size.max_uncached_mbps),
    ))
}

/// Reports IOPS or MBps the blueprint asked for (`asked`) outside what the
/// disk allows, with a hint for the side of the range it falls on.
fn check_asked(
    c: &mut Compiler<'_>,
    asked: Option<&Spanned<i64>>,
    sku: &str,
    (want, min, max): (u64, u64, u64),
    (unit, key): (&str, &str),
    context: String,
    too_high: String,
) {
    let Some(v) = asked.filter(|_| want < min || want > max) else {
        return;
    };
    let hint = if want < min {
        format!(
            "{sku} always provisions at least {min} {unit}; raise {key}, or leave it out for the default"
        )
    } else {
        too_high
    };
    let message = format!("{context} allows {} {unit}, found {want}", range(min, max));
    c.error(v.span.clone(), message, hint);
}

/// `3000 to 50000`, or `only 125` when the bounds meet.
fn range(min: u64, max: u64) -> String {
    if min >= max {
        format!("only {min}")
    } else {
        format!("{min} to {max}")
    }
}

/// FNV-1a: a tiny, stable hash for names (not for security).
pub(crate) fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
