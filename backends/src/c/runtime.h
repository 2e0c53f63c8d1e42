/* minnow runtime helpers: TFLite Micro's fixed-point arithmetic, bit for bit.
 * These are the C definitions of the loop IR's intrinsics (minnow_ir::loops::Intrinsic); each is
 * tested against minnow_ir::fixedpoint on random and edge-case inputs. Wrapping int32 arithmetic
 * goes through uint32_t so that no signed overflow is ever undefined behaviour. */
#define MINNOW_WRAP_ADD(a, b) ((int32_t)((uint32_t)(a) + (uint32_t)(b)))
#define MINNOW_WRAP_SUB(a, b) ((int32_t)((uint32_t)(a) - (uint32_t)(b)))
/* Each layer stays a function of its own: its code then does not depend on what the compiler
   inlined around it, so a schedule measured alone performs the same inside the model. */
#if defined(__GNUC__)
#define MINNOW_LAYER_FN __attribute__((noinline))
#else
#define MINNOW_LAYER_FN
#endif

static inline int32_t minnow_min_i32(int32_t a, int32_t b) { return a < b ? a : b; }
static inline int32_t minnow_max_i32(int32_t a, int32_t b) { return a > b ? a : b; }
#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
#include <arm_acle.h>
#endif
/* min(max(x, lo), hi). Into the int8 or int16 range (the usual requantization clamp, or a
   ReLU's [zero point, max]) with SSAT where the core saturates: one or two instructions
   instead of two compare-and-selects. */
static inline int32_t minnow_clamp_i32(int32_t x, int32_t lo, int32_t hi) {
#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
  if (__builtin_constant_p(lo) && __builtin_constant_p(hi)) {
    if (hi == 127 && lo == -128) return __ssat(x, 8);
    if (hi == 127 && lo > -128) return minnow_max_i32(__ssat(x, 8), lo);
    if (hi == 32767 && lo == -32768) return __ssat(x, 16);
  }
#endif
  return minnow_min_i32(minnow_max_i32(x, lo), hi);
}
static inline int64_t minnow_min_i64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t minnow_max_i64(int64_t a, int64_t b) { return a > b ? a : b; }
/* As C++'s std::min/std::max, which TFLite's clamps use: a NaN first operand stays NaN. */
static inline float minnow_min_f32(float a, float b) { return b < a ? b : a; }
static inline float minnow_max_f32(float a, float b) { return a < b ? b : a; }

static inline int32_t minnow_srdhm(int32_t a, int32_t b) {
  if (a == b && a == INT32_MIN) return INT32_MAX;
  /* TFLite nudges by 2^30 or 1 - 2^30 and truncates toward zero; for every product p that is
     floor((p + 2^30) / 2^31), since for p < 0, -floor((2^30 - 1 - p) / 2^31) equals
     ceil((p - 2^30 + 1) / 2^31) = floor((p + 2^30) / 2^31). One multiply-accumulate and a
     shift (the arithmetic shift of a negative value is what gcc and clang define). */
  return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 30)) >> 31);
}

