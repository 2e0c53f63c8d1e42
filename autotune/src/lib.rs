//! Autotuning: search over schedule knobs, a learned cost model, measurement runners and the
//! tuning database.
//!
//! The pipeline of a tuning run, one module each:
//! [`task`] splits a lowered model into workloads; [`candidate`] draws, varies and decodes
//! the genomes of a workload's schedules; [`features`] describes a scheduled candidate to
//! the [`model`] (gradient-boosted trees); [`search`] proposes what to measure next;
//! [`trial`] builds and measures one candidate and checks it bit for bit; [`tuner`] runs
//! the rounds over every task; [`db`] keeps every record; [`apply`] builds a model with the
//! best records; [`report`] draws the HTML page.
//!
//! [`compile`] takes a graph through the pipeline (rewrite the graph, lower, schedule, plan
//! memory, emit C) for one target; [`cost`] is the estimate the graph rewriter extracts by.
//! [`measure`] builds generated code for a target and runs it: natively on the host (timed
//! by the clock), or on an emulated board under QEMU with a deterministic instruction count.
//! [`farm`] spreads the measurements of many tuners over many hosts' boards through PostgreSQL.

pub mod apply;
pub mod candidate;
pub mod compile;
pub mod cost;
pub mod db;
pub mod farm;
pub mod features;
pub mod measure;
pub mod model;
pub mod placement;
pub mod report;
pub mod search;
pub mod task;
pub mod tilings;
pub mod trial;
pub mod tuner;
