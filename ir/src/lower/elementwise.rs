//! Element-wise integer ops: ADD and MUL (with broadcasting), QUANTIZE (requantization),
//! DEQUANTIZE (int8 to float through a 256-entry table), RELU, RELU6, LOGISTIC and TANH, each
//! following its TFLite Micro kernel.

use super::{clamp_to, for_each_coord, int_range, linear_index, load_i32, scaled, strides, Kernel};
use crate::fixedpoint::{calculate_input_radius, frexp, quantize_multiplier};
use crate::loops::{BufId, Expr, Intrinsic, ScalarType};
use crate::op::Op;
use crate::qparams;
use crate::sigmoid16::{Function, Sigmoid16, SIGMOID_TABLE};
use crate::types::{DType, TensorType};

/// Lowers an element-wise op.
pub(super) fn lower(k: &mut Kernel) -> Result<(), String> {
    let (input, output) = (k.operand(0).clone(), k.output_type().clone());
    if input.dtype == DType::F32 {
        return lower_float(k, &input, &output);
    }
    match k.node.op.clone() {
        Op::Add { activation } | Op::Mul { activation } => {
            let other = k.operand(1).clone();
            let (lo, hi) = qparams::activation_range(activation, &output)?;
            let combine: Box<dyn Fn(Expr, Expr) -> Expr> = if matches!(k.node.op, Op::Add { .. }) {
                let p = qparams::add_params(&input, &other, &output, activation)?;
                let dtypes = [input.dtype, other.dtype];
                let tables = add_tables(k, &p, dtypes, output.elements());
                Box::new(move |a, b| quantized_add(&p, tables, None, a, b))
            } else {
                mul(&input, &other, &output)?
            };
            binary(k, &input, &other, &output, &|a, b| {
                clamp_to(
                    combine(a, b),
                    lo as i64,
                    hi as i64,
                    ScalarType::of(output.dtype),
                )
            });
        }
        Op::Quantize => {
            let (si, zi) = qparams::per_tensor(&input, "input")?;
            let (so, zo) = qparams::per_tensor(&output, "output")?;
            let (m, s) = qparams::ratio(si as f64, so as f64);
            let (lo, hi) = int_range(output.dtype)?;
            unary(k, &output, &move |v| {
                let x = scaled(v - Expr::i32(zi), m, s);
                clamp_to(x + Expr::i32(zo), lo, hi, ScalarType::of(output.dtype))
            });
        }
        Op::Dequantize => dequantize(k, &input)?,
        Op::Clamp { min, max } => {
            let (lo, hi) = qparams::clamp_range(&input, min, max)?;
            unary(k, &output, &move |v| {
                clamp_to(v, lo, hi, ScalarType::of(output.dtype))
            });
        }
        Op::Sub { .. } | Op::Div { .. } => {
            return Err(format!(
                "{} {} is supported for float32 only",
                input.dtype,
                k.node.op.tflite_name()
            ))
        }
        Op::Relu => {
            let ((si, zi), (so, zo)) = (
                qparams::per_tensor(&input, "input")?,
                qparams::per_tensor(&output, "output")?,
            );
            let (m, s) = quantize_multiplier((si / so) as f64);
            let (qmin, qmax) = int_range(output.dtype)?;
            unary(k, &output, &move |v| {
                let x = scaled(v - Expr::i32(zi), m, s);
                clamp_to(
                    x + Expr::i32(zo),
                    qmin.max(zo as i64),
                    qmax,
                    ScalarType::of(output.dtype),
                )
            });
        }
        Op::Relu6 => {
            let (scale, zp) = qparams::per_tensor(&input, "input")?;
            let (qmin, qmax) = int_range(input.dtype)?;
            let six = ((6.0f32 / scale).round() as i64 + zp as i64).clamp(qmin, qmax);
            unary(k, &output, &move |v| {
                clamp_to(v, zp as i64, six, ScalarType::of(output.dtype))
            });
        }
        Op::Logistic | Op::Tanh => sigmoid_like(k, &input)?,
        other => unreachable!("elementwise::lower called for {}", other.name()),
    }
    Ok(())
}

