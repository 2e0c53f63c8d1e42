//! The autotuner end to end: resuming measures nothing new, the same seed gives the same
//! records, failing candidates are recorded and never chosen, and a model built with
//! tuning records stays bit-exact on every shared model.

mod common;

use common::{golden, golden_path, model_path, tools_present, MODELS};
use minnow_autotune::apply::compile_tuned;
use minnow_autotune::candidate::Candidates;
use minnow_autotune::db::{Record, SqliteDb, Status, TuningDb};
use minnow_autotune::measure::host::HostMeasurer;
use minnow_autotune::measure::qemu::QemuMeasurer;
use minnow_autotune::measure::{Build, MeasureError, Measurement, Measurer};
use minnow_autotune::search::Strategy;
use minnow_autotune::task::{extract_tasks, Task};
use minnow_autotune::trial::Prescreen;
use minnow_autotune::tuner::{TuneOptions, TuneResult, Tuner};
use minnow_passes::patch::Patching;
use minnow_targets::Target;
use rand::SeedableRng;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

fn load(model: &str) -> minnow_ir::Graph {
    let bytes = std::fs::read(model_path(model)).unwrap();
    minnow_ir::import::tflite::import(&bytes, model).unwrap()
}

fn tasks(model: &str, target: &Target) -> Vec<Task> {
    let lowered =
        minnow_autotune::compile::lower(&load(model), model, target, Patching::Off).unwrap();
    extract_tasks(&lowered, target, None).unwrap()
}

/// Model-guided tuning with seed 7, two measurements at a time.
fn tune(
    tasks: &[Task],
    target: &Target,
    measurer: &(dyn Measurer + Sync),
    db: &mut dyn TuningDb,
    trials: usize,
) -> TuneResult {
    let options = TuneOptions {
        trials,
        seed: 7,
        parallel: 2,
        strategy: Strategy::Model,
    };
    tune_with(tasks, target, measurer, db, options)
}

fn tune_with(
    tasks: &[Task],
    target: &Target,
    measurer: &(dyn Measurer + Sync),
    db: &mut dyn TuningDb,
    options: TuneOptions,
) -> TuneResult {
    tune_screened(tasks, target, measurer, None, db, options)
}

fn tune_screened(
    tasks: &[Task],
    target: &Target,
    measurer: &(dyn Measurer + Sync),
    prescreen: Option<Prescreen>,
    db: &mut dyn TuningDb,
    options: TuneOptions,
) -> TuneResult {
    let mut quiet = |_: &_| {};
    Tuner {
        model: "test",
        target,
        measurer,
        prescreen,
        db,
        options,
        observer: &mut quiet,
    }
    .tune(tasks)
    .unwrap()
}

/// What a record says apart from when and where it was written.
fn essence(r: &Record) -> (String, String, Status, Option<u64>, String) {
    let schedule = serde_json::to_string(&r.schedule).unwrap();
    (
        r.key.0.clone(),
        schedule,
        r.status,
        r.figure.map(|f| f as u64),
        r.origin.clone(),
    )
}

/// On the emulated board: a second run with the same arguments measures nothing and gives
/// the same result; a fresh database with the same seed gets the same records; more trials
/// replay the first run and measure only the rest.
#[test]
fn resume_and_determinism_on_the_emulated_board() {
    let target = minnow_targets::find("cortex-m4").unwrap();
    if !tools_present(&target) {
        return;
    }
    let tasks = tasks("kws", &target);
    let qemu = QemuMeasurer::default();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kws.sqlite");
    let mut db = SqliteDb::open(&path).unwrap();
    let first = tune(&tasks, &target, &qemu, &mut db, 12);
    assert_eq!(first.tasks.iter().map(|t| t.trials).sum::<usize>(), 12);
    assert_eq!(first.tasks.iter().map(|t| t.measured).sum::<usize>(), 12);
    assert_eq!(db.all().unwrap().len(), 12);

    let again = tune(&tasks, &target, &qemu, &mut db, 12);
    assert_eq!(
        again.tasks.iter().map(|t| t.measured).sum::<usize>(),
        0,
        "resume measured again"
    );
    assert_eq!(
        again.tasks,
        first
            .tasks
            .iter()
            .map(|t| minnow_autotune::tuner::TaskResult {
                measured: 0,
                ..t.clone()
            })
            .collect::<Vec<_>>()
    );
    assert_eq!(db.all().unwrap().len(), 12);

    let mut fresh = SqliteDb::in_memory().unwrap();
    tune(&tasks, &target, &qemu, &mut fresh, 12);
    let a: Vec<_> = db.all().unwrap().iter().map(essence).collect();
    let b: Vec<_> = fresh.all().unwrap().iter().map(essence).collect();
    assert_eq!(a, b, "the same seed must give the same records");

    let more = tune(&tasks, &target, &qemu, &mut db, 16);
    assert_eq!(more.tasks.iter().map(|t| t.measured).sum::<usize>(), 4);
    assert!(more
        .tasks
        .iter()
        .zip(&first.tasks)
        .all(|(m, f)| m.best <= f.best));
}

