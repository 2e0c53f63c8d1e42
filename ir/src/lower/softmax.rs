//! SOFTMAX from int8 to int8 or int16 over the last dimension, as TFLite's integer kernel:
//! differences from the row maximum scaled to Q5.26, `exp_on_negative_values`, a Q12.19 sum,
//! and a fixed-point reciprocal.

use super::{clamp_to, integer_only, Kernel};
use crate::fixedpoint::{calculate_input_radius, preprocess_softmax_scaling};
use crate::loops::{BufId, Expr, FuncBuilder, Intrinsic, ScalarType};
use crate::op::Op;
use crate::qparams;

const SCALED_DIFF_INTEGER_BITS: i32 = 5;
const ACCUMULATION_INTEGER_BITS: i32 = 12;

/// Lowers a softmax.
pub(super) fn lower(k: &mut Kernel) -> Result<(), String> {
    let Op::Softmax { beta } = k.node.op else {
        unreachable!("softmax::lower called for {}", k.node.op.name())
    };
    let (input, output) = (k.operand(0).clone(), k.output_type().clone());
    integer_only(&input)?;
    let depth = *input.shape.last().ok_or("the input is a scalar")?;
    let rows = input.elements() / depth.max(1);
    let (in_scale, _) = qparams::per_tensor(&input, "input")?;
    let (multiplier, left_shift) =
        preprocess_softmax_scaling(beta as f64, in_scale as f64, SCALED_DIFF_INTEGER_BITS);
    let diff_min = -calculate_input_radius(SCALED_DIFF_INTEGER_BITS, left_shift, 31);
    let (lo, hi) = output.dtype.int_range().ok_or("integer output expected")?;
    let out_bits = (output.dtype.size() * 8) as i32;
    let x = k.input("input", 0);
    let out = k.output("output");
    let elem = ScalarType::of(output.dtype);
    let p = Params {
        x,
        multiplier,
        left_shift,
    };
    k.f.for_loop("r", rows, |f, r| {
        let base = f.let_("base", ScalarType::I32, r * Expr::idx(depth));
        let max = f.local("max", ScalarType::I32, 1);
        f.store(max, Expr::i32(0), Expr::i32(i8::MIN as i32));
        f.for_loop("i", depth, |f, i| {
            let v = Expr::load(x, base.clone() + i).cast(ScalarType::I32);
            f.store(max, Expr::i32(0), Expr::load(max, Expr::i32(0)).max(v));
        });
        let max = f.let_("row_max", ScalarType::I32, Expr::load(max, Expr::i32(0)));
        let sum = f.local("sum", ScalarType::I32, 1);
        f.store(sum, Expr::i32(0), Expr::i32(0));
        f.for_loop("i", depth, |f, i| {
            let diff = p.diff(f, &base, &max, i);
            f.if_then(Expr::i32(diff_min).le(diff.clone()), |f| {
                let term = Expr::call(
                    Intrinsic::RoundingDivideByPot,
                    vec![p.exp(diff), Expr::i32(ACCUMULATION_INTEGER_BITS)],
                );
                f.store(sum, Expr::i32(0), Expr::load(sum, Expr::i32(0)) + term);
            });
        });
        // GetReciprocal: normalise the sum into [1, 2) and take 1 / (1 + x).
        let sum = f.let_("total", ScalarType::I32, Expr::load(sum, Expr::i32(0)));
        let headroom = f.let_(
            "headroom",
            ScalarType::I32,
            Expr::call(Intrinsic::CountLeadingZeros, vec![sum.clone()]),
        );
        let shifted = (sum.cast(ScalarType::I64) << headroom.clone().cast(ScalarType::I64))
            - Expr::i64(1 << 31);
        let reciprocal = f.let_(
            "reciprocal",
            ScalarType::I32,
            Expr::call(
                Intrinsic::OneOverOnePlusX,
                vec![shifted.cast(ScalarType::I32)],
            ),
        );
        let exponent = f.let_(
            "exponent",
            ScalarType::I32,
            Expr::i32(ACCUMULATION_INTEGER_BITS + 31 - out_bits) - headroom,
        );
        f.for_loop("i", depth, |f, i| {
            let diff = p.diff(f, &base, &max, i.clone());
            let scaled = Expr::call(
                Intrinsic::RoundingDivideByPot,
                vec![
                    Expr::call(
                        Intrinsic::SaturatingRoundingDoublingHighMul,
                        vec![reciprocal.clone(), p.exp(diff.clone())],
                    ),
                    exponent.clone(),
                ],
            );
            let value = clamp_to(scaled + Expr::i32(lo as i32), lo, hi, elem);
            let low = Expr::i32(lo as i32).cast(elem);
            let in_range = Expr::i32(diff_min).le(diff);
            f.store(out, base.clone() + i, Expr::select(in_range, value, low));
        });
    });
    Ok(())
}

struct Params {
    x: BufId,
    multiplier: i32,
    left_shift: i32,
}

impl Params {
    /// `input[base + i] - row_max`.
    fn diff(&self, f: &mut FuncBuilder, base: &Expr, max: &Expr, i: Expr) -> Expr {
        let v = Expr::load(self.x, base.clone() + i).cast(ScalarType::I32);
        f.let_("diff", ScalarType::I32, v - max.clone())
    }

    /// `exp(diff * scale)` in Q0.31.
    fn exp(&self, diff: Expr) -> Expr {
        let scaled = Expr::call(
            Intrinsic::MultiplyByQuantizedMultiplierGreaterThanOne,
            vec![diff, Expr::i32(self.multiplier), Expr::i32(self.left_shift)],
        );
        Expr::call(
            Intrinsic::ExpOnNegativeValues,
            vec![scaled, Expr::i32(SCALED_DIFF_INTEGER_BITS)],
        )
    }
}
