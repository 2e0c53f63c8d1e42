//! Lowering: each op of a [`Graph`] becomes one loop function of a [`Program`].
//!
//! The loop nests follow TFLite Micro's reference kernels, and every quantized step is a call
//! of a [`crate::fixedpoint`] intrinsic with parameters derived by [`crate::qparams`], exactly
//! as the graph interpreter derives them; the program's interpreter
//! ([`crate::loops::interp::ProgramInterp`]) therefore gives the graph interpreter's bytes. A
//! RESHAPE lowers to nothing: its output shares its input's slot.
//!
//! ```no_run
//! let bytes = std::fs::read("../shared/models/kws.tflite").unwrap();
//! let graph = minnow_ir::import::tflite::import(&bytes, "kws").unwrap();
//! let program = minnow_ir::lower::lower(&graph).unwrap();
//! let mut run = minnow_ir::loops::interp::ProgramInterp::new(&program).unwrap();
//! let outputs = run.run(&[vec![0u8; 490]]).unwrap();
//! assert_eq!(outputs[0].len(), 12);
//! ```

mod elementwise;
mod layout;
mod mac;
mod matmul;
mod pool;
mod softmax;
mod svdf;
#[cfg(test)]
mod tests;
mod views;

pub(crate) use elementwise::{add_tables, quantized_add};

use crate::error::Error;
use crate::graph::{Graph, Node, TensorId, TensorKind};
use crate::interp::Interpreter;
use crate::loops::reduction::Reduction;
use crate::loops::{Access, BufId, Expr, FuncBuilder, Program, ScalarType, Slot, SlotId};
use crate::loops::{Intrinsic, SlotKind, Step};
use crate::op::Op;
use crate::types::{DType, TensorType};

/// Lowers `graph` to a loop program. The graph must be one the reference interpreter accepts;
/// ops it accepts that the lowering does not yet handle (float kernels) are refused with
/// [`Error::UnsupportedUse`].
pub fn lower(graph: &Graph) -> Result<Program, Error> {
    // The interpreter's preparation checks every op's types and options; lowering supports a
    // subset of what it accepts and reuses its verdicts and messages.
    Interpreter::new(graph)?;
    for (k, t) in graph.outputs.iter().enumerate() {
        let name = &graph.tensor(*t).name;
        if graph.producer(*t).is_none() || graph.outputs[..k].contains(t) {
            return Err(Error::invalid(format!(
                "model output {name} is not computed by its own op (it is an input, a constant \
                 or listed twice); minnow compiles only outputs that ops produce"
            )));
        }
    }
    let mut cx = Lowering::new(graph);
    for (position, op) in graph.execution_order().into_iter().enumerate() {
        let node = graph.node(op);
        cx.lower_node(node, position)
            .map_err(|reason| Error::UnsupportedUse {
                path: graph.name.clone(),
                op: node.op.tflite_name().to_string(),
                index: position,
                reason,
            })?;
    }
    let program = cx.finish();
    debug_assert_eq!(program.verify(), Ok(()));
    Ok(program)
}

/// A C identifier made from `name`.
pub fn c_identifier(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if !s.starts_with(|c: char| c.is_ascii_alphabetic()) {
        s.insert(0, 'm');
    }
    s
}

/// The state of a lowering: the slots made so far and the slot of each graph tensor.
struct Lowering<'g> {
    graph: &'g Graph,
    program: Program,
    slot_of: Vec<Option<SlotId>>,
    /// The tensors computed straight into a part of another ([`views::concat_parts`]): the
    /// tensor holding them and the element where each starts.
    part_of: Vec<Option<(TensorId, usize)>>,
}

impl<'g> Lowering<'g> {
    fn new(graph: &'g Graph) -> Self {
        let mut cx = Lowering {
            graph,
            program: Program {
                name: c_identifier(&graph.name),
                slots: Vec::new(),
                funcs: Vec::new(),
                steps: Vec::new(),
                inputs: Vec::new(),
                outputs: Vec::new(),
            },
            slot_of: vec![None; graph.tensor_count()],
            part_of: views::concat_parts(graph),
        };
        for (n, t) in graph.inputs.iter().enumerate() {
            let slot = cx.new_slot(*t, SlotKind::Input(n));
            cx.program.inputs.push(slot);
        }
        for (n, t) in graph.outputs.iter().enumerate() {
            let slot = cx.new_slot(*t, SlotKind::Output(n));
            cx.program.outputs.push(slot);
        }
        cx
    }

