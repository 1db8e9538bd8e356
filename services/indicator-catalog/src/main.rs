//! The `indicator-catalog` binary: serve (the default) or apply migrations.

use clap::Parser;
use kpi_runtime::{ServiceCli, ServiceCommand, ServiceKind, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = ServiceCli::parse();
    let settings = Settings::load(ServiceKind::Catalog)?;
    let telemetry = kpi_runtime::telemetry::init(&settings);
    match cli.command.unwrap_or_default() {
        ServiceCommand::Migrate => {
            indicator_catalog::open_repo(&Settings {
                run_migrations: true,
                ..settings
            })
            .await?;
            tracing::info!("migrations applied");
        }
        ServiceCommand::Serve => {
            let app = indicator_catalog::App::build(&settings).await?;
            tracing::info!(addr = %app.local_addr()?, "indicator-catalog starting");
            app.run_until_stopped(kpi_runtime::shutdown_signal())
                .await?;
        }
    }
    // Queued spans and metrics reach the collector before the process ends.
    telemetry.shutdown();
    Ok(())
}
