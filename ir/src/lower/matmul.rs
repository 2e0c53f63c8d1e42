//! BATCH_MATMUL: `[.., M, K] @ [.., K, N]` in float, one accumulator per output element, the
//! batch dimensions broadcast by zero strides.

use super::elementwise::broadcast_strides;
use super::{for_each_coord, linear_index, strides, Kernel};
use crate::loops::{Expr, ScalarType};
use crate::types::DType;

/// Lowers a batched matrix product.
pub(super) fn lower(k: &mut Kernel) -> Result<(), String> {
    let (a, b, out_ty) = (
        k.operand(0).clone(),
        k.operand(1).clone(),
        k.output_type().clone(),
    );
    if a.dtype != DType::F32 || b.dtype != DType::F32 {
        return Err(format!(
            "{} BATCH_MATMUL is not supported (float32 only)",
            a.dtype
        ));
    }
    let rank = out_ty.shape.len();
    let depth = a.shape[a.shape.len() - 1];
    // Strides of each operand seen through the output's batch dimensions, then its own rows
    // and columns.
    let operand_strides = |shape: &[usize], rows_of_a: bool| -> Vec<usize> {
        let (batch, matrix) = shape.split_at(shape.len() - 2);
        let mut s = broadcast_strides(batch, &out_ty.shape[..rank - 2])
            .into_iter()
            .map(|v| v * matrix[0] * matrix[1])
            .collect::<Vec<_>>();
        // a: (m, k) → row stride K; b: (k, n) → column stride 1.
        if rows_of_a {
            s.extend([matrix[1], 0]);
        } else {
            s.extend([0, 1]);
        }
        s
    };
    let (sa, sb, so) = (
        operand_strides(&a.shape, true),
        operand_strides(&b.shape, false),
        strides(&out_ty.shape),
    );
    let columns = b.shape[b.shape.len() - 1];
    let (xa, xb) = (k.input("a", 0), k.input("b", 1));
    let out = k.output("output");
    for_each_coord(&mut k.f, &out_ty.shape, "d", &mut |f, c| {
        let base_a = f.let_("base_a", ScalarType::I32, linear_index(c, &sa));
        let base_b = f.let_("base_b", ScalarType::I32, linear_index(c, &sb));
        let sum = f.local("sum", ScalarType::F32, 1);
        f.store(sum, Expr::i32(0), Expr::f32(0.0));
        f.for_loop("k", depth, |f, i| {
            let x = Expr::load(xa, base_a.clone() + i.clone());
            let y = Expr::load(xb, base_b.clone() + i * Expr::idx(columns));
            f.store(sum, Expr::i32(0), Expr::load(sum, Expr::i32(0)) + x * y);
        });
        f.store(out, linear_index(c, &so), Expr::load(sum, Expr::i32(0)));
    });
    Ok(())
}
