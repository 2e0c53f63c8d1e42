//! `minnow run MODEL --input F.. --output F.. [--target T] [--engine E] [--json]`.

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use minnow_ir::interp::Interpreter;
use serde_json::json;
use std::path::PathBuf;

/// How the inference is executed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Engine {
    /// The reference interpreter (bit-exact with TFLite Micro).
    Interp,
    /// The generated C, built with the host compiler.
    C,
    /// The generated no_std Rust crate.
    Rust,
    /// The Cranelift JIT.
    Jit,
}

/// Arguments of `minnow run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The model file (.tflite).
    model: PathBuf,
    /// Raw little-endian input tensor, one per model input, in order.
    #[arg(long = "input", required = true)]
    inputs: Vec<PathBuf>,
    /// Where to write each output tensor, one per model output, in order.
    #[arg(long = "output", required = true)]
    outputs: Vec<PathBuf>,
    /// Where to run: `host` (this machine).
    #[arg(long, default_value = "host")]
    target: String,
    /// How to run on the host.
    #[arg(long, value_enum, default_value_t = Engine::Interp)]
    engine: Engine,
    /// Print one JSON object describing the run.
    #[arg(long)]
    json: bool,
}

/// Runs `minnow run`.
pub fn run(args: &RunArgs) -> Result<()> {
    if args.target != "host" {
        bail!(
            "target '{}' cannot run yet: this build of minnow runs models on the host only (emulated \
             Cortex-M and RISC-V boards are not implemented yet); use --target host",
            args.target
        );
    }
    if args.engine != Engine::Interp {
        bail!(
            "engine '{}' is not implemented yet in this build of minnow; use --engine interp",
            format!("{:?}", args.engine).to_lowercase()
        );
    }
    let graph = super::load_model(&args.model)?;
    if args.outputs.len() != graph.outputs.len() {
        bail!(
            "the model has {} output(s) but {} --output file(s) were given",
            graph.outputs.len(),
            args.outputs.len()
        );
    }
    let mut inputs = Vec::new();
    for path in &args.inputs {
        inputs.push(
            std::fs::read(path)
                .with_context(|| format!("cannot read the input {}", path.display()))?,
        );
    }
    let mut interp = Interpreter::new(&graph)?;
    let outputs = interp
        .run(&inputs)
        .context("the inputs do not fit the model")?;
    for (path, bytes) in args.outputs.iter().zip(&outputs) {
        std::fs::write(path, bytes)
            .with_context(|| format!("cannot write the output {}", path.display()))?;
    }
    if args.json {
        let report = json!({
            "target": "host",
            "engine": "interp",
            "board": null,
            "instructions": null,
            "cycles": null,
            "arena_bytes": null,
            "flash_bytes": null,
            "outputs": args.outputs,
        });
        super::emit(&format!("{report}\n"))?;
    }
    Ok(())
}
