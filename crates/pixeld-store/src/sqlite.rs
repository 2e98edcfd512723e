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
ledger_impl!(SqliteStore, sqlx::Sqlite, SqliteRow);

/// Writes ledger entries in one statement unless a business key exists; `false` (and the
/// caller rolls back) when any did.
async fn insert_entries(
    c: &mut sqlx::SqliteConnection,
    es: &[pixeld_core::ledger::LedgerEntry],
) -> pixeld_core::store::StoreResult<bool> {
    if es.is_empty() {
        return Ok(true);
    }
    let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
        "INSERT INTO credit_entries (id, org_id, kind, amount, balance_after, business_key, \
         source, reason, actor_id, token_id, reservation_id, lot_id, expires_at, created_at) ",
    );
    q.push_values(es, |mut b, e| {
        b.push_bind(e.id)
            .push_bind(e.org_id)
            .push_bind(e.kind.as_str())
            .push_bind(e.amount)
            .push_bind(e.balance_after)
            .push_bind(e.business_key.clone())
            .push_bind(e.source.clone())
            .push_bind(e.reason.clone())
            .push_bind(e.actor_id)
            .push_bind(e.token_id)
            .push_bind(e.reservation_id)
            .push_bind(e.lot_id)
            .push_bind(e.expires_at.map(ts))
            .push_bind(ts(e.created_at));
    });
    q.push(" ON CONFLICT (org_id, business_key) DO NOTHING");
    let r = q
        .build()
        .execute(&mut *c)
        .await
        .map_err(crate::backend_error)?;
    Ok(r.rows_affected() == es.len() as u64)
}

impl SqliteStore {
    /// A ledger group (see `crate::group`) in one transaction, statement by statement (on
    /// SQLite a statement is a function call, not a round trip): one statement locks the
    /// balance rows of their organisations, then multi-row statements write settles (those
    /// that give nothing back, first) and the holds the balances cover (see
    /// [`crate::group::plan_holds`]), then one commit. What a group does not take is left
    /// [`crate::group::Outcome::Alone`]; a replayed key rolls the whole group back and leaves
    /// it.
    async fn group_tx(
        &self,
        ops: &[crate::group::Op],
    ) -> pixeld_core::store::StoreResult<Vec<crate::group::Outcome>> {
        use crate::backend_error as be;
        use crate::group::Outcome;
        use pixeld_core::ledger::{Finished, Lot};
        use std::collections::BTreeMap;
        let all_alone = || ops.iter().map(|_| Outcome::Alone).collect::<Vec<_>>();
        let latest = crate::group::latest(ops);
        let orgs = crate::group::orgs(ops);
        let mut out = all_alone();
        let mut tx = self.pool.begin().await.map_err(be)?;

        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "UPDATE credit_balances SET updated_at = updated_at WHERE org_id IN (",
        );
        let mut ids = q.separated(", ");
        for org in &orgs {
            ids.push_bind(*org);
        }
        q.push(") RETURNING org_id, balance, next_expiry");
        let mut balances = crate::group::Balances::new();
        for row in q.build().fetch_all(&mut *tx).await.map_err(be)? {
            let org: uuid::Uuid = row.try_get("org_id").map_err(be)?;
            let balance: i64 = row.try_get("balance").map_err(be)?;
            let due = read_ts_opt(&row, "next_expiry")
                .map_err(be)?
                .is_some_and(|d| d <= latest);
            if !due {
                balances.insert(org, (balance, balance));
            }
        }
        if balances.is_empty() {
            return Ok(out);
        }
        let mut written = 0;

