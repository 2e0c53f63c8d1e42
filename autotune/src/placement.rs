//! Where a task's steps sit in the model's arena, which decides what its search may propose.
//!
//! The untuned whole-model build ([`crate::compile::schedule_lowered`]) runs an op with its
//! output channels outermost where the plan keeps its input and output apart anyway, so that
//! nest, not the tiler's, is the default a task's tuning must beat and its report shows
//! ([`Task::channels_outer`]). Elsewhere the default lets the op write its output over its
//! input as it goes; a tuned loop order that reads every pixel before writing its last
//! channel block keeps the two apart and grows the arena. Under an arena budget
//! (`--max-arena`) a task whose steps could not then fit searches only loop orders that keep
//! them in place ([`Task::keep_in_place`]), so its trials go to records the budget lets the
//! build apply.
//!
//! ```no_run
//! # use minnow_ir::Graph;
//! # use minnow_targets::Target;
//! # fn demo(graph: &Graph, target: &Target) -> Result<(), Box<dyn std::error::Error>> {
//! use minnow_autotune::compile::lower;
//! use minnow_autotune::task::extract_tasks;
//! let lowered = lower(graph, "kws", target, minnow_passes::patch::Patching::Off)?;
//! // extract_tasks marks each task (placement::mark) for a 10,048-byte arena.
//! let tasks = extract_tasks(&lowered, target, Some(10_048))?;
//! let kept = tasks.iter().filter(|t| t.keep_in_place).map(|t| t.layer.as_str());
//! println!("in place: {:?}", kept.collect::<Vec<_>>());
//! # Ok(()) }
//! ```

use crate::compile::{
    channels_outermost, default_schedule, schedule_lowered, CompileError, Lowered, Scheduled,
    Schedules,
};
use crate::task::Task;
use minnow_targets::Target;
use std::collections::HashSet;

/// Sets every task's [`Task::channels_outer`] from `untuned`, the untuned build of `lowered`
/// on `target`, and, with a budget of `max_arena` bytes, its [`Task::keep_in_place`]: a task
/// with a step the untuned build runs in place keeps in place if the build with its steps
/// apart (their default's output channels outermost, all else untuned) plans more than the
/// budget. A task whose default has no such order (Winograd pairs) is left free: the build
/// falls back for it as records allow ([`crate::apply::compile_tuned`]).
pub fn mark(
    tasks: &mut [Task],
    lowered: &Lowered,
    untuned: &Scheduled,
    target: &Target,
    max_arena: Option<usize>,
) -> Result<(), CompileError> {
    for task in tasks.iter_mut() {
        task.channels_outer = untuned.channels_outer.contains(&task.layer);
    }
    let Some(budget) = max_arena else {
        return Ok(());
    };
    let in_place: HashSet<&str> = untuned
        .program
        .steps
        .iter()
        .zip(&untuned.plan.shared)
        .filter(|(step, shared)| step.reduction.is_some() && shared.is_some())
        .map(|(step, _)| step.name.as_str())
        .collect();
    let names = &lowered.program.steps;
    for task in tasks.iter_mut() {
        if !task
            .steps
            .iter()
            .any(|i| in_place.contains(names[*i].name.as_str()))
        {
            continue;
        }
        // The tiler's nest: a task's default is channels outermost already where its first
        // step's operands are apart.
        let (r, tilings) = (&task.reduction, &lowered.tilings);
        let Some(tiled) = default_schedule(r, target, task.widenable, task.winograd, tilings)
        else {
            continue;
        };
        let Some(apart) = channels_outermost(&task.reduction, &tiled) else {
            continue;
        };
        let steps = &task.steps;
        let choose = |i: usize, _: &_, _: &_| steps.contains(&i).then(|| apart.clone());
        let trial = schedule_lowered(lowered.clone(), target, Schedules::Chosen(&choose))?;
        task.keep_in_place = trial.plan.arena_bytes > budget;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::extract_tasks;

    fn lowered(name: &str, target: &Target) -> Lowered {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/models");
        let bytes = std::fs::read(format!("{dir}/{name}.tflite")).expect("shared models");
        let graph = minnow_ir::import::tflite::import(&bytes, name).unwrap();
        let patching = minnow_passes::patch::Patching::Off;
        crate::compile::lower(&graph, name, target, patching).unwrap()
    }

    /// kws on Cortex-M4: the first conv reads a padded input the plan keeps apart, so the
    /// untuned build runs it channels outermost and that is its task's default; the
    /// depthwise and pointwise layers run in place, and within the untuned build's own arena
    /// they must stay so, while a budget the size of the whole RAM leaves them free.
    #[test]
    fn kws_first_conv_defaults_channels_outer_and_a_tight_budget_keeps_the_rest_in_place() {
        let target = minnow_targets::find("cortex-m4").unwrap();
        let lowered = lowered("kws", &target);
        let untuned = schedule_lowered(lowered.clone(), &target, Schedules::Default).unwrap();
        let arena = untuned.plan.arena_bytes;
        let tasks = extract_tasks(&lowered, &target, Some(arena)).unwrap();
        let outer: Vec<bool> = tasks.iter().map(|t| t.channels_outer).collect();
        assert_eq!(outer, vec![true, false, false, false], "{tasks:#?}");
        let kept: Vec<bool> = tasks.iter().map(|t| t.keep_in_place).collect();
        assert_eq!(kept, vec![false, true, true, false], "{tasks:#?}");
        let free = extract_tasks(&lowered, &target, Some(target.ram_bytes as usize)).unwrap();
        assert!(free.iter().all(|t| !t.keep_in_place), "{free:#?}");
        let none = extract_tasks(&lowered, &target, None).unwrap();
        assert!(none.iter().all(|t| !t.keep_in_place));
        // The default is the untuned build's nest: channels outermost for the first conv.
        let tilings = &lowered.tilings;
        let first = &tasks[0];
        let tiled = crate::compile::default_schedule(
            &first.reduction,
            &target,
            first.widenable,
            first.winograd,
            tilings,
        )
        .unwrap();
        let default = first.default_schedule(&target, tilings).unwrap();
        assert_ne!(default, tiled);
        assert_eq!(
            Some(default),
            channels_outermost(&first.reduction, &tiled),
            "the channels-outer nest"
        );
    }
}