/// A host measurer that counts the candidates it runs and, where `breaks`, breaks some: the
/// second run times out, the third gives wrong bytes, the fourth crashes.
struct Flaky {
    host: HostMeasurer,
    calls: AtomicUsize,
    breaks: bool,
    runner: &'static str,
}

impl Flaky {
    /// Breaks the second to fourth candidates, as the `host` runner.
    fn breaking() -> Flaky {
        Flaky {
            host: HostMeasurer::default(),
            calls: AtomicUsize::new(0),
            breaks: true,
            runner: "host",
        }
    }

    /// Breaks none, as `runner`.
    fn counting(runner: &'static str) -> Flaky {
        Flaky {
            breaks: false,
            runner,
            ..Flaky::breaking()
        }
    }
}

impl Measurer for Flaky {
    fn measure(&self, build: &Build) -> Result<Measurement, MeasureError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        match call {
            1 if self.breaks => Err(MeasureError::Timeout {
                board: "flaky".into(),
                seconds: 1.0,
            }),
            3 if self.breaks => Err(MeasureError::Run {
                board: "flaky".into(),
                message: "it crashed".into(),
            }),
            _ => {
                let mut m = self.host.measure(build)?;
                if call == 2 && self.breaks {
                    m.outputs[0][0][0] ^= 1;
                }
                Ok(m)
            }
        }
    }

    fn runner(&self) -> &'static str {
        self.runner
    }

    fn unit(&self) -> &'static str {
        "nanoseconds"
    }
}

/// Asserts that the second to fourth records are the timeout, the wrong bytes and the crash
/// of [`Flaky::breaking`].
fn assert_broken_by_flaky(records: &[Record]) {
    let status: Vec<Status> = records.iter().map(|r| r.status).collect();
    assert_eq!(
        status[1..4],
        [Status::Timeout, Status::Wrong, Status::Failed],
        "{records:#?}"
    );
}

/// Eight model-guided trials with seed 1, one at a time (so the calls come in the order of
/// the candidates).
fn one_at_a_time() -> TuneOptions {
    TuneOptions {
        trials: 8,
        seed: 1,
        parallel: 1,
        strategy: Strategy::Model,
    }
}

/// Wrong, crashing and hanging candidates are recorded with their status and message, are
/// never chosen, and are not measured again on resume.
#[test]
fn failing_candidates_are_recorded_and_skipped() {
    let target = minnow_targets::find("host").unwrap();
    let tasks = tasks("hello_world", &target);
    let flaky = Flaky::breaking();
    let mut db = SqliteDb::in_memory().unwrap();
    let options = one_at_a_time();
    let result = tune_with(&tasks, &target, &flaky, &mut db, options);
    let records = db.all().unwrap();
    assert_broken_by_flaky(&records);
    for r in &records[1..4] {
        assert!(r.figure.is_none() && r.message.is_some(), "{r:?}");
    }
    assert!(records[2]
        .message
        .as_ref()
        .unwrap()
        .contains("differ from the reference"));
    assert_eq!(result.tasks.iter().map(|t| t.invalid).sum::<usize>(), 3);
    // Whatever is chosen is a valid record.
    for t in &tasks {
        if let Some(best) = db.best(&t.key, target.name).unwrap() {
            assert_eq!(best.status, Status::Ok);
        }
    }
    let bad: Vec<_> = records[1..4].iter().map(|r| r.schedule.clone()).collect();
    let calls = flaky.calls.load(Ordering::SeqCst);
    tune_with(&tasks, &target, &flaky, &mut db, options);
    assert_eq!(
        flaky.calls.load(Ordering::SeqCst),
        calls,
        "resume measured again"
    );
    let best: Vec<_> = tasks
        .iter()
        .filter_map(|t| db.best(&t.key, target.name).unwrap())
        .collect();
    assert!(best.iter().all(|b| !bad.contains(&b.schedule)));
}

