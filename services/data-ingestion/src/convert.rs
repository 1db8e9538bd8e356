//! Proto events → validated domain events.
//!
//! [`event_from`] checks one `kpi.ingestion.v1.Event` and either converts it
//! into a [`kpi_domain::events::Event`] or refuses it with a [`Rejection`]: a
//! stable [`Reason`] code, the path of the offending field (e.g.
//! `events[3].survey.score`) and a readable description.
//!
//! Checks run in field order and the first problem wins, so each refused
//! event gets exactly one rejection. Conventions:
//!
//! - An empty string in the proto means "absent". Nothing is trimmed: an id
//!   with surrounding spaces is invalid.
//! - Ids are at most [`MAX_ID_LEN`] characters of `[A-Za-z0-9._:/@-]`.
//! - Free text (categories, names, keys, codes, notes…) is at most
//!   [`MAX_TEXT_LEN`] characters.
//! - Enum value 0 (`*_UNSPECIFIED`) and unknown numbers are refused where the
//!   enum is required; where it is optional, 0 means absent.
//! - Every number must be finite.
//! - Event timestamps must be valid, not before 2000-01-01T00:00:00Z and not
//!   more than 24 hours after the server's clock. A field visit's
//!   `scheduled_at` may lie further ahead (up to [`MAX_SCHEDULE_AHEAD_DAYS`]
//!   days), since visits are planned in advance.

use std::fmt;
use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use kpi_domain::events as dm;
use kpi_proto::ingestion as pb;

/// The longest id accepted, in characters.
pub const MAX_ID_LEN: usize = 128;
/// The longest free-text field accepted, in characters.
pub const MAX_TEXT_LEN: usize = 1024;
/// The most items a QA review may carry.
pub const MAX_QA_ITEMS: usize = 200;
/// The most violations a QA review may carry.
pub const MAX_VIOLATIONS: usize = 100;
/// The most agent work time one event may carry, in seconds (one day).
pub const MAX_HANDLE_SECONDS: i64 = 86_400;
/// How far ahead of the server's clock an event time may lie, in hours.
pub const MAX_CLOCK_SKEW_HOURS: i64 = 24;
/// How far ahead of the server's clock a visit may be scheduled, in days.
pub const MAX_SCHEDULE_AHEAD_DAYS: i64 = 366;

/// 2000-01-01T00:00:00Z in Unix seconds: the earliest event time accepted.
const EARLIEST_SECONDS: i64 = 946_684_800;

/// Why an event was refused: a stable reason code, the offending field path, and words.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// The stable reason code.
    pub reason: Reason,
    /// The offending field, e.g. `events[3].survey.score`.
    pub field: String,
    /// A readable description of the problem.
    pub description: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}: {}", self.reason, self.field, self.description)
    }
}

impl std::error::Error for Rejection {}

/// Stable reason codes of rejections (see [`Reason::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// A required field is absent or empty.
    MissingField,
    /// An enum is unspecified or holds an unknown number.
    InvalidEnum,
    /// A number is outside its range or not finite.
    OutOfRange,
    /// A timestamp or date is malformed or outside the accepted window.
    InvalidTimestamp,
    /// A string is longer than allowed.
    TooLong,
    /// A list has more entries than allowed.
    TooMany,
    /// An id holds characters outside `[A-Za-z0-9._:/@-]`.
    InvalidId,
    /// Fields contradict each other.
    Inconsistent,
}

impl Reason {
    /// Every reason, in declaration order.
    pub const ALL: [Reason; 8] = [
        Reason::MissingField,
        Reason::InvalidEnum,
        Reason::OutOfRange,
        Reason::InvalidTimestamp,
        Reason::TooLong,
        Reason::TooMany,
        Reason::InvalidId,
        Reason::Inconsistent,
    ];

    /// The stable code reported to clients, e.g. `"out_of_range"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::MissingField => "missing_field",
            Reason::InvalidEnum => "invalid_enum",
            Reason::OutOfRange => "out_of_range",
            Reason::InvalidTimestamp => "invalid_timestamp",
            Reason::TooLong => "too_long",
            Reason::TooMany => "too_many",
            Reason::InvalidId => "invalid_id",
            Reason::Inconsistent => "inconsistent",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Converts one proto event, item `index` of the request's list `list`
/// (e.g. `events` and 3): field paths in rejections are under it, e.g.
/// "events[3].survey.score". `now` bounds timestamps.
pub fn event_from(
    pb: &pb::Event,
    list: &str,
    index: usize,
    now: DateTime<Utc>,
) -> Result<dm::Event, Rejection> {
    let top = Scope::item(None, list, index);
    let event_id = top.required_id("event_id", &pb.event_id)?;
    let window = Window::events(now);
    let occurred_at = top.required_timestamp("occurred_at", pb.occurred_at.as_ref(), window)?;
    let Some(payload) = pb.payload.as_ref() else {
        return Err(top.reject(
            Reason::MissingField,
            "payload",
            "the event carries no payload (ticket, conversation, survey, …)".to_owned(),
        ));
    };
    let payload = match payload {
        pb::event::Payload::Ticket(p) => dm::Payload::Ticket(ticket(&top.child("ticket"), p)?),
        pb::event::Payload::Conversation(p) => {
            dm::Payload::Conversation(conversation(&top.child("conversation"), p)?)
        }
        pb::event::Payload::Survey(p) => dm::Payload::Survey(survey(&top.child("survey"), p)?),
        pb::event::Payload::QaReview(p) => {
            dm::Payload::QaReview(qa_review(&top.child("qa_review"), p)?)
        }
        pb::event::Payload::BadReview(p) => {
            dm::Payload::BadReview(bad_review(&top.child("bad_review"), p)?)
        }
        pb::event::Payload::FieldVisit(p) => {
            dm::Payload::FieldVisit(field_visit(&top.child("field_visit"), p, now)?)
        }
        pb::event::Payload::Assessment(p) => {
            dm::Payload::Assessment(assessment(&top.child("assessment"), p)?)
        }
        pb::event::Payload::Agent(p) => dm::Payload::Agent(agent(&top.child("agent"), p)?),
        pb::event::Payload::Team(p) => dm::Payload::Team(team(&top.child("team"), p)?),
    };
    Ok(dm::Event {
        event_id,
        occurred_at,
        payload,
    })
}

// ---------------------------------------------------------------------------
// Payloads, each checked in proto field order.
// ---------------------------------------------------------------------------

fn ticket(s: &Scope<'_>, p: &pb::TicketEvent) -> Result<dm::TicketEvent, Rejection> {
    use dm::TicketEventType as T;
    let ticket_id = s.required_id("ticket_id", &p.ticket_id)?;
    let event_type = s.required_enum("type", p.r#type, ticket_event_type, TICKET_TYPES)?;
    let agent_id = s.optional_id("agent_id", &p.agent_id)?;
    let needs_agent = matches!(
        event_type,
        T::FirstResponse | T::AgentReply | T::Resolved | T::Assigned | T::Transferred
    );
    if needs_agent && agent_id.is_none() {
        return Err(s.reject(
            Reason::MissingField,
            "agent_id",
            format!(
                "a {} ticket event must name the acting agent",
                ticket_type_name(event_type)
            ),
        ));
    }
    let team_id = s.optional_id("team_id", &p.team_id)?;
    let channel = s.optional_enum("channel", p.channel, channel, CHANNELS)?;
    if event_type == T::Created && channel.is_none() {
        return Err(s.reject(
            Reason::MissingField,
            "channel",
            "a CREATED ticket event must give the channel".to_owned(),
        ));
    }
    let category = s.optional_text("category", &p.category)?;
    let priority = s.optional_text("priority", &p.priority)?;
    let customer_id = s.optional_id("customer_id", &p.customer_id)?;
    if event_type == T::Created && customer_id.is_none() {
        return Err(s.reject(
            Reason::MissingField,
            "customer_id",
            "a CREATED ticket event must name the customer (first-contact resolution needs it)"
                .to_owned(),
        ));
    }
    let customer_segment = s.optional_text("customer_segment", &p.customer_segment)?;
    let escalation_level = s.optional_enum(
        "escalation_level",
        p.escalation_level,
        escalation_level,
        ESCALATION_LEVELS,
    )?;
    if event_type == T::Escalated && escalation_level.is_none() {
        return Err(s.reject(
            Reason::MissingField,
            "escalation_level",
            "an ESCALATED ticket event must give the level reached".to_owned(),
        ));
    }
    let handle_seconds = s.handle_seconds("handle_seconds", p.handle_seconds)?;
    Ok(dm::TicketEvent {
        ticket_id,
        event_type,
        agent_id,
        team_id,
        channel,
        category,
        priority,
        customer_id,
        customer_segment,
        is_complaint: p.is_complaint,
        escalation_level,
        handle_seconds,
    })
}

fn conversation(
    s: &Scope<'_>,
    p: &pb::ConversationEvent,
) -> Result<dm::ConversationEvent, Rejection> {
    let session_id = s.required_id("session_id", &p.session_id)?;
    let event_type = s.required_enum(
        "type",
        p.r#type,
        conversation_event_type,
        CONVERSATION_TYPES,
    )?;
    let agent_id = s.optional_id("agent_id", &p.agent_id)?;
    let channel = s.optional_enum("channel", p.channel, channel, CHANNELS)?;
    let customer_id = s.optional_id("customer_id", &p.customer_id)?;
    let first_reply_seconds = match p.first_reply_seconds {
        Some(v) => Some(s.at_least("first_reply_seconds", v, 0.0)?),
        None => None,
    };
    let handle_seconds = s.handle_seconds("handle_seconds", p.handle_seconds)?;
    let order_id = s.optional_id("order_id", &p.order_id)?;
    let order_value = s.at_least("order_value", p.order_value, 0.0)?;
    // proto3 cannot tell an unset double from 0: a conversion always carries
    // its value (a free order is worth 0), other events only a non-zero one.
    let order_value = (event_type == dm::ConversationEventType::Converted || order_value != 0.0)
        .then_some(order_value);
    Ok(dm::ConversationEvent {
        session_id,
        event_type,
        agent_id,
        channel,
        customer_id,
        first_reply_seconds,
        valid: p.valid,
        handle_seconds,
        order_id,
        order_value,
    })
}

fn survey(s: &Scope<'_>, p: &pb::SurveyResponse) -> Result<dm::SurveyResponse, Rejection> {
    let response_id = s.required_id("response_id", &p.response_id)?;
    let kind = s.required_enum("kind", p.kind, survey_kind, SURVEY_KINDS)?;
    let (lo, hi) = kind.range();
    let score = s.within("score", p.score, lo, hi)?;
    let ticket_id = s.optional_id("ticket_id", &p.ticket_id)?;
    let session_id = s.optional_id("session_id", &p.session_id)?;
    if ticket_id.is_none() && session_id.is_none() {
        return Err(s.reject(
            Reason::MissingField,
            "ticket_id",
            "a survey response must name the ticket or the session it rates".to_owned(),
        ));
    }
    let agent_id = s.optional_id("agent_id", &p.agent_id)?;
    let customer_segment = s.optional_text("customer_segment", &p.customer_segment)?;
    Ok(dm::SurveyResponse {
        response_id,
        kind,
        score,
        ticket_id,
        session_id,
        agent_id,
        customer_segment,
    })
}

fn qa_review(s: &Scope<'_>, p: &pb::QaReview) -> Result<dm::QaReview, Rejection> {
    let review_id = s.required_id("review_id", &p.review_id)?;
    let agent_id = s.required_id("agent_id", &p.agent_id)?;
    let reviewer_id = s.required_id("reviewer_id", &p.reviewer_id)?;
    let ticket_id = s.optional_id("ticket_id", &p.ticket_id)?;
    let session_id = s.optional_id("session_id", &p.session_id)?;
    let score = s.within("score", p.score, 0.0, 100.0)?;
    s.at_most_entries("items", p.items.len(), MAX_QA_ITEMS)?;
    let items = p
        .items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let s = Scope::item(Some(s), "items", i);
            Ok(dm::QaItem {
                key: s.required_text("key", &item.key)?,
                group: s.required_text("group", &item.group)?,
                passed: item.passed,
                score: s.within("score", item.score, 0.0, 100.0)?,
            })
        })
        .collect::<Result<Vec<_>, Rejection>>()?;
    s.at_most_entries("violations", p.violations.len(), MAX_VIOLATIONS)?;
    let violations = p
        .violations
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let s = Scope::item(Some(s), "violations", i);
            Ok(dm::Violation {
                code: s.required_text("code", &v.code)?,
                severity: s.required_enum("severity", v.severity, severity, SEVERITIES)?,
                note: s.text("note", &v.note)?,
            })
        })
        .collect::<Result<Vec<_>, Rejection>>()?;
    Ok(dm::QaReview {
        review_id,
        agent_id,
        reviewer_id,
        ticket_id,
        session_id,
        score,
        items,
        violations,
    })
}

