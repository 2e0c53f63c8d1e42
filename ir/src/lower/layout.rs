//! Data movement — RESHAPE (as a copy, when its output is a model output), PAD, SLICE and
//! CONCATENATION (as copies, where they are not views, [`super::views`]), TRANSPOSE — which copies raw elements of any type, and the integer MEAN reduction.

use super::{clamp_to, for_each_coord, int_range, linear_index, strides, Kernel};
use crate::fixedpoint::quantize_multiplier;
use crate::loops::{Expr, ScalarType};
use crate::op::Op;
use crate::qparams;
use crate::types::DType;

/// Lowers a data-movement op.
pub(super) fn lower(k: &mut Kernel) -> Result<(), String> {
    let output = k.output_type().clone();
    match k.node.op.clone() {
        Op::Reshape => {
            let x = k.input("input", 0);
            let out = k.output("output");
            k.allow_in_place(0, 1);
            k.f.for_loop("i", output.elements(), |f, i| {
                f.store(out, i.clone(), Expr::load(x, i))
            });
        }
        Op::Transpose { perm } => {
            let input = k.operand(0).clone();
            let x = k.input("input", 0);
            let out = k.output("output");
            let in_strides = strides(&input.shape);
            let through: Vec<usize> = perm.iter().map(|p| in_strides[*p]).collect();
            let out_strides = strides(&output.shape);
            for_each_coord(&mut k.f, &output.shape, "d", &mut |f, c| {
                f.store(
                    out,
                    linear_index(c, &out_strides),
                    Expr::load(x, linear_index(c, &through)),
                );
            });
        }
        Op::Pad { pads } => {
            let input = k.operand(0).clone();
            let x = k.input("input", 0);
            let out = k.output("output");
            let elem = ScalarType::of(output.dtype);
            let fill = match input.per_tensor() {
                _ if elem == ScalarType::F32 => Expr::f32(0.0),
                Some((_, zp)) => Expr::i32(zp).cast(elem),
                None => Expr::i32(0).cast(elem),
            };
            k.f.for_loop("i", output.elements(), |f, i| f.store(out, i, fill.clone()));
            let out_strides = strides(&output.shape);
            let in_strides = strides(&input.shape);
            let before: Vec<usize> = pads.iter().map(|(b, _)| *b).collect();
            for_each_coord(&mut k.f, &input.shape, "d", &mut |f, c| {
                f.store(
                    out,
                    linear_index(&shifted(c, &before), &out_strides),
                    Expr::load(x, linear_index(c, &in_strides)),
                );
            });
        }
        Op::Slice { begin } => {
            let input = k.operand(0).clone();
            let x = k.input("input", 0);
            let out = k.output("output");
            let (in_strides, out_strides) = (strides(&input.shape), strides(&output.shape));
            for_each_coord(&mut k.f, &output.shape, "d", &mut |f, c| {
                f.store(
                    out,
                    linear_index(c, &out_strides),
                    Expr::load(x, linear_index(&shifted(c, &begin), &in_strides)),
                );
            });
        }
        Op::Concat { axis, .. } => {
            let out_inner: usize = output.shape[axis..].iter().product();
            let outer: usize = output.shape[..axis].iter().product();
            let mut offset = 0;
            let out_buf_inputs: Vec<_> = (0..k.node.inputs.len())
                .map(|i| {
                    (
                        k.input(&format!("input{i}"), i),
                        k.operand(i).shape[axis..].iter().product::<usize>(),
                    )
                })
                .collect();
            let out = k.output("output");
            for (x, inner) in out_buf_inputs {
                k.f.for_loop("o", outer, |f, o| {
                    f.for_loop("i", inner, |f, i| {
                        let dst = o.clone() * Expr::idx(out_inner) + Expr::idx(offset) + i.clone();
                        f.store(out, dst, Expr::load(x, o * Expr::idx(inner) + i));
                    });
                });
                offset += inner;
            }
        }
        other => unreachable!("layout::lower called for {}", other.name()),
    }
    Ok(())
}