static inline int32_t minnow_rounding_divide_by_pot(int32_t x, int32_t exponent) {
  const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

static inline int32_t minnow_saturating_rounding_multiply_by_pot(int32_t x, int32_t exponent) {
  if (exponent > 0) {
    const int32_t threshold = (int32_t)(((uint32_t)1 << (31 - exponent)) - 1);
    if (x > threshold) return INT32_MAX;
    if (x < -threshold) return INT32_MIN;
    return (int32_t)((uint32_t)x << exponent);
  }
  if (exponent < 0) return minnow_rounding_divide_by_pot(x, -exponent);
  return x;
}

static inline int32_t minnow_mbqm(int32_t x, int32_t multiplier, int32_t shift) {
  const int32_t left = shift > 0 ? shift : 0;
  const int32_t right = shift > 0 ? 0 : -shift;
  return minnow_rounding_divide_by_pot(minnow_srdhm((int32_t)((uint32_t)x << left), multiplier), right);
}

/* minnow_mbqm for a non-negative multiplier and a right shift of high_shift + 1 (2 to 31): one
   64-bit multiply-accumulate with a nudge of +-2^30 by the sign of x, then a rounding shift of
   its high word (the proof is at ir::fixedpoint::multiply_by_quantized_multiplier_high_shift).
   The nudge's two words come from the sign bit: no branch. */
/* With rounding = ((1 << high_shift) >> 1) + (offset << high_shift)
   (ir::fixedpoint::high_shift_rounding), the same plus the output offset: a table load instead
   of building the constant from the shift and adding the offset. */
static inline int32_t minnow_mbqm_high_shift_offset(int32_t x, int32_t multiplier, int32_t high_shift,
                                                    int32_t rounding) {
  const uint32_t sign = (uint32_t)(x >> 31);
  const uint64_t nudge = ((uint64_t)sign << 32) | ((sign << 31) | 0x40000000u);
  const int32_t high = (int32_t)(((int64_t)x * multiplier + (int64_t)nudge) >> 32);
  return (high + rounding) >> high_shift;
}
/* minnow_mbqm_high_shift_offset by one 32-bit high multiply (RISC-V mulh) for |x| < 2^29, with
   shift = high_shift + 2 and rounding 4 times the offset form's (ir::fixedpoint::high_mul_form;
   the proof is at ir::fixedpoint::multiply_by_quantized_multiplier_high_mul). */
static inline int32_t minnow_mbqm_high_mul(int32_t x, int32_t multiplier, int32_t shift,
                                           int32_t rounding) {
  const int32_t high = (int32_t)(((int64_t)(int32_t)((uint32_t)x << 2) * multiplier) >> 32);
  return (high + ((x >> 31) | 1) + rounding) >> shift;
}
static inline int32_t minnow_mbqm_high_shift(int32_t x, int32_t multiplier, int32_t high_shift) {
  return minnow_mbqm_high_shift_offset(x, multiplier, high_shift, (1 << high_shift) >> 1);
}

static inline int32_t minnow_mbqm_wide(int64_t x, int32_t multiplier, int32_t shift) {
  const int64_t reduced = multiplier < 0x7FFF0000 ? (((int64_t)multiplier + (1 << 15)) >> 16) : 0x7FFF;
  const int32_t total_shift = 15 - shift;
  const int64_t rounded =
      (int64_t)((uint64_t)x * (uint64_t)reduced + ((uint64_t)1 << (total_shift - 1)));
  return (int32_t)(rounded >> total_shift);
}

static inline int32_t minnow_mbqm_smaller_than_one(int32_t x, int32_t multiplier, int32_t shift) {
  return minnow_rounding_divide_by_pot(minnow_srdhm(x, multiplier), -shift);
}

static inline int32_t minnow_mbqm_greater_than_one(int32_t x, int32_t multiplier, int32_t left_shift) {
  return minnow_srdhm((int32_t)((uint32_t)x * ((uint32_t)1 << left_shift)), multiplier);
}

static inline int32_t minnow_clz(int32_t x) {
#if defined(__GNUC__) && defined(__ARM_FEATURE_CLZ)
  return x == 0 ? 32 : __builtin_clz((uint32_t)x);
#else
  /* Binary search: no library call on cores without a count-leading-zeros instruction. */
  uint32_t v = (uint32_t)x;
  int32_t n = 0;
  if (v == 0) return 32;
  if (!(v & 0xFFFF0000u)) { n += 16; v <<= 16; }
  if (!(v & 0xFF000000u)) { n += 8; v <<= 8; }
  if (!(v & 0xF0000000u)) { n += 4; v <<= 4; }
  if (!(v & 0xC0000000u)) { n += 2; v <<= 2; }
  if (!(v & 0x80000000u)) { n += 1; }
  return n;
#endif
}

/* The raw value of 1.0 in Q(integer_bits); the maximum value for Q0.31. */
static inline int32_t minnow_one(int32_t integer_bits) {
  return integer_bits == 0 ? INT32_MAX : (int32_t)((uint32_t)1 << (31 - integer_bits));
}

static inline int32_t minnow_exp_on_interval_between_negative_one_quarter_and_0_excl(int32_t a) {
  const int32_t constant_term = 1895147668; /* exp(-1/8) */
  const int32_t one_third = 715827883;
  const int32_t x = MINNOW_WRAP_ADD(a, 1 << 28);
  const int32_t x2 = minnow_srdhm(x, x);
  const int32_t x3 = minnow_srdhm(x2, x);
  const int32_t x4 = minnow_srdhm(x2, x2);
  const int32_t x4_over_4 = minnow_saturating_rounding_multiply_by_pot(x4, -2);
  const int32_t poly = minnow_saturating_rounding_multiply_by_pot(
      MINNOW_WRAP_ADD(minnow_srdhm(MINNOW_WRAP_ADD(x4_over_4, x3), one_third), x2), -1);
  return MINNOW_WRAP_ADD(constant_term, minnow_srdhm(constant_term, MINNOW_WRAP_ADD(x, poly)));
}

static inline int32_t minnow_exp_on_negative_values(int32_t a, int32_t integer_bits) {
  static const int32_t barrel[7][2] = {
      {-2, 1672461947}, {-1, 1302514674}, {0, 790015084}, {1, 290630308},
      {2, 39332535},    {3, 720401},      {4, 242}};
  const int32_t fractional_bits = 31 - integer_bits;
  const int32_t one_quarter = (int32_t)1 << (fractional_bits - 2);
  const int32_t mask = one_quarter - 1;
  const int32_t a_mod_quarter_minus_one_quarter = MINNOW_WRAP_SUB(a & mask, one_quarter);
  int32_t result = minnow_exp_on_interval_between_negative_one_quarter_and_0_excl(
      minnow_saturating_rounding_multiply_by_pot(a_mod_quarter_minus_one_quarter, integer_bits));
  const int32_t remainder = MINNOW_WRAP_SUB(a_mod_quarter_minus_one_quarter, a);
  int k;
  for (k = 0; k < 7; ++k) {
    const int32_t exponent = barrel[k][0];
    if (integer_bits > exponent) {
      const int32_t shift = fractional_bits + exponent;
      if (remainder & (int32_t)((uint32_t)1 << shift)) result = minnow_srdhm(result, barrel[k][1]);
    }
  }
  if (integer_bits > 5) {
    const int32_t clamp = -((int32_t)1 << (36 - integer_bits));
    if (a < clamp) result = 0;
  }
  if (a == 0) result = minnow_one(0);
  return result;
}

static inline int32_t minnow_reciprocal_of_half_denominator(int32_t half_denominator) {
  const int32_t c48_over_17 = 1515870810;
  const int32_t neg_c32_over_17 = -1010580540;
  int32_t x = MINNOW_WRAP_ADD(c48_over_17, minnow_srdhm(half_denominator, neg_c32_over_17));
  int k;
  for (k = 0; k < 3; ++k) {
    const int32_t one_minus = MINNOW_WRAP_SUB(minnow_one(2), minnow_srdhm(half_denominator, x));
    x = MINNOW_WRAP_ADD(x, minnow_saturating_rounding_multiply_by_pot(minnow_srdhm(x, one_minus), 2));
  }
  return x;
}

static inline int32_t minnow_rounding_half_sum(int32_t a, int32_t b) {
  const int64_t sum = (int64_t)a + (int64_t)b;
  const int64_t sign = sum >= 0 ? 1 : -1;
  return (int32_t)((sum + sign) / 2);
}

static inline int32_t minnow_one_over_one_plus_x(int32_t a) {
  const int32_t x = minnow_reciprocal_of_half_denominator(minnow_rounding_half_sum(a, minnow_one(0)));
  return minnow_saturating_rounding_multiply_by_pot(x, 1);
}

static inline int32_t minnow_one_minus_x_over_one_plus_x(int32_t a) {
  const int32_t x = minnow_reciprocal_of_half_denominator(minnow_rounding_half_sum(a, minnow_one(0)));
  return minnow_saturating_rounding_multiply_by_pot(MINNOW_WRAP_SUB(x, minnow_one(2)), 2);
}

static inline int32_t minnow_logistic(int32_t a, int32_t integer_bits) {
  int32_t abs_a, positive;
  if (a == 0) return 1 << 30;
  abs_a = a > 0 ? a : MINNOW_WRAP_SUB(0, a);
  positive = minnow_one_over_one_plus_x(minnow_exp_on_negative_values(MINNOW_WRAP_SUB(0, abs_a), integer_bits));
  return a > 0 ? positive : MINNOW_WRAP_SUB(minnow_one(0), positive);
}

static inline int32_t minnow_tanh(int32_t a, int32_t integer_bits) {
  int32_t n, t;
  if (a == 0) return 0;
  n = a < 0 ? a : MINNOW_WRAP_SUB(0, a);
  t = minnow_one_minus_x_over_one_plus_x(minnow_exp_on_negative_values(n, integer_bits + 1));
  return a < 0 ? MINNOW_WRAP_SUB(0, t) : t;
}

/* exp, logistic and tanh on float, operation for operation as ir::floatfn defines them, so that
   every engine gives the same bits. Needs IEEE single precision without contraction into fused
   multiply-adds (-ffp-contract=off; the default with -std=c99). */
typedef union { float f; uint32_t u; } minnow_f32_bits;

static inline float minnow_power_of_two(int32_t k) {
  minnow_f32_bits b;
  b.u = (uint32_t)(k + 127) << 23;
  return b.f;
}

static inline float minnow_expf(float x) {
  minnow_f32_bits inf;
  float n, r, q, p;
  int32_t k, half;
  if (x != x) return x;
  inf.u = 0x7f800000u;
  if (x > 0x1.62e42ep+6f) return inf.f;
  if (x < -0x1.9fe368p+6f) return 0.0f;
  n = (x * 0x1.715476p+0f + 0x1.8p+23f) - 0x1.8p+23f;
  r = (x - n * 0x1.62e4p-1f) - n * 0x1.7f7d1cp-20f;
  q = 0x1p-1f + r * (0x1.555556p-3f + r * (0x1.555556p-5f + r * (0x1.111112p-7f
      + r * (0x1.6c16c2p-10f + r * 0x1.a01a02p-13f))));
  p = 1.0f + (r + (r * r) * q);
  k = (int32_t)n;
  half = k >> 1;
  return (p * minnow_power_of_two(half)) * minnow_power_of_two(k - half);
}

static inline float minnow_logisticf(float x) {
  float e;
  if (x < 0.0f) {
    e = minnow_expf(x);
    return e / (1.0f + e);
  }
  return 1.0f / (1.0f + minnow_expf(-x));
}

static inline float minnow_tanhf(float x) {
  static const float c[10] = {
    -0x1.555556p-2f, 0x1.111112p-3f, -0x1.ba1ba2p-5f, 0x1.664f48p-6f, -0x1.226e36p-7f,
    0x1.d6d3d0p-9f, -0x1.7da364p-10f, 0x1.355824p-11f, -0x1.f57d78p-13f, 0x1.967e18p-14f
  };
  minnow_f32_bits a;
  float magnitude, s, series = 0.0f;
  int i;
  a.f = x;
  a.u &= 0x7fffffffu;
  if (a.f < 0x1.19999ap-1f) {
    s = a.f * a.f;
    for (i = 9; i >= 0; i--) series = c[i] + s * series;
    magnitude = a.f + a.f * (s * series);
  } else {
    magnitude = 1.0f - 2.0f / (minnow_expf(a.f + a.f) + 1.0f);
  }
  if (x < 0.0f) return -magnitude;
  if (x > 0.0f) return magnitude;
  return x;
}

/* Armv7E-M DSP: SXTAB16, SMLAD, SMLABB and SMLATT as ir::simd defines them; the instructions themselves where
   the target has them, portable C elsewhere. */
#if defined(__ARM_FEATURE_SIMD32) && __ARM_FEATURE_SIMD32
#include <arm_acle.h>
/* With no offsets to add (a constant 0), SXTB16: no register holds the zero. */
static inline int32_t minnow_sxtab16(int32_t a, int32_t x) {
  if (__builtin_constant_p(a) && a == 0) return (int32_t)__sxtb16(x);
  return (int32_t)__sxtab16(a, x);
}
static inline int32_t minnow_sxtab16_ror8(int32_t a, int32_t x) {
  /* One instruction: gcc does not fold the rotation into __sxtab16 by itself. */
  int32_t r;
  if (__builtin_constant_p(a) && a == 0) {
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
  } else {
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
  }
  return r;
}
static inline int32_t minnow_smlad(int32_t a, int32_t b, int32_t acc) { return __smlad(a, b, acc); }
static inline int32_t minnow_smlabb(int32_t a, int32_t b, int32_t acc) { return __smlabb(a, b, acc); }
static inline int32_t minnow_smlatt(int32_t a, int32_t b, int32_t acc) { return __smlatt(a, b, acc); }
#else
static inline int32_t minnow_join16(int32_t lo, int32_t hi) {
  return (int32_t)(((uint32_t)lo & 0xffffu) | ((uint32_t)hi << 16));
}
static inline int32_t minnow_low16(int32_t a) { return (int32_t)(int16_t)(uint16_t)(uint32_t)a; }
static inline int32_t minnow_high16(int32_t a) { return (int32_t)(int16_t)(uint16_t)((uint32_t)a >> 16); }
static inline int32_t minnow_sxtab16(int32_t a, int32_t x) {
  return minnow_join16(minnow_low16(a) + (int32_t)(int8_t)(uint8_t)(uint32_t)x,
                       minnow_high16(a) + (int32_t)(int8_t)(uint8_t)((uint32_t)x >> 16));
}
static inline int32_t minnow_sxtab16_ror8(int32_t a, int32_t x) {
  return minnow_sxtab16(a, (int32_t)(((uint32_t)x >> 8) | ((uint32_t)x << 24)));
}
static inline int32_t minnow_smlad(int32_t a, int32_t b, int32_t acc) {
  return (int32_t)((uint32_t)acc + (uint32_t)(minnow_low16(a) * minnow_low16(b))
                   + (uint32_t)(minnow_high16(a) * minnow_high16(b)));
}
static inline int32_t minnow_smlabb(int32_t a, int32_t b, int32_t acc) {
  return (int32_t)((uint32_t)acc + (uint32_t)(minnow_low16(a) * minnow_low16(b)));
}
static inline int32_t minnow_smlatt(int32_t a, int32_t b, int32_t acc) {
  return (int32_t)((uint32_t)acc + (uint32_t)(minnow_high16(a) * minnow_high16(b)));
}
#endif

/* Winograd's inner product (ir::simd::winograd_pair): the high word of s * (s << 16) for
   s = x + w, added to acc; add, slli, mulh and add on RV32IM. */
static inline int32_t minnow_winograd_pair(int32_t x, int32_t w, int32_t acc) {
  const int32_t s = (int32_t)((uint32_t)x + (uint32_t)w);
  const int32_t shifted = (int32_t)((uint32_t)s << 16);
  return (int32_t)((uint32_t)acc + (uint32_t)(int32_t)(((int64_t)s * shifted) >> 32));
}

/* Four consecutive int8 elements as one little-endian word (any alignment). */
static inline int32_t minnow_load_word(const int8_t *p) {
  int32_t w;
  __builtin_memcpy(&w, p, 4);
  return w;
}
