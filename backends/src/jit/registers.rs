//! Which loops the JIT unrolls and which local buffers it keeps in registers.
//!
//! Schedules mark small loops (an accumulator tile, a kernel row) `Unrolled`; the C backend
//! passes that on as `#pragma GCC unroll` and the C compiler then keeps an accumulator array
//! such as `int32_t acc[4]` in registers. Cranelift does neither, so the JIT does both while
//! translating: an unrolled loop's counter is a known constant in each copy of the body, and a
//! small local buffer whose every access is at an index made only of such constants becomes
//! one Cranelift variable per element (registers, spilled only under pressure) instead of
//! stack memory loaded and stored on every multiply-accumulate. An `i32` accumulator tile that
//! a vectorizable loop ([`vector`](super::vector)) writes lives in SIMD registers instead, one
//! vector variable per [`LANES`] elements.

use super::func::Translator;
use super::vector::{self, LANES};
use cranelift_codegen::ir::{types, InstBuilder, Value};
use cranelift_frontend::Variable;
use minnow_ir::loops::visit::{walk_expr, Visitor};
use minnow_ir::loops::{BinOp, BufId, BufferKind, Expr, ForKind, Func, ScalarType, Stmt, VarId};
use std::collections::HashMap;

/// Iterations up to which the JIT unrolls a loop its schedule marks `Unrolled` or
/// `Vectorized` (longer ones stay loops: the copies would cost more in code than they save).
const MAX_UNROLL: usize = 64;

/// Elements up to which a local buffer may live in registers.
const MAX_REGISTER_ELEMENTS: usize = 64;

/// Iterations up to which the JIT unrolls a serial loop too: the counter, its test and the
/// branch cost more than a short body (a kernel row, a pair of input channels).
const MAX_SERIAL_UNROLL: usize = 4;

/// Whether the JIT emits a loop of this kind and extent as copies of its body.
pub(super) fn unrolls(kind: ForKind, extent: usize) -> bool {
    match kind {
        ForKind::Serial => extent <= MAX_SERIAL_UNROLL,
        _ => extent <= MAX_UNROLL,
    }
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

/// How a register buffer's elements are held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Layout {
    /// One scalar variable per element.
    Scalars,
    /// One `i32x4` variable per [`LANES`] elements.
    Lanes,
}

/// An allocated register buffer's variables.
pub(super) enum Registers {
    /// [`Layout::Scalars`].
    Scalars(Vec<Variable>),
    /// [`Layout::Lanes`].
    Lanes(Vec<Variable>),
}

/// The local buffers of `func` the JIT keeps in registers, and how: at most
/// [`MAX_REGISTER_ELEMENTS`] elements, every load and store at a [`constant_index`] once the
/// loops that [`unrolls`] accepts are unrolled, and never read as a word. An `i32` buffer of
/// whole vectors that an unrolled loop stores at its counter (an accumulator tile) takes
/// [`Layout::Lanes`] when `simd`.
pub(super) fn register_buffers(func: &Func, simd: bool) -> HashMap<BufId, Layout> {
    let mut scan = Scan {
        unrolled: HashMap::new(),
        innermost: None,
        candidates: func
            .buffers
            .iter()
            .enumerate()
            .filter(|(_, d)| d.kind == BufferKind::Local && d.len <= MAX_REGISTER_ELEMENTS)
            .map(|(k, _)| (BufId(k as u32), Layout::Scalars))
            .collect(),
    };
    scan.visit_block(&func.body);
    for (buf, layout) in &mut scan.candidates {
        let decl = func.buffer(*buf);
        if *layout == Layout::Lanes
            && !(simd && decl.elem == ScalarType::I32 && decl.len % LANES == 0)
        {
            *layout = Layout::Scalars;
        }
    }
    scan.candidates
}

/// The walk of [`register_buffers`]: drops a candidate at its first access that does not fit.
struct Scan {
    /// The counters of the enclosing unrolled loops (any value: only the shape matters).
    unrolled: HashMap<VarId, i64>,
    /// The innermost enclosing loop's counter, when that loop is unrolled a whole number of
    /// vectors.
    innermost: Option<VarId>,
    /// The candidates, marked [`Layout::Lanes`] once a store fits a vector.
    candidates: HashMap<BufId, Layout>,
}

impl Scan {
    fn access(&mut self, buf: BufId, index: &Expr) {
        // Only the shape matters here; the translator checks each copy's index is in range.
        if constant_index(index, &self.unrolled).is_none() {
            self.candidates.remove(&buf);
        }
    }
}

