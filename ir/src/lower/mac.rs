//! CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED as [`Reduction`]s: the axes, the affine
//! operand and output indices, the padding guards and the epilogue (TFLite's requantization for
//! integer kernels, 16x8 models accumulating in `i64`; bias and clamp for float kernels). The
//! default loop nest gives the reference kernels' loops; schedules reorder it later.

use super::Kernel;
use crate::fixedpoint;
use crate::geometry::{ConvGeometry, SvdfGeometry};
use crate::interp::Buffer;
use crate::loops::reduction::{Affine, Axis, Epilogue, Guard, Operand, PerChannel};
use crate::loops::reduction::{Reduction, Residual};
use crate::loops::{BufId, Intrinsic, ScalarType};
use crate::op::{Activation, Op, WeightLayout};
use crate::qparams;
use crate::types::{DType, TensorType};

/// What every multiply-accumulate op shares: buffers, offsets, accumulator and epilogue.
struct Parts {
    input: BufId,
    filter: BufId,
    bias: Option<BufId>,
    output: BufId,
    input_elem: ScalarType,
    filter_elem: ScalarType,
    input_offset: i32,
    filter_offset: i32,
    acc: ScalarType,
    epilogue: Epilogue,
}

/// Lowers a multiply-accumulate op, or one with a fused residual ADD.
pub(super) fn lower(k: &mut Kernel) -> Result<(), String> {
    // A fused ADD's first addend is the op's own output, of type `mac_output`.
    let (op, output) = match &k.node.op {
        Op::ResidualAdd {
            mac, mac_output, ..
        } => ((**mac).clone(), mac_output.clone()),
        op => (op.clone(), k.output_type().clone()),
    };
    let (input, filter) = (k.operand(0).clone(), k.operand(1).clone());
    let (channels, activation) = match &op {
        Op::Conv2d { activation, .. } => (filter.shape[0], *activation),
        Op::DepthwiseConv2d { activation, .. } => (filter.shape[3], *activation),
        Op::FullyConnected { activation, .. } => (filter.shape[0], *activation),
        other => unreachable!("mac::lower called for {}", other.name()),
    };
    let (x, w) = (k.input("input", 0), k.input("filter", 1));
    let output_param = k.args.len();
    let out = k.output("output");
    let mut parts = Parts {
        input: x,
        filter: w,
        // Bound once the reduction is known: the input offset may fold into it.
        bias: None,
        output: out,
        input_elem: ScalarType::of(input.dtype),
        filter_elem: ScalarType::of(filter.dtype),
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
            &mut parts,
            [&input, &filter, &output],
            (&op, channels, activation),
        )?;
    }
    let residual = residual(k, output_param, &output)?;
    let mut reduction = match op {
        Op::Conv2d { window, .. } => {
            let g = ConvGeometry::new(
                &input.shape,
                (filter.shape[1], filter.shape[2]),
                filter.shape[3],
                &output.shape,
                window,
            )?;
            conv(&g, parts)
        }
        Op::DepthwiseConv2d {
            window,
            depth_multiplier,
            ..
        } => {
            let taps = (filter.shape[1], filter.shape[2]);
            let g = ConvGeometry::new(&input.shape, taps, 1, &output.shape, window)?;
            depthwise(&g, depth_multiplier, parts)
        }
        _ => {
            let depth = filter.shape[1];
            fully_connected(input.elements() / depth.max(1), depth, channels, parts)
        }
    };
    reduction.residual = residual;
    reduction.weight_layout = op.weight_layout();
    bind_bias(k, &mut reduction, Some(2));
    reduction.build(&reduction.default_nest(), &mut k.f)?;
    k.set_reduction(reduction);
    Ok(())
}

