//! Typed access to a node's attributes, with ONNX's defaults and errors that name the attribute.

use super::proto::{attribute_proto::AttributeType, AttributeProto, NodeProto};

/// A node's attributes by name.
pub struct Attrs<'a> {
    list: &'a [AttributeProto],
}

impl<'a> Attrs<'a> {
    /// The attributes of `node`.
    pub fn of(node: &'a NodeProto) -> Attrs<'a> {
        Attrs {
            list: &node.attribute,
        }
    }

    fn get(&self, name: &str) -> Option<&'a AttributeProto> {
        self.list.iter().find(|a| a.name() == name)
    }

    fn expect(&self, name: &str, ty: AttributeType) -> Result<Option<&'a AttributeProto>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(a) if a.ref_attr_name.is_some() => Err(format!(
                "attribute {name} refers to a function attribute, which is not supported"
            )),
            // Old exporters leave `type` unset; trust the field then.
            Some(a) if a.r#type.is_none() || a.r#type() == ty => Ok(Some(a)),
            Some(a) => Err(format!(
                "attribute {name} is {}, expected {}",
                a.r#type().as_str_name(),
                ty.as_str_name()
            )),
        }
    }

    /// Whether the attribute is present.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// An `INT` attribute, or `default`.
    pub fn int(&self, name: &str, default: i64) -> Result<i64, String> {
        Ok(self
            .expect(name, AttributeType::Int)?
            .map_or(default, |a| a.i()))
    }

    /// A `FLOAT` attribute, or `default`.
    pub fn float(&self, name: &str, default: f32) -> Result<f32, String> {
        Ok(self
            .expect(name, AttributeType::Float)?
            .map_or(default, |a| a.f()))
    }

    /// A `STRING` attribute, or `default`.
    pub fn string(&self, name: &str, default: &str) -> Result<String, String> {
        Ok(match self.expect(name, AttributeType::String)? {
            Some(a) => String::from_utf8_lossy(a.s()).into_owned(),
            None => default.to_string(),
        })
    }

    /// An `INTS` attribute, if present.
    pub fn ints(&self, name: &str) -> Result<Option<Vec<i64>>, String> {
        Ok(self
            .expect(name, AttributeType::Ints)?
            .map(|a| a.ints.clone()))
    }

    /// A `FLOATS` attribute, if present.
    pub fn floats(&self, name: &str) -> Result<Option<Vec<f32>>, String> {
        Ok(self
            .expect(name, AttributeType::Floats)?
            .map(|a| a.floats.clone()))
    }

    /// A `TENSOR` attribute, if present.
    pub fn tensor(&self, name: &str) -> Result<Option<&'a super::proto::TensorProto>, String> {
        Ok(self
            .expect(name, AttributeType::Tensor)?
            .and_then(|a| a.t.as_ref()))
    }

    /// Refuses any attribute not in `known` (one minnow would silently ignore).
    pub fn only(&self, known: &[&str]) -> Result<(), String> {
        match self.list.iter().find(|a| !known.contains(&a.name())) {
            Some(a) => Err(format!("attribute {} is not supported", a.name())),
            None => Ok(()),
        }
    }
}

/// `axis` (negative counts from the end) as an index into a rank-`rank` shape.
pub fn axis(axis: i64, rank: usize) -> Result<usize, String> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if (0..r).contains(&a) {
        Ok(a as usize)
    } else {
        Err(format!("axis {axis} is out of range for rank {rank}"))
    }
}
