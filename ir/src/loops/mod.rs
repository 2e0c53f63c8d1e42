//! The loop-level IR: functions over flat buffers, with explicit loops, loads and stores.
//!
//! Each op of a [`crate::Graph`] is lowered ([`crate::lower`]) to one [`Func`]: typed buffer
//! parameters (the op's operands, outputs and derived constants such as per-channel
//! multipliers), a body of [`Stmt`]s and pure [`Expr`]essions. Target intrinsics (the
//! fixed-point helpers of [`crate::fixedpoint`], later SIMD instructions) are named calls
//! ([`Intrinsic`]) whose portable definition the [`interp`] evaluates and every backend emits.
//! A whole model is a [`Program`]: its tensors as [`Slot`]s and the [`Step`]s that call one
//! function each.
//!
//! Everything here is plain data. [`Func::verify`] checks scoping and types; [`interp`] runs a
//! function or a program on the host, so a lowered or scheduled function is checked against the
//! graph interpreter before any code is generated; `Display` gives the readable text form
//! (`minnow compile --dump loops`).
//!
//! ```
//! use minnow_ir::loops::{Expr, FuncBuilder, ScalarType, Access};
//! // out[i] = in[i] + 1 over 4 elements.
//! let mut f = FuncBuilder::new("add_one");
//! let input = f.param("input", ScalarType::I32, 4, Access::Read);
//! let output = f.param("output", ScalarType::I32, 4, Access::Write);
//! f.for_loop("i", 4, |f, i| {
//!     let v = Expr::load(input, i.clone()) + Expr::i32(1);
//!     f.store(output, i, v);
//! });
//! let func = f.finish();
//! func.verify().unwrap();
//! assert!(func.to_string().contains("output[i] = (input[i] + 1)"));
//! ```

mod builder;
mod expr;
pub mod interp;
mod intrinsic;
pub mod lag;
mod program;
mod reassociate;
pub mod reduction;
mod reverse;
mod text;
mod verify;
pub mod visit;

pub use builder::FuncBuilder;
pub use expr::{BinOp, Expr, UnOp};
pub use intrinsic::Intrinsic;
pub use program::{ArgPlace, Program, Slot, SlotId, SlotKind, Step, StepArg};
pub use reassociate::IndexReassociation;
pub use reverse::LoopReversal;
pub use verify::VerifyError;

use crate::types::DType;

/// The type of a scalar value: a buffer element, a variable or an expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScalarType {
    /// A truth value (comparisons, conditions).
    Bool,
    /// Signed 8-bit integer.
    I8,
    /// Unsigned 8-bit integer.
    U8,
    /// Signed 16-bit integer.
    I16,
    /// Signed 32-bit integer: indices, accumulators and all integer arithmetic.
    I32,
    /// Signed 64-bit integer: 16x8 accumulators.
    I64,
    /// IEEE 754 single precision.
    F32,
}

impl ScalarType {
    /// The element type that stores a tensor of `dtype`.
    pub fn of(dtype: DType) -> ScalarType {
        match dtype {
            DType::F32 => ScalarType::F32,
            DType::I8 => ScalarType::I8,
            DType::U8 => ScalarType::U8,
            DType::I16 => ScalarType::I16,
            DType::I32 => ScalarType::I32,
            DType::I64 => ScalarType::I64,
        }
    }

    /// Size in bytes of one element in a buffer.
    pub fn size(self) -> usize {
        match self {
            ScalarType::Bool | ScalarType::I8 | ScalarType::U8 => 1,
            ScalarType::I16 => 2,
            ScalarType::I32 | ScalarType::F32 => 4,
            ScalarType::I64 => 8,
        }
    }

    /// Whether values of this type are integers (not floats, not truth values).
    pub fn is_int(self) -> bool {
        !matches!(self, ScalarType::Bool | ScalarType::F32)
    }

    /// Whether arithmetic is defined on this type. Narrow integers are storage types only: they
    /// are widened with a cast before any arithmetic, as C's integer promotion would.
    pub fn is_arithmetic(self) -> bool {
        matches!(self, ScalarType::I32 | ScalarType::I64 | ScalarType::F32)
    }

    /// Wraps an integer to this type's width (two's complement), as a store or a cast does.
    pub fn wrap(self, v: i64) -> i64 {
        match self {
            ScalarType::Bool => (v != 0) as i64,
            ScalarType::I8 => v as i8 as i64,
            ScalarType::U8 => v as u8 as i64,
            ScalarType::I16 => v as i16 as i64,
            ScalarType::I32 => v as i32 as i64,
            ScalarType::I64 | ScalarType::F32 => v,
        }
    }

