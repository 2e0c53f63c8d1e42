//! Shape inference: the output shape each op's operands imply.
//!
//! Used by the verifier (to check a graph) and by importers (to reject a tensor whose shape
//! disagrees with its op). Errors are messages; the caller adds which op they concern.

use crate::graph::{Graph, Node};
use crate::op::{Op, Window};

type Shape = Vec<usize>;

/// The output shape of `node` given its operands' shapes.
pub fn infer(g: &Graph, node: &Node) -> Result<Shape, String> {
    let shape = |i: usize| -> Result<&Shape, String> {
        match node.inputs.get(i).copied().flatten() {
            Some(t) => Ok(&g.tensor(t).ty.shape),
            None => Err(format!("operand {i} is missing")),
        }
    };
    let input = shape(0)?;
    // Ops whose output tensor states the shape (a reshape's target, a slice's extent).
    let declared = || &g.tensor(node.outputs[0]).ty.shape;
    match &node.op {
        // The verifier checks the parts ([`crate::fused`]); the output is the addend's shape.
        Op::ResidualAdd { .. } => Ok(shape(3)?.clone()),
        Op::Conv2d { window, .. } => {
            let (x, f) = (rank4(input, "input")?, rank4(shape(1)?, "filter")?);
            if f[3] == 0 || x[3] % f[3] != 0 || f[0] % (x[3] / f[3]).max(1) != 0 {
                return Err(format!(
                    "input channels {} do not divide into filter depth {}",
                    x[3], f[3]
                ));
            }
            check_bias(node, g, f[0])?;
            window_out(window, x, f[1], f[2], f[0])
        }
        Op::DepthwiseConv2d {
            window,
            depth_multiplier,
            ..
        } => {
            let (x, f) = (rank4(input, "input")?, rank4(shape(1)?, "filter")?);
            if f[0] != 1 || f[3] != x[3] * depth_multiplier {
                return Err(format!(
                    "filter {f:?} does not match {} input channels times multiplier {depth_multiplier}",
                    x[3]
                ));
            }
            check_bias(node, g, f[3])?;
            window_out(window, x, f[1], f[2], f[3])
        }
        Op::FullyConnected { keep_num_dims, .. } => {
            fully_connected(g, node, input, shape(1)?, *keep_num_dims)
        }
        Op::BatchMatMul => batch_matmul(input, shape(1)?),
        Op::Add { .. } | Op::Mul { .. } | Op::Sub { .. } | Op::Div { .. } => {
            broadcast(input, shape(1)?)
        }
        Op::AvgPool2d {
            filter_h,
            filter_w,
            window,
            ..
        }
        | Op::MaxPool2d {
            filter_h,
            filter_w,
            window,
            ..
        } => {
            let x = rank4(input, "input")?;
            window_out(window, x, *filter_h, *filter_w, x[3])
        }
        Op::Reshape => reshape(input, declared()),
        Op::Svdf { rank, .. } => svdf(input, shape(1)?, shape(2)?, shape(4)?, *rank),
        Op::Pad { pads } => pad(input, pads),
        Op::Slice { begin } => slice(input, begin, declared()),
        Op::Concat { axis, .. } => concat(g, node, *axis),
        Op::Mean { axes, keep_dims } => mean(input, axes, *keep_dims),
        Op::Transpose { perm } => transpose(input, perm),
        Op::Softmax { .. }
        | Op::Quantize
        | Op::Dequantize
        | Op::Relu
        | Op::Relu6
        | Op::Clamp { .. }
        | Op::Logistic
        | Op::Tanh => Ok(input.clone()),
    }
}