/// `output[i] = value(input[i] as i32)` over every element; safe in place.
fn unary(k: &mut Kernel, output: &TensorType, value: &dyn Fn(Expr) -> Expr) {
    let x = k.input("input", 0);
    let out = k.output("output");
    // The memory planner shares the buffers only when their element sizes match.
    k.allow_in_place(0, 1);
    let dtype = k.operand(0).dtype;
    k.f.for_loop("i", output.elements(), |f, i| {
        f.store(out, i.clone(), value(widen(Expr::load(x, i), dtype)));
    });
}

/// A loaded element ready for arithmetic: integers widened to `i32`, floats as they are.
fn widen(v: Expr, dtype: DType) -> Expr {
    if dtype == DType::F32 {
        v
    } else {
        v.cast(ScalarType::I32)
    }
}

/// Float ADD, MUL, RELU, RELU6, LOGISTIC, TANH and QUANTIZE (float to integer, rounding half
/// away from zero).
fn lower_float(k: &mut Kernel, input: &TensorType, output: &TensorType) -> Result<(), String> {
    let f32c = Expr::f32;
    match k.node.op.clone() {
        Op::Add { activation }
        | Op::Mul { activation }
        | Op::Sub { activation }
        | Op::Div { activation } => {
            let other = k.operand(1).clone();
            let (lo, hi) = qparams::activation_range_f32(activation);
            let op = k.node.op.clone();
            binary(k, input, &other, output, &|a, b| {
                let v = match op {
                    Op::Add { .. } => a + b,
                    Op::Mul { .. } => a * b,
                    Op::Sub { .. } => a - b,
                    _ => a / b,
                };
                v.clamp(f32c(lo), f32c(hi))
            });
        }
        Op::Clamp { min, max } => unary(k, output, &|v| v.max(f32c(min)).min(f32c(max))),
        Op::Relu => unary(k, output, &|v| v.max(f32c(0.0))),
        Op::Relu6 => unary(k, output, &|v| v.clamp(f32c(0.0), f32c(6.0))),
        Op::Quantize => {
            let (scale, zp) = qparams::per_tensor(output, "output")?;
            let (lo, hi) = int_range(output.dtype)?;
            let elem = ScalarType::of(output.dtype);
            let x = k.input("input", 0);
            let out = k.output("output");
            k.f.for_loop("i", output.elements(), |f, i| {
                // Beyond ±2^30 every value saturates the integer output anyway.
                let t = (Expr::load(x, i.clone()) / f32c(scale)).clamp(f32c(-1e9), f32c(1e9));
                let t = f.let_("t", ScalarType::F32, t);
                let whole = f.let_("whole", ScalarType::I32, t.clone().cast(ScalarType::I32));
                // t - trunc(t) is exact, so the tie test is too.
                let frac = f.let_(
                    "frac",
                    ScalarType::F32,
                    t - whole.clone().cast(ScalarType::F32),
                );
                let up = Expr::select(f32c(0.5).le(frac.clone()), Expr::i32(1), Expr::i32(0));
                let down = Expr::select(frac.le(f32c(-0.5)), Expr::i32(1), Expr::i32(0));
                let rounded = whole + up - down;
                f.store(out, i, clamp_to(rounded + Expr::i32(zp), lo, hi, elem));
            });
        }
        Op::Logistic => unary(k, output, &|v| Expr::call(Intrinsic::LogisticF32, vec![v])),
        Op::Tanh => unary(k, output, &|v| Expr::call(Intrinsic::TanhF32, vec![v])),
        Op::Dequantize => {
            return Err("DEQUANTIZE takes an integer input, not float32".into());
        }
        other => unreachable!("elementwise::lower_float called for {}", other.name()),
    }
    Ok(())
}

