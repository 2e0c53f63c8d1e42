//! `minnow inspect MODEL [--json] [--dump]`.

use anyhow::Result;
use clap::Args;
use minnow_ir::{Graph, TensorId};
use serde_json::{json, Value};
use std::path::PathBuf;

/// Arguments of `minnow inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// The model file (.tflite or .onnx).
    model: PathBuf,
    /// Print one JSON object: inputs, outputs, ops, macs, weight_bytes.
    #[arg(long)]
    json: bool,
    /// Print the graph IR in its stable text form.
    #[arg(long)]
    dump: bool,
}

/// Runs `minnow inspect`.
pub fn inspect(args: &InspectArgs) -> Result<()> {
    let graph = super::load_model(&args.model)?;
    let mut text = String::new();
    if args.dump {
        text += &graph.to_string();
    }
    if args.json {
        text += &serde_json::to_string_pretty(&summary(&graph))?;
        text.push('\n');
    } else if !args.dump {
        text += &report(&graph, &args.model);
    }
    super::emit(&text)
}

/// The human-readable summary.
fn report(graph: &Graph, path: &std::path::Path) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let io = |s: &mut String, label: &str, ids: &[TensorId]| {
        for t in ids.iter().map(|id| graph.tensor(*id)) {
            let (scale, zp) =
                t.ty.per_tensor()
                    .map_or(("-".into(), "-".into()), |(s, z)| {
                        (s.to_string(), z.to_string())
                    });
            let _ = writeln!(
                s,
                "{label:<8}{:<24} {:<8} {:?} scale={scale} zero_point={zp}",
                t.name,
                t.ty.dtype.name(),
                t.ty.shape
            );
        }
    };
    let _ = writeln!(s, "model   {}", path.display());
    io(&mut s, "input", &graph.inputs);
    io(&mut s, "output", &graph.outputs);
    for (op, n) in graph.op_counts() {
        let _ = writeln!(s, "op      {op:<24} x{n}");
    }
    let _ = writeln!(s, "macs    {}", graph.macs());
    let _ = writeln!(s, "weights {} bytes", graph.weight_bytes());
    s
}

/// The `--json` object of CLI.md.
fn summary(graph: &Graph) -> Value {
    let io = |ids: &[TensorId]| -> Vec<Value> {
        ids.iter()
            .map(|id| {
                let t = graph.tensor(*id);
                let (scale, zp) = t.ty.per_tensor().map_or((Value::Null, Value::Null), |(s, z)| (json!(s), json!(z)));
                json!({"name": t.name, "shape": t.ty.shape, "dtype": t.ty.dtype.name(), "scale": scale, "zero_point": zp})
            })
            .collect()
    };
    json!({
        "inputs": io(&graph.inputs),
        "outputs": io(&graph.outputs),
        "ops": graph.op_counts(),
        "macs": graph.macs(),
        "weight_bytes": graph.weight_bytes(),
    })
}
