//! QDQ folding: a quantized ONNX model in QDQ form computes in float between
//! DEQUANTIZE and QUANTIZE ops (`DequantizeLinear` / `QuantizeLinear`); this pass turns every
//! float op whose operands are all dequantized integers and whose result is only quantized
//! again into the integer op minnow's int8 kernels run, as onnxruntime's QDQ transformer does.
//!
//! | before | after |
//! |---|---|
//! | `quantize(conv(dequantize(x), dequantize(w), dequantize(b)))` | `conv(x, w, b')` |
//! | `quantize(relu(conv(...)))` | `conv[relu](...)` |
//! | `quantize(add(dequantize(a), dequantize(b)))` | `add(a, b)` |
//! | `quantize(max_pool(dequantize(x)))`, same parameters | `max_pool(x)` |
//! | `quantize(dequantize(x))`, same parameters | `x` |
//!
//! The bias is requantized to `input_scale * weight_scale[c]`, as TFLite's kernels read it.
//! Whatever cannot fold stays in float, and a DEQUANTIZE of a constant that a float op still
//! reads becomes a float constant. The folded model computes with TFLite's integer arithmetic,
//! so it can differ from a float simulation of the QDQ graph by one quantization step.
//!
//! ```
//! use minnow_ir::{DType, Graph, Op, Quant, TensorType};
//! use minnow_passes::qdq::QdqFolder;
//!
//! let q = |scale| Some(Quant::PerTensor { scale, zero_point: 0 });
//! let mut g = Graph::new("qdq");
//! let x = g.add_input("x", TensorType { shape: vec![1, 4], dtype: DType::I8, quant: q(0.5) });
//! let xf = g.add_tensor("xf", TensorType::new(vec![1, 4], DType::F32));
//! let yf = g.add_tensor("yf", TensorType::new(vec![1, 4], DType::F32));
//! let y = g.add_tensor("y", TensorType { shape: vec![1, 4], dtype: DType::I8, quant: q(0.25) });
//! g.add_op(Op::Dequantize, vec![Some(x)], vec![xf]).unwrap();
//! g.add_op(Op::Relu, vec![Some(xf)], vec![yf]).unwrap();
//! g.add_op(Op::Quantize, vec![Some(yf)], vec![y]).unwrap();
//! g.outputs.push(y);
//! let (folded, report) = QdqFolder::default().run(&g).unwrap();
//! assert_eq!(folded.op_count(), 1);
//! assert_eq!(report.folded, vec!["relu"]);
//! ```

use minnow_ir::{
    Activation, DType, Error, Graph, Node, Op, OpId, Quant, Tensor, TensorId, TensorKind,
};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// The QDQ folding pass.
#[derive(Clone, Debug)]
pub struct QdqFolder {
    /// Fold float ops into integer ops (the default). Off, the pass only turns dequantized
    /// constants into float constants: the float simulation of the QDQ graph.
    pub integer_ops: bool,
}

impl Default for QdqFolder {
    fn default() -> Self {
        QdqFolder { integer_ops: true }
    }
}

/// What one run did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct QdqReport {
    /// The ops now integer, by name, in execution order.
    pub folded: Vec<&'static str>,
    /// QUANTIZE(DEQUANTIZE(x)) pairs that were `x`.
    pub cancelled: usize,
    /// Dequantized constants turned into float constants.
    pub dequantized_constants: usize,
}

/// The decisions of the planning walk.
#[derive(Default)]
struct Plan {
    /// Ops replaced by their integer form.
    replace: HashMap<OpId, Node>,
    /// Ops a fold absorbed (activations, QUANTIZE).
    skip: HashSet<OpId>,
    /// Tensor → the tensor that now holds its value.
    subst: HashMap<TensorId, TensorId>,
    /// New tensors (requantized biases, integer views through layout ops), given ids after
    /// the old tensors.
    new_tensors: Vec<Tensor>,
    /// Integer layout ops to add before a folded op (its operands seen through TRANSPOSE or
    /// RESHAPE) and after it (the layout ops between it and its QUANTIZE).
    around: HashMap<OpId, (Vec<Node>, Vec<Node>)>,
}

