//! The tuning report: one self-contained HTML page (plots as inline SVG drawn with plotters,
//! no scripts, no external files) with, per tuning run, the best figure so far against
//! trials for each layer and for the whole model, the default and tuned figure of each
//! layer, and the arena timeline of the tuned build.

use crate::db::{DbError, Run, Status, TuningDb};
use plotters::prelude::*;
use std::fmt::Write;

/// Best-so-far curves of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct RunCurves {
    /// What was tuned where (`kws.tflite on cortex-m4, qemu`): runs of one group overlay.
    pub group: String,
    /// The run's label (`model search, seed 0`).
    pub label: String,
    /// The figures' unit.
    pub unit: String,
    /// Per task: its layer, and the best valid figure after each of its trials.
    pub tasks: Vec<(String, Vec<Option<f64>>)>,
    /// The whole model (each task's best so far times its occurrences, summed) after each
    /// trial of the run; `None` until every task has a valid figure.
    pub model: Vec<Option<f64>>,
    /// Per task: layer, op, occurrences, default figure, best figure.
    pub layers: Vec<LayerFigures>,
}

/// A layer's default and tuned figures in one run.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerFigures {
    /// The layer.
    pub layer: String,
    /// Its op.
    pub op: String,
    /// Steps with its workload.
    pub occurrences: usize,
    /// The default schedule's figure.
    pub default: Option<f64>,
    /// The best figure found.
    pub tuned: Option<f64>,
}

/// The curves of `run` from its logged trials.
pub fn run_curves(db: &dyn TuningDb, run: &Run) -> Result<RunCurves, DbError> {
    let trials = db.run_trials(run.id.unwrap_or(-1))?;
    let n = run.tasks.len();
    let mut best: Vec<Option<f64>> = vec![None; n];
    let mut default: Vec<Option<f64>> = vec![None; n];
    let mut tasks: Vec<Vec<Option<f64>>> = vec![Vec::new(); n];
    let mut model = Vec::new();
    let mut unit = String::new();
    for (task, record) in trials {
        if task >= n {
            continue;
        }
        unit.clone_from(&record.unit);
        let figure = record.figure.filter(|_| record.status == Status::Ok);
        if record.origin == "default" {
            default[task] = figure;
        }
        if let Some(f) = figure {
            best[task] = Some(best[task].map_or(f, |b: f64| b.min(f)));
        }
        tasks[task].push(best[task]);
        let weighted = best
            .iter()
            .zip(&run.tasks)
            .map(|(b, t)| b.map(|b| b * t.occurrences as f64));
        model.push(weighted.sum::<Option<f64>>());
    }
    let layers = run
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| LayerFigures {
            layer: t.layer.clone(),
            op: t.op.clone(),
            occurrences: t.occurrences,
            default: default[i],
            tuned: best[i],
        })
        .collect();
    Ok(RunCurves {
        group: format!("{} on {}, {}", run.model, run.target, run.runner),
        label: format!(
            "run {}: {} on {}, {} search, seed {}, {} trials ({})",
            run.id.unwrap_or(0),
            run.model,
            run.target,
            run.strategy,
            run.seed,
            run.trials,
            run.runner
        ),
        unit,
        tasks: run
            .tasks
            .iter()
            .map(|t| t.layer.clone())
            .zip(tasks)
            .collect(),
        model,
        layers,
    })
}

/// A tensor's place in the arena over the steps it is alive.
#[derive(Clone, Debug, PartialEq)]
pub struct ArenaBlock {
    /// The tensor.
    pub tensor: String,
    /// First and last step (inclusive) it is alive.
    pub steps: (usize, usize),
    /// Byte offset and size.
    pub offset: usize,
    /// Bytes.
    pub bytes: usize,
}

/// The arena of a build, for the timeline plot.
#[derive(Clone, Debug, PartialEq)]
pub struct ArenaTimeline {
    /// What was built (`kws for cortex-m4, tuned`).
    pub label: String,
    /// Arena size.
    pub arena_bytes: usize,
    /// The steps' names.
    pub steps: Vec<String>,
    /// The blocks.
    pub blocks: Vec<ArenaBlock>,
}

