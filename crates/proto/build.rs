//! Compiles `proto/` once, with the pure-Rust `protox` compiler (no protoc on
//! the machine needed), into OUT_DIR: prost types, tonic clients and servers,
//! and the encoded descriptor set that feeds server reflection.

use std::path::PathBuf;

use prost::Message;

const FILES: &[&str] = &[
    "kpi/common/v1/common.proto",
    "kpi/catalog/v1/catalog.proto",
    "kpi/ingestion/v1/ingestion.proto",
    "kpi/scoring/v1/scoring.proto",
    // Only for reflection: lets grpcurl decode the BadRequest details of errors.
    "google/rpc/error_details.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    println!("cargo:rerun-if-changed={}", root.display());
    let out = PathBuf::from(std::env::var("OUT_DIR")?);

    let descriptors = protox::compile(FILES, [&root])?;
    std::fs::write(out.join("kpi_descriptor.bin"), descriptors.encode_to_vec())?;

    tonic_prost_build::configure()
        // Hand-written, so that scoring can send cached scorecards' bytes as
        // they are (see `pre_encoded.rs`).
        .extern_path(
            ".kpi.scoring.v1.GetScorecardResponse",
            "crate::pre_encoded::GetScorecardResponse",
        )
        .extern_path(
            ".kpi.scoring.v1.ListScorecardsResponse",
            "crate::pre_encoded::ListScorecardsResponse",
        )
        .compile_fds(descriptors)?;
    Ok(())
}
