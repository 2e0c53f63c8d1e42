//! The row arithmetic of a banded stage and the graph that runs it band by band.
//!
//! A stage is a chain of ops that map rows of an NHWC image to rows (windowed ops, channel
//! padding, element-wise ops). The rows band `b` of the stage's last output needs are traced back
//! through the chain: a windowed op's output rows `[o0, o1)` read input rows from `o0 * s - p` to
//! `(o1 - 1) * s - p + k`, clipped to the image; the clipped part becomes the band op's own
//! padding (the first band keeps the top padding, the last the bottom one), so every band op
//! computes exactly the rows of the whole op it stands for.

use minnow_ir::graph::{Graph, Node, OpId, TensorId, TensorKind};
use minnow_ir::{Op, Padding, Tensor, Window};

/// One op of a band: the rows it reads and the padding above and below them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct BandRows {
    /// First input row read.
    pub first: usize,
    /// Input rows read.
    pub rows: usize,
    /// Rows of padding above them.
    pub top: usize,
    /// Rows of padding below them.
    pub bottom: usize,
}

/// How an op of a stage maps its input rows to its output rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RowMap {
    /// Output row `i` is made from input row `i` alone.
    Same,
    /// A window of `filter` rows (dilated) every `stride` rows, `pad` rows above the image.
    Window {
        filter: usize,
        stride: usize,
        pad: usize,
    },
}

impl RowMap {
    /// The row map of `op` in `graph`, if the op can run on a band of rows.
    pub fn of(graph: &Graph, op: OpId) -> Option<RowMap> {
        let node = graph.node(op);
        let input = &graph.tensor(node.inputs.first().copied().flatten()?).ty;
        let output = &graph.tensor(node.outputs[0]).ty;
        if input.shape.len() != 4 || input.shape[0] != 1 || output.shape.len() != 4 {
            return None;
        }
        let window = |w: &Window, filter: usize| {
            let g = w.resolve_h(input.shape[1], filter)?;
            (g.out == output.shape[1]).then_some(RowMap::Window {
                filter: (filter - 1) * w.dilation_h + 1,
                stride: w.stride_h,
                pad: g.pad_before,
            })
        };
        let filter_h = || {
            Some(
                graph
                    .tensor(node.inputs.get(1).copied().flatten()?)
                    .ty
                    .shape[1],
            )
        };
        match &node.op {
            Op::Conv2d { window: w, .. } | Op::DepthwiseConv2d { window: w, .. } => {
                window(w, filter_h()?)
            }
            Op::AvgPool2d {
                window: w,
                filter_h,
                ..
            }
            | Op::MaxPool2d {
                window: w,
                filter_h,
                ..
            } => window(w, *filter_h),
            Op::Pad { pads } if pads.len() == 4 && pads[0] == (0, 0) && pads[1] == (0, 0) => {
                Some(RowMap::Same)
            }
            Op::Relu | Op::Relu6 | Op::Clamp { .. } | Op::Logistic | Op::Tanh | Op::Quantize => {
                Some(RowMap::Same)
            }
            _ => None,
        }
    }

    /// The input rows (of `height`) that output rows `[o0, o1)` read, with the padding the band
    /// op needs around them.
    pub fn input_rows(self, o0: usize, o1: usize, height: usize) -> BandRows {
        match self {
            RowMap::Same => BandRows {
                first: o0,
                rows: o1 - o0,
                top: 0,
                bottom: 0,
            },
            RowMap::Window {
                filter,
                stride,
                pad,
            } => {
                let start = (o0 * stride) as isize - pad as isize;
                let end = ((o1 - 1) * stride + filter) as isize - pad as isize;
                let first = start.max(0) as usize;
                let last = (end.min(height as isize) as usize).max(first);
                BandRows {
                    first,
                    rows: last - first,
                    top: (-start).max(0) as usize,
                    bottom: (end - height as isize).max(0) as usize,
                }
            }
        }
    }
}

/// Splits the output rows `0..height` into `bands` bands as equal as they can be.
pub(super) fn band_bounds(height: usize, bands: usize) -> Vec<(usize, usize)> {
    (0..bands)
        .map(|b| (b * height / bands, (b + 1) * height / bands))
        .filter(|(a, b)| a < b)
        .collect()
}

