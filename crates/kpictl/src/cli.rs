//! The command line, as clap derive types: global options ([`Cli`]) and one
//! variant of [`Command`] per sub-command, each with its own arguments struct
//! ([`ImportArgs`]). Parsing only; the work lives in the command modules.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use kpi_runtime::auth::BearerToken;

use crate::formats::Format;
use crate::stack::StackOptions;
use crate::tls::TlsArgs;

/// Where data-ingestion listens unless told otherwise.
pub const DEFAULT_INGESTION_URL: &str = "http://127.0.0.1:50052";
/// Where indicator-catalog listens unless told otherwise.
pub const DEFAULT_CATALOG_URL: &str = "http://127.0.0.1:50051";
/// Where scoring listens unless told otherwise.
pub const DEFAULT_SCORING_URL: &str = "http://127.0.0.1:50053";

/// The operator CLI of the KPI scorecard suite.
#[derive(Debug, Clone, Parser)]
#[command(name = "kpictl", version)]
pub struct Cli {
    /// Where data-ingestion listens.
    #[arg(
        long,
        env = "KPI_INGESTION_URL",
        default_value = DEFAULT_INGESTION_URL,
        global = true,
        value_name = "URL"
    )]
    pub ingestion_url: String,
    /// Where indicator-catalog listens.
    #[arg(
        long,
        env = "KPI_CATALOG_URL",
        default_value = DEFAULT_CATALOG_URL,
        global = true,
        value_name = "URL"
    )]
    pub catalog_url: String,
    /// Where scoring listens.
    #[arg(
        long,
        env = "KPI_SCORING_URL",
        default_value = DEFAULT_SCORING_URL,
        global = true,
        value_name = "URL"
    )]
    pub scoring_url: String,
    /// The deadline of each request of the operator commands, in seconds
    /// (imports and demo streams have none).
    #[arg(
        long,
        default_value_t = 60,
        global = true,
        value_name = "SECS",
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub timeout: u64,
    /// The bearer token sent on every call (`authorization: Bearer …`);
    /// `kpictl up` prints where its generated token is.
    #[arg(
        long,
        env = "KPI_TOKEN",
        hide_env_values = true,
        global = true,
        value_name = "TOKEN",
        value_parser = parse_token
    )]
    pub token: Option<BearerToken>,
    /// How results are printed: readable text, or one JSON object on stdout.
    #[arg(long, value_enum, default_value_t = Output::Text, global = true)]
    pub output: Output,
    /// TLS for https:// URLs.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

fn parse_token(token: &str) -> Result<BearerToken, String> {
    BearerToken::new(token).map_err(|expected| format!("expected {expected}"))
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Readable text (and a progress bar on a terminal).
    Text,
    /// One JSON object on stdout, no progress bar.
    Json,
}

/// The sub-commands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Streams events from JSON Lines or CSV files into data-ingestion.
    #[command(long_about = IMPORT_ABOUT, after_long_help = IMPORT_FORMATS)]
    Import(ImportArgs),
    /// Runs indicator-catalog, data-ingestion and scoring in this process
    /// until Ctrl-C (SIGINT) or SIGTERM.
    #[command(long_about = UP_ABOUT)]
    Up(UpArgs),
    /// Starts the stack, fills tenant `demo` with a generated month and
    /// prints each team's leaderboard and one explained scorecard.
    #[command(long_about = DEMO_ABOUT)]
    Demo(DemoArgs),
    /// Applies, exports or installs a tenant's catalog (indicator-catalog).
    #[command(subcommand)]
    Catalog(crate::ops::cli::CatalogCommand),
    /// Reads scorecards: one, a leaderboard, or one explained (scoring).
    #[command(subcommand)]
    Scorecard(crate::ops::cli::ScorecardCommand),
    /// Lists the alerts that fired in a period (scoring).
    #[command(subcommand)]
    Alerts(crate::ops::cli::AlertsCommand),
    /// Scores a past period with a template version or a draft file and
    /// compares it, agent by agent, with the active version.
    #[command(long_about = crate::ops::cli::SIMULATE_ABOUT)]
    Simulate(crate::ops::cli::SimulateArgs),
    /// Writes a self-contained HTML report of a team for a period:
    /// leaderboard, indicators against targets, trends, alerts, data quality.
    #[command(long_about = crate::report::ABOUT)]
    Report(crate::report::ReportArgs),
    /// Prints the KPI_API_KEYS_FILE line for a token read from stdin (or a
    /// generated one, with --generate).
    HashKey(HashKeyArgs),
}

