//! The subset of the TFLite flatbuffer schema that minnow reads, written from the format's field
//! ids (`schema.fbs`: field `n` of a table sits at vtable slot `4 + 2n`).
//!
//! Each table is a thin typed view over a verified buffer, in the style of `flatc`'s generated
//! Rust: the [`flatbuffers`] crate's verifier checks every offset, vector and string of the fields
//! declared here before any accessor runs, so the accessors cannot read out of bounds. Fields
//! not declared here are never read.

use flatbuffers::{
    Follow, ForwardsUOffset, InvalidFlatbuffer, Table, Vector, Verifiable, Verifier,
};

/// Declares a table view: its scalar fields (with defaults) and its offset fields (optional).
macro_rules! fb_table {
    ($(#[$doc:meta])* $name:ident {
        $( scalar $s:ident : $sty:ty = $sslot:expr, $sdef:expr; )*
        $( offset $o:ident : $oty:ty = $oslot:expr; )*
    }) => {
        $(#[$doc])*
        #[derive(Clone, Copy)]
        pub struct $name<'a> {
            #[allow(dead_code)] // `Opaque` has no accessors
            tab: Table<'a>,
        }

        impl<'a> Follow<'a> for $name<'a> {
            type Inner = $name<'a>;
            unsafe fn follow(buf: &'a [u8], loc: usize) -> Self::Inner {
                // SAFETY: the caller guarantees `loc` is a verified table of this type.
                $name { tab: unsafe { Table::new(buf, loc) } }
            }
        }

        impl<'a> Verifiable for $name<'a> {
            fn run_verifier(v: &mut Verifier, pos: usize) -> Result<(), InvalidFlatbuffer> {
                v.visit_table(pos)?
                    $( .visit_field::<$sty>(stringify!($s), $sslot, false)? )*
                    $( .visit_field::<ForwardsUOffset<$oty>>(stringify!($o), $oslot, false)? )*
                    .finish();
                Ok(())
            }
        }

        impl<'a> $name<'a> {
            $(
                #[doc = concat!("The `", stringify!($s), "` field.")]
                pub fn $s(&self) -> $sty {
                    // SAFETY: verified by `run_verifier` before this view was created.
                    unsafe { self.tab.get::<$sty>($sslot, Some($sdef)).unwrap_or($sdef) }
                }
            )*
            $(
                #[doc = concat!("The `", stringify!($o), "` field, if present.")]
                pub fn $o(&self) -> Option<<$oty as Follow<'a>>::Inner> {
                    // SAFETY: verified by `run_verifier` before this view was created.
                    unsafe { self.tab.get::<ForwardsUOffset<$oty>>($oslot, None) }
                }
            )*
        }
    };
}

fb_table!(
    /// Which operator an `Operator` entry runs.
    OperatorCode {
        scalar deprecated_builtin_code: i8 = 4, 0;
        scalar version: i32 = 8, 1;
        scalar builtin_code: i32 = 10, 0;
        offset custom_code: &'a str = 6;
    }
);

fb_table!(
    /// A tensor's type, shape, buffer and quantization.
    Tensor {
        scalar tensor_type: i8 = 6, 0;
        scalar buffer: u32 = 8, 0;
        scalar is_variable: bool = 14, false;
        offset shape: Vector<'a, i32> = 4;
        offset name: &'a str = 10;
        offset quantization: QuantizationParameters<'a> = 12;
        offset sparsity: Opaque<'a> = 16;
    }
);

fb_table!(
    /// Affine quantization parameters.
    QuantizationParameters {
        scalar quantized_dimension: i32 = 16, 0;
        offset scale: Vector<'a, f32> = 8;
        offset zero_point: Vector<'a, i64> = 10;
    }
);

fb_table!(
    /// Raw bytes of a constant, inline or (for models over 2 GB) at an offset in the file.
    Buffer {
        scalar offset: u64 = 6, 0;
        scalar size: u64 = 8, 0;
        offset data: Vector<'a, u8> = 4;
    }
);

fb_table!(
    /// A table minnow only checks the presence of (sparsity parameters).
    Opaque {}
);

