//! The named rewrite rules of [`super::GraphRewriter`]. Each rule looks at one op application
//! and adds the terms that compute the same tensor; which form survives is the extraction's
//! choice, by the target's cost.
//!
//! | rule | before | after |
//! |---|---|---|
//! | `fold-pad-into-conv` | `conv[valid](pad(x))` | `conv[explicit](x)` |
//! | `pad-for-vectorizing` | `conv[same](x)` | `conv[valid](pad(x))` |
//! | `pad-channels-for-vectorizing` | `conv(x: c channels, w)` | `conv(pad(x): 4k channels, w + zeros)` |
//! | `fuse-activation` | `relu(conv(x))` | `conv[relu](x)` |
//! | `fuse-residual-add` | `add(conv(x), y)`, `add(y, conv(x))` | `conv_add(x, y)` |
//! | `reshape-chain` | `reshape(reshape(x))`, `reshape(x): type x` | `reshape(x)`, `x` |
//! | `transpose-chain` | `transpose[p2](transpose[p1](x))`, `transpose[id](x)` | `transpose[p1∘p2](x)`, `x` |
//! | `fold-constant` | `op(constants)` | a constant |
//!
//! The layout rules that move transposes through element-wise ops are in [`super::layout`],
//! the choice of each op's weight layout in [`super::weights`].

use super::term::Term;
use super::term::{add_leaf, applications, apply, leaf_in, type_of, users, ModelGraph, OpEntry};
use egg::{Applier, Id, PatternAst, Rewrite, SearchMatches, Searcher, Subst, Symbol, Var};
use minnow_ir::op::AxisGeometry;
use minnow_ir::{Activation, DType, Graph, Op, Padding, Tensor, TensorKind, TensorType, Window};
use std::sync::Arc;

/// A rewrite over op applications.
pub trait Rule: Send + Sync {
    /// The rule's name, as logs and reports give it.
    fn name(&self) -> &'static str;
    /// Whether the rule looks at applications of `op`.
    fn wants(&self, op: &Op) -> bool;
    /// Classes that compute the same tensor as `entry` applied to `args` (in class `class`).
    fn rewrite(&self, g: &mut ModelGraph, class: Id, entry: &OpEntry, args: &[Id]) -> Vec<Id>;
}

/// The rules that change which ops compute the model, in the order the runner tries them.
pub fn structural() -> Vec<Arc<dyn Rule>> {
    vec![
        Arc::new(FoldPadIntoConv),
        Arc::new(PadForVectorizing),
        Arc::new(PadChannelsForVectorizing),
        Arc::new(FuseActivation),
        Arc::new(FuseResidualAdd),
        Arc::new(ReshapeChain),
        Arc::new(TransposeChain),
        Arc::new(super::layout::TransposeThroughElementwise),
        Arc::new(super::layout::TransposeThroughBinary),
        Arc::new(super::layout::TransposeThroughConcat),
        Arc::new(super::layout::TransposeAsReshape),
        Arc::new(FoldConstant),
    ]
}

/// The rules that choose how the extracted ops store their weights.
pub fn layout() -> Vec<Arc<dyn Rule>> {
    vec![Arc::new(super::weights::ChooseWeightLayout)]
}

/// The egg rewrite that runs `rule` on every class applying an op it wants.
pub fn rewrite(rule: Arc<dyn Rule>) -> Rewrite<Term, super::term::Tensors> {
    let name = rule.name();
    let adapter = Adapter(rule);
    Rewrite::new(name, adapter.clone(), adapter).expect("a rule binds no variables")
}

#[derive(Clone)]
struct Adapter(Arc<dyn Rule>);

impl Searcher<Term, super::term::Tensors> for Adapter {
    fn search_eclass_with_limit(
        &self,
        g: &ModelGraph,
        eclass: Id,
        limit: usize,
    ) -> Option<SearchMatches<'_, Term>> {
        let wanted = g[eclass].nodes.iter().any(|n| match n {
            Term::Apply(op, _) => self.0.wants(&g.analysis.op(*op).op),
            _ => false,
        });
        (wanted && limit > 0).then(|| SearchMatches {
            eclass,
            substs: vec![Subst::default()],
            ast: None,
        })
    }

    fn vars(&self) -> Vec<Var> {
        Vec::new()
    }
}