/// With a pre-screen, the candidates it finds hanging, wrong or crashing are recorded with
/// that status for the board's runner, their message naming the pre-screen, and never reach
/// the board; the rest are measured on the board as without one.
#[test]
fn a_prescreen_keeps_failing_candidates_off_the_board() {
    let target = minnow_targets::find("host").unwrap();
    let tasks = tasks("hello_world", &target);
    let flaky = Flaky::breaking();
    let board = Flaky::counting("board");
    let screen = Prescreen {
        target: &target,
        measurer: &flaky,
    };
    let mut db = SqliteDb::in_memory().unwrap();
    let options = one_at_a_time();
    tune_screened(&tasks, &target, &board, Some(screen), &mut db, options);
    let records = db.all().unwrap();
    assert_eq!(records.len(), 8);
    assert_broken_by_flaky(&records);
    for r in &records[1..4] {
        let message = r.message.as_deref().unwrap_or_default();
        assert!(message.contains("failed the host pre-screen"), "{r:?}");
        assert_eq!(r.runner, "board");
    }
    assert_eq!(flaky.calls.load(Ordering::SeqCst), 8);
    assert_eq!(
        board.calls.load(Ordering::SeqCst),
        5,
        "only the screened ones"
    );
    assert!(records
        .iter()
        .filter(|r| r.status == Status::Ok)
        .all(|r| r.figure.is_some()));
}

/// A valid record of `schedule` for task `t`, as a tuner would leave the best.
fn record_of(t: &Task, target: &Target, schedule: minnow_schedules::Schedule) -> Record {
    Record {
        id: None,
        key: t.key.clone(),
        workload: t.workload.clone(),
        target: target.name.into(),
        runner: "qemu".into(),
        schedule,
        genome: None,
        status: Status::Ok,
        figure: Some(1.0),
        unit: "instructions".into(),
        message: None,
        origin: "random".into(),
        measured_at: 0,
        minnow_version: "test".into(),
    }
}

/// A database holding a schedule drawn at random for every workload of `model` (so no
/// default): each record as valid, as a tuner would leave the best.
fn random_records(model: &str, target: &Target, path: &std::path::Path) {
    let mut db = SqliteDb::open(path).unwrap();
    let machine = minnow_autotune::cost::machine(target);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    for t in tasks(model, target) {
        let c = Candidates::new(&t, machine);
        let (schedule, _) = (0..200)
            .find_map(|_| c.decode(&c.random(&mut rng)))
            .expect("a valid random schedule");
        db.insert(&record_of(&t, target, schedule)).unwrap();
    }
}

/// The schedule the tuner measures as task `t`'s default.
fn default_schedule(
    t: &Task,
    target: &Target,
    tilings: &minnow_autotune::tilings::Tilings,
) -> minnow_schedules::Schedule {
    let r = &t.reduction;
    minnow_autotune::compile::default_schedule(r, target, t.widenable, t.winograd, tilings).unwrap()
}