/// Binds the bias: the op's own, or, where the input offset can fold into it, a new one.
///
/// With no padding every tap of a window is summed, so `Σ (x + offset) * w` is
/// `Σ x * w + offset * Σ w`: the second term joins the bias at compile time and the inner loop
/// drops an addition per product (on DSP cores, the offset register of the unpacking). In
/// `i32` arithmetic that wraps, as the kernels' sums do, the two are equal bit for bit. With
/// padding the folded bias serves only the interior, where no tap is skipped
/// ([`Reduction::interior_bias`]).
///
/// The weights are operand 1; the bias, if the op has one, operand `bias`.
fn bind_bias(k: &mut Kernel, r: &mut Reduction, bias: Option<usize>) {
    let tensor = |i: usize| k.cx.graph.tensor(k.node.inputs[i].expect("present"));
    let sums = tensor(1).data.as_deref().and_then(|w| offset_sums(r, w));
    let present = bias.filter(|i| k.has_operand(*i));
    // The bias's values, as the interpreter decodes them: an i32 constant, or zeros.
    let bias = match present {
        None => sums.as_ref().map(|s| vec![0; s.len()]),
        Some(i) if tensor(i).ty.dtype == DType::I32 => tensor(i)
            .data
            .as_deref()
            .and_then(|d| Buffer::from_le_bytes(DType::I32, d).to_i64()),
        Some(_) => None,
    };
    let mut own = || present.map(|i| k.input("bias", i));
    let folded = match (sums, bias) {
        (Some(sums), Some(bias)) if bias.len() == sums.len() => {
            let offset = r.input.offset;
            let values: Vec<i32> = bias
                .iter()
                .zip(&sums)
                .map(|(b, s)| (*b as i32).wrapping_add(offset.wrapping_mul(*s)))
                .collect();
            Some(values)
        }
        _ => None,
    };
    match folded {
        // Padded: the guards skip taps, so the fold holds only where none is skipped.
        Some(values) if !r.guards.is_empty() => {
            r.bias = own();
            r.interior_bias = Some(k.constant_i32("bias_interior", &values));
        }
        Some(values) => {
            r.input.offset = 0;
            r.bias = Some(k.constant_i32("bias_folded", &values));
        }
        None => r.bias = own(),
    }
}

/// Per output channel, `Σ (w + weight offset)` over every tap of an integer reduction with an
/// input offset; `None` where the offset cannot fold (a wide or float sum, a weight layout
/// the channel does not determine).
fn offset_sums(r: &Reduction, weights: &[u8]) -> Option<Vec<i32>> {
    let foldable =
        r.acc == ScalarType::I32 && r.input.offset != 0 && r.weight.elem == ScalarType::I8;
    if !foldable {
        return None;
    }
    // The axes that pick the channel, and the reduce axes: every other axis is fixed at 0.
    let spatial = |a: usize| !r.axes[a].reduce;
    let by_channel = |a: usize| r.channel.coefficient(a) != 0;
    if (0..r.axes.len()).any(|a| spatial(a) && !by_channel(a) && r.weight.index.coefficient(a) != 0)
    {
        return None;
    }
    let walked: Vec<usize> = (0..r.axes.len())
        .filter(|a| !spatial(*a) || by_channel(*a))
        .collect();
    let total: usize = walked.iter().map(|a| r.axes[*a].extent).product();
    let channels: usize = walked
        .iter()
        .filter(|a| spatial(**a))
        .map(|a| r.axes[*a].extent)
        .product();
    if total > 1 << 24 {
        return None;
    }
    let mut sums = vec![0i32; channels];
    let mut values = vec![0i64; r.axes.len()];
    for n in 0..total {
        let mut rest = n;
        for a in walked.iter().rev() {
            values[*a] = (rest % r.axes[*a].extent) as i64;
            rest /= r.axes[*a].extent;
        }
        let channel = usize::try_from(r.channel.value(&values)).ok()?;
        let w = *weights.get(usize::try_from(r.weight.index.value(&values)).ok()?)? as i8;
        let sum = sums.get_mut(channel)?;
        *sum = sum.wrapping_add(w as i32 + r.weight.offset);
    }
    Some(sums)
}

