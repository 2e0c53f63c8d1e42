//! Applying schedules to a lowered [`Program`].

use crate::primitive::{Schedule, ScheduleError};
use crate::space::Space;
use minnow_ir::loops::reduction::{Lanes, LoopNest, Reduction};
use minnow_ir::loops::{BufferKind, FuncBuilder, Program, SlotId, SlotKind};
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
        let weight_len = pack_weight(program, index, &mut r, &nest);
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
    let step = &program.steps[index];
    let func = &program.funcs[step.func];
    let BufferKind::Param { index: param, .. } = func.buffer(r.weight.buf).kind else {
        return None;
    };
    let slot = step.args[param];
    let users = program.steps.iter().filter(|s| s.args.contains(&slot));
    let constant = matches!(program.slots[slot.0].kind, SlotKind::Constant(_));
    (constant && users.count() == 1).then_some(slot)
}

/// Lays the weights of step `index` out in the order `nest` reads them, when they are a
/// constant only this step uses: one pointer then walks them sequentially. Widens them too if
/// the nest says so ([`minnow_ir::simd::widened`], the offset folded in). Returns the packed
/// weights' length in elements, if they were packed.
fn pack_weight(
    program: &mut Program,
    index: usize,
    r: &mut Reduction,
    nest: &LoopNest,
) -> Option<usize> {
    let slot = private_weight(program, index, r)?;
    let SlotKind::Constant(bytes) = &program.slots[slot.0].kind else {
        return None;
    };
    if r.weight.packed.is_some() {
        return None;
    }
    let (packing, order) = r.pack_weight(nest)?;
    let size = program.slots[slot.0].elem.size();
    if order.len() * size != bytes.len() {
        return None;
    }
    let mut packed: Vec<u8> = order
        .iter()
        .flat_map(|old| bytes[old * size..(old + 1) * size].iter().copied())
        .collect();
    if nest.wide_weights {
        packed = widened(&packed, size, r.lanes(nest), r.weight.offset)?;
        r.weight.offset = 0;
    }
    let slot = &mut program.slots[slot.0];
    slot.len = packed.len() / size;
    slot.kind = SlotKind::Constant(packed);
    r.weight.packed = Some(packing);
    Some(slot.len)
}

/// Packed int8 weights widened to the 16-bit halves the SIMD `lanes` multiply, `offset`
/// added: pairs for [`Lanes::Pairs`], the unpacked words of four for the other forms. `None`
/// where the elements are not bytes or do not fill whole lanes.
fn widened(packed: &[u8], size: usize, lanes: Lanes, offset: i32) -> Option<Vec<u8>> {
    let per_word = if lanes == Lanes::Pairs { 2 } else { 4 };
    if size != 1 || packed.len() % per_word != 0 {
        return None;
    }
    let chunks = packed.chunks_exact(per_word);
    Some(if lanes == Lanes::Pairs {
        chunks
            .flat_map(|w| simd::paired([w[0] as i8, w[1] as i8], offset))
            .collect()
    } else {
        chunks
            .flat_map(|w| simd::widened([0, 1, 2, 3].map(|k| w[k] as i8), offset))
            .collect()
    })
}
