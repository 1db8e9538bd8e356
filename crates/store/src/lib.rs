//! Storage for the suite: one code base for PostgreSQL (production) and
//! SQLite (the embedded default), on sea-orm.
//!
//! - [`connect`]: opening a database from a URL (SQLite gets WAL and a busy timeout).
//! - [`catalog`]: the indicator-catalog's tables, migrations and repository.
//! - [`StoreError`]: what storage can fail with; handlers never see `DbErr`.
//!
//! Each service owns its tables and its own migration history table, so the
//! three services can share one database (the embedded stack) or not.
#![forbid(unsafe_code)]

pub mod catalog;
mod connect;

pub use connect::{Backend, connect};
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
