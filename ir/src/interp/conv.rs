//! The multiply-accumulate kernels: convolution, depthwise convolution and fully connected.
//!
//! Each kernel runs in two steps shared by float and integer models: a generic loop nest that
//! produces raw accumulators (`i64` for integer models, so 8-bit and 16-bit inputs share it;
//! `f32` for float models), then an [`Epilogue`] that adds the bias and either requantizes and
//! clamps (TFLite's integer kernels) or clamps to the fused activation (float kernels). The loop
//! order is the reference kernels', so float sums round the same way.

use super::{Buffer, Kernel};
use crate::geometry::ConvGeometry;
use crate::graph::{Graph, Node};
use crate::op::{Activation, Op};
use crate::qparams::{self, Requantize};
use crate::types::{DType, TensorType};
use std::ops::{Add, Mul};

/// A number the loop nests can multiply and accumulate.
pub(super) trait Mac: Copy + Default + Add<Output = Self> + Mul<Output = Self> {}
impl Mac for i64 {}
impl Mac for f32 {}

/// Raw accumulators of a (grouped) convolution; filter layout OHWI.
fn conv_accumulate<T: Mac>(g: &ConvGeometry, input: &[T], filter: &[T], acc: &mut [T]) {
    let filters_per_group = g.out_c / (g.in_c / g.k_c);
    let mut out = 0;
    for b in 0..g.batches {
        for oy in 0..g.out_h {
            for ox in 0..g.out_w {
                for oc in 0..g.out_c {
                    let group_base = (oc / filters_per_group) * g.k_c;
                    let mut sum = T::default();
                    for ky in 0..g.k_h {
                        for kx in 0..g.k_w {
                            let Some((iy, ix)) = g.tap(oy, ox, ky, kx) else {
                                continue;
                            };
                            let x = &input
                                [((b * g.in_h + iy) * g.in_w + ix) * g.in_c + group_base..]
                                [..g.k_c];
                            let f = &filter[((oc * g.k_h + ky) * g.k_w + kx) * g.k_c..][..g.k_c];
                            for (xv, fv) in x.iter().zip(f) {
                                sum = sum + *xv * *fv;
                            }
                        }
                    }
                    acc[out] = sum;
                    out += 1;
                }
            }
        }
    }
}

/// Raw accumulators of a depthwise convolution; filter layout 1HW(C*M).
fn depthwise_accumulate<T: Mac>(
    g: &ConvGeometry,
    multiplier: usize,
    input: &[T],
    filter: &[T],
    acc: &mut [T],
) {
    for b in 0..g.batches {
        for oy in 0..g.out_h {
            for ox in 0..g.out_w {
                let out_base = ((b * g.out_h + oy) * g.out_w + ox) * g.out_c;
                for ic in 0..g.in_c {
                    for m in 0..multiplier {
                        let oc = m + ic * multiplier;
                        let mut sum = T::default();
                        for ky in 0..g.k_h {
                            for kx in 0..g.k_w {
                                let Some((iy, ix)) = g.tap(oy, ox, ky, kx) else {
                                    continue;
                                };
                                let x = input[((b * g.in_h + iy) * g.in_w + ix) * g.in_c + ic];
                                sum = sum + x * filter[(ky * g.k_w + kx) * g.out_c + oc];
                            }
                        }
                        acc[out_base + oc] = sum;
                    }
                }
            }
        }
    }
}

/// Raw accumulators of a fully connected layer: `rows x depth` by `units x depth`.
fn fc_accumulate<T: Mac>(depth: usize, units: usize, input: &[T], weights: &[T], acc: &mut [T]) {
    for (row, out) in input.chunks_exact(depth).zip(acc.chunks_exact_mut(units)) {
        for (u, o) in out.iter_mut().enumerate() {
            let w = &weights[u * depth..][..depth];
            let mut sum = T::default();
            for (x, f) in row.iter().zip(w) {
                sum = sum + *x * *f;
            }
            *o = sum;
        }
    }
}

/// What turns accumulators into outputs.
enum Epilogue {
    /// Integer model: operands are offset by the zero points, accumulators requantized.
    Quantized {
        input_offset: i64,
        filter: Vec<i64>,
        bias: Vec<i64>,
        requant: Requantize,
        out: DType,
    },
    /// Float model.
    Float {
        filter: Vec<f32>,
        bias: Vec<f32>,
        min: f32,
        max: f32,
    },
}

