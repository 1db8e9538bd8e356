//! `kpictl up`: the three services in this process until SIGINT or SIGTERM,
//! then a drain of all three.

use crate::cli::{Cli, UpArgs};
use crate::stack::Stack;
use crate::{ExitCode, error_chain};

/// Runs `kpictl up` and returns its exit code: 0 after a clean stop, 3 when
/// the stack cannot start (e.g. a port is taken, the database is
/// unreachable) or a service fails.
pub async fn run(_cli: &Cli, args: &UpArgs) -> ExitCode {
    let options = args
        .stack
        .options(args.stack.data_dir_or_default(), &args.log);
    let stack = match Stack::start(&options).await {
        Ok(stack) => stack,
        Err(e) => {
            eprintln!(
                "kpictl up: cannot start the stack: {}",
                error_chain(e.as_ref())
            );
            return ExitCode::Unreachable;
        }
    };
    let storage = match &options.database_url {
        Some(_) => "PostgreSQL (KPI_DATABASE_URL)".to_owned(),
        None => format!("SQLite in {}", options.data_dir.display()),
    };
    println!("indicator-catalog  listening on {}", stack.catalog);
    println!("data-ingestion     listening on {}", stack.ingestion);
    println!("scoring            listening on {}", stack.scoring);
    println!("storage: {storage}; cache: {}", stack.cache);
    println!(
        "token (admin of every tenant of this stack): {} — use it with --token or KPI_TOKEN",
        stack.credentials.token_file.display()
    );
    println!("press Ctrl-C to stop");
    kpi_runtime::shutdown_signal().await;
    println!("stopping: draining in-flight calls…");
    match stack.stop().await {
        Ok(()) => {
            println!("stopped");
            ExitCode::Ok
        }
        Err(e) => {
            eprintln!("kpictl up: {}", error_chain(e.as_ref()));
            ExitCode::Unreachable
        }
    }
}
