//! Code generators: the AOT C emitter, the `no_std` Rust emitter and the Cranelift host JIT.
//!
//! Every backend consumes the scheduled loop IR and emits the integer arithmetic of
//! `minnow_ir::fixedpoint` exactly. Nothing lives here yet (issues 3 and 7).
