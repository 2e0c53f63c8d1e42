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
//! filled where the loops the input does not depend on (the output channels) begin, and each
//! word then serves every channel. A padded reduction tests its guards there only: a tap in
//! the padding holds the input's zero point, whose products with the offset folded into the
//! bias sum to nothing, so the multiply-accumulates test no bounds and need no border code.

use super::{BufId, LoopNest, Reduction};
use crate::loops::{Expr, ForKind, FuncBuilder, ScalarType};

/// The most input words a scratch block may hold (4 KiB of stack).
pub const SCRATCH_WORDS: usize = 1024;

/// Where the input words of a Winograd nest are gathered, and how they are indexed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scratch {
    /// The nest position at which the block is filled: the outermost at which the block
    /// fits [`SCRATCH_WORDS`], moved inwards past loops the input depends on, so that it is
    /// filled outside as many output-channel loops as it can (at worst, at the accumulator
    /// block).
    pub level: usize,
    /// The loops inside `level` that the input depends on (the lanes' loop aside), in nest
    /// order: the block's index is their mixed radix, the innermost fastest.
    pub loops: Vec<usize>,
    /// Those of `loops` over spatial axes: the index of a pixel's input cross term.
    pub pixel_loops: Vec<usize>,
}

impl Scratch {
    /// Words of the block.
    pub fn words(&self, nest: &LoopNest) -> usize {
        self.loops.iter().map(|l| nest.loops[*l].extent).product()
    }

    /// Pixels of the block (one input cross term each).
    pub fn pixels(&self, nest: &LoopNest) -> usize {
        self.pixel_loops
            .iter()
            .map(|l| nest.loops[*l].extent)
            .product()
    }
}

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

    /// The scratch block of a Winograd nest.
    pub fn winograd_scratch(&self, nest: &LoopNest) -> Scratch {
        let n = nest.loops.len();
        // A loop of one iteration varies nothing.
        let depends = |l: usize| {
            nest.loops[l].extent > 1 && self.input.index.coefficient(nest.loops[l].axis) != 0
        };
        let reads = |l: usize| self.input.index.coefficient(nest.loops[l].axis) != 0;
        let first_reduce = (0..n)
            .find(|l| self.axes[nest.loops[*l].axis].reduce)
            .unwrap_or(n);
        let words_inside = |p: usize| -> usize {
            (p..n.saturating_sub(1))
                .filter(|l| reads(*l))
                .map(|l| nest.loops[l].extent)
                .product()
        };
        // The outermost level whose block fits, then inwards past the loops the input
        // depends on: hoisting the fill over them saves nothing.
        let mut level = (0..first_reduce)
            .find(|p| words_inside(*p) <= SCRATCH_WORDS)
            .unwrap_or(first_reduce);
        while level < first_reduce && depends(level) {
            level += 1;
        }
        let loops: Vec<usize> = (level..n.saturating_sub(1)).filter(|l| reads(*l)).collect();
        let pixel_loops = loops
            .iter()
            .copied()
            .filter(|l| !self.axes[nest.loops[*l].axis].reduce)
            .collect();
        Scratch {
            level,
            loops,
            pixel_loops,
        }
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
        let words = self.winograd_scratch(nest).words(nest);
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
    /// The scratch block: each pixel's cross term zeroed, then every input pair the loops
    /// inside the block's level read, as a word, with its cross term added.
    pub(super) fn fill_scratch(&mut self, f: &mut FuncBuilder, scratch: &Scratch) -> ScratchBufs {
        let nest = self.nest;
        let words = f.local("winograd_input", ScalarType::I32, scratch.words(nest));
        let pixels = scratch.pixels(nest);
        let cross = f.local("winograd_cross", ScalarType::I32, pixels);
        f.for_kind("pixel", pixels, ForKind::Serial, |f, p| {
            f.store(cross, p, Expr::i32(0));
        });
        let bufs = ScratchBufs { words, cross };
        // Pixels outermost, so that a pixel's cross term is summed in a register.
        let reduce = scratch
            .loops
            .iter()
            .filter(|l| !scratch.pixel_loops.contains(l));
        let order: Vec<usize> = scratch.pixel_loops.iter().chain(reduce).copied().collect();
        self.fill_over(f, &order, scratch, bufs);
        bufs
    }

    /// The fill's loops `order` (short ones unrolled), then one input pair.
    fn fill_over(
        &mut self,
        f: &mut FuncBuilder,
        order: &[usize],
        scratch: &Scratch,
        bufs: ScratchBufs,
    ) {
        if let Some((&l, rest)) = order.split_first() {
            let extent = self.nest.loops[l].extent;
            let name = format!("{}_fill", self.nest.loops[l].name);
            let kind = match extent {
                ..=4 => ForKind::Unrolled,
                _ => ForKind::Serial,
            };
            f.for_kind(&name, extent, kind, |f, v| {
                self.vars[l] = Some(v);
                self.fill_over(f, rest, scratch, bufs);
            });
            self.vars[l] = None;
            return;
        }
        self.fill_pair(f, scratch, bufs);
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
        let (slot, pixel) = (self.slot(&scratch.loops), self.slot(&scratch.pixel_loops));
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
