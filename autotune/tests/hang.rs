//! A board that does not answer: a model whose run never returns ends in a clear timeout
//! error, not a hang or a panic.

use minnow_autotune::measure::qemu::QemuMeasurer;
use minnow_autotune::measure::{Build, MeasureError, Measurer};
use minnow_backends::c::CSource;
use std::time::Duration;

#[test]
fn a_board_that_never_finishes_times_out_with_a_clear_error() {
    let target = minnow_targets::find("cortex-m4").unwrap();
    let installed = target.toolchain.installed() && target.board.as_ref().unwrap().installed();
    if !installed {
        assert!(
            std::env::var("CI").is_err(),
            "CI needs gcc-arm-none-eabi and qemu-system-arm"
        );
        eprintln!("SKIPPED: arm-none-eabi-gcc or qemu-system-arm is not installed");
        return;
    }
    let header = "#include <stdint.h>\n#define HANG_ARENA_BYTES 4\n#define HANG_NUM_LAYERS 0\n#define HANG_OUTPUT_0_BYTES 1\n\
                  int hang_run(const void *const *inputs, void *const *outputs, uint8_t *arena);\n\
                  void hang_reset(uint8_t *arena);\n";
    let source = "#include \"hang.h\"\n\
                  int hang_run(const void *const *inputs, void *const *outputs, uint8_t *arena) {\n\
                  (void)inputs; (void)outputs; (void)arena; for (;;) {} }\n\
                  void hang_reset(uint8_t *arena) { (void)arena; }\n";
    let source = CSource {
        name: "hang".into(),
        header: header.into(),
        source: source.into(),
        outputs: 1,
    };
    let vectors = vec![vec![vec![0u8; 4]]];
    let build = Build {
        target: &target,
        source: &source,
        vectors: &vectors,
        per_layer: false,
    };
    let measurer = QemuMeasurer {
        timeout: Duration::from_secs(2),
    };
    match measurer.measure(&build) {
        Err(e @ MeasureError::Timeout { .. }) => {
            let message = e.to_string();
            assert!(message.contains("did not finish within 2 s"), "{message}");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
}
