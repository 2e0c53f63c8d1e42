//! Tensor types: element types, shapes and quantization parameters.
//!
//! These are plain data. A [`TensorType`] says everything a kernel needs to know about a tensor
//! except its bytes; constants carry their bytes separately in [`crate::graph::Tensor`].

use serde::Serialize;
use std::fmt;

/// The element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    /// IEEE 754 single precision.
    F32,
    /// Signed 8-bit integer (the usual quantized activation and weight type).
    I8,
    /// Unsigned 8-bit integer (legacy asymmetric quantization).
    U8,
    /// Signed 16-bit integer (16x8 quantization, SVDF state).
    I16,
    /// Signed 32-bit integer (biases, shapes, some outputs).
    I32,
    /// Signed 64-bit integer (16x8 biases).
    I64,
}

impl DType {
    /// Size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            DType::I8 | DType::U8 => 1,
            DType::I16 => 2,
            DType::F32 | DType::I32 => 4,
            DType::I64 => 8,
        }
    }

    /// The name used in text dumps and in `inspect --json` (`int8`, `float32`, ...), which is also
    /// numpy's name for the type.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::I8 => "int8",
            DType::U8 => "uint8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::I64 => "int64",
        }
    }

    /// Smallest and largest representable integer values, for integer types.
    pub fn int_range(self) -> Option<(i64, i64)> {
        match self {
            DType::I8 => Some((i8::MIN as i64, i8::MAX as i64)),
            DType::U8 => Some((0, u8::MAX as i64)),
            DType::I16 => Some((i16::MIN as i64, i16::MAX as i64)),
            DType::I32 => Some((i32::MIN as i64, i32::MAX as i64)),
            DType::I64 => Some((i64::MIN, i64::MAX)),
            DType::F32 => None,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short = match self {
            DType::F32 => "f32",
            DType::I8 => "i8",
            DType::U8 => "u8",
            DType::I16 => "i16",
            DType::I32 => "i32",
            DType::I64 => "i64",
        };
        f.write_str(short)
    }
}

/// Affine quantization: `real = scale * (q - zero_point)`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Quant {
    /// One scale and zero point for the whole tensor.
    PerTensor {
        /// Real value of one quantization step.
        scale: f32,
        /// Quantized value that represents real zero.
        zero_point: i32,
    },
    /// One scale and zero point per slice along `axis` (per output channel for weights).
    PerChannel {
        /// One scale per slice.
        scales: Vec<f32>,
        /// One zero point per slice (zero for symmetric weights).
        zero_points: Vec<i32>,
        /// The dimension the parameters run along.
        axis: usize,
    },
}

impl Quant {
    /// The scale of slice `i` (every slice has the same scale when per-tensor).
    pub fn scale(&self, i: usize) -> f32 {
        match self {
            Quant::PerTensor { scale, .. } => *scale,
            Quant::PerChannel { scales, .. } => scales[i],
        }
    }

    /// The zero point of slice `i`.
    pub fn zero_point(&self, i: usize) -> i32 {
        match self {
            Quant::PerTensor { zero_point, .. } => *zero_point,
            Quant::PerChannel { zero_points, .. } => zero_points[i],
        }
    }

    /// Number of (scale, zero point) pairs: 1 when per-tensor.
    pub fn len(&self) -> usize {
        match self {
            Quant::PerTensor { .. } => 1,
            Quant::PerChannel { scales, .. } => scales.len(),
        }
    }

    /// Always false: a quantization has at least one parameter pair.
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl fmt::Display for Quant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Quant::PerTensor { scale, zero_point } => write!(f, "q({scale:e}, {zero_point})"),
            Quant::PerChannel {
                scales,
                zero_points,
                axis,
            } => {
                let zp_all_zero = zero_points.iter().all(|z| *z == 0);
                write!(f, "q(axis {axis}, {} scales [{:e}", scales.len(), scales[0])?;
                if scales.len() > 1 {
                    write!(f, " .. {:e}", scales[scales.len() - 1])?;
                }
                f.write_str("]")?;
                if !zp_all_zero {
                    write!(f, ", zero points {zero_points:?}")?;
                }
                f.write_str(")")
            }
        }
    }
}

/// Everything about a tensor but its bytes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TensorType {
    /// Dimensions, outermost first (NHWC for images).
    pub shape: Vec<usize>,
    /// Element type.
    pub dtype: DType,
    /// Quantization, if the tensor is quantized.
    pub quant: Option<Quant>,
}

impl TensorType {
    /// A type without quantization.
    pub fn new(shape: Vec<usize>, dtype: DType) -> Self {
        TensorType {
            shape,
            dtype,
            quant: None,
        }
    }

    /// Number of elements (1 for a scalar).
    pub fn elements(&self) -> usize {
        self.shape.iter().product()
    }

    /// Size of the tensor's data in bytes.
    pub fn bytes(&self) -> usize {
        self.elements() * self.dtype.size()
    }

    /// The per-tensor scale and zero point, if the tensor has per-tensor quantization.
    pub fn per_tensor(&self) -> Option<(f32, i32)> {
        match &self.quant {
            Some(Quant::PerTensor { scale, zero_point }) => Some((*scale, *zero_point)),
            _ => None,
        }
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[", self.dtype)?;
        for (i, d) in self.shape.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")?;
        if let Some(q) = &self.quant {
            write!(f, " {q}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_compact_and_stable() {
        let t = TensorType {
            shape: vec![1, 49, 10, 1],
            dtype: DType::I8,
            quant: Some(Quant::PerTensor {
                scale: 0.5,
                zero_point: 83,
            }),
        };
        assert_eq!(t.to_string(), "i8[1,49,10,1] q(5e-1, 83)");
        assert_eq!(t.bytes(), 490);
    }
}
