//! Quantization parameters of each kernel, derived from tensor scales exactly as TFLite Micro's
//! `Prepare` functions derive them.
//!
//! The order of float and double operations matters for bit-exactness and differs between
//! kernels (convolution multiplies the scales in double; fully connected multiplies input and
//! filter scales in float first), so each kernel has its own function here. The results are
//! plain data that the interpreter uses and that the lowering will emit as constants.

use crate::fixedpoint::{
    multiply_by_quantized_multiplier, multiply_by_quantized_multiplier_i64,
    multiply_by_quantized_multiplier_smaller_than_one_exp, quantize_multiplier,
};
use crate::op::Activation;
use crate::types::{DType, TensorType};

/// The per-tensor scale and zero point of `t`, or an error naming `what`.
pub fn per_tensor(t: &TensorType, what: &str) -> Result<(f32, i32), String> {
    match &t.quant {
        Some(q) if q.len() == 1 => Ok((q.scale(0), q.zero_point(0))),
        Some(_) => Err(format!("the {what} must have per-tensor quantization")),
        None => Err(format!("the {what} ({}) is not quantized", t.dtype)),
    }
}

/// TFLite's `CalculateActivationRangeQuantized`: the clamp bounds of a fused activation in the
/// output's quantized domain.
pub fn activation_range(activation: Activation, output: &TensorType) -> Result<(i32, i32), String> {
    let (lo, hi) = output
        .dtype
        .int_range()
        .ok_or("the output is not an integer type")?;
    let (qmin, qmax) = (
        lo.max(i32::MIN as i64) as i32,
        hi.min(i32::MAX as i64) as i32,
    );
    if activation == Activation::None {
        // No clamp beyond the type's range: an unquantized integer tensor is fine too.
        return Ok((qmin, qmax));
    }
    let (scale, zp) = per_tensor(output, "output")?;
    let quantize = |f: f32| zp.saturating_add((f / scale).round() as i32);
    Ok(match activation {
        Activation::None => (qmin, qmax),
        Activation::Relu => (qmin.max(quantize(0.0)), qmax),
        Activation::Relu6 => (qmin.max(quantize(0.0)), qmax.min(quantize(6.0))),
        Activation::ReluN1To1 => (qmin.max(quantize(-1.0)), qmax.min(quantize(1.0))),
    })
}

/// The integer bounds of `CLAMP(min, max)` on a tensor of type `t`: quantized with its
/// parameters when it has them (rounded inward, so no value outside `[min, max]` survives),
/// the integers themselves otherwise; always inside the type's range. `min > max` gives
/// `(hi, hi)`: every element becomes `max`, as numpy's `clip` does.
pub fn clamp_range(t: &TensorType, min: f32, max: f32) -> Result<(i64, i64), String> {
    let (qmin, qmax) = t
        .dtype
        .int_range()
        .ok_or("the tensor is not an integer type")?;
    let (scale, zp) = match &t.quant {
        Some(_) => per_tensor(t, "input")?,
        None => (1.0, 0),
    };
    let quantize = |f: f32, up: bool| -> i64 {
        let q = f64::from(f) / f64::from(scale);
        let q = if up { q.ceil() } else { q.floor() };
        (q.clamp(-1e18, 1e18) as i64).saturating_add(i64::from(zp))
    };
    let lo = quantize(min, true).clamp(qmin, qmax);
    let hi = quantize(max, false).clamp(qmin, qmax);
    Ok(if lo > hi { (hi, hi) } else { (lo, hi) })
}

/// The clamp bounds of a fused activation for float kernels.
pub fn activation_range_f32(activation: Activation) -> (f32, f32) {
    match activation {
        Activation::None => (f32::MIN, f32::MAX),
        Activation::Relu => (0.0, f32::MAX),
        Activation::Relu6 => (0.0, 6.0),
        Activation::ReluN1To1 => (-1.0, 1.0),
    }
}

