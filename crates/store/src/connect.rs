//! Opening a database connection from a URL.

use std::time::Duration;

use sea_orm::sqlx::{Connection as _, Executor as _};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

/// The database behind a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `postgres://` or `postgresql://`.
    Postgres,
    /// `sqlite:`.
    Sqlite,
}

impl Backend {
    /// The backend a URL names, if supported.
    pub fn of(url: &str) -> Option<Backend> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else {
            None
        }
    }
}

/// Prepared statements each SQLite connection keeps (SQLite's parsing is
/// worth saving; it has four connections at most).
const SQLITE_STATEMENT_CACHE: usize = 16;

/// Prepared statements each PostgreSQL connection keeps (see [`connect_warm`]).
const POSTGRES_STATEMENT_CACHE: usize = 32;

/// Connects to `url`. SQLite databases get WAL journaling and a busy timeout
/// so that concurrent writers wait instead of failing; pools are sized for
/// the backend (SQLite allows one writer at a time anyway).
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    connect_warm(url, 1).await
}

/// [`connect`], keeping at least `warm` PostgreSQL connections open (opened
/// before this returns), so that a burst of concurrent statements after a
/// quiet spell does not wait for new server processes first.
pub async fn connect_warm(url: &str, warm: u32) -> Result<DatabaseConnection, DbErr> {
    let backend = Backend::of(url).ok_or_else(|| {
        DbErr::Custom("unsupported database URL scheme: use postgres://… or sqlite:…".to_string())
    })?;
    let mut options = ConnectOptions::new(url.to_string());
    options
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(30))
        .sqlx_logging(false);
    match backend {
        Backend::Postgres => {
            options
                .max_connections(16)
                .min_connections(warm.clamp(1, 16))
                .map_sqlx_postgres_opts(|o| {
                    // Each connection keeps its last statements prepared: a
                    // point read (a tenant's data version or catalog revision,
                    // read for every scorecard request) then costs one round
                    // trip instead of two (parse and describe, then bind and
                    // execute). The statements that run on PostgreSQL have
                    // fixed texts (bulk rows go as one JSON parameter, events
                    // by COPY), so the cache holds few, small entries. (When
                    // multi-row VALUES lists of thousands of placeholders ran
                    // here, sqlx's default cache of 100 per connection grew
                    // data-ingestion past 450 MiB over a million events.)
                    o.statement_cache_capacity(POSTGRES_STATEMENT_CACHE)
                })
                .map_sqlx_postgres_pool_opts(|o| {
                    // Custom plans always, as unnamed statements get: a
                    // generic plan, chosen once for every tenant and period,
                    // can be far off for a tenant whose data is skewed. Set
                    // by a statement, not the `options` startup parameter,
                    // which PgBouncer refuses unless configured to pass it.
                    o.after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute("SET plan_cache_mode = force_custom_plan")
                                .await?;
                            Ok(())
                        })
                    })
                    // A connection's buffers grow to the largest message it
                    // has carried (a batch's events, a projection's rows)
                    // and keep that size; sixteen of them held on to tens
                    // of MiB. Back in the pool they give it up.
                    .after_release(|conn, _| {
                        Box::pin(async move {
                            conn.shrink_buffers();
                            Ok(true)
                        })
                    })
                });
        }
        Backend::Sqlite => {
            options
                .max_connections(4)
                .min_connections(1)
                .map_sqlx_sqlite_opts(|o| {
                    o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                        .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                        .busy_timeout(Duration::from_secs(30))
                        .foreign_keys(true)
                        .statement_cache_capacity(SQLITE_STATEMENT_CACHE)
                });
        }
    }
    Database::connect(options).await
}
