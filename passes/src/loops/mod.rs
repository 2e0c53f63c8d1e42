//! Tiling in an e-graph: a multiply-accumulate op's loop nest becomes a term ([`lang`]), the
//! [`rules`] add its splits and interchanges, and extraction by an analytic [`cost`] of the
//! target [`Machine`] picks the nest and each loop's kind (serial, unrolled, vectorized).
//! The rewritten e-graph is the op's tiling space: [`TilingSpace::sample`] draws nests from it
//! for a search to measure.
//!
//! ```
//! use minnow_ir::loops::reduction::{Affine, Axis, Epilogue, Operand, PerChannel, Reduction};
//! use minnow_ir::loops::{BufId, ForKind, Intrinsic, ScalarType};
//! use minnow_ir::WeightLayout;
//! use minnow_passes::loops::{LoopTiler, Machine};
//!
//! // A fully connected layer: out[c] = Σ_k x[k] * w[c][k], 16 outputs of 64 products.
//! let axis = |name: &str, extent, reduce| Axis { name: name.into(), extent, reduce };
//! let operand = |buf, index| Operand {
//!     buf: BufId(buf), elem: ScalarType::I8, index, offset: 0, packed: None,
//! };
//! let r = Reduction {
//!     axes: vec![axis("c", 16, false), axis("k", 64, true)],
//!     input: operand(0, Affine::of(&[(1, 1)])),
//!     weight: operand(1, Affine::of(&[(0, 64), (1, 1)])),
//!     guards: vec![],
//!     acc: ScalarType::I32,
//!     bias: None,
//!     interior_bias: None,
//!     channel: Affine::of(&[(0, 1)]),
//!     output: BufId(2),
//!     output_index: Affine::of(&[(0, 1)]),
//!     epilogue: Epilogue::Quantized {
//!         scale: Intrinsic::MultiplyByQuantizedMultiplier,
//!         multiplier: PerChannel::Same(1 << 30),
//!         shift: PerChannel::Same(0),
//!         rounding: None,
//!         output_offset: 0,
//!         range: (-128, 127),
//!         elem: ScalarType::I8,
//!     },
//!     residual: None,
//!     weight_layout: WeightLayout::Bytes,
//!     input_lift: 0,
//! };
//! let tiling = LoopTiler::default().run(&r, Machine::cortex_m(true)).unwrap();
//! // SMLADs along k: its innermost part is 4 vectorized lanes.
//! let last = tiling.nest.loops.last().unwrap();
//! assert_eq!((last.axis, last.kind), (1, ForKind::Vectorized { lanes: 4 }));
//! assert!(tiling.estimate.instructions < tiling.reference.instructions / 2.0);
//! ```

pub mod cost;
pub mod extract;
pub mod lang;
pub mod rules;
#[cfg(test)]
mod tests;

pub use cost::{Estimate, Machine, NestCost};

use crate::limits::{stop_reason, Limits};
use egg::{Id, Runner, SimpleScheduler};
use extract::{Choice, NestExtractor};
use lang::{name_loops, term_of, NestGraph};
use minnow_ir::loops::reduction::{Loop, LoopNest, Reduction};
use minnow_ir::loops::ForKind;
use serde::Serialize;
use std::time::{Duration, Instant};

/// The tiling pass.
#[derive(Clone, Debug)]
pub struct LoopTiler {
    /// When to stop rewriting.
    pub limits: Limits,
}

impl Default for LoopTiler {
    /// The largest shared model's convolutions saturate within these limits.
    fn default() -> Self {
        LoopTiler {
            limits: Limits {
                nodes: 50_000,
                iterations: 40,
                time: Duration::from_millis(300),
            },
        }
    }
}

/// What the rewriting did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TilingReport {
    /// Why the runner stopped (`saturated`: every split and interchange is in).
    pub stop_reason: String,
    /// Rounds run.
    pub iterations: usize,
    /// E-nodes at the end.
    pub nodes: usize,
    /// E-classes at the end: distinct sets of loops.
    pub classes: usize,
    /// Wall time of the rewriting and extraction, in microseconds.
    pub micros: u128,
}

