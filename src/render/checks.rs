//! Checks on template output: guard rails a platform team's template cannot
//! switch off. These run on every render; strict schema validation
//! ([`schema`]) runs when a platform team's templates are in use.

use serde_json::Value;

use super::object::Wave;
use super::strict;
use crate::compile::{LABEL_BLUEPRINT, MANAGED_BY, Workload};
use crate::diagnostics::{Diagnostic, pointer_token};

const FRAGMENT_KEYS: &[&str] = &["containers", "initContainers", "volumes", "configFiles"];

/// At most this many schema violations are listed per object: a template
/// indented one level wrong can make every field below it unknown.
const MAX_SCHEMA_ERRORS: usize = 10;

fn err(template: &str, message: String, hint: &str) -> Diagnostic {
    Diagnostic::error(format!("template {template}: {message}")).hint(hint)
}

/// The engine's pod fragment against the definitions its lists end up as
/// in the StatefulSet, so that a mistake is reported in the engine's template
/// rather than in the StatefulSet's.
pub(super) fn pod_fragment_schema(
    v: &Value,
    validator: &strict::Validator,
    template: &str,
    out: &mut Vec<Diagnostic>,
) {
    let mut violations = Vec::new();
    for (key, definition) in [
        ("containers", "io.k8s.api.core.v1.Container"),
        ("initContainers", "io.k8s.api.core.v1.Container"),
        ("volumes", "io.k8s.api.core.v1.Volume"),
    ] {
        let items = v.get(key).and_then(Value::as_array).into_iter().flatten();
        for (i, item) in items.enumerate() {
            if let Err(errors) = validator.validate_definition(definition, item) {
                violations.extend(errors.into_iter().map(|e| match e.strip_prefix("/: ") {
                    // About the item itself.
                    Some(message) => format!("/{key}/{i}: {message}"),
                    None => format!("/{key}/{i}{e}"),
                }));
            }
        }
    }
    report_schema(
        violations,
        "the pod's containers and volumes",
        template,
        out,
    );
}

/// The object as the API server would take it with strict field validation
/// (unknown fields, types, required fields), per [`strict::Validator`].
pub(super) fn schema(
    v: &Value,
    validator: &strict::Validator,
    template: &str,
    out: &mut Vec<Diagnostic>,
) {
    let Err(violations) = validator.validate(v) else {
        return;
    };
    let s = |p: &str| at(v, p).and_then(Value::as_str).unwrap_or("?");
    let object = match at(v, "/metadata/namespace").and_then(Value::as_str) {
        Some(ns) => format!("{} {ns}/{}", s("/kind"), s("/metadata/name")),
        None => format!("{} {}", s("/kind"), s("/metadata/name")),
    };
    report_schema(violations, &object, template, out);
}

/// One diagnostic per violation, each with the pointer of its field.
fn report_schema(violations: Vec<String>, object: &str, template: &str, out: &mut Vec<Diagnostic>) {
    if violations.is_empty() {
        return;
    }
    let hint = format!(
        "stateplan checks what a platform team's templates render against the schemas of Kubernetes {} and of the External Secrets (v1) and Velero (v1) resources, as the API server does with strict field validation; check the field's name and indentation in the template",
        strict::KUBERNETES_VERSION
    );
    let total = violations.len();
    for violation in violations.into_iter().take(MAX_SCHEMA_ERRORS) {
        // Violations read "<pointer>: <message>"; "/" is the object itself,
        // which has the pointer "".
        let pointer = violation.split_once(": ").map_or("", |(p, _)| p);
        let pointer = pointer.trim_end_matches('/').to_owned();
        out.push(
            err(
                template,
                format!("{object} would be rejected by the API server: {violation}"),
                &hint,
            )
            .pointer(pointer),
        );
    }
    if total > MAX_SCHEMA_ERRORS {
        out.push(err(
            template,
            format!(
                "{object}: {} more schema violations not listed",
                total - MAX_SCHEMA_ERRORS
            ),
            &hint,
        ));
    }
}

