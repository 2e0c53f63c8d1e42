//! Typed tensor storage for the interpreter, and conversion to and from little-endian bytes.

use crate::types::DType;

/// The elements of one tensor, in its own type.
#[derive(Clone, Debug, PartialEq)]
pub enum Buffer {
    /// float32 elements.
    F32(Vec<f32>),
    /// int8 elements.
    I8(Vec<i8>),
    /// uint8 elements.
    U8(Vec<u8>),
    /// int16 elements.
    I16(Vec<i16>),
    /// int32 elements.
    I32(Vec<i32>),
    /// int64 elements.
    I64(Vec<i64>),
}

macro_rules! le_decode {
    ($bytes:expr, $t:ty) => {
        $bytes
            .chunks_exact(std::mem::size_of::<$t>())
            .map(|c| <$t>::from_le_bytes(c.try_into().expect("chunk has the element's size")))
            .collect()
    };
}

impl Buffer {
    /// `n` zeros of type `dtype`.
    pub fn zeros(dtype: DType, n: usize) -> Buffer {
        match dtype {
            DType::F32 => Buffer::F32(vec![0.0; n]),
            DType::I8 => Buffer::I8(vec![0; n]),
            DType::U8 => Buffer::U8(vec![0; n]),
            DType::I16 => Buffer::I16(vec![0; n]),
            DType::I32 => Buffer::I32(vec![0; n]),
            DType::I64 => Buffer::I64(vec![0; n]),
        }
    }

    /// Decodes little-endian bytes (a whole number of elements).
    pub fn from_le_bytes(dtype: DType, bytes: &[u8]) -> Buffer {
        match dtype {
            DType::F32 => Buffer::F32(le_decode!(bytes, f32)),
            DType::I8 => Buffer::I8(bytes.iter().map(|b| *b as i8).collect()),
            DType::U8 => Buffer::U8(bytes.to_vec()),
            DType::I16 => Buffer::I16(le_decode!(bytes, i16)),
            DType::I32 => Buffer::I32(le_decode!(bytes, i32)),
            DType::I64 => Buffer::I64(le_decode!(bytes, i64)),
        }
    }

    /// Encodes the elements as little-endian bytes.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        match self {
            Buffer::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Buffer::I8(v) => v.iter().map(|x| *x as u8).collect(),
            Buffer::U8(v) => v.clone(),
            Buffer::I16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Buffer::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Buffer::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            Buffer::F32(_) => DType::F32,
            Buffer::I8(_) => DType::I8,
            Buffer::U8(_) => DType::U8,
            Buffer::I16(_) => DType::I16,
            Buffer::I32(_) => DType::I32,
            Buffer::I64(_) => DType::I64,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Buffer::F32(v) => v.len(),
            Buffer::I8(v) => v.len(),
            Buffer::U8(v) => v.len(),
            Buffer::I16(v) => v.len(),
            Buffer::I32(v) => v.len(),
            Buffer::I64(v) => v.len(),
        }
    }

    /// True when the buffer holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Integer elements widened to `i64` (`None` for float buffers).
    pub fn to_i64(&self) -> Option<Vec<i64>> {
        Some(match self {
            Buffer::F32(_) => return None,
            Buffer::I8(v) => v.iter().map(|x| *x as i64).collect(),
            Buffer::U8(v) => v.iter().map(|x| *x as i64).collect(),
            Buffer::I16(v) => v.iter().map(|x| *x as i64).collect(),
            Buffer::I32(v) => v.iter().map(|x| *x as i64).collect(),
            Buffer::I64(v) => v.clone(),
        })
    }

    /// Float elements (`None` for integer buffers).
    pub fn as_f32(&self) -> Option<&[f32]> {
        match self {
            Buffer::F32(v) => Some(v),
            _ => None,
        }
    }

    /// Builds a buffer of `dtype` from values already clamped to its range (integers) or any
    /// float values (`F32`).
    pub fn from_i64(dtype: DType, values: impl Iterator<Item = i64>) -> Buffer {
        match dtype {
            DType::F32 => Buffer::F32(values.map(|v| v as f32).collect()),
            DType::I8 => Buffer::I8(values.map(|v| v as i8).collect()),
            DType::U8 => Buffer::U8(values.map(|v| v as u8).collect()),
            DType::I16 => Buffer::I16(values.map(|v| v as i16).collect()),
            DType::I32 => Buffer::I32(values.map(|v| v as i32).collect()),
            DType::I64 => Buffer::I64(values.collect()),
        }
    }

    /// Copies elements `src` of `self` into positions `dst` of `out` (same type), for the data
    /// movement ops (transpose, pad, concat).
    pub fn gather_into(&self, out: &mut Buffer, pairs: impl Iterator<Item = (usize, usize)>) {
        macro_rules! gather {
            ($a:expr, $b:expr) => {
                for (dst, src) in pairs {
                    $b[dst] = $a[src];
                }
            };
        }
        match (self, out) {
            (Buffer::F32(a), Buffer::F32(b)) => gather!(a, b),
            (Buffer::I8(a), Buffer::I8(b)) => gather!(a, b),
            (Buffer::U8(a), Buffer::U8(b)) => gather!(a, b),
            (Buffer::I16(a), Buffer::I16(b)) => gather!(a, b),
            (Buffer::I32(a), Buffer::I32(b)) => gather!(a, b),
            (Buffer::I64(a), Buffer::I64(b)) => gather!(a, b),
            _ => unreachable!("the verifier guarantees data movement keeps the element type"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip() {
        let b = Buffer::I16(vec![-2, 300]);
        let bytes = b.to_le_bytes();
        assert_eq!(bytes, vec![0xfe, 0xff, 0x2c, 0x01]);
        assert_eq!(Buffer::from_le_bytes(DType::I16, &bytes), b);
    }
}
