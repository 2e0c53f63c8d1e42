//! Code generators: the AOT C emitter, the `no_std` Rust emitter and the Cranelift host JIT.
//!
//! Every backend consumes a lowered (and scheduled) [`minnow_ir::loops::Program`] with its
//! [`minnow_passes::memory::ArenaPlan`], and emits the integer arithmetic of
//! `minnow_ir::fixedpoint` exactly: [`c`] (C99 for every target), [`rust`] (a `no_std` crate)
//! and [`jit`] (Cranelift, for the host).

pub mod c;
pub mod jit;
pub mod rust;
