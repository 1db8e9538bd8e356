//! The statement computing ONE measure for every subject, and the fragments
//! the batched statements of [`batch`](super::batch) share with it: the
//! checked measure ([`Prepared`]), the period's rows of a source, the
//! restriction to subjects and the aggregate expressions.
//!
//! What a statement does, in order:
//! - selects the facts of the tenant whose time field (the measure's, else
//!   the schema default) lies in `[start, end)`, as microseconds;
//! - applies the filter (see [`source`](super::source));
//! - reads business-hours columns (`{field}_bh`) for durations that have one
//!   when the time basis is business hours;
//! - picks the credited agent by attribution (tickets: resolving agent, first
//!   responder, or every contributor weighted by its share) and the team as
//!   the roster's team of that agent at the fact's time, falling back to the
//!   team recorded on the fact; facts credited to nobody belong to no agent
//!   and no team;
//! - aggregates per subject; percentiles interpolate linearly between the
//!   closest ranks (PostgreSQL's `percentile_cont`, emulated with window
//!   functions on SQLite).

use kpi_domain::filter::Expr;
use kpi_domain::measure::Aggregation;
use sea_orm::{DbBackend, QueryResult, Statement};

use super::query::{GroupValue, Grouping, MeasureQuery, QueryError};
use super::source::{Source, Sql};

/// A measure checked against its fact schema, its parts compiled.
pub(super) struct Prepared {
    /// Where its facts come from.
    pub(super) source: Source,
    /// Its filter; `None` selects every fact.
    pub(super) filter: Option<Expr>,
    /// The SQL expression of the aggregated field; `None` for a count.
    pub(super) field: Option<String>,
}

/// Checks a measure and compiles its source, filter and field.
pub(super) fn prepare(q: &MeasureQuery<'_>) -> Result<Prepared, QueryError> {
    let measure = q.measure;
    let problems = measure.check(q.time_basis);
    if !problems.is_empty() {
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        return Err(QueryError::Invalid(text.join("; ")));
    }
    let source = Source::new(
        measure.fact_type,
        measure.effective_time_field(),
        q.attribution,
        q.time_basis,
    )?;
    let filter = measure
        .parsed_filter()
        .map_err(|e| QueryError::Invalid(format!("filter: cannot parse: {e}")))?;
    let field = if measure.aggregation == Aggregation::Count {
        None
    } else {
        Some(source.field_expr(&measure.field)?)
    };
    Ok(Prepared {
        source,
        filter,
        field,
    })
}

/// The statement computing one measure, grouped; rows are
/// `(subject_id TEXT, value DOUBLE NULL, n BIGINT)`, in no particular order.
pub fn measure_statement(
    backend: DbBackend,
    q: &MeasureQuery<'_>,
) -> Result<Statement, QueryError> {
    let prepared = prepare(q)?;
    single_statement(backend, q, &prepared)
}

/// [`measure_statement`] of a measure already prepared.
pub(super) fn single_statement(
    backend: DbBackend,
    q: &MeasureQuery<'_>,
    p: &Prepared,
) -> Result<Statement, QueryError> {
    let mut sql = Sql::new(backend)?;
    // The facts (or contributions) of the period, one row each: subject,
    // aggregated value and weight.
    sql.push("SELECT \"s\", \"x\", \"w\" FROM (SELECT ");
    sql.push(&subject_expr(&p.source, q.grouping));
    sql.push(" AS \"s\", ");
    sql.push(p.field.as_deref().unwrap_or("NULL"));
    sql.push(" AS \"x\", ");
    sql.push(weight_expr(&p.source));
    sql.push(" AS \"w\"");
    write_period_rows(&mut sql, q, &p.source, p.filter.as_ref())?;
    write_subject_restriction(&mut sql, q);
    let base = sql.take_text();

    let aggregation = q.measure.aggregation;
    if aggregation == Aggregation::Percentile && backend == DbBackend::Sqlite {
        write_sqlite_percentile(&mut sql, &base, q.measure.percentile);
        return Ok(sql.finish());
    }
    let percentile = percentile_placeholder(&mut sql, q);
    let (value, n) = aggregate_exprs(
        aggregation,
        p.source.contributors(),
        &AggregateInput {
            x: "\"x\"",
            only: "",
            percentile: &percentile,
        },
    );
    let double = sql.double_type();
    sql.push(&format!(
        "SELECT \"s\" AS \"subject_id\", CAST({value} AS {double}) AS \"value\", CAST({n} AS BIGINT) AS \"n\" FROM ("
    ));
    sql.push(&base);
    sql.push(") \"t\" GROUP BY \"s\"");
    Ok(sql.finish())
}

