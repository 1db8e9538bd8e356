//! `kpictl catalog apply | export | install-starter`: a tenant's catalog as
//! a document, over indicator-catalog's ImportCatalog, ExportCatalog and
//! InstallStarterKit.

use std::fmt::Write as _;

use kpi_proto::catalog as pb;
use serde::Serialize;

use super::cli::{ApplyArgs, CatalogCommand, DocumentFormat, ExportArgs, InstallStarterArgs};
use super::{Printed, parent, to_json};
use crate::cli::Cli;
use crate::client::{self, CallError, ClientConfig, Service};

/// Runs one `catalog` sub-command.
pub async fn run(cli: &Cli, command: &CatalogCommand) -> Result<Printed, CallError> {
    let config = ClientConfig::from_cli(cli, Service::Catalog, false);
    match command {
        CatalogCommand::Apply(args) => apply(&config, args).await,
        CatalogCommand::Export(args) => export(&config, args).await,
        CatalogCommand::InstallStarter(args) => install_starter(&config, args).await,
    }
}

/// What an apply or an install did (or, dry, would do).
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    /// The tenant.
    pub tenant: String,
    /// Whether nothing was written.
    pub dry_run: bool,
    /// Versions and calendars created.
    pub created: i32,
    /// Drafts and calendars changed.
    pub updated: i32,
    /// Entries already as the document says.
    pub unchanged: i32,
    /// One line per entry written, e.g. `indicator fcr v1 active`.
    pub changes: Vec<String>,
    /// Advisory problems, `field: description`.
    pub warnings: Vec<String>,
}

impl Applied {
    fn of(tenant: &str, dry_run: bool, summary: Option<pb::ImportSummary>) -> Applied {
        let summary = summary.unwrap_or_default();
        Applied {
            tenant: tenant.into(),
            dry_run,
            created: summary.created,
            updated: summary.updated,
            unchanged: summary.unchanged,
            changes: summary.changes,
            warnings: summary
                .warnings
                .iter()
                .map(|w| format!("{}: {}", w.field, w.description))
                .collect(),
        }
    }

    fn text(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "tenant {}{}: {} created, {} updated, {} unchanged",
            self.tenant,
            if self.dry_run {
                " (dry run, nothing written)"
            } else {
                ""
            },
            self.created,
            self.updated,
            self.unchanged
        );
        for change in &self.changes {
            let _ = writeln!(out, "  {change}");
        }
        for warning in &self.warnings {
            let _ = writeln!(out, "  warning: {warning}");
        }
        out
    }

    fn printed(&self) -> Result<Printed, CallError> {
        Ok(Printed {
            text: self.text(),
            json: to_json(self)?,
        })
    }
}

async fn apply(config: &ClientConfig, args: &ApplyArgs) -> Result<Printed, CallError> {
    let parent = parent(&args.tenant.tenant)?;
    let file = args.file.display().to_string();
    let content = std::fs::read_to_string(&args.file)
        .map_err(|e| CallError::usage(format!("cannot read {file}: {e}")))?;
    let mut catalog = client::catalog(config).await?;
    let answer = catalog
        .import_catalog(pb::ImportCatalogRequest {
            parent,
            content,
            // JSON is YAML too: the service parses either.
            format: pb::CatalogFormat::Unspecified as i32,
            dry_run: args.dry_run,
        })
        .await
        .map_err(|s| config.call_error("ImportCatalog", &s).context(&file))?
        .into_inner();
    Applied::of(&args.tenant.tenant, args.dry_run, answer.summary).printed()
}

async fn install_starter(
    config: &ClientConfig,
    args: &InstallStarterArgs,
) -> Result<Printed, CallError> {
    let parent = parent(&args.tenant.tenant)?;
    let mut catalog = client::catalog(config).await?;
    let answer = catalog
        .install_starter_kit(pb::InstallStarterKitRequest {
            parent,
            time_zone: args.time_zone.clone(),
        })
        .await
        .map_err(|s| config.call_error("InstallStarterKit", &s))?
        .into_inner();
    Applied::of(&args.tenant.tenant, false, answer.summary).printed()
}

async fn export(config: &ClientConfig, args: &ExportArgs) -> Result<Printed, CallError> {
    let parent = parent(&args.tenant.tenant)?;
    let (format, name) = match args.format {
        DocumentFormat::Yaml => (pb::CatalogFormat::Yaml, "yaml"),
        DocumentFormat::Json => (pb::CatalogFormat::Json, "json"),
    };
    let mut catalog = client::catalog(config).await?;
    let content = catalog
        .export_catalog(pb::ExportCatalogRequest {
            parent,
            format: format as i32,
        })
        .await
        .map_err(|s| config.call_error("ExportCatalog", &s))?
        .into_inner()
        .content;
    let Some(out) = &args.out else {
        // The document itself is what a script wants on stdout in text mode;
        // --output json wraps it in an object.
        let mut text = content.clone();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        return Ok(Printed {
            text,
            json: serde_json::json!({"tenant": args.tenant.tenant, "format": name, "content": content}),
        });
    };
    std::fs::write(out, &content)
        .map_err(|e| CallError::usage(format!("cannot write {}: {e}", out.display())))?;
    let file = out.display().to_string();
    let text = format!(
        "wrote tenant {}'s catalog to {file} ({name}, {} bytes)\n",
        args.tenant.tenant,
        content.len()
    );
    Ok(Printed {
        text,
        json: serde_json::json!({
            "tenant": args.tenant.tenant,
            "format": name,
            "file": file,
            "bytes": content.len(),
        }),
    })
}