impl Plan {
    /// The type of `t`, a tensor of `g` or one the plan added.
    fn ty<'a>(&'a self, g: &'a Graph, t: TensorId) -> &'a minnow_ir::TensorType {
        match t.index().checked_sub(g.tensor_count()) {
            Some(i) => &self.new_tensors[i].ty,
            None => &g.tensor(t).ty,
        }
    }

    /// Adds a new tensor to a graph of `existing` tensors; returns its id.
    fn tensor(&mut self, existing: usize, t: Tensor) -> TensorId {
        self.new_tensors.push(t);
        TensorId((existing + self.new_tensors.len() - 1) as u32)
    }
}

/// Where a float op's result goes on its way to QUANTIZE.
struct QuantizedResult {
    /// The QUANTIZE's integer output.
    out: TensorId,
    /// An activation on the way (RELU, RELU6 or their CLAMP).
    activation: Activation,
    /// A bias a following ADD of a constant supplies (MatMul then Add, as exporters write a
    /// dense layer).
    bias: Option<TensorId>,
    /// TRANSPOSE and RESHAPE ops on the way, with the shapes they give.
    layout: Vec<(Op, Vec<usize>)>,
    /// Every op from the result to the QUANTIZE.
    absorbed: Vec<OpId>,
}

impl QdqFolder {
    /// Folds `graph`; the result is verified.
    pub fn run(&self, graph: &Graph) -> Result<(Graph, QdqReport), Error> {
        let mut report = QdqReport::default();
        let mut plan = Plan::default();
        if self.integer_ops {
            let walk = Walk::new(graph);
            for id in graph.execution_order() {
                if plan.skip.contains(&id) {
                    continue;
                }
                if let Some(x) = walk.cancelled_pair(id) {
                    plan.subst.insert(graph.node(id).outputs[0], x);
                    plan.skip.insert(id);
                    report.cancelled += 1;
                } else if walk.fold(id, &mut plan) {
                    report.folded.push(graph.node(id).op.name());
                }
            }
        }
        let out = rebuild(graph, plan, &mut report)?;
        out.verify()?;
        Ok((out, report))
    }
}

/// Read-only views of the graph the planning needs.
struct Walk<'g> {
    g: &'g Graph,
    readers: HashMap<TensorId, Vec<OpId>>,
}

impl<'g> Walk<'g> {
    fn new(g: &'g Graph) -> Self {
        let mut readers: HashMap<TensorId, Vec<OpId>> = HashMap::new();
        for id in g.execution_order() {
            for t in g.node(id).inputs.iter().flatten() {
                readers.entry(*t).or_default().push(id);
            }
        }
        Walk { g, readers }
    }

    /// The integer tensor a DEQUANTIZE turned into `t`.
    fn dequantized(&self, t: TensorId) -> Option<TensorId> {
        let p = self.g.producer(t)?;
        let n = self.g.node(p);
        (n.op == Op::Dequantize).then_some(n.inputs[0]).flatten()
    }

    /// The only op reading `t`, when `t` is not a graph output.
    fn sole_reader(&self, t: TensorId) -> Option<OpId> {
        match self.readers.get(&t).map(Vec::as_slice) {
            Some([one]) if !self.g.outputs.contains(&t) => Some(*one),
            _ => None,
        }
    }

    /// `QUANTIZE(DEQUANTIZE(x))` with the type of `x`: returns `x`.
    fn cancelled_pair(&self, id: OpId) -> Option<TensorId> {
        let n = self.g.node(id);
        let x = (n.op == Op::Quantize).then(|| self.dequantized(n.inputs[0]?))??;
        (self.g.tensor(x).ty == self.g.tensor(n.outputs[0]).ty).then_some(x)
    }

