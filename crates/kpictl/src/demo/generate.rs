//! The demo's month of activity: October 2026 (UTC) for three teams, as
//! ingestion events, from a seed alone (never the wall clock), so the same
//! seed always gives the same events and the same scorecards.
//!
//! - e-commerce (`ecom`, 70 chat agents): chat sessions (valid, converted
//!   into orders), tickets with first responses and resolutions, bad reviews
//!   (some intercepted), QA reviews, a knowledge assessment;
//! - finance (`fin`, 65 agents): tickets (half from VIP customers), CSAT
//!   surveys, reopens, rare regulator escalations, QA reviews with compliance
//!   items, a knowledge assessment;
//! - after-sales (`aftersales`, 65 technicians): fault tickets, first and
//!   second field visits, CES surveys, QA reviews with process items, a
//!   knowledge assessment.
//!
//! About a fifth of each team are new hires (hired in August or September,
//! so in the 90-day new-hire cohort all month) and work a little slower. A
//! few agents are made to trip each template's veto (a false promise, a
//! major compliance violation, a safety incident) or an alert (first
//! responses too slow, regulator escalations, fault response too slow).

use kpi_proto::ingestion as pb;
use kpi_proto::ingestion::event::Payload;
use kpi_proto::ingestion::{
    BadReviewEventType as BadReviewType, Channel, ConversationEventType as ConversationType,
    TicketEventType as T,
};

/// 2026-10-01T00:00:00Z, the start of the month generated.
pub const MONTH_START: i64 = 1_790_812_800;
/// The month's first day, as the scoring API wants it.
pub const MONTH: &str = "2026-10-01";
const DAY: i64 = 86_400;
const HOUR: i64 = 3_600;
const MINUTE: i64 = 60;

/// One of the demo's teams, with the starter template it is scored by.
#[derive(Debug, Clone, Copy)]
pub struct Team {
    /// The team id.
    pub id: &'static str,
    /// Its display name.
    pub name: &'static str,
    /// The starter template its agents are scored by.
    pub template: &'static str,
    /// The agents' role.
    pub role: &'static str,
    /// How many agents.
    pub size: usize,
}

/// The three teams.
pub const TEAMS: [Team; 3] = [
    Team {
        id: "ecom",
        name: "E-commerce",
        template: "ecommerce",
        role: "chat_agent",
        size: 70,
    },
    Team {
        id: "fin",
        name: "Finance",
        template: "finance",
        role: "service_agent",
        size: 65,
    },
    Team {
        id: "aftersales",
        name: "After-sales",
        template: "manufacturing",
        role: "field_technician",
        size: 65,
    },
];

