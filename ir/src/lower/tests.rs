//! Lowered programs against the graph interpreter on random inputs, for op configurations the
//! shared models do not cover (dilation, groups, depth multipliers, 16x8, broadcasting, the
//! activation functions). The interpreter's own edge-case tests also check the lowering.

use super::lower;
use crate::graph::Graph;
use crate::interp::Interpreter;
use crate::loops::interp::ProgramInterp;
use crate::loops::reduction::{Loop, LoopNest};
use crate::loops::ForKind;
use crate::loops::FuncBuilder;
use crate::op::{Activation, Op, Padding, Pooling, Window};
use crate::types::{DType, Quant, TensorType};
use proptest::collection::vec;
use proptest::prelude::*;

fn ty(shape: &[usize], dtype: DType, scale: f32, zero_point: i32) -> TensorType {
    TensorType {
        shape: shape.to_vec(),
        dtype,
        quant: Some(Quant::PerTensor { scale, zero_point }),
    }
}

fn per_channel(shape: &[usize], scales: Vec<f32>, axis: usize) -> TensorType {
    let n = scales.len();
    TensorType {
        shape: shape.to_vec(),
        dtype: DType::I8,
        quant: Some(Quant::PerChannel {
            scales,
            zero_points: vec![0; n],
            axis,
        }),
    }
}

/// Pseudo-random constant bytes (weights), reproducible.
fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn i32_bytes(values: impl Iterator<Item = i32>) -> Vec<u8> {
    values.flat_map(|v| v.to_le_bytes()).collect()
}

/// One op over graph inputs `xs` (random data) and constants; asserts the lowered program
/// gives the interpreter's bytes.
fn check(
    op: Op,
    xs: Vec<TensorType>,
    constants: Vec<(TensorType, Vec<u8>)>,
    out: TensorType,
    data: &[u8],
) {
    let mut g = Graph::new("t");
    let mut inputs = Vec::new();
    let mut feeds = Vec::new();
    let mut offset = 0;
    for (k, t) in xs.into_iter().enumerate() {
        let byte = |i: usize| data[(offset + i) % data.len()];
        let feed: Vec<u8> = if t.dtype == DType::F32 {
            // Finite values with ties and signs: multiples of 1/8 in [-16, 16).
            (0..t.elements())
                .flat_map(|i| (byte(i) as i8 as f32 / 8.0).to_le_bytes())
                .collect()
        } else {
            (0..t.bytes()).map(byte).collect()
        };
        offset += feed.len();
        feeds.push(feed);
        inputs.push(Some(g.add_input(format!("x{k}"), t)));
    }
    for (k, (t, d)) in constants.into_iter().enumerate() {
        inputs.push(Some(g.add_constant(format!("c{k}"), t, d)));
    }
    let y = g.add_tensor("y", out);
    g.add_op(op, inputs, vec![y]).unwrap();
    g.outputs.push(y);
    assert_lowered_matches(&g, &feeds);
}

/// The lowered `g` gives the interpreter's bytes on `feeds`, and so does it with its padded
/// multiply-accumulate loops partitioned into borders and a guard-free interior.
fn assert_lowered_matches(g: &Graph, feeds: &[Vec<u8>]) {
    let want = Interpreter::new(g).unwrap().run(feeds).unwrap();
    let mut program = lower(g).unwrap();
    program.verify().unwrap();
    let got = ProgramInterp::new(&program).unwrap().run(feeds).unwrap();
    assert_eq!(got, want);
    for step in 0..program.steps.len() {
        let Some(r) = program.steps[step].reduction.clone() else {
            continue;
        };
        let nest = LoopNest {
            partition_borders: true,
            ..r.default_nest()
        };
        let func = program.steps[step].func;
        let mut f = FuncBuilder::with_params_of(&program.funcs[func]);
        r.build(&nest, &mut f).unwrap();
        program.funcs[func] = f.finish();
    }
    program.verify().unwrap();
    let partitioned = ProgramInterp::new(&program).unwrap().run(feeds).unwrap();
    assert_eq!(partitioned, want, "with the borders partitioned");
}

