//! TFLite's 513-entry interpolated lookup tables for int16 kernels (`LUTPopulate<int16_t>` and
//! `LUTLookup`), bit for bit.
//!
//! A table samples a function at 512 evenly spaced points of the input range (plus the end
//! point) in float arithmetic, nudging each sample so that linear interpolation is unbiased at
//! the midpoints; a lookup takes the high 9 bits of the input as the index and interpolates with
//! the low 7. The functions are evaluated with `f32` operations in TFLite's order, and `exp` is
//! the platform's `expf`, as in TFLite.

/// Entries of an int16 table: 512 samples and the end point.
pub const LUT_SIZE: usize = 513;

/// TFLite's `LUTPopulateInt16<float>`: the table of `transform` from an int16 input quantized
/// with (`input_scale`, `input_zero_point`) to an int16 output quantized with (`output_scale`,
/// `output_zero_point`).
pub fn populate_int16(
    input_scale: f32,
    input_zero_point: i32,
    output_scale: f32,
    output_zero_point: i32,
    transform: impl Fn(f32) -> f32,
) -> Vec<i16> {
    let (lo, hi) = (i16::MIN as i32, i16::MAX as i32);
    let input_min = input_scale * (lo - input_zero_point) as f32;
    let input_max = input_scale * (hi - input_zero_point) as f32;
    let output_min = output_scale * (lo - output_zero_point) as f32;
    let output_max = output_scale * (hi - output_zero_point) as f32;
    const STEPS: i32 = 512;
    let step = (input_max - input_min) / STEPS as f32;
    let half_step = step / 2.0;
    let scaling_inv = 65536.0f32 / (output_max - output_min);
    let clamp = |v: f32| v.max(lo as f32).min(hi as f32) as i16;
    let mut lut = Vec::with_capacity(LUT_SIZE);
    for i in 0..STEPS {
        let at = input_min + i as f32 * step;
        let val = transform(at);
        let val_midpoint = transform(at + half_step);
        let val_next = transform(input_min + (i + 1) as f32 * step);
        let sample = (val * scaling_inv).round();
        let midpoint_interp =
            ((val_next * scaling_inv + (val * scaling_inv).round()) / 2.0).round();
        let midpoint = (val_midpoint * scaling_inv).round();
        let bias = ((midpoint_interp - midpoint) / 2.0).round();
        lut.push(clamp(sample - bias));
    }
    lut.push(clamp((transform(input_max) * scaling_inv).round()));
    lut
}

/// TFLite's `LUTLookup` for int16: the table value at the high 9 bits of `value`, interpolated
/// by the low 7 bits.
pub fn lookup_int16(value: i16, lut: &[i16]) -> i16 {
    let index = (256 + (value >> 7) as i32) as usize;
    let offset = (value & 0x7f) as i32;
    let base = lut[index] as i32;
    let slope = lut[index + 1].wrapping_sub(lut[index]) as i32;
    let delta = (slope * offset + 64) >> 7;
    (base + delta) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_table_spans_zero_to_one_and_interpolates() {
        let range = 65535.0f32;
        let lut = populate_int16(10.0 / range, 32767, 2.0 / range, 0, f32::exp);
        assert_eq!(lut.len(), LUT_SIZE);
        // The top of the input range is exp(0) = 1.0, the largest int16.
        assert!(lookup_int16(32767, &lut) >= 32760);
        // exp(-10) is about 0.
        assert!(lookup_int16(-32768, &lut) < 5);
        // Monotone.
        assert!(lut.windows(2).all(|w| w[0] <= w[1]));
    }
}
