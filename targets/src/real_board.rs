//! Real boards, reached through a debug probe with probe-rs: the chip probe-rs attaches to,
//! the memory map the harness is linked for, and the board support that counts cycles (DWT
//! CYCCNT on Cortex-M, `mcycle` on RISC-V, the performance counter PCCR on the ESP32-C3) and
//! hands results to the probe through a block in RAM (see [`crate::harness::ResultsBlock`]).
//! Espressif chips boot only an ESP-IDF app image ([`Firmware::EspIdf`]), which probe-rs
//! builds from the ELF.
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
    /// What the probe writes to its flash.
    pub firmware: Firmware,
    /// Flash origin and length, RAM origin and length, as the harness is linked.
    pub memory: [u64; 4],
    /// Extra C definitions for its board support (`MINNOW_CORTEX_M7` turns on the caches).
    pub defines: &'static [&'static str],
}

/// What a probe writes to a board's flash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Firmware {
    /// The harness ELF's loadable sections, at their addresses.
    Elf,
    /// The ELF as an ESP-IDF app image, behind the second-stage bootloader and a partition
    /// table (Espressif chips, whose ROM boots nothing else); the harness is linked for the
    /// cache-mapped flash and carries the app description the format wants.
    EspIdf,
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
            firmware: Firmware::Elf,
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
            firmware: Firmware::Elf,
            defines: &["-DMINNOW_CORTEX_M7"],
        },
        RealBoard {
            name: "gd32vf103",
            title: "GigaDevice GD32VF103 (e.g. Sipeed Longan Nano)",
            chip: "GD32VF103CBT6",
            core: "rv32imac",
            kind: BoardKind::RiscV,
            memory: [0x0800_0000, 128 << 10, 0x2000_0000, 32 << 10],
            firmware: Firmware::Elf,
            defines: &[],
        },
        RealBoard {
            name: "nrf52840-dk",
            title: "Nordic nRF52840-DK",
            chip: "nRF52840_xxAA",
            core: "cortex-m4",
            kind: BoardKind::CortexM,
            memory: [0, 1 << 20, 0x2000_0000, 256 << 10],
            firmware: Firmware::Elf,
            defines: &[],
        },
        RealBoard {
            name: "esp32-c3",
            title: "Espressif ESP32-C3 (e.g. ESP32-C3-DevKitM-1, 4 MiB flash; USB-JTAG)",
            chip: "esp32c3",
            core: "rv32imc",
            kind: BoardKind::RiscV,
            firmware: Firmware::EspIdf,
            // DROM past the image headers, and the DRAM below the bootloader's.
            memory: [0x3C00_0020, (4 << 20) - 0x20, 0x3FC8_0000, 320 << 10],
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
            BoardKind::RiscV => {
                let start = match self.firmware {
                    Firmware::Elf => include_str!("support/probe_riscv.c"),
                    Firmware::EspIdf => include_str!("support/probe_esp32c3.c"),
                };
                [
                    include_str!("support/probe_riscv_common.c"),
                    start,
                    RISCV_LIBC,
                ]
                .concat()
            }
        }
    }

    /// Where its code is linked: the start of flash, but on an ESP-IDF image the instruction
    /// bus's window onto it ([`Firmware::EspIdf`]), four MiB past the page the data bus's
    /// first page maps (the two buses share the cache's MMU pages).
    pub fn code_origin(&self) -> u64 {
        match self.firmware {
            Firmware::Elf => self.memory[0],
            Firmware::EspIdf => self.memory[0] - 0x3C00_0000 + 0x4240_0000,
        }
    }

    /// The linker script.
    pub fn linker_script(&self) -> String {
        let [fo, fl, ro, rl] = self.memory;
        let script = match self.kind {
            BoardKind::CortexM => include_str!("support/cortex_m.ld"),
            BoardKind::RiscV => match self.firmware {
                Firmware::Elf => include_str!("support/probe_riscv.ld"),
                Firmware::EspIdf => include_str!("support/probe_esp32c3.ld"),
            },
        };
        script
            .replace("FLASH_ORIGIN", &format!("{fo:#x}"))
            .replace("FLASH_LENGTH", &format!("{fl:#x}"))
            .replace("RAM_ORIGIN", &format!("{ro:#x}"))
            .replace("RAM_LENGTH", &format!("{rl:#x}"))
            .replace("CODE_ORIGIN", &format!("{:#x}", self.code_origin()))
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
            BoardKind::RiscV => match self.firmware {
                Firmware::Elf => "mcycle",
                Firmware::EspIdf => "PCCR (machine performance counter)",
            },
        }
    }
}

/// The board called `name`.
pub fn find(name: &str) -> Option<RealBoard> {
    all().into_iter().find(|b| b.name == name)
}
