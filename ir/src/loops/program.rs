//! [`Program`]: a whole model in the loop IR — its tensors as slots and one call per op.

use super::{Access, BufferKind, Func, ScalarType};

/// A tensor of the program, by index into [`Program::slots`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SlotId(pub usize);

/// Where a slot's data comes from and lives.
#[derive(Clone, Debug, PartialEq)]
pub enum SlotKind {
    /// Model input number `n`, provided by the caller and only read.
    Input(usize),
    /// Model output number `n`, written into the caller's buffer.
    Output(usize),
    /// An intermediate tensor: lives in the arena between its producer and its last consumer.
    Activation,
    /// Read-only data (weights, biases, derived multipliers) as little-endian bytes: flash.
    Constant(Vec<u8>),
    /// Persistent state (SVDF memory) with its initial bytes (zeros when `None`): kept in the
    /// arena for the whole program and across runs.
    State(Option<Vec<u8>>),
    /// Elements `offset..offset + len` of slot `base`, which holds the bytes: a row band of a
    /// tensor read where it lies, or one part of a concatenation written in place. A view
    /// takes no memory of its own; its base lives as long as any view of it is used.
    View {
        /// The slot holding the elements (itself possibly a view).
        base: SlotId,
        /// The first element, counted in `base`'s elements (the same type as the view's).
        offset: usize,
    },
}

/// One tensor of the program.
#[derive(Clone, Debug, PartialEq)]
pub struct Slot {
    /// The tensor's name in the model (or a derived name for lowering's constants).
    pub name: String,
    /// Element type.
    pub elem: ScalarType,
    /// Number of elements.
    pub len: usize,
    /// Where it lives.
    pub kind: SlotKind,
}

impl Slot {
    /// Size in bytes.
    pub fn bytes(&self) -> usize {
        self.len * self.elem.size()
    }
}

/// One call: `funcs[func](args...)`, for one op of the model.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// The op's output tensor name, which names the layer in reports.
    pub name: String,
    /// The op's TFLite name (`CONV_2D`, ...).
    pub op: String,
    /// Index into [`Program::funcs`].
    pub func: usize,
    /// The slot bound to each parameter of the function.
    pub args: Vec<SlotId>,
    /// Parameter indices `(input, output)` that may share memory: the function reads each
    /// element of that input only before it writes the same element of the output.
    pub in_place: Option<(usize, usize)>,
    /// Multiply-accumulates the op performs (0 for ops without any), for per-layer reports.
    pub macs: u64,
    /// The compute definition of a multiply-accumulate op, from which schedules rebuild
    /// [`Step::func`]'s body.
    pub reduction: Option<super::reduction::Reduction>,
}

/// Where a step's argument lives, as a backend binds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgPlace {
    /// The caller's input number `n`.
    Input(usize),
    /// The caller's output number `n`.
    Output(usize),
    /// A constant slot (flash).
    Constant(SlotId),
    /// The arena, at the slot's planned offset (activations and state).
    Arena(SlotId),
}

/// One argument of a step: its parameter's element type, whether the function only reads it,
/// and where it lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepArg {
    /// The element type.
    pub elem: ScalarType,
    /// The function only reads it.
    pub read_only: bool,
    /// Where it lives.
    pub place: ArgPlace,
    /// Elements from the start of that place to the argument's first (non-zero for a
    /// [`SlotKind::View`]).
    pub offset: usize,
}

/// A model lowered to loop functions.
#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    /// The model's name (a C identifier).
    pub name: String,
    /// Every tensor.
    pub slots: Vec<Slot>,
    /// Every function.
    pub funcs: Vec<Func>,
    /// The calls, in execution order.
    pub steps: Vec<Step>,
    /// The model's inputs, in order.
    pub inputs: Vec<SlotId>,
    /// The model's outputs, in order.
    pub outputs: Vec<SlotId>,
}

impl Program {
    /// The arguments of `step`, in the order of its function's parameters.
    pub fn step_args(&self, step: &Step) -> Vec<StepArg> {
        let func = &self.funcs[step.func];
        func.params()
            .zip(&step.args)
            .map(|((_, param), slot)| {
                let (base, offset) = self.storage(*slot);
                StepArg {
                    elem: param.elem,
                    read_only: matches!(
                        param.kind,
                        BufferKind::Param {
                            access: Access::Read,
                            ..
                        }
                    ),
                    place: match &self.slot(base).kind {
                        SlotKind::Input(n) => ArgPlace::Input(*n),
                        SlotKind::Output(n) => ArgPlace::Output(*n),
                        SlotKind::Constant(_) => ArgPlace::Constant(base),
                        SlotKind::Activation | SlotKind::State(_) | SlotKind::View { .. } => {
                            ArgPlace::Arena(base)
                        }
                    },
                    offset,
                }
            })
            .collect()
    }

