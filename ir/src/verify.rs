//! The graph verifier: checks every invariant the interpreter and the backends rely on.
//!
//! It runs after import and after every pass in tests. It checks that ids resolve, that the graph
//! is acyclic and fully defined (every tensor an op reads is an input, a constant, a state or
//! written by an earlier op), that constants hold exactly the bytes their type needs, that
//! per-channel quantization matches its axis, and that every op's output shape is the one its
//! operands imply.

use crate::error::Error;
use crate::graph::{Graph, Node, OpId, TensorKind};
use crate::op::Op;
use crate::types::{DType, Quant};

impl Graph {
    /// Checks the graph's invariants; the error names the first op or tensor that breaks one.
    pub fn verify(&self) -> Result<(), Error> {
        self.verify_tensors()?;
        let order = self.execution_order();
        if order.len() != self.op_count() {
            return Err(Error::invalid("the graph has a cycle"));
        }
        let mut defined: Vec<bool> = self
            .tensors()
            .map(|(id, t)| t.kind != TensorKind::Activation || self.inputs.contains(&id))
            .collect();
        for id in order {
            let node = self.node(id);
            for t in node.inputs.iter().flatten() {
                if !defined[t.index()] {
                    return Err(Error::invalid(format!(
                        "{id} ({}) reads {t} \"{}\", which nothing computes",
                        node.op.name(),
                        self.tensor(*t).name
                    )));
                }
            }
            self.verify_node(id, node)?;
            for t in &node.outputs {
                defined[t.index()] = true;
            }
        }
        for t in &self.outputs {
            if t.index() >= self.tensor_count() || !defined[t.index()] {
                return Err(Error::invalid(format!(
                    "graph output {t} is never computed"
                )));
            }
        }
        Ok(())
    }

    fn verify_tensors(&self) -> Result<(), Error> {
        for t in self.inputs.iter().chain(&self.outputs) {
            if t.index() >= self.tensor_count() {
                return Err(Error::invalid(format!(
                    "graph input/output {t} does not exist"
                )));
            }
        }
        for (id, t) in self.tensors() {
            if let Some(data) = &t.data {
                if data.len() != t.ty.bytes() {
                    return Err(Error::invalid(format!(
                        "constant {id} \"{}\" of type {} holds {} bytes, expected {}",
                        t.name,
                        t.ty,
                        data.len(),
                        t.ty.bytes()
                    )));
                }
            }
            if let Some(Quant::PerChannel {
                scales,
                zero_points,
                axis,
            }) = &t.ty.quant
            {
                let dim = t.ty.shape.get(*axis).copied();
                if dim != Some(scales.len()) || zero_points.len() != scales.len() {
                    return Err(Error::invalid(format!(
                        "tensor {id} \"{}\": {} per-channel scales along axis {axis} of shape {:?}",
                        t.name,
                        scales.len(),
                        t.ty.shape
                    )));
                }
            }
        }
        Ok(())
    }

    fn verify_node(&self, id: OpId, node: &Node) -> Result<(), Error> {
        let fail = |msg: String| Error::invalid(format!("{id} ({}): {msg}", node.op.name()));
        if let Some(parts) = crate::fused::residual_add_parts(self, node) {
            return parts
                .and_then(|p| p.verify())
                .map_err(|e| fail(e.to_string()));
        }
        let (min_in, max_in) = arity(&node.op);
        let n_in = node.inputs.len();
        if n_in < min_in || n_in > max_in || node.outputs.len() != 1 {
            return Err(fail(format!(
                "takes {min_in}..={max_in} inputs and 1 output, has {n_in} and {}",
                node.outputs.len()
            )));
        }
        for (i, t) in node.inputs.iter().enumerate() {
            if t.is_none() && !optional_operand(&node.op, i) {
                return Err(fail(format!("operand {i} is required")));
            }
        }
        let out = &self.tensor(node.outputs[0]).ty;
        let expected = crate::shape::infer(self, node).map_err(fail)?;
        if expected != out.shape {
            return Err(fail(format!(
                "output shape {:?} disagrees with the operands, which give {:?}",
                out.shape, expected
            )));
        }
        let input = &self
            .tensor(node.inputs[0].expect("operand 0 is never optional"))
            .ty;
        let same_dtype = !matches!(node.op, Op::Quantize | Op::Dequantize | Op::Softmax { .. });
        if same_dtype && input.dtype != out.dtype {
            return Err(fail(format!(
                "input is {} but output is {}",
                input.dtype, out.dtype
            )));
        }
        if matches!(node.op, Op::Dequantize) && out.dtype != DType::F32 {
            return Err(fail(format!("output must be f32, is {}", out.dtype)));
        }
        Ok(())
    }
}

/// Minimum and maximum operand counts of an op.
fn arity(op: &Op) -> (usize, usize) {
    match op {
        Op::Conv2d { .. } | Op::DepthwiseConv2d { .. } | Op::FullyConnected { .. } => (2, 3),
        Op::Add { .. } | Op::Mul { .. } | Op::Sub { .. } | Op::Div { .. } | Op::BatchMatMul => {
            (2, 2)
        }
        Op::Svdf { .. } => (5, 5),
        Op::Concat { .. } => (1, usize::MAX),
        _ => (1, 1),
    }
}

/// Whether operand `i` of `op` may be omitted (the bias of conv, depthwise, FC and SVDF).
fn optional_operand(op: &Op, i: usize) -> bool {
    match op {
        Op::Conv2d { .. } | Op::DepthwiseConv2d { .. } | Op::FullyConnected { .. } => i == 2,
        Op::Svdf { .. } => i == 3,
        _ => false,
    }
}
