//! int16 kernels against TFLite Micro: single-op models with golden outputs from its reference
//! kernels (`tests/data/int16/make_int16.py`), through the graph interpreter, the loop
//! interpreter, host C, the emulated Cortex-M4 and the emulated RV32IMAC.

mod common;

use common::*;
use minnow_ir::interp::Interpreter;
use minnow_ir::loops::interp::ProgramInterp;
use std::path::PathBuf;

const CASES: &[&str] = &[
    "softmax_int16",
    "softmax_int16_beta",
    "add_int16",
    "mul_int16",
    "logistic_int16_pot",
    "logistic_int16",
    "tanh_int16_pot",
    "tanh_int16",
    "dequantize_int16",
];

fn data(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/int16")
        .join(file)
}

#[test]
fn int16_kernels_match_tflite_micro_everywhere() {
    for case in CASES {
        let bytes = std::fs::read(data(&format!("{case}.tflite"))).unwrap();
        let graph = minnow_ir::import::tflite::import(&bytes, case).unwrap();
        let inputs: Vec<Vec<u8>> = (0..graph.inputs.len())
            .map(|k| std::fs::read(data(&format!("{case}.input_{k}.bin"))).unwrap())
            .collect();
        let want = std::fs::read(data(&format!("{case}.output.bin"))).unwrap();
        let got = Interpreter::new(&graph).unwrap().run(&inputs).unwrap();
        assert!(
            got[0] == want,
            "{case}: the interpreter differs from TFLite Micro"
        );
        let program = minnow_ir::lower::lower(&graph).unwrap();
        let got = ProgramInterp::new(&program).unwrap().run(&inputs).unwrap();
        assert!(
            got[0] == want,
            "{case}: the loop interpreter differs from TFLite Micro"
        );
        for target in ["host", "cortex-m4", "rv32imac"] {
            let target = minnow_targets::find(target).unwrap();
            if !tools_present(&target) {
                continue;
            }
            let m = measure(&graph, &target, std::slice::from_ref(&inputs)).unwrap();
            assert!(
                m.outputs[0][0] == want,
                "{case} on {}: differs from TFLite Micro",
                target.name
            );
        }
    }
}
