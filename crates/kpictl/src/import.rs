//! `kpictl import`: events from files into data-ingestion over one
//! `StreamEvents` stream.
//!
//! Three parts run at once, joined by bounded channels, so memory stays
//! bounded whatever the size of the files:
//!
//! 1. a reader (a blocking thread) reads the files as a stream
//!    ([`crate::formats`]), converts events to protos and cuts them into
//!    chunks, each remembering where its events came from (file:line);
//! 2. a sender puts each chunk on the stream once one of [`IN_FLIGHT`]
//!    permits is free;
//! 3. the collector (this task) reads the answers, in order, maps each
//!    rejection back to file:line, and frees a permit per answer.
//!
//! [`import`] is the library entry point (used by tests); [`run`] adds the
//! printing and the exit code.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kpi_proto::events::event_to_proto;
use kpi_proto::ingestion as pb;
use kpi_proto::ingestion::ingestion_service_client::IngestionServiceClient;
use kpi_runtime::auth::BearerToken;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Endpoint;

use crate::auth::{AuthChannel, authorized};
use tonic::{Code, Status};

use crate::cli::{Cli, ImportArgs, Output};
use crate::formats::{self, Format, Record, Records};
use crate::progress::Progress;
use crate::summary::{LISTED, Rejection, Summary, Unreadable};
use crate::{ExitCode, error_chain};

/// How many chunks may be on the stream, unanswered, at once.
pub const IN_FLIGHT: usize = 8;

/// How long connecting to data-ingestion may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What to import, and where to.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// data-ingestion's URL, e.g. `http://127.0.0.1:50052`.
    pub url: String,
    /// The tenant, e.g. `acme`.
    pub tenant: String,
    /// The files, in order.
    pub files: Vec<PathBuf>,
    /// Their format; `None` decides per file by extension.
    pub format: Option<Format>,
    /// Events per chunk (1–5000).
    pub chunk: usize,
    /// The bearer token sent with the stream (`--token`).
    pub token: Option<BearerToken>,
}

impl ImportOptions {
    /// The options of `kpictl import` as parsed from the command line.
    pub fn from_cli(cli: &Cli, args: &ImportArgs) -> ImportOptions {
        ImportOptions {
            url: cli.ingestion_url.clone(),
            tenant: args.tenant.clone(),
            files: args.files.clone(),
            format: args.format,
            chunk: args.chunk as usize,
            token: cli.token.clone(),
        }
    }
}

/// Why an import could not be carried out (as opposed to events being
/// rejected, which the [`Summary`] reports).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Bad arguments: nothing was sent.
    #[error("{0}")]
    Usage(String),
    /// A file could not be opened or read.
    #[error("{0}")]
    File(String),
    /// data-ingestion could not be reached.
    #[error("cannot reach data-ingestion at {url}: {reason}")]
    Unreachable {
        /// The URL tried.
        url: String,
        /// Why, from the transport.
        reason: String,
    },
    /// data-ingestion refused the request as a whole (e.g. a bad tenant).
    #[error("data-ingestion refused the import: {0}")]
    Refused(String),
    /// data-ingestion failed, or the stream broke, during the import.
    #[error("data-ingestion at {url} failed during the import: {reason}")]
    Service {
        /// The URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

impl ImportError {
    /// The exit code scripts see: 2 for usage and file errors and refusals,
    /// 3 when the service cannot be reached or fails.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            ImportError::Usage(_) | ImportError::File(_) | ImportError::Refused(_) => {
                ExitCode::Usage
            }
            ImportError::Unreachable { .. } | ImportError::Service { .. } => ExitCode::Unreachable,
        }
    }
}

/// Runs `kpictl import`: imports, prints the summary (or the error) as asked,
/// and returns the exit code.
pub async fn run(cli: &Cli, args: &ImportArgs) -> ExitCode {
    let options = ImportOptions::from_cli(cli, args);
    let progress = Progress::new(cli.output == Output::Text);
    let result = import(&options, &progress).await;
    progress.finish();
    match result {
        Ok(summary) => {
            match cli.output {
                Output::Text => print!("{}", summary.to_text()),
                Output::Json => println!("{}", summary.to_json()),
            }
            summary.exit_code()
        }
        Err(error) => {
            let code = error.exit_code();
            eprintln!("kpictl: {error}");
            if cli.output == Output::Json {
                println!(
                    "{}",
                    serde_json::json!({"error": error.to_string(), "exit_code": code.code()})
                );
            }
            code
        }
    }
}

