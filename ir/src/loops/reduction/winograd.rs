//! Winograd's inner product on a core without SIMD ([`Lanes::Winograd`]): two products of one
//! sum for one multiply.
//!
//! Winograd (1968) noticed that `x0 w0 + x1 w1 = (x0 + w1)(x1 + w0) - x0 x1 - w0 w1`. The cross
//! terms depend on the input alone or the weights alone, so a reduction subtracts them once per
//! output instead of once per pair: `Σ w0 w1` per channel is folded into the bias table at
//! compile time ([`Reduction::cross_terms`]), `Σ x0 x1` per input pixel is summed while the
//! input is read into a scratch block. The product itself costs one RV32IM `mulh`: the input
//! pair is the word `x0 + x1·2¹⁶` ([`crate::simd::winograd_input`]), the weight pair the
//! crossed word `w1 + w0·2¹⁶` ([`crate::simd::crossed`]), so their sum holds `x0 + w1` low and
//! `x1 + w0` high, and [`crate::simd::winograd_pair`] multiplies the halves with `add`,
//! `slli`, `mulh`, `add`: four instructions for two products, against two `mul`s and two
//! `add`s, with one weight load per pair instead of two and the input read once per block.
//!
//! The scratch block holds the input words every loop inside [`Scratch::level`] reads: it is
//! filled outside as many loops as fill the fewest words (the output channels' loops, and
//! where neighbouring windows share words, the pixels' too), and each word then serves every
//! channel and every window that reads it. A padded reduction tests its guards there only: a
//! tap in the padding holds the input's zero point, whose products with the offset folded into
//! the bias sum to nothing, so the multiply-accumulates test no bounds and need no border code.

use super::{BufId, LoopNest, Reduction};
use crate::loops::{Expr, ForKind, FuncBuilder, ScalarType};

pub use super::scratch::{Scratch, ScratchDim, SCRATCH_WORDS};

impl Reduction {
    /// Whether Winograd pairs can run along reduce `axis`: an `i32` sum of int8 operands that
    /// both move along it. Unlike [`Reduction::simd_along`] the input need not be contiguous
    /// nor unguarded there: the scratch block gathers each pair.
    pub fn winograd_along(&self, axis: usize) -> bool {
        self.acc == ScalarType::I32
            && self.axes[axis].reduce
            && [&self.input, &self.weight]
                .iter()
                .all(|o| o.elem == ScalarType::I8 && o.index.coefficient(axis) != 0)
    }

    /// The bias table the code of an unguarded nest starts its sums from (with the input
    /// offset folded in where there is one): where a Winograd nest keeps the weights' cross
    /// terms.
    pub fn winograd_bias(&self) -> Option<BufId> {
        self.interior_bias.or(self.bias)
    }

    /// Why the reduction's bias cannot take Winograd pairs, whatever the nest: its input
    /// offset must be folded into a bias table, which then takes the weights' cross terms.
    pub fn winograd_bias_ready(&self) -> Result<(), String> {
        if self.input.offset != 0 && self.interior_bias.is_none() {
            return Err("Winograd pairs need the input offset folded into the bias".into());
        }
        if self.winograd_bias().is_none() {
            return Err("Winograd pairs need a bias table for the weights' cross terms".into());
        }
        Ok(())
    }

    /// Why `nest`, marked [`LoopNest::winograd`], cannot run as Winograd's inner product.
    pub(super) fn check_winograd(&self, nest: &LoopNest) -> Result<(), String> {
        if self.lanes(nest) != super::Lanes::Winograd {
            return Err(
                "Winograd pairs need a 2-lane SIMD loop innermost over a reduce axis \
                        along which int8 input and weights both move"
                    .into(),
            );
        }
        if !nest.wide_weights {
            return Err("Winograd pairs need the weights widened (stored crossed)".into());
        }
        self.winograd_bias_ready()?;
        let words = self.winograd_scratch(nest).words();
        if words > SCRATCH_WORDS {
            return Err(format!(
                "the Winograd scratch block would hold {words} words, more than {SCRATCH_WORDS}"
            ));
        }
        Ok(())
    }

