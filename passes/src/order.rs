//! Step order for the smallest arena: among the orders that respect the data dependencies,
//! find one whose largest live set is smallest.
//!
//! A model with branches (a residual block's shortcut, an inception module) can run its
//! branches in any interleaving, and the bytes alive at once depend on it: finishing the branch
//! that frees a large tensor first lowers the peak. The search is a dynamic program over the
//! sets of steps already run (the order's prefixes): for each such set it keeps the lowest peak
//! with which it can be reached, level by level. That is exact, and small for the graphs of
//! microcontroller models (a chain has one set per level). When a level holds more than
//! [`StepOrderer::max_states`] sets, only the best are kept and the result is a heuristic,
//! which the report says.
//!
//! The live set is the planner's: an arena tensor is alive from its producer to its last reader,
//! and a step that may run in place ([`minnow_ir::loops::Step::in_place`]) adds no bytes for an
//! output that can take over a same-sized input dying at that step. The order found is kept only
//! when [`MemoryPlanner`] places it in a smaller arena than the original order.
//!
//! ```
//! # use minnow_passes::order::StepOrderer;
//! # let mut program = minnow_ir::loops::Program {
//! #     name: "empty".into(), slots: vec![], funcs: vec![], steps: vec![],
//! #     inputs: vec![], outputs: vec![],
//! # };
//! let report = StepOrderer::default().run(&mut program);
//! assert!(report.arena_after <= report.arena_before);
//! ```

use crate::memory::MemoryPlanner;
use minnow_ir::loops::{Access, BufferKind, Program, SlotKind};
use serde::Serialize;
use std::collections::HashMap;

/// The step-ordering pass.
#[derive(Clone, Copy, Debug)]
pub struct StepOrderer {
    /// The most prefix sets kept per level before the search turns heuristic (fewer for
    /// programs so long that the levels would keep more than [`MAX_TOTAL_STATES`] in all).
    pub max_states: usize,
}

/// Prefix sets kept over all levels at most, where that allows more than [`MIN_BEAM`] per
/// level: vww in 8 bands (66 steps) kept 20,000 per level for 0.64 s and found the order
/// 500 per level find (2,000 per level: 0.09 s).
pub const MAX_TOTAL_STATES: usize = 200_000;

/// Prefix sets per level that [`MAX_TOTAL_STATES`] never cuts below.
pub const MIN_BEAM: usize = 500;

impl Default for StepOrderer {
    fn default() -> Self {
        StepOrderer { max_states: 20_000 }
    }
}

/// What [`StepOrderer::run`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OrderReport {
    /// Whether the search was exhaustive (no level was cut to `max_states`).
    pub exact: bool,
    /// Prefix sets visited.
    pub states: usize,
    /// Largest live set of the original order, in bytes.
    pub peak_before: usize,
    /// Largest live set of the order found.
    pub peak_after: usize,
    /// Arena of the original order, as [`MemoryPlanner::quick`] plans it.
    pub arena_before: usize,
    /// Arena of the order kept, as [`MemoryPlanner::quick`] plans it (the final plan breaks
    /// chains too, and may be smaller).
    pub arena_after: usize,
    /// Whether the program's steps were reordered.
    pub reordered: bool,
}

impl StepOrderer {
    /// Reorders `program`'s steps when that shrinks its arena.
    pub fn run(&self, program: &mut Program) -> OrderReport {
        let deps = Dependencies::new(program);
        let original: Vec<usize> = (0..program.steps.len()).collect();
        let levels = program.steps.len().max(1);
        let beam = self
            .max_states
            .min((MAX_TOTAL_STATES / levels).max(MIN_BEAM));
        let (found, exact, states) = deps.search(beam);
        let planner = MemoryPlanner::quick();
        let arena_before = planner.run(program).arena_bytes;
        // Try the order found on the program itself (steps only; the constants stay put), and
        // put the original back if it places no better.
        let original_steps = program.steps.clone();
        program.steps = found.iter().map(|k| original_steps[*k].clone()).collect();
        let arena_found = planner.run(program).arena_bytes;
        let keep = arena_found < arena_before;
        if !keep {
            program.steps = original_steps;
        }
        OrderReport {
            exact,
            states,
            peak_before: deps.peak(&original),
            peak_after: deps.peak(if keep { &found } else { &original }),
            arena_before,
            arena_after: arena_found.min(arena_before),
            reordered: keep && found != original,
        }
    }
}

