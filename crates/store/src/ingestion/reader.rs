//! Reads that are not measure aggregates: the tenant's data version, the
//! audit of outcomes, data-quality findings (orphans, suspicious facts) and
//! the roster as of an instant.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{ConnectionTrait, Statement, Value};

use super::sql::{Placeholders, from_micros, micros};
use crate::StoreError;

/// The tenant's data version and the last ingestion time (0 and none before any write).
pub async fn data_version(
    db: &impl ConnectionTrait,
    tenant: &str,
) -> Result<(i64, Option<DateTime<Utc>>), StoreError> {
    let backend = db.get_database_backend();
    let mut p = Placeholders::new(backend);
    let sql = format!(
        "SELECT \"version\", \"watermark\" FROM \"ing_data_versions\" WHERE \"tenant\" = {}",
        p.next()
    );
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [Value::String(Some(tenant.to_string()))],
        ))
        .await?;
    Ok(match row {
        Some(row) => (
            row.try_get("", "version")?,
            from_micros(row.try_get("", "watermark")?),
        ),
        None => (0, None),
    })
}

/// Counts of one outcome and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeCount {
    /// "accepted", "duplicate" or "rejected".
    pub outcome: String,
    /// The rejection reason ("" otherwise).
    pub reason: String,
    /// How many.
    pub count: i64,
}

/// Outcome counts for ingestion times in [start, end), by hour buckets.
pub async fn outcome_counts(
    db: &impl ConnectionTrait,
    tenant: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<OutcomeCount>, StoreError> {
    let backend = db.get_database_backend();
    let mut p = Placeholders::new(backend);
    let (t, s, e) = (p.next(), p.next(), p.next());
    let sql = format!(
        "SELECT \"outcome\", \"reason\", CAST(SUM(\"count\") AS BIGINT) AS \"n\" FROM \"ing_audit\" WHERE \"tenant\" = {t} AND \"hour\" >= {s} AND \"hour\" < {e} \
         GROUP BY \"outcome\", \"reason\" ORDER BY \"outcome\", \"reason\""
    );
    let values = [
        Value::String(Some(tenant.to_string())),
        Value::BigInt(Some(micros(start))),
        Value::BigInt(Some(micros(end))),
    ];
    let mut out = Vec::new();
    for row in db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?
    {
        out.push(OutcomeCount {
            outcome: row.try_get("", "outcome")?,
            reason: row.try_get("", "reason")?,
            count: row.try_get("", "n")?,
        })
    }
    Ok(out)
}

/// A data-quality finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// e.g. "orphan_survey", "first_response_before_creation".
    pub kind: String,
    /// The fact type, e.g. "survey".
    pub fact_type: String,
    /// The fact's id.
    pub fact_id: String,
    /// What is wrong.
    pub description: String,
}

/// The checks run on facts ingested in a window: (kind, fact type, SQL
/// selecting the ids of offending facts; `{t}`, `{s}`, `{e}` are the
/// tenant and window parameters), and the description.
const CHECKS: &[(&str, &str, &str, &str)] = &[
    (
        "orphan_survey",
        "survey",
        "SELECT f.\"response_id\" AS \"id\" FROM \"ing_fact_survey\" f LEFT JOIN \"ing_fact_ticket\" t ON t.\"tenant\" = f.\"tenant\" AND t.\"ticket_id\" = f.\"ticket_id\" \
         WHERE f.\"tenant\" = {t} AND f.\"ingested_at\" >= {s} AND f.\"ingested_at\" < {e} AND f.\"ticket_id\" IS NOT NULL AND t.\"ticket_id\" IS NULL",
        "a survey for a ticket that is unknown",
    ),
    (
        "orphan_qa_review",
        "qa_review",
        "SELECT f.\"review_id\" AS \"id\" FROM \"ing_fact_qa_review\" f LEFT JOIN \"ing_fact_ticket\" t ON t.\"tenant\" = f.\"tenant\" AND t.\"ticket_id\" = f.\"ticket_id\" \
         WHERE f.\"tenant\" = {t} AND f.\"ingested_at\" >= {s} AND f.\"ingested_at\" < {e} AND f.\"ticket_id\" IS NOT NULL AND t.\"ticket_id\" IS NULL",
        "a QA review of a ticket that is unknown",
    ),
    (
        "orphan_field_visit",
        "field_visit",
        "SELECT f.\"visit_id\" AS \"id\" FROM \"ing_fact_field_visit\" f LEFT JOIN \"ing_fact_ticket\" t ON t.\"tenant\" = f.\"tenant\" AND t.\"ticket_id\" = f.\"ticket_id\" \
         WHERE f.\"tenant\" = {t} AND f.\"ingested_at\" >= {s} AND f.\"ingested_at\" < {e} AND t.\"ticket_id\" IS NULL",
        "a field visit for a ticket that is unknown",
    ),
    (
        "first_response_before_creation",
        "ticket",
        "SELECT f.\"ticket_id\" AS \"id\" FROM \"ing_fact_ticket\" f WHERE f.\"tenant\" = {t} AND f.\"ingested_at\" >= {s} AND f.\"ingested_at\" < {e} AND f.\"first_response_seconds\" < 0",
        "the first response is earlier than the ticket's creation",
    ),
    (
        "resolved_before_creation",
        "ticket",
        "SELECT f.\"ticket_id\" AS \"id\" FROM \"ing_fact_ticket\" f WHERE f.\"tenant\" = {t} AND f.\"ingested_at\" >= {s} AND f.\"ingested_at\" < {e} AND f.\"first_resolution_seconds\" < 0",
        "the first resolution is earlier than the ticket's creation",
    ),
];