/// The engine's pod fragment: a mapping with at least one container.
pub(super) fn pod_fragment(v: &Value, w: &Workload, template: &str, out: &mut Vec<Diagnostic>) {
    let Some(map) = v.as_object() else {
        out.push(
            err(
                template,
                "must render a YAML mapping".into(),
                "start with `containers:`",
            )
            .pointer(""),
        );
        return;
    };
    for k in map.keys() {
        if !FRAGMENT_KEYS.contains(&k.as_str()) {
            out.push(
                err(
                    template,
                    format!("unknown key `{k}`"),
                    "a pod fragment has containers, initContainers, volumes and configFiles",
                )
                .pointer(format!("/{}", pointer_token(k))),
            );
        }
    }
    match map.get("containers").and_then(Value::as_array) {
        Some(c) if !c.is_empty() => {}
        _ => out.push(
            err(
                template,
                "renders no containers".into(),
                "list the engine's container under `containers:`",
            )
            .pointer("/containers"),
        ),
    }
    if let Some(files) = map.get("configFiles") {
        let ok = files
            .as_object()
            .is_some_and(|m| m.values().all(Value::is_string));
        if !ok {
            out.push(
                err(
                    template,
                    "configFiles must map file names to text".into(),
                    "write `configFiles: {name.conf: |\\n  ...}`",
                )
                .pointer("/configFiles"),
            );
        }
    }
    // The containers are checked here too, so a problem is reported
    // against the engine's template that wrote it rather than the
    // StatefulSet template they end up in. Pod-level settings come from the
    // object template and are checked on the StatefulSet.
    let mut violations = Vec::new();
    for (ptr, c) in containers(v, "") {
        unpinned_image(c, &ptr, template, out);
        let mut found = Vec::new();
        container_violations(c, None, w.engine.security.restricted, &mut found);
        violations.extend(found.into_iter().map(|m| (m, ptr.clone())));
    }
    standard_violations(violations, w.engine.security.restricted, template, out);
}

/// A Pod Security violation, and the pointer of the container (or pod) it
/// is in.
type Violation = (String, String);

/// A pod's (or pod fragment's) containers and init containers, each with
/// its JSON pointer (under `base`, the pod's).
fn containers<'v>(pod: &'v Value, base: &str) -> Vec<(String, &'v Value)> {
    ["containers", "initContainers"]
        .iter()
        .flat_map(|k| {
            let items = pod.get(*k).and_then(Value::as_array).into_iter().flatten();
            items
                .enumerate()
                .map(move |(i, c)| (format!("{base}/{k}/{i}"), c))
        })
        .collect()
}

fn unpinned_image(c: &Value, ptr: &str, template: &str, out: &mut Vec<Diagnostic>) {
    let cname = c.get("name").and_then(Value::as_str).unwrap_or("?");
    let image = c.get("image").and_then(Value::as_str).unwrap_or("");
    if !crate::catalog::is_pinned(image) {
        out.push(
            err(
                template,
                format!("container {cname} uses image `{image}` without a pinned tag"),
                "pin an exact version tag (or digest) so every node runs the same build",
            )
            .pointer(format!("{ptr}/image")),
        );
    }
}

/// What a pod's securityContext gives containers that do not set it.
struct PodDefaults<'a> {
    non_root: bool,
    seccomp: Option<&'a str>,
}

