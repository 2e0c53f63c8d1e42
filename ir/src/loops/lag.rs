//! [`output_lag`]: how far below one of its inputs a function's output may start in memory, so
//! that the two share bytes (in-place execution of a convolution, a depthwise convolution or a
//! pooling) and no element of the input is overwritten before the function's last read of it;
//! [`output_lead`]: how far above the input's end the output may end instead.
//!
//! The function's loops are expanded into time steps, two levels of serial or unrolled loops
//! deep from every statement (up to [`MAX_STEPS`] steps; beyond that a loop is one step).
//! Within a step every order of its accesses is assumed, so each step is summed up by the
//! interval of input elements it reads and the interval of output elements it writes, from
//! interval arithmetic over its indices (guards are ignored: a guarded read counts as made,
//! clamped to the buffer). The output may then start `lag` bytes below the input when, for
//! every step, the bytes it writes end at or below the lowest input byte read at that step or
//! later.
//!
//! ```
//! use minnow_ir::loops::{lag::output_lag, Access, Expr, FuncBuilder, ScalarType};
//! // A 3-tap row filter over 8 rows of 4: out[y][x] = in[y-1][x] + in[y][x] + in[y+1][x].
//! let mut f = FuncBuilder::new("rows");
//! let input = f.param("input", ScalarType::I8, 32, Access::Read);
//! let output = f.param("output", ScalarType::I8, 32, Access::Write);
//! f.for_loop("y", 8, |f, y| {
//!     f.for_loop("x", 4, |f, x| {
//!         let mut sum = Expr::i32(0);
//!         for dy in [-1, 0, 1] {
//!             let row = y.clone() + Expr::i32(dy);
//!             let at = row.clone() * Expr::i32(4) + x.clone();
//!             let inside = Expr::i32(0).le(row.clone()).and(row.lt(Expr::i32(8)));
//!             let tap = Expr::load(input, at.clone().max(Expr::i32(0)).min(Expr::i32(31)));
//!             sum = sum + Expr::select(inside, tap.cast(ScalarType::I32), Expr::i32(0));
//!         }
//!         let at = y.clone() * Expr::i32(4) + x;
//!         f.store(output, at, sum.cast(ScalarType::I8));
//!     });
//! });
//! let func = f.finish();
//! // Output row y may overwrite input row y - 1 once row y + 1 is read: one row and one
//! // element below the input is the least (the element being written still reads row y - 1
//! // at the same step).
//! assert_eq!(output_lag(&func, input, output), Some(5));
//! ```

use super::visit::{walk_expr, Visitor};
use super::{BinOp, BufId, Expr, ForKind, Func, ScalarType, Stmt, UnOp, VarId};

/// Time steps at most: a function whose expansion would make more keeps its remaining loops
/// whole (a coarser, still safe, answer).
pub const MAX_STEPS: usize = 1 << 16;

/// Levels of loops expanded into steps below any statement.
const MAX_DEPTH: usize = 2;

/// An inclusive range of integer values.
type Range = (i64, i64);

/// The least bytes by which `output`'s first element must lie below `input`'s so that `func`
/// never writes a byte of the input before its last read of it. `None` when an index of
/// either buffer cannot be bounded (it depends on loaded data or an intrinsic).
pub fn output_lag(func: &Func, input: BufId, output: BufId) -> Option<usize> {
    bound(func, input, output, false)
}

/// The least bytes by which `output`'s last byte must lie above `input`'s last byte so that
/// `func` never writes a byte of the input before its last read of it: [`output_lag`] seen
/// from the buffers' ends, small where `func` runs through its buffers from the end down
/// (an output placed above its input, the mirror image of a lagged one). `None` as for
/// [`output_lag`].
pub fn output_lead(func: &Func, input: BufId, output: BufId) -> Option<usize> {
    bound(func, input, output, true)
}

