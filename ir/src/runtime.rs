//! The arithmetic generated code computes, in `core`-only Rust with no imports and no tests:
//! TFLite Micro's fixed-point helpers ([`fixedpoint`]), minnow's reproducible float functions
//! ([`floatfn`]) and the portable DSP instructions ([`simd`]).
//!
//! This file is the single source of those definitions: minnow-ir re-exports them from its
//! `fixedpoint`, `floatfn` and `simd` modules (whose tests check them), the
//! loop interpreter calls them, and the Rust emitter copies this file verbatim into every
//! generated `#![no_std]` crate, so interpreted and compiled Rust run the same source.

/// TFLite's integer requantization and gemmlowp's fixed-point transcendental functions.
pub mod fixedpoint {
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
        let rounding = (1 << high_shift) >> 1;
        multiply_by_quantized_multiplier_high_shift_offset(x, multiplier, high_shift, rounding)
    }

    /// [`multiply_by_quantized_multiplier_high_shift`] with its rounding constant and the
    /// output offset added in one: `rounding` is [`high_shift_rounding`]`(high_shift, offset)`
    /// and the result is the high-shift form's plus `offset`. Since `floor((a + o 2^e) / 2^e)
    /// = floor(a / 2^e) + o`, the offset joins the rounding constant, which a per-channel
    /// table then holds: the code neither builds `2^(e-1)` from the shift nor adds the offset.
    pub fn multiply_by_quantized_multiplier_high_shift_offset(
        x: i32,
        multiplier: i32,
        high_shift: i32,
        rounding: i32,
    ) -> i32 {
        debug_assert!(multiplier >= 0 && (1..=30).contains(&high_shift));
        let nudge: i64 = if x < 0 { -(1 << 30) } else { 1 << 30 };
        let high = ((x as i64 * multiplier as i64 + nudge) >> 32) as i32;
        high.wrapping_add(rounding) >> high_shift
    }

    /// The `rounding` argument of [`multiply_by_quantized_multiplier_high_shift_offset`]:
    /// `2^(high_shift - 1) + offset 2^high_shift`, where its size stays below `2^30` (the
    /// high word is at most `2^30` in size, so their sum cannot overflow).
    pub fn high_shift_rounding(high_shift: i32, offset: i32) -> Option<i32> {
        if !(1..=30).contains(&high_shift) {
            return None;
        }
        let r = (1i64 << high_shift >> 1) + ((offset as i64) << high_shift);
        (r.abs() < 1 << 30).then_some(r as i32)
    }

    /// [`multiply_by_quantized_multiplier_high_shift_offset`] by one 32-bit high multiply, for
    /// cores whose only wide product is `mulh` (RISC-V RV32M): `shift` and `rounding` are the
    /// high-shift form's `high_shift + 2` and `4 rounding` ([`high_mul_form`]), and `|x|` is below
    /// [`HIGH_MUL_ACC_LIMIT`].
    ///
    /// The high-shift form is `floor((floor((x m ± 2^30) / 2^32) + r) / 2^e)`, the nudge's sign
    /// that of `x`. Nested floors by powers of two compose, so it is also
    /// `floor((floor((x m ± 2^30) / 2^30) + 4 r) / 2^(e+2))`, and
    /// `floor((x m ± 2^30) / 2^30) = floor(x m / 2^30) ± 1 = mulh(4 x, m) ± 1` where `4 x` fits
    /// in 32 bits. The sum cannot overflow: `|mulh(4 x, m)| < 2^30` and `|4 r| < 2^30`. Seven
    /// RV32 instructions (`slli, mulh, srai, ori, add, add, sra`) where the 64-bit sum and its
    /// carry take eleven.
    pub fn multiply_by_quantized_multiplier_high_mul(
        x: i32,
        multiplier: i32,
        shift: i32,
        rounding: i32,
    ) -> i32 {
        debug_assert!(multiplier >= 0 && (3..=31).contains(&shift));
        let high = ((x.wrapping_shl(2) as i64 * multiplier as i64) >> 32) as i32;
        high.wrapping_add((x >> 31) | 1).wrapping_add(rounding) >> shift
    }

    /// Accumulators must stay below this in size for
    /// [`multiply_by_quantized_multiplier_high_mul`] (`4 x` must fit in 32 bits).
    pub const HIGH_MUL_ACC_LIMIT: i64 = 1 << 29;

    /// The `(shift, rounding)` arguments of [`multiply_by_quantized_multiplier_high_mul`] for
    /// the high-shift form's `(high_shift, rounding)`, where they fit: a rounding constant
    /// below `2^28` in size (so a high shift of at most 28).
    pub fn high_mul_form(high_shift: i32, rounding: i32) -> Option<(i32, i32)> {
        let fits = (1..=28).contains(&high_shift) && (rounding as i64).abs() < 1 << 28;
        fits.then(|| (high_shift + 2, rounding * 4))
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

    /// The raw value of 1.0 in a Q(`integer_bits`) format (the maximum value when `integer_bits`
    /// is zero, since 1.0 is not representable in Q0.31).
    pub fn one(integer_bits: i32) -> i32 {
        if integer_bits == 0 {
            i32::MAX
        } else {
            1 << (31 - integer_bits)
        }
    }

    /// `exp(a)` for `a` in `[-1/4, 0)`, in Q0.31, by a fourth-order Taylor expansion around -1/8.
    pub fn exp_on_interval_between_negative_one_quarter_and_0_excl(a: i32) -> i32 {
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
    pub fn reciprocal_of_half_denominator(half_denominator: i32) -> i32 {
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
    pub fn rounding_half_sum(a: i32, b: i32) -> i32 {
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
        let positive = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(
            abs.wrapping_neg(),
            integer_bits,
        ));
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
        let t =
            one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(n, integer_bits + 1));
        if negative {
            t.wrapping_neg()
        } else {
            t
        }
    }
}

