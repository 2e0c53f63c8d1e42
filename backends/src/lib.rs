//! Code generators: the AOT C emitter, the `no_std` Rust emitter and the Cranelift host JIT.
//!
//! Every backend consumes a lowered (and scheduled) [`minnow_ir::loops::Program`] with its
//! [`minnow_passes::memory::ArenaPlan`], and emits the integer arithmetic of
//! `minnow_ir::fixedpoint` exactly. [`c`] is the first; the Rust emitter and the JIT arrive
//! with issue 7.

pub mod c;
