//! Data movement and reduction: RESHAPE, PAD, CONCATENATION, TRANSPOSE and MEAN.
//!
//! The movement ops copy raw values, so input and output must share their quantization (as
//! TFLite Micro requires); each is a precomputed list of `(output index, source)` pairs.

use super::{operand_type, output_type, Buffer, Kernel};
use crate::fixedpoint::{multiply_by_quantized_multiplier, quantize_multiplier};
use crate::graph::{Graph, Node};
use crate::op::{Activation, Op};
use crate::qparams;
use crate::types::{DType, TensorType};

enum LayoutKernel {
    /// `out[dst] = inputs[k][src]` for every `(dst, k, src)`; the rest is `fill`.
    Gather {
        moves: Vec<(usize, usize, usize)>,
        fill: Option<Buffer>,
    },
    /// Mean over the positions mapped to each output.
    Mean {
        to_output: Vec<usize>,
        count: usize,
        quant: Option<MeanQuant>,
    },
}

/// Integer MEAN parameters (TFLite's `QuantizedMeanOrSum`).
struct MeanQuant {
    input_zp: i64,
    output_zp: i32,
    multiplier: i32,
    shift: i32,
    range: (i64, i64),
}

/// Row-major strides of `shape`.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

/// Coordinates of every element of `shape`, in row-major order.
/// The linear index, by `strides`, of coordinates `c` moved by `shift` (PAD's rows and columns
/// before, SLICE's begin).
fn shifted_index(c: &[usize], shift: &[usize], strides: &[usize]) -> usize {
    c.iter()
        .zip(shift)
        .zip(strides)
        .map(|((x, d), st)| (x + d) * st)
        .sum()
}

fn coords(shape: &[usize]) -> impl Iterator<Item = Vec<usize>> + '_ {
    let total: usize = shape.iter().product();
    (0..total).map(move |mut flat| {
        let mut c = vec![0; shape.len()];
        for d in (0..shape.len()).rev() {
            c[d] = flat % shape[d];
            flat /= shape[d];
        }
        c
    })
}

fn same_quant(a: &TensorType, b: &TensorType) -> Result<(), String> {
    if a.quant == b.quant {
        Ok(())
    } else {
        Err("input and output must share their quantization".into())
    }
}

/// Prepares a layout kernel.
pub(super) fn prepare(g: &Graph, node: &Node) -> Result<Box<dyn Kernel>, String> {
    let (input, output) = (operand_type(g, node, 0), output_type(g, node));
    let kernel = match &node.op {
        Op::Reshape => LayoutKernel::Gather {
            moves: (0..output.elements()).map(|i| (i, 0, i)).collect(),
            fill: None,
        },
        Op::Transpose { perm } => {
            same_quant(input, output)?;
            let s = strides(&input.shape);
            let moves = coords(&output.shape)
                .enumerate()
                .map(|(dst, c)| (dst, 0, c.iter().zip(perm).map(|(x, p)| x * s[*p]).sum()))
                .collect();
            LayoutKernel::Gather { moves, fill: None }
        }
        Op::Pad { pads } => {
            same_quant(input, output)?;
            let s = strides(&output.shape);
            let before: Vec<usize> = pads.iter().map(|(b, _)| *b).collect();
            let moves = coords(&input.shape)
                .enumerate()
                .map(|(src, c)| (shifted_index(&c, &before, &s), 0, src))
                .collect();
            let pad_value = input.per_tensor().map_or(0, |(_, zp)| zp as i64);
            LayoutKernel::Gather {
                moves,
                fill: Some(Buffer::from_i64(
                    output.dtype,
                    std::iter::repeat_n(pad_value, output.elements()),
                )),
            }
        }
        Op::Slice { begin } => {
            same_quant(input, output)?;
            let s = strides(&input.shape);
            let moves = coords(&output.shape)
                .enumerate()
                .map(|(dst, c)| (dst, 0, shifted_index(&c, begin, &s)))
                .collect();
            LayoutKernel::Gather { moves, fill: None }
        }
        Op::Concat { axis, activation } => {
            if *activation != Activation::None {
                return Err("a fused activation on CONCATENATION is not supported".into());
            }
            let s = strides(&output.shape);
            let mut moves = Vec::new();
            let mut offset = 0;
            for (k, t) in node.inputs.iter().enumerate() {
                let ty = &g.tensor(t.expect("verified")).ty;
                same_quant(ty, output)?;
                for (src, mut c) in coords(&ty.shape).enumerate() {
                    c[*axis] += offset;
                    moves.push((c.iter().zip(&s).map(|(x, st)| x * st).sum(), k, src));
                }
                offset += ty.shape[*axis];
            }
            LayoutKernel::Gather { moves, fill: None }
        }
        Op::Mean { axes, .. } => mean(input, output, axes)?,
        other => unreachable!("layout::prepare called for {}", other.name()),
    };
    Ok(Box::new(kernel))
}

