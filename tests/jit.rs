//! The Cranelift JIT: every golden vector of every shared model, bit for bit, through the
//! program scheduled for the host and for Cortex-M4 (whose schedules call the DSP
//! intrinsics), JIT-compiled for this machine; and `minnow run --engine jit`.

mod common;

use common::*;
use minnow_backends::jit::JitProgram;

#[test]
fn every_golden_vector_matches_through_the_jit() {
    for (model, target, compiled) in scheduled_models() {
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

#[test]
fn run_engine_jit_gives_the_golden_output() {
    assert_eq!(run_engine("vww", "jit"), golden("vww", "output_0.bin"));
}
