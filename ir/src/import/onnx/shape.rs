//! Ops that move data without arithmetic, and Softmax: Constant, Reshape, Flatten, Squeeze,
//! Unsqueeze, Identity (all RESHAPE), Transpose, Concat, Pad, and Softmax along any axis.

use super::attrs::{axis, Attrs};
use super::cx::{Constant, ImportCx};
use super::proto::{self, NodeProto};
use crate::graph::TensorId;
use crate::op::{Activation, Op};
use crate::types::DType;

/// Constant: a tensor (`value`) or a scalar / list attribute as a constant tensor.
pub fn constant(cx: &mut ImportCx, node: &NodeProto, attrs: &Attrs) -> Result<TensorId, String> {
    let c = if let Some(t) = attrs.tensor("value")? {
        let (ty, data) = proto::tensor_data(t)?;
        Constant { ty, data }
    } else if attrs.has("value_float") {
        Constant::f32(vec![], &[attrs.float("value_float", 0.0)?])
    } else if let Some(v) = attrs.floats("value_floats")? {
        Constant::f32(vec![v.len()], &v)
    } else if attrs.has("value_int") {
        ints(vec![], &[attrs.int("value_int", 0)?])
    } else if let Some(v) = attrs.ints("value_ints")? {
        ints(vec![v.len()], &v)
    } else {
        return Err("only tensor, float and int values are supported".into());
    };
    Ok(cx.add_constant(&node.output[0], c))
}

