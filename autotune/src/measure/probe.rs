//! The probe-rs measurer: cross-compiles the generated C with the harness and the real
//! board's support, flashes the ELF through a debug probe, resets the chip and runs it to the
//! harness's checkpoint once per input vector, reading the results block (status, cycles) and
//! the output buffers from RAM at the addresses the ELF's symbols give.
//!
//! A missing probe, a probe that disconnects or a chip that does not answer is a
//! [`MeasureError::Board`] (the board failed, not the candidate: the tuner retries, a farm
//! sends the job to another board); a fault of the running program is a run failure; a run
//! past the deadline is a timeout.

use super::build::{build_program, Link, WorkDir};
use super::{Build, MeasureError, Measurement, Measurer, RUN_TIMEOUT};
use minnow_targets::harness::{BlockState, ResultsBlock, CHECKPOINT_SYMBOL, RESULTS_SYMBOL};
use minnow_targets::RealBoard;
use object::{Object, ObjectSymbol};
use std::path::Path;
use std::time::Duration;

/// Which attached probe to use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeSelector {
    /// The only one attached (`--board probe`).
    Only,
    /// The one with this serial number (`--board probe:SERIAL`).
    Serial(String),
    /// The one with this USB vendor and product id, and serial if given
    /// (`--board probe:VID:PID[:SERIAL]`, hexadecimal ids).
    Usb {
        /// The vendor id.
        vendor: u16,
        /// The product id.
        product: u16,
        /// The serial number.
        serial: Option<String>,
    },
}

impl ProbeSelector {
    /// Parses `--board probe` or `--board probe:SELECTOR`.
    pub fn parse(board: &str) -> Result<ProbeSelector, String> {
        let Some(rest) = board.strip_prefix("probe") else {
            return Err(format!(
                "`{board}` is not a probe; use probe or probe:SELECTOR"
            ));
        };
        let selector = match rest.strip_prefix(':') {
            None if rest.is_empty() => return Ok(ProbeSelector::Only),
            None => return Err(format!("`{board}`: write the probe as probe:SELECTOR")),
            Some(s) => s,
        };
        let hex = |s: &str| u16::from_str_radix(s, 16).ok();
        let mut parts = selector.splitn(3, ':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(serial), None, None) if !serial.is_empty() => {
                Ok(ProbeSelector::Serial(serial.to_string()))
            }
            (Some(v), Some(p), serial) => match (hex(v), hex(p)) {
                (Some(vendor), Some(product)) => Ok(ProbeSelector::Usb {
                    vendor,
                    product,
                    serial: serial.filter(|s| !s.is_empty()).map(String::from),
                }),
                _ => Err(format!(
                    "`{board}`: VID:PID are two hexadecimal USB ids, as `probe-rs list` shows them (e.g. probe:0483:374b)"
                )),
            },
            _ => Err(format!(
                "`{board}`: give the probe's serial number or VID:PID[:SERIAL] after probe:"
            )),
        }
    }
}

/// Where the harness's results block and checkpoint are in a linked ELF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HarnessSymbols {
    /// The address of `minnow_results`.
    pub results: u64,
    /// The address of `minnow_checkpoint` (without the Thumb bit).
    pub checkpoint: u64,
}

/// Reads the harness symbols of the ELF at `path`.
pub fn harness_symbols(path: &Path) -> Result<HarnessSymbols, MeasureError> {
    let bytes = std::fs::read(path)?;
    let fail = |message: String| MeasureError::Run {
        board: "probe".into(),
        message,
    };
    let file = object::File::parse(&*bytes).map_err(|e| {
        fail(format!(
            "cannot read the harness ELF {}: {e}",
            path.display()
        ))
    })?;
    let find = |name: &str| {
        file.symbols()
            .find(|s| s.name() == Ok(name))
            .map(|s| s.address())
            .ok_or_else(|| {
                fail(format!(
                    "the harness ELF has no `{name}` symbol: it was not built for a real board \
                     (-DMINNOW_RESULTS_BLOCK)"
                ))
            })
    };
    Ok(HarnessSymbols {
        results: find(RESULTS_SYMBOL)?,
        checkpoint: find(CHECKPOINT_SYMBOL)? & !1,
    })
}