/// How an accumulator becomes an output value: add the bias, scale by the channel's
/// multiplier, add the output zero point, clamp.
#[derive(Clone, Debug, PartialEq)]
pub struct Requantize {
    /// Q0.31 multiplier per output channel.
    pub multipliers: Vec<i32>,
    /// Power-of-two exponent per output channel.
    pub shifts: Vec<i32>,
    /// Output zero point.
    pub output_offset: i32,
    /// Lower clamp (activation and type range).
    pub act_min: i32,
    /// Upper clamp.
    pub act_max: i32,
    /// 64-bit accumulators (16x8 kernels), scaled with the 64-bit multiply.
    pub wide: bool,
}

impl Requantize {
    /// The output value for accumulator `acc` (bias included) of channel `c`.
    pub fn apply(&self, acc: i64, c: usize) -> i32 {
        let scaled = if self.wide {
            multiply_by_quantized_multiplier_i64(acc, self.multipliers[c], self.shifts[c])
        } else {
            // 8-bit kernels accumulate in 32 bits: wrap exactly as int32 arithmetic does.
            multiply_by_quantized_multiplier(acc as i32, self.multipliers[c], self.shifts[c])
        };
        scaled
            .saturating_add(self.output_offset)
            .clamp(self.act_min, self.act_max)
    }
}

/// Requantization of a convolution or depthwise convolution (TFLite's
/// `PopulateConvolutionQuantizationParams`): one multiplier per output channel from
/// `input_scale * filter_scale[c] / output_scale`, in double precision.
pub fn conv_requantize(
    input: &TensorType,
    filter: &TensorType,
    output: &TensorType,
    channels: usize,
    activation: Activation,
) -> Result<Requantize, String> {
    let (in_scale, _) = per_tensor(input, "input")?;
    let (out_scale, out_zp) = per_tensor(output, "output")?;
    let fq = filter.quant.as_ref().ok_or("the filter is not quantized")?;
    if fq.len() != 1 && fq.len() != channels {
        return Err(format!(
            "the filter has {} scales for {channels} output channels",
            fq.len()
        ));
    }
    let (multipliers, shifts) = (0..channels)
        .map(|c| {
            let filter_scale = fq.scale(if fq.len() == 1 { 0 } else { c }) as f64;
            quantize_multiplier(in_scale as f64 * filter_scale / out_scale as f64)
        })
        .unzip();
    let (act_min, act_max) = activation_range(activation, output)?;
    Ok(Requantize {
        multipliers,
        shifts,
        output_offset: out_zp,
        act_min,
        act_max,
        wide: input.dtype == DType::I16,
    })
}

/// Requantization of a fully connected layer (TFLite Micro's `CalculateOpDataFullyConnected`):
/// per-channel like convolution, or per-tensor from `(input_scale * filter_scale)` computed in
/// float and then divided in double.
pub fn fully_connected_requantize(
    input: &TensorType,
    filter: &TensorType,
    output: &TensorType,
    units: usize,
    activation: Activation,
) -> Result<Requantize, String> {
    let fq = filter
        .quant
        .as_ref()
        .ok_or("the weights are not quantized")?;
    if fq.len() > 1 {
        return conv_requantize(input, filter, output, units, activation);
    }
    let (in_scale, _) = per_tensor(input, "input")?;
    let (out_scale, out_zp) = per_tensor(output, "output")?;
    let product = (in_scale * fq.scale(0)) as f64;
    let (m, s) = quantize_multiplier(product / out_scale as f64);
    let (act_min, act_max) = activation_range(activation, output)?;
    Ok(Requantize {
        multipliers: vec![m; units],
        shifts: vec![s; units],
        output_offset: out_zp,
        act_min,
        act_max,
        wide: input.dtype == DType::I16,
    })
}

