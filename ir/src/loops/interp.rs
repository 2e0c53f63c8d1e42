//! The loop IR's own interpreter: runs a [`Func`] or a whole [`Program`] on host buffers.
//!
//! It is the check that sits between lowering (or scheduling) and code generation: a lowered
//! program must give the graph interpreter's bytes, and a scheduled function its unscheduled
//! version's. Out-of-bounds indices, division by zero and oversized shifts are reported as
//! errors naming the function and buffer, never executed.

use super::{BinOp, BufferKind, Expr, Func, Program, ScalarType, SlotKind, Stmt, UnOp};
use std::fmt;

/// A scalar value: an integer (or `bool`) with its type, or a float.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    /// An integer (or `bool`) already wrapped to its type.
    Int(i64, ScalarType),
    /// A float.
    F32(f32),
}

impl Value {
    /// The integer value (floats truncate toward zero).
    pub fn as_int(self) -> i64 {
        match self {
            Value::Int(v, _) => v,
            Value::F32(f) => f as i64,
        }
    }

    fn as_f32(self) -> f32 {
        match self {
            Value::Int(v, _) => v as f32,
            Value::F32(f) => f,
        }
    }
}

/// The contents of one buffer.
#[derive(Clone, Debug, PartialEq)]
pub enum Storage {
    /// Integer elements of type `elem`, widened.
    Int {
        /// The element type (values are kept wrapped to it).
        elem: ScalarType,
        /// The elements.
        data: Vec<i64>,
    },
    /// Float elements.
    F32(Vec<f32>),
}

impl Storage {
    /// `len` zero elements of `elem`.
    pub fn zeros(elem: ScalarType, len: usize) -> Storage {
        match elem {
            ScalarType::F32 => Storage::F32(vec![0.0; len]),
            _ => Storage::Int {
                elem,
                data: vec![0; len],
            },
        }
    }

    /// Decodes little-endian bytes into elements of `elem` (missing bytes read as zero).
    pub fn from_le_bytes(elem: ScalarType, bytes: &[u8]) -> Storage {
        let size = elem.size();
        let len = bytes.len() / size;
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b[..size].copy_from_slice(&bytes[i * size..][..size]);
            u64::from_le_bytes(b)
        };
        match elem {
            ScalarType::F32 => {
                Storage::F32((0..len).map(|i| f32::from_bits(word(i) as u32)).collect())
            }
            _ => Storage::Int {
                elem,
                data: (0..len)
                    .map(|i| elem.wrap(sign_extend(word(i), size)))
                    .collect(),
            },
        }
    }

    /// The elements as little-endian bytes.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        match self {
            Storage::F32(v) => v.iter().flat_map(|f| f.to_le_bytes()).collect(),
            Storage::Int { elem, data } => data
                .iter()
                .flat_map(|v| v.to_le_bytes()[..elem.size()].to_vec())
                .collect(),
        }
    }

    fn len(&self) -> usize {
        match self {
            Storage::F32(v) => v.len(),
            Storage::Int { data, .. } => data.len(),
        }
    }
}

fn sign_extend(word: u64, size: usize) -> i64 {
    let bits = 64 - 8 * size as u32;
    ((word << bits) as i64) >> bits
}

/// Why a function could not be executed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterpError {
    /// The function's name.
    pub func: String,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for InterpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "loop function {}: {}", self.func, self.message)
    }
}

impl std::error::Error for InterpError {}

/// Runs `func` with `args[i]` bound to parameter `i`. Every argument must have the element type
/// and at least the length its parameter declares.
pub fn run_func(func: &Func, args: &mut Vec<Storage>) -> Result<(), InterpError> {
    let binding: Vec<(usize, usize)> = (0..args.len()).map(|a| (a, 0)).collect();
    let locals_from = args.len();
    let result = Machine::new(func, args, &binding).and_then(|mut m| m.block(&func.body));
    args.truncate(locals_from);
    result
}

