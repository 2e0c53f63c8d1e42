//! Emulated boards: which QEMU machine runs a target, how its counter converts to retired
//! instructions, and the board support files (start-up, linker script, timer, output).

use serde::Serialize;

/// The family of board support code a board uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum BoardKind {
    /// Arm M-profile: SysTick timing, semihosting output.
    CortexM,
    /// RISC-V virt: minstret timing, UART output.
    RiscV,
}

/// A QEMU machine.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Board {
    /// The QEMU system emulator.
    pub qemu: &'static str,
    /// The Debian package that provides it.
    pub package: &'static str,
    /// `-M` machine name.
    pub machine: &'static str,
    /// `-cpu`, when the machine needs one named.
    pub cpu: Option<&'static str>,
    /// Board support family.
    pub kind: BoardKind,
    /// Flash origin and length, RAM origin and length (Cortex-M linker script).
    pub memory: [u64; 4],
    /// Retired instructions per counter unit under `-icount shift=0` (SysTick ticks on the
    /// CPU clock: 1e9 / clock Hz; minstret: 1).
    pub instructions_per_count: f64,
}

impl Board {
    /// Whether the emulator is on `PATH`.
    pub fn installed(&self) -> bool {
        which::which(self.qemu).is_ok()
    }

    /// The error to show when the emulator is missing.
    pub fn missing_message(&self) -> String {
        format!(
            "{} is not installed, and the emulated {} board needs it. Install it with \
             `sudo apt-get install {}`",
            self.qemu, self.machine, self.package
        )
    }

    /// The board support C file.
    pub fn support_source(&self) -> String {
        match self.kind {
            BoardKind::CortexM => [CORTEX_M_START, include_str!("support/cortex_m.c")].concat(),
            BoardKind::RiscV => [include_str!("support/riscv.c"), RISCV_LIBC].concat(),
        }
    }

    /// The linker script.
    pub fn linker_script(&self) -> String {
        match self.kind {
            BoardKind::CortexM => {
                let [fo, fl, ro, rl] = self.memory;
                include_str!("support/cortex_m.ld")
                    .replacen("FLASH_ORIGIN", &format!("{fo:#x}"), 2)
                    .replacen("FLASH_LENGTH", &format!("{fl:#x}"), 2)
                    .replacen("RAM_ORIGIN", &format!("{ro:#x}"), 2)
                    .replacen("RAM_LENGTH", &format!("{rl:#x}"), 2)
            }
            BoardKind::RiscV => include_str!("support/riscv.ld").to_string(),
        }
    }

    /// Extra link flags.
    pub fn link_flags(&self) -> &'static [&'static str] {
        match self.kind {
            BoardKind::CortexM => &["-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs"],
            BoardKind::RiscV => &["-nostdlib", "-nostartfiles", "-ffreestanding", "-lgcc"],
        }
    }

    /// QEMU's arguments to run `elf` with a deterministic instruction count.
    pub fn qemu_args(&self, elf: &str) -> Vec<String> {
        let mut args: Vec<String> = ["-M", self.machine].iter().map(|s| s.to_string()).collect();
        if let Some(cpu) = self.cpu {
            args.extend(["-cpu".to_string(), cpu.to_string()]);
        }
        args.extend(
            ["-nographic", "-monitor", "none", "-icount", "shift=0"]
                .iter()
                .map(|s| s.to_string()),
        );
        match self.kind {
            BoardKind::CortexM => args.extend(
                [
                    "-serial",
                    "none",
                    "-semihosting-config",
                    "enable=on,target=native",
                ]
                .iter()
                .map(|s| s.to_string()),
            ),
            BoardKind::RiscV => args.extend(
                ["-bios", "none", "-serial", "stdio"]
                    .iter()
                    .map(|s| s.to_string()),
            ),
        }
        args.extend(["-kernel".to_string(), elf.to_string()]);
        args
    }
}

/// The C run-time start every Cortex-M board file begins with.
pub(crate) const CORTEX_M_START: &str = include_str!("support/cortex_m_start.c");

/// The C library pieces every RISC-V board file ends with.
pub(crate) const RISCV_LIBC: &str = include_str!("support/riscv_libc.c");

/// The header every board support file implements.
pub const BOARD_HEADER: &str = include_str!("support/minnow_board.h");

/// The host's board support (standard output, no counter).
pub const HOST_SUPPORT: &str = include_str!("support/host.c");

/// An mps2 board at 25 MHz (40 instructions per SysTick tick), 4 MB flash and RAM.
pub fn mps2(machine: &'static str, cpu: &'static str) -> Board {
    Board {
        qemu: "qemu-system-arm",
        package: "qemu-system-arm",
        machine,
        cpu: Some(cpu),
        kind: BoardKind::CortexM,
        memory: [0, 4 << 20, 0x2000_0000, 4 << 20],
        instructions_per_count: 40.0,
    }
}

/// mps2-an505 (Cortex-M33, secure boot): code at 0x10000000, RAM at 0x38000000, 20 MHz.
pub fn an505() -> Board {
    Board {
        machine: "mps2-an505",
        cpu: Some("cortex-m33"),
        memory: [0x1000_0000, 4 << 20, 0x3800_0000, 2 << 20],
        instructions_per_count: 50.0,
        ..mps2("mps2-an505", "cortex-m33")
    }
}

/// mps3-an547 (Cortex-M55): ITCM at 0, RAM at 0x21000000, 32 MHz.
pub fn an547() -> Board {
    Board {
        machine: "mps3-an547",
        cpu: Some("cortex-m55"),
        memory: [0, 512 << 10, 0x2100_0000, 2 << 20],
        instructions_per_count: 31.25,
        ..mps2("mps3-an547", "cortex-m55")
    }
}

/// QEMU's RISC-V virt board (minstret is exact).
pub fn riscv_virt() -> Board {
    Board {
        qemu: "qemu-system-riscv32",
        package: "qemu-system-misc",
        machine: "virt",
        cpu: None,
        kind: BoardKind::RiscV,
        memory: [0x8000_0000, 16 << 20, 0x8000_0000, 16 << 20],
        instructions_per_count: 1.0,
    }
}