impl Visitor for Scan {
    fn visit_for(&mut self, var: VarId, extent: usize, kind: ForKind, body: &[Stmt]) {
        let unrolled = unrolls(kind, extent);
        if unrolled {
            self.unrolled.insert(var, 0);
        }
        let outer = self.innermost;
        self.innermost = (unrolled && extent % LANES == 0).then_some(var);
        self.visit_block(body);
        self.innermost = outer;
        self.unrolled.remove(&var);
    }

    fn visit_store(&mut self, buf: BufId, index: &Expr, value: &Expr) {
        self.access(buf, index);
        let lanes = self
            .innermost
            .is_some_and(|v| vector::unit_stride(index, v));
        if let (true, Some(layout)) = (lanes, self.candidates.get_mut(&buf)) {
            *layout = Layout::Lanes;
        }
        self.visit_expr(index);
        self.visit_expr(value);
    }

    fn visit_expr(&mut self, e: &Expr) {
        match e {
            Expr::Load { buf, index } => self.access(*buf, index),
            Expr::LoadWord { buf, .. } => {
                self.candidates.remove(buf);
            }
            _ => {}
        }
        walk_expr(self, e);
    }
}

impl Translator<'_, '_> {
    /// Declares register buffer `buf`'s variables, zeroed.
    pub(super) fn alloc_registers(&mut self, buf: BufId) {
        let decl = self.func.buffer(buf);
        let (len, elem) = (decl.len, decl.elem);
        let registers = if self.in_registers[&buf] == Layout::Lanes {
            let zero = self.b.ins().iconst(types::I32, 0);
            let zero = self.b.ins().splat(types::I32X4, zero);
            Registers::Lanes(self.zeroed_vars(len / LANES, types::I32X4, zero))
        } else {
            let ty = super::func::clif(elem);
            let zero = if ty == types::F32 {
                self.b.ins().f32const(0.0)
            } else {
                self.b.ins().iconst(ty, 0)
            };
            Registers::Scalars(self.zeroed_vars(len, ty, zero))
        };
        self.registers.insert(buf, registers);
    }

    fn zeroed_vars(
        &mut self,
        n: usize,
        ty: cranelift_codegen::ir::Type,
        zero: Value,
    ) -> Vec<Variable> {
        (0..n)
            .map(|_| {
                let v = self.b.declare_var(ty);
                self.b.def_var(v, zero);
                v
            })
            .collect()
    }

    /// `buf[index]` when `buf` lives in registers.
    pub(super) fn read_register(
        &mut self,
        buf: BufId,
        index: &Expr,
    ) -> Result<Option<Value>, String> {
        Ok(match self.element(buf, index)? {
            None => None,
            Some((var, None)) => Some(self.b.use_var(var)),
            Some((var, Some(lane))) => {
                let vector = self.b.use_var(var);
                Some(self.b.ins().extractlane(vector, lane))
            }
        })
    }

    /// Sets `buf[index]` to `value` when `buf` lives in registers; false when it does not.
    pub(super) fn write_register(
        &mut self,
        buf: BufId,
        index: &Expr,
        value: Value,
    ) -> Result<bool, String> {
        match self.element(buf, index)? {
            None => return Ok(false),
            Some((var, None)) => self.b.def_var(var, value),
            Some((var, Some(lane))) => {
                let vector = self.b.use_var(var);
                let updated = self.b.ins().insertlane(vector, value, lane);
                self.b.def_var(var, updated);
            }
        }
        Ok(true)
    }

    /// The variable holding `buf[index]` and, for [`Layout::Lanes`], its lane.
    fn element(&self, buf: BufId, index: &Expr) -> Result<Option<(Variable, Option<u8>)>, String> {
        let Some(registers) = self.registers.get(&buf) else {
            return Ok(None);
        };
        let name = &self.func.name;
        let i = constant_index(index, &self.known)
            .ok_or_else(|| format!("{name}: a register buffer's index is not constant"))?;
        let outside = || format!("{name}: index {i} is outside a local buffer");
        let i = usize::try_from(i).map_err(|_| outside())?;
        let found = match registers {
            Registers::Scalars(vars) => vars.get(i).map(|v| (*v, None)),
            Registers::Lanes(vars) => vars.get(i / LANES).map(|v| (*v, Some((i % LANES) as u8))),
        };
        found.map(Some).ok_or_else(outside)
    }
}
