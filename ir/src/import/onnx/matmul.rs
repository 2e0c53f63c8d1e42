//! Gemm, MatMul and QLinearMatMul as minnow's FULLY_CONNECTED: the constant right-hand
//! matrix becomes the `[N, K]` weights (transposed at import), `alpha` and `beta` are folded
//! into the weights and bias, and a bias that is not one value per column is a separate ADD.

use super::attrs::Attrs;
use super::cx::{Constant, ImportCx};
use super::proto::NodeProto;
use super::quant::{self, QParams};
use crate::graph::TensorId;
use crate::op::{Activation, Op};
use crate::types::{DType, Quant};

/// A FULLY_CONNECTED op that keeps its input's leading dimensions.
fn fully_connected() -> Op {
    Op::FullyConnected {
        weights: crate::WeightLayout::Bytes,
        activation: Activation::None,
        keep_num_dims: true,
    }
}

/// The right-hand operand `B` (`[K, N]`, or `[K]`) as `[N, K]` weights; batch dimensions are
/// allowed only when they are all 1 (one matrix for every batch).
fn weights(b: &Constant) -> Result<(Constant, bool), String> {
    let s = &b.ty.shape;
    match s.len() {
        0 => Err("B is a scalar".into()),
        1 => {
            let mut w = b.clone();
            w.ty.shape = vec![1, s[0]];
            Ok((w, true))
        }
        _ if s[..s.len() - 2].iter().all(|d| *d == 1) => {
            let (k, n) = (s[s.len() - 2], s[s.len() - 1]);
            let mut m = b.clone();
            m.ty.shape = vec![k, n];
            if let Some(Quant::PerChannel { axis, .. }) = &mut m.ty.quant {
                *axis = axis.saturating_sub(s.len() - 2);
            }
            Ok((m.permuted(&[1, 0]), false))
        }
        _ => Err(format!(
            "B {s:?} is a batch of different matrices: minnow's MatMul needs one constant \
             matrix for every batch (a batched MatMul of two activations is not supported)"
        )),
    }
}

/// MatMul `[A, B]`: a FULLY_CONNECTED when `B` is one constant matrix (weights in flash, the
/// fast kernels), else a BATCH_MATMUL.
pub fn matmul(cx: &mut ImportCx, node: &NodeProto, attrs: &Attrs) -> Result<TensorId, String> {
    attrs.only(&[])?;
    let a = cx.operand(node, 0)?;
    let ty = cx.ty(a).clone();
    if ty.dtype != DType::F32 {
        return Err(format!(
            "{} MatMul is not supported: use QLinearMatMul or QDQ",
            ty.dtype.name()
        ));
    }
    let out = node.output[0].clone();
    let constant = cx.weight_constant(node, 1).ok();
    if let Some(Ok((w, b_is_vector))) = constant.as_ref().map(weights) {
        let w_id = cx.add_weights(&format!("{out}:weights"), w)?;
        return finish_matmul(cx, &out, a, w_id, None, b_is_vector, (DType::F32, None));
    }
    let b = cx.operand(node, 1)?;
    batch_matmul(cx, &out, a, b)
}

/// `a @ b` by BATCH_MATMUL, a 1-D operand made a matrix and its dimension dropped after, as
/// numpy's matmul does.
fn batch_matmul(
    cx: &mut ImportCx,
    out: &str,
    a: TensorId,
    b: TensorId,
) -> Result<TensorId, String> {
    let (sa, sb) = (cx.ty(a).shape.clone(), cx.ty(b).shape.clone());
    if cx.ty(b).dtype != DType::F32 {
        return Err(format!(
            "B is {}; MatMul of two computed tensors is float32 only",
            cx.ty(b).dtype.name()
        ));
    }
    let a2 = match sa.len() {
        1 => cx.reshape(&format!("{out}:a_row"), a, vec![1, sa[0]])?,
        _ => a,
    };
    let b2 = match sb.len() {
        1 => cx.reshape(&format!("{out}:b_column"), b, vec![sb[0], 1])?,
        _ => b,
    };
    let y = cx.emit(
        &format!("{out}:matmul"),
        Op::BatchMatMul,
        vec![Some(a2), Some(b2)],
        DType::F32,
        None,
    )?;
    let mut shape = cx.ty(y).shape.clone();
    if sb.len() == 1 {
        shape.pop();
    }
    if sa.len() == 1 {
        shape.remove(shape.len() - if sb.len() == 1 { 1 } else { 2 });
    }
    cx.reshape(out, y, shape)
}

/// The FULLY_CONNECTED of `a` (any rank ≥ 1) with weights `w`, reshaped to MatMul's result:
/// a 1-D `A` loses its row dimension, a 1-D `B` its column dimension.
fn finish_matmul(
    cx: &mut ImportCx,
    out: &str,
    a: TensorId,
    w: TensorId,
    bias: Option<TensorId>,
    b_is_vector: bool,
    (dtype, quant): (DType, Option<Quant>),
) -> Result<TensorId, String> {
    let a_shape = cx.ty(a).shape.clone();
    let a_2d = if a_shape.len() == 1 {
        cx.reshape(&format!("{out}:row"), a, vec![1, a_shape[0]])?
    } else {
        a
    };
    let y = cx.emit(
        &format!("{out}:fc"),
        fully_connected(),
        vec![Some(a_2d), Some(w), bias],
        dtype,
        quant,
    )?;
    let mut shape = cx.ty(y).shape.clone();
    if a_shape.len() == 1 {
        shape.remove(shape.len() - 2);
    }
    if b_is_vector {
        shape.pop();
    }
    cx.reshape(out, y, shape)
}

