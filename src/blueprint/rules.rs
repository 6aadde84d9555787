//! Field-level rules: names Kubernetes and Azure accept, quantities, cron
//! schedules, retention periods. Each rule reports through the [`Reader`] and
//! never stops decoding.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::decode::Reader;
use super::{Quantity, Redundancy, Spanned, Tier, did_you_mean};

/// Longest workload name: derived names (`<name>-headless`, PVC
/// `data-<name>-<ordinal>`, the pod's `controller-revision-hash` label, which
/// caps StatefulSet names at 52) must still fit Kubernetes' limits.
pub const MAX_WORKLOAD_NAME: usize = 40;

pub(crate) fn is_dns_label(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn dns_label_fix(s: &str) -> String {
    let lowered: String = s
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    lowered.trim_matches('-').to_string()
}

/// A DNS-1123 label: lower-case letters, digits and `-`, starting and ending
/// alphanumeric, at most `max` characters.
pub(crate) fn check_dns_label(r: &mut Reader, s: &Spanned<String>, what: &str, max: usize) -> bool {
    if is_dns_label(&s.value, max) {
        return true;
    }
    let fixed = dns_label_fix(&s.value);
    let why = if s.value.len() > max {
        format!(
            "is {} characters long; at most {max} are allowed",
            s.value.len()
        )
    } else {
        "must be lower-case letters, digits and '-', starting and ending with a letter or digit"
            .to_string()
    };
    let hint = if !fixed.is_empty() && fixed.len() <= max && fixed != s.value {
        format!("try `{fixed}`")
    } else {
        format!("a {what} is a DNS-1123 label of at most {max} characters, e.g. `orders-db`")
    };
    r.error(s.span.clone(), format!("{what} `{}` {why}", s.value))
        .hint = Some(hint);
    false
}

pub(crate) fn check_workload_name(r: &mut Reader, name: &Spanned<String>) -> bool {
    if name.value.len() > MAX_WORKLOAD_NAME && is_dns_label(&name.value, 63) {
        r.error(
            name.span.clone(),
            format!(
                "workload name `{}` is {} characters long; at most {MAX_WORKLOAD_NAME} are allowed",
                name.value,
                name.value.len()
            ),
        )
        .hint = Some(
            "objects derived from it (PVC data-<name>-<ordinal>, <name>-headless, the pods' revision label) must fit Kubernetes' 63-character limit".into(),
        );
        return false;
    }
    check_dns_label(r, name, "workload name", MAX_WORKLOAD_NAME)
}

/// A DNS-1123 subdomain (dotted labels), e.g. a Velero storage location.
pub(crate) fn check_dns_subdomain(r: &mut Reader, s: &Spanned<String>, what: &str) -> bool {
    let ok = s.value.len() <= 253 && s.value.split('.').all(|part| is_dns_label(part, 63));
    if !ok {
        r.error(
            s.span.clone(),
            format!("{what} `{}` is not a valid Kubernetes name", s.value),
        )
        .hint = Some("use lower-case letters, digits, '-' and '.', e.g. `default`".into());
    }
    ok
}

pub(crate) fn check_subscription(r: &mut Reader, s: &Spanned<String>) {
    let groups: Vec<&str> = s.value.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    let ok = groups.len() == 5
        && groups
            .iter()
            .zip(lens)
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()));
    if !ok {
        r.error(s.span.clone(), format!("subscription `{}` is not a subscription ID", s.value)).hint = Some(
            "use the subscription's GUID, e.g. \"00000000-0000-0000-0000-000000000000\" (az account show --query id)"
                .into(),
        );
    }
}

pub(crate) fn check_resource_group(r: &mut Reader, s: &Spanned<String>) {
    let v = &s.value;
    let ok = !v.is_empty()
        && v.len() <= 90
        && !v.ends_with('.')
        && v.chars()
            .all(|c| c.is_alphanumeric() || "-_.()".contains(c));
    if !ok {
        r.error(
            s.span.clone(),
            format!("resource group `{v}` is not a valid Azure resource group name"),
        )
        .hint = Some("1-90 letters, digits, '-', '_', '.', '(' or ')', not ending in '.'".into());
    }
}

pub(crate) fn check_cluster_name(r: &mut Reader, s: &Spanned<String>) {
    let v = &s.value;
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    let ok = !v.is_empty()
        && v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && alnum(v.chars().next())
        && alnum(v.chars().last());
    if !ok {
        r.error(
            s.span.clone(),
            format!("cluster `{v}` is not a valid AKS cluster name"),
        )
        .hint = Some(
            "1-63 letters, digits, '-' and '_', starting and ending with a letter or digit".into(),
        );
    }
}