/// Parameters of quantized ADD (TFLite Micro's `CalculateOpDataAdd`): both inputs are rescaled
/// to a common scale with `left_shift` bits of headroom, summed, and rescaled to the output.
#[derive(Clone, Debug, PartialEq)]
pub struct AddParams {
    /// Negated zero points of the two inputs.
    pub input_offsets: [i32; 2],
    /// Multiplier and shift of each input.
    pub input_scales: [(i32, i32); 2],
    /// Multiplier and shift of the sum.
    pub output_scale: (i32, i32),
    /// Output zero point.
    pub output_offset: i32,
    /// Headroom shift: 20 for int8, 15 for int16.
    pub left_shift: i32,
    /// Clamp bounds.
    pub act_min: i32,
    /// Clamp bounds.
    pub act_max: i32,
}

impl AddParams {
    /// Input `side` (0 or 1) of value `v` at the common scale: `(v + offset) << left_shift`
    /// times the side's multiplier, as TFLite's `AddFunc` computes it before the sum.
    pub fn scaled_input(&self, side: usize, v: i32) -> i32 {
        let shifted = self.input_offsets[side]
            .wrapping_add(v)
            .wrapping_shl(self.left_shift as u32);
        let (multiplier, shift) = self.input_scales[side];
        multiply_by_quantized_multiplier_smaller_than_one_exp(shifted, multiplier, shift)
    }

    /// The sum of two scaled inputs ([`Self::scaled_input`]) rescaled to the output, with its
    /// zero point added and clamped to the activation's range.
    pub fn output_of(&self, sum: i32) -> i32 {
        let (multiplier, shift) = self.output_scale;
        multiply_by_quantized_multiplier_smaller_than_one_exp(sum, multiplier, shift)
            .saturating_add(self.output_offset)
            .clamp(self.act_min, self.act_max)
    }

    /// The 256 values [`Self::scaled_input`] takes on int8 inputs of `side`, indexed by the
    /// input's byte (0 to 127, then -128 to -1): the table an int8 ADD looks its inputs up in
    /// instead of scaling them, whose index is then the byte zero-extended.
    pub fn scaled_int8_inputs(&self, side: usize) -> Vec<i32> {
        (0..=255u8)
            .map(|b| self.scaled_input(side, b as i8 as i32))
            .collect()
    }

    /// The `(multiplier, shift, rounding)` of the sum's rescaling and output zero point as one
    /// 32-bit high multiply ([`crate::fixedpoint::multiply_by_quantized_multiplier_high_mul`])
    /// for int8 inputs, where that is exact: the two scaled inputs' largest sizes sum below
    /// [`crate::fixedpoint::HIGH_MUL_ACC_LIMIT`], and the output scale has the high-shift form
    /// with a rounding constant that fits.
    pub fn int8_high_mul_output(&self) -> Option<(i32, i32, i32)> {
        let largest = |side| {
            let values = self.scaled_int8_inputs(side).into_iter();
            values.map(|v| (v as i64).abs()).max().unwrap_or(0)
        };
        if largest(0) + largest(1) >= crate::fixedpoint::HIGH_MUL_ACC_LIMIT {
            return None;
        }
        let (multiplier, high, rounding) = self.output_high_shift()?;
        let (shift, rounding) = crate::fixedpoint::high_mul_form(high, rounding)?;
        Some((multiplier, shift, rounding))
    }

    /// The `(multiplier, high_shift, rounding)` of the sum's rescaling with the output zero
    /// point folded into the rounding constant
    /// ([`crate::fixedpoint::multiply_by_quantized_multiplier_high_shift_offset`]), where the
    /// output scale has that form and the constant fits.
    pub fn output_high_shift(&self) -> Option<(i32, i32, i32)> {
        let (multiplier, shift) = self.output_scale;
        let high = crate::fixedpoint::high_shift_of(multiplier, shift)?;
        let rounding = crate::fixedpoint::high_shift_rounding(high, self.output_offset)?;
        Some((multiplier, high, rounding))
    }
}

