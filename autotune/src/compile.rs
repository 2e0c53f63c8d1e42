//! The compilation pipeline every user of minnow shares: rewrite the graph (e-graph, by the
//! target's cost), lower it to loops, schedule the multiply-accumulate ops for the target,
//! order the steps for the smallest arena, plan the arena, emit C.

use crate::cost::{InputCopies, ScheduleCost};
use crate::tilings::Tilings;
use minnow_backends::c::{CEmitter, CSource};
use minnow_ir::loops::reduction::Reduction;
use minnow_ir::loops::{IndexReassociation, Program};
use minnow_ir::{Graph, TensorKind, WeightLayout};
use minnow_passes::constants::ConstantMerger;
use minnow_passes::graph::{GraphRewriter, RewriteReport};
use minnow_passes::memory::{ArenaPlan, DirectionAlternation, MemoryPlanner};
use minnow_passes::order::{OrderReport, StepOrderer};
use minnow_passes::patch::{PatchReport, Patcher, Patching};
use minnow_schedules::{
    schedule_program, weight_is_private, winograd_allowed, Chooser, Primitive, Schedule,
    ScheduleError, Space,
};
use minnow_targets::Target;
use std::cell::RefCell;
use std::collections::HashMap;

/// A model taken through the pipeline.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// What the graph rewriter did.
    pub rewrite: RewriteReport,
    /// Which first layers run in bands.
    pub patch: PatchReport,
    /// What the step orderer did.
    pub order: OrderReport,
    /// The scheduled program, its steps in the order that needs the least arena.
    pub program: Program,
    /// Its arena.
    pub plan: ArenaPlan,
    /// The generated C.
    pub source: CSource,
}

/// Which schedule each multiply-accumulate step gets.
pub enum Schedules<'a> {
    /// The reference kernels' loops (what the interpreter mirrors).
    Naive,
    /// The target's default: the loop nest [`minnow_passes::loops::LoopTiler`] extracts by the target's analytic cost.
    Default,
    /// Chosen per step (index into the program's steps); `None` falls back to the default.
    Chosen(Chooser<'a>),
}

/// Why a graph does not compile.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// An op cannot be lowered.
    #[error(transparent)]
    Lower(#[from] minnow_ir::Error),
    /// A schedule does not apply.
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    /// The first layers cannot run in bands.
    #[error("patch-based execution failed: {0}; compile with --patches off")]
    Patch(String),
}

/// A model rewritten for a target and lowered to loops, before any schedule.
#[derive(Clone, Debug)]
pub struct Lowered {
    /// What the graph rewriter did.
    pub rewrite: RewriteReport,
    /// Which first layers run in bands.
    pub patch: PatchReport,
    /// The lowered program: every multiply-accumulate step in its reference loops.
    pub program: Program,
    /// The nests the graph rewriter's layout choice tiled, for the default schedules.
    pub tilings: Tilings,
}

/// Rewrites and lowers `graph` (its first layers in bands as `patching` says), schedules it
/// for `target`, plans its memory and emits C named `name`.
pub fn compile(
    graph: &Graph,
    name: &str,
    target: &Target,
    patching: Patching,
    schedules: Schedules,
) -> Result<Compiled, CompileError> {
    let lowered = lower(graph, name, target, patching)?;
    schedule_and_emit(lowered, target, schedules)
}

/// Rewrites `graph` for `target`, runs its first layers in bands as `patching` says
/// ([`Patcher`]) and lowers it to a program named `name`.
pub fn lower(
    graph: &Graph,
    name: &str,
    target: &Target,
    patching: Patching,
) -> Result<Lowered, CompileError> {
    let tilings = Tilings::default();
    let (graph, rewrite) = rewrite_graph(graph, target, &tilings)?;
    let (graph, patch) = Patcher::default()
        .run(&graph, patching)
        .map_err(CompileError::Patch)?;
    let mut program = minnow_ir::lower::lower(&graph)?;
    program.name = name.to_string();
    Ok(Lowered {
        rewrite,
        patch,
        program,
        tilings,
    })
}

