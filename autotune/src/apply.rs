//! Building a model with the best tuning records: each multiply-accumulate step whose
//! workload has a valid record gets that record's schedule, the others the default.

use crate::compile::{lower, schedule_and_emit, CompileError, Compiled, Schedules};
use crate::db::{DbError, TuningDb};
use crate::task::workload_key;
use minnow_ir::Graph;
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
}

impl Applied {
    /// A one-line note for users: how many layers were tuned, and which fell back.
    pub fn note(&self) -> String {
        let total = self.tuned.len() + self.defaulted.len();
        if self.defaulted.is_empty() {
            return format!("tuning records applied to all {total} tunable layers");
        }
        format!(
            "tuning records applied to {} of {total} tunable layers; no record for {} \
             (default schedule used: run minnow tune to tune them)",
            self.tuned.len(),
            self.defaulted.join(", ")
        )
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
}

/// Compiles `graph` for `target` (its first layers in bands as `patching` says) with the
/// best record of `db` for each step's workload.
pub fn compile_tuned(
    graph: &Graph,
    name: &str,
    target: &Target,
    patching: Patching,
    db: &dyn TuningDb,
) -> Result<(Compiled, Applied), ApplyError> {
    let lowered = lower(graph, name, target, patching)?;
    let program = &lowered.program;
    let mut chosen: HashMap<usize, Schedule> = HashMap::new();
    let mut applied = Applied::default();
    for (index, step) in program.steps.iter().enumerate() {
        let Some(r) = &step.reduction else { continue };
        let (key, _) = workload_key(r, weight_is_private(program, index), target);
        // A record whose schedule no longer applies (an older minnow's) is passed over, and
        // so is one of Winograd pairs for weights that cannot take them: the workload key
        // names shapes, not weights, so another model's record may meet a -128 weight here.
        let winograd = winograd_allowed(program, index, r);
        let fits = |s: &Schedule| winograd || !s.steps.contains(&Primitive::WinogradPairs);
        let best = db
            .best(&key, target.name)?
            .filter(|rec| rec.schedule.apply(r).is_ok() && fits(&rec.schedule));
        match best {
            Some(rec) => {
                chosen.insert(index, rec.schedule);
                applied.tuned.push(step.name.clone());
            }
            None => applied.defaulted.push(step.name.clone()),
        }
    }
    let choose = |i: usize, _: &_, _: &_| chosen.get(&i).cloned();
    let compiled = schedule_and_emit(lowered, target, Schedules::Chosen(&choose))?;
    Ok((compiled, applied))
}
