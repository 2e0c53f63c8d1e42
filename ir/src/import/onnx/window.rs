//! The spatial attributes shared by Conv and the pooling ops (`kernel_shape`, `strides`,
//! `dilations`, `pads`, `auto_pad`, `ceil_mode`), resolved to minnow's [`Window`], and the
//! NCHW↔NHWC moves around the NHWC kernels.

use super::attrs::Attrs;
use super::cx::ImportCx;
use crate::graph::TensorId;
use crate::op::{Padding, Window};

/// A resolved 2-D window: kernel size, strides, dilations and explicit padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spatial {
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Strides.
    pub strides: [usize; 2],
    /// Dilations.
    pub dilations: [usize; 2],
    /// Padding before (top, left).
    pub begin: [usize; 2],
    /// Padding after (bottom, right).
    pub end: [usize; 2],
}

impl Spatial {
    /// Reads the attributes for an input of spatial size `input` (`[h, w]`; a 1-D op passes
    /// `[1, w]` with `one_d`). `kernel` is the weights' spatial size for Conv, `None` for
    /// pooling (which takes `kernel_shape`). `ceil` is `ceil_mode`.
    pub fn read(
        attrs: &Attrs,
        input: [usize; 2],
        kernel: Option<[usize; 2]>,
        one_d: bool,
        ceil: bool,
    ) -> Result<Spatial, String> {
        let rank = if one_d { 1 } else { 2 };
        let pair = |name: &str, default: usize| -> Result<[usize; 2], String> {
            match attrs.ints(name)? {
                None => Ok([default; 2]),
                Some(v) if v.len() == rank && v.iter().all(|x| *x >= 1) => Ok(if one_d {
                    [1, v[0] as usize]
                } else {
                    [v[0] as usize, v[1] as usize]
                }),
                Some(v) => Err(format!(
                    "{name} {v:?} must have {rank} positive values (only 1-D and 2-D windows \
                     are supported)"
                )),
            }
        };
        let kernel = match (attrs.ints("kernel_shape")?, kernel) {
            (None, Some(k)) => k,
            (None, None) => return Err("kernel_shape is required".into()),
            (Some(_), k) => {
                let read = pair("kernel_shape", 1)?;
                if k.is_some_and(|k| k != read) {
                    return Err(format!(
                        "kernel_shape {read:?} disagrees with the weights {k:?}"
                    ));
                }
                read
            }
        };
        let strides = pair("strides", 1)?;
        let dilations = pair("dilations", 1)?;
        let mut s = Spatial {
            kernel,
            strides,
            dilations,
            begin: [0; 2],
            end: [0; 2],
        };
        s.read_padding(attrs, input, one_d)?;
        if ceil {
            s.extend_for_ceil(input)?;
        }
        Ok(s)
    }

    /// `auto_pad` (SAME_UPPER puts the odd padding after, SAME_LOWER before) or `pads`.
    // `d` indexes five parallel per-axis arrays.
    #[allow(clippy::needless_range_loop)]
    fn read_padding(
        &mut self,
        attrs: &Attrs,
        input: [usize; 2],
        one_d: bool,
    ) -> Result<(), String> {
        let rank = if one_d { 1 } else { 2 };
        let auto_pad = attrs.string("auto_pad", "NOTSET")?;
        match auto_pad.as_str() {
            "NOTSET" => {}
            "VALID" => return Ok(()),
            "SAME_UPPER" | "SAME_LOWER" => {
                for d in 0..2 {
                    let effective = (self.kernel[d] - 1) * self.dilations[d] + 1;
                    let out = input[d].div_ceil(self.strides[d]);
                    let total = ((out - 1) * self.strides[d] + effective).saturating_sub(input[d]);
                    let small = total / 2;
                    (self.begin[d], self.end[d]) = if auto_pad == "SAME_UPPER" {
                        (small, total - small)
                    } else {
                        (total - small, small)
                    };
                }
                return Ok(());
            }
            other => return Err(format!("auto_pad {other:?} is not an ONNX padding mode")),
        }
        if let Some(p) = attrs.ints("pads")? {
            if p.len() != 2 * rank || p.iter().any(|x| *x < 0) {
                return Err(format!(
                    "pads {p:?} must be {} non-negative values",
                    2 * rank
                ));
            }
            let p: Vec<usize> = p.iter().map(|x| *x as usize).collect();
            (self.begin, self.end) = if one_d {
                ([0, p[0]], [0, p[1]])
            } else {
                ([p[0], p[1]], [p[2], p[3]])
            };
        }
        Ok(())
    }

