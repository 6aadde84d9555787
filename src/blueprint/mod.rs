//! Stage 1: the blueprint file → a typed, syntactically valid [`Blueprint`].
//!
//! Everything here is independent of engines and templates: engine names and
//! versions are checked against the catalog in `compile`. All problems of a
//! file are collected; the caller gets either a blueprint or the full list.

mod compact;
pub(crate) mod decode;
mod quantity;
pub mod rules;

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use serde::Serialize;
use toml::de::{DeTable, DeValue};

pub use decode::did_you_mean;
pub use quantity::{Quantity, QuantityError};

use crate::diagnostics::{Diagnostic, SourceFile};
use decode::{Reader, Table};

/// The JSON Schema of a blueprint, for editors (`stateplan schema`).
pub const JSON_SCHEMA: &str = include_str!("schema.json");

/// A value with the byte range it came from, so later stages can point at it.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Range<usize>,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Range<usize>) -> Self {
        Spanned { value, span }
    }
}

impl<T: Serialize> Serialize for Spanned<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(s)
    }
}

/// A parsed blueprint.
#[derive(Debug, Clone)]
pub struct Blueprint {
    /// The file it was read from (for diagnostics).
    pub file: SourceFile,
    /// Names the blueprint in ownership labels, the inventory and the apply
    /// lock. Defaults to the file name without extension.
    pub name: Spanned<String>,
    /// `None` when `[target]` is missing or has errors (already reported):
    /// the workloads are still compiled, so their errors are reported with
    /// the target's, but nothing is rendered.
    pub target: Option<Target>,
    /// The workloads without errors.
    pub workloads: Vec<WorkloadSpec>,
    /// The engines named by workloads with errors: compile checks them too,
    /// so a misspelt engine is reported with the workload's other errors.
    pub engines_of_invalid: Vec<Spanned<String>>,
}

/// Where the workloads go: `[target]`.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub subscription: Spanned<String>,
    pub resource_group: Spanned<String>,
    pub cluster: Spanned<String>,
    pub location: Spanned<String>,
    pub key_vault: Spanned<String>,
}

/// Storage performance class; see the README table for the Azure disk each
/// becomes and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tier {
    FastSsd,
    Balanced,
    Standard,
    Ultra,
    SharedFiles,
}

impl Tier {
    pub const ALL: [Tier; 5] = [
        Tier::FastSsd,
        Tier::Balanced,
        Tier::Standard,
        Tier::Ultra,
        Tier::SharedFiles,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Tier::FastSsd => "fast-ssd",
            Tier::Balanced => "balanced",
            Tier::Standard => "standard",
            Tier::Ultra => "ultra",
            Tier::SharedFiles => "shared-files",
        }
    }

    pub fn from_name(s: &str) -> Option<Tier> {
        Tier::ALL.into_iter().find(|t| t.name() == s)
    }
}

/// How replicas survive failures of Azure availability zones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Redundancy {
    ZoneRedundant,
    Zonal,
    None,
}

