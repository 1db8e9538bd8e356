//! Storage against real databases: migrations apply on PostgreSQL and
//! SQLite, twice without harm, and every fact table has a column per field
//! of the domain's fact schema.

use kpi_domain::schema::FactType;
use kpi_store::ingestion::fact_table;
use kpi_testkit::{DbKind, TestDb};
use sea_orm::{ConnectionTrait, Statement};
use sea_orm_migration::MigratorTrait;

async fn migrations_apply_twice_and_match_the_schema(kind: DbKind) {
    let db = TestDb::new(kind).await.unwrap();
    let conn = kpi_store::connect(&db.url).await.unwrap();
    for _ in 0..2 {
        kpi_store::catalog::Migrator::up(&conn, None).await.unwrap();
        kpi_store::ingestion::Migrator::up(&conn, None)
            .await
            .unwrap();
    }
    for fact_type in FactType::ALL {
        let schema = fact_type.schema();
        let mut columns: Vec<String> = schema
            .fields
            .iter()
            .map(|f| format!("\"{}\"", f.name))
            .collect();
        columns.extend(
            schema
                .fields
                .iter()
                .filter(|f| f.business_hours)
                .map(|f| format!("\"{}_bh\"", f.name)),
        );
        let sql = format!(
            "SELECT \"tenant\", {}, \"ingested_at\" FROM \"{}\" WHERE 1 = 0",
            columns.join(", "),
            fact_table(fact_type)
        );
        conn.query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
            .await
            .unwrap_or_else(|e| panic!("{fact_type:?}: {e}"));
    }
}

#[tokio::test]
async fn migrations_on_sqlite() {
    migrations_apply_twice_and_match_the_schema(DbKind::Sqlite).await;
}

#[tokio::test]
async fn migrations_on_postgres() {
    migrations_apply_twice_and_match_the_schema(DbKind::Postgres).await;
}
