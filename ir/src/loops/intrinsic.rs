//! Target intrinsics: named calls with a portable definition.
//!
//! The portable definition of every intrinsic here is the function of [`crate::fixedpoint`]
//! or [`crate::floatfn`] it names: the loop interpreter calls exactly that function, and each backend emits a
//! definition that is tested against it (the C backend's runtime helpers are compared with
//! these on random and edge-case inputs). A backend for a target with a matching instruction
//! may emit that instruction instead.

use super::interp::Value;
use super::ScalarType;
use crate::fixedpoint as fp;
use crate::floatfn;
use crate::simd;

/// A named call: the fixed-point helpers of TFLite's reference kernels on `i32` (and one on
/// `i64`) values, and minnow's reproducible float functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Intrinsic {
    /// [`fp::saturating_rounding_doubling_high_mul`]`(a, b)`.
    SaturatingRoundingDoublingHighMul,
    /// [`fp::rounding_divide_by_pot`]`(x, exponent)`.
    RoundingDivideByPot,
    /// [`fp::multiply_by_quantized_multiplier`]`(x, multiplier, shift)`.
    MultiplyByQuantizedMultiplier,
    /// [`fp::multiply_by_quantized_multiplier_high_shift`]`(x, multiplier, high_shift)`: the
    /// same scaling for a non-negative multiplier and a right shift of at least 2, with the
    /// shift given as [`fp::high_shift_of`] computes it.
    MultiplyByQuantizedMultiplierHighShift,
    /// [`fp::multiply_by_quantized_multiplier_high_shift_offset`]`(x, multiplier, high_shift,
    /// rounding)`: the same plus the output offset, which `rounding` holds
    /// ([`fp::high_shift_rounding`]).
    MultiplyByQuantizedMultiplierHighShiftOffset,
    /// [`fp::multiply_by_quantized_multiplier_high_mul`]`(x, multiplier, shift, rounding)`: the
    /// offset form by one 32-bit high multiply, for accumulators below
    /// [`fp::HIGH_MUL_ACC_LIMIT`] on cores without a 64-bit multiply-accumulate, with its shift
    /// and rounding as [`fp::high_mul_form`] gives them.
    MultiplyByQuantizedMultiplierHighMul,
    /// [`fp::multiply_by_quantized_multiplier_i64`]`(x: i64, multiplier, shift)`.
    MultiplyByQuantizedMultiplierWide,
    /// [`fp::multiply_by_quantized_multiplier_smaller_than_one_exp`]`(x, multiplier, shift)`.
    MultiplyByQuantizedMultiplierSmallerThanOneExp,
    /// [`fp::multiply_by_quantized_multiplier_greater_than_one`]`(x, multiplier, left_shift)`.
    MultiplyByQuantizedMultiplierGreaterThanOne,
    /// [`fp::exp_on_negative_values`]`(a, integer_bits)`.
    ExpOnNegativeValues,
    /// [`fp::one_over_one_plus_x_for_x_in_0_1`]`(a)`.
    OneOverOnePlusX,
    /// Number of leading zero bits of `x` read as unsigned (32 for zero).
    CountLeadingZeros,
    /// [`fp::logistic`]`(a, integer_bits)`.
    Logistic,
    /// [`fp::tanh`]`(a, integer_bits)`.
    Tanh,
    /// [`floatfn::exp`]`(x)` on `f32`.
    ExpF32,
    /// [`floatfn::logistic`]`(x)` on `f32`.
    LogisticF32,
    /// [`floatfn::tanh`]`(x)` on `f32`.
    TanhF32,
    /// [`simd::sxtab16`]`(offsets, word)`: bytes 0 and 2 plus 16-bit offsets.
    Sxtab16,
    /// [`simd::sxtab16_ror8`]`(offsets, word)`: bytes 1 and 3 plus 16-bit offsets.
    Sxtab16Ror8,
    /// [`simd::smlad`]`(a, b, acc)`: two 16x16 products added to `acc`.
    Smlad,
    /// [`simd::smlabb`]`(a, b, acc)`: the low halves' product added to `acc`.
    Smlabb,
    /// [`simd::smlatt`]`(a, b, acc)`: the high halves' product added to `acc`.
    Smlatt,
    /// [`simd::winograd_pair`]`(x, w, acc)`: the product of the halves of `x + w` added to
    /// `acc`, by one high multiply (Winograd's inner product on cores without SIMD).
    WinogradPair,
}

