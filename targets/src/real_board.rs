//! Real boards, reached through a debug probe with probe-rs: the chip probe-rs attaches to,
//! the memory map the harness is linked for, and the board support that counts cycles (DWT
//! CYCCNT on Cortex-M, `mcycle` on RISC-V) and hands results to the probe through a block in
//! RAM (see [`crate::harness::ResultsBlock`]).
//!
//! Each board runs at its reset clock with its reset flash wait states: the figures are core
//! cycles, which do not depend on the clock, and nothing board-specific needs configuring.

use crate::board::{BoardKind, CORTEX_M_START, RISCV_LIBC};
use serde::Serialize;

/// A development board and its chip.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RealBoard {
    /// Its name as a minnow target (`nucleo-f446re`).
    pub name: &'static str,
    /// What it is called on its box.
    pub title: &'static str,
    /// The chip's name in probe-rs's target list.
    pub chip: &'static str,
    /// The core target it is (`cortex-m4`).
    pub core: &'static str,
    /// Board support family.
    pub kind: BoardKind,
    /// Flash origin and length, RAM origin and length, as the harness is linked.
    pub memory: [u64; 4],
    /// Extra C definitions for its board support (`MINNOW_CORTEX_M7` turns on the caches).
    pub defines: &'static [&'static str],
}

/// The known boards, the default board of each core target first.
pub fn all() -> Vec<RealBoard> {
    vec![
        RealBoard {
            name: "nucleo-f446re",
            title: "ST NUCLEO-F446RE",
            chip: "STM32F446RETx",
            core: "cortex-m4",
            kind: BoardKind::CortexM,
            memory: [0x0800_0000, 512 << 10, 0x2000_0000, 128 << 10],
            defines: &[],
        },
        RealBoard {
            name: "nucleo-h743zi",
            title: "ST NUCLEO-H743ZI",
            chip: "STM32H743ZITx",
            core: "cortex-m7",
            kind: BoardKind::CortexM,
            // Flash bank 1 and the DTCM (zero wait states, on at reset).
            memory: [0x0800_0000, 1 << 20, 0x2000_0000, 128 << 10],
            defines: &["-DMINNOW_CORTEX_M7"],
        },
        RealBoard {
            name: "gd32vf103",
            title: "GigaDevice GD32VF103 (e.g. Sipeed Longan Nano)",
            chip: "GD32VF103CBT6",
            core: "rv32imac",
            kind: BoardKind::RiscV,
            memory: [0x0800_0000, 128 << 10, 0x2000_0000, 32 << 10],
            defines: &[],
        },
        RealBoard {
            name: "nrf52840-dk",
            title: "Nordic nRF52840-DK",
            chip: "nRF52840_xxAA",
            core: "cortex-m4",
            kind: BoardKind::CortexM,
            memory: [0, 1 << 20, 0x2000_0000, 256 << 10],
            defines: &[],
        },
    ]
}

impl RealBoard {
    /// The board support C file.
    pub fn support_source(&self) -> String {
        match self.kind {
            BoardKind::CortexM => {
                [CORTEX_M_START, include_str!("support/probe_cortex_m.c")].concat()
            }
            BoardKind::RiscV => [include_str!("support/probe_riscv.c"), RISCV_LIBC].concat(),
        }
    }

    /// The linker script.
    pub fn linker_script(&self) -> String {
        let [fo, fl, ro, rl] = self.memory;
        let script = match self.kind {
            BoardKind::CortexM => include_str!("support/cortex_m.ld"),
            BoardKind::RiscV => include_str!("support/probe_riscv.ld"),
        };
        script
            .replacen("FLASH_ORIGIN", &format!("{fo:#x}"), 2)
            .replacen("FLASH_LENGTH", &format!("{fl:#x}"), 2)
            .replacen("RAM_ORIGIN", &format!("{ro:#x}"), 2)
            .replacen("RAM_LENGTH", &format!("{rl:#x}"), 2)
    }

    /// Extra link flags.
    pub fn link_flags(&self) -> &'static [&'static str] {
        match self.kind {
            BoardKind::CortexM => &["-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs"],
            BoardKind::RiscV => &["-nostdlib", "-nostartfiles", "-ffreestanding", "-lgcc"],
        }
    }

    /// What counts its cycles.
    pub fn counter(&self) -> &'static str {
        match self.kind {
            BoardKind::CortexM => "DWT CYCCNT",
            BoardKind::RiscV => "mcycle",
        }
    }
}

/// The board called `name`.
pub fn find(name: &str) -> Option<RealBoard> {
    all().into_iter().find(|b| b.name == name)
}
