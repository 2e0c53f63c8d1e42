//! Running a generated Rust crate on the host: the crate and a small runner binary that
//! depends on it by path are built with `cargo build --release --offline` (the crate has no
//! dependencies) in a work directory, and the runner runs each input vector through `run`.

use super::build::WorkDir;
use super::process::run_logged;
use super::MeasureError;
use minnow_backends::rust::RustCrate;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The runner: reads the input files named before `--`, runs the model once, writes the output
/// files named after it. Buffers are copied into 8-byte-aligned storage first.
const RUNNER: &str = r#"use std::process::ExitCode;

fn aligned(bytes: &[u8]) -> Vec<u64> {
    let mut words = vec![0u64; bytes.len().div_ceil(8).max(1)];
    // SAFETY: the words hold at least `bytes.len()` bytes.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), words.as_mut_ptr() as *mut u8, bytes.len()) };
    words
}

fn view(words: &mut [u64], len: usize) -> &mut [u8] {
    // SAFETY: `len` is at most the words' size in bytes.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr() as *mut u8, len) }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let split = args.iter().position(|a| a == "--").expect("inputs -- outputs");
    let mut inputs: Vec<(Vec<u64>, usize)> = args[..split]
        .iter()
        .map(|p| { let b = std::fs::read(p).expect("an input file"); (aligned(&b), b.len()) })
        .collect();
    let mut outputs: Vec<Vec<u64>> = model::OUTPUT_BYTES.iter().map(|n| vec![0u64; n.div_ceil(8).max(1)]).collect();
    let mut arena = vec![0u64; model::ARENA_BYTES.div_ceil(8).max(1)];
    let arena = view(&mut arena, model::ARENA_BYTES);
    model::reset(arena);
    let ins: Vec<&[u8]> = inputs.iter_mut().map(|(w, n)| &*view(w, *n)).collect();
    let mut outs: Vec<&mut [u8]> = outputs.iter_mut().zip(model::OUTPUT_BYTES).map(|(w, n)| view(w, n)).collect();
    if let Err(e) = model::run(&ins, &mut outs, arena) {
        eprintln!("run refused its buffers: {e:?}");
        return ExitCode::FAILURE;
    }
    for (path, out) in args[split + 1..].iter().zip(&outs) {
        std::fs::write(path, out).expect("an output file");
    }
    ExitCode::SUCCESS
}
"#;

/// Builds `model` and runs it on each of `vectors` (the bytes of each model input, per
/// inference; the state is reset before each); returns, per vector, the bytes of each output.
pub fn run_crate(
    model: &RustCrate,
    vectors: &[Vec<Vec<u8>>],
) -> Result<Vec<Vec<Vec<u8>>>, MeasureError> {
    let dir = WorkDir::new("minnow-rust-")?;
    let root = dir.path();
    model.write_to(&root.join("model"))?;
    std::fs::create_dir_all(root.join("runner/src"))?;
    std::fs::write(
        root.join("runner/Cargo.toml"),
        "[package]\nname = \"minnow-runner\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nmodel = { path = \"../model\", package = \"MODEL\" }\n\n[profile.release]\npanic = \"abort\"\n\n[workspace]\n"
            .replace("MODEL", &model.name.replace('_', "-")),
    )?;
    std::fs::write(root.join("runner/src/main.rs"), RUNNER)?;
    build(&root.join("runner"))?;
    vectors
        .iter()
        .enumerate()
        .map(|(v, inputs)| run_once(root, v, inputs, model.outputs))
        .collect()
}

/// Runs the built runner on vector number `v`.
fn run_once(
    root: &Path,
    v: usize,
    inputs: &[Vec<u8>],
    outputs: usize,
) -> Result<Vec<Vec<u8>>, MeasureError> {
    let mut run = Command::new(root.join("runner/target/release/minnow-runner"));
    for (k, bytes) in inputs.iter().enumerate() {
        let path = root.join(format!("input_{v}_{k}.bin"));
        std::fs::write(&path, bytes)?;
        run.arg(path);
    }
    run.arg("--");
    let paths: Vec<_> = (0..outputs)
        .map(|k| root.join(format!("output_{v}_{k}.bin")))
        .collect();
    run.args(&paths);
    run_logged(run, root, Duration::from_secs(600), "host")?;
    paths
        .iter()
        .map(|p| std::fs::read(p).map_err(MeasureError::from))
        .collect()
}

/// `cargo build --release --offline` in `dir`, failing with rustc's diagnostics.
fn build(dir: &Path) -> Result<(), MeasureError> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(&cargo)
        .current_dir(dir)
        .args(["build", "--release", "--offline", "--quiet"])
        .env_remove("RUSTFLAGS")
        .output()
        .map_err(|e| {
            MeasureError::MissingTool(format!(
                "cannot run {cargo} ({e}): the Rust engine builds the generated crate with cargo; install Rust from https://rustup.rs"
            ))
        })?;
    if !out.status.success() {
        return Err(MeasureError::Compile {
            compiler: cargo,
            target: "host".into(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(())
}
