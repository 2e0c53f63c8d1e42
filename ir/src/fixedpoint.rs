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

// The definitions generated code runs live in `crate::runtime` (copied into generated Rust).
pub use crate::runtime::fixedpoint::{
    exp_on_negative_values, high_mul_form, high_shift_rounding, logistic,
    multiply_by_quantized_multiplier, multiply_by_quantized_multiplier_greater_than_one,
    multiply_by_quantized_multiplier_high_mul, multiply_by_quantized_multiplier_high_shift,
    multiply_by_quantized_multiplier_high_shift_offset, multiply_by_quantized_multiplier_i64,
    multiply_by_quantized_multiplier_smaller_than_one_exp,
    one_minus_x_over_one_plus_x_for_x_in_0_1, one_over_one_plus_x_for_x_in_0_1,
    rounding_divide_by_pot, saturating_rounding_doubling_high_mul,
    saturating_rounding_multiply_by_pot, tanh, HIGH_MUL_ACC_LIMIT,
};

/// The exponent of the final shift in [`multiply_by_quantized_multiplier_high_shift`] for
/// TFLite's `(multiplier, shift)`, where that form applies: a non-negative multiplier and a
/// right shift of at least 2 (`shift <= -2`), as nearly every convolution's scale has.
pub fn high_shift_of(multiplier: i32, shift: i32) -> Option<i32> {
    (multiplier >= 0 && (-31..=-2).contains(&shift)).then_some(-shift - 1)
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

        #[test]
        fn offset_form_adds_the_offset_exactly(
            x: i32,
            multiplier in 0i32..=i32::MAX,
            high_shift in 1i32..=30,
            offset in -32768i32..=32767,
        ) {
            if let Some(rounding) = high_shift_rounding(high_shift, offset) {
                proptest::prop_assert_eq!(
                    multiply_by_quantized_multiplier_high_shift_offset(
                        x, multiplier, high_shift, rounding
                    ),
                    multiply_by_quantized_multiplier_high_shift(x, multiplier, high_shift) + offset
                );
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn high_mul_form_is_the_offset_form(
            x in -(HIGH_MUL_ACC_LIMIT as i32 - 1)..HIGH_MUL_ACC_LIMIT as i32,
            multiplier in 0i32..=i32::MAX,
            high_shift in 1i32..=28,
            offset in -32768i32..=32767,
        ) {
            let Some(rounding) = high_shift_rounding(high_shift, offset) else {
                return Ok(());
            };
            if let Some((shift, rounding4)) = high_mul_form(high_shift, rounding) {
                proptest::prop_assert_eq!(
                    multiply_by_quantized_multiplier_high_mul(x, multiplier, shift, rounding4),
                    multiply_by_quantized_multiplier_high_shift_offset(
                        x, multiplier, high_shift, rounding
                    )
                );
            }
        }
    }

    #[test]
    fn high_mul_form_at_the_edges() {
        let limit = HIGH_MUL_ACC_LIMIT as i32 - 1;
        let xs = [0, 1, -1, limit, -limit, 1 << 20, -(1 << 20) - 1];
        let multipliers = [0, 1, 1 << 30, i32::MAX, 0x5555_5555, (1 << 30) + 1];
        for x in xs {
            for m in multipliers {
                for (high_shift, offset) in [(1, 0), (10, -128), (28, 0), (20, 127)] {
                    let rounding = high_shift_rounding(high_shift, offset).unwrap();
                    let (shift, r4) = high_mul_form(high_shift, rounding).unwrap();
                    assert_eq!(
                        multiply_by_quantized_multiplier_high_mul(x, m, shift, r4),
                        multiply_by_quantized_multiplier_high_shift_offset(
                            x, m, high_shift, rounding
                        ),
                        "x {x} m {m} high shift {high_shift} offset {offset}"
                    );
                }
            }
        }
        assert_eq!(high_mul_form(30, 0), None);
        assert_eq!(high_mul_form(5, 1 << 28), None);
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
