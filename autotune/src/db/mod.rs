//! The tuning database: every trial's record, keyed by workload and target.
//!
//! [`TuningDb`] is what the tuner and the compiler see; [`SqliteDb`] keeps the records in one
//! SQLite file (`minnow-tuning.sqlite` by default). A record holds the schedule trace as
//! serde JSON, so a later build replays exactly what was measured.

mod sqlite;

pub use sqlite::{SqliteDb, SCHEMA_VERSION};

use crate::task::WorkloadKey;
use minnow_schedules::Schedule;
use serde::{Deserialize, Serialize};

/// Opens (creating if needed) the tuning database `db` names: a SQLite file path, or a farm's
/// PostgreSQL database by its `postgres://` URL.
pub fn open(db: &str) -> Result<Box<dyn TuningDb>, DbError> {
    Ok(if crate::farm::is_postgres_url(db) {
        Box::new(crate::farm::PgDb::open(db)?)
    } else {
        Box::new(SqliteDb::open(std::path::Path::new(db))?)
    })
}

/// The default database file.
pub const DEFAULT_PATH: &str = "minnow-tuning.sqlite";

/// How a trial ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Built, ran and gave the reference's bits: the figure is valid.
    Ok,
    /// Ran but gave other outputs than the reference.
    Wrong,
    /// Did not build, or crashed.
    Failed,
    /// Did not finish within the runner's deadline.
    Timeout,
}

impl Status {
    /// Its name in the database.
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Wrong => "wrong",
            Status::Failed => "failed",
            Status::Timeout => "timeout",
        }
    }

    /// The status named `name`.
    pub fn from_name(name: &str) -> Option<Status> {
        [Status::Ok, Status::Wrong, Status::Failed, Status::Timeout]
            .into_iter()
            .find(|s| s.name() == name)
    }
}

/// One measured candidate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Its id in the database (`None` until inserted).
    pub id: Option<i64>,
    /// The workload's key.
    pub key: WorkloadKey,
    /// What the key hashes (readable).
    pub workload: String,
    /// The target's name.
    pub target: String,
    /// The runner that measured it (`qemu`, `host`, `probe`).
    pub runner: String,
    /// The schedule trace.
    pub schedule: Schedule,
    /// The search's genome for it (JSON), if a search drew it; `None` for the default.
    pub genome: Option<String>,
    /// How the trial ended.
    pub status: Status,
    /// The measured cost in the runner's unit (lower is better); `None` unless `Ok`.
    pub figure: Option<f64>,
    /// The unit of `figure` (`instructions`, `nanoseconds`, `cycles`).
    pub unit: String,
    /// What went wrong, for a trial that is not `Ok`.
    pub message: Option<String>,
    /// How the candidate was chosen (`default`, `model`, `climb`, `random`).
    pub origin: String,
    /// Seconds since the Unix epoch when it was measured.
    pub measured_at: i64,
    /// The minnow version that measured it.
    pub minnow_version: String,
}

/// Why the database cannot be used; each message names the file and the fix.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The file cannot be opened or is not a tuning database.
    #[error("tuning database {path}: {message}")]
    Open {
        /// The file.
        path: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// A query failed.
    #[error("tuning database: {0}")]
    Query(String),
}

/// Runners in order of preference for applying records: a real board's figure over an
/// emulated board's over the host's.
pub const RUNNER_PREFERENCE: &[&str] = &["probe", "qemu", "host"];

/// One `minnow tune` run: what it tuned, how, and (through [`TuningDb::log_trial`]) the
/// sequence of its trials, measured or taken from earlier records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Its id in the database (`None` until begun).
    pub id: Option<i64>,
    /// The model file as given.
    pub model: String,
    /// The target's name.
    pub target: String,
    /// The runner.
    pub runner: String,
    /// The search strategy (`model`, `random`).
    pub strategy: String,
    /// The seed.
    pub seed: u64,
    /// Trials asked for.
    pub trials: usize,
    /// Seconds since the Unix epoch when it started.
    pub started_at: i64,
    /// The minnow version.
    pub minnow_version: String,
    /// Its tasks, in the model's order.
    pub tasks: Vec<RunTask>,
}

