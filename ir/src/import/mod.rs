//! Importers: model files to [`crate::Graph`]s.
//!
//! Every importer validates as it reads and returns [`crate::Error`] for anything it cannot
//! represent (a malformed file, an unsupported operator or option); none panics on bad input.

pub mod onnx;
pub mod tflite;

use crate::error::Error;
use crate::graph::Graph;

/// Imports a model from its bytes, choosing the importer by content: TFLite (the `TFL3`
/// identifier at byte 4) or ONNX (a protobuf `ModelProto` with a graph). `name` names the graph
/// and appears in errors.
pub fn load(bytes: &[u8], name: &str) -> Result<Graph, Error> {
    if bytes.len() >= 8 && &bytes[4..8] == b"TFL3" {
        return tflite::import(bytes, name);
    }
    if onnx::looks_like_onnx(bytes) || name.ends_with(".onnx") {
        return onnx::import(bytes, name);
    }
    if name.ends_with(".tflite") {
        return tflite::import(bytes, name);
    }
    Err(Error::Malformed {
        path: name.to_string(),
        format: "TFLite or ONNX",
        reason: "the file is neither a TFLite flatbuffer (no \"TFL3\" identifier at byte 4) nor \
                 an ONNX protobuf with a graph"
            .into(),
    })
}
