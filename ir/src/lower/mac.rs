//! CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED: a multiply-accumulate loop nest per output
//! element, then requantization (TFLite's integer kernels; 16x8 models accumulate in `i64`).

use super::{clamp_to, Kernel};
use crate::geometry::ConvGeometry;
use crate::loops::{BufId, Expr, FuncBuilder, Intrinsic, ScalarType};
use crate::op::{Activation, Op, Window};
use crate::qparams::{self, Requantize};
use crate::types::{DType, TensorType};

/// A per-channel `i32` parameter: one value for all channels, or a table.
#[derive(Clone, Copy)]
pub(super) enum PerChannel {
    Same(i32),
    Table(BufId),
}

impl PerChannel {
    pub(super) fn new(k: &mut Kernel, name: &str, values: &[i32]) -> PerChannel {
        if values.windows(2).all(|w| w[0] == w[1]) {
            PerChannel::Same(values.first().copied().unwrap_or(0))
        } else {
            PerChannel::Table(k.constant_i32(name, values))
        }
    }

    pub(super) fn at(self, channel: Expr) -> Expr {
        match self {
            PerChannel::Same(v) => Expr::i32(v),
            PerChannel::Table(t) => Expr::load(t, channel),
        }
    }
}

/// Everything the loop nests need besides the geometry.
#[derive(Clone, Copy)]
struct Operands {
    input: BufId,
    filter: BufId,
    bias: Option<BufId>,
    output: BufId,
    input_offset: i32,
    filter_offset: i32,
    acc: ScalarType,
    epilogue: Epilogue,
}

/// What turns an accumulator into an output value.
#[derive(Clone, Copy)]
enum Epilogue {
    /// Integer kernels: the bias is the accumulator's start, then requantization.
    Quantized(Requantization),
    /// Float kernels: the sum starts at zero, then `+ bias` and the activation's clamp, in the
    /// reference kernels' order.
    Float { min: f32, max: f32 },
}

/// Requantization of one accumulator.
#[derive(Clone, Copy)]
struct Requantization {
    multiplier: PerChannel,
    shift: PerChannel,
    output_offset: i32,
    range: (i64, i64),
    elem: ScalarType,
    wide: bool,
}

impl Requantization {
    fn new(k: &mut Kernel, r: &Requantize, elem: ScalarType) -> Requantization {
        Requantization {
            multiplier: PerChannel::new(k, "multiplier", &r.multipliers),
            shift: PerChannel::new(k, "shift", &r.shifts),
            output_offset: r.output_offset,
            range: (r.act_min as i64, r.act_max as i64),
            elem,
            wide: r.wide,
        }
    }

    /// The output value of accumulator `acc` (bias included) for `channel`.
    fn apply(self, acc: Expr, channel: Expr) -> Expr {
        let intrinsic = if self.wide {
            Intrinsic::MultiplyByQuantizedMultiplierWide
        } else {
            Intrinsic::MultiplyByQuantizedMultiplier
        };
        let scaled = Expr::call(
            intrinsic,
            vec![
                acc,
                self.multiplier.at(channel.clone()),
                self.shift.at(channel),
            ],
        );
        clamp_to(
            scaled + Expr::i32(self.output_offset),
            self.range.0,
            self.range.1,
            self.elem,
        )
    }
}

impl Operands {
    /// Declares the accumulator of output channel `channel`, initialised with its bias
    /// (integer kernels) or zero (float kernels).
    fn start(&self, f: &mut FuncBuilder, channel: &Expr) -> BufId {
        let acc = f.local("acc", self.acc, 1);
        let init = match (self.epilogue, self.bias) {
            (Epilogue::Float { .. }, _) => Expr::f32(0.0),
            (_, Some(b)) => Expr::load(b, channel.clone()).cast(self.acc),
            (_, None) => Expr::Int {
                value: 0,
                ty: self.acc,
            },
        };
        f.store(acc, Expr::i32(0), init);
        acc
    }

    /// `acc += (input[x] + input_offset) * (filter[w] + filter_offset)`.
    fn mac(&self, f: &mut FuncBuilder, acc: BufId, x: Expr, w: Expr) {
        if let Epilogue::Float { .. } = self.epilogue {
            let product = Expr::load(self.input, x) * Expr::load(self.filter, w);
            f.store(acc, Expr::i32(0), Expr::load(acc, Expr::i32(0)) + product);
            return;
        }
        let offset = |v: Expr, o: i32| {
            let v = v.cast(ScalarType::I32);
            if o == 0 {
                v
            } else {
                v + Expr::i32(o)
            }
        };
        let product = offset(Expr::load(self.input, x), self.input_offset)
            * offset(Expr::load(self.filter, w), self.filter_offset);
        let sum = Expr::load(acc, Expr::i32(0)) + product.cast(self.acc);
        f.store(acc, Expr::i32(0), sum);
    }

