//! Fact derivation: folding validated [`events`](crate::events) into rows of
//! the [fact schema](crate::schema).
//!
//! A [`FactRow`] holds every field of its fact type's schema ([`FactValue::Null`]
//! where absent) plus, for each duration field kept in business hours as well
//! ([`FieldDef::business_hours`](crate::schema::FieldDef::business_hours)), a
//! `"{name}_bh"` column (see [`business_column`]). Durations are seconds as
//! [`FactValue::Number`]; instants are [`FactValue::Time`].
//!
//! Every fold is order-independent: it first puts its input in the canonical
//! order — by `(occurred_at, event_id)`, then (only for two different events
//! sharing both, which a well-behaved sender never produces) by their debug
//! rendering — and drops exact duplicates (a redelivered event counts once).
//! All tie-breaks below refer to that order, so the same set of events gives
//! the same row whatever order they arrived in.
//!
//! - Tickets: [`fold_ticket`], [`ticket_contributors`], then
//!   [`fill_next_contact_gaps`] across one customer's tickets of one category.
//! - Sessions and bad reviews: [`fold_conversation`], [`fold_bad_review`].
//! - Latest-wins facts (a later event for the same id is a correction):
//!   [`survey_fact`], [`qa_facts`], [`field_visit_fact`], [`assessment_fact`].
//! - Roster: [`roster_intervals`] and [`cohort`].
//!
//! Team columns other than the ticket's (which come from the ticket events)
//! are left null: the roster supplies them at query time.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

use crate::calendar::BusinessCalendar;
use crate::events::{
    AgentUpsert, Assessment, BadReviewEvent, BadReviewEventType, ConversationEvent,
    ConversationEventType, EscalationLevel, Event, FieldVisit, Payload, QaReview, Severity,
    SurveyResponse, TicketEvent, TicketEventType,
};
use crate::schema::FactType;

/// One value of a fact row.
#[derive(Debug, Clone, PartialEq)]
pub enum FactValue {
    /// Absent.
    Null,
    /// A string, identifier or enum value.
    Text(String),
    /// A number or a duration in seconds.
    Number(f64),
    /// true / false.
    Bool(bool),
    /// An instant.
    Time(DateTime<Utc>),
}

impl FactValue {
    /// Whether the value is [`FactValue::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, FactValue::Null)
    }

    /// The text, if this is a [`FactValue::Text`].
    pub fn as_text(&self) -> Option<&str> {
        match self {
            FactValue::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The number, if this is a [`FactValue::Number`].
    pub fn as_number(&self) -> Option<f64> {
        match self {
            FactValue::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The flag, if this is a [`FactValue::Bool`].
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            FactValue::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The instant, if this is a [`FactValue::Time`].
    pub fn as_time(&self) -> Option<DateTime<Utc>> {
        match self {
            FactValue::Time(t) => Some(*t),
            _ => None,
        }
    }
}

/// One fact: a value for every column of its fact type (see
/// [`FactRow::columns`]).
#[derive(Debug, Clone, PartialEq)]
pub struct FactRow {
    /// The fact type.
    pub fact_type: FactType,
    /// The values by column name.
    pub values: BTreeMap<&'static str, FactValue>,
}

static NULL: FactValue = FactValue::Null;

impl FactRow {
    /// A row of this fact type with every column null.
    pub fn new(fact_type: FactType) -> Self {
        let values = Self::columns(fact_type)
            .into_iter()
            .map(|name| (name, FactValue::Null))
            .collect();
        Self { fact_type, values }
    }

    /// The columns of a fact type's rows: the schema's fields, in schema
    /// order, each business-hours duration followed by its `_bh` column.
    pub fn columns(fact_type: FactType) -> Vec<&'static str> {
        let mut out = Vec::new();
        for field in fact_type.schema().fields {
            out.push(field.name);
            if field.business_hours
                && let Some(bh) = business_column(field.name)
            {
                out.push(bh);
            }
        }
        out
    }

    /// The value of a column; [`FactValue::Null`] for an unknown one.
    pub fn get(&self, field: &str) -> &FactValue {
        self.values.get(field).unwrap_or(&NULL)
    }

    /// The value of the schema's id field; empty if it is not text.
    pub fn id(&self) -> &str {
        self.get(self.fact_type.schema().id_field)
            .as_text()
            .unwrap_or("")
    }

    /// Sets a column; a name that is not a column of the row is ignored so
    /// that a row always holds exactly its columns.
    fn set(&mut self, field: &str, value: FactValue) {
        debug_assert!(
            self.values.contains_key(field),
            "{field} is not a column of {:?}",
            self.fact_type
        );
        if let Some(slot) = self.values.get_mut(field) {
            *slot = value;
        }
    }

    /// Sets a duration column to `to − from` in seconds and, if it has one,
    /// its `_bh` column to the business seconds of `[from, to)` (0 when the
    /// span is negative).
    fn set_duration(
        &mut self,
        field: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        calendar: &BusinessCalendar,
    ) {
        self.set(field, FactValue::Number(seconds(to - from)));
        if let Some(bh) = business_column(field) {
            self.set(bh, FactValue::Number(calendar.business_seconds(from, to)));
        }
    }

    /// Sets a duration column and its `_bh` column to null.
    fn clear_duration(&mut self, field: &str) {
        self.set(field, FactValue::Null);
        if let Some(bh) = business_column(field) {
            self.set(bh, FactValue::Null);
        }
    }
}

pub use crate::schema::business_column;

// ---------------------------------------------------------------------------
// Helpers

/// A time delta in seconds, fractions kept.
fn seconds(delta: TimeDelta) -> f64 {
    delta.num_seconds() as f64 + f64::from(delta.subsec_nanos()) / 1e9
}

fn text(s: &str) -> FactValue {
    FactValue::Text(s.to_string())
}

/// Text, or null when absent (nullable string fields).
fn opt_text(s: Option<&str>) -> FactValue {
    s.map_or(FactValue::Null, text)
}

/// Text, or the empty string when absent (non-nullable string fields).
fn text_or_empty(s: Option<&str>) -> FactValue {
    text(s.unwrap_or(""))
}

fn opt_time(t: Option<DateTime<Utc>>) -> FactValue {
    t.map_or(FactValue::Null, FactValue::Time)
}

/// The canonical total order of events (see the module doc).
fn compare_events(a: &Event, b: &Event) -> Ordering {
    a.occurred_at
        .cmp(&b.occurred_at)
        .then_with(|| a.event_id.cmp(&b.event_id))
        .then_with(|| {
            if a == b {
                Ordering::Equal
            } else {
                format!("{a:?}").cmp(&format!("{b:?}"))
            }
        })
}

/// The events in canonical order, exact duplicates dropped.
fn canonical<'a>(events: &[&'a Event]) -> Vec<&'a Event> {
    let mut sorted = events.to_vec();
    sorted.sort_by(|a, b| compare_events(a, b));
    sorted.dedup_by(|a, b| a == b);
    sorted
}

