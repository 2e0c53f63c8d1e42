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
//! `GreedyMemoryPlanner` does.
//!
//! ```
//! use minnow_passes::memory::{place, Block};
//! let blocks = [
//!     Block { size: 100, first: 0, last: 1 },
//!     Block { size: 60, first: 1, last: 2 },
//!     Block { size: 100, first: 2, last: 3 },
//! ];
//! let offsets = place(&blocks, 4);
//! // The first and third never live together: they share offset 0.
//! assert_eq!(offsets, vec![0, 100, 0]);
//! ```

use minnow_ir::loops::{Program, SlotId, SlotKind};
use serde::Serialize;

/// A tensor to place: its size and the first and last steps that use it (inclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    /// Bytes.
    pub size: usize,
    /// First step that uses it.
    pub first: usize,
    /// Last step that uses it.
    pub last: usize,
}

impl Block {
    /// Whether two blocks are alive at a common step.
    pub fn overlaps_in_time(&self, other: &Block) -> bool {
        self.first <= other.last && other.first <= self.last
    }
}

/// Offsets for `blocks` (in order), each a multiple of `alignment`, such that blocks alive at
/// the same time never share a byte: the smaller of two first-fit placements, largest block
/// first (which suits most graphs) and first used first (which suits a chain whose large
/// tensors come in turns, as when a first layer reads a padded copy of the input).
pub fn place(blocks: &[Block], alignment: usize) -> Vec<usize> {
    let mut by_size: Vec<usize> = (0..blocks.len()).collect();
    by_size.sort_by_key(|&i| (std::cmp::Reverse(blocks[i].size), blocks[i].first, i));
    let mut by_first = by_size.clone();
    by_first.sort_by_key(|&i| (blocks[i].first, std::cmp::Reverse(blocks[i].size), i));
    let end = |offsets: &[usize]| {
        let ends = offsets.iter().zip(blocks).map(|(o, b)| o + b.size);
        ends.max().unwrap_or(0)
    };
    let sized = place_in_order(blocks, &by_size, alignment);
    let timed = place_in_order(blocks, &by_first, alignment);
    if end(&timed) < end(&sized) {
        timed
    } else {
        sized
    }
}

