//! One before/after test per rule: the rewritten graph has the expected ops and computes the
//! same bytes as the original in the reference interpreter.

use super::{GraphRewriter, OpCost};
use crate::test_support::{bytes, int8};
use minnow_ir::interp::Interpreter;
use minnow_ir::{
    Activation, DType, Graph, Op, Padding, Quant, TensorId, TensorType, WeightLayout, Window,
};

/// Every op costs its output's elements.
struct Elements;

impl OpCost for Elements {
    fn cost(&self, _: &Op, _: &[Option<&TensorType>], output: &TensorType) -> f64 {
        output.elements() as f64
    }
}

/// As [`Elements`], but a convolution that checks taps against the image bounds costs ten
/// times as much (what a target whose vectorized kernels need unguarded taps sees).
struct GuardsCost;

impl OpCost for GuardsCost {
    fn cost(&self, op: &Op, inputs: &[Option<&TensorType>], output: &TensorType) -> f64 {
        let guarded = matches!(op, Op::Conv2d { window, .. } if window.padding != Padding::Valid);
        Elements.cost(op, inputs, output) * if guarded { 10.0 } else { 1.0 }
    }
}

/// Runs both graphs on the same pseudo-random inputs and compares every output byte.
fn assert_same_results(a: &Graph, b: &Graph) {
    let inputs: Vec<Vec<u8>> = a
        .inputs
        .iter()
        .enumerate()
        .map(|(i, t)| bytes(a.tensor(*t).ty.bytes(), i as u32 + 7))
        .collect();
    let run = |g: &Graph| Interpreter::new(g).unwrap().run(&inputs).unwrap();
    assert_eq!(run(a), run(b));
}

fn ops(g: &Graph) -> Vec<&'static str> {
    g.execution_order()
        .into_iter()
        .map(|op| g.node(op).op.name())
        .collect()
}

/// An int8 3x3 convolution over `x` (1x5x5x4) writing 8 channels, with `padding`.
fn conv(g: &mut Graph, x: TensorId, padding: Padding, activation: Activation) -> TensorId {
    let w = g.add_constant("w", int8(&[8, 3, 3, 4], 0.02, 0), bytes(288, 1));
    let b = g.add_constant(
        "b",
        TensorType {
            quant: Some(Quant::PerTensor {
                scale: 0.0002,
                zero_point: 0,
            }),
            ..TensorType::new(vec![8], DType::I32)
        },
        bytes(32, 2).iter().map(|v| v & 0x7).collect(),
    );
    let in_h = g.tensor(x).ty.shape[1];
    let out_h = if padding == Padding::Same { in_h } else { 5 };
    let y = g.add_tensor("y", int8(&[1, out_h, out_h, 8], 0.05, -3));
    let op = Op::Conv2d {
        weights: WeightLayout::Bytes,
        window: Window::square(1, padding),
        activation,
    };
    g.add_op(op, vec![Some(x), Some(w), Some(b)], vec![y])
        .unwrap();
    y
}

#[test]
fn fold_pad_into_conv() {
    let mut g = Graph::new("pad-conv");
    let x = g.add_input("x", int8(&[1, 5, 5, 4], 0.1, 5));
    let p = g.add_tensor("p", int8(&[1, 7, 7, 4], 0.1, 5));
    let pads = vec![(0, 0), (1, 1), (1, 1), (0, 0)];
    g.add_op(Op::Pad { pads }, vec![Some(x)], vec![p]).unwrap();
    let y = conv(&mut g, p, Padding::Valid, Activation::None);
    g.outputs.push(y);
    let (after, report) = GraphRewriter::default().run(&g, &Elements).unwrap();
    assert_eq!(ops(&after), ["conv2d"]);
    assert!(report.applied("fold-pad-into-conv") > 0);
    let explicit = Padding::Explicit {
        top: 1,
        bottom: 1,
        left: 1,
        right: 1,
    };
    let node = after.node(after.execution_order()[0]);
    assert!(matches!(node.op, Op::Conv2d { window, .. } if window.padding == explicit));
    assert_same_results(&g, &after);
}

