//! `kpi-bench`: benchmarks of the KPI suite.
//!
//! `kpi-bench ingest` streams ticket lifecycle events through the
//! data-ingestion gRPC API (`StreamEvents`) into PostgreSQL, then loads the
//! same events with `COPY` into a plain table of the event store's columns,
//! and ends with one line:
//!
//! ```text
//! RESULT ingest value=<events/s> baseline=<copy rows/s> ratio=<value/baseline> peak_rss_mib=<MiB>
//! ```
//!
//! `kpi-bench score` and `kpi-bench cache` measure the scoring service on a
//! seeded month (see `score.rs`) and end with `RESULT score …` and
//! `RESULT cache …` lines.
//!
//! `peak_rss_mib` is the peak resident memory of the data-ingestion process,
//! which runs as a child process (this binary re-executed with the hidden
//! `serve-ingestion` sub-command) so it can be measured on its own.
//!
//! The database server is named by `KPI_DATABASE_URL` (default: the local
//! PostgreSQL); the benchmark creates a database of its own there and drops
//! it at the end.
#![forbid(unsafe_code)]

mod cpu;
mod generator;
mod ingest;
mod raw;
mod score;
mod serve;
mod wire;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's malloc: with glibc, the data-ingestion child (and the scoring child) kept far more
/// memory than its heap held after the projection's large transient batches
/// (heaptrack: a 78 MiB heap peak in a 197 MiB process).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Benchmarks of the KPI suite.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// gRPC stream ingestion into PostgreSQL against a `COPY` baseline.
    Ingest(ingest::IngestArgs),
    /// Serves data-ingestion from KPI_* variables (used by `ingest` in a child process).
    #[command(hide = true)]
    ServeIngestion,
    /// Cold scoring of a month for every agent against a hand-written SQL baseline.
    Score(score::DatasetArgs),
    /// Cached GetScorecard throughput and latency against a no-op RPC.
    Cache(score::CacheArgs),
    /// Serves scoring from KPI_* variables (used by `score` and `cache` in a child process).
    #[command(hide = true)]
    ServeScoring,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Ingest(args) => runtime.block_on(ingest::run(args)),
        Command::ServeIngestion => runtime.block_on(serve::serve_ingestion()),
        Command::Score(args) => runtime.block_on(score::run_score(args)),
        Command::Cache(args) => runtime.block_on(score::run_cache(args)),
        Command::ServeScoring => runtime.block_on(serve::serve_scoring()),
    }
}