pub(crate) fn check_location(r: &mut Reader, s: &Spanned<String>) {
    let v = &s.value;
    if v.is_empty()
        || !v
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        let fixed: String = v
            .to_ascii_lowercase()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        r.error(
            s.span.clone(),
            format!("location `{v}` is not an Azure region name"),
        )
        .hint = Some(if fixed.is_empty() {
            "use the region's programmatic name, e.g. \"westeurope\" (az account list-locations -o table)".into()
        } else {
            format!("use the programmatic name: \"{fixed}\"")
        });
    }
}

pub(crate) fn check_key_vault(r: &mut Reader, s: &Spanned<String>) {
    let v = &s.value;
    let ok = (3..=24).contains(&v.len())
        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && v.starts_with(|c: char| c.is_ascii_alphabetic())
        && v.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !v.contains("--");
    if !ok {
        r.error(s.span.clone(), format!("key_vault `{v}` is not a valid Key Vault name")).hint = Some(
            "3-24 letters, digits and single '-', starting with a letter and ending with a letter or digit".into(),
        );
    }
}

/// AKS agent pool names: `^[a-z][a-z0-9]{0,11}$` (Linux pools).
pub(crate) fn check_pool_name(r: &mut Reader, s: &Spanned<String>) -> bool {
    if is_pool_name(&s.value) {
        return true;
    }
    let fixed = pool_name_from(&s.value);
    r.error(
        s.span.clone(),
        format!("node pool name `{}` is not valid for AKS", s.value),
    )
    .hint = Some(format!(
        "AKS pool names are 1-12 lower-case letters and digits, starting with a letter{}",
        fixed.map(|f| format!("; try `{f}`")).unwrap_or_default()
    ));
    false
}

pub fn is_pool_name(s: &str) -> bool {
    (1..=12).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Derives a valid pool name from a workload name (`orders-db` → `ordersdb`).
pub fn pool_name_from(name: &str) -> Option<String> {
    let cleaned: String = name
        .to_ascii_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .skip_while(|c| c.is_ascii_digit())
        .take(12)
        .collect();
    is_pool_name(&cleaned).then_some(cleaned)
}

pub(crate) fn check_vm_size(r: &mut Reader, s: &Spanned<String>) {
    let v = &s.value;
    let ok = v.strip_prefix("Standard_").is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    });
    if !ok {
        let recased = v
            .get(..9)
            .filter(|p| p.eq_ignore_ascii_case("Standard_"))
            .map(|_| format!("Standard_{}", &v[9..]));
        r.error(
            s.span.clone(),
            format!("vm_size `{v}` is not an Azure VM size"),
        )
        .hint = Some(match recased {
            Some(fixed) => format!("did you mean \"{fixed}\"?"),
            None => {
                "VM sizes look like \"Standard_E8ds_v5\" (az vm list-sizes -l <location> -o table)"
                    .into()
            }
        });
    }
}

pub(crate) fn check_zones(r: &mut Reader, zones: &Spanned<Vec<Spanned<String>>>) {
    let mut seen = BTreeSet::new();
    if zones.value.is_empty() {
        r.error(zones.span.clone(), "`zones` is empty").hint =
            Some("list the availability zones to use, e.g. zones = [\"1\", \"2\", \"3\"]".into());
    }
    for z in &zones.value {
        if !["1", "2", "3"].contains(&z.value.as_str()) {
            r.error(
                z.span.clone(),
                format!("`{}` is not an availability zone", z.value),
            )
            .hint = Some("Azure zones are \"1\", \"2\" and \"3\"".into());
        } else if !seen.insert(z.value.clone()) {
            r.error(
                z.span.clone(),
                format!("zone \"{}\" is listed twice", z.value),
            )
            .hint = Some("list each zone once".into());
        }
    }
}

