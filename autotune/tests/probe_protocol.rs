//! The real-board path without a real board: the harness ELF linked for the NUCLEO-F446RE runs
//! on QEMU's STM32F405 board (`netduinoplus2`: the same flash and RAM addresses), and
//! [`collect`] drives it through QEMU's GDB stub exactly as it drives probe-rs on a board:
//! a hardware breakpoint at the checkpoint, the results block and the outputs read from RAM.
//! The outputs must be the loop interpreter's, bit for bit. (QEMU has no DWT, so the cycle
//! counts read zero here; on a board they are the DWT's.)

use minnow_autotune::compile::{compile, Schedules};
use minnow_autotune::measure::probe::{collect, DebugCore, ProbeMeasurer};
use minnow_autotune::measure::Build;
use minnow_ir::loops::interp::ProgramInterp;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A GDB remote-protocol client: just the packets [`DebugCore`] needs.
struct GdbCore {
    stream: TcpStream,
    breakpoint: Option<u64>,
}

impl GdbCore {
    fn connect(port: u16) -> GdbCore {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) {
                return GdbCore {
                    stream,
                    breakpoint: None,
                };
            }
            assert!(Instant::now() < deadline, "QEMU's GDB stub did not open");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn send(&mut self, packet: &str) -> Result<(), String> {
        let sum = packet.bytes().fold(0u8, |a, b| a.wrapping_add(b));
        let framed = format!("${packet}#{sum:02x}");
        self.stream
            .write_all(framed.as_bytes())
            .map_err(|e| e.to_string())
    }

    /// The next reply packet (acknowledged), or `None` at `timeout`.
    fn reply(&mut self, timeout: Duration) -> Result<Option<String>, String> {
        self.stream
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .map_err(|e| e.to_string())?;
        let mut packet = Vec::new();
        let mut byte = [0u8];
        let mut inside = false;
        loop {
            match self.stream.read(&mut byte) {
                Ok(0) => return Err("the GDB stub closed".into()),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Ok(None),
                Err(e) => return Err(e.to_string()),
            }
            match byte[0] {
                b'$' => inside = true,
                b'#' if inside => {
                    let mut sum = [0u8; 2];
                    self.stream
                        .read_exact(&mut sum)
                        .map_err(|e| e.to_string())?;
                    self.stream.write_all(b"+").map_err(|e| e.to_string())?;
                    return Ok(Some(String::from_utf8_lossy(&packet).into_owned()));
                }
                b if inside => packet.push(b),
                _ => {} // acks
            }
        }
    }

    fn command(&mut self, packet: &str) -> Result<String, String> {
        self.send(packet)?;
        self.reply(Duration::from_secs(10))?
            .ok_or_else(|| format!("no reply to {packet}"))
    }
}

impl DebugCore for GdbCore {
    /// QEMU starts halted at reset (`-S`).
    fn reset_and_halt(&mut self) -> Result<(), String> {
        self.command("?").map(|_| ())
    }

    fn set_breakpoint(&mut self, address: u64) -> Result<(), String> {
        let ok = self.command(&format!("Z1,{address:x},2"))?;
        self.breakpoint = Some(address);
        (ok == "OK").then_some(()).ok_or(ok)
    }

    fn clear_breakpoints(&mut self) -> Result<(), String> {
        if let Some(address) = self.breakpoint.take() {
            self.command(&format!("z1,{address:x},2"))?;
        }
        Ok(())
    }

    /// Steps off the breakpoint (removed for the step), then continues.
    fn resume(&mut self) -> Result<(), String> {
        if let Some(address) = self.breakpoint {
            self.command(&format!("z1,{address:x},2"))?;
            self.command("s")?;
            self.command(&format!("Z1,{address:x},2"))?;
        }
        self.send("c")
    }

    fn wait_halted(&mut self, timeout: Duration) -> Result<bool, String> {
        Ok(self.reply(timeout)?.is_some())
    }

    fn read(&mut self, address: u64, bytes: &mut [u8]) -> Result<(), String> {
        for (i, chunk) in bytes.chunks_mut(1024).enumerate() {
            let at = address + (i * 1024) as u64;
            let hex = self.command(&format!("m{at:x},{:x}", chunk.len()))?;
            if hex.len() != 2 * chunk.len() {
                return Err(format!("reading {at:#x}: {hex}"));
            }
            for (j, b) in chunk.iter_mut().enumerate() {
                *b = u8::from_str_radix(&hex[2 * j..2 * j + 2], 16).map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }
}

struct Qemu(Child);

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tools_present() -> bool {
    let target = minnow_targets::find("nucleo-f446re").unwrap();
    let qemu = which("qemu-system-arm");
    if target.toolchain.installed() && qemu {
        return true;
    }
    let message = "arm-none-eabi-gcc and qemu-system-arm are needed: sudo apt-get install \
                   gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm";
    assert!(std::env::var("CI").is_err(), "{message}");
    eprintln!("SKIPPED (tool missing): {message}");
    false
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

#[test]
fn the_results_protocol_reads_every_vector_bit_exact() {
    if !tools_present() {
        return;
    }
    let target = minnow_targets::find("nucleo-f446re").unwrap();
    let board = target.real_board.clone().unwrap();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/models/kws.tflite");
    let graph = minnow_ir::import::tflite::import(&std::fs::read(path).unwrap(), "kws").unwrap();
    let compiled = compile(
        &graph,
        "kws",
        &target,
        minnow_passes::patch::Patching::Off,
        Schedules::Default,
    )
    .unwrap();
    let vectors: Vec<Vec<Vec<u8>>> = (0..3u8)
        .map(|v| {
            vec![(0..490)
                .map(|i| (i as u8).wrapping_mul(31).wrapping_add(v * 77))
                .collect()]
        })
        .collect();
    let mut interp = ProgramInterp::new(&compiled.program).unwrap();
    let expected: Vec<Vec<Vec<u8>>> = vectors
        .iter()
        .map(|v| {
            interp.reset();
            interp.run(v).unwrap()
        })
        .collect();
    let build = Build {
        target: &target,
        source: &compiled.source,
        vectors: &vectors,
        per_layer: true,
    };
    let dir = tempfile::tempdir().unwrap();
    let (elf, _, symbols) = ProbeMeasurer::build_elf(&build, &board, dir.path()).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let _qemu = Qemu(
        Command::new("qemu-system-arm")
            .args([
                "-M",
                "netduinoplus2",
                "-nographic",
                "-monitor",
                "none",
                "-serial",
                "none",
            ])
            .args(["-S", "-gdb", &format!("tcp:127.0.0.1:{port}"), "-kernel"])
            .arg(&elf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut core = GdbCore::connect(port);
    let run = collect(
        &mut core,
        symbols,
        compiled.source.outputs,
        Duration::from_secs(120),
    )
    .unwrap();
    assert_eq!(run.outputs, expected);
    assert_eq!(run.cycles.len(), 3);
    assert_eq!(run.layers.len(), compiled.program.steps.len());
}
