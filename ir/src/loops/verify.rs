//! [`Func::verify`]: scoping and typing rules of the loop IR.
//!
//! A verified function defines each variable once (by a `let` or a loop) before using it,
//! allocates each local once before using it, loads and stores only buffers in scope, stores
//! only to writable parameters and locals, indexes with `i32`, and applies every operator and
//! intrinsic to operands of the types it is defined on.

use super::{
    Access, BinOp, BufId, BufferKind, Expr, Func, Intrinsic, ScalarType, Stmt, UnOp, VarId,
};
use std::fmt;

/// Why a function is malformed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyError {
    /// The function's name.
    pub func: String,
    /// What is wrong, naming the offending variable, buffer or operator.
    pub message: String,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "loop function {}: {}", self.func, self.message)
    }
}

impl std::error::Error for VerifyError {}

/// What is in scope while walking the body.
struct Scope<'f> {
    func: &'f Func,
    var_defined: Vec<bool>,
    var_in_scope: Vec<bool>,
    buf_allocated: Vec<bool>,
    buf_in_scope: Vec<bool>,
}

impl Func {
    /// Checks the function; see the module documentation for the rules.
    pub fn verify(&self) -> Result<(), VerifyError> {
        let mut scope = Scope {
            func: self,
            var_defined: vec![false; self.vars.len()],
            var_in_scope: vec![false; self.vars.len()],
            buf_allocated: vec![false; self.buffers.len()],
            buf_in_scope: self
                .buffers
                .iter()
                .map(|b| matches!(b.kind, BufferKind::Param { .. }))
                .collect(),
        };
        scope.block(&self.body).map_err(|message| VerifyError {
            func: self.name.clone(),
            message,
        })
    }

    /// The type of `e` in this function, or why it is ill-typed. Scoping is not checked.
    pub fn type_of(&self, e: &Expr) -> Result<ScalarType, String> {
        expr_type(self, e, &|_| true, &|_| true)
    }
}

impl Scope<'_> {
    fn block(&mut self, stmts: &[Stmt]) -> Result<(), String> {
        let (mut vars, mut bufs) = (Vec::new(), Vec::new());
        for s in stmts {
            self.stmt(s, &mut vars, &mut bufs)?;
        }
        for v in vars {
            self.var_in_scope[v] = false;
        }
        for b in bufs {
            self.buf_in_scope[b] = false;
        }
        Ok(())
    }

    fn define(&mut self, var: VarId, ty: ScalarType) -> Result<usize, String> {
        let v = var.0 as usize;
        let decl = self
            .func
            .vars
            .get(v)
            .ok_or(format!("variable #{v} is not declared"))?;
        if std::mem::replace(&mut self.var_defined[v], true) {
            return Err(format!("variable {} is defined twice", decl.name));
        }
        if decl.ty != ty {
            return Err(format!(
                "variable {} is {} but is bound to a {} value",
                decl.name,
                decl.ty.name(),
                ty.name()
            ));
        }
        self.var_in_scope[v] = true;
        Ok(v)
    }

    fn ty(&self, e: &Expr) -> Result<ScalarType, String> {
        expr_type(
            self.func,
            e,
            &|v| self.var_in_scope.get(v.0 as usize) == Some(&true),
            &|b| self.buf_in_scope.get(b.0 as usize) == Some(&true),
        )
    }

    fn expect(&self, e: &Expr, want: ScalarType, what: &str) -> Result<(), String> {
        let got = self.ty(e)?;
        if got == want {
            Ok(())
        } else {
            Err(format!(
                "{what} must be {} but is {}",
                want.name(),
                got.name()
            ))
        }
    }

    fn stmt(
        &mut self,
        s: &Stmt,
        vars: &mut Vec<usize>,
        bufs: &mut Vec<usize>,
    ) -> Result<(), String> {
        match s {
            Stmt::For { var, body, .. } => {
                let v = self.define(*var, ScalarType::I32)?;
                self.block(body)?;
                self.var_in_scope[v] = false;
            }
            Stmt::Store { buf, index, value } => {
                let decl = self
                    .func
                    .buffers
                    .get(buf.0 as usize)
                    .filter(|_| self.buf_in_scope[buf.0 as usize])
                    .ok_or(format!("store to buffer #{} which is not in scope", buf.0))?;
                if matches!(
                    decl.kind,
                    BufferKind::Param {
                        access: Access::Read,
                        ..
                    }
                ) {
                    return Err(format!("store to read-only parameter {}", decl.name));
                }
                self.expect(
                    index,
                    ScalarType::I32,
                    &format!("the index into {}", decl.name),
                )?;
                self.expect(
                    value,
                    decl.elem,
                    &format!("the value stored to {}", decl.name),
                )?;
            }
            Stmt::Let { var, value } => {
                let ty = self.ty(value)?;
                vars.push(self.define(*var, ty)?);
            }
            Stmt::If {
                cond,
                then,
                otherwise,
            } => {
                self.expect(cond, ScalarType::Bool, "an if condition")?;
                self.block(then)?;
                self.block(otherwise)?;
            }
            Stmt::Alloc { buf } => {
                let b = buf.0 as usize;
                let decl = self
                    .func
                    .buffers
                    .get(b)
                    .ok_or(format!("alloc of undeclared buffer #{b}"))?;
                if decl.kind != BufferKind::Local {
                    return Err(format!("alloc of parameter {}", decl.name));
                }
                if std::mem::replace(&mut self.buf_allocated[b], true) {
                    return Err(format!("local {} is allocated twice", decl.name));
                }
                self.buf_in_scope[b] = true;
                bufs.push(b);
            }
        }
        Ok(())
    }
}

