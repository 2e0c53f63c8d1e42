//! [`SqliteDb`]: tuning records in one SQLite file, schema versioned by `PRAGMA user_version`.

use super::{schedule_json, DbError, Record, Run, RunTask, StoredRecord, TuningDb, RECORD_COLUMNS};
use crate::task::WorkloadKey;
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::path::Path;

/// The schema this build writes and reads. A file with a newer version is refused (it was
/// made by a newer minnow); a file without one is created.
pub const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    workload_key TEXT NOT NULL,
    workload TEXT NOT NULL,
    target TEXT NOT NULL,
    runner TEXT NOT NULL,
    schedule TEXT NOT NULL,
    genome TEXT,
    status TEXT NOT NULL,
    figure REAL,
    unit TEXT NOT NULL,
    message TEXT,
    origin TEXT NOT NULL,
    measured_at INTEGER NOT NULL,
    minnow_version TEXT NOT NULL
);
CREATE INDEX records_by_workload ON records (workload_key, target, runner);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model TEXT NOT NULL,
    target TEXT NOT NULL,
    runner TEXT NOT NULL,
    strategy TEXT NOT NULL,
    seed TEXT NOT NULL,
    trials INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    minnow_version TEXT NOT NULL
);
CREATE TABLE run_tasks (
    run_id INTEGER NOT NULL REFERENCES runs (id),
    task INTEGER NOT NULL,
    workload_key TEXT NOT NULL,
    layer TEXT NOT NULL,
    op TEXT NOT NULL,
    occurrences INTEGER NOT NULL,
    PRIMARY KEY (run_id, task)
);
CREATE TABLE run_trials (
    run_id INTEGER NOT NULL REFERENCES runs (id),
    seq INTEGER NOT NULL,
    task INTEGER NOT NULL,
    record_id INTEGER NOT NULL REFERENCES records (id),
    PRIMARY KEY (run_id, seq)
);
";

const COLUMNS: &str = RECORD_COLUMNS;

/// A tuning database in a SQLite file.
pub struct SqliteDb {
    conn: Connection,
    path: String,
}

impl SqliteDb {
    /// Opens the database at `path`, creating it (and its schema) if it does not exist.
    pub fn open(path: &Path) -> Result<SqliteDb, DbError> {
        let name = path.display().to_string();
        let open_error = |message: String| DbError::Open {
            path: name.clone(),
            message,
        };
        let conn = Connection::open(path).map_err(|e| {
            open_error(format!(
                "cannot open it ({e}); check that its folder exists and is writable"
            ))
        })?;
        let db = SqliteDb {
            conn,
            path: name.clone(),
        };
        db.migrate().map_err(|e| match e {
            DbError::Query(message) => open_error(format!(
                "{message}; it is not a minnow tuning database: pass another --db path"
            )),
            other => other,
        })?;
        Ok(db)
    }

    /// An empty database in memory (for tests and one-off runs).
    pub fn in_memory() -> Result<SqliteDb, DbError> {
        let conn = Connection::open_in_memory().map_err(query)?;
        let db = SqliteDb {
            conn,
            path: ":memory:".into(),
        };
        db.migrate()?;
        Ok(db)
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> Result<i64, DbError> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(query)
    }