/// First fit of `blocks` taken in `order`: each goes at the lowest aligned offset clear of
/// the blocks placed before it that are alive at the same time.
fn place_in_order(blocks: &[Block], order: &[usize], alignment: usize) -> Vec<usize> {
    let align = |x: usize| x.div_ceil(alignment.max(1)) * alignment.max(1);
    let mut offsets = vec![0; blocks.len()];
    let mut placed: Vec<usize> = Vec::new();
    for &i in order {
        let mut live: Vec<(usize, usize)> = placed
            .iter()
            .filter(|&&j| blocks[j].overlaps_in_time(&blocks[i]))
            .map(|&j| (offsets[j], offsets[j] + blocks[j].size))
            .collect();
        live.sort_unstable();
        let mut candidate = 0;
        for (start, end) in live {
            if candidate + blocks[i].size <= start {
                break;
            }
            candidate = candidate.max(align(end));
        }
        offsets[i] = candidate;
        placed.push(i);
    }
    offsets
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

/// The memory planning pass.
#[derive(Clone, Copy, Debug)]
pub struct MemoryPlanner {
    /// Alignment of every offset in bytes (4 keeps word and SIMD loads aligned).
    pub alignment: usize,
}

impl Default for MemoryPlanner {
    fn default() -> Self {
        MemoryPlanner { alignment: 4 }
    }
}

impl MemoryPlanner {
    /// Plans the arena of `program`.
    pub fn run(&self, program: &Program) -> ArenaPlan {
        let groups = Groups::new(program);
        let blocks: Vec<Block> = groups
            .members
            .iter()
            .map(|m| groups.block(program, m))
            .collect();
        let placed = place(&blocks, self.alignment);
        let timeline = groups.timeline(program, &blocks);
        let mut offsets = vec![None; program.slots.len()];
        for (members, offset) in groups.members.iter().zip(&placed) {
            for slot in members {
                offsets[slot.0] = Some(*offset);
            }
        }
        let end = blocks
            .iter()
            .zip(&placed)
            .map(|(b, o)| o + b.size)
            .max()
            .unwrap_or(0);
        ArenaPlan {
            offsets,
            arena_bytes: end.div_ceil(self.alignment) * self.alignment,
            state_bytes: program
                .slots
                .iter()
                .filter(|s| matches!(s.kind, SlotKind::State(_)))
                .map(|s| s.bytes())
                .sum(),
            timeline,
        }
    }
}

/// Arena slots grouped by shared storage (an in-place output joins its input's group), with
/// the steps each slot is used by.
struct Groups {
    members: Vec<Vec<SlotId>>,
    uses: Vec<Option<(usize, usize)>>,
}

impl Groups {
    fn new(program: &Program) -> Groups {
        let n = program.slots.len();
        let mut uses: Vec<Option<(usize, usize)>> = vec![None; n];
        for (k, step) in program.steps.iter().enumerate() {
            for a in &step.args {
                let u = uses[a.0].get_or_insert((k, k));
                u.1 = k;
            }
        }
        let in_arena = |s: SlotId| {
            matches!(
                program.slot(s).kind,
                SlotKind::Activation | SlotKind::State(_)
            )
        };
        let mut group_of: Vec<Option<usize>> = vec![None; n];
        let mut members: Vec<Vec<SlotId>> = Vec::new();
        for (k, step) in program.steps.iter().enumerate() {
            let shared = step.in_place.and_then(|(i, o)| {
                let (si, so) = (step.args[i], step.args[o]);
                let (a, b) = (program.slot(si), program.slot(so));
                let fits = a.kind == SlotKind::Activation
                    && b.kind == SlotKind::Activation
                    && a.bytes() == b.bytes()
                    && a.elem.size() == b.elem.size()
                    && uses[si.0].map(|u| u.1) == Some(k)
                    && group_of[so.0].is_none();
                fits.then_some((si, so))
            });
            for a in &step.args {
                if in_arena(*a) && group_of[a.0].is_none() {
                    match shared {
                        Some((si, so)) if so == *a && group_of[si.0].is_some() => {
                            let g = group_of[si.0].expect("checked");
                            group_of[a.0] = Some(g);
                            members[g].push(*a);
                        }
                        _ => {
                            group_of[a.0] = Some(members.len());
                            members.push(vec![*a]);
                        }
                    }
                }
            }
        }
        Groups { members, uses }
    }

    /// The block of one group: the largest member, alive from the first use of any member to
    /// the last (state: the whole program).
    fn block(&self, program: &Program, members: &[SlotId]) -> Block {
        let size = members
            .iter()
            .map(|s| program.slot(*s).bytes())
            .max()
            .unwrap_or(0);
        if members
            .iter()
            .any(|s| matches!(program.slot(*s).kind, SlotKind::State(_)))
        {
            return Block {
                size,
                first: 0,
                last: program.steps.len(),
            };
        }
        let first = members
            .iter()
            .filter_map(|s| self.uses[s.0])
            .map(|u| u.0)
            .min()
            .unwrap_or(0);
        let last = members
            .iter()
            .filter_map(|s| self.uses[s.0])
            .map(|u| u.1)
            .max()
            .unwrap_or(0);
        Block { size, first, last }
    }
}

impl Groups {
    /// The live set of every step, given each group's block.
    fn timeline(&self, program: &Program, blocks: &[Block]) -> Vec<LiveSet> {
        let alive = |k: usize, s: &SlotId| {
            let state = matches!(program.slot(*s).kind, SlotKind::State(_));
            state || self.uses[s.0].is_some_and(|(first, last)| first <= k && k <= last)
        };
        let live_set = |(k, step): (usize, &minnow_ir::loops::Step)| {
            let live = self.members.iter().zip(blocks);
            let live: Vec<_> = live.filter(|(_, b)| b.first <= k && k <= b.last).collect();
            LiveSet {
                step: step.name.clone(),
                op: step.op.clone(),
                bytes: live.iter().map(|(_, b)| b.size).sum(),
                tensors: live
                    .iter()
                    .flat_map(|(m, _)| m.iter().filter(|s| alive(k, s)))
                    .map(|s| program.slot(*s).name.clone())
                    .collect(),
            }
        };
        program.steps.iter().enumerate().map(live_set).collect()
    }
}

/// Checks a plan: every arena slot has an offset inside the arena, and two slots used by steps
/// that overlap in time share bytes only when they are an in-place pair. Returns the first
/// violation found.
pub fn check(program: &Program, plan: &ArenaPlan) -> Result<(), String> {
    let groups = Groups::new(program);
    let mut blocks = Vec::new();
    for members in &groups.members {
        let block = groups.block(program, members);
        for s in members {
            let offset =
                plan.offsets[s.0].ok_or(format!("slot {} has no offset", program.slot(*s).name))?;
            if offset + program.slot(*s).bytes() > plan.arena_bytes {
                return Err(format!(
                    "slot {} ends past the arena",
                    program.slot(*s).name
                ));
            }
            blocks.push((members.as_ptr(), *s, offset, block));
        }
    }
    for (i, a) in blocks.iter().enumerate() {
        for b in &blocks[i + 1..] {
            let same_group = a.0 == b.0;
            let (sa, sb) = (program.slot(a.1).bytes(), program.slot(b.1).bytes());
            let share_bytes = a.2 < b.2 + sb && b.2 < a.2 + sa;
            if !same_group && share_bytes && a.3.overlaps_in_time(&b.3) {
                return Err(format!(
                    "slots {} and {} are alive together and overlap in the arena",
                    program.slot(a.1).name,
                    program.slot(b.1).name
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn blocks() -> impl Strategy<Value = Vec<Block>> {
        proptest::collection::vec((1usize..5000, 0usize..40, 0usize..10), 0..60).prop_map(|v| {
            v.into_iter()
                .map(|(size, first, len)| Block {
                    size,
                    first,
                    last: first + len,
                })
                .collect()
        })
    }

    /// A chain whose large tensors come in turns (vww with a padded copy of its input: the
    /// copy, the first layer's output, the second's, then a large third): largest-first
    /// stacks the two small ones and needs 4/3 of the peak; first-used-first fits the peak.
    #[test]
    fn a_chain_of_alternating_sizes_fits_its_peak() {
        let block = |size, first| Block {
            size,
            first,
            last: first + 1,
        };
        let (big, small) = (36_864, 18_432);
        let blocks = [
            block(big, 0),
            block(small, 1),
            block(small, 2),
            block(big, 3),
        ];
        let offsets = place(&blocks, 16);
        let end = blocks.iter().zip(&offsets).map(|(b, o)| o + b.size).max();
        assert_eq!(end, Some(big + small));
        let by_size = place_in_order(&blocks, &[0, 3, 1, 2], 16);
        let end = blocks.iter().zip(&by_size).map(|(b, o)| o + b.size).max();
        assert_eq!(end, Some(big + 2 * small));
    }

    proptest! {
        /// No two blocks alive at the same time share a byte, and offsets are aligned.
        #[test]
        fn live_blocks_never_overlap(blocks in blocks(), align in prop::sample::select(vec![1usize, 4, 16])) {
            let offsets = place(&blocks, align);
            for (i, a) in blocks.iter().enumerate() {
                prop_assert_eq!(offsets[i] % align, 0);
                for (j, b) in blocks.iter().enumerate().skip(i + 1) {
                    if a.overlaps_in_time(b) {
                        let disjoint = offsets[i] + a.size <= offsets[j] || offsets[j] + b.size <= offsets[i];
                        prop_assert!(disjoint, "{:?}@{} and {:?}@{}", a, offsets[i], b, offsets[j]);
                    }
                }
            }
        }

        /// The arena is never larger than giving every block its own bytes, and never smaller
        /// than the bytes alive at the busiest step.
        #[test]
        fn arena_is_between_the_live_peak_and_the_sum(blocks in blocks()) {
            let offsets = place(&blocks, 1);
            let end = blocks.iter().zip(&offsets).map(|(b, o)| o + b.size).max().unwrap_or(0);
            let sum: usize = blocks.iter().map(|b| b.size).sum();
            let peak = (0..50).map(|t| blocks.iter().filter(|b| b.first <= t && t <= b.last).map(|b| b.size).sum::<usize>()).max().unwrap_or(0);
            prop_assert!(end <= sum);
            prop_assert!(end >= peak);
        }
    }
}