/// The default nest's loop orders and deeper unrolls, the tuner's first climbs: each loop
/// order a valid nest of the same loops in another order, none twice (on kws's layers one
/// of them runs the output channels outermost), each deeper unroll a longer unrolled region.
#[test]
fn loop_orders_move_each_outer_loop_out_and_swap_neighbours() {
    let target = minnow_targets::find("cortex-m4").unwrap();
    let machine = minnow_autotune::cost::machine(&target);
    let tilings = minnow_autotune::tilings::Tilings::default();
    let (mut channel_outer, mut deeper_unrolls) = (0, 0);
    let ts = tasks("kws", &target);
    for t in &ts {
        let r = &t.reduction;
        let schedule = default_schedule(t, &target, &tilings);
        let nest = schedule.apply(r).unwrap();
        let first = |n: &minnow_ir::loops::reduction::LoopNest| {
            let l = n.loops.iter().find(|l| l.extent > 1).unwrap();
            (l.axis, l.extent)
        };
        let c = Candidates::new(t, machine);
        let orders = c.loop_orders(&nest);
        for (i, g) in orders.iter().enumerate() {
            assert!(!orders[..i].contains(g), "{}: an order twice", t.layer);
            let (_, other) = c.decode(g).expect("a loop order decodes");
            assert_eq!(other.loops.len(), nest.loops.len(), "{}", t.layer);
            let axes = |n: &minnow_ir::loops::reduction::LoopNest| {
                n.loops
                    .iter()
                    .map(|l| (l.axis, l.extent))
                    .collect::<Vec<_>>()
            };
            assert_ne!(axes(&other), axes(&nest), "{}", t.layer);
            let mut same = axes(&other);
            same.sort();
            let mut own = axes(&nest);
            own.sort();
            assert_eq!(same, own, "{}: the same loops", t.layer);
            assert_eq!(other.wide_weights, nest.wide_weights);
            channel_outer += usize::from(r.channel.coefficient(first(&other).0) != 0);
        }
        for g in c.deeper_unrolls(&c.genome_of(&nest)) {
            let (_, deeper) = c.decode(&g).expect("a deeper unroll decodes");
            let unrolled = |n: &minnow_ir::loops::reduction::LoopNest| -> usize {
                let u = n
                    .loops
                    .iter()
                    .filter(|l| l.kind == minnow_ir::loops::ForKind::Unrolled);
                u.map(|l| l.extent).product()
            };
            assert!(unrolled(&deeper) > unrolled(&nest), "{}", t.layer);
            deeper_unrolls += 1;
        }
    }
    assert!(
        channel_outer >= 3,
        "conv, depthwise and pointwise: {channel_outer}"
    );
    assert!(
        deeper_unrolls >= 1,
        "the pointwise layers' input-channel loop"
    );
}

/// A search's first climb is the default with its output channels outermost (what the
/// whole-model default runs where the plan keeps an op's operands apart), and a new best
/// puts its own loop orders and deeper unrolls ahead of every other climb.
#[test]
fn the_first_climbs_are_channels_outer_then_the_new_best_neighbours() {
    let target = minnow_targets::find("cortex-m4").unwrap();
    let machine = minnow_autotune::cost::machine(&target);
    let tilings = minnow_autotune::tilings::Tilings::default();
    let ts = tasks("kws", &target);
    let t = ts
        .iter()
        .find(|t| t.layer.contains("conv2d_1/Conv2D"))
        .unwrap();
    let c = Candidates::new(t, machine);
    let default = default_schedule(t, &target, &tilings);
    let outer = minnow_autotune::compile::channels_outermost(&t.reduction, &default)
        .expect("the pointwise default runs pixels outermost");
    let mut search = minnow_autotune::search::TaskSearch::new(t, machine, target.features);
    assert!(search.fixed(default, "default").is_some());
    let model = minnow_autotune::model::CostModel::new(0);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    // Whatever the seed's draws, the first proposal is the channels-outer nest.
    let first = search
        .propose(1, Strategy::Model, &model, &mut rng)
        .remove(0);
    assert_eq!(first.origin, "climb");
    assert_eq!(first.schedule, outer);
    let genome = first.genome.unwrap();
    let deeper = c.deeper_unrolls(&genome);
    assert!(
        !deeper.is_empty(),
        "{}: its reduce loop unrolls deeper",
        t.layer
    );
    search.measured(&genome, 0.95);
    let next = search
        .propose(1, Strategy::Model, &model, &mut rng)
        .remove(0);
    let expected = c.loop_orders(&outer.apply(&t.reduction).unwrap());
    let expected = expected.first().or(deeper.first()).unwrap();
    assert_eq!(
        next.genome.as_ref(),
        Some(expected),
        "a neighbour of the new best"
    );
}

