//! BATCH_MATMUL: numpy's `matmul` over the last two dimensions, float, accumulating in `f32`
//! over `k` in order (what the lowered loops do).

use super::{operand_type, output_type, Buffer, Kernel};
use crate::graph::{Graph, Node};
use crate::types::DType;

/// A prepared batched matrix product.
struct BatchMatMul {
    /// For each output matrix: the offsets of its `a` and `b` matrices.
    batches: Vec<(usize, usize)>,
    m: usize,
    k: usize,
    n: usize,
}

/// Prepares a BATCH_MATMUL.
pub(super) fn prepare(g: &Graph, node: &Node) -> Result<Box<dyn Kernel>, String> {
    let (a, b, out) = (
        operand_type(g, node, 0),
        operand_type(g, node, 1),
        output_type(g, node),
    );
    if a.dtype != DType::F32 || b.dtype != DType::F32 {
        return Err(format!(
            "{} BATCH_MATMUL is not supported (float32 only)",
            a.dtype
        ));
    }
    let rank = out.shape.len();
    let (m, k, n) = (
        out.shape[rank - 2],
        a.shape[a.shape.len() - 1],
        out.shape[rank - 1],
    );
    let batch_shape = &out.shape[..rank - 2];
    let offsets = |shape: &[usize], matrix: usize| -> Vec<usize> {
        let dims = crate::shape::padded_to_rank(&shape[..shape.len() - 2], batch_shape.len());
        let total: usize = batch_shape.iter().product();
        (0..total)
            .map(|mut flat| {
                let (mut at, mut stride) = (0, 1);
                for d in (0..batch_shape.len()).rev() {
                    let coord = flat % batch_shape[d];
                    flat /= batch_shape[d];
                    if dims[d] != 1 {
                        at += coord * stride;
                    }
                    stride *= dims[d];
                }
                at * matrix
            })
            .collect()
    };
    let batches = offsets(&a.shape, m * k)
        .into_iter()
        .zip(offsets(&b.shape, k * n))
        .collect();
    Ok(Box::new(BatchMatMul { batches, m, k, n }))
}

impl Kernel for BatchMatMul {
    fn run(&self, inputs: &[Option<&Buffer>], output: &mut Buffer, _state: Option<&mut Buffer>) {
        let a = inputs[0].and_then(Buffer::as_f32).expect("float operand");
        let b = inputs[1].and_then(Buffer::as_f32).expect("float operand");
        let (m, k, n) = (self.m, self.k, self.n);
        let mut out = Vec::with_capacity(self.batches.len() * m * n);
        for (oa, ob) in &self.batches {
            for i in 0..m {
                for j in 0..n {
                    let mut sum = 0f32;
                    for p in 0..k {
                        sum += a[oa + i * k + p] * b[ob + p * n + j];
                    }
                    out.push(sum);
                }
            }
        }
        *output = Buffer::F32(out);
    }
}