/// A convolution or fully connected op with a fused residual ADD, against the two ops run one
/// after the other by the interpreter.
/// The convolution's input and output are `side` pixels square.
fn residual_add_case(mac: Op, activation: Activation, side: usize, data: &[u8]) -> Graph {
    let fc = matches!(mac, Op::FullyConnected { .. });
    let (x_shape, w_shape, out_shape): (Vec<usize>, &[usize], Vec<usize>) = if fc {
        (vec![2, 12], &[5, 12], vec![2, 5])
    } else {
        (
            vec![1, side, side, 3],
            &[5, 3, 3, 3],
            vec![1, side, side, 5],
        )
    };
    let (x_shape, out_shape) = (&x_shape[..], &out_shape[..]);
    let mut g = Graph::new("residual");
    let x = g.add_input("x", ty(x_shape, DType::I8, 0.05, -3));
    let filter = per_channel(
        w_shape,
        (0..5).map(|c| 0.01 + 0.004 * c as f32).collect(),
        0,
    );
    let w = g.add_constant("w", filter, bytes(w_shape.iter().product(), 9));
    let bias = ty(&[5], DType::I32, 1.0, 0);
    let b = g.add_constant("b", bias, i32_bytes((0..5).map(|v| 70 * v - 150)));
    let addend = g.add_input("addend", ty(out_shape, DType::I8, 0.07, 4));
    let y = g.add_tensor("y", ty(out_shape, DType::I8, 0.09, -6));
    let op = Op::ResidualAdd {
        mac: Box::new(mac),
        mac_output: ty(out_shape, DType::I8, 0.04, 2),
        activation,
    };
    g.add_op(op, vec![Some(x), Some(w), Some(b), Some(addend)], vec![y])
        .unwrap();
    g.outputs.push(y);
    let feeds: Vec<Vec<u8>> = [g.tensor(x).ty.bytes(), g.tensor(addend).ty.bytes()]
        .iter()
        .scan(0usize, |at, n| {
            *at += n;
            Some((*at - n..*at).map(|i| data[i % data.len()]).collect())
        })
        .collect();
    assert_lowered_matches(&g, &feeds);
    g
}

/// The constant slots of `g` lowered that hold an ADD's scaled-input tables.
fn add_tables_of(g: &Graph) -> usize {
    let program = lower(g).unwrap();
    let tables = program
        .slots
        .iter()
        .filter(|s| s.name.contains("scaled_input"));
    tables.count()
}

/// An int8 ADD of at least `ADD_TABLES_FROM_ELEMENTS` outputs looks its scaled inputs up, and
/// gives the interpreter's bytes on every pair of int8 values; a smaller one computes them. So
/// does a residual ADD fused into a convolution.
#[test]
fn int8_adds_look_their_scaled_inputs_up_from_1024_elements() {
    let add = |n: usize| {
        let mut g = Graph::new("add");
        let a = g.add_input("a", ty(&[n], DType::I8, 0.05, -3));
        let b = g.add_input("b", ty(&[n], DType::I8, 0.11, 9));
        let y = g.add_tensor("y", ty(&[n], DType::I8, 0.13, -7));
        let op = Op::Add {
            activation: Activation::Relu,
        };
        g.add_op(op, vec![Some(a), Some(b)], vec![y]).unwrap();
        g.outputs.push(y);
        g
    };
    let every_pair = add(1 << 16);
    let feeds = [
        (0..1 << 16).map(|i: usize| (i >> 8) as u8).collect(),
        (0..1 << 16).map(|i: usize| i as u8).collect(),
    ];
    assert_lowered_matches(&every_pair, &feeds);
    assert_eq!(add_tables_of(&every_pair), 2);
    assert_eq!(
        add_tables_of(&add(super::elementwise::ADD_TABLES_FROM_ELEMENTS - 1)),
        0
    );
    let conv = Op::Conv2d {
        weights: crate::WeightLayout::Bytes,
        window: window(1, 1, Padding::Same),
        activation: Activation::Relu,
    };
    let data = bytes(4096, 11);
    let fused = residual_add_case(conv.clone(), Activation::None, 16, &data);
    assert_eq!(add_tables_of(&fused), 2);
    let small = residual_add_case(conv, Activation::None, 5, &data);
    assert_eq!(add_tables_of(&small), 0);
}

