//! `minnow tune MODEL --target T [--trials N] [--runner host|qemu|probe] [--prescreen host|qemu] [--probe SEL] [--db PATH|URL]
//! [--parallel N] [--seed S] [--search model|random] [--report FILE] [--json]`.

use super::pipeline;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use minnow_autotune::apply::check_budget;
use minnow_autotune::compile::{schedule_lowered, Schedules};
use minnow_autotune::db::DEFAULT_PATH;
use minnow_autotune::farm::{self, FarmMeasurer};
use minnow_autotune::measure::host::HostMeasurer;
use minnow_autotune::measure::probe::ProbeMeasurer;
use minnow_autotune::measure::qemu::QemuMeasurer;
use minnow_autotune::measure::Measurer;
use minnow_autotune::search::Strategy;
use minnow_autotune::task::extract_tasks_of;
use minnow_autotune::trial::Prescreen;
use minnow_autotune::tuner::{Event, TuneOptions, TuneResult, Tuner, BATCH};
use minnow_targets::Target;
use serde_json::json;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Where candidates are measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Runner {
    /// The host compiler and clock (pre-screening; noisy).
    Host,
    /// The target's emulated board (deterministic instruction counts).
    Qemu,
    /// A real board through probe-rs.
    Probe,
}

/// How candidates are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Search {
    /// Evolutionary search on the learned cost model, with a random share.
    Model,
    /// Uniform random draws.
    Random,
}

