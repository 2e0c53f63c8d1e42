//! Measurement: build a generated model with a timing harness, run it, read back its outputs,
//! its cost and its size.
//!
//! A [`Measurer`] runs one [`Build`]. [`host::HostMeasurer`] compiles with the host C compiler
//! and runs natively (outputs only); [`qemu::QemuMeasurer`] cross-compiles with the target's
//! toolchain and runs on the target's emulated board, reporting retired instructions per
//! inference (and per layer). Every run happens in its own temporary directory and process, so
//! measurers may run in parallel.

mod build;
pub mod host;
pub mod probe;
mod process;
pub mod qemu;
pub mod rust_host;

pub use build::{command_line, model_sections, Sections};

use minnow_backends::c::CSource;
use minnow_targets::Target;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What to build and run.
#[derive(Clone, Debug)]
pub struct Build<'a> {
    /// The target.
    pub target: &'a Target,
    /// The generated model.
    pub source: &'a CSource,
    /// Input vectors: for each inference, the bytes of each model input.
    pub vectors: &'a [Vec<Vec<u8>>],
    /// Also time each layer.
    pub per_layer: bool,
}

/// What a run gave.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Measurement {
    /// For each vector, the bytes of each output.
    pub outputs: Vec<Vec<Vec<u8>>>,
    /// Retired instructions of each inference (emulated boards only).
    pub instructions: Option<Vec<u64>>,
    /// Wall-clock nanoseconds of each inference (the host only).
    pub nanoseconds: Option<Vec<u64>>,
    /// Core clock cycles of each inference (real boards only: DWT CYCCNT, mcycle).
    pub cycles: Option<Vec<u64>>,
    /// The runner's count (retired instructions, or cycles on a real board) of each layer in
    /// the last inference (with `per_layer`).
    pub layer_counts: Vec<u64>,
    /// Section sizes of the model's own code and data.
    pub sections: Sections,
}

/// Why a measurement failed; each message names the problem and the fix.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    /// A compiler or emulator is missing.
    #[error("{0}")]
    MissingTool(String),
    /// The C did not compile.
    #[error("{compiler} failed to build the generated code for {target}:\n{stderr}")]
    Compile {
        /// The compiler.
        compiler: String,
        /// The target.
        target: String,
        /// Its diagnostics.
        stderr: String,
    },
    /// The program or board failed or gave output that cannot be read.
    #[error("the {board} run failed: {message}")]
    Run {
        /// The board (or `host`).
        board: String,
        /// What happened.
        message: String,
    },
    /// The program or board did not finish in time (a hanging candidate, a board that does
    /// not answer).
    #[error("the {board} run did not finish within {seconds:.0} s")]
    Timeout {
        /// The board (or `host`).
        board: String,
        /// The deadline.
        seconds: f64,
    },
    /// The board itself failed, not the candidate: no probe attached, a probe that
    /// disconnected, a chip that does not answer. The same build may succeed on another board.
    #[error("the {board} board failed: {message}")]
    Board {
        /// The board (probe and chip).
        board: String,
        /// What happened and what to do.
        message: String,
    },
    /// Reading or writing the work directory failed.
    #[error("work directory: {0}")]
    Io(#[from] std::io::Error),
}

/// Builds and runs generated code.
pub trait Measurer {
    /// Runs `build` and returns its outputs and costs.
    fn measure(&self, build: &Build) -> Result<Measurement, MeasureError>;

    /// The runner's name in tuning records (`qemu`, `host`, `probe`).
    fn runner(&self) -> &'static str;

    /// The unit of [`Measurement::figure`] (`instructions`, `nanoseconds`, `cycles`).
    fn unit(&self) -> &'static str;

    /// How many times a search should run each input for one figure (the median is taken):
    /// 1 where the count is deterministic.
    fn repeats(&self) -> usize {
        1
    }
}

impl Measurement {
    /// The cost of one inference: the median over the runs of whatever this runner counts
    /// (retired instructions on an emulated board, cycles on a real one, nanoseconds on the
    /// host); `None` if it
    /// counts nothing.
    pub fn figure(&self) -> Option<f64> {
        let counts = self
            .instructions
            .as_ref()
            .or(self.cycles.as_ref())
            .or(self.nanoseconds.as_ref())?;
        let mut sorted = counts.clone();
        sorted.sort_unstable();
        sorted.get(sorted.len() / 2).map(|c| *c as f64)
    }
}

/// Runs `build` where its target runs: natively for the host, on the emulated board otherwise.
pub fn measure_on_target(build: &Build) -> Result<Measurement, MeasureError> {
    if build.target.is_host() {
        host::HostMeasurer::default().measure(build)
    } else {
        qemu::QemuMeasurer::default().measure(build)
    }
}

/// How long a run may take before the board counts as not answering.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(600);
