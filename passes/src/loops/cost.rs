//! The analytic cost of a loop nest on a [`Machine`]: instructions, with register pressure
//! turned into spill instructions.
//!
//! The cost follows how [`Reduction::build`](minnow_ir::loops::reduction::Reduction::build)
//! emits a nest. The spatial loops inside the first reduce loop form the accumulator block;
//! it stays in registers only if all of its loops are unrolled and it fits. The unrolled loops
//! directly around the multiply-accumulate form one straight-line region, in which an operand
//! element is loaded once and serves every product that reads it. A serial loop costs its
//! counter, compare-and-branch and pointer step per iteration; a loop over a padded axis a
//! bounds check per iteration. A 4-lane vectorized loop on a DSP core is two SMLADs (along a
//! reduce axis) or four SMLABB/SMLATTs (across channels), each operand word loaded and
//! unpacked in three instructions; a word of widened weights is two loads.

use super::lang::LoopSpec;
use minnow_ir::loops::reduction::Reduction;
use serde::Serialize;

/// The machine the cost describes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Machine {
    /// Registers free for accumulators and operands once pointers and counters are placed.
    pub registers: usize,
    /// Arm DSP instructions (SMLAD, SXTB16): 4-lane vectorized loops.
    pub dsp: bool,
    /// Instructions per scalar multiply-accumulate (MLA on Arm; mul and add on RISC-V).
    pub mac: f64,
    /// Instructions per iteration of a serial loop.
    pub loop_overhead: f64,
    /// Largest straight-line region, in multiply-accumulates, that unrolling may make.
    pub max_unrolled: usize,
    /// Instructions per output element (requantization, clamp, store).
    pub epilogue: f64,
    /// Charge a region the registers of the operand it loads most of (every weight of an
    /// unrolled fully connected block) rather than the least. Fitted to gcc's scheduling
    /// before register allocation, which hoisted a region's loads; the targets now build
    /// without it, and for RV32 the charge is kept because dropping it was mixed (measured in
    /// one run: kws -1.6 % and ad01 -6 %, but vww +7 %, resnet8 +10 %, micro_speech +35 %).
    pub hoists_loads: bool,
    /// A 2-lane vectorized reduce loop may run as Winograd's inner product (one high
    /// multiply per pair, `LoopNest::winograd`) where the weights are widened: cores with a
    /// 32x32 high multiply and no SIMD.
    pub winograd: bool,
}

impl Machine {
    /// A Cortex-M core (Thumb-2: 14 general registers), with or without the DSP extension.
    /// The DSP cores' budget is one register more, measured on the shared models' M4 builds
    /// side by side with 9: kws 4.46 M to 4.08 M instructions, resnet8 16.74 M to 16.03 M,
    /// ad01 0.446 M to 0.424 M, vww 14.53 M to 14.94 M (its 128-channel pointwise layers
    /// block worse); 11 grows vww's arena by a quarter.
    pub fn cortex_m(dsp: bool) -> Machine {
        Machine {
            registers: if dsp { 10 } else { 9 },
            dsp,
            mac: 1.0,
            loop_overhead: 3.0,
            max_unrolled: 64,
            epilogue: 20.0,
            hoists_loads: false,
            winograd: false,
        }
    }

    /// An RV32IM core (31 general registers, no multiply-accumulate instruction). Regions of
    /// up to 64 MACs (32 before; measured in one run on RV32IMAC: kws 8.40 M to 8.33 M
    /// instructions, its pointwise layers 2.90 to 2.87 per MAC and its fully connected layer
    /// 3.54 to 3.48, ad01 0.871 M to 0.859 M, the others unchanged).
    pub fn rv32() -> Machine {
        Machine {
            registers: 22,
            dsp: false,
            mac: 2.0,
            loop_overhead: 3.0,
            max_unrolled: 64,
            epilogue: 25.0,
            hoists_loads: true,
            winograd: true,
        }
    }
}

