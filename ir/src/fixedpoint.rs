//! The integer arithmetic of TFLite Micro's reference kernels, bit for bit.
//!
//! This is the one place minnow defines quantized arithmetic. The reference interpreter calls
//! these functions; the lowering and the C, Rust and JIT backends emit exactly these formulas.
//! TFLite Micro is built without `TFLITE_SINGLE_ROUNDING`, so requantization is gemmlowp's
//! double rounding: a saturating rounding doubling high multiply followed by a rounding
//! (half away from zero) arithmetic right shift.
//!
//! The second half holds gemmlowp's fixed-point transcendental functions (`exp` on negative
//! values, `1/(1+x)`, logistic, tanh) on raw `i32` values, with the number of integer bits of the
//! Q format passed at run time instead of as a template parameter.
//!
//! ```
//! use minnow_ir::fixedpoint::{quantize_multiplier, multiply_by_quantized_multiplier};
//! let (m, shift) = quantize_multiplier(0.25);
//! assert_eq!(multiply_by_quantized_multiplier(1000, m, shift), 250);
//! ```

/// `(a * b * 2) >> 32` rounded to nearest, saturating the single overflow case
/// `i32::MIN * i32::MIN` (ARM's `VQRDMULH`).
pub fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == b && a == i32::MIN {
        return i32::MAX;
    }
    let ab = a as i64 * b as i64;
    let nudge: i64 = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    // C++ integer division truncates toward zero, as Rust's does.
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// `x / 2^exponent` rounded to nearest, ties away from zero (a rounding arithmetic shift).
/// `exponent` is in `0..=31`.
pub fn rounding_divide_by_pot(x: i32, exponent: i32) -> i32 {
    debug_assert!((0..=31).contains(&exponent));
    let mask = ((1i64 << exponent) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i32::from(x < 0);
    (x >> exponent) + i32::from(remainder > threshold)
}

/// `x * 2^exponent`: a saturating left shift for positive exponents, a rounding right shift for
/// negative ones (gemmlowp's `SaturatingRoundingMultiplyByPOT`).
pub fn saturating_rounding_multiply_by_pot(x: i32, exponent: i32) -> i32 {
    if exponent > 0 {
        let threshold = (1i32 << (31 - exponent)) - 1;
        if x > threshold {
            i32::MAX
        } else if x < -threshold {
            i32::MIN
        } else {
            x << exponent
        }
    } else if exponent < 0 {
        rounding_divide_by_pot(x, -exponent)
    } else {
        x
    }
}

/// Scales `x` by `multiplier * 2^shift / 2^31` (TFLite's `MultiplyByQuantizedMultiplier` for
/// 32-bit values): a left shift for positive `shift`, then the doubling high multiply, then a
/// rounding right shift for negative `shift`.
pub fn multiply_by_quantized_multiplier(x: i32, multiplier: i32, shift: i32) -> i32 {
    let left = shift.max(0);
    let right = (-shift).max(0);
    rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(x.wrapping_shl(left as u32), multiplier),
        right,
    )
}

/// The exponent of the final shift in [`multiply_by_quantized_multiplier_high_shift`] for
/// TFLite's `(multiplier, shift)`, where that form applies: a non-negative multiplier and a
/// right shift of at least 2 (`shift <= -2`), as nearly every convolution's scale has.
pub fn high_shift_of(multiplier: i32, shift: i32) -> Option<i32> {
    (multiplier >= 0 && (-31..=-2).contains(&shift)).then_some(-shift - 1)
}

/// [`multiply_by_quantized_multiplier`]`(x, multiplier, -(high_shift + 1))` for a
/// non-negative `multiplier` and `high_shift` in `1..=30`, as one 64-bit multiply-accumulate
/// and one rounding shift of its high word.
///
/// With `p = x * multiplier` and `e = high_shift + 1`, TFLite computes
/// `r = floor((p + 2^30) / 2^31)` (the doubling high multiply; it cannot saturate, as the
/// multiplier is never `i32::MIN`), then rounds `r / 2^e` half away from zero, which is
/// `floor((r + 2^(e-1) - [r < 0]) / 2^e)`. Since `floor((floor(a) + c) / n) = floor((a + c) / n)`
/// for integers `c` and `n > 0`, both steps are `floor((p + 2^30 + 2^(30+e) - [r < 0] 2^31) /
/// 2^(31+e))`. `r < 0` exactly when `p < -2^30`; where `x < 0` but `p >= -2^30`, taking `x < 0`
/// instead leaves the numerator in `[0, 2^(31+e))` for `e >= 1`, so the quotient is 0 either
/// way. The sign of `x` then picks the nudge `±2^30` of a 64-bit sum whose high word `h` is
/// at most `2^30` in size, and the result is `floor((h + 2^(e-2)) / 2^(e-1))`: an addition that
/// cannot overflow and an arithmetic shift.
pub fn multiply_by_quantized_multiplier_high_shift(
    x: i32,
    multiplier: i32,
    high_shift: i32,
) -> i32 {
    debug_assert!(multiplier >= 0 && (1..=30).contains(&high_shift));
    let nudge: i64 = if x < 0 { -(1 << 30) } else { 1 << 30 };
    let high = ((x as i64 * multiplier as i64 + nudge) >> 32) as i32;
    (high + ((1 << high_shift) >> 1)) >> high_shift
}

