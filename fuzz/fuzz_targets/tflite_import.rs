//! Fuzzes the TFLite importer: any byte string must give an error or a graph that verifies.
//! Run with `cargo fuzz run tflite_import` (seed the corpus with ../shared/models/*.tflite).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(graph) = minnow_ir::import::tflite::import(data, "fuzz.tflite") {
        graph.verify().expect("an imported graph always verifies");
    }
});
