//! `exp`, `logistic` and `tanh` on `f32` with one definition everywhere.
//!
//! Float SOFTMAX, LOGISTIC and TANH need these functions, and each C library computes them
//! differently, so the host's `expf` and a board's would not agree to the bit. minnow defines
//! them here from single-precision additions, multiplications and divisions only, each rounded
//! once (IEEE 754), in a fixed order. The reference interpreter calls these, and the C backend
//! emits the same operations in the same order (compiled without floating-point contraction),
//! so every engine gives identical bits. The results are within a few ulp of the true values.
//!
//! ```
//! use minnow_ir::floatfn::{exp, logistic, tanh};
//! assert_eq!(exp(0.0), 1.0);
//! assert_eq!(logistic(0.0), 0.5);
//! assert_eq!(tanh(20.0), 1.0);
//! assert!((exp(1.0) - std::f32::consts::E).abs() <= f32::EPSILON * 4.0);
//! ```

/// `log2(e)`, rounded to `f32`.
pub const LOG2_E: f32 = std::f32::consts::LOG2_E;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between `got` and the `f64` value `want`.
    fn ulps(got: f32, want: f64) -> f64 {
        let w = want as f32;
        if got == w {
            return 0.0;
        }
        let ulp = f32::from_bits(w.abs().to_bits() + 1) - w.abs();
        ((got as f64 - want) / ulp.max(f32::from_bits(1)) as f64).abs()
    }

    fn samples() -> impl Iterator<Item = f32> {
        // Every 997th float in [-110, 110] plus the boundaries.
        let lo = (-110.0f32).to_bits();
        (0..lo)
            .step_by(997)
            .map(f32::from_bits)
            .flat_map(|x| [x, -x])
            .filter(|x| x.abs() <= 110.0)
            .chain([
                0.0,
                -0.0,
                EXP_OVERFLOW,
                EXP_UNDERFLOW,
                TANH_SERIES_LIMIT,
                -TANH_SERIES_LIMIT,
            ])
    }

    #[test]
    fn exp_is_within_two_ulp() {
        for x in samples() {
            let want = (x as f64).exp();
            if want > f32::MAX as f64 {
                assert_eq!(exp(x), f32::INFINITY);
            } else {
                assert!(
                    ulps(exp(x), want) <= 2.0,
                    "exp({x}) = {}, not {want}",
                    exp(x)
                );
            }
        }
    }

    #[test]
    fn logistic_and_tanh_are_within_a_few_ulp() {
        for x in samples() {
            let want = 1.0 / (1.0 + (-(x as f64)).exp());
            assert!(
                ulps(logistic(x), want) <= 3.0,
                "logistic({x}) = {}",
                logistic(x)
            );
            let want = (x as f64).tanh();
            assert!(
                ulps(tanh(x), want) <= 4.0,
                "tanh({x}) = {}, not {want}",
                tanh(x)
            );
        }
    }

    #[test]
    fn special_values() {
        assert!(exp(f32::NAN).is_nan());
        assert_eq!(exp(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(tanh(f32::INFINITY), 1.0);
        assert_eq!(tanh(f32::NEG_INFINITY), -1.0);
        assert!(tanh(-0.0).is_sign_negative());
        assert!(tanh(f32::NAN).is_nan());
        assert_eq!(logistic(-200.0), 0.0);
        assert_eq!(logistic(200.0), 1.0);
        // Subnormal results come out gradually.
        assert!(exp(-100.0) > 0.0 && exp(-100.0) < f32::MIN_POSITIVE);
    }
}