/// TFLite's `MultiplyByQuantizedMultiplier` for 64-bit accumulators (16x8 kernels): the
/// multiplier is first reduced to 16 bits, then one rounding shift.
pub fn multiply_by_quantized_multiplier_i64(x: i64, multiplier: i32, shift: i32) -> i32 {
    let reduced: i64 = if multiplier < 0x7FFF_0000 {
        ((multiplier as i64) + (1 << 15)) >> 16
    } else {
        0x7FFF
    };
    let total_shift = 15 - shift;
    let rounded = x
        .wrapping_mul(reduced)
        .wrapping_add(1i64 << (total_shift - 1));
    (rounded >> total_shift) as i32
}

/// TFLite's `MultiplyByQuantizedMultiplierSmallerThanOneExp` (`shift <= 0`): the doubling high
/// multiply, then a rounding right shift by `-shift`.
pub fn multiply_by_quantized_multiplier_smaller_than_one_exp(
    x: i32,
    multiplier: i32,
    shift: i32,
) -> i32 {
    rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, multiplier), -shift)
}

/// `x * multiplier * 2^left_shift` for multipliers known to be at least one (softmax's input
/// scaling): `SaturatingRoundingDoublingHighMul(x * 2^left_shift, multiplier)`.
pub fn multiply_by_quantized_multiplier_greater_than_one(
    x: i32,
    multiplier: i32,
    left_shift: i32,
) -> i32 {
    saturating_rounding_doubling_high_mul(
        x.wrapping_mul(1i32.wrapping_shl(left_shift as u32)),
        multiplier,
    )
}

/// Rounds half away from zero (C's `round`, TFLite's `TfLiteRound`).
pub fn round_half_away(x: f64) -> f64 {
    x.round()
}

/// Splits a positive real multiplier into a Q0.31 significand and a power-of-two exponent
/// (TFLite's `QuantizeMultiplier`): `real ≈ significand * 2^shift / 2^31`.
pub fn quantize_multiplier(real: f64) -> (i32, i32) {
    if real == 0.0 || !real.is_finite() {
        return (0, 0);
    }
    let (q, mut shift) = frexp(real);
    let mut q_fixed = round_half_away(q * (1i64 << 31) as f64) as i64;
    if q_fixed == 1i64 << 31 {
        q_fixed /= 2;
        shift += 1;
    }
    if shift < -31 {
        shift = 0;
        q_fixed = 0;
    }
    (q_fixed as i32, shift)
}

/// C's `frexp`: `x = m * 2^e` with `0.5 <= |m| < 1`.
pub fn frexp(x: f64) -> (f64, i32) {
    if x == 0.0 || !x.is_finite() {
        return (x, 0);
    }
    let bits = x.to_bits();
    let exp_bits = ((bits >> 52) & 0x7ff) as i32;
    if exp_bits == 0 {
        // Subnormal: scale into the normal range first.
        let (m, e) = frexp(x * (1u64 << 54) as f64);
        return (m, e - 54);
    }
    let e = exp_bits - 1022;
    let m = f64::from_bits((bits & !(0x7ffu64 << 52)) | (1022u64 << 52));
    (m, e)
}

/// TFLite's `PreprocessSoftmaxScaling`: the multiplier and left shift that map an input
/// difference to Q(`input_integer_bits`).(31 - `input_integer_bits`).
pub fn preprocess_softmax_scaling(
    beta: f64,
    input_scale: f64,
    input_integer_bits: i32,
) -> (i32, i32) {
    let max_real = (1i64 << 31) as f64 - 1.0;
    let real = (beta * input_scale * (1i64 << (31 - input_integer_bits)) as f64).min(max_real);
    quantize_multiplier(real)
}

