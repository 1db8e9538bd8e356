//! Fact rows to and from the fact tables, generically by the fact schema:
//! one upsert statement per fact type and chunk, and a reader that turns a
//! database row back into a [`FactRow`].

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use kpi_domain::facts::{FactRow, FactValue, business_column};
use kpi_domain::schema::{FactType, FieldType};
use sea_orm::{ConnectionTrait, DbErr, QueryResult, Statement, Value};

use super::sql::{MAX_PARAMS, Placeholders, from_micros, in_json_list, json_list, micros};

use super::migration::fact_table;

/// One column of a fact table: its name and type.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Column {
    pub(crate) name: &'static str,
    pub(crate) field_type: FieldType,
}

/// The columns of a fact table after `tenant`, in table order (without `ingested_at`).
pub(crate) fn columns(fact_type: FactType) -> Vec<Column> {
    let mut out = Vec::new();
    for f in fact_type.schema().fields {
        out.push(Column {
            name: f.name,
            field_type: f.field_type,
        });
        if let Some(bh) = business_column(f.name).filter(|_| f.business_hours) {
            out.push(Column {
                name: bh,
                field_type: FieldType::Duration,
            });
        }
    }
    out
}

/// The SQL value of one fact value in a column of `field_type`.
fn bind(value: &FactValue, field_type: FieldType) -> Value {
    match (value, field_type) {
        (FactValue::Text(s), _) => Value::String(Some(s.clone())),
        (FactValue::Number(n), _) => Value::Double(Some(*n)),
        (FactValue::Bool(b), _) => Value::Bool(Some(*b)),
        (FactValue::Time(t), _) => Value::BigInt(Some(micros(*t))),
        (FactValue::Null, FieldType::String | FieldType::Enum) => Value::String(None),
        (FactValue::Null, FieldType::Number | FieldType::Duration) => Value::Double(None),
        (FactValue::Null, FieldType::Bool) => Value::Bool(None),
        (FactValue::Null, FieldType::Timestamp) => Value::BigInt(None),
    }
}

fn quote(name: &str) -> String {
    format!("\"{name}\"")
}

/// Inserts or replaces fact rows of one type (all rows must be of `fact_type`).
pub(crate) async fn upsert_facts(
    db: &impl ConnectionTrait,
    tenant: &str,
    fact_type: FactType,
    rows: &[FactRow],
    ingested_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    if rows.is_empty() {
        return Ok(());
    }
    let backend = db.get_database_backend();
    let cols = columns(fact_type);
    let id = fact_type.schema().id_field;
    let mut names: Vec<String> = vec![quote("tenant")];
    names.extend(cols.iter().map(|c| quote(c.name)));
    names.push(quote("ingested_at"));
    let updates: Vec<String> = cols
        .iter()
        .filter(|c| c.name != id)
        .map(|c| format!("{0} = excluded.{0}", quote(c.name)))
        .chain(std::iter::once(format!(
            "{0} = excluded.{0}",
            quote("ingested_at")
        )))
        .collect();
    let per_row = names.len();
    for chunk in rows.chunks((MAX_PARAMS / per_row).max(1)) {
        let mut p = Placeholders::new(backend);
        let mut values = Vec::with_capacity(chunk.len() * per_row);
        let mut tuples = Vec::with_capacity(chunk.len());
        for row in chunk {
            values.push(Value::String(Some(tenant.to_string())));
            for c in &cols {
                values.push(bind(row.get(c.name), c.field_type));
            }
            values.push(Value::BigInt(Some(micros(ingested_at))));
            tuples.push(p.tuple(per_row));
        }
        let sql = format!(
            "INSERT INTO {} ({}) VALUES {} ON CONFLICT ({}, {}) DO UPDATE SET {}",
            quote(&fact_table(fact_type)),
            names.join(", "),
            tuples.join(", "),
            quote("tenant"),
            quote(id),
            updates.join(", ")
        );
        db.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
    }
    Ok(())
}

/// Deletes the facts of one type with these ids (used where a correction
/// can remove rows, e.g. the items of a re-sent QA review).
pub(crate) async fn delete_facts_where(
    db: &impl ConnectionTrait,
    tenant: &str,
    fact_type: FactType,
    column: &str,
    keys: &[String],
) -> Result<(), DbErr> {
    if keys.is_empty() {
        return Ok(());
    }
    let backend = db.get_database_backend();
    let mut p = Placeholders::new(backend);
    let tenant_p = p.next();
    let list = in_json_list(backend, &mut p);
    let sql = format!(
        "DELETE FROM {} WHERE {} = {tenant_p} AND {} {list}",
        quote(&fact_table(fact_type)),
        quote("tenant"),
        quote(column)
    );
    let values = vec![Value::String(Some(tenant.to_string())), json_list(keys)];
    db.execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    Ok(())
}

/// Reads the facts of one type whose `column` is one of `keys`.
pub(crate) async fn load_facts_where(
    db: &impl ConnectionTrait,
    tenant: &str,
    fact_type: FactType,
    column: &str,
    keys: &[String],
) -> Result<Vec<FactRow>, DbErr> {
    let backend = db.get_database_backend();
    let cols = columns(fact_type);
    let select: Vec<String> = cols.iter().map(|c| quote(c.name)).collect();
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut p = Placeholders::new(backend);
    let tenant_p = p.next();
    let list = in_json_list(backend, &mut p);
    let sql = format!(
        "SELECT {} FROM {} WHERE {} = {tenant_p} AND {} {list}",
        select.join(", "),
        quote(&fact_table(fact_type)),
        quote("tenant"),
        quote(column)
    );
    let values = vec![Value::String(Some(tenant.to_string())), json_list(keys)];
    let mut out = Vec::new();
    for row in db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?
    {
        out.push(read_row(fact_type, &cols, &row)?);
    }
    Ok(out)
}

fn read_row(fact_type: FactType, cols: &[Column], row: &QueryResult) -> Result<FactRow, DbErr> {
    let mut values = BTreeMap::new();
    for c in cols {
        let v = match c.field_type {
            FieldType::String | FieldType::Enum => row
                .try_get::<Option<String>>("", c.name)?
                .map(FactValue::Text),
            FieldType::Number | FieldType::Duration => row
                .try_get::<Option<f64>>("", c.name)?
                .map(FactValue::Number),
            FieldType::Bool => row
                .try_get::<Option<bool>>("", c.name)?
                .map(FactValue::Bool),
            FieldType::Timestamp => row
                .try_get::<Option<i64>>("", c.name)?
                .and_then(from_micros)
                .map(FactValue::Time),
        };
        values.insert(c.name, v.unwrap_or(FactValue::Null));
    }
    Ok(FactRow { fact_type, values })
}