pub(crate) fn quantity(
    r: &mut Reader,
    s: &Spanned<String>,
    what: &str,
) -> Option<Spanned<Quantity>> {
    match Quantity::parse(s.value.trim()) {
        Ok(q) if q.is_negative() => {
            r.error(s.span.clone(), format!("{what} `{}` is negative", s.value))
                .hint = Some(format!("{what} is an amount; drop the minus sign"));
            None
        }
        Ok(q) if q.milli() == 0 => {
            r.error(s.span.clone(), format!("{what} must be larger than zero"))
                .hint = Some(if what.contains("cpu") {
                "for example \"500m\" (half a core) or \"2\"".into()
            } else {
                "for example \"4Gi\"".into()
            });
            None
        }
        Ok(q) => Some(Spanned::new(q, s.span.clone())),
        Err(e) => {
            let example = if what.contains("cpu") {
                "\"2\" or \"500m\""
            } else {
                "\"200Gi\""
            };
            r.error(
                s.span.clone(),
                format!("{what} `{}` is not a Kubernetes quantity", s.value),
            )
            .hint = Some(match e.suggestion {
                Some(fix) => {
                    format!("did you mean {fix}? Kubernetes uses Ki/Mi/Gi/Ti for binary sizes")
                }
                None => format!("write a quantity such as {example}"),
            });
            None
        }
    }
}

/// A volume size. A number without a unit is bytes in Kubernetes (`100` is
/// 100 bytes, `100m` a thousandth of that, `1e3` a thousand), never what a
/// blueprint author means by a database volume, so below 1 GiB it is refused.
pub(crate) fn storage(r: &mut Reader, s: &Spanned<String>) -> Option<Spanned<Quantity>> {
    let q = quantity(r, s, "storage")?;
    let suffix = q.value.suffix();
    // `1e3` is a number too: Kubernetes reads the `e` as a decimal exponent.
    let exponent = suffix.starts_with(['e', 'E']);
    if (matches!(suffix, "" | "m") || exponent) && q.value.units_ceil() < 1 << 30 {
        let text = q.value.as_str();
        let number = &text[..text.len() - suffix.len()];
        let (message, meant) = if exponent {
            // The number the exponent spells out, when it is a whole one.
            let whole = (q.value.milli() % 1000 == 0).then(|| (q.value.milli() / 1000).to_string());
            (
                format!(
                    "storage `{text}` is {} bytes: `{suffix}` is a decimal exponent in Kubernetes quantities, not a unit",
                    whole.as_deref().unwrap_or(text)
                ),
                whole.unwrap_or_else(|| number.to_string()),
            )
        } else if suffix == "m" {
            (
                format!(
                    "storage `{text}` is {number} thousandths of a byte (`m` means milli in Kubernetes quantities)"
                ),
                number.to_string(),
            )
        } else {
            (
                format!("storage `{text}` has no unit, which Kubernetes reads as {number} bytes"),
                number.to_string(),
            )
        };
        r.error(s.span.clone(), message).hint = Some(format!(
            "did you mean \"{meant}Gi\"? Volumes are sized in Gi or Ti"
        ));
        return None;
    }
    Some(q)
}

/// The binary spelling of a decimal size (`20G` → `20Gi`), which is what a
/// disk size in `G` usually means; `None` for other quantities.
pub(crate) fn binary_spelling(q: &Quantity) -> Option<String> {
    let text = q.as_str();
    let unit = text.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
    matches!(unit, "k" | "M" | "G" | "T" | "P" | "E").then(|| {
        format!(
            "{}{}i",
            &text[..text.len() - unit.len()],
            unit.to_ascii_uppercase()
        )
    })
}

pub(crate) fn tier(r: &mut Reader, s: &Spanned<String>) -> Option<Spanned<Tier>> {
    if let Some(t) = Tier::from_name(&s.value) {
        return Some(Spanned::new(t, s.span.clone()));
    }
    let names: Vec<&str> = Tier::ALL.iter().map(|t| t.name()).collect();
    let aliases = [
        ("premium", "balanced"),
        ("premiumv2", "fast-ssd"),
        ("ssd", "fast-ssd"),
        ("files", "shared-files"),
        ("nfs", "shared-files"),
        ("hdd", "standard"),
    ];
    let alias = aliases
        .iter()
        .find(|(a, _)| a.eq_ignore_ascii_case(&s.value))
        .map(|(_, t)| *t);
    r.error(
        s.span.clone(),
        format!("unknown storage tier `{}`", s.value),
    )
    .hint = Some(
        match alias.or_else(|| did_you_mean(&s.value, names.iter().copied())) {
            Some(t) => format!("did you mean `{t}`? tiers: {}", names.join(", ")),
            None => format!("tiers: {}", names.join(", ")),
        },
    );
    None
}