/// A lowered program scheduled, its steps ordered and its arena planned: everything of a
/// [`Compiled`] but the C, for callers that weigh plans before emitting one.
pub struct Scheduled {
    /// What the graph rewriter did.
    pub rewrite: RewriteReport,
    /// Which first layers run in bands.
    pub patch: PatchReport,
    /// What the step orderer did.
    pub order: OrderReport,
    /// The scheduled program, its steps in the order that needs the least arena.
    pub program: Program,
    /// Its arena.
    pub plan: ArenaPlan,
    /// The defaulted steps (by name) run with their output channels outermost
    /// ([`channels_outermost`]), their input and output being apart in the plan anyway.
    pub channels_outer: Vec<String>,
}

impl Scheduled {
    /// Emits its C.
    pub fn emit(self, target: &Target) -> Compiled {
        let mut source = CEmitter.emit(&self.program, &self.plan);
        note_build_flags(&mut source, target);
        Compiled {
            rewrite: self.rewrite,
            patch: self.patch,
            order: self.order,
            program: self.program,
            plan: self.plan,
            source,
        }
    }
}

/// Schedules a lowered program for `target`, orders its steps for the smallest arena, plans
/// the arena and emits C.
pub fn schedule_and_emit(
    lowered: Lowered,
    target: &Target,
    schedules: Schedules,
) -> Result<Compiled, CompileError> {
    Ok(schedule_lowered(lowered, target, schedules)?.emit(target))
}

/// Schedules a lowered program for `target`, orders its steps for the smallest arena and
/// plans the arena.
pub fn schedule_lowered(
    lowered: Lowered,
    target: &Target,
    schedules: Schedules,
) -> Result<Scheduled, CompileError> {
    let Lowered {
        rewrite,
        patch,
        program,
        tilings,
    } = lowered;
    let private: Vec<bool> = (0..program.steps.len())
        .map(|i| weight_is_private(&program, i))
        .collect();
    let winograd: Vec<bool> = (0..program.steps.len())
        .map(|i| {
            let r = program.steps[i].reduction.as_ref();
            r.is_some_and(|r| winograd_allowed(&program, i, r))
        })
        .collect();
    // Ops of the same shape (a model's repeated blocks) are tiled once.
    let by_workload: RefCell<HashMap<String, Option<Schedule>>> = RefCell::default();
    let tiled = |i: usize, r: &Reduction| {
        let key = format!(
            "{} {} {:?} {}",
            workload(r),
            private[i],
            r.weight_layout,
            winograd[i]
        );
        if let Some(s) = by_workload.borrow().get(&key) {
            return s.clone();
        }
        let schedule = default_schedule(r, target, private[i], winograd[i], &tilings);
        by_workload.borrow_mut().insert(key, schedule.clone());
        schedule
    };
    let naive = |_: usize, _: &Reduction, _: &Space| Some(Schedule::default());
    let none = |_: usize, _: &Reduction, _: &Space| None;
    // The schedules asked for; the default wherever they give none.
    let explicit: Chooser = match schedules {
        Schedules::Chosen(f) => f,
        _ => &none,
    };
    let choose = |i: usize, r: &Reduction, s: &Space| explicit(i, r, s).or_else(|| tiled(i, r));
    let ((mut program, order, plan), channels_outer) = match schedules {
        Schedules::Naive => (schedule_and_plan(program, target, &naive)?, Vec::new()),
        _ if !crate::cost::machine(target).winograd => {
            channels_outer_where_apart(program, target, explicit, &tiled)?
        }
        _ => (schedule_and_plan(program, target, &choose)?, Vec::new()),
    };
    // Chains of ops in place, every other one run from the end down where that plans less.
    let plan = DirectionAlternation.run(&mut program, &MemoryPlanner::default(), plan);
    Ok(Scheduled {
        rewrite,
        patch,
        order,
        program,
        plan,
        channels_outer,
    })
}

/// A program scheduled and ordered, its step order's report and its arena.
type Planned = (Program, OrderReport, ArenaPlan);

/// Schedules `program` as `choose` says, orders its steps for the smallest arena and plans it.
fn schedule_and_plan(
    mut program: Program,
    target: &Target,
    choose: Chooser,
) -> Result<Planned, CompileError> {
    schedule_program(&mut program, &target.features, choose)?;
    for func in &mut program.funcs {
        IndexReassociation.run(func);
    }
    ConstantMerger.run(&mut program);
    let order = StepOrderer::default().run(&mut program);
    let plan = MemoryPlanner::default().run(&program);
    Ok((program, order, plan))
}

