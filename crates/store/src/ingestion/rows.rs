//! Fact rows to and from the fact tables, generically by the fact schema:
//! one upsert statement per fact type and chunk (on PostgreSQL with the rows
//! as one JSON parameter), and a reader that turns a database row back into
//! a [`FactRow`].

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use kpi_domain::facts::{FactRow, FactValue, business_column};
use kpi_domain::schema::{FactType, FieldType};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult, Statement, Value};

use super::sql::{MAX_PARAMS, Placeholders, from_micros, in_list, list_value, micros};

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

/// Rows per upsert statement on PostgreSQL (one JSON parameter each, about
/// a kilobyte per ticket).
const JSON_ROWS_PER_STATEMENT: usize = 2_000;

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
    let insert = format!(
        "INSERT INTO {} ({})",
        quote(&fact_table(fact_type)),
        names.join(", ")
    );
    let on_conflict = format!(
        "ON CONFLICT ({}, {}) DO UPDATE SET {}",
        quote("tenant"),
        quote(id),
        updates.join(", ")
    );
    if backend == DbBackend::Postgres {
        for chunk in rows.chunks(JSON_ROWS_PER_STATEMENT) {
            let statement = json_upsert(tenant, &cols, chunk, ingested_at, &insert, &on_conflict);
            db.execute_raw(statement).await?;
        }
        return Ok(());
    }
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
        let sql = format!("{insert} VALUES {} {on_conflict}", tuples.join(", "));
        db.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
    }
    Ok(())
}

/// A PostgreSQL upsert of `rows` passed as ONE JSON parameter (an array of
/// rows, each an array of column values). Its text is the same for every
/// batch, so each connection parses and plans it once: a `VALUES` list of
/// thousands of placeholders was parsed and bound anew every time, and that
/// cost more than the upsert itself (seen here: 4.8 s of a 200,000-event
/// catch-up, 2.2 s of it executing).
fn json_upsert(
    tenant: &str,
    cols: &[Column],
    rows: &[FactRow],
    ingested_at: DateTime<Utc>,
    insert: &str,
    on_conflict: &str,
) -> Statement {
    let select: Vec<String> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let sql_type = match c.field_type {
                FieldType::String | FieldType::Enum => "text",
                FieldType::Number | FieldType::Duration => "double precision",
                FieldType::Bool => "boolean",
                FieldType::Timestamp => "bigint",
            };
            format!("CAST(r->>{i} AS {sql_type})")
        })
        .collect();
    // Written row by row: a JSON tree of the whole chunk cost tens of MiB.
    let mut json = String::with_capacity(rows.len() * 24 * cols.len());
    json.push('[');
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        let values: Vec<serde_json::Value> =
            cols.iter().map(|c| json_value(row.get(c.name))).collect();
        json.push_str(&serde_json::Value::Array(values).to_string());
    }
    json.push(']');
    let sql = format!(
        "{insert} SELECT $1, {}, $3 FROM jsonb_array_elements(CAST($2 AS jsonb)) AS r {on_conflict}",
        select.join(", ")
    );
    let values = [
        Value::String(Some(tenant.to_string())),
        Value::String(Some(json)),
        Value::BigInt(Some(micros(ingested_at))),
    ];
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// One fact value as JSON, read back by `->>` and a cast to its column's
/// type. Numbers are written in their shortest exact form, so they come
/// back bit for bit; values JSON cannot hold (NaN, infinities) go as the
/// text PostgreSQL reads them from.
fn json_value(value: &FactValue) -> serde_json::Value {
    match value {
        FactValue::Text(s) => serde_json::Value::String(s.clone()),
        FactValue::Number(n) => serde_json::Number::from_f64(*n).map_or_else(
            || serde_json::Value::String(non_finite(*n).to_string()),
            serde_json::Value::Number,
        ),
        FactValue::Bool(b) => serde_json::Value::Bool(*b),
        FactValue::Time(t) => serde_json::Value::from(micros(*t)),
        FactValue::Null => serde_json::Value::Null,
    }
}

/// PostgreSQL's spelling of a number JSON cannot hold.
fn non_finite(n: f64) -> &'static str {
    if n.is_nan() {
        "NaN"
    } else if n > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
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
    let list = in_list(backend, &mut p);
    let sql = format!(
        "DELETE FROM {} WHERE {} = {tenant_p} AND {} {list}",
        quote(&fact_table(fact_type)),
        quote("tenant"),
        quote(column)
    );
    let values = vec![
        Value::String(Some(tenant.to_string())),
        list_value(backend, keys),
    ];
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
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let backend = db.get_database_backend();
    let mut p = Placeholders::new(backend);
    let tenant_p = p.next();
    let list = in_list(backend, &mut p);
    let condition = format!(
        "{} = {tenant_p} AND {} {list}",
        quote("tenant"),
        quote(column)
    );
    let values = vec![
        Value::String(Some(tenant.to_string())),
        list_value(backend, keys),
    ];
    load_facts(db, fact_type, &condition, values).await
}

