//! The fact schema: every fact type data-ingestion keeps, with its fields and
//! their types. It is the contract between the catalog (which validates
//! measures and filters against it) and ingestion (which stores and
//! aggregates these exact fields).

use serde::{Deserialize, Serialize};

/// A normalised fact type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FactType {
    /// One ticket folded from its lifecycle events.
    Ticket,
    /// One chat or phone session.
    Conversation,
    /// One CSAT / NPS / CES response.
    Survey,
    /// One QA review.
    QaReview,
    /// One checked item of a QA review.
    QaItem,
    /// One compliance violation of a QA review.
    QaViolation,
    /// One negative public review.
    BadReview,
    /// One on-site visit.
    FieldVisit,
    /// One assessment result.
    Assessment,
}

impl FactType {
    /// Every fact type, in a stable order.
    pub const ALL: [FactType; 9] = [
        FactType::Ticket,
        FactType::Conversation,
        FactType::Survey,
        FactType::QaReview,
        FactType::QaItem,
        FactType::QaViolation,
        FactType::BadReview,
        FactType::FieldVisit,
        FactType::Assessment,
    ];

    /// The snake_case name, as in documents and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            FactType::Ticket => "ticket",
            FactType::Conversation => "conversation",
            FactType::Survey => "survey",
            FactType::QaReview => "qa_review",
            FactType::QaItem => "qa_item",
            FactType::QaViolation => "qa_violation",
            FactType::BadReview => "bad_review",
            FactType::FieldVisit => "field_visit",
            FactType::Assessment => "assessment",
        }
    }

    /// The schema of this fact type.
    pub fn schema(self) -> &'static FactSchema {
        schema_of(self)
    }
}

/// A fact field's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// Free text or an identifier.
    String,
    /// One of a fixed set of strings (see [`FieldDef::values`]).
    Enum,
    /// A number.
    Number,
    /// true / false.
    Bool,
    /// An instant.
    Timestamp,
    /// A duration in seconds.
    Duration,
}

impl FieldType {
    /// Whether sum, mean and percentile make sense.
    pub fn is_numeric(self) -> bool {
        matches!(self, FieldType::Number | FieldType::Duration)
    }

    /// Whether the values are ordered (min, max, <, >).
    pub fn is_ordered(self) -> bool {
        matches!(
            self,
            FieldType::Number | FieldType::Duration | FieldType::Timestamp
        )
    }
}

/// One field of a fact type.
#[derive(Debug)]
pub struct FieldDef {
    /// The field name.
    pub name: &'static str,
    /// Its type.
    pub field_type: FieldType,
    /// Allowed values of an enum field.
    pub values: &'static [&'static str],
    /// Whether it may be null.
    pub nullable: bool,
    /// For durations: whether a business-hours variant is kept as well.
    pub business_hours: bool,
    /// What it holds.
    pub description: &'static str,
}

/// The schema of one fact type.
#[derive(Debug)]
pub struct FactSchema {
    /// The fact type.
    pub fact_type: FactType,
    /// The id field of the fact.
    pub id_field: &'static str,
    /// The timestamp field placing a fact in a period by default.
    pub default_time_field: &'static str,
    /// The fields.
    pub fields: &'static [FieldDef],
}

impl FactSchema {
    /// The field with this name, if any.
    pub fn field(&self, name: &str) -> Option<&'static FieldDef> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The names of all fields, for error messages.
    pub fn field_names(&self) -> Vec<&'static str> {
        self.fields.iter().map(|f| f.name).collect()
    }
}

/// `(field, column)`: where each duration kept in business hours stores its
/// business-hours variant. A test keeps this in step with the fields marked
/// [`FieldDef::business_hours`].
pub const BUSINESS_COLUMNS: &[(&str, &str)] = &[
    ("first_response_seconds", "first_response_seconds_bh"),
    ("first_resolution_seconds", "first_resolution_seconds_bh"),
    ("resolution_seconds", "resolution_seconds_bh"),
    ("first_reopen_seconds", "first_reopen_seconds_bh"),
    ("next_contact_gap_seconds", "next_contact_gap_seconds_bh"),
    ("response_seconds", "response_seconds_bh"),
];

