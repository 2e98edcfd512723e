//! Fresh databases for tests: a new SQLite file or a new PostgreSQL database per test, dropped
//! when the test ends.
//!
//! PostgreSQL is found at `PIXELD_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). When it is unreachable the PostgreSQL half of
//! a test is skipped with a message, except under `CI=true`, where that is a failure.

use std::path::PathBuf;
use std::sync::Arc;

use pixeld_core::store::Store;
use sqlx::Connection;

/// The two backends every storage test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A temporary SQLite file.
    Sqlite,
    /// A fresh database on the local PostgreSQL server.
    Postgres,
}

/// A database that exists for one test.
pub struct TestDb {
    /// Its URL.
    pub url: String,
    /// Which backend.
    pub backend: Backend,
    cleanup: Cleanup,
}

enum Cleanup {
    File(PathBuf),
    Database { admin_url: String, name: String },
}

fn admin_url() -> String {
    std::env::var("PIXELD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

impl TestDb {
    /// Every value in every table as text, one per line (binary columns as their bytes read as
    /// text), for tests that prove something is stored nowhere.
    pub async fn all_text(&self) -> String {
        use sqlx::AssertSqlSafe;
        let mut out = String::new();
        match self.backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.url)
                    .await
                    .expect("open the test database");
                let tables: Vec<String> = sqlx::query_scalar(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
                )
                .fetch_all(&mut c)
                .await
                .expect("list tables");
                for t in tables {
                    let cols: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
                        "SELECT name FROM pragma_table_info('{t}')"
                    )))
                    .fetch_all(&mut c)
                    .await
                    .expect("list columns");
                    for col in cols {
                        let vals: Vec<Option<Vec<u8>>> = sqlx::query_scalar(AssertSqlSafe(
                            format!("SELECT CAST(\"{col}\" AS BLOB) FROM \"{t}\""),
                        ))
                        .fetch_all(&mut c)
                        .await
                        .expect("read a column");
                        for v in vals.into_iter().flatten() {
                            out.push_str(&String::from_utf8_lossy(&v));
                            out.push('\n');
                        }
                    }
                }
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url)
                    .await
                    .expect("open the test database");
                let cols: Vec<(String, String, String)> = sqlx::query_as(
                    "SELECT table_name::text, column_name::text, data_type::text FROM information_schema.columns \
                     WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position",
                )
                .fetch_all(&mut c)
                .await
                .expect("list columns");
                for (t, col, ty) in cols {
                    let expr = if ty == "bytea" {
                        format!("encode(\"{col}\", 'escape')")
                    } else {
                        format!("\"{col}\"::text")
                    };
                    let vals: Vec<Option<String>> =
                        sqlx::query_scalar(AssertSqlSafe(format!("SELECT {expr} FROM \"{t}\"")))
                            .fetch_all(&mut c)
                            .await
                            .expect("read a column");
                    for v in vals.into_iter().flatten() {
                        out.push_str(&v);
                        out.push('\n');
                    }
                }
            }
        }
        out
    }

    /// Creates an empty database (no migrations). `None` means PostgreSQL is not available and
    /// this is not CI: the caller skips.
    pub async fn create(backend: Backend) -> Option<TestDb> {
        let id = uuid::Uuid::now_v7().simple().to_string();
        match backend {
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("pixeld-test-{id}.db"));
                Some(TestDb {
                    url: format!("sqlite://{}", path.display()),
                    backend,
                    cleanup: Cleanup::File(path),
                })
            }
            Backend::Postgres => {
                let admin = admin_url();
                let mut conn = match sqlx::PgConnection::connect(&admin).await {
                    Ok(c) => c,
                    Err(e) if !in_ci() => {
                        eprintln!(
                            "skipping the PostgreSQL half of this test: {e} (set CI=true to make this an error)"
                        );
                        return None;
                    }
                    Err(e) => panic!(
                        "PostgreSQL is required under CI=true but {admin} is unreachable: {e}"
                    ),
                };
                let name = format!("pixeld_t_{id}");
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                let mut url = url::Url::parse(&admin).expect("valid admin URL");
                url.set_path(&name);
                Some(TestDb {
                    url: url.to_string(),
                    backend,
                    cleanup: Cleanup::Database {
                        admin_url: admin,
                        name,
                    },
                })
            }
        }
    }

    /// Creates the database, migrates it and opens the store.
    pub async fn store(backend: Backend) -> Option<(TestDb, Arc<dyn Store>)> {
        let db = Self::create(backend).await?;
        let store = crate::open(&db.url, true)
            .await
            .expect("open and migrate test database");
        Some((db, store))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::File(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Cleanup::Database { admin_url, name } => {
                let (admin_url, name) = (admin_url.clone(), name.clone());
                // Drop runs inside the test's runtime; use a thread with its own.
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("runtime");
                    rt.block_on(async move {
                        if let Ok(mut c) = sqlx::PgConnection::connect(&admin_url).await {
                            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            )))
                            .execute(&mut c)
                            .await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

/// Runs a test body once per backend. Use as
/// `#[tokio::test] async fn x() { on_both(|store| async move { … }).await }`.
pub async fn on_both<F, Fut>(test: F)
where
    F: Fn(Arc<dyn Store>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for backend in [Backend::Sqlite, Backend::Postgres] {
        if let Some((_db, store)) = TestDb::store(backend).await {
            test(store).await;
        }
    }
}
