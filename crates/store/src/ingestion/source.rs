//! Where the measure statements read facts from, and the SQL they share: the
//! statement builder [`Sql`] (bound values in placeholder order), the
//! [`Source`] of a query (fact table, period, credited agent and team,
//! business-hours columns) and filters compiled to SQL with the same
//! two-valued logic as [`Expr::eval`](kpi_domain::filter::Expr::eval): a
//! comparison involving NULL is false, literals are always bound parameters.

use chrono::{DateTime, Utc};
use kpi_domain::filter::{CompareOp, Expr, Literal};
use kpi_domain::measure::{Attribution, TimeBasis};
use kpi_domain::schema::{FactSchema, FactType, FieldDef, FieldType};
use sea_orm::{DbBackend, Statement, Value};

use super::fact_table;
use super::query::QueryError;

/// A statement being written: SQL text and its bound values, in order.
pub(super) struct Sql {
    backend: DbBackend,
    sql: String,
    values: Vec<Value>,
}

impl Sql {
    pub(super) fn new(backend: DbBackend) -> Result<Self, QueryError> {
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

    pub(super) fn push(&mut self, text: &str) {
        self.sql.push_str(text);
    }

    /// The text written so far, taken out (the bound values stay).
    pub(super) fn take_text(&mut self) -> String {
        std::mem::take(&mut self.sql)
    }

    /// Binds a value and returns its placeholder without writing it. Only
    /// for PostgreSQL's numbered placeholders, or when nothing else is bound
    /// between here and where the placeholder is written.
    pub(super) fn placeholder_for(&mut self, value: impl Into<Value>) -> String {
        self.values.push(value.into());
        match self.backend {
            DbBackend::Postgres => format!("${}", self.values.len()),
            _ => "?".to_string(),
        }
    }

    /// Binds a value and writes its placeholder.
    pub(super) fn param(&mut self, value: impl Into<Value>) {
        let placeholder = self.placeholder_for(value);
        self.sql.push_str(&placeholder);
    }

    pub(super) fn double_type(&self) -> &'static str {
        match self.backend {
            DbBackend::Postgres => "DOUBLE PRECISION",
            _ => "REAL",
        }
    }

    /// The collation clause making text comparisons byte-wise (SQLite's
    /// default already is).
    pub(super) fn byte_collation(&self) -> &'static str {
        match self.backend {
            DbBackend::Postgres => " COLLATE \"C\"",
            _ => "",
        }
    }

    pub(super) fn finish(self) -> Statement {
        Statement::from_sql_and_values(self.backend, self.sql, self.values)
    }
}

/// An identifier in double quotes.
pub(super) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Whose credit a fact is: what decides the credited-agent column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Credit {
    /// The agent recorded on the fact (for tickets: the resolving agent).
    Owner,
    /// The ticket's first responder.
    FirstResponder,
    /// Every contributor of the ticket, one row per contribution.
    Contributors,
}

impl Credit {
    /// The credit an attribution gives on facts of this type.
    pub(super) fn of(fact_type: FactType, attribution: Attribution) -> Self {
        match (fact_type, attribution) {
            (FactType::Ticket, Attribution::FirstResponder) => Credit::FirstResponder,
            (FactType::Ticket, Attribution::AllContributors) => Credit::Contributors,
            _ => Credit::Owner,
        }
    }
}

/// Where a query reads facts from and how it names their columns.
pub(super) struct Source {
    schema: &'static FactSchema,
    time_basis: TimeBasis,
    credit: Credit,
    /// The fact's time column, e.g. `f."created_at"`.
    time_col: String,
    /// The credited agent, e.g. `f."agent_id"` or `c."agent_id"`.
    agent_col: String,
    /// The credited agent's team at the fact's time.
    team_expr: String,
}

impl Source {
    pub(super) fn new(
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
        let credit = Credit::of(fact_type, attribution);
        let (agent_col, own_team) = match credit {
            Credit::FirstResponder => ("f.\"first_responder_id\"", "f.\"first_responder_team_id\""),
            Credit::Contributors => ("c.\"agent_id\"", "f.\"team_id\""),
            Credit::Owner => ("f.\"agent_id\"", "f.\"team_id\""),
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
            credit,
            time_col,
            agent_col: agent_col.to_string(),
            team_expr,
        })
    }

    /// Whether each row is one contribution (weighted by its share) rather
    /// than one fact.
    pub(super) fn contributors(&self) -> bool {
        self.credit == Credit::Contributors
    }

    /// The credited agent's column.
    pub(super) fn agent_col(&self) -> &str {
        &self.agent_col
    }

    /// The credited agent's team at the fact's time.
    pub(super) fn team_expr(&self) -> &str {
        &self.team_expr
    }

    /// The column holding a field's values in this time basis.
    pub(super) fn column(&self, def: &FieldDef) -> String {
        if self.time_basis == TimeBasis::BusinessHours && def.business_hours {
            format!("f.{}", quote(&format!("{}_bh", def.name)))
        } else {
            format!("f.{}", quote(def.name))
        }
    }

    pub(super) fn def(&self, name: &str) -> Result<&'static FieldDef, QueryError> {
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
    pub(super) fn field_expr(&self, name: &str) -> Result<String, QueryError> {
        let def = self.def(name)?;
        Ok(if name == "team_id" {
            self.team_expr.clone()
        } else {
            self.column(def)
        })
    }

    pub(super) fn write_from(&self, sql: &mut Sql, contributors: bool) {
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

    pub(super) fn write_period(
        &self,
        sql: &mut Sql,
        tenant: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) {
        sql.push(" WHERE f.\"tenant\" = ");
        sql.param(tenant.to_string());
        sql.push(&format!(" AND {} >= ", self.time_col));
        sql.param(start.timestamp_micros());
        sql.push(&format!(" AND {} < ", self.time_col));
        sql.param(end.timestamp_micros());
    }

    /// Writes a filter as a boolean SQL expression that is never NULL.
    pub(super) fn write_filter(&self, sql: &mut Sql, expr: &Expr) -> Result<(), QueryError> {
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
