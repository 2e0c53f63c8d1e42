//! The QEMU measurer: cross-compiles the generated C with the harness and the board support,
//! runs the ELF on the target's emulated board under `-icount shift=0`, and converts the
//! board's counter to retired instructions.

use super::build::{build_program, Link, WorkDir};
use super::{Build, MeasureError, Measurement, Measurer, RUN_TIMEOUT};
use minnow_targets::{harness, Board};
use std::process::{Command, Stdio};
use std::time::Duration;
use wait_timeout::ChildExt;

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
    fn measure(&self, build: &Build) -> Result<Measurement, MeasureError> {
        let target = build.target;
        let board = target.board.as_ref().ok_or_else(|| MeasureError::Run {
            board: target.name.into(),
            message: "this target has no emulated board; use --target with a microcontroller"
                .into(),
        })?;
        let missing: Vec<String> = [
            (!target.toolchain.installed()).then(|| target.toolchain.missing_message(target.name)),
            (!board.installed()).then(|| board.missing_message()),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !missing.is_empty() {
            return Err(MeasureError::MissingTool(missing.join("; ")));
        }
        let dir = WorkDir::new("minnow-qemu-")?;
        std::fs::write(dir.path().join("link.ld"), board.linker_script())?;
        let link = Link {
            support: board.support_source(),
            before: ["-T", "link.ld", "-Wl,--gc-sections"]
                .map(String::from)
                .to_vec(),
            after: board.link_flags().iter().map(|s| s.to_string()).collect(),
        };
        let (elf, sections) = build_program(build, dir.path(), &link)?;
        let stdout = run(board, &elf.display().to_string(), dir.path(), self.timeout)?;
        let fail = |message: String| MeasureError::Run {
            board: board.machine.into(),
            message,
        };
        let report = harness::parse(&stdout).map_err(fail)?;
        let scale = |count: u64| (count as f64 * board.instructions_per_count).round() as u64;
        Ok(Measurement {
            instructions: Some(report.vectors.iter().map(|v| scale(v.count)).collect()),
            layer_instructions: report.layers.iter().map(|c| scale(*c)).collect(),
            outputs: report.vectors.into_iter().map(|v| v.outputs).collect(),
            sections,
        })
    }
}

/// Runs `elf` on `board` and returns what it printed (semihosting writes to QEMU's standard
/// error, the UART to its standard output: both are read).
fn run(
    board: &Board,
    elf: &str,
    dir: &std::path::Path,
    timeout: Duration,
) -> Result<String, MeasureError> {
    let (out_log, err_log) = (dir.join("board.out"), dir.join("board.err"));
    let mut child = Command::new(board.qemu)
        .args(board.qemu_args(elf))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_log)?)
        .stderr(std::fs::File::create(&err_log)?)
        .spawn()?;
    let fail = |message: String| MeasureError::Run {
        board: board.machine.into(),
        message,
    };
    let status = match child.wait_timeout(timeout)? {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail(format!(
                "the board did not finish within {} s",
                timeout.as_secs()
            )));
        }
    };
    let text = std::fs::read_to_string(&out_log)? + &std::fs::read_to_string(&err_log)?;
    if !status.success() {
        let tail: Vec<&str> = text.lines().rev().take(5).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(fail(format!(
            "{} exited with {status}: {}",
            board.qemu,
            tail.join(" / ")
        )));
    }
    Ok(text)
}
