//! [`Tuner`]: the autotuning loop over a model's tasks.
//!
//! Every task's default schedule is evaluated first. Then, round by round, the task whose
//! next trial is expected to save the most (the gain its best figure showed lately plus a
//! presumed gain shared over its trials, times its occurrences: see `next_task`) gets a
//! batch of [`BATCH`] candidates from its [`TaskSearch`]; the batch is
//! evaluated, `parallel` measurements at a time, and the cost model is retrained on every
//! valid figure so far.
//!
//! The tuning database is the memo of the measurer: a candidate it already holds for the
//! same workload, target and runner is not measured again, its record stands in. A run is a
//! deterministic function of its seed, its trial count and the figures, so a second run with
//! the same arguments measures nothing, and one with more trials replays the first and
//! measures only the rest. The batch size does not depend on `parallel`, so neither do the
//! records.

use crate::db::{DbError, Record, Run, RunTask, Status, TuningDb};
use crate::measure::{MeasureError, Measurer};
use crate::model::CostModel;
use crate::search::{Proposal, Strategy, TaskSearch};
use crate::task::Task;
use crate::trial::{run_trial, Outcome, Prescreen, Reference};
use minnow_schedules::Schedule;
use minnow_targets::Target;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::collections::HashMap;

/// Candidates per round.
pub const BATCH: usize = 4;

/// How to tune.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TuneOptions {
    /// Trials in total over every task, the defaults included.
    pub trials: usize,
    /// Seeds every random choice.
    pub seed: u64,
    /// Measurements run at once.
    pub parallel: usize,
    /// How candidates are chosen.
    pub strategy: Strategy,
}

/// What the tuner reports as it goes.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// The tasks and the trials each would get in proportion to its default figure times
    /// its occurrences; the tuner then moves trials towards the tasks that keep improving.
    Planned {
        /// `(layer, op, expected trials)` per task.
        tasks: Vec<(String, String, usize)>,
    },
    /// A trial finished.
    Trial {
        /// The task's index.
        task: usize,
        /// The task's trials so far.
        done: usize,
        /// The task's best valid figure so far.
        best: Option<f64>,
        /// Its record came from the database (not measured now).
        cached: bool,
    },
}

/// One task's result.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskResult {
    /// The task's layer name (its first step).
    pub layer: String,
    /// Its op.
    pub op: String,
    /// The model's steps of this workload.
    pub occurrences: usize,
    /// The default schedule's figure (`None` if it failed).
    pub default: Option<f64>,
    /// The best valid figure.
    pub best: Option<f64>,
    /// The best schedule.
    pub best_schedule: Option<Schedule>,
    /// Trials evaluated.
    pub trials: usize,
    /// Of those, measured now (the rest came from the database).
    pub measured: usize,
    /// Of those, not valid (wrong, failed or timed out).
    pub invalid: usize,
    /// The best valid figure after each trial.
    pub curve: Vec<Option<f64>>,
}

/// Every task's result.
#[derive(Clone, Debug, PartialEq)]
pub struct TuneResult {
    /// Per task, in the model's order.
    pub tasks: Vec<TaskResult>,
    /// The figures' unit.
    pub unit: String,
}

/// Why tuning stopped.
#[derive(Debug, thiserror::Error)]
pub enum TuneError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The reference outputs of a task cannot be computed.
    #[error("cannot compute the reference outputs of {layer}: {message}")]
    Reference {
        /// The task's layer.
        layer: String,
        /// Why.
        message: String,
    },
    /// The board failed (not a candidate), again after retries: the records so far are kept,
    /// and the same command resumes once the board answers.
    #[error("{0}; the trials measured so far are in the database, and running the same command again resumes")]
    Board(String),
    /// Too few trials to measure each default once.
    #[error("--trials {trials} is fewer than the model's {tasks} tunable workloads: each default is measured first; pass --trials {tasks} or more")]
    TooFewTrials {
        /// Trials asked for.
        trials: usize,
        /// Tasks.
        tasks: usize,
    },
}

/// The tuning loop's inputs.
pub struct Tuner<'a> {
    /// The model's file (logged with the run).
    pub model: &'a str,
    /// The target.
    pub target: &'a Target,
    /// Measures candidates.
    pub measurer: &'a (dyn Measurer + Sync),
    /// Checks each candidate first, where given ([`Prescreen`]).
    pub prescreen: Option<Prescreen<'a>>,
    /// Holds the records.
    pub db: &'a mut dyn TuningDb,
    /// How.
    pub options: TuneOptions,
    /// Told of progress.
    pub observer: &'a mut dyn FnMut(&Event),
}