impl Applier<Term, super::term::Tensors> for Adapter {
    fn apply_one(
        &self,
        g: &mut ModelGraph,
        eclass: Id,
        _subst: &Subst,
        _ast: Option<&PatternAst<Term>>,
        _rule: Symbol,
    ) -> Vec<Id> {
        let mut changed = Vec::new();
        for (entry, args) in applications(g, eclass) {
            if !self.0.wants(&entry.op) {
                continue;
            }
            for same in self.0.rewrite(g, eclass, &entry, &args) {
                if g.union(eclass, same) {
                    changed.push(eclass);
                }
            }
        }
        changed
    }
}

/// The window of a convolution, if `op` is one.
fn conv_window(op: &Op) -> Option<Window> {
    match op {
        Op::Conv2d { window, .. } | Op::DepthwiseConv2d { window, .. } => Some(*window),
        _ => None,
    }
}

/// `op` (a convolution) with another window.
fn with_window(op: &Op, window: Window) -> Op {
    let mut op = op.clone();
    if let Op::Conv2d { window: w, .. } | Op::DepthwiseConv2d { window: w, .. } = &mut op {
        *w = window;
    }
    op
}

/// `conv[valid or explicit](pad(x))` is `conv[explicit](x)`: a convolution skips padded taps,
/// which is what multiplying by a zero-point pad does.
pub struct FoldPadIntoConv;

impl Rule for FoldPadIntoConv {
    fn name(&self) -> &'static str {
        "fold-pad-into-conv"
    }

    fn wants(&self, op: &Op) -> bool {
        conv_window(op).is_some_and(|w| w.padding != Padding::Same)
    }

    fn rewrite(&self, g: &mut ModelGraph, _: Id, entry: &OpEntry, args: &[Id]) -> Vec<Id> {
        let window = conv_window(&entry.op).expect("wanted");
        let (top, bottom, left, right) = match window.padding {
            Padding::Explicit {
                top,
                bottom,
                left,
                right,
            } => (top, bottom, left, right),
            _ => (0, 0, 0, 0),
        };
        let mut out = Vec::new();
        for (pad, pad_args) in applications(g, args[0]) {
            let Op::Pad { pads } = &pad.op else { continue };
            let x = pad_args[0];
            let spatial_only = pads.len() == 4 && pads[0] == (0, 0) && pads[3] == (0, 0);
            let same_quant = type_of(g, x).map(|t| &t.quant) == Some(&pad.output.ty.quant);
            if !spatial_only || !same_quant {
                continue;
            }
            let padding = Padding::Explicit {
                top: top + pads[1].0,
                bottom: bottom + pads[1].1,
                left: left + pads[2].0,
                right: right + pads[2].1,
            };
            let op = with_window(&entry.op, Window { padding, ..window });
            let mut new_args = args.to_vec();
            new_args[0] = x;
            out.push(apply(g, op, entry.output.clone(), new_args));
        }
        out
    }
}

/// `conv[same or explicit](x)` is `conv[valid](pad(x))`: no tap falls outside the padded
/// input, so the kernel needs no bounds checks and its taps can be vectorized.
pub struct PadForVectorizing;

impl Rule for PadForVectorizing {
    fn name(&self) -> &'static str {
        "pad-for-vectorizing"
    }

    fn wants(&self, op: &Op) -> bool {
        conv_window(op).is_some_and(|w| w.padding != Padding::Valid)
    }

    fn rewrite(&self, g: &mut ModelGraph, _: Id, entry: &OpEntry, args: &[Id]) -> Vec<Id> {
        let window = conv_window(&entry.op).expect("wanted");
        let (Some(input), Some(filter)) = (type_of(g, args[0]), type_of(g, args[1])) else {
            return Vec::new();
        };
        let (input, filter) = (input.clone(), filter.clone());
        if input.shape.len() != 4 || filter.shape.len() != 4 {
            return Vec::new();
        }
        let (k_h, k_w) = (filter.shape[1], filter.shape[2]);
        let w = window;
        let h = w.resolve_h(input.shape[1], k_h);
        let v = w.resolve_w(input.shape[2], k_w);
        let h = h.and_then(|r| pads_of(r, input.shape[1], k_h, w.stride_h, w.dilation_h));
        let v = v.and_then(|r| pads_of(r, input.shape[2], k_w, w.stride_w, w.dilation_w));
        let (Some(h), Some(v)) = (h, v) else {
            return Vec::new();
        };
        if h == (0, 0) && v == (0, 0) {
            return Vec::new();
        }
        let mut padded = input.clone();
        padded.shape[1] += h.0 + h.1;
        padded.shape[2] += v.0 + v.1;
        let pad_out = Tensor {
            name: format!("{}/pad", entry.output.name),
            ty: padded,
            kind: TensorKind::Activation,
            data: None,
        };
        let pads = vec![(0, 0), h, v, (0, 0)];
        let pad = apply(g, Op::Pad { pads }, pad_out, vec![args[0]]);
        let valid = Window {
            padding: Padding::Valid,
            ..window
        };
        let mut new_args = args.to_vec();
        new_args[0] = pad;
        vec![apply(
            g,
            with_window(&entry.op, valid),
            entry.output.clone(),
            new_args,
        )]
    }
}

