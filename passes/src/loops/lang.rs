//! The e-graph language of loop nests: `(loop L inner)` runs `inner` once for every value of
//! loop `L`, and `body` is one multiply-accumulate. A [`LoopSpec`] leaf says which axis the loop
//! iterates, how many times, and the weight of its variable in the axis value, so a split loop
//! is two specs of one axis and an interchange is a different nesting of the same specs.
//!
//! ```
//! use minnow_passes::loops::lang::{LoopSpec, NestNode};
//! let term: egg::RecExpr<NestNode> = "(loop a0x8s1 (loop a1x4s1 body))".parse().unwrap();
//! assert_eq!(term.as_ref().len(), 5);
//! assert_eq!("a2x16s4".parse::<LoopSpec>().unwrap(), LoopSpec { axis: 2, extent: 16, stride: 4 });
//! ```
//!
//! Loops of one iteration are left out of the term: they change nothing wherever they are.
//! Whether a loop is serial, unrolled or vectorized is not part of the term either: all three
//! compute the same thing, so extraction chooses it ([`super::extract`]).

use egg::{define_language, EGraph, Id, RecExpr};
use minnow_ir::loops::reduction::{LoopNest, Reduction};
use std::fmt;
use std::str::FromStr;

/// One loop: `extent` iterations of axis `axis`, the variable weighted by `stride`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LoopSpec {
    /// Index of the reduction's axis.
    pub axis: usize,
    /// Iterations.
    pub extent: usize,
    /// Weight of the variable in the axis value.
    pub stride: usize,
}

impl fmt::Display for LoopSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a{}x{}s{}", self.axis, self.extent, self.stride)
    }
}

impl FromStr for LoopSpec {
    type Err = String;

    /// Parses `a<axis>x<extent>s<stride>`.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a loop (a<axis>x<extent>s<stride>)");
        let rest = s.strip_prefix('a').ok_or_else(bad)?;
        let (axis, rest) = rest.split_once('x').ok_or_else(bad)?;
        let (extent, stride) = rest.split_once('s').ok_or_else(bad)?;
        let number = |t: &str| t.parse::<usize>().map_err(|_| bad());
        Ok(LoopSpec {
            axis: number(axis)?,
            extent: number(extent)?,
            stride: number(stride)?,
        })
    }
}

define_language! {
    /// A node of a loop-nest term: `body`, one multiply-accumulate at the current loop
    /// variables; `(loop spec inner)`; or a loop's [`LoopSpec`].
    pub enum NestNode {
        "body" = Body,
        "loop" = Loop([Id; 2]),
        Spec(LoopSpec),
    }
}

/// The e-graph of a reduction's loop nests.
pub type NestGraph = EGraph<NestNode, ()>;

/// The term of `nest`'s loops (of more than one iteration), outermost first.
pub fn term_of(nest: &LoopNest) -> RecExpr<NestNode> {
    let specs: Vec<LoopSpec> = nest
        .loops
        .iter()
        .filter(|l| l.extent > 1)
        .map(|l| LoopSpec {
            axis: l.axis,
            extent: l.extent,
            stride: l.stride,
        })
        .collect();
    let mut term = RecExpr::default();
    let mut inner = term.add(NestNode::Body);
    for spec in specs.into_iter().rev() {
        let spec = term.add(NestNode::Spec(spec));
        inner = term.add(NestNode::Loop([spec, inner]));
    }
    term
}

/// The spec in leaf class `id`.
pub fn spec_in(g: &NestGraph, id: Id) -> LoopSpec {
    g[id]
        .nodes
        .iter()
        .find_map(|n| match n {
            NestNode::Spec(s) => Some(*s),
            _ => None,
        })
        .expect("a loop's first child is its spec")
}

/// The loop nodes of class `id`: each loop's spec and its inner class.
pub fn loops_in(g: &NestGraph, id: Id) -> Vec<(LoopSpec, Id)> {
    g[id]
        .nodes
        .iter()
        .filter_map(|n| match n {
            NestNode::Loop([spec, inner]) => Some((spec_in(g, *spec), g.find(*inner))),
            _ => None,
        })
        .collect()
}

/// Whether class `id` is the multiply-accumulate itself.
pub fn is_body(g: &NestGraph, id: Id) -> bool {
    g[id].nodes.iter().any(|n| matches!(n, NestNode::Body))
}

/// The name of part `part` (outermost 0) of an axis named `axis` split into `parts` loops, as
/// splitting `axis` and then each inner part again names them: `x`; `x_o`, `x_i`; `x_o`,
/// `x_i_o`, `x_i_i`.
pub fn part_name(axis: &str, part: usize, parts: usize) -> String {
    let mut name = axis.to_string();
    for _ in 0..part {
        name.push_str("_i");
    }
    if part + 1 < parts {
        name.push_str("_o");
    }
    name
}

/// Names `nest`'s loops by [`part_name`], each axis's parts ordered by stride.
pub fn name_loops(r: &Reduction, nest: &mut LoopNest) {
    for axis in 0..r.axes.len() {
        let mut parts: Vec<usize> = (0..nest.loops.len())
            .filter(|l| nest.loops[*l].axis == axis)
            .collect();
        parts.sort_by_key(|l| std::cmp::Reverse(nest.loops[*l].stride));
        let count = parts.len();
        for (part, l) in parts.into_iter().enumerate() {
            nest.loops[l].name = part_name(&r.axes[axis].name, part, count);
        }
    }
}
