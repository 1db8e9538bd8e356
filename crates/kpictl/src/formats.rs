//! Input formats of `kpictl import`: which format a file is in, and reading
//! a file as a stream of [`Record`]s (an event, or an unreadable line with the
//! reason), one at a time so memory stays bounded whatever the file size.
//!
//! - [`jsonl`]: JSON Lines, one domain [`Event`] per line.
//! - [`table`]: CSV with a header row, one event per row; cells are coerced
//!   to the payload fields' types.

pub mod jsonl;
pub mod table;

use std::fs::File;
use std::io::{self, BufReader};
use std::path::Path;

use clap::ValueEnum;
use kpi_domain::events::Event;

/// The format of an input file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// CSV with a header row.
    Csv,
    /// JSON Lines (also `.ndjson`).
    Jsonl,
}

impl Format {
    /// The format named by a file's extension: `.csv`, `.jsonl` or `.ndjson`
    /// (case-insensitive); `None` for anything else.
    pub fn from_extension(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            _ => None,
        }
    }
}

/// One line (JSON Lines) or row (CSV) of a file.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A readable event.
    Event {
        /// The 1-based line it starts on.
        line: u64,
        /// The event.
        event: Box<Event>,
    },
    /// A line or row that is not an event.
    Unreadable {
        /// The 1-based line it starts on.
        line: u64,
        /// Why it could not be read.
        reason: String,
    },
}

/// A file opened for reading: an iterator of records. An `Err` item is a
/// failure to read the file itself (not a bad line) and ends it.
pub type Records = Box<dyn Iterator<Item = io::Result<Record>> + Send>;

/// Opens `path` in `format`. For CSV the header row is read and checked
/// here, so a file with unknown columns fails before anything is sent.
pub fn open(path: &Path, format: Format) -> Result<Records, String> {
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let reader = BufReader::with_capacity(64 * 1024, file);
    match format {
        Format::Jsonl => Ok(Box::new(jsonl::JsonLines::new(reader))),
        Format::Csv => table::CsvRows::new(reader)
            .map(|rows| Box::new(rows) as Records)
            .map_err(|e| format!("{}: {e}", path.display())),
    }
}
