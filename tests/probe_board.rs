//! On a real board (ignored: run with a board on a debug probe attached,
//! `cargo test -- --ignored probe`). The board is `MINNOW_PROBE_TARGET` (a target with a
//! real board, default `nucleo-f446re`; see `minnow targets`) and the probe
//! `MINNOW_PROBE` (`probe`, the only one attached, by default; or `probe:SERIAL`).

mod common;

use common::{golden, golden_path, model_path};
use std::process::Command;

fn board() -> (String, String) {
    let target = std::env::var("MINNOW_PROBE_TARGET").unwrap_or_else(|_| "nucleo-f446re".into());
    let probe = std::env::var("MINNOW_PROBE").unwrap_or_else(|_| "probe".into());
    (target, probe)
}

fn minnow(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_minnow"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "minnow {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// kws on the board gives TFLite Micro's golden output bit for bit, and counts cycles for
/// the whole model and for every layer.
#[test]
#[ignore = "needs a real board on a debug probe: cargo test -- --ignored probe"]
fn probe_board_runs_kws_bit_exact_and_counts_cycles() {
    let (target, probe) = board();
    let model = model_path("kws");
    let model = model.to_str().unwrap();
    let input = golden_path("kws", "input_0.bin");
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("output_0.bin");
    let run = minnow(&[
        "run",
        model,
        "--target",
        &target,
        "--board",
        &probe,
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(
        std::fs::read(&output).unwrap(),
        golden("kws", "output_0.bin")
    );
    assert!(run["cycles"].as_u64().unwrap() > 0, "{run}");
    let bench = minnow(&[
        "bench",
        model,
        "--target",
        &target,
        "--board",
        &probe,
        "--per-layer",
        "--json",
    ]);
    let cycles = bench["cycles"].as_u64().unwrap();
    let layers = bench["layers"].as_array().unwrap();
    assert!(!layers.is_empty());
    let sum: u64 = layers.iter().map(|l| l["cycles"].as_u64().unwrap()).sum();
    assert!(
        sum > 0 && sum <= cycles + cycles / 10,
        "layers {sum} vs whole {cycles}"
    );
}

/// A short tune on the board records cycles from the probe runner, and the tuned model stays
/// bit-exact.
#[test]
#[ignore = "needs a real board on a debug probe: cargo test -- --ignored probe"]
fn probe_board_tunes_kws() {
    let (target, probe) = board();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.sqlite");
    let model = model_path("kws");
    let tuned = minnow(&[
        "tune",
        model.to_str().unwrap(),
        "--target",
        &target,
        "--runner",
        "probe",
        "--probe",
        &probe,
        "--trials",
        "12",
        "--db",
        db.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(tuned["runner"], "probe", "{tuned}");
    assert_eq!(tuned["model"]["unit"], "cycles", "{tuned}");
    assert_eq!(tuned["model"]["bit_exact"], true, "{tuned}");
}
