use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match stateplan::cli::Cli::try_parse() {
        Ok(cli) => stateplan::cli::run(cli),
        Err(e) => stateplan::cli::usage_error(&e),
    }
}

/// jemalloc: the render hot path is allocation-bound (see Cargo.toml).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read before `main`. One arena for all threads
/// instead of four per core: each arena keeps its own freed pages, and a
/// 1000-workload `render -o` peaked about 5 MiB higher with the default
/// (59 against 54 MiB) in the same time; thread caches take the
/// contention.
#[cfg(not(target_env = "msvc"))]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static MALLOC_CONF: &[u8; 10] = b"narenas:1\0";
