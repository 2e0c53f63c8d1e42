//! SVDF: a rank-limited recurrent filter with a persistent memory (the state tensor).
//!
//! Each inference shifts the whole state left by one element, writes the feature projection of
//! the new input into the last slot of every filter's memory, filters each memory with the time
//! weights, sums `rank` filters per unit, adds the bias and (float) applies the activation or
//! (integer) requantizes. This follows TFLite Micro's `EvalIntegerSvdfReference`, including its
//! scale products computed in float.

use super::{operand_type, output_type, Buffer, Kernel};
use crate::fixedpoint::multiply_by_quantized_multiplier;
use crate::geometry::SvdfGeometry;
use crate::graph::{Graph, Node};
use crate::op::Op;
use crate::qparams;
use crate::types::DType;

/// Integer SVDF parameters.
struct QuantizedSvdf {
    dims: SvdfGeometry,
    feature: Vec<i32>,
    time: Vec<i32>,
    bias: Vec<i32>,
    p: qparams::Svdf,
    state_range: (i64, i64),
}

/// Float SVDF parameters.
struct FloatSvdf {
    dims: SvdfGeometry,
    feature: Vec<f32>,
    time: Vec<f32>,
    bias: Vec<f32>,
    range: (f32, f32),
}

enum SvdfKernel {
    Quantized(QuantizedSvdf),
    Float(FloatSvdf),
}

/// The constant operands, decoded.
struct Weights {
    feature: Buffer,
    time: Buffer,
    bias: Option<Buffer>,
}

/// Prepares an SVDF kernel.
pub(super) fn prepare(g: &Graph, node: &Node) -> Result<Box<dyn Kernel>, String> {
    let Op::Svdf { rank, activation } = node.op else {
        unreachable!("svdf::prepare called for {}", node.op.name())
    };
    let (input, wf, wt) = (
        operand_type(g, node, 0),
        operand_type(g, node, 1),
        operand_type(g, node, 2),
    );
    let dims = SvdfGeometry::new(&input.shape, &wf.shape, &wt.shape, rank);
    let constant = |i: usize, what: &str| -> Result<Buffer, String> {
        let t = g.tensor(node.inputs[i].ok_or(format!("the {what} is missing"))?);
        Ok(Buffer::from_le_bytes(
            t.ty.dtype,
            t.data
                .as_deref()
                .ok_or(format!("the {what} must be a constant"))?,
        ))
    };
    let weights = Weights {
        feature: constant(1, "feature weights")?,
        time: constant(2, "time weights")?,
        bias: match node.inputs[3] {
            Some(_) => Some(constant(3, "bias")?),
            None => None,
        },
    };
    if input.dtype == DType::F32 {
        let float = |b: Buffer| {
            b.as_f32()
                .map(<[f32]>::to_vec)
                .ok_or("a float SVDF needs float weights")
        };
        let units = dims.units();
        return Ok(Box::new(SvdfKernel::Float(FloatSvdf {
            feature: float(weights.feature)?,
            time: float(weights.time)?,
            bias: match weights.bias {
                Some(b) => float(b)?,
                None => vec![0.0; units],
            },
            range: qparams::activation_range_f32(activation),
            dims,
        })));
    }
    Ok(Box::new(SvdfKernel::Quantized(quantized(
        g, node, dims, weights,
    )?)))
}

/// The integer kernel's parameters. It clamps to int8 only: TFLite Micro ignores the fused
/// activation there.
fn quantized(
    g: &Graph,
    node: &Node,
    dims: SvdfGeometry,
    w: Weights,
) -> Result<QuantizedSvdf, String> {
    let (input, wf, wt, state) = (
        operand_type(g, node, 0),
        operand_type(g, node, 1),
        operand_type(g, node, 2),
        operand_type(g, node, 4),
    );
    let output = output_type(g, node);
    if input.dtype != DType::I8
        || output.dtype != DType::I8
        || !matches!(state.dtype, DType::I8 | DType::I16)
    {
        return Err(format!(
            "{} input with {} state is not supported (int8 input, int8 or int16 state)",
            input.dtype, state.dtype
        ));
    }
    let p = qparams::svdf([input, wf, wt, state, output])?;
    let ints = |b: Buffer| {
        b.to_i64()
            .map(|v| v.into_iter().map(|x| x as i32).collect::<Vec<i32>>())
            .ok_or("integer weights expected")
    };
    let units = dims.units();
    Ok(QuantizedSvdf {
        feature: ints(w.feature)?,
        time: ints(w.time)?,
        bias: match w.bias {
            Some(b) => ints(b)?,
            None => vec![0; units],
        },
        p,
        state_range: state.dtype.int_range().expect("integer state"),
        dims,
    })
}

