//! The operator commands' arguments (clap derive), kept beside the commands
//! so the shared [`crate::cli`] only names them.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Subcommand, ValueEnum};

/// `kpictl catalog …`.
#[derive(Debug, Clone, Subcommand)]
pub enum CatalogCommand {
    /// Applies a catalog document (YAML or JSON) to a tenant: creates what
    /// is new, updates drafts, leaves what is unchanged alone (ImportCatalog).
    /// Everything is validated before anything is written.
    Apply(ApplyArgs),
    /// Writes a tenant's whole catalog, every version, as YAML or JSON
    /// (ExportCatalog).
    Export(ExportArgs),
    /// Installs the starter indicator library and templates for a tenant
    /// (InstallStarterKit); installing twice changes nothing.
    InstallStarter(InstallStarterArgs),
}

/// The tenant every operator command works on.
#[derive(Debug, Clone, Args)]
pub struct TenantArg {
    /// The tenant, e.g. `acme`.
    #[arg(long, env = "KPI_TENANT")]
    pub tenant: String,
}

/// Arguments of `kpictl catalog apply`.
#[derive(Debug, Clone, Args)]
pub struct ApplyArgs {
    /// The tenant.
    #[command(flatten)]
    pub tenant: TenantArg,
    /// The catalog document (`api_version: kpi.catalog/v1`), as `catalog
    /// export` writes it.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,
    /// Validate and print what would change; write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// A catalog document's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DocumentFormat {
    /// YAML.
    Yaml,
    /// JSON.
    Json,
}

/// Arguments of `kpictl catalog export`.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// The tenant.
    #[command(flatten)]
    pub tenant: TenantArg,
    /// Write the document to this file instead of stdout.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// The document's format.
    #[arg(long, value_enum, default_value_t = DocumentFormat::Yaml)]
    pub format: DocumentFormat,
}

/// Arguments of `kpictl catalog install-starter`.
#[derive(Debug, Clone, Args)]
pub struct InstallStarterArgs {
    /// The tenant.
    #[command(flatten)]
    pub tenant: TenantArg,
    /// The time zone of the tenant's default calendar, if it has none yet.
    #[arg(long, default_value = "UTC", value_name = "IANA_ZONE")]
    pub time_zone: String,
}

/// `kpictl scorecard …`.
#[derive(Debug, Clone, Subcommand)]
pub enum ScorecardCommand {
    /// One scorecard of an agent or a team (GetScorecard).
    Get(GetArgs),
    /// The leaderboard of a team or the tenant (ListScorecards).
    List(ListArgs),
    /// One agent's scorecard with the formula and facts behind every
    /// indicator (ExplainScorecard).
    Explain(ExplainArgs),
}

/// A period as people type it.
#[derive(Debug, Clone, Args)]
pub struct PeriodArg {
    /// The period: a day `2026-10-14`, an ISO week `2026-W41`, a month
    /// `2026-10`, a quarter `2026-Q4` or days `2026-10-01..2026-10-15`
    /// (both included).
    #[arg(long, value_name = "PERIOD")]
    pub period: String,
}

/// Arguments of `kpictl scorecard get`.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("subject").required(true).args(["agent", "team"])))]
pub struct GetArgs {
    /// The tenant.
    #[command(flatten)]
    pub tenant: TenantArg,
    /// The agent.
    #[arg(long, value_name = "AGENT_ID")]
    pub agent: Option<String>,
    /// The team.
    #[arg(long, value_name = "TEAM_ID")]
    pub team: Option<String>,
    /// The period.
    #[command(flatten)]
    pub period: PeriodArg,
    /// Score by this template instead of the one that applies.
    #[arg(long, value_name = "KEY")]
    pub template: Option<String>,
}

/// Arguments of `kpictl scorecard list`.
#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// The tenant.
    #[command(flatten)]
    pub tenant: TenantArg,
    /// Only this team's agents (else every agent of the tenant).
    #[arg(long, value_name = "TEAM_ID")]
    pub team: Option<String>,
    /// The period.
    #[command(flatten)]
    pub period: PeriodArg,
    /// Only agents scored by this template.
    #[arg(long, value_name = "KEY")]
    pub template: Option<String>,
    /// How many rows, best first (1–500).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i32).range(1..=500))]
    pub page_size: i32,
    /// The next page, as the previous one's `next_page_token` says.
    #[arg(long, value_name = "TOKEN")]
    pub page_token: Option<String>,
}

/// Arguments of `kpictl scorecard explain`.
#[derive(Debug, Clone, Args)]
pub struct ExplainArgs {
    /// The tenant.
    #[command(flatten)]
    pub tenant: TenantArg,
    /// The agent.
    #[arg(long, value_name = "AGENT_ID")]
    pub agent: String,
    /// The period.
    #[command(flatten)]
    pub period: PeriodArg,
    /// Score by this template instead of the one that applies.
    #[arg(long, value_name = "KEY")]
    pub template: Option<String>,
}

/// `kpictl alerts …`.
#[derive(Debug, Clone, Subcommand)]
pub enum AlertsCommand {
    /// The alerts that fired in a period (ListAlerts), all pages.
    List(AlertsArgs),
}

/// Arguments of `kpictl alerts list`.
#[derive(Debug, Clone, Args)]
pub struct AlertsArgs {
    /// The tenant.
    #[command(flatten)]
    pub tenant: TenantArg,
    /// Only this team's agents (and the team).
    #[arg(long, value_name = "TEAM_ID")]
    pub team: Option<String>,
    /// Only this agent.
    #[arg(long, value_name = "AGENT_ID")]
    pub agent: Option<String>,
    /// The period.
    #[command(flatten)]
    pub period: PeriodArg,
}

/// Arguments of `kpictl simulate`.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("draft").required(true).args(["version", "file"])))]
pub struct SimulateArgs {
    /// The tenant.
    #[command(flatten)]
    pub tenant: TenantArg,
    /// The template key.
    #[arg(long, value_name = "KEY")]
    pub template: String,
    /// The version to simulate, e.g. a draft.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    pub version: Option<i32>,
    /// A template definition to simulate, as `catalog export` writes one
    /// under `templates[].versions[].definition`; it is saved as the
    /// template's draft first.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The past period to score.
    #[command(flatten)]
    pub period: PeriodArg,
    /// Only this team's agents.
    #[arg(long, value_name = "TEAM_ID")]
    pub team: Option<String>,
}

/// The long help of `kpictl simulate`.
pub const SIMULATE_ABOUT: &str = "\
Scores a past period with a template version (typically a draft) and
compares it, agent by agent, with the version active then
(SimulateTemplate): each agent's active and simulated totals and grades and
the change, largest change first, and the mean change.

With --file, the definition in the file (YAML or JSON, the shape `catalog
export` writes under templates[].versions[].definition) is saved first as the
template's draft: it replaces the latest version if that is a draft, else it
becomes a new draft version. Nothing is activated; the draft's version is
printed. Errors in the file are reported with their field path.

Exit codes:
  0  done
  2  usage errors, or a service refused a request (unknown tenant, template
     or version, an invalid draft)
  3  a service cannot be reached or failed";
