//! The credit ledger on both backends: each write is one transaction that starts by writing the
//! organisation's balance row, so writers of one organisation queue behind each other (a row
//! lock on PostgreSQL, the write lock on SQLite) and everything they read is current. The
//! business-key index makes a retried write a no-op that finds the first one.
//!
//! Holds and settles, the two writes of every metered request, go through the group commit
//! (`crate::group`): concurrent ones share one transaction, which locks all their balance rows
//! first. Everything else, and whatever a group cannot take, is one write per transaction.

macro_rules! entry_cols {
    () => {
        "id, org_id, kind, amount, balance_after, business_key, source, reason, actor_id, token_id, \
         reservation_id, lot_id, expires_at, created_at"
    };
}
macro_rules! reservation_cols {
    () => {
        "id, org_id, op, amount, cost, state, token_id, expires_at, created_at, finished_at"
    };
}

macro_rules! ledger_impl {
    ($store:ty, $db:ty, $row:ty) => {
        mod ledger_sql {
            use super::*;
            use pixeld_core::ledger::*;
            use pixeld_core::store::{StoreError, StoreResult};
            use uuid::Uuid;

            pub(super) type Conn = <$db as sqlx::Database>::Connection;

            fn be(e: sqlx::Error) -> StoreError {
                crate::backend_error(e)
            }

            pub(super) fn entry(r: &$row) -> Result<LedgerEntry, sqlx::Error> {
                let kind: String = r.try_get("kind")?;
                Ok(LedgerEntry {
                    id: r.try_get("id")?,
                    org_id: r.try_get("org_id")?,
                    kind: kind
                        .parse()
                        .map_err(|_| sqlx::Error::Decode(format!("unknown entry kind `{kind}`").into()))?,
                    amount: r.try_get("amount")?,
                    balance_after: r.try_get("balance_after")?,
                    business_key: r.try_get("business_key")?,
                    source: r.try_get("source")?,
                    reason: r.try_get("reason")?,
                    actor_id: r.try_get("actor_id")?,
                    token_id: r.try_get("token_id")?,
                    reservation_id: r.try_get("reservation_id")?,
                    lot_id: r.try_get("lot_id")?,
                    expires_at: read_ts_opt(r, "expires_at")?,
                    created_at: read_ts(r, "created_at")?,
                })
            }

            pub(super) fn reservation(r: &$row) -> Result<Reservation, sqlx::Error> {
                let state: String = r.try_get("state")?;
                Ok(Reservation {
                    id: r.try_get("id")?,
                    org_id: r.try_get("org_id")?,
                    op: r.try_get("op")?,
                    amount: r.try_get("amount")?,
                    cost: r.try_get("cost")?,
                    state: ReservationState::parse(&state)
                        .ok_or_else(|| sqlx::Error::Decode(format!("unknown reservation state `{state}`").into()))?,
                    token_id: r.try_get("token_id")?,
                    expires_at: read_ts(r, "expires_at")?,
                    created_at: read_ts(r, "created_at")?,
                    finished_at: read_ts_opt(r, "finished_at")?,
                })
            }

            /// Takes the organisation's ledger lock and reads its balance and the soonest lot
            /// expiry; `None` when it never had credits.
            pub(super) async fn lock_raw(c: &mut Conn, org: Uuid, now: time::OffsetDateTime) -> StoreResult<Option<(i64, Option<time::OffsetDateTime>)>> {
                let row = sqlx::query("UPDATE credit_balances SET updated_at = $1 WHERE org_id = $2 RETURNING balance, next_expiry")
                    .bind(ts(now)).bind(org)
                    .fetch_optional(&mut *c).await.map_err(be)?;
                row.map(|r| Ok((r.try_get::<i64, _>("balance")?, read_ts_opt(&r, "next_expiry")?)))
                    .transpose()
                    .map_err(be)
            }

            /// Takes the lock and reads the balance, without expiring anything (finishing a
            /// reservation only returns credits; a lot due meanwhile expires on the next debit).
            pub(super) async fn lock(c: &mut Conn, org: Uuid, now: time::OffsetDateTime) -> StoreResult<Option<i64>> {
                Ok(lock_raw(c, org, now).await?.map(|(b, _)| b))
            }

            /// Takes the lock and returns the balance after expiring lots due by `now`.
            pub(super) async fn lock_current(c: &mut Conn, org: Uuid, now: time::OffsetDateTime) -> StoreResult<Option<(i64, u64)>> {
                match lock_raw(c, org, now).await? {
                    None => Ok(None),
                    Some((balance, Some(due))) if due <= now => expire_due(c, org, balance, now).await.map(Some),
                    Some((balance, _)) => Ok(Some((balance, 0))),
                }
            }

            /// Like [`lock`], creating the row at zero for an organisation's first credits.
            pub(super) async fn lock_or_open(c: &mut Conn, org: Uuid, now: time::OffsetDateTime) -> StoreResult<i64> {
                let row = sqlx::query(
                    "INSERT INTO credit_balances (org_id, balance, updated_at) VALUES ($1, 0, $2) \
                     ON CONFLICT (org_id) DO UPDATE SET updated_at = excluded.updated_at RETURNING balance",
                )
                .bind(org).bind(ts(now))
                .fetch_one(&mut *c).await.map_err(be)?;
                row.try_get::<i64, _>("balance").map_err(be)
            }

            /// Moves the balance by `delta`; the condition (and the CHECK) keep it at zero or above.
            pub(super) async fn move_balance(c: &mut Conn, org: Uuid, delta: i64) -> StoreResult<()> {
                let r = sqlx::query("UPDATE credit_balances SET balance = balance + $1 WHERE org_id = $2 AND balance + $1 >= 0")
                    .bind(delta).bind(org)
                    .execute(&mut *c).await.map_err(be)?;
                if r.rows_affected() == 1 {
                    Ok(())
                } else {
                    Err(StoreError::Backend(format!("ledger: balance of {org} would go below zero")))
                }
            }

            /// Writes an entry unless its business key exists; `false` when it did.
            pub(super) async fn insert_entry(c: &mut Conn, e: &LedgerEntry) -> StoreResult<bool> {
                let r = sqlx::query(concat!(
                    "INSERT INTO credit_entries (", entry_cols!(), ") \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
                     ON CONFLICT (org_id, business_key) DO NOTHING"))
                    .bind(e.id).bind(e.org_id).bind(e.kind.as_str()).bind(e.amount).bind(e.balance_after)
                    .bind(&e.business_key).bind(&e.source).bind(&e.reason).bind(e.actor_id).bind(e.token_id)
                    .bind(e.reservation_id).bind(e.lot_id).bind(e.expires_at.map(ts)).bind(ts(e.created_at))
                    .execute(&mut *c).await.map_err(be)?;
                Ok(r.rows_affected() == 1)
            }

            pub(super) async fn entry_by_key<'e, E>(x: E, org: Uuid, key: &str) -> StoreResult<Option<LedgerEntry>>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let row = sqlx::query(concat!("SELECT ", entry_cols!(), " FROM credit_entries WHERE org_id = $1 AND business_key = $2"))
                    .bind(org).bind(key)
                    .fetch_optional(x).await.map_err(be)?;
                row.as_ref().map(entry).transpose().map_err(be)
            }

            pub(super) async fn reservation_by_id<'e, E>(x: E, org: Uuid, id: Uuid) -> StoreResult<Option<Reservation>>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let row = sqlx::query(concat!("SELECT ", reservation_cols!(), " FROM credit_reservations WHERE org_id = $1 AND id = $2"))
                    .bind(org).bind(id)
                    .fetch_optional(x).await.map_err(be)?;
                row.as_ref().map(reservation).transpose().map_err(be)
            }

            /// Empties the organisation's lots that are due by `now`, writing one `expire` entry
            /// per lot that still held credits. Returns the balance after.
            pub(super) async fn expire_due(c: &mut Conn, org: Uuid, mut balance: i64, now: time::OffsetDateTime) -> StoreResult<(i64, u64)> {
                let due = sqlx::query(
                    "SELECT id, remaining FROM credit_lots WHERE org_id = $1 AND expired_at IS NULL AND expires_at <= $2",
                )
                .bind(org).bind(ts(now))
                .fetch_all(&mut *c).await.map_err(be)?;
                let mut expired = 0;
                let start = balance;
                for row in &due {
                    let lot: Uuid = row.try_get("id").map_err(be)?;
                    let remaining: i64 = row.try_get("remaining").map_err(be)?;
                    sqlx::query("UPDATE credit_lots SET remaining = 0, expired_at = $1 WHERE id = $2")
                        .bind(ts(now)).bind(lot)
                        .execute(&mut *c).await.map_err(be)?;
                    expired += 1;
                    if remaining > 0 {
                        balance -= remaining;
                        let mut e = LedgerEntry::new(org, EntryKind::Expire, format!("expire:{lot}"), now);
                        e.amount = -remaining;
                        e.balance_after = balance;
                        e.lot_id = Some(lot);
                        insert_entry(c, &e).await?;
                    }
                }
                if balance != start {
                    move_balance(c, org, balance - start).await?;
                }
                sqlx::query("UPDATE credit_balances SET next_expiry = (SELECT MIN(expires_at) FROM credit_lots \
                             WHERE org_id = $1 AND expired_at IS NULL AND expires_at IS NOT NULL) WHERE org_id = $1")
                    .bind(org)
                    .execute(&mut *c).await.map_err(be)?;
                Ok((balance, expired))
            }

            /// Takes `amount` from the organisation's live lots, soonest expiry first.
            pub(super) async fn draw_lots(c: &mut Conn, org: Uuid, amount: i64) -> StoreResult<Vec<(Uuid, i64)>> {
                let rows = sqlx::query(
                    "SELECT id, remaining, expires_at, created_at FROM credit_lots WHERE org_id = $1 AND remaining > 0",
                )
                .bind(org)
                .fetch_all(&mut *c).await.map_err(be)?;
                let lots = rows
                    .iter()
                    .map(|r| {
                        Ok(Lot {
                            id: r.try_get("id")?,
                            remaining: r.try_get("remaining")?,
                            expires_at: read_ts_opt(r, "expires_at")?,
                            created_at: read_ts(r, "created_at")?,
                        })
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()
                    .map_err(be)?;
                let taken = draw(&lots, amount);
                if taken.is_empty() && amount > 0 {
                    return Err(StoreError::Backend(format!(
                        "ledger: the lots of {org} hold less than its balance says"
                    )));
                }
                for (lot, take) in &taken {
                    sqlx::query("UPDATE credit_lots SET remaining = remaining - $1 WHERE id = $2")
                        .bind(*take).bind(*lot)
                        .execute(&mut *c).await.map_err(be)?;
                }
                Ok(taken)
            }
        }

        impl $store {
            async fn ledger_credit_tx(&self, e: &pixeld_core::ledger::LedgerEntry) -> pixeld_core::store::StoreResult<pixeld_core::ledger::Applied<pixeld_core::ledger::LedgerEntry>> {
                use pixeld_core::ledger::Applied;
                if e.amount <= 0 {
                    return Err(pixeld_core::store::StoreError::Backend("ledger: a credit must be positive".into()));
                }
                if let Some(first) = ledger_sql::entry_by_key(&self.pool, e.org_id, &e.business_key).await? {
                    return Ok(Applied::Replayed(first));
                }
                let mut tx = self.pool.begin().await.map_err(crate::backend_error)?;
                let balance = ledger_sql::lock_or_open(&mut *tx, e.org_id, e.created_at).await?;
                let mut e = e.clone();
                // Made under the lock, so ids list in the order the balance changed.
                e.id = uuid::Uuid::now_v7();
                e.balance_after = balance + e.amount;
                e.lot_id = Some(e.id);
                if !ledger_sql::insert_entry(&mut *tx, &e).await? {
                    drop(tx);
                    return self.replayed_entry(e.org_id, &e.business_key).await.map(Applied::Replayed);
                }
                sqlx::query("INSERT INTO credit_lots (id, org_id, granted, remaining, expires_at, expired_at, created_at) \
                             VALUES ($1, $2, $3, $3, $4, NULL, $5)")
                    .bind(e.id).bind(e.org_id).bind(e.amount).bind(e.expires_at.map(ts)).bind(ts(e.created_at))
                    .execute(&mut *tx).await.map_err(crate::backend_error)?;
                sqlx::query("UPDATE credit_balances SET balance = balance + $1, \
                             next_expiry = CASE WHEN $2 IS NULL THEN next_expiry \
                                                WHEN next_expiry IS NULL OR next_expiry > $2 THEN $2 ELSE next_expiry END \
                             WHERE org_id = $3")
                    .bind(e.amount).bind(e.expires_at.map(ts)).bind(e.org_id)
                    .execute(&mut *tx).await.map_err(crate::backend_error)?;
                tx.commit().await.map_err(crate::backend_error)?;
                Ok(Applied::New(e))
            }

            async fn ledger_debit_tx(&self, e: &pixeld_core::ledger::LedgerEntry, now: time::OffsetDateTime) -> pixeld_core::store::StoreResult<pixeld_core::ledger::Debit<pixeld_core::ledger::LedgerEntry>> {
                use pixeld_core::ledger::{Applied, Debit};
                if e.amount >= 0 {
                    return Err(pixeld_core::store::StoreError::Backend("ledger: a debit must be negative".into()));
                }
                if let Some(first) = ledger_sql::entry_by_key(&self.pool, e.org_id, &e.business_key).await? {
                    return Ok(Debit::Done(Applied::Replayed(first)));
                }
                let mut tx = self.pool.begin().await.map_err(crate::backend_error)?;
                let Some((balance, _)) = ledger_sql::lock_current(&mut *tx, e.org_id, now).await? else {
                    return Ok(Debit::Insufficient { balance: 0 });
                };
                if balance + e.amount < 0 {
                    tx.commit().await.map_err(crate::backend_error)?;
                    return Ok(Debit::Insufficient { balance });
                }
                let mut e = e.clone();
                // Made under the lock, so ids list in the order the balance changed.
                e.id = uuid::Uuid::now_v7();
                e.balance_after = balance + e.amount;
                if !ledger_sql::insert_entry(&mut *tx, &e).await? {
                    drop(tx);
                    return self.replayed_entry(e.org_id, &e.business_key).await.map(|f| Debit::Done(Applied::Replayed(f)));
                }
                ledger_sql::draw_lots(&mut *tx, e.org_id, -e.amount).await?;
                ledger_sql::move_balance(&mut *tx, e.org_id, e.amount).await?;
                tx.commit().await.map_err(crate::backend_error)?;
                Ok(Debit::Done(Applied::New(e)))
            }

            async fn ledger_reserve_tx(
                &self,
                r: &pixeld_core::ledger::Reservation,
                e: &pixeld_core::ledger::LedgerEntry,
                now: time::OffsetDateTime,
            ) -> pixeld_core::store::StoreResult<pixeld_core::ledger::Debit<pixeld_core::ledger::Reservation>> {
                use pixeld_core::ledger::{Applied, Debit};
                if r.amount <= 0 || r.org_id != e.org_id {
                    return Err(pixeld_core::store::StoreError::Backend("ledger: a reservation holds a positive amount of its own org".into()));
                }
                let mut tx = self.pool.begin().await.map_err(crate::backend_error)?;
                // The common case in one statement: the balance covers it and no lot is due to
                // expire. It takes the lock and debits at once.
                let fast = sqlx::query("UPDATE credit_balances SET balance = balance - $1, updated_at = $2 \
                                        WHERE org_id = $3 AND balance >= $1 AND (next_expiry IS NULL OR next_expiry > $2) \
                                        RETURNING balance")
                    .bind(r.amount).bind(ts(now)).bind(r.org_id)
                    .fetch_optional(&mut *tx).await.map_err(crate::backend_error)?;
                let after = match fast {
                    Some(row) => row.try_get::<i64, _>("balance").map_err(crate::backend_error)?,
                    None => {
                        // Give the lock back before using another connection: with every pooled
                        // connection waiting on this lock, holding it here would deadlock.
                        drop(tx);
                        if let Some(first) = self.replayed_reservation(e.org_id, &e.business_key).await? {
                            return Ok(Debit::Done(Applied::Replayed(first)));
                        }
                        tx = self.pool.begin().await.map_err(crate::backend_error)?;
                        let Some((balance, _)) = ledger_sql::lock_current(&mut *tx, r.org_id, now).await? else {
                            return Ok(Debit::Insufficient { balance: 0 });
                        };
                        if balance < r.amount {
                            // Keep what expired; refuse the hold.
                            tx.commit().await.map_err(crate::backend_error)?;
                            return Ok(Debit::Insufficient { balance });
                        }
                        ledger_sql::move_balance(&mut *tx, r.org_id, -r.amount).await?;
                        balance - r.amount
                    }
                };
                let mut e = e.clone();
                // Made under the lock, so ids list in the order the balance changed.
                e.id = uuid::Uuid::now_v7();
                e.amount = -r.amount;
                e.balance_after = after;
                e.reservation_id = Some(r.id);
                e.source = Some(r.op.clone());
                e.token_id = r.token_id;
                if !ledger_sql::insert_entry(&mut *tx, &e).await? {
                    drop(tx);
                    return match self.replayed_reservation(e.org_id, &e.business_key).await? {
                        Some(first) => Ok(Debit::Done(Applied::Replayed(first))),
                        None => Err(pixeld_core::store::StoreError::Conflict(format!(
                            "business key {} is used by an entry that is not a reservation", e.business_key
                        ))),
                    };
                }
                sqlx::query(concat!("INSERT INTO credit_reservations (", reservation_cols!(), ") \
                                     VALUES ($1, $2, $3, $4, NULL, 'held', $5, $6, $7, NULL)"))
                    .bind(r.id).bind(r.org_id).bind(&r.op).bind(r.amount).bind(r.token_id)
                    .bind(ts(r.expires_at)).bind(ts(r.created_at))
                    .execute(&mut *tx).await.map_err(crate::backend_error)?;
                let taken = ledger_sql::draw_lots(&mut *tx, r.org_id, r.amount).await?;
                for (seq, (lot, take)) in taken.iter().enumerate() {
                    sqlx::query("INSERT INTO credit_allocations (reservation_id, seq, lot_id, amount) VALUES ($1, $2, $3, $4)")
                        .bind(r.id).bind(seq as i32).bind(*lot).bind(*take)
                        .execute(&mut *tx).await.map_err(crate::backend_error)?;
                }
                tx.commit().await.map_err(crate::backend_error)?;
                let mut held = r.clone();
                held.state = pixeld_core::ledger::ReservationState::Held;
                held.cost = None;
                held.finished_at = None;
                Ok(Debit::Done(Applied::New(held)))
            }

            async fn ledger_finish_tx(
                &self,
                org: uuid::Uuid,
                rid: uuid::Uuid,
                how: pixeld_core::ledger::Finish,
                e: &pixeld_core::ledger::LedgerEntry,
                now: time::OffsetDateTime,
            ) -> pixeld_core::store::StoreResult<pixeld_core::ledger::Finished> {
                use pixeld_core::ledger::{EntryKind, Finish, Finished, LedgerEntry, ReservationState};
                let mut tx = self.pool.begin().await.map_err(crate::backend_error)?;
                let Some(balance) = ledger_sql::lock(&mut *tx, org, now).await? else {
                    return Ok(Finished::NotFound);
                };
                let from = match how {
                    Finish::Settle { .. } | Finish::Release => ReservationState::Held,
                    Finish::Refund => ReservationState::Settled,
                };
                // The state change is the guard: of two concurrent finishes one changes a row.
                let set = match how {
                    Finish::Settle { .. } => "state = 'settled', cost = CASE WHEN $1 > amount THEN amount ELSE $1 END",
                    Finish::Release => "state = 'released', cost = $1",
                    Finish::Refund => "state = 'refunded', cost = COALESCE(cost, $1)",
                };
                let cost_param = match how {
                    Finish::Settle { cost } => cost.max(0),
                    _ => 0,
                };
                let changed = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE credit_reservations SET {set}, finished_at = $2 \
                     WHERE org_id = $3 AND id = $4 AND state = $5 RETURNING amount, cost, op, token_id"
                )))
                .bind(cost_param).bind(ts(now)).bind(org).bind(rid).bind(from.as_str())
                .fetch_optional(&mut *tx).await.map_err(crate::backend_error)?;
                let Some(changed) = changed else {
                    tx.commit().await.map_err(crate::backend_error)?;
                    let Some(r) = ledger_sql::reservation_by_id(&self.pool, org, rid).await? else {
                        return Ok(Finished::NotFound);
                    };
                    if r.state == how.state() {
                        let row = sqlx::query(concat!("SELECT ", entry_cols!(), " FROM credit_entries \
                                                       WHERE org_id = $1 AND reservation_id = $2 AND kind = $3"))
                            .bind(org).bind(rid).bind(how.kind().as_str())
                            .fetch_optional(&self.pool).await.map_err(crate::backend_error)?;
                        if let Some(row) = row {
                            return Ok(Finished::Replayed(ledger_sql::entry(&row).map_err(crate::backend_error)?));
                        }
                    }
                    return Ok(Finished::Conflict(r.state));
                };
                let amount: i64 = changed.try_get("amount").map_err(crate::backend_error)?;
                let cost: i64 = changed.try_get::<Option<i64>, _>("cost").map_err(crate::backend_error)?.unwrap_or(0);
                let op: String = changed.try_get("op").map_err(crate::backend_error)?;
                let token: Option<uuid::Uuid> = changed.try_get("token_id").map_err(crate::backend_error)?;
                let back = match how {
                    Finish::Settle { .. } => amount - cost,
                    Finish::Release => amount,
                    Finish::Refund => cost,
                };
                // Return credits to the lots they came from, last drawn first; what goes back
                // to a lot that has expired in the meantime expires with it.
                let drawn = if back == 0 { Vec::new() } else { sqlx::query("SELECT seq, lot_id, amount FROM credit_allocations WHERE reservation_id = $1 ORDER BY seq")
                    .bind(rid)
                    .fetch_all(&mut *tx).await.map_err(crate::backend_error)?
                    .iter()
                    .map(|row| Ok((row.try_get::<i32, _>("seq")?, row.try_get::<uuid::Uuid, _>("lot_id")?, row.try_get::<i64, _>("amount")?)))
                    .collect::<Result<Vec<_>, sqlx::Error>>()
                    .map_err(crate::backend_error)? };
                let mut lapsed: Vec<(uuid::Uuid, i64)> = Vec::new();
                for (seq, lot, amount) in pixeld_core::ledger::give_back(&drawn, back) {
                    sqlx::query("UPDATE credit_allocations SET amount = amount - $1 WHERE reservation_id = $2 AND seq = $3")
                        .bind(amount).bind(rid).bind(seq)
                        .execute(&mut *tx).await.map_err(crate::backend_error)?;
                    let row = sqlx::query("UPDATE credit_lots SET remaining = remaining + $1 WHERE id = $2 AND expired_at IS NULL RETURNING id")
                        .bind(amount).bind(lot)
                        .fetch_optional(&mut *tx).await.map_err(crate::backend_error)?;
                    if row.is_none() {
                        lapsed.push((lot, amount));
                    }
                }
                let mut entry = e.clone();
                entry.id = uuid::Uuid::now_v7();
                entry.org_id = org;
                entry.kind = how.kind();
                entry.amount = back;
                entry.balance_after = balance + back;
                entry.reservation_id = Some(rid);
                entry.source = Some(op);
                entry.token_id = entry.token_id.or(token);
                if !ledger_sql::insert_entry(&mut *tx, &entry).await? {
                    return Err(pixeld_core::store::StoreError::Conflict(format!(
                        "business key {} is already used", entry.business_key
                    )));
                }
                let mut after = entry.balance_after;
                for (lot, amount) in lapsed {
                    after -= amount;
                    let mut x = LedgerEntry::new(org, EntryKind::Expire, format!("expire:{lot}:{}", entry.id), now);
                    x.amount = -amount;
                    x.balance_after = after;
                    x.lot_id = Some(lot);
                    x.reservation_id = Some(rid);
                    ledger_sql::insert_entry(&mut *tx, &x).await?;
                }
                if after != balance {
                    ledger_sql::move_balance(&mut *tx, org, after - balance).await?;
                }
                tx.commit().await.map_err(crate::backend_error)?;
                Ok(Finished::New(entry))
            }

            /// `ledger_reserve` through the group commit.
            async fn ledger_reserve_grouped(
                &self,
                r: &pixeld_core::ledger::Reservation,
                e: &pixeld_core::ledger::LedgerEntry,
                now: time::OffsetDateTime,
            ) -> pixeld_core::store::StoreResult<pixeld_core::ledger::Debit<pixeld_core::ledger::Reservation>> {
                let (done, answer) = tokio::sync::oneshot::channel();
                self.submit(crate::group::Op::Reserve { r: r.clone(), e: e.clone(), now, done });
                answer.await.unwrap_or_else(|_| Err(crate::group::leader_gone()))
            }

            /// `ledger_finish` of a settle through the group commit.
            async fn ledger_settle_grouped(
                &self,
                org: uuid::Uuid,
                rid: uuid::Uuid,
                cost: i64,
                e: &pixeld_core::ledger::LedgerEntry,
                now: time::OffsetDateTime,
            ) -> pixeld_core::store::StoreResult<pixeld_core::ledger::Finished> {
                let (done, answer) = tokio::sync::oneshot::channel();
                self.submit(crate::group::Op::Settle { org, rid, cost, e: e.clone(), now, done });
                answer.await.unwrap_or_else(|_| Err(crate::group::leader_gone()))
            }

            /// Queues `op`, starting the leader task if none runs.
            fn submit(&self, op: crate::group::Op) {
                if !self.groups.submit(op) {
                    return;
                }
                let store = self.clone();
                tokio::spawn(async move {
                    let mut leader = crate::group::LeaderGuard::new(&store.groups);
                    loop {
                        let ops = leader.take();
                        if ops.is_empty() {
                            break;
                        }
                        store.run_group(ops).await;
                    }
                });
            }

            /// Writes one group in one transaction and answers its callers; what the group left
            /// goes to the one-at-a-time path, each in its own task so that the next group need
            /// not wait for it.
            async fn run_group(&self, ops: Vec<crate::group::Op>) {
                use crate::group::{Op, Outcome};
                let outcomes = if ops.len() > 1 {
                    match self.group_tx(&ops).await {
                        Ok(o) => o,
                        Err(e) => {
                            // Nothing was written; each op gets the answer (or the error) it
                            // gets on its own.
                            tracing::debug!(error = %e, "a ledger group fell back to one at a time");
                            ops.iter().map(|_| Outcome::Alone).collect()
                        }
                    }
                } else {
                    vec![Outcome::Alone]
                };
                let inline = ops.len() == 1;
                for (op, outcome) in ops.into_iter().zip(outcomes) {
                    match (op, outcome) {
                        (Op::Reserve { done, .. }, Outcome::Reserved(d)) => {
                            let _ = done.send(Ok(d));
                        }
                        (Op::Settle { done, .. }, Outcome::Settled(f)) => {
                            let _ = done.send(Ok(f));
                        }
                        (op, _) => {
                            self.groups.count(1);
                            let store = self.clone();
                            let alone = async move {
                                match op {
                                    Op::Reserve { r, e, now, done } => {
                                        let _ = done.send(store.ledger_reserve_tx(&r, &e, now).await);
                                    }
                                    Op::Settle { org, rid, cost, e, now, done } => {
                                        let how = pixeld_core::ledger::Finish::Settle { cost };
                                        let _ = done.send(store.ledger_finish_tx(org, rid, how, &e, now).await);
                                    }
                                }
                            };
                            if inline {
                                alone.await;
                            } else {
                                tokio::spawn(alone);
                            }
                        }
                    }
                }
            }

            async fn ledger_expire_tx(&self, now: time::OffsetDateTime, limit: i64) -> pixeld_core::store::StoreResult<u64> {
                let orgs = sqlx::query("SELECT DISTINCT org_id FROM credit_lots WHERE expired_at IS NULL AND expires_at <= $1 LIMIT $2")
                    .bind(ts(now)).bind(limit)
                    .fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                let mut total = 0;
                for row in &orgs {
                    let org: uuid::Uuid = row.try_get("org_id").map_err(crate::backend_error)?;
                    let mut tx = self.pool.begin().await.map_err(crate::backend_error)?;
                    let Some(balance) = ledger_sql::lock(&mut *tx, org, now).await? else { continue };
                    let (_, n) = ledger_sql::expire_due(&mut *tx, org, balance, now).await?;
                    tx.commit().await.map_err(crate::backend_error)?;
                    total += n;
                }
                Ok(total)
            }

            async fn replayed_entry(&self, org: uuid::Uuid, key: &str) -> pixeld_core::store::StoreResult<pixeld_core::ledger::LedgerEntry> {
                ledger_sql::entry_by_key(&self.pool, org, key).await?.ok_or_else(|| {
                    pixeld_core::store::StoreError::Backend(format!("ledger: entry {key} vanished"))
                })
            }

            async fn replayed_reservation(&self, org: uuid::Uuid, key: &str) -> pixeld_core::store::StoreResult<Option<pixeld_core::ledger::Reservation>> {
                let Some(first) = ledger_sql::entry_by_key(&self.pool, org, key).await? else { return Ok(None) };
                match first.reservation_id {
                    Some(rid) if first.kind == pixeld_core::ledger::EntryKind::Reserve => {
                        ledger_sql::reservation_by_id(&self.pool, org, rid).await
                    }
                    _ => Err(pixeld_core::store::StoreError::Conflict(format!(
                        "business key {key} is used by an entry that is not a reservation"
                    ))),
                }
            }

            async fn ledger_totals_q(&self, org: uuid::Uuid) -> pixeld_core::store::StoreResult<pixeld_core::ledger::Totals> {
                let row = sqlx::query(
                    "SELECT \
                       (SELECT CAST(COALESCE(MAX(balance), 0) AS BIGINT) FROM credit_balances WHERE org_id = $1) AS balance, \
                       (SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM credit_entries WHERE org_id = $1) AS entries, \
                       (SELECT CAST(COALESCE(SUM(remaining), 0) AS BIGINT) FROM credit_lots WHERE org_id = $1) AS lots, \
                       (SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM credit_reservations WHERE org_id = $1 AND state = 'held') AS held",
                )
                .bind(org)
                .fetch_one(&self.pool).await.map_err(crate::backend_error)?;
                Ok(pixeld_core::ledger::Totals {
                    balance: row.try_get("balance").map_err(crate::backend_error)?,
                    entries: row.try_get("entries").map_err(crate::backend_error)?,
                    lots: row.try_get("lots").map_err(crate::backend_error)?,
                    held: row.try_get("held").map_err(crate::backend_error)?,
                })
            }
        }
    };
}
