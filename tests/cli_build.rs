//! The build-and-run commands of the CLI contract: `targets`, `compile`, `run --target`,
//! `run --engine c`, `bench --per-layer`, and their errors (unknown target, missing toolchain,
//! unsupported board).

mod common;

use common::*;
use serde_json::Value;
use std::process::{Command, Output};

fn minnow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_minnow"))
        .args(args)
        .output()
        .unwrap()
}

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn arm_tools() -> bool {
    let t = minnow_targets::find("cortex-m4").unwrap();
    let ok = t.toolchain.installed() && t.board.as_ref().unwrap().installed();
    assert!(
        ok || std::env::var("CI").is_err(),
        "CI needs gcc-arm-none-eabi and qemu-system-arm"
    );
    ok
}

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("minnow-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn targets_lists_the_contracts_names() {
    let list = json_of(&minnow(&["targets", "--json"]));
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for want in [
        "host",
        "cortex-m0plus",
        "cortex-m3",
        "cortex-m4",
        "cortex-m7",
        "cortex-m33",
        "cortex-m55",
        "rv32imc",
        "rv32imac",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let m4 = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "cortex-m4")
        .unwrap();
    assert_eq!(m4["triple"], "thumbv7em-none-eabihf");
    assert_eq!(m4["features"]["dsp"], true);
    assert_eq!(m4["board"], "mps2-an386");
    assert!(m4["toolchain_installed"].is_boolean());
}

