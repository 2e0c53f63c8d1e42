//! Another program using minnow as its compiler backend: load a model, check it on the
//! reference interpreter, compile it for a Cortex-M4 and for a `no_std` Rust target, and write
//! the sources where its own build picks them up.
//!
//! `cargo run --example embed -- ../shared/models/kws.tflite out/`

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let model_path = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "../shared/models/kws.tflite".into()),
    );
    let out = PathBuf::from(args.next().unwrap_or_else(|| "embed-out".into()));
    let bytes = std::fs::read(&model_path)?;
    let model = minnow::Model::load(&bytes)?;
    let zeros: Vec<Vec<u8>> = model.inputs().iter().map(|t| vec![0; t.bytes()]).collect();
    let reference = model.run(&zeros)?;
    println!(
        "{}: {} output bytes on zeros",
        model_path.display(),
        reference[0].len()
    );
    let target = minnow::target("cortex-m4")?;
    for (emit, dir) in [(minnow::Emit::C, "c"), (minnow::Emit::Rust, "rust")] {
        let options = minnow::Options {
            name: "kws".into(),
            emit,
            ..minnow::Options::default()
        };
        let artifact = model.compile(&target, &options)?;
        let files = artifact.write_to(&out.join(dir))?;
        println!(
            "{dir}: {} files, arena {} bytes, weights {} bytes",
            files.len(),
            artifact.arena_bytes,
            artifact.weight_bytes
        );
    }
    Ok(())
}
