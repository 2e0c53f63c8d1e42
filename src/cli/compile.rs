//! `minnow compile MODEL --target T -o DIR [--emit c|rust] [--name NAME] [--json] [--dump loops]`.

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use minnow_backends::rust::RustEmitter;
use serde_json::json;
use std::path::PathBuf;

/// What source language to emit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Emit {
    /// One C99 file and its header.
    C,
    /// A no_std Rust crate.
    Rust,
}

/// What to print besides the summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Dump {
    /// The lowered loop IR.
    Loops,
}

/// Arguments of `minnow compile`.
#[derive(Args, Debug)]
pub struct CompileArgs {
    /// The model file (.tflite or .onnx).
    model: PathBuf,
    /// The target (see `minnow targets`).
    #[arg(long)]
    target: String,
    /// The directory to write the sources into (created if missing).
    #[arg(short = 'o', long = "output-dir")]
    out_dir: PathBuf,
    /// Source language.
    #[arg(long, value_enum, default_value_t = Emit::C)]
    emit: Emit,
    /// C name of the model (file names and symbol prefix); defaults to the file's stem.
    #[arg(long)]
    name: Option<String>,
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
    /// Print one JSON object: files, arena_bytes, weight_bytes, flash_bytes, the arena
    /// timeline (live tensors per step), what the passes did and the seconds spent
    /// (compile_seconds in minnow, flash_build_seconds in the target's compiler).
    #[arg(long)]
    json: bool,
    /// Print an intermediate form.
    #[arg(long, value_enum)]
    dump: Option<Dump>,
}

/// Runs `minnow compile`.
pub fn compile(args: &CompileArgs) -> Result<()> {
    let started = std::time::Instant::now();
    let target = minnow_targets::find(&args.target).map_err(anyhow::Error::msg)?;
    let graph = super::load_model(&args.model)?;
    let name = super::pipeline::model_name(&args.model, args.name.as_deref());
    let compiled = super::pipeline::compile(
        &graph,
        &name,
        &target,
        args.patches,
        args.tuning_db.as_deref(),
        args.max_arena,
    )?;
    let written = match args.emit {
        Emit::C => compiled.source.write_to(&args.out_dir),
        Emit::Rust => RustEmitter
            .emit(&compiled.program, &compiled.plan)
            .write_to(&args.out_dir),
    };
    let files = written
        .with_context(|| format!("cannot write the sources into {}", args.out_dir.display()))?;
    let weight_bytes = compiled.program.constant_bytes();
    let compile_seconds = started.elapsed().as_secs_f64();
    // The model's real flash, when the target's compiler is here to build it.
    let sections = if target.toolchain.installed() && args.emit == Emit::C {
        let dir = tempfile::tempdir()?;
        let c = files
            .iter()
            .find(|f| f.extension().is_some_and(|e| e == "c"))
            .expect("a .c file");
        Some(minnow_autotune::measure::model_sections(
            &target,
            dir.path(),
            c,
        )?)
    } else {
        None
    };
    let flash_bytes = sections.map(|s| s.flash());
    let stack_bytes = sections.and_then(|s| s.stack);
    let flash_build_seconds = started.elapsed().as_secs_f64() - compile_seconds;
    let mut text = String::new();
    if args.dump == Some(Dump::Loops) {
        text += &compiled.program.to_string();
    }
    if args.json {
        let report = json!({
            "files": files,
            "arena_bytes": compiled.plan.arena_bytes,
            "weight_bytes": weight_bytes,
            "flash_bytes": flash_bytes,
            "stack_bytes": stack_bytes,
            "target": target.name,
            "graph_rewrite": compiled.rewrite,
            "step_order": compiled.order,
            "patches": compiled.patch,
            "arena_peak_live_bytes": compiled.plan.peak_live_bytes(),
            "arena_timeline": compiled.plan.timeline,
            "compile_seconds": compile_seconds,
            "flash_build_seconds": flash_bytes.map(|_| flash_build_seconds),
        });
        text += &format!("{}\n", serde_json::to_string_pretty(&report)?);
    } else {
        for f in &files {
            text += &format!("wrote {}\n", f.display());
        }
        text += &format!("arena: {} bytes\n", compiled.plan.arena_bytes);
        text += &match flash_bytes {
            Some(flash) => format!("flash: {flash} bytes (code + weights, built with {})\n", target.toolchain.cc),
            None => format!(
                "flash: {weight_bytes} bytes of weights + code (code size unknown: {} is not installed)\n",
                target.toolchain.cc
            ),
        };
        if let Some(stack) = stack_bytes {
            text += &format!("stack: {stack} bytes (deepest layer, gcc -fstack-usage)\n");
        }
        text += &format!("time: {compile_seconds:.2} s in minnow");
        if flash_bytes.is_some() {
            text += &format!(
                ", then {flash_build_seconds:.2} s building it with {} for the flash figure",
                target.toolchain.cc
            );
        }
        text += "\n";
    }
    super::emit(&text)
}
