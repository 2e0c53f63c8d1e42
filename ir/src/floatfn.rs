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

// The definitions generated code runs live in `crate::runtime` (copied into generated Rust).
pub use crate::runtime::floatfn::{
    exp, logistic, power_of_two, tanh, EXP_COEFFICIENTS, EXP_OVERFLOW, EXP_UNDERFLOW, LN2_HIGH,
    LN2_LOW, LOG2_E, ROUNDING_SHIFTER, TANH_COEFFICIENTS, TANH_SERIES_LIMIT,
};

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