/// The business-hours column of a duration field, e.g.
/// `"first_response_seconds"` → `"first_response_seconds_bh"`; `None` for a
/// field no schema keeps in business hours.
pub fn business_column(name: &str) -> Option<&'static str> {
    BUSINESS_COLUMNS
        .iter()
        .find(|(field, _)| *field == name)
        .map(|(_, column)| *column)
}

/// Channels of tickets and sessions.
pub const CHANNELS: &[&str] = &["phone", "chat", "email", "social", "onsite"];
/// Escalation levels.
pub const ESCALATION_LEVELS: &[&str] = &["none", "internal", "regulator", "media"];
/// Survey kinds.
pub const SURVEY_KINDS: &[&str] = &["csat", "nps", "ces"];
/// Violation severities.
pub const SEVERITIES: &[&str] = &["minor", "major"];
/// Ticket statuses.
pub const TICKET_STATUSES: &[&str] = &["open", "resolved", "closed"];

const fn f(
    name: &'static str,
    field_type: FieldType,
    nullable: bool,
    description: &'static str,
) -> FieldDef {
    FieldDef {
        name,
        field_type,
        values: &[],
        nullable,
        business_hours: false,
        description,
    }
}

const fn e(
    name: &'static str,
    values: &'static [&'static str],
    description: &'static str,
) -> FieldDef {
    FieldDef {
        name,
        field_type: FieldType::Enum,
        values,
        nullable: false,
        business_hours: false,
        description,
    }
}

/// A duration field kept in calendar time and in business hours.
const fn bh(name: &'static str, description: &'static str) -> FieldDef {
    FieldDef {
        name,
        field_type: FieldType::Duration,
        values: &[],
        nullable: true,
        business_hours: true,
        description,
    }
}

use FieldType::{Bool, Duration, Number, String as Str, Timestamp};

static TICKET: FactSchema = FactSchema {
    fact_type: FactType::Ticket,
    id_field: "ticket_id",
    default_time_field: "created_at",
    fields: &[
        f("ticket_id", Str, false, "the ticket id"),
        e("channel", CHANNELS, "the channel the ticket came through"),
        f("category", Str, false, "the category, e.g. billing"),
        f("priority", Str, false, "the priority, e.g. p2"),
        f("customer_id", Str, false, "the customer"),
        f(
            "customer_segment",
            Str,
            false,
            "the customer segment, e.g. vip",
        ),
        e("status", TICKET_STATUSES, "open, resolved or closed"),
        f("created_at", Timestamp, false, "when the ticket was opened"),
        f(
            "first_response_at",
            Timestamp,
            true,
            "the first human response",
        ),
        bh(
            "first_response_seconds",
            "first response − creation (bot time excluded)",
        ),
        f(
            "first_responder_id",
            Str,
            true,
            "the agent who sent the first response",
        ),
        f(
            "first_responder_team_id",
            Str,
            true,
            "that agent's team at the time",
        ),
        f("first_resolved_at", Timestamp, true, "the first resolution"),
        f("last_resolved_at", Timestamp, true, "the last resolution"),
        f("resolved", Bool, false, "resolved at least once"),
        bh("first_resolution_seconds", "first resolution − creation"),
        bh("resolution_seconds", "last resolution − creation"),
        f("reopen_count", Number, false, "reopens after a resolution"),
        bh("first_reopen_seconds", "first reopen − first resolution"),
        f(
            "agent_reply_count",
            Number,
            false,
            "agent replies, the first response included",
        ),
        f(
            "customer_contacts",
            Number,
            false,
            "customer messages or calls, the opening included",
        ),
        f(
            "handle_seconds",
            Duration,
            false,
            "agent work time, summed over events",
        ),
        e(
            "escalation_level",
            ESCALATION_LEVELS,
            "the highest escalation reached",
        ),
        f("is_complaint", Bool, false, "marked as a complaint"),
        f(
            "agent_id",
            Str,
            true,
            "the agent handling the ticket at its last resolution (else now)",
        ),
        f("team_id", Str, true, "that agent's team at the time"),
        bh(
            "next_contact_gap_seconds",
            "first resolution → the same customer's next ticket on the same category",
        ),
    ],
};

