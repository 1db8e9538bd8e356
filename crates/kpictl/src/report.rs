//! `kpictl report`: one team's period as a self-contained HTML page a
//! manager would rather look at than read.
//!
//! - here: the arguments, the calls that gather everything
//!   ([`ReportData::gather`]) and writing the file;
//! - [`html`]: the page (HTML and CSS, every user string escaped);
//! - [`svg`]: the inline charts (sparklines, the team trend line, value
//!   against target bars).
//!
//! What is read: ListScorecards of the team for the period and each of the
//! previous `--periods − 1` (trends), ListAlerts and one ExplainScorecard
//! per template (the formulas in words) from scoring; ListTeams (the team's
//! name), GetDataVersion and GetDataQuality from data-ingestion.

pub mod html;
pub mod svg;

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use kpi_proto::common as cpb;
use kpi_proto::ingestion as ing;
use kpi_proto::scoring as pb;

use crate::ExitCode;
use crate::cli::Cli;
use crate::client::{self, CallError, ClientConfig, IngestionClient, ScoringClient, Service};
use crate::period_arg::PeriodArg;

/// The most periods a trend may cover.
const MAX_PERIODS: u32 = 36;

/// Arguments of `kpictl report`.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// The tenant, e.g. `demo`.
    #[arg(long, env = "KPI_TENANT")]
    pub tenant: String,
    /// The team whose agents are reported.
    #[arg(long, value_name = "TEAM_ID")]
    pub team: String,
    /// The period: `2026-10` (month), `2026-W41` (ISO week), `2026-Q4`
    /// (quarter) or `2026-10-14` (day).
    #[arg(long)]
    pub period: PeriodArg,
    /// How many periods the trend charts cover, this one included.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=MAX_PERIODS as i64))]
    pub periods: u32,
    /// The HTML file written (`-` for stdout).
    #[arg(
        short = 'o',
        long = "output-file",
        default_value = "report.html",
        value_name = "FILE"
    )]
    pub output_file: PathBuf,
}

/// `kpictl report --help`.
pub const ABOUT: &str = "\
Writes one self-contained HTML page for a team and a period: a header (tenant,
team, period, template, data version and watermark), the leaderboard with
grade badges, vetoed agents in red and alert chips, a trend line of the team
average and a sparkline per agent over the last --periods periods, every
agent's indicators against their targets and bands, the alerts and vetoes of
the period, and the tenant's data quality (accepted, duplicate and rejected
events by reason, orphans, suspicious facts) for events ingested from the
period's start to the data watermark.

Charts are inline SVG and the styles inline CSS: the page opens offline and
loads nothing from anywhere.

Scorecards, alerts and explanations come from scoring (--scoring-url,
KPI_SCORING_URL), the team's name and data quality from data-ingestion
(--ingestion-url, KPI_INGESTION_URL).

Exit codes:
  0  the report was written
  2  usage errors, an unknown tenant or team, a team without agents in the
     period, or the file cannot be written
  3  a service cannot be reached or failed";

/// Why no report was written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Bad arguments, a refused request, or the file cannot be written.
    #[error("{0}")]
    Usage(String),
    /// A service could not be reached or failed.
    #[error("{0}")]
    Unreachable(String),
}

impl ReportError {
    /// The exit code scripts see.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            ReportError::Usage(_) => ExitCode::Usage,
            ReportError::Unreachable(_) => ExitCode::Unreachable,
        }
    }

    /// A failed call, classified the way every command classifies it
    /// ([`client::exit_code_of`]).
    fn from_status(what: &str, status: &tonic::Status) -> ReportError {
        let text = format!("{what}: {}", client::reason(status));
        match client::exit_code_of(status.code()) {
            ExitCode::Usage => ReportError::Usage(text),
            _ => ReportError::Unreachable(text),
        }
    }
}

