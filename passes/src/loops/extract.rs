//! Extraction of the cheapest loop nest from the e-graph, with each loop's kind.
//!
//! The cost of a subtree depends on where it sits (inside a reduce loop or not, which unrolled
//! loops surround it: see [`Context`]), so egg's bottom-up extractor does not apply. This one
//! works top-down: the best of a class is memoized per context, over every loop node of the
//! class and every kind the loop may take (serial; unrolled, if the straight-line code stays
//! within the machine's limit; vectorized, for 4 lanes around the multiply-accumulate, or 2
//! as Winograd pairs).
//! A loop's inner class always iterates less than the loop, so the recursion ends.

use super::cost::{Context, Estimate, NestCost};
use super::lang::{is_body, loops_in, LoopSpec, NestGraph};
use egg::Id;
use minnow_ir::loops::ForKind;
use std::collections::HashMap;

/// Estimates this close (a fraction of the cheapest) are near ties, which go to the loop over
/// the earliest axis: the output rows, then columns, then channels, as the tensor is laid out.
/// The model's difference between such orders is a few loop counters (kws's pointwise layer:
/// 60 instructions in 0.7 M), and the layout order lets the arena planner write a layer's
/// output over the input rows it has finished with ([`minnow_ir::loops::lag`]).
pub const NEAR_TIE: f64 = 1e-3;

/// The chosen loops, outermost first, with their kinds.
pub type Choice = Vec<(LoopSpec, ForKind)>;

/// The cheapest nest of a class under a cost model.
pub struct NestExtractor<'a> {
    g: &'a NestGraph,
    cost: &'a NestCost,
    best: HashMap<(Id, Context), Best>,
    volume: HashMap<Id, usize>,
}

/// One way on from a class: a loop node, the kind it takes, its inner class, and the estimate.
type Way = (LoopSpec, ForKind, Id, Estimate);

#[derive(Clone, Copy, Debug)]
struct Best {
    estimate: Estimate,
    /// The loop node and kind that achieve it; `None` for the multiply-accumulate itself.
    step: Option<(LoopSpec, ForKind, Id)>,
}

impl<'a> NestExtractor<'a> {
    /// An extractor over `g`.
    pub fn new(g: &'a NestGraph, cost: &'a NestCost) -> Self {
        NestExtractor {
            g,
            cost,
            best: HashMap::new(),
            volume: HashMap::new(),
        }
    }

    /// The cheapest nest of class `root` and its estimate (loops only, not the epilogue).
    pub fn find_best(&mut self, root: Id) -> (Choice, Estimate) {
        let root = self.g.find(root);
        let estimate = self.best(root, Context::TOP).estimate;
        let mut choice = Vec::new();
        let (mut class, mut ctx) = (root, Context::TOP);
        while let Some((spec, kind, inner)) = self.best(class, ctx).step {
            choice.push((spec, kind));
            match self.inside(ctx, spec, kind) {
                Some(inside) => (class, ctx) = (inner, inside),
                None => break,
            }
        }
        (choice, estimate)
    }

    /// The estimate of a given choice of loops (as [`Self::find_best`] would price it);
    /// infinite if its accumulator block is too large.
    pub fn price(cost: &NestCost, choice: &Choice) -> Estimate {
        let mut ctx = Context::TOP;
        let mut loops = Vec::new();
        let mut innermost = None;
        for (spec, kind) in choice {
            if let ForKind::Vectorized { lanes } = kind {
                innermost = cost.vectorized(ctx, spec.axis, *lanes as usize);
                break;
            }
            let unrolled = *kind == ForKind::Unrolled;
            loops.push((spec.extent, cost.per_iteration(spec.axis, unrolled)));
            let Some(inner) = cost.enter(ctx, *spec, unrolled) else {
                return Estimate::INFINITE;
            };
            ctx = inner;
        }
        let innermost = innermost.unwrap_or_else(|| cost.body(ctx));
        loops
            .into_iter()
            .rev()
            .fold(innermost, |e, (extent, overhead)| {
                e.repeated(extent, overhead)
            })
    }

