//! The ONNX importer on models built here: NCHW convolution chains whose layout transposes the
//! graph rewriter cancels, BatchNormalization folding, the CLI on `.onnx` files, and the
//! errors a user gets for models minnow cannot compile.

#[path = "support/onnx_builder.rs"]
mod onnx_builder;

use minnow_autotune::compile::{compile, Schedules};
use minnow_backends::jit::JitProgram;
use minnow_ir::import::{self, onnx};
use minnow_ir::interp::Interpreter;
use minnow_ir::Op;
use onnx_builder::*;
use proptest::prelude::*;

/// x [1,3,8,8] → Conv 3x3 (4 filters, pad 1) → Relu → Conv 3x3 (4 filters, pad 1) → MaxPool
/// 2x2 → y [1,4,4,4]; `bn` puts a BatchNormalization after the second convolution, and
/// `expose` also makes that convolution's output a graph output (so the BN cannot fold).
fn conv_chain(bn: bool, expose: bool) -> Vec<u8> {
    let pads = || vec![ints("pads", &[1, 1, 1, 1]), ints("kernel_shape", &[3, 3])];
    let mut b = Builder::new(17)
        .input(value("x", FLOAT, &[1, 3, 8, 8]))
        .init(floats("w1", &[4, 3, 3, 3], &noise(108, 1)))
        .init(floats("b1", &[4], &noise(4, 2)))
        .init(floats("w2", &[4, 4, 3, 3], &noise(144, 3)))
        .node("Conv", &["x", "w1", "b1"], &["c1"], pads())
        .node("Relu", &["c1"], &["r1"], vec![])
        .node("Conv", &["r1", "w2"], &["c2"], pads());
    let pooled = if bn {
        b = b
            .init(floats("scale", &[4], &[1.5, 0.5, -1.0, 2.0]))
            .init(floats("shift", &[4], &[0.1, -0.2, 0.3, 0.0]))
            .init(floats("mean", &[4], &[0.05, 0.0, -0.1, 0.2]))
            .init(floats("var", &[4], &[1.0, 0.25, 4.0, 0.5]))
            .node(
                "BatchNormalization",
                &["c2", "scale", "shift", "mean", "var"],
                &["n2"],
                vec![],
            );
        "n2"
    } else {
        "c2"
    };
    b = b
        .node(
            "MaxPool",
            &[pooled],
            &["y"],
            vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])],
        )
        .output(value("y", FLOAT, &[1, 4, 4, 4]));
    if expose {
        b = b.output(value("c2", FLOAT, &[1, 4, 8, 8]));
    }
    b.bytes()
}

fn transposes(g: &minnow_ir::Graph) -> usize {
    g.execution_order()
        .iter()
        .filter(|op| matches!(g.node(**op).op, Op::Transpose { .. }))
        .count()
}

/// Runs `graph` on the interpreter and, compiled for the host, on the JIT; both outputs.
fn run_both(graph: &minnow_ir::Graph, input: &[f32]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>, usize) {
    let feed = vec![le(input)];
    let interp = Interpreter::new(graph).unwrap().run(&feed).unwrap();
    let host = minnow_targets::find("host").unwrap();
    let compiled = compile(
        graph,
        "chain",
        &host,
        minnow_passes::patch::Patching::Off,
        Schedules::Default,
    )
    .unwrap();
    let compiled_transposes = compiled
        .program
        .steps
        .iter()
        .filter(|s| s.op == "TRANSPOSE")
        .count();
    let mut jit = JitProgram::compile(&compiled.program, &compiled.plan).unwrap();
    (interp, jit.run(&feed).unwrap(), compiled_transposes)
}

fn assert_close(a: &[u8], b: &[u8], what: &str) {
    let (a, b) = (from_le(a), from_le(b));
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-4 + 1e-4 * y.abs(),
            "{what}[{i}]: {x} vs {y}"
        );
    }
}

#[test]
fn nchw_transposes_cancel_between_convolutions() {
    let graph = onnx::import(&conv_chain(false, false), "chain.onnx").unwrap();
    // Each convolution and the pooling sit between an NCHW→NHWC and an NHWC→NCHW transpose...
    assert_eq!(transposes(&graph), 6);
    let input = noise(3 * 64, 7);
    let (interp, jit, compiled_transposes) = run_both(&graph, &input);
    // ...and after the layout rules only the model's own boundary keeps one each.
    assert_eq!(
        compiled_transposes, 2,
        "the layout rules left transposes inside the chain"
    );
    assert_close(&jit[0], &interp[0], "JIT vs interpreter");
}

#[test]
fn batchnorm_after_a_convolution_folds_into_its_weights() {
    let folded = onnx::import(&conv_chain(true, false), "bn.onnx").unwrap();
    let unfolded = onnx::import(&conv_chain(true, true), "bn.onnx").unwrap();
    let count = |g: &minnow_ir::Graph, name: &str| {
        g.execution_order()
            .iter()
            .filter(|op| g.node(**op).op.name() == name)
            .count()
    };
    assert_eq!((count(&folded, "mul"), count(&folded, "add")), (0, 0));
    assert_eq!((count(&unfolded, "mul"), count(&unfolded, "add")), (1, 1));
    let input = noise(3 * 64, 11);
    let (a, a_jit, _) = run_both(&folded, &input);
    let (b, _, _) = run_both(&unfolded, &input);
    assert_close(&a[0], &b[0], "folded vs unfolded BatchNormalization");
    assert_close(&a_jit[0], &b[0], "folded (JIT) vs unfolded");
}

