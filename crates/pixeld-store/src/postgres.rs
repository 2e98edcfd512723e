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

impl PgStore {
    /// A ledger group (see `crate::group`) in four round trips, however many requests it
    /// holds: `BEGIN`; one statement that locks the balance rows in org order and reads their
    /// lots; one statement whose data-modifying `WITH` parts write every settle, entry,
    /// reservation, lot, allocation and balance; `COMMIT`. Round trips, not rows, are what a
    /// group's time goes to on PostgreSQL.
    async fn group_tx(
        &self,
        ops: &[crate::group::Op],
    ) -> pixeld_core::store::StoreResult<Vec<crate::group::Outcome>> {
        use std::collections::BTreeMap;

        use crate::backend_error as be;
        use crate::group::Outcome;
        use pixeld_core::ledger::{Finished, Lot};
        use sqlx::QueryBuilder;

        let all_alone = || ops.iter().map(|_| Outcome::Alone).collect::<Vec<_>>();
        let latest = crate::group::latest(ops);
        let mut out = all_alone();
        let mut tx = self.pool.begin().await.map_err(be)?;

        let mut q = QueryBuilder::<sqlx::Postgres>::new(
            "SELECT b.org_id, b.balance, b.next_expiry, l.id AS lot_id, l.remaining, l.expires_at, \
             l.created_at FROM credit_balances b \
             LEFT JOIN credit_lots l ON l.org_id = b.org_id AND l.remaining > 0 \
             WHERE b.org_id IN (",
        );
        let mut ids = q.separated(", ");
        for org in crate::group::orgs(ops) {
            ids.push_bind(org);
        }
        q.push(") ORDER BY b.org_id FOR UPDATE OF b");
        let mut balances = crate::group::Balances::new();
        let mut lots: BTreeMap<uuid::Uuid, Vec<Lot>> = BTreeMap::new();
        for row in q.build().fetch_all(&mut *tx).await.map_err(be)? {
            let org: uuid::Uuid = row.try_get("org_id").map_err(be)?;
            let due = read_ts_opt(&row, "next_expiry")
                .map_err(be)?
                .is_some_and(|d| d <= latest);
            if due {
                continue;
            }
            let balance: i64 = row.try_get("balance").map_err(be)?;
            balances.insert(org, (balance, balance));
            if let Some(id) = row.try_get::<Option<uuid::Uuid>, _>("lot_id").map_err(be)? {
                lots.entry(org).or_default().push(Lot {
                    id,
                    remaining: row.try_get("remaining").map_err(be)?,
                    expires_at: read_ts_opt(&row, "expires_at").map_err(be)?,
                    created_at: read_ts(&row, "created_at").map_err(be)?,
                });
            }
        }
        let settles = crate::group::plan_settles(ops, &balances);
        let plan = crate::group::plan_holds(ops, &mut balances, &mut lots)?;
        if settles.is_empty() && plan.held.is_empty() {
            return Ok(out);
        }

        let mut q = QueryBuilder::<sqlx::Postgres>::new("WITH ");
        if !settles.is_empty() {
            // Only whole settles (cost ≥ amount held): nothing goes back to lots.
            q.push(
                "s AS (UPDATE credit_reservations r SET state = 'settled', cost = r.amount, \
                 finished_at = v.at FROM (",
            );
            q.push_values(&settles, |mut b, s| {
                b.push_bind(s.org)
                    .push_bind(s.rid)
                    .push_bind(s.cost)
                    .push_bind(s.at);
            });
            q.push(
                ") AS v(org_id, id, cost, at) WHERE r.org_id = v.org_id AND r.id = v.id \
                 AND r.state = 'held' AND r.amount <= v.cost RETURNING r.id, r.op, r.token_id), \
                 se AS (INSERT INTO credit_entries (id, org_id, kind, amount, balance_after, \
                 business_key, source, reason, actor_id, token_id, reservation_id, lot_id, \
                 expires_at, created_at) SELECT w.id, w.org_id, w.kind, w.amount, w.balance_after, \
                 w.business_key, s.op, w.reason, w.actor_id, COALESCE(w.token_id, s.token_id), \
                 s.id, w.lot_id, w.expires_at, w.created_at FROM s JOIN (",
            );
            q.push_values(&settles, |mut b, s| {
                let e = &s.entry;
                b.push_bind(s.rid)
                    .push_bind(e.id)
                    .push_bind(e.org_id)
                    .push_bind(e.kind.as_str())
                    .push_bind(e.amount)
                    .push_bind(e.balance_after)
                    .push_bind(e.business_key.clone())
                    .push_bind(e.reason.clone())
                    .push_bind(e.actor_id)
                    .push_bind(e.token_id)
                    .push_bind(e.lot_id)
                    .push_bind(e.expires_at)
                    .push_bind(e.created_at);
            });
            q.push(
                ") AS w(rid, id, org_id, kind, amount, balance_after, business_key, reason, \
                 actor_id, token_id, lot_id, expires_at, created_at) ON w.rid = s.id \
                 ON CONFLICT (org_id, business_key) DO NOTHING RETURNING 1)",
            );
        }
        if !plan.held.is_empty() {
            if !settles.is_empty() {
                q.push(", ");
            }
            q.push(
                "re AS (INSERT INTO credit_entries (id, org_id, kind, amount, balance_after, \
                 business_key, source, reason, actor_id, token_id, reservation_id, lot_id, \
                 expires_at, created_at) ",
            );
            q.push_values(&plan.entries, |mut b, e| {
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
                    .push_bind(e.expires_at)
                    .push_bind(e.created_at);
            });
            q.push(
                " ON CONFLICT (org_id, business_key) DO NOTHING RETURNING 1), \
                 rr AS (INSERT INTO credit_reservations (id, org_id, op, amount, cost, state, \
                 token_id, expires_at, created_at, finished_at) ",
            );
            q.push_values(&plan.held, |mut b, (_, r)| {
                b.push_bind(r.id)
                    .push_bind(r.org_id)
                    .push_bind(r.op.clone())
                    .push_bind(r.amount)
                    .push("NULL")
                    .push("'held'")
                    .push_bind(r.token_id)
                    .push_bind(r.expires_at)
                    .push_bind(r.created_at)
                    .push("NULL");
            });
            q.push("), lo AS (UPDATE credit_lots c SET remaining = c.remaining - v.take FROM (");
            q.push_values(&plan.lots, |mut b, (lot, take)| {
                b.push_bind(*lot).push_bind(*take);
            });
            q.push(
                ") AS v(id, take) WHERE c.id = v.id), \
                 al AS (INSERT INTO credit_allocations (reservation_id, seq, lot_id, amount) ",
            );
            q.push_values(&plan.allocations, |mut b, (rid, seq, lot, take)| {
                b.push_bind(*rid)
                    .push_bind(*seq)
                    .push_bind(*lot)
                    .push_bind(*take);
            });
            // The CHECK keeps each balance at zero or above.
            q.push("), ba AS (UPDATE credit_balances c SET balance = c.balance + v.delta FROM (");
            q.push_values(&plan.moved, |mut b, (org, delta)| {
                b.push_bind(*org).push_bind(*delta);
            });
            q.push(") AS v(org_id, delta) WHERE c.org_id = v.org_id RETURNING 1)");
        }
        q.push(" SELECT ");
        q.push(if settles.is_empty() {
            "NULL::uuid[] AS ids, NULL::text[] AS ops, NULL::uuid[] AS tokens, 0::bigint AS se_n"
        } else {
            "(SELECT array_agg(id ORDER BY id) FROM s) AS ids, \
             (SELECT array_agg(op ORDER BY id) FROM s) AS ops, \
             (SELECT array_agg(token_id ORDER BY id) FROM s) AS tokens, \
             (SELECT count(*) FROM se) AS se_n"
        });
        q.push(if plan.held.is_empty() {
            ", 0::bigint AS re_n, 0::bigint AS ba_n"
        } else {
            ", (SELECT count(*) FROM re) AS re_n, (SELECT count(*) FROM ba) AS ba_n"
        });
        let row = q.build().fetch_one(&mut *tx).await.map_err(be)?;
        let ids: Vec<uuid::Uuid> = row
            .try_get::<Option<Vec<uuid::Uuid>>, _>("ids")
            .map_err(be)?
            .unwrap_or_default();
        let sources: Vec<String> = row
            .try_get::<Option<Vec<String>>, _>("ops")
            .map_err(be)?
            .unwrap_or_default();
        let tokens: Vec<Option<uuid::Uuid>> = row
            .try_get::<Option<Vec<Option<uuid::Uuid>>>, _>("tokens")
            .map_err(be)?
            .unwrap_or_default();
        let (se_n, re_n, ba_n): (i64, i64, i64) = (
            row.try_get("se_n").map_err(be)?,
            row.try_get("re_n").map_err(be)?,
            row.try_get("ba_n").map_err(be)?,
        );
        if se_n as usize != ids.len()
            || re_n as usize != plan.entries.len()
            || ba_n as usize != plan.moved.len()
        {
            // A replayed key (or a balance row gone): roll back, answer one at a time.
            return Ok(all_alone());
        }
        for ((id, source), token) in ids.iter().zip(sources).zip(tokens) {
            let Some(s) = settles.iter().find(|s| s.rid == *id) else {
                continue;
            };
            let mut entry = s.entry.clone();
            entry.source = Some(source);
            entry.token_id = entry.token_id.or(token);
            out[s.i] = Outcome::Settled(Finished::New(entry));
        }
        for (i, r) in &plan.held {
            out[*i] = crate::group::held_outcome(r);
        }
        tx.commit().await.map_err(be)?;
        self.groups.count(ids.len() + plan.held.len());
        Ok(out)
    }
}

store_impl!(
    PgStore,
    sqlx::Postgres,
    PgRow,
    "postgres",
    " FOR UPDATE SKIP LOCKED"
);
ledger_impl!(PgStore, sqlx::Postgres, PgRow);
privacy_impl!(PgStore, sqlx::Postgres, PgRow);
support_impl!(PgStore, sqlx::Postgres, PgRow);
