//! The host measurer: builds the generated C with the host compiler and runs it natively,
//! timing each inference with the monotonic clock.

use super::build::{build_program, Link, WorkDir};
use super::process::run_logged;
use super::{Build, MeasureError, Measurement, Measurer, RUN_TIMEOUT};
use minnow_targets::board::HOST_SUPPORT;
use minnow_targets::harness;
use std::process::Command;
use std::time::Duration;

/// Runs of each input per host figure.
pub const HOST_REPEATS: usize = 15;

/// Runs on this machine: outputs, sizes and wall-clock nanoseconds per inference (noisy: a
/// search repeats each input and takes the median).
#[derive(Clone, Copy, Debug)]
pub struct HostMeasurer {
    /// How long a run may take before it counts as hanging.
    pub timeout: Duration,
}

impl Default for HostMeasurer {
    fn default() -> Self {
        HostMeasurer {
            timeout: RUN_TIMEOUT,
        }
    }
}

impl Measurer for HostMeasurer {
    fn runner(&self) -> &'static str {
        "host"
    }

    fn unit(&self) -> &'static str {
        "nanoseconds"
    }

    /// Wall-clock time is noisy: each input runs this many times.
    fn repeats(&self) -> usize {
        HOST_REPEATS
    }

    fn measure(&self, build: &Build) -> Result<Measurement, MeasureError> {
        let dir = WorkDir::new("minnow-host-")?;
        let link = Link {
            support: HOST_SUPPORT,
            before: Vec::new(),
            after: Vec::new(),
        };
        let (exe, sections) = build_program(build, dir.path(), &link)?;
        let stdout = run_logged(Command::new(&exe), dir.path(), self.timeout, "host")?;
        let report = harness::parse(&stdout).map_err(|message| MeasureError::Run {
            board: "host".into(),
            message,
        })?;
        Ok(Measurement {
            nanoseconds: Some(report.vectors.iter().map(|v| v.count).collect()),
            outputs: report.vectors.into_iter().map(|v| v.outputs).collect(),
            instructions: None,
            cycles: None,
            layer_counts: Vec::new(),
            sections,
        })
    }
}
