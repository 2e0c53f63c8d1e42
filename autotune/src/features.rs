//! The features the learned cost model sees of a scheduled candidate: its loop nest (extents,
//! the accumulator block, unrolling, SIMD lanes, layout flags, how often the loop order walks
//! each operand from its start), the analytic estimate, and
//! what the scheduled loop IR executes per multiply-accumulate (loads, stores, arithmetic,
//! intrinsic calls, branches, loop iterations).

use crate::task::Task;
use minnow_ir::loops::reduction::LoopNest;
use minnow_ir::loops::visit::{walk_expr, Visitor};
use minnow_ir::loops::{BufId, Expr, ForKind, Func, Stmt, VarId};
use minnow_passes::loops::{estimate_nest, Machine};

/// Names of the features, in the order [`features`] returns them (for reports and tests).
pub const NAMES: &[&str] = &[
    "log2_macs",
    "log2_outputs",
    "loops",
    "accumulators",
    "log2_innermost_extent",
    "vectorized",
    "log2_unrolled_body",
    "unrolled_reduce",
    "wide_weights",
    "partition_borders",
    "guards",
    "estimate_per_mac",
    "loads_per_mac",
    "stores_per_mac",
    "arithmetic_per_mac",
    "calls_per_mac",
    "branches_per_mac",
    "iterations_per_mac",
    "log2_weight_passes",
    "log2_input_passes",
];

/// The feature vector of `task` scheduled as `nest`, whose built function is `func`.
pub fn features(task: &Task, machine: Machine, nest: &LoopNest, func: &Func) -> Vec<f64> {
    let r = &task.reduction;
    let macs = (task.macs as f64).max(1.0);
    let outputs = r.outputs() as f64;
    let loops: Vec<_> = nest.loops.iter().filter(|l| l.extent > 1).collect();
    let first_reduce = loops
        .iter()
        .position(|l| r.axes[l.axis].reduce)
        .unwrap_or(loops.len());
    let accumulators: usize = loops[first_reduce..]
        .iter()
        .filter(|l| !r.axes[l.axis].reduce)
        .map(|l| l.extent)
        .product();
    let unrolled = loops.iter().filter(|l| l.kind == ForKind::Unrolled);
    let unrolled_body: usize = unrolled.clone().map(|l| l.extent).product();
    let unrolled_reduce: usize = unrolled
        .filter(|l| r.axes[l.axis].reduce)
        .map(|l| l.extent)
        .product();
    let innermost = loops.last();
    let vectorized = innermost.is_some_and(|l| matches!(l.kind, ForKind::Vectorized { .. }));
    let flag = |b: bool| f64::from(u8::from(b));
    let estimate = estimate_nest(r, machine, nest).instructions;
    let counts = Counts::of(func);
    vec![
        macs.log2(),
        outputs.max(1.0).log2(),
        loops.len() as f64,
        accumulators as f64,
        innermost.map_or(0.0, |l| (l.extent as f64).log2()),
        flag(vectorized),
        (unrolled_body as f64).log2(),
        unrolled_reduce as f64,
        flag(nest.wide_weights),
        flag(nest.partition_borders),
        flag(!r.guards.is_empty()),
        if estimate.is_finite() {
            estimate / macs
        } else {
            1e3
        },
        counts.loads / macs,
        counts.stores / macs,
        counts.arithmetic / macs,
        counts.calls / macs,
        counts.branches / macs,
        counts.iterations / macs,
        (passes(&loops, |a| r.weight.index.coefficient(a) != 0) as f64).log2(),
        (passes(&loops, |a| r.input.index.coefficient(a) != 0) as f64).log2(),
    ]
}

/// How many times an operand is walked from its start: the iterations of the loops outside
/// the outermost loop that moves through it (a loop order the other features do not see).
fn passes(loops: &[&minnow_ir::loops::reduction::Loop], indexes: impl Fn(usize) -> bool) -> usize {
    loops
        .iter()
        .take_while(|l| !indexes(l.axis))
        .map(|l| l.extent)
        .product()
}

/// What a function executes, each statement weighted by the iterations of its loops (both
/// sides of a branch counted, as an upper bound).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Counts {
    loads: f64,
    stores: f64,
    arithmetic: f64,
    calls: f64,
    branches: f64,
    iterations: f64,
}

impl Counts {
    fn of(func: &Func) -> Counts {
        let mut c = CountWalk {
            counts: Counts::default(),
            trips: 1.0,
        };
        c.visit_block(&func.body);
        c.counts
    }
}

/// The walk of [`Counts::of`]: `trips` is how often the statement at hand runs.
struct CountWalk {
    counts: Counts,
    trips: f64,
}

impl Visitor for CountWalk {
    fn visit_for(&mut self, _: VarId, extent: usize, kind: ForKind, body: &[Stmt]) {
        let outer = self.trips;
        self.trips *= extent as f64;
        if kind == ForKind::Serial {
            self.counts.iterations += self.trips;
        }
        self.visit_block(body);
        self.trips = outer;
    }

    fn visit_store(&mut self, _: BufId, index: &Expr, value: &Expr) {
        self.counts.stores += self.trips;
        self.visit_expr(index);
        self.visit_expr(value);
    }

    fn visit_if(&mut self, cond: &Expr, then: &[Stmt], otherwise: &[Stmt]) {
        self.counts.branches += self.trips;
        self.visit_expr(cond);
        self.visit_block(then);
        self.visit_block(otherwise);
    }

    fn visit_expr(&mut self, e: &Expr) {
        let c = &mut self.counts;
        match e {
            Expr::Load { .. } | Expr::LoadWord { .. } => c.loads += self.trips,
            Expr::Binary { .. } | Expr::Unary { .. } | Expr::Select { .. } => {
                c.arithmetic += self.trips
            }
            Expr::Call { .. } => c.calls += self.trips,
            _ => {}
        }
        walk_expr(self, e);
    }
}