/// A small deterministic generator (SplitMix64): good enough spread for
/// made-up data, and no dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for this seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1_u64 << 53) as f64
    }

    /// Uniform in [low, high).
    pub fn range(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }

    /// Uniform integer in [low, high].
    pub fn int(&mut self, low: i64, high: i64) -> i64 {
        low + (self.next() % (high - low + 1) as u64) as i64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// What the generator decided about one agent.
#[derive(Debug, Clone)]
struct Agent {
    id: String,
    team: Team,
    /// 0 (struggling) to 1 (excellent).
    skill: f64,
    new_hire: bool,
    /// Trips the team template's veto.
    veto: bool,
    /// Trips the team template's threshold alert.
    alert: bool,
}

const FIRST: [&str; 16] = [
    "Ann", "Bo", "Chen", "Dara", "Eli", "Fang", "Gus", "Hana", "Ivo", "Jia", "Kai", "Lena", "Ming",
    "Nora", "Omar", "Pia",
];
const LAST: [&str; 13] = [
    "Li", "Wang", "Smith", "Zhang", "Garcia", "Liu", "Novak", "Chen", "Kim", "Sato", "Yang",
    "Ortiz", "Zhao",
];

/// Every event of the demo month, roster first, each agent's activity in
/// time order within a ticket, session or visit.
pub fn month(seed: u64) -> Vec<pb::Event> {
    let mut rng = Rng::new(seed);
    let mut out = Events::default();
    for team in TEAMS {
        out.team(team);
    }
    let agents: Vec<Agent> = TEAMS
        .iter()
        .flat_map(|team| (0..team.size).map(move |i| (*team, i)))
        .map(|(team, i)| roster(&mut rng, &mut out, team, i))
        .collect();
    for agent in &agents {
        match agent.team.template {
            "ecommerce" => ecommerce(&mut rng, &mut out, agent),
            "finance" => finance(&mut rng, &mut out, agent),
            _ => aftersales(&mut rng, &mut out, agent),
        }
        qa_reviews(&mut rng, &mut out, agent);
        out.push(
            format!("{}-knowledge", agent.id),
            MONTH_START + 25 * DAY + rng.int(9, 17) * HOUR,
            Payload::Assessment(pb::Assessment {
                assessment_id: format!("{}-knowledge", agent.id),
                agent_id: agent.id.clone(),
                kind: "knowledge".into(),
                score: (55.0 + 43.0 * agent.skill + rng.range(-5.0, 5.0)).clamp(0.0, 100.0),
                max_score: 100.0,
            }),
        );
    }
    out.events
}

/// Decides who an agent is and adds their roster event.
fn roster(rng: &mut Rng, out: &mut Events, team: Team, i: usize) -> Agent {
    let id = format!("{}-{:03}", team.id, i + 1);
    // Every fifth agent joined in August or September: a new hire all October.
    let new_hire = i % 5 == 3;
    let hired_on = if new_hire {
        format!("2026-{:02}-{:02}", rng.int(8, 9), rng.int(1, 28))
    } else {
        format!(
            "{}-{:02}-{:02}",
            rng.int(2018, 2025),
            rng.int(1, 12),
            rng.int(1, 28)
        )
    };
    let skill = (rng.range(0.35, 1.0) - if new_hire { 0.2 } else { 0.0 }).clamp(0.05, 1.0);
    let name = format!(
        "{} {}",
        FIRST[rng.int(0, FIRST.len() as i64 - 1) as usize],
        LAST[rng.int(0, LAST.len() as i64 - 1) as usize]
    );
    out.push(
        format!("roster-{id}"),
        MONTH_START - 60 * DAY,
        Payload::Agent(pb::AgentUpsert {
            agent_id: id.clone(),
            display_name: name,
            team_id: team.id.into(),
            role: team.role.into(),
            hired_on,
            active: true,
        }),
    );
    Agent {
        id,
        team,
        skill,
        new_hire,
        // Fixed positions, so every seed has a veto and an alert per team.
        veto: i == 7,
        alert: i == 12,
    }
}

/// The events under construction, with the helpers that build them.
#[derive(Default)]
struct Events {
    events: Vec<pb::Event>,
}

impl Events {
    fn push(&mut self, id: String, at: i64, payload: Payload) {
        self.events.push(pb::Event {
            event_id: id,
            occurred_at: Some(timestamp(at)),
            payload: Some(payload),
        });
    }

    fn team(&mut self, team: Team) {
        self.push(
            format!("team-{}", team.id),
            MONTH_START - 90 * DAY,
            Payload::Team(pb::TeamUpsert {
                team_id: team.id.into(),
                display_name: team.name.into(),
                ..Default::default()
            }),
        );
    }

    fn ticket(&mut self, id: &str, step: &str, at: i64, event: pb::TicketEvent) {
        self.push(
            format!("{id}-{step}"),
            at,
            Payload::Ticket(pb::TicketEvent {
                ticket_id: id.into(),
                ..event
            }),
        );
    }
}

fn timestamp(seconds: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds, nanos: 0 }
}

/// A working moment of the month: a day (weekdays more likely) and an hour
/// between 08:00 and 18:00.
fn working_time(rng: &mut Rng) -> i64 {
    let mut day = rng.int(0, 30);
    // 2026-10-01 is a Thursday; days 2,3 (Sat, Sun) + 7k are the weekend.
    if matches!(day % 7, 2 | 3) && rng.chance(0.7) {
        day = (day + 2).min(30);
    }
    MONTH_START + day * DAY + rng.int(8 * 60, 18 * 60) * MINUTE
}

/// How one ticket goes (the random parts decided by the caller).
struct TicketPlan<'a> {
    agent: &'a Agent,
    channel: Channel,
    segment: &'static str,
    first_response: i64,
    resolution: i64,
    reopen: bool,
    complaint: bool,
}