    fn new_slot(&mut self, t: TensorId, kind: SlotKind) -> SlotId {
        let tensor = self.graph.tensor(t);
        self.program.slots.push(Slot {
            name: tensor.name.clone(),
            elem: ScalarType::of(tensor.ty.dtype),
            len: tensor.ty.elements(),
            kind,
        });
        let slot = SlotId(self.program.slots.len() - 1);
        self.slot_of[t.index()] = Some(slot);
        slot
    }

    /// The slot of tensor `t`, made on first use.
    fn slot(&mut self, t: TensorId) -> SlotId {
        if let Some(s) = self.slot_of[t.index()] {
            return s;
        }
        if let Some((whole, offset)) = self.part_of[t.index()] {
            let base = self.slot(whole);
            return self.new_slot(t, SlotKind::View { base, offset });
        }
        let tensor = self.graph.tensor(t);
        let kind = match tensor.kind {
            TensorKind::Constant => SlotKind::Constant(tensor.data.clone().unwrap_or_default()),
            TensorKind::State => SlotKind::State(tensor.data.clone()),
            TensorKind::Activation => SlotKind::Activation,
        };
        self.new_slot(t, kind)
    }

    fn lower_node(&mut self, node: &Node, position: usize) -> Result<(), String> {
        let out = node.outputs[0];
        let is_model_output = self.graph.outputs.contains(&out);
        if node.op == Op::Reshape && !is_model_output {
            // Same bytes, new shape: share the slot.
            let input = self.slot(node.inputs[0].expect("verified"));
            self.slot_of[out.index()] = Some(input);
            return Ok(());
        }
        if views::written_in_place(self.graph, node, &self.part_of) {
            // Every part was computed where it lies in the output.
            return Ok(());
        }
        if let Some(offset) = views::slice_offset(self.graph, node).filter(|_| !is_model_output) {
            // A contiguous block: read where it lies.
            let base = self.slot(node.inputs[0].expect("verified"));
            self.new_slot(out, SlotKind::View { base, offset });
            return Ok(());
        }
        let name = format!("l{position}_{}", node.op.tflite_name().to_ascii_lowercase());
        let mut k = Kernel {
            cx: self,
            node,
            f: FuncBuilder::new(name.clone()),
            name,
            args: Vec::new(),
            in_place: None,
            reduction: None,
            split_macs: 0,
        };
        match &node.op {
            Op::Conv2d { .. }
            | Op::DepthwiseConv2d { .. }
            | Op::FullyConnected { .. }
            | Op::ResidualAdd { .. } => mac::lower(&mut k)?,
            Op::AvgPool2d { .. } | Op::MaxPool2d { .. } => pool::lower(&mut k)?,
            Op::Softmax { .. } => softmax::lower(&mut k)?,
            Op::BatchMatMul => matmul::lower(&mut k)?,
            Op::Svdf { .. } => svdf::lower(&mut k)?,
            Op::Reshape
            | Op::Pad { .. }
            | Op::Slice { .. }
            | Op::Concat { .. }
            | Op::Transpose { .. } => layout::lower(&mut k)?,
            Op::Mean { .. } => layout::lower_mean(&mut k)?,
            Op::Add { .. }
            | Op::Mul { .. }
            | Op::Sub { .. }
            | Op::Div { .. }
            | Op::Clamp { .. }
            | Op::Quantize
            | Op::Dequantize
            | Op::Relu
            | Op::Relu6
            | Op::Logistic
            | Op::Tanh => elementwise::lower(&mut k)?,
        }
        let (func, args, in_place, reduction) = (k.f.finish(), k.args, k.in_place, k.reduction);
        let split_macs = k.split_macs;
        let tensor_name = self.graph.tensor(out).name.clone();
        self.program.funcs.push(func);
        self.program.steps.push(Step {
            name: tensor_name,
            op: node.op.tflite_name().to_string(),
            func: self.program.funcs.len() - 1,
            args,
            in_place,
            macs: crate::stats::op_macs(self.graph, node).saturating_sub(split_macs),
            reduction,
        });
        Ok(())
    }

