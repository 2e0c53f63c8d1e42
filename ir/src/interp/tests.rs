//! Edge cases of each kernel on tiny single-op graphs. Scales are powers of two, so the
//! requantization is an exact rounding and the expected values follow from a plain formula
//! (round half away from zero), computed here independently of the kernels.

use super::Interpreter;
use crate::graph::Graph;
use crate::op::{Activation, Op, Padding, Window};
use crate::types::{DType, Quant, TensorType};

fn q(scale: f32, zero_point: i32) -> Option<Quant> {
    Some(Quant::PerTensor { scale, zero_point })
}

fn ty(shape: &[usize], dtype: DType, quant: Option<Quant>) -> TensorType {
    TensorType {
        shape: shape.to_vec(),
        dtype,
        quant,
    }
}

fn i8_bytes(v: &[i8]) -> Vec<u8> {
    v.iter().map(|x| *x as u8).collect()
}

fn i32_bytes(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn round_away(x: f64) -> i64 {
    x.round() as i64
}

/// TFLite Micro's requantization by an exact power of two `scale = 2^-k`: the doubling high
/// multiply rounds `acc / 2` with ties toward +infinity (VQRDMULH: -1.5 gives -1), then the
/// right shift rounds by `2^(k-1)` with ties away from zero (double rounding).
fn requant_pot(acc: i64, scale: f64) -> i64 {
    let halved = (acc as f64 / 2.0 + 0.5).floor() as i64;
    round_away(halved as f64 * scale * 2.0)
}

/// Builds `op` over one graph input (`x`) and constant operands, runs it on `input`, returns the
/// output bytes. Integer ops are also lowered to the loop IR and must give the same bytes there.
fn run_op(
    op: Op,
    x: TensorType,
    constants: Vec<Option<(TensorType, Vec<u8>)>>,
    out: TensorType,
    input: Vec<u8>,
) -> Vec<u8> {
    let mut g = Graph::new("test");
    let xi = g.add_input("x", x);
    let mut inputs = vec![Some(xi)];
    for c in constants {
        inputs.push(c.map(|(t, d)| g.add_constant("c", t, d)));
    }
    let y = g.add_tensor("y", out);
    g.add_op(op, inputs, vec![y]).unwrap();
    g.outputs.push(y);
    g.verify().unwrap();
    let want = Interpreter::new(&g)
        .unwrap()
        .run(std::slice::from_ref(&input))
        .unwrap()
        .remove(0);
    match crate::lower::lower(&g) {
        Ok(program) => {
            let mut loops = crate::loops::interp::ProgramInterp::new(&program).unwrap();
            let got = loops.run(&[input]).unwrap().remove(0);
            assert_eq!(
                got,
                want,
                "the lowered {} differs from the interpreter",
                g.node(crate::graph::OpId(0)).op.name()
            );
        }
        Err(e) => assert!(e.to_string().contains("not lowered yet"), "{e}"),
    }
    want
}

/// Direct convolution with exact per-channel scales, the expected-value oracle.
#[allow(clippy::too_many_arguments)]
fn conv_oracle(
    x: &[i8],
    (h, w): (usize, usize),
    zp_in: i32,
    f: &[i8],
    k: usize,
    scales: &[f64],
    bias: &[i32],
    (stride, pad, oh, ow): (usize, usize, usize, usize),
    zp_out: i32,
    (lo, hi): (i64, i64),
) -> Vec<i8> {
    let mut out = Vec::new();
    for oy in 0..oh {
        for ox in 0..ow {
            for (c, scale) in scales.iter().enumerate() {
                let mut acc = bias[c] as i64;
                for ky in 0..k {
                    for kx in 0..k {
                        let (iy, ix) = (
                            (oy * stride + ky) as isize - pad as isize,
                            (ox * stride + kx) as isize - pad as isize,
                        );
                        if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                            let v = x[iy as usize * w + ix as usize] as i64 - zp_in as i64;
                            acc += v * f[(c * k + ky) * k + kx] as i64;
                        }
                    }
                }
                out.push((requant_pot(acc, *scale) + zp_out as i64).clamp(lo, hi) as i8);
            }
        }
    }
    out
}

