//! SOFTMAX over the last dimension.
//!
//! int8 input uses TFLite's fixed-point algorithm: input differences from the row maximum are
//! scaled into Q5.26, exponentiated with gemmlowp's `exp_on_negative_values`, summed in Q12.19,
//! and divided through a fixed-point reciprocal. The output is int8 (zero point -128, scale
//! 1/256) or int16 (zero point -32768, scale 1/65536).

use super::{operand_type, output_type, Buffer, Kernel};
use crate::fixedpoint::multiply_by_quantized_multiplier;
use crate::fixedpoint::{
    calculate_input_radius, exp_on_negative_values, get_reciprocal,
    multiply_by_quantized_multiplier_greater_than_one, preprocess_softmax_scaling,
    rounding_divide_by_pot, saturating_rounding_doubling_high_mul,
};
use crate::floatfn;
use crate::graph::{Graph, Node};
use crate::lut;
use crate::op::Op;
use crate::qparams;
use crate::types::DType;

const SCALED_DIFF_INTEGER_BITS: i32 = 5;
const ACCUMULATION_INTEGER_BITS: i32 = 12;

enum SoftmaxKernel {
    Quantized {
        multiplier: i32,
        left_shift: i32,
        diff_min: i32,
        depth: usize,
        out: DType,
    },
    Float {
        beta: f32,
        depth: usize,
    },
    /// int16 to int16 through TFLite's exp and 1/(1+x) tables.
    Int16(Int16Softmax),
}

/// TFLite's `SoftmaxInt16` over rows of `depth`.
pub(crate) struct Int16Softmax {
    p: qparams::SoftmaxInt16,
    depth: usize,
}

impl Int16Softmax {
    /// `exp(x - max)` in Q0.15 from the table.
    fn exp(&self, x: i64, max: i64) -> i32 {
        let scaled =
            multiply_by_quantized_multiplier((x - max) as i32, self.p.multiplier, self.p.shift);
        let centred = scaled.wrapping_add(32767).clamp(-32768, 32767) as i16;
        lut::lookup_int16(centred, &self.p.exp_lut) as i32
    }

    fn run_row(&self, row: &[i64], out: &mut Vec<i64>) {
        let max = row.iter().copied().fold(i16::MIN as i64, i64::max);
        let sum: i32 = row
            .iter()
            .map(|x| self.exp(*x, max))
            .fold(0, i32::wrapping_add);
        let headroom_plus_one = (sum as u32).leading_zeros() as i32;
        let shifted = (((sum as i64) << (headroom_plus_one - 1)) + (1 << 13)) >> 14;
        let centred = (shifted as i32 - ((1 << 15) + (1 << 16))).clamp(-32768, 32767) as i16;
        let reciprocal = lut::lookup_int16(centred, &self.p.one_over_one_plus_x_lut) as i64;
        let right_shift = 31 - headroom_plus_one;
        let round = 1i64 << (right_shift - 1);
        out.extend(row.iter().map(|x| {
            let e = self.exp(*x, max) as i64;
            (((e * reciprocal + round) >> right_shift) as i32).clamp(0, 32767) as i64
        }));
    }
}

