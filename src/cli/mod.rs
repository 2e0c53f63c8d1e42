//! Argument definitions and dispatch for the `minnow` subcommands.

mod bench;
mod compile;
mod farm;
mod inspect;
mod pipeline;
mod report;
mod run;
mod targets;
mod tune;
mod tuned;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use minnow_ir::Graph;
use std::path::Path;

/// A tensor compiler for microcontrollers.
#[derive(Parser, Debug)]
#[command(name = "minnow", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show a model's inputs, outputs, operators, MACs and weight bytes.
    Inspect(inspect::InspectArgs),
    /// Run one inference on input files and write the outputs.
    Run(run::RunArgs),
    /// Compile a model into C sources for a target.
    Compile(compile::CompileArgs),
    /// Build and run a model on a board with the timing harness.
    Bench(bench::BenchArgs),
    /// List the targets minnow compiles for.
    Targets(targets::TargetsArgs),
    /// Autotune a model's layers on a board and keep every trial in the tuning database.
    Tune(tune::TuneArgs),
    /// Write the HTML report of a tuning database.
    Report(report::ReportArgs),
    /// Farm mode: workers that measure for tuners through a shared PostgreSQL database.
    #[command(subcommand)]
    Farm(farm::FarmCommand),
}

/// Runs the parsed command.
pub fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Inspect(args) => inspect::inspect(&args),
        Command::Run(args) => run::run(&args),
        Command::Compile(args) => compile::compile(&args),
        Command::Bench(args) => bench::bench(&args),
        Command::Targets(args) => targets::targets(&args),
        Command::Tune(args) => tune::tune(&args),
        Command::Report(args) => report::report(&args),
        Command::Farm(command) => farm::farm(&command),
    }
}

/// Reads and imports a model file, choosing the importer by content.
pub fn load_model(path: &Path) -> Result<Graph> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read the model {}", path.display()))?;
    let name = path.display().to_string();
    Ok(minnow::load_graph(&bytes, &name)?)
}

/// Writes `text` to standard output. A reader that closed the pipe early (`minnow inspect | head`)
/// is not an error.
pub fn emit(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other.context("cannot write to standard output")?),
    }
}
