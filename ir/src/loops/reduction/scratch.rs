//! The scratch block of a Winograd nest ([`Scratch`]): where it is filled, and how its words
//! are indexed so that overlapping windows share them.
//!
//! The block holds one input word per pair of the loops inside its level that the input
//! depends on. Loops that move the input and every padding guard alike, up to a whole factor
//! (an output pixel loop and the window loop along the same image axis, `ox` and `kx` of a
//! convolution of stride 1), form one [`ScratchDim`]: the weighted sum of their variables,
//! `ox + kx`, indexes the input along that axis, so the windows of neighbouring pixels share
//! their words and the block is filled with each input pair once.

use super::{LoopNest, Reduction};

/// The most input words a scratch block may hold (4 KiB of stack).
pub const SCRATCH_WORDS: usize = 1024;

/// Instructions to fill one word of a scratch block (two byte loads, the packing, the store,
/// the cross term's multiply-accumulate and the padding test), for choosing its level.
const FILL_WORD: f64 = 10.0;

/// What a byte of a scratch block's stack is worth in instructions, for choosing its level:
/// the graph rewriter's price of a byte of arena (`minnow_autotune::cost::ARENA_BYTE`), RAM
/// being RAM. (Measured in one run on RV32IMAC against filling the fewest words whatever the
/// stack: resnet8 36.17 M instructions and 1,968 stack bytes against 35.56 M and 4,112; kws
/// 8.21 M and 864 against 8.17 M and 3,600.)
const STACK_BYTE: f64 = 64.0;

/// Where the input words of a Winograd nest are gathered, and how they are indexed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scratch {
    /// The nest position at which the block is filled: of those whose block fits
    /// [`SCRATCH_WORDS`], the one whose filling ([`FILL_WORD`] per word filled per inference)
    /// and stack ([`STACK_BYTE`]) cost least (the innermost of those that tie).
    pub level: usize,
    /// The loops inside `level` that the input depends on (the lanes' loop aside), in nest
    /// order.
    pub loops: Vec<usize>,
    /// Those of `loops` over spatial axes: the index of a pixel's input cross term.
    pub pixel_loops: Vec<usize>,
    /// The block's dimensions, which `loops` form: its index is their mixed radix, the last
    /// fastest.
    pub dims: Vec<ScratchDim>,
}

/// One dimension of a scratch block: loops whose every step moves the input, and each
/// padding guard, by whole multiples of one step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScratchDim {
    /// `(loop, multiplier)`: the dimension's index is the sum of the multipliers times the
    /// loops' variables; one loop has multiplier 1.
    pub terms: Terms,
    /// The values the index takes: the multipliers times the loops' extents less one, plus 1.
    pub extent: usize,
}

impl Scratch {
    /// Words of the block.
    pub fn words(&self) -> usize {
        self.dims.iter().map(|d| d.extent).product()
    }

    /// Pixels of the block (one input cross term each).
    pub fn pixels(&self, nest: &LoopNest) -> usize {
        self.pixel_loops
            .iter()
            .map(|l| nest.loops[*l].extent)
            .product()
    }

    /// Whether a dimension shares words between the windows of several pixels: the pixels'
    /// cross terms are then summed from per-position sums after the fill.
    pub fn shares_words(&self) -> bool {
        self.dims.len() < self.loops.len()
    }

    /// The dimensions a pixel's cross term depends on, in block order: those with a pixel
    /// loop. The input products are summed over the others while the block is filled.
    pub fn summed_dims(&self) -> Vec<usize> {
        let has_pixel = |d: &ScratchDim| d.terms.iter().any(|(l, _)| self.pixel_loops.contains(l));
        (0..self.dims.len())
            .filter(|d| has_pixel(&self.dims[*d]))
            .collect()
    }

    /// Values of the [`Self::summed_dims`] (one per-position sum each).
    pub fn summed_words(&self) -> usize {
        self.summed_dims()
            .iter()
            .map(|d| self.dims[*d].extent)
            .product()
    }
}