/// A set of steps as bits.
type Bits = Vec<u64>;

fn has(bits: &Bits, k: usize) -> bool {
    bits[k / 64] >> (k % 64) & 1 == 1
}

fn with(bits: &Bits, k: usize) -> Bits {
    let mut b = bits.clone();
    b[k / 64] |= 1 << (k % 64);
    b
}

fn subset(a: &Bits, b: &Bits) -> bool {
    a.iter().zip(b).all(|(x, y)| x & !y == 0)
}

/// The steps' reads and writes of arena tensors and the order they impose.
struct Dependencies {
    /// Steps that must run before each step.
    before: Vec<Bits>,
    /// Arena activations each step writes, with their sizes.
    writes: Vec<Vec<usize>>,
    /// Arena activations each step reads.
    reads: Vec<Vec<usize>>,
    /// Readers of each slot.
    readers: Vec<Bits>,
    /// Writers of each slot (several for a tensor written in parts through views).
    writers: Vec<Bits>,
    /// Size of each slot in bytes.
    size: Vec<usize>,
    /// Per step, the slot whose bytes an in-place output may take over, and that output.
    in_place: Vec<Option<(usize, usize)>>,
}

impl Dependencies {
    fn new(program: &Program) -> Dependencies {
        let n = program.steps.len();
        let words = n.div_ceil(64).max(1);
        let mut d = Dependencies {
            before: vec![vec![0; words]; n],
            writes: vec![Vec::new(); n],
            reads: vec![Vec::new(); n],
            readers: vec![vec![0; words]; program.slots.len()],
            writers: vec![vec![0; words]; program.slots.len()],
            size: program.slots.iter().map(|s| s.bytes()).collect(),
            in_place: vec![None; n],
        };
        let mut all_reads: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut all_writes: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (k, step) in program.steps.iter().enumerate() {
            let params = program.funcs[step.func].params();
            for ((_, param), arg) in params.zip(&step.args) {
                // A view is read and written where its base holds it.
                let slot = &program.storage(*arg).0;
                let (read, write) = match param.kind {
                    BufferKind::Param { access, .. } => {
                        (access != Access::Write, access != Access::Read)
                    }
                    BufferKind::Local => (false, false),
                };
                let arena = program.slot(*slot).kind == SlotKind::Activation;
                if read {
                    all_reads[k].push(slot.0);
                    if arena {
                        d.reads[k].push(slot.0);
                        d.readers[slot.0] = with(&d.readers[slot.0], k);
                    }
                }
                if write {
                    all_writes[k].push(slot.0);
                    if arena {
                        d.writes[k].push(slot.0);
                        d.writers[slot.0] = with(&d.writers[slot.0], k);
                    }
                }
            }
            let view = |a: usize| program.storage(step.args[a]).0 != step.args[a];
            d.in_place[k] = step
                .in_place
                .filter(|(i, o)| !view(*i) && !view(*o))
                .map(|(i, o)| (step.args[i].0, step.args[o].0));
        }
        // Any two steps touching a slot, one of them writing it, keep their order.
        for k in 0..n {
            for j in 0..k {
                let conflict = all_writes[j]
                    .iter()
                    .any(|s| all_reads[k].contains(s) || all_writes[k].contains(s))
                    || all_reads[j].iter().any(|s| all_writes[k].contains(s));
                if conflict {
                    d.before[k] = with(&d.before[k], j);
                }
            }
        }
        d
    }