#[test]
fn conv_same_stride_2_per_channel_with_negative_zero_points() {
    let x: Vec<i8> = (0..16).map(|i| (i * 7 % 23) as i8 - 11).collect();
    let f: Vec<i8> = (0..18).map(|i| (i * 5 % 13) as i8 - 6).collect();
    let bias = [10, -7];
    let filter_q = Some(Quant::PerChannel {
        scales: vec![0.5, 0.25],
        zero_points: vec![0, 0],
        axis: 0,
    });
    for (padding, out_hw, pad) in [(Padding::Same, 2, 0), (Padding::Valid, 1, 0)] {
        let got = run_op(
            Op::Conv2d {
                weights: crate::WeightLayout::Bytes,
                window: Window::square(2, padding),
                activation: Activation::None,
            },
            ty(&[1, 4, 4, 1], DType::I8, q(1.0, -3)),
            vec![
                Some((ty(&[2, 3, 3, 1], DType::I8, filter_q.clone()), i8_bytes(&f))),
                Some((ty(&[2], DType::I32, None), i32_bytes(&bias))),
            ],
            ty(&[1, out_hw, out_hw, 2], DType::I8, q(1.0, 5)),
            i8_bytes(&x),
        );
        let want = conv_oracle(
            &x,
            (4, 4),
            -3,
            &f,
            3,
            &[0.5, 0.25],
            &bias,
            (2, pad, out_hw, out_hw),
            5,
            (-128, 127),
        );
        assert_eq!(got, i8_bytes(&want), "{padding:?}");
    }
}

#[test]
fn conv_saturates_at_both_ends_and_relu_clamps_at_the_zero_point() {
    let x = vec![127i8; 9];
    let f: Vec<i8> = [vec![127i8; 9], vec![-127i8; 9]].concat();
    let filter_q = Some(Quant::PerChannel {
        scales: vec![1.0, 1.0],
        zero_points: vec![0, 0],
        axis: 0,
    });
    let run = |activation| {
        run_op(
            Op::Conv2d {
                weights: crate::WeightLayout::Bytes,
                window: Window::square(1, Padding::Valid),
                activation,
            },
            ty(&[1, 3, 3, 1], DType::I8, q(1.0, -128)),
            vec![
                Some((ty(&[2, 3, 3, 1], DType::I8, filter_q.clone()), i8_bytes(&f))),
                None,
            ],
            ty(&[1, 1, 1, 2], DType::I8, q(1.0, 0)),
            i8_bytes(&x),
        )
    };
    assert_eq!(run(Activation::None), i8_bytes(&[127, -128]));
    assert_eq!(run(Activation::Relu), i8_bytes(&[127, 0]));
}

#[test]
fn depthwise_with_multiplier_2_and_same_padding() {
    let x: Vec<i8> = (0..18).map(|i| i as i8 - 9).collect(); // 1x3x3x2
    let f: Vec<i8> = (0..36).map(|i| (i % 7) as i8 - 3).collect(); // 1x3x3x4
    let got = run_op(
        Op::DepthwiseConv2d {
            weights: crate::WeightLayout::Bytes,
            window: Window::square(2, Padding::Same),
            depth_multiplier: 2,
            activation: Activation::None,
        },
        ty(&[1, 3, 3, 2], DType::I8, q(1.0, 2)),
        vec![
            Some((ty(&[1, 3, 3, 4], DType::I8, q(0.5, 0)), i8_bytes(&f))),
            None,
        ],
        ty(&[1, 2, 2, 4], DType::I8, q(1.0, -1)),
        i8_bytes(&x),
    );
    // SAME, stride 2, in 3, filter 3: out 2, total padding 2, one row/column before.
    let mut want = Vec::new();
    for oy in 0..2usize {
        for ox in 0..2usize {
            for oc in 0..4usize {
                let ic = oc / 2;
                let mut acc = 0i64;
                for ky in 0..3usize {
                    for kx in 0..3usize {
                        let (iy, ix) = ((oy * 2 + ky) as isize - 1, (ox * 2 + kx) as isize - 1);
                        if (0..3).contains(&iy) && (0..3).contains(&ix) {
                            acc += (x[(iy as usize * 3 + ix as usize) * 2 + ic] as i64 - 2)
                                * f[(ky * 3 + kx) * 4 + oc] as i64;
                        }
                    }
                }
                want.push((round_away(acc as f64 * 0.5) - 1).clamp(-128, 127) as i8);
            }
        }
    }
    assert_eq!(got, i8_bytes(&want));
}

#[test]
fn fully_connected_rounds_half_away_from_zero_and_saturates() {
    let x: Vec<i8> = vec![-128, -1, 0, 1, 127, 5];
    let w: Vec<i8> = vec![
        1, 1, 1, 1, 1, 1, -127, -127, -127, -127, -127, -127, 0, 0, 0, 0, 0, 1,
    ];
    let got = run_op(
        Op::FullyConnected {
            weights: crate::WeightLayout::Bytes,
            activation: Activation::None,
            keep_num_dims: false,
        },
        ty(&[1, 6], DType::I8, q(0.5, -4)),
        vec![
            Some((ty(&[3, 6], DType::I8, q(1.0, 0)), i8_bytes(&w))),
            Some((ty(&[3], DType::I32, None), i32_bytes(&[3, 0, 0]))),
        ],
        ty(&[1, 3], DType::I8, q(1.0, 1)),
        i8_bytes(&x),
    );
    let acc0: i64 = x.iter().map(|v| *v as i64 + 4).sum::<i64>() + 3;
    let want0 = (round_away(acc0 as f64 * 0.5) + 1).clamp(-128, 127) as i8;
    // Unit 2 sees only x[5] = 5: (5 + 4) * 0.5 = 4.5 rounds to 5, plus the zero point 1.
    assert_eq!(got, i8_bytes(&[want0, -128, 6]));
}

