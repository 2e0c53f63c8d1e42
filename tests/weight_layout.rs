//! The graph rewriter's weight layouts (`choose-weight-layout`) end to end: which ops of kws
//! store their weights widened on Cortex-M4, that a target with little flash gets none, and
//! that both programs give TFLite Micro's golden bytes.

mod common;

use common::*;
use minnow_autotune::compile::{compile, constant_flash, Compiled, Schedules, FLASH_SHARE};
use minnow_backends::jit::JitProgram;
use minnow_ir::WeightLayout;
use minnow_passes::patch::Patching;
use minnow_targets::Target;

fn kws() -> minnow_ir::Graph {
    let bytes = std::fs::read(model_path("kws")).unwrap();
    minnow_ir::import::tflite::import(&bytes, "kws").unwrap()
}

/// The layouts of the program's multiply-accumulate steps, by TFLite op name.
fn layouts(c: &Compiled) -> Vec<(String, WeightLayout)> {
    let steps = c.program.steps.iter();
    let reductions = steps.filter_map(|s| Some((s.op.clone(), s.reduction.as_ref()?)));
    reductions.map(|(op, r)| (op, r.weight_layout)).collect()
}

fn assert_golden(c: &Compiled) {
    let mut jit = JitProgram::compile(&c.program, &c.plan).unwrap();
    let got = jit.run(&[golden("kws", "input_0.bin")]).unwrap();
    assert_eq!(got[0], golden("kws", "output_0.bin"));
}

#[test]
fn kws_widens_its_convolutions_where_the_flash_allows() {
    let graph = kws();
    let m4 = minnow_targets::find("cortex-m4").unwrap();
    let roomy = compile(&graph, "kws", &m4, Patching::Off, Schedules::Default).unwrap();
    assert!(roomy.rewrite.applied("choose-weight-layout") > 0);
    let chosen = layouts(&roomy);
    // Convolutions over many pixels widen; the fully connected layer, whose weights are read
    // once, keeps bytes.
    assert!(chosen
        .iter()
        .any(|(op, l)| op == "CONV_2D" && *l == WeightLayout::Wide));
    assert!(chosen
        .iter()
        .all(|(op, l)| op != "FULLY_CONNECTED" || *l == WeightLayout::Bytes));
    assert_golden(&roomy);
    // A part whose flash holds the weights in bytes and no more: nothing widens.
    let bytes = constant_flash(&graph) as f64;
    let tight = Target {
        flash_bytes: (bytes / FLASH_SHARE) as u64 + 1,
        ..m4
    };
    let fitted = compile(&graph, "kws", &tight, Patching::Off, Schedules::Default).unwrap();
    assert!(
        layouts(&fitted)
            .iter()
            .all(|(_, l)| *l == WeightLayout::Bytes),
        "{:?}",
        layouts(&fitted)
    );
    assert_golden(&fitted);
}
