//! One loop function as an `unsafe fn` over raw pointers (two of a layer's buffers may share
//! memory, which references could not express), with wrapping integer arithmetic everywhere:
//! the generated crate computes the same bits in debug and release builds.

use minnow_ir::loops::{
    BinOp, BufId, BufferKind, Expr, ForKind, Func, Intrinsic, ScalarType, Stmt, UnOp,
};
use std::fmt::Write;

/// The Rust type of a scalar type: the loop IR's own names are Rust's.
fn rust_type(t: ScalarType) -> &'static str {
    t.name()
}

/// The runtime function (in the generated crate's `runtime` module) an intrinsic calls.
fn runtime_path(i: Intrinsic) -> &'static str {
    match i {
        Intrinsic::SaturatingRoundingDoublingHighMul => {
            "fixedpoint::saturating_rounding_doubling_high_mul"
        }
        Intrinsic::RoundingDivideByPot => "fixedpoint::rounding_divide_by_pot",
        Intrinsic::MultiplyByQuantizedMultiplier => "fixedpoint::multiply_by_quantized_multiplier",
        Intrinsic::MultiplyByQuantizedMultiplierHighShift => {
            "fixedpoint::multiply_by_quantized_multiplier_high_shift"
        }
        Intrinsic::MultiplyByQuantizedMultiplierHighShiftOffset => {
            "fixedpoint::multiply_by_quantized_multiplier_high_shift_offset"
        }
        Intrinsic::MultiplyByQuantizedMultiplierHighMul => {
            "fixedpoint::multiply_by_quantized_multiplier_high_mul"
        }
        Intrinsic::MultiplyByQuantizedMultiplierWide => {
            "fixedpoint::multiply_by_quantized_multiplier_i64"
        }
        Intrinsic::MultiplyByQuantizedMultiplierSmallerThanOneExp => {
            "fixedpoint::multiply_by_quantized_multiplier_smaller_than_one_exp"
        }
        Intrinsic::MultiplyByQuantizedMultiplierGreaterThanOne => {
            "fixedpoint::multiply_by_quantized_multiplier_greater_than_one"
        }
        Intrinsic::ExpOnNegativeValues => "fixedpoint::exp_on_negative_values",
        Intrinsic::OneOverOnePlusX => "fixedpoint::one_over_one_plus_x_for_x_in_0_1",
        Intrinsic::CountLeadingZeros => "count_leading_zeros",
        Intrinsic::Logistic => "fixedpoint::logistic",
        Intrinsic::Tanh => "fixedpoint::tanh",
        Intrinsic::ExpF32 => "floatfn::exp",
        Intrinsic::LogisticF32 => "floatfn::logistic",
        Intrinsic::TanhF32 => "floatfn::tanh",
        Intrinsic::Sxtab16 => "simd::sxtab16",
        Intrinsic::Sxtab16Ror8 => "simd::sxtab16_ror8",
        Intrinsic::Smlad => "simd::smlad",
        Intrinsic::Smlabb => "simd::smlabb",
        Intrinsic::Smlatt => "simd::smlatt",
        Intrinsic::WinogradPair => "simd::winograd_pair",
    }
}

/// Rust's keywords, which IR names may spell.
const KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for",
    "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return",
    "self", "Self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where",
    "while", "async", "await", "dyn", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
];

/// An IR name as a Rust identifier.
fn ident(name: &str) -> String {
    if KEYWORDS.contains(&name) {
        format!("{name}_")
    } else {
        name.to_string()
    }
}

/// Writes `func` as `unsafe fn name(params) { ... }`.
pub(super) fn write_func(out: &mut String, name: &str, func: &Func) {
    let params: Vec<String> = func
        .params()
        .map(|(_, b)| {
            let BufferKind::Param { access, .. } = b.kind else {
                unreachable!("params")
            };
            let pointer = if access == minnow_ir::loops::Access::Read {
                "*const"
            } else {
                "*mut"
            };
            format!("{}: {pointer} {}", ident(&b.name), rust_type(b.elem))
        })
        .collect();
    let _ = writeln!(
        out,
        "#[inline(never)]\nunsafe fn {name}({}) {{",
        params.join(", ")
    );
    let mut w = Writer { func, out };
    w.block(&func.body, 1);
    w.out.push_str("}\n\n");
}

struct Writer<'a> {
    func: &'a Func,
    out: &'a mut String,
}

