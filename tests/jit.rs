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

#[test]
fn a_timed_run_gives_the_outputs_and_a_time_per_step() {
    let (model, _, compiled) = scheduled_models()
        .into_iter()
        .find(|(model, _, _)| *model == "kws")
        .expect("kws is a shared model");
    let mut jit = JitProgram::compile(&compiled.program, &compiled.plan).unwrap();
    jit.reset();
    let (got, times) = jit.run_timed(&[golden(model, "input_0.bin")]).unwrap();
    assert_eq!(got[0], golden(model, "output_0.bin"));
    assert_eq!(times.len(), compiled.program.steps.len());
}
