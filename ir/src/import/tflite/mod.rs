//! The TFLite importer: a `.tflite` flatbuffer to a verified [`Graph`].
//!
//! The buffer is verified as a whole before anything is read ([`schema::root`]), so a truncated
//! or corrupted file is an error, never a panic or an out-of-bounds read. Tensors are converted
//! when an operator or the graph's signature first refers to them, so unused tensors of exotic
//! types do not stop a model from loading. Operators are translated in [`ops`]; anything outside
//! minnow's operator set is refused with its name and index.

mod ops;
pub mod schema;

use crate::error::Error;
use crate::graph::{Graph, Tensor, TensorId, TensorKind};
use crate::types::{DType, Quant, TensorType};
use std::collections::HashMap;

/// The operators the importer accepts, by TFLite builtin name.
pub const SUPPORTED_OPS: &[&str] = &[
    "ADD",
    "AVERAGE_POOL_2D",
    "CONCATENATION",
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "DEQUANTIZE",
    "FULLY_CONNECTED",
    "LOGISTIC",
    "MAX_POOL_2D",
    "MEAN",
    "MUL",
    "PAD",
    "QUANTIZE",
    "RELU",
    "RELU6",
    "RESHAPE",
    "SOFTMAX",
    "SVDF",
    "TANH",
    "TRANSPOSE",
];

/// The largest tensor the importer accepts (1 GiB): anything larger is a corrupt shape on a
/// microcontroller model.
pub const MAX_TENSOR_BYTES: usize = 1 << 30;

/// Imports a TFLite model from its bytes. `name` names the graph and appears in errors (pass the
/// file path or the model's name).
pub fn import(bytes: &[u8], name: &str) -> Result<Graph, Error> {
    let malformed = |reason: String| Error::Malformed {
        path: name.to_string(),
        format: "TFLite",
        reason,
    };
    if bytes.is_empty() {
        return Err(malformed("the file is empty".into()));
    }
    if bytes.len() < 8 {
        return Err(malformed(format!(
            "the file is only {} bytes long (truncated?)",
            bytes.len()
        )));
    }
    if &bytes[4..8] != b"TFL3" {
        return Err(malformed(
            "the file lacks the TFLite identifier \"TFL3\" at byte 4; is this a .tflite model?"
                .into(),
        ));
    }
    let model = schema::root(bytes)
        .map_err(|e| malformed(format!("{e} (the file is truncated or corrupt)")))?;
    let subgraph = model
        .subgraphs()
        .filter(|s| !s.is_empty())
        .map(|s| s.get(0))
        .ok_or_else(|| malformed("the model has no subgraph".into()))?;
    let graph_name = std::path::Path::new(name)
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty())
        .unwrap_or("model");
    let mut cx = ImportCx {
        path: name,
        bytes,
        model,
        subgraph,
        graph: Graph::new(graph_name),
        tensors: HashMap::new(),
    };
    cx.import_signature(true)?;
    cx.import_operators()?;
    cx.import_signature(false)?;
    cx.graph.verify().map_err(|e| malformed(e.to_string()))?;
    Ok(cx.graph)
}

/// State of one import: the verified file, and the tensors converted so far.
pub(crate) struct ImportCx<'a> {
    path: &'a str,
    bytes: &'a [u8],
    model: schema::Model<'a>,
    subgraph: schema::SubGraph<'a>,
    graph: Graph,
    /// TFLite tensor index → minnow tensor.
    tensors: HashMap<usize, TensorId>,
}

impl<'a> ImportCx<'a> {
    fn malformed(&self, reason: String) -> Error {
        Error::Malformed {
            path: self.path.to_string(),
            format: "TFLite",
            reason,
        }
    }

