//! A small builder of ONNX models from the generated protobuf types, for tests that need a
//! model no file holds (a convolution chain, a QDQ graph, a broken model).

#![allow(dead_code)]

use minnow_ir::import::onnx::proto::{
    self, tensor_shape_proto::dimension, tensor_shape_proto::Dimension, type_proto, AttributeProto,
    GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto,
    TypeProto, ValueInfoProto,
};
use prost::Message;

/// ONNX element type codes.
pub const FLOAT: i32 = 1;
/// uint8.
pub const UINT8: i32 = 2;
/// int8.
pub const INT8: i32 = 3;
/// int32.
pub const INT32: i32 = 6;
/// int64.
pub const INT64: i32 = 7;

/// A graph being built: nodes, initializers, inputs and outputs.
#[derive(Default)]
pub struct Builder {
    graph: GraphProto,
    opset: i64,
}

/// A value's type: element type code and dimensions (a negative dimension is symbolic).
pub fn value(name: &str, elem: i32, dims: &[i64]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(if *d < 0 {
                dimension::Value::DimParam("N".into())
            } else {
                dimension::Value::DimValue(*d)
            }),
            denotation: None,
        })
        .collect();
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem),
                shape: Some(TensorShapeProto { dim }),
            })),
            denotation: None,
        }),
        doc_string: None,
    }
}

/// An `INTS` attribute.
pub fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(proto::attribute_proto::AttributeType::Ints as i32),
        ints: v.to_vec(),
        ..Default::default()
    }
}

/// An `INT` attribute.
pub fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(proto::attribute_proto::AttributeType::Int as i32),
        i: Some(v),
        ..Default::default()
    }
}

/// A float tensor.
pub fn floats(name: &str, dims: &[i64], v: &[f32]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(FLOAT),
        float_data: v.to_vec(),
        ..Default::default()
    }
}

/// An integer tensor of type `elem` (int8, uint8, int32 go in `int32_data`; int64 in
/// `int64_data`).
pub fn integers(name: &str, elem: i32, dims: &[i64], v: &[i64]) -> TensorProto {
    let mut t = TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(elem),
        ..Default::default()
    };
    if elem == INT64 {
        t.int64_data = v.to_vec();
    } else {
        t.int32_data = v.iter().map(|x| *x as i32).collect();
    }
    t
}

impl Builder {
    /// An empty graph for `opset`.
    pub fn new(opset: i64) -> Builder {
        Builder {
            graph: GraphProto {
                name: Some("test".into()),
                ..Default::default()
            },
            opset,
        }
    }

    /// Adds a graph input.
    pub fn input(mut self, v: ValueInfoProto) -> Self {
        self.graph.input.push(v);
        self
    }

    /// Adds a graph output.
    pub fn output(mut self, v: ValueInfoProto) -> Self {
        self.graph.output.push(v);
        self
    }

    /// Adds an initializer.
    pub fn init(mut self, t: TensorProto) -> Self {
        self.graph.initializer.push(t);
        self
    }

    /// Adds a node.
    pub fn node(
        mut self,
        op: &str,
        inputs: &[&str],
        outputs: &[&str],
        attrs: Vec<AttributeProto>,
    ) -> Self {
        self.graph.node.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            op_type: Some(op.into()),
            attribute: attrs,
            ..Default::default()
        });
        self
    }

    /// The serialized model.
    pub fn bytes(self) -> Vec<u8> {
        ModelProto {
            ir_version: Some(8),
            opset_import: vec![OperatorSetIdProto {
                domain: None,
                version: Some(self.opset),
            }],
            producer_name: Some("minnow tests".into()),
            graph: Some(self.graph),
            ..Default::default()
        }
        .encode_to_vec()
    }
}

/// `n` deterministic pseudo-random floats in [-1, 1).
pub fn noise(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s as f32 / u32::MAX as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Little-endian bytes of floats.
pub fn le(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Floats from little-endian bytes.
pub fn from_le(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}