    fn finish(self) -> Program {
        self.program
    }
}

/// One op being lowered: the function under construction and the slots bound to its
/// parameters.
pub(crate) struct Kernel<'a, 'g> {
    cx: &'a mut Lowering<'g>,
    /// The op.
    pub node: &'a Node,
    /// The function.
    pub f: FuncBuilder,
    /// The function's name (steps split off take it with a suffix).
    name: String,
    args: Vec<SlotId>,
    in_place: Option<(usize, usize)>,
    reduction: Option<Reduction>,
    /// Multiply-accumulates of the steps split off so far ([`Kernel::split_step`]).
    split_macs: u64,
}

impl Kernel<'_, '_> {
    /// The type of operand `i`.
    pub fn operand(&self, i: usize) -> &TensorType {
        &self
            .cx
            .graph
            .tensor(self.node.inputs[i].expect("verified operand"))
            .ty
    }

    /// Whether optional operand `i` is present.
    pub fn has_operand(&self, i: usize) -> bool {
        self.node.inputs.get(i).copied().flatten().is_some()
    }

    /// The type of the output.
    pub fn output_type(&self) -> &TensorType {
        &self.cx.graph.tensor(self.node.outputs[0]).ty
    }

    fn bind(&mut self, name: &str, t: TensorId, access: Access) -> BufId {
        let slot = self.cx.slot(t);
        let s = &self.cx.program.slots[slot.0];
        let buf = self.f.param(name, s.elem, s.len, access);
        self.args.push(slot);
        buf
    }

    /// Binds operand `i` as a read-only parameter.
    pub fn input(&mut self, name: &str, i: usize) -> BufId {
        self.bind(
            name,
            self.node.inputs[i].expect("verified operand"),
            Access::Read,
        )
    }

    /// Binds operand `i` as persistent state (read and written).
    pub fn state(&mut self, name: &str, i: usize) -> BufId {
        self.bind(
            name,
            self.node.inputs[i].expect("verified operand"),
            Access::ReadWrite,
        )
    }

    /// Ends a step of the op's own: what the kernel built so far (function, bound slots,
    /// reduction) becomes a step named after the op's output with `/part` appended, of
    /// `macs` multiply-accumulates, and the kernel goes on with a new function. An op whose
    /// parts schedule apart (SVDF's feature projection, a fully connected reduction between
    /// the state's shift and its time filter) lowers to several steps this way; they keep
    /// their order, as each touches the slot the next one reads.
    pub fn split_step(&mut self, part: &str, macs: u64) {
        let fresh = FuncBuilder::new(self.name.clone());
        let mut func = std::mem::replace(&mut self.f, fresh).finish();
        func.name = format!("{}_{part}", self.name);
        let program = &mut self.cx.program;
        program.funcs.push(func);
        let output = self.node.outputs[0];
        program.steps.push(Step {
            name: format!("{}/{part}", self.cx.graph.tensor(output).name),
            op: self.node.op.tflite_name().to_string(),
            func: program.funcs.len() - 1,
            args: std::mem::take(&mut self.args),
            in_place: self.in_place.take(),
            macs,
            reduction: self.reduction.take(),
        });
        self.split_macs += macs;
    }

    /// Records the op's compute definition for the schedules.
    pub fn set_reduction(&mut self, r: Reduction) {
        self.reduction = Some(r);
    }

    /// Binds the output.
    pub fn output(&mut self, name: &str) -> BufId {
        self.bind(name, self.node.outputs[0], Access::Write)
    }

    /// Marks parameters `input` and `output` (indices in binding order) as safe to share
    /// memory: the function reads each input element only before writing the same output
    /// element.
    pub fn allow_in_place(&mut self, input: usize, output: usize) {
        self.in_place = Some((input, output));
    }

