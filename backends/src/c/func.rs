//! One loop function as a `static` C function.

use minnow_ir::loops::visit::{walk_expr, Visitor};
use minnow_ir::loops::{
    Access, BinOp, BufId, BufferKind, Expr, ForKind, Func, ScalarType, Stmt, UnOp, VarId,
};
use minnow_passes::memory::SharedArgs;
use std::collections::HashSet;
use std::fmt::Write;

/// The C type of a scalar type.
pub(super) fn c_type(t: ScalarType) -> &'static str {
    match t {
        ScalarType::Bool => "int",
        ScalarType::I8 => "int8_t",
        ScalarType::U8 => "uint8_t",
        ScalarType::I16 => "int16_t",
        ScalarType::I32 => "int32_t",
        ScalarType::I64 => "int64_t",
        ScalarType::F32 => "float",
    }
}

/// An integer literal of type `ty` (parenthesised when negative).
pub(super) fn int_literal(v: i64, ty: ScalarType) -> String {
    match ty {
        ScalarType::I64 if v == i64::MIN => "INT64_MIN".into(),
        ScalarType::I64 => format!("INT64_C({v})"),
        ScalarType::I32 if v == i32::MIN as i64 => "INT32_MIN".into(),
        _ if v < 0 => format!("({v})"),
        _ => v.to_string(),
    }
}

/// A float literal that reads back as exactly `f`.
pub(super) fn float_literal(f: f32) -> String {
    if f.is_nan() {
        "(0.0f / 0.0f)".into()
    } else if f.is_infinite() {
        if f > 0.0 {
            "(1.0f / 0.0f)".into()
        } else {
            "(-1.0f / 0.0f)".into()
        }
    } else if f < 0.0 {
        format!("({:e}f)", f)
    } else {
        format!("{:e}f", f)
    }
}

/// Writes `func` as `static void name(...) { ... }`. Parameters get `restrict` except the pair
/// the arena plan lets share memory.
pub(super) fn write_func(c: &mut String, name: &str, func: &Func, shared: Option<SharedArgs>) {
    let used = Used::of(func);
    let params: Vec<String> = func
        .params()
        .map(|(_, b)| {
            let BufferKind::Param { index, access } = b.kind else {
                unreachable!("params")
            };
            let constness = if access == Access::Read { "const " } else { "" };
            let shared = shared.is_some_and(|p| p.input == index || p.output == index);
            let restrict = if shared { "" } else { "restrict " };
            format!("{constness}{} *{restrict}{}", c_type(b.elem), b.name)
        })
        .collect();
    let _ = writeln!(
        c,
        "static MINNOW_LAYER_FN void {name}({}) {{",
        params.join(", ")
    );
    for (id, b) in func.params() {
        if !used.bufs.contains(&id) {
            let _ = writeln!(c, "  (void){};", b.name);
        }
    }
    let mut w = Writer {
        func,
        out: c,
        used: &used,
    };
    w.block(&func.body, 1);
    c.push_str("}\n\n");
}

/// The variables and buffers a function reads.
struct Used {
    vars: HashSet<VarId>,
    bufs: HashSet<BufId>,
}

impl Used {
    fn of(func: &Func) -> Used {
        let mut u = Used {
            vars: HashSet::new(),
            bufs: HashSet::new(),
        };
        u.visit_block(&func.body);
        u
    }
}

impl Visitor for Used {
    fn visit_store(&mut self, buf: BufId, index: &Expr, value: &Expr) {
        self.bufs.insert(buf);
        self.visit_expr(index);
        self.visit_expr(value);
    }

    fn visit_expr(&mut self, e: &Expr) {
        match e {
            Expr::Var(v) => {
                self.vars.insert(*v);
            }
            Expr::Load { buf, .. } | Expr::LoadWord { buf, .. } => {
                self.bufs.insert(*buf);
            }
            _ => {}
        }
        walk_expr(self, e);
    }
}

struct Writer<'a> {
    func: &'a Func,
    out: &'a mut String,
    used: &'a Used,
}

