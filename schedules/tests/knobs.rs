//! Random points of every op's schedule space, on real models: the scheduled program (weights
//! packed for its loop nests, SMLADs where chosen) gives TFLite Micro's golden bytes in the loop
//! interpreter.

use minnow_ir::loops::interp::ProgramInterp;
use minnow_ir::loops::reduction::Reduction;
use minnow_schedules::{schedule_program, Space};
use proptest::prelude::*;
use std::path::PathBuf;

fn shared(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared")
        .join(path)
}

/// Schedules `model` with the space point `pick` chooses per step and checks golden vector 0.
fn check(model: &str, pick: &[u8]) {
    let bytes = std::fs::read(shared(&format!("models/{model}.tflite"))).unwrap();
    let graph = minnow_ir::import::tflite::import(&bytes, model).unwrap();
    let mut program = minnow_ir::lower::lower(&graph).unwrap();
    let choose = |step: usize, _: &Reduction, space: &Space| {
        let choices = space.choices();
        let k = choices[pick[step % pick.len()] as usize % choices.len()];
        Some(space.schedule(&k))
    };
    let features = minnow_targets::find("cortex-m4").unwrap().features;
    schedule_program(&mut program, &features, &choose).unwrap();
    program.verify().unwrap();
    let golden = |f: &str| std::fs::read(shared(&format!("models/golden/{model}/{f}"))).unwrap();
    let got = ProgramInterp::new(&program)
        .unwrap()
        .run(&[golden("input_0.bin")])
        .unwrap();
    assert_eq!(
        got[0],
        golden("output_0.bin"),
        "{model} with picks {pick:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3))]

    #[test]
    fn random_schedules_keep_the_golden_outputs(pick in proptest::collection::vec(any::<u8>(), 1..16)) {
        for model in ["micro_speech", "ad01", "kws"] {
            check(model, &pick);
        }
    }
}

#[test]
fn every_schedule_trace_replays_from_json() {
    let bytes = std::fs::read(shared("models/kws.tflite")).unwrap();
    let graph = minnow_ir::import::tflite::import(&bytes, "kws").unwrap();
    let program = minnow_ir::lower::lower(&graph).unwrap();
    for step in program.steps.iter().filter_map(|s| s.reduction.as_ref()) {
        let space = Space::of(step);
        for k in space.choices() {
            let s = space.schedule(&k);
            let replayed: minnow_schedules::Schedule =
                serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
            assert_eq!(replayed.apply(step).unwrap(), s.apply(step).unwrap());
        }
    }
}
