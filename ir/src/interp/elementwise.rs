//! Element-wise ops: ADD and MUL (with broadcasting), QUANTIZE, DEQUANTIZE, RELU, RELU6,
//! LOGISTIC and TANH, for float and quantized tensors.
//!
//! Each integer op is a per-element function of widened inputs (`i64`) built at prepare time
//! from the quantization parameters, following the corresponding TFLite Micro kernel.

use super::{operand_type, output_type, Buffer, Kernel};
use crate::fixedpoint::{
    calculate_input_radius, frexp, logistic, multiply_by_quantized_multiplier,
    rounding_divide_by_pot, tanh,
};
use crate::floatfn;
use crate::graph::{Graph, Node};
use crate::op::{Activation, Op};
use crate::qparams::{self, AddParams};
use crate::sigmoid16::{Function, Sigmoid16};
use crate::types::{DType, TensorType};

type UnaryInt = Box<dyn Fn(i64) -> i64>;
type BinaryInt = Box<dyn Fn(i64, i64) -> i64>;
type UnaryFloat = Box<dyn Fn(f32) -> f32>;
type BinaryFloat = Box<dyn Fn(f32, f32) -> f32>;

/// A per-element function and the output type it produces.
enum ElementwiseKernel {
    Unary {
        int: Option<UnaryInt>,
        float: Option<UnaryFloat>,
        out: DType,
        int_to_float: bool,
    },
    Binary {
        int: Option<BinaryInt>,
        float: Option<BinaryFloat>,
        out: DType,
        a_index: Vec<usize>,
        b_index: Vec<usize>,
    },
}

/// Prepares an element-wise kernel.
pub(super) fn prepare(g: &Graph, node: &Node) -> Result<Box<dyn Kernel>, String> {
    let (input, output) = (operand_type(g, node, 0), output_type(g, node));
    let float = input.dtype == DType::F32;
    let kernel = match &node.op {
        Op::Add { activation }
        | Op::Mul { activation }
        | Op::Sub { activation }
        | Op::Div { activation } => binary(g, node, *activation)?,
        Op::Clamp { min, max } if float => {
            let (min, max) = (*min, *max);
            let f: UnaryFloat = Box::new(move |x| x.max(min).min(max));
            ElementwiseKernel::Unary {
                int: None,
                float: Some(f),
                out: DType::F32,
                int_to_float: false,
            }
        }
        Op::Clamp { min, max } => {
            if input.dtype != output.dtype || input.quant != output.quant {
                return Err("CLIP must keep its input's type and quantization".into());
            }
            let (lo, hi) = qparams::clamp_range(input, *min, *max)?;
            unary_int(Box::new(move |v| v.clamp(lo, hi)), output)
        }
        Op::Quantize => quantize(input, output)?,
        Op::Dequantize => {
            let (scale, zp) = qparams::per_tensor(input, "input")?;
            let int: UnaryInt = Box::new(move |v| {
                f32::to_bits((scale as f64 * (v - zp as i64) as f64) as f32) as i64
            });
            ElementwiseKernel::Unary {
                int: Some(int),
                float: None,
                out: DType::F32,
                int_to_float: true,
            }
        }
        Op::Relu | Op::Relu6 | Op::Logistic | Op::Tanh if float => {
            let f: UnaryFloat = match node.op {
                Op::Relu => Box::new(|x| x.max(0.0)),
                Op::Relu6 => Box::new(|x| x.clamp(0.0, 6.0)),
                Op::Logistic => Box::new(floatfn::logistic),
                _ => Box::new(floatfn::tanh),
            };
            ElementwiseKernel::Unary {
                int: None,
                float: Some(f),
                out: DType::F32,
                int_to_float: false,
            }
        }
        Op::Relu => unary_int(relu(input, output)?, output),
        Op::Relu6 => unary_int(relu6(input, output)?, output),
        Op::Logistic | Op::Tanh => unary_int(
            sigmoid_like(matches!(node.op, Op::Logistic), input, output)?,
            output,
        ),
        other => unreachable!("elementwise::prepare called for {}", other.name()),
    };
    Ok(Box::new(kernel))
}

/// The kernel of a binary op (ADD, MUL, SUB, DIV) with its operands broadcast to the
/// output: any of them in float32, ADD and MUL also quantized.
fn binary(g: &Graph, node: &Node, activation: Activation) -> Result<ElementwiseKernel, String> {
    let (input, output) = (operand_type(g, node, 0), output_type(g, node));
    let other = operand_type(g, node, 1);
    let (a_index, b_index) = broadcast_indices(&input.shape, &other.shape, &output.shape);
    let (int, float): (Option<BinaryInt>, Option<BinaryFloat>) = if input.dtype == DType::F32 {
        let (lo, hi) = qparams::activation_range_f32(activation);
        let f: BinaryFloat = match node.op {
            Op::Add { .. } => Box::new(move |a, b| (a + b).clamp(lo, hi)),
            Op::Mul { .. } => Box::new(move |a, b| (a * b).clamp(lo, hi)),
            Op::Sub { .. } => Box::new(move |a, b| (a - b).clamp(lo, hi)),
            _ => Box::new(move |a, b| (a / b).clamp(lo, hi)),
        };
        (None, Some(f))
    } else {
        integer_only(input, output)?;
        let f = match node.op {
            Op::Add { .. } => add_fn(qparams::add_params(input, other, output, activation)?),
            Op::Mul { .. } => mul_fn(input, other, output, activation)?,
            _ => {
                return Err(format!(
                    "{} {} is supported for float32 only",
                    input.dtype,
                    node.op.tflite_name()
                ))
            }
        };
        (Some(f), None)
    };
    Ok(ElementwiseKernel::Binary {
        int,
        float,
        out: output.dtype,
        a_index,
        b_index,
    })
}

