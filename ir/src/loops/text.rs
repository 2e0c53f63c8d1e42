//! The text form of the loop IR (`minnow compile --dump loops`): one C-like line per
//! statement, fully parenthesised expressions, types on declarations.

use super::{Access, BinOp, BufferKind, Expr, ForKind, Func, Program, SlotKind, Stmt, UnOp};
use std::fmt::{self, Write};

impl fmt::Display for Func {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "func {}(", self.name)?;
        for (k, (_, p)) in self.params().enumerate() {
            let access = match p.kind {
                BufferKind::Param {
                    access: Access::Read,
                    ..
                } => "in",
                BufferKind::Param {
                    access: Access::Write,
                    ..
                } => "out",
                _ => "inout",
            };
            let sep = if k > 0 { ", " } else { "" };
            write!(f, "{sep}{}: {}[{}] {access}", p.name, p.elem.name(), p.len)?;
        }
        f.write_str(") {\n")?;
        self.write_block(f, &self.body, 1)?;
        f.write_str("}\n")
    }
}

impl Func {
    fn write_block(&self, f: &mut fmt::Formatter<'_>, stmts: &[Stmt], depth: usize) -> fmt::Result {
        for s in stmts {
            self.write_stmt(f, s, depth)?;
        }
        Ok(())
    }

    fn write_stmt(&self, f: &mut fmt::Formatter<'_>, s: &Stmt, depth: usize) -> fmt::Result {
        let pad = "  ".repeat(depth);
        match s {
            Stmt::For {
                var,
                extent,
                kind,
                body,
            } => {
                let kind = match kind {
                    ForKind::Serial => String::new(),
                    ForKind::Unrolled => " unrolled".into(),
                    ForKind::Vectorized { lanes } => format!(" vectorized({lanes})"),
                };
                writeln!(
                    f,
                    "{pad}for {} in 0..{extent}{kind} {{",
                    self.var(*var).name
                )?;
                self.write_block(f, body, depth + 1)?;
                writeln!(f, "{pad}}}")
            }
            Stmt::Store { buf, index, value } => writeln!(
                f,
                "{pad}{}[{}] = {}",
                self.buffer(*buf).name,
                self.expr(index),
                self.expr(value)
            ),
            Stmt::Let { var, value } => {
                let v = self.var(*var);
                writeln!(
                    f,
                    "{pad}let {}: {} = {}",
                    v.name,
                    v.ty.name(),
                    self.expr(value)
                )
            }
            Stmt::If {
                cond,
                then,
                otherwise,
            } => {
                writeln!(f, "{pad}if {} {{", self.expr(cond))?;
                self.write_block(f, then, depth + 1)?;
                if !otherwise.is_empty() {
                    writeln!(f, "{pad}}} else {{")?;
                    self.write_block(f, otherwise, depth + 1)?;
                }
                writeln!(f, "{pad}}}")
            }
            Stmt::Alloc { buf } => {
                let b = self.buffer(*buf);
                writeln!(f, "{pad}alloc {}: {}[{}]", b.name, b.elem.name(), b.len)
            }
        }
    }

    /// The text form of an expression of this function.
    pub fn expr(&self, e: &Expr) -> String {
        let mut s = String::new();
        self.write_expr(&mut s, e);
        s
    }

    fn write_expr(&self, s: &mut String, e: &Expr) {
        match e {
            Expr::Int { value, ty } => match ty {
                super::ScalarType::I32 => write!(s, "{value}"),
                super::ScalarType::Bool => write!(s, "{}", *value != 0),
                ty => write!(s, "{value}{}", ty.name()),
            }
            .expect("string write"),
            Expr::Float(v) => write!(s, "{v:?}f").expect("string write"),
            Expr::Var(v) => s.push_str(&self.var(*v).name),
            Expr::Load { buf, index } => {
                s.push_str(&self.buffer(*buf).name);
                s.push('[');
                self.write_expr(s, index);
                s.push(']');
            }
            Expr::LoadWord { buf, index } => {
                s.push_str("word(");
                s.push_str(&self.buffer(*buf).name);
                s.push('[');
                self.write_expr(s, index);
                s.push_str("])");
            }
            Expr::Unary { op, arg } => {
                s.push_str(match op {
                    UnOp::Neg => "-",
                    UnOp::Not => "!",
                });
                self.write_expr(s, arg);
            }
            Expr::Binary { op, lhs, rhs } if matches!(op, BinOp::Min | BinOp::Max) => {
                self.write_call(s, op.symbol(), [lhs.as_ref(), rhs.as_ref()])
            }
            Expr::Binary { op, lhs, rhs } => {
                s.push('(');
                self.write_expr(s, lhs);
                write!(s, " {} ", op.symbol()).expect("string write");
                self.write_expr(s, rhs);
                s.push(')');
            }
            Expr::Cast { ty, arg } => self.write_call(s, ty.name(), [arg.as_ref()]),
            Expr::Select {
                cond,
                then,
                otherwise,
            } => self.write_call(s, "select", [cond.as_ref(), then, otherwise]),
            Expr::Call { intrinsic, args } => self.write_call(s, intrinsic.name(), args.iter()),
        }
    }

    fn write_call<'e>(&self, s: &mut String, name: &str, args: impl IntoIterator<Item = &'e Expr>) {
        s.push_str(name);
        s.push('(');
        for (k, a) in args.into_iter().enumerate() {
            if k > 0 {
                s.push_str(", ");
            }
            self.write_expr(s, a);
        }
        s.push(')');
    }
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "program {}", self.name)?;
        for (k, s) in self.slots.iter().enumerate() {
            let kind = match &s.kind {
                SlotKind::Input(n) => format!("input {n}"),
                SlotKind::Output(n) => format!("output {n}"),
                SlotKind::Activation => "activation".into(),
                SlotKind::Constant(_) => "constant".into(),
                SlotKind::State(_) => "state".into(),
                SlotKind::View { base, offset } => format!("view of s{} at {offset}", base.0),
            };
            writeln!(
                f,
                "  slot s{k}: {}[{}] {kind} \"{}\"",
                s.elem.name(),
                s.len,
                s.name
            )?;
        }
        for step in &self.steps {
            let args: Vec<String> = step.args.iter().map(|a| format!("s{}", a.0)).collect();
            writeln!(
                f,
                "  call {}({})  # {} {}",
                self.funcs[step.func].name,
                args.join(", "),
                step.op,
                step.name
            )?;
        }
        for func in &self.funcs {
            writeln!(f)?;
            write!(f, "{func}")?;
        }
        Ok(())
    }
}