    /// Where the float result `t` ends: through TRANSPOSE and RESHAPE ops and at most one
    /// activation (if `activation_ok`), at a QUANTIZE to per-tensor int8.
    fn quantized_result(&self, t: TensorId, node: &Node) -> Option<QuantizedResult> {
        let mac = is_mac(&node.op);
        let activation_ok = mac || matches!(node.op, Op::Add { .. });
        let mut r = QuantizedResult {
            out: t,
            activation: Activation::None,
            bias: None,
            layout: Vec::new(),
            absorbed: Vec::new(),
        };
        let mut at = t;
        loop {
            let reader = self.sole_reader(at)?;
            let n = self.g.node(reader);
            r.absorbed.push(reader);
            at = n.outputs[0];
            let activation = match n.op {
                Op::Quantize => break,
                Op::Add {
                    activation: Activation::None,
                } if mac && r.absorbed.len() == 1 => {
                    // It reads the multiply-accumulate result, `t`.
                    r.bias = Some(self.bias_addend(node, n, t)?);
                    continue;
                }
                Op::Transpose { .. } | Op::Reshape => {
                    r.layout
                        .push((n.op.clone(), self.g.tensor(at).ty.shape.clone()));
                    continue;
                }
                Op::Relu => Activation::Relu,
                Op::Relu6 => Activation::Relu6,
                Op::Clamp { min, max } if min == 0.0 && max == 6.0 => Activation::Relu6,
                _ => return None,
            };
            if !activation_ok || r.activation != Activation::None {
                return None;
            }
            r.activation = activation;
        }
        let ty = &self.g.tensor(at).ty;
        if ty.dtype != DType::I8 || !matches!(ty.quant, Some(Quant::PerTensor { .. })) {
            return None;
        }
        r.out = at;
        Some(r)
    }

    /// The constant of `add` (which reads the multiply-accumulate result `from`) when it is one
    /// value per output channel and `mac` has no bias yet.
    fn bias_addend(&self, mac: &Node, add: &Node, from: TensorId) -> Option<TensorId> {
        if mac.inputs.get(2).copied().flatten().is_some() {
            return None;
        }
        let other = add.inputs.iter().flatten().copied().find(|t| *t != from)?;
        let channels = *self.g.tensor(mac.outputs[0]).ty.shape.last()?;
        let values = self.real_values(other)?;
        (values.len() == channels).then_some(other)
    }

    /// The integer tensor behind float operand `t`: a DEQUANTIZE's input, or one seen through
    /// TRANSPOSE and RESHAPE ops, which are planned again on the integers (into `before`).
    fn integer_operand(
        &self,
        t: TensorId,
        plan: &mut Plan,
        before: &mut Vec<Node>,
    ) -> Option<TensorId> {
        if let Some(q) = self.dequantized(t) {
            return Some(q);
        }
        let n = self.g.node(self.g.producer(t)?);
        if !matches!(n.op, Op::Transpose { .. } | Op::Reshape) {
            return None;
        }
        let inner = self.integer_operand(n.inputs[0]?, plan, before)?;
        let view = Tensor {
            name: format!("{}:int", self.g.tensor(t).name),
            ty: minnow_ir::TensorType {
                shape: self.g.tensor(t).ty.shape.clone(),
                ..plan.ty(self.g, inner).clone()
            },
            kind: TensorKind::Activation,
            data: None,
        };
        let id = plan.tensor(self.g.tensor_count(), view);
        before.push(Node {
            op: n.op.clone(),
            inputs: vec![Some(inner)],
            outputs: vec![id],
        });
        Some(id)
    }

