//! Helpers shared by the end-to-end tests: where the shared models are, and their golden vectors.

#![allow(dead_code)]

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
