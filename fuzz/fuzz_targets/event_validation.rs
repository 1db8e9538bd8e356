//! Event validation in data-ingestion (`data_ingestion::convert::event_from`)
//! on arbitrary protobuf bytes, as a hostile client could send them: every
//! event is either accepted or rejected with a field path under its own
//! position, never a panic; validation is deterministic; an accepted event
//! survives the JSON round trip the store relies on.
#![no_main]

use chrono::{DateTime, TimeZone, Utc};
use data_ingestion::convert::event_from;
use kpi_domain::events::Event;
use kpi_proto::kpi::ingestion::v1 as pb;
use libfuzzer_sys::fuzz_target;
use prost::Message;

/// A fixed "now", so that the timestamp window is the same on every run.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).single().expect("valid instant")
}

fuzz_target!(|data: &[u8]| {
    let Ok(event) = pb::Event::decode(data) else {
        return;
    };
    let first = event_from(&event, "events[7]", now());
    let second = event_from(&event, "events[7]", now());
    assert_eq!(first, second, "validation is not deterministic");
    match first {
        Err(rejection) => assert!(
            rejection.field.starts_with("events[7]"),
            "rejection path {:?} is not under the event",
            rejection.field
        ),
        Ok(accepted) => {
            let json = serde_json::to_string(&accepted).expect("an accepted event serialises");
            let back: Event = serde_json::from_str(&json).expect("and deserialises");
            assert_eq!(back, accepted, "JSON round trip changed the event: {json}");
        }
    }
});