/// TFLite's `CalculateInputRadius`: the largest input magnitude that does not saturate after
/// scaling by `2^input_left_shift` into `input_integer_bits` integer bits.
pub fn calculate_input_radius(
    input_integer_bits: i32,
    input_left_shift: i32,
    total_signed_bits: i32,
) -> i32 {
    let max_input_rescaled = ((1i64 << input_integer_bits) - 1) as f64
        * (1i64 << (total_signed_bits - input_integer_bits)) as f64
        / (1i64 << input_left_shift) as f64;
    max_input_rescaled.floor() as i32
}

// ---- gemmlowp fixed-point functions on raw values -------------------------------------------

/// The raw value of 1.0 in a Q(`integer_bits`) format (the maximum value when `integer_bits`
/// is zero, since 1.0 is not representable in Q0.31).
fn one(integer_bits: i32) -> i32 {
    if integer_bits == 0 {
        i32::MAX
    } else {
        1 << (31 - integer_bits)
    }
}

/// `exp(a)` for `a` in `[-1/4, 0)`, in Q0.31, by a fourth-order Taylor expansion around -1/8.
fn exp_on_interval_between_negative_one_quarter_and_0_excl(a: i32) -> i32 {
    const CONSTANT_TERM: i32 = 1_895_147_668; // exp(-1/8)
    const ONE_THIRD: i32 = 715_827_883;
    let mul = saturating_rounding_doubling_high_mul;
    let x = a.wrapping_add(1 << 28);
    let x2 = mul(x, x);
    let x3 = mul(x2, x);
    let x4 = mul(x2, x2);
    let x4_over_4 = saturating_rounding_multiply_by_pot(x4, -2);
    let poly = saturating_rounding_multiply_by_pot(
        mul(x4_over_4.wrapping_add(x3), ONE_THIRD).wrapping_add(x2),
        -1,
    );
    CONSTANT_TERM.wrapping_add(mul(CONSTANT_TERM, x.wrapping_add(poly)))
}

/// `exp(a)` for `a <= 0` given in Q(`integer_bits`), result in Q0.31 (gemmlowp's
/// `exp_on_negative_values`).
pub fn exp_on_negative_values(a: i32, integer_bits: i32) -> i32 {
    let fractional_bits = 31 - integer_bits;
    let one_quarter = 1i32 << (fractional_bits - 2);
    let mask = one_quarter - 1;
    let a_mod_quarter_minus_one_quarter = (a & mask).wrapping_sub(one_quarter);
    let mut result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        saturating_rounding_multiply_by_pot(a_mod_quarter_minus_one_quarter, integer_bits),
    );
    let remainder = a_mod_quarter_minus_one_quarter.wrapping_sub(a);
    const BARREL: [(i32, i32); 7] = [
        (-2, 1_672_461_947), // exp(-1/4)
        (-1, 1_302_514_674), // exp(-1/2)
        (0, 790_015_084),    // exp(-1)
        (1, 290_630_308),    // exp(-2)
        (2, 39_332_535),     // exp(-4)
        (3, 720_401),        // exp(-8)
        (4, 242),            // exp(-16)
    ];
    for (exponent, multiplier) in BARREL {
        if integer_bits > exponent {
            let shift = fractional_bits + exponent;
            if remainder & (1 << shift) != 0 {
                result = saturating_rounding_doubling_high_mul(result, multiplier);
            }
        }
    }
    if integer_bits > 5 {
        let clamp = -(1i32 << (36 - integer_bits));
        if a < clamp {
            result = 0;
        }
    }
    if a == 0 {
        result = one(0);
    }
    result
}

/// Newton–Raphson iterations shared by `1/(1+x)` and `(1-x)/(1+x)`: returns `x ≈ 1/half_denominator`
/// in Q2.29.
fn reciprocal_of_half_denominator(half_denominator: i32) -> i32 {
    const C48_OVER_17: i32 = 1_515_870_810;
    const NEG_C32_OVER_17: i32 = -1_010_580_540;
    let mul = saturating_rounding_doubling_high_mul;
    let mut x = C48_OVER_17.wrapping_add(mul(half_denominator, NEG_C32_OVER_17));
    for _ in 0..3 {
        let one_minus = one(2).wrapping_sub(mul(half_denominator, x));
        x = x.wrapping_add(saturating_rounding_multiply_by_pot(mul(x, one_minus), 2));
    }
    x
}

/// gemmlowp's `RoundingHalfSum` for 32-bit values: `(a + b) / 2` rounded away from zero.
fn rounding_half_sum(a: i32, b: i32) -> i32 {
    let sum = a as i64 + b as i64;
    let sign = if sum >= 0 { 1 } else { -1 };
    ((sum + sign) / 2) as i32
}

