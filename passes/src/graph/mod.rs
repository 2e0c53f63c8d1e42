//! Graph rewriting in an e-graph ([egg]): the model's ops become [`Term`]s, named
//! [`rules`] add equivalent forms (fusions, pad folding, reshape and transpose cancelling,
//! constant folding), and extraction keeps the cheapest form by the target's [`OpCost`].
//!
//! ```
//! use minnow_ir::{DType, Graph, Op, TensorType};
//! use minnow_passes::graph::{GraphRewriter, OpCost};
//!
//! /// Every op costs its output's size: fewer, smaller ops win.
//! struct Elements;
//! impl OpCost for Elements {
//!     fn cost(&self, _: &Op, _: &[Option<&TensorType>], output: &TensorType) -> f64 {
//!         output.elements() as f64
//!     }
//! }
//!
//! let mut g = Graph::new("chain");
//! let x = g.add_input("x", TensorType::new(vec![2, 6], DType::F32));
//! let y = g.add_tensor("y", TensorType::new(vec![3, 4], DType::F32));
//! let z = g.add_tensor("z", TensorType::new(vec![12], DType::F32));
//! g.add_op(Op::Reshape, vec![Some(x)], vec![y]).unwrap();
//! g.add_op(Op::Reshape, vec![Some(y)], vec![z]).unwrap();
//! g.outputs.push(z);
//! let (rewritten, report) = GraphRewriter::default().run(&g, &Elements).unwrap();
//! assert_eq!(rewritten.op_count(), 1);
//! assert_eq!(report.applied("reshape-chain"), 1);
//! ```

pub mod layout;
pub mod rules;
pub mod term;
#[cfg(test)]
mod tests;
pub mod weights;

use egg::{CostFunction, Extractor, Id, Language, RecExpr, Runner, SimpleScheduler};
use minnow_ir::{Error, Graph, Op, Tensor, TensorId, TensorKind, TensorType};
use serde::Serialize;
use std::collections::HashMap;
use std::time::Instant;

use crate::limits::stop_reason;
pub use crate::limits::Limits;
use term::{apply, LeafRef, ModelGraph, OpRef, Tensors, Term};

/// What an op costs on the target (instructions, or any figure where less is better).
pub trait OpCost {
    /// The cost of `op` on operands of types `inputs` (`None`: omitted) giving `output`.
    fn cost(&self, op: &Op, inputs: &[Option<&TensorType>], output: &TensorType) -> f64;
}

/// The graph rewriting pass.
#[derive(Clone, Debug, Default)]
pub struct GraphRewriter {
    /// When to stop.
    pub limits: Limits,
}

/// What one run did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RewriteReport {
    /// Why the runner stopped (`saturated`: no rule adds anything new).
    pub stop_reason: String,
    /// Rounds run.
    pub iterations: usize,
    /// E-nodes and e-classes at the end.
    pub nodes: usize,
    /// E-classes at the end.
    pub classes: usize,
    /// Times each rule added a new equivalence, by rule name.
    pub applied: Vec<(String, usize)>,
    /// Ops before and after.
    pub ops: (usize, usize),
    /// Extracted cost before (the graph as given) and after.
    pub cost: (f64, f64),
    /// Wall time of the whole pass, in microseconds.
    pub micros: u128,
}

impl RewriteReport {
    /// This phase's report followed by `later`'s: one report of both.
    pub fn then(mut self, later: RewriteReport) -> RewriteReport {
        if later.stop_reason != "saturated" {
            self.stop_reason = later.stop_reason;
        }
        self.iterations += later.iterations;
        self.nodes = self.nodes.max(later.nodes);
        self.classes = self.classes.max(later.classes);
        self.applied.extend(later.applied);
        self.ops.1 = later.ops.1;
        self.cost.1 = later.cost.1;
        self.micros += later.micros;
        self
    }

    /// How many times rule `name` applied.
    pub fn applied(&self, name: &str) -> usize {
        self.applied
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, c)| *c)
    }
}