fn unary_int(f: UnaryInt, output: &TensorType) -> ElementwiseKernel {
    ElementwiseKernel::Unary {
        int: Some(f),
        float: None,
        out: output.dtype,
        int_to_float: false,
    }
}

fn integer_only(input: &TensorType, output: &TensorType) -> Result<(), String> {
    match (input.dtype, output.dtype) {
        (DType::I8, DType::I8) | (DType::I16, DType::I16) => Ok(()),
        (i, o) => Err(format!("{i} to {o} is not supported (int8 or int16)")),
    }
}

/// Output index → input index, for each operand of a broadcasting binary op.
fn broadcast_indices(a: &[usize], b: &[usize], out: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let index = |s: &[usize]| -> Vec<usize> {
        let rank = out.len();
        let dims = crate::shape::padded_to_rank(s, rank);
        let total: usize = out.iter().product();
        (0..total)
            .map(|mut flat| {
                let (mut idx, mut stride) = (0, 1);
                for d in (0..rank).rev() {
                    let coord = flat % out[d];
                    flat /= out[d];
                    if dims[d] != 1 {
                        idx += coord * stride;
                    }
                    stride *= dims[d];
                }
                idx
            })
            .collect()
    };
    (index(a), index(b))
}

/// TFLite's integer `AddFunc`.
fn add_fn(p: AddParams) -> BinaryInt {
    Box::new(move |a, b| {
        let sum = p
            .scaled_input(0, a as i32)
            .wrapping_add(p.scaled_input(1, b as i32));
        p.output_of(sum) as i64
    })
}

/// TFLite's integer `MulElementwise`.
fn mul_fn(
    a: &TensorType,
    b: &TensorType,
    out: &TensorType,
    activation: crate::op::Activation,
) -> Result<BinaryInt, String> {
    let ((sa, za), (sb, zb), (so, zo)) = (
        qparams::per_tensor(a, "first input")?,
        qparams::per_tensor(b, "second input")?,
        qparams::per_tensor(out, "output")?,
    );
    let (m, s) = qparams::ratio(sa as f64 * sb as f64, so as f64);
    let (lo, hi) = qparams::activation_range(activation, out)?;
    Ok(Box::new(move |x, y| {
        let product = ((x - za as i64) * (y - zb as i64)) as i32;
        multiply_by_quantized_multiplier(product, m, s)
            .saturating_add(zo)
            .clamp(lo, hi) as i64
    }))
}

/// QUANTIZE: float to integer (`round(x / scale) + zero_point`), or integer requantization.
fn quantize(input: &TensorType, output: &TensorType) -> Result<ElementwiseKernel, String> {
    let (out_scale, out_zp) = qparams::per_tensor(output, "output")?;
    let (lo, hi) = output
        .dtype
        .int_range()
        .ok_or("the output must be an integer type")?;
    if input.dtype == DType::F32 {
        let f: UnaryFloat = Box::new(move |x| {
            ((x / out_scale).round() as i64 + out_zp as i64).clamp(lo, hi) as f32
        });
        return Ok(ElementwiseKernel::Unary {
            int: None,
            float: Some(f),
            out: output.dtype,
            int_to_float: false,
        });
    }
    let (in_scale, in_zp) = qparams::per_tensor(input, "input")?;
    let (m, s) = qparams::ratio(in_scale as f64, out_scale as f64);
    Ok(unary_int(
        Box::new(move |v| {
            let x = (v - in_zp as i64) as i32;
            (multiply_by_quantized_multiplier(x, m, s) as i64 + out_zp as i64).clamp(lo, hi)
        }),
        output,
    ))
}

/// TFLite Micro's `ReluQuantized`: requantize to the output scale, clamp below at zero.
fn relu(input: &TensorType, output: &TensorType) -> Result<UnaryInt, String> {
    integer_only(input, output)?;
    let ((si, zi), (so, zo)) = (
        qparams::per_tensor(input, "input")?,
        qparams::per_tensor(output, "output")?,
    );
    let (m, s) = crate::fixedpoint::quantize_multiplier((si / so) as f64);
    let (qmin, qmax) = output.dtype.int_range().expect("integer");
    let lo = qmin.max(zo as i64);
    Ok(Box::new(move |v| {
        let x = multiply_by_quantized_multiplier((v - zi as i64) as i32, m, s) as i64 + zo as i64;
        x.clamp(lo, qmax)
    }))
}

