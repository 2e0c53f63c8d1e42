//! The Rust backend: the generated `#![no_std]` crate of every shared model, scheduled for the
//! host and for Cortex-M4 (whose schedules use the DSP intrinsics), built on the host, gives
//! every golden output bit for bit; and `minnow compile --emit rust` writes the crate.

mod common;

use common::*;
use minnow_autotune::measure::rust_host::run_crate;
use minnow_backends::rust::RustEmitter;
use std::process::Command;

#[test]
fn every_golden_vector_matches_through_the_generated_rust() {
    for (model, target, compiled) in scheduled_models() {
        let generated = RustEmitter.emit(&compiled.program, &compiled.plan);
        let lib = generated
            .files
            .iter()
            .find(|(p, _)| p.ends_with("lib.rs"))
            .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
            .unwrap();
        assert!(
            lib.contains("#![no_std]") && !lib.contains("std::"),
            "{model}"
        );
        let inputs: Vec<Vec<Vec<u8>>> = (0..vectors(model))
            .map(|i| vec![golden(model, &format!("input_{i}.bin"))])
            .collect();
        let outputs = run_crate(&generated, &inputs)
            .unwrap_or_else(|e| panic!("{model} for {}: {e}", target.name));
        for (i, got) in outputs.iter().enumerate() {
            assert!(
                got[0] == golden(model, &format!("output_{i}.bin")),
                "{model} for {} vector {i}: the generated Rust differs from TFLite Micro",
                target.name
            );
        }
    }
}

#[test]
fn compile_emit_rust_writes_a_crate_and_run_engine_rust_runs_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_minnow"))
        .arg("compile")
        .arg(model_path("kws"))
        .args(["--target", "cortex-m4", "--emit", "rust", "-o"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for file in ["Cargo.toml", "src/lib.rs", "src/runtime.rs"] {
        assert!(dir.path().join(file).is_file(), "{file}");
    }
    assert_eq!(run_engine("kws", "rust"), golden("kws", "output_0.bin"));
}