/// The `explicit` schedules, the default (`tiled`) where it has none, then again with the
/// output channels outermost ([`channels_outermost`]) in every defaulted multiply-accumulate
/// step whose input and output the first plan keeps apart; the second is kept if its arena
/// is no larger. Also returns the steps it turned (by name; none if the first is kept).
/// That order leaves the weights and the requantization parameters in place while the
/// pixels run, but reads every
/// pixel of the input before its last channel block is written, so where the default lets
/// the output overwrite the input as it goes it would need them apart. Measured side by side
/// in one run (instructions, arenas unchanged): Cortex-M4 kws 4,080,440 to 4,049,200, vww
/// 14,938,720 to 14,712,520, resnet8 16,030,040 to 15,805,680; M7, M33, M3, M0+ 0 to 1.5 %
/// fewer. Not on RISC-V (the caller's choice): with its Winograd pairs, whose scratch block
/// would be refilled for every channel block, resnet8 took 54 % more, and without them on
/// the other steps the change is within 0.1 % either way. A tuned build's steps without a
/// record take it too, so that applying records never undoes it where they say nothing.
fn channels_outer_where_apart(
    program: Program,
    target: &Target,
    explicit: Chooser,
    tiled: &dyn Fn(usize, &Reduction) -> Option<Schedule>,
) -> Result<(Planned, Vec<String>), CompileError> {
    let names: Vec<String> = program.steps.iter().map(|s| s.name.clone()).collect();
    let lowered = program.clone();
    let default = |i: usize, r: &Reduction, s: &Space| explicit(i, r, s).or_else(|| tiled(i, r));
    let first = schedule_and_plan(program, target, &default)?;
    let (scheduled, _, plan) = &first;
    let apart: std::collections::HashSet<&str> = scheduled
        .steps
        .iter()
        .zip(&plan.shared)
        .filter(|(s, shared)| s.reduction.is_some() && shared.is_none())
        .map(|(s, _)| s.name.as_str())
        .collect();
    // Only a defaulted step can change (a candidate's standalone build has none).
    let changes = lowered.steps.iter().enumerate().any(|(i, s)| {
        let defaulted = |r: &Reduction| explicit(i, r, &Space::of(r)).is_none();
        apart.contains(s.name.as_str()) && s.reduction.as_ref().is_some_and(defaulted)
    });
    if !changes {
        return Ok((first, Vec::new()));
    }
    let turned: RefCell<Vec<String>> = RefCell::default();
    let outer = |i: usize, r: &Reduction, space: &Space| {
        if let Some(s) = explicit(i, r, space) {
            return Some(s);
        }
        let s = tiled(i, r)?;
        if !apart.contains(names[i].as_str()) {
            return Some(s);
        }
        match channels_outermost(r, &s) {
            Some(outer) => {
                turned.borrow_mut().push(names[i].clone());
                Some(outer)
            }
            None => Some(s),
        }
    };
    let second = schedule_and_plan(lowered, target, &outer)?;
    let mut turned = turned.into_inner();
    turned.sort_unstable();
    turned.dedup();
    Ok(match second.2.arena_bytes <= first.2.arena_bytes {
        true => (second, turned),
        false => (first, Vec::new()),
    })
}

/// How many of `nest`'s loops, from the outermost, are serial loops outside its reduction.
fn outer_serial_loops(r: &Reduction, nest: &minnow_ir::loops::reduction::LoopNest) -> usize {
    nest.loops
        .iter()
        .position(|l| r.axes[l.axis].reduce || l.kind != minnow_ir::loops::ForKind::Serial)
        .unwrap_or(nest.loops.len())
}