/// `minnow run --tuning-db` on the emulated board gives the golden outputs of every shared
/// model, with a schedule drawn at random for every layer.
#[test]
fn tuned_run_is_bit_exact_on_every_shared_model() {
    let target = minnow_targets::find("cortex-m4").unwrap();
    if !tools_present(&target) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for model in MODELS {
        let db = dir.path().join(format!("{model}.sqlite"));
        random_records(model, &target, &db);
        let out = dir.path().join(format!("{model}.out"));
        let status = Command::new(env!("CARGO_BIN_EXE_minnow"))
            .arg("run")
            .arg(model_path(model))
            .args(["--target", "cortex-m4", "--tuning-db"])
            .arg(&db)
            .arg("--input")
            .arg(golden_path(model, "input_0.bin"))
            .arg("--output")
            .arg(&out)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&status.stderr);
        assert!(status.status.success(), "{model}: {stderr}");
        assert!(
            stderr.contains("tuning records applied to all"),
            "{model}: {stderr}"
        );
        assert_eq!(
            std::fs::read(&out).unwrap(),
            golden(model, "output_0.bin"),
            "{model} with random tuned schedules"
        );
    }
}

/// The library applies records the same way, and a record whose schedule does not apply to
/// the workload any more (from another minnow) is passed over for the default.
#[test]
fn stale_records_fall_back_to_the_default() {
    let target = minnow_targets::find("cortex-m4").unwrap();
    let graph = load("kws");
    let mut db = SqliteDb::in_memory().unwrap();
    let t = &tasks("kws", &target)[0];
    let schedule = minnow_schedules::Schedule {
        steps: vec![minnow_schedules::Primitive::Unroll {
            name: "no_such_loop".into(),
        }],
    };
    db.insert(&record_of(t, &target, schedule)).unwrap();
    let (_, applied) = compile_tuned(&graph, "kws", &target, Patching::Off, &db, None).unwrap();
    assert!(applied.tuned.is_empty(), "{applied:?}");
    assert_eq!(applied.defaulted.len(), 10);
    assert!(
        applied.note().contains("no record for"),
        "{}",
        applied.note()
    );
}