#[test]
fn the_cli_compiles_and_runs_an_onnx_file() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("chain.onnx");
    std::fs::write(&model, conv_chain(false, false)).unwrap();
    let input = noise(3 * 64, 5);
    std::fs::write(dir.path().join("x.bin"), le(&input)).unwrap();
    let minnow = |args: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_minnow"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let c_dir = dir.path().join("c");
    minnow(&[
        "compile".as_ref(),
        model.as_ref(),
        "--target".as_ref(),
        "cortex-m4".as_ref(),
        "-o".as_ref(),
        c_dir.as_ref(),
    ]);
    assert!(c_dir.join("chain.c").exists(), "compile wrote no chain.c");
    let (x, y) = (dir.path().join("x.bin"), dir.path().join("y.bin"));
    minnow(&[
        "run".as_ref(),
        model.as_ref(),
        "--input".as_ref(),
        x.as_ref(),
        "--output".as_ref(),
        y.as_ref(),
    ]);
    let graph = onnx::import(&conv_chain(false, false), "chain.onnx").unwrap();
    let want = Interpreter::new(&graph)
        .unwrap()
        .run(&[le(&input)])
        .unwrap();
    assert_eq!(std::fs::read(dir.path().join("y.bin")).unwrap(), want[0]);
}

/// The error `bytes` gives, as text.
fn error(bytes: &[u8]) -> String {
    import::load(bytes, "bad.onnx").unwrap_err().to_string()
}

#[test]
fn unusable_models_are_clear_errors() {
    let relu = |dims: &[i64], opset: i64, op: &str| {
        Builder::new(opset)
            .input(value("x", FLOAT, dims))
            .node(op, &["x"], &["y"], vec![])
            .output(value("y", FLOAT, dims))
            .bytes()
    };
    let e = error(&relu(&[-1, 4], 17, "Relu"));
    assert!(
        e.contains("symbol \"N\"") && e.contains("static shapes"),
        "{e}"
    );
    let e = error(&relu(&[1, 4], 17, "LSTM"));
    assert!(
        e.contains("LSTM") && e.contains("Supported:") && e.contains("Conv"),
        "{e}"
    );
    let e = error(&relu(&[1, 4], 7, "Relu"));
    assert!(
        e.contains("opset 7 is outside") && e.contains("convert_version"),
        "{e}"
    );
    let e = error(&relu(&[1, 4], 17, "Relu")[..20]);
    assert!(e.contains("not a valid ONNX model"), "{e}");
    assert!(error(&[]).contains("empty"), "{}", error(&[]));
    // Weights fed as an input cannot be compiled into flash.
    let conv = Builder::new(17)
        .input(value("x", FLOAT, &[1, 1, 4, 4]))
        .input(value("w", FLOAT, &[1, 1, 3, 3]))
        .node("Conv", &["x", "w"], &["y"], vec![])
        .output(value("y", FLOAT, &[1, 1, 2, 2]))
        .bytes();
    let e = error(&conv);
    assert!(
        e.contains("Conv") && e.contains("must be a constant"),
        "{e}"
    );
    // An attribute minnow would otherwise ignore.
    let pool = Builder::new(17)
        .input(value("x", FLOAT, &[1, 1, 4, 4]))
        .node(
            "MaxPool",
            &["x"],
            &["y"],
            vec![ints("kernel_shape", &[2, 2]), int("future_option", 1)],
        )
        .output(value("y", FLOAT, &[1, 1, 3, 3]))
        .bytes();
    let e = error(&pool);
    assert!(
        e.contains("attribute future_option is not supported"),
        "{e}"
    );
}

#[test]
fn the_cli_names_the_problem_in_a_bad_onnx_file() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("lstm.onnx");
    let bytes = Builder::new(17)
        .input(value("x", FLOAT, &[1, 4]))
        .node("LSTM", &["x"], &["y"], vec![])
        .output(value("y", FLOAT, &[1, 4]))
        .bytes();
    std::fs::write(&model, bytes).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_minnow"))
        .arg("inspect")
        .arg(&model)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("LSTM") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Corrupting any bytes of a valid model gives a model or an error, never a panic.
    #[test]
    fn corrupt_models_never_panic(at in 0usize..4000, byte in any::<u8>(), cut in 0usize..4000) {
        let mut bytes = conv_chain(true, false);
        let n = bytes.len();
        bytes[at % n] = byte;
        bytes.truncate(n - cut % n);
        if let Ok(g) = import::load(&bytes, "fuzzed.onnx") {
            let _ = Interpreter::new(&g);
        }
    }
}