/// `schedule` with the serial loops outside its reduction reordered so that those over the
/// output channels come first; `None` if that changes nothing, the schedule does not apply,
/// or its nest runs Winograd pairs.
pub fn channels_outermost(r: &Reduction, schedule: &Schedule) -> Option<Schedule> {
    let mut nest = schedule.apply(r).ok()?;
    if nest.winograd {
        return None;
    }
    let lead = outer_serial_loops(r, &nest);
    let (mut order, pixels): (Vec<_>, Vec<_>) = nest.loops[..lead]
        .iter()
        .cloned()
        .partition(|l| r.channel.coefficient(l.axis) != 0 && l.extent > 1);
    order.extend(pixels);
    if order == nest.loops[..lead] {
        return None;
    }
    nest.loops.splice(..lead, order);
    Some(Schedule::of_nest(r, &nest))
}

/// Whether `schedule`'s loops outside its reduction (of more than one iteration, serial or
/// unrolled) run the pixels in the output's order, rows before columns, and all of them
/// outside the output channels: the order in which an op can write its output over its
/// input as it goes, as the default's does. `false` if it does not apply.
pub fn pixels_in_order_outside_channels(r: &Reduction, schedule: &Schedule) -> bool {
    let Ok(nest) = schedule.apply(r) else {
        return false;
    };
    let lead = nest
        .loops
        .iter()
        .position(|l| r.axes[l.axis].reduce)
        .unwrap_or(nest.loops.len());
    let real = nest.loops[..lead].iter().filter(|l| l.extent > 1);
    // (is a channel loop, axis): pixels first, by axis; then channels.
    let keys: Vec<(bool, usize)> = real
        .map(|l| (r.channel.coefficient(l.axis) != 0, l.axis))
        .collect();
    keys.windows(2).all(|w| match (w[0], w[1]) {
        ((false, a), (false, b)) => a < b,
        ((true, _), (false, _)) => false,
        _ => true,
    })
}

/// The target's default schedule of `r`: the nest [`minnow_passes::loops::LoopTiler`] extracts by the target's
/// analytic cost, with the weights widened where the graph rewriter chose
/// [`WeightLayout::Wide`] for them and `private` (a constant only this op reads), and on
/// cores without SIMD Winograd pairs where `winograd`, see
/// [`minnow_schedules::winograd_allowed`]). `None` where the tiler finds no nest (the
/// space's default applies then).
///
/// Targets whose code generator has 128-bit SIMD (the host as the JIT compiles for it,
/// [`Target::for_jit`]) take [`Space::default_for`]'s block of eight channels by up to five
/// pixels instead, widening private weights wherever the block takes SIMD pairs (the host's
/// memory is not a microcontroller's flash): the tiler's cost model counts a
/// microcontroller's scalar and DSP instructions, not the `i32x4` lanes the JIT runs such a
/// block's channels in (measured in one run, kws on the JIT: 1.07 ms with the tiler's nests,
/// 0.50 ms with the block; the same block built by `cc -O2` is slower than the tiler's, so C
/// targets keep the tiler).
pub fn default_schedule(
    r: &Reduction,
    target: &Target,
    private: bool,
    winograd: bool,
    tilings: &Tilings,
) -> Option<Schedule> {
    if target.features.simd128 {
        let space = Space::of(r);
        let knobs = space.default_for(&target.features);
        let mut schedule = space.schedule(&knobs);
        // Weights stored as 16-bit pairs: a vector of four channels' pairs is one load.
        if knobs.pairs && private {
            schedule.steps.push(Primitive::WidenWeights);
        }
        // Padded ops: the interior of the image tests no guard and reads no input offset.
        if !r.guards.is_empty() {
            schedule.steps.push(Primitive::PartitionBorders);
        }
        return Some(schedule);
    }
    let mut machine = crate::cost::machine(target);
    machine.winograd &= winograd;
    let layout = match private {
        true => r.weight_layout,
        false => WeightLayout::Bytes,
    };
    let tiling = tilings.nest(r, machine, layout)?;
    Some(Schedule::of_nest(r, &tiling.nest))
}

/// Adds a comment after the first line of the `.c` naming the compiler and flags minnow's
/// figures for `target` come from: the schedules were chosen for that code generator.
fn note_build_flags(source: &mut CSource, target: &Target) {
    let line = format!(
        "/* Scheduled for {}; minnow measures it built with: {} */\n",
        target.name,
        crate::measure::command_line(target)
    );
    let at = source.source.find('\n').map_or(0, |i| i + 1);
    source.source.insert_str(at, &line);
}

