//! The probe-rs session of one [`super::ProbeMeasurer`] run: open the probe, attach to the
//! chip, flash, reset, and collect the results block at every checkpoint.

use super::{BoardRun, HarnessSymbols, ProbeSelector};
use crate::measure::{Build, MeasureError};
use minnow_targets::harness::{BlockState, ResultsBlock};
use minnow_targets::RealBoard;
use probe_rs::flashing::{download_file, ElfLoader};
use probe_rs::probe::list::Lister;
use probe_rs::probe::{DebugProbeInfo, DebugProbeSelector};
use probe_rs::{Core, MemoryInterface, Permissions};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long the chip may take to halt after a reset.
const HALT: Duration = Duration::from_secs(2);

/// Flashes `elf` on `board` through the probe `selector` names and runs every vector.
pub(super) fn run(
    selector: &ProbeSelector,
    board: &RealBoard,
    elf: &Path,
    symbols: HarnessSymbols,
    build: &Build,
    timeout: Duration,
) -> Result<BoardRun, MeasureError> {
    let failed = |message: String| MeasureError::Board {
        board: format!("{} ({})", board.title, board.chip),
        message,
    };
    let info = find_probe(selector).map_err(failed)?;
    let probe = info.open().map_err(|e| {
        failed(format!(
            "cannot open the probe {info} ({e}); on Linux install probe-rs's udev rules \
             (https://probe.rs/docs/getting-started/probe-setup/) and check that no other \
             debugger holds it"
        ))
    })?;
    let mut session = probe
        .attach(board.chip, Permissions::default())
        .map_err(|e| {
            failed(format!(
                "the probe {info} cannot attach to the {} ({e}); check the board's power and the \
             debug cable, and that the board is a {}",
                board.chip, board.title
            ))
        })?;
    download_file(&mut session, elf, ElfLoader(Default::default()))
        .map_err(|e| failed(format!("flashing failed ({e})")))?;
    let mut core = session
        .core(0)
        .map_err(|e| failed(format!("no core 0 ({e})")))?;
    collect(&mut core, symbols, build, timeout, &failed)
}

/// The attached probe `selector` names, described.
pub(super) fn describe(selector: &ProbeSelector) -> Result<String, String> {
    find_probe(selector)
        .map(|p| format!("{p} serial {}", p.serial_number.as_deref().unwrap_or("-")))
}

/// The attached probe `selector` names.
fn find_probe(selector: &ProbeSelector) -> Result<DebugProbeInfo, String> {
    let probes = Lister::new().list_all();
    let matching: Vec<DebugProbeInfo> = match selector {
        ProbeSelector::Only => probes.clone(),
        ProbeSelector::Serial(serial) => probes
            .iter()
            .filter(|p| p.serial_number.as_deref() == Some(serial.as_str()))
            .cloned()
            .collect(),
        ProbeSelector::Usb {
            vendor,
            product,
            serial,
        } => {
            let s = DebugProbeSelector {
                vendor_id: *vendor,
                product_id: *product,
                interface: None,
                serial_number: serial.clone(),
            };
            probes
                .iter()
                .filter(|p| s.matches_probe(p))
                .cloned()
                .collect()
        }
    };
    let listed = || {
        probes
            .iter()
            .map(|p| format!("{p} serial {}", p.serial_number.as_deref().unwrap_or("-")))
            .collect::<Vec<_>>()
            .join("; ")
    };
    match (matching.len(), probes.is_empty()) {
        (1, _) => Ok(matching[0].clone()),
        (_, true) => Err(
            "no debug probe found: connect the board's probe by USB (check \
                          `lsusb`), and on Linux install probe-rs's udev rules \
                          (https://probe.rs/docs/getting-started/probe-setup/)"
                .into(),
        ),
        (0, false) => Err(format!(
            "no attached probe matches {selector:?}; attached: {}",
            listed()
        )),
        _ => Err(format!(
            "{} probes are attached; pick one with --board probe:SERIAL (attached: {})",
            matching.len(),
            listed()
        )),
    }
}

/// Resets the core, runs it from checkpoint to checkpoint and reads each vector's results.
fn collect(
    core: &mut Core,
    symbols: HarnessSymbols,
    build: &Build,
    timeout: Duration,
    failed: &dyn Fn(String) -> MeasureError,
) -> Result<BoardRun, MeasureError> {
    let probe_err = |what: &str, e: probe_rs::Error| failed(format!("{what} failed ({e})"));
    core.reset_and_halt(HALT)
        .map_err(|e| probe_err("reset", e))?;
    core.clear_all_hw_breakpoints()
        .map_err(|e| probe_err("clearing breakpoints", e))?;
    core.set_hw_breakpoint(symbols.checkpoint)
        .map_err(|e| probe_err("setting the checkpoint breakpoint", e))?;
    core.run().map_err(|e| probe_err("run", e))?;
    let deadline = Instant::now() + timeout;
    let mut run = BoardRun {
        outputs: Vec::new(),
        cycles: Vec::new(),
        layers: Vec::new(),
    };
    let outputs = build.source.outputs;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if core.wait_for_core_halted(left).is_err() {
            let _ = core.halt(HALT);
            return Err(MeasureError::Timeout {
                board: "probe".into(),
                seconds: timeout.as_secs_f64(),
            });
        }
        let mut bytes = vec![0u8; ResultsBlock::bytes(outputs)];
        core.read(symbols.results, &mut bytes)
            .map_err(|e| probe_err("reading the results block", e))?;
        let block = ResultsBlock::decode(&bytes).map_err(|m| MeasureError::Run {
            board: "probe".into(),
            message: m,
        })?;
        match block.state {
            BlockState::VectorReady => {
                let mut vector = Vec::new();
                for (addr, len) in &block.outputs {
                    let mut out = vec![0u8; *len as usize];
                    core.read(u64::from(*addr), &mut out)
                        .map_err(|e| probe_err("reading an output", e))?;
                    vector.push(out);
                }
                run.outputs.push(vector);
                run.cycles.push(block.count);
                core.run().map_err(|e| probe_err("resuming", e))?;
            }
            BlockState::Done => {
                let mut counts = vec![0u8; 8 * block.layers as usize];
                if block.layers > 0 {
                    core.read(u64::from(block.layer_counts), &mut counts)
                        .map_err(|e| probe_err("reading the layer counts", e))?;
                }
                run.layers = counts
                    .chunks(8)
                    .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                    .collect();
                let _ = core.clear_all_hw_breakpoints();
                return Ok(run);
            }
            BlockState::Fault => {
                let _ = core.clear_all_hw_breakpoints();
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
                return Err(failed(
                    "the core stopped outside the harness's checkpoint (a debugger or a \
                     watchdog reset?)"
                        .into(),
                ))
            }
        }
    }
}
