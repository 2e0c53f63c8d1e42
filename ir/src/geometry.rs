//! The geometry of a convolution window over NHWC tensors, and the sizes of an SVDF, shared by
//! the interpreter and the lowering so both walk the same elements.

use crate::op::Window;

/// Shapes, strides and padding of a convolution over NHWC.
#[derive(Clone, Debug)]
pub struct ConvGeometry {
    /// Batch size.
    pub batches: usize,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Input channels.
    pub in_c: usize,
    /// Output height.
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
    /// Output channels.
    pub out_c: usize,
    /// Filter height.
    pub k_h: usize,
    /// Filter width.
    pub k_w: usize,
    /// Input channels each filter sees (the filter's innermost dimension).
    pub k_c: usize,
    /// Strides, dilation and padding mode.
    pub window: Window,
    /// Rows of padding before the first input row.
    pub pad_h: usize,
    /// Columns of padding before the first input column.
    pub pad_w: usize,
}

impl ConvGeometry {
    /// The geometry of a convolution of `input` (NHWC) by a `filter_hw` window seeing `k_c`
    /// input channels, producing `output` (NHWC).
    pub fn new(
        input: &[usize],
        filter_hw: (usize, usize),
        k_c: usize,
        output: &[usize],
        window: Window,
    ) -> Result<Self, String> {
        let h = window
            .resolve_h(input[1], filter_hw.0)
            .ok_or("the window does not fit the input")?;
        let w = window
            .resolve_w(input[2], filter_hw.1)
            .ok_or("the window does not fit the input")?;
        Ok(ConvGeometry {
            batches: input[0],
            in_h: input[1],
            in_w: input[2],
            in_c: input[3],
            out_h: output[1],
            out_w: output[2],
            out_c: output[3],
            k_h: filter_hw.0,
            k_w: filter_hw.1,
            k_c,
            window,
            pad_h: h.pad_before,
            pad_w: w.pad_before,
        })
    }

    /// Input row and column of filter tap (`ky`, `kx`) for output (`oy`, `ox`), or `None` when
    /// the tap falls in the padding.
    #[inline]
    pub fn tap(&self, oy: usize, ox: usize, ky: usize, kx: usize) -> Option<(usize, usize)> {
        let iy =
            (oy * self.window.stride_h + ky * self.window.dilation_h).checked_sub(self.pad_h)?;
        let ix =
            (ox * self.window.stride_w + kx * self.window.dilation_w).checked_sub(self.pad_w)?;
        (iy < self.in_h && ix < self.in_w).then_some((iy, ix))
    }
}

/// The sizes of an SVDF: `batches x input` inputs, `filters = units * rank` filters of
/// `memory` time steps each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SvdfGeometry {
    /// Batch size.
    pub batches: usize,
    /// Input features per batch.
    pub input: usize,
    /// Feature filters (`units * rank`).
    pub filters: usize,
    /// Time steps each filter remembers.
    pub memory: usize,
    /// Filters summed per output unit.
    pub rank: usize,
}

impl SvdfGeometry {
    /// From the input `[batches, input]`, feature weights `[filters, input]` and time weights
    /// `[filters, memory]` shapes (as verified by shape inference).
    pub fn new(input: &[usize], feature: &[usize], time: &[usize], rank: usize) -> Self {
        SvdfGeometry {
            batches: input[0],
            input: input[1],
            filters: feature[0],
            memory: time[1],
            rank: rank.max(1),
        }
    }

    /// Output units per batch.
    pub fn units(&self) -> usize {
        self.filters / self.rank
    }
}
