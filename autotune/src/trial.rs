//! One trial: build a task's standalone program under a candidate schedule, run it on the
//! measurer, check its outputs bit for bit against the reference, and read its figure (the
//! task's own layer where the runner counts layers).
//!
//! The reference is the unscheduled program run by the loop-IR interpreter on random inputs
//! (fixed per task and seed), so a schedule that changes any output bit, crashes, fails to
//! build or hangs past the runner's deadline is an outcome, never a figure.

use crate::compile::{schedule_and_emit, Compiled, Lowered, Schedules};
use crate::db::Status;
use crate::measure::{Build, MeasureError, Measurer};
use crate::task::{task_step, Task};
use minnow_ir::loops::interp::ProgramInterp;
use minnow_ir::loops::{Program, ScalarType};
use minnow_schedules::Schedule;
use minnow_targets::Target;
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Random input vectors per trial (besides the model's own activations): enough that a wrong
/// schedule shows.
pub const CHECK_VECTORS: usize = 2;

/// A task's inputs and the reference outputs every candidate must reproduce.
#[derive(Clone, Debug, PartialEq)]
pub struct Reference {
    /// For each vector, the bytes of each input.
    pub vectors: Vec<Vec<Vec<u8>>>,
    /// For each vector, the bytes of each output.
    pub outputs: Vec<Vec<Vec<u8>>>,
}

impl Reference {
    /// Random inputs for `task` drawn from `seed`, then the task's activations in the model
    /// (last: the harness times the layers of the last vector), and the unscheduled
    /// program's outputs for each.
    pub fn new(task: &Task, seed: u64) -> Result<Reference, String> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let program = &task.program;
        let mut vectors: Vec<Vec<Vec<u8>>> = (0..CHECK_VECTORS)
            .map(|_| random_inputs(program, &mut rng))
            .collect();
        vectors.push(task.activations.clone());
        let mut interp = ProgramInterp::new(program).map_err(|e| e.to_string())?;
        let outputs = vectors
            .iter()
            .map(|v| {
                interp.reset();
                interp.run(v).map_err(|e| e.message)
            })
            .collect::<Result<_, _>>()?;
        Ok(Reference { vectors, outputs })
    }
}

/// Bytes for each input of `program`: uniform bytes for integers, values in [-1, 1) for
/// floats (random bit patterns would be NaNs).
fn random_inputs(program: &Program, rng: &mut impl Rng) -> Vec<Vec<u8>> {
    program
        .inputs
        .iter()
        .map(|slot| {
            let s = program.slot(*slot);
            match s.elem {
                ScalarType::F32 => (0..s.len)
                    .flat_map(|_| rng.random_range(-1.0f32..1.0).to_le_bytes())
                    .collect(),
                _ => (0..s.bytes()).map(|_| rng.random()).collect(),
            }
        })
        .collect()
}

/// What a trial gave.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// How it ended.
    pub status: Status,
    /// The figure (median over runs), when `Ok`.
    pub figure: Option<f64>,
    /// What went wrong otherwise.
    pub message: Option<String>,
}

impl Outcome {
    fn failed(status: Status, message: String) -> Outcome {
        Outcome {
            status,
            figure: None,
            message: Some(message),
        }
    }
}

/// `task`'s standalone program compiled for `target` under `schedule`.
pub fn compile_candidate(
    task: &Task,
    schedule: &Schedule,
    target: &Target,
) -> Result<Compiled, String> {
    let lowered = Lowered {
        rewrite: Default::default(),
        patch: Default::default(),
        program: task.program.clone(),
        tilings: Default::default(),
    };
    let chosen = |_: usize, _: &_, _: &_| Some(schedule.clone());
    schedule_and_emit(lowered, target, Schedules::Chosen(&chosen)).map_err(|e| e.to_string())
}

/// Times a trial is tried again when the board (not the candidate) fails.
pub const BOARD_RETRIES: usize = 2;

/// A cheaper runner every candidate passes before the board (`minnow tune --prescreen`):
/// it runs the candidate's C once per reference vector and checks the outputs bit for bit,
/// so that a wrong, crashing or hanging candidate is recorded as such without taking a turn
/// on the board (a real board's flash and reset cost seconds; a hang, the whole timeout).
#[derive(Clone, Copy)]
pub struct Prescreen<'a> {
    /// What the candidate's C is built for: the host (its DSP intrinsics then run as the
    /// portable C the generated runtime has for them), or the board's own target.
    pub target: &'a Target,
    /// Where it runs.
    pub measurer: &'a (dyn Measurer + Sync),
}