/// Runs on a real board through a debug probe.
#[derive(Clone, Debug)]
pub struct ProbeMeasurer {
    /// The probe.
    pub selector: ProbeSelector,
    /// How long a run may take before the board counts as not answering.
    pub timeout: Duration,
}

impl ProbeMeasurer {
    /// A measurer for the probe `selector` names.
    pub fn new(selector: ProbeSelector) -> ProbeMeasurer {
        ProbeMeasurer {
            selector,
            timeout: RUN_TIMEOUT,
        }
    }

    /// Checks that the probe is attached (before a tune or a worker starts, rather than at
    /// its first trial); returns its description.
    pub fn check(&self, board: &RealBoard) -> Result<String, MeasureError> {
        session::describe(&self.selector).map_err(|message| MeasureError::Board {
            board: format!("{} ({})", board.title, board.chip),
            message,
        })
    }

    /// Builds `build` for `board` in `dir`: the ELF to flash, the model's sections and the
    /// harness symbols.
    pub fn build_elf(
        build: &Build,
        board: &RealBoard,
        dir: &Path,
    ) -> Result<(std::path::PathBuf, super::Sections, HarnessSymbols), MeasureError> {
        std::fs::write(dir.join("link.ld"), board.linker_script())?;
        let mut before: Vec<String> = [
            "-T",
            "link.ld",
            "-Wl,--gc-sections",
            "-DMINNOW_RESULTS_BLOCK",
        ]
        .map(String::from)
        .to_vec();
        before.extend(board.defines.iter().map(|d| d.to_string()));
        let support = board.support_source();
        let link = Link {
            support: &support,
            before,
            after: board.link_flags().iter().map(|s| s.to_string()).collect(),
        };
        let (elf, sections) = build_program(build, dir, &link)?;
        let symbols = harness_symbols(&elf)?;
        Ok((elf, sections, symbols))
    }
}

impl Measurer for ProbeMeasurer {
    fn runner(&self) -> &'static str {
        "probe"
    }

    fn unit(&self) -> &'static str {
        "cycles"
    }

    fn measure(&self, build: &Build) -> Result<Measurement, MeasureError> {
        let target = build.target;
        let board = target.real_board.as_ref().ok_or_else(|| MeasureError::Run {
            board: target.name.into(),
            message: format!(
                "minnow knows no real board for {}; see `minnow targets` for the boards --board probe can flash",
                target.name
            ),
        })?;
        let dir = WorkDir::new("minnow-probe-")?;
        let (elf, sections, symbols) = Self::build_elf(build, board, dir.path())?;
        let run = session::run(&self.selector, board, &elf, symbols, build, self.timeout)?;
        Ok(Measurement {
            outputs: run.outputs,
            instructions: None,
            nanoseconds: None,
            cycles: Some(run.cycles),
            layer_counts: run.layers,
            sections,
        })
    }
}

/// What a board run gave.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BoardRun {
    /// For each vector, the bytes of each output.
    pub outputs: Vec<Vec<Vec<u8>>>,
    /// The count of each vector.
    pub cycles: Vec<u64>,
    /// The count of each layer in the last vector (with per-layer timing).
    pub layers: Vec<u64>,
}

/// What the results protocol needs of a halted-or-running core: probe-rs's `Core` on a real
/// board, a GDB stub in the tests.
pub trait DebugCore {
    /// Resets the chip and halts it before its first instruction.
    fn reset_and_halt(&mut self) -> Result<(), String>;
    /// Sets the one hardware breakpoint (clearing others).
    fn set_breakpoint(&mut self, address: u64) -> Result<(), String>;
    /// Clears the breakpoints.
    fn clear_breakpoints(&mut self) -> Result<(), String>;
    /// Runs on from where the core stopped (stepping off a breakpoint first).
    fn resume(&mut self) -> Result<(), String>;
    /// Waits until the core halts: `false` if it is still running at `timeout` (it is then
    /// stopped).
    fn wait_halted(&mut self, timeout: Duration) -> Result<bool, String>;
    /// Reads memory.
    fn read(&mut self, address: u64, bytes: &mut [u8]) -> Result<(), String>;
}

