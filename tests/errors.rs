//! Every failure a user can cause ends in exit code 1 and a clear one-paragraph message, never a
//! panic; a corrupted or truncated model is an error or a valid graph, never a crash.

mod common;

use common::*;
use flatbuffers::{FlatBufferBuilder, WIPOffset};
use std::process::{Command, Output};

fn minnow(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_minnow"))
        .args(args)
        .output()
        .unwrap()
}

fn temp_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("minnow-errors-{}-{name}", std::process::id()));
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Asserts exit code 1, no panic, and a message containing every one of `needles`.
fn assert_user_error(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "expected {n:?} in: {stderr}");
    }
}

/// Farm workers refuse what they cannot serve before touching the queue.
#[test]
fn farm_mistakes_say_what_to_do() {
    let worker = |extra: &[&str]| {
        let mut args: Vec<&std::ffi::OsStr> = vec!["farm".as_ref(), "worker".as_ref()];
        args.extend(extra.iter().map(|a| std::ffi::OsStr::new(*a)));
        minnow(&args)
    };
    let db = "postgres://nobody@127.0.0.1:1/farm";
    assert_user_error(
        &worker(&["--db", "farm.sqlite", "--target", "cortex-m4"]),
        &["PostgreSQL", "postgres://"],
    );
    assert_user_error(
        &worker(&["--db", db, "--target", "cortex-m4", "--board", "probe"]),
        &["no debug probe found"],
    );
    assert_user_error(
        &worker(&[
            "--db",
            db,
            "--target",
            "cortex-m4",
            "--board",
            "probe",
            "--jobs",
            "2",
        ]),
        &["one worker per probe"],
    );
    assert_user_error(
        &worker(&["--db", db, "--target", "cortex-m4", "--board", "usb"]),
        &["unknown board", "probe[:SELECTOR]"],
    );
    assert_user_error(
        &worker(&["--db", db, "--target", "cortex-m4"]),
        &["127.0.0.1:1", "cannot connect"],
    );
    assert_user_error(
        &minnow(&[
            "farm".as_ref(),
            "status".as_ref(),
            "--db".as_ref(),
            db.as_ref(),
        ]),
        &["cannot connect"],
    );
}

/// A minimal TFLite model with one operator of builtin code `builtin` on a float [1,4] tensor.
fn model_with_operator(builtin: i32) -> Vec<u8> {
    let mut b = FlatBufferBuilder::new();
    let empty = b.start_table();
    let buffer = b.end_table(empty);
    let buffers = b.create_vector(&[buffer]);
    let mut tensors = Vec::new();
    for name in ["x", "y"] {
        let shape = b.create_vector(&[1i32, 4]);
        let name = b.create_string(name);
        let t = b.start_table();
        b.push_slot_always::<WIPOffset<_>>(4, shape);
        b.push_slot::<i8>(6, 0, -1);
        b.push_slot_always::<WIPOffset<_>>(10, name);
        tensors.push(b.end_table(t));
    }
    let tensors = b.create_vector(&tensors);
    let (ins, outs) = (b.create_vector(&[0i32]), b.create_vector(&[1i32]));
    let op = b.start_table();
    b.push_slot::<u32>(4, 0, 1);
    b.push_slot_always::<WIPOffset<_>>(6, ins);
    b.push_slot_always::<WIPOffset<_>>(8, outs);
    let op = b.end_table(op);
    let operators = b.create_vector(&[op]);
    let code = b.start_table();
    b.push_slot::<i8>(4, builtin.min(127) as i8, -1);
    b.push_slot::<i32>(10, builtin, -1);
    let code = b.end_table(code);
    let codes = b.create_vector(&[code]);
    let (gin, gout) = (b.create_vector(&[0i32]), b.create_vector(&[1i32]));
    let sg = b.start_table();
    b.push_slot_always::<WIPOffset<_>>(4, tensors);
    b.push_slot_always::<WIPOffset<_>>(6, gin);
    b.push_slot_always::<WIPOffset<_>>(8, gout);
    b.push_slot_always::<WIPOffset<_>>(10, operators);
    let sg = b.end_table(sg);
    let subgraphs = b.create_vector(&[sg]);
    let m = b.start_table();
    b.push_slot::<u32>(4, 3, 0);
    b.push_slot_always::<WIPOffset<_>>(6, codes);
    b.push_slot_always::<WIPOffset<_>>(8, subgraphs);
    b.push_slot_always::<WIPOffset<_>>(12, buffers);
    let m = b.end_table(m);
    b.finish(m, Some("TFL3"));
    b.finished_data().to_vec()
}