/// A QDQ model: x → Q → DQ → Conv (DQ'd int8 weights per channel, DQ'd int32 bias) → Relu →
/// Q → DQ → MaxPool → Q → DQ → y.
fn qdq_model() -> Vec<u8> {
    let (sx, zx, sy, zy) = (0.05f32, -3i64, 0.04f32, -128i64);
    let w_scales = [0.01f32, 0.02, 0.015, 0.03];
    let w: Vec<i64> = noise(72, 21).iter().map(|v| (v * 127.0) as i64).collect();
    let b: Vec<i64> = noise(4, 22).iter().map(|v| (v * 300.0) as i64).collect();
    let b_scales: Vec<f32> = w_scales.iter().map(|s| s * sx).collect();
    let scalar = |name: &str, v: f32| floats(name, &[], &[v]);
    let zp = |name: &str, v: i64| integers(name, INT8, &[], &[v]);
    let q = |b: Builder, x: &str, s: &str, z: &str, y: &str| {
        b.node("QuantizeLinear", &[x, s, z], &[y], vec![])
    };
    let dq = |b: Builder, x: &str, s: &str, z: &str, y: &str| {
        b.node("DequantizeLinear", &[x, s, z], &[y], vec![])
    };
    let mut m = Builder::new(17)
        .input(value("x", FLOAT, &[1, 2, 6, 6]))
        .init(scalar("sx", sx))
        .init(zp("zx", zx))
        .init(scalar("sy", sy))
        .init(zp("zy", zy))
        .init(integers("w", INT8, &[4, 2, 3, 3], &w))
        .init(floats("w_scale", &[4], &w_scales))
        .init(integers("w_zp", INT8, &[4], &[0; 4]))
        .init(integers("b", INT32, &[4], &b))
        .init(floats("b_scale", &[4], &b_scales))
        .init(integers("b_zp", INT32, &[4], &[0; 4]));
    m = q(m, "x", "sx", "zx", "xq");
    m = dq(m, "xq", "sx", "zx", "xf");
    m = m
        .node(
            "DequantizeLinear",
            &["w", "w_scale", "w_zp"],
            &["wf"],
            vec![int("axis", 0)],
        )
        .node(
            "DequantizeLinear",
            &["b", "b_scale", "b_zp"],
            &["bf"],
            vec![int("axis", 0)],
        )
        .node(
            "Conv",
            &["xf", "wf", "bf"],
            &["c"],
            vec![ints("pads", &[1, 1, 1, 1])],
        )
        .node("Relu", &["c"], &["r"], vec![]);
    m = q(m, "r", "sy", "zy", "rq");
    m = dq(m, "rq", "sy", "zy", "rf");
    m = m.node(
        "MaxPool",
        &["rf"],
        &["p"],
        vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])],
    );
    m = q(m, "p", "sy", "zy", "pq");
    m = dq(m, "pq", "sy", "zy", "y");
    m.output(value("y", FLOAT, &[1, 4, 3, 3])).bytes()
}

#[test]
fn qdq_models_fold_into_int8_kernels() {
    use minnow_passes::qdq::QdqFolder;
    let imported = onnx::import(&qdq_model(), "qdq.onnx").unwrap();
    let (folded, report) = QdqFolder::default().run(&imported).unwrap();
    assert_eq!(report.folded, vec!["conv2d", "max_pool2d"], "{report:?}");
    let float_ops: Vec<&str> = folded
        .execution_order()
        .iter()
        .map(|op| folded.node(*op))
        .filter(|n| folded.tensor(n.outputs[0]).ty.dtype == minnow_ir::DType::F32)
        .map(|n| n.op.name())
        .collect();
    assert_eq!(float_ops, vec!["dequantize"], "only the output dequantizes");
    let relu_conv = folded.execution_order().into_iter().any(|op| {
        matches!(
            folded.node(op).op,
            Op::Conv2d {
                activation: minnow_ir::Activation::Relu,
                ..
            }
        )
    });
    assert!(relu_conv, "the Relu fused into the int8 convolution");
    // The float simulation of the same QDQ graph agrees to one quantization step.
    let (simulated, _) = QdqFolder { integer_ops: false }.run(&imported).unwrap();
    let input = le(&noise(72, 23));
    let int8 = Interpreter::new(&folded)
        .unwrap()
        .run(std::slice::from_ref(&input))
        .unwrap();
    let float = Interpreter::new(&simulated)
        .unwrap()
        .run(std::slice::from_ref(&input))
        .unwrap();
    for (a, b) in from_le(&int8[0]).iter().zip(from_le(&float[0])) {
        assert!(
            (a - b).abs() <= 0.04 + 1e-6,
            "int8 {a} vs float simulation {b}"
        );
    }
    // The loading path folds too, and the compiled program is bit-exact with the interpreter.
    let loaded = minnow::load_graph(&qdq_model(), "qdq.onnx").unwrap();
    let host = minnow_targets::find("host").unwrap();
    let compiled = compile(
        &loaded,
        "qdq",
        &host,
        minnow_passes::patch::Patching::Off,
        Schedules::Default,
    )
    .unwrap();
    let mut jit = JitProgram::compile(&compiled.program, &compiled.plan).unwrap();
    assert_eq!(jit.run(&[input]).unwrap(), int8);
}