impl Intrinsic {
    /// Every intrinsic, for tests and for backends that emit all definitions.
    pub const ALL: [Intrinsic; 23] = [
        Intrinsic::SaturatingRoundingDoublingHighMul,
        Intrinsic::RoundingDivideByPot,
        Intrinsic::MultiplyByQuantizedMultiplier,
        Intrinsic::MultiplyByQuantizedMultiplierHighShift,
        Intrinsic::MultiplyByQuantizedMultiplierHighShiftOffset,
        Intrinsic::MultiplyByQuantizedMultiplierHighMul,
        Intrinsic::MultiplyByQuantizedMultiplierWide,
        Intrinsic::MultiplyByQuantizedMultiplierSmallerThanOneExp,
        Intrinsic::MultiplyByQuantizedMultiplierGreaterThanOne,
        Intrinsic::ExpOnNegativeValues,
        Intrinsic::OneOverOnePlusX,
        Intrinsic::CountLeadingZeros,
        Intrinsic::Logistic,
        Intrinsic::Tanh,
        Intrinsic::ExpF32,
        Intrinsic::LogisticF32,
        Intrinsic::TanhF32,
        Intrinsic::Sxtab16,
        Intrinsic::Sxtab16Ror8,
        Intrinsic::Smlad,
        Intrinsic::Smlabb,
        Intrinsic::Smlatt,
        Intrinsic::WinogradPair,
    ];

