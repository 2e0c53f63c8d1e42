//! Patch-based execution: the first layers of a model whose largest live set lies there (a
//! high-resolution image's first convolutions) run band by band, as MCUNetV2 does, so only a
//! band of each of their outputs is alive at once.
//!
//! A band of the stage's last output is computed from a band of its input, through every op
//! of the stage; rows the bands' windows share are computed by both (the price, in MACs, the
//! report gives). The bands' inputs are SLICEs of rows and their outputs the parts of a
//! CONCATENATION, which the lowering turns into views ([`minnow_ir::loops::SlotKind::View`]):
//! nothing is copied.
//!
//! ```
//! use minnow_passes::patch::{Patcher, Patching};
//! let bytes = std::fs::read("../../shared/models/vww.tflite").unwrap();
//! let graph = minnow_ir::import::tflite::import(&bytes, "vww").unwrap();
//! let (banded, report) = Patcher::default().run(&graph, Patching::Bands(4)).unwrap();
//! assert_eq!(report.bands, 4);
//! assert!(report.arena_after < report.arena_before);
//! assert!(banded.op_count() > graph.op_count());
//! ```

mod bands;
#[cfg(test)]
mod tests;

use crate::memory::MemoryPlanner;
use crate::order::StepOrderer;
use bands::{banded, RowMap};
use minnow_ir::graph::{Graph, OpId};
use minnow_ir::stats::op_macs;
use rayon::prelude::*;
use serde::Serialize;
use std::str::FromStr;

/// Whether and how to run the first layers in bands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Patching {
    /// Every op on its whole tensors.
    #[default]
    Off,
    /// The stage and band count with the smallest arena, the bands recomputing at most
    /// [`Patcher::max_extra_macs`] of the model's MACs; none if no banding shrinks the arena.
    Auto,
    /// This many bands, over the stage that gives the smallest arena with them.
    Bands(usize),
}

impl FromStr for Patching {
    type Err = String;

    fn from_str(s: &str) -> Result<Patching, String> {
        match s {
            "off" => Ok(Patching::Off),
            "auto" => Ok(Patching::Auto),
            n => match n.parse::<usize>() {
                Ok(n) if n >= 2 => Ok(Patching::Bands(n)),
                _ => Err(format!(
                    "`{s}` is not a patching: use off, auto or a number of bands (2 or more)"
                )),
            },
        }
    }
}

/// What [`Patcher::run`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PatchReport {
    /// Ops run in bands (0: none).
    pub layers: usize,
    /// Bands (0: none).
    pub bands: usize,
    /// The ops run in bands, by their output tensor's name.
    pub stage: Vec<String>,
    /// MACs of the model as given.
    pub macs_before: u64,
    /// MACs with the bands (the rows they share are computed twice).
    pub macs_after: u64,
    /// Arena of the model as given (steps ordered, before schedules).
    pub arena_before: usize,
    /// Arena with the bands.
    pub arena_after: usize,
    /// Stage and band counts tried.
    pub candidates: usize,
}

/// The patch-based execution pass.
#[derive(Clone, Copy, Debug)]
pub struct Patcher {
    /// The most extra MACs [`Patching::Auto`] accepts, as a fraction of the model's.
    pub max_extra_macs: f64,
    /// The band counts tried.
    pub band_counts: &'static [usize],
    /// The step orderer's state limit while candidates are compared (the bands of a stage
    /// may interleave in many orders; the compile after orders the one kept in full).
    pub max_order_states: usize,
}

impl Default for Patcher {
    fn default() -> Self {
        Patcher {
            max_extra_macs: 0.05,
            band_counts: &[2, 3, 4, 6, 8],
            max_order_states: 500,
        }
    }
}