impl GraphRewriter {
    /// Rewrites `graph` and extracts its cheapest form under `cost`, in two phases: the
    /// structural rules ([`rules::structural`]) saturate and the cheapest structure is
    /// extracted; then the weight layout of each of its ops is chosen ([`rules::layout`]) and
    /// extracted again. A layout does not change which structure is cheapest, and pricing one
    /// runs the target's tiler, which the second phase does for the extracted ops alone rather
    /// than for every form the first reaches. A graph the pass does not handle (an op with
    /// several outputs) comes back unchanged, with the reason as the report's stop reason.
    pub fn run(&self, graph: &Graph, cost: &dyn OpCost) -> Result<(Graph, RewriteReport), Error> {
        let (structured, report) = self.structure(graph, cost)?;
        let (laid_out, layout) = self.layout(&structured, cost)?;
        Ok((laid_out, report.then(layout)))
    }

    /// The first phase alone: the structural rules, for a caller that compares structures
    /// before it chooses layouts for the one it keeps.
    pub fn structure(
        &self,
        graph: &Graph,
        cost: &dyn OpCost,
    ) -> Result<(Graph, RewriteReport), Error> {
        self.phase(graph, cost, rules::structural())
    }

    /// The second phase alone: the weight layouts of `graph`'s ops.
    pub fn layout(
        &self,
        graph: &Graph,
        cost: &dyn OpCost,
    ) -> Result<(Graph, RewriteReport), Error> {
        self.phase(graph, cost, rules::layout())
    }

    /// One phase: `rules` saturate the e-graph of `graph` and the cheapest form is extracted.
    fn phase(
        &self,
        graph: &Graph,
        cost: &dyn OpCost,
        rules: Vec<std::sync::Arc<dyn rules::Rule>>,
    ) -> Result<(Graph, RewriteReport), Error> {
        let start = Instant::now();
        let (egraph, root, inputs) = match insert(graph) {
            Ok(inserted) => inserted,
            Err(reason) => return Ok((graph.clone(), unchanged(graph, reason))),
        };
        let before = Extractor::new(&egraph, Cost::new(&egraph, cost)).find_best_cost(root);
        let runner = Runner::default()
            .with_egraph(egraph)
            .with_node_limit(self.limits.nodes)
            .with_iter_limit(self.limits.iterations)
            .with_time_limit(self.limits.time)
            .with_scheduler(SimpleScheduler)
            .run(&rules.into_iter().map(rules::rewrite).collect::<Vec<_>>());
        let egraph = &runner.egraph;
        let root = egraph.find(root);
        let (after, expr) = Extractor::new(egraph, Cost::new(egraph, cost)).find_best(root);
        let rewritten = rebuild(graph, egraph, &expr, &inputs)?;
        rewritten.verify()?;
        let mut applied: Vec<(String, usize)> = Vec::new();
        for iteration in &runner.iterations {
            for (rule, n) in &iteration.applied {
                match applied.iter_mut().find(|(name, _)| name == rule.as_str()) {
                    Some((_, c)) => *c += n,
                    None => applied.push((rule.to_string(), *n)),
                }
            }
        }
        let report = RewriteReport {
            stop_reason: stop_reason(&runner.stop_reason),
            iterations: runner.iterations.len(),
            nodes: egraph.total_number_of_nodes(),
            classes: egraph.number_of_classes(),
            applied,
            ops: (graph.op_count(), rewritten.op_count()),
            cost: (before, after),
            micros: start.elapsed().as_micros(),
        };
        Ok((rewritten, report))
    }
}

fn unchanged(graph: &Graph, reason: String) -> RewriteReport {
    RewriteReport {
        stop_reason: reason,
        iterations: 0,
        nodes: 0,
        classes: 0,
        applied: Vec::new(),
        ops: (graph.op_count(), graph.op_count()),
        cost: (0.0, 0.0),
        micros: 0,
    }
}