/// Coordinates `c` moved by `shift` (PAD's padding before, SLICE's begin).
fn shifted(c: &[Expr], shift: &[usize]) -> Vec<Expr> {
    c.iter()
        .zip(shift)
        .map(|(x, d)| x.clone() + Expr::idx(*d))
        .collect()
}

/// MEAN: a sum per output in the reference's order, then for integer tensors TFLite's
/// `QuantizedMeanOrSum` (the input zero point removed, the division by the count folded into
/// the multiplier) and for float tensors a division by the count.
pub(super) fn lower_mean(k: &mut Kernel) -> Result<(), String> {
    let Op::Mean { axes, .. } = k.node.op.clone() else {
        unreachable!("lower_mean called for {}", k.node.op.name())
    };
    let (input, output) = (k.operand(0).clone(), k.output_type().clone());
    let count: usize = axes.iter().map(|a| input.shape[*a]).product();
    // The value of one output from its sum over the reduced positions.
    let (acc, finish): (ScalarType, Box<dyn Fn(Expr) -> Expr>) = if input.dtype == DType::F32 {
        (
            ScalarType::F32,
            Box::new(move |sum| sum / Expr::f32(count as f32)),
        )
    } else {
        let ((si, zi), (so, zo)) = (
            qparams::per_tensor(&input, "input")?,
            qparams::per_tensor(&output, "output")?,
        );
        let (m, s) = quantize_multiplier(si as f64 / so as f64);
        // Fold the division by the element count into the multiplier, as TFLite does.
        let shift = (63 - (count as u64).leading_zeros() as i32)
            .min(32)
            .min(31 + s);
        let multiplier = (((m as i64) << shift) / count.max(1) as i64) as i32;
        let (lo, hi) = int_range(output.dtype)?;
        let elem = ScalarType::of(output.dtype);
        let offset = (zi as i64 * count as i64) as i32;
        (
            ScalarType::I32,
            Box::new(move |sum| {
                let scaled = super::scaled(sum - Expr::i32(offset), multiplier, s - shift);
                clamp_to(scaled + Expr::i32(zo), lo, hi, elem)
            }),
        )
    };
    let kept: Vec<usize> = (0..input.shape.len())
        .filter(|d| !axes.contains(d))
        .collect();
    let kept_shape: Vec<usize> = kept.iter().map(|d| input.shape[*d]).collect();
    let reduced_shape: Vec<usize> = axes.iter().map(|d| input.shape[*d]).collect();
    let in_strides = strides(&input.shape);
    let kept_strides: Vec<usize> = kept.iter().map(|d| in_strides[*d]).collect();
    let reduced_strides: Vec<usize> = axes.iter().map(|d| in_strides[*d]).collect();
    let out_strides = strides(&kept_shape);
    let x = k.input("input", 0);
    let out = k.output("output");
    let zero = if acc == ScalarType::F32 {
        Expr::f32(0.0)
    } else {
        Expr::i32(0)
    };
    for_each_coord(&mut k.f, &kept_shape, "o", &mut |f, c| {
        let base = f.let_("base", ScalarType::I32, linear_index(c, &kept_strides));
        let sum = f.local("sum", acc, 1);
        f.store(sum, Expr::i32(0), zero.clone());
        for_each_coord(f, &reduced_shape, "r", &mut |f, r| {
            let v = Expr::load(x, base.clone() + linear_index(r, &reduced_strides));
            let v = if acc == ScalarType::F32 {
                v
            } else {
                v.cast(ScalarType::I32)
            };
            f.store(sum, Expr::i32(0), Expr::load(sum, Expr::i32(0)) + v);
        });
        f.store(
            out,
            linear_index(c, &out_strides),
            finish(Expr::load(sum, Expr::i32(0))),
        );
    });
    Ok(())
}
