//! [`TaskSearch`]: what to measure next for one task.
//!
//! With the [`Strategy::Model`] strategy, an evolutionary search runs on the learned cost
//! model: a population of random genomes and of mutations and crossovers of the best
//! measured ones evolves for a few generations by predicted cost, and the batch is the best
//! predicted candidates not yet measured, with a share drawn at random for exploration.
//! Part of every batch climbs instead: mutations of the best few measured genomes, unfiltered
//! (all of it until the model has enough samples: a climb from the default). A task's first
//! climb is the default with its output channels outermost (where the default is not so
//! already: the untuned build runs it so where the plan keeps the op's operands apart, and
//! it often wins where the default runs in place too); then it and the default with their
//! split reduce loops unrolled deeper ([`Candidates::deeper_unrolls`]), then both nests'
//! other loop orders ([`Candidates::loop_orders`]), which the analytic cost ranks alike and
//! local edits reach only in several steps, and those unrolled deeper. Each new best puts
//! its own loop orders and deeper unrolls first, and the next batch opens with the first of
//! them whatever the draw. With [`Strategy::Random`], candidates are drawn uniformly.
//! Candidates are distinct schedules: two genomes naming the same schedule are one
//! candidate. A task that must keep its default's in-place loop order under an arena budget
//! ([`Task::keep_in_place`]) proposes no other.

use crate::candidate::{Candidates, Genome};
use crate::compile::pixels_in_order_outside_channels;
use crate::features::features;
use crate::model::CostModel;
use crate::task::{task_step, Task};
use minnow_ir::loops::reduction::LoopNest;
use minnow_ir::loops::SlotKind;
use minnow_passes::loops::Machine;
use minnow_schedules::{schedule_program, Schedule};
use minnow_targets::Features;
use rand::{Rng, RngExt};
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

/// How candidates are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Evolutionary search guided by the learned cost model, with a random share.
    Model,
    /// Uniform random draws (the baseline the model must beat).
    Random,
}

impl Strategy {
    /// The name records carry as their origin.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Model => "model",
            Strategy::Random => "random",
        }
    }
}

/// Share of each model-guided batch drawn at random, for exploration.
pub const RANDOM_SHARE: f64 = 0.15;
/// Share of each model-guided batch that climbs: mutations of the best measured genomes,
/// taken without asking the model (all of the batch, but the random share, until the model
/// is trained).
pub const CLIMB_SHARE: f64 = 0.35;
/// How many of the best measured genomes a climb starts from.
const CLIMB_FROM: usize = 3;
/// Mutations tried before a climb gives up for a random draw.
const CLIMB_ATTEMPTS: usize = 64;
/// Random genomes in each generation's population.
const POPULATION_RANDOM: usize = 48;
/// Measured genomes that parent the first generation.
const PARENTS: usize = 8;
/// Generations evolved on the model per batch.
const GENERATIONS: usize = 3;
/// Genomes kept from one generation to parent the next.
const SURVIVORS: usize = 24;
/// Draws tried before a task's space counts as exhausted.
const DRAW_ATTEMPTS: usize = 400;

/// A candidate to evaluate.
#[derive(Clone, Debug)]
pub struct Proposal {
    /// The genome that drew it (`None` for the default schedule).
    pub genome: Option<Genome>,
    /// Its schedule.
    pub schedule: Schedule,
    /// The schedule as JSON: the candidate's identity.
    pub json: String,
    /// Its features for the cost model.
    pub features: Vec<f64>,
    /// `default`, `model`, `climb` or `random`.
    pub origin: &'static str,
}

/// A decoded genome.
#[derive(Clone, Debug)]
struct Decoded {
    schedule: Schedule,
    json: String,
    /// A hash of the code it builds (the scheduled function and its constants): schedules
    /// that differ only where it does not matter (the place of a loop of one iteration) are
    /// one candidate.
    code: u64,
    features: Vec<f64>,
}