pub(crate) fn redundancy(r: &mut Reader, s: &Spanned<String>) -> Option<Spanned<Redundancy>> {
    if let Some(v) = Redundancy::from_name(&s.value) {
        return Some(Spanned::new(v, s.span.clone()));
    }
    let names: Vec<&str> = Redundancy::ALL.iter().map(|t| t.name()).collect();
    let alias = match s.value.to_ascii_lowercase().as_str() {
        "zrs" | "ha" | "multi-zone" | "zone_redundant" | "zoneredundant" => Some("zone-redundant"),
        "single-zone" | "lrs" => Some("zonal"),
        _ => None,
    };
    r.error(s.span.clone(), format!("unknown redundancy `{}`", s.value))
        .hint = Some(
        match alias.or_else(|| did_you_mean(&s.value, names.iter().copied())) {
            Some(t) => format!("did you mean `{t}`? choices: {}", names.join(", ")),
            None => format!("choices: {}", names.join(", ")),
        },
    );
    None
}

/// A backup retention period (`30d`, `12h`, `2w`, `720h0m0s`), rendered as
/// the Go duration Velero's `ttl` expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Retention {
    pub hours: u64,
}

impl Retention {
    /// Velero's TTL format (`720h0m0s`).
    pub fn go_duration(self) -> String {
        format!("{}h0m0s", self.hours)
    }
}

pub(crate) fn retention(r: &mut Reader, s: &Spanned<String>) -> Option<Spanned<Retention>> {
    match parse_retention(&s.value) {
        Some(0) => {
            r.error(s.span.clone(), "retention must be longer than zero")
                .hint = Some("e.g. retain = \"30d\"".into());
            None
        }
        Some(h) if h > 24 * 365 * 10 => {
            r.error(
                s.span.clone(),
                format!("retention `{}` is longer than 10 years", s.value),
            )
            .hint = Some("keep long-term archives outside Velero; e.g. retain = \"90d\"".into());
            None
        }
        Some(hours) => Some(Spanned::new(Retention { hours }, s.span.clone())),
        None => {
            r.error(
                s.span.clone(),
                format!("retention `{}` is not a duration", s.value),
            )
            .hint = Some(
                "write a number with a unit: h (hours), d (days) or w (weeks), e.g. \"30d\"".into(),
            );
            None
        }
    }
}

