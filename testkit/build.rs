//! Compiles the test service `proto/echo/v1/echo.proto` with protox (pure
//! Rust, no system `protoc`). Without the `kit` feature there is nothing
//! to generate.

#[cfg(feature = "kit")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    use prost::Message as _;

    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let proto = "proto/echo/v1/echo.proto";
    println!("cargo:rerun-if-changed={proto}");
    let fds = protox::compile([proto], ["proto"])?;
    std::fs::write(out.join("echo_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .build_transport(true)
        .compile_fds(fds)?;
    Ok(())
}

#[cfg(not(feature = "kit"))]
fn main() {}
