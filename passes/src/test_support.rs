//! Helpers the passes' unit tests share: small int8 tensors and deterministic bytes.

use minnow_ir::{DType, Quant, TensorType};

/// An int8 tensor type of `shape` with per-tensor quantization.
pub fn int8(shape: &[usize], scale: f32, zero_point: i32) -> TensorType {
    TensorType {
        shape: shape.to_vec(),
        dtype: DType::I8,
        quant: Some(Quant::PerTensor { scale, zero_point }),
    }
}

/// Deterministic pseudo-random bytes.
pub fn bytes(n: usize, seed: u32) -> Vec<u8> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 24) as u8
        })
        .collect()
}
