//! Portable definitions of the Armv7E-M DSP instructions minnow's schedules use for int8
//! dot products (SMLAD: two 16x16 multiply-accumulates in one instruction).
//!
//! A word of four int8 values `[x0, x1, x2, x3]` (little-endian) is unpacked into two words of
//! two int16 halves, `(x0, x2)` and `(x1, x3)`, with an offset added to each half; two SMLADs
//! then accumulate all four products. The pairing is the same for both operands, so the sum is
//! the plain dot product.
//!
//! Where the four values belong to four different sums (four channels of a depthwise
//! convolution), SMLABB and SMLATT multiply the low and the high halves separately: lanes 0 and
//! 2 come from the first unpacked word, lanes 1 and 3 from the second.
//!
//! ```
//! use minnow_ir::simd::{pack, smlad, sxtab16, sxtab16_ror8};
//! let (x, w) = ([1i8, -2, 3, -4], [5i8, 6, -7, 8]);
//! let (xw, ww) = (pack(x), pack(w));
//! let acc = smlad(sxtab16(0, xw), sxtab16(0, ww), 100);
//! let acc = smlad(sxtab16_ror8(0, xw), sxtab16_ror8(0, ww), acc);
//! assert_eq!(acc, 100 + 5 - 12 - 21 - 32);
//! ```

// The definitions generated code runs live in `crate::runtime` (copied into generated Rust).
use crate::runtime::simd::join;
pub use crate::runtime::simd::{smlabb, smlad, smlatt, sxtab16, sxtab16_ror8, winograd_pair};

/// Four bytes as one little-endian word.
pub fn pack(bytes: [i8; 4]) -> i32 {
    i32::from_le_bytes(bytes.map(|b| b as u8))
}

/// Four int8 values with `offset` added (each sum must fit 16 bits), laid out as the two words
/// SXTAB16 and SXTAB16 ROR 8 unpack a word of them into: `(v0, v2)` then `(v1, v3)`, as
/// little-endian bytes. A constant operand stored this way is read with two word loads and no
/// unpacking.
///
/// ```
/// use minnow_ir::simd::{pack, sxtab16, sxtab16_ror8, widened};
/// let w = [5i8, -6, 7, -128];
/// let bytes = widened(w, 3);
/// let word = |k: usize| i32::from_le_bytes(bytes[4 * k..4 * k + 4].try_into().unwrap());
/// assert_eq!(word(0), sxtab16(0x0003_0003, pack(w)));
/// assert_eq!(word(1), sxtab16_ror8(0x0003_0003, pack(w)));
/// ```
pub fn widened(values: [i8; 4], offset: i32) -> [u8; 8] {
    let v = values.map(|x| x as i32 + offset);
    debug_assert!(v.iter().all(|x| i16::try_from(*x).is_ok()));
    let words = [join(v[0], v[2]), join(v[1], v[3])];
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&words[0].to_le_bytes());
    out[4..].copy_from_slice(&words[1].to_le_bytes());
    out
}

/// Two int8 values with `offset` added (each sum must fit 16 bits) as one word of two 16-bit
/// halves, `(v0, v1)`: the operand of [`smlad`] for two consecutive elements of one sum
/// ([`crate::loops::reduction::Lanes::Pairs`]). A constant operand stored this way is read
/// with one word load per pair.
///
/// ```
/// use minnow_ir::simd::{paired, smlad};
/// let word = |b: [u8; 4]| i32::from_le_bytes(b);
/// let (x, w) = (word(paired([-128, 7], 0)), word(paired([3, -2], 1)));
/// assert_eq!(smlad(x, w, 10), 10 + -128 * 4 + 7 * -1);
/// ```
pub fn paired(values: [i8; 2], offset: i32) -> [u8; 4] {
    let v = values.map(|x| x as i32 + offset);
    debug_assert!(v.iter().all(|x| i16::try_from(*x).is_ok()));
    join(v[0], v[1]).to_le_bytes()
}

/// Two int8 values `[x0, x1]` as the word `x0 + x1 * 65536` (an exact sum, not a bit join:
/// a negative `x0` borrows from the high half): the input operand of [`winograd_pair`]
/// ([`crate::loops::reduction::Lanes::Winograd`]).
pub fn winograd_input(x: [i8; 2]) -> i32 {
    i32::from(x[0]).wrapping_add(i32::from(x[1]).wrapping_mul(0x1_0000))
}

