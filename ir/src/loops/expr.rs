//! Pure expressions of the loop IR and the helpers that build them.
//!
//! Arithmetic is defined on `i32`, `i64` and `f32` only; narrow integers are widened by a
//! [`Expr::cast`] first. Integer arithmetic wraps at the type's width (what the reference
//! kernels' `int32_t` arithmetic does on every target minnow supports); division truncates
//! toward zero and `>>` is arithmetic, as in C.

use super::{BufId, Intrinsic, ScalarType, VarId};
use std::ops;

/// A unary operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnOp {
    /// Arithmetic negation.
    Neg,
    /// Logical negation of a `bool`.
    Not,
}

/// A binary operator. Operands have one type; comparisons give `bool`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`, truncating toward zero for integers.
    Div,
    /// `%`, with the sign of the dividend.
    Rem,
    /// The smaller operand.
    Min,
    /// The larger operand.
    Max,
    /// `<<` (integers; the shift amount is in `0..width`).
    Shl,
    /// Arithmetic `>>`.
    Shr,
    /// Bitwise and.
    BitAnd,
    /// Bitwise or.
    BitOr,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// Logical and of `bool`s.
    And,
    /// Logical or of `bool`s.
    Or,
}

impl BinOp {
    /// Whether the result is a `bool` computed from two operands of another type.
    pub fn is_comparison(self) -> bool {
        matches!(self, BinOp::Lt | BinOp::Le | BinOp::Eq | BinOp::Ne)
    }

    /// Whether operands and result are `bool`.
    pub fn is_logical(self) -> bool {
        matches!(self, BinOp::And | BinOp::Or)
    }

    /// The operator's symbol in the text form (`min`/`max` are printed as calls).
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
            BinOp::Min => "min",
            BinOp::Max => "max",
            BinOp::Shl => "<<",
            BinOp::Shr => ">>",
            BinOp::BitAnd => "&",
            BinOp::BitOr => "|",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::And => "&&",
            BinOp::Or => "||",
        }
    }
}

/// A pure expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// An integer or `bool` constant of type `ty` (the value fits the type).
    Int {
        /// The value.
        value: i64,
        /// Its type.
        ty: ScalarType,
    },
    /// A float constant.
    Float(f32),
    /// The value of a variable.
    Var(VarId),
    /// `buf[index]`.
    Load {
        /// Source buffer.
        buf: BufId,
        /// Element index (`i32`).
        index: Box<Expr>,
    },
    /// Four consecutive `i8` elements `buf[index..index + 4]` as one little-endian `i32` (the
    /// operand of the SIMD intrinsics).
    LoadWord {
        /// Source buffer (of `i8`).
        buf: BufId,
        /// Index of the first element (`i32`).
        index: Box<Expr>,
    },
    /// A unary operation.
    Unary {
        /// The operator.
        op: UnOp,
        /// The operand.
        arg: Box<Expr>,
    },
    /// A binary operation.
    Binary {
        /// The operator.
        op: BinOp,
        /// Left operand.
        lhs: Box<Expr>,
        /// Right operand.
        rhs: Box<Expr>,
    },
    /// Conversion to `ty`: integer truncation or sign extension, int to float, or float to int
    /// truncating toward zero.
    Cast {
        /// The target type.
        ty: ScalarType,
        /// The converted value.
        arg: Box<Expr>,
    },
    /// `cond ? then : otherwise`; both arms are evaluated (they are pure).
    Select {
        /// A `bool`.
        cond: Box<Expr>,
        /// Value when `cond` holds.
        then: Box<Expr>,
        /// Value otherwise.
        otherwise: Box<Expr>,
    },
    /// A call of a target intrinsic.
    Call {
        /// The intrinsic.
        intrinsic: Intrinsic,
        /// Its arguments, typed as [`Intrinsic::signature`] says.
        args: Vec<Expr>,
    },
}

impl Expr {
    /// An `i32` constant.
    pub fn i32(v: i32) -> Expr {
        Expr::Int {
            value: v as i64,
            ty: ScalarType::I32,
        }
    }

    /// An `i32` constant from an index or a size. Panics above `i32::MAX`: lowering checks
    /// tensor sizes before it builds expressions.
    pub fn idx(v: usize) -> Expr {
        Expr::i32(i32::try_from(v).expect("index fits i32"))
    }

    /// An `i64` constant.
    pub fn i64(v: i64) -> Expr {
        Expr::Int {
            value: v,
            ty: ScalarType::I64,
        }
    }

    /// A `bool` constant.
    pub fn bool(v: bool) -> Expr {
        Expr::Int {
            value: v as i64,
            ty: ScalarType::Bool,
        }
    }

    /// An `f32` constant.
    pub fn f32(v: f32) -> Expr {
        Expr::Float(v)
    }

    /// `buf[index]`.
    pub fn load(buf: BufId, index: Expr) -> Expr {
        Expr::Load {
            buf,
            index: Box::new(index),
        }
    }

    /// `buf[index..index + 4]` packed into an `i32`.
    pub fn load_word(buf: BufId, index: Expr) -> Expr {
        Expr::LoadWord {
            buf,
            index: Box::new(index),
        }
    }

    /// `self` converted to `ty`.
    pub fn cast(self, ty: ScalarType) -> Expr {
        Expr::Cast {
            ty,
            arg: Box::new(self),
        }
    }