/// A padded axis split in two is partitioned at its outer loop, where it has borders at both
/// ends: the interior tests no guard on it and so starts from the folded bias, and the results
/// stay the interpreter's.
#[test]
fn split_padded_axes_partition_at_their_outer_loop() {
    let mut g = Graph::new("split");
    let x = g.add_input("x", ty(&[1, 2, 12, 4], DType::I8, 0.05, -3));
    let filter = per_channel(&[1, 1, 3, 4], vec![0.02, 0.03, 0.01, 0.05], 3);
    let w = g.add_constant("w", filter, bytes(12, 5));
    let bias = ty(&[4], DType::I32, 1.0, 0);
    let b = g.add_constant("b", bias, i32_bytes((0..4).map(|v| 90 * v - 120)));
    let y = g.add_tensor("y", ty(&[1, 2, 12, 4], DType::I8, 0.08, 2));
    let op = Op::DepthwiseConv2d {
        weights: crate::WeightLayout::Bytes,
        window: window(1, 1, Padding::Same),
        depth_multiplier: 1,
        activation: Activation::Relu,
    };
    g.add_op(op, vec![Some(x), Some(w), Some(b)], vec![y])
        .unwrap();
    g.outputs.push(y);
    let feeds = vec![bytes(96, 3)];
    let want = Interpreter::new(&g).unwrap().run(&feeds).unwrap();
    let mut program = lower(&g).unwrap();
    let step = program
        .steps
        .iter()
        .position(|s| s.reduction.is_some())
        .unwrap();
    let r = program.steps[step].reduction.clone().unwrap();
    let mut nest = r.default_nest();
    let at = nest.loops.iter().position(|l| l.extent == 12).unwrap();
    let axis = nest.loops[at].axis;
    let split = |name: &str, extent, stride| Loop {
        name: name.into(),
        axis,
        extent,
        stride,
        kind: ForKind::Serial,
    };
    nest.loops[at] = split("ox_o", 3, 4);
    nest.loops.insert(at + 1, split("ox_i", 4, 1));
    nest.partition_borders = true;
    r.check(&nest).unwrap();
    let func = program.steps[step].func;
    let mut f = FuncBuilder::with_params_of(&program.funcs[func]);
    r.build(&nest, &mut f).unwrap();
    program.funcs[func] = f.finish();
    program.verify().unwrap();
    let text = program.funcs[func].to_string();
    let body = &text[text.find('{').unwrap()..];
    assert!(
        body.contains("bias_interior["),
        "no guard-free interior:\n{text}"
    );
    assert_eq!(
        ProgramInterp::new(&program).unwrap().run(&feeds).unwrap(),
        want
    );
}

fn conv_case(dtype: DType, window: Window, groups: usize, data: &[u8]) {
    let (in_c, out_c, k) = (4, 6, 3);
    let k_c = in_c / groups;
    let wide = dtype == DType::I16;
    let bias = if wide {
        (
            ty(&[out_c], DType::I64, 1.0, 0),
            (0..out_c as i64)
                .flat_map(|v| (v * 977 - 2000).to_le_bytes())
                .collect(),
        )
    } else {
        (
            ty(&[out_c], DType::I32, 1.0, 0),
            i32_bytes((0..out_c as i32).map(|v| v * 311 - 900)),
        )
    };
    let out_hw = match window.padding {
        Padding::Same => 7usize.div_ceil(window.stride_h),
        _ => (7 - (k - 1) * window.dilation_h - 1) / window.stride_h + 1,
    };
    let zp = if wide { 0 } else { -3 };
    check(
        Op::Conv2d {
            weights: crate::WeightLayout::Bytes,
            window,
            activation: Activation::Relu6,
        },
        vec![ty(&[1, 7, 7, in_c], dtype, 0.05, zp)],
        vec![
            (
                per_channel(
                    &[out_c, k, k, k_c],
                    (0..out_c).map(|c| 0.01 + 0.003 * c as f32).collect(),
                    0,
                ),
                bytes(out_c * k * k * k_c, 3),
            ),
            bias,
        ],
        ty(
            &[1, out_hw, out_hw, out_c],
            dtype,
            0.04,
            if wide { 0 } else { 5 },
        ),
        data,
    );
}