/// One task's search state.
pub struct TaskSearch<'t> {
    /// The task.
    pub task: &'t Task,
    candidates: Candidates<'t>,
    machine: Machine,
    cpu: Features,
    /// Candidates evaluated (or proposed), by [`Decoded::code`].
    seen: HashSet<u64>,
    /// Genomes measured valid, with their figure relative to the default.
    measured: Vec<(Genome, f64)>,
    decoded: HashMap<Genome, Option<Decoded>>,
    /// Genomes the climbs propose before any mutation, the next last: the structured
    /// neighbours of the default ([`Self::set_warm_start`]) and of each new best
    /// ([`Self::measured`]).
    warm_start: Vec<Genome>,
    /// The default with its output channels outermost ([`crate::compile::channels_outermost`]),
    /// proposed first whatever the draw: the likeliest single win (kws's pointwise layers
    /// on Cortex-M4), and the order every other layer's fastest nests share.
    channels_outer: Option<Genome>,
    /// A new best was measured: the next proposal is its first unseen structured neighbour,
    /// whatever the draw (kws's depthwise layer on Cortex-M4: the channels-outer nest with
    /// its columns before its rows, 0.4 % faster, which a seed whose draws fell to the model
    /// never measured).
    new_best: bool,
    /// No unseen candidate could be drawn.
    pub exhausted: bool,
}