/// `conv(x, w)` over `c` input channels, `c` not a multiple of 4, is `conv(pad(x), w')` over
/// `c` rounded up to a multiple of 4, where `w'` is `w` with zero weights for the new
/// channels: whatever the padded channels hold, they add nothing, and the reduction along the
/// channels becomes words of four lanes (SMLADs on DSP cores). For first layers over RGB
/// images (3 channels), whose taps are not contiguous either.
pub struct PadChannelsForVectorizing;

impl Rule for PadChannelsForVectorizing {
    fn name(&self) -> &'static str {
        "pad-channels-for-vectorizing"
    }

    fn wants(&self, op: &Op) -> bool {
        matches!(op, Op::Conv2d { .. })
    }

    fn rewrite(&self, g: &mut ModelGraph, _: Id, entry: &OpEntry, args: &[Id]) -> Vec<Id> {
        let (Some(input), Some(filter)) = (type_of(g, args[0]), leaf_in(g, args[1])) else {
            return Vec::new();
        };
        let (input, filter) = (input.clone(), filter.clone());
        let channels = *input.shape.last().unwrap_or(&0);
        let integer = input.dtype == DType::I8 && filter.ty.dtype == DType::I8;
        let grouped = filter.ty.shape.len() != 4 || filter.ty.shape[3] != channels;
        if channels < 2 || channels % 4 == 0 || !integer || grouped || input.shape.len() != 4 {
            return Vec::new();
        }
        let Some(weights) = filter.data.as_deref() else {
            return Vec::new();
        };
        let wide = channels.next_multiple_of(4);
        let mut padded = input.clone();
        padded.shape[3] = wide;
        let pad_out = Tensor {
            name: format!("{}/pad_channels", entry.output.name),
            ty: padded,
            kind: TensorKind::Activation,
            data: None,
        };
        let pads = vec![(0, 0), (0, 0), (0, 0), (0, wide - channels)];
        let pad = apply(g, Op::Pad { pads }, pad_out, vec![args[0]]);
        let mut wide_filter = filter.clone();
        wide_filter.name = format!("{}/pad_channels", filter.name);
        wide_filter.ty.shape[3] = wide;
        let zeros = vec![0u8; wide - channels];
        let data = weights
            .chunks(channels)
            .flat_map(|w| w.iter().chain(&zeros));
        wide_filter.data = Some(data.copied().collect());
        let mut new_args = args.to_vec();
        new_args[0] = pad;
        new_args[1] = add_leaf(g, wide_filter);
        vec![apply(g, entry.op.clone(), entry.output.clone(), new_args)]
    }
}

/// The padding `(before, after)` that makes every tap of a resolved axis fall inside the
/// input; `None` if the window stops short of the input's end (a valid window would then give
/// more outputs).
fn pads_of(
    r: AxisGeometry,
    input: usize,
    k: usize,
    stride: usize,
    dilation: usize,
) -> Option<(usize, usize)> {
    let reach = (r.out - 1) * stride + (k - 1) * dilation + 1;
    let after = reach.checked_sub(input + r.pad_before)?;
    let valid_out = (input + r.pad_before + after - ((k - 1) * dilation + 1)) / stride + 1;
    (valid_out == r.out).then_some((r.pad_before, after))
}

/// `relu(conv(x))` is `conv[relu](x)` when the activation keeps the quantization (then it is a
/// clamp at the zero point, which the fused activation range applies).
pub struct FuseActivation;

