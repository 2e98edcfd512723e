//! The request log and retention purges on both backends (`PrivacyStore`).

macro_rules! usage_cols {
    () => {
        "id, at, org_id, user_id, token_id, method, route, status, latency_us, bytes_in, bytes_out, \
         credits, ip, ip_network, country, user_agent"
    };
}

macro_rules! deletion_cols {
    () => {
        "user_id, request_id, requested_at, purge_after, cancelled_at, purged_at"
    };
}
macro_rules! request_cols {
    () => {
        "id, user_id, kind, status, detail, requested_at, due_at, completed_at"
    };
}

macro_rules! export_cols {
    () => {
        "id, user_id, request_id, status, object_key, bytes, error, created_at, finished_at"
    };
}

macro_rules! privacy_impl {
    ($store:ty, $db:ty, $row:ty) => {
        mod privacy_sql {
            use super::*;
            use pixeld_core::usage::*;

            pub(super) const DAY: &[time::format_description::BorrowedFormatItem<'static>] =
                time::macros::format_description!("[year]-[month]-[day]");

            pub(super) fn day_text(d: time::Date) -> String {
                d.format(DAY).unwrap_or_default()
            }

            pub(super) fn read_day(r: &$row, col: &str) -> Result<time::Date, sqlx::Error> {
                let s: String = r.try_get(col)?;
                time::Date::parse(&s, DAY).map_err(|e| sqlx::Error::Decode(Box::new(e)))
            }

            pub(super) fn event(r: &$row) -> Result<UsageEvent, sqlx::Error> {
                let status: i32 = r.try_get("status")?;
                Ok(UsageEvent {
                    id: r.try_get("id")?,
                    at: read_ts(r, "at")?,
                    org_id: r.try_get("org_id")?,
                    user_id: r.try_get("user_id")?,
                    token_id: r.try_get("token_id")?,
                    method: r.try_get("method")?,
                    route: r.try_get("route")?,
                    status: u16::try_from(status).unwrap_or(0),
                    latency_us: r.try_get("latency_us")?,
                    bytes_in: r.try_get("bytes_in")?,
                    bytes_out: r.try_get("bytes_out")?,
                    credits: r.try_get("credits")?,
                    ip: r.try_get("ip")?,
                    ip_network: r.try_get("ip_network")?,
                    country: r.try_get("country")?,
                    user_agent: r.try_get("user_agent")?,
                })
            }

            pub(super) fn deletion(r: &$row) -> Result<pixeld_core::rights::AccountDeletion, sqlx::Error> {
                Ok(pixeld_core::rights::AccountDeletion {
                    user_id: r.try_get("user_id")?,
                    request_id: r.try_get("request_id")?,
                    requested_at: read_ts(r, "requested_at")?,
                    purge_after: read_ts(r, "purge_after")?,
                    cancelled_at: read_ts_opt(r, "cancelled_at")?,
                    purged_at: read_ts_opt(r, "purged_at")?,
                })
            }

            pub(super) fn request(r: &$row) -> Result<pixeld_core::rights::DataRequest, sqlx::Error> {
                let kind: String = r.try_get("kind")?;
                let status: String = r.try_get("status")?;
                Ok(pixeld_core::rights::DataRequest {
                    id: r.try_get("id")?,
                    user_id: r.try_get("user_id")?,
                    kind: pixeld_core::rights::RequestKind::parse(&kind)
                        .ok_or_else(|| sqlx::Error::Decode(format!("unknown request kind `{kind}`").into()))?,
                    status: pixeld_core::rights::RequestStatus::parse(&status)
                        .ok_or_else(|| sqlx::Error::Decode(format!("unknown request status `{status}`").into()))?,
                    detail: r.try_get("detail")?,
                    requested_at: read_ts(r, "requested_at")?,
                    due_at: read_ts(r, "due_at")?,
                    completed_at: read_ts_opt(r, "completed_at")?,
                })
            }

            pub(super) async fn insert_request<'e, E>(x: E, q: &pixeld_core::rights::DataRequest) -> Result<(), sqlx::Error>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                sqlx::query(concat!("INSERT INTO data_requests (", request_cols!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"))
                    .bind(q.id).bind(q.user_id).bind(q.kind.as_str()).bind(q.status.as_str()).bind(&q.detail)
                    .bind(ts(q.requested_at)).bind(ts(q.due_at)).bind(q.completed_at.map(ts))
                    .execute(x).await.map(drop)
            }

            pub(super) fn export(r: &$row) -> Result<pixeld_core::export::Export, sqlx::Error> {
                let status: String = r.try_get("status")?;
                Ok(pixeld_core::export::Export {
                    id: r.try_get("id")?,
                    user_id: r.try_get("user_id")?,
                    request_id: r.try_get("request_id")?,
                    status: pixeld_core::export::ExportStatus::parse(&status)
                        .ok_or_else(|| sqlx::Error::Decode(format!("unknown export status `{status}`").into()))?,
                    object_key: r.try_get("object_key")?,
                    bytes: r.try_get("bytes")?,
                    error: r.try_get("error")?,
                    created_at: read_ts(r, "created_at")?,
                    finished_at: read_ts_opt(r, "finished_at")?,
                })
            }

            pub(super) fn daily(r: &$row) -> Result<DailyUsage, sqlx::Error> {
                Ok(DailyUsage {
                    day: read_day(r, "day")?,
                    route: r.try_get("route")?,
                    requests: r.try_get("requests")?,
                    errors: r.try_get("errors")?,
                    bytes_in: r.try_get("bytes_in")?,
                    bytes_out: r.try_get("bytes_out")?,
                    credits: r.try_get("credits")?,
                    latency_us: r.try_get("latency_us")?,
                })
            }
        }

        #[async_trait::async_trait]
        impl pixeld_core::store::PrivacyStore for $store {
            async fn insert_usage(
                &self,
                rows: &[pixeld_core::usage::UsageEvent],
                daily: &[pixeld_core::usage::DailyDelta],
                latency: &[pixeld_core::usage::LatencyCount],
            ) -> pixeld_core::store::StoreResult<()> {
                let mut tx = self.pool.begin().await.map_err(crate::backend_error)?;
                for chunk in rows.chunks(pixeld_core::usage::ROWS_PER_STATEMENT) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(concat!("INSERT INTO usage_events (", usage_cols!(), ") "));
                    q.push_values(chunk, |mut b, e| {
                        b.push_bind(e.id).push_bind(ts(e.at)).push_bind(e.org_id).push_bind(e.user_id)
                            .push_bind(e.token_id).push_bind(e.method.clone()).push_bind(e.route.clone())
                            .push_bind(i32::from(e.status)).push_bind(e.latency_us).push_bind(e.bytes_in)
                            .push_bind(e.bytes_out).push_bind(e.credits).push_bind(e.ip.clone())
                            .push_bind(e.ip_network.clone()).push_bind(e.country.clone())
                            .push_bind(e.user_agent.clone());
                    });
                    q.push(" ON CONFLICT (id) DO NOTHING");
                    q.build().execute(&mut *tx).await.map_err(crate::backend_error)?;
                }
                for d in daily {
                    let u = &d.usage;
                    sqlx::query(
                        "INSERT INTO usage_daily (org_id, day, route, requests, errors, bytes_in, bytes_out, credits, latency_us) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                         ON CONFLICT (org_id, day, route) DO UPDATE SET \
                           requests = usage_daily.requests + excluded.requests, \
                           errors = usage_daily.errors + excluded.errors, \
                           bytes_in = usage_daily.bytes_in + excluded.bytes_in, \
                           bytes_out = usage_daily.bytes_out + excluded.bytes_out, \
                           credits = usage_daily.credits + excluded.credits, \
                           latency_us = usage_daily.latency_us + excluded.latency_us",
                    )
                    .bind(d.org_id).bind(privacy_sql::day_text(u.day)).bind(&u.route).bind(u.requests)
                    .bind(u.errors).bind(u.bytes_in).bind(u.bytes_out).bind(u.credits).bind(u.latency_us)
                    .execute(&mut *tx).await.map_err(crate::backend_error)?;
                }
                for l in latency {
                    sqlx::query(
                        "INSERT INTO route_latency (day, route, bucket, count) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (day, route, bucket) DO UPDATE SET count = route_latency.count + excluded.count",
                    )
                    .bind(privacy_sql::day_text(l.day)).bind(&l.route).bind(l.bucket).bind(l.count)
                    .execute(&mut *tx).await.map_err(crate::backend_error)?;
                }
                tx.commit().await.map_err(crate::backend_error)
            }

            async fn usage_events(
                &self,
                org_id: uuid::Uuid,
                f: &pixeld_core::usage::UsageFilter,
                page: pixeld_core::page::PageRequest,
            ) -> pixeld_core::store::StoreResult<Vec<pixeld_core::usage::UsageEvent>> {
                let far = time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(365 * 1000);
                // Ids are UUIDv7, so id order is time order; the cursor is the last id shown.
                let sql = if f.newest_first {
                    concat!(
                    "SELECT ", usage_cols!(), " FROM usage_events WHERE org_id = $1 AND id < $2 \
                     AND at >= $3 AND at < $4 AND ($5 = '' OR route = $5) \
                     AND ($6 = 0 OR status = $6) AND ($7 = 0 OR status / 100 = $7) \
                     AND ($8 = 0 OR token_id = $9) ORDER BY id DESC LIMIT $10")
                } else {
                    concat!(
                    "SELECT ", usage_cols!(), " FROM usage_events WHERE org_id = $1 AND id > $2 \
                     AND at >= $3 AND at < $4 AND ($5 = '' OR route = $5) \
                     AND ($6 = 0 OR status = $6) AND ($7 = 0 OR status / 100 = $7) \
                     AND ($8 = 0 OR token_id = $9) ORDER BY id LIMIT $10")
                };
                let start = if f.newest_first { uuid::Uuid::max() } else { uuid::Uuid::nil() };
                let rows = sqlx::query(sql)
                    .bind(org_id)
                    .bind(page.after.unwrap_or(start))
                    .bind(ts(f.since.unwrap_or(time::OffsetDateTime::UNIX_EPOCH)))
                    .bind(ts(f.until.unwrap_or(far)))
                    .bind(f.route.clone().unwrap_or_default())
                    .bind(i32::from(f.status.unwrap_or(0)))
                    .bind(i32::from(f.status_class.unwrap_or(0)))
                    .bind(i32::from(f.token_id.is_some()))
                    .bind(f.token_id.unwrap_or(uuid::Uuid::nil()))
                    .bind(page.fetch())
                    .fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter().map(privacy_sql::event).collect::<Result<_, _>>().map_err(crate::backend_error)
            }

            async fn usage_daily(
                &self,
                org_id: uuid::Uuid,
                from: time::Date,
                to: time::Date,
            ) -> pixeld_core::store::StoreResult<Vec<pixeld_core::usage::DailyUsage>> {
                let rows = sqlx::query(
                    "SELECT day, route, requests, errors, bytes_in, bytes_out, credits, latency_us FROM usage_daily \
                     WHERE org_id = $1 AND day >= $2 AND day <= $3 ORDER BY day, route",
                )
                .bind(org_id).bind(privacy_sql::day_text(from)).bind(privacy_sql::day_text(to))
                .fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter().map(privacy_sql::daily).collect::<Result<_, _>>().map_err(crate::backend_error)
            }

            async fn route_latency(
                &self,
                from: time::Date,
                to: time::Date,
            ) -> pixeld_core::store::StoreResult<Vec<pixeld_core::usage::LatencyCount>> {
                let rows = sqlx::query(
                    "SELECT day, route, bucket, count FROM route_latency WHERE day >= $1 AND day <= $2 \
                     ORDER BY route, bucket",
                )
                .bind(privacy_sql::day_text(from)).bind(privacy_sql::day_text(to))
                .fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter()
                    .map(|r| {
                        Ok(pixeld_core::usage::LatencyCount {
                            day: privacy_sql::read_day(r, "day")?,
                            route: r.try_get("route")?,
                            bucket: r.try_get("bucket")?,
                            count: r.try_get("count")?,
                        })
                    })
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(crate::backend_error)
            }

            async fn truncate_usage_ips(&self, before: time::OffsetDateTime) -> pixeld_core::store::StoreResult<u64> {
                let r = sqlx::query("UPDATE usage_events SET ip = NULL WHERE ip IS NOT NULL AND at < $1")
                    .bind(ts(before))
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(r.rows_affected())
            }

            async fn purge_usage(&self, before: time::OffsetDateTime) -> pixeld_core::store::StoreResult<u64> {
                let r = sqlx::query("DELETE FROM usage_events WHERE at < $1")
                    .bind(ts(before))
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(r.rows_affected())
            }

            async fn purge_ended_sessions(
                &self,
                now: time::OffsetDateTime,
                idle_before: time::OffsetDateTime,
            ) -> pixeld_core::store::StoreResult<u64> {
                let r = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2")
                    .bind(ts(now)).bind(ts(idle_before))
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(r.rows_affected())
            }

            async fn purge_one_time_tokens(&self, before: time::OffsetDateTime) -> pixeld_core::store::StoreResult<u64> {
                let r = sqlx::query("DELETE FROM one_time_tokens WHERE expires_at < $1")
                    .bind(ts(before))
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(r.rows_affected())
            }
            async fn create_account_deletion(
                &self,
                d: &pixeld_core::rights::AccountDeletion,
                r: &pixeld_core::rights::DataRequest,
            ) -> pixeld_core::store::StoreResult<()> {
                let mut tx = self.pool.begin().await.map_err(crate::backend_error)?;
                // A cancelled or purged earlier request is replaced; a pending one is a conflict.
                let done = sqlx::query(concat!(
                    "INSERT INTO account_deletions (", deletion_cols!(), ") VALUES ($1, $2, $3, $4, NULL, NULL) \
                     ON CONFLICT (user_id) DO UPDATE SET request_id = excluded.request_id, requested_at = excluded.requested_at, \
                       purge_after = excluded.purge_after, cancelled_at = NULL, purged_at = NULL \
                     WHERE account_deletions.cancelled_at IS NOT NULL OR account_deletions.purged_at IS NOT NULL"))
                    .bind(d.user_id).bind(d.request_id).bind(ts(d.requested_at)).bind(ts(d.purge_after))
                    .execute(&mut *tx).await.map_err(crate::backend_error)?;
                if done.rows_affected() == 0 {
                    return Err(pixeld_core::store::StoreError::Conflict(
                        "this account's deletion is already scheduled".into(),
                    ));
                }
                privacy_sql::insert_request(&mut *tx, r).await.map_err(crate::backend_error)?;
                tx.commit().await.map_err(crate::backend_error)
            }

            async fn account_deletion(&self, user_id: uuid::Uuid) -> pixeld_core::store::StoreResult<Option<pixeld_core::rights::AccountDeletion>> {
                let row = sqlx::query(concat!("SELECT ", deletion_cols!(), " FROM account_deletions WHERE user_id = $1"))
                    .bind(user_id)
                    .fetch_optional(&self.pool).await.map_err(crate::backend_error)?;
                row.as_ref().map(privacy_sql::deletion).transpose().map_err(crate::backend_error)
            }

            async fn cancel_account_deletion(&self, user_id: uuid::Uuid, at: time::OffsetDateTime) -> pixeld_core::store::StoreResult<bool> {
                let mut tx = self.pool.begin().await.map_err(crate::backend_error)?;
                let row = sqlx::query(
                    "UPDATE account_deletions SET cancelled_at = $1 \
                     WHERE user_id = $2 AND cancelled_at IS NULL AND purged_at IS NULL RETURNING request_id",
                )
                .bind(ts(at)).bind(user_id)
                .fetch_optional(&mut *tx).await.map_err(crate::backend_error)?;
                let Some(row) = row else { return Ok(false) };
                let request: uuid::Uuid = row.try_get("request_id").map_err(crate::backend_error)?;
                sqlx::query("UPDATE data_requests SET status = 'cancelled', completed_at = $1 WHERE id = $2 AND status = 'open'")
                    .bind(ts(at)).bind(request)
                    .execute(&mut *tx).await.map_err(crate::backend_error)?;
                tx.commit().await.map_err(crate::backend_error)?;
                Ok(true)
            }

            async fn due_account_deletions(&self, now: time::OffsetDateTime, limit: i64) -> pixeld_core::store::StoreResult<Vec<pixeld_core::rights::AccountDeletion>> {
                let rows = sqlx::query(concat!(
                    "SELECT ", deletion_cols!(), " FROM account_deletions \
                     WHERE cancelled_at IS NULL AND purged_at IS NULL AND purge_after <= $1 ORDER BY purge_after LIMIT $2"))
                    .bind(ts(now)).bind(limit)
                    .fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter().map(privacy_sql::deletion).collect::<Result<_, _>>().map_err(crate::backend_error)
            }

            async fn revoke_user_tokens(&self, user_id: uuid::Uuid, at: time::OffsetDateTime) -> pixeld_core::store::StoreResult<u64> {
                let r = sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
                    .bind(ts(at)).bind(user_id)
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(r.rows_affected())
            }

            async fn orgs_blocking_deletion(&self, user_id: uuid::Uuid) -> pixeld_core::store::StoreResult<Vec<pixeld_core::store::Org>> {
                let rows = sqlx::query(
                    "SELECT o.id, o.name, o.personal, o.created_at FROM orgs o \
                     JOIN memberships m ON m.org_id = o.id AND m.user_id = $1 AND m.role = 'owner' \
                     WHERE NOT o.personal \
                       AND NOT EXISTS (SELECT 1 FROM memberships x WHERE x.org_id = o.id AND x.role = 'owner' AND x.user_id <> $1) \
                       AND EXISTS (SELECT 1 FROM memberships y WHERE y.org_id = o.id AND y.user_id <> $1) \
                     ORDER BY o.id",
                )
                .bind(user_id)
                .fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter().map(rows::org).collect::<Result<_, _>>().map_err(crate::backend_error)
            }

            async fn sole_member_orgs(&self, user_id: uuid::Uuid) -> pixeld_core::store::StoreResult<Vec<uuid::Uuid>> {
                let rows = sqlx::query(
                    "SELECT m.org_id FROM memberships m WHERE m.user_id = $1 \
                     AND NOT EXISTS (SELECT 1 FROM memberships x WHERE x.org_id = m.org_id AND x.user_id <> $1) \
                     ORDER BY m.org_id",
                )
                .bind(user_id)
                .fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter().map(|r| r.try_get("org_id")).collect::<Result<_, _>>().map_err(crate::backend_error)
            }

            async fn org_object_keys(&self, org_id: uuid::Uuid) -> pixeld_core::store::StoreResult<Vec<String>> {
                let rows = sqlx::query(
                    "SELECT object_key FROM images WHERE org_id = $1 \
                     UNION ALL SELECT v.object_key FROM image_variants v JOIN images i ON i.id = v.image_id WHERE i.org_id = $1 \
                     UNION ALL SELECT object_key FROM render_cache WHERE org_id = $1 \
                     UNION ALL SELECT object_key FROM fonts WHERE org_id = $1",
                )
                .bind(org_id)
                .fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter().map(|r| r.try_get("object_key")).collect::<Result<_, _>>().map_err(crate::backend_error)
            }

            async fn erase_account(&self, user_id: uuid::Uuid, orgs: &[uuid::Uuid], at: time::OffsetDateTime) -> pixeld_core::store::StoreResult<u64> {
                let mut tx = self.pool.begin().await.map_err(crate::backend_error)?;
                let mut n = 0;
                let be = crate::backend_error;
                n += sqlx::query("DELETE FROM usage_events WHERE user_id = $1").bind(user_id)
                    .execute(&mut *tx).await.map_err(be)?.rows_affected();
                n += sqlx::query("DELETE FROM invites WHERE invited_by = $1 \
                                  OR lower(email) = (SELECT lower(email) FROM users WHERE id = $1)")
                    .bind(user_id)
                    .execute(&mut *tx).await.map_err(be)?.rows_affected();
                // Sessions, tokens, memberships, recovery codes and emailed links cascade.
                n += sqlx::query("DELETE FROM users WHERE id = $1").bind(user_id)
                    .execute(&mut *tx).await.map_err(be)?.rows_affected();
                for org in orgs {
                    for sql in [
                        "DELETE FROM usage_events WHERE org_id = $1",
                        "DELETE FROM usage_daily WHERE org_id = $1",
                        "DELETE FROM processing_logs WHERE org_id = $1",
                        // Images, templates, renders, fonts, keys, jobs and webhooks cascade.
                        "DELETE FROM orgs WHERE id = $1",
                    ] {
                        n += sqlx::query(sql).bind(*org).execute(&mut *tx).await.map_err(be)?.rows_affected();
                    }
                }
                sqlx::query("UPDATE account_deletions SET purged_at = $1 WHERE user_id = $2 AND purged_at IS NULL")
                    .bind(ts(at)).bind(user_id)
                    .execute(&mut *tx).await.map_err(be)?;
                sqlx::query("UPDATE data_requests SET status = 'completed', completed_at = $1 \
                             WHERE user_id = $2 AND kind = 'erasure' AND status = 'open'")
                    .bind(ts(at)).bind(user_id)
                    .execute(&mut *tx).await.map_err(be)?;
                tx.commit().await.map_err(be)?;
                Ok(n)
            }

            async fn create_data_request(&self, r: &pixeld_core::rights::DataRequest) -> pixeld_core::store::StoreResult<()> {
                privacy_sql::insert_request(&self.pool, r).await.map_err(crate::backend_error)
            }

            async fn complete_data_request(&self, id: uuid::Uuid, at: time::OffsetDateTime) -> pixeld_core::store::StoreResult<bool> {
                let r = sqlx::query("UPDATE data_requests SET status = 'completed', completed_at = $1 WHERE id = $2 AND status = 'open'")
                    .bind(ts(at)).bind(id)
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(r.rows_affected() == 1)
            }

            async fn data_requests_of(&self, user_id: uuid::Uuid) -> pixeld_core::store::StoreResult<Vec<pixeld_core::rights::DataRequest>> {
                let rows = sqlx::query(concat!("SELECT ", request_cols!(), " FROM data_requests WHERE user_id = $1 ORDER BY id"))
                    .bind(user_id)
                    .fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter().map(privacy_sql::request).collect::<Result<_, _>>().map_err(crate::backend_error)
            }

            async fn open_data_requests(&self, page: pixeld_core::page::PageRequest) -> pixeld_core::store::StoreResult<Vec<pixeld_core::rights::DataRequest>> {
                let rows = sqlx::query(concat!("SELECT ", request_cols!(), " FROM data_requests WHERE status = 'open' AND id > $1 ORDER BY id LIMIT $2"))
                    .bind(page.after.unwrap_or(uuid::Uuid::nil())).bind(page.fetch())
                    .fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter().map(privacy_sql::request).collect::<Result<_, _>>().map_err(crate::backend_error)
            }
            async fn insert_consent(&self, c: &pixeld_core::consent::ConsentRecord) -> pixeld_core::store::StoreResult<()> {
                sqlx::query("INSERT INTO consents (id, user_id, purpose, granted, source, policy_version, recorded_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7)")
                    .bind(c.id).bind(c.user_id).bind(c.purpose.as_str()).bind(c.granted).bind(&c.source)
                    .bind(&c.policy_version).bind(ts(c.recorded_at))
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(())
            }

            async fn consents_of(&self, user_id: uuid::Uuid) -> pixeld_core::store::StoreResult<Vec<pixeld_core::consent::ConsentRecord>> {
                let rows = sqlx::query("SELECT id, user_id, purpose, granted, source, policy_version, recorded_at \
                                        FROM consents WHERE user_id = $1 ORDER BY id")
                    .bind(user_id)
                    .fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter()
                    .map(|r| {
                        let purpose: String = r.try_get("purpose")?;
                        Ok(pixeld_core::consent::ConsentRecord {
                            id: r.try_get("id")?,
                            user_id: r.try_get("user_id")?,
                            purpose: pixeld_core::consent::ConsentPurpose::parse(&purpose)
                                .ok_or_else(|| sqlx::Error::Decode(format!("unknown purpose `{purpose}`").into()))?,
                            granted: r.try_get("granted")?,
                            source: r.try_get("source")?,
                            policy_version: r.try_get("policy_version")?,
                            recorded_at: read_ts(r, "recorded_at")?,
                        })
                    })
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(crate::backend_error)
            }

            async fn processing_choices(&self, user_id: uuid::Uuid) -> pixeld_core::store::StoreResult<pixeld_core::consent::ProcessingChoices> {
                let row = sqlx::query("SELECT restricted, objections, updated_at FROM processing_choices WHERE user_id = $1")
                    .bind(user_id)
                    .fetch_optional(&self.pool).await.map_err(crate::backend_error)?;
                let Some(r) = row else { return Ok(Default::default()) };
                let objections: String = r.try_get("objections").map_err(crate::backend_error)?;
                Ok(pixeld_core::consent::ProcessingChoices {
                    restricted: r.try_get("restricted").map_err(crate::backend_error)?,
                    objections: objections.split(',').filter_map(pixeld_core::consent::Objection::parse).collect(),
                    updated_at: Some(read_ts(&r, "updated_at").map_err(crate::backend_error)?),
                })
            }

            async fn set_processing_choices(&self, user_id: uuid::Uuid, c: &pixeld_core::consent::ProcessingChoices) -> pixeld_core::store::StoreResult<()> {
                let objections: Vec<&str> = c.objections.iter().map(|o| o.as_str()).collect();
                sqlx::query("INSERT INTO processing_choices (user_id, restricted, objections, updated_at) VALUES ($1, $2, $3, $4) \
                             ON CONFLICT (user_id) DO UPDATE SET restricted = excluded.restricted, \
                             objections = excluded.objections, updated_at = excluded.updated_at")
                    .bind(user_id).bind(c.restricted).bind(objections.join(","))
                    .bind(ts(c.updated_at.unwrap_or(time::OffsetDateTime::UNIX_EPOCH)))
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(())
            }

            async fn profile(&self, user_id: uuid::Uuid) -> pixeld_core::store::StoreResult<Option<pixeld_core::consent::Profile>> {
                let row = sqlx::query("SELECT phone, company, address, tax_id FROM user_profiles WHERE user_id = $1")
                    .bind(user_id)
                    .fetch_optional(&self.pool).await.map_err(crate::backend_error)?;
                row.map(|r| {
                    let address: String = r.try_get("address")?;
                    Ok(pixeld_core::consent::Profile {
                        phone: r.try_get("phone")?,
                        company: r.try_get("company")?,
                        address: serde_json::from_str(&address).unwrap_or_default(),
                        tax_id: r.try_get("tax_id")?,
                    })
                })
                .transpose()
                .map_err(|e: sqlx::Error| crate::backend_error(e))
            }

            async fn update_profile(
                &self,
                user_id: uuid::Uuid,
                name: Option<&str>,
                p: &pixeld_core::consent::Profile,
                change: &pixeld_core::consent::ProfileChange,
            ) -> pixeld_core::store::StoreResult<()> {
                let mut tx = self.pool.begin().await.map_err(crate::backend_error)?;
                if let Some(n) = name {
                    sqlx::query("UPDATE users SET name = $1 WHERE id = $2").bind(n).bind(user_id)
                        .execute(&mut *tx).await.map_err(crate::backend_error)?;
                }
                let address = serde_json::to_string(&p.address).unwrap_or_else(|_| "[]".into());
                sqlx::query("INSERT INTO user_profiles (user_id, phone, company, address, tax_id, updated_at) \
                             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_id) DO UPDATE SET phone = excluded.phone, \
                             company = excluded.company, address = excluded.address, tax_id = excluded.tax_id, \
                             updated_at = excluded.updated_at")
                    .bind(user_id).bind(&p.phone).bind(&p.company).bind(address).bind(&p.tax_id).bind(ts(change.changed_at))
                    .execute(&mut *tx).await.map_err(crate::backend_error)?;
                sqlx::query("INSERT INTO profile_changes (id, user_id, fields, changed_at) VALUES ($1, $2, $3, $4)")
                    .bind(change.id).bind(user_id).bind(change.fields.join(",")).bind(ts(change.changed_at))
                    .execute(&mut *tx).await.map_err(crate::backend_error)?;
                tx.commit().await.map_err(crate::backend_error)
            }

            async fn profile_changes(&self, user_id: uuid::Uuid) -> pixeld_core::store::StoreResult<Vec<pixeld_core::consent::ProfileChange>> {
                let rows = sqlx::query("SELECT id, user_id, fields, changed_at FROM profile_changes WHERE user_id = $1 ORDER BY id")
                    .bind(user_id)
                    .fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter()
                    .map(|r| {
                        let fields: String = r.try_get("fields")?;
                        Ok(pixeld_core::consent::ProfileChange {
                            id: r.try_get("id")?,
                            user_id: r.try_get("user_id")?,
                            fields: fields.split(',').map(str::to_string).collect(),
                            changed_at: read_ts(r, "changed_at")?,
                        })
                    })
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(crate::backend_error)
            }

            async fn instance_key(&self, name: &str, candidate: &str, now: time::OffsetDateTime) -> pixeld_core::store::StoreResult<String> {
                sqlx::query("INSERT INTO instance_keys (name, secret, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
                    .bind(name).bind(candidate).bind(ts(now))
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                let row = sqlx::query("SELECT secret FROM instance_keys WHERE name = $1").bind(name)
                    .fetch_one(&self.pool).await.map_err(crate::backend_error)?;
                row.try_get("secret").map_err(crate::backend_error)
            }
            async fn create_export(&self, e: &pixeld_core::export::Export) -> pixeld_core::store::StoreResult<()> {
                sqlx::query(concat!("INSERT INTO account_exports (", export_cols!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"))
                    .bind(e.id).bind(e.user_id).bind(e.request_id).bind(e.status.as_str()).bind(&e.object_key)
                    .bind(e.bytes).bind(&e.error).bind(ts(e.created_at)).bind(e.finished_at.map(ts))
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(())
            }

            async fn export_by_id(&self, id: uuid::Uuid) -> pixeld_core::store::StoreResult<Option<pixeld_core::export::Export>> {
                let row = sqlx::query(concat!("SELECT ", export_cols!(), " FROM account_exports WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&self.pool).await.map_err(crate::backend_error)?;
                row.as_ref().map(privacy_sql::export).transpose().map_err(crate::backend_error)
            }

            async fn exports_of(&self, user_id: uuid::Uuid) -> pixeld_core::store::StoreResult<Vec<pixeld_core::export::Export>> {
                let rows = sqlx::query(concat!("SELECT ", export_cols!(), " FROM account_exports WHERE user_id = $1 ORDER BY id"))
                    .bind(user_id)
                    .fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter().map(privacy_sql::export).collect::<Result<_, _>>().map_err(crate::backend_error)
            }

            async fn finish_export(
                &self,
                id: uuid::Uuid,
                status: pixeld_core::export::ExportStatus,
                object_key: Option<&str>,
                bytes: Option<i64>,
                error: Option<&str>,
                at: time::OffsetDateTime,
            ) -> pixeld_core::store::StoreResult<()> {
                sqlx::query("UPDATE account_exports SET status = $1, object_key = $2, bytes = $3, error = $4, finished_at = $5 WHERE id = $6")
                    .bind(status.as_str()).bind(object_key).bind(bytes).bind(error).bind(ts(at)).bind(id)
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(())
            }

            async fn exports_before(&self, before: time::OffsetDateTime, limit: i64) -> pixeld_core::store::StoreResult<Vec<pixeld_core::export::Export>> {
                let rows = sqlx::query(concat!("SELECT ", export_cols!(), " FROM account_exports WHERE created_at < $1 ORDER BY created_at LIMIT $2"))
                    .bind(ts(before)).bind(limit)
                    .fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter().map(privacy_sql::export).collect::<Result<_, _>>().map_err(crate::backend_error)
            }

            async fn delete_export(&self, id: uuid::Uuid) -> pixeld_core::store::StoreResult<bool> {
                let r = sqlx::query("DELETE FROM account_exports WHERE id = $1").bind(id)
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(r.rows_affected() == 1)
            }

            async fn usage_of_user(&self, user_id: uuid::Uuid, limit: i64) -> pixeld_core::store::StoreResult<Vec<pixeld_core::usage::UsageEvent>> {
                let rows = sqlx::query(concat!("SELECT ", usage_cols!(), " FROM usage_events WHERE user_id = $1 ORDER BY id LIMIT $2"))
                    .bind(user_id).bind(limit)
                    .fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter().map(privacy_sql::event).collect::<Result<_, _>>().map_err(crate::backend_error)
            }

            async fn render_cache_of(&self, org_id: uuid::Uuid, limit: i64) -> pixeld_core::store::StoreResult<Vec<pixeld_core::store::RenderCacheEntry>> {
                let rows = sqlx::query(concat!("SELECT ", render_cache_cols!(), " FROM render_cache WHERE org_id = $1 ORDER BY created_at LIMIT $2"))
                    .bind(org_id).bind(limit)
                    .fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter().map(rows::render_cache).collect::<Result<_, _>>().map_err(crate::backend_error)
            }
            async fn analytics_salt(&self, day: &str, candidate: &str, now: time::OffsetDateTime) -> pixeld_core::store::StoreResult<String> {
                sqlx::query("INSERT INTO analytics_salts (day, salt, created_at) VALUES ($1, $2, $3) ON CONFLICT (day) DO NOTHING")
                    .bind(day).bind(candidate).bind(ts(now))
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                let row = sqlx::query("SELECT salt FROM analytics_salts WHERE day = $1").bind(day)
                    .fetch_one(&self.pool).await.map_err(crate::backend_error)?;
                row.try_get("salt").map_err(crate::backend_error)
            }

            async fn purge_analytics_salts(&self, before: time::OffsetDateTime) -> pixeld_core::store::StoreResult<u64> {
                let r = sqlx::query("DELETE FROM analytics_salts WHERE created_at < $1").bind(ts(before))
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(r.rows_affected())
            }

            async fn insert_analytics_event(&self, e: &pixeld_core::analytics::AnalyticsEvent) -> pixeld_core::store::StoreResult<()> {
                sqlx::query("INSERT INTO analytics_events (id, at, day, site, kind, name, referrer, country, device, visitor) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
                    .bind(e.id).bind(ts(e.at)).bind(privacy_sql::day_text(e.at.date())).bind(&e.site).bind(&e.kind)
                    .bind(&e.name).bind(&e.referrer).bind(&e.country).bind(&e.device).bind(&e.visitor)
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(())
            }

            async fn analytics_events(&self, site: &str, from: &str, to: &str) -> pixeld_core::store::StoreResult<Vec<pixeld_core::analytics::AnalyticsEvent>> {
                let rows = sqlx::query("SELECT id, at, site, kind, name, referrer, country, device, visitor FROM analytics_events \
                                        WHERE site = $1 AND day >= $2 AND day <= $3 ORDER BY id LIMIT 1000000")
                    .bind(site).bind(from).bind(to)
                    .fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter()
                    .map(|r| {
                        Ok(pixeld_core::analytics::AnalyticsEvent {
                            id: r.try_get("id")?,
                            at: read_ts(r, "at")?,
                            site: r.try_get("site")?,
                            kind: r.try_get("kind")?,
                            name: r.try_get("name")?,
                            referrer: r.try_get("referrer")?,
                            country: r.try_get("country")?,
                            device: r.try_get("device")?,
                            visitor: r.try_get("visitor")?,
                        })
                    })
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(crate::backend_error)
            }

            async fn purge_analytics_events(&self, before: time::OffsetDateTime) -> pixeld_core::store::StoreResult<u64> {
                let r = sqlx::query("DELETE FROM analytics_events WHERE at < $1").bind(ts(before))
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(r.rows_affected())
            }
        }
    };
}
