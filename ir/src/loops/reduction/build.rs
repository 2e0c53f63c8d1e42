//! How a [`Reduction`] becomes loops under a [`LoopNest`]: the accumulator block, the guards
//! where they become decidable, the SIMD lanes and the epilogue.

use super::winograd::{Scratch, ScratchBufs};
use super::{Epilogue, Guard, Lanes, LoopNest, Operand, Reduction};
use crate::loops::{BufId, Expr, ForKind, FuncBuilder, Intrinsic, ScalarType};

/// That every one of `guards` holds at `axes` (`0 <= index < extent`); `None` for no guards.
pub(super) fn all_inside<'g>(
    guards: impl IntoIterator<Item = &'g Guard>,
    axes: &[Option<Expr>],
) -> Option<Expr> {
    guards.into_iter().fold(None, |c: Option<Expr>, g| {
        let v = g.index.eval(axes);
        let inside = Expr::i32(0).le(v.clone()).and(v.lt(Expr::idx(g.extent)));
        Some(match c {
            Some(c) => c.and(inside),
            None => inside,
        })
    })
}

/// State of one [`Reduction::build`].
pub(super) struct Builder<'r> {
    pub(super) r: &'r Reduction,
    pub(super) nest: &'r LoopNest,
    /// Index of the first reduce loop: the accumulator block is declared just outside it.
    first_reduce: usize,
    /// The variable of each loop, while it is bound.
    pub(super) vars: Vec<Option<Expr>>,
    /// What the innermost loop becomes.
    lanes: Lanes,
    /// Per guard: known to hold where the code is being emitted (the interior of a split
    /// spatial loop), so it is not tested.
    proven: Vec<bool>,
    /// For [`Lanes::Winograd`]: the input's scratch block, and its locals once filled.
    scratch: Option<(Scratch, Option<ScratchBufs>)>,
}