        // Settles: one guarded UPDATE (the state change is the guard, as on the
        // one-at-a-time path), then one INSERT of their entries.
        let settles = crate::group::plan_settles(ops, &balances);
        if !settles.is_empty() {
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "UPDATE credit_reservations SET state = 'settled', cost = amount, finished_at = CASE id",
            );
            for s in &settles {
                q.push(" WHEN ")
                    .push_bind(s.rid)
                    .push(" THEN ")
                    .push_bind(ts(s.at));
            }
            q.push(" END WHERE state = 'held' AND amount <= CASE id");
            for s in &settles {
                q.push(" WHEN ")
                    .push_bind(s.rid)
                    .push(" THEN ")
                    .push_bind(s.cost);
            }
            q.push(" END AND (org_id, id) IN (");
            let mut pairs = q.separated(", ");
            for s in &settles {
                pairs
                    .push("(")
                    .push_bind_unseparated(s.org)
                    .push_unseparated(", ")
                    .push_bind_unseparated(s.rid)
                    .push_unseparated(")");
            }
            q.push(") RETURNING id, op, token_id");
            let rows = q.build().fetch_all(&mut *tx).await.map_err(be)?;
            let mut entries = Vec::new();
            for row in &rows {
                let id: uuid::Uuid = row.try_get("id").map_err(be)?;
                let Some(s) = settles.iter().find(|s| s.rid == id) else {
                    continue;
                };
                let mut entry = s.entry.clone();
                entry.source = Some(row.try_get("op").map_err(be)?);
                entry.token_id = entry.token_id.or(row.try_get("token_id").map_err(be)?);
                out[s.i] = Outcome::Settled(Finished::New(entry.clone()));
                entries.push(entry);
            }
            if !insert_entries(&mut tx, &entries).await? {
                return Ok(all_alone());
            }
            written += entries.len();
        }

        // Holds the balances cover, drawing on lots soonest expiry first.
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "SELECT org_id, id, remaining, expires_at, created_at FROM credit_lots WHERE remaining > 0 AND org_id IN (",
        );
        let mut ids = q.separated(", ");
        for org in balances.keys() {
            ids.push_bind(*org);
        }
        q.push(")");
        let mut lots: BTreeMap<uuid::Uuid, Vec<Lot>> = BTreeMap::new();
        for r in q.build().fetch_all(&mut *tx).await.map_err(be)? {
            let lot = Lot {
                id: r.try_get("id").map_err(be)?,
                remaining: r.try_get("remaining").map_err(be)?,
                expires_at: read_ts_opt(&r, "expires_at").map_err(be)?,
                created_at: read_ts(&r, "created_at").map_err(be)?,
            };
            lots.entry(r.try_get("org_id").map_err(be)?)
                .or_default()
                .push(lot);
        }
        let plan = crate::group::plan_holds(ops, &mut balances, &mut lots)?;
        if !plan.held.is_empty() {
            if !insert_entries(&mut tx, &plan.entries).await? {
                return Ok(all_alone());
            }
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO credit_reservations (id, org_id, op, amount, cost, state, token_id, expires_at, created_at, finished_at) ",
            );
            q.push_values(&plan.held, |mut b, (_, r)| {
                b.push_bind(r.id)
                    .push_bind(r.org_id)
                    .push_bind(r.op.clone())
                    .push_bind(r.amount)
                    .push("NULL")
                    .push("'held'")
                    .push_bind(r.token_id)
                    .push_bind(ts(r.expires_at))
                    .push_bind(ts(r.created_at))
                    .push("NULL");
            });
            q.build().execute(&mut *tx).await.map_err(be)?;
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "UPDATE credit_lots SET remaining = remaining - CASE id",
            );
            for (lot, take) in &plan.lots {
                q.push(" WHEN ")
                    .push_bind(*lot)
                    .push(" THEN ")
                    .push_bind(*take);
            }
            q.push(" ELSE 0 END WHERE id IN (");
            let mut ids = q.separated(", ");
            for (lot, _) in &plan.lots {
                ids.push_bind(*lot);
            }
            q.push(")");
            q.build().execute(&mut *tx).await.map_err(be)?;
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO credit_allocations (reservation_id, seq, lot_id, amount) ",
            );
            q.push_values(&plan.allocations, |mut b, (rid, seq, lot, take)| {
                b.push_bind(*rid)
                    .push_bind(*seq)
                    .push_bind(*lot)
                    .push_bind(*take);
            });
            q.build().execute(&mut *tx).await.map_err(be)?;
            // The CHECK keeps each balance at zero or above.
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "UPDATE credit_balances SET balance = balance + CASE org_id",
            );
            for (org, delta) in &plan.moved {
                q.push(" WHEN ")
                    .push_bind(*org)
                    .push(" THEN ")
                    .push_bind(*delta);
            }
            q.push(" ELSE 0 END WHERE org_id IN (");
            let mut ids = q.separated(", ");
            for (org, _) in &plan.moved {
                ids.push_bind(*org);
            }
            q.push(")");
            let r = q.build().execute(&mut *tx).await.map_err(be)?;
            if r.rows_affected() != plan.moved.len() as u64 {
                return Err(pixeld_core::store::StoreError::Backend(
                    "ledger: a locked balance row vanished".into(),
                ));
            }
            written += plan.held.len();
            for (i, r) in &plan.held {
                out[*i] = crate::group::held_outcome(r);
            }
        }
        tx.commit().await.map_err(be)?;
        if written > 0 {
            self.groups.count(written);
        }
        Ok(out)
    }
}

privacy_impl!(SqliteStore, sqlx::Sqlite, SqliteRow);
support_impl!(SqliteStore, sqlx::Sqlite, SqliteRow);
