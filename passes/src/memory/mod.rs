//! Static memory planning: every intermediate tensor of a program gets an offset in one arena.
//!
//! A tensor lives from the step that first uses it to the step that last uses it; two tensors
//! whose lifetimes overlap never share bytes, and a dead tensor's bytes are reused. A step
//! that may work in place ([`minnow_ir::loops::Step::in_place`]) writes its output over an
//! input that dies at that step, when both have the same size and element size. State tensors
//! (SVDF memory) live for the whole program and are never shared, so they persist across runs.
//! Model inputs and outputs live in the caller's buffers and constants in flash: none of them
//! takes arena space.
//!
//! Placement is greedy by size (the largest tensor first, each at the lowest offset that does
//! not overlap a placed tensor alive at the same time), as TensorFlow Lite Micro's
//! `GreedyMemoryPlanner` does, or by first use, whichever needs the smaller arena
//! ([`place`]).
//!
//! Beyond the declared in-place pairs, a step's output may start below an input that dies at
//! that step, by the lag [`minnow_ir::loops::lag::output_lag`] proves safe for the scheduled
//! function: a convolution's output row overwrites input rows no later output reads (TinyEngine
//! runs depthwise convolutions in place; this covers every op whose accesses the analysis
//! bounds). The planner keeps such sharing only when it gives a smaller arena than the
//! declared pairs alone. A chain of lagged outputs drifts down the arena, each below the last;
//! a cap on every group's span, then breaks of single chains where they shrink the arena,
//! stop the drift where it costs more than the overlap saves.

mod alternate;
mod groups;
mod place;

pub use alternate::DirectionAlternation;
pub use place::{place, place_units, Block, Unit};

use groups::{in_arena, pair_bound, Groups, Lags, Sharing};
use minnow_ir::loops::{Program, SlotId, SlotKind};
use serde::Serialize;
use std::collections::BTreeSet;

/// Plans tried at most with lagged outputs (one per cap on their groups' span).
const MAX_CAPS: usize = 256;

/// Two parameters of one step whose tensors the plan lets share bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SharedArgs {
    /// The input parameter; its tensor dies at the step.
    pub input: usize,
    /// The output parameter.
    pub output: usize,
    /// The output starts at least this many bytes below the input (0: in place), or, where
    /// `above`, ends at least this many bytes above the input's end.
    pub lag: usize,
    /// The output lies above its input ([`minnow_ir::loops::lag::output_lead`]: a function
    /// that runs through its buffers from the end down) rather than below it.
    pub above: bool,
}

/// Where every arena-resident slot of a program lives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ArenaPlan {
    /// Offset of each slot in the arena (`None` for inputs, outputs and constants).
    pub offsets: Vec<Option<usize>>,
    /// Arena size in bytes.
    pub arena_bytes: usize,
    /// Bytes of the state tensors, which persist across runs.
    pub state_bytes: usize,
    /// What is alive in the arena while each step runs, in step order.
    pub timeline: Vec<LiveSet>,
    /// Per step, the input and output parameters whose tensors share bytes (the backends
    /// let those two alias).
    pub shared: Vec<Option<SharedArgs>>,
}

impl ArenaPlan {
    /// The most bytes alive at once: the arena can be no smaller, and placement adds the gaps
    /// between blocks to it.
    pub fn peak_live_bytes(&self) -> usize {
        self.timeline.iter().map(|l| l.bytes).max().unwrap_or(0)
    }
}

/// The arena tensors alive while one step runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LiveSet {
    /// The step (its output tensor's name).
    pub step: String,
    /// Its TFLite op name.
    pub op: String,
    /// Bytes alive (a tensor computed in place over another counts once).
    pub bytes: usize,
    /// The tensors alive, by name.
    pub tensors: Vec<String>,
}

impl SharedArgs {
    /// Where the output starts relative to the input's start, for tensors of `input` and
    /// `output` bytes: `lag` below it, or, where `above`, ending `lag` above the input's end.
    fn output_start(&self, input: i64, output: i64) -> i64 {
        match self.above {
            true => input + self.lag as i64 - output,
            false => -(self.lag as i64),
        }
    }
}

/// The memory planning pass.
#[derive(Clone, Copy, Debug)]
pub struct MemoryPlanner {
    /// Alignment of every offset in bytes (4 keeps word and SIMD loads aligned).
    pub alignment: usize,
    /// Plans tried at most while breaking lagged groups one step at a time (0: none).
    pub max_break_plans: usize,
}