/// The subject a row is credited to: agent, team, or `''` for the tenant.
pub(super) fn subject_expr(source: &Source, grouping: Grouping) -> String {
    match grouping {
        Grouping::Agent => source.agent_col().to_string(),
        Grouping::Team => source.team_expr().to_string(),
        Grouping::Tenant => "CAST('' AS TEXT)".to_string(),
    }
}

/// A row's weight: the contribution's share, else 1.
pub(super) fn weight_expr(source: &Source) -> &'static str {
    if source.contributors() {
        "c.\"share\""
    } else {
        "1"
    }
}

/// Writes ` FROM … WHERE …`: the tenant's facts (or contributions) of the
/// period matching `filter`, only those credited to somebody unless the
/// grouping is the tenant.
pub(super) fn write_period_rows(
    sql: &mut Sql,
    q: &MeasureQuery<'_>,
    source: &Source,
    filter: Option<&Expr>,
) -> Result<(), QueryError> {
    source.write_from(sql, source.contributors());
    source.write_period(sql, q.tenant, q.start, q.end);
    if let Some(expr) = filter {
        sql.push(" AND ");
        source.write_filter(sql, expr)?;
    }
    if q.grouping != Grouping::Tenant {
        // Facts credited to nobody belong to no agent and no team.
        sql.push(&format!(" AND {} IS NOT NULL", source.agent_col()));
    }
    Ok(())
}

/// Closes the rows' subquery as `"b0"` and keeps the subjects asked for
/// (agents or teams: a known subject, one of the list when there is one).
pub(super) fn write_subject_restriction(sql: &mut Sql, q: &MeasureQuery<'_>) {
    sql.push(") \"b0\"");
    if q.grouping == Grouping::Tenant {
        return;
    }
    sql.push(" WHERE \"s\" IS NOT NULL");
    if q.subjects.is_empty() {
        return;
    }
    sql.push(" AND \"s\" IN (");
    for (i, subject) in q.subjects.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.param(subject.clone());
    }
    sql.push(")");
}

/// Binds a percentile measure's fraction and returns its placeholder
/// (PostgreSQL's numbered ones, so it may be written anywhere); `""` for
/// other measures.
pub(super) fn percentile_placeholder(sql: &mut Sql, q: &MeasureQuery<'_>) -> String {
    if q.measure.aggregation == Aggregation::Percentile {
        sql.placeholder_for(q.measure.percentile / 100.0)
    } else {
        String::new()
    }
}

/// What one measure's aggregate reads in its group's rows.
pub(super) struct AggregateInput<'a> {
    /// The value column.
    pub(super) x: &'a str,
    /// Appended to every aggregate call: `""`, or a `FILTER (WHERE …)`
    /// keeping the measure's own rows.
    pub(super) only: &'a str,
    /// The placeholder of a percentile's fraction.
    pub(super) percentile: &'a str,
}