    /// The name in the text form; backends prefix it (`minnow_` in C).
    pub fn name(self) -> &'static str {
        match self {
            Intrinsic::SaturatingRoundingDoublingHighMul => "srdhm",
            Intrinsic::RoundingDivideByPot => "rounding_divide_by_pot",
            Intrinsic::MultiplyByQuantizedMultiplier => "mbqm",
            Intrinsic::MultiplyByQuantizedMultiplierHighShift => "mbqm_high_shift",
            Intrinsic::MultiplyByQuantizedMultiplierHighShiftOffset => "mbqm_high_shift_offset",
            Intrinsic::MultiplyByQuantizedMultiplierHighMul => "mbqm_high_mul",
            Intrinsic::MultiplyByQuantizedMultiplierWide => "mbqm_wide",
            Intrinsic::MultiplyByQuantizedMultiplierSmallerThanOneExp => "mbqm_smaller_than_one",
            Intrinsic::MultiplyByQuantizedMultiplierGreaterThanOne => "mbqm_greater_than_one",
            Intrinsic::ExpOnNegativeValues => "exp_on_negative_values",
            Intrinsic::OneOverOnePlusX => "one_over_one_plus_x",
            Intrinsic::CountLeadingZeros => "clz",
            Intrinsic::Logistic => "logistic",
            Intrinsic::Tanh => "tanh",
            Intrinsic::ExpF32 => "expf",
            Intrinsic::LogisticF32 => "logisticf",
            Intrinsic::TanhF32 => "tanhf",
            Intrinsic::Sxtab16 => "sxtab16",
            Intrinsic::Sxtab16Ror8 => "sxtab16_ror8",
            Intrinsic::Smlad => "smlad",
            Intrinsic::Smlabb => "smlabb",
            Intrinsic::Smlatt => "smlatt",
            Intrinsic::WinogradPair => "winograd_pair",
        }
    }

    /// Argument types and result type.
    pub fn signature(self) -> (&'static [ScalarType], ScalarType) {
        use ScalarType::{F32, I32, I64};
        let args: &'static [ScalarType] = match self {
            Intrinsic::ExpF32 | Intrinsic::LogisticF32 | Intrinsic::TanhF32 => {
                return (&[F32], F32)
            }
            Intrinsic::OneOverOnePlusX | Intrinsic::CountLeadingZeros => &[I32],
            Intrinsic::SaturatingRoundingDoublingHighMul
            | Intrinsic::RoundingDivideByPot
            | Intrinsic::ExpOnNegativeValues
            | Intrinsic::Logistic
            | Intrinsic::Tanh
            | Intrinsic::Sxtab16
            | Intrinsic::Sxtab16Ror8 => &[I32, I32],
            Intrinsic::MultiplyByQuantizedMultiplierWide => &[I64, I32, I32],
            Intrinsic::MultiplyByQuantizedMultiplierHighShiftOffset
            | Intrinsic::MultiplyByQuantizedMultiplierHighMul => &[I32, I32, I32, I32],
            Intrinsic::MultiplyByQuantizedMultiplier
            | Intrinsic::MultiplyByQuantizedMultiplierHighShift
            | Intrinsic::MultiplyByQuantizedMultiplierSmallerThanOneExp
            | Intrinsic::MultiplyByQuantizedMultiplierGreaterThanOne
            | Intrinsic::Smlad
            | Intrinsic::Smlabb
            | Intrinsic::Smlatt
            | Intrinsic::WinogradPair => &[I32, I32, I32],
        };
        (args, I32)
    }

    /// The portable definition, on arguments of the types [`Intrinsic::signature`] gives.
    pub fn eval(self, args: &[Value]) -> Value {
        let a = |i: usize| args[i].as_int() as i32;
        let float = |f: fn(f32) -> f32| match args[0] {
            Value::F32(x) => Value::F32(f(x)),
            other => unreachable!("verified: a float intrinsic got {other:?}"),
        };
        let r = match self {
            Intrinsic::ExpF32 => return float(floatfn::exp),
            Intrinsic::LogisticF32 => return float(floatfn::logistic),
            Intrinsic::TanhF32 => return float(floatfn::tanh),
            Intrinsic::SaturatingRoundingDoublingHighMul => {
                fp::saturating_rounding_doubling_high_mul(a(0), a(1))
            }
            Intrinsic::RoundingDivideByPot => fp::rounding_divide_by_pot(a(0), a(1)),
            Intrinsic::MultiplyByQuantizedMultiplier => {
                fp::multiply_by_quantized_multiplier(a(0), a(1), a(2))
            }
            Intrinsic::MultiplyByQuantizedMultiplierHighShift => {
                fp::multiply_by_quantized_multiplier_high_shift(a(0), a(1), a(2))
            }
            Intrinsic::MultiplyByQuantizedMultiplierHighShiftOffset => {
                fp::multiply_by_quantized_multiplier_high_shift_offset(a(0), a(1), a(2), a(3))
            }
            Intrinsic::MultiplyByQuantizedMultiplierHighMul => {
                fp::multiply_by_quantized_multiplier_high_mul(a(0), a(1), a(2), a(3))
            }
            Intrinsic::MultiplyByQuantizedMultiplierWide => {
                fp::multiply_by_quantized_multiplier_i64(args[0].as_int(), a(1), a(2))
            }
            Intrinsic::MultiplyByQuantizedMultiplierSmallerThanOneExp => {
                fp::multiply_by_quantized_multiplier_smaller_than_one_exp(a(0), a(1), a(2))
            }
            Intrinsic::MultiplyByQuantizedMultiplierGreaterThanOne => {
                fp::multiply_by_quantized_multiplier_greater_than_one(a(0), a(1), a(2))
            }
            Intrinsic::ExpOnNegativeValues => fp::exp_on_negative_values(a(0), a(1)),
            Intrinsic::OneOverOnePlusX => fp::one_over_one_plus_x_for_x_in_0_1(a(0)),
            Intrinsic::CountLeadingZeros => (a(0) as u32).leading_zeros() as i32,
            Intrinsic::Logistic => fp::logistic(a(0), a(1)),
            Intrinsic::Tanh => fp::tanh(a(0), a(1)),
            Intrinsic::Sxtab16 => simd::sxtab16(a(0), a(1)),
            Intrinsic::Sxtab16Ror8 => simd::sxtab16_ror8(a(0), a(1)),
            Intrinsic::Smlad => simd::smlad(a(0), a(1), a(2)),
            Intrinsic::Smlabb => simd::smlabb(a(0), a(1), a(2)),
            Intrinsic::Smlatt => simd::smlatt(a(0), a(1), a(2)),
            Intrinsic::WinogradPair => simd::winograd_pair(a(0), a(1), a(2)),
        };
        Value::Int(r as i64, ScalarType::I32)
    }
}
