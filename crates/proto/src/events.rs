//! Domain events → proto events, for clients that hold events in the domain
//! shape (e.g. `kpictl import` reading JSON Lines or CSV) and send them to
//! data-ingestion.
//!
//! [`event_to_proto`] is the whole conversion. It never fails: an absent
//! option becomes the proto's empty value (empty string, enum 0, no
//! timestamp), enums map name for name, dates become `YYYY-MM-DD` and
//! instants become [`prost_types::Timestamp`]s. Checking the values is the
//! server's job (`data-ingestion`'s `convert::event_from`), so the answer to a
//! bad event is the same whichever way it was sent.

use chrono::NaiveDate;
use kpi_domain::events as dm;

use crate::convert::timestamp;
use crate::ingestion as pb;

/// Converts one domain event into the proto sent to `IngestionService`.
pub fn event_to_proto(e: &dm::Event) -> pb::Event {
    pb::Event {
        event_id: e.event_id.clone(),
        occurred_at: Some(timestamp(e.occurred_at)),
        payload: Some(payload(&e.payload)),
    }
}

fn payload(p: &dm::Payload) -> pb::event::Payload {
    use pb::event::Payload as P;
    match p {
        dm::Payload::Ticket(t) => P::Ticket(ticket(t)),
        dm::Payload::Conversation(c) => P::Conversation(conversation(c)),
        dm::Payload::Survey(s) => P::Survey(survey(s)),
        dm::Payload::QaReview(q) => P::QaReview(qa_review(q)),
        dm::Payload::BadReview(b) => P::BadReview(pb::BadReviewEvent {
            review_id: b.review_id.clone(),
            r#type: bad_review_type(b.event_type) as i32,
            agent_id: text(&b.agent_id),
            order_id: text(&b.order_id),
        }),
        dm::Payload::FieldVisit(v) => P::FieldVisit(pb::FieldVisit {
            visit_id: v.visit_id.clone(),
            ticket_id: v.ticket_id.clone(),
            agent_id: v.agent_id.clone(),
            visit_no: i32::try_from(v.visit_no).unwrap_or(i32::MAX),
            reported_at: v.reported_at.map(timestamp),
            scheduled_at: v.scheduled_at.map(timestamp),
            arrived_at: v.arrived_at.map(timestamp),
            resolved_on_visit: v.resolved_on_visit,
        }),
        dm::Payload::Assessment(a) => P::Assessment(pb::Assessment {
            assessment_id: a.assessment_id.clone(),
            agent_id: a.agent_id.clone(),
            kind: a.kind.clone(),
            score: a.score,
            max_score: a.max_score,
        }),
        dm::Payload::Agent(a) => P::Agent(pb::AgentUpsert {
            agent_id: a.agent_id.clone(),
            display_name: a.display_name.clone(),
            team_id: a.team_id.clone(),
            role: a.role.clone(),
            hired_on: a.hired_on.map(date).unwrap_or_default(),
            active: a.active,
        }),
        dm::Payload::Team(t) => P::Team(pb::TeamUpsert {
            team_id: t.team_id.clone(),
            display_name: t.display_name.clone(),
            parent_team_id: text(&t.parent_team_id),
            supervisor_id: text(&t.supervisor_id),
        }),
    }
}

fn ticket(t: &dm::TicketEvent) -> pb::TicketEvent {
    pb::TicketEvent {
        ticket_id: t.ticket_id.clone(),
        r#type: ticket_type(t.event_type) as i32,
        agent_id: text(&t.agent_id),
        team_id: text(&t.team_id),
        channel: t.channel.map_or(0, |c| channel(c) as i32),
        category: text(&t.category),
        priority: text(&t.priority),
        customer_id: text(&t.customer_id),
        customer_segment: text(&t.customer_segment),
        is_complaint: t.is_complaint,
        escalation_level: t.escalation_level.map_or(0, |l| escalation(l) as i32),
        handle_seconds: i64::from(t.handle_seconds),
    }
}

fn conversation(c: &dm::ConversationEvent) -> pb::ConversationEvent {
    pb::ConversationEvent {
        session_id: c.session_id.clone(),
        r#type: conversation_type(c.event_type) as i32,
        agent_id: text(&c.agent_id),
        channel: c.channel.map_or(0, |ch| channel(ch) as i32),
        customer_id: text(&c.customer_id),
        first_reply_seconds: c.first_reply_seconds,
        valid: c.valid,
        handle_seconds: i64::from(c.handle_seconds),
        order_id: text(&c.order_id),
        order_value: c.order_value.unwrap_or_default(),
    }
}