/// The fused ADD of an [`Op::ResidualAdd`]: binds the addend, which may share the output's
/// memory (each output element is written right after its addend element is read).
fn residual(
    k: &mut Kernel,
    output_param: usize,
    mac_output: &TensorType,
) -> Result<Option<Residual>, String> {
    let Op::ResidualAdd { activation, .. } = k.node.op else {
        return Ok(None);
    };
    if mac_output.dtype == DType::F32 {
        return Err("a fused residual ADD needs an integer multiply-accumulate op".into());
    }
    let (addend_type, sum_type) = (k.operand(3).clone(), k.output_type().clone());
    let params = qparams::add_params(mac_output, &addend_type, &sum_type, activation)?;
    let addend_param = k.args.len();
    let addend = k.input("addend", 3);
    k.allow_in_place(addend_param, output_param);
    let dtypes = [mac_output.dtype, addend_type.dtype];
    let tables = crate::lower::add_tables(k, &params, dtypes, sum_type.elements());
    Ok(Some(Residual {
        addend,
        params,
        tables,
        high_mul_output: None,
    }))
}

/// Sets the integer kernel's offsets, accumulator and requantizing epilogue.
fn quantized(
    k: &mut Kernel,
    parts: &mut Parts,
    [input, filter, output]: [&TensorType; 3],
    (op, channels, activation): (&Op, usize, Activation),
) -> Result<(), String> {
    let is_fc = matches!(op, Op::FullyConnected { .. });
    let requant = if is_fc {
        qparams::fully_connected_requantize(input, filter, output, channels, activation)?
    } else {
        qparams::conv_requantize(input, filter, output, channels, activation)?
    };
    let (_, input_zp) = qparams::per_tensor(input, "input")?;
    let filter_zp = filter.quant.as_ref().map_or(0, |q| q.zero_point(0));
    parts.input_offset = -input_zp;
    parts.filter_offset = if is_fc { -filter_zp } else { 0 };
    parts.acc = if requant.wide {
        ScalarType::I64
    } else {
        ScalarType::I32
    };
    parts.epilogue = requantizing(k, &requant, parts.acc, ScalarType::of(output.dtype));
    Ok(())
}

/// The epilogue that requantizes accumulators of type `acc` by `requant` into `elem`, in the
/// cheapest exact form the scales allow ([`scaling`]); per-channel values become constants.
fn requantizing(
    k: &mut Kernel,
    requant: &qparams::Requantize,
    acc: ScalarType,
    elem: ScalarType,
) -> Epilogue {
    let mut per_channel = |name: &str, values: &[i32]| {
        if values.windows(2).all(|w| w[0] == w[1]) {
            PerChannel::Same(values.first().copied().unwrap_or(0))
        } else {
            PerChannel::Table(k.constant_i32(name, values))
        }
    };
    let (scale, shifts) = scaling(requant, acc);
    let roundings = (scale == Intrinsic::MultiplyByQuantizedMultiplierHighShift)
        .then(|| {
            let offset = requant.output_offset;
            let each = shifts
                .iter()
                .map(|s| fixedpoint::high_shift_rounding(*s, offset));
            each.collect::<Option<Vec<i32>>>()
        })
        .flatten();
    let scale = match roundings {
        Some(_) => Intrinsic::MultiplyByQuantizedMultiplierHighShiftOffset,
        None => scale,
    };
    Epilogue::Quantized {
        scale,
        multiplier: per_channel("multiplier", &requant.multipliers),
        shift: per_channel("shift", &shifts),
        rounding: roundings.map(|r| per_channel("rounding", &r)),
        output_offset: requant.output_offset,
        range: (requant.act_min as i64, requant.act_max as i64),
        elem,
    }
}

