//! The graph IR: a DAG of operators over typed tensors.
//!
//! Tensors live in a dense table indexed by [`TensorId`]; operators are petgraph nodes indexed
//! by [`OpId`], with an edge from producer to consumer for every tensor that flows between them.
//! Constants own their bytes. The petgraph `NodeIndex` never leaves this module.
//!
//! ```
//! use minnow_ir::{Graph, Op, TensorType, DType};
//! let mut g = Graph::new("tiny");
//! let x = g.add_input("x", TensorType::new(vec![1, 4], DType::F32));
//! let y = g.add_tensor("y", TensorType::new(vec![1, 4], DType::F32));
//! g.add_op(Op::Relu, vec![Some(x)], vec![y]).unwrap();
//! g.outputs.push(y);
//! g.verify().unwrap();
//! assert_eq!(g.execution_order().len(), 1);
//! ```

use crate::error::Error;
use crate::op::Op;
use crate::types::TensorType;
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::NodeIndexable;
use petgraph::Direction;
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;

/// Index of a tensor in its graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct TensorId(pub u32);

/// Index of an operator in its graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct OpId(pub u32);

impl TensorId {
    /// The index as a `usize`, for table lookups.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for TensorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%{}", self.0)
    }
}

impl fmt::Display for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "op{}", self.0)
    }
}

/// What role a tensor plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TensorKind {
    /// Computed by an op, or fed as a graph input.
    Activation,
    /// Known at compile time; its bytes are in [`Tensor::data`].
    Constant,
    /// Persistent state an op reads and updates across inferences (SVDF's memory). Starts at
    /// [`Tensor::data`] if present, else zeros.
    State,
}

/// A tensor: its type, its role and, for constants, its bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// The name the model gave it (may be empty).
    pub name: String,
    /// Shape, element type, quantization.
    pub ty: TensorType,
    /// Role in the graph.
    pub kind: TensorKind,
    /// Little-endian bytes of a constant (or a state's initial value).
    pub data: Option<Vec<u8>>,
}

/// An operator node: the op and its operand tensors.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// What the node computes.
    pub op: Op,
    /// Operand tensors in the order [`Op`] documents; `None` for an omitted optional operand.
    pub inputs: Vec<Option<TensorId>>,
    /// Result tensors.
    pub outputs: Vec<TensorId>,
}

/// A model: tensors, operators, and which tensors are its inputs and outputs.
#[derive(Clone, Debug)]
pub struct Graph {
    /// The model's name (from the file name, or `model`).
    pub name: String,
    tensors: Vec<Tensor>,
    dag: StableDiGraph<Node, TensorId>,
    /// The op that writes each tensor, indexed by tensor (kept in step with `dag`).
    producers: Vec<Option<OpId>>,
    /// Graph inputs, in the model's order.
    pub inputs: Vec<TensorId>,
    /// Graph outputs, in the model's order.
    pub outputs: Vec<TensorId>,
}

impl Graph {
    /// An empty graph.
    pub fn new(name: impl Into<String>) -> Self {
        Graph {
            name: name.into(),
            tensors: Vec::new(),
            dag: StableDiGraph::new(),
            producers: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
        }
    }

    /// Adds an activation tensor (computed by an op) and returns its id.
    pub fn add_tensor(&mut self, name: impl Into<String>, ty: TensorType) -> TensorId {
        self.push_tensor(Tensor {
            name: name.into(),
            ty,
            kind: TensorKind::Activation,
            data: None,
        })
    }

    /// Adds a graph input and returns its id.
    pub fn add_input(&mut self, name: impl Into<String>, ty: TensorType) -> TensorId {
        let id = self.add_tensor(name, ty);
        self.inputs.push(id);
        id
    }

    /// Adds a constant with its little-endian bytes.
    pub fn add_constant(
        &mut self,
        name: impl Into<String>,
        ty: TensorType,
        data: Vec<u8>,
    ) -> TensorId {
        self.push_tensor(Tensor {
            name: name.into(),
            ty,
            kind: TensorKind::Constant,
            data: Some(data),
        })
    }

    /// Adds any tensor as given.
    pub fn push_tensor(&mut self, tensor: Tensor) -> TensorId {
        let id = TensorId(self.tensors.len() as u32);
        self.tensors.push(tensor);
        self.producers.push(None);
        id
    }

