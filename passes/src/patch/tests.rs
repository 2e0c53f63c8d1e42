use super::bands::{band_bounds, RowMap};
use super::*;
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