#[test]
fn pad_for_vectorizing_where_guards_cost_more() {
    let mut g = Graph::new("same-conv");
    let x = g.add_input("x", int8(&[1, 5, 5, 4], 0.1, 5));
    let y = conv(&mut g, x, Padding::Same, Activation::None);
    g.outputs.push(y);
    let (kept, _) = GraphRewriter::default().run(&g, &Elements).unwrap();
    assert_eq!(ops(&kept), ["conv2d"]);
    let (after, report) = GraphRewriter::default().run(&g, &GuardsCost).unwrap();
    assert_eq!(ops(&after), ["pad", "conv2d"]);
    assert!(report.cost.1 < report.cost.0);
    let pad = after.node(after.execution_order()[0]);
    assert_eq!(after.tensor(pad.outputs[0]).ty.shape, [1, 7, 7, 4]);
    assert_same_results(&g, &after);
}

/// As [`Elements`], but a convolution over a channel count that is not a multiple of 4 costs
/// ten times as much (what a target whose SIMD runs along four channels sees).
struct OddChannelsCost;

impl OpCost for OddChannelsCost {
    fn cost(&self, op: &Op, inputs: &[Option<&TensorType>], output: &TensorType) -> f64 {
        let channels = inputs[0].map_or(0, |t| *t.shape.last().unwrap_or(&0));
        let odd = matches!(op, Op::Conv2d { .. }) && channels % 4 != 0;
        Elements.cost(op, inputs, output) * if odd { 10.0 } else { 1.0 }
    }
}

#[test]
fn pad_channels_for_vectorizing_with_zero_weights() {
    let mut g = Graph::new("rgb-conv");
    let x = g.add_input("x", int8(&[1, 6, 6, 3], 0.1, -7));
    let w = g.add_constant("w", int8(&[8, 3, 3, 3], 0.02, 0), bytes(216, 3));
    let y = g.add_tensor("y", int8(&[1, 3, 3, 8], 0.05, -3));
    let op = Op::Conv2d {
        weights: WeightLayout::Bytes,
        window: Window::square(2, Padding::Same),
        activation: Activation::Relu,
    };
    g.add_op(op, vec![Some(x), Some(w), None], vec![y]).unwrap();
    g.outputs.push(y);
    let (kept, _) = GraphRewriter::default().run(&g, &Elements).unwrap();
    assert_eq!(ops(&kept), ["conv2d"]);
    let (after, report) = GraphRewriter::default().run(&g, &OddChannelsCost).unwrap();
    assert_eq!(ops(&after), ["pad", "conv2d"]);
    assert!(report.applied("pad-channels-for-vectorizing") > 0);
    assert_eq!(report.stop_reason, "saturated");
    let conv = after.node(after.execution_order()[1]);
    let filter = after.tensor(conv.inputs[1].unwrap());
    assert_eq!(filter.ty.shape, [8, 3, 3, 4]);
    // Each output channel's taps: the three weights, then a zero.
    let data = filter.data.as_ref().unwrap();
    assert_eq!(
        &data[..4],
        &[bytes(216, 3)[0], bytes(216, 3)[1], bytes(216, 3)[2], 0]
    );
    assert!(data.chunks(4).all(|tap| tap[3] == 0));
    assert_eq!(after.tensor(conv.inputs[0].unwrap()).ty.shape, [1, 6, 6, 4]);
    assert_same_results(&g, &after);
}

#[test]
fn fuse_activation_when_the_quantization_is_kept() {
    let mut g = Graph::new("conv-relu");
    let x = g.add_input("x", int8(&[1, 5, 5, 4], 0.1, 5));
    let y = conv(&mut g, x, Padding::Same, Activation::None);
    let r = g.add_tensor("r", int8(&[1, 5, 5, 8], 0.05, -3));
    g.add_op(Op::Relu, vec![Some(y)], vec![r]).unwrap();
    g.outputs.push(r);
    let (after, report) = GraphRewriter::default().run(&g, &Elements).unwrap();
    assert_eq!(ops(&after), ["conv2d"]);
    assert!(report.applied("fuse-activation") > 0);
    assert_same_results(&g, &after);

    // A RELU that requantizes is not a clamp: it stays.
    let mut g = Graph::new("conv-relu-requantized");
    let x = g.add_input("x", int8(&[1, 5, 5, 4], 0.1, 5));
    let y = conv(&mut g, x, Padding::Same, Activation::None);
    let r = g.add_tensor("r", int8(&[1, 5, 5, 8], 0.03, -128));
    g.add_op(Op::Relu, vec![Some(y)], vec![r]).unwrap();
    g.outputs.push(r);
    let (after, _) = GraphRewriter::default().run(&g, &Elements).unwrap();
    assert_eq!(ops(&after), ["conv2d", "relu"]);
}