    /// A new constant slot of `i32` values (derived per-channel parameters), bound as a
    /// read-only parameter.
    pub fn constant_i32(&mut self, name: &str, values: &[i32]) -> BufId {
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.constant(name, ScalarType::I32, values.len(), bytes)
    }

    /// A new constant slot of raw little-endian elements, bound as a read-only parameter.
    pub fn constant(&mut self, name: &str, elem: ScalarType, len: usize, bytes: Vec<u8>) -> BufId {
        let slot_name = format!("{}_{name}", self.f_name());
        self.cx.program.slots.push(Slot {
            name: slot_name,
            elem,
            len,
            kind: SlotKind::Constant(bytes),
        });
        self.args.push(SlotId(self.cx.program.slots.len() - 1));
        self.f.param(name, elem, len, Access::Read)
    }

    fn f_name(&self) -> String {
        let output = self.node.outputs[0];
        format!("t{}", output.index())
    }
}

/// `buf[index]` widened to `i32`.
pub(crate) fn load_i32(buf: BufId, index: Expr) -> Expr {
    Expr::load(buf, index).cast(ScalarType::I32)
}

/// `x * multiplier * 2^shift / 2^31` rounded as TFLite's `MultiplyByQuantizedMultiplier` (and
/// `MultiplyByQuantizedMultiplierSmallerThanOneExp`, the same for `shift <= 0`) rounds it: the
/// one-multiply form where the scale allows it ([`crate::fixedpoint::high_shift_of`]).
pub(crate) fn scaled(x: Expr, multiplier: i32, shift: i32) -> Expr {
    let (intrinsic, shift) = match crate::fixedpoint::high_shift_of(multiplier, shift) {
        Some(high) => (Intrinsic::MultiplyByQuantizedMultiplierHighShift, high),
        None => (Intrinsic::MultiplyByQuantizedMultiplier, shift),
    };
    Expr::call(intrinsic, vec![x, Expr::i32(multiplier), Expr::i32(shift)])
}

/// Clamps an `i32` value to `[lo, hi]` and narrows it to `elem`.
pub(crate) fn clamp_to(value: Expr, lo: i64, hi: i64, elem: ScalarType) -> Expr {
    let (lo, hi) = (
        lo.max(i32::MIN as i64) as i32,
        hi.min(i32::MAX as i64) as i32,
    );
    value.clamp(Expr::i32(lo), Expr::i32(hi)).cast(elem)
}

/// The integer range of `dtype` as `i64`s (floats have none: lowering rejects them earlier).
pub(crate) fn int_range(dtype: DType) -> Result<(i64, i64), String> {
    dtype
        .int_range()
        .ok_or_else(|| format!("{dtype} kernels are not lowered yet (integer models only)"))
}

/// Row-major strides of `shape`.
pub(crate) fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

/// A loop nest over every coordinate of `shape` (outermost first); `body` receives the
/// coordinates.
pub(crate) fn for_each_coord(
    f: &mut FuncBuilder,
    shape: &[usize],
    names: &str,
    body: &mut dyn FnMut(&mut FuncBuilder, &[Expr]),
) {
    fn nest(
        f: &mut FuncBuilder,
        shape: &[usize],
        names: &str,
        coords: &mut Vec<Expr>,
        body: &mut dyn FnMut(&mut FuncBuilder, &[Expr]),
    ) {
        let Some((&extent, rest)) = shape.split_first() else {
            body(f, coords);
            return;
        };
        let name = format!("{names}{}", coords.len());
        f.for_loop(&name, extent, |f, i| {
            coords.push(i);
            nest(f, rest, names, coords, body);
            coords.pop();
        });
    }
    nest(f, shape, names, &mut Vec::new(), body)
}

/// `Σ coord[d] * stride[d]` as an `i32` expression, skipping zero strides.
pub(crate) fn linear_index(coords: &[Expr], strides: &[usize]) -> Expr {
    coords
        .iter()
        .zip(strides)
        .filter(|(_, s)| **s != 0)
        .map(|(c, s)| {
            if *s == 1 {
                c.clone()
            } else {
                c.clone() * Expr::idx(*s)
            }
        })
        .reduce(|a, b| a + b)
        .unwrap_or(Expr::i32(0))
}
