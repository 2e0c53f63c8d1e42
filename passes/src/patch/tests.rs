use super::bands::{band_bounds, RowMap};
use super::*;
use crate::test_support::{bytes, int8};
use minnow_ir::interp::Interpreter;
use minnow_ir::loops::interp::ProgramInterp;

fn model(name: &str) -> Graph {
    let bytes = std::fs::read(format!("../../shared/models/{name}.tflite"))
        .or_else(|_| std::fs::read(format!("../shared/models/{name}.tflite")))
        .expect("the shared models lie beside the clone");
    minnow_ir::import::tflite::import(&bytes, name).unwrap()
}

fn golden(name: &str, file: &str) -> Vec<u8> {
    std::fs::read(format!("../../shared/models/golden/{name}/{file}"))
        .or_else(|_| std::fs::read(format!("../shared/models/golden/{name}/{file}")))
        .unwrap()
}

#[test]
fn a_window_band_reads_its_rows_and_pads_only_at_the_image_edges() {
    // 3 rows, stride 2, one row of padding above (SAME on 96 rows: 48 out).
    let map = RowMap::Window {
        filter: 3,
        stride: 2,
        pad: 0,
    };
    let top = map.input_rows(0, 12, 96);
    assert_eq!((top.first, top.rows, top.top, top.bottom), (0, 25, 0, 0));
    let bottom = map.input_rows(36, 48, 96);
    assert_eq!((bottom.first, bottom.rows, bottom.bottom), (72, 24, 1));
    let same = RowMap::Window {
        filter: 3,
        stride: 1,
        pad: 1,
    };
    let first = same.input_rows(0, 12, 48);
    assert_eq!((first.first, first.rows, first.top), (0, 13, 1));
    let middle = same.input_rows(12, 24, 48);
    assert_eq!(
        (middle.first, middle.rows, middle.top, middle.bottom),
        (11, 14, 0, 0)
    );
    assert_eq!(band_bounds(10, 4), vec![(0, 2), (2, 5), (5, 7), (7, 10)]);
    assert_eq!(band_bounds(2, 3), vec![(0, 1), (1, 2)]);
}

#[test]
fn vww_in_bands_gives_the_golden_outputs_in_a_smaller_arena() {
    let graph = model("vww");
    let (banded, report) = Patcher::default().run(&graph, Patching::Auto).unwrap();
    assert!(report.layers >= 2, "{report:?}");
    assert!(
        report.arena_after * 10 <= report.arena_before * 8,
        "{report:?}"
    );
    assert!(
        report.macs_after * 20 <= report.macs_before * 21,
        "{report:?}"
    );
    let input = golden("vww", "input_0.bin");
    let expected = golden("vww", "output_0.bin");
    let mut interp = Interpreter::new(&banded).unwrap();
    assert_eq!(
        interp.run(std::slice::from_ref(&input)).unwrap()[0],
        expected
    );
    let program = minnow_ir::lower::lower(&banded).unwrap();
    program.verify().unwrap();
    let mut run = ProgramInterp::new(&program).unwrap();
    assert_eq!(run.run(&[input]).unwrap()[0], expected);
    // The bands read their rows of the input where they lie, and write into the stage's
    // output where their rows go: no step copies.
    assert!(program
        .steps
        .iter()
        .all(|s| s.op != "SLICE" && s.op != "CONCATENATION"));
}

#[test]
fn a_model_without_an_image_stage_is_left_alone() {
    let graph = model("ad01");
    let (same, report) = Patcher::default().run(&graph, Patching::Auto).unwrap();
    assert_eq!(report.bands, 0);
    assert_eq!(same.op_count(), graph.op_count());
    let (_, off) = Patcher::default()
        .run(&model("vww"), Patching::Off)
        .unwrap();
    assert_eq!((off.bands, off.candidates), (0, 0));
}

#[test]
fn patching_parses_off_auto_and_a_band_count() {
    assert_eq!("off".parse(), Ok(Patching::Off));
    assert_eq!("auto".parse(), Ok(Patching::Auto));
    assert_eq!("4".parse(), Ok(Patching::Bands(4)));
    assert!("1".parse::<Patching>().unwrap_err().contains("2 or more"));
    assert!("rows".parse::<Patching>().is_err());
}

/// A strided SAME convolution then a VALID max pool whose output is the model's: the bands
/// write straight into the caller's output buffer.
fn conv_then_pool() -> Graph {
    use minnow_ir::{Activation, DType, Op, Padding, Quant, TensorType, Window};
    let mut g = Graph::new("conv_pool");
    let x = g.add_input("x", int8(&[1, 11, 7, 3], 0.03, 5));
    let w = g.add_constant("w", int8(&[4, 3, 3, 3], 0.02, 0), bytes(108, 1));
    let bias = TensorType {
        quant: Some(Quant::PerTensor {
            scale: 0.0006,
            zero_point: 0,
        }),
        ..TensorType::new(vec![4], DType::I32)
    };
    let b = g.add_constant("b", bias, bytes(16, 2).iter().map(|v| v & 0x7).collect());
    let y = g.add_tensor("y", int8(&[1, 6, 4, 4], 0.05, -3));
    let conv = Op::Conv2d {
        weights: minnow_ir::WeightLayout::Bytes,
        window: Window::square(2, Padding::Same),
        activation: Activation::Relu,
    };
    g.add_op(conv, vec![Some(x), Some(w), Some(b)], vec![y])
        .unwrap();
    let z = g.add_tensor("z", int8(&[1, 5, 3, 4], 0.05, -3));
    let pool = Op::MaxPool2d {
        filter_h: 2,
        filter_w: 2,
        window: Window::square(1, Padding::Valid),
        activation: Activation::None,
    };
    g.add_op(pool, vec![Some(y)], vec![z]).unwrap();
    g.outputs.push(z);
    g
}

#[test]
fn bands_ending_in_a_model_output_give_the_whole_ops_bytes() {
    let graph = conv_then_pool();
    let input = vec![bytes(11 * 7 * 3, 9)];
    let expected = Interpreter::new(&graph).unwrap().run(&input).unwrap();
    for bands in [2, 3, 5] {
        let stage = first_stage(&graph);
        assert_eq!(stage.len(), 2);
        let banded = super::bands::banded(&graph, &stage, bands).unwrap();
        let got = Interpreter::new(&banded).unwrap().run(&input).unwrap();
        assert_eq!(got, expected, "{bands} bands, graph interpreter");
        let program = minnow_ir::lower::lower(&banded).unwrap();
        program.verify().unwrap();
        let lowered = ProgramInterp::new(&program).unwrap().run(&input).unwrap();
        assert_eq!(lowered, expected, "{bands} bands, loop program");
        let views = program.slots.iter();
        let views = views.filter(|s| matches!(s.kind, minnow_ir::loops::SlotKind::View { .. }));
        assert!(
            views.count() >= 2 * bands - 1,
            "{bands} bands: parts and slices are views"
        );
    }
}
