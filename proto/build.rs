//! Compiles `article/v1/article.proto` with protox (pure Rust, so no system
//! `protoc` is needed) and feeds the descriptors to tonic-prost-build.
//!
//! Server code is generated only with the `server` feature, so the wasm32
//! build carries the client alone. Transport helpers (`connect`) only with
//! `transport`.

use std::{env, path::PathBuf};

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(env::var("OUT_DIR")?);
    let server = env::var_os("CARGO_FEATURE_SERVER").is_some();
    let transport = env::var_os("CARGO_FEATURE_TRANSPORT").is_some();
    // ArticleService uses its own codec (see `src/codec.rs`).
    let proto = "article/v1/article.proto";
    println!("cargo:rerun-if-changed={proto}");
    let fds = protox::compile([proto], ["."])?;
    std::fs::write(out.join("article_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_server(server)
        .build_client(true)
        .build_transport(transport)
        .codec_path("crate::codec::ArticleCodec")
        .compile_fds(fds)?;
    Ok(())
}
