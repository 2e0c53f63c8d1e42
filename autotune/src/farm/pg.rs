//! [`PgDb`]: the tuning database in PostgreSQL, the same tables as the SQLite file's (see
//! `migrations/`), shared by every tuner of a farm.

use super::{connect, query, schema};
use crate::db::{
    schedule_json, DbError, Record, Run, RunTask, StoredRecord, TuningDb, RECORD_COLUMNS,
};
use crate::task::WorkloadKey;
use postgres::{Client, Row};
use std::sync::Mutex;

/// A tuning database in PostgreSQL.
pub struct PgDb {
    client: Mutex<Client>,
}

impl PgDb {
    /// Connects to `url` and brings its schema up to date (created if the database is empty).
    pub fn open(url: &str) -> Result<PgDb, DbError> {
        let mut client = connect(url)?;
        schema::migrate(&mut client, url)?;
        Ok(PgDb {
            client: Mutex::new(client),
        })
    }

    /// The connection (a poisoned lock only means another thread panicked mid-query).
    fn client(&self) -> std::sync::MutexGuard<'_, Client> {
        self.client.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn select(
        &self,
        filter: &str,
        args: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Record>, DbError> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM records {filter} ORDER BY id");
        let rows = self.client().query(&sql, args).map_err(query)?;
        rows.iter().map(|r| record_of(r, 0)).collect()
    }
}

impl TuningDb for PgDb {
    fn insert(&mut self, r: &Record) -> Result<i64, DbError> {
        let row = self
            .client()
            .query_one(
                &format!(
                    "INSERT INTO records ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
                    &RECORD_COLUMNS[4..]
                ),
                &[
                    &r.key.0,
                    &r.workload,
                    &r.target,
                    &r.runner,
                    &schedule_json(r)?,
                    &r.genome,
                    &r.status.name(),
                    &r.figure,
                    &r.unit,
                    &r.message,
                    &r.origin,
                    &r.measured_at,
                    &r.minnow_version,
                ],
            )
            .map_err(query)?;
        Ok(row.get(0))
    }

    fn begin_run(&mut self, run: &Run) -> Result<i64, DbError> {
        let mut client = self.client();
        let mut tx = client.transaction().map_err(query)?;
        let id: i64 = tx
            .query_one(
                "INSERT INTO runs (model, target, runner, strategy, seed, trials, started_at, minnow_version) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                &[
                    &run.model,
                    &run.target,
                    &run.runner,
                    &run.strategy,
                    &run.seed.to_string(),
                    &(run.trials as i64),
                    &run.started_at,
                    &run.minnow_version,
                ],
            )
            .map_err(query)?
            .get(0);
        for (i, t) in run.tasks.iter().enumerate() {
            tx.execute(
                "INSERT INTO run_tasks (run_id, task, workload_key, layer, op, occurrences) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &id,
                    &(i as i64),
                    &t.key.0,
                    &t.layer,
                    &t.op,
                    &(t.occurrences as i64),
                ],
            )
            .map_err(query)?;
        }
        tx.commit().map_err(query)?;
        Ok(id)
    }

    fn log_trial(&mut self, run: i64, seq: usize, task: usize, record: i64) -> Result<(), DbError> {
        self.client()
            .execute(
                "INSERT INTO run_trials (run_id, seq, task, record_id) VALUES ($1, $2, $3, $4)",
                &[&run, &(seq as i64), &(task as i64), &record],
            )
            .map_err(query)?;
        Ok(())
    }

    fn runs(&self) -> Result<Vec<Run>, DbError> {
        let mut client = self.client();
        let rows = client
            .query("SELECT id, model, target, runner, strategy, seed, trials, started_at, minnow_version FROM runs ORDER BY id", &[])
            .map_err(query)?;
        let mut runs = Vec::new();
        for row in rows {
            let id: i64 = row.get(0);
            let seed: String = row.get(5);
            let tasks = client
                .query("SELECT workload_key, layer, op, occurrences FROM run_tasks WHERE run_id = $1 ORDER BY task", &[&id])
                .map_err(query)?
                .iter()
                .map(|t| RunTask {
                    key: WorkloadKey(t.get(0)),
                    layer: t.get(1),
                    op: t.get(2),
                    occurrences: t.get::<_, i64>(3) as usize,
                })
                .collect();
            runs.push(Run {
                id: Some(id),
                model: row.get(1),
                target: row.get(2),
                runner: row.get(3),
                strategy: row.get(4),
                seed: seed.parse().unwrap_or(0),
                trials: row.get::<_, i64>(6) as usize,
                started_at: row.get(7),
                minnow_version: row.get(8),
                tasks,
            });
        }
        Ok(runs)
    }

    fn run_trials(&self, run: i64) -> Result<Vec<(usize, Record)>, DbError> {
        let columns: Vec<String> = RECORD_COLUMNS
            .split(',')
            .map(|c| format!("r.{}", c.trim()))
            .collect();
        let sql = format!(
            "SELECT t.task, {} FROM run_trials t JOIN records r ON r.id = t.record_id \
             WHERE t.run_id = $1 ORDER BY t.seq",
            columns.join(", ")
        );
        let rows = self.client().query(&sql, &[&run]).map_err(query)?;
        rows.iter()
            .map(|r| Ok((r.get::<_, i64>(0) as usize, record_of(r, 1)?)))
            .collect()
    }

    fn records(&self, key: &WorkloadKey, target: &str) -> Result<Vec<Record>, DbError> {
        self.select(
            "WHERE workload_key = $1 AND target = $2",
            &[&key.0, &target],
        )
    }

    fn all(&self) -> Result<Vec<Record>, DbError> {
        self.select("", &[])
    }
}

/// The row's columns from `at` on as a record.
fn record_of(row: &Row, at: usize) -> Result<Record, DbError> {
    StoredRecord {
        id: row.get(at),
        key: row.get(at + 1),
        workload: row.get(at + 2),
        target: row.get(at + 3),
        runner: row.get(at + 4),
        schedule: row.get(at + 5),
        genome: row.get(at + 6),
        status: row.get(at + 7),
        figure: row.get(at + 8),
        unit: row.get(at + 9),
        message: row.get(at + 10),
        origin: row.get(at + 11),
        measured_at: row.get(at + 12),
        minnow_version: row.get(at + 13),
    }
    .into_record()
}