fn window(stride: usize, dilation: usize, padding: Padding) -> Window {
    Window {
        stride_h: stride,
        stride_w: stride,
        dilation_h: dilation,
        dilation_w: dilation,
        padding,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn conv_with_dilation_groups_and_16x8(data in vec(any::<u8>(), 64..512)) {
        conv_case(DType::I8, window(1, 2, Padding::Same), 1, &data);
        conv_case(DType::I8, window(2, 1, Padding::Valid), 2, &data);
        conv_case(DType::I16, window(2, 1, Padding::Same), 1, &data);
    }

    #[test]
    fn conv_and_fully_connected_with_a_residual_add(data in vec(any::<u8>(), 64..512)) {
        let conv = Op::Conv2d { weights: crate::WeightLayout::Bytes, window: window(1, 1, Padding::Same), activation: Activation::Relu };
        residual_add_case(conv, Activation::None, 5, &data);
        let fc = Op::FullyConnected { weights: crate::WeightLayout::Bytes, activation: Activation::None, keep_num_dims: false };
        residual_add_case(fc, Activation::Relu, 5, &data);
    }

    #[test]
    fn depthwise_with_multiplier_and_stride(data in vec(any::<u8>(), 64..512)) {
        let (c, m) = (3, 2);
        check(
            Op::DepthwiseConv2d { weights: crate::WeightLayout::Bytes, window: window(2, 1, Padding::Same), depth_multiplier: m, activation: Activation::None },
            vec![ty(&[1, 6, 5, c], DType::I8, 0.1, 7)],
            vec![
                (per_channel(&[1, 3, 3, c * m], vec![0.02, 0.03, 0.01, 0.05, 0.04, 0.02], 3), bytes(9 * c * m, 5)),
                (ty(&[c * m], DType::I32, 1.0, 0), i32_bytes((0..6).map(|v| 100 * v - 250))),
            ],
            ty(&[1, 3, 3, c * m], DType::I8, 0.08, -2),
            &data,
        );
    }

    #[test]
    fn pooling_and_broadcast_binary_ops(data in vec(any::<u8>(), 64..512)) {
        let pool = Op::MaxPool2d { filter_h: 3, filter_w: 2, window: window(2, 1, Padding::Same), activation: Activation::Relu };
        check(pool, vec![ty(&[1, 5, 5, 2], DType::I8, 0.1, -4)], vec![], ty(&[1, 3, 3, 2], DType::I8, 0.1, -4), &data);
        let mul = Op::Mul { activation: Activation::None };
        check(mul, vec![ty(&[1, 3, 4], DType::I8, 0.1, 3), ty(&[4], DType::I8, 0.05, -1)], vec![], ty(&[1, 3, 4], DType::I8, 0.02, 2), &data);
        let add = Op::Add { activation: Activation::None };
        check(add, vec![ty(&[2, 1, 3], DType::I16, 0.001, 0), ty(&[1, 4, 3], DType::I16, 0.002, 0)], vec![], ty(&[2, 4, 3], DType::I16, 0.003, 0), &data);
    }

    #[test]
    fn activations_and_requantization(data in vec(any::<u8>(), 64..512)) {
        let x = ty(&[2, 20], DType::I8, 0.07, -9);
        for op in [Op::Relu, Op::Relu6, Op::Logistic, Op::Tanh] {
            let out = match op {
                Op::Logistic => ty(&[2, 20], DType::I8, 1.0 / 256.0, -128),
                Op::Tanh => ty(&[2, 20], DType::I8, 1.0 / 128.0, 0),
                Op::Relu6 => x.clone(),
                _ => ty(&[2, 20], DType::I8, 0.05, -128),
            };
            check(op, vec![x.clone()], vec![], out, &data);
        }
        check(Op::Quantize, vec![x.clone()], vec![], ty(&[2, 20], DType::I16, 0.0003, 0), &data);
        check(Op::Softmax { beta: 1.0 }, vec![x.clone()], vec![], ty(&[2, 20], DType::I16, 1.0 / 65536.0, -32768), &data);
        for dtype in [DType::I8, DType::I16] {
            check(Op::Dequantize, vec![ty(&[2, 20], dtype, 0.000_713_3, -7)], vec![], f32_tensor(&[2, 20]), &data);
        }
        // int16 with TFLite's power-of-two scales and with a general scale.
        for (op, scale) in [(Op::Logistic, 1.0 / 4096.0), (Op::Tanh, 1.0 / 2048.0), (Op::Tanh, 1.0 / 4096.0), (Op::Logistic, 0.0004), (Op::Tanh, 0.00071)] {
            let out = ty(&[2, 20], DType::I16, 1.0 / 32768.0, 0);
            check(op, vec![ty(&[2, 20], DType::I16, scale, 0)], vec![], out, &data);
        }
        check(Op::Mean { axes: vec![1, 2], keep_dims: true }, vec![ty(&[1, 3, 5, 4], DType::I8, 0.1, 6)], vec![], ty(&[1, 1, 1, 4], DType::I8, 0.05, -1), &data);
    }
}

fn float_cases(data: &[u8]) {
    let data = data.to_vec();
    let conv = Op::Conv2d {
        weights: crate::WeightLayout::Bytes,
        window: window(2, 1, Padding::Same),
        activation: Activation::Relu6,
    };
    check(
        conv,
        vec![f32_tensor(&[1, 5, 5, 3])],
        vec![
            (f32_tensor(&[4, 3, 3, 3]), f32_bytes(108, 1)),
            (f32_tensor(&[4]), f32_bytes(4, 2)),
        ],
        f32_tensor(&[1, 3, 3, 4]),
        &data,
    );
    let dw = Op::DepthwiseConv2d {
        weights: crate::WeightLayout::Bytes,
        window: window(1, 1, Padding::Valid),
        depth_multiplier: 2,
        activation: Activation::None,
    };
    check(
        dw,
        vec![f32_tensor(&[1, 4, 4, 2])],
        vec![
            (f32_tensor(&[1, 3, 3, 4]), f32_bytes(36, 3)),
            (f32_tensor(&[4]), f32_bytes(4, 4)),
        ],
        f32_tensor(&[1, 2, 2, 4]),
        &data,
    );
    let fc = Op::FullyConnected {
        weights: crate::WeightLayout::Bytes,
        activation: Activation::Relu,
        keep_num_dims: false,
    };
    check(
        fc,
        vec![f32_tensor(&[2, 6])],
        vec![
            (f32_tensor(&[3, 6]), f32_bytes(18, 5)),
            (f32_tensor(&[3]), f32_bytes(3, 6)),
        ],
        f32_tensor(&[2, 3]),
        &data,
    );
    for average in [true, false] {
        let op = Pooling {
            average,
            filter_h: 3,
            filter_w: 3,
            window: window(2, 1, Padding::Same),
            activation: Activation::None,
        }
        .op();
        check(
            op,
            vec![f32_tensor(&[1, 5, 4, 2])],
            vec![],
            f32_tensor(&[1, 3, 2, 2]),
            &data,
        );
    }
    check(
        Op::Add {
            activation: Activation::Relu,
        },
        vec![f32_tensor(&[2, 3]), f32_tensor(&[3])],
        vec![],
        f32_tensor(&[2, 3]),
        &data,
    );
    check(
        Op::Mul {
            activation: Activation::None,
        },
        vec![f32_tensor(&[2, 3]), f32_tensor(&[2, 3])],
        vec![],
        f32_tensor(&[2, 3]),
        &data,
    );
    check(
        Op::Relu6,
        vec![f32_tensor(&[10])],
        vec![],
        f32_tensor(&[10]),
        &data,
    );
    for op in [Op::Logistic, Op::Tanh, Op::Softmax { beta: 0.7 }] {
        check(
            op,
            vec![f32_tensor(&[3, 16])],
            vec![],
            f32_tensor(&[3, 16]),
            &data,
        );
    }
    check(
        Op::Quantize,
        vec![f32_tensor(&[2, 16])],
        vec![],
        ty(&[2, 16], DType::I8, 0.125, -3),
        &data,
    );
    check(
        Op::Mean {
            axes: vec![1],
            keep_dims: false,
        },
        vec![f32_tensor(&[2, 5, 3])],
        vec![],
        f32_tensor(&[2, 3]),
        &data,
    );
}

fn f32_tensor(shape: &[usize]) -> TensorType {
    TensorType::new(shape.to_vec(), DType::F32)
}

/// Pseudo-random finite float constants.
fn f32_bytes(n: usize, seed: u64) -> Vec<u8> {
    bytes(n, seed)
        .into_iter()
        .flat_map(|b| (b as i8 as f32 * 0.03125).to_le_bytes())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn float_kernels(data in vec(any::<u8>(), 64..512)) {
        float_cases(&data);
    }
}

#[test]
fn an_output_no_op_computes_is_refused_with_its_name() {
    let mut g = Graph::new("t");
    let x = g.add_input("x", ty(&[4], DType::I8, 0.1, 0));
    let y = g.add_tensor("y", ty(&[4], DType::I8, 0.1, 0));
    g.add_op(Op::Relu, vec![Some(x)], vec![y]).unwrap();
    g.outputs = vec![y, x];
    let err = lower(&g).unwrap_err().to_string();
    assert!(err.contains("model output x is not computed"), "{err}");
}

/// An SVDF over several inferences, so that the state carried between them is checked too.
fn svdf_case(float: bool, data: &[u8]) {
    use crate::graph::{Tensor, TensorKind};
    let (batches, input, units, rank, memory) = (2, 5, 3, 2, 4);
    let filters = units * rank;
    let t = |shape: &[usize], dtype: DType, scale: f32, zp: i32| {
        if float {
            f32_tensor(shape)
        } else {
            ty(shape, dtype, scale, zp)
        }
    };
    let weights = |n: usize, seed: u64| {
        if float {
            f32_bytes(n, seed)
        } else {
            bytes(n, seed)
        }
    };
    let mut g = Graph::new("svdf");
    let x = g.add_input("x", t(&[batches, input], DType::I8, 0.05, 3));
    let wf = t(&[filters, input], DType::I8, 0.02, 0);
    let wf = g.add_constant("wf", wf, weights(filters * input, 7));
    let wt = t(&[filters, memory], DType::I16, 0.001, 0);
    let time_bytes = if float {
        f32_bytes(filters * memory, 8)
    } else {
        bytes(filters * memory * 2, 8)
    };
    let wt = g.add_constant("wt", wt, time_bytes);
    let bias = if float {
        g.add_constant("bias", f32_tensor(&[units]), f32_bytes(units, 9))
    } else {
        let values = (0..units as i32).map(|u| u * 997 - 1500);
        g.add_constant(
            "bias",
            ty(&[units], DType::I32, 0.0001, 0),
            i32_bytes(values),
        )
    };
    let state = g.push_tensor(Tensor {
        name: "state".into(),
        ty: t(&[batches, filters * memory], DType::I16, 0.004, 0),
        kind: TensorKind::State,
        data: None,
    });
    let y = g.add_tensor("y", t(&[batches, units], DType::I8, 0.1, -4));
    let activation = if float {
        Activation::Relu
    } else {
        Activation::None
    };
    let op = Op::Svdf { rank, activation };
    let operands = vec![Some(x), Some(wf), Some(wt), Some(bias), Some(state)];
    g.add_op(op, operands, vec![y]).unwrap();
    g.outputs.push(y);
    let mut interpreter = Interpreter::new(&g).unwrap();
    let program = lower(&g).unwrap();
    program.verify().unwrap();
    // An integer SVDF is its shift, its feature projection as a reduction (whose MACs the
    // per-layer figures count; the model's total counts none for SVDF, as MLPerf does), and
    // its time filter.
    let names: Vec<&str> = program.steps.iter().map(|s| s.name.as_str()).collect();
    if float {
        assert_eq!(names, ["y"]);
    } else {
        assert_eq!(names, ["y/shift", "y/projection", "y"]);
        assert!(program.steps[1].reduction.is_some());
        assert_eq!(program.steps[1].macs, (batches * filters * input) as u64);
    }
    let mut loops = ProgramInterp::new(&program).unwrap();
    for step in 0..memory + 2 {
        let feed: Vec<u8> = if float {
            (0..batches * input)
                .flat_map(|i| (data[(step * 7 + i) % data.len()] as i8 as f32 / 8.0).to_le_bytes())
                .collect()
        } else {
            (0..batches * input)
                .map(|i| data[(step * 7 + i) % data.len()])
                .collect()
        };
        let feeds = vec![feed];
        let want = interpreter.run(&feeds).unwrap();
        assert_eq!(loops.run(&feeds).unwrap(), want, "inference {step}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn svdf_float_and_integer_with_state(data in vec(any::<u8>(), 64..512)) {
        svdf_case(true, &data);
        svdf_case(false, &data);
    }
}
