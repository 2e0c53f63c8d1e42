//! Translation of TFLite operators (builtin code + options + operand tensors) into [`Op`]s.

use super::schema::{self, options_type as opt, OperatorWithOptions};
use super::{ImportCx, SUPPORTED_OPS};
use crate::error::Error;
use crate::graph::TensorId;
use crate::op::{Activation, Op, Padding, Pooling, Window};
use crate::types::DType;

/// TFLite builtin operator codes minnow imports.
mod code {
    pub const ADD: i32 = 0;
    pub const AVERAGE_POOL_2D: i32 = 1;
    pub const CONCATENATION: i32 = 2;
    pub const CONV_2D: i32 = 3;
    pub const DEPTHWISE_CONV_2D: i32 = 4;
    pub const DEQUANTIZE: i32 = 6;
    pub const FULLY_CONNECTED: i32 = 9;
    pub const LOGISTIC: i32 = 14;
    pub const MAX_POOL_2D: i32 = 17;
    pub const MUL: i32 = 18;
    pub const RELU: i32 = 19;
    pub const RELU6: i32 = 21;
    pub const RESHAPE: i32 = 22;
    pub const SOFTMAX: i32 = 25;
    pub const SVDF: i32 = 27;
    pub const TANH: i32 = 28;
    pub const PAD: i32 = 34;
    pub const TRANSPOSE: i32 = 39;
    pub const MEAN: i32 = 40;
    pub const QUANTIZE: i32 = 114;
    pub const CUSTOM: i32 = 32;
}

/// One operator being translated: its index, name and operands.
struct OpCx<'a> {
    index: usize,
    name: String,
    op: OperatorWithOptions<'a>,
    inputs: Vec<Option<TensorId>>,
}

/// The window of a convolution's options `o` (CONV_2D's and DEPTHWISE_CONV_2D's tables are
/// distinct types with the same fields).
macro_rules! conv_window {
    ($importer:expr, $cx:expr, $o:expr) => {
        $importer.window(
            $cx,
            $o.padding(),
            $o.stride_h(),
            $o.stride_w(),
            $o.dilation_h_factor(),
            $o.dilation_w_factor(),
        )
    };
}

impl<'a> ImportCx<'a> {
    /// Translates every operator of the subgraph, in file order.
    pub(super) fn import_operators(&mut self) -> Result<(), Error> {
        let Some(operators) = self.subgraph.operators() else {
            return Ok(());
        };
        for index in 0..operators.len() {
            self.import_operator(index, operators.get(index))?;
        }
        Ok(())
    }

    fn import_operator(&mut self, index: usize, op: OperatorWithOptions<'a>) -> Result<(), Error> {
        let (builtin, name) = self.opcode(index, &op)?;
        if !SUPPORTED_OPS.contains(&name.as_str()) {
            return Err(Error::UnsupportedOp {
                path: self.path.to_string(),
                op: name,
                index,
                supported: SUPPORTED_OPS.join(", "),
            });
        }
        let mut inputs = Vec::new();
        for t in op.op().inputs().iter().flat_map(|v| v.iter()) {
            inputs.push(self.tensor(t, Some((index, &name)))?);
        }
        let mut outputs = Vec::new();
        for t in op.op().outputs().iter().flat_map(|v| v.iter()) {
            let id = self.tensor(t, Some((index, &name)))?;
            outputs.push(id.ok_or_else(|| {
                self.malformed(format!("operator #{index} ({name}) has an output of -1"))
            })?);
        }
        if inputs.first().copied().flatten().is_none() || outputs.len() != 1 {
            return Err(self.malformed(format!(
                "operator #{index} ({name}) has {} inputs and {} outputs",
                inputs.len(),
                outputs.len()
            )));
        }
        let mut cx = OpCx {
            index,
            name,
            op,
            inputs,
        };
        let ir_op = self.translate(builtin, &mut cx)?;
        let node_inputs = std::mem::take(&mut cx.inputs);
        let id = self
            .graph
            .add_op(ir_op, node_inputs, outputs)
            .map_err(|e| self.malformed(format!("operator #{index} ({}): {e}", cx.name)))?;
        let node = self.graph.node(id);
        let want = crate::shape::infer(&self.graph, node)
            .map_err(|e| self.malformed(format!("operator #{index} ({}): {e}", cx.name)))?;
        let got = &self.graph.tensor(node.outputs[0]).ty.shape;
        if &want != got {
            return Err(self.malformed(format!(
                "operator #{index} ({}): output tensor has shape {got:?} but its operands give {want:?}",
                cx.name
            )));
        }
        Ok(())
    }

