//! Element addresses, shaped so that Cranelift hoists what the loops do not change.
//!
//! The loop IR writes an index as one `i32` sum, innermost loop's terms first (the order
//! [`IndexReassociation`](minnow_ir::loops::IndexReassociation) gives the C compiler, which
//! reassociates on its own). Cranelift's loop-invariant code motion only moves whole
//! instructions, so the JIT splits the sum into its terms, adds them to the buffer's pointer
//! outermost loop first (each partial address is then invariant in every loop inside its
//! terms' loops and computed once there), and leaves the constant part, including the
//! unrolled counters, as the load's or store's immediate offset.
//!
//! The terms are added in pointer-width arithmetic. That equals the IR's wrapping `i32`
//! arithmetic whenever the index does not overflow `i32`, which an in-bounds access of a
//! buffer below 2 GiB never does; the C backend relies on the same (signed overflow is
//! undefined in C).

use super::func::Translator;
use super::registers::constant_index;
use cranelift_codegen::ir::{InstBuilder, Value};
use minnow_ir::loops::{BinOp, BufId, Expr, VarId};

impl Translator<'_, '_> {
    /// The address of `buf[index]` as a pointer and a byte offset to add to it.
    pub(super) fn address(&mut self, buf: BufId, index: &Expr) -> Result<(Value, i32), String> {
        let size = if self.widened.contains(&buf) {
            4
        } else {
            self.func.buffer(buf).elem.size().max(1) as i64
        };
        let mut terms = Vec::new();
        let mut constant = 0i64;
        self.split_sum(index, &mut terms, &mut constant);
        let mut keyed: Vec<(usize, &Expr)> = terms.iter().map(|t| (self.depth_of(t), *t)).collect();
        keyed.sort_by_key(|(depth, _)| *depth);
        let mut pointer = self.bufs[&buf];
        for (_, term) in keyed {
            let wide = self.wide(term)?;
            let scaled = self.b.ins().imul_imm_s(wide, size);
            pointer = self.b.ins().iadd(pointer, scaled);
        }
        let offset = constant.wrapping_mul(size);
        match i32::try_from(offset) {
            Ok(offset) => Ok((pointer, offset)),
            Err(_) => {
                let shifted = self.b.ins().iadd_imm_s(pointer, offset);
                Ok((shifted, 0))
            }
        }
    }

    /// Splits `e` into the terms of its outermost sum, adding the constant ones to `constant`.
    fn split_sum<'e>(&self, e: &'e Expr, terms: &mut Vec<&'e Expr>, constant: &mut i64) {
        if let Some(c) = constant_index(e, &self.known) {
            *constant = constant.wrapping_add(c);
            return;
        }
        match e {
            Expr::Binary {
                op: BinOp::Add,
                lhs,
                rhs,
            } => {
                self.split_sum(lhs, terms, constant);
                self.split_sum(rhs, terms, constant);
            }
            _ => terms.push(e),
        }
    }

    /// The loop depth from which `e` no longer changes: its innermost variable's.
    fn depth_of(&self, e: &Expr) -> usize {
        match e {
            Expr::Var(v) => self.var_depth(*v),
            // A load may change whenever memory does.
            Expr::Load { .. } | Expr::LoadWord { .. } => self.depth,
            _ => e
                .children()
                .into_iter()
                .map(|c| self.depth_of(c))
                .max()
                .unwrap_or(0),
        }
    }

    fn var_depth(&self, v: VarId) -> usize {
        if self.known.contains_key(&v) {
            0
        } else {
            self.depths.get(&v).copied().unwrap_or(self.depth)
        }
    }

    /// The `i32` term `e` as a pointer-width integer: sums, differences and products are
    /// computed wide, anything else in `i32` and then sign-extended.
    fn wide(&mut self, e: &Expr) -> Result<Value, String> {
        let ptr = self.ptr();
        if let Some(c) = constant_index(e, &self.known) {
            return Ok(self.b.ins().iconst(ptr, c));
        }
        if let Expr::Binary { op, lhs, rhs } = e {
            if matches!(op, BinOp::Add | BinOp::Sub | BinOp::Mul) {
                if let (BinOp::Mul, Some(c)) = (op, constant_index(rhs, &self.known)) {
                    let l = self.wide(lhs)?;
                    return Ok(self.b.ins().imul_imm_s(l, c));
                }
                let (l, r) = (self.wide(lhs)?, self.wide(rhs)?);
                return Ok(match op {
                    BinOp::Add => self.b.ins().iadd(l, r),
                    BinOp::Sub => self.b.ins().isub(l, r),
                    _ => self.b.ins().imul(l, r),
                });
            }
        }
        let narrow = self.expr(e)?;
        Ok(self.b.ins().sextend(ptr, narrow))
    }
}
