//! `minnow bench MODEL --target T [--board qemu|probe[:SEL]] [--per-layer] [--input F..] [--json]`.

use super::pipeline;
use anyhow::{bail, Context, Result};
use clap::Args;
use minnow_autotune::measure::Sections;
use serde_json::json;
use std::path::PathBuf;

/// Arguments of `minnow bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// The model file (.tflite or .onnx).
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
    /// Run the first layers in bands of rows, for a smaller arena at the price of the rows
    /// the bands share computed twice: `off` (the default), `auto` (the stage and band count
    /// with the smallest arena, at most 5% more MACs) or a number of bands.
    #[arg(long, default_value = "off")]
    pub patches: minnow::Patching,
    /// Tuning records to apply.
    #[arg(long)]
    tuning_db: Option<PathBuf>,
    /// The most arena bytes the build may plan: tuned layers whose loop order would need
    /// more keep the default schedule; a model whose default needs more is an error.
    #[arg(long, value_name = "BYTES")]
    max_arena: Option<usize>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// A reproducible input of `n` bytes.
pub fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
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
    if target.is_host() {
        bail!("bench counts retired instructions on an emulated board; pick a microcontroller target (e.g. --target cortex-m4), or use `minnow run --engine c` on the host");
    }
    let board = pipeline::check_board(args.board.as_deref(), &target)?;
    let graph = super::load_model(&args.model)?;
    let inputs = read_inputs(args, &graph)?;
    pipeline::check_inputs(&graph, &inputs)?;
    let name = pipeline::model_name(&args.model, None);
    let compiled = pipeline::compile(
        &graph,
        &name,
        &target,
        args.patches,
        args.tuning_db.as_deref(),
        args.max_arena,
    )?;
    let vectors = vec![inputs];
    let whole = pipeline::measure(&target, &board, &compiled, &vectors, false)?;
    let layers = if args.per_layer {
        let m = pipeline::measure(&target, &board, &compiled, &vectors, true)?;
        let steps = compiled.program.steps.iter().zip(m.layer_counts);
        let layers = steps.map(|(s, n)| (s.name.clone(), s.op.clone(), n, s.macs));
        Some(layers.collect())
    } else {
        None
    };
    let report = Report {
        name,
        target: target.name,
        board: match &board {
            pipeline::BoardChoice::Default => target.board.as_ref().map(|b| b.machine),
            pipeline::BoardChoice::Probe(_) => target.real_board.as_ref().map(|b| b.name),
        },
        instructions: whole.instructions.as_ref().and_then(|v| v.first().copied()),
        cycles: whole.cycles.as_ref().and_then(|v| v.first().copied()),
        arena: compiled.plan.arena_bytes as u64,
        sections: whole.sections,
        macs: graph.macs(),
        layers,
    };
    if args.json {
        super::emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&report.json())?
        ))
    } else {
        super::emit(&report.text())
    }
}

/// The input vector: the given files, or a fixed pseudo-random input.
fn read_inputs(args: &BenchArgs, graph: &minnow_ir::Graph) -> Result<Vec<Vec<u8>>> {
    if args.inputs.is_empty() {
        let sizes = graph.inputs.iter().map(|t| graph.tensor(*t).ty.bytes());
        return Ok(sizes
            .enumerate()
            .map(|(k, n)| pseudo_random(n, 0x5EED + k as u64))
            .collect());
    }
    args.inputs
        .iter()
        .map(|p| std::fs::read(p).with_context(|| format!("cannot read the input {}", p.display())))
        .collect()
}

/// What one bench run measured.
struct Report {
    name: String,
    target: &'static str,
    board: Option<&'static str>,
    instructions: Option<u64>,
    cycles: Option<u64>,
    arena: u64,
    sections: Sections,
    macs: u64,
    /// Per layer: name, op, instructions (cycles on a real board), MACs.
    layers: Option<Vec<(String, String, u64, u64)>>,
}

impl Report {
    /// The JSON object of the CLI contract.
    fn json(&self) -> serde_json::Value {
        let unit = self.unit();
        let layers = self.layers.as_ref().map(|layers| {
            let list = layers
                .iter()
                .map(|(n, op, i, macs)| json!({"name": n, "op": op, unit: i, "macs": macs}));
            list.collect::<Vec<_>>()
        });
        json!({
            "target": self.target,
            "board": self.board,
            "instructions": self.instructions,
            "cycles": self.cycles,
            "arena_bytes": self.arena,
            "flash_bytes": self.sections.flash(),
            "ram_bytes": self.arena + self.sections.data + self.sections.bss,
            "stack_bytes": self.sections.stack,
            "macs": self.macs,
            "layers": layers,
        })
    }

    /// What the counts are: `cycles` on a real board, `instructions` on an emulated one.
    fn unit(&self) -> &'static str {
        if self.cycles.is_some() {
            "cycles"
        } else {
            "instructions"
        }
    }

    /// The human-readable summary and layer table.
    fn text(&self) -> String {
        let board = self.board.unwrap_or("host");
        let mut text = format!("{} on {} ({board}):\n", self.name, self.target);
        if let Some(n) = self.instructions.or(self.cycles) {
            let per_mac = n as f64 / self.macs.max(1) as f64;
            text += &format!("  {}: {n} ({per_mac:.2} per MAC)\n", self.unit());
        }
        let s = &self.sections;
        text += &format!(
            "  arena: {} bytes\n  flash: {} bytes (.text {} + .rodata {} + .data {})\n",
            self.arena,
            s.flash(),
            s.text,
            s.rodata,
            s.data
        );
        if let Some(stack) = s.stack {
            text += &format!("  stack: {stack} bytes (deepest layer, gcc -fstack-usage)\n");
        }
        let Some(layers) = &self.layers else {
            return text;
        };
        text += "  layer  op                   instructions  per MAC  name\n";
        for (k, (n, op, i, macs)) in layers.iter().enumerate() {
            let per_mac = if *macs > 0 {
                format!("{:.2}", *i as f64 / *macs as f64)
            } else {
                "-".into()
            };
            text += &format!("  {k:>5}  {op:<20} {i:>12} {per_mac:>8}  {n}\n");
        }
        text
    }
}
