//! The ONNX importer: a `.onnx` protobuf to a verified [`Graph`].
//!
//! Every ONNX value keeps ONNX's meaning in the imported graph: a convolution or pooling
//! reads NCHW, so the importer puts the NCHW→NHWC transpose minnow's kernels need in front of
//! it and the way back after it, and the graph rewriter's layout rules then sink those
//! transposes through element-wise ops and cancel the pairs that meet (see
//! `minnow_passes::graph::rules`). Weights are transposed here, once, as constants.
//!
//! Quantized models import in both of ONNX's forms: QLinearConv and QLinearMatMul become
//! quantized minnow ops directly; QuantizeLinear and DequantizeLinear become QUANTIZE and
//! DEQUANTIZE, and `minnow_passes::qdq::QdqFolder` folds the pairs around float ops into
//! integer ops.
//!
//! Weights, shapes, pads and quantization parameters must be constants (initializers or
//! Constant nodes): minnow compiles them into the program. [`ImportOptions::constants`] turns
//! graph inputs into constants for models (such as the ONNX backend tests) that feed them as
//! inputs. Symbolic dimensions, unsupported operators and unsupported attributes are errors
//! that name the node.
//!
//! ```
//! use minnow_ir::import::onnx::{self, proto};
//! use prost::Message;
//!
//! // y = Relu(x) for a 1x4 float tensor, built with the generated protobuf types.
//! let value = |name: &str| proto::ValueInfoProto {
//!     name: Some(name.into()),
//!     r#type: Some(proto::TypeProto {
//!         value: Some(proto::type_proto::Value::TensorType(proto::type_proto::Tensor {
//!             elem_type: Some(1),
//!             shape: Some(proto::TensorShapeProto {
//!                 dim: [1, 4]
//!                     .iter()
//!                     .map(|d| proto::tensor_shape_proto::Dimension {
//!                         value: Some(proto::tensor_shape_proto::dimension::Value::DimValue(*d)),
//!                         denotation: None,
//!                     })
//!                     .collect(),
//!             }),
//!         })),
//!         denotation: None,
//!     }),
//!     doc_string: None,
//! };
//! let model = proto::ModelProto {
//!     ir_version: Some(8),
//!     opset_import: vec![proto::OperatorSetIdProto { domain: None, version: Some(17) }],
//!     graph: Some(proto::GraphProto {
//!         node: vec![proto::NodeProto {
//!             input: vec!["x".into()],
//!             output: vec!["y".into()],
//!             op_type: Some("Relu".into()),
//!             ..Default::default()
//!         }],
//!         input: vec![value("x")],
//!         output: vec![value("y")],
//!         ..Default::default()
//!     }),
//!     ..Default::default()
//! };
//! let graph = onnx::import(&model.encode_to_vec(), "relu.onnx").unwrap();
//! assert_eq!(graph.op_count(), 1);
//! ```

mod attrs;
mod conv;
mod cx;
mod elementwise;
mod matmul;
mod pool;
pub mod proto;
mod quant;
mod shape;
mod window;

use crate::error::Error;
use crate::graph::Graph;
use cx::ImportCx;
use prost::Message;
use std::collections::HashMap;

/// The operators the importer accepts, by ONNX name (default domain).
pub const SUPPORTED_OPS: &[&str] = &[
    "Add",
    "AveragePool",
    "BatchNormalization",
    "Clip",
    "Concat",
    "Constant",
    "Conv",
    "DequantizeLinear",
    "Div",
    "Flatten",
    "Gemm",
    "GlobalAveragePool",
    "Identity",
    "MatMul",
    "MaxPool",
    "Mul",
    "Pad",
    "QLinearConv",
    "QLinearMatMul",
    "QuantizeLinear",
    "Relu",
    "Reshape",
    "Sigmoid",
    "Softmax",
    "Squeeze",
    "Sub",
    "Tanh",
    "Transpose",
    "Unsqueeze",
];

/// The oldest default-domain opset the importer reads.
pub const MIN_OPSET: i64 = 10;
/// The newest default-domain opset the importer reads (that of onnx 1.23).
pub const MAX_OPSET: i64 = 28;

/// How to import.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Graph inputs to compile in as constants, by name: serialized `TensorProto`s (the
    /// `input_<i>.pb` files of ONNX test data). An input listed here becomes a constant only
    /// where an operator needs a constant (a weight, a shape, a pad amount); elsewhere it stays
    /// an input.
    pub constants: HashMap<String, Vec<u8>>,
}

