//! Loading and saving a tenant's catalog.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use kpi_domain::calendar::BusinessCalendar;
use kpi_domain::catalog::{Catalog, Row, Version, VersionState};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    TransactionTrait,
};
use sea_orm_migration::MigratorTrait;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::entities::{calendar, indicator_version, revision, template_version};
use super::migration::Migrator;
use crate::StoreError;

/// How many times a write is retried when another writer (another replica)
/// got there first.
const MAX_ATTEMPTS: u32 = 20;

/// The catalog repository.
#[derive(Clone, Debug)]
pub struct CatalogRepo {
    db: DatabaseConnection,
    /// Writers of one tenant in this process take turns, so that they do
    /// not conflict with each other; the revision check covers other replicas.
    writers: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

/// A loaded catalog with the revision it was read at.
struct Snapshot {
    catalog: Catalog,
    revision: i64,
}

impl CatalogRepo {
    /// A repository over `db`.
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            writers: Arc::default(),
        }
    }

    fn writer_lock(&self, tenant: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .writers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        locks.entry(tenant.to_string()).or_default().clone()
    }

    /// Applies the catalog's pending migrations.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        Migrator::up(&self.db, None).await?;
        Ok(())
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await.map_err(StoreError::from)
    }

    /// The tenant's revision: 0 before its first write, then one more with
    /// every committed write.
    pub async fn revision(&self, tenant: &str) -> Result<i64, StoreError> {
        Ok(revision::Entity::find_by_id(tenant.to_string())
            .one(&self.db)
            .await?
            .map_or(0, |r| r.revision))
    }

    /// The tenant's catalog as stored now.
    pub async fn load(&self, tenant: &str) -> Result<Catalog, StoreError> {
        Ok(self.snapshot(tenant).await?.catalog)
    }

    /// Loads the tenant's catalog, applies `op`, and saves what it changed.
    /// When another writer committed in between, the whole thing is retried
    /// on a fresh copy, so `op` must be a pure function of the catalog.
    /// `op`'s own error is returned as `Ok(Err(e))` and nothing is written.
    pub async fn update<T, E>(
        &self,
        tenant: &str,
        mut op: impl FnMut(&mut Catalog) -> Result<T, E>,
    ) -> Result<Result<T, E>, StoreError> {
        let lock = self.writer_lock(tenant);
        let _turn = lock.lock().await;
        for attempt in 1..=MAX_ATTEMPTS {
            let Snapshot {
                mut catalog,
                revision,
            } = self.snapshot(tenant).await?;
            let value = match op(&mut catalog) {
                Ok(value) => value,
                Err(e) => return Ok(Err(e)),
            };
            let dirty = catalog.take_dirty();
            if dirty.is_empty() {
                return Ok(Ok(value));
            }
            match self.save(tenant, &catalog, revision, &dirty).await {
                Ok(()) => return Ok(Ok(value)),
                Err(StoreError::Conflict(_)) if attempt < MAX_ATTEMPTS => {
                    tracing::debug!(tenant, attempt, "catalog write conflicted; retrying");
                    // Back off a little, growing, with jitter, so that
                    // replicas writing together fall out of step.
                    let jitter = u64::from(std::process::id() % 7 + attempt % 5);
                    tokio::time::sleep(std::time::Duration::from_millis(
                        5 * u64::from(attempt) + jitter,
                    ))
                    .await;
                }
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict(format!("catalog of tenant {tenant}")))
    }

    async fn snapshot(&self, tenant: &str) -> Result<Snapshot, StoreError> {
        let revision = self.revision(tenant).await?;
        let indicators = indicator_version::Entity::find()
            .filter(indicator_version::Column::Tenant.eq(tenant))
            .all(&self.db)
            .await?;
        let templates = template_version::Entity::find()
            .filter(template_version::Column::Tenant.eq(tenant))
            .all(&self.db)
            .await?;
        let calendars = calendar::Entity::find()
            .filter(calendar::Column::Tenant.eq(tenant))
            .all(&self.db)
            .await?;
        let mut ind = BTreeMap::<String, Vec<_>>::new();
        for row in indicators {
            let v = version_from_row(
                &row.key,
                row.version,
                &row.state,
                &row.definition,
                row.created_at,
                row.updated_at,
            )?;
            ind.entry(row.key).or_default().push(v);
        }
        let mut tpl = BTreeMap::<String, Vec<_>>::new();
        for row in templates {
            let v = version_from_row(
                &row.key,
                row.version,
                &row.state,
                &row.definition,
                row.created_at,
                row.updated_at,
            )?;
            tpl.entry(row.key).or_default().push(v);
        }
        let mut cals = BTreeMap::new();
        for row in calendars {
            let cal: BusinessCalendar = decode(&format!("calendar {}", row.key), &row.definition)?;
            cals.insert(row.key, cal);
        }
        Ok(Snapshot {
            catalog: Catalog::from_parts(ind, tpl, cals),
            revision,
        })
    }

    /// Writes the dirty rows if the tenant's revision is still `expected`.
    async fn save(
        &self,
        tenant: &str,
        catalog: &Catalog,
        expected: i64,
        dirty: &std::collections::BTreeSet<Row>,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin().await?;
        bump_revision(&txn, tenant, expected).await?;
        for row in dirty {
            match row {
                Row::Indicator(key, n) => {
                    let v = find_version(catalog.indicators.get(key), *n, "indicator", key)?;
                    upsert_indicator(&txn, tenant, key, v).await?;
                }
                Row::Template(key, n) => {
                    let v = find_version(catalog.templates.get(key), *n, "template", key)?;
                    upsert_template(&txn, tenant, key, v).await?;
                }
                Row::Calendar(key) => {
                    let cal = catalog
                        .calendars
                        .get(key)
                        .ok_or_else(|| missing("calendar", key))?;
                    upsert_calendar(&txn, tenant, cal).await?;
                }
            }
        }
        txn.commit().await?;
        Ok(())
    }
}