/// Capabilities the baseline standard lets a container add.
const BASELINE_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// A container's violations of the baseline Pod Security Standard, and of
/// the restricted one when `restricted`. With no pod (a pod fragment),
/// only what no pod-level setting can make right.
fn container_violations(
    c: &Value,
    pod: Option<&PodDefaults>,
    restricted: bool,
    violations: &mut Vec<String>,
) {
    let cname = c.get("name").and_then(Value::as_str).unwrap_or("?");
    let sc = c.get("securityContext");
    let get = |p: &str| sc.and_then(|s| at(s, p));
    if restricted && get("/allowPrivilegeEscalation").and_then(Value::as_bool) != Some(false) {
        violations.push(format!(
            "container {cname}: allowPrivilegeEscalation is not false"
        ));
    }
    if get("/privileged").and_then(Value::as_bool) == Some(true) {
        violations.push(format!("container {cname}: privileged"));
    }
    let drops_all = get("/capabilities/drop")
        .and_then(Value::as_array)
        .is_some_and(|d| d.iter().any(|x| x == "ALL"));
    if restricted && !drops_all {
        violations.push(format!("container {cname}: capabilities.drop lacks ALL"));
    }
    for cap in get("/capabilities/add")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let allowed = if restricted {
            cap == "NET_BIND_SERVICE"
        } else {
            cap.as_str()
                .is_some_and(|c| BASELINE_CAPABILITIES.contains(&c))
        };
        if !allowed {
            let cap = cap.as_str().map_or_else(|| cap.to_string(), str::to_string);
            violations.push(format!("container {cname}: adds capability {cap}"));
        }
    }
    if restricted {
        let non_root = get("/runAsNonRoot")
            .and_then(Value::as_bool)
            .or(pod.map(|p| p.non_root));
        if non_root == Some(false) {
            violations.push(format!("container {cname}: runAsNonRoot is not true"));
        }
        if get("/runAsUser").and_then(Value::as_u64) == Some(0) {
            violations.push(format!("container {cname}: runAsUser is 0"));
        }
    }
    if get("/procMount")
        .and_then(Value::as_str)
        .is_some_and(|m| m != "Default")
    {
        violations.push(format!("container {cname}: procMount is not Default"));
    }
    context_violations(&format!("container {cname}"), sc, violations);
    for port in c
        .get("ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(h) = port.get("hostPort").filter(|h| h.as_u64() != Some(0)) {
            violations.push(format!("container {cname}: hostPort {h}"));
        }
    }
    // Restricted: RuntimeDefault or Localhost, here or from the pod.
    // Baseline: anything but an explicit Unconfined.
    let confined = |s: Option<&str>| matches!(s, Some("RuntimeDefault" | "Localhost"));
    let own = get("/seccompProfile/type").and_then(Value::as_str);
    let unconfined = if restricted {
        match (own, pod) {
            (Some(s), _) => !confined(Some(s)),
            (None, Some(p)) => !confined(p.seccomp),
            (None, None) => false,
        }
    } else {
        own.or(pod.and_then(|p| p.seccomp)) == Some("Unconfined")
    };
    if unconfined {
        violations.push(format!(
            "container {cname}: seccompProfile is not RuntimeDefault"
        ));
    }
}

/// SELinux types the baseline standard allows.
const SELINUX_TYPES: &[&str] = &[
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

/// Sysctls the baseline standard counts as safe (Kubernetes 1.33).
const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];

/// Volume types the restricted standard allows.
const RESTRICTED_VOLUMES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// The settings a pod and a container security context share: SELinux,
/// AppArmor, Windows host processes.
fn context_violations(who: &str, sc: Option<&Value>, violations: &mut Vec<String>) {
    let get = |p: &str| sc.and_then(|s| at(s, p));
    if let Some(se) = get("/seLinuxOptions") {
        let ty = se.get("type").and_then(Value::as_str).unwrap_or("");
        if !SELINUX_TYPES.contains(&ty) {
            violations.push(format!("{who}: seLinuxOptions.type {ty}"));
        }
        for f in ["user", "role"] {
            if se
                .get(f)
                .and_then(Value::as_str)
                .is_some_and(|v| !v.is_empty())
            {
                violations.push(format!("{who}: seLinuxOptions.{f} is set"));
            }
        }
    }
    if get("/appArmorProfile/type").and_then(Value::as_str) == Some("Unconfined") {
        violations.push(format!("{who}: appArmorProfile is Unconfined"));
    }
    if get("/windowsOptions/hostProcess").and_then(Value::as_bool) == Some(true) {
        violations.push(format!("{who}: windowsOptions.hostProcess is true"));
    }
}

