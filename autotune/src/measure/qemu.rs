//! The QEMU measurer: cross-compiles the generated C with the harness and the board support,
//! runs the ELF on the target's emulated board under `-icount shift=0`, and converts the
//! board's counter to retired instructions.

use super::build::{build_program, Link, WorkDir};
use super::process::run_logged;
use super::{Build, MeasureError, Measurement, Measurer, RUN_TIMEOUT};
use minnow_targets::harness;
use std::process::Command;
use std::time::Duration;

/// What the emulated board of `target` lacks on this machine: the cross compiler and the
/// emulator, each with the package to install.
pub fn missing_tools(target: &minnow_targets::Target) -> Vec<String> {
    [
        (!target.toolchain.installed()).then(|| target.toolchain.missing_message(target.name)),
        target
            .board
            .as_ref()
            .filter(|b| !b.installed())
            .map(|b| b.missing_message()),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Runs on the target's emulated board.
#[derive(Clone, Copy, Debug)]
pub struct QemuMeasurer {
    /// How long a run may take before the board counts as not answering.
    pub timeout: Duration,
}

impl Default for QemuMeasurer {
    fn default() -> Self {
        QemuMeasurer {
            timeout: RUN_TIMEOUT,
        }
    }
}

impl Measurer for QemuMeasurer {
    fn runner(&self) -> &'static str {
        "qemu"
    }

    fn unit(&self) -> &'static str {
        "instructions"
    }

    fn measure(&self, build: &Build) -> Result<Measurement, MeasureError> {
        let target = build.target;
        let board = target.board.as_ref().ok_or_else(|| MeasureError::Run {
            board: target.name.into(),
            message: "this target has no emulated board; use --target with a microcontroller"
                .into(),
        })?;
        let missing = missing_tools(target);
        if !missing.is_empty() {
            return Err(MeasureError::MissingTool(missing.join("; ")));
        }
        let dir = WorkDir::new("minnow-qemu-")?;
        std::fs::write(dir.path().join("link.ld"), board.linker_script())?;
        let support = board.support_source();
        let link = Link {
            support: &support,
            before: ["-T", "link.ld", "-Wl,--gc-sections"]
                .map(String::from)
                .to_vec(),
            after: board.link_flags().iter().map(|s| s.to_string()).collect(),
        };
        let (elf, sections) = build_program(build, dir.path(), &link)?;
        let mut qemu = Command::new(board.qemu);
        qemu.args(board.qemu_args(&elf.display().to_string()));
        let stdout = run_logged(qemu, dir.path(), self.timeout, board.machine)?;
        let fail = |message: String| MeasureError::Run {
            board: board.machine.into(),
            message,
        };
        let report = harness::parse(&stdout).map_err(fail)?;
        let scale = |count: u64| (count as f64 * board.instructions_per_count).round() as u64;
        Ok(Measurement {
            instructions: Some(report.vectors.iter().map(|v| scale(v.count)).collect()),
            nanoseconds: None,
            cycles: None,
            layer_counts: report.layers.iter().map(|c| scale(*c)).collect(),
            outputs: report.vectors.into_iter().map(|v| v.outputs).collect(),
            sections,
        })
    }
}