fn bad_review(s: &Scope<'_>, p: &pb::BadReviewEvent) -> Result<dm::BadReviewEvent, Rejection> {
    Ok(dm::BadReviewEvent {
        review_id: s.required_id("review_id", &p.review_id)?,
        event_type: s.required_enum("type", p.r#type, bad_review_event_type, BAD_REVIEW_TYPES)?,
        agent_id: s.optional_id("agent_id", &p.agent_id)?,
        order_id: s.optional_id("order_id", &p.order_id)?,
    })
}

fn field_visit(
    s: &Scope<'_>,
    p: &pb::FieldVisit,
    now: DateTime<Utc>,
) -> Result<dm::FieldVisit, Rejection> {
    let visit_id = s.required_id("visit_id", &p.visit_id)?;
    let ticket_id = s.required_id("ticket_id", &p.ticket_id)?;
    let agent_id = s.required_id("agent_id", &p.agent_id)?;
    let visit_no = match u32::try_from(p.visit_no) {
        Ok(n) if n >= 1 => n,
        _ => {
            return Err(s.reject(
                Reason::OutOfRange,
                "visit_no",
                format!(
                    "must be at least 1 (1 for the first visit of the ticket), got {}",
                    p.visit_no
                ),
            ));
        }
    };
    let events = Window::events(now);
    let reported_at = s.optional_timestamp("reported_at", p.reported_at.as_ref(), events)?;
    let scheduled_at = s.optional_timestamp(
        "scheduled_at",
        p.scheduled_at.as_ref(),
        Window::schedule(now),
    )?;
    let arrived_at = s.optional_timestamp("arrived_at", p.arrived_at.as_ref(), events)?;
    if let (Some(reported), Some(arrived)) = (reported_at, arrived_at)
        && arrived < reported
    {
        return Err(s.reject(
            Reason::Inconsistent,
            "arrived_at",
            format!(
                "the technician cannot arrive ({}) before the fault was reported ({})",
                arrived.to_rfc3339(),
                reported.to_rfc3339()
            ),
        ));
    }
    Ok(dm::FieldVisit {
        visit_id,
        ticket_id,
        agent_id,
        visit_no,
        reported_at,
        scheduled_at,
        arrived_at,
        resolved_on_visit: p.resolved_on_visit,
    })
}

fn assessment(s: &Scope<'_>, p: &pb::Assessment) -> Result<dm::Assessment, Rejection> {
    let assessment_id = s.required_id("assessment_id", &p.assessment_id)?;
    let agent_id = s.required_id("agent_id", &p.agent_id)?;
    let kind = s.required_text("kind", &p.kind)?;
    let score = s.at_least("score", p.score, 0.0)?;
    let max_score = s.finite("max_score", p.max_score)?;
    if max_score <= 0.0 {
        return Err(s.reject(
            Reason::OutOfRange,
            "max_score",
            format!("must be greater than 0, got {max_score}"),
        ));
    }
    if score > max_score {
        return Err(s.reject(
            Reason::OutOfRange,
            "score",
            format!("must be between 0 and max_score ({max_score}), got {score}"),
        ));
    }
    Ok(dm::Assessment {
        assessment_id,
        agent_id,
        kind,
        score,
        max_score,
    })
}

fn agent(s: &Scope<'_>, p: &pb::AgentUpsert) -> Result<dm::AgentUpsert, Rejection> {
    let agent_id = s.required_id("agent_id", &p.agent_id)?;
    let display_name = s.text("display_name", &p.display_name)?;
    let team_id = s.required_id("team_id", &p.team_id)?;
    let role = s.required_text("role", &p.role)?;
    let hired_on = if p.hired_on.is_empty() {
        None
    } else {
        match parse_date(&p.hired_on) {
            Some(d) => Some(d),
            None => {
                return Err(s.reject(
                    Reason::InvalidTimestamp,
                    "hired_on",
                    "must be a calendar date written YYYY-MM-DD".to_owned(),
                ));
            }
        }
    };
    Ok(dm::AgentUpsert {
        agent_id,
        display_name,
        team_id,
        role,
        hired_on,
        active: p.active,
    })
}

fn team(s: &Scope<'_>, p: &pb::TeamUpsert) -> Result<dm::TeamUpsert, Rejection> {
    Ok(dm::TeamUpsert {
        team_id: s.required_id("team_id", &p.team_id)?,
        display_name: s.text("display_name", &p.display_name)?,
        parent_team_id: s.optional_id("parent_team_id", &p.parent_team_id)?,
        supervisor_id: s.optional_id("supervisor_id", &p.supervisor_id)?,
    })
}

/// Parses a strict `YYYY-MM-DD` date (exactly four, two and two digits).
fn parse_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    let shape_ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape_ok {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

// ---------------------------------------------------------------------------
// Enums: proto number → domain value (None for 0 and unknown numbers).
// ---------------------------------------------------------------------------

const TICKET_TYPES: &str = "CREATED, ASSIGNED, TRANSFERRED, BOT_HANDOFF, FIRST_RESPONSE, \
                            AGENT_REPLY, CUSTOMER_REPLY, RESOLVED, REOPENED, CLOSED, ESCALATED";
const CHANNELS: &str = "PHONE, CHAT, EMAIL, SOCIAL, ONSITE";
const ESCALATION_LEVELS: &str = "NONE, INTERNAL, REGULATOR, MEDIA";
const CONVERSATION_TYPES: &str = "STARTED, ENDED, CONVERTED";
const SURVEY_KINDS: &str = "CSAT, NPS, CES";
const SEVERITIES: &str = "MINOR, MAJOR";
const BAD_REVIEW_TYPES: &str = "RECEIVED, INTERCEPTED";

fn ticket_event_type(raw: i32) -> Option<dm::TicketEventType> {
    use dm::TicketEventType as D;
    use pb::TicketEventType as P;
    Some(match P::try_from(raw).ok()? {
        P::Unspecified => return None,
        P::Created => D::Created,
        P::Assigned => D::Assigned,
        P::Transferred => D::Transferred,
        P::BotHandoff => D::BotHandoff,
        P::FirstResponse => D::FirstResponse,
        P::AgentReply => D::AgentReply,
        P::CustomerReply => D::CustomerReply,
        P::Resolved => D::Resolved,
        P::Reopened => D::Reopened,
        P::Closed => D::Closed,
        P::Escalated => D::Escalated,
    })
}

fn ticket_type_name(t: dm::TicketEventType) -> &'static str {
    use dm::TicketEventType as D;
    match t {
        D::Created => "CREATED",
        D::Assigned => "ASSIGNED",
        D::Transferred => "TRANSFERRED",
        D::BotHandoff => "BOT_HANDOFF",
        D::FirstResponse => "FIRST_RESPONSE",
        D::AgentReply => "AGENT_REPLY",
        D::CustomerReply => "CUSTOMER_REPLY",
        D::Resolved => "RESOLVED",
        D::Reopened => "REOPENED",
        D::Closed => "CLOSED",
        D::Escalated => "ESCALATED",
    }
}

fn channel(raw: i32) -> Option<dm::Channel> {
    use dm::Channel as D;
    use pb::Channel as P;
    Some(match P::try_from(raw).ok()? {
        P::Unspecified => return None,
        P::Phone => D::Phone,
        P::Chat => D::Chat,
        P::Email => D::Email,
        P::Social => D::Social,
        P::Onsite => D::Onsite,
    })
}

fn escalation_level(raw: i32) -> Option<dm::EscalationLevel> {
    use dm::EscalationLevel as D;
    use pb::EscalationLevel as P;
    Some(match P::try_from(raw).ok()? {
        P::Unspecified => return None,
        P::None => D::None,
        P::Internal => D::Internal,
        P::Regulator => D::Regulator,
        P::Media => D::Media,
    })
}

fn conversation_event_type(raw: i32) -> Option<dm::ConversationEventType> {
    use dm::ConversationEventType as D;
    use pb::ConversationEventType as P;
    Some(match P::try_from(raw).ok()? {
        P::Unspecified => return None,
        P::Started => D::Started,
        P::Ended => D::Ended,
        P::Converted => D::Converted,
    })
}

fn survey_kind(raw: i32) -> Option<dm::SurveyKind> {
    use dm::SurveyKind as D;
    use pb::SurveyKind as P;
    Some(match P::try_from(raw).ok()? {
        P::Unspecified => return None,
        P::Csat => D::Csat,
        P::Nps => D::Nps,
        P::Ces => D::Ces,
    })
}

fn severity(raw: i32) -> Option<dm::Severity> {
    use dm::Severity as D;
    use pb::Severity as P;
    Some(match P::try_from(raw).ok()? {
        P::Unspecified => return None,
        P::Minor => D::Minor,
        P::Major => D::Major,
    })
}

fn bad_review_event_type(raw: i32) -> Option<dm::BadReviewEventType> {
    use dm::BadReviewEventType as D;
    use pb::BadReviewEventType as P;
    Some(match P::try_from(raw).ok()? {
        P::Unspecified => return None,
        P::Received => D::Received,
        P::Intercepted => D::Intercepted,
    })
}

// ---------------------------------------------------------------------------
// Field checks. A scope is the path of a message (e.g. `events[3].ticket`);
// the full field path is only built when a check fails.
// ---------------------------------------------------------------------------

/// The latest accepted value of a timestamp (the earliest is always 2000-01-01).
#[derive(Clone, Copy)]
struct Window {
    latest: DateTime<Utc>,
    latest_words: &'static str,
}

impl Window {
    /// Event times: up to 24 hours after `now`.
    fn events(now: DateTime<Utc>) -> Self {
        Window {
            latest: ahead(now, TimeDelta::hours(MAX_CLOCK_SKEW_HOURS)),
            latest_words: "more than 24 hours after the server time",
        }
    }

    /// Planned times: up to a year after `now`.
    fn schedule(now: DateTime<Utc>) -> Self {
        Window {
            latest: ahead(now, TimeDelta::days(MAX_SCHEDULE_AHEAD_DAYS)),
            latest_words: "more than 366 days after the server time",
        }
    }
}

fn ahead(now: DateTime<Utc>, by: TimeDelta) -> DateTime<Utc> {
    now.checked_add_signed(by)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `value`'s length in characters, if that is over `max`. The byte length
/// bounds it, so short values (nearly all) are never counted.
fn chars_over(value: &str, max: usize) -> Option<usize> {
    if value.len() <= max {
        return None;
    }
    let len = value.chars().count();
    (len > max).then_some(len)
}

/// Where a message sits in the request: a name, perhaps an index, under its
/// parent (e.g. `events[3]`, then `ticket` under it). Checks pass by the
/// thousand per request and fail rarely, so the path is only written out
/// when one fails.
struct Scope<'a> {
    parent: Option<&'a Scope<'a>>,
    name: &'a str,
    index: Option<usize>,
}

impl<'a> Scope<'a> {
    /// Item `index` of the list `name` (under `parent`, if any).
    fn item(parent: Option<&'a Scope<'a>>, name: &'a str, index: usize) -> Self {
        Scope {
            parent,
            name,
            index: Some(index),
        }
    }

    /// The message field `name` under this one.
    fn child(&'a self, name: &'a str) -> Scope<'a> {
        Scope {
            parent: Some(self),
            name,
            index: None,
        }
    }

    /// The path of this message, e.g. `events[3].qa_review.items[2]`.
    fn path(&self) -> String {
        let mut path = self.parent.map(Scope::path).unwrap_or_default();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(self.name);
        if let Some(index) = self.index {
            // Writing to a String cannot fail.
            let _ = write!(path, "[{index}]");
        }
        path
    }

    fn reject(&self, reason: Reason, name: &str, description: String) -> Rejection {
        Rejection {
            reason,
            field: format!("{}.{name}", self.path()),
            description,
        }
    }

    fn missing(&self, name: &str) -> Rejection {
        self.reject(Reason::MissingField, name, format!("`{name}` is required"))
    }

    fn required_id(&self, name: &str, value: &str) -> Result<String, Rejection> {
        match self.optional_id(name, value)? {
            Some(v) => Ok(v),
            None => Err(self.missing(name)),
        }
    }

    fn optional_id(&self, name: &str, value: &str) -> Result<Option<String>, Rejection> {
        if value.is_empty() {
            return Ok(None);
        }
        if let Some(len) = chars_over(value, MAX_ID_LEN) {
            return Err(self.reject(
                Reason::TooLong,
                name,
                format!("ids are at most {MAX_ID_LEN} characters, got {len}"),
            ));
        }
        if let Some((at, _)) = value.char_indices().find(|&(_, c)| !is_id_char(c)) {
            let position = value[..at].chars().count();
            return Err(self.reject(
                Reason::InvalidId,
                name,
                format!(
                    "ids may only use letters, digits and . _ : / @ - \
                     (no spaces); bad character at position {position}"
                ),
            ));
        }
        Ok(Some(value.to_owned()))
    }

    /// Free text that may be empty (kept as an empty string).
    fn text(&self, name: &str, value: &str) -> Result<String, Rejection> {
        if let Some(len) = chars_over(value, MAX_TEXT_LEN) {
            return Err(self.reject(
                Reason::TooLong,
                name,
                format!("text fields are at most {MAX_TEXT_LEN} characters, got {len}"),
            ));
        }
        Ok(value.to_owned())
    }

    fn optional_text(&self, name: &str, value: &str) -> Result<Option<String>, Rejection> {
        if value.is_empty() {
            return Ok(None);
        }
        self.text(name, value).map(Some)
    }

    fn required_text(&self, name: &str, value: &str) -> Result<String, Rejection> {
        match self.optional_text(name, value)? {
            Some(v) => Ok(v),
            None => Err(self.missing(name)),
        }
    }

    fn required_enum<T>(
        &self,
        name: &str,
        raw: i32,
        map: fn(i32) -> Option<T>,
        allowed: &str,
    ) -> Result<T, Rejection> {
        map(raw).ok_or_else(|| {
            let got = if raw == 0 {
                "it is unspecified (0)".to_owned()
            } else {
                format!("got unknown value {raw}")
            };
            self.reject(
                Reason::InvalidEnum,
                name,
                format!("must be one of {allowed}; {got}"),
            )
        })
    }

    fn optional_enum<T>(
        &self,
        name: &str,
        raw: i32,
        map: fn(i32) -> Option<T>,
        allowed: &str,
    ) -> Result<Option<T>, Rejection> {
        if raw == 0 {
            return Ok(None);
        }
        self.required_enum(name, raw, map, allowed).map(Some)
    }

    fn finite(&self, name: &str, v: f64) -> Result<f64, Rejection> {
        if v.is_finite() {
            Ok(v)
        } else {
            Err(self.reject(
                Reason::OutOfRange,
                name,
                format!("must be a finite number, got {v}"),
            ))
        }
    }

    fn at_least(&self, name: &str, v: f64, lo: f64) -> Result<f64, Rejection> {
        let v = self.finite(name, v)?;
        if v < lo {
            return Err(self.reject(
                Reason::OutOfRange,
                name,
                format!("must be at least {lo}, got {v}"),
            ));
        }
        Ok(v)
    }

    fn within(&self, name: &str, v: f64, lo: f64, hi: f64) -> Result<f64, Rejection> {
        let v = self.finite(name, v)?;
        if v < lo || v > hi {
            return Err(self.reject(
                Reason::OutOfRange,
                name,
                format!("must be between {lo} and {hi}, got {v}"),
            ));
        }
        Ok(v)
    }

    fn handle_seconds(&self, name: &str, v: i64) -> Result<u32, Rejection> {
        match u32::try_from(v) {
            Ok(s) if v <= MAX_HANDLE_SECONDS => Ok(s),
            _ => Err(self.reject(
                Reason::OutOfRange,
                name,
                format!("must be between 0 and {MAX_HANDLE_SECONDS} seconds, got {v}"),
            )),
        }
    }

    fn at_most_entries(&self, name: &str, len: usize, max: usize) -> Result<(), Rejection> {
        if len > max {
            return Err(self.reject(
                Reason::TooMany,
                name,
                format!("at most {max} entries are allowed, got {len}"),
            ));
        }
        Ok(())
    }

    fn required_timestamp(
        &self,
        name: &str,
        ts: Option<&prost_types::Timestamp>,
        window: Window,
    ) -> Result<DateTime<Utc>, Rejection> {
        match self.optional_timestamp(name, ts, window)? {
            Some(t) => Ok(t),
            None => Err(self.missing(name)),
        }
    }

    fn optional_timestamp(
        &self,
        name: &str,
        ts: Option<&prost_types::Timestamp>,
        window: Window,
    ) -> Result<Option<DateTime<Utc>>, Rejection> {
        let Some(ts) = ts else {
            return Ok(None);
        };
        let bad = |words: String| self.reject(Reason::InvalidTimestamp, name, words);
        let nanos = match u32::try_from(ts.nanos) {
            Ok(n) if n < 1_000_000_000 => n,
            _ => {
                return Err(bad(format!(
                    "nanos must be between 0 and 999999999, got {}",
                    ts.nanos
                )));
            }
        };
        if ts.seconds < EARLIEST_SECONDS {
            return Err(bad(
                "is before the earliest accepted time, 2000-01-01T00:00:00Z".to_owned(),
            ));
        }
        let Some(t) = DateTime::<Utc>::from_timestamp(ts.seconds, nanos) else {
            return Err(bad(format!(
                "is {} (beyond the representable range)",
                window.latest_words
            )));
        };
        if t > window.latest {
            return Err(bad(format!(
                "{} is {} ({})",
                t.to_rfc3339(),
                window.latest_words,
                window.latest.to_rfc3339()
            )));
        }
        Ok(Some(t))
    }
}

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '/' | '@' | '-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::event::Payload as P;
    use proptest::prelude::*;
    use prost_types::Timestamp;

    /// 2024-06-01T12:00:00Z.
    const NOW_S: i64 = 1_717_243_200;
    /// Two hours before `NOW_S`.
    const OCCURRED_S: i64 = NOW_S - 7_200;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(NOW_S, 0).expect("valid instant")
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).expect("valid instant")
    }

    fn ts(seconds: i64) -> Timestamp {
        Timestamp { seconds, nanos: 0 }
    }

    fn event(payload: P) -> pb::Event {
        pb::Event {
            event_id: "evt-1".to_owned(),
            occurred_at: Some(ts(OCCURRED_S)),
            payload: Some(payload),
        }
    }

    fn s(v: &str) -> String {
        v.to_owned()
    }

    fn long(n: usize) -> String {
        "x".repeat(n)
    }

    fn pb_ticket() -> pb::TicketEvent {
        pb::TicketEvent {
            ticket_id: s("T-1001"),
            r#type: pb::TicketEventType::Created as i32,
            agent_id: s("agent-7"),
            team_id: s("team-a"),
            channel: pb::Channel::Chat as i32,
            category: s("billing"),
            priority: s("p2"),
            customer_id: s("cust:42"),
            customer_segment: s("vip"),
            is_complaint: true,
            escalation_level: 0,
            handle_seconds: 120,
        }
    }

    fn pb_conversation() -> pb::ConversationEvent {
        pb::ConversationEvent {
            session_id: s("S-1"),
            r#type: pb::ConversationEventType::Ended as i32,
            agent_id: s("agent-7"),
            channel: pb::Channel::Phone as i32,
            customer_id: s("cust:42"),
            first_reply_seconds: Some(12.5),
            valid: Some(true),
            handle_seconds: 300,
            order_id: String::new(),
            order_value: 0.0,
        }
    }

    fn pb_survey() -> pb::SurveyResponse {
        pb::SurveyResponse {
            response_id: s("R-1"),
            kind: pb::SurveyKind::Csat as i32,
            score: 4.0,
            ticket_id: s("T-1001"),
            session_id: String::new(),
            agent_id: s("agent-7"),
            customer_segment: String::new(),
        }
    }

    fn qa_item(key: &str) -> pb::QaItem {
        pb::QaItem {
            key: s(key),
            group: s("service"),
            passed: true,
            score: 90.0,
        }
    }

    fn violation() -> pb::Violation {
        pb::Violation {
            code: s("false_promise"),
            severity: pb::Severity::Major as i32,
            note: s("promised a refund"),
        }
    }

    fn pb_qa() -> pb::QaReview {
        pb::QaReview {
            review_id: s("QA-1"),
            agent_id: s("agent-7"),
            reviewer_id: s("lead@team-a"),
            ticket_id: s("T-1001"),
            session_id: String::new(),
            score: 85.5,
            items: vec![qa_item("greeting"), qa_item("closing"), qa_item("empathy")],
            violations: vec![violation()],
        }
    }

    fn pb_bad_review() -> pb::BadReviewEvent {
        pb::BadReviewEvent {
            review_id: s("BR-1"),
            r#type: pb::BadReviewEventType::Intercepted as i32,
            agent_id: s("agent-7"),
            order_id: s("O-9"),
        }
    }

    fn pb_visit() -> pb::FieldVisit {
        pb::FieldVisit {
            visit_id: s("V-1"),
            ticket_id: s("T-2002"),
            agent_id: s("tech-3"),
            visit_no: 2,
            reported_at: Some(ts(OCCURRED_S - 86_400)),
            scheduled_at: Some(ts(OCCURRED_S - 3_600)),
            arrived_at: Some(ts(OCCURRED_S)),
            resolved_on_visit: true,
        }
    }

    fn pb_assessment() -> pb::Assessment {
        pb::Assessment {
            assessment_id: s("AS-1"),
            agent_id: s("agent-7"),
            kind: s("knowledge"),
            score: 42.0,
            max_score: 50.0,
        }
    }

    fn pb_agent() -> pb::AgentUpsert {
        pb::AgentUpsert {
            agent_id: s("agent-7"),
            display_name: s("Zoë Example"),
            team_id: s("team-a"),
            role: s("tier1"),
            hired_on: s("2023-02-28"),
            active: true,
        }
    }

    fn pb_team() -> pb::TeamUpsert {
        pb::TeamUpsert {
            team_id: s("team-a"),
            display_name: s("Team A"),
            parent_team_id: s("org"),
            supervisor_id: String::new(),
        }
    }

    macro_rules! mutator {
        ($name:ident, $ty:ty, $base:ident, $variant:ident) => {
            fn $name(f: impl FnOnce(&mut $ty)) -> pb::Event {
                let mut p = $base();
                f(&mut p);
                event(P::$variant(p))
            }
        };
    }
    mutator!(ticket, pb::TicketEvent, pb_ticket, Ticket);
    mutator!(
        conversation,
        pb::ConversationEvent,
        pb_conversation,
        Conversation
    );
    mutator!(survey, pb::SurveyResponse, pb_survey, Survey);
    mutator!(qa, pb::QaReview, pb_qa, QaReview);
    mutator!(bad_review, pb::BadReviewEvent, pb_bad_review, BadReview);
    mutator!(visit, pb::FieldVisit, pb_visit, FieldVisit);
    mutator!(assessment, pb::Assessment, pb_assessment, Assessment);
    mutator!(agent, pb::AgentUpsert, pb_agent, Agent);
    mutator!(team, pb::TeamUpsert, pb_team, Team);

    /// A valid ticket event with the top-level event changed by `f`.
    fn top(f: impl FnOnce(&mut pb::Event)) -> pb::Event {
        let mut e = event(P::Ticket(pb_ticket()));
        f(&mut e);
        e
    }

    fn convert(e: &pb::Event) -> Result<dm::Event, Rejection> {
        event_from(e, "events", 3, now())
    }

    fn ok(e: &pb::Event) -> dm::Event {
        match convert(e) {
            Ok(v) => v,
            Err(r) => panic!("expected a valid event, got {r}"),
        }
    }

    fn payload(e: &pb::Event) -> dm::Payload {
        ok(e).payload
    }

    // ----- valid events ------------------------------------------------------

    #[test]
    fn valid_ticket_converts_whole() {
        let got = ok(&ticket(|_| {}));
        let want = dm::Event {
            event_id: s("evt-1"),
            occurred_at: at(OCCURRED_S),
            payload: dm::Payload::Ticket(dm::TicketEvent {
                ticket_id: s("T-1001"),
                event_type: dm::TicketEventType::Created,
                agent_id: Some(s("agent-7")),
                team_id: Some(s("team-a")),
                channel: Some(dm::Channel::Chat),
                category: Some(s("billing")),
                priority: Some(s("p2")),
                customer_id: Some(s("cust:42")),
                customer_segment: Some(s("vip")),
                is_complaint: true,
                escalation_level: None,
                handle_seconds: 120,
            }),
        };
        assert_eq!(got, want);
    }

    #[test]
    fn ticket_empty_strings_and_unspecified_enums_are_absent() {
        let got = payload(&ticket(|t| {
            t.r#type = pb::TicketEventType::CustomerReply as i32;
            t.agent_id.clear();
            t.team_id.clear();
            t.channel = 0;
            t.category.clear();
            t.priority.clear();
            t.customer_id.clear();
            t.customer_segment.clear();
            t.is_complaint = false;
            t.handle_seconds = 0;
        }));
        let want = dm::Payload::Ticket(dm::TicketEvent::new(
            s("T-1001"),
            dm::TicketEventType::CustomerReply,
        ));
        assert_eq!(got, want);
    }

    #[test]
    fn escalated_ticket_keeps_its_level() {
        let got = payload(&ticket(|t| {
            t.r#type = pb::TicketEventType::Escalated as i32;
            t.escalation_level = pb::EscalationLevel::Regulator as i32;
            t.handle_seconds = MAX_HANDLE_SECONDS;
        }));
        let dm::Payload::Ticket(t) = got else {
            panic!("not a ticket: {got:?}")
        };
        assert_eq!(t.escalation_level, Some(dm::EscalationLevel::Regulator));
        assert_eq!(t.handle_seconds, 86_400);
    }

    #[test]
    fn valid_conversation_converts() {
        let got = payload(&conversation(|_| {}));
        let want = dm::Payload::Conversation(dm::ConversationEvent {
            session_id: s("S-1"),
            event_type: dm::ConversationEventType::Ended,
            agent_id: Some(s("agent-7")),
            channel: Some(dm::Channel::Phone),
            customer_id: Some(s("cust:42")),
            first_reply_seconds: Some(12.5),
            valid: Some(true),
            handle_seconds: 300,
            order_id: None,
            order_value: None,
        });
        assert_eq!(got, want);
    }

    #[test]
    fn converted_conversation_keeps_order_value_even_zero() {
        let got = payload(&conversation(|c| {
            c.r#type = pb::ConversationEventType::Converted as i32;
            c.first_reply_seconds = None;
            c.valid = None;
            c.order_id = s("O-9");
            c.order_value = 0.0;
        }));
        let dm::Payload::Conversation(c) = got else {
            panic!("not a conversation: {got:?}")
        };
        assert_eq!(c.order_id.as_deref(), Some("O-9"));
        assert_eq!(c.order_value, Some(0.0));
        assert_eq!(c.first_reply_seconds, None);
        assert_eq!(c.valid, None);
    }

    #[test]
    fn valid_survey_converts() {
        let got = payload(&survey(|_| {}));
        let want = dm::Payload::Survey(dm::SurveyResponse {
            response_id: s("R-1"),
            kind: dm::SurveyKind::Csat,
            score: 4.0,
            ticket_id: Some(s("T-1001")),
            session_id: None,
            agent_id: Some(s("agent-7")),
            customer_segment: None,
        });
        assert_eq!(got, want);
    }

    #[test]
    fn survey_ranges_follow_the_kind() {
        for (kind, lo, hi) in [
            (pb::SurveyKind::Csat, 1.0, 5.0),
            (pb::SurveyKind::Nps, 0.0, 10.0),
            (pb::SurveyKind::Ces, 1.0, 7.0),
        ] {
            for score in [lo, hi] {
                let e = survey(|p| {
                    p.kind = kind as i32;
                    p.score = score;
                    p.ticket_id.clear();
                    p.session_id = s("S-1");
                });
                assert!(convert(&e).is_ok(), "{kind:?} {score}");
            }
            for score in [lo - 0.5, hi + 0.5] {
                let e = survey(|p| {
                    p.kind = kind as i32;
                    p.score = score;
                });
                let r = convert(&e).expect_err("out of range");
                assert_eq!(
                    (r.reason, r.field.as_str()),
                    (Reason::OutOfRange, "events[3].survey.score")
                );
            }
        }
    }

    #[test]
    fn valid_qa_review_converts_whole() {
        let got = ok(&qa(|_| {}));
        let item = |key: &str| dm::QaItem {
            key: s(key),
            group: s("service"),
            passed: true,
            score: 90.0,
        };
        let want = dm::Event {
            event_id: s("evt-1"),
            occurred_at: at(OCCURRED_S),
            payload: dm::Payload::QaReview(dm::QaReview {
                review_id: s("QA-1"),
                agent_id: s("agent-7"),
                reviewer_id: s("lead@team-a"),
                ticket_id: Some(s("T-1001")),
                session_id: None,
                score: 85.5,
                items: vec![item("greeting"), item("closing"), item("empathy")],
                violations: vec![dm::Violation {
                    code: s("false_promise"),
                    severity: dm::Severity::Major,
                    note: s("promised a refund"),
                }],
            }),
        };
        assert_eq!(got, want);
    }

    #[test]
    fn valid_bad_review_converts() {
        let got = payload(&bad_review(|_| {}));
        let want = dm::Payload::BadReview(dm::BadReviewEvent {
            review_id: s("BR-1"),
            event_type: dm::BadReviewEventType::Intercepted,
            agent_id: Some(s("agent-7")),
            order_id: Some(s("O-9")),
        });
        assert_eq!(got, want);
    }

    #[test]
    fn valid_field_visit_converts() {
        let got = payload(&visit(|_| {}));
        let want = dm::Payload::FieldVisit(dm::FieldVisit {
            visit_id: s("V-1"),
            ticket_id: s("T-2002"),
            agent_id: s("tech-3"),
            visit_no: 2,
            reported_at: Some(at(OCCURRED_S - 86_400)),
            scheduled_at: Some(at(OCCURRED_S - 3_600)),
            arrived_at: Some(at(OCCURRED_S)),
            resolved_on_visit: true,
        });
        assert_eq!(got, want);
    }

    #[test]
    fn field_visit_may_be_scheduled_ahead() {
        let got = payload(&visit(|v| {
            v.scheduled_at = Some(ts(NOW_S + 30 * 86_400));
            v.arrived_at = None;
        }));
        let dm::Payload::FieldVisit(v) = got else {
            panic!("not a visit: {got:?}")
        };
        assert_eq!(v.scheduled_at, Some(at(NOW_S + 30 * 86_400)));
        assert_eq!(v.arrived_at, None);
    }

    #[test]
    fn valid_assessment_converts() {
        let got = payload(&assessment(|_| {}));
        let want = dm::Payload::Assessment(dm::Assessment {
            assessment_id: s("AS-1"),
            agent_id: s("agent-7"),
            kind: s("knowledge"),
            score: 42.0,
            max_score: 50.0,
        });
        assert_eq!(got, want);
    }

    #[test]
    fn valid_agent_converts() {
        let got = payload(&agent(|_| {}));
        let want = dm::Payload::Agent(dm::AgentUpsert {
            agent_id: s("agent-7"),
            display_name: s("Zoë Example"),
            team_id: s("team-a"),
            role: s("tier1"),
            hired_on: NaiveDate::from_ymd_opt(2023, 2, 28),
            active: true,
        });
        assert_eq!(got, want);
    }

    #[test]
    fn valid_team_converts() {
        let got = payload(&team(|_| {}));
        let want = dm::Payload::Team(dm::TeamUpsert {
            team_id: s("team-a"),
            display_name: s("Team A"),
            parent_team_id: Some(s("org")),
            supervisor_id: None,
        });
        assert_eq!(got, want);
    }

    #[test]
    fn limits_are_inclusive() {
        // Ids of exactly MAX_ID_LEN, text of exactly MAX_TEXT_LEN characters
        // (multi-byte ones count once), the largest lists, the time bounds.
        let e = ticket(|t| {
            t.ticket_id = long(MAX_ID_LEN);
            t.category = "é".repeat(MAX_TEXT_LEN);
        });
        assert!(convert(&e).is_ok());
        let e = qa(|q| {
            q.items = vec![qa_item("k"); MAX_QA_ITEMS];
            q.violations = vec![violation(); MAX_VIOLATIONS];
        });
        assert!(convert(&e).is_ok());
        let e = top(|e| e.occurred_at = Some(ts(EARLIEST_SECONDS)));
        assert!(convert(&e).is_ok());
        let e = top(|e| e.occurred_at = Some(ts(NOW_S + 24 * 3_600)));
        assert!(convert(&e).is_ok());
        let e = top(|e| {
            e.occurred_at = Some(Timestamp {
                seconds: OCCURRED_S,
                nanos: 999_999_999,
            })
        });
        assert!(convert(&e).is_ok());
        let e = top(|e| e.event_id = s("a.b_c:d/e@f-G9"));
        assert!(convert(&e).is_ok());
    }

    #[test]
    fn reason_codes_are_stable() {
        let codes: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            codes,
            [
                "missing_field",
                "invalid_enum",
                "out_of_range",
                "invalid_timestamp",
                "too_long",
                "too_many",
                "invalid_id",
                "inconsistent"
            ]
        );
        assert_eq!(Reason::TooMany.to_string(), "too_many");
    }

    #[test]
    fn rejection_descriptions_name_allowed_enum_values() {
        let r = convert(&ticket(|t| t.r#type = 0)).expect_err("unspecified");
        assert!(r.description.contains("CREATED"), "{}", r.description);
        assert!(r.description.contains("ESCALATED"), "{}", r.description);
        let r = convert(&qa(|q| q.violations[0].severity = 9)).expect_err("unknown");
        assert!(r.description.contains("MINOR, MAJOR"), "{}", r.description);
        assert!(r.description.contains('9'), "{}", r.description);
    }

    // ----- rejections --------------------------------------------------------

    struct Case {
        name: &'static str,
        event: pb::Event,
        reason: Reason,
        field: &'static str,
    }

    fn case(name: &'static str, event: pb::Event, reason: Reason, field: &'static str) -> Case {
        Case {
            name,
            event,
            reason,
            field,
        }
    }

    fn rejection_cases() -> Vec<Case> {
        use Reason::*;
        use pb::TicketEventType as Tt;
        let typed = |ty: Tt| move |t: &mut pb::TicketEvent| t.r#type = ty as i32;
        vec![
            // event_id
            case(
                "event_id missing",
                top(|e| e.event_id.clear()),
                MissingField,
                "events[3].event_id",
            ),
            case(
                "event_id too long",
                top(|e| e.event_id = long(MAX_ID_LEN + 1)),
                TooLong,
                "events[3].event_id",
            ),
            case(
                "event_id with spaces",
                top(|e| e.event_id = s(" evt-1 ")),
                InvalidId,
                "events[3].event_id",
            ),
            case(
                "event_id non-ascii",
                top(|e| e.event_id = s("évt")),
                InvalidId,
                "events[3].event_id",
            ),
            case(
                "event_id control char",
                top(|e| e.event_id = s("evt\n1")),
                InvalidId,
                "events[3].event_id",
            ),
            case(
                "event_id checked before payload",
                top(|e| {
                    e.event_id.clear();
                    e.payload = None;
                }),
                MissingField,
                "events[3].event_id",
            ),
            // occurred_at
            case(
                "occurred_at missing",
                top(|e| e.occurred_at = None),
                MissingField,
                "events[3].occurred_at",
            ),
            case(
                "occurred_at negative nanos",
                top(|e| {
                    e.occurred_at = Some(Timestamp {
                        seconds: OCCURRED_S,
                        nanos: -1,
                    })
                }),
                InvalidTimestamp,
                "events[3].occurred_at",
            ),
            case(
                "occurred_at nanos overflow",
                top(|e| {
                    e.occurred_at = Some(Timestamp {
                        seconds: OCCURRED_S,
                        nanos: 1_000_000_000,
                    })
                }),
                InvalidTimestamp,
                "events[3].occurred_at",
            ),
            case(
                "occurred_at before 2000",
                top(|e| e.occurred_at = Some(ts(EARLIEST_SECONDS - 1))),
                InvalidTimestamp,
                "events[3].occurred_at",
            ),
            case(
                "occurred_at far past",
                top(|e| e.occurred_at = Some(ts(i64::MIN))),
                InvalidTimestamp,
                "events[3].occurred_at",
            ),
            case(
                "occurred_at > now + 24h",
                top(|e| e.occurred_at = Some(ts(NOW_S + 24 * 3_600 + 1))),
                InvalidTimestamp,
                "events[3].occurred_at",
            ),
            case(
                "occurred_at unrepresentable",
                top(|e| e.occurred_at = Some(ts(i64::MAX))),
                InvalidTimestamp,
                "events[3].occurred_at",
            ),
            // payload
            case(
                "payload missing",
                top(|e| e.payload = None),
                MissingField,
                "events[3].payload",
            ),
            // ticket
            case(
                "ticket_id missing",
                ticket(|t| t.ticket_id.clear()),
                MissingField,
                "events[3].ticket.ticket_id",
            ),
            case(
                "ticket_id first wins over bad type",
                ticket(|t| {
                    t.ticket_id.clear();
                    t.r#type = 0;
                }),
                MissingField,
                "events[3].ticket.ticket_id",
            ),
            case(
                "ticket_id bad char",
                ticket(|t| t.ticket_id = s("T#1")),
                InvalidId,
                "events[3].ticket.ticket_id",
            ),
            case(
                "ticket type unspecified",
                ticket(|t| t.r#type = 0),
                InvalidEnum,
                "events[3].ticket.type",
            ),
            case(
                "ticket type unknown",
                ticket(|t| t.r#type = 99),
                InvalidEnum,
                "events[3].ticket.type",
            ),
            case(
                "ticket type negative",
                ticket(|t| t.r#type = -1),
                InvalidEnum,
                "events[3].ticket.type",
            ),
            case(
                "first_response without agent",
                ticket(|t| {
                    typed(Tt::FirstResponse)(t);
                    t.agent_id.clear();
                }),
                MissingField,
                "events[3].ticket.agent_id",
            ),
            case(
                "agent_reply without agent",
                ticket(|t| {
                    typed(Tt::AgentReply)(t);
                    t.agent_id.clear();
                }),
                MissingField,
                "events[3].ticket.agent_id",
            ),
            case(
                "resolved without agent",
                ticket(|t| {
                    typed(Tt::Resolved)(t);
                    t.agent_id.clear();
                }),
                MissingField,
                "events[3].ticket.agent_id",
            ),
            case(
                "assigned without agent",
                ticket(|t| {
                    typed(Tt::Assigned)(t);
                    t.agent_id.clear();
                }),
                MissingField,
                "events[3].ticket.agent_id",
            ),
            case(
                "transferred without agent",
                ticket(|t| {
                    typed(Tt::Transferred)(t);
                    t.agent_id.clear();
                }),
                MissingField,
                "events[3].ticket.agent_id",
            ),
            case(
                "ticket agent_id with space",
                ticket(|t| t.agent_id = s("agent 7")),
                InvalidId,
                "events[3].ticket.agent_id",
            ),
            case(
                "ticket team_id too long",
                ticket(|t| t.team_id = long(MAX_ID_LEN + 1)),
                TooLong,
                "events[3].ticket.team_id",
            ),
            case(
                "ticket channel unknown",
                ticket(|t| t.channel = 42),
                InvalidEnum,
                "events[3].ticket.channel",
            ),
            case(
                "created without channel",
                ticket(|t| t.channel = 0),
                MissingField,
                "events[3].ticket.channel",
            ),
            case(
                "ticket category too long",
                ticket(|t| t.category = long(MAX_TEXT_LEN + 1)),
                TooLong,
                "events[3].ticket.category",
            ),
            case(
                "ticket priority too long",
                ticket(|t| t.priority = long(MAX_TEXT_LEN + 1)),
                TooLong,
                "events[3].ticket.priority",
            ),
            case(
                "created without customer",
                ticket(|t| t.customer_id.clear()),
                MissingField,
                "events[3].ticket.customer_id",
            ),
            case(
                "ticket customer_id trailing space",
                ticket(|t| t.customer_id = s("cust:42 ")),
                InvalidId,
                "events[3].ticket.customer_id",
            ),
            case(
                "ticket customer_segment too long",
                ticket(|t| t.customer_segment = long(MAX_TEXT_LEN + 1)),
                TooLong,
                "events[3].ticket.customer_segment",
            ),
            case(
                "escalated without level",
                ticket(typed(Tt::Escalated)),
                MissingField,
                "events[3].ticket.escalation_level",
            ),
            case(
                "escalation level unknown",
                ticket(|t| t.escalation_level = 7),
                InvalidEnum,
                "events[3].ticket.escalation_level",
            ),
            case(
                "ticket handle_seconds negative",
                ticket(|t| t.handle_seconds = -1),
                OutOfRange,
                "events[3].ticket.handle_seconds",
            ),
            case(
                "ticket handle_seconds over a day",
                ticket(|t| t.handle_seconds = MAX_HANDLE_SECONDS + 1),
                OutOfRange,
                "events[3].ticket.handle_seconds",
            ),
            case(
                "ticket handle_seconds huge",
                ticket(|t| t.handle_seconds = i64::MAX),
                OutOfRange,
                "events[3].ticket.handle_seconds",
            ),
            // conversation
            case(
                "session_id missing",
                conversation(|c| c.session_id.clear()),
                MissingField,
                "events[3].conversation.session_id",
            ),
            case(
                "conversation type unspecified",
                conversation(|c| c.r#type = 0),
                InvalidEnum,
                "events[3].conversation.type",
            ),
            case(
                "conversation agent_id invalid",
                conversation(|c| c.agent_id = s("a\tb")),
                InvalidId,
                "events[3].conversation.agent_id",
            ),
            case(
                "conversation channel unknown",
                conversation(|c| c.channel = 6),
                InvalidEnum,
                "events[3].conversation.channel",
            ),
            case(
                "conversation customer_id too long",
                conversation(|c| c.customer_id = long(200)),
                TooLong,
                "events[3].conversation.customer_id",
            ),
            case(
                "first_reply_seconds negative",
                conversation(|c| c.first_reply_seconds = Some(-0.5)),
                OutOfRange,
                "events[3].conversation.first_reply_seconds",
            ),
            case(
                "first_reply_seconds NaN",
                conversation(|c| c.first_reply_seconds = Some(f64::NAN)),
                OutOfRange,
                "events[3].conversation.first_reply_seconds",
            ),
            case(
                "conversation handle_seconds over a day",
                conversation(|c| c.handle_seconds = 100_000),
                OutOfRange,
                "events[3].conversation.handle_seconds",
            ),
            case(
                "order_id invalid",
                conversation(|c| c.order_id = s("O 9")),
                InvalidId,
                "events[3].conversation.order_id",
            ),
            case(
                "order_value negative",
                conversation(|c| c.order_value = -1.0),
                OutOfRange,
                "events[3].conversation.order_value",
            ),
            case(
                "order_value infinite",
                conversation(|c| c.order_value = f64::INFINITY),
                OutOfRange,
                "events[3].conversation.order_value",
            ),
            // survey
            case(
                "response_id missing",
                survey(|p| p.response_id.clear()),
                MissingField,
                "events[3].survey.response_id",
            ),
            case(
                "survey kind unspecified",
                survey(|p| p.kind = 0),
                InvalidEnum,
                "events[3].survey.kind",
            ),
            case(
                "survey kind unknown",
                survey(|p| p.kind = 4),
                InvalidEnum,
                "events[3].survey.kind",
            ),
            case(
                "csat 0",
                survey(|p| p.score = 0.0),
                OutOfRange,
                "events[3].survey.score",
            ),
            case(
                "csat 6",
                survey(|p| p.score = 6.0),
                OutOfRange,
                "events[3].survey.score",
            ),
            case(
                "nps 11",
                survey(|p| {
                    p.kind = pb::SurveyKind::Nps as i32;
                    p.score = 11.0;
                }),
                OutOfRange,
                "events[3].survey.score",
            ),
            case(
                "ces 8",
                survey(|p| {
                    p.kind = pb::SurveyKind::Ces as i32;
                    p.score = 8.0;
                }),
                OutOfRange,
                "events[3].survey.score",
            ),
            case(
                "survey score NaN",
                survey(|p| p.score = f64::NAN),
                OutOfRange,
                "events[3].survey.score",
            ),
            case(
                "survey ticket_id invalid",
                survey(|p| p.ticket_id = s("T 1")),
                InvalidId,
                "events[3].survey.ticket_id",
            ),
            case(
                "survey session_id invalid",
                survey(|p| p.session_id = s("S!")),
                InvalidId,
                "events[3].survey.session_id",
            ),
            case(
                "survey rates nothing",
                survey(|p| {
                    p.ticket_id.clear();
                    p.session_id.clear();
                }),
                MissingField,
                "events[3].survey.ticket_id",
            ),
            case(
                "survey agent_id invalid",
                survey(|p| p.agent_id = s("ag ent")),
                InvalidId,
                "events[3].survey.agent_id",
            ),
            case(
                "survey segment too long",
                survey(|p| p.customer_segment = long(MAX_TEXT_LEN + 1)),
                TooLong,
                "events[3].survey.customer_segment",
            ),
            // qa review
            case(
                "qa review_id missing",
                qa(|q| q.review_id.clear()),
                MissingField,
                "events[3].qa_review.review_id",
            ),
            case(
                "qa agent_id missing",
                qa(|q| q.agent_id.clear()),
                MissingField,
                "events[3].qa_review.agent_id",
            ),
            case(
                "qa reviewer_id missing",
                qa(|q| q.reviewer_id.clear()),
                MissingField,
                "events[3].qa_review.reviewer_id",
            ),
            case(
                "qa ticket_id invalid",
                qa(|q| q.ticket_id = s("T,1")),
                InvalidId,
                "events[3].qa_review.ticket_id",
            ),
            case(
                "qa session_id too long",
                qa(|q| q.session_id = long(129)),
                TooLong,
                "events[3].qa_review.session_id",
            ),
            case(
                "qa score over 100",
                qa(|q| q.score = 100.5),
                OutOfRange,
                "events[3].qa_review.score",
            ),
            case(
                "qa score negative",
                qa(|q| q.score = -1.0),
                OutOfRange,
                "events[3].qa_review.score",
            ),
            case(
                "qa too many items",
                qa(|q| q.items = vec![qa_item("k"); MAX_QA_ITEMS + 1]),
                TooMany,
                "events[3].qa_review.items",
            ),
            case(
                "qa item key missing",
                qa(|q| q.items[2].key.clear()),
                MissingField,
                "events[3].qa_review.items[2].key",
            ),
            case(
                "qa item key too long",
                qa(|q| q.items[0].key = long(MAX_TEXT_LEN + 1)),
                TooLong,
                "events[3].qa_review.items[0].key",
            ),
            case(
                "qa item group missing",
                qa(|q| q.items[1].group.clear()),
                MissingField,
                "events[3].qa_review.items[1].group",
            ),
            case(
                "qa item group too long",
                qa(|q| q.items[1].group = long(MAX_TEXT_LEN + 1)),
                TooLong,
                "events[3].qa_review.items[1].group",
            ),
            case(
                "qa item score over 100",
                qa(|q| q.items[2].score = 150.0),
                OutOfRange,
                "events[3].qa_review.items[2].score",
            ),
            case(
                "qa item score NaN",
                qa(|q| q.items[0].score = f64::NAN),
                OutOfRange,
                "events[3].qa_review.items[0].score",
            ),
            case(
                "qa too many violations",
                qa(|q| q.violations = vec![violation(); MAX_VIOLATIONS + 1]),
                TooMany,
                "events[3].qa_review.violations",
            ),
            case(
                "qa violation code missing",
                qa(|q| q.violations[0].code.clear()),
                MissingField,
                "events[3].qa_review.violations[0].code",
            ),
            case(
                "qa violation code too long",
                qa(|q| q.violations[0].code = long(MAX_TEXT_LEN + 1)),
                TooLong,
                "events[3].qa_review.violations[0].code",
            ),
            case(
                "qa violation severity unspecified",
                qa(|q| q.violations[0].severity = 0),
                InvalidEnum,
                "events[3].qa_review.violations[0].severity",
            ),
            case(
                "qa violation note too long",
                qa(|q| q.violations[0].note = long(MAX_TEXT_LEN + 1)),
                TooLong,
                "events[3].qa_review.violations[0].note",
            ),
            // bad review
            case(
                "bad_review review_id missing",
                bad_review(|b| b.review_id.clear()),
                MissingField,
                "events[3].bad_review.review_id",
            ),
            case(
                "bad_review type unspecified",
                bad_review(|b| b.r#type = 0),
                InvalidEnum,
                "events[3].bad_review.type",
            ),
            case(
                "bad_review agent_id invalid",
                bad_review(|b| b.agent_id = s("agent#7")),
                InvalidId,
                "events[3].bad_review.agent_id",
            ),
            case(
                "bad_review order_id too long",
                bad_review(|b| b.order_id = long(MAX_ID_LEN + 1)),
                TooLong,
                "events[3].bad_review.order_id",
            ),
            // field visit
            case(
                "visit_id missing",
                visit(|v| v.visit_id.clear()),
                MissingField,
                "events[3].field_visit.visit_id",
            ),
            case(
                "visit ticket_id missing",
                visit(|v| v.ticket_id.clear()),
                MissingField,
                "events[3].field_visit.ticket_id",
            ),
            case(
                "visit agent_id missing",
                visit(|v| v.agent_id.clear()),
                MissingField,
                "events[3].field_visit.agent_id",
            ),
            case(
                "visit_no zero",
                visit(|v| v.visit_no = 0),
                OutOfRange,
                "events[3].field_visit.visit_no",
            ),
            case(
                "visit_no negative",
                visit(|v| v.visit_no = -2),
                OutOfRange,
                "events[3].field_visit.visit_no",
            ),
            case(
                "visit reported_at bad nanos",
                visit(|v| {
                    v.reported_at = Some(Timestamp {
                        seconds: OCCURRED_S,
                        nanos: -5,
                    })
                }),
                InvalidTimestamp,
                "events[3].field_visit.reported_at",
            ),
            case(
                "visit reported_at in the future",
                visit(|v| v.reported_at = Some(ts(NOW_S + 2 * 86_400))),
                InvalidTimestamp,
                "events[3].field_visit.reported_at",
            ),
            case(
                "visit scheduled_at before 2000",
                visit(|v| v.scheduled_at = Some(ts(0))),
                InvalidTimestamp,
                "events[3].field_visit.scheduled_at",
            ),
            case(
                "visit scheduled_at two years ahead",
                visit(|v| v.scheduled_at = Some(ts(NOW_S + 2 * 365 * 86_400))),
                InvalidTimestamp,
                "events[3].field_visit.scheduled_at",
            ),
            case(
                "visit arrived before reported",
                visit(|v| v.arrived_at = Some(ts(OCCURRED_S - 2 * 86_400))),
                Inconsistent,
                "events[3].field_visit.arrived_at",
            ),
            // assessment
            case(
                "assessment_id missing",
                assessment(|a| a.assessment_id.clear()),
                MissingField,
                "events[3].assessment.assessment_id",
            ),
            case(
                "assessment agent_id missing",
                assessment(|a| a.agent_id.clear()),
                MissingField,
                "events[3].assessment.agent_id",
            ),
            case(
                "assessment kind missing",
                assessment(|a| a.kind.clear()),
                MissingField,
                "events[3].assessment.kind",
            ),
            case(
                "assessment kind too long",
                assessment(|a| a.kind = long(MAX_TEXT_LEN + 1)),
                TooLong,
                "events[3].assessment.kind",
            ),
            case(
                "assessment score negative",
                assessment(|a| a.score = -1.0),
                OutOfRange,
                "events[3].assessment.score",
            ),
            case(
                "assessment max_score zero",
                assessment(|a| a.max_score = 0.0),
                OutOfRange,
                "events[3].assessment.max_score",
            ),
            case(
                "assessment max_score NaN",
                assessment(|a| a.max_score = f64::NAN),
                OutOfRange,
                "events[3].assessment.max_score",
            ),
            case(
                "assessment score above max",
                assessment(|a| a.score = 50.5),
                OutOfRange,
                "events[3].assessment.score",
            ),
            // agent
            case(
                "agent agent_id missing",
                agent(|a| a.agent_id.clear()),
                MissingField,
                "events[3].agent.agent_id",
            ),
            case(
                "agent display_name too long",
                agent(|a| a.display_name = long(MAX_TEXT_LEN + 1)),
                TooLong,
                "events[3].agent.display_name",
            ),
            case(
                "agent team_id missing",
                agent(|a| a.team_id.clear()),
                MissingField,
                "events[3].agent.team_id",
            ),
            case(
                "agent role missing",
                agent(|a| a.role.clear()),
                MissingField,
                "events[3].agent.role",
            ),
            case(
                "agent role too long",
                agent(|a| a.role = long(MAX_TEXT_LEN + 1)),
                TooLong,
                "events[3].agent.role",
            ),
            case(
                "agent hired_on bad month",
                agent(|a| a.hired_on = s("2023-13-01")),
                InvalidTimestamp,
                "events[3].agent.hired_on",
            ),
            case(
                "agent hired_on not zero-padded",
                agent(|a| a.hired_on = s("2023-2-28")),
                InvalidTimestamp,
                "events[3].agent.hired_on",
            ),
            case(
                "agent hired_on RFC 3339",
                agent(|a| a.hired_on = s("2023-02-28T00:00:00Z")),
                InvalidTimestamp,
                "events[3].agent.hired_on",
            ),
            case(
                "agent hired_on Feb 30",
                agent(|a| a.hired_on = s("2023-02-30")),
                InvalidTimestamp,
                "events[3].agent.hired_on",
            ),
            // team
            case(
                "team team_id missing",
                team(|t| t.team_id.clear()),
                MissingField,
                "events[3].team.team_id",
            ),
            case(
                "team display_name too long",
                team(|t| t.display_name = long(MAX_TEXT_LEN + 1)),
                TooLong,
                "events[3].team.display_name",
            ),
            case(
                "team parent invalid",
                team(|t| t.parent_team_id = s("or g")),
                InvalidId,
                "events[3].team.parent_team_id",
            ),
            case(
                "team supervisor too long",
                team(|t| t.supervisor_id = long(MAX_ID_LEN + 1)),
                TooLong,
                "events[3].team.supervisor_id",
            ),
        ]
    }

    #[test]
    fn each_rule_rejects_with_reason_and_field() {
        let cases = rejection_cases();
        assert!(cases.len() >= 30);
        let mut failures = Vec::new();
        for c in &cases {
            match convert(&c.event) {
                Ok(_) => failures.push(format!("{}: accepted", c.name)),
                Err(r) => {
                    if (r.reason, r.field.as_str()) != (c.reason, c.field) {
                        failures.push(format!(
                            "{}: want {} at {}, got {} at {} ({})",
                            c.name, c.reason, c.field, r.reason, r.field, r.description
                        ));
                    }
                    if r.description.is_empty() {
                        failures.push(format!("{}: empty description", c.name));
                    }
                }
            }
        }
        assert!(
            failures.is_empty(),
            "{} failing case(s):\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    // ----- property ----------------------------------------------------------

    fn any_string() -> BoxedStrategy<String> {
        prop_oneof![
            Just(String::new()),
            "[A-Za-z0-9._:/@-]{1,12}",
            "[ -~]{0,12}",
            any::<String>(),
            "[a-z]{120,140}",
        ]
        .boxed()
    }

    fn any_f64() -> BoxedStrategy<f64> {
        prop_oneof![
            any::<f64>(),
            -10.0..110.0f64,
            (0u8..=10).prop_map(f64::from)
        ]
        .boxed()
    }

    fn any_enum() -> BoxedStrategy<i32> {
        prop_oneof![4 => 0..13i32, 1 => any::<i32>()].boxed()
    }

    fn any_ts() -> BoxedStrategy<Option<Timestamp>> {
        prop_oneof![
            Just(None),
            (
                EARLIEST_SECONDS - 10..NOW_S + 3 * 86_400,
                0..1_000_000_000i32
            )
                .prop_map(|(seconds, nanos)| Some(Timestamp { seconds, nanos })),
            (any::<i64>(), any::<i32>())
                .prop_map(|(seconds, nanos)| Some(Timestamp { seconds, nanos })),
        ]
        .boxed()
    }

    fn any_i64() -> BoxedStrategy<i64> {
        prop_oneof![-10..100_000i64, any::<i64>()].boxed()
    }

    fn any_payload() -> BoxedStrategy<P> {
        prop_oneof![
            (
                any_string(),
                any_enum(),
                any_string(),
                any_string(),
                any_enum(),
                any_string(),
                any_string(),
                any::<bool>(),
                any_enum(),
                any_i64()
            )
                .prop_map(
                    |(
                        ticket_id,
                        ty,
                        agent_id,
                        team_id,
                        channel,
                        category,
                        customer_id,
                        is_complaint,
                        escalation_level,
                        handle_seconds,
                    )| {
                        P::Ticket(pb::TicketEvent {
                            ticket_id,
                            r#type: ty,
                            agent_id,
                            team_id,
                            channel,
                            category: category.clone(),
                            priority: category.clone(),
                            customer_id,
                            customer_segment: category,
                            is_complaint,
                            escalation_level,
                            handle_seconds,
                        })
                    }
                )
                .boxed(),
            (
                any_string(),
                any_enum(),
                any_string(),
                any_enum(),
                proptest::option::of(any_f64()),
                proptest::option::of(any::<bool>()),
                any_i64(),
                any_string(),
                any_f64()
            )
                .prop_map(
                    |(
                        session_id,
                        ty,
                        agent_id,
                        channel,
                        first_reply_seconds,
                        valid,
                        handle_seconds,
                        order_id,
                        order_value,
                    )| {
                        P::Conversation(pb::ConversationEvent {
                            session_id,
                            r#type: ty,
                            agent_id: agent_id.clone(),
                            channel,
                            customer_id: agent_id,
                            first_reply_seconds,
                            valid,
                            handle_seconds,
                            order_id,
                            order_value,
                        })
                    }
                )
                .boxed(),
            (
                any_string(),
                any_enum(),
                any_f64(),
                any_string(),
                any_string(),
                any_string()
            )
                .prop_map(
                    |(response_id, kind, score, ticket_id, session_id, agent_id)| {
                        P::Survey(pb::SurveyResponse {
                            response_id,
                            kind,
                            score,
                            ticket_id,
                            session_id,
                            agent_id: agent_id.clone(),
                            customer_segment: agent_id,
                        })
                    }
                )
                .boxed(),
            (
                any_string(),
                any_string(),
                any_f64(),
                proptest::collection::vec(
                    (any_string(), any_string(), any::<bool>(), any_f64()),
                    0..4
                ),
                proptest::collection::vec((any_string(), any_enum(), any_string()), 0..3),
            )
                .prop_map(|(review_id, agent_id, score, items, violations)| {
                    P::QaReview(pb::QaReview {
                        review_id,
                        agent_id: agent_id.clone(),
                        reviewer_id: agent_id.clone(),
                        ticket_id: agent_id,
                        session_id: String::new(),
                        score,
                        items: items
                            .into_iter()
                            .map(|(key, group, passed, score)| pb::QaItem {
                                key,
                                group,
                                passed,
                                score,
                            })
                            .collect(),
                        violations: violations
                            .into_iter()
                            .map(|(code, severity, note)| pb::Violation {
                                code,
                                severity,
                                note,
                            })
                            .collect(),
                    })
                })
                .boxed(),
            (any_string(), any_enum(), any_string())
                .prop_map(|(review_id, ty, agent_id)| {
                    P::BadReview(pb::BadReviewEvent {
                        review_id,
                        r#type: ty,
                        agent_id: agent_id.clone(),
                        order_id: agent_id,
                    })
                })
                .boxed(),
            (
                any_string(),
                any_string(),
                any::<i32>(),
                any_ts(),
                any_ts(),
                any_ts(),
                any::<bool>()
            )
                .prop_map(
                    |(
                        visit_id,
                        agent_id,
                        visit_no,
                        reported_at,
                        scheduled_at,
                        arrived_at,
                        resolved_on_visit,
                    )| {
                        P::FieldVisit(pb::FieldVisit {
                            visit_id,
                            ticket_id: agent_id.clone(),
                            agent_id,
                            visit_no,
                            reported_at,
                            scheduled_at,
                            arrived_at,
                            resolved_on_visit,
                        })
                    }
                )
                .boxed(),
            (
                any_string(),
                any_string(),
                any_string(),
                any_f64(),
                any_f64()
            )
                .prop_map(|(assessment_id, agent_id, kind, score, max_score)| {
                    P::Assessment(pb::Assessment {
                        assessment_id,
                        agent_id,
                        kind,
                        score,
                        max_score,
                    })
                })
                .boxed(),
            (
                any_string(),
                any_string(),
                any_string(),
                prop_oneof![any_string(), "[0-9]{4}-[0-9]{2}-[0-9]{2}"],
                any::<bool>()
            )
                .prop_map(|(agent_id, display_name, team_id, hired_on, active)| {
                    P::Agent(pb::AgentUpsert {
                        agent_id,
                        display_name: display_name.clone(),
                        team_id,
                        role: display_name,
                        hired_on,
                        active,
                    })
                })
                .boxed(),
            (any_string(), any_string(), any_string())
                .prop_map(|(team_id, display_name, parent_team_id)| {
                    P::Team(pb::TeamUpsert {
                        team_id,
                        display_name,
                        supervisor_id: parent_team_id.clone(),
                        parent_team_id,
                    })
                })
                .boxed(),
        ]
        .boxed()
    }

    fn any_event() -> BoxedStrategy<pb::Event> {
        (
            any_string(),
            any_ts(),
            proptest::option::weighted(0.95, any_payload()),
        )
            .prop_map(|(event_id, occurred_at, payload)| pb::Event {
                event_id,
                occurred_at,
                payload,
            })
            .boxed()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn arbitrary_events_convert_or_reject_under_their_path(ev in any_event(), index in 0usize..5_000) {
            let path = format!("events[{index}]");
            match event_from(&ev, "events", index, now()) {
                Ok(e) => {
                    prop_assert_eq!(&e.event_id, &ev.event_id);
                    prop_assert!(e.occurred_at <= now() + TimeDelta::hours(24));
                    prop_assert_eq!(e.payload.entity_id().is_empty(), false);
                }
                Err(r) => {
                    let prefix = format!("{path}.");
                    prop_assert!(r.field.starts_with(&prefix), "{} not under {}", r.field, path);
                    prop_assert!(!r.description.is_empty());
                }
            }
        }
    }
}
