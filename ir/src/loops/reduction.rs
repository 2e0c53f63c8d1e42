//! [`Reduction`]: the compute definition of a multiply-accumulate op (convolution, depthwise
//! convolution, fully connected), in the style of TVM's tensor expressions, and the code it
//! becomes under a [`LoopNest`].
//!
//! A reduction names its iteration axes (spatial ones, which index the output, and reduce ones,
//! which are summed over) and says, as affine functions of the axes, where its operands, bias
//! and output live and which taps fall inside the image ([`Guard`]s). It says nothing about loop
//! order: a [`LoopNest`] does. The default nest is one loop per axis in definition order (the
//! reference kernels' order); schedules split, reorder, unroll and vectorize it. Whatever the
//! nest, [`Reduction::build`] keeps one accumulator per output element in a local block (the
//! register block: every spatial loop inside the first reduce loop), so any valid nest computes
//! the same values. Integer sums wrap at 32 bits in any order, as TFLite's do; float sums keep
//! the reference order of the reduce axes.
//!
//! A vectorized innermost loop of 4 lanes over contiguous int8 operands becomes DSP
//! instructions on unpacked words ([`crate::simd`], [`Lanes`]): two SMLADs for a reduce loop,
//! one SMLABB or SMLATT per lane for a spatial loop (four channels of a depthwise
//! convolution). Any other vectorized loop runs serially, unrolled.

use super::{BufId, Expr, ForKind, FuncBuilder, Intrinsic, ScalarType};

/// What a reduction's innermost loop becomes in [`Reduction::build`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lanes {
    /// Plain loops (a vectorized loop that fits neither form runs serially).
    Scalar,
    /// Four lanes of one sum: two SMLADs of unpacked words.
    DotProduct,
    /// Four lanes of four sums (four channels): one SMLABB or SMLATT each.
    Channels,
}

/// One iteration axis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Axis {
    /// Name, used for the loop variables.
    pub name: String,
    /// Number of values.
    pub extent: usize,
    /// Summed over (a reduce axis) rather than indexing the output.
    pub reduce: bool,
}

/// `constant + Σ coefficient * axis`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Affine {
    /// `(axis index, coefficient)` pairs.
    pub terms: Vec<(usize, i64)>,
    /// The constant term.
    pub constant: i64,
}

impl Affine {
    /// `Σ coefficient * axis`, no constant.
    pub fn of(terms: &[(usize, i64)]) -> Affine {
        Affine {
            terms: terms.iter().copied().filter(|(_, c)| *c != 0).collect(),
            constant: 0,
        }
    }

    /// `self + constant`.
    pub fn plus(mut self, constant: i64) -> Affine {
        self.constant += constant;
        self
    }

    /// `self * factor`, term by term.
    pub fn times(&self, factor: i64) -> Affine {
        Affine {
            terms: self.terms.iter().map(|(a, c)| (*a, c * factor)).collect(),
            constant: self.constant * factor,
        }
    }

    /// `self + other`.
    pub fn add(&self, other: &Affine) -> Affine {
        let mut terms = self.terms.clone();
        terms.extend(other.terms.iter().copied());
        Affine {
            terms,
            constant: self.constant + other.constant,
        }
    }

    /// The value at known axis values.
    pub fn value(&self, axes: &[i64]) -> i64 {
        self.constant + self.terms.iter().map(|(a, c)| c * axes[*a]).sum::<i64>()
    }

    /// The coefficient of `axis`.
    pub fn coefficient(&self, axis: usize) -> i64 {
        self.terms
            .iter()
            .filter(|(a, _)| *a == axis)
            .map(|(_, c)| c)
            .sum()
    }

    /// The value, given each axis's value.
    fn eval(&self, axes: &[Option<Expr>]) -> Expr {
        let mut e = Expr::i32(self.constant as i32);
        for (axis, c) in &self.terms {
            let value = axes[*axis].clone().expect("axis bound before use");
            e = e + value * Expr::i32(*c as i32);
        }
        e
    }
}

