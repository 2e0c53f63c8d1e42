//! Random points of every op's schedule space, on real models: the scheduled program (weights
//! packed for its loop nests, SMLADs where chosen) gives TFLite Micro's golden bytes in the loop
//! interpreter.

use minnow_ir::loops::interp::ProgramInterp;
use minnow_ir::loops::reduction::{Epilogue, Reduction};
use minnow_ir::loops::Intrinsic;
use minnow_schedules::{schedule_program, Space};
use proptest::prelude::*;
use std::path::PathBuf;

fn shared(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared")
        .join(path)
}

/// `model` from the shared models, imported.
fn imported(model: &str) -> minnow_ir::Graph {
    let bytes = std::fs::read(shared(&format!("models/{model}.tflite"))).unwrap();
    minnow_ir::import::tflite::import(&bytes, model).unwrap()
}

/// `model` from the shared models, lowered to loops.
fn lowered(model: &str) -> minnow_ir::loops::Program {
    minnow_ir::lower::lower(&imported(model)).unwrap()
}

/// Schedules `model` with the space point `pick` chooses per step and checks golden vector 0.
fn check(model: &str, pick: &[u8]) {
    let mut program = lowered(model);
    let choose = |step: usize, _: &Reduction, space: &Space| {
        let choices = space.choices();
        let k = choices[pick[step % pick.len()] as usize % choices.len()];
        Some(space.schedule(&k))
    };
    let features = minnow_targets::find("cortex-m4").unwrap().features;
    schedule_program(&mut program, &features, &choose).unwrap();
    assert_golden(&program, model, &format!("picks {pick:?}"));
}