/// Instructions per register the innermost code needs beyond the machine's, per execution of
/// the straight-line region: the value is stored and reloaded, and the code around it is
/// scheduled worse. Fitted to gcc's code for kws's pointwise layers on Cortex-M4 (a block of
/// 5 pixels by 2 channels, six registers short, runs 2.3 instructions per SMLAD pair above
/// the model without spills).
const SPILL: f64 = 4.0;

/// [`SPILL`] in a Winograd region (RV32): a spilled accumulator's load and store, as gcc
/// schedules the region's independent pairs around them. Measured in one run on RV32IMAC
/// against [`SPILL`]: kws 8.33 M to 8.21 M instructions (its first layer takes five pixels by
/// four channels, 3.52 to 3.16 per MAC), the other shared models unchanged; at 1, resnet8 grew
/// 0.3 %.
const WINOGRAD_SPILL: f64 = 2.0;

/// Instructions per update of an accumulator in memory: its address, load and store.
const ACC_TRAFFIC: f64 = 3.0;

/// The shortest sum Winograd pairs run: in shorter ones the bookkeeping per output (the
/// scratch block, the input's cross term) costs more than the pairs save (measured in one
/// run, vww's first pointwise layer, sums of 8: 5.65 instructions per MAC scalar, 6.06 as
/// pairs; its next, sums of 16: 4.17 scalar, 3.97 as pairs).
pub const MIN_WINOGRAD_SUM: usize = 16;

/// Instructions per input pair to fill a Winograd scratch block: two byte loads, the word
/// (shift, add, store), the cross term (multiply, add, with the sum's load and store) and
/// the loop's step.
pub const SCRATCH_FILL: f64 = 12.0;

/// [`SCRATCH_FILL`] where the pair's two taps lie along a padded axis and are tested apart
/// (fitted to micro_speech's depthwise layer, 8 channels of one input: 3.64 instructions per
/// MAC scalar, 5.07 as pairs priced at 12; kws's first layer, 64 channels of one input,
/// still pays: 3.90 scalar, 3.62 as pairs).
pub const SCRATCH_FILL_PADDED_LANES: f64 = 40.0;

/// The largest accumulator block: a block in memory lives on the stack, which is small and not
/// part of the planned arena.
pub const MAX_ACCUMULATORS: usize = 64;

/// Where a point of the nest is, as the cost of what lies inside it depends on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Context {
    /// A reduce loop encloses it: spatial loops here join the accumulator block.
    pub reduce_above: bool,
    /// Accumulators in the block so far.
    pub block: usize,
    /// A block loop is serial: the accumulators are indexed at run time, so live in memory.
    pub block_in_memory: bool,
    /// Iterations of the unrolled loops since the last serial loop (the straight-line region).
    pub region: usize,
    /// Input and weight elements the region loads.
    pub loads: [usize; 2],

    /// Input rows the region reads at once, each charged a register. gcc once kept an address
    /// register per row; since [`IndexReassociation`](minnow_ir::loops::IndexReassociation)
    /// the rows share one, yet the charge still predicts gcc's allocation better than none
    /// (dropping it, measured in one run: RV32IMAC kws 10.65 M to 11.06 M, resnet8 51.2 M
    /// to 57.0 M instructions).
    pub rows: usize,
    /// The region unrolls a loop of the accumulator block.
    pub unrolled_block: bool,
    /// The region's unrolled loops, outermost first (the first [`MAX_REGION_LOOPS`]): the
    /// input elements it loads are the distinct values of the input index over them, so
    /// that the overlapping taps of neighbouring pixels (`ox + kx`) count once.
    pub region_loops: [Option<LoopSpec>; MAX_REGION_LOOPS],
}

/// The unrolled loops a [`Context`] keeps; in a region of more, input loads are the product of
/// the extents the input depends on.
pub const MAX_REGION_LOOPS: usize = 6;

