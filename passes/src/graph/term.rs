//! [`Term`]: the graph as an e-graph language, and [`Tensors`]: the e-class analysis that
//! gives every class its tensor type.
//!
//! An op's attributes (an [`Op`] with its output tensor's name and type) live in a table and
//! a term refers to them by [`OpRef`], so two terms match when they apply the same attributes
//! to the same operands. Tensors the graph does not compute (inputs, constants, state) are
//! leaves, by [`LeafRef`] into a second table that folded constants extend.

use egg::{Analysis, DidMerge, EGraph, Id, Language};
use minnow_ir::{Op, Tensor, TensorType};
use std::fmt;

/// An entry of the op table.
#[derive(Clone, Debug, PartialEq)]
pub struct OpEntry {
    /// The op and its attributes.
    pub op: Op,
    /// Its output tensor (name, type; no data).
    pub output: Tensor,
}

/// Index into [`Tensors::ops`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpRef(pub u32);

/// Index into [`Tensors::leaves`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LeafRef(pub u32);

/// A node of the graph language.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Term {
    /// A tensor the graph reads but does not compute.
    Leaf(LeafRef),
    /// An omitted optional operand.
    Absent,
    /// An op applied to its operands.
    Apply(OpRef, Vec<Id>),
    /// The graph's outputs, in order (the root).
    Outputs(Vec<Id>),
}

/// What distinguishes terms apart from their children.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TermKind {
    /// [`Term::Leaf`].
    Leaf(LeafRef),
    /// [`Term::Absent`].
    Absent,
    /// [`Term::Apply`] with its operand count.
    Apply(OpRef, usize),
    /// [`Term::Outputs`] with its count.
    Outputs(usize),
}

impl Language for Term {
    type Discriminant = TermKind;

    fn discriminant(&self) -> TermKind {
        match self {
            Term::Leaf(l) => TermKind::Leaf(*l),
            Term::Absent => TermKind::Absent,
            Term::Apply(op, args) => TermKind::Apply(*op, args.len()),
            Term::Outputs(outs) => TermKind::Outputs(outs.len()),
        }
    }

    fn matches(&self, other: &Self) -> bool {
        self.discriminant() == other.discriminant()
    }

    fn children(&self) -> &[Id] {
        match self {
            Term::Apply(_, ids) | Term::Outputs(ids) => ids,
            Term::Leaf(_) | Term::Absent => &[],
        }
    }

    fn children_mut(&mut self) -> &mut [Id] {
        match self {
            Term::Apply(_, ids) | Term::Outputs(ids) => ids,
            Term::Leaf(_) | Term::Absent => &mut [],
        }
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Term::Leaf(l) => write!(f, "leaf{}", l.0),
            Term::Absent => write!(f, "absent"),
            Term::Apply(op, _) => write!(f, "op{}", op.0),
            Term::Outputs(_) => write!(f, "outputs"),
        }
    }
}

/// The analysis: the op and leaf tables, and each e-class's tensor type.
#[derive(Clone, Debug, Default)]
pub struct Tensors {
    /// Ops by [`OpRef`].
    pub ops: Vec<OpEntry>,
    /// Leaves by [`LeafRef`]: the source graph's inputs, constants and states, then folded
    /// constants.
    pub leaves: Vec<Tensor>,
}

/// The e-graph of a model.
pub type ModelGraph = EGraph<Term, Tensors>;

impl Tensors {
    /// The reference of `entry`, added to the table if new.
    pub fn intern(&mut self, entry: OpEntry) -> OpRef {
        let at = self
            .ops
            .iter()
            .position(|e| *e == entry)
            .unwrap_or_else(|| {
                self.ops.push(entry);
                self.ops.len() - 1
            });
        OpRef(at as u32)
    }

    /// The entry of `op`.
    pub fn op(&self, op: OpRef) -> &OpEntry {
        &self.ops[op.0 as usize]
    }

    /// The leaf `leaf`.
    pub fn leaf(&self, leaf: LeafRef) -> &Tensor {
        &self.leaves[leaf.0 as usize]
    }
}

impl Analysis<Term> for Tensors {
    /// The class's tensor type (`None` for the absent operand and the root).
    type Data = Option<TensorType>;

    fn make(egraph: &mut ModelGraph, enode: &Term, _id: Id) -> Self::Data {
        let a = &egraph.analysis;
        match enode {
            Term::Leaf(l) => Some(a.leaf(*l).ty.clone()),
            Term::Apply(op, _) => Some(a.op(*op).output.ty.clone()),
            Term::Absent | Term::Outputs(_) => None,
        }
    }

    fn merge(&mut self, a: &mut Self::Data, b: Self::Data) -> DidMerge {
        // Rules only join terms of one type; the first type stays.
        debug_assert!(
            a.is_none() || b.is_none() || *a == b,
            "{a:?} joined with {b:?}"
        );
        DidMerge(false, false)
    }
}

/// The type of class `id`.
pub fn type_of(egraph: &ModelGraph, id: Id) -> Option<&TensorType> {
    egraph[id].data.as_ref()
}

/// The leaf tensor in class `id`, if it holds one.
pub fn leaf_in(egraph: &ModelGraph, id: Id) -> Option<&Tensor> {
    egraph[id].nodes.iter().find_map(|n| match n {
        Term::Leaf(l) => Some(egraph.analysis.leaf(*l)),
        _ => None,
    })
}

/// The ops applied in class `id`, with their operands.
pub fn applications(egraph: &ModelGraph, id: Id) -> Vec<(OpEntry, Vec<Id>)> {
    egraph[id]
        .nodes
        .iter()
        .filter_map(|n| match n {
            Term::Apply(op, args) => Some((egraph.analysis.op(*op).clone(), args.clone())),
            _ => None,
        })
        .collect()
}

/// Adds a constant leaf (a folded or rewritten constant), returning its class. A tensor
/// already among the leaves is the same leaf, so rules that make it again saturate.
pub fn add_leaf(egraph: &mut ModelGraph, tensor: Tensor) -> Id {
    let leaves = &mut egraph.analysis.leaves;
    let at = leaves.iter().position(|t| *t == tensor).unwrap_or_else(|| {
        leaves.push(tensor);
        leaves.len() - 1
    });
    egraph.add(Term::Leaf(LeafRef(at as u32)))
}

/// Adds `op` (with its output tensor) applied to `args`, returning its class.
pub fn apply(egraph: &mut ModelGraph, op: Op, output: Tensor, args: Vec<Id>) -> Id {
    let r = egraph.analysis.intern(OpEntry { op, output });
    egraph.add(Term::Apply(r, args))
}

/// How many classes use class `id` as an operand (the root counts: a model output has a user
/// outside the graph).
pub fn users(egraph: &ModelGraph, id: Id) -> usize {
    let id = egraph.find(id);
    egraph
        .classes()
        .filter(|c| {
            let uses = |n: &Term| n.children().iter().any(|ch| egraph.find(*ch) == id);
            c.nodes.iter().any(uses)
        })
        .count()
}
