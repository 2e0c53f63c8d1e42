//! [`Worker`]: the board's side of the farm. It registers, then runs `slots` threads that
//! each lease a job, measure it on the board and write its result, while the calling thread
//! renews the leases (every third of a lease) and watches for a stop request.
//!
//! A stop request ([`Shutdown::request`], from SIGINT or SIGTERM) first stops leasing and
//! lets the running jobs finish; a second one gives the running jobs back to the queue at
//! once. A killed worker gives nothing back, and loses nothing either: its leases lapse and
//! other workers take the jobs again.

use super::job::{decode, JobResult, JobSpec};
use super::queue::{self, Lease, WorkerInfo, JOBS_CHANNEL};
use super::{connect, query, MAX_ATTEMPTS};
use crate::db::DbError;
use crate::measure::{MeasureError, Measurer};
use minnow_targets::Target;
use postgres::Client;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long an idle slot waits for a notification before it looks at the queue again.
const IDLE_POLL: Duration = Duration::from_millis(500);

/// Board failures in a row after which a slot stops (the board is gone, not the jobs).
const BOARD_FAILURES: usize = 3;

/// How long a slot keeps trying to reach a database that stopped answering.
const DB_PATIENCE: Duration = Duration::from_secs(60);

/// Makes the measurer for one job, given the job's run deadline.
pub type MeasurerFactory = dyn Fn(Duration) -> Box<dyn Measurer + Send> + Send + Sync;

/// What the worker reports as it goes.
#[derive(Clone, Debug, PartialEq)]
pub enum WorkerEvent {
    /// A slot leased a job.
    Leased {
        /// The job.
        job: i64,
        /// Its leases so far, this one included.
        attempts: i64,
    },
    /// A job's result was written.
    Finished {
        /// The job.
        job: i64,
        /// `measured`, `failed`, `timeout` or `abandoned`.
        outcome: &'static str,
        /// Seconds it took here.
        seconds: f64,
    },
    /// The board failed on a job, which went back to the queue for another board.
    BoardFailed {
        /// The job.
        job: i64,
        /// What happened.
        message: String,
    },
    /// The lease lapsed before the result was written; another worker has the job.
    LeaseLost {
        /// The job.
        job: i64,
    },
    /// The database did not answer; the slot retries.
    DbTrouble {
        /// What happened.
        message: String,
    },
}

/// Why a worker stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The farm database failed (and stayed away).
    #[error(transparent)]
    Db(#[from] DbError),
    /// The board failed job after job: it is gone, not the jobs.
    #[error("board {board} failed {failures} jobs in a row; its jobs went back to the queue. Check the board and its probe, then start the worker again")]
    Board {
        /// The board.
        board: String,
        /// Failures in a row.
        failures: usize,
    },
    /// A slot thread panicked (a bug in minnow).
    #[error("a worker slot panicked")]
    Panicked,
}

/// Stop requests, shared with signal handlers.
#[derive(Debug, Default)]
pub struct Shutdown {
    requests: AtomicUsize,
}

impl Shutdown {
    /// Asks the worker to stop: the first request finishes the running jobs, the second
    /// gives them back.
    pub fn request(&self) {
        self.requests.fetch_add(1, Ordering::SeqCst);
    }

    /// Requests so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// How a worker runs.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// The farm database.
    pub url: String,
    /// What it registers as (target, runner, board, slots, lease).
    pub info: WorkerInfo,
}

/// What a worker did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkerSummary {
    /// Its id in the `workers` table.
    pub id: i64,
    /// Jobs whose results it wrote.
    pub finished: u64,
    /// Jobs it gave back (board failures, a second stop request).
    pub given_back: u64,
}

/// A farm worker.
pub struct Worker {
    /// How it runs.
    pub options: WorkerOptions,
    /// The target its jobs are for.
    pub target: Target,
    /// Makes its measurers.
    pub measurer: Arc<MeasurerFactory>,
    /// Told of progress.
    pub observer: Arc<dyn Fn(&WorkerEvent) + Send + Sync>,
}

/// One slot's share of the worker.
struct Slot {
    url: String,
    worker: i64,
    board: String,
    info: WorkerInfo,
    target: Target,
    measurer: Arc<MeasurerFactory>,
    observer: Arc<dyn Fn(&WorkerEvent) + Send + Sync>,
    shutdown: Arc<Shutdown>,
}

#[derive(Default)]
struct Tally {
    finished: u64,
    given_back: u64,
}

