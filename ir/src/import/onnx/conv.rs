//! Conv and QLinearConv: NCHW convolutions as minnow's NHWC CONV_2D (any group count) or
//! DEPTHWISE_CONV_2D (one group per input channel), weights transposed to OHWI / 1HWO at
//! import, and a BatchNormalization that only the convolution feeds folded into its weights.

use super::attrs::Attrs;
use super::cx::{Constant, ImportCx};
use super::proto::NodeProto;
use super::quant::{self, QParams};
use super::window::{from_nhwc, to_nhwc, Spatial};
use crate::graph::TensorId;
use crate::op::{Activation, Op};
use crate::types::{DType, Quant};

/// The attributes Conv and QLinearConv take.
const CONV_ATTRS: &[&str] = &[
    "auto_pad",
    "dilations",
    "group",
    "kernel_shape",
    "pads",
    "strides",
];

/// How the weights of one convolution are laid out for minnow.
struct Layout {
    /// Depthwise (one group per input channel) rather than a (grouped) CONV_2D.
    depthwise: bool,
    /// Output channels per input channel, for depthwise.
    multiplier: usize,
}

/// Checks the weights `[M, C/group, kH, kW]` against input channels `c` and `group`.
fn layout(w: &[usize], c: usize, group: usize) -> Result<Layout, String> {
    if w.len() != 4 {
        return Err(format!(
            "weights {w:?} must be [M, C/group, kH, kW] (1-D and 2-D convolutions only)"
        ));
    }
    if group == 0 || c % group != 0 || w[0] % group != 0 || w[1] * group != c {
        return Err(format!(
            "weights {w:?} with group {group} do not fit {c} input channels"
        ));
    }
    let depthwise = group == c && group > 1;
    Ok(Layout {
        depthwise,
        multiplier: w[0] / c.max(1),
    })
}

/// The ONNX weights `[M, C/group, kH, kW]` as the filter minnow's op reads: OHWI, or 1HWO for
/// depthwise.
fn filter(w: &Constant, layout: &Layout) -> Constant {
    if layout.depthwise {
        w.permuted(&[1, 2, 3, 0])
    } else {
        w.permuted(&[0, 2, 3, 1])
    }
}

/// The minnow op for a convolution with `window`.
fn conv_op(layout: &Layout, window: crate::op::Window) -> Op {
    if layout.depthwise {
        Op::DepthwiseConv2d {
            weights: crate::WeightLayout::Bytes,
            window,
            depth_multiplier: layout.multiplier,
            activation: Activation::None,
        }
    } else {
        Op::Conv2d {
            weights: crate::WeightLayout::Bytes,
            window,
            activation: Activation::None,
        }
    }
}

/// A 1-D weight tensor `[M, C, k]` as 2-D `[M, C, 1, k]`.
fn weights_2d(mut w: Constant) -> Constant {
    if w.ty.shape.len() == 3 {
        let s = w.ty.shape.clone();
        w.ty.shape = vec![s[0], s[1], 1, s[2]];
    }
    w
}

/// The spatial attributes against input `x` (NCHW or NCL) and weights `w` (2-D form).
fn spatial(cx: &ImportCx, attrs: &Attrs, x: TensorId, w: &Constant) -> Result<Spatial, String> {
    let s = &cx.ty(x).shape;
    let one_d = s.len() == 3;
    let input = if one_d { [1, s[2]] } else { [s[2], s[3]] };
    let kernel = [w.ty.shape[2], w.ty.shape[3]];
    let spatial = Spatial::read(attrs, input, Some(kernel), one_d, false)?;
    spatial.output(input)?;
    Ok(spatial)
}

/// Float Conv, with a BatchNormalization folded in when it is the convolution's only reader.
pub fn conv(cx: &mut ImportCx, node: &NodeProto, attrs: &Attrs) -> Result<TensorId, String> {
    attrs.only(CONV_ATTRS)?;
    let x = cx.operand(node, 0)?;
    if cx.ty(x).dtype != DType::F32 {
        return Err(format!(
            "{} Conv is not supported: quantized convolutions are QLinearConv or \
             DequantizeLinear/QuantizeLinear around a float Conv",
            cx.ty(x).dtype.name()
        ));
    }
    let w = weights_2d(cx.weight_constant(node, 1)?);
    let rank = cx.ty(x).shape.len();
    if rank < 3 || w.ty.shape.len() != 4 {
        return Err(format!(
            "input rank {rank}: only 1-D and 2-D convolutions are supported"
        ));
    }
    let group = attrs.int("group", 1)? as usize;
    let layout = layout(&w.ty.shape, cx.ty(x).shape[1], group)?;
    let spatial = spatial(cx, attrs, x, &w)?;
    let out_channels = w.ty.shape[0];
    let mut bias = match cx.optional_weight_constant(node, 2)? {
        Some(b) if b.ty.elements() == out_channels => b,
        Some(b) => return Err(format!("bias {:?} for {out_channels} outputs", b.ty.shape)),
        None => Constant::f32(vec![out_channels], &vec![0.0; out_channels]),
    };
    bias.ty.shape = vec![out_channels];
    let mut out_name = node.output[0].clone();
    let quantized = ImportCx::is_quantized(&w) || ImportCx::is_quantized(&bias);
    let (w, bias) = match cx.foldable_batchnorm(&out_name, out_channels)? {
        // A QDQ convolution keeps its integers for the folder; the BatchNormalization stays.
        Some(bn) if !quantized => {
            cx.absorbed[bn.node] = true;
            out_name = bn.output.clone();
            fold_batchnorm(&w, &bias, &bn)
        }
        _ => (w, bias),
    };
    let filter = cx.add_weights(&format!("{out_name}:filter"), filter(&w, &layout))?;
    let bias = cx.add_weights(&format!("{out_name}:bias"), bias)?;
    let (xt, one_d) = to_nhwc(cx, x, &out_name)?;
    let op = conv_op(&layout, spatial.window());
    let y = cx.emit(
        &format!("{out_name}:conv"),
        op,
        vec![Some(xt), Some(filter), Some(bias)],
        DType::F32,
        None,
    )?;
    let out = from_nhwc(cx, y, &out_name, one_d)?;
    cx.alias(&out_name, out);
    Ok(out)
}