/// Reads the facts of one type that meet `condition` (SQL over the fact
/// table's columns, its placeholders bound to `values`).
pub(crate) async fn load_facts(
    db: &impl ConnectionTrait,
    fact_type: FactType,
    condition: &str,
    values: Vec<Value>,
) -> Result<Vec<FactRow>, DbErr> {
    let backend = db.get_database_backend();
    let cols = columns(fact_type);
    let select: Vec<String> = cols.iter().map(|c| quote(c.name)).collect();
    let sql = format!(
        "SELECT {} FROM {} WHERE {condition}",
        select.join(", "),
        quote(&fact_table(fact_type)),
    );
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

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use kpi_testkit::{DbKind, TestDb};
    use sea_orm_migration::MigratorTrait;

    use super::*;

    /// Values that are easy to get wrong on the way to a table and back.
    const NUMBERS: [f64; 7] = [
        0.1 + 0.2,
        1e-300,
        123_456_789.123_456_79,
        -2.5e-7,
        f64::MAX,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ];
    const TEXTS: [&str; 4] = [
        "plain",
        "quote \" and \\ back",
        "ünïcødé ✓",
        "{\"json\": [1]}",
    ];

    /// A row with every column set, the values chosen by `seed`.
    fn full_row(fact_type: FactType, id: &str, seed: usize) -> FactRow {
        let mut row = FactRow::new(fact_type);
        let id_field = fact_type.schema().id_field;
        for (i, c) in columns(fact_type).into_iter().enumerate() {
            let n = seed + i;
            let value = match c.field_type {
                _ if c.name == id_field => FactValue::Text(id.to_string()),
                FieldType::String | FieldType::Enum => FactValue::Text(TEXTS[n % 4].to_string()),
                FieldType::Number | FieldType::Duration => {
                    FactValue::Number(NUMBERS[n % NUMBERS.len()])
                }
                FieldType::Bool => FactValue::Bool(n.is_multiple_of(2)),
                FieldType::Timestamp => FactValue::Time(
                    Utc.timestamp_opt(1_772_000_000 + n as i64, 123_456_000)
                        .unwrap(),
                ),
            };
            row.values.insert(c.name, value);
        }
        row
    }

    /// The columns whose values differ (numbers compared bit for bit).
    fn differences(a: &FactRow, b: &FactRow) -> Vec<String> {
        a.values
            .iter()
            .filter(|&(k, v)| match (v, b.get(k)) {
                (FactValue::Number(x), FactValue::Number(y)) => x.to_bits() != y.to_bits(),
                (v, w) => v != w,
            })
            .map(|(k, v)| format!("{k}: {v:?} came back as {:?}", b.get(k)))
            .collect()
    }

    async fn rows_come_back_bit_for_bit(kind: DbKind) {
        let db = TestDb::new(kind).await.unwrap();
        let conn = crate::connect(&db.url).await.unwrap();
        crate::ingestion::Migrator::up(&conn, None).await.unwrap();
        let now = Utc::now();
        for fact_type in FactType::ALL {
            let ids: Vec<String> = (0..8).map(|i| format!("{fact_type:?}-{i}")).collect();
            for seed in [0, 3] {
                // The second round updates every row through the conflict path.
                let rows: Vec<FactRow> = ids
                    .iter()
                    .enumerate()
                    .map(|(i, id)| full_row(fact_type, id, seed + i))
                    .collect();
                upsert_facts(&conn, "acme", fact_type, &rows, now)
                    .await
                    .unwrap();
                let id_field = fact_type.schema().id_field;
                let mut back = load_facts_where(&conn, "acme", fact_type, id_field, &ids)
                    .await
                    .unwrap();
                back.sort_by(|a, b| a.id().cmp(b.id()));
                assert_eq!(back.len(), rows.len(), "{fact_type:?}");
                for (want, got) in rows.iter().zip(&back) {
                    assert_eq!(
                        differences(want, got),
                        Vec::<String>::new(),
                        "{fact_type:?}"
                    );
                }
            }
        }
    }

    #[tokio::test]
    async fn upserted_rows_come_back_bit_for_bit_on_sqlite() {
        rows_come_back_bit_for_bit(DbKind::Sqlite).await;
    }

    #[tokio::test]
    async fn upserted_rows_come_back_bit_for_bit_on_postgres() {
        rows_come_back_bit_for_bit(DbKind::Postgres).await;
    }
}
