//! The probe-rs session of one [`super::ProbeMeasurer`] run: open the probe, attach to the
//! chip, flash, reset, and collect the results block at every checkpoint.

use super::{collect, BoardRun, DebugCore, HarnessSymbols, ProbeSelector};
use crate::measure::{Build, MeasureError};
use minnow_targets::real_board::Firmware;
use minnow_targets::RealBoard;
use probe_rs::flashing::{download_file, ElfOptions, Format, IdfOptions};
use probe_rs::probe::list::Lister;
use probe_rs::probe::{DebugProbeInfo, DebugProbeSelector};
use probe_rs::{Core, MemoryInterface, Permissions};
use std::path::Path;
use std::time::Duration;

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
    let format = match board.firmware {
        Firmware::Elf => Format::Elf(ElfOptions::default()),
        // probe-rs's default second-stage bootloader and single-app partition table.
        Firmware::EspIdf => Format::Idf(IdfOptions::default()),
    };
    download_file(&mut session, elf, format)
        .map_err(|e| failed(format!("flashing failed ({e})")))?;
    let mut core = session
        .core(0)
        .map_err(|e| failed(format!("no core 0 ({e})")))?;
    collect(
        &mut ProbeCore(&mut core),
        symbols,
        build.source.outputs,
        timeout,
    )
    .map_err(|e| match e {
        MeasureError::Board { message, .. } => failed(message),
        other => other,
    })
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

/// probe-rs's core as the [`DebugCore`] the results protocol drives.
struct ProbeCore<'a, 'b>(&'a mut Core<'b>);

fn text(e: probe_rs::Error) -> String {
    e.to_string()
}

impl DebugCore for ProbeCore<'_, '_> {
    fn reset_and_halt(&mut self) -> Result<(), String> {
        self.0.reset_and_halt(HALT).map(|_| ()).map_err(text)
    }

    fn set_breakpoint(&mut self, address: u64) -> Result<(), String> {
        self.0.clear_all_hw_breakpoints().map_err(text)?;
        self.0.set_hw_breakpoint(address).map_err(text)
    }

    fn clear_breakpoints(&mut self) -> Result<(), String> {
        self.0.clear_all_hw_breakpoints().map_err(text)
    }

    /// probe-rs steps off a breakpoint before it runs.
    fn resume(&mut self) -> Result<(), String> {
        self.0.run().map_err(text)
    }

    fn wait_halted(&mut self, timeout: Duration) -> Result<bool, String> {
        match self.0.wait_for_core_halted(timeout) {
            Ok(()) => Ok(true),
            Err(probe_rs::Error::Timeout) => {
                let _ = self.0.halt(HALT);
                Ok(false)
            }
            Err(e) => Err(text(e)),
        }
    }

    fn read(&mut self, address: u64, bytes: &mut [u8]) -> Result<(), String> {
        self.0.read(address, bytes).map_err(text)
    }
}