impl Writer<'_> {
    fn block(&mut self, stmts: &[Stmt], depth: usize) {
        for s in stmts {
            self.stmt(s, depth);
        }
    }

    fn buf(&self, b: BufId) -> String {
        ident(&self.func.buffer(b).name)
    }

    fn stmt(&mut self, s: &Stmt, depth: usize) {
        let pad = "    ".repeat(depth);
        let line = match s {
            Stmt::For {
                var,
                extent,
                kind,
                body,
            } => {
                let v = ident(&self.func.var(*var).name);
                let note = if *kind == ForKind::Unrolled {
                    " // unrolled"
                } else {
                    ""
                };
                let _ = writeln!(self.out, "{pad}for {v} in 0..{extent}_i32 {{{note}");
                self.block(body, depth + 1);
                format!("{pad}}}")
            }
            Stmt::Store { buf, index, value } => format!(
                "{pad}*{}.add({} as usize) = {};",
                self.buf(*buf),
                self.expr(index),
                self.expr(value)
            ),
            Stmt::Let { var, value } => {
                let v = self.func.var(*var);
                format!(
                    "{pad}let {}: {} = {};",
                    ident(&v.name),
                    rust_type(v.ty),
                    self.expr(value)
                )
            }
            Stmt::If {
                cond,
                then,
                otherwise,
            } => {
                let _ = writeln!(self.out, "{pad}if {} {{", self.condition(cond));
                self.block(then, depth + 1);
                if !otherwise.is_empty() {
                    let _ = writeln!(self.out, "{pad}}} else {{");
                    self.block(otherwise, depth + 1);
                }
                format!("{pad}}}")
            }
            Stmt::Alloc { buf } => {
                let b = self.func.buffer(*buf);
                let name = ident(&b.name);
                format!(
                    "{pad}let mut {name}_storage = [{}; {}];\n{pad}let {name}: *mut {} = {name}_storage.as_mut_ptr();",
                    zero(b.elem),
                    b.len.max(1),
                    rust_type(b.elem)
                )
            }
        };
        let _ = writeln!(self.out, "{line}");
    }

    fn ty(&self, e: &Expr) -> ScalarType {
        self.func.type_of(e).expect("verified function")
    }

    /// `e` as a Rust `bool`.
    fn condition(&self, e: &Expr) -> String {
        match self.ty(e) {
            ScalarType::Bool => self.expr(e),
            _ => format!("({} != 0)", self.expr(e)),
        }
    }

    fn expr(&self, e: &Expr) -> String {
        match e {
            Expr::Int { value, ty } => int_literal(*value, *ty),
            Expr::Float(f) => format!("f32::from_bits({:#010x})", f.to_bits()),
            Expr::Var(v) => ident(&self.func.var(*v).name),
            Expr::Load { buf, index } => {
                format!("(*{}.add({} as usize))", self.buf(*buf), self.expr(index))
            }
            Expr::LoadWord { buf, index } => format!(
                "load_word({}.add({} as usize))",
                self.buf(*buf),
                self.expr(index)
            ),
            Expr::Unary { op: UnOp::Neg, arg } => match self.ty(arg) {
                ScalarType::F32 => format!("(-{})", self.expr(arg)),
                _ => format!("{}.wrapping_neg()", self.expr(arg)),
            },
            Expr::Unary { op: UnOp::Not, arg } => format!("(!{})", self.condition(arg)),
            Expr::Binary { op, lhs, rhs } => self.binary(*op, lhs, rhs),
            Expr::Cast { ty, arg } => self.cast(*ty, arg),
            Expr::Select {
                cond,
                then,
                otherwise,
            } => format!(
                "(if {} {{ {} }} else {{ {} }})",
                self.condition(cond),
                self.expr(then),
                self.expr(otherwise)
            ),
            Expr::Call { intrinsic, args } => {
                let args: Vec<String> = args.iter().map(|a| self.expr(a)).collect();
                format!("{}({})", runtime_path(*intrinsic), args.join(", "))
            }
        }
    }

    /// Conversions as the loop interpreter makes them: integers truncate or sign-extend
    /// through `i64`, floats truncate toward zero through `i64`.
    fn cast(&self, ty: ScalarType, arg: &Expr) -> String {
        let from = self.ty(arg);
        let a = self.expr(arg);
        match (from, ty) {
            (f, t) if f == t => a,
            (_, ScalarType::Bool) if from == ScalarType::F32 => format!("(({a} as i64) != 0)"),
            (_, ScalarType::Bool) => format!("({a} != 0)"),
            (ScalarType::Bool, t) => format!("({a} as {})", rust_type(t)),
            (ScalarType::F32, t) => format!("(({a} as i64) as {})", rust_type(t)),
            (_, t) => format!("({a} as {})", rust_type(t)),
        }
    }

    fn binary(&self, op: BinOp, lhs: &Expr, rhs: &Expr) -> String {
        let ty = self.ty(lhs);
        let (a, b) = (self.expr(lhs), self.expr(rhs));
        if op.is_logical() {
            let (a, b) = (self.condition(lhs), self.condition(rhs));
            let sym = if op == BinOp::And { "&&" } else { "||" };
            return format!("({a} {sym} {b})");
        }
        if op.is_comparison() {
            return format!("({a} {} {b})", op.symbol());
        }
        if ty == ScalarType::F32 {
            return match op {
                BinOp::Min => format!("min_f32({a}, {b})"),
                BinOp::Max => format!("max_f32({a}, {b})"),
                _ => format!("({a} {} {b})", op.symbol()),
            };
        }
        let method = match op {
            BinOp::Add => "wrapping_add",
            BinOp::Sub => "wrapping_sub",
            BinOp::Mul => "wrapping_mul",
            BinOp::Div => "wrapping_div",
            BinOp::Rem => "wrapping_rem",
            BinOp::Min => "min",
            BinOp::Max => "max",
            BinOp::Shl => return format!("{a}.wrapping_shl({b} as u32)"),
            BinOp::Shr => return format!("{a}.wrapping_shr({b} as u32)"),
            _ => return format!("({a} {} {b})", op.symbol()),
        };
        format!("{a}.{method}({b})")
    }
}

/// An integer literal of type `ty`.
fn int_literal(v: i64, ty: ScalarType) -> String {
    match ty {
        ScalarType::Bool => (v != 0).to_string(),
        ScalarType::I64 if v == i64::MIN => "i64::MIN".into(),
        ScalarType::F32 => format!("({v} as f32)"),
        t if v < 0 => format!("({v}_{})", rust_type(t)),
        t => format!("{v}_{}", rust_type(t)),
    }
}

/// The zero of `t`.
fn zero(t: ScalarType) -> &'static str {
    match t {
        ScalarType::Bool => "false",
        ScalarType::F32 => "0.0_f32",
        ScalarType::I8 => "0_i8",
        ScalarType::U8 => "0_u8",
        ScalarType::I16 => "0_i16",
        ScalarType::I32 => "0_i32",
        ScalarType::I64 => "0_i64",
    }
}
