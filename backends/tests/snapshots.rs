//! Snapshots of the generated C for one small convolution, depthwise convolution and fully
//! connected layer: a change to the emitted code shows up as a reviewable diff.

use minnow_backends::c::{CEmitter, RUNTIME};
use minnow_ir::op::{Activation, Op, Padding, Window};
use minnow_ir::types::{DType, Quant, TensorType};
use minnow_ir::Graph;
use minnow_passes::memory::MemoryPlanner;

fn ty(shape: &[usize], dtype: DType, scale: f32, zero_point: i32) -> TensorType {
    TensorType {
        shape: shape.to_vec(),
        dtype,
        quant: Some(Quant::PerTensor { scale, zero_point }),
    }
}

/// One op over an int8 input with small constant weights and an int32 bias; the generated C
/// without the shared runtime helpers.
fn generate(op: Op, input: &[usize], filter: &[usize], output: &[usize]) -> String {
    let mut g = Graph::new("snap");
    let x = g.add_input("x", ty(input, DType::I8, 0.5, -1));
    let n: usize = filter.iter().product();
    let weights = (0..n)
        .map(|i| (i as i8).wrapping_mul(37).wrapping_sub(60) as u8)
        .collect();
    let w = g.add_constant("w", ty(filter, DType::I8, 0.25, 0), weights);
    let channels = if matches!(op, Op::DepthwiseConv2d { .. }) {
        filter[3]
    } else {
        filter[0]
    };
    let bias = (0..channels as i32)
        .flat_map(|c| (c * 10 - 7).to_le_bytes())
        .collect();
    let b = g.add_constant("b", ty(&[channels], DType::I32, 0.125, 0), bias);
    let y = g.add_tensor("y", ty(output, DType::I8, 1.0, 3));
    g.add_op(op, vec![Some(x), Some(w), Some(b)], vec![y])
        .unwrap();
    g.outputs.push(y);
    let program = minnow_ir::lower::lower(&g).unwrap();
    let plan = MemoryPlanner::default().run(&program);
    let c = CEmitter.emit(&program, &plan);
    c.source
        .replace(RUNTIME, "/* (runtime helpers) */\n")
        .replace(env!("CARGO_PKG_VERSION"), "VERSION")
}

#[test]
fn conv2d() {
    let op = Op::Conv2d {
        weights: minnow_ir::WeightLayout::Bytes,
        window: Window::square(1, Padding::Same),
        activation: Activation::Relu,
    };
    insta::assert_snapshot!(generate(op, &[1, 3, 3, 2], &[2, 3, 3, 2], &[1, 3, 3, 2]));
}

#[test]
fn depthwise_conv2d() {
    let op = Op::DepthwiseConv2d {
        weights: minnow_ir::WeightLayout::Bytes,
        window: Window::square(2, Padding::Valid),
        depth_multiplier: 1,
        activation: Activation::None,
    };
    insta::assert_snapshot!(generate(op, &[1, 4, 4, 2], &[1, 2, 2, 2], &[1, 2, 2, 2]));
}

#[test]
fn fully_connected() {
    let op = Op::FullyConnected {
        weights: minnow_ir::WeightLayout::Bytes,
        activation: Activation::None,
        keep_num_dims: false,
    };
    insta::assert_snapshot!(generate(op, &[1, 4], &[3, 4], &[1, 3]));
}