/// The page: the runs' curves (several runs of one model overlay, such as a model-guided
/// and a random search) and the arena timelines.
pub fn html(title: &str, runs: &[RunCurves], arenas: &[ArenaTimeline]) -> String {
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title>\n<style>{STYLE}</style></head><body>\n<h1>{t}</h1>\n",
        t = escape(title)
    );
    if runs.is_empty() {
        page += "<p>No tuning runs in this database yet: run <code>minnow tune</code>.</p>\n";
    }
    let mut groups: Vec<&str> = runs.iter().map(|r| r.group.as_str()).collect();
    groups.dedup();
    for group in groups {
        let runs: Vec<&RunCurves> = runs.iter().filter(|r| r.group == group).collect();
        page += &group_html(group, &runs);
    }
    for arena in arenas {
        let _ = writeln!(page, "<h2>Arena timeline: {}</h2>", escape(&arena.label));
        page += &arena_svg(arena);
    }
    page += "</body></html>\n";
    page
}

/// The plots and tables of the runs of one model on one target and runner.
fn group_html(group: &str, runs: &[&RunCurves]) -> String {
    let mut page = format!("<h2>{}</h2>\n", escape(group));
    page += "<h3>Whole model: best so far against trials</h3>\n";
    let series: Vec<(String, Vec<Option<f64>>)> = runs
        .iter()
        .map(|r| (r.label.clone(), r.model.clone()))
        .collect();
    page += &curve_svg("whole model", &runs[0].unit, &series);
    page += "<h3>Each layer: best so far against its trials</h3>\n<div class=\"grid\">\n";
    for (i, (layer, _)) in runs[0].tasks.iter().enumerate() {
        let series: Vec<(String, Vec<Option<f64>>)> = runs
            .iter()
            .filter_map(|r| Some((r.label.clone(), r.tasks.get(i)?.1.clone())))
            .collect();
        page += &curve_svg(&format!("{i}: {}", short(layer)), &runs[0].unit, &series);
    }
    page += "</div>\n";
    for run in runs {
        let _ = writeln!(
            page,
            "<h3>Default and tuned per layer: {}</h3>",
            escape(&run.label)
        );
        page += &layers_svg(run);
        page += &layers_table(run);
    }
    page
}

/// The end of a long layer name (TFLite names are paths).
fn short(layer: &str) -> String {
    let chars: Vec<char> = layer.chars().collect();
    chars[chars.len().saturating_sub(40)..].iter().collect()
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;max-width:1500px}\
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}\
td:first-child,th:first-child{text-align:left}.grid{display:flex;flex-wrap:wrap;gap:8px}";

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
];

/// Best-so-far curves, one per series, on one plot.
fn curve_svg(title: &str, unit: &str, series: &[(String, Vec<Option<f64>>)]) -> String {
    let points: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|(_, c)| {
            let valid = c
                .iter()
                .enumerate()
                .filter_map(|(i, v)| Some(((i + 1) as f64, (*v)?)));
            valid.collect()
        })
        .collect();
    let all = || points.iter().flatten();
    let (lo, hi) = all().fold((f64::INFINITY, 0.0f64), |(lo, hi), p| {
        (lo.min(p.1), hi.max(p.1))
    });
    let n = all().map(|p| p.0).fold(1.0f64, f64::max);
    if !lo.is_finite() {
        return format!("<p>{}: no valid figure.</p>\n", escape(title));
    }
    let pad = ((hi - lo) * 0.08).max(hi * 0.002).max(1.0);
    draw((480, 300), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(32)
            .y_label_area_size(72)
            .build_cartesian_2d(1.0..n.max(2.0), (lo - pad)..(hi + pad))?;
        chart
            .configure_mesh()
            .x_desc("trials")
            .y_desc(unit)
            .y_label_formatter(&|v| format!("{v:.0}"))
            .draw()?;
        for (i, ((label, _), pts)) in series.iter().zip(&points).enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?
                .label(short_label(label))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 11))
            .draw()?;
        Ok(())
    })
}

/// The part of a run label a legend has room for.
fn short_label(label: &str) -> String {
    let search = label.split(", ").find(|p| p.ends_with("search"));
    let seed = label.split(", ").find(|p| p.starts_with("seed"));
    match (search, seed) {
        (Some(a), Some(b)) => format!("{a}, {b}"),
        _ => label.to_string(),
    }
}