    /// The slot that holds `id`'s elements and the offset of its first one there: `id` itself
    /// at 0, or for a [`SlotKind::View`] its innermost base.
    pub fn storage(&self, id: SlotId) -> (SlotId, usize) {
        let (mut at, mut offset) = (id, 0);
        // A chain of views is acyclic (verify checks); the bound keeps a bad one finite.
        for _ in 0..=self.slots.len() {
            match self.slots[at.0].kind {
                SlotKind::View { base, offset: o } => {
                    at = base;
                    offset += o;
                }
                _ => break,
            }
        }
        (at, offset)
    }

    /// The slot `id`.
    pub fn slot(&self, id: SlotId) -> &Slot {
        &self.slots[id.0]
    }

    /// Bytes of constant data (flash).
    pub fn constant_bytes(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| matches!(s.kind, SlotKind::Constant(_)))
            .map(Slot::bytes)
            .sum()
    }

    /// Checks every function and that each step binds slots of the right type and size, and
    /// writes no input or constant.
    pub fn verify(&self) -> Result<(), String> {
        for f in &self.funcs {
            f.verify().map_err(|e| e.to_string())?;
        }
        self.verify_views()?;
        for (k, step) in self.steps.iter().enumerate() {
            let func = self
                .funcs
                .get(step.func)
                .ok_or(format!("step {k} calls a missing function"))?;
            if func.param_count() != step.args.len() {
                return Err(format!(
                    "step {k} passes {} arguments to {} which takes {}",
                    step.args.len(),
                    func.name,
                    func.param_count()
                ));
            }
            for ((_, param), arg) in func.params().zip(&step.args) {
                let slot = self
                    .slots
                    .get(arg.0)
                    .ok_or(format!("step {k}: no slot {}", arg.0))?;
                if slot.elem != param.elem || slot.len < param.len {
                    return Err(format!(
                        "step {k}: slot {} ({}[{}]) does not fit parameter {} of {} ({}[{}])",
                        slot.name,
                        slot.elem.name(),
                        slot.len,
                        param.name,
                        func.name,
                        param.elem.name(),
                        param.len
                    ));
                }
                let writes = matches!(
                    param.kind,
                    BufferKind::Param {
                        access: Access::Write | Access::ReadWrite,
                        ..
                    }
                );
                let held = &self.slot(self.storage(*arg).0).kind;
                if writes && matches!(held, SlotKind::Input(_) | SlotKind::Constant(_)) {
                    return Err(format!(
                        "step {k}: {} writes read-only slot {}",
                        func.name, slot.name
                    ));
                }
            }
        }
        Ok(())
    }

    /// Checks that every view lies inside its base, has its element type, and that no chain of
    /// views comes back on itself.
    fn verify_views(&self) -> Result<(), String> {
        for slot in &self.slots {
            let SlotKind::View { base, offset } = slot.kind else {
                continue;
            };
            let Some(held) = self.slots.get(base.0) else {
                return Err(format!("view {} has no base slot {}", slot.name, base.0));
            };
            if held.elem != slot.elem || offset + slot.len > held.len {
                return Err(format!(
                    "view {} ({}[{}] at {offset}) does not lie inside {} ({}[{}])",
                    slot.name,
                    slot.elem.name(),
                    slot.len,
                    held.name,
                    held.elem.name(),
                    held.len
                ));
            }
        }
        // Every base exists now. storage() stops after as many steps as there are slots: a
        // view it ends on is in a cycle.
        for (k, slot) in self.slots.iter().enumerate() {
            let held = self.storage(SlotId(k)).0;
            if matches!(self.slots[held.0].kind, SlotKind::View { .. }) {
                return Err(format!(
                    "the bases of view {} come back on themselves",
                    slot.name
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(base: usize, offset: usize) -> Slot {
        Slot {
            name: format!("v{base}"),
            elem: ScalarType::I8,
            len: 2,
            kind: SlotKind::View {
                base: SlotId(base),
                offset,
            },
        }
    }

    fn program(slots: Vec<Slot>) -> Program {
        Program {
            name: "p".into(),
            slots,
            funcs: vec![],
            steps: vec![],
            inputs: vec![],
            outputs: vec![],
        }
    }

    #[test]
    fn views_resolve_to_their_base_and_bad_ones_are_refused() {
        let whole = Slot {
            name: "whole".into(),
            elem: ScalarType::I8,
            len: 8,
            kind: SlotKind::Activation,
        };
        let ok = program(vec![whole.clone(), view(0, 4), view(1, 0)]);
        assert_eq!(ok.verify(), Ok(()));
        assert_eq!(ok.storage(SlotId(2)), (SlotId(0), 4));
        let outside = program(vec![whole.clone(), view(0, 7)]);
        assert!(outside
            .verify()
            .unwrap_err()
            .contains("does not lie inside"));
        let missing = program(vec![whole.clone(), view(2, 0), view(9, 0)]);
        assert!(missing.verify().unwrap_err().contains("no base slot 9"));
        let cycle = program(vec![whole, view(2, 0), view(1, 0)]);
        assert!(cycle
            .verify()
            .unwrap_err()
            .contains("come back on themselves"));
    }
}