/// The orphans and suspicious facts among those ingested in [start, end):
/// counts per kind, and up to `examples` examples in all.
pub async fn findings(
    db: &impl ConnectionTrait,
    tenant: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    examples: usize,
) -> Result<(BTreeMap<String, i64>, Vec<Finding>), StoreError> {
    let backend = db.get_database_backend();
    let mut counts = BTreeMap::new();
    let mut found = Vec::new();
    for (kind, fact_type, query, description) in CHECKS {
        let mut p = Placeholders::new(backend);
        let (t, s, e) = (p.next(), p.next(), p.next());
        let sql = query
            .replace("{t}", &t)
            .replace("{s}", &s)
            .replace("{e}", &e)
            + " ORDER BY 1";
        let values = [
            Value::String(Some(tenant.to_string())),
            Value::BigInt(Some(micros(start))),
            Value::BigInt(Some(micros(end))),
        ];
        let rows = db
            .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
        if rows.is_empty() {
            continue;
        }
        counts.insert(kind.to_string(), rows.len() as i64);
        for row in rows.iter().take(examples.saturating_sub(found.len())) {
            found.push(Finding {
                kind: kind.to_string(),
                fact_type: fact_type.to_string(),
                fact_id: row.try_get("", "id")?,
                description: description.to_string(),
            });
        }
    }
    Ok((counts, found))
}

/// One agent of the roster as of an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterEntry {
    /// The agent.
    pub agent_id: String,
    /// The display name.
    pub display_name: String,
    /// The team.
    pub team_id: String,
    /// The role.
    pub role: String,
    /// The hire date.
    pub hired_on: Option<NaiveDate>,
    /// Whether active.
    pub active: bool,
}

/// A team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamEntry {
    /// The team.
    pub team_id: String,
    /// Its display name.
    pub display_name: String,
    /// Its parent.
    pub parent_team_id: Option<String>,
    /// Its supervisor.
    pub supervisor_id: Option<String>,
}

/// Every team of the tenant, by id.
pub async fn teams(db: &impl ConnectionTrait, tenant: &str) -> Result<Vec<TeamEntry>, StoreError> {
    let backend = db.get_database_backend();
    let mut p = Placeholders::new(backend);
    let sql = format!(
        "SELECT \"team_id\", \"display_name\", \"parent_team_id\", \"supervisor_id\" FROM \"ing_teams\" WHERE \"tenant\" = {} ORDER BY \"team_id\"",
        p.next()
    );
    let mut out = Vec::new();
    for row in db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [Value::String(Some(tenant.to_string()))],
        ))
        .await?
    {
        out.push(TeamEntry {
            team_id: row.try_get("", "team_id")?,
            display_name: row.try_get("", "display_name")?,
            parent_team_id: row.try_get("", "parent_team_id")?,
            supervisor_id: row.try_get("", "supervisor_id")?,
        });
    }
    Ok(out)
}

/// `team` and every team below it.
pub fn team_and_descendants(teams: &[TeamEntry], team: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::from([team.to_string()]);
    loop {
        let before = out.len();
        for t in teams {
            if t.parent_team_id.as_ref().is_some_and(|p| out.contains(p)) {
                out.insert(t.team_id.clone());
            }
        }
        if out.len() == before {
            return out;
        }
    }
}

/// The roster as of `at`, ordered by agent id, after `after` (paging);
/// only the agents in `only` when it is not empty.
pub async fn roster(
    db: &impl ConnectionTrait,
    tenant: &str,
    at: DateTime<Utc>,
    after: &str,
    only: &[String],
    limit: u64,
) -> Result<Vec<RosterEntry>, StoreError> {
    let backend = db.get_database_backend();
    let mut p = Placeholders::new(backend);
    let (t, a1, a2, after_p) = (p.next(), p.next(), p.next(), p.next());
    let only_sql = if only.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = only.iter().map(|_| p.next()).collect();
        format!(" AND \"agent_id\" IN ({})", list.join(", "))
    };
    let lim = p.next();
    let sql = format!(
        "SELECT \"agent_id\", \"display_name\", \"team_id\", \"role\", \"hired_on\", \"active\" FROM \"ing_roster\" \
         WHERE \"tenant\" = {t} AND (\"valid_from\" IS NULL OR \"valid_from\" <= {a1}) AND (\"valid_until\" IS NULL OR {a2} < \"valid_until\") \
         AND \"agent_id\" > {after_p}{only_sql} ORDER BY \"agent_id\" LIMIT {lim}"
    );
    let mut values = vec![
        Value::String(Some(tenant.to_string())),
        Value::BigInt(Some(micros(at))),
        Value::BigInt(Some(micros(at))),
        Value::String(Some(after.to_string())),
    ];
    values.extend(only.iter().map(|a| Value::String(Some(a.clone()))));
    values.push(Value::BigInt(Some(
        i64::try_from(limit).unwrap_or(i64::MAX),
    )));
    let mut out = Vec::new();
    for row in db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?
    {
        let hired: Option<String> = row.try_get("", "hired_on")?;
        out.push(RosterEntry {
            agent_id: row.try_get("", "agent_id")?,
            display_name: row.try_get("", "display_name")?,
            team_id: row.try_get("", "team_id")?,
            role: row.try_get("", "role")?,
            hired_on: hired.and_then(|h| h.parse().ok()),
            active: row.try_get("", "active")?,
        });
    }
    Ok(out)
}
