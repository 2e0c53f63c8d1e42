//! Helpers shared by the end-to-end tests: where the shared models are, and their golden vectors.

#![allow(dead_code)]

use minnow_autotune::compile::{compile, Compiled, Schedules};
use minnow_autotune::measure::{measure_on_target, Build, MeasureError, Measurement};
use minnow_passes::patch::Patching;
use minnow_targets::Target;
use std::path::PathBuf;

/// Every shared model with golden vectors.
pub const MODELS: &[&str] = &[
    "kws",
    "vww",
    "resnet8",
    "ad01",
    "hello_world",
    "micro_speech",
    "keyword_scrambled",
];

/// The `shared` folder beside the checkout (`MINNOW_SHARED` overrides it).
pub fn shared() -> PathBuf {
    let dir = std::env::var_os("MINNOW_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    assert!(
        dir.join("models").is_dir(),
        "the shared models are not at {}: clone minnow beside `shared/` or set MINNOW_SHARED",
        dir.display()
    );
    dir
}

/// Path of a model file.
pub fn model_path(name: &str) -> PathBuf {
    shared().join("models").join(format!("{name}.tflite"))
}

/// Path of a golden file (`input_0.bin`, `output_2.bin`, `meta.json`).
pub fn golden_path(name: &str, file: &str) -> PathBuf {
    shared().join("models/golden").join(name).join(file)
}

/// Bytes of a golden file.
pub fn golden(name: &str, file: &str) -> Vec<u8> {
    std::fs::read(golden_path(name, file)).unwrap()
}

/// The golden meta.json of a model.
pub fn meta(name: &str) -> serde_json::Value {
    serde_json::from_slice(&golden(name, "meta.json")).unwrap()
}

/// Number of golden vectors of a model.
pub fn vectors(name: &str) -> usize {
    meta(name)["vectors"].as_u64().unwrap() as usize
}

/// Whether the target's compiler (and board) are installed. In CI a missing tool fails the
/// test with the package to install; elsewhere the test says what it skipped.
pub fn tools_present(target: &Target) -> bool {
    let mut missing = Vec::new();
    if !target.toolchain.installed() {
        missing.push(target.toolchain.missing_message(target.name));
    }
    if let Some(b) = target.board.as_ref().filter(|b| !b.installed()) {
        missing.push(b.missing_message());
    }
    if missing.is_empty() {
        return true;
    }
    let message = missing.join("; ");
    assert!(std::env::var("CI").is_err(), "{message}");
    eprintln!("SKIPPED (tool missing): {message}");
    false
}

/// Compiles `graph` to C and runs `vectors` through it on `target` (host C or its board).
pub fn measure(
    graph: &minnow_ir::Graph,
    target: &Target,
    vectors: &[Vec<Vec<u8>>],
) -> Result<Measurement, MeasureError> {
    measure_with(graph, target, Schedules::Default, vectors).map(|(_, m)| m)
}

/// [`measure`] under `schedules`, with what was compiled.
pub fn measure_with(
    graph: &minnow_ir::Graph,
    target: &Target,
    schedules: Schedules,
    vectors: &[Vec<Vec<u8>>],
) -> Result<(Compiled, Measurement), MeasureError> {
    measure_patched(graph, target, Patching::Off, schedules, vectors)
}

/// [`measure_with`], the first layers in bands as `patching` says.
pub fn measure_patched(
    graph: &minnow_ir::Graph,
    target: &Target,
    patching: Patching,
    schedules: Schedules,
    vectors: &[Vec<Vec<u8>>],
) -> Result<(Compiled, Measurement), MeasureError> {
    let compiled = compile(graph, &graph.name, target, patching, schedules).unwrap();
    let build = Build {
        target,
        source: &compiled.source,
        vectors,
        per_layer: false,
    };
    let measured = measure_on_target(&build)?;
    Ok((compiled, measured))
}

/// The output bytes of `minnow run MODEL --engine ENGINE` on the model's golden `input_0`.
pub fn run_engine(model: &str, engine: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.bin");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_minnow"))
        .arg("run")
        .arg(model_path(model))
        .args(["--engine", engine, "--input"])
        .arg(golden_path(model, "input_0.bin"))
        .arg("--output")
        .arg(&output)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    std::fs::read(&output).unwrap()
}

/// Every shared model compiled with the default schedules for the host's C, for the host as
/// the JIT compiles for it (blocks of eight channels by up to five pixels, which the JIT runs
/// as SIMD) and for Cortex-M4 (whose schedules call the DSP intrinsics): what the host
/// engines are checked on.
pub fn scheduled_models() -> Vec<(&'static str, Target, Compiled)> {
    let mut all = Vec::new();
    let host = minnow_targets::find("host").unwrap();
    let targets = [
        host.clone(),
        host.for_jit(),
        minnow_targets::find("cortex-m4").unwrap(),
    ];
    for target in targets {
        for model in MODELS {
            let bytes = std::fs::read(model_path(model)).unwrap();
            let graph = minnow_ir::import::tflite::import(&bytes, model).unwrap();
            let compiled =
                compile(&graph, model, &target, Patching::Off, Schedules::Default).unwrap();
            all.push((*model, target.clone(), compiled));
        }
    }
    all
}
