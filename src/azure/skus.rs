//! VM size checks against `Microsoft.Compute/skus` for the target location:
//! offered, not restricted for the subscription, in every wanted zone,
//! premium storage and Ultra Disk (per zone) where the workloads need them.

use serde::{Deserialize, Serialize};

/// `Microsoft.Compute/skus` entry (2021-07-01), the fields stateplan reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceSku {
    #[serde(default)]
    pub resource_type: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub locations: Vec<String>,
    #[serde(default)]
    pub location_info: Vec<LocationInfo>,
    #[serde(default)]
    pub capabilities: Vec<Capability>,
    #[serde(default)]
    pub restrictions: Vec<Restriction>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocationInfo {
    #[serde(default)]
    pub location: String,
    #[serde(default)]
    pub zones: Vec<String>,
    #[serde(default)]
    pub zone_details: Vec<ZoneDetail>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ZoneDetail {
    /// Zones this detail applies to.
    #[serde(default)]
    pub name: Vec<String>,
    #[serde(default)]
    pub capabilities: Vec<Capability>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Capability {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Restriction {
    /// `Location` or `Zone`.
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub values: Vec<String>,
    #[serde(default)]
    pub restriction_info: RestrictionInfo,
    /// `NotAvailableForSubscription`, `QuotaId`.
    #[serde(default)]
    pub reason_code: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RestrictionInfo {
    #[serde(default)]
    pub locations: Vec<String>,
    #[serde(default)]
    pub zones: Vec<String>,
}

fn cap_true(caps: &[Capability], name: &str) -> bool {
    caps.iter()
        .any(|c| c.name.eq_ignore_ascii_case(name) && c.value.eq_ignore_ascii_case("True"))
}

/// What a pool needs from its VM size.
#[derive(Debug, Clone, Default)]
pub struct SkuNeeds<'a> {
    pub vm_size: &'a str,
    pub location: &'a str,
    pub zones: &'a [String],
    /// Premium SSD (v1/v2) or Ultra disks are attached: why, for the message.
    pub premium_for: Option<String>,
    pub ultra_ssd: bool,
}

/// Every problem with the VM size, each a complete sentence.
pub fn check(skus: &[ResourceSku], needs: &SkuNeeds<'_>) -> Vec<String> {
    let loc = needs.location;
    let vm = needs.vm_size;
    let Some(sku) = skus.iter().find(|s| {
        s.resource_type.eq_ignore_ascii_case("virtualMachines")
            && s.name.eq_ignore_ascii_case(vm)
            && s.locations.iter().any(|l| l.eq_ignore_ascii_case(loc))
    }) else {
        return vec![format!(
            "{vm} is not offered in {loc}; choose another vm_size (`az vm list-skus -l {loc} --resource-type virtualMachines -o table` lists them)"
        )];
    };
    let mut problems = Vec::new();
    let mut restricted_zones: Vec<String> = Vec::new();
    for r in &sku.restrictions {
        let reason = if r.reason_code.is_empty() {
            "restricted".to_string()
        } else {
            r.reason_code.clone()
        };
        if r.kind.eq_ignore_ascii_case("Location")
            && (r
                .restriction_info
                .locations
                .iter()
                .any(|l| l.eq_ignore_ascii_case(loc))
                || r.values.iter().any(|l| l.eq_ignore_ascii_case(loc)))
        {
            problems.push(format!(
                "{vm} is not available in {loc} for this subscription ({reason}); request access through a support ticket or choose another vm_size"
            ));
        }
        if r.kind.eq_ignore_ascii_case("Zone")
            && (r.restriction_info.locations.is_empty()
                || r.restriction_info
                    .locations
                    .iter()
                    .any(|l| l.eq_ignore_ascii_case(loc)))
        {
            restricted_zones.extend(r.restriction_info.zones.iter().cloned());
        }
    }
    if !problems.is_empty() {
        return problems;
    }
    let info = sku
        .location_info
        .iter()
        .find(|i| i.location.eq_ignore_ascii_case(loc));
    let offered: Vec<&String> = info.map(|i| i.zones.iter().collect()).unwrap_or_default();
    for z in needs.zones {
        if !offered.contains(&z) || restricted_zones.contains(z) {
            problems.push(format!(
                "{vm} is not offered in zone {z} of {loc} for this subscription; choose other zones or another vm_size"
            ));
        }
    }
    if let Some(why) = &needs.premium_for
        && !cap_true(&sku.capabilities, "PremiumIO")
    {
        problems.push(format!(
            "{vm} cannot attach premium disks (PremiumIO is False), which {why} needs; choose a size with premium storage (an `s` in the name, e.g. Standard_D8ds_v5)"
        ));
    }
    if needs.ultra_ssd {
        if needs.zones.is_empty() {
            let regional = cap_true(&sku.capabilities, "UltraSSDAvailable");
            if !regional {
                problems.push(format!(
                    "{vm} has no Ultra Disk support in {loc} without availability zones; set zones or choose another vm_size"
                ));
            }
        }
        for z in needs.zones {
            let ultra = info.is_some_and(|i| {
                i.zone_details
                    .iter()
                    .any(|d| d.name.contains(z) && cap_true(&d.capabilities, "UltraSSDAvailable"))
            });
            if !ultra && offered.contains(&z) && !restricted_zones.contains(z) {
                problems.push(format!(
                    "{vm} has no Ultra Disk support in zone {z} of {loc} (UltraSSDAvailable); choose other zones or another vm_size"
                ));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sku(zones: &[&str], ultra: &[&str], premium: bool) -> ResourceSku {
        ResourceSku {
            resource_type: "virtualMachines".into(),
            name: "Standard_E8ds_v5".into(),
            locations: vec!["northeurope".into()],
            location_info: vec![LocationInfo {
                location: "northeurope".into(),
                zones: zones.iter().map(|z| z.to_string()).collect(),
                zone_details: vec![ZoneDetail {
                    name: ultra.iter().map(|z| z.to_string()).collect(),
                    capabilities: vec![Capability {
                        name: "UltraSSDAvailable".into(),
                        value: "True".into(),
                    }],
                }],
            }],
            capabilities: vec![Capability {
                name: "PremiumIO".into(),
                value: if premium { "True" } else { "False" }.into(),
            }],
            restrictions: vec![],
        }
    }

    #[test]
    fn zone_not_offered() {
        let zones = vec!["1".to_string(), "3".to_string()];
        let p = check(
            &[sku(&["1", "2"], &[], true)],
            &SkuNeeds {
                vm_size: "Standard_E8ds_v5",
                location: "northeurope",
                zones: &zones,
                premium_for: Some("x".into()),
                ultra_ssd: false,
            },
        );
        assert_eq!(
            p,
            vec![
                "Standard_E8ds_v5 is not offered in zone 3 of northeurope for this subscription; choose other zones or another vm_size"
            ]
        );
    }

    #[test]
    fn restricted_premium_ultra() {
        let zones = vec!["1".to_string(), "2".to_string()];
        let mut s = sku(&["1", "2", "3"], &["1"], false);
        s.restrictions.push(Restriction {
            kind: "Zone".into(),
            values: vec!["northeurope".into()],
            restriction_info: RestrictionInfo {
                locations: vec!["northeurope".into()],
                zones: vec!["2".into()],
            },
            reason_code: "NotAvailableForSubscription".into(),
        });
        let p = check(
            &[s],
            &SkuNeeds {
                vm_size: "standard_e8ds_v5",
                location: "NorthEurope",
                zones: &zones,
                premium_for: Some("orders-db's PremiumV2_LRS disks".into()),
                ultra_ssd: true,
            },
        );
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("zone 2"));
        assert!(p[1].contains("PremiumIO"));
        let none = check(
            &[],
            &SkuNeeds {
                vm_size: "Standard_X",
                location: "westeurope",
                ..Default::default()
            },
        );
        assert!(none[0].starts_with("Standard_X is not offered in westeurope"));
    }
}