/// A reduction's loop nests: the e-graph after rewriting.
pub struct TilingSpace {
    graph: NestGraph,
    root: Id,
    /// What the rewriting did.
    pub report: TilingReport,
}

/// The nest the pass picked.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Tiling {
    /// The loops, named as a schedule's splits name them.
    #[serde(skip)]
    pub nest: LoopNest,
    /// Its estimate, epilogue included.
    pub estimate: Estimate,
    /// The estimate of the reference kernels' nest (one serial loop per axis).
    pub reference: Estimate,
    /// What the rewriting did.
    pub report: TilingReport,
}

impl LoopTiler {
    /// The e-graph of `r`'s nests.
    pub fn space(&self, r: &Reduction) -> TilingSpace {
        let start = Instant::now();
        let mut graph = NestGraph::default();
        let root = graph.add_expr(&term_of(&r.default_nest()));
        let runner = Runner::default()
            .with_egraph(graph)
            .with_node_limit(self.limits.nodes)
            .with_iter_limit(self.limits.iterations)
            .with_time_limit(self.limits.time)
            .with_scheduler(SimpleScheduler)
            .run(&rules::all(r));
        let report = TilingReport {
            stop_reason: stop_reason(&runner.stop_reason),
            iterations: runner.iterations.len(),
            nodes: runner.egraph.total_number_of_nodes(),
            classes: runner.egraph.number_of_classes(),
            micros: start.elapsed().as_micros(),
        };
        let root = runner.egraph.find(root);
        TilingSpace {
            graph: runner.egraph,
            root,
            report,
        }
    }

    /// The cheapest nest of `r` on `machine`, its weights in bytes (which layout to schedule,
    /// given [`LoopTiler::both_layouts`], is the caller's choice).
    pub fn run(&self, r: &Reduction, machine: Machine) -> Result<Tiling, String> {
        let start = Instant::now();
        let mut tiling = self.space(r).best(r, machine)?;
        tiling.report.micros = start.elapsed().as_micros();
        Ok(tiling)
    }

    /// The cheapest nest of `r` on `machine` in bytes, and the cheapest with the weights
    /// widened where one exists: both layouts' tilings from one space, for a caller that
    /// prices the layouts ([`Widening::between`]) and then schedules the one it keeps.
    pub fn both_layouts(
        &self,
        r: &Reduction,
        machine: Machine,
    ) -> Result<(Tiling, Option<Tiling>), String> {
        let space = self.space(r);
        Ok((space.best(r, machine)?, space.best_widened(r, machine)))
    }
}

impl Widening {
    /// What widening changes from the nest `bytes` to the nest `wide` of `r`.
    pub fn between(r: &Reduction, bytes: &Tiling, wide: &Tiling) -> Widening {
        Widening {
            saved_instructions: bytes.estimate.instructions - wide.estimate.instructions,
            added_flash_bytes: weight_elements(r),
        }
    }
}

/// What storing an op's weights widened changes ([`Widening::between`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Widening {
    /// Instructions per inference saved (estimated).
    pub saved_instructions: f64,
    /// Flash bytes added.
    pub added_flash_bytes: usize,
}

/// The number of weight elements: the extents of the axes the weight index depends on.
fn weight_elements(r: &Reduction) -> usize {
    let axes = r.axes.iter().enumerate();
    axes.filter(|(a, _)| r.weight.index.coefficient(*a) != 0)
        .map(|(_, axis)| axis.extent)
        .product()
}

impl TilingSpace {
    /// The cheapest nest on `machine`.
    pub fn best(&self, r: &Reduction, machine: Machine) -> Result<Tiling, String> {
        self.best_by(r, machine, NestCost::new(r, machine))
    }

