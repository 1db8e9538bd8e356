//! `kpictl`, the operator CLI of the KPI scorecard suite, as a library so
//! tests (and later commands) can drive it without a process.
//!
//! - [`auth`]: `--token` on every call; the local credentials of `up`/`demo`.
//! - [`cli`]: the command line (clap derive): global options and sub-commands.
//! - [`client`]: the one connect path to the services and the mapping of
//!   failed calls to messages and exit codes.
//! - [`ops`]: the operator commands (`catalog`, `scorecard`, `alerts`,
//!   `simulate`).
//! - [`scorecards`]: scorecards read back and printed (demo and `ops`).
//! - [`import`]: `kpictl import`, events from files into data-ingestion.
//! - [`formats`]: reading JSON Lines and CSV files as streams of events.
//! - [`summary`]: what an import did, as text or JSON.
//! - [`progress`]: the progress bar on stderr.
//! - [`stack`]: the three services in this process (`up`, `demo`).
//! - [`tls`]: `--ca-cert`, `--client-cert`, `--client-key` for `https://` URLs.
//! - [`up`]: `kpictl up`, the stack until a signal.
//! - [`demo`]: `kpictl demo`, the stack filled with a generated month and
//!   its scorecards printed.
//! - [`report`]: `kpictl report`, a team's period as one self-contained
//!   HTML page; [`period_arg`] parses its `--period`.
//! - [`run`] dispatches a parsed command line; [`ExitCode`] is the contract
//!   with scripts.
//!
//! A new command (`report`, …) adds a variant to
//! [`cli::Command`], a module, and an arm in [`run`].

pub mod auth;
pub mod cli;
pub mod client;
pub mod demo;
pub mod formats;
pub mod import;
pub mod ops;
pub mod period_arg;
pub mod progress;
pub mod report;
pub mod scorecards;
pub mod stack;
pub mod summary;
pub mod tls;
pub mod up;

use cli::{Cli, Command};

/// Exit codes scripts can trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// 0: everything was accepted (or was a duplicate).
    Ok,
    /// 1: some events were rejected or some lines unreadable.
    Incomplete,
    /// 2: usage or file errors; the request was refused.
    Usage,
    /// 3: a service cannot be reached, or failed.
    Unreachable,
}

impl ExitCode {
    /// The process exit status.
    pub fn code(self) -> u8 {
        match self {
            ExitCode::Ok => 0,
            ExitCode::Incomplete => 1,
            ExitCode::Usage => 2,
            ExitCode::Unreachable => 3,
        }
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code.code())
    }
}

/// Runs a parsed command line and returns its exit code; everything it has
/// to say is already printed.
pub async fn run(cli: Cli) -> ExitCode {
    match &cli.command {
        Command::Import(args) => import::run(&cli, args).await,
        Command::Up(args) => up::run(&cli, args).await,
        Command::Demo(args) => demo::run(&cli, args).await,
        Command::Catalog(_) | Command::Scorecard(_) | Command::Alerts(_) | Command::Simulate(_) => {
            // Every operator command is handled by `ops`.
            ops::run(&cli).await.unwrap_or(ExitCode::Usage)
        }
        Command::Report(args) => report::run(&cli, args).await,
        Command::HashKey(args) => auth::hash_key(args),
    }
}

/// An error and its sources, joined with `: `, skipping repeats: readable
/// where `Debug` would dump structures.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}
