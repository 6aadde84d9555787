//! Bad blueprints: each must produce an error naming what is wrong, at the
//! right line and column, with a hint — and never a panic. Bad templates
//! at the end.

#[path = "support/scratch.rs"]
mod scratch;

use std::sync::LazyLock;

use stateplan::catalog::Catalog;
use stateplan::diagnostics::{Diagnostic, Diagnostics, SourceFile};
use stateplan::{blueprint, compile};

static CATALOG: LazyLock<Catalog> =
    LazyLock::new(|| Catalog::load(None).expect("built-in catalog loads"));

const TARGET: &str = r#"[target]
subscription = "00000000-0000-0000-0000-000000000000"
resource_group = "rg-data-prod"
cluster = "aks-prod"
location = "westeurope"
key_vault = "kv-data-prod"
"#;

/// Parses and compiles; returns all diagnostics with line/column filled in.
fn diagnose(text: &str) -> Vec<Diagnostic> {
    let mut all = Diagnostics::new();
    all.add_file(SourceFile::new("bp.toml", text));
    let (bp, diags) = blueprint::parse("bp.toml", text);
    all.extend(diags);
    if let Some(bp) = bp {
        let (_, diags) = compile::compile(&bp, &CATALOG);
        all.extend(diags);
    }
    all.locate();
    // Rendering the diagnostics must never panic either.
    let _ = all.render(false);
    all.items().to_vec()
}

/// Asserts an error containing `message` at `line:column`, with a hint.
#[track_caller]
fn expect_error(text: &str, message: &str, line: usize, column: usize) {
    let diags = diagnose(text);
    let found = diags
        .iter()
        .find(|d| d.is_error() && d.message.contains(message));
    let Some(d) = found else {
        panic!("no error containing {message:?}; got:\n{diags:#?}\n--- input ---\n{text}");
    };
    assert_eq!(
        (d.line, d.column),
        (Some(line), Some(column)),
        "position of {message:?} in:\n{text}\n{d:#?}"
    );
    assert!(
        d.hint.as_deref().is_some_and(|h| !h.is_empty()),
        "no hint for {message:?}: {d:#?}"
    );
}

/// A workload section appended to a valid target: line 7 is `[workloads]`,
/// the first workload line is 8.
fn workloads(body: &str) -> String {
    format!("{TARGET}[workloads]\n{body}")
}

/// A full-form workload table `[workloads.db]` at line 7; its first key is line 8.
fn full(body: &str) -> String {
    format!("{TARGET}[workloads.db]\n{body}")
}

const FULL_OK: &str = "engine = \"postgres\"\nreplicas = 3\nstorage = \"100Gi\"\ntier = \"balanced\"\nredundancy = \"zone-redundant\"\n";

// --- TOML syntax and structure -------------------------------------------

#[test]
fn empty_file() {
    expect_error("", "the blueprint is empty", 1, 1);
    expect_error("   \n\n", "the blueprint is empty", 1, 1);
}

#[test]
fn toml_syntax_error() {
    // An unterminated string: reported where the line ends.
    expect_error(
        &workloads("cache = \"valkey 3 replicas\n"),
        "invalid TOML",
        8,
        27,
    );
}

#[test]
fn duplicate_key() {
    expect_error(
        &workloads(
            "a = \"valkey 3 replicas 20Gi balanced zonal\"\na = \"valkey 1 replica 20Gi balanced zonal\"\n",
        ),
        "invalid TOML",
        9,
        1,
    );
}

#[test]
fn unknown_top_level_key() {
    expect_error(
        &format!("{TARGET}[workload]\n"),
        "unknown key `workload` in the blueprint",
        7,
        2,
    );
}

#[test]
fn missing_target() {
    expect_error(
        "[workloads]\na = \"valkey 1 replica 20Gi balanced zonal\"\n",
        "no [target] section",
        1,
        1,
    );
}

/// Compile-stage errors (engines, quorum) are not held back until the
/// target is fixed: the file's errors all come in one run.
#[test]
fn workload_errors_are_reported_with_an_invalid_target() {
    let missing = "[workloads]\nevents = \"kafka 2 replicas 50Gi balanced zone-redundant\"\ndb = \"postgress 3 replicas 20Gi balanced zonal\"\n";
    expect_error(missing, "no [target] section", 1, 1);
    expect_error(missing, "kafka with 2 replicas is refused", 2, 17);
    expect_error(missing, "unknown engine `postgress`", 3, 7);

    let incomplete = format!(
        "{}[workloads]\nevents = \"kafka 2 replicas 50Gi balanced zone-redundant\"\n",
        TARGET.replace("cluster = \"aks-prod\"\n", "")
    );
    expect_error(&incomplete, "missing required key `cluster`", 1, 1);
    expect_error(&incomplete, "kafka with 2 replicas is refused", 7, 17);

    // Valid workloads and an invalid target: errors, and no desired state.
    let text = "target = \"aks\"\n[workloads]\na = \"valkey 1 replica 20Gi balanced zonal\"\n";
    let (bp, diags) = blueprint::parse("bp.toml", text);
    assert!(diags.iter().any(Diagnostic::is_error), "{diags:#?}");
    let bp = bp.expect("a blueprint with an invalid target still parses");
    assert!(bp.target.is_none());
    let (state, diags) = compile::compile(&bp, &CATALOG);
    assert!(state.is_none(), "no desired state without a target");
    assert!(diags.is_empty(), "{diags:#?}");
}

#[test]
fn missing_workloads() {
    expect_error(TARGET, "no [workloads] section", 1, 1);
}

#[test]
fn empty_workloads() {
    expect_error(
        &format!("workloads = {{}}\n{TARGET}"),
        "[workloads] is empty",
        1,
        13,
    );
}

#[test]
fn target_is_not_a_table() {
    expect_error(
        "target = \"aks\"\n[workloads]\na = \"valkey 1 replica 20Gi balanced zonal\"\n",
        "[target] must be a table",
        1,
        10,
    );
}