    /// Adds an op reading `inputs` and writing `outputs`, linking it to the ops that produce its
    /// inputs. Fails if an operand id does not exist or an output already has a producer.
    pub fn add_op(
        &mut self,
        op: Op,
        inputs: Vec<Option<TensorId>>,
        outputs: Vec<TensorId>,
    ) -> Result<OpId, Error> {
        for t in inputs.iter().flatten().chain(outputs.iter()) {
            if t.index() >= self.tensors.len() {
                return Err(Error::invalid(format!(
                    "{} refers to tensor {t}, which does not exist",
                    op.name()
                )));
            }
        }
        for out in &outputs {
            if let Some(p) = self.producer(*out) {
                return Err(Error::invalid(format!(
                    "tensor {out} is written by both {p} and a later {}",
                    op.name()
                )));
            }
        }
        let producers: Vec<(NodeIndex, TensorId)> = inputs
            .iter()
            .flatten()
            .filter_map(|t| {
                self.producer(*t)
                    .map(|p| (NodeIndex::new(p.0 as usize), *t))
            })
            .collect();
        let node = self.dag.add_node(Node {
            op,
            inputs,
            outputs,
        });
        for (p, t) in producers {
            self.dag.add_edge(p, node, t);
        }
        let id = OpId(node.index() as u32);
        for out in &self.dag[node].outputs {
            self.producers[out.index()] = Some(id);
        }
        Ok(id)
    }

    /// The tensor with id `id`. Panics on an id from another graph.
    pub fn tensor(&self, id: TensorId) -> &Tensor {
        &self.tensors[id.index()]
    }

    /// Mutable access to a tensor.
    pub fn tensor_mut(&mut self, id: TensorId) -> &mut Tensor {
        &mut self.tensors[id.index()]
    }

    /// All tensors with their ids.
    pub fn tensors(&self) -> impl Iterator<Item = (TensorId, &Tensor)> {
        self.tensors
            .iter()
            .enumerate()
            .map(|(i, t)| (TensorId(i as u32), t))
    }

    /// Number of tensors.
    pub fn tensor_count(&self) -> usize {
        self.tensors.len()
    }

    /// The node with id `id`. Panics on an id from another graph.
    pub fn node(&self, id: OpId) -> &Node {
        &self.dag[NodeIndex::new(id.0 as usize)]
    }

    /// Number of ops.
    pub fn op_count(&self) -> usize {
        self.dag.node_count()
    }

    /// The op that writes `t`, if any (inputs, constants and state have none).
    pub fn producer(&self, t: TensorId) -> Option<OpId> {
        self.producers.get(t.index()).copied().flatten()
    }

    /// The ops that read `t`.
    pub fn consumers(&self, t: TensorId) -> Vec<OpId> {
        self.dag
            .node_indices()
            .filter(|n| self.dag[*n].inputs.contains(&Some(t)))
            .map(|n| OpId(n.index() as u32))
            .collect()
    }

    /// Ops in an order where every op comes after the producers of its inputs; among ready ops
    /// the one added first goes first, so the order is stable and follows the model file.
    /// A cyclic graph yields only the ops outside the cycle ([`Graph::verify`] reports cycles).
    pub fn execution_order(&self) -> Vec<OpId> {
        let mut indegree: Vec<usize> = vec![0; self.dag.node_bound()];
        for n in self.dag.node_indices() {
            indegree[n.index()] = self.dag.neighbors_directed(n, Direction::Incoming).count();
        }
        let mut ready: BinaryHeap<Reverse<usize>> = self
            .dag
            .node_indices()
            .filter(|n| indegree[n.index()] == 0)
            .map(|n| Reverse(n.index()))
            .collect();
        let mut order = Vec::with_capacity(self.dag.node_count());
        while let Some(Reverse(i)) = ready.pop() {
            order.push(OpId(i as u32));
            for succ in self
                .dag
                .neighbors_directed(NodeIndex::new(i), Direction::Outgoing)
            {
                // Parallel edges (one tensor read twice) each count once in the in-degree.
                indegree[succ.index()] -= 1;
                if indegree[succ.index()] == 0 {
                    ready.push(Reverse(succ.index()));
                }
            }
        }
        order
    }

    /// Total bytes of constant tensors (weights, biases, tables).
    pub fn weight_bytes(&self) -> usize {
        self.tensors
            .iter()
            .filter(|t| t.kind == TensorKind::Constant)
            .map(|t| t.data.as_ref().map_or(0, Vec::len))
            .sum()
    }
}
