//! `minnow bench MODEL --target T [--board qemu|probe[:SEL]] [--per-layer] [--input F..] [--json]`.

use super::pipeline;
use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::json;
use std::path::PathBuf;

/// Arguments of `minnow bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// The model file (.tflite).
    model: PathBuf,
    /// The target (see `minnow targets`).
    #[arg(long)]
    target: String,
    /// The board: `qemu` (the target's emulated board, the default) or `probe[:SELECTOR]`.
    #[arg(long)]
    board: Option<String>,
    /// Also report retired instructions per layer.
    #[arg(long)]
    per_layer: bool,
    /// Input tensors to run on (default: a fixed pseudo-random input).
    #[arg(long = "input")]
    inputs: Vec<PathBuf>,
    /// Tuning records to apply.
    #[arg(long)]
    tuning_db: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// A reproducible input of `n` bytes.
fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Runs `minnow bench`.
pub fn bench(args: &BenchArgs) -> Result<()> {
    let target = minnow_targets::find(&args.target).map_err(anyhow::Error::msg)?;
    pipeline::refuse_tuning_db(&args.tuning_db)?;
    pipeline::check_board(args.board.as_deref(), &target)?;
    if target.is_host() {
        bail!("bench counts retired instructions on an emulated board; pick a microcontroller target (e.g. --target cortex-m4), or use `minnow run --engine c` on the host");
    }
    let graph = super::load_model(&args.model)?;
    let inputs: Vec<Vec<u8>> = if args.inputs.is_empty() {
        graph
            .inputs
            .iter()
            .enumerate()
            .map(|(k, t)| pseudo_random(graph.tensor(*t).ty.bytes(), 0x5EED + k as u64))
            .collect()
    } else {
        args.inputs
            .iter()
            .map(|p| {
                std::fs::read(p).with_context(|| format!("cannot read the input {}", p.display()))
            })
            .collect::<Result<_>>()?
    };
    pipeline::check_inputs(&graph, &inputs)?;
    let name = pipeline::model_name(&args.model, None);
    let compiled = pipeline::compile(&graph, &name)?;
    let vectors = vec![inputs];
    let whole = pipeline::measure(&target, &compiled, &vectors, false)?;
    let instructions = whole.instructions.as_ref().and_then(|v| v.first().copied());
    let layers = if args.per_layer {
        let m = pipeline::measure(&target, &compiled, &vectors, true)?;
        compiled
            .program
            .steps
            .iter()
            .zip(m.layer_instructions)
            .map(|(s, n)| (s.name.clone(), s.op.clone(), n, s.macs))
            .collect()
    } else {
        Vec::new()
    };
    let board = target.board.as_ref().map(|b| b.machine);
    let flash = whole.sections.flash();
    let macs = graph.macs();
    if args.json {
        let layer_list: Vec<_> = layers
            .iter()
            .map(|(n, op, i, macs)| json!({"name": n, "op": op, "instructions": i, "macs": macs}))
            .collect();
        let report = json!({
            "target": target.name,
            "board": board,
            "instructions": instructions,
            "cycles": null,
            "arena_bytes": compiled.plan.arena_bytes,
            "flash_bytes": flash,
            "ram_bytes": compiled.plan.arena_bytes as u64 + whole.sections.data + whole.sections.bss,
            "macs": macs,
            "layers": if args.per_layer { json!(layer_list) } else { json!(null) },
        });
        return super::emit(&format!("{}\n", serde_json::to_string_pretty(&report)?));
    }
    let mut text = format!(
        "{} on {} ({}):\n",
        name,
        target.name,
        board.unwrap_or("host")
    );
    if let Some(n) = instructions {
        text += &format!(
            "  instructions: {n} ({:.2} per MAC)\n",
            n as f64 / macs.max(1) as f64
        );
    }
    text += &format!(
        "  arena: {} bytes\n  flash: {flash} bytes (.text {} + .rodata {} + .data {})\n",
        compiled.plan.arena_bytes, whole.sections.text, whole.sections.rodata, whole.sections.data
    );
    if !layers.is_empty() {
        text += "  layer  op                   instructions  per MAC  name\n";
    }
    for (k, (n, op, i, macs)) in layers.iter().enumerate() {
        let per_mac = if *macs > 0 {
            format!("{:.2}", *i as f64 / *macs as f64)
        } else {
            "-".into()
        };
        text += &format!("  {k:>5}  {op:<20} {i:>12} {per_mac:>8}  {n}\n");
    }
    super::emit(&text)
}
