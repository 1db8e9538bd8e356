//! The indicator-catalog's storage: tables, migrations, and a repository
//! that loads a tenant's whole catalog, lets the domain apply one operation,
//! and writes back the rows it changed, all under optimistic concurrency on
//! a per-tenant revision (concurrent writers retry; none is lost).

pub mod entities;
mod migration;
mod repo;

pub use migration::Migrator;
pub use repo::CatalogRepo;
