//! The command line: argument parsing and output. Each command is a thin
//! layer over the pipeline stages.

mod apply;
mod explain;
mod init;
mod output;
mod plan;
mod render;
mod templates;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

pub use output::Output;

/// Exit code for errors (bad input, failed operations).
pub const EXIT_ERROR: u8 = 1;

const EXAMPLES: &str = "\
Examples:
  stateplan init --engine postgres                  # writes blueprint.toml
  stateplan check blueprint.toml
  stateplan render blueprint.toml -o gitops/
  stateplan explain blueprint.toml
  stateplan plan blueprint.toml --only kubernetes   # exit 0 no changes, 2 changes, 1 error
  stateplan apply blueprint.toml --only kubernetes --yes
  stateplan templates show kubernetes/statefulset.yaml.j2";

/// Compile a short TOML blueprint into everything a stateful workload needs
/// on AKS: node pools, identities, Key Vault secrets, StorageClass,
/// StatefulSet, Services, PodDisruptionBudget and Velero backups.
#[derive(Debug, Parser)]
#[command(name = "stateplan", version, about, after_help = EXAMPLES, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// Platform-team templates overriding or adding to the built-ins.
    #[arg(long, global = true, env = "STATEPLAN_TEMPLATES", value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// How results are printed.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    pub output: Format,
    /// When to colour output (NO_COLOR is respected with `auto`).
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented starter blueprint.
    Init(init::InitArgs),
    /// Parse, validate and lint a blueprint; no cluster needed.
    Check(FileArgs),
    /// Render manifests and Azure bodies (stdout, or a GitOps tree with -o).
    Render(render::RenderArgs),
    /// Show every decision stateplan made and why.
    Explain(FileArgs),
    /// Diff the blueprint against the live cluster (exit 0 none, 2 changes, 1 error).
    Plan(plan::PlanArgs),
    /// Plan, confirm, apply in waves and wait for readiness.
    Apply(apply::ApplyArgs),
    /// Print the JSON Schema of blueprints (for editor completion).
    Schema,
    /// List or show the templates in effect.
    #[command(subcommand)]
    Templates(templates::TemplatesCommand),
    /// Print shell completions.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct FileArgs {
    /// The blueprint (`-` reads standard input).
    pub file: String,
}

/// Prints a command-line parsing error (or `--help`/`--version`, which clap
/// reports the same way) and returns the exit code. clap exits 2 on usage
/// errors, but 2 is `plan`'s "changes found": a mistyped flag in a CI job
/// must not read as drift, so usage errors exit 1 like every other error.
pub fn usage_error(e: &clap::Error) -> ExitCode {
    // Printing fails only if the terminal is gone; the exit code still says it.
    let _ = e.print();
    if e.use_stderr() {
        ExitCode::from(EXIT_ERROR)
    } else {
        ExitCode::SUCCESS
    }
}

/// Runs the command line; returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    let out = Output::new(cli.global.color, cli.global.output);
    let templates = cli.global.templates.as_deref();
    let code = match cli.command {
        Command::Init(args) => init::run(&out, templates, args),
        Command::Check(args) => render::check(&out, templates, &args.file),
        Command::Render(args) => render::run(&out, templates, args),
        Command::Explain(args) => explain::run(&out, templates, &args.file),
        Command::Plan(args) => plan::run(&out, templates, args),
        Command::Apply(args) => apply::run(&out, templates, args),
        Command::Schema => {
            out.stdout(crate::blueprint::JSON_SCHEMA);
            0
        }
        Command::Templates(cmd) => templates::run(&out, templates, cmd),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "stateplan",
                &mut std::io::stdout(),
            );
            0
        }
    };
    ExitCode::from(code)
}