/// Derives [`AddParams`].
pub fn add_params(
    a: &TensorType,
    b: &TensorType,
    output: &TensorType,
    activation: Activation,
) -> Result<AddParams, String> {
    let (sa, za) = per_tensor(a, "first input")?;
    let (sb, zb) = per_tensor(b, "second input")?;
    let (so, zo) = per_tensor(output, "output")?;
    let left_shift = if output.dtype == DType::I16 { 15 } else { 20 };
    let twice_max = 2.0 * sa.max(sb) as f64;
    let real_out = twice_max / ((1i64 << left_shift) as f64 * so as f64);
    let (act_min, act_max) = activation_range(activation, output)?;
    Ok(AddParams {
        input_offsets: [-za, -zb],
        input_scales: [
            quantize_multiplier(sa as f64 / twice_max),
            quantize_multiplier(sb as f64 / twice_max),
        ],
        output_scale: quantize_multiplier(real_out),
        output_offset: zo,
        left_shift,
        act_min,
        act_max,
    })
}

/// A scale ratio as multiplier and shift: `multiplier, shift` for `numerator / denominator`
/// computed in double (requantization in QUANTIZE and MEAN, MUL's output scale).
pub fn ratio(numerator: f64, denominator: f64) -> (i32, i32) {
    quantize_multiplier(numerator / denominator)
}

/// Parameters of TFLite Micro's integer SVDF (`EvalIntegerSvdfReference`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Svdf {
    /// Input zero point.
    pub input_zp: i32,
    /// State zero point.
    pub state_zp: i32,
    /// Output zero point.
    pub output_zp: i32,
    /// Feature projection to state: `input * feature / state` scales, multiplied in float.
    pub scale_1: (i32, i32),
    /// Filtered state to output: `state * time / output` scales, multiplied in float.
    pub scale_2: (i32, i32),
}

/// Derives [`Svdf`] from the input, feature weights, time weights, state and output types.
pub fn svdf([input, wf, wt, state, output]: [&TensorType; 5]) -> Result<Svdf, String> {
    let ((si, input_zp), (sf, _), (st, _), (ss, state_zp), (so, output_zp)) = (
        per_tensor(input, "input")?,
        per_tensor(wf, "feature weights")?,
        per_tensor(wt, "time weights")?,
        per_tensor(state, "state")?,
        per_tensor(output, "output")?,
    );
    Ok(Svdf {
        input_zp,
        state_zp,
        output_zp,
        scale_1: quantize_multiplier((si * sf / ss) as f64),
        scale_2: quantize_multiplier((ss * st / so) as f64),
    })
}

/// Parameters of TFLite's int16 SOFTMAX (`CalculateSoftmaxParams` for int16 input): the input
/// difference scaling and the two interpolated tables.
#[derive(Clone, Debug, PartialEq)]
pub struct SoftmaxInt16 {
    /// Scales input differences so that [-65535, 0] covers [-10, 0].
    pub multiplier: i32,
    /// Its shift.
    pub shift: i32,
    /// `exp` on [-10, 0] (513 entries).
    pub exp_lut: Vec<i16>,
    /// `1 / (1 + x)` on [0, 1] (513 entries).
    pub one_over_one_plus_x_lut: Vec<i16>,
}

/// Derives [`SoftmaxInt16`].
pub fn softmax_int16(beta: f32, input_scale: f32) -> SoftmaxInt16 {
    use crate::lut::populate_int16;
    let range = (i16::MAX as i32 - i16::MIN as i32) as f32;
    let (multiplier, shift) =
        quantize_multiplier(input_scale as f64 * beta as f64 / (10.0 / 65535.0));
    SoftmaxInt16 {
        multiplier,
        shift,
        exp_lut: populate_int16(10.0 / range, i16::MAX as i32, 2.0 / range, 0, f32::exp),
        one_over_one_plus_x_lut: populate_int16(
            1.0 / range,
            i16::MIN as i32,
            2.0 / range,
            0,
            |x| 1.0 / (1.0 + x),
        ),
    }
}
