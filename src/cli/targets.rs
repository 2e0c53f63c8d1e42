//! `minnow targets [--json]`.

use anyhow::Result;
use clap::Args;
use serde_json::json;

/// Arguments of `minnow targets`.
#[derive(Args, Debug)]
pub struct TargetsArgs {
    /// Print a JSON list.
    #[arg(long)]
    json: bool,
}

/// Runs `minnow targets`.
pub fn targets(args: &TargetsArgs) -> Result<()> {
    let all = minnow_targets::all();
    if args.json {
        let list: Vec<_> = all
            .iter()
            .map(|t| {
                json!({
                    "name": t.name,
                    "triple": t.triple.to_string(),
                    "cpu": t.cpu,
                    "features": t.features,
                    "ram_bytes": t.ram_bytes,
                    "flash_bytes": t.flash_bytes,
                    "toolchain": t.toolchain.cc,
                    "cflags": t.toolchain.flags,
                    "board": t.board.as_ref().map(|b| b.machine),
                    "toolchain_installed": t.toolchain.installed(),
                    "board_installed": t.board.as_ref().map(|b| b.installed()),
                    "real_board": t.real_board.as_ref().map(|b| json!({
                        "name": b.name,
                        "title": b.title,
                        "chip": b.chip,
                        "counter": b.counter(),
                    })),
                })
            })
            .collect();
        return super::emit(&format!("{}\n", serde_json::to_string_pretty(&list)?));
    }
    let mut text = format!(
        "{:<14} {:<27} {:<14} {:<18} {:>8} {:>8}  {:<12} {:<14} {}\n",
        "NAME",
        "TRIPLE",
        "CPU",
        "FEATURES",
        "RAM KiB",
        "FLASH KiB",
        "BOARD",
        "PROBE CHIP",
        "INSTALLED"
    );
    for t in &all {
        let f = t.features;
        let features: Vec<&str> = [
            (f.dsp, "dsp"),
            (f.fpu, "fpu"),
            (f.mve, "mve"),
            (f.compressed, "compressed"),
            (f.simd128, "simd128"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| *n)
        .collect();
        let installed = match &t.board {
            Some(b) => format!(
                "{} {}",
                if t.toolchain.installed() {
                    "toolchain:yes"
                } else {
                    "toolchain:NO"
                },
                if b.installed() { "qemu:yes" } else { "qemu:NO" }
            ),
            None => (if t.toolchain.installed() {
                "toolchain:yes"
            } else {
                "toolchain:NO"
            })
            .to_string(),
        };
        text += &format!(
            "{:<14} {:<27} {:<14} {:<18} {:>8} {:>8}  {:<12} {:<14} {}\n",
            t.name,
            t.triple.to_string(),
            t.cpu,
            if features.is_empty() {
                "-".to_string()
            } else {
                features.join(",")
            },
            t.ram_bytes / 1024,
            t.flash_bytes / 1024,
            t.board.as_ref().map_or("native", |b| b.machine),
            t.real_board.as_ref().map_or("-", |b| b.chip),
            installed
        );
    }
    super::emit(&text)
}
