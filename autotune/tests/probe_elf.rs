//! The probe measurer's side that needs no board: every real board's harness ELF links for
//! its chip's memory, with the results block in RAM, sized for the model's outputs, and the
//! checkpoint in flash; an ELF built for QEMU is refused with the reason.

use minnow_autotune::compile::{compile, Schedules};
use minnow_autotune::measure::probe::{harness_symbols, ProbeMeasurer};
use minnow_autotune::measure::Build;
use minnow_targets::harness::{ResultsBlock, RESULTS_SYMBOL};
use minnow_targets::real_board::Firmware;
use object::{Object, ObjectSection, ObjectSymbol};
use std::path::PathBuf;

fn kws() -> minnow_ir::Graph {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/models/kws.tflite");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    minnow_ir::import::tflite::import(&bytes, "kws").unwrap()
}

fn toolchains_present(targets: &[minnow_targets::Target]) -> bool {
    let missing: Vec<String> = targets
        .iter()
        .filter(|t| !t.toolchain.installed())
        .map(|t| t.toolchain.missing_message(t.name))
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(std::env::var("CI").is_err(), "{}", missing.join("; "));
    eprintln!("SKIPPED (tool missing): {}", missing.join("; "));
    false
}

#[test]
fn every_real_board_links_its_results_block_in_ram() {
    let boards: Vec<_> = minnow_targets::real_board::all()
        .iter()
        .map(|b| minnow_targets::find(b.name).unwrap())
        .collect();
    if !toolchains_present(&boards) {
        return;
    }
    let graph = kws();
    for target in &boards {
        let board = target.real_board.as_ref().unwrap();
        let compiled = compile(
            &graph,
            "kws",
            target,
            minnow_passes::patch::Patching::Off,
            Schedules::Default,
        )
        .unwrap();
        let inputs = vec![vec![vec![0u8; 490]]; 2];
        let build = Build {
            target,
            source: &compiled.source,
            vectors: &inputs,
            per_layer: true,
        };
        let dir = tempfile::tempdir().unwrap();
        let (elf, sections, symbols) = ProbeMeasurer::build_elf(&build, board, dir.path())
            .unwrap_or_else(|e| panic!("{}: {e}", board.name));
        let [flash, flash_len, ram, ram_len] = board.memory;
        assert!(
            (ram..ram + ram_len).contains(&symbols.results),
            "{}: results block at {:#x}",
            board.name,
            symbols.results
        );
        let code = board.code_origin();
        assert!(
            (code..code + flash_len).contains(&symbols.checkpoint),
            "{}: checkpoint at {:#x}",
            board.name,
            symbols.checkpoint
        );
        assert!(
            sections.rodata > 0,
            "{}: the weights are in flash",
            board.name
        );
        let bytes = std::fs::read(&elf).unwrap();
        let file = object::File::parse(&*bytes).unwrap();
        let block = file
            .symbols()
            .find(|s| s.name() == Ok(RESULTS_SYMBOL))
            .unwrap();
        assert_eq!(
            block.size() as usize,
            ResultsBlock::bytes(compiled.source.outputs),
            "{}: the C block and the decoder agree on its size",
            board.name
        );
        if board.firmware == Firmware::EspIdf {
            // The bootloader jumps to the entry: _start, first in the code (whose start the
            // trap handler's alignment may round up).
            let text = file.section_by_name(".text").unwrap().address();
            assert_eq!(file.entry(), text, "{}", board.name);
            assert!(
                (code..code + 0x100).contains(&text),
                "{}: {text:#x}",
                board.name
            );
            esp_idf_image_converts(&bytes, &file, flash, board.name);
        }
    }
}

/// What probe-rs does with an ESP32-C3 harness before it flashes it: espflash turns the
/// ELF into an ESP-IDF app image, which needs the app description first in the flash data
/// (64 KiB-aligned past the headers) and every segment in a window the bootloader maps.
fn esp_idf_image_converts(elf: &[u8], file: &object::File, drom: u64, board: &str) {
    use espflash::flasher::{FlashData, FlashSettings, FlashSize};
    use espflash::image_format::idf::IdfBootloaderFormat;
    use espflash::target::Chip;
    let desc = file
        .section_by_name(".flash.appdesc")
        .expect("an app description");
    assert_eq!(
        desc.address(),
        drom,
        "{board}: the app description opens DROM"
    );
    let mut settings = FlashSettings::default();
    settings.size = Some(FlashSize::_4Mb);
    let chip = Chip::Esp32c3;
    let flash = FlashData::new(settings, 0, None, chip, chip.default_xtal_frequency());
    let image = IdfBootloaderFormat::new(elf, &flash, None, None, None, None)
        .unwrap_or_else(|e| panic!("{board}: espflash refuses the ELF: {e}"));
    // Bootloader, partition table, application.
    assert!(image.flash_segments().count() >= 3, "{board}");
}

#[test]
fn an_elf_without_a_results_block_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not-an-elf");
    std::fs::write(&path, b"hello").unwrap();
    let e = harness_symbols(&path).unwrap_err().to_string();
    assert!(e.contains("cannot read the harness ELF"), "{e}");
    // The test binary itself is an ELF without the harness.
    let me = std::env::current_exe().unwrap();
    let e = harness_symbols(&me).unwrap_err().to_string();
    assert!(e.contains("not built for a real board"), "{e}");
}