    /// Converts the graph's inputs (`inputs == true`) or outputs.
    fn import_signature(&mut self, inputs: bool) -> Result<(), Error> {
        let list = if inputs {
            self.subgraph.inputs()
        } else {
            self.subgraph.outputs()
        };
        for index in list.iter().flat_map(|v| v.iter()) {
            let id = self
                .tensor(index, None)?
                .ok_or_else(|| self.malformed("a graph input or output is -1".into()))?;
            if inputs {
                if self.graph.tensor(id).kind != TensorKind::Activation {
                    return Err(self.malformed(format!("graph input {index} is a constant")));
                }
                self.graph.inputs.push(id);
            } else {
                self.graph.outputs.push(id);
            }
        }
        Ok(())
    }

    /// The minnow tensor for TFLite tensor `index` (`-1` means an omitted operand), converting it
    /// on first use. `op` names the operator asking, for error messages.
    pub(crate) fn tensor(
        &mut self,
        index: i32,
        op: Option<(usize, &str)>,
    ) -> Result<Option<TensorId>, Error> {
        if index < 0 {
            return Ok(None);
        }
        let index = index as usize;
        if let Some(id) = self.tensors.get(&index) {
            return Ok(Some(*id));
        }
        let tensors = self
            .subgraph
            .tensors()
            .ok_or_else(|| self.malformed("the subgraph has no tensors".into()))?;
        if index >= tensors.len() {
            return Err(self.malformed(format!(
                "tensor index {index} is out of range ({} tensors)",
                tensors.len()
            )));
        }
        let t = tensors.get(index);
        let name = t.name().unwrap_or("").to_string();
        let unsupported = |reason: String| self.unsupported(op, reason);
        let dtype = dtype(t.tensor_type()).ok_or_else(|| {
            unsupported(format!(
                "tensor {index} \"{name}\" has type {}, which minnow does not support",
                type_name(t.tensor_type())
            ))
        })?;
        if t.sparsity().is_some() {
            return Err(unsupported(format!(
                "tensor {index} \"{name}\" is sparse; densify the model first"
            )));
        }
        let shape = self.static_shape(&t, dtype, (index, &name), op)?;
        let quant = self.quantization(&t, &shape, &name)?;
        let ty = TensorType {
            shape,
            dtype,
            quant,
        };
        let data = self.buffer(t.buffer() as usize, &name)?;
        if let Some(d) = &data {
            if d.len() != ty.bytes() {
                return Err(self.malformed(format!(
                    "tensor {index} \"{name}\" of type {ty} has {} bytes of data, expected {}",
                    d.len(),
                    ty.bytes()
                )));
            }
        }
        let kind = match (t.is_variable(), &data) {
            (true, _) => TensorKind::State,
            (false, Some(_)) => TensorKind::Constant,
            (false, None) => TensorKind::Activation,
        };
        let id = self.graph.push_tensor(Tensor {
            name,
            ty,
            kind,
            data,
        });
        self.tensors.insert(index, id);
        Ok(Some(id))
    }

    /// An error for a tensor minnow cannot take: unsupported by `op` (index, name), or a
    /// malformed model if no op is known.
    fn unsupported(&self, op: Option<(usize, &str)>, reason: String) -> Error {
        match op {
            Some((i, op)) => Error::UnsupportedUse {
                path: self.path.to_string(),
                op: op.to_string(),
                index: i,
                reason,
            },
            None => self.malformed(reason),
        }
    }

    /// The tensor's shape, refused if a dimension is dynamic or the tensor is implausibly
    /// large.
    fn static_shape(
        &self,
        t: &schema::Tensor<'a>,
        dtype: DType,
        (index, name): (usize, &str),
        op: Option<(usize, &str)>,
    ) -> Result<Vec<usize>, Error> {
        let mut shape = Vec::new();
        for d in t.shape().iter().flat_map(|v| v.iter()) {
            if d < 0 {
                return Err(self.unsupported(
                    op,
                    format!("tensor {index} \"{name}\" has a dynamic dimension; minnow needs static shapes"),
                ));
            }
            shape.push(d as usize);
        }
        let too_big = shape
            .iter()
            .try_fold(dtype.size(), |acc, d| acc.checked_mul(*d))
            .is_none_or(|b| b > MAX_TENSOR_BYTES);
        if too_big {
            return Err(self.malformed(format!("tensor {index} \"{name}\" has shape {shape:?}, larger than {MAX_TENSOR_BYTES} bytes")));
        }
        Ok(shape)
    }

