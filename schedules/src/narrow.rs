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
use minnow_ir::interp::Buffer;
use minnow_ir::loops::reduction::{Epilogue, PerChannel, Reduction};
use minnow_ir::loops::{BufId, Intrinsic, Program, ScalarType, SlotId, SlotKind};
use minnow_ir::DType;

/// Rewrites one multiply-accumulate step's requantization into the high-multiply form where
/// it is exact: [`NarrowRequantization::run`].
pub struct NarrowRequantization;

impl NarrowRequantization {
    /// Gives step `index`'s reduction `r` the high-multiply requantization, rewriting its shift
    /// and rounding (a table only this step reads, or a single value), where every accumulator
    /// and every channel's constants allow, and its fused residual ADD the high-multiply
    /// rescaling of its sum where that is exact; leaves each as it is otherwise (also when it
    /// already has that form). Returns whether it rewrote `r`.
    pub fn run(program: &mut Program, index: usize, r: &mut Reduction) -> bool {
        let residual = narrow_residual(r);
        requantization(program, index, r) || residual
    }
}

/// Gives a fused residual ADD whose inputs are int8 (looked up in tables) the high-multiply
/// rescaling of its sum, where that is exact
/// ([`minnow_ir::qparams::AddParams::int8_high_mul_output`]). Returns whether it did.
fn narrow_residual(r: &mut Reduction) -> bool {
    let Some(residual) = &mut r.residual else {
        return false;
    };
    if residual.high_mul_output.is_some() || residual.tables.is_none() {
        return false;
    }
    residual.high_mul_output = residual.params.int8_high_mul_output();
    residual.high_mul_output.is_some()
}

/// The requantization's part of [`NarrowRequantization::run`].
fn requantization(program: &mut Program, index: usize, r: &mut Reduction) -> bool {
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
    let empty = shifts.is_empty() || roundings.is_empty();
    if empty || (shifts.len() != roundings.len() && shifts.len() != 1 && roundings.len() != 1) {
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
    // Both destinations are found before either is written.
    let (Some(shift_to), Some(rounding_to)) = (
        destination(program, index, shift, &new_shift),
        destination(program, index, rounding, &new_rounding),
    ) else {
        return false;
    };
    let shift = write(program, shift_to, &new_shift);
    let rounding = write(program, rounding_to, &new_rounding);
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

/// Where a per-channel parameter's new values go.
enum Destination {
    /// One value for every channel.
    Same,
    /// The table in this constant slot, which only the step reads.
    Table(BufId, SlotId),
}

/// Where `p` can take `new` (one value per channel, or one for all): a single value where
/// `new` holds one, or `p`'s table where only step `index` reads it and it has as many entries.
fn destination(program: &Program, index: usize, p: PerChannel, new: &[i32]) -> Option<Destination> {
    match p {
        PerChannel::Same(_) => new
            .windows(2)
            .all(|w| w[0] == w[1])
            .then_some(Destination::Same),
        PerChannel::Table(buf) => private_constant(program, index, buf)
            .filter(|slot| program.slots[slot.0].len == new.len())
            .map(|slot| Destination::Table(buf, slot)),
    }
}

/// Writes `new` to `to` and returns the parameter that reads it.
fn write(program: &mut Program, to: Destination, new: &[i32]) -> PerChannel {
    match to {
        Destination::Same => PerChannel::Same(new[0]),
        Destination::Table(buf, slot) => {
            let bytes = Buffer::I32(new.to_vec()).to_le_bytes();
            program.slots[slot.0].kind = SlotKind::Constant(bytes);
            PerChannel::Table(buf)
        }
    }
}

/// The `i32` elements of a constant slot.
fn i32_values(program: &Program, slot: Option<SlotId>) -> Option<Vec<i32>> {
    let slot = &program.slots[slot?.0];
    match (&slot.kind, slot.elem) {
        (SlotKind::Constant(bytes), ScalarType::I32) => {
            match Buffer::from_le_bytes(DType::I32, bytes) {
                Buffer::I32(values) => Some(values),
                _ => None,
            }
        }
        _ => None,
    }
}
