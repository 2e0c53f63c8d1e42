//! SIMD for multiply-accumulate tiles: an unrolled loop whose body is one store into an
//! accumulator tile, `acc[v] = acc[v] + x * w[.. + v]`, runs [`LANES`] iterations at a time
//! as `i32x4` operations (SSE4.1 on x86-64, NEON on AArch64).
//!
//! This is the shape every convolution and dense layer's inner loop takes once scheduled: the
//! output channels of a register tile are the unrolled loop, the weights of consecutive
//! channels are consecutive bytes, and the input value is the same for every channel. The
//! loop vectorizes when each operand either does not depend on the counter (it is computed
//! once and broadcast) or is a unit-stride load of `i8` or `i32` elements, or the tile itself
//! at the stored index, and every operation is an `i32` sum, difference, product, minimum or
//! maximum; these wrap lane by lane exactly as the scalar ones do, so the results are
//! bit-identical. An SMLAD of a broadcast word and words of 16-bit pairs at a stride of one
//! word ([`Lanes::Pairs`](minnow_ir::loops::reduction::Lanes::Pairs)) is one `pmaddwd` and
//! an add. Anything else is unrolled as scalars.

use super::func::Translator;
use super::registers::{constant_index, Registers};
use super::vector_requant;
use cranelift_codegen::ir::{types, Endianness, InstBuilder, MemFlagsData, Value};
use cranelift_frontend::Variable;
use minnow_ir::loops::visit::{walk_expr, Visitor};
use minnow_ir::loops::{BinOp, BufId, Expr, Intrinsic, ScalarType, Stmt, VarId};

/// Elements per vector: `i32x4`.
pub(super) const LANES: usize = 4;

/// The terms of `index`'s outermost sum.
fn terms(index: &Expr) -> Vec<&Expr> {
    match index {
        Expr::Binary {
            op: BinOp::Add,
            lhs,
            rhs,
        } => {
            let mut t = terms(lhs);
            t.extend(terms(rhs));
            t
        }
        _ => vec![index],
    }
}

fn mentions(e: &Expr, var: VarId) -> bool {
    match e {
        Expr::Var(v) => *v == var,
        _ => e.children().into_iter().any(|c| mentions(c, var)),
    }
}

/// `c` where `index` is `c * var` plus terms that do not depend on `var`.
fn stride(index: &Expr, var: VarId) -> Option<i64> {
    let coefficient = |t: &Expr| match t {
        Expr::Var(v) if *v == var => Some(1),
        Expr::Binary {
            op: BinOp::Mul,
            lhs,
            rhs,
        } => match (&**lhs, &**rhs) {
            (Expr::Var(v), c) | (c, Expr::Var(v)) if *v == var => c.as_int(),
            _ => None,
        },
        _ => None,
    };
    let mut found = None;
    for t in terms(index) {
        match coefficient(t) {
            Some(c) if found.is_none() => found = Some(c),
            _ if mentions(t, var) => return None,
            _ => {}
        }
    }
    found
}

/// Whether `index` is `var` plus terms that do not depend on `var`.
pub(super) fn unit_stride(index: &Expr, var: VarId) -> bool {
    stride(index, var) == Some(1)
}

impl Translator<'_, '_> {
    /// Whether the unrolled loop `for var in 0..extent { body }` runs as vectors: its one
    /// store is into whole vectors of a register tile, or, four bytes at a time, into an `i8`
    /// buffer in memory at a unit stride of a value clamped to `i8` (an epilogue).
    pub(super) fn vectorizes(&self, var: VarId, extent: usize, body: &[Stmt]) -> bool {
        let [Stmt::Store { buf, index, value }] = body else {
            return false;
        };
        // The 128-bit integer operations the vector loops use.
        if !minnow_targets::host_simd128() || extent % LANES != 0 {
            return false;
        }
        let lanes = Lanes {
            var,
            extent,
            stored: *buf,
            index,
        };
        if self.whole_tile(*buf, index, &lanes) {
            return self.fits(value, &lanes);
        }
        let in_memory = !self.registers.contains_key(buf)
            && self.func.buffer(*buf).elem == ScalarType::I8
            && unit_stride(index, var);
        // All four lanes are read before any is stored: nothing read may share memory with
        // what is stored.
        let unaliased = loaded(value)
            .iter()
            .all(|b| self.registers.contains_key(b) || self.read_only.contains(b));
        in_memory && unaliased && clamped_to_i8(value).is_some_and(|v| self.fits(v, &lanes))
    }