/// Records that run kws's channel blocks outermost need its activations apart (the default
/// lets each layer's output overwrite its input): an arena budget of the default's arena sets
/// them aside, the workload that gains least first, and a budget below the default's is an
/// error naming the fix. A workload with a record that keeps the default's loop order
/// (its reduce loop unrolled deeper) keeps that one instead of the default.
#[test]
fn an_arena_budget_sets_aside_records_that_need_more() {
    let target = minnow_targets::find("cortex-m4").unwrap();
    let machine = minnow_autotune::cost::machine(&target);
    let tilings = minnow_autotune::tilings::Tilings::default();
    let graph = load("kws");
    let mut db = SqliteDb::in_memory().unwrap();
    let mut deeper_tasks = 0;
    for (i, t) in tasks("kws", &target).iter().enumerate() {
        let r = &t.reduction;
        let default = default_schedule(t, &target, &tilings);
        let nest = default.apply(r).unwrap();
        let c = Candidates::new(t, machine);
        let Some(outer) = c.loop_orders(&nest).into_iter().find(|g| {
            c.decode(g)
                .is_some_and(|(_, n)| r.channel.coefficient(n.loops[0].axis) != 0)
        }) else {
            continue;
        };
        let mut base = record_of(t, &target, default);
        (base.origin, base.figure) = ("default".into(), Some(100.0));
        db.insert(&base).unwrap();
        let mut tuned = record_of(t, &target, c.decode(&outer).unwrap().0);
        // The first task gains least.
        tuned.figure = Some(90.0 - i as f64);
        db.insert(&tuned).unwrap();
        // The default unrolled deeper keeps its loop order: a slower record that fits.
        if let Some(deeper) = c.deeper_unrolls(&c.genome_of(&nest)).first() {
            let schedule = c.decode(deeper).unwrap().0;
            assert!(minnow_autotune::compile::pixels_in_order_outside_channels(
                r, &schedule
            ));
            let mut slower = record_of(t, &target, schedule);
            slower.figure = Some(95.0);
            db.insert(&slower).unwrap();
            deeper_tasks += 1;
        }
    }
    assert!(deeper_tasks >= 1, "kws's pointwise layers unroll deeper");
    let build = |budget| compile_tuned(&graph, "kws", &target, Patching::Off, &db, budget);
    let default = minnow_autotune::compile::compile(
        &graph,
        "kws",
        &target,
        Patching::Off,
        minnow_autotune::compile::Schedules::Default,
    )
    .unwrap()
    .plan
    .arena_bytes;
    let (free, applied) = build(None).unwrap();
    assert!(
        free.plan.arena_bytes > default,
        "{} {default}",
        free.plan.arena_bytes
    );
    assert!(applied.over_budget.is_empty());
    let (kept, applied) = build(Some(default)).unwrap();
    assert!(kept.plan.arena_bytes <= default);
    assert!(!applied.over_budget.is_empty(), "{applied:?}");
    // Where a workload has an in-place record, the budget keeps that rather than the default.
    assert!(!applied.slower_fit.is_empty(), "{applied:?}");
    assert!(applied.slower_fit.iter().all(|l| applied.tuned.contains(l)));
    assert!(
        applied.note().contains("arena budget"),
        "{}",
        applied.note()
    );
    let err = build(Some(default / 2)).unwrap_err().to_string();
    assert!(
        err.contains("--max-arena") && err.contains("--patches auto"),
        "{err}"
    );
}

/// Tuned within the untuned build's own arena (`--max-arena` of it), kws's depthwise and
/// pointwise layers, which the default runs in place, search only loop orders that keep
/// them so: every record the tuner writes for them fits, and the tuned build applies them
/// all with none set aside, within the budget and bit-exact on the board.
#[test]
fn a_tight_arena_budget_tunes_in_place_layers_in_place() {
    let target = minnow_targets::find("cortex-m4").unwrap();
    if !tools_present(&target) {
        return;
    }
    let graph = load("kws");
    let lowered = minnow_autotune::compile::lower(&graph, "kws", &target, Patching::Off).unwrap();
    let untuned = minnow_autotune::compile::schedule_lowered(
        lowered.clone(),
        &target,
        minnow_autotune::compile::Schedules::Default,
    )
    .unwrap();
    let budget = untuned.plan.arena_bytes;
    let tasks = extract_tasks(&lowered, &target, Some(budget)).unwrap();
    let kept: Vec<&Task> = tasks.iter().filter(|t| t.keep_in_place).collect();
    assert_eq!(
        kept.len(),
        2,
        "the depthwise and pointwise layers: {tasks:#?}"
    );
    let mut db = SqliteDb::in_memory().unwrap();
    tune(&tasks, &target, &QemuMeasurer::default(), &mut db, 24);
    for t in &kept {
        let records = db.records(&t.key, target.name).unwrap();
        assert!(records.len() >= 4, "{}: {records:#?}", t.layer);
        for r in records {
            assert!(
                minnow_autotune::compile::pixels_in_order_outside_channels(
                    &t.reduction,
                    &r.schedule
                ),
                "{}: {:?}",
                t.layer,
                r.schedule
            );
        }
    }
    let (built, applied) =
        compile_tuned(&graph, "kws", &target, Patching::Off, &db, Some(budget)).unwrap();
    assert!(built.plan.arena_bytes <= budget);
    assert!(applied.over_budget.is_empty(), "{applied:?}");
    assert!(applied.slower_fit.is_empty(), "{applied:?}");
    let vectors = [vec![golden("kws", "input_0.bin")]];
    let run = |source| {
        let build = Build {
            target: &target,
            source,
            vectors: &vectors,
            per_layer: false,
        };
        QemuMeasurer::default().measure(&build).unwrap()
    };
    let tuned = run(&built.source);
    assert_eq!(tuned.outputs[0][0], golden("kws", "output_0.bin"));
    let default = run(&untuned.emit(&target).source);
    assert!(tuned.instructions.unwrap()[0] <= default.instructions.unwrap()[0]);
}