#[test]
fn unknown_target_key_suggests() {
    let text = TARGET.replace("key_vault", "keyvault");
    expect_error(
        &format!("{text}[workloads]\na = \"valkey 1 replica 20Gi balanced zonal\"\n"),
        "unknown key `keyvault` in [target]",
        6,
        1,
    );
    let d = diagnose(&format!("{text}[workloads]\n"));
    assert!(
        d.iter()
            .any(|d| d.hint.as_deref() == Some("did you mean `key_vault`?")),
        "{d:#?}"
    );
}

#[test]
fn bad_subscription() {
    let text = TARGET.replace("00000000-0000-0000-0000-000000000000", "my-subscription");
    expect_error(
        &format!("{text}[workloads]\n"),
        "is not a subscription ID",
        2,
        16,
    );
}

#[test]
fn bad_location() {
    let text = TARGET.replace("\"westeurope\"", "\"West Europe\"");
    expect_error(
        &format!("{text}[workloads]\n"),
        "location `West Europe` is not an Azure region name",
        5,
        12,
    );
    let d = diagnose(&format!("{text}[workloads]\n"));
    assert!(
        d.iter()
            .any(|d| d.hint.as_deref() == Some("use the programmatic name: \"westeurope\""))
    );
}

#[test]
fn bad_key_vault_name() {
    let text = TARGET.replace("kv-data-prod", "kv--data");
    expect_error(
        &format!("{text}[workloads]\n"),
        "is not a valid Key Vault name",
        6,
        13,
    );
}

#[test]
fn target_value_wrong_type() {
    let text = TARGET.replace("cluster = \"aks-prod\"", "cluster = 42");
    expect_error(
        &format!("{text}[workloads]\n"),
        "`cluster` must be a string, found an integer",
        4,
        11,
    );
}

#[test]
fn blueprint_name_invalid() {
    expect_error(
        &format!("name = \"Orders_DB\"\n{TARGET}[workloads]\n"),
        "blueprint name `Orders_DB`",
        1,
        8,
    );
}

// --- compact form ----------------------------------------------------------

/// A misspelt engine is reported together with the workload's other
/// errors, not only once they are fixed.
#[test]
fn misspelt_engine_is_reported_with_the_other_errors() {
    let compact = workloads("db = \"postgress 3 replicas 200GB balanced zonal\"\n");
    expect_error(&compact, "unknown engine `postgress`", 8, 7);
    expect_error(
        &compact,
        "storage `200GB` is not a Kubernetes quantity",
        8,
        28,
    );
    let table = full(
        "engine = \"postgress\"\nreplicas = 0\nstorage = \"10Gi\"\ntier = \"balanced\"\nredundancy = \"zonal\"\n",
    );
    expect_error(&table, "unknown engine `postgress`", 8, 10);
    expect_error(&table, "`replicas` must be between 1 and 99", 9, 12);
    // A token that cannot be an engine name is reported once, not twice.
    let d = diagnose(&workloads(
        "db = \"Postgres 3 replicas 200GB balanced zonal\"\n",
    ));
    assert!(
        d.iter()
            .any(|d| d.message.contains("`Postgres` is not an engine name")),
        "{d:#?}"
    );
    assert!(
        !d.iter().any(|d| d.message.contains("unknown engine")),
        "{d:#?}"
    );
}

#[test]
fn compact_unknown_engine_points_at_token() {
    expect_error(
        &workloads("cache = \"valkee 3 replicas 20Gi balanced zone-redundant\"\n"),
        "unknown engine `valkee`",
        8,
        10,
    );
    let d = diagnose(&workloads(
        "cache = \"valkee 3 replicas 20Gi balanced zone-redundant\"\n",
    ));
    assert!(
        d[0].hint
            .as_deref()
            .is_some_and(|h| h.starts_with("did you mean `valkey`?")),
        "{d:#?}"
    );
}

#[test]
fn compact_replica_count_not_a_number() {
    expect_error(
        &workloads("cache = \"valkey three replicas 20Gi balanced zone-redundant\"\n"),
        "expected the number of replicas, found `three`",
        8,
        17,
    );
}

#[test]
fn compact_zero_replicas() {
    expect_error(
        &workloads("cache = \"valkey 0 replicas 20Gi balanced zone-redundant\"\n"),
        "replicas must be at least 1",
        8,
        17,
    );
}

#[test]
fn compact_missing_replicas_word() {
    expect_error(
        &workloads("cache = \"valkey 3 nodes 20Gi balanced zone-redundant\"\n"),
        "expected `replicas` after the count, found `nodes`",
        8,
        19,
    );
}

#[test]
fn compact_size_in_gb_suggests_gi() {
    expect_error(
        &workloads("cache = \"valkey 3 replicas 200GB balanced zone-redundant\"\n"),
        "storage `200GB` is not a Kubernetes quantity",
        8,
        28,
    );
    let d = diagnose(&workloads(
        "cache = \"valkey 3 replicas 200GB balanced zone-redundant\"\n",
    ));
    assert!(
        d[0].hint
            .as_deref()
            .is_some_and(|h| h.contains("did you mean 200Gi?")),
        "{d:#?}"
    );
}

#[test]
fn compact_unknown_tier() {
    expect_error(
        &workloads("cache = \"valkey 3 replicas 20Gi premium zone-redundant\"\n"),
        "unknown storage tier `premium`",
        8,
        33,
    );
    let d = diagnose(&workloads(
        "cache = \"valkey 3 replicas 20Gi premium zone-redundant\"\n",
    ));
    assert!(
        d[0].hint
            .as_deref()
            .is_some_and(|h| h.contains("did you mean `balanced`?")),
        "{d:#?}"
    );
}

#[test]
fn compact_unknown_redundancy() {
    expect_error(
        &workloads("cache = \"valkey 3 replicas 20Gi balanced zone-redudant\"\n"),
        "unknown redundancy `zone-redudant`",
        8,
        42,
    );
}

