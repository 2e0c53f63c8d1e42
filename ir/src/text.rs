//! The stable text form of a graph (`minnow inspect --dump`).
//!
//! One line per input, constant, op and output, in execution order, so two dumps diff cleanly.
//! Constants print their type and byte count, not their bytes.
//!
//! ```text
//! graph kws {
//!   input %0 "input_1": i8[1,49,10,1] q(5.847029e-1, 83)
//!   const %1 "conv/filter": i8[64,10,4,1] q(axis 0, 64 scales [..]) (2560 bytes)
//!   %10 = conv2d(%0, %1, %2) stride=2x2 padding=same act=relu : i8[1,25,5,64] q(..)
//!   output %22
//! }
//! ```

use crate::graph::{Graph, TensorKind};
use std::fmt;

impl fmt::Display for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "graph {} {{", self.name)?;
        for id in &self.inputs {
            let t = self.tensor(*id);
            writeln!(f, "  input {id} {:?}: {}", t.name, t.ty)?;
        }
        for (id, t) in self.tensors() {
            let kind = match t.kind {
                TensorKind::Constant => "const",
                TensorKind::State => "state",
                TensorKind::Activation => continue,
            };
            let bytes = t.data.as_ref().map_or(0, Vec::len);
            writeln!(f, "  {kind} {id} {:?}: {} ({bytes} bytes)", t.name, t.ty)?;
        }
        for op in self.execution_order() {
            let node = self.node(op);
            let operands: Vec<String> = node
                .inputs
                .iter()
                .map(|t| t.map_or_else(|| "_".to_string(), |t| t.to_string()))
                .collect();
            let outs: Vec<String> = node.outputs.iter().map(|t| t.to_string()).collect();
            let attrs = node.op.attrs();
            let sep = if attrs.is_empty() { "" } else { " " };
            let ty = &self.tensor(node.outputs[0]).ty;
            writeln!(
                f,
                "  {} = {}({}){sep}{attrs} : {ty}",
                outs.join(", "),
                node.op.name(),
                operands.join(", ")
            )?;
        }
        for id in &self.outputs {
            writeln!(f, "  output {id} {:?}", self.tensor(*id).name)?;
        }
        writeln!(f, "}}")
    }
}
