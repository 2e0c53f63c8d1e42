//! One loop function as a Cranelift function `fn(args: *const *mut u8)`: the parameters'
//! pointers arrive in one array (every step has the same signature), serial loops become
//! blocks with the counter in a frontend variable, unrolled ones copies of their body with the
//! counter a constant (see [`registers`](super::registers)), and every integer operation is
//! Cranelift's wrapping one, as the loop interpreter computes it.

use super::registers::{unrolls, Layout, Registers};
use super::vector::unit_stride;
use super::{fixedpoint, intrinsics};
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::MemFlagsData;
use cranelift_codegen::ir::{
    types, AbiParam, InstBuilder, StackSlotData, StackSlotKind, Type, Value,
};
use cranelift_frontend::{FunctionBuilder, Variable};
use cranelift_jit::JITModule;
use cranelift_module::{Linkage, Module};
use minnow_ir::loops::{BinOp, BufId, Expr, Func, Intrinsic, ScalarType, Stmt, UnOp, VarId};
use std::collections::{HashMap, HashSet};

/// The Cranelift type of a scalar type (`bool` is an `i8` of 0 or 1, as comparisons give).
pub(super) fn clif(t: ScalarType) -> Type {
    match t {
        ScalarType::Bool | ScalarType::I8 | ScalarType::U8 => types::I8,
        ScalarType::I16 => types::I16,
        ScalarType::I32 => types::I32,
        ScalarType::I64 => types::I64,
        ScalarType::F32 => types::F32,
    }
}

/// Translates one function's body into `b`, whose entry block has the argument array.
pub(super) struct Translator<'a, 'b> {
    pub func: &'a Func,
    pub b: FunctionBuilder<'b>,
    pub module: &'a mut JITModule,
    pub vars: HashMap<VarId, Variable>,
    pub bufs: HashMap<BufId, Value>,
    pub calls: HashMap<Intrinsic, cranelift_codegen::ir::FuncRef>,
    /// The counters of the unrolled loops around the statement being translated.
    pub known: HashMap<VarId, i64>,
    /// The local buffers kept in registers ([`super::registers::register_buffers`]).
    pub in_registers: HashMap<BufId, Layout>,
    /// Each allocated register buffer's variables.
    pub registers: HashMap<BufId, Registers>,
    /// The parameters nothing writes while the function runs (read-only and not sharing
    /// memory with an output): their loads are pure, so Cranelift may hoist and sink them.
    pub read_only: HashSet<BufId>,
    /// The constant `i8` parameters stored as `i32` ([`super::widen`]).
    pub widened: HashSet<BufId>,
    /// How many serial loops enclose the statement being translated.
    pub depth: usize,
    /// The depth at which each variable is defined (a loop counter: its loop's).
    pub depths: HashMap<VarId, usize>,
}

impl Translator<'_, '_> {
    pub(super) fn ptr(&self) -> Type {
        self.module.target_config().pointer_type()
    }

    /// Binds each parameter's pointer from the argument array.
    pub fn bind_params(&mut self, args: Value) {
        let ptr = self.ptr();
        let params: Vec<BufId> = self.func.params().map(|(id, _)| id).collect();
        for (k, id) in params.into_iter().enumerate() {
            let offset = (k * ptr.bytes() as usize) as i32;
            let p = self
                .b
                .ins()
                .load(ptr, MemFlagsData::trusted(), args, offset);
            self.bufs.insert(id, p);
        }
    }

    pub fn block(&mut self, stmts: &[Stmt]) -> Result<(), String> {
        for s in stmts {
            self.stmt(s)?;
        }
        Ok(())
    }