/// A multiplicand: `buf[index] + offset`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operand {
    /// The buffer.
    pub buf: BufId,
    /// Element type of the buffer.
    pub elem: ScalarType,
    /// Where the element is.
    pub index: Affine,
    /// Added (as `i32`) before multiplying; 0 for floats.
    pub offset: i32,
    /// Set when the (constant) operand's elements were reordered for one loop nest: then the
    /// index is `Σ loop variable * stride` over that nest's loops.
    pub packed: Option<Packing>,
}

/// A constant operand laid out in the order one loop nest reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packing {
    /// The nest the layout serves; the reduction builds under no other.
    pub nest: LoopNest,
    /// Element stride of each of its loops (0 for loops the operand does not depend on).
    pub strides: Vec<i64>,
}

/// `0 <= index < extent`: the taps of a padded window that lie inside the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Guard {
    /// The input coordinate.
    pub index: Affine,
    /// The image's extent along it.
    pub extent: usize,
}

/// A per-channel `i32` parameter: one value for all channels, or a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PerChannel {
    /// The same value for every channel.
    Same(i32),
    /// A constant buffer indexed by channel.
    Table(BufId),
}

impl PerChannel {
    fn at(self, channel: Expr) -> Expr {
        match self {
            PerChannel::Same(v) => Expr::i32(v),
            PerChannel::Table(t) => Expr::load(t, channel),
        }
    }
}

/// What turns a finished accumulator into an output element.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Epilogue {
    /// Integer kernels: the bias is the accumulator's start, then TFLite's requantization.
    Quantized {
        /// The intrinsic that scales the accumulator, called as `(acc, multiplier, shift)`:
        /// TFLite's `MultiplyByQuantizedMultiplier` (or its 64-bit version), or a cheaper
        /// form of it where the scales allow.
        scale: Intrinsic,
        /// Q0.31 multiplier per channel.
        multiplier: PerChannel,
        /// Shift per channel, in the form `scale` takes.
        shift: PerChannel,
        /// Output zero point.
        output_offset: i32,
        /// Clamp range (activation and output type).
        range: (i64, i64),
        /// Output element type.
        elem: ScalarType,
    },
    /// Float kernels: the sum starts at zero, then `+ bias` and the activation's clamp.
    Float {
        /// Lower clamp.
        min: f32,
        /// Upper clamp.
        max: f32,
    },
}

/// An element-wise ADD after the epilogue (a fused residual connection): each output element
/// becomes TFLite's integer ADD of the op's value and the addend's element at the same index.
#[derive(Clone, Debug, PartialEq)]
pub struct Residual {
    /// The other addend, laid out as the output.
    pub addend: BufId,
    /// The ADD's parameters; the op's value is its first input.
    pub params: crate::qparams::AddParams,
}

/// The compute definition of one multiply-accumulate op.
#[derive(Clone, Debug, PartialEq)]
pub struct Reduction {
    /// Spatial and reduce axes.
    pub axes: Vec<Axis>,
    /// The input operand.
    pub input: Operand,
    /// The weight operand.
    pub weight: Operand,
    /// Conditions on the taps (padding).
    pub guards: Vec<Guard>,
    /// Accumulator type: `i32`, `i64` (16x8) or `f32`.
    pub acc: ScalarType,
    /// Bias buffer, indexed by channel.
    pub bias: Option<BufId>,
    /// The output channel, for bias and per-channel requantization.
    pub channel: Affine,
    /// The output buffer.
    pub output: BufId,
    /// Where each output element goes.
    pub output_index: Affine,
    /// Accumulator to output element.
    pub epilogue: Epilogue,
    /// An ADD fused after the epilogue (integer kernels only).
    pub residual: Option<Residual>,
}

/// One loop of a nest: `extent` iterations of one axis, the variable weighted by `stride`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loop {
    /// Variable name.
    pub name: String,
    /// The axis it iterates.
    pub axis: usize,
    /// Number of iterations.
    pub extent: usize,
    /// Weight of this loop's variable in the axis value.
    pub stride: usize,
    /// Serial, unrolled or vectorized.
    pub kind: ForKind,
}

/// Loops outermost first. Each axis's loops form a mixed radix of its extent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoopNest {
    /// The loops.
    pub loops: Vec<Loop>,
    /// The weights are stored widened for the SIMD lanes ([`crate::simd::widened`], offset
    /// included): each word of four lanes is two loaded words, with no unpacking. Needs SIMD
    /// lanes and a constant weight that is packed for this nest.
    pub wide_weights: bool,
}

