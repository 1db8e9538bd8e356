//! Many measures at once (one QueryMeasures call): the measures that read
//! the same rows — same tenant, fact type, time field, credit, time basis,
//! grouping, period and subjects — are computed by ONE statement, so the
//! facts are scanned once per source rather than once per measure.
//!
//! A batched statement selects the source's rows once, with each measure's
//! field (`"x{j}"`) and filter (`"k{j}"`, never NULL) as columns (one
//! column for measures sharing a field or a filter), and
//! aggregates per subject with three columns per measure: its value and `n`
//! as in the single-measure statement, every aggregate call restricted to
//! the measure's rows by `FILTER (WHERE "k{j}")`, and the count of those
//! rows. A subject none of whose rows matches a measure's filter gets no
//! value for it, as the single-measure statement would give it no group; so
//! the values are exactly those of [`query_measure`](super::query_measure).
//!
//! A source with one measure, and percentiles on SQLite (emulated with
//! window functions), keep the single-measure statement of
//! [`measure`](super::measure). The statements of a call run concurrently on
//! PostgreSQL.

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use kpi_domain::measure::{Aggregation, TimeBasis};
use kpi_domain::schema::FactType;
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement};

use super::measure::{
    AggregateInput, Prepared, aggregate_exprs, group_values, percentile_placeholder, prepare,
    single_statement, subject_expr, weight_expr, write_period_rows, write_subject_restriction,
};
use super::query::{GroupValue, Grouping, MeasureQuery, QueryError};
use super::source::{Credit, Sql};

/// The most measures one statement computes (each adds five columns).
const MEASURES_PER_STATEMENT: usize = 100;
/// Statements of one call in flight at once on PostgreSQL (each holds a
/// pooled connection); SQLite runs them one after the other.
const POSTGRES_PARALLEL: usize = 4;

/// What decides the rows a measure reads: everything but its own filter,
/// field and aggregation.
#[derive(Debug, PartialEq)]
struct SourceKey<'a> {
    tenant: &'a str,
    fact_type: FactType,
    time_field: &'a str,
    credit: Credit,
    time_basis: TimeBasis,
    grouping: Grouping,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    subjects: &'a [String],
}

impl<'a> SourceKey<'a> {
    fn of(q: &MeasureQuery<'a>) -> Self {
        Self {
            tenant: q.tenant,
            fact_type: q.measure.fact_type,
            time_field: q.measure.effective_time_field(),
            credit: Credit::of(q.measure.fact_type, q.attribution),
            time_basis: q.time_basis,
            grouping: q.grouping,
            start: q.start,
            end: q.end,
            subjects: q.subjects,
        }
    }
}