#[test]
fn compact_missing_parts() {
    expect_error(
        &workloads("cache = \"valkey 3 replicas 20Gi\"\n"),
        "missing the storage tier",
        8,
        32,
    );
}

#[test]
fn compact_extra_token() {
    expect_error(
        &workloads("cache = \"valkey 3 replicas 20Gi balanced zonal fast\"\n"),
        "unexpected `fast`",
        8,
        48,
    );
}

#[test]
fn compact_empty_string() {
    expect_error(
        &workloads("cache = \"\"\n"),
        "workload `cache` is an empty string",
        8,
        9,
    );
}

#[test]
fn compact_with_escape_points_at_whole_string() {
    // Escapes make in-string columns inexact: the whole string is marked.
    expect_error(
        &workloads("cache = \"valkey 3 replicas 20Gi \\u0062alanced zonal-x\"\n"),
        "unknown redundancy `zonal-x`",
        8,
        9,
    );
}

#[test]
fn workload_wrong_type() {
    expect_error(
        &workloads("cache = 3\n"),
        "workload `cache` must be a string or a table, found an integer",
        8,
        9,
    );
}

#[test]
fn workload_name_not_dns() {
    expect_error(
        &workloads("Orders_DB = \"postgres 1 replica 20Gi balanced none\"\n"),
        "workload name `Orders_DB`",
        8,
        1,
    );
}

#[test]
fn workload_name_too_long() {
    let name = "a".repeat(41);
    expect_error(
        &workloads(&format!(
            "{name} = \"postgres 1 replica 20Gi balanced none\"\n"
        )),
        "is 41 characters long",
        8,
        1,
    );
}

// --- full form -------------------------------------------------------------

#[test]
fn full_unknown_key_suggests() {
    expect_error(
        &full(&format!("{FULL_OK}replica = 3\n")),
        "unknown key `replica` in [workloads.db]",
        13,
        1,
    );
    let d = diagnose(&full(&format!("{FULL_OK}replica = 3\n")));
    assert!(
        d.iter()
            .any(|d| d.hint.as_deref() == Some("did you mean `replicas`?")),
        "{d:#?}"
    );
}

#[test]
fn full_missing_engine() {
    expect_error(
        &full("replicas = 3\nstorage = \"100Gi\"\ntier = \"balanced\"\nredundancy = \"none\"\n"),
        "missing required key `engine`",
        7,
        1,
    );
}

#[test]
fn full_replicas_wrong_type() {
    expect_error(
        &full(&FULL_OK.replace("replicas = 3", "replicas = 3.5")),
        "`replicas` must be a whole number",
        9,
        12,
    );
}

#[test]
fn full_replicas_out_of_range() {
    expect_error(
        &full(&FULL_OK.replace("replicas = 3", "replicas = 0")),
        "`replicas` must be between 1 and 99, found 0",
        9,
        12,
    );
}

#[test]
fn full_unknown_version() {
    expect_error(
        &full(&format!("{FULL_OK}version = \"9\"\n")),
        "postgres version `9` is not available",
        13,
        11,
    );
}

#[test]
fn full_bad_memory_quantity() {
    expect_error(
        &full(&format!(
            "{FULL_OK}resources = {{ cpu = \"2\", memory = \"8 gigs\" }}\n"
        )),
        "memory `8 gigs` is not a Kubernetes quantity",
        13,
        35,
    );
}

#[test]
fn full_memory_limit_below_request() {
    expect_error(
        &full(&format!(
            "{FULL_OK}resources = {{ memory = \"8Gi\", memory_limit = \"4Gi\" }}\n"
        )),
        "memory_limit 4Gi is below the memory request 8Gi",
        13,
        46,
    );
}

#[test]
fn full_unknown_resources_key() {
    expect_error(
        &full(&format!("{FULL_OK}resources = {{ cpus = \"2\" }}\n")),
        "unknown key `cpus`",
        13,
        15,
    );
}

#[test]
fn full_bad_cron() {
    expect_error(
        &full(&format!(
            "{FULL_OK}backup = {{ schedule = \"0 25 * * *\" }}\n"
        )),
        "hour `25` is out of range 0-23",
        13,
        23,
    );
}

#[test]
fn full_bad_retention() {
    expect_error(
        &full(&format!("{FULL_OK}backup = {{ retain = \"30 days\" }}\n")),
        "retention `30 days` is not a duration",
        13,
        21,
    );
}

#[test]
fn full_bad_namespace() {
    expect_error(
        &full(&format!("{FULL_OK}namespace = \"Orders\"\n")),
        "namespace `Orders`",
        13,
        13,
    );
}

#[test]
fn full_bad_secret_name() {
    expect_error(
        &full(&format!("{FULL_OK}secrets = [\"app_password\"]\n")),
        "secret name `app_password` is not valid",
        13,
        12,
    );
}

#[test]
fn full_duplicate_secret() {
    expect_error(
        &full(&format!("{FULL_OK}secrets = [\"a\", \"a\"]\n")),
        "secret `a` is listed twice",
        13,
        17,
    );
}

#[test]
fn full_reserved_label() {
    expect_error(
        &full(&format!(
            "{FULL_OK}labels = {{ \"app.kubernetes.io/managed-by\" = \"me\" }}\n"
        )),
        "is set by stateplan itself",
        13,
        12,
    );
    // The selector label: overriding it would leave the StatefulSet's pods
    // outside its own selector and the Services selecting nothing.
    expect_error(
        &full(&format!(
            "{FULL_OK}labels = {{ team = \"a\", \"app.kubernetes.io/name\" = \"orders\" }}\n"
        )),
        "label `app.kubernetes.io/name` is set by stateplan itself",
        13,
        24,
    );
}

#[test]
fn full_bad_label_value() {
    expect_error(
        &full(&format!("{FULL_OK}labels = {{ team = \"pay ments\" }}\n")),
        "label value `pay ments` is not valid",
        13,
        12,
    );
}

