//! TFLite's int16 LOGISTIC and TANH (`reference_integer_ops::Logistic` and `Tanh` with the
//! parameters of TFLite Micro's `Prepare`), bit for bit.
//!
//! Both use one 256-entry table of `sigmoid(i / 24)` in unsigned Q0.16, since
//! `tanh(x) = 2 sigmoid(2x) - 1`, and interpolate linearly between neighbours. The input is
//! first rescaled so that 2^17 stands for about 10.7 (a scale of 1 / (3 * 4096)).
//!
//! ```
//! use minnow_ir::sigmoid16::{Sigmoid16, Function};
//! // Input scale 2^-12 (Q3.12), output scale 2^-15.
//! let p = Sigmoid16::new(Function::Logistic, 1.0 / 4096.0, 0, 1.0 / 32768.0, 0).unwrap();
//! assert_eq!(p.apply(0), 16384); // sigmoid(0) = 0.5
//! assert!(p.apply(i16::MAX) > 32700); // sigmoid(8) is nearly 1
//! ```

/// TFLite's `sigmoid_table_uint16`: `sigmoid(i / 24)` in Q0.16 for `i` in 0..256, as TFLite
/// rounds it. The values are fitted rather than rounded from the formula, so bit-exactness needs
/// these exact numbers.
pub const SIGMOID_TABLE: [u16; 256] = [
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794,
    41432, 42064, 42688, 43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443,
    48964, 49475, 49975, 50464, 50942, 51409, 51865, 52311, 52745, 53169, 53581, 53983, 54374,
    54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433, 57724, 58007, 58280, 58544,
    58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110, 61279,
    61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886, 62990,
    63090, 63186, 63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968, 64030,
    64090, 64148, 64204, 64257, 64308, 64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652,
    64687, 64721, 64754, 64786, 64816, 64845, 64873, 64900, 64926, 64950, 64974, 64997, 65019,
    65039, 65060, 65079, 65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208, 65221, 65234,
    65246, 65258, 65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360,
    65367, 65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433,
    65438, 65442, 65445, 65449, 65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474, 65476,
    65479, 65481, 65483, 65485, 65488, 65489, 65491, 65493, 65495, 65497, 65498, 65500, 65501,
    65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513, 65514, 65515, 65516,
    65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524,
    65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529,
    65529, 65530, 65530, 65530, 65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532,
    65532, 65532, 65532, 65533, 65533, 65533, 65533, 65533, 65533, 65533, 65533, 65534, 65534,
    65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65535,
];

/// Which function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Function {
    /// `1 / (1 + exp(-x))`.
    Logistic,
    /// `tanh(x)`.
    Tanh,
}

impl Function {
    /// Fraction bits dropped from the rescaled input to get the table index: the table steps
    /// by 1/24, and tanh reads it at twice the argument.
    pub fn index_shift(self) -> i32 {
        match self {
            Function::Logistic => 9,
            Function::Tanh => 8,
        }
    }
}

/// The prepared parameters: `input * multiplier`, rounded right by `shift`, is the input in
/// units of 1 / (3 * 4096).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sigmoid16 {
    /// Logistic or tanh.
    pub function: Function,
    /// At most 32767.
    pub multiplier: i32,
    /// Right shift, rounding half up; 0 means none.
    pub shift: i32,
}

impl Sigmoid16 {
    /// TFLite Micro's `Prepare` for int16: zero points must be 0 and the output scale 2^-15.
    pub fn new(
        function: Function,
        input_scale: f32,
        input_zero_point: i32,
        output_scale: f32,
        output_zero_point: i32,
    ) -> Result<Self, String> {
        if input_zero_point != 0 || output_zero_point != 0 {
            return Err("int16 LOGISTIC and TANH need zero points 0".into());
        }
        if checked_log2(output_scale) != Some(-15) {
            return Err(format!(
                "int16 LOGISTIC and TANH need output scale 2^-15, not {output_scale}"
            ));
        }
        const INPUT_INTEGER_BITS: i32 = 3;
        let pot = checked_log2(input_scale).map(|log2| (15 - INPUT_INTEGER_BITS) + log2);
        let pot_shift_ok = match function {
            Function::Logistic => pot == Some(0),
            Function::Tanh => pot == Some(0) || pot == Some(1),
        };
        let (multiplier, shift) = if pot_shift_ok {
            // TFLite's "power of two" case: multiply by 3 << shift and do not shift.
            (3 << pot.unwrap_or(0), 0)
        } else {
            let mut multiplier = input_scale as f64 * 4096.0 * 3.0;
            let mut shift = 0;
            while multiplier <= 32767.0 / 2.0 && shift <= 30 {
                shift += 1;
                multiplier *= 2.0;
            }
            (multiplier as i32, shift)
        };
        if multiplier > 32767 {
            return Err(format!(
                "int16 LOGISTIC and TANH need an input scale of at most 2.66, not {input_scale}"
            ));
        }
        Ok(Sigmoid16 {
            function,
            multiplier,
            shift,
        })
    }

