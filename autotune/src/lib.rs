//! Autotuning: search over schedule knobs, a learned cost model, measurement runners and the
//! tuning database.
//!
//! [`compile`] takes a graph through the pipeline (rewrite the graph, lower, schedule, plan
//! memory, emit C) for one target; [`cost`] is the estimate the graph rewriter extracts by. [`measure`] builds generated code for a target and runs it: natively on the host, or on an
//! emulated board under QEMU with a deterministic instruction count. The search, the cost
//! model and the database arrive with issue 5; probe-rs boards with issue 6.

pub mod compile;
pub mod cost;
pub mod measure;
