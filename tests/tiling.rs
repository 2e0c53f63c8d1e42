//! Nests drawn from the tiling e-graph of every multiply-accumulate op of real models, and the
//! nest extraction picks, replayed as schedule traces: the scheduled program gives TFLite
//! Micro's golden bytes in the loop interpreter.

mod common;

use common::*;
use minnow_ir::loops::interp::ProgramInterp;
use minnow_ir::loops::reduction::Reduction;
use minnow_passes::loops::{LoopTiler, Machine};
use minnow_schedules::{schedule_program, Schedule, Space};

/// Schedules `model` with `nest_for` per step and checks golden vector 0.
fn check(model: &str, nest_for: &dyn Fn(usize, &Reduction) -> Schedule) {
    let bytes = std::fs::read(model_path(model)).unwrap();
    let graph = minnow_ir::import::tflite::import(&bytes, model).unwrap();
    let mut program = minnow_ir::lower::lower(&graph).unwrap();
    let choose = |step: usize, r: &Reduction, _: &Space| Some(nest_for(step, r));
    let features = minnow_targets::find("cortex-m4").unwrap().features;
    schedule_program(&mut program, &features, &choose).unwrap();
    program.verify().unwrap();
    let got = ProgramInterp::new(&program)
        .unwrap()
        .run(&[golden(model, "input_0.bin")])
        .unwrap();
    assert_eq!(got[0], golden(model, "output_0.bin"), "{model}");
}

#[test]
fn extracted_nests_replay_as_schedules_and_keep_the_golden_outputs() {
    for model in ["micro_speech", "ad01", "kws"] {
        for machine in [Machine::cortex_m(true), Machine::rv32()] {
            check(model, &|_, r| {
                let tiling = LoopTiler::default().run(r, machine).unwrap();
                let schedule = Schedule::of_nest(r, &tiling.nest);
                // The trace rebuilds the very nest, names included.
                assert_eq!(schedule.apply(r).unwrap(), tiling.nest);
                schedule
            });
        }
    }
}

#[test]
fn sampled_nests_keep_the_golden_outputs() {
    for seed in 1..4u64 {
        for model in ["micro_speech", "ad01", "kws"] {
            let state = std::cell::Cell::new(seed);
            check(model, &|_, r| {
                let space = LoopTiler::default().space(r);
                let mut pick = |n: usize| {
                    let s = state
                        .get()
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    state.set(s);
                    ((s >> 33) as usize) % n
                };
                let nest = space.sample(r, Machine::cortex_m(true), &mut pick).unwrap();
                Schedule::of_nest(r, &nest)
            });
        }
    }
}

#[test]
fn widened_weights_keep_the_golden_outputs() {
    // Every multiply-accumulate op with SIMD lanes reads its weights widened, whatever the
    // flash they cost (the default widens only where the saving pays for it).
    let widened = std::cell::Cell::new(0);
    for model in ["micro_speech", "ad01", "kws"] {
        check(model, &|_, r| {
            let machine = Machine::cortex_m(true);
            let space = LoopTiler::default().space(r);
            let tiling = match space.best_widened(r, machine) {
                Some(t) => {
                    widened.set(widened.get() + 1);
                    t
                }
                None => space.best(r, machine).unwrap(),
            };
            let schedule = Schedule::of_nest(r, &tiling.nest);
            assert_eq!(schedule.apply(r).unwrap(), tiling.nest);
            schedule
        });
    }
    assert!(widened.get() >= 10, "{} ops widened", widened.get());
}