    /// Turns the accumulator into `output[index]`.
    fn finish(&self, f: &mut FuncBuilder, acc: BufId, channel: Expr, index: Expr) {
        let acc = Expr::load(acc, Expr::i32(0));
        let value = match self.epilogue {
            Epilogue::Quantized(r) => r.apply(acc, channel),
            Epilogue::Float { min, max } => {
                let biased = match self.bias {
                    Some(b) => acc + Expr::load(b, channel),
                    None => acc,
                };
                biased.clamp(Expr::f32(min), Expr::f32(max))
            }
        };
        f.store(self.output, index, value);
    }
}

/// Sets the integer kernel's offsets, accumulator and requantizing epilogue.
fn quantized(
    k: &mut Kernel,
    ops: &mut Operands,
    [input, filter, output]: [&TensorType; 3],
    channels: usize,
    activation: Activation,
) -> Result<(), String> {
    let is_fc = matches!(k.node.op, Op::FullyConnected { .. });
    let requant = if is_fc {
        qparams::fully_connected_requantize(input, filter, output, channels, activation)?
    } else {
        qparams::conv_requantize(input, filter, output, channels, activation)?
    };
    let (_, input_zp) = qparams::per_tensor(input, "input")?;
    let filter_zp = filter.quant.as_ref().map_or(0, |q| q.zero_point(0));
    ops.input_offset = -input_zp;
    ops.filter_offset = if is_fc { -filter_zp } else { 0 };
    ops.acc = if requant.wide {
        ScalarType::I64
    } else {
        ScalarType::I32
    };
    ops.epilogue = Epilogue::Quantized(Requantization::new(
        k,
        &requant,
        ScalarType::of(output.dtype),
    ));
    Ok(())
}

/// Lowers a multiply-accumulate op.
pub(super) fn lower(k: &mut Kernel) -> Result<(), String> {
    let (input, filter, output) = (
        k.operand(0).clone(),
        k.operand(1).clone(),
        k.output_type().clone(),
    );
    let (channels, activation) = match &k.node.op {
        Op::Conv2d { activation, .. } => (filter.shape[0], *activation),
        Op::DepthwiseConv2d { activation, .. } => (filter.shape[3], *activation),
        Op::FullyConnected { activation, .. } => (filter.shape[0], *activation),
        other => unreachable!("mac::lower called for {}", other.name()),
    };
    let bufs = (
        k.input("input", 0),
        k.input("filter", 1),
        k.has_operand(2).then(|| k.input("bias", 2)),
        k.output("output"),
    );
    let mut ops = Operands {
        input: bufs.0,
        filter: bufs.1,
        bias: bufs.2,
        output: bufs.3,
        input_offset: 0,
        filter_offset: 0,
        acc: ScalarType::F32,
        epilogue: {
            let (min, max) = qparams::activation_range_f32(activation);
            Epilogue::Float { min, max }
        },
    };
    if input.dtype != DType::F32 {
        quantized(
            k,
            &mut ops,
            [&input, &filter, &output],
            channels,
            activation,
        )?;
    }
    match k.node.op.clone() {
        Op::Conv2d { window, .. } => {
            let g = geometry(
                &input.shape,
                &filter.shape,
                filter.shape[3],
                &output.shape,
                window,
            )?;
            conv(&mut k.f, &g, &ops);
        }
        Op::DepthwiseConv2d {
            window,
            depth_multiplier,
            ..
        } => {
            let g = geometry(&input.shape, &filter.shape, 1, &output.shape, window)?;
            depthwise(&mut k.f, &g, depth_multiplier, &ops);
        }
        _ => {
            let depth = filter.shape[1];
            fully_connected(
                &mut k.f,
                input.elements() / depth.max(1),
                depth,
                channels,
                &ops,
            );
        }
    }
    Ok(())
}

/// Loops over batch, output row and output column; `body` gets the batch, the flat output
/// position and the input row and column of the window's top-left tap.
fn for_each_position(
    g: &ConvGeometry,
    f: &mut FuncBuilder,
    body: &mut dyn FnMut(&mut FuncBuilder, Expr, Expr, Expr, Expr),
) {
    let (oh, ow) = (g.out_h, g.out_w);
    let (sh, sw, ph, pw) = (g.window.stride_h, g.window.stride_w, g.pad_h, g.pad_w);
    f.for_loop("b", g.batches, |f, b| {
        f.for_loop("oy", oh, |f, oy| {
            let y0 = f.let_(
                "y0",
                ScalarType::I32,
                oy.clone() * Expr::idx(sh) - Expr::idx(ph),
            );
            f.for_loop("ox", ow, |f, ox| {
                let x0 = f.let_(
                    "x0",
                    ScalarType::I32,
                    ox.clone() * Expr::idx(sw) - Expr::idx(pw),
                );
                let pos = f.let_(
                    "pos",
                    ScalarType::I32,
                    (b.clone() * Expr::idx(oh) + oy.clone()) * Expr::idx(ow) + ox,
                );
                body(f, b.clone(), pos, y0.clone(), x0);
            });
        });
    });
}