fn ints(shape: Vec<usize>, values: &[i64]) -> Constant {
    Constant {
        ty: crate::types::TensorType::new(shape, DType::I64),
        data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
}

/// The axes of Squeeze / Unsqueeze: operand 1 from opset 13, the `axes` attribute before.
fn axes_operand(
    cx: &mut ImportCx,
    node: &NodeProto,
    attrs: &Attrs,
) -> Result<Option<Vec<i64>>, String> {
    if cx.opset >= 13 {
        attrs.only(&[])?;
        return cx.optional_constant(node, 1)?.map(|c| c.ints()).transpose();
    }
    attrs.only(&["axes"])?;
    attrs.ints("axes")
}

/// Reshape, Flatten, Squeeze, Unsqueeze and Identity: the same bytes with a new shape.
pub fn reshape(cx: &mut ImportCx, node: &NodeProto, attrs: &Attrs) -> Result<TensorId, String> {
    let x = cx.operand(node, 0)?;
    let shape = cx.ty(x).shape.clone();
    let new_shape = match node.op_type() {
        "Reshape" => {
            attrs.only(&["allowzero"])?;
            let target = cx.constant(node, 1)?.ints()?;
            reshape_target(&shape, &target, attrs.int("allowzero", 0)? != 0)?
        }
        "Flatten" => {
            attrs.only(&["axis"])?;
            let a = attrs.int("axis", 1)?;
            let at = if a == shape.len() as i64 {
                shape.len()
            } else {
                axis(a, shape.len())?
            };
            vec![shape[..at].iter().product(), shape[at..].iter().product()]
        }
        "Squeeze" => {
            let axes = axes_operand(cx, node, attrs)?;
            let drop: Vec<usize> = match axes {
                Some(a) => a
                    .iter()
                    .map(|a| axis(*a, shape.len()))
                    .collect::<Result<_, _>>()?,
                None => (0..shape.len()).filter(|i| shape[*i] == 1).collect(),
            };
            if let Some(d) = drop.iter().find(|d| shape[**d] != 1) {
                return Err(format!(
                    "cannot squeeze dimension {d} of {shape:?}: it is not 1"
                ));
            }
            (0..shape.len())
                .filter(|i| !drop.contains(i))
                .map(|i| shape[i])
                .collect()
        }
        "Unsqueeze" => {
            let axes = axes_operand(cx, node, attrs)?.ok_or("axes are required")?;
            let rank = shape.len() + axes.len();
            let mut at: Vec<usize> = axes
                .iter()
                .map(|a| axis(*a, rank))
                .collect::<Result<_, _>>()?;
            at.sort_unstable();
            if at.windows(2).any(|w| w[0] == w[1]) {
                return Err(format!("axes {axes:?} repeat a dimension"));
            }
            let mut rest = shape.iter();
            (0..rank)
                .map(|i| {
                    if at.contains(&i) {
                        1
                    } else {
                        *rest.next().unwrap()
                    }
                })
                .collect()
        }
        _ => shape.clone(),
    };
    let out = node.output[0].clone();
    if new_shape == shape {
        // An identity still needs a tensor of its own name when it is a graph output.
        return cx.emit_typed(&out, Op::Reshape, vec![Some(x)], cx.ty(x).clone());
    }
    cx.reshape(&out, x, new_shape)
}

/// ONNX Reshape's target: `0` copies the input's dimension (unless `allowzero`), one `-1` is
/// inferred.
fn reshape_target(input: &[usize], target: &[i64], allowzero: bool) -> Result<Vec<usize>, String> {
    let total: usize = input.iter().product();
    let mut out = Vec::with_capacity(target.len());
    let mut inferred = None;
    for (i, t) in target.iter().enumerate() {
        match *t {
            -1 if inferred.is_none() => {
                inferred = Some(i);
                out.push(1);
            }
            0 if allowzero => {
                return Err(
                    "a zero dimension with allowzero makes an empty tensor, which is not supported"
                        .into(),
                )
            }
            0 => out.push(*input.get(i).ok_or_else(|| {
                format!(
                    "dimension {i} is 0 (copy) but the input has rank {}",
                    input.len()
                )
            })?),
            t if t > 0 => out.push(t as usize),
            t => return Err(format!("shape {target:?} has the invalid dimension {t}")),
        }
    }
    if let Some(i) = inferred {
        let known: usize = out.iter().product();
        if known == 0 || total % known != 0 {
            return Err(format!("cannot reshape {input:?} to {target:?}"));
        }
        out[i] = total / known;
    }
    if out.iter().product::<usize>() != total {
        return Err(format!(
            "cannot reshape {input:?} ({total} elements) to {target:?}"
        ));
    }
    Ok(out)
}

/// Transpose (default: reverse the dimensions).
pub fn transpose(cx: &mut ImportCx, node: &NodeProto, attrs: &Attrs) -> Result<TensorId, String> {
    attrs.only(&["perm"])?;
    let x = cx.operand(node, 0)?;
    let rank = cx.ty(x).shape.len();
    let perm: Vec<usize> = match attrs.ints("perm")? {
        Some(p) => p.iter().map(|a| axis(*a, rank)).collect::<Result<_, _>>()?,
        None => (0..rank).rev().collect(),
    };
    let ty = cx.ty(x).clone();
    cx.emit(
        &node.output[0],
        Op::Transpose { perm },
        vec![Some(x)],
        ty.dtype,
        ty.quant,
    )
}

/// Concat along `axis`.
pub fn concat(cx: &mut ImportCx, node: &NodeProto, attrs: &Attrs) -> Result<TensorId, String> {
    attrs.only(&["axis"])?;
    let inputs: Vec<TensorId> = (0..node.input.len())
        .filter(|i| ImportCx::has_operand(node, *i))
        .map(|i| cx.operand(node, i))
        .collect::<Result<_, _>>()?;
    let first = cx.ty(*inputs.first().ok_or("no operands")?).clone();
    if inputs
        .iter()
        .any(|t| cx.ty(*t).dtype != first.dtype || cx.ty(*t).quant != first.quant)
    {
        return Err("operands of different types or quantization are not supported".into());
    }
    let a = axis(attrs.int("axis", 0)?, first.shape.len())?;
    let op = Op::Concat {
        axis: a,
        activation: Activation::None,
    };
    cx.emit(
        &node.output[0],
        op,
        inputs.into_iter().map(Some).collect(),
        first.dtype,
        first.quant,
    )
}

/// Pad in `constant` mode with value 0 (the only value minnow's PAD writes), pads from
/// operand 1 (opset 11 on) or the `pads` attribute, optionally for some `axes` only.
pub fn pad(cx: &mut ImportCx, node: &NodeProto, attrs: &Attrs) -> Result<TensorId, String> {
    attrs.only(&["mode", "pads", "value"])?;
    let mode = attrs.string("mode", "constant")?;
    if mode != "constant" {
        return Err(format!("mode {mode:?} is not supported (constant only)"));
    }
    let x = cx.operand(node, 0)?;
    let ty = cx.ty(x).clone();
    let rank = ty.shape.len();
    let (amounts, value, axes) = if cx.opset >= 11 {
        let amounts = cx.constant(node, 1)?.ints()?;
        let value = cx
            .optional_constant(node, 2)?
            .map(|c| c.floats()[0])
            .unwrap_or(0.0);
        let axes = cx
            .optional_constant(node, 3)?
            .map(|c| c.ints())
            .transpose()?;
        (amounts, value, axes)
    } else {
        (
            attrs.ints("pads")?.ok_or("pads are required")?,
            attrs.float("value", 0.0)?,
            None,
        )
    };
    if value != 0.0 {
        return Err(format!(
            "constant value {value} is not supported: minnow's PAD pads with zero (the zero \
             point of a quantized tensor)"
        ));
    }
    let axes: Vec<usize> = match axes {
        Some(a) => a.iter().map(|a| axis(*a, rank)).collect::<Result<_, _>>()?,
        None => (0..rank).collect(),
    };
    if amounts.len() != 2 * axes.len() || amounts.iter().any(|p| *p < 0) {
        return Err(format!(
            "pads {amounts:?} must be 2 non-negative values per padded axis"
        ));
    }
    let mut pads = vec![(0, 0); rank];
    for (i, a) in axes.iter().enumerate() {
        pads[*a] = (amounts[i] as usize, amounts[i + axes.len()] as usize);
    }
    cx.emit(
        &node.output[0],
        Op::Pad { pads },
        vec![Some(x)],
        ty.dtype,
        ty.quant,
    )
}

/// Softmax along `axis`: minnow's SOFTMAX works on the last dimension, so another axis is
/// transposed there and back. Before opset 13 the input is flattened at `axis` into a matrix.
pub fn softmax(cx: &mut ImportCx, node: &NodeProto, attrs: &Attrs) -> Result<TensorId, String> {
    attrs.only(&["axis"])?;
    let x = cx.operand(node, 0)?;
    let ty = cx.ty(x).clone();
    if ty.dtype != DType::F32 {
        return Err(format!(
            "{} Softmax is not supported (float32, or int8 through QDQ)",
            ty.dtype.name()
        ));
    }
    let rank = ty.shape.len();
    let out = node.output[0].clone();
    let op = Op::Softmax { beta: 1.0 };
    if cx.opset < 13 {
        let a = axis(attrs.int("axis", 1)?, rank)?;
        let rows: usize = ty.shape[..a].iter().product();
        let flat = cx.reshape(&format!("{out}:2d"), x, vec![rows, ty.elements() / rows])?;
        let y = cx.emit(
            &format!("{out}:softmax"),
            op,
            vec![Some(flat)],
            DType::F32,
            None,
        )?;
        return cx.reshape(&out, y, ty.shape.clone());
    }
    let a = axis(attrs.int("axis", -1)?, rank)?;
    if a == rank - 1 {
        return cx.emit(&out, op, vec![Some(x)], DType::F32, None);
    }
    let mut perm: Vec<usize> = (0..rank).collect();
    perm.swap(a, rank - 1);
    let moved = cx.transpose(&format!("{out}:last"), x, perm.clone())?;
    let y = cx.emit(
        &format!("{out}:softmax"),
        op,
        vec![Some(moved)],
        DType::F32,
        None,
    )?;
    cx.transpose(&out, y, perm)
}
