//! The reference interpreter: runs a [`Graph`] on the host, bit for bit as TensorFlow Lite
//! Micro's reference kernels do for int8 and int16 models (float models run too).
//!
//! [`Interpreter::new`] prepares one kernel per op (deriving multipliers from scales, decoding
//! weights) and checks that every op is one the interpreter can run; [`Interpreter::run`] then
//! executes them in [`Graph::execution_order`]. State tensors (SVDF memory) persist across runs,
//! as they do in TFLite Micro, until [`Interpreter::reset`].
//!
//! This is the semantics every backend is tested against; it favours clarity over speed.

mod buffer;
mod conv;
mod elementwise;
mod fused;
mod layout;
mod matmul;
mod pool;
mod softmax;
mod svdf;
#[cfg(test)]
mod tests;

pub use buffer::Buffer;

use crate::error::Error;
use crate::graph::{Graph, Node, TensorId, TensorKind};
use crate::op::Op;
use crate::types::TensorType;

/// A prepared kernel: runs one op on buffers.
pub(crate) trait Kernel {
    /// Computes `output` from the op's operands (`None` for an omitted optional operand). `state`
    /// is the op's persistent state tensor, if it has one.
    fn run(&self, inputs: &[Option<&Buffer>], output: &mut Buffer, state: Option<&mut Buffer>);
}

/// One prepared op.
struct Step {
    kernel: Box<dyn Kernel>,
    inputs: Vec<Option<TensorId>>,
    output: TensorId,
    output_type: TensorType,
    /// The operand that is persistent state, if any.
    state: Option<TensorId>,
}

/// A graph prepared for execution.
pub struct Interpreter {
    steps: Vec<Step>,
    inputs: Vec<(TensorId, TensorType)>,
    outputs: Vec<TensorId>,
    /// Current value of every tensor that has one.
    values: Vec<Option<Buffer>>,
    /// Initial values of state tensors, for [`Interpreter::reset`].
    initial_state: Vec<(TensorId, Buffer)>,
}

impl Interpreter {
    /// Prepares `graph`. Fails with [`Error::UnsupportedUse`] for an op whose types or options
    /// the interpreter does not implement.
    pub fn new(graph: &Graph) -> Result<Interpreter, Error> {
        graph.verify()?;
        let mut values: Vec<Option<Buffer>> = vec![None; graph.tensor_count()];
        let mut initial_state = Vec::new();
        for (id, t) in graph.tensors() {
            match t.kind {
                TensorKind::Constant => {
                    values[id.index()] = Some(Buffer::from_le_bytes(
                        t.ty.dtype,
                        t.data.as_deref().unwrap_or_default(),
                    ));
                }
                TensorKind::State => {
                    let init = match &t.data {
                        Some(d) => Buffer::from_le_bytes(t.ty.dtype, d),
                        None => Buffer::zeros(t.ty.dtype, t.ty.elements()),
                    };
                    initial_state.push((id, init));
                }
                TensorKind::Activation => {}
            }
        }
        let mut steps = Vec::new();
        for (position, op) in graph.execution_order().into_iter().enumerate() {
            let node = graph.node(op);
            let kernel = prepare(graph, node).map_err(|reason| Error::UnsupportedUse {
                path: graph.name.clone(),
                op: node.op.tflite_name().to_string(),
                index: position,
                reason,
            })?;
            let state = node
                .inputs
                .iter()
                .flatten()
                .copied()
                .find(|t| graph.tensor(*t).kind == TensorKind::State);
            steps.push(Step {
                kernel,
                inputs: node.inputs.clone(),
                output: node.outputs[0],
                output_type: graph.tensor(node.outputs[0]).ty.clone(),
                state,
            });
        }
        let inputs = graph
            .inputs
            .iter()
            .map(|t| (*t, graph.tensor(*t).ty.clone()))
            .collect();
        let mut interp = Interpreter {
            steps,
            inputs,
            outputs: graph.outputs.clone(),
            values,
            initial_state,
        };
        interp.reset();
        Ok(interp)
    }

    /// Restores every state tensor to its initial value.
    pub fn reset(&mut self) {
        for (id, init) in &self.initial_state {
            self.values[id.index()] = Some(init.clone());
        }
    }

