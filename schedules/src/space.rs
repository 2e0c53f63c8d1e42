//! [`Space`]: the knobs of a multiply-accumulate op's schedule and the default choice per
//! target.

use crate::primitive::{Primitive, Schedule};
use minnow_ir::loops::reduction::Reduction;
use minnow_targets::Features;
use serde::{Deserialize, Serialize};

/// One point of a [`Space`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Knobs {
    /// Output channels computed together (accumulators kept in registers).
    pub channel_block: usize,
    /// Output pixels (or rows) computed together.
    pub pixel_block: usize,
    /// SIMD lanes: the innermost reduce loop as 4-lane SMLADs where both operands are
    /// contiguous along it, else the channel block's innermost 4 channels as SMLABB/SMLATT.
    pub vectorize: bool,
    /// Unroll factor of the innermost reduce loop when not vectorized (1: none).
    pub reduce_unroll: usize,
    /// SIMD pairs: the innermost reduce loop as 2-lane SMLADs of 16-bit pairs, which 128-bit
    /// SIMD runs for four channels at once (`pmaddwd`); not with `vectorize`.
    #[serde(default)]
    pub pairs: bool,
}

impl Knobs {
    /// The reference kernels' loop nest.
    pub const NAIVE: Knobs = Knobs {
        channel_block: 1,
        pixel_block: 1,
        vectorize: false,
        reduce_unroll: 1,
        pairs: false,
    };
}

/// The roles of a reduction's axes that the knobs act on, found from its compute definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Space {
    names: Vec<String>,
    /// The widest spatial axis the channel depends on.
    channel: usize,
    channel_extent: usize,
    /// The innermost spatial axis outside the channel, if blocking it keeps guards out of the
    /// inner loops.
    pixel: Option<(usize, usize)>,
    /// The innermost reduce axis of more than one value.
    reduce: (usize, usize),
    /// Which SIMD form the operands allow.
    simd: Simd,
    /// Whether the innermost reduce axis takes SIMD pairs ([`Knobs::pairs`]).
    pairs: bool,
}

/// The SIMD form a reduction's operand layout allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Simd {
    /// Neither.
    None,
    /// SMLADs along the innermost reduce axis.
    Reduce,
    /// SMLABB/SMLATT across four channels.
    Channels,
}

impl Space {
    /// The space of `r`.
    pub fn of(r: &Reduction) -> Space {
        let spatial = |a: &usize| !r.axes[*a].reduce;
        let channel = (0..r.axes.len())
            .filter(|a| spatial(a) && r.channel.coefficient(*a) != 0)
            .max_by_key(|a| (r.axes[*a].extent, *a))
            .unwrap_or(0);
        let unguarded = |a: usize| r.guards.iter().all(|g| g.index.coefficient(a) == 0);
        let pixel = (0..r.axes.len())
            .rev()
            .find(|a| spatial(a) && r.channel.coefficient(*a) == 0 && r.axes[*a].extent > 1)
            .filter(|a| unguarded(*a))
            .map(|a| (a, r.axes[a].extent));
        // The innermost reduce axis that is not a single value (a first layer's one input
        // channel), whose loop the schedule moves innermost.
        let reduces: Vec<usize> = (0..r.axes.len()).filter(|a| !spatial(a)).collect();
        let reduce = reduces
            .iter()
            .rev()
            .find(|a| r.axes[**a].extent > 1)
            .or(reduces.last())
            .map_or((0, 1), |a| (*a, r.axes[*a].extent));
        let simd = if r.simd_along(reduce.0) && reduce.1 % 4 == 0 {
            Simd::Reduce
        } else if r.simd_along(channel) && r.axes[channel].extent % 4 == 0 {
            Simd::Channels
        } else {
            Simd::None
        };
        Space {
            names: r.axes.iter().map(|a| a.name.clone()).collect(),
            channel,
            channel_extent: r.axes[channel].extent,
            pixel,
            reduce,
            simd,
            pairs: r.simd_along(reduce.0) && reduce.1 % 2 == 0,
        }
    }

