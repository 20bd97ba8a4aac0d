//! Generates the Rust types of `protos/pink/v1` with prost. The .proto files
//! are the single contract for Python and Rust; protox compiles them in pure
//! Rust so the build needs no protoc binary.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest.join("../../protos");
    let dir = root.join("pink/v1");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "proto"))
        .collect();
    files.sort();
    println!("cargo:rerun-if-changed={}", dir.display());
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let descriptors = protox::compile(&files, [&root])?;
    let mut config = prost_build::Config::new();
    // Ordered maps keep encoding (and so snapshots and state hashes) deterministic.
    config.btree_map(["."]);
    config.compile_fds(descriptors)?;
    Ok(())
}
