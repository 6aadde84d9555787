//! The data stateplan compiles with: engine profiles, storage tiers, VM sizes
//! and minijinja templates. Built-ins are embedded in the binary; a platform
//! team's directory (`--templates DIR` / `STATEPLAN_TEMPLATES`) overrides any
//! file by its relative path, or adds engines.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use include_dir::{Dir, include_dir};
use serde::{Deserialize, Serialize};

use crate::diagnostics::{Diagnostic, SourceFile};

static BUILTIN: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");

/// Where a template file comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "path", rename_all = "kebab-case")]
pub enum Origin {
    BuiltIn,
    /// A platform team's file, with its path on disk.
    PlatformTeam(PathBuf),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::BuiltIn => f.write_str("built-in"),
            Origin::PlatformTeam(p) => write!(f, "platform team ({})", p.display()),
        }
    }
}

/// One template or data file.
#[derive(Debug, Clone, Serialize)]
pub struct TemplateFile {
    /// Relative path with `/` separators, e.g. `kubernetes/statefulset.yaml.j2`.
    pub name: String,
    pub origin: Origin,
    /// True when a platform-team file replaces a built-in of the same name.
    pub overrides_builtin: bool,
    #[serde(skip)]
    pub source: String,
}

impl TemplateFile {
    /// How diagnostics name this file: its disk path for platform-team files,
    /// `templates/<name>` for built-ins.
    pub fn display_path(&self) -> String {
        match &self.origin {
            Origin::BuiltIn => format!("templates/{}", self.name),
            Origin::PlatformTeam(p) => p.display().to_string(),
        }
    }
}

/// An engine profile (`engines/<name>/profile.toml`): everything engine-specific
/// that is data rather than a template.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EngineProfile {
    pub name: String,
    pub description: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub default_version: String,
    /// Major version → pinned image.
    pub versions: BTreeMap<String, String>,
    /// The user and group the image's server runs as; also the pod's fsGroup.
    pub uid: u32,
    /// Where the data volume is mounted.
    pub data_path: String,
    pub ports: Vec<EnginePort>,
    /// Default requests when the blueprint gives none.
    pub resources: DefaultResources,
    /// Secrets the engine itself needs (they are always created).
    #[serde(default)]
    pub secrets: Vec<SecretDef>,
    pub quorum: QuorumRules,
    pub pdb: PdbRule,
    pub backup: BackupRule,
    pub security: SecurityRule,
    /// Smallest sensible volume.
    #[serde(default)]
    pub min_storage_gib: Option<u64>,
    /// Why the engine should not run on a network file share (the
    /// `shared-files` tier); `check` warns with it.
    #[serde(default)]
    pub shared_files_warning: Option<String>,
    /// `primary`: the client Service routes to replica 0 (single writable
    /// primary); `all`: to every ready replica (the client discovers the rest).
    #[serde(default = "default_client_routing")]
    pub client_routing: String,
    /// `OrderedReady` when replicas bootstrap from replica 0; `Parallel` when
    /// the cluster only becomes ready once a quorum of pods is up.
    #[serde(default = "default_pod_management")]
    pub pod_management_policy: String,
    /// Time for a clean shutdown (checkpoint, flush) before SIGKILL.
    #[serde(default = "default_grace")]
    pub termination_grace_seconds: u32,
    /// Changes to a running workload `plan` refuses, and why.
    #[serde(default)]
    pub changes: ChangeRules,
}

/// Changes to a running workload the engine cannot take by just rolling
/// out a new StatefulSet; `plan` refuses them with the reason. In the
/// reasons, `{from}` and `{to}` are the live and blueprint values and
/// `{removed}` the pods a scale-down removes (`{removed_hosts}` their DNS
/// names), highest ordinal first.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeRules {
    /// Any change of the replica count: the engine's membership is fixed
    /// when the cluster is created. Refused outright.
    #[serde(default)]
    pub replicas: Option<String>,
    /// A scale-down needs engine steps first (removing members,
    /// decommissioning nodes). Refused until `--allow-replica-change`.
    #[serde(default)]
    pub scale_down: Option<String>,
    /// A change of the major version (the first number): the new server
    /// cannot use the old data files in place. Refused outright.
    #[serde(default)]
    pub major_version: Option<String>,
}