/// [`output_lag`], or with `from_end` [`output_lead`]: the element indices counted from the
/// buffers' ends.
fn bound(func: &Func, input: BufId, output: BufId, from_end: bool) -> Option<usize> {
    let mut walk = Walk {
        input,
        output,
        env: vec![None; func.vars.len()],
        steps: Vec::new(),
        current: Step::default(),
        bounded: true,
    };
    walk.block(&func.body, 0);
    walk.flush();
    if !walk.bounded {
        return None;
    }
    let elem = |b: BufId| func.buffer(b).elem.size() as i64;
    let (in_size, out_size) = (elem(input), elem(output));
    let in_len = func.buffer(input).len as i64;
    let out_len = func.buffer(output).len as i64;
    let clamp = |r: Option<Range>, len: i64| {
        r.map(|(lo, hi)| (lo.max(0), hi.min(len - 1)))
            .filter(|(lo, hi)| lo <= hi)
            .map(|(lo, hi)| match from_end {
                true => (len - 1 - hi, len - 1 - lo),
                false => (lo, hi),
            })
    };
    let mut lag = 0i64;
    let mut lowest_read_after: Option<i64> = None;
    for step in walk.steps.iter().rev() {
        if let Some((lo, _)) = clamp(step.reads, in_len) {
            lowest_read_after = Some(lowest_read_after.map_or(lo, |m| m.min(lo)));
        }
        if let (Some((_, hi)), Some(read)) = (clamp(step.writes, out_len), lowest_read_after) {
            lag = lag.max((hi + 1) * out_size - read * in_size);
        }
    }
    Some(lag as usize)
}

/// What one time step reads of the input and writes of the output.
#[derive(Clone, Copy, Debug, Default)]
struct Step {
    reads: Option<Range>,
    writes: Option<Range>,
}

/// The expansion of a function into [`Step`]s.
struct Walk {
    input: BufId,
    output: BufId,
    /// The values each variable may take where the walk is; `None` if unknown.
    env: Vec<Option<Range>>,
    steps: Vec<Step>,
    current: Step,
    /// Every index of the two buffers had bounds.
    bounded: bool,
}

impl Walk {
    /// The statements of a block in order, loops `depth` levels below an unexpanded statement.
    fn block(&mut self, stmts: &[Stmt], depth: usize) {
        for s in stmts {
            match s {
                Stmt::For {
                    var,
                    extent,
                    kind: ForKind::Serial | ForKind::Unrolled,
                    body,
                } if depth < MAX_DEPTH && self.steps.len() + extent <= MAX_STEPS => {
                    for i in 0..*extent as i64 {
                        self.flush();
                        self.env[var.0 as usize] = Some((i, i));
                        self.block(body, depth + 1);
                    }
                    self.flush();
                    self.env[var.0 as usize] = None;
                }
                _ => super::visit::walk_stmt(self, s),
            }
        }
    }

    /// Ends the current step.
    fn flush(&mut self) {
        let step = std::mem::take(&mut self.current);
        if step.reads.is_some() || step.writes.is_some() {
            self.steps.push(step);
        }
    }

