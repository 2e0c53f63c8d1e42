//! `minnow farm status`: the workers and their boards, the queue per target and runner, and
//! the throughput of the last ten minutes.

use super::query;
use crate::db::DbError;
use postgres::Client;
use serde::Serialize;
use std::fmt::Write;

/// One worker.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WorkerRow {
    /// Its id.
    pub id: i64,
    /// Its host and process.
    pub host: String,
    /// Its process id.
    pub pid: i64,
    /// The target it serves.
    pub target: String,
    /// Its runner.
    pub runner: String,
    /// Its board.
    pub board: String,
    /// Jobs it runs at once.
    pub slots: i64,
    /// `live`, `stopped`, or `lost` (no heartbeat for two leases).
    pub state: String,
    /// Jobs it holds now.
    pub running: i64,
    /// Jobs it finished.
    pub jobs_done: i64,
    /// Seconds since its last heartbeat.
    pub heartbeat_age: f64,
}

/// The queue of one target and runner.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QueueRow {
    /// The target.
    pub target: String,
    /// The runner.
    pub runner: String,
    /// Jobs waiting.
    pub queued: i64,
    /// Jobs leased now.
    pub leased: i64,
    /// Jobs finished in the last ten minutes.
    pub done_10min: i64,
    /// Of those, per minute.
    pub per_minute: f64,
    /// Their mean seconds from enqueueing to the result.
    pub mean_latency: Option<f64>,
}

/// The whole farm.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FarmStatus {
    /// Workers that are live, then the rest (newest first), at most 50 stopped or lost.
    pub workers: Vec<WorkerRow>,
    /// One row per target and runner with open or recent jobs.
    pub queues: Vec<QueueRow>,
}

impl FarmStatus {
    /// Reads the farm's state.
    pub fn read(client: &mut Client) -> Result<FarmStatus, DbError> {
        let workers = client
            .query(
                "SELECT w.id, w.host, w.pid, w.target, w.runner, w.board, w.slots,
                        CASE WHEN w.stopped_at IS NOT NULL THEN 'stopped'
                             WHEN w.heartbeat_at > now() - make_interval(secs => 2 * w.lease_seconds) THEN 'live'
                             ELSE 'lost' END AS state,
                        (SELECT count(*) FROM jobs j WHERE j.worker_id = w.id AND j.state = 'leased'),
                        w.jobs_done,
                        extract(epoch FROM now() - w.heartbeat_at)::float8
                 FROM workers w
                 ORDER BY (w.stopped_at IS NULL AND w.heartbeat_at > now() - make_interval(secs => 2 * w.lease_seconds)) DESC, w.id DESC
                 LIMIT 200",
                &[],
            )
            .map_err(query)?
            .iter()
            .map(|r| WorkerRow {
                id: r.get(0),
                host: r.get(1),
                pid: r.get(2),
                target: r.get(3),
                runner: r.get(4),
                board: r.get(5),
                slots: r.get(6),
                state: r.get(7),
                running: r.get(8),
                jobs_done: r.get(9),
                heartbeat_age: r.get(10),
            })
            .collect();
        let queues = client
            .query(
                "SELECT target, runner,
                        count(*) FILTER (WHERE state = 'queued'),
                        count(*) FILTER (WHERE state = 'leased'),
                        count(*) FILTER (WHERE state = 'done' AND finished_at > now() - interval '10 minutes'),
                        avg(extract(epoch FROM finished_at - enqueued_at)::float8)
                            FILTER (WHERE state = 'done' AND finished_at > now() - interval '10 minutes')
                 FROM jobs
                 WHERE state <> 'done' OR finished_at > now() - interval '10 minutes'
                 GROUP BY target, runner
                 ORDER BY target, runner",
                &[],
            )
            .map_err(query)?
            .iter()
            .map(|r| {
                let done: i64 = r.get(4);
                QueueRow {
                    target: r.get(0),
                    runner: r.get(1),
                    queued: r.get(2),
                    leased: r.get(3),
                    done_10min: done,
                    per_minute: done as f64 / 10.0,
                    mean_latency: r.get(5),
                }
            })
            .collect();
        Ok(FarmStatus { workers, queues })
    }

    /// The status as text tables.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let live = self.workers.iter().filter(|w| w.state == "live").count();
        let boards: i64 = self
            .workers
            .iter()
            .filter(|w| w.state == "live")
            .map(|w| w.slots)
            .sum();
        let _ = writeln!(t, "workers: {live} live with {boards} boards");
        let _ = writeln!(
            t,
            "  {:>5}  {:<8} {:<24} {:<14} {:<6} {:<28} {:>7} {:>9}",
            "id", "state", "host:pid", "target", "runner", "board", "running", "jobs done"
        );
        for w in &self.workers {
            let _ = writeln!(
                t,
                "  {:>5}  {:<8} {:<24} {:<14} {:<6} {:<28} {:>7} {:>9}",
                w.id,
                w.state,
                format!("{}:{}", w.host, w.pid),
                w.target,
                w.runner,
                w.board,
                w.running,
                w.jobs_done
            );
        }
        let _ = writeln!(t, "queues (last 10 minutes):");
        let _ = writeln!(
            t,
            "  {:<14} {:<6} {:>7} {:>7} {:>9} {:>8} {:>12}",
            "target", "runner", "queued", "leased", "done", "per min", "mean latency"
        );
        for q in &self.queues {
            let latency = q.mean_latency.map_or("-".into(), |s| format!("{s:.1} s"));
            let _ = writeln!(
                t,
                "  {:<14} {:<6} {:>7} {:>7} {:>9} {:>8.1} {:>12}",
                q.target, q.runner, q.queued, q.leased, q.done_10min, q.per_minute, latency
            );
        }
        if self.queues.is_empty() {
            let _ = writeln!(t, "  (no jobs)");
        }
        t
    }
}