    /// The weights' cross terms `Σ w0 w1` (offset added) per bias index, for pairs along the
    /// lanes' axis of `nest`, and with [`Reduction::input_lift`] the sum of the weights times
    /// the lift, `Σ (w0 w1 + lift (w0 + w1))`: what a Winograd nest's bias table loses.
    /// `weights` are the original int8 elements, in the operand's own index order. `None` if
    /// the channel depends on an axis the weights do not (each weight would count more than
    /// once) or an index falls outside `weights`.
    pub fn cross_terms(&self, nest: &LoopNest, weights: &[i8]) -> Option<Vec<(i64, i32)>> {
        let pair_axis = nest.loops.last()?.axis;
        let w = &self.weight;
        let weight_axes: Vec<usize> = (0..self.axes.len())
            .filter(|a| w.index.coefficient(*a) != 0)
            .collect();
        let channel_axes = (0..self.axes.len()).filter(|a| self.channel.coefficient(*a) != 0);
        let step = w.index.coefficient(pair_axis);
        if channel_axes.clone().any(|a| !weight_axes.contains(&a)) || step == 0 {
            return None;
        }
        let mut terms: std::collections::BTreeMap<i64, i32> = Default::default();
        let mut values = vec![0i64; self.axes.len()];
        let total: usize = weight_axes.iter().map(|a| self.axes[*a].extent).product();
        let at = |i: i64| Some(i32::from(*weights.get(usize::try_from(i).ok()?)?) + w.offset);
        for _ in 0..total {
            if values[pair_axis] % 2 == 0 {
                let first = w.index.value(&values);
                let (w0, w1) = (at(first)?, at(first + step)?);
                let lifted = self.input_lift.wrapping_mul(w0.wrapping_add(w1));
                let product = w0.wrapping_mul(w1).wrapping_add(lifted);
                let term = terms.entry(self.channel.value(&values)).or_insert(0);
                *term = term.wrapping_add(product);
            }
            // The next combination, the last weight axis fastest.
            for a in weight_axes.iter().rev() {
                values[*a] += 1;
                if values[*a] < self.axes[*a].extent as i64 {
                    break;
                }
                values[*a] = 0;
            }
        }
        Some(terms.into_iter().collect())
    }
}

/// The locals a Winograd nest's code keeps.
#[derive(Clone, Copy, Debug)]
pub(super) struct ScratchBufs {
    /// The input words.
    pub(super) words: BufId,
    /// The input cross term of each pixel.
    pub(super) cross: BufId,
}