impl<'r> Builder<'r> {
    /// The state before the outermost loop of `nest`.
    pub(super) fn new(r: &'r Reduction, nest: &'r LoopNest) -> Builder<'r> {
        let first_reduce = nest
            .loops
            .iter()
            .position(|l| r.axes[l.axis].reduce)
            .unwrap_or(nest.loops.len());
        let lanes = r.lanes(nest);
        Builder {
            r,
            nest,
            first_reduce,
            vars: vec![None; nest.loops.len()],
            lanes,
            // Winograd pairs read padding from the scratch block: no guard is tested.
            proven: vec![lanes == Lanes::Winograd; r.guards.len()],
            scratch: (lanes == Lanes::Winograd).then(|| (r.winograd_scratch(nest), None)),
        }
    }

    /// The value of every axis whose loops are all bound.
    pub(super) fn axes(&self) -> Vec<Option<Expr>> {
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
        let extent = self.nest.loops[i].extent;
        self.open_range(f, i, 0..extent, body);
    }

    /// Loop `i` over the values `range` only (its variable offset by the start).
    fn open_range(
        &mut self,
        f: &mut FuncBuilder,
        i: usize,
        range: std::ops::Range<usize>,
        body: &mut dyn FnMut(&mut Self, &mut FuncBuilder),
    ) {
        let l = &self.nest.loops[i];
        let name = l.name.clone();
        // A vectorized loop that is emitted as a loop runs its lanes one by one.
        let kind = match l.kind {
            ForKind::Vectorized { .. } => ForKind::Unrolled,
            kind => kind,
        };
        let start = Expr::idx(range.start);
        match range.len() {
            0 => return,
            // A loop of one iteration is its body with the variable at its one value.
            1 => {
                self.vars[i] = Some(start);
                body(self, f);
            }
            extent => f.for_kind(&name, extent, kind, |f, v| {
                self.vars[i] = Some(if range.start == 0 { v } else { v + start });
                body(self, f);
            }),
        }
        self.vars[i] = None;
    }

    /// The spatial loops outside the first reduce loop, then the accumulator block. With
    /// [`LoopNest::partition_borders`], a serial loop over a padded axis runs in three parts:
    /// the values before and after its interior, with the padding guards, and the interior,
    /// where every tap is inside and the guards on that axis are not tested.
    pub(super) fn outer(&mut self, f: &mut FuncBuilder, i: usize) {
        if let Some((scratch, mut filled)) = self.scratch.take() {
            if scratch.level == i {
                filled = Some(self.fill_scratch(f, &scratch));
            }
            self.scratch = Some((scratch, filled));
        }
        if i < self.first_reduce {
            let Some((interior, on_axis)) = self.interior(i) else {
                return self.open(f, i, &mut |b, f| b.outer(f, i + 1));
            };
            let extent = self.nest.loops[i].extent;
            self.open_range(f, i, 0..interior.start, &mut |b, f| b.outer(f, i + 1));
            let before = self.proven.clone();
            for g in on_axis {
                self.proven[g] = true;
            }
            self.open_range(f, i, interior.clone(), &mut |b, f| b.outer(f, i + 1));
            self.proven = before;
            return self.open_range(f, i, interior.end..extent, &mut |b, f| b.outer(f, i + 1));
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

    /// Where loop `i` (a serial loop over a spatial axis, outermost of the loops that tile
    /// it) has every guard on its axis hold, whatever the reduce axes in the guard are and
    /// whatever values the inner loops on its axis take: that range of values, if it is not
    /// empty, and the guards.
    fn interior(&self, i: usize) -> Option<(std::ops::Range<usize>, Vec<usize>)> {
        let l = &self.nest.loops[i];
        let partition = self.nest.partition_borders && self.scratch.is_none();
        if !partition || l.kind != ForKind::Serial || !self.tiles_from(i) || l.extent < 3 {
            return None;
        }
        // The axis' values under loop value v run from stride * v to stride * (v + 1) - 1.
        let span = l.stride as i64;
        let (mut lo, mut hi) = (0i64, l.extent as i64);
        let mut on_axis = Vec::new();
        for (k, g) in self.r.guards.iter().enumerate() {
            let c = g.index.coefficient(l.axis);
            if c == 0 {
                continue;
            }
            // The bounds below solve for a growing index only.
            if c < 0 {
                return None;
            }
            // The guard's index over the other axes' values, which must all be reduce axes.
            let mut others: Vec<usize> = g.index.terms.iter().map(|(a, _)| *a).collect();
            others.retain(|a| *a != l.axis);
            others.sort_unstable();
            others.dedup();
            let (mut min, mut max) = (g.index.constant, g.index.constant);
            for a in others {
                if !self.r.axes[a].reduce {
                    return None;
                }
                let top = g.index.coefficient(a) * (self.r.axes[a].extent as i64 - 1);
                min += top.min(0);
                max += top.max(0);
            }
            // 0 <= c * span * v + min and c * (span * v + span - 1) + max < extent.
            let (step, max) = (c * span, max + c * (span - 1));
            lo = lo.max((-min).div_euclid(step) + i64::from((-min).rem_euclid(step) != 0));
            hi = hi.min((g.extent as i64 - 1 - max).div_euclid(step) + 1);
            on_axis.push(k);
        }
        // A split loop is partitioned only with a border at each end: where the padding is at
        // one end alone (a stride-2 SAME convolution), gcc's code for the guarded loop was
        // measured cheaper (in one run on RV32IMAC, vww's first convolution 2.01 M
        // instructions guarded, 2.11 M partitioned; its depthwise layers 12 % fewer
        // partitioned).
        let borders_both_ends = span == 1 || (lo > 0 && hi < l.extent as i64);
        let useful = !on_axis.is_empty() && lo < hi && borders_both_ends;
        useful.then_some((lo as usize..hi as usize, on_axis))
    }

    /// Whether loop `i` and the loops inside it on its axis tile the whole axis: loop `i`
    /// steps by the product of the others' extents, no loop on the axis is outside it, and
    /// all together cover the axis' extent.
    fn tiles_from(&self, i: usize) -> bool {
        let l = &self.nest.loops[i];
        let on_axis = |range: std::ops::Range<usize>| {
            let loops = self.nest.loops[range].iter();
            loops.filter(|o| o.axis == l.axis).map(|o| o.extent)
        };
        let outside = on_axis(0..i).count();
        let inner: usize = on_axis(i + 1..self.nest.loops.len()).product();
        outside == 0 && l.stride == inner && l.extent * inner == self.r.axes[l.axis].extent
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

    /// The mixed radix of the bound variables of `loops`, the last fastest: the accumulator
    /// slot of the current block position, or a Winograd scratch block's index.
    pub(super) fn slot(&self, loops: &[usize]) -> Expr {
        let mut slot = Expr::i32(0);
        for j in loops {
            let v = self.vars[*j].clone().expect("loop bound");
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
                let guards = b.r.guards.iter().zip(&b.proven);
                let guards =
                    guards.filter(|(g, proven)| !**proven && g.index.coefficient(axis) != 0);
                guards
                    .map(|(g, _)| g)
                    .filter(|g| g.index.terms.iter().all(|(a, _)| bound[*a].is_some()))
                    .collect()
            } else {
                Vec::new()
            };
            match all_inside(newly, &bound) {
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
            Lanes::Winograd => {
                self.vars[n - 1] = Some(Expr::i32(0));
                let slot = self.slot(block);
                let (Some((scratch, _)), Some(bufs)) = (&self.scratch, self.scratch_bufs()) else {
                    unreachable!("the scratch block is filled outside the reduce loops");
                };
                let x = Expr::load(bufs.words, self.scratch_index(scratch));
                let w = &self.r.weight;
                let w = Expr::load_word(w.buf, self.index_times(w, &self.axes(), 2));
                let args = vec![x, w, Expr::load(acc, slot.clone())];
                f.store(acc, slot, Expr::call(Intrinsic::WinogradPair, args));
            }
            Lanes::Pairs => {
                self.vars[n - 1] = Some(Expr::i32(0));
                let slot = self.slot(block);
                let axes = self.axes();
                let x = self.pair(&self.r.input, false, &axes);
                let w = self.pair(&self.r.weight, true, &axes);
                let args = vec![x, w, Expr::load(acc, slot.clone())];
                f.store(acc, slot, Expr::call(Intrinsic::Smlad, args));
            }
        }
        self.vars[n - 1] = None;
    }

    /// The scratch block's locals, once filled.
    fn scratch_bufs(&self) -> Option<ScratchBufs> {
        self.scratch.as_ref().and_then(|(_, bufs)| *bufs)
    }

    /// Where operand `o` is read at the current loop variables (unbound loops at 0).
    pub(super) fn index(&self, o: &Operand, axes: &[Option<Expr>]) -> Expr {
        self.index_times(o, axes, 1)
    }

    /// Whether the code being emitted tests no guard and the input offset is folded into
    /// [`Reduction::interior_bias`] there.
    fn offset_folded(&self) -> bool {
        self.r.interior_bias.is_some() && self.proven.iter().all(|p| *p)
    }

    /// The offset added to operand `o`'s elements here (the input's is folded in the
    /// interior).
    fn offset(&self, o: &Operand, weight: bool) -> i32 {
        if !weight && self.offset_folded() {
            0
        } else {
            o.offset
        }
    }

    /// `(input + offset) * (weight + offset)` in the accumulator's type.
    fn product(&self, axes: &[Option<Expr>]) -> Expr {
        let operand = |o: &Operand, weight: bool| {
            let v = Expr::load(o.buf, self.index(o, axes));
            match (self.r.acc, self.offset(o, weight)) {
                (ScalarType::F32, _) => v,
                (_, 0) => v.cast(ScalarType::I32),
                (_, offset) => v.cast(ScalarType::I32) + Expr::i32(offset),
            }
        };
        let p = operand(&self.r.input, false) * operand(&self.r.weight, true);
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
            let pair = Expr::i32(crate::simd::offset_pair(self.offset(o, weight)));
            let lo = Expr::call(Intrinsic::Sxtab16, vec![pair.clone(), w.clone()]);
            (lo, Expr::call(Intrinsic::Sxtab16Ror8, vec![pair, w]))
        })
    }

    /// Operand `o`'s elements at the first two lanes, each with its offset, as one word of
    /// 16-bit halves (the low half the first lane's). Widened weights are stored so: one word
    /// at twice the element index ([`crate::simd::paired`]).
    fn pair(&self, o: &Operand, weight: bool, axes: &[Option<Expr>]) -> Expr {
        if weight && self.nest.wide_weights {
            return Expr::load_word(o.buf, self.index_times(o, axes, 2));
        }
        let at = self.index(o, axes);
        let offset = self.offset(o, weight);
        let half = |at: Expr| Expr::load(o.buf, at).cast(ScalarType::I32) + Expr::i32(offset);
        let (lo, hi) = (half(at.clone()), half(at + Expr::i32(1)));
        // A product rather than a shift: the high half may be negative, which C does not
        // shift left.
        (lo & Expr::i32(0xffff)) | (hi * Expr::i32(0x1_0000))
    }

    /// [`Self::index`] times `factor`, the factor folded into each term's stride.
    fn index_times(&self, o: &Operand, axes: &[Option<Expr>], factor: i64) -> Expr {
        let Some(p) = &o.packed else {
            return o.index.times(factor).eval(axes);
        };
        let mut e = Expr::i32(0);
        for (var, stride) in self.vars.iter().zip(&p.strides) {
            if let (Some(v), true) = (var, *stride != 0) {
                e = e + v.clone() * Expr::i32((*stride * factor) as i32);
            }
        }
        e
    }

    /// Four multiply-accumulates of one sum as two SMLADs.
    fn smlad(&self, acc: Expr, axes: &[Option<Expr>]) -> Expr {
        let [(x0, x1), (w0, w1)] = self.unpacked(axes);
        let acc = Expr::call(Intrinsic::Smlad, vec![x0, w0, acc]);
        Expr::call(Intrinsic::Smlad, vec![x1, w1, acc])
    }

    /// The accumulator's start: the bias (integers; with the input offset folded in, in the
    /// interior) or zero; for Winograd pairs, less the pixel's input cross term.
    fn init(&self, axes: &[Option<Expr>]) -> Expr {
        let start = self.bias_start(axes);
        match (&self.scratch, self.scratch_bufs()) {
            (Some((scratch, _)), Some(bufs)) => {
                start - Expr::load(bufs.cross, self.slot(&scratch.pixel_loops))
            }
            _ => start,
        }
    }

    /// The bias or zero an accumulator starts from.
    fn bias_start(&self, axes: &[Option<Expr>]) -> Expr {
        let bias = match self.offset_folded() {
            true => self.r.interior_bias,
            false => self.r.bias,
        };
        match (self.r.epilogue, bias) {
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
                rounding,
                output_offset,
                range,
                elem,
            } => {
                let mut args = vec![
                    acc,
                    multiplier.at(channel.clone()),
                    shift.at(channel.clone()),
                ];
                let scaled = match rounding {
                    Some(rounding) => {
                        args.push(rounding.at(channel));
                        Expr::call(scale, args)
                    }
                    None => Expr::call(scale, args) + Expr::i32(output_offset),
                };
                let value = crate::lower::clamp_to(scaled, range.0, range.1, elem);
                let Some(r) = &self.r.residual else {
                    return value;
                };
                let addend = Expr::load(r.addend, self.r.output_index.eval(axes));
                let (a, b) = (value.cast(ScalarType::I32), addend.cast(ScalarType::I32));
                let (lo, hi) = (r.params.act_min as i64, r.params.act_max as i64);
                crate::lower::clamp_to(
                    crate::lower::quantized_add(&r.params, r.tables, r.high_mul_output, a, b),
                    lo,
                    hi,
                    elem,
                )
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
