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
//! convolution). A vectorized innermost reduce loop of 2 lanes becomes one SMLAD on words of
//! two 16-bit halves, the form 128-bit SIMD multiplies four channels of at once; on a core
//! without SIMD, the same loop in a nest marked [`LoopNest::winograd`] is one high multiply
//! by Winograd's inner product ([`winograd`]). Any other vectorized loop runs serially,
//! unrolled.

mod build;
mod scratch;
pub mod winograd;

use super::{BufId, Expr, ForKind, FuncBuilder, Intrinsic, ScalarType};
use crate::op::WeightLayout;
use build::Builder;

/// What a reduction's innermost loop becomes in [`Reduction::build`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lanes {
    /// Plain loops (a vectorized loop that fits neither form runs serially).
    Scalar,
    /// Four lanes of one sum: two SMLADs of unpacked words.
    DotProduct,
    /// Four lanes of four sums (four channels): one SMLABB or SMLATT each.
    Channels,
    /// Two lanes of one sum: one SMLAD of a word of two 16-bit halves per operand. On a
    /// 128-bit SIMD host the loop around it, over four channels, is one `pmaddwd` (x86) or
    /// `smull`/`addp` (AArch64): eight products per instruction.
    Pairs,
    /// Two lanes of one sum on a core without SIMD: one high multiply of the crossed pair
    /// (input word from a scratch block, weight word crossed), Winograd's inner product
    /// ([`winograd`]).
    Winograd,
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
        /// For the scales that take one
        /// ([`Intrinsic::MultiplyByQuantizedMultiplierHighShiftOffset`]): the rounding
        /// constant per channel with the output offset in it, passed as the last argument;
        /// `output_offset` is then not added again.
        rounding: Option<PerChannel>,
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
    /// Tables of the two inputs' scaled values, where the ADD looks them up instead of
    /// computing them (int8 operands of a large enough op).
    pub tables: Option<[BufId; 2]>,
    /// The `(multiplier, shift, rounding)` by which the sum is rescaled in one 32-bit high
    /// multiply ([`crate::qparams::AddParams::int8_high_mul_output`]); set for cores without a
    /// 64-bit multiply-accumulate where that is exact.
    pub high_mul_output: Option<(i32, i32, i32)>,
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
    /// The bias with the input offset folded in (`Σ (x + o) w = Σ x w + o Σ w`), for the code
    /// of a padded reduction where no guard is tested (the interior of partitioned loops),
    /// which then reads the input without its offset.
    pub interior_bias: Option<BufId>,
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
    /// How the graph chose to store the weights ([`WeightLayout::Wide`]: the default schedule
    /// widens them, `Primitive::WidenWeights`, where they are a constant only this op reads).
    pub weight_layout: WeightLayout,
    /// Added to every input element a Winograd scratch block holds (0, or 1 where a pair's
    /// second weight is -128): it lifts int8 inputs to `[-127, 128]`, where a weight of -128
    /// still pairs exactly ([`crate::simd::crossed`]). The weights' sum it adds to each output
    /// is subtracted from the bias table with their cross terms ([`Reduction::cross_terms`]).
    pub input_lift: i32,
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
    /// The weights are stored widened for the SIMD lanes (offset included): each word of four
    /// lanes is two loaded words ([`crate::simd::widened`]), each pair of two lanes one word
    /// ([`crate::simd::paired`]), with no unpacking. Needs SIMD lanes and a constant weight
    /// that is packed for this nest.
    pub wide_weights: bool,
    /// Serial loops over whole padded axes run in three parts: the values before and after
    /// the interior, with the padding guards, and the interior, where no tap falls outside
    /// and the guards on that axis are not tested (TVM's loop partition).
    pub partition_borders: bool,
    /// The 2-lane reduce loop innermost runs as Winograd's inner product rather than SMLAD
    /// ([`Lanes::Winograd`], [`winograd`]): for cores without SIMD. Needs widened weights
    /// (then stored crossed, [`crate::simd::crossed`]); padding is filled into the scratch
    /// block, so `partition_borders` is ignored.
    #[doc(alias = "fast inner product")]
    pub winograd: bool,
}

impl Reduction {
    /// Output elements: the product of the spatial axes' extents.
    pub fn outputs(&self) -> usize {
        self.axes
            .iter()
            .filter(|a| !a.reduce)
            .map(|a| a.extent)
            .product()
    }

    /// Multiply-accumulates: the product of every axis's extent.
    pub fn macs(&self) -> usize {
        self.axes.iter().map(|a| a.extent).product()
    }

    /// A bound on the size of every finished integer accumulator, given one on the bias
    /// entries: each of the reduce axes' products is at most the largest operand values'
    /// (offsets included) in size: int8 inputs with offset 128 (`|x + 128| <= 255`) by int8
    /// weights (`|w| <= 128`) over a 3x3 window of 8 channels are within `72 * 255 * 128` of
    /// the bias. `None` for float sums and 32-bit operands.
    pub fn accumulator_bound(&self, bias: i64) -> Option<i64> {
        let largest = |o: &Operand| -> Option<i64> {
            let (lo, hi) = match o.elem {
                ScalarType::I8 => (i8::MIN as i64, i8::MAX as i64),
                ScalarType::U8 => (0, u8::MAX as i64),
                ScalarType::I16 => (i16::MIN as i64, i16::MAX as i64),
                _ => return None,
            };
            let offset = o.offset as i64;
            Some((lo + offset).abs().max((hi + offset).abs()))
        };
        let product = largest(&self.input)? * largest(&self.weight)?;
        let terms = self.macs() / self.outputs().max(1);
        (terms as i64).checked_mul(product)?.checked_add(bias.abs())
    }

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
            partition_borders: false,
            winograd: false,
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

    /// What the innermost loop of `nest` becomes. The SIMD forms need a vectorized loop that
    /// is the innermost part of an axis [`Reduction::simd_along`] accepts (a packed weight is
    /// laid out contiguous along it too): of 4 lanes, a reduce loop becomes SMLADs and a
    /// spatial one SMLABB/SMLATT; of 2 lanes, a reduce loop becomes one SMLAD of pairs.
    pub fn lanes(&self, nest: &LoopNest) -> Lanes {
        let Some(last) = nest.loops.last() else {
            return Lanes::Scalar;
        };
        let ForKind::Vectorized { lanes } = last.kind else {
            return Lanes::Scalar;
        };
        let innermost = last.extent == lanes as usize && last.stride == 1;
        if nest.winograd {
            // Winograd pairs gather the input through a scratch block: any layout, padding too.
            let pairs = innermost && lanes == 2 && self.winograd_along(last.axis);
            return if pairs {
                Lanes::Winograd
            } else {
                Lanes::Scalar
            };
        }
        let ready = innermost && self.simd_along(last.axis);
        match (ready, lanes, self.axes[last.axis].reduce) {
            (true, 4, true) => Lanes::DotProduct,
            (true, 4, false) => Lanes::Channels,
            (true, 2, true) => Lanes::Pairs,
            _ => Lanes::Scalar,
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
            return Err("widened weights need a SIMD loop innermost".into());
        }
        if nest.winograd {
            self.check_winograd(nest)?;
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
        Builder::new(self, nest).outer(f, 0);
        Ok(())
    }
}