    fn stmt(&mut self, s: &Stmt) -> Result<(), String> {
        match s {
            Stmt::For {
                var,
                extent,
                kind,
                body,
            } => {
                if unrolls(*kind, *extent) && self.vectorizes(*var, *extent, body) {
                    self.vector_loop(*var, *extent, body)?;
                } else if unrolls(*kind, *extent) {
                    for k in 0..*extent {
                        self.known.insert(*var, k as i64);
                        self.block(body)?;
                    }
                    self.known.remove(var);
                } else if !self.fill(*var, *extent, body)? {
                    self.serial_loop(*var, *extent, body)?;
                }
            }
            Stmt::Store { buf, index, value } => {
                let value = self.expr(value)?;
                if !self.write_register(*buf, index, value)? {
                    let (addr, offset) = self.address(*buf, index)?;
                    self.b
                        .ins()
                        .store(MemFlagsData::trusted(), value, addr, offset);
                }
            }
            Stmt::Let { var, value } => {
                let ty = clif(self.func.var(*var).ty);
                let v = self.var(*var, ty);
                let value = self.expr(value)?;
                self.b.def_var(v, value);
                self.depths.insert(*var, self.depth);
            }
            Stmt::If {
                cond,
                then,
                otherwise,
            } => self.if_else(cond, then, otherwise)?,
            Stmt::Alloc { buf } if self.in_registers.contains_key(buf) => {
                self.alloc_registers(*buf);
            }
            Stmt::Alloc { buf } => self.alloc_stack(*buf),
        }
        Ok(())
    }

    /// `if cond { then } else { otherwise }` as two blocks joining in a third.
    fn if_else(&mut self, cond: &Expr, then: &[Stmt], otherwise: &[Stmt]) -> Result<(), String> {
        let c = self.expr(cond)?;
        let (t, o, merge) = (
            self.b.create_block(),
            self.b.create_block(),
            self.b.create_block(),
        );
        self.b.ins().brif(c, t, &[], o, &[]);
        for (block, body) in [(t, then), (o, otherwise)] {
            self.b.switch_to_block(block);
            self.b.seal_block(block);
            self.block(body)?;
            self.b.ins().jump(merge, &[]);
        }
        self.b.switch_to_block(merge);
        self.b.seal_block(merge);
        Ok(())
    }

    /// A local buffer in memory: a zeroed stack slot.
    fn alloc_stack(&mut self, buf: BufId) {
        let decl = self.func.buffer(buf);
        let bytes = (decl.len.max(1) * decl.elem.size().max(1)) as u32;
        let slot = self.b.create_sized_stack_slot(StackSlotData::new(
            StackSlotKind::ExplicitSlot,
            bytes,
            3,
        ));
        let ptr = self.ptr();
        let addr = self.b.ins().stack_addr(ptr, slot, 0);
        let config = self.module.target_config();
        // The fill byte is an i8: call_memset widens it for the C ABI.
        let (zero, size) = (
            self.b.ins().iconst(types::I8, 0),
            self.b.ins().iconst(ptr, bytes as i64),
        );
        self.b.call_memset(config, addr, zero, size);
        self.bufs.insert(buf, addr);
    }

    /// `for var in 0..extent { buf[var + rest] = byte }`, where `rest` does not depend on
    /// `var`, into a byte buffer in memory as one `memset` (a padded tensor's fill); `false`,
    /// emitting nothing, for any other loop.
    fn fill(&mut self, var: VarId, extent: usize, body: &[Stmt]) -> Result<bool, String> {
        let [Stmt::Store { buf, index, value }] = body else {
            return Ok(false);
        };
        let bytes = matches!(self.func.buffer(*buf).elem, ScalarType::I8 | ScalarType::U8);
        // A constant, or an integer constant cast to the byte type (which keeps its low byte).
        let constant = match value {
            Expr::Cast { arg, .. } => arg.as_int(),
            _ => value.as_int(),
        };
        let Some(byte) = constant.filter(|_| bytes) else {
            return Ok(false);
        };
        let in_memory = !self.registers.contains_key(buf) && !self.in_registers.contains_key(buf);
        if !unit_stride(index, var) || !in_memory {
            return Ok(false);
        }
        self.known.insert(var, 0);
        let (addr, offset) = self.address(*buf, index)?;
        self.known.remove(&var);
        let ptr = self.ptr();
        let start = self.b.ins().iadd_imm_s(addr, offset as i64);
        let (fill, size) = (
            self.b.ins().iconst(types::I8, byte & 0xff),
            self.b.ins().iconst(ptr, extent as i64),
        );
        let config = self.module.target_config();
        self.b.call_memset(config, start, fill, size);
        Ok(true)
    }