/// One task's state in the loop.
struct State<'t> {
    search: TaskSearch<'t>,
    reference: Reference,
    /// Records of this runner, by schedule JSON.
    cache: HashMap<String, Record>,
    result: TaskResult,
    weight: f64,
}

impl Tuner<'_> {
    /// Tunes `tasks` (from [`crate::task::extract_tasks`]).
    pub fn tune(&mut self, tasks: &[Task]) -> Result<TuneResult, TuneError> {
        let o = self.options;
        if o.trials < tasks.len() {
            return Err(TuneError::TooFewTrials {
                trials: o.trials,
                tasks: tasks.len(),
            });
        }
        let mut states = tasks
            .iter()
            .map(|t| self.state(t))
            .collect::<Result<Vec<_>, _>>()?;
        let mut log = Log {
            run: self.db.begin_run(&self.run(tasks))?,
            seq: 0,
            pool: rayon::ThreadPoolBuilder::new()
                .num_threads(o.parallel.max(1))
                .build()
                .ok(),
        };
        let mut model = CostModel::new(o.seed);
        let mut rng = ChaCha8Rng::seed_from_u64(o.seed);
        let tilings = crate::tilings::Tilings::default();
        let defaults: Vec<(usize, Proposal)> = (0..states.len())
            .filter_map(|i| {
                let t = states[i].search.task;
                let schedule = t
                    .default_schedule(self.target, &tilings)
                    .unwrap_or_default();
                states[i].search.fixed(schedule, "default").map(|p| (i, p))
            })
            .collect();
        self.evaluate(&mut states, &mut model, &mut log, defaults)?;
        for s in &mut states {
            let per_step = s.result.default.unwrap_or(s.search.task.macs as f64);
            s.weight = per_step * s.result.occurrences as f64;
        }
        let plan = plan(&states, o.trials);
        (self.observer)(&Event::Planned {
            tasks: states
                .iter()
                .zip(&plan)
                .map(|(s, n)| (s.result.layer.clone(), s.result.op.clone(), *n))
                .collect(),
        });
        let mut done: usize = states.iter().map(|s| s.result.trials).sum();
        while done < o.trials {
            let Some(t) = next_task(&states) else {
                break;
            };
            let n = BATCH.min(o.trials - done);
            let batch = states[t].search.propose(n, o.strategy, &model, &mut rng);
            done += batch.len();
            let batch = batch.into_iter().map(|p| (t, p)).collect();
            self.evaluate(&mut states, &mut model, &mut log, batch)?;
        }
        Ok(TuneResult {
            tasks: states.into_iter().map(|s| s.result).collect(),
            unit: self.measurer.unit().into(),
        })
    }

    fn state<'t>(&self, task: &'t Task) -> Result<State<'t>, TuneError> {
        let seed = u64::from_str_radix(&task.key.0[..16], 16).unwrap_or(0);
        let reference = Reference::new(task, seed).map_err(|message| TuneError::Reference {
            layer: task.layer.clone(),
            message,
        })?;
        let runner = self.measurer.runner();
        let cache = self
            .db
            .records(&task.key, self.target.name)?
            .into_iter()
            .filter(|r| r.runner == runner)
            .filter_map(|r| Some((serde_json::to_string(&r.schedule).ok()?, r)))
            .collect();
        let machine = crate::cost::machine(self.target);
        Ok(State {
            search: TaskSearch::new(task, machine, self.target.features),
            reference,
            cache,
            result: TaskResult {
                layer: task.layer.clone(),
                op: task.op.clone(),
                occurrences: task.steps.len(),
                default: None,
                best: None,
                best_schedule: None,
                trials: 0,
                measured: 0,
                invalid: 0,
                curve: Vec::new(),
            },
            weight: 0.0,
        })
    }

    /// Evaluates `batch` (task index, proposal): records from the database where it has
    /// them, the rest measured `parallel` at a time; then updates each task, the database
    /// and the model in the batch's order.
    fn evaluate(
        &mut self,
        states: &mut [State],
        model: &mut CostModel,
        log: &mut Log,
        batch: Vec<(usize, Proposal)>,
    ) -> Result<(), TuneError> {
        let missing: Vec<&(usize, Proposal)> = batch
            .iter()
            .filter(|(t, p)| !states[*t].cache.contains_key(&p.json))
            .collect();
        let measured: Vec<Result<Outcome, MeasureError>> = {
            let (target, measurer, screen) = (self.target, self.measurer, self.prescreen);
            let states = &*states;
            let run = |(t, p): &&(usize, Proposal)| {
                let s = &states[*t];
                let task = s.search.task;
                run_trial(task, &p.schedule, target, measurer, &s.reference, screen)
            };
            match &log.pool {
                Some(pool) => pool.install(|| missing.par_iter().map(run).collect()),
                None => missing.iter().map(run).collect(),
            }
        };
        let mut fresh = measured.into_iter();
        for (t, p) in batch {
            let (record, cached) = match states[t].cache.get(&p.json) {
                Some(r) => (r.clone(), true),
                None => {
                    let outcome = fresh
                        .next()
                        .expect("one outcome per missing candidate")
                        .map_err(|e| TuneError::Board(e.to_string()))?;
                    let mut record = self.record(states[t].search.task, &p, outcome);
                    record.id = Some(self.db.insert(&record)?);
                    states[t].cache.insert(p.json.clone(), record.clone());
                    (record, false)
                }
            };
            if let Some(id) = record.id {
                self.db.log_trial(log.run, log.seq, t, id)?;
            }
            log.seq += 1;
            let s = &mut states[t];
            s.learn(&p, &record, cached, model);
            (self.observer)(&Event::Trial {
                task: t,
                done: s.result.trials,
                best: s.result.best,
                cached,
            });
        }
        model.train();
        Ok(())
    }

    fn run(&self, tasks: &[Task]) -> Run {
        Run {
            id: None,
            model: self.model.into(),
            target: self.target.name.into(),
            runner: self.measurer.runner().into(),
            strategy: self.options.strategy.name().into(),
            seed: self.options.seed,
            trials: self.options.trials,
            started_at: now(),
            minnow_version: env!("CARGO_PKG_VERSION").into(),
            tasks: tasks
                .iter()
                .map(|t| RunTask {
                    key: t.key.clone(),
                    layer: t.layer.clone(),
                    op: t.op.clone(),
                    occurrences: t.steps.len(),
                })
                .collect(),
        }
    }

    fn record(&self, task: &Task, p: &Proposal, outcome: Outcome) -> Record {
        Record {
            id: None,
            key: task.key.clone(),
            workload: task.workload.clone(),
            target: self.target.name.into(),
            runner: self.measurer.runner().into(),
            schedule: p.schedule.clone(),
            genome: p
                .genome
                .as_ref()
                .and_then(|g| serde_json::to_string(g).ok()),
            status: outcome.status,
            figure: outcome.figure,
            unit: self.measurer.unit().into(),
            message: outcome.message,
            origin: p.origin.into(),
            measured_at: now(),
            minnow_version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// Where a run's trials are logged, and the threads that measure them (built once per
/// run; `None` if the threads cannot be made, and then measurements run one at a time).
struct Log {
    run: i64,
    seq: usize,
    pool: Option<rayon::ThreadPool>,
}

/// Seconds since the Unix epoch.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl State<'_> {
    /// Takes in one evaluated candidate.
    fn learn(&mut self, p: &Proposal, record: &Record, cached: bool, model: &mut CostModel) {
        let r = &mut self.result;
        r.trials += 1;
        r.measured += usize::from(!cached);
        let figure = record.figure.filter(|_| record.status == Status::Ok);
        if p.genome.is_none() && p.origin == "default" {
            r.default = figure;
        }
        match figure {
            None => r.invalid += 1,
            Some(f) => {
                if r.best.is_none_or(|b| f < b) {
                    r.best = Some(f);
                    r.best_schedule = Some(p.schedule.clone());
                }
                let base = r.default.unwrap_or(f);
                model.add(p.features.clone(), f / base);
                if let Some(g) = &p.genome {
                    self.search.measured(g, f / base);
                }
            }
        }
        r.curve.push(r.best);
    }
}

/// Trials each task is expected to get: the defaults, then the rest in proportion to the
/// tasks' weights (largest remainders).
fn plan(states: &[State], trials: usize) -> Vec<usize> {
    let total: f64 = states.iter().map(|s| s.weight).sum::<f64>().max(1.0);
    let rest = trials.saturating_sub(states.len());
    let shares: Vec<f64> = states
        .iter()
        .map(|s| rest as f64 * s.weight / total)
        .collect();
    let mut plan: Vec<usize> = shares.iter().map(|s| 1 + s.floor() as usize).collect();
    let mut left = trials.saturating_sub(plan.iter().sum());
    let mut order: Vec<usize> = (0..states.len()).collect();
    order.sort_by(|a, b| {
        (shares[*b] - shares[*b].floor()).total_cmp(&(shares[*a] - shares[*a].floor()))
    });
    for i in order.into_iter().cycle().take(states.len() * 2) {
        if left == 0 {
            break;
        }
        plan[i] += 1;
        left -= 1;
    }
    plan
}

/// Trials back over which a task's observed gain is measured.
pub const GAIN_WINDOW: usize = 2 * BATCH;

/// The relative gain a task is presumed to still hold, spread over its trials so far: the
/// optimistic term that keeps a task without recent gains in the running.
pub const PRESUMED_GAIN: f64 = 0.05;

/// The task with candidates left whose next trial is expected to save the most: its
/// occurrences times the gain per trial its best figure showed over the last
/// [`GAIN_WINDOW`] trials, plus [`PRESUMED_GAIN`] of its best figure over its trials (the
/// gradient task scheduler of Ansor, in a simpler form). A task that has found nothing
/// lately still gets trials in proportion to its weight; one that keeps improving gets
/// more. Ties go to the earlier task.
fn next_task(states: &[State]) -> Option<usize> {
    (0..states.len())
        .filter(|i| !states[*i].search.exhausted)
        .max_by(|a, b| {
            let p = |i: usize| priority(&states[i].result, states[i].weight);
            p(*a).total_cmp(&p(*b)).then(b.cmp(a))
        })
}

/// Expected saving of a task's next trial (see [`next_task`]).
/// While the task has no valid figure, `weight` (default figure, or MACs, times
/// occurrences) stands in for its best figure times its occurrences, with no gain seen.
fn priority(r: &TaskResult, weight: f64) -> f64 {
    let occurrences = r.occurrences as f64;
    let Some(best) = r.best else {
        return PRESUMED_GAIN * weight / r.trials.max(1) as f64;
    };
    let back = r.curve.len().saturating_sub(GAIN_WINDOW + 1);
    let earlier = r.curve[back..]
        .iter()
        .flatten()
        .next()
        .copied()
        .unwrap_or(best);
    let span = (r.curve.len() - back).saturating_sub(1).max(1) as f64;
    let observed = (earlier - best) / span;
    occurrences * (observed + PRESUMED_GAIN * best / r.trials.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(occurrences: usize, curve: &[f64]) -> TaskResult {
        TaskResult {
            layer: "l".into(),
            op: "CONV_2D".into(),
            occurrences,
            default: curve.first().copied(),
            best: curve.last().copied(),
            best_schedule: None,
            trials: curve.len(),
            measured: curve.len(),
            invalid: 0,
            curve: curve.iter().map(|f| Some(*f)).collect(),
        }
    }

    #[test]
    fn a_task_that_keeps_improving_outranks_a_stalled_one_of_equal_weight() {
        let stalled = result(1, &[1000.0; 9]);
        let improving = result(
            1,
            &[
                1000.0, 990.0, 980.0, 970.0, 960.0, 950.0, 940.0, 930.0, 920.0,
            ],
        );
        assert!(priority(&improving, 0.0) > priority(&stalled, 0.0));
    }

    #[test]
    fn a_stalled_task_keeps_a_share_in_proportion_to_its_weight() {
        let heavy = result(4, &[1000.0; 9]);
        let light = result(1, &[1000.0; 9]);
        let (h, l) = (priority(&heavy, 0.0), priority(&light, 0.0));
        assert!(l > 0.0);
        assert!((h / l - 4.0).abs() < 1e-9);
        let later = result(4, &[1000.0; 36]);
        assert!(
            (priority(&later, 0.0) - l).abs() < 1e-9,
            "4x the trials, 4x the weight: even"
        );
    }

    #[test]
    fn the_observed_gain_looks_back_only_over_the_window() {
        let mut curve = vec![2000.0, 1000.0];
        curve.extend([1000.0; GAIN_WINDOW]);
        let old_gain = result(1, &curve);
        let flat = result(1, &[1000.0; GAIN_WINDOW + 2]);
        assert!((priority(&old_gain, 0.0) - priority(&flat, 0.0)).abs() < 1e-9);
    }

    #[test]
    fn a_task_without_a_valid_figure_ranks_as_a_stalled_task_of_its_weight() {
        let mut none = result(2, &[]);
        none.trials = 4;
        let stalled = result(2, &[400.0; 4]);
        assert!((priority(&none, 800.0) - priority(&stalled, 0.0)).abs() < 1e-9);
        assert!((priority(&none, 800.0) - PRESUMED_GAIN * 200.0).abs() < 1e-9);
    }
}