/// An integer SVDF's feature projection as a fully connected reduction that the schedules
/// vectorize: `batches x input` int8 inputs (operand 0) by the `filters x input` int8 feature
/// weights (operand 1), each sum requantized by `scale` (the state's zero point is 0) into
/// the int16 range and stored in the newest memory slot of its filter in the state (operand
/// 4, `[batches, filters, memory]`).
pub(super) fn svdf_projection(
    k: &mut Kernel,
    d: &SvdfGeometry,
    input_zp: i32,
    (multiplier, shift): (i32, i32),
) -> Result<(), String> {
    let state = k.operand(4).clone();
    let (lo, hi) = state.dtype.int_range().ok_or("integer state expected")?;
    let x = k.input("input", 0);
    let w = k.input("feature", 1);
    let out = k.state("state", 4);
    let parts = Parts {
        input: x,
        filter: w,
        bias: None,
        output: out,
        input_elem: ScalarType::I8,
        filter_elem: ScalarType::I8,
        input_offset: -input_zp,
        filter_offset: 0,
        acc: ScalarType::I32,
        epilogue: Epilogue::Float { min: 0.0, max: 0.0 },
    };
    let requant = qparams::Requantize {
        multipliers: vec![multiplier],
        shifts: vec![shift],
        output_offset: 0,
        act_min: lo as i32,
        act_max: hi as i32,
        wide: false,
    };
    let mut r = fully_connected(d.batches, d.input, d.filters, parts);
    let memory = d.memory as i64;
    r.output_index = Affine::of(&[(0, d.filters as i64 * memory), (1, memory)]).plus(memory - 1);
    r.epilogue = requantizing(k, &requant, ScalarType::I32, ScalarType::of(state.dtype));
    bind_bias(k, &mut r, None);
    r.build(&r.default_nest(), &mut k.f)?;
    k.set_reduction(r);
    Ok(())
}

/// The intrinsic that scales the accumulators, and the shifts in the form it takes: the
/// one-multiply form where every channel's scale allows it (a non-negative multiplier and a
/// right shift of at least 2), TFLite's general `MultiplyByQuantizedMultiplier` elsewhere.
fn scaling(requant: &qparams::Requantize, acc: ScalarType) -> (Intrinsic, Vec<i32>) {
    if acc == ScalarType::I64 {
        return (
            Intrinsic::MultiplyByQuantizedMultiplierWide,
            requant.shifts.clone(),
        );
    }
    let high: Option<Vec<i32>> = requant
        .multipliers
        .iter()
        .zip(&requant.shifts)
        .map(|(m, s)| fixedpoint::high_shift_of(*m, *s))
        .collect();
    match high {
        Some(shifts) => (Intrinsic::MultiplyByQuantizedMultiplierHighShift, shifts),
        None => (
            Intrinsic::MultiplyByQuantizedMultiplier,
            requant.shifts.clone(),
        ),
    }
}

/// The reduction from its axes and the affine maps of its operands.
fn reduction(
    parts: Parts,
    axes: Vec<Axis>,
    [input, weight, channel, output]: [Affine; 4],
    guards: Vec<Guard>,
) -> Reduction {
    Reduction {
        axes,
        input: Operand {
            buf: parts.input,
            elem: parts.input_elem,
            index: input,
            offset: parts.input_offset,
            packed: None,
        },
        weight: Operand {
            buf: parts.filter,
            elem: parts.filter_elem,
            index: weight,
            offset: parts.filter_offset,
            packed: None,
        },
        guards,
        acc: parts.acc,
        bias: parts.bias,
        interior_bias: None,
        channel,
        output: parts.output,
        output_index: output,
        epilogue: parts.epilogue,
        residual: None,
        weight_layout: WeightLayout::Bytes,
        input_lift: 0,
    }
}

fn axis(name: &str, extent: usize, reduce: bool) -> Axis {
    Axis {
        name: name.into(),
        extent,
        reduce,
    }
}

/// Axis numbers shared by the convolutions: batch, output row and column, then the
/// op's own axes, then the two tap axes.
const B: usize = 0;
const OY: usize = 1;
const OX: usize = 2;

/// The input pixel coordinates of a window tap, `oy * stride + ky * dilation - pad`, with the
/// guards that keep them inside the image, and the flat pixel index (without channels).
fn window_taps(g: &ConvGeometry, ky: usize, kx: usize) -> (Affine, Vec<Guard>) {
    let w = g.window;
    let iy =
        Affine::of(&[(OY, w.stride_h as i64), (ky, w.dilation_h as i64)]).plus(-(g.pad_h as i64));
    let ix =
        Affine::of(&[(OX, w.stride_w as i64), (kx, w.dilation_w as i64)]).plus(-(g.pad_w as i64));
    let (h, wd) = (g.in_h as i64, g.in_w as i64);
    let pixel = iy.times(wd).add(&ix).add(&Affine::of(&[(B, h * wd)]));
    let mut guards = Vec::new();
    if g.pad_h > 0 || (g.out_h - 1) * w.stride_h + (g.k_h - 1) * w.dilation_h >= g.in_h + g.pad_h {
        guards.push(Guard {
            index: iy,
            extent: g.in_h,
        });
    }
    if g.pad_w > 0 || (g.out_w - 1) * w.stride_w + (g.k_w - 1) * w.dilation_w >= g.in_w + g.pad_w {
        guards.push(Guard {
            index: ix,
            extent: g.in_w,
        });
    }
    (pixel, guards)
}

