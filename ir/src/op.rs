//! Operators of the graph IR and their attributes.
//!
//! An [`Op`] is plain data: the operator kind and every attribute that changes its result.
//! Operand tensors are not stored here but on the graph node ([`crate::graph::Node`]), in the
//! order documented on each variant. Attributes that TFLite passes as constant tensors (pad
//! amounts, mean axes, transpose permutations) are attributes here, so later passes never chase
//! constants to learn what an op does.

use crate::types::TensorType;
use serde::Serialize;
use std::fmt;

/// How a multiply-accumulate op's constant weights are stored in flash. The graph rewriter
/// chooses it per op by the target's cost (`choose-weight-layout` in `minnow_passes::graph`);
/// the schedules lay the bytes out in the order their loops read them either way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightLayout {
    /// One byte per int8 weight, as the model gives them.
    #[default]
    Bytes,
    /// Widened to the 16-bit pairs the target's multiply-accumulate takes: pre-interleaved
    /// for SXTB16 + SMLAD on Arm DSP cores (no unpacking in the loop), crossed for Winograd's
    /// inner product on cores without SIMD. Twice the flash.
    Wide,
}

impl WeightLayout {
    /// Whether this is the model's own layout (serde leaves it out then).
    pub fn is_bytes(&self) -> bool {
        *self == WeightLayout::Bytes
    }
}

/// A fused activation applied to an op's result before it is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// No activation.
    None,
    /// `max(x, 0)`.
    Relu,
    /// `clamp(x, -1, 1)`.
    ReluN1To1,
    /// `clamp(x, 0, 6)`.
    Relu6,
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Activation::None => "none",
            Activation::Relu => "relu",
            Activation::ReluN1To1 => "relu_n1_to_1",
            Activation::Relu6 => "relu6",
        })
    }
}

/// How a windowed op (convolution, pooling) pads its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Padding {
    /// Output size `ceil(in / stride)`; padding split with the extra row/column at the end.
    Same,
    /// No padding: output size `ceil((in - effective_filter + 1) / stride)`.
    Valid,
    /// Explicit amounts before and after, per spatial dimension (after folding a PAD).
    Explicit {
        /// Rows added above.
        top: usize,
        /// Rows added below.
        bottom: usize,
        /// Columns added on the left.
        left: usize,
        /// Columns added on the right.
        right: usize,
    },
}

/// The geometry of a 2-D window over an NHWC tensor: strides, dilation and padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Window {
    /// Vertical stride.
    pub stride_h: usize,
    /// Horizontal stride.
    pub stride_w: usize,
    /// Vertical dilation (1 for pooling).
    pub dilation_h: usize,
    /// Horizontal dilation (1 for pooling).
    pub dilation_w: usize,
    /// Padding mode.
    pub padding: Padding,
}

/// One spatial axis of a resolved window: output size and the padding before the first input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AxisGeometry {
    /// Number of output positions.
    pub out: usize,
    /// Input positions skipped before the first element (the `pad_height`/`pad_width` of TFLite).
    pub pad_before: usize,
}

impl Window {
    /// The same stride on both axes, no dilation.
    pub fn square(stride: usize, padding: Padding) -> Window {
        Window {
            stride_h: stride,
            stride_w: stride,
            dilation_h: 1,
            dilation_w: 1,
            padding,
        }
    }

    /// Output size and leading padding along the height axis, exactly as TFLite computes them.
    pub fn resolve_h(&self, input: usize, filter: usize) -> Option<AxisGeometry> {
        let explicit = match self.padding {
            Padding::Explicit { top, bottom, .. } => Some((top, bottom)),
            _ => None,
        };
        resolve_axis(
            self.padding,
            explicit,
            input,
            filter,
            self.stride_h,
            self.dilation_h,
        )
    }

    /// Output size and leading padding along the width axis.
    pub fn resolve_w(&self, input: usize, filter: usize) -> Option<AxisGeometry> {
        let explicit = match self.padding {
            Padding::Explicit { left, right, .. } => Some((left, right)),
            _ => None,
        };
        resolve_axis(
            self.padding,
            explicit,
            input,
            filter,
            self.stride_w,
            self.dilation_w,
        )
    }
}

