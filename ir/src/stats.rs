//! Model statistics: op counts, multiply-accumulates and weight bytes (`minnow inspect`).
//!
//! MACs count what the convolution-like ops do per inference, the way MLPerf Tiny and the
//! golden `meta.json` files count them: `output elements × filter window × input depth` for
//! convolution, `output elements × window` for depthwise convolution, `output elements × depth`
//! for fully connected. Other ops count zero.

use crate::graph::{Graph, Node};
use crate::op::Op;
use std::collections::BTreeMap;

/// Multiply-accumulates of one op.
pub fn op_macs(g: &Graph, node: &Node) -> u64 {
    let shape = |i: usize| {
        node.inputs
            .get(i)
            .copied()
            .flatten()
            .map(|t| &g.tensor(t).ty.shape)
    };
    let out: u64 = g.tensor(node.outputs[0]).ty.elements() as u64;
    // A fused residual ADD does its multiply-accumulate op's MACs, over the same output shape.
    let op = match &node.op {
        Op::ResidualAdd { mac, .. } => mac,
        op => op,
    };
    match (op, shape(1)) {
        (Op::Conv2d { .. }, Some(f)) if f.len() == 4 => out * (f[1] * f[2] * f[3]) as u64,
        (Op::DepthwiseConv2d { .. }, Some(f)) if f.len() == 4 => out * (f[1] * f[2]) as u64,
        (Op::FullyConnected { .. }, Some(w)) if w.len() == 2 => out * w[1] as u64,
        (Op::BatchMatMul, Some(b)) if b.len() >= 2 => out * b[b.len() - 2] as u64,
        _ => 0,
    }
}

impl Graph {
    /// Multiply-accumulates of one inference.
    pub fn macs(&self) -> u64 {
        self.execution_order()
            .into_iter()
            .map(|op| op_macs(self, self.node(op)))
            .sum()
    }

    /// How many ops of each kind, keyed by TFLite builtin name, sorted.
    pub fn op_counts(&self) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        for op in self.execution_order() {
            *counts.entry(self.node(op).op.tflite_name()).or_insert(0) += 1;
        }
        counts
    }
}
