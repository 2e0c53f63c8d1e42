//! SVDF (TFLite Micro's `EvalIntegerSvdfReference` and its float kernel): shift the state left
//! by one, write each filter's projection of the new input into its last memory slot, filter
//! every memory with the time weights, sum `rank` filters per unit, add the bias, then
//! requantize (integer) or clamp to the fused activation (float).
//!
//! One loop nest serves both; [`Arithmetic`] holds what differs.

use super::{clamp_to, load_i32, Kernel};
use crate::geometry::SvdfGeometry;
use crate::loops::{BufId, Expr, ForKind, FuncBuilder, ScalarType};
use crate::op::Op;
use crate::qparams;
use crate::types::{DType, TensorType};

/// The element arithmetic of one SVDF flavour.
struct Arithmetic {
    /// Type of the dot products and sums.
    acc: ScalarType,
    /// Zero of `acc`.
    zero: Expr,
    /// A loaded element, ready for arithmetic.
    load: fn(BufId, Expr) -> Expr,
    /// Zero point subtracted from each input element, if any.
    input_offset: Option<i32>,
    /// Zero point subtracted from each state element, if any.
    state_offset: Option<i32>,
    /// A feature projection to the value stored in the state.
    to_state: Box<dyn Fn(Expr) -> Expr>,
    /// A unit's sum (bias included) to the output element.
    to_output: Box<dyn Fn(Expr) -> Expr>,
}

/// Lowers an SVDF. An integer SVDF with int8 input and feature weights (and a state zero point
/// of 0, as TFLite's converter writes) is three steps: the state's shift, the feature
/// projection as a fully connected reduction the schedules vectorize
/// ([`super::mac::svdf_projection`]), and the time filter; any other is one loop nest.
pub(super) fn lower(k: &mut Kernel) -> Result<(), String> {
    let Op::Svdf { rank, activation } = k.node.op else {
        unreachable!("svdf::lower called for {}", k.node.op.name())
    };
    let (input, wf, wt) = (
        k.operand(0).clone(),
        k.operand(1).clone(),
        k.operand(2).clone(),
    );
    let dims = SvdfGeometry::new(&input.shape, &wf.shape, &wt.shape, rank);
    if input.dtype == DType::F32 {
        let (lo, hi) = qparams::activation_range_f32(activation);
        let arithmetic = Arithmetic {
            acc: ScalarType::F32,
            zero: Expr::f32(0.0),
            load: Expr::load,
            input_offset: None,
            state_offset: None,
            to_state: Box::new(|dot| dot),
            to_output: Box::new(move |v| v.clamp(Expr::f32(lo), Expr::f32(hi))),
        };
        emit(k, &dims, &arithmetic);
        return Ok(());
    }
    let state = k.operand(4).clone();
    let q = qparams::svdf([&input, &wf, &wt, &state, k.output_type()])?;
    let arithmetic = integer(&input, &wf, &wt, &state, k.output_type())?;
    if input.dtype == DType::I8 && wf.dtype == DType::I8 && q.state_zp == 0 {
        shift_state(k, &dims);
        k.split_step("shift", 0);
        super::mac::svdf_projection(k, &dims, q.input_zp, q.scale_1)?;
        let macs = (dims.batches * dims.filters * dims.input) as u64;
        k.split_step("projection", macs);
        filter_in_time(k, &dims, &arithmetic);
    } else {
        emit(k, &dims, &arithmetic);
    }
    Ok(())
}

/// The integer flavour: zero points, two requantizations with scale products computed in
/// float (as the reference does), int8 output with no activation (TFLite Micro ignores it).
fn integer(
    input: &TensorType,
    wf: &TensorType,
    wt: &TensorType,
    state: &TensorType,
    output: &TensorType,
) -> Result<Arithmetic, String> {
    let qparams::Svdf {
        input_zp,
        state_zp,
        output_zp,
        scale_1,
        scale_2,
    } = qparams::svdf([input, wf, wt, state, output])?;
    let (state_lo, state_hi) = state.dtype.int_range().ok_or("integer state expected")?;
    let state_elem = ScalarType::of(state.dtype);
    let requantize = |v: Expr, (m, s): (i32, i32)| super::scaled(v, m, s);
    Ok(Arithmetic {
        acc: ScalarType::I32,
        zero: Expr::i32(0),
        load: load_i32,
        input_offset: Some(input_zp),
        state_offset: Some(state_zp),
        to_state: Box::new(move |dot| {
            let clamped = requantize(dot, scale_1)
                .clamp(Expr::i32(state_lo as i32), Expr::i32(state_hi as i32));
            (Expr::i32(state_zp) + clamped).cast(state_elem)
        }),
        to_output: Box::new(move |acc| {
            let scaled = requantize(acc, scale_2) + Expr::i32(output_zp);
            clamp_to(scaled, -128, 127, ScalarType::I8)
        }),
    })
}

