//! The encodings of a generated event: the gRPC message, and rows of
//! PostgreSQL `COPY` text format (the baseline's plain row, the key row).

/// The proto of a domain event: the suite's one conversion.
pub(crate) use kpi_proto::events::event_to_proto as to_proto;

/// A plain row of every column in `COPY` text format (the baseline), and
/// the key row exactly as the write path encodes it.
pub(crate) use kpi_store::ingestion::copy::{append_copy_row, append_key_row};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::{Feed, FeedConfig};

    #[test]
    fn protos_convert_back_to_the_same_domain_events() {
        let now = chrono::Utc::now();
        let feed = Feed::new(FeedConfig {
            events: 2_000,
            tickets: 300,
            seed: 1,
        });
        for (i, event) in feed.enumerate() {
            let proto = to_proto(&event);
            let back = data_ingestion::convert::event_from(&proto, "events", i, now).unwrap();
            assert_eq!(back, event);
        }
    }

    #[test]
    fn copy_row_has_seven_columns() {
        let event = Feed::new(FeedConfig {
            events: 1,
            tickets: 10,
            seed: 1,
        })
        .next()
        .unwrap();
        let mut out = Vec::new();
        append_copy_row(&mut out, "bench", &event, 5).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.ends_with('\n'));
        assert_eq!(out.trim_end().split('\t').count(), 7);
        assert!(out.contains("\"ticket\""));
    }
}
