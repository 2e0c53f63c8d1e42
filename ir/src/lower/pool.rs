//! AVERAGE_POOL_2D and MAX_POOL_2D over NHWC: the window is clipped to the image, and the
//! result is clamped to the fused activation's range. Integer averages round half away from
//! zero on the raw quantized values; float averages divide the sum by the cell count.

use super::{clamp_to, int_range, Kernel};
use crate::loops::{BinOp, BufId, Expr, FuncBuilder, ScalarType};
use crate::qparams;
use crate::types::DType;

/// The arithmetic of one pooling kernel.
#[derive(Clone, Copy)]
struct Arithmetic {
    average: bool,
    /// `i32` for integer tensors, `f32` for float ones.
    acc: ScalarType,
    /// The maximum's starting value (the type's lowest).
    lowest: f64,
    /// Clamp bounds (activation and type range).
    range: (f64, f64),
    out: ScalarType,
}

impl Arithmetic {
    fn constant(&self, v: f64) -> Expr {
        match self.acc {
            ScalarType::F32 => Expr::f32(v as f32),
            _ => Expr::i32(v as i32),
        }
    }

    fn init(&self) -> Expr {
        self.constant(if self.average { 0.0 } else { self.lowest })
    }

    fn combine(&self, acc: Expr, v: Expr) -> Expr {
        let v = if self.acc == ScalarType::F32 {
            v
        } else {
            v.cast(ScalarType::I32)
        };
        if self.average {
            acc + v
        } else {
            acc.max(v)
        }
    }

    /// The output value from the accumulator and the number of cells in the window.
    fn finish(&self, acc: Expr, count: Expr) -> Expr {
        let value = match (self.average, self.acc) {
            (false, _) => acc,
            (true, ScalarType::F32) => acc / count.cast(ScalarType::F32),
            (true, _) => round_half_away_div(acc, count),
        };
        if self.acc == ScalarType::F32 {
            value.clamp(self.constant(self.range.0), self.constant(self.range.1))
        } else {
            clamp_to(value, self.range.0 as i64, self.range.1 as i64, self.out)
        }
    }
}

/// Lowers a pooling op.
pub(super) fn lower(k: &mut Kernel) -> Result<(), String> {
    let Some(p) = k.node.op.pooling() else {
        unreachable!("pool::lower called for {}", k.node.op.name())
    };
    let (input, output) = (k.operand(0).clone(), k.output_type().clone());
    let s = &input.shape;
    let misfit = || "the window does not fit".to_string();
    let h = p.window.resolve_h(s[1], p.filter_h).ok_or_else(misfit)?;
    let w = p.window.resolve_w(s[2], p.filter_w).ok_or_else(misfit)?;
    let arithmetic = if input.dtype == DType::F32 {
        let (lo, hi) = qparams::activation_range_f32(p.activation);
        Arithmetic {
            average: p.average,
            acc: ScalarType::F32,
            lowest: f32::MIN as f64,
            range: (lo as f64, hi as f64),
            out: ScalarType::F32,
        }
    } else {
        let (lo, hi) = qparams::activation_range(p.activation, &output)?;
        let lowest = int_range(input.dtype)?.0 as f64;
        Arithmetic {
            average: p.average,
            acc: ScalarType::I32,
            lowest,
            range: (lo as f64, hi as f64),
            out: ScalarType::of(output.dtype),
        }
    };
    let x = k.input("input", 0);
    let out = k.output("output");
    let geometry = [
        s[0],
        s[1],
        s[2],
        s[3],
        h.out,
        w.out,
        p.filter_h,
        p.filter_w,
        p.window.stride_h,
        p.window.stride_w,
        h.pad_before,
        w.pad_before,
    ];
    nest(&mut k.f, geometry, arithmetic, x, out);
    Ok(())
}

/// The loop nest: output positions, channels, then the window cells inside the image.
fn nest(f: &mut FuncBuilder, geometry: [usize; 12], a: Arithmetic, x: BufId, out: BufId) {
    let [batches, in_h, in_w, depth, out_h, out_w, fh, fw, sh, sw, ph, pw] = geometry;
    let i32 = ScalarType::I32;
    f.for_loop("b", batches, |f, b| {
        f.for_loop("oy", out_h, |f, oy| {
            let y0 = f.let_("y0", i32, oy.clone() * Expr::idx(sh) - Expr::idx(ph));
            // The window rows inside the image: [y_start, y_end).
            let y_start = f.let_("y_start", i32, Expr::i32(0).max(-y0.clone()));
            let y_end = f.let_(
                "y_end",
                i32,
                Expr::idx(fh).min(Expr::idx(in_h) - y0.clone()),
            );
            f.for_loop("ox", out_w, |f, ox| {
                let x0 = f.let_("x0", i32, ox.clone() * Expr::idx(sw) - Expr::idx(pw));
                let x_start = f.let_("x_start", i32, Expr::i32(0).max(-x0.clone()));
                let x_end = f.let_(
                    "x_end",
                    i32,
                    Expr::idx(fw).min(Expr::idx(in_w) - x0.clone()),
                );
                let pos = (b.clone() * Expr::idx(out_h) + oy.clone()) * Expr::idx(out_w) + ox;
                let pos = f.let_("pos", i32, pos * Expr::idx(depth));
                let row0 = f.let_(
                    "row0",
                    i32,
                    (b.clone() * Expr::idx(in_h) + y0.clone()) * Expr::idx(in_w) + x0,
                );
                f.for_loop("c", depth, |f, c| {
                    let acc = f.local("acc", a.acc, 1);
                    f.store(acc, Expr::i32(0), a.init());
                    f.for_loop("fy", fh, |f, fy| {
                        let inside_y = y_start
                            .clone()
                            .le(fy.clone())
                            .and(fy.clone().lt(y_end.clone()));
                        f.if_then(inside_y, |f| {
                            f.for_loop("fx", fw, |f, fx| {
                                let inside_x = x_start
                                    .clone()
                                    .le(fx.clone())
                                    .and(fx.clone().lt(x_end.clone()));
                                f.if_then(inside_x, |f| {
                                    let cell = row0.clone() + fy.clone() * Expr::idx(in_w) + fx;
                                    let v = Expr::load(x, cell * Expr::idx(depth) + c.clone());
                                    f.store(
                                        acc,
                                        Expr::i32(0),
                                        a.combine(Expr::load(acc, Expr::i32(0)), v),
                                    );
                                });
                            });
                        });
                    });
                    let cells =
                        (y_end.clone() - y_start.clone()) * (x_end.clone() - x_start.clone());
                    let count = f.let_("count", i32, Expr::i32(1).max(cells));
                    f.store(
                        out,
                        pos.clone() + c,
                        a.finish(Expr::load(acc, Expr::i32(0)), count),
                    );
                });
            });
        });
    });
}

/// `sum / count` rounded half away from zero: `(sum ± count/2) / count`.
fn round_half_away_div(sum: Expr, count: Expr) -> Expr {
    let half = count.clone() / Expr::i32(2);
    let positive = Expr::i32(0).lt(sum.clone());
    let nudged = Expr::select(positive, sum.clone() + half.clone(), sum - half);
    Expr::binary(BinOp::Div, nudged, count)
}