/// Types `e`; `var_ok` and `buf_ok` say whether a variable or buffer may be used here.
fn expr_type(
    func: &Func,
    e: &Expr,
    var_ok: &dyn Fn(VarId) -> bool,
    buf_ok: &dyn Fn(BufId) -> bool,
) -> Result<ScalarType, String> {
    let ty = |e: &Expr| expr_type(func, e, var_ok, buf_ok);
    Ok(match e {
        Expr::Int { ty, .. } => *ty,
        Expr::Float(_) => ScalarType::F32,
        Expr::Var(v) => {
            let decl = func
                .vars
                .get(v.0 as usize)
                .ok_or(format!("variable #{} is not declared", v.0))?;
            if !var_ok(*v) {
                return Err(format!("variable {} is used out of scope", decl.name));
            }
            decl.ty
        }
        Expr::Load { buf, index } => {
            let decl = buffer_in_scope(func, *buf, buf_ok)?;
            if ty(index)? != ScalarType::I32 {
                return Err(format!("the index into {} is not i32", decl.name));
            }
            decl.elem
        }
        Expr::LoadWord { buf, index } => {
            let decl = buffer_in_scope(func, *buf, buf_ok)?;
            if ty(index)? != ScalarType::I32 || decl.elem != ScalarType::I8 {
                return Err(format!(
                    "a word load needs an i8 buffer and an i32 index ({})",
                    decl.name
                ));
            }
            ScalarType::I32
        }
        Expr::Unary { op, arg } => {
            let t = ty(arg)?;
            let ok = match op {
                UnOp::Neg => t.is_arithmetic(),
                UnOp::Not => t == ScalarType::Bool,
            };
            if !ok {
                return Err(format!("{op:?} is not defined on {}", t.name()));
            }
            t
        }
        Expr::Binary { op, lhs, rhs } => binary_type(*op, ty(lhs)?, ty(rhs)?)?,
        Expr::Cast { ty: to, arg } => {
            let from = ty(arg)?;
            if (from == ScalarType::Bool) != (*to == ScalarType::Bool) && from != *to {
                return Err(format!("cannot cast {} to {}", from.name(), to.name()));
            }
            *to
        }
        Expr::Select {
            cond,
            then,
            otherwise,
        } => {
            if ty(cond)? != ScalarType::Bool {
                return Err("a select condition must be bool".into());
            }
            let (a, b) = (ty(then)?, ty(otherwise)?);
            if a != b {
                return Err(format!("select arms differ: {} and {}", a.name(), b.name()));
            }
            a
        }
        Expr::Call { intrinsic, args } => {
            let types = args.iter().map(ty).collect::<Result<Vec<_>, _>>()?;
            call_type(*intrinsic, &types)?
        }
    })
}

