//! Constant `i8` weights widened to `i32` once, when the JIT compiles, instead of on every
//! load: a vector of four weights is then one 16-byte load (which the multiply can take as
//! its memory operand) rather than a word load and two sign extensions, and a scalar weight a
//! plain `i32` load. Only parameters that every step calling the function binds to a constant
//! slot are widened, and never one the function reads as words (the DSP schedules' packed
//! loads); the values are unchanged, only their storage is four bytes each.

use minnow_ir::loops::visit::{walk_expr, Visitor};
use minnow_ir::loops::{BufId, Expr, Program, ScalarType, SlotKind};
use std::collections::HashSet;

/// The parameters of function `index` the JIT stores widened, among its `read_only` ones.
pub(super) fn widened_params(
    program: &Program,
    index: usize,
    read_only: &HashSet<BufId>,
) -> HashSet<BufId> {
    let func = &program.funcs[index];
    let mut words = WordReads(HashSet::new());
    words.visit_block(&func.body);
    func.params()
        .enumerate()
        .filter(|(k, (id, decl))| {
            decl.elem == ScalarType::I8
                && read_only.contains(id)
                && !words.0.contains(id)
                && binds_constants(program, index, *k)
        })
        .map(|(_, (id, _))| id)
        .collect()
}

/// Whether every step calling function `index` binds parameter `param` to a constant slot.
fn binds_constants(program: &Program, index: usize, param: usize) -> bool {
    program.steps.iter().filter(|s| s.func == index).all(|s| {
        s.args
            .get(param)
            .is_some_and(|slot| matches!(program.slot(*slot).kind, SlotKind::Constant(_)))
    })
}

/// `bytes` as `i8` values, each stored as a little-endian `i32`.
pub(super) fn widened(bytes: &[u8]) -> Vec<u8> {
    bytes
        .iter()
        .flat_map(|b| i32::from(*b as i8).to_le_bytes())
        .collect()
}

/// The buffers a function reads as words.
struct WordReads(HashSet<BufId>);

impl Visitor for WordReads {
    fn visit_expr(&mut self, e: &Expr) {
        if let Expr::LoadWord { buf, .. } = e {
            self.0.insert(*buf);
        }
        walk_expr(self, e);
    }
}
