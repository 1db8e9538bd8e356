//! The `scoring` binary: serve (the default); `migrate` has nothing to do,
//! as scoring keeps no tables of its own.

use clap::Parser;
use kpi_runtime::{ServiceCli, ServiceCommand, ServiceKind, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = ServiceCli::parse();
    let settings = Settings::load(ServiceKind::Scoring)?;
    let telemetry = kpi_runtime::telemetry::init(&settings);
    match cli.command.unwrap_or_default() {
        ServiceCommand::Migrate => tracing::info!("scoring has no tables; nothing to migrate"),
        ServiceCommand::Serve => {
            let app = scoring::App::build(&settings).await?;
            tracing::info!(addr = %app.local_addr()?, cache = app.cache_backend(), "scoring starting");
            app.run_until_stopped(kpi_runtime::shutdown_signal())
                .await?;
        }
    }
    // Queued spans and metrics reach the collector before the process ends.
    telemetry.shutdown();
    Ok(())
}