fn mean(input: &TensorType, output: &TensorType, axes: &[usize]) -> Result<LayoutKernel, String> {
    let kept: Vec<usize> = (0..input.shape.len())
        .filter(|d| !axes.contains(d))
        .collect();
    let kept_shape: Vec<usize> = kept.iter().map(|d| input.shape[*d]).collect();
    let ks = strides(&kept_shape);
    let to_output = coords(&input.shape)
        .map(|c| kept.iter().zip(&ks).map(|(d, st)| c[*d] * st).sum())
        .collect();
    let count: usize = axes.iter().map(|a| input.shape[*a]).product();
    let quant = match input.dtype {
        DType::F32 => None,
        DType::I8 | DType::I16 => {
            let ((si, zi), (so, zo)) = (
                qparams::per_tensor(input, "input")?,
                qparams::per_tensor(output, "output")?,
            );
            let (m, s) = quantize_multiplier(si as f64 / so as f64);
            // Fold the division by the element count into the multiplier, as TFLite does.
            let shift = (63 - (count as u64).leading_zeros() as i32)
                .min(32)
                .min(31 + s);
            let multiplier = (((m as i64) << shift) / count.max(1) as i64) as i32;
            let range = output.dtype.int_range().expect("integer");
            Some(MeanQuant {
                input_zp: zi as i64,
                output_zp: zo,
                multiplier,
                shift: s - shift,
                range,
            })
        }
        other => return Err(format!("{other} MEAN is not supported")),
    };
    Ok(LayoutKernel::Mean {
        to_output,
        count,
        quant,
    })
}

impl Kernel for LayoutKernel {
    fn run(&self, inputs: &[Option<&Buffer>], output: &mut Buffer, _state: Option<&mut Buffer>) {
        match self {
            LayoutKernel::Gather { moves, fill } => {
                if let Some(f) = fill {
                    output.clone_from(f);
                }
                for (k, input) in inputs.iter().enumerate() {
                    let input = input.expect("verified");
                    input.gather_into(
                        output,
                        moves
                            .iter()
                            .filter(|m| m.1 == k)
                            .map(|(dst, _, src)| (*dst, *src)),
                    );
                }
            }
            LayoutKernel::Mean {
                to_output,
                count,
                quant,
            } => {
                let input = inputs[0].expect("verified");
                let n = output.len();
                match quant {
                    None => {
                        let x = input.as_f32().expect("float input");
                        let mut sums = vec![0f32; n];
                        for (v, o) in x.iter().zip(to_output) {
                            sums[*o] += v;
                        }
                        *output =
                            Buffer::F32(sums.into_iter().map(|s| s / *count as f32).collect());
                    }
                    Some(q) => {
                        let x = input.to_i64().expect("integer input");
                        let mut sums = vec![0i32; n];
                        for (v, o) in x.iter().zip(to_output) {
                            sums[*o] = sums[*o].wrapping_add(*v as i32);
                        }
                        let values = sums.into_iter().map(|s| {
                            let shifted = s.wrapping_sub((q.input_zp * *count as i64) as i32);
                            let v = multiply_by_quantized_multiplier(shifted, q.multiplier, q.shift)
                                as i64
                                + q.output_zp as i64;
                            v.clamp(q.range.0, q.range.1)
                        });
                        *output = Buffer::from_i64(output.dtype(), values);
                    }
                }
            }
        }
    }
}
