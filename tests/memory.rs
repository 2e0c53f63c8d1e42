//! Static memory planning on the shared models, after the whole pipeline (graph rewriting,
//! scheduling, step ordering): the plan is sound, the timeline agrees with it, and the arena is
//! no larger than TensorFlow Lite Micro's for the same model.

mod common;

use common::*;
use minnow_autotune::compile::{compile, Schedules};
use minnow_passes::memory::check;

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
        let target = minnow_targets::find("cortex-m4").unwrap();
        let compiled = compile(&graph, model, &target, Schedules::Default).unwrap();
        let (program, plan) = (&compiled.program, &compiled.plan);
        check(program, plan).unwrap_or_else(|e| panic!("{model}: {e}"));
        assert!(compiled.order.arena_after <= compiled.order.arena_before);
        assert_eq!(compiled.order.arena_after, plan.arena_bytes);
        assert_eq!(plan.timeline.len(), program.steps.len());
        assert!(plan.peak_live_bytes() <= plan.arena_bytes, "{model}");
        // Each step's arena output is alive while it runs.
        for (step, live) in program.steps.iter().zip(&plan.timeline) {
            let output = program.slot(*step.args.last().unwrap());
            if output.kind == minnow_ir::loops::SlotKind::Activation {
                assert!(
                    live.tensors.contains(&output.name),
                    "{model}: {}",
                    step.name
                );
            }
        }
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