    /// The builtin code and display name of an operator.
    fn opcode(&self, index: usize, op: &OperatorWithOptions<'a>) -> Result<(i32, String), Error> {
        let codes = self
            .model
            .operator_codes()
            .ok_or_else(|| self.malformed("the model has no operator codes".into()))?;
        let i = op.op().opcode_index() as usize;
        if i >= codes.len() {
            return Err(self.malformed(format!(
                "operator #{index} uses opcode {i}, but there are {}",
                codes.len()
            )));
        }
        let c = codes.get(i);
        let builtin = c.builtin_code().max(c.deprecated_builtin_code() as i32);
        let name = if builtin == code::CUSTOM {
            format!("CUSTOM:{}", c.custom_code().unwrap_or("?"))
        } else {
            builtin_name(builtin)
        };
        Ok((builtin, name))
    }

    /// The operator `builtin` of `cx`, its options read and checked.
    fn translate(&mut self, builtin: i32, cx: &mut OpCx<'a>) -> Result<Op, Error> {
        Ok(match builtin {
            code::CONV_2D => self.conv2d(cx)?,
            code::DEPTHWISE_CONV_2D => self.depthwise_conv2d(cx)?,
            code::FULLY_CONNECTED => self.fully_connected(cx)?,
            code::ADD | code::MUL => self.add_or_mul(builtin, cx)?,
            code::AVERAGE_POOL_2D | code::MAX_POOL_2D => self.pooling(builtin, cx)?,
            code::RESHAPE => {
                cx.inputs.truncate(1);
                Op::Reshape
            }
            code::SOFTMAX => {
                let o: schema::SoftmaxOptions = self.options(cx, opt::SOFTMAX)?;
                Op::Softmax { beta: o.beta() }
            }
            code::SVDF => self.svdf(cx)?,
            code::CONCATENATION => self.concatenation(cx)?,
            code::MEAN => self.mean(cx)?,
            code::PAD => self.pad(cx)?,
            code::TRANSPOSE => self.transpose(cx)?,
            code::QUANTIZE => Op::Quantize,
            code::DEQUANTIZE => Op::Dequantize,
            code::RELU => Op::Relu,
            code::RELU6 => Op::Relu6,
            code::LOGISTIC => Op::Logistic,
            code::TANH => Op::Tanh,
            _ => unreachable!("SUPPORTED_OPS and translate() list the same operators"),
        })
    }

    /// The convolution.
    fn conv2d(&mut self, cx: &mut OpCx<'a>) -> Result<Op, Error> {
        let o: schema::Conv2DOptions = self.options(cx, opt::CONV_2D)?;
        let window = conv_window!(self, cx, o)?;
        Ok(Op::Conv2d {
            weights: crate::WeightLayout::Bytes,
            window,
            activation: self.activation(cx, o.fused_activation_function())?,
        })
    }

    /// The depthwise convolution.
    fn depthwise_conv2d(&mut self, cx: &mut OpCx<'a>) -> Result<Op, Error> {
        let o: schema::DepthwiseConv2DOptions = self.options(cx, opt::DEPTHWISE_CONV_2D)?;
        let window = conv_window!(self, cx, o)?;
        // Like TFLite Micro, take the multiplier from the shapes: old converters wrote 0 or 1.
        let in_c = *self.shape(cx, 0).last().unwrap_or(&1);
        let out_c = *self.shape(cx, 1).last().unwrap_or(&1);
        if in_c == 0 || out_c % in_c != 0 {
            return Err(self.use_error(
                cx,
                format!("filter depth {out_c} is not a multiple of input depth {in_c}"),
            ));
        }
        Ok(Op::DepthwiseConv2d {
            weights: crate::WeightLayout::Bytes,
            window,
            depth_multiplier: out_c / in_c,
            activation: self.activation(cx, o.fused_activation_function())?,
        })
    }

