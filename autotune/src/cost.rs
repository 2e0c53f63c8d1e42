//! [`ScheduleCost`]: what an op costs on a target under its default schedule, the oracle the
//! graph rewriter extracts by.

use crate::tilings::Tilings;
use minnow_ir::loops::Program;
use minnow_ir::WeightLayout;
use minnow_ir::{Graph, Op, TensorType};
use minnow_passes::graph::OpCost;
use minnow_passes::loops::Machine;
use minnow_schedules::Space;
use minnow_targets::{Features, Target};

/// The machine [`minnow_passes::loops::LoopTiler`] costs nests on for `target`: a RISC-V core,
/// or a Cortex-M (with its DSP extension or not; the host is priced as one without).
pub fn machine(target: &Target) -> Machine {
    if target.triple.architecture.to_string().starts_with("riscv") {
        Machine::rv32()
    } else {
        Machine::cortex_m(target.features.dsp)
    }
}

/// Estimated instructions of an op, plus a memory term at [`ARENA_BYTE`] instructions per
/// byte: a multiply-accumulate op is lowered on its own and its default schedule for the
/// target estimated ([`Space::estimate`]); any other op costs two instructions per output
/// element (one pass over memory). The memory term keeps a form that needs a new intermediate
/// tensor (a padded copy) unless it saves many instructions.
pub struct ScheduleCost<'a> {
    /// The target's CPU features (which SIMD forms exist).
    pub features: &'a Features,
    /// The machine the tiler prices widened weights on ([`machine`]).
    pub machine: Machine,
    /// The tiler's nests, shared with the default schedules of the same compile.
    pub tilings: &'a Tilings,
    /// What one more byte of flash costs, in instructions: the price of a multiply-accumulate
    /// op's weights stored [`WeightLayout::Wide`] ([`FLASH_BYTE`] by default; higher where
    /// the model would not fit the target's flash).
    pub flash_byte: f64,
    /// Where set, a copy of a model input (a padded first layer's input) is charged only for
    /// the bytes by which it exceeds the budget, the arena the graph needs anyway (the input
    /// itself is the caller's buffer, and the first layer's output may overlap the copy, see
    /// `minnow_ir::loops::lag`); every other op's output is charged whole.
    pub input_copies: Option<InputCopies>,
}

/// The arena that copies of the model's inputs may use for free ([`ScheduleCost::input_copies`]).
#[derive(Clone, Debug, PartialEq)]
pub struct InputCopies {
    /// Arena bytes the graph needs anyway.
    pub budget: usize,
    /// The model inputs' types: an op reading only operands of these types reads the inputs.
    pub inputs: Vec<TensorType>,
}

/// What one more byte of flash is worth, in instructions, by default. Widening saves about
/// one instruction per four products, so this asks each weight to be used at least 16 times
/// per inference (a convolution over 16 pixels or more); fully connected layers, whose
/// weights are used once, stay in bytes.
pub const FLASH_BYTE: f64 = 4.0;

/// What one byte of intermediate tensor is worth, in instructions: RAM is the scarcer resource
/// on a microcontroller, so a padded copy must save at least this much per byte.
pub const ARENA_BYTE: f64 = 64.0;

impl OpCost for ScheduleCost<'_> {
    fn cost(&self, op: &Op, inputs: &[Option<&TensorType>], output: &TensorType) -> f64 {
        let copied = self.input_copies.as_ref().filter(|c| {
            matches!(op, Op::Pad { .. }) && inputs.iter().flatten().all(|t| c.inputs.contains(t))
        });
        let charged = match copied {
            None => output.bytes(),
            Some(c) => output.bytes().saturating_sub(c.budget),
        };
        let (instructions, added_flash) = self.estimate(op, inputs, output);
        instructions + ARENA_BYTE * charged as f64 + self.flash_byte * added_flash as f64
    }
}

impl<'a> ScheduleCost<'a> {
    /// The cost on `target`: every intermediate byte charged, flash at [`FLASH_BYTE`], the
    /// tilings kept in `tilings`.
    pub fn new(target: &'a Target, tilings: &'a Tilings) -> Self {
        ScheduleCost {
            features: &target.features,
            machine: machine(target),
            tilings,
            flash_byte: FLASH_BYTE,
            input_copies: None,
        }
    }

