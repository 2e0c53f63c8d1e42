//! Index reassociation: every buffer index that is a sum is rebuilt with the terms of the
//! innermost loops first and the loop-invariant rest last.
//!
//! An index such as `(oy * 320 + ox * 64) + ic`, inside `for ic { unrolled for ox { .. } }`,
//! groups the invariant `oy * 320` with the unrolled `ox * 64`: after unrolling gcc sees five
//! different bases and keeps one address register per base, each stepped every iteration.
//! Written `(ox * 64 + ic) + oy * 320`, the unrolled offsets are immediates on one stepped
//! address. Integer indices wrap like every `i32` sum of the IR, so any order of the terms
//! computes the same index: the pass changes no value, only the shape the C compiler sees.
//!
//! ```
//! use minnow_ir::loops::{Access, Expr, FuncBuilder, IndexReassociation, ScalarType};
//! let mut f = FuncBuilder::new("copy_rows");
//! let input = f.param("input", ScalarType::I8, 12, Access::Read);
//! let output = f.param("output", ScalarType::I8, 12, Access::Write);
//! f.for_loop("row", 3, |f, row| {
//!     f.for_loop("col", 4, |f, col| {
//!         let index = row.clone() * Expr::idx(4) + col;
//!         f.store(output, index.clone(), Expr::load(input, index));
//!     });
//! });
//! let mut func = f.finish();
//! IndexReassociation.run(&mut func);
//! assert!(func.to_string().contains("output[(col + (row * 4))]"));
//! ```

use super::{BinOp, Expr, Func, Stmt, VarId};
use std::collections::HashMap;

/// The pass: orders each index's terms from the innermost loop outward, constants last.
#[derive(Clone, Copy, Debug, Default)]
pub struct IndexReassociation;

impl IndexReassociation {
    /// Reassociates every load and store index of `func`.
    pub fn run(&self, func: &mut Func) {
        let mut depths = Depths::default();
        depths.block(&mut func.body, 0);
    }
}

/// How deep each variable varies: a loop counter at its nesting level, a `let` at the deepest
/// level of what it is computed from (0 for one computed from constants only).
#[derive(Default)]
struct Depths {
    of: HashMap<VarId, usize>,
}

impl Depths {
    fn block(&mut self, stmts: &mut [Stmt], depth: usize) {
        for s in stmts {
            match s {
                Stmt::For { var, body, .. } => {
                    self.of.insert(*var, depth + 1);
                    self.block(body, depth + 1);
                }
                Stmt::Store { index, value, .. } => {
                    self.index(index);
                    self.expr(value);
                }
                Stmt::Let { var, value } => {
                    self.expr(value);
                    let d = self.depth(value);
                    self.of.insert(*var, d);
                }
                Stmt::If {
                    cond,
                    then,
                    otherwise,
                } => {
                    self.expr(cond);
                    self.block(then, depth);
                    self.block(otherwise, depth);
                }
                Stmt::Alloc { .. } => {}
            }
        }
    }

    /// Reassociates the indices inside `e`.
    fn expr(&self, e: &mut Expr) {
        match e {
            Expr::Load { index, .. } | Expr::LoadWord { index, .. } => self.index(index),
            other => other.children_mut().into_iter().for_each(|c| self.expr(c)),
        }
    }

    /// Rebuilds the sum `index` as `Σ term * coefficient + constant`: deepest terms first (a
    /// stable sort, so terms of one depth keep their order), the constants folded into one
    /// at the end.
    fn index(&self, index: &mut Expr) {
        let mut sum = LinearSum::default();
        sum.add(std::mem::replace(index, Expr::i32(0)), 1);
        for (t, _) in &mut sum.terms {
            self.expr(t);
        }
        sum.terms
            .sort_by_key(|(t, _)| std::cmp::Reverse(self.depth(t)));
        let constant = Expr::i32(sum.constant as i32);
        *index = sum
            .terms
            .into_iter()
            .map(|(t, k)| t * Expr::i32(k as i32))
            .reduce(|a, b| a + b)
            .map_or(constant.clone(), |sum| sum + constant);
    }

