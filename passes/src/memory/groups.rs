//! [`Groups`]: the arena tensors grouped by shared storage. A step's output joins the group of
//! an input that dies at that step when the function may write over it: in place where the
//! lowering says so ([`Step::in_place`]), or as far below it as [`output_lag`] proves safe.

use super::place::{Block, Unit};
use super::{LiveSet, SharedArgs};
use minnow_ir::loops::lag::{output_lag, output_lead};
use minnow_ir::loops::{Access, BufId, BufferKind, Func, Program, SlotId, SlotKind, Step};
use std::collections::{BTreeSet, HashMap};

/// Arena slots grouped by shared storage, with the steps each slot is used by.
pub(super) struct Groups {
    /// Per group, its slots and each one's byte offset from the group's start.
    pub members: Vec<Vec<(SlotId, usize)>>,
    /// Per slot, the first and last step that use it.
    pub uses: Vec<Option<(usize, usize)>>,
    /// Per step, the parameters whose tensors share bytes.
    pub shared: Vec<Option<SharedArgs>>,
    /// The smallest span of a join the cap refused.
    pub refused: Option<usize>,
}

/// Whether outputs may be placed below inputs they overwrite ([`output_lag`]), or only over
/// the inputs their lowering declares in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Sharing<'a> {
    /// Declared pairs only.
    Declared,
    /// Declared pairs, and outputs lagged below their inputs while the group they join spans
    /// at most `cap` bytes (each lagged output lies lower than its input, so a chain of
    /// them drifts down; past the cap a chain starts a new group, wherever placement puts it).
    /// The outputs of the steps in `broken` start a new group whatever the span.
    Lagged {
        /// The most bytes a group may span.
        cap: usize,
        /// Steps whose output never joins its input's group.
        broken: &'a BTreeSet<usize>,
        /// Functions that run through their buffers from the end down
        /// ([`minnow_ir::loops::LoopReversal`]): their outputs may also end above their
        /// inputs ([`output_lead`]).
        reversed: &'a BTreeSet<usize>,
    },
}

/// Lags (below) and leads (above) already computed, by function, parameter pair and
/// direction.
pub(super) type Lags = HashMap<(usize, usize, usize, bool), Option<usize>>;

impl Groups {
    /// The groups of `program`, with offsets within groups multiples of `alignment`.
    pub fn new(program: &Program, alignment: usize, sharing: Sharing, lags: &mut Lags) -> Groups {
        let n = program.slots.len();
        let mut uses: Vec<Option<(usize, usize)>> = vec![None; n];
        // A view is used where its base is: the base holds its bytes.
        for (k, step) in program.steps.iter().enumerate() {
            for a in &step.args {
                let u = uses[program.storage(*a).0 .0].get_or_insert((k, k));
                u.1 = k;
            }
        }
        let mut groups = Groups {
            members: Vec::new(),
            uses,
            shared: vec![None; program.steps.len()],
            refused: None,
        };
        let mut group_of: Vec<Option<usize>> = vec![None; n];
        let none = BTreeSet::new();
        let (cap, broken) = match sharing {
            Sharing::Declared => (usize::MAX, &none),
            Sharing::Lagged { cap, broken, .. } => (cap, broken),
        };
        for (k, step) in program.steps.iter().enumerate() {
            let pair = groups.sharing(program, k, &group_of, alignment, sharing, lags);
            for a in step.args.iter().map(|a| program.storage(*a).0) {
                let a = &a;
                if !in_arena(program, *a) || group_of[a.0].is_some() {
                    continue;
                }
                let joined = pair.filter(|p| step.args[p.output] == *a && !broken.contains(&k));
                let joined = joined.and_then(|p| {
                    let g = group_of[step.args[p.input].0]?;
                    let input = step.args[p.input];
                    groups.join(program, g, input, *a, p, cap).then_some((g, p))
                });
                match joined {
                    Some((g, p)) => {
                        group_of[a.0] = Some(g);
                        groups.shared[k] = Some(p);
                    }
                    None => {
                        group_of[a.0] = Some(groups.members.len());
                        groups.members.push(vec![(*a, 0)]);
                    }
                }
            }
        }
        groups
    }

