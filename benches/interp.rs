//! Reference interpreter speed on real models: one inference of kws and vww (golden input 0).
//! The baseline that the generated code and the JIT are measured against.

use criterion::{criterion_group, criterion_main, Criterion};
use minnow_ir::interp::Interpreter;
use std::path::PathBuf;

fn shared() -> PathBuf {
    std::env::var_os("MINNOW_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"))
}

fn bench_model(c: &mut Criterion, name: &str) {
    let models = shared().join("models");
    let bytes = std::fs::read(models.join(format!("{name}.tflite")))
        .expect("shared models beside the checkout");
    let graph = minnow_ir::import::tflite::import(&bytes, name).unwrap();
    let input = std::fs::read(models.join(format!("golden/{name}/input_0.bin"))).unwrap();
    let mut interp = Interpreter::new(&graph).unwrap();
    c.bench_function(&format!("interp/{name}"), |b| {
        b.iter(|| interp.run(std::slice::from_ref(&input)).unwrap())
    });
}

fn interp(c: &mut Criterion) {
    bench_model(c, "kws");
    bench_model(c, "vww");
}

criterion_group!(benches, interp);
criterion_main!(benches);
