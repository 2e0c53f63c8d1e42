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
        let _ = writeln!(c, "#define MINNOW_OUTPUTS {}u", self.outputs.max(1));
        c.push_str(HARNESS_BODY);
        c.push_str(RESULTS_BLOCK);
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
        let _ = writeln!(
            c,
            "  minnow_results_begin({}u, {}u, {upper}_NUM_LAYERS);",
            self.vectors.len(),
            self.outputs
        );
        let _ = writeln!(c, "  for (v = 0; v < {}u; ++v) {{", self.vectors.len());
        let _ = writeln!(c, "    int status;\n    uint64_t count;\n    {m}_reset(minnow_arena);\n    minnow_layers_clear();");
        let _ = writeln!(c, "    board_timer_start();\n    status = {m}_run(minnow_vectors[v], minnow_outputs, minnow_arena);\n    count = board_timer_read();");
        let _ = writeln!(c, "    minnow_put(\"minnow vector \"); minnow_put_u64(v); minnow_put(\" status \"); minnow_put_u64((uint64_t)status);");
        let _ = writeln!(
            c,
            "    minnow_put(\" count \"); minnow_put_u64(count); minnow_put(\"\\n\");"
        );
        let _ = writeln!(c, "    minnow_results_vector(v, status, count);");
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

/// The results block real boards leave their results in (with `-DMINNOW_RESULTS_BLOCK`), and
/// the breakpoint the probe stops the core at to read it. Every field is a 32-bit word, in the
/// order [`ResultsBlock::decode`] reads them.
const RESULTS_BLOCK: &str = r#"#ifdef MINNOW_RESULTS_BLOCK
struct minnow_results_block {
  uint32_t magic, version, state, vector, vectors, status, count_lo, count_hi;
  uint32_t outputs, layers, layer_counts;
  uint32_t output_addr[MINNOW_OUTPUTS], output_bytes[MINNOW_OUTPUTS];
};
typedef char minnow_results_layout[sizeof(struct minnow_results_block) == 44u + 8u * MINNOW_OUTPUTS ? 1 : -1];
volatile struct minnow_results_block minnow_results __attribute__((used, aligned(8)));
/* The probe's breakpoint: the block is complete whenever the core stops here. */
__attribute__((noinline, used)) void minnow_checkpoint(void) { __asm volatile("" ::: "memory"); }
static void minnow_results_begin(uint32_t vectors, uint32_t outputs, uint32_t layers) {
  uint32_t o;
  minnow_results.state = 0u;
  minnow_results.vectors = vectors;
  minnow_results.outputs = outputs;
  for (o = 0; o < outputs; ++o) {
    minnow_results.output_addr[o] = (uint32_t)(uintptr_t)minnow_outputs[o];
    minnow_results.output_bytes[o] = minnow_output_bytes[o];
  }
#ifdef MINNOW_LAYER_HOOK
  minnow_results.layers = layers;
  minnow_results.layer_counts = (uint32_t)(uintptr_t)minnow_layer_counts;
#else
  (void)layers;
  minnow_results.layers = 0u;
  minnow_results.layer_counts = 0u;
#endif
  minnow_results.version = 1u;
  minnow_results.magic = 0x4d4e5253u;
}
static void minnow_results_vector(uint32_t v, int status, uint64_t count) {
  minnow_results.vector = v;
  minnow_results.status = (uint32_t)status;
  minnow_results.count_lo = (uint32_t)count;
  minnow_results.count_hi = (uint32_t)(count >> 32);
  minnow_results.state = 1u;
  minnow_checkpoint();
  minnow_results.state = 0u;
}
void minnow_results_done(int status) {
  minnow_results.status = (uint32_t)status;
  minnow_results.state = 2u;
  for (;;) minnow_checkpoint();
}
void minnow_results_fault(void) {
  minnow_results.state = 3u;
  for (;;) minnow_checkpoint();
}
#else
#define minnow_results_begin(vectors, outputs, layers) ((void)(vectors), (void)(outputs), (void)(layers))
#define minnow_results_vector(v, status, count) ((void)(v), (void)(status), (void)(count))
#endif

"#;

/// The magic word a results block starts with ("MNRS").
pub const RESULTS_MAGIC: u32 = 0x4d4e_5253;

/// The results block's symbol in the harness ELF.
pub const RESULTS_SYMBOL: &str = "minnow_results";

/// The function the probe sets its breakpoint on.
pub const CHECKPOINT_SYMBOL: &str = "minnow_checkpoint";