    /// The fully connected layer.
    fn fully_connected(&mut self, cx: &mut OpCx<'a>) -> Result<Op, Error> {
        let o: schema::FullyConnectedOptions = self.options(cx, opt::FULLY_CONNECTED)?;
        if o.weights_format() != 0 {
            return Err(self.use_error(cx, "shuffled weight formats are not supported".into()));
        }
        Ok(Op::FullyConnected {
            weights: crate::WeightLayout::Bytes,
            activation: self.activation(cx, o.fused_activation_function())?,
            keep_num_dims: o.keep_num_dims(),
        })
    }

    /// ADD or MUL (`builtin`).
    fn add_or_mul(&mut self, builtin: i32, cx: &mut OpCx<'a>) -> Result<Op, Error> {
        let tag = if builtin == code::ADD {
            opt::ADD
        } else {
            opt::MUL
        };
        let o: schema::ActivationOptions = self.options(cx, tag)?;
        let activation = self.activation(cx, o.fused_activation_function())?;
        self.expect_inputs(cx, 2)?;
        Ok(if builtin == code::ADD {
            Op::Add { activation }
        } else {
            Op::Mul { activation }
        })
    }

    /// Average or max pooling (`builtin`).
    fn pooling(&mut self, builtin: i32, cx: &mut OpCx<'a>) -> Result<Op, Error> {
        let o: schema::Pool2DOptions = self.options(cx, opt::POOL_2D)?;
        let window = self.window(cx, o.padding(), o.stride_h(), o.stride_w(), 1, 1)?;
        let (filter_h, filter_w) = (positive(o.filter_height()), positive(o.filter_width()));
        let (Some(filter_h), Some(filter_w)) = (filter_h, filter_w) else {
            return Err(self.use_error(cx, "the pooling window is empty".into()));
        };
        let activation = self.activation(cx, o.fused_activation_function())?;
        let pooling = Pooling {
            average: builtin == code::AVERAGE_POOL_2D,
            filter_h,
            filter_w,
            window,
            activation,
        };
        Ok(pooling.op())
    }

    /// The SVDF layer.
    fn svdf(&mut self, cx: &mut OpCx<'a>) -> Result<Op, Error> {
        let o: schema::SvdfOptions = self.options(cx, opt::SVDF)?;
        self.expect_inputs(cx, 5)?;
        let rank = positive(o.rank())
            .ok_or_else(|| self.use_error(cx, format!("rank {} is not positive", o.rank())))?;
        Ok(Op::Svdf {
            rank,
            activation: self.activation(cx, o.fused_activation_function())?,
        })
    }

    /// The concatenation, its axis made non-negative.
    fn concatenation(&mut self, cx: &mut OpCx<'a>) -> Result<Op, Error> {
        let o: schema::ConcatenationOptions = self.options(cx, opt::CONCATENATION)?;
        let rank = self.shape(cx, 0).len() as i32;
        let axis = if o.axis() < 0 {
            o.axis() + rank
        } else {
            o.axis()
        };
        if axis < 0 || axis >= rank {
            return Err(self.use_error(
                cx,
                format!("axis {} is out of range for rank {rank}", o.axis()),
            ));
        }
        Ok(Op::Concat {
            axis: axis as usize,
            activation: self.activation(cx, o.fused_activation_function())?,
        })
    }

    /// The mean over constant axes, sorted and made non-negative.
    fn mean(&mut self, cx: &mut OpCx<'a>) -> Result<Op, Error> {
        let keep_dims = self
            .options::<schema::ReducerOptions>(cx, opt::REDUCER)?
            .keep_dims();
        let rank = self.shape(cx, 0).len() as i64;
        let mut axes = Vec::new();
        for a in self.constant_ints(cx, 1, "axes")? {
            let a = if a < 0 { a + rank } else { a };
            if a < 0 || a >= rank {
                return Err(self.use_error(cx, format!("axis {a} is out of range for rank {rank}")));
            }
            axes.push(a as usize);
        }
        axes.sort_unstable();
        axes.dedup();
        Ok(Op::Mean { axes, keep_dims })
    }

