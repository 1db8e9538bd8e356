//! The data-ingestion service's storage: the event store (the idempotency
//! key is `(tenant, event_id)`; the events are kept per entity), one fact table per fact type (columns named
//! exactly as the domain's fact schema), the roster, audit counters and data
//! versions.
//!
//! - `migration`: the tables, generated from the fact schema.
//! - [`writer`]: a batch of events in one transaction, with a pending batch for the projection.
//! - [`projection`]: pending batches folded into facts, one tenant at a time.
//! - [`copy`]: key rows in `COPY` text format, events as JSON Lines.
//! - `analyze`: fresh planner statistics as the tables grow (PostgreSQL).
//! - [`reader`]: data versions, audit counts, data-quality findings, roster.
//! - `query`: the measure push-down's entry points and types, and drill-down
//!   ([`list_facts`]); `measure`: one measure's statement
//!   ([`measure_statement`], [`query_measure`]); `batch`: the measures of a
//!   call sharing a source in one statement ([`query_measures`]); `source`:
//!   how statements read facts and compile filters.
//!
//! Layout, shared by the migration, the writer and the SQL builder:
//! - `ing_event_keys(tenant, event_id)`: one row per stored event, the
//!   idempotency key (on PostgreSQL led by the id, compared as bytes);
//! - `ing_entity_events(tenant, kind, entity_id, events)`: every projected
//!   event of an entity, as JSON Lines (see `migration`, m0005, for why);
//! - `ing_fact_{fact_type}(tenant, <schema fields>, <field>_bh…, ingested_at)`:
//!   strings and enums TEXT, numbers and durations DOUBLE, booleans BOOLEAN,
//!   timestamps BIGINT microseconds since the Unix epoch; business-hours
//!   variants of durations in `<field>_bh`;
//! - `ing_ticket_contributors(tenant, ticket_id, agent_id, share)`;
//! - `ing_roster(tenant, agent_id, interval_no, valid_from, valid_until, team_id, role, hired_on, active, display_name)`;
//! - `ing_teams`, `ing_audit`, `ing_data_versions`;
//! - `ing_pending(id, tenant, touched, written_at, events)`: batches written
//!   but not yet projected, with their events as JSON Lines.

mod analyze;
mod batch;
pub mod copy;
mod measure;
mod migration;
pub mod projection;
mod query;
pub mod reader;
mod rows;
mod source;
mod sql;
#[cfg(test)]
mod test_events;
pub mod writer;

pub use analyze::{Analyzer, analyze};
pub use batch::query_measures;
pub use measure::measure_statement;
pub use migration::{Migrator, fact_table};
pub use query::{
    FactsQuery, GroupValue, Grouping, MeasureQuery, QueryError, list_facts, query_measure,
};
pub use writer::{Accepted, ChangeSet, IngestWriter, WriteOutcome};
