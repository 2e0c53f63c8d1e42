//! Graph and loop passes: egg e-graph rewrites (fusion, layout, tiling) and static memory planning.
//!
//! Each pass is a small struct with one entry point. [`memory::MemoryPlanner`] places every
//! intermediate tensor of a lowered [`minnow_ir::loops::Program`] in one static arena; the
//! e-graph passes arrive with issue 4.

pub mod graph;
pub mod memory;