impl Redundancy {
    pub const ALL: [Redundancy; 3] = [
        Redundancy::ZoneRedundant,
        Redundancy::Zonal,
        Redundancy::None,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Redundancy::ZoneRedundant => "zone-redundant",
            Redundancy::Zonal => "zonal",
            Redundancy::None => "none",
        }
    }

    pub fn from_name(s: &str) -> Option<Redundancy> {
        Redundancy::ALL.into_iter().find(|r| r.name() == s)
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Redundancy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which of the two blueprint forms a workload was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Form {
    Compact,
    Full,
}

/// One workload as written. Optional knobs are `None` when the engine
/// profile's default applies; `compile` fills them in and records why.
#[derive(Debug, Clone, Serialize)]
pub struct WorkloadSpec {
    pub name: Spanned<String>,
    pub form: Form,
    /// The whole definition (compact string or table), for errors that concern
    /// the workload as a whole.
    #[serde(skip)]
    pub span: Range<usize>,
    pub engine: Spanned<String>,
    pub version: Option<Spanned<String>>,
    pub replicas: Spanned<u32>,
    pub storage: Spanned<Quantity>,
    pub tier: Spanned<Tier>,
    pub redundancy: Spanned<Redundancy>,
    pub namespace: Option<Spanned<String>>,
    pub resources: Option<ResourcesSpec>,
    pub backup: BackupSpec,
    pub secrets: Option<Spanned<Vec<Spanned<String>>>>,
    pub labels: BTreeMap<String, Spanned<String>>,
    pub annotations: BTreeMap<String, Spanned<String>>,
    pub node_pool: NodePoolSpec,
    pub disk: DiskSpec,
}

/// `resources = { cpu = "2", memory = "8Gi" }`: requests; limits default to
/// the same memory (no CPU limit, to avoid throttling a database).
#[derive(Debug, Clone, Serialize)]
pub struct ResourcesSpec {
    pub cpu: Option<Spanned<Quantity>>,
    pub memory: Option<Spanned<Quantity>>,
    pub cpu_limit: Option<Spanned<Quantity>>,
    pub memory_limit: Option<Spanned<Quantity>>,
}

/// `backup = { schedule = "0 2 * * *", retain = "30d" }`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BackupSpec {
    pub enabled: Option<Spanned<bool>>,
    pub schedule: Option<Spanned<String>>,
    pub retain: Option<Spanned<rules::Retention>>,
    pub storage_location: Option<Spanned<String>>,
}

/// `node_pool = { ... }`: overrides of the AKS agent pool stateplan sizes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NodePoolSpec {
    pub name: Option<Spanned<String>>,
    pub vm_size: Option<Spanned<String>>,
    pub zones: Option<Spanned<Vec<Spanned<String>>>>,
    pub count: Option<Spanned<i64>>,
    pub min_count: Option<Spanned<i64>>,
    pub max_count: Option<Spanned<i64>>,
    pub os_disk_size_gb: Option<Spanned<i64>>,
    pub max_pods: Option<Spanned<i64>>,
}

/// `disk = { iops = 6000, throughput_mbps = 250 }` for tiers with provisioned
/// performance (fast-ssd, ultra).
#[derive(Debug, Clone, Default, Serialize)]
pub struct DiskSpec {
    pub iops: Option<Spanned<i64>>,
    pub throughput_mbps: Option<Spanned<i64>>,
}

const TOP_KEYS: &[&str] = &["name", "target", "workloads"];
const TARGET_KEYS: &[&str] = &[
    "subscription",
    "resource_group",
    "cluster",
    "location",
    "key_vault",
];
/// Keys of a full-form workload table; `schema.json` must list the same.
pub const WORKLOAD_KEYS: &[&str] = &[
    "engine",
    "version",
    "replicas",
    "storage",
    "tier",
    "redundancy",
    "namespace",
    "resources",
    "backup",
    "secrets",
    "labels",
    "annotations",
    "node_pool",
    "disk",
];
const RESOURCES_KEYS: &[&str] = &["cpu", "memory", "cpu_limit", "memory_limit"];
const BACKUP_KEYS: &[&str] = &["enabled", "schedule", "retain", "storage_location"];
const NODE_POOL_KEYS: &[&str] = &[
    "name",
    "vm_size",
    "zones",
    "count",
    "min_count",
    "max_count",
    "os_disk_size_gb",
    "max_pods",
];
const DISK_KEYS: &[&str] = &["iops", "throughput_mbps"];

/// Largest blueprint we read. Far above any real one; stops a stray binary
/// or generated file from eating memory.
pub const MAX_FILE_BYTES: usize = 16 << 20;

/// Parses and validates a blueprint. Errors and warnings are returned
/// together. The blueprint is `Some` whenever `[target]` is usable; workloads
/// with errors are left out of it, so `compile` can still report the problems
/// of the others. Callers must check the diagnostics for errors before using
/// the result for anything but more diagnostics.
pub fn parse(path: &str, text: &str) -> (Option<Blueprint>, Vec<Diagnostic>) {
    let file = SourceFile::new(path, text);
    let mut r = Reader::new();
    let bp = parse_inner(&mut r, &file);
    let diags: Vec<Diagnostic> = r.diags.into_iter().map(|d| d.in_file(path)).collect();
    (bp, diags)
}

