//! `kpictl demo`: the newcomer's first command. Starts the stack in this
//! process (or uses a running one), installs the starter kit for tenant
//! `demo`, points each team at its industry template, ingests a generated
//! month (October 2026) and prints each team's leaderboard and one agent's
//! explained scorecard.
//!
//! - [`generate`]: the seeded month of events.
//! - [`report`]: the scorecards read back, as tables or JSON.
//! - here: the steps, in order, and the errors that stop them.

pub mod generate;
pub mod report;

use std::path::PathBuf;

use kpi_proto::catalog as cat;
use kpi_proto::ingestion as ing;
use kpi_runtime::auth::BearerToken;
use tempfile::TempDir;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::cli::{Cli, DemoArgs, Output};
use crate::client::{self, CallError, CatalogClient, ClientConfig, IngestionClient, Service};
use crate::progress::Progress;
use crate::stack::{self, Stack};
use crate::{ExitCode, error_chain};

/// The tenant the demo fills.
pub const TENANT: &str = "demo";
/// Events per StreamEvents message.
const CHUNK: usize = 2_000;
/// When the demo's templates take effect: before the month scored, so
/// October is scored by them.
const TEMPLATES_FROM: &str = "2026-09-01";

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Bad arguments, or a service refused a request.
    #[error("{0}")]
    Usage(String),
    /// Some generated events were rejected.
    #[error("{0}")]
    Rejected(String),
    /// A service could not be reached or failed.
    #[error("{0}")]
    Unreachable(String),
}

impl DemoError {
    /// The exit code scripts see (the same contract as `kpictl import`).
    pub fn exit_code(&self) -> ExitCode {
        match self {
            DemoError::Usage(_) => ExitCode::Usage,
            DemoError::Rejected(_) => ExitCode::Incomplete,
            DemoError::Unreachable(_) => ExitCode::Unreachable,
        }
    }
}

impl From<CallError> for DemoError {
    /// A failed call keeps its exit code: refusals are usage errors, the
    /// rest means a service is unwell or unreachable.
    fn from(error: CallError) -> DemoError {
        match error.exit {
            ExitCode::Usage => DemoError::Usage(error.message),
            ExitCode::Incomplete => DemoError::Rejected(error.message),
            ExitCode::Ok | ExitCode::Unreachable => DemoError::Unreachable(error.message),
        }
    }
}

/// How to reach the three services. No request deadline: the demo's
/// stream and its catch-up read take as long as the month needs.
#[derive(Debug, Clone)]
struct Endpoints {
    catalog: ClientConfig,
    ingestion: ClientConfig,
    scoring: ClientConfig,
}

impl Endpoints {
    /// The services at these URLs, with the command line's options and
    /// `token` (the command line's, or the embedded stack's own).
    fn at(
        cli: &Cli,
        token: Option<BearerToken>,
        catalog: String,
        ingestion: String,
        scoring: String,
    ) -> Endpoints {
        let config = |service: Service, url: String| {
            ClientConfig {
                url,
                ..ClientConfig::from_cli(cli, service, true)
            }
            .with_token(token.clone())
        };
        Endpoints {
            catalog: config(Service::Catalog, catalog),
            ingestion: config(Service::Ingestion, ingestion),
            scoring: config(Service::Scoring, scoring),
        }
    }
}

/// Runs `kpictl demo` and returns its exit code.
pub async fn run(cli: &Cli, args: &DemoArgs) -> ExitCode {
    match demo(cli, args).await {
        Ok(()) => ExitCode::Ok,
        Err(e) => {
            eprintln!("kpictl demo: {e}");
            e.exit_code()
        }
    }
}

async fn demo(cli: &Cli, args: &DemoArgs) -> Result<(), DemoError> {
    if args.use_running {
        let endpoints = Endpoints::at(
            cli,
            cli.token.clone(),
            cli.catalog_url.clone(),
            cli.ingestion_url.clone(),
            cli.scoring_url.clone(),
        );
        eprintln!(
            "using the running stack: catalog {} · ingestion {} · scoring {}",
            endpoints.catalog.url, endpoints.ingestion.url, endpoints.scoring.url
        );
        return scenario(cli, args, &endpoints).await;
    }
    // Kept until the stack has stopped: dropping it deletes the directory.
    let (data_dir, _temp) = data_dir(args)?;
    let options = args.stack.options(data_dir, "warn");
    let stack = Stack::start(&options).await.map_err(|e| {
        DemoError::Unreachable(format!(
            "cannot start the stack: {}",
            error_chain(e.as_ref())
        ))
    })?;
    eprintln!(
        "stack up in-process: catalog {} · ingestion {} · scoring {} ({} database, {} cache)",
        stack.catalog, stack.ingestion, stack.scoring, stack.database, stack.cache
    );
    let endpoints = Endpoints::at(
        cli,
        Some(stack.credentials.token.clone()),
        stack::url(stack.catalog),
        stack::url(stack.ingestion),
        stack::url(stack.scoring),
    );
    let outcome = scenario(cli, args, &endpoints).await;
    let stopped = stack.stop().await;
    outcome?;
    stopped.map_err(|e| {
        DemoError::Unreachable(format!(
            "the stack did not stop cleanly: {}",
            error_chain(e.as_ref())
        ))
    })
}

