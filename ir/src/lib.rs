//! minnow's intermediate representations and their reference semantics.
//!
//! The pipeline starts here: an importer ([`import`]) parses a model file into a [`Graph`], a
//! DAG of [`Op`]s over typed tensors ([`TensorType`]: shape, [`DType`], [`Quant`]). The
//! [`interp`] module runs a graph on the host, bit for bit as TensorFlow Lite Micro's reference
//! kernels do; every backend is checked against it. The quantized arithmetic both share lives
//! in [`fixedpoint`].
//!
//! ```no_run
//! let bytes = std::fs::read("../shared/models/kws.tflite").unwrap();
//! let graph = minnow_ir::import::tflite::import(&bytes, "kws").unwrap();
//! let mut interp = minnow_ir::interp::Interpreter::new(&graph).unwrap();
//! let outputs = interp.run(&[vec![0u8; 490]]).unwrap();
//! assert_eq!(outputs[0].len(), 12);
//! ```

pub mod error;
pub mod fixedpoint;
pub mod floatfn;
pub mod fused;
pub mod geometry;
pub mod graph;
pub mod import;
pub mod interp;
pub mod loops;
pub mod lower;
pub mod lut;
pub mod op;
pub mod qparams;
pub mod runtime;
pub mod shape;
pub mod sigmoid16;
pub mod simd;
pub mod stats;
mod text;
pub mod types;
mod verify;

pub use error::Error;
pub use graph::{Graph, Node, OpId, Tensor, TensorId, TensorKind};
pub use op::{Activation, Op, Padding, WeightLayout, Window};
pub use types::{DType, Quant, TensorType};