    /// Every valid point: blocks that divide their axes, SIMD where the layout allows it
    /// (across channels only for blocks of 4 or 8 channels). The points with SIMD pairs come
    /// last, so that an index into the list names the same point it did before they existed
    /// (tuning records keep such indices).
    pub fn choices(&self) -> Vec<Knobs> {
        let mut out = Vec::new();
        for (channel_block, pixel_block) in self.blocks() {
            for vectorize in [false, true] {
                let simd_fits = match self.simd {
                    Simd::None => false,
                    Simd::Reduce => true,
                    Simd::Channels => channel_block >= 4,
                };
                if vectorize && !simd_fits {
                    continue;
                }
                for reduce_unroll in [1, 2, 3, 4] {
                    let lanes_split = vectorize && self.simd == Simd::Reduce;
                    if (lanes_split && reduce_unroll > 1) || self.reduce.1 % reduce_unroll != 0 {
                        continue;
                    }
                    out.push(Knobs {
                        channel_block,
                        pixel_block,
                        vectorize,
                        reduce_unroll,
                        pairs: false,
                    });
                }
            }
        }
        if self.pairs {
            out.extend(self.blocks().map(|(channel_block, pixel_block)| Knobs {
                channel_block,
                pixel_block,
                vectorize: false,
                reduce_unroll: 1,
                pairs: true,
            }));
        }
        out
    }

    /// The `(channel, pixel)` blocks that divide their axes.
    fn blocks(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let channels = [1, 2, 4, 8, 16].into_iter();
        let channels = channels.filter(|c| self.channel_extent % c == 0);
        channels.flat_map(move |c| {
            let pixels = [1, 2, 3, 4, 5].into_iter();
            let fits = move |p: &usize| *p == 1 || self.pixel.is_some_and(|(_, e)| e % p == 0);
            pixels.filter(fits).map(move |p| (c, p))
        })
    }

    /// The default for a target. On DSP cores, SIMD: SMLADs along the reduce axis, else
    /// SMLABB/SMLATT over blocks of four channels. On cores with 128-bit SIMD and sixteen
    /// vector registers (the host), blocks of eight or sixteen channels (two or four `i32x4`
    /// vectors) by up to five pixels, the first that divides the axes of a list ordered by
    /// instructions per multiply-accumulate, within the registers (sixteen channels by two
    /// pixels first, then eight by five): each weight vector then serves every pixel and
    /// each input value every channel; where the reduce axis allows, it runs in SIMD pairs
    /// ([`Knobs::pairs`]). Elsewhere a register block of four
    /// accumulators (two channels by two pixels where the pixels divide, else four channels,
    /// else two) so that each loaded operand serves several multiplies. The innermost reduce
    /// loop is unrolled by four, or completely if it is shorter, where it is not vectorized.
    pub fn default_for(&self, features: &Features) -> Knobs {
        let choices = self.choices();
        let vectorize = self.simd != Simd::None && features.dsp;
        let extent = self.reduce.1;
        // 128-bit SIMD multiplies pairs of the reduce axis in four channels at once.
        let pairs = features.simd128 && self.pairs;
        let reduce_unroll = if pairs {
            1
        } else if features.simd128 {
            // Two weight vectors per reduce step already fill the registers a block of eight
            // channels by five pixels leaves; only short kernel rows are unrolled.
            if extent <= 4 {
                extent
            } else {
                1
            }
        } else if vectorize && self.simd == Simd::Reduce {
            1
        } else if extent % 4 == 0 {
            4
        } else if extent <= 4 {
            extent
        } else {
            1
        };
        let blocks: &[(usize, usize)] = if vectorize && self.simd == Simd::Channels {
            &[(4, 1)]
        } else if features.simd128 {
            &[
                (16, 2),
                (8, 5),
                (8, 4),
                (16, 1),
                (8, 3),
                (8, 2),
                (8, 1),
                (4, 4),
                (4, 2),
                (4, 1),
                (2, 1),
                (1, 1),
            ]
        } else {
            &[(2, 2), (4, 1), (2, 1), (1, 1)]
        };
        blocks
            .iter()
            .map(|(c, p)| Knobs {
                channel_block: *c,
                pixel_block: *p,
                vectorize: vectorize && !pairs,
                reduce_unroll,
                pairs,
            })
            .find(|k| choices.contains(k))
            .unwrap_or(Knobs::NAIVE)
    }

