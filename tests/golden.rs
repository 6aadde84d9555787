//! Golden tests: every example blueprint renders to exactly the reviewed
//! GitOps tree under tests/golden/<name>/. After an intended change, run
//! `UPDATE_GOLDEN=1 cargo test --test golden` and review the diff line by line.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use stateplan::pipeline;
use stateplan::render::{Yaml, gitops};

fn golden_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

fn read_tree(dir: &Path) -> BTreeMap<String, String> {
    support::read_tree(dir)
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8(v).expect("golden files are text")))
        .collect()
}

fn check_golden(name: &str, blueprint: &str, templates: Option<&Path>) {
    let loaded = match pipeline::load(blueprint, templates) {
        Ok(l) => l,
        Err(d) => panic!("{blueprint} does not render:\n{}", d.render(false)),
    };
    assert!(
        loaded.diagnostics.is_empty(),
        "{blueprint} has warnings:\n{}",
        loaded.diagnostics.render(false)
    );
    let files = gitops::tree(&loaded.rendered, &loaded.state).to_map();
    // `render` and `check` keep bodies as text instead of trees; the tree
    // they write must be the same, byte for byte.
    let as_text = pipeline::load_as::<Yaml>(blueprint, templates)
        .unwrap_or_else(|d| panic!("{blueprint} does not render as text:\n{}", d.render(false)));
    assert_eq!(as_text.rendered.pending, loaded.rendered.pending);
    assert!(
        gitops::tree(&as_text.rendered, &as_text.state).to_map() == files,
        "{name}: the tree from text bodies differs from the tree from Values"
    );
    let dir = golden_dir(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let _ = std::fs::remove_dir_all(&dir);
        for (rel, content) in &files {
            let p = dir.join(rel);
            std::fs::create_dir_all(p.parent().expect("has parent")).expect("create golden dir");
            std::fs::write(p, content).expect("write golden");
        }
        return;
    }
    let golden = read_tree(&dir);
    assert!(
        !golden.is_empty(),
        "no golden files for {name}; run UPDATE_GOLDEN=1 cargo test --test golden"
    );
    let rendered: Vec<_> = files.keys().collect();
    let expected: Vec<_> = golden.keys().collect();
    assert_eq!(rendered, expected, "{name}: the set of files changed");
    for (rel, content) in &files {
        if &golden[rel] != content {
            let diff = similar::TextDiff::from_lines(golden[rel].as_str(), content.as_str());
            panic!(
                "{name}/{rel} differs from the golden file:\n{}",
                diff.unified_diff().header("golden", "rendered")
            );
        }
    }
}

macro_rules! golden {
    ($test:ident, $file:literal) => {
        #[test]
        fn $test() {
            check_golden(stringify!($test), concat!("blueprints/", $file), None);
        }
    };
}

golden!(design_example, "design-example.toml");
golden!(postgres_ha, "postgres-ha.toml");
golden!(mysql_single, "mysql-single.toml");
golden!(mongodb_replicaset, "mongodb-replicaset.toml");
golden!(valkey_cache, "valkey-cache.toml");
golden!(kafka_events, "kafka-events.toml");
golden!(cassandra_ring, "cassandra-ring.toml");
golden!(rabbitmq_queues, "rabbitmq-queues.toml");
golden!(compact_fleet, "compact-fleet.toml");

#[test]
fn platform_team_override() {
    let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/platform-templates");
    check_golden(
        "platform_override",
        "tests/platform-blueprint.toml",
        Some(&templates),
    );
}

#[test]
fn every_example_blueprint_has_a_golden_test() {
    let me = include_str!("golden.rs");
    for e in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("blueprints"))
        .expect("blueprints/")
    {
        let name = e.expect("entry").file_name().to_string_lossy().to_string();
        assert!(
            me.contains(&format!("\"{name}\"")),
            "blueprints/{name} has no golden test"
        );
    }
}

/// Large blueprints render on several threads; the result must not depend
/// on which thread finished first: same bytes every run, workloads in
/// blueprint order within each wave.
#[test]
fn parallel_render_is_deterministic() {
    let engines = [
        "postgres 3 replicas 20Gi balanced zone-redundant",
        "mongodb 3 replicas 10Gi standard zonal",
        "valkey 1 replica 5Gi standard none",
        "cassandra 3 replicas 50Gi fast-ssd zone-redundant",
    ];
    let mut text = String::from(
        "name = \"many\"\n[target]\nsubscription = \"00000000-0000-0000-0000-000000000000\"\nresource_group = \"rg\"\ncluster = \"aks\"\nlocation = \"westeurope\"\nkey_vault = \"kv-many\"\n[workloads]\n",
    );
    for i in 0..80 {
        text.push_str(&format!("w{i:02} = \"{}\"\n", engines[i % engines.len()]));
    }
    let dir = support::scratch::Scratch::new("parallel");
    let path = dir.join("many.toml");
    std::fs::write(&path, text).expect("write blueprint");
    let path = path.to_string_lossy().to_string();
    let render = || {
        let loaded = pipeline::load_as::<Yaml>(&path, None)
            .unwrap_or_else(|d| panic!("does not render:\n{}", d.render(false)));
        let order: Vec<(String, Option<String>)> = loaded
            .rendered
            .objects
            .iter()
            .map(|o| (format!("{:?}", o.wave), o.workload.clone()))
            .collect();
        (
            gitops::tree(&loaded.rendered, &loaded.state).to_map(),
            order,
        )
    };
    let (first, order) = render();
    for _ in 0..3 {
        assert!(render().0 == first, "a second render differs");
    }
    // Within a wave, workload names (w00, w01, ...) never go backwards.
    for pair in order.windows(2) {
        let ((wave_a, a), (wave_b, b)) = (&pair[0], &pair[1]);
        if wave_a == wave_b
            && let (Some(a), Some(b)) = (a, b)
        {
            assert!(a <= b, "{b} after {a} in wave {wave_a}");
        }
    }
    assert_eq!(
        first
            .keys()
            .filter(|k| k.ends_with("/kustomization.yaml"))
            .count(),
        81
    );
}
