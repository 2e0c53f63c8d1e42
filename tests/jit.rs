//! The Cranelift JIT: every golden vector of every shared model, bit for bit, through the
//! program scheduled for the host and for Cortex-M4 (whose schedules call the DSP
//! intrinsics), JIT-compiled for this machine; and `minnow run --engine jit`.

mod common;

use common::*;
use minnow_autotune::compile::{compile, Schedules};
use minnow_backends::jit::JitProgram;
use std::process::Command;

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
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.bin");
    let run = Command::new(env!("CARGO_BIN_EXE_minnow"))
        .arg("run")
        .arg(model_path("vww"))
        .args(["--engine", "jit", "--input"])
        .arg(golden_path("vww", "input_0.bin"))
        .arg("--output")
        .arg(&output)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        std::fs::read(&output).unwrap(),
        golden("vww", "output_0.bin")
    );
}