/// The whole SVDF as one loop nest: shift the state, project the input into it, filter and
/// sum per unit.
fn emit(k: &mut Kernel, d: &SvdfGeometry, a: &Arithmetic) {
    let s = shift_state(k, d);
    let x = k.input("input", 0);
    let feature = k.input("feature", 1);
    let f = &mut k.f;
    f.for_loop("b", d.batches, |f, b| {
        f.for_loop("r", d.filters, |f, r| {
            let dot = dot_product(f, a, d.input, |kk| {
                let w = (a.load)(feature, r.clone() * Expr::idx(d.input) + kk.clone());
                let v = (a.load)(x, b.clone() * Expr::idx(d.input) + kk);
                w * centred(v, a.input_offset)
            });
            let slot = (b.clone() * Expr::idx(d.filters) + r) * Expr::idx(d.memory)
                + Expr::idx(d.memory - 1);
            f.store(s, slot, (a.to_state)(dot));
        });
    });
    filter_in_time(k, d, a);
}

/// Binds the state and shifts it left by one element (its newest slots are written next).
fn shift_state(k: &mut Kernel, d: &SvdfGeometry) -> BufId {
    let s = k.state("state", 4);
    let moved = (d.batches * d.filters * d.memory).saturating_sub(1);
    let shift =
        |f: &mut FuncBuilder, i: Expr| f.store(s, i.clone(), Expr::load(s, i + Expr::i32(1)));
    // Blocks of SHIFT_UNROLL unrolled copies, then the rest: C compilers turn a plain copy loop
    // into a `memmove` call, which newlib runs a byte at a time for elements moved by one.
    let (blocks, rest) = (moved / SHIFT_UNROLL, moved % SHIFT_UNROLL);
    if blocks > 0 {
        k.f.for_loop("i_o", blocks, |f, io| {
            f.for_kind("i_i", SHIFT_UNROLL, ForKind::Unrolled, |f, ii| {
                shift(f, io * Expr::i32(SHIFT_UNROLL as i32) + ii)
            });
        });
    }
    if rest > 0 {
        k.f.for_kind("i_r", rest, ForKind::Unrolled, |f, ir| {
            shift(f, ir + Expr::i32((blocks * SHIFT_UNROLL) as i32))
        });
    }
    s
}

/// Elements the state's shift copies per block.
const SHIFT_UNROLL: usize = 8;

/// Filters every memory with the time weights, sums `rank` filters per unit with the bias,
/// and stores the outputs.
fn filter_in_time(k: &mut Kernel, d: &SvdfGeometry, a: &Arithmetic) {
    let time = k.input("time", 2);
    let bias = k.has_operand(3).then(|| k.input("bias", 3));
    let s = k.state("state", 4);
    let out = k.output("output");
    let f = &mut k.f;
    let units = d.units();
    f.for_loop("b", d.batches, |f, b| {
        f.for_loop("u", units, |f, u| {
            let acc = f.local("acc", a.acc, 1);
            let init = bias.map_or(a.zero.clone(), |bias| (a.load)(bias, u.clone()));
            f.store(acc, Expr::i32(0), init);
            f.for_loop("j", d.rank, |f, j| {
                let filter = f.let_("filter", ScalarType::I32, u.clone() * Expr::idx(d.rank) + j);
                let inner = dot_product(f, a, d.memory, |t| {
                    let w = (a.load)(time, filter.clone() * Expr::idx(d.memory) + t.clone());
                    let cell = (b.clone() * Expr::idx(d.filters) + filter.clone())
                        * Expr::idx(d.memory)
                        + t;
                    w * centred((a.load)(s, cell), a.state_offset)
                });
                let sum = Expr::load(acc, Expr::i32(0)) + inner;
                f.store(acc, Expr::i32(0), sum);
            });
            let value = (a.to_output)(Expr::load(acc, Expr::i32(0)));
            f.store(out, b.clone() * Expr::idx(units) + u, value);
        });
    });
}

/// `Σ_{k < n} term(k)` accumulated in order from zero into a local; returns the sum.
fn dot_product(f: &mut FuncBuilder, a: &Arithmetic, n: usize, term: impl Fn(Expr) -> Expr) -> Expr {
    let sum = f.local("dot", a.acc, 1);
    f.store(sum, Expr::i32(0), a.zero.clone());
    f.for_loop("k", n, |f, k| {
        f.store(sum, Expr::i32(0), Expr::load(sum, Expr::i32(0)) + term(k));
    });
    f.let_("dot", a.acc, Expr::load(sum, Expr::i32(0)))
}

/// `v - zero_point`, or `v` for float.
fn centred(v: Expr, zero_point: Option<i32>) -> Expr {
    match zero_point {
        Some(zp) => v - Expr::i32(zp),
        None => v,
    }
}