#[test]
fn full_bad_pool_name() {
    expect_error(
        &full(&format!("{FULL_OK}node_pool = {{ name = \"db-pool\" }}\n")),
        "node pool name `db-pool` is not valid for AKS",
        13,
        22,
    );
}

#[test]
fn full_bad_zone() {
    expect_error(
        &full(&format!(
            "{FULL_OK}node_pool = {{ zones = [\"1\", \"4\"] }}\n"
        )),
        "`4` is not an availability zone",
        13,
        29,
    );
}

#[test]
fn full_autoscale_half_set() {
    expect_error(
        &full(&format!("{FULL_OK}node_pool = {{ min_count = 3 }}\n")),
        "needs both min_count and max_count",
        13,
        27,
    );
}

#[test]
fn full_vm_size_without_premium_storage() {
    expect_error(
        &full(&format!(
            "{FULL_OK}node_pool = {{ vm_size = \"Standard_D8d_v5\" }}\n"
        )),
        "cannot attach Premium_LRS disks",
        13,
        25,
    );
}

#[test]
fn full_vm_size_too_small() {
    expect_error(
        &full(&format!(
            "{FULL_OK}resources = {{ cpu = \"4\", memory = \"16Gi\" }}\nnode_pool = {{ vm_size = \"Standard_D2ds_v5\" }}\n"
        )),
        "Standard_D2ds_v5 leaves 1.40 CPU / 6.1 GiB for pods, less than the requests of cpu 4 and memory 16Gi",
        14,
        25,
    );
}

#[test]
fn vm_sizes_leave_room_for_what_aks_reserves() {
    // 63.5 of 64 cores: AKS keeps 740m for the kubelet on 64 cores, so no
    // listed size can run this pod.
    expect_error(
        &full(&format!(
            "{FULL_OK}resources = {{ cpu = \"63.5\", memory = \"200Gi\" }}\n"
        )),
        "no VM size in azure/vm-sizes.toml leaves room for cpu 63.5 and memory 200Gi",
        7,
        1,
    );
    // 4 cores are enough for 3.5 CPU on paper, not after reservations.
    let s = compiled(&full(&format!(
        "{FULL_OK}resources = {{ cpu = \"3.5\", memory = \"12Gi\" }}\n"
    )));
    assert_eq!(s.node_pools[0].vm_size, "Standard_D8ds_v5");
    // A size written in another case is the listed size...
    let s = compiled(&full(&format!(
        "{FULL_OK}node_pool = {{ vm_size = \"Standard_D8DS_V5\" }}\n"
    )));
    assert_eq!(s.node_pools[0].vm_size, "Standard_D8ds_v5");
    // ...but the prefix is checked as Azure spells it, with a suggestion.
    let d = diagnose(&full(&format!(
        "{FULL_OK}node_pool = {{ vm_size = \"standard_d8ds_v5\" }}\n"
    )));
    let e = d.iter().find(|d| d.is_error()).expect("error");
    assert_eq!(
        e.hint.as_deref(),
        Some("did you mean \"Standard_d8ds_v5\"?")
    );
    // A size stateplan does not list is accepted with a warning.
    let d = diagnose(&full(&format!(
        "{FULL_OK}node_pool = {{ vm_size = \"Standard_D4s_v3\" }}\n"
    )));
    assert!(!d.iter().any(Diagnostic::is_error), "{d:#?}");
    assert!(
        d.iter().any(|d| d
            .message
            .contains("Standard_D4s_v3 is not in azure/vm-sizes.toml")),
        "{d:#?}"
    );
}

#[test]
fn full_disk_iops_on_balanced() {
    expect_error(
        &full(&format!("{FULL_OK}disk = {{ iops = 5000 }}\n")),
        "disk.iops applies only to tiers with provisioned performance",
        13,
        17,
    );
}

#[test]
fn full_disk_iops_too_high_for_size() {
    let body = FULL_OK
        .replace("balanced", "fast-ssd")
        .replace("100Gi", "10Gi");
    expect_error(
        &full(&format!("{body}disk = {{ iops = 20000 }}\n")),
        "fast-ssd with 10 GiB allows 3000 to 5000 IOPS, found 20000",
        13,
        17,
    );
}

#[test]
fn disk_performance_hints_point_the_right_way() {
    let body = FULL_OK.replace("balanced", "fast-ssd");
    let hint_of = |disk: &str, message: &str| {
        let d = diagnose(&full(&format!("{body}disk = {disk}\n")));
        let e = d
            .iter()
            .find(|d| d.is_error() && d.message.contains(message))
            .unwrap_or_else(|| panic!("no {message:?} in {d:#?}"));
        e.hint.clone().unwrap_or_default()
    };
    let low = hint_of("{ iops = 100 }", "allows 3000 to 50000 IOPS, found 100");
    assert!(low.contains("at least 3000 IOPS; raise iops"), "{low}");
    let high = hint_of("{ iops = 60000 }", "allows 3000 to 50000 IOPS, found 60000");
    assert!(high.contains("grow the disk or lower iops"), "{high}");
    let high = hint_of(
        "{ iops = 3000, throughput_mbps = 5000 }",
        "fast-ssd with 3000 IOPS allows 125 to 750 MBps, found 5000",
    );
    assert!(
        high.contains("raise iops or lower throughput_mbps"),
        "{high}"
    );
}

// --- engine and redundancy rules ------------------------------------------

#[test]
fn single_replica_zone_redundant_on_fast_ssd() {
    let body = FULL_OK
        .replace("replicas = 3", "replicas = 1")
        .replace("balanced", "fast-ssd");
    expect_error(
        &full(&body),
        "zone-redundant with 1 replica needs a zone-redundant disk",
        12,
        14,
    );
}

#[test]
fn shared_files_below_minimum() {
    expect_error(
        &workloads("files = \"postgres 1 replica 50Gi shared-files none\"\n"),
        "shared-files volumes must be at least 100 GiB",
        8,
        29,
    );
}