/// A (grouped) convolution; filter layout OHWI. Axes: b, oy, ox, group, oc in group, ky, kx, ic.
fn conv(g: &ConvGeometry, parts: Parts) -> Reduction {
    let groups = g.in_c / g.k_c.max(1);
    let per_group = g.out_c / groups.max(1);
    const GR: usize = 3;
    const J: usize = 4;
    const KY: usize = 5;
    const KX: usize = 6;
    const IC: usize = 7;
    let axes = vec![
        axis("b", g.batches, false),
        axis("oy", g.out_h, false),
        axis("ox", g.out_w, false),
        axis("group", groups, false),
        axis("oc", per_group, false),
        axis("ky", g.k_h, true),
        axis("kx", g.k_w, true),
        axis("ic", g.k_c, true),
    ];
    let (pixel, guards) = window_taps(g, KY, KX);
    let input = pixel
        .times(g.in_c as i64)
        .add(&Affine::of(&[(GR, g.k_c as i64), (IC, 1)]));
    let channel = Affine::of(&[(GR, per_group as i64), (J, 1)]);
    let tap = Affine::of(&[(KY, g.k_w as i64), (KX, 1)]);
    let taps = (g.k_h * g.k_w) as i64;
    let weight = channel
        .times(taps)
        .add(&tap)
        .times(g.k_c as i64)
        .add(&Affine::of(&[(IC, 1)]));
    let output = position(g).times(g.out_c as i64).add(&channel);
    reduction(parts, axes, [input, weight, channel, output], guards)
}

/// The flat output position `(b * out_h + oy) * out_w + ox`.
fn position(g: &ConvGeometry) -> Affine {
    Affine::of(&[
        (B, (g.out_h * g.out_w) as i64),
        (OY, g.out_w as i64),
        (OX, 1),
    ])
}

/// A depthwise convolution; filter layout 1HW(C*M). Axes: b, oy, ox, ic, m, ky, kx.
fn depthwise(g: &ConvGeometry, multiplier: usize, parts: Parts) -> Reduction {
    const IC: usize = 3;
    const M: usize = 4;
    const KY: usize = 5;
    const KX: usize = 6;
    let axes = vec![
        axis("b", g.batches, false),
        axis("oy", g.out_h, false),
        axis("ox", g.out_w, false),
        axis("ic", g.in_c, false),
        axis("m", multiplier, false),
        axis("ky", g.k_h, true),
        axis("kx", g.k_w, true),
    ];
    let (pixel, guards) = window_taps(g, KY, KX);
    let input = pixel.times(g.in_c as i64).add(&Affine::of(&[(IC, 1)]));
    let channel = Affine::of(&[(IC, multiplier as i64), (M, 1)]);
    let tap = Affine::of(&[(KY, g.k_w as i64), (KX, 1)]);
    let weight = tap.times(g.out_c as i64).add(&channel);
    let output = position(g).times(g.out_c as i64).add(&channel);
    reduction(parts, axes, [input, weight, channel, output], guards)
}

/// A fully connected layer: `rows x depth` inputs by `units x depth` weights. Axes: row, unit,
/// depth.
fn fully_connected(rows: usize, depth: usize, units: usize, parts: Parts) -> Reduction {
    let axes = vec![
        axis("row", rows, false),
        axis("u", units, false),
        axis("d", depth, true),
    ];
    let input = Affine::of(&[(0, depth as i64), (2, 1)]);
    let weight = Affine::of(&[(1, depth as i64), (2, 1)]);
    let channel = Affine::of(&[(1, 1)]);
    let output = Affine::of(&[(0, units as i64), (1, 1)]);
    reduction(parts, axes, [input, weight, channel, output], Vec::new())
}