impl Context {
    /// Outside every loop.
    pub const TOP: Context = Context {
        reduce_above: false,
        block: 1,
        block_in_memory: false,
        region: 1,
        loads: [1, 1],
        rows: 1,
        unrolled_block: false,
        region_loops: [None; MAX_REGION_LOOPS],
    };
}

/// What a subtree costs per execution, and the most registers it keeps live.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Estimate {
    /// Instructions.
    pub instructions: f64,
    /// Accumulator and operand registers live in the innermost code.
    pub registers: usize,
}

impl Estimate {
    /// What cannot be built (an accumulator block over the limit).
    pub const INFINITE: Estimate = Estimate {
        instructions: f64::INFINITY,
        registers: 0,
    };

    /// `extent` iterations of a loop around `self`, each adding `overhead` instructions.
    pub fn repeated(self, extent: usize, overhead: f64) -> Estimate {
        Estimate {
            instructions: extent as f64 * (self.instructions + overhead),
            registers: self.registers,
        }
    }
}

/// The cost model of one reduction on one machine.
#[derive(Clone, Debug)]
pub struct NestCost {
    /// The machine.
    pub machine: Machine,
    reduce: Vec<bool>,
    /// Per operand (input, weight): whether its index depends on each axis.
    depends: [Vec<bool>; 2],
    /// The input index's coefficient of each axis.
    input_coefficients: Vec<i64>,
    /// Per operand: an offset added to every loaded element.
    offset: [bool; 2],
    /// Axes a padding guard tests.
    guarded: Vec<bool>,
    simd: Vec<bool>,
    /// Axes Winograd pairs can run along ([`Reduction::winograd_along`]).
    pairable: Vec<bool>,
    /// Every spatial axis of more than one value moves the weights: each weight serves one
    /// output (a fully connected layer of batch 1).
    weights_read_once: bool,
    outputs: usize,
    residual: bool,
    /// The weights are widened for the SIMD lanes ([`NestCost::widened`]).
    wide_weights: bool,
    /// Winograd pairs can run the reduction: a long enough sum, the input offset folded into
    /// a bias table ([`minnow_ir::loops::reduction::winograd`]).
    winograd: bool,
    /// Input pairs of one pixel: the reduce axes' extents over two.
    pairs_per_pixel: usize,
    /// Output channels: the spatial axes the input does not depend on.
    channels: usize,
}

impl NestCost {
    /// The model of `r` on `machine`.
    pub fn new(r: &Reduction, machine: Machine) -> NestCost {
        let axes = 0..r.axes.len();
        let reduced: usize = r
            .axes
            .iter()
            .filter(|a| a.reduce)
            .map(|a| a.extent)
            .product();
        let depends = [&r.input, &r.weight]
            .map(|o| axes.clone().map(|a| o.index.coefficient(a) != 0).collect());
        let guarded = axes
            .clone()
            .map(|a| r.guards.iter().any(|g| g.index.coefficient(a) != 0))
            .collect();
        NestCost {
            machine,
            input_coefficients: axes.clone().map(|a| r.input.index.coefficient(a)).collect(),
            reduce: r.axes.iter().map(|a| a.reduce).collect(),
            depends,
            offset: [r.input.offset != 0, r.weight.offset != 0],
            guarded,
            simd: axes.clone().map(|a| r.simd_along(a)).collect(),
            pairable: axes.clone().map(|a| r.winograd_along(a)).collect(),
            weights_read_once: r.axes.iter().enumerate().all(|(a, axis)| {
                axis.reduce || axis.extent == 1 || r.weight.index.coefficient(a) != 0
            }),
            outputs: r
                .axes
                .iter()
                .filter(|a| !a.reduce)
                .map(|a| a.extent)
                .product(),
            residual: r.residual.is_some(),
            wide_weights: false,
            winograd: reduced >= MIN_WINOGRAD_SUM && r.winograd_bias_ready().is_ok(),
            pairs_per_pixel: reduced / 2,
            channels: axes
                .filter(|a| !r.axes[*a].reduce && r.input.index.coefficient(*a) == 0)
                .map(|a| r.axes[a].extent)
                .product(),
        }
    }

