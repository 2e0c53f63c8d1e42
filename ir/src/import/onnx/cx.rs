//! The state of one ONNX import: ONNX value names to minnow tensors, constants, and the
//! helpers every operator translation uses to add ops.

use super::attrs::Attrs;
use super::proto::{self, GraphProto, NodeProto, TensorProto};
use super::{conv, elementwise, matmul, pool, quant, shape, SUPPORTED_OPS};
use crate::error::Error;
use crate::graph::{Graph, Node, TensorId, TensorKind};
use crate::op::Op;
use crate::types::{DType, Quant, TensorType};
use std::collections::HashMap;

/// A constant operand: its type and little-endian bytes.
#[derive(Clone, Debug)]
pub struct Constant {
    /// Shape and element type.
    pub ty: TensorType,
    /// Contents.
    pub data: Vec<u8>,
}

impl Constant {
    /// The values as `f64`, whatever the element type.
    pub fn values(&self) -> Vec<f64> {
        let size = self.ty.dtype.size();
        self.data
            .chunks_exact(size)
            .map(|c| match self.ty.dtype {
                DType::F32 => f32::from_le_bytes(c.try_into().unwrap()) as f64,
                DType::I8 => c[0] as i8 as f64,
                DType::U8 => c[0] as f64,
                DType::I16 => i16::from_le_bytes(c.try_into().unwrap()) as f64,
                DType::I32 => i32::from_le_bytes(c.try_into().unwrap()) as f64,
                DType::I64 => i64::from_le_bytes(c.try_into().unwrap()) as f64,
            })
            .collect()
    }

    /// The values as `i64` (shapes, axes, pads), refusing a float constant.
    pub fn ints(&self) -> Result<Vec<i64>, String> {
        if self.ty.dtype == DType::F32 {
            return Err("an integer constant is needed, this one is float".into());
        }
        Ok(self.values().into_iter().map(|v| v as i64).collect())
    }

    /// The values as `f32`.
    pub fn floats(&self) -> Vec<f32> {
        self.values().into_iter().map(|v| v as f32).collect()
    }

    /// The constant with its dimensions permuted (output dim `i` is dim `perm[i]`).
    pub fn permuted(&self, perm: &[usize]) -> Constant {
        let shape = &self.ty.shape;
        let size = self.ty.dtype.size();
        let out_shape: Vec<usize> = perm.iter().map(|p| shape[*p]).collect();
        let mut in_strides = vec![1usize; shape.len()];
        for d in (0..shape.len().saturating_sub(1)).rev() {
            in_strides[d] = in_strides[d + 1] * shape[d + 1];
        }
        let mut data = Vec::with_capacity(self.data.len());
        let mut coord = vec![0usize; out_shape.len()];
        for _ in 0..self.ty.elements() {
            let at: usize = coord
                .iter()
                .zip(perm)
                .map(|(c, p)| c * in_strides[*p])
                .sum();
            data.extend_from_slice(&self.data[at * size..(at + 1) * size]);
            for d in (0..coord.len()).rev() {
                coord[d] += 1;
                if coord[d] < out_shape[d] {
                    break;
                }
                coord[d] = 0;
            }
        }
        let mut quant = self.ty.quant.clone();
        if let Some(Quant::PerChannel { axis, .. }) = &mut quant {
            *axis = perm.iter().position(|p| p == axis).expect("a permutation");
        }
        Constant {
            ty: TensorType {
                shape: out_shape,
                dtype: self.ty.dtype,
                quant,
            },
            data,
        }
    }

