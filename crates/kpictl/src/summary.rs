//! What an import did: [`Summary`] (counts, rejections by reason, the first
//! rejections and unreadable lines), its exit code, and its two renderings
//! (readable text, or one JSON object).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::ExitCode;

/// How many rejections and unreadable lines are listed one by one.
pub const LISTED: usize = 20;

/// The outcome of one import.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// The files read, as given.
    pub files: Vec<String>,
    /// Events sent to data-ingestion.
    pub sent: u64,
    /// Events stored.
    pub accepted: u64,
    /// Events seen before (same event id): nothing changed.
    pub duplicates: u64,
    /// Events refused by data-ingestion.
    pub rejected: u64,
    /// Rejected events per reason code, e.g. `out_of_range`.
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// The first [`LISTED`] rejections.
    pub rejections: Vec<Rejection>,
    /// Lines or rows that could not be read as events.
    pub unreadable: u64,
    /// The first [`LISTED`] unreadable lines.
    pub unreadable_lines: Vec<Unreadable>,
    /// Wall time of the import, in seconds.
    pub elapsed_seconds: f64,
    /// Events answered per second.
    pub events_per_second: f64,
}

/// One rejected event, traced back to its file and line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rejection {
    /// The file, as given.
    pub file: String,
    /// The 1-based line.
    pub line: u64,
    /// The event id.
    pub event_id: String,
    /// The stable reason code, e.g. `out_of_range`.
    pub reason: String,
    /// The offending field inside the event, e.g. `survey.score`.
    pub field: String,
    /// Why, in words.
    pub description: String,
}

/// One line or row that is not an event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unreadable {
    /// The file, as given.
    pub file: String,
    /// The 1-based line.
    pub line: u64,
    /// Why it could not be read.
    pub reason: String,
}

impl Summary {
    /// 0 when every event was accepted or a duplicate, 1 when some were
    /// rejected or unreadable.
    pub fn exit_code(&self) -> ExitCode {
        if self.rejected > 0 || self.unreadable > 0 {
            ExitCode::Incomplete
        } else {
            ExitCode::Ok
        }
    }

    /// The readable report.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let files = match self.files.len() {
            1 => "1 file".to_owned(),
            n => format!("{n} files"),
        };
        let _ = writeln!(
            out,
            "imported {files}: {} events sent in {:.1} s ({:.0} events/s)",
            self.sent, self.elapsed_seconds, self.events_per_second
        );
        let _ = writeln!(out, "  accepted    {}", self.accepted);
        let _ = writeln!(out, "  duplicates  {}", self.duplicates);
        let _ = writeln!(out, "  rejected    {}", self.rejected);
        for (reason, n) in &self.rejected_by_reason {
            let _ = writeln!(out, "    {reason}: {n}");
        }
        let _ = writeln!(out, "  unreadable  {}", self.unreadable);
        if !self.rejections.is_empty() {
            let _ = writeln!(
                out,
                "rejections{}:",
                first(self.rejected, self.rejections.len())
            );
            for r in &self.rejections {
                let _ = writeln!(
                    out,
                    "  {}:{} {} {} {} {}",
                    r.file, r.line, r.event_id, r.reason, r.field, r.description
                );
            }
        }
        if !self.unreadable_lines.is_empty() {
            let _ = writeln!(
                out,
                "unreadable lines{}:",
                first(self.unreadable, self.unreadable_lines.len())
            );
            for u in &self.unreadable_lines {
                let _ = writeln!(out, "  {}:{} {}", u.file, u.line, u.reason);
            }
        }
        out
    }

    /// The report as one JSON object (with the exit code), on one line.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct WithCode<'a> {
            #[serde(flatten)]
            summary: &'a Summary,
            exit_code: u8,
        }
        serde_json::to_string(&WithCode {
            summary: self,
            exit_code: self.exit_code().code(),
        })
        .unwrap_or_else(|e| format!("{{\"error\":\"cannot encode the summary: {e}\"}}"))
    }
}

fn first(total: u64, listed: usize) -> String {
    if total > listed as u64 {
        format!(" (first {listed} of {total})")
    } else {
        String::new()
    }
}
