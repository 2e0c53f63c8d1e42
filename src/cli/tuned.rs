//! What `tune` and `report` share: the whole model built with the default and the tuned
//! schedules and measured side by side, and the HTML report.

use anyhow::{Context, Result};
use minnow::Patching;
use minnow_autotune::apply::compile_tuned;
use minnow_autotune::compile::{compile, Compiled, Schedules};
use minnow_autotune::db::TuningDb;
use minnow_autotune::measure::{Build, Measurer};
use minnow_autotune::report::{self, ArenaBlock, ArenaTimeline};
use minnow_ir::interp::Interpreter;
use minnow_ir::Graph;
use minnow_targets::Target;
use serde_json::json;
use std::path::Path;

/// The whole model's figure with the default and with the tuned schedules, on one input.
#[derive(Clone, Debug)]
pub struct WholeModel {
    /// The runner.
    pub runner: &'static str,
    /// The figures' unit.
    pub unit: &'static str,
    /// Default schedules.
    pub default: Option<f64>,
    /// Tuned schedules.
    pub tuned: Option<f64>,
    /// The planned arena bytes with the default and with the tuned schedules: a tuned loop
    /// order may need an op's input and output apart where the default overlapped them.
    pub arena: (usize, usize),
    /// The model's flash bytes (`.text` + `.rodata` + `.data`) with either.
    pub flash: (u64, u64),
    /// Whether the tuned build's outputs equal the reference interpreter's.
    pub bit_exact: bool,
    /// Which layers had records.
    pub note: String,
}

impl WholeModel {
    /// One line: both figures, their ratio, arena and flash, and the bit-exactness check.
    pub fn summary(&self) -> String {
        let fig = |f: Option<f64>| f.map_or("-".to_string(), |f| format!("{f:.0}"));
        let ratio = match (self.default, self.tuned) {
            (Some(d), Some(t)) if d > 0.0 => format!(" ({:.3} of the default)", t / d),
            _ => String::new(),
        };
        let exact = if self.bit_exact {
            "outputs bit-exact with the reference interpreter"
        } else {
            "OUTPUTS DIFFER FROM THE REFERENCE INTERPRETER"
        };
        format!(
            "default {}, tuned {}{ratio}; arena {} -> {} bytes, flash {} -> {} bytes; {exact}; {}",
            fig(self.default),
            fig(self.tuned),
            self.arena.0,
            self.arena.1,
            self.flash.0,
            self.flash.1,
            self.note
        )
    }

    /// The figures as JSON.
    pub fn json(&self) -> serde_json::Value {
        json!({
            "default": self.default,
            "tuned": self.tuned,
            "unit": self.unit,
            "arena_bytes": {"default": self.arena.0, "tuned": self.arena.1},
            "flash_bytes": {"default": self.flash.0, "tuned": self.flash.1},
            "bit_exact": self.bit_exact,
            "note": self.note,
        })
    }
}

/// Builds `graph` with the default and with the tuned schedules, measures both on one
/// pseudo-random input, and checks the tuned outputs against the reference interpreter. The
/// tuned build keeps its arena within `max_arena` bytes where given ([`compile_tuned`]).
pub fn whole_model(
    graph: &Graph,
    name: &str,
    target: &Target,
    patching: Patching,
    db: &dyn TuningDb,
    measurer: &dyn Measurer,
    max_arena: Option<usize>,
) -> Result<WholeModel> {
    let inputs: Vec<Vec<u8>> = graph
        .inputs
        .iter()
        .enumerate()
        .map(|(i, t)| super::bench::pseudo_random(graph.tensor(*t).ty.bytes(), 0x5eed + i as u64))
        .collect();
    let reference = Interpreter::new(graph)?
        .run(&inputs)
        .context("the reference interpreter cannot run the model")?;
    let default = compile(graph, name, target, patching, Schedules::Default)?;
    let (tuned, applied) = compile_tuned(graph, name, target, patching, db, max_arena)?;
    let vectors = vec![inputs; measurer.repeats().max(1)];
    let run = |c: &Compiled| {
        let build = Build {
            target,
            source: &c.source,
            vectors: &vectors,
            per_layer: false,
        };
        measurer
            .measure(&build)
            .with_context(|| format!("cannot run {name} on the {} runner", measurer.runner()))
    };
    let (d, t) = (run(&default)?, run(&tuned)?);
    let flash = |s: &minnow_autotune::measure::Sections| s.text + s.rodata + s.data;
    Ok(WholeModel {
        runner: measurer.runner(),
        unit: measurer.unit(),
        default: d.figure(),
        tuned: t.figure(),
        arena: (default.plan.arena_bytes, tuned.plan.arena_bytes),
        flash: (flash(&d.sections), flash(&t.sections)),
        bit_exact: t.outputs.iter().all(|o| *o == reference),
        note: applied.note(),
    })
}

/// Writes the report of every run in `db` (the model's arena timeline with its tuned
/// schedules within `max_arena`, when the model is given) to `path`.
pub fn write_report(
    path: &Path,
    db: &dyn TuningDb,
    model: Option<(&Graph, &str, &Target)>,
    max_arena: Option<usize>,
) -> Result<()> {
    let runs = db.runs()?;
    let curves = runs
        .iter()
        .map(|r| report::run_curves(db, r))
        .collect::<Result<Vec<_>, _>>()?;
    let mut arenas = Vec::new();
    if let Some((graph, name, target)) = model {
        let (tuned, _) = compile_tuned(graph, name, target, Patching::Off, db, max_arena)?;
        arenas.push(timeline(
            &tuned,
            &format!("{name} for {}, tuned", target.name),
        ));
    }
    let title = match model {
        Some((_, name, target)) => format!("minnow tuning report: {name} on {}", target.name),
        None => "minnow tuning report".to_string(),
    };
    let page = report::html(&title, &curves, &arenas);
    std::fs::write(path, page)
        .with_context(|| format!("cannot write the report {}", path.display()))
}

/// The arena blocks of a build: each planned tensor over the steps it is alive.
fn timeline(c: &Compiled, label: &str) -> ArenaTimeline {
    let program = &c.program;
    let plan = &c.plan;
    let blocks = program
        .slots
        .iter()
        .enumerate()
        .filter_map(|(i, slot)| {
            let offset = plan.offsets.get(i).copied().flatten()?;
            let alive: Vec<usize> = plan
                .timeline
                .iter()
                .enumerate()
                .filter(|(_, l)| l.tensors.contains(&slot.name))
                .map(|(s, _)| s)
                .collect();
            Some(ArenaBlock {
                tensor: slot.name.clone(),
                steps: (*alive.first()?, *alive.last()?),
                offset,
                bytes: slot.bytes(),
            })
        })
        .collect();
    ArenaTimeline {
        label: label.to_string(),
        arena_bytes: plan.arena_bytes,
        steps: plan.timeline.iter().map(|l| l.step.clone()).collect(),
        blocks,
    }
}
