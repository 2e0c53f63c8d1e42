//! ONNX conformance: the ONNX project's own backend node tests (../shared/onnx/node, 221 cases
//! for the operators minnow imports) through the importer, the reference interpreter and the
//! whole compiler (graph rewriting, lowering, default schedules, memory plan) JIT-compiled for
//! this machine. Float outputs must be within rtol 1e-3 / atol 1e-5, integer outputs exact.
//!
//! Every case either passes on both engines or is refused with a clear error whose reason is
//! listed in [`UNSUPPORTED`]; a case that runs and gives a wrong answer fails the test, and so
//! does a case whose status differs from the list (a new refusal, or a listed one that now
//! passes: update the list and the README's table). The inputs an operator needs as constants
//! (weights, shapes, pads, scales) are compiled in from the test data
//! (`ImportOptions::constants`), as a microcontroller build would compile them in.

mod common;

use minnow_autotune::compile::{compile, Schedules};
use minnow_backends::jit::JitProgram;
use minnow_ir::import::onnx::{self, ImportOptions};
use minnow_ir::interp::Interpreter;
use minnow_ir::types::{DType, TensorType};
use minnow_passes::qdq::QdqFolder;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Cases minnow refuses, with a part of the reason the refusal must give. Grouped by why.
const UNSUPPORTED: &[(&str, &str)] = &[
    // ONNX's wrapping integer arithmetic on plain (unquantized) integers has no kernel.
    ("test_add_int16", "int16 Add is not supported"),
    ("test_add_int8", "int8 Add is not supported"),
    ("test_add_uint8", "uint8 Add is not supported"),
    ("test_sub_int16", "int16 Sub is not supported"),
    ("test_sub_int8", "int8 Sub is not supported"),
    ("test_sub_uint8", "uint8 Sub is not supported"),
    ("test_mul_int16", "int16 Mul is not supported"),
    ("test_mul_int8", "int8 Mul is not supported"),
    ("test_mul_uint8", "uint8 Mul is not supported"),
    ("test_div_int16", "int16 Div is not supported"),
    ("test_div_int32_trunc", "int32 Div is not supported"),
    ("test_div_int8", "int8 Div is not supported"),
    ("test_div_uint8", "uint8 Div is not supported"),
    // Element types a microcontroller build does not use.
    ("test_add_uint16", "UINT16 is not supported"),
    ("test_add_uint32", "UINT32 is not supported"),
    ("test_add_uint64", "UINT64 is not supported"),
    ("test_sub_uint16", "UINT16 is not supported"),
    ("test_sub_uint32", "UINT32 is not supported"),
    ("test_sub_uint64", "UINT64 is not supported"),
    ("test_mul_uint16", "UINT16 is not supported"),
    ("test_mul_uint32", "UINT32 is not supported"),
    ("test_mul_uint64", "UINT64 is not supported"),
    ("test_div_uint16", "UINT16 is not supported"),
    ("test_div_uint32", "UINT32 is not supported"),
    ("test_div_uint64", "UINT64 is not supported"),
    (
        "test_dequantizelinear_e4m3fn",
        "FLOAT8E4M3FN is not supported",
    ),
    (
        "test_dequantizelinear_e4m3fn_float16",
        "FLOAT8E4M3FN is not supported",
    ),
    (
        "test_dequantizelinear_e4m3fn_zero_point",
        "FLOAT8E4M3FN is not supported",
    ),
    ("test_dequantizelinear_e5m2", "FLOAT8E5M2 is not supported"),
    (
        "test_dequantizelinear_float4e2m1",
        "FLOAT4E2M1 is not supported",
    ),
    ("test_dequantizelinear_int2", "INT2 is not supported"),
    ("test_dequantizelinear_int4", "INT4 is not supported"),
    ("test_dequantizelinear_uint16", "UINT16 is not supported"),
    ("test_dequantizelinear_uint2", "UINT2 is not supported"),
    ("test_dequantizelinear_uint4", "UINT4 is not supported"),
    (
        "test_quantizelinear_e4m3fn",
        "FLOAT8E4M3FN is not supported",
    ),
    ("test_quantizelinear_e5m2", "FLOAT8E5M2 is not supported"),
    (
        "test_quantizelinear_float4e2m1",
        "FLOAT4E2M1 is not supported",
    ),
    ("test_quantizelinear_int2", "INT2 is not supported"),
    ("test_quantizelinear_int4", "INT4 is not supported"),
    ("test_quantizelinear_uint16", "UINT16 is not supported"),
    ("test_quantizelinear_uint2", "UINT2 is not supported"),
    ("test_quantizelinear_uint4", "UINT4 is not supported"),
    (
        "test_qlinearmatmul_2D_int8_float16",
        "FLOAT16 is not supported",
    ),
    (
        "test_qlinearmatmul_2D_uint8_float16",
        "FLOAT16 is not supported",
    ),
    (
        "test_qlinearmatmul_3D_int8_float16",
        "FLOAT16 is not supported",
    ),
    (
        "test_qlinearmatmul_3D_uint8_float16",
        "FLOAT16 is not supported",
    ),
    // Quantized kernels are TFLite's int8 ones.
    (
        "test_qlinearconv",
        "uint8 activations with uint8 weights are not supported",
    ),
    ("test_qlinearmatmul_2D_uint8_float32", "uint8 activations"),
    ("test_qlinearmatmul_3D_uint8_float32", "uint8 activations"),
    ("test_quantizelinear_axis", "per-axis quantization"),
    ("test_dequantizelinear_axis", "per-axis quantization"),
    (
        "test_quantizelinear_blocked_asymmetric",
        "blocked quantization",
    ),
    (
        "test_quantizelinear_blocked_symmetric",
        "blocked quantization",
    ),
    ("test_dequantizelinear_blocked", "blocked quantization"),
    // Not in minnow's operator list (the generator includes them with the quantized ops).
    (
        "test_convinteger_with_padding",
        "ConvInteger, which minnow does not support",
    ),
    (
        "test_convinteger_without_padding",
        "ConvInteger, which minnow does not support",
    ),
    (
        "test_matmulinteger",
        "MatMulInteger, which minnow does not support",
    ),
    // 3-D windows, dilated pooling, argmax.
    (
        "test_averagepool_3d_default",
        "only 1-D (NCL) and 2-D (NCHW) pooling",
    ),
    (
        "test_averagepool_3d_dilations_large_count_include_pad_is_0_ceil_mode_is_False",
        "only 1-D (NCL) and 2-D (NCHW) pooling",
    ),
    (
        "test_averagepool_3d_dilations_large_count_include_pad_is_0_ceil_mode_is_True",
        "only 1-D (NCL) and 2-D (NCHW) pooling",
    ),
    (
        "test_averagepool_3d_dilations_large_count_include_pad_is_1_ceil_mode_is_False",
        "only 1-D (NCL) and 2-D (NCHW) pooling",
    ),
    (
        "test_averagepool_3d_dilations_large_count_include_pad_is_1_ceil_mode_is_True",
        "only 1-D (NCL) and 2-D (NCHW) pooling",
    ),
    (
        "test_averagepool_3d_dilations_small",
        "only 1-D (NCL) and 2-D (NCHW) pooling",
    ),
    (
        "test_maxpool_3d_default",
        "only 1-D (NCL) and 2-D (NCHW) pooling",
    ),
    (
        "test_maxpool_3d_dilations",
        "only 1-D (NCL) and 2-D (NCHW) pooling",
    ),
    (
        "test_maxpool_3d_dilations_use_ref_impl",
        "only 1-D (NCL) and 2-D (NCHW) pooling",
    ),
    (
        "test_maxpool_3d_dilations_use_ref_impl_large",
        "only 1-D (NCL) and 2-D (NCHW) pooling",
    ),
    (
        "test_averagepool_2d_dilations",
        "dilations [2, 2] are not supported for pooling",
    ),
    (
        "test_maxpool_2d_dilations",
        "dilations [2, 2] are not supported for pooling",
    ),
    (
        "test_maxpool_with_argmax_2d_precomputed_pads",
        "2 outputs are used",
    ),
    (
        "test_maxpool_with_argmax_2d_precomputed_strides",
        "2 outputs are used",
    ),
    // A batched quantized matrix product (BATCH_MATMUL is float).
    (
        "test_qlinearmatmul_3D_int8_float32",
        "a batch of different matrices",
    ),
    // Training mode and data-dependent layout ops.
    ("test_batchnorm_epsilon_training_mode", "training mode"),
    ("test_batchnorm_example_training_mode", "training mode"),
    ("test_constant_pad", "constant value 1.2 is not supported"),
    (
        "test_constant_pad_axes",
        "constant value 1.2 is not supported",
    ),
    (
        "test_constant_pad_negative_axes",
        "constant value 1.2 is not supported",
    ),
    ("test_edge_pad", "mode \"edge\" is not supported"),
    ("test_reflect_pad", "mode \"reflect\" is not supported"),
    ("test_wrap_pad", "mode \"wrap\" is not supported"),
    (
        "test_reshape_allowzero_reordered",
        "empty tensors are not supported",
    ),
];