    /// The expected type of each input, in order.
    pub fn input_types(&self) -> impl ExactSizeIterator<Item = &TensorType> {
        self.inputs.iter().map(|(_, ty)| ty)
    }

    /// Runs one inference on raw little-endian input bytes (one vector per graph input, in the
    /// model's order) and returns the raw bytes of each output.
    pub fn run(&mut self, inputs: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, Error> {
        check_inputs(self.input_types(), inputs)?;
        for ((id, ty), bytes) in self.inputs.iter().zip(inputs) {
            self.values[id.index()] = Some(Buffer::from_le_bytes(ty.dtype, bytes));
        }
        self.execute();
        Ok(self
            .outputs
            .iter()
            .map(|t| {
                self.values[t.index()]
                    .as_ref()
                    .map(Buffer::to_le_bytes)
                    .unwrap_or_default()
            })
            .collect())
    }

    /// Runs every step on the current values.
    fn execute(&mut self) {
        for step in &self.steps {
            let mut output = self.values[step.output.index()].take().unwrap_or_else(|| {
                Buffer::zeros(step.output_type.dtype, step.output_type.elements())
            });
            let mut state = step.state.and_then(|s| self.values[s.index()].take());
            let inputs: Vec<Option<&Buffer>> = step
                .inputs
                .iter()
                .map(|t| {
                    t.filter(|t| Some(*t) != step.state)
                        .and_then(|t| self.values[t.index()].as_ref())
                })
                .collect();
            step.kernel.run(&inputs, &mut output, state.as_mut());
            if let (Some(s), Some(buf)) = (step.state, state) {
                self.values[s.index()] = Some(buf);
            }
            self.values[step.output.index()] = Some(output);
        }
    }
}

/// Checks raw input tensors against a model's input types: one per input, each of exactly
/// the type's size. The error names the input, the size given and the size expected.
pub fn check_inputs<'t>(
    types: impl ExactSizeIterator<Item = &'t TensorType>,
    inputs: &[Vec<u8>],
) -> Result<(), Error> {
    if inputs.len() != types.len() {
        return Err(Error::BadInput(format!(
            "the model has {} input(s) but {} were given",
            types.len(),
            inputs.len()
        )));
    }
    for (k, (ty, bytes)) in types.zip(inputs).enumerate() {
        if bytes.len() != ty.bytes() {
            return Err(Error::BadInput(format!(
                "input {k} has {} bytes but the model expects {} ({ty}: {} elements of {} byte(s))",
                bytes.len(),
                ty.bytes(),
                ty.elements(),
                ty.dtype.size()
            )));
        }
    }
    Ok(())
}

/// Prepares the kernel of one op.
fn prepare(g: &Graph, node: &Node) -> Result<Box<dyn Kernel>, String> {
    match &node.op {
        Op::Conv2d { .. } | Op::DepthwiseConv2d { .. } | Op::FullyConnected { .. } => {
            conv::prepare(g, node)
        }
        Op::AvgPool2d { .. } | Op::MaxPool2d { .. } => pool::prepare(g, node),
        Op::Softmax { .. } => softmax::prepare(g, node),
        Op::BatchMatMul => matmul::prepare(g, node),
        Op::Svdf { .. } => svdf::prepare(g, node),
        Op::Reshape
        | Op::Pad { .. }
        | Op::Slice { .. }
        | Op::Concat { .. }
        | Op::Transpose { .. }
        | Op::Mean { .. } => layout::prepare(g, node),
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
        | Op::Tanh => elementwise::prepare(g, node),
        Op::ResidualAdd { .. } => fused::prepare(g, node),
    }
}

/// The type of operand `i` of `node`.
pub(crate) fn operand_type<'g>(g: &'g Graph, node: &Node, i: usize) -> &'g TensorType {
    &g.tensor(node.inputs[i].expect("verified operand")).ty
}

/// The type of `node`'s output.
pub(crate) fn output_type<'g>(g: &'g Graph, node: &Node) -> &'g TensorType {
    &g.tensor(node.outputs[0]).ty
}