impl Epilogue {
    fn new(
        g: &Graph,
        node: &Node,
        channels: usize,
        activation: Activation,
    ) -> Result<Self, String> {
        let ty = |i: usize| {
            node.inputs
                .get(i)
                .copied()
                .flatten()
                .map(|t| &g.tensor(t).ty)
        };
        let constant = |i: usize, what: &str| -> Result<Buffer, String> {
            let t = g.tensor(node.inputs[i].ok_or(format!("the {what} is missing"))?);
            let data = t
                .data
                .as_ref()
                .ok_or(format!("the {what} must be a constant"))?;
            Ok(Buffer::from_le_bytes(t.ty.dtype, data))
        };
        let (input, filter_ty) = (ty(0).expect("verified"), ty(1).expect("verified"));
        let output = &g.tensor(node.outputs[0]).ty;
        let filter = constant(1, "filter")?;
        let bias = match node.inputs.get(2).copied().flatten() {
            Some(_) => Some(constant(2, "bias")?),
            None => None,
        };
        if input.dtype == DType::F32 {
            let filter = filter
                .as_f32()
                .ok_or("a float model needs float weights")?
                .to_vec();
            let bias = match bias {
                Some(b) => b
                    .as_f32()
                    .ok_or("a float model needs a float bias")?
                    .to_vec(),
                None => vec![0.0; channels],
            };
            let (min, max) = qparams::activation_range_f32(activation);
            return Ok(Epilogue::Float {
                filter,
                bias,
                min,
                max,
            });
        }
        check_integer_types(input, filter_ty, output)?;
        let requant = if matches!(node.op, Op::FullyConnected { .. }) {
            qparams::fully_connected_requantize(input, filter_ty, output, channels, activation)?
        } else {
            qparams::conv_requantize(input, filter_ty, output, channels, activation)?
        };
        let (_, input_zp) = qparams::per_tensor(input, "input")?;
        // Weights are symmetric in TFLite's integer kernels; FC still honours a zero point.
        let filter_zp = filter_ty.quant.as_ref().map_or(0, |q| q.zero_point(0)) as i64;
        let filter_offset = if matches!(node.op, Op::FullyConnected { .. }) {
            -filter_zp
        } else {
            0
        };
        let filter = filter
            .to_i64()
            .ok_or("integer models need integer weights")?
            .iter()
            .map(|w| w + filter_offset)
            .collect();
        let bias = match bias {
            Some(b) => b.to_i64().ok_or("integer models need an integer bias")?,
            None => vec![0; channels],
        };
        Ok(Epilogue::Quantized {
            input_offset: -(input_zp as i64),
            filter,
            bias,
            requant,
            out: output.dtype,
        })
    }

    /// Runs the loop nest of `shape` in the epilogue's number type and writes the outputs.
    fn run(&self, shape: &MacShape, input: &Buffer, output: &mut Buffer, channels: usize) {
        match self {
            Epilogue::Quantized {
                input_offset,
                filter,
                bias,
                requant,
                out,
            } => {
                let x: Vec<i64> = input
                    .to_i64()
                    .expect("verified integer input")
                    .iter()
                    .map(|v| v + input_offset)
                    .collect();
                let mut acc = vec![0i64; output.len()];
                shape.accumulate(channels, &x, filter, &mut acc);
                let values = acc.iter().enumerate().map(|(i, a)| {
                    let c = i % channels;
                    requant.apply(a + bias[c], c) as i64
                });
                *output = Buffer::from_i64(*out, values);
            }
            Epilogue::Float {
                filter,
                bias,
                min,
                max,
            } => {
                let x = input.as_f32().expect("verified float input");
                let mut acc = vec![0f32; output.len()];
                shape.accumulate(channels, x, filter, &mut acc);
                let values = acc
                    .iter()
                    .enumerate()
                    .map(|(i, a)| (a + bias[i % channels]).clamp(*min, *max))
                    .collect();
                *output = Buffer::F32(values);
            }
        }
    }
}

fn check_integer_types(
    input: &TensorType,
    filter: &TensorType,
    output: &TensorType,
) -> Result<(), String> {
    match (input.dtype, filter.dtype, output.dtype) {
        (DType::I8, DType::I8, DType::I8) | (DType::I16, DType::I8, DType::I16) => Ok(()),
        (i, f, o) => Err(format!(
            "{i} input with {f} weights and {o} output is not supported (int8 or 16x8 only)"
        )),
    }
}

/// CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED.
pub(super) struct MacKernel {
    shape: MacShape,
    channels: usize,
    epilogue: Epilogue,
}

enum MacShape {
    Conv(ConvGeometry),
    Depthwise(ConvGeometry, usize),
    FullyConnected { depth: usize },
}

/// Prepares a convolution-like kernel for `node`.
pub(super) fn prepare(g: &Graph, node: &Node) -> Result<Box<dyn Kernel>, String> {
    let shape_of = |i: usize| g.tensor(node.inputs[i].expect("verified")).ty.shape.clone();
    let out = g.tensor(node.outputs[0]).ty.shape.clone();
    let (input, filter) = (shape_of(0), shape_of(1));
    let (shape, channels, activation) = match &node.op {
        Op::Conv2d {
            window, activation, ..
        } => {
            let geom = ConvGeometry::new(&input, (filter[1], filter[2]), filter[3], &out, *window)?;
            (MacShape::Conv(geom), filter[0], *activation)
        }
        Op::DepthwiseConv2d {
            window,
            depth_multiplier,
            activation,
            ..
        } => {
            let geom = ConvGeometry::new(&input, (filter[1], filter[2]), 1, &out, *window)?;
            (
                MacShape::Depthwise(geom, *depth_multiplier),
                filter[3],
                *activation,
            )
        }
        Op::FullyConnected { activation, .. } => (
            MacShape::FullyConnected { depth: filter[1] },
            filter[0],
            *activation,
        ),
        other => unreachable!("conv::prepare called for {}", other.name()),
    };
    let epilogue = Epilogue::new(g, node, channels, activation)?;
    Ok(Box::new(MacKernel {
        shape,
        channels,
        epilogue,
    }))
}

impl MacShape {
    /// Raw accumulators of this loop nest.
    fn accumulate<T: Mac>(&self, units: usize, input: &[T], filter: &[T], acc: &mut [T]) {
        match self {
            MacShape::Conv(geom) => conv_accumulate(geom, input, filter, acc),
            MacShape::Depthwise(geom, m) => depthwise_accumulate(geom, *m, input, filter, acc),
            MacShape::FullyConnected { depth } => fc_accumulate(*depth, units, input, filter, acc),
        }
    }
}

impl Kernel for MacKernel {
    fn run(&self, inputs: &[Option<&Buffer>], output: &mut Buffer, _state: Option<&mut Buffer>) {
        self.epilogue.run(
            &self.shape,
            inputs[0].expect("verified"),
            output,
            self.channels,
        );
    }
}
