//! The timing harness: a `main` that runs a generated model on embedded input vectors, times
//! each inference with the board's counter, and prints the outputs and the counts in a line
//! format that [`parse`] reads back.
//!
//! Output lines (each starts with `minnow `):
//! `vector V status S count C`, `output V O OFFSET HEX` (at most 32 bytes per line),
//! `layer L count C` (with per-layer timing), and a final `done`.

use std::fmt::Write;

/// What the harness runs.
#[derive(Clone, Debug)]
pub struct Harness<'a> {
    /// The model's C name (prefix of `<name>_run` and the `<NAME>_*` macros).
    pub model: &'a str,
    /// Input vectors: for each vector, the bytes of each model input.
    pub vectors: &'a [Vec<Vec<u8>>],
    /// Number of model outputs.
    pub outputs: usize,
    /// Time each layer through the `MINNOW_LAYER_HOOK` (compile with
    /// `-DMINNOW_LAYER_HOOK=minnow_layer_done`).
    pub per_layer: bool,
}

/// Bytes of output per printed line.
const CHUNK: usize = 32;

impl Harness<'_> {
    /// The harness C source.
    pub fn source(&self) -> String {
        let m = self.model;
        let mut c = String::new();
        let _ = writeln!(c, "/* minnow timing harness for {m}. */\n#include <stdint.h>\n#include \"minnow_board.h\"\n#include \"{m}.h\"\n");
        self.write_inputs(&mut c);
        self.write_outputs(&mut c);
        c.push_str(HARNESS_BODY);
        self.write_main(&mut c);
        c
    }

    /// The input vectors as `const` arrays and the table of them.
    fn write_inputs(&self, c: &mut String) {
        for (v, inputs) in self.vectors.iter().enumerate() {
            for (i, bytes) in inputs.iter().enumerate() {
                let _ = writeln!(
                    c,
                    "static const uint8_t minnow_in_{v}_{i}[{}] __attribute__((aligned(8))) = {{",
                    bytes.len().max(1)
                );
                for line in bytes.chunks(32) {
                    let values: Vec<String> = line.iter().map(|b| b.to_string()).collect();
                    let _ = writeln!(c, "  {},", values.join(","));
                }
                let _ = writeln!(c, "}};");
            }
            let names: Vec<String> = (0..inputs.len())
                .map(|i| format!("minnow_in_{v}_{i}"))
                .collect();
            let _ = writeln!(
                c,
                "static const void *const minnow_inputs_{v}[] = {{{}}};",
                names.join(", ")
            );
        }
        let vectors: Vec<String> = (0..self.vectors.len())
            .map(|v| format!("minnow_inputs_{v}"))
            .collect();
        let _ = writeln!(
            c,
            "static const void *const *const minnow_vectors[] = {{{}}};",
            vectors.join(", ")
        );
    }

    /// The output buffers, their sizes and the arena.
    fn write_outputs(&self, c: &mut String) {
        let upper = self.model.to_ascii_uppercase();
        for o in 0..self.outputs {
            let _ = writeln!(c, "static uint8_t minnow_out_{o}[{upper}_OUTPUT_{o}_BYTES] __attribute__((aligned(8)));");
        }
        let outs: Vec<String> = (0..self.outputs)
            .map(|o| format!("minnow_out_{o}"))
            .collect();
        let _ = writeln!(
            c,
            "static void *const minnow_outputs[] = {{{}}};",
            outs.join(", ")
        );
        let _ = writeln!(
            c,
            "static const uint32_t minnow_output_bytes[] = {{{}}};",
            (0..self.outputs)
                .map(|o| format!("{upper}_OUTPUT_{o}_BYTES"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(
            c,
            "static uint8_t minnow_arena[{upper}_ARENA_BYTES + 8] __attribute__((aligned(8)));\n"
        );
    }

    /// `main`: run every vector between timer reads, print counts and outputs.
    fn write_main(&self, c: &mut String) {
        let m = self.model;
        let upper = m.to_ascii_uppercase();
        let _ = writeln!(c, "int main(void) {{");
        let _ = writeln!(c, "  uint32_t v, o, off;");
        let _ = writeln!(c, "  for (v = 0; v < {}u; ++v) {{", self.vectors.len());
        let _ = writeln!(c, "    int status;\n    uint64_t count;\n    {m}_reset(minnow_arena);\n    minnow_layers_clear();");
        let _ = writeln!(c, "    board_timer_start();\n    status = {m}_run(minnow_vectors[v], minnow_outputs, minnow_arena);\n    count = board_timer_read();");
        let _ = writeln!(c, "    minnow_put(\"minnow vector \"); minnow_put_u64(v); minnow_put(\" status \"); minnow_put_u64((uint64_t)status);");
        let _ = writeln!(
            c,
            "    minnow_put(\" count \"); minnow_put_u64(count); minnow_put(\"\\n\");"
        );
        let _ = writeln!(c, "    for (o = 0; o < {}u; ++o)", self.outputs);
        let _ = writeln!(
            c,
            "      for (off = 0; off < minnow_output_bytes[o]; off += {CHUNK}u)"
        );
        let _ = writeln!(c, "        minnow_put_chunk(v, o, off, (const uint8_t *)minnow_outputs[o], minnow_output_bytes[o]);");
        let _ = writeln!(c, "  }}");
        let _ = writeln!(c, "  minnow_layers_print({upper}_NUM_LAYERS);\n  minnow_put(\"minnow done\\n\");\n  return 0;\n}}");
    }
}

/// Printing helpers and the layer hook, shared by every harness.
const HARNESS_BODY: &str = r#"static char minnow_line[128];
static uint32_t minnow_len;
static void minnow_flush(void) { minnow_line[minnow_len] = 0; board_puts(minnow_line); minnow_len = 0; }
static void minnow_put(const char *s) {
  while (*s) { if (minnow_len == sizeof minnow_line - 1) minnow_flush(); minnow_line[minnow_len++] = *s; if (*s++ == '\n') minnow_flush(); }
}
static void minnow_put_u64(uint64_t wide) {
  /* Counts fit 32 bits (the RISC-V counter is 32-bit); printing in 32 bits needs no library. */
  uint32_t x = (uint32_t)(wide > 0xFFFFFFFFu ? 0xFFFFFFFFu : wide);
  char digits[24]; int n = 0; char one[2] = {0, 0};
  do { digits[n++] = (char)('0' + (int)(x % 10u)); x /= 10u; } while (x);
  while (n) { one[0] = digits[--n]; minnow_put(one); }
}
static void minnow_put_chunk(uint32_t v, uint32_t o, uint32_t off, const uint8_t *data, uint32_t len) {
  static const char hex[] = "0123456789abcdef";
  char pair[3] = {0, 0, 0}; uint32_t i;
  minnow_put("minnow output "); minnow_put_u64(v); minnow_put(" "); minnow_put_u64(o);
  minnow_put(" "); minnow_put_u64(off); minnow_put(" ");
  for (i = off; i < len && i < off + 32u; ++i) { pair[0] = hex[data[i] >> 4]; pair[1] = hex[data[i] & 15]; minnow_put(pair); }
  minnow_put("\n");
}
#ifdef MINNOW_LAYER_HOOK
static uint64_t minnow_layer_counts[1024];
static uint64_t minnow_last;
void MINNOW_LAYER_HOOK(int layer) {
  uint64_t now = board_timer_read();
  if (layer >= 0 && layer < 1024) minnow_layer_counts[layer] = now - minnow_last;
  minnow_last = board_timer_read();
}
static void minnow_layers_clear(void) { minnow_last = 0; }
static void minnow_layers_print(uint32_t n) {
  uint32_t i;
  for (i = 0; i < n && i < 1024u; ++i) {
    minnow_put("minnow layer "); minnow_put_u64(i); minnow_put(" count "); minnow_put_u64(minnow_layer_counts[i]); minnow_put("\n");
  }
}
#else
static void minnow_layers_clear(void) {}
static void minnow_layers_print(uint32_t n) { (void)n; }
#endif

"#;

/// One inference as the harness reported it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VectorReport {
    /// `<name>_run`'s return value.
    pub status: u64,
    /// Counter units the inference took.
    pub count: u64,
    /// Bytes of each output.
    pub outputs: Vec<Vec<u8>>,
}

/// Everything the harness printed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// One per input vector, in order.
    pub vectors: Vec<VectorReport>,
    /// Counter units per layer (of the last vector), with per-layer timing.
    pub layers: Vec<u64>,
}

