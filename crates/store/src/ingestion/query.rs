//! The measure push-down's entry points and types: [`query_measure`] (one
//! measure, one statement; see [`measure`](super::measure)),
//! [`query_measures`](super::batch::query_measures) (many measures, one
//! statement per source; see [`batch`](super::batch)) and [`list_facts`],
//! the facts behind a value (drill-down). Everything runs inside the
//! database, on PostgreSQL and SQLite alike; how facts are read and
//! filters compiled lives in [`source`](super::source).

use chrono::{DateTime, SecondsFormat, Utc};
use kpi_domain::filter::Expr;
use kpi_domain::measure::{Attribution, Measure, TimeBasis};
use kpi_domain::schema::{FactSchema, FactType, FieldType};
use sea_orm::{ConnectionTrait, QueryResult};

use super::measure::{group_values, measure_statement};
use super::source::{Source, Sql, quote};

/// Who a measure's value is computed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    /// One value per credited agent.
    Agent,
    /// One value per team (the roster's team of the credited agent at the
    /// fact's time).
    Team,
    /// One value for the whole tenant (subject id `""`).
    Tenant,
}

/// The value of a measure for one subject.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupValue {
    /// The agent or team id; `""` for the tenant.
    pub subject_id: String,
    /// The aggregated value; `None` when no fact had a value (e.g. the mean
    /// of an all-null field).
    pub value: Option<f64>,
    /// How many rows the value rests on: matching facts (or contributions)
    /// for a count, non-null values otherwise.
    pub count: i64,
}

/// Why a measure could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The measure or filter names something the fact schema does not allow.
    #[error("invalid query: {0}")]
    Invalid(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sea_orm::DbErr),
}

/// One measure to compute for a set of subjects over a period.
#[derive(Debug, Clone, Copy)]
pub struct MeasureQuery<'a> {
    /// The tenant whose facts count.
    pub tenant: &'a str,
    /// The measure.
    pub measure: &'a Measure,
    /// Who gets the credit for a fact.
    pub attribution: Attribution,
    /// Calendar or business-hours durations.
    pub time_basis: TimeBasis,
    /// Per agent, per team or for the whole tenant.
    pub grouping: Grouping,
    /// The period's start (inclusive).
    pub start: DateTime<Utc>,
    /// The period's end (exclusive).
    pub end: DateTime<Utc>,
    /// For agent and team groupings: only these subjects; empty means all.
    pub subjects: &'a [String],
}

/// The facts behind a value: one page of them, in id order.
#[derive(Debug, Clone, Copy)]
pub struct FactsQuery<'a> {
    /// The tenant whose facts are listed.
    pub tenant: &'a str,
    /// The fact type.
    pub fact_type: FactType,
    /// The timestamp field placing facts in the period; `""` for the default.
    pub time_field: &'a str,
    /// The period's start (inclusive).
    pub start: DateTime<Utc>,
    /// The period's end (exclusive).
    pub end: DateTime<Utc>,
    /// Only facts matching this filter.
    pub filter: Option<&'a Expr>,
    /// Only facts credited to this agent or team (a tenant subject selects
    /// every fact).
    pub subject: Option<(Grouping, &'a str)>,
    /// Who gets the credit for a fact.
    pub attribution: Attribution,
    /// Calendar or business-hours durations, in the filter and the output.
    pub time_basis: TimeBasis,
    /// Only facts whose id comes after this one (the last id of the previous
    /// page).
    pub after_id: Option<&'a str>,
    /// At most this many facts.
    pub limit: u64,
}

/// Computes one measure in the database; one value per subject that has
/// facts, sorted by subject id.
pub async fn query_measure(
    db: &impl ConnectionTrait,
    q: &MeasureQuery<'_>,
) -> Result<Vec<GroupValue>, QueryError> {
    let statement = measure_statement(db.get_database_backend(), q)?;
    let rows = db.query_all_raw(statement).await?;
    group_values(&rows)
}