    /// A binary operation, simplified where that is exact: integer constants fold (wrapping
    /// at their type's width), and `x + 0`, `x - 0`, `x * 1`, `x / 1` on integers are `x`.
    pub fn binary(op: BinOp, lhs: Expr, rhs: Expr) -> Expr {
        if let (Expr::Int { value: a, ty }, Expr::Int { value: b, ty: rty }) = (&lhs, &rhs) {
            if let Some(value) = fold(op, *a, *b, *ty).filter(|_| ty == rty) {
                return value;
            }
        }
        match (op, rhs.as_int(), lhs.as_int()) {
            (BinOp::Add | BinOp::Sub, Some(0), _) | (BinOp::Mul | BinOp::Div, Some(1), _) => {
                return lhs
            }
            (BinOp::Add, _, Some(0)) | (BinOp::Mul, _, Some(1)) if is_int_constant(&lhs) => {
                return rhs
            }
            _ => {}
        }
        Expr::Binary {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
        }
    }

    /// The smaller of `self` and `other`.
    pub fn min(self, other: Expr) -> Expr {
        Expr::binary(BinOp::Min, self, other)
    }

    /// The larger of `self` and `other`.
    pub fn max(self, other: Expr) -> Expr {
        Expr::binary(BinOp::Max, self, other)
    }

    /// `self` clamped to `[lo, hi]`.
    pub fn clamp(self, lo: Expr, hi: Expr) -> Expr {
        self.max(lo).min(hi)
    }

    /// `self < other`.
    pub fn lt(self, other: Expr) -> Expr {
        Expr::binary(BinOp::Lt, self, other)
    }

    /// `self <= other`.
    pub fn le(self, other: Expr) -> Expr {
        Expr::binary(BinOp::Le, self, other)
    }

    /// `self == other`.
    pub fn eq(self, other: Expr) -> Expr {
        Expr::binary(BinOp::Eq, self, other)
    }

    /// `self && other`.
    pub fn and(self, other: Expr) -> Expr {
        Expr::binary(BinOp::And, self, other)
    }

    /// `cond ? then : otherwise`.
    pub fn select(cond: Expr, then: Expr, otherwise: Expr) -> Expr {
        Expr::Select {
            cond: Box::new(cond),
            then: Box::new(then),
            otherwise: Box::new(otherwise),
        }
    }

    /// A call of `intrinsic`.
    pub fn call(intrinsic: Intrinsic, args: Vec<Expr>) -> Expr {
        Expr::Call { intrinsic, args }
    }

    /// The operands of this expression, in order (a load's index, a call's arguments).
    pub fn children(&self) -> Vec<&Expr> {
        match self {
            Expr::Int { .. } | Expr::Float(_) | Expr::Var(_) => vec![],
            Expr::Load { index, .. } | Expr::LoadWord { index, .. } => vec![index],
            Expr::Unary { arg, .. } | Expr::Cast { arg, .. } => vec![arg],
            Expr::Binary { lhs, rhs, .. } => vec![lhs, rhs],
            Expr::Select {
                cond,
                then,
                otherwise,
            } => vec![cond, then, otherwise],
            Expr::Call { args, .. } => args.iter().collect(),
        }
    }

    /// The operands of this expression, in order, to rewrite in place.
    pub fn children_mut(&mut self) -> Vec<&mut Expr> {
        match self {
            Expr::Int { .. } | Expr::Float(_) | Expr::Var(_) => vec![],
            Expr::Load { index, .. } | Expr::LoadWord { index, .. } => vec![index],
            Expr::Unary { arg, .. } | Expr::Cast { arg, .. } => vec![arg],
            Expr::Binary { lhs, rhs, .. } => vec![lhs, rhs],
            Expr::Select {
                cond,
                then,
                otherwise,
            } => vec![cond, then, otherwise],
            Expr::Call { args, .. } => args.iter_mut().collect(),
        }
    }

    /// The value if this is an integer constant.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Expr::Int { value, .. } => Some(*value),
            _ => None,
        }
    }
}

fn is_int_constant(e: &Expr) -> bool {
    matches!(e, Expr::Int { ty, .. } if ty.is_int())
}

/// `a op b` for two constants of type `ty`, when it is an arithmetic operation that cannot fail.
fn fold(op: BinOp, a: i64, b: i64, ty: ScalarType) -> Option<Expr> {
    if !ty.is_arithmetic() || !ty.is_int() {
        return None;
    }
    let value = match op {
        BinOp::Add => a.wrapping_add(b),
        BinOp::Sub => a.wrapping_sub(b),
        BinOp::Mul => a.wrapping_mul(b),
        BinOp::Min => a.min(b),
        BinOp::Max => a.max(b),
        _ => return None,
    };
    Some(Expr::Int {
        value: ty.wrap(value),
        ty,
    })
}

macro_rules! binary_operator {
    ($trait:ident, $method:ident, $op:ident) => {
        impl ops::$trait for Expr {
            type Output = Expr;
            fn $method(self, rhs: Expr) -> Expr {
                Expr::binary(BinOp::$op, self, rhs)
            }
        }
    };
}

binary_operator!(Add, add, Add);
binary_operator!(Sub, sub, Sub);
binary_operator!(Mul, mul, Mul);
binary_operator!(Div, div, Div);
binary_operator!(Rem, rem, Rem);
binary_operator!(Shl, shl, Shl);
binary_operator!(Shr, shr, Shr);
binary_operator!(BitAnd, bitand, BitAnd);
binary_operator!(BitOr, bitor, BitOr);

impl ops::Neg for Expr {
    type Output = Expr;
    fn neg(self) -> Expr {
        Expr::Unary {
            op: UnOp::Neg,
            arg: Box::new(self),
        }
    }
}
