//! The errors the IR crate reports: bad model files, unsupported operators, inconsistent graphs
//! and bad inputs at run time. Each message names the problem and, where there is one, the fix.

use thiserror::Error;

/// Everything that can go wrong while importing, verifying or interpreting a model.
#[derive(Debug, Error)]
pub enum Error {
    /// The file is not a readable model (truncated, corrupt, not this format).
    #[error("{path}: not a valid {format} model: {reason}")]
    Malformed {
        /// Where the model came from (file path or `<bytes>`).
        path: String,
        /// The format that was expected (`TFLite`).
        format: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The model uses an operator minnow does not implement.
    #[error(
        "{path}: operator #{index} is {op}, which minnow does not support yet. Supported: {supported}. \
         Re-export the model without it, or open an issue naming the operator."
    )]
    UnsupportedOp {
        /// Where the model came from.
        path: String,
        /// The operator's name (`SQUARED_DIFFERENCE`, `CUSTOM:MyOp`, ...).
        op: String,
        /// Its index in the model's operator list.
        index: usize,
        /// The list of supported operators.
        supported: String,
    },
    /// The model uses a supported operator in a way minnow does not (a type, an option).
    #[error("{path}: operator #{index} ({op}): {reason}")]
    UnsupportedUse {
        /// Where the model came from.
        path: String,
        /// The operator's name.
        op: String,
        /// Its index in the model's operator list.
        index: usize,
        /// What is not supported.
        reason: String,
    },
    /// The graph breaks an invariant: a shape or dtype that disagrees with its op, a dangling id.
    #[error("invalid graph: {0}")]
    Invalid(String),
    /// A run was given the wrong inputs (count, size).
    #[error("{0}")]
    BadInput(String),
}

impl Error {
    /// An [`Error::Invalid`] with this message.
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::Invalid(msg.into())
    }
}