/// Arguments of `kpictl hash-key`.
#[derive(Debug, Clone, Args)]
pub struct HashKeyArgs {
    /// The key's id, shown in logs (e.g. `acme-reader`).
    #[arg(long)]
    pub key_id: String,
    /// The tenant the key is bound to, or `*` (admin and service keys only).
    #[arg(long)]
    pub tenant: String,
    /// reader, writer, admin or service.
    #[arg(long)]
    pub role: String,
    /// Make a random token (printed on stderr) instead of reading one from
    /// stdin.
    #[arg(long)]
    pub generate: bool,
}

/// Where the in-process stack listens and what it stores data in.
#[derive(Debug, Clone, Args)]
pub struct StackArgs {
    /// indicator-catalog's listen address (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:50051", value_name = "ADDR")]
    pub catalog_addr: SocketAddr,
    /// data-ingestion's listen address.
    #[arg(long, default_value = "127.0.0.1:50052", value_name = "ADDR")]
    pub ingestion_addr: SocketAddr,
    /// scoring's listen address.
    #[arg(long, default_value = "127.0.0.1:50053", value_name = "ADDR")]
    pub scoring_addr: SocketAddr,
    /// The directory of the SQLite files (catalog.db, ingestion.db), unless
    /// KPI_DATABASE_URL is set.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// A PostgreSQL URL for both services' tables instead of SQLite files.
    #[arg(
        long,
        env = "KPI_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: Option<String>,
    /// A Redis URL for scoring's cache instead of the in-process one.
    #[arg(
        long,
        env = "KPI_REDIS_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub redis_url: Option<String>,
}

/// Where `kpictl up` keeps its SQLite files unless `--data-dir` is given.
pub const DEFAULT_DATA_DIR: &str = "kpi-data";

impl StackArgs {
    /// The `--data-dir`, else `./kpi-data`.
    pub fn data_dir_or_default(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
    }

    /// The stack's options with this data directory and log filter. An
    /// empty URL (e.g. `KPI_REDIS_URL=`) means unset.
    pub fn options(&self, data_dir: PathBuf, log_filter: &str) -> StackOptions {
        let set = |url: &Option<String>| url.clone().filter(|u| !u.trim().is_empty());
        StackOptions {
            catalog_addr: self.catalog_addr,
            ingestion_addr: self.ingestion_addr,
            scoring_addr: self.scoring_addr,
            data_dir,
            database_url: set(&self.database_url),
            redis_url: set(&self.redis_url),
            log_filter: log_filter.into(),
        }
    }
}

/// Arguments of `kpictl up`.
#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// Where the services listen and what they store data in.
    #[command(flatten)]
    pub stack: StackArgs,
    /// The services' log filter (tracing `EnvFilter` syntax).
    #[arg(long, env = "KPI_LOG", default_value = "info", value_name = "FILTER")]
    pub log: String,
}

/// Arguments of `kpictl demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Where the in-process services listen and store data.
    #[command(flatten)]
    pub stack: StackArgs,
    /// The seed of the generated month: the same seed prints the same
    /// scorecards.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The agent whose scorecard is explained; by default the e-commerce
    /// leader.
    #[arg(long, value_name = "AGENT_ID")]
    pub agent: Option<String>,
    /// Use the running stack at --catalog-url, --ingestion-url and
    /// --scoring-url instead of starting one.
    #[arg(long)]
    pub use_running: bool,
}

const UP_ABOUT: &str = "\
Runs indicator-catalog (127.0.0.1:50051), data-ingestion (:50052) and scoring
(:50053) in this process, each with its usual gRPC API, health and reflection.

By default data is kept in SQLite files under ./kpi-data (--data-dir) and
scoring caches in memory; with KPI_DATABASE_URL (PostgreSQL) and KPI_REDIS_URL
set, the same stack runs on them. data-ingestion and scoring are wired to the
catalog and ingestion listeners of this process.

The stack never runs open: every RPC but health and reflection needs a
bearer token. The data directory gets `token` (a local admin token for every
tenant of this stack, kept across restarts) and `api-keys` (its hash), both
readable by the owner only; pass the token to other commands with --token or
KPI_TOKEN.

Ctrl-C (SIGINT) or SIGTERM drains in-flight calls and stops all three.

Exit codes:
  0  stopped cleanly after a signal
  2  usage errors
  3  the stack could not start (a port taken, a database unreachable) or a
     service failed";