/// The scheduled `program` of `model`, run in the loop interpreter on golden input 0, gives
/// golden output 0 (`what` names the schedules in the failure).
fn assert_golden(program: &minnow_ir::loops::Program, model: &str, what: &str) {
    program.verify().unwrap();
    let golden = |f: &str| std::fs::read(shared(&format!("models/golden/{model}/{f}"))).unwrap();
    let got = ProgramInterp::new(program)
        .unwrap()
        .run(&[golden("input_0.bin")])
        .unwrap();
    assert_eq!(got[0], golden("output_0.bin"), "{model} with {what}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3))]

    #[test]
    fn random_schedules_keep_the_golden_outputs(pick in proptest::collection::vec(any::<u8>(), 1..16)) {
        for model in ["micro_speech", "ad01", "kws"] {
            check(model, &pick);
        }
    }
}

/// Schedules every op of `program` that may run as Winograd pairs (private weights and
/// bias) under a pair-blocked schedule of `pixel_block` pixels on rv32imac (or 1 where that
/// does not divide), the others by default: how many ran so, how many of those are padded,
/// and how many have a scratch block whose windows share words.
fn schedule_winograd(
    program: &mut minnow_ir::loops::Program,
    model: &str,
    pixel_block: usize,
) -> (usize, usize, usize) {
    use minnow_schedules::{winograd_allowed, Knobs, Primitive};
    let allowed: Vec<bool> = (0..program.steps.len())
        .map(|i| {
            let r = program.steps[i].reduction.as_ref();
            r.is_some_and(|r| winograd_allowed(program, i, r))
        })
        .collect();
    let (chosen, padded) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
    let shared = std::cell::Cell::new(0);
    let choose = |step: usize, r: &Reduction, space: &Space| {
        let knobs = |pixel_block| Knobs {
            channel_block: 2,
            pixel_block,
            vectorize: false,
            reduce_unroll: 1,
            pairs: true,
        };
        let choices = space.choices();
        let k = [knobs(pixel_block), knobs(1)]
            .into_iter()
            .find(|k| choices.contains(k))?;
        if !allowed[step] {
            return None;
        }
        let mut schedule = space.schedule(&k);
        schedule.steps.push(Primitive::WidenWeights);
        schedule.steps.push(Primitive::WinogradPairs);
        // A sum longer than the scratch block holds stays scalar.
        let nest = schedule.apply(r).ok()?;
        assert!(nest.winograd, "{model} step {step}");
        chosen.set(chosen.get() + 1);
        shared.set(shared.get() + usize::from(r.winograd_scratch(&nest).shares_words()));
        padded.set(padded.get() + usize::from(!r.guards.is_empty()));
        Some(schedule)
    };
    let features = minnow_targets::find("rv32imac").unwrap().features;
    schedule_program(program, &features, &choose).unwrap();
    (chosen.get(), padded.get(), shared.get())
}

/// Every op that may run as Winograd pairs (private weights and bias) does so under a
/// pair-blocked schedule, and the models still give the golden bytes: the crossed weights,
/// the cross terms moved into the bias, and the scratch block's input words, padding and
/// cross terms are exact (resnet8's 3x3 convolutions are padded, and the windows of
/// neighbouring pixels share scratch words, unblocked and blocked by two pixels).
#[test]
fn winograd_pairs_keep_the_golden_outputs() {
    for (model, pixel_block) in [("ad01", 1), ("kws", 1), ("resnet8", 1), ("resnet8", 2)] {
        let mut program = lowered(model);
        let (chosen, padded, shared) = schedule_winograd(&mut program, model, pixel_block);
        assert!(chosen > 0, "{model}: no op ran as Winograd pairs");
        if model == "resnet8" {
            assert!(padded > 0, "resnet8: no padded op ran as Winograd pairs");
            assert!(
                shared > 0,
                "resnet8: no scratch block shares words between windows"
            );
        }
        assert_golden(&program, model, "Winograd pairs");
    }
}

/// A weight of -128 as a pair's second lane (which the shared models happen not to have)
/// still runs as Winograd pairs, the inputs lifted by one and the weights' sums taken out of
/// the bias: kws and resnet8 (padded) with every seventh weight set to -128 give, scheduled
/// so, the activations the same weights give under the reference nests.
#[test]
fn winograd_pairs_lift_the_inputs_for_weights_of_minus_128() {
    use minnow_ir::loops::SlotKind;
    for model in ["kws", "resnet8"] {
        let mut graph = imported(model);
        // Before lowering, so that the biases the offsets fold into see the same weights.
        let int8 = |t: &minnow_ir::Tensor| t.ty.dtype == minnow_ir::DType::I8;
        let weights = graph.tensors().filter(|(_, t)| int8(t)).map(|(id, _)| id);
        for id in weights.collect::<Vec<_>>() {
            if let Some(data) = graph.tensor_mut(id).data.as_mut() {
                data.iter_mut().step_by(7).for_each(|b| *b = 0x80);
            }
        }
        let mut program = minnow_ir::lower::lower(&graph).unwrap();
        let input = std::fs::read(shared(&format!("models/golden/{model}/input_0.bin"))).unwrap();
        // Every activation, not only the output (softmax hides small errors).
        let run = |p: &minnow_ir::loops::Program| {
            p.verify().unwrap();
            let mut interp = ProgramInterp::new(p).unwrap();
            interp.run(std::slice::from_ref(&input)).unwrap();
            let activations =
                (0..p.slots.len()).filter(|s| !matches!(p.slots[*s].kind, SlotKind::Constant(_)));
            let slot = |s| interp.slot_bytes(minnow_ir::loops::SlotId(s));
            activations.map(slot).collect::<Vec<_>>()
        };
        let want = run(&program);
        let (chosen, _, _) = schedule_winograd(&mut program, model, 1);
        let lifted = program
            .steps
            .iter()
            .filter(|s| s.reduction.as_ref().is_some_and(|r| r.input_lift == 1))
            .count();
        assert!(
            chosen > 0 && lifted > 0,
            "{model}: {chosen} Winograd ops, {lifted} lifted"
        );
        let got = run(&program);
        for (slot, (got, want)) in got.iter().zip(&want).enumerate() {
            let wrong = got.iter().zip(want).filter(|(g, w)| g != w).count();
            assert_eq!(
                wrong, 0,
                "{model}: activation {slot} has {wrong} wrong bytes"
            );
        }
    }
}

#[test]
fn every_schedule_trace_replays_from_json() {
    let program = lowered("kws");
    for step in program.steps.iter().filter_map(|s| s.reduction.as_ref()) {
        let space = Space::of(step);
        for k in space.choices() {
            let s = space.schedule(&k);
            let replayed: minnow_schedules::Schedule =
                serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
            assert_eq!(replayed.apply(step).unwrap(), s.apply(step).unwrap());
        }
    }
}

/// With 128-bit SIMD (the JIT on the host) every convolution of kws takes a block of eight
/// channels or more, two `i32x4` accumulators per pixel or more, and its four pointwise ones
/// (unguarded 25-pixel columns) blocks of eight by five pixels with the input channels in
/// SIMD pairs; without
/// SIMD the blocks stay within a microcontroller's four accumulators, and there are no pairs.
#[test]
fn simd_defaults_block_eight_channels_or_more() {
    let program = lowered("kws");
    let simd = minnow_targets::Features {
        simd128: true,
        ..Default::default()
    };
    let scalar = minnow_targets::Features::default();
    let mut pointwise = 0;
    for (step, r) in program
        .steps
        .iter()
        .filter_map(|s| s.reduction.as_ref().map(|r| (s, r)))
    {
        let space = Space::of(r);
        let k = space.default_for(&simd);
        assert!(space.choices().contains(&k), "{}: {k:?}", step.name);
        let plain = space.default_for(&scalar);
        assert!(
            plain.channel_block * plain.pixel_block <= 4,
            "{}: {plain:?}",
            step.name
        );
        assert!(!plain.pairs, "{}: {plain:?}", step.name);
        if step.op == "CONV_2D" {
            assert!(k.channel_block >= 8, "{}: {k:?}", step.name);
            pointwise += usize::from(k.channel_block == 8 && k.pixel_block == 5 && k.pairs);
        }
    }
    assert_eq!(pointwise, 4, "kws's pointwise convolutions");
}

/// How many of `program`'s multiply-accumulate steps requantize with `scale`.
fn scaled_with(program: &minnow_ir::loops::Program, scale: Intrinsic) -> usize {
    let scales = program
        .steps
        .iter()
        .filter_map(|s| match s.reduction.as_ref()?.epilogue {
            Epilogue::Quantized { scale, .. } => Some(scale),
            Epilogue::Float { .. } => None,
        });
    scales.filter(|s| *s == scale).count()
}

/// How many of `program`'s fused residual ADDs rescale their sum by a high multiply.
fn residual_high_muls(program: &minnow_ir::loops::Program) -> usize {
    let residuals = program
        .steps
        .iter()
        .filter_map(|s| s.reduction.as_ref()?.residual.as_ref());
    residuals.filter(|r| r.high_mul_output.is_some()).count()
}

/// On a core without a 64-bit multiply-accumulate, every requantization in the offset form
/// takes the high-multiply form (these models' accumulators stay far below 2^29), and the
/// models still give the golden bytes; with SMLAL (Cortex-M4) none does. keyword_scrambled's
/// random int32 biases let most of its sums reach 2^31: only its first layer changes form.
#[test]
fn high_multiply_requantization_keeps_the_golden_outputs() {
    let offset = Intrinsic::MultiplyByQuantizedMultiplierHighShiftOffset;
    let high_mul = Intrinsic::MultiplyByQuantizedMultiplierHighMul;
    for (model, all) in [
        ("micro_speech", true),
        ("ad01", true),
        ("kws", true),
        ("keyword_scrambled", false),
    ] {
        let mut program = lowered(model);
        let quantized = scaled_with(&program, offset);
        assert!(
            quantized > 0,
            "{model}: no requantization in the offset form"
        );
        let mut m4 = program.clone();
        let features = minnow_targets::find("cortex-m4").unwrap().features;
        schedule_program(&mut m4, &features, &|_, _, _| None).unwrap();
        assert_eq!(scaled_with(&m4, high_mul), 0, "{model} on cortex-m4");
        let features = minnow_targets::find("rv32imac").unwrap().features;
        schedule_program(&mut program, &features, &|_, _, _| None).unwrap();
        let narrowed = scaled_with(&program, high_mul);
        assert!(narrowed > 0, "{model} on rv32imac");
        assert!(
            !all || narrowed == quantized,
            "{model}: {narrowed} of {quantized}"
        );
        assert_golden(&program, model, "high-multiply requantization");
    }
}

/// A convolution of 16x16 pixels with a fused residual ADD: int8 operands of 2,048 outputs,
/// so the ADD looks its scaled inputs up.
fn conv_with_residual_add() -> minnow_ir::Graph {
    use minnow_ir::op::{Activation, Op, Padding, Window};
    use minnow_ir::{DType, Quant, TensorType};
    let ty = |shape: &[usize], dtype, scale, zero_point| TensorType {
        shape: shape.to_vec(),
        dtype,
        quant: Some(Quant::PerTensor { scale, zero_point }),
    };
    let mut g = minnow_ir::Graph::new("residual");
    let x = g.add_input("x", ty(&[1, 16, 16, 4], DType::I8, 0.05, -3));
    let weights = (0..288).map(|i| (i * 37 % 251) as u8).collect();
    let w = g.add_constant("w", ty(&[8, 3, 3, 4], DType::I8, 0.02, 0), weights);
    let bias = (0..8i32)
        .flat_map(|c| (100 * c - 350).to_le_bytes())
        .collect();
    let b = g.add_constant("b", ty(&[8], DType::I32, 0.001, 0), bias);
    let addend = g.add_input("addend", ty(&[1, 16, 16, 8], DType::I8, 0.07, 4));
    let y = g.add_tensor("y", ty(&[1, 16, 16, 8], DType::I8, 0.09, -6));
    let window = Window {
        stride_h: 1,
        stride_w: 1,
        dilation_h: 1,
        dilation_w: 1,
        padding: Padding::Same,
    };
    let conv = Op::Conv2d {
        weights: minnow_ir::WeightLayout::Bytes,
        window,
        activation: Activation::Relu,
    };
    let op = Op::ResidualAdd {
        mac: Box::new(conv),
        mac_output: ty(&[1, 16, 16, 8], DType::I8, 0.04, 2),
        activation: Activation::None,
    };
    let args = vec![Some(x), Some(w), Some(b), Some(addend)];
    g.add_op(op, args, vec![y]).unwrap();
    g.outputs.push(y);
    g
}

/// On a core without a 64-bit multiply-accumulate a fused residual ADD of int8 operands
/// rescales its sum by a high multiply (the scaled inputs' sizes sum below 2^29), with the
/// reference interpreter's results on every input tried; with SMLAL (Cortex-M4) it does not.
#[test]
fn residual_adds_rescale_by_a_high_multiply_without_smlal() {
    let g = conv_with_residual_add();
    let feeds: Vec<Vec<u8>> = [1024usize, 2048]
        .iter()
        .map(|n| (0..*n).map(|i| (i * 131 % 256) as u8).collect())
        .collect();
    let want = minnow_ir::interp::Interpreter::new(&g)
        .unwrap()
        .run(&feeds)
        .unwrap();
    for (target, narrowed) in [("rv32imac", 1), ("cortex-m4", 0)] {
        let mut program = minnow_ir::lower::lower(&g).unwrap();
        let features = minnow_targets::find(target).unwrap().features;
        schedule_program(&mut program, &features, &|_, _, _| None).unwrap();
        assert_eq!(residual_high_muls(&program), narrowed, "{target}");
        program.verify().unwrap();
        let got = ProgramInterp::new(&program).unwrap().run(&feeds).unwrap();
        assert_eq!(got, want, "{target}");
    }
}

/// The rewrite leaves an op alone where a bias entry lets an accumulator reach 2^29, and
/// rewrites an op once: a second run finds the high-multiply form and changes nothing.
#[test]
fn high_multiply_requantization_only_where_exact() {
    use minnow_ir::loops::{BufferKind, SlotKind};
    use minnow_schedules::NarrowRequantization;
    let program = lowered("kws");
    let index = program
        .steps
        .iter()
        .position(|s| s.reduction.is_some())
        .unwrap();
    let r = program.steps[index].reduction.clone().unwrap();
    let mut once = (program.clone(), r.clone());
    assert!(NarrowRequantization::run(&mut once.0, index, &mut once.1));
    let mut twice = once.clone();
    assert!(!NarrowRequantization::run(
        &mut twice.0,
        index,
        &mut twice.1
    ));
    assert_eq!(twice.1, once.1);
    let mut big_bias = (program.clone(), r.clone());
    let func = &big_bias.0.funcs[big_bias.0.steps[index].func];
    let BufferKind::Param { index: param, .. } = func.buffer(r.bias.unwrap()).kind else {
        panic!("the bias is a parameter");
    };
    let slot = big_bias.0.steps[index].args[param];
    let entries = big_bias.0.slots[slot.0].len;
    let huge = (1i32 << 29).to_le_bytes().repeat(entries);
    big_bias.0.slots[slot.0].kind = SlotKind::Constant(huge);
    assert!(!NarrowRequantization::run(
        &mut big_bias.0,
        index,
        &mut big_bias.1
    ));
    assert_eq!(big_bias.1, r);
}
