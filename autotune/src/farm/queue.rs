//! The queue's SQL: enqueueing a job, leasing one (`FOR UPDATE SKIP LOCKED`, so concurrent
//! workers each take a different job without waiting on each other's locks), renewing leases,
//! finishing a job exactly once, and giving one back.
//!
//! A job's `notify` names the channel its tuner listens on; finishing it sends the job's id
//! there. Enqueueing or giving back a job sends its `target/runner` on [`JOBS_CHANNEL`], which
//! idle workers listen on. Notifications only wake sleepers early: everyone also polls, so a
//! lost notification costs a second, never a job.

use super::job::{encode, JobResult};
use super::{query, MAX_ATTEMPTS};
use crate::db::DbError;
use postgres::Client;
use std::time::Duration;

/// The channel idle workers listen on.
pub const JOBS_CHANNEL: &str = "minnow_jobs";

/// A job a worker holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Lease {
    /// The job's id.
    pub job: i64,
    /// Its [`super::job::JobSpec`], encoded.
    pub spec: Vec<u8>,
    /// Times it has been leased, this lease included.
    pub attempts: i64,
}

/// A worker as it registers.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkerInfo {
    /// The host's name.
    pub host: String,
    /// The worker's process id.
    pub pid: u32,
    /// The target it measures for.
    pub target: String,
    /// Its runner (`qemu`, `probe`).
    pub runner: String,
    /// Its board (the probe's serial and chip, or the emulated machine).
    pub board: String,
    /// Jobs it runs at once.
    pub slots: usize,
    /// Its lease length.
    pub lease: Duration,
}

/// Adds a job for `target` on `runner`; its result is announced on `notify`.
pub fn enqueue(
    client: &mut Client,
    target: &str,
    runner: &str,
    spec: &[u8],
    notify: &str,
) -> Result<i64, DbError> {
    let row = client
        .query_one(
            "INSERT INTO jobs (target, runner, spec, notify) VALUES ($1, $2, $3, $4) RETURNING id",
            &[&target, &runner, &spec, &notify],
        )
        .map_err(query)?;
    wake_workers(client, target, runner)?;
    Ok(row.get(0))
}

/// Tells idle workers of `target` on `runner` that a job is waiting.
fn wake_workers(client: &mut Client, target: &str, runner: &str) -> Result<(), DbError> {
    client
        .execute(
            "SELECT pg_notify($1, $2)",
            &[&JOBS_CHANNEL, &format!("{target}/{runner}")],
        )
        .map_err(query)?;
    Ok(())
}

/// The encoded result of job `job`, once it is done.
pub fn result_of(client: &mut Client, job: i64) -> Result<Option<Vec<u8>>, DbError> {
    let row = client
        .query_opt(
            "SELECT result FROM jobs WHERE id = $1 AND state = 'done'",
            &[&job],
        )
        .map_err(query)?;
    Ok(row.and_then(|r| r.get(0)))
}

/// Drops the payload of `job`, whose result its tuner has read: the row stays (for
/// `farm status` and the audit of attempts), the kilobytes of C, vectors and outputs go.
pub fn collected(client: &mut Client, job: i64) -> Result<(), DbError> {
    client
        .execute(
            "UPDATE jobs SET spec = '', result = NULL WHERE id = $1 AND state = 'done'",
            &[&job],
        )
        .map_err(query)?;
    Ok(())
}

/// Leases the oldest job `worker` may take for `target` on `runner`: a queued one, or one
/// whose lease lapsed; not one `board` failed on, unless it has waited out its retry delay.
/// First finishes as abandoned the lapsed jobs that were leased [`MAX_ATTEMPTS`] times.
pub fn lease(
    client: &mut Client,
    worker: i64,
    info: &WorkerInfo,
    board: &str,
) -> Result<Option<Lease>, DbError> {
    abandon_lost(client, &info.target, &info.runner)?;
    let seconds = info.lease.as_secs_f64();
    let row = client
        .query_opt(
            "UPDATE jobs SET state = 'leased', worker_id = $1, board = $2, attempts = attempts + 1,
                 leased_at = now(), lease_expires_at = now() + make_interval(secs => $3)
             WHERE id = (
                 SELECT id FROM jobs
                 WHERE target = $4 AND runner = $5
                   AND (state = 'queued' OR (state = 'leased' AND lease_expires_at < now()))
                   AND (NOT ($2 = ANY (avoid_board)) OR retry_after < now())
                 ORDER BY id
                 LIMIT 1
                 FOR UPDATE SKIP LOCKED)
             RETURNING id, spec, attempts",
            &[&worker, &board, &seconds, &info.target, &info.runner],
        )
        .map_err(query)?;
    Ok(row.map(|r| Lease {
        job: r.get(0),
        spec: r.get(1),
        attempts: r.get(2),
    }))
}

/// Finishes, with an [`JobResult::Abandoned`] result, every lapsed job of `target` on
/// `runner` that has had its [`MAX_ATTEMPTS`].
fn abandon_lost(client: &mut Client, target: &str, runner: &str) -> Result<(), DbError> {
    let result = encode(&JobResult::Abandoned {
        message: format!(
            "it was leased {MAX_ATTEMPTS} times and every lease lapsed (the workers died or \
             lost the database while measuring it)"
        ),
    });
    client
        .execute(
            "WITH lost AS (
                 UPDATE jobs SET state = 'done', result = $1, finished_at = now(),
                     lease_expires_at = NULL
                 WHERE target = $2 AND runner = $3 AND state = 'leased'
                   AND lease_expires_at < now() AND attempts >= $4
                 RETURNING id, notify)
             SELECT pg_notify(notify, id::text) FROM lost",
            &[&result, &target, &runner, &MAX_ATTEMPTS],
        )
        .map_err(query)?;
    Ok(())
}