    /// The same model for weights stored widened to the SIMD lanes' 16-bit pairs
    /// (`LoopNest::wide_weights`): a word of four weights is two loads, no unpacking.
    pub fn widened(self) -> NestCost {
        NestCost {
            wide_weights: true,
            ..self
        }
    }

    /// Instructions per output element outside the loops the nest orders.
    pub fn epilogue(&self) -> f64 {
        let residual = if self.residual { 15.0 } else { 0.0 };
        self.outputs as f64 * (self.machine.epilogue + residual)
    }

    /// The context inside loop `axis` (an iteration of it), serial or unrolled; `None` if the
    /// accumulator block would outgrow [`MAX_ACCUMULATORS`], or for an unrolled reduce loop
    /// inside an unrolled block loop: gcc reloads the operands in every copy of the block
    /// instead of sharing them, so the reduce loop is unrolled outside the block or not at all.
    pub fn enter(&self, ctx: Context, spec: LoopSpec, unrolled: bool) -> Option<Context> {
        let (axis, extent) = (spec.axis, spec.extent);
        let mut inner = ctx;
        if self.reduce[axis] {
            if unrolled && ctx.unrolled_block {
                return None;
            }
            inner.reduce_above = true;
        } else if ctx.reduce_above {
            inner.unrolled_block |= unrolled;
            inner.block *= extent;
            inner.block_in_memory |= !unrolled;
            if inner.block > MAX_ACCUMULATORS {
                return None;
            }
        }
        if unrolled {
            inner.region *= extent;
            for (o, loads) in inner.loads.iter_mut().enumerate() {
                if self.depends[o][axis] {
                    *loads *= extent;
                }
            }
            if !self.reduce[axis] && self.depends[0][axis] {
                inner.rows *= extent;
            }
            // Past the last slot the product above stands.
            if let Some(free) = inner.region_loops.iter().position(Option::is_none) {
                inner.region_loops[free] = Some(spec);
                inner.loads[0] = self.distinct_inputs(&inner.region_loops);
            }
        } else {
            inner.region = 1;
            inner.loads = [1, 1];
            inner.rows = 1;
            inner.unrolled_block = false;
            inner.region_loops = [None; MAX_REGION_LOOPS];
        }
        Some(inner)
    }

    /// Elements of operand `o` (0 input, 1 weight) the region keeps live to share across the
    /// copies of an unrolled loop `o` does not depend on: those it loads inside the outermost
    /// such loop, or one. Inside an accumulator block of channels that is one input and one
    /// weight per channel; with the channels unrolled outside an unrolled reduce loop, gcc
    /// unpacks the reduction's every input word once and holds the halves across the
    /// channels' copies (resnet8's residual 1x1 convolution on M4, pixels by channels outside
    /// its four input words: 3.55 instructions per MAC, spilling the halves; the channels
    /// inside, 3.02). Charged for both operands, measured in one run on M4: vww 14.71 M to
    /// 13.58 M instructions (its 128-channel pointwise layers 1.54 to 1.32 per MAC, its first,
    /// sums of 8, 3.14 to 3.29), resnet8 15.43 M to 15.33 M, kws and ad01 unchanged.
    fn shared(&self, ctx: &Context, o: usize) -> usize {
        let loops = &ctx.region_loops;
        let independent =
            |l: &Option<LoopSpec>| matches!(l, Some(l) if l.extent > 1 && !self.depends[o][l.axis]);
        let Some(at) = loops.iter().position(independent) else {
            return 1;
        };
        let inside = &loops[at + 1..];
        match o {
            0 => self.distinct_inputs(inside),
            _ => inside
                .iter()
                .flatten()
                .filter(|l| self.depends[1][l.axis])
                .map(|l| l.extent)
                .product(),
        }
    }