/// `output[c] = value(a[broadcast c], b[broadcast c])` over every output coordinate.
fn binary(
    k: &mut Kernel,
    a: &TensorType,
    b: &TensorType,
    output: &TensorType,
    value: &dyn Fn(Expr, Expr) -> Expr,
) {
    let first = k.args.len();
    let (xa, xb) = (k.input("input1", 0), k.input("input2", 1));
    let out = k.output("output");
    if a.shape == output.shape && b.shape == output.shape {
        k.allow_in_place(first, first + 2);
        k.f.for_loop("i", output.elements(), |f, i| {
            f.store(
                out,
                i.clone(),
                value(
                    widen(Expr::load(xa, i.clone()), a.dtype),
                    widen(Expr::load(xb, i), b.dtype),
                ),
            );
        });
        return;
    }
    let (sa, sb, so) = (
        broadcast_strides(&a.shape, &output.shape),
        broadcast_strides(&b.shape, &output.shape),
        strides(&output.shape),
    );
    for_each_coord(&mut k.f, &output.shape, "d", &mut |f, c| {
        let v = value(
            widen(Expr::load(xa, linear_index(c, &sa)), a.dtype),
            widen(Expr::load(xb, linear_index(c, &sb)), b.dtype),
        );
        f.store(out, linear_index(c, &so), v);
    });
}

/// Strides of `shape` seen through an output of shape `out` (numpy broadcasting): zero along
/// broadcast dimensions.
pub(super) fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let dims = crate::shape::padded_to_rank(shape, out.len());
    strides(&dims)
        .into_iter()
        .zip(&dims)
        .map(|(s, d)| if *d == 1 { 0 } else { s })
        .collect()
}

/// Output elements from which an int8 ADD looks its scaled inputs up in two tables of 256
/// `i32`s ([`add_tables`], 2 KiB of flash) instead of computing them. Each lookup (an index
/// and a load) replaces a 64-bit fixed-point multiply, about 10 instructions on RV32IM and 5
/// on Cortex-M4, so from here the instructions saved per inference outweigh the flash at the
/// compiler's price of 4 instructions a byte (`minnow_autotune::cost::FLASH_BYTE`).
pub(crate) const ADD_TABLES_FROM_ELEMENTS: usize = 1024;

/// The tables of an int8 ADD's scaled inputs ([`qparams::AddParams::scaled_int8_inputs`]),
/// bound as constants of `k`, for [`quantized_add`]: `None` unless both operands (`dtypes`)
/// are int8 and the op has at least [`ADD_TABLES_FROM_ELEMENTS`] outputs.
pub(crate) fn add_tables(
    k: &mut Kernel,
    p: &qparams::AddParams,
    dtypes: [DType; 2],
    elements: usize,
) -> Option<[BufId; 2]> {
    if dtypes != [DType::I8; 2] || elements < ADD_TABLES_FROM_ELEMENTS {
        return None;
    }
    let mut table = |side: usize| {
        let name = format!("scaled_input{}", side + 1);
        k.constant_i32(&name, &p.scaled_int8_inputs(side))
    };
    Some([table(0), table(1)])
}

/// TFLite's integer `AddFunc` of two widened elements, before the clamp. Each input is
/// scaled to the common scale by arithmetic or, given `tables` ([`add_tables`]), looked up
/// (the int8 value's byte is the index: a zero-extending load, or `uxtb`). The sum is
/// rescaled by one 32-bit high multiply given `high_mul_output`
/// ([`qparams::AddParams::int8_high_mul_output`]), else in the high-shift form with the zero
/// point in its rounding constant where that exists.
pub(crate) fn quantized_add(
    p: &qparams::AddParams,
    tables: Option<[BufId; 2]>,
    high_mul_output: Option<(i32, i32, i32)>,
    a: Expr,
    b: Expr,
) -> Expr {
    let scale = |v: Expr, k: usize| {
        if let Some(tables) = tables {
            return Expr::load(tables[k], v & Expr::i32(0xff));
        }
        let shifted = (v + Expr::i32(p.input_offsets[k])) * Expr::i32(1 << p.left_shift);
        let (multiplier, shift) = p.input_scales[k];
        scaled(shifted, multiplier, shift)
    };
    let sum = scale(a, 0) + scale(b, 1);
    let (intrinsic, form) = match high_mul_output {
        Some(form) => (Intrinsic::MultiplyByQuantizedMultiplierHighMul, Some(form)),
        None => (
            Intrinsic::MultiplyByQuantizedMultiplierHighShiftOffset,
            p.output_high_shift(),
        ),
    };
    let Some(form) = form else {
        let (multiplier, shift) = p.output_scale;
        return scaled(sum, multiplier, shift) + Expr::i32(p.output_offset);
    };
    let (multiplier, shift, rounding) = form;
    let args = [multiplier, shift, rounding].map(Expr::i32);
    Expr::call(intrinsic, std::iter::once(sum).chain(args).collect())
}

