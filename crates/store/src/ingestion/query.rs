//! The SQL push-down of measures: one statement per measure computes its
//! value for every subject (agent, team or the whole tenant) inside the
//! database, on PostgreSQL and SQLite alike, and [`list_facts`] returns the
//! facts behind a value (drill-down).
//!
//! What a statement does, in order:
//! - selects the facts of the tenant whose time field (the measure's, else
//!   the schema default) lies in `[start, end)`, as microseconds;
//! - applies the filter, compiled to SQL with the same two-valued logic as
//!   [`Expr::eval`](kpi_domain::filter::Expr::eval): a comparison involving
//!   NULL is false, literals are always bound parameters;
//! - reads business-hours columns (`{field}_bh`) for durations that have one
//!   when the time basis is business hours;
//! - picks the credited agent by attribution (tickets: resolving agent, first
//!   responder, or every contributor weighted by its share) and the team as
//!   the roster's team of that agent at the fact's time, falling back to the
//!   team recorded on the fact;
//! - aggregates per subject; percentiles interpolate linearly between the
//!   closest ranks (PostgreSQL's `percentile_cont`, emulated with window
//!   functions on SQLite).

use chrono::{DateTime, SecondsFormat, Utc};
use kpi_domain::filter::{CompareOp, Expr, Literal};
use kpi_domain::measure::{Aggregation, Attribution, Measure, TimeBasis};
use kpi_domain::schema::{FactSchema, FactType, FieldDef, FieldType};
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement, Value};

use super::fact_table;

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

/// The statement computing one measure, grouped; rows are
/// `(subject_id TEXT, value DOUBLE NULL, n BIGINT)`, in no particular order.
pub fn measure_statement(
    backend: DbBackend,
    q: &MeasureQuery<'_>,
) -> Result<Statement, QueryError> {
    let measure = q.measure;
    let problems = measure.check(q.time_basis);
    if !problems.is_empty() {
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        return Err(QueryError::Invalid(text.join("; ")));
    }
    let fact_type = measure.fact_type;
    let contributors =
        fact_type == FactType::Ticket && q.attribution == Attribution::AllContributors;
    let source = Source::new(
        fact_type,
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

    let mut sql = Sql::new(backend)?;
    // The facts (or contributions) of the period, one row each: subject,
    // aggregated value and weight.
    let subject = match q.grouping {
        Grouping::Agent => source.agent_col.clone(),
        Grouping::Team => source.team_expr.clone(),
        Grouping::Tenant => "CAST('' AS TEXT)".to_string(),
    };
    sql.push("SELECT \"s\", \"x\", \"w\" FROM (SELECT ");
    sql.push(&subject);
    sql.push(" AS \"s\", ");
    sql.push(field.as_deref().unwrap_or("NULL"));
    sql.push(" AS \"x\", ");
    sql.push(if contributors { "c.\"share\"" } else { "1" });
    sql.push(" AS \"w\"");
    source.write_from(&mut sql, contributors);
    source.write_period(&mut sql, q.tenant, q.start, q.end);
    if let Some(expr) = &filter {
        sql.push(" AND ");
        source.write_filter(&mut sql, expr)?;
    }
    if q.grouping != Grouping::Tenant {
        // Facts credited to nobody belong to no agent and no team.
        sql.push(&format!(" AND {} IS NOT NULL", source.agent_col));
    }
    sql.push(") \"b0\"");
    if q.grouping != Grouping::Tenant {
        sql.push(" WHERE \"s\" IS NOT NULL");
        if !q.subjects.is_empty() {
            sql.push(" AND \"s\" IN (");
            for (i, subject) in q.subjects.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.param(subject.clone());
            }
            sql.push(")");
        }
    }
    let base = std::mem::take(&mut sql.sql);

    let double = sql.double_type();
    if measure.aggregation == Aggregation::Percentile && backend == DbBackend::Sqlite {
        // SQLite has no percentile_cont: rank the non-null values of each
        // group and interpolate between the two closest ranks exactly as
        // PostgreSQL does (lo + frac · (hi − lo) at floor/ceil of p·(n − 1)).
        sql.push("WITH \"base\" AS (");
        sql.push(&base);
        sql.push(
            "), \"ranked\" AS (SELECT \"s\", \"x\", \
             ROW_NUMBER() OVER (PARTITION BY \"s\" ORDER BY \"x\") - 1 AS \"i\", \
             (COUNT(*) OVER (PARTITION BY \"s\") - 1) * ",
        );
        sql.param(measure.percentile / 100.0);
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
        return Ok(sql.finish());
    }
    let (value, n) = match (measure.aggregation, contributors) {
        (Aggregation::Count, false) => ("COUNT(*)".to_string(), "COUNT(*)"),
        (Aggregation::Count, true) => ("SUM(\"w\")".to_string(), "COUNT(*)"),
        (Aggregation::Sum, false) => ("SUM(\"x\")".to_string(), "COUNT(\"x\")"),
        (Aggregation::Sum, true) => ("SUM(\"x\" * \"w\")".to_string(), "COUNT(\"x\")"),
        (Aggregation::Mean, false) => ("AVG(\"x\")".to_string(), "COUNT(\"x\")"),
        (Aggregation::Mean, true) => (
            "SUM(\"x\" * \"w\") / NULLIF(SUM(CASE WHEN \"x\" IS NOT NULL THEN \"w\" END), 0)"
                .to_string(),
            "COUNT(\"x\")",
        ),
        (Aggregation::Min, _) => ("MIN(\"x\")".to_string(), "COUNT(\"x\")"),
        (Aggregation::Max, _) => ("MAX(\"x\")".to_string(), "COUNT(\"x\")"),
        (Aggregation::CountDistinct, _) => ("COUNT(DISTINCT \"x\")".to_string(), "COUNT(\"x\")"),
        (Aggregation::Percentile, _) => {
            let p = sql.placeholder_for(measure.percentile / 100.0);
            (
                format!("percentile_cont({p}) WITHIN GROUP (ORDER BY \"x\")"),
                "COUNT(\"x\")",
            )
        }
    };
    sql.push(&format!(
        "SELECT \"s\" AS \"subject_id\", CAST({value} AS {double}) AS \"value\", CAST({n} AS BIGINT) AS \"n\" FROM ("
    ));
    sql.push(&base);
    sql.push(") \"t\" GROUP BY \"s\"");
    Ok(sql.finish())
}