#[test]
fn the_hand_built_model_itself_imports() {
    // RELU (19) is supported: the builder above makes a valid model.
    let g = minnow_ir::import::tflite::import(&model_with_operator(19), "relu.tflite").unwrap();
    assert_eq!(g.op_count(), 1);
    let mut it = minnow_ir::interp::Interpreter::new(&g).unwrap();
    let x: Vec<u8> = [-1.0f32, 2.0, -3.0, 4.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let y = it.run(&[x]).unwrap();
    let want: Vec<u8> = [0.0f32, 2.0, 0.0, 4.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert_eq!(y[0], want);
}

#[test]
fn an_unsupported_operator_is_named_with_its_index() {
    let p = temp_file("sqdiff.tflite", &model_with_operator(99));
    let out = minnow(&["inspect".as_ref(), p.as_os_str()]);
    assert_user_error(
        &out,
        &["SQUARED_DIFFERENCE", "operator #0", "does not support"],
    );
    let p = temp_file("custom.tflite", &model_with_operator(32));
    assert_user_error(
        &minnow(&["inspect".as_ref(), p.as_os_str()]),
        &["CUSTOM", "does not support"],
    );
}

#[test]
fn bad_model_files_are_refused_clearly() {
    let empty = temp_file("empty.tflite", b"");
    assert_user_error(
        &minnow(&["inspect".as_ref(), empty.as_os_str()]),
        &["empty"],
    );
    let text = temp_file("text.tflite", b"this is not a model at all");
    assert_user_error(&minnow(&["inspect".as_ref(), text.as_os_str()]), &["TFL3"]);
    let kws = std::fs::read(model_path("kws")).unwrap();
    let half = temp_file("half.tflite", &kws[..kws.len() / 2]);
    assert_user_error(
        &minnow(&["inspect".as_ref(), half.as_os_str()]),
        &["not a valid TFLite model"],
    );
    let missing = std::env::temp_dir().join("minnow-no-such-model.tflite");
    assert_user_error(
        &minnow(&["inspect".as_ref(), missing.as_os_str()]),
        &["cannot read the model"],
    );
}

#[test]
fn an_input_of_the_wrong_size_names_the_expected_size() {
    let out_file =
        std::env::temp_dir().join(format!("minnow-errors-{}-out.bin", std::process::id()));
    let wrong = golden_path("vww", "input_0.bin");
    let out = minnow(&[
        "run".as_ref(),
        model_path("kws").as_os_str(),
        "--input".as_ref(),
        wrong.as_os_str(),
        "--output".as_ref(),
        out_file.as_os_str(),
    ]);
    assert_user_error(&out, &["27648 bytes", "expects 490"]);
    assert!(!out_file.exists(), "nothing is written on failure");
}

#[test]
fn mismatched_engines_and_targets_say_so() {
    let (x, o) = (
        golden_path("kws", "input_0.bin"),
        std::env::temp_dir().join("minnow-errors-unused.bin"),
    );
    let base: [std::ffi::OsString; 6] = [
        "run".into(),
        model_path("kws").into_os_string(),
        "--input".into(),
        x.into_os_string(),
        "--output".into(),
        o.into_os_string(),
    ];
    let mut args: Vec<std::ffi::OsString> = base.to_vec();
    args.extend([
        "--target".into(),
        "cortex-m4".into(),
        "--engine".into(),
        "interp".into(),
    ]);
    let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    assert_user_error(&minnow(&refs), &["cortex-m4", "--target host only"]);
    // The host engines (jit, rust) do not run on a board either.
    for engine in ["jit", "rust"] {
        let mut args: Vec<std::ffi::OsString> = base.to_vec();
        args.extend([
            "--target".into(),
            "rv32imac".into(),
            "--engine".into(),
            engine.into(),
        ]);
        let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        assert_user_error(&minnow(&refs), &["rv32imac", engine, "--target host only"]);
    }
}

/// Tuning flags a build cannot honour name the problem and the flag to use instead, and a
/// database that is missing, foreign or newer is refused without touching it.
#[test]
fn tuning_mistakes_say_what_to_do() {
    let kws = model_path("kws").into_os_string();
    let run = |extra: &[&str]| {
        let mut args: Vec<&std::ffi::OsStr> = vec!["tune".as_ref(), kws.as_os_str()];
        args.extend(extra.iter().map(|a| std::ffi::OsStr::new(*a)));
        minnow(&args)
    };
    let db = std::env::temp_dir().join(format!("minnow-errors-{}-t.sqlite", std::process::id()));
    let db = db.to_str().unwrap();
    let m4 = ["--target", "cortex-m4", "--db", db];
    assert_user_error(
        &run(&[&m4[..], &["--runner", "probe"]].concat()),
        &["no debug probe found", "udev"],
    );
    assert_user_error(
        &run(&[&m4[..], &["--runner", "host"]].concat()),
        &["--runner qemu"],
    );
    assert_user_error(
        &run(&["--target", "host", "--runner", "qemu"]),
        &["no emulated board", "--runner host"],
    );
    assert_user_error(
        &run(&[
            "--target",
            "cortex-m4",
            "--db",
            "postgres://nobody@127.0.0.1:1/db",
        ]),
        &[
            "postgres://nobody@127.0.0.1:1/db",
            "cannot connect",
            "server is running",
        ],
    );
    assert_user_error(
        &run(&[
            "--target",
            "cortex-m4",
            "--runner",
            "host",
            "--db",
            "postgres://h/db",
        ]),
        &["--runner qemu or --runner probe"],
    );
    // An arena budget the default cannot meet fails before any trial or database.
    let unmade =
        std::env::temp_dir().join(format!("minnow-errors-{}-b.sqlite", std::process::id()));
    let unmade_db = unmade.to_str().unwrap();
    assert_user_error(
        &run(&[
            "--target",
            "cortex-m4",
            "--db",
            unmade_db,
            "--max-arena",
            "1000",
        ]),
        &[
            "bytes of arena even with the default schedules",
            "--patches auto",
        ],
    );
    assert!(!unmade.exists(), "no trial ran, no database was made");
    assert_user_error(
        &run(&[&m4[..], &["--prescreen", "qemu"]].concat()),
        &["--prescreen qemu is the runner itself", "host"],
    );
    assert_user_error(
        &run(&[&m4[..], &["--prescreen", "probe"]].concat()),
        &["--prescreen probe", "host or qemu"],
    );
    assert_user_error(
        &run(&[&m4[..], &["--trials", "2"]].concat()),
        &["--trials 4 or more"],
    );
    let notes: &[u8] = b"these are notes, not a database of any kind at all....";
    let text = temp_file("notes.sqlite", notes);
    let text = text.to_str().unwrap();
    assert_user_error(
        &run(&["--target", "cortex-m4", "--db", text]),
        &["notes.sqlite", "not a minnow tuning database", "--db"],
    );
    assert_eq!(
        std::fs::read(text).unwrap(),
        notes,
        "the foreign file is untouched"
    );
    let missing = std::env::temp_dir().join("minnow-errors-no-such.sqlite");
    let out = minnow(&[
        "compile".as_ref(),
        kws.as_os_str(),
        "--target".as_ref(),
        "cortex-m4".as_ref(),
        "-o".as_ref(),
        std::env::temp_dir().join("minnow-errors-out").as_os_str(),
        "--tuning-db".as_ref(),
        missing.as_os_str(),
    ]);
    assert_user_error(&out, &["no tuning database at", "minnow tune"]);
    assert!(
        !missing.exists(),
        "a mistyped --tuning-db must not create a file"
    );
    assert_user_error(
        &minnow(&["report".as_ref(), missing.as_os_str()]),
        &["no tuning database at"],
    );
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(minnow(&["inspect".as_ref()]).status.code(), Some(2));
    assert_eq!(minnow(&["frobnicate".as_ref()]).status.code(), Some(2));
}

/// A small deterministic generator (xorshift64*), so failures replay exactly.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Import must return an error or a graph that verifies; it must never panic.
fn import_never_panics(bytes: &[u8], what: &str) {
    let result = std::panic::catch_unwind(|| {
        minnow_ir::import::tflite::import(bytes, "fuzzed.tflite").map(|g| g.verify())
    });
    match result {
        Err(_) => panic!("import panicked on {what}"),
        Ok(Ok(verified)) => assert!(
            verified.is_ok(),
            "import returned a graph that fails verify on {what}"
        ),
        Ok(Err(_)) => {}
    }
}

#[test]
fn truncated_models_never_panic() {
    for model in MODELS {
        let bytes = std::fs::read(model_path(model)).unwrap();
        let step = (bytes.len() / 300).max(1);
        for len in (0..bytes.len())
            .step_by(step)
            .chain([1, 7, 8, bytes.len() - 1])
        {
            import_never_panics(&bytes[..len], &format!("{model} truncated to {len} bytes"));
        }
    }
}

#[test]
fn corrupted_models_never_panic() {
    let mut rng = Rng(0x6d69_6e6e_6f77);
    for model in MODELS {
        let original = std::fs::read(model_path(model)).unwrap();
        for trial in 0..300 {
            let mut bytes = original.clone();
            let flips = 1 + (rng.next() % 8) as usize;
            // Half the trials hit the first 2 KiB, where the tables and vtables live.
            let span = if trial % 2 == 0 {
                bytes.len().min(2048)
            } else {
                bytes.len()
            };
            for _ in 0..flips {
                let at = (rng.next() as usize) % span;
                bytes[at] = rng.next() as u8;
            }
            import_never_panics(&bytes, &format!("{model} trial {trial}"));
        }
    }
}