/// Loops over the filter taps that fall inside the image; `body` gets the tap's flat
/// filter position (`ky * k_w + kx`) and the flat input pixel.
fn for_each_tap(
    g: &ConvGeometry,
    f: &mut FuncBuilder,
    b: &Expr,
    y0: &Expr,
    x0: &Expr,
    body: &mut dyn FnMut(&mut FuncBuilder, Expr, Expr),
) {
    let (dh, dw, kw, ih, iw) = (
        g.window.dilation_h,
        g.window.dilation_w,
        g.k_w,
        g.in_h,
        g.in_w,
    );
    f.for_loop("ky", g.k_h, |f, ky| {
        let iy = f.let_(
            "iy",
            ScalarType::I32,
            y0.clone() + ky.clone() * Expr::idx(dh),
        );
        f.if_then(inside(&iy, ih), |f| {
            f.for_loop("kx", kw, |f, kx| {
                let ix = f.let_(
                    "ix",
                    ScalarType::I32,
                    x0.clone() + kx.clone() * Expr::idx(dw),
                );
                f.if_then(inside(&ix, iw), |f| {
                    let tap = ky.clone() * Expr::idx(kw) + kx;
                    let pixel = (b.clone() * Expr::idx(ih) + iy.clone()) * Expr::idx(iw) + ix;
                    body(f, tap, pixel);
                });
            });
        });
    });
}

/// `0 <= v < extent`.
fn inside(v: &Expr, extent: usize) -> Expr {
    Expr::i32(0)
        .le(v.clone())
        .and(v.clone().lt(Expr::idx(extent)))
}

fn geometry(
    input: &[usize],
    filter: &[usize],
    k_c: usize,
    output: &[usize],
    window: Window,
) -> Result<ConvGeometry, String> {
    ConvGeometry::new(input, (filter[1], filter[2]), k_c, output, window)
}

/// A (grouped) convolution; filter layout OHWI.
fn conv(f: &mut FuncBuilder, g: &ConvGeometry, ops: &Operands) {
    let k_c = g.k_c;
    let filters_per_group = g.out_c / (g.in_c / k_c.max(1)).max(1);
    let (in_c, out_c, taps) = (g.in_c, g.out_c, g.k_h * g.k_w);
    for_each_position(g, f, &mut |f, b, pos, y0, x0| {
        f.for_loop("oc", out_c, |f, oc| {
            let acc = ops.start(f, &oc);
            let group_base = if k_c == in_c {
                Expr::i32(0)
            } else {
                oc.clone() / Expr::idx(filters_per_group) * Expr::idx(k_c)
            };
            for_each_tap(g, f, &b, &y0, &x0, &mut |f, tap, pixel| {
                let x_base = f.let_(
                    "x_base",
                    ScalarType::I32,
                    pixel * Expr::idx(in_c) + group_base.clone(),
                );
                let w_base = f.let_(
                    "w_base",
                    ScalarType::I32,
                    (oc.clone() * Expr::idx(taps) + tap) * Expr::idx(k_c),
                );
                f.for_loop("ic", k_c, |f, ic| {
                    ops.mac(f, acc, x_base.clone() + ic.clone(), w_base.clone() + ic);
                });
            });
            ops.finish(f, acc, oc.clone(), pos.clone() * Expr::idx(out_c) + oc);
        });
    });
}

/// A depthwise convolution; filter layout 1HW(C*M).
fn depthwise(f: &mut FuncBuilder, g: &ConvGeometry, multiplier: usize, ops: &Operands) {
    let (in_c, out_c) = (g.in_c, g.out_c);
    for_each_position(g, f, &mut |f, b, pos, y0, x0| {
        f.for_loop("ic", in_c, |f, ic| {
            f.for_loop("m", multiplier, |f, m| {
                let oc = f.let_(
                    "oc",
                    ScalarType::I32,
                    ic.clone() * Expr::idx(multiplier) + m,
                );
                let acc = ops.start(f, &oc);
                for_each_tap(g, f, &b, &y0, &x0, &mut |f, tap, pixel| {
                    let x = pixel * Expr::idx(in_c) + ic.clone();
                    ops.mac(f, acc, x, tap * Expr::idx(out_c) + oc.clone());
                });
                ops.finish(f, acc, oc.clone(), pos.clone() * Expr::idx(out_c) + oc);
            });
        });
    });
}

/// A fully connected layer: `rows x depth` inputs by `units x depth` weights.
fn fully_connected(f: &mut FuncBuilder, rows: usize, depth: usize, units: usize, ops: &Operands) {
    f.for_loop("row", rows, |f, row| {
        f.for_loop("u", units, |f, u| {
            let acc = ops.start(f, &u);
            f.for_loop("d", depth, |f, d| {
                let x = row.clone() * Expr::idx(depth) + d.clone();
                ops.mac(f, acc, x, u.clone() * Expr::idx(depth) + d);
            });
            ops.finish(f, acc, u.clone(), row.clone() * Expr::idx(units) + u);
        });
    });
}