impl Worker {
    /// Registers and works until `shutdown` is requested or every slot has stopped.
    pub fn run(&self, shutdown: Arc<Shutdown>) -> Result<WorkerSummary, WorkerError> {
        let o = &self.options;
        let mut client = connect(&o.url)?;
        super::schema::migrate(&mut client, &o.url)?;
        let id = queue::register(&mut client, &o.info)?;
        let slots: Vec<_> = (0..o.info.slots.max(1))
            .map(|i| {
                let slot = Slot {
                    url: o.url.clone(),
                    worker: id,
                    board: slot_board(&o.info, i),
                    info: o.info.clone(),
                    target: self.target.clone(),
                    measurer: Arc::clone(&self.measurer),
                    observer: Arc::clone(&self.observer),
                    shutdown: Arc::clone(&shutdown),
                };
                std::thread::spawn(move || slot.work())
            })
            .collect();
        let mut summary = WorkerSummary {
            id,
            ..Default::default()
        };
        let beat = o.info.lease / 3;
        let mut last = Instant::now();
        while !slots.iter().all(|s| s.is_finished()) {
            std::thread::sleep(Duration::from_millis(100));
            if shutdown.requests() >= 2 {
                summary.given_back += queue::give_back_all(&mut client, id)?;
                queue::stop(&mut client, id)?;
                return Ok(summary);
            }
            if last.elapsed() >= beat {
                if let Err(e) = queue::heartbeat(&mut client, id, o.info.lease) {
                    (self.observer)(&WorkerEvent::DbTrouble {
                        message: e.to_string(),
                    });
                    client = connect(&o.url).unwrap_or(client);
                }
                last = Instant::now();
            }
        }
        let mut failure = None;
        for slot in slots {
            match slot.join() {
                Ok(Ok(t)) => {
                    summary.finished += t.finished;
                    summary.given_back += t.given_back;
                }
                Ok(Err(e)) => failure = Some(e),
                Err(_) => failure = Some(WorkerError::Panicked),
            }
        }
        queue::stop(&mut client, id)?;
        failure.map_or(Ok(summary), Err)
    }
}

/// The board slot `i` of a worker stands for: its own board for a probe, one of the host's
/// emulator processes for QEMU.
fn slot_board(info: &WorkerInfo, i: usize) -> String {
    if info.slots <= 1 {
        info.board.clone()
    } else {
        format!("{}#{i}", info.board)
    }
}

impl Slot {
    /// Leases and runs jobs until a stop request, [`BOARD_FAILURES`] board failures in a row,
    /// or a database that stays away for [`DB_PATIENCE`].
    fn work(self) -> Result<Tally, WorkerError> {
        let mut tally = Tally::default();
        let mut client = self.listen()?;
        let mut board_failures = 0;
        let mut trouble_since: Option<Instant> = None;
        while self.shutdown.requests() == 0 {
            let leased = queue::lease(&mut client, self.worker, &self.info, &self.board);
            let step = leased.and_then(|lease| match lease {
                Some(lease) => self.run(&mut client, lease, &mut tally),
                None => {
                    super::wait_for_notification(&mut client, IDLE_POLL);
                    Ok(None)
                }
            });
            match step {
                Ok(board_failed) => {
                    trouble_since = None;
                    board_failures = match board_failed {
                        Some(true) => board_failures + 1,
                        Some(false) => 0,
                        None => board_failures,
                    };
                    if board_failures >= BOARD_FAILURES {
                        return Err(WorkerError::Board {
                            board: self.board.clone(),
                            failures: BOARD_FAILURES,
                        });
                    }
                }
                Err(e) => {
                    (self.observer)(&WorkerEvent::DbTrouble {
                        message: e.to_string(),
                    });
                    let since = *trouble_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > DB_PATIENCE {
                        return Err(e.into());
                    }
                    std::thread::sleep(Duration::from_secs(2));
                    if let Ok(c) = self.listen() {
                        client = c;
                    }
                }
            }
        }
        Ok(tally)
    }

    fn listen(&self) -> Result<Client, DbError> {
        let mut client = connect(&self.url)?;
        client
            .batch_execute(&format!("LISTEN {JOBS_CHANNEL}"))
            .map_err(query)?;
        Ok(client)
    }

    /// Runs one leased job; `Some(true)` if the board failed on it.
    fn run(
        &self,
        client: &mut Client,
        lease: Lease,
        tally: &mut Tally,
    ) -> Result<Option<bool>, DbError> {
        (self.observer)(&WorkerEvent::Leased {
            job: lease.job,
            attempts: lease.attempts,
        });
        let started = Instant::now();
        let measured = match decode::<JobSpec>(&lease.spec) {
            Ok(spec) => {
                let timeout = Duration::from_secs_f64(spec.timeout_seconds.max(1.0));
                (self.measurer)(timeout).measure(&spec.build(&self.target))
            }
            Err(e) => Err(MeasureError::Run {
                board: self.board.clone(),
                message: format!("job {}: {e}", lease.job),
            }),
        };
        if self.shutdown.requests() >= 2 {
            return Ok(None); // The worker gave it back.
        }
        let result = match JobResult::of(measured) {
            Ok(result) => result,
            Err(message) if lease.attempts < MAX_ATTEMPTS => {
                (self.observer)(&WorkerEvent::BoardFailed {
                    job: lease.job,
                    message,
                });
                let retry = self.info.lease;
                queue::give_back(client, self.worker, lease.job, Some(&self.board), retry)?;
                tally.given_back += 1;
                return Ok(Some(true));
            }
            Err(message) => JobResult::Abandoned {
                message: format!("{MAX_ATTEMPTS} boards failed on it; the last: {message}"),
            },
        };
        let outcome = outcome_name(&result);
        if queue::finish(client, self.worker, lease.job, &result)? {
            tally.finished += 1;
            (self.observer)(&WorkerEvent::Finished {
                job: lease.job,
                outcome,
                seconds: started.elapsed().as_secs_f64(),
            });
        } else {
            (self.observer)(&WorkerEvent::LeaseLost { job: lease.job });
        }
        Ok(Some(false))
    }
}

fn outcome_name(result: &JobResult) -> &'static str {
    match result {
        JobResult::Measured(_) => "measured",
        JobResult::Failed { .. } => "failed",
        JobResult::Timeout { .. } => "timeout",
        JobResult::Abandoned { .. } => "abandoned",
    }
}
