//! QuantizeLinear and DequantizeLinear as QUANTIZE and DEQUANTIZE, and the scale / zero point
//! operand pairs every quantized ONNX op takes.
//!
//! minnow's integer kernels are TFLite's: QUANTIZE rounds half away from zero where ONNX rounds
//! half to even, so a float exactly halfway between two steps can quantize one step apart.

use super::attrs::Attrs;
use super::cx::ImportCx;
use super::proto::NodeProto;
use crate::graph::TensorId;
use crate::op::Op;
use crate::types::{DType, Quant};

/// A scale operand and its zero point, as read from a node.
#[derive(Clone, Debug)]
pub struct QParams {
    scales: Vec<f32>,
    zero_points: Vec<i32>,
    /// The zero point's element type (what QuantizeLinear produces), if given.
    pub dtype: Option<DType>,
}

impl QParams {
    /// Reads the scale at operand `scale` and the zero point at `zero_point` (optional: zero)
    /// of `node`; `dtype` is the quantized tensor's type, which the zero point must share.
    pub fn read(
        cx: &mut ImportCx,
        node: &NodeProto,
        scale: usize,
        zero_point: usize,
        dtype: DType,
    ) -> Result<QParams, String> {
        let s = cx.constant(node, scale)?;
        if s.ty.dtype != DType::F32 {
            return Err(format!(
                "scale operand {scale} is {}; only float32 scales are supported",
                s.ty.dtype.name()
            ));
        }
        let scales = s.floats();
        if scales.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
            return Err(format!(
                "scale operand {scale} has a non-positive or non-finite scale"
            ));
        }
        let (zero_points, zp_dtype) = match cx.optional_constant(node, zero_point)? {
            Some(z) => {
                if z.ty.elements() != scales.len() {
                    return Err(format!(
                        "{} zero points for {} scales",
                        z.ty.elements(),
                        scales.len()
                    ));
                }
                let values = z.ints()?.into_iter().map(|v| v as i32).collect();
                (values, Some(z.ty.dtype))
            }
            None => (vec![0; scales.len()], None),
        };
        if zp_dtype.is_some_and(|z| z != dtype) && dtype != DType::F32 {
            return Err(format!(
                "the zero point is {} but the tensor is {}",
                zp_dtype.unwrap().name(),
                dtype.name()
            ));
        }
        Ok(QParams {
            scales,
            zero_points,
            dtype: zp_dtype,
        })
    }

    /// Scale `i`.
    pub fn scale(&self, i: usize) -> f32 {
        self.scales[i]
    }

    /// The parameters as per-tensor quantization (an error naming `what` if per-axis).
    pub fn per_tensor(&self, what: &str) -> Result<Quant, String> {
        if self.scales.len() != 1 {
            return Err(format!(
                "{what} has {} scales: per-axis quantization is supported for weights only",
                self.scales.len()
            ));
        }
        Ok(Quant::PerTensor {
            scale: self.scales[0],
            zero_point: self.zero_points[0],
        })
    }

    /// Per-tensor, or per-channel along `axis` with `channels` entries.
    pub fn per_channel(&self, channels: usize, axis: usize) -> Result<Quant, String> {
        match self.scales.len() {
            1 => self.per_tensor("weights"),
            n if n == channels => Ok(Quant::PerChannel {
                scales: self.scales.clone(),
                zero_points: self.zero_points.clone(),
                axis,
            }),
            n => Err(format!("{n} weight scales for {channels} output channels")),
        }
    }
}

/// Refuses input / weight types minnow's integer kernels do not implement.
pub fn check_int8_kernel(x: DType, w: DType) -> Result<(), String> {
    if x == DType::I8 && w == DType::I8 {
        return Ok(());
    }
    Err(format!(
        "{} activations with {} weights are not supported: minnow's quantized kernels are \
         TFLite's int8 ones. Quantize the model to int8 (onnxruntime's quantize_static with \
         activation_type=QInt8, weight_type=QInt8)",
        x.name(),
        w.name()
    ))
}

/// Refuses the attributes of per-axis and blocked quantization.
fn per_tensor_only(attrs: &Attrs) -> Result<(), String> {
    attrs.only(&[
        "axis",
        "block_size",
        "output_dtype",
        "saturate",
        "precision",
    ])?;
    if attrs.int("block_size", 0)? != 0 {
        return Err("blocked quantization (block_size) is not supported".into());
    }
    Ok(())
}

/// QuantizeLinear `[x, y_scale, y_zero_point?]`: float to int8, uint8 or int16.
pub fn quantize(cx: &mut ImportCx, node: &NodeProto, attrs: &Attrs) -> Result<TensorId, String> {
    per_tensor_only(attrs)?;
    let x = cx.operand(node, 0)?;
    if cx.ty(x).dtype != DType::F32 {
        return Err(format!(
            "the input is {}; only float32 inputs are supported",
            cx.ty(x).dtype.name()
        ));
    }
    let q = QParams::read(cx, node, 1, 2, DType::F32)?;
    let dtype = match (q.dtype, attrs.int("output_dtype", 0)?) {
        (Some(d), _) => d,
        (None, 0) => DType::U8,
        (None, code) => super::proto::dtype(code as i32)?,
    };
    if !matches!(dtype, DType::I8 | DType::U8 | DType::I16) {
        return Err(format!(
            "quantizing to {} is not supported (int8, uint8, int16)",
            dtype.name()
        ));
    }
    let quant = q.per_tensor("y_scale")?;
    cx.emit(
        &node.output[0],
        Op::Quantize,
        vec![Some(x)],
        dtype,
        Some(quant),
    )
}

/// DequantizeLinear `[x, x_scale, x_zero_point?]`: int8, uint8, int16 or int32 to float; the
/// input takes the parameters as its quantization. A constant input (a QDQ model's weights or
/// bias) may be quantized per axis (`axis`, default 1).
pub fn dequantize(cx: &mut ImportCx, node: &NodeProto, attrs: &Attrs) -> Result<TensorId, String> {
    per_tensor_only(attrs)?;
    let x = cx.operand(node, 0)?;
    let dtype = cx.ty(x).dtype;
    if !matches!(dtype, DType::I8 | DType::U8 | DType::I16 | DType::I32) {
        return Err(format!("dequantizing {} is not supported", dtype.name()));
    }
    let q = QParams::read(cx, node, 1, 2, dtype)?;
    let constant = cx.graph.tensor(x).kind == crate::graph::TensorKind::Constant;
    let quant = if constant && q.scales.len() > 1 {
        let rank = cx.ty(x).shape.len();
        let axis = super::attrs::axis(attrs.int("axis", 1)?, rank)?;
        q.per_channel(cx.ty(x).shape[axis], axis)?
    } else {
        q.per_tensor("x_scale")?
    };
    cx.set_quant(x, quant)?;
    cx.emit(
        &node.output[0],
        Op::Dequantize,
        vec![Some(x)],
        DType::F32,
        None,
    )
}