    /// Plans the integer form of op `id`, if it has one. Returns whether it folds.
    fn fold(&self, id: OpId, plan: &mut Plan) -> bool {
        let node = self.g.node(id);
        let mac = is_mac(&node.op);
        let Some(result) = self.quantized_result(node.outputs[0], node) else {
            return false;
        };
        // A fold that fails halfway takes back the tensors it planned.
        let mark = plan.new_tensors.len();
        let mut before = Vec::new();
        let inputs = if mac {
            self.mac_operands(node, &result, plan, &mut before)
        } else {
            self.elementwise_operands(node, &result, plan, &mut before)
        };
        let Some(inputs) = inputs else {
            plan.new_tensors.truncate(mark);
            return false;
        };
        let mut op = node.op.clone();
        if let Op::Conv2d { activation: a, .. }
        | Op::DepthwiseConv2d { activation: a, .. }
        | Op::FullyConnected { activation: a, .. }
        | Op::Add { activation: a } = &mut op
        {
            *a = result.activation;
        }
        let after = self.layout_after(node, &result, plan);
        let out = after
            .first()
            .and_then(|n| n.inputs[0])
            .unwrap_or(result.out);
        plan.replace.insert(
            id,
            Node {
                op,
                inputs,
                outputs: vec![out],
            },
        );
        plan.around.insert(id, (before, after));
        plan.skip.extend(result.absorbed);
        true
    }

    /// The integer TRANSPOSE and RESHAPE ops from the folded op's result to the QUANTIZE's
    /// output, on new integer tensors.
    fn layout_after(&self, node: &Node, result: &QuantizedResult, plan: &mut Plan) -> Vec<Node> {
        let out_ty = self.g.tensor(result.out).ty.clone();
        let mut shape = self.g.tensor(node.outputs[0]).ty.shape.clone();
        let mut nodes = Vec::new();
        let mut at = None;
        for (i, (op, next_shape)) in result.layout.iter().enumerate() {
            let input = *at.get_or_insert_with(|| {
                let name = format!("{}:int", self.g.tensor(node.outputs[0]).name);
                plan.tensor(self.g.tensor_count(), activation(name, &shape, &out_ty))
            });
            shape = next_shape.clone();
            let output = if i + 1 == result.layout.len() {
                result.out
            } else {
                let name = format!("{}:int{i}", self.g.tensor(result.out).name);
                plan.tensor(self.g.tensor_count(), activation(name, &shape, &out_ty))
            };
            nodes.push(Node {
                op: op.clone(),
                inputs: vec![Some(input)],
                outputs: vec![output],
            });
            at = Some(output);
        }
        nodes
    }

    /// The integer operands of a convolution or fully connected op: the input's and weights'
    /// integers and a bias requantized to `input_scale * weight_scale`.
    fn mac_operands(
        &self,
        node: &Node,
        result: &QuantizedResult,
        plan: &mut Plan,
        before: &mut Vec<Node>,
    ) -> Option<Vec<Option<TensorId>>> {
        let out = result.out;
        let x = self.integer_operand(node.inputs[0]?, plan, before)?;
        let w = self.dequantized(node.inputs[1]?)?;
        let (xt, wt) = (plan.ty(self.g, x).clone(), self.g.tensor(w));
        let (x_scale, _) = per_tensor(&xt.quant)?;
        let wq = wt.ty.quant.as_ref()?;
        if xt.dtype != DType::I8 || wt.ty.dtype != DType::I8 || wt.kind != TensorKind::Constant {
            return None;
        }
        let channels = self.g.tensor(node.outputs[0]).ty.shape.last().copied()?;
        let fc = matches!(node.op, Op::FullyConnected { .. });
        // TFLite's convolutions ignore a weight zero point; its FULLY_CONNECTED is per-tensor.
        let symmetric = (0..wq.len()).all(|c| wq.zero_point(c) == 0);
        if (fc && wq.len() != 1) || (!fc && !symmetric) || (wq.len() != 1 && wq.len() != channels) {
            return None;
        }
        let bias = match node.inputs.get(2).copied().flatten().or(result.bias) {
            None => None,
            Some(b) => {
                let real = self.real_values(b)?;
                if real.len() != channels {
                    return None;
                }
                let scales: Vec<f32> = (0..channels)
                    .map(|c| x_scale * wq.scale(if wq.len() == 1 { 0 } else { c }))
                    .collect();
                let data = real
                    .iter()
                    .zip(&scales)
                    .flat_map(|(v, s)| {
                        ((*v as f64 / *s as f64)
                            .round()
                            .clamp(i32::MIN as f64, i32::MAX as f64)
                            as i32)
                            .to_le_bytes()
                    })
                    .collect();
                let tensor = Tensor {
                    name: format!("{}:bias", self.g.tensor(out).name),
                    ty: minnow_ir::TensorType {
                        shape: vec![channels],
                        dtype: DType::I32,
                        quant: Some(Quant::PerChannel {
                            zero_points: vec![0; channels],
                            scales,
                            axis: 0,
                        }),
                    },
                    kind: TensorKind::Constant,
                    data: Some(data),
                };
                Some(plan.tensor(self.g.tensor_count(), tensor))
            }
        };
        Some(vec![Some(x), Some(w), bias])
    }

