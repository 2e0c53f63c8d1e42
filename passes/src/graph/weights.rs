//! The weight-layout rule: a multiply-accumulate op may store its int8 weights as the model
//! gives them or widened to the 16-bit pairs its kernel multiplies ([`WeightLayout`]).
//!
//! | rule | before | after |
//! |---|---|---|
//! | `choose-weight-layout` | `conv(x, w: int8)` (and depthwise, fully connected, fused ADD) | `conv[weights=wide](x, w)` |
//!
//! Both forms compute the same tensor; the extraction prices the wide one at the instructions
//! the target's kernel saves (on Arm DSP cores, SXTB16 unpacking; on RISC-V, Winograd pairs)
//! against the flash it adds, and keeps the cheaper. The rule applies to int8 constant
//! weights; where the extracted graph has other ops read them too, the schedule keeps them in
//! bytes (`minnow_schedules::weight_is_private`): an e-graph cannot tell, as an op and its
//! fused forms (`conv` and `conv_add`) are different classes reading the same weights.

use super::rules::Rule;
use super::term::{apply, leaf_in, ModelGraph, OpEntry};
use egg::Id;
use minnow_ir::{DType, Op, TensorKind, WeightLayout};

/// `op(x, w)` is `op[weights=wide](x, w)` for a multiply-accumulate op whose weights are an
/// int8 constant.
pub struct ChooseWeightLayout;

impl Rule for ChooseWeightLayout {
    fn name(&self) -> &'static str {
        "choose-weight-layout"
    }

    fn wants(&self, op: &Op) -> bool {
        op.weight_layout() == WeightLayout::Bytes
            && op.with_weight_layout(WeightLayout::Wide).is_some()
    }

    fn rewrite(&self, g: &mut ModelGraph, _: Id, entry: &OpEntry, args: &[Id]) -> Vec<Id> {
        let Some(&weights) = args.get(1) else {
            return Vec::new();
        };
        let int8 = leaf_in(g, weights)
            .is_some_and(|w| w.kind == TensorKind::Constant && w.ty.dtype == DType::I8);
        if !int8 {
            return Vec::new();
        }
        let Some(wide) = entry.op.with_weight_layout(WeightLayout::Wide) else {
            return Vec::new();
        };
        vec![apply(g, wide, entry.output.clone(), args.to_vec())]
    }
}
