//! Fused ops, run as the ops they stand for ([`crate::fused`]): the reference semantics of a
//! fusion is that it changes nothing.

use super::{Buffer, Kernel};
use crate::graph::{Graph, Node};
use crate::types::TensorType;

/// A multiply-accumulate op into a temporary, then ADD with the addend.
struct ResidualAdd {
    mac: Box<dyn Kernel>,
    add: Box<dyn Kernel>,
    between: TensorType,
}

impl Kernel for ResidualAdd {
    fn run(&self, inputs: &[Option<&Buffer>], output: &mut Buffer, _: Option<&mut Buffer>) {
        let mut between = Buffer::zeros(self.between.dtype, self.between.elements());
        self.mac.run(&inputs[..3], &mut between, None);
        self.add.run(&[Some(&between), inputs[3]], output, None);
    }
}

/// Prepares an [`crate::Op::ResidualAdd`] from its parts' kernels.
pub(super) fn prepare(g: &Graph, node: &Node) -> Result<Box<dyn Kernel>, String> {
    let parts = crate::fused::residual_add_parts(g, node)
        .ok_or("not a fused op")?
        .map_err(|e| e.to_string())?;
    let order = parts.execution_order();
    let (mac, add) = (parts.node(order[0]), parts.node(order[1]));
    Ok(Box::new(ResidualAdd {
        mac: super::prepare(&parts, mac)?,
        add: super::prepare(&parts, add)?,
        between: parts.tensor(mac.outputs[0]).ty.clone(),
    }))
}
