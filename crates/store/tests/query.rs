//! The SQL push-down of measures against real databases: every case runs on
//! SQLite and on PostgreSQL over hand-made rows, and compares with values
//! computed by hand.

use chrono::{DateTime, Duration, TimeZone, Utc};
use kpi_domain::filter;
use kpi_domain::measure::{Aggregation, Attribution, Measure, TimeBasis};
use kpi_domain::schema::FactType;
use kpi_store::ingestion::{
    FactsQuery, GroupValue, Grouping, MeasureQuery, QueryError, list_facts, measure_statement,
    query_measure, query_measures,
};
use kpi_testkit::{DbKind, TestDb};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend};
use sea_orm_migration::MigratorTrait;

const DAY: i64 = 86_400;

/// 2024-03-01T00:00:00Z, the start of every test period.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap()
}

/// The period's end: 2024-04-01T00:00:00Z.
fn t_end() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 4, 1, 0, 0, 0).unwrap()
}

/// Microseconds of `t0 + seconds`.
fn at(seconds: i64) -> i64 {
    (t0() + Duration::seconds(seconds)).timestamp_micros()
}

async fn setup(kind: DbKind) -> (TestDb, DatabaseConnection) {
    let db = TestDb::new(kind).await.unwrap();
    let conn = kpi_store::connect(&db.url).await.unwrap();
    kpi_store::ingestion::Migrator::up(&conn, None)
        .await
        .unwrap();
    (db, conn)
}

/// A SQL literal (tests only; the code under test binds everything).
trait Lit {
    fn lit(&self) -> String;
}

impl Lit for &str {
    fn lit(&self) -> String {
        format!("'{}'", self.replace('\'', "''"))
    }
}

impl Lit for f64 {
    fn lit(&self) -> String {
        format!("{self:?}")
    }
}

impl Lit for i64 {
    fn lit(&self) -> String {
        self.to_string()
    }
}

impl Lit for bool {
    fn lit(&self) -> String {
        if *self { "TRUE" } else { "FALSE" }.to_string()
    }
}

impl<T: Lit> Lit for Option<T> {
    fn lit(&self) -> String {
        self.as_ref().map_or_else(|| "NULL".to_string(), Lit::lit)
    }
}

/// One row to insert with a plain INSERT.
#[derive(Clone)]
struct Row {
    table: &'static str,
    cols: Vec<(&'static str, String)>,
}

impl Row {
    fn new(table: &'static str) -> Self {
        Self {
            table,
            cols: Vec::new(),
        }
    }

    fn v(mut self, col: &'static str, value: impl Lit) -> Self {
        let value = value.lit();
        match self.cols.iter_mut().find(|(c, _)| *c == col) {
            Some(slot) => slot.1 = value,
            None => self.cols.push((col, value)),
        }
        self
    }

    async fn insert(&self, conn: &DatabaseConnection) {
        let names: Vec<String> = self.cols.iter().map(|(c, _)| format!("\"{c}\"")).collect();
        let values: Vec<&str> = self.cols.iter().map(|(_, v)| v.as_str()).collect();
        let sql = format!(
            "INSERT INTO \"{}\" ({}) VALUES ({})",
            self.table,
            names.join(", "),
            values.join(", ")
        );
        conn.execute_unprepared(&sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

/// A ticket created `created` seconds after t0, with every required field.
fn ticket(tenant: &str, id: &str, agent: Option<&str>, created: i64) -> Row {
    Row::new("ing_fact_ticket")
        .v("tenant", tenant)
        .v("ticket_id", id)
        .v("channel", "chat")
        .v("category", "billing")
        .v("priority", "p2")
        .v("customer_id", "c1")
        .v("customer_segment", "standard")
        .v("status", "open")
        .v("created_at", at(created))
        .v("resolved", false)
        .v("reopen_count", 0.0)
        .v("agent_reply_count", 1.0)
        .v("customer_contacts", 1.0)
        .v("handle_seconds", 60.0)
        .v("escalation_level", "none")
        .v("is_complaint", false)
        .v("agent_id", agent)
        .v("ingested_at", at(0))
}

fn survey(tenant: &str, id: &str, agent: &str, kind: &str, score: f64, responded: i64) -> Row {
    Row::new("ing_fact_survey")
        .v("tenant", tenant)
        .v("response_id", id)
        .v("kind", kind)
        .v("score", score)
        .v("agent_id", agent)
        .v("customer_segment", "standard")
        .v("responded_at", at(responded))
        .v("ingested_at", at(0))
}

fn roster(agent: &str, no: i64, from: Option<i64>, until: Option<i64>, team: &str) -> Row {
    Row::new("ing_roster")
        .v("tenant", "acme")
        .v("agent_id", agent)
        .v("interval_no", no)
        .v("valid_from", from.map(at))
        .v("valid_until", until.map(at))
        .v("team_id", team)
        .v("role", "tier1")
        .v("active", true)
        .v("display_name", agent)
}

fn contributor(ticket: &str, agent: &str, share: f64) -> Row {
    Row::new("ing_ticket_contributors")
        .v("tenant", "acme")
        .v("ticket_id", ticket)
        .v("agent_id", agent)
        .v("share", share)
}

async fn insert_all(conn: &DatabaseConnection, rows: &[Row]) {
    for row in rows {
        row.insert(conn).await;
    }
}

fn measure(fact_type: FactType, aggregation: Aggregation, field: &str, filter: &str) -> Measure {
    Measure {
        fact_type,
        aggregation,
        field: field.to_string(),
        percentile: 0.0,
        filter: filter.to_string(),
        time_field: String::new(),
    }
}

/// The query of `m` over March 2024 for tenant acme.
fn march<'a>(
    m: &'a Measure,
    grouping: Grouping,
    attribution: Attribution,
    time_basis: TimeBasis,
    subjects: &'a [String],
) -> MeasureQuery<'a> {
    MeasureQuery {
        tenant: "acme",
        measure: m,
        attribution,
        time_basis,
        grouping,
        start: t0(),
        end: t_end(),
        subjects,
    }
}

/// Computes `m` over March 2024 for tenant acme.
async fn run(
    conn: &DatabaseConnection,
    m: &Measure,
    grouping: Grouping,
    attribution: Attribution,
    time_basis: TimeBasis,
    subjects: &[String],
) -> Vec<GroupValue> {
    let q = march(m, grouping, attribution, time_basis, subjects);
    query_measure(conn, &q)
        .await
        .unwrap_or_else(|e| panic!("{m:?}: {e}"))
}

async fn by(conn: &DatabaseConnection, m: &Measure, grouping: Grouping) -> Vec<GroupValue> {
    run(
        conn,
        m,
        grouping,
        Attribution::Default,
        TimeBasis::Calendar,
        &[],
    )
    .await
}

fn gv(subject: &str, value: Option<f64>, count: i64) -> GroupValue {
    GroupValue {
        subject_id: subject.to_string(),
        value,
        count,
    }
}

/// `(subject, value, count)` of each group, for compact assertions.
fn flat(values: &[GroupValue]) -> Vec<(String, Option<f64>, i64)> {
    values
        .iter()
        .map(|g| (g.subject_id.clone(), g.value, g.count))
        .collect()
}

fn expect(rows: &[(&str, f64, i64)]) -> Vec<(String, Option<f64>, i64)> {
    rows.iter()
        .map(|(s, v, n)| (s.to_string(), Some(*v), *n))
        .collect()
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    super::$name(kpi_testkit::DbKind::Sqlite).await;
                }

