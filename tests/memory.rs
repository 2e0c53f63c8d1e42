//! Static memory planning on the shared models, after the whole pipeline (graph rewriting,
//! scheduling, step ordering): the plan is sound, the timeline agrees with it, and the arena is
//! at most 0.8 of TensorFlow Lite Micro's for the MLPerf Tiny models (0.5 for kws and vww,
//! whose layers run over their inputs; no larger for the rest).

mod common;

use common::*;
use minnow_autotune::compile::{compile, Schedules};
use minnow_backends::jit::JitProgram;
use minnow_ir::loops::reduction::Reduction;
use minnow_ir::loops::{Access, BufferKind, SlotKind};
use minnow_passes::memory::check;
use minnow_passes::patch::Patching;
use minnow_schedules::Space;
use proptest::prelude::*;

fn baseline(model: &str) -> u64 {
    let path = shared().join("baselines/tflm-cmsis-nn-cortex-m4.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    json["cortex-m4"][model]["arena_bytes"].as_u64().unwrap()
}

#[test]
fn every_shared_model_fits_in_at_most_tflite_micros_arena_and_mlperf_in_0_8_of_it() {
    for model in MODELS {
        let bytes = std::fs::read(model_path(model)).unwrap();
        let graph = minnow_ir::import::tflite::import(&bytes, model).unwrap();
        let target = minnow_targets::find("cortex-m4").unwrap();
        let compiled = compile(&graph, model, &target, Patching::Off, Schedules::Default).unwrap();
        let (program, plan) = (&compiled.program, &compiled.plan);
        check(program, plan).unwrap_or_else(|e| panic!("{model}: {e}"));
        assert!(compiled.order.arena_after <= compiled.order.arena_before);
        // The orderer compares orders with the quick planner; the final plan also breaks
        // chains, which only shrinks the arena.
        assert!(plan.arena_bytes <= compiled.order.arena_after, "{model}");
        assert_eq!(plan.timeline.len(), program.steps.len());
        assert!(plan.peak_live_bytes() <= plan.arena_bytes, "{model}");
        // Each step's arena outputs (the slots it writes) are alive while it runs.
        let mut checked = 0;
        for (step, live) in program.steps.iter().zip(&plan.timeline) {
            let params = program.funcs[step.func].params();
            for ((_, param), slot) in params.zip(&step.args) {
                let writes = matches!(
                    param.kind,
                    BufferKind::Param {
                        access: Access::Write,
                        ..
                    }
                );
                let slot = program.slot(*slot);
                if writes && slot.kind == SlotKind::Activation {
                    assert!(live.tensors.contains(&slot.name), "{model}: {}", step.name);
                    checked += 1;
                }
            }
        }
        assert!(checked > 0, "{model}: no arena output checked");
        let tflm = baseline(model);
        eprintln!(
            "{model}: arena {} bytes, TFLite Micro {tflm}",
            plan.arena_bytes
        );
        // Issue 4's goal for the MLPerf Tiny models: at most 0.8 of TFLite Micro's arena.
        // kws and vww run their depthwise and pointwise layers over their inputs (lagged
        // outputs): at most half of TFLite Micro's arena (measured: 0.45 and 0.37).
        let mlperf = ["kws", "vww", "resnet8", "ad01"].contains(model);
        let lagged = ["kws", "vww"].contains(model);
        let ceiling = match (lagged, mlperf) {
            (true, _) => 0.5,
            (false, true) => 0.8,
            (false, false) => 1.0,
        };
        assert!(
            plan.arena_bytes as f64 <= ceiling * tflm as f64,
            "{model}: arena {} > {ceiling} x TFLite Micro's {tflm}",
            plan.arena_bytes
        );
    }
}

/// kws's default plan on Cortex-M4 writes each depthwise and pointwise layer's output over the
/// input rows it is done with (`minnow_ir::loops::lag`): two 8,000-byte activations in turn
/// need far less than the 16,000 bytes of two separate buffers, and the JIT, which runs on
/// the planned arena, still gives the golden bytes.
#[test]
fn kws_runs_its_layers_over_their_inputs() {
    let bytes = std::fs::read(model_path("kws")).unwrap();
    let graph = minnow_ir::import::tflite::import(&bytes, "kws").unwrap();
    let target = minnow_targets::find("cortex-m4").unwrap();
    let compiled = compile(&graph, "kws", &target, Patching::Off, Schedules::Default).unwrap();
    let plan = &compiled.plan;
    let lagged: Vec<_> = plan.shared.iter().flatten().filter(|p| p.lag > 0).collect();
    assert!(lagged.len() >= 8, "{:?}", plan.shared);
    assert!(plan.arena_bytes < 11_000, "arena {}", plan.arena_bytes);
    check(&compiled.program, plan).unwrap();
    let mut jit = JitProgram::compile(&compiled.program, plan).unwrap();
    let got = jit.run(&[golden("kws", "input_0.bin")]).unwrap();
    assert_eq!(got[0], golden("kws", "output_0.bin"));
}

/// kws's chain of in-place layers would drift down the arena by each layer's lag (2,048
/// bytes over its four blocks: a 10,048-byte arena for 8,696 bytes alive); run from the end
/// down, every other one ends above its input instead (`DirectionAlternation`), and the
/// arena shrinks while the plan checks and the JIT on it still gives the golden bytes.
#[test]
fn kws_alternates_its_layers_direction_to_keep_its_chain_in_place() {
    let bytes = std::fs::read(model_path("kws")).unwrap();
    let graph = minnow_ir::import::tflite::import(&bytes, "kws").unwrap();
    let target = minnow_targets::find("cortex-m4").unwrap();
    let compiled = compile(&graph, "kws", &target, Patching::Off, Schedules::Default).unwrap();
    let (program, plan) = (&compiled.program, &compiled.plan);
    let above = plan.shared.iter().flatten().filter(|p| p.above).count();
    let down = program
        .steps
        .iter()
        .filter(|s| program.funcs[s.func].name.ends_with("_down"));
    assert!(above >= 2 && down.count() >= above, "{:?}", plan.shared);
    assert!(plan.arena_bytes <= 9_200, "arena {}", plan.arena_bytes);
    check(program, plan).unwrap();
    let mut jit = JitProgram::compile(program, plan).unwrap();
    let got = jit.run(&[golden("kws", "input_0.bin")]).unwrap();
    assert_eq!(got[0], golden("kws", "output_0.bin"));
}

/// Schedules `model` for `target` with the space point `pick` chooses per step, plans its
/// arena (lagged outputs where the scheduled loops allow) and runs golden vector 0 through the
/// JIT on that arena.
fn run_with_picks(model: &str, target: &str, pick: &[u8]) -> Result<(), String> {
    let bytes = std::fs::read(model_path(model)).unwrap();
    let graph = minnow_ir::import::tflite::import(&bytes, model).unwrap();
    let target = minnow_targets::find(target).unwrap();
    let choose = |step: usize, _: &Reduction, space: &Space| {
        let choices = space.choices();
        let k = choices[pick[step % pick.len()] as usize % choices.len()];
        Some(space.schedule(&k))
    };
    let compiled = compile(
        &graph,
        model,
        &target,
        Patching::Off,
        Schedules::Chosen(&choose),
    )
    .unwrap();
    check(&compiled.program, &compiled.plan)?;
    let mut jit = JitProgram::compile(&compiled.program, &compiled.plan).unwrap();
    let got = jit.run(&[golden(model, "input_0.bin")]).unwrap();
    if got[0] != golden(model, "output_0.bin") {
        return Err(format!(
            "{model} on {} with picks {pick:?}: the output differs, shared {:?}",
            target.name, compiled.plan.shared
        ));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4))]

    /// Random loop orders and blocks change which outputs lag below their inputs and by how
    /// much; every plan checks, and the JIT on the planned arena gives the golden bytes.
    #[test]
    fn lagged_outputs_keep_the_golden_bytes_under_random_schedules(
        pick in proptest::collection::vec(any::<u8>(), 1..16)
    ) {
        for (model, target) in [("kws", "cortex-m4"), ("micro_speech", "rv32imac"), ("ad01", "host")] {
            prop_assert_eq!(run_with_picks(model, target, &pick), Ok(()));
        }
    }
}