/// `1 / (1 + a)` for `a` in `[0, 1)`, both in Q0.31.
pub fn one_over_one_plus_x_for_x_in_0_1(a: i32) -> i32 {
    let x = reciprocal_of_half_denominator(rounding_half_sum(a, one(0)));
    // ExactMulByPot<-1> relabels Q2 as Q1; Rescale<0> then shifts left by one.
    saturating_rounding_multiply_by_pot(x, 1)
}

/// `(1 - a) / (1 + a)` for `a` in `[0, 1)`, both in Q0.31.
pub fn one_minus_x_over_one_plus_x_for_x_in_0_1(a: i32) -> i32 {
    let x = reciprocal_of_half_denominator(rounding_half_sum(a, one(0)));
    saturating_rounding_multiply_by_pot(x.wrapping_sub(one(2)), 2)
}

/// The logistic function of `a` in Q(`integer_bits`), result in Q0.31.
pub fn logistic(a: i32, integer_bits: i32) -> i32 {
    if a == 0 {
        return 1 << 30;
    }
    let abs = if a > 0 { a } else { a.wrapping_neg() };
    let positive =
        one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(abs.wrapping_neg(), integer_bits));
    if a > 0 {
        positive
    } else {
        one(0).wrapping_sub(positive)
    }
}

/// The hyperbolic tangent of `a` in Q(`integer_bits`), result in Q0.31.
pub fn tanh(a: i32, integer_bits: i32) -> i32 {
    if a == 0 {
        return 0;
    }
    let negative = a < 0;
    let n = if negative { a } else { a.wrapping_neg() };
    // ExactMulByPot<1>: the same raw value read with one more integer bit is 2n.
    let t = one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(n, integer_bits + 1));
    if negative {
        t.wrapping_neg()
    } else {
        t
    }
}

