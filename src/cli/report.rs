//! `minnow report DB [-o FILE] [--model MODEL --target T]`: the HTML report of a tuning
//! database.

use super::pipeline;
use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;

/// Arguments of `minnow report`.
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The tuning database (a SQLite file written by `minnow tune`).
    db: PathBuf,
    /// The HTML file to write.
    #[arg(short = 'o', long = "output", default_value = "minnow-report.html")]
    output: PathBuf,
    /// A tuned model, to draw its arena timeline with the tuned schedules (needs --target).
    #[arg(long)]
    model: Option<PathBuf>,
    /// The model's target.
    #[arg(long)]
    target: Option<String>,
}

/// Runs `minnow report`.
pub fn report(args: &ReportArgs) -> Result<()> {
    let db = pipeline::open_existing_db(&args.db)?;
    let loaded = match (&args.model, &args.target) {
        (Some(model), Some(target)) => {
            let target = minnow_targets::find(target).map_err(anyhow::Error::msg)?;
            let graph = super::load_model(model)?;
            Some((graph, pipeline::model_name(model, None), target))
        }
        (None, None) => None,
        _ => bail!("--model and --target go together: the arena timeline needs both"),
    };
    let model = loaded.as_ref().map(|(g, n, t)| (g, n.as_str(), t));
    super::tuned::write_report(&args.output, db.as_ref(), model, None)?;
    super::emit(&format!("wrote {}\n", args.output.display()))
}
