//! SIMD for multiply-accumulate tiles: an unrolled loop whose body is one store into an
//! accumulator tile, `acc[v] = acc[v] + x * w[.. + v]`, runs [`LANES`] iterations at a time
//! as `i32x4` operations (SSE4.1 on x86-64, NEON on AArch64).
//!
//! This is the shape every convolution and dense layer's inner loop takes once scheduled: the
//! output channels of a register tile are the unrolled loop, the weights of consecutive
//! channels are consecutive bytes, and the input value is the same for every channel. The
//! loop vectorizes when each operand either does not depend on the counter (it is computed
//! once and broadcast) or is a unit-stride load of `i8` or `i32` elements, or the tile itself
//! at the stored index, and every operation is an `i32` sum, difference, product, minimum or
//! maximum; these wrap lane by lane exactly as the scalar ones do, so the results are
//! bit-identical. An SMLAD of a broadcast word and words of 16-bit pairs at a stride of one
//! word ([`Lanes::Pairs`](minnow_ir::loops::reduction::Lanes::Pairs)) is one `pmaddwd` and
//! an add. Anything else is unrolled as scalars.

use super::func::Translator;
use super::registers::{constant_index, Registers};
use cranelift_codegen::ir::{types, Endianness, InstBuilder, MemFlagsData, Value};
use cranelift_frontend::Variable;
use minnow_ir::loops::visit::{walk_expr, Visitor};
use minnow_ir::loops::{BinOp, BufId, Expr, Intrinsic, ScalarType, Stmt, VarId};

/// Elements per vector: `i32x4`.
pub(super) const LANES: usize = 4;

/// Whether this host has the 128-bit integer operations the vector loops use.
pub(super) fn host_simd() -> bool {
    minnow_targets::host_simd128()
}

/// The terms of `index`'s outermost sum.
fn terms(index: &Expr) -> Vec<&Expr> {
    match index {
        Expr::Binary {
            op: BinOp::Add,
            lhs,
            rhs,
        } => {
            let mut t = terms(lhs);
            t.extend(terms(rhs));
            t
        }
        _ => vec![index],
    }
}

fn mentions(e: &Expr, var: VarId) -> bool {
    match e {
        Expr::Var(v) => *v == var,
        _ => e.children().into_iter().any(|c| mentions(c, var)),
    }
}

/// `c` where `index` is `c * var` plus terms that do not depend on `var`.
fn stride(index: &Expr, var: VarId) -> Option<i64> {
    let coefficient = |t: &Expr| match t {
        Expr::Var(v) if *v == var => Some(1),
        Expr::Binary {
            op: BinOp::Mul,
            lhs,
            rhs,
        } => match (&**lhs, &**rhs) {
            (Expr::Var(v), c) | (c, Expr::Var(v)) if *v == var => c.as_int(),
            _ => None,
        },
        _ => None,
    };
    let mut found = None;
    for t in terms(index) {
        match coefficient(t) {
            Some(c) if found.is_none() => found = Some(c),
            _ if mentions(t, var) => return None,
            _ => {}
        }
    }
    found
}

/// Whether `index` is `var` plus terms that do not depend on `var`.
pub(super) fn unit_stride(index: &Expr, var: VarId) -> bool {
    stride(index, var) == Some(1)
}

impl Translator<'_, '_> {
    /// Whether the unrolled loop `for var in 0..extent { body }` runs as vectors.
    pub(super) fn vectorizes(&self, var: VarId, extent: usize, body: &[Stmt]) -> bool {
        let [Stmt::Store { buf, index, value }] = body else {
            return false;
        };
        host_simd()
            && extent % LANES == 0
            && (0..extent)
                .step_by(LANES)
                .all(|first| self.tile(*buf, index, var, first).is_some())
            && self.fits(value, var, *buf, index)
    }

    /// The loop of [`Translator::vectorizes`], one vector operation per [`LANES`] iterations.
    pub(super) fn vector_loop(
        &mut self,
        var: VarId,
        extent: usize,
        body: &[Stmt],
    ) -> Result<(), String> {
        let [Stmt::Store { buf, index, value }] = body else {
            return Err(format!("{}: not a vector loop", self.func.name));
        };
        for first in (0..extent).step_by(LANES) {
            self.known.insert(var, first as i64);
            let v = self.vector(value, var)?;
            let tile = self
                .tile(*buf, index, var, first)
                .ok_or_else(|| format!("{}: a vector store left its tile", self.func.name))?;
            self.b.def_var(tile, v);
        }
        self.known.remove(&var);
        Ok(())
    }

    /// The vector variable holding `buf[index]` for `var` = `first..first + LANES`, when `buf`
    /// is a vector register tile and the lanes are one whole vector of it.
    fn tile(&self, buf: BufId, index: &Expr, var: VarId, first: usize) -> Option<Variable> {
        let Some(Registers::Lanes(vectors)) = self.registers.get(&buf) else {
            return None;
        };
        if !unit_stride(index, var) {
            return None;
        }
        let mut known = self.known.clone();
        known.insert(var, first as i64);
        let i = usize::try_from(constant_index(index, &known)?).ok()?;
        (i % LANES == 0).then(|| vectors.get(i / LANES).copied())?
    }

