//! Element-wise ops: Add, Sub, Mul, Div (numpy broadcasting), Relu, Sigmoid, Tanh, Clip, and
//! BatchNormalization in inference mode as a per-channel multiply and add.

use super::attrs::Attrs;
use super::cx::{Constant, ImportCx};
use super::proto::NodeProto;
use crate::graph::TensorId;
use crate::op::{Activation, Op};
use crate::types::DType;

/// Translates an element-wise node.
pub fn translate(cx: &mut ImportCx, node: &NodeProto, attrs: &Attrs) -> Result<TensorId, String> {
    let activation = Activation::None;
    let out = node.output[0].clone();
    match node.op_type() {
        "Add" | "Sub" | "Mul" | "Div" => {
            attrs.only(&[])?;
            let op = match node.op_type() {
                "Add" => Op::Add { activation },
                "Sub" => Op::Sub { activation },
                "Mul" => Op::Mul { activation },
                _ => Op::Div { activation },
            };
            let (a, b) = (cx.operand(node, 0)?, cx.operand(node, 1)?);
            let (ta, tb) = (cx.ty(a).clone(), cx.ty(b).clone());
            if ta.dtype != tb.dtype {
                return Err(format!(
                    "operands are {} and {}",
                    ta.dtype.name(),
                    tb.dtype.name()
                ));
            }
            float_only(ta.dtype, node.op_type())?;
            cx.emit(&out, op, vec![Some(a), Some(b)], DType::F32, None)
        }
        "Relu" | "Sigmoid" | "Tanh" => {
            attrs.only(&[])?;
            let x = cx.operand(node, 0)?;
            float_only(cx.ty(x).dtype, node.op_type())?;
            let op = match node.op_type() {
                "Relu" => Op::Relu,
                "Sigmoid" => Op::Logistic,
                _ => Op::Tanh,
            };
            cx.emit(&out, op, vec![Some(x)], DType::F32, None)
        }
        "Clip" => clip(cx, node, attrs),
        "BatchNormalization" => batchnorm(cx, node, attrs),
        other => unreachable!("{other} is not an element-wise op"),
    }
}

/// Refuses arithmetic on plain integers: minnow's integer tensors are quantized, and ONNX's
/// wrapping integer arithmetic has no kernel.
fn float_only(dtype: DType, op: &str) -> Result<(), String> {
    if dtype == DType::F32 {
        return Ok(());
    }
    Err(format!(
        "{} {op} is not supported: minnow's element-wise kernels are float32, or quantized \
         int8 between DequantizeLinear and QuantizeLinear",
        dtype.name()
    ))
}

/// Clip: bounds from operands 1 and 2 (opset 11 on) or the `min` / `max` attributes (before).
/// Integer inputs clamp their integers.
fn clip(cx: &mut ImportCx, node: &NodeProto, attrs: &Attrs) -> Result<TensorId, String> {
    let x = cx.operand(node, 0)?;
    let ty = cx.ty(x).clone();
    let (mut min, mut max) = match ty.dtype.int_range() {
        Some((lo, hi)) => (lo as f32, hi as f32),
        None => (f32::NEG_INFINITY, f32::INFINITY),
    };
    if cx.opset < 11 {
        attrs.only(&["min", "max"])?;
        min = attrs.float("min", min)?;
        max = attrs.float("max", max)?;
    } else {
        attrs.only(&[])?;
        for (i, bound) in [(1, &mut min), (2, &mut max)] {
            if let Some(c) = cx.optional_constant(node, i)? {
                if c.ty.elements() != 1 || c.ty.dtype != ty.dtype {
                    return Err(format!("bound {i} must be a {} scalar", ty.dtype.name()));
                }
                *bound = c.floats()[0];
            }
        }
    }
    if ty.quant.is_some() {
        return Err(
            "Clip on a quantized tensor: put it between DequantizeLinear and QuantizeLinear".into(),
        );
    }
    cx.emit(
        &node.output[0],
        Op::Clamp { min, max },
        vec![Some(x)],
        ty.dtype,
        None,
    )
}

/// The per-channel `scale / sqrt(var + epsilon)` and `bias - mean * that` of an inference-mode
/// BatchNormalization `[x, scale, bias, mean, var]`.
pub fn batchnorm_params(
    cx: &mut ImportCx,
    node: &NodeProto,
    attrs: &Attrs,
) -> Result<(Vec<f32>, Vec<f32>), String> {
    attrs.only(&["epsilon", "momentum", "training_mode", "spatial"])?;
    if attrs.int("training_mode", 0)? != 0 {
        return Err(
            "training_mode=1 (batch statistics) is not supported: export for inference".into(),
        );
    }
    if attrs.int("spatial", 1)? != 1 {
        return Err("spatial=0 is not supported".into());
    }
    let epsilon = attrs.float("epsilon", 1e-5)? as f64;
    let [scale, bias, mean, var] = [1, 2, 3, 4].map(|i| cx.constant(node, i));
    let (scale, bias, mean, var) = (
        scale?.values(),
        bias?.values(),
        mean?.values(),
        var?.values(),
    );
    let c = scale.len();
    if [bias.len(), mean.len(), var.len()].iter().any(|n| *n != c) {
        return Err("scale, bias, mean and var must have one value per channel".into());
    }
    let factor: Vec<f64> = (0..c)
        .map(|i| scale[i] / (var[i] + epsilon).sqrt())
        .collect();
    let shift = (0..c)
        .map(|i| (bias[i] - mean[i] * factor[i]) as f32)
        .collect();
    Ok((factor.into_iter().map(|f| f as f32).collect(), shift))
}

/// BatchNormalization that no convolution absorbed: `x * factor + shift` per channel (dim 1).
fn batchnorm(cx: &mut ImportCx, node: &NodeProto, attrs: &Attrs) -> Result<TensorId, String> {
    if node.output.iter().skip(1).any(|o| !o.is_empty()) {
        return Err(
            "the running mean and variance outputs (training mode) are not supported".into(),
        );
    }
    let (factor, shift) = batchnorm_params(cx, node, attrs)?;
    let x = cx.operand(node, 0)?;
    let ty = cx.ty(x).clone();
    float_only(ty.dtype, "BatchNormalization")?;
    if ty.shape.len() < 2 || ty.shape[1] != factor.len() {
        return Err(format!(
            "{} channels for an input of shape {:?}",
            factor.len(),
            ty.shape
        ));
    }
    // [C, 1, 1, ...]: broadcasts along dim 1 of an [N, C, ...] input.
    let mut shape = vec![factor.len()];
    shape.extend(std::iter::repeat_n(1, ty.shape.len() - 2));
    let out = node.output[0].clone();
    let f = cx.add_constant(
        &format!("{out}:factor"),
        Constant::f32(shape.clone(), &factor),
    );
    let s = cx.add_constant(&format!("{out}:shift"), Constant::f32(shape, &shift));
    let activation = Activation::None;
    let scaled = cx.emit(
        &format!("{out}:scaled"),
        Op::Mul { activation },
        vec![Some(x), Some(f)],
        DType::F32,
        None,
    )?;
    cx.emit(
        &out,
        Op::Add { activation },
        vec![Some(scaled), Some(s)],
        DType::F32,
        None,
    )
}
