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
    /// The innermost reduce loop as 4-lane SMLADs.
    pub vectorize: bool,
    /// Unroll factor of the innermost reduce loop when not vectorized (1: none).
    pub reduce_unroll: usize,
}

impl Knobs {
    /// The reference kernels' loop nest.
    pub const NAIVE: Knobs = Knobs {
        channel_block: 1,
        pixel_block: 1,
        vectorize: false,
        reduce_unroll: 1,
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
    /// The innermost reduce axis.
    reduce: (usize, usize),
    /// Whether SMLADs can serve the innermost reduce axis.
    simd: bool,
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
        let reduce = (0..r.axes.len())
            .rev()
            .find(|a| !spatial(a))
            .map_or((0, 1), |a| (a, r.axes[a].extent));
        let contiguous = [&r.input, &r.weight].iter().all(|o| {
            o.elem == minnow_ir::loops::ScalarType::I8 && o.index.coefficient(reduce.0) == 1
        });
        Space {
            names: r.axes.iter().map(|a| a.name.clone()).collect(),
            channel,
            channel_extent: r.axes[channel].extent,
            pixel,
            reduce,
            simd: contiguous
                && r.acc == minnow_ir::loops::ScalarType::I32
                && reduce.1 % 4 == 0
                && unguarded(reduce.0),
        }
    }

    /// Every valid point: blocks that divide their axes, SMLADs where they apply.
    pub fn choices(&self) -> Vec<Knobs> {
        let divides = |n: usize, e: usize| e % n == 0;
        let mut out = Vec::new();
        for channel_block in [1, 2, 4, 8] {
            if !divides(channel_block, self.channel_extent) {
                continue;
            }
            for pixel_block in [1, 2, 4] {
                if pixel_block > 1 && !self.pixel.is_some_and(|(_, e)| divides(pixel_block, e)) {
                    continue;
                }
                for vectorize in [false, true] {
                    if vectorize && !self.simd {
                        continue;
                    }
                    for reduce_unroll in [1, 2, 4] {
                        if (vectorize && reduce_unroll > 1)
                            || !divides(reduce_unroll, self.reduce.1)
                        {
                            continue;
                        }
                        out.push(Knobs {
                            channel_block,
                            pixel_block,
                            vectorize,
                            reduce_unroll,
                        });
                    }
                }
            }
        }
        out
    }

    /// The default for a target: SMLADs on DSP cores; a register block of four accumulators
    /// (two channels by two pixels where the pixels divide, else four channels, else two) so
    /// that each loaded operand serves several multiplies; the reduce loop unrolled by four
    /// where it is not vectorized.
    pub fn default_for(&self, features: &Features) -> Knobs {
        let choices = self.choices();
        let vectorize = self.simd && features.dsp;
        let reduce_unroll = if vectorize || self.reduce.1 % 4 != 0 {
            1
        } else {
            4
        };
        let blocks = [(2, 2), (4, 1), (2, 1), (1, 1)];
        blocks
            .iter()
            .map(|(c, p)| Knobs {
                channel_block: *c,
                pixel_block: *p,
                vectorize,
                reduce_unroll,
            })
            .find(|k| choices.contains(k))
            .unwrap_or(Knobs::NAIVE)
    }

    /// The schedule of a point: splits, the block loops moved inside the reduce loops (just
    /// outside the innermost reduce loop's lanes), unrolled.
    pub fn schedule(&self, k: &Knobs) -> Schedule {
        let mut steps = Vec::new();
        let mut order: Vec<String> = self.names.clone();
        let mut split = |steps: &mut Vec<Primitive>, axis: usize, factor: usize| {
            let name = self.names[axis].clone();
            steps.push(Primitive::Split {
                name: name.clone(),
                factor,
            });
            let at = order.iter().position(|n| *n == name).expect("axis loop");
            order.splice(at..=at, [format!("{name}_o"), format!("{name}_i")]);
            format!("{name}_i")
        };
        let mut block = Vec::new();
        if let Some((axis, _)) = self.pixel.filter(|_| k.pixel_block > 1) {
            block.push(split(&mut steps, axis, k.pixel_block));
        }
        if k.channel_block > 1 {
            block.push(split(&mut steps, self.channel, k.channel_block));
        }
        let lanes = if k.vectorize { 4 } else { k.reduce_unroll };
        let reduce_inner = (lanes > 1).then(|| split(&mut steps, self.reduce.0, lanes));
        // Block loops go just inside the reduce loops, before the lanes.
        order.retain(|n| !block.contains(n) && Some(n) != reduce_inner.as_ref());
        order.extend(block.iter().cloned());
        order.extend(reduce_inner.iter().cloned());
        if !block.is_empty() {
            steps.push(Primitive::Reorder { order });
        }
        for name in &block {
            steps.push(Primitive::Unroll { name: name.clone() });
        }
        match reduce_inner {
            Some(name) if k.vectorize => steps.push(Primitive::Vectorize { name, lanes: 4 }),
            Some(name) => steps.push(Primitive::Unroll { name }),
            None => {}
        }
        Schedule { steps }
    }
}
