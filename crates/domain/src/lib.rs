//! The KPI domain, free of transport and storage.
//!
//! - [`schema`]: fact types and their fields (the catalog ↔ ingestion contract).
//! - [`filter`]: the filter expression language over fact fields: parser,
//!   canonical printer, type check, evaluation.
//! - [`formula`]: arithmetic over indicator keys, for derived indicators.
//! - [`measure`]: one aggregation over one fact type, with attribution and time basis.
//! - [`rules`]: scoring rules (linear, bands, target met, cap) and direction.
//! - [`indicator`]: indicator definitions and their validation.
//! - [`template`]: scorecard templates, veto and alert rules, effective ranges.
//! - [`calendar`]: business calendars and business-hours durations.
//! - [`period`]: days, ISO weeks, months, quarters and custom ranges in a time zone.
//! - [`catalog`]: a tenant's whole catalog and every lifecycle operation on it,
//!   export and import.
//! - [`alerting`]: alert rules on indicator series, and leaderboard ranks.
//! - [`scorecard`]: the scoring math: values, samples, Wilson intervals, scores, weights, vetoes, grades.
//! - [`starter`]: the starter kit (DOMAIN.md §4 and §6).
//! - [`events`]: ingested events, validated (the event store keeps them as JSON).
//! - [`facts`]: fact rows folded from events, order-independently; roster intervals.
//! - [`error`]: field-path violations returned by every validation.
#![forbid(unsafe_code)]

pub mod alerting;
pub mod calendar;
pub mod catalog;
pub mod error;
pub mod events;
pub mod facts;
pub mod filter;
pub mod formula;
pub mod indicator;
pub mod measure;
pub mod period;
pub mod rules;
pub mod schema;
pub mod scorecard;
pub mod starter;
pub mod template;

pub use error::{FieldViolation, Violations};