/// A running function: variable values and the storage of each buffer.
struct Machine<'a> {
    func: &'a Func,
    vars: Vec<Value>,
    /// Index into `store` of each buffer (`usize::MAX` for a local not yet allocated).
    bufs: Vec<usize>,
    /// The element of that storage where each buffer starts (a view's offset).
    starts: Vec<usize>,
    store: &'a mut Vec<Storage>,
}

impl<'a> Machine<'a> {
    fn new(
        func: &'a Func,
        store: &'a mut Vec<Storage>,
        binding: &[(usize, usize)],
    ) -> Result<Machine<'a>, InterpError> {
        let mut bufs = vec![usize::MAX; func.buffers.len()];
        let mut starts = vec![0; func.buffers.len()];
        for (b, decl) in func.buffers.iter().enumerate() {
            if let BufferKind::Param { index, .. } = decl.kind {
                let (s, start) = *binding.get(index).ok_or_else(|| InterpError {
                    func: func.name.clone(),
                    message: format!("no argument for parameter {}", decl.name),
                })?;
                if store[s].len() < start + decl.len {
                    return Err(InterpError {
                        func: func.name.clone(),
                        message: format!(
                            "argument for {} has {} elements, fewer than {}",
                            decl.name,
                            store[s].len().saturating_sub(start),
                            decl.len
                        ),
                    });
                }
                bufs[b] = s;
                starts[b] = start;
            }
        }
        Ok(Machine {
            func,
            vars: vec![Value::Int(0, ScalarType::I32); func.vars.len()],
            bufs,
            starts,
            store,
        })
    }

    fn fail<T>(&self, message: String) -> Result<T, InterpError> {
        Err(InterpError {
            func: self.func.name.clone(),
            message,
        })
    }

    fn block(&mut self, stmts: &[Stmt]) -> Result<(), InterpError> {
        for s in stmts {
            self.stmt(s)?;
        }
        Ok(())
    }

    fn stmt(&mut self, s: &Stmt) -> Result<(), InterpError> {
        match s {
            Stmt::For {
                var, extent, body, ..
            } => {
                for i in 0..*extent {
                    self.vars[var.0 as usize] = Value::Int(i as i64, ScalarType::I32);
                    self.block(body)?;
                }
            }
            Stmt::Store { buf, index, value } => {
                let i = self.index(*buf, index)?;
                let v = self.eval(value)?;
                match &mut self.store[self.bufs[buf.0 as usize]] {
                    Storage::F32(d) => d[i] = v.as_f32(),
                    Storage::Int { elem, data } => data[i] = elem.wrap(v.as_int()),
                }
            }
            Stmt::Let { var, value } => {
                self.vars[var.0 as usize] = self.eval(value)?;
            }
            Stmt::If {
                cond,
                then,
                otherwise,
            } => {
                if self.eval(cond)?.as_int() != 0 {
                    self.block(then)?;
                } else {
                    self.block(otherwise)?;
                }
            }
            Stmt::Alloc { buf } => {
                let b = buf.0 as usize;
                if self.bufs[b] == usize::MAX {
                    let decl = &self.func.buffers[b];
                    self.store.push(Storage::zeros(decl.elem, decl.len));
                    self.bufs[b] = self.store.len() - 1;
                }
            }
        }
        Ok(())
    }

    /// Evaluates an index into `buf` and checks it against the declared length.
    fn index(&mut self, buf: super::BufId, index: &Expr) -> Result<usize, InterpError> {
        self.span(buf, index, 1)
    }

    /// The first of `width` consecutive elements of `buf` from `index`, all in bounds.
    fn span(
        &mut self,
        buf: super::BufId,
        index: &Expr,
        width: usize,
    ) -> Result<usize, InterpError> {
        let i = self.eval(index)?.as_int();
        let decl = &self.func.buffers[buf.0 as usize];
        if i < 0 || i as usize + width > decl.len || self.bufs[buf.0 as usize] == usize::MAX {
            return self.fail(format!(
                "index {i} is out of bounds of {} ({} elements)",
                decl.name, decl.len
            ));
        }
        Ok(i as usize + self.starts[buf.0 as usize])
    }

    fn eval(&mut self, e: &Expr) -> Result<Value, InterpError> {
        Ok(match e {
            Expr::Int { value, ty } => Value::Int(*value, *ty),
            Expr::Float(f) => Value::F32(*f),
            Expr::Var(v) => self.vars[v.0 as usize],
            Expr::Load { buf, index } => {
                let i = self.index(*buf, index)?;
                match &self.store[self.bufs[buf.0 as usize]] {
                    Storage::F32(d) => Value::F32(d[i]),
                    Storage::Int { data, elem } => Value::Int(data[i], *elem),
                }
            }
            Expr::LoadWord { buf, index } => {
                let first = self.span(*buf, index, 4)?;
                let Storage::Int { data, .. } = &self.store[self.bufs[buf.0 as usize]] else {
                    return self.fail("a word load from a float buffer".into());
                };
                let bytes = [0, 1, 2, 3].map(|k| data[first + k] as i8);
                Value::Int(crate::simd::pack(bytes) as i64, ScalarType::I32)
            }
            Expr::Unary { op, arg } => match (op, self.eval(arg)?) {
                (UnOp::Neg, Value::F32(f)) => Value::F32(-f),
                (UnOp::Neg, Value::Int(v, ty)) => Value::Int(ty.wrap(v.wrapping_neg()), ty),
                (UnOp::Not, v) => Value::Int((v.as_int() == 0) as i64, ScalarType::Bool),
            },
            Expr::Binary { op, lhs, rhs } => {
                let (a, b) = (self.eval(lhs)?, self.eval(rhs)?);
                match (a, b) {
                    (Value::F32(x), Value::F32(y)) => float_binary(*op, x, y),
                    (Value::Int(x, ty), _) => self.int_binary(*op, ty, x, b.as_int())?,
                    (Value::F32(_), Value::Int(..)) => {
                        return self.fail("a float and an integer operand".into())
                    }
                }
            }
            Expr::Cast { ty, arg } => {
                let v = self.eval(arg)?;
                match (ty, v) {
                    (ScalarType::F32, v) => Value::F32(v.as_f32()),
                    (ty, v) => Value::Int(ty.wrap(v.as_int()), *ty),
                }
            }
            Expr::Select {
                cond,
                then,
                otherwise,
            } => {
                let (c, t, o) = (self.eval(cond)?, self.eval(then)?, self.eval(otherwise)?);
                if c.as_int() != 0 {
                    t
                } else {
                    o
                }
            }
            Expr::Call { intrinsic, args } => {
                let mut values = [Value::Int(0, ScalarType::I32); 4];
                for (slot, a) in values.iter_mut().zip(args) {
                    *slot = self.eval(a)?;
                }
                intrinsic.eval(&values[..args.len()])
            }
        })
    }

    fn int_binary(&self, op: BinOp, ty: ScalarType, a: i64, b: i64) -> Result<Value, InterpError> {
        let bits = (ty.size() * 8) as i64;
        let r = match op {
            BinOp::Add => a.wrapping_add(b),
            BinOp::Sub => a.wrapping_sub(b),
            BinOp::Mul => a.wrapping_mul(b),
            BinOp::Div | BinOp::Rem if b == 0 => {
                return self.fail(format!("division by zero ({a} {} 0)", op.symbol()))
            }
            BinOp::Div => a.wrapping_div(b),
            BinOp::Rem => a.wrapping_rem(b),
            BinOp::Min => a.min(b),
            BinOp::Max => a.max(b),
            BinOp::Shl | BinOp::Shr if !(0..bits).contains(&b) => {
                return self.fail(format!("shift by {b} bits of a {}", ty.name()))
            }
            BinOp::Shl => a.wrapping_shl(b as u32),
            BinOp::Shr => a >> b,
            BinOp::BitAnd => a & b,
            BinOp::BitOr => a | b,
            BinOp::Lt => (a < b) as i64,
            BinOp::Le => (a <= b) as i64,
            BinOp::Eq => (a == b) as i64,
            BinOp::Ne => (a != b) as i64,
            BinOp::And => (a != 0 && b != 0) as i64,
            BinOp::Or => (a != 0 || b != 0) as i64,
        };
        Ok(if op.is_comparison() || op.is_logical() {
            Value::Int(r, ScalarType::Bool)
        } else {
            Value::Int(ty.wrap(r), ty)
        })
    }
}