/// TFLite's integer `MulElementwise`.
fn mul(
    a: &TensorType,
    b: &TensorType,
    out: &TensorType,
) -> Result<Box<dyn Fn(Expr, Expr) -> Expr>, String> {
    let ((sa, za), (sb, zb), (so, zo)) = (
        qparams::per_tensor(a, "first input")?,
        qparams::per_tensor(b, "second input")?,
        qparams::per_tensor(out, "output")?,
    );
    let (m, s) = qparams::ratio(sa as f64 * sb as f64, so as f64);
    Ok(Box::new(move |x, y| {
        let product = (x - Expr::i32(za)) * (y - Expr::i32(zb));
        scaled(product, m, s) + Expr::i32(zo)
    }))
}

/// DEQUANTIZE: `float(scale * (v - zero_point))` as TFLite computes it in double. For int8
/// and uint8, all 256 values are computed at compile time and looked up (cheap without an FPU). For
/// int16, one `f32` multiply: `v - zero_point` is exact in `f32` and the double product of two
/// such numbers is exact, so rounding it to `f32` is the correctly rounded `f32` product.
fn dequantize(k: &mut Kernel, input: &TensorType) -> Result<(), String> {
    let (scale, zp) = qparams::per_tensor(input, "input")?;
    // int8 and uint8: the 256 values, indexed from the type's lowest.
    let lowest = match input.dtype {
        DType::I8 => -128i64,
        DType::U8 => 0,
        DType::I16 => {
            unary(k, &TensorType::new(input.shape.clone(), DType::F32), &|v| {
                (v - Expr::i32(zp)).cast(ScalarType::F32) * Expr::f32(scale)
            });
            return Ok(());
        }
        other => {
            return Err(format!(
                "{other} DEQUANTIZE is not supported (int8, uint8 or int16 input)"
            ))
        }
    };
    let table: Vec<u8> = (lowest..lowest + 256)
        .flat_map(|v| ((scale as f64 * (v - zp as i64) as f64) as f32).to_le_bytes())
        .collect();
    let x = k.input("input", 0);
    let out = k.output("output");
    let lut = k.constant("table", ScalarType::F32, 256, table);
    k.f.for_loop("i", input.elements(), |f, i| {
        f.store(
            out,
            i.clone(),
            Expr::load(lut, load_i32(x, i) - Expr::i32(lowest as i32)),
        );
    });
    Ok(())
}

/// int8 LOGISTIC and TANH: the input scaled into Q4.27, gemmlowp's function, saturation beyond
/// the input radius.
fn sigmoid_like(k: &mut Kernel, input: &TensorType) -> Result<(), String> {
    const INPUT_INTEGER_BITS: i32 = 4;
    let is_logistic = k.node.op == Op::Logistic;
    if input.dtype == DType::I16 {
        return sigmoid_like_int16(k, input, is_logistic);
    }
    let (scale, zp) = qparams::per_tensor(input, "input")?;
    let (q, left_shift) = frexp(scale as f64 * (1i64 << (31 - INPUT_INTEGER_BITS)) as f64);
    let multiplier = (q * (1i64 << 31) as f64).round() as i32;
    let radius = calculate_input_radius(INPUT_INTEGER_BITS, left_shift, 31);
    let x = k.input("input", 0);
    let out: BufId = k.output("output");
    k.allow_in_place(0, 1);
    k.f.for_loop("i", input.elements(), |f, i| {
        let v = f.let_("x", ScalarType::I32, load_i32(x, i.clone()) - Expr::i32(zp));
        let q4 = Expr::call(
            Intrinsic::MultiplyByQuantizedMultiplier,
            vec![v.clone(), Expr::i32(multiplier), Expr::i32(left_shift)],
        );
        let inner = if is_logistic {
            let l = Expr::call(Intrinsic::Logistic, vec![q4, Expr::i32(INPUT_INTEGER_BITS)]);
            Expr::call(Intrinsic::RoundingDivideByPot, vec![l, Expr::i32(23)]) - Expr::i32(128)
        } else {
            let t = Expr::call(Intrinsic::Tanh, vec![q4, Expr::i32(INPUT_INTEGER_BITS)]);
            Expr::call(Intrinsic::RoundingDivideByPot, vec![t, Expr::i32(24)])
        };
        let saturated = Expr::select(
            v.clone().le(Expr::i32(-radius)),
            Expr::i32(-128),
            Expr::select(Expr::i32(radius).le(v), Expr::i32(127), inner),
        );
        f.store(out, i, clamp_to(saturated, -128, 127, ScalarType::I8));
    });
    Ok(())
}