    /// The real values of a bias: a float constant, or a dequantized integer constant.
    fn real_values(&self, b: TensorId) -> Option<Vec<f32>> {
        let (t, quantized) = match self.dequantized(b) {
            Some(q) => (self.g.tensor(q), true),
            None => (self.g.tensor(b), false),
        };
        if t.kind != TensorKind::Constant {
            return None;
        }
        let values = dequantize(t)?;
        (quantized || t.ty.dtype == DType::F32).then_some(values)
    }

    /// The integer operands of an element-wise, pooling or layout op, when its kernel takes the
    /// quantization it has: ADD and MUL any, MEAN and RELU any, SOFTMAX and LOGISTIC an output
    /// of 1/256 from -128, TANH 1/128 from 0, the rest the input's own parameters.
    fn elementwise_operands(
        &self,
        node: &Node,
        result: &QuantizedResult,
        plan: &mut Plan,
        before: &mut Vec<Node>,
    ) -> Option<Vec<Option<TensorId>>> {
        let out = result.out;
        let mut inputs = Vec::new();
        for t in &node.inputs {
            let q = self.integer_operand((*t)?, plan, before)?;
            let ty = plan.ty(self.g, q);
            if ty.dtype != DType::I8 || per_tensor(&ty.quant).is_none() {
                return None;
            }
            inputs.push(Some(q));
        }
        let out_q = per_tensor(&self.g.tensor(out).ty.quant)?;
        let same = || {
            inputs
                .iter()
                .flatten()
                .all(|q| per_tensor(&plan.ty(self.g, *q).quant) == Some(out_q))
        };
        let fits = match node.op {
            Op::Add { .. } | Op::Mul { .. } | Op::Mean { .. } | Op::Relu => true,
            Op::Softmax { .. } | Op::Logistic => out_q == (1.0 / 256.0, -128),
            Op::Tanh => out_q == (1.0 / 128.0, 0),
            Op::MaxPool2d { .. }
            | Op::AvgPool2d { .. }
            | Op::Reshape
            | Op::Transpose { .. }
            | Op::Pad { .. }
            | Op::Concat { .. }
            | Op::Relu6
            | Op::Clamp { .. } => same(),
            _ => false,
        };
        fits.then_some(inputs)
    }
}

/// Scale and zero point of per-tensor quantization.
fn per_tensor(q: &Option<Quant>) -> Option<(f32, i32)> {
    match q {
        Some(Quant::PerTensor { scale, zero_point }) => Some((*scale, *zero_point)),
        _ => None,
    }
}

/// The real values of a constant: floats as they are, integers through their quantization
/// (per channel along its axis).
fn dequantize(t: &Tensor) -> Option<Vec<f32>> {
    let data = t.data.as_ref()?;
    let buffer = minnow_ir::interp::Buffer::from_le_bytes(t.ty.dtype, data);
    if let Some(f) = buffer.as_f32() {
        return Some(f.to_vec());
    }
    let ints = buffer.to_i64()?;
    let q = t.ty.quant.as_ref()?;
    let (axis, shape) = match q {
        Quant::PerChannel { axis, .. } => (*axis, &t.ty.shape),
        Quant::PerTensor { .. } => (0, &t.ty.shape),
    };
    let inner: usize = shape.iter().skip(axis + 1).product();
    let dim = shape.get(axis).copied().unwrap_or(1);
    Some(
        ints.iter()
            .enumerate()
            .map(|(i, v)| {
                let c = if q.len() == 1 {
                    0
                } else {
                    (i / inner.max(1)) % dim
                };
                (q.scale(c) as f64 * (v - q.zero_point(c) as i64) as f64) as f32
            })
            .collect(),
    )
}