/// Pod-level rules: host namespaces, volume types, security context,
/// sysctls.
fn pod_violations(pod: &Value, restricted: bool, violations: &mut Vec<String>) {
    for key in ["hostNetwork", "hostPID", "hostIPC"] {
        if pod.get(key).and_then(Value::as_bool) == Some(true) {
            violations.push(format!("{key} is true"));
        }
    }
    for vol in pod
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = vol.get("name").and_then(Value::as_str).unwrap_or("?");
        let kinds = vol
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k.as_str());
        let allowed = |k: &str| {
            k == "name" || (!restricted && k != "hostPath") || RESTRICTED_VOLUMES.contains(&k)
        };
        for kind in kinds.filter(|k| !allowed(k)) {
            violations.push(if kind == "hostPath" {
                format!("volume {name} is a hostPath")
            } else {
                format!("volume {name} is of type {kind}, which is not allowed")
            });
        }
    }
    let sc = pod.get("securityContext");
    if restricted && sc.and_then(|s| s.get("runAsUser")).and_then(Value::as_u64) == Some(0) {
        violations.push("pod runAsUser is 0".into());
    }
    context_violations("pod", sc, violations);
    for sysctl in sc
        .and_then(|s| s.get("sysctls"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = sysctl.get("name").and_then(Value::as_str).unwrap_or("?");
        if !SAFE_SYSCTLS.contains(&name) {
            violations.push(format!("pod sysctl {name} is not a safe sysctl"));
        }
    }
}

/// Reports violations of the standard the workload's namespace enforces
/// (restricted, or baseline for an engine whose profile says it cannot
/// run restricted): the API server would reject the pods.
fn standard_violations(
    violations: Vec<Violation>,
    restricted: bool,
    template: &str,
    out: &mut Vec<Diagnostic>,
) {
    let (standard, hint) = if restricted {
        (
            "restricted",
            "use the container_security() macro; if the engine truly cannot run restricted, set [security] restricted = false in its profile and say why",
        )
    } else {
        (
            "baseline",
            "the engine's namespace enforces the baseline standard (its profile says restricted = false); the API server rejects pods that break it",
        )
    };
    for (v, at) in violations {
        out.push(
            err(
                template,
                format!("pod violates the {standard} Pod Security Standard: {v}"),
                hint,
            )
            .pointer(at),
        );
    }
}

