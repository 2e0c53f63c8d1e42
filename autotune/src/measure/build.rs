//! Compiling generated code and the harness, and reading section sizes from objects.

use super::{Build, MeasureError};
use minnow_targets::board::BOARD_HEADER;
use minnow_targets::harness::Harness;
use minnow_targets::Target;
use object::{Object, ObjectSection};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Flags every build of generated code uses: the contract's warning level, size-friendly
/// sections, and no floating-point contraction (float kernels then give the interpreter's bits).
pub(super) const C_FLAGS: &[&str] = &[
    "-std=c99",
    "-ffp-contract=off",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-O2",
    "-ffunction-sections",
    "-fdata-sections",
];

/// The hook the per-layer harness defines.
const LAYER_HOOK: &str = "-DMINNOW_LAYER_HOOK=minnow_layer_done";

/// How to link the harness for one board: flags before the objects (linker script) and after
/// them (libraries).
pub(super) struct Link<'a> {
    /// The board support C source.
    pub support: &'a str,
    /// Flags before the inputs.
    pub before: Vec<String>,
    /// Flags after the inputs.
    pub after: Vec<String>,
}

/// Writes the model, the harness and the board support into `dir`, compiles the model once
/// into an object (measured for its sections, then linked), and links the program. Returns its
/// path and the model's sections.
pub(super) fn build_program(
    build: &Build,
    dir: &Path,
    link: &Link,
) -> Result<(PathBuf, Sections), MeasureError> {
    let model_c = build
        .source
        .write_to(dir)?
        .pop()
        .expect("the .c file comes last");
    let harness = Harness {
        model: &build.source.name,
        vectors: build.vectors,
        outputs: build.source.outputs,
        per_layer: build.per_layer,
    };
    std::fs::write(dir.join("minnow_board.h"), BOARD_HEADER)?;
    std::fs::write(dir.join("harness.c"), harness.source())?;
    std::fs::write(dir.join("board.c"), link.support)?;
    let hook: &[&str] = if build.per_layer { &[LAYER_HOOK] } else { &[] };
    let object = compile_object(build.target, dir, &model_c, hook)?;
    // The model's size is that of the code users ship: without the timing hook.
    let sections = if build.per_layer {
        model_sections(build.target, dir, &model_c)?
    } else {
        object_sections(build.target, &object)?
    };
    let program = dir.join("model.elf");
    let mut args = flags(hook);
    args.extend(link.before.iter().cloned());
    args.extend([
        "harness.c".into(),
        "board.c".into(),
        object.display().to_string(),
    ]);
    args.extend(link.after.iter().cloned());
    args.extend(["-o".into(), program.display().to_string()]);
    compile(build.target, dir, &args)?;
    Ok((program, sections))
}

/// The compiler and flags every build of generated code for `target` uses, as one line
/// (what the generated source's header tells a user to build it with).
pub fn command_line(target: &Target) -> String {
    let tc = &target.toolchain;
    std::iter::once(tc.cc)
        .chain(tc.flags.iter().copied())
        .chain(C_FLAGS.iter().copied())
        .collect::<Vec<_>>()
        .join(" ")
}

/// [`C_FLAGS`] plus `extra`, as owned arguments.
fn flags(extra: &[&str]) -> Vec<String> {
    C_FLAGS.iter().chain(extra).map(|s| s.to_string()).collect()
}

/// Compiles `c` (made absolute, as the compiler runs in `dir`) into an object in `dir`.
fn compile_object(
    target: &Target,
    dir: &Path,
    c: &Path,
    extra: &[&str],
) -> Result<PathBuf, MeasureError> {
    let c = std::path::absolute(c)?;
    let stem = c
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let suffix = if extra.is_empty() { "" } else { "_hooked" };
    let object = dir.join(format!("{stem}{suffix}.o"));
    let mut args = flags(extra);
    if target.toolchain.cc.ends_with("gcc") {
        // Each function's frame, into `{stem}.su` beside the object.
        args.push("-fstack-usage".into());
    }
    args.extend([
        "-c".into(),
        c.display().to_string(),
        "-o".into(),
        object.display().to_string(),
    ]);
    compile(target, dir, &args)?;
    Ok(object)
}

