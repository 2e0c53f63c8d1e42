//! minnow's own compile time per shared model: import, graph rewriting, lowering, tiling,
//! default schedules, memory planning and C emission (`minnow::compile`), for cortex-m4 and
//! rv32imac. The target compiler's build of the result (what `minnow compile` runs to report
//! the exact flash) is the user's build, not minnow's, and is not in these figures.
//!
//! `cargo bench --bench compile`; the README reports one run. The goal is under 2 s per model.

use criterion::{criterion_group, criterion_main, Criterion};
use std::path::PathBuf;

/// Every model in `../shared/models` (MLPerf Tiny and the TFLite Micro examples).
const MODELS: [&str; 7] = [
    "kws",
    "vww",
    "resnet8",
    "ad01",
    "micro_speech",
    "hello_world",
    "keyword_scrambled",
];

fn shared() -> PathBuf {
    std::env::var_os("MINNOW_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"))
}

fn compile_times(c: &mut Criterion) {
    let mut group = c.benchmark_group("compile");
    group.sample_size(10);
    for name in MODELS {
        let path = shared().join(format!("models/{name}.tflite"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (the shared models beside the checkout)",
                path.display()
            )
        });
        for target in ["cortex-m4", "rv32imac"] {
            let target = minnow::target(target).unwrap();
            let options = minnow::Options {
                name: name.into(),
                ..Default::default()
            };
            group.bench_function(format!("{name}/{}", target.name), |b| {
                b.iter(|| minnow::compile(&bytes, &target, &options).unwrap())
            });
        }
    }
    group.finish();
}

criterion_group!(benches, compile_times);
criterion_main!(benches);
