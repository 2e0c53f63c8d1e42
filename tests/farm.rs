//! The farm end to end on a throw-away PostgreSQL cluster: a tune measured by two workers
//! gives the same records as a local tune; a worker killed mid-job loses nothing; the queue
//! gives each job to one worker at a time, takes lapsed leases back, sends a job a board
//! failed on to another board, and abandons one that kills every worker.

mod common;
#[path = "support/postgres.rs"]
mod postgres_support;

use common::{model_path, tools_present};
use minnow_autotune::db::{Record, SqliteDb, Status, TuningDb};
use minnow_autotune::farm::job::{decode, JobResult, JobSpec};
use minnow_autotune::farm::queue::{self, WorkerInfo};
use minnow_autotune::farm::worker::{MeasurerFactory, Shutdown};
use minnow_autotune::farm::{connect, schema, PgDb, Worker, WorkerOptions, MAX_ATTEMPTS};
use minnow_autotune::measure::{MeasureError, Measurement, Measurer};
use postgres_support::TestPostgres;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MODEL: &str = "ad01";
const TARGET: &str = "cortex-m4";
const TRIALS: &str = "12";

fn minnow() -> Command {
    Command::new(env!("CARGO_BIN_EXE_minnow"))
}

fn worker(url: &str, lease: &str) -> Child {
    minnow()
        .args([
            "farm", "worker", "--db", url, "--target", TARGET, "--jobs", "1",
        ])
        .args(["--lease", lease])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the worker starts")
}

fn tune(db: &str) -> Command {
    let mut c = minnow();
    c.arg("tune")
        .arg(model_path(MODEL))
        .args(["--target", TARGET, "--trials", TRIALS])
        .args(["--seed", "3", "--db", db, "--json"]);
    c
}

fn check(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What a record says apart from when and where it was written.
type Essence = (String, String, &'static str, Option<u64>, String);

fn essence(r: &Record) -> Essence {
    let schedule = serde_json::to_string(&r.schedule).unwrap();
    let figure = r.figure.map(|f| f as u64);
    (
        r.key.0.clone(),
        schedule,
        r.status.name(),
        figure,
        r.origin.clone(),
    )
}

fn essences(db: &dyn TuningDb) -> Vec<Essence> {
    let mut all: Vec<_> = db.all().unwrap().iter().map(essence).collect();
    all.sort();
    all
}

/// The records of a local tune with the same arguments.
fn local_records() -> Vec<Essence> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("local.sqlite");
    check(
        &tune(&path.display().to_string()).output().unwrap(),
        "the local tune",
    );
    essences(&SqliteDb::open(&path).unwrap())
}

/// Stops `child` with SIGTERM and expects a clean exit.
fn terminate(mut child: Child) {
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "the worker exited with {status} after SIGTERM"
    );
}

fn emulator_ready() -> bool {
    tools_present(&minnow_targets::find(TARGET).unwrap())
}

/// Two workers measure a farm tune; its records are a local tune's, and both workers stop
/// cleanly on SIGTERM and say so in the workers table.
#[test]
fn a_farm_tune_gives_the_records_of_a_local_tune() {
    if !emulator_ready() {
        return;
    }
    let Some(pg) = TestPostgres::start("same") else {
        return;
    };
    let workers = [worker(&pg.url, "30"), worker(&pg.url, "30")];
    let out = tune(&pg.url).output().unwrap();
    check(&out, "the farm tune");
    let farm = essences(&PgDb::open(&pg.url).unwrap());
    assert_eq!(farm, local_records());
    for w in workers {
        terminate(w);
    }
    let mut client = connect(&pg.url).unwrap();
    let rows = client
        .query("SELECT stopped_at IS NOT NULL, jobs_done FROM workers", &[])
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.get::<_, bool>(0)));
    let done: i64 = rows.iter().map(|r| r.get::<_, i64>(1)).sum();
    let jobs: i64 = client
        .query_one("SELECT count(*) FROM jobs WHERE state = 'done'", &[])
        .unwrap()
        .get(0);
    assert_eq!(done, jobs, "every job was finished by exactly one worker");
    let status = minnow()
        .args(["farm", "status", "--db", &pg.url, "--json"])
        .output()
        .unwrap();
    check(&status, "farm status");
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["workers"].as_array().unwrap().len(), 2);
    assert_eq!(status["queues"][0]["queued"], 0);
}

