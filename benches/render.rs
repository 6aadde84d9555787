//! Benchmark of the offline hot path: a generated 1000-workload blueprint
//! through parse → compile → render, the way `stateplan render` runs it
//! (bodies kept as YAML text): first to a YAML stream, then as a GitOps
//! tree written to a temporary folder. Prints wall time per run and the
//! process's peak RSS after the first run (what one `stateplan render`
//! uses) and after all of them (with jemalloc's single arena, memory freed
//! by earlier runs is not all reused within its ten-second decay, so that
//! figure grows with the number of runs); then the time of the same
//! pipeline keeping bodies as trees (what `plan` uses).
//!
//! Run: `cargo bench --bench render` (release profile). Optional args:
//! `cargo bench --bench render -- <workloads> <runs>`.

use std::io::Write;
use std::time::{Duration, Instant};

use stateplan::pipeline;

/// The allocator the `stateplan` binary uses (src/main.rs).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, as in `src/main.rs`. One arena for all threads
/// instead of four per core: each arena keeps its own freed pages, and a
/// 1000-workload `render -o` peaked about 5 MiB higher with the default
/// (59 against 54 MiB) in the same time; thread caches take the
/// contention.
#[cfg(not(target_env = "msvc"))]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static MALLOC_CONF: &[u8; 10] = b"narenas:1\0";
use stateplan::render::{Yaml, gitops};

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

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let load = || match pipeline::load_as::<Yaml>(&path, None) {
        Ok(l) => l,
        Err(d) => panic!("bench blueprint fails:\n{}", d.render(false)),
    };

    // `stateplan render FILE`: the YAML stream, object by object, to a sink.
    // Measured first: peak RSS only grows.
    let mut times = Vec::new();
    let (mut objects, mut azure, mut bytes) = (0, 0, 0);
    // The first run is what one `stateplan render` does; later runs reuse
    // (or not) what the allocator kept from earlier ones.
    let mut first_peak = f64::NAN;
    for run in 0..runs {
        let start = Instant::now();
        let loaded = load();
        let mut out = std::io::BufWriter::new(std::io::sink());
        bytes = 0;
        for o in &loaded.rendered.objects {
            bytes += o.body.0.len() + 4;
            let _ = out.write_all(b"---\n");
            let _ = out.write_all(o.body.0.as_bytes());
        }
        let _ = out.flush();
        (objects, azure) = (loaded.rendered.objects.len(), loaded.rendered.azure.len());
        drop(loaded);
        times.push(start.elapsed());
        if run == 0 {
            first_peak = peak_rss_mib().unwrap_or(f64::NAN);
        }
    }
    times.sort();
    let peak = peak_rss_mib().unwrap_or(f64::NAN);
    println!(
        "render {n} workloads to a YAML stream ({} engines, {objects} Kubernetes objects in {:.1} MB, {azure} Azure bodies built): min {:.1} ms, median {:.1} ms, max {:.1} ms over {runs} runs; peak RSS {first_peak:.1} MiB after the first run, {:.1} MiB after all",
        engines.len(),
        bytes as f64 / 1e6,
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1]),
        peak
    );

    // `stateplan render FILE -o DIR`: the GitOps tree, written to a
    // temporary folder (later runs rewrite it, as a re-render would).
    let out_dir = dir.join("tree");
    let mut times = Vec::new();
    let mut files = 0;
    for _ in 0..runs {
        let start = Instant::now();
        let loaded = load();
        let tree = gitops::tree(&loaded.rendered, &loaded.state);
        files = tree.len();
        if let Err(e) = gitops::write(&out_dir, &tree, false) {
            panic!("cannot write the tree: {e}");
        }
        drop(tree);
        drop(loaded);
        times.push(start.elapsed());
    }
    times.sort();
    println!(
        "render {n} workloads as a GitOps tree ({files} files written to {}): min {:.1} ms, median {:.1} ms; peak RSS {:.1} MiB",
        out_dir.display(),
        ms(times[0]),
        ms(times[times.len() / 2]),
        peak_rss_mib().unwrap_or(f64::NAN)
    );

    // The plan/apply path keeps every body as a serde_json::Value.
    let mut tree_times = Vec::new();
    for _ in 0..runs.min(3) {
        let start = Instant::now();
        let loaded = pipeline::load(&path, None);
        tree_times.push(start.elapsed());
        drop(loaded);
    }
    tree_times.sort();
    println!(
        "load with Value bodies (plan/apply): median {:.1} ms",
        ms(tree_times[tree_times.len() / 2])
    );
    let _ = std::fs::remove_dir_all(&dir);
}
