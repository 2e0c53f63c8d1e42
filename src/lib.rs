//! minnow as a library: the compiler backend other runtimes call instead of shelling out to
//! the `minnow` command.
//!
//! [`Model::load`] imports a model (TFLite flatbuffer or ONNX protobuf bytes) and [`Model::run`] runs the
//! reference interpreter, bit-exact with TensorFlow Lite Micro; [`compile`] takes the bytes
//! through the whole pipeline (graph rewrites, lowering, schedules, memory planning, code
//! generation) for a [`Target`] and returns an [`Artifact`]: the generated C (or the
//! `#![no_std]` Rust crate) with its arena and weight sizes.
//!
//! ```
//! let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/models/kws.tflite"))?;
//! let target = minnow::target("cortex-m4")?;
//! let artifact = minnow::compile(&bytes, &target, &minnow::Options::default())?;
//! assert!(artifact.arena_bytes > 0 && artifact.weight_bytes > 0);
//! assert!(artifact.files.iter().any(|(path, _)| path.ends_with("model.c")));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The generated C's interface is stable (`minnow_model.h`, written beside every model, is its
//! model-independent form: the `minnow_model` descriptor, ABI version 1): for a model `NAME`,
//! `int NAME_run(const void *const *inputs, void *const *outputs, uint8_t *arena)` returns 0
//! (1 for a null pointer), `void NAME_reset(uint8_t *arena)` sets the recurrent state, and the
//! macros `NAME_ARENA_BYTES`, `NAME_NUM_INPUTS`, `NAME_NUM_OUTPUTS`, `NAME_INPUT_<i>_BYTES`,
//! `NAME_OUTPUT_<i>_BYTES` size the buffers. Tensors are raw little-endian bytes in the model's
//! own layout; the arena is aligned to 8 bytes; nothing allocates. `extern const minnow_model
//! NAME_model` describes the same to a runtime that embeds models it does not know by name.

use minnow_autotune::compile::{compile as compile_graph, Compiled, Schedules};
use minnow_backends::rust::RustEmitter;
pub use minnow_ir::types::{DType, Quant, TensorType};
use minnow_ir::Graph;
pub use minnow_passes::patch::Patching;
pub use minnow_targets::Target;
use std::path::{Path, PathBuf};

/// Why a model cannot be loaded, run or compiled; each message names the problem and the fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model is not readable, or uses an operator or a shape minnow does not support.
    #[error(transparent)]
    Model(#[from] minnow_ir::Error),
    /// No target has this name.
    #[error("{0}")]
    UnknownTarget(String),
    /// The model does not compile for the target.
    #[error(transparent)]
    Compile(#[from] minnow_autotune::compile::CompileError),
    /// The tuning database cannot be read.
    #[error(transparent)]
    Tuning(#[from] minnow_autotune::apply::ApplyError),
    /// The tuning database cannot be opened.
    #[error(transparent)]
    TuningDb(#[from] minnow_autotune::db::DbError),
    /// Writing the artifact failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Imports a model from its bytes (TFLite or ONNX, told by the content; `name` appears in
/// errors). An ONNX model then goes through QDQ folding
/// ([`minnow_passes::qdq::QdqFolder`]), so a quantized model in QDQ form runs the int8
/// kernels in every engine.
pub fn load_graph(bytes: &[u8], name: &str) -> Result<Graph, Error> {
    let graph = minnow_ir::import::load(bytes, name)?;
    // The TFLite importer accepts only bytes with the identifier: anything else loaded as ONNX.
    let tflite = bytes.len() >= 8 && &bytes[4..8] == b"TFL3";
    if !tflite {
        return Ok(minnow_passes::qdq::QdqFolder::default().run(&graph)?.0);
    }
    Ok(graph)
}

/// The target called `name` (see `minnow targets`).
pub fn target(name: &str) -> Result<Target, Error> {
    minnow_targets::find(name).map_err(Error::UnknownTarget)
}

/// What to generate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Emit {
    /// One C99 file and its header (`NAME.c`, `NAME.h`).
    #[default]
    C,
    /// A `#![no_std]` Rust crate (`Cargo.toml`, `src/lib.rs`, ...).
    Rust,
}

/// How to compile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// The generated code's name: the C symbol prefix, or the crate's name.
    pub name: String,
    /// The language.
    pub emit: Emit,
    /// A tuning database (SQLite file or `postgres://` URL) whose best schedules to apply.
    pub tuning_db: Option<String>,
    /// Whether to run the first layers in bands of rows (patch-based execution) for a
    /// smaller arena.
    pub patching: Patching,
    /// The most arena bytes the build may plan: tuned workloads that would need more go back
    /// to the default schedule, and a model whose default needs more is an error.
    pub max_arena: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            name: "model".into(),
            emit: Emit::C,
            tuning_db: None,
            patching: Patching::Off,
            max_arena: None,
        }
    }
}