#[test]
fn mongodb_two_replicas_refused() {
    expect_error(
        &workloads("docs = \"mongodb 2 replicas 50Gi balanced zone-redundant\"\n"),
        "mongodb with 2 replicas is refused",
        8,
        17,
    );
}

#[test]
fn kafka_two_replicas_refused() {
    expect_error(
        &workloads("events = \"kafka 2 replicas 50Gi balanced zone-redundant\"\n"),
        "kafka with 2 replicas is refused",
        8,
        17,
    );
}

#[test]
fn cluster_and_add_on_namespaces_are_refused() {
    // By default the namespace is the workload's name...
    expect_error(
        &workloads("kube-system = \"valkey 1 replica 20Gi standard none\"\n"),
        "namespace `kube-system` is reserved for Kubernetes itself",
        8,
        1,
    );
    // ...or set in the table form.
    for (ns, why) in [
        ("default", "is the cluster's default namespace"),
        ("velero", "belongs to a cluster add-on"),
        ("external-secrets", "belongs to a cluster add-on"),
    ] {
        expect_error(
            &full(&format!("{FULL_OK}namespace = \"{ns}\"\n")),
            &format!("namespace `{ns}` {why}"),
            13,
            13,
        );
    }
    let ok = diagnose(&full(&format!("{FULL_OK}namespace = \"kubeflow-db\"\n")));
    assert!(!ok.iter().any(Diagnostic::is_error), "{ok:#?}");
}

#[test]
fn derived_node_pool_names_that_collide_are_refused() {
    // Both cut to `ordersdataba`: a silently shared pool would give each
    // workload half the nodes `explain` promised it.
    expect_error(
        &workloads(
            "ordersdatabase-a = \"postgres 3 replicas 10Gi balanced none\"\nordersdatabase-b = \"postgres 3 replicas 10Gi balanced none\"\n",
        ),
        "workloads `ordersdatabase-a` and `ordersdatabase-b` would both run on node pool `ordersdataba`",
        9,
        1,
    );
}

#[test]
fn a_node_pool_named_by_two_workloads_is_shared() {
    let pool = "node_pool = { name = \"shared\" }\n";
    let text = format!("{TARGET}[workloads.a]\n{FULL_OK}{pool}[workloads.b]\n{FULL_OK}{pool}");
    let pools = compiled(&text).node_pools;
    assert_eq!(pools.len(), 1);
    assert_eq!(pools[0].count, Some(6), "3 nodes for each workload");
    assert_eq!(pools[0].workloads, ["a", "b"]);
    // Sharing needs the same shape: a different VM size is refused.
    let text = format!(
        "{TARGET}[workloads.a]\n{FULL_OK}{pool}[workloads.b]\n{FULL_OK}node_pool = {{ name = \"shared\", vm_size = \"Standard_E8ds_v5\" }}\n"
    );
    expect_error(
        &text,
        "node pool `shared` is shared with a but its vm_size differs",
        20,
        22,
    );
}

#[test]
fn storage_without_a_unit_is_refused() {
    expect_error(
        &workloads("db = \"postgres 3 replicas 100 balanced none\"\n"),
        "storage `100` has no unit, which Kubernetes reads as 100 bytes",
        8,
        27,
    );
    expect_error(
        &full(&FULL_OK.replace("100Gi", "250m")),
        "storage `250m` is 250 thousandths of a byte",
        10,
        11,
    );
    let d = diagnose(&full(&FULL_OK.replace("100Gi", "250m")));
    assert_eq!(
        d[0].hint
            .as_deref()
            .map(|h| h.starts_with("did you mean \"250Gi\"")),
        Some(true),
        "{d:#?}"
    ); // An exponent is a number too; the hint spells out the number it meant.
    expect_error(
        &workloads("db = \"postgres 3 replicas 1e3 balanced none\"\n"),
        "storage `1e3` is 1000 bytes: `e3` is a decimal exponent in Kubernetes quantities, not a unit",
        8,
        27,
    );
    let d = diagnose(&full(&FULL_OK.replace("100Gi", "1E2")));
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(
        d[0].hint.as_deref(),
        Some("did you mean \"100Gi\"? Volumes are sized in Gi or Ti"),
    );
}

#[test]
fn decimal_storage_units_suggest_the_binary_unit() {
    let d = diagnose(&workloads(
        "db = \"postgres 3 replicas 20G balanced none\"\n",
    ));
    let w = d
        .iter()
        .find(|d| d.message.contains("not a whole number of GiB"))
        .expect("warning");
    assert!(!w.is_error());
    assert!(
        w.hint
            .as_deref()
            .is_some_and(|h| h.starts_with("did you mean storage = \"20Gi\"")),
        "{w:#?}"
    );
}

/// Compiles a valid blueprint; panics on any error.
fn compiled(text: &str) -> compile::DesiredState {
    let (bp, diags) = blueprint::parse("bp.toml", text);
    assert!(diags.iter().all(|d| !d.is_error()), "{diags:#?}");
    let (state, diags) = compile::compile(&bp.expect("parses"), &CATALOG);
    assert!(diags.iter().all(|d| !d.is_error()), "{diags:#?}");
    state.expect("compiles")
}

