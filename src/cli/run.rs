//! `minnow run MODEL --input F.. --output F.. [--target T] [--engine E] [--json]`.

use super::pipeline;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use minnow_backends::rust::RustEmitter;
use minnow_ir::interp::Interpreter;
use minnow_ir::Graph;
use minnow_targets::Target;
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
    /// The model file (.tflite or .onnx).
    model: PathBuf,
    /// Raw little-endian input tensor, one per model input, in order.
    #[arg(long = "input", required = true)]
    inputs: Vec<PathBuf>,
    /// Where to write each output tensor, one per model output, in order.
    #[arg(long = "output", required = true)]
    outputs: Vec<PathBuf>,
    /// Where to run: `host` (this machine) or a microcontroller target, run on its emulated
    /// board (see `minnow targets`).
    #[arg(long, default_value = "host")]
    target: String,
    /// How to run on the host (default `interp`; other targets always run the generated C).
    #[arg(long, value_enum)]
    engine: Option<Engine>,
    /// The board: `qemu` (the target's emulated board, the default) or `probe[:SELECTOR]`.
    #[arg(long)]
    board: Option<String>,
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
    /// Print one JSON object describing the run.
    #[arg(long)]
    json: bool,
}

impl Engine {
    fn name(self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    }
}

/// Runs `minnow run`.
pub fn run(args: &RunArgs) -> Result<()> {
    let target = minnow_targets::find(&args.target).map_err(anyhow::Error::msg)?;
    let board = pipeline::check_board(args.board.as_deref(), &target)?;
    let engine = args.engine.unwrap_or(if target.is_host() {
        Engine::Interp
    } else {
        Engine::C
    });
    if !target.is_host() && engine != Engine::C {
        bail!(
            "target {} runs the generated C on its board; --engine {} applies to --target host only",
            target.name,
            engine.name()
        );
    }
    let graph = super::load_model(&args.model)?;
    let inputs = read_inputs(args, &graph)?;
    if engine == Engine::Interp && args.tuning_db.is_some() {
        eprintln!("minnow: --tuning-db applies to generated code; the reference interpreter has no schedules to tune");
    }
    let ran = execute(args, &graph, &target, &board, engine, inputs)?;
    for (path, bytes) in args.outputs.iter().zip(&ran.outputs) {
        std::fs::write(path, bytes)
            .with_context(|| format!("cannot write the output {}", path.display()))?;
    }
    if args.json {
        let report = json!({
            "target": target.name,
            "engine": engine.name(),
            "board": match &board {
                pipeline::BoardChoice::Default => target.board.as_ref().map(|b| b.machine),
                pipeline::BoardChoice::Probe(_) => target.real_board.as_ref().map(|b| b.name),
            },
            "instructions": ran.instructions,
            "cycles": ran.cycles,
            "arena_bytes": ran.arena,
            "flash_bytes": ran.flash,
            "outputs": args.outputs,
        });
        super::emit(&format!("{report}\n"))?;
    }
    Ok(())
}

/// The `--input` files, checked against the model's inputs (and the `--output` count).
fn read_inputs(args: &RunArgs, graph: &Graph) -> Result<Vec<Vec<u8>>> {
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
    pipeline::check_inputs(graph, &inputs)?;
    Ok(inputs)
}

/// What one inference gave.
struct Ran {
    /// The output tensors' bytes.
    outputs: Vec<Vec<u8>>,
    /// Retired instructions (emulated boards).
    instructions: Option<u64>,
    /// Core cycles (real boards).
    cycles: Option<u64>,
    /// The planned arena (generated code only).
    arena: Option<usize>,
    /// The model's flash (built for a board).
    flash: Option<u64>,
}

/// Runs `inputs` through the model on `engine`: the reference interpreter, the Cranelift
/// JIT, the generated Rust on the host, or the generated C on the host or `board`.
fn execute(
    args: &RunArgs,
    graph: &Graph,
    target: &Target,
    board: &pipeline::BoardChoice,
    engine: Engine,
    inputs: Vec<Vec<u8>>,
) -> Result<Ran> {
    let name = pipeline::model_name(&args.model, None);
    let compile_for = |target: &Target| {
        let db = args.tuning_db.as_deref();
        pipeline::compile(graph, &name, target, args.patches, db, args.max_arena)
    };
    let ran = |outputs, arena| Ran {
        outputs,
        instructions: None,
        cycles: None,
        arena,
        flash: None,
    };
    Ok(match engine {
        Engine::Interp => {
            let mut interp = Interpreter::new(graph)?;
            let outputs = interp
                .run(&inputs)
                .context("the inputs do not fit the model")?;
            ran(outputs, None)
        }
        Engine::Jit => {
            let compiled = compile_for(&target.for_jit())?;
            let mut jit =
                minnow_backends::jit::JitProgram::compile(&compiled.program, &compiled.plan)?;
            jit.reset();
            ran(jit.run(&inputs)?, Some(compiled.plan.arena_bytes))
        }
        Engine::Rust => {
            let compiled = compile_for(target)?;
            let generated = RustEmitter.emit(&compiled.program, &compiled.plan);
            let outputs = minnow_autotune::measure::rust_host::run_crate(&generated, &[inputs])
                .context("cannot run the generated Rust")?
                .pop()
                .unwrap_or_default();
            ran(outputs, Some(compiled.plan.arena_bytes))
        }
        Engine::C => {
            let compiled = compile_for(target)?;
            let m = pipeline::measure(target, board, &compiled, &[inputs], false)?;
            Ran {
                outputs: m.outputs.into_iter().next().unwrap_or_default(),
                instructions: m.instructions.and_then(|v| v.first().copied()),
                cycles: m.cycles.and_then(|v| v.first().copied()),
                arena: Some(compiled.plan.arena_bytes),
                flash: Some(m.sections.flash()),
            }
        }
    })
}
