//! The `data-ingestion` binary: serve (the default) or apply migrations.

use clap::{Parser, Subcommand};
use kpi_runtime::{ServiceKind, Settings};

/// Validated, idempotent intake of customer-service events. Configured by KPI_* environment variables.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve gRPC (the default).
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(ServiceKind::Ingestion)?;
    kpi_runtime::telemetry::init(&settings);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => {
            let migrate = Settings {
                run_migrations: true,
                ..settings
            };
            data_ingestion::open_database(&migrate).await?;
            tracing::info!("ingestion migrations applied");
        }
        Command::Serve => {
            let app = data_ingestion::App::build(&settings).await?;
            tracing::info!(addr = %app.local_addr()?, "data-ingestion starting");
            app.run_until_stopped(kpi_runtime::shutdown_signal())
                .await?;
        }
    }
    Ok(())
}
