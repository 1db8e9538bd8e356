//! Storage for the suite: one code base for PostgreSQL (production) and
//! SQLite (the embedded default), on sea-orm.
//!
//! - [`connect`], [`connect_warm`]: opening a database from a URL (SQLite gets WAL and a busy timeout; PostgreSQL pools may keep connections warm).
//! - [`catalog`]: the indicator-catalog's tables, migrations and repository.
//! - [`ingestion`]: the data-ingestion tables (events, facts, roster, audit) and migrations.
//! - [`StoreError`]: what storage can fail with; handlers never see `DbErr`.
//!
//! Each service owns its tables and its own migration history table, so the
//! three services can share one database (the embedded stack) or not.
#![forbid(unsafe_code)]

pub mod catalog;
mod connect;
pub mod ingestion;

pub use connect::{Backend, connect, connect_warm};
pub use sea_orm::{DatabaseConnection, DbErr};

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed or is unreachable.
    #[error("database error: {0}")]
    Database(#[from] sea_orm::DbErr),
    /// A stored definition could not be read back.
    #[error("corrupt row {what}: {reason}")]
    Corrupt {
        /// Which row.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Concurrent writers kept conflicting; the caller may retry.
    #[error("concurrent changes to {0}; retry")]
    Conflict(String),
}

impl StoreError {
    /// Whether the database is away (a retry later may succeed): no
    /// connection could be had, the connection broke, or the server is
    /// shutting down, restarting or refusing connections for now.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Database(DbErr::Conn(_) | DbErr::ConnectionAcquire(_)) => true,
            StoreError::Database(DbErr::Exec(err) | DbErr::Query(err)) => lost_connection(err),
            _ => false,
        }
    }
}

/// SQLSTATEs of a server going away: `57P01` admin shutdown (a fast
/// `pg_ctl stop` or restart), `57P02` crash shutdown, `57P03` cannot
/// connect now (starting up or shutting down).
const SERVER_GOING_AWAY: [&str; 3] = ["57P01", "57P02", "57P03"];

/// Whether a statement failed because its connection was lost rather than
/// because of the statement: an I/O or TLS failure, a closed pool, a
/// connection exception (SQLSTATE class `08`) or the server going away.
/// Such a statement may be retried once the database is back; a
/// transaction it was part of was rolled back (or, if the COMMIT itself was
/// lost, may have committed: writes are idempotent for that reason).
fn lost_connection(err: &sea_orm::RuntimeErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    let sea_orm::RuntimeErr::SqlxError(err) = err else {
        return false;
    };
    match err.as_ref() {
        Sqlx::Io(_)
        | Sqlx::Tls(_)
        | Sqlx::PoolTimedOut
        | Sqlx::PoolClosed
        | Sqlx::WorkerCrashed
        | Sqlx::Protocol(_) => true,
        Sqlx::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("08") || SERVER_GOING_AWAY.contains(&&*code)),
        _ => false,
    }
}

/// The one mapping of storage errors to gRPC: the database being away is
/// UNAVAILABLE (clients retry), concurrent writers ABORTED, anything else
/// INTERNAL (logged, never leaked).
impl From<StoreError> for tonic::Status {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::Conflict(what) => {
                tonic::Status::aborted(format!("concurrent changes to {what}; retry"))
            }
            _ if e.is_unavailable() => {
                tracing::warn!(error = %e, "database unavailable");
                kpi_runtime::status::unavailable("the database is unavailable; retry", None)
            }
            _ => kpi_runtime::status::internal("storage", &e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sea_orm::RuntimeErr;
    use sea_orm::sqlx::Error as Sqlx;

    use super::*;

    fn query_err(err: Sqlx) -> StoreError {
        StoreError::Database(DbErr::Query(RuntimeErr::SqlxError(Arc::new(err))))
    }

    #[test]
    fn a_lost_connection_is_unavailable_a_bad_statement_is_not() {
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(query_err(Sqlx::Io(reset)).is_unavailable());
        assert!(query_err(Sqlx::PoolClosed).is_unavailable());
        assert!(query_err(Sqlx::Protocol("unexpected end of stream".into())).is_unavailable());
        assert!(!query_err(Sqlx::RowNotFound).is_unavailable());
        assert!(!query_err(Sqlx::ColumnNotFound("n".into())).is_unavailable());

        let status = tonic::Status::from(query_err(Sqlx::PoolTimedOut));
        assert_eq!(status.code(), tonic::Code::Unavailable);
        let status = tonic::Status::from(query_err(Sqlx::RowNotFound));
        assert_eq!(status.code(), tonic::Code::Internal);
    }
}