#[test]
fn placement_keeps_every_replica_able_to_come_back() {
    // Zonal-only disks without zone redundancy: one zone, so a node that
    // replaces another (upgrade surge, scale-up) is where the disks are.
    let s = compiled(&workloads(
        "db = \"postgres 3 replicas 100Gi fast-ssd none\"\n",
    ));
    assert_eq!(s.node_pools[0].zones, ["1"]);
    // A single zone-redundant replica: the pool can add a node in another
    // zone (autoscale 1-2), and its disk is ZRS.
    let s = compiled(&workloads(
        "db = \"postgres 1 replica 100Gi balanced zone-redundant\"\n",
    ));
    let pool = &s.node_pools[0];
    assert_eq!(
        (pool.count, pool.min_count, pool.max_count),
        (None, Some(1), Some(2))
    );
    assert_eq!(pool.zones, ["1", "2", "3"]);
    assert_eq!(s.workloads[0].storage_class.sku, "Premium_ZRS");
    // ...unless the blueprint sizes the pool itself.
    let s = compiled(&full(&format!(
        "{}node_pool = {{ count = 1 }}\n",
        FULL_OK.replace("replicas = 3", "replicas = 1")
    )));
    assert_eq!(s.node_pools[0].count, Some(1));
    // File shares are not zonal: zone-redundant means a ZRS share, whatever
    // the number of replicas.
    let s = compiled(&workloads(
        "q = \"rabbitmq 3 replicas 100Gi shared-files zone-redundant\"\n",
    ));
    assert_eq!(s.workloads[0].storage_class.sku, "Premium_ZRS");
    let s = compiled(&workloads(
        "q = \"rabbitmq 3 replicas 100Gi shared-files none\"\n",
    ));
    assert_eq!(s.workloads[0].storage_class.sku, "Premium_LRS");
}

#[test]
fn a_capitalised_engine_gets_one_error_with_the_lower_case_name() {
    let text = workloads("a = \"Postgres 3 replicas 10Gi balanced none\"\n");
    expect_error(&text, "`Postgres` is not an engine name", 8, 6);
    let d = diagnose(&text);
    assert_eq!(d.iter().filter(|d| d.is_error()).count(), 1, "{d:#?}");
    assert_eq!(
        d[0].hint.as_deref(),
        Some("engine names are lower-case: did you mean `postgres`?")
    );
}

#[test]
fn an_unclosed_string_is_one_error_at_the_same_place_with_crlf() {
    let lf = workloads("a = \"postgres 3 replicas 10Gi balanced none\n");
    let crlf = lf.replace('\n', "\r\n");
    for text in [&lf, &crlf] {
        expect_error(text, "invalid basic string, expected `\"`", 8, 44);
        let errors = diagnose(text)
            .into_iter()
            .filter(Diagnostic::is_error)
            .count();
        assert_eq!(errors, 1, "{text:?}");
    }
}

#[test]
fn a_number_beyond_64_bits_is_out_of_range() {
    expect_error(
        &full(&FULL_OK.replace("replicas = 3", "replicas = 99999999999999999999")),
        "`replicas` must be between 1 and 99, found a number far larger",
        9,
        12,
    );
}

#[test]
fn more_node_pools_than_a_cluster_holds_warn() {
    let body: String = (0..100)
        .map(|i| format!("w{i:03} = \"valkey 1 replica 10Gi standard none\"\n"))
        .collect();
    let d = diagnose(&workloads(&body));
    assert!(!d.iter().any(Diagnostic::is_error), "{d:#?}");
    assert!(
        d.iter().any(|d| !d.is_error()
            && d.message == "this blueprint needs 100 node pools; an AKS cluster holds at most 100, its system pool included"),
        "{d:#?}"
    );
    let d = diagnose(&workloads(
        &body.replace("w099 = \"valkey 1 replica 10Gi standard none\"\n", ""),
    ));
    assert!(
        !d.iter().any(|d| d.message.contains("node pools")),
        "{d:#?}"
    );
}

#[test]
fn engines_that_need_block_storage_warn_on_file_shares() {
    for engine in ["kafka", "cassandra", "postgres", "mongodb", "mysql"] {
        let d = diagnose(&workloads(&format!(
            "db = \"{engine} 3 replicas 100Gi shared-files none\"\n"
        )));
        let w = d
            .iter()
            .find(|d| {
                d.message
                    .starts_with(&format!("{engine} on a network file share"))
            })
            .unwrap_or_else(|| panic!("{engine}: {d:#?}"));
        assert!(!w.is_error());
        assert_eq!(
            (w.line, w.column),
            (Some(8), Some(25 + engine.len())),
            "{engine}"
        );
    }
    // RabbitMQ (its staging example) and disk tiers: no such warning.
    for line in [
        "q = \"rabbitmq 3 replicas 100Gi shared-files none\"\n",
        "db = \"kafka 3 replicas 100Gi balanced none\"\n",
    ] {
        let d = diagnose(&workloads(line));
        assert!(
            !d.iter().any(|d| d.message.contains("network file share")),
            "{d:#?}"
        );
    }
}

#[test]
fn explain_is_honest_about_zones_when_copies_are_fewer_than_replicas() {
    let placement = |line: &str| {
        let s = compiled(&workloads(line));
        let d = s.workloads[0]
            .decisions
            .iter()
            .find(|d| d.topic == "placement")
            .expect("placement decision")
            .clone();
        (d.choice, d.reason.to_string())
    };
    // 5 brokers, partitions on 3: two copies can share a zone.
    let (choice, why) = placement("e = \"kafka 5 replicas 50Gi balanced zone-redundant\"\n");
    assert_eq!(choice, "spread evenly over 3 zones, one replica per node");
    assert!(
        why.contains("lives on 3 of the 5 replicas") && why.contains("broker.rack"),
        "{why}"
    );
    assert!(!why.contains("at most one copy"), "{why}");
    // 3 brokers, one per zone: a zone loss costs one copy.
    let (choice, why) = placement("e = \"kafka 3 replicas 50Gi balanced zone-redundant\"\n");
    assert_eq!(choice, "one replica per zone and per node");
    assert!(
        why.contains("losing a zone loses at most one copy"),
        "{why}"
    );
}