    fn quantization(
        &self,
        t: &schema::Tensor<'a>,
        shape: &[usize],
        name: &str,
    ) -> Result<Option<Quant>, Error> {
        let Some(q) = t.quantization() else {
            return Ok(None);
        };
        let scales: Vec<f32> = q.scale().map(|v| v.iter().collect()).unwrap_or_default();
        if scales.is_empty() {
            return Ok(None);
        }
        let zps: Vec<i64> = q
            .zero_point()
            .map(|v| v.iter().collect())
            .unwrap_or_default();
        let zero_points: Vec<i32> = match zps.len() {
            0 => vec![0; scales.len()],
            n if n == scales.len() => zps.iter().map(|z| *z as i32).collect(),
            n => {
                return Err(self.malformed(format!(
                    "tensor \"{name}\" has {} scales but {n} zero points",
                    scales.len()
                )))
            }
        };
        if scales.len() == 1 {
            return Ok(Some(Quant::PerTensor {
                scale: scales[0],
                zero_point: zero_points[0],
            }));
        }
        let axis = q.quantized_dimension();
        if axis < 0 || axis as usize >= shape.len() || shape[axis as usize] != scales.len() {
            return Err(self.malformed(format!(
                "tensor \"{name}\" has {} scales along dimension {axis} of shape {shape:?}",
                scales.len()
            )));
        }
        Ok(Some(Quant::PerChannel {
            scales,
            zero_points,
            axis: axis as usize,
        }))
    }

    /// The bytes of buffer `index`, or `None` for an empty buffer (an activation).
    fn buffer(&self, index: usize, name: &str) -> Result<Option<Vec<u8>>, Error> {
        if index == 0 {
            return Ok(None);
        }
        let buffers = self
            .model
            .buffers()
            .ok_or_else(|| self.malformed("the model has no buffer table".into()))?;
        if index >= buffers.len() {
            return Err(self.malformed(format!(
                "tensor \"{name}\" uses buffer {index}, but there are {}",
                buffers.len()
            )));
        }
        let b = buffers.get(index);
        if let Some(data) = b.data() {
            if !data.is_empty() {
                return Ok(Some(data.bytes().to_vec()));
            }
        }
        // Models over 2 GB keep buffers after the flatbuffer, addressed by offset and size.
        let (offset, size) = (b.offset(), b.size());
        if offset > 1 {
            let end = offset
                .checked_add(size)
                .filter(|e| *e <= self.bytes.len() as u64);
            let end = end.ok_or_else(|| {
                self.malformed(format!(
                    "buffer {index} at offset {offset}, size {size} runs past the end of the file"
                ))
            })?;
            return Ok(Some(self.bytes[offset as usize..end as usize].to_vec()));
        }
        Ok(None)
    }
}

/// minnow's element type for a TFLite `TensorType` code.
fn dtype(code: i8) -> Option<DType> {
    Some(match code {
        0 => DType::F32,
        2 => DType::I32,
        3 => DType::U8,
        4 => DType::I64,
        7 => DType::I16,
        9 => DType::I8,
        _ => return None,
    })
}

/// The schema's name of a TFLite `TensorType` code, for messages.
fn type_name(code: i8) -> String {
    const NAMES: [&str; 21] = [
        "FLOAT32",
        "FLOAT16",
        "INT32",
        "UINT8",
        "INT64",
        "STRING",
        "BOOL",
        "INT16",
        "COMPLEX64",
        "INT8",
        "FLOAT64",
        "COMPLEX128",
        "UINT64",
        "RESOURCE",
        "VARIANT",
        "UINT32",
        "UINT16",
        "INT4",
        "BFLOAT16",
        "INT2",
        "UINT4",
    ];
    NAMES
        .get(code as usize)
        .map_or_else(|| format!("type code {code}"), |n| n.to_string())
}