fn parse_retention(s: &str) -> Option<u64> {
    // Digits only (no sign); too many for a u64 is simply very long, which
    // the caller reports as such.
    let number = |n: &str| {
        (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .then(|| n.parse::<u64>().unwrap_or(u64::MAX))
    };
    // Go-style `720h0m0s` as Velero prints it.
    if let Some(h) = s.strip_suffix("h0m0s") {
        return number(h);
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let factor = match unit {
        "h" => 1,
        "d" => 24,
        "w" => 24 * 7,
        _ => return None,
    };
    number(num).map(|n| n.saturating_mul(factor))
}

/// Cron schedules as Velero (robfig/cron) reads them: five fields or a
/// descriptor such as `@daily` / `@every 6h`.
pub(crate) fn check_cron(r: &mut Reader, s: &Spanned<String>) {
    if let Err(msg) = validate_cron(&s.value) {
        r.error(s.span.clone(), format!("schedule `{}` is not a valid cron expression: {msg}", s.value)).hint =
            Some("five fields: minute hour day-of-month month day-of-week, e.g. \"0 2 * * *\" (02:00 daily, UTC; \"CRON_TZ=Europe/Berlin 0 2 * * *\" for another zone)".into());
    }
}

/// Seconds in a Go duration of hours, minutes and seconds (`1h30m`).
fn every_seconds(d: &str) -> Option<u64> {
    let mut total: u64 = 0;
    let mut rest = d;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit = match rest.as_bytes().first()? {
            b'h' => 3600,
            b'm' => 60,
            b's' => 1,
            _ => return None,
        };
        rest = &rest[1..];
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    (!d.is_empty()).then_some(total)
}

pub fn validate_cron(expr: &str) -> Result<(), String> {
    let expr = expr.trim();
    if let Some(rest) = expr.strip_prefix('@') {
        return match rest {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => {
                Ok(())
            }
            _ if rest.starts_with("every ") => {
                let d = rest["every ".len()..].trim();
                match every_seconds(d) {
                    // robfig/cron runs anything shorter every second.
                    Some(secs) if secs < 60 => Err(format!(
                        "`@every {d}` would start a backup more often than once a minute"
                    )),
                    Some(_) => Ok(()),
                    None => Err(format!(
                        "`@every {d}` needs a duration like 6h, 30m or 1h30m"
                    )),
                }
            }
            _ => Err(format!("unknown descriptor `@{rest}`")),
        };
    }
    // Velero's cron library reads a time zone in front of the fields.
    let expr = match expr.split_once(char::is_whitespace) {
        Some((tz, rest)) if tz.starts_with("CRON_TZ=") || tz.starts_with("TZ=") => {
            let zone = tz.split_once('=').map_or("", |(_, z)| z);
            let plausible = !zone.is_empty()
                && zone
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/_+-".contains(&b));
            if !plausible {
                return Err(format!(
                    "`{tz}` does not name a time zone such as Europe/Berlin"
                ));
            }
            rest.trim_start()
        }
        _ => expr,
    };
    let fields: Vec<&str> = expr.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!("it has {} fields, cron needs 5", fields.len()));
    }
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    let specs: [(&str, u32, u32, &[&str]); 5] = [
        ("minute", 0, 59, &[]),
        ("hour", 0, 23, &[]),
        ("day-of-month", 1, 31, &[]),
        ("month", 1, 12, &MONTHS),
        ("day-of-week", 0, 6, &DAYS),
    ];
    // The values each field allows, as bits.
    let mut sets = [0u64; 5];
    for ((field, (what, min, max, names)), set) in fields.iter().zip(specs).zip(&mut sets) {
        let value = |v: &str| -> Result<u32, String> {
            let offset = if names.len() == 12 { 1 } else { 0 };
            if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(v)) {
                return Ok(i as u32 + offset);
            }
            let n: u32 = v
                .parse()
                .map_err(|_| format!("{what} field has `{v}`, not a number"))?;
            if n < min || n > max {
                return Err(format!("{what} `{n}` is out of range {min}-{max}"));
            }
            Ok(n)
        };
        for part in field.split(',') {
            let (range, step) = match part.split_once('/') {
                Some((r, s)) => (r, Some(s)),
                None => (part, None),
            };
            let step = match step {
                Some(step) => match step.parse::<u32>() {
                    Ok(n) if n > 0 => n,
                    _ => return Err(format!("{what} step `/{step}` must be a positive number")),
                },
                None => 1,
            };
            let (a, b) = if range == "*" || range == "?" {
                (min, max)
            } else {
                match range.split_once('-') {
                    Some((a, b)) => {
                        let (a, b) = (value(a)?, value(b)?);
                        if a > b {
                            return Err(format!("{what} range {a}-{b} runs backwards"));
                        }
                        (a, b)
                    }
                    // `5/15` runs from 5 to the end.
                    None if step > 1 => (value(range)?, max),
                    None => {
                        let v = value(range)?;
                        (v, v)
                    }
                }
            };
            for v in (a..=b).step_by(step as usize) {
                *set |= 1 << v;
            }
        }
    }
    // With any day of the week, the days of the month decide; a date that
    // no chosen month has (30 February) never comes.
    if matches!(fields[4], "*" | "?") {
        const DAYS_IN: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        let fires = (1..=12u32)
            .filter(|m| sets[3] & (1 << m) != 0)
            .any(|m| (1..=DAYS_IN[m as usize - 1]).any(|d| sets[2] & (1 << d) != 0));
        if !fires {
            return Err(format!(
                "day-of-month `{}` never falls in month `{}`, so no backup would ever run",
                fields[2], fields[3]
            ));
        }
    }
    Ok(())
}

/// Secret names become Key Vault secret names (`<workload>-<secret>`) and
/// keys of the Kubernetes Secret, so they must suit both.
pub(crate) fn check_secret_names(
    r: &mut Reader,
    workload: &Spanned<String>,
    list: &Spanned<Vec<Spanned<String>>>,
) {
    let mut seen = BTreeSet::new();
    for s in &list.value {
        if !is_dns_label(&s.value, 63) {
            let fixed = dns_label_fix(&s.value);
            r.error(
                s.span.clone(),
                format!("secret name `{}` is not valid", s.value),
            )
            .hint = Some(format!(
                "use lower-case letters, digits and '-' (it becomes the Key Vault secret `{}-<name>`){}",
                workload.value,
                if fixed.is_empty() {
                    String::new()
                } else {
                    format!("; try `{fixed}`")
                }
            ));
        } else if !seen.insert(s.value.as_str()) {
            r.error(
                s.span.clone(),
                format!("secret `{}` is listed twice", s.value),
            )
            .hint = Some("list each secret once".into());
        }
    }
}