fn survey(s: &dm::SurveyResponse) -> pb::SurveyResponse {
    pb::SurveyResponse {
        response_id: s.response_id.clone(),
        kind: survey_kind(s.kind) as i32,
        score: s.score,
        ticket_id: text(&s.ticket_id),
        session_id: text(&s.session_id),
        agent_id: text(&s.agent_id),
        customer_segment: text(&s.customer_segment),
    }
}

fn qa_review(q: &dm::QaReview) -> pb::QaReview {
    pb::QaReview {
        review_id: q.review_id.clone(),
        agent_id: q.agent_id.clone(),
        reviewer_id: q.reviewer_id.clone(),
        ticket_id: text(&q.ticket_id),
        session_id: text(&q.session_id),
        score: q.score,
        items: q
            .items
            .iter()
            .map(|i| pb::QaItem {
                key: i.key.clone(),
                group: i.group.clone(),
                passed: i.passed,
                score: i.score,
            })
            .collect(),
        violations: q
            .violations
            .iter()
            .map(|v| pb::Violation {
                code: v.code.clone(),
                severity: severity(v.severity) as i32,
                note: v.note.clone(),
            })
            .collect(),
    }
}

/// An optional string: absent is the proto's empty string.
fn text(s: &Option<String>) -> String {
    s.clone().unwrap_or_default()
}

/// A date as `YYYY-MM-DD`.
fn date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn ticket_type(t: dm::TicketEventType) -> pb::TicketEventType {
    use dm::TicketEventType as D;
    use pb::TicketEventType as P;
    match t {
        D::Created => P::Created,
        D::Assigned => P::Assigned,
        D::Transferred => P::Transferred,
        D::BotHandoff => P::BotHandoff,
        D::FirstResponse => P::FirstResponse,
        D::AgentReply => P::AgentReply,
        D::CustomerReply => P::CustomerReply,
        D::Resolved => P::Resolved,
        D::Reopened => P::Reopened,
        D::Closed => P::Closed,
        D::Escalated => P::Escalated,
    }
}

fn channel(c: dm::Channel) -> pb::Channel {
    match c {
        dm::Channel::Phone => pb::Channel::Phone,
        dm::Channel::Chat => pb::Channel::Chat,
        dm::Channel::Email => pb::Channel::Email,
        dm::Channel::Social => pb::Channel::Social,
        dm::Channel::Onsite => pb::Channel::Onsite,
    }
}

fn escalation(l: dm::EscalationLevel) -> pb::EscalationLevel {
    match l {
        dm::EscalationLevel::None => pb::EscalationLevel::None,
        dm::EscalationLevel::Internal => pb::EscalationLevel::Internal,
        dm::EscalationLevel::Regulator => pb::EscalationLevel::Regulator,
        dm::EscalationLevel::Media => pb::EscalationLevel::Media,
    }
}

fn conversation_type(t: dm::ConversationEventType) -> pb::ConversationEventType {
    match t {
        dm::ConversationEventType::Started => pb::ConversationEventType::Started,
        dm::ConversationEventType::Ended => pb::ConversationEventType::Ended,
        dm::ConversationEventType::Converted => pb::ConversationEventType::Converted,
    }
}

fn survey_kind(k: dm::SurveyKind) -> pb::SurveyKind {
    match k {
        dm::SurveyKind::Csat => pb::SurveyKind::Csat,
        dm::SurveyKind::Nps => pb::SurveyKind::Nps,
        dm::SurveyKind::Ces => pb::SurveyKind::Ces,
    }
}

fn severity(s: dm::Severity) -> pb::Severity {
    match s {
        dm::Severity::Minor => pb::Severity::Minor,
        dm::Severity::Major => pb::Severity::Major,
    }
}