/// `graph` with the chain `stage` (each op reading the one before's output) run as `bands`
/// row bands: each band reads a SLICE of the stage's input, runs its own copy of every op
/// (its weights copied too, so each band's schedule may lay them out as it likes) and the
/// bands' last outputs are joined by a CONCATENATION into the stage's output tensor.
pub(super) fn banded(graph: &Graph, stage: &[OpId], bands: usize) -> Result<Graph, String> {
    let last = *stage.last().ok_or("an empty stage")?;
    let maps: Vec<RowMap> = stage
        .iter()
        .map(|op| RowMap::of(graph, *op).ok_or("an op of the stage cannot run on bands"))
        .collect::<Result<_, _>>()?;
    let stage_out = graph.node(last).outputs[0];
    let height = graph.tensor(stage_out).ty.shape[1];
    let mut out = copy_tensors(graph);
    for op in graph.execution_order() {
        if op == stage[0] {
            let mut parts = Vec::new();
            for (b, (o0, o1)) in band_bounds(height, bands).into_iter().enumerate() {
                parts.push(Some(add_band(graph, &mut out, stage, &maps, b, o0, o1)?));
            }
            let concat = Op::Concat {
                axis: 1,
                activation: minnow_ir::Activation::None,
            };
            out.add_op(concat, parts, vec![stage_out])
                .map_err(|e| e.to_string())?;
        } else if !stage.contains(&op) {
            let node = graph.node(op);
            out.add_op(node.op.clone(), node.inputs.clone(), node.outputs.clone())
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(out)
}

/// A graph with `graph`'s tensors (the same ids), inputs and outputs, and no ops.
fn copy_tensors(graph: &Graph) -> Graph {
    let mut out = Graph::new(graph.name.clone());
    for (_, t) in graph.tensors() {
        out.push_tensor(t.clone());
    }
    out.inputs = graph.inputs.clone();
    out.outputs = graph.outputs.clone();
    out
}

/// Adds band `b` (the stage's output rows `[o0, o1)`) to `out` and returns its last output.
fn add_band(
    graph: &Graph,
    out: &mut Graph,
    stage: &[OpId],
    maps: &[RowMap],
    b: usize,
    o0: usize,
    o1: usize,
) -> Result<TensorId, String> {
    // The rows each op reads, from the last op back to the first.
    let none = BandRows {
        first: 0,
        rows: 0,
        top: 0,
        bottom: 0,
    };
    let mut reads = vec![none; stage.len()];
    let (mut lo, mut hi) = (o0, o1);
    for (k, op) in stage.iter().enumerate().rev() {
        let input = graph.node(*op).inputs[0].ok_or("an op without an input")?;
        reads[k] = maps[k].input_rows(lo, hi, graph.tensor(input).ty.shape[1]);
        (lo, hi) = (reads[k].first, reads[k].first + reads[k].rows);
    }
    let first_input = graph.node(stage[0]).inputs[0].ok_or("an op without an input")?;
    let mut x = slice_rows(graph, out, first_input, reads[0], b)?;
    for (k, op) in stage.iter().enumerate() {
        let node = graph.node(*op);
        let rows = match reads.get(k + 1) {
            Some(next) => next.rows,
            None => o1 - o0,
        };
        let y_whole = graph.tensor(node.outputs[0]);
        let mut ty = y_whole.ty.clone();
        ty.shape[1] = rows;
        let y = out.add_tensor(format!("{}/band{b}", y_whole.name), ty);
        let mut inputs = vec![Some(x)];
        for (i, t) in node.inputs.iter().enumerate().skip(1) {
            inputs.push(t.map(|t| private_constant(graph, out, t, b, i)));
        }
        let op = band_op(graph, node, reads[k])?;
        out.add_op(op, inputs, vec![y]).map_err(|e| e.to_string())?;
        x = y;
    }
    Ok(x)
}

/// Rows `rows` of `t` as a tensor of `out`: `t` itself when they are all of it, else a SLICE.
fn slice_rows(
    graph: &Graph,
    out: &mut Graph,
    t: TensorId,
    rows: BandRows,
    b: usize,
) -> Result<TensorId, String> {
    let whole = graph.tensor(t);
    if rows.first == 0 && rows.rows == whole.ty.shape[1] {
        return Ok(t);
    }
    let mut ty = whole.ty.clone();
    ty.shape[1] = rows.rows;
    let part = out.add_tensor(format!("{}/rows{b}", whole.name), ty);
    let slice = Op::Slice {
        begin: vec![0, rows.first, 0, 0],
    };
    out.add_op(slice, vec![Some(t)], vec![part])
        .map_err(|e| e.to_string())?;
    Ok(part)
}

/// Band `b`'s own copy of constant operand `t` (other operands are shared).
fn private_constant(graph: &Graph, out: &mut Graph, t: TensorId, b: usize, i: usize) -> TensorId {
    let tensor = graph.tensor(t);
    if tensor.kind != TensorKind::Constant || b == 0 {
        return t;
    }
    out.push_tensor(Tensor {
        name: format!("{}/band{b}.{i}", tensor.name),
        ..tensor.clone()
    })
}

/// The op a band runs for `node`: windowed ops with the band's explicit padding (the
/// columns' as the whole op had them), the others unchanged.
fn band_op(graph: &Graph, node: &Node, rows: BandRows) -> Result<Op, String> {
    let input = node.inputs[0].ok_or("an op without an input")?;
    let width = graph.tensor(input).ty.shape[2];
    let banded = |w: &Window, filter_w: usize| -> Result<Window, String> {
        let g = w
            .resolve_w(width, filter_w)
            .ok_or("a window that does not fit")?;
        let effective = (filter_w - 1) * w.dilation_w + 1;
        let right = match w.padding {
            Padding::Explicit { right, .. } => right,
            _ => ((g.out - 1) * w.stride_w + effective).saturating_sub(width + g.pad_before),
        };
        let padding = Padding::Explicit {
            top: rows.top,
            bottom: rows.bottom,
            left: g.pad_before,
            right,
        };
        Ok(Window { padding, ..*w })
    };
    // OHWI and 1HWC filters both keep their width in dimension 2.
    let filter_w = || -> Result<usize, String> {
        let filter = node.inputs.get(1).copied().flatten();
        let shape = filter.map(|f| &graph.tensor(f).ty.shape);
        shape
            .and_then(|s| s.get(2).copied())
            .ok_or_else(|| "a convolution without its filter".to_string())
    };
    let mut op = node.op.clone();
    match &mut op {
        Op::Conv2d { window, .. } | Op::DepthwiseConv2d { window, .. } => {
            *window = banded(window, filter_w()?)?;
        }
        Op::AvgPool2d {
            filter_w, window, ..
        }
        | Op::MaxPool2d {
            filter_w, window, ..
        } => *window = banded(window, *filter_w)?,
        _ => {}
    }
    Ok(op)
}