impl Patcher {
    /// `graph` with its first layers run in bands as `patching` asks (unchanged for
    /// [`Patching::Off`], or when no banding shrinks the arena), and what was done.
    pub fn run(&self, graph: &Graph, patching: Patching) -> Result<(Graph, PatchReport), String> {
        let macs = total_macs(graph);
        let mut report = PatchReport {
            macs_before: macs,
            macs_after: macs,
            ..PatchReport::default()
        };
        if patching == Patching::Off {
            return Ok((graph.clone(), report));
        }
        let stage = first_stage(graph);
        report.arena_before = planned_arena(graph).map_err(|e| e.to_string())?;
        report.arena_after = report.arena_before;
        let counts: Vec<usize> = match patching {
            Patching::Bands(n) => vec![n],
            _ => self.band_counts.to_vec(),
        };
        let budget = match patching {
            Patching::Auto => macs + (macs as f64 * self.max_extra_macs) as u64,
            _ => u64::MAX,
        };
        // The candidates within budget, then their arenas (planned in parallel).
        let mut candidates: Vec<(u64, Graph, usize, usize)> = Vec::new();
        for layers in 1..=stage.len() {
            let mut within = false;
            for &bands in &counts {
                let Ok(candidate) = banded(graph, &stage[..layers], bands) else {
                    continue;
                };
                report.candidates += 1;
                let extra = total_macs(&candidate);
                if extra <= budget {
                    within = true;
                    candidates.push((extra, candidate, layers, bands));
                }
            }
            // A longer stage recomputes at least as much: stop once none is within budget.
            if !within {
                break;
            }
        }
        let orderer = StepOrderer {
            max_states: self.max_order_states,
        };
        let arenas: Vec<usize> = candidates
            .par_iter()
            .map(|(_, g, _, _)| planned_arena_with(g, orderer))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        let best = candidates
            .into_iter()
            .zip(arenas)
            .min_by_key(|((extra, _, _, _), arena)| (*arena, *extra))
            .map(|((extra, g, layers, bands), arena)| (arena, extra, g, layers, bands));
        match best {
            Some((arena, macs_after, g, layers, bands)) if arena < report.arena_before => {
                report.arena_after = arena;
                report.macs_after = macs_after;
                report.layers = layers;
                report.bands = bands;
                report.stage = stage[..layers]
                    .iter()
                    .map(|op| graph.tensor(graph.node(*op).outputs[0]).name.clone())
                    .collect();
                Ok((g, report))
            }
            _ => Ok((graph.clone(), report)),
        }
    }
}

/// The longest chain of ops from the model's only input that can run on bands of rows: each
/// reads the one before's output (the first the input), which nothing else reads.
fn first_stage(graph: &Graph) -> Vec<OpId> {
    let mut stage = Vec::new();
    let [mut t] = graph.inputs[..] else {
        return stage;
    };
    loop {
        let readers = graph.consumers(t);
        let [op] = readers[..] else { break };
        let node = graph.node(op);
        if node.inputs[0] != Some(t)
            || node.inputs[1..].contains(&Some(t))
            || RowMap::of(graph, op).is_none()
            || (!stage.is_empty() && graph.outputs.contains(&t))
        {
            break;
        }
        stage.push(op);
        t = node.outputs[0];
        if graph.outputs.contains(&t) {
            break;
        }
    }
    stage
}

/// The MACs of every op of `graph`.
fn total_macs(graph: &Graph) -> u64 {
    graph
        .execution_order()
        .into_iter()
        .map(|op| op_macs(graph, graph.node(op)))
        .sum()
}

/// The arena `graph` needs as lowered, its steps ordered for the smallest.
pub fn planned_arena(graph: &Graph) -> Result<usize, minnow_ir::Error> {
    planned_arena_with(graph, StepOrderer::default())
}

/// The arena `graph` needs as lowered, its steps ordered by `orderer`.
fn planned_arena_with(graph: &Graph, orderer: StepOrderer) -> Result<usize, minnow_ir::Error> {
    let mut program = minnow_ir::lower::lower(graph)?;
    orderer.run(&mut program);
    // Breaking the bands' chains is left to the final plan: it would cost every candidate
    // many plans.
    Ok(MemoryPlanner::quick().run(&program).arena_bytes)
}