    /// `for var in 0..extent { body }` as a rotated loop: the body block tests at its end.
    fn serial_loop(&mut self, var: VarId, extent: usize, body: &[Stmt]) -> Result<(), String> {
        if extent == 0 {
            return Ok(());
        }
        let v = self.var(var, types::I32);
        let zero = self.b.ins().iconst(types::I32, 0);
        self.b.def_var(v, zero);
        let (inner, exit) = (self.b.create_block(), self.b.create_block());
        self.b.ins().jump(inner, &[]);
        self.b.switch_to_block(inner);
        self.depth += 1;
        self.depths.insert(var, self.depth);
        self.block(body)?;
        self.depth -= 1;
        let i = self.b.use_var(v);
        let next = self.b.ins().iadd_imm_s(i, 1);
        self.b.def_var(v, next);
        let more = self
            .b
            .ins()
            .icmp_imm_s(IntCC::SignedLessThan, next, extent as i64);
        self.b.ins().brif(more, inner, &[], exit, &[]);
        self.b.seal_block(inner);
        self.b.switch_to_block(exit);
        self.b.seal_block(exit);
        Ok(())
    }

    /// `buf[index]`: from its register, its widened `i32`, or memory.
    fn load(&mut self, buf: BufId, index: &Expr) -> Result<Value, String> {
        if self.widened.contains(&buf) {
            let wide = self.widened_load(buf, index)?;
            return Ok(self.b.ins().ireduce(types::I8, wide));
        }
        if let Some(value) = self.read_register(buf, index)? {
            return Ok(value);
        }
        let (addr, offset) = self.address(buf, index)?;
        let t = clif(self.func.buffer(buf).elem);
        let flags = self.load_flags(buf, MemFlagsData::trusted());
        Ok(self.b.ins().load(t, flags, addr, offset))
    }

    /// Whether `e` loads from a widened parameter.
    pub(super) fn is_widened_load(&self, e: &Expr) -> bool {
        matches!(e, Expr::Load { buf, .. } if self.widened.contains(buf))
    }

    /// The `i32` stored for `buf[index]`, `buf` widened.
    fn widened_load(&mut self, buf: BufId, index: &Expr) -> Result<Value, String> {
        let (addr, offset) = self.address(buf, index)?;
        let flags = self.load_flags(buf, MemFlagsData::trusted());
        Ok(self.b.ins().load(types::I32, flags, addr, offset))
    }

    /// `flags` for a load of `buf`, marked movable when nothing writes `buf`.
    pub(super) fn load_flags(&self, buf: BufId, flags: MemFlagsData) -> MemFlagsData {
        if self.read_only.contains(&buf) {
            flags.with_readonly().with_can_move()
        } else {
            flags
        }
    }

    fn var(&mut self, v: VarId, ty: Type) -> Variable {
        if let Some(var) = self.vars.get(&v) {
            return *var;
        }
        let var = self.b.declare_var(ty);
        self.vars.insert(v, var);
        var
    }

    pub(super) fn ty(&self, e: &Expr) -> ScalarType {
        self.func.type_of(e).expect("verified function")
    }