impl From<CallError> for ReportError {
    fn from(error: CallError) -> ReportError {
        match error.exit {
            ExitCode::Usage => ReportError::Usage(error.message),
            _ => ReportError::Unreachable(error.message),
        }
    }
}

/// Everything the page shows.
#[derive(Debug, Clone)]
pub struct ReportData {
    /// The tenant id.
    pub tenant: String,
    /// The team id.
    pub team: String,
    /// The team's display name (its id when it has none).
    pub team_name: String,
    /// The period reported.
    pub period: PeriodArg,
    /// The period as scoring resolved it (dates, time zone).
    pub resolved: cpb::ResolvedPeriod,
    /// The team's scorecards for the period, by rank.
    pub scorecards: Vec<pb::Scorecard>,
    /// The trend periods, oldest first, the reported one last.
    pub history: Vec<PeriodTotals>,
    /// The alerts of the period for the team's agents.
    pub alerts: Vec<pb::Alert>,
    /// Indicator key → its formula in words.
    pub formulas: BTreeMap<String, String>,
    /// The tenant's data version and last ingestion time.
    pub data_version: ing::GetDataVersionResponse,
    /// Data quality of the events ingested in `quality_window`.
    pub quality: ing::GetDataQualityResponse,
    /// The ingestion-time window of `quality`: [start, end).
    pub quality_window: (prost_types::Timestamp, prost_types::Timestamp),
}

/// One trend period: each agent's total, and the team's average.
#[derive(Debug, Clone)]
pub struct PeriodTotals {
    /// The period's label, e.g. `2026-10`.
    pub label: String,
    /// Agent id → total, for agents with at least one scored indicator.
    pub totals: BTreeMap<String, f64>,
}

impl PeriodTotals {
    /// The average total of the agents with data, if any had.
    pub fn mean(&self) -> Option<f64> {
        let n = self.totals.len();
        (n > 0).then(|| self.totals.values().sum::<f64>() / n as f64)
    }
}

/// Runs `kpictl report` and returns its exit code.
pub async fn run(cli: &Cli, args: &ReportArgs) -> ExitCode {
    match report(cli, args).await {
        Ok(()) => ExitCode::Ok,
        Err(e) => {
            eprintln!("kpictl report: {e}");
            e.exit_code()
        }
    }
}

async fn report(cli: &Cli, args: &ReportArgs) -> Result<(), ReportError> {
    let scoring = client::scoring(&ClientConfig::from_cli(cli, Service::Scoring, false)).await?;
    let ingestion =
        client::ingestion(&ClientConfig::from_cli(cli, Service::Ingestion, false)).await?;
    let data = ReportData::gather(scoring, ingestion, args).await?;
    let page = html::render(&data);
    write(&args.output_file, &page)?;
    if args.output_file.as_os_str() != "-" {
        eprintln!(
            "wrote {} ({} agents, {} periods, {} alerts, {} bytes)",
            args.output_file.display(),
            data.scorecards.len(),
            data.history.len(),
            data.alerts.len(),
            page.len()
        );
    }
    Ok(())
}

/// Writes the page to the file, or to stdout for `-`.
fn write(path: &PathBuf, page: &str) -> Result<(), ReportError> {
    if path.as_os_str() == "-" {
        print!("{page}");
        return Ok(());
    }
    std::fs::write(path, page)
        .map_err(|e| ReportError::Usage(format!("cannot write {}: {e}", path.display())))
}

/// The two clients a report reads from.
struct Clients {
    scoring: ScoringClient,
    ingestion: IngestionClient,
    parent: String,
}

