//! The compilation pipeline the commands share (`minnow_autotune::compile`: lower → schedule →
//! plan memory → emit C) and the measurers that run the result.

use anyhow::{bail, Context, Result};
use minnow::Patching;
use minnow_autotune::apply::{check_budget, compile_tuned};
pub use minnow_autotune::compile::Compiled;
use minnow_autotune::compile::Schedules;
use minnow_autotune::db::TuningDb;
use minnow_autotune::farm;
use minnow_autotune::farm::worker::MeasurerFactory;
use minnow_autotune::measure::probe::{ProbeMeasurer, ProbeSelector};
use minnow_autotune::measure::{measure_on_target, Build, Measurement, Measurer};
use minnow_ir::Graph;
use minnow_targets::Target;
use std::path::Path;
use std::sync::Arc;

/// The C name for a model: `--name`, or the file's stem.
pub fn model_name(path: &Path, name: Option<&str>) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    minnow_ir::lower::c_identifier(name.unwrap_or(&stem))
}

/// Lowers (the first layers in bands as `patching` says), schedules, plans and emits
/// `graph` as C named `name`: with the best records of
/// the tuning database `tuning_db` where given (a note on standard error says which layers
/// had none and fell back to the default), else with the target's default schedules; its
/// arena within `max_arena` bytes where given ([`compile_tuned`]).
pub fn compile(
    graph: &Graph,
    name: &str,
    target: &Target,
    patching: Patching,
    tuning_db: Option<&Path>,
    max_arena: Option<usize>,
) -> Result<Compiled> {
    let Some(path) = tuning_db else {
        let compiled =
            minnow_autotune::compile::compile(graph, name, target, patching, Schedules::Default)?;
        check_budget(&compiled.program, &compiled.plan, max_arena)?;
        return Ok(compiled);
    };
    let db = open_existing_db(path)?;
    let (compiled, applied) = compile_tuned(graph, name, target, patching, db.as_ref(), max_arena)?;
    eprintln!("minnow: {}", applied.note());
    Ok(compiled)
}

/// Opens a tuning database that must already exist (applying records from a file that is
/// not there is a mistyped path, not an empty database): a SQLite file, or a farm's
/// PostgreSQL database given by its `postgres://` URL.
pub fn open_existing_db(path: &Path) -> Result<Box<dyn TuningDb>> {
    let text = path.to_string_lossy();
    if !farm::is_postgres_url(&text) && !path.is_file() {
        bail!(
            "there is no tuning database at {}; run `minnow tune MODEL --target TARGET --db {}` \
             first, or drop --tuning-db to use the default schedules",
            path.display(),
            path.display()
        );
    }
    open_db(&text)
}

/// Opens (creating if needed) the tuning database `--db` names: a SQLite file path or a
/// `postgres://` URL.
pub fn open_db(db: &str) -> Result<Box<dyn TuningDb>> {
    Ok(minnow_autotune::db::open(db)?)
}

/// Where a model runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BoardChoice {
    /// The host or the target's emulated board.
    Default,
    /// The target's real board through this probe.
    Probe(ProbeSelector),
}

/// The board `--board` names, checked against the target (a probe must be attached).
pub fn check_board(board: Option<&str>, target: &Target) -> Result<BoardChoice> {
    match board {
        None => Ok(BoardChoice::Default),
        Some("qemu") if target.board.is_some() => Ok(BoardChoice::Default),
        Some("qemu") => bail!(
            "target {} has no emulated board; pick a microcontroller target",
            target.name
        ),
        Some(b) if b == "probe" || b.starts_with("probe:") => {
            let measurer = probe_measurer(b, target)?;
            Ok(BoardChoice::Probe(measurer.selector))
        }
        Some(other) => bail!("unknown board `{other}`; use qemu or probe[:SELECTOR]"),
    }
}

/// The probe measurer `--board probe[:SELECTOR]` names for `target`, with the probe found.
pub fn probe_measurer(board: &str, target: &Target) -> Result<ProbeMeasurer> {
    let selector = ProbeSelector::parse(board).map_err(anyhow::Error::msg)?;
    let Some(real) = &target.real_board else {
        let boards: Vec<String> = minnow_targets::real_board::all()
            .iter()
            .map(|b| format!("{} ({})", b.name, b.title))
            .collect();
        bail!(
            "minnow knows no real board for {}; pass one of these as --target: {}",
            target.name,
            boards.join(", ")
        );
    };
    if !target.toolchain.installed() {
        bail!("{}", target.toolchain.missing_message(target.name));
    }
    let measurer = ProbeMeasurer::new(selector);
    let probe = measurer.check(real)?;
    eprintln!("minnow: {} through {probe}", real.title);
    Ok(measurer)
}

/// The worker's board name and measurers for `--board probe[:SELECTOR]`.
pub fn probe_measurer_factory(
    board: &str,
    target: &Target,
) -> Result<(String, Arc<MeasurerFactory>)> {
    let measurer = probe_measurer(board, target)?;
    let name = format!(
        "{}:{}",
        target.real_board.as_ref().map_or("probe", |b| b.name),
        match &measurer.selector {
            ProbeSelector::Only => "only".to_string(),
            ProbeSelector::Serial(s) => s.clone(),
            ProbeSelector::Usb {
                vendor,
                product,
                serial,
            } => format!(
                "{vendor:04x}:{product:04x}:{}",
                serial.as_deref().unwrap_or("")
            ),
        }
    );
    let factory: Arc<MeasurerFactory> = Arc::new(move |timeout| {
        Box::new(ProbeMeasurer {
            timeout,
            ..measurer.clone()
        }) as Box<dyn Measurer + Send>
    });
    Ok((name, factory))
}

/// Checks that the cross compiler and the emulator of `target`'s emulated board are installed.
pub fn check_emulator(target: &Target) -> Result<()> {
    let Some(board) = &target.board else {
        bail!(
            "target {} has no emulated board; pick a microcontroller target",
            target.name
        );
    };
    let missing: Vec<String> = [
        (!target.toolchain.installed()).then(|| target.toolchain.missing_message(target.name)),
        (!board.installed()).then(|| board.missing_message()),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !missing.is_empty() {
        bail!("{}", missing.join("; "));
    }
    Ok(())
}

/// Builds and runs `compiled` on `target` (the host compiler for `host`, its emulated board,
/// or its real board through a probe) on `vectors`.
pub fn measure(
    target: &Target,
    board: &BoardChoice,
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
    match board {
        BoardChoice::Default => measure_on_target(&build),
        BoardChoice::Probe(selector) => ProbeMeasurer::new(selector.clone()).measure(&build),
    }
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
