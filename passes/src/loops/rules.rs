//! The rewrites of [`super::LoopTiler`]: splitting a loop and interchanging two.
//!
//! | rule | before | after |
//! |---|---|---|
//! | `split` | `(loop x·n inner)` | `(loop x·n/f (loop x·f inner))` |
//! | `interchange` | `(loop a (loop b inner))` | `(loop b (loop a inner))` |
//!
//! A split makes an outer loop of stride `f` and an inner one of stride 1; the inner factor `f`
//! is a register-block or unroll size ([`FIRST_SPLITS`], or an odd extent's factor 3 or 5), and an inner part may be split once
//! more into SIMD lanes of 4. An interchange is refused between two loops of one axis (the
//! parts keep their order) and between two reduce loops of a float sum, which must keep the
//! reference order of its additions; integer sums wrap at 32 bits in any order. To keep the
//! e-graph to the orders that matter, two reduce loops also keep their order unless one is the
//! inner part of a split (what gets unrolled or vectorized), and two spatial loops longer than
//! [`MAX_BLOCK`] keep theirs.

use super::lang::{spec_in, LoopSpec, NestGraph, NestNode};
use egg::{Applier, Id, PatternAst, Rewrite, Subst, Symbol, Var};
use minnow_ir::loops::reduction::Reduction;
use minnow_ir::loops::ScalarType;

/// Inner factors of a loop's first split: register blocks and unrolling of 2, 4 or 8, and
/// for an odd extent its smallest odd factor up to 5 (kws's 25 rows are 5 blocks of 5).
pub const FIRST_SPLITS: [usize; 3] = [2, 4, 8];

/// The largest extent of a spatial loop in a register block. Spatial loops longer than this
/// only ever run outside the block, where their order barely matters, so two of them keep
/// their order: it keeps the e-graph from holding every permutation of the outer loops.
pub const MAX_BLOCK: usize = 8;

/// SIMD lanes: the inner factor of a split part's second split.
pub const LANES: usize = 4;

/// The rewrites for reduction `r`.
pub fn all(r: &Reduction) -> Vec<Rewrite<NestNode, ()>> {
    let axes = Axes::of(r);
    let split = Split {
        axes: axes.clone(),
        inner: var("?inner"),
        spec: var("?l"),
    };
    let interchange = Interchange {
        axes,
        a: var("?a"),
        b: var("?b"),
        inner: var("?inner"),
    };
    vec![
        Rewrite::new(
            "split",
            "(loop ?l ?inner)"
                .parse::<egg::Pattern<NestNode>>()
                .unwrap(),
            split,
        )
        .expect("split binds its variables"),
        Rewrite::new(
            "interchange",
            "(loop ?a (loop ?b ?inner))"
                .parse::<egg::Pattern<NestNode>>()
                .unwrap(),
            interchange,
        )
        .expect("interchange binds its variables"),
    ]
}

fn var(name: &str) -> Var {
    name.parse().expect("a pattern variable")
}

/// What the rules need to know of the reduction's axes.
#[derive(Clone, Debug)]
struct Axes {
    extents: Vec<usize>,
    reduce: Vec<bool>,
    float: bool,
}

impl Axes {
    fn of(r: &Reduction) -> Axes {
        Axes {
            extents: r.axes.iter().map(|a| a.extent).collect(),
            reduce: r.axes.iter().map(|a| a.reduce).collect(),
            float: r.acc == ScalarType::F32,
        }
    }

    /// The inner factors `spec` may be split by.
    fn splits(&self, spec: LoopSpec) -> Vec<usize> {
        if spec.stride != 1 {
            return Vec::new();
        }
        let whole = spec.extent == self.extents[spec.axis];
        // An inner part splits into SIMD lanes: 4, or a pair of a reduce axis.
        let mut factors = if whole {
            FIRST_SPLITS.to_vec()
        } else if self.reduce[spec.axis] {
            vec![LANES, 2]
        } else {
            vec![LANES]
        };
        if whole && spec.extent % 2 == 1 {
            factors.extend([3, 5].into_iter().find(|f| spec.extent % f == 0));
        }
        factors.retain(|f| *f < spec.extent && spec.extent % f == 0);
        factors
    }

    /// Whether loops `a` (outer) and `b` may trade places.
    fn may_interchange(&self, a: LoopSpec, b: LoopSpec) -> bool {
        let (reduce_a, reduce_b) = (self.reduce[a.axis], self.reduce[b.axis]);
        let outer = |s: LoopSpec, reduce: bool| !reduce && s.extent > MAX_BLOCK;
        let inner_part = |s: LoopSpec| s.stride == 1 && s.extent < self.extents[s.axis];
        let both_reduce = reduce_a && reduce_b;
        a.axis != b.axis
            && !(both_reduce && (self.float || !(inner_part(a) || inner_part(b))))
            && !(outer(a, reduce_a) && outer(b, reduce_b))
    }
}

struct Split {
    axes: Axes,
    spec: Var,
    inner: Var,
}

impl Applier<NestNode, ()> for Split {
    fn apply_one(
        &self,
        g: &mut NestGraph,
        class: Id,
        subst: &Subst,
        _: Option<&PatternAst<NestNode>>,
        _: Symbol,
    ) -> Vec<Id> {
        let spec = spec_in(g, subst[self.spec]);
        let mut changed = Vec::new();
        for f in self.axes.splits(spec) {
            let inner_spec = g.add(NestNode::Spec(LoopSpec { extent: f, ..spec }));
            let outer_spec = g.add(NestNode::Spec(LoopSpec {
                extent: spec.extent / f,
                stride: spec.stride * f,
                ..spec
            }));
            let inner = g.add(NestNode::Loop([inner_spec, subst[self.inner]]));
            let split = g.add(NestNode::Loop([outer_spec, inner]));
            if g.union(class, split) {
                changed.push(class);
            }
        }
        changed
    }
}

struct Interchange {
    axes: Axes,
    a: Var,
    b: Var,
    inner: Var,
}

impl Applier<NestNode, ()> for Interchange {
    fn apply_one(
        &self,
        g: &mut NestGraph,
        class: Id,
        subst: &Subst,
        _: Option<&PatternAst<NestNode>>,
        _: Symbol,
    ) -> Vec<Id> {
        let (a, b) = (subst[self.a], subst[self.b]);
        if !self.axes.may_interchange(spec_in(g, a), spec_in(g, b)) {
            return Vec::new();
        }
        let inner = g.add(NestNode::Loop([a, subst[self.inner]]));
        let swapped = g.add(NestNode::Loop([b, inner]));
        if g.union(class, swapped) {
            vec![class]
        } else {
            Vec::new()
        }
    }
}
