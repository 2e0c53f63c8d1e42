//! Targets: what minnow compiles for and where it runs the result.
//!
//! A [`Target`] is a `target_lexicon::Triple` plus the CPU, its [`Features`], default memory
//! sizes, the [`Toolchain`] that builds C for it and the emulated [`Board`] (a QEMU machine)
//! that runs it with a deterministic instruction count, and the [`RealBoard`] a debug probe
//! flashes to count its cycles (every real board is also a target of its own name, e.g.
//! `nucleo-f446re`). The board support code (start-up, linker scripts, timers, output) and
//! the timing harness generator ([`harness`]) live here too.
//!
//! ```
//! let m4 = minnow_targets::find("cortex-m4").unwrap();
//! assert!(m4.features.dsp);
//! assert_eq!(m4.board.as_ref().unwrap().machine, "mps2-an386");
//! ```

pub mod board;
pub mod harness;
pub mod real_board;

pub use board::{Board, BoardKind};
pub use real_board::RealBoard;

use serde::Serialize;
use std::str::FromStr;
use target_lexicon::Triple;

/// CPU features the code generator may use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Features {
    /// Arm DSP extension (SMLAD, SXTB16: two 16-bit MACs per instruction).
    pub dsp: bool,
    /// Hardware single-precision floating point.
    pub fpu: bool,
    /// Arm Helium (M-profile vector extension).
    pub mve: bool,
    /// Compressed instructions (RISC-V C extension; Thumb is always compact).
    pub compressed: bool,
    /// The code generator runs blocks of output channels as 128-bit `i32x4` SIMD, with
    /// sixteen vector registers for up to 40 accumulators: the Cranelift JIT on a host with
    /// SSE4.1 or NEON ([`Target::for_jit`]). Off for every C target (the host's C is built
    /// by `cc -O2`, which keeps such blocks on the stack).
    pub simd128: bool,
    /// One instruction multiplies two 32-bit words into a 64-bit sum (Arm SMULL/SMLAL on
    /// Armv7-M and later; 64-bit hosts). Without it (RISC-V RV32M, Armv6-M) requantization
    /// takes the form with one 32-bit high multiply where the accumulators allow
    /// (`Intrinsic::MultiplyByQuantizedMultiplierHighMul`).
    pub wide_multiply: bool,
}

/// The C toolchain of a target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Toolchain {
    /// The compiler driver (`arm-none-eabi-gcc`, `riscv64-unknown-elf-gcc`, `cc`).
    pub cc: &'static str,
    /// Code generation flags (CPU, ABI).
    pub flags: Vec<&'static str>,
    /// Debian packages that provide the compiler and its C library.
    pub packages: &'static str,
}

impl Toolchain {
    /// Whether the compiler is on `PATH`.
    pub fn installed(&self) -> bool {
        which::which(self.cc).is_ok()
    }

    /// The error to show when the compiler is missing.
    pub fn missing_message(&self, target: &str) -> String {
        format!(
            "{} is not installed, and target {target} needs it to build C. Install it with \
             `sudo apt-get install {}`",
            self.cc, self.packages
        )
    }
}

/// A compilation target.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Target {
    /// The name users type (`cortex-m4`, `rv32imac`, `host`).
    pub name: &'static str,
    /// The target triple.
    #[serde(serialize_with = "serialize_triple")]
    pub triple: Triple,
    /// The CPU name (as gcc's `-mcpu` knows it, or the ISA string for RISC-V).
    pub cpu: &'static str,
    /// CPU features.
    pub features: Features,
    /// Default RAM of a typical part, in bytes.
    pub ram_bytes: u64,
    /// Default flash of a typical part, in bytes.
    pub flash_bytes: u64,
    /// How to build C for it.
    pub toolchain: Toolchain,
    /// The emulated board that runs it (`None` for the host, which runs natively).
    pub board: Option<Board>,
    /// The real board `--board probe` flashes (`None` where minnow knows none for this core).
    pub real_board: Option<RealBoard>,
}

fn serialize_triple<S: serde::Serializer>(t: &Triple, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_string())
}

impl Target {
    /// Whether this is the machine minnow runs on.
    pub fn is_host(&self) -> bool {
        self.name == "host"
    }

    /// This target as the Cranelift JIT compiles for it: the host with
    /// [`Features::simd128`] where its CPU has the instructions ([`host_simd128`]); any
    /// other target unchanged.
    pub fn for_jit(&self) -> Target {
        let mut target = self.clone();
        if self.is_host() {
            target.features.simd128 = host_simd128();
        }
        target
    }
}