/// The generated code and what it needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Artifact {
    /// The files, by path relative to the output directory.
    pub files: Vec<(PathBuf, Vec<u8>)>,
    /// Bytes of the arena one inference needs.
    pub arena_bytes: usize,
    /// Bytes of weights and other constants (in flash).
    pub weight_bytes: usize,
    /// Bytes of each input tensor.
    pub input_bytes: Vec<usize>,
    /// Bytes of each output tensor.
    pub output_bytes: Vec<usize>,
}

impl Artifact {
    /// Writes the files into `dir` (created if missing); returns their paths.
    pub fn write_to(&self, dir: &Path) -> Result<Vec<PathBuf>, Error> {
        self.files
            .iter()
            .map(|(path, bytes)| {
                let full = dir.join(path);
                let io = |source| Error::Io {
                    path: full.clone(),
                    source,
                };
                if let Some(parent) = full.parent() {
                    std::fs::create_dir_all(parent).map_err(io)?;
                }
                std::fs::write(&full, bytes).map_err(io)?;
                Ok(full)
            })
            .collect()
    }
}

/// A loaded model.
///
/// ```
/// let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/models/kws.tflite"))?;
/// let model = minnow::Model::load(&bytes)?;
/// let input = vec![0u8; model.inputs()[0].bytes()];
/// let outputs = model.run(&[input])?;
/// assert_eq!(outputs[0].len(), model.outputs()[0].bytes());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Model {
    graph: Graph,
}

impl Model {
    /// Imports a TFLite or ONNX model from its bytes (the format is told by the content).
    pub fn load(bytes: &[u8]) -> Result<Model, Error> {
        Ok(Model {
            graph: load_graph(bytes, "<bytes>")?,
        })
    }

    /// The input tensors' types, in the model's order.
    pub fn inputs(&self) -> Vec<TensorType> {
        let g = &self.graph;
        g.inputs.iter().map(|t| g.tensor(*t).ty.clone()).collect()
    }

    /// The output tensors' types, in the model's order.
    pub fn outputs(&self) -> Vec<TensorType> {
        let g = &self.graph;
        g.outputs.iter().map(|t| g.tensor(*t).ty.clone()).collect()
    }

    /// One inference on the reference interpreter: `inputs[i]` holds input `i`'s raw
    /// little-endian bytes; returns each output's.
    pub fn run(&self, inputs: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, Error> {
        let mut interp = minnow_ir::interp::Interpreter::new(&self.graph)?;
        Ok(interp.run(inputs)?)
    }

    /// Compiles the model for `target` (see [`compile`]).
    pub fn compile(&self, target: &Target, options: &Options) -> Result<Artifact, Error> {
        let name = minnow_ir::lower::c_identifier(&options.name);
        let compiled = match &options.tuning_db {
            None => compile_graph(
                &self.graph,
                &name,
                target,
                options.patching,
                Schedules::Default,
            )?,
            Some(db) => {
                let db = minnow_autotune::db::open(db)?;
                let patching = options.patching;
                minnow_autotune::apply::compile_tuned(
                    &self.graph,
                    &name,
                    target,
                    patching,
                    db.as_ref(),
                    options.max_arena,
                )?
                .0
            }
        };
        minnow_autotune::apply::check_budget(&compiled.program, &compiled.plan, options.max_arena)?;
        Ok(artifact(&compiled, options.emit))
    }
}

/// Compiles the model in `model_bytes` for `target`: the generated code with its arena and
/// weight sizes.
pub fn compile(model_bytes: &[u8], target: &Target, options: &Options) -> Result<Artifact, Error> {
    Model::load(model_bytes)?.compile(target, options)
}

fn artifact(compiled: &Compiled, emit: Emit) -> Artifact {
    let p = &compiled.program;
    let files = match emit {
        Emit::C => {
            let s = &compiled.source;
            vec![
                (
                    PathBuf::from("minnow_model.h"),
                    minnow_backends::c::MODEL_HEADER.as_bytes().to_vec(),
                ),
                (
                    PathBuf::from(format!("{}.h", s.name)),
                    s.header.clone().into_bytes(),
                ),
                (
                    PathBuf::from(format!("{}.c", s.name)),
                    s.source.clone().into_bytes(),
                ),
            ]
        }
        Emit::Rust => RustEmitter.emit(p, &compiled.plan).files,
    };
    Artifact {
        files,
        arena_bytes: compiled.plan.arena_bytes,
        weight_bytes: p.constant_bytes(),
        input_bytes: p.inputs.iter().map(|s| p.slot(*s).bytes()).collect(),
        output_bytes: p.outputs.iter().map(|s| p.slot(*s).bytes()).collect(),
    }
}
