//! The loop IR: every golden vector of every shared model, bit for bit, through the lowered
//! program's own interpreter; and the `--dump loops` text form.

mod common;

use common::*;
use minnow_ir::loops::interp::ProgramInterp;

#[test]
fn every_golden_vector_matches_through_the_loop_interpreter() {
    for model in MODELS {
        let bytes = std::fs::read(model_path(model)).unwrap();
        let graph = minnow_ir::import::tflite::import(&bytes, model).unwrap();
        let program = minnow_ir::lower::lower(&graph).unwrap();
        program.verify().unwrap();
        for i in 0..vectors(model) {
            let mut interp = ProgramInterp::new(&program).unwrap();
            let got = interp
                .run(&[golden(model, &format!("input_{i}.bin"))])
                .unwrap_or_else(|e| panic!("{model}: {e}"));
            assert!(
                got[0] == golden(model, &format!("output_{i}.bin")),
                "{model} vector {i}: the loop interpreter differs from TFLite Micro"
            );
        }
    }
}