/// Reads a blueprint file's bytes into text, with the errors users hit:
/// binary files, non-UTF-8, oversized input.
pub fn decode_bytes(path: &str, bytes: &[u8]) -> Result<String, Box<Diagnostic>> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(Diagnostic::error(format!(
            "{path} is {} bytes; a blueprint may be at most {MAX_FILE_BYTES} bytes",
            bytes.len()
        ))
        .in_file(path)
        .hint("is this the right file? blueprints are short TOML files")
        .into());
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let offset = e.valid_up_to();
        at_byte(
            Diagnostic::error(format!(
                "{path} is not UTF-8 text (invalid byte at offset {offset})"
            ))
            .in_file(path)
            .hint("blueprints are TOML files, which must be UTF-8"),
            bytes,
            offset,
        )
    })?;
    if let Some(offset) = text.find('\0') {
        return Err(at_byte(
            Diagnostic::error(format!(
                "{path} contains NUL bytes; it looks like a binary file"
            ))
            .in_file(path)
            .hint("pass the blueprint's .toml file"),
            bytes,
            offset,
        )
        .into());
    }
    Ok(text.strip_prefix('\u{feff}').unwrap_or(text).to_string())
}

/// Line and column of byte `offset` in text that cannot be shown (not
/// UTF-8 after that point, or binary): the position without a snippet.
fn at_byte(mut d: Diagnostic, bytes: &[u8], offset: usize) -> Diagnostic {
    let before = &bytes[..offset.min(bytes.len())];
    let start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    d.line = Some(before.iter().filter(|&&b| b == b'\n').count() + 1);
    d.column = Some(String::from_utf8_lossy(&before[start..]).chars().count() + 1);
    d
}

fn parse_inner(r: &mut Reader, file: &SourceFile) -> Option<Blueprint> {
    let text = file.text.as_str();
    if text.trim().is_empty() {
        r.error(0..0, "the blueprint is empty").hint =
            Some("run `stateplan init` for a commented starter blueprint".into());
        return None;
    }
    let (root, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        for e in errors {
            let mut span = e.span().unwrap_or(0..0);
            // In a CRLF file, a string left open at the end of a line is
            // reported twice: at the `\r` (not allowed in a string) and
            // after it (no closing quote). The second says what is wrong.
            if text.get(span.start..span.start + 2) == Some("\r\n")
                && e.message().contains("non-double-quote visible characters")
            {
                continue;
            }
            // ...and the end of that line is its `\r`, as an LF file's is
            // its `\n`: same line and column either way.
            if span.start > 0 && text.get(span.start - 1..span.start + 1) == Some("\r\n") {
                span = span.start - 1..span.end.max(span.start);
            }
            let message = e.message().trim().trim_end_matches('.').to_string();
            r.error(span, format!("invalid TOML: {message}")).hint =
                Some(toml_hint(&message).into());
        }
        return None;
    }
    let root_span = root.span();
    let root_value = toml::Spanned::new(root_span, DeValue::Table(root.into_inner()));
    let top = r.table(&root_value, "the blueprint", TOP_KEYS)?;

    let name = match r.opt_str(&top, "name") {
        Some(n) => {
            rules::check_dns_label(r, &n, "blueprint name", 40);
            n
        }
        // The name marks every object the blueprint owns (plan and prune go
        // by it), so standard input, which has no file name to take it
        // from, must say it rather than share a default with other input.
        None if file.path == "-" => {
            r.error(0..0, "a blueprint read from standard input needs a `name`")
                .hint = Some("add name = \"orders\" at the top: the name marks the objects this blueprint owns, and without a file name there is nothing to derive it from".into());
            Spanned::new("blueprint".to_string(), 0..0)
        }
        None => Spanned::new(default_name(&file.path), 0..0),
    };

    let target = match top.get("target") {
        Some(v) => parse_target(r, v),
        None => {
            r.error(0..0, "the blueprint has no [target] section").hint = Some(
                "add [target] with subscription, resource_group, cluster, location and key_vault"
                    .into(),
            );
            None
        }
    };

    let mut workloads = Vec::new();
    let mut engines_of_invalid = Vec::new();
    match top.get("workloads") {
        Some(v) => {
            if let DeValue::Table(table) = v.get_ref() {
                if table.is_empty() {
                    r.error(v.span(), "[workloads] is empty").hint =
                        Some("add a workload, e.g. `cache = \"valkey 3 replicas 20Gi balanced zone-redundant\"`".into());
                }
                for (key, value) in table {
                    let name = Spanned::new(key.get_ref().to_string(), key.span());
                    match parse_workload(r, text, name, value) {
                        Ok(w) => workloads.push(w),
                        Err(engine) => engines_of_invalid.extend(engine),
                    }
                }
            } else {
                r.error(v.span(), "[workloads] must be a table").hint = Some(
                    "write [workloads] on its own line, then one `name = \"...\"` line per workload".into(),
                );
            }
        }
        None => {
            r.error(0..0, "the blueprint has no [workloads] section")
                .hint = Some(
                "add e.g.\n[workloads]\ncache = \"valkey 3 replicas 20Gi balanced zone-redundant\""
                    .into(),
            );
        }
    }

    Some(Blueprint {
        file: file.clone(),
        name,
        target,
        workloads,
        engines_of_invalid,
    })
}

