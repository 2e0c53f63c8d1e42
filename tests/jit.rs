//! The Cranelift JIT: every golden vector of every shared model, bit for bit, through the
//! program scheduled for the host and for Cortex-M4 (whose schedules call the DSP
//! intrinsics), JIT-compiled for this machine; and `minnow run --engine jit`.

mod common;

use common::*;
use minnow_autotune::compile::{compile, Schedules};
use minnow_backends::jit::JitProgram;

#[test]
fn every_golden_vector_matches_through_the_jit() {
    for target in ["host", "cortex-m4"] {
        let target = minnow_targets::find(target).unwrap();
        for model in MODELS {
            let bytes = std::fs::read(model_path(model)).unwrap();
            let graph = minnow_ir::import::tflite::import(&bytes, model).unwrap();
            let compiled = compile(&graph, model, &target, Schedules::Default).unwrap();
            let mut jit = JitProgram::compile(&compiled.program, &compiled.plan)
                .unwrap_or_else(|e| panic!("{model} for {}: {e}", target.name));
            for i in 0..vectors(model) {
                jit.reset();
                let got = jit
                    .run(&[golden(model, &format!("input_{i}.bin"))])
                    .unwrap();
                assert!(
                    got[0] == golden(model, &format!("output_{i}.bin")),
                    "{model} for {} vector {i}: the JIT differs from TFLite Micro",
                    target.name
                );
            }
        }
    }
}

#[test]
fn run_engine_jit_gives_the_golden_output() {
    assert_eq!(run_engine("vww", "jit"), golden("vww", "output_0.bin"));
}