    /// The rounding added before the right shift.
    pub fn rounding(&self) -> i32 {
        if self.shift > 0 {
            1 << (self.shift - 1)
        } else {
            0
        }
    }

    /// The function of one input value, as TFLite computes it.
    pub fn apply(&self, x: i16) -> i16 {
        let scaled = (x as i32 * self.multiplier + self.rounding()) >> self.shift;
        let magnitude = scaled.unsigned_abs();
        let k = self.function.index_shift() as u32;
        let index = magnitude >> k;
        let interpolated = if index >= 255 {
            match self.function {
                Function::Logistic => 0x7fff << 10,
                Function::Tanh => 0xffff << 8,
            }
        } else {
            let a = SIGMOID_TABLE[index as usize] as u32;
            let b = SIGMOID_TABLE[index as usize + 1] as u32;
            let fraction = magnitude & ((1 << k) - 1);
            (a << k) + fraction * (b - a)
        } as i32;
        let result = match (self.function, scaled >= 0) {
            (Function::Logistic, true) => (interpolated + (1 << 9)) >> 10,
            (Function::Logistic, false) => ((1 << 25) - interpolated + (1 << 9) - 1) >> 10,
            (Function::Tanh, true) => (interpolated - (1 << 23) + (1 << 7)) >> 8,
            (Function::Tanh, false) => (-interpolated + (1 << 23) + (1 << 7) - 1) >> 8,
        };
        result as i16
    }
}

/// TFLite's `CheckedLog2`: `log2(x)` rounded, if `x` is within 0.1% of a power of two.
fn checked_log2(x: f32) -> Option<i32> {
    let log2 = x.ln() * (1.0f32 / 2.0f32.ln());
    let rounded = log2.round();
    ((log2 - rounded).abs() < 1e-3).then_some(rounded as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(function: Function, input_scale: f32) -> Sigmoid16 {
        Sigmoid16::new(function, input_scale, 0, 1.0 / 32768.0, 0).unwrap()
    }

    #[test]
    fn power_of_two_scales_multiply_by_three() {
        let p = q(Function::Logistic, 1.0 / 4096.0);
        assert_eq!((p.multiplier, p.shift), (3, 0));
        let t = q(Function::Tanh, 1.0 / 4096.0);
        assert_eq!((t.multiplier, t.shift), (3, 0));
        let t = q(Function::Tanh, 1.0 / 2048.0);
        assert_eq!((t.multiplier, t.shift), (6, 0));
        // Logistic takes only the first.
        let p = q(Function::Logistic, 1.0 / 2048.0);
        assert_ne!(p.shift, 0);
    }

    #[test]
    fn other_scales_normalise_the_multiplier_into_the_top_bit() {
        let p = q(Function::Logistic, 0.0004);
        assert!(p.multiplier > 32767 / 2 && p.multiplier <= 32767);
        assert!(p.shift > 0);
    }

    #[test]
    fn values_follow_the_functions() {
        let scale = 1.0 / 4096.0;
        for function in [Function::Logistic, Function::Tanh] {
            let p = q(function, scale);
            for x in (-32768..32768).step_by(97) {
                let real = x as f64 * scale as f64;
                let want = match function {
                    Function::Logistic => 1.0 / (1.0 + (-real).exp()),
                    Function::Tanh => real.tanh(),
                };
                let got = p.apply(x as i16) as f64 / 32768.0;
                assert!(
                    (got - want).abs() < 2e-4,
                    "{function:?}({real}) = {got}, not {want}"
                );
            }
        }
    }

    #[test]
    fn refuses_what_tflite_refuses() {
        assert!(Sigmoid16::new(Function::Tanh, 1.0 / 4096.0, 1, 1.0 / 32768.0, 0).is_err());
        assert!(Sigmoid16::new(Function::Tanh, 1.0 / 4096.0, 0, 1.0 / 256.0, 0).is_err());
        assert!(Sigmoid16::new(Function::Tanh, 4.0, 0, 1.0 / 32768.0, 0).is_err());
    }
}