#[test]
fn fuse_residual_add_when_nothing_else_reads_the_conv() {
    let residual = |conv_is_an_output: bool| {
        let mut g = Graph::new("conv-add");
        let x = g.add_input("x", int8(&[1, 5, 5, 4], 0.1, 5));
        let skip = g.add_input("skip", int8(&[1, 5, 5, 8], 0.06, -2));
        let y = conv(&mut g, x, Padding::Same, Activation::Relu);
        let sum = g.add_tensor("sum", int8(&[1, 5, 5, 8], 0.08, 1));
        let add = Op::Add {
            activation: Activation::None,
        };
        // The convolution is the second addend: either may be fused.
        g.add_op(add, vec![Some(skip), Some(y)], vec![sum]).unwrap();
        g.outputs.push(sum);
        if conv_is_an_output {
            g.outputs.push(y);
        }
        g
    };
    let g = residual(false);
    let (after, report) = GraphRewriter::default().run(&g, &Elements).unwrap();
    assert_eq!(ops(&after), ["conv2d_add"]);
    assert!(report.applied("fuse-residual-add") > 0);
    assert_same_results(&g, &after);
    assert_eq!(after.macs(), g.macs());
    // Lowered, it computes what the two ops do.
    let lowered = minnow_ir::lower::lower(&after).unwrap();
    let inputs = [bytes(100, 7), bytes(200, 8)];
    let want = Interpreter::new(&g).unwrap().run(&inputs).unwrap();
    let got = minnow_ir::loops::interp::ProgramInterp::new(&lowered)
        .unwrap()
        .run(&inputs);
    assert_eq!(got.unwrap(), want);

    // The convolution's output is also a model output: it must be stored, so no fusion.
    let (after, _) = GraphRewriter::default()
        .run(&residual(true), &Elements)
        .unwrap();
    assert_eq!(ops(&after), ["conv2d", "add"]);
}

#[test]
fn reshape_chain_and_identity() {
    let mut g = Graph::new("reshapes");
    let x = g.add_input("x", int8(&[1, 12], 0.1, 0));
    let a = g.add_tensor("a", int8(&[3, 4], 0.1, 0));
    let b = g.add_tensor("b", int8(&[1, 12], 0.1, 0));
    let c = g.add_tensor("c", int8(&[1, 12], 0.1, 0));
    g.add_op(Op::Reshape, vec![Some(x)], vec![a]).unwrap();
    g.add_op(Op::Reshape, vec![Some(a)], vec![b]).unwrap();
    g.add_op(Op::Relu, vec![Some(b)], vec![c]).unwrap();
    g.outputs.push(c);
    let (after, report) = GraphRewriter::default().run(&g, &Elements).unwrap();
    assert_eq!(ops(&after), ["relu"]);
    assert!(report.applied("reshape-chain") > 0);
    assert_same_results(&g, &after);
}

#[test]
fn transpose_chain_cancels() {
    let mut g = Graph::new("transposes");
    let x = g.add_input("x", int8(&[2, 3, 4], 0.1, 0));
    let a = g.add_tensor("a", int8(&[4, 2, 3], 0.1, 0));
    let b = g.add_tensor("b", int8(&[2, 3, 4], 0.1, 0));
    let c = g.add_tensor("c", int8(&[3, 4, 2], 0.1, 0));
    g.add_op(
        Op::Transpose {
            perm: vec![2, 0, 1],
        },
        vec![Some(x)],
        vec![a],
    )
    .unwrap();
    g.add_op(
        Op::Transpose {
            perm: vec![1, 2, 0],
        },
        vec![Some(a)],
        vec![b],
    )
    .unwrap();
    g.add_op(
        Op::Transpose {
            perm: vec![1, 2, 0],
        },
        vec![Some(b)],
        vec![c],
    )
    .unwrap();
    g.outputs.push(c);
    let (after, report) = GraphRewriter::default().run(&g, &Elements).unwrap();
    assert_eq!(ops(&after), ["transpose"]);
    assert!(report.applied("transpose-chain") > 0);
    assert_same_results(&g, &after);
}