    /// The loop of [`Translator::vectorizes`], one vector operation per [`LANES`] iterations.
    pub(super) fn vector_loop(
        &mut self,
        var: VarId,
        extent: usize,
        body: &[Stmt],
    ) -> Result<(), String> {
        let [Stmt::Store { buf, index, value }] = body else {
            return Err(format!("{}: not a vector loop", self.func.name));
        };
        for first in (0..extent).step_by(LANES) {
            self.known.insert(var, first as i64);
            if let Some(tile) = self.tile(*buf, index, var, first) {
                let v = self.vector(value, var)?;
                self.b.def_var(tile, v);
                continue;
            }
            let clamped = clamped_to_i8(value)
                .ok_or_else(|| format!("{}: a vector store left its tile", self.func.name))?;
            let v = self.vector(clamped, var)?;
            self.store_bytes(*buf, index, v)?;
        }
        self.known.remove(&var);
        Ok(())
    }

    /// Whether `buf[index]` over the loop's lanes is whole vectors of a register tile.
    fn whole_tile(&self, buf: BufId, index: &Expr, lanes: &Lanes) -> bool {
        (0..lanes.extent)
            .step_by(LANES)
            .all(|first| self.tile(buf, index, lanes.var, first).is_some())
    }

    /// Stores the lanes of `v`, each within `i8`'s range, as four bytes at `buf[index]`:
    /// narrowing with saturation is then exact.
    fn store_bytes(&mut self, buf: BufId, index: &Expr, v: Value) -> Result<(), String> {
        let halves = self.b.ins().snarrow(v, v);
        let bytes = self.b.ins().snarrow(halves, halves);
        let little = MemFlagsData::new().with_endianness(Endianness::Little);
        let words = self.b.ins().bitcast(types::I32X4, little, bytes);
        let word = self.b.ins().extractlane(words, 0);
        let (addr, offset) = self.address(buf, index)?;
        // Bytes need not be aligned as a word.
        let flags = MemFlagsData::new().with_notrap();
        self.b.ins().store(flags, word, addr, offset);
        Ok(())
    }

    /// The vector variable holding `buf[index]` for `var` = `first..first + LANES`, when `buf`
    /// is a vector register tile and the lanes are one whole vector of it.
    fn tile(&self, buf: BufId, index: &Expr, var: VarId, first: usize) -> Option<Variable> {
        let Some(Registers::Lanes(vectors)) = self.registers.get(&buf) else {
            return None;
        };
        if !unit_stride(index, var) {
            return None;
        }
        let mut known = self.known.clone();
        known.insert(var, first as i64);
        let i = usize::try_from(constant_index(index, &known)?).ok()?;
        (i % LANES == 0).then(|| vectors.get(i / LANES).copied())?
    }