/// The deepest stack of one inference from the `-fstack-usage` file of `object`: the frame
/// of the function whose name ends in `_run` plus the largest other frame (`_reset` aside:
/// run does not call it). Each line reads `file:line:column:function<TAB>bytes<TAB>kind`;
/// `None` if the file is missing, names no run function or has an unbounded dynamic frame.
fn stack_usage(object: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(object.with_extension("su")).ok()?;
    let (mut run, mut deepest) = (None, 0u64);
    for line in text.lines() {
        let mut fields = line.split('\t');
        let function = fields.next()?.rsplit(':').next()?;
        let bytes: u64 = fields.next()?.trim().parse().ok()?;
        // `dynamic,bounded` frames give their bound; a plain `dynamic` one has none.
        if fields.next()?.trim() == "dynamic" {
            return None;
        }
        if function.ends_with("_run") {
            run = Some(bytes);
        } else if !function.ends_with("_reset") {
            deepest = deepest.max(bytes);
        }
    }
    Some(run? + deepest)
}

/// A fresh work directory. With `MINNOW_KEEP_WORK` set in the environment it is kept (and
/// named on standard error) so a failed build or run can be inspected.
pub(super) struct WorkDir {
    /// Deletes the directory when dropped (absent when it is kept).
    _dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl WorkDir {
    pub(super) fn new(prefix: &str) -> Result<WorkDir, MeasureError> {
        let dir = tempfile::Builder::new().prefix(prefix).tempdir()?;
        if std::env::var_os("MINNOW_KEEP_WORK").is_some() {
            let path = dir.keep();
            eprintln!("minnow: keeping the work directory {}", path.display());
            return Ok(WorkDir { _dir: None, path });
        }
        let path = dir.path().to_path_buf();
        Ok(WorkDir {
            _dir: Some(dir),
            path,
        })
    }

    pub(super) fn path(&self) -> &Path {
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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sections {
    /// Code.
    pub text: u64,
    /// Read-only data (weights, tables).
    pub rodata: u64,
    /// Initialised data (flash and RAM).
    pub data: u64,
    /// Zeroed data (RAM).
    pub bss: u64,
    /// The deepest stack one inference takes: the run function's frame plus the largest
    /// frame of a function it calls (each layer is one), from gcc's `-fstack-usage`. `None`
    /// where the compiler gives no figure (not gcc) or a frame is dynamic.
    #[serde(default)]
    pub stack: Option<u64>,
}

impl Sections {
    /// Flash: `.text + .rodata + .data`.
    pub fn flash(&self) -> u64 {
        self.text + self.rodata + self.data
    }
}

/// Compiles the model alone for `target` (in `dir`) and measures its sections: the model's own
/// flash and static RAM, without the harness or board support.
pub fn model_sections(
    target: &Target,
    dir: &Path,
    model_c: &Path,
) -> Result<Sections, MeasureError> {
    let object = compile_object(target, dir, model_c, &[])?;
    object_sections(target, &object)
}

/// The section sizes of a compiled object.
fn object_sections(target: &Target, object: &Path) -> Result<Sections, MeasureError> {
    let bytes = std::fs::read(object)?;
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
    s.stack = stack_usage(object);
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::stack_usage;

    /// Writes `su` as the stack-usage file of an object in a fresh directory.
    fn object_with(su: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("kws.su"), su).unwrap();
        let object = dir.path().join("kws.o");
        (dir, object)
    }

    #[test]
    fn the_stack_is_the_run_frame_plus_the_deepest_layer() {
        let (_dir, object) = object_with(
            "kws.c:10:5:kws_l0_conv_2d\t96\tstatic\n\
             kws.c:40:5:kws_l2_conv_2d\t848\tstatic\n\
             kws.c:90:5:kws_run\t32\tstatic\n\
             kws.c:99:6:kws_reset\t4096\tstatic\n\
             kws.c:70:5:kws_l9_average_pool_2d\t16\tdynamic,bounded\n",
        );
        assert_eq!(stack_usage(&object), Some(32 + 848));
    }

    #[test]
    fn an_unbounded_frame_or_no_file_gives_no_figure() {
        let (_dir, object) =
            object_with("kws.c:1:5:kws_run\t32\tstatic\nkws.c:2:5:f\t8\tdynamic\n");
        assert_eq!(stack_usage(&object), None);
        let (_dir, object) = object_with("kws.c:2:5:f\t8\tstatic\n");
        assert_eq!(stack_usage(&object), None, "no run function");
        assert_eq!(
            stack_usage(std::path::Path::new("/nonexistent/kws.o")),
            None
        );
    }
}
