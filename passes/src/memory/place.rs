//! Placement: offsets for blocks of bytes with lifetimes, such that two blocks alive at the
//! same step never share a byte. A [`Unit`] is blocks at fixed distances from one another
//! (a tensor and the outputs computed over it in place), placed together.
//!
//! ```
//! use minnow_passes::memory::{place, Block};
//! let blocks = [
//!     Block { size: 100, first: 0, last: 1 },
//!     Block { size: 60, first: 1, last: 2 },
//!     Block { size: 100, first: 2, last: 3 },
//! ];
//! let offsets = place(&blocks, 4);
//! // The first and third never live together: they share offset 0.
//! assert_eq!(offsets, vec![0, 100, 0]);
//! ```

/// A tensor to place: its size and the first and last steps that use it (inclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    /// Bytes.
    pub size: usize,
    /// First step that uses it.
    pub first: usize,
    /// Last step that uses it.
    pub last: usize,
}

impl Block {
    /// Whether two blocks are alive at a common step.
    pub fn overlaps_in_time(&self, other: &Block) -> bool {
        self.first <= other.last && other.first <= self.last
    }
}

/// Blocks placed together, each at its offset from the unit's start (a multiple of the
/// alignment). Blocks of one unit may share bytes: whoever made the unit vouched for it.
pub type Unit = Vec<(usize, Block)>;

/// Offsets for `blocks` (in order), each a multiple of `alignment`, such that blocks alive at
/// the same time never share a byte: the smaller of two first-fit placements, largest block
/// first (which suits most graphs) and first used first (which suits a chain whose large
/// tensors come in turns, as when a first layer reads a padded copy of the input).
pub fn place(blocks: &[Block], alignment: usize) -> Vec<usize> {
    let units: Vec<Unit> = blocks.iter().map(|b| vec![(0, *b)]).collect();
    place_units(&units, alignment)
}

/// Start offsets for `units`, as [`place`] chooses them for blocks: the blocks of different
/// units alive at the same time never share a byte. Besides the two orders, each of the
/// [`DEFERRED`] largest units is also tried placed last, largest first otherwise: a tall unit
/// with a long-lived block high up (a tensor written by bands, with the outputs lagged below
/// it that come after) then sits where the short-lived units placed before it leave room.
pub fn place_units(units: &[Unit], alignment: usize) -> Vec<usize> {
    let span = |u: &Unit| u.iter().map(|(o, b)| o + b.size).max().unwrap_or(0);
    let first = |u: &Unit| u.iter().map(|(_, b)| b.first).min().unwrap_or(0);
    let mut by_size: Vec<usize> = (0..units.len()).collect();
    by_size.sort_by_key(|&i| (std::cmp::Reverse(span(&units[i])), first(&units[i]), i));
    let mut by_first = by_size.clone();
    by_first.sort_by_key(|&i| (first(&units[i]), std::cmp::Reverse(span(&units[i])), i));
    let end = |starts: &[usize]| {
        let ends = starts.iter().zip(units).map(|(s, u)| s + span(u));
        ends.max().unwrap_or(0)
    };
    // The last unit deferred is the largest-first order itself.
    let deferred = (0..DEFERRED.min(units.len().saturating_sub(1))).map(|k| {
        let mut order = by_size.clone();
        let unit = order.remove(k);
        order.push(unit);
        order
    });
    let mut best = place_in_order(units, &by_size, alignment);
    for order in std::iter::once(by_first).chain(deferred) {
        let starts = place_in_order(units, &order, alignment);
        if end(&starts) < end(&best) {
            best = starts;
        }
    }
    best
}

/// Units [`place_units`] tries deferring, largest first.
const DEFERRED: usize = 4;

