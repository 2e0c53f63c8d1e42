//! Requantization of four accumulators at once: `i32x4` forms of the fixed-point intrinsics
//! a multiply-accumulate's epilogue calls per output channel, bit for bit the scalar ones
//! ([`fixedpoint`](super::fixedpoint), `minnow_ir::runtime::fixedpoint`).
//!
//! SSE and NEON have no per-lane shift in Cranelift's vector instructions, and the shifts
//! here differ per channel. A right shift by `s` is therefore a 64-bit product with `2^(31-s)`
//! (built from a float's exponent bits) followed by one shift by 31 for every lane: the
//! rounding constant then becomes the same for every lane too.

use cranelift_codegen::ir::{types, Endianness, InstBuilder, MemFlagsData, Value};
use cranelift_frontend::FunctionBuilder;

/// `multiply_by_quantized_multiplier_high_shift(x, multiplier, high_shift)` on each lane, for
/// the operands the scalar form takes (`multiplier >= 0`, `high_shift` in `1..=30`); with
/// `rounding`, its `_offset` form.
///
/// The scalar form is `high = (x * multiplier + (x < 0 ? -2^30 : 2^30)) >> 32`, then
/// `(high + 2^(s-1)) >> s`. The second step is `(high * 2^(31-s) + 2^30) >> 31`, the same
/// floor of the same quotient, whose low word a logical 64-bit shift gives. The offset form's
/// `(high + rounding) >> s` is likewise `(high * 2^(31-s) + rounding * 2^(31-s)) >> 31`.
pub(super) fn mbqm_high_shift(
    b: &mut FunctionBuilder,
    x: Value,
    multiplier: Value,
    high_shift: Value,
    rounding: Option<Value>,
) -> Value {
    let products = wide_products(b, x, multiplier);
    // The nudge: x's sign bit over 2^30 is -2^30 for negative x, else 2^30.
    let sign_bit = splat_i32(b, i32::MIN);
    let sign = b.ins().band(x, sign_bit);
    let half = splat_i32(b, 1 << 30);
    let nudge = b.ins().bor(sign, half);
    let nudges = [b.ins().swiden_low(nudge), b.ins().swiden_high(nudge)];
    let sums = [0, 1].map(|k| b.ins().iadd(products[k], nudges[k]));
    let high = words(b, sums, 1);
    let power = power_of_two(b, high_shift);
    let scaled = wide_products(b, high, power);
    let round = match rounding {
        Some(r) => wide_products(b, r, power),
        None => {
            let half = b.ins().iconst(types::I64, 1 << 30);
            [b.ins().splat(types::I64X2, half); 2]
        }
    };
    let shifted = [0, 1].map(|k| {
        let sum = b.ins().iadd(scaled[k], round[k]);
        b.ins().ushr_imm_u(sum, 31)
    });
    words(b, shifted, 0)
}

/// `i32x4` with `v` in every lane.
fn splat_i32(b: &mut FunctionBuilder, v: i32) -> Value {
    let c = b.ins().iconst(types::I32, v as i64);
    b.ins().splat(types::I32X4, c)
}

/// The four lanes' 64-bit products `x * y`: lanes 0 and 1, then 2 and 3 (one `pmuldq` each).
fn wide_products(b: &mut FunctionBuilder, x: Value, y: Value) -> [Value; 2] {
    let low = {
        let (x, y) = (b.ins().swiden_low(x), b.ins().swiden_low(y));
        b.ins().imul(x, y)
    };
    let high = {
        let (x, y) = (b.ins().swiden_high(x), b.ins().swiden_high(y));
        b.ins().imul(x, y)
    };
    [low, high]
}

/// Word `which` (0 low, 1 high) of each 64-bit lane of `pair`, as one `i32x4`.
fn words(b: &mut FunctionBuilder, pair: [Value; 2], which: u8) -> Value {
    let little = MemFlagsData::new().with_endianness(Endianness::Little);
    let [a, c] = pair.map(|v| b.ins().bitcast(types::I8X16, little, v));
    // Bytes 0..16 are `a`'s, 16..32 `c`'s: the chosen word of each of the four 64-bit lanes.
    let mask: Vec<u8> = [0u8, 8, 16, 24]
        .iter()
        .flat_map(|lane| (0..4).map(move |k| lane + 4 * which + k))
        .collect();
    let mask = b.func.dfg.immediates.push(mask.into());
    let picked = b.ins().shuffle(a, c, mask);
    b.ins().bitcast(types::I32X4, little, picked)
}

/// `2^(31 - s)` in each lane, for `s` in `1..=30`: the float with that exponent, converted
/// (exactly, as it is below 2^31).
fn power_of_two(b: &mut FunctionBuilder, s: Value) -> Value {
    let biased = splat_i32(b, 31 + 127);
    let exponent = b.ins().isub(biased, s);
    let bits = b.ins().ishl_imm_u(exponent, 23);
    let little = MemFlagsData::new().with_endianness(Endianness::Little);
    let float = b.ins().bitcast(types::F32X4, little, bits);
    b.ins().fcvt_to_sint_sat(types::I32X4, float)
}
