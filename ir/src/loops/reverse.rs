//! [`LoopReversal`]: a function rewritten to run through its outputs from the end down, so
//! that its output may end a little above an input it overwrites ([`super::lag::output_lead`])
//! instead of starting a little below it. A chain of ops working in place then drifts up the
//! arena where it drifted down, and alternating the two keeps the chain where it started.
//!
//! ```
//! use minnow_ir::loops::{lag, Access, Expr, FuncBuilder, LoopReversal, ScalarType};
//! // out[i] = in[i] + 1 over 16 elements: forward it lags one element below its input.
//! let mut f = FuncBuilder::new("inc");
//! let input = f.param("input", ScalarType::I8, 16, Access::Read);
//! let output = f.param("output", ScalarType::I8, 16, Access::Write);
//! f.for_loop("i", 16, |f, i| {
//!     let v = Expr::load(input, i.clone()).cast(ScalarType::I32) + Expr::i32(1);
//!     f.store(output, i, v.cast(ScalarType::I8));
//! });
//! let func = f.finish();
//! assert_eq!(lag::output_lag(&func, input, output), Some(1));
//! assert_eq!(lag::output_lead(&func, input, output), Some(16));
//! // Reversed, it reads and writes from the end down: one element above, not below.
//! let down = LoopReversal.run(&func).unwrap();
//! assert_eq!(lag::output_lead(&down, input, output), Some(1));
//! ```

use super::{Expr, ForKind, Func, Stmt, Var, VarId};

/// The pass: reverses the order of a function's top-level loops and of each one's
/// iterations.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoopReversal;

impl LoopReversal {
    /// `func` with its top-level serial loops in reverse order, each counting down (its
    /// counter rebound as `extent - 1 - i` of a new one counting up); `None` unless the body
    /// is such loops alone. The caller vouches that they compute disjoint outputs from
    /// inputs the function does not write (a scheduled multiply-accumulate op: each output
    /// element once, its reduction inside), so neither order matters to the result.
    pub fn run(&self, func: &Func) -> Option<Func> {
        let serial = |s: &Stmt| {
            matches!(
                s,
                Stmt::For {
                    kind: ForKind::Serial,
                    ..
                }
            )
        };
        if func.body.is_empty() || !func.body.iter().all(serial) {
            return None;
        }
        let mut out = func.clone();
        let mut body = Vec::with_capacity(func.body.len());
        for s in func.body.iter().rev() {
            let Stmt::For {
                var,
                extent,
                kind,
                body: inner,
            } = s
            else {
                unreachable!("checked: serial loops only");
            };
            let up = VarId(out.vars.len() as u32);
            let old = func.var(*var);
            out.vars.push(Var {
                name: format!("{}_down", old.name),
                ty: old.ty,
            });
            let mut reversed = vec![Stmt::Let {
                var: *var,
                value: Expr::i32(*extent as i32 - 1) - Expr::Var(up),
            }];
            reversed.extend(inner.iter().cloned());
            body.push(Stmt::For {
                var: up,
                extent: *extent,
                kind: *kind,
                body: reversed,
            });
        }
        out.body = body;
        Some(out)
    }
}