impl Default for MemoryPlanner {
    fn default() -> Self {
        MemoryPlanner {
            alignment: 4,
            max_break_plans: 512,
        }
    }
}

impl MemoryPlanner {
    /// The planner without [`MemoryPlanner::break_chains`]: for comparing many programs
    /// (step orders, patch candidates) at one plan or so each.
    pub fn quick() -> Self {
        MemoryPlanner {
            max_break_plans: 0,
            ..MemoryPlanner::default()
        }
    }

    /// Plans the arena of `program`: with the declared in-place pairs alone, and with outputs
    /// lagged below the inputs they overwrite, their groups capped at each step's least
    /// footprint in turn (and uncapped); then, from the best lagged plan, chains broken one
    /// step at a time wherever that shrinks the arena ([`MemoryPlanner::break_chains`]). The
    /// smallest arena wins (the declared pairs on a tie, which leave the compiler more freedom).
    pub fn run(&self, program: &Program) -> ArenaPlan {
        self.run_reversed(program, &BTreeSet::new())
    }

    /// [`MemoryPlanner::run`], the outputs of the `reversed` functions (indices into
    /// [`Program::funcs`], run from the end down) also placed above their inputs where that
    /// overlaps them more ([`DirectionAlternation`]).
    pub fn run_reversed(&self, program: &Program, reversed: &BTreeSet<usize>) -> ArenaPlan {
        let mut lags = Lags::new();
        let unbroken = BTreeSet::new();
        let lagged = |cap| Sharing::Lagged {
            cap,
            broken: &unbroken,
            reversed,
        };
        let (declared, _) = self.plan(program, Sharing::Declared, &mut lags);
        // Caps from the least span a lagged group can have, each next one the smallest span
        // the last refused: every distinct grouping the caps give, in turn.
        let (uncapped, _) = self.plan(program, lagged(usize::MAX), &mut lags);
        let mut cap = uncapped
            .shared
            .iter()
            .zip(&program.steps)
            .filter_map(|(p, step)| {
                let p = p.as_ref()?;
                let bytes = |a: usize| program.slot(step.args[a]).bytes();
                Some((bytes(p.input) + p.lag).max(bytes(p.output)))
            })
            .max();
        let mut best = (uncapped, usize::MAX);
        let mut tried = 1;
        while let Some(c) = cap.filter(|c| *c < declared.arena_bytes && tried < MAX_CAPS) {
            let (plan, refused) = self.plan(program, lagged(c), &mut lags);
            if plan.arena_bytes < best.0.arena_bytes {
                best = (plan, c);
            }
            tried += 1;
            cap = refused;
        }
        let (lagged, cap) = best;
        let lagged = self.break_chains(program, lagged, (cap, reversed), &mut lags);
        if lagged.arena_bytes < declared.arena_bytes {
            lagged
        } else {
            declared
        }
    }

    /// Improves `plan`, made with lagged groups capped at `cap`, by breaking its groups: each
    /// step whose output joined its input's group is tried in turn as the start of a new
    /// group, and the break kept where the arena does not grow, pass after pass while a pass
    /// shrinks it (at most [`MemoryPlanner::max_break_plans`]). A global cap splits every long chain
    /// alike; breaks split single chains, and keeping the breaks that change nothing lets
    /// chains that repeat (the bands of patch-based execution, each its own group with the
    /// same offsets) all break before the arena shows it.
    fn break_chains(
        &self,
        program: &Program,
        mut plan: ArenaPlan,
        (cap, reversed): (usize, &BTreeSet<usize>),
        lags: &mut Lags,
    ) -> ArenaPlan {
        let mut broken = BTreeSet::new();
        let mut tried = 0;
        loop {
            let joins: Vec<usize> = (0..program.steps.len())
                .filter(|k| plan.shared[*k].is_some() && !broken.contains(k))
                .collect();
            let start = plan.arena_bytes;
            for k in joins {
                if tried == self.max_break_plans {
                    return plan;
                }
                tried += 1;
                let mut more = broken.clone();
                more.insert(k);
                let sharing = Sharing::Lagged {
                    cap,
                    broken: &more,
                    reversed,
                };
                let (candidate, _) = self.plan(program, sharing, lags);
                if candidate.arena_bytes <= plan.arena_bytes {
                    (plan, broken) = (candidate, more);
                }
            }
            if plan.arena_bytes == start {
                return plan;
            }
        }
    }