    /// An analytic estimate of the instructions `r` takes under `k`. Per multiply-accumulate:
    /// about 0.75 for SMLADs (two per four products, with the unpacking), 2 across channels
    /// (SMLABB/SMLATT and the unpacking), 3 plus a share of the loads in plain code, and half
    /// an instruction per tap and block for bounds checks where guards sit on the reduce
    /// axes; for SIMD pairs, half an SMLAD and the input pair's share. About 20 per output for the requantization, and 15 more for a fused residual ADD.
    /// Coarse, but it orders the forms the graph rewriter compares.
    pub fn estimate(&self, r: &Reduction, k: &Knobs) -> f64 {
        let (macs, outputs) = (r.macs() as f64, r.outputs() as f64);
        let block = (k.channel_block * k.pixel_block) as f64;
        let per_mac = match (k.vectorize, self.simd) {
            // One SMLAD per two products, and the input pair built once for the block.
            _ if k.pairs => 0.5 + 2.0 / block,
            (true, Simd::Reduce) => 0.75,
            (true, Simd::Channels) => 2.0,
            _ => 3.0 + 1.0 / block,
        };
        let guarded = r
            .guards
            .iter()
            .any(|g| g.index.terms.iter().any(|(a, _)| r.axes[*a].reduce));
        let checks = if guarded { 0.5 / block } else { 0.0 };
        let per_output = if r.residual.is_some() { 35.0 } else { 20.0 };
        macs * (per_mac + checks) + outputs * per_output
    }

    /// The schedule of a point: splits; the block loops (unrolled) moved inside the reduce
    /// loops, after the unrolled part of the innermost reduce axis; innermost, the SIMD lanes
    /// (of the reduce axis, four or a pair, or of the channels).
    pub fn schedule(&self, k: &Knobs) -> Schedule {
        let mut steps = Vec::new();
        let mut order: Vec<String> = self.names.clone();
        let mut split = |steps: &mut Vec<Primitive>, name: String, factor: usize| {
            steps.push(Primitive::Split {
                name: name.clone(),
                factor,
            });
            let at = order
                .iter()
                .position(|n| *n == name)
                .expect("loop to split");
            let parts = (format!("{name}_o"), format!("{name}_i"));
            order.splice(at..=at, [parts.0.clone(), parts.1.clone()]);
            parts
        };
        let across_channels = k.vectorize && self.simd == Simd::Channels;
        let mut block = Vec::new();
        // The SIMD lanes, innermost.
        let mut innermost = None;
        if let Some((axis, _)) = self.pixel.filter(|_| k.pixel_block > 1) {
            block.push(split(&mut steps, self.names[axis].clone(), k.pixel_block).1);
        }
        if k.channel_block > 1 {
            let channels = split(
                &mut steps,
                self.names[self.channel].clone(),
                k.channel_block,
            )
            .1;
            if across_channels && k.channel_block > 4 {
                let (outer, lanes) = split(&mut steps, channels, 4);
                block.push(outer);
                innermost = Some(lanes);
            } else if across_channels {
                innermost = Some(channels);
            } else {
                block.push(channels);
            }
        }
        let reduce = self.names[self.reduce.0].clone();
        let mut unrolled = block.clone();
        let lanes = if k.pairs { 2 } else { 4 };
        if k.pairs || (k.vectorize && self.simd == Simd::Reduce) {
            innermost = Some(split(&mut steps, reduce, lanes).1);
        } else if k.reduce_unroll > 1 {
            // It stays with the reduce loops, outside the block: each operand it loads then
            // serves every accumulator of the block.
            unrolled.insert(0, split(&mut steps, reduce, k.reduce_unroll).1);
        }
        // Block loops go just inside the reduce loops, then the innermost loop.
        order.retain(|n| !block.contains(n) && Some(n) != innermost.as_ref());
        order.extend(block.iter().cloned());
        order.extend(innermost.iter().cloned());
        if !block.is_empty() || across_channels || k.pairs {
            steps.push(Primitive::Reorder { order });
        }
        for name in unrolled {
            steps.push(Primitive::Unroll { name });
        }
        if let Some(name) = innermost {
            steps.push(Primitive::Vectorize { name, lanes });
        }
        Schedule { steps }
    }
}
