//! Tensors that are parts of others, so that no step copies them: a SLICE of contiguous
//! elements is read where it lies in its input, and the parts of a CONCATENATION are computed
//! where they lie in its output. Both become [`crate::loops::SlotKind::View`] slots.
//!
//! A part is contiguous when every dimension before the first one it does not take whole has
//! extent 1 in it (a band of rows of an NHWC image with batch 1, say).

use crate::graph::{Graph, Node, TensorId, TensorKind};
use crate::op::{Activation, Op};

/// Where a SLICE's block starts in its input, in elements, if it is contiguous there.
pub(super) fn slice_offset(graph: &Graph, node: &Node) -> Option<usize> {
    let Op::Slice { begin } = &node.op else {
        return None;
    };
    let input = &graph.tensor(node.inputs[0]?).ty;
    let output = &graph.tensor(node.outputs[0]).ty;
    if input.dtype != output.dtype || input.quant != output.quant {
        return None;
    }
    contiguous(&input.shape, &output.shape).then(|| offset(&input.shape, begin))
}

/// Per tensor, the CONCATENATION output it is computed into and the element where it starts
/// there: every input of a concatenation that joins contiguous parts without rescaling them,
/// when each input is computed by an op of its own for that concatenation alone.
pub(super) fn concat_parts(graph: &Graph) -> Vec<Option<(TensorId, usize)>> {
    let mut parts = vec![None; graph.tensor_count()];
    for op in graph.execution_order() {
        let node = graph.node(op);
        let Op::Concat { axis, activation } = &node.op else {
            continue;
        };
        let whole = node.outputs[0];
        let out = &graph.tensor(whole).ty;
        let outer: usize = out.shape[..*axis].iter().product();
        let qualifies = |t: &Option<TensorId>| {
            t.is_some_and(|t| {
                let tensor = graph.tensor(t);
                let computed = graph.producer(t).is_some_and(|p| {
                    !matches!(
                        graph.node(p).op,
                        Op::Reshape | Op::Slice { .. } | Op::Concat { .. }
                    )
                });
                tensor.kind == TensorKind::Activation
                    && computed
                    && tensor.ty.dtype == out.dtype
                    && tensor.ty.quant == out.quant
                    && graph.consumers(t).len() == 1
                    && node.inputs.iter().filter(|i| **i == Some(t)).count() == 1
                    && !graph.outputs.contains(&t)
                    && !graph.inputs.contains(&t)
            })
        };
        if *activation != Activation::None || outer != 1 || !node.inputs.iter().all(qualifies) {
            continue;
        }
        let mut at = 0;
        for t in node.inputs.iter().flatten() {
            parts[t.index()] = Some((whole, at));
            at += graph.tensor(*t).ty.elements();
        }
    }
    parts
}

/// Whether `node` is a CONCATENATION whose inputs were all computed into its output.
pub(super) fn written_in_place(
    graph: &Graph,
    node: &Node,
    parts: &[Option<(TensorId, usize)>],
) -> bool {
    let whole = node.outputs[0];
    matches!(node.op, Op::Concat { .. })
        && node
            .inputs
            .iter()
            .all(|t| t.is_some_and(|t| parts[t.index()].is_some_and(|(w, _)| w == whole)))
        && graph.tensor(whole).ty.elements() > 0
}

/// Whether a block of extents `part` is contiguous in a tensor of extents `whole`: for some
/// dimension, the block is 1 wide in every one before it and whole in every one after it.
fn contiguous(whole: &[usize], part: &[usize]) -> bool {
    whole.len() == part.len()
        && (0..whole.len().max(1))
            .any(|d| part[..d].iter().all(|e| *e == 1) && part.get(d + 1..) == whole.get(d + 1..))
}

/// The linear element index of `begin` in a tensor of extents `shape`.
fn offset(shape: &[usize], begin: &[usize]) -> usize {
    let mut at = 0;
    for (extent, b) in shape.iter().zip(begin) {
        at = at * extent + b;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_band_of_rows_is_contiguous_and_a_band_of_columns_is_not() {
        assert!(contiguous(&[1, 96, 96, 3], &[1, 20, 96, 3]));
        assert!(contiguous(&[1, 96, 96, 3], &[1, 1, 10, 3]));
        assert!(contiguous(&[4, 5], &[4, 5]));
        assert!(!contiguous(&[1, 96, 96, 3], &[1, 96, 20, 3]));
        assert!(!contiguous(&[2, 8, 8], &[2, 4, 8]));
        assert_eq!(offset(&[1, 96, 96, 3], &[0, 10, 0, 0]), 10 * 96 * 3);
    }
}
