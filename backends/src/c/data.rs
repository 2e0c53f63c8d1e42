//! Constant arrays: weights, biases and derived tables as `static const` C arrays.

use super::func::c_type;
use minnow_ir::loops::interp::Storage;
use minnow_ir::loops::Slot;
use std::fmt::Write;

/// Values per line of an emitted array.
const PER_LINE: usize = 24;

/// Writes `bytes` (little-endian elements of the slot's type) as a 4-byte aligned array.
pub(super) fn write_array(c: &mut String, name: &str, slot: &Slot, bytes: &[u8], constant: bool) {
    let ty = c_type(slot.elem);
    let qualifier = if constant { "static const" } else { "static" };
    let _ = writeln!(c, "/* {} */", slot.name.replace("*/", "* /"));
    let len = slot.len.max(1);
    let _ = writeln!(
        c,
        "{qualifier} {ty} {name}[{len}] __attribute__((aligned(4))) = {{"
    );
    let values: Vec<String> = match Storage::from_le_bytes(slot.elem, bytes) {
        Storage::F32(v) => v.iter().map(|f| super::func::float_literal(*f)).collect(),
        Storage::Int { data, elem } => data
            .iter()
            .map(|v| super::func::int_literal(*v, elem))
            .collect(),
    };
    for line in values.chunks(PER_LINE) {
        let _ = writeln!(c, "  {},", line.join(", "));
    }
    if values.is_empty() {
        let _ = writeln!(c, "  0");
    }
    let _ = writeln!(c, "}};");
}