/// Prepares a softmax kernel.
pub(super) fn prepare(g: &Graph, node: &Node) -> Result<Box<dyn Kernel>, String> {
    let Op::Softmax { beta } = node.op else {
        unreachable!("softmax::prepare called for {}", node.op.name())
    };
    let (input, output) = (operand_type(g, node, 0), output_type(g, node));
    let depth = *input.shape.last().ok_or("the input is a scalar")?;
    match (input.dtype, output.dtype) {
        (DType::F32, DType::F32) => Ok(Box::new(SoftmaxKernel::Float { beta, depth })),
        (DType::I8, DType::I8 | DType::I16) => {
            let (in_scale, _) = qparams::per_tensor(input, "input")?;
            let (out_scale, out_zp) = qparams::per_tensor(output, "output")?;
            let (want_zp, want_scale) = if output.dtype == DType::I8 {
                (-128, 1.0 / 256.0)
            } else {
                (-32768, 1.0 / 65536.0)
            };
            if out_zp != want_zp || (out_scale - want_scale).abs() > 0.001 * want_scale {
                return Err(format!(
                    "a {} softmax output must have scale {want_scale} and zero point {want_zp}",
                    output.dtype
                ));
            }
            let (multiplier, left_shift) =
                preprocess_softmax_scaling(beta as f64, in_scale as f64, SCALED_DIFF_INTEGER_BITS);
            let diff_min = -calculate_input_radius(SCALED_DIFF_INTEGER_BITS, left_shift, 31);
            Ok(Box::new(SoftmaxKernel::Quantized {
                multiplier,
                left_shift,
                diff_min,
                depth,
                out: output.dtype,
            }))
        }
        (DType::I16, DType::I16) => {
            let (in_scale, in_zp) = qparams::per_tensor(input, "input")?;
            let (out_scale, out_zp) = qparams::per_tensor(output, "output")?;
            let want = 1.0 / 32768.0;
            if in_zp != 0 || out_zp != 0 || (out_scale - want).abs() > 0.001 * want {
                return Err("an int16 softmax needs zero points 0 and output scale 1/32768".into());
            }
            Ok(Box::new(SoftmaxKernel::Int16(Int16Softmax {
                p: qparams::softmax_int16(beta, in_scale),
                depth,
            })))
        }
        (i, o) => Err(format!(
            "softmax from {i} to {o} is not supported (int8, int16 or float32 input only)"
        )),
    }
}

impl Kernel for SoftmaxKernel {
    fn run(&self, inputs: &[Option<&Buffer>], output: &mut Buffer, _state: Option<&mut Buffer>) {
        let input = inputs[0].expect("verified");
        match self {
            SoftmaxKernel::Int16(p) => {
                let x = input.to_i64().expect("integer input");
                let mut values = Vec::with_capacity(x.len());
                for row in x.chunks_exact(p.depth) {
                    p.run_row(row, &mut values);
                }
                *output = Buffer::from_i64(DType::I16, values.into_iter());
            }
            SoftmaxKernel::Float { beta, depth } => {
                let x = input.as_f32().expect("float input");
                let mut out = vec![0f32; x.len()];
                for (row, o) in x.chunks_exact(*depth).zip(out.chunks_exact_mut(*depth)) {
                    let max = row.iter().copied().fold(f32::MIN, f32::max);
                    let mut sum = 0f32;
                    for (v, e) in row.iter().zip(o.iter_mut()) {
                        *e = floatfn::exp((v - max) * beta);
                        sum += *e;
                    }
                    o.iter_mut().for_each(|e| *e /= sum);
                }
                *output = Buffer::F32(out);
            }
            SoftmaxKernel::Quantized {
                multiplier,
                left_shift,
                diff_min,
                depth,
                out,
            } => {
                let x = input.to_i64().expect("integer input");
                let (lo, hi) = out.int_range().expect("integer output");
                let bits = (out.size() * 8) as i32;
                let mut values = Vec::with_capacity(x.len());
                for row in x.chunks_exact(*depth) {
                    let max = row.iter().copied().max().unwrap_or(lo);
                    let scaled_exp = |v: i64| -> Option<i32> {
                        let diff = (v - max) as i32;
                        (diff >= *diff_min).then(|| {
                            let rescaled = multiply_by_quantized_multiplier_greater_than_one(
                                diff,
                                *multiplier,
                                *left_shift,
                            );
                            exp_on_negative_values(rescaled, SCALED_DIFF_INTEGER_BITS)
                        })
                    };
                    let sum = row
                        .iter()
                        .filter_map(|v| scaled_exp(*v))
                        .fold(0i32, |s, e| {
                            s.wrapping_add(rounding_divide_by_pot(e, ACCUMULATION_INTEGER_BITS))
                        });
                    let (reciprocal, bits_over_unit) =
                        get_reciprocal(sum, ACCUMULATION_INTEGER_BITS);
                    let exponent = bits_over_unit + 31 - bits;
                    values.extend(row.iter().map(|v| match scaled_exp(*v) {
                        Some(e) => {
                            let unsat = rounding_divide_by_pot(
                                saturating_rounding_doubling_high_mul(reciprocal, e),
                                exponent,
                            );
                            (unsat as i64 + lo).clamp(lo, hi)
                        }
                        None => lo,
                    }));
                }
                *output = Buffer::from_i64(*out, values.into_iter());
            }
        }
    }
}
