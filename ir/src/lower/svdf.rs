//! Integer SVDF (TFLite Micro's `EvalIntegerSvdfReference`): shift the state left by one,
//! write each filter's projection of the new input into its last memory slot, filter every
//! memory with the time weights, sum `rank` filters per unit, add the bias, requantize.

use super::{clamp_to, integer_only, load_i32, Kernel};
use crate::fixedpoint::quantize_multiplier;
use crate::loops::{Expr, Intrinsic, ScalarType};
use crate::op::Op;
use crate::qparams;

/// Lowers an SVDF.
pub(super) fn lower(k: &mut Kernel) -> Result<(), String> {
    let Op::Svdf { rank, .. } = k.node.op else {
        unreachable!("svdf::lower called for {}", k.node.op.name())
    };
    let (input, wf, wt, state, output) = (
        k.operand(0).clone(),
        k.operand(1).clone(),
        k.operand(2).clone(),
        k.operand(4).clone(),
        k.output_type().clone(),
    );
    integer_only(&input)?;
    let (batches, input_size, filters, memory) =
        (input.shape[0], input.shape[1], wf.shape[0], wt.shape[1]);
    let units = filters / rank.max(1);
    let ((si, input_zp), (sf, _), (st, _), (ss, state_zp), (so, output_zp)) = (
        qparams::per_tensor(&input, "input")?,
        qparams::per_tensor(&wf, "feature weights")?,
        qparams::per_tensor(&wt, "time weights")?,
        qparams::per_tensor(&state, "state")?,
        qparams::per_tensor(&output, "output")?,
    );
    // The reference multiplies these scales in float.
    let scale_1 = quantize_multiplier((si * sf / ss) as f64);
    let scale_2 = quantize_multiplier((ss * st / so) as f64);
    let (state_lo, state_hi) = state.dtype.int_range().ok_or("integer state expected")?;
    let state_elem = ScalarType::of(state.dtype);
    let x = k.input("input", 0);
    let feature = k.input("feature", 1);
    let time = k.input("time", 2);
    let bias = k.has_operand(3).then(|| k.input("bias", 3));
    let s = k.state("state", 4);
    let out = k.output("output");
    let f = &mut k.f;
    let state_len = batches * filters * memory;
    f.for_loop("i", state_len.saturating_sub(1), |f, i| {
        f.store(s, i.clone(), Expr::load(s, i + Expr::i32(1)));
    });
    f.for_loop("b", batches, |f, b| {
        f.for_loop("r", filters, |f, r| {
            let dot = f.local("dot", ScalarType::I32, 1);
            f.store(dot, Expr::i32(0), Expr::i32(0));
            f.for_loop("k", input_size, |f, kk| {
                let w = load_i32(feature, r.clone() * Expr::idx(input_size) + kk.clone());
                let v = load_i32(x, b.clone() * Expr::idx(input_size) + kk) - Expr::i32(input_zp);
                f.store(dot, Expr::i32(0), Expr::load(dot, Expr::i32(0)) + w * v);
            });
            let scaled = Expr::call(
                Intrinsic::MultiplyByQuantizedMultiplier,
                vec![
                    Expr::load(dot, Expr::i32(0)),
                    Expr::i32(scale_1.0),
                    Expr::i32(scale_1.1),
                ],
            );
            let clamped = scaled.clamp(Expr::i32(state_lo as i32), Expr::i32(state_hi as i32));
            let slot =
                (b.clone() * Expr::idx(filters) + r) * Expr::idx(memory) + Expr::idx(memory - 1);
            f.store(s, slot, (Expr::i32(state_zp) + clamped).cast(state_elem));
        });
        f.for_loop("u", units, |f, u| {
            let acc = f.local("acc", ScalarType::I32, 1);
            let init = bias.map_or(Expr::i32(0), |bias| load_i32(bias, u.clone()));
            f.store(acc, Expr::i32(0), init);
            f.for_loop("j", rank, |f, j| {
                let filter = f.let_("filter", ScalarType::I32, u.clone() * Expr::idx(rank) + j);
                let inner = f.local("inner", ScalarType::I32, 1);
                f.store(inner, Expr::i32(0), Expr::i32(0));
                f.for_loop("t", memory, |f, t| {
                    let w = load_i32(time, filter.clone() * Expr::idx(memory) + t.clone());
                    let cell =
                        (b.clone() * Expr::idx(filters) + filter.clone()) * Expr::idx(memory) + t;
                    let v = load_i32(s, cell) - Expr::i32(state_zp);
                    f.store(inner, Expr::i32(0), Expr::load(inner, Expr::i32(0)) + w * v);
                });
                let sum = Expr::load(acc, Expr::i32(0)) + Expr::load(inner, Expr::i32(0));
                f.store(acc, Expr::i32(0), sum);
            });
            let scaled = Expr::call(
                Intrinsic::MultiplyByQuantizedMultiplier,
                vec![
                    Expr::load(acc, Expr::i32(0)),
                    Expr::i32(scale_2.0),
                    Expr::i32(scale_2.1),
                ],
            );
            let value = clamp_to(scaled + Expr::i32(output_zp), -128, 127, ScalarType::I8);
            f.store(out, b.clone() * Expr::idx(units) + u, value);
        });
    });
    Ok(())
}
