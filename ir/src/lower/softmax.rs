//! SOFTMAX over the last dimension, as TFLite's kernels. From int8: differences from the row
//! maximum scaled to Q5.26, `exp_on_negative_values`, a Q12.19 sum and a fixed-point
//! reciprocal. From int16: TFLite's interpolated `exp` and `1/(1+x)` tables. Float:
//! `exp((x - max) * beta)` with minnow's reproducible `exp`, divided by the row's sum.

use super::{clamp_to, Kernel};
use crate::fixedpoint::{calculate_input_radius, preprocess_softmax_scaling};
use crate::loops::{BufId, Expr, FuncBuilder, Intrinsic, ScalarType};
use crate::op::Op;
use crate::qparams;
use crate::types::DType;

const SCALED_DIFF_INTEGER_BITS: i32 = 5;
const ACCUMULATION_INTEGER_BITS: i32 = 12;

/// Lowers a softmax.
pub(super) fn lower(k: &mut Kernel) -> Result<(), String> {
    let Op::Softmax { beta } = k.node.op else {
        unreachable!("softmax::lower called for {}", k.node.op.name())
    };
    let (input, output) = (k.operand(0).clone(), k.output_type().clone());
    let depth = *input.shape.last().ok_or("the input is a scalar")?;
    let rows = input.elements() / depth.max(1);
    if input.dtype == DType::F32 {
        lower_float(k, beta, rows, depth);
        return Ok(());
    }
    let (in_scale, _) = qparams::per_tensor(&input, "input")?;
    if input.dtype == DType::I16 {
        lower_int16(k, qparams::softmax_int16(beta, in_scale), rows, depth);
        return Ok(());
    }
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
        let sum = f.let_("total", ScalarType::I32, Expr::load(sum, Expr::i32(0)));
        let (reciprocal, exponent) = reciprocal(f, sum, out_bits);
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

/// TFLite's `GetReciprocal` of a Q12.19 sum: normalises it into [1, 2), takes `1 / (1 + x)`
/// and returns that reciprocal with the right shift that brings `reciprocal * exp` to an
/// output of `out_bits` bits.
fn reciprocal(f: &mut FuncBuilder, sum: Expr, out_bits: i32) -> (Expr, Expr) {
    let headroom = f.let_(
        "headroom",
        ScalarType::I32,
        Expr::call(Intrinsic::CountLeadingZeros, vec![sum.clone()]),
    );
    let shifted =
        (sum.cast(ScalarType::I64) << headroom.clone().cast(ScalarType::I64)) - Expr::i64(1 << 31);
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
    (reciprocal, exponent)
}

/// Float softmax as the interpreter computes it: the row maximum, `exp` of the scaled
/// differences stored and summed in order, then each divided by the sum.
fn lower_float(k: &mut Kernel, beta: f32, rows: usize, depth: usize) {
    let x = k.input("input", 0);
    let out = k.output("output");
    let f32t = ScalarType::F32;
    let zero = || Expr::i32(0);
    k.f.for_loop("r", rows, |f, r| {
        let base = f.let_("base", ScalarType::I32, r * Expr::idx(depth));
        let max = f.local("max", f32t, 1);
        f.store(max, zero(), Expr::f32(f32::MIN));
        f.for_loop("i", depth, |f, i| {
            let v = Expr::load(x, base.clone() + i);
            f.store(max, zero(), Expr::load(max, zero()).max(v));
        });
        let max = f.let_("row_max", f32t, Expr::load(max, zero()));
        let sum = f.local("sum", f32t, 1);
        f.store(sum, zero(), Expr::f32(0.0));
        f.for_loop("i", depth, |f, i| {
            let scaled = (Expr::load(x, base.clone() + i.clone()) - max.clone()) * Expr::f32(beta);
            let e = f.let_("e", f32t, Expr::call(Intrinsic::ExpF32, vec![scaled]));
            f.store(out, base.clone() + i, e.clone());
            f.store(sum, zero(), Expr::load(sum, zero()) + e);
        });
        let total = f.let_("total", f32t, Expr::load(sum, zero()));
        f.for_loop("i", depth, |f, i| {
            let at = base.clone() + i;
            f.store(out, at.clone(), Expr::load(out, at) / total.clone());
        });
    });
}

/// TFLite's `SoftmaxInt16`: table-based `exp` of the scaled differences, a table-based
/// reciprocal of their sum, and a rounding 64-bit rescale.
fn lower_int16(k: &mut Kernel, p: qparams::SoftmaxInt16, rows: usize, depth: usize) {
    let table = |k: &mut Kernel, name: &str, lut: &[i16]| {
        let bytes = lut.iter().flat_map(|v| v.to_le_bytes()).collect();
        k.constant(name, ScalarType::I16, lut.len(), bytes)
    };
    let x = k.input("input", 0);
    let out = k.output("output");
    let exp_lut = table(k, "exp_lut", &p.exp_lut);
    let reciprocal_lut = table(k, "one_over_one_plus_x_lut", &p.one_over_one_plus_x_lut);
    let (i32, i64) = (ScalarType::I32, ScalarType::I64);
    // exp(x - max) in Q0.15.
    let exp = |f: &mut FuncBuilder, v: Expr, max: &Expr| {
        let scaled = super::scaled(v - max.clone(), p.multiplier, p.shift);
        let centred = f.let_(
            "centred",
            i32,
            (scaled + Expr::i32(32767)).clamp(Expr::i32(-32768), Expr::i32(32767)),
        );
        lut_lookup(f, centred, exp_lut)
    };
    k.f.for_loop("r", rows, |f, r| {
        let base = f.let_("base", i32, r * Expr::idx(depth));
        let max = f.local("max", i32, 1);
        f.store(max, Expr::i32(0), Expr::i32(i16::MIN as i32));
        f.for_loop("i", depth, |f, i| {
            let v = Expr::load(x, base.clone() + i).cast(i32);
            f.store(max, Expr::i32(0), Expr::load(max, Expr::i32(0)).max(v));
        });
        let max = f.let_("row_max", i32, Expr::load(max, Expr::i32(0)));
        let sum = f.local("sum", i32, 1);
        f.store(sum, Expr::i32(0), Expr::i32(0));
        f.for_loop("i", depth, |f, i| {
            let e = exp(f, Expr::load(x, base.clone() + i).cast(i32), &max);
            f.store(sum, Expr::i32(0), Expr::load(sum, Expr::i32(0)) + e);
        });
        let sum = f.let_("total", i32, Expr::load(sum, Expr::i32(0)));
        let headroom = f.let_(
            "headroom",
            i32,
            Expr::call(Intrinsic::CountLeadingZeros, vec![sum.clone()]),
        );
        let shifted = ((sum.cast(i64) << (headroom.clone() - Expr::i32(1)).cast(i64))
            + Expr::i64(1 << 13))
            >> Expr::i64(14);
        let centred = (shifted.cast(i32) - Expr::i32((1 << 15) + (1 << 16)))
            .clamp(Expr::i32(-32768), Expr::i32(32767));
        let centred = f.let_("sum_centred", i32, centred);
        let reciprocal = lut_lookup(f, centred, reciprocal_lut);
        let reciprocal = f.let_("reciprocal", i64, reciprocal.cast(i64));
        let right_shift = f.let_("right_shift", i64, (Expr::i32(31) - headroom).cast(i64));
        let round = f.let_(
            "round",
            i64,
            Expr::i64(1) << (right_shift.clone() - Expr::i64(1)),
        );
        f.for_loop("i", depth, |f, i| {
            let e = exp(f, Expr::load(x, base.clone() + i.clone()).cast(i32), &max);
            let scaled = ((e.cast(i64) * reciprocal.clone() + round.clone())
                >> right_shift.clone())
            .cast(i32);
            f.store(
                out,
                base.clone() + i,
                clamp_to(scaled, 0, 32767, ScalarType::I16),
            );
        });
    });
}

/// TFLite's `LUTLookup` on a 513-entry int16 table, for `value` in the int16 range (as an
/// `i32`): the entry at the high 9 bits, interpolated by the low 7. Mirrors
/// [`crate::lut::lookup_int16`].
fn lut_lookup(f: &mut FuncBuilder, value: Expr, lut: BufId) -> Expr {
    let i32 = ScalarType::I32;
    let index = f.let_(
        "index",
        i32,
        Expr::i32(256) + (value.clone() >> Expr::i32(7)),
    );
    let offset = f.let_("offset", i32, value & Expr::i32(0x7f));
    let base = Expr::load(lut, index.clone()).cast(i32);
    let next = Expr::load(lut, index + Expr::i32(1)).cast(i32);
    let slope = (next - base.clone()).cast(ScalarType::I16).cast(i32);
    let delta = (slope * offset + Expr::i32(64)) >> Expr::i32(7);
    (base + delta).cast(ScalarType::I16).cast(i32)
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