    pub(super) fn expr(&mut self, e: &Expr) -> Result<Value, String> {
        Ok(match e {
            Expr::Int { value, ty } => {
                let t = clif(*ty);
                let mask = u64::MAX >> (64 - t.bits());
                self.b.ins().iconst(t, (*value as u64 & mask) as i64)
            }
            Expr::Float(f) => self.b.ins().f32const(*f),
            Expr::Var(v) => match self.known.get(v) {
                Some(k) => self.b.ins().iconst(types::I32, *k),
                None => {
                    let var = self.vars[v];
                    self.b.use_var(var)
                }
            },
            Expr::Load { buf, index } => self.load(*buf, index)?,
            Expr::LoadWord { buf, index } => {
                let (addr, offset) = self.address(*buf, index)?;
                // A word of bytes need not be aligned.
                let flags = self.load_flags(*buf, MemFlagsData::new().with_notrap());
                self.b.ins().load(types::I32, flags, addr, offset)
            }
            Expr::Unary { op, arg } => {
                let float = self.ty(arg) == ScalarType::F32;
                let a = self.expr(arg)?;
                match (op, float) {
                    (UnOp::Neg, true) => self.b.ins().fneg(a),
                    (UnOp::Neg, false) => self.b.ins().ineg(a),
                    (UnOp::Not, _) => self.b.ins().icmp_imm_s(IntCC::Equal, a, 0),
                }
            }
            Expr::Binary { op, lhs, rhs } => {
                let ty = self.ty(lhs);
                let (a, b) = (self.expr(lhs)?, self.expr(rhs)?);
                if ty == ScalarType::F32 {
                    self.float_binary(*op, a, b)
                } else {
                    self.int_binary(*op, ty, a, b)
                }
            }
            Expr::Cast { ty, arg } if self.is_widened_load(arg) => {
                let Expr::Load { buf, index } = &**arg else {
                    unreachable!("checked by is_widened_load")
                };
                // The stored i32 is the i8 sign-extended: casting it gives the same value.
                let wide = self.widened_load(*buf, index)?;
                self.cast(ScalarType::I32, *ty, wide)
            }
            Expr::Cast { ty, arg } => {
                let from = self.ty(arg);
                let a = self.expr(arg)?;
                self.cast(from, *ty, a)
            }
            Expr::Select {
                cond,
                then,
                otherwise,
            } => {
                let c = self.expr(cond)?;
                let (t, o) = (self.expr(then)?, self.expr(otherwise)?);
                self.b.ins().select(c, t, o)
            }
            Expr::Call { intrinsic, args } => {
                let values = args
                    .iter()
                    .map(|a| self.expr(a))
                    .collect::<Result<Vec<_>, _>>()?;
                if let Some(v) = fixedpoint::inline(&mut self.b, *intrinsic, &values) {
                    return Ok(v);
                }
                let f = self.intrinsic(*intrinsic)?;
                let call = self.b.ins().call(f, &values);
                self.b.inst_results(call)[0]
            }
        })
    }

    fn intrinsic(&mut self, i: Intrinsic) -> Result<cranelift_codegen::ir::FuncRef, String> {
        if let Some(f) = self.calls.get(&i) {
            return Ok(*f);
        }
        let (args, result) = i.signature();
        let mut sig = self.module.make_signature();
        sig.params
            .extend(args.iter().map(|t| AbiParam::new(clif(*t))));
        let result = if matches!(
            i,
            Intrinsic::ExpF32 | Intrinsic::LogisticF32 | Intrinsic::TanhF32
        ) {
            types::F32
        } else {
            clif(result)
        };
        sig.returns.push(AbiParam::new(result));
        let id = self
            .module
            .declare_function(&intrinsics::symbol(i), Linkage::Import, &sig)
            .map_err(|e| e.to_string())?;
        let f = self.module.declare_func_in_func(id, self.b.func);
        self.calls.insert(i, f);
        Ok(f)
    }

    fn float_binary(&mut self, op: BinOp, a: Value, b: Value) -> Value {
        let ins = self.b.ins();
        match op {
            BinOp::Add => ins.fadd(a, b),
            BinOp::Sub => ins.fsub(a, b),
            BinOp::Mul => ins.fmul(a, b),
            BinOp::Div => ins.fdiv(a, b),
            // As C++'s std::min and std::max: a NaN first operand stays.
            BinOp::Min => {
                let less = self.b.ins().fcmp(FloatCC::LessThan, b, a);
                self.b.ins().select(less, b, a)
            }
            BinOp::Max => {
                let less = self.b.ins().fcmp(FloatCC::LessThan, a, b);
                self.b.ins().select(less, b, a)
            }
            BinOp::Lt => ins.fcmp(FloatCC::LessThan, a, b),
            BinOp::Le => ins.fcmp(FloatCC::LessThanOrEqual, a, b),
            BinOp::Eq => ins.fcmp(FloatCC::Equal, a, b),
            BinOp::Ne => ins.fcmp(FloatCC::NotEqual, a, b),
            _ => ins.f32const(f32::NAN),
        }
    }

