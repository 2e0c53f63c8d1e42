//! The host measurer: builds the generated C with the host compiler and runs it natively.

use super::build::{compile, model_sections, write_sources, WorkDir, C_FLAGS};
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
        let files = write_sources(build, dir.path(), HOST_SUPPORT)?;
        let exe = dir.path().join("model_run");
        let mut args: Vec<String> = C_FLAGS.iter().map(|s| s.to_string()).collect();
        if build.per_layer {
            args.push("-DMINNOW_LAYER_HOOK=minnow_layer_done".into());
        }
        args.extend(files.iter().map(|f| f.display().to_string()));
        args.extend(["-o".into(), exe.display().to_string()]);
        compile(build.target, dir.path(), &args)?;
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
            sections: model_sections(build.target, dir.path(), &files[0])?,
        })
    }
}
