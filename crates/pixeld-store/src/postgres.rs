//! PostgreSQL backend, for several stateless nodes sharing one database.

use std::time::Duration;

use sqlx::Row;
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use time::OffsetDateTime;

use crate::OpenError;

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    groups: std::sync::Arc<crate::group::Groups>,
}

impl PgStore {
    /// Connects to the database named by a `postgres:` URL.
    pub async fn connect(url: &str) -> Result<Self, OpenError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(|e| OpenError::Connect(e.to_string()))?;
        Ok(Self {
            pool,
            groups: Default::default(),
        })
    }

    /// Applies the PostgreSQL migrations (safe to run from several nodes at once: sqlx takes an
    /// advisory lock).
    pub async fn migrate(&self) -> Result<(), OpenError> {
        sqlx::migrate!("./migrations/postgres")
            .run(&self.pool)
            .await
            .map_err(|e| OpenError::Migrate(e.to_string()))
    }

    /// The connection pool, for maintenance tasks.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

fn ts(t: OffsetDateTime) -> OffsetDateTime {
    t
}

fn read_ts(row: &PgRow, col: &str) -> Result<OffsetDateTime, sqlx::Error> {
    row.try_get::<OffsetDateTime, _>(col)
}

fn read_ts_opt(row: &PgRow, col: &str) -> Result<Option<OffsetDateTime>, sqlx::Error> {
    row.try_get::<Option<OffsetDateTime>, _>(col)
}

store_impl!(
    PgStore,
    sqlx::Postgres,
    PgRow,
    "postgres",
    " FOR UPDATE SKIP LOCKED"
);
ledger_impl!(
    PgStore,
    sqlx::Postgres,
    PgRow,
    "SELECT org_id, balance, next_expiry FROM credit_balances WHERE org_id IN (",
    ") ORDER BY org_id FOR UPDATE"
);
privacy_impl!(PgStore, sqlx::Postgres, PgRow);
support_impl!(PgStore, sqlx::Postgres, PgRow);