    /// The plan with `sharing`, and the smallest group span its cap refused.
    fn plan(
        &self,
        program: &Program,
        sharing: Sharing,
        lags: &mut Lags,
    ) -> (ArenaPlan, Option<usize>) {
        let groups = Groups::new(program, self.alignment, sharing, lags);
        let starts = place_units(&groups.units(program), self.alignment);
        let mut offsets = vec![None; program.slots.len()];
        for (members, start) in groups.members.iter().zip(&starts) {
            for (slot, offset) in members {
                offsets[slot.0] = Some(start + offset);
            }
        }
        let end = offsets
            .iter()
            .zip(&program.slots)
            .filter_map(|(o, s)| o.map(|o| o + s.bytes()))
            .max()
            .unwrap_or(0);
        let timeline = groups.timeline(program, &offsets);
        let plan = ArenaPlan {
            offsets,
            arena_bytes: end.div_ceil(self.alignment) * self.alignment,
            state_bytes: program
                .slots
                .iter()
                .filter(|s| matches!(s.kind, SlotKind::State(_)))
                .map(|s| s.bytes())
                .sum(),
            timeline,
            shared: groups.shared,
        };
        (plan, groups.refused)
    }
}

/// Checks a plan: every arena slot has an offset inside the arena, and two slots alive at a
/// common step share bytes only as the input and output of a step that [`ArenaPlan::shared`]
/// names, at the same offset for a declared in-place pair, else with the output at least the
/// lag [`minnow_ir::loops::lag::output_lag`] computes below the input. Returns the first
/// violation found.
pub fn check(program: &Program, plan: &ArenaPlan) -> Result<(), String> {
    let groups = Groups::new(program, 1, Sharing::Declared, &mut Lags::new());
    let name = |s: SlotId| program.slot(s).name.clone();
    let mut placed = Vec::new();
    for (k, slot) in program.slots.iter().enumerate() {
        let id = SlotId(k);
        if !in_arena(program, id) || groups.uses[k].is_none() {
            continue;
        }
        let offset = plan.offsets[k].ok_or(format!("slot {} has no offset", slot.name))?;
        if offset + slot.bytes() > plan.arena_bytes {
            return Err(format!("slot {} ends past the arena", slot.name));
        }
        placed.push((id, offset, groups.block(program, id)));
    }
    for (i, a) in placed.iter().enumerate() {
        for b in &placed[i + 1..] {
            let (sa, sb) = (program.slot(a.0).bytes(), program.slot(b.0).bytes());
            let share_bytes = a.1 < b.1 + sb && b.1 < a.1 + sa;
            if share_bytes && a.2.overlaps_in_time(&b.2) && !vouched(program, plan, a, b) {
                return Err(format!(
                    "slots {} and {} are alive together and overlap in the arena",
                    name(a.0),
                    name(b.0)
                ));
            }
        }
    }
    Ok(())
}

/// Whether two placed slots that share bytes are the pair some step's [`SharedArgs`] names,
/// placed as its function allows.
fn vouched(
    program: &Program,
    plan: &ArenaPlan,
    a: &(SlotId, usize, Block),
    b: &(SlotId, usize, Block),
) -> bool {
    program
        .steps
        .iter()
        .zip(&plan.shared)
        .any(|(step, shared)| {
            let Some(p) = shared else { return false };
            let (input, output) = (step.args[p.input], step.args[p.output]);
            let (i, o) = if (input, output) == (a.0, b.0) {
                (a.1, b.1)
            } else if (input, output) == (b.0, a.0) {
                (b.1, a.1)
            } else {
                return false;
            };
            if step.in_place == Some((p.input, p.output)) && p.lag == 0 {
                return i == o;
            }
            let bytes = |a: usize| program.slot(step.args[a]).bytes() as i64;
            let func = &program.funcs[step.func];
            pair_bound(func, p.input, p.output, p.above).is_some_and(|bound| {
                let least = SharedArgs { lag: bound, ..*p };
                let start = least.output_start(bytes(p.input), bytes(p.output));
                // Further below (or above) than the least distance is as safe.
                match p.above {
                    true => o as i64 >= i as i64 + start,
                    false => o as i64 <= i as i64 + start,
                }
            })
        })
}
