//! Benchmark of the offline hot path: a generated 1000-workload blueprint
//! through parse → compile → render → YAML stream and GitOps tree (in
//! memory). Prints wall time per run and the process's peak RSS.
//!
//! Run: `cargo bench --bench render` (release profile). Optional args:
//! `cargo bench --bench render -- <workloads> <runs>`.

use std::time::{Duration, Instant};

use stateplan::pipeline;
use stateplan::render::{gitops, to_yaml_stream};

const ENGINES: &[(&str, &str)] = &[
    ("postgres", "3 replicas 200Gi fast-ssd zone-redundant"),
    ("mysql", "3 replicas 100Gi balanced zone-redundant"),
    ("mongodb", "3 replicas 100Gi balanced zonal"),
    ("valkey", "3 replicas 20Gi standard zone-redundant"),
    ("kafka", "3 replicas 500Gi fast-ssd zone-redundant"),
    ("cassandra", "3 replicas 1Ti ultra none"),
    ("rabbitmq", "1 replica 100Gi balanced zone-redundant"),
];

fn blueprint(n: usize, engines: &[&str]) -> String {
    let mut s = String::from(
        "name = \"bench\"\n[target]\nsubscription = \"00000000-0000-0000-0000-000000000000\"\nresource_group = \"rg-bench\"\ncluster = \"aks-bench\"\nlocation = \"westeurope\"\nkey_vault = \"kv-bench\"\n[workloads]\n",
    );
    let usable: Vec<_> = ENGINES
        .iter()
        .filter(|(e, _)| engines.contains(e))
        .collect();
    for i in 0..n {
        let (engine, rest) = usable[i % usable.len()];
        s.push_str(&format!("w{i:04} = \"{engine} {rest}\"\n"));
    }
    s
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn main() {
    // `cargo bench` passes `--bench`; ignore flags.
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(1000);
    let runs = args.get(1).copied().unwrap_or(10);
    let catalog = pipeline::catalog(None).expect("built-in catalog");
    let engines: Vec<&str> = catalog.engine_names().collect();
    let text = blueprint(n, &engines);
    let dir = std::env::temp_dir().join(format!("stateplan-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tempdir");
    let path = dir.join("bench.toml");
    std::fs::write(&path, &text).expect("write blueprint");
    let path = path.to_string_lossy().to_string();

    let mut times = Vec::new();
    let mut objects = 0;
    let mut bytes = 0;
    let mut stages = [Duration::ZERO; 4];
    for _ in 0..runs {
        let start = Instant::now();
        let loaded = match pipeline::load(&path, None) {
            Ok(l) => l,
            Err(d) => panic!("bench blueprint fails:\n{}", d.render(false)),
        };
        let t_load = start.elapsed();
        let stream = to_yaml_stream(&loaded.rendered.objects);
        let t_stream = start.elapsed();
        let tree = gitops::tree(&loaded.rendered, &loaded.state);
        times.push(start.elapsed());
        stages[0] += t_load;
        stages[1] += t_stream - t_load;
        stages[2] += start.elapsed() - t_stream;
        objects = loaded.rendered.objects.len() + loaded.rendered.azure.len();
        bytes = stream.len() + tree.values().map(String::len).sum::<usize>();
    }
    // Where the time goes, averaged: the offline pipeline (parse, compile,
    // render + checks) vs. writing YAML out.
    let avg = |d: Duration| d.as_secs_f64() * 1000.0 / runs as f64;
    println!(
        "stages (avg): load+render {:.1} ms, YAML stream {:.1} ms, GitOps tree {:.1} ms",
        avg(stages[0]),
        avg(stages[1]),
        avg(stages[2])
    );
    let _ = std::fs::remove_dir_all(&dir);
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "render {n} workloads ({} engines, {objects} objects, {:.1} MB output): min {:.1} ms, median {:.1} ms, max {:.1} ms over {runs} runs; peak RSS {:.1} MiB",
        engines.len(),
        bytes as f64 / 1e6,
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1]),
        peak_rss_mib().unwrap_or(f64::NAN)
    );
}