    fn best(&mut self, class: Id, ctx: Context) -> Best {
        let class = self.g.find(class);
        if let Some(b) = self.best.get(&(class, ctx)) {
            return *b;
        }
        // Candidates with their rank among near ties: the multiply-accumulate itself, then
        // loops by axis (the reduction's own order: rows before columns before channels).
        let mut candidates: Vec<(usize, Best)> = Vec::new();
        if is_body(self.g, class) {
            let estimate = self.cost.body(ctx);
            candidates.push((
                0,
                Best {
                    estimate,
                    step: None,
                },
            ));
        }
        for (spec, kind, inner, estimate) in self.ways(class, ctx) {
            let step = Some((spec, kind, inner));
            candidates.push((1 + spec.axis, Best { estimate, step }));
        }
        let cheapest = candidates
            .iter()
            .map(|(_, b)| b.estimate.instructions)
            .fold(f64::INFINITY, f64::min);
        let best = candidates
            .into_iter()
            .filter(|(_, b)| b.estimate.instructions <= cheapest * (1.0 + NEAR_TIE))
            .min_by(|a, b| {
                let cost =
                    a.1.estimate
                        .instructions
                        .total_cmp(&b.1.estimate.instructions);
                a.0.cmp(&b.0).then(cost)
            })
            .map_or(
                Best {
                    estimate: Estimate::INFINITE,
                    step: None,
                },
                |(_, b)| b,
            );
        self.best.insert((class, ctx), best);
        best
    }

    /// Every way on from `class` in `ctx`: each loop node in each kind it may take.
    fn ways(&mut self, class: Id, ctx: Context) -> Vec<Way> {
        let mut out = Vec::new();
        for (spec, inner) in loops_in(self.g, class) {
            for (kind, estimate) in self.kinds(ctx, spec, inner) {
                out.push((spec, kind, inner, estimate));
            }
        }
        out
    }

    /// The context inside loop `spec` of `kind`; `None` after the vectorized lanes, which
    /// end the nest.
    fn inside(&self, ctx: Context, spec: LoopSpec, kind: ForKind) -> Option<Context> {
        if let ForKind::Vectorized { .. } = kind {
            return None;
        }
        let unrolled = kind == ForKind::Unrolled;
        let inside = self.cost.enter(ctx, spec, unrolled);
        Some(inside.expect("only loops that can be entered are offered"))
    }

    /// Each kind loop `spec` around class `inner` may take in `ctx`, with its estimate.
    fn kinds(&mut self, ctx: Context, spec: LoopSpec, inner: Id) -> Vec<(ForKind, Estimate)> {
        let mut out = Vec::new();
        let straight = ctx.region * spec.extent * self.volume(inner);
        let mut kinds = vec![ForKind::Serial];
        if straight <= self.cost.machine.max_unrolled {
            kinds.push(ForKind::Unrolled);
        }
        for kind in kinds {
            let unrolled = kind == ForKind::Unrolled;
            let Some(inside) = self.cost.enter(ctx, spec, unrolled) else {
                continue;
            };
            let overhead = self.cost.per_iteration(spec.axis, unrolled);
            let estimate = self
                .best(inner, inside)
                .estimate
                .repeated(spec.extent, overhead);
            out.push((kind, estimate));
        }
        if spec.stride != 1 || !is_body(self.g, inner) {
            return out;
        }
        if let Some(estimate) = self.cost.vectorized(ctx, spec.axis, spec.extent) {
            let lanes = spec.extent as u32;
            out.push((ForKind::Vectorized { lanes }, estimate));
        }
        out
    }

    /// Iterations of every term of `class`.
    fn volume(&mut self, class: Id) -> usize {
        let class = self.g.find(class);
        if let Some(v) = self.volume.get(&class) {
            return *v;
        }
        let v = loops_in(self.g, class)
            .first()
            .map_or(1, |(spec, inner)| spec.extent * self.volume(*inner));
        self.volume.insert(class, v);
        v
    }
}

impl NestExtractor<'_> {
    /// A nest drawn from class `root`: at each class, `pick(n)` chooses one of the `n` ways on
    /// (a loop node and a kind, or stopping at the multiply-accumulate), ranked by their
    /// estimate, cheapest first: always picking 0 draws the nest [`Self::find_best`] finds,
    /// and small picks stay near it.
    pub fn sample(&mut self, root: Id, pick: &mut dyn FnMut(usize) -> usize) -> Choice {
        let (mut class, mut ctx) = (self.g.find(root), Context::TOP);
        let mut choice = Vec::new();
        loop {
            // A way with no valid completion (every block too large) is not offered.
            let mut ways = self.ways(class, ctx);
            ways.retain(|w| w.3.instructions.is_finite());
            ways.sort_by(|a, b| a.3.instructions.total_cmp(&b.3.instructions));
            if ways.is_empty() {
                return choice;
            }
            let (spec, kind, inner, _) = ways[pick(ways.len()).min(ways.len() - 1)];
            choice.push((spec, kind));
            match self.inside(ctx, spec, kind) {
                Some(inside) => (class, ctx) = (inner, inside),
                None => return choice,
            }
        }
    }
}