/// TFLite's `ComputeOutSize` and `ComputePaddingWithOffset` for one axis. `None` when the window
/// does not fit (zero stride, filter larger than the padded input).
fn resolve_axis(
    padding: Padding,
    explicit: Option<(usize, usize)>,
    input: usize,
    filter: usize,
    stride: usize,
    dilation: usize,
) -> Option<AxisGeometry> {
    if stride == 0 || dilation == 0 || filter == 0 {
        return None;
    }
    let effective = (filter - 1).checked_mul(dilation)? + 1;
    let out = match (padding, explicit) {
        (Padding::Same, _) => input.div_ceil(stride),
        (Padding::Valid, _) => (input + stride).checked_sub(effective)? / stride,
        (Padding::Explicit { .. }, Some((before, after))) => {
            let padded = input + before + after;
            (padded.checked_sub(effective)? / stride) + 1
        }
        (Padding::Explicit { .. }, None) => return None,
    };
    if out == 0 {
        return None;
    }
    let pad_before = match explicit {
        Some((before, _)) => before,
        None => {
            let total = ((out - 1) * stride + effective).saturating_sub(input);
            total / 2
        }
    };
    Some(AxisGeometry { out, pad_before })
}

/// An operator with its attributes. Operand order is given per variant.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// 2-D convolution. Inputs: `[input NHWC, filter OHWI, bias O?]`.
    Conv2d {
        /// Strides, dilation, padding.
        window: Window,
        /// Fused activation.
        activation: Activation,
        /// How the filter is stored.
        #[serde(skip_serializing_if = "WeightLayout::is_bytes")]
        weights: WeightLayout,
    },
    /// Depthwise 2-D convolution. Inputs: `[input NHWC, filter 1HW(C*M), bias (C*M)?]`.
    DepthwiseConv2d {
        /// Strides, dilation, padding.
        window: Window,
        /// Output channels per input channel.
        depth_multiplier: usize,
        /// Fused activation.
        activation: Activation,
        /// How the filter is stored.
        #[serde(skip_serializing_if = "WeightLayout::is_bytes")]
        weights: WeightLayout,
    },
    /// Fully connected (dense). Inputs: `[input (.., K), weights (N, K), bias N?]`.
    FullyConnected {
        /// Fused activation.
        activation: Activation,
        /// Keep the input's leading dimensions instead of flattening them to a batch.
        keep_num_dims: bool,
        /// How the weights are stored.
        #[serde(skip_serializing_if = "WeightLayout::is_bytes")]
        weights: WeightLayout,
    },
    /// Element-wise addition with broadcasting. Inputs: `[a, b]`.
    Add {
        /// Fused activation.
        activation: Activation,
    },
    /// Element-wise multiplication with broadcasting. Inputs: `[a, b]`.
    Mul {
        /// Fused activation.
        activation: Activation,
    },
    /// Matrix product over the last two dimensions with numpy's broadcasting of the leading
    /// (batch) ones, float: `[.., M, K] @ [.., K, N]`. Inputs: `[a, b]`, either may be
    /// computed (a FULLY_CONNECTED needs constant weights; this does not).
    BatchMatMul,
    /// Element-wise subtraction `a - b` with broadcasting (float). Inputs: `[a, b]`.
    Sub {
        /// Fused activation.
        activation: Activation,
    },
    /// Element-wise division `a / b` with broadcasting (float). Inputs: `[a, b]`.
    Div {
        /// Fused activation.
        activation: Activation,
    },
    /// Average pooling over NHWC. Inputs: `[input]`.
    AvgPool2d {
        /// Window height.
        filter_h: usize,
        /// Window width.
        filter_w: usize,
        /// Strides and padding (dilation is 1).
        window: Window,
        /// Fused activation.
        activation: Activation,
    },
    /// Max pooling over NHWC. Inputs: `[input]`.
    MaxPool2d {
        /// Window height.
        filter_h: usize,
        /// Window width.
        filter_w: usize,
        /// Strides and padding (dilation is 1).
        window: Window,
        /// Fused activation.
        activation: Activation,
    },
    /// Same bytes, new shape (the output tensor's). Inputs: `[input]`.
    Reshape,
    /// Softmax over the last dimension. Inputs: `[input]`.
    Softmax {
        /// Inverse temperature.
        beta: f32,
    },
    /// Float to integer, or integer requantization. Inputs: `[input]`.
    Quantize,
    /// Integer to float. Inputs: `[input]`.
    Dequantize,
    /// Singular value decomposition filter (a rank-limited recurrent layer).
    /// Inputs: `[input (B, I), weights_feature (F, I), weights_time (F, M), bias U?, state (B, F*M)]`.
    Svdf {
        /// Rank of the decomposition (`F = units * rank`).
        rank: usize,
        /// Fused activation (float models only; TFLM ignores it for integer models).
        activation: Activation,
    },
    /// Constant padding. Inputs: `[input]`; the pad value is the output's zero point (0.0 for float).
    Pad {
        /// `(before, after)` per dimension.
        pads: Vec<(usize, usize)>,
    },
    /// The block of the input from `begin`, as large as the output (TFLite's SLICE with
    /// constant begin and size). Inputs: `[input]`.
    Slice {
        /// The first index taken, per dimension.
        begin: Vec<usize>,
    },
    /// Concatenation along `axis`. Inputs: any number, same rank.
    Concat {
        /// The dimension joined.
        axis: usize,
        /// Fused activation.
        activation: Activation,
    },
    /// Mean over `axes`. Inputs: `[input]`.
    Mean {
        /// Dimensions reduced, sorted and unique.
        axes: Vec<usize>,
        /// Keep reduced dimensions as size 1.
        keep_dims: bool,
    },
    /// Dimension permutation: output dim `i` is input dim `perm[i]`. Inputs: `[input]`.
    Transpose {
        /// The permutation.
        perm: Vec<usize>,
    },
    /// `max(x, 0)`, with requantization. Inputs: `[input]`.
    Relu,
    /// `clamp(x, 0, 6)` in the input's quantization. Inputs: `[input]`.
    Relu6,
    /// `clamp(x, min, max)` on real values: for a quantized tensor the bounds are quantized in
    /// its parameters (and the output keeps them); for an integer tensor without quantization
    /// they apply to the integers. `min > max` gives `max` everywhere (ONNX's Clip). Inputs:
    /// `[input]`.
    Clamp {
        /// Lower bound (`-inf`: none).
        min: f32,
        /// Upper bound (`inf`: none).
        max: f32,
    },
    /// Sigmoid. Inputs: `[input]`.
    Logistic,
    /// Hyperbolic tangent. Inputs: `[input]`.
    Tanh,
    /// A multiply-accumulate op (conv, depthwise conv, fully connected) whose output is added,
    /// element by element, to another tensor of the same shape, as a residual connection does,
    /// without storing the op's own output: TFLite's ADD runs in the op's epilogue. A graph
    /// pass makes it; the values are those of the two ops run one after the other.
    /// Inputs: the multiply-accumulate op's three (bias optional), then the other addend.
    ResidualAdd {
        /// The multiply-accumulate op.
        mac: Box<Op>,
        /// The type its output would have (the ADD rescales from that quantization).
        mac_output: TensorType,
        /// The ADD's fused activation.
        activation: Activation,
    },
}