impl Reduction {
    /// The scratch block of a Winograd nest.
    pub fn winograd_scratch(&self, nest: &LoopNest) -> Scratch {
        let n = nest.loops.len();
        let first_reduce = (0..n)
            .find(|l| self.axes[nest.loops[*l].axis].reduce)
            .unwrap_or(n);
        // Filling at `level` fills its block once per iteration of the loops outside.
        let fills =
            |level: usize| -> usize { nest.loops[..level].iter().map(|l| l.extent).product() };
        let mut best: Option<(f64, Scratch)> = None;
        for level in 0..=first_reduce {
            let scratch = self.scratch_at(nest, level);
            let words = scratch.words() as f64;
            let cost = fills(level) as f64 * words * FILL_WORD + 4.0 * words * STACK_BYTE;
            let fits = scratch.words() <= SCRATCH_WORDS;
            if fits && best.as_ref().is_none_or(|(b, _)| cost <= *b) {
                best = Some((cost, scratch));
            }
        }
        match best {
            Some((_, scratch)) => scratch,
            None => self.scratch_at(nest, first_reduce),
        }
    }

    /// The scratch block of `nest` filled at `level`.
    fn scratch_at(&self, nest: &LoopNest, level: usize) -> Scratch {
        let n = nest.loops.len();
        let reads = |l: &usize| self.input.index.coefficient(nest.loops[*l].axis) != 0;
        let loops: Vec<usize> = (level..n.saturating_sub(1)).filter(reads).collect();
        let pixel_loops = loops
            .iter()
            .copied()
            .filter(|l| !self.axes[nest.loops[*l].axis].reduce)
            .collect();
        Scratch {
            level,
            dims: self.scratch_dims(nest, &loops),
            loops,
            pixel_loops,
        }
    }

    /// How one step of loop `l` moves the input index and each guard's index.
    fn steps_of(&self, nest: &LoopNest, l: usize) -> Vec<i64> {
        let lp = &nest.loops[l];
        let indices =
            std::iter::once(&self.input.index).chain(self.guards.iter().map(|g| &g.index));
        indices
            .map(|ix| ix.coefficient(lp.axis) * lp.stride as i64)
            .collect()
    }

    /// `loops` grouped into dimensions: a loop joins a dimension whose steps are a whole
    /// multiple of its own or the other way round. A dimension stays whole only where it
    /// has fewer values than its loops' iterations (windows overlap); otherwise each loop is
    /// a dimension of its own. In nest order of each dimension's innermost loop.
    fn scratch_dims(&self, nest: &LoopNest, loops: &[usize]) -> Vec<ScratchDim> {
        // Per dimension: its unit steps, and its terms.
        let mut groups: Vec<(Vec<i64>, Terms)> = Vec::new();
        for &l in loops {
            let steps = self.steps_of(nest, l);
            let joined = groups.iter_mut().any(|(unit, terms)| {
                if let Some(m) = multiple(&steps, unit) {
                    terms.push((l, m));
                    return true;
                }
                let Some(m) = multiple(unit, &steps) else {
                    return false;
                };
                terms.iter_mut().for_each(|t| t.1 *= m);
                terms.push((l, 1));
                *unit = steps.clone();
                true
            });
            if !joined {
                groups.push((steps, vec![(l, 1)]));
            }
        }
        let mut dims: Vec<ScratchDim> = Vec::new();
        for (_, terms) in groups {
            let extent = |(l, m): &(usize, usize)| m * (nest.loops[*l].extent - 1);
            let values = terms.iter().map(extent).sum::<usize>() + 1;
            let iterations: usize = terms.iter().map(|(l, _)| nest.loops[*l].extent).product();
            if values < iterations && !self.encloses_pixel(nest, &terms) {
                dims.push(ScratchDim {
                    terms,
                    extent: values,
                });
            } else {
                let single = |(l, _): &(usize, usize)| ScratchDim {
                    terms: vec![(*l, 1)],
                    extent: nest.loops[*l].extent,
                };
                dims.extend(terms.iter().map(single));
            }
        }
        let innermost = |d: &ScratchDim| d.terms.iter().map(|(l, _)| *l).max();
        dims.sort_by_key(innermost);
        dims
    }