/// Computes many measures; one list per query, in the queries' order, each
/// exactly what [`query_measure`](super::query_measure) returns for it.
/// Every measure is checked before anything runs.
pub async fn query_measures(
    db: &impl ConnectionTrait,
    queries: &[MeasureQuery<'_>],
) -> Result<Vec<Vec<GroupValue>>, QueryError> {
    let backend = db.get_database_backend();
    let prepared: Vec<Prepared> = queries.iter().map(prepare).collect::<Result<_, _>>()?;
    let statements = group_by_source(backend, queries)
        .into_iter()
        .map(|members| {
            let statement = statement_of(backend, queries, &prepared, &members)?;
            Ok((members, statement))
        })
        .collect::<Result<Vec<_>, QueryError>>()?;
    let parallel = match backend {
        DbBackend::Postgres => POSTGRES_PARALLEL,
        _ => 1,
    };
    let computed: Vec<(Vec<usize>, Vec<Vec<GroupValue>>)> = futures::stream::iter(statements)
        .map(|(members, statement)| async move {
            let rows = db.query_all_raw(statement).await?;
            let values = values_of(&rows, members.len())?;
            Ok::<_, QueryError>((members, values))
        })
        .buffer_unordered(parallel)
        .try_collect()
        .await?;
    let mut out = vec![Vec::new(); queries.len()];
    for (members, values) in computed {
        for (i, v) in members.into_iter().zip(values) {
            if let Some(slot) = out.get_mut(i) {
                *slot = v;
            }
        }
    }
    Ok(out)
}

/// The queries' indexes, in groups computed by one statement each: the
/// queries of one source in order of appearance (at most
/// [`MEASURES_PER_STATEMENT`]), a query that cannot share alone.
fn group_by_source(backend: DbBackend, queries: &[MeasureQuery<'_>]) -> Vec<Vec<usize>> {
    let mut groups: Vec<(Option<SourceKey<'_>>, Vec<usize>)> = Vec::new();
    for (i, q) in queries.iter().enumerate() {
        let key = shares_statement(backend, q).then(|| SourceKey::of(q));
        let open = key.as_ref().and_then(|key| {
            groups.iter_mut().find(|(k, members)| {
                k.as_ref() == Some(key) && members.len() < MEASURES_PER_STATEMENT
            })
        });
        match open {
            Some((_, members)) => members.push(i),
            None => groups.push((key, vec![i])),
        }
    }
    groups.into_iter().map(|(_, members)| members).collect()
}

/// Whether a measure can be computed next to others (SQLite's percentile
/// emulation ranks rows on its own).
fn shares_statement(backend: DbBackend, q: &MeasureQuery<'_>) -> bool {
    !(backend == DbBackend::Sqlite && q.measure.aggregation == Aggregation::Percentile)
}

/// The statement computing a group of queries: the single-measure statement
/// for one, else the batched one.
fn statement_of(
    backend: DbBackend,
    queries: &[MeasureQuery<'_>],
    prepared: &[Prepared],
    members: &[usize],
) -> Result<Statement, QueryError> {
    let parts: Vec<(&MeasureQuery<'_>, &Prepared)> = members
        .iter()
        .filter_map(|&i| Some((queries.get(i)?, prepared.get(i)?)))
        .collect();
    match parts.as_slice() {
        [(q, p)] => single_statement(backend, q, p),
        _ => batch_statement(backend, &parts),
    }
}

/// One statement for measures of one source; per subject, the row
/// `(subject_id, value_0, n_0, rows_0, value_1, n_1, rows_1, …)`.
fn batch_statement(
    backend: DbBackend,
    parts: &[(&MeasureQuery<'_>, &Prepared)],
) -> Result<Statement, QueryError> {
    let Some((q, p)) = parts.first() else {
        return Err(QueryError::Invalid("no measure to compute".to_string()));
    };
    let columns = RowColumns::of(parts);
    let mut sql = Sql::new(backend)?;
    write_measure_rows(&mut sql, parts, &columns)?;
    write_period_rows(&mut sql, q, &p.source, None)?;
    write_subject_restriction(&mut sql, q);
    let rows = sql.take_text();
    let aggregates = aggregate_columns(&mut sql, parts, &columns, p.source.contributors());
    sql.push("SELECT \"s\" AS \"subject_id\"");
    sql.push(&aggregates);
    sql.push(" FROM (");
    sql.push(&rows);
    sql.push(" GROUP BY \"s\"");
    Ok(sql.finish())
}

/// The row columns each measure reads, as indexes of the measures whose
/// field (`"x{i}"`) and filter (`"k{i}"`) columns they are: a field or a
/// filter is selected once however many measures share it (and PostgreSQL
/// computes identical aggregates of them once).
struct RowColumns {
    field: Vec<Option<usize>>,
    filter: Vec<Option<usize>>,
}

/// For each measure, the first measure with the same part (as `part` picks
/// it out); `None` for a measure without one.
fn first_with_same<T: PartialEq>(
    parts: &[(&MeasureQuery<'_>, &Prepared)],
    part: impl Fn(&Prepared) -> Option<&T>,
) -> Vec<Option<usize>> {
    parts
        .iter()
        .map(|(_, p)| {
            let mine = part(p)?;
            parts
                .iter()
                .position(|(_, other)| part(other) == Some(mine))
        })
        .collect()
}

impl RowColumns {
    fn of(parts: &[(&MeasureQuery<'_>, &Prepared)]) -> Self {
        Self {
            field: first_with_same(parts, |p| p.field.as_ref()),
            filter: first_with_same(parts, |p| p.filter.as_ref()),
        }
    }

    /// Whether measure `j` is the first to read its field and its filter.
    fn owns(&self, j: usize) -> (bool, bool) {
        let own = |column: &[Option<usize>]| column.get(j).copied().flatten() == Some(j);
        (own(&self.field), own(&self.filter))
    }
}

/// Writes `SELECT` and the row columns: subject, weight, and the fields
/// and filters of the measures.
fn write_measure_rows(
    sql: &mut Sql,
    parts: &[(&MeasureQuery<'_>, &Prepared)],
    columns: &RowColumns,
) -> Result<(), QueryError> {
    let Some((q, p)) = parts.first() else {
        return Ok(());
    };
    sql.push("SELECT ");
    sql.push(&subject_expr(&p.source, q.grouping));
    sql.push(" AS \"s\", ");
    sql.push(weight_expr(&p.source));
    sql.push(" AS \"w\"");
    for (j, (_, p)) in parts.iter().enumerate() {
        let (own_field, own_filter) = columns.owns(j);
        if let (true, Some(field)) = (own_field, &p.field) {
            sql.push(&format!(", {field} AS \"x{j}\""));
        }
        if let (true, Some(filter)) = (own_filter, &p.filter) {
            sql.push(", ");
            p.source.write_filter(sql, filter)?;
            sql.push(&format!(" AS \"k{j}\""));
        }
    }
    Ok(())
}

/// The aggregate columns of every measure, each restricted to its rows:
/// `, value_j, n_j, rows_j`. Percentile fractions are bound here (only
/// PostgreSQL batches percentiles, and its placeholders are numbered).
fn aggregate_columns(
    sql: &mut Sql,
    parts: &[(&MeasureQuery<'_>, &Prepared)],
    columns: &RowColumns,
    contributors: bool,
) -> String {
    let double = sql.double_type();
    let mut out = String::new();
    for (j, (q, _)) in parts.iter().enumerate() {
        let x = columns.field.get(j).copied().flatten().unwrap_or(j);
        let only = match columns.filter.get(j).copied().flatten() {
            Some(k) => format!(" FILTER (WHERE \"k{k}\")"),
            None => String::new(),
        };
        let percentile = percentile_placeholder(sql, q);
        let (value, n) = aggregate_exprs(
            q.measure.aggregation,
            contributors,
            &AggregateInput {
                x: &format!("\"x{x}\""),
                only: &only,
                percentile: &percentile,
            },
        );
        out.push_str(&format!(
            ", CAST({value} AS {double}) AS \"v{j}\", CAST({n} AS BIGINT) AS \"n{j}\", CAST(COUNT(*){only} AS BIGINT) AS \"r{j}\""
        ));
    }
    out
}

/// Each measure's values from the rows of its group's statement, sorted by
/// subject id.
fn values_of(rows: &[QueryResult], measures: usize) -> Result<Vec<Vec<GroupValue>>, QueryError> {
    if measures == 1 {
        return Ok(vec![group_values(rows)?]);
    }
    let mut out: Vec<Vec<GroupValue>> = vec![Vec::new(); measures];
    for row in rows {
        let subject = row
            .try_get_by_index::<Option<String>>(0)?
            .unwrap_or_default();
        for (j, values) in out.iter_mut().enumerate() {
            let column = 1 + 3 * j;
            // No row of this subject matches the measure's filter.
            if row
                .try_get_by_index::<Option<i64>>(column + 2)?
                .unwrap_or(0)
                == 0
            {
                continue;
            }
            values.push(GroupValue {
                subject_id: subject.clone(),
                value: row.try_get_by_index::<Option<f64>>(column)?,
                count: row
                    .try_get_by_index::<Option<i64>>(column + 1)?
                    .unwrap_or(0),
            });
        }
    }
    for values in &mut out {
        values.sort_by(|a, b| a.subject_id.cmp(&b.subject_id));
    }
    Ok(out)
}