/// Whether this machine has the 128-bit integer SIMD the JIT's vector loops use: SSE4.1 on
/// x86-64, NEON (always present) on AArch64.
pub fn host_simd128() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("sse4.1")
    }
    #[cfg(target_arch = "aarch64")]
    {
        true
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// gcc's instruction scheduling before register allocation hoists the loads of an unrolled
/// multiply-accumulate block ahead of their uses, which on these register-poor cores turns a
/// block that fits into one that spills. Without it the blocks the tiler picks stay in
/// registers (measured in one run on the emulated boards: kws 12 % and resnet8 11 % fewer
/// instructions on Cortex-M4, 5 % and 13 % on RV32IMAC). The scheduling after allocation,
/// which cannot add spills, stays on.
const NO_PRE_RA_SCHEDULING: &str = "-fno-schedule-insns";

/// Every target minnow knows, host first.
pub fn all() -> Vec<Target> {
    let mut targets = core_targets();
    let boards = real_board::all();
    for t in &mut targets {
        t.real_board = boards.iter().find(|b| b.core == t.name).cloned();
    }
    // Each real board is also a target of its own name: its records (cycles on that board)
    // are kept apart from those of other boards with the same core.
    for b in boards {
        if let Some(core) = targets.iter().find(|t| t.name == b.core).cloned() {
            targets.push(Target {
                name: b.name,
                flash_bytes: b.memory[1],
                ram_bytes: b.memory[3],
                real_board: Some(b),
                ..core
            });
        }
    }
    targets
}

/// The core targets (one per CPU), without their real boards.
fn core_targets() -> Vec<Target> {
    let mut targets = vec![host_target()];
    targets.extend(arm_targets());
    targets.extend(riscv_targets());
    targets
}

/// The machine minnow runs on (its C compiler; no board, no memory limits).
fn host_target() -> Target {
    Target {
        name: "host",
        triple: Triple::host(),
        cpu: "native",
        features: Features {
            wide_multiply: true,
            ..Features::default()
        },
        ram_bytes: 0,
        flash_bytes: 0,
        toolchain: Toolchain {
            cc: "cc",
            flags: vec![],
            packages: "gcc",
        },
        board: None,
        real_board: None,
    }
}

/// The features of a core: DSP, FPU, MVE and compressed instructions as given, with a
/// 32x32->64 multiply and no 128-bit SIMD.
fn core_features(dsp: bool, fpu: bool, mve: bool, compressed: bool) -> Features {
    Features {
        dsp,
        fpu,
        mve,
        compressed,
        simd128: false,
        wide_multiply: true,
    }
}

/// `f` on a core without the 32x32->64 multiply.
fn narrow(f: Features) -> Features {
    Features {
        wide_multiply: false,
        ..f
    }
}

/// The Cortex-M targets, on QEMU's MPS2/MPS3 boards.
fn arm_targets() -> Vec<Target> {
    let arm = |name, triple, cpu, features, flags: Vec<&'static str>, ram, flash, board| Target {
        name,
        triple: Triple::from_str(triple).expect("known triple"),
        cpu,
        features,
        ram_bytes: ram,
        flash_bytes: flash,
        toolchain: Toolchain {
            cc: "arm-none-eabi-gcc",
            flags,
            packages: "gcc-arm-none-eabi libnewlib-arm-none-eabi",
        },
        board: Some(board),
        real_board: None,
    };
    let thumb = ["-mthumb", NO_PRE_RA_SCHEDULING];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        extra.iter().chain(&thumb).copied().collect()
    };
    let f = core_features;
    vec![
        arm(
            "cortex-m0plus",
            "thumbv6m-none-eabi",
            "cortex-m0plus",
            narrow(f(false, false, false, false)),
            with(&["-mcpu=cortex-m0plus", "-mfloat-abi=soft"]),
            32 * 1024,
            256 * 1024,
            board::mps2("mps2-an385", "cortex-m3"),
        ),
        arm(
            "cortex-m3",
            "thumbv7m-none-eabi",
            "cortex-m3",
            f(false, false, false, false),
            with(&["-mcpu=cortex-m3", "-mfloat-abi=soft"]),
            64 * 1024,
            512 * 1024,
            board::mps2("mps2-an385", "cortex-m3"),
        ),
        arm(
            "cortex-m4",
            "thumbv7em-none-eabihf",
            "cortex-m4",
            f(true, true, false, false),
            with(&["-mcpu=cortex-m4", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]),
            128 * 1024,
            1024 * 1024,
            board::mps2("mps2-an386", "cortex-m4"),
        ),
        arm(
            "cortex-m7",
            "thumbv7em-none-eabihf",
            "cortex-m7",
            f(true, true, false, false),
            with(&["-mcpu=cortex-m7", "-mfloat-abi=hard", "-mfpu=fpv5-d16"]),
            512 * 1024,
            2048 * 1024,
            board::mps2("mps2-an500", "cortex-m7"),
        ),
        arm(
            "cortex-m33",
            "thumbv8m.main-none-eabihf",
            "cortex-m33",
            f(true, true, false, false),
            with(&["-mcpu=cortex-m33", "-mfloat-abi=hard", "-mfpu=fpv5-sp-d16"]),
            256 * 1024,
            1024 * 1024,
            board::an505(),
        ),
        arm(
            "cortex-m55",
            "thumbv8m.main-none-eabihf",
            "cortex-m55",
            f(true, true, true, false),
            with(&["-mcpu=cortex-m55", "-mfloat-abi=hard"]),
            512 * 1024,
            2048 * 1024,
            board::an547(),
        ),
    ]
}