/// A ticket's life: created, first response, maybe a reply, resolved, and
/// sometimes reopened and resolved again. Returns when it was created.
fn ticket(rng: &mut Rng, out: &mut Events, id: &str, plan: &TicketPlan<'_>) -> i64 {
    let created = working_time(rng);
    let agent = plan.agent.id.clone();
    let by = |ty: T| pb::TicketEvent {
        r#type: ty as i32,
        agent_id: agent.clone(),
        ..Default::default()
    };
    out.ticket(
        id,
        "created",
        created,
        pb::TicketEvent {
            r#type: T::Created as i32,
            channel: plan.channel as i32,
            category: "order".into(),
            customer_id: format!("c-{id}"),
            customer_segment: plan.segment.into(),
            is_complaint: plan.complaint,
            ..Default::default()
        },
    );
    let first = created + plan.first_response;
    out.ticket(id, "first", first, by(T::FirstResponse));
    if rng.chance(0.6) {
        out.ticket(
            id,
            "reply",
            first + rng.int(10, 90) * MINUTE,
            by(T::AgentReply),
        );
    }
    let resolved = created + plan.resolution.max(plan.first_response + MINUTE);
    out.ticket(
        id,
        "resolved",
        resolved,
        pb::TicketEvent {
            handle_seconds: rng.int(240, 1_500),
            ..by(T::Resolved)
        },
    );
    if plan.reopen {
        let reopened = resolved + rng.int(6, 72) * HOUR;
        out.ticket(id, "reopened", reopened, by(T::Reopened));
        out.ticket(
            id,
            "resolved2",
            reopened + rng.int(1, 8) * HOUR,
            by(T::Resolved),
        );
    }
    created
}

fn ecommerce(rng: &mut Rng, out: &mut Events, agent: &Agent) {
    // About 12 chat sessions a working day (9 for new hires): a small shop,
    // whose template version expects that many (see `demo::local_targets`).
    let sessions = rng.int(240, 290) - if agent.new_hire { 60 } else { 0 };
    for s in 0..sessions {
        let id = format!("{}-s{s:04}", agent.id);
        let started = working_time(rng);
        let session = |ty: ConversationType| pb::ConversationEvent {
            session_id: id.clone(),
            r#type: ty as i32,
            agent_id: agent.id.clone(),
            channel: Channel::Chat as i32,
            customer_id: format!("c-{id}"),
            ..Default::default()
        };
        out.push(
            format!("{id}-start"),
            started,
            Payload::Conversation(session(ConversationType::Started)),
        );
        let handle = rng.int(120, 900);
        out.push(
            format!("{id}-end"),
            started + handle,
            Payload::Conversation(pb::ConversationEvent {
                first_reply_seconds: Some(rng.range(5.0, 60.0)),
                valid: Some(rng.chance(0.93)),
                handle_seconds: handle,
                ..session(ConversationType::Ended)
            }),
        );
        if rng.chance(0.25 + 0.35 * agent.skill) {
            out.push(
                format!("{id}-order"),
                started + handle + 60,
                Payload::Conversation(pb::ConversationEvent {
                    order_id: format!("o-{id}"),
                    order_value: (rng.range(15.0, 400.0) * 100.0).round() / 100.0,
                    ..session(ConversationType::Converted)
                }),
            );
        }
    }
    for t in 0..rng.int(24, 34) {
        // The alert agent answers late: far below the 85 % SLA threshold.
        let slow = if agent.alert {
            0.6
        } else {
            0.01 + 0.07 * (1.0 - agent.skill)
        };
        let first_response = if rng.chance(slow) {
            rng.int(16, 90) * MINUTE
        } else {
            rng.int(1, 14) * MINUTE
        };
        let plan = TicketPlan {
            agent,
            channel: Channel::Chat,
            segment: "",
            first_response,
            resolution: rng.int(1, 30) * HOUR,
            reopen: rng.chance(0.06),
            complaint: rng.chance(0.02),
        };
        let id = format!("{}-t{t:03}", agent.id);
        let created = ticket(rng, out, &id, &plan);
        if rng.chance(0.3) {
            csat(
                rng,
                out,
                agent,
                &id,
                created + plan.resolution + HOUR,
                "csat",
            );
        }
    }
    for b in 0..rng.int(5, 9) {
        let id = format!("{}-b{b}", agent.id);
        let received = working_time(rng);
        let review = |ty: BadReviewType| pb::BadReviewEvent {
            review_id: id.clone(),
            r#type: ty as i32,
            agent_id: agent.id.clone(),
            order_id: format!("o-{id}"),
        };
        out.push(
            format!("{id}-in"),
            received,
            Payload::BadReview(review(BadReviewType::Received)),
        );
        if rng.chance(0.35 + 0.5 * agent.skill) {
            out.push(
                format!("{id}-saved"),
                received + rng.int(1, 20) * HOUR,
                Payload::BadReview(review(BadReviewType::Intercepted)),
            );
        }
    }
}

