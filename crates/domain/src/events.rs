//! Ingested events, validated: what backend systems send, in types that
//! cannot hold bad values (ids non-empty, scores in range, enums known).
//! Conversion from the protos (with field-path rejections) happens at the
//! edge, in data-ingestion; the event store keeps these as JSON.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

mod utc_json;

/// One accepted event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The sender's idempotency key.
    pub event_id: String,
    /// When it happened.
    #[serde(serialize_with = "utc_json::serialize")]
    pub occurred_at: DateTime<Utc>,
    /// What happened.
    pub payload: Payload,
}

/// The typed payload of an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Payload {
    /// A ticket lifecycle event.
    Ticket(TicketEvent),
    /// A chat or phone session event.
    Conversation(ConversationEvent),
    /// A survey response.
    Survey(SurveyResponse),
    /// A QA review.
    QaReview(QaReview),
    /// A bad review or its interception.
    BadReview(BadReviewEvent),
    /// An on-site visit.
    FieldVisit(FieldVisit),
    /// An assessment result.
    Assessment(Assessment),
    /// A roster change for an agent.
    Agent(AgentUpsert),
    /// A roster change for a team.
    Team(TeamUpsert),
}

impl Payload {
    /// The kind of entity the event is about, as stored: "ticket", "agent"…
    pub fn kind(&self) -> &'static str {
        match self {
            Payload::Ticket(_) => "ticket",
            Payload::Conversation(_) => "conversation",
            Payload::Survey(_) => "survey",
            Payload::QaReview(_) => "qa_review",
            Payload::BadReview(_) => "bad_review",
            Payload::FieldVisit(_) => "field_visit",
            Payload::Assessment(_) => "assessment",
            Payload::Agent(_) => "agent",
            Payload::Team(_) => "team",
        }
    }

    /// The id of the entity the event is about (ticket id, session id…).
    pub fn entity_id(&self) -> &str {
        match self {
            Payload::Ticket(e) => &e.ticket_id,
            Payload::Conversation(e) => &e.session_id,
            Payload::Survey(e) => &e.response_id,
            Payload::QaReview(e) => &e.review_id,
            Payload::BadReview(e) => &e.review_id,
            Payload::FieldVisit(e) => &e.visit_id,
            Payload::Assessment(e) => &e.assessment_id,
            Payload::Agent(e) => &e.agent_id,
            Payload::Team(e) => &e.team_id,
        }
    }
}

/// What happened to a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketEventType {
    /// Opened.
    Created,
    /// Assigned to an agent.
    Assigned,
    /// Moved to another agent or team.
    Transferred,
    /// A bot handed over to a human; time before it does not count.
    BotHandoff,
    /// First agent reply.
    FirstResponse,
    /// An agent reply.
    AgentReply,
    /// The customer wrote or called again.
    CustomerReply,
    /// Resolved.
    Resolved,
    /// Reopened after a resolution.
    Reopened,
    /// Closed.
    Closed,
    /// Escalated.
    Escalated,
}

/// Ticket channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Phone.
    Phone,
    /// Chat.
    Chat,
    /// Email.
    Email,
    /// Social media.
    Social,
    /// On site.
    Onsite,
}

impl Channel {
    /// The name used in facts and filters.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Phone => "phone",
            Channel::Chat => "chat",
            Channel::Email => "email",
            Channel::Social => "social",
            Channel::Onsite => "onsite",
        }
    }
}

/// Escalation levels, ordered from none to media.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationLevel {
    /// Not escalated.
    None,
    /// Inside the company.
    Internal,
    /// To a regulator.
    Regulator,
    /// To the media.
    Media,
}

impl EscalationLevel {
    /// The name used in facts and filters.
    pub fn as_str(self) -> &'static str {
        match self {
            EscalationLevel::None => "none",
            EscalationLevel::Internal => "internal",
            EscalationLevel::Regulator => "regulator",
            EscalationLevel::Media => "media",
        }
    }
}

/// One ticket lifecycle event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketEvent {
    /// The ticket.
    pub ticket_id: String,
    /// What happened.
    #[serde(rename = "type")]
    pub event_type: TicketEventType,
    /// The acting agent, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// The acting agent's team as the sender knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
    /// The channel (set on creation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    /// The category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// The priority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    /// The customer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// The customer segment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_segment: Option<String>,
    /// Marks the ticket as a complaint.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_complaint: bool,
    /// The level reached (escalations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation_level: Option<EscalationLevel>,
    /// Agent work time carried by this event, in seconds.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub handle_seconds: u32,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl TicketEvent {
    /// An event of `event_type` for `ticket_id` with nothing else set.
    pub fn new(ticket_id: impl Into<String>, event_type: TicketEventType) -> Self {
        Self {
            ticket_id: ticket_id.into(),
            event_type,
            agent_id: None,
            team_id: None,
            channel: None,
            category: None,
            priority: None,
            customer_id: None,
            customer_segment: None,
            is_complaint: false,
            escalation_level: None,
            handle_seconds: 0,
        }
    }
}

/// What happened in a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationEventType {
    /// Started.
    Started,
    /// Ended.
    Ended,
    /// An order followed.
    Converted,
}

