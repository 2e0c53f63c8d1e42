//! Building a model with the best tuning records: each multiply-accumulate step whose
//! workload has a valid record gets that record's schedule, the others the default. A tuned
//! loop order can keep an op's input and output apart in the arena where the default's let
//! the output overwrite the input as it goes; under an arena budget the workloads that gain
//! least go back to a record in the default's loop order, or to the default, until the plan
//! fits.

use crate::compile::{
    lower, pixels_in_order_outside_channels, schedule_lowered, CompileError, Compiled, Scheduled,
    Schedules,
};
use crate::db::{best_of, DbError, Record, Status, TuningDb};
use crate::task::workload_key;
use minnow_ir::loops::Program;
use minnow_ir::Graph;
use minnow_passes::memory::ArenaPlan;
use minnow_passes::patch::Patching;
use minnow_schedules::{weight_is_private, winograd_allowed, Primitive, Schedule};
use minnow_targets::Target;
use std::collections::HashMap;

/// What applying the records did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Steps (layer names) built with a tuned schedule.
    pub tuned: Vec<String>,
    /// Steps with no valid record, built with the default schedule.
    pub defaulted: Vec<String>,
    /// Steps whose record was set aside for the default to keep the arena within budget.
    pub over_budget: Vec<String>,
    /// Steps whose best record was set aside for a slower one of theirs that keeps the arena
    /// within budget (also in `tuned`).
    pub slower_fit: Vec<String>,
}

impl Applied {
    /// A one-line note for users: how many layers were tuned, and which fell back.
    pub fn note(&self) -> String {
        let total = self.tuned.len() + self.defaulted.len() + self.over_budget.len();
        let mut note = if self.tuned.len() == total {
            format!("tuning records applied to all {total} tunable layers")
        } else {
            format!(
                "tuning records applied to {} of {total} tunable layers",
                self.tuned.len()
            )
        };
        if !self.defaulted.is_empty() {
            note += &format!(
                "; no record for {} (default schedule used: run minnow tune to tune them)",
                self.defaulted.join(", ")
            );
        }
        if !self.slower_fit.is_empty() {
            note += &format!(
                "; a slower record that fits the arena budget kept for {} layer(s)",
                self.slower_fit.len()
            );
        }
        if !self.over_budget.is_empty() {
            note += &format!(
                "; the default schedule kept for {} layer(s) whose tuned loop order needs more \
                 than the arena budget",
                self.over_budget.len()
            );
        }
        note
    }
}

/// Why a tuned build failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The model does not compile.
    #[error(transparent)]
    Compile(#[from] CompileError),
    /// Even the default schedules need more arena than the budget.
    #[error(
        "{model} needs {needed} bytes of arena even with the default schedules, more than the \
         budget of {budget} (--max-arena); run its first layers in bands (--patches auto) for \
         a smaller arena, or raise the budget"
    )]
    OverBudget {
        /// The model.
        model: String,
        /// The default build's arena.
        needed: usize,
        /// The budget.
        budget: usize,
    },
}

/// Fails with [`ApplyError::OverBudget`] if the arena `plan` gives `program` exceeds `budget`.
pub fn check_budget(
    program: &Program,
    plan: &ArenaPlan,
    budget: Option<usize>,
) -> Result<(), ApplyError> {
    match budget {
        Some(budget) if plan.arena_bytes > budget => Err(ApplyError::OverBudget {
            model: program.name.clone(),
            needed: plan.arena_bytes,
            budget,
        }),
        _ => Ok(()),
    }
}

/// The schedule chosen per step index, with its workload key.
type Chosen = HashMap<usize, (String, Schedule)>;

/// Compiles `graph` for `target` (its first layers in bands as `patching` says) with the
/// best record of `db` for each step's workload, its planned arena within `max_arena` bytes
/// where given: while it is over, the tuned workload that saves least (its default's figure
/// less its best, times its steps) takes its best record that keeps the default's in-place
/// loop order, or the default schedule again.
pub fn compile_tuned(
    graph: &Graph,
    name: &str,
    target: &Target,
    patching: Patching,
    db: &dyn TuningDb,
    max_arena: Option<usize>,
) -> Result<(Compiled, Applied), ApplyError> {
    let lowered = lower(graph, name, target, patching)?;
    let picks = pick_records(&lowered.program, target, db)?;
    let build = |chosen: &Chosen| {
        let choose = |i: usize, _: &_, _: &_| chosen.get(&i).map(|(_, s)| s.clone());
        Ok(schedule_lowered(
            lowered.clone(),
            target,
            Schedules::Chosen(&choose),
        )?)
    };
    // Plans are weighed unemitted; only the one kept becomes C.
    let (compiled, applied) = match max_arena {
        None => (build(&picks.chosen)?, picks.applied),
        Some(budget) => fit_budget(picks, budget, &lowered.program, &build)?,
    };
    Ok((compiled.emit(target), applied))
}

/// The records a tuned build starts from.
struct Picks {
    /// The best record's schedule per tuned step.
    chosen: Chosen,
    /// Per workload, what its best records save over its default on all its steps.
    gains: HashMap<String, f64>,
    /// Per tuned step, its workload's best record valid for it that runs its pixels in order
    /// outside its channels (so that its op can still write its output over its input as it
    /// goes, as the default's does): what an arena budget falls back to.
    fallbacks: HashMap<usize, Schedule>,
    /// Which steps are tuned and which defaulted so far.
    applied: Applied,
}

