//! The catalog's migrations, with their own history table
//! (`seaql_migrations_catalog`).
// `async_trait` signatures of sea-orm-migration elide the manager's lifetime.
#![allow(elided_lifetimes_in_paths)]

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, integer, string, text, timestamp_with_time_zone};

/// The catalog's migrator.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migration_table_name() -> DynIden {
        "seaql_migrations_catalog".into_iden()
    }

    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateCatalogTables)]
    }
}

#[derive(DeriveMigrationName)]
struct CreateCatalogTables;

#[derive(DeriveIden)]
enum Catalog {
    Tenant,
    Key,
    Version,
    State,
    Definition,
    CreatedAt,
    UpdatedAt,
    Revision,
}

fn versions_table(name: &'static str) -> TableCreateStatement {
    Table::create()
        .table(name)
        .if_not_exists()
        .col(string(Catalog::Tenant))
        .col(string(Catalog::Key))
        .col(integer(Catalog::Version))
        .col(string(Catalog::State))
        .col(text(Catalog::Definition))
        .col(timestamp_with_time_zone(Catalog::CreatedAt))
        .col(timestamp_with_time_zone(Catalog::UpdatedAt))
        .primary_key(
            Index::create()
                .col(Catalog::Tenant)
                .col(Catalog::Key)
                .col(Catalog::Version),
        )
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for CreateCatalogTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(versions_table("catalog_indicator_versions"))
            .await?;
        manager
            .create_table(versions_table("catalog_template_versions"))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("catalog_calendars")
                    .if_not_exists()
                    .col(string(Catalog::Tenant))
                    .col(string(Catalog::Key))
                    .col(text(Catalog::Definition))
                    .col(timestamp_with_time_zone(Catalog::UpdatedAt))
                    .primary_key(Index::create().col(Catalog::Tenant).col(Catalog::Key))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("catalog_revisions")
                    .if_not_exists()
                    .col(string(Catalog::Tenant).primary_key())
                    .col(big_integer(Catalog::Revision))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "catalog_revisions",
            "catalog_calendars",
            "catalog_template_versions",
            "catalog_indicator_versions",
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