#[test]
fn fold_constant_subgraph() {
    let mut g = Graph::new("constants");
    let f32_ty = |shape: &[usize]| TensorType::new(shape.to_vec(), DType::F32);
    let x = g.add_input("x", f32_ty(&[2, 3]));
    let values: Vec<u8> = (0..6)
        .flat_map(|i| (i as f32 * 0.5).to_le_bytes())
        .collect();
    let k = g.add_constant("k", f32_ty(&[3, 2]), values);
    let kt = g.add_tensor("kt", f32_ty(&[2, 3]));
    let y = g.add_tensor("y", f32_ty(&[2, 3]));
    g.add_op(Op::Transpose { perm: vec![1, 0] }, vec![Some(k)], vec![kt])
        .unwrap();
    let add = Op::Add {
        activation: Activation::None,
    };
    g.add_op(add, vec![Some(x), Some(kt)], vec![y]).unwrap();
    g.outputs.push(y);
    let (after, report) = GraphRewriter::default().run(&g, &Elements).unwrap();
    assert_eq!(ops(&after), ["add"]);
    // The transposed constant folds; the layout rules may fold its transpose back too.
    assert!(report.applied("fold-constant") >= 1);
    assert_same_results(&g, &after);
}

#[test]
fn the_runner_stops_at_its_limits_and_says_why() {
    let mut g = Graph::new("same-conv");
    let x = g.add_input("x", int8(&[1, 5, 5, 4], 0.1, 5));
    let y = conv(&mut g, x, Padding::Same, Activation::None);
    g.outputs.push(y);
    let mut rewriter = GraphRewriter::default();
    rewriter.limits.iterations = 1;
    let (after, report) = rewriter.run(&g, &GuardsCost).unwrap();
    assert_eq!(report.stop_reason, "iteration limit (1)");
    assert_same_results(&g, &after);
    let (_, report) = GraphRewriter::default().run(&g, &GuardsCost).unwrap();
    assert_eq!(report.stop_reason, "saturated");
}

/// As [`Elements`], but widened weights cost `wide` times as much as bytes (a target's price of
/// the instructions they save against the flash they add).
struct WideWeightsCost {
    wide: f64,
}

impl OpCost for WideWeightsCost {
    fn cost(&self, op: &Op, inputs: &[Option<&TensorType>], output: &TensorType) -> f64 {
        let factor = match op.weight_layout() {
            WeightLayout::Wide => self.wide,
            WeightLayout::Bytes => 1.0,
        };
        Elements.cost(op, inputs, output) * factor
    }
}

#[test]
fn choose_weight_layout_by_the_targets_price() {
    let mut g = Graph::new("conv");
    let x = g.add_input("x", int8(&[1, 7, 7, 4], 0.1, 5));
    let y = conv(&mut g, x, Padding::Valid, Activation::None);
    g.outputs.push(y);
    let layout = |cost: &WideWeightsCost| {
        let (after, report) = GraphRewriter::default().run(&g, cost).unwrap();
        assert!(report.applied("choose-weight-layout") > 0);
        assert_same_results(&g, &after);
        after.node(after.execution_order()[0]).op.weight_layout()
    };
    assert_eq!(layout(&WideWeightsCost { wide: 0.5 }), WeightLayout::Wide);
    assert_eq!(layout(&WideWeightsCost { wide: 2.0 }), WeightLayout::Bytes);
    // Float weights have no widened form.
    let mut f = Graph::new("float-fc");
    let x = f.add_input("x", TensorType::new(vec![1, 4], DType::F32));
    let w = f.add_constant("w", TensorType::new(vec![2, 4], DType::F32), vec![0; 32]);
    let y = f.add_tensor("y", TensorType::new(vec![1, 2], DType::F32));
    let fc = Op::FullyConnected {
        weights: WeightLayout::Bytes,
        activation: Activation::None,
        keep_num_dims: false,
    };
    f.add_op(fc, vec![Some(x), Some(w), None], vec![y]).unwrap();
    f.outputs.push(y);
    let cheap = WideWeightsCost { wide: 0.5 };
    let (_, report) = GraphRewriter::default().run(&f, &cheap).unwrap();
    assert_eq!(report.applied("choose-weight-layout"), 0);
}
