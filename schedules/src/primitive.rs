//! [`Primitive`]s and the [`Schedule`] trace that applies them to a loop nest.

use minnow_ir::loops::reduction::{Loop, LoopNest, Reduction};
use minnow_ir::loops::ForKind;
use serde::{Deserialize, Serialize};
use std::fmt;

/// One loop transformation. Loops are named: a reduction's loops start with its axis names,
/// and a split of `x` makes `x_o` (outer) and `x_i` (inner).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "primitive", rename_all = "snake_case")]
pub enum Primitive {
    /// Splits loop `name` into `name_o` (extent / factor) and `name_i` (factor), in place.
    Split {
        /// The loop.
        name: String,
        /// Iterations of the inner loop; must divide the extent.
        factor: usize,
    },
    /// Puts the named loops, in this order, into the positions they occupy (the others stay).
    Reorder {
        /// The loops to permute.
        order: Vec<String>,
    },
    /// Unrolls loop `name` completely.
    Unroll {
        /// The loop.
        name: String,
    },
    /// Marks loop `name` as `lanes` SIMD lanes (it must have that extent).
    Vectorize {
        /// The loop.
        name: String,
        /// Lane count.
        lanes: usize,
    },
    /// Stores the (constant) weights widened to the 16-bit pairs the SIMD lanes multiply,
    /// so the inner loop loads them without unpacking; twice the weights' flash. Needs a
    /// 4-lane SIMD loop innermost.
    WidenWeights,
    /// Runs serial loops over whole padded axes in three parts, so that their interior tests
    /// no padding guard (`LoopNest::partition_borders`); more code, fewer instructions.
    PartitionBorders,
    /// Runs the 2-lane reduce loop innermost as Winograd's inner product, one high multiply
    /// per pair, for cores without SIMD (`LoopNest::winograd`). Needs [`Primitive::WidenWeights`]
    /// (the weights are stored crossed); the padding goes into its scratch block.
    WinogradPairs,
}

/// A trace of primitives, applied in order to a reduction's default loop nest.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// The primitives.
    pub steps: Vec<Primitive>,
}

/// Why a schedule does not apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleError {
    /// The primitive's position in the trace.
    pub step: usize,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "schedule step {}: {}", self.step, self.reason)
    }
}

impl std::error::Error for ScheduleError {}

impl Schedule {
    /// The loop nest of `r` after every step; fails on an unknown loop, a split that does not
    /// divide, or a nest that would change the result (see `Reduction::check`).
    pub fn apply(&self, r: &Reduction) -> Result<LoopNest, ScheduleError> {
        let mut nest = r.default_nest();
        for (step, p) in self.steps.iter().enumerate() {
            let fail = |reason: String| ScheduleError { step, reason };
            p.apply(&mut nest).map_err(fail)?;
        }
        r.check(&nest).map_err(|reason| ScheduleError {
            step: self.steps.len(),
            reason,
        })?;
        Ok(nest)
    }
}

impl Schedule {
    /// The trace that makes `nest` from `r`'s default nest: each axis split into its loops of
    /// `nest` (outermost part first), the loops put in `nest`'s order, then each loop's kind.
    /// Loops are matched by axis and stride, so `nest`'s names do not matter; the trace names
    /// them as [`Primitive::Split`] does.
    pub fn of_nest(r: &Reduction, nest: &LoopNest) -> Schedule {
        let mut steps = Vec::new();
        for (axis, a) in r.axes.iter().enumerate() {
            let mut parts: Vec<&Loop> = nest.loops.iter().filter(|l| l.axis == axis).collect();
            parts.sort_by_key(|l| std::cmp::Reverse(l.stride));
            let mut name = a.name.clone();
            for k in 1..parts.len() {
                let factor = parts[k..].iter().map(|l| l.extent).product();
                steps.push(Primitive::Split {
                    name: name.clone(),
                    factor,
                });
                name.push_str("_i");
            }
        }
        let mut replayed = r.default_nest();
        for p in &steps {
            p.apply(&mut replayed)
                .expect("splits of the axes' own extents");
        }
        let name_of = |l: &Loop| {
            let same = |m: &&Loop| m.axis == l.axis && m.stride == l.stride;
            replayed.loops.iter().find(same).map(|m| m.name.clone())
        };
        let order: Vec<String> = nest.loops.iter().filter_map(name_of).collect();
        steps.push(Primitive::Reorder {
            order: order.clone(),
        });
        for (l, name) in nest.loops.iter().zip(order) {
            match l.kind {
                ForKind::Serial => {}
                ForKind::Unrolled => steps.push(Primitive::Unroll { name }),
                ForKind::Vectorized { lanes } => steps.push(Primitive::Vectorize {
                    name,
                    lanes: lanes as usize,
                }),
            }
        }
        if nest.wide_weights {
            steps.push(Primitive::WidenWeights);
        }
        if nest.partition_borders {
            steps.push(Primitive::PartitionBorders);
        }
        if nest.winograd {
            steps.push(Primitive::WinogradPairs);
        }
        Schedule { steps }
    }
}

impl Primitive {
    fn apply(&self, nest: &mut LoopNest) -> Result<(), String> {
        let find = |nest: &LoopNest, name: &str| {
            nest.loops
                .iter()
                .position(|l| l.name == name)
                .ok_or_else(|| format!("there is no loop {name}"))
        };
        match self {
            Primitive::Split { name, factor } => {
                let at = find(nest, name)?;
                let l = nest.loops[at].clone();
                if *factor == 0 || l.extent % factor != 0 {
                    return Err(format!(
                        "{factor} does not divide loop {name} ({})",
                        l.extent
                    ));
                }
                let inner = Loop {
                    name: format!("{name}_i"),
                    extent: *factor,
                    ..l.clone()
                };
                let outer = Loop {
                    name: format!("{name}_o"),
                    extent: l.extent / factor,
                    stride: l.stride * factor,
                    ..l
                };
                nest.loops.splice(at..=at, [outer, inner]);
            }
            Primitive::Reorder { order } => {
                let mut positions = order
                    .iter()
                    .map(|n| find(nest, n))
                    .collect::<Result<Vec<_>, _>>()?;
                let moved: Vec<Loop> = positions.iter().map(|p| nest.loops[*p].clone()).collect();
                positions.sort_unstable();
                if positions.windows(2).any(|w| w[0] == w[1]) {
                    return Err("a loop is named twice".into());
                }
                for (p, l) in positions.into_iter().zip(moved) {
                    nest.loops[p] = l;
                }
            }
            Primitive::Unroll { name } => {
                let at = find(nest, name)?;
                nest.loops[at].kind = ForKind::Unrolled;
            }
            Primitive::Vectorize { name, lanes } => {
                let at = find(nest, name)?;
                if nest.loops[at].extent != *lanes {
                    return Err(format!("loop {name} does not have {lanes} iterations"));
                }
                nest.loops[at].kind = ForKind::Vectorized {
                    lanes: *lanes as u32,
                };
            }
            Primitive::WidenWeights => nest.wide_weights = true,
            Primitive::PartitionBorders => nest.partition_borders = true,
            Primitive::WinogradPairs => nest.winograd = true,
        }
        Ok(())
    }
}