impl Reduction {
    /// One serial loop per axis, in definition order.
    pub fn default_nest(&self) -> LoopNest {
        let loops = self.axes.iter().enumerate().map(|(axis, a)| Loop {
            name: a.name.clone(),
            axis,
            extent: a.extent,
            stride: 1,
            kind: ForKind::Serial,
        });
        LoopNest {
            loops: loops.collect(),
            wide_weights: false,
        }
    }

    /// Whether SIMD can run along `axis`: an `i32` sum of int8 operands that are both
    /// contiguous along it (coefficient 1), with no guard on it.
    pub fn simd_along(&self, axis: usize) -> bool {
        self.acc == ScalarType::I32
            && self.guards.iter().all(|g| g.index.coefficient(axis) == 0)
            && [&self.input, &self.weight]
                .iter()
                .all(|o| o.elem == ScalarType::I8 && o.index.coefficient(axis) == 1)
    }

    /// What the innermost loop of `nest` becomes. Both SIMD forms need a 4-lane vectorized
    /// loop that is the innermost part of an axis [`Reduction::simd_along`] accepts (a packed
    /// weight is laid out contiguous along it too); a reduce loop then becomes SMLADs, a
    /// spatial one SMLABB/SMLATT.
    pub fn lanes(&self, nest: &LoopNest) -> Lanes {
        let Some(last) = nest.loops.last() else {
            return Lanes::Scalar;
        };
        let ready = last.kind == (ForKind::Vectorized { lanes: 4 })
            && last.extent == 4
            && last.stride == 1
            && self.simd_along(last.axis);
        match (ready, self.axes[last.axis].reduce) {
            (false, _) => Lanes::Scalar,
            (true, true) => Lanes::DotProduct,
            (true, false) => Lanes::Channels,
        }
    }

    /// The weight layout that `nest` reads sequentially: the packing and, for each new
    /// position, the old element index. `None` if the operand is read in that order already
    /// and need not be widened.
    pub fn pack_weight(&self, nest: &LoopNest) -> Option<(Packing, Vec<usize>)> {
        let w = &self.weight;
        let relevant: Vec<usize> = (0..nest.loops.len())
            .filter(|l| w.index.coefficient(nest.loops[*l].axis) != 0)
            .collect();
        let mut strides = vec![0i64; nest.loops.len()];
        let mut size = 1usize;
        for l in relevant.iter().rev() {
            strides[*l] = size as i64;
            size *= nest.loops[*l].extent;
        }
        let mut order = Vec::with_capacity(size);
        let mut vars = vec![0usize; nest.loops.len()];
        for _ in 0..size {
            let mut axes = vec![0i64; self.axes.len()];
            for (l, v) in nest.loops.iter().zip(&vars) {
                axes[l.axis] += (*v * l.stride) as i64;
            }
            order.push(usize::try_from(w.index.value(&axes)).ok()?);
            // The next combination, innermost relevant loop fastest.
            for l in relevant.iter().rev() {
                vars[*l] += 1;
                if vars[*l] < nest.loops[*l].extent {
                    break;
                }
                vars[*l] = 0;
            }
        }
        if !nest.wide_weights && order.iter().enumerate().all(|(new, old)| new == *old) {
            return None;
        }
        let packing = Packing {
            nest: nest.clone(),
            strides,
        };
        Some((packing, order))
    }

