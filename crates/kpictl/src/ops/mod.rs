//! The operator commands over the gRPC APIs: each reads its arguments,
//! makes its calls through [`crate::client`] and returns what to print as a
//! [`Printed`] (a human table and one JSON object), or a
//! [`CallError`]; [`finish`] prints the one asked for and gives the exit
//! code.
//!
//! - [`cli`]: their arguments.
//! - [`period`]: `--period` as people type it.
//! - [`catalog`]: `catalog apply | export | install-starter`.
//! - [`scorecard`]: `scorecard get | list | explain`.
//! - [`alerts`]: `alerts list`.
//! - [`simulate`]: the `simulate` command.
//!
//! Exit codes: 0 done; 2 usage errors or a refusal by a service (bad input,
//! unknown tenant/agent/template, conflicts, permissions); 3 a service
//! cannot be reached, did not answer in time, or failed.

pub mod alerts;
pub mod catalog;
pub mod cli;
pub mod period;
pub mod scorecard;
pub mod simulate;

use crate::ExitCode;
use crate::cli::{Cli, Command, Output};
use crate::client::CallError;

/// What a command prints: text for people, one JSON object for scripts.
#[derive(Debug, Clone)]
pub struct Printed {
    /// The text, printed as is on stdout.
    pub text: String,
    /// The JSON object, printed on one line on stdout.
    pub json: serde_json::Value,
}

/// Runs an operator command and prints its result; `None` if `cli` holds
/// another command.
pub async fn run(cli: &Cli) -> Option<ExitCode> {
    let result = execute(cli).await?;
    Some(finish(cli, name(&cli.command), result))
}

/// Runs an operator command and returns what it would print (for tests
/// and embedding); `None` if `cli` holds another command.
pub async fn execute(cli: &Cli) -> Option<Result<Printed, CallError>> {
    Some(match &cli.command {
        Command::Catalog(command) => catalog::run(cli, command).await,
        Command::Scorecard(command) => scorecard::run(cli, command).await,
        Command::Alerts(command) => alerts::run(cli, command).await,
        Command::Simulate(args) => simulate::run(cli, args).await,
        _ => return None,
    })
}

/// The command's name, for messages.
fn name(command: &Command) -> &'static str {
    match command {
        Command::Catalog(_) => "catalog",
        Command::Scorecard(_) => "scorecard",
        Command::Alerts(_) => "alerts",
        Command::Simulate(_) => "simulate",
        Command::Import(_) => "import",
        Command::Up(_) => "up",
        Command::Demo(_) => "demo",
        Command::Report(_) => "report",
        Command::HashKey(_) => "hash-key",
    }
}

/// Prints the result as `--output` asks and returns the exit code. An
/// error goes to stderr as one line (and, with `--output json`, to stdout
/// as `{"error", "exit_code", "fields"}`).
pub fn finish(cli: &Cli, command: &str, result: Result<Printed, CallError>) -> ExitCode {
    match result {
        Ok(printed) => {
            match cli.output {
                Output::Text => print!("{}", printed.text),
                Output::Json => println!("{}", printed.json),
            }
            ExitCode::Ok
        }
        Err(error) => {
            eprintln!("kpictl {command}: {error}");
            if cli.output == Output::Json {
                println!(
                    "{}",
                    serde_json::json!({
                        "error": error.message,
                        "exit_code": error.exit.code(),
                        "fields": error.fields,
                    })
                );
            }
            error.exit
        }
    }
}

/// `tenants/{tenant}`, refusing an empty tenant before any call.
fn parent(tenant: &str) -> Result<String, CallError> {
    if tenant.trim().is_empty() {
        return Err(CallError::usage("--tenant must not be empty"));
    }
    Ok(format!("tenants/{tenant}"))
}

/// Serialises what a command read; our own types always serialise.
fn to_json<T: serde::Serialize>(value: &T) -> Result<serde_json::Value, CallError> {
    serde_json::to_value(value).map_err(|e| CallError::usage(format!("cannot write JSON: {e}")))
}