/// TFLite's `GetReciprocal`: `1 / x` for `x` in Q(`x_integer_digits`), as a Q0.31 value and the
/// number of bits the true reciprocal lies above it.
pub fn get_reciprocal(x: i32, x_integer_digits: i32) -> (i32, i32) {
    let headroom_plus_one = (x as u32).leading_zeros() as i32;
    let num_bits_over_unit = x_integer_digits - headroom_plus_one;
    let shifted_sum_minus_one =
        ((x as u32).wrapping_shl(headroom_plus_one as u32)).wrapping_sub(1 << 31) as i32;
    (
        one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one),
        num_bits_over_unit,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to_f(raw: i32, integer_bits: i32) -> f64 {
        raw as f64 / (1i64 << (31 - integer_bits)) as f64
    }

    fn from_f(x: f64, integer_bits: i32) -> i32 {
        (x * (1i64 << (31 - integer_bits)) as f64).round() as i32
    }

    #[test]
    fn doubling_high_mul_saturates_min_times_min() {
        assert_eq!(
            saturating_rounding_doubling_high_mul(i32::MIN, i32::MIN),
            i32::MAX
        );
        assert_eq!(
            saturating_rounding_doubling_high_mul(1 << 30, 1 << 30),
            1 << 29
        );
        assert_eq!(
            saturating_rounding_doubling_high_mul(-(1 << 30), 1 << 30),
            -(1 << 29)
        );
    }

    #[test]
    fn rounding_shift_rounds_ties_away_from_zero() {
        assert_eq!(rounding_divide_by_pot(3, 1), 2);
        assert_eq!(rounding_divide_by_pot(-3, 1), -2);
        assert_eq!(rounding_divide_by_pot(5, 2), 1);
        assert_eq!(rounding_divide_by_pot(-5, 2), -1);
        assert_eq!(rounding_divide_by_pot(-6, 2), -2);
        assert_eq!(rounding_divide_by_pot(i32::MIN, 31), -1);
    }

    #[test]
    fn quantize_multiplier_matches_frexp() {
        assert_eq!(quantize_multiplier(0.5), (1 << 30, 0));
        assert_eq!(quantize_multiplier(1.0), (1 << 30, 1));
        assert_eq!(quantize_multiplier(0.0), (0, 0));
        // Just below a power of two rounds up to 2^31 and is renormalised.
        assert_eq!(quantize_multiplier(0.999_999_999_9), (1 << 30, 1));
        assert_eq!(quantize_multiplier(1e-12), (0, 0));
        assert_eq!(frexp(3.0), (0.75, 2));
        assert_eq!(frexp(-0.375), (-0.75, -1));
    }

    #[test]
    fn requantize_matches_the_real_product() {
        for &(real, x) in &[
            (0.0123, 12345),
            (0.75, -1000),
            (3.5, 77),
            (0.000_31, 9_000_000),
        ] {
            let (m, s) = quantize_multiplier(real);
            let got = multiply_by_quantized_multiplier(x, m, s);
            let want = (x as f64 * real).round() as i32;
            assert!((got - want).abs() <= 1, "{real} * {x}: {got} vs {want}");
        }
        let (m, s) = quantize_multiplier(0.0123);
        // The 64-bit path first reduces the multiplier to 16 bits: about 1e-5 relative precision.
        let wide = multiply_by_quantized_multiplier_i64(1 << 36, m, s) as f64;
        assert!((wide / (0.0123 * (1u64 << 36) as f64) - 1.0).abs() < 1e-4);
    }

    proptest::proptest! {
        #[test]
        fn high_shift_form_is_tflites_requantization(
            x: i32,
            multiplier in 0i32..=i32::MAX,
            shift in -31i32..=-2,
        ) {
            let high_shift = high_shift_of(multiplier, shift).expect("in the form's domain");
            proptest::prop_assert_eq!(
                multiply_by_quantized_multiplier_high_shift(x, multiplier, high_shift),
                multiply_by_quantized_multiplier(x, multiplier, shift)
            );
        }
    }

    #[test]
    fn high_shift_form_at_the_edges() {
        let xs = [
            0,
            1,
            -1,
            i32::MAX,
            i32::MIN,
            i32::MIN + 1,
            1 << 30,
            -(1 << 30),
        ];
        let multipliers = [0, 1, 1 << 30, i32::MAX, (1 << 30) + 12345];
        for x in xs {
            for m in multipliers {
                for shift in -31..=-2 {
                    let e = high_shift_of(m, shift).expect("in the domain");
                    assert_eq!(
                        multiply_by_quantized_multiplier_high_shift(x, m, e),
                        multiply_by_quantized_multiplier(x, m, shift),
                        "x {x} m {m} shift {shift}"
                    );
                }
            }
        }
        // Exact ties round away from zero, as TFLite's rounding shift does.
        // With a multiplier of 2^30, r = floor((x + 1) / 2): x = 3 * 2^21 gives r / 2^21 = 1.5.
        for (x, want) in [
            (3 << 21, 2),
            (-(3 << 21), -2),
            (5 << 21, 3),
            (-(5 << 21), -3),
        ] {
            assert_eq!(multiply_by_quantized_multiplier(x, 1 << 30, -21), want);
            assert_eq!(
                multiply_by_quantized_multiplier_high_shift(x, 1 << 30, 20),
                want
            );
        }
        assert_eq!(high_shift_of(1 << 30, -1), None);
        assert_eq!(high_shift_of(-5, -7), None);
        assert_eq!(high_shift_of(1 << 30, 3), None);
    }

    #[test]
    fn saturation_at_both_ends() {
        let (m, s) = quantize_multiplier(4.0);
        assert_eq!(
            saturating_rounding_multiply_by_pot(i32::MAX / 2, 2),
            i32::MAX
        );
        assert_eq!(
            saturating_rounding_multiply_by_pot(i32::MIN / 2, 2),
            i32::MIN
        );
        assert_eq!(multiply_by_quantized_multiplier(100, m, s), 400);
    }

    #[test]
    fn exp_is_accurate_on_negative_values() {
        for &x in &[0.0, -0.1, -0.25, -1.0, -2.5, -7.9, -15.0] {
            let got = to_f(exp_on_negative_values(from_f(x, 5), 5), 0);
            assert!((got - f64::exp(x)).abs() < 1e-6, "exp({x}) = {got}");
        }
    }

    #[test]
    fn reciprocal_logistic_and_tanh_are_accurate() {
        for &x in &[0.0, 0.3, 0.9] {
            let got = to_f(one_over_one_plus_x_for_x_in_0_1(from_f(x, 0)), 0);
            assert!((got - 1.0 / (1.0 + x)).abs() < 1e-6);
        }
        for &x in &[-6.0, -1.0, 0.0, 0.5, 3.0] {
            let l = to_f(logistic(from_f(x, 4), 4), 0);
            assert!(
                (l - 1.0 / (1.0 + f64::exp(-x))).abs() < 1e-6,
                "logistic({x}) = {l}"
            );
            let t = to_f(tanh(from_f(x, 4), 4), 0);
            assert!((t - x.tanh()).abs() < 1e-6, "tanh({x}) = {t}");
        }
        let (r, bits) = get_reciprocal(from_f(2.5, 12), 12);
        assert!((to_f(r, 0) * f64::powi(2.0, -bits) - 0.4).abs() < 1e-6);
    }
}