/// `--data-dir`, else a fresh temporary directory (returned too, so the
/// caller decides when it is deleted): a re-run never sees old data.
fn data_dir(args: &DemoArgs) -> Result<(PathBuf, Option<TempDir>), DemoError> {
    if let Some(dir) = &args.stack.data_dir {
        return Ok((dir.clone(), None));
    }
    let temp = tempfile::tempdir()
        .map_err(|e| DemoError::Usage(format!("cannot create a temporary data directory: {e}")))?;
    Ok((temp.path().to_path_buf(), Some(temp)))
}

/// The demo proper, on any stack: catalog, data, then the report.
async fn scenario(cli: &Cli, args: &DemoArgs, endpoints: &Endpoints) -> Result<(), DemoError> {
    let mut catalog = client::catalog(&endpoints.catalog).await?;
    install(&mut catalog, &endpoints.catalog).await?;
    let events = generate::month(args.seed);
    eprintln!(
        "ingesting {} generated events (October 2026, seed {}, {} teams, {} agents)…",
        events.len(),
        args.seed,
        generate::TEAMS.len(),
        generate::TEAMS.iter().map(|t| t.size).sum::<usize>()
    );
    let ingestion = client::ingestion(&endpoints.ingestion).await?;
    let progress = Progress::new(cli.output == Output::Text);
    let streamed = ingest(ingestion.clone(), &endpoints.ingestion, events, &progress).await;
    progress.finish();
    let (accepted, duplicates) = streamed?;
    eprintln!("{accepted} events accepted, {duplicates} duplicates (ingested before)");
    caught_up(ingestion, &endpoints.ingestion).await?;
    let scoring = client::scoring(&endpoints.scoring).await?;
    let report = report::Report::read(scoring, &endpoints.scoring, args.agent.as_deref()).await?;
    match cli.output {
        Output::Text => print!("{}", report.text()),
        Output::Json => println!(
            "{}",
            report
                .json()
                .map_err(|e| DemoError::Usage(format!("cannot write JSON: {e}")))?
        ),
    }
    Ok(())
}

/// Installs the starter kit, then makes each team's industry template apply
/// to that team: the starter templates apply to everyone at a low priority,
/// so naming the team makes each one the most specific for its agents.
async fn install(catalog: &mut CatalogClient, config: &ClientConfig) -> Result<(), DemoError> {
    if installed(catalog, config).await? {
        eprintln!("tenant `{TENANT}` already has the demo's templates; keeping them");
        return Ok(());
    }
    eprintln!("installing the starter kit for tenant `{TENANT}`…");
    catalog
        .install_starter_kit(cat::InstallStarterKitRequest {
            parent: format!("tenants/{TENANT}"),
            time_zone: "UTC".into(),
        })
        .await
        .map_err(|s| config.call_error("InstallStarterKit", &s))?;
    for team in generate::TEAMS {
        assign(catalog, config, team).await?;
    }
    Ok(())
}

/// Whether an earlier demo on this stack set the catalog up already (the
/// e-commerce template's current version names its team): the starter kit
/// cannot be installed over versions it has since replaced.
async fn installed(catalog: &mut CatalogClient, config: &ClientConfig) -> Result<bool, DemoError> {
    let name = format!("tenants/{TENANT}/templates/{}", generate::TEAMS[0].template);
    match catalog
        .get_template(cat::GetTemplateRequest { name, version: 0 })
        .await
    {
        Ok(answer) => Ok(answer
            .into_inner()
            .template
            .and_then(|t| t.applicability)
            .is_some_and(|a| a.teams.iter().any(|t| t == generate::TEAMS[0].id))),
        Err(status) if status.code() == tonic::Code::NotFound => Ok(false),
        Err(status) => Err(config.call_error("GetTemplate", &status).into()),
    }
}