impl super::build::Builder<'_> {
    /// The scratch block: every input pair its dimensions index, as a word, with its cross
    /// term `x0 x1` summed per pixel, or where windows share words, per position of the
    /// pixels' dimensions and then into each pixel's ([`Self::sum_cross`]).
    pub(super) fn fill_scratch(&mut self, f: &mut FuncBuilder, scratch: &Scratch) -> ScratchBufs {
        let words = f.local("winograd_input", ScalarType::I32, scratch.words());
        let pixels = scratch.pixels(self.nest);
        let cross = f.local("winograd_cross", ScalarType::I32, pixels);
        // Unshared, the summed dimensions are the pixel loops: the sums are the cross terms.
        let sums = if scratch.shares_words() {
            f.local("winograd_sums", ScalarType::I32, scratch.summed_words())
        } else {
            cross
        };
        zero(f, sums, scratch.summed_words());
        // The summed dimensions outermost, so that each sum is kept in a register.
        let summed = scratch.summed_dims();
        let rest = (0..scratch.dims.len()).filter(|d| !summed.contains(d));
        let order: Vec<usize> = summed.iter().copied().chain(rest).collect();
        let filling = ScratchBufs { words, cross: sums };
        self.fill_over(f, &order, scratch, filling);
        if scratch.shares_words() {
            self.sum_cross(f, scratch, sums, cross);
        }
        ScratchBufs { words, cross }
    }

    /// The fill's dimensions `order` (short ones unrolled), then one input pair. A dimension's
    /// index is its unit loop's variable, its other loops' at 0.
    fn fill_over(
        &mut self,
        f: &mut FuncBuilder,
        order: &[usize],
        scratch: &Scratch,
        bufs: ScratchBufs,
    ) {
        let Some((&d, rest)) = order.split_first() else {
            return self.fill_pair(f, scratch, bufs);
        };
        let dim = &scratch.dims[d];
        let unit = dim.terms.iter().find(|(_, m)| *m == 1).map(|(l, _)| *l);
        let unit = unit.expect("a dimension has a loop of multiplier 1");
        for (l, _) in &dim.terms {
            self.vars[*l] = Some(Expr::i32(0));
        }
        let name = format!("{}_fill", self.nest.loops[unit].name);
        f.for_kind(&name, dim.extent, fill_kind(dim.extent), |f, v| {
            self.vars[unit] = Some(v);
            self.fill_over(f, rest, scratch, bufs);
        });
        for (l, _) in &dim.terms {
            self.vars[*l] = None;
        }
    }

    /// Each pixel's cross term from the per-position sums `sums`: those its window covers,
    /// summed into `cross`.
    fn sum_cross(&mut self, f: &mut FuncBuilder, scratch: &Scratch, sums: BufId, cross: BufId) {
        zero(f, cross, scratch.pixels(self.nest));
        let summed = scratch.summed_dims();
        let terms = summed.iter().flat_map(|d| scratch.dims[*d].terms.iter());
        let window = terms
            .map(|(l, _)| *l)
            .filter(|l| !scratch.pixel_loops.contains(l));
        let order: Vec<usize> = scratch.pixel_loops.iter().copied().chain(window).collect();
        self.over_loops(f, &order, &mut |b, f| {
            let pixel = b.slot(&scratch.pixel_loops);
            let position = Expr::load(sums, b.dims_index(scratch, &summed));
            f.store(cross, pixel.clone(), Expr::load(cross, pixel) + position);
        });
    }

    /// The loops `order` over their whole extents (short ones unrolled), around `body`.
    fn over_loops(
        &mut self,
        f: &mut FuncBuilder,
        order: &[usize],
        body: &mut dyn FnMut(&Self, &mut FuncBuilder),
    ) {
        let Some((&l, rest)) = order.split_first() else {
            return body(self, f);
        };
        let extent = self.nest.loops[l].extent;
        let name = format!("{}_cross", self.nest.loops[l].name);
        f.for_kind(&name, extent, fill_kind(extent), |f, v| {
            self.vars[l] = Some(v);
            self.over_loops(f, rest, body);
        });
        self.vars[l] = None;
    }

    /// The index of the block's dimensions `dims` at the current loop variables: their mixed
    /// radix, the last fastest.
    pub(super) fn dims_index(&self, scratch: &Scratch, dims: &[usize]) -> Expr {
        let mut index = Expr::i32(0);
        for d in dims {
            let dim = &scratch.dims[*d];
            let mut value = Expr::i32(0);
            for (l, m) in &dim.terms {
                let v = self.vars[*l].clone().expect("loop bound");
                value = value + v * Expr::idx(*m);
            }
            index = index * Expr::idx(dim.extent) + value;
        }
        index
    }

    /// The block's word index at the current loop variables.
    pub(super) fn scratch_index(&self, scratch: &Scratch) -> Expr {
        let all: Vec<usize> = (0..scratch.dims.len()).collect();
        self.dims_index(scratch, &all)
    }

    /// The input pair at the current loop variables: its word and its cross term, with the
    /// zero point for taps in the padding.
    fn fill_pair(&mut self, f: &mut FuncBuilder, scratch: &Scratch, bufs: ScratchBufs) {
        let n = self.nest.loops.len();
        // Each lane's input index and, if padded, whether its tap lies inside the image.
        let lane_axis = self.nest.loops[n - 1].axis;
        let taps = [0, 1].map(|k| {
            self.vars[n - 1] = Some(Expr::i32(k));
            let axes = self.axes();
            let at = self.index(&self.r.input, &axes);
            (at, super::build::all_inside(&self.r.guards, &axes))
        });
        self.vars[n - 1] = None;
        let lift = self.r.input_lift;
        let lifted = |x: Expr| if lift == 0 { x } else { x + Expr::i32(lift) };
        let load =
            |at: &Expr| lifted(Expr::load(self.r.input.buf, at.clone()).cast(ScalarType::I32));
        let summed = scratch.summed_dims();
        let (slot, pixel) = (
            self.scratch_index(scratch),
            self.dims_index(scratch, &summed),
        );
        let store = |f: &mut FuncBuilder, x0: Expr, x1: Expr| {
            let word = x0.clone() + x1.clone() * Expr::i32(0x1_0000);
            f.store(bufs.words, slot.clone(), word);
            let sum = Expr::load(bufs.cross, pixel.clone()) + x0 * x1;
            f.store(bufs.cross, pixel.clone(), sum);
        };
        // A tap in the padding reads the input's zero point: with the offset folded into the
        // bias, its products then sum to nothing, as TFLite's skipped taps do. Every element,
        // padding too, is lifted; the bias has the lift's share taken out.
        let pad = Expr::i32(lift - self.r.input.offset);
        let [(at0, inside0), (at1, inside1)] = taps;
        let Some(inside0) = inside0 else {
            return store(f, load(&at0), load(&at1));
        };
        if self
            .r
            .guards
            .iter()
            .all(|g| g.index.coefficient(lane_axis) == 0)
        {
            // Both lanes are the same tap position: one test.
            let (x0, x1) = (load(&at0), load(&at1));
            return f.if_else(
                inside0,
                |f| store(f, x0, x1),
                |f| store(f, pad.clone(), pad.clone()),
            );
        }
        // The lanes are neighbouring taps along a padded axis: one test each.
        let tap = f.local("winograd_tap", ScalarType::I32, 2);
        for (k, (at, inside)) in [(at0, inside0), (at1, inside1.expect("guards"))]
            .into_iter()
            .enumerate()
        {
            f.store(tap, Expr::i32(k as i32), pad.clone());
            f.if_then(inside, |f| f.store(tap, Expr::i32(k as i32), load(&at)));
        }
        store(
            f,
            Expr::load(tap, Expr::i32(0)),
            Expr::load(tap, Expr::i32(1)),
        );
    }
}

/// How the fill's loops run: unrolled up to 4 iterations.
fn fill_kind(extent: usize) -> ForKind {
    match extent {
        ..=4 => ForKind::Unrolled,
        _ => ForKind::Serial,
    }
}

/// `buf[0..len] = 0`.
fn zero(f: &mut FuncBuilder, buf: BufId, len: usize) {
    f.for_kind("pixel", len, ForKind::Serial, |f, p| {
        f.store(buf, p, Expr::i32(0));
    });
}