/// Float weights and bias with a BatchNormalization applied: each filter scaled by its
/// channel's factor, the bias scaled and shifted.
fn fold_batchnorm(
    w: &Constant,
    bias: &Constant,
    bn: &super::cx::FoldedBatchNorm,
) -> (Constant, Constant) {
    let mut weights = w.floats();
    let mut b = bias.floats();
    let per_filter = weights.len() / b.len();
    for (o, chunk) in weights.chunks_mut(per_filter).enumerate() {
        chunk.iter_mut().for_each(|v| *v *= bn.scale[o]);
        b[o] = b[o] * bn.scale[o] + bn.shift[o];
    }
    (
        Constant::f32(w.ty.shape.clone(), &weights),
        Constant::f32(bias.ty.shape.clone(), &b),
    )
}

/// QLinearConv: `[x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point,
/// B?]` as a quantized CONV_2D or DEPTHWISE_CONV_2D (per-channel weight scales allowed).
pub fn qlinear_conv(
    cx: &mut ImportCx,
    node: &NodeProto,
    attrs: &Attrs,
) -> Result<TensorId, String> {
    attrs.only(CONV_ATTRS)?;
    let x = cx.operand(node, 0)?;
    let xq = QParams::read(cx, node, 1, 2, cx.ty(x).dtype)?;
    let w = weights_2d(cx.constant(node, 3)?);
    let wq = QParams::read(cx, node, 4, 5, w.ty.dtype)?;
    let yq = QParams::read(cx, node, 6, 7, cx.ty(x).dtype)?;
    quant::check_int8_kernel(cx.ty(x).dtype, w.ty.dtype)?;
    cx.set_quant(x, xq.per_tensor("x")?)?;
    let group = attrs.int("group", 1)? as usize;
    let layout = layout(&w.ty.shape, cx.ty(x).shape[1], group)?;
    let spatial = spatial(cx, attrs, x, &w)?;
    let out_channels = w.ty.shape[0];
    let weight_quant = wq.per_channel(out_channels, if layout.depthwise { 3 } else { 0 })?;
    if (0..weight_quant.len()).any(|o| weight_quant.zero_point(o) != 0) {
        return Err(
            "weights must be quantized symmetrically (zero point 0), as TFLite's int8 kernels need"
                .into(),
        );
    }
    let mut f = filter(&w, &layout);
    f.ty.quant = Some(weight_quant.clone());
    let out_name = node.output[0].clone();
    let filter = cx.add_constant(&format!("{out_name}:filter"), f);
    let bias = match cx.optional_constant(node, 8)? {
        Some(b) if b.ty.dtype == DType::I32 && b.ty.elements() == out_channels => {
            let scales = (0..out_channels)
                .map(|o| xq.scale(0) * weight_quant.scale(o))
                .collect();
            let mut b = b;
            b.ty.shape = vec![out_channels];
            b.ty.quant = Some(Quant::PerChannel {
                scales,
                zero_points: vec![0; out_channels],
                axis: 0,
            });
            Some(cx.add_constant(&format!("{out_name}:bias"), b))
        }
        Some(b) => {
            return Err(format!(
                "bias must be int32 [{out_channels}], is {} {:?}",
                b.ty.dtype.name(),
                b.ty.shape
            ))
        }
        None => None,
    };
    let (xt, one_d) = to_nhwc(cx, x, &out_name)?;
    let op = conv_op(&layout, spatial.window());
    let y = cx.emit(
        &format!("{out_name}:conv"),
        op,
        vec![Some(xt), Some(filter), bias],
        cx.ty(x).dtype,
        Some(yq.per_tensor("y")?),
    )?;
    from_nhwc(cx, y, &out_name, one_d)
}