/// Writes `result` for `job` if `worker` still holds its lease, and tells its tuner; returns
/// whether it did (a worker whose lease lapsed and was taken over writes nothing, so every
/// job has exactly one result).
pub fn finish(
    client: &mut Client,
    worker: i64,
    job: i64,
    result: &JobResult,
) -> Result<bool, DbError> {
    let bytes = encode(result);
    let mut tx = client.transaction().map_err(query)?;
    let row = tx
        .query_opt(
            "UPDATE jobs SET state = 'done', result = $1, finished_at = now(),
                 lease_expires_at = NULL
             WHERE id = $2 AND worker_id = $3 AND state = 'leased'
             RETURNING notify",
            &[&bytes, &job, &worker],
        )
        .map_err(query)?;
    let Some(row) = row else {
        return Ok(false);
    };
    let notify: String = row.get(0);
    tx.execute(
        "UPDATE workers SET jobs_done = jobs_done + 1 WHERE id = $1",
        &[&worker],
    )
    .map_err(query)?;
    tx.execute("SELECT pg_notify($1, $2)", &[&notify, &job.to_string()])
        .map_err(query)?;
    tx.commit().map_err(query)?;
    Ok(true)
}

/// Returns `job` to the queue if `worker` holds it. With `failed_board`, that board failed
/// on it: it is noted so another board gets the job first, and `retry_after` from now the
/// same board may try again.
pub fn give_back(
    client: &mut Client,
    worker: i64,
    job: i64,
    failed_board: Option<&str>,
    retry_after: Duration,
) -> Result<(), DbError> {
    let seconds = retry_after.as_secs_f64();
    let row = client
        .query_opt(
            "UPDATE jobs SET state = 'queued', worker_id = NULL, lease_expires_at = NULL,
                 avoid_board = CASE WHEN $3::text IS NULL THEN avoid_board
                                    ELSE array_append(avoid_board, $3::text) END,
                 retry_after = now() + make_interval(secs => $4)
             WHERE id = $1 AND worker_id = $2 AND state = 'leased'
             RETURNING target, runner",
            &[&job, &worker, &failed_board, &seconds],
        )
        .map_err(query)?;
    if let Some(row) = row {
        wake_workers(client, row.get(0), row.get(1))?;
    }
    Ok(())
}

/// Returns every job `worker` holds to the queue (a worker told to stop now).
pub fn give_back_all(client: &mut Client, worker: i64) -> Result<u64, DbError> {
    let jobs: Vec<i64> = client
        .query(
            "SELECT id FROM jobs WHERE worker_id = $1 AND state = 'leased'",
            &[&worker],
        )
        .map_err(query)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for job in &jobs {
        give_back(client, worker, *job, None, Duration::ZERO)?;
    }
    Ok(jobs.len() as u64)
}

/// Registers a worker; returns its id.
pub fn register(client: &mut Client, info: &WorkerInfo) -> Result<i64, DbError> {
    let row = client
        .query_one(
            "INSERT INTO workers (host, pid, target, runner, board, slots, lease_seconds, minnow_version)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            &[
                &info.host,
                &(info.pid as i64),
                &info.target,
                &info.runner,
                &info.board,
                &(info.slots as i64),
                &info.lease.as_secs_f64(),
                &env!("CARGO_PKG_VERSION"),
            ],
        )
        .map_err(query)?;
    Ok(row.get(0))
}

/// Renews every lease `worker` holds and its own heartbeat.
pub fn heartbeat(client: &mut Client, worker: i64, lease: Duration) -> Result<(), DbError> {
    let seconds = lease.as_secs_f64();
    client
        .execute(
            "UPDATE jobs SET lease_expires_at = now() + make_interval(secs => $2)
             WHERE worker_id = $1 AND state = 'leased'",
            &[&worker, &seconds],
        )
        .map_err(query)?;
    client
        .execute(
            "UPDATE workers SET heartbeat_at = now() WHERE id = $1",
            &[&worker],
        )
        .map_err(query)?;
    Ok(())
}

/// Marks `worker` stopped.
pub fn stop(client: &mut Client, worker: i64) -> Result<(), DbError> {
    client
        .execute(
            "UPDATE workers SET stopped_at = now() WHERE id = $1",
            &[&worker],
        )
        .map_err(query)?;
    Ok(())
}

/// Workers of `target` on `runner` whose heartbeat is fresh (within two leases).
pub fn live_workers(client: &mut Client, target: &str, runner: &str) -> Result<i64, DbError> {
    let row = client
        .query_one(
            "SELECT count(*) FROM workers
             WHERE target = $1 AND runner = $2 AND stopped_at IS NULL
               AND heartbeat_at > now() - make_interval(secs => 2 * lease_seconds)",
            &[&target, &runner],
        )
        .map_err(query)?;
    Ok(row.get(0))
}
