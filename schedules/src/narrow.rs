//! Requantization by one 32-bit high multiply, for cores without a 64-bit multiply-accumulate.
//!
//! The lowering scales an int32 accumulator with
//! [`Intrinsic::MultiplyByQuantizedMultiplierHighShiftOffset`]: a 64-bit product plus a nudge,
//! whose high word is shifted. On Armv7-M that is one SMLAL; on RV32M it is a `mul`, a `mulh`
//! and a 64-bit add with its carry, eleven instructions per output. Where every accumulator of
//! the op is below [`fixedpoint::HIGH_MUL_ACC_LIMIT`] (a bound from the operand types, the
//! reduce length and the bias, [`Reduction::accumulator_bound`]) and every channel's shift and
//! rounding fit ([`fixedpoint::high_mul_form`]), [`NarrowRequantization`] swaps in
//! [`Intrinsic::MultiplyByQuantizedMultiplierHighMul`], seven instructions, with the same
//! results bit for bit.

use crate::apply::{constant_of, private_constant};
use minnow_ir::fixedpoint;
use minnow_ir::loops::reduction::{Epilogue, PerChannel, Reduction};
use minnow_ir::loops::{Intrinsic, Program, ScalarType, SlotKind};

/// Rewrites one multiply-accumulate step's requantization into the high-multiply form where
/// it is exact: [`NarrowRequantization::run`].
pub struct NarrowRequantization;

impl NarrowRequantization {
    /// Gives step `index`'s reduction `r` the high-multiply requantization, rewriting its shift
    /// and rounding (a table only this step reads, or a single value), where every accumulator
    /// and every channel's constants allow; leaves it as it is otherwise (also when it already
    /// has that form). Returns whether it rewrote `r`.
    pub fn run(program: &mut Program, index: usize, r: &mut Reduction) -> bool {
        let Epilogue::Quantized {
            scale: Intrinsic::MultiplyByQuantizedMultiplierHighShiftOffset,
            shift,
            rounding: Some(rounding),
            ..
        } = r.epilogue
        else {
            return false;
        };
        if r.acc != ScalarType::I32 || !accumulators_fit(program, index, r) {
            return false;
        }
        let (Some(shifts), Some(roundings)) = (
            values(program, index, shift),
            values(program, index, rounding),
        ) else {
            return false;
        };
        if shifts.len() != roundings.len() && shifts.len() != 1 && roundings.len() != 1 {
            return false;
        }
        let channels = shifts.len().max(roundings.len());
        let at = |v: &[i32], c: usize| v[c.min(v.len() - 1)];
        let forms: Option<Vec<(i32, i32)>> = (0..channels)
            .map(|c| fixedpoint::high_mul_form(at(&shifts, c), at(&roundings, c)))
            .collect();
        let Some(forms) = forms else {
            return false;
        };
        let new_shift: Vec<i32> = forms.iter().map(|f| f.0).collect();
        let new_rounding: Vec<i32> = forms.iter().map(|f| f.1).collect();
        let rewrites = [(shift, &new_shift), (rounding, &new_rounding)];
        if !rewrites
            .iter()
            .all(|(p, new)| writable(program, index, *p, new))
        {
            return false;
        }
        let [shift, rounding] = rewrites.map(|(p, new)| rewrite(program, index, p, new));
        if let Epilogue::Quantized {
            scale,
            shift: s,
            rounding: rd,
            ..
        } = &mut r.epilogue
        {
            *scale = Intrinsic::MultiplyByQuantizedMultiplierHighMul;
            *s = shift;
            *rd = Some(rounding);
        }
        true
    }
}

/// Whether every finished accumulator of `r` is below the high-multiply form's limit: its bias
/// is a constant (or absent), and the operands' bound plus the largest bias entry stays below.
fn accumulators_fit(program: &Program, index: usize, r: &Reduction) -> bool {
    let bias = match r.bias {
        None => Some(0),
        Some(buf) => i32_values(program, constant_of(program, index, buf))
            .map(|v| v.iter().map(|b| (*b as i64).abs()).max().unwrap_or(0)),
    };
    bias.and_then(|b| r.accumulator_bound(b))
        .is_some_and(|bound| bound < fixedpoint::HIGH_MUL_ACC_LIMIT)
}

/// The values of a per-channel parameter: one for [`PerChannel::Same`], the table's otherwise.
fn values(program: &Program, index: usize, p: PerChannel) -> Option<Vec<i32>> {
    match p {
        PerChannel::Same(v) => Some(vec![v]),
        PerChannel::Table(buf) => i32_values(program, constant_of(program, index, buf)),
    }
}

/// Whether `p` can hold `new` (one value per channel, or one for all): a single value, or a
/// table of as many entries that only step `index` reads.
fn writable(program: &Program, index: usize, p: PerChannel, new: &[i32]) -> bool {
    match p {
        PerChannel::Same(_) => new.windows(2).all(|w| w[0] == w[1]),
        PerChannel::Table(buf) => private_constant(program, index, buf)
            .is_some_and(|slot| program.slots[slot.0].len == new.len()),
    }
}

/// `p` holding `new`, which [`writable`] allowed: the new value, or its table rewritten in
/// place.
fn rewrite(program: &mut Program, index: usize, p: PerChannel, new: &[i32]) -> PerChannel {
    match p {
        PerChannel::Same(_) => PerChannel::Same(new[0]),
        PerChannel::Table(buf) => {
            if let Some(slot) = private_constant(program, index, buf) {
                let bytes = new.iter().flat_map(|v| v.to_le_bytes()).collect();
                program.slots[slot.0].kind = SlotKind::Constant(bytes);
            }
            p
        }
    }
}

/// The `i32` elements of a constant slot.
fn i32_values(program: &Program, slot: Option<minnow_ir::loops::SlotId>) -> Option<Vec<i32>> {
    let slot = &program.slots[slot?.0];
    let SlotKind::Constant(bytes) = &slot.kind else {
        return None;
    };
    let words = bytes.chunks_exact(4);
    (slot.elem == ScalarType::I32).then(|| {
        words
            .map(|w| i32::from_le_bytes(w.try_into().expect("four bytes")))
            .collect()
    })
}