/// `minnow tune --prescreen host` on the emulated board prints the per-layer table and the
/// whole model's figures, writes its records to `--db`, and `--report` writes one page that
/// needs nothing but itself: inline SVG plots, no scripts, no links to fetch.
#[test]
fn tune_cli_prints_figures_and_writes_an_offline_report() {
    let target = minnow_targets::find("cortex-m4").unwrap();
    if !tools_present(&target) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (db, report) = (dir.path().join("t.sqlite"), dir.path().join("r.html"));
    let out = Command::new(env!("CARGO_BIN_EXE_minnow"))
        .arg("tune")
        .arg(model_path("hello_world"))
        .args([
            "--target",
            "cortex-m4",
            "--trials",
            "8",
            "--parallel",
            "2",
            "--prescreen",
            "host",
            "--db",
        ])
        .arg(&db)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("FULLY_CONNECTED") && stdout.contains("speedup"),
        "{stdout}"
    );
    assert!(
        stdout.contains("whole model (instructions): default"),
        "{stdout}"
    );
    assert!(
        stdout.contains("arena ") && stdout.contains("flash "),
        "{stdout}"
    );
    assert!(
        stdout.contains("bit-exact with the reference interpreter"),
        "{stdout}"
    );
    let records = SqliteDb::open(&db).unwrap().all().unwrap();
    assert_eq!(records.len(), 8);
    // The Cortex-M4 candidates' C passes the host pre-screen (its DSP intrinsics as
    // portable C) and is then measured on the board.
    assert!(
        records
            .iter()
            .all(|r| r.status == Status::Ok && r.runner == "qemu"),
        "{records:#?}"
    );
    let page = std::fs::read_to_string(&report).unwrap();
    assert!(
        page.matches("<svg").count() >= 4,
        "curves, bars and the arena"
    );
    assert!(page.contains("Arena timeline") && page.contains("whole model"));
    let fetches = ["<script", "src=", "href=", "@import", "url("];
    assert!(
        fetches.iter().all(|f| !page.contains(f)),
        "the report must open offline"
    );
    // `minnow report` draws the same runs from the database alone.
    let again = dir.path().join("again.html");
    let status = Command::new(env!("CARGO_BIN_EXE_minnow"))
        .arg("report")
        .arg(&db)
        .arg("-o")
        .arg(&again)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(std::fs::read_to_string(&again).unwrap().contains("<svg"));
}

/// A task's program lets its step write over the operand the model's step writes over (a
/// residual ADD's other addend), so the planner places it as the model does: with the pairing
/// dropped it placed resnet8's 1x1 projection over its input instead, which took the input's
/// `restrict` away and measured the layer 10 % slower than it runs in the model (436,920 against
/// 396,000 instructions on M4), and random search applied a record worse in the model.
#[test]
fn a_task_writes_in_place_where_the_model_does() {
    let target = minnow_targets::find("cortex-m4").unwrap();
    let lowered =
        minnow_autotune::compile::lower(&load("resnet8"), "resnet8", &target, Patching::Off)
            .unwrap();
    let tasks = extract_tasks(&lowered, &target, None).unwrap();
    let residual: Vec<&Task> = tasks.iter().filter(|t| t.op == "CONV_2D_ADD").collect();
    assert_eq!(residual.len(), 3);
    for t in residual {
        let model_step = &lowered.program.steps[t.steps[0]];
        let task_step = &t.program.steps[minnow_autotune::task::task_step(&t.program)];
        assert!(model_step.in_place.is_some(), "{}", t.layer);
        assert_eq!(task_step.in_place, model_step.in_place, "{}", t.layer);
    }
}