    /// The pair of step `k`'s parameters that may share bytes, if any: its declared in-place
    /// pair where the two tensors have one size, else (with [`Sharing::Lagged`]) the input
    /// dying at `k` and the output with the smallest lag below it, if the two then overlap.
    fn sharing(
        &self,
        program: &Program,
        k: usize,
        group_of: &[Option<usize>],
        alignment: usize,
        sharing: Sharing,
        lags: &mut Lags,
    ) -> Option<SharedArgs> {
        let step = &program.steps[k];
        let activation = |a: usize| program.slot(step.args[a]).kind == SlotKind::Activation;
        let dies = |a: usize| {
            let slot = step.args[a];
            self.uses[slot.0].map(|u| u.1) == Some(k) && group_of[slot.0].is_some()
        };
        let fresh = |a: usize| group_of[step.args[a].0].is_none();
        if let Some((i, o)) = step.in_place {
            let (a, b) = (program.slot(step.args[i]), program.slot(step.args[o]));
            let same = a.bytes() == b.bytes() && a.elem.size() == b.elem.size();
            if same && activation(i) && activation(o) && dies(i) && fresh(o) {
                return Some(SharedArgs {
                    input: i,
                    output: o,
                    lag: 0,
                    above: false,
                });
            }
        }
        let reversed = match sharing {
            Sharing::Declared => return None,
            Sharing::Lagged { reversed, .. } => reversed,
        };
        let params: Vec<(usize, Access)> = program.funcs[step.func]
            .params()
            .filter_map(|(_, d)| match d.kind {
                BufferKind::Param { access, .. } => Some(access),
                BufferKind::Local => None,
            })
            .enumerate()
            .collect();
        let with = |access: Access| {
            let p = params.iter().filter(move |(_, a)| *a == access);
            p.map(|(i, _)| *i).filter(|i| activation(*i))
        };
        let mut best: Option<SharedArgs> = None;
        for i in with(Access::Read).filter(|i| dies(*i)) {
            for o in with(Access::Write).filter(|o| fresh(*o)) {
                for above in [false, true] {
                    if above && !reversed.contains(&step.func) {
                        continue;
                    }
                    let lag = *lags
                        .entry((step.func, i, o, above))
                        .or_insert_with(|| pair_bound(&program.funcs[step.func], i, o, above));
                    let Some(lag) = lag.map(|l| l.div_ceil(alignment) * alignment) else {
                        continue;
                    };
                    let overlaps = lag < program.slot(step.args[o]).bytes();
                    if overlaps && best.is_none_or(|b| lag < b.lag) {
                        best = Some(SharedArgs {
                            input: i,
                            output: o,
                            lag,
                            above,
                        });
                    }
                }
            }
        }
        best
    }

    /// Adds `output` to group `g` as `pair` places it against its member `input` (`lag` bytes
    /// below its start, or ending `lag` bytes above its end), unless the group would then
    /// span more than `cap` bytes.
    fn join(
        &mut self,
        program: &Program,
        g: usize,
        input: SlotId,
        output: SlotId,
        pair: SharedArgs,
        cap: usize,
    ) -> bool {
        let members = &mut self.members[g];
        let at = members.iter().find(|(s, _)| *s == input).map_or(0, |m| m.1) as i64;
        let bytes = |s: SlotId| program.slot(s).bytes() as i64;
        let wanted = at + pair.output_start(bytes(input), bytes(output));
        // The group starts at its lowest member: an output placed below it moves the rest up.
        let shift = (-wanted).max(0);
        let top = |s: SlotId, offset: usize| offset as i64 + shift + bytes(s);
        let span = members.iter().map(|(s, o)| top(*s, *o)).max().unwrap_or(0);
        let span = span.max(wanted + shift + bytes(output)) as usize;
        if span > cap {
            self.refused = Some(self.refused.map_or(span, |r| r.min(span)));
            return false;
        }
        for m in members.iter_mut() {
            m.1 += shift as usize;
        }
        members.push((output, (wanted + shift) as usize));
        true
    }

    /// The steps from the first use of `slot` to the last (state: the whole program).
    pub fn block(&self, program: &Program, slot: SlotId) -> Block {
        let size = program.slot(slot).bytes();
        if matches!(program.slot(slot).kind, SlotKind::State(_)) {
            return Block {
                size,
                first: 0,
                last: program.steps.len(),
            };
        }
        let (first, last) = self.uses[slot.0].unwrap_or((0, 0));
        Block { size, first, last }
    }

    /// The groups as units to place.
    pub fn units(&self, program: &Program) -> Vec<Unit> {
        let unit = |m: &Vec<(SlotId, usize)>| {
            m.iter()
                .map(|(s, offset)| (*offset, self.block(program, *s)))
                .collect()
        };
        self.members.iter().map(unit).collect()
    }

    /// The live set of every step: the tensors alive and the bytes they cover.
    pub fn timeline(&self, program: &Program, offsets: &[Option<usize>]) -> Vec<LiveSet> {
        let live_set = |(k, step): (usize, &Step)| {
            let live: Vec<SlotId> = self
                .members
                .iter()
                .flatten()
                .map(|(s, _)| *s)
                .filter(|s| {
                    let b = self.block(program, *s);
                    b.first <= k && k <= b.last
                })
                .collect();
            let mut ranges: Vec<(usize, usize)> = live
                .iter()
                .filter_map(|s| offsets[s.0].map(|o| (o, o + program.slot(*s).bytes())))
                .collect();
            ranges.sort_unstable();
            let (mut bytes, mut covered) = (0, 0);
            for (lo, hi) in ranges {
                bytes += hi.saturating_sub(lo.max(covered));
                covered = covered.max(hi);
            }
            LiveSet {
                step: step.name.clone(),
                op: step.op.clone(),
                bytes,
                tensors: live.iter().map(|s| program.slot(*s).name.clone()).collect(),
            }
        };
        program.steps.iter().enumerate().map(live_set).collect()
    }
}

/// Whether `slot` lives in the arena.
pub(super) fn in_arena(program: &Program, slot: SlotId) -> bool {
    matches!(
        program.slot(slot).kind,
        SlotKind::Activation | SlotKind::State(_)
    )
}

/// How far `func`'s output parameter `o` must lie from its input parameter `i`, in bytes:
/// its start below the input's start ([`output_lag`]), or where `above` its end above the
/// input's end ([`output_lead`]).
pub(super) fn pair_bound(func: &Func, i: usize, o: usize, above: bool) -> Option<usize> {
    let param = |p: usize| func.params().nth(p).map(|(id, _)| id);
    let (input, output): (BufId, BufId) = (param(i)?, param(o)?);
    match above {
        true => output_lead(func, input, output),
        false => output_lag(func, input, output),
    }
}