    /// The empty set of steps.
    fn no_steps(&self) -> Bits {
        vec![0; self.before.len().div_ceil(64).max(1)]
    }

    /// Bytes alive while step `k` runs after the steps `done`, and bytes alive after it.
    fn step(&self, done: &Bits, live: usize, k: usize) -> (usize, usize) {
        let after = with(done, k);
        let mut new = 0;
        // A tensor takes its bytes at its first writer (a later one writes another part).
        let unwritten = |s: usize| self.writers[s].iter().zip(done).all(|(w, d)| w & d == 0);
        for s in &self.writes[k] {
            if !self.reads[k].contains(s) && unwritten(*s) {
                new += self.size[*s];
            }
        }
        let dies = |s: usize| subset(&self.readers[s], &after);
        let mut freed = 0;
        for s in &self.reads[k] {
            if dies(*s) {
                freed += self.size[*s];
            }
        }
        let dead_outputs: usize = self.writes[k]
            .iter()
            .filter(|s| !self.reads[k].contains(s) && dies(**s))
            .map(|s| self.size[*s])
            .sum();
        let shared = match self.in_place[k] {
            Some((i, o))
                if self.reads[k].contains(&i)
                    && self.writes[k].contains(&o)
                    && dies(i)
                    && self.size[i] == self.size[o] =>
            {
                self.size[o]
            }
            _ => 0,
        };
        (live + new - shared, live + new - freed - dead_outputs)
    }

    /// The largest live set of `order`.
    fn peak(&self, order: &[usize]) -> usize {
        let mut done = self.no_steps();
        let (mut live, mut peak) = (0, 0);
        for k in order {
            let (during, after) = self.step(&done, live, *k);
            peak = peak.max(during);
            live = after;
            done = with(&done, *k);
        }
        peak
    }

    /// The order with the smallest peak, whether the search was exact, and the sets visited.
    fn search(&self, max_states: usize) -> (Vec<usize>, bool, usize) {
        let n = self.before.len();
        /// A prefix set reached: its peak, live bytes, and the state and step it came from.
        struct Reached {
            done: Bits,
            peak: usize,
            live: usize,
            from: usize,
            step: usize,
        }
        let mut all = vec![Reached {
            done: self.no_steps(),
            peak: 0,
            live: 0,
            from: usize::MAX,
            step: usize::MAX,
        }];
        let (mut level, mut exact) = (vec![0usize], true);
        for _ in 0..n {
            let mut next: HashMap<Bits, usize> = HashMap::new();
            let mut order: Vec<usize> = Vec::new();
            for &at in &level {
                for k in 0..n {
                    let r = &all[at];
                    if has(&r.done, k) || !subset(&self.before[k], &r.done) {
                        continue;
                    }
                    let (during, live) = self.step(&r.done, r.live, k);
                    let candidate = Reached {
                        done: with(&r.done, k),
                        peak: r.peak.max(during),
                        live,
                        from: at,
                        step: k,
                    };
                    match next.get(&candidate.done) {
                        Some(&i) if (all[i].peak, all[i].live) <= (candidate.peak, live) => {}
                        Some(&i) => all[i] = candidate,
                        None => {
                            next.insert(candidate.done.clone(), all.len());
                            order.push(all.len());
                            all.push(candidate);
                        }
                    }
                }
            }
            if order.len() > max_states {
                exact = false;
                order.sort_by_key(|i| (all[*i].peak, all[*i].live));
                order.truncate(max_states);
            }
            level = order;
        }
        let mut steps = Vec::with_capacity(n);
        let mut at = level.first().copied().unwrap_or(0);
        while all[at].from != usize::MAX {
            steps.push(all[at].step);
            at = all[at].from;
        }
        steps.reverse();
        (steps, exact, all.len())
    }
}

#[cfg(test)]
mod tests;