/// A new version of the team's template that applies to that team, from
/// [`TEMPLATES_FROM`], activated.
async fn assign(
    catalog: &mut CatalogClient,
    config: &ClientConfig,
    team: generate::Team,
) -> Result<(), DemoError> {
    let name = format!("tenants/{TENANT}/templates/{}", team.template);
    let fail = |what: &str, s: tonic::Status| {
        DemoError::from(config.call_error(&format!("{what} {name}"), &s))
    };
    let mut template = catalog
        .get_template(cat::GetTemplateRequest {
            name: name.clone(),
            version: 0,
        })
        .await
        .map_err(|s| fail("GetTemplate", s))?
        .into_inner()
        .template
        .ok_or_else(|| {
            DemoError::Unreachable(format!("GetTemplate {name} returned no template"))
        })?;
    template.applicability = Some(cat::Applicability {
        teams: vec![team.id.into()],
        ..Default::default()
    });
    template.effective_from = TEMPLATES_FROM.into();
    local_targets(&mut template);
    let draft = catalog
        .update_template(cat::UpdateTemplateRequest {
            template: Some(template),
            update_mask: Some(prost_types::FieldMask {
                paths: vec![
                    "applicability".into(),
                    "effective_from".into(),
                    "items".into(),
                ],
            }),
            validate_only: false,
        })
        .await
        .map_err(|s| fail("UpdateTemplate", s))?
        .into_inner()
        .template
        .ok_or_else(|| {
            DemoError::Unreachable(format!("UpdateTemplate {name} returned no template"))
        })?;
    catalog
        .activate_template(cat::ActivateTemplateRequest {
            name: name.clone(),
            version: draft.version,
        })
        .await
        .map_err(|s| fail("ActivateTemplate", s))?;
    Ok(())
}

/// The demo shop's own targets where the starter kit's assume a bigger
/// operation: the e-commerce template expects 100 valid chat sessions a
/// working day; the demo's agents have about 12 (9 for new hires), so its
/// version caps the score there, as a manager of such a shop would.
fn local_targets(template: &mut cat::Template) {
    let cap = |threshold: f64, zero_at: f64| {
        Some(cat::ScoringRule {
            rule: Some(cat::scoring_rule::Rule::Cap(cat::CapRule {
                threshold,
                zero_at,
            })),
        })
    };
    for item in &mut template.items {
        if item.indicator != "valid_sessions" {
            continue;
        }
        item.target = Some(12.0);
        item.scoring = cap(12.0, 5.0);
        for o in &mut item.cohort_overrides {
            if o.cohort == "new_hire" {
                o.target = Some(9.0);
                o.scoring = cap(9.0, 4.0);
            }
        }
    }
}

/// Waits until data-ingestion has folded every stored event into facts.
/// Any read catches up first; doing one here, without a deadline, keeps
/// that wait out of scoring's calls, whose deadline (5 s by default) a
/// fresh month on PostgreSQL can exceed.
async fn caught_up(mut ingestion: IngestionClient, config: &ClientConfig) -> Result<(), DemoError> {
    eprintln!("waiting for data-ingestion to fold the events into facts…");
    ingestion
        .list_agents(ing::ListAgentsRequest {
            parent: format!("tenants/{TENANT}"),
            page_size: 1,
            ..Default::default()
        })
        .await
        .map_err(|s| config.call_error("ListAgents", &s))?;
    Ok(())
}

/// Streams the events in chunks; every one must be accepted (or be a
/// duplicate of one ingested before). Returns how many were each.
async fn ingest(
    mut client: IngestionClient,
    config: &ClientConfig,
    events: Vec<ing::Event>,
    progress: &Progress,
) -> Result<(u64, u64), DemoError> {
    let (tx, rx) = mpsc::channel::<ing::StreamEventsRequest>(4);
    let sender_progress = progress.clone();
    let sender = tokio::spawn(async move {
        let mut sent = 0_u64;
        for (sequence, chunk) in events.chunks(CHUNK).enumerate() {
            let request = ing::StreamEventsRequest {
                parent: format!("tenants/{TENANT}"),
                sequence: sequence as i64 + 1,
                events: chunk.to_vec(),
            };
            // A closed stream is reported by the reading side.
            if tx.send(request).await.is_err() {
                break;
            }
            sent += chunk.len() as u64;
            sender_progress.sent(sent);
        }
    });
    let mut answers = client
        .stream_events(ReceiverStream::new(rx))
        .await
        .map_err(|s| config.call_error("StreamEvents", &s))?
        .into_inner();
    let (mut accepted, mut duplicates) = (0_u64, 0_u64);
    while let Some(answer) = answers
        .message()
        .await
        .map_err(|s| config.call_error("StreamEvents", &s))?
    {
        if let Some(r) = answer
            .results
            .iter()
            .find(|r| r.outcome == ing::EventOutcome::Rejected as i32)
        {
            return Err(DemoError::Rejected(format!(
                "data-ingestion rejected the generated event {}: {} {} {}",
                r.event_id, r.reason, r.field, r.description
            )));
        }
        accepted += u64::try_from(answer.accepted).unwrap_or(0);
        duplicates += u64::try_from(answer.duplicates).unwrap_or(0);
        progress.acknowledged(accepted + duplicates);
    }
    sender
        .await
        .map_err(|e| DemoError::Unreachable(format!("the event sender failed: {e}")))?;
    Ok((accepted, duplicates))
}