    /// Whether `e` has a vector form in the loop `lanes`.
    fn fits(&self, e: &Expr, lanes: &Lanes) -> bool {
        let var = lanes.var;
        if !mentions(e, var) {
            // Computed once per vector: it must not read what earlier lanes write.
            return !reads(e, lanes.stored);
        }
        let in_memory = |buf: &BufId| !self.registers.contains_key(buf);
        match e {
            // The stored tile at the stored element, or another tile's whole vectors.
            Expr::Load { buf, index: at } if *buf == lanes.stored => {
                **at == *lanes.index && !in_memory(buf)
            }
            Expr::Load { buf, index: at } if !in_memory(buf) => self.whole_tile(*buf, at, lanes),
            Expr::Load { buf, index: at } => {
                self.func.buffer(*buf).elem == ScalarType::I32 && unit_stride(at, var)
            }
            Expr::Cast {
                ty: ScalarType::I32,
                arg,
            } => match &**arg {
                Expr::Load { buf, index: at } if self.func.buffer(*buf).elem == ScalarType::I8 => {
                    in_memory(buf) && unit_stride(at, var)
                }
                _ => self.ty(arg) == ScalarType::I32 && self.fits(arg, lanes),
            },
            // Words of 16-bit pairs, one per lane.
            Expr::LoadWord { buf, index: at } => {
                in_memory(buf) && !self.widened.contains(buf) && stride(at, var) == Some(4)
            }
            Expr::Binary { op, lhs, rhs } => {
                matches!(
                    op,
                    BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Min | BinOp::Max
                ) && self.ty(lhs) == ScalarType::I32
                    && self.fits(lhs, lanes)
                    && self.fits(rhs, lanes)
            }
            Expr::Call {
                intrinsic:
                    Intrinsic::Smlad
                    | Intrinsic::MultiplyByQuantizedMultiplierHighShift
                    | Intrinsic::MultiplyByQuantizedMultiplierHighShiftOffset,
                args,
            } => args.iter().all(|a| self.fits(a, lanes)),
            _ => false,
        }
    }

    /// `e` for the lanes `known[var]..+LANES`, as an `i32x4` (checked by [`Self::fits`]).
    fn vector(&mut self, e: &Expr, var: VarId) -> Result<Value, String> {
        if !mentions(e, var) {
            if let Some((buf, index, offset)) = self.byte_pair(e) {
                return self.broadcast_pair(buf, index, offset);
            }
            let scalar = self.expr(e)?;
            return Ok(self.b.ins().splat(types::I32X4, scalar));
        }
        let first = self.known[&var] as usize;
        Ok(match e {
            Expr::Load { buf, index } => match self.tile(*buf, index, var, first) {
                Some(tile) => self.b.use_var(tile),
                None => self.vector_load(*buf, index)?,
            },
            Expr::LoadWord { buf, index } => self.vector_load(*buf, index)?,
            Expr::Cast { arg, .. } => match &**arg {
                Expr::Load { buf, index } if self.func.buffer(*buf).elem == ScalarType::I8 => {
                    self.widened_bytes(*buf, index)?
                }
                _ => self.vector(arg, var)?,
            },
            Expr::Binary { op, lhs, rhs } => {
                let (l, r) = (self.vector(lhs, var)?, self.vector(rhs, var)?);
                let ins = self.b.ins();
                match op {
                    BinOp::Add => ins.iadd(l, r),
                    BinOp::Sub => ins.isub(l, r),
                    BinOp::Mul => ins.imul(l, r),
                    BinOp::Min => ins.smin(l, r),
                    _ => ins.smax(l, r),
                }
            }
            Expr::Call { intrinsic, args } => {
                let lanes = args
                    .iter()
                    .map(|a| self.vector(a, var))
                    .collect::<Result<Vec<Value>, String>>()?;
                match (intrinsic, &lanes[..]) {
                    // smlad(x, w, acc)
                    (Intrinsic::Smlad, &[a, b, c]) => {
                        let dot = self.pairwise_dot(a, b);
                        self.b.ins().iadd(c, dot)
                    }
                    // mbqm_high_shift(x, multiplier, shift)
                    (Intrinsic::MultiplyByQuantizedMultiplierHighShift, &[a, b, c]) => {
                        vector_requant::mbqm_high_shift(&mut self.b, a, b, c, None)
                    }
                    // mbqm_high_shift_offset(x, multiplier, shift, rounding)
                    (Intrinsic::MultiplyByQuantizedMultiplierHighShiftOffset, &[a, b, c, d]) => {
                        vector_requant::mbqm_high_shift(&mut self.b, a, b, c, Some(d))
                    }
                    _ => return Err(format!("{}: no vector form", self.func.name)),
                }
            }
            _ => return Err(format!("{}: no vector form", self.func.name)),
        })
    }

