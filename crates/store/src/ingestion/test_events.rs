//! Events for the unit tests of the ingestion modules.

use chrono::{TimeZone, Utc};
use kpi_domain::events::{Event, Payload, TicketEvent, TicketEventType};

/// Ticket `ticket` created, as event `id`, on 2026-03-02 at `hour`:00 UTC.
pub(crate) fn ticket_created(id: &str, ticket: &str, hour: u32) -> Event {
    Event {
        event_id: id.into(),
        occurred_at: Utc.with_ymd_and_hms(2026, 3, 2, hour, 0, 0).unwrap(),
        payload: Payload::Ticket(TicketEvent::new(ticket, TicketEventType::Created)),
    }
}
