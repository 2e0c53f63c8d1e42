//! The requantization intrinsics as Cranelift instructions, inlined where the loop IR calls
//! them: the same arithmetic as `minnow_ir::runtime::fixedpoint` (whose definitions the
//! interpreter runs), without a call per output element.
//!
//! Each builder mirrors its runtime function line by line; `tests/jit.rs` and the unit tests
//! below check them bit for bit against the runtime on edge cases and random operands.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, Value};
use cranelift_frontend::FunctionBuilder;
use minnow_ir::loops::Intrinsic;

/// Emits `intrinsic(args)` inline, or `None` when it is called through its shim instead (the
/// transcendental functions and the DSP instructions, which host schedules do not use in
/// inner loops).
pub(super) fn inline(
    b: &mut FunctionBuilder,
    intrinsic: Intrinsic,
    args: &[Value],
) -> Option<Value> {
    Some(match intrinsic {
        Intrinsic::SaturatingRoundingDoublingHighMul => srdhm(b, args[0], args[1]),
        Intrinsic::RoundingDivideByPot => rounding_divide_by_pot(b, args[0], args[1]),
        Intrinsic::MultiplyByQuantizedMultiplier => mbqm(b, args[0], args[1], args[2]),
        Intrinsic::MultiplyByQuantizedMultiplierHighShift => {
            mbqm_high_shift(b, args[0], args[1], args[2], None)
        }
        Intrinsic::MultiplyByQuantizedMultiplierHighShiftOffset => {
            mbqm_high_shift(b, args[0], args[1], args[2], Some(args[3]))
        }
        Intrinsic::MultiplyByQuantizedMultiplierHighMul => {
            mbqm_high_mul(b, args[0], args[1], args[2], args[3])
        }
        Intrinsic::MultiplyByQuantizedMultiplierWide => mbqm_wide(b, args[0], args[1], args[2]),
        Intrinsic::MultiplyByQuantizedMultiplierSmallerThanOneExp => {
            let high = srdhm(b, args[0], args[1]);
            let right = b.ins().ineg(args[2]);
            rounding_divide_by_pot(b, high, right)
        }
        Intrinsic::MultiplyByQuantizedMultiplierGreaterThanOne => {
            let one = b.ins().iconst(types::I32, 1);
            let scale = b.ins().ishl(one, args[2]);
            let scaled = b.ins().imul(args[0], scale);
            srdhm(b, scaled, args[1])
        }
        Intrinsic::CountLeadingZeros => b.ins().clz(args[0]),
        _ => return None,
    })
}

/// `saturating_rounding_doubling_high_mul(a, b)`.
fn srdhm(b: &mut FunctionBuilder, x: Value, y: Value) -> Value {
    let (wx, wy) = (
        b.ins().sextend(types::I64, x),
        b.ins().sextend(types::I64, y),
    );
    let product = b.ins().imul(wx, wy);
    let non_negative = b
        .ins()
        .icmp_imm_s(IntCC::SignedGreaterThanOrEqual, product, 0);
    let (up, down) = (
        b.ins().iconst(types::I64, 1 << 30),
        b.ins().iconst(types::I64, 1 - (1 << 30)),
    );
    let nudge = b.ins().select(non_negative, up, down);
    let sum = b.ins().iadd(product, nudge);
    // Division by 2^31 truncating toward zero: add 2^31 - 1 to negative sums, then shift.
    let sign = b.ins().sshr_imm_u(sum, 63);
    let bias = b.ins().band_imm_u(sign, (1 << 31) - 1);
    let biased = b.ins().iadd(sum, bias);
    let quotient = b.ins().sshr_imm_u(biased, 31);
    let result = b.ins().ireduce(types::I32, quotient);
    // The one overflow: i32::MIN * i32::MIN saturates to i32::MAX.
    let x_min = b.ins().icmp_imm_s(IntCC::Equal, x, i32::MIN as i64);
    let same = b.ins().icmp(IntCC::Equal, x, y);
    let overflow = b.ins().band(x_min, same);
    let max = b.ins().iconst(types::I32, i32::MAX as i64);
    b.ins().select(overflow, max, result)
}