    /// The constant padding.
    fn pad(&mut self, cx: &mut OpCx<'a>) -> Result<Op, Error> {
        let flat = self.constant_ints(cx, 1, "paddings")?;
        if flat.iter().any(|p| *p < 0) || flat.len() % 2 != 0 {
            return Err(self.use_error(cx, format!("paddings {flat:?} must be non-negative pairs")));
        }
        Ok(Op::Pad {
            pads: flat
                .chunks(2)
                .map(|p| (p[0] as usize, p[1] as usize))
                .collect(),
        })
    }

    /// The transpose by a constant permutation.
    fn transpose(&mut self, cx: &mut OpCx<'a>) -> Result<Op, Error> {
        let perm = self.constant_ints(cx, 1, "permutation")?;
        if perm.iter().any(|p| *p < 0) {
            return Err(self.use_error(cx, format!("permutation {perm:?} has a negative entry")));
        }
        Ok(Op::Transpose {
            perm: perm.iter().map(|p| *p as usize).collect(),
        })
    }

    /// The options table of `cx`'s operator, or an error if it is absent or of the wrong type.
    fn options<T: flatbuffers::Follow<'a, Inner = T> + 'a>(
        &self,
        cx: &OpCx<'a>,
        tag: u8,
    ) -> Result<T, Error> {
        cx.op.options::<T>(tag).ok_or_else(|| {
            self.malformed(format!(
                "operator #{} ({}) lacks its options",
                cx.index, cx.name
            ))
        })
    }

    fn use_error(&self, cx: &OpCx<'a>, reason: String) -> Error {
        Error::UnsupportedUse {
            path: self.path.to_string(),
            op: cx.name.clone(),
            index: cx.index,
            reason,
        }
    }

    fn expect_inputs(&self, cx: &OpCx<'a>, n: usize) -> Result<(), Error> {
        if cx.inputs.len() != n {
            return Err(self.malformed(format!(
                "operator #{} ({}) has {} inputs, expected {n}",
                cx.index,
                cx.name,
                cx.inputs.len()
            )));
        }
        Ok(())
    }

    fn shape(&self, cx: &OpCx<'a>, i: usize) -> Vec<usize> {
        cx.inputs
            .get(i)
            .copied()
            .flatten()
            .map(|t| self.graph.tensor(t).ty.shape.clone())
            .unwrap_or_default()
    }

    /// Operand `i` read as a constant integer list, then dropped from the operands (it becomes an
    /// attribute).
    fn constant_ints(&self, cx: &mut OpCx<'a>, i: usize, what: &str) -> Result<Vec<i64>, Error> {
        let t = cx
            .inputs
            .get(i)
            .copied()
            .flatten()
            .map(|t| self.graph.tensor(t));
        let Some(t) = t.filter(|t| t.data.is_some()) else {
            return Err(self.use_error(cx, format!("the {what} operand must be a constant")));
        };
        let data = t.data.as_deref().unwrap_or_default();
        let values = match t.ty.dtype {
            DType::I32 => data
                .chunks_exact(4)
                .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64)
                .collect(),
            DType::I64 => data
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
                .collect(),
            other => {
                return Err(self.use_error(
                    cx,
                    format!("the {what} operand is {other}, expected int32 or int64"),
                ))
            }
        };
        cx.inputs.truncate(1);
        Ok(values)
    }

    fn window(
        &self,
        cx: &OpCx<'a>,
        padding: i8,
        sh: i32,
        sw: i32,
        dh: i32,
        dw: i32,
    ) -> Result<Window, Error> {
        let padding = match padding {
            0 => Padding::Same,
            1 => Padding::Valid,
            p => {
                return Err(self.malformed(format!(
                    "operator #{} ({}) has padding code {p}",
                    cx.index, cx.name
                )))
            }
        };
        match (positive(sh), positive(sw), positive(dh), positive(dw)) {
            (Some(stride_h), Some(stride_w), Some(dilation_h), Some(dilation_w)) => Ok(Window {
                stride_h,
                stride_w,
                dilation_h,
                dilation_w,
                padding,
            }),
            _ => Err(self.use_error(
                cx,
                format!("strides {sh}x{sw} and dilation {dh}x{dw} must be positive"),
            )),
        }
    }

    fn activation(&self, cx: &OpCx<'a>, code: i8) -> Result<Activation, Error> {
        Ok(match code {
            0 => Activation::None,
            1 => Activation::Relu,
            2 => Activation::ReluN1To1,
            3 => Activation::Relu6,
            4 => return Err(self.use_error(cx, "a fused TANH activation is not supported".into())),
            5 => {
                return Err(
                    self.use_error(cx, "a fused SIGN_BIT activation is not supported".into())
                )
            }
            c => {
                return Err(self.malformed(format!(
                    "operator #{} ({}) has activation code {c}",
                    cx.index, cx.name
                )))
            }
        })
    }
}