/// A worker killed with SIGKILL in the middle of a job: its lease lapses, another worker
/// finishes the job, the tune completes, and its records are a local tune's, each once.
#[test]
fn a_killed_worker_loses_nothing() {
    if !emulator_ready() {
        return;
    }
    let Some(pg) = TestPostgres::start("kill") else {
        return;
    };
    let mut client = connect(&pg.url).unwrap();
    schema::migrate(&mut client, &pg.url).unwrap();
    let mut first = worker(&pg.url, "2");
    let tuning = tune(&pg.url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    // Wait until the first worker holds a job, then kill it mid-measurement.
    let killed_job: i64 = loop {
        assert!(
            Instant::now() < deadline,
            "the first worker never leased a job"
        );
        let held = client
            .query_opt("SELECT id FROM jobs WHERE state = 'leased' LIMIT 1", &[])
            .unwrap();
        if let Some(row) = held {
            break row.get(0);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    first.kill().unwrap();
    first.wait().unwrap();
    let second = worker(&pg.url, "2");
    let out = tuning.wait_with_output().unwrap();
    check(&out, "the farm tune");
    terminate(second);
    let attempts: i64 = client
        .query_one("SELECT attempts FROM jobs WHERE id = $1", &[&killed_job])
        .unwrap()
        .get(0);
    assert!(attempts >= 2, "the killed worker's job was leased again");
    let open: i64 = client
        .query_one("SELECT count(*) FROM jobs WHERE state <> 'done'", &[])
        .unwrap()
        .get(0);
    assert_eq!(open, 0);
    let db = PgDb::open(&pg.url).unwrap();
    let farm = essences(&db);
    assert_eq!(
        farm,
        local_records(),
        "every trial recorded once, none lost"
    );
    let runs = db.runs().unwrap();
    let logged = db.run_trials(runs[0].id.unwrap()).unwrap();
    assert_eq!(logged.len(), TRIALS.parse::<usize>().unwrap());
}

fn info(board: &str, lease: Duration) -> WorkerInfo {
    WorkerInfo {
        host: "test".into(),
        pid: 1,
        target: TARGET.into(),
        runner: "qemu".into(),
        board: board.into(),
        slots: 1,
        lease,
    }
}

/// The queue's rules, without boards: one holder per job, lapsed leases taken back, a stale
/// holder's result refused, a failed board avoided, and a job lost too often abandoned.
#[test]
fn the_queue_leases_each_job_to_one_worker_at_a_time() {
    let Some(pg) = TestPostgres::start("queue") else {
        return;
    };
    let mut c = connect(&pg.url).unwrap();
    schema::migrate(&mut c, &pg.url).unwrap();
    // Migrating twice is a no-op.
    schema::migrate(&mut c, &pg.url).unwrap();
    let long = info("a", Duration::from_secs(60));
    let short = info("b", Duration::from_millis(1000));
    let (a, b) = (
        queue::register(&mut c, &long).unwrap(),
        queue::register(&mut c, &short).unwrap(),
    );
    let jobs: Vec<i64> = (0..3)
        .map(|i| queue::enqueue(&mut c, TARGET, "qemu", &[i], "nobody").unwrap())
        .collect();
    // Other targets' and runners' jobs are not leased.
    queue::enqueue(&mut c, "cortex-m7", "qemu", &[9], "nobody").unwrap();
    let first = queue::lease(&mut c, a, &long, "a").unwrap().unwrap();
    let second = queue::lease(&mut c, b, &short, "b").unwrap().unwrap();
    assert_eq!((first.job, second.job), (jobs[0], jobs[1]));
    assert_eq!(first.spec, vec![0]);
    // b's short lease lapses: a takes the job over, and b's late result is refused.
    std::thread::sleep(Duration::from_millis(1200));
    let third = queue::lease(&mut c, a, &long, "a").unwrap().unwrap();
    assert_eq!((third.job, third.attempts), (jobs[1], 2));
    let result = JobResult::Failed {
        message: "x".into(),
    };
    assert!(!queue::finish(&mut c, b, jobs[1], &result).unwrap());
    assert!(queue::finish(&mut c, a, jobs[1], &result).unwrap());
    assert!(
        !queue::finish(&mut c, a, jobs[1], &result).unwrap(),
        "finished once"
    );
    // Board a fails on job 0: a does not take it again before its retry delay, b does.
    queue::give_back(&mut c, a, jobs[0], Some("a"), Duration::from_secs(60)).unwrap();
    let next = queue::lease(&mut c, a, &long, "a").unwrap().unwrap();
    assert_eq!(next.job, jobs[2]);
    assert!(queue::lease(&mut c, a, &long, "a").unwrap().is_none());
    let taken = queue::lease(&mut c, b, &short, "b").unwrap().unwrap();
    assert_eq!(taken.job, jobs[0]);
    // A job whose leases keep lapsing is abandoned after MAX_ATTEMPTS.
    for _ in taken.attempts..MAX_ATTEMPTS {
        std::thread::sleep(Duration::from_millis(1100));
        queue::lease(&mut c, b, &short, "b").unwrap().unwrap();
    }
    std::thread::sleep(Duration::from_millis(1100));
    assert!(queue::lease(&mut c, b, &short, "b").unwrap().is_none());
    let bytes: Vec<u8> = queue::result_of(&mut c, jobs[0]).unwrap().unwrap();
    let abandoned: JobResult = decode(&bytes).unwrap();
    assert!(
        matches!(abandoned, JobResult::Abandoned { .. }),
        "{abandoned:?}"
    );
}

fn sample_records() -> Vec<Record> {
    let schedule = minnow_schedules::Schedule {
        steps: vec![minnow_schedules::Primitive::Split {
            name: "c".into(),
            factor: 4,
        }],
    };
    [(Some(1234.0), Status::Ok), (None, Status::Timeout)]
        .into_iter()
        .map(|(figure, status)| Record {
            id: None,
            key: minnow_autotune::task::WorkloadKey("abc".into()),
            workload: "conv".into(),
            target: "cortex-m4".into(),
            runner: "qemu".into(),
            schedule: schedule.clone(),
            genome: Some("{}".into()),
            status,
            figure,
            unit: "instructions".into(),
            message: (status != Status::Ok).then(|| "it hung".into()),
            origin: "model".into(),
            measured_at: 1_790_000_000,
            minnow_version: "0.1.0".into(),
        })
        .collect()
}

fn sample_run() -> minnow_autotune::db::Run {
    minnow_autotune::db::Run {
        id: None,
        model: "kws.tflite".into(),
        target: "cortex-m4".into(),
        runner: "qemu".into(),
        strategy: "model".into(),
        seed: u64::MAX,
        trials: 2,
        started_at: 1_790_000_000,
        minnow_version: "0.1.0".into(),
        tasks: vec![minnow_autotune::db::RunTask {
            key: minnow_autotune::task::WorkloadKey("abc".into()),
            layer: "conv".into(),
            op: "CONV_2D".into(),
            occurrences: 2,
        }],
    }
}

/// The PostgreSQL tuning database keeps records and runs as the SQLite one does, and refuses
/// a schema from a newer minnow.
#[test]
fn the_postgres_database_keeps_what_sqlite_keeps() {
    let Some(pg) = TestPostgres::start("db") else {
        return;
    };
    let mut db = PgDb::open(&pg.url).unwrap();
    let records = sample_records();
    let run = sample_run();
    let id = db.begin_run(&run).unwrap();
    let mut written = Vec::new();
    for (seq, r) in records.iter().enumerate() {
        let mut r = r.clone();
        r.id = Some(db.insert(&r).unwrap());
        db.log_trial(id, seq, 0, r.id.unwrap()).unwrap();
        written.push(r);
    }
    assert_eq!(db.all().unwrap(), written);
    assert_eq!(db.records(&written[0].key, "cortex-m4").unwrap(), written);
    assert_eq!(
        db.best(&written[0].key, "cortex-m4").unwrap(),
        Some(written[0].clone())
    );
    let runs = db.runs().unwrap();
    assert_eq!(
        runs,
        vec![minnow_autotune::db::Run {
            id: Some(id),
            ..run
        }]
    );
    let logged: Vec<Record> = db
        .run_trials(id)
        .unwrap()
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    assert_eq!(logged, written);
    let mut c = connect(&pg.url).unwrap();
    c.batch_execute(
        "INSERT INTO minnow_schema_history (version, name, applied_on, checksum) \
         VALUES (99, 'future', '2026-12-01T00:00:00Z', '0')",
    )
    .unwrap();
    let e = PgDb::open(&pg.url).err().unwrap().to_string();
    assert!(e.contains("newer minnow") && e.contains("upgrade"), "{e}");
}

/// A slow job for the emulated M4: kws over many input vectors.
fn slow_job(url: &str) -> i64 {
    let target = minnow_targets::find(TARGET).unwrap();
    let bytes = std::fs::read(model_path("kws")).unwrap();
    let graph = minnow_ir::import::tflite::import(&bytes, "kws").unwrap();
    let compiled = minnow_autotune::compile::compile(
        &graph,
        "kws",
        &target,
        minnow_passes::patch::Patching::Off,
        minnow_autotune::compile::Schedules::Default,
    )
    .unwrap();
    let vectors = vec![vec![vec![3u8; 490]]; 40];
    let build = minnow_autotune::measure::Build {
        target: &target,
        source: &compiled.source,
        vectors: &vectors,
        per_layer: false,
    };
    let spec = minnow_autotune::farm::job::encode(&JobSpec::of(&build));
    let mut c = connect(url).unwrap();
    schema::migrate(&mut c, url).unwrap();
    queue::enqueue(&mut c, TARGET, "qemu", &spec, "nobody").unwrap()
}

/// Waits until `job` is leased; panics after a minute.
fn wait_leased(url: &str, job: i64) {
    let mut c = connect(url).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while c
        .query_one("SELECT state FROM jobs WHERE id = $1", &[&job])
        .unwrap()
        .get::<_, String>(0)
        != "leased"
    {
        assert!(Instant::now() < deadline, "job {job} was never leased");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, name: &str) {
    Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
}

/// SIGTERM during a job lets the worker finish it before it stops; SIGINT twice gives the
/// job back to the queue at once. Either way the worker exits cleanly and nothing is lost.
#[test]
fn signals_finish_or_give_back_the_running_job() {
    if !emulator_ready() {
        return;
    }
    let Some(pg) = TestPostgres::start("signals") else {
        return;
    };
    let mut c = connect(&pg.url).unwrap();
    let job = slow_job(&pg.url);
    let w = worker(&pg.url, "30");
    wait_leased(&pg.url, job);
    signal(&w, "TERM");
    terminate_waited(w);
    let bytes = queue::result_of(&mut c, job)
        .unwrap()
        .expect("the job was finished");
    assert!(matches!(
        decode::<JobResult>(&bytes).unwrap(),
        JobResult::Measured(_)
    ));

    let job = slow_job(&pg.url);
    let w = worker(&pg.url, "30");
    wait_leased(&pg.url, job);
    signal(&w, "INT");
    std::thread::sleep(Duration::from_millis(150));
    signal(&w, "INT");
    terminate_waited(w);
    let row = c
        .query_one(
            "SELECT state, worker_id IS NULL FROM jobs WHERE id = $1",
            &[&job],
        )
        .unwrap();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, bool>(1)),
        ("queued".into(), true)
    );
}

fn terminate_waited(mut child: Child) {
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    assert!(
        status.success(),
        "the worker exited with {status}: {stderr}"
    );
}

/// A measurer for in-process workers: a board that always fails, or one that "measures"
/// instantly.
struct FakeBoard {
    broken: bool,
}

impl Measurer for FakeBoard {
    fn measure(&self, _: &minnow_autotune::measure::Build) -> Result<Measurement, MeasureError> {
        if self.broken {
            return Err(MeasureError::Board {
                board: "flaky".into(),
                message: "the probe disconnected".into(),
            });
        }
        Ok(Measurement {
            outputs: vec![vec![vec![1]]],
            instructions: Some(vec![10]),
            nanoseconds: None,
            cycles: None,
            layer_counts: vec![],
            sections: Default::default(),
        })
    }
    fn runner(&self) -> &'static str {
        "qemu"
    }
    fn unit(&self) -> &'static str {
        "instructions"
    }
}