/// First fit of `units` taken in `order`: each goes at the lowest aligned start at which none
/// of its blocks meets a block placed before it and alive at the same time.
fn place_in_order(units: &[Unit], order: &[usize], alignment: usize) -> Vec<usize> {
    let alignment = alignment.max(1);
    let align = |x: usize| x.div_ceil(alignment) * alignment;
    let mut starts = vec![0; units.len()];
    // Placed blocks: their byte range and lifetime.
    let mut placed: Vec<(usize, usize, Block)> = Vec::new();
    for &i in order {
        let unit = &units[i];
        let clashes = |start: usize| {
            unit.iter().any(|(offset, b)| {
                let (lo, hi) = (start + offset, start + offset + b.size);
                placed
                    .iter()
                    .any(|(s, e, p)| p.overlaps_in_time(b) && lo < *e && *s < hi)
            })
        };
        // Past every placed block nothing clashes.
        let past = align(placed.iter().map(|(_, e, _)| *e).max().unwrap_or(0));
        let mut candidates: Vec<usize> = vec![0, past];
        for (_, e, p) in &placed {
            for (offset, b) in unit {
                if p.overlaps_in_time(b) && align(*e) >= *offset {
                    candidates.push(align(*e) - offset);
                }
            }
        }
        candidates.sort_unstable();
        candidates.dedup();
        let start = candidates
            .into_iter()
            .map(align)
            .find(|s| !clashes(*s))
            .unwrap_or(past);
        for (offset, b) in unit {
            placed.push((start + offset, start + offset + b.size, *b));
        }
        starts[i] = start;
    }
    starts
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn blocks() -> impl Strategy<Value = Vec<Block>> {
        proptest::collection::vec((1usize..5000, 0usize..40, 0usize..10), 0..60).prop_map(|v| {
            v.into_iter()
                .map(|(size, first, len)| Block {
                    size,
                    first,
                    last: first + len,
                })
                .collect()
        })
    }

    /// The deferred order at work: the largest unit placed after a smaller one.
    #[test]
    fn a_tall_unit_placed_last_sits_over_a_short_lived_one() {
        // A long-lived tensor 60 bytes up its unit (a band-written stage output, with a
        // later output lagged below it), and a short-lived tensor alive beside it early on.
        let block = |size, first, last| Block { size, first, last };
        let tall: Unit = vec![(60, block(100, 0, 10)), (0, block(150, 10, 11))];
        let short: Unit = vec![(0, block(80, 0, 5))];
        let starts = place_units(&[tall, short], 4);
        // Either placed first at 0 pushes the short one above it (240 bytes); the short one
        // first at 0 and the tall one 20 bytes up take 180.
        assert_eq!(starts, vec![20, 0]);
    }

    /// A chain whose large tensors come in turns (vww with a padded copy of its input: the
    /// copy, the first layer's output, the second's, then a large third): largest-first
    /// stacks the two small ones and needs 4/3 of the peak; first-used-first fits the peak.
    #[test]
    fn a_chain_of_alternating_sizes_fits_its_peak() {
        let block = |size, first| Block {
            size,
            first,
            last: first + 1,
        };
        let (big, small) = (36_864, 18_432);
        let blocks = [
            block(big, 0),
            block(small, 1),
            block(small, 2),
            block(big, 3),
        ];
        let offsets = place(&blocks, 16);
        let end = blocks.iter().zip(&offsets).map(|(b, o)| o + b.size).max();
        assert_eq!(end, Some(big + small));
        let units: Vec<Unit> = blocks.iter().map(|b| vec![(0, *b)]).collect();
        let by_size = place_in_order(&units, &[0, 3, 1, 2], 16);
        let end = blocks.iter().zip(&by_size).map(|(b, o)| o + b.size).max();
        assert_eq!(end, Some(big + 2 * small));
    }

    /// A chain computed in place, each output 40 bytes below its input: one unit whose
    /// blocks step down, placed clear of a block alive beside the whole chain.
    #[test]
    fn a_unit_keeps_its_blocks_distances_and_clears_other_blocks() {
        let link = |offset, first| {
            (
                offset,
                Block {
                    size: 100,
                    first,
                    last: first + 1,
                },
            )
        };
        let chain: Unit = vec![link(80, 0), link(40, 1), link(0, 2)];
        let beside: Unit = vec![(
            0,
            Block {
                size: 30,
                first: 0,
                last: 3,
            },
        )];
        let starts = place_units(&[chain, beside], 4);
        assert_eq!(starts, vec![0, 180]);
    }

    proptest! {
        /// No two blocks alive at the same time share a byte, and offsets are aligned.
        #[test]
        fn live_blocks_never_overlap(blocks in blocks(), align in prop::sample::select(vec![1usize, 4, 16])) {
            let offsets = place(&blocks, align);
            for (i, a) in blocks.iter().enumerate() {
                prop_assert_eq!(offsets[i] % align, 0);
                for (j, b) in blocks.iter().enumerate().skip(i + 1) {
                    if a.overlaps_in_time(b) {
                        let disjoint = offsets[i] + a.size <= offsets[j] || offsets[j] + b.size <= offsets[i];
                        prop_assert!(disjoint, "{:?}@{} and {:?}@{}", a, offsets[i], b, offsets[j]);
                    }
                }
            }
        }

        /// The arena is never larger than giving every block its own bytes, and never smaller
        /// than the bytes alive at the busiest step.
        #[test]
        fn arena_is_between_the_live_peak_and_the_sum(blocks in blocks()) {
            let offsets = place(&blocks, 1);
            let end = blocks.iter().zip(&offsets).map(|(b, o)| o + b.size).max().unwrap_or(0);
            let sum: usize = blocks.iter().map(|b| b.size).sum();
            let peak = (0..50).map(|t| blocks.iter().filter(|b| b.first <= t && t <= b.last).map(|b| b.size).sum::<usize>()).max().unwrap_or(0);
            prop_assert!(end <= sum);
            prop_assert!(end >= peak);
        }
    }
}