fb_table!(
    /// One operator invocation.
    Operator {
        scalar opcode_index: u32 = 4, 0;
        scalar builtin_options_type: u8 = 10, 0;
        offset inputs: Vector<'a, i32> = 6;
        offset outputs: Vector<'a, i32> = 8;
    }
);

/// `builtin_options` union tags minnow reads (`BuiltinOptions` in the schema).
pub mod options_type {
    /// `Conv2DOptions`.
    pub const CONV_2D: u8 = 1;
    /// `DepthwiseConv2DOptions`.
    pub const DEPTHWISE_CONV_2D: u8 = 2;
    /// `Pool2DOptions`.
    pub const POOL_2D: u8 = 5;
    /// `SVDFOptions`.
    pub const SVDF: u8 = 6;
    /// `FullyConnectedOptions`.
    pub const FULLY_CONNECTED: u8 = 8;
    /// `SoftmaxOptions`.
    pub const SOFTMAX: u8 = 9;
    /// `ConcatenationOptions`.
    pub const CONCATENATION: u8 = 10;
    /// `AddOptions`.
    pub const ADD: u8 = 11;
    /// `MulOptions`.
    pub const MUL: u8 = 21;
    /// `ReducerOptions`.
    pub const REDUCER: u8 = 27;
}

fb_table!(
    /// Options of CONV_2D.
    Conv2DOptions {
        scalar padding: i8 = 4, 0;
        scalar stride_w: i32 = 6, 0;
        scalar stride_h: i32 = 8, 0;
        scalar fused_activation_function: i8 = 10, 0;
        scalar dilation_w_factor: i32 = 12, 1;
        scalar dilation_h_factor: i32 = 14, 1;
    }
);

fb_table!(
    /// Options of DEPTHWISE_CONV_2D.
    DepthwiseConv2DOptions {
        scalar padding: i8 = 4, 0;
        scalar stride_w: i32 = 6, 0;
        scalar stride_h: i32 = 8, 0;
        scalar depth_multiplier: i32 = 10, 0;
        scalar fused_activation_function: i8 = 12, 0;
        scalar dilation_w_factor: i32 = 14, 1;
        scalar dilation_h_factor: i32 = 16, 1;
    }
);

fb_table!(
    /// Options of AVERAGE_POOL_2D and MAX_POOL_2D.
    Pool2DOptions {
        scalar padding: i8 = 4, 0;
        scalar stride_w: i32 = 6, 0;
        scalar stride_h: i32 = 8, 0;
        scalar filter_width: i32 = 10, 0;
        scalar filter_height: i32 = 12, 0;
        scalar fused_activation_function: i8 = 14, 0;
    }
);

fb_table!(
    /// Options of FULLY_CONNECTED.
    FullyConnectedOptions {
        scalar fused_activation_function: i8 = 4, 0;
        scalar weights_format: i8 = 6, 0;
        scalar keep_num_dims: bool = 8, false;
    }
);

fb_table!(
    /// Options of ADD and MUL (the same layout).
    ActivationOptions {
        scalar fused_activation_function: i8 = 4, 0;
    }
);

fb_table!(
    /// Options of SOFTMAX.
    SoftmaxOptions {
        scalar beta: f32 = 4, 0.0;
    }
);

fb_table!(
    /// Options of SVDF.
    SvdfOptions {
        scalar rank: i32 = 4, 0;
        scalar fused_activation_function: i8 = 6, 0;
    }
);

fb_table!(
    /// Options of CONCATENATION.
    ConcatenationOptions {
        scalar axis: i32 = 4, 0;
        scalar fused_activation_function: i8 = 6, 0;
    }
);

fb_table!(
    /// Options of MEAN (and the other reducers).
    ReducerOptions {
        scalar keep_dims: bool = 4, false;
    }
);