fn fake_worker(url: &str, board: &str, broken: bool) -> Worker {
    let factory: Arc<MeasurerFactory> =
        Arc::new(move |_| Box::new(FakeBoard { broken }) as Box<dyn Measurer + Send>);
    Worker {
        options: WorkerOptions {
            url: url.into(),
            info: info(board, Duration::from_secs(30)),
        },
        target: minnow_targets::find(TARGET).unwrap(),
        measurer: factory,
        observer: Arc::new(|_| {}),
    }
}

/// A board that fails every job gives each back; after three in a row its worker stops with
/// the reason, and a good board finishes every job: the failures are never results.
#[test]
fn jobs_a_board_fails_go_to_another_board() {
    let Some(pg) = TestPostgres::start("flaky") else {
        return;
    };
    let mut c = connect(&pg.url).unwrap();
    schema::migrate(&mut c, &pg.url).unwrap();
    let target = minnow_targets::find(TARGET).unwrap();
    let source = minnow_backends::c::CSource {
        name: "m".into(),
        header: String::new(),
        source: String::new(),
        outputs: 1,
    };
    let vectors = vec![vec![vec![0u8]]];
    let build = minnow_autotune::measure::Build {
        target: &target,
        source: &source,
        vectors: &vectors,
        per_layer: false,
    };
    let spec = minnow_autotune::farm::job::encode(&JobSpec::of(&build));
    let jobs: Vec<i64> = (0..3)
        .map(|_| queue::enqueue(&mut c, TARGET, "qemu", &spec, "nobody").unwrap())
        .collect();
    let flaky = fake_worker(&pg.url, "flaky", true)
        .run(Arc::new(Shutdown::default()))
        .unwrap_err()
        .to_string();
    assert!(flaky.contains("failed 3 jobs in a row"), "{flaky}");
    let good = std::thread::spawn({
        let url = pg.url.clone();
        move || {
            let shutdown = Arc::new(Shutdown::default());
            let stop = Arc::clone(&shutdown);
            let worker = std::thread::spawn(move || fake_worker(&url, "good", false).run(stop));
            std::thread::sleep(Duration::from_secs(3));
            shutdown.request();
            worker.join().unwrap().unwrap()
        }
    });
    let summary = good.join().unwrap();
    assert_eq!(summary.finished, 3);
    for job in jobs {
        let row = c
            .query_one(
                "SELECT board, attempts, avoid_board FROM jobs WHERE id = $1",
                &[&job],
            )
            .unwrap();
        assert_eq!(row.get::<_, String>(0), "good");
        assert_eq!(row.get::<_, i64>(1), 2);
        assert_eq!(row.get::<_, Vec<String>>(2), vec!["flaky".to_string()]);
        let bytes = queue::result_of(&mut c, job).unwrap().unwrap();
        assert!(matches!(
            decode::<JobResult>(&bytes).unwrap(),
            JobResult::Measured(_)
        ));
    }
}