    /// The cheapest nest on `machine` with the weights widened, if it has the SIMD lanes
    /// innermost that widened weights need.
    pub fn best_widened(&self, r: &Reduction, machine: Machine) -> Option<Tiling> {
        let mut tiling = self
            .best_by(r, machine, NestCost::new(r, machine).widened())
            .ok()?;
        tiling.nest.wide_weights = true;
        // A pair of lanes on a machine without SIMD is Winograd's inner product.
        let pair = matches!(tiling.nest.loops.last(), Some(l) if l.kind == ForKind::Vectorized { lanes: 2 });
        tiling.nest.winograd = machine.winograd && pair;
        // Its scratch block holds the padding: no border code.
        tiling.nest.partition_borders &= !tiling.nest.winograd;
        r.check(&tiling.nest).ok()?;
        Some(tiling)
    }

    fn best_by(&self, r: &Reduction, machine: Machine, cost: NestCost) -> Result<Tiling, String> {
        let (choice, mut estimate) = NestExtractor::new(&self.graph, &cost).find_best(self.root);
        estimate.instructions += cost.epilogue();
        Ok(Tiling {
            nest: nest_of(r, &choice)?,
            estimate,
            reference: estimate_nest(r, machine, &r.default_nest()),
            report: self.report.clone(),
        })
    }

    /// A nest drawn from the space: at each class `pick(n)` chooses one of its `n` loop nodes
    /// and kinds, ranked cheapest first by the analytic cost (pass a random number
    /// generator's `gen_range(0..n)` for a uniform draw; always 0 gives [`Self::best`]'s nest).
    pub fn sample(
        &self,
        r: &Reduction,
        machine: Machine,
        pick: &mut dyn FnMut(usize) -> usize,
    ) -> Result<LoopNest, String> {
        let cost = NestCost::new(r, machine);
        let choice = NestExtractor::new(&self.graph, &cost).sample(self.root, pick);
        nest_of(r, &choice)
    }
}

/// The analytic estimate of any nest of `r` on `machine`, epilogue included (for comparing
/// the extracted nest with others), with its weights widened if `nest` widens them.
pub fn estimate_nest(r: &Reduction, machine: Machine, nest: &LoopNest) -> Estimate {
    let cost = match nest.wide_weights {
        true => NestCost::new(r, machine).widened(),
        false => NestCost::new(r, machine),
    };
    let mut estimate = NestExtractor::price(&cost, &choice_of(nest));
    estimate.instructions += cost.epilogue();
    estimate
}

/// The loops of `nest` of more than one iteration, with their kinds.
fn choice_of(nest: &LoopNest) -> Choice {
    nest.loops
        .iter()
        .filter(|l| l.extent > 1)
        .map(|l| {
            let spec = lang::LoopSpec {
                axis: l.axis,
                extent: l.extent,
                stride: l.stride,
            };
            (spec, l.kind)
        })
        .collect()
}

/// The nest of `choice`, with the loops of one iteration put back (just before the first
/// reduce loop, so that they do not change the accumulator block) and every loop named.
fn nest_of(r: &Reduction, choice: &Choice) -> Result<LoopNest, String> {
    let mut loops: Vec<Loop> = choice
        .iter()
        .map(|(spec, kind)| Loop {
            name: String::new(),
            axis: spec.axis,
            extent: spec.extent,
            stride: spec.stride,
            kind: *kind,
        })
        .collect();
    let vectorized =
        matches!(loops.last(), Some(l) if matches!(l.kind, ForKind::Vectorized { .. }));
    let at = loops
        .iter()
        .position(|l| r.axes[l.axis].reduce)
        .unwrap_or(loops.len() - usize::from(vectorized));
    let singles = r.axes.iter().enumerate().filter(|(_, a)| a.extent == 1);
    let singles: Vec<Loop> = singles
        .map(|(axis, _)| Loop {
            name: String::new(),
            axis,
            extent: 1,
            stride: 1,
            kind: ForKind::Serial,
        })
        .collect();
    loops.splice(at..at, singles);
    let mut nest = LoopNest {
        loops,
        wide_weights: false,
        partition_borders: !r.guards.is_empty(),
        winograd: false,
    };
    name_loops(r, &mut nest);
    r.check(&nest)?;
    Ok(nest)
}
