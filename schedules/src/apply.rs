//! Applying schedules to a lowered [`Program`].

use crate::narrow::NarrowRequantization;
use crate::primitive::{Schedule, ScheduleError};
use crate::space::Space;
use minnow_ir::loops::reduction::{Lanes, LoopNest, Reduction};
use minnow_ir::loops::{BufId, BufferKind, FuncBuilder, Program, ScalarType, SlotId, SlotKind};
use minnow_ir::simd;
use minnow_targets::Features;

/// Chooses a step's schedule from its index, its reduction and the reduction's [`Space`];
/// `None` leaves the step to the space's default for the target.
pub type Chooser<'a> = &'a dyn Fn(usize, &Reduction, &Space) -> Option<Schedule>;

/// Rebuilds every multiply-accumulate step of `program` under the schedule `choose` gives it
/// (the space's default for the target when `choose` returns `None`).
pub fn schedule_program(
    program: &mut Program,
    features: &Features,
    choose: Chooser,
) -> Result<(), ScheduleError> {
    for index in 0..program.steps.len() {
        let Some(mut r) = program.steps[index].reduction.clone() else {
            continue;
        };
        let space = Space::of(&r);
        let schedule = choose(index, &r, &space)
            .unwrap_or_else(|| space.schedule(&space.default_for(features)));
        let nest = schedule.apply(&r)?;
        if !features.wide_multiply {
            NarrowRequantization::run(program, index, &mut r);
        }
        let packed = pack_weight(program, index, &mut r, &nest);
        let func = program.steps[index].func;
        let old = &mut program.funcs[func];
        let params_first = old
            .buffers
            .iter()
            .skip_while(|b| matches!(b.kind, BufferKind::Param { .. }))
            .all(|b| b.kind == BufferKind::Local);
        let name = old.name.clone();
        let fail = |reason: String| ScheduleError {
            step: schedule.steps.len(),
            reason: format!("{name}: {reason}"),
        };
        if !params_first {
            return Err(fail("its parameters are not declared first".into()));
        }
        let weight_len = packed.map_err(fail)?;
        if nest.wide_weights && weight_len.is_none() {
            let reason = "only a constant weight that no other op reads can be widened";
            return Err(fail(reason.into()));
        }
        // The packed weights' parameter takes their new length (widened: twice the bytes).
        if let Some(len) = weight_len {
            old.buffers[r.weight.buf.0 as usize].len = len;
        }
        let mut f = FuncBuilder::with_params_of(old);
        r.build(&nest, &mut f).map_err(fail)?;
        program.funcs[func] = f.finish();
        program.steps[index].reduction = Some(r);
    }
    Ok(())
}

/// Whether the weights of multiply-accumulate step `index` are a constant that no other step
/// reads: then a schedule may lay them out (and widen them) as its loops want.
pub fn weight_is_private(program: &Program, index: usize) -> bool {
    let step = &program.steps[index];
    step.reduction
        .as_ref()
        .is_some_and(|r| private_weight(program, index, r).is_some())
}

/// The slot of step `index`'s weights, if it is a constant only that step reads.
fn private_weight(program: &Program, index: usize, r: &Reduction) -> Option<SlotId> {
    private_constant(program, index, r.weight.buf)
}

/// Whether step `index` may run `r` as Winograd's inner product on a core without SIMD: its
/// weights and its bias table are constants only it reads (the weights are stored crossed,
/// the bias takes their cross terms), int8 with no offset (a -128 is paired exactly by
/// lifting the inputs, [`simd::winograd_lift`]).
pub fn winograd_allowed(program: &Program, index: usize, r: &Reduction) -> bool {
    let bias = r
        .winograd_bias()
        .and_then(|b| private_constant(program, index, b));
    let Some(weights) = private_weight(program, index, r) else {
        return false;
    };
    let constant = matches!(program.slots[weights.0].kind, SlotKind::Constant(_));
    constant && bias.is_some() && r.weight.elem == ScalarType::I8 && r.weight.offset == 0
}

/// The slot behind buffer `buf` of step `index`'s function, if it is a constant that only
/// that step reads.
pub(crate) fn private_constant(program: &Program, index: usize, buf: BufId) -> Option<SlotId> {
    let slot = constant_of(program, index, buf)?;
    let users = program.steps.iter().filter(|s| s.args.contains(&slot));
    (users.count() == 1).then_some(slot)
}

/// The slot behind buffer `buf` of step `index`'s function, if it is a constant.
pub(crate) fn constant_of(program: &Program, index: usize, buf: BufId) -> Option<SlotId> {
    let step = &program.steps[index];
    let func = &program.funcs[step.func];
    let BufferKind::Param { index: param, .. } = func.buffer(buf).kind else {
        return None;
    };
    let slot = *step.args.get(param)?;
    matches!(program.slots[slot.0].kind, SlotKind::Constant(_)).then_some(slot)
}

