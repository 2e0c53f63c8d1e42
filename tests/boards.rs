//! The generated C, bit for bit against TFLite Micro's golden vectors: built with the host
//! compiler, and cross-built and run on the emulated Cortex-M and RISC-V boards (all models on
//! cortex-m4 and rv32imac, kws on every other core). Every build uses
//! `-std=c99 -Wall -Wextra -Werror`.

mod common;

use common::*;
use minnow_targets::Target;

/// Builds `model` for `target`, runs every golden vector in one program, and checks each
/// output byte for byte. Returns the instructions of the first inference, if counted.
fn check_model(model: &str, target: &Target) -> Option<u64> {
    let bytes = std::fs::read(model_path(model)).unwrap();
    let graph = minnow_ir::import::tflite::import(&bytes, model).unwrap();
    let vectors: Vec<Vec<Vec<u8>>> = (0..vectors(model))
        .map(|i| vec![golden(model, &format!("input_{i}.bin"))])
        .collect();
    let m = measure(&graph, target, &vectors)
        .unwrap_or_else(|e| panic!("{model} on {}: {e}", target.name));
    for (i, outputs) in m.outputs.iter().enumerate() {
        assert!(
            outputs[0] == golden(model, &format!("output_{i}.bin")),
            "{model} vector {i} on {}: differs from TFLite Micro",
            target.name
        );
    }
    m.instructions.map(|v| v[0])
}

/// Checks `models` on `target`, two at a time.
fn check_models(target_name: &str, models: &[&str]) {
    let target = minnow_targets::find(target_name).unwrap();
    if !tools_present(&target) {
        return;
    }
    let target = &target;
    std::thread::scope(|s| {
        for pair in models.chunks(2) {
            let handles: Vec<_> = pair
                .iter()
                .map(|m| s.spawn(move || (m, check_model(m, target))))
                .collect();
            for h in handles {
                let (m, n) = h.join().unwrap();
                eprintln!("{m} on {target_name}: {n:?} instructions");
            }
        }
    });
}

#[test]
fn every_model_is_bit_exact_as_host_c() {
    check_models("host", MODELS);
}

#[test]
fn every_model_is_bit_exact_on_the_emulated_cortex_m4() {
    check_models("cortex-m4", MODELS);
}

#[test]
fn every_model_is_bit_exact_on_the_emulated_rv32imac() {
    check_models("rv32imac", MODELS);
}

#[test]
fn kws_is_bit_exact_on_every_other_core() {
    for target in [
        "cortex-m0plus",
        "cortex-m3",
        "cortex-m7",
        "cortex-m33",
        "cortex-m55",
        "rv32imc",
    ] {
        check_models(target, &["kws"]);
    }
}

/// A small float32 network (conv, average pool, fully connected, tanh, softmax, logistic,
/// quantize), built in code since the shared models are all integer: host C and the boards
/// (hardware and soft float) give the reference interpreter's bytes.
#[test]
fn a_float_model_matches_the_interpreter_on_host_and_boards() {
    use minnow_ir::op::{Activation, Op, Padding, Window};
    use minnow_ir::types::{DType, Quant, TensorType};
    let f32t = |shape: &[usize]| TensorType::new(shape.to_vec(), DType::F32);
    let floats = |n: usize, scale: f32| -> Vec<u8> {
        (0..n)
            .flat_map(|i| (((i * 37 % 23) as f32 - 11.0) * scale).to_le_bytes())
            .collect()
    };
    let mut g = minnow_ir::Graph::new("floaty");
    let x = g.add_input("x", f32t(&[1, 6, 6, 2]));
    let w = g.add_constant("w", f32t(&[3, 3, 3, 2]), floats(54, 0.05));
    let b = g.add_constant("b", f32t(&[3]), floats(3, 0.1));
    let c = g.add_tensor("c", f32t(&[1, 6, 6, 3]));
    let conv = Op::Conv2d {
        weights: minnow_ir::WeightLayout::Bytes,
        window: Window::square(1, Padding::Same),
        activation: Activation::Relu,
    };
    g.add_op(conv, vec![Some(x), Some(w), Some(b)], vec![c])
        .unwrap();
    let p = g.add_tensor("p", f32t(&[1, 3, 3, 3]));
    let pool = Op::AvgPool2d {
        filter_h: 2,
        filter_w: 2,
        window: Window::square(2, Padding::Valid),
        activation: Activation::None,
    };
    g.add_op(pool, vec![Some(c)], vec![p]).unwrap();
    let fw = g.add_constant("fw", f32t(&[4, 27]), floats(108, 0.02));
    let f = g.add_tensor("f", f32t(&[1, 4]));
    g.add_op(
        Op::FullyConnected {
            weights: minnow_ir::WeightLayout::Bytes,
            activation: Activation::None,
            keep_num_dims: false,
        },
        vec![Some(p), Some(fw), None],
        vec![f],
    )
    .unwrap();
    // exp, logistic and tanh: minnow's own definitions must give the same bits everywhere.
    let unary = |g: &mut minnow_ir::Graph, op: Op, x, name: &str| {
        let y = g.add_tensor(name, f32t(&[1, 4]));
        g.add_op(op, vec![Some(x)], vec![y]).unwrap();
        y
    };
    let t = unary(&mut g, Op::Tanh, f, "t");
    let s = unary(&mut g, Op::Softmax { beta: 1.3 }, t, "s");
    let l = unary(&mut g, Op::Logistic, f, "l");
    g.outputs.push(l);
    let f = s;
    let q = g.add_tensor(
        "q",
        TensorType {
            shape: vec![1, 4],
            dtype: DType::I8,
            quant: Some(Quant::PerTensor {
                scale: 0.05,
                zero_point: 2,
            }),
        },
    );
    g.add_op(Op::Quantize, vec![Some(f)], vec![q]).unwrap();
    g.outputs.push(q);
    let input: Vec<u8> = (0..72)
        .flat_map(|i| ((i % 13) as f32 * 0.25 - 1.5).to_le_bytes())
        .collect();
    let want = minnow_ir::interp::Interpreter::new(&g)
        .unwrap()
        .run(std::slice::from_ref(&input))
        .unwrap();
    let vectors = vec![vec![input]];
    for name in ["host", "cortex-m4", "cortex-m0plus", "rv32imac"] {
        let target = minnow_targets::find(name).unwrap();
        if !tools_present(&target) {
            continue;
        }
        let m = measure(&g, &target, &vectors).unwrap();
        assert_eq!(m.outputs[0], want, "float model on {name}");
    }
}