/// Derives a blueprint name from a path: `blueprints/orders-db.toml` →
/// `orders-db`, lower-cased with anything outside `[a-z0-9-]` turned to `-`.
fn default_name(path: &str) -> String {
    let stem = std::path::Path::new(path)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("blueprint");
    let mut name: String = stem
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    name = name.trim_matches('-').chars().take(40).collect();
    let name = name.trim_matches('-').to_string();
    if name.is_empty() {
        "blueprint".into()
    } else {
        name
    }
}

fn toml_hint(message: &str) -> &'static str {
    if message.contains("duplicate key") {
        "each key may appear once per table; remove or rename the repeated one"
    } else if message.contains("string") || message.contains("quote") {
        "text values need quotes: key = \"value\""
    } else if message.contains("table") {
        "a [table] header may appear only once; put all its keys under one header"
    } else {
        "see https://toml.io for the syntax; a value is written key = value"
    }
}

fn parse_target(r: &mut Reader, v: &decode::Value<'_>) -> Option<Target> {
    let t = r.table(v, "[target]", TARGET_KEYS)?;
    let subscription = r.req_str(
        &t,
        "subscription",
        "\"00000000-0000-0000-0000-000000000000\"",
    );
    let resource_group = r.req_str(&t, "resource_group", "\"rg-data-prod\"");
    let cluster = r.req_str(&t, "cluster", "\"aks-prod\"");
    let location = r.req_str(&t, "location", "\"westeurope\"");
    let key_vault = r.req_str(&t, "key_vault", "\"kv-data-prod\"");
    if let Some(s) = &subscription {
        rules::check_subscription(r, s);
    }
    if let Some(s) = &resource_group {
        rules::check_resource_group(r, s);
    }
    if let Some(s) = &cluster {
        rules::check_cluster_name(r, s);
    }
    if let Some(s) = &location {
        rules::check_location(r, s);
    }
    if let Some(s) = &key_vault {
        rules::check_key_vault(r, s);
    }
    Some(Target {
        subscription: subscription?,
        resource_group: resource_group?,
        cluster: cluster?,
        location: location?,
        key_vault: key_vault?,
    })
}

/// One workload, or — when it has errors — the engine it names, if any.
fn parse_workload(
    r: &mut Reader,
    text: &str,
    name: Spanned<String>,
    value: &decode::Value<'_>,
) -> Result<WorkloadSpec, Option<Spanned<String>>> {
    let name_ok = rules::check_workload_name(r, &name);
    let w = match value.get_ref() {
        DeValue::String(s) => compact::parse(
            r,
            name,
            s,
            value.span(),
            string_body_offset(text, value.span(), s),
        ),
        DeValue::Table(_) => parse_full(r, name, value),
        other => {
            r.error(
                value.span(),
                format!(
                    "workload `{}` must be a string or a table, found {}",
                    name.value,
                    decode::type_name(other)
                ),
            )
            .hint = Some(format!(
                "compact: {} = \"postgres 3 replicas 200Gi fast-ssd zone-redundant\", or a [workloads.{}] table",
                name.value, name.value
            ));
            Err(None)
        }
    };
    match w {
        Ok(w) if !name_ok => Err(Some(w.engine)),
        w => w,
    }
}

