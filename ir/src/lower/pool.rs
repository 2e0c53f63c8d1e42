//! AVERAGE_POOL_2D and MAX_POOL_2D on quantized NHWC tensors: the window is clipped to the
//! image, the average rounds half away from zero, and the result is clamped to the fused
//! activation's range.

use super::{clamp_to, int_range, integer_only, Kernel};
use crate::loops::{BinOp, Expr, ScalarType};
use crate::qparams;

/// Lowers a pooling op.
pub(super) fn lower(k: &mut Kernel) -> Result<(), String> {
    let Some(p) = k.node.op.pooling() else {
        unreachable!("pool::lower called for {}", k.node.op.name())
    };
    let (average, fh, fw, window, activation) =
        (p.average, p.filter_h, p.filter_w, p.window, p.activation);
    let (input, output) = (k.operand(0).clone(), k.output_type().clone());
    integer_only(&input)?;
    let [batches, in_h, in_w, depth] = [
        input.shape[0],
        input.shape[1],
        input.shape[2],
        input.shape[3],
    ];
    let misfit = || "the window does not fit".to_string();
    let h = window.resolve_h(in_h, fh).ok_or_else(misfit)?;
    let w = window.resolve_w(in_w, fw).ok_or_else(misfit)?;
    let (lo, hi) = qparams::activation_range(activation, &output)?;
    let (type_min, _) = int_range(input.dtype)?;
    let elem = ScalarType::of(output.dtype);
    let x = k.input("input", 0);
    let out = k.output("output");
    let (sh, sw) = (window.stride_h, window.stride_w);
    let f = &mut k.f;
    f.for_loop("b", batches, |f, b| {
        f.for_loop("oy", h.out, |f, oy| {
            let y0 = f.let_(
                "y0",
                ScalarType::I32,
                oy.clone() * Expr::idx(sh) - Expr::idx(h.pad_before),
            );
            // The window rows inside the image: [y_start, y_end).
            let y_start = f.let_("y_start", ScalarType::I32, Expr::i32(0).max(-y0.clone()));
            let y_end = f.let_(
                "y_end",
                ScalarType::I32,
                Expr::idx(fh).min(Expr::idx(in_h) - y0.clone()),
            );
            f.for_loop("ox", w.out, |f, ox| {
                let x0 = f.let_(
                    "x0",
                    ScalarType::I32,
                    ox.clone() * Expr::idx(sw) - Expr::idx(w.pad_before),
                );
                let x_start = f.let_("x_start", ScalarType::I32, Expr::i32(0).max(-x0.clone()));
                let x_end = f.let_(
                    "x_end",
                    ScalarType::I32,
                    Expr::idx(fw).min(Expr::idx(in_w) - x0.clone()),
                );
                let pos = f.let_(
                    "pos",
                    ScalarType::I32,
                    ((b.clone() * Expr::idx(h.out) + oy.clone()) * Expr::idx(w.out) + ox)
                        * Expr::idx(depth),
                );
                f.for_loop("c", depth, |f, c| {
                    let acc = f.local("acc", ScalarType::I32, 1);
                    let init = if average { 0 } else { type_min as i32 };
                    f.store(acc, Expr::i32(0), Expr::i32(init));
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
                                    let row =
                                        (b.clone() * Expr::idx(in_h) + y0.clone() + fy.clone())
                                            * Expr::idx(in_w);
                                    let index =
                                        (row + x0.clone() + fx) * Expr::idx(depth) + c.clone();
                                    let v = Expr::load(x, index).cast(ScalarType::I32);
                                    let a = Expr::load(acc, Expr::i32(0));
                                    f.store(
                                        acc,
                                        Expr::i32(0),
                                        if average { a + v } else { a.max(v) },
                                    );
                                });
                            });
                        });
                    });
                    let value = if average {
                        let count = f.let_(
                            "count",
                            ScalarType::I32,
                            Expr::i32(1).max(
                                (y_end.clone() - y_start.clone())
                                    * (x_end.clone() - x_start.clone()),
                            ),
                        );
                        round_half_away_div(Expr::load(acc, Expr::i32(0)), count)
                    } else {
                        Expr::load(acc, Expr::i32(0))
                    };
                    f.store(
                        out,
                        pos.clone() + c,
                        clamp_to(value, lo as i64, hi as i64, elem),
                    );
                });
            });
        });
    });
    Ok(())
}

/// `sum / count` rounded half away from zero: `(sum ± count/2) / count`.
fn round_half_away_div(sum: Expr, count: Expr) -> Expr {
    let half = count.clone() / Expr::i32(2);
    let positive = Expr::i32(0).lt(sum.clone());
    let nudged = Expr::select(positive, sum.clone() + half.clone(), sum - half);
    Expr::binary(BinOp::Div, nudged, count)
}
