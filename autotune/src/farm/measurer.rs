//! [`FarmMeasurer`]: the tuner's side of the farm. Each measurement becomes a job; the
//! measurer waits for a worker to finish it and returns its result as if it had measured
//! locally, so the tuner, its records and its determinism do not change.

use super::job::{decode, encode, JobResult, JobSpec};
use super::{connect, query, queue, redact};
use crate::db::DbError;
use crate::measure::{Build, MeasureError, Measurement, Measurer};
use postgres::Client;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long to wait for a notification before looking at the job again.
const POLL: Duration = Duration::from_secs(1);

/// How long a job may wait with no live worker for its target and runner before the
/// measurer says so (once).
const LONELY: Duration = Duration::from_secs(30);

/// Measures by enqueueing jobs for the farm's workers.
pub struct FarmMeasurer {
    url: String,
    runner: &'static str,
    unit: &'static str,
    /// The channel this tuner's results are announced on.
    channel: String,
    /// Idle connections, each listening on `channel`.
    idle: Mutex<Vec<Client>>,
    /// Seconds a job's run may take on the board.
    pub timeout: Duration,
    warned: AtomicBool,
}

impl FarmMeasurer {
    /// A measurer for jobs on `runner` (`qemu` counting `instructions`, `probe` counting
    /// `cycles`) through the farm database at `url` (its schema brought up to date).
    pub fn new(
        url: &str,
        runner: &'static str,
        unit: &'static str,
        timeout: Duration,
    ) -> Result<FarmMeasurer, DbError> {
        let measurer = FarmMeasurer {
            url: url.to_string(),
            runner,
            unit,
            channel: format!("minnow_done_{}_{}", std::process::id(), nonce()),
            idle: Mutex::new(Vec::new()),
            timeout,
            warned: AtomicBool::new(false),
        };
        let mut client = measurer.client()?;
        super::schema::migrate(&mut client, url)?;
        measurer.put_back(client);
        Ok(measurer)
    }

    /// Workers serving `target` on this runner now.
    pub fn live_workers(&self, target: &str) -> Result<i64, DbError> {
        let mut client = self.client()?;
        let n = queue::live_workers(&mut client, target, self.runner);
        self.put_back(client);
        n
    }

    fn client(&self) -> Result<Client, DbError> {
        if let Some(c) = self.idle.lock().ok().and_then(|mut idle| idle.pop()) {
            return Ok(c);
        }
        let mut client = connect(&self.url)?;
        client
            .batch_execute(&format!("LISTEN \"{}\"", self.channel))
            .map_err(query)?;
        Ok(client)
    }

    fn put_back(&self, client: Client) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(client);
        }
    }

    /// Enqueues `build` and waits for its result.
    fn run_job(&self, client: &mut Client, build: &Build) -> Result<JobResult, DbError> {
        let spec = JobSpec {
            timeout_seconds: self.timeout.as_secs_f64(),
            ..JobSpec::of(build)
        };
        let target = build.target.name;
        let job = queue::enqueue(client, target, self.runner, &encode(&spec), &self.channel)?;
        let enqueued = Instant::now();
        loop {
            if let Some(bytes) = queue::result_of(client, job)? {
                queue::collected(client, job)?;
                return decode(&bytes).map_err(|e| DbError::Query(format!("job {job}: {e}")));
            }
            super::wait_for_notification(client, POLL);
            if enqueued.elapsed() > LONELY && !self.warned.load(Ordering::Relaxed) {
                self.warn_if_alone(client, target)?;
            }
        }
    }

    fn warn_if_alone(&self, client: &mut Client, target: &str) -> Result<(), DbError> {
        if queue::live_workers(client, target, self.runner)? == 0 {
            self.warned.store(true, Ordering::Relaxed);
            eprintln!(
                "minnow: jobs for {target} on {} are waiting, and no worker serves them: start \
                 one with `minnow farm worker --db {} --target {target} --board {}`",
                self.runner,
                redact(&self.url),
                self.runner
            );
        }
        Ok(())
    }
}

/// A number that differs between measurers of one process.
fn nonce() -> u64 {
    use std::sync::atomic::AtomicU64;
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Measurer for FarmMeasurer {
    fn runner(&self) -> &'static str {
        self.runner
    }

    fn unit(&self) -> &'static str {
        self.unit
    }

    fn measure(&self, build: &Build) -> Result<Measurement, MeasureError> {
        let farm_failed = |e: DbError| MeasureError::Board {
            board: "farm".into(),
            message: format!("{e} (the database at {})", redact(&self.url)),
        };
        let mut client = self.client().map_err(farm_failed)?;
        let result = self.run_job(&mut client, build).map_err(farm_failed)?;
        self.put_back(client);
        result.into_measurement("farm worker")
    }
}
