//! Static memory planning on the shared models: the plan is sound and the arena is no larger
//! than TensorFlow Lite Micro's for the same model.

mod common;

use common::*;
use minnow_passes::memory::{check, MemoryPlanner};

fn baseline(model: &str) -> u64 {
    let path = shared().join("baselines/tflm-cmsis-nn-cortex-m4.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    json["cortex-m4"][model]["arena_bytes"].as_u64().unwrap()
}

#[test]
fn every_shared_model_fits_in_no_more_than_tflite_micros_arena() {
    for model in MODELS {
        let bytes = std::fs::read(model_path(model)).unwrap();
        let graph = minnow_ir::import::tflite::import(&bytes, model).unwrap();
        let program = minnow_ir::lower::lower(&graph).unwrap();
        let plan = MemoryPlanner::default().run(&program);
        check(&program, &plan).unwrap_or_else(|e| panic!("{model}: {e}"));
        let tflm = baseline(model);
        eprintln!(
            "{model}: arena {} bytes, TFLite Micro {tflm}",
            plan.arena_bytes
        );
        assert!(
            plan.arena_bytes as u64 <= tflm,
            "{model}: arena {} > TFLite Micro's {tflm}",
            plan.arena_bytes
        );
    }
}