/// TFLite Micro's `Relu6Quantized`: clamp to the input's quantized 0 and 6, no requantization.
fn relu6(input: &TensorType, output: &TensorType) -> Result<UnaryInt, String> {
    integer_only(input, output)?;
    let (scale, zp) = qparams::per_tensor(input, "input")?;
    let (qmin, qmax) = input.dtype.int_range().expect("integer");
    let six = ((6.0f32 / scale).round() as i64 + zp as i64).clamp(qmin, qmax);
    Ok(Box::new(move |v| v.clamp(zp as i64, six)))
}

/// int8 LOGISTIC and TANH: the input is scaled into Q4.27 and fed to gemmlowp's fixed-point
/// function; inputs beyond the radius saturate.
fn sigmoid_like(
    is_logistic: bool,
    input: &TensorType,
    output: &TensorType,
) -> Result<UnaryInt, String> {
    if input.dtype == DType::I16 && output.dtype == DType::I16 {
        return sigmoid_like_int16(is_logistic, input, output);
    }
    if input.dtype != DType::I8 || output.dtype != DType::I8 {
        return Err(format!(
            "{} to {} is not supported (int8, int16 or float32)",
            input.dtype, output.dtype
        ));
    }
    const INPUT_INTEGER_BITS: i32 = 4;
    let (scale, zp) = qparams::per_tensor(input, "input")?;
    let (q, left_shift) = frexp(scale as f64 * (1i64 << (31 - INPUT_INTEGER_BITS)) as f64);
    let multiplier = (q * (1i64 << 31) as f64).round() as i32;
    let radius = calculate_input_radius(INPUT_INTEGER_BITS, left_shift, 31) as i64;
    Ok(Box::new(move |v| {
        let x = v - zp as i64;
        if x <= -radius {
            return -128;
        }
        if x >= radius {
            return 127;
        }
        let q4 = multiply_by_quantized_multiplier(x as i32, multiplier, left_shift);
        if is_logistic {
            (rounding_divide_by_pot(logistic(q4, INPUT_INTEGER_BITS), 23) as i64 - 128)
                .clamp(-128, 127)
        } else {
            (rounding_divide_by_pot(tanh(q4, INPUT_INTEGER_BITS), 24) as i64).clamp(-128, 127)
        }
    }))
}

/// int16 LOGISTIC and TANH: TFLite's interpolated sigmoid table ([`Sigmoid16`]).
fn sigmoid_like_int16(
    is_logistic: bool,
    input: &TensorType,
    output: &TensorType,
) -> Result<UnaryInt, String> {
    let ((si, zi), (so, zo)) = (
        qparams::per_tensor(input, "input")?,
        qparams::per_tensor(output, "output")?,
    );
    let function = if is_logistic {
        Function::Logistic
    } else {
        Function::Tanh
    };
    let p = Sigmoid16::new(function, si, zi, so, zo)?;
    Ok(Box::new(move |v| p.apply(v as i16) as i64))
}

impl Kernel for ElementwiseKernel {
    fn run(&self, inputs: &[Option<&Buffer>], output: &mut Buffer, _state: Option<&mut Buffer>) {
        let a = inputs[0].expect("verified");
        match self {
            ElementwiseKernel::Unary {
                int: Some(f),
                out,
                int_to_float,
                ..
            } => {
                let values = a.to_i64().expect("integer input").into_iter().map(f);
                *output = if *int_to_float {
                    Buffer::F32(values.map(|bits| f32::from_bits(bits as u32)).collect())
                } else {
                    Buffer::from_i64(*out, values)
                };
            }
            ElementwiseKernel::Unary {
                float: Some(f),
                out,
                ..
            } => {
                let x = a.as_f32().expect("float input");
                *output = match out {
                    DType::F32 => Buffer::F32(x.iter().map(|v| f(*v)).collect()),
                    other => Buffer::from_i64(*other, x.iter().map(|v| f(*v) as i64)),
                };
            }
            ElementwiseKernel::Binary {
                int,
                float,
                out,
                a_index,
                b_index,
            } => {
                let b = inputs[1].expect("verified");
                if let (Some(f), Some(x), Some(y)) = (float, a.as_f32(), b.as_f32()) {
                    *output = Buffer::F32(
                        a_index
                            .iter()
                            .zip(b_index)
                            .map(|(i, j)| f(x[*i], y[*j]))
                            .collect(),
                    );
                } else if let (Some(f), Some(x), Some(y)) = (int, a.to_i64(), b.to_i64()) {
                    *output = Buffer::from_i64(
                        *out,
                        a_index.iter().zip(b_index).map(|(i, j)| f(x[*i], y[*j])),
                    );
                }
            }
            ElementwiseKernel::Unary { .. } => {
                unreachable!("a unary kernel has an int or a float function")
            }
        }
    }
}