/// The facts themselves (drill-down), ordered by id (byte order), as JSON
/// objects of their fields: timestamps as RFC 3339 strings, booleans as
/// bools, durations in the query's time basis.
pub async fn list_facts(
    db: &impl ConnectionTrait,
    q: &FactsQuery<'_>,
) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, QueryError> {
    let backend = db.get_database_backend();
    let schema = q.fact_type.schema();
    let time_field = if q.time_field.is_empty() {
        schema.default_time_field
    } else {
        q.time_field
    };
    let source = Source::new(q.fact_type, time_field, q.attribution, q.time_basis)?;
    let contributors = source.contributors();
    let mut sql = Sql::new(backend)?;
    let double = sql.double_type();
    sql.push("SELECT ");
    for (i, def) in schema.fields.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        let column = source.column(def);
        let expr = match def.field_type {
            FieldType::String | FieldType::Enum | FieldType::Bool => column,
            FieldType::Number | FieldType::Duration => format!("CAST({column} AS {double})"),
            FieldType::Timestamp => format!("CAST({column} AS BIGINT)"),
        };
        sql.push(&expr);
    }
    source.write_from(&mut sql, false);
    source.write_period(&mut sql, q.tenant, q.start, q.end);
    let subject = q
        .subject
        .filter(|(grouping, _)| *grouping != Grouping::Tenant);
    if contributors {
        // One row per fact: the contributions only decide whether it is in.
        sql.push(&format!(
            " AND EXISTS (SELECT 1 FROM \"ing_ticket_contributors\" c WHERE c.\"tenant\" = f.\"tenant\" AND c.\"ticket_id\" = f.{}",
            quote(schema.id_field)
        ));
    }
    if let Some(expr) = q.filter {
        sql.push(" AND ");
        source.write_filter(&mut sql, expr)?;
    }
    if let Some((grouping, id)) = subject {
        sql.push(&format!(" AND {} IS NOT NULL AND ", source.agent_col()));
        sql.push(if grouping == Grouping::Agent {
            source.agent_col()
        } else {
            source.team_expr()
        });
        sql.push(" = ");
        sql.param(id.to_string());
    }
    if contributors {
        sql.push(")");
    }
    let id = format!("f.{}{}", quote(schema.id_field), sql.byte_collation());
    if let Some(after) = q.after_id {
        sql.push(&format!(" AND {id} > "));
        sql.param(after.to_string());
    }
    sql.push(&format!(" ORDER BY {id} LIMIT "));
    sql.param(i64::try_from(q.limit).unwrap_or(i64::MAX));
    let rows = db.query_all_raw(sql.finish()).await?;
    rows.iter().map(|row| fact_json(schema, row)).collect()
}

/// One listed row as a JSON object of the schema's fields.
fn fact_json(
    schema: &FactSchema,
    row: &QueryResult,
) -> Result<serde_json::Map<String, serde_json::Value>, QueryError> {
    use serde_json::Value as J;
    let mut out = serde_json::Map::new();
    for (i, def) in schema.fields.iter().enumerate() {
        let value = match def.field_type {
            FieldType::String | FieldType::Enum => row
                .try_get_by_index::<Option<String>>(i)?
                .map_or(J::Null, J::String),
            FieldType::Bool => row
                .try_get_by_index::<Option<bool>>(i)?
                .map_or(J::Null, J::Bool),
            FieldType::Number | FieldType::Duration => row
                .try_get_by_index::<Option<f64>>(i)?
                .and_then(serde_json::Number::from_f64)
                .map_or(J::Null, J::Number),
            FieldType::Timestamp => match row.try_get_by_index::<Option<i64>>(i)? {
                None => J::Null,
                Some(micros) => DateTime::<Utc>::from_timestamp_micros(micros)
                    .map(|t| J::String(t.to_rfc3339_opts(SecondsFormat::AutoSi, true)))
                    .ok_or_else(|| {
                        QueryError::Invalid(format!(
                            "{}: timestamp {micros} out of range",
                            def.name
                        ))
                    })?,
            },
        };
        out.insert(def.name.to_string(), value);
    }
    Ok(out)
}