/// The best valid record of `db` for each step of `program`.
fn pick_records(
    program: &Program,
    target: &Target,
    db: &dyn TuningDb,
) -> Result<Picks, ApplyError> {
    let mut picks = Picks {
        chosen: HashMap::new(),
        gains: HashMap::new(),
        fallbacks: HashMap::new(),
        applied: Applied::default(),
    };
    let mut by_key: HashMap<String, Vec<Record>> = HashMap::new();
    for (index, step) in program.steps.iter().enumerate() {
        let Some(r) = &step.reduction else { continue };
        let (key, _) = workload_key(r, weight_is_private(program, index), target);
        // A record whose schedule no longer applies (an older minnow's) is passed over, and
        // so is one of Winograd pairs for weights that cannot take them: the workload key
        // names shapes, not weights, so another model's record may meet weights that are
        // shared with another op, or offset, here.
        let winograd = winograd_allowed(program, index, r);
        let valid = |rec: &&Record| {
            rec.schedule.apply(r).is_ok()
                && (winograd || !rec.schedule.steps.contains(&Primitive::WinogradPairs))
        };
        // A workload's steps share its records: read once.
        if !by_key.contains_key(&key.0) {
            by_key.insert(key.0.clone(), db.records(&key, target.name)?);
        }
        let records = &by_key[&key.0];
        let best = best_of(records).filter(|rec| valid(&rec));
        let applied = &mut picks.applied;
        match best {
            // The default measured best: the step builds as an untuned one does (channels
            // outermost where its operands are apart anyway), not as the record's standalone
            // program did.
            Some(rec) if rec.origin == "default" => applied.tuned.push(step.name.clone()),
            Some(rec) => {
                *picks.gains.entry(key.0.clone()).or_default() += gain(records, &rec);
                let in_place = |rec: &&Record| {
                    rec.origin != "default"
                        && valid(rec)
                        && pixels_in_order_outside_channels(r, &rec.schedule)
                };
                let fallback: Vec<Record> = records.iter().filter(in_place).cloned().collect();
                if let Some(f) = best_of(&fallback).filter(|f| gain(records, f) > 0.0) {
                    picks.fallbacks.insert(index, f.schedule);
                }
                picks.chosen.insert(index, (key.0.clone(), rec.schedule));
                applied.tuned.push(step.name.clone());
            }
            None => applied.defaulted.push(step.name.clone()),
        }
    }
    Ok(picks)
}

/// The build of `picks` within `budget` bytes of arena: while it is over, the tuned workload
/// that saves least takes its in-place record where it has one, else the default; then each
/// set aside goes back, the most gain first, where it still fits.
fn fit_budget(
    picks: Picks,
    budget: usize,
    program: &Program,
    build: &dyn Fn(&Chosen) -> Result<Scheduled, ApplyError>,
) -> Result<(Scheduled, Applied), ApplyError> {
    let Picks {
        mut chosen,
        gains,
        fallbacks,
        mut applied,
    } = picks;
    let mut compiled = build(&chosen)?;
    let mut keys: Vec<(String, f64)> = gains.into_iter().collect();
    keys.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    let mut aside: Vec<Chosen> = Vec::new();
    let mut fell_back: Vec<usize> = Vec::new();
    for (key, _) in &keys {
        if compiled.plan.arena_bytes <= budget {
            break;
        }
        let (out, kept): (Chosen, Chosen) = chosen.into_iter().partition(|(_, (k, _))| k == key);
        chosen = kept;
        for i in out.keys() {
            if let Some(f) = fallbacks.get(i) {
                chosen.insert(*i, (key.clone(), f.clone()));
                fell_back.push(*i);
            }
        }
        aside.push(out);
        compiled = build(&chosen)?;
    }
    if compiled.plan.arena_bytes > budget {
        // The in-place records together still need too much: the defaults, then.
        chosen.retain(|i, _| !fell_back.contains(i));
        compiled = build(&chosen)?;
    }
    check_budget(&compiled.program, &compiled.plan, Some(budget))?;
    // A workload set aside early may not have been one that needed the bytes.
    for steps in aside.into_iter().rev() {
        let mut trial = chosen.clone();
        trial.extend(steps.clone());
        let with = build(&trial)?;
        if with.plan.arena_bytes <= budget {
            (chosen, compiled) = (trial, with);
            continue;
        }
        let mut indices: Vec<usize> = steps.into_keys().collect();
        indices.sort_unstable();
        for index in indices {
            let layer = program.steps[index].name.clone();
            match chosen.contains_key(&index) {
                true => applied.slower_fit.push(layer),
                false => {
                    applied.tuned.retain(|n| *n != layer);
                    applied.over_budget.push(layer);
                }
            }
        }
    }
    Ok((compiled, applied))
}

/// What `best` saves on one step against its workload's default record (nothing known: 0).
fn gain(records: &[Record], best: &Record) -> f64 {
    let default = records
        .iter()
        .filter(|r| r.origin == "default" && r.status == Status::Ok && r.runner == best.runner)
        .find_map(|r| r.figure);
    match (default, best.figure) {
        (Some(d), Some(b)) => d - b,
        _ => 0.0,
    }
}