    /// `(b[i] + o) & 0xffff | (b[i + 1] + o) * 0x10000`, two consecutive bytes of an `i8`
    /// buffer in memory as a word of 16-bit halves (how [`Lanes::Pairs`] builds its input
    /// operand): `b`, `i` and `o`.
    ///
    /// [`Lanes::Pairs`]: minnow_ir::loops::reduction::Lanes::Pairs
    fn byte_pair<'e>(&self, e: &'e Expr) -> Option<(BufId, &'e Expr, i64)> {
        let (lo, mask, hi, scale) = match e {
            Expr::Binary {
                op: BinOp::BitOr,
                lhs,
                rhs,
            } => match (&**lhs, &**rhs) {
                (
                    Expr::Binary {
                        op: BinOp::BitAnd,
                        lhs: lo,
                        rhs: mask,
                    },
                    Expr::Binary {
                        op: BinOp::Mul,
                        lhs: hi,
                        rhs: scale,
                    },
                ) => (lo, mask, hi, scale),
                _ => return None,
            },
            _ => return None,
        };
        if mask.as_int()? != 0xffff || scale.as_int()? != 0x1_0000 {
            return None;
        }
        let ((b0, i0, o0), (b1, i1, o1)) = (offset_byte(lo)?, offset_byte(hi)?);
        let in_memory = !self.registers.contains_key(&b0) && !self.widened.contains(&b0);
        let bytes = self.func.buffer(b0).elem == ScalarType::I8;
        (b0 == b1 && o0 == o1 && in_memory && bytes && follows(i0, i1)).then_some((b0, i0, o0))
    }

    /// [`Self::byte_pair`]'s word in every lane: the two bytes loaded together and
    /// sign-extended to 16 bits as vector lanes, the offset added to each half (16-bit sums
    /// wrap as the masked word's halves do), and the first word broadcast.
    fn broadcast_pair(&mut self, buf: BufId, index: &Expr, offset: i64) -> Result<Value, String> {
        let (addr, at) = self.address(buf, index)?;
        let flags = self.load_flags(buf, MemFlagsData::new().with_notrap());
        let half = self.b.ins().load(types::I16, flags, addr, at);
        let little = MemFlagsData::new().with_endianness(Endianness::Little);
        let vector = self.b.ins().scalar_to_vector(types::I16X8, half);
        let bytes = self.b.ins().bitcast(types::I8X16, little, vector);
        let mut halves = self.b.ins().swiden_low(bytes);
        if offset != 0 {
            let o = self.b.ins().iconst(types::I16, offset & 0xffff);
            let o = self.b.ins().splat(types::I16X8, o);
            halves = self.b.ins().iadd(halves, o);
        }
        let words = self.b.ins().bitcast(types::I8X16, little, halves);
        let first: Vec<u8> = (0..16).map(|k| k % 4).collect();
        let mask = self.b.func.dfg.immediates.push(first.into());
        let broadcast = self.b.ins().shuffle(words, words, mask);
        Ok(self.b.ins().bitcast(types::I32X4, little, broadcast))
    }

    /// Four lanes of `buf` from `buf[index]` on, one `i32x4` load.
    fn vector_load(&mut self, buf: BufId, index: &Expr) -> Result<Value, String> {
        let (addr, offset) = self.address(buf, index)?;
        let flags = self.load_flags(buf, MemFlagsData::new().with_notrap());
        Ok(self.b.ins().load(types::I32X4, flags, addr, offset))
    }

    /// Each lane's two 16-bit halves of `x` times those of `w`, summed: SMLAD without the
    /// accumulator, in the form Cranelift makes one `pmaddwd` of (x86-64).
    fn pairwise_dot(&mut self, x: Value, w: Value) -> Value {
        let little = MemFlagsData::new().with_endianness(Endianness::Little);
        let x = self.b.ins().bitcast(types::I16X8, little, x);
        let w = self.b.ins().bitcast(types::I16X8, little, w);
        let (xl, wl) = (self.b.ins().swiden_low(x), self.b.ins().swiden_low(w));
        let (xh, wh) = (self.b.ins().swiden_high(x), self.b.ins().swiden_high(w));
        let low = self.b.ins().imul(xl, wl);
        let high = self.b.ins().imul(xh, wh);
        self.b.ins().iadd_pairwise(low, high)
    }

    /// Four consecutive `i8` elements from `buf[index]`, sign-extended to `i32x4`.
    fn widened_bytes(&mut self, buf: BufId, index: &Expr) -> Result<Value, String> {
        if self.widened.contains(&buf) {
            return self.vector_load(buf, index);
        }
        let (addr, offset) = self.address(buf, index)?;
        let flags = self.load_flags(buf, MemFlagsData::new().with_notrap());
        let word = self.b.ins().load(types::I32, flags, addr, offset);
        let vector = self.b.ins().scalar_to_vector(types::I32X4, word);
        let little = MemFlagsData::new().with_endianness(Endianness::Little);
        let bytes = self.b.ins().bitcast(types::I8X16, little, vector);
        let halves = self.b.ins().swiden_low(bytes);
        Ok(self.b.ins().swiden_low(halves))
    }
}