impl Rule for FuseActivation {
    fn name(&self) -> &'static str {
        "fuse-activation"
    }

    fn wants(&self, op: &Op) -> bool {
        matches!(op, Op::Relu | Op::Relu6 | Op::Clamp { .. })
    }

    fn rewrite(&self, g: &mut ModelGraph, _: Id, entry: &OpEntry, args: &[Id]) -> Vec<Id> {
        let float = entry.output.ty.dtype == DType::F32;
        let fused = match entry.op {
            Op::Relu => Activation::Relu,
            Op::Relu6 => Activation::Relu6,
            // A float clamp with a fused activation's bounds (an ONNX Clip) is that activation.
            Op::Clamp { min, max } if float && min == 0.0 && max == 6.0 => Activation::Relu6,
            Op::Clamp { min, max } if float && min == -1.0 && max == 1.0 => Activation::ReluN1To1,
            Op::Clamp { min, max } if float && min == 0.0 && max == f32::INFINITY => {
                Activation::Relu
            }
            _ => return Vec::new(),
        };
        if type_of(g, args[0]) != Some(&entry.output.ty) {
            return Vec::new();
        }
        let mut out = Vec::new();
        for (inner, inner_args) in applications(g, args[0]) {
            let mut op = inner.op.clone();
            let activation = match &mut op {
                Op::Conv2d { activation, .. }
                | Op::DepthwiseConv2d { activation, .. }
                | Op::FullyConnected { activation, .. }
                | Op::Add { activation } => activation,
                _ => continue,
            };
            if *activation != Activation::None {
                continue;
            }
            *activation = fused;
            out.push(apply(g, op, entry.output.clone(), inner_args));
        }
        out
    }
}

/// `add(conv(x), y)` is `conv_add(x, y)` ([`Op::ResidualAdd`]): the integer ADD runs in the
/// convolution's (or fully connected's) epilogue, and the op's own output, which nothing else
/// reads, is never stored. Both addends and the sum have one shape (no broadcasting).
pub struct FuseResidualAdd;

impl Rule for FuseResidualAdd {
    fn name(&self) -> &'static str {
        "fuse-residual-add"
    }

    fn wants(&self, op: &Op) -> bool {
        matches!(op, Op::Add { .. })
    }

    fn rewrite(&self, g: &mut ModelGraph, _: Id, entry: &OpEntry, args: &[Id]) -> Vec<Id> {
        let Op::Add { activation } = entry.op else {
            return Vec::new();
        };
        let sum = &entry.output.ty;
        let fits = |t: Option<&TensorType>| {
            t.is_some_and(|t| {
                t.shape == sum.shape && t.dtype == sum.dtype && t.dtype.int_range().is_some()
            })
        };
        if args.len() != 2 || !fits(type_of(g, args[0])) || !fits(type_of(g, args[1])) {
            return Vec::new();
        }
        let mut out = Vec::new();
        // The ADD is symmetric (each addend is rescaled by its own parameters): either operand
        // may be the one computed in the epilogue.
        for (mac_class, addend) in [(args[0], args[1]), (args[1], args[0])] {
            if users(g, mac_class) != 1 {
                continue;
            }
            let mac_output = type_of(g, mac_class).cloned().expect("checked");
            for (inner, inner_args) in applications(g, mac_class) {
                let is_mac = matches!(
                    inner.op,
                    Op::Conv2d { .. } | Op::DepthwiseConv2d { .. } | Op::FullyConnected { .. }
                );
                if !is_mac || inner_args.len() < 2 {
                    continue;
                }
                let bias = match inner_args.get(2) {
                    Some(b) => *b,
                    None => g.add(Term::Absent),
                };
                let op = Op::ResidualAdd {
                    mac: Box::new(inner.op.clone()),
                    mac_output: mac_output.clone(),
                    activation,
                };
                let operands = vec![inner_args[0], inner_args[1], bias, addend];
                out.push(apply(g, op, entry.output.clone(), operands));
            }
        }
        out
    }
}

/// Whether two types differ only in shape.
fn same_elements(a: &TensorType, b: &TensorType) -> bool {
    a.dtype == b.dtype && a.quant == b.quant && a.elements() == b.elements()
}

/// `reshape(reshape(x))` is `reshape(x)`; a reshape to the operand's own type is the operand.
pub struct ReshapeChain;