/// The attributes of AVERAGE_POOL_2D and MAX_POOL_2D, read the same way by every consumer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pooling {
    /// Average (true) or maximum (false).
    pub average: bool,
    /// Window height.
    pub filter_h: usize,
    /// Window width.
    pub filter_w: usize,
    /// Strides and padding.
    pub window: Window,
    /// Fused activation.
    pub activation: Activation,
}

impl Pooling {
    /// The AVERAGE_POOL_2D or MAX_POOL_2D op with these attributes (the inverse of
    /// [`Op::pooling`]).
    pub fn op(self) -> Op {
        let Pooling {
            average,
            filter_h,
            filter_w,
            window,
            activation,
        } = self;
        if average {
            Op::AvgPool2d {
                filter_h,
                filter_w,
                window,
                activation,
            }
        } else {
            Op::MaxPool2d {
                filter_h,
                filter_w,
                window,
                activation,
            }
        }
    }
}

impl Op {
    /// The pooling attributes, if this is a pooling op.
    pub fn pooling(&self) -> Option<Pooling> {
        let (average, filter_h, filter_w, window, activation) = match self {
            Op::AvgPool2d {
                filter_h,
                filter_w,
                window,
                activation,
            } => (true, filter_h, filter_w, window, activation),
            Op::MaxPool2d {
                filter_h,
                filter_w,
                window,
                activation,
            } => (false, filter_h, filter_w, window, activation),
            _ => return None,
        };
        Some(Pooling {
            average,
            filter_h: *filter_h,
            filter_w: *filter_w,
            window: *window,
            activation: *activation,
        })
    }