/// What the board is telling the probe when it stops at the checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockState {
    /// Still running (the probe stopped it for another reason).
    Running,
    /// Vector `vector`'s status and count are in, its outputs in the output buffers.
    VectorReady,
    /// The harness finished; the layer counts (of the last vector) are in.
    Done,
    /// The core took a fault or trap.
    Fault,
}

/// A decoded results block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResultsBlock {
    /// Where the harness is.
    pub state: BlockState,
    /// The vector the status and count are of.
    pub vector: u32,
    /// Vectors the harness runs.
    pub vectors: u32,
    /// `<name>_run`'s return value (or `main`'s, when done).
    pub status: i32,
    /// Cycles the vector took.
    pub count: u64,
    /// Each output buffer's address and length.
    pub outputs: Vec<(u32, u32)>,
    /// Layers timed (0 without per-layer timing).
    pub layers: u32,
    /// Address of the `uint64_t` layer counts.
    pub layer_counts: u32,
}

impl ResultsBlock {
    /// Bytes of the fixed part, before the output table.
    pub const HEADER_BYTES: usize = 44;

    /// Bytes of a block with `outputs` outputs.
    pub fn bytes(outputs: usize) -> usize {
        Self::HEADER_BYTES + 8 * outputs.max(1)
    }

    /// Decodes the little-endian bytes of a block (at least [`ResultsBlock::HEADER_BYTES`],
    /// and the whole output table).
    pub fn decode(bytes: &[u8]) -> Result<ResultsBlock, String> {
        let word = |i: usize| -> Result<u32, String> {
            bytes
                .get(4 * i..4 * i + 4)
                .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
                .ok_or_else(|| format!("the results block is cut short at word {i}"))
        };
        if word(0)? != RESULTS_MAGIC {
            return Err(format!(
                "the results block holds no results (magic {:#010x}): the harness did not start; \
                 check that the board runs the flashed program (boot pins, a locked chip)",
                word(0)?
            ));
        }
        if word(1)? != 1 {
            return Err(format!("results block version {} is not 1", word(1)?));
        }
        let state = match word(2)? {
            0 => BlockState::Running,
            1 => BlockState::VectorReady,
            2 => BlockState::Done,
            3 => BlockState::Fault,
            s => return Err(format!("the results block has an unknown state {s}")),
        };
        let n = word(8)? as usize;
        if n > 1024 {
            return Err(format!("the results block claims {n} outputs"));
        }
        let outputs = (0..n)
            .map(|o| Ok((word(11 + o)?, word(11 + n.max(1) + o)?)))
            .collect::<Result<_, String>>()?;
        Ok(ResultsBlock {
            state,
            vector: word(3)?,
            vectors: word(4)?,
            status: word(5)? as i32,
            count: u64::from(word(6)?) | (u64::from(word(7)?) << 32),
            outputs,
            layers: word(9)?,
            layer_counts: word(10)?,
        })
    }
}

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

    /// A block as the C harness lays it out: words, little-endian.
    fn block_bytes(words: &[u32]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    #[test]
    fn results_blocks_decode_and_refuse_garbage() {
        let words = [
            RESULTS_MAGIC,
            1,
            1,
            2,
            3,
            0,
            0x1234,
            1,
            2,
            5,
            0x2000_0100,
            0x2000_0000,
            0x2000_0040,
            12,
            4,
        ];
        let b = ResultsBlock::decode(&block_bytes(&words)).unwrap();
        assert_eq!(b.state, BlockState::VectorReady);
        assert_eq!((b.vector, b.vectors, b.status), (2, 3, 0));
        assert_eq!(b.count, 0x1_0000_1234);
        assert_eq!(b.outputs, vec![(0x2000_0000, 12), (0x2000_0040, 4)]);
        assert_eq!((b.layers, b.layer_counts), (5, 0x2000_0100));
        assert_eq!(ResultsBlock::bytes(2), 60);
        let e = ResultsBlock::decode(&block_bytes(&[0; 15])).unwrap_err();
        assert!(e.contains("did not start"), "{e}");
        let e = ResultsBlock::decode(&block_bytes(&words[..12])).unwrap_err();
        assert!(e.contains("cut short"), "{e}");
        let mut bad = words;
        bad[2] = 9;
        assert!(ResultsBlock::decode(&block_bytes(&bad))
            .unwrap_err()
            .contains("state 9"));
    }

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