/// int16 LOGISTIC and TANH: [`Sigmoid16::apply`] over every element, with TFLite's table as a
/// constant (stored less 32768, so it fits `i16`).
fn sigmoid_like_int16(k: &mut Kernel, input: &TensorType, is_logistic: bool) -> Result<(), String> {
    let output = k.output_type().clone();
    let ((si, zi), (so, zo)) = (
        qparams::per_tensor(input, "input")?,
        qparams::per_tensor(&output, "output")?,
    );
    let function = if is_logistic {
        Function::Logistic
    } else {
        Function::Tanh
    };
    let p = Sigmoid16::new(function, si, zi, so, zo)?;
    let bytes = SIGMOID_TABLE
        .iter()
        .flat_map(|v| ((*v as i32 - 32768) as i16).to_le_bytes())
        .collect();
    let x = k.input("input", 0);
    let out = k.output("output");
    let table = k.constant("sigmoid_table", ScalarType::I16, SIGMOID_TABLE.len(), bytes);
    k.allow_in_place(0, 1);
    let shift = function.index_shift();
    k.f.for_loop("i", input.elements(), |f, i| {
        let rounded = load_i32(x, i.clone()) * Expr::i32(p.multiplier) + Expr::i32(p.rounding());
        let scaled = f.let_("scaled", ScalarType::I32, rounded >> Expr::i32(p.shift));
        let negative = scaled.clone().lt(Expr::i32(0));
        let magnitude = f.let_(
            "magnitude",
            ScalarType::I32,
            Expr::select(negative.clone(), -scaled.clone(), scaled),
        );
        let index = f.let_(
            "index",
            ScalarType::I32,
            magnitude.clone() >> Expr::i32(shift),
        );
        // Clamped so that the load stays in bounds where the saturated value is chosen.
        let at = index.clone().min(Expr::i32(254));
        let entry = |e: Expr| load_i32(table, e) + Expr::i32(32768);
        let (a, b) = (
            f.let_("a", ScalarType::I32, entry(at.clone())),
            f.let_("b", ScalarType::I32, entry(at + Expr::i32(1))),
        );
        let fraction = magnitude & Expr::i32((1 << shift) - 1);
        let saturated = match function {
            Function::Logistic => 0x7fff << 10,
            Function::Tanh => 0xffff << 8,
        };
        let interpolated = f.let_(
            "interpolated",
            ScalarType::I32,
            Expr::select(
                Expr::i32(255).le(index),
                Expr::i32(saturated),
                (a.clone() << Expr::i32(shift)) + fraction * (b - a),
            ),
        );
        let (positive, negative_value) = match function {
            Function::Logistic => (
                (interpolated.clone() + Expr::i32(1 << 9)) >> Expr::i32(10),
                (Expr::i32((1 << 25) + (1 << 9) - 1) - interpolated) >> Expr::i32(10),
            ),
            Function::Tanh => (
                (interpolated.clone() - Expr::i32((1 << 23) - (1 << 7))) >> Expr::i32(8),
                (Expr::i32((1 << 23) + (1 << 7) - 1) - interpolated) >> Expr::i32(8),
            ),
        };
        let value = Expr::select(negative, negative_value, positive);
        f.store(out, i, value.cast(ScalarType::I16));
    });
    Ok(())
}