/// `graph` rewritten for `target`: its structure first with every intermediate byte charged,
/// then with copies of the model inputs free within the arena that first form needs (a first
/// layer's padded input); the second form is kept if its planned arena is no larger, since the
/// cost sees one op at a time and not what else is alive. Then the weight layouts of the form
/// kept are chosen, with flash priced higher where the widened weights would not leave the
/// model in [`FLASH_SHARE`] of the target's flash ([`fitting_flash`]).
fn rewrite_graph(
    graph: &Graph,
    target: &Target,
    tilings: &Tilings,
) -> Result<(Graph, RewriteReport), CompileError> {
    let rewriter = GraphRewriter::default();
    let strict = ScheduleCost::new(target, tilings);
    let (tight, tight_report) = rewriter.structure(graph, &strict)?;
    let arena = planned_arena(&tight)?;
    let inputs = graph.inputs.iter().map(|t| graph.tensor(*t).ty.clone());
    let within = ScheduleCost {
        input_copies: Some(InputCopies {
            budget: arena,
            inputs: inputs.collect(),
        }),
        ..ScheduleCost::new(target, tilings)
    };
    let (spent, spent_report) = rewriter.structure(graph, &within)?;
    let (kept, report, cost) = match planned_arena(&spent)? <= arena {
        true => (spent, spent_report, within),
        false => (tight, tight_report, strict),
    };
    let (laid_out, layout) = fitting_flash(&kept, target, &cost)?;
    Ok((laid_out, report.then(layout)))
}

/// The share of a target's flash the model's constants may take with widened weights: the
/// rest is for the code and the application.
pub const FLASH_SHARE: f64 = 0.75;

/// The weight layouts of `graph` chosen by `cost`, with flash priced four times higher each
/// time the constants of the result exceed [`FLASH_SHARE`] of `target`'s flash while some op's
/// weights are widened, until none is (a model too large in bytes is left to the linker to
/// refuse).
fn fitting_flash(
    graph: &Graph,
    target: &Target,
    cost: &ScheduleCost,
) -> Result<(Graph, RewriteReport), CompileError> {
    let budget = FLASH_SHARE * target.flash_bytes as f64;
    let mut price = cost.flash_byte;
    loop {
        let priced = ScheduleCost {
            flash_byte: price,
            input_copies: cost.input_copies.clone(),
            ..ScheduleCost::new(target, cost.tilings)
        };
        let (rewritten, report) = GraphRewriter::default().layout(graph, &priced)?;
        let widened = rewritten
            .execution_order()
            .into_iter()
            .any(|op| rewritten.node(op).op.weight_layout() == WeightLayout::Wide);
        if !widened || target.flash_bytes == 0 || constant_flash(&rewritten) as f64 <= budget {
            return Ok((rewritten, report));
        }
        price = if price >= 1e6 {
            f64::INFINITY
        } else {
            price * 4.0
        };
    }
}

/// The flash the constants of `graph` take, the weights of widened ops counted twice.
pub fn constant_flash(graph: &Graph) -> usize {
    let mut bytes: usize = graph
        .tensors()
        .filter(|(_, t)| t.kind == TensorKind::Constant)
        .map(|(_, t)| t.ty.bytes())
        .sum();
    for op in graph.execution_order() {
        let node = graph.node(op);
        if node.op.weight_layout() == WeightLayout::Wide {
            let weights = node.inputs.get(1).copied().flatten();
            bytes += weights.map_or(0, |w| graph.tensor(w).ty.bytes());
        }
    }
    bytes
}

/// The arena `graph` needs as lowered, its steps ordered for the smallest.
fn planned_arena(graph: &Graph) -> Result<usize, CompileError> {
    Ok(minnow_passes::patch::planned_arena(graph)?)
}

/// What the tiling of `r` depends on: its axes, operand layouts and offsets, padding guards,
/// accumulator type and whether an ADD is fused; not its buffers or requantization values.
pub fn workload(r: &Reduction) -> String {
    format!(
        "{:?}",
        (
            &r.axes,
            (&r.input.index, r.input.offset, r.input.elem),
            (&r.weight.index, r.weight.offset, r.weight.elem),
            &r.guards,
            r.acc,
            r.residual.is_some()
        )
    )
}