/// Where one event of a chunk came from.
#[derive(Debug)]
struct Origin {
    file: usize,
    line: u64,
    event_id: String,
}

/// What the reader hands the sender.
#[derive(Debug)]
enum Read {
    /// Events (possibly none) and the unreadable lines met while reading them.
    Chunk {
        events: Vec<pb::Event>,
        origins: Vec<Origin>,
        unreadable: Vec<(usize, u64, String)>,
    },
    /// A file could not be read further; the import stops.
    Failed(String),
}

/// A chunk on the stream, awaiting its answer.
#[derive(Debug)]
struct Pending {
    sequence: i64,
    origins: Vec<Origin>,
    _permit: OwnedSemaphorePermit,
}

/// What the sender reports when done.
#[derive(Debug, Default)]
struct Sent {
    unreadable: u64,
    unreadable_lines: Vec<Unreadable>,
    failed: Option<String>,
}

/// Imports the files of `options`, drawing on `progress`, and returns what
/// became of every event. Files are opened (and CSV headers checked) before
/// anything is sent.
pub async fn import(options: &ImportOptions, progress: &Progress) -> Result<Summary, ImportError> {
    let started = Instant::now();
    if !(1..=5000).contains(&options.chunk) {
        return Err(ImportError::Usage(format!(
            "--chunk must be 1 to 5000, got {}",
            options.chunk
        )));
    }
    if options.tenant.trim().is_empty() {
        return Err(ImportError::Usage("--tenant must not be empty".to_owned()));
    }
    let names: Vec<String> = options
        .files
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let sources = open_all(options)?;
    let mut client = connect(&options.url, options.token.clone()).await?;

    let (read_tx, mut read_rx) = mpsc::channel::<Read>(2);
    let chunk = options.chunk;
    let reader = tokio::task::spawn_blocking(move || read_all(sources, chunk, &read_tx));

    let (request_tx, request_rx) = mpsc::channel::<pb::StreamEventsRequest>(IN_FLIGHT);
    let (pending_tx, mut pending_rx) = mpsc::unbounded_channel::<Pending>();
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    let parent = format!("tenants/{}", options.tenant);
    let names_for_sender = names.clone();
    let sender_progress = progress.clone();
    let sender = tokio::spawn(async move {
        let mut sent = Sent::default();
        let mut sequence = 0i64;
        let mut events_sent = 0u64;
        while let Some(read) = read_rx.recv().await {
            let (events, origins, unreadable) = match read {
                Read::Chunk {
                    events,
                    origins,
                    unreadable,
                } => (events, origins, unreadable),
                Read::Failed(reason) => {
                    sent.failed = Some(reason);
                    break;
                }
            };
            for (file, line, reason) in unreadable {
                sent.unreadable += 1;
                if sent.unreadable_lines.len() < LISTED {
                    sent.unreadable_lines.push(Unreadable {
                        file: names_for_sender.get(file).cloned().unwrap_or_default(),
                        line,
                        reason,
                    });
                }
            }
            if events.is_empty() {
                continue;
            }
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            sequence += 1;
            let n = events.len() as u64;
            let request = pb::StreamEventsRequest {
                parent: if sequence == 1 {
                    parent.clone()
                } else {
                    String::new()
                },
                sequence,
                events,
            };
            if pending_tx
                .send(Pending {
                    sequence,
                    origins,
                    _permit: permit,
                })
                .is_err()
                || request_tx.send(request).await.is_err()
            {
                // The stream is gone; the collector reports why.
                break;
            }
            events_sent += n;
            sender_progress.sent(events_sent);
        }
        sent
    });

    let answers = client
        .stream_events(ReceiverStream::new(request_rx))
        .await
        .map_err(|s| status_error(&options.url, &s));
    let mut summary = Summary {
        files: names.clone(),
        ..Summary::default()
    };
    let collected = match answers {
        Ok(answers) => {
            collect(
                answers.into_inner(),
                &mut pending_rx,
                &names,
                &mut summary,
                progress,
                &options.url,
            )
            .await
        }
        Err(e) => Err(e),
    };
    if let Err(e) = collected {
        sender.abort();
        reader.abort();
        return Err(e);
    }
    let sent = sender.await.map_err(|e| ImportError::Service {
        url: options.url.clone(),
        reason: format!("the sender stopped: {e}"),
    })?;
    let _ = reader.await;
    summary.unreadable = sent.unreadable;
    summary.unreadable_lines = sent.unreadable_lines;
    let elapsed = started.elapsed().as_secs_f64();
    summary.elapsed_seconds = elapsed;
    let answered = summary.accepted + summary.duplicates + summary.rejected;
    summary.events_per_second = if elapsed > 0.0 {
        answered as f64 / elapsed
    } else {
        0.0
    };
    if let Some(reason) = sent.failed {
        return Err(ImportError::File(format!(
            "{reason}; the import stopped after {} events ({} accepted, {} duplicates, {} rejected)",
            summary.sent, summary.accepted, summary.duplicates, summary.rejected
        )));
    }
    Ok(summary)
}