/// The SQL of a measure's value and `n` over a group's rows (weights in
/// `"w"`): `n` counts the rows for a count, non-null values otherwise.
pub(super) fn aggregate_exprs(
    aggregation: Aggregation,
    contributors: bool,
    a: &AggregateInput<'_>,
) -> (String, String) {
    let AggregateInput {
        x,
        only,
        percentile,
    } = a;
    let non_null = format!("COUNT({x}){only}");
    match (aggregation, contributors) {
        (Aggregation::Count, false) => (format!("COUNT(*){only}"), format!("COUNT(*){only}")),
        (Aggregation::Count, true) => (format!("SUM(\"w\"){only}"), format!("COUNT(*){only}")),
        (Aggregation::Sum, false) => (format!("SUM({x}){only}"), non_null),
        (Aggregation::Sum, true) => (format!("SUM({x} * \"w\"){only}"), non_null),
        (Aggregation::Mean, false) => (format!("AVG({x}){only}"), non_null),
        (Aggregation::Mean, true) => (
            format!(
                "SUM({x} * \"w\"){only} / NULLIF(SUM(CASE WHEN {x} IS NOT NULL THEN \"w\" END){only}, 0)"
            ),
            non_null,
        ),
        (Aggregation::Min, _) => (format!("MIN({x}){only}"), non_null),
        (Aggregation::Max, _) => (format!("MAX({x}){only}"), non_null),
        (Aggregation::CountDistinct, _) => (format!("COUNT(DISTINCT {x}){only}"), non_null),
        (Aggregation::Percentile, _) => (
            format!("percentile_cont({percentile}) WITHIN GROUP (ORDER BY {x}){only}"),
            non_null,
        ),
    }
}

/// SQLite has no percentile_cont: ranks the non-null values of each group
/// of `base` (rows `s, x, w`) and interpolates between the two closest ranks
/// exactly as PostgreSQL does (lo + frac · (hi − lo) at floor/ceil of
/// p·(n − 1)).
fn write_sqlite_percentile(sql: &mut Sql, base: &str, percentile: f64) {
    sql.push("WITH \"base\" AS (");
    sql.push(base);
    sql.push(
        "), \"ranked\" AS (SELECT \"s\", \"x\", \
         ROW_NUMBER() OVER (PARTITION BY \"s\" ORDER BY \"x\") - 1 AS \"i\", \
         (COUNT(*) OVER (PARTITION BY \"s\") - 1) * ",
    );
    sql.param(percentile / 100.0);
    sql.push(
        " AS \"pos\" FROM \"base\" WHERE \"x\" IS NOT NULL), \
         \"pct\" AS (SELECT \"s\", \
         MAX(CASE WHEN \"i\" = CAST(\"pos\" AS INTEGER) THEN \"x\" END) AS \"lo\", \
         MAX(CASE WHEN \"i\" = CAST(\"pos\" AS INTEGER) + 1 THEN \"x\" END) AS \"hi\", \
         MAX(\"pos\" - CAST(\"pos\" AS INTEGER)) AS \"frac\" \
         FROM \"ranked\" GROUP BY \"s\") \
         SELECT g.\"s\" AS \"subject_id\", \
         CAST(CASE WHEN p.\"frac\" > 0 THEN p.\"lo\" + p.\"frac\" * (p.\"hi\" - p.\"lo\") ELSE p.\"lo\" END AS REAL) AS \"value\", \
         CAST(g.\"n\" AS BIGINT) AS \"n\" \
         FROM (SELECT \"s\", COUNT(\"x\") AS \"n\" FROM \"base\" GROUP BY \"s\") g \
         LEFT JOIN \"pct\" p ON p.\"s\" = g.\"s\"",
    );
}

/// The rows of a [`measure_statement`], sorted by subject id.
pub(super) fn group_values(rows: &[QueryResult]) -> Result<Vec<GroupValue>, QueryError> {
    let mut out = rows
        .iter()
        .map(|row| {
            Ok(GroupValue {
                subject_id: row
                    .try_get_by_index::<Option<String>>(0)?
                    .unwrap_or_default(),
                value: row.try_get_by_index::<Option<f64>>(1)?,
                count: row.try_get_by_index::<Option<i64>>(2)?.unwrap_or(0),
            })
        })
        .collect::<Result<Vec<_>, sea_orm::DbErr>>()?;
    out.sort_by(|a, b| a.subject_id.cmp(&b.subject_id));
    Ok(out)
}
