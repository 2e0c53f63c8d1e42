//! MaxPool, AveragePool (1-D and 2-D, explicit or automatic padding, `ceil_mode`,
//! `count_include_pad`) as minnow's NHWC pooling, and GlobalAveragePool as a MEAN.

use super::attrs::Attrs;
use super::cx::ImportCx;
use super::proto::NodeProto;
use super::window::{from_nhwc, to_nhwc, Spatial};
use crate::graph::TensorId;
use crate::op::{Activation, Op, Padding, Pooling};

/// MaxPool or AveragePool.
pub fn pool(cx: &mut ImportCx, node: &NodeProto, attrs: &Attrs) -> Result<TensorId, String> {
    let average = node.op_type() == "AveragePool";
    attrs.only(&[
        "auto_pad",
        "ceil_mode",
        "count_include_pad",
        "dilations",
        "kernel_shape",
        "pads",
        "storage_order",
        "strides",
    ])?;
    if node.output.get(1).is_some_and(|o| !o.is_empty()) {
        return Err("the Indices output (argmax) is not supported".into());
    }
    let x = cx.operand(node, 0)?;
    let shape = cx.ty(x).shape.clone();
    let one_d = shape.len() == 3;
    if !(3..=4).contains(&shape.len()) {
        return Err(format!(
            "the input has rank {}: only 1-D (NCL) and 2-D (NCHW) pooling is supported",
            shape.len()
        ));
    }
    let input = if one_d {
        [1, shape[2]]
    } else {
        [shape[2], shape[3]]
    };
    let ceil = attrs.int("ceil_mode", 0)? != 0;
    let spatial = Spatial::read(attrs, input, None, one_d, ceil)?;
    if spatial.dilations != [1, 1] {
        return Err(format!(
            "dilations {:?} are not supported for pooling (TFLite's pooling has none)",
            spatial.dilations
        ));
    }
    spatial.output(input)?;
    let include_pad = average && attrs.int("count_include_pad", 0)? != 0;
    let out = node.output[0].clone();
    let (mut xt, _) = to_nhwc(cx, x, &out)?;
    let mut window = spatial.window();
    if include_pad {
        let explicit = Spatial::read(attrs, input, None, one_d, false)?;
        (xt, window.padding) = counted_padding(cx, xt, &out, &spatial, &explicit)?;
    }
    let op = Pooling {
        average,
        filter_h: spatial.kernel[0],
        filter_w: spatial.kernel[1],
        window,
        activation: Activation::None,
    }
    .op();
    let ty = cx.ty(x).clone();
    let y = cx.emit(
        &format!("{out}:pool"),
        op,
        vec![Some(xt)],
        ty.dtype,
        ty.quant,
    )?;
    from_nhwc(cx, y, &out, one_d)
}

/// `count_include_pad`: the `pads` as zeros added before a pool over `xt`, so they count
/// towards the average; the part `ceil_mode` added (`spatial` beyond `explicit`) stays
/// uncounted padding, as ONNX does. Returns the padded input and the pool's padding.
fn counted_padding(
    cx: &mut ImportCx,
    xt: TensorId,
    out: &str,
    spatial: &Spatial,
    explicit: &Spatial,
) -> Result<(TensorId, Padding), String> {
    let pads = vec![
        (0, 0),
        (explicit.begin[0], explicit.end[0]),
        (explicit.begin[1], explicit.end[1]),
        (0, 0),
    ];
    let ty = cx.ty(xt).clone();
    let padded = cx.emit(
        &format!("{out}:padded"),
        Op::Pad { pads },
        vec![Some(xt)],
        ty.dtype,
        ty.quant,
    )?;
    let rest = Padding::Explicit {
        top: 0,
        left: 0,
        bottom: spatial.end[0] - explicit.end[0],
        right: spatial.end[1] - explicit.end[1],
    };
    Ok((padded, rest))
}

/// GlobalAveragePool: the mean over every spatial dimension, kept as size 1.
pub fn global_average(
    cx: &mut ImportCx,
    node: &NodeProto,
    attrs: &Attrs,
) -> Result<TensorId, String> {
    attrs.only(&[])?;
    let x = cx.operand(node, 0)?;
    let ty = cx.ty(x).clone();
    if ty.shape.len() < 3 {
        return Err(format!(
            "the input {:?} has no spatial dimensions",
            ty.shape
        ));
    }
    let axes = (2..ty.shape.len()).collect();
    cx.emit(
        &node.output[0],
        Op::Mean {
            axes,
            keep_dims: true,
        },
        vec![Some(x)],
        ty.dtype,
        ty.quant,
    )
}