#[test]
fn average_pool_rounds_away_from_zero_and_ignores_padding() {
    // 1x2x2x1, 2x2 window, SAME, stride 2: one output over all four cells.
    let avg = |v: [i8; 4]| {
        run_op(
            Op::AvgPool2d {
                filter_h: 2,
                filter_w: 2,
                window: Window::square(2, Padding::Same),
                activation: Activation::None,
            },
            ty(&[1, 2, 2, 1], DType::I8, q(1.0, 0)),
            vec![],
            ty(&[1, 1, 1, 1], DType::I8, q(1.0, 0)),
            i8_bytes(&v),
        )[0] as i8
    };
    assert_eq!(avg([-3, -2, -3, -2]), -3); // -2.5 -> -3
    assert_eq!(avg([3, 2, 3, 2]), 3); // 2.5 -> 3
    assert_eq!(avg([-128, -128, -128, -127]), -128);
    // 3x3 window at stride 1 over a 2x2 image with SAME padding: every window is clipped.
    let got = run_op(
        Op::AvgPool2d {
            filter_h: 3,
            filter_w: 3,
            window: Window::square(1, Padding::Same),
            activation: Activation::None,
        },
        ty(&[1, 2, 2, 1], DType::I8, q(1.0, 0)),
        vec![],
        ty(&[1, 2, 2, 1], DType::I8, q(1.0, 0)),
        i8_bytes(&[1, 2, 3, 4]),
    );
    assert_eq!(got, i8_bytes(&[3, 3, 3, 3])); // 10 / 4 = 2.5 -> 3
    let max = run_op(
        Op::MaxPool2d {
            filter_h: 2,
            filter_w: 2,
            window: Window::square(2, Padding::Valid),
            activation: Activation::Relu,
        },
        ty(&[1, 2, 2, 1], DType::I8, q(1.0, 10)),
        vec![],
        ty(&[1, 1, 1, 1], DType::I8, q(1.0, 10)),
        i8_bytes(&[-5, 3, 7, -100]),
    );
    assert_eq!(
        max,
        i8_bytes(&[10]),
        "relu clamps the max 7 up to the zero point 10"
    );
}

#[test]
fn add_rescales_both_inputs_with_broadcasting() {
    let mut g = Graph::new("add");
    let a = g.add_input("a", ty(&[1, 2, 2], DType::I8, q(0.5, -3)));
    let b = g.add_constant("b", ty(&[2], DType::I8, q(0.5, 4)), i8_bytes(&[10, -20]));
    let y = g.add_tensor("y", ty(&[1, 2, 2], DType::I8, q(1.0, -1)));
    g.add_op(
        Op::Add {
            activation: Activation::None,
        },
        vec![Some(a), Some(b)],
        vec![y],
    )
    .unwrap();
    g.outputs.push(y);
    let xa: [i8; 4] = [-128, 0, 5, 127];
    let got = Interpreter::new(&g)
        .unwrap()
        .run(&[i8_bytes(&xa)])
        .unwrap()
        .remove(0);
    let bv = [10i64, -20];
    let want: Vec<i8> = (0..4)
        .map(|i| {
            (round_away(((xa[i] as i64 + 3) + (bv[i % 2] - 4)) as f64 / 2.0) - 1).clamp(-128, 127)
                as i8
        })
        .collect();
    assert_eq!(got, i8_bytes(&want));
}

#[test]
fn softmax_of_equal_logits_is_uniform_and_a_dominant_logit_saturates() {
    let run = |x: &[i8]| {
        run_op(
            Op::Softmax { beta: 1.0 },
            ty(&[1, 4], DType::I8, q(0.1, 0)),
            vec![],
            ty(&[1, 4], DType::I8, q(1.0 / 256.0, -128)),
            i8_bytes(x),
        )
    };
    assert_eq!(run(&[7, 7, 7, 7]), i8_bytes(&[-64; 4]));
    let peaked = run(&[127, -128, -128, -128]);
    assert_eq!(peaked[0] as i8, 127);
    assert!(peaked[1..].iter().all(|v| *v as i8 == -128));
}