/// The declaration of `buf`, which must exist and be in scope.
fn buffer_in_scope<'f>(
    func: &'f Func,
    buf: BufId,
    buf_ok: &dyn Fn(BufId) -> bool,
) -> Result<&'f super::BufferDecl, String> {
    let decl = func
        .buffers
        .get(buf.0 as usize)
        .ok_or(format!("buffer #{} is not declared", buf.0))?;
    if !buf_ok(buf) {
        return Err(format!("buffer {} is used out of scope", decl.name));
    }
    Ok(decl)
}

/// The result type of an intrinsic call whose arguments have `args` types.
fn call_type(intrinsic: Intrinsic, args: &[ScalarType]) -> Result<ScalarType, String> {
    let (params, result) = intrinsic.signature();
    if params.len() != args.len() {
        return Err(format!(
            "{} takes {} arguments, not {}",
            intrinsic.name(),
            params.len(),
            args.len()
        ));
    }
    for (k, (p, t)) in params.iter().zip(args).enumerate() {
        if t != p {
            return Err(format!(
                "argument {k} of {} must be {} but is {}",
                intrinsic.name(),
                p.name(),
                t.name()
            ));
        }
    }
    Ok(result)
}

fn binary_type(op: BinOp, a: ScalarType, b: ScalarType) -> Result<ScalarType, String> {
    if a != b {
        return Err(format!(
            "operands of {} differ: {} and {}",
            op.symbol(),
            a.name(),
            b.name()
        ));
    }
    let int_only = matches!(
        op,
        BinOp::Rem | BinOp::Shl | BinOp::Shr | BinOp::BitAnd | BinOp::BitOr
    );
    let ok = if op.is_logical() {
        a == ScalarType::Bool
    } else if op.is_comparison() {
        a.is_arithmetic()
    } else {
        a.is_arithmetic() && !(int_only && a == ScalarType::F32)
    };
    if !ok {
        return Err(format!("{} is not defined on {}", op.symbol(), a.name()));
    }
    Ok(if op.is_comparison() {
        ScalarType::Bool
    } else {
        a
    })
}

#[cfg(test)]
mod tests {
    use super::super::{FuncBuilder, Intrinsic};
    use super::*;

    #[test]
    fn rejects_a_store_to_a_read_only_parameter() {
        let mut f = FuncBuilder::new("f");
        let x = f.param("x", ScalarType::I8, 4, Access::Read);
        f.store(x, Expr::i32(0), Expr::i32(1).cast(ScalarType::I8));
        let err = f.finish().verify().unwrap_err();
        assert!(err.message.contains("read-only parameter x"), "{err}");
    }

    #[test]
    fn rejects_narrow_arithmetic_and_mixed_types() {
        let mut f = FuncBuilder::new("f");
        let x = f.param("x", ScalarType::I8, 4, Access::Write);
        let sum = Expr::load(x, Expr::i32(0)) + Expr::load(x, Expr::i32(1));
        f.store(x, Expr::i32(0), sum);
        assert!(f
            .finish()
            .verify()
            .unwrap_err()
            .message
            .contains("not defined on i8"));

        let mut f = FuncBuilder::new("g");
        let y = f.param("y", ScalarType::I32, 4, Access::Write);
        f.store(y, Expr::i32(0), Expr::i32(1) + Expr::i64(1));
        assert!(f.finish().verify().unwrap_err().message.contains("differ"));
    }

    #[test]
    fn rejects_a_variable_used_after_its_loop() {
        let mut f = FuncBuilder::new("f");
        let y = f.param("y", ScalarType::I32, 4, Access::Write);
        let mut counter = None;
        f.for_loop("i", 4, |_, i| counter = Some(i));
        f.store(y, counter.unwrap(), Expr::i32(0));
        let err = f.finish().verify().unwrap_err();
        assert!(
            err.message.contains("variable i is used out of scope"),
            "{err}"
        );
    }

    #[test]
    fn checks_intrinsic_arguments() {
        let mut f = FuncBuilder::new("f");
        let y = f.param("y", ScalarType::I32, 1, Access::Write);
        let call = Expr::call(Intrinsic::RoundingDivideByPot, vec![Expr::i32(5)]);
        f.store(y, Expr::i32(0), call);
        assert!(f
            .finish()
            .verify()
            .unwrap_err()
            .message
            .contains("takes 2 arguments"));
    }
}
