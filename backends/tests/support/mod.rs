//! Programs of one step for the backend tests: a function whose parameters are constant
//! slots followed by one output.

use minnow_ir::loops::{Func, Program, ScalarType, Slot, SlotId, SlotKind, Step};

/// A program calling `func` once: its first parameters are bound to `constants` (element
/// type and little-endian bytes, in parameter order) and its last to output 0 of
/// `output.1` elements of type `output.0`.
pub fn one_step_program(
    func: Func,
    constants: Vec<(ScalarType, Vec<u8>)>,
    output: (ScalarType, usize),
) -> Program {
    let mut slots: Vec<Slot> = constants
        .into_iter()
        .enumerate()
        .map(|(k, (elem, bytes))| Slot {
            name: format!("constant{k}"),
            elem,
            len: bytes.len() / elem.size(),
            kind: SlotKind::Constant(bytes),
        })
        .collect();
    slots.push(Slot {
        name: "out".into(),
        elem: output.0,
        len: output.1,
        kind: SlotKind::Output(0),
    });
    Program {
        name: "test".into(),
        steps: vec![Step {
            name: func.name.clone(),
            op: "CUSTOM".into(),
            func: 0,
            args: (0..slots.len()).map(SlotId).collect(),
            in_place: None,
            macs: 0,
            reduction: None,
        }],
        funcs: vec![func],
        inputs: vec![],
        outputs: vec![SlotId(slots.len() - 1)],
        slots,
    }
}

/// A xorshift64 generator from `seed` (not zero): reproducible pseudo-random test data.
pub fn xorshift(seed: u64) -> impl FnMut() -> i64 {
    let mut state = seed;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state as i64
    }
}
