//! Benchmark of a no-op `plan`: a generated blueprint of 50 workloads (the
//! built-in engines in turn, 10 namespaces) is applied to the in-process API
//! server double, then planned again. Reports the requests the no-op plan
//! sends and its wall time, against the design target
//! `requests ≤ kinds × namespaces + changed objects`.
//!
//! Run: `cargo bench --bench plan_noop` (optional: `-- <workloads> <runs>`).

#[path = "../tests/support/kube_double/mod.rs"]
#[allow(dead_code, clippy::all)]
mod kube_double;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use kube::{Client, Config};
use serde_json::json;
use stateplan::apply::{self, ApplyOptions, Outcome, Quiet};
use stateplan::pipeline;
use stateplan::plan::{self, Desired, PlanOptions};

const ENGINES: &[(&str, &str)] = &[
    ("postgres", "1 replica 20Gi balanced none"),
    ("mysql", "1 replica 20Gi balanced none"),
    ("mongodb", "1 replica 20Gi balanced none"),
    ("valkey", "1 replica 5Gi standard none"),
    ("kafka", "3 replicas 50Gi balanced none"),
    ("cassandra", "3 replicas 50Gi balanced none"),
    ("rabbitmq", "1 replica 10Gi balanced none"),
];

fn blueprint(n: usize, engines: &[&str]) -> String {
    let mut s = String::from(
        "name = \"bench\"\n[target]\nsubscription = \"00000000-0000-0000-0000-000000000000\"\nresource_group = \"rg-bench\"\ncluster = \"aks-bench\"\nlocation = \"westeurope\"\nkey_vault = \"kv-bench\"\n",
    );
    let usable: Vec<_> = ENGINES
        .iter()
        .filter(|(e, _)| engines.contains(e))
        .collect();
    for i in 0..n {
        let (engine, rest) = usable[i % usable.len()];
        let mut words = rest.split_whitespace();
        let replicas = words.next().unwrap_or("1");
        let _ = words.next();
        let storage = words.next().unwrap_or("10Gi");
        let tier = words.next().unwrap_or("balanced");
        s.push_str(&format!(
            "[workloads.w{i:03}]\nengine = \"{engine}\"\nreplicas = {replicas}\nstorage = \"{storage}\"\ntier = \"{tier}\"\nredundancy = \"none\"\nnamespace = \"ns{}\"\n",
            i % 10
        ));
    }
    s
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(50);
    let runs = args.get(1).copied().unwrap_or(10);
    let catalog = pipeline::catalog(None).expect("built-in catalog");
    let engines: Vec<&str> = catalog.engine_names().collect();
    let dir = std::env::temp_dir().join(format!("stateplan-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("bench.toml");
    std::fs::write(&path, blueprint(n, &engines)).expect("write blueprint");
    let loaded = pipeline::load(&path.to_string_lossy(), None).expect("blueprint loads");
    let _ = std::fs::remove_dir_all(&dir);
    let objects = &loaded.rendered.objects;
    let desired = Desired {
        blueprint: &loaded.state.blueprint.name,
        objects,
        pending: &loaded.rendered.pending,
        workloads: &loaded.state.workloads,
    };
    let resolved: BTreeMap<String, String> = loaded
        .rendered
        .pending
        .iter()
        .map(|p| {
            (
                p.placeholder.clone(),
                "11111111-2222-3333-4444-555555555555".into(),
            )
        })
        .collect();
    let kinds: BTreeSet<&str> = objects.iter().map(|o| o.kind.as_str()).collect();
    let namespaces: BTreeSet<&str> = objects
        .iter()
        .filter_map(|o| o.namespace.as_deref())
        .collect();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let d = kube_double::KubeDouble::start().await;
        d.install_stateplan_crds();
        d.seed(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "velero"}}));
        d.set_controller(Some(Duration::from_millis(2)));
        let c = Client::try_from(Config::new(d.url().parse().expect("url"))).expect("client");
        let popts = PlanOptions {
            resolved,
            ..Default::default()
        };
        let aopts = ApplyOptions {
            plan: popts.clone(),
            poll: Duration::from_millis(10),
            timeout: Duration::from_secs(120),
            ..Default::default()
        };
        let started = Instant::now();
        let r = apply::run(&c, &desired, &aopts, &mut |_| true, &Quiet)
            .await
            .expect("initial apply");
        assert_eq!(r.outcome, Outcome::Applied, "initial apply");
        let apply_time = started.elapsed();

        let mut times = Vec::new();
        let mut requests = Vec::new();
        let mut changes = 0;
        for _ in 0..runs {
            d.reset_requests();
            let t = Instant::now();
            let p = plan::plan(&c, &desired, &popts).await.expect("plan");
            times.push(t.elapsed());
            requests = d.requests();
            changes = p.changes();
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let target = kinds.len() * namespaces.len() + changes;
        println!(
            "no-op plan of {n} workloads ({} engines, {} objects, {} kinds, {} namespaces): {} requests (target ≤ {target} = kinds × namespaces + {changes} changed), {changes} changes; wall min {:.1} ms, median {:.1} ms, max {:.1} ms over {runs} runs (initial apply with waits: {:.1} s)",
            engines.len(),
            objects.len(),
            kinds.len(),
            namespaces.len(),
            requests.len(),
            ms(times[0]),
            ms(times[times.len() / 2]),
            ms(times[times.len() - 1]),
            apply_time.as_secs_f64(),
        );
        for r in &requests {
            println!("  {r}");
        }
        assert_eq!(changes, 0, "a no-op plan");
        assert!(requests.len() <= target, "over the request budget");
    });
}