/// Opens every file, deciding its format, before anything is sent.
fn open_all(options: &ImportOptions) -> Result<Vec<Records>, ImportError> {
    options
        .files
        .iter()
        .map(|path| {
            let format = options
                .format
                .or_else(|| Format::from_extension(path))
                .ok_or_else(|| {
                    ImportError::Usage(format!(
                        "{}: cannot tell the format from the extension (.csv, .jsonl or .ndjson); give --format csv|jsonl",
                        path.display()
                    ))
                })?;
            formats::open(path, format).map_err(ImportError::File)
        })
        .collect()
}

/// Connects to data-ingestion, or says clearly why not.
async fn connect(
    url: &str,
    token: Option<BearerToken>,
) -> Result<IngestionServiceClient<AuthChannel>, ImportError> {
    let endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|e| {
            ImportError::Usage(format!(
                "invalid --ingestion-url `{url}`: {}",
                error_chain(&e)
            ))
        })?
        .connect_timeout(CONNECT_TIMEOUT);
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| ImportError::Unreachable {
            url: url.to_owned(),
            reason: error_chain(&e),
        })?;
    Ok(IngestionServiceClient::new(authorized(channel, token)))
}

/// Maps a failed call or stream to an error naming the service.
fn status_error(url: &str, status: &Status) -> ImportError {
    let mut reason = status.message().to_owned();
    if let Some(source) = std::error::Error::source(status) {
        let chain = error_chain(source);
        if !chain.is_empty() && !reason.contains(&chain) {
            reason = if reason.is_empty() {
                chain
            } else {
                format!("{reason}: {chain}")
            };
        }
    }
    if reason.is_empty() {
        reason = format!("{:?}", status.code());
    }
    match status.code() {
        Code::InvalidArgument | Code::NotFound | Code::PermissionDenied | Code::Unauthenticated => {
            ImportError::Refused(reason)
        }
        Code::Unavailable => ImportError::Unreachable {
            url: url.to_owned(),
            reason,
        },
        _ => ImportError::Service {
            url: url.to_owned(),
            reason,
        },
    }
}

/// Reads every file, in order, into chunks for the sender. Runs on a
/// blocking thread; stops early when the sender is gone.
fn read_all(sources: Vec<Records>, chunk: usize, out: &mpsc::Sender<Read>) {
    let mut events = Vec::with_capacity(chunk);
    let mut origins = Vec::with_capacity(chunk);
    let mut unreadable = Vec::new();
    for (file, records) in sources.into_iter().enumerate() {
        for record in records {
            match record {
                Ok(Record::Event { line, event }) => {
                    origins.push(Origin {
                        file,
                        line,
                        event_id: event.event_id.clone(),
                    });
                    events.push(event_to_proto(&event));
                }
                Ok(Record::Unreadable { line, reason }) => unreadable.push((file, line, reason)),
                Err(e) => {
                    let _ = out.blocking_send(Read::Chunk {
                        events: std::mem::take(&mut events),
                        origins: std::mem::take(&mut origins),
                        unreadable: std::mem::take(&mut unreadable),
                    });
                    let _ = out.blocking_send(Read::Failed(format!(
                        "cannot read file #{}: {e}",
                        file + 1
                    )));
                    return;
                }
            }
            if events.len() >= chunk || unreadable.len() >= chunk {
                let full = Read::Chunk {
                    events: std::mem::replace(&mut events, Vec::with_capacity(chunk)),
                    origins: std::mem::replace(&mut origins, Vec::with_capacity(chunk)),
                    unreadable: std::mem::take(&mut unreadable),
                };
                if out.blocking_send(full).is_err() {
                    return;
                }
            }
        }
    }
    let _ = out.blocking_send(Read::Chunk {
        events,
        origins,
        unreadable,
    });
}