    /// A float constant of `shape` from `values`.
    pub fn f32(shape: Vec<usize>, values: &[f32]) -> Constant {
        Constant {
            ty: TensorType::new(shape, DType::F32),
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }
}

/// A BatchNormalization a convolution absorbs: `y = conv * scale + shift` per channel.
pub struct FoldedBatchNorm {
    /// The BatchNormalization node's index.
    pub node: usize,
    /// Per-channel factor.
    pub scale: Vec<f32>,
    /// Per-channel offset.
    pub shift: Vec<f32>,
    /// The name of its output.
    pub output: String,
}

/// One import in progress.
pub struct ImportCx<'a> {
    path: &'a str,
    /// The graph being imported.
    proto: &'a GraphProto,
    /// The default-domain opset the model was written against.
    pub opset: i64,
    /// The graph being built.
    pub graph: Graph,
    /// ONNX value name → the minnow tensor holding it.
    values: HashMap<String, TensorId>,
    /// Graph inputs not yet turned into tensors, with their types.
    pending_inputs: HashMap<String, TensorType>,
    /// Values a caller offered for graph inputs ([`super::ImportOptions::constants`]).
    offered: HashMap<String, TensorProto>,
    /// ONNX value name → how many nodes read it (for folds that need a single reader).
    readers: HashMap<String, usize>,
    /// ONNX value name → the node (index) that reads it, when exactly one does.
    sole_reader: HashMap<String, usize>,
    /// Nodes already translated as part of an earlier node (a folded BatchNormalization).
    pub absorbed: Vec<bool>,
}

impl<'a> ImportCx<'a> {
    /// A fresh import of `graph_proto` into `graph`.
    pub fn new(
        path: &'a str,
        opset: i64,
        graph: Graph,
        offered: HashMap<String, TensorProto>,
        graph_proto: &'a GraphProto,
    ) -> Self {
        let mut readers: HashMap<String, usize> = HashMap::new();
        let mut sole_reader = HashMap::new();
        for (i, node) in graph_proto.node.iter().enumerate() {
            for input in node.input.iter().filter(|n| !n.is_empty()) {
                *readers.entry(input.clone()).or_default() += 1;
                sole_reader.insert(input.clone(), i);
            }
        }
        for output in &graph_proto.output {
            *readers.entry(output.name().to_string()).or_default() += 1;
        }
        ImportCx {
            path,
            proto: graph_proto,
            opset,
            graph,
            values: HashMap::new(),
            pending_inputs: HashMap::new(),
            offered,
            readers,
            sole_reader,
            absorbed: vec![false; graph_proto.node.len()],
        }
    }

    fn malformed(&self, reason: String) -> Error {
        Error::Malformed {
            path: self.path.to_string(),
            format: "ONNX",
            reason,
        }
    }

    /// Reads initializers and inputs, then translates every node in order.
    pub fn import_graph(&mut self) -> Result<(), Error> {
        let g = self.proto;
        for init in &g.initializer {
            let (ty, data) = proto::tensor_data(init).map_err(|e| self.malformed(e))?;
            let id = self.graph.add_constant(init.name(), ty, data);
            self.values.insert(init.name().to_string(), id);
        }
        for input in &g.input {
            // Before IR version 4 initializers were listed as inputs too: they stay constants.
            if self.values.contains_key(input.name()) {
                continue;
            }
            let ty = proto::value_type(input).map_err(|e| self.malformed(format!("input {e}")))?;
            self.pending_inputs.insert(input.name().to_string(), ty);
        }
        for (index, node) in g.node.iter().enumerate() {
            if self.absorbed[index] {
                continue;
            }
            self.import_node(index, node)?;
        }
        Ok(())
    }

    /// Checks the outputs and puts the inputs in the model's order.
    pub fn finish(mut self) -> Result<Graph, Error> {
        let g = self.proto;
        for output in &g.output {
            let id = self
                .value(output.name())
                .map_err(|e| self.malformed(format!("graph output {:?}: {e}", output.name())))?;
            self.graph.outputs.push(id);
        }
        let order: HashMap<&str, usize> = g
            .input
            .iter()
            .enumerate()
            .map(|(i, v)| (v.name(), i))
            .collect();
        let mut inputs = std::mem::take(&mut self.graph.inputs);
        inputs.sort_by_key(|t| order.get(self.graph.tensor(*t).name.as_str()).copied());
        self.graph.inputs = inputs;
        Ok(self.graph)
    }