impl ReportData {
    /// Reads everything the page shows.
    pub async fn gather(
        scoring: ScoringClient,
        ingestion: IngestionClient,
        args: &ReportArgs,
    ) -> Result<ReportData, ReportError> {
        let mut c = Clients {
            scoring,
            ingestion,
            parent: format!("tenants/{}", args.tenant),
        };
        let team_name = c.team_name(&args.team).await?;
        let scorecards = c.scorecards(&args.team, args.period).await?;
        let resolved = scorecards
            .first()
            .and_then(|card| card.period.clone())
            .ok_or_else(|| {
                ReportError::Usage(format!(
                    "team {} of tenant {} has no agents scored in {}: nothing to report",
                    args.team, args.tenant, args.period
                ))
            })?;
        let history = c.history(&args.team, args, &scorecards).await?;
        let alerts = c.alerts(&args.team, args.period).await?;
        let formulas = c.formulas(&scorecards, args.period).await?;
        let data_version = c.data_version().await?;
        let quality_window = quality_window(&resolved, data_version.watermark.as_ref());
        let quality = c.quality(&quality_window).await?;
        Ok(ReportData {
            tenant: args.tenant.clone(),
            team: args.team.clone(),
            team_name,
            period: args.period,
            resolved,
            scorecards,
            history,
            alerts,
            formulas,
            data_version,
            quality,
            quality_window,
        })
    }
}

/// Data quality is counted by ingestion time: the window starts with the
/// period and ends after the last ingestion (rounded up to the hour, the
/// audit's granularity), so late and back-filled events of the period count.
fn quality_window(
    period: &cpb::ResolvedPeriod,
    watermark: Option<&prost_types::Timestamp>,
) -> (prost_types::Timestamp, prost_types::Timestamp) {
    const HOUR: i64 = 3_600;
    let start = period.start_time.unwrap_or_default();
    let period_end = period.end_time.unwrap_or_default().seconds;
    let after_watermark = watermark.map_or(0, |w| (w.seconds.div_euclid(HOUR) + 1) * HOUR);
    let end = prost_types::Timestamp {
        seconds: period_end.max(after_watermark).max(start.seconds + 1),
        nanos: 0,
    };
    (start, end)
}

/// Whether a scorecard had data: at least one indicator counted something.
/// (A rate per day scores 0 on an empty period; that is no data, not a 0.)
fn has_data(card: &pb::Scorecard) -> bool {
    card.indicators.iter().any(|i| i.sample_size > 0)
}

/// The agent id of a scorecard.
pub fn agent_id(card: &pb::Scorecard) -> &str {
    card.subject.as_ref().map_or("", |s| s.id.as_str())
}

impl Clients {
    async fn team_name(&mut self, team: &str) -> Result<String, ReportError> {
        let mut page_token = String::new();
        loop {
            let page = self
                .ingestion
                .list_teams(ing::ListTeamsRequest {
                    parent: self.parent.clone(),
                    page_size: 1_000,
                    page_token,
                })
                .await
                .map_err(|s| ReportError::from_status("ListTeams", &s))?
                .into_inner();
            if let Some(found) = page.teams.iter().find(|t| t.team_id == team) {
                let name = found.display_name.trim();
                return Ok(if name.is_empty() { team } else { name }.to_owned());
            }
            if page.next_page_token.is_empty() {
                // scoring says whether the team exists; the id will do.
                return Ok(team.to_owned());
            }
            page_token = page.next_page_token;
        }
    }

    /// The team's scorecards for one period, all pages, by rank then id.
    async fn scorecards(
        &mut self,
        team: &str,
        period: PeriodArg,
    ) -> Result<Vec<pb::Scorecard>, ReportError> {
        let mut cards = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = self
                .scoring
                .list_scorecards(pb::ListScorecardsRequest {
                    parent: self.parent.clone(),
                    team_id: team.into(),
                    period: Some(period.to_proto()),
                    page_size: 500,
                    page_token,
                    ..Default::default()
                })
                .await
                .map_err(|s| {
                    ReportError::from_status(
                        &format!("ListScorecards of team {team} in {period}"),
                        &s,
                    )
                })?
                .into_inner();
            cards.extend(page.scorecards);
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        let position = |c: &pb::Scorecard| c.rank_in_team.as_ref().map_or(i32::MAX, |r| r.position);
        cards.sort_by(|a, b| (position(a), agent_id(a)).cmp(&(position(b), agent_id(b))));
        Ok(cards)
    }