    fn int_binary(&mut self, op: BinOp, ty: ScalarType, a: Value, b: Value) -> Value {
        let unsigned = matches!(ty, ScalarType::U8 | ScalarType::Bool);
        let cc = |signed: IntCC, u: IntCC| if unsigned { u } else { signed };
        match op {
            BinOp::Add => self.b.ins().iadd(a, b),
            BinOp::Sub => self.b.ins().isub(a, b),
            BinOp::Mul => self.b.ins().imul(a, b),
            BinOp::Div | BinOp::Rem if unsigned => {
                if op == BinOp::Div {
                    self.b.ins().udiv(a, b)
                } else {
                    self.b.ins().urem(a, b)
                }
            }
            BinOp::Div | BinOp::Rem => self.signed_division(op, a, b),
            BinOp::Min if unsigned => self.b.ins().umin(a, b),
            BinOp::Max if unsigned => self.b.ins().umax(a, b),
            BinOp::Min => self.b.ins().smin(a, b),
            BinOp::Max => self.b.ins().smax(a, b),
            BinOp::Shl => self.b.ins().ishl(a, b),
            BinOp::Shr if unsigned => self.b.ins().ushr(a, b),
            BinOp::Shr => self.b.ins().sshr(a, b),
            BinOp::BitAnd => self.b.ins().band(a, b),
            BinOp::BitOr => self.b.ins().bor(a, b),
            BinOp::Lt => {
                self.b
                    .ins()
                    .icmp(cc(IntCC::SignedLessThan, IntCC::UnsignedLessThan), a, b)
            }
            BinOp::Le => self.b.ins().icmp(
                cc(IntCC::SignedLessThanOrEqual, IntCC::UnsignedLessThanOrEqual),
                a,
                b,
            ),
            BinOp::Eq => self.b.ins().icmp(IntCC::Equal, a, b),
            BinOp::Ne => self.b.ins().icmp(IntCC::NotEqual, a, b),
            BinOp::And | BinOp::Or => {
                let x = self.b.ins().icmp_imm_s(IntCC::NotEqual, a, 0);
                let y = self.b.ins().icmp_imm_s(IntCC::NotEqual, b, 0);
                if op == BinOp::And {
                    self.b.ins().band(x, y)
                } else {
                    self.b.ins().bor(x, y)
                }
            }
        }
    }

    /// Wrapping signed division: Cranelift traps on `MIN / -1`, which wraps to `MIN` (and
    /// its remainder is 0), so a divisor of -1 becomes 1 and the quotient is negated.
    fn signed_division(&mut self, op: BinOp, a: Value, b: Value) -> Value {
        let t = self.b.func.dfg.value_type(b);
        let minus_one = self.b.ins().icmp_imm_s(IntCC::Equal, b, -1);
        let one = self.b.ins().iconst(t, 1);
        let divisor = self.b.ins().select(minus_one, one, b);
        if op == BinOp::Div {
            let q = self.b.ins().sdiv(a, divisor);
            let negated = self.b.ins().ineg(a);
            self.b.ins().select(minus_one, negated, q)
        } else {
            self.b.ins().srem(a, divisor)
        }
    }

    /// Conversions as the loop interpreter makes them.
    fn cast(&mut self, from: ScalarType, to: ScalarType, a: Value) -> Value {
        let unsigned = matches!(from, ScalarType::U8 | ScalarType::Bool);
        let (ft, tt) = (clif(from), clif(to));
        match (from, to) {
            _ if from == to => a,
            (ScalarType::F32, ScalarType::Bool) => {
                let i = self.b.ins().fcvt_to_sint_sat(types::I64, a);
                self.b.ins().icmp_imm_s(IntCC::NotEqual, i, 0)
            }
            (_, ScalarType::Bool) => self.b.ins().icmp_imm_s(IntCC::NotEqual, a, 0),
            (ScalarType::F32, _) => {
                let i = self.b.ins().fcvt_to_sint_sat(types::I64, a);
                if tt == types::I64 {
                    i
                } else {
                    self.b.ins().ireduce(tt, i)
                }
            }
            (_, ScalarType::F32) => {
                // Through i64, as the interpreter converts (exact for every integer source).
                let wide = match (ft.bits(), unsigned) {
                    (64, _) => a,
                    (_, true) => self.b.ins().uextend(types::I64, a),
                    (_, false) => self.b.ins().sextend(types::I64, a),
                };
                self.b.ins().fcvt_from_sint(types::F32, wide)
            }
            _ if tt.bits() < ft.bits() => self.b.ins().ireduce(tt, a),
            _ if tt.bits() == ft.bits() => a,
            _ if unsigned => self.b.ins().uextend(tt, a),
            _ => self.b.ins().sextend(tt, a),
        }
    }
}