/// Lays the weights of step `index` out in the order `nest` reads them, when they are a
/// constant only this step uses: one pointer then walks them sequentially. Widens them too if
/// the nest says so ([`minnow_ir::simd::widened`], the offset folded in), and for Winograd
/// pairs moves the weights' cross terms into the bias table. Returns the packed weights'
/// length in elements, if they were packed; an error where Winograd pairs cannot be made.
fn pack_weight(
    program: &mut Program,
    index: usize,
    r: &mut Reduction,
    nest: &LoopNest,
) -> Result<Option<usize>, String> {
    let Some(slot) = private_weight(program, index, r) else {
        return Ok(None);
    };
    let SlotKind::Constant(bytes) = &program.slots[slot.0].kind else {
        return Ok(None);
    };
    if r.weight.packed.is_some() {
        return Ok(None);
    }
    let Some((packing, order)) = r.pack_weight(nest) else {
        return Ok(None);
    };
    let size = program.slots[slot.0].elem.size();
    if order.len() * size != bytes.len() {
        return Ok(None);
    }
    let mut packed: Vec<u8> = order
        .iter()
        .flat_map(|old| bytes[old * size..(old + 1) * size].iter().copied())
        .collect();
    let cross_terms = if nest.winograd {
        let pairs: Vec<i8> = packed.iter().map(|b| *b as i8).collect();
        r.input_lift = simd::winograd_lift(&pairs, r.weight.offset)
            .ok_or("the weights, offset added, span more than Winograd pairs take")?;
        let weights: Vec<i8> = bytes.iter().map(|b| *b as i8).collect();
        let terms = r.cross_terms(nest, &weights);
        Some(terms.ok_or("the weights' cross terms have no single bias entry each")?)
    } else {
        None
    };
    if nest.wide_weights {
        let lanes = r.lanes(nest);
        packed = widened(&packed, size, lanes, r.weight.offset, r.input_lift)
            .ok_or("the weights do not fit the SIMD lanes' 16-bit halves")?;
        r.weight.offset = 0;
    }
    if let Some(terms) = cross_terms {
        subtract_from_bias(program, index, r, &terms)?;
    }
    let slot = &mut program.slots[slot.0];
    slot.len = packed.len() / size;
    slot.kind = SlotKind::Constant(packed);
    r.weight.packed = Some(packing);
    Ok(Some(slot.len))
}

/// Subtracts each `(bias index, term)` from the bias table a Winograd nest starts from.
fn subtract_from_bias(
    program: &mut Program,
    index: usize,
    r: &Reduction,
    terms: &[(i64, i32)],
) -> Result<(), String> {
    let bias = r
        .winograd_bias()
        .and_then(|b| private_constant(program, index, b));
    let Some(bias) = bias else {
        return Err("Winograd pairs need a bias table that no other op reads".into());
    };
    let slot = &mut program.slots[bias.0];
    let SlotKind::Constant(bytes) = &mut slot.kind else {
        return Err("the bias table is not a constant".into());
    };
    if slot.elem != ScalarType::I32 {
        return Err("Winograd pairs need an int32 bias table".into());
    }
    for (at, term) in terms {
        let at = usize::try_from(*at).ok().map(|i| 4 * i);
        let Some(word) = at.and_then(|i| bytes.get_mut(i..i + 4)) else {
            return Err("a channel lies outside the bias table".into());
        };
        let value = i32::from_le_bytes(word.try_into().expect("four bytes"));
        word.copy_from_slice(&value.wrapping_sub(*term).to_le_bytes());
    }
    Ok(())
}

/// Packed int8 weights widened to the 16-bit halves the SIMD `lanes` multiply, `offset`
/// added: pairs for [`Lanes::Pairs`], crossed pairs for [`Lanes::Winograd`] (for inputs
/// lifted by `lift`), the unpacked words of four for the other forms. `None` where the
/// elements are not bytes, do not fill whole lanes, or (crossed) leave the exact range.
fn widened(packed: &[u8], size: usize, lanes: Lanes, offset: i32, lift: i32) -> Option<Vec<u8>> {
    let pairs = matches!(lanes, Lanes::Pairs | Lanes::Winograd);
    let per_word = if pairs { 2 } else { 4 };
    if size != 1 || packed.len() % per_word != 0 {
        return None;
    }
    let chunks = packed.chunks_exact(per_word);
    Some(if lanes == Lanes::Winograd {
        let words: Option<Vec<[u8; 4]>> = chunks
            .map(|w| simd::crossed([w[0] as i8, w[1] as i8], offset, lift))
            .collect();
        words?.concat()
    } else if pairs {
        chunks
            .flat_map(|w| simd::paired([w[0] as i8, w[1] as i8], offset))
            .collect()
    } else {
        chunks
            .flat_map(|w| simd::widened([0, 1, 2, 3].map(|k| w[k] as i8), offset))
            .collect()
    })
}
