//! Graph and loop passes: egg e-graph rewrites (fusion, layout, tiling) and static memory planning.
//!
//! Each pass is a small struct with one entry point:
//! - [`graph::GraphRewriter`] rewrites the model graph in an egg e-graph (fusion, padding,
//!   layout chains, constant folding) and extracts the cheapest graph for the target;
//! - [`order::StepOrderer`] orders a lowered [`minnow_ir::loops::Program`]'s steps for the
//!   smallest live set;
//! - [`memory::MemoryPlanner`] places every intermediate tensor in one static arena and gives
//!   the live set of every step.

pub mod graph;
pub mod memory;
pub mod order;