fn finance(rng: &mut Rng, out: &mut Events, agent: &Agent) {
    for t in 0..rng.int(30, 42) {
        let vip = rng.chance(0.5);
        let plan = TicketPlan {
            agent,
            channel: if rng.chance(0.6) {
                Channel::Phone
            } else {
                Channel::Chat
            },
            segment: if vip { "vip" } else { "retail" },
            first_response: rng.int(1, 20) * MINUTE,
            resolution: rng.int(1, 48) * HOUR,
            reopen: rng.chance(0.04 + 0.2 * (1.0 - agent.skill)),
            complaint: rng.chance(0.03),
        };
        let id = format!("{}-t{t:03}", agent.id);
        let created = ticket(rng, out, &id, &plan);
        // A regulator escalation is rare; the alert agent has two.
        let escalate = if agent.alert {
            t < 2
        } else {
            rng.chance(0.003)
        };
        if escalate {
            out.ticket(
                &id,
                "escalated",
                created + plan.resolution / 2,
                pb::TicketEvent {
                    r#type: T::Escalated as i32,
                    agent_id: agent.id.clone(),
                    escalation_level: pb::EscalationLevel::Regulator as i32,
                    ..Default::default()
                },
            );
        }
        if rng.chance(0.75) {
            csat(
                rng,
                out,
                agent,
                &id,
                created + plan.resolution + 2 * HOUR,
                "csat",
            );
        }
    }
}

fn aftersales(rng: &mut Rng, out: &mut Events, agent: &Agent) {
    for t in 0..rng.int(22, 28) {
        let onsite = t < 12;
        let plan = TicketPlan {
            agent,
            channel: if onsite {
                Channel::Onsite
            } else {
                Channel::Phone
            },
            segment: "",
            first_response: rng.int(1, 30) * MINUTE,
            resolution: rng.int(20, 90) * HOUR,
            reopen: rng.chance(0.05),
            complaint: rng.chance(0.02),
        };
        let id = format!("{}-t{t:03}", agent.id);
        let reported = ticket(rng, out, &id, &plan);
        if onsite {
            visits(rng, out, agent, &id, reported);
        }
        if rng.chance(0.6) {
            csat(
                rng,
                out,
                agent,
                &id,
                reported + plan.resolution + 3 * HOUR,
                "ces",
            );
        }
    }
}

/// The field visits of one fault: a first visit that fixes it most of the
/// time, else a second one.
fn visits(rng: &mut Rng, out: &mut Events, agent: &Agent, ticket: &str, reported: i64) {
    // The alert agent reaches customers late: above the 8-hour alert line.
    let response = if agent.alert {
        rng.int(10, 16) * HOUR
    } else {
        rng.int(90, 360 + ((1.0 - agent.skill) * 240.0) as i64) * MINUTE
    };
    let fixed = rng.chance(0.6 + 0.35 * agent.skill);
    let visit = |no: i32, arrived: i64, fixed: bool| pb::FieldVisit {
        visit_id: format!("{ticket}-v{no}"),
        ticket_id: ticket.into(),
        agent_id: agent.id.clone(),
        visit_no: no,
        reported_at: Some(timestamp(reported)),
        scheduled_at: Some(timestamp(reported + HOUR)),
        arrived_at: Some(timestamp(arrived)),
        resolved_on_visit: fixed,
    };
    let first = reported + response;
    out.push(
        format!("{ticket}-v1"),
        first,
        Payload::FieldVisit(visit(1, first, fixed)),
    );
    if !fixed {
        let second = first + rng.int(20, 60) * HOUR;
        out.push(
            format!("{ticket}-v2"),
            second,
            Payload::FieldVisit(visit(2, second, true)),
        );
    }
}

