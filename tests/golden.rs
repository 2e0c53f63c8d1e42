//! End-to-end: every golden vector of every shared model, bit for bit, through the library and
//! through the CLI; and `inspect --json` against each model's meta.json.

mod common;

use common::*;
use minnow_ir::interp::Interpreter;
use std::process::Command;

#[test]
fn every_golden_vector_matches_through_the_library() {
    for model in MODELS {
        let bytes = std::fs::read(model_path(model)).unwrap();
        let graph = minnow_ir::import::tflite::import(&bytes, model).unwrap();
        for i in 0..vectors(model) {
            // A fresh interpreter per vector: the golden outputs start from zeroed state (SVDF).
            let mut interp = Interpreter::new(&graph).unwrap();
            let got = interp
                .run(&[golden(model, &format!("input_{i}.bin"))])
                .unwrap();
            assert_eq!(got.len(), 1, "{model}: one output");
            assert!(
                got[0] == golden(model, &format!("output_{i}.bin")),
                "{model} vector {i} differs from TFLite Micro"
            );
        }
    }
}

#[test]
fn state_persists_across_runs_until_reset() {
    let bytes = std::fs::read(model_path("keyword_scrambled")).unwrap();
    let graph = minnow_ir::import::tflite::import(&bytes, "keyword_scrambled").unwrap();
    let mut interp = Interpreter::new(&graph).unwrap();
    let x = golden("keyword_scrambled", "input_0.bin");
    let first = interp.run(std::slice::from_ref(&x)).unwrap();
    let _ = interp
        .run(&[golden("keyword_scrambled", "input_1.bin")])
        .unwrap();
    interp.reset();
    assert_eq!(interp.run(&[x]).unwrap(), first);
}

#[test]
fn every_golden_vector_matches_through_the_cli() {
    let dir = std::env::temp_dir().join(format!("minnow-golden-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for model in MODELS {
        for i in 0..vectors(model) {
            let out = dir.join(format!("{model}_{i}.bin"));
            let status = Command::new(env!("CARGO_BIN_EXE_minnow"))
                .arg("run")
                .arg(model_path(model))
                .arg("--input")
                .arg(golden_path(model, &format!("input_{i}.bin")))
                .arg("--output")
                .arg(&out)
                .output()
                .unwrap();
            assert!(
                status.status.success(),
                "{model}: {}",
                String::from_utf8_lossy(&status.stderr)
            );
            assert!(
                std::fs::read(&out).unwrap() == golden(model, &format!("output_{i}.bin")),
                "{model} vector {i} via CLI"
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn inspect_json_matches_the_golden_meta() {
    for model in MODELS {
        let out = Command::new(env!("CARGO_BIN_EXE_minnow"))
            .arg("inspect")
            .arg(model_path(model))
            .arg("--json")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{model}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let meta = meta(model);
        assert_eq!(got["macs"], meta["macs"], "{model} MACs");
        assert_eq!(got["ops"], meta["ops"], "{model} op counts");
        for key in ["inputs", "outputs"] {
            let (g, m) = (got[key].as_array().unwrap(), meta[key].as_array().unwrap());
            assert_eq!(g.len(), m.len(), "{model} {key}");
            for (g, m) in g.iter().zip(m) {
                assert_eq!(g["shape"], m["shape"], "{model} {key} shape");
                assert_eq!(g["dtype"], m["dtype"], "{model} {key} dtype");
                assert_eq!(g["zero_point"], m["zero_point"], "{model} {key} zero point");
                let (gs, ms) = (g["scale"].as_f64().unwrap(), m["scale"].as_f64().unwrap());
                assert!(
                    (gs - ms).abs() <= 1e-6 * ms.abs(),
                    "{model} {key} scale {gs} vs {ms}"
                );
            }
        }
        assert!(got["weight_bytes"].as_u64().unwrap() > 0);
    }
}

#[test]
fn run_json_reports_the_host_run() {
    let out_file = std::env::temp_dir().join(format!("minnow-run-json-{}.bin", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_minnow"))
        .args([
            "run",
            model_path("hello_world").to_str().unwrap(),
            "--json",
            "--input",
        ])
        .arg(golden_path("hello_world", "input_0.bin"))
        .arg("--output")
        .arg(&out_file)
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["target"], "host");
    assert_eq!(v["engine"], "interp");
    assert!(v["instructions"].is_null() && v["arena_bytes"].is_null());
    assert_eq!(v["outputs"][0], out_file.to_str().unwrap());
    std::fs::remove_file(out_file).unwrap();
}
