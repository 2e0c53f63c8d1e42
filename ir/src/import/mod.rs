//! Importers: model files to [`crate::Graph`]s.
//!
//! Every importer validates as it reads and returns [`crate::Error`] for anything it cannot
//! represent (a malformed file, an unsupported operator or option); none panics on bad input.

pub mod onnx;
pub mod tflite;
