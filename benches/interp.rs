//! Engine speed on real models, one inference of kws and vww (golden input 0), side by side:
//! the reference interpreter (the baseline, `--engine interp`), the loop-IR interpreter
//! running the very program the JIT compiles, the Cranelift JIT (the host's schedules as the
//! JIT compiles for it, `Target::for_jit`, and for comparison the C target's), and the
//! generated C built by the host compiler at -O2 into a shared library loaded in-process
//! (the host target's default schedules).
//!
//! `cargo bench --bench interp`; the README reports the ratios of one run.

use criterion::{criterion_group, criterion_main, Criterion};
use minnow_autotune::compile::{compile, Schedules};
use minnow_backends::jit::JitProgram;
use minnow_ir::interp::Interpreter;
use minnow_ir::loops::interp::ProgramInterp;
use minnow_passes::patch::Patching;
use std::path::PathBuf;
use std::process::Command;

fn shared() -> PathBuf {
    std::env::var_os("MINNOW_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"))
}

type RunFn = unsafe extern "C" fn(*const *const u8, *const *mut u8, *mut u8) -> i32;

/// The generated C of `compiled` as a shared library, and its `NAME_run`.
fn host_c(
    compiled: &minnow_autotune::compile::Compiled,
    dir: &std::path::Path,
) -> libloading::Library {
    let files = compiled.source.write_to(dir).unwrap();
    let so = dir.join("model.so");
    let status = Command::new("cc")
        .args([
            "-std=c99",
            "-O2",
            "-ffp-contract=off",
            "-shared",
            "-fPIC",
            "-o",
        ])
        .arg(&so)
        .arg(files.last().unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    // SAFETY: the library is the generated model; its initialisers are only static data.
    unsafe { libloading::Library::new(&so).unwrap() }
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
    let host = minnow_targets::find("host").unwrap();
    let for_jit = compile(
        &graph,
        name,
        &host.for_jit(),
        Patching::Off,
        Schedules::Default,
    )
    .unwrap();
    let mut loops = ProgramInterp::new(&for_jit.program).unwrap();
    let mut group = c.benchmark_group(format!("loop-interp/{name}"));
    group.sample_size(10);
    group.bench_function("run", |b| {
        b.iter(|| loops.run(std::slice::from_ref(&input)).unwrap())
    });
    group.finish();
    let mut jit = JitProgram::compile(&for_jit.program, &for_jit.plan).unwrap();
    jit.reset();
    c.bench_function(&format!("jit/{name}"), |b| {
        b.iter(|| jit.run(std::slice::from_ref(&input)).unwrap())
    });
    let compiled = compile(&graph, name, &host, Patching::Off, Schedules::Default).unwrap();
    let mut jit = JitProgram::compile(&compiled.program, &compiled.plan).unwrap();
    jit.reset();
    c.bench_function(&format!("jit-c-schedules/{name}"), |b| {
        b.iter(|| jit.run(std::slice::from_ref(&input)).unwrap())
    });
    let dir = tempfile::tempdir().unwrap();
    let library = host_c(&compiled, dir.path());
    // SAFETY: `NAME_run` has this signature (the generated header's).
    let run: libloading::Symbol<RunFn> =
        unsafe { library.get(format!("{name}_run").as_bytes()).unwrap() };
    let mut arena = vec![0u64; compiled.plan.arena_bytes.div_ceil(8) + 1];
    let mut output = vec![0u64; 4096];
    c.bench_function(&format!("c/{name}"), |b| {
        b.iter(|| {
            let inputs = [input.as_ptr()];
            let outputs = [output.as_mut_ptr() as *mut u8];
            // SAFETY: the buffers are at least as large as the model's tensors and arena.
            unsafe {
                run(
                    inputs.as_ptr(),
                    outputs.as_ptr(),
                    arena.as_mut_ptr() as *mut u8,
                )
            }
        })
    });
}

fn engines(c: &mut Criterion) {
    bench_model(c, "kws");
    bench_model(c, "vww");
}

criterion_group!(benches, engines);
criterion_main!(benches);
