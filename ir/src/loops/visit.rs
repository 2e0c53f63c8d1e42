//! [`Visitor`]: a read-only walk over a function's statements and expressions, for the
//! analyses that each need a few kinds of node (which buffers a function uses, what it
//! executes per iteration, which accumulators fit registers) and would otherwise each repeat
//! the whole match over [`Stmt`].
//!
//! Every method's default walks the node's children; an implementation overrides the nodes it
//! cares about and calls the matching `walk_*` function (or the defaults' calls) to go on.
//!
//! ```
//! use minnow_ir::loops::visit::{walk_expr, Visitor};
//! use minnow_ir::loops::{Access, Expr, FuncBuilder, ScalarType};
//!
//! /// Counts the loads of a function.
//! struct Loads(usize);
//! impl Visitor for Loads {
//!     fn visit_expr(&mut self, e: &Expr) {
//!         if let Expr::Load { .. } = e {
//!             self.0 += 1;
//!         }
//!         walk_expr(self, e);
//!     }
//! }
//!
//! let mut f = FuncBuilder::new("double");
//! let x = f.param("x", ScalarType::I32, 4, Access::Read);
//! let y = f.param("y", ScalarType::I32, 4, Access::Write);
//! f.for_loop("i", 4, |f, i| {
//!     f.store(y, i.clone(), Expr::load(x, i.clone()) + Expr::load(x, i));
//! });
//! let mut loads = Loads(0);
//! loads.visit_block(&f.finish().body);
//! assert_eq!(loads.0, 2);
//! ```

use super::{BufId, Expr, ForKind, Stmt, VarId};

/// A read-only walk; see the [module](self) documentation.
pub trait Visitor {
    /// A block of statements: by default each in turn.
    fn visit_block(&mut self, stmts: &[Stmt]) {
        for s in stmts {
            walk_stmt(self, s);
        }
    }

    /// `for var in 0..extent { body }`: by default the body.
    fn visit_for(&mut self, var: VarId, extent: usize, kind: ForKind, body: &[Stmt]) {
        let _ = (var, extent, kind);
        self.visit_block(body);
    }

    /// `buf[index] = value`: by default the index, then the value.
    fn visit_store(&mut self, buf: BufId, index: &Expr, value: &Expr) {
        let _ = buf;
        self.visit_expr(index);
        self.visit_expr(value);
    }

    /// `let var = value`: by default the value.
    fn visit_let(&mut self, var: VarId, value: &Expr) {
        let _ = var;
        self.visit_expr(value);
    }

    /// `if cond { then } else { otherwise }`: by default the condition, then both branches.
    fn visit_if(&mut self, cond: &Expr, then: &[Stmt], otherwise: &[Stmt]) {
        self.visit_expr(cond);
        self.visit_block(then);
        self.visit_block(otherwise);
    }

    /// `alloc buf`: nothing by default.
    fn visit_alloc(&mut self, buf: BufId) {
        let _ = buf;
    }

    /// An expression: by default its children ([`walk_expr`]).
    fn visit_expr(&mut self, e: &Expr) {
        walk_expr(self, e);
    }
}

/// Calls the [`Visitor`] method of `s`'s kind.
pub fn walk_stmt<V: Visitor + ?Sized>(v: &mut V, s: &Stmt) {
    match s {
        Stmt::For {
            var,
            extent,
            kind,
            body,
        } => v.visit_for(*var, *extent, *kind, body),
        Stmt::Store { buf, index, value } => v.visit_store(*buf, index, value),
        Stmt::Let { var, value } => v.visit_let(*var, value),
        Stmt::If {
            cond,
            then,
            otherwise,
        } => v.visit_if(cond, then, otherwise),
        Stmt::Alloc { buf } => v.visit_alloc(*buf),
    }
}

/// Visits each child of `e`.
pub fn walk_expr<V: Visitor + ?Sized>(v: &mut V, e: &Expr) {
    for child in e.children() {
        v.visit_expr(child);
    }
}
