//! The compilation pipeline the commands share (`minnow_autotune::compile`: lower → schedule →
//! plan memory → emit C) and the measurers that run the result.

use anyhow::{bail, Context, Result};
use minnow_autotune::apply::compile_tuned;
pub use minnow_autotune::compile::Compiled;
use minnow_autotune::compile::Schedules;
use minnow_autotune::db::SqliteDb;
use minnow_autotune::measure::{measure_on_target, Build, Measurement};
use minnow_ir::Graph;
use minnow_targets::Target;
use std::path::Path;

/// The C name for a model: `--name`, or the file's stem.
pub fn model_name(path: &Path, name: Option<&str>) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    minnow_ir::lower::c_identifier(name.unwrap_or(&stem))
}

/// Lowers, schedules, plans and emits `graph` as C named `name`: with the best records of
/// the tuning database `tuning_db` where given (a note on standard error says which layers
/// had none and fell back to the default), else with the target's default schedules.
pub fn compile(
    graph: &Graph,
    name: &str,
    target: &Target,
    tuning_db: Option<&Path>,
) -> Result<Compiled> {
    let Some(path) = tuning_db else {
        return Ok(minnow_autotune::compile::compile(
            graph,
            name,
            target,
            Schedules::Default,
        )?);
    };
    let db = open_existing_db(path)?;
    let (compiled, applied) = compile_tuned(graph, name, target, &db)?;
    eprintln!("minnow: {}", applied.note());
    Ok(compiled)
}

/// Opens a tuning database that must already exist (applying records from a file that is
/// not there is a mistyped path, not an empty database).
pub fn open_existing_db(path: &Path) -> Result<SqliteDb> {
    if !path.is_file() {
        bail!(
            "there is no tuning database at {}; run `minnow tune MODEL --target TARGET --db {}` \
             first, or drop --tuning-db to use the default schedules",
            path.display(),
            path.display()
        );
    }
    Ok(SqliteDb::open(path)?)
}

/// Where a model runs: the board named by `--board`.
pub fn check_board(board: Option<&str>, target: &Target) -> Result<()> {
    match board {
        None => Ok(()),
        Some("qemu") if target.board.is_some() => Ok(()),
        Some("qemu") => bail!(
            "target {} has no emulated board; pick a microcontroller target",
            target.name
        ),
        Some(b) if b == "probe" || b.starts_with("probe:") => bail!(
            "--board {b}: real boards through probe-rs are not supported by this build of minnow \
             yet; use --board qemu for the emulated board"
        ),
        Some(other) => bail!("unknown board `{other}`; use qemu or probe[:SELECTOR]"),
    }
}

/// Builds and runs `compiled` on `target` (the host compiler for `host`, its emulated board
/// otherwise) on `vectors`.
pub fn measure(
    target: &Target,
    compiled: &Compiled,
    vectors: &[Vec<Vec<u8>>],
    per_layer: bool,
) -> Result<Measurement> {
    let build = Build {
        target,
        source: &compiled.source,
        vectors,
        per_layer,
    };
    measure_on_target(&build)
        .with_context(|| format!("cannot run {} on {}", compiled.program.name, target.name))
}

/// Checks input files against the model's inputs (count in terms of `--input` flags, then
/// sizes).
pub fn check_inputs(graph: &Graph, inputs: &[Vec<u8>]) -> Result<()> {
    if inputs.len() != graph.inputs.len() {
        bail!(
            "the model has {} input(s) but {} --input file(s) were given",
            graph.inputs.len(),
            inputs.len()
        );
    }
    let types = graph.inputs.iter().map(|t| &graph.tensor(*t).ty);
    minnow_ir::interp::check_inputs(types, inputs)?;
    Ok(())
}
