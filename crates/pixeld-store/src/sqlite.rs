//! SQLite backend: one file, WAL mode, foreign keys on.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use time::OffsetDateTime;

use crate::OpenError;

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    groups: std::sync::Arc<crate::group::Groups>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file named by a `sqlite:` URL.
    pub async fn connect(url: &str) -> Result<Self, OpenError> {
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| OpenError::Connect(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(opts)
            .await
            .map_err(|e| OpenError::Connect(e.to_string()))?;
        Ok(Self {
            pool,
            groups: Default::default(),
        })
    }

    /// Applies the SQLite migrations.
    pub async fn migrate(&self) -> Result<(), OpenError> {
        sqlx::migrate!("./migrations/sqlite")
            .run(&self.pool)
            .await
            .map_err(|e| OpenError::Migrate(e.to_string()))
    }

    /// The connection pool, for maintenance tasks.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// Times are stored as microseconds since the epoch, so SQL comparisons are numeric.
fn ts(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1000) as i64
}

fn from_micros(v: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(v) * 1000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn read_ts(row: &SqliteRow, col: &str) -> Result<OffsetDateTime, sqlx::Error> {
    row.try_get::<i64, _>(col).map(from_micros)
}

fn read_ts_opt(row: &SqliteRow, col: &str) -> Result<Option<OffsetDateTime>, sqlx::Error> {
    Ok(row.try_get::<Option<i64>, _>(col)?.map(from_micros))
}

store_impl!(SqliteStore, sqlx::Sqlite, SqliteRow, "sqlite", "");
ledger_impl!(
    SqliteStore,
    sqlx::Sqlite,
    SqliteRow,
    "UPDATE credit_balances SET updated_at = updated_at WHERE org_id IN (",
    ") RETURNING org_id, balance, next_expiry"
);
privacy_impl!(SqliteStore, sqlx::Sqlite, SqliteRow);
support_impl!(SqliteStore, sqlx::Sqlite, SqliteRow);