/// One session event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationEvent {
    /// The session.
    pub session_id: String,
    /// What happened.
    #[serde(rename = "type")]
    pub event_type: ConversationEventType,
    /// The agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// The channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    /// The customer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// Ended: seconds to the first agent reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_reply_seconds: Option<f64>,
    /// Ended: whether the session was real.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid: Option<bool>,
    /// Agent work time in seconds.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub handle_seconds: u32,
    /// Converted: the order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// Converted: the order value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_value: Option<f64>,
}

/// Survey kinds with their score ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SurveyKind {
    /// 1–5.
    Csat,
    /// 0–10.
    Nps,
    /// 1–7.
    Ces,
}

impl SurveyKind {
    /// The valid score range, inclusive.
    pub fn range(self) -> (f64, f64) {
        match self {
            SurveyKind::Csat => (1.0, 5.0),
            SurveyKind::Nps => (0.0, 10.0),
            SurveyKind::Ces => (1.0, 7.0),
        }
    }

    /// The name used in facts and filters.
    pub fn as_str(self) -> &'static str {
        match self {
            SurveyKind::Csat => "csat",
            SurveyKind::Nps => "nps",
            SurveyKind::Ces => "ces",
        }
    }
}

/// One survey response; the event time is the response time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SurveyResponse {
    /// The response.
    pub response_id: String,
    /// The kind.
    pub kind: SurveyKind,
    /// The score, within the kind's range.
    pub score: f64,
    /// The ticket rated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_id: Option<String>,
    /// The session rated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The rated agent; none means the ticket's resolving agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// The customer segment; none means the ticket's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_segment: Option<String>,
}

/// One checked item of a QA review.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QaItem {
    /// The item key.
    pub key: String,
    /// The item group, e.g. "compliance".
    pub group: String,
    /// Whether it passed.
    pub passed: bool,
    /// Its score 0–100.
    pub score: f64,
}

/// Violation severities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Minor.
    Minor,
    /// Major.
    Major,
}

impl Severity {
    /// The name used in facts and filters.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Minor => "minor",
            Severity::Major => "major",
        }
    }
}

/// One compliance violation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    /// The code, e.g. "false_promise".
    pub code: String,
    /// The severity.
    pub severity: Severity,
    /// A note.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// One QA review; the event time is the review time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QaReview {
    /// The review.
    pub review_id: String,
    /// The agent reviewed.
    pub agent_id: String,
    /// The reviewer.
    pub reviewer_id: String,
    /// The ticket reviewed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_id: Option<String>,
    /// The session reviewed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The overall score 0–100.
    pub score: f64,
    /// The items.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<QaItem>,
    /// The violations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<Violation>,
}

/// What happened to a bad review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BadReviewEventType {
    /// Posted.
    Received,
    /// Resolved or revised after the agent stepped in.
    Intercepted,
}

/// A bad review event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BadReviewEvent {
    /// The review.
    pub review_id: String,
    /// What happened.
    #[serde(rename = "type")]
    pub event_type: BadReviewEventType,
    /// The agent responsible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// The order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
}

/// One on-site visit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldVisit {
    /// The visit.
    pub visit_id: String,
    /// The field ticket.
    pub ticket_id: String,
    /// The technician.
    pub agent_id: String,
    /// 1 for the first visit.
    pub visit_no: u32,
    /// When the fault was reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_at: Option<DateTime<Utc>>,
    /// When the visit was scheduled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_at: Option<DateTime<Utc>>,
    /// When the technician arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrived_at: Option<DateTime<Utc>>,
    /// Fixed on this visit.
    pub resolved_on_visit: bool,
}

/// An assessment result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    /// The assessment.
    pub assessment_id: String,
    /// The agent assessed.
    pub agent_id: String,
    /// The kind, e.g. "knowledge".
    pub kind: String,
    /// The score, 0–max_score.
    pub score: f64,
    /// The maximum score, > 0.
    pub max_score: f64,
}

/// A roster change for one agent, effective at the event time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentUpsert {
    /// The agent.
    pub agent_id: String,
    /// The display name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub display_name: String,
    /// The team.
    pub team_id: String,
    /// The role.
    pub role: String,
    /// The hire date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hired_on: Option<NaiveDate>,
    /// Whether active.
    pub active: bool,
}

/// A roster change for one team, effective at the event time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeamUpsert {
    /// The team.
    pub team_id: String,
    /// The display name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub display_name: String,
    /// The parent team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_team_id: Option<String>,
    /// The supervisor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervisor_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stored events are JSON; a score must read back bit for bit. Found by
    /// the `event_validation` fuzz target: without serde_json's
    /// `float_roundtrip` this score came back one ulp off.
    #[test]
    fn a_score_survives_the_json_store_bit_for_bit() {
        let event = Event {
            event_id: "evt-2".into(),
            occurred_at: "2026-09-21T10:27:12Z".parse().unwrap(),
            payload: Payload::Survey(SurveyResponse {
                response_id: "R-1".into(),
                kind: SurveyKind::Csat,
                score: 2.0078125029400598,
                ticket_id: Some("T-1".into()),
                session_id: None,
                agent_id: None,
                customer_segment: None,
            }),
        };
        let json = serde_json::to_string(&event).unwrap();
        let back: Event = serde_json::from_str(&json).unwrap();
        assert_eq!(back, event, "{json}");
    }
}
