//! Building a model with the best tuning records: each multiply-accumulate step whose
//! workload has a valid record gets that record's schedule, the others the default. A tuned
//! loop order can keep an op's input and output apart in the arena where the default's let
//! the output overwrite the input as it goes; under an arena budget the workloads that gain
//! least go back to the default until the plan fits.

use crate::compile::{lower, schedule_lowered, CompileError, Compiled, Schedules};
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

/// Fails with [`ApplyError::OverBudget`] if `compiled`'s arena exceeds `budget`.
pub fn check_budget(compiled: &Compiled, budget: Option<usize>) -> Result<(), ApplyError> {
    within(&compiled.program, &compiled.plan, budget)
}

/// Fails with [`ApplyError::OverBudget`] if `plan`'s arena exceeds `budget`.
fn within(program: &Program, plan: &ArenaPlan, budget: Option<usize>) -> Result<(), ApplyError> {
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
/// less its best, times its steps) takes the default schedule again.
pub fn compile_tuned(
    graph: &Graph,
    name: &str,
    target: &Target,
    patching: Patching,
    db: &dyn TuningDb,
    max_arena: Option<usize>,
) -> Result<(Compiled, Applied), ApplyError> {
    let lowered = lower(graph, name, target, patching)?;
    let program = &lowered.program;
    let mut chosen: Chosen = HashMap::new();
    let mut gains: HashMap<String, f64> = HashMap::new();
    let mut applied = Applied::default();
    for (index, step) in program.steps.iter().enumerate() {
        let Some(r) = &step.reduction else { continue };
        let (key, _) = workload_key(r, weight_is_private(program, index), target);
        // A record whose schedule no longer applies (an older minnow's) is passed over, and
        // so is one of Winograd pairs for weights that cannot take them: the workload key
        // names shapes, not weights, so another model's record may meet a -128 weight here.
        let winograd = winograd_allowed(program, index, r);
        let fits = |s: &Schedule| winograd || !s.steps.contains(&Primitive::WinogradPairs);
        let records = db.records(&key, target.name)?;
        let best =
            best_of(&records).filter(|rec| rec.schedule.apply(r).is_ok() && fits(&rec.schedule));
        match best {
            // The default measured best: the step builds as an untuned one does (channels
            // outermost where its operands are apart anyway), not as the record's standalone
            // program did.
            Some(rec) if rec.origin == "default" => applied.tuned.push(step.name.clone()),
            Some(rec) => {
                *gains.entry(key.0.clone()).or_default() += gain(&records, &rec);
                chosen.insert(index, (key.0.clone(), rec.schedule));
                applied.tuned.push(step.name.clone());
            }
            None => applied.defaulted.push(step.name.clone()),
        }
    }
    let build = |chosen: &Chosen| {
        let choose = |i: usize, _: &_, _: &_| chosen.get(&i).map(|(_, s)| s.clone());
        schedule_lowered(lowered.clone(), target, Schedules::Chosen(&choose))
    };
    // Plans are weighed unemitted; only the one kept becomes C.
    let mut compiled = build(&chosen)?;
    let Some(budget) = max_arena else {
        return Ok((compiled.emit(target), applied));
    };
    let mut keys: Vec<(String, f64)> = gains.into_iter().collect();
    keys.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    // Set aside, the least gain first, until the plan fits.
    let mut aside: Vec<Chosen> = Vec::new();
    for (key, _) in &keys {
        if compiled.plan.arena_bytes <= budget {
            break;
        }
        let (out, kept): (Chosen, Chosen) = chosen.into_iter().partition(|(_, (k, _))| k == key);
        chosen = kept;
        aside.push(out);
        compiled = build(&chosen)?;
    }
    within(&compiled.program, &compiled.plan, Some(budget))?;
    // Then back, the most gain first, each that still fits: a workload set aside early may
    // not have been one that needed the bytes.
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
            let layer = &program.steps[index].name;
            applied.tuned.retain(|n| n != layer);
            applied.over_budget.push(layer.clone());
        }
    }
    Ok((compiled.emit(target), applied))
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