/// The graph with the plan applied: folded ops in place, absorbed ops gone, dequantized
/// constants that float ops still read turned into float constants, and ops nothing reads
/// removed.
fn rebuild(g: &Graph, plan: Plan, report: &mut QdqReport) -> Result<Graph, Error> {
    let Plan {
        replace,
        skip,
        subst,
        new_tensors,
        mut around,
    } = plan;
    let map = |t: TensorId| subst.get(&t).copied().unwrap_or(t);
    let mut order: Vec<Node> = Vec::new();
    for id in g
        .execution_order()
        .into_iter()
        .filter(|id| !skip.contains(id))
    {
        let (before, after) = around.remove(&id).unwrap_or_default();
        let mut n = replace
            .get(&id)
            .cloned()
            .unwrap_or_else(|| g.node(id).clone());
        n.inputs = n.inputs.iter().map(|t| t.map(map)).collect();
        order.extend(before);
        order.push(n);
        order.extend(after);
    }
    let outputs: Vec<TensorId> = g.outputs.iter().map(|t| map(*t)).collect();
    let live = live_ops(&order, &outputs);
    let mut out = Graph::new(g.name.clone());
    for (_, t) in g.tensors() {
        out.push_tensor(t.clone());
    }
    for t in new_tensors {
        out.push_tensor(t);
    }
    for (n, l) in order.into_iter().zip(live) {
        if !l {
            continue;
        }
        let source = n
            .inputs
            .first()
            .copied()
            .flatten()
            .map(|t| out.tensor(t).clone());
        if let (Op::Dequantize, Some(src)) = (&n.op, source) {
            if src.kind == TensorKind::Constant {
                if let Some(values) = dequantize(&src) {
                    let t = out.tensor_mut(n.outputs[0]);
                    t.kind = TensorKind::Constant;
                    t.data = Some(values.iter().flat_map(|v| v.to_le_bytes()).collect());
                    report.dequantized_constants += 1;
                    continue;
                }
            }
        }
        out.add_op(n.op, n.inputs, n.outputs)?;
    }
    out.inputs = g.inputs.clone();
    out.outputs = outputs;
    Ok(out)
}

/// Whether `op` multiplies and accumulates over weights (and takes a bias).
fn is_mac(op: &Op) -> bool {
    matches!(
        op,
        Op::Conv2d { .. } | Op::DepthwiseConv2d { .. } | Op::FullyConnected { .. }
    )
}

/// A computed tensor named `name` of shape `shape` with the element type and quantization of
/// `like`.
fn activation(name: String, shape: &[usize], like: &minnow_ir::TensorType) -> Tensor {
    Tensor {
        name,
        ty: minnow_ir::TensorType {
            shape: shape.to_vec(),
            ..like.clone()
        },
        kind: TensorKind::Activation,
        data: None,
    }
}

/// Which of `order`'s ops something reads (another live op or a graph output), removing dead
/// ones until none is left: a DEQUANTIZE that only fed a folded op goes too.
fn live_ops(order: &[Node], outputs: &[TensorId]) -> Vec<bool> {
    let mut live = vec![true; order.len()];
    loop {
        let read: HashSet<TensorId> = order
            .iter()
            .zip(&live)
            .filter(|(_, l)| **l)
            .flat_map(|(n, _)| n.inputs.iter().flatten().copied())
            .chain(outputs.iter().copied())
            .collect();
        let mut changed = false;
        for (i, n) in order.iter().enumerate() {
            if live[i] && !n.outputs.iter().any(|t| read.contains(t)) {
                live[i] = false;
                changed = true;
            }
        }
        if !changed {
            return live;
        }
    }
}
