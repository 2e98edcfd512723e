//! The [`pixeld_core::store::Store`] trait on SQLite and on PostgreSQL.
//!
//! Both backends run the same SQL (written to be portable: `$n` parameters, `RETURNING`,
//! `ON CONFLICT`), generated once by the `store_impl!` macro; each has its own migrations and
//! its own way of storing time (numeric microseconds on SQLite so comparisons are exact,
//! `TIMESTAMPTZ` on PostgreSQL).

use std::sync::Arc;

use pixeld_core::store::{Store, StoreError};

mod group;
#[macro_use]
mod ledger;
#[macro_use]
mod privacy;
#[macro_use]
mod queries;
#[macro_use]
mod support;
pub mod postgres;
pub mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

/// How a database URL failed to open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The URL is neither `sqlite:` nor `postgres:`.
    #[error("unsupported database URL `{0}`: use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
    /// Connecting failed.
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    /// A migration failed.
    #[error("database migration failed: {0}")]
    Migrate(String),
}

/// Opens the store named by `url` (`sqlite://path?mode=rwc` or `postgres://…`), running
/// migrations first when `migrate` is true.
pub async fn open(url: &str, migrate: bool) -> Result<Arc<dyn Store>, OpenError> {
    if url.starts_with("sqlite:") {
        let s = sqlite::SqliteStore::connect(url).await?;
        if migrate {
            s.migrate().await?;
        }
        Ok(Arc::new(s))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let s = postgres::PgStore::connect(url).await?;
        if migrate {
            s.migrate().await?;
        }
        Ok(Arc::new(s))
    } else {
        Err(OpenError::UnsupportedUrl(redact(url)))
    }
}

/// A URL with its password replaced, for logs and error messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

fn backend_error(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(db.message().to_string())
        }
        sqlx::Error::RowNotFound => StoreError::NotFound,
        _ => StoreError::Backend(e.to_string()),
    }
}