/// Two int8 weights `[w0, w1]` with `offset` added, crossed for Winograd's inner product:
/// the word `w1 + w0 * 65536` (an exact sum), as little-endian bytes. With an input word `x`
/// of [`winograd_input`], `x + w` holds `x0 + w1` low and `x1 + w0` high, and
/// [`winograd_pair`] adds their product `x0 w0 + x1 w1 + x0 x1 + w0 w1`: two products for one
/// multiply, the two cross terms subtracted once per output (the weights' in the bias, the
/// inputs' per pixel). The inputs are int8 plus `lift` (0 or 1, [`winograd_lift`]), so the
/// low half `x0 + w1` stays in `[-255, 255]`, where the product is exact, for `w1` in
/// `[-127 - lift, 128 - lift]`; `None` outside that, or if the high half leaves 16 bits.
///
/// ```
/// use minnow_ir::simd::{crossed, winograd_input, winograd_pair};
/// let (x, w) = ([-128i8, 127], [-128i8, -127]);
/// let word = i32::from_le_bytes(crossed(w, 0, 0).unwrap());
/// let cross = -128 * 127 + -128 * -127;
/// let acc = winograd_pair(winograd_input(x), word, 10);
/// assert_eq!(acc - cross, 10 + -128 * -128 + 127 * -127);
/// // A second weight of -128 pairs only with inputs lifted by one.
/// assert!(crossed([0, -128], 0, 0).is_none());
/// assert!(crossed([0, -128], 0, 1).is_some());
/// ```
pub fn crossed(values: [i8; 2], offset: i32, lift: i32) -> Option<[u8; 4]> {
    let [w0, w1] = values.map(|v| i32::from(v) + offset);
    if !(-127 - lift..=128 - lift).contains(&w1) || i16::try_from(w0).is_err() {
        return None;
    }
    Some(w1.wrapping_add(w0.wrapping_mul(0x1_0000)).to_le_bytes())
}

/// The input lift Winograd pairs of these weights need ([`crossed`]): 0 unless a pair's
/// second weight (`offset` added) is -128, then 1; `None` where an offset takes one out of
/// `[-128, 128]` or the seconds span both ends, which no lift pairs exactly. `weights` are in
/// pair order, each pair's first weight first.
///
/// ```
/// use minnow_ir::simd::winograd_lift;
/// assert_eq!(winograd_lift(&[-128, 5, 7, -127], 0), Some(0));
/// assert_eq!(winograd_lift(&[5, -128], 0), Some(1));
/// assert_eq!(winograd_lift(&[5, -128, 0, 127], 1), Some(0));
/// assert_eq!(winograd_lift(&[0, 100], 100), None);
/// ```
pub fn winograd_lift(weights: &[i8], offset: i32) -> Option<i32> {
    let seconds = weights.chunks_exact(2).map(|w| i32::from(w[1]) + offset);
    let (low, high) = seconds.fold((i32::MAX, i32::MIN), |(lo, hi), w| (lo.min(w), hi.max(w)));
    [0, 1]
        .into_iter()
        .find(|lift| low >= -127 - lift && high <= 128 - lift)
}

/// An `i32` holding `offset` in both 16-bit halves (the `a` operand of [`sxtab16`]).
pub fn offset_pair(offset: i32) -> i32 {
    join(offset, offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpacking_with_offsets_gives_every_product_once() {
        let x = [-128i8, 127, -1, 0];
        let w = [127i8, -128, 55, -3];
        let (xo, wo) = (128, -7);
        let want: i32 = x
            .iter()
            .zip(&w)
            .map(|(a, b)| (*a as i32 + xo) * (*b as i32 + wo))
            .sum();
        let (xp, wp) = (pack(x), pack(w));
        let (ox, ow) = (offset_pair(xo), offset_pair(wo));
        let acc = smlad(sxtab16(ox, xp), sxtab16(ow, wp), 0);
        let acc = smlad(sxtab16_ror8(ox, xp), sxtab16_ror8(ow, wp), acc);
        assert_eq!(acc, want);
    }

    #[test]
    fn halfword_products_give_each_lane_its_own_sum() {
        let (x, w) = ([-128i8, 127, -1, 5], [127i8, -128, 55, -3]);
        let xo = 128;
        let (xp, wp) = (pack(x), pack(w));
        let (xa, xb) = (
            sxtab16(offset_pair(xo), xp),
            sxtab16_ror8(offset_pair(xo), xp),
        );
        let (wa, wb) = (sxtab16(0, wp), sxtab16_ror8(0, wp));
        let lanes = [
            smlabb(xa, wa, 1),
            smlabb(xb, wb, 1),
            smlatt(xa, wa, 1),
            smlatt(xb, wb, 1),
        ];
        let want: Vec<i32> = (0..4)
            .map(|i| 1 + (x[i] as i32 + xo) * w[i] as i32)
            .collect();
        assert_eq!(lanes.to_vec(), want);
    }

    #[test]
    fn winograd_pairs_are_exact_on_every_int8_input() {
        let weights = [
            [-128i8, -127],
            [127, -127],
            [0, 127],
            [-1, 1],
            [5, -7],
            [3, -128],
        ];
        for (w, lift) in weights.into_iter().flat_map(|w| [(w, 0), (w, 1)]) {
            let Some(word) = crossed(w, 0, lift) else {
                assert_eq!((w[1], lift), (-128, 0), "only an unlifted -128 is refused");
                continue;
            };
            let word = i32::from_le_bytes(word);
            for x0 in -128..=127i8 {
                for x1 in [-128i8, -1, 0, 1, 127] {
                    let (x0, x1) = (i32::from(x0) + lift, i32::from(x1) + lift);
                    let got = winograd_pair(x0 + x1 * 0x1_0000, word, 0);
                    let (w0, w1) = (i32::from(w[0]), i32::from(w[1]));
                    assert_eq!(
                        got,
                        x0 * w0 + x1 * w1 + x0 * x1 + w0 * w1,
                        "{x0} {x1} {w:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn smlad_wraps() {
        assert_eq!(
            smlad(join(-32768, 0), join(-32768, 0), i32::MAX),
            i32::MIN + (1 << 30) - 1
        );
    }
}
