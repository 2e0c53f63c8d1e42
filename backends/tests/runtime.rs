//! The C runtime helpers against `minnow_ir::fixedpoint` and `minnow_ir::floatfn`: every
//! intrinsic's C definition, compiled with the host compiler, gives the Rust definition's result
//! (to the bit, for floats) on edge cases and on random inputs.

use minnow_backends::c::RUNTIME;
use minnow_backends::jit::JitProgram;
use minnow_ir::loops::interp::Value;
use minnow_ir::loops::{Access, BufId, Expr, ForKind, FuncBuilder, Intrinsic, Program, ScalarType};
use minnow_passes::memory::MemoryPlanner;
use std::fmt::Write;
use std::process::Command;

mod support;

/// Arguments for one intrinsic: edge values crossed with pseudo-random ones, kept inside each
/// function's documented domain.
fn cases(i: Intrinsic, rng: &mut impl FnMut() -> i64) -> Vec<Vec<i64>> {
    let edges = [
        0i64,
        1,
        -1,
        2,
        -2,
        127,
        -128,
        1 << 20,
        -(1 << 20),
        i32::MAX as i64,
        i32::MIN as i64,
        i32::MAX as i64 - 1,
        i32::MIN as i64 + 1,
    ];
    let mut out = Vec::new();
    for k in 0..400 {
        let x = if k < edges.len() {
            edges[k]
        } else {
            rng() as i32 as i64
        };
        let y = rng() as i32 as i64;
        let args = match i {
            Intrinsic::SaturatingRoundingDoublingHighMul => vec![x, if k % 3 == 0 { x } else { y }],
            Intrinsic::RoundingDivideByPot => vec![x, y.rem_euclid(32)],
            Intrinsic::MultiplyByQuantizedMultiplier => vec![
                x % (1 << 24),
                (1 << 30) + y.rem_euclid(1 << 30),
                y.rem_euclid(40) - 31,
            ],
            Intrinsic::MultiplyByQuantizedMultiplierHighShift => {
                let multiplier = if k % 5 == 0 {
                    i32::MAX as i64
                } else {
                    y.rem_euclid(1 << 31)
                };
                // A shift of 1 keeps the most of the high word's bits (and of its nudge's).
                let shift = if k % 4 == 1 {
                    1
                } else {
                    1 + (y >> 8).rem_euclid(30)
                };
                vec![x, multiplier, shift]
            }
            Intrinsic::MultiplyByQuantizedMultiplierHighShiftOffset => {
                let multiplier = y.rem_euclid(1 << 31);
                let shift = 1 + (y >> 8).rem_euclid(30) as i32;
                let offset = [-128, 0, 127, -32768, 32767][k % 5];
                let rounding = minnow_ir::fixedpoint::high_shift_rounding(shift, offset)
                    .or(minnow_ir::fixedpoint::high_shift_rounding(shift, 0))
                    .expect("a rounding constant for offset 0");
                vec![x, multiplier, shift as i64, rounding as i64]
            }
            Intrinsic::MultiplyByQuantizedMultiplierHighMul => {
                use minnow_ir::fixedpoint::{
                    high_mul_form, high_shift_rounding, HIGH_MUL_ACC_LIMIT,
                };
                let multiplier = y.rem_euclid(1 << 31);
                let high_shift = 1 + (y >> 8).rem_euclid(28) as i32;
                let offset = [-128, 0, 127, -32768, 32767][k % 5];
                let rounding = high_shift_rounding(high_shift, offset)
                    .and_then(|r| high_mul_form(high_shift, r))
                    .or(high_mul_form(high_shift, (1 << high_shift) >> 1))
                    .expect("the offset-free rounding fits");
                let limit = HIGH_MUL_ACC_LIMIT - 1;
                let x = x.clamp(-limit, limit);
                vec![x, multiplier, rounding.0 as i64, rounding.1 as i64]
            }
            Intrinsic::MultiplyByQuantizedMultiplierWide => vec![
                rng() >> 20,
                (1 << 30) + y.rem_euclid(1 << 30),
                y.rem_euclid(20) - 14,
            ],
            Intrinsic::MultiplyByQuantizedMultiplierSmallerThanOneExp => {
                vec![x, (1 << 30) + y.rem_euclid(1 << 30), -(y.rem_euclid(31))]
            }
            Intrinsic::MultiplyByQuantizedMultiplierGreaterThanOne => {
                vec![x % 256, (1 << 30) + y.rem_euclid(1 << 30), y.rem_euclid(24)]
            }
            Intrinsic::ExpOnNegativeValues => vec![-(x.abs() % (i32::MAX as i64)), 5],
            Intrinsic::OneOverOnePlusX => vec![x.abs() % (i32::MAX as i64)],
            Intrinsic::CountLeadingZeros => vec![x],
            Intrinsic::Logistic | Intrinsic::Tanh => vec![x, 4],
            Intrinsic::Sxtab16 | Intrinsic::Sxtab16Ror8 => vec![x, y],
            Intrinsic::Smlad | Intrinsic::Smlabb | Intrinsic::Smlatt | Intrinsic::WinogradPair => {
                vec![x, y, rng() as i32 as i64]
            }
            Intrinsic::ExpF32 | Intrinsic::LogisticF32 | Intrinsic::TanhF32 => {
                vec![float_case(k, y) as i64]
            }
        };
        out.push(args);
    }
    out
}