fn default_client_routing() -> String {
    "all".into()
}

fn default_pod_management() -> String {
    "OrderedReady".into()
}

fn default_grace() -> u32 {
    60
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EnginePort {
    pub name: String,
    pub port: u16,
    /// Exposed by the client Service (peer/cluster ports are headless only).
    #[serde(default = "yes")]
    pub client: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultResources {
    pub cpu: String,
    pub memory: String,
}

/// A secret and how to generate it (used by the Azure layer).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SecretDef {
    pub name: String,
    #[serde(default = "default_secret_length")]
    pub length: usize,
    #[serde(default)]
    pub alphabet: Alphabet,
}

fn default_secret_length() -> usize {
    32
}

/// Characters a generated secret is drawn from. Alphanumeric by default,
/// because many engines' config files and connection strings mishandle
/// quotes, `@`, `:` and `/`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Alphabet {
    #[default]
    Alphanumeric,
    Hex,
    /// Base64 of random bytes; `length` is the number of bytes (Kafka cluster IDs, Erlang cookies).
    Base64Bytes,
}

/// Replica-count rules that keep the engine's quorum meaningful.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QuorumRules {
    /// How the engine replicates, in one sentence (for `explain`).
    pub model: String,
    /// Replica counts that are refused, with the reason.
    #[serde(default)]
    pub forbidden: Vec<ForbiddenCount>,
    /// Warn on even counts ≥ 4 (they add cost without tolerating more failures).
    #[serde(default)]
    pub warn_even: bool,
    #[serde(default)]
    pub max: Option<u32>,
    /// How many replicas hold each piece of data, when fewer than all do
    /// (a Kafka partition, a Cassandra token range, a quorum queue). With
    /// more replicas than that, the engine places the copies without
    /// regard to zones, and `explain` says so.
    #[serde(default)]
    pub copies: Option<u32>,
    /// What that means for this engine and what to do about it.
    #[serde(default)]
    pub copies_note: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ForbiddenCount {
    pub replicas: u32,
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PdbRule {
    /// Why one pod at a time may go for this engine.
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BackupRule {
    /// Why the hooks (or their absence) give a consistent snapshot.
    pub reason: String,
    #[serde(default)]
    pub pre: Option<BackupHook>,
    #[serde(default)]
    pub post: Option<BackupHook>,
}

/// A Velero exec hook run in the engine container around the snapshot.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BackupHook {
    pub command: Vec<String>,
    #[serde(default = "default_hook_timeout")]
    pub timeout: String,
    /// `Fail` or `Continue`.
    #[serde(default = "default_on_error")]
    pub on_error: String,
}

fn default_hook_timeout() -> String {
    "2m".into()
}

fn default_on_error() -> String {
    "Fail".into()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityRule {
    /// Whether the pod meets the "restricted" Pod Security Standard.
    pub restricted: bool,
    pub reason: String,
}

/// A storage tier (`azure/storage-tiers.toml`): which Azure disk or share a
/// tier becomes.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TierProfile {
    pub provisioner: String,
    pub sku: String,
    /// The zone-redundant SKU, when Azure has one for this tier.
    #[serde(default)]
    pub zrs_sku: Option<String>,
    pub access_mode: String,
    /// Disks that can only attach to VMs in zones (Premium SSD v2, Ultra).
    #[serde(default)]
    pub zonal_only: bool,
    #[serde(default)]
    pub requires_ultra_ssd: bool,
    /// Provisioned performance (IOPS/MBps set on the class).
    #[serde(default)]
    pub performance: Option<PerformanceProfile>,
    /// Extra StorageClass parameters.
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    #[serde(default)]
    pub mount_options: Vec<String>,
    #[serde(default)]
    pub min_size_gib: u64,
    pub max_size_gib: u64,
    /// Why this tier maps to this SKU (for `explain` and README).
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PerformanceProfile {
    pub default_iops: u64,
    pub default_mbps: u64,
    pub min_iops: u64,
    pub max_iops: u64,
    pub max_iops_per_gib: u64,
    pub min_mbps: u64,
    pub max_mbps: u64,
    /// MBps may be at most this fraction of IOPS (Azure: 0.25 MBps per IOPS).
    pub max_mbps_per_iops: f64,
}

/// A VM size stateplan may pick for a node pool (`azure/vm-sizes.toml`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VmSize {
    pub name: String,
    pub vcpus: u32,
    pub memory_gib: u32,
    /// `general` (4 GiB per vCPU) or `memory` (8 GiB per vCPU).
    pub family: String,
    pub premium_io: bool,
    pub ultra_ssd: bool,
    /// Throughput limits to disks without host caching (Premium SSD v2,
    /// Ultra Disk); `None` when the platform's list does not say.
    #[serde(default)]
    pub max_uncached_iops: Option<u64>,
    #[serde(default)]
    pub max_uncached_mbps: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct VmSizes {
    size: Vec<VmSize>,
}

/// The objects every workload renders, in order (`workload.toml`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadManifest {
    pub objects: Vec<String>,
}

/// All templates and data in effect.
#[derive(Debug, Clone)]
pub struct Catalog {
    files: BTreeMap<String, TemplateFile>,
    engines: BTreeMap<String, Arc<EngineProfile>>,
    aliases: BTreeMap<String, String>,
    pub tiers: BTreeMap<String, TierProfile>,
    pub vm_sizes: Vec<VmSize>,
    pub manifest: WorkloadManifest,
}

/// Files larger than this in a templates directory are not templates.
const MAX_TEMPLATE_BYTES: u64 = 1 << 20;

impl Catalog {
    /// The built-ins, overlaid with `overrides` when given. Every problem
    /// (unreadable file, bad profile) is returned as a diagnostic pointing at
    /// the file.
    pub fn load(overrides: Option<&Path>) -> Result<Catalog, (Vec<Diagnostic>, Vec<SourceFile>)> {
        let mut files = BTreeMap::new();
        collect_builtin(&BUILTIN, &mut files);
        let mut diags = Vec::new();
        if let Some(dir) = overrides {
            if !dir.is_dir() {
                diags.push(
                    Diagnostic::error(format!("templates directory {} does not exist", dir.display()))
                        .hint("pass the platform team's templates folder with --templates DIR or STATEPLAN_TEMPLATES"),
                );
                return Err((diags, Vec::new()));
            }
            collect_dir(dir, dir, &mut files, &mut diags);
        }
        let mut sources = Vec::new();
        let mut engines = BTreeMap::new();
        let mut aliases = BTreeMap::new();
        // Data files are registered as sources so diagnostics can quote them.
        let read_toml = |name: &str, _: &mut Vec<Diagnostic>, sources: &mut Vec<SourceFile>| {
            let f: &TemplateFile = files.get(name)?;
            sources.push(SourceFile::new(f.display_path(), f.source.clone()));
            Some(f.clone())
        };
        for name in files
            .keys()
            .filter(|n| n.starts_with("engines/") && n.ends_with("/profile.toml"))
            .cloned()
            .collect::<Vec<_>>()
        {
            let Some(f) = read_toml(&name, &mut diags, &mut sources) else {
                continue;
            };
            let dir_name = name
                .trim_start_matches("engines/")
                .trim_end_matches("/profile.toml")
                .to_string();
            match toml::from_str::<EngineProfile>(&f.source) {
                Ok(p) => {
                    let before = diags.len();
                    check_profile(&p, &dir_name, &f, &mut diags);
                    let pod = format!("engines/{dir_name}/pod.yaml.j2");
                    if !files.contains_key(&pod) {
                        diags.push(
                            Diagnostic::error(format!("engine `{dir_name}` has no pod template {pod}"))
                                .in_file(f.display_path())
                                .hint("every engine needs a pod.yaml.j2 next to its profile.toml (its containers, volumes and config files); `stateplan templates show engines/postgres/pod.yaml.j2` prints a built-in one to start from"),
                        );
                    }
                    if diags.len() == before {
                        for a in &p.aliases {
                            aliases.insert(a.clone(), p.name.clone());
                        }
                        engines.insert(p.name.clone(), Arc::new(p));
                    }
                }
                Err(e) => diags.push(toml_error(&f, &e)),
            }
        }
        let tiers = match read_toml("azure/storage-tiers.toml", &mut diags, &mut sources) {
            Some(f) => toml::from_str::<BTreeMap<String, TierProfile>>(&f.source)
                .map_err(|e| diags.push(toml_error(&f, &e)))
                .unwrap_or_default(),
            None => BTreeMap::new(),
        };
        for t in crate::blueprint::Tier::ALL {
            if !tiers.contains_key(t.name()) && !diags.iter().any(|d| d.is_error()) {
                diags.push(Diagnostic::error(format!(
                    "azure/storage-tiers.toml has no [{}] tier",
                    t.name()
                )));
            }
        }
        let vm_sizes = match read_toml("azure/vm-sizes.toml", &mut diags, &mut sources) {
            Some(f) => toml::from_str::<VmSizes>(&f.source)
                .map(|v| v.size)
                .map_err(|e| diags.push(toml_error(&f, &e)))
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let manifest = match read_toml("workload.toml", &mut diags, &mut sources) {
            Some(f) => match toml::from_str::<WorkloadManifest>(&f.source) {
                Ok(m) => {
                    let spans = std::cell::OnceCell::new();
                    for (i, o) in m.objects.iter().enumerate() {
                        if !files.contains_key(o) {
                            let d = Diagnostic::error(format!(
                                "workload.toml lists `{o}`, which is not a template"
                            ))
                            .in_file(f.display_path())
                            .hint("see `stateplan templates list` for the templates in effect");
                            let span = spans
                                .get_or_init(|| spans_of::<ManifestSpans>(&f))
                                .as_ref()
                                .and_then(|m| m.objects.get(i).map(toml::Spanned::span));
                            diags.push(at(d, span));
                        }
                    }
                    m
                }
                Err(e) => {
                    diags.push(toml_error(&f, &e));
                    WorkloadManifest {
                        objects: Vec::new(),
                    }
                }
            },
            None => WorkloadManifest {
                objects: Vec::new(),
            },
        };
        if diags.iter().any(Diagnostic::is_error) {
            return Err((diags, sources));
        }
        Ok(Catalog {
            files,
            engines,
            aliases,
            tiers,
            vm_sizes,
            manifest,
        })
    }

    /// Warnings for platform-team files nothing uses: a file overrides the
    /// built-in of the same name, so a misspelt name (`service-clinet`) was
    /// silently ignored. A new file is in use when `workload.toml` lists
    /// it, it belongs to an engine's folder, or another template names it
    /// (an import or include).
    pub fn unused_files(&self) -> Vec<Diagnostic> {
        // Every built-in is in effect, as itself or overridden.
        let builtin: Vec<&str> = self
            .files
            .values()
            .filter(|f| matches!(f.origin, Origin::BuiltIn) || f.overrides_builtin)
            .map(|f| f.name.as_str())
            .collect();
        let templates: Vec<&TemplateFile> = self
            .files
            .values()
            .filter(|f| f.name.ends_with(".j2"))
            .collect();
        self.files
            .values()
            .filter(|f| matches!(f.origin, Origin::PlatformTeam(_)) && !f.overrides_builtin)
            .filter(|f| {
                let engine_file = f
                    .name
                    .strip_prefix("engines/")
                    .and_then(|rest| rest.split_once('/'))
                    .is_some_and(|(engine, file)| {
                        self.engines.contains_key(engine)
                            && matches!(file, "profile.toml" | "pod.yaml.j2")
                    });
                let listed = self.manifest.objects.contains(&f.name);
                let named = templates
                    .iter()
                    .any(|t| t.name != f.name && t.source.contains(f.name.as_str()));
                !(engine_file || listed || named)
            })
            .map(|f| {
                let hint = match crate::blueprint::did_you_mean(&f.name, builtin.iter().copied()) {
                    Some(b) => format!("did you mean `{b}`? A file overrides the built-in of the same name"),
                    None => "a file overrides the built-in of the same name; a new object template must also be listed in workload.toml, a new engine needs engines/<name>/profile.toml".to_string(),
                };
                Diagnostic::warning(format!(
                    "{} is not used: no built-in file has this name and nothing refers to it",
                    f.name
                ))
                .in_file(f.display_path())
                .hint(hint)
            })
            .collect()
    }

    /// Every template and data file in effect, sorted by name.
    pub fn files(&self) -> impl Iterator<Item = &TemplateFile> {
        self.files.values()
    }

    pub fn file(&self, name: &str) -> Option<&TemplateFile> {
        self.files.get(name)
    }

    /// Looks an engine up by name or alias (`redis` → `valkey`).
    pub fn engine(&self, name: &str) -> Option<&Arc<EngineProfile>> {
        let name = self.aliases.get(name).map_or(name, String::as_str);
        self.engines.get(name)
    }

    pub fn engine_names(&self) -> impl Iterator<Item = &str> {
        self.engines.keys().map(String::as_str)
    }

    pub fn engine_names_and_aliases(&self) -> impl Iterator<Item = &str> {
        self.engines
            .keys()
            .chain(self.aliases.keys())
            .map(String::as_str)
    }

    pub fn tier(&self, tier: crate::blueprint::Tier) -> Option<&TierProfile> {
        self.tiers.get(tier.name())
    }
}

/// The checks serde cannot make on an engine profile: its name, its
/// default version, secret names and lengths, and pinned images (caught
/// here at the profile's line, not later in what they end up in).
fn check_profile(p: &EngineProfile, dir_name: &str, f: &TemplateFile, diags: &mut Vec<Diagnostic>) {
    let mut report = |message: String, hint: &str, span: Option<std::ops::Range<usize>>| {
        let d = Diagnostic::error(message)
            .in_file(f.display_path())
            .hint(hint);
        diags.push(at(d, span));
    };
    // Read once, and only if a check fails.
    let spans = std::cell::OnceCell::new();
    let spans = || spans.get_or_init(|| spans_of::<ProfileSpans>(f)).as_ref();
    if p.name != dir_name {
        report(
            format!(
                "engine profile says name = \"{}\" but lives in engines/{dir_name}/",
                p.name
            ),
            "the folder name is the engine name; make them match",
            spans().map(|s| s.name.span()),
        );
    }
    if !p.versions.contains_key(&p.default_version) {
        report(
            format!(
                "default_version \"{}\" is not in [versions]",
                p.default_version
            ),
            "add it to [versions] or pick one that is there",
            spans().map(|s| s.default_version.span()),
        );
    }
    // Secret names become Key Vault secret names and keys of the synced
    // Secret, like the blueprint's own: Key Vault refuses `_` and `.`.
    for (i, secret) in p.secrets.iter().enumerate() {
        if !crate::blueprint::rules::is_dns_label(&secret.name, 63) {
            report(
                format!("secret name `{}` is not valid", secret.name),
                "use lower-case letters, digits and '-' (at most 63): the name becomes a Key Vault secret name (letters, digits and '-' only) and a key of the Kubernetes Secret",
                spans()
                    .and_then(|s| s.secrets.get(i))
                    .map(|s| s.name.span()),
            );
        }
    }
    // A generated password must resist guessing on its own: at least 118
    // bits (20 alphanumeric characters, 30 hex digits, 15 bytes).
    for (i, secret) in p.secrets.iter().enumerate() {
        let (min, unit) = match secret.alphabet {
            Alphabet::Alphanumeric => (20, "characters"),
            Alphabet::Hex => (30, "hex digits"),
            Alphabet::Base64Bytes => (15, "bytes"),
        };
        if secret.length < min {
            report(
                format!(
                    "secret `{}` would be generated with {} {unit}, too few to resist guessing",
                    secret.name, secret.length
                ),
                &format!(
                    "use length = {min} or more (about 118 bits); the built-in engines use 32"
                ),
                spans()
                    .and_then(|s| s.secrets.get(i))
                    .and_then(|s| s.length.as_ref())
                    .map(toml::Spanned::span),
            );
        }
    }
    for (version, image) in &p.versions {
        if !is_pinned(image) {
            report(
                format!("version {version} uses image `{image}` without a pinned tag"),
                "pin an exact version tag (or digest) so every node runs the same build",
                spans().and_then(|s| s.versions.get(version).map(toml::Spanned::span)),
            );
        }
    }
}

/// Whether an image reference names one build: a digest, or a tag other
/// than `latest`.
pub(crate) fn is_pinned(image: &str) -> bool {
    let tag = image
        .rsplit('/')
        .next()
        .and_then(|last| last.split_once(':').map(|(_, t)| t));
    image.contains('@') || tag.is_some_and(|t| !t.is_empty() && t != "latest")
}

/// Where the profile values [`check_profile`] checks are written. Read
/// only when a check fails, so a valid catalog is parsed once.
#[derive(Deserialize)]
struct ProfileSpans {
    name: toml::Spanned<String>,
    default_version: toml::Spanned<String>,
    versions: BTreeMap<String, toml::Spanned<String>>,
    #[serde(default)]
    secrets: Vec<SecretSpans>,
}

/// Where a profile's `[[secrets]]` entry names its secret.
#[derive(Deserialize)]
struct SecretSpans {
    name: toml::Spanned<String>,
    #[serde(default)]
    length: Option<toml::Spanned<usize>>,
}

/// Where `workload.toml` lists each object template.
#[derive(Deserialize)]
struct ManifestSpans {
    objects: Vec<toml::Spanned<String>>,
}

fn spans_of<T: serde::de::DeserializeOwned>(f: &TemplateFile) -> Option<T> {
    toml::from_str(&f.source).ok()
}

/// Points `d` at `span` when there is one.
fn at(d: Diagnostic, span: Option<std::ops::Range<usize>>) -> Diagnostic {
    match span {
        Some(s) => d.at(s),
        None => d,
    }
}

fn toml_error(f: &TemplateFile, e: &toml::de::Error) -> Diagnostic {
    let d = Diagnostic::error(format!("invalid {}: {}", f.name, e.message().trim()))
        .in_file(f.display_path())
        .hint("see the built-in file of the same name (`stateplan templates show NAME`) for the expected shape");
    at(d, e.span())
}

fn collect_builtin(dir: &Dir<'static>, out: &mut BTreeMap<String, TemplateFile>) {
    for f in dir.files() {
        let name = f.path().to_string_lossy().replace('\\', "/");
        if let Some(text) = f.contents_utf8() {
            out.insert(
                name.clone(),
                TemplateFile {
                    name,
                    origin: Origin::BuiltIn,
                    overrides_builtin: false,
                    source: text.to_string(),
                },
            );
        }
    }
    for d in dir.dirs() {
        collect_builtin(d, out);
    }
}

fn collect_dir(
    root: &Path,
    dir: &Path,
    out: &mut BTreeMap<String, TemplateFile>,
    diags: &mut Vec<Diagnostic>,
) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            diags.push(Diagnostic::error(format!(
                "cannot read templates directory {}: {e}",
                dir.display()
            )));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            collect_dir(root, &path, out, diags);
            continue;
        }
        if !(name.ends_with(".j2") || name.ends_with(".toml")) {
            continue;
        }
        let rel = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        let too_big = std::fs::metadata(&path)
            .map(|m| m.len() > MAX_TEMPLATE_BYTES)
            .unwrap_or(false);
        if too_big {
            diags.push(Diagnostic::error(format!(
                "{} is larger than 1 MiB; templates are small text files",
                path.display()
            )));
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(source) => {
                let overrides_builtin = out.get(&rel).is_some_and(|f| f.origin == Origin::BuiltIn);
                out.insert(
                    rel.clone(),
                    TemplateFile {
                        name: rel,
                        origin: Origin::PlatformTeam(path.clone()),
                        overrides_builtin,
                        source,
                    },
                );
            }
            Err(e) => diags.push(Diagnostic::error(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_pinned;

    #[test]
    fn pinned_images() {
        for image in [
            "docker.io/library/postgres:17.5-bookworm",
            "registry.example:5000/team/valkey:8.1.4",
            "valkey/valkey@sha256:0123456789abcdef",
        ] {
            assert!(is_pinned(image), "{image}");
        }
        for image in [
            "docker.io/library/postgres",
            "docker.io/library/postgres:latest",
            // The port is not a tag.
            "registry.example:5000/team/valkey",
            "valkey:",
            "",
        ] {
            assert!(!is_pinned(image), "{image}");
        }
    }
}