/// Reads the harness's output. Fails if it is cut short (no `done` line) or malformed.
pub fn parse(text: &str) -> Result<Report, String> {
    let mut report = Report::default();
    let mut done = false;
    for line in text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("minnow "))
    {
        let f: Vec<&str> = line.split_whitespace().collect();
        let num = |i: usize| -> Result<u64, String> {
            f.get(i)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("malformed harness line `minnow {line}`"))
        };
        match f.first().copied() {
            Some("vector") => {
                report.vectors.push(VectorReport {
                    status: num(3)?,
                    count: num(5)?,
                    outputs: Vec::new(),
                });
            }
            Some("output") => {
                let (v, o) = (num(1)? as usize, num(2)? as usize);
                let hex = f.get(4).copied().unwrap_or("");
                let bytes = (0..hex.len() / 2)
                    .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16))
                    .collect::<Result<Vec<u8>, _>>()
                    .map_err(|_| format!("malformed output bytes in `minnow {line}`"))?;
                let vector = report
                    .vectors
                    .get_mut(v)
                    .ok_or("output before its vector line")?;
                if vector.outputs.len() <= o {
                    vector.outputs.resize(o + 1, Vec::new());
                }
                vector.outputs[o].extend(bytes);
            }
            Some("layer") => report.layers.push(num(3)?),
            Some("done") => done = true,
            _ => {}
        }
    }
    if !done {
        return Err("the board stopped before the harness finished (no `minnow done` line)".into());
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_harness_prints_and_refuses_a_cut_run() {
        let text = "boot\nminnow vector 0 status 0 count 1234\nminnow output 0 0 0 0aff\nminnow output 0 0 2 10\nminnow layer 0 count 7\nminnow done\n";
        let r = parse(text).unwrap();
        assert_eq!(r.vectors[0].count, 1234);
        assert_eq!(r.vectors[0].outputs[0], vec![0x0a, 0xff, 0x10]);
        assert_eq!(r.layers, vec![7]);
        assert!(parse("minnow vector 0 status 0 count 1\n")
            .unwrap_err()
            .contains("done"));
    }
}