    /// The estimated instructions alone.
    pub fn instructions(
        &self,
        op: &Op,
        inputs: &[Option<&TensorType>],
        output: &TensorType,
    ) -> f64 {
        self.estimate(op, inputs, output).0
    }

    /// The estimated instructions, and the flash bytes the weights add over their model
    /// layout (one per weight stored [`WeightLayout::Wide`]). A widened op is priced as its
    /// default schedule in bytes less what the tiler finds widening saves
    /// ([`Tilings::widening`]); one whose weights cannot widen costs infinity.
    fn estimate(
        &self,
        op: &Op,
        inputs: &[Option<&TensorType>],
        output: &TensorType,
    ) -> (f64, usize) {
        let elementwise = 2.0 * output.elements() as f64;
        if !matches!(
            op,
            Op::Conv2d { .. }
                | Op::DepthwiseConv2d { .. }
                | Op::FullyConnected { .. }
                | Op::ResidualAdd { .. }
        ) {
            return (elementwise, 0);
        }
        let Some(program) = lowered(op, inputs, output) else {
            // An op minnow cannot lower must not be chosen over one it can.
            return (f64::INFINITY, 0);
        };
        let reductions = program.steps.iter().filter_map(|s| s.reduction.as_ref());
        let (mut total, mut added) = (0.0, 0);
        for r in reductions {
            let space = Space::of(r);
            total += space.estimate(r, &space.default_for(self.features));
            if r.weight_layout == WeightLayout::Wide {
                match self.tilings.widening(r, self.machine) {
                    Some(w) => {
                        total -= w.saved_instructions;
                        added += w.added_flash_bytes;
                    }
                    None => return (f64::INFINITY, 0),
                }
            }
        }
        (total.max(elementwise), added)
    }
}

/// `op` alone, lowered: its operand and result types as given, its weights zeros (their
/// values do not change what it costs). `None` where minnow cannot build or lower it.
fn lowered(op: &Op, inputs: &[Option<&TensorType>], output: &TensorType) -> Option<Program> {
    let mut graph = Graph::new("cost");
    let operands = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            t.map(|t| match i {
                0 => graph.add_input("input", t.clone()),
                _ => graph.add_constant("weights", t.clone(), vec![0; t.bytes()]),
            })
        })
        .collect();
    let out = graph.add_tensor("output", output.clone());
    graph.add_op(op.clone(), operands, vec![out]).ok()?;
    graph.outputs.push(out);
    minnow_ir::lower::lower(&graph).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use minnow_ir::DType;

    /// A copy of a model input is free within the budget and charged for what exceeds it;
    /// a copy of anything else, and every other op's output, is charged whole.
    #[test]
    fn input_copies_are_charged_beyond_the_budget() {
        let target = minnow_targets::find("cortex-m4").unwrap();
        let tilings = Tilings::default();
        let input = TensorType::new(vec![1, 8, 8, 3], DType::I8);
        let padded = TensorType::new(vec![1, 8, 8, 4], DType::I8);
        let other = TensorType::new(vec![1, 8, 8, 2], DType::I8);
        let pad = Op::Pad {
            pads: vec![(0, 0), (0, 0), (0, 0), (0, 1)],
        };
        let cost = |budget: Option<usize>, operand: &TensorType| {
            let c = ScheduleCost {
                input_copies: budget.map(|budget| InputCopies {
                    budget,
                    inputs: vec![input.clone()],
                }),
                ..ScheduleCost::new(&target, &tilings)
            };
            c.cost(&pad, &[Some(operand)], &padded)
        };
        let instructions = 2.0 * padded.elements() as f64;
        let whole = instructions + ARENA_BYTE * padded.bytes() as f64;
        assert_eq!(cost(None, &input), whole);
        assert_eq!(cost(Some(1000), &input), instructions);
        // 256 bytes copied: 56 over a budget of 200.
        assert_eq!(cost(Some(200), &input), instructions + ARENA_BYTE * 56.0);
        assert_eq!(cost(Some(1000), &other), whole);
    }
}