/// A fully connected layer's output: the input's rows of depth `w[1]` times `w[0]` units,
/// in the input's leading dimensions where `keep_num_dims`.
fn fully_connected(
    g: &Graph,
    node: &Node,
    input: &Shape,
    w: &Shape,
    keep_num_dims: bool,
) -> Result<Shape, String> {
    if w.len() != 2 || w[1] == 0 {
        return Err(format!("weights must be [units, depth], are {w:?}"));
    }
    let elements: usize = input.iter().product();
    if elements % w[1] != 0 {
        return Err(format!(
            "input {input:?} is not a whole number of rows of depth {}",
            w[1]
        ));
    }
    check_bias(node, g, w[0])?;
    if keep_num_dims {
        let mut out = input.clone();
        *out.last_mut().ok_or("input is a scalar")? = w[0];
        Ok(out)
    } else {
        Ok(vec![elements / w[1], w[0]])
    }
}

/// A reshape to `out` (its output tensor's shape): only the element count is checked.
fn reshape(input: &Shape, out: &Shape) -> Result<Shape, String> {
    let (a, b): (usize, usize) = (input.iter().product(), out.iter().product());
    if a != b {
        return Err(format!(
            "cannot reshape {input:?} ({a} elements) to {out:?} ({b})"
        ));
    }
    Ok(out.clone())
}

/// `input` with `pads` (before, after) added to each dimension.
fn pad(input: &Shape, pads: &[(usize, usize)]) -> Result<Shape, String> {
    if pads.len() != input.len() {
        return Err(format!(
            "{} pad pairs for a rank-{} input",
            pads.len(),
            input.len()
        ));
    }
    Ok(input
        .iter()
        .zip(pads)
        .map(|(d, (a, b))| d + a + b)
        .collect())
}

/// A slice of extent `out` (its output tensor's shape) from `begin`, inside the input.
fn slice(input: &Shape, begin: &[usize], out: &Shape) -> Result<Shape, String> {
    let fits = begin.len() == input.len()
        && out.len() == input.len()
        && (0..input.len()).all(|d| begin[d] + out[d] <= input[d]);
    if !fits {
        return Err(format!(
            "a slice of {out:?} from {begin:?} does not lie inside the input {input:?}"
        ));
    }
    Ok(out.clone())
}

/// The mean over `axes`: each kept as 1 where `keep_dims`, else dropped.
fn mean(input: &Shape, axes: &[usize], keep_dims: bool) -> Result<Shape, String> {
    if axes.iter().any(|a| *a >= input.len()) {
        return Err(format!(
            "axes {axes:?} out of range for rank {}",
            input.len()
        ));
    }
    let dims = input.iter().enumerate();
    Ok(if keep_dims {
        dims.map(|(i, d)| if axes.contains(&i) { 1 } else { *d })
            .collect()
    } else {
        dims.filter(|(i, _)| !axes.contains(i))
            .map(|(_, d)| *d)
            .collect()
    })
}

/// `input` with its dimensions in the order `perm` gives, which must be a permutation.
fn transpose(input: &Shape, perm: &[usize]) -> Result<Shape, String> {
    let not_a_permutation = || format!("{perm:?} is not a permutation of rank {}", input.len());
    let mut seen = vec![false; input.len()];
    for p in perm {
        if *p >= input.len() || std::mem::replace(&mut seen[*p], true) {
            return Err(not_a_permutation());
        }
    }
    if perm.len() != input.len() {
        return Err(not_a_permutation());
    }
    Ok(perm.iter().map(|p| input[*p]).collect())
}

fn rank4<'a>(s: &'a Shape, what: &str) -> Result<&'a [usize], String> {
    if s.len() == 4 {
        Ok(s)
    } else {
        Err(format!("{what} must be rank 4 (NHWC), is {s:?}"))
    }
}

fn check_bias(node: &Node, g: &Graph, channels: usize) -> Result<(), String> {
    if let Some(Some(b)) = node.inputs.get(2) {
        let n: usize = g.tensor(*b).ty.shape.iter().product();
        if n != channels {
            return Err(format!(
                "bias has {n} elements for {channels} output channels"
            ));
        }
    }
    Ok(())
}