    /// Whether `e` has a vector form in the loop over `var` storing `stored[index]`.
    fn fits(&self, e: &Expr, var: VarId, stored: BufId, index: &Expr) -> bool {
        if !mentions(e, var) {
            // Computed once per vector: it must not read what earlier lanes write.
            return !reads(e, stored);
        }
        match e {
            Expr::Load { buf, index: at } if *buf == stored => **at == *index,
            Expr::Load { buf, index: at } => {
                !self.registers.contains_key(buf)
                    && self.func.buffer(*buf).elem == ScalarType::I32
                    && unit_stride(at, var)
            }
            Expr::Cast {
                ty: ScalarType::I32,
                arg,
            } => match &**arg {
                Expr::Load { buf, index: at } if self.func.buffer(*buf).elem == ScalarType::I8 => {
                    !self.registers.contains_key(buf) && unit_stride(at, var)
                }
                _ => self.ty(arg) == ScalarType::I32 && self.fits(arg, var, stored, index),
            },
            // Words of 16-bit pairs, one per lane.
            Expr::LoadWord { buf, index: at } => {
                !self.registers.contains_key(buf)
                    && !self.widened.contains(buf)
                    && stride(at, var) == Some(4)
            }
            Expr::Binary { op, lhs, rhs } => {
                matches!(
                    op,
                    BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Min | BinOp::Max
                ) && self.ty(lhs) == ScalarType::I32
                    && self.fits(lhs, var, stored, index)
                    && self.fits(rhs, var, stored, index)
            }
            Expr::Call {
                intrinsic: Intrinsic::Smlad,
                args,
            } => args.iter().all(|a| self.fits(a, var, stored, index)),
            _ => false,
        }
    }

    /// `e` for the lanes `known[var]..+LANES`, as an `i32x4` (checked by [`Self::fits`]).
    fn vector(&mut self, e: &Expr, var: VarId) -> Result<Value, String> {
        if !mentions(e, var) {
            let scalar = self.expr(e)?;
            return Ok(self.b.ins().splat(types::I32X4, scalar));
        }
        let first = self.known[&var] as usize;
        Ok(match e {
            Expr::Load { buf, index } => match self.tile(*buf, index, var, first) {
                Some(tile) => self.b.use_var(tile),
                None => self.vector_load(*buf, index)?,
            },
            Expr::LoadWord { buf, index } => self.vector_load(*buf, index)?,
            Expr::Cast { arg, .. } => match &**arg {
                Expr::Load { buf, index } if self.func.buffer(*buf).elem == ScalarType::I8 => {
                    self.widened_bytes(*buf, index)?
                }
                _ => self.vector(arg, var)?,
            },
            Expr::Binary { op, lhs, rhs } => {
                let (l, r) = (self.vector(lhs, var)?, self.vector(rhs, var)?);
                let ins = self.b.ins();
                match op {
                    BinOp::Add => ins.iadd(l, r),
                    BinOp::Sub => ins.isub(l, r),
                    BinOp::Mul => ins.imul(l, r),
                    BinOp::Min => ins.smin(l, r),
                    _ => ins.smax(l, r),
                }
            }
            Expr::Call {
                intrinsic: Intrinsic::Smlad,
                args,
            } => {
                let [x, w, acc] = &args[..] else {
                    return Err(format!("{}: smlad takes three arguments", self.func.name));
                };
                let (x, w, acc) = (
                    self.vector(x, var)?,
                    self.vector(w, var)?,
                    self.vector(acc, var)?,
                );
                let dot = self.pairwise_dot(x, w);
                self.b.ins().iadd(acc, dot)
            }
            _ => return Err(format!("{}: no vector form", self.func.name)),
        })
    }

    /// Four lanes of `buf` from `buf[index]` on, one `i32x4` load.
    fn vector_load(&mut self, buf: BufId, index: &Expr) -> Result<Value, String> {
        let (addr, offset) = self.address(buf, index)?;
        let flags = self.load_flags(buf, MemFlagsData::new().with_notrap());
        Ok(self.b.ins().load(types::I32X4, flags, addr, offset))
    }

    /// Each lane's two 16-bit halves of `x` times those of `w`, summed: SMLAD without the
    /// accumulator, in the form Cranelift makes one `pmaddwd` of (x86-64).
    fn pairwise_dot(&mut self, x: Value, w: Value) -> Value {
        let little = MemFlagsData::new().with_endianness(Endianness::Little);
        let x = self.b.ins().bitcast(types::I16X8, little, x);
        let w = self.b.ins().bitcast(types::I16X8, little, w);
        let (xl, wl) = (self.b.ins().swiden_low(x), self.b.ins().swiden_low(w));
        let (xh, wh) = (self.b.ins().swiden_high(x), self.b.ins().swiden_high(w));
        let low = self.b.ins().imul(xl, wl);
        let high = self.b.ins().imul(xh, wh);
        self.b.ins().iadd_pairwise(low, high)
    }

    /// Four consecutive `i8` elements from `buf[index]`, sign-extended to `i32x4`.
    fn widened_bytes(&mut self, buf: BufId, index: &Expr) -> Result<Value, String> {
        let (addr, offset) = self.address(buf, index)?;
        let flags = self.load_flags(buf, MemFlagsData::new().with_notrap());
        if self.widened.contains(&buf) {
            return Ok(self.b.ins().load(types::I32X4, flags, addr, offset));
        }
        let word = self.b.ins().load(types::I32, flags, addr, offset);
        let vector = self.b.ins().scalar_to_vector(types::I32X4, word);
        let little = MemFlagsData::new().with_endianness(Endianness::Little);
        let bytes = self.b.ins().bitcast(types::I8X16, little, vector);
        let halves = self.b.ins().swiden_low(bytes);
        Ok(self.b.ins().swiden_low(halves))
    }
}

/// Whether `e` loads from `buf`.
fn reads(e: &Expr, buf: BufId) -> bool {
    struct Reads(BufId, bool);
    impl Visitor for Reads {
        fn visit_expr(&mut self, e: &Expr) {
            if let Expr::Load { buf, .. } | Expr::LoadWord { buf, .. } = e {
                self.1 |= *buf == self.0;
            }
            walk_expr(self, e);
        }
    }
    let mut r = Reads(buf, false);
    r.visit_expr(e);
    r.1
}