/// Default and tuned figure of each layer (times its occurrences), side by side.
fn layers_svg(run: &RunCurves) -> String {
    let bars: Vec<(f64, f64)> = run
        .layers
        .iter()
        .map(|l| {
            let k = l.occurrences as f64;
            (l.default.unwrap_or(0.0) * k, l.tuned.unwrap_or(0.0) * k)
        })
        .collect();
    let hi = bars.iter().map(|b| b.0.max(b.1)).fold(1.0, f64::max);
    let n = bars.len();
    draw((160 + 90 * n as u32, 320), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(8)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d(0.0..n as f64, 0.0..hi * 1.1)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_desc(format!("{} (all occurrences)", run.unit))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .draw()?;
        // Each layer named above its bars (by op and position; the table names it fully).
        chart.draw_series(run.layers.iter().zip(&bars).enumerate().map(|(i, (l, b))| {
            let top = b.0.max(b.1) + hi * 0.01;
            Text::new(
                format!("{i}: {}", l.op),
                (i as f64 + 0.05, top + hi * 0.03),
                ("sans-serif", 11),
            )
        }))?;
        let bar = |i: usize, side: f64, v: f64, c: RGBColor| {
            let x = i as f64 + 0.1 + side * 0.4;
            Rectangle::new([(x, 0.0), (x + 0.38, v)], c.filled())
        };
        chart
            .draw_series(
                bars.iter()
                    .enumerate()
                    .map(|(i, b)| bar(i, 0.0, b.0, PALETTE[0])),
            )?
            .label("default")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], PALETTE[0].filled()));
        chart
            .draw_series(
                bars.iter()
                    .enumerate()
                    .map(|(i, b)| bar(i, 1.0, b.1, PALETTE[2])),
            )?
            .label("tuned")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], PALETTE[2].filled()));
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })
}

/// The per-layer figures as a table.
fn layers_table(run: &RunCurves) -> String {
    let mut t = String::from(
        "<table><tr><th>#</th><th>layer</th><th>op</th><th>count</th><th>default</th><th>tuned</th><th>speedup</th></tr>\n",
    );
    let fig = |f: Option<f64>| f.map_or("failed".to_string(), |f| format!("{f:.0}"));
    for (i, l) in run.layers.iter().enumerate() {
        let speedup = match (l.default, l.tuned) {
            (Some(d), Some(b)) if b > 0.0 => format!("{:.3}x", d / b),
            _ => "-".into(),
        };
        let _ = writeln!(
            t,
            "<tr><td>{i}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{speedup}</td></tr>",
            escape(&l.layer),
            escape(&l.op),
            l.occurrences,
            fig(l.default),
            fig(l.tuned)
        );
    }
    t + "</table>\n"
}

/// Each arena tensor as a block: steps across, bytes up.
fn arena_svg(arena: &ArenaTimeline) -> String {
    let n = arena.steps.len().max(1);
    let hi = arena.arena_bytes.max(1) as f64;
    draw((900, 360), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(8)
            .x_label_area_size(32)
            .y_label_area_size(72)
            .build_cartesian_2d(0.0..n as f64, 0.0..hi)?;
        chart
            .configure_mesh()
            .x_desc("step")
            .y_desc("arena offset (bytes)")
            .y_label_formatter(&|v| format!("{v:.0}"))
            .draw()?;
        chart.draw_series(arena.blocks.iter().enumerate().map(|(i, b)| {
            let (x0, x1) = (b.steps.0 as f64, b.steps.1 as f64 + 1.0);
            let (y0, y1) = (b.offset as f64, (b.offset + b.bytes) as f64);
            let color = PALETTE[i % PALETTE.len()];
            Rectangle::new([(x0 + 0.05, y0), (x1 - 0.05, y1)], color.mix(0.6).filled())
        }))?;
        Ok(())
    })
}

/// Draws into an SVG string of `size`; a drawing error becomes a note in the page.
fn draw(
    size: (u32, u32),
    plot: impl FnOnce(
        &DrawingArea<SVGBackend, plotters::coord::Shift>,
    ) -> Result<(), Box<dyn std::error::Error>>,
) -> String {
    let mut svg = String::new();
    let result = {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        let drawn = root
            .fill(&WHITE)
            .map_err(|e| e.to_string())
            .and_then(|()| plot(&root).map_err(|e| e.to_string()));
        drawn.and_then(|()| root.present().map_err(|e| e.to_string()))
    };
    match result {
        Ok(()) => svg + "\n",
        Err(e) => format!("<p>plot failed: {}</p>\n", escape(&e)),
    }
}

/// `s` with HTML's special characters escaped.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
