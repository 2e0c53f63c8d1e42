//! [`Task`]: one tunable workload of a model — a multiply-accumulate op with its shapes,
//! operand layouts, dtypes and target — and the standalone program a search measures it in.
//!
//! Steps whose workloads are identical (a model's repeated blocks, or the same layer shape in
//! two models) share one task and one [`WorkloadKey`], so they share tuning records.

use crate::compile::{
    channels_outermost, default_schedule, schedule_lowered, workload, CompileError, Lowered,
    Scheduled, Schedules,
};
use crate::tilings::Tilings;
use minnow_ir::loops::interp::ProgramInterp;
use minnow_ir::loops::reduction::{Epilogue, PerChannel, Reduction};
use minnow_ir::loops::{
    Access, BufferKind, Expr, FuncBuilder, Program, Slot, SlotId, SlotKind, Step,
};
use minnow_schedules::{weight_is_private, winograd_allowed, Schedule};
use minnow_targets::Target;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The canonical identity of a workload on a target: a hash of its description.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct WorkloadKey(pub String);

impl std::fmt::Display for WorkloadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One tunable workload of a model.
#[derive(Clone, Debug)]
pub struct Task {
    /// Its key (workload and target).
    pub key: WorkloadKey,
    /// What the key hashes: axes, operand layouts, guards, accumulator, epilogue form,
    /// whether the weights may be laid out anew, and the target.
    pub workload: String,
    /// The first step's layer name (for reports).
    pub layer: String,
    /// Its TFLite op name.
    pub op: String,
    /// The model's steps (indices into [`Program::steps`]) that are this workload.
    pub steps: Vec<usize>,
    /// Multiply-accumulates of one step.
    pub macs: u64,
    /// The compute definition the candidates schedule.
    pub reduction: Reduction,
    /// Whether the weights are a constant only this op reads (so a schedule may widen them).
    pub widenable: bool,
    /// Whether every step of the workload may run as Winograd's inner product on a core
    /// without SIMD ([`minnow_schedules::winograd_allowed`]: the weights may differ).
    pub winograd: bool,
    /// The first step as a program of its own ([`standalone`]), with the real weights.
    /// Candidates are built and measured in it.
    pub program: Program,
    /// What the first step reads in the model (each input of `program`) when the model runs
    /// on a fixed pseudo-random input: realistic data to measure on (the clamps of a
    /// requantization branch on some cores, so the figure depends a little on the values).
    pub activations: Vec<Vec<u8>>,
    /// Whether the model's untuned build runs the first step with its output channels
    /// outermost ([`crate::compile::channels_outermost`]: its input and output are apart in
    /// the plan anyway); then that is the task's default ([`Task::default_schedule`]).
    pub channels_outer: bool,
    /// Whether every candidate must keep the default's in-place loop order
    /// ([`crate::compile::pixels_in_order_outside_channels`]): a step of the task writes its
    /// output over its input in the untuned build, and with the two apart the plan would need
    /// more than the arena budget ([`crate::placement`]).
    pub keep_in_place: bool,
}

impl Task {
    /// The schedule the model's untuned build gives the first step: the tiler's nest
    /// ([`crate::compile::default_schedule`]), its output channels outermost where
    /// [`Task::channels_outer`] says so; `None` where the tiler finds no nest.
    pub fn default_schedule(&self, target: &Target, tilings: &Tilings) -> Option<Schedule> {
        let r = &self.reduction;
        let tiled = default_schedule(r, target, self.widenable, self.winograd, tilings)?;
        match self.channels_outer {
            true => Some(channels_outermost(r, &tiled).unwrap_or(tiled)),
            false => Some(tiled),
        }
    }
}

/// The key and description of the workload of `r` on `target`.
pub fn workload_key(r: &Reduction, widenable: bool, target: &Target) -> (WorkloadKey, String) {
    let epilogue = match &r.epilogue {
        Epilogue::Quantized {
            multiplier, elem, ..
        } => {
            let per_channel = matches!(multiplier, PerChannel::Table(_));
            format!("quantized {elem:?} per_channel={per_channel}")
        }
        Epilogue::Float { .. } => "float".to_string(),
    };
    let description = format!(
        "{} epilogue={epilogue} widenable={widenable} target={}",
        workload(r),
        target.name
    );
    let digest = Sha256::digest(description.as_bytes());
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    (WorkloadKey(hex), description)
}

/// The tasks of a lowered (unscheduled) model for `target`, in the order of their first
/// step, each told how the model's build runs it ([`crate::placement::mark`]) under the
/// arena budget `max_arena` where given. Runs the program once in the loop-IR interpreter
/// for the tasks' activations.
pub fn extract_tasks(
    lowered: &Lowered,
    target: &Target,
    max_arena: Option<usize>,
) -> Result<Vec<Task>, CompileError> {
    let untuned = schedule_lowered(lowered.clone(), target, Schedules::Default)?;
    extract_tasks_of(lowered, &untuned, target, max_arena)
}