/// The bits of a float argument: edge values, then values spread over [-120, 120] (where the
/// functions do not saturate), then arbitrary bit patterns.
fn float_case(k: usize, random: i64) -> u32 {
    let edges = [
        0.0f32,
        -0.0,
        1.0,
        -1.0,
        0.55,
        -0.55,
        0.549_999_95,
        88.722_83,
        88.722_84,
        -103.972_08,
        -103.972_09,
        -87.5,
        1e-30,
        f32::MIN_POSITIVE,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MAX,
        f32::MIN,
    ];
    match k {
        k if k < edges.len() => edges[k].to_bits(),
        k if k < 300 => ((random % 240_000) as f32 / 1000.0).to_bits(),
        _ => (random as u32) & 0x7fbf_ffff, // no NaNs: their payloads are the hardware's choice
    }
}

/// The C literal of an argument of type `t`.
fn literal(arg: i64, t: ScalarType) -> String {
    match t {
        ScalarType::I64 => format!("(int64_t){arg}LL"),
        ScalarType::F32 => format!("minnow_from_bits({arg}u)"),
        _ => format!("(int32_t){arg}LL"),
    }
}

/// The result as the C program prints it: integers, or a float's bits.
/// A case's arguments as the runtime's values (float arguments are their bits).
fn values(args: &[i64], params: &[ScalarType]) -> Vec<Value> {
    args.iter()
        .zip(params)
        .map(|(a, t)| match t {
            ScalarType::F32 => Value::F32(f32::from_bits(*a as u32)),
            _ => Value::Int(*a, *t),
        })
        .collect()
}

fn printed(v: Value) -> String {
    match v {
        Value::F32(f) => f.to_bits().to_string(),
        other => other.as_int().to_string(),
    }
}

#[test]
fn c_runtime_matches_the_fixed_point_module() {
    let mut rng = support::xorshift(0x2545_F491_4F6C_DD1Du64);
    let mut c = String::from("#include <stdint.h>\n#include <stdio.h>\n");
    c += RUNTIME;
    c += "static float minnow_from_bits(uint32_t u) { minnow_f32_bits b; b.u = u; return b.f; }\n";
    c += "static long minnow_printed_f32(float f) { minnow_f32_bits b; b.f = f; return (long)b.u; }\n";
    c += "static long minnow_printed_i32(int32_t v) { return (long)v; }\n";
    c += "int main(void) {\n";
    let mut want = Vec::new();
    for i in Intrinsic::ALL {
        let (params, result) = i.signature();
        let print = if result == ScalarType::F32 {
            "f32"
        } else {
            "i32"
        };
        for args in cases(i, &mut rng) {
            let literals: Vec<String> = args
                .iter()
                .zip(params)
                .map(|(a, t)| literal(*a, *t))
                .collect();
            let _ = writeln!(
                c,
                "  printf(\"%ld\\n\", minnow_printed_{print}(minnow_{}({})));",
                i.name(),
                literals.join(", ")
            );
            let values = values(&args, params);
            want.push(format!("{} {:?}", printed(i.eval(&values)), (i, &args)));
        }
    }
    c += "  return 0;\n}\n";
    let dir = tempfile_dir();
    let src = dir.join("runtime_test.c");
    let exe = dir.join("runtime_test");
    std::fs::write(&src, c).unwrap();
    let status = Command::new("cc")
        .args([
            "-std=c99",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-O2",
            "-fsanitize=undefined",
            "-fno-sanitize-recover",
        ])
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .status()
        .expect("the host C compiler `cc` is needed: apt-get install gcc");
    assert!(status.success());
    let out = Command::new(&exe).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = String::from_utf8(out.stdout).unwrap();
    for (g, w) in got.lines().zip(&want) {
        let (value, case) = w.split_once(' ').unwrap();
        assert_eq!(g, value, "C and Rust differ on {case}");
    }
    assert_eq!(got.lines().count(), want.len());
}