fn window_out(
    w: &Window,
    x: &[usize],
    fh: usize,
    fw: usize,
    channels: usize,
) -> Result<Shape, String> {
    let h = w.resolve_h(x[1], fh);
    let wd = w.resolve_w(x[2], fw);
    match (h, wd) {
        (Some(h), Some(wd)) => Ok(vec![x[0], h.out, wd.out, channels]),
        _ => Err(format!(
            "a {fh}x{fw} window with {w:?} does not fit input {x:?}"
        )),
    }
}

/// `shape` with leading 1s up to `rank` dimensions, as numpy aligns shapes for broadcasting.
pub fn padded_to_rank(shape: &[usize], rank: usize) -> Vec<usize> {
    let missing = rank.saturating_sub(shape.len());
    std::iter::repeat_n(1, missing)
        .chain(shape.iter().copied())
        .collect()
}

/// Numpy broadcasting of two shapes.
pub fn broadcast(a: &Shape, b: &Shape) -> Result<Shape, String> {
    let rank = a.len().max(b.len());
    let (a_dims, b_dims) = (padded_to_rank(a, rank), padded_to_rank(b, rank));
    a_dims
        .iter()
        .zip(&b_dims)
        .map(|dims| match dims {
            (x, y) if x == y => Ok(*x),
            (1, y) => Ok(*y),
            (x, 1) => Ok(*x),
            _ => Err(format!("shapes {a:?} and {b:?} do not broadcast")),
        })
        .collect()
}

/// `[.., M, K] @ [.., K, N]`: the broadcast batch dimensions, then `[M, N]`.
fn batch_matmul(a: &Shape, b: &Shape) -> Result<Shape, String> {
    if a.len() < 2 || b.len() < 2 || a[a.len() - 1] != b[b.len() - 2] {
        return Err(format!("{a:?} @ {b:?} is not a matrix product"));
    }
    let mut out = broadcast(&a[..a.len() - 2].to_vec(), &b[..b.len() - 2].to_vec())?;
    out.extend([a[a.len() - 2], b[b.len() - 1]]);
    Ok(out)
}

fn svdf(x: &Shape, wf: &Shape, wt: &Shape, state: &Shape, rank: usize) -> Result<Shape, String> {
    if x.len() != 2 || wf.len() != 2 || wt.len() != 2 || rank == 0 {
        return Err(format!(
            "input {x:?}, weights {wf:?} / {wt:?} and rank {rank} are not an SVDF"
        ));
    }
    let (filters, memory) = (wf[0], wt[1]);
    if wf[1] != x[1] || wt[0] != filters || filters % rank != 0 {
        return Err(format!(
            "weights {wf:?} / {wt:?} do not fit input {x:?} with rank {rank}"
        ));
    }
    if state.iter().product::<usize>() != x[0] * filters * memory {
        return Err(format!(
            "state {state:?} must hold batch x filters x memory values"
        ));
    }
    Ok(vec![x[0], filters / rank])
}

fn concat(g: &Graph, node: &Node, axis: usize) -> Result<Shape, String> {
    let mut out: Option<Shape> = None;
    for t in node.inputs.iter().flatten() {
        let s = &g.tensor(*t).ty.shape;
        match &mut out {
            None if axis < s.len() => out = Some(s.clone()),
            None => return Err(format!("axis {axis} out of range for {s:?}")),
            Some(o) => {
                let same_rest = o.len() == s.len()
                    && o.iter()
                        .zip(s)
                        .enumerate()
                        .all(|(i, (a, b))| i == axis || a == b);
                if !same_rest {
                    return Err(format!(
                        "cannot concatenate {s:?} to {o:?} along axis {axis}"
                    ));
                }
                o[axis] += s[axis];
            }
        }
    }
    out.ok_or_else(|| "no operands".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting() {
        assert_eq!(
            broadcast(&vec![1, 4, 4, 8], &vec![8]).unwrap(),
            vec![1, 4, 4, 8]
        );
        assert_eq!(broadcast(&vec![2, 1], &vec![1, 3]).unwrap(), vec![2, 3]);
        assert!(broadcast(&vec![2], &vec![3]).is_err());
    }
}