fn bad_review_type(t: dm::BadReviewEventType) -> pb::BadReviewEventType {
    match t {
        dm::BadReviewEventType::Received => pb::BadReviewEventType::Received,
        dm::BadReviewEventType::Intercepted => pb::BadReviewEventType::Intercepted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use pb::event::Payload as P;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn ts(s: &str) -> prost_types::Timestamp {
        let t = at(s);
        prost_types::Timestamp {
            seconds: t.timestamp(),
            nanos: t.timestamp_subsec_nanos() as i32,
        }
    }

    fn convert(payload: dm::Payload) -> pb::Event {
        let e = dm::Event {
            event_id: "e1".into(),
            occurred_at: at("2026-10-05T09:00:00.250Z"),
            payload,
        };
        let p = event_to_proto(&e);
        assert_eq!(p.event_id, "e1");
        assert_eq!(p.occurred_at, Some(ts("2026-10-05T09:00:00.250Z")));
        assert_eq!(p.occurred_at.as_ref().unwrap().nanos, 250_000_000);
        p
    }

    fn some(s: &str) -> Option<String> {
        Some(s.to_owned())
    }

    #[test]
    fn ticket_converts() {
        let p = convert(dm::Payload::Ticket(dm::TicketEvent {
            ticket_id: "T1".into(),
            event_type: dm::TicketEventType::Escalated,
            agent_id: some("a1"),
            team_id: some("east"),
            channel: Some(dm::Channel::Chat),
            category: some("billing"),
            priority: some("p2"),
            customer_id: some("c1"),
            customer_segment: some("vip"),
            is_complaint: true,
            escalation_level: Some(dm::EscalationLevel::Regulator),
            handle_seconds: 120,
        }));
        let expected = pb::TicketEvent {
            ticket_id: "T1".into(),
            r#type: pb::TicketEventType::Escalated as i32,
            agent_id: "a1".into(),
            team_id: "east".into(),
            channel: pb::Channel::Chat as i32,
            category: "billing".into(),
            priority: "p2".into(),
            customer_id: "c1".into(),
            customer_segment: "vip".into(),
            is_complaint: true,
            escalation_level: pb::EscalationLevel::Regulator as i32,
            handle_seconds: 120,
        };
        assert_eq!(p.payload, Some(P::Ticket(expected)));
    }

    #[test]
    fn a_bare_ticket_leaves_the_options_empty() {
        let p = convert(dm::Payload::Ticket(dm::TicketEvent::new(
            "T1",
            dm::TicketEventType::BotHandoff,
        )));
        let expected = pb::TicketEvent {
            ticket_id: "T1".into(),
            r#type: pb::TicketEventType::BotHandoff as i32,
            ..Default::default()
        };
        assert_eq!(p.payload, Some(P::Ticket(expected)));
    }

    #[test]
    fn conversation_converts() {
        let p = convert(dm::Payload::Conversation(dm::ConversationEvent {
            session_id: "S1".into(),
            event_type: dm::ConversationEventType::Converted,
            agent_id: some("a1"),
            channel: Some(dm::Channel::Phone),
            customer_id: some("c1"),
            first_reply_seconds: Some(12.5),
            valid: Some(false),
            handle_seconds: 300,
            order_id: some("O1"),
            order_value: Some(99.9),
        }));
        let expected = pb::ConversationEvent {
            session_id: "S1".into(),
            r#type: pb::ConversationEventType::Converted as i32,
            agent_id: "a1".into(),
            channel: pb::Channel::Phone as i32,
            customer_id: "c1".into(),
            first_reply_seconds: Some(12.5),
            valid: Some(false),
            handle_seconds: 300,
            order_id: "O1".into(),
            order_value: 99.9,
        };
        assert_eq!(p.payload, Some(P::Conversation(expected)));
    }

    #[test]
    fn survey_converts() {
        let p = convert(dm::Payload::Survey(dm::SurveyResponse {
            response_id: "R1".into(),
            kind: dm::SurveyKind::Nps,
            score: 9.0,
            ticket_id: some("T1"),
            session_id: None,
            agent_id: some("a1"),
            customer_segment: None,
        }));
        let expected = pb::SurveyResponse {
            response_id: "R1".into(),
            kind: pb::SurveyKind::Nps as i32,
            score: 9.0,
            ticket_id: "T1".into(),
            session_id: String::new(),
            agent_id: "a1".into(),
            customer_segment: String::new(),
        };
        assert_eq!(p.payload, Some(P::Survey(expected)));
    }

    #[test]
    fn qa_review_converts() {
        let p = convert(dm::Payload::QaReview(dm::QaReview {
            review_id: "Q1".into(),
            agent_id: "a1".into(),
            reviewer_id: "r1".into(),
            ticket_id: some("T1"),
            session_id: some("S1"),
            score: 88.0,
            items: vec![dm::QaItem {
                key: "greeting".into(),
                group: "service".into(),
                passed: true,
                score: 100.0,
            }],
            violations: vec![dm::Violation {
                code: "data_leak".into(),
                severity: dm::Severity::Major,
                note: "card number read out".into(),
            }],
        }));
        let expected = pb::QaReview {
            review_id: "Q1".into(),
            agent_id: "a1".into(),
            reviewer_id: "r1".into(),
            ticket_id: "T1".into(),
            session_id: "S1".into(),
            score: 88.0,
            items: vec![pb::QaItem {
                key: "greeting".into(),
                group: "service".into(),
                passed: true,
                score: 100.0,
            }],
            violations: vec![pb::Violation {
                code: "data_leak".into(),
                severity: pb::Severity::Major as i32,
                note: "card number read out".into(),
            }],
        };
        assert_eq!(p.payload, Some(P::QaReview(expected)));
    }

    #[test]
    fn bad_review_converts() {
        let p = convert(dm::Payload::BadReview(dm::BadReviewEvent {
            review_id: "B1".into(),
            event_type: dm::BadReviewEventType::Intercepted,
            agent_id: some("a1"),
            order_id: None,
        }));
        let expected = pb::BadReviewEvent {
            review_id: "B1".into(),
            r#type: pb::BadReviewEventType::Intercepted as i32,
            agent_id: "a1".into(),
            order_id: String::new(),
        };
        assert_eq!(p.payload, Some(P::BadReview(expected)));
    }

    #[test]
    fn field_visit_converts() {
        let p = convert(dm::Payload::FieldVisit(dm::FieldVisit {
            visit_id: "V1".into(),
            ticket_id: "T9".into(),
            agent_id: "tech1".into(),
            visit_no: 2,
            reported_at: Some(at("2026-10-01T08:00:00Z")),
            scheduled_at: None,
            arrived_at: Some(at("2026-10-02T10:30:00Z")),
            resolved_on_visit: true,
        }));
        let expected = pb::FieldVisit {
            visit_id: "V1".into(),
            ticket_id: "T9".into(),
            agent_id: "tech1".into(),
            visit_no: 2,
            reported_at: Some(ts("2026-10-01T08:00:00Z")),
            scheduled_at: None,
            arrived_at: Some(ts("2026-10-02T10:30:00Z")),
            resolved_on_visit: true,
        };
        assert_eq!(p.payload, Some(P::FieldVisit(expected)));
    }

    #[test]
    fn assessment_converts() {
        let p = convert(dm::Payload::Assessment(dm::Assessment {
            assessment_id: "A1".into(),
            agent_id: "a1".into(),
            kind: "knowledge".into(),
            score: 42.0,
            max_score: 50.0,
        }));
        let expected = pb::Assessment {
            assessment_id: "A1".into(),
            agent_id: "a1".into(),
            kind: "knowledge".into(),
            score: 42.0,
            max_score: 50.0,
        };
        assert_eq!(p.payload, Some(P::Assessment(expected)));
    }

    #[test]
    fn agent_converts_with_its_hire_date() {
        let p = convert(dm::Payload::Agent(dm::AgentUpsert {
            agent_id: "a1".into(),
            display_name: "Ada".into(),
            team_id: "east".into(),
            role: "tier1".into(),
            hired_on: NaiveDate::from_ymd_opt(2023, 2, 8),
            active: true,
        }));
        let expected = pb::AgentUpsert {
            agent_id: "a1".into(),
            display_name: "Ada".into(),
            team_id: "east".into(),
            role: "tier1".into(),
            hired_on: "2023-02-08".into(),
            active: true,
        };
        assert_eq!(p.payload, Some(P::Agent(expected)));
    }

    #[test]
    fn team_converts() {
        let p = convert(dm::Payload::Team(dm::TeamUpsert {
            team_id: "east".into(),
            display_name: "East".into(),
            parent_team_id: None,
            supervisor_id: some("s1"),
        }));
        let expected = pb::TeamUpsert {
            team_id: "east".into(),
            display_name: "East".into(),
            parent_team_id: String::new(),
            supervisor_id: "s1".into(),
        };
        assert_eq!(p.payload, Some(P::Team(expected)));
    }
}