    /// The number of distinct input indices over every combination of `loops`.
    fn distinct_inputs(&self, loops: &[Option<LoopSpec>]) -> usize {
        let mut offsets = vec![0i64];
        for l in loops.iter().flatten() {
            let step = self.input_coefficients[l.axis] * l.stride as i64;
            let each = offsets
                .iter()
                .flat_map(|o| (0..l.extent as i64).map(move |v| o + v * step));
            offsets = each.collect();
            offsets.sort_unstable();
            offsets.dedup();
        }
        offsets.len()
    }

    /// Instructions each iteration of a loop over `axis` adds besides its body.
    pub fn per_iteration(&self, axis: usize, unrolled: bool) -> f64 {
        let check = if self.guarded[axis] { 2.0 } else { 0.0 };
        let counter = if unrolled {
            0.0
        } else {
            self.machine.loop_overhead
        };
        check + counter
    }

    /// One scalar multiply-accumulate in `ctx`.
    pub fn body(&self, ctx: Context) -> Estimate {
        let region = ctx.region as f64;
        let loads: f64 = (0..2)
            .map(|o| ctx.loads[o] as f64 * (1.0 + f64::from(u8::from(self.offset[o]))))
            .sum();
        let operands = self.operand_registers(ctx) + 1;
        let instructions = self.machine.mac + loads / region;
        self.with_registers(ctx, instructions, ACC_TRAFFIC, operands, 1, SPILL)
    }

    /// A 4-lane vectorized loop over `axis` around one multiply-accumulate, in `ctx`: four
    /// products, or `None` if the machine or the operands do not allow it there.
    pub fn lanes(&self, ctx: Context, axis: usize) -> Option<Estimate> {
        if !self.machine.dsp || !self.simd[axis] {
            return None;
        }
        let region = ctx.region as f64;
        // A word of four elements per operand, loaded and unpacked into two; widened weights
        // are two words loaded.
        let weight_word = if self.wide_weights { 2.0 } else { 3.0 };
        let loads = (3.0 * ctx.loads[0] as f64 + weight_word * ctx.loads[1] as f64) / region;
        if self.reduce[axis] && self.wide_weights {
            return Some(self.wide_reduce_lanes(ctx, loads));
        }
        // Registers for operands: bytes to unpack keep every loaded word's halves live as
        // gcc schedules them (fitted to kws's pointwise layers).
        let operands = 2 * ctx.loads[0].min(ctx.loads[1]) + 2;
        if self.reduce[axis] {
            Some(self.with_registers(ctx, 2.0 + loads, ACC_TRAFFIC, operands, 1, SPILL))
        } else if ctx.reduce_above {
            let ctx = Context {
                block: ctx.block * 4,
                ..ctx
            };
            let traffic = 4.0 * ACC_TRAFFIC;
            Some(self.with_registers(ctx, 4.0 + loads, traffic, 4, 4, SPILL))
        } else {
            None
        }
    }

    /// [`Self::lanes`] along a reduce axis with widened weights, whose instructions per
    /// execution are `loads` plus two SMLADs. Widened weights need no unpacking, and gcc
    /// streams them, keeping live only the input words' halves and the weight pairs an
    /// unrolled loop shares ([`Self::shared`]: in a block of channels one input word's halves
    /// and one weight pair, however far the region is unrolled; fitted to resnet8's 3x3
    /// convolutions, the first 16-channel one going from 2.15 to 1.81 instructions per MAC
    /// on M4).
    fn wide_reduce_lanes(&self, ctx: Context, loads: f64) -> Estimate {
        let operands = 2 * self.shared(&ctx, 0) + 2 * self.shared(&ctx, 1);
        self.with_registers(ctx, 2.0 + loads, ACC_TRAFFIC, operands, 1, SPILL)
    }

