use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    stateplan::cli::run(stateplan::cli::Cli::parse())
}