    fn import_node(&mut self, index: usize, node: &NodeProto) -> Result<(), Error> {
        let op = node.op_type();
        if !matches!(node.domain(), "" | "ai.onnx") || !SUPPORTED_OPS.contains(&op) {
            let shown = match node.domain() {
                "" | "ai.onnx" => op.to_string(),
                domain => format!("{domain}.{op}"),
            };
            return Err(Error::UnsupportedOp {
                path: self.path.to_string(),
                op: shown,
                index,
                supported: SUPPORTED_OPS.join(", "),
            });
        }
        let attrs = Attrs::of(node);
        let outputs = self.translate(node, &attrs).map_err(|reason| {
            let named = match node.name() {
                "" => reason,
                name => format!("node {name:?}: {reason}"),
            };
            Error::UnsupportedUse {
                path: self.path.to_string(),
                op: op.to_string(),
                index,
                reason: named,
            }
        })?;
        for (name, id) in node.output.iter().zip(outputs) {
            if !name.is_empty() {
                self.values.insert(name.clone(), id);
            }
        }
        Ok(())
    }

    fn translate(&mut self, node: &NodeProto, attrs: &Attrs) -> Result<Vec<TensorId>, String> {
        let live_outputs = node.output.iter().filter(|o| !o.is_empty()).count();
        if live_outputs > 1 && !matches!(node.op_type(), "BatchNormalization") {
            return Err(format!(
                "{live_outputs} outputs are used; minnow supports the first only"
            ));
        }
        let one = |r: Result<TensorId, String>| r.map(|t| vec![t]);
        match node.op_type() {
            "Conv" => one(conv::conv(self, node, attrs)),
            "QLinearConv" => one(conv::qlinear_conv(self, node, attrs)),
            "MaxPool" | "AveragePool" => one(pool::pool(self, node, attrs)),
            "GlobalAveragePool" => one(pool::global_average(self, node, attrs)),
            "Gemm" => one(matmul::gemm(self, node, attrs)),
            "MatMul" => one(matmul::matmul(self, node, attrs)),
            "QLinearMatMul" => one(matmul::qlinear_matmul(self, node, attrs)),
            "QuantizeLinear" => one(quant::quantize(self, node, attrs)),
            "DequantizeLinear" => one(quant::dequantize(self, node, attrs)),
            "Constant" => one(shape::constant(self, node, attrs)),
            "Reshape" | "Flatten" | "Squeeze" | "Unsqueeze" | "Identity" => {
                one(shape::reshape(self, node, attrs))
            }
            "Transpose" => one(shape::transpose(self, node, attrs)),
            "Concat" => one(shape::concat(self, node, attrs)),
            "Pad" => one(shape::pad(self, node, attrs)),
            "Softmax" => one(shape::softmax(self, node, attrs)),
            _ => one(elementwise::translate(self, node, attrs)),
        }
    }

    /// The tensor holding ONNX value `name`, making a graph input of it on first use.
    pub fn value(&mut self, name: &str) -> Result<TensorId, String> {
        if let Some(id) = self.values.get(name) {
            return Ok(*id);
        }
        if let Some(ty) = self.pending_inputs.remove(name) {
            let id = self.graph.add_input(name, ty);
            self.values.insert(name.to_string(), id);
            return Ok(id);
        }
        Err(format!(
            "value {name:?} is used before any node produces it"
        ))
    }

    /// The tensor of operand `i` of `node` (an error if it is absent).
    pub fn operand(&mut self, node: &NodeProto, i: usize) -> Result<TensorId, String> {
        match node.input.get(i).filter(|n| !n.is_empty()) {
            Some(name) => self.value(&name.clone()),
            None => Err(format!("operand {i} is missing")),
        }
    }

    /// The type of a tensor.
    pub fn ty(&self, id: TensorId) -> &TensorType {
        &self.graph.tensor(id).ty
    }

    /// Whether operand `i` of `node` is given.
    pub fn has_operand(node: &NodeProto, i: usize) -> bool {
        node.input.get(i).is_some_and(|n| !n.is_empty())
    }