/// What happened to one case.
#[derive(Debug)]
enum Outcome {
    Passed,
    Refused(String),
    Wrong(String),
}

fn node_dir() -> PathBuf {
    common::shared().join("onnx/node")
}

/// The `input_<j>.pb` / `output_<j>.pb` files of a data set, in order.
fn tensors(dir: &Path, prefix: &str) -> Vec<(String, TensorType, Vec<u8>)> {
    (0..)
        .map(|j| dir.join(format!("{prefix}_{j}.pb")))
        .take_while(|p| p.exists())
        .map(|p| onnx::decode_tensor(&std::fs::read(&p).unwrap()).unwrap())
        .collect()
}

/// Whether `got` matches `expected` (type, size, then values within the tolerance).
fn compare(
    got: &[u8],
    expected: &(String, TensorType, Vec<u8>),
    engine: &str,
) -> Result<(), String> {
    let (name, ty, want) = expected;
    if got.len() != want.len() {
        return Err(format!(
            "{engine}: output {name} has {} bytes, expected {}",
            got.len(),
            want.len()
        ));
    }
    if ty.dtype != DType::F32 {
        return match got == want.as_slice() {
            true => Ok(()),
            false => Err(format!(
                "{engine}: output {name} differs (exact {} expected)",
                ty.dtype.name()
            )),
        };
    }
    let floats = |b: &[u8]| -> Vec<f32> {
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    for (i, (g, w)) in floats(got).iter().zip(floats(want)).enumerate() {
        let close = (g - w).abs() <= 1e-5 + 1e-3 * w.abs() || (g.is_nan() && w.is_nan());
        if !close {
            return Err(format!("{engine}: output {name}[{i}] is {g}, expected {w}"));
        }
    }
    Ok(())
}

/// Runs one case through the interpreter and the JIT-compiled program.
fn run_case(dir: &Path) -> Outcome {
    let model = std::fs::read(dir.join("model.onnx")).unwrap();
    let data = dir.join("test_data_set_0");
    let names = onnx::input_names(&model).unwrap();
    let mut options = ImportOptions::default();
    for (j, name) in names.iter().enumerate() {
        let bytes = std::fs::read(data.join(format!("input_{j}.pb"))).unwrap();
        options.constants.insert(name.clone(), bytes);
    }
    let case = dir.file_name().unwrap().to_string_lossy().to_string();
    let graph = match onnx::import_with(&model, &case, &options) {
        Ok(g) => QdqFolder::default().run(&g).unwrap().0,
        Err(e) => return Outcome::Refused(e.to_string()),
    };
    // The import accepted every type the graph reads, so its test data decodes.
    let (inputs, outputs) = (tensors(&data, "input"), tensors(&data, "output"));
    let by_name: BTreeMap<&str, &Vec<u8>> = names
        .iter()
        .map(String::as_str)
        .zip(inputs.iter().map(|t| &t.2))
        .collect();
    let feed: Vec<Vec<u8>> = graph
        .inputs
        .iter()
        .map(|t| by_name[graph.tensor(*t).name.as_str()].clone())
        .collect();
    let mut interp = match Interpreter::new(&graph) {
        Ok(i) => i,
        Err(e) => return Outcome::Refused(e.to_string()),
    };
    let got = interp.run(&feed).unwrap();
    for (g, want) in got.iter().zip(&outputs) {
        if let Err(e) = compare(g, want, "interpreter") {
            return Outcome::Wrong(e);
        }
    }
    let host = minnow_targets::find("host").unwrap();
    let compiled = match compile(
        &graph,
        "case",
        &host,
        minnow_passes::patch::Patching::Off,
        Schedules::Default,
    ) {
        Ok(c) => c,
        Err(e) => return Outcome::Refused(e.to_string()),
    };
    let mut jit = JitProgram::compile(&compiled.program, &compiled.plan).unwrap();
    let got = jit.run(&feed).unwrap();
    for (g, want) in got.iter().zip(&outputs) {
        if let Err(e) = compare(g, want, "compiled (JIT)") {
            return Outcome::Wrong(e);
        }
    }
    Outcome::Passed
}

/// The operator a case tests, from its name.
fn op_of(dir: &Path) -> String {
    let name = dir.file_name().unwrap().to_string_lossy().to_string();
    OPS.iter()
        .filter(|(prefix, _)| name.starts_with(prefix))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, op)| op.to_string())
        .unwrap_or(name)
}