/// A CSAT (1–5, skill-driven) or CES (1–5, lower is better) response.
fn csat(rng: &mut Rng, out: &mut Events, agent: &Agent, ticket: &str, at: i64, kind: &str) {
    let (kind, score) = if kind == "ces" {
        let effort = 1.0 + 3.0 * (1.0 - agent.skill) + rng.range(-0.8, 1.2);
        (pb::SurveyKind::Ces, effort.round().clamp(1.0, 5.0))
    } else {
        let happy = 3.2 + 1.8 * agent.skill + rng.range(-1.0, 0.6);
        (pb::SurveyKind::Csat, happy.round().clamp(1.0, 5.0))
    };
    out.push(
        format!("{ticket}-survey"),
        at,
        Payload::Survey(pb::SurveyResponse {
            response_id: format!("{ticket}-survey"),
            kind: kind as i32,
            score,
            ticket_id: ticket.into(),
            agent_id: agent.id.clone(),
            ..Default::default()
        }),
    );
}

/// The QA items each team's reviews check: (key, group).
fn qa_items(template: &str) -> &'static [(&'static str, &'static str)] {
    match template {
        "ecommerce" => &[
            ("greeting", "service"),
            ("product_accuracy", "process"),
            ("tone", "service"),
        ],
        "finance" => &[
            ("identity_check", "compliance"),
            ("risk_disclosure", "compliance"),
            ("recording_notice", "compliance"),
            ("greeting", "service"),
        ],
        _ => &[
            ("spare_part_request", "process"),
            ("info_return", "process"),
            ("follow_up_call", "process"),
            ("safety_briefing", "compliance"),
        ],
    }
}

/// Four QA reviews; the veto agent's second one records the team's veto.
fn qa_reviews(rng: &mut Rng, out: &mut Events, agent: &Agent) {
    for r in 0..4 {
        let id = format!("{}-qa{r}", agent.id);
        let items: Vec<pb::QaItem> = qa_items(agent.team.template)
            .iter()
            .map(|(key, group)| {
                let passed = rng.chance(0.8 + 0.19 * agent.skill);
                let score = if passed {
                    rng.range(88.0, 100.0)
                } else {
                    rng.range(40.0, 75.0)
                };
                pb::QaItem {
                    key: (*key).into(),
                    group: (*group).into(),
                    passed,
                    score: score.round(),
                }
            })
            .collect();
        let score = items.iter().map(|i| i.score).sum::<f64>() / items.len() as f64;
        let violations = if agent.veto && r == 1 {
            vec![veto_violation(agent.team.template)]
        } else {
            Vec::new()
        };
        out.push(
            id.clone(),
            MONTH_START + (3 + 7 * r) * DAY + rng.int(9, 17) * HOUR,
            Payload::QaReview(pb::QaReview {
                review_id: id,
                agent_id: agent.id.clone(),
                reviewer_id: format!("qa-lead-{}", agent.team.id),
                score: score.round(),
                items,
                violations,
                ..Default::default()
            }),
        );
    }
}

/// The violation that fires a team template's veto.
fn veto_violation(template: &str) -> pb::Violation {
    let (code, note) = match template {
        "ecommerce" => (
            "false_promise",
            "promised next-day delivery that was not possible",
        ),
        "finance" => (
            "unsuitable_product_advice",
            "recommended a product above the client's risk level",
        ),
        _ => (
            "safety_incident",
            "worked on a live unit without isolating it",
        ),
    };
    pb::Violation {
        code: code.into(),
        severity: pb::Severity::Major as i32,
        note: note.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_month() {
        let a = month(7);
        assert_eq!(a, month(7));
        assert_ne!(a, month(8));
        assert!(a.len() > 20_000, "{} events", a.len());
    }

    #[test]
    fn event_ids_are_unique() {
        let events = month(1);
        let mut ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
        ids.sort_unstable();
        let before = ids.len();
        ids.dedup();
        assert_eq!(before, ids.len());
    }
}
