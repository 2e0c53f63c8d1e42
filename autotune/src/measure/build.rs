//! Compiling generated code and the harness, and reading section sizes from objects.

use super::{Build, MeasureError};
use minnow_targets::board::BOARD_HEADER;
use minnow_targets::harness::Harness;
use minnow_targets::Target;
use object::{Object, ObjectSection};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Flags every build of generated code uses: the contract's warning level plus size-friendly
/// sections.
pub(super) const C_FLAGS: &[&str] = &[
    "-std=c99",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-O2",
    "-ffunction-sections",
    "-fdata-sections",
];

/// Writes the model, the harness and the board header into `dir`; returns the C files to build.
pub(super) fn write_sources(
    build: &Build,
    dir: &Path,
    support: &str,
) -> Result<Vec<PathBuf>, MeasureError> {
    build.source.write_to(dir)?;
    let harness = Harness {
        model: &build.source.name,
        vectors: build.vectors,
        outputs: build
            .vectors
            .first()
            .map_or(0, |_| count_outputs(&build.source.header)),
        per_layer: build.per_layer,
    };
    std::fs::write(dir.join("minnow_board.h"), BOARD_HEADER)?;
    std::fs::write(dir.join("harness.c"), harness.source())?;
    std::fs::write(dir.join("board.c"), support)?;
    Ok(vec![
        dir.join(format!("{}.c", build.source.name)),
        dir.join("harness.c"),
        dir.join("board.c"),
    ])
}

/// The number of outputs a generated header declares.
fn count_outputs(header: &str) -> usize {
    header
        .lines()
        .find_map(|l| {
            l.split_once("_NUM_OUTPUTS ")
                .and_then(|(_, n)| n.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// A fresh work directory. With `MINNOW_KEEP_WORK` set in the environment it is kept (and
/// named on standard error) so a failed build or run can be inspected.
pub(super) struct WorkDir {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl WorkDir {
    pub(super) fn new(prefix: &str) -> Result<WorkDir, MeasureError> {
        let dir = tempfile::Builder::new().prefix(prefix).tempdir()?;
        if std::env::var_os("MINNOW_KEEP_WORK").is_some() {
            let path = dir.keep();
            eprintln!("minnow: keeping the work directory {}", path.display());
            return Ok(WorkDir { dir: None, path });
        }
        let path = dir.path().to_path_buf();
        Ok(WorkDir {
            dir: Some(dir),
            path,
        })
    }

    pub(super) fn path(&self) -> &Path {
        let _ = &self.dir;
        &self.path
    }
}

/// Runs the target's compiler with `args`, failing with its diagnostics.
pub(super) fn compile(target: &Target, dir: &Path, args: &[String]) -> Result<(), MeasureError> {
    let tc = &target.toolchain;
    if !tc.installed() {
        return Err(MeasureError::MissingTool(tc.missing_message(target.name)));
    }
    let out = Command::new(tc.cc)
        .current_dir(dir)
        .args(&tc.flags)
        .args(args)
        .output()?;
    if !out.status.success() {
        return Err(MeasureError::Compile {
            compiler: tc.cc.to_string(),
            target: target.name.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(())
}

/// Sizes of a compiled model's sections, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sections {
    /// Code.
    pub text: u64,
    /// Read-only data (weights, tables).
    pub rodata: u64,
    /// Initialised data (flash and RAM).
    pub data: u64,
    /// Zeroed data (RAM).
    pub bss: u64,
}

impl Sections {
    /// Flash: `.text + .rodata + .data`.
    pub fn flash(&self) -> u64 {
        self.text + self.rodata + self.data
    }
}

/// Compiles the model alone for `target` and measures its sections: the model's own flash and
/// static RAM, without the harness or board support.
pub fn model_sections(
    target: &Target,
    dir: &Path,
    model_c: &Path,
) -> Result<Sections, MeasureError> {
    let object_path = dir.join("model_only.o");
    let mut args: Vec<String> = C_FLAGS.iter().map(|s| s.to_string()).collect();
    args.extend([
        "-c".into(),
        model_c.display().to_string(),
        "-o".into(),
        object_path.display().to_string(),
    ]);
    compile(target, dir, &args)?;
    let bytes = std::fs::read(&object_path)?;
    let file = object::File::parse(&*bytes).map_err(|e| MeasureError::Run {
        board: target.name.into(),
        message: format!("cannot read the compiled model object: {e}"),
    })?;
    let mut s = Sections::default();
    for section in file.sections() {
        let name = section.name().unwrap_or("");
        let size = section.size();
        if name.starts_with(".text") {
            s.text += size;
        } else if name.starts_with(".rodata") || name.starts_with(".srodata") {
            s.rodata += size;
        } else if name.starts_with(".data") || name.starts_with(".sdata") {
            s.data += size;
        } else if name.starts_with(".bss") || name.starts_with(".sbss") {
            s.bss += size;
        }
    }
    Ok(s)
}