#[test]
fn compile_writes_the_sources_and_reports_sizes() {
    let dir = temp("compile");
    let model = model_path("kws");
    let out = minnow(&[
        "compile",
        model.to_str().unwrap(),
        "--target",
        "host",
        "-o",
        dir.to_str().unwrap(),
        "--json",
    ]);
    let report = json_of(&out);
    assert_eq!(report["files"].as_array().unwrap().len(), 3);
    assert!(dir.join("kws.c").is_file() && dir.join("kws.h").is_file());
    assert!(dir.join("minnow_model.h").is_file());
    // A runtime that embeds the model drives it through the stable descriptor alone.
    let main = dir.join("embed.c");
    std::fs::write(
        &main,
        "#include <stdio.h>\n#include \"kws.h\"\n\
         static uint8_t arena[KWS_ARENA_BYTES + 8] __attribute__((aligned(8)));\n\
         int main(int argc, char **argv) {\n\
           const minnow_model *m = &kws_model;\n\
           static uint8_t in[1 << 16], out[1 << 16];\n\
           FILE *f = fopen(argv[1], \"rb\");\n\
           if (argc < 3 || !f || m->abi_version != MINNOW_ABI_VERSION || m->num_inputs != 1) return 2;\n\
           if (fread(in, 1, m->input_bytes[0], f) != m->input_bytes[0]) return 3;\n\
           fclose(f);\n\
           const void *ins[1] = {in}; void *outs[1] = {out};\n\
           m->reset(arena);\n\
           if (m->run(ins, outs, arena) != 0) return 4;\n\
           f = fopen(argv[2], \"wb\");\n\
           fwrite(out, 1, m->output_bytes[0], f);\n\
           return fclose(f);\n\
         }\n",
    )
    .unwrap();
    let exe = dir.join("embed");
    let cc = Command::new("cc")
        .args(["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&exe)
        .arg(&main)
        .arg(dir.join("kws.c"))
        .output()
        .unwrap();
    assert!(
        cc.status.success(),
        "{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    let got = dir.join("embedded_output.bin");
    let ran = Command::new(&exe)
        .arg(golden_path("kws", "input_0.bin"))
        .arg(&got)
        .status()
        .unwrap();
    assert!(ran.success());
    assert_eq!(std::fs::read(&got).unwrap(), golden("kws", "output_0.bin"));
    assert!(report["weight_bytes"].as_u64().unwrap() > 20_000);
    assert!(report["arena_bytes"].as_u64().unwrap() > 0);
    // The arena timeline: one live set per layer (kws's 12, and a padded copy of its input
    // for the first convolution when the rewriter finds the copy fits the arena), its largest
    // the peak, within the arena.
    let timeline = report["arena_timeline"].as_array().unwrap();
    let padded = timeline[0]["op"] == "PAD";
    assert_eq!(timeline.len(), 12 + usize::from(padded));
    let largest = timeline.iter().map(|l| l["bytes"].as_u64().unwrap()).max();
    assert_eq!(largest, report["arena_peak_live_bytes"].as_u64());
    assert!(largest <= report["arena_bytes"].as_u64());
    // The first depthwise layer reads the first convolution's output and writes its own.
    let depthwise = timeline
        .iter()
        .find(|l| l["op"] == "DEPTHWISE_CONV_2D")
        .unwrap();
    assert_eq!(depthwise["tensors"].as_array().unwrap().len(), 2);
    assert_eq!(report["step_order"]["exact"], true);
    let header = std::fs::read_to_string(dir.join("kws.h")).unwrap();
    assert!(header.contains(&format!(
        "#define KWS_ARENA_BYTES {}",
        report["arena_bytes"]
    )));
    let dump = minnow(&[
        "compile",
        model.to_str().unwrap(),
        "--target",
        "host",
        "-o",
        dir.to_str().unwrap(),
        "--name",
        "net",
        "--dump",
        "loops",
    ]);
    let text = String::from_utf8_lossy(&dump.stdout);
    assert!(
        (text.contains("func l0_conv_2d(") || text.contains("func l1_conv_2d("))
            && text.contains("mbqm_high_shift_offset("),
        "{text}"
    );
    assert!(dir.join("net.c").is_file());
    // A relative output directory, as users type it: the flash figure is measured there too.
    let relative = Command::new(env!("CARGO_BIN_EXE_minnow"))
        .current_dir(&dir)
        .args([
            "compile",
            model.to_str().unwrap(),
            "--target",
            "host",
            "-o",
            "rel",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(json_of(&relative)["flash_bytes"].as_u64().unwrap() > 20_000);
    assert!(dir.join("rel/kws.c").is_file());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `minnow run kws` on golden input 1 with `extra` flags; checks the output file against the
/// golden output and returns the JSON report.
fn run_kws(out: &std::path::Path, extra: &[&str]) -> Value {
    let (model, input) = (model_path("kws"), golden_path("kws", "input_1.bin"));
    let mut args = vec![
        "run",
        model.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
    ];
    args.extend(["--output", out.to_str().unwrap(), "--json"]);
    args.extend(extra);
    let report = json_of(&minnow(&args));
    assert!(
        std::fs::read(out).unwrap() == golden("kws", "output_1.bin"),
        "{extra:?}"
    );
    std::fs::remove_file(out).unwrap();
    report
}

#[test]
fn run_on_the_emulated_board_and_as_host_c_matches_the_golden_output() {
    let dir = temp("run");
    let out = dir.join("out.bin");
    assert_eq!(run_kws(&out, &["--engine", "c"])["engine"], "c");
    if arm_tools() {
        let board = run_kws(&out, &["--target", "cortex-m4"]);
        assert_eq!(board["board"], "mps2-an386");
        assert!(board["instructions"].as_u64().unwrap() > 1_000_000);
        assert!(board["flash_bytes"].as_u64().unwrap() > 20_000);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bench_per_layer_accounts_for_the_whole_inference() {
    if !arm_tools() {
        return;
    }
    let model = model_path("kws");
    let report = json_of(&minnow(&[
        "bench",
        model.to_str().unwrap(),
        "--target",
        "cortex-m4",
        "--per-layer",
        "--json",
    ]));
    let total = report["instructions"].as_u64().unwrap();
    let layers = report["layers"].as_array().unwrap();
    // kws's 12 ops and the padded copy the graph rewriter gives the first convolution, so
    // that its taps need no bounds checks and vectorize.
    assert_eq!(layers.len(), 13);
    assert_eq!(layers[0]["op"], "PAD");
    assert_eq!(layers[1]["op"], "CONV_2D");
    let sum: u64 = layers
        .iter()
        .map(|l| l["instructions"].as_u64().unwrap())
        .sum();
    // The hook itself costs a few instructions per layer; everything else is accounted for.
    assert!(
        sum.abs_diff(total) * 100 < total,
        "layers sum to {sum}, the whole run is {total}"
    );
    for key in ["target", "board", "cycles", "arena_bytes", "flash_bytes"] {
        assert!(report.get(key).is_some(), "{key}");
    }
}

#[test]
fn build_errors_name_the_problem_and_the_fix() {
    let model = model_path("kws");
    let m = model.to_str().unwrap();
    let unknown = minnow(&["bench", m, "--target", "cortex-m5"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("known targets: host"));
    // No debug probe on this machine: the error says so and how to connect one.
    let probe = minnow(&["bench", m, "--target", "cortex-m4", "--board", "probe"]);
    assert_eq!(probe.status.code(), Some(1));
    let err = String::from_utf8_lossy(&probe.stderr);
    assert!(
        err.contains("NUCLEO-F446RE")
            && err.contains("no debug probe found")
            && err.contains("udev"),
        "{err}"
    );
    let serial = minnow(&[
        "bench",
        m,
        "--target",
        "nrf52840-dk",
        "--board",
        "probe:0483:374b",
    ]);
    assert_eq!(serial.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&serial.stderr).contains("panicked"));
    let none = minnow(&["bench", m, "--target", "cortex-m0plus", "--board", "probe"]);
    assert_eq!(none.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&none.stderr).contains("nucleo-f446re"));
    let bad = minnow(&["bench", m, "--target", "cortex-m4", "--board", "probe:zz:1"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("hexadecimal"));
    // No cross compiler on PATH: the error names the Debian packages.
    let missing = Command::new(env!("CARGO_BIN_EXE_minnow"))
        .args(["bench", m, "--target", "cortex-m4"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.contains("arm-none-eabi-gcc is not installed")
            && err.contains("apt-get install gcc-arm-none-eabi"),
        "{err}"
    );
    let short = golden_path("kws", "meta.json");
    let wrong = minnow(&[
        "run",
        m,
        "--engine",
        "c",
        "--input",
        short.to_str().unwrap(),
        "--output",
        "/dev/null",
    ]);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("expects 490"));
}

/// `compile --json` for a microcontroller reports the deepest stack one inference takes (gcc's
/// `-fstack-usage`: the run function's frame and the largest layer's, which on RISC-V holds
/// the Winograd scratch block).
#[test]
fn compile_reports_the_stack_for_a_microcontroller() {
    let target = minnow_targets::find("rv32imac").unwrap();
    if !tools_present(&target) {
        return;
    }
    let dir = temp("stack");
    let model = model_path("kws");
    let out = minnow(&[
        "compile",
        model.to_str().unwrap(),
        "--target",
        "rv32imac",
        "-o",
        dir.to_str().unwrap(),
        "--json",
    ]);
    let stack = json_of(&out)["stack_bytes"]
        .as_u64()
        .expect("a stack figure");
    // The pointwise layers' scratch block alone is 640 bytes; at most 4 KiB plus frames.
    assert!((640..8192).contains(&stack), "stack {stack}");
}