static CONVERSATION: FactSchema = FactSchema {
    fact_type: FactType::Conversation,
    id_field: "session_id",
    default_time_field: "started_at",
    fields: &[
        f("session_id", Str, false, "the session id"),
        f("agent_id", Str, true, "the agent"),
        f("team_id", Str, true, "the agent's team at the time"),
        e("channel", CHANNELS, "the channel"),
        f("customer_id", Str, false, "the customer"),
        f("started_at", Timestamp, false, "when the session started"),
        f("ended_at", Timestamp, true, "when it ended"),
        f(
            "first_reply_seconds",
            Duration,
            true,
            "seconds to the agent's first reply",
        ),
        f("valid", Bool, false, "a real session (not spam, not empty)"),
        f("converted", Bool, false, "an order followed"),
        f("order_value", Number, true, "the order value"),
        f("handle_seconds", Duration, false, "agent work time"),
    ],
};

static SURVEY: FactSchema = FactSchema {
    fact_type: FactType::Survey,
    id_field: "response_id",
    default_time_field: "responded_at",
    fields: &[
        f("response_id", Str, false, "the response id"),
        e("kind", SURVEY_KINDS, "csat (1–5), nps (0–10) or ces (1–7)"),
        f("score", Number, false, "the score"),
        f("ticket_id", Str, true, "the ticket rated"),
        f("session_id", Str, true, "the session rated"),
        f("agent_id", Str, true, "the rated agent"),
        f("team_id", Str, true, "the rated agent's team at the time"),
        f("customer_segment", Str, false, "the customer segment"),
        f(
            "responded_at",
            Timestamp,
            false,
            "when the customer answered",
        ),
    ],
};

static QA_REVIEW: FactSchema = FactSchema {
    fact_type: FactType::QaReview,
    id_field: "review_id",
    default_time_field: "reviewed_at",
    fields: &[
        f("review_id", Str, false, "the review id"),
        f("agent_id", Str, false, "the agent reviewed"),
        f("team_id", Str, true, "the agent's team at the time"),
        f("reviewer_id", Str, false, "the reviewer"),
        f("ticket_id", Str, true, "the ticket reviewed"),
        f("session_id", Str, true, "the session reviewed"),
        f("score", Number, false, "the overall score 0–100"),
        f("item_count", Number, false, "items checked"),
        f("violation_count", Number, false, "violations found"),
        f(
            "major_violation_count",
            Number,
            false,
            "major violations found",
        ),
        f("reviewed_at", Timestamp, false, "when the review was made"),
    ],
};

static QA_ITEM: FactSchema = FactSchema {
    fact_type: FactType::QaItem,
    id_field: "item_id",
    default_time_field: "reviewed_at",
    fields: &[
        f("item_id", Str, false, "review id and item key"),
        f("review_id", Str, false, "the review"),
        f("agent_id", Str, false, "the agent reviewed"),
        f("team_id", Str, true, "the agent's team at the time"),
        f("key", Str, false, "the item key, e.g. spare_part_request"),
        f(
            "group",
            Str,
            false,
            "the item group, e.g. compliance, process",
        ),
        f("passed", Bool, false, "whether it passed"),
        f("score", Number, false, "its score 0–100"),
        f("reviewed_at", Timestamp, false, "when the review was made"),
    ],
};

static QA_VIOLATION: FactSchema = FactSchema {
    fact_type: FactType::QaViolation,
    id_field: "violation_id",
    default_time_field: "reviewed_at",
    fields: &[
        f("violation_id", Str, false, "review id and position"),
        f("review_id", Str, false, "the review"),
        f("agent_id", Str, false, "the agent reviewed"),
        f("team_id", Str, true, "the agent's team at the time"),
        f("code", Str, false, "the violation code, e.g. false_promise"),
        e("severity", SEVERITIES, "minor or major"),
        f("reviewed_at", Timestamp, false, "when the review was made"),
    ],
};