    /// Each trend period's totals, oldest first; the reported period's
    /// come from the scorecards already read.
    async fn history(
        &mut self,
        team: &str,
        args: &ReportArgs,
        current: &[pb::Scorecard],
    ) -> Result<Vec<PeriodTotals>, ReportError> {
        let periods = args.period.trailing(args.periods as usize);
        let mut history = Vec::with_capacity(periods.len());
        for period in periods {
            let cards = if period == args.period {
                current.to_vec()
            } else {
                self.scorecards(team, period).await?
            };
            history.push(PeriodTotals {
                label: period.to_string(),
                totals: cards
                    .iter()
                    .filter(|c| has_data(c))
                    .map(|c| (agent_id(c).to_owned(), c.total))
                    .collect(),
            });
        }
        Ok(history)
    }

    /// The alerts of the period for the team (all pages).
    async fn alerts(
        &mut self,
        team: &str,
        period: PeriodArg,
    ) -> Result<Vec<pb::Alert>, ReportError> {
        let mut alerts = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = self
                .scoring
                .list_alerts(pb::ListAlertsRequest {
                    parent: self.parent.clone(),
                    period: Some(period.to_proto()),
                    team_id: team.into(),
                    page_size: 500,
                    page_token,
                    ..Default::default()
                })
                .await
                .map_err(|s| ReportError::from_status(&format!("ListAlerts of team {team}"), &s))?
                .into_inner();
            alerts.extend(page.alerts);
            if page.next_page_token.is_empty() {
                return Ok(alerts);
            }
            page_token = page.next_page_token;
        }
    }

    /// The formula in words of every indicator: one ExplainScorecard per
    /// template in use (the formulas are the template's, not the agent's).
    async fn formulas(
        &mut self,
        cards: &[pb::Scorecard],
        period: PeriodArg,
    ) -> Result<BTreeMap<String, String>, ReportError> {
        let mut by_template: BTreeMap<String, &str> = BTreeMap::new();
        for card in cards {
            let template = card.provenance.as_ref().map_or("", |p| p.template.as_str());
            by_template
                .entry(template.to_owned())
                .or_insert(agent_id(card));
        }
        let mut formulas = BTreeMap::new();
        for (template, agent) in by_template {
            let explained = self
                .scoring
                .explain_scorecard(pb::ExplainScorecardRequest {
                    parent: self.parent.clone(),
                    subject: Some(cpb::Subject {
                        kind: cpb::SubjectKind::Agent as i32,
                        id: agent.into(),
                    }),
                    period: Some(period.to_proto()),
                    template,
                    facts_per_indicator: 1,
                })
                .await
                .map_err(|s| {
                    ReportError::from_status(&format!("ExplainScorecard of agent {agent}"), &s)
                })?
                .into_inner();
            for e in explained.explanations {
                formulas.entry(e.indicator).or_insert(e.formula);
            }
        }
        Ok(formulas)
    }

    async fn data_version(&mut self) -> Result<ing::GetDataVersionResponse, ReportError> {
        Ok(self
            .ingestion
            .get_data_version(ing::GetDataVersionRequest {
                parent: self.parent.clone(),
            })
            .await
            .map_err(|s| ReportError::from_status("GetDataVersion", &s))?
            .into_inner())
    }

    async fn quality(
        &mut self,
        (start, end): &(prost_types::Timestamp, prost_types::Timestamp),
    ) -> Result<ing::GetDataQualityResponse, ReportError> {
        Ok(self
            .ingestion
            .get_data_quality(ing::GetDataQualityRequest {
                parent: self.parent.clone(),
                start_time: Some(*start),
                end_time: Some(*end),
            })
            .await
            .map_err(|s| ReportError::from_status("GetDataQuality", &s))?
            .into_inner())
    }
}