#[test]
fn quantize_dequantize_and_requantize() {
    let f: Vec<u8> = [0.25f32, -0.25, 0.75, 1000.0, -1000.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let got = run_op(
        Op::Quantize,
        ty(&[5], DType::F32, None),
        vec![],
        ty(&[5], DType::I8, q(0.5, 1)),
        f,
    );
    assert_eq!(
        got,
        i8_bytes(&[2, 0, 3, 127, -128]),
        "0.5 rounds away from zero, out-of-range saturates"
    );
    let x: Vec<u8> = [-300i16, 301, 32767]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let got = run_op(
        Op::Quantize,
        ty(&[3], DType::I16, q(0.25, 0)),
        vec![],
        ty(&[3], DType::I8, q(1.0, -2)),
        x,
    );
    // 301 * 0.25 = 75.25, but double rounding gives round(round(150.5) / 2) = 76: TFLM's answer.
    assert_eq!(got, i8_bytes(&[-77, 74, 127]));
    let got = run_op(
        Op::Dequantize,
        ty(&[2], DType::I8, q(0.5, -1)),
        vec![],
        ty(&[2], DType::F32, None),
        i8_bytes(&[-1, 4]),
    );
    assert_eq!(
        got,
        [0.0f32, 2.5]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>()
    );
}

#[test]
fn mean_pad_transpose_and_concat() {
    let x: Vec<i8> = vec![1, 2, 3, 4, -5, 6];
    let got = run_op(
        Op::Mean {
            axes: vec![1, 2],
            keep_dims: true,
        },
        ty(&[1, 1, 3, 2], DType::I8, q(1.0, 0)),
        vec![],
        ty(&[1, 1, 1, 2], DType::I8, q(1.0, 0)),
        i8_bytes(&x),
    );
    assert_eq!(
        got,
        i8_bytes(&[0, 4]),
        "(1+3-5)/3 = -0.33 rounds to 0; (2+4+6)/3 = 4"
    );
    let pad = run_op(
        Op::Pad {
            pads: vec![(0, 0), (1, 0)],
        },
        ty(&[1, 2], DType::I8, q(1.0, -7)),
        vec![],
        ty(&[1, 3], DType::I8, q(1.0, -7)),
        i8_bytes(&[5, 6]),
    );
    assert_eq!(pad, i8_bytes(&[-7, 5, 6]), "padding uses the zero point");
    let t = run_op(
        Op::Transpose { perm: vec![1, 0] },
        ty(&[2, 3], DType::I8, None),
        vec![],
        ty(&[3, 2], DType::I8, None),
        i8_bytes(&x),
    );
    assert_eq!(t, i8_bytes(&[1, 4, 2, -5, 3, 6]));
    let mut g = Graph::new("concat");
    let a = g.add_input("a", ty(&[1, 2], DType::I8, None));
    let b = g.add_constant("b", ty(&[1, 1], DType::I8, None), i8_bytes(&[9]));
    let y = g.add_tensor("y", ty(&[1, 3], DType::I8, None));
    g.add_op(
        Op::Concat {
            axis: 1,
            activation: Activation::None,
        },
        vec![Some(a), Some(b)],
        vec![y],
    )
    .unwrap();
    g.outputs.push(y);
    assert_eq!(
        Interpreter::new(&g)
            .unwrap()
            .run(&[i8_bytes(&[1, 2])])
            .unwrap()[0],
        i8_bytes(&[1, 2, 9])
    );
}

#[test]
fn logistic_and_tanh_of_zero_and_extremes() {
    let run = |op: Op, out_zp: i32, out_scale: f32| {
        run_op(
            op,
            ty(&[3], DType::I8, q(0.1, 0)),
            vec![],
            ty(&[3], DType::I8, q(out_scale, out_zp)),
            i8_bytes(&[0, 127, -128]),
        )
    };
    assert_eq!(
        run(Op::Logistic, -128, 1.0 / 256.0),
        i8_bytes(&[0, 127, -128])
    );
    assert_eq!(run(Op::Tanh, 0, 1.0 / 128.0), i8_bytes(&[0, 127, -128]));
}

#[test]
fn wrong_input_sizes_are_refused_with_the_expected_size() {
    let mut g = Graph::new("relu");
    let x = g.add_input("x", ty(&[2, 3], DType::I8, q(1.0, 0)));
    let y = g.add_tensor("y", ty(&[2, 3], DType::I8, q(1.0, 0)));
    g.add_op(Op::Relu, vec![Some(x)], vec![y]).unwrap();
    g.outputs.push(y);
    let err = Interpreter::new(&g)
        .unwrap()
        .run(&[vec![0; 5]])
        .unwrap_err()
        .to_string();
    assert!(err.contains("expects 6"), "{err}");
}