    /// The deepest level any variable of `e` varies at.
    fn depth(&self, e: &Expr) -> usize {
        match e {
            Expr::Var(v) => self.of.get(v).copied().unwrap_or(0),
            other => other
                .children()
                .into_iter()
                .map(|c| self.depth(c))
                .max()
                .unwrap_or(0),
        }
    }
}

/// An index as a sum of terms with constant coefficients, and a constant: `+`, `-` and
/// multiplication by a constant distributed, in the order the terms appear. Coefficients wrap
/// at 32 bits, as the index arithmetic does.
#[derive(Default)]
struct LinearSum {
    terms: Vec<(Expr, i64)>,
    constant: i64,
}

impl LinearSum {
    fn add(&mut self, e: Expr, coefficient: i64) {
        let wrap = |v: i64| v as i32 as i64;
        match e {
            Expr::Int { value, .. } => {
                self.constant = wrap(self.constant + wrap(value * coefficient));
            }
            Expr::Binary { op, lhs, rhs } => match (op, lhs.as_int(), rhs.as_int()) {
                (BinOp::Add, ..) => {
                    self.add(*lhs, coefficient);
                    self.add(*rhs, coefficient);
                }
                (BinOp::Sub, ..) => {
                    self.add(*lhs, coefficient);
                    self.add(*rhs, wrap(-coefficient));
                }
                (BinOp::Mul, _, Some(k)) => self.add(*lhs, wrap(coefficient * k)),
                (BinOp::Mul, Some(k), _) => self.add(*rhs, wrap(coefficient * k)),
                _ => self
                    .terms
                    .push((Expr::Binary { op, lhs, rhs }, coefficient)),
            },
            other => self.terms.push((other, coefficient)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loops::interp::{run_func, Storage};
    use crate::loops::{Access, ForKind, FuncBuilder, ScalarType};

    /// `out[(oy * 8 + ox * 4) + c + 1] = in[..] ` over unrolled `ox` inside serial `c`.
    fn blocked() -> Func {
        let mut f = FuncBuilder::new("blocked");
        let input = f.param("input", ScalarType::I32, 20, Access::Read);
        let output = f.param("output", ScalarType::I32, 20, Access::Write);
        f.for_loop("oy", 2, |f, oy| {
            f.for_loop("c", 3, |f, c| {
                f.for_kind("ox", 2, ForKind::Unrolled, |f, ox| {
                    let index =
                        oy.clone() * Expr::idx(8) + ox * Expr::idx(4) + c.clone() + Expr::idx(1);
                    let v = Expr::load(input, index.clone()) * Expr::i32(3);
                    f.store(output, index, v);
                });
            });
        });
        f.finish()
    }

    #[test]
    fn orders_terms_innermost_first_and_constants_last() {
        let mut func = blocked();
        IndexReassociation.run(&mut func);
        func.verify().unwrap();
        let text = func.to_string();
        assert!(
            text.contains("output[(((ox * 4) + c) + (oy * 8)) + 1]")
                || text.contains("output[((((ox * 4) + c) + (oy * 8)) + 1)]"),
            "{text}"
        );
    }

    #[test]
    fn computes_what_the_original_computes() {
        let before = blocked();
        let mut after = before.clone();
        IndexReassociation.run(&mut after);
        assert_ne!(before, after);
        let input: Vec<i64> = (0..20).map(|i| i * 7 - 30).collect();
        let run = |func: &Func| {
            let mut buffers = vec![
                Storage::Int {
                    elem: ScalarType::I32,
                    data: input.clone(),
                },
                Storage::zeros(ScalarType::I32, 20),
            ];
            run_func(func, &mut buffers).unwrap();
            buffers.pop().unwrap()
        };
        assert_eq!(run(&before), run(&after));
    }
}
