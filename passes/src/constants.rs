//! [`ConstantMerger`]: constants with the same bytes stored once.
//!
//! Copies of one op (the bands of patch-based execution, [`crate::patch`]) each get their own
//! weights so that each schedule may lay them out as it likes; where the layouts come out the
//! same, the flash needs them once. Every step reading a duplicate reads the first copy
//! instead, and the duplicate becomes a view of it that nothing reads (the backends emit no
//! data for views).

use minnow_ir::loops::{Program, SlotId, SlotKind};
use std::collections::HashMap;

/// The constant-merging pass.
#[derive(Clone, Copy, Debug, Default)]
pub struct ConstantMerger;

impl ConstantMerger {
    /// Points every step at the first of each set of identical constants; returns the bytes
    /// of flash saved.
    pub fn run(&self, program: &mut Program) -> usize {
        let mut first: HashMap<(String, &[u8]), SlotId> = HashMap::new();
        let mut to: Vec<Option<SlotId>> = vec![None; program.slots.len()];
        for (k, slot) in program.slots.iter().enumerate() {
            if let SlotKind::Constant(bytes) = &slot.kind {
                let key = (slot.elem.name().to_string(), bytes.as_slice());
                let kept = *first.entry(key).or_insert(SlotId(k));
                if kept.0 != k {
                    to[k] = Some(kept);
                }
            }
        }
        let mut saved = 0;
        for (k, kept) in to.iter().enumerate() {
            let Some(base) = *kept else { continue };
            saved += program.slots[k].bytes();
            program.slots[k].kind = SlotKind::View { base, offset: 0 };
        }
        for step in &mut program.steps {
            for a in &mut step.args {
                if let Some(kept) = to[a.0] {
                    *a = kept;
                }
            }
        }
        saved
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minnow_ir::loops::{Access, FuncBuilder, ScalarType, Slot, Step};

    #[test]
    fn identical_constants_are_read_from_one_copy() {
        let constant = |name: &str, bytes: &[u8]| Slot {
            name: name.into(),
            elem: ScalarType::I8,
            len: bytes.len(),
            kind: SlotKind::Constant(bytes.to_vec()),
        };
        let mut f = FuncBuilder::new("f");
        f.param("w", ScalarType::I8, 2, Access::Read);
        let step = |arg: usize| Step {
            name: format!("s{arg}"),
            op: "CONV_2D".into(),
            func: 0,
            args: vec![SlotId(arg)],
            in_place: None,
            macs: 0,
            reduction: None,
        };
        let mut p = Program {
            name: "p".into(),
            slots: vec![
                constant("a", &[1, 2]),
                constant("b", &[1, 2]),
                constant("c", &[2, 1]),
            ],
            funcs: vec![f.finish()],
            steps: vec![step(0), step(1), step(2)],
            inputs: vec![],
            outputs: vec![],
        };
        assert_eq!(ConstantMerger.run(&mut p), 2);
        let args: Vec<usize> = p.steps.iter().map(|s| s.args[0].0).collect();
        assert_eq!(args, vec![0, 0, 2]);
        assert_eq!(p.constant_bytes(), 4);
        assert_eq!(p.verify(), Ok(()));
    }
}