    /// A vectorized loop of `lanes` over `axis` around one multiply-accumulate, in `ctx`: 4
    /// lanes of DSP SIMD ([`Self::lanes`]) or a Winograd pair ([`Self::pairs`]); `None` for
    /// any other count or where the form does not apply.
    pub fn vectorized(&self, ctx: Context, axis: usize, lanes: usize) -> Option<Estimate> {
        match lanes {
            super::rules::LANES => self.lanes(ctx, axis),
            2 => self.pairs(ctx, axis),
            _ => None,
        }
    }

    /// A 2-lane vectorized loop over reduce `axis` around one multiply-accumulate, in `ctx`, as
    /// Winograd's inner product: two products for `add`, `slli`, `mulh` and `add`, a word
    /// per operand (the input's from the scratch block), and a share of filling the block
    /// (about [`SCRATCH_FILL`] instructions per input pair, once per pixel for all channels);
    /// `None` if the machine, the operands or the scratch block's size do not allow it.
    pub fn pairs(&self, ctx: Context, axis: usize) -> Option<Estimate> {
        let allowed = self.machine.winograd && self.winograd && self.wide_weights;
        if !allowed || !self.pairable[axis] {
            return None;
        }
        let words = self.pairs_per_pixel * ctx.rows;
        if words > minnow_ir::loops::reduction::winograd::SCRATCH_WORDS {
            return None;
        }
        let region = ctx.region as f64;
        let loads = (ctx.loads[0] + ctx.loads[1]) as f64 / region;
        // A padded lanes' axis tests each lane's tap on its own, through a local pair.
        let per_pair = if self.guarded[axis] {
            SCRATCH_FILL_PADDED_LANES
        } else {
            SCRATCH_FILL
        };
        let fill = per_pair / self.channels.max(1) as f64;
        let operands = self.operand_registers(ctx) + 2;
        // The input words come from the scratch block, one pointer for every row: no row is
        // charged a register (measured in one run on RV32IMAC: resnet8 39.70 M to 38.85 M
        // instructions, vww 25.27 M to 24.79 M, kws and ad01 unchanged).
        let ctx = Context { rows: 1, ..ctx };
        let instructions = 4.0 + loads + fill;
        Some(self.with_registers(ctx, instructions, ACC_TRAFFIC, operands, 1, WINOGRAD_SPILL))
    }

    /// Registers the region's loaded operands hold, besides one for the product. Where the
    /// machine [`Machine::hoists_loads`], those of the operand loaded most, except that the
    /// weights of a reduction that reads each weight once (a fully connected layer) stream
    /// through one register and the input is charged (measured in one run on RV32IMAC: ad01
    /// 936,777 to 877,920 instructions; charging any region's once-read operand so instead
    /// cost resnet8's convolutions 6 %). Elsewhere the operand loaded least.
    fn operand_registers(&self, ctx: Context) -> usize {
        if !self.machine.hoists_loads {
            return ctx.loads[0].min(ctx.loads[1]);
        }
        let streamed = self.weights_read_once && ctx.loads[0] < ctx.region;
        if streamed {
            ctx.loads[0]
        } else {
            ctx.loads[0].max(ctx.loads[1])
        }
    }

    /// `instructions` per execution of the innermost code, plus `acc_traffic` if the
    /// accumulators live in memory, plus `spill` instructions per register the block and
    /// `operands` need beyond the machine's ([`SPILL`], or [`WINOGRAD_SPILL`]).
    /// `accumulators` is how many the code updates.
    fn with_registers(
        &self,
        ctx: Context,
        instructions: f64,
        acc_traffic: f64,
        operands: usize,
        accumulators: usize,
        spill: f64,
    ) -> Estimate {
        let in_memory = ctx.block_in_memory || ctx.block > self.machine.registers;
        let accumulators_live = if in_memory { accumulators } else { ctx.block };
        let registers = accumulators_live + operands + ctx.rows - 1;
        let spills = registers.saturating_sub(self.machine.registers) as f64;
        let traffic = if in_memory { acc_traffic } else { 0.0 };
        Estimate {
            instructions: instructions + traffic + spill * spills / ctx.region as f64,
            registers,
        }
    }
}