    /// Whether a reduce loop among `terms` directly encloses a spatial one of them in `nest`:
    /// the code then walks the shared words along the window loop, and gcc carries them
    /// between its iterations in registers, which spills accumulators (measured in one run on
    /// RV32IMAC: kws 8.21 M instructions with its first convolution's block unshared, 8.33 M
    /// shared).
    fn encloses_pixel(&self, nest: &LoopNest, terms: &[(usize, usize)]) -> bool {
        let reduce = |l: usize| self.axes[nest.loops[l].axis].reduce;
        let loops: Vec<usize> = terms.iter().map(|(l, _)| *l).collect();
        let inner_of = |l: usize| (l + 1..nest.loops.len()).find(|i| nest.loops[*i].extent > 1);
        loops
            .iter()
            .any(|&l| reduce(l) && inner_of(l).is_some_and(|i| loops.contains(&i) && !reduce(i)))
    }
}

/// A dimension's `(loop, multiplier)` terms ([`ScratchDim::terms`]).
type Terms = Vec<(usize, usize)>;

/// `m` where `steps` is `m` (a whole number from 1) times `unit`, if it is.
fn multiple(steps: &[i64], unit: &[i64]) -> Option<usize> {
    let (s, u) = (steps[0], unit[0]);
    if u == 0 || s % u != 0 || s / u < 1 {
        return None;
    }
    let m = s / u;
    steps
        .iter()
        .zip(unit)
        .all(|(s, u)| *s == m * u)
        .then_some(m as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Graph;
    use crate::op::{Activation, Op, Padding, Window};
    use crate::types::{DType, Quant, TensorType};

    /// The reduction of a 3x3 convolution of an 8x8 image of 4 channels to 2, of `stride`.
    fn conv(stride: usize) -> Reduction {
        let ty = |shape: &[usize], dtype, scale| TensorType {
            shape: shape.to_vec(),
            dtype,
            quant: Some(Quant::PerTensor {
                scale,
                zero_point: 0,
            }),
        };
        let side = 8 / stride;
        let mut g = Graph::new("conv");
        let x = g.add_input("x", ty(&[1, 8, 8, 4], DType::I8, 0.1));
        let w = g.add_constant("w", ty(&[2, 3, 3, 4], DType::I8, 0.01), vec![1; 72]);
        let b = g.add_constant("b", ty(&[2], DType::I32, 0.001), vec![0; 8]);
        let y = g.add_tensor("y", ty(&[1, side, side, 2], DType::I8, 0.2));
        let op = Op::Conv2d {
            weights: crate::WeightLayout::Bytes,
            window: Window {
                stride_h: stride,
                stride_w: stride,
                dilation_h: 1,
                dilation_w: 1,
                padding: Padding::Same,
            },
            activation: Activation::None,
        };
        g.add_op(op, vec![Some(x), Some(w), Some(b)], vec![y])
            .unwrap();
        g.outputs.push(y);
        let program = crate::lower::lower(&g).unwrap();
        let step = program.steps.iter().find(|s| s.reduction.is_some());
        step.and_then(|s| s.reduction.clone()).unwrap()
    }

    /// Filled above the pixel loops, a convolution's scratch block holds each input pair its
    /// windows read once: rows and columns of the image's extent, not one window per pixel.
    #[test]
    fn overlapping_windows_share_their_words() {
        for (stride, side) in [(1, 8 + 2), (2, 2 * 3 + 3)] {
            let r = conv(stride);
            let nest = r.default_nest();
            let scratch = r.scratch_at(&nest, 0);
            let extents = scratch.dims.iter().map(|d| d.extent);
            // Rows and columns: the channels are the innermost loop, the lanes' place.
            let extents: Vec<usize> = extents.filter(|e| *e > 1).collect();
            assert_eq!(extents, [side, side], "stride {stride}: {scratch:?}");
            assert!(scratch.shares_words());
            assert_eq!(scratch.summed_words(), side * side);
        }
    }

    #[test]
    fn multiples_are_whole_and_positive_on_every_index() {
        assert_eq!(multiple(&[8, 2], &[4, 1]), Some(2));
        assert_eq!(multiple(&[4, 1], &[4, 1]), Some(1));
        assert_eq!(multiple(&[4, 1], &[8, 2]), None);
        assert_eq!(multiple(&[8, 1], &[4, 1]), None);
        assert_eq!(multiple(&[-4, -1], &[4, 1]), None);
        assert_eq!(multiple(&[4], &[0]), None);
    }
}