/// Label and annotation keys (`prefix/name`) and, for labels, values.
pub(crate) fn check_labels(r: &mut Reader, map: &BTreeMap<String, Spanned<String>>, what: &str) {
    let is_name = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.ends_with(|c: char| c.is_ascii_alphanumeric())
    };
    for (key, value) in map {
        let (prefix, name) = match key.split_once('/') {
            Some((p, n)) => (Some(p), n),
            None => (None, key.as_str()),
        };
        let prefix_ok =
            prefix.is_none_or(|p| p.len() <= 253 && p.split('.').all(|l| is_dns_label(l, 63)));
        if !prefix_ok || !is_name(name) {
            r.error(value.span.clone(), format!("{what} key `{key}` is not a valid Kubernetes {what} key")).hint =
                Some("keys are an optional DNS prefix and '/', then a name of letters, digits, '-', '_' and '.' (at most 63)".into());
            continue;
        }
        // `name` and `instance` select the pods; `version` is what plan
        // compares to refuse a downgrade.
        if prefix.is_some_and(|p| p == "stateplan.io" || p.ends_with(".stateplan.io"))
            || [
                "app.kubernetes.io/managed-by",
                "app.kubernetes.io/instance",
                "app.kubernetes.io/name",
                "app.kubernetes.io/version",
            ]
            .contains(&key.as_str())
        {
            r.error(
                value.span.clone(),
                format!("{what} `{key}` is set by stateplan itself"),
            )
            .hint = Some("stateplan uses it to know what it owns; pick another key".into());
            continue;
        }
        if what == "label" && !(value.value.is_empty() || is_name(&value.value)) {
            r.error(value.span.clone(), format!("label value `{}` is not valid", value.value)).hint =
                Some("label values are at most 63 letters, digits, '-', '_' and '.', starting and ending alphanumeric".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_accepts_common_forms() {
        for ok in [
            "0 2 * * *",
            "*/15 * * * *",
            "0 1-5/2 * * mon-fri",
            "30 3 1,15 jan-jun *",
            "@daily",
            "@every 6h",
            "@every 1h30m",
            "CRON_TZ=Europe/Berlin 0 2 * * *",
            "TZ=UTC 0 2 * * *",
            "0 2 29 2 *",
            "0 2 31 jan-mar *",
            "5/15 * * * *",
        ] {
            assert_eq!(validate_cron(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn cron_rejects_with_reason() {
        assert!(
            validate_cron("0 25 * * *")
                .unwrap_err()
                .contains("hour `25` is out of range 0-23")
        );
        assert!(validate_cron("0 2 * *").unwrap_err().contains("4 fields"));
        assert!(
            validate_cron("0 2 * * funday")
                .unwrap_err()
                .contains("day-of-week")
        );
        assert!(validate_cron("*/0 * * * *").unwrap_err().contains("step"));
        assert!(validate_cron("@sometimes").is_err());
        for fast in ["@every 0s", "@every 59s", "@every 0h0m"] {
            assert!(
                validate_cron(fast)
                    .unwrap_err()
                    .contains("more often than once a minute"),
                "{fast}"
            );
        }
        assert!(validate_cron("@every 1h30").is_err());
        assert!(
            validate_cron("0 2 30 2 *")
                .unwrap_err()
                .contains("never falls in month `2`")
        );
        assert!(validate_cron("0 2 31 apr,jun,sep,nov *").is_err());
        // With a day of the week too, cron runs on either: it fires.
        assert_eq!(validate_cron("0 2 30 2 mon"), Ok(()));
        assert!(validate_cron("CRON_TZ= 0 2 * * *").is_err());
        assert!(validate_cron("@every 1x").is_err());
    }

    #[test]
    fn retention_units() {
        assert_eq!(parse_retention("30d"), Some(720));
        assert_eq!(parse_retention("2w"), Some(336));
        assert_eq!(parse_retention("12h"), Some(12));
        assert_eq!(parse_retention("720h0m0s"), Some(720));
        assert_eq!(parse_retention("30 days"), None);
        // Too long to count is too long, not malformed.
        assert_eq!(parse_retention("99999999999999999999d"), Some(u64::MAX));
        assert_eq!(parse_retention("+720h0m0s"), None);
    }

    #[test]
    fn pool_names() {
        assert_eq!(pool_name_from("orders-db").as_deref(), Some("ordersdb"));
        assert_eq!(pool_name_from("1cache").as_deref(), Some("cache"));
        assert_eq!(
            pool_name_from("a-very-long-workload-name").as_deref(),
            Some("averylongwor")
        );
        assert_eq!(pool_name_from("123"), None);
        assert!(!is_pool_name("Orders"));
    }
}