    /// Checks that `nest` covers every axis exactly and, for floats, keeps the reference order
    /// of the sum.
    pub fn check(&self, nest: &LoopNest) -> Result<(), String> {
        for o in [&self.input, &self.weight] {
            if o.packed.as_ref().is_some_and(|p| p.nest != *nest) {
                return Err("an operand is packed for another loop nest".into());
            }
        }
        for (axis, a) in self.axes.iter().enumerate() {
            let mut parts: Vec<&Loop> = nest.loops.iter().filter(|l| l.axis == axis).collect();
            parts.sort_by_key(|l| l.stride);
            let mut covered = 1;
            for l in &parts {
                if l.stride != covered || l.extent == 0 {
                    return Err(format!("the loops of axis {} do not tile it", a.name));
                }
                covered *= l.extent;
            }
            if covered != a.extent {
                return Err(format!(
                    "the loops of axis {} cover {covered} of {}",
                    a.name, a.extent
                ));
            }
        }
        if nest.loops.iter().any(|l| l.axis >= self.axes.len()) {
            return Err("a loop iterates an axis that does not exist".into());
        }
        if nest.wide_weights && self.lanes(nest) == Lanes::Scalar {
            return Err("widened weights need a 4-lane SIMD loop innermost".into());
        }
        if self.acc == ScalarType::F32 {
            let order: Vec<(usize, std::cmp::Reverse<usize>)> = nest
                .loops
                .iter()
                .filter(|l| self.axes[l.axis].reduce)
                .map(|l| (l.axis, std::cmp::Reverse(l.stride)))
                .collect();
            if order.windows(2).any(|w| w[0] > w[1]) {
                return Err("a float sum must keep its reference order".into());
            }
        }
        Ok(())
    }

    /// Emits the reduction as loops ordered by `nest` into `f`.
    pub fn build(&self, nest: &LoopNest, f: &mut FuncBuilder) -> Result<(), String> {
        self.check(nest)?;
        if nest.wide_weights && self.weight.packed.is_none() {
            return Err("widened weights must be packed for the nest".into());
        }
        let first_reduce = nest
            .loops
            .iter()
            .position(|l| self.axes[l.axis].reduce)
            .unwrap_or(nest.loops.len());
        let mut b = Builder {
            r: self,
            nest,
            first_reduce,
            vars: vec![None; nest.loops.len()],
            lanes: self.lanes(nest),
        };
        b.outer(f, 0);
        Ok(())
    }
}

/// State of one [`Reduction::build`].
struct Builder<'r> {
    r: &'r Reduction,
    nest: &'r LoopNest,
    /// Index of the first reduce loop: the accumulator block is declared just outside it.
    first_reduce: usize,
    /// The variable of each loop, while it is bound.
    vars: Vec<Option<Expr>>,
    /// What the innermost loop becomes.
    lanes: Lanes,
}

