//! `minnow farm worker --db postgres://... --target T [--board qemu|probe[:SEL]] [--jobs N]
//! [--lease SECONDS]` and `minnow farm status --db postgres://... [--json]`.

use super::pipeline;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use minnow_autotune::farm::queue::WorkerInfo;
use minnow_autotune::farm::status::FarmStatus;
use minnow_autotune::farm::worker::{MeasurerFactory, Shutdown, WorkerEvent};
use minnow_autotune::farm::{self, Worker, WorkerOptions, DEFAULT_LEASE};
use minnow_autotune::measure::qemu::QemuMeasurer;
use minnow_autotune::measure::Measurer;
use minnow_targets::Target;
use std::sync::Arc;
use std::time::Duration;

/// `minnow farm` subcommands.
#[derive(Subcommand, Debug)]
pub enum FarmCommand {
    /// Lease measurement jobs from the farm database and run them on this host's board.
    Worker(WorkerArgs),
    /// Show the farm's workers, boards, queues and throughput.
    Status(StatusArgs),
}

/// Arguments of `minnow farm worker`.
#[derive(Args, Debug)]
pub struct WorkerArgs {
    /// The farm database, postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE.
    #[arg(long)]
    db: String,
    /// The target whose jobs this worker runs (see `minnow targets`).
    #[arg(long)]
    target: String,
    /// The board: `qemu` (the target's emulated board) or `probe[:SELECTOR]` (a real board
    /// through probe-rs; SELECTOR is the probe's serial number or VID:PID[:SERIAL]).
    #[arg(long, default_value = "qemu")]
    board: String,
    /// Jobs run at once (emulated boards: default this machine's cores; a probe runs one).
    #[arg(long)]
    jobs: Option<usize>,
    /// Seconds a lease lasts without a heartbeat (a job of a killed worker returns to the
    /// queue this long after its last heartbeat).
    #[arg(long, default_value_t = DEFAULT_LEASE.as_secs_f64())]
    lease: f64,
}

/// Arguments of `minnow farm status`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// The farm database.
    #[arg(long)]
    db: String,
    /// Print one JSON object instead of the tables.
    #[arg(long)]
    json: bool,
}

/// Runs a `minnow farm` subcommand.
pub fn farm(command: &FarmCommand) -> Result<()> {
    match command {
        FarmCommand::Worker(args) => worker(args),
        FarmCommand::Status(args) => status(args),
    }
}

fn check_url(db: &str) -> Result<()> {
    if !farm::is_postgres_url(db) {
        bail!("--db {db}: a farm shares a PostgreSQL database; pass its URL, postgres://USER@HOST/DATABASE");
    }
    Ok(())
}

fn status(args: &StatusArgs) -> Result<()> {
    check_url(&args.db)?;
    let mut client = farm::connect(&args.db)?;
    farm::schema::migrate(&mut client, &args.db)?;
    let status = FarmStatus::read(&mut client)?;
    if args.json {
        super::emit(&serde_json::to_string_pretty(&status)?)
    } else {
        super::emit(&status.table())
    }
}

fn worker(args: &WorkerArgs) -> Result<()> {
    check_url(&args.db)?;
    let target = minnow_targets::find(&args.target).map_err(anyhow::Error::msg)?;
    if !(args.lease >= 1.0 && args.lease <= 3600.0) {
        bail!("--lease {}: pass between 1 and 3600 seconds", args.lease);
    }
    let lease = Duration::from_secs_f64(args.lease);
    let (runner, board, slots, measurer) = board(args, &target)?;
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    let info = WorkerInfo {
        host: host.clone(),
        pid: std::process::id(),
        target: target.name.into(),
        runner: runner.into(),
        board: format!("{board}@{host}:{}", std::process::id()),
        slots,
        lease,
    };
    let shutdown = Arc::new(Shutdown::default());
    watch_signals(Arc::clone(&shutdown))?;
    eprintln!(
        "minnow farm: worker for {} on {runner} ({board}, {slots} at once) on {}; Ctrl-C finishes the running jobs and stops, twice gives them back",
        target.name,
        farm::redact(&args.db)
    );
    let worker = Worker {
        options: WorkerOptions {
            url: args.db.clone(),
            info,
        },
        target,
        measurer,
        observer: Arc::new(print_event),
    };
    let summary = worker.run(shutdown).context("the farm worker stopped")?;
    eprintln!(
        "minnow farm: worker {} stopped: {} jobs finished, {} given back",
        summary.id, summary.finished, summary.given_back
    );
    Ok(())
}

/// The worker's runner, board name, slots and measurers, checked against the target.
fn board(
    args: &WorkerArgs,
    target: &Target,
) -> Result<(&'static str, String, usize, Arc<MeasurerFactory>)> {
    match args.board.as_str() {
        "qemu" => {
            pipeline::check_emulator(target).context("cannot run jobs on the emulated board")?;
            let machine = target.board.as_ref().map_or("qemu", |b| b.machine);
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let factory: Arc<MeasurerFactory> =
                Arc::new(|timeout| Box::new(QemuMeasurer { timeout }) as Box<dyn Measurer + Send>);
            Ok((
                "qemu",
                machine.to_string(),
                args.jobs.unwrap_or(cores).max(1),
                factory,
            ))
        }
        b if b == "probe" || b.starts_with("probe:") => {
            if args.jobs.is_some_and(|j| j > 1) {
                bail!("--jobs {}: a probe runs one job at a time; start one worker per probe, each with --board probe:SERIAL", args.jobs.unwrap_or(1));
            }
            let (name, factory) = pipeline::probe_measurer_factory(b, target)?;
            Ok(("probe", name, 1, factory))
        }
        other => bail!("unknown board `{other}`; use qemu or probe[:SELECTOR]"),
    }
}

/// SIGINT and SIGTERM ask the worker to stop (once: finish the running jobs; twice: give
/// them back).
fn watch_signals(shutdown: Arc<Shutdown>) -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .context("cannot install the signal handlers")?;
    std::thread::spawn(move || {
        for _ in signals.forever() {
            shutdown.request();
            if shutdown.requests() == 1 {
                eprintln!(
                    "minnow farm: stopping after the running jobs (again to give them back now)"
                );
            } else {
                eprintln!("minnow farm: giving the running jobs back to the queue");
            }
        }
    });
    Ok(())
}

fn print_event(e: &WorkerEvent) {
    match e {
        WorkerEvent::Leased { job, attempts } if *attempts > 1 => {
            eprintln!("minnow farm: job {job} leased (attempt {attempts})")
        }
        WorkerEvent::Leased { .. } => {}
        WorkerEvent::Finished {
            job,
            outcome,
            seconds,
        } => eprintln!("minnow farm: job {job} {outcome} in {seconds:.1} s"),
        WorkerEvent::BoardFailed { job, message } => {
            eprintln!("minnow farm: the board failed on job {job}, which goes to another board: {message}")
        }
        WorkerEvent::LeaseLost { job } => eprintln!(
            "minnow farm: the lease on job {job} lapsed before it finished; another worker has it (raise --lease if jobs take longer than the heartbeat allows)"
        ),
        WorkerEvent::DbTrouble { message } => {
            eprintln!("minnow farm: the database did not answer ({message}); retrying")
        }
    }
}