impl Writer<'_> {
    fn block(&mut self, stmts: &[Stmt], depth: usize) {
        for s in stmts {
            self.stmt(s, depth);
        }
    }

    fn stmt(&mut self, s: &Stmt, depth: usize) {
        let pad = "  ".repeat(depth);
        match s {
            Stmt::For {
                var,
                extent,
                kind,
                body,
            } => {
                let v = &self.func.var(*var).name;
                if *kind == ForKind::Unrolled {
                    let _ = writeln!(self.out, "{pad}#pragma GCC unroll {extent}");
                }
                let _ = writeln!(
                    self.out,
                    "{pad}for (int32_t {v} = 0; {v} < {extent}; ++{v}) {{"
                );
                self.block(body, depth + 1);
                let _ = writeln!(self.out, "{pad}}}");
            }
            Stmt::Store { buf, index, value } => {
                let line = format!(
                    "{pad}{}[{}] = {};",
                    self.func.buffer(*buf).name,
                    self.expr(index, false),
                    self.expr(value, true)
                );
                let _ = writeln!(self.out, "{line}");
            }
            Stmt::Let { var, value } => {
                if self.used.vars.contains(var) {
                    let v = self.func.var(*var);
                    let line = format!(
                        "{pad}const {} {} = {};",
                        c_type(v.ty),
                        v.name,
                        self.expr(value, false)
                    );
                    let _ = writeln!(self.out, "{line}");
                }
            }
            Stmt::If {
                cond,
                then,
                otherwise,
            } => {
                let line = format!("{pad}if ({}) {{", self.expr(cond, false));
                let _ = writeln!(self.out, "{line}");
                self.block(then, depth + 1);
                if !otherwise.is_empty() {
                    let _ = writeln!(self.out, "{pad}}} else {{");
                    self.block(otherwise, depth + 1);
                }
                let _ = writeln!(self.out, "{pad}}}");
            }
            Stmt::Alloc { buf } => {
                let b = self.func.buffer(*buf);
                let _ = writeln!(
                    self.out,
                    "{pad}{} {}[{}] = {{0}};",
                    c_type(b.elem),
                    b.name,
                    b.len.max(1)
                );
            }
        }
    }

    fn ty(&self, e: &Expr) -> ScalarType {
        self.func.type_of(e).expect("verified function")
    }

    /// `e` in C. With `wrap`, `i32`/`i64` arithmetic wraps (it computes a value that the
    /// reference kernels compute with wrapping `int32_t` sums); otherwise (indices, loop-bound
    /// arithmetic, which never overflow) it is plain signed arithmetic the compiler can
    /// optimise freely.
    fn expr(&self, e: &Expr, wrap: bool) -> String {
        match e {
            Expr::Int { value, ty } => match ty {
                ScalarType::I32 | ScalarType::I64 | ScalarType::Bool => int_literal(*value, *ty),
                narrow => format!(
                    "(({}){})",
                    c_type(*narrow),
                    int_literal(*value, ScalarType::I32)
                ),
            },
            Expr::Float(f) => float_literal(*f),
            Expr::Var(v) => self.func.var(*v).name.clone(),
            Expr::Load { buf, index } => format!(
                "{}[{}]",
                self.func.buffer(*buf).name,
                self.expr(index, false)
            ),
            Expr::LoadWord { buf, index } => format!(
                "minnow_load_word(&{}[{}])",
                self.func.buffer(*buf).name,
                self.expr(index, false)
            ),
            Expr::Unary { op: UnOp::Neg, arg } => format!("(-{})", self.expr(arg, wrap)),
            Expr::Unary { op: UnOp::Not, arg } => format!("(!{})", self.expr(arg, wrap)),
            Expr::Binary { op, lhs, rhs } => self.binary(*op, lhs, rhs, wrap),
            Expr::Cast { ty, arg } => format!("(({}){})", c_type(*ty), self.expr(arg, wrap)),
            Expr::Select {
                cond,
                then,
                otherwise,
            } => format!(
                "({} ? {} : {})",
                self.expr(cond, wrap),
                self.expr(then, wrap),
                self.expr(otherwise, wrap)
            ),
            Expr::Call { intrinsic, args } => {
                let args: Vec<String> = args.iter().map(|a| self.expr(a, wrap)).collect();
                format!("minnow_{}({})", intrinsic.name(), args.join(", "))
            }
        }
    }

    fn binary(&self, op: BinOp, lhs: &Expr, rhs: &Expr, wrap: bool) -> String {
        // min(max(x, lo), hi) on i32: one call, which saturating cores do in one instruction.
        if let (
            BinOp::Min,
            Expr::Binary {
                op: BinOp::Max,
                lhs: x,
                rhs: lo,
            },
        ) = (op, lhs)
        {
            if self.ty(x) == ScalarType::I32 {
                let (x, lo, hi) = (
                    self.expr(x, wrap),
                    self.expr(lo, wrap),
                    self.expr(rhs, wrap),
                );
                return format!("minnow_clamp_i32({x}, {lo}, {hi})");
            }
        }
        let (a, b) = (self.expr(lhs, wrap), self.expr(rhs, wrap));
        match op {
            BinOp::Min | BinOp::Max => {
                let name = if op == BinOp::Min { "min" } else { "max" };
                format!("minnow_{name}_{}({a}, {b})", self.ty(lhs).name())
            }
            // Wrapping i32 arithmetic: the reference kernels' int32_t sums may wrap, which C
            // leaves undefined for signed types, so they go through uint32_t.
            BinOp::Add | BinOp::Sub | BinOp::Mul if wrap && self.ty(lhs) == ScalarType::I32 => {
                format!("((int32_t)((uint32_t){a} {} (uint32_t){b}))", op.symbol())
            }
            BinOp::Add | BinOp::Sub | BinOp::Mul if wrap && self.ty(lhs) == ScalarType::I64 => {
                format!("((int64_t)((uint64_t){a} {} (uint64_t){b}))", op.symbol())
            }
            _ => format!("({a} {} {b})", op.symbol()),
        }
    }
}