/// Gemm `[A, B, C?]`: `alpha * A' B' + beta * C` with `'` the optional transposes.
pub fn gemm(cx: &mut ImportCx, node: &NodeProto, attrs: &Attrs) -> Result<TensorId, String> {
    attrs.only(&["alpha", "beta", "transA", "transB"])?;
    let (alpha, beta) = (attrs.float("alpha", 1.0)?, attrs.float("beta", 1.0)?);
    let out = node.output[0].clone();
    let mut a = cx.operand(node, 0)?;
    if cx.ty(a).dtype != DType::F32 || cx.ty(a).shape.len() != 2 {
        return Err(format!("A must be a float32 matrix, is {:?}", cx.ty(a)));
    }
    if attrs.int("transA", 0)? != 0 {
        a = cx.transpose(&format!("{out}:a_t"), a, vec![1, 0])?;
    }
    let b = cx.weight_constant(node, 1)?;
    if b.ty.shape.len() != 2 || (b.ty.dtype != DType::F32 && !ImportCx::is_quantized(&b)) {
        return Err(format!(
            "B must be a float32 or DequantizeLinear'd matrix, is {:?}",
            b.ty
        ));
    }
    // FULLY_CONNECTED's weights are [N, K]: B transposed, unless transB already did.
    let w = if attrs.int("transB", 0)? != 0 {
        b
    } else {
        b.permuted(&[1, 0])
    };
    let n = w.ty.shape[0];
    let w = cx.add_weights(&format!("{out}:weights"), scaled(w, alpha))?;
    let c = cx.optional_weight_constant(node, 2)?;
    let per_column = c.as_ref().is_some_and(|c| {
        let s = &c.ty.shape;
        let columns = s.iter().product::<usize>() == n && s.last() == Some(&n);
        columns || (c.ty.elements() == 1 && !ImportCx::is_quantized(c))
    });
    let bias = match &c {
        Some(c) if per_column => {
            let mut c = scaled(c.clone(), beta);
            if c.ty.elements() == 1 {
                c = Constant::f32(vec![n], &vec![c.floats()[0]; n]);
            }
            c.ty.shape = vec![n];
            Some(cx.add_weights(&format!("{out}:bias"), c)?)
        }
        _ => None,
    };
    let fc_name = if c.is_some() && !per_column {
        format!("{out}:fc")
    } else {
        out.clone()
    };
    let y = cx.emit(
        &fc_name,
        fully_connected(),
        vec![Some(a), Some(w), bias],
        DType::F32,
        None,
    )?;
    match c {
        Some(c) if !per_column => {
            let c = cx.add_weights(&format!("{out}:c"), scaled(c, beta))?;
            let activation = Activation::None;
            cx.emit(
                &out,
                Op::Add { activation },
                vec![Some(y), Some(c)],
                DType::F32,
                None,
            )
        }
        _ => Ok(y),
    }
}

/// `c` times `factor`: the values of a float constant, the scales of a quantized one.
fn scaled(mut c: Constant, factor: f32) -> Constant {
    if factor == 1.0 {
        return c;
    }
    if !ImportCx::is_quantized(&c) {
        let values: Vec<f32> = c.floats().iter().map(|v| v * factor).collect();
        return Constant::f32(c.ty.shape.clone(), &values);
    }
    match &mut c.ty.quant {
        Some(Quant::PerTensor { scale, .. }) => *scale *= factor,
        Some(Quant::PerChannel { scales, .. }) => scales.iter_mut().for_each(|s| *s *= factor),
        None => {}
    }
    c
}

/// QLinearMatMul `[a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale,
/// y_zero_point]` with a constant `b` as a quantized FULLY_CONNECTED.
pub fn qlinear_matmul(
    cx: &mut ImportCx,
    node: &NodeProto,
    attrs: &Attrs,
) -> Result<TensorId, String> {
    attrs.only(&[])?;
    let a = cx.operand(node, 0)?;
    let dtype = cx.ty(a).dtype;
    let aq = QParams::read(cx, node, 1, 2, dtype)?;
    let b = cx.constant(node, 3)?;
    let bq = QParams::read(cx, node, 4, 5, b.ty.dtype)?;
    let yq = QParams::read(cx, node, 6, 7, dtype)?;
    quant::check_int8_kernel(dtype, b.ty.dtype)?;
    cx.set_quant(a, aq.per_tensor("a")?)?;
    let (mut w, b_is_vector) = weights(&b)?;
    let wq = bq.per_channel(w.ty.shape[0], 0)?;
    if wq.len() > 1 && (0..wq.len()).any(|i| wq.zero_point(i) != 0) {
        return Err("per-column B must be quantized symmetrically (zero point 0), as TFLite's int8 kernels need".into());
    }
    w.ty.quant = Some(wq);
    let out = node.output[0].clone();
    let w = cx.add_constant(&format!("{out}:weights"), w);
    finish_matmul(
        cx,
        &out,
        a,
        w,
        None,
        b_is_vector,
        (dtype, Some(yq.per_tensor("y")?)),
    )
}