    /// Widens `into` by the range of `index` (plus `extra` elements), or marks the walk
    /// unbounded.
    fn record(&mut self, index: &Expr, extra: i64, write: bool) {
        let Some((lo, hi)) = self.range(index) else {
            self.bounded = false;
            return;
        };
        let into = if write {
            &mut self.current.writes
        } else {
            &mut self.current.reads
        };
        let hi = hi.saturating_add(extra);
        *into = Some(into.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
    }

    /// The values `e` may take, by interval arithmetic.
    fn range(&self, e: &Expr) -> Option<Range> {
        match e {
            Expr::Int { value, .. } => Some((*value, *value)),
            Expr::Var(v) => self.env[v.0 as usize],
            Expr::Unary { op: UnOp::Neg, arg } => self.range(arg).map(|(lo, hi)| (-hi, -lo)),
            Expr::Binary { op, lhs, rhs } => binary(*op, self.range(lhs)?, self.range(rhs)?),
            Expr::Cast { ty, arg } => {
                let r = self.range(arg)?;
                fits(*ty, r).then_some(r)
            }
            Expr::Select {
                then, otherwise, ..
            } => {
                let (a, b) = (self.range(then)?, self.range(otherwise)?);
                Some((a.0.min(b.0), a.1.max(b.1)))
            }
            _ => None,
        }
    }
}

/// Whether every value of `r` is one of `ty`'s.
fn fits(ty: ScalarType, r: Range) -> bool {
    let bits = match ty {
        ScalarType::I8 => 8,
        ScalarType::I16 => 16,
        ScalarType::I32 => 32,
        ScalarType::I64 => 64,
        _ => return false,
    };
    let (min, max) = (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1);
    min <= r.0 as i128 && r.1 as i128 <= max
}

/// The range of `a op b`; `None` where it is not a monotone operation this analysis knows.
fn binary(op: BinOp, a: Range, b: Range) -> Option<Range> {
    let corners = |f: fn(i64, i64) -> Option<i64>| -> Option<Range> {
        let v = [f(a.0, b.0)?, f(a.0, b.1)?, f(a.1, b.0)?, f(a.1, b.1)?];
        Some((*v.iter().min()?, *v.iter().max()?))
    };
    let constant = (b.0 == b.1).then_some(b.0);
    match op {
        BinOp::Add => Some((a.0.checked_add(b.0)?, a.1.checked_add(b.1)?)),
        BinOp::Sub => Some((a.0.checked_sub(b.1)?, a.1.checked_sub(b.0)?)),
        BinOp::Mul => corners(i64::checked_mul),
        BinOp::Min => Some((a.0.min(b.0), a.1.min(b.1))),
        BinOp::Max => Some((a.0.max(b.0), a.1.max(b.1))),
        // Truncating division and shifts by a constant are monotone in the dividend.
        BinOp::Div if constant.is_some_and(|c| c > 0) => Some((a.0 / b.0, a.1 / b.0)),
        BinOp::Shr if constant.is_some_and(|c| (0..63).contains(&c)) => {
            Some((a.0 >> b.0, a.1 >> b.0))
        }
        BinOp::Shl if constant.is_some_and(|c| (0..32).contains(&c)) => {
            Some((a.0.checked_mul(1 << b.0)?, a.1.checked_mul(1 << b.0)?))
        }
        BinOp::Rem if constant.is_some_and(|c| c > 0) => {
            let c = b.0;
            if a.0 >= 0 && a.1 < c {
                Some(a)
            } else if a.0 >= 0 {
                Some((0, c - 1))
            } else {
                Some((-(c - 1), c - 1))
            }
        }
        _ => None,
    }
}

impl Visitor for Walk {
    fn visit_for(&mut self, var: VarId, extent: usize, _: ForKind, body: &[Stmt]) {
        if extent == 0 {
            return;
        }
        self.env[var.0 as usize] = Some((0, extent as i64 - 1));
        self.visit_block(body);
        self.env[var.0 as usize] = None;
    }

    fn visit_let(&mut self, var: VarId, value: &Expr) {
        self.visit_expr(value);
        self.env[var.0 as usize] = self.range(value);
    }

    fn visit_store(&mut self, buf: BufId, index: &Expr, value: &Expr) {
        if buf == self.output {
            self.record(index, 0, true);
        }
        self.visit_expr(index);
        self.visit_expr(value);
    }

    fn visit_expr(&mut self, e: &Expr) {
        match e {
            Expr::Load { buf, index } if *buf == self.input => self.record(index, 0, false),
            Expr::LoadWord { buf, index } if *buf == self.input => self.record(index, 3, false),
            _ => {}
        }
        walk_expr(self, e);
    }
}

#[cfg(test)]
mod tests;