    fn migrate(&self) -> Result<(), DbError> {
        let version = self.schema_version()?;
        let tables: i64 = self
            .conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(query)?;
        let has_records: Option<String> = self
            .conn
            .query_row(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'records'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(query)?;
        match (version, has_records) {
            (0, None) if tables == 0 => {
                self.conn
                    .execute_batch(&format!(
                        "BEGIN; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
                    ))
                    .map_err(query)?;
                Ok(())
            }
            (SCHEMA_VERSION, Some(_)) => Ok(()),
            (v, _) if v > SCHEMA_VERSION => Err(DbError::Open {
                path: self.path.clone(),
                message: format!(
                    "its schema is version {v}, newer than this minnow's {SCHEMA_VERSION}: \
                     upgrade minnow or pass another --db path"
                ),
            }),
            (v, _) => Err(DbError::Open {
                path: self.path.clone(),
                message: format!(
                    "it is an SQLite file but not a minnow tuning database (schema version {v}); \
                     pass another --db path"
                ),
            }),
        }
    }

    fn select(&self, filter: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<Record>, DbError> {
        let sql = format!("SELECT {COLUMNS} FROM records {filter} ORDER BY id");
        self.query_records(&sql, args)
    }

    fn query_records(
        &self,
        sql: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<Record>, DbError> {
        let mut stmt = self.conn.prepare(sql).map_err(query)?;
        let rows = stmt
            .query_map(args, |row| record_of(row, 0))
            .map_err(query)?;
        rows.map(|r| r.map_err(query)?).collect()
    }
}

impl TuningDb for SqliteDb {
    fn insert(&mut self, r: &Record) -> Result<i64, DbError> {
        let schedule = schedule_json(r)?;
        self.conn
            .execute(
                &format!(
                    "INSERT INTO records ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                    &COLUMNS[4..]
                ),
                params![
                    r.key.0,
                    r.workload,
                    r.target,
                    r.runner,
                    schedule,
                    r.genome,
                    r.status.name(),
                    r.figure,
                    r.unit,
                    r.message,
                    r.origin,
                    r.measured_at,
                    r.minnow_version
                ],
            )
            .map_err(query)?;
        Ok(self.conn.last_insert_rowid())
    }

    fn begin_run(&mut self, run: &Run) -> Result<i64, DbError> {
        let tx = self.conn.transaction().map_err(query)?;
        tx.execute(
            "INSERT INTO runs (model, target, runner, strategy, seed, trials, started_at, minnow_version) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                run.model,
                run.target,
                run.runner,
                run.strategy,
                run.seed.to_string(),
                run.trials as i64,
                run.started_at,
                run.minnow_version
            ],
        )
        .map_err(query)?;
        let id = tx.last_insert_rowid();
        for (i, t) in run.tasks.iter().enumerate() {
            tx.execute(
                "INSERT INTO run_tasks (run_id, task, workload_key, layer, op, occurrences) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, i as i64, t.key.0, t.layer, t.op, t.occurrences as i64],
            )
            .map_err(query)?;
        }
        tx.commit().map_err(query)?;
        Ok(id)
    }

    fn log_trial(&mut self, run: i64, seq: usize, task: usize, record: i64) -> Result<(), DbError> {
        self.conn
            .execute(
                "INSERT INTO run_trials (run_id, seq, task, record_id) VALUES (?1, ?2, ?3, ?4)",
                params![run, seq as i64, task as i64, record],
            )
            .map_err(query)?;
        Ok(())
    }

    fn runs(&self) -> Result<Vec<Run>, DbError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, model, target, runner, strategy, seed, trials, started_at, minnow_version FROM runs ORDER BY id")
            .map_err(query)?;
        let runs = stmt
            .query_map([], |row| {
                let seed: String = row.get(5)?;
                Ok(Run {
                    id: Some(row.get(0)?),
                    model: row.get(1)?,
                    target: row.get(2)?,
                    runner: row.get(3)?,
                    strategy: row.get(4)?,
                    seed: seed.parse().unwrap_or(0),
                    trials: row.get::<_, i64>(6)? as usize,
                    started_at: row.get(7)?,
                    minnow_version: row.get(8)?,
                    tasks: Vec::new(),
                })
            })
            .map_err(query)?
            .collect::<Result<Vec<Run>, _>>()
            .map_err(query)?;
        let mut tasks = self
            .conn
            .prepare("SELECT workload_key, layer, op, occurrences FROM run_tasks WHERE run_id = ?1 ORDER BY task")
            .map_err(query)?;
        runs.into_iter()
            .map(|mut run| {
                run.tasks = tasks
                    .query_map([run.id], |row| {
                        Ok(RunTask {
                            key: WorkloadKey(row.get(0)?),
                            layer: row.get(1)?,
                            op: row.get(2)?,
                            occurrences: row.get::<_, i64>(3)? as usize,
                        })
                    })
                    .map_err(query)?
                    .collect::<Result<_, _>>()
                    .map_err(query)?;
                Ok(run)
            })
            .collect()
    }

    fn run_trials(&self, run: i64) -> Result<Vec<(usize, Record)>, DbError> {
        let columns: Vec<String> = COLUMNS.split(", ").map(|c| format!("r.{c}")).collect();
        let sql = format!(
            "SELECT t.task, {} FROM run_trials t JOIN records r ON r.id = t.record_id \
             WHERE t.run_id = ?1 ORDER BY t.seq",
            columns.join(", ")
        );
        let mut stmt = self.conn.prepare(&sql).map_err(query)?;
        let rows = stmt
            .query_map([run], |row| {
                let task: i64 = row.get(0)?;
                Ok(record_of(row, 1)?.map(|r| (task as usize, r)))
            })
            .map_err(query)?;
        rows.map(|r| r.map_err(query)?).collect()
    }

    fn records(&self, key: &WorkloadKey, target: &str) -> Result<Vec<Record>, DbError> {
        self.select(
            "WHERE workload_key = ?1 AND target = ?2",
            &[&key.0, &target],
        )
    }

    fn all(&self) -> Result<Vec<Record>, DbError> {
        self.select("", &[])
    }
}

/// The row's columns from `at` on as a record; a schedule or status this build cannot read
/// is a conversion error.
fn record_of(row: &Row, at: usize) -> rusqlite::Result<Result<Record, DbError>> {
    let stored = StoredRecord {
        id: row.get(at)?,
        key: row.get(at + 1)?,
        workload: row.get(at + 2)?,
        target: row.get(at + 3)?,
        runner: row.get(at + 4)?,
        schedule: row.get(at + 5)?,
        genome: row.get(at + 6)?,
        status: row.get(at + 7)?,
        figure: row.get(at + 8)?,
        unit: row.get(at + 9)?,
        message: row.get(at + 10)?,
        origin: row.get(at + 11)?,
        measured_at: row.get(at + 12)?,
        minnow_version: row.get(at + 13)?,
    };
    Ok(stored.into_record())
}

fn query(e: rusqlite::Error) -> DbError {
    DbError::Query(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Status;
    use minnow_schedules::{Primitive, Schedule};

    fn record(figure: Option<f64>, status: Status, runner: &str) -> Record {
        Record {
            id: None,
            key: WorkloadKey("abc".into()),
            workload: "conv".into(),
            target: "cortex-m4".into(),
            runner: runner.into(),
            schedule: Schedule {
                steps: vec![
                    Primitive::Split {
                        name: "c".into(),
                        factor: 4,
                    },
                    Primitive::Unroll { name: "c_i".into() },
                    Primitive::WidenWeights,
                ],
            },
            genome: Some("{}".into()),
            status,
            figure,
            unit: "instructions".into(),
            message: (status != Status::Ok).then(|| "it broke".into()),
            origin: "model".into(),
            measured_at: 1_790_000_000,
            minnow_version: "0.1.0".into(),
        }
    }

    /// Records come back from a file exactly as written, in order, with the schema version.
    #[test]
    fn schema_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite");
        let mut written = vec![
            record(Some(1234.0), Status::Ok, "qemu"),
            record(None, Status::Timeout, "qemu"),
            record(Some(99.0), Status::Ok, "host"),
        ];
        let run = Run {
            id: None,
            model: "kws.tflite".into(),
            target: "cortex-m4".into(),
            runner: "qemu".into(),
            strategy: "model".into(),
            seed: u64::MAX,
            trials: 3,
            started_at: 1_790_000_000,
            minnow_version: "0.1.0".into(),
            tasks: vec![RunTask {
                key: WorkloadKey("abc".into()),
                layer: "conv".into(),
                op: "CONV_2D".into(),
                occurrences: 2,
            }],
        };
        {
            let mut db = SqliteDb::open(&path).unwrap();
            let id = db.begin_run(&run).unwrap();
            for (seq, r) in written.iter_mut().enumerate() {
                r.id = Some(db.insert(r).unwrap());
                db.log_trial(id, seq, 0, r.id.unwrap()).unwrap();
            }
            // A trial that reuses a record logs it again without a new record.
            db.log_trial(id, 3, 0, written[0].id.unwrap()).unwrap();
        }
        let db = SqliteDb::open(&path).unwrap();
        assert_eq!(db.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(db.all().unwrap(), written);
        let key = WorkloadKey("abc".into());
        assert_eq!(db.records(&key, "cortex-m4").unwrap(), written);
        assert!(db.records(&key, "cortex-m7").unwrap().is_empty());
        // The emulated board's figure is preferred over the host's, whatever the numbers.
        assert_eq!(
            db.best(&key, "cortex-m4").unwrap(),
            Some(written[0].clone())
        );
        let runs = db.runs().unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(
            runs[0],
            Run {
                id: runs[0].id,
                ..run
            }
        );
        let trials = db.run_trials(runs[0].id.unwrap()).unwrap();
        let logged: Vec<Record> = trials.into_iter().map(|(_, r)| r).collect();
        assert_eq!(logged[..3], written[..]);
        assert_eq!(logged[3], written[0]);
    }

    /// A newer schema and a foreign SQLite file are refused with the path and the fix.
    #[test]
    fn foreign_and_newer_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let newer = dir.path().join("newer.sqlite");
        Connection::open(&newer)
            .unwrap()
            .execute_batch("PRAGMA user_version = 99;")
            .unwrap();
        let e = SqliteDb::open(&newer).err().unwrap().to_string();
        assert!(
            e.contains("newer.sqlite") && e.contains("upgrade minnow"),
            "{e}"
        );
        let foreign = dir.path().join("foreign.sqlite");
        Connection::open(&foreign)
            .unwrap()
            .execute_batch("CREATE TABLE t (x);")
            .unwrap();
        let e = SqliteDb::open(&foreign).err().unwrap().to_string();
        assert!(e.contains("not a minnow tuning database"), "{e}");
        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "hello, this is not sqlite at all, just some text").unwrap();
        let e = SqliteDb::open(&text).err().unwrap().to_string();
        assert!(e.contains("notes.txt") && e.contains("--db"), "{e}");
    }
}
