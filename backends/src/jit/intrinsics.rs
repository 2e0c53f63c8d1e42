//! The intrinsics JIT-compiled code calls: `extern "C"` shims over `minnow_ir::runtime`, the
//! definitions the loop interpreter runs, registered with the JIT by name.

use minnow_ir::loops::Intrinsic;
use minnow_ir::runtime::{fixedpoint as fp, floatfn, simd};

extern "C" fn srdhm(a: i32, b: i32) -> i32 {
    fp::saturating_rounding_doubling_high_mul(a, b)
}
extern "C" fn rounding_divide_by_pot(x: i32, e: i32) -> i32 {
    fp::rounding_divide_by_pot(x, e)
}
extern "C" fn mbqm(x: i32, m: i32, s: i32) -> i32 {
    fp::multiply_by_quantized_multiplier(x, m, s)
}
extern "C" fn mbqm_high_shift(x: i32, m: i32, s: i32) -> i32 {
    fp::multiply_by_quantized_multiplier_high_shift(x, m, s)
}
extern "C" fn mbqm_high_shift_offset(x: i32, m: i32, s: i32, r: i32) -> i32 {
    fp::multiply_by_quantized_multiplier_high_shift_offset(x, m, s, r)
}
extern "C" fn mbqm_high_mul(x: i32, m: i32, s: i32, r: i32) -> i32 {
    fp::multiply_by_quantized_multiplier_high_mul(x, m, s, r)
}
extern "C" fn mbqm_wide(x: i64, m: i32, s: i32) -> i32 {
    fp::multiply_by_quantized_multiplier_i64(x, m, s)
}
extern "C" fn mbqm_smaller_than_one(x: i32, m: i32, s: i32) -> i32 {
    fp::multiply_by_quantized_multiplier_smaller_than_one_exp(x, m, s)
}
extern "C" fn mbqm_greater_than_one(x: i32, m: i32, s: i32) -> i32 {
    fp::multiply_by_quantized_multiplier_greater_than_one(x, m, s)
}
extern "C" fn exp_on_negative_values(a: i32, bits: i32) -> i32 {
    fp::exp_on_negative_values(a, bits)
}
extern "C" fn one_over_one_plus_x(a: i32) -> i32 {
    fp::one_over_one_plus_x_for_x_in_0_1(a)
}
extern "C" fn clz(x: i32) -> i32 {
    (x as u32).leading_zeros() as i32
}
extern "C" fn logistic(a: i32, bits: i32) -> i32 {
    fp::logistic(a, bits)
}
extern "C" fn tanh(a: i32, bits: i32) -> i32 {
    fp::tanh(a, bits)
}
extern "C" fn expf(x: f32) -> f32 {
    floatfn::exp(x)
}
extern "C" fn logisticf(x: f32) -> f32 {
    floatfn::logistic(x)
}
extern "C" fn tanhf(x: f32) -> f32 {
    floatfn::tanh(x)
}
extern "C" fn sxtab16(a: i32, x: i32) -> i32 {
    simd::sxtab16(a, x)
}
extern "C" fn sxtab16_ror8(a: i32, x: i32) -> i32 {
    simd::sxtab16_ror8(a, x)
}
extern "C" fn smlad(a: i32, b: i32, acc: i32) -> i32 {
    simd::smlad(a, b, acc)
}
extern "C" fn smlabb(a: i32, b: i32, acc: i32) -> i32 {
    simd::smlabb(a, b, acc)
}
extern "C" fn smlatt(a: i32, b: i32, acc: i32) -> i32 {
    simd::smlatt(a, b, acc)
}
extern "C" fn winograd_pair(x: i32, w: i32, acc: i32) -> i32 {
    simd::winograd_pair(x, w, acc)
}

/// The symbol JIT code calls `intrinsic` by.
pub(super) fn symbol(intrinsic: Intrinsic) -> String {
    format!("minnow_{}", intrinsic.name())
}

/// The address of `intrinsic`'s shim.
pub(super) fn address(intrinsic: Intrinsic) -> *const u8 {
    type I2 = extern "C" fn(i32, i32) -> i32;
    type I3 = extern "C" fn(i32, i32, i32) -> i32;
    type F1 = extern "C" fn(f32) -> f32;
    match intrinsic {
        Intrinsic::SaturatingRoundingDoublingHighMul => srdhm as I2 as *const u8,
        Intrinsic::RoundingDivideByPot => rounding_divide_by_pot as I2 as *const u8,
        Intrinsic::MultiplyByQuantizedMultiplier => mbqm as I3 as *const u8,
        Intrinsic::MultiplyByQuantizedMultiplierHighShift => mbqm_high_shift as I3 as *const u8,
        Intrinsic::MultiplyByQuantizedMultiplierHighShiftOffset => {
            mbqm_high_shift_offset as extern "C" fn(i32, i32, i32, i32) -> i32 as *const u8
        }
        Intrinsic::MultiplyByQuantizedMultiplierHighMul => {
            mbqm_high_mul as extern "C" fn(i32, i32, i32, i32) -> i32 as *const u8
        }
        Intrinsic::MultiplyByQuantizedMultiplierWide => {
            mbqm_wide as extern "C" fn(i64, i32, i32) -> i32 as *const u8
        }
        Intrinsic::MultiplyByQuantizedMultiplierSmallerThanOneExp => {
            mbqm_smaller_than_one as I3 as *const u8
        }
        Intrinsic::MultiplyByQuantizedMultiplierGreaterThanOne => {
            mbqm_greater_than_one as I3 as *const u8
        }
        Intrinsic::ExpOnNegativeValues => exp_on_negative_values as I2 as *const u8,
        Intrinsic::OneOverOnePlusX => one_over_one_plus_x as extern "C" fn(i32) -> i32 as *const u8,
        Intrinsic::CountLeadingZeros => clz as extern "C" fn(i32) -> i32 as *const u8,
        Intrinsic::Logistic => logistic as I2 as *const u8,
        Intrinsic::Tanh => tanh as I2 as *const u8,
        Intrinsic::ExpF32 => expf as F1 as *const u8,
        Intrinsic::LogisticF32 => logisticf as F1 as *const u8,
        Intrinsic::TanhF32 => tanhf as F1 as *const u8,
        Intrinsic::Sxtab16 => sxtab16 as I2 as *const u8,
        Intrinsic::Sxtab16Ror8 => sxtab16_ror8 as I2 as *const u8,
        Intrinsic::Smlad => smlad as I3 as *const u8,
        Intrinsic::Smlabb => smlabb as I3 as *const u8,
        Intrinsic::Smlatt => smlatt as I3 as *const u8,
        Intrinsic::WinogradPair => winograd_pair as I3 as *const u8,
    }
}
