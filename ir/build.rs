//! Generates the ONNX protobuf types (`onnx.rs` in `OUT_DIR`) from `proto/onnx.proto` with
//! protox (a protobuf compiler in Rust, so no `protoc` is needed) and prost-build.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/onnx.proto");
    let descriptors = protox::compile(["onnx.proto"], ["proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
