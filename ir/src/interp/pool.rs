//! AVERAGE_POOL_2D and MAX_POOL_2D over NHWC.
//!
//! Integer pooling works on the raw quantized values (input and output share their
//! quantization); the average rounds half away from zero, as TFLite's integer kernel does. The
//! window is clipped to the image, so padding never counts toward the average.

use super::{operand_type, output_type, Buffer, Kernel};
use crate::graph::{Graph, Node};
use crate::op::{Activation, Window};
use crate::qparams;
use crate::types::DType;

struct PoolKernel {
    average: bool,
    dims: [usize; 4],
    out_h: usize,
    out_w: usize,
    filter: (usize, usize),
    window: Window,
    pad: (usize, usize),
    int_range: (i64, i64),
    float_range: (f32, f32),
    dtype: DType,
}

/// Prepares a pooling kernel.
pub(super) fn prepare(g: &Graph, node: &Node) -> Result<Box<dyn Kernel>, String> {
    let Some(p) = node.op.pooling() else {
        unreachable!("pool::prepare called for {}", node.op.name())
    };
    let (average, filter_h, filter_w, window, activation) =
        (p.average, p.filter_h, p.filter_w, p.window, p.activation);
    let (input, output) = (operand_type(g, node, 0), output_type(g, node));
    let s = &input.shape;
    let h = window
        .resolve_h(s[1], filter_h)
        .ok_or("the window does not fit")?;
    let w = window
        .resolve_w(s[2], filter_w)
        .ok_or("the window does not fit")?;
    let int_range = match input.dtype {
        DType::F32 => (0, 0),
        DType::I8 | DType::U8 | DType::I16 => {
            if input.quant != output.quant {
                return Err("input and output must share their quantization".into());
            }
            let (lo, hi) = qparams::activation_range(activation, output)?;
            (lo as i64, hi as i64)
        }
        other => return Err(format!("{other} pooling is not supported")),
    };
    Ok(Box::new(PoolKernel {
        average,
        dims: [s[0], s[1], s[2], s[3]],
        out_h: h.out,
        out_w: w.out,
        filter: (filter_h, filter_w),
        window,
        pad: (h.pad_before, w.pad_before),
        int_range,
        float_range: qparams::activation_range_f32(if input.dtype == DType::F32 {
            activation
        } else {
            Activation::None
        }),
        dtype: input.dtype,
    }))
}

impl PoolKernel {
    /// Calls `f(output index, window cells)` for every output element, with the input indices of
    /// the window cells inside the image.
    fn for_each_window(&self, mut f: impl FnMut(usize, &[usize])) {
        let [batches, in_h, in_w, depth] = self.dims;
        let mut cells = Vec::with_capacity(self.filter.0 * self.filter.1);
        let mut out = 0;
        for b in 0..batches {
            for oy in 0..self.out_h {
                for ox in 0..self.out_w {
                    let y0 = (oy * self.window.stride_h) as isize - self.pad.0 as isize;
                    let x0 = (ox * self.window.stride_w) as isize - self.pad.1 as isize;
                    for c in 0..depth {
                        cells.clear();
                        for fy in 0..self.filter.0 as isize {
                            for fx in 0..self.filter.1 as isize {
                                let (y, x) = (y0 + fy, x0 + fx);
                                if y >= 0 && x >= 0 && (y as usize) < in_h && (x as usize) < in_w {
                                    cells.push(
                                        ((b * in_h + y as usize) * in_w + x as usize) * depth + c,
                                    );
                                }
                            }
                        }
                        f(out, &cells);
                        out += 1;
                    }
                }
            }
        }
    }
}

impl Kernel for PoolKernel {
    fn run(&self, inputs: &[Option<&Buffer>], output: &mut Buffer, _state: Option<&mut Buffer>) {
        let input = inputs[0].expect("verified");
        if let Some(x) = input.as_f32() {
            let mut out = vec![0f32; output.len()];
            let (lo, hi) = self.float_range;
            self.for_each_window(|o, cells| {
                let v = if self.average {
                    cells.iter().fold(0.0f32, |s, i| s + x[*i]) / cells.len() as f32
                } else {
                    cells.iter().map(|i| x[*i]).fold(f32::MIN, f32::max)
                };
                out[o] = v.clamp(lo, hi);
            });
            *output = Buffer::F32(out);
            return;
        }
        let x = input.to_i64().expect("integer input");
        let mut out = vec![0i64; output.len()];
        let (lo, hi) = self.int_range;
        self.for_each_window(|o, cells| {
            let v = if self.average {
                let (sum, n) = (
                    cells.iter().map(|i| x[*i]).sum::<i64>(),
                    cells.len().max(1) as i64,
                );
                if sum > 0 {
                    (sum + n / 2) / n
                } else {
                    (sum - n / 2) / n
                }
            } else {
                cells.iter().map(|i| x[*i]).max().unwrap_or(lo)
            };
            out[o] = v.clamp(lo, hi);
        });
        *output = Buffer::from_i64(self.dtype, out.into_iter());
    }
}