/// A program of one step computing `out[k] = intrinsic(args[k]...)` over `cases`, the
/// arguments held in constant slots.
fn intrinsic_program(intrinsic: Intrinsic, cases: &[Vec<i64>]) -> Program {
    let mut b = FuncBuilder::new("apply");
    let (bufs, constants) = case_params(&mut b, intrinsic, cases);
    let result = intrinsic.signature().1;
    let out = b.param("out", result, cases.len(), Access::Write);
    b.for_loop("k", cases.len(), |b, k| {
        let args = bufs.iter().map(|a| Expr::load(*a, k.clone())).collect();
        b.store(out, k, Expr::call(intrinsic, args));
    });
    support::one_step_program(b.finish(), constants, (result, cases.len()))
}

/// One parameter per argument of `intrinsic`, and the constants holding `cases`' values of it.
fn case_params(
    b: &mut FuncBuilder,
    intrinsic: Intrinsic,
    cases: &[Vec<i64>],
) -> (Vec<BufId>, Vec<(ScalarType, Vec<u8>)>) {
    let mut constants = Vec::new();
    let bufs = intrinsic
        .signature()
        .0
        .iter()
        .enumerate()
        .map(|(p, t)| {
            let bytes = cases
                .iter()
                .flat_map(|args| match t {
                    ScalarType::I64 => args[p].to_le_bytes().to_vec(),
                    _ => (args[p] as u32).to_le_bytes().to_vec(),
                })
                .collect();
            constants.push((*t, bytes));
            b.param(&format!("arg{p}"), *t, cases.len(), Access::Read)
        })
        .collect();
    (bufs, constants)
}

/// The JIT's inlined requantization arithmetic and its shims for the rest give the runtime's
/// results, bit for bit, on the same cases as the C runtime.
#[test]
fn jit_intrinsics_match_the_fixed_point_module() {
    let mut rng = support::xorshift(0x9E37_79B9_7F4A_7C15u64);
    for i in Intrinsic::ALL {
        let cases = cases(i, &mut rng);
        assert_jit_matches(i, &intrinsic_program(i, &cases), &cases);
    }
}

/// Runs `program`, which applies `i` to each of `cases`, through the JIT and checks every
/// result against the runtime's.
fn assert_jit_matches(i: Intrinsic, program: &Program, cases: &[Vec<i64>]) {
    let plan = MemoryPlanner::default().run(program);
    let mut jit = JitProgram::compile(program, &plan).unwrap();
    let out = jit.run(&[]).unwrap().remove(0);
    let (params, _) = i.signature();
    for (k, args) in cases.iter().enumerate() {
        let got = i32::from_le_bytes(out[4 * k..4 * k + 4].try_into().unwrap());
        let want = match i.eval(&values(args, params)) {
            Value::F32(f) => f.to_bits() as i32,
            Value::Int(v, _) => v as i32,
        };
        assert_eq!(got, want, "the JIT and the runtime differ on {i:?}{args:?}");
    }
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("minnow-runtime-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// [`intrinsic_program`] with the calls four at a time into an accumulator tile, the form
/// the JIT runs as vector lanes where the intrinsic has a vector form.
fn tiled_intrinsic_program(intrinsic: Intrinsic, cases: &[Vec<i64>]) -> Program {
    let mut b = FuncBuilder::new("apply4");
    let (bufs, constants) = case_params(&mut b, intrinsic, cases);
    let result = intrinsic.signature().1;
    let out = b.param("out", result, cases.len(), Access::Write);
    b.for_loop("k", cases.len() / 4, |b, k| {
        let acc = b.local("acc", ScalarType::I32, 4);
        let at = |o: &Expr| k.clone() * Expr::idx(4) + o.clone();
        b.for_kind("o", 4, ForKind::Unrolled, |b, o| {
            let args = bufs.iter().map(|a| Expr::load(*a, at(&o))).collect();
            b.store(acc, o, Expr::call(intrinsic, args));
        });
        b.for_kind("o", 4, ForKind::Unrolled, |b, o| {
            b.store(out, at(&o), Expr::load(acc, o));
        });
    });
    support::one_step_program(b.finish(), constants, (result, cases.len()))
}

/// The JIT's vector forms (SMLAD as `pmaddwd`, the high-shift requantization with its
/// per-lane shifts) give the runtime's results, bit for bit, on the same cases.
#[test]
fn jit_vector_intrinsics_match_the_fixed_point_module() {
    let mut rng = support::xorshift(0x6A09_E667_F3BC_C909u64);
    for i in [
        Intrinsic::Smlad,
        Intrinsic::MultiplyByQuantizedMultiplierHighShift,
        Intrinsic::MultiplyByQuantizedMultiplierHighShiftOffset,
    ] {
        let cases = cases(i, &mut rng);
        assert_jit_matches(i, &tiled_intrinsic_program(i, &cases), &cases);
    }
}