/// [`extract_tasks`] for a caller that has already built the model untuned (`untuned`, from
/// [`schedule_lowered`] with [`Schedules::Default`]), as `tune` does to check its budget.
pub fn extract_tasks_of(
    lowered: &Lowered,
    untuned: &Scheduled,
    target: &Target,
    max_arena: Option<usize>,
) -> Result<Vec<Task>, CompileError> {
    let mut tasks = group_tasks(&lowered.program, target);
    crate::placement::mark(&mut tasks, lowered, untuned, target, max_arena)?;
    Ok(tasks)
}

/// The tasks of `program` for `target`, their defaults the tiler's nests.
fn group_tasks(program: &Program, target: &Target) -> Vec<Task> {
    let mut by_key: BTreeMap<WorkloadKey, usize> = BTreeMap::new();
    let mut groups: Vec<(WorkloadKey, String, bool, Vec<usize>)> = Vec::new();
    for (index, step) in program.steps.iter().enumerate() {
        let Some(r) = &step.reduction else { continue };
        let widenable = weight_is_private(program, index);
        let (key, description) = workload_key(r, widenable, target);
        match by_key.get(&key) {
            Some(g) => groups[*g].3.push(index),
            None => {
                by_key.insert(key.clone(), groups.len());
                groups.push((key, description, widenable, vec![index]));
            }
        }
    }
    let values = model_values(program);
    groups
        .into_iter()
        .map(|(key, workload, widenable, steps)| {
            let first = &program.steps[steps[0]];
            let (standalone, sources) = standalone(program, &steps[..steps.len().min(2)]);
            let activations = sources
                .iter()
                .map(|s| match &values {
                    Some(v) => v[s.0].clone(),
                    None => vec![0; program.slot(*s).bytes()],
                })
                .collect();
            let reduction = first.reduction.clone().expect("a reduction step");
            let winograd = steps
                .iter()
                .all(|i| winograd_allowed(program, *i, &reduction));
            Task {
                key,
                workload,
                layer: first.name.clone(),
                op: first.op.clone(),
                macs: first.macs,
                reduction,
                widenable,
                winograd,
                steps,
                program: standalone,
                activations,
                channels_outer: false,
                keep_in_place: false,
            }
        })
        .collect()
}

/// Steps `indices` of `program` (of one workload) as a program of their own, in the context
/// they have in the model: the tensors they read and write live in the arena (as a model's
/// intermediate tensors do, which decides how the compiler addresses them), copied in from
/// the program's inputs before them and out to its outputs after them; constants and state
/// stay what they are; a step may write over the operand it writes over in the model (its
/// `in_place` pairing), so the planner places it as the model's does, which decides whether
/// the compiler may take its input as `restrict`. Every step reads the first one's inputs.
/// Two steps of one workload compile to identical functions, which the compiler folds into
/// one called twice, as it does in the model; one step alone gets its constants propagated
/// into it. The first multiply-accumulate step is the task ([`task_step`]). Also returns,
/// for each input of the new program, the slot of `program` it stands for.
pub fn standalone(program: &Program, indices: &[usize]) -> (Program, Vec<SlotId>) {
    let mut p = Program {
        name: "minnow_task".into(),
        slots: Vec::new(),
        funcs: Vec::new(),
        steps: Vec::new(),
        inputs: Vec::new(),
        outputs: Vec::new(),
    };
    let (mut copies_in, mut copies_out) = (Vec::new(), Vec::new());
    let mut sources = Vec::new();
    let mut steps = Vec::new();
    for (k, index) in indices.iter().enumerate() {
        let step = &program.steps[*index];
        let func = &program.funcs[step.func];
        let mut renamed: BTreeMap<SlotId, SlotId> = BTreeMap::new();
        let mut reads = 0;
        let mut args = Vec::new();
        for ((_, param), arg) in func.params().zip(&step.args) {
            if let Some(new) = renamed.get(arg) {
                args.push(*new);
                continue;
            }
            let old = &program.slots[arg.0];
            let writes = matches!(
                param.kind,
                BufferKind::Param {
                    access: Access::Write | Access::ReadWrite,
                    ..
                }
            );
            let id = SlotId(p.slots.len());
            let kind = match &old.kind {
                // A state the task writes (an SVDF's projection into its memory) is its
                // result: copied out like an activation, so candidates are checked on it.
                SlotKind::State(_) if writes => {
                    copies_out.push(id);
                    old.kind.clone()
                }
                SlotKind::Constant(_) | SlotKind::State(_) => old.kind.clone(),
                _ if writes => {
                    copies_out.push(id);
                    SlotKind::Activation
                }
                _ if k > 0 => {
                    // The later steps read what the first reads.
                    let shared = copies_in[reads];
                    reads += 1;
                    renamed.insert(*arg, shared);
                    args.push(shared);
                    continue;
                }
                _ => {
                    copies_in.push(id);
                    sources.push(*arg);
                    SlotKind::Activation
                }
            };
            p.slots.push(Slot {
                kind,
                ..old.clone()
            });
            renamed.insert(*arg, id);
            args.push(id);
        }
        steps.push((func.clone(), step.clone(), args));
    }
    for inner in copies_in.clone() {
        let outer = add_end(&mut p, inner, false);
        add_copy(&mut p, outer, inner);
    }
    for (func, step, args) in steps {
        p.funcs.push(func);
        p.steps.push(Step {
            func: p.funcs.len() - 1,
            args,
            ..step
        });
    }
    for inner in copies_out {
        let outer = add_end(&mut p, inner, true);
        add_copy(&mut p, inner, outer);
    }
    (p, sources)
}

