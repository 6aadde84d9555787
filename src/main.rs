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
