//! Candidates: the [`Genome`]s a search evolves and the schedules they stand for.
//!
//! A genome draws a loop nest from one of the task's two spaces: a point of the per-operator
//! [`Space`] (its knobs), or a path through the tiling e-graph ([`TilingSpace::sample`]: at
//! each e-class the next gene, taken modulo the number of ways on, picks a loop node and its
//! kind, the ways ranked cheapest first by the analytic cost). The all-zero path is the
//! default nest, and genes are drawn small more often than not, so the search spends most of
//! its draws near what the analytic model likes and still reaches the whole space. Two flags
//! ask for the weights widened for the SIMD lanes and for the padded loops partitioned; a
//! flag that does not apply to the nest is ignored. Widening doubles the weights' flash, so
//! it is offered only where each weight serves at least [`WIDEN_MIN_REUSE`] products per
//! inference (the default schedules' rule of thumb). Genomes mutate and cross
//! over gene by gene, and every genome yields a valid nest or none, so the search never
//! builds a schedule that changes the result.

use crate::task::Task;
use minnow_ir::loops::reduction::{Lanes, Loop, LoopNest};
use minnow_ir::loops::ForKind;
use minnow_passes::loops::lang::name_loops;
use minnow_passes::loops::{LoopTiler, Machine, TilingSpace};
use minnow_schedules::{Knobs, Primitive, Schedule, Space};
use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

/// Genes of a path through the tiling e-graph (longer paths than the deepest nest are cut).
pub const PATH_GENES: usize = 16;

/// Products per weight per inference below which widened weights are not worth their flash.
pub const WIDEN_MIN_REUSE: u64 = 16;

/// Where a genome's nest comes from.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Source {
    /// A point of the operator's [`Space`], by index into [`Space::choices`] (modulo).
    Knobs(u16),
    /// A path through the tiling e-graph.
    Path(Vec<u16>),
    /// An explicit nest: what a nest-level mutation of another genome's nest makes.
    Nest(Vec<LoopGene>),
}

/// One loop of an explicit nest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LoopGene {
    /// The axis.
    pub axis: u8,
    /// Iterations.
    pub extent: u32,
    /// Weight of the loop variable in the axis value.
    pub stride: u32,
    /// 0 serial, 1 unrolled, else that many vectorized lanes.
    pub kind: u8,
}

/// One candidate as the search sees it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Genome {
    /// The nest.
    pub source: Source,
    /// Store the weights widened for the SIMD lanes (where the nest has them innermost and
    /// the weights are private to the op).
    pub widen: bool,
    /// Partition padded loops so the interior tests no guard (where the op is padded).
    pub partition: bool,
}

/// A task's two spaces, to draw, vary and decode genomes.
pub struct Candidates<'t> {
    task: &'t Task,
    space: Space,
    choices: Vec<Knobs>,
    tiling: TilingSpace,
    machine: Machine,
    widen_allowed: bool,
}

