//! Layout rules: move transposes through the ops that do not care about dimension order, so
//! that the NCHW→NHWC and NHWC→NCHW transposes an ONNX import puts around every convolution
//! and pooling meet and cancel ([`super::rules::TransposeChain`]).
//!
//! | rule | before | after |
//! |---|---|---|
//! | `transpose-through-elementwise` | `relu(transpose[p](x))` | `transpose[p](relu(x))` |
//! | `transpose-through-binary` | `add(transpose[p](x), transpose[p](y))`, `add(transpose[p](x), c)` | `transpose[p](add(x, y))`, `transpose[p](add(x, c'))` |
//! | `transpose-through-concat` | `concat[a](transpose[p](x), transpose[p](y))` | `transpose[p](concat[p[a]](x, y))` |
//! | `transpose-as-reshape` | `transpose[p](x)` moving only size-1 dimensions | `reshape(x)` |
//!
//! Each adds the transposed-late form next to the original; the extraction keeps whichever is
//! cheaper, which is the one where the pairs cancelled.

use super::rules::Rule;
use super::term::{applications, apply, leaf_in, type_of, ModelGraph, OpEntry};
use egg::Id;
use minnow_ir::{Op, Tensor, TensorType};

/// The operand of a `transpose[p]` in class `id`, with `p`, for each such application.
fn transposes_in(g: &ModelGraph, id: Id) -> Vec<(Vec<usize>, Id)> {
    applications(g, id)
        .into_iter()
        .filter_map(|(e, args)| match e.op {
            Op::Transpose { perm } => Some((perm, args[0])),
            _ => None,
        })
        .collect()
}

/// The inverse of a permutation.
fn inverse(perm: &[usize]) -> Vec<usize> {
    let mut inv = vec![0; perm.len()];
    for (i, p) in perm.iter().enumerate() {
        inv[*p] = i;
    }
    inv
}

/// The tensor `entry` computes, before a final `transpose[perm]`: same name with a suffix
/// (so a repeated rewrite interns the same op), same element type, the permuted-back shape.
fn before_transpose(entry: &OpEntry, perm: &[usize]) -> Tensor {
    let shape = &entry.output.ty.shape;
    let inv = inverse(perm);
    Tensor {
        name: format!("{}:untransposed", entry.output.name),
        ty: TensorType {
            shape: inv.iter().map(|d| shape[*d]).collect(),
            ..entry.output.ty.clone()
        },
        ..entry.output.clone()
    }
}

/// `f(transpose[p](x))` is `transpose[p](f(x))` for an op `f` applied element by element.
pub struct TransposeThroughElementwise;

impl Rule for TransposeThroughElementwise {
    fn name(&self) -> &'static str {
        "transpose-through-elementwise"
    }

    fn wants(&self, op: &Op) -> bool {
        matches!(
            op,
            Op::Relu
                | Op::Relu6
                | Op::Clamp { .. }
                | Op::Logistic
                | Op::Tanh
                | Op::Quantize
                | Op::Dequantize
        )
    }

    fn rewrite(&self, g: &mut ModelGraph, _: Id, entry: &OpEntry, args: &[Id]) -> Vec<Id> {
        let mut out = Vec::new();
        for (perm, x) in transposes_in(g, args[0]) {
            let inner = before_transpose(entry, &perm);
            if type_of(g, x).map(|t| &t.shape) != Some(&inner.ty.shape) {
                continue;
            }
            let y = apply(g, entry.op.clone(), inner, vec![x]);
            out.push(apply(
                g,
                Op::Transpose { perm },
                entry.output.clone(),
                vec![y],
            ));
        }
        out
    }
}

/// `f(transpose[p](x), transpose[p](y))` is `transpose[p](f(x, y))` for ADD, SUB, MUL and DIV
/// without broadcasting; so is `f(transpose[p](x), c)` for a constant `c` of the same rank,
/// whose transpose back folds at compile time.
pub struct TransposeThroughBinary;

