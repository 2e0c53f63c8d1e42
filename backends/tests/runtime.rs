//! The C runtime helpers against `minnow_ir::fixedpoint`: every intrinsic's C definition,
//! compiled with the host compiler, gives the Rust definition's result on edge cases and on
//! random inputs.

use minnow_backends::c::RUNTIME;
use minnow_ir::loops::interp::Value;
use minnow_ir::loops::{Intrinsic, ScalarType};
use std::fmt::Write;
use std::process::Command;

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
        };
        out.push(args);
    }
    out
}

#[test]
fn c_runtime_matches_the_fixed_point_module() {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut rng = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state as i64
    };
    let mut c = String::from("#include <stdint.h>\n#include <stdio.h>\n");
    c += RUNTIME;
    c += "int main(void) {\n";
    let mut want = Vec::new();
    for i in Intrinsic::ALL {
        let (params, _) = i.signature();
        for args in cases(i, &mut rng) {
            let literals: Vec<String> = args
                .iter()
                .zip(params)
                .map(|(a, t)| match t {
                    ScalarType::I64 => format!("(int64_t){a}LL"),
                    _ => format!("(int32_t){a}LL"),
                })
                .collect();
            let _ = writeln!(
                c,
                "  printf(\"%ld\\n\", (long)minnow_{}({}));",
                i.name(),
                literals.join(", ")
            );
            let values: Vec<Value> = args
                .iter()
                .zip(params)
                .map(|(a, t)| Value::Int(*a, *t))
                .collect();
            want.push(format!("{} {:?}", i.eval(&values).as_int(), (i, &args)));
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

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("minnow-runtime-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
