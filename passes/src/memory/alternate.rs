//! [`DirectionAlternation`]: a chain of ops working in place kept from drifting down the
//! arena.
//!
//! Each op of a chain that writes its output a little below its input ([`super::SharedArgs`]
//! `lag`) moves the chain down by that much, and the arena has to hold the whole way down:
//! kws's four depthwise and pointwise pairs lag 448 and 64 bytes each, so its chain of
//! 8,000-byte tensors spans 10,048 bytes. Run from the end down ([`LoopReversal`]), such an
//! op's output ends a little above its input instead ([`output_lead`]), moving the chain
//! back up. The pass walks each chain in order and runs each multiply-accumulate op of it
//! the way that brings the chain nearer where it started, then plans again; the new program
//! is kept only if its arena is smaller.

use super::groups::pair_bound;
use super::{ArenaPlan, MemoryPlanner, SharedArgs};
use minnow_ir::loops::{Func, LoopReversal, Program};
use std::collections::{BTreeSet, HashMap};

/// The pass.
#[derive(Clone, Copy, Debug, Default)]
pub struct DirectionAlternation;

impl DirectionAlternation {
    /// `planner`'s `plan` of `program`, or the plan of `program` with its chains'
    /// multiply-accumulate ops run forward or reversed so that each chain stays near where
    /// it started: the second (its program in `program`) where its arena is smaller.
    pub fn run(
        &self,
        program: &mut Program,
        planner: &MemoryPlanner,
        plan: ArenaPlan,
    ) -> ArenaPlan {
        let Some((alternated, reversed)) = alternated(program, &plan) else {
            return plan;
        };
        let second = planner.run_reversed(&alternated, &reversed);
        if second.arena_bytes < plan.arena_bytes {
            *program = alternated;
            second
        } else {
            plan
        }
    }
}

/// `program` with the multiply-accumulate steps that `plan` lags below their inputs run
/// reversed where that brings their chain's drift nearer zero, and the reversed functions;
/// `None` if none is.
fn alternated(program: &Program, plan: &ArenaPlan) -> Option<(Program, BTreeSet<usize>)> {
    let mut out = program.clone();
    let mut reversed: HashMap<usize, usize> = HashMap::new();
    // How far the chain's current tensor starts from where the chain started, in bytes.
    let mut drift: i64 = 0;
    for (k, step) in program.steps.iter().enumerate() {
        let Some(pair) = plan.shared[k] else {
            drift = 0;
            continue;
        };
        let bytes = |a: usize| program.slot(step.args[a]).bytes() as i64;
        let moved = |p: SharedArgs| p.output_start(bytes(p.input), bytes(p.output));
        let forward = moved(pair);
        let down = match step.reduction {
            Some(_) if !pair.above => reversal(program, step.func, pair),
            _ => None,
        };
        let Some((func, lead)) = down else {
            drift += forward;
            continue;
        };
        let backward = moved(lead);
        if (drift + backward).abs() >= (drift + forward).abs() {
            drift += forward;
            continue;
        }
        drift += backward;
        let index = *reversed.entry(step.func).or_insert_with(|| {
            out.funcs.push(func);
            out.funcs.len() - 1
        });
        out.steps[k].func = index;
    }
    let funcs: BTreeSet<usize> = reversed.into_values().collect();
    (!funcs.is_empty()).then_some((out, funcs))
}

/// Function `f` of `program` reversed, named anew, and `pair` as it would then be: its
/// output ending the least distance above its input.
fn reversal(program: &Program, f: usize, pair: SharedArgs) -> Option<(Func, SharedArgs)> {
    let mut func = LoopReversal.run(&program.funcs[f])?;
    func.name = format!("{}_down", func.name);
    let lead = pair_bound(&func, pair.input, pair.output, true)?;
    let above = SharedArgs {
        lag: lead,
        above: true,
        ..pair
    };
    Some((func, above))
}