    /// Short lowercase name used in dumps and op counts (`conv2d`, `fully_connected`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Conv2d { .. } => "conv2d",
            Op::DepthwiseConv2d { .. } => "depthwise_conv2d",
            Op::FullyConnected { .. } => "fully_connected",
            Op::Add { .. } => "add",
            Op::Mul { .. } => "mul",
            Op::BatchMatMul => "batch_matmul",
            Op::Sub { .. } => "sub",
            Op::Div { .. } => "div",
            Op::AvgPool2d { .. } => "avg_pool2d",
            Op::MaxPool2d { .. } => "max_pool2d",
            Op::Reshape => "reshape",
            Op::Softmax { .. } => "softmax",
            Op::Quantize => "quantize",
            Op::Dequantize => "dequantize",
            Op::Svdf { .. } => "svdf",
            Op::Pad { .. } => "pad",
            Op::Slice { .. } => "slice",
            Op::Concat { .. } => "concat",
            Op::Mean { .. } => "mean",
            Op::Transpose { .. } => "transpose",
            Op::Relu => "relu",
            Op::Relu6 => "relu6",
            Op::Clamp { .. } => "clamp",
            Op::Logistic => "logistic",
            Op::Tanh => "tanh",
            Op::ResidualAdd { mac, .. } => match **mac {
                Op::Conv2d { .. } => "conv2d_add",
                Op::DepthwiseConv2d { .. } => "depthwise_conv2d_add",
                _ => "fully_connected_add",
            },
        }
    }

    /// How a multiply-accumulate op (or the one a fused ADD wraps) stores its weights;
    /// [`WeightLayout::Bytes`] for every other op.
    pub fn weight_layout(&self) -> WeightLayout {
        match self {
            Op::Conv2d { weights, .. }
            | Op::DepthwiseConv2d { weights, .. }
            | Op::FullyConnected { weights, .. } => *weights,
            Op::ResidualAdd { mac, .. } => mac.weight_layout(),
            _ => WeightLayout::Bytes,
        }
    }

    /// The op with its weights stored as `layout`, if it is a multiply-accumulate op (or
    /// wraps one).
    pub fn with_weight_layout(&self, layout: WeightLayout) -> Option<Op> {
        let mut op = self.clone();
        match &mut op {
            Op::Conv2d { weights, .. }
            | Op::DepthwiseConv2d { weights, .. }
            | Op::FullyConnected { weights, .. } => *weights = layout,
            Op::ResidualAdd { mac, .. } => **mac = mac.with_weight_layout(layout)?,
            _ => return None,
        }
        Some(op)
    }

    /// The TFLite builtin name of the op (`CONV_2D`, ...), used by `inspect` so its op counts
    /// read the same as TFLite's tools.
    pub fn tflite_name(&self) -> &'static str {
        match self {
            Op::Conv2d { .. } => "CONV_2D",
            Op::DepthwiseConv2d { .. } => "DEPTHWISE_CONV_2D",
            Op::FullyConnected { .. } => "FULLY_CONNECTED",
            Op::Add { .. } => "ADD",
            Op::Mul { .. } => "MUL",
            Op::BatchMatMul => "BATCH_MATMUL",
            Op::Sub { .. } => "SUB",
            Op::Div { .. } => "DIV",
            Op::AvgPool2d { .. } => "AVERAGE_POOL_2D",
            Op::MaxPool2d { .. } => "MAX_POOL_2D",
            Op::Reshape => "RESHAPE",
            Op::Softmax { .. } => "SOFTMAX",
            Op::Quantize => "QUANTIZE",
            Op::Dequantize => "DEQUANTIZE",
            Op::Svdf { .. } => "SVDF",
            Op::Pad { .. } => "PAD",
            Op::Slice { .. } => "SLICE",
            Op::Concat { .. } => "CONCATENATION",
            Op::Mean { .. } => "MEAN",
            Op::Transpose { .. } => "TRANSPOSE",
            Op::Relu => "RELU",
            Op::Relu6 => "RELU6",
            // TFLite has no general clamp; the ONNX name.
            Op::Clamp { .. } => "CLIP",
            Op::Logistic => "LOGISTIC",
            Op::Tanh => "TANH",
            // Not TFLite builtins: what a fused pair reports itself as.
            Op::ResidualAdd { mac, .. } => match **mac {
                Op::Conv2d { .. } => "CONV_2D_ADD",
                Op::DepthwiseConv2d { .. } => "DEPTHWISE_CONV_2D_ADD",
                _ => "FULLY_CONNECTED_ADD",
            },
        }
    }

    /// The attributes in the stable text form (`stride=2x2 padding=same act=relu`).
    pub fn attrs(&self) -> String {
        match self {
            Op::Conv2d {
                window: w,
                activation,
                weights,
            } => format!("{} act={activation}{}", window(w), layout(weights)),
            Op::DepthwiseConv2d {
                window: w,
                depth_multiplier,
                activation,
                weights,
            } => {
                format!(
                    "{} multiplier={depth_multiplier} act={activation}{}",
                    window(w),
                    layout(weights)
                )
            }
            Op::FullyConnected {
                activation,
                keep_num_dims,
                weights,
            } => {
                format!(
                    "act={activation} keep_num_dims={keep_num_dims}{}",
                    layout(weights)
                )
            }
            Op::Add { activation }
            | Op::Mul { activation }
            | Op::Sub { activation }
            | Op::Div { activation } => format!("act={activation}"),
            Op::Clamp { min, max } => format!("min={min} max={max}"),
            Op::AvgPool2d {
                filter_h,
                filter_w,
                window: w,
                activation,
            }
            | Op::MaxPool2d {
                filter_h,
                filter_w,
                window: w,
                activation,
            } => {
                format!(
                    "filter={filter_h}x{filter_w} {} act={activation}",
                    window(w)
                )
            }
            Op::Softmax { beta } => format!("beta={beta}"),
            Op::Svdf { rank, activation } => format!("rank={rank} act={activation}"),
            Op::Pad { pads } => format!("pads={pads:?}"),
            Op::Slice { begin } => format!("begin={begin:?}"),
            Op::Concat { axis, activation } => format!("axis={axis} act={activation}"),
            Op::Mean { axes, keep_dims } => format!("axes={axes:?} keep_dims={keep_dims}"),
            Op::Transpose { perm } => format!("perm={perm:?}"),
            Op::ResidualAdd {
                mac, activation, ..
            } => format!("{} add_act={activation}", mac.attrs()),
            Op::Reshape
            | Op::BatchMatMul
            | Op::Quantize
            | Op::Dequantize
            | Op::Relu
            | Op::Relu6
            | Op::Logistic
            | Op::Tanh => String::new(),
        }
    }
}