impl Rule for ReshapeChain {
    fn name(&self) -> &'static str {
        "reshape-chain"
    }

    fn wants(&self, op: &Op) -> bool {
        *op == Op::Reshape
    }

    fn rewrite(&self, g: &mut ModelGraph, _: Id, entry: &OpEntry, args: &[Id]) -> Vec<Id> {
        let out_ty = &entry.output.ty;
        match type_of(g, args[0]) {
            Some(t) if t == out_ty => return vec![args[0]],
            Some(t) if same_elements(t, out_ty) => {}
            _ => return Vec::new(),
        }
        let mut out = Vec::new();
        for (inner, inner_args) in applications(g, args[0]) {
            if inner.op == Op::Reshape && type_of(g, inner_args[0]).is_some() {
                out.push(apply(
                    g,
                    Op::Reshape,
                    entry.output.clone(),
                    vec![inner_args[0]],
                ));
            }
        }
        out
    }
}

/// `transpose[p2](transpose[p1](x))` is `transpose[p1∘p2](x)`; the identity permutation is
/// its operand.
pub struct TransposeChain;

impl Rule for TransposeChain {
    fn name(&self) -> &'static str {
        "transpose-chain"
    }

    fn wants(&self, op: &Op) -> bool {
        matches!(op, Op::Transpose { .. })
    }

    fn rewrite(&self, g: &mut ModelGraph, _: Id, entry: &OpEntry, args: &[Id]) -> Vec<Id> {
        let Op::Transpose { perm: outer } = &entry.op else {
            return Vec::new();
        };
        let identity = |p: &[usize]| p.iter().enumerate().all(|(i, d)| i == *d);
        if identity(outer) && type_of(g, args[0]) == Some(&entry.output.ty) {
            return vec![args[0]];
        }
        let mut out = Vec::new();
        for (inner, inner_args) in applications(g, args[0]) {
            let Op::Transpose { perm: first } = &inner.op else {
                continue;
            };
            let perm: Vec<usize> = outer.iter().map(|d| first[*d]).collect();
            let x = inner_args[0];
            if identity(&perm) && type_of(g, x) == Some(&entry.output.ty) {
                out.push(x);
            } else {
                let op = Op::Transpose { perm };
                out.push(apply(g, op, entry.output.clone(), vec![x]));
            }
        }
        out
    }
}

/// An op whose operands are all constants is the constant it computes (by the reference
/// interpreter), when that constant is no larger than its operands: folding never grows flash.
pub struct FoldConstant;

impl Rule for FoldConstant {
    fn name(&self) -> &'static str {
        "fold-constant"
    }

    fn wants(&self, op: &Op) -> bool {
        !matches!(op, Op::Svdf { .. })
    }

    fn rewrite(&self, g: &mut ModelGraph, class: Id, entry: &OpEntry, args: &[Id]) -> Vec<Id> {
        if leaf_in(g, class).is_some() {
            return Vec::new();
        }
        let mut operands = Vec::new();
        for a in args {
            let absent = g[*a].nodes.contains(&Term::Absent);
            match leaf_in(g, *a) {
                Some(t) if t.kind == TensorKind::Constant => operands.push(Some(t.clone())),
                _ if absent => operands.push(None),
                _ => return Vec::new(),
            }
        }
        let bytes: usize = operands
            .iter()
            .flatten()
            .map(|t| t.data.as_ref().map_or(0, Vec::len))
            .sum();
        let out_bytes = entry.output.ty.elements() * entry.output.ty.dtype.size();
        if out_bytes > bytes {
            return Vec::new();
        }
        let Some(data) = evaluate(&entry.op, &operands, &entry.output) else {
            return Vec::new();
        };
        let folded = Tensor {
            kind: TensorKind::Constant,
            data: Some(data),
            ..entry.output.clone()
        };
        vec![add_leaf(g, folded)]
    }
}

/// The bytes `op` computes from constant operands, by the reference interpreter.
fn evaluate(op: &Op, operands: &[Option<Tensor>], output: &Tensor) -> Option<Vec<u8>> {
    let mut graph = Graph::new("fold");
    let inputs = operands
        .iter()
        .map(|t| t.as_ref().map(|t| graph.push_tensor(t.clone())))
        .collect();
    let out = graph.add_tensor(output.name.clone(), output.ty.clone());
    graph.add_op(op.clone(), inputs, vec![out]).ok()?;
    graph.outputs.push(out);
    let mut interpreter = minnow_ir::interp::Interpreter::new(&graph).ok()?;
    interpreter.run(&[]).ok()?.pop()
}