fn float_binary(op: BinOp, x: f32, y: f32) -> Value {
    let f = match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => x * y,
        BinOp::Div => x / y,
        // As C++'s std::min/std::max (what TFLite's clamps use): a NaN first operand stays.
        BinOp::Min => {
            if y < x {
                y
            } else {
                x
            }
        }
        BinOp::Max => {
            if x < y {
                y
            } else {
                x
            }
        }
        BinOp::Lt => return Value::Int((x < y) as i64, ScalarType::Bool),
        BinOp::Le => return Value::Int((x <= y) as i64, ScalarType::Bool),
        BinOp::Eq => return Value::Int((x == y) as i64, ScalarType::Bool),
        BinOp::Ne => return Value::Int((x != y) as i64, ScalarType::Bool),
        // Rejected by verify; keep the interpreter total.
        _ => f32::NAN,
    };
    Value::F32(f)
}

/// A [`Program`] ready to run on the host: the storage of every slot, with state slots keeping
/// their contents from one run to the next until [`ProgramInterp::reset`].
pub struct ProgramInterp<'p> {
    program: &'p Program,
    store: Vec<Storage>,
}

impl<'p> ProgramInterp<'p> {
    /// Verifies every function and sets up the slots.
    pub fn new(program: &'p Program) -> Result<ProgramInterp<'p>, super::VerifyError> {
        for f in &program.funcs {
            f.verify()?;
        }
        let mut interp = ProgramInterp {
            program,
            store: Vec::new(),
        };
        interp.reset();
        Ok(interp)
    }

    /// Restores constants and state to their initial values.
    pub fn reset(&mut self) {
        self.store = self
            .program
            .slots
            .iter()
            .map(|s| match &s.kind {
                SlotKind::Constant(bytes) => Storage::from_le_bytes(s.elem, bytes),
                SlotKind::State(Some(bytes)) => Storage::from_le_bytes(s.elem, bytes),
                _ => Storage::zeros(s.elem, s.len),
            })
            .collect();
    }

    /// The little-endian bytes slot `slot` holds now (after [`Self::run`]: the value the last
    /// run left in it, such as an intermediate tensor).
    pub fn slot_bytes(&self, slot: super::SlotId) -> Vec<u8> {
        let (base, start) = self.program.storage(slot);
        let size = self.program.slot(slot).elem.size();
        let len = self.program.slot(slot).len;
        self.store[base.0].to_le_bytes()[start * size..(start + len) * size].to_vec()
    }

    /// Runs every step on raw little-endian inputs (one per program input, already checked for
    /// size by the caller) and returns the bytes of each output.
    pub fn run(&mut self, inputs: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, InterpError> {
        for (slot, bytes) in self.program.inputs.iter().zip(inputs) {
            let s = &self.program.slots[slot.0];
            self.store[slot.0] = Storage::from_le_bytes(s.elem, bytes);
        }
        let slots = self.store.len();
        for step in &self.program.steps {
            let func = &self.program.funcs[step.func];
            let binding: Vec<(usize, usize)> = step
                .args
                .iter()
                .map(|a| {
                    let (base, start) = self.program.storage(*a);
                    (base.0, start)
                })
                .collect();
            let result =
                Machine::new(func, &mut self.store, &binding).and_then(|mut m| m.block(&func.body));
            self.store.truncate(slots);
            result?;
        }
        Ok(self
            .program
            .outputs
            .iter()
            .map(|slot| self.store[slot.0].to_le_bytes())
            .collect())
    }
}
