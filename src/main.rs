use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    stateplan::cli::run(stateplan::cli::Cli::parse())
}

/// jemalloc: the render hot path is allocation-bound (see Cargo.toml).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