/// Imports an ONNX model from its bytes. `name` names the graph and appears in errors.
pub fn import(bytes: &[u8], name: &str) -> Result<Graph, Error> {
    import_with(bytes, name, &ImportOptions::default())
}

/// Imports an ONNX model with `options`.
pub fn import_with(bytes: &[u8], name: &str, options: &ImportOptions) -> Result<Graph, Error> {
    let malformed = |reason: String| Error::Malformed {
        path: name.to_string(),
        format: "ONNX",
        reason,
    };
    if bytes.is_empty() {
        return Err(malformed("the file is empty".into()));
    }
    let model = proto::ModelProto::decode(bytes).map_err(|e| {
        malformed(format!(
            "{e} (the file is truncated or corrupt, or not an ONNX model)"
        ))
    })?;
    let graph_proto = model
        .graph
        .as_ref()
        .ok_or_else(|| malformed("the model has no graph".into()))?;
    let opset = default_opset(&model).map_err(malformed)?;
    let mut constants = HashMap::new();
    for (input, bytes) in &options.constants {
        let tensor = proto::TensorProto::decode(bytes.as_slice())
            .map_err(|e| malformed(format!("the constant for input {input:?}: {e}")))?;
        constants.insert(input.clone(), tensor);
    }
    let graph_name = std::path::Path::new(name)
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty())
        .unwrap_or("model");
    let mut cx = ImportCx::new(name, opset, Graph::new(graph_name), constants, graph_proto);
    cx.import_graph()?;
    let graph = cx.finish()?;
    graph.verify().map_err(|e| malformed(e.to_string()))?;
    Ok(graph)
}

/// The version of the default (`""` or `ai.onnx`) operator set, checked against the range the
/// importer reads.
fn default_opset(model: &proto::ModelProto) -> Result<i64, String> {
    let version = model
        .opset_import
        .iter()
        .find(|o| matches!(o.domain(), "" | "ai.onnx"))
        .map(|o| o.version())
        .ok_or("the model imports no default-domain operator set")?;
    if !(MIN_OPSET..=MAX_OPSET).contains(&version) {
        return Err(format!(
            "opset {version} is outside the opsets minnow reads ({MIN_OPSET} to {MAX_OPSET}): \
             convert it with `onnx.version_converter.convert_version(model, 17)`"
        ));
    }
    Ok(version)
}

/// Whether `bytes` look like an ONNX model rather than a TFLite one (which has `TFL3` at byte
/// 4): what the CLI and the library use to pick an importer.
pub fn looks_like_onnx(bytes: &[u8]) -> bool {
    !(bytes.len() >= 8 && &bytes[4..8] == b"TFL3")
        && proto::ModelProto::decode(bytes).is_ok_and(|m| m.graph.is_some())
}

/// A serialized `TensorProto` (an ONNX test-data `.pb` file) as its name, type and
/// little-endian bytes.
pub fn decode_tensor(bytes: &[u8]) -> Result<(String, crate::types::TensorType, Vec<u8>), Error> {
    let malformed = |reason: String| Error::Malformed {
        path: "<tensor>".into(),
        format: "ONNX TensorProto",
        reason,
    };
    let t = proto::TensorProto::decode(bytes).map_err(|e| malformed(e.to_string()))?;
    let (ty, data) = proto::tensor_data(&t).map_err(malformed)?;
    Ok((t.name().to_string(), ty, data))
}

/// The names of a model's graph inputs in order, initializers excluded: what
/// [`ImportOptions::constants`] and the test data's `input_<i>.pb` files refer to.
pub fn input_names(bytes: &[u8]) -> Result<Vec<String>, Error> {
    let model = proto::ModelProto::decode(bytes).map_err(|e| Error::Malformed {
        path: "<bytes>".into(),
        format: "ONNX",
        reason: e.to_string(),
    })?;
    let graph = model.graph.unwrap_or_default();
    let initializers: std::collections::HashSet<&str> =
        graph.initializer.iter().map(|t| t.name()).collect();
    Ok(graph
        .input
        .iter()
        .map(|v| v.name())
        .filter(|n| !initializers.contains(n))
        .map(str::to_string)
        .collect())
}
