//! Code generators: the AOT C emitter, the `no_std` Rust emitter and the Cranelift host JIT.
//!
//! Every backend consumes a lowered (and scheduled) [`minnow_ir::loops::Program`] with its
//! [`minnow_passes::memory::ArenaPlan`], and emits the integer arithmetic of
//! `minnow_ir::fixedpoint` exactly: [`c`] (C99 for every target) and [`rust`] (a `no_std`
//! crate). The Cranelift JIT arrives with issue 7.

pub mod c;
pub mod rust;