/// The payloads a projection picks, with their events, in canonical order.
fn picked<'a, T>(
    events: &[&'a Event],
    pick: impl Fn(&'a Payload) -> Option<&'a T>,
) -> Vec<(&'a Event, &'a T)> {
    canonical(events)
        .into_iter()
        .filter_map(|e| pick(&e.payload).map(|p| (e, p)))
        .collect()
}

/// The latest picked payload: the correction that wins.
fn latest<'a, T>(
    events: &[&'a Event],
    pick: impl Fn(&'a Payload) -> Option<&'a T>,
) -> Option<(&'a Event, &'a T)> {
    picked(events, pick).pop()
}

// ---------------------------------------------------------------------------
// Tickets

/// Folds one ticket's lifecycle events into its `ticket` row.
///
/// Only [`Payload::Ticket`] events of `ticket_id` are used. Times and
/// tie-breaks follow the canonical order (module doc):
///
/// - `created_at`: the earliest CREATED, else the earliest event (CREATED may
///   arrive late); null only when there is no event at all.
/// - `channel`, `category`, `priority`, `customer_id`, `customer_segment`:
///   the earliest CREATED carrying the value, else the earliest event
///   carrying it, else `""`.
/// - The response clock starts at the earliest BOT_HANDOFF at or after
///   `created_at` (bot time is excluded), else at `created_at`.
///   `first_response_at` is the earliest FIRST_RESPONSE or AGENT_REPLY;
///   `first_responder_id` / `first_responder_team_id` are its agent and team;
///   `first_response_seconds` = `first_response_at` − clock start, kept even
///   when negative (bad data, flagged by the audit); its `_bh` is 0 then.
/// - `agent_reply_count`: FIRST_RESPONSE + AGENT_REPLY events;
///   `customer_contacts`: 1 + CUSTOMER_REPLY events.
/// - `first_resolved_at` / `last_resolved_at`: earliest / latest RESOLVED;
///   `resolved`: any RESOLVED; `first_resolution_seconds` and
///   `resolution_seconds` run from `created_at` to them.
/// - `reopen_count`: REOPENED events at or after `first_resolved_at`;
///   `first_reopen_seconds`: the earliest of them − `first_resolved_at`.
/// - `status`: the latest of RESOLVED (`resolved`), REOPENED (`open`) and
///   CLOSED (`closed`); `open` when there is none.
/// - `handle_seconds`: the sum over all events; `escalation_level`: the
///   highest level of the ESCALATED events (one without a level counts as
///   `internal`), else `none`; `is_complaint`: any event says so.
/// - `agent_id` / `team_id`, the handler at the last resolution: if resolved,
///   the latest ASSIGNED or TRANSFERRED event naming an agent at or before
///   `last_resolved_at`, else the last RESOLVED event; if not resolved, the
///   latest ASSIGNED or TRANSFERRED event naming an agent, else null.
/// - `next_contact_gap_seconds`: null; see [`fill_next_contact_gaps`].
pub fn fold_ticket(ticket_id: &str, events: &[&Event], calendar: &BusinessCalendar) -> FactRow {
    use TicketEventType as T;

    let evs = picked(events, |p| match p {
        Payload::Ticket(t) if t.ticket_id == ticket_id => Some(t),
        _ => None,
    });
    let is = |ty: TicketEventType| move |(_, t): &&(&Event, &TicketEvent)| t.event_type == ty;

    let mut row = FactRow::new(FactType::Ticket);
    row.set("ticket_id", text(ticket_id));

    let created_at = evs
        .iter()
        .find(is(T::Created))
        .or(evs.first())
        .map(|(e, _)| e.occurred_at);
    row.set("created_at", opt_time(created_at));

    // Attributes: the earliest CREATED carrying them, else the earliest event.
    let attribute = |get: fn(&TicketEvent) -> Option<&str>| -> FactValue {
        let from_created = evs.iter().filter(is(T::Created)).find_map(|(_, t)| get(t));
        text_or_empty(from_created.or_else(|| evs.iter().find_map(|(_, t)| get(t))))
    };
    row.set("channel", attribute(|t| t.channel.map(|c| c.as_str())));
    row.set("category", attribute(|t| t.category.as_deref()));
    row.set("priority", attribute(|t| t.priority.as_deref()));
    row.set("customer_id", attribute(|t| t.customer_id.as_deref()));
    row.set(
        "customer_segment",
        attribute(|t| t.customer_segment.as_deref()),
    );

    // First response, the bot's time excluded.
    let first_response = evs
        .iter()
        .find(|(_, t)| matches!(t.event_type, T::FirstResponse | T::AgentReply));
    if let (Some(created), Some((response, responder))) = (created_at, first_response) {
        let clock_start = evs
            .iter()
            .filter(is(T::BotHandoff))
            .map(|(e, _)| e.occurred_at)
            .find(|at| *at >= created)
            .unwrap_or(created);
        row.set("first_response_at", FactValue::Time(response.occurred_at));
        row.set_duration(
            "first_response_seconds",
            clock_start,
            response.occurred_at,
            calendar,
        );
        row.set(
            "first_responder_id",
            opt_text(responder.agent_id.as_deref()),
        );
        row.set(
            "first_responder_team_id",
            opt_text(responder.team_id.as_deref()),
        );
    }

    let count = |pred: &dyn Fn(TicketEventType) -> bool| {
        evs.iter().filter(|(_, t)| pred(t.event_type)).count() as f64
    };
    row.set(
        "agent_reply_count",
        FactValue::Number(count(&|ty| matches!(ty, T::FirstResponse | T::AgentReply))),
    );
    row.set(
        "customer_contacts",
        FactValue::Number(1.0 + count(&|ty| ty == T::CustomerReply)),
    );

    // Resolutions and reopens.
    let resolutions: Vec<_> = evs.iter().filter(is(T::Resolved)).collect();
    let first_resolved = resolutions.first().map(|(e, _)| e.occurred_at);
    let last_resolution = resolutions.last().map(|(e, t)| (e.occurred_at, *t));
    row.set("resolved", FactValue::Bool(first_resolved.is_some()));
    row.set("first_resolved_at", opt_time(first_resolved));
    row.set(
        "last_resolved_at",
        opt_time(last_resolution.map(|(at, _)| at)),
    );
    let mut reopen_count = 0.0;
    if let (Some(created), Some(first), Some((last, _))) =
        (created_at, first_resolved, last_resolution)
    {
        row.set_duration("first_resolution_seconds", created, first, calendar);
        row.set_duration("resolution_seconds", created, last, calendar);
        let reopens: Vec<DateTime<Utc>> = evs
            .iter()
            .filter(is(T::Reopened))
            .map(|(e, _)| e.occurred_at)
            .filter(|at| *at >= first)
            .collect();
        reopen_count = reopens.len() as f64;
        if let Some(reopened) = reopens.first() {
            row.set_duration("first_reopen_seconds", first, *reopened, calendar);
        }
    }
    row.set("reopen_count", FactValue::Number(reopen_count));

    let status = evs
        .iter()
        .rev()
        .find_map(|(_, t)| match t.event_type {
            T::Resolved => Some("resolved"),
            T::Reopened => Some("open"),
            T::Closed => Some("closed"),
            _ => None,
        })
        .unwrap_or("open");
    row.set("status", text(status));

    let handle: u64 = evs.iter().map(|(_, t)| u64::from(t.handle_seconds)).sum();
    row.set("handle_seconds", FactValue::Number(handle as f64));
    let escalation = evs
        .iter()
        .filter(is(T::Escalated))
        .map(|(_, t)| t.escalation_level.unwrap_or(EscalationLevel::Internal))
        .max()
        .unwrap_or(EscalationLevel::None);
    row.set("escalation_level", text(escalation.as_str()));
    row.set(
        "is_complaint",
        FactValue::Bool(evs.iter().any(|(_, t)| t.is_complaint)),
    );

    // The handler at the last resolution (else now).
    let assignments = evs.iter().rev().filter(|(_, t)| {
        matches!(t.event_type, T::Assigned | T::Transferred) && t.agent_id.is_some()
    });
    let handler: Option<&TicketEvent> = match last_resolution {
        Some((last, resolver)) => Some(
            assignments
                .filter(|(e, _)| e.occurred_at <= last)
                .map(|(_, t)| *t)
                .next()
                .unwrap_or(resolver),
        ),
        None => assignments.map(|(_, t)| *t).next(),
    };
    row.set(
        "agent_id",
        opt_text(handler.and_then(|t| t.agent_id.as_deref())),
    );
    row.set(
        "team_id",
        opt_text(handler.and_then(|t| t.team_id.as_deref())),
    );
    row
}

/// Every distinct agent named by the ticket events, with its share of the
/// work, sorted by agent id. Shares are proportional to the handle seconds
/// each agent's events carry when their total is positive, else to each
/// agent's number of events; they sum to 1 (empty when no event names an
/// agent).
pub fn ticket_contributors(events: &[&Event]) -> Vec<(String, f64)> {
    let mut per_agent: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for event in canonical(events) {
        if let Payload::Ticket(t) = &event.payload
            && let Some(agent) = t.agent_id.as_deref()
        {
            let entry = per_agent.entry(agent).or_default();
            entry.0 += u64::from(t.handle_seconds);
            entry.1 += 1;
        }
    }
    let total_handle: u64 = per_agent.values().map(|(h, _)| h).sum();
    let total_events: u64 = per_agent.values().map(|(_, n)| n).sum();
    per_agent
        .into_iter()
        .map(|(agent, (handle, n))| {
            let share = if total_handle > 0 {
                handle as f64 / total_handle as f64
            } else {
                n as f64 / total_events as f64
            };
            (agent.to_string(), share)
        })
        .collect()
}

/// Fills `next_contact_gap_seconds` (and its `_bh`) of the ticket rows of ONE
/// customer and category (the caller groups them; rows of other fact types
/// are left alone).
///
/// For a ticket with a `first_resolved_at`, the gap runs from it to the
/// earliest `created_at` among the other tickets created strictly after it;
/// null when there is none, or when the ticket is not resolved.
///
/// First-contact resolution with a window of `W` seconds then counts a
/// resolved ticket when
/// `!(first_reopen_seconds <= W) && !(next_contact_gap_seconds <= W)`
/// (a null compares false, so "no reopen" and "no next contact" both pass).
pub fn fill_next_contact_gaps(tickets: &mut [FactRow], calendar: &BusinessCalendar) {
    let created: Vec<Option<DateTime<Utc>>> = tickets
        .iter()
        .map(|row| {
            (row.fact_type == FactType::Ticket)
                .then(|| row.get("created_at").as_time())
                .flatten()
        })
        .collect();
    for (i, row) in tickets.iter_mut().enumerate() {
        if row.fact_type != FactType::Ticket {
            continue;
        }
        let resolved = row.get("first_resolved_at").as_time();
        let next = resolved.and_then(|resolved| {
            created
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .filter_map(|(_, at)| *at)
                .filter(|at| *at > resolved)
                .min()
                .map(|next| (resolved, next))
        });
        match next {
            Some((from, to)) => row.set_duration("next_contact_gap_seconds", from, to, calendar),
            None => row.clear_duration("next_contact_gap_seconds"),
        }
    }
}

// ---------------------------------------------------------------------------
// Sessions and bad reviews

/// Folds one session's events into its `conversation` row.
///
/// Only [`Payload::Conversation`] events of `session_id` are used.
/// `started_at` is the earliest STARTED (else the earliest event);
/// `ended_at` the latest ENDED; `agent_id`, `channel` and `customer_id` come
/// from the earliest event carrying them (`channel` and `customer_id` are
/// `""` when none does); `first_reply_seconds` and `valid` each come from the
/// latest ENDED carrying them (`valid` is false until one says otherwise);
/// `converted` is true when there is a CONVERTED event; `order_value` sums
/// the CONVERTED values over distinct order ids (the latest value of an
/// order wins; a value without an order id counts on its own), null when
/// not converted or when no CONVERTED event carries a value;
/// `handle_seconds` is the sum over all events; `team_id` is null (the
/// roster supplies teams at query time). The calendar is unused today: no
/// conversation duration is kept in business hours.
pub fn fold_conversation(
    session_id: &str,
    events: &[&Event],
    _calendar: &BusinessCalendar,
) -> FactRow {
    use ConversationEventType as C;

    let evs = picked(events, |p| match p {
        Payload::Conversation(c) if c.session_id == session_id => Some(c),
        _ => None,
    });
    let of_type = |ty: ConversationEventType| evs.iter().filter(move |(_, c)| c.event_type == ty);

    let mut row = FactRow::new(FactType::Conversation);
    row.set("session_id", text(session_id));
    let started = of_type(C::Started).next().or(evs.first());
    row.set("started_at", opt_time(started.map(|(e, _)| e.occurred_at)));
    row.set(
        "ended_at",
        opt_time(of_type(C::Ended).next_back().map(|(e, _)| e.occurred_at)),
    );

    let earliest =
        |get: fn(&ConversationEvent) -> Option<&str>| evs.iter().find_map(|(_, c)| get(c));
    row.set("agent_id", opt_text(earliest(|c| c.agent_id.as_deref())));
    row.set(
        "channel",
        text_or_empty(earliest(|c| c.channel.map(|ch| ch.as_str()))),
    );
    row.set(
        "customer_id",
        text_or_empty(earliest(|c| c.customer_id.as_deref())),
    );

    let first_reply = of_type(C::Ended)
        .rev()
        .find_map(|(_, c)| c.first_reply_seconds);
    row.set(
        "first_reply_seconds",
        first_reply.map_or(FactValue::Null, FactValue::Number),
    );
    let valid = of_type(C::Ended).rev().find_map(|(_, c)| c.valid);
    row.set("valid", FactValue::Bool(valid.unwrap_or(false)));

    let converted = of_type(C::Converted).next().is_some();
    row.set("converted", FactValue::Bool(converted));
    // Keyed by order id, or by event id for a value without an order.
    let mut orders: BTreeMap<(bool, &str), f64> = BTreeMap::new();
    for (event, c) in of_type(C::Converted) {
        if let Some(value) = c.order_value {
            let key = match c.order_id.as_deref() {
                Some(order) => (true, order),
                None => (false, event.event_id.as_str()),
            };
            orders.insert(key, value);
        }
    }
    let order_value = if orders.is_empty() {
        FactValue::Null
    } else {
        FactValue::Number(orders.values().sum())
    };
    row.set("order_value", order_value);

    let handle: u64 = evs.iter().map(|(_, c)| u64::from(c.handle_seconds)).sum();
    row.set("handle_seconds", FactValue::Number(handle as f64));
    row
}

/// Folds one bad review's events into its `bad_review` row.
///
/// Only [`Payload::BadReview`] events of `review_id` are used.
/// `received_at` is the earliest RECEIVED (else the earliest event);
/// `intercepted` is true when there is an INTERCEPTED event and
/// `intercepted_at` is the earliest one; `agent_id` and `order_id` come from
/// the earliest event carrying them (`order_id` is `""` when none does);
/// `team_id` is null.
pub fn fold_bad_review(review_id: &str, events: &[&Event]) -> FactRow {
    use BadReviewEventType as B;

    let evs = picked(events, |p| match p {
        Payload::BadReview(b) if b.review_id == review_id => Some(b),
        _ => None,
    });
    let first_of = |ty: BadReviewEventType| {
        evs.iter()
            .find(|(_, b)| b.event_type == ty)
            .map(|(e, _)| e.occurred_at)
    };
    let earliest = |get: fn(&BadReviewEvent) -> Option<&str>| evs.iter().find_map(|(_, b)| get(b));

    let mut row = FactRow::new(FactType::BadReview);
    row.set("review_id", text(review_id));
    let received = first_of(B::Received).or(evs.first().map(|(e, _)| e.occurred_at));
    row.set("received_at", opt_time(received));
    let intercepted_at = first_of(B::Intercepted);
    row.set("intercepted", FactValue::Bool(intercepted_at.is_some()));
    row.set("intercepted_at", opt_time(intercepted_at));
    row.set("agent_id", opt_text(earliest(|b| b.agent_id.as_deref())));
    row.set(
        "order_id",
        text_or_empty(earliest(|b| b.order_id.as_deref())),
    );
    row
}

// ---------------------------------------------------------------------------
// Latest-wins facts

/// The `survey` row of one response: the latest [`Payload::Survey`] event
/// wins (later ones are corrections); `None` without one.
///
/// `agent_id` is the event's, else the rated ticket row's `agent_id` (the
/// handler at resolution); `customer_segment` the event's, else the ticket
/// row's, else `""`; `responded_at` is the event time; `team_id` is null.
pub fn survey_fact(events: &[&Event], ticket: Option<&FactRow>) -> Option<FactRow> {
    let (event, s): (&Event, &SurveyResponse) = latest(events, |p| match p {
        Payload::Survey(s) => Some(s),
        _ => None,
    })?;
    let from_ticket = |field: &str| {
        ticket
            .map(|row| row.get(field))
            .filter(|v| !v.is_null())
            .cloned()
    };

    let mut row = FactRow::new(FactType::Survey);
    row.set("response_id", text(&s.response_id));
    row.set("kind", text(s.kind.as_str()));
    row.set("score", FactValue::Number(s.score));
    row.set("ticket_id", opt_text(s.ticket_id.as_deref()));
    row.set("session_id", opt_text(s.session_id.as_deref()));
    let agent = match s.agent_id.as_deref() {
        Some(agent) => text(agent),
        None => from_ticket("agent_id").unwrap_or(FactValue::Null),
    };
    row.set("agent_id", agent);
    let segment = match s.customer_segment.as_deref() {
        Some(segment) => text(segment),
        None => from_ticket("customer_segment").unwrap_or_else(|| text("")),
    };
    row.set("customer_segment", segment);
    row.set("responded_at", FactValue::Time(event.occurred_at));
    Some(row)
}

/// The rows of one QA review: the latest [`Payload::QaReview`] event wins;
/// empty without one.
///
/// In order: one `qa_review` row (`item_count`, `violation_count`,
/// `major_violation_count`, `reviewed_at` = the event time), one `qa_item`
/// row per item key (`item_id` = `"{review_id}/{key}"`; of two items with
/// the same key the later one in the list wins), one `qa_violation` row per
/// violation (`violation_id` = `"{review_id}/{index}"`, the index counting
/// from 0 in the event's list). Team columns are null.
pub fn qa_facts(events: &[&Event]) -> Vec<FactRow> {
    let Some((event, review)) = latest(events, |p| match p {
        Payload::QaReview(r) => Some(r),
        _ => None,
    }) else {
        return Vec::new();
    };
    let review: &QaReview = review;
    let at = FactValue::Time(event.occurred_at);

    // Distinct keys, in list order, the later duplicate winning.
    let mut items = Vec::with_capacity(review.items.len());
    let mut seen = BTreeSet::new();
    for item in review.items.iter().rev() {
        if seen.insert(item.key.as_str()) {
            items.push(item);
        }
    }
    items.reverse();

    let majors = review
        .violations
        .iter()
        .filter(|v| v.severity == Severity::Major)
        .count();
    let mut head = FactRow::new(FactType::QaReview);
    head.set("review_id", text(&review.review_id));
    head.set("agent_id", text(&review.agent_id));
    head.set("reviewer_id", text(&review.reviewer_id));
    head.set("ticket_id", opt_text(review.ticket_id.as_deref()));
    head.set("session_id", opt_text(review.session_id.as_deref()));
    head.set("score", FactValue::Number(review.score));
    head.set("item_count", FactValue::Number(items.len() as f64));
    head.set(
        "violation_count",
        FactValue::Number(review.violations.len() as f64),
    );
    head.set("major_violation_count", FactValue::Number(majors as f64));
    head.set("reviewed_at", at.clone());

    let mut rows = vec![head];
    for item in items {
        let mut row = FactRow::new(FactType::QaItem);
        row.set(
            "item_id",
            FactValue::Text(format!("{}/{}", review.review_id, item.key)),
        );
        row.set("review_id", text(&review.review_id));
        row.set("agent_id", text(&review.agent_id));
        row.set("key", text(&item.key));
        row.set("group", text(&item.group));
        row.set("passed", FactValue::Bool(item.passed));
        row.set("score", FactValue::Number(item.score));
        row.set("reviewed_at", at.clone());
        rows.push(row);
    }
    for (index, violation) in review.violations.iter().enumerate() {
        let mut row = FactRow::new(FactType::QaViolation);
        row.set(
            "violation_id",
            FactValue::Text(format!("{}/{index}", review.review_id)),
        );
        row.set("review_id", text(&review.review_id));
        row.set("agent_id", text(&review.agent_id));
        row.set("code", text(&violation.code));
        row.set("severity", text(violation.severity.as_str()));
        row.set("reviewed_at", at.clone());
        rows.push(row);
    }
    rows
}

/// The `field_visit` row of one visit: the latest [`Payload::FieldVisit`]
/// event wins; `None` without one.
///
/// `visited_at` is `arrived_at`, else the event time; `response_seconds`
/// (and its `_bh`) is `arrived_at − reported_at` when both are known, else
/// null; `team_id` is null.
pub fn field_visit_fact(events: &[&Event], calendar: &BusinessCalendar) -> Option<FactRow> {
    let (event, visit): (&Event, &FieldVisit) = latest(events, |p| match p {
        Payload::FieldVisit(v) => Some(v),
        _ => None,
    })?;
    let mut row = FactRow::new(FactType::FieldVisit);
    row.set("visit_id", text(&visit.visit_id));
    row.set("ticket_id", text(&visit.ticket_id));
    row.set("agent_id", text(&visit.agent_id));
    row.set("visit_no", FactValue::Number(f64::from(visit.visit_no)));
    row.set(
        "visited_at",
        FactValue::Time(visit.arrived_at.unwrap_or(event.occurred_at)),
    );
    row.set("reported_at", opt_time(visit.reported_at));
    row.set("scheduled_at", opt_time(visit.scheduled_at));
    row.set("arrived_at", opt_time(visit.arrived_at));
    if let (Some(reported), Some(arrived)) = (visit.reported_at, visit.arrived_at) {
        row.set_duration("response_seconds", reported, arrived, calendar);
    }
    row.set(
        "resolved_on_visit",
        FactValue::Bool(visit.resolved_on_visit),
    );
    Some(row)
}

/// The `assessment` row of one assessment: the latest
/// [`Payload::Assessment`] event wins; `None` without one.
///
/// `pct` = `score ÷ max_score × 100` (0 if `max_score` is not positive,
/// which validation rejects); `assessed_at` is the event time; `team_id` is
/// null.
pub fn assessment_fact(events: &[&Event]) -> Option<FactRow> {
    let (event, a): (&Event, &Assessment) = latest(events, |p| match p {
        Payload::Assessment(a) => Some(a),
        _ => None,
    })?;
    let pct = if a.max_score > 0.0 {
        a.score / a.max_score * 100.0
    } else {
        0.0
    };
    let mut row = FactRow::new(FactType::Assessment);
    row.set("assessment_id", text(&a.assessment_id));
    row.set("agent_id", text(&a.agent_id));
    row.set("kind", text(&a.kind));
    row.set("score", FactValue::Number(a.score));
    row.set("max_score", FactValue::Number(a.max_score));
    row.set("pct", FactValue::Number(pct));
    row.set("assessed_at", FactValue::Time(event.occurred_at));
    Some(row)
}

// ---------------------------------------------------------------------------
// Roster

/// One agent's roster entry over a half-open validity interval
/// `[valid_from, valid_until)`; an open end is unbounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterInterval {
    /// The agent.
    pub agent_id: String,
    /// Start of validity; `None` for the first entry, which also covers
    /// facts before the agent's first roster event.
    pub valid_from: Option<DateTime<Utc>>,
    /// End of validity (the next entry's start); `None` for the current one.
    pub valid_until: Option<DateTime<Utc>>,
    /// The team.
    pub team_id: String,
    /// The role.
    pub role: String,
    /// The hire date.
    pub hired_on: Option<NaiveDate>,
    /// Whether active.
    pub active: bool,
    /// The display name.
    pub display_name: String,
}

/// The roster intervals of ONE agent from its [`Payload::Agent`] upserts, in
/// time order: each upsert is valid from its time until the next upsert's;
/// the first from the beginning of time, the last without end. Of several
/// upserts at the same instant only the last in canonical order counts
/// (a correction).
pub fn roster_intervals(events: &[&Event]) -> Vec<RosterInterval> {
    let mut upserts: Vec<(DateTime<Utc>, &AgentUpsert)> = Vec::new();
    for (event, upsert) in picked(events, |p| match p {
        Payload::Agent(a) => Some(a),
        _ => None,
    }) {
        match upserts.last_mut() {
            Some(last) if last.0 == event.occurred_at => last.1 = upsert,
            _ => upserts.push((event.occurred_at, upsert)),
        }
    }
    upserts
        .iter()
        .enumerate()
        .map(|(i, (at, u))| RosterInterval {
            agent_id: u.agent_id.clone(),
            valid_from: (i > 0).then_some(*at),
            valid_until: upserts.get(i + 1).map(|(next, _)| *next),
            team_id: u.team_id.clone(),
            role: u.role.clone(),
            hired_on: u.hired_on,
            active: u.active,
            display_name: u.display_name.clone(),
        })
        .collect()
}

/// The tenure cohort of an agent on a date: `"new_hire"` when fewer than
/// `new_hire_days` days have passed since `hired_on` (a hire date after
/// `on` counts as new), else `"veteran"`; `"veteran"` without a hire date.
pub fn cohort(hired_on: Option<NaiveDate>, on: NaiveDate, new_hire_days: u32) -> &'static str {
    match hired_on {
        Some(hired) if (on - hired).num_days() < i64::from(new_hire_days) => "new_hire",
        _ => "veteran",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Channel, QaItem, SurveyKind, Violation};
    use chrono::{Datelike, Weekday};
    use proptest::prelude::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn cal() -> BusinessCalendar {
        BusinessCalendar::utc_default()
    }

    fn refs(events: &[Event]) -> Vec<&Event> {
        events.iter().collect()
    }

    fn event(id: &str, at: DateTime<Utc>, payload: Payload) -> Event {
        Event {
            event_id: id.to_string(),
            occurred_at: at,
            payload,
        }
    }

    fn ticket_event(ty: TicketEventType) -> TicketEvent {
        TicketEvent::new("T1", ty)
    }

    /// A ticket event of T1 by an agent (`""` for none) of team `t{n}`.
    fn tev(id: &str, at: &str, ty: TicketEventType, agent: &str, handle: u32) -> Event {
        let mut t = ticket_event(ty);
        if !agent.is_empty() {
            t.agent_id = Some(agent.into());
            t.team_id = Some(agent.replace('a', "t"));
        }
        t.handle_seconds = handle;
        event(id, utc(at), Payload::Ticket(t))
    }

    fn with_ticket(mut e: Event, f: impl FnOnce(&mut TicketEvent)) -> Event {
        if let Payload::Ticket(t) = &mut e.payload {
            f(t);
        }
        e
    }

    fn created(id: &str, at: &str, ticket: &str, customer: &str) -> Event {
        with_ticket(tev(id, at, TicketEventType::Created, "", 0), |t| {
            t.ticket_id = ticket.into();
            t.channel = Some(Channel::Chat);
            t.category = Some("billing".into());
            t.priority = Some("p2".into());
            t.customer_id = Some(customer.into());
            t.customer_segment = Some("vip".into());
        })
    }

    fn num(v: f64) -> FactValue {
        FactValue::Number(v)
    }

    fn txt(s: &str) -> FactValue {
        FactValue::Text(s.into())
    }

    fn at(s: &str) -> FactValue {
        FactValue::Time(utc(s))
    }

    /// Every row holds exactly its schema's fields plus their `_bh` columns.
    fn assert_columns(row: &FactRow) {
        let schema = row.fact_type.schema();
        let mut expected: BTreeSet<String> = BTreeSet::new();
        for field in schema.fields {
            expected.insert(field.name.to_string());
            if field.business_hours {
                expected.insert(format!("{}_bh", field.name));
            }
        }
        let actual: BTreeSet<String> = row.values.keys().map(|k| k.to_string()).collect();
        assert_eq!(actual, expected, "{:?}", row.fact_type);
    }

    fn assert_fields(row: &FactRow, expected: &[(&str, FactValue)]) {
        assert_columns(row);
        for (field, value) in expected {
            assert!(row.values.contains_key(field), "no column {field}");
            assert_eq!(row.get(field), value, "{field}");
        }
    }

    #[test]
    fn business_columns_follow_the_schema() {
        assert_eq!(
            business_column("first_response_seconds"),
            Some("first_response_seconds_bh")
        );
        assert_eq!(
            business_column("response_seconds"),
            Some("response_seconds_bh")
        );
        assert_eq!(business_column("handle_seconds"), None);
        assert_eq!(business_column("nope"), None);
        for fact_type in FactType::ALL {
            for field in fact_type.schema().fields {
                let expected = format!("{}_bh", field.name);
                assert_eq!(
                    business_column(field.name),
                    field.business_hours.then_some(expected.as_str()),
                    "{}",
                    field.name
                );
            }
            let row = FactRow::new(fact_type);
            assert_columns(&row);
            assert_eq!(row.values.len(), FactRow::columns(fact_type).len());
            assert!(row.values.values().all(FactValue::is_null));
        }
    }

    fn lifecycle() -> Vec<Event> {
        use TicketEventType as T;
        vec![
            created("e01", "2025-03-03T10:00:00Z", "T1", "c1"),
            tev("e02", "2025-03-03T10:05:00Z", T::BotHandoff, "", 0),
            tev("e03", "2025-03-03T10:06:00Z", T::Assigned, "a1", 0),
            tev("e04", "2025-03-03T10:10:00Z", T::FirstResponse, "a1", 120),
            tev("e05", "2025-03-03T10:20:00Z", T::CustomerReply, "", 0),
            tev("e06", "2025-03-03T10:30:00Z", T::AgentReply, "a1", 300),
            tev("e07", "2025-03-03T11:00:00Z", T::Resolved, "a1", 60),
            tev("e08", "2025-03-04T09:00:00Z", T::Reopened, "", 0),
            tev("e09", "2025-03-04T09:30:00Z", T::Transferred, "a2", 0),
            with_ticket(
                tev("e10", "2025-03-04T09:40:00Z", T::Escalated, "", 0),
                |t| {
                    t.escalation_level = Some(EscalationLevel::Internal);
                    t.is_complaint = true;
                },
            ),
            tev("e11", "2025-03-04T10:00:00Z", T::AgentReply, "a2", 200),
            tev("e12", "2025-03-04T12:00:00Z", T::Resolved, "a2", 100),
        ]
    }

    #[test]
    fn full_ticket_lifecycle() {
        assert_eq!(utc("2025-03-03T00:00:00Z").weekday(), Weekday::Mon);
        let events = lifecycle();
        let row = fold_ticket("T1", &refs(&events), &cal());
        assert_eq!(row.fact_type, FactType::Ticket);
        assert_eq!(row.id(), "T1");
        assert_fields(
            &row,
            &[
                ("ticket_id", txt("T1")),
                ("channel", txt("chat")),
                ("category", txt("billing")),
                ("priority", txt("p2")),
                ("customer_id", txt("c1")),
                ("customer_segment", txt("vip")),
                ("status", txt("resolved")),
                ("created_at", at("2025-03-03T10:00:00Z")),
                ("first_response_at", at("2025-03-03T10:10:00Z")),
                // From the bot hand-off at 10:05.
                ("first_response_seconds", num(300.0)),
                ("first_response_seconds_bh", num(300.0)),
                ("first_responder_id", txt("a1")),
                ("first_responder_team_id", txt("t1")),
                ("first_resolved_at", at("2025-03-03T11:00:00Z")),
                ("last_resolved_at", at("2025-03-04T12:00:00Z")),
                ("resolved", FactValue::Bool(true)),
                ("first_resolution_seconds", num(3600.0)),
                ("first_resolution_seconds_bh", num(3600.0)),
                // 26 h; business: Mon 10–18 + Tue 09–12 = 11 h.
                ("resolution_seconds", num(93_600.0)),
                ("resolution_seconds_bh", num(39_600.0)),
                ("reopen_count", num(1.0)),
                // 22 h; business: Mon 11–18 = 7 h.
                ("first_reopen_seconds", num(79_200.0)),
                ("first_reopen_seconds_bh", num(25_200.0)),
                ("agent_reply_count", num(3.0)),
                ("customer_contacts", num(2.0)),
                ("handle_seconds", num(780.0)),
                ("escalation_level", txt("internal")),
                ("is_complaint", FactValue::Bool(true)),
                ("agent_id", txt("a2")),
                ("team_id", txt("t2")),
                ("next_contact_gap_seconds", FactValue::Null),
                ("next_contact_gap_seconds_bh", FactValue::Null),
            ],
        );

        let mut reversed = refs(&events);
        reversed.reverse();
        assert_eq!(fold_ticket("T1", &reversed, &cal()), row);

        let contributors = ticket_contributors(&refs(&events));
        assert_eq!(
            contributors,
            vec![
                ("a1".to_string(), 480.0 / 780.0),
                ("a2".to_string(), 300.0 / 780.0)
            ]
        );
    }

    #[test]
    fn first_response_across_a_weekend() {
        use TicketEventType as T;
        assert_eq!(utc("2025-03-07T00:00:00Z").weekday(), Weekday::Fri);
        let events = vec![
            created("e1", "2025-03-07T17:00:00Z", "T1", "c1"),
            tev("e2", "2025-03-10T09:30:00Z", T::FirstResponse, "a1", 0),
        ];
        let row = fold_ticket("T1", &refs(&events), &cal());
        assert_fields(
            &row,
            &[
                ("first_response_seconds", num(232_200.0)),
                ("first_response_seconds_bh", num(5_400.0)),
                ("status", txt("open")),
                ("resolved", FactValue::Bool(false)),
                ("first_resolution_seconds", FactValue::Null),
                ("first_resolution_seconds_bh", FactValue::Null),
                ("reopen_count", num(0.0)),
                ("first_reopen_seconds", FactValue::Null),
                // Not resolved and never assigned.
                ("agent_id", FactValue::Null),
                ("team_id", FactValue::Null),
                ("escalation_level", txt("none")),
                ("is_complaint", FactValue::Bool(false)),
                ("customer_contacts", num(1.0)),
            ],
        );
    }

    #[test]
    fn late_creation_and_bad_data() {
        use TicketEventType as T;
        // The CREATED event is later than a reply and carries the attributes;
        // an earlier reply also carries a (different) category.
        let events = vec![
            with_ticket(
                tev("e1", "2025-03-03T09:50:00Z", T::AgentReply, "a1", 0),
                |t| {
                    t.category = Some("tech".into());
                    t.customer_segment = Some("regular".into());
                },
            ),
            with_ticket(created("e2", "2025-03-03T10:00:00Z", "T1", "c1"), |t| {
                t.customer_segment = None;
            }),
            tev("e3", "2025-03-03T10:30:00Z", T::Assigned, "a3", 0),
            tev("e4", "2025-03-03T11:00:00Z", T::Closed, "", 0),
            with_ticket(
                tev("e5", "2025-03-03T11:30:00Z", T::Escalated, "", 0),
                |t| t.escalation_level = None,
            ),
            with_ticket(
                tev("e6", "2025-03-03T11:40:00Z", T::Escalated, "", 0),
                |t| t.escalation_level = Some(EscalationLevel::Regulator),
            ),
            // An extra event of another ticket is ignored.
            with_ticket(
                tev("e7", "2025-03-03T11:50:00Z", T::Resolved, "a9", 0),
                |t| t.ticket_id = "T2".into(),
            ),
        ];
        let row = fold_ticket("T1", &refs(&events), &cal());
        assert_fields(
            &row,
            &[
                ("created_at", at("2025-03-03T10:00:00Z")),
                ("category", txt("billing")),
                ("customer_segment", txt("regular")),
                ("first_response_at", at("2025-03-03T09:50:00Z")),
                ("first_response_seconds", num(-600.0)),
                ("first_response_seconds_bh", num(0.0)),
                ("status", txt("closed")),
                ("resolved", FactValue::Bool(false)),
                ("escalation_level", txt("regulator")),
                ("agent_id", txt("a3")),
                ("team_id", txt("t3")),
            ],
        );

        // Without any CREATED: the earliest event opens the ticket.
        let late: Vec<&Event> = refs(&events)[2..].to_vec();
        let row = fold_ticket("T1", &late, &cal());
        assert_fields(
            &row,
            &[
                ("created_at", at("2025-03-03T10:30:00Z")),
                ("channel", txt("")),
                ("category", txt("")),
                ("customer_id", txt("")),
            ],
        );

        // No events at all.
        let row = fold_ticket("T1", &[], &cal());
        assert_fields(
            &row,
            &[
                ("ticket_id", txt("T1")),
                ("created_at", FactValue::Null),
                ("status", txt("open")),
                ("handle_seconds", num(0.0)),
            ],
        );
        assert!(ticket_contributors(&[]).is_empty());
    }

    #[test]
    fn handler_falls_back_to_the_resolver_and_duplicates_count_once() {
        use TicketEventType as T;
        let events = vec![
            created("e1", "2025-03-03T10:00:00Z", "T1", "c1"),
            tev("e2", "2025-03-03T10:10:00Z", T::AgentReply, "a1", 0),
            tev("e3", "2025-03-03T10:20:00Z", T::Resolved, "a2", 0),
            // Assigned after the last resolution: not the handler.
            tev("e4", "2025-03-03T10:30:00Z", T::Assigned, "a3", 0),
        ];
        let mut with_duplicate = refs(&events);
        with_duplicate.push(&events[1]);
        let row = fold_ticket("T1", &with_duplicate, &cal());
        assert_fields(
            &row,
            &[
                ("agent_id", txt("a2")),
                ("team_id", txt("t2")),
                ("agent_reply_count", num(1.0)),
            ],
        );
        // No handle seconds: shares by event count (a1, a2, a3 once each).
        let contributors = ticket_contributors(&with_duplicate);
        let agents: Vec<&str> = contributors.iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(agents, ["a1", "a2", "a3"]);
        for (_, share) in &contributors {
            assert!((share - 1.0 / 3.0).abs() < 1e-12);
        }
    }

    #[test]
    fn next_contact_gaps_of_one_customer_and_category() {
        use TicketEventType as T;
        let ticket = |id: &str, created_at: &str, resolved_at: Option<&str>| {
            let mut events = vec![created(&format!("{id}-c"), created_at, id, "c1")];
            if let Some(resolved_at) = resolved_at {
                events.push(with_ticket(
                    tev(&format!("{id}-r"), resolved_at, T::Resolved, "a1", 0),
                    |t| t.ticket_id = id.into(),
                ));
            }
            fold_ticket(id, &refs(&events), &cal())
        };
        let mut rows = vec![
            ticket("A", "2025-03-03T09:00:00Z", Some("2025-03-03T10:00:00Z")),
            // Created before A's resolution: not A's next contact.
            ticket("B", "2025-03-03T09:30:00Z", Some("2025-03-03T12:00:00Z")),
            ticket("C", "2025-03-04T10:00:00Z", None),
        ];
        fill_next_contact_gaps(&mut rows, &cal());
        // A: Mon 10:00 → Tue 10:00 = 24 h; business Mon 10–18 + Tue 09–10 = 9 h.
        assert_fields(
            &rows[0],
            &[
                ("next_contact_gap_seconds", num(86_400.0)),
                ("next_contact_gap_seconds_bh", num(32_400.0)),
            ],
        );
        // B: Mon 12:00 → Tue 10:00 = 22 h; business 6 h + 1 h.
        assert_fields(
            &rows[1],
            &[
                ("next_contact_gap_seconds", num(79_200.0)),
                ("next_contact_gap_seconds_bh", num(25_200.0)),
            ],
        );
        assert_fields(
            &rows[2],
            &[
                ("next_contact_gap_seconds", FactValue::Null),
                ("next_contact_gap_seconds_bh", FactValue::Null),
            ],
        );

        // The result does not depend on the rows' order.
        let mut shuffled = vec![rows[2].clone(), rows[0].clone(), rows[1].clone()];
        fill_next_contact_gaps(&mut shuffled, &cal());
        assert_eq!(
            shuffled,
            vec![rows[2].clone(), rows[0].clone(), rows[1].clone()]
        );

        // FCR with a 3-day window: A has a next contact within it, B too.
        let window = 3.0 * 86_400.0;
        let fcr = |row: &FactRow| {
            let within = |field: &str| row.get(field).as_number().is_some_and(|s| s <= window);
            !within("first_reopen_seconds") && !within("next_contact_gap_seconds")
        };
        assert!(!fcr(&rows[0]));
        assert!(!fcr(&rows[1]));
    }

    fn conv(
        id: &str,
        at: &str,
        ty: ConversationEventType,
        f: impl FnOnce(&mut ConversationEvent),
    ) -> Event {
        let mut c = ConversationEvent {
            session_id: "S1".into(),
            event_type: ty,
            agent_id: None,
            channel: None,
            customer_id: None,
            first_reply_seconds: None,
            valid: None,
            handle_seconds: 0,
            order_id: None,
            order_value: None,
        };
        f(&mut c);
        event(id, utc(at), Payload::Conversation(c))
    }

    #[test]
    fn conversation_fold() {
        use ConversationEventType as C;
        let events = vec![
            conv("e1", "2025-03-03T10:00:00Z", C::Started, |c| {
                c.channel = Some(Channel::Phone);
                c.customer_id = Some("c1".into());
            }),
            conv("e2", "2025-03-03T10:20:00Z", C::Ended, |c| {
                c.agent_id = Some("a1".into());
                c.first_reply_seconds = Some(12.5);
                c.valid = Some(true);
                c.handle_seconds = 600;
            }),
            conv("e3", "2025-03-03T10:25:00Z", C::Converted, |c| {
                c.order_id = Some("o1".into());
                c.order_value = Some(100.0);
            }),
            // A correction of o1's value, another order, a value without id.
            conv("e4", "2025-03-03T10:26:00Z", C::Converted, |c| {
                c.order_id = Some("o1".into());
                c.order_value = Some(120.0);
            }),
            conv("e5", "2025-03-03T10:27:00Z", C::Converted, |c| {
                c.order_id = Some("o2".into());
                c.order_value = Some(30.0);
            }),
            conv("e6", "2025-03-03T10:28:00Z", C::Converted, |c| {
                c.order_value = Some(5.0);
            }),
            // A later ENDED corrects valid, not first_reply_seconds.
            conv("e7", "2025-03-03T10:30:00Z", C::Ended, |c| {
                c.agent_id = Some("a2".into());
                c.valid = Some(false);
                c.handle_seconds = 30;
            }),
        ];
        let row = fold_conversation("S1", &refs(&events), &cal());
        assert_eq!(row.id(), "S1");
        assert_fields(
            &row,
            &[
                ("session_id", txt("S1")),
                ("agent_id", txt("a1")),
                ("team_id", FactValue::Null),
                ("channel", txt("phone")),
                ("customer_id", txt("c1")),
                ("started_at", at("2025-03-03T10:00:00Z")),
                ("ended_at", at("2025-03-03T10:30:00Z")),
                ("first_reply_seconds", num(12.5)),
                ("valid", FactValue::Bool(false)),
                ("converted", FactValue::Bool(true)),
                ("order_value", num(155.0)),
                ("handle_seconds", num(630.0)),
            ],
        );

        let row = fold_conversation("S1", &refs(&events[..1]), &cal());
        assert_fields(
            &row,
            &[
                ("ended_at", FactValue::Null),
                ("first_reply_seconds", FactValue::Null),
                ("valid", FactValue::Bool(false)),
                ("converted", FactValue::Bool(false)),
                ("order_value", FactValue::Null),
            ],
        );
    }

    fn bad(id: &str, at: &str, ty: BadReviewEventType, agent: Option<&str>) -> Event {
        event(
            id,
            utc(at),
            Payload::BadReview(BadReviewEvent {
                review_id: "R1".into(),
                event_type: ty,
                agent_id: agent.map(Into::into),
                order_id: (ty == BadReviewEventType::Received).then(|| "o1".into()),
            }),
        )
    }

    #[test]
    fn bad_review_fold() {
        use BadReviewEventType as B;
        let events = vec![
            bad("e1", "2025-03-03T10:00:00Z", B::Intercepted, Some("a1")),
            bad("e2", "2025-03-03T11:00:00Z", B::Received, Some("a2")),
            bad("e3", "2025-03-03T12:00:00Z", B::Intercepted, None),
        ];
        let row = fold_bad_review("R1", &refs(&events));
        assert_fields(
            &row,
            &[
                ("review_id", txt("R1")),
                ("received_at", at("2025-03-03T11:00:00Z")),
                ("intercepted", FactValue::Bool(true)),
                ("intercepted_at", at("2025-03-03T10:00:00Z")),
                ("agent_id", txt("a1")),
                ("team_id", FactValue::Null),
                ("order_id", txt("o1")),
            ],
        );
        let row = fold_bad_review("R1", &refs(&events[1..2]));
        assert_fields(
            &row,
            &[
                ("intercepted", FactValue::Bool(false)),
                ("intercepted_at", FactValue::Null),
            ],
        );
    }

    fn survey(id: &str, at: &str, score: f64, agent: Option<&str>) -> Event {
        event(
            id,
            utc(at),
            Payload::Survey(SurveyResponse {
                response_id: "V1".into(),
                kind: SurveyKind::Csat,
                score,
                ticket_id: Some("T1".into()),
                session_id: None,
                agent_id: agent.map(Into::into),
                customer_segment: None,
            }),
        )
    }

    #[test]
    fn survey_latest_wins_and_falls_back_to_the_ticket() {
        let ticket = fold_ticket("T1", &refs(&lifecycle()), &cal());
        let events = vec![
            survey("e2", "2025-03-05T10:00:00Z", 2.0, None),
            survey("e1", "2025-03-05T09:00:00Z", 5.0, Some("a1")),
        ];
        let row = survey_fact(&refs(&events), Some(&ticket)).unwrap();
        assert_fields(
            &row,
            &[
                ("response_id", txt("V1")),
                ("kind", txt("csat")),
                ("score", num(2.0)),
                ("ticket_id", txt("T1")),
                ("session_id", FactValue::Null),
                ("agent_id", txt("a2")),
                ("team_id", FactValue::Null),
                ("customer_segment", txt("vip")),
                ("responded_at", at("2025-03-05T10:00:00Z")),
            ],
        );
        let row = survey_fact(&refs(&events[1..]), None).unwrap();
        assert_fields(
            &row,
            &[
                ("agent_id", txt("a1")),
                ("customer_segment", txt("")),
                ("score", num(5.0)),
            ],
        );
        assert_eq!(
            survey_fact(&refs(&events[..1]), None)
                .unwrap()
                .get("agent_id"),
            &FactValue::Null
        );
        assert!(survey_fact(&refs(&lifecycle()), None).is_none());
    }

    fn qa(id: &str, at: &str, score: f64) -> Event {
        let item = |key: &str, group: &str, passed: bool, score: f64| QaItem {
            key: key.into(),
            group: group.into(),
            passed,
            score,
        };
        let violation = |code: &str, severity: Severity| Violation {
            code: code.into(),
            severity,
            note: String::new(),
        };
        event(
            id,
            utc(at),
            Payload::QaReview(QaReview {
                review_id: "Q1".into(),
                agent_id: "a1".into(),
                reviewer_id: "r1".into(),
                ticket_id: Some("T1".into()),
                session_id: None,
                score,
                items: vec![
                    item("greeting", "process", false, 10.0),
                    item("disclosure", "compliance", true, 100.0),
                    item("greeting", "process", true, 90.0),
                ],
                violations: vec![
                    violation("false_promise", Severity::Major),
                    violation("rude", Severity::Minor),
                ],
            }),
        )
    }

    #[test]
    fn qa_rows() {
        let events = vec![
            qa("e2", "2025-03-05T10:00:00Z", 85.0),
            qa("e1", "2025-03-05T09:00:00Z", 40.0),
        ];
        let rows = qa_facts(&refs(&events));
        let types: Vec<FactType> = rows.iter().map(|r| r.fact_type).collect();
        assert_eq!(
            types,
            [
                FactType::QaReview,
                FactType::QaItem,
                FactType::QaItem,
                FactType::QaViolation,
                FactType::QaViolation
            ]
        );
        let reviewed = at("2025-03-05T10:00:00Z");
        assert_fields(
            &rows[0],
            &[
                ("review_id", txt("Q1")),
                ("agent_id", txt("a1")),
                ("team_id", FactValue::Null),
                ("reviewer_id", txt("r1")),
                ("ticket_id", txt("T1")),
                ("session_id", FactValue::Null),
                ("score", num(85.0)),
                ("item_count", num(2.0)),
                ("violation_count", num(2.0)),
                ("major_violation_count", num(1.0)),
                ("reviewed_at", reviewed.clone()),
            ],
        );
        assert_fields(
            &rows[1],
            &[
                ("item_id", txt("Q1/disclosure")),
                ("review_id", txt("Q1")),
                ("agent_id", txt("a1")),
                ("key", txt("disclosure")),
                ("group", txt("compliance")),
                ("passed", FactValue::Bool(true)),
                ("score", num(100.0)),
                ("reviewed_at", reviewed.clone()),
            ],
        );
        assert_fields(
            &rows[2],
            &[
                ("item_id", txt("Q1/greeting")),
                ("passed", FactValue::Bool(true)),
                ("score", num(90.0)),
            ],
        );
        assert_fields(
            &rows[3],
            &[
                ("violation_id", txt("Q1/0")),
                ("review_id", txt("Q1")),
                ("agent_id", txt("a1")),
                ("code", txt("false_promise")),
                ("severity", txt("major")),
                ("reviewed_at", reviewed),
            ],
        );
        assert_eq!(rows[4].id(), "Q1/1");
        assert_eq!(rows[4].get("severity"), &txt("minor"));
        assert!(qa_facts(&[]).is_empty());
    }

    fn visit(id: &str, at: &str, arrived: Option<&str>) -> Event {
        event(
            id,
            utc(at),
            Payload::FieldVisit(FieldVisit {
                visit_id: "F1".into(),
                ticket_id: "T9".into(),
                agent_id: "a5".into(),
                visit_no: 1,
                reported_at: Some(utc("2025-03-07T16:00:00Z")),
                scheduled_at: Some(utc("2025-03-10T09:00:00Z")),
                arrived_at: arrived.map(utc),
                resolved_on_visit: arrived.is_some(),
            }),
        )
    }

    #[test]
    fn field_visit_rows() {
        let events = vec![
            visit("e1", "2025-03-08T08:00:00Z", None),
            visit("e2", "2025-03-10T12:00:00Z", Some("2025-03-10T10:00:00Z")),
        ];
        let row = field_visit_fact(&refs(&events), &cal()).unwrap();
        // Fri 16:00 → Mon 10:00 = 66 h; business Fri 16–18 + Mon 09–10 = 3 h.
        assert_fields(
            &row,
            &[
                ("visit_id", txt("F1")),
                ("ticket_id", txt("T9")),
                ("agent_id", txt("a5")),
                ("team_id", FactValue::Null),
                ("visit_no", num(1.0)),
                ("visited_at", at("2025-03-10T10:00:00Z")),
                ("reported_at", at("2025-03-07T16:00:00Z")),
                ("scheduled_at", at("2025-03-10T09:00:00Z")),
                ("arrived_at", at("2025-03-10T10:00:00Z")),
                ("response_seconds", num(237_600.0)),
                ("response_seconds_bh", num(10_800.0)),
                ("resolved_on_visit", FactValue::Bool(true)),
            ],
        );
        let row = field_visit_fact(&refs(&events[..1]), &cal()).unwrap();
        assert_fields(
            &row,
            &[
                ("visited_at", at("2025-03-08T08:00:00Z")),
                ("arrived_at", FactValue::Null),
                ("response_seconds", FactValue::Null),
                ("response_seconds_bh", FactValue::Null),
                ("resolved_on_visit", FactValue::Bool(false)),
            ],
        );
        assert!(field_visit_fact(&[], &cal()).is_none());
    }

    #[test]
    fn assessment_rows() {
        let assessment = |id: &str, at: &str, score: f64| {
            event(
                id,
                utc(at),
                Payload::Assessment(Assessment {
                    assessment_id: "X1".into(),
                    agent_id: "a1".into(),
                    kind: "knowledge".into(),
                    score,
                    max_score: 40.0,
                }),
            )
        };
        // Same instant: the event id breaks the tie.
        let events = vec![
            assessment("e2", "2025-03-05T10:00:00Z", 30.0),
            assessment("e1", "2025-03-05T10:00:00Z", 10.0),
        ];
        let row = assessment_fact(&refs(&events)).unwrap();
        assert_fields(
            &row,
            &[
                ("assessment_id", txt("X1")),
                ("agent_id", txt("a1")),
                ("team_id", FactValue::Null),
                ("kind", txt("knowledge")),
                ("score", num(30.0)),
                ("max_score", num(40.0)),
                ("pct", num(75.0)),
                ("assessed_at", at("2025-03-05T10:00:00Z")),
            ],
        );
        assert!(assessment_fact(&[]).is_none());
    }

    fn upsert(id: &str, at: &str, team: &str, hired_on: Option<&str>) -> Event {
        event(
            id,
            utc(at),
            Payload::Agent(AgentUpsert {
                agent_id: "a1".into(),
                display_name: "Ann".into(),
                team_id: team.into(),
                role: "agent".into(),
                hired_on: hired_on.map(|d| d.parse().unwrap()),
                active: true,
            }),
        )
    }

    #[test]
    fn roster_intervals_and_cohorts() {
        let events = vec![
            upsert("e3", "2025-03-10T00:00:00Z", "t3", None),
            upsert("e1", "2025-03-01T00:00:00Z", "t1", Some("2025-02-01")),
            // Same instant as e1: the later event id wins.
            upsert("e2", "2025-03-01T00:00:00Z", "t2", Some("2025-02-01")),
        ];
        let intervals = roster_intervals(&refs(&events));
        let spans: Vec<_> = intervals
            .iter()
            .map(|i| (i.team_id.as_str(), i.valid_from, i.valid_until))
            .collect();
        assert_eq!(
            spans,
            [
                ("t2", None, Some(utc("2025-03-10T00:00:00Z"))),
                ("t3", Some(utc("2025-03-10T00:00:00Z")), None),
            ]
        );
        assert_eq!(
            intervals[0],
            RosterInterval {
                agent_id: "a1".into(),
                valid_from: None,
                valid_until: Some(utc("2025-03-10T00:00:00Z")),
                team_id: "t2".into(),
                role: "agent".into(),
                hired_on: Some("2025-02-01".parse().unwrap()),
                active: true,
                display_name: "Ann".into(),
            }
        );
        let mut reversed = refs(&events);
        reversed.reverse();
        assert_eq!(roster_intervals(&reversed), intervals);
        assert!(roster_intervals(&[]).is_empty());

        let day = |s: &str| s.parse::<NaiveDate>().unwrap();
        let hired = Some(day("2025-01-01"));
        assert_eq!(cohort(hired, day("2025-03-31"), 90), "new_hire"); // 89 days
        assert_eq!(cohort(hired, day("2025-04-01"), 90), "veteran"); // 90 days
        assert_eq!(cohort(hired, day("2024-12-01"), 90), "new_hire");
        assert_eq!(cohort(None, day("2025-04-01"), 90), "veteran");
    }

    // -----------------------------------------------------------------------
    // Property: the same set of events folds to the same row in any order.

    const BASE: &str = "2025-03-03T00:00:00Z";

    /// Offsets from BASE within a week; often whole hours of the first half
    /// day, so that ties on occurred_at are common.
    fn offset() -> impl Strategy<Value = i64> {
        prop_oneof![(0i64..12).prop_map(|h| h * 3600), 0i64..7 * 86_400]
    }

    fn maybe<T: Clone + std::fmt::Debug + 'static>(
        values: Vec<T>,
    ) -> impl Strategy<Value = Option<T>> {
        proptest::option::of(proptest::sample::select(values))
    }

    fn handle() -> impl Strategy<Value = u32> {
        prop_oneof![Just(0u32), 1u32..900]
    }

    fn numbered(events: Vec<Event>) -> Vec<Event> {
        events
            .into_iter()
            .enumerate()
            .map(|(i, mut e)| {
                e.event_id = format!("e{i:02}");
                e
            })
            .collect()
    }

    fn ticket_lifecycle() -> impl Strategy<Value = Vec<Event>> {
        use TicketEventType as T;
        let types = vec![
            T::Created,
            T::Assigned,
            T::Transferred,
            T::BotHandoff,
            T::FirstResponse,
            T::AgentReply,
            T::CustomerReply,
            T::Resolved,
            T::Reopened,
            T::Closed,
            T::Escalated,
        ];
        let one = (
            proptest::sample::select(types),
            offset(),
            maybe(vec!["a1", "a2", "a3"]),
            maybe(vec!["t1", "t2"]),
            maybe(vec![Channel::Chat, Channel::Phone]),
            maybe(vec!["billing", "tech"]),
            maybe(vec!["c1", "c2"]),
            handle(),
            proptest::bool::weighted(0.1),
            maybe(vec![
                EscalationLevel::None,
                EscalationLevel::Internal,
                EscalationLevel::Media,
            ]),
        )
            .prop_map(
                |(
                    ty,
                    offset,
                    agent,
                    team,
                    channel,
                    category,
                    customer,
                    handle,
                    complaint,
                    level,
                )| {
                    let mut t = ticket_event(ty);
                    t.agent_id = agent.map(Into::into);
                    t.team_id = team.map(Into::into);
                    t.channel = channel;
                    t.category = category.map(Into::into);
                    t.customer_id = customer.map(Into::into);
                    t.handle_seconds = handle;
                    t.is_complaint = complaint;
                    t.escalation_level = level;
                    event(
                        "",
                        utc(BASE) + TimeDelta::seconds(offset),
                        Payload::Ticket(t),
                    )
                },
            );
        proptest::collection::vec(one, 5..=15).prop_map(numbered)
    }

    fn conversation_lifecycle() -> impl Strategy<Value = Vec<Event>> {
        use ConversationEventType as C;
        let one = (
            proptest::sample::select(vec![C::Started, C::Ended, C::Converted]),
            offset(),
            maybe(vec!["a1", "a2"]),
            maybe(vec![Channel::Chat, Channel::Phone]),
            maybe(vec!["c1", "c2"]),
            proptest::option::of(0.0f64..600.0),
            proptest::option::of(any::<bool>()),
            handle(),
            maybe(vec!["o1", "o2"]),
            proptest::option::of(0.01f64..1000.0),
        )
            .prop_map(
                |(ty, offset, agent, channel, customer, reply, valid, handle, order, value)| {
                    let c = ConversationEvent {
                        session_id: "S1".into(),
                        event_type: ty,
                        agent_id: agent.map(Into::into),
                        channel,
                        customer_id: customer.map(Into::into),
                        first_reply_seconds: reply,
                        valid,
                        handle_seconds: handle,
                        order_id: order.map(Into::into),
                        order_value: value,
                    };
                    event(
                        "",
                        utc(BASE) + TimeDelta::seconds(offset),
                        Payload::Conversation(c),
                    )
                },
            );
        proptest::collection::vec(one, 3..=12).prop_map(numbered)
    }

    fn bad_review_lifecycle() -> impl Strategy<Value = Vec<Event>> {
        let one = (
            proptest::sample::select(vec![
                BadReviewEventType::Received,
                BadReviewEventType::Intercepted,
            ]),
            offset(),
            maybe(vec!["a1", "a2"]),
            maybe(vec!["o1", "o2"]),
        )
            .prop_map(|(ty, offset, agent, order)| {
                let b = BadReviewEvent {
                    review_id: "R1".into(),
                    event_type: ty,
                    agent_id: agent.map(Into::into),
                    order_id: order.map(Into::into),
                };
                event(
                    "",
                    utc(BASE) + TimeDelta::seconds(offset),
                    Payload::BadReview(b),
                )
            });
        proptest::collection::vec(one, 2..=8).prop_map(numbered)
    }

    /// Events with several random permutations of them.
    fn with_shuffles(
        events: impl Strategy<Value = Vec<Event>>,
    ) -> impl Strategy<Value = (Vec<Event>, Vec<Vec<Event>>)> {
        events.prop_flat_map(|events| {
            let shuffles = proptest::collection::vec(Just(events.clone()).prop_shuffle(), 4);
            (Just(events), shuffles)
        })
    }

    proptest! {
        #[test]
        fn ticket_fold_is_order_independent(
            (events, shuffles) in with_shuffles(ticket_lifecycle())
        ) {
            let calendar = cal();
            let row = fold_ticket("T1", &refs(&events), &calendar);
            assert_columns(&row);
            let contributors = ticket_contributors(&refs(&events));
            let total: f64 = contributors.iter().map(|(_, s)| s).sum();
            prop_assert!(contributors.is_empty() || (total - 1.0).abs() < 1e-9);
            for shuffled in &shuffles {
                prop_assert_eq!(&fold_ticket("T1", &refs(shuffled), &calendar), &row);
                prop_assert_eq!(&ticket_contributors(&refs(shuffled)), &contributors);
            }
            // A redelivered event changes nothing.
            let mut redelivered = refs(&shuffles[0]);
            redelivered.push(&events[0]);
            prop_assert_eq!(&fold_ticket("T1", &redelivered, &calendar), &row);
        }

        #[test]
        fn conversation_fold_is_order_independent(
            (events, shuffles) in with_shuffles(conversation_lifecycle())
        ) {
            let calendar = cal();
            let row = fold_conversation("S1", &refs(&events), &calendar);
            assert_columns(&row);
            for shuffled in &shuffles {
                prop_assert_eq!(&fold_conversation("S1", &refs(shuffled), &calendar), &row);
            }
        }

        #[test]
        fn bad_review_fold_is_order_independent(
            (events, shuffles) in with_shuffles(bad_review_lifecycle())
        ) {
            let row = fold_bad_review("R1", &refs(&events));
            assert_columns(&row);
            for shuffled in &shuffles {
                prop_assert_eq!(&fold_bad_review("R1", &refs(shuffled)), &row);
            }
        }
    }
}