impl Builder<'_> {
    /// The value of every axis whose loops are all bound.
    fn axes(&self) -> Vec<Option<Expr>> {
        let mut values: Vec<Option<Expr>> = vec![Some(Expr::i32(0)); self.r.axes.len()];
        for (l, var) in self.nest.loops.iter().zip(&self.vars) {
            values[l.axis] = match (values[l.axis].take(), var) {
                (Some(sum), Some(v)) => Some(sum + v.clone() * Expr::idx(l.stride)),
                _ => None,
            };
        }
        values
    }

    fn open(
        &mut self,
        f: &mut FuncBuilder,
        i: usize,
        body: &mut dyn FnMut(&mut Self, &mut FuncBuilder),
    ) {
        let l = &self.nest.loops[i];
        let (name, extent) = (l.name.clone(), l.extent);
        // A vectorized loop that is emitted as a loop runs its lanes one by one.
        let kind = match l.kind {
            ForKind::Vectorized { .. } => ForKind::Unrolled,
            kind => kind,
        };
        if extent == 1 {
            // A loop of one iteration is its body with the variable at 0.
            self.vars[i] = Some(Expr::i32(0));
            body(self, f);
            self.vars[i] = None;
            return;
        }
        f.for_kind(&name, extent, kind, |f, v| {
            self.vars[i] = Some(v);
            body(self, f);
            self.vars[i] = None;
        });
    }

    /// The spatial loops outside the first reduce loop, then the accumulator block.
    fn outer(&mut self, f: &mut FuncBuilder, i: usize) {
        if i < self.first_reduce {
            return self.open(f, i, &mut |b, f| b.outer(f, i + 1));
        }
        let block: Vec<usize> = (self.first_reduce..self.nest.loops.len())
            .filter(|j| !self.r.axes[self.nest.loops[*j].axis].reduce)
            .collect();
        let size = block.iter().map(|j| self.nest.loops[*j].extent).product();
        let acc = f.local("acc", self.r.acc, size);
        self.over_block(f, &block, 0, &|b, f, slot| {
            let init = b.init(&b.axes());
            f.store(acc, slot, init);
        });
        self.inner(f, self.first_reduce, &block, acc);
        self.over_block(f, &block, 0, &|b, f, slot| {
            let axes = b.axes();
            let value = b.finish(Expr::load(acc, slot), &axes);
            f.store(b.r.output, b.r.output_index.eval(&axes), value);
        });
    }

    /// The block's spatial loops alone (for the accumulators' start and finish).
    fn over_block(
        &mut self,
        f: &mut FuncBuilder,
        block: &[usize],
        k: usize,
        body: &dyn Fn(&Self, &mut FuncBuilder, Expr),
    ) {
        if k == block.len() {
            let slot = self.slot(block);
            return body(self, f, slot);
        }
        self.open(f, block[k], &mut |b, f| b.over_block(f, block, k + 1, body));
    }

    /// The accumulator slot of the current block position.
    fn slot(&self, block: &[usize]) -> Expr {
        let mut slot = Expr::i32(0);
        for j in block {
            let v = self.vars[*j].clone().expect("block loop bound");
            slot = slot * Expr::idx(self.nest.loops[*j].extent) + v;
        }
        slot
    }

    /// The loops from the first reduce loop inwards, guards where they become decidable, and
    /// the multiply-accumulate.
    fn inner(&mut self, f: &mut FuncBuilder, i: usize, block: &[usize], acc: BufId) {
        let n = self.nest.loops.len();
        if i == n || (self.lanes != Lanes::Scalar && i == n - 1) {
            return self.accumulate(f, block, acc);
        }
        self.open(f, i, &mut |b, f| {
            let axis = b.nest.loops[i].axis;
            let bound = b.axes();
            let newly: Vec<&Guard> = if bound[axis].is_some() {
                let guards = b.r.guards.iter().filter(|g| g.index.coefficient(axis) != 0);
                guards
                    .filter(|g| g.index.terms.iter().all(|(a, _)| bound[*a].is_some()))
                    .collect()
            } else {
                Vec::new()
            };
            let cond = newly.iter().fold(None, |c: Option<Expr>, g| {
                let v = g.index.eval(&bound);
                let inside = Expr::i32(0).le(v.clone()).and(v.lt(Expr::idx(g.extent)));
                Some(match c {
                    Some(c) => c.and(inside),
                    None => inside,
                })
            });
            match cond {
                Some(cond) => f.if_then(cond, |f| b.inner(f, i + 1, block, acc)),
                None => b.inner(f, i + 1, block, acc),
            }
        });
    }

    /// The multiply-accumulate at the current loop variables; for SIMD lanes, the lanes' loop
    /// is not emitted: its variable is 0 at the first lane.
    fn accumulate(&mut self, f: &mut FuncBuilder, block: &[usize], acc: BufId) {
        let n = self.nest.loops.len();
        match self.lanes {
            Lanes::Scalar => {
                let slot = self.slot(block);
                let value = Expr::load(acc, slot.clone()) + self.product(&self.axes());
                f.store(acc, slot, value);
            }
            Lanes::DotProduct => {
                self.vars[n - 1] = Some(Expr::i32(0));
                let slot = self.slot(block);
                let value = self.smlad(Expr::load(acc, slot.clone()), &self.axes());
                f.store(acc, slot, value);
            }
            Lanes::Channels => {
                self.vars[n - 1] = Some(Expr::i32(0));
                let [(x0, x1), (w0, w1)] = self.unpacked(&self.axes());
                // Lanes 0 and 2 are the halves of the first unpacked word, 1 and 3 the second's.
                let products = [
                    (Intrinsic::Smlabb, &x0, &w0),
                    (Intrinsic::Smlabb, &x1, &w1),
                    (Intrinsic::Smlatt, &x0, &w0),
                    (Intrinsic::Smlatt, &x1, &w1),
                ];
                for (lane, (op, x, w)) in products.into_iter().enumerate() {
                    self.vars[n - 1] = Some(Expr::i32(lane as i32));
                    let slot = self.slot(block);
                    let args = vec![x.clone(), w.clone(), Expr::load(acc, slot.clone())];
                    f.store(acc, slot, Expr::call(op, args));
                }
            }
        }
        self.vars[n - 1] = None;
    }

    /// Where operand `o` is read at the current loop variables (unbound loops at 0).
    fn index(&self, o: &Operand, axes: &[Option<Expr>]) -> Expr {
        let Some(p) = &o.packed else {
            return o.index.eval(axes);
        };
        let mut e = Expr::i32(0);
        for (var, stride) in self.vars.iter().zip(&p.strides) {
            if let (Some(v), true) = (var, *stride != 0) {
                e = e + v.clone() * Expr::i32(*stride as i32);
            }
        }
        e
    }

    /// `(input + offset) * (weight + offset)` in the accumulator's type.
    fn product(&self, axes: &[Option<Expr>]) -> Expr {
        let operand = |o: &Operand| {
            let v = Expr::load(o.buf, self.index(o, axes));
            match (self.r.acc, o.offset) {
                (ScalarType::F32, _) => v,
                (_, 0) => v.cast(ScalarType::I32),
                (_, offset) => v.cast(ScalarType::I32) + Expr::i32(offset),
            }
        };
        let p = operand(&self.r.input) * operand(&self.r.weight);
        if self.r.acc == ScalarType::I64 {
            p.cast(ScalarType::I64)
        } else {
            p
        }
    }

    /// The words of four input and four weight elements from the first lane, each unpacked
    /// (with its offset) into two words of 16-bit halves: lanes (0, 2) and lanes (1, 3).
    /// Widened weights are already in that form: two words at twice the element index.
    fn unpacked(&self, axes: &[Option<Expr>]) -> [(Expr, Expr); 2] {
        [(&self.r.input, false), (&self.r.weight, true)].map(|(o, weight)| {
            if weight && self.nest.wide_weights {
                let at = self.index(o, axes) * Expr::i32(2);
                let second = at.clone() + Expr::i32(4);
                return (Expr::load_word(o.buf, at), Expr::load_word(o.buf, second));
            }
            let w = Expr::load_word(o.buf, self.index(o, axes));
            let pair = Expr::i32(crate::simd::offset_pair(o.offset));
            let lo = Expr::call(Intrinsic::Sxtab16, vec![pair.clone(), w.clone()]);
            (lo, Expr::call(Intrinsic::Sxtab16Ror8, vec![pair, w]))
        })
    }

    /// Four multiply-accumulates of one sum as two SMLADs.
    fn smlad(&self, acc: Expr, axes: &[Option<Expr>]) -> Expr {
        let [(x0, x1), (w0, w1)] = self.unpacked(axes);
        let acc = Expr::call(Intrinsic::Smlad, vec![x0, w0, acc]);
        Expr::call(Intrinsic::Smlad, vec![x1, w1, acc])
    }

    /// The accumulator's start: the bias (integers) or zero.
    fn init(&self, axes: &[Option<Expr>]) -> Expr {
        match (self.r.epilogue, self.r.bias) {
            (Epilogue::Float { .. }, _) => Expr::f32(0.0),
            (_, Some(b)) => Expr::load(b, self.r.channel.eval(axes)).cast(self.r.acc),
            (_, None) => Expr::Int {
                value: 0,
                ty: self.r.acc,
            },
        }
    }

    /// The output element of a finished accumulator.
    fn finish(&self, acc: Expr, axes: &[Option<Expr>]) -> Expr {
        let channel = self.r.channel.eval(axes);
        match self.r.epilogue {
            Epilogue::Quantized {
                scale,
                multiplier,
                shift,
                output_offset,
                range,
                elem,
            } => {
                let args = vec![acc, multiplier.at(channel.clone()), shift.at(channel)];
                let scaled = Expr::call(scale, args) + Expr::i32(output_offset);
                let value = crate::lower::clamp_to(scaled, range.0, range.1, elem);
                let Some(r) = &self.r.residual else {
                    return value;
                };
                let addend = Expr::load(r.addend, self.r.output_index.eval(axes));
                let (a, b) = (value.cast(ScalarType::I32), addend.cast(ScalarType::I32));
                let (lo, hi) = (r.params.act_min as i64, r.params.act_max as i64);
                crate::lower::clamp_to(crate::lower::quantized_add(&r.params, a, b), lo, hi, elem)
            }
            Epilogue::Float { min, max } => {
                let biased = match self.r.bias {
                    Some(b) => acc + Expr::load(b, channel),
                    None => acc,
                };
                biased.clamp(Expr::f32(min), Expr::f32(max))
            }
        }
    }
}