/// One rendered object.
pub(super) fn object(v: &Value, w: &Workload, template: &str, out: &mut Vec<Diagnostic>) {
    let s = |p: &str| at(v, p).and_then(Value::as_str);
    let (Some(api_version), Some(kind)) = (s("/apiVersion"), s("/kind")) else {
        out.push(
            err(
                template,
                "renders an object without apiVersion and kind".into(),
                "every document needs apiVersion, kind and metadata.name",
            )
            .pointer(""),
        );
        return;
    };
    if kind == "Secret" {
        out.push(err(
            template,
            "renders a Secret".into(),
            "secret values never go into manifests: add the secret to the workload's `secrets` so it is generated in Key Vault and synced by External Secrets",
        ).pointer("/kind"));
        return;
    }
    if Wave::for_kind(kind).is_none() {
        out.push(err(
            template,
            format!("renders {kind} ({api_version}), which stateplan does not know how to order and wait for"),
            "supported kinds: Namespace, StorageClass, ServiceAccount, ConfigMap, SecretStore, ExternalSecret, Service, PodDisruptionBudget, StatefulSet, Schedule",
        ).pointer("/kind"));
        return;
    }
    let name = s("/metadata/name").unwrap_or("");
    if !is_dns_subdomain(name) {
        out.push(
            err(
                template,
                format!("{kind} has invalid metadata.name `{name}`"),
                "names are lower-case DNS subdomains (letters, digits, '-', '.')",
            )
            .pointer("/metadata/name"),
        );
    }
    let cluster_scoped = matches!(kind, "Namespace" | "StorageClass");
    match (cluster_scoped, s("/metadata/namespace")) {
        (true, Some(_)) => out.push(
            err(
                template,
                format!("{kind} {name} is cluster-scoped but has a namespace"),
                "remove metadata.namespace",
            )
            .pointer("/metadata/namespace"),
        ),
        (false, None) => out.push(
            err(
                template,
                format!("{kind} {name} has no metadata.namespace"),
                "set metadata.namespace (usually w.namespace)",
            )
            .pointer("/metadata"),
        ),
        _ => {}
    }
    let labels = at(v, "/metadata/labels");
    let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    let labels_at = if labels.is_some() {
        "/metadata/labels"
    } else {
        "/metadata"
    };
    if label(MANAGED_BY.0) != Some(MANAGED_BY.1) {
        out.push(
            err(
                template,
                format!(
                    "{kind} {name} lacks the label {}: {}",
                    MANAGED_BY.0, MANAGED_BY.1
                ),
                "use the metadata macro: metadata: {{ m.metadata(name, w.namespace) }}",
            )
            .pointer(labels_at),
        );
    }
    if !cluster_scoped && label(LABEL_BLUEPRINT).is_none() {
        out.push(
            err(
                template,
                format!("{kind} {name} lacks the label {LABEL_BLUEPRINT}"),
                "plan and prune find what they own by it; use the metadata macro",
            )
            .pointer(labels_at),
        );
    }
    if let Some(l) = labels.and_then(Value::as_object) {
        for (k, val) in l {
            if !val.is_string() {
                let escaped = pointer_token(k);
                out.push(
                    err(
                        template,
                        format!("{kind} {name}: label {k} must be a string"),
                        "quote label values",
                    )
                    .pointer(format!("/metadata/labels/{escaped}")),
                );
            }
        }
    }
    if kind == "StatefulSet" {
        statefulset(v, w, template, out);
    }
}

fn statefulset(v: &Value, w: &Workload, template: &str, out: &mut Vec<Diagnostic>) {
    for (i, vct) in at(v, "/spec/volumeClaimTemplates")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if vct.get("apiVersion").and_then(Value::as_str) != Some("v1")
            || vct.get("kind").and_then(Value::as_str) != Some("PersistentVolumeClaim")
        {
            out.push(
                err(
                    template,
                    format!(
                        "volumeClaimTemplates[{i}] lacks apiVersion: v1 / kind: PersistentVolumeClaim"
                    ),
                    "the API server adds them; without them every plan shows a perpetual diff",
                )
                .pointer(format!("/spec/volumeClaimTemplates/{i}")),
            );
        }
    }
    const POD: &str = "/spec/template/spec";
    let Some(pod) = at(v, POD) else {
        out.push(err(
            template,
            "StatefulSet has no spec.template.spec".into(),
            "render the pod template",
        ));
        return;
    };
    let containers = containers(pod, POD);
    for (ptr, c) in &containers {
        unpinned_image(c, ptr, template, out);
    }
    let restricted = w.engine.security.restricted;
    let mut found = Vec::new();
    pod_violations(pod, restricted, &mut found);
    let mut violations: Vec<Violation> = found.into_iter().map(|m| (m, POD.to_owned())).collect();
    let pod_sc = pod.get("securityContext");
    let defaults = PodDefaults {
        non_root: pod_sc
            .and_then(|s| s.get("runAsNonRoot"))
            .and_then(Value::as_bool)
            == Some(true),
        seccomp: pod_sc
            .and_then(|s| at(s, "/seccompProfile/type"))
            .and_then(Value::as_str),
    };
    for (ptr, c) in &containers {
        let mut found = Vec::new();
        container_violations(c, Some(&defaults), restricted, &mut found);
        violations.extend(found.into_iter().map(|m| (m, ptr.clone())));
    }
    standard_violations(violations, restricted, template, out);
}

