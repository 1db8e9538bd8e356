//! The command line, as clap derive types: global options ([`Cli`]) and one
//! variant of [`Command`] per sub-command, each with its own arguments struct
//! ([`ImportArgs`]). Parsing only; the work lives in the command modules.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::formats::Format;

/// Where data-ingestion listens unless told otherwise.
pub const DEFAULT_INGESTION_URL: &str = "http://127.0.0.1:50052";

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
    /// How results are printed: readable text, or one JSON object on stdout.
    #[arg(long, value_enum, default_value_t = Output::Text, global = true)]
    pub output: Output,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
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
}

/// Arguments of `kpictl import`.
#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// The tenant the events belong to, e.g. `acme`.
    #[arg(long)]
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