/// `exp`, `logistic` and `tanh` on `f32` from single-precision operations in a fixed order.
pub mod floatfn {
    /// `log2(e)`, rounded to `f32`.
    pub const LOG2_E: f32 = core::f32::consts::LOG2_E;

    /// The high part of `ln(2)` (0.693145751953125): few enough bits that `n * LN2_HIGH` is exact
    /// for every `n` used.
    pub const LN2_HIGH: f32 = f32::from_bits(0x3f31_7200);

    /// `ln(2) - LN2_HIGH`, rounded to `f32`.
    pub const LN2_LOW: f32 = 1.428_606_8e-6;

    /// `1.5 * 2^23`: adding and subtracting it rounds an `f32` of magnitude below 2^22 to an
    /// integer (ties to even).
    pub const ROUNDING_SHIFTER: f32 = 12_582_912.0;

    /// Above this, `exp` overflows to infinity.
    pub const EXP_OVERFLOW: f32 = 88.722_83;

    /// Below this, `exp` underflows to zero.
    pub const EXP_UNDERFLOW: f32 = -103.972_08;

    /// Taylor coefficients `1/k!` for k = 2..=7 of `exp(r)` on `|r| <= ln(2)/2`.
    pub const EXP_COEFFICIENTS: [f32; 6] = [
        0.5,
        0.166_666_67,
        0.041_666_668,
        0.008_333_334,
        0.001_388_888_9,
        0.000_198_412_7,
    ];

    /// Below this magnitude `tanh` uses its odd Taylor series (above it, `1 - 2 / (e^2x + 1)`
    /// loses no more than a bit to cancellation).
    pub const TANH_SERIES_LIMIT: f32 = 0.55;

    /// Taylor coefficients of `tanh(x) / x - 1` in powers of `x^2`, from `x^2` to `x^20`.
    pub const TANH_COEFFICIENTS: [f32; 10] = [
        -0.333_333_34,
        0.133_333_34,
        -0.053_968_254,
        0.021_869_488,
        -0.008_863_236,
        0.003_592_128,
        -0.001_455_834_4,
        0.000_590_027_4,
        -0.000_239_129_12,
        0.000_096_915_38,
    ];

    /// `e^x`.
    pub fn exp(x: f32) -> f32 {
        if x.is_nan() {
            return x;
        }
        if x > EXP_OVERFLOW {
            return f32::INFINITY;
        }
        if x < EXP_UNDERFLOW {
            return 0.0;
        }
        // x = n ln2 + r with |r| <= ln2 / 2 (Cody and Waite's two-part reduction).
        let n = (x * LOG2_E + ROUNDING_SHIFTER) - ROUNDING_SHIFTER;
        let r = (x - n * LN2_HIGH) - n * LN2_LOW;
        let c = EXP_COEFFICIENTS;
        let q = c[0] + r * (c[1] + r * (c[2] + r * (c[3] + r * (c[4] + r * c[5]))));
        let p = 1.0 + (r + (r * r) * q);
        // 2^n in two factors, so that each is a normal number even where the result is not.
        let k = n as i32;
        let half = k >> 1;
        (p * power_of_two(half)) * power_of_two(k - half)
    }