    /// The short name used in the text form (`i8`, `i32`, `f32`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ScalarType::Bool => "bool",
            ScalarType::I8 => "i8",
            ScalarType::U8 => "u8",
            ScalarType::I16 => "i16",
            ScalarType::I32 => "i32",
            ScalarType::I64 => "i64",
            ScalarType::F32 => "f32",
        }
    }
}

/// A variable of a [`Func`]: a loop counter or a `let` binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VarId(pub u32);

/// A buffer of a [`Func`]: a parameter or a local.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BufId(pub u32);

/// A declared variable.
#[derive(Clone, Debug, PartialEq)]
pub struct Var {
    /// Name in the text form and in generated code (unique within the function).
    pub name: String,
    /// Type of its value.
    pub ty: ScalarType,
}

/// How a function may use a parameter buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read only (inputs, weights, derived constants).
    Read,
    /// Written (and possibly read back): outputs.
    Write,
    /// Read and written, keeping its contents across calls (recurrent state).
    ReadWrite,
}

/// Where a buffer lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BufferKind {
    /// The function's parameter number `index`, bound by the caller.
    Param {
        /// Position in the parameter list.
        index: usize,
        /// What the function does with it.
        access: Access,
    },
    /// A small local array, declared by an [`Stmt::Alloc`] and dead at the end of its block.
    Local,
}

/// A declared buffer: a flat array of `len` elements of `elem`.
#[derive(Clone, Debug, PartialEq)]
pub struct BufferDecl {
    /// Name in the text form and in generated code (unique within the function).
    pub name: String,
    /// Element type.
    pub elem: ScalarType,
    /// Number of elements.
    pub len: usize,
    /// Parameter or local.
    pub kind: BufferKind,
}

/// How the iterations of a loop are executed. All kinds compute the same result; the kind
/// tells the backend how to emit the loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForKind {
    /// One iteration after the other.
    Serial,
    /// Fully unrolled by the backend.
    Unrolled,
    /// Iterations grouped `lanes` at a time into SIMD operations.
    Vectorized {
        /// Iterations per SIMD operation.
        lanes: u32,
    },
}

/// A statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    /// `for var in 0..extent { body }`.
    For {
        /// The counter, an `i32` visible in `body`.
        var: VarId,
        /// Number of iterations.
        extent: usize,
        /// How the backend emits it.
        kind: ForKind,
        /// The loop body.
        body: Vec<Stmt>,
    },
    /// `buf[index] = value` (the value is wrapped to the buffer's element type).
    Store {
        /// Destination.
        buf: BufId,
        /// Element index (`i32`).
        index: Expr,
        /// Stored value, of the buffer's element type.
        value: Expr,
    },
    /// Binds `var` to `value` for the rest of the enclosing block.
    Let {
        /// The bound variable.
        var: VarId,
        /// Its value, of the variable's type.
        value: Expr,
    },
    /// `if cond { then } else { otherwise }`.
    If {
        /// A `bool` expression.
        cond: Expr,
        /// Taken when `cond` holds.
        then: Vec<Stmt>,
        /// Taken otherwise (often empty).
        otherwise: Vec<Stmt>,
    },
    /// Declares the local buffer `buf` for the rest of the enclosing block. Its contents start
    /// undefined: the function must store before it loads.
    Alloc {
        /// A buffer of kind [`BufferKind::Local`].
        buf: BufId,
    },
}

/// A function over buffers: what one lowered op computes.
#[derive(Clone, Debug, PartialEq)]
pub struct Func {
    /// Name, unique within a [`Program`] and a valid C identifier.
    pub name: String,
    /// Every variable, indexed by [`VarId`].
    pub vars: Vec<Var>,
    /// Every buffer (parameters first, in order, then locals), indexed by [`BufId`].
    pub buffers: Vec<BufferDecl>,
    /// The body.
    pub body: Vec<Stmt>,
}

impl Func {
    /// The declaration of `buf`.
    pub fn buffer(&self, buf: BufId) -> &BufferDecl {
        &self.buffers[buf.0 as usize]
    }

    /// The declaration of `var`.
    pub fn var(&self, var: VarId) -> &Var {
        &self.vars[var.0 as usize]
    }

    /// The parameter buffers, in order.
    pub fn params(&self) -> impl Iterator<Item = (BufId, &BufferDecl)> {
        self.buffers
            .iter()
            .enumerate()
            .filter(|(_, b)| matches!(b.kind, BufferKind::Param { .. }))
            .map(|(i, b)| (BufId(i as u32), b))
    }

    /// Number of parameters.
    pub fn param_count(&self) -> usize {
        self.params().count()
    }
}