/// Every slot's bytes after the program runs once on fixed pseudo-random inputs in the
/// loop-IR interpreter; `None` if it cannot run.
fn model_values(program: &Program) -> Option<Vec<Vec<u8>>> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let inputs: Vec<Vec<u8>> = program
        .inputs
        .iter()
        .map(|s| {
            (0..program.slot(*s).bytes())
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    (state >> 56) as u8
                })
                .collect()
        })
        .collect();
    let mut interp = ProgramInterp::new(program).ok()?;
    interp.run(&inputs).ok()?;
    Some(
        (0..program.slots.len())
            .map(|i| interp.slot_bytes(SlotId(i)))
            .collect(),
    )
}

/// The index of the multiply-accumulate step in a task's program.
pub fn task_step(program: &Program) -> usize {
    program
        .steps
        .iter()
        .position(|s| s.reduction.is_some())
        .unwrap_or(0)
}

/// A model input (or output) slot shaped like `like`.
fn add_end(p: &mut Program, like: SlotId, output: bool) -> SlotId {
    let id = SlotId(p.slots.len());
    let s = p.slots[like.0].clone();
    let kind = if output {
        p.outputs.push(id);
        SlotKind::Output(p.outputs.len() - 1)
    } else {
        p.inputs.push(id);
        SlotKind::Input(p.inputs.len() - 1)
    };
    p.slots.push(Slot {
        name: format!("{}_{}", s.name, if output { "out" } else { "in" }),
        kind,
        ..s
    });
    id
}

/// Appends a step copying slot `from` into slot `to` (same type and length).
fn add_copy(p: &mut Program, from: SlotId, to: SlotId) {
    let s = p.slot(from).clone();
    let mut f = FuncBuilder::new(format!("minnow_task_copy{}", p.funcs.len()));
    let src = f.param("src", s.elem, s.len, Access::Read);
    let dst = f.param("dst", s.elem, s.len, Access::Write);
    f.for_loop("i", s.len, |f, i| {
        let value = Expr::Load {
            buf: src,
            index: Box::new(i.clone()),
        };
        f.store(dst, i, value);
    });
    p.funcs.push(f.finish());
    p.steps.push(Step {
        name: format!("copy {}", s.name),
        op: "COPY".into(),
        func: p.funcs.len() - 1,
        args: vec![from, to],
        in_place: None,
        macs: 0,
        reduction: None,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shared model `name` lowered for Cortex-M4, with the target.
    fn lowered(name: &str) -> (crate::compile::Lowered, Target) {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/models");
        let bytes = std::fs::read(format!("{dir}/{name}.tflite")).expect("shared models");
        let graph = minnow_ir::import::tflite::import(&bytes, name).unwrap();
        let target = minnow_targets::find("cortex-m4").unwrap();
        let patching = minnow_passes::patch::Patching::Off;
        let lowered = crate::compile::lower(&graph, name, &target, patching).unwrap();
        (lowered, target)
    }

    /// kws's four depthwise and four pointwise layers are two tasks; every step with a
    /// reduction is in exactly one task, and each standalone program verifies.
    #[test]
    fn kws_repeated_blocks_share_tasks() {
        let (lowered, target) = lowered("kws");
        let tasks = extract_tasks(&lowered, &target, None).unwrap();
        let counts: Vec<usize> = tasks.iter().map(|t| t.steps.len()).collect();
        assert_eq!(counts, vec![1, 4, 4, 1], "{tasks:#?}");
        for t in &tasks {
            t.program.verify().unwrap();
            let copies = t.steps.len().min(2);
            assert_eq!(
                (t.program.inputs.len(), t.program.outputs.len()),
                (1, copies)
            );
            assert_eq!(task_step(&t.program), 1);
        }
        let m7 = minnow_targets::find("cortex-m7").unwrap();
        let other = extract_tasks(&lowered, &m7, None).unwrap();
        assert_ne!(other[0].key, tasks[0].key, "the target is part of the key");
    }

    /// An SVDF's feature projection writes only its state: the task copies the state out, so
    /// its candidates are checked on what they compute.
    #[test]
    fn a_task_writing_state_has_it_as_its_output() {
        let (lowered, target) = lowered("keyword_scrambled");
        let tasks = extract_tasks(&lowered, &target, None).unwrap();
        let projections: Vec<&Task> = tasks
            .iter()
            .filter(|t| {
                t.program.steps[task_step(&t.program)]
                    .name
                    .ends_with("/projection")
            })
            .collect();
        assert!(!projections.is_empty(), "{tasks:#?}");
        for t in projections {
            t.program.verify().unwrap();
            let output = t.program.slot(t.program.outputs[0]);
            assert_eq!(output.elem, minnow_ir::loops::ScalarType::I16, "the state");
        }
    }
}