/// `rounding_divide_by_pot(x, exponent)` for `exponent` in `0..=31`.
fn rounding_divide_by_pot(b: &mut FunctionBuilder, x: Value, exponent: Value) -> Value {
    let one = b.ins().iconst(types::I32, 1);
    let power = b.ins().ishl(one, exponent);
    let mask = b.ins().iadd_imm_s(power, -1);
    let remainder = b.ins().band(x, mask);
    let negative = b.ins().icmp_imm_s(IntCC::SignedLessThan, x, 0);
    let negative = b.ins().uextend(types::I32, negative);
    let half = b.ins().sshr_imm_u(mask, 1);
    let threshold = b.ins().iadd(half, negative);
    let shifted = b.ins().sshr(x, exponent);
    let round_up = b.ins().icmp(IntCC::SignedGreaterThan, remainder, threshold);
    let round_up = b.ins().uextend(types::I32, round_up);
    b.ins().iadd(shifted, round_up)
}

/// `multiply_by_quantized_multiplier(x, multiplier, shift)`.
fn mbqm(b: &mut FunctionBuilder, x: Value, multiplier: Value, shift: Value) -> Value {
    let zero = b.ins().iconst(types::I32, 0);
    let left = b.ins().smax(shift, zero);
    let negated = b.ins().ineg(shift);
    let right = b.ins().smax(negated, zero);
    let scaled = b.ins().ishl(x, left);
    let high = srdhm(b, scaled, multiplier);
    rounding_divide_by_pot(b, high, right)
}

/// `multiply_by_quantized_multiplier_high_shift(x, multiplier, high_shift)`, or with a
/// `rounding` constant its `_offset` form.
fn mbqm_high_shift(
    b: &mut FunctionBuilder,
    x: Value,
    multiplier: Value,
    high_shift: Value,
    rounding: Option<Value>,
) -> Value {
    let (wx, wm) = (
        b.ins().sextend(types::I64, x),
        b.ins().sextend(types::I64, multiplier),
    );
    let product = b.ins().imul(wx, wm);
    let negative = b.ins().icmp_imm_s(IntCC::SignedLessThan, x, 0);
    let (down, up) = (
        b.ins().iconst(types::I64, -(1 << 30)),
        b.ins().iconst(types::I64, 1 << 30),
    );
    let nudge = b.ins().select(negative, down, up);
    let sum = b.ins().iadd(product, nudge);
    let high = b.ins().sshr_imm_u(sum, 32);
    let high = b.ins().ireduce(types::I32, high);
    let round = rounding.unwrap_or_else(|| {
        let one = b.ins().iconst(types::I32, 1);
        let power = b.ins().ishl(one, high_shift);
        b.ins().sshr_imm_u(power, 1)
    });
    let rounded = b.ins().iadd(high, round);
    b.ins().sshr(rounded, high_shift)
}

/// `multiply_by_quantized_multiplier_high_mul(x, multiplier, shift, rounding)`.
fn mbqm_high_mul(
    b: &mut FunctionBuilder,
    x: Value,
    multiplier: Value,
    shift: Value,
    rounding: Value,
) -> Value {
    let times_four = b.ins().ishl_imm_u(x, 2);
    let high = b.ins().smulhi(times_four, multiplier);
    let sign = b.ins().sshr_imm_u(x, 31);
    let nudge = b.ins().bor_imm_u(sign, 1);
    let nudged = b.ins().iadd(high, nudge);
    let rounded = b.ins().iadd(nudged, rounding);
    b.ins().sshr(rounded, shift)
}

/// `multiply_by_quantized_multiplier_i64(x, multiplier, shift)`.
fn mbqm_wide(b: &mut FunctionBuilder, x: Value, multiplier: Value, shift: Value) -> Value {
    let small = b
        .ins()
        .icmp_imm_s(IntCC::SignedLessThan, multiplier, 0x7FFF_0000);
    let wide = b.ins().sextend(types::I64, multiplier);
    let rounded = b.ins().iadd_imm_s(wide, 1 << 15);
    let reduced = b.ins().sshr_imm_u(rounded, 16);
    let saturated = b.ins().iconst(types::I64, 0x7FFF);
    let reduced = b.ins().select(small, reduced, saturated);
    let fifteen = b.ins().iconst(types::I32, 15);
    let total = b.ins().isub(fifteen, shift);
    let below = b.ins().iadd_imm_s(total, -1);
    let one = b.ins().iconst(types::I64, 1);
    let half = b.ins().ishl(one, below);
    let product = b.ins().imul(x, reduced);
    let sum = b.ins().iadd(product, half);
    let shifted = b.ins().sshr(sum, total);
    b.ins().ireduce(types::I32, shifted)
}
