//! [`FuncBuilder`]: builds a [`Func`] statement by statement, with nested blocks written as
//! closures so the shape of the code follows the shape of the loop nest.

use super::{Access, BufId, BufferDecl, BufferKind, Expr, ForKind, Func, ScalarType, Stmt};
use super::{Var, VarId};
use std::collections::HashSet;

/// Builds a [`Func`]. Names given to variables and buffers are made unique (a numeric suffix
/// is added on a clash) so the text form and generated code can use them directly.
pub struct FuncBuilder {
    name: String,
    vars: Vec<Var>,
    buffers: Vec<BufferDecl>,
    names: HashSet<String>,
    /// Open blocks, innermost last; the first is the function body.
    blocks: Vec<Vec<Stmt>>,
}

impl FuncBuilder {
    /// Starts a function called `name` (a C identifier).
    pub fn new(name: impl Into<String>) -> FuncBuilder {
        FuncBuilder {
            name: name.into(),
            vars: Vec::new(),
            buffers: Vec::new(),
            names: HashSet::new(),
            blocks: vec![Vec::new()],
        }
    }

    /// Starts a new body for `func`: the same name and parameters (so their [`BufId`]s stay
    /// valid), no locals, variables or statements. Schedules rebuild a function with it.
    pub fn with_params_of(func: &Func) -> FuncBuilder {
        let mut f = FuncBuilder::new(func.name.clone());
        for b in &func.buffers {
            if let BufferKind::Param { access, .. } = b.kind {
                f.param(&b.name, b.elem, b.len, access);
            }
        }
        f
    }

    fn unique(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut k = 1;
        while !self.names.insert(name.clone()) {
            name = format!("{base}_{k}");
            k += 1;
        }
        name
    }

    fn emit(&mut self, stmt: Stmt) {
        self.blocks.last_mut().expect("an open block").push(stmt);
    }

    /// Declares the next parameter: a buffer of `len` elements of `elem`.
    pub fn param(&mut self, name: &str, elem: ScalarType, len: usize, access: Access) -> BufId {
        let index = self
            .buffers
            .iter()
            .filter(|b| matches!(b.kind, BufferKind::Param { .. }))
            .count();
        let name = self.unique(name);
        self.buffers.push(BufferDecl {
            name,
            elem,
            len,
            kind: BufferKind::Param { index, access },
        });
        BufId(self.buffers.len() as u32 - 1)
    }

    /// Declares a local buffer for the rest of the current block.
    pub fn local(&mut self, name: &str, elem: ScalarType, len: usize) -> BufId {
        let name = self.unique(name);
        self.buffers.push(BufferDecl {
            name,
            elem,
            len,
            kind: BufferKind::Local,
        });
        let buf = BufId(self.buffers.len() as u32 - 1);
        self.emit(Stmt::Alloc { buf });
        buf
    }

    fn new_var(&mut self, name: &str, ty: ScalarType) -> VarId {
        let name = self.unique(name);
        self.vars.push(Var { name, ty });
        VarId(self.vars.len() as u32 - 1)
    }

    /// Binds a new variable of type `ty` to `value` for the rest of the current block and
    /// returns it as an expression.
    pub fn let_(&mut self, name: &str, ty: ScalarType, value: Expr) -> Expr {
        let var = self.new_var(name, ty);
        self.emit(Stmt::Let { var, value });
        Expr::Var(var)
    }

    /// `buf[index] = value`.
    pub fn store(&mut self, buf: BufId, index: Expr, value: Expr) {
        self.emit(Stmt::Store { buf, index, value });
    }

    /// A serial loop `for name in 0..extent`; `body` receives the counter.
    pub fn for_loop(&mut self, name: &str, extent: usize, body: impl FnOnce(&mut Self, Expr)) {
        self.for_kind(name, extent, ForKind::Serial, body)
    }

    /// A loop of the given kind.
    pub fn for_kind(
        &mut self,
        name: &str,
        extent: usize,
        kind: ForKind,
        body: impl FnOnce(&mut Self, Expr),
    ) {
        let var = self.new_var(name, ScalarType::I32);
        self.blocks.push(Vec::new());
        body(self, Expr::Var(var));
        let body = self.blocks.pop().expect("the loop's block");
        self.emit(Stmt::For {
            var,
            extent,
            kind,
            body,
        });
    }

    /// `if cond { then }`.
    pub fn if_then(&mut self, cond: Expr, then: impl FnOnce(&mut Self)) {
        self.if_else(cond, then, |_| {})
    }

    /// `if cond { then } else { otherwise }`.
    pub fn if_else(
        &mut self,
        cond: Expr,
        then: impl FnOnce(&mut Self),
        otherwise: impl FnOnce(&mut Self),
    ) {
        self.blocks.push(Vec::new());
        then(self);
        let then = self.blocks.pop().expect("the then block");
        self.blocks.push(Vec::new());
        otherwise(self);
        let otherwise = self.blocks.pop().expect("the else block");
        self.emit(Stmt::If {
            cond,
            then,
            otherwise,
        });
    }

    /// The finished function.
    pub fn finish(mut self) -> Func {
        debug_assert_eq!(self.blocks.len(), 1, "unclosed block");
        Func {
            name: self.name,
            vars: self.vars,
            buffers: self.buffers,
            body: self.blocks.pop().unwrap_or_default(),
        }
    }
}
