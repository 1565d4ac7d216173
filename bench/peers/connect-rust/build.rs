//! Generates the connect-rust types and service trait for
//! `article/v1/article.proto` (the repository's real API file). connectrpc-build
//! runs `protoc` by default; protox (pure Rust, as `proto/build.rs` uses)
//! compiles the file instead and its FileDescriptorSet is handed over, so no
//! system `protoc` is needed.

use std::{env, path::PathBuf};

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(env::var("OUT_DIR")?);
    let proto_root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("../../../proto");
    let file = "article/v1/article.proto";
    // connectrpc-build's own rerun directives would watch the descriptor
    // file it is handed, which this script rewrites on every run (a rebuild
    // every time); watch the .proto instead.
    println!("cargo:rerun-if-changed={}", proto_root.join(file).display());
    let fds = protox::compile([file], [&proto_root])?;
    let descriptors = out.join("article_descriptor.bin");
    std::fs::write(&descriptors, fds.encode_to_vec())?;
    connectrpc_build::Config::new()
        .files(&[file])
        .descriptor_set(&descriptors)
        .include_file("_connectrpc.rs")
        .generate_json(false)
        .emit_rerun_directives(false)
        .compile()?;
    Ok(())
}