                #[tokio::test]
                async fn postgres() {
                    super::$name(kpi_testkit::DbKind::Postgres).await;
                }
            }
        )*
    };
}

on_both!(
    count_with_filter_per_agent,
    half_open_window_and_tenant_isolation,
    fcr_ratio_with_three_and_seven_day_windows,
    mean_of_csat_scores,
    percentiles_interpolate,
    business_hours_columns,
    team_through_the_roster,
    first_responder_attribution,
    all_contributors_weighting,
    in_not_in_and_null_filters,
    list_facts_pages_by_id,
    min_max_of_timestamps_and_count_distinct,
    batched_measures_equal_single_ones,
    batched_contributions_by_hand,
    batched_call_checks_every_measure_first,
);

async fn count_with_filter_per_agent(kind: DbKind) {
    let (_db, conn) = setup(kind).await;
    insert_all(
        &conn,
        &[
            ticket("acme", "t1", Some("a1"), DAY),
            ticket("acme", "t2", Some("a1"), 2 * DAY),
            ticket("acme", "t3", Some("a1"), 3 * DAY).v("channel", "email"),
            ticket("acme", "t4", Some("a2"), 4 * DAY),
            ticket("acme", "t5", Some("a2"), 5 * DAY).v("channel", "phone"),
            ticket("acme", "t6", None, 6 * DAY),
        ],
    )
    .await;
    let m = Measure::count(FactType::Ticket, r#"channel == "chat""#);
    assert_eq!(
        flat(&by(&conn, &m, Grouping::Agent).await),
        expect(&[("a1", 2.0, 2), ("a2", 1.0, 1)])
    );
    // The unattributed ticket counts for the tenant only.
    assert_eq!(
        by(&conn, &m, Grouping::Tenant).await,
        vec![gv("", Some(4.0), 4)]
    );
    let only_a2 = run(
        &conn,
        &m,
        Grouping::Agent,
        Attribution::Default,
        TimeBasis::Calendar,
        &["a2".to_string(), "nobody".to_string()],
    )
    .await;
    assert_eq!(flat(&only_a2), expect(&[("a2", 1.0, 1)]));
    // Nothing matches: no groups, not even the tenant's.
    let none = Measure::count(FactType::Ticket, r#"channel == "social""#);
    assert_eq!(by(&conn, &none, Grouping::Agent).await, vec![]);
    assert_eq!(by(&conn, &none, Grouping::Tenant).await, vec![]);
}

async fn half_open_window_and_tenant_isolation(kind: DbKind) {
    let (_db, conn) = setup(kind).await;
    let end = (t_end() - t0()).num_seconds();
    insert_all(
        &conn,
        &[
            ticket("acme", "start", Some("a1"), 0),
            ticket("acme", "before", Some("a1"), -1),
            ticket("acme", "last", Some("a1"), end - 1),
            ticket("acme", "end", Some("a1"), end),
            // The same ids and agent at another tenant never count.
            ticket("other", "start", Some("a1"), 0),
            ticket("other", "x1", Some("a1"), DAY),
            ticket("other", "x2", Some("a9"), DAY),
        ],
    )
    .await;
    let m = Measure::count(FactType::Ticket, "");
    assert_eq!(
        flat(&by(&conn, &m, Grouping::Agent).await),
        expect(&[("a1", 2.0, 2)])
    );
    assert_eq!(
        flat(&by(&conn, &m, Grouping::Tenant).await),
        expect(&[("", 2.0, 2)])
    );
    let facts = list_facts(&conn, &facts_query(FactType::Ticket, None, None, None, 100))
        .await
        .unwrap();
    let ids: Vec<&str> = facts
        .iter()
        .map(|f| f["ticket_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["last", "start"]);
}

async fn fcr_ratio_with_three_and_seven_day_windows(kind: DbKind) {
    let (_db, conn) = setup(kind).await;
    let resolved = |id: &str, reopen: Option<f64>, gap: Option<f64>| {
        ticket("acme", id, Some("a1"), DAY)
            .v("status", "resolved")
            .v("resolved", true)
            .v("first_resolved_at", at(2 * DAY))
            .v("last_resolved_at", at(2 * DAY))
            .v("first_reopen_seconds", reopen)
            .v("next_contact_gap_seconds", gap)
    };
    insert_all(
        &conn,
        &[
            resolved("t1", None, None),                       // FCR 3d and 7d
            resolved("t2", Some(100_000.0), None),            // reopened within 3d
            resolved("t3", Some(400_000.0), None),            // reopened within 7d only
            resolved("t4", None, Some(200_000.0)),            // came back within 3d
            resolved("t5", None, Some(500_000.0)),            // came back within 7d only
            resolved("t6", Some(700_000.0), Some(800_000.0)), // FCR 3d and 7d
            resolved("t7", Some(259_200.0), None),            // exactly 3 days: not FCR
            // Never resolved: outside any period on first_resolved_at.
            ticket("acme", "t8", Some("a1"), DAY),
            // Resolved before the period.
            resolved("t9", None, None).v("first_resolved_at", at(-DAY)),
            resolved("u1", None, None).v("agent_id", "a2"),
        ],
    )
    .await;
    let on_resolution = |filter: &str| {
        let mut m = Measure::count(FactType::Ticket, filter);
        m.time_field = "first_resolved_at".to_string();
        m
    };
    let window = |seconds: u32| {
        format!(
            "resolved && !(first_reopen_seconds <= {seconds}) && !(next_contact_gap_seconds <= {seconds})"
        )
    };
    let denominator = by(&conn, &on_resolution("resolved"), Grouping::Agent).await;
    assert_eq!(
        flat(&denominator),
        expect(&[("a1", 7.0, 7), ("a2", 1.0, 1)])
    );
    let fcr3 = by(&conn, &on_resolution(&window(259_200)), Grouping::Agent).await;
    assert_eq!(flat(&fcr3), expect(&[("a1", 4.0, 4), ("a2", 1.0, 1)]));
    let fcr7 = by(&conn, &on_resolution(&window(604_800)), Grouping::Agent).await;
    assert_eq!(flat(&fcr7), expect(&[("a1", 2.0, 2), ("a2", 1.0, 1)]));
    let tenant = by(&conn, &on_resolution(&window(259_200)), Grouping::Tenant).await;
    assert_eq!(flat(&tenant), expect(&[("", 5.0, 5)]));
}

async fn mean_of_csat_scores(kind: DbKind) {
    let (_db, conn) = setup(kind).await;
    insert_all(
        &conn,
        &[
            survey("acme", "s1", "a1", "csat", 5.0, DAY),
            survey("acme", "s2", "a1", "csat", 4.0, DAY),
            survey("acme", "s3", "a1", "csat", 3.0, DAY),
            survey("acme", "s4", "a1", "nps", 10.0, DAY),
            survey("acme", "s5", "a2", "csat", 2.0, DAY),
            survey("acme", "s6", "a2", "csat", 4.0, 2 * DAY),
            survey("other", "s1", "a1", "csat", 1.0, DAY),
        ],
    )
    .await;
    let m = measure(
        FactType::Survey,
        Aggregation::Mean,
        "score",
        r#"kind == "csat""#,
    );
    assert_eq!(
        flat(&by(&conn, &m, Grouping::Agent).await),
        expect(&[("a1", 4.0, 3), ("a2", 3.0, 2)])
    );
    assert_eq!(
        flat(&by(&conn, &m, Grouping::Tenant).await),
        expect(&[("", 18.0 / 5.0, 5)])
    );
    let sum = measure(
        FactType::Survey,
        Aggregation::Sum,
        "score",
        r#"kind == "csat""#,
    );
    assert_eq!(
        flat(&by(&conn, &sum, Grouping::Agent).await),
        expect(&[("a1", 12.0, 3), ("a2", 6.0, 2)])
    );
    // RatedAgent is the survey's natural owner.
    let rated = run(
        &conn,
        &m,
        Grouping::Agent,
        Attribution::RatedAgent,
        TimeBasis::Calendar,
        &[],
    )
    .await;
    assert_eq!(flat(&rated), expect(&[("a1", 4.0, 3), ("a2", 3.0, 2)]));
}

/// PostgreSQL's percentile_cont, in Rust.
fn percentile_cont(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let pos = p * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor(), pos.ceil());
    if lo == hi {
        sorted[lo as usize]
    } else {
        let (a, b) = (sorted[lo as usize], sorted[hi as usize]);
        a + (pos - lo) * (b - a)
    }
}

async fn percentiles_interpolate(kind: DbKind) {
    let (_db, conn) = setup(kind).await;
    let mut rows = Vec::new();
    for (i, v) in (1..=10).map(|k| f64::from(k) * 10.0).enumerate() {
        rows.push(ticket("acme", &format!("a{i}"), Some("a1"), DAY).v("first_response_seconds", v));
    }
    // Unordered, with duplicates and a null.
    let a2 = [7.5, 3.0, 12.25, 3.0, 100.0, 0.5, 42.0];
    for (i, v) in a2.iter().enumerate() {
        rows.push(
            ticket("acme", &format!("b{i}"), Some("a2"), DAY).v("first_response_seconds", *v),
        );
    }
    rows.push(ticket("acme", "b-null", Some("a2"), DAY));
    rows.push(ticket("acme", "c0", Some("a3"), DAY).v("first_response_seconds", 5.0));
    rows.push(ticket("acme", "d0", Some("a4"), DAY));
    insert_all(&conn, &rows).await;
    let a1: Vec<f64> = (1..=10).map(|k| f64::from(k) * 10.0).collect();
    let mut all = a1.clone();
    all.extend(a2);
    all.push(5.0);
    for p in [90.0, 50.0, 100.0, 1.0, 33.3, 75.0, 99.9] {
        let mut m = measure(
            FactType::Ticket,
            Aggregation::Percentile,
            "first_response_seconds",
            "",
        );
        m.percentile = p;
        let got = by(&conn, &m, Grouping::Agent).await;
        let want = vec![
            gv("a1", Some(percentile_cont(&a1, p / 100.0)), 10),
            gv("a2", Some(percentile_cont(&a2, p / 100.0)), 7),
            gv("a3", Some(5.0), 1),
            gv("a4", None, 0),
        ];
        assert_eq!(got, want, "p{p}");
        let tenant = by(&conn, &m, Grouping::Tenant).await;
        assert_eq!(
            tenant,
            vec![gv("", Some(percentile_cont(&all, p / 100.0)), 18)],
            "p{p}"
        );
    }
    let mut p90 = measure(
        FactType::Ticket,
        Aggregation::Percentile,
        "first_response_seconds",
        "",
    );
    p90.percentile = 90.0;
    assert_eq!(by(&conn, &p90, Grouping::Agent).await[0].value, Some(91.0));
}

async fn business_hours_columns(kind: DbKind) {
    let (_db, conn) = setup(kind).await;
    insert_all(
        &conn,
        &[
            ticket("acme", "t1", Some("a1"), DAY)
                .v("first_response_seconds", 1000.0)
                .v("first_response_seconds_bh", 400.0),
            ticket("acme", "t2", Some("a1"), DAY)
                .v("first_response_seconds", 3000.0)
                .v("first_response_seconds_bh", 1000.0),
        ],
    )
    .await;
    let mean = measure(
        FactType::Ticket,
        Aggregation::Mean,
        "first_response_seconds",
        "",
    );
    let calendar = run(
        &conn,
        &mean,
        Grouping::Agent,
        Attribution::Default,
        TimeBasis::Calendar,
        &[],
    )
    .await;
    assert_eq!(flat(&calendar), expect(&[("a1", 2000.0, 2)]));
    let business = run(
        &conn,
        &mean,
        Grouping::Agent,
        Attribution::Default,
        TimeBasis::BusinessHours,
        &[],
    )
    .await;
    assert_eq!(flat(&business), expect(&[("a1", 700.0, 2)]));
    let within = Measure::count(FactType::Ticket, "first_response_seconds <= 500");
    let calendar = run(
        &conn,
        &within,
        Grouping::Agent,
        Attribution::Default,
        TimeBasis::Calendar,
        &[],
    )
    .await;
    assert_eq!(calendar, vec![]);
    let business = run(
        &conn,
        &within,
        Grouping::Agent,
        Attribution::Default,
        TimeBasis::BusinessHours,
        &[],
    )
    .await;
    assert_eq!(flat(&business), expect(&[("a1", 1.0, 1)]));
    // A duration without a business-hours variant cannot be asked for in business hours.
    let handle = measure(FactType::Ticket, Aggregation::Mean, "handle_seconds", "");
    let q = MeasureQuery {
        tenant: "acme",
        measure: &handle,
        attribution: Attribution::Default,
        time_basis: TimeBasis::BusinessHours,
        grouping: Grouping::Agent,
        start: t0(),
        end: t_end(),
        subjects: &[],
    };
    assert!(matches!(
        query_measure(&conn, &q).await,
        Err(QueryError::Invalid(_))
    ));
}

async fn team_through_the_roster(kind: DbKind) {
    let (_db, conn) = setup(kind).await;
    insert_all(
        &conn,
        &[
            // a1 moves from team A to team B on day 10.
            roster("a1", 1, None, Some(10 * DAY), "A"),
            roster("a1", 2, Some(10 * DAY), None, "B"),
            roster("a2", 1, Some(-100 * DAY), None, "A"),
            // The fact's own team column is stale for a1; the roster wins.
            ticket("acme", "t1", Some("a1"), DAY).v("team_id", "stale"),
            ticket("acme", "t2", Some("a1"), 10 * DAY - 1).v("team_id", "stale"),
            ticket("acme", "t3", Some("a1"), 10 * DAY).v("team_id", "stale"),
            ticket("acme", "t4", Some("a1"), 15 * DAY),
            ticket("acme", "t5", Some("a2"), 2 * DAY),
            // Not in the roster: the fact's own team.
            ticket("acme", "t6", Some("a3"), 3 * DAY).v("team_id", "C"),
            // Nobody credited: no team either.
            ticket("acme", "t7", None, 3 * DAY).v("team_id", "D"),
        ],
    )
    .await;
    let m = Measure::count(FactType::Ticket, "");
    assert_eq!(
        flat(&by(&conn, &m, Grouping::Team).await),
        expect(&[("A", 3.0, 3), ("B", 2.0, 2), ("C", 1.0, 1)])
    );
    let only_b = run(
        &conn,
        &m,
        Grouping::Team,
        Attribution::Default,
        TimeBasis::Calendar,
        &["B".to_string()],
    )
    .await;
    assert_eq!(flat(&only_b), expect(&[("B", 2.0, 2)]));
    // A filter on team_id means the roster's team too.
    let in_b = Measure::count(FactType::Ticket, r#"team_id == "B""#);
    assert_eq!(
        flat(&by(&conn, &in_b, Grouping::Agent).await),
        expect(&[("a1", 2.0, 2)])
    );
    let stale = Measure::count(FactType::Ticket, r#"team_id == "stale""#);
    assert_eq!(by(&conn, &stale, Grouping::Agent).await, vec![]);
    // Drill-down into team B.
    let mut q = facts_query(
        FactType::Ticket,
        None,
        Some((Grouping::Team, "B")),
        None,
        10,
    );
    q.attribution = Attribution::Default;
    let facts = list_facts(&conn, &q).await.unwrap();
    let ids: Vec<&str> = facts
        .iter()
        .map(|f| f["ticket_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["t3", "t4"]);
}

async fn first_responder_attribution(kind: DbKind) {
    let (_db, conn) = setup(kind).await;
    let responded = |id: &str, agent: &str, responder: &str, team: &str, seconds: f64| {
        ticket("acme", id, Some(agent), DAY)
            .v("team_id", "resolvers")
            .v("first_responder_id", responder)
            .v("first_responder_team_id", team)
            .v("first_response_seconds", seconds)
    };
    insert_all(
        &conn,
        &[
            roster("r2", 1, None, None, "R"),
            responded("t1", "a1", "r1", "X", 100.0),
            responded("t2", "a1", "r1", "X", 300.0),
            responded("t3", "a1", "r2", "X", 50.0),
            ticket("acme", "t4", Some("a1"), DAY),
        ],
    )
    .await;
    let mean = measure(
        FactType::Ticket,
        Aggregation::Mean,
        "first_response_seconds",
        "",
    );
    let default = run(
        &conn,
        &mean,
        Grouping::Agent,
        Attribution::Default,
        TimeBasis::Calendar,
        &[],
    )
    .await;
    assert_eq!(flat(&default), expect(&[("a1", 150.0, 3)]));
    let resolving = run(
        &conn,
        &mean,
        Grouping::Agent,
        Attribution::ResolvingAgent,
        TimeBasis::Calendar,
        &[],
    )
    .await;
    assert_eq!(resolving, default);
    let first = run(
        &conn,
        &mean,
        Grouping::Agent,
        Attribution::FirstResponder,
        TimeBasis::Calendar,
        &[],
    )
    .await;
    assert_eq!(flat(&first), expect(&[("r1", 200.0, 2), ("r2", 50.0, 1)]));
    // Teams: the roster's for r2, the first responder's recorded team for r1.
    let teams = run(
        &conn,
        &mean,
        Grouping::Team,
        Attribution::FirstResponder,
        TimeBasis::Calendar,
        &[],
    )
    .await;
    assert_eq!(flat(&teams), expect(&[("R", 50.0, 1), ("X", 200.0, 2)]));
    let count = Measure::count(FactType::Ticket, "");
    let first = run(
        &conn,
        &count,
        Grouping::Agent,
        Attribution::FirstResponder,
        TimeBasis::Calendar,
        &[],
    )
    .await;
    assert_eq!(flat(&first), expect(&[("r1", 2.0, 2), ("r2", 1.0, 1)]));
    let mut q = facts_query(
        FactType::Ticket,
        None,
        Some((Grouping::Agent, "r1")),
        None,
        10,
    );
    q.attribution = Attribution::FirstResponder;
    let facts = list_facts(&conn, &q).await.unwrap();
    let ids: Vec<&str> = facts
        .iter()
        .map(|f| f["ticket_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["t1", "t2"]);
}

async fn all_contributors_weighting(kind: DbKind) {
    let (_db, conn) = setup(kind).await;
    insert_all(
        &conn,
        &[
            ticket("acme", "t1", Some("a1"), DAY)
                .v("handle_seconds", 100.0)
                .v("first_response_seconds", 100.0),
            ticket("acme", "t2", Some("a1"), DAY)
                .v("handle_seconds", 300.0)
                .v("first_response_seconds", 300.0),
            ticket("acme", "t3", Some("a2"), DAY).v("handle_seconds", 200.0),
            // No contributors: credited to nobody under this attribution.
            ticket("acme", "t4", Some("a1"), DAY),
            contributor("t1", "a1", 0.5),
            contributor("t1", "a2", 0.5),
            contributor("t2", "a1", 1.0),
            contributor("t3", "a1", 0.25),
            contributor("t3", "a2", 0.75),
            roster("a1", 1, None, None, "A"),
            roster("a2", 1, None, None, "B"),
        ],
    )
    .await;
    let all = |m: &Measure, grouping: Grouping| {
        let conn = &conn;
        let m = m.clone();
        async move {
            run(
                conn,
                &m,
                grouping,
                Attribution::AllContributors,
                TimeBasis::Calendar,
                &[],
            )
            .await
        }
    };
    let count = Measure::count(FactType::Ticket, "");
    assert_eq!(
        flat(&all(&count, Grouping::Agent).await),
        expect(&[("a1", 1.75, 3), ("a2", 1.25, 2)])
    );
    assert_eq!(
        flat(&all(&count, Grouping::Tenant).await),
        expect(&[("", 3.0, 5)])
    );
    assert_eq!(
        flat(&all(&count, Grouping::Team).await),
        expect(&[("A", 1.75, 3), ("B", 1.25, 2)])
    );
    let sum = measure(FactType::Ticket, Aggregation::Sum, "handle_seconds", "");
    assert_eq!(
        flat(&all(&sum, Grouping::Agent).await),
        expect(&[("a1", 400.0, 3), ("a2", 200.0, 2)])
    );
    // t3 has no first response: it weighs nothing in the mean.
    let mean = measure(
        FactType::Ticket,
        Aggregation::Mean,
        "first_response_seconds",
        "",
    );
    assert_eq!(
        flat(&all(&mean, Grouping::Agent).await),
        expect(&[("a1", 350.0 / 1.5, 2), ("a2", 100.0, 1)])
    );
    let max = measure(FactType::Ticket, Aggregation::Max, "handle_seconds", "");
    assert_eq!(
        flat(&all(&max, Grouping::Agent).await),
        expect(&[("a1", 300.0, 3), ("a2", 200.0, 2)])
    );
    let mut q = facts_query(
        FactType::Ticket,
        None,
        Some((Grouping::Agent, "a2")),
        None,
        10,
    );
    q.attribution = Attribution::AllContributors;
    let facts = list_facts(&conn, &q).await.unwrap();
    let ids: Vec<&str> = facts
        .iter()
        .map(|f| f["ticket_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["t1", "t3"]);
    q.subject = None;
    let facts = list_facts(&conn, &q).await.unwrap();
    assert_eq!(facts.len(), 3, "each contributed ticket once");
}

async fn in_not_in_and_null_filters(kind: DbKind) {
    let (_db, conn) = setup(kind).await;
    insert_all(
        &conn,
        &[
            ticket("acme", "t1", Some("a1"), DAY).v("first_reopen_seconds", 5.0),
            ticket("acme", "t2", Some("a1"), 2 * DAY).v("channel", "email"),
            ticket("acme", "t3", Some("a1"), 3 * DAY)
                .v("channel", "phone")
                .v("first_reopen_seconds", 7.0),
            ticket("acme", "t4", None, 4 * DAY).v("channel", "email"),
            ticket("acme", "t5", Some("a2"), 5 * DAY)
                .v("channel", "social")
                .v("is_complaint", true),
            Row::new("ing_fact_qa_item")
                .v("tenant", "acme")
                .v("item_id", "r1/k1")
                .v("review_id", "r1")
                .v("agent_id", "a1")
                .v("key", "k1")
                .v("group", "compliance")
                .v("passed", true)
                .v("score", 100.0)
                .v("reviewed_at", at(DAY))
                .v("ingested_at", at(0)),
            Row::new("ing_fact_qa_item")
                .v("tenant", "acme")
                .v("item_id", "r1/k2")
                .v("review_id", "r1")
                .v("agent_id", "a1")
                .v("key", "k2")
                .v("group", "process")
                .v("passed", false)
                .v("score", 0.0)
                .v("reviewed_at", at(DAY))
                .v("ingested_at", at(0)),
        ],
    )
    .await;
    let tenant_count = |filter: &'static str| {
        let conn = &conn;
        async move {
            let m = Measure::count(FactType::Ticket, filter);
            by(conn, &m, Grouping::Tenant)
                .await
                .first()
                .map_or(0, |g| g.count)
        }
    };
    for (filter, want) in [
        (r#"channel in ["chat", "email"]"#, 3),
        (r#"channel not in ["chat", "email"]"#, 2),
        (r#"!(channel in ["chat"])"#, 4),
        ("agent_id == null", 1),
        ("agent_id != null", 4),
        (r#"agent_id in ["a2", "zz"]"#, 1),
        // A null is neither in nor out of a list.
        (r#"agent_id not in ["a2"]"#, 3),
        (r#"!(agent_id in ["a2"])"#, 4),
        ("first_reopen_seconds in [5, 6]", 1),
        ("first_reopen_seconds not in [5]", 1),
        ("!(first_reopen_seconds in [5])", 4),
        ("first_reopen_seconds == null", 3),
        ("first_reopen_seconds != null", 2),
        ("first_reopen_seconds != 5", 1),
        ("!(first_reopen_seconds == 5)", 4),
        ("first_reopen_seconds > 1 || is_complaint", 3),
        ("is_complaint", 1),
        ("!is_complaint", 4),
        ("is_complaint == false", 4),
        (r#"created_at >= "2024-03-03T00:00:00Z""#, 4),
        (r#"created_at > "2024-03-03T01:00:00+01:00""#, 3),
        ("created_at < 1709424000", 1), // 2024-03-03T00:00:00Z in unix seconds
        (r#"created_at in ["2024-03-02T00:00:00Z"]"#, 1),
        ("first_resolved_at == null", 5),
        (
            r#"category < "c" && (channel == "chat" || channel == "phone")"#,
            2,
        ),
    ] {
        assert_eq!(tenant_count(filter).await, want, "{filter}");
    }
    // Unvalidated filters (list_facts takes a parsed tree) keep eval's
    // two-valued logic: bools are not ordered, mismatched types never match.
    for (src, want) in [
        ("resolved > false", 0),
        ("channel == 1", 0),
        ("channel != 1", 0),
        (r#"channel not in ["chat", 1]"#, 0),
        (r#"channel in ["chat", 1]"#, 1),
        (r#"created_at == "yesterday""#, 0),
        ("!(first_reopen_seconds <= 6)", 4),
    ] {
        let expr = filter::parse(src).unwrap();
        let q = facts_query(FactType::Ticket, Some(&expr), None, None, 100);
        assert_eq!(list_facts(&conn, &q).await.unwrap().len(), want, "{src}");
    }
    let group = Measure::count(FactType::QaItem, r#"group == "compliance" && passed"#);
    assert_eq!(
        flat(&by(&conn, &group, Grouping::Agent).await),
        expect(&[("a1", 1.0, 1)])
    );
    let distinct_groups = measure(FactType::QaItem, Aggregation::CountDistinct, "group", "");
    assert_eq!(
        flat(&by(&conn, &distinct_groups, Grouping::Agent).await),
        expect(&[("a1", 2.0, 2)])
    );
}

fn facts_query<'a>(
    fact_type: FactType,
    filter: Option<&'a filter::Expr>,
    subject: Option<(Grouping, &'a str)>,
    after_id: Option<&'a str>,
    limit: u64,
) -> FactsQuery<'a> {
    FactsQuery {
        tenant: "acme",
        fact_type,
        time_field: "",
        start: t0(),
        end: t_end(),
        filter,
        subject,
        attribution: Attribution::Default,
        time_basis: TimeBasis::Calendar,
        after_id,
        limit,
    }
}

async fn list_facts_pages_by_id(kind: DbKind) {
    let (_db, conn) = setup(kind).await;
    let mut rows = Vec::new();
    for (i, id) in ["k05", "k01", "K9", "k03", "k02", "k04"].iter().enumerate() {
        let chat = i != 3;
        rows.push(
            ticket(
                "acme",
                id,
                Some(if i == 5 { "a2" } else { "a1" }),
                DAY + i as i64,
            )
            .v("channel", if chat { "chat" } else { "email" })
            .v("first_response_seconds", 30.0)
            .v("first_response_seconds_bh", 20.0),
        );
    }
    rows.push(ticket("other", "k00", Some("a1"), DAY));
    rows.push(
        ticket("acme", "k00", Some("a1"), DAY)
            .v("resolved", true)
            .v("first_resolved_at", at(DAY) + 500_000)
            .v("first_reopen_seconds", 12.5),
    );
    insert_all(&conn, &rows).await;
    let filter = filter::parse(r#"channel == "chat" && first_response_seconds < 25"#).unwrap();
    let mut pages: Vec<Vec<String>> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut q = facts_query(
            FactType::Ticket,
            Some(&filter),
            Some((Grouping::Agent, "a1")),
            after.as_deref(),
            2,
        );
        q.time_basis = TimeBasis::BusinessHours;
        let page = list_facts(&conn, &q).await.unwrap();
        assert!(page.len() <= 2);
        let ids: Vec<String> = page
            .iter()
            .map(|f| f["ticket_id"].as_str().unwrap().to_string())
            .collect();
        let Some(last) = ids.last().cloned() else {
            break;
        };
        pages.push(ids);
        after = Some(last);
    }
    // Byte order: upper case first; k03 is email, k04 is a2's, k00 has no response.
    assert_eq!(pages, vec![vec!["K9", "k01"], vec!["k02", "k05"]]);
    // Calendar time: 30 s is not under 25 s.
    let q = facts_query(
        FactType::Ticket,
        Some(&filter),
        Some((Grouping::Agent, "a1")),
        None,
        2,
    );
    assert!(list_facts(&conn, &q).await.unwrap().is_empty());

    // The JSON shape of a fact.
    let all = list_facts(&conn, &facts_query(FactType::Ticket, None, None, None, 1))
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    let fact = &all[0];
    let mut keys: Vec<&str> = fact.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut want: Vec<&str> = FactType::Ticket.schema().field_names();
    want.sort_unstable();
    assert_eq!(keys, want);
    assert_eq!(fact["ticket_id"], "K9");
    let first = list_facts(
        &conn,
        &facts_query(
            FactType::Ticket,
            Some(&filter::parse("resolved").unwrap()),
            None,
            None,
            10,
        ),
    )
    .await
    .unwrap();
    assert_eq!(first.len(), 1);
    let f = &first[0];
    assert_eq!(f["ticket_id"], "k00");
    assert_eq!(f["created_at"], "2024-03-02T00:00:00Z");
    assert_eq!(f["first_resolved_at"], "2024-03-02T00:00:00.500Z");
    assert_eq!(f["first_response_at"], serde_json::Value::Null);
    assert_eq!(f["resolved"], true);
    assert_eq!(f["is_complaint"], false);
    assert_eq!(f["first_reopen_seconds"], 12.5);
    assert_eq!(f["handle_seconds"], 60.0);
    assert_eq!(f["channel"], "chat");
    assert_eq!(f["agent_id"], "a1");
    assert_eq!(f["team_id"], serde_json::Value::Null);
}

async fn min_max_of_timestamps_and_count_distinct(kind: DbKind) {
    let (_db, conn) = setup(kind).await;
    insert_all(
        &conn,
        &[
            ticket("acme", "t1", Some("a1"), DAY).v("customer_id", "c1"),
            ticket("acme", "t2", Some("a1"), 3 * DAY).v("customer_id", "c2"),
            ticket("acme", "t3", Some("a1"), 2 * DAY).v("customer_id", "c1"),
        ],
    )
    .await;
    let min = measure(FactType::Ticket, Aggregation::Min, "created_at", "");
    assert_eq!(
        flat(&by(&conn, &min, Grouping::Agent).await),
        expect(&[("a1", at(DAY) as f64, 3)])
    );
    let max = measure(FactType::Ticket, Aggregation::Max, "created_at", "");
    assert_eq!(
        flat(&by(&conn, &max, Grouping::Agent).await),
        expect(&[("a1", at(3 * DAY) as f64, 3)])
    );
    let customers = measure(
        FactType::Ticket,
        Aggregation::CountDistinct,
        "customer_id",
        "",
    );
    assert_eq!(
        flat(&by(&conn, &customers, Grouping::Agent).await),
        expect(&[("a1", 2.0, 3)])
    );
    let resolved_max = measure(FactType::Ticket, Aggregation::Max, "first_resolved_at", "");
    assert_eq!(
        by(&conn, &resolved_max, Grouping::Tenant).await,
        vec![gv("", None, 0)]
    );
}

#[test]
fn unknown_fields_are_invalid() {
    let invalid = |m: &Measure| {
        let q = MeasureQuery {
            tenant: "acme",
            measure: m,
            attribution: Attribution::Default,
            time_basis: TimeBasis::Calendar,
            grouping: Grouping::Agent,
            start: t0(),
            end: t_end(),
            subjects: &[],
        };
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            match measure_statement(backend, &q) {
                Err(QueryError::Invalid(_)) => {}
                other => panic!("{m:?}: {other:?}"),
            }
        }
    };
    invalid(&measure(FactType::Ticket, Aggregation::Sum, "nope", ""));
    invalid(&Measure::count(FactType::Ticket, "nope == 1"));
    invalid(&Measure::count(FactType::Ticket, "channel =="));
    let mut m = Measure::count(FactType::Ticket, "");
    m.time_field = "handle_seconds".to_string();
    invalid(&m);
    m.time_field = "closed_at".to_string();
    invalid(&m);
    let mut p = measure(
        FactType::Ticket,
        Aggregation::Percentile,
        "handle_seconds",
        "",
    );
    p.percentile = 0.0;
    invalid(&p);
    invalid(&measure(FactType::Ticket, Aggregation::Mean, "channel", ""));

    let bad = filter::parse("nope == 1").unwrap();
    let q = facts_query(FactType::Ticket, Some(&bad), None, None, 10);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let db = TestDb::new(DbKind::Sqlite).await.unwrap();
        let conn = kpi_store::connect(&db.url).await.unwrap();
        assert!(matches!(
            list_facts(&conn, &q).await,
            Err(QueryError::Invalid(_))
        ));
        let mut q = facts_query(FactType::Ticket, None, None, None, 10);
        q.time_field = "channel";
        assert!(matches!(
            list_facts(&conn, &q).await,
            Err(QueryError::Invalid(_))
        ));
    });
}

#[test]
fn literals_are_bound_and_identifiers_quoted() {
    let m = Measure::count(
        FactType::QaItem,
        r#"group == "x'; DROP TABLE t; --" && score > 3"#,
    );
    let q = MeasureQuery {
        tenant: "acme",
        measure: &m,
        attribution: Attribution::Default,
        time_basis: TimeBasis::Calendar,
        grouping: Grouping::Team,
        start: t0(),
        end: t_end(),
        subjects: &["B".to_string()],
    };
    for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
        let statement = measure_statement(backend, &q).unwrap();
        assert!(!statement.sql.contains("DROP"), "{}", statement.sql);
        assert!(statement.sql.contains("f.\"group\""), "{}", statement.sql);
        assert_eq!(
            statement.values.as_ref().map(|v| v.0.len()),
            Some(6),
            "{}",
            statement.sql
        );
    }
}

// --- Batched measures (`query_measures`) against one statement per measure.

/// A ticket with a first response (`seconds`, in business hours `bh`) by
/// `responder` of team `X`, resolved an hour after creation.
fn responded(
    id: &str,
    agent: Option<&str>,
    day: i64,
    responder: Option<&str>,
    seconds: Option<(f64, f64)>,
) -> Row {
    ticket("acme", id, agent, day * DAY)
        .v("first_responder_id", responder)
        .v("first_responder_team_id", responder.map(|_| "X"))
        .v("first_response_seconds", seconds.map(|s| s.0))
        .v("first_response_seconds_bh", seconds.map(|s| s.1))
        .v("resolved", true)
        .v("first_resolved_at", at(day * DAY + 3_600))
        .v("first_resolution_seconds", 3_600.0)
        .v("first_resolution_seconds_bh", 1_800.0)
}

/// Facts for every source a measure mix reads: tickets credited to agents
/// on the roster (a1 changes teams on day 10), off it (a3, team C) and to
/// nobody, first responders, contributions, NULL durations, surveys, and
/// facts outside the period or the tenant.
fn mixed_rows() -> Vec<Row> {
    vec![
        roster("a1", 1, None, Some(10 * DAY), "A"),
        roster("a1", 2, Some(10 * DAY), None, "B"),
        roster("a2", 1, None, None, "A"),
        roster("r1", 1, None, None, "R"),
        responded("t1", Some("a1"), 1, Some("r1"), Some((100.0, 40.0)))
            .v("first_reopen_seconds", 5.0)
            .v("reopen_count", 1.0),
        responded("t2", Some("a1"), 2, Some("a2"), Some((300.0, 120.0)))
            .v("channel", "email")
            .v("handle_seconds", 300.0),
        responded("t3", Some("a1"), 12, None, None)
            .v("channel", "phone")
            .v("category", "returns")
            .v("is_complaint", true)
            .v("handle_seconds", 120.0),
        responded("t4", Some("a2"), 3, Some("r1"), Some((50.0, 50.0)))
            .v("first_reopen_seconds", 7.0)
            .v("reopen_count", 2.0)
            .v("handle_seconds", 200.0),
        responded("t5", Some("a2"), 20, Some("r1"), Some((900.0, 300.0)))
            .v("channel", "social")
            .v("category", "returns"),
        responded("t6", Some("a3"), 4, Some("a3"), Some((30.0, 30.0)))
            .v("channel", "email")
            .v("team_id", "C")
            .v("handle_seconds", 45.0),
        responded("t7", None, 5, Some("r1"), Some((70.0, 20.0))).v("handle_seconds", 80.0),
        // Never resolved: no first_resolved_at.
        ticket("acme", "t8", Some("a1"), 6 * DAY).v("handle_seconds", 10.0),
        // Outside the period, outside the tenant.
        responded("t9", Some("a1"), 40, Some("r1"), Some((1.0, 1.0))),
        responded("t10", Some("a1"), 1, Some("r1"), Some((2.0, 2.0))).v("tenant", "other"),
        contributor("t1", "a1", 0.5),
        contributor("t1", "a2", 0.5),
        contributor("t2", "a1", 1.0),
        contributor("t3", "a1", 0.25),
        contributor("t3", "a2", 0.75),
        contributor("t4", "a2", 1.0),
        contributor("t7", "r1", 1.0),
        survey("acme", "s1", "a1", "csat", 5.0, DAY),
        survey("acme", "s2", "a1", "csat", 3.0, 2 * DAY),
        survey("acme", "s3", "a2", "csat", 4.0, 3 * DAY),
        survey("acme", "s4", "a2", "nps", 9.0, 4 * DAY),
        survey("acme", "s5", "a3", "csat", 1.0, 5 * DAY),
    ]
}

fn percentile(fact_type: FactType, field: &str, p: f64, filter: &str) -> Measure {
    Measure {
        percentile: p,
        ..measure(fact_type, Aggregation::Percentile, field, filter)
    }
}

fn by_resolution(m: Measure) -> Measure {
    Measure {
        time_field: "first_resolved_at".to_string(),
        ..m
    }
}

/// Every aggregation, with and without filters (NULL fields among them),
/// over two fact types and two time fields.
fn measure_mix() -> Vec<Measure> {
    use Aggregation::{CountDistinct, Max, Mean, Min, Sum};
    let t = FactType::Ticket;
    let s = FactType::Survey;
    vec![
        Measure::count(t, ""),
        Measure::count(t, r#"channel == "chat""#),
        Measure::count(t, "first_reopen_seconds == null"),
        Measure::count(t, "first_reopen_seconds != 5"),
        Measure::count(t, "!(first_reopen_seconds <= 6)"),
        Measure::count(t, r#"channel == "onsite""#),
        measure(t, Sum, "handle_seconds", ""),
        measure(t, Sum, "handle_seconds", "is_complaint"),
        measure(t, Sum, "handle_seconds", r#"channel == "chat""#),
        measure(t, Mean, "first_response_seconds", ""),
        measure(
            t,
            Mean,
            "first_response_seconds",
            r#"channel in ["chat", "email"]"#,
        ),
        measure(
            t,
            Mean,
            "first_response_seconds",
            "first_response_seconds <= 100",
        ),
        measure(t, Min, "first_response_seconds", ""),
        measure(
            t,
            Max,
            "first_response_seconds",
            "first_reopen_seconds != null",
        ),
        measure(t, Max, "handle_seconds", r#"channel != "chat""#),
        measure(t, Min, "created_at", ""),
        measure(t, CountDistinct, "channel", ""),
        measure(t, CountDistinct, "category", r#"team_id == "B""#),
        percentile(t, "first_response_seconds", 50.0, ""),
        percentile(t, "first_response_seconds", 90.0, r#"channel != "phone""#),
        by_resolution(Measure::count(t, "")),
        by_resolution(Measure::count(t, "reopen_count == 0")),
        by_resolution(measure(t, Mean, "first_resolution_seconds", "")),
        measure(s, Mean, "score", r#"kind == "csat""#),
        Measure::count(s, "score >= 4"),
        percentile(s, "score", 75.0, ""),
    ]
}

const ATTRIBUTIONS: [Attribution; 4] = [
    Attribution::Default,
    Attribution::ResolvingAgent,
    Attribution::FirstResponder,
    Attribution::AllContributors,
];

/// Every measure of the mix under every attribution and time basis it
/// allows, for one grouping and subject list.
fn mix_queries<'a>(
    measures: &'a [Measure],
    grouping: Grouping,
    subjects: &'a [String],
) -> Vec<MeasureQuery<'a>> {
    let mut out = Vec::new();
    for time_basis in [TimeBasis::Calendar, TimeBasis::BusinessHours] {
        for attribution in ATTRIBUTIONS {
            for m in measures {
                if !m.check(time_basis).is_empty() {
                    continue;
                }
                out.push(march(m, grouping, attribution, time_basis, subjects));
            }
        }
    }
    out
}

/// `query_measures` gives, for each query, what `query_measure` gives.
async fn assert_batch_equals_single(conn: &DatabaseConnection, queries: &[MeasureQuery<'_>]) {
    let batched = query_measures(conn, queries)
        .await
        .unwrap_or_else(|e| panic!("batched: {e}"));
    assert_eq!(batched.len(), queries.len());
    for (q, got) in queries.iter().zip(&batched) {
        let single = query_measure(conn, q)
            .await
            .unwrap_or_else(|e| panic!("{q:?}: {e}"));
        assert_eq!(
            got, &single,
            "{:?} {:?} {:?}",
            q.measure, q.attribution, q.time_basis
        );
    }
}

async fn batched_measures_equal_single_ones(kind: DbKind) {
    let (_db, conn) = setup(kind).await;
    insert_all(&conn, &mixed_rows()).await;
    let measures = measure_mix();
    for m in &measures {
        assert!(m.check(TimeBasis::Calendar).is_empty(), "{m:?}");
    }
    let subjects: Vec<String> = ["a1", "a3", "r1", "B", "C", "zz"]
        .map(String::from)
        .to_vec();
    for grouping in [Grouping::Agent, Grouping::Team, Grouping::Tenant] {
        for subjects in [&[][..], &subjects[..]] {
            let queries = mix_queries(&measures, grouping, subjects);
            // Over a hundred queries: sources split across statements too.
            assert!(queries.len() > 150, "{}", queries.len());
            assert_batch_equals_single(&conn, &queries).await;
        }
    }
    // The mix is not vacuous: filters leave subjects out of some measures
    // and not others.
    let queries = mix_queries(&measures, Grouping::Agent, &[]);
    let batched = query_measures(&conn, &queries).await.unwrap();
    let subjects_of =
        |i: usize| -> Vec<String> { batched[i].iter().map(|g| g.subject_id.clone()).collect() };
    assert_eq!(subjects_of(0), ["a1", "a2", "a3"]);
    assert_eq!(
        subjects_of(4),
        ["a1", "a2", "a3"],
        "{:?}",
        queries[4].measure
    );
    assert_eq!(subjects_of(2), ["a1", "a2", "a3"]);
    assert_eq!(subjects_of(5), Vec::<String>::new());
    // A NULL is not "!= 5": only t4 (7) counts.
    assert_eq!(flat(&batched[3]), expect(&[("a2", 1.0, 1)]));
    assert_eq!(flat(&batched[7]), expect(&[("a1", 120.0, 1)]));
    // The chat count and the chat sum share their filter column (a1: t1
    // and t8; a2: t4).
    assert_eq!(flat(&batched[1]), expect(&[("a1", 2.0, 2), ("a2", 1.0, 1)]));
    assert_eq!(
        flat(&batched[8]),
        expect(&[("a1", 70.0, 2), ("a2", 200.0, 1)])
    );
}

async fn batched_contributions_by_hand(kind: DbKind) {
    let (_db, conn) = setup(kind).await;
    insert_all(&conn, &mixed_rows()).await;
    let count = Measure::count(FactType::Ticket, "");
    let chat = Measure::count(FactType::Ticket, r#"channel == "chat""#);
    let sum = measure(FactType::Ticket, Aggregation::Sum, "handle_seconds", "");
    let mean = measure(
        FactType::Ticket,
        Aggregation::Mean,
        "first_response_seconds",
        "",
    );
    let measures = [&count, &chat, &sum, &mean];
    let queries: Vec<MeasureQuery<'_>> = measures
        .iter()
        .map(|m| {
            march(
                m,
                Grouping::Agent,
                Attribution::AllContributors,
                TimeBasis::Calendar,
                &[],
            )
        })
        .collect();
    let got = query_measures(&conn, &queries).await.unwrap();
    // a1: t1 ½, t2 1, t3 ¼; a2: t1 ½, t3 ¾, t4 1; r1: t7 1 (its fact
    // credits nobody, the contribution does).
    assert_eq!(
        flat(&got[0]),
        expect(&[("a1", 1.75, 3), ("a2", 2.25, 3), ("r1", 1.0, 1)])
    );
    // Chat: t1 and t4 and t7.
    assert_eq!(
        flat(&got[1]),
        expect(&[("a1", 0.5, 1), ("a2", 1.5, 2), ("r1", 1.0, 1)])
    );
    assert_eq!(
        flat(&got[2]),
        expect(&[
            ("a1", 0.5 * 60.0 + 300.0 + 0.25 * 120.0, 3),
            ("a2", 0.5 * 60.0 + 0.75 * 120.0 + 200.0, 3),
            ("r1", 80.0, 1),
        ])
    );
    // t3 has no first response: it weighs nothing.
    assert_eq!(
        flat(&got[3]),
        expect(&[
            ("a1", (0.5 * 100.0 + 300.0) / 1.5, 2),
            ("a2", (0.5 * 100.0 + 50.0) / 1.5, 2),
            ("r1", 70.0, 1),
        ])
    );
}

async fn batched_call_checks_every_measure_first(kind: DbKind) {
    let (_db, conn) = setup(kind).await;
    let good = Measure::count(FactType::Ticket, "");
    let bad = measure(FactType::Ticket, Aggregation::Mean, "handle_seconds", "");
    let queries: Vec<MeasureQuery<'_>> = [&good, &bad]
        .iter()
        // handle_seconds has no business-hours variant.
        .map(|m| {
            march(
                m,
                Grouping::Agent,
                Attribution::Default,
                TimeBasis::BusinessHours,
                &[],
            )
        })
        .collect();
    assert!(matches!(
        query_measures(&conn, &queries).await,
        Err(QueryError::Invalid(_))
    ));
    assert_eq!(
        query_measures(&conn, &[]).await.unwrap(),
        Vec::<Vec<GroupValue>>::new()
    );
}

mod batched_property {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    /// A random measure mix: indexes into [`measure_mix`], each with an
    /// attribution and a time basis; a grouping and a subset of subjects.
    fn mixes() -> impl Strategy<Value = (Vec<(usize, usize, bool)>, u8, Vec<bool>)> {
        (
            prop::collection::vec(
                (0..measure_mix().len(), 0..ATTRIBUTIONS.len(), any::<bool>()),
                1..40,
            ),
            0..3_u8,
            prop::collection::vec(any::<bool>(), 5),
        )
    }

    fn check(kind: DbKind) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (_db, conn) = rt.block_on(async {
            let (db, conn) = setup(kind).await;
            insert_all(&conn, &mixed_rows()).await;
            (db, conn)
        });
        let measures = measure_mix();
        let all_subjects = ["a1", "a2", "A", "B", "r1"].map(String::from);
        let mut runner = TestRunner::new(Config::with_cases(48));
        runner
            .run(&mixes(), |(picks, grouping, chosen)| {
                let subjects: Vec<String> = all_subjects
                    .iter()
                    .zip(&chosen)
                    .filter(|(_, on)| **on)
                    .map(|(s, _)| s.clone())
                    .collect();
                let grouping =
                    [Grouping::Agent, Grouping::Team, Grouping::Tenant][grouping as usize];
                let queries: Vec<MeasureQuery<'_>> = picks
                    .iter()
                    .map(|&(m, a, business)| {
                        let time_basis = if business {
                            TimeBasis::BusinessHours
                        } else {
                            TimeBasis::Calendar
                        };
                        march(
                            &measures[m],
                            grouping,
                            ATTRIBUTIONS[a],
                            time_basis,
                            &subjects,
                        )
                    })
                    .filter(|q| q.measure.check(q.time_basis).is_empty())
                    .collect();
                rt.block_on(assert_batch_equals_single(&conn, &queries));
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn sqlite() {
        check(DbKind::Sqlite);
    }

    #[test]
    fn postgres() {
        check(DbKind::Postgres);
    }
}
