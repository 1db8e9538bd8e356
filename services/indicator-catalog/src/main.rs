//! The `indicator-catalog` binary: serve (the default) or apply migrations.

use clap::{Parser, Subcommand};
use kpi_runtime::{ServiceKind, Settings};

/// The KPI dictionary service. Configured by KPI_* environment variables.
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
    let settings = Settings::load(ServiceKind::Catalog)?;
    kpi_runtime::telemetry::init(&settings);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => {
            let migrate = Settings {
                run_migrations: true,
                ..settings
            };
            indicator_catalog::open_repo(&migrate).await?;
            tracing::info!("catalog migrations applied");
        }
        Command::Serve => {
            let app = indicator_catalog::App::build(&settings).await?;
            tracing::info!(addr = %app.local_addr()?, "indicator-catalog starting");
            app.run_until_stopped(kpi_runtime::shutdown_signal())
                .await?;
        }
    }
    Ok(())
}