    /// The value of operand `i` of `node`, which must be a constant: an initializer, a
    /// Constant node's output, or a graph input the caller offered a value for.
    pub fn constant(&mut self, node: &NodeProto, i: usize) -> Result<Constant, String> {
        let name = node
            .input
            .get(i)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| format!("operand {i} is missing"))?
            .clone();
        if let Some(id) = self.values.get(&name) {
            let t = self.graph.tensor(*id);
            if t.kind == TensorKind::Constant {
                return Ok(Constant {
                    ty: t.ty.clone(),
                    data: t.data.clone().expect("constants have data"),
                });
            }
        }
        if let Some(offered) = self.offered.get(&name) {
            let (ty, data) = proto::tensor_data(offered)?;
            return Ok(Constant { ty, data });
        }
        Err(format!(
            "operand {i} ({name:?}) must be a constant (an initializer): minnow compiles \
             weights, shapes and parameters into the program. Make it an initializer, or \
             pass its value as a constant input"
        ))
    }

    /// A weight operand: a constant as [`ImportCx::constant`] gives it, or, when operand `i`
    /// is a DequantizeLinear of a constant (a QDQ model's weights), that quantized constant
    /// with its quantization. [`ImportCx::add_weights`] adds either back.
    pub fn weight_constant(&mut self, node: &NodeProto, i: usize) -> Result<Constant, String> {
        if let Some(id) = node.input.get(i).and_then(|n| self.values.get(n)) {
            if let Some(op) = self.graph.producer(*id) {
                let n = self.graph.node(op);
                let source = n.inputs[0].map(|t| self.graph.tensor(t));
                if let (Op::Dequantize, Some(t)) = (&n.op, source) {
                    if t.kind == TensorKind::Constant {
                        return Ok(Constant {
                            ty: t.ty.clone(),
                            data: t.data.clone().expect("constants have data"),
                        });
                    }
                }
            }
        }
        self.constant(node, i)
    }

    /// The optional weight operand `i` ([`ImportCx::weight_constant`]).
    pub fn optional_weight_constant(
        &mut self,
        node: &NodeProto,
        i: usize,
    ) -> Result<Option<Constant>, String> {
        if Self::has_operand(node, i) {
            self.weight_constant(node, i).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Adds weights: a float constant as it is; a quantized one with a DEQUANTIZE after it, so
    /// the float op reads float weights and `minnow_passes::qdq::QdqFolder` finds the
    /// integers.
    pub fn add_weights(&mut self, name: &str, c: Constant) -> Result<TensorId, String> {
        if c.ty.quant.is_none() || c.ty.dtype == DType::F32 {
            return Ok(self.add_constant(name, c));
        }
        let q = self.add_constant(&format!("{name}:quantized"), c);
        self.emit(name, Op::Dequantize, vec![Some(q)], DType::F32, None)
    }

    /// Whether a constant holds quantized integers (a QDQ model's weights).
    pub fn is_quantized(c: &Constant) -> bool {
        c.ty.quant.is_some() && c.ty.dtype != DType::F32
    }

    /// The constant operand `i`, or `None` when it is omitted.
    pub fn optional_constant(
        &mut self,
        node: &NodeProto,
        i: usize,
    ) -> Result<Option<Constant>, String> {
        if Self::has_operand(node, i) {
            self.constant(node, i).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Adds a constant tensor.
    pub fn add_constant(&mut self, name: &str, c: Constant) -> TensorId {
        self.graph.add_constant(name, c.ty, c.data)
    }

    /// Adds `op` on `inputs` with an output of element type `dtype` and quantization `quant`,
    /// its shape inferred from the operands; `name` names the output.
    pub fn emit(
        &mut self,
        name: &str,
        op: Op,
        inputs: Vec<Option<TensorId>>,
        dtype: DType,
        quant: Option<Quant>,
    ) -> Result<TensorId, String> {
        let node = Node {
            op,
            inputs,
            outputs: Vec::new(),
        };
        let shape = crate::shape::infer(&self.graph, &node)
            .map_err(|e| format!("{}: {e}", node.op.tflite_name()))?;
        let ty = TensorType {
            shape,
            dtype,
            quant,
        };
        self.emit_typed(name, node.op, node.inputs, ty)
    }

    /// Adds `op` on `inputs` with an output of type `ty` (for RESHAPE, whose output type says
    /// what it does).
    pub fn emit_typed(
        &mut self,
        name: &str,
        op: Op,
        inputs: Vec<Option<TensorId>>,
        ty: TensorType,
    ) -> Result<TensorId, String> {
        let out = self.graph.add_tensor(name, ty);
        self.graph
            .add_op(op, inputs, vec![out])
            .map_err(|e| e.to_string())?;
        Ok(out)
    }

    /// `input` with the same type as it has (element type and quantization) and a new shape.
    pub fn reshape(
        &mut self,
        name: &str,
        input: TensorId,
        shape: Vec<usize>,
    ) -> Result<TensorId, String> {
        let ty = TensorType {
            shape,
            ..self.ty(input).clone()
        };
        if ty.shape == self.ty(input).shape {
            return Ok(input);
        }
        self.emit_typed(name, Op::Reshape, vec![Some(input)], ty)
    }

    /// `input` with its dimensions permuted (output dim `i` is input dim `perm[i]`).
    pub fn transpose(
        &mut self,
        name: &str,
        input: TensorId,
        perm: Vec<usize>,
    ) -> Result<TensorId, String> {
        if perm.iter().enumerate().all(|(i, p)| i == *p) {
            return Ok(input);
        }
        let ty = self.ty(input).clone();
        self.emit(
            name,
            Op::Transpose { perm },
            vec![Some(input)],
            ty.dtype,
            ty.quant,
        )
    }

    /// Makes ONNX value `name` refer to tensor `id` (the output of a node that absorbed the
    /// node which writes `name`).
    pub fn alias(&mut self, name: &str, id: TensorId) {
        self.values.insert(name.to_string(), id);
    }

    /// When the only reader of the convolution output `conv_out` is an inference-mode
    /// BatchNormalization with constant parameters over `channels` channels: its node index,
    /// per-channel scale and shift, and output name.
    pub fn foldable_batchnorm(
        &mut self,
        conv_out: &str,
        channels: usize,
    ) -> Result<Option<FoldedBatchNorm>, String> {
        let Some(reader) = self.sole_reader(conv_out) else {
            return Ok(None);
        };
        let node = &self.proto.node[reader];
        if node.op_type() != "BatchNormalization"
            || node.input.first().map(String::as_str) != Some(conv_out)
            || node.output.iter().skip(1).any(|o| !o.is_empty())
        {
            return Ok(None);
        }
        let attrs = Attrs::of(node);
        if attrs.int("training_mode", 0)? != 0 || (1..5).any(|i| !self.is_constant(node, i)) {
            return Ok(None);
        }
        let (scale, shift) = elementwise::batchnorm_params(self, node, &attrs)?;
        if scale.len() != channels {
            return Ok(None);
        }
        Ok(Some(FoldedBatchNorm {
            node: reader,
            scale,
            shift,
            output: node.output[0].clone(),
        }))
    }

    /// Whether operand `i` of `node` is a constant (or offered as one).
    fn is_constant(&self, node: &NodeProto, i: usize) -> bool {
        let Some(name) = node.input.get(i) else {
            return false;
        };
        self.offered.contains_key(name)
            || self
                .values
                .get(name)
                .is_some_and(|id| self.graph.tensor(*id).kind == TensorKind::Constant)
    }

    /// The node reading ONNX value `name`, if it is the only reader (graph outputs count as
    /// readers).
    pub fn sole_reader(&self, name: &str) -> Option<usize> {
        match self.readers.get(name) {
            Some(1) => self.sole_reader.get(name).copied(),
            _ => None,
        }
    }

    /// Gives tensor `id` the quantization `quant` if it has none (a graph input or constant
    /// that a DequantizeLinear or QLinear op reads); fails if it has different parameters.
    /// Layout ops (TRANSPOSE, RESHAPE) between an unquantized integer input and `id` take the
    /// parameters too, since they keep their input's.
    pub fn set_quant(&mut self, id: TensorId, quant: Quant) -> Result<(), String> {
        let t = self.graph.tensor_mut(id);
        match &t.ty.quant {
            None => t.ty.quant = Some(quant.clone()),
            Some(q) if *q == quant => return Ok(()),
            Some(q) => {
                return Err(format!(
                    "{:?} is read with quantization {quant:?} but already has {q:?}",
                    t.name
                ))
            }
        }
        let layout_source = self.graph.producer(id).and_then(|op| {
            let n = self.graph.node(op);
            matches!(n.op, Op::Transpose { .. } | Op::Reshape)
                .then_some(n.inputs[0])
                .flatten()
        });
        match (layout_source, &quant) {
            (Some(source), Quant::PerTensor { .. }) => self.set_quant(source, quant),
            _ => Ok(()),
        }
    }
}
