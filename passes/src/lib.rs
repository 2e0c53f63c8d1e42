//! Graph and loop passes: egg e-graph rewrites (fusion, layout, tiling) and static memory planning.
//!
//! Each pass is a small struct with one entry point:
//! - [`graph::GraphRewriter`] rewrites the model graph in an egg e-graph (fusion, padding,
//!   layout chains, constant folding) and extracts the cheapest graph for the target;
//! - [`loops::LoopTiler`] puts a multiply-accumulate op's loop nest in an e-graph (splits and
//!   interchanges) and extracts the tiling its analytic cost finds cheapest;
//! - [`qdq::QdqFolder`] folds a QDQ model's DEQUANTIZE → float op → QUANTIZE chains into
//!   integer ops;
//! - [`constants::ConstantMerger`] stores identical constants once;
//! - [`order::StepOrderer`] orders a lowered [`minnow_ir::loops::Program`]'s steps for the
//!   smallest live set;
//! - [`patch::Patcher`] runs a model's first layers in bands of rows where that shrinks its
//!   arena (patch-based execution);
//! - [`memory::MemoryPlanner`] places every intermediate tensor in one static arena and gives
//!   the live set of every step.

pub mod constants;
pub mod graph;
mod limits;
pub mod loops;
pub mod memory;
pub mod order;
pub mod patch;
pub mod qdq;
#[cfg(test)]
mod test_support;

pub use limits::Limits;
