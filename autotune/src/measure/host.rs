//! The host measurer: builds the generated C with the host compiler and runs it natively.

use super::build::{build_program, Link, WorkDir};
use super::{Build, MeasureError, Measurement, Measurer};
use minnow_targets::board::HOST_SUPPORT;
use minnow_targets::harness;
use std::process::Command;

/// Runs on this machine (outputs and sizes; no instruction count).
#[derive(Clone, Copy, Debug, Default)]
pub struct HostMeasurer;

impl Measurer for HostMeasurer {
    fn measure(&self, build: &Build) -> Result<Measurement, MeasureError> {
        let dir = WorkDir::new("minnow-host-")?;
        let link = Link {
            support: HOST_SUPPORT,
            before: Vec::new(),
            after: Vec::new(),
        };
        let (exe, sections) = build_program(build, dir.path(), &link)?;
        let out = Command::new(&exe).output()?;
        let fail = |message: String| MeasureError::Run {
            board: "host".into(),
            message,
        };
        if !out.status.success() {
            return Err(fail(format!("the program exited with {}", out.status)));
        }
        let report = harness::parse(&String::from_utf8_lossy(&out.stdout)).map_err(fail)?;
        Ok(Measurement {
            outputs: report.vectors.into_iter().map(|v| v.outputs).collect(),
            instructions: None,
            layer_instructions: Vec::new(),
            sections,
        })
    }
}
