//! Applying schedules to a lowered [`Program`].

use crate::primitive::{Schedule, ScheduleError};
use crate::space::Space;
use minnow_ir::loops::reduction::{LoopNest, Reduction};
use minnow_ir::loops::{BufferKind, FuncBuilder, Program, SlotKind};
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
        pack_weight(program, index, &mut r, &nest);
        let step = &program.steps[index];
        let old = &program.funcs[step.func];
        let params_first = old
            .buffers
            .iter()
            .skip_while(|b| matches!(b.kind, BufferKind::Param { .. }))
            .all(|b| b.kind == BufferKind::Local);
        let fail = |reason: String| ScheduleError {
            step: schedule.steps.len(),
            reason: format!("{}: {reason}", old.name),
        };
        if !params_first {
            return Err(fail("its parameters are not declared first".into()));
        }
        let mut f = FuncBuilder::with_params_of(old);
        r.build(&nest, &mut f).map_err(fail)?;
        let func = step.func;
        program.funcs[func] = f.finish();
        program.steps[index].reduction = Some(r);
    }
    Ok(())
}

/// Lays the weights of step `index` out in the order `nest` reads them, when they are a
/// constant only this step uses: one pointer then walks them sequentially.
fn pack_weight(program: &mut Program, index: usize, r: &mut Reduction, nest: &LoopNest) {
    let step = &program.steps[index];
    let func = &program.funcs[step.func];
    let BufferKind::Param { index: param, .. } = func.buffer(r.weight.buf).kind else {
        return;
    };
    let slot = step.args[param];
    let users = program
        .steps
        .iter()
        .filter(|s| s.args.contains(&slot))
        .count();
    let SlotKind::Constant(bytes) = &program.slots[slot.0].kind else {
        return;
    };
    if users != 1 || r.weight.packed.is_some() {
        return;
    }
    let Some((packing, order)) = r.pack_weight(nest) else {
        return;
    };
    let size = program.slots[slot.0].elem.size();
    if order.len() * size != bytes.len() {
        return;
    }
    let packed = order
        .iter()
        .flat_map(|old| bytes[old * size..(old + 1) * size].iter().copied())
        .collect();
    program.slots[slot.0].kind = SlotKind::Constant(packed);
    r.weight.packed = Some(packing);
}
