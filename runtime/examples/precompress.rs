//! Writes `X.br` and `X.gz` beside the compressible files of a built web
//! app, for the runtime's static app to send (see `grpc_runtime::precompress`).
//!
//! ```sh
//! cargo run --release -p grpc-runtime --features precompress --example precompress -- web/dist
//! ```
//!
//! Build it `--release`: brotli at quality 11 is slow unoptimised.

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let dirs: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    anyhow::ensure!(!dirs.is_empty(), "usage: precompress DIR...");
    for dir in dirs {
        println!("{:>10} {:>10} {:>10}  file", "bytes", "brotli", "gzip");
        for file in grpc_runtime::precompress(&dir)? {
            let size = |s: Option<u64>| s.map_or_else(|| "-".to_owned(), |s| s.to_string());
            println!(
                "{:>10} {:>10} {:>10}  {}",
                file.bytes,
                size(file.brotli),
                size(file.gzip),
                file.path.display()
            );
        }
    }
    Ok(())
}
