//! Real quantized ONNX models: the shared MLPerf Tiny and TFLM models converted to ONNX QDQ
//! form by tf2onnx (tests/data/onnx/make_onnx.py). QDQ folding recovers the int8 graph, so
//! every golden vector of TFLite Micro must match bit for bit: through the interpreter, the
//! whole compiler JIT-compiled for the host, and for Cortex-M4 on the emulated board, where the
//! ONNX model must also cost what the TFLite original does.

mod common;

use common::*;
use minnow_autotune::compile::{compile, Schedules};
use minnow_backends::jit::JitProgram;
use minnow_ir::interp::Interpreter;
use std::path::PathBuf;

/// The converted models (micro_speech is left out: the converter drops a bias, see the
/// script; keyword_scrambled's SVDF has no ONNX form).
const ONNX_MODELS: &[&str] = &["kws", "vww", "resnet8", "ad01", "hello_world"];

fn onnx_path(model: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/onnx/{model}.onnx"))
}

fn load(model: &str) -> minnow_ir::Graph {
    let bytes = std::fs::read(onnx_path(model)).unwrap();
    minnow::load_graph(&bytes, &format!("{model}.onnx")).unwrap()
}

fn golden_vectors(model: &str) -> Vec<Vec<Vec<u8>>> {
    (0..vectors(model))
        .map(|i| vec![golden(model, &format!("input_{i}.bin"))])
        .collect()
}

#[test]
fn qdq_onnx_models_match_tflite_micro_on_the_host() {
    let host = minnow_targets::find("host").unwrap();
    for model in ONNX_MODELS {
        let graph = load(model);
        let float_ops: Vec<&str> = graph
            .execution_order()
            .iter()
            .map(|op| graph.node(*op))
            .filter(|n| graph.tensor(n.outputs[0]).ty.dtype == minnow_ir::DType::F32)
            .map(|n| n.op.name())
            .collect();
        assert!(
            float_ops.is_empty(),
            "{model}: ops left in float: {float_ops:?}"
        );
        let compiled = compile(
            &graph,
            model,
            &host.for_jit(),
            minnow_passes::patch::Patching::Off,
            Schedules::Default,
        )
        .unwrap();
        let mut jit = JitProgram::compile(&compiled.program, &compiled.plan).unwrap();
        for (i, input) in golden_vectors(model).iter().enumerate() {
            let want = golden(model, &format!("output_{i}.bin"));
            let interp = Interpreter::new(&graph).unwrap().run(input).unwrap();
            assert!(
                interp[0] == want,
                "{model}.onnx vector {i}: the interpreter differs from TFLite Micro"
            );
            jit.reset();
            assert!(
                jit.run(input).unwrap()[0] == want,
                "{model}.onnx vector {i}: the compiled program differs"
            );
        }
    }
}

#[test]
fn kws_onnx_on_cortex_m4_matches_and_costs_what_the_tflite_model_does() {
    let target = minnow_targets::find("cortex-m4").unwrap();
    if !tools_present(&target) {
        return;
    }
    let vectors = golden_vectors("kws");
    let onnx = measure(&load("kws"), &target, &vectors).unwrap();
    for (i, out) in onnx.outputs.iter().enumerate() {
        assert!(
            out[0] == golden("kws", &format!("output_{i}.bin")),
            "kws.onnx vector {i} on the board"
        );
    }
    let tflite_graph =
        minnow_ir::import::tflite::import(&std::fs::read(model_path("kws")).unwrap(), "kws")
            .unwrap();
    let tflite = measure(&tflite_graph, &target, &vectors).unwrap();
    let (a, b) = (
        onnx.instructions.unwrap()[0],
        tflite.instructions.unwrap()[0],
    );
    let (fa, fb) = (onnx.sections.flash(), tflite.sections.flash());
    eprintln!("kws on cortex-m4: ONNX {a} instructions, {fa} B flash; TFLite {b}, {fb} B");
    assert!(
        a as f64 <= b as f64 * 1.01,
        "the ONNX model runs {a} instructions, the TFLite one {b}"
    );
    assert!(
        fa as f64 <= fb as f64 * 1.01,
        "the ONNX model takes {fa} B of flash, the TFLite one {fb}"
    );
}