/// A window's stride, padding and (where not 1) dilation, as [`Op::attrs`] writes them.
fn window(w: &Window) -> String {
    let pad = match w.padding {
        Padding::Same => "same".to_string(),
        Padding::Valid => "valid".to_string(),
        Padding::Explicit {
            top,
            bottom,
            left,
            right,
        } => {
            format!("explicit({top},{bottom},{left},{right})")
        }
    };
    let mut s = format!("stride={}x{} padding={pad}", w.stride_h, w.stride_w);
    if w.dilation_h != 1 || w.dilation_w != 1 {
        s += &format!(" dilation={}x{}", w.dilation_h, w.dilation_w);
    }
    s
}

/// A weight layout as [`Op::attrs`] writes it: nothing for the model's own layout, so the
/// text of an imported graph is unchanged.
fn layout(weights: &WeightLayout) -> &'static str {
    match weights {
        WeightLayout::Bytes => "",
        WeightLayout::Wide => " weights=wide",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_stride_2_puts_the_extra_row_after() {
        // in 10, filter 3, stride 2: out 5, total pad (4*2+3-10)=1, before 0.
        let g = Window::square(2, Padding::Same).resolve_h(10, 3).unwrap();
        assert_eq!(
            g,
            AxisGeometry {
                out: 5,
                pad_before: 0
            }
        );
        // in 49, filter 10, stride 2: out 25, total pad 24*2+10-49=9, before 4.
        let g = Window::square(2, Padding::Same).resolve_h(49, 10).unwrap();
        assert_eq!(
            g,
            AxisGeometry {
                out: 25,
                pad_before: 4
            }
        );
    }

    #[test]
    fn valid_padding_stride_2() {
        let g = Window::square(2, Padding::Valid).resolve_w(10, 3).unwrap();
        assert_eq!(
            g,
            AxisGeometry {
                out: 4,
                pad_before: 0
            }
        );
        assert!(Window::square(1, Padding::Valid).resolve_w(2, 3).is_none());
    }

    #[test]
    fn dilation_widens_the_window() {
        let w = Window {
            dilation_h: 2,
            ..Window::square(1, Padding::Valid)
        };
        assert_eq!(w.resolve_h(7, 3).unwrap().out, 3);
    }

    #[test]
    fn explicit_padding() {
        let w = Window::square(
            1,
            Padding::Explicit {
                top: 1,
                bottom: 1,
                left: 2,
                right: 0,
            },
        );
        assert_eq!(
            w.resolve_h(5, 3).unwrap(),
            AxisGeometry {
                out: 5,
                pad_before: 1
            }
        );
        assert_eq!(
            w.resolve_w(5, 3).unwrap(),
            AxisGeometry {
                out: 5,
                pad_before: 2
            }
        );
    }
}