/// The offset of the first character inside the quotes when the source spells
/// the string exactly (no escapes), so columns of tokens inside it are exact.
fn string_body_offset(text: &str, span: Range<usize>, value: &str) -> Option<usize> {
    let raw = text.get(span.clone())?;
    let body = raw
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .or_else(|| raw.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')))?;
    (body == value).then_some(span.start + 1)
}

fn parse_full(
    r: &mut Reader,
    name: Spanned<String>,
    value: &decode::Value<'_>,
) -> Result<WorkloadSpec, Option<Spanned<String>>> {
    let what = format!("[workloads.{}]", name.value);
    let Some(t) = r.table(value, what.clone(), WORKLOAD_KEYS) else {
        return Err(None);
    };
    let engine = r.req_str(&t, "engine", "\"postgres\"");
    let version = r.opt_str(&t, "version");
    let replicas = r
        .opt_int(&t, "replicas", 1, 99)
        .map(|s| Spanned::new(s.value as u32, s.span));
    if replicas.is_none() && t.get("replicas").is_none() {
        r.error(
            t.span.start..t.span.start + 1,
            format!("{what} is missing required key `replicas`"),
        )
        .hint = Some("add `replicas = 3` (1 for development, 3 for high availability)".into());
    }
    let storage = match r.req_str(&t, "storage", "\"100Gi\"") {
        Some(s) => rules::storage(r, &s),
        None => None,
    };
    let tier = match r.req_str(&t, "tier", "\"balanced\"") {
        Some(s) => rules::tier(r, &s),
        None => None,
    };
    let redundancy = match r.req_str(&t, "redundancy", "\"zone-redundant\"") {
        Some(s) => rules::redundancy(r, &s),
        None => None,
    };
    let namespace = r.opt_str(&t, "namespace");
    if let Some(ns) = &namespace {
        rules::check_dns_label(r, ns, "namespace", 63);
    }
    let resources = t
        .get("resources")
        .and_then(|v| parse_resources(r, v, &what));
    let backup = match t.get("backup") {
        Some(v) => parse_backup(r, v, &what).unwrap_or_default(),
        None => BackupSpec::default(),
    };
    let secrets = r.opt_str_list(&t, "secrets");
    if let Some(list) = &secrets {
        rules::check_secret_names(r, &name, list);
    }
    let labels = r.opt_str_map(&t, "labels");
    rules::check_labels(r, &labels, "label");
    let annotations = r.opt_str_map(&t, "annotations");
    rules::check_labels(r, &annotations, "annotation");
    let node_pool = match t.get("node_pool") {
        Some(v) => parse_node_pool(r, v, &what).unwrap_or_default(),
        None => NodePoolSpec::default(),
    };
    let disk = match t.get("disk") {
        Some(v) => parse_disk(r, v, &what).unwrap_or_default(),
        None => DiskSpec::default(),
    };
    let (Some(engine), Some(replicas), Some(storage), Some(tier), Some(redundancy)) =
        (engine.clone(), replicas, storage, tier, redundancy)
    else {
        // A workload with errors still names its engine, for compile to check.
        return Err(engine);
    };
    Ok(WorkloadSpec {
        name,
        form: Form::Full,
        span: t.span.clone(),
        engine,
        version,
        replicas,
        storage,
        tier,
        redundancy,
        namespace,
        resources,
        backup,
        secrets,
        labels,
        annotations,
        node_pool,
        disk,
    })
}

fn parse_resources(r: &mut Reader, v: &decode::Value<'_>, what: &str) -> Option<ResourcesSpec> {
    let t: Table<'_, '_> = r.table(v, format!("`resources` of {what}"), RESOURCES_KEYS)?;
    let mut q = |key: &str| {
        let s = r.opt_str_or_number(&t, key)?;
        rules::quantity(r, &s, key)
    };
    Some(ResourcesSpec {
        cpu: q("cpu"),
        memory: q("memory"),
        cpu_limit: q("cpu_limit"),
        memory_limit: q("memory_limit"),
    })
}

fn parse_backup(r: &mut Reader, v: &decode::Value<'_>, what: &str) -> Option<BackupSpec> {
    let t = r.table(v, format!("`backup` of {what}"), BACKUP_KEYS)?;
    let enabled = r.opt_bool(&t, "enabled");
    let schedule = r.opt_str(&t, "schedule");
    if let Some(s) = &schedule {
        rules::check_cron(r, s);
    }
    let retain = r
        .opt_str(&t, "retain")
        .and_then(|s| rules::retention(r, &s));
    let storage_location = r.opt_str(&t, "storage_location");
    if let Some(s) = &storage_location {
        rules::check_dns_subdomain(r, s, "backup storage location");
    }
    Some(BackupSpec {
        enabled,
        schedule,
        retain,
        storage_location,
    })
}

fn parse_node_pool(r: &mut Reader, v: &decode::Value<'_>, what: &str) -> Option<NodePoolSpec> {
    let t = r.table(v, format!("`node_pool` of {what}"), NODE_POOL_KEYS)?;
    let name = r.opt_str(&t, "name");
    if let Some(n) = &name {
        rules::check_pool_name(r, n);
    }
    let vm_size = r.opt_str(&t, "vm_size");
    if let Some(s) = &vm_size {
        rules::check_vm_size(r, s);
    }
    let zones = r.opt_str_list(&t, "zones");
    if let Some(z) = &zones {
        rules::check_zones(r, z);
    }
    let count = r.opt_int(&t, "count", 1, 1000);
    let min_count = r.opt_int(&t, "min_count", 1, 1000);
    let max_count = r.opt_int(&t, "max_count", 1, 1000);
    match (&min_count, &max_count) {
        (Some(min), Some(max)) if min.value > max.value => {
            r.error(
                min.span.start..max.span.end,
                format!(
                    "min_count ({}) is larger than max_count ({})",
                    min.value, max.value
                ),
            )
            .hint = Some("the autoscaler range needs min_count <= max_count".into());
        }
        (Some(m), None) | (None, Some(m)) => {
            r.error(
                m.span.clone(),
                "the autoscaler needs both min_count and max_count",
            )
            .hint =
                Some("set both, e.g. min_count = 3, max_count = 6; or set a fixed `count`".into());
        }
        _ => {}
    }
    if let (Some(c), Some(_)) = (&count, &min_count) {
        r.error(
            c.span.clone(),
            "`count` and `min_count`/`max_count` exclude each other",
        )
        .hint = Some(
            "use `count` for a fixed size, or min_count/max_count for the cluster autoscaler"
                .into(),
        );
    }
    let os_disk_size_gb = r.opt_int(&t, "os_disk_size_gb", 30, 2048);
    let max_pods = r.opt_int(&t, "max_pods", 10, 250);
    Some(NodePoolSpec {
        name,
        vm_size,
        zones,
        count,
        min_count,
        max_count,
        os_disk_size_gb,
        max_pods,
    })
}

fn parse_disk(r: &mut Reader, v: &decode::Value<'_>, what: &str) -> Option<DiskSpec> {
    let t = r.table(v, format!("`disk` of {what}"), DISK_KEYS)?;
    Some(DiskSpec {
        iops: r.opt_int(&t, "iops", 100, 400_000),
        throughput_mbps: r.opt_int(&t, "throughput_mbps", 1, 10_000),
    })
}

impl Reader {
    /// Quantities may be written as strings or bare numbers (`cpu = 2`).
    fn opt_str_or_number(&mut self, t: &Table<'_, '_>, key: &str) -> Option<Spanned<String>> {
        let v = t.get(key)?;
        match v.get_ref() {
            DeValue::Integer(i) => Some(Spanned::new(i.as_str().replace('_', ""), v.span())),
            DeValue::Float(f) => Some(Spanned::new(f.as_str().to_string(), v.span())),
            _ => self.str_value(v, &format!("`{key}`")),
        }
    }
}