fn positive(x: i32) -> Option<usize> {
    (x > 0).then_some(x as usize)
}

/// The schema's name for a builtin operator code, for the operators users meet most; others
/// print as `BUILTIN_<code>`.
fn builtin_name(code: i32) -> String {
    let known: &[(i32, &str)] = &[
        (0, "ADD"),
        (1, "AVERAGE_POOL_2D"),
        (2, "CONCATENATION"),
        (3, "CONV_2D"),
        (4, "DEPTHWISE_CONV_2D"),
        (5, "DEPTH_TO_SPACE"),
        (6, "DEQUANTIZE"),
        (7, "EMBEDDING_LOOKUP"),
        (8, "FLOOR"),
        (9, "FULLY_CONNECTED"),
        (10, "HASHTABLE_LOOKUP"),
        (11, "L2_NORMALIZATION"),
        (12, "L2_POOL_2D"),
        (13, "LOCAL_RESPONSE_NORMALIZATION"),
        (14, "LOGISTIC"),
        (15, "LSH_PROJECTION"),
        (16, "LSTM"),
        (17, "MAX_POOL_2D"),
        (18, "MUL"),
        (19, "RELU"),
        (20, "RELU_N1_TO_1"),
        (21, "RELU6"),
        (22, "RESHAPE"),
        (23, "RESIZE_BILINEAR"),
        (24, "RNN"),
        (25, "SOFTMAX"),
        (26, "SPACE_TO_DEPTH"),
        (27, "SVDF"),
        (28, "TANH"),
        (34, "PAD"),
        (36, "GATHER"),
        (37, "BATCH_TO_SPACE_ND"),
        (38, "SPACE_TO_BATCH_ND"),
        (39, "TRANSPOSE"),
        (40, "MEAN"),
        (41, "SUB"),
        (42, "DIV"),
        (43, "SQUEEZE"),
        (44, "UNIDIRECTIONAL_SEQUENCE_LSTM"),
        (45, "STRIDED_SLICE"),
        (47, "EXP"),
        (49, "SPLIT"),
        (53, "CAST"),
        (54, "PRELU"),
        (55, "MAXIMUM"),
        (56, "ARG_MAX"),
        (57, "MINIMUM"),
        (58, "LESS"),
        (59, "NEG"),
        (60, "PADV2"),
        (65, "SLICE"),
        (67, "TRANSPOSE_CONV"),
        (70, "EXPAND_DIMS"),
        (74, "SUM"),
        (75, "SQRT"),
        (76, "RSQRT"),
        (77, "SHAPE"),
        (78, "POW"),
        (79, "ARG_MIN"),
        (81, "REDUCE_PROD"),
        (82, "REDUCE_MAX"),
        (83, "PACK"),
        (88, "UNPACK"),
        (89, "REDUCE_MIN"),
        (92, "SQUARE"),
        (97, "RESIZE_NEAREST_NEIGHBOR"),
        (98, "LEAKY_RELU"),
        (99, "SQUARED_DIFFERENCE"),
        (114, "QUANTIZE"),
        (117, "HARD_SWISH"),
        (126, "BATCH_MATMUL"),
    ];
    known
        .iter()
        .find(|(c, _)| *c == code)
        .map_or_else(|| format!("BUILTIN_{code}"), |(_, n)| n.to_string())
}