#[test]
fn disk_performance_matches_what_the_vm_drives() {
    let fast = FULL_OK.replace("balanced", "fast-ssd");
    let class = |s: &compile::DesiredState| {
        let p = &s.workloads[0].storage_class.parameters;
        (
            p["DiskIOPSReadWrite"].clone(),
            p["DiskMBpsReadWrite"].clone(),
        )
    };
    // The tier default (5000 IOPS / 200 MBps) on a D2ds_v5 (3750 / 85
    // uncached): lowered, but never below the tier's free baseline.
    let s = compiled(&full(&format!(
        "{fast}resources = {{ cpu = \"1\", memory = \"4Gi\" }}\n"
    )));
    assert_eq!(s.node_pools[0].vm_size, "Standard_D2ds_v5");
    assert_eq!(class(&s), ("3750".into(), "125".into()));
    // Asked-for performance picks a VM that drives it.
    let s = compiled(&full(&format!(
        "{fast}resources = {{ cpu = \"1\", memory = \"4Gi\" }}\ndisk = {{ iops = 12000, throughput_mbps = 500 }}\n"
    )));
    assert_eq!(s.node_pools[0].vm_size, "Standard_D16ds_v5");
    assert_eq!(class(&s), ("12000".into(), "500".into()));
    // With the VM size set too, it is kept, with a warning.
    let d = diagnose(&full(&format!(
        "{fast}disk = {{ iops = 12000 }}\nnode_pool = {{ vm_size = \"Standard_D4ds_v5\" }}\n"
    )));
    assert!(!d.iter().any(Diagnostic::is_error), "{d:#?}");
    let w = d
        .iter()
        .find(|d| {
            d.message
                .contains("Standard_D4ds_v5 drives at most 6400 IOPS")
        })
        .unwrap_or_else(|| panic!("{d:#?}"));
    assert_eq!((w.line, w.column), (Some(13), Some(17)));
}

#[test]
fn zonal_with_three_zones() {
    let body = FULL_OK.replace("zone-redundant", "zonal");
    expect_error(
        &full(&format!(
            "{body}node_pool = {{ zones = [\"1\", \"2\", \"3\"] }}\n"
        )),
        "zonal keeps all replicas in one zone",
        13,
        23,
    );
}

#[test]
fn even_replicas_warn_for_consensus_engines() {
    let d = diagnose(&workloads(
        "events = \"kafka 4 replicas 50Gi balanced zone-redundant\"\n",
    ));
    let w = d.iter().find(|d| !d.is_error()).expect("a warning");
    assert!(
        w.message
            .contains("4 kafka replicas tolerate no more failures than 3"),
        "{w:#?}"
    );
    assert_eq!((w.line, w.column), (Some(8), Some(17)));
    assert!(!d.iter().any(Diagnostic::is_error), "{d:#?}");
}

#[test]
fn all_errors_of_a_file_are_reported_together() {
    let text = workloads(
        "a = \"valkee 3 replicas 20Gi balanced zonal\"\nb = \"postgres 3 replicas 20GB balanced zonal\"\nc = \"mysql 3 replicas 20Gi premium zonal\"\n",
    );
    let d = diagnose(&text);
    let errors: Vec<_> = d
        .iter()
        .filter(|d| d.is_error())
        .map(|d| (d.line, d.message.as_str()))
        .collect();
    // Parse errors (b, c) and compile errors (a's engine) come together.
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert_eq!(
        errors.iter().map(|e| e.0).collect::<Vec<_>>(),
        vec![Some(8), Some(9), Some(10)]
    );
}

// --- hostile input -----------------------------------------------------------

#[test]
fn binary_input_is_refused() {
    let d =
        blueprint::decode_bytes("x.toml", &[0x7f, b'E', b'L', b'F', 0, 1, 2, 0xff]).unwrap_err();
    assert!(
        d.message.contains("not UTF-8") || d.message.contains("NUL"),
        "{d:#?}"
    );
    let d = blueprint::decode_bytes("x.toml", b"a = 1\0").unwrap_err();
    assert!(d.message.contains("NUL bytes"), "{d:#?}");
    // Where, in characters: `é` is one column.
    let d = blueprint::decode_bytes("x.toml", b"name = \"t\"\n\xc3\xa9 = \xff\n").unwrap_err();
    assert!(d.message.contains("not UTF-8"), "{d:#?}");
    assert_eq!((d.line, d.column), (Some(2), Some(5)));
    let mut all = Diagnostics::new();
    all.push(*d);
    let text = all.render(false);
    assert!(text.contains("x.toml:2:5"), "{text}");
    let d = blueprint::decode_bytes("x.toml", b"a = 1\nb = \"\0\"").unwrap_err();
    assert_eq!((d.line, d.column), (Some(2), Some(6)));
}

#[test]
fn huge_input_is_refused_before_parsing() {
    let big = vec![b'#'; blueprint::MAX_FILE_BYTES + 1];
    let d = blueprint::decode_bytes("x.toml", &big).unwrap_err();
    assert!(d.message.contains("at most"), "{d:#?}");
}