impl Rule for TransposeThroughBinary {
    fn name(&self) -> &'static str {
        "transpose-through-binary"
    }

    fn wants(&self, op: &Op) -> bool {
        matches!(
            op,
            Op::Add { .. } | Op::Sub { .. } | Op::Mul { .. } | Op::Div { .. }
        )
    }

    fn rewrite(&self, g: &mut ModelGraph, _: Id, entry: &OpEntry, args: &[Id]) -> Vec<Id> {
        let rank = entry.output.ty.shape.len();
        let mut out = Vec::new();
        let (left, right) = (transposes_in(g, args[0]), transposes_in(g, args[1]));
        let mut pairs: Vec<(Vec<usize>, Id, Id)> = Vec::new();
        for (p, x) in &left {
            for (q, y) in &right {
                let same_shape =
                    type_of(g, *x).map(|t| &t.shape) == type_of(g, *y).map(|t| &t.shape);
                if p == q && same_shape {
                    pairs.push((p.clone(), *x, *y));
                }
            }
        }
        for (side, list, other) in [(0, &left, args[1]), (1, &right, args[0])] {
            let Some(c) = leaf_in(g, other)
                .filter(|c| c.ty.shape.len() == rank)
                .cloned()
            else {
                continue;
            };
            for (p, x) in list {
                let inv = inverse(p);
                let back = Tensor {
                    name: format!("{}:untransposed", c.name),
                    ty: TensorType {
                        shape: inv.iter().map(|d| c.ty.shape[*d]).collect(),
                        ..c.ty.clone()
                    },
                    kind: minnow_ir::TensorKind::Activation,
                    data: None,
                };
                let c_back = apply(g, Op::Transpose { perm: inv }, back, vec![other]);
                let (a, b) = if side == 0 {
                    (*x, c_back)
                } else {
                    (c_back, *x)
                };
                pairs.push((p.clone(), a, b));
            }
        }
        for (perm, a, b) in pairs {
            let inner = before_transpose(entry, &perm);
            let y = apply(g, entry.op.clone(), inner, vec![a, b]);
            out.push(apply(
                g,
                Op::Transpose { perm },
                entry.output.clone(),
                vec![y],
            ));
        }
        out
    }
}

/// `concat[a](transpose[p](x), ...)` with every operand transposed by `p` is
/// `transpose[p](concat[p[a]](x, ...))`.
pub struct TransposeThroughConcat;

impl Rule for TransposeThroughConcat {
    fn name(&self) -> &'static str {
        "transpose-through-concat"
    }

    fn wants(&self, op: &Op) -> bool {
        matches!(op, Op::Concat { .. })
    }

    fn rewrite(&self, g: &mut ModelGraph, _: Id, entry: &OpEntry, args: &[Id]) -> Vec<Id> {
        let Op::Concat { axis, activation } = entry.op else {
            return Vec::new();
        };
        let Some((perm, _)) = args
            .first()
            .and_then(|a| transposes_in(g, *a).into_iter().next())
        else {
            return Vec::new();
        };
        let mut inner_args = Vec::with_capacity(args.len());
        for a in args {
            match transposes_in(g, *a).into_iter().find(|(p, _)| *p == perm) {
                Some((_, x)) => inner_args.push(x),
                None => return Vec::new(),
            }
        }
        let op = Op::Concat {
            axis: perm[axis],
            activation,
        };
        let inner = before_transpose(entry, &perm);
        let y = apply(g, op, inner, inner_args);
        vec![apply(
            g,
            Op::Transpose { perm },
            entry.output.clone(),
            vec![y],
        )]
    }
}

/// A transpose that keeps the order of every dimension larger than 1 moves no data: it is a
/// reshape (NCHW↔NHWC of a single channel, or of a 1×1 image), which costs nothing and chains
/// with other reshapes.
pub struct TransposeAsReshape;

impl Rule for TransposeAsReshape {
    fn name(&self) -> &'static str {
        "transpose-as-reshape"
    }

    fn wants(&self, op: &Op) -> bool {
        matches!(op, Op::Transpose { .. })
    }

    fn rewrite(&self, g: &mut ModelGraph, _: Id, entry: &OpEntry, args: &[Id]) -> Vec<Id> {
        let Op::Transpose { perm } = &entry.op else {
            return Vec::new();
        };
        let Some(shape) = type_of(g, args[0]).map(|t| t.shape.clone()) else {
            return Vec::new();
        };
        let moved: Vec<usize> = perm.iter().copied().filter(|d| shape[*d] != 1).collect();
        if moved.windows(2).any(|w| w[0] > w[1]) {
            return Vec::new();
        }
        vec![apply(g, Op::Reshape, entry.output.clone(), vec![args[0]])]
    }
}