    /// Output size along `d` rounding down.
    fn out_floor(&self, input: [usize; 2], d: usize) -> Option<usize> {
        let effective = (self.kernel[d] - 1) * self.dilations[d] + 1;
        let padded = input[d] + self.begin[d] + self.end[d];
        padded
            .checked_sub(effective)
            .map(|r| r / self.strides[d] + 1)
    }

    /// `ceil_mode`: one more output where the last window would hang over the end, unless it
    /// would start in the end padding (ONNX drops that one), made by extra end padding.
    // `d` indexes five parallel per-axis arrays.
    #[allow(clippy::needless_range_loop)]
    fn extend_for_ceil(&mut self, input: [usize; 2]) -> Result<(), String> {
        for d in 0..2 {
            let effective = (self.kernel[d] - 1) * self.dilations[d] + 1;
            let padded = input[d] + self.begin[d] + self.end[d];
            let rest = padded
                .checked_sub(effective)
                .ok_or("the window is larger than the padded input")?;
            let floor = rest / self.strides[d] + 1;
            let mut out = rest.div_ceil(self.strides[d]) + 1;
            if out > floor && (out - 1) * self.strides[d] >= input[d] + self.begin[d] {
                out -= 1;
            }
            let needed = (out - 1) * self.strides[d] + effective;
            self.end[d] += needed.saturating_sub(padded);
        }
        Ok(())
    }

    /// The output's spatial size.
    pub fn output(&self, input: [usize; 2]) -> Result<[usize; 2], String> {
        match (self.out_floor(input, 0), self.out_floor(input, 1)) {
            (Some(h), Some(w)) => Ok([h, w]),
            _ => Err(format!(
                "a {:?} window does not fit the input {input:?} with its padding",
                self.kernel
            )),
        }
    }

    /// The window as minnow's [`Window`] (explicit padding).
    pub fn window(&self) -> Window {
        Window {
            stride_h: self.strides[0],
            stride_w: self.strides[1],
            dilation_h: self.dilations[0],
            dilation_w: self.dilations[1],
            padding: Padding::Explicit {
                top: self.begin[0],
                bottom: self.end[0],
                left: self.begin[1],
                right: self.end[1],
            },
        }
    }
}

/// An NCHW (or 1-D NCL) value as the NHWC tensor a kernel reads, with whether it was 1-D.
pub fn to_nhwc(cx: &mut ImportCx, x: TensorId, name: &str) -> Result<(TensorId, bool), String> {
    let shape = cx.ty(x).shape.clone();
    let (x, one_d) = match shape.len() {
        4 => (x, false),
        3 => (
            cx.reshape(
                &format!("{name}:as_2d"),
                x,
                vec![shape[0], shape[1], 1, shape[2]],
            )?,
            true,
        ),
        r => {
            return Err(format!(
                "the input has rank {r}: only 1-D (NCL) and 2-D (NCHW) spatial ops are supported"
            ))
        }
    };
    Ok((
        cx.transpose(&format!("{name}:nhwc"), x, vec![0, 2, 3, 1])?,
        one_d,
    ))
}

/// An NHWC kernel result back as the NCHW (or NCL when `one_d`) value `name`.
pub fn from_nhwc(
    cx: &mut ImportCx,
    y: TensorId,
    name: &str,
    one_d: bool,
) -> Result<TensorId, String> {
    if one_d {
        let t = cx.transpose(&format!("{name}:nchw"), y, vec![0, 3, 1, 2])?;
        let s = cx.ty(t).shape.clone();
        return cx.reshape(name, t, vec![s[0], s[1], s[3]]);
    }
    cx.transpose(name, y, vec![0, 3, 1, 2])
}