impl<'t> TaskSearch<'t> {
    /// The search of `task` on a machine and CPU.
    pub fn new(task: &'t Task, machine: Machine, cpu: Features) -> TaskSearch<'t> {
        TaskSearch {
            task,
            candidates: Candidates::new(task, machine),
            machine,
            cpu,
            seen: HashSet::new(),
            measured: Vec::new(),
            decoded: HashMap::new(),
            warm_start: Vec::new(),
            channels_outer: None,
            new_best: false,
            exhausted: false,
        }
    }

    /// `schedule` as a proposal with no genome (the default), if it applies.
    pub fn fixed(&mut self, schedule: Schedule, origin: &'static str) -> Option<Proposal> {
        let nest = schedule.apply(&self.task.reduction).ok()?;
        let outer = crate::compile::channels_outermost(&self.task.reduction, &schedule);
        let d = self.describe(schedule, &nest)?;
        self.seen.insert(d.code);
        if origin == "default" {
            self.set_warm_start(&nest, outer);
        }
        Some(Proposal {
            genome: None,
            schedule: d.schedule,
            json: d.json,
            features: d.features,
            origin,
        })
    }

    /// Sets the first climbs from the default's `nest` and its channels-outer schedule
    /// `outer`: that one first (whatever the draw), then it and the default unrolled deeper
    /// (the default's loop order keeps its arena, what a `--max-arena` build falls back to),
    /// then the loop orders of both, then those unrolled deeper.
    fn set_warm_start(&mut self, nest: &LoopNest, outer: Option<Schedule>) {
        let c = &self.candidates;
        let outer = outer.and_then(|s| s.apply(&self.task.reduction).ok());
        let mut orders = c.loop_orders(nest);
        let mut first = Vec::new();
        if let Some(o) = &outer {
            let g = c.genome_of(o);
            first = c.deeper_unrolls(&g);
            orders.extend(c.loop_orders(o));
            self.channels_outer = Some(g);
        }
        // The default's own order unrolled deeper: records that keep its arena.
        first.extend(c.deeper_unrolls(&c.genome_of(nest)));
        let unrolls = orders
            .iter()
            .flat_map(|g| c.deeper_unrolls(g))
            .collect::<Vec<_>>();
        let mut warm: Vec<Genome> = first.into_iter().chain(orders).chain(unrolls).collect();
        warm.reverse();
        self.warm_start = warm;
    }

    /// Records that a genome's candidate measured `relative` times the default.
    /// A new best (faster than the default and every genome before it) puts its own loop
    /// orders and deeper unrolls at the head of the climbs: the structured neighbours that
    /// won for the default are the likeliest wins for it too (kws's pointwise layers on
    /// Cortex-M4: channels outermost, then unrolled four times deeper, then columns before
    /// rows, each step 0.4 to 2 % faster than the last).
    pub fn measured(&mut self, genome: &Genome, relative: f64) {
        let best = self.measured.iter().map(|m| m.1).fold(1.0, f64::min);
        self.measured.push((genome.clone(), relative));
        if relative >= best {
            return;
        }
        let Some((_, nest)) = self.candidates.decode(genome) else {
            return;
        };
        let c = &self.candidates;
        let mut next: Vec<Genome> = c.loop_orders(&nest);
        next.extend(c.deeper_unrolls(genome));
        next.reverse();
        self.warm_start.extend(next);
        self.new_best = true;
    }

    /// Up to `n` unseen candidates chosen by `strategy` (fewer, and `exhausted` set, when the
    /// space has no more).
    pub fn propose(
        &mut self,
        n: usize,
        strategy: Strategy,
        model: &CostModel,
        rng: &mut impl Rng,
    ) -> Vec<Proposal> {
        let guided = strategy == Strategy::Model;
        let trained = guided && model.is_trained();
        let mut ranked = if trained {
            self.evolve(model, rng).into_iter()
        } else {
            Vec::new().into_iter()
        };
        let mut out = Vec::new();
        while out.len() < n {
            let draw: f64 = rng.random();
            let forced = match guided {
                true => self.forced(),
                false => None,
            };
            let (origin, next) = if forced.is_some() {
                ("climb", forced)
            } else if !guided || draw < RANDOM_SHARE {
                ("random", None)
            } else if !trained || draw < RANDOM_SHARE + CLIMB_SHARE {
                ("climb", self.climb(rng))
            } else {
                ("model", ranked.by_ref().find(|g| self.unseen(g)))
            };
            let (origin, next) = match next {
                Some(g) => (origin, Some(g)),
                None => ("random", self.draw_unseen(rng)),
            };
            let Some(genome) = next else {
                self.exhausted = true;
                break;
            };
            let d = self.decode(&genome).expect("an unseen genome decodes");
            self.seen.insert(d.code);
            out.push(Proposal {
                genome: Some(genome),
                schedule: d.schedule,
                json: d.json,
                features: d.features,
                origin,
            });
        }
        out
    }

    /// The proposal due whatever the draw: the default with its channels outermost, once, then
    /// once per new best its first unseen structured neighbour.
    fn forced(&mut self) -> Option<Genome> {
        if let Some(g) = self.channels_outer.take().filter(|g| self.unseen(g)) {
            return Some(g);
        }
        if !std::mem::take(&mut self.new_best) {
            return None;
        }
        self.next_warm()
    }

    /// The next unseen genome of [`Self::warm_start`], taken off it.
    fn next_warm(&mut self) -> Option<Genome> {
        while let Some(g) = self.warm_start.pop() {
            if self.unseen(&g) {
                return Some(g);
            }
        }
        None
    }

    /// The next of the default's loop orders not yet seen, else an unseen mutation of one of
    /// the best few measured genomes (or of the default): a step of hill climbing, which the
    /// model does not filter.
    fn climb(&mut self, rng: &mut impl Rng) -> Option<Genome> {
        if let Some(g) = self.next_warm() {
            return Some(g);
        }
        let parents = self.parents();
        let top = CLIMB_FROM.min(parents.len() - 1);
        for _ in 0..CLIMB_ATTEMPTS {
            // The best few measured, and the default (last).
            let at = rng.random_range(0..=top);
            let parent = if at == top {
                parents.last()
            } else {
                parents.get(at)
            }?;
            let g = self.candidates.mutate(parent, rng);
            if self.unseen(&g) {
                return Some(g);
            }
        }
        None
    }

    /// The best measured genomes and the default nest's.
    fn parents(&self) -> Vec<Genome> {
        let mut best: Vec<(Genome, f64)> = self.measured.clone();
        best.sort_by(|a, b| a.1.total_cmp(&b.1));
        let mut parents: Vec<Genome> = best.into_iter().take(PARENTS).map(|(g, _)| g).collect();
        // The default nest parents every generation: its neighbours are the likeliest wins.
        parents.push(self.candidates.default_genome());
        parents
    }

    /// Genomes ranked by predicted cost after evolving on the model, best first.
    fn evolve(&mut self, model: &CostModel, rng: &mut impl Rng) -> Vec<Genome> {
        let parents = self.parents();
        let mut population = self.offspring(&parents, rng);
        let mut scored: Vec<(Genome, f64)> = Vec::new();
        for _ in 0..GENERATIONS {
            scored = self.score(population, model);
            let survivors: Vec<Genome> = scored
                .iter()
                .take(SURVIVORS)
                .map(|(g, _)| g.clone())
                .collect();
            population = survivors.clone();
            population.extend(self.offspring(&survivors, rng));
        }
        scored.into_iter().map(|(g, _)| g).collect()
    }

    /// Random genomes, and mutations and crossovers of `parents`.
    fn offspring(&self, parents: &[Genome], rng: &mut impl Rng) -> Vec<Genome> {
        let mut out: Vec<Genome> = (0..POPULATION_RANDOM)
            .map(|_| self.candidates.random(rng))
            .collect();
        for p in parents {
            out.push(self.candidates.mutate(p, rng));
            out.push(self.candidates.mutate(p, rng));
        }
        for _ in 0..parents.len() {
            let a = &parents[rng.random_range(0..parents.len())];
            let b = &parents[rng.random_range(0..parents.len())];
            out.push(self.candidates.crossover(a, b, rng));
        }
        out
    }

    /// The unseen, valid genomes of `population`, one per schedule, by predicted cost.
    fn score(&mut self, population: Vec<Genome>, model: &CostModel) -> Vec<(Genome, f64)> {
        let mut codes: HashSet<u64> = HashSet::new();
        let mut order = Vec::new();
        for g in population {
            let Some(d) = self.decode(&g) else { continue };
            if self.seen.contains(&d.code) || !codes.insert(d.code) {
                continue;
            }
            order.push((g, d.features));
        }
        let features: Vec<Vec<f64>> = order.iter().map(|(_, f)| f.clone()).collect();
        let predicted = model.predict(&features).unwrap_or_default();
        let mut scored: Vec<(Genome, f64)> =
            order.into_iter().map(|(g, _)| g).zip(predicted).collect();
        scored.sort_by(|a, b| a.1.total_cmp(&b.1));
        scored
    }

    /// A random genome whose schedule has not been seen.
    fn draw_unseen(&mut self, rng: &mut impl Rng) -> Option<Genome> {
        for _ in 0..DRAW_ATTEMPTS {
            let g = self.candidates.random(rng);
            if self.unseen(&g) {
                return Some(g);
            }
        }
        None
    }

    fn unseen(&mut self, g: &Genome) -> bool {
        self.decode(g).is_some_and(|d| !self.seen.contains(&d.code))
    }

    fn decode(&mut self, g: &Genome) -> Option<Decoded> {
        if let Some(d) = self.decoded.get(g) {
            return d.clone();
        }
        let r = &self.task.reduction;
        let d = self
            .candidates
            .decode(g)
            .filter(|(s, _)| !self.task.keep_in_place || pixels_in_order_outside_channels(r, s))
            .and_then(|(schedule, nest)| self.describe(schedule, &nest));
        self.decoded.insert(g.clone(), d.clone());
        d
    }

    /// The schedule's identity and features (building its function); `None` if it does not
    /// build.
    fn describe(&self, schedule: Schedule, nest: &LoopNest) -> Option<Decoded> {
        let mut program = self.task.program.clone();
        let chosen = |_: usize, _: &_, _: &_| Some(schedule.clone());
        schedule_program(&mut program, &self.cpu, &chosen).ok()?;
        let step = &program.steps[task_step(&program)];
        let func = &program.funcs[step.func];
        let features = features(self.task, self.machine, nest, func);
        let json = serde_json::to_string(&schedule).ok()?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        format!("{:?}", func.body).hash(&mut hasher);
        for slot in &program.slots {
            if let SlotKind::Constant(bytes) = &slot.kind {
                bytes.hash(&mut hasher);
            }
        }
        Some(Decoded {
            schedule,
            json,
            code: hasher.finish(),
            features,
        })
    }
}