fn missing(what: &str, key: &str) -> StoreError {
    StoreError::Corrupt {
        what: format!("{what} {key}"),
        reason: "marked changed but absent".into(),
    }
}

fn find_version<'a, T>(
    versions: Option<&'a Vec<Version<T>>>,
    n: u32,
    what: &str,
    key: &str,
) -> Result<&'a Version<T>, StoreError> {
    versions
        .and_then(|vs| vs.iter().find(|v| v.version == n))
        .ok_or_else(|| missing(what, key))
}

/// Compare-and-set of the tenant's revision: the first write inserts it,
/// later ones move it from `expected` to `expected + 1`. A concurrent writer
/// makes this fail with [`StoreError::Conflict`].
async fn bump_revision(
    txn: &impl ConnectionTrait,
    tenant: &str,
    expected: i64,
) -> Result<(), StoreError> {
    let conflict = || StoreError::Conflict(format!("catalog of tenant {tenant}"));
    if expected == 0 {
        let row = revision::ActiveModel {
            tenant: Set(tenant.to_string()),
            revision: Set(1),
        };
        let inserted = revision::Entity::insert(row)
            .on_conflict(
                OnConflict::column(revision::Column::Tenant)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
        return if inserted == 1 {
            Ok(())
        } else {
            Err(conflict())
        };
    }
    let updated = revision::Entity::update_many()
        .col_expr(
            revision::Column::Revision,
            sea_orm::sea_query::Expr::value(expected + 1),
        )
        .filter(revision::Column::Tenant.eq(tenant))
        .filter(revision::Column::Revision.eq(expected))
        .exec(txn)
        .await?;
    if updated.rows_affected == 1 {
        Ok(())
    } else {
        Err(conflict())
    }
}

fn encode<T: Serialize>(what: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt {
        what: what.to_string(),
        reason: e.to_string(),
    })
}

fn decode<T: DeserializeOwned>(what: &str, json: &str) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
        what: what.to_string(),
        reason: e.to_string(),
    })
}

fn state_name(state: VersionState) -> &'static str {
    state.as_str()
}

fn parse_state(what: &str, s: &str) -> Result<VersionState, StoreError> {
    match s {
        "draft" => Ok(VersionState::Draft),
        "active" => Ok(VersionState::Active),
        "retired" => Ok(VersionState::Retired),
        other => Err(StoreError::Corrupt {
            what: what.to_string(),
            reason: format!("unknown state \"{other}\""),
        }),
    }
}

fn version_from_row<T: DeserializeOwned>(
    key: &str,
    version: i32,
    state: &str,
    definition: &str,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
) -> Result<Version<T>, StoreError> {
    let what = format!("{key} v{version}");
    Ok(Version {
        version: u32::try_from(version).map_err(|_| StoreError::Corrupt {
            what: what.clone(),
            reason: "negative version".into(),
        })?,
        state: parse_state(&what, state)?,
        def: decode(&what, definition)?,
        created_at,
        updated_at,
    })
}

fn version_number(n: u32) -> Result<i32, StoreError> {
    i32::try_from(n).map_err(|_| StoreError::Corrupt {
        what: format!("version {n}"),
        reason: "too large".into(),
    })
}

async fn upsert_indicator<T: Serialize>(
    txn: &impl ConnectionTrait,
    tenant: &str,
    key: &str,
    v: &Version<T>,
) -> Result<(), StoreError> {
    use indicator_version::{ActiveModel, Column, Entity};
    let row = ActiveModel {
        tenant: Set(tenant.to_string()),
        key: Set(key.to_string()),
        version: Set(version_number(v.version)?),
        state: Set(state_name(v.state).to_string()),
        definition: Set(encode(key, &v.def)?),
        created_at: Set(v.created_at),
        updated_at: Set(v.updated_at),
    };
    Entity::insert(row)
        .on_conflict(
            OnConflict::columns([Column::Tenant, Column::Key, Column::Version])
                .update_columns([Column::State, Column::Definition, Column::UpdatedAt])
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
    Ok(())
}

async fn upsert_template<T: Serialize>(
    txn: &impl ConnectionTrait,
    tenant: &str,
    key: &str,
    v: &Version<T>,
) -> Result<(), StoreError> {
    use template_version::{ActiveModel, Column, Entity};
    let row = ActiveModel {
        tenant: Set(tenant.to_string()),
        key: Set(key.to_string()),
        version: Set(version_number(v.version)?),
        state: Set(state_name(v.state).to_string()),
        definition: Set(encode(key, &v.def)?),
        created_at: Set(v.created_at),
        updated_at: Set(v.updated_at),
    };
    Entity::insert(row)
        .on_conflict(
            OnConflict::columns([Column::Tenant, Column::Key, Column::Version])
                .update_columns([Column::State, Column::Definition, Column::UpdatedAt])
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
    Ok(())
}

async fn upsert_calendar(
    txn: &impl ConnectionTrait,
    tenant: &str,
    cal: &BusinessCalendar,
) -> Result<(), StoreError> {
    use calendar::{ActiveModel, Column, Entity};
    let row = ActiveModel {
        tenant: Set(tenant.to_string()),
        key: Set(cal.key.clone()),
        definition: Set(encode(&cal.key, cal)?),
        updated_at: Set(Utc::now()),
    };
    Entity::insert(row)
        .on_conflict(
            OnConflict::columns([Column::Tenant, Column::Key])
                .update_columns([Column::Definition, Column::UpdatedAt])
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
    Ok(())
}