/// One task of a [`Run`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunTask {
    /// The workload's key.
    pub key: WorkloadKey,
    /// Its first layer's name.
    pub layer: String,
    /// Its op.
    pub op: String,
    /// Steps of the model with this workload.
    pub occurrences: usize,
}

/// The columns a record is stored in, in the order [`StoredRecord`] takes them.
pub(crate) const RECORD_COLUMNS: &str =
    "id, workload_key, workload, target, runner, schedule, genome, status, figure, \
     unit, message, origin, measured_at, minnow_version";

/// A record as a database row holds it: the schedule as JSON, the status by name.
pub(crate) struct StoredRecord {
    pub id: i64,
    pub key: String,
    pub workload: String,
    pub target: String,
    pub runner: String,
    pub schedule: String,
    pub genome: Option<String>,
    pub status: String,
    pub figure: Option<f64>,
    pub unit: String,
    pub message: Option<String>,
    pub origin: String,
    pub measured_at: i64,
    pub minnow_version: String,
}

impl StoredRecord {
    /// The record; a schedule or status this build cannot read is an error.
    pub fn into_record(self) -> Result<Record, DbError> {
        let bad = |what: &str, value: &str| {
            DbError::Query(format!("a record has an unreadable {what}: {value}"))
        };
        let schedule =
            serde_json::from_str(&self.schedule).map_err(|_| bad("schedule", &self.schedule))?;
        let status = Status::from_name(&self.status).ok_or_else(|| bad("status", &self.status))?;
        Ok(Record {
            id: Some(self.id),
            key: WorkloadKey(self.key),
            workload: self.workload,
            target: self.target,
            runner: self.runner,
            schedule,
            genome: self.genome,
            status,
            figure: self.figure,
            unit: self.unit,
            message: self.message,
            origin: self.origin,
            measured_at: self.measured_at,
            minnow_version: self.minnow_version,
        })
    }
}

/// `record`'s schedule as the JSON a row stores.
pub(crate) fn schedule_json(record: &Record) -> Result<String, DbError> {
    serde_json::to_string(&record.schedule).map_err(|e| DbError::Query(e.to_string()))
}

/// Where tuning records live.
pub trait TuningDb {
    /// Adds `record`; returns its id.
    fn insert(&mut self, record: &Record) -> Result<i64, DbError>;

    /// Starts logging a run; returns its id.
    fn begin_run(&mut self, run: &Run) -> Result<i64, DbError>;

    /// Logs trial number `seq` of run `run`: task `task` evaluated as record `record`.
    fn log_trial(&mut self, run: i64, seq: usize, task: usize, record: i64) -> Result<(), DbError>;

    /// Every run, oldest first, with its tasks.
    fn runs(&self) -> Result<Vec<Run>, DbError>;

    /// The trials of run `run` in order: each task index with its record.
    fn run_trials(&self, run: i64) -> Result<Vec<(usize, Record)>, DbError>;

    /// Every record of workload `key` on `target`, oldest first.
    fn records(&self, key: &WorkloadKey, target: &str) -> Result<Vec<Record>, DbError>;

    /// Every record, oldest first.
    fn all(&self) -> Result<Vec<Record>, DbError>;

    /// The best valid record of `key` on `target`: the lowest figure of the most preferred
    /// runner that has one ([`RUNNER_PREFERENCE`]).
    fn best(&self, key: &WorkloadKey, target: &str) -> Result<Option<Record>, DbError> {
        let records = self.records(key, target)?;
        Ok(best_of(&records))
    }
}

/// The best valid record among `records` (see [`TuningDb::best`]).
pub fn best_of(records: &[Record]) -> Option<Record> {
    let ok = || records.iter().filter(|r| r.status == Status::Ok);
    let rank = |r: &Record| {
        RUNNER_PREFERENCE
            .iter()
            .position(|p| *p == r.runner)
            .unwrap_or(RUNNER_PREFERENCE.len())
    };
    let runner = ok().map(rank).min()?;
    ok().filter(|r| rank(r) == runner)
        .min_by(|a, b| {
            a.figure
                .unwrap_or(f64::INFINITY)
                .total_cmp(&b.figure.unwrap_or(f64::INFINITY))
        })
        .cloned()
}