impl Kernel for SvdfKernel {
    fn run(&self, inputs: &[Option<&Buffer>], output: &mut Buffer, state: Option<&mut Buffer>) {
        let input = inputs[0].expect("verified");
        let state = state.expect("SVDF has a state operand");
        match self {
            SvdfKernel::Float(k) => {
                let Buffer::F32(s) = state else {
                    unreachable!("float state")
                };
                *output = Buffer::F32(k.run(input.as_f32().expect("float input"), s));
            }
            SvdfKernel::Quantized(k) => {
                let mut s = state.to_i64().expect("integer state");
                let out = k.run(&input.to_i64().expect("integer input"), &mut s);
                *output = Buffer::I8(out);
                *state = Buffer::from_i64(state.dtype(), s.into_iter());
            }
        }
    }
}

impl FloatSvdf {
    /// One inference: updates the state `s` and returns the output.
    fn run(&self, x: &[f32], s: &mut [f32]) -> Vec<f32> {
        let dims = &self.dims;
        let (m, f) = (dims.memory, dims.filters);
        push_newest(dims, s, |b, r| {
            let row = &self.feature[r * dims.input..][..dims.input];
            row.iter()
                .zip(&x[b * dims.input..])
                .fold(0.0, |acc, (w, x)| acc + w * x)
        });
        let filtered = |b: usize, i: usize| -> f32 {
            self.time[i * m..][..m]
                .iter()
                .zip(&s[(b * f + i) * m..])
                .fold(0.0, |acc, (w, v)| acc + w * v)
        };
        let (lo, hi) = self.range;
        combine(dims, &self.bias, filtered)
            .into_iter()
            .map(|v| v.clamp(lo, hi))
            .collect()
    }
}

impl QuantizedSvdf {
    /// One inference: updates the state `s` and returns the output.
    fn run(&self, x: &[i64], s: &mut [i64]) -> Vec<i8> {
        let dims = &self.dims;
        let (m, f) = (dims.memory, dims.filters);
        push_newest(dims, s, |b, r| {
            let row = &self.feature[r * dims.input..][..dims.input];
            let dot = row
                .iter()
                .zip(&x[b * dims.input..])
                .fold(0i32, |acc, (w, v)| {
                    acc.wrapping_add(w.wrapping_mul(*v as i32 - self.p.input_zp))
                });
            let (m1, s1) = self.p.scale_1;
            let dot = multiply_by_quantized_multiplier(dot, m1, s1) as i64;
            let (lo, hi) = self.state_range;
            self.p.state_zp as i64 + dot.clamp(lo, hi)
        });
        let filtered = |b: usize, i: usize| -> i32 {
            self.time[i * m..][..m]
                .iter()
                .zip(&s[(b * f + i) * m..])
                .fold(0i32, |acc, (w, v)| {
                    acc.wrapping_add(w.wrapping_mul(*v as i32 - self.p.state_zp))
                })
        };
        combine(dims, &self.bias, filtered)
            .into_iter()
            .map(|v| {
                let scaled =
                    multiply_by_quantized_multiplier(v, self.p.scale_2.0, self.p.scale_2.1);
                scaled.saturating_add(self.p.output_zp).clamp(-128, 127) as i8
            })
            .collect()
    }
}

/// Ages every filter's memory by one step (the state shifts left by one element, as the
/// reference kernels do) and writes `newest(b, r)` as the newest value of batch `b`, filter `r`.
fn push_newest<T: Copy>(dims: &SvdfGeometry, s: &mut [T], newest: impl Fn(usize, usize) -> T) {
    let (m, f) = (dims.memory, dims.filters);
    s.copy_within(1.., 0);
    for b in 0..dims.batches {
        for r in 0..f {
            s[(b * f + r) * m + m - 1] = newest(b, r);
        }
    }
}

/// `bias[u] + Σ_{j < rank} filtered(b, u * rank + j)` for every batch and unit, summed in the
/// reference kernels' order.
fn combine<T: Copy + std::ops::Add<Output = T> + WrappingAdd>(
    dims: &SvdfGeometry,
    bias: &[T],
    filtered: impl Fn(usize, usize) -> T,
) -> Vec<T> {
    let units = dims.units();
    let mut out = Vec::with_capacity(dims.batches * units);
    for b in 0..dims.batches {
        for (u, bias) in bias.iter().enumerate().take(units) {
            let mut v = *bias;
            for j in 0..dims.rank {
                v = v.wrapping_add_(filtered(b, u * dims.rank + j));
            }
            out.push(v);
        }
    }
    out
}

/// Addition that wraps for integers (int32 arithmetic in the reference) and is plain for floats.
trait WrappingAdd {
    fn wrapping_add_(self, other: Self) -> Self;
}

impl WrappingAdd for i32 {
    fn wrapping_add_(self, other: Self) -> Self {
        self.wrapping_add(other)
    }
}

impl WrappingAdd for f32 {
    fn wrapping_add_(self, other: Self) -> Self {
        self + other
    }
}