const DEMO_ABOUT: &str = "\
Starts the three services in this process (as `kpictl up` does, on a fresh
temporary data directory unless --data-dir is given), installs the starter
kit for tenant `demo`, makes the e-commerce, finance and manufacturing
templates apply to the teams ecom, fin and aftersales, ingests a generated
month (October 2026: 200 agents, tickets, chat sessions, surveys, QA reviews,
bad reviews, field visits, assessments) and prints each team's leaderboard
with vetoes and alerts, then one agent's explained scorecard.

The month depends on --seed alone: the same seed prints the same scorecards.
--output json prints the same as one JSON object. With --use-running it uses
the running stack at --catalog-url, --ingestion-url and --scoring-url (or
KPI_CATALOG_URL, KPI_INGESTION_URL, KPI_SCORING_URL) instead; running it
there again with the same seed is safe (the catalog is kept and every event
comes back as a duplicate), while another seed adds a second month's worth
of activity to the same agents.

Exit codes:
  0  done
  1  some generated events were rejected
  2  usage errors, or a service refused a request
  3  a service cannot be reached or failed";

/// Arguments of `kpictl import`.
#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// The tenant the events belong to, e.g. `acme`.
    #[arg(long, env = "KPI_TENANT")]
    pub tenant: String,
    /// The files' format; by default each file's extension decides
    /// (.csv → csv, .jsonl/.ndjson → jsonl).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Events per chunk sent on the stream (1–5000).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=5000))]
    pub chunk: u32,
    /// The files to import, in order.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

const IMPORT_ABOUT: &str = "\
Streams events from JSON Lines or CSV files into data-ingestion.

All files go through one StreamEvents stream, in chunks of --chunk events,
with up to 8 chunks in flight. Files are read as a stream, so memory stays
bounded whatever their size. Every event is answered: accepted, duplicate
(its event_id was seen before; nothing changes, so importing a file again is
safe) or rejected (with a reason code and the offending field). A line that
cannot be read as an event is reported as unreadable with file:line and why,
and never stops the others.

At the end a summary gives the counts, rejections by reason, the first 20
rejections as `file:line event_id reason field description`, the first 20
unreadable lines, the elapsed time and the rate; --output json prints it as
one JSON object instead.

Exit codes:
  0  every event was accepted or a duplicate
  1  some events were rejected or some lines were unreadable
  2  usage or file errors (bad arguments, missing file, bad CSV header,
     the service refused the request, e.g. an invalid tenant)
  3  data-ingestion cannot be reached, or it failed during the import";

const IMPORT_FORMATS: &str = "\
FORMATS

JSON Lines (.jsonl, .ndjson): one event per line, in the domain's JSON shape;
blank lines are skipped:

  {\"event_id\":\"e1\",\"occurred_at\":\"2026-10-05T09:00:00Z\",\"payload\":{\"ticket\":
   {\"ticket_id\":\"T1\",\"type\":\"created\",\"channel\":\"chat\",\"category\":\"billing\",
    \"customer_id\":\"c1\"}}}

  payload is one of ticket, conversation, survey, qa_review, bad_review,
  field_visit, assessment, agent, team; enum values are snake_case
  (\"first_response\", \"csat\", \"major\"…), instants RFC 3339, dates YYYY-MM-DD.

CSV (.csv): a header row, then one event per row. Columns event_id,
occurred_at and kind are required; kind is the payload name. Any other column
is a payload field (ticket_id, type, agent_id, score, …), and a row's
non-empty cells become its kind's payload. A column may be qualified as
kind.field to apply to rows of that kind only: this is how the survey's and
the assessment's own `kind` field is given (survey.kind, assessment.kind).
Numbers and booleans are read by the field's type (an id `007` stays text);
QA `items` and `violations` are given as a JSON array in one cell:

  event_id,occurred_at,kind,ticket_id,type,agent_id,channel,customer_id,response_id,survey.kind,score,review_id,reviewer_id,items
  e1,2026-10-05T09:00:00Z,ticket,T1,created,,chat,c1,,,,,,
  e2,2026-10-05T09:05:00Z,ticket,T1,first_response,a1,,,,,,,,
  e3,2026-10-05T10:00:00Z,survey,T1,,a1,,,R1,csat,5,,,
  e4,2026-10-06T10:00:00Z,qa_review,T1,,a1,,,,,92,Q1,r1,\"[{\"\"key\"\":\"\"greeting\"\",\"\"group\"\":\"\"service\"\",\"\"passed\"\":true,\"\"score\"\":100}]\"

A column that is no field of any kind fails the whole file (exit code 2); a
non-empty cell in an unqualified column that is not a field of the row's kind
makes the row unreadable.";
