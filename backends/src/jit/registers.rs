//! Which loops the JIT unrolls and which local buffers it keeps in registers.
//!
//! Schedules mark small loops (an accumulator tile, a kernel row) `Unrolled`; the C backend
//! passes that on as `#pragma GCC unroll` and the C compiler then keeps an accumulator array
//! such as `int32_t acc[4]` in registers. Cranelift does neither, so the JIT does both while
//! translating: an unrolled loop's counter is a known constant in each copy of the body, and a
//! small local buffer whose every access is at an index made only of such constants becomes
//! one Cranelift variable per element (registers, spilled only under pressure) instead of
//! stack memory loaded and stored on every multiply-accumulate.

use minnow_ir::loops::{BinOp, BufId, BufferKind, Expr, ForKind, Func, Stmt, VarId};
use std::collections::{HashMap, HashSet};

/// Iterations up to which the JIT unrolls a loop its schedule marks `Unrolled` or
/// `Vectorized` (longer ones stay loops: the copies would cost more in code than they save).
const MAX_UNROLL: usize = 64;

/// Elements up to which a local buffer may live in registers.
const MAX_REGISTER_ELEMENTS: usize = 32;

/// Whether the JIT emits a loop of this kind and extent as copies of its body.
pub(super) fn unrolls(kind: ForKind, extent: usize) -> bool {
    kind != ForKind::Serial && extent <= MAX_UNROLL
}

/// `index` evaluated with the unrolled counters' current values `known`, as the loop IR's
/// `i32` arithmetic wraps; `None` when it needs a value known only at run time.
pub(super) fn constant_index(index: &Expr, known: &HashMap<VarId, i64>) -> Option<i64> {
    let wrap = |v: i64| v as i32 as i64;
    match index {
        Expr::Int { value, .. } => Some(*value),
        Expr::Var(v) => known.get(v).copied(),
        Expr::Binary { op, lhs, rhs } => {
            let (a, b) = (constant_index(lhs, known)?, constant_index(rhs, known)?);
            match op {
                BinOp::Add => Some(wrap(a.wrapping_add(b))),
                BinOp::Sub => Some(wrap(a.wrapping_sub(b))),
                BinOp::Mul => Some(wrap(a.wrapping_mul(b))),
                BinOp::Min => Some(a.min(b)),
                BinOp::Max => Some(a.max(b)),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The local buffers of `func` the JIT keeps in registers: at most
/// [`MAX_REGISTER_ELEMENTS`] elements, every load and store at a [`constant_index`] once the
/// loops that [`unrolls`] accepts are unrolled, and never read as a word.
pub(super) fn register_buffers(func: &Func) -> HashSet<BufId> {
    let mut scan = Scan {
        unrolled: HashMap::new(),
        candidates: func
            .buffers
            .iter()
            .enumerate()
            .filter(|(_, d)| d.kind == BufferKind::Local && d.len <= MAX_REGISTER_ELEMENTS)
            .map(|(k, _)| BufId(k as u32))
            .collect(),
    };
    scan.block(&func.body);
    scan.candidates
}

/// The walk of [`register_buffers`]: drops a candidate at its first access that does not fit.
struct Scan {
    /// The counters of the enclosing unrolled loops (any value: only the shape matters).
    unrolled: HashMap<VarId, i64>,
    candidates: HashSet<BufId>,
}

impl Scan {
    fn block(&mut self, stmts: &[Stmt]) {
        for s in stmts {
            self.stmt(s);
        }
    }

    fn stmt(&mut self, s: &Stmt) {
        match s {
            Stmt::For {
                var,
                extent,
                kind,
                body,
            } => {
                let unrolled = unrolls(*kind, *extent);
                if unrolled {
                    self.unrolled.insert(*var, 0);
                }
                self.block(body);
                self.unrolled.remove(var);
            }
            Stmt::Store { buf, index, value } => {
                self.access(*buf, index);
                self.expr(index);
                self.expr(value);
            }
            Stmt::Let { value, .. } => self.expr(value),
            Stmt::If {
                cond,
                then,
                otherwise,
            } => {
                self.expr(cond);
                self.block(then);
                self.block(otherwise);
            }
            Stmt::Alloc { .. } => {}
        }
    }

    fn access(&mut self, buf: BufId, index: &Expr) {
        // Only the shape matters here; the translator checks each copy's index is in range.
        if constant_index(index, &self.unrolled).is_none() {
            self.candidates.remove(&buf);
        }
    }

    fn expr(&mut self, e: &Expr) {
        match e {
            Expr::Load { buf, index } => self.access(*buf, index),
            Expr::LoadWord { buf, .. } => {
                self.candidates.remove(buf);
            }
            _ => {}
        }
        for child in e.children() {
            self.expr(child);
        }
    }
}