#[test]
fn deeply_nested_input_does_not_panic() {
    let deep = format!(
        "{TARGET}[workloads]\na = {}1{}\n",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let d = diagnose(&deep);
    assert!(d.iter().any(Diagnostic::is_error));
    let deep_tables = format!(
        "{TARGET}[workloads]\na = {}{}\n",
        "{ b = ".repeat(3000),
        "1 }".repeat(3000)
    );
    let d = diagnose(&deep_tables);
    assert!(d.iter().any(Diagnostic::is_error));
}

#[test]
fn many_workloads_with_errors_do_not_panic() {
    let mut body = String::new();
    for i in 0..500 {
        body.push_str(&format!("w{i} = \"nope {i} replicas 1XB bad bad extra\"\n"));
    }
    let d = diagnose(&workloads(&body));
    assert!(d.len() >= 500);
}

/// Large blueprints compile their workloads in parallel; diagnostics still
/// come out once per workload, in blueprint order, at their own lines.
#[test]
fn compile_errors_of_a_large_blueprint_stay_in_blueprint_order() {
    let mut body = String::new();
    let mut want = Vec::new();
    for i in 0..400 {
        if i % 37 == 5 {
            body.push_str(&format!(
                "w{i} = \"nosuchdb 3 replicas 10Gi balanced none\"\n"
            ));
            want.push(8 + i);
        } else {
            body.push_str(&format!(
                "w{i} = \"postgres 3 replicas 10Gi balanced none\"\n"
            ));
        }
    }
    let lines: Vec<usize> = diagnose(&workloads(&body))
        .iter()
        .filter(|d| d.is_error() && d.message.contains("unknown engine `nosuchdb`"))
        .filter_map(|d| d.line)
        .collect();
    assert_eq!(lines, want);
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A cheap deterministic fuzz: mutate a valid blueprint byte by byte.
    let base = workloads(
        "cache = \"valkey 3 replicas 20Gi balanced zone-redundant\"\n[workloads.db]\nengine = \"postgres\"\nreplicas = 3\nstorage = \"100Gi\"\ntier = \"fast-ssd\"\nredundancy = \"zone-redundant\"\nresources = { cpu = \"2\", memory = \"8Gi\" }\n",
    );
    let bytes = base.as_bytes();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..400 {
        let mut m = bytes.to_vec();
        for _ in 0..3 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let i = (seed as usize) % m.len();
            m[i] = (seed >> 32) as u8;
        }
        if let Ok(text) = blueprint::decode_bytes("fuzz.toml", &m) {
            let _ = diagnose(&text);
        }
    }
}

#[test]
fn two_workloads_sharing_a_key_vault_secret() {
    // `app-db`'s engine secret `password` and `app`'s extra `db-password`
    // are both stored as `app-db-password`.
    expect_error(
        &workloads(&format!(
            "app-db = \"valkey 3 replicas 10Gi standard zone-redundant\"\n[workloads.app]\n{FULL_OK}secrets = [\"db-password\"]\n"
        )),
        "workloads `app-db` and `app` would share Key Vault secret `app-db-password`",
        9,
        12,
    );
}

#[test]
fn names_joined_from_namespace_and_workload_must_not_meet() {
    // ("a-a", "db") and ("a", "a-db") both give `a-a-db`.
    let one = |name: &str, ns: &str| {
        format!(
            "[workloads.{name}]\n{FULL_OK}namespace = \"{ns}\"\nbackup = {{ schedule = \"0 2 * * *\" }}\n"
        )
    };
    let text = format!("{TARGET}{}{}", one("db", "a-a"), one("a-db", "a"));
    expect_error(
        &text,
        "workloads `db` and `a-db` would share the Velero Schedule name `a-a-db`",
        15,
        12,
    );
    expect_error(
        &text,
        "workloads `db` and `a-db` would share the federated credential name `aks-prod-a-a-db-secrets`",
        15,
        12,
    );
}

#[test]
fn type_zero_and_negative_errors_have_hints() {
    expect_error(
        &full(&FULL_OK.replace("engine = \"postgres\"", "engine = true")),
        "`engine` must be a string, found a boolean",
        8,
        10,
    );
    expect_error(
        &full(&format!("{FULL_OK}resources = {{ cpu = \"0\" }}\n")),
        "cpu must be larger than zero",
        13,
        21,
    );
    expect_error(
        &full(&format!("{FULL_OK}resources = {{ cpu = \"-1\" }}\n")),
        "cpu `-1` is negative",
        13,
        21,
    );
}

/// A cheap deterministic fuzz of a platform team's templates: what a
/// template writer mistypes, inserted into the built-in templates, and the
/// blueprint taken through the whole offline pipeline. Each outcome is a
/// render or errors that each name a template file and line; none panics
/// (minijinja's compiler did, on an `import … as` followed by an
/// expression, until stateplan contained it).
#[test]
fn mutated_templates_never_panic_and_every_error_is_located() {
    const FILES: [&str; 6] = [
        "kubernetes/poddisruptionbudget.yaml.j2",
        "kubernetes/_metadata.j2",
        "kubernetes/service-client.yaml.j2",
        "kubernetes/statefulset.yaml.j2",
        "kubernetes/velero-schedule.yaml.j2",
        "engines/postgres/pod.yaml.j2",
    ];
    const TYPOS: [&str; 24] = [
        "-",
        "(",
        ")",
        "1",
        ".",
        "()",
        " as -",
        "|",
        "%}",
        "{%",
        "{{",
        "}}",
        ": x",
        ":",
        "\n  bogus: 1\n",
        "\t",
        "é",
        "---\n",
        "[",
        "}",
        "\"",
        "#",
        "~",
        "kind: Secret\n",
    ];
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let blueprint = root.join("blueprints/postgres-ha.toml");
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |bound: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % bound as u64) as usize
    };
    let (mut rendered, mut refused) = (0, 0);
    for round in 0..400 {
        let dir = scratch::Scratch::new("template-fuzz");
        let name = FILES[next(FILES.len())];
        let mut source =
            std::fs::read_to_string(root.join("templates").join(name)).expect("built-in template");
        for _ in 0..1 + next(3) {
            let mut at = next(source.len() + 1);
            while !source.is_char_boundary(at) {
                at -= 1;
            }
            source.insert_str(at, TYPOS[next(TYPOS.len())]);
        }
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("in a folder")).expect("mkdir");
        std::fs::write(&path, &source).expect("write");
        match stateplan::pipeline::load(&blueprint.to_string_lossy(), Some(&dir)) {
            Ok(_) => rendered += 1,
            Err(diagnostics) => {
                refused += 1;
                for d in diagnostics.items().iter().filter(|d| d.is_error()) {
                    let file = d.file.as_deref().unwrap_or("");
                    assert!(
                        file.ends_with(".j2") && d.line.is_some(),
                        "round {round}, {name}: an error not located in a template: {d:?}\n{source}"
                    );
                }
            }
        }
    }
    // Both outcomes occur, so the assertions above were reached.
    assert!(
        rendered > 0 && refused > 0,
        "{rendered} rendered, {refused} refused"
    );
}