/// Checks across one workload's objects: every named Service `targetPort`
/// must be a port of the StatefulSet's containers, or the Service routes
/// nowhere. Each problem comes with the index of the object it is in.
pub(super) fn workload_consistency(objects: &[super::DesiredObject]) -> Vec<(usize, Diagnostic)> {
    let mut out = Vec::new();
    let Some(sts) = objects.iter().find(|o| o.kind == "StatefulSet") else {
        return out;
    };
    let port_names: Vec<&str> = ["containers", "initContainers"]
        .iter()
        .flat_map(|k| {
            at(&sts.body, "/spec/template/spec")
                .and_then(|pod| pod.get(k))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .flat_map(|c| {
            c.get("ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .filter_map(|p| p.get("name").and_then(Value::as_str))
        .collect();
    for (i, svc) in objects
        .iter()
        .enumerate()
        .filter(|(_, o)| o.kind == "Service")
    {
        for (j, p) in at(&svc.body, "/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Some(target) = p.get("targetPort").and_then(Value::as_str)
                && !port_names.contains(&target)
            {
                out.push((i, Diagnostic::error(format!(
                        "Service {} targets port `{target}`, which no container of StatefulSet {} declares",
                        svc.name, sts.name
                    ))
                    .hint("name the container port (containers[].ports[].name) like the Service's targetPort")
                    .pointer(format!("/spec/ports/{j}/targetPort"))));
            }
        }
    }
    out
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// The value at a JSON pointer made of plain keys (no `~` escapes), like
/// `/spec/template/spec`. `Value::pointer` allocates every segment; these
/// lookups run for every rendered object.
pub(super) fn at<'v>(v: &'v Value, pointer: &str) -> Option<&'v Value> {
    pointer.split('/').skip(1).try_fold(v, |v, key| match v {
        Value::Object(map) => map.get(key),
        // As in `pointer`: `01` and `+1` are not indexes.
        Value::Array(items) if !key.starts_with('+') && (key == "0" || !key.starts_with('0')) => {
            key.parse::<usize>().ok().and_then(|i| items.get(i))
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::{PodDefaults, at, container_violations, pod_violations};

    #[test]
    fn at_follows_keys_and_indexes_like_pointer() {
        let v = serde_json::json!({"spec": {"ports": [{"name": "a"}, {"name": "b"}]}, "": 1});
        for p in [
            "/spec/ports/1/name",
            "/spec/ports/0/name",
            "/spec/ports/2",
            "/spec/x",
            "/spec/ports/01",
            "/spec/ports/+1",
            "",
            "/",
        ] {
            assert_eq!(at(&v, p), v.pointer(p), "{p}");
        }
        assert_eq!(at(&v, "/spec/ports/1/name"), Some(&serde_json::json!("b")));
    }

    #[test]
    fn pod_rules_of_the_baseline_and_restricted_standards() {
        use serde_json::json;
        let pod = json!({
            "securityContext": {
                "seLinuxOptions": {"type": "spc_t", "user": "system_u"},
                "sysctls": [{"name": "net.ipv4.tcp_syncookies", "value": "1"}, {"name": "kernel.msgmax", "value": "1"}],
                "appArmorProfile": {"type": "RuntimeDefault"}
            },
            "volumes": [
                {"name": "data", "persistentVolumeClaim": {"claimName": "x"}},
                {"name": "conf", "configMap": {"name": "c"}},
                {"name": "nfs", "nfs": {"server": "s", "path": "/"}},
                {"name": "host", "hostPath": {"path": "/"}}
            ]
        });
        let mut v = Vec::new();
        pod_violations(&pod, true, &mut v);
        assert_eq!(
            v,
            [
                "volume nfs is of type nfs, which is not allowed",
                "volume host is a hostPath",
                "pod: seLinuxOptions.type spc_t",
                "pod: seLinuxOptions.user is set",
                "pod sysctl kernel.msgmax is not a safe sysctl"
            ]
        );
        let c = json!({"name": "db", "ports": [{"containerPort": 6379, "hostPort": 6379}, {"containerPort": 1}],
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]},
            "procMount": "Unmasked",
            "appArmorProfile": {"type": "Unconfined"},
            "windowsOptions": {"hostProcess": true}
        }});
        let mut v = Vec::new();
        container_violations(&c, None, true, &mut v);
        assert_eq!(
            v,
            [
                "container db: procMount is not Default",
                "container db: appArmorProfile is Unconfined",
                "container db: windowsOptions.hostProcess is true",
                "container db: hostPort 6379"
            ]
        );
    }

    #[test]
    fn an_engine_that_cannot_run_restricted_is_held_to_baseline() {
        use serde_json::json;
        // Root, privilege escalation and baseline capabilities are fine;
        // privileged, SYS_ADMIN, Unconfined seccomp and a hostPath are not.
        let c = json!({"name": "db", "securityContext": {
            "runAsUser": 0,
            "capabilities": {"add": ["CHOWN", "SYS_ADMIN"]},
            "privileged": true,
            "seccompProfile": {"type": "Unconfined"}
        }});
        let mut v = Vec::new();
        container_violations(&c, None, false, &mut v);
        assert_eq!(
            v,
            [
                "container db: privileged",
                "container db: adds capability SYS_ADMIN",
                "container db: seccompProfile is not RuntimeDefault"
            ]
        );
        let pod = json!({"securityContext": {"runAsUser": 0}, "volumes": [
            {"name": "nfs", "nfs": {"server": "s", "path": "/"}},
            {"name": "host", "hostPath": {"path": "/"}}
        ]});
        let mut v = Vec::new();
        pod_violations(&pod, false, &mut v);
        assert_eq!(v, ["volume host is a hostPath"]);
    }

    #[test]
    fn container_rules_of_the_restricted_standard() {
        use serde_json::json;
        let check = |c: serde_json::Value, pod: Option<&PodDefaults>| {
            let mut v = Vec::new();
            container_violations(&c, pod, true, &mut v);
            v
        };
        let good = json!({"name": "db", "securityContext": {
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}
        }});
        let restricted_pod = PodDefaults {
            non_root: true,
            seccomp: Some("RuntimeDefault"),
        };
        let open_pod = PodDefaults {
            non_root: false,
            seccomp: None,
        };
        // runAsNonRoot and seccomp come from the pod, or are left to it.
        assert!(check(good.clone(), Some(&restricted_pod)).is_empty());
        assert!(check(good.clone(), None).is_empty());
        assert_eq!(
            check(good.clone(), Some(&open_pod)),
            [
                "container db: runAsNonRoot is not true",
                "container db: seccompProfile is not RuntimeDefault"
            ]
        );
        // What the container says itself wins, in a fragment too.
        let mut own = good.clone();
        own["securityContext"]["runAsNonRoot"] = json!(false);
        own["securityContext"]["seccompProfile"] = json!({"type": "Unconfined"});
        own["securityContext"]["runAsUser"] = json!(0);
        for pod in [Some(&restricted_pod), None] {
            assert_eq!(
                check(own.clone(), pod),
                [
                    "container db: runAsNonRoot is not true",
                    "container db: runAsUser is 0",
                    "container db: seccompProfile is not RuntimeDefault"
                ]
            );
        }
        let bad = json!({"name": "dbg", "securityContext": {
            "privileged": true,
            "capabilities": {"add": ["SYS_ADMIN"]}
        }});
        assert_eq!(
            check(bad, None),
            [
                "container dbg: allowPrivilegeEscalation is not false",
                "container dbg: privileged",
                "container dbg: capabilities.drop lacks ALL",
                "container dbg: adds capability SYS_ADMIN"
            ]
        );
    }
}