static BAD_REVIEW: FactSchema = FactSchema {
    fact_type: FactType::BadReview,
    id_field: "review_id",
    default_time_field: "received_at",
    fields: &[
        f("review_id", Str, false, "the review id"),
        f("agent_id", Str, true, "the agent responsible"),
        f("team_id", Str, true, "the agent's team at the time"),
        f("order_id", Str, false, "the order"),
        f(
            "received_at",
            Timestamp,
            false,
            "when the bad review was posted",
        ),
        f(
            "intercepted",
            Bool,
            false,
            "resolved or revised after the agent stepped in",
        ),
        f("intercepted_at", Timestamp, true, "when it was intercepted"),
    ],
};

static FIELD_VISIT: FactSchema = FactSchema {
    fact_type: FactType::FieldVisit,
    id_field: "visit_id",
    default_time_field: "visited_at",
    fields: &[
        f("visit_id", Str, false, "the visit id"),
        f("ticket_id", Str, false, "the field ticket"),
        f("agent_id", Str, false, "the technician"),
        f("team_id", Str, true, "the technician's team at the time"),
        f(
            "visit_no",
            Number,
            false,
            "1 for the first visit of the ticket",
        ),
        f(
            "visited_at",
            Timestamp,
            false,
            "arrival, else the event time",
        ),
        f(
            "reported_at",
            Timestamp,
            true,
            "when the fault was reported",
        ),
        f(
            "scheduled_at",
            Timestamp,
            true,
            "when the visit was scheduled",
        ),
        f("arrived_at", Timestamp, true, "when the technician arrived"),
        bh("response_seconds", "arrival − report"),
        f("resolved_on_visit", Bool, false, "fixed on this visit"),
    ],
};

static ASSESSMENT: FactSchema = FactSchema {
    fact_type: FactType::Assessment,
    id_field: "assessment_id",
    default_time_field: "assessed_at",
    fields: &[
        f("assessment_id", Str, false, "the assessment id"),
        f("agent_id", Str, false, "the agent assessed"),
        f("team_id", Str, true, "the agent's team at the time"),
        f(
            "kind",
            Str,
            false,
            "knowledge, skills, collaboration, proactive_service…",
        ),
        f("score", Number, false, "the score"),
        f("max_score", Number, false, "the maximum score"),
        f("pct", Number, false, "score ÷ max_score × 100"),
        f("assessed_at", Timestamp, false, "when it was taken"),
    ],
};

fn schema_of(fact_type: FactType) -> &'static FactSchema {
    match fact_type {
        FactType::Ticket => &TICKET,
        FactType::Conversation => &CONVERSATION,
        FactType::Survey => &SURVEY,
        FactType::QaReview => &QA_REVIEW,
        FactType::QaItem => &QA_ITEM,
        FactType::QaViolation => &QA_VIOLATION,
        FactType::BadReview => &BAD_REVIEW,
        FactType::FieldVisit => &FIELD_VISIT,
        FactType::Assessment => &ASSESSMENT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_names_its_id_and_time_fields() {
        for fact_type in FactType::ALL {
            let schema = fact_type.schema();
            assert_eq!(schema.fact_type, fact_type);
            assert!(schema.field(schema.id_field).is_some(), "{fact_type:?} id");
            let time = schema.field(schema.default_time_field).expect("time field");
            assert_eq!(time.field_type, FieldType::Timestamp);
        }
    }

    #[test]
    fn business_columns_match_the_fields_kept_in_business_hours() {
        let mut marked: Vec<&str> = FactType::ALL
            .iter()
            .flat_map(|t| {
                t.schema()
                    .fields
                    .iter()
                    .filter(|f| f.business_hours)
                    .map(|f| f.name)
            })
            .collect();
        marked.sort_unstable();
        marked.dedup();
        let mut listed: Vec<&str> = BUSINESS_COLUMNS.iter().map(|(f, _)| *f).collect();
        listed.sort_unstable();
        assert_eq!(marked, listed);
        for (field, column) in BUSINESS_COLUMNS {
            assert_eq!(*column, format!("{field}_bh"));
        }
    }

    #[test]
    fn field_names_are_unique_per_fact_type() {
        for fact_type in FactType::ALL {
            let mut names = fact_type.schema().field_names();
            let before = names.len();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), before, "{fact_type:?}");
        }
    }
}