/// Case-name prefixes and the operator they test.
const OPS: &[(&str, &str)] = &[
    ("test_add", "Add"),
    ("test_averagepool", "AveragePool"),
    ("test_basic_conv", "Conv"),
    ("test_conv", "Conv"),
    ("test_batchnorm", "BatchNormalization"),
    ("test_clip", "Clip"),
    ("test_concat", "Concat"),
    ("test_constant_pad", "Pad"),
    ("test_edge_pad", "Pad"),
    ("test_reflect_pad", "Pad"),
    ("test_wrap_pad", "Pad"),
    ("test_convinteger", "ConvInteger"),
    ("test_dequantizelinear", "DequantizeLinear"),
    ("test_div", "Div"),
    ("test_flatten", "Flatten"),
    ("test_gemm", "Gemm"),
    ("test_globalaveragepool", "GlobalAveragePool"),
    ("test_matmul", "MatMul"),
    ("test_matmulinteger", "MatMulInteger"),
    ("test_maxpool", "MaxPool"),
    ("test_mul", "Mul"),
    ("test_qlinearconv", "QLinearConv"),
    ("test_qlinearmatmul", "QLinearMatMul"),
    ("test_quantizelinear", "QuantizeLinear"),
    ("test_relu", "Relu"),
    ("test_reshape", "Reshape"),
    ("test_sigmoid", "Sigmoid"),
    ("test_softmax", "Softmax"),
    ("test_squeeze", "Squeeze"),
    ("test_sub", "Sub"),
    ("test_tanh", "Tanh"),
    ("test_transpose", "Transpose"),
    ("test_unsqueeze", "Unsqueeze"),
];