/// Runs the flashed harness on `core` from reset, from checkpoint to checkpoint, and reads
/// each vector's count and `outputs` output buffers, then the layer counts. Errors of the core
/// itself are [`MeasureError::Board`]; a fault of the program is a run failure.
pub fn collect(
    core: &mut dyn DebugCore,
    symbols: HarnessSymbols,
    outputs: usize,
    timeout: Duration,
) -> Result<BoardRun, MeasureError> {
    let board = |what: &str| {
        let what = what.to_string();
        move |e: String| MeasureError::Board {
            board: "probe".into(),
            message: format!("{what} failed ({e})"),
        }
    };
    core.reset_and_halt().map_err(board("reset"))?;
    core.set_breakpoint(symbols.checkpoint)
        .map_err(board("setting the checkpoint breakpoint"))?;
    core.resume().map_err(board("run"))?;
    let deadline = std::time::Instant::now() + timeout;
    let mut run = BoardRun::default();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if !core
            .wait_halted(left)
            .map_err(board("waiting for the core"))?
        {
            return Err(MeasureError::Timeout {
                board: "probe".into(),
                seconds: timeout.as_secs_f64(),
            });
        }
        let mut bytes = vec![0u8; ResultsBlock::bytes(outputs)];
        core.read(symbols.results, &mut bytes)
            .map_err(board("reading the results block"))?;
        let block = ResultsBlock::decode(&bytes).map_err(|message| MeasureError::Run {
            board: "probe".into(),
            message,
        })?;
        match block.state {
            BlockState::VectorReady => {
                let mut vector = Vec::new();
                for (address, len) in &block.outputs {
                    let mut out = vec![0u8; *len as usize];
                    core.read(u64::from(*address), &mut out)
                        .map_err(board("reading an output"))?;
                    vector.push(out);
                }
                run.outputs.push(vector);
                run.cycles.push(block.count);
                core.resume().map_err(board("resuming"))?;
            }
            BlockState::Done => {
                let mut counts = vec![0u8; 8 * block.layers as usize];
                core.read(u64::from(block.layer_counts), &mut counts)
                    .map_err(board("reading the layer counts"))?;
                run.layers = counts
                    .chunks_exact(8)
                    .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                    .collect();
                let _ = core.clear_breakpoints();
                return Ok(run);
            }
            BlockState::Fault => {
                let _ = core.clear_breakpoints();
                return Err(MeasureError::Run {
                    board: "probe".into(),
                    message: format!(
                        "the program took a fault or trap on the board after {} of {} vectors",
                        run.outputs.len(),
                        block.vectors
                    ),
                });
            }
            BlockState::Running => {
                return Err(MeasureError::Board {
                    board: "probe".into(),
                    message: "the core stopped outside the harness's checkpoint (a debugger or \
                              a watchdog reset?)"
                        .into(),
                })
            }
        }
    }
}

#[cfg(feature = "probe")]
#[path = "probe_session.rs"]
mod session;

#[cfg(not(feature = "probe"))]
mod session {
    use super::*;

    const NO_FEATURE: &str = "this minnow was built without the `probe` feature; rebuild it \
                              with `cargo build --release --features probe`";

    pub(super) fn describe(_: &ProbeSelector) -> Result<String, String> {
        Err(NO_FEATURE.into())
    }

    pub(super) fn run(
        _: &ProbeSelector,
        board: &RealBoard,
        _: &Path,
        _: HarnessSymbols,
        _: &Build,
        _: Duration,
    ) -> Result<BoardRun, MeasureError> {
        Err(MeasureError::Board {
            board: board.title.into(),
            message: NO_FEATURE.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_parse_serials_and_usb_ids() {
        assert_eq!(ProbeSelector::parse("probe"), Ok(ProbeSelector::Only));
        assert_eq!(
            ProbeSelector::parse("probe:066DFF485457"),
            Ok(ProbeSelector::Serial("066DFF485457".into()))
        );
        assert_eq!(
            ProbeSelector::parse("probe:0483:374b"),
            Ok(ProbeSelector::Usb {
                vendor: 0x0483,
                product: 0x374b,
                serial: None
            })
        );
        assert_eq!(
            ProbeSelector::parse("probe:1366:1015:000683"),
            Ok(ProbeSelector::Usb {
                vendor: 0x1366,
                product: 0x1015,
                serial: Some("000683".into())
            })
        );
        for bad in ["probe:", "probe:xyz:12", "probes", "qemu"] {
            assert!(ProbeSelector::parse(bad).is_err(), "{bad}");
        }
    }
}
