//! The `kpictl` binary: parses the command line and hands it to the library
//! ([`kpictl::run`]); usage errors exit with 2 (clap's own convention).

use clap::Parser;
use kpictl::ExitCode;
use kpictl::cli::Cli;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("kpictl: cannot start the async runtime: {e}");
            return ExitCode::Usage.into();
        }
    };
    runtime.block_on(kpictl::run(cli)).into()
}