/// Measures `task` under `schedule` on `measurer` against `reference`, after `prescreen`
/// where given (a candidate it finds wrong, crashing or hanging is that outcome, its message
/// naming the pre-screen). A failure of the board itself ([`MeasureError::Board`]) is retried
/// [`BOARD_RETRIES`] times and then returned: it says nothing about the candidate, so it is
/// never an outcome.
pub fn run_trial(
    task: &Task,
    schedule: &Schedule,
    target: &Target,
    measurer: &dyn Measurer,
    reference: &Reference,
    prescreen: Option<Prescreen>,
) -> Result<Outcome, MeasureError> {
    let compiled = match compile_candidate(task, schedule, target) {
        Ok(c) => c,
        Err(e) => {
            return Ok(Outcome::failed(
                Status::Failed,
                format!("does not compile: {e}"),
            ))
        }
    };
    if let Some(screen) = prescreen {
        let checked =
            retried(|| measure_compiled(&compiled, screen.target, screen.measurer, reference, 1))?;
        if checked.status != Status::Ok {
            let runner = screen.measurer.runner();
            let message = checked.message.unwrap_or_default();
            return Ok(Outcome::failed(
                checked.status,
                format!("failed the {runner} pre-screen (not run on the board): {message}"),
            ));
        }
    }
    let repeats = measurer.repeats().max(1);
    retried(|| measure_compiled(&compiled, target, measurer, reference, repeats))
}

/// `measure` again, up to [`BOARD_RETRIES`] times, while the board fails.
fn retried(measure: impl Fn() -> Result<Outcome, MeasureError>) -> Result<Outcome, MeasureError> {
    let mut tries = 0;
    loop {
        match measure() {
            Err(_) if tries < BOARD_RETRIES => tries += 1,
            other => return other,
        }
    }
}

/// Measures the compiled candidate once, each vector `repeats` times in a row (so the
/// figure's median is of like runs); only a board failure is an error.
fn measure_compiled(
    compiled: &Compiled,
    target: &Target,
    measurer: &dyn Measurer,
    reference: &Reference,
    repeats: usize,
) -> Result<Outcome, MeasureError> {
    let vectors: Vec<Vec<Vec<u8>>> = reference
        .vectors
        .iter()
        .flat_map(|v| std::iter::repeat_n(v.clone(), repeats))
        .collect();
    let build = Build {
        target,
        source: &compiled.source,
        vectors: &vectors,
        per_layer: true,
    };
    let measurement = match measurer.measure(&build) {
        Ok(m) => m,
        Err(e @ MeasureError::Board { .. }) => return Err(e),
        Err(e @ MeasureError::Timeout { .. }) => {
            return Ok(Outcome::failed(Status::Timeout, e.to_string()))
        }
        Err(e) => return Ok(Outcome::failed(Status::Failed, e.to_string())),
    };
    let expected = reference
        .outputs
        .iter()
        .flat_map(|o| std::iter::repeat_n(o, repeats));
    let wrong = measurement
        .outputs
        .iter()
        .zip(expected)
        .position(|(got, want)| got != want);
    if measurement.outputs.len() != vectors.len() || wrong.is_some() {
        let v = wrong.map_or(0, |w| w / repeats);
        return Ok(Outcome::failed(
            Status::Wrong,
            format!("its outputs differ from the reference on random input vector {v}"),
        ));
    }
    // The task's own layer where the runner counts layers deterministically; otherwise the
    // whole program (the copies around it cost the same for every candidate).
    let step = task_step(&compiled.program);
    let layer = measurement.layer_counts.get(step).map(|c| *c as f64);
    Ok(match layer.or_else(|| measurement.figure()) {
        Some(figure) => Outcome {
            status: Status::Ok,
            figure: Some(figure),
            message: None,
        },
        None => Outcome::failed(
            Status::Failed,
            format!("the {} runner reported no figure", measurer.runner()),
        ),
    })
}