    /// `2^k` for `k` in -126..=127.
    pub fn power_of_two(k: i32) -> f32 {
        f32::from_bits(((k + 127) as u32) << 23)
    }

    /// `1 / (1 + e^-x)`, computed as `e^x / (1 + e^x)` for negative `x` so that tiny results
    /// keep their precision.
    pub fn logistic(x: f32) -> f32 {
        if x < 0.0 {
            let e = exp(x);
            e / (1.0 + e)
        } else {
            1.0 / (1.0 + exp(-x))
        }
    }

    /// `tanh(x)`.
    pub fn tanh(x: f32) -> f32 {
        let a = x.abs();
        let magnitude = if a < TANH_SERIES_LIMIT {
            let s = a * a;
            let series = TANH_COEFFICIENTS
                .iter()
                .rev()
                .fold(0.0f32, |acc, c| c + s * acc);
            a + a * (s * series)
        } else {
            1.0 - 2.0 / (exp(a + a) + 1.0)
        };
        // Keeps the sign of zero and passes NaN through.
        if x < 0.0 {
            -magnitude
        } else if x > 0.0 {
            magnitude
        } else {
            x
        }
    }
}

/// The Armv7E-M DSP instructions on plain integers.
pub mod simd {
    /// The two 16-bit halves of `a` as (low, high).
    pub fn halves(a: i32) -> (i32, i32) {
        (a as i16 as i32, (a >> 16) as i16 as i32)
    }

    /// Two 16-bit halves as one word.
    pub fn join(lo: i32, hi: i32) -> i32 {
        ((lo as u32 & 0xffff) | ((hi as u32) << 16)) as i32
    }

    /// SXTAB16: bytes 0 and 2 of `x`, sign-extended, added to the halves of `a` (each half
    /// wrapping at 16 bits).
    pub fn sxtab16(a: i32, x: i32) -> i32 {
        let (lo, hi) = halves(a);
        join(lo + (x as i8 as i32), hi + ((x >> 16) as i8 as i32))
    }

    /// SXTAB16 with `x` rotated right by 8 bits: bytes 1 and 3.
    pub fn sxtab16_ror8(a: i32, x: i32) -> i32 {
        sxtab16(a, x.rotate_right(8))
    }

    /// SMLAD: `acc + lo(a) * lo(b) + hi(a) * hi(b)`, wrapping at 32 bits.
    pub fn smlad(a: i32, b: i32, acc: i32) -> i32 {
        let ((a0, a1), (b0, b1)) = (halves(a), halves(b));
        acc.wrapping_add(a0 * b0).wrapping_add(a1 * b1)
    }

    /// SMLABB: `acc + lo(a) * lo(b)`, wrapping at 32 bits.
    pub fn smlabb(a: i32, b: i32, acc: i32) -> i32 {
        acc.wrapping_add(halves(a).0 * halves(b).0)
    }

    /// SMLATT: `acc + hi(a) * hi(b)`, wrapping at 32 bits.
    pub fn smlatt(a: i32, b: i32, acc: i32) -> i32 {
        acc.wrapping_add(halves(a).1 * halves(b).1)
    }

    /// One step of Winograd's inner product on a core without SIMD: with `s = x + w`
    /// (wrapping), `acc + mulh(s, s << 16)`, the high word of the 64-bit product, wrapping at
    /// 32 bits. Three instructions and the add on RV32IM (`add`, `slli`, `mulh`, `add`).
    /// Where `s`'s low half `lo` (sign-extended) has `|lo| <= 255`, the high product is
    /// exactly `lo * (s - lo) / 65536`: the product of the word's two halves.
    pub fn winograd_pair(x: i32, w: i32, acc: i32) -> i32 {
        let s = x.wrapping_add(w);
        let high = (i64::from(s) * i64::from(s.wrapping_shl(16))) >> 32;
        acc.wrapping_add(high as i32)
    }
}