impl<'t> Candidates<'t> {
    /// The spaces of `task` on `machine` (rewrites the tiling e-graph once).
    pub fn new(task: &'t Task, machine: Machine) -> Candidates<'t> {
        let space = Space::of(&task.reduction);
        let choices = space.choices();
        let tiling = LoopTiler::default().space(&task.reduction);
        let r = &task.reduction;
        let weights: u64 = (0..r.axes.len())
            .filter(|a| r.weight.index.coefficient(*a) != 0)
            .map(|a| r.axes[a].extent as u64)
            .product();
        Candidates {
            task,
            space,
            choices,
            tiling,
            machine,
            widen_allowed: task.widenable && task.macs >= WIDEN_MIN_REUSE * weights.max(1),
        }
    }

    /// The genome of the default nest: the cheapest way at every e-class.
    pub fn default_genome(&self) -> Genome {
        Genome {
            source: Source::Path(vec![0; PATH_GENES]),
            widen: true,
            partition: true,
        }
    }

    /// A gene: half the time the cheapest way, a quarter one of the next three, else any.
    fn gene(rng: &mut impl Rng) -> u16 {
        match rng.random_range(0..4) {
            0 | 1 => 0,
            2 => rng.random_range(1..4),
            _ => rng.random(),
        }
    }

    /// A genome drawn uniformly: either space with equal odds, random genes and flags.
    pub fn random(&self, rng: &mut impl Rng) -> Genome {
        let source = if rng.random_bool(0.5) && !self.choices.is_empty() {
            Source::Knobs(rng.random_range(0..self.choices.len()) as u16)
        } else {
            Source::Path((0..PATH_GENES).map(|_| Self::gene(rng)).collect())
        };
        Genome {
            source,
            widen: rng.random_bool(0.5),
            partition: rng.random_bool(0.5),
        }
    }

    /// `g` changed a little: half the time its nest edited (two adjacent loops swapped or a
    /// loop moved out past several, a loop unrolled or rolled back, an axis's split
    /// redrawn), else one gene redrawn or a flag flipped.
    pub fn mutate(&self, g: &Genome, rng: &mut impl Rng) -> Genome {
        if matches!(g.source, Source::Nest(_)) || rng.random_bool(0.5) {
            if let Some(edited) = self.edit_nest(g, rng) {
                // A third of the time a second edit: some wins take two (a wider block that
                // pays only with its loop moved out).
                if rng.random_bool(0.33) {
                    if let Some(twice) = self.edit_nest(&edited, rng) {
                        return twice;
                    }
                }
                return edited;
            }
        }
        let mut out = g.clone();
        match rng.random_range(0..4) {
            0 => out.widen = !out.widen,
            1 => out.partition = !out.partition,
            _ => match &mut out.source {
                Source::Knobs(k) => {
                    *k = rng.random_range(0..self.choices.len().max(1)) as u16;
                }
                Source::Path(genes) => {
                    // Early genes change the nest most: favour the later ones half the time.
                    let at = rng.random_range(0..genes.len());
                    let at = if rng.random_bool(0.5) {
                        at.max(rng.random_range(0..genes.len()))
                    } else {
                        at
                    };
                    genes[at] = Self::gene(rng);
                }
                Source::Nest(_) => out.widen = !out.widen,
            },
        }
        out
    }

    /// `g`'s nest with one edit, as an explicit nest; `None` if `g` names no nest or the
    /// edit drawn does not apply.
    fn edit_nest(&self, g: &Genome, rng: &mut impl Rng) -> Option<Genome> {
        let mut loops = self.loop_genes(g)?;
        let n = loops.len();
        // Loops of one iteration are placeholders: edits act on the others.
        let real: Vec<usize> = (0..n).filter(|i| loops[*i].extent > 1).collect();
        match rng.random_range(0..3) {
            0 if real.len() >= 2 => {
                // The vectorized lanes stay innermost.
                let movable = real.len() - usize::from(loops[real[real.len() - 1]].kind > 1);
                if movable < 2 {
                    return None;
                }
                let k = rng.random_range(0..movable - 1);
                if rng.random_bool(0.5) {
                    loops.swap(real[k], real[k + 1]);
                } else {
                    // A loop moved past several others at once: a win such as the channel
                    // blocks outermost (their weights and requantization parameters then
                    // stay put across the pixels) is several swaps away, each alone a loss.
                    let (from, to) = (real[k + 1], real[rng.random_range(0..=k)]);
                    let l = loops.remove(from);
                    loops.insert(to, l);
                }
            }
            1 => {
                let i = rng.random_range(0..n);
                let l = &mut loops[i];
                match l.kind {
                    0 if l.extent <= 16 => l.kind = 1,
                    1 => l.kind = 0,
                    _ => return None,
                }
                let body: u64 = loops
                    .iter()
                    .filter(|l| l.kind == 1)
                    .map(|l| u64::from(l.extent))
                    .product();
                if body > self.machine.max_unrolled as u64 {
                    return None;
                }
            }
            _ => {
                let axes = &self.task.reduction.axes;
                let wide: Vec<usize> = (0..axes.len()).filter(|a| axes[*a].extent > 1).collect();
                let axis = *wide.get(rng.random_range(0..wide.len().max(1)))?;
                resplit(&mut loops, axis as u8, rng)?
            }
        }
        Some(Genome {
            source: Source::Nest(loops),
            ..g.clone()
        })
    }

    /// `g`'s nest as explicit loops; `None` if `g` names no nest.
    fn loop_genes(&self, g: &Genome) -> Option<Vec<LoopGene>> {
        Some(loop_genes(&self.decode(g)?.1))
    }

    /// `nest` as an explicit genome with its flags.
    pub fn genome_of(&self, nest: &LoopNest) -> Genome {
        Genome {
            source: Source::Nest(loop_genes(nest)),
            widen: nest.wide_weights,
            partition: nest.partition_borders,
        }
    }

    /// `nest` with each of its outer serial loops (those outside every reduce loop, of more
    /// than one iteration) moved outermost in turn, then with each two neighbouring such
    /// loops swapped, as genomes keeping its flags (each order once, the nest's own left
    /// out): the loop orders the analytic cost does not tell apart, since the operand loads
    /// it counts are the same, though how often the weights, the requantization parameters
    /// and the output pointer step is not (kws on Cortex-M4: its layers' channel blocks
    /// outermost run them 2 to 11 % faster, and its pointwise layers a further 0.4 % with the
    /// columns, not the rows, next).
    pub fn loop_orders(&self, nest: &LoopNest) -> Vec<Genome> {
        let loops = loop_genes(nest);
        let axes = &self.task.reduction.axes;
        let outer = loops
            .iter()
            .position(|l| axes[l.axis as usize].reduce || l.kind != 0)
            .unwrap_or(loops.len());
        let real: Vec<usize> = (0..outer).filter(|i| loops[*i].extent > 1).collect();
        let to_front = real.iter().skip(1).map(|i| {
            let mut order = loops.clone();
            let l = order.remove(*i);
            order.insert(real[0], l);
            order
        });
        let swaps = real.windows(2).map(|w| {
            let mut order = loops.clone();
            order.swap(w[0], w[1]);
            order
        });
        let mut orders: Vec<Vec<LoopGene>> = Vec::new();
        for order in to_front.chain(swaps) {
            if order != loops && !orders.contains(&order) {
                orders.push(order);
            }
        }
        orders
            .into_iter()
            .map(|order| Genome {
                source: Source::Nest(order),
                ..self.genome_of(nest)
            })
            .collect()
    }

    /// `g`'s nest with the unrolled part of a split reduce loop two and four times longer
    /// (its serial part as much shorter), for each such loop, within the machine's unrolling
    /// limit: the tiler's cost charges a long straight-line region the registers it may spill,
    /// which gcc often does not (kws's pointwise layers on Cortex-M4 run 1 % faster with eight
    /// input words per iteration than with the tiler's two).
    pub fn deeper_unrolls(&self, g: &Genome) -> Vec<Genome> {
        let Some(loops) = self.loop_genes(g) else {
            return Vec::new();
        };
        let axes = &self.task.reduction.axes;
        let body: u64 = loops
            .iter()
            .filter(|l| l.kind == 1)
            .map(|l| u64::from(l.extent))
            .product();
        let mut out = Vec::new();
        for (o, outer) in loops.iter().enumerate() {
            let inner = loops.iter().position(|l| {
                l.axis == outer.axis && l.kind == 1 && l.stride * l.extent == outer.stride
            });
            let Some(i) = inner.filter(|_| outer.kind == 0 && axes[outer.axis as usize].reduce)
            else {
                continue;
            };
            for factor in [2, 4] {
                let fits = body * u64::from(factor) <= self.machine.max_unrolled as u64;
                if outer.extent % factor != 0 || !fits {
                    continue;
                }
                let mut deeper = loops.clone();
                deeper[i].extent *= factor;
                deeper[o].extent /= factor;
                deeper[o].stride = deeper[i].stride * deeper[i].extent;
                out.push(Genome {
                    source: Source::Nest(deeper),
                    ..g.clone()
                });
            }
        }
        out
    }

    /// A child of `a` and `b`: paths cut at one point and joined, otherwise one parent's
    /// source; each flag from either parent.
    pub fn crossover(&self, a: &Genome, b: &Genome, rng: &mut impl Rng) -> Genome {
        let source = match (&a.source, &b.source) {
            (Source::Path(x), Source::Path(y)) => {
                let cut = rng.random_range(0..x.len().min(y.len()).max(1));
                Source::Path(x[..cut].iter().chain(&y[cut..]).copied().collect())
            }
            _ if rng.random_bool(0.5) => a.source.clone(),
            _ => b.source.clone(),
        };
        Genome {
            source,
            widen: if rng.random_bool(0.5) {
                a.widen
            } else {
                b.widen
            },
            partition: if rng.random_bool(0.5) {
                a.partition
            } else {
                b.partition
            },
        }
    }

    /// The schedule of `g` and its nest; `None` where the genome names no valid nest.
    pub fn decode(&self, g: &Genome) -> Option<(Schedule, LoopNest)> {
        let r = &self.task.reduction;
        let mut nest = match &g.source {
            Source::Knobs(k) => {
                let knobs = self.choices.get(*k as usize % self.choices.len().max(1))?;
                self.space.schedule(knobs).apply(r).ok()?
            }
            Source::Path(genes) => {
                let mut next = genes.iter();
                let mut pick = |n: usize| next.next().map_or(0, |v| *v as usize % n);
                self.tiling.sample(r, self.machine, &mut pick).ok()?
            }
            Source::Nest(genes) => {
                let mut nest = LoopNest {
                    loops: genes
                        .iter()
                        .map(|g| Loop {
                            name: String::new(),
                            axis: g.axis as usize,
                            extent: g.extent as usize,
                            stride: g.stride as usize,
                            kind: match g.kind {
                                0 => ForKind::Serial,
                                1 => ForKind::Unrolled,
                                lanes => ForKind::Vectorized {
                                    lanes: u32::from(lanes),
                                },
                            },
                        })
                        .collect(),
                    ..LoopNest::default()
                };
                r.check(&nest).ok()?;
                name_loops(r, &mut nest);
                nest
            }
        };
        let lanes_innermost = matches!(
            nest.loops.last().map(|l| l.kind),
            Some(ForKind::Vectorized { .. })
        );
        nest.wide_weights = g.widen && self.widen_allowed && lanes_innermost;
        // A pair of lanes on a core without SIMD runs as Winograd's inner product.
        nest.winograd = nest.wide_weights
            && self.machine.winograd
            && self.task.winograd
            && r.lanes(&nest) == Lanes::Pairs;
        nest.partition_borders = g.partition && !r.guards.is_empty();
        r.check(&nest).ok()?;
        let schedule = Schedule::of_nest(r, &nest);
        debug_assert!(!schedule.steps.is_empty() || nest == r.default_nest());
        Some((schedule, nest))
    }
}

/// The loops of `nest` as genes.
fn loop_genes(nest: &LoopNest) -> Vec<LoopGene> {
    let genes = nest.loops.iter().map(|l| LoopGene {
        axis: l.axis as u8,
        extent: l.extent as u32,
        stride: l.stride as u32,
        kind: match l.kind {
            ForKind::Serial => 0,
            ForKind::Unrolled => 1,
            ForKind::Vectorized { lanes } => lanes as u8,
        },
    });
    genes.collect()
}

/// Redraws how `axis` is split: two of its loops adjacent in stride share their extents
/// anew (mostly the inner one doubled or halved, else any divisor of their product), or an
/// axis of one loop is split in two.
fn resplit(loops: &mut Vec<LoopGene>, axis: u8, rng: &mut impl Rng) -> Option<()> {
    let mut parts: Vec<usize> = (0..loops.len())
        .filter(|i| loops[*i].axis == axis && loops[*i].kind <= 1)
        .collect();
    parts.sort_by_key(|i| loops[*i].stride);
    let divisors = |n: u32| (1..=n).filter(move |d| n % d == 0).collect::<Vec<u32>>();
    match parts[..] {
        [] => None,
        [only] => {
            let l = loops[only];
            let ds: Vec<u32> = divisors(l.extent)
                .into_iter()
                .filter(|d| *d > 1 && *d < l.extent)
                .collect();
            let d = *ds.get(rng.random_range(0..ds.len().max(1)))?;
            let inner = LoopGene { extent: d, ..l };
            let outer = LoopGene {
                extent: l.extent / d,
                stride: l.stride * d,
                ..l
            };
            loops.splice(only..=only, [outer, inner]);
            Some(())
        }
        _ => {
            let k = rng.random_range(0..parts.len() - 1);
            let (lo, hi) = (parts[k], parts[k + 1]);
            if loops[hi].stride != loops[lo].stride * loops[lo].extent {
                return None;
            }
            let total = loops[lo].extent * loops[hi].extent;
            let ds = divisors(total);
            let near = [loops[lo].extent * 2, loops[lo].extent / 2];
            let near: Vec<u32> = near.into_iter().filter(|d| ds.contains(d)).collect();
            let d = if !near.is_empty() && rng.random_bool(0.7) {
                near[rng.random_range(0..near.len())]
            } else {
                ds[rng.random_range(0..ds.len())]
            };
            loops[lo].extent = d;
            loops[hi].extent = total / d;
            loops[hi].stride = loops[lo].stride * d;
            Some(())
        }
    }
}

/// Whether `schedule` asks for widened weights (which cost flash).
pub fn widens(schedule: &Schedule) -> bool {
    schedule.steps.contains(&Primitive::WidenWeights)
}