/// Verifies the options union of an operator for the tags minnow reads. Tables under other
/// tags are left unverified and are never read.
fn verify_options(tag: u8, v: &mut Verifier, pos: usize) -> Result<(), InvalidFlatbuffer> {
    use options_type::*;
    match tag {
        CONV_2D => ForwardsUOffset::<Conv2DOptions>::run_verifier(v, pos),
        DEPTHWISE_CONV_2D => ForwardsUOffset::<DepthwiseConv2DOptions>::run_verifier(v, pos),
        POOL_2D => ForwardsUOffset::<Pool2DOptions>::run_verifier(v, pos),
        SVDF => ForwardsUOffset::<SvdfOptions>::run_verifier(v, pos),
        FULLY_CONNECTED => ForwardsUOffset::<FullyConnectedOptions>::run_verifier(v, pos),
        SOFTMAX => ForwardsUOffset::<SoftmaxOptions>::run_verifier(v, pos),
        CONCATENATION => ForwardsUOffset::<ConcatenationOptions>::run_verifier(v, pos),
        ADD | MUL => ForwardsUOffset::<ActivationOptions>::run_verifier(v, pos),
        REDUCER => ForwardsUOffset::<ReducerOptions>::run_verifier(v, pos),
        _ => Ok(()),
    }
}

/// An operator together with its verified options union.
#[derive(Clone, Copy)]
pub struct OperatorWithOptions<'a> {
    op: Operator<'a>,
}

impl<'a> Follow<'a> for OperatorWithOptions<'a> {
    type Inner = OperatorWithOptions<'a>;
    unsafe fn follow(buf: &'a [u8], loc: usize) -> Self::Inner {
        // SAFETY: forwarded from the caller's guarantee.
        OperatorWithOptions {
            op: unsafe { Operator::follow(buf, loc) },
        }
    }
}

impl Verifiable for OperatorWithOptions<'_> {
    fn run_verifier(v: &mut Verifier, pos: usize) -> Result<(), InvalidFlatbuffer> {
        Operator::run_verifier(v, pos)?;
        v.visit_table(pos)?
            .visit_union::<u8, _>(
                "builtin_options_type",
                10,
                "builtin_options",
                12,
                false,
                verify_options,
            )?
            .finish();
        Ok(())
    }
}

impl<'a> OperatorWithOptions<'a> {
    /// The operator's plain fields.
    pub fn op(&self) -> Operator<'a> {
        self.op
    }

    /// The options table if its union tag is `tag`; `None` if absent or of another type.
    pub fn options<T: Follow<'a, Inner = T> + 'a>(&self, tag: u8) -> Option<T> {
        if self.op.builtin_options_type() != tag {
            return None;
        }
        // SAFETY: the union was verified as the table type that belongs to `tag`, and the
        // importer asks for exactly that type with that tag.
        unsafe { self.op.tab.get::<ForwardsUOffset<T>>(12, None) }
    }
}

fb_table!(
    /// One graph of the model (minnow runs the first), its operators viewed with their
    /// options (see [`OperatorWithOptions`]).
    SubGraph {
        offset tensors: Vector<'a, ForwardsUOffset<Tensor<'a>>> = 4;
        offset inputs: Vector<'a, i32> = 6;
        offset outputs: Vector<'a, i32> = 8;
        offset operators: Vector<'a, ForwardsUOffset<OperatorWithOptions<'a>>> = 10;
        offset name: &'a str = 12;
    }
);

fb_table!(
    /// The root table.
    Model {
        scalar version: u32 = 4, 0;
        offset operator_codes: Vector<'a, ForwardsUOffset<OperatorCode<'a>>> = 6;
        offset subgraphs: Vector<'a, ForwardsUOffset<SubGraph<'a>>> = 8;
        offset buffers: Vector<'a, ForwardsUOffset<Buffer<'a>>> = 12;
    }
);

/// Verifies `bytes` as a TFLite model and returns its root.
pub fn root(bytes: &[u8]) -> Result<Model<'_>, InvalidFlatbuffer> {
    let opts = flatbuffers::VerifierOptions {
        max_tables: 10_000_000,
        max_apparent_size: 1 << 33,
        ..Default::default()
    };
    flatbuffers::root_with_opts::<Model>(&opts, bytes)
}