/// The e-graph of `graph`, its root, and the leaf of each graph input.
fn insert(graph: &Graph) -> Result<(ModelGraph, Id, Vec<LeafRef>), String> {
    let mut g = ModelGraph::new(Tensors::default());
    let mut classes: HashMap<TensorId, Id> = HashMap::new();
    let leaf = |g: &mut ModelGraph, t: TensorId| {
        g.analysis.leaves.push(graph.tensor(t).clone());
        let r = LeafRef(g.analysis.leaves.len() as u32 - 1);
        (r, g.add(Term::Leaf(r)))
    };
    let mut inputs = Vec::new();
    for t in &graph.inputs {
        let (r, id) = leaf(&mut g, *t);
        inputs.push(r);
        classes.insert(*t, id);
    }
    for op in graph.execution_order() {
        let node = graph.node(op);
        let [output] = node.outputs[..] else {
            return Err(format!(
                "not rewritten: {} has {} outputs",
                node.op.name(),
                node.outputs.len()
            ));
        };
        let mut args = Vec::new();
        for t in &node.inputs {
            args.push(match t {
                None => g.add(Term::Absent),
                Some(t) => match classes.get(t) {
                    Some(id) => *id,
                    None => {
                        let id = leaf(&mut g, *t).1;
                        classes.insert(*t, id);
                        id
                    }
                },
            });
        }
        let out = Tensor {
            data: None,
            kind: TensorKind::Activation,
            ..graph.tensor(output).clone()
        };
        classes.insert(output, apply(&mut g, node.op.clone(), out, args));
    }
    let mut outputs = Vec::new();
    for t in &graph.outputs {
        match classes.get(t) {
            Some(id) => outputs.push(*id),
            None => outputs.push(leaf(&mut g, *t).1),
        }
    }
    let root = g.add(Term::Outputs(outputs));
    g.rebuild();
    Ok((g, root, inputs))
}

/// Extraction cost: the oracle's figure for each op (cached per op and operand classes), plus
/// its operands'.
struct Cost<'a> {
    g: &'a ModelGraph,
    oracle: &'a dyn OpCost,
    cache: HashMap<(OpRef, Vec<Id>), f64>,
}

impl<'a> Cost<'a> {
    fn new(g: &'a ModelGraph, oracle: &'a dyn OpCost) -> Self {
        Cost {
            g,
            oracle,
            cache: HashMap::new(),
        }
    }
}

impl CostFunction<Term> for Cost<'_> {
    type Cost = f64;

    fn cost<C: FnMut(Id) -> f64>(&mut self, enode: &Term, mut costs: C) -> f64 {
        let own = match enode {
            Term::Apply(op, args) => {
                let key = (*op, args.iter().map(|a| self.g.find(*a)).collect());
                let (g, oracle) = (self.g, self.oracle);
                *self.cache.entry(key).or_insert_with(|| {
                    let entry = g.analysis.op(*op);
                    let inputs: Vec<Option<&TensorType>> =
                        args.iter().map(|a| term::type_of(g, *a)).collect();
                    oracle.cost(&entry.op, &inputs, &entry.output.ty)
                })
            }
            _ => 0.0,
        };
        enode.fold(own, |sum, id| sum + costs(id))
    }
}

/// The graph `expr` describes, with `source`'s inputs (in order) and names.
fn rebuild(
    source: &Graph,
    g: &ModelGraph,
    expr: &RecExpr<Term>,
    inputs: &[LeafRef],
) -> Result<Graph, Error> {
    let mut out = Graph::new(source.name.clone());
    let mut leaves: HashMap<LeafRef, TensorId> = HashMap::new();
    for (t, leaf) in source.inputs.iter().zip(inputs) {
        let t = source.tensor(*t);
        leaves.insert(*leaf, out.add_input(t.name.clone(), t.ty.clone()));
    }
    let mut ids: Vec<Option<TensorId>> = Vec::with_capacity(expr.len());
    for node in expr.as_ref() {
        let id = match node {
            Term::Leaf(l) => Some(
                *leaves
                    .entry(*l)
                    .or_insert_with(|| out.push_tensor(g.analysis.leaf(*l).clone())),
            ),
            Term::Absent => None,
            Term::Apply(op, args) => {
                let entry = g.analysis.op(*op);
                let t = out.push_tensor(entry.output.clone());
                let operands = args.iter().map(|a| ids[usize::from(*a)]).collect();
                out.add_op(entry.op.clone(), operands, vec![t])?;
                Some(t)
            }
            Term::Outputs(outs) => {
                for o in outs {
                    let t = ids[usize::from(*o)].expect("an output is a tensor");
                    let t = copy_if_not_computed(&mut out, t)?;
                    out.outputs.push(t);
                }
                None
            }
        };
        ids.push(id);
    }
    Ok(out)
}

/// A graph output must be computed: one that became an input or a constant is copied.
fn copy_if_not_computed(out: &mut Graph, t: TensorId) -> Result<TensorId, Error> {
    if out.producer(t).is_some() {
        return Ok(t);
    }
    let tensor = out.tensor(t).clone();
    let copy = out.add_tensor(format!("{}/copy", tensor.name), tensor.ty);
    out.add_op(Op::Reshape, vec![Some(t)], vec![copy])?;
    Ok(copy)
}
