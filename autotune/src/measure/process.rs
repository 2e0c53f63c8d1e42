//! Running a built program as a child process with a deadline, its output logged to files.

use super::MeasureError;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use wait_timeout::ChildExt;

/// Runs `command` in `dir` and returns what it printed (standard output, then standard
/// error: semihosting writes to QEMU's standard error, the UART to its standard output). A
/// run that does not exit within `timeout` is killed and fails as `board` not answering; one
/// that exits unsuccessfully fails with the last lines it printed.
pub(super) fn run_logged(
    mut command: Command,
    dir: &Path,
    timeout: Duration,
    board: &str,
) -> Result<String, MeasureError> {
    let (out_log, err_log) = (dir.join("board.out"), dir.join("board.err"));
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_log)?)
        .stderr(std::fs::File::create(&err_log)?)
        .spawn()?;
    let fail = |message: String| MeasureError::Run {
        board: board.into(),
        message,
    };
    let Some(status) = child.wait_timeout(timeout)? else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(MeasureError::Timeout {
            board: board.into(),
            seconds: timeout.as_secs_f64(),
        });
    };
    let text = std::fs::read_to_string(&out_log)? + &std::fs::read_to_string(&err_log)?;
    if !status.success() {
        let tail: Vec<&str> = text.lines().rev().take(5).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(fail(format!(
            "{program} exited with {status}: {}",
            tail.join(" / ")
        )));
    }
    Ok(text)
}