/// Arguments of `minnow tune`.
#[derive(Args, Debug)]
pub struct TuneArgs {
    /// The model file (.tflite or .onnx).
    model: PathBuf,
    /// The target (see `minnow targets`).
    #[arg(long)]
    target: String,
    /// Run the first layers in bands of rows, for a smaller arena at the price of the rows
    /// the bands share computed twice: `off` (the default), `auto` (the stage and band count
    /// with the smallest arena, at most 5% more MACs) or a number of bands.
    #[arg(long, default_value = "off")]
    pub patches: minnow::Patching,
    /// Trials in total over every tunable layer (each layer's default counts as one).
    #[arg(long, default_value_t = 64)]
    trials: usize,
    /// Where to measure: `qemu` for microcontroller targets and `host` for the host by
    /// default.
    #[arg(long, value_enum)]
    runner: Option<Runner>,
    /// Check every candidate on a cheaper runner before the board: `host` (the candidate's C
    /// built by the host compiler) or `qemu` (the target's emulated board, for --runner
    /// probe). A wrong, crashing or hanging candidate is then recorded without a turn on the
    /// board.
    #[arg(long, value_enum, value_name = "RUNNER")]
    prescreen: Option<Runner>,
    /// With --runner probe: the probe, `probe` (the only one attached) or `probe:SELECTOR`
    /// (serial number or VID:PID[:SERIAL]).
    #[arg(long)]
    probe: Option<String>,
    /// The tuning database: a SQLite file (created if missing), or a farm's PostgreSQL
    /// database as postgres://USER@HOST/DB, whose workers then measure the candidates.
    #[arg(long, default_value = DEFAULT_PATH)]
    db: String,
    /// Measurements run at once (default: this machine's cores; a round's batch on a farm).
    #[arg(long)]
    parallel: Option<usize>,
    /// Seeds every random choice: the same seed and trials give the same records.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// How candidates are chosen.
    #[arg(long, value_enum, default_value_t = Search::Model)]
    search: Search,
    /// The most arena bytes the tuned build may plan: layers the default runs in place, and
    /// that would not fit otherwise, search only loop orders that keep them in place; tuned
    /// layers whose loop order would still need more keep the default schedule; a model
    /// whose default needs more is an error.
    #[arg(long, value_name = "BYTES")]
    max_arena: Option<usize>,
    /// Also write an HTML report (best so far per layer, default vs tuned, the arena).
    #[arg(long)]
    report: Option<PathBuf>,
    /// Seconds one candidate's run may take before it counts as hanging.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

/// Runs `minnow tune`.
pub fn tune(args: &TuneArgs) -> Result<()> {
    let target = minnow_targets::find(&args.target).map_err(anyhow::Error::msg)?;
    let measurer = measurer(args, &target)?;
    let screen = prescreen(args, &target)?;
    if args.trials == 0 {
        bail!("--trials 0 measures nothing; pass at least one trial per tunable layer");
    }
    let graph = super::load_model(&args.model)?;
    let name = pipeline::model_name(&args.model, None);
    let lowered = minnow_autotune::compile::lower(&graph, &name, &target, args.patches)?;
    // The untuned build: the budget is checked on it before any trial, and the tasks are
    // placed by it.
    let untuned = schedule_lowered(lowered.clone(), &target, Schedules::Default)?;
    check_budget(&untuned.program, &untuned.plan, args.max_arena)?;
    let tasks = extract_tasks_of(&lowered, &untuned, &target, args.max_arena)?;
    if tasks.is_empty() {
        bail!(
            "{} has no tunable layers (convolutions, depthwise convolutions, fully connected): its default build is already final",
            args.model.display()
        );
    }
    let mut db = pipeline::open_db(&args.db)?;
    // A farm's boards are elsewhere: a round's whole batch goes to the queue at once.
    let parallel = args.parallel.unwrap_or_else(|| {
        if farm::is_postgres_url(&args.db) {
            BATCH
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    });
    let options = TuneOptions {
        trials: args.trials,
        seed: args.seed,
        parallel: parallel.max(1),
        strategy: match args.search {
            Search::Model => Strategy::Model,
            Search::Random => Strategy::Random,
        },
    };
    let started = Instant::now();
    let progress = Progress::new(args.json);
    let mut observer = |e: &Event| progress.event(e);
    let model = args.model.display().to_string();
    let result = Tuner {
        model: &model,
        target: &target,
        measurer: measurer.as_ref(),
        prescreen: screen.as_ref().map(|s| Prescreen {
            target: s.target.as_ref().unwrap_or(&target),
            measurer: s.measurer.as_ref(),
        }),
        db: db.as_mut(),
        options,
        observer: &mut observer,
    }
    .tune(&tasks)?;
    progress.finish();
    let elapsed = started.elapsed();
    let whole = super::tuned::whole_model(
        &graph,
        &name,
        &target,
        args.patches,
        db.as_ref(),
        measurer.as_ref(),
        args.max_arena,
    )?;
    if let Some(path) = &args.report {
        let model = Some((&graph, name.as_str(), &target));
        super::tuned::write_report(path, db.as_ref(), model, args.max_arena)?;
        eprintln!("minnow: wrote the report {}", path.display());
    }
    let text = if args.json {
        json_report(args, &target, &result, &whole, elapsed, parallel)
    } else {
        table(args, &target, &result, &whole, elapsed)
    };
    super::emit(&text)
}

/// The runner `--prescreen` names.
struct ScreenRunner {
    /// What candidates are built for there (`None`: the tuned target).
    target: Option<Target>,
    /// Where they run.
    measurer: Box<dyn Measurer + Sync>,
}

/// The runner of `--prescreen`, checked: a pre-screen that cannot run would record every
/// candidate as failed.
fn prescreen(args: &TuneArgs, target: &Target) -> Result<Option<ScreenRunner>> {
    let timeout = Duration::from_secs(args.timeout.max(1));
    let runner = runner(args, target);
    match args.prescreen {
        None => Ok(None),
        Some(p) if p == runner => bail!(
            "--prescreen {} is the runner itself: pre-screen on a cheaper runner than --runner {0} (host, or qemu for --runner probe)",
            p.name()
        ),
        Some(Runner::Probe) => bail!(
            "--prescreen probe would take the board's turns: pre-screen with host or qemu"
        ),
        Some(Runner::Host) => {
            let host = minnow_targets::find("host").map_err(anyhow::Error::msg)?;
            if !host.toolchain.installed() {
                bail!(
                    "--prescreen host needs the host C compiler: {}",
                    host.toolchain.missing_message(host.name)
                );
            }
            Ok(Some(ScreenRunner {
                target: Some(host),
                measurer: Box::new(HostMeasurer { timeout }),
            }))
        }
        Some(Runner::Qemu) => {
            pipeline::check_emulator(target).context("cannot pre-screen on the emulated board")?;
            Ok(Some(ScreenRunner {
                target: None,
                measurer: Box::new(QemuMeasurer { timeout }),
            }))
        }
    }
}

impl Runner {
    /// As `--runner` spells it (clap's name for the value, as `Engine::name` in `run`).
    fn name(self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    }
}

/// The runner `--runner` names, or the target's default: the host for the host, its
/// emulated board for a microcontroller.
fn runner(args: &TuneArgs, target: &Target) -> Runner {
    args.runner.unwrap_or(if target.is_host() {
        Runner::Host
    } else {
        Runner::Qemu
    })
}

/// The measurer `--runner` names, checked against the target.
fn measurer(args: &TuneArgs, target: &Target) -> Result<Box<dyn Measurer + Sync>> {
    let runner = runner(args, target);
    let timeout = Duration::from_secs(args.timeout.max(1));
    if farm::is_postgres_url(&args.db) {
        return farm_measurer(args, target, runner, timeout);
    }
    Ok(match runner {
        Runner::Host if !target.is_host() => bail!(
            "--runner host times code built for this machine, not for {}: use --runner qemu, or --target host",
            target.name
        ),
        Runner::Host => Box::new(HostMeasurer { timeout }),
        Runner::Qemu if target.board.is_none() => bail!(
            "target {} has no emulated board; use --runner host, or a microcontroller target",
            target.name
        ),
        Runner::Qemu => {
            // Checked before any trial: otherwise every candidate would be recorded as failed.
            pipeline::check_emulator(target).context("cannot tune on the emulated board")?;
            Box::new(QemuMeasurer { timeout })
        }
        Runner::Probe => {
            let board = args.probe.as_deref().unwrap_or("probe");
            let measurer = pipeline::probe_measurer(board, target)?;
            Box::new(ProbeMeasurer {
                timeout,
                ..measurer
            })
        }
    })
}

/// The measurer of a farm tune: jobs in the database for the workers of `runner`.
fn farm_measurer(
    args: &TuneArgs,
    target: &Target,
    runner: Runner,
    timeout: Duration,
) -> Result<Box<dyn Measurer + Sync>> {
    let (name, unit) = match runner {
        Runner::Host => bail!(
            "--runner host measures on this machine, and a farm (--db postgres://...) measures on its workers' boards: use --runner qemu or --runner probe"
        ),
        Runner::Qemu if target.board.is_none() => bail!(
            "target {} has no emulated board; pick a microcontroller target",
            target.name
        ),
        Runner::Qemu => ("qemu", "instructions"),
        Runner::Probe => ("probe", "cycles"),
    };
    let measurer = FarmMeasurer::new(&args.db, name, unit, timeout)?;
    if measurer.live_workers(target.name)? == 0 {
        eprintln!(
            "minnow: no farm worker serves {} on {name} yet; the jobs wait in the queue until one \
             starts: `minnow farm worker --db {} --target {} --board {name}`",
            target.name,
            farm::redact(&args.db),
            target.name
        );
    }
    Ok(Box::new(measurer))
}

/// One progress bar per layer on standard error (hidden when it is not a terminal or with
/// `--json`).
struct Progress {
    multi: MultiProgress,
    bars: std::cell::RefCell<Vec<ProgressBar>>,
}

impl Progress {
    fn new(quiet: bool) -> Progress {
        let multi = MultiProgress::new();
        if quiet {
            multi.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        Progress {
            multi,
            bars: Default::default(),
        }
    }

    fn event(&self, e: &Event) {
        match e {
            Event::Planned { tasks } => {
                let style = ProgressStyle::with_template(
                    "{prefix:>28} [{bar:30}] {pos:>3}/{len:3} best {msg} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
                let mut bars = self.bars.borrow_mut();
                for (layer, op, n) in tasks {
                    let bar = self.multi.add(ProgressBar::new(*n as u64));
                    bar.set_style(style.clone());
                    bar.set_prefix(format!("{} {}", short(layer, 18), op));
                    bars.push(bar);
                }
            }
            Event::Trial {
                task, done, best, ..
            } => {
                if let Some(bar) = self.bars.borrow().get(*task) {
                    if *done as u64 > bar.length().unwrap_or(0) {
                        bar.set_length(*done as u64);
                    }
                    bar.set_position(*done as u64);
                    bar.set_message(best.map_or("-".into(), |b| format!("{b:.0}")));
                }
            }
        }
    }

    fn finish(&self) {
        for bar in self.bars.borrow().iter() {
            bar.finish();
        }
    }
}

/// The last `n` characters of a layer name.
fn short(name: &str, n: usize) -> String {
    let chars: Vec<char> = name.chars().collect();
    chars[chars.len().saturating_sub(n)..].iter().collect()
}

/// Before/after per layer and for the whole model, as a table.
fn table(
    args: &TuneArgs,
    target: &Target,
    result: &TuneResult,
    whole: &super::tuned::WholeModel,
    elapsed: Duration,
) -> String {
    let mut t = format!(
        "tuned {} for {} ({} trials, {} measured now, {:.0} s; records in {})\n",
        args.model.display(),
        target.name,
        result.tasks.iter().map(|r| r.trials).sum::<usize>(),
        result.tasks.iter().map(|r| r.measured).sum::<usize>(),
        elapsed.as_secs_f64(),
        args.db
    );
    t += &format!(
        "{:<32} {:<18} {:>5} {:>7} {:>14} {:>14} {:>7}\n",
        "layer", "op", "count", "trials", "default", "tuned", "speedup"
    );
    for r in &result.tasks {
        let fig = |f: Option<f64>| f.map_or("failed".to_string(), |f| format!("{f:.0}"));
        let speedup = match (r.default, r.best) {
            (Some(d), Some(b)) if b > 0.0 => format!("{:.3}x", d / b),
            _ => "-".into(),
        };
        t += &format!(
            "{:<32} {:<18} {:>5} {:>7} {:>14} {:>14} {:>7}\n",
            short(&r.layer, 32),
            r.op,
            r.occurrences,
            r.trials,
            fig(r.default),
            fig(r.best),
            speedup
        );
    }
    t += &format!("whole model ({}): {}\n", result.unit, whole.summary());
    t
}

fn json_report(
    args: &TuneArgs,
    target: &Target,
    result: &TuneResult,
    whole: &super::tuned::WholeModel,
    elapsed: Duration,
    parallel: usize,
) -> String {
    let tasks: Vec<_> = result
        .tasks
        .iter()
        .map(|r| {
            json!({
                "layer": r.layer, "op": r.op, "occurrences": r.occurrences,
                "trials": r.trials, "measured": r.measured, "invalid": r.invalid,
                "default": r.default, "best": r.best, "curve": r.curve,
            })
        })
        .collect();
    let trials: usize = result.tasks.iter().map(|r| r.trials).sum();
    let report = json!({
        "target": target.name,
        "runner": whole.runner,
        "unit": result.unit,
        "db": args.db,
        "seed": args.seed,
        "parallel": parallel,
        "trials": trials,
        "measured": result.tasks.iter().map(|r| r.measured).sum::<usize>(),
        "seconds": elapsed.as_secs_f64(),
        "tasks": tasks,
        "model": whole.json(),
    });
    format!(
        "{}\n",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    )
}