/// The loop being vectorized: its counter and extent, and where its one store goes.
struct Lanes<'e> {
    var: VarId,
    extent: usize,
    stored: BufId,
    index: &'e Expr,
}

/// `v` of `i8(min(max(v, lo), hi))` (or the clamp the other way round) with `lo` and `hi`
/// within `i8`'s range: then saturating each lane to `i8` is the cast.
fn clamped_to_i8(e: &Expr) -> Option<&Expr> {
    let Expr::Cast {
        ty: ScalarType::I8,
        arg,
    } = e
    else {
        return None;
    };
    fn side(e: &Expr, op: BinOp) -> Option<&Expr> {
        let bound = |e: &Expr| e.as_int().filter(|v| (-128..=127).contains(v));
        match e {
            Expr::Binary { op: o, lhs, rhs } if *o == op => bound(rhs).map(|_| &**lhs),
            _ => None,
        }
    }
    let (outer, inner) = match &**arg {
        Expr::Binary { op: BinOp::Min, .. } => (BinOp::Min, BinOp::Max),
        _ => (BinOp::Max, BinOp::Min),
    };
    side(side(arg, outer)?, inner)
}

/// `cast<i32>(b[i]) + o` (or without `+ o`): `b`, `i` and `o`.
fn offset_byte(e: &Expr) -> Option<(BufId, &Expr, i64)> {
    let (e, offset) = match e {
        Expr::Binary {
            op: BinOp::Add,
            lhs,
            rhs,
        } => (&**lhs, rhs.as_int()?),
        e => (e, 0),
    };
    match e {
        Expr::Cast {
            ty: ScalarType::I32,
            arg,
        } => match &**arg {
            Expr::Load { buf, index } => Some((*buf, &**index, offset)),
            _ => None,
        },
        _ => None,
    }
}

/// Whether index `j` is index `i` plus one.
fn follows(i: &Expr, j: &Expr) -> bool {
    match (i.as_int(), j) {
        (Some(i), j) if j.as_int().is_some() => j.as_int() == Some(i + 1),
        (
            _,
            Expr::Binary {
                op: BinOp::Add,
                lhs,
                rhs,
            },
        ) => **lhs == *i && rhs.as_int() == Some(1),
        _ => false,
    }
}

/// Whether `e` loads from `buf`.
fn reads(e: &Expr, buf: BufId) -> bool {
    loaded(e).contains(&buf)
}

/// The buffers `e` loads from.
fn loaded(e: &Expr) -> Vec<BufId> {
    struct Loaded(Vec<BufId>);
    impl Visitor for Loaded {
        fn visit_expr(&mut self, e: &Expr) {
            if let Expr::Load { buf, .. } | Expr::LoadWord { buf, .. } = e {
                self.0.push(*buf);
            }
            walk_expr(self, e);
        }
    }
    let mut l = Loaded(Vec::new());
    l.visit_expr(e);
    l.0
}
