//! [`Limits`]: when an e-graph pass stops rewriting, and how it says why it stopped.

use std::time::Duration;

/// When the rewriting stops, whatever comes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// E-nodes in the e-graph.
    pub nodes: usize,
    /// Rounds of rule application.
    pub iterations: usize,
    /// Wall time.
    pub time: Duration,
}

impl Default for Limits {
    /// Far above what the shared models' graphs need (they saturate in a few rounds and
    /// milliseconds), low enough that compiling stays well under two seconds on anything.
    fn default() -> Self {
        Limits {
            nodes: 20_000,
            iterations: 30,
            time: Duration::from_millis(500),
        }
    }
}

/// Why an egg runner stopped, as reports give it (`saturated`: no rule adds anything new).
pub(crate) fn stop_reason(reason: &Option<egg::StopReason>) -> String {
    match reason {
        Some(egg::StopReason::Saturated) => "saturated".into(),
        Some(egg::StopReason::IterationLimit(n)) => format!("iteration limit ({n})"),
        Some(egg::StopReason::NodeLimit(n)) => format!("node limit ({n})"),
        Some(egg::StopReason::TimeLimit(s)) => format!("time limit ({s:.3} s)"),
        Some(egg::StopReason::Other(s)) => s.clone(),
        None => "not run".into(),
    }
}
