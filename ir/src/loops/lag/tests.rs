use super::*;
use crate::loops::{Access, FuncBuilder};

/// `output[i] = input[index(i)]` over `n` elements, of the given element types, with the
/// parameters' ids.
fn copy(n: usize, out_elem: ScalarType, index: impl Fn(Expr) -> Expr) -> (Func, BufId, BufId) {
    let mut f = FuncBuilder::new("copy");
    let input = f.param("input", ScalarType::I8, n, Access::Read);
    let output = f.param("output", out_elem, n, Access::Write);
    f.for_loop("i", n, |f, i| {
        let v = Expr::load(input, index(i.clone())).cast(ScalarType::I32);
        let v = if out_elem == ScalarType::I32 {
            v
        } else {
            v.cast(out_elem)
        };
        f.store(output, i, v);
    });
    (f.finish(), input, output)
}

#[test]
fn an_element_wise_copy_lags_one_element() {
    let (func, input, output) = copy(16, ScalarType::I8, |i| i);
    assert_eq!(output_lag(&func, input, output), Some(1));
}

#[test]
fn a_reversed_copy_cannot_share_any_byte() {
    let (func, input, output) = copy(16, ScalarType::I8, |i| Expr::i32(15) - i);
    assert_eq!(output_lag(&func, input, output), Some(16));
}

#[test]
fn wider_output_elements_run_ahead_of_the_input() {
    // Element i ends at byte 4i + 4 of the output and reads byte i of the input.
    let (func, input, output) = copy(8, ScalarType::I32, |i| i);
    assert_eq!(output_lag(&func, input, output), Some(4 * 8 - 7));
}

#[test]
fn an_index_read_from_memory_has_no_bound() {
    let mut f = FuncBuilder::new("gather");
    let input = f.param("input", ScalarType::I8, 8, Access::Read);
    let table = f.param("table", ScalarType::I32, 8, Access::Read);
    let output = f.param("output", ScalarType::I8, 8, Access::Write);
    f.for_loop("i", 8, |f, i| {
        let v = Expr::load(input, Expr::load(table, i.clone()));
        f.store(output, i, v);
    });
    assert_eq!(output_lag(&f.finish(), input, output), None);
}

/// A pointwise convolution over `rows` rows of `width` pixels and 4 channels, blocked as minnow's
/// schedules do: per row, per pair of output channels, every pixel of the row reads all the
/// row's input channels before the epilogue stores.
fn pointwise(rows: usize, width: usize) -> (Func, BufId, BufId) {
    let c = 4;
    let n = rows * width * c;
    let mut f = FuncBuilder::new("pointwise");
    let input = f.param("input", ScalarType::I8, n, Access::Read);
    let weight = f.param("weight", ScalarType::I8, c * c, Access::Read);
    let output = f.param("output", ScalarType::I8, n, Access::Write);
    f.for_loop("y", rows, |f, y| {
        f.for_loop("oc_o", c / 2, |f, oc_o| {
            let acc = f.local("acc", ScalarType::I32, width * 2);
            f.for_loop("ic", c, |f, ic| {
                f.for_kind("x", width, ForKind::Unrolled, |f, x| {
                    f.for_kind("oc_i", 2, ForKind::Unrolled, |f, oc_i| {
                        let slot = x.clone() * Expr::i32(2) + oc_i.clone();
                        let at = (y.clone() * Expr::idx(width) + x.clone()) * Expr::idx(c);
                        let xv = Expr::load(input, at + ic.clone()).cast(ScalarType::I32);
                        let oc = oc_o.clone() * Expr::i32(2) + oc_i;
                        let w = Expr::load(weight, ic.clone() * Expr::idx(c) + oc);
                        let v = Expr::load(acc, slot.clone()) + xv * w.cast(ScalarType::I32);
                        f.store(acc, slot, v);
                    });
                });
            });
            f.for_kind("x", width, ForKind::Unrolled, |f, x| {
                f.for_kind("oc_i", 2, ForKind::Unrolled, |f, oc_i| {
                    let slot = x.clone() * Expr::i32(2) + oc_i.clone();
                    let at = (y.clone() * Expr::idx(width) + x) * Expr::idx(c);
                    let oc = oc_o.clone() * Expr::i32(2) + oc_i;
                    let v = Expr::load(acc, slot).cast(ScalarType::I8);
                    f.store(output, at + oc, v);
                });
            });
        });
    });
    (f.finish(), input, output)
}

#[test]
fn a_pointwise_row_overwrites_the_row_above_it() {
    // Each row is read again for every channel pair: the output keeps one row below.
    let (func, input, output) = pointwise(6, 5);
    func.verify().unwrap();
    assert_eq!(output_lag(&func, input, output), Some(5 * 4));
}

#[test]
fn a_function_too_long_to_expand_is_one_step() {
    // More rows than MAX_STEPS: the rows stay one loop, whose writes end past every read.
    let (func, input, output) = pointwise(MAX_STEPS + 1, 1);
    assert_eq!(output_lag(&func, input, output), Some((MAX_STEPS + 1) * 4));
}