#[test]
fn onnx_backend_node_tests() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(node_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("model.onnx").exists())
        .collect();
    dirs.sort();
    assert_eq!(dirs.len(), 221, "the shared ONNX node tests are incomplete");
    let expected: BTreeMap<&str, &str> = UNSUPPORTED.iter().copied().collect();
    let mut problems = Vec::new();
    let mut per_op: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let outcome = run_case(dir);
        let entry = per_op.entry(op_of(dir)).or_default();
        entry.1 += 1;
        match (&outcome, expected.get(name.as_str())) {
            (Outcome::Passed, None) => entry.0 += 1,
            (Outcome::Passed, Some(_)) => {
                problems.push(format!("{name}: passes now; remove it from UNSUPPORTED"))
            }
            (Outcome::Refused(why), Some(reason)) if why.contains(reason) => {}
            (Outcome::Refused(why), _) => problems.push(format!("{name}: refused: {why}")),
            (Outcome::Wrong(why), _) => problems.push(format!("{name}: WRONG ANSWER: {why}")),
        }
    }
    let mut table = String::from("| operator | passed / cases |\n|---|---|\n");
    for (op, (passed, total)) in &per_op {
        table += &format!("| {op} | {passed} / {total} |\n");
    }
    let passed: usize = per_op.values().map(|p| p.0).sum();
    println!("{table}| **all** | **{passed} / {}** |", dirs.len());
    assert!(
        problems.is_empty(),
        "{} cases:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
