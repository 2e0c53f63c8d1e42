//! Fused ops as the op sequences they stand for.
//!
//! A graph pass fuses ops that the code generator runs as one kernel (today
//! [`Op::ResidualAdd`]: a multiply-accumulate op with the ADD that follows it). Whatever checks
//! or computes a fused op without a kernel of its own (the verifier, the reference interpreter,
//! the statistics) asks for the ops it stands for, as a small graph of their own, so the fused
//! op means exactly what the unfused ops mean.

use crate::graph::{Graph, Node, TensorKind};
use crate::op::Op;
use crate::Error;

/// The two-op graph an [`Op::ResidualAdd`] node of `g` stands for: the multiply-accumulate op
/// writing a tensor of its `mac_output` type, then ADD with the other addend into a tensor of
/// the node's output type, the graph's one output. The node's operands keep their order: the
/// constants are copied, the others become the graph's inputs. `None` for any other op.
pub fn residual_add_parts(g: &Graph, node: &Node) -> Option<Result<Graph, Error>> {
    let Op::ResidualAdd {
        mac,
        mac_output,
        activation,
    } = &node.op
    else {
        return None;
    };
    let build = || {
        if node.inputs.len() != 4 || node.outputs.len() != 1 {
            return Err(Error::invalid(format!(
                "{} takes 4 operands (input, filter, bias, addend) and 1 output, has {} and {}",
                node.op.name(),
                node.inputs.len(),
                node.outputs.len()
            )));
        }
        let mut parts = Graph::new(format!("{}_parts", node.op.name()));
        let mut operands = Vec::new();
        for t in &node.inputs {
            operands.push(t.map(|t| {
                let tensor = g.tensor(t);
                match (&tensor.kind, &tensor.data) {
                    (TensorKind::Constant, Some(data)) => {
                        parts.add_constant(&tensor.name, tensor.ty.clone(), data.clone())
                    }
                    _ => parts.add_input(&tensor.name, tensor.ty.clone()),
                }
            }));
        }
        let output = g.tensor(node.outputs[0]);
        let between = parts.add_tensor(format!("{}_mac", output.name), mac_output.clone());
        let out = parts.add_tensor(&output.name, output.ty.clone());
        parts.add_op((**mac).clone(), operands[..3].to_vec(), vec![between])?;
        let add = Op::Add {
            activation: *activation,
        };
        parts.add_op(add, vec![Some(between), operands[3]], vec![out])?;
        parts.outputs.push(out);
        Ok(parts)
    };
    Some(build())
}