/// Computes one measure in the database; one value per subject that has
/// facts, sorted by subject id.
pub async fn query_measure(
    db: &impl ConnectionTrait,
    q: &MeasureQuery<'_>,
) -> Result<Vec<GroupValue>, QueryError> {
    let statement = measure_statement(db.get_database_backend(), q)?;
    let rows = db.query_all_raw(statement).await?;
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
    let contributors =
        q.fact_type == FactType::Ticket && q.attribution == Attribution::AllContributors;
    let source = Source::new(q.fact_type, time_field, q.attribution, q.time_basis)?;
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
        sql.push(&format!(" AND {} IS NOT NULL AND ", source.agent_col));
        sql.push(if grouping == Grouping::Agent {
            &source.agent_col
        } else {
            &source.team_expr
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

/// A statement being written: SQL text and its bound values, in order.
struct Sql {
    backend: DbBackend,
    sql: String,
    values: Vec<Value>,
}

impl Sql {
    fn new(backend: DbBackend) -> Result<Self, QueryError> {
        match backend {
            DbBackend::Postgres | DbBackend::Sqlite => Ok(Self {
                backend,
                sql: String::new(),
                values: Vec::new(),
            }),
            other => Err(QueryError::Invalid(format!(
                "unsupported database backend {other:?}"
            ))),
        }
    }

    fn push(&mut self, text: &str) {
        self.sql.push_str(text);
    }

    /// Binds a value and returns its placeholder without writing it. Only
    /// for PostgreSQL's numbered placeholders, or when nothing else is bound
    /// between here and where the placeholder is written.
    fn placeholder_for(&mut self, value: impl Into<Value>) -> String {
        self.values.push(value.into());
        match self.backend {
            DbBackend::Postgres => format!("${}", self.values.len()),
            _ => "?".to_string(),
        }
    }

    /// Binds a value and writes its placeholder.
    fn param(&mut self, value: impl Into<Value>) {
        let placeholder = self.placeholder_for(value);
        self.sql.push_str(&placeholder);
    }

    fn double_type(&self) -> &'static str {
        match self.backend {
            DbBackend::Postgres => "DOUBLE PRECISION",
            _ => "REAL",
        }
    }

    /// The collation clause making text comparisons byte-wise (SQLite's
    /// default already is).
    fn byte_collation(&self) -> &'static str {
        match self.backend {
            DbBackend::Postgres => " COLLATE \"C\"",
            _ => "",
        }
    }

    fn finish(self) -> Statement {
        Statement::from_sql_and_values(self.backend, self.sql, self.values)
    }
}

/// An identifier in double quotes.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Where a query reads facts from and how it names their columns.
struct Source {
    schema: &'static FactSchema,
    time_basis: TimeBasis,
    /// The fact's time column, e.g. `f."created_at"`.
    time_col: String,
    /// The credited agent, e.g. `f."agent_id"` or `c."agent_id"`.
    agent_col: String,
    /// The credited agent's team at the fact's time.
    team_expr: String,
}

impl Source {
    fn new(
        fact_type: FactType,
        time_field: &str,
        attribution: Attribution,
        time_basis: TimeBasis,
    ) -> Result<Self, QueryError> {
        let schema = fact_type.schema();
        match schema.field(time_field) {
            Some(def) if def.field_type == FieldType::Timestamp => {}
            Some(_) => {
                return Err(QueryError::Invalid(format!(
                    "time field \"{time_field}\" of {} facts is not a timestamp",
                    fact_type.as_str()
                )));
            }
            None => {
                return Err(QueryError::Invalid(format!(
                    "unknown time field \"{time_field}\" of {} facts",
                    fact_type.as_str()
                )));
            }
        }
        let time_col = format!("f.{}", quote(time_field));
        let (agent_col, own_team) = match (fact_type, attribution) {
            (FactType::Ticket, Attribution::FirstResponder) => {
                ("f.\"first_responder_id\"", "f.\"first_responder_team_id\"")
            }
            (FactType::Ticket, Attribution::AllContributors) => ("c.\"agent_id\"", "f.\"team_id\""),
            _ => ("f.\"agent_id\"", "f.\"team_id\""),
        };
        // A scalar subquery rather than a join, so that overlapping roster
        // intervals can never duplicate a fact.
        let team_expr = format!(
            "COALESCE((SELECT r.\"team_id\" FROM \"ing_roster\" r WHERE r.\"tenant\" = f.\"tenant\" AND r.\"agent_id\" = {agent_col} \
             AND (r.\"valid_from\" IS NULL OR r.\"valid_from\" <= {time_col}) \
             AND (r.\"valid_until\" IS NULL OR {time_col} < r.\"valid_until\") \
             ORDER BY r.\"interval_no\" DESC LIMIT 1), {own_team})"
        );
        Ok(Self {
            schema,
            time_basis,
            time_col,
            agent_col: agent_col.to_string(),
            team_expr,
        })
    }

    /// The column holding a field's values in this time basis.
    fn column(&self, def: &FieldDef) -> String {
        if self.time_basis == TimeBasis::BusinessHours && def.business_hours {
            format!("f.{}", quote(&format!("{}_bh", def.name)))
        } else {
            format!("f.{}", quote(def.name))
        }
    }

    fn def(&self, name: &str) -> Result<&'static FieldDef, QueryError> {
        self.schema.field(name).ok_or_else(|| {
            QueryError::Invalid(format!(
                "unknown field \"{name}\" of {} facts (known: {})",
                self.schema.fact_type.as_str(),
                self.schema.field_names().join(", ")
            ))
        })
    }

    /// The SQL expression of a field: its column, except `team_id`, which
    /// is the credited agent's team.
    fn field_expr(&self, name: &str) -> Result<String, QueryError> {
        let def = self.def(name)?;
        Ok(if name == "team_id" {
            self.team_expr.clone()
        } else {
            self.column(def)
        })
    }

    fn write_from(&self, sql: &mut Sql, contributors: bool) {
        sql.push(&format!(
            " FROM {} f",
            quote(&fact_table(self.schema.fact_type))
        ));
        if contributors {
            sql.push(&format!(
                " JOIN \"ing_ticket_contributors\" c ON c.\"tenant\" = f.\"tenant\" AND c.\"ticket_id\" = f.{}",
                quote(self.schema.id_field)
            ));
        }
    }

    fn write_period(&self, sql: &mut Sql, tenant: &str, start: DateTime<Utc>, end: DateTime<Utc>) {
        sql.push(" WHERE f.\"tenant\" = ");
        sql.param(tenant.to_string());
        sql.push(&format!(" AND {} >= ", self.time_col));
        sql.param(start.timestamp_micros());
        sql.push(&format!(" AND {} < ", self.time_col));
        sql.param(end.timestamp_micros());
    }

    /// Writes a filter as a boolean SQL expression that is never NULL.
    fn write_filter(&self, sql: &mut Sql, expr: &Expr) -> Result<(), QueryError> {
        match expr {
            Expr::And(children) | Expr::Or(children) if children.is_empty() => {
                sql.push(if matches!(expr, Expr::And(_)) {
                    "TRUE"
                } else {
                    "FALSE"
                });
            }
            Expr::And(children) | Expr::Or(children) => {
                let joiner = if matches!(expr, Expr::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                sql.push("(");
                for (i, child) in children.iter().enumerate() {
                    if i > 0 {
                        sql.push(joiner);
                    }
                    self.write_filter(sql, child)?;
                }
                sql.push(")");
            }
            Expr::Not(inner) => {
                sql.push("NOT (");
                self.write_filter(sql, inner)?;
                sql.push(")");
            }
            Expr::Compare { field, op, value } => self.write_compare(sql, field, *op, value)?,
        }
        Ok(())
    }

    fn write_compare(
        &self,
        sql: &mut Sql,
        field: &str,
        op: CompareOp,
        value: &Literal,
    ) -> Result<(), QueryError> {
        let def = self.def(field)?;
        let col = self.field_expr(field)?;
        match (op, value) {
            (CompareOp::Eq, Literal::Null) => sql.push(&format!("({col} IS NULL)")),
            (CompareOp::Ne, Literal::Null) => sql.push(&format!("({col} IS NOT NULL)")),
            (CompareOp::In | CompareOp::NotIn, _) => {
                let items = match value {
                    Literal::List(items) => items.as_slice(),
                    scalar => std::slice::from_ref(scalar),
                };
                let mut values = Vec::with_capacity(items.len());
                let mut incomparable = false;
                for item in items {
                    match item {
                        // `x in [null]` never holds; `x not in [null]` only
                        // asks for a value.
                        Literal::Null => {}
                        item => match literal_value(def.field_type, item) {
                            Some(v) => values.push(v),
                            None => incomparable = true,
                        },
                    }
                }
                if op == CompareOp::NotIn && incomparable {
                    // `!=` with a value of another type is false.
                    sql.push("FALSE");
                } else if values.is_empty() {
                    sql.push(&if op == CompareOp::In {
                        "FALSE".to_string()
                    } else {
                        format!("({col} IS NOT NULL)")
                    });
                } else {
                    let keyword = if op == CompareOp::In { "IN" } else { "NOT IN" };
                    sql.push(&format!("COALESCE(({col} {keyword} ("));
                    for (i, v) in values.into_iter().enumerate() {
                        if i > 0 {
                            sql.push(", ");
                        }
                        sql.param(v);
                    }
                    sql.push(")), FALSE)");
                }
            }
            (_, Literal::Null | Literal::List(_)) => sql.push("FALSE"),
            (_, scalar) => {
                let ordered = !matches!(def.field_type, FieldType::Bool);
                let symbol = match op {
                    CompareOp::Eq => "=",
                    CompareOp::Ne => "<>",
                    CompareOp::Lt => "<",
                    CompareOp::Le => "<=",
                    CompareOp::Gt => ">",
                    CompareOp::Ge => ">=",
                    CompareOp::In | CompareOp::NotIn => "=",
                };
                match literal_value(def.field_type, scalar) {
                    Some(v) if ordered || !op.is_ordering() => {
                        let text = matches!(def.field_type, FieldType::String | FieldType::Enum);
                        let collate = if text && op.is_ordering() {
                            sql.byte_collation()
                        } else {
                            ""
                        };
                        sql.push(&format!("COALESCE(({col}{collate} {symbol} "));
                        sql.param(v);
                        sql.push("), FALSE)");
                    }
                    _ => sql.push("FALSE"),
                }
            }
        }
        Ok(())
    }
}

/// The bound value comparing a field of this type with a scalar literal, as
/// the column stores it; `None` when the two cannot be compared (the
/// comparison is then false, as in [`Expr::eval`]).
fn literal_value(field_type: FieldType, lit: &Literal) -> Option<Value> {
    match (field_type, lit) {
        (FieldType::Number | FieldType::Duration, Literal::Number(x)) => Some((*x).into()),
        (FieldType::String | FieldType::Enum, Literal::String(s)) => Some(s.clone().into()),
        (FieldType::Bool, Literal::Bool(b)) => Some((*b).into()),
        (FieldType::Timestamp, Literal::Number(seconds)) => Some((seconds * 1_000_000.0).into()),
        (FieldType::Timestamp, Literal::String(s)) => {
            let t = DateTime::parse_from_rfc3339(s).ok()?;
            // Microseconds since the epoch stay far below 2^53.
            #[allow(clippy::cast_precision_loss)]
            let micros = t.timestamp() as f64 * 1_000_000.0
                + f64::from(t.timestamp_subsec_nanos()) / 1_000.0;
            Some(micros.into())
        }
        _ => None,
    }
}
