//! The JIT's unrolling, register tiles and vector loops against the loop interpreter, on
//! random multiply-accumulate tiles: some vectorize (unit-stride weights, whole vectors,
//! SMLADs of 16-bit pairs one word apart), others must not (a stride of two, a tile of
//! three, a lane reading what another lane wrote, a serial loop), and every one must give
//! the interpreter's bytes.

use minnow_backends::jit::JitProgram;
use minnow_ir::loops::interp::ProgramInterp;
use minnow_ir::loops::{Access, Expr, ForKind, Func, FuncBuilder, Intrinsic, ScalarType};
use minnow_passes::memory::MemoryPlanner;
use proptest::prelude::*;

mod support;

/// One random tile: `pixels` outputs of `channels` accumulators over `depth` inputs.
#[derive(Clone, Debug)]
struct Tile {
    pixels: usize,
    depth: usize,
    channels: usize,
    kind: ForKind,
    stride: usize,
    weights: ScalarType,
    /// 0: plain; 1: adds `acc[0]` (read across lanes); 2: clamps with a minimum and maximum;
    /// 3: SMLADs of words of pairs (the weights then are bytes, four per element).
    twist: u8,
    seed: u64,
}

fn tiles() -> impl Strategy<Value = Tile> {
    (
        1usize..4,
        1usize..6,
        prop::sample::select(vec![1usize, 2, 3, 4, 8, 12]),
        prop::sample::select(vec![
            ForKind::Unrolled,
            ForKind::Serial,
            ForKind::Vectorized { lanes: 4 },
        ]),
        1usize..3,
        prop::sample::select(vec![ScalarType::I8, ScalarType::I32]),
        0u8..4,
        any::<u64>(),
    )
        .prop_map(
            |(pixels, depth, channels, kind, stride, weights, twist, seed)| Tile {
                pixels,
                depth,
                channels,
                kind,
                stride,
                weights,
                twist,
                seed,
            },
        )
}

/// Bytes per weight element and its type: a word of pairs for the SMLAD twist.
fn weight_elem(t: &Tile) -> (ScalarType, usize) {
    match t.twist {
        3 => (ScalarType::I8, 4),
        _ => (t.weights, 1),
    }
}

/// The tile's loop function: `out[p][o] = sum_i x[p][i] * w[i][o * stride]` (plus the twist).
fn tile_func(t: &Tile) -> Func {
    let mut f = FuncBuilder::new("tile");
    // A word load of the last input reads three bytes past it.
    let x = f.param("x", ScalarType::I8, t.pixels * t.depth + 3, Access::Read);
    let (elem, words) = weight_elem(t);
    let w_len = t.depth * t.channels * t.stride * words;
    let w = f.param("w", elem, w_len, Access::Read);
    let out = f.param("out", ScalarType::I32, t.pixels * t.channels, Access::Write);
    f.for_loop("p", t.pixels, |f, p| {
        let acc = f.local("acc", ScalarType::I32, t.channels);
        f.for_kind("o", t.channels, ForKind::Unrolled, |f, o| {
            f.store(acc, o, Expr::i32(7));
        });
        f.for_loop("i", t.depth, |f, i| {
            f.for_kind("o", t.channels, t.kind, |f, o| {
                let xi = p.clone() * Expr::idx(t.depth) + i.clone();
                let row = i * Expr::idx(t.channels * t.stride * words);
                let wo = o.clone() * Expr::idx(t.stride * words) + row;
                let acc_o = Expr::load(acc, o.clone());
                let sum = match t.twist {
                    3 => {
                        let (xw, ww) = (Expr::load_word(x, xi), Expr::load_word(w, wo));
                        Expr::call(Intrinsic::Smlad, vec![xw, ww, acc_o])
                    }
                    twist => {
                        let xi = Expr::load(x, xi).cast(ScalarType::I32);
                        let sum = acc_o + xi * Expr::load(w, wo).cast(ScalarType::I32);
                        match twist {
                            1 => sum + Expr::load(acc, Expr::idx(0)),
                            2 => sum.clamp(Expr::i32(-5000), Expr::i32(5000)),
                            _ => sum,
                        }
                    }
                };
                f.store(acc, o, sum);
            });
        });
        f.for_kind("o", t.channels, ForKind::Unrolled, |f, o| {
            let at = p.clone() * Expr::idx(t.channels) + o.clone();
            f.store(out, at, Expr::load(acc, o));
        });
    });
    f.finish()
}

fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut rng = support::xorshift(seed | 1);
    (0..n).map(|_| rng() as u8).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn jit_tiles_match_the_loop_interpreter(t in tiles()) {
        let (elem, words) = weight_elem(&t);
        let w_bytes = t.depth * t.channels * t.stride * words * elem.size();
        let constants = vec![
            (ScalarType::I8, bytes(t.pixels * t.depth + 3, t.seed)),
            (elem, bytes(w_bytes, t.seed.rotate_left(17))),
        ];
        let program = support::one_step_program(
            tile_func(&t),
            constants,
            (ScalarType::I32, t.pixels * t.channels),
        );
        program.verify().map_err(TestCaseError::fail)?;
        let plan = MemoryPlanner::default().run(&program);
        let mut jit = JitProgram::compile(&program, &plan).unwrap();
        let mut interp = ProgramInterp::new(&program).unwrap();
        prop_assert_eq!(jit.run(&[]).unwrap(), interp.run(&[]).unwrap());
    }
}