/// The RISC-V targets, on QEMU's virt board.
fn riscv_targets() -> Vec<Target> {
    let riscv = |name, triple, cpu, features, march| Target {
        name,
        triple: Triple::from_str(triple).expect("known triple"),
        cpu,
        features,
        ram_bytes: 64 * 1024,
        flash_bytes: 512 * 1024,
        toolchain: Toolchain {
            cc: "riscv64-unknown-elf-gcc",
            flags: vec![
                march,
                "-misa-spec=2.2",
                "-mabi=ilp32",
                "-mcmodel=medany",
                "-ffreestanding",
                NO_PRE_RA_SCHEDULING,
            ],
            packages: "gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf",
        },
        board: Some(board::riscv_virt()),
        real_board: None,
    };
    let f = core_features;
    vec![
        riscv(
            "rv32imc",
            "riscv32imc-unknown-none-elf",
            "rv32imc",
            narrow(f(false, false, false, true)),
            "-march=rv32imc",
        ),
        riscv(
            "rv32imac",
            "riscv32imac-unknown-none-elf",
            "rv32imac",
            narrow(f(false, false, false, true)),
            "-march=rv32imac",
        ),
    ]
}

/// The target called `name`, or an error listing the known names.
pub fn find(name: &str) -> Result<Target, String> {
    all().into_iter().find(|t| t.name == name).ok_or_else(|| {
        let names: Vec<&str> = all().iter().map(|t| t.name).collect();
        format!(
            "unknown target `{name}`; known targets: {} (see `minnow targets`)",
            names.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contracts_targets_exist_with_their_boards() {
        for name in [
            "host",
            "cortex-m0plus",
            "cortex-m3",
            "cortex-m4",
            "cortex-m7",
            "cortex-m33",
            "cortex-m55",
            "rv32imc",
            "rv32imac",
        ] {
            let t = find(name).unwrap();
            assert_eq!(t.board.is_none(), t.is_host(), "{name}");
        }
        assert_eq!(
            find("cortex-m4").unwrap().triple.to_string(),
            "thumbv7em-none-eabihf"
        );
        assert!(find("cortex-m5").unwrap_err().contains("cortex-m4"));
    }

    #[test]
    fn real_boards_are_targets_with_their_chips() {
        let chips = [
            ("nucleo-f446re", "STM32F446RETx", "cortex-m4"),
            ("nucleo-h743zi", "STM32H743ZITx", "cortex-m7"),
            ("nrf52840-dk", "nRF52840_xxAA", "cortex-m4"),
            ("gd32vf103", "GD32VF103CBT6", "rv32imac"),
        ];
        for (name, chip, core) in chips {
            let t = find(name).unwrap();
            let b = t.real_board.as_ref().unwrap();
            assert_eq!((b.chip, t.cpu), (chip, core), "{name}");
            assert_eq!(t.ram_bytes, b.memory[3]);
            assert!(
                t.board.is_some(),
                "{name} also runs on its core's emulated board"
            );
        }
        // The core targets flash their default board.
        assert_eq!(
            find("cortex-m4").unwrap().real_board.unwrap().name,
            "nucleo-f446re"
        );
        assert!(find("cortex-m0plus").unwrap().real_board.is_none());
    }
}