/// Reads the answers, in order, into `summary`.
async fn collect(
    mut answers: tonic::Streaming<pb::StreamEventsResponse>,
    pending: &mut mpsc::UnboundedReceiver<Pending>,
    names: &[String],
    summary: &mut Summary,
    progress: &Progress,
    url: &str,
) -> Result<(), ImportError> {
    let mut waiting: VecDeque<Pending> = VecDeque::new();
    loop {
        let answer = match answers.message().await {
            Ok(Some(answer)) => answer,
            Ok(None) => break,
            Err(status) => return Err(status_error(url, &status)),
        };
        while let Ok(p) = pending.try_recv() {
            waiting.push_back(p);
        }
        let Some(chunk) = waiting.pop_front() else {
            return Err(ImportError::Service {
                url: url.to_owned(),
                reason: format!("an answer to chunk {} that was never sent", answer.sequence),
            });
        };
        if chunk.sequence != answer.sequence {
            return Err(ImportError::Service {
                url: url.to_owned(),
                reason: format!(
                    "answered chunk {} where chunk {} was expected",
                    answer.sequence, chunk.sequence
                ),
            });
        }
        tally(&answer, &chunk.origins, names, summary);
        summary.sent += chunk.origins.len() as u64;
        progress.acknowledged(summary.accepted + summary.duplicates + summary.rejected);
    }
    while let Ok(p) = pending.try_recv() {
        waiting.push_back(p);
    }
    if let Some(chunk) = waiting.front() {
        return Err(ImportError::Service {
            url: url.to_owned(),
            reason: format!(
                "the stream ended before chunk {} ({} chunks) was answered",
                chunk.sequence,
                waiting.len()
            ),
        });
    }
    Ok(())
}

/// Counts one answer's results and lists the first rejections with their origin.
fn tally(
    answer: &pb::StreamEventsResponse,
    origins: &[Origin],
    names: &[String],
    summary: &mut Summary,
) {
    for result in &answer.results {
        match pb::EventOutcome::try_from(result.outcome) {
            Ok(pb::EventOutcome::Accepted) => summary.accepted += 1,
            Ok(pb::EventOutcome::Duplicate) => summary.duplicates += 1,
            _ => {
                summary.rejected += 1;
                let reason = if result.reason.is_empty() {
                    "unknown".to_owned()
                } else {
                    result.reason.clone()
                };
                *summary
                    .rejected_by_reason
                    .entry(reason.clone())
                    .or_default() += 1;
                if summary.rejections.len() < LISTED {
                    let origin = usize::try_from(result.index)
                        .ok()
                        .and_then(|i| origins.get(i));
                    summary.rejections.push(Rejection {
                        file: origin
                            .and_then(|o| names.get(o.file))
                            .cloned()
                            .unwrap_or_else(|| "?".to_owned()),
                        line: origin.map_or(0, |o| o.line),
                        event_id: if result.event_id.is_empty() {
                            origin.map(|o| o.event_id.clone()).unwrap_or_default()
                        } else {
                            result.event_id.clone()
                        },
                        reason,
                        field: field_in_event(&result.field),
                        description: result.description.clone(),
                    });
                }
            }
        }
    }
}

/// The field path inside the event: `events[3].survey.score` → `survey.score`
/// (the chunk position means nothing to the file's author).
fn field_in_event(field: &str) -> String {
    field
        .strip_prefix("events[")
        .and_then(|rest| rest.split_once("]"))
        .map(|(_, rest)| rest.strip_prefix('.').unwrap_or(rest).to_owned())
        .unwrap_or_else(|| field.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_paths_lose_the_chunk_position() {
        assert_eq!(field_in_event("events[3].survey.score"), "survey.score");
        assert_eq!(field_in_event("events[12]"), "");
        assert_eq!(field_in_event("parent"), "parent");
    }
}
