//! The SQL shared by both backends. Each backend module defines `ts`, `read_ts` and
//! `read_ts_opt` (its representation of time) and then invokes `store_impl!`.

// Column lists as literal-producing macros: sqlx only takes static SQL, and `concat!` can
// splice these in at compile time.
macro_rules! user_cols {
    () => {
        "id, email, name, password_hash, email_verified_at, is_admin, disabled_at, totp_secret, \
         totp_pending_secret, totp_last_step, personal_org_id, created_at"
    };
}
macro_rules! token_cols {
    () => {
        "id, org_id, user_id, name, prefix, secret_digest, scopes, created_at, expires_at, last_used_at, \
         last_used_ip, revoked_at"
    };
}
macro_rules! session_cols {
    () => {
        "id, secret_digest, user_id, created_at, last_seen_at, expires_at, ip, user_agent"
    };
}
macro_rules! image_cols {
    () => {
        "id, org_id, uploaded_by, token_id, filename, source_url, format, mime, bytes, width, height, sha256, \
         analysis, description, object_key, created_at, expires_at"
    };
}
macro_rules! variant_cols {
    () => {
        "image_id, cache_key, format, mime, bytes, width, height, object_key, created_at"
    };
}
macro_rules! log_cols {
    () => {
        "id, org_id, token_id, image_id, op, bytes_in, bytes_out, ms, status, created_at"
    };
}
macro_rules! invite_cols {
    () => {
        "id, org_id, email, role, secret_digest, invited_by, created_at, expires_at, accepted_at, revoked_at"
    };
}

macro_rules! template_cols {
    () => {
        "id, org_id, name, latest_version, created_by, created_at, updated_at"
    };
}
macro_rules! template_version_cols {
    () => {
        "template_id, version, body, created_by, created_at"
    };
}
macro_rules! signing_key_cols {
    () => {
        "id, org_id, secret, created_at, revoked_at"
    };
}
macro_rules! render_cache_cols {
    () => {
        "cache_key, org_id, template_id, format, bytes, width, height, object_key, created_at"
    };
}

macro_rules! job_cols {
    () => {
        "id, kind, org_id, payload, state, attempts, run_at, locked_until, last_error, created_at, updated_at"
    };
}
macro_rules! render_job_cols {
    () => {
        "id, org_id, token_id, template_id, version, request, webhook_url, metadata, status, format, \
         cache_key, width, height, bytes, cached, error_type, error_detail, created_at, finished_at, batch_id"
    };
}
macro_rules! delivery_cols {
    () => {
        "id, org_id, event, url, payload, status, attempts, next_attempt_at, last_status, last_error, \
         created_at, delivered_at"
    };
}
macro_rules! attempt_cols {
    () => {
        "id, delivery_id, attempt, at, status_code, error, response_excerpt, ms"
    };
}

macro_rules! font_cols {
    () => {
        "id, org_id, families, file_name, format, bytes, sha256, object_key, created_by, created_at"
    };
}

macro_rules! order_cols {
    () => {
        "id, org_id, created_by, provider, item_kind, item_id, credits, amount_minor, currency, status, \
         provider_ref, payment_ref, customer_ref, refunded_minor, created_at, paid_at, updated_at"
    };
}

macro_rules! invoice_cols {
    () => {
        "id, org_id, number, display_number, order_id, currency, subtotal_minor, tax_minor, total_minor, \
         tax_name, tax_rate_bps, seller, buyer, lines, provider, issued_at"
    };
}

macro_rules! subscription_cols {
    () => {
        "id, org_id, provider, plan_id, status, provider_ref, customer_ref, current_period_end, \
         cancel_at_period_end, created_at, updated_at, last_event_at"
    };
}

macro_rules! store_impl {
    ($store:ty, $db:ty, $row:ty, $name:literal, $skip_locked:literal) => {
        mod rows {
            use super::*;
            use pixeld_core::store::*;
            use uuid::Uuid;

            pub(super) fn role(row: &$row, col: &str) -> Result<pixeld_core::roles::Role, sqlx::Error> {
                let s: String = row.try_get(col)?;
                s.parse().map_err(|_| sqlx::Error::Decode(format!("unknown role `{s}`").into()))
            }

            pub(super) fn user(r: &$row) -> Result<User, sqlx::Error> {
                Ok(User {
                    id: r.try_get("id")?,
                    email: r.try_get("email")?,
                    name: r.try_get("name")?,
                    password_hash: r.try_get("password_hash")?,
                    email_verified_at: read_ts_opt(r, "email_verified_at")?,
                    is_admin: r.try_get("is_admin")?,
                    disabled_at: read_ts_opt(r, "disabled_at")?,
                    totp_secret: r.try_get("totp_secret")?,
                    totp_pending_secret: r.try_get("totp_pending_secret")?,
                    totp_last_step: r.try_get("totp_last_step")?,
                    personal_org_id: r.try_get("personal_org_id")?,
                    created_at: read_ts(r, "created_at")?,
                })
            }

            pub(super) fn org(r: &$row) -> Result<Org, sqlx::Error> {
                Ok(Org {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    personal: r.try_get("personal")?,
                    created_at: read_ts(r, "created_at")?,
                })
            }

            pub(super) fn session(r: &$row) -> Result<Session, sqlx::Error> {
                Ok(Session {
                    id: r.try_get("id")?,
                    secret_digest: r.try_get("secret_digest")?,
                    user_id: r.try_get("user_id")?,
                    created_at: read_ts(r, "created_at")?,
                    last_seen_at: read_ts(r, "last_seen_at")?,
                    expires_at: read_ts(r, "expires_at")?,
                    ip: r.try_get("ip")?,
                    user_agent: r.try_get("user_agent")?,
                })
            }

            pub(super) fn token(r: &$row) -> Result<ApiToken, sqlx::Error> {
                Ok(ApiToken {
                    id: r.try_get("id")?,
                    org_id: r.try_get("org_id")?,
                    user_id: r.try_get("user_id")?,
                    name: r.try_get("name")?,
                    prefix: r.try_get("prefix")?,
                    secret_digest: r.try_get("secret_digest")?,
                    scopes: r.try_get("scopes")?,
                    created_at: read_ts(r, "created_at")?,
                    expires_at: read_ts_opt(r, "expires_at")?,
                    last_used_at: read_ts_opt(r, "last_used_at")?,
                    last_used_ip: r.try_get("last_used_ip")?,
                    revoked_at: read_ts_opt(r, "revoked_at")?,
                })
            }

            pub(super) fn one_time(r: &$row, purpose: Purpose) -> Result<OneTimeToken, sqlx::Error> {
                Ok(OneTimeToken {
                    digest: r.try_get("digest")?,
                    purpose,
                    user_id: r.try_get("user_id")?,
                    data: r.try_get("data")?,
                    created_at: read_ts(r, "created_at")?,
                    expires_at: read_ts(r, "expires_at")?,
                })
            }

            pub(super) fn invite(r: &$row) -> Result<Invite, sqlx::Error> {
                Ok(Invite {
                    id: r.try_get("id")?,
                    org_id: r.try_get("org_id")?,
                    email: r.try_get("email")?,
                    role: role(r, "role")?,
                    secret_digest: r.try_get("secret_digest")?,
                    invited_by: r.try_get("invited_by")?,
                    created_at: read_ts(r, "created_at")?,
                    expires_at: read_ts(r, "expires_at")?,
                    accepted_at: read_ts_opt(r, "accepted_at")?,
                    revoked_at: read_ts_opt(r, "revoked_at")?,
                })
            }

            pub(super) fn member(r: &$row) -> Result<Member, sqlx::Error> {
                Ok(Member {
                    user_id: r.try_get("user_id")?,
                    email: r.try_get("email")?,
                    name: r.try_get("name")?,
                    role: role(r, "role")?,
                    joined_at: read_ts(r, "created_at")?,
                })
            }

            pub(super) fn template(r: &$row) -> Result<TemplateRecord, sqlx::Error> {
                Ok(TemplateRecord {
                    id: r.try_get("id")?,
                    org_id: r.try_get("org_id")?,
                    name: r.try_get("name")?,
                    latest_version: r.try_get("latest_version")?,
                    created_by: r.try_get("created_by")?,
                    created_at: read_ts(r, "created_at")?,
                    updated_at: read_ts(r, "updated_at")?,
                })
            }

            pub(super) fn template_version(r: &$row) -> Result<TemplateVersion, sqlx::Error> {
                Ok(TemplateVersion {
                    template_id: r.try_get("template_id")?,
                    version: r.try_get("version")?,
                    body: r.try_get("body")?,
                    created_by: r.try_get("created_by")?,
                    created_at: read_ts(r, "created_at")?,
                })
            }

            pub(super) fn signing_key(r: &$row) -> Result<SigningKey, sqlx::Error> {
                Ok(SigningKey {
                    id: r.try_get("id")?,
                    org_id: r.try_get("org_id")?,
                    secret: r.try_get("secret")?,
                    created_at: read_ts(r, "created_at")?,
                    revoked_at: read_ts_opt(r, "revoked_at")?,
                })
            }

            pub(super) fn render_cache(r: &$row) -> Result<RenderCacheEntry, sqlx::Error> {
                Ok(RenderCacheEntry {
                    cache_key: r.try_get("cache_key")?,
                    org_id: r.try_get("org_id")?,
                    template_id: r.try_get("template_id")?,
                    format: r.try_get("format")?,
                    bytes: r.try_get("bytes")?,
                    width: r.try_get("width")?,
                    height: r.try_get("height")?,
                    object_key: r.try_get("object_key")?,
                    created_at: read_ts(r, "created_at")?,
                })
            }

            pub(super) fn image(r: &$row) -> Result<ImageRecord, sqlx::Error> {
                Ok(ImageRecord {
                    id: r.try_get("id")?,
                    org_id: r.try_get("org_id")?,
                    uploaded_by: r.try_get("uploaded_by")?,
                    token_id: r.try_get("token_id")?,
                    filename: r.try_get("filename")?,
                    source_url: r.try_get("source_url")?,
                    format: r.try_get("format")?,
                    mime: r.try_get("mime")?,
                    bytes: r.try_get("bytes")?,
                    width: r.try_get("width")?,
                    height: r.try_get("height")?,
                    sha256: r.try_get("sha256")?,
                    analysis: r.try_get("analysis")?,
                    description: r.try_get("description")?,
                    object_key: r.try_get("object_key")?,
                    created_at: read_ts(r, "created_at")?,
                    expires_at: read_ts(r, "expires_at")?,
                })
            }

            pub(super) fn variant(r: &$row) -> Result<ImageVariant, sqlx::Error> {
                Ok(ImageVariant {
                    image_id: r.try_get("image_id")?,
                    cache_key: r.try_get("cache_key")?,
                    format: r.try_get("format")?,
                    mime: r.try_get("mime")?,
                    bytes: r.try_get("bytes")?,
                    width: r.try_get("width")?,
                    height: r.try_get("height")?,
                    object_key: r.try_get("object_key")?,
                    created_at: read_ts(r, "created_at")?,
                })
            }

            pub(super) fn log(r: &$row) -> Result<ProcessingLog, sqlx::Error> {
                Ok(ProcessingLog {
                    id: r.try_get("id")?,
                    org_id: r.try_get("org_id")?,
                    token_id: r.try_get("token_id")?,
                    image_id: r.try_get("image_id")?,
                    op: r.try_get("op")?,
                    bytes_in: r.try_get("bytes_in")?,
                    bytes_out: r.try_get("bytes_out")?,
                    ms: r.try_get("ms")?,
                    status: r.try_get("status")?,
                    created_at: read_ts(r, "created_at")?,
                })
            }

            pub(super) fn job(r: &$row) -> Result<Job, sqlx::Error> {
                Ok(Job {
                    id: r.try_get("id")?,
                    kind: r.try_get("kind")?,
                    org_id: r.try_get("org_id")?,
                    payload: r.try_get("payload")?,
                    state: r.try_get("state")?,
                    attempts: r.try_get("attempts")?,
                    run_at: read_ts(r, "run_at")?,
                    locked_until: read_ts_opt(r, "locked_until")?,
                    last_error: r.try_get("last_error")?,
                    created_at: read_ts(r, "created_at")?,
                    updated_at: read_ts(r, "updated_at")?,
                })
            }

            pub(super) fn render_job(r: &$row) -> Result<RenderJob, sqlx::Error> {
                Ok(RenderJob {
                    id: r.try_get("id")?,
                    org_id: r.try_get("org_id")?,
                    token_id: r.try_get("token_id")?,
                    template_id: r.try_get("template_id")?,
                    version: r.try_get("version")?,
                    request: r.try_get("request")?,
                    webhook_url: r.try_get("webhook_url")?,
                    metadata: r.try_get("metadata")?,
                    status: r.try_get("status")?,
                    format: r.try_get("format")?,
                    cache_key: r.try_get("cache_key")?,
                    width: r.try_get("width")?,
                    height: r.try_get("height")?,
                    bytes: r.try_get("bytes")?,
                    cached: r.try_get("cached")?,
                    error_type: r.try_get("error_type")?,
                    error_detail: r.try_get("error_detail")?,
                    created_at: read_ts(r, "created_at")?,
                    finished_at: read_ts_opt(r, "finished_at")?,
                    batch_id: r.try_get("batch_id")?,
                })
            }

            pub(super) fn delivery(r: &$row) -> Result<WebhookDelivery, sqlx::Error> {
                Ok(WebhookDelivery {
                    id: r.try_get("id")?,
                    org_id: r.try_get("org_id")?,
                    event: r.try_get("event")?,
                    url: r.try_get("url")?,
                    payload: r.try_get("payload")?,
                    status: r.try_get("status")?,
                    attempts: r.try_get("attempts")?,
                    next_attempt_at: read_ts_opt(r, "next_attempt_at")?,
                    last_status: r.try_get("last_status")?,
                    last_error: r.try_get("last_error")?,
                    created_at: read_ts(r, "created_at")?,
                    delivered_at: read_ts_opt(r, "delivered_at")?,
                })
            }

            pub(super) fn attempt(r: &$row) -> Result<WebhookAttempt, sqlx::Error> {
                Ok(WebhookAttempt {
                    id: r.try_get("id")?,
                    delivery_id: r.try_get("delivery_id")?,
                    attempt: r.try_get("attempt")?,
                    at: read_ts(r, "at")?,
                    status_code: r.try_get("status_code")?,
                    error: r.try_get("error")?,
                    response_excerpt: r.try_get("response_excerpt")?,
                    ms: r.try_get("ms")?,
                })
            }

            pub(super) fn font(r: &$row) -> Result<FontRecord, sqlx::Error> {
                Ok(FontRecord {
                    id: r.try_get("id")?,
                    org_id: r.try_get("org_id")?,
                    families: r.try_get("families")?,
                    file_name: r.try_get("file_name")?,
                    format: r.try_get("format")?,
                    bytes: r.try_get("bytes")?,
                    sha256: r.try_get("sha256")?,
                    object_key: r.try_get("object_key")?,
                    created_by: r.try_get("created_by")?,
                    created_at: read_ts(r, "created_at")?,
                })
            }

            pub(super) fn order(r: &$row) -> Result<pixeld_core::billing::Order, sqlx::Error> {
                let status: String = r.try_get("status")?;
                Ok(pixeld_core::billing::Order {
                    id: r.try_get("id")?,
                    org_id: r.try_get("org_id")?,
                    created_by: r.try_get("created_by")?,
                    provider: r.try_get("provider")?,
                    item_kind: r.try_get("item_kind")?,
                    item_id: r.try_get("item_id")?,
                    credits: r.try_get("credits")?,
                    amount_minor: r.try_get("amount_minor")?,
                    currency: r.try_get("currency")?,
                    status: pixeld_core::billing::OrderStatus::parse(&status)
                        .ok_or_else(|| sqlx::Error::Decode(format!("unknown order status `{status}`").into()))?,
                    provider_ref: r.try_get("provider_ref")?,
                    payment_ref: r.try_get("payment_ref")?,
                    customer_ref: r.try_get("customer_ref")?,
                    refunded_minor: r.try_get("refunded_minor")?,
                    created_at: read_ts(r, "created_at")?,
                    paid_at: read_ts_opt(r, "paid_at")?,
                    updated_at: read_ts(r, "updated_at")?,
                })
            }

            pub(super) fn invoice(r: &$row) -> Result<pixeld_core::invoices::Invoice, sqlx::Error> {
                let bad = |e: serde_json::Error| sqlx::Error::Decode(Box::new(e));
                Ok(pixeld_core::invoices::Invoice {
                    id: r.try_get("id")?,
                    org_id: r.try_get("org_id")?,
                    number: r.try_get("number")?,
                    display_number: r.try_get("display_number")?,
                    order_id: r.try_get("order_id")?,
                    currency: r.try_get("currency")?,
                    subtotal_minor: r.try_get("subtotal_minor")?,
                    tax_minor: r.try_get("tax_minor")?,
                    total_minor: r.try_get("total_minor")?,
                    tax_name: r.try_get("tax_name")?,
                    tax_rate_bps: r.try_get("tax_rate_bps")?,
                    seller: serde_json::from_str::<pixeld_core::invoices::Party>(&r.try_get::<String, _>("seller")?).map_err(bad)?,
                    buyer: serde_json::from_str::<pixeld_core::invoices::Party>(&r.try_get::<String, _>("buyer")?).map_err(bad)?,
                    lines: serde_json::from_str::<Vec<pixeld_core::invoices::Line>>(&r.try_get::<String, _>("lines")?).map_err(bad)?,
                    provider: r.try_get("provider")?,
                    issued_at: read_ts(r, "issued_at")?,
                })
            }

            pub(super) fn subscription(r: &$row) -> Result<pixeld_core::plans::Subscription, sqlx::Error> {
                Ok(pixeld_core::plans::Subscription {
                    id: r.try_get("id")?,
                    org_id: r.try_get("org_id")?,
                    provider: r.try_get("provider")?,
                    plan_id: r.try_get("plan_id")?,
                    status: r.try_get("status")?,
                    provider_ref: r.try_get("provider_ref")?,
                    customer_ref: r.try_get("customer_ref")?,
                    current_period_end: read_ts_opt(r, "current_period_end")?,
                    cancel_at_period_end: r.try_get("cancel_at_period_end")?,
                    last_event_at: r.try_get("last_event_at")?,
                    created_at: read_ts(r, "created_at")?,
                    updated_at: read_ts(r, "updated_at")?,
                })
            }

            /// The smallest id, so `id > $n` with no cursor lists everything.
            pub(super) fn after(page: &pixeld_core::page::PageRequest) -> Uuid {
                page.after.unwrap_or(Uuid::nil())
            }
        }

        #[async_trait::async_trait]
        impl pixeld_core::store::Store for $store {
            fn backend(&self) -> &'static str {
                $name
            }

            async fn ping(&self) -> pixeld_core::store::StoreResult<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(())
            }

            async fn create_user(&self, user: &pixeld_core::store::User, org: &pixeld_core::store::Org) -> pixeld_core::store::StoreResult<()> {
                let mut tx = self.pool.begin().await.map_err(crate::backend_error)?;
                sqlx::query("INSERT INTO orgs (id, name, personal, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(org.id).bind(&org.name).bind(org.personal).bind(ts(org.created_at))
                    .execute(&mut *tx).await.map_err(crate::backend_error)?;
                sqlx::query(
                    "INSERT INTO users (id, email, name, password_hash, email_verified_at, is_admin, disabled_at, \
                     totp_secret, totp_pending_secret, totp_last_step, personal_org_id, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                )
                .bind(user.id).bind(&user.email).bind(&user.name).bind(&user.password_hash)
                .bind(user.email_verified_at.map(ts)).bind(user.is_admin).bind(user.disabled_at.map(ts))
                .bind(&user.totp_secret).bind(&user.totp_pending_secret).bind(user.totp_last_step)
                .bind(user.personal_org_id).bind(ts(user.created_at))
                .execute(&mut *tx).await.map_err(crate::backend_error)?;
                sqlx::query("INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, 'owner', $3)")
                    .bind(org.id).bind(user.id).bind(ts(user.created_at))
                    .execute(&mut *tx).await.map_err(crate::backend_error)?;
                tx.commit().await.map_err(crate::backend_error)
            }

            async fn user_by_id(&self, id: uuid::Uuid) -> pixeld_core::store::StoreResult<Option<pixeld_core::store::User>> {
                let row = sqlx::query(concat!("SELECT ", user_cols!(), " FROM users WHERE id = $1"))
                    .bind(id).fetch_optional(&self.pool).await.map_err(crate::backend_error)?;
                row.as_ref().map(rows::user).transpose().map_err(crate::backend_error)
            }

            async fn user_by_email(&self, email: &str) -> pixeld_core::store::StoreResult<Option<pixeld_core::store::User>> {
                let row = sqlx::query(concat!("SELECT ", user_cols!(), " FROM users WHERE lower(email) = lower($1)"))
                    .bind(email).fetch_optional(&self.pool).await.map_err(crate::backend_error)?;
                row.as_ref().map(rows::user).transpose().map_err(crate::backend_error)
            }

            async fn list_users(&self, page: pixeld_core::page::PageRequest) -> pixeld_core::store::StoreResult<Vec<pixeld_core::store::User>> {
                let rows = sqlx::query(concat!("SELECT ", user_cols!(), " FROM users WHERE id > $1 ORDER BY id LIMIT $2"))
                    .bind(rows::after(&page)).bind(page.fetch())
                    .fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter().map(rows::user).collect::<Result<_, _>>().map_err(crate::backend_error)
            }

            async fn set_email_verified(&self, user_id: uuid::Uuid, at: time::OffsetDateTime) -> pixeld_core::store::StoreResult<()> {
                self.exec_one(sqlx::query("UPDATE users SET email_verified_at = $1 WHERE id = $2").bind(ts(at)).bind(user_id)).await
            }

            async fn set_password_hash(&self, user_id: uuid::Uuid, hash: &str) -> pixeld_core::store::StoreResult<()> {
                self.exec_one(sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2").bind(hash).bind(user_id)).await
            }

            async fn set_email(&self, user_id: uuid::Uuid, email: &str, verified_at: time::OffsetDateTime) -> pixeld_core::store::StoreResult<()> {
                self.exec_one(
                    sqlx::query("UPDATE users SET email = $1, email_verified_at = $2 WHERE id = $3")
                        .bind(email).bind(ts(verified_at)).bind(user_id),
                ).await
            }

            async fn set_admin(&self, user_id: uuid::Uuid, admin: bool) -> pixeld_core::store::StoreResult<()> {
                self.exec_one(sqlx::query("UPDATE users SET is_admin = $1 WHERE id = $2").bind(admin).bind(user_id)).await
            }

            async fn set_disabled(&self, user_id: uuid::Uuid, at: Option<time::OffsetDateTime>) -> pixeld_core::store::StoreResult<()> {
                self.exec_one(sqlx::query("UPDATE users SET disabled_at = $1 WHERE id = $2").bind(at.map(ts)).bind(user_id)).await
            }

            async fn set_totp_pending(&self, user_id: uuid::Uuid, secret: Option<&str>) -> pixeld_core::store::StoreResult<()> {
                self.exec_one(sqlx::query("UPDATE users SET totp_pending_secret = $1 WHERE id = $2").bind(secret).bind(user_id)).await
            }

            async fn enable_totp(&self, user_id: uuid::Uuid, secret: &str, step: i64, recovery: &[String]) -> pixeld_core::store::StoreResult<()> {
                let mut tx = self.pool.begin().await.map_err(crate::backend_error)?;
                let done = sqlx::query(
                    "UPDATE users SET totp_secret = $1, totp_pending_secret = NULL, totp_last_step = $2 WHERE id = $3",
                )
                .bind(secret).bind(step).bind(user_id)
                .execute(&mut *tx).await.map_err(crate::backend_error)?;
                if done.rows_affected() == 0 {
                    return Err(pixeld_core::store::StoreError::NotFound);
                }
                sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(user_id)
                    .execute(&mut *tx).await.map_err(crate::backend_error)?;
                for d in recovery {
                    sqlx::query("INSERT INTO recovery_codes (user_id, digest) VALUES ($1, $2)").bind(user_id).bind(d)
                        .execute(&mut *tx).await.map_err(crate::backend_error)?;
                }
                tx.commit().await.map_err(crate::backend_error)
            }

            async fn disable_totp(&self, user_id: uuid::Uuid) -> pixeld_core::store::StoreResult<()> {
                let mut tx = self.pool.begin().await.map_err(crate::backend_error)?;
                sqlx::query("UPDATE users SET totp_secret = NULL, totp_pending_secret = NULL, totp_last_step = NULL WHERE id = $1")
                    .bind(user_id).execute(&mut *tx).await.map_err(crate::backend_error)?;
                sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(user_id)
                    .execute(&mut *tx).await.map_err(crate::backend_error)?;
                tx.commit().await.map_err(crate::backend_error)
            }

            async fn advance_totp_step(&self, user_id: uuid::Uuid, step: i64) -> pixeld_core::store::StoreResult<bool> {
                let r = sqlx::query(
                    "UPDATE users SET totp_last_step = $1 WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)",
                )
                .bind(step).bind(user_id)
                .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(r.rows_affected() == 1)
            }

            async fn replace_recovery_codes(&self, user_id: uuid::Uuid, digests: &[String]) -> pixeld_core::store::StoreResult<()> {
                let mut tx = self.pool.begin().await.map_err(crate::backend_error)?;
                sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(user_id)
                    .execute(&mut *tx).await.map_err(crate::backend_error)?;
                for d in digests {
                    sqlx::query("INSERT INTO recovery_codes (user_id, digest) VALUES ($1, $2)").bind(user_id).bind(d)
                        .execute(&mut *tx).await.map_err(crate::backend_error)?;
                }
                tx.commit().await.map_err(crate::backend_error)
            }

            async fn use_recovery_code(&self, user_id: uuid::Uuid, digest: &str, at: time::OffsetDateTime) -> pixeld_core::store::StoreResult<bool> {
                let r = sqlx::query("UPDATE recovery_codes SET used_at = $1 WHERE user_id = $2 AND digest = $3 AND used_at IS NULL")
                    .bind(ts(at)).bind(user_id).bind(digest)
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(r.rows_affected() == 1)
            }

            async fn recovery_codes_left(&self, user_id: uuid::Uuid) -> pixeld_core::store::StoreResult<i64> {
                let row = sqlx::query("SELECT COUNT(*) AS n FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL")
                    .bind(user_id).fetch_one(&self.pool).await.map_err(crate::backend_error)?;
                row.try_get::<i64, _>("n").map_err(crate::backend_error)
            }

            async fn create_one_time_token(&self, t: &pixeld_core::store::OneTimeToken) -> pixeld_core::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO one_time_tokens (digest, purpose, user_id, data, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&t.digest).bind(t.purpose.as_str()).bind(t.user_id).bind(&t.data)
                .bind(ts(t.created_at)).bind(ts(t.expires_at))
                .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(())
            }

            async fn consume_one_time_token(
                &self,
                digest: &str,
                purpose: pixeld_core::store::Purpose,
                now: time::OffsetDateTime,
            ) -> pixeld_core::store::StoreResult<Option<pixeld_core::store::OneTimeToken>> {
                let row = sqlx::query(
                    "UPDATE one_time_tokens SET used_at = $1 \
                     WHERE digest = $2 AND purpose = $3 AND used_at IS NULL AND expires_at > $1 \
                     RETURNING digest, user_id, data, created_at, expires_at",
                )
                .bind(ts(now)).bind(digest).bind(purpose.as_str())
                .fetch_optional(&self.pool).await.map_err(crate::backend_error)?;
                row.as_ref().map(|r| rows::one_time(r, purpose)).transpose().map_err(crate::backend_error)
            }

            async fn invalidate_one_time_tokens(
                &self,
                user_id: uuid::Uuid,
                purpose: pixeld_core::store::Purpose,
                now: time::OffsetDateTime,
            ) -> pixeld_core::store::StoreResult<()> {
                sqlx::query("UPDATE one_time_tokens SET used_at = $1 WHERE user_id = $2 AND purpose = $3 AND used_at IS NULL")
                    .bind(ts(now)).bind(user_id).bind(purpose.as_str())
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(())
            }

            async fn create_session(&self, s: &pixeld_core::store::Session) -> pixeld_core::store::StoreResult<()> {
                sqlx::query(concat!("INSERT INTO sessions (", session_cols!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"))
                    .bind(s.id).bind(&s.secret_digest).bind(s.user_id).bind(ts(s.created_at))
                    .bind(ts(s.last_seen_at)).bind(ts(s.expires_at)).bind(&s.ip).bind(&s.user_agent)
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(())
            }

            async fn session_by_digest(&self, digest: &str) -> pixeld_core::store::StoreResult<Option<pixeld_core::store::Session>> {
                let row = sqlx::query(concat!("SELECT ", session_cols!(), " FROM sessions WHERE secret_digest = $1"))
                    .bind(digest).fetch_optional(&self.pool).await.map_err(crate::backend_error)?;
                row.as_ref().map(rows::session).transpose().map_err(crate::backend_error)
            }

            async fn touch_session(&self, id: uuid::Uuid, at: time::OffsetDateTime) -> pixeld_core::store::StoreResult<()> {
                sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2").bind(ts(at)).bind(id)
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(())
            }

            async fn list_sessions(&self, user_id: uuid::Uuid) -> pixeld_core::store::StoreResult<Vec<pixeld_core::store::Session>> {
                let rows = sqlx::query(concat!("SELECT ", session_cols!(), " FROM sessions WHERE user_id = $1 ORDER BY id DESC LIMIT 1000"))
                    .bind(user_id).fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter().map(rows::session).collect::<Result<_, _>>().map_err(crate::backend_error)
            }

            async fn delete_session(&self, user_id: uuid::Uuid, id: uuid::Uuid) -> pixeld_core::store::StoreResult<bool> {
                let r = sqlx::query("DELETE FROM sessions WHERE id = $1 AND user_id = $2").bind(id).bind(user_id)
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(r.rows_affected() == 1)
            }

            async fn delete_other_sessions(&self, user_id: uuid::Uuid, keep: Option<uuid::Uuid>) -> pixeld_core::store::StoreResult<u64> {
                let r = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id <> $2")
                    .bind(user_id).bind(keep.unwrap_or(uuid::Uuid::nil()))
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(r.rows_affected())
            }

            async fn create_token(&self, t: &pixeld_core::store::ApiToken) -> pixeld_core::store::StoreResult<()> {
                sqlx::query(concat!("INSERT INTO api_tokens (", token_cols!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"))
                    .bind(t.id).bind(t.org_id).bind(t.user_id).bind(&t.name).bind(&t.prefix).bind(&t.secret_digest)
                    .bind(&t.scopes).bind(ts(t.created_at)).bind(t.expires_at.map(ts)).bind(t.last_used_at.map(ts))
                    .bind(&t.last_used_ip).bind(t.revoked_at.map(ts))
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(())
            }

            async fn token_by_digest(&self, digest: &str) -> pixeld_core::store::StoreResult<Option<pixeld_core::store::ApiToken>> {
                let row = sqlx::query(concat!("SELECT ", token_cols!(), " FROM api_tokens WHERE secret_digest = $1"))
                    .bind(digest).fetch_optional(&self.pool).await.map_err(crate::backend_error)?;
                row.as_ref().map(rows::token).transpose().map_err(crate::backend_error)
            }

            async fn list_tokens(
                &self,
                org_id: uuid::Uuid,
                user_id: Option<uuid::Uuid>,
                page: pixeld_core::page::PageRequest,
            ) -> pixeld_core::store::StoreResult<Vec<pixeld_core::store::ApiToken>> {
                let rows = sqlx::query(concat!("SELECT ", token_cols!(), " FROM api_tokens WHERE org_id = $1 AND ($2 IS NULL OR user_id = $2) AND id > $3 \
                     ORDER BY id LIMIT $4"))
                .bind(org_id).bind(user_id).bind(rows::after(&page)).bind(page.fetch())
                .fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter().map(rows::token).collect::<Result<_, _>>().map_err(crate::backend_error)
            }

            async fn token_with_owner(
                &self,
                digest: &str,
            ) -> pixeld_core::store::StoreResult<Option<(pixeld_core::store::ApiToken, pixeld_core::store::User, Option<pixeld_core::roles::Role>)>> {
                let row = sqlx::query(concat!(
                    "SELECT t.id AS t_id, t.org_id AS t_org_id, t.user_id AS t_user_id, t.name AS t_name, t.prefix AS t_prefix, \
                     t.secret_digest AS t_secret_digest, t.scopes AS t_scopes, t.created_at AS t_created_at, \
                     t.expires_at AS t_expires_at, t.last_used_at AS t_last_used_at, t.last_used_ip AS t_last_used_ip, \
                     t.revoked_at AS t_revoked_at, m.role AS member_role, ",
                    "u.id, u.email, u.name, u.password_hash, u.email_verified_at, u.is_admin, u.disabled_at, u.totp_secret, \
                     u.totp_pending_secret, u.totp_last_step, u.personal_org_id, u.created_at \
                     FROM api_tokens t JOIN users u ON u.id = t.user_id \
                     LEFT JOIN memberships m ON m.org_id = t.org_id AND m.user_id = t.user_id \
                     WHERE t.secret_digest = $1"
                ))
                .bind(digest).fetch_optional(&self.pool).await.map_err(crate::backend_error)?;
                let Some(r) = row else { return Ok(None) };
                let token = pixeld_core::store::ApiToken {
                    id: r.try_get("t_id").map_err(crate::backend_error)?,
                    org_id: r.try_get("t_org_id").map_err(crate::backend_error)?,
                    user_id: r.try_get("t_user_id").map_err(crate::backend_error)?,
                    name: r.try_get("t_name").map_err(crate::backend_error)?,
                    prefix: r.try_get("t_prefix").map_err(crate::backend_error)?,
                    secret_digest: r.try_get("t_secret_digest").map_err(crate::backend_error)?,
                    scopes: r.try_get("t_scopes").map_err(crate::backend_error)?,
                    created_at: read_ts(&r, "t_created_at").map_err(crate::backend_error)?,
                    expires_at: read_ts_opt(&r, "t_expires_at").map_err(crate::backend_error)?,
                    last_used_at: read_ts_opt(&r, "t_last_used_at").map_err(crate::backend_error)?,
                    last_used_ip: r.try_get("t_last_used_ip").map_err(crate::backend_error)?,
                    revoked_at: read_ts_opt(&r, "t_revoked_at").map_err(crate::backend_error)?,
                };
                let user = rows::user(&r).map_err(crate::backend_error)?;
                let role: Option<String> = r.try_get("member_role").map_err(crate::backend_error)?;
                let role = role.map(|s| s.parse::<pixeld_core::roles::Role>()).transpose().map_err(|e| pixeld_core::store::StoreError::Backend(e.to_string()))?;
                Ok(Some((token, user, role)))
            }

            async fn token_in_org(&self, org_id: uuid::Uuid, id: uuid::Uuid) -> pixeld_core::store::StoreResult<Option<pixeld_core::store::ApiToken>> {
                let row = sqlx::query(concat!("SELECT ", token_cols!(), " FROM api_tokens WHERE org_id = $1 AND id = $2"))
                    .bind(org_id).bind(id).fetch_optional(&self.pool).await.map_err(crate::backend_error)?;
                row.as_ref().map(rows::token).transpose().map_err(crate::backend_error)
            }

            async fn revoke_token(&self, org_id: uuid::Uuid, id: uuid::Uuid, at: time::OffsetDateTime) -> pixeld_core::store::StoreResult<bool> {
                let r = sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE org_id = $2 AND id = $3 AND revoked_at IS NULL")
                    .bind(ts(at)).bind(org_id).bind(id)
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(r.rows_affected() == 1)
            }

            async fn touch_token(&self, id: uuid::Uuid, at: time::OffsetDateTime, ip: Option<&str>) -> pixeld_core::store::StoreResult<()> {
                sqlx::query("UPDATE api_tokens SET last_used_at = $1, last_used_ip = $2 WHERE id = $3")
                    .bind(ts(at)).bind(ip).bind(id)
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(())
            }

            async fn create_org(&self, org: &pixeld_core::store::Org, owner: uuid::Uuid) -> pixeld_core::store::StoreResult<()> {
                let mut tx = self.pool.begin().await.map_err(crate::backend_error)?;
                sqlx::query("INSERT INTO orgs (id, name, personal, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(org.id).bind(&org.name).bind(org.personal).bind(ts(org.created_at))
                    .execute(&mut *tx).await.map_err(crate::backend_error)?;
                sqlx::query("INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, 'owner', $3)")
                    .bind(org.id).bind(owner).bind(ts(org.created_at))
                    .execute(&mut *tx).await.map_err(crate::backend_error)?;
                tx.commit().await.map_err(crate::backend_error)
            }

            async fn org_by_id(&self, id: uuid::Uuid) -> pixeld_core::store::StoreResult<Option<pixeld_core::store::Org>> {
                let row = sqlx::query("SELECT id, name, personal, created_at FROM orgs WHERE id = $1")
                    .bind(id).fetch_optional(&self.pool).await.map_err(crate::backend_error)?;
                row.as_ref().map(rows::org).transpose().map_err(crate::backend_error)
            }

            async fn rename_org(&self, id: uuid::Uuid, name: &str) -> pixeld_core::store::StoreResult<()> {
                self.exec_one(sqlx::query("UPDATE orgs SET name = $1 WHERE id = $2").bind(name).bind(id)).await
            }

            async fn orgs_of_user(&self, user_id: uuid::Uuid, page: pixeld_core::page::PageRequest) -> pixeld_core::store::StoreResult<Vec<pixeld_core::store::OrgWithRole>> {
                let rows = sqlx::query(
                    "SELECT o.id, o.name, o.personal, o.created_at, m.role FROM orgs o \
                     JOIN memberships m ON m.org_id = o.id WHERE m.user_id = $1 AND o.id > $2 ORDER BY o.id LIMIT $3",
                )
                .bind(user_id).bind(rows::after(&page)).bind(page.fetch())
                .fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter()
                    .map(|r| Ok(pixeld_core::store::OrgWithRole { org: rows::org(r)?, role: rows::role(r, "role")? }))
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(crate::backend_error)
            }

            async fn membership(&self, org_id: uuid::Uuid, user_id: uuid::Uuid) -> pixeld_core::store::StoreResult<Option<pixeld_core::store::Membership>> {
                let row = sqlx::query("SELECT org_id, user_id, role, created_at FROM memberships WHERE org_id = $1 AND user_id = $2")
                    .bind(org_id).bind(user_id).fetch_optional(&self.pool).await.map_err(crate::backend_error)?;
                row.as_ref()
                    .map(|r| {
                        Ok(pixeld_core::store::Membership {
                            org_id: r.try_get("org_id")?,
                            user_id: r.try_get("user_id")?,
                            role: rows::role(r, "role")?,
                            created_at: read_ts(r, "created_at")?,
                        })
                    })
                    .transpose()
                    .map_err(crate::backend_error)
            }

            async fn list_members(&self, org_id: uuid::Uuid, page: pixeld_core::page::PageRequest) -> pixeld_core::store::StoreResult<Vec<pixeld_core::store::Member>> {
                let rows = sqlx::query(
                    "SELECT m.user_id, u.email, u.name, m.role, m.created_at FROM memberships m \
                     JOIN users u ON u.id = m.user_id WHERE m.org_id = $1 AND m.user_id > $2 ORDER BY m.user_id LIMIT $3",
                )
                .bind(org_id).bind(rows::after(&page)).bind(page.fetch())
                .fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter().map(rows::member).collect::<Result<_, _>>().map_err(crate::backend_error)
            }

            async fn set_member_role(&self, org_id: uuid::Uuid, user_id: uuid::Uuid, role: pixeld_core::roles::Role) -> pixeld_core::store::StoreResult<()> {
                self.exec_one(
                    sqlx::query("UPDATE memberships SET role = $1 WHERE org_id = $2 AND user_id = $3")
                        .bind(role.as_str()).bind(org_id).bind(user_id),
                ).await
            }

            async fn remove_member(&self, org_id: uuid::Uuid, user_id: uuid::Uuid, at: time::OffsetDateTime) -> pixeld_core::store::StoreResult<bool> {
                let mut tx = self.pool.begin().await.map_err(crate::backend_error)?;
                let r = sqlx::query("DELETE FROM memberships WHERE org_id = $1 AND user_id = $2")
                    .bind(org_id).bind(user_id).execute(&mut *tx).await.map_err(crate::backend_error)?;
                sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE org_id = $2 AND user_id = $3 AND revoked_at IS NULL")
                    .bind(ts(at)).bind(org_id).bind(user_id)
                    .execute(&mut *tx).await.map_err(crate::backend_error)?;
                tx.commit().await.map_err(crate::backend_error)?;
                Ok(r.rows_affected() == 1)
            }

            async fn count_users(&self) -> pixeld_core::store::StoreResult<(i64, i64)> {
                let row = sqlx::query("SELECT COUNT(*) AS n, \
                        SUM(CASE WHEN disabled_at IS NULL THEN 0 ELSE 1 END) AS disabled FROM users")
                    .fetch_one(&self.pool).await.map_err(crate::backend_error)?;
                Ok((
                    row.try_get::<i64, _>("n").map_err(crate::backend_error)?,
                    row.try_get::<Option<i64>, _>("disabled").map_err(crate::backend_error)?.unwrap_or(0),
                ))
            }

            async fn count_owners(&self, org_id: uuid::Uuid) -> pixeld_core::store::StoreResult<i64> {
                let row = sqlx::query("SELECT COUNT(*) AS n FROM memberships WHERE org_id = $1 AND role = 'owner'")
                    .bind(org_id).fetch_one(&self.pool).await.map_err(crate::backend_error)?;
                row.try_get::<i64, _>("n").map_err(crate::backend_error)
            }

            async fn create_invite(&self, i: &pixeld_core::store::Invite) -> pixeld_core::store::StoreResult<()> {
                sqlx::query(concat!("INSERT INTO invites (", invite_cols!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"))
                    .bind(i.id).bind(i.org_id).bind(&i.email).bind(i.role.as_str()).bind(&i.secret_digest)
                    .bind(i.invited_by).bind(ts(i.created_at)).bind(ts(i.expires_at))
                    .bind(i.accepted_at.map(ts)).bind(i.revoked_at.map(ts))
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(())
            }

            async fn list_invites(&self, org_id: uuid::Uuid, page: pixeld_core::page::PageRequest) -> pixeld_core::store::StoreResult<Vec<pixeld_core::store::Invite>> {
                let rows = sqlx::query(concat!("SELECT ", invite_cols!(), " FROM invites WHERE org_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL \
                     AND id > $2 ORDER BY id LIMIT $3"))
                .bind(org_id).bind(rows::after(&page)).bind(page.fetch())
                .fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter().map(rows::invite).collect::<Result<_, _>>().map_err(crate::backend_error)
            }

            async fn invite_by_digest(&self, digest: &str) -> pixeld_core::store::StoreResult<Option<pixeld_core::store::Invite>> {
                let row = sqlx::query(concat!("SELECT ", invite_cols!(), " FROM invites WHERE secret_digest = $1"))
                    .bind(digest).fetch_optional(&self.pool).await.map_err(crate::backend_error)?;
                row.as_ref().map(rows::invite).transpose().map_err(crate::backend_error)
            }

            async fn accept_invite(&self, invite_id: uuid::Uuid, user_id: uuid::Uuid, at: time::OffsetDateTime) -> pixeld_core::store::StoreResult<bool> {
                let mut tx = self.pool.begin().await.map_err(crate::backend_error)?;
                let row = sqlx::query(
                    "UPDATE invites SET accepted_at = $1 WHERE id = $2 AND accepted_at IS NULL AND revoked_at IS NULL \
                     AND expires_at > $1 RETURNING org_id, role",
                )
                .bind(ts(at)).bind(invite_id)
                .fetch_optional(&mut *tx).await.map_err(crate::backend_error)?;
                let Some(row) = row else { return Ok(false) };
                let org_id: uuid::Uuid = row.try_get("org_id").map_err(crate::backend_error)?;
                let role: String = row.try_get("role").map_err(crate::backend_error)?;
                sqlx::query(
                    "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (org_id, user_id) DO NOTHING",
                )
                .bind(org_id).bind(user_id).bind(role).bind(ts(at))
                .execute(&mut *tx).await.map_err(crate::backend_error)?;
                tx.commit().await.map_err(crate::backend_error)?;
                Ok(true)
            }

            async fn revoke_invite(&self, org_id: uuid::Uuid, id: uuid::Uuid, at: time::OffsetDateTime) -> pixeld_core::store::StoreResult<bool> {
                let r = sqlx::query(
                    "UPDATE invites SET revoked_at = $1 WHERE org_id = $2 AND id = $3 AND accepted_at IS NULL AND revoked_at IS NULL",
                )
                .bind(ts(at)).bind(org_id).bind(id)
                .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(r.rows_affected() == 1)
            }

            async fn create_image(&self, i: &pixeld_core::store::ImageRecord) -> pixeld_core::store::StoreResult<()> {
                sqlx::query(concat!("INSERT INTO images (", image_cols!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"))
                    .bind(i.id).bind(i.org_id).bind(i.uploaded_by).bind(i.token_id).bind(&i.filename).bind(&i.source_url)
                    .bind(&i.format).bind(&i.mime).bind(i.bytes).bind(i.width).bind(i.height).bind(&i.sha256)
                    .bind(&i.analysis).bind(&i.description).bind(&i.object_key).bind(ts(i.created_at)).bind(ts(i.expires_at))
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(())
            }

            async fn image_in_org(&self, org_id: uuid::Uuid, id: uuid::Uuid) -> pixeld_core::store::StoreResult<Option<pixeld_core::store::ImageRecord>> {
                let row = sqlx::query(concat!("SELECT ", image_cols!(), " FROM images WHERE org_id = $1 AND id = $2"))
                    .bind(org_id).bind(id).fetch_optional(&self.pool).await.map_err(crate::backend_error)?;
                row.as_ref().map(rows::image).transpose().map_err(crate::backend_error)
            }

            async fn set_image_description(&self, org_id: uuid::Uuid, id: uuid::Uuid, description: &str) -> pixeld_core::store::StoreResult<bool> {
                let r = sqlx::query("UPDATE images SET description = $1 WHERE org_id = $2 AND id = $3")
                    .bind(description).bind(org_id).bind(id)
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(r.rows_affected() == 1)
            }

            async fn list_images(&self, org_id: uuid::Uuid, page: pixeld_core::page::PageRequest) -> pixeld_core::store::StoreResult<Vec<pixeld_core::store::ImageRecord>> {
                let rows = sqlx::query(concat!("SELECT ", image_cols!(), " FROM images WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT $3"))
                    .bind(org_id).bind(rows::after(&page)).bind(page.fetch())
                    .fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter().map(rows::image).collect::<Result<_, _>>().map_err(crate::backend_error)
            }

            async fn delete_image(
                &self,
                org_id: uuid::Uuid,
                id: uuid::Uuid,
            ) -> pixeld_core::store::StoreResult<Option<(pixeld_core::store::ImageRecord, Vec<pixeld_core::store::ImageVariant>)>> {
                let mut tx = self.pool.begin().await.map_err(crate::backend_error)?;
                // Write first: on SQLite a transaction that reads and then writes fails at once
                // (not after busy_timeout) when another connection wrote in between.
                let variants = sqlx::query(concat!("DELETE FROM image_variants WHERE image_id = $1 RETURNING ", variant_cols!()))
                    .bind(id).fetch_all(&mut *tx).await.map_err(crate::backend_error)?;
                let variants = variants.iter().map(rows::variant).collect::<Result<Vec<_>, _>>().map_err(crate::backend_error)?;
                let row = sqlx::query(concat!("DELETE FROM images WHERE org_id = $1 AND id = $2 RETURNING ", image_cols!()))
                    .bind(org_id).bind(id).fetch_optional(&mut *tx).await.map_err(crate::backend_error)?;
                let Some(row) = row else { return Ok(None) };
                let image = rows::image(&row).map_err(crate::backend_error)?;
                tx.commit().await.map_err(crate::backend_error)?;
                Ok(Some((image, variants)))
            }

            async fn expired_images(
                &self,
                now: time::OffsetDateTime,
                limit: i64,
            ) -> pixeld_core::store::StoreResult<Vec<(pixeld_core::store::ImageRecord, Vec<pixeld_core::store::ImageVariant>)>> {
                let rows = sqlx::query(concat!("SELECT ", image_cols!(), " FROM images WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2"))
                    .bind(ts(now)).bind(limit).fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    let image = rows::image(r).map_err(crate::backend_error)?;
                    let variants = sqlx::query(concat!("SELECT ", variant_cols!(), " FROM image_variants WHERE image_id = $1"))
                        .bind(image.id).fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                    let variants = variants.iter().map(rows::variant).collect::<Result<Vec<_>, _>>().map_err(crate::backend_error)?;
                    out.push((image, variants));
                }
                Ok(out)
            }

            async fn put_variant(&self, v: &pixeld_core::store::ImageVariant) -> pixeld_core::store::StoreResult<()> {
                sqlx::query(concat!(
                    "INSERT INTO image_variants (", variant_cols!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     ON CONFLICT (image_id, cache_key) DO UPDATE SET format = excluded.format, mime = excluded.mime, \
                     bytes = excluded.bytes, width = excluded.width, height = excluded.height, \
                     object_key = excluded.object_key, created_at = excluded.created_at"
                ))
                .bind(v.image_id).bind(&v.cache_key).bind(&v.format).bind(&v.mime).bind(v.bytes).bind(v.width)
                .bind(v.height).bind(&v.object_key).bind(ts(v.created_at))
                .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(())
            }

            async fn variant(&self, image_id: uuid::Uuid, cache_key: &str) -> pixeld_core::store::StoreResult<Option<pixeld_core::store::ImageVariant>> {
                let row = sqlx::query(concat!("SELECT ", variant_cols!(), " FROM image_variants WHERE image_id = $1 AND cache_key = $2"))
                    .bind(image_id).bind(cache_key).fetch_optional(&self.pool).await.map_err(crate::backend_error)?;
                row.as_ref().map(rows::variant).transpose().map_err(crate::backend_error)
            }

            async fn create_template(&self, t: &pixeld_core::store::TemplateRecord, v: &pixeld_core::store::TemplateVersion) -> pixeld_core::store::StoreResult<()> {
                let mut tx = self.pool.begin().await.map_err(crate::backend_error)?;
                sqlx::query(concat!("INSERT INTO templates (", template_cols!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7)"))
                    .bind(t.id).bind(t.org_id).bind(&t.name).bind(t.latest_version).bind(t.created_by)
                    .bind(ts(t.created_at)).bind(ts(t.updated_at))
                    .execute(&mut *tx).await.map_err(crate::backend_error)?;
                sqlx::query(concat!("INSERT INTO template_versions (", template_version_cols!(), ") VALUES ($1, $2, $3, $4, $5)"))
                    .bind(v.template_id).bind(v.version).bind(&v.body).bind(v.created_by).bind(ts(v.created_at))
                    .execute(&mut *tx).await.map_err(crate::backend_error)?;
                tx.commit().await.map_err(crate::backend_error)?;
                Ok(())
            }

            async fn template_in_org(&self, org_id: uuid::Uuid, id: uuid::Uuid) -> pixeld_core::store::StoreResult<Option<pixeld_core::store::TemplateRecord>> {
                let row = sqlx::query(concat!("SELECT ", template_cols!(), " FROM templates WHERE org_id = $1 AND id = $2"))
                    .bind(org_id).bind(id).fetch_optional(&self.pool).await.map_err(crate::backend_error)?;
                row.as_ref().map(rows::template).transpose().map_err(crate::backend_error)
            }

            async fn template_by_id(&self, id: uuid::Uuid) -> pixeld_core::store::StoreResult<Option<pixeld_core::store::TemplateRecord>> {
                let row = sqlx::query(concat!("SELECT ", template_cols!(), " FROM templates WHERE id = $1"))
                    .bind(id).fetch_optional(&self.pool).await.map_err(crate::backend_error)?;
                row.as_ref().map(rows::template).transpose().map_err(crate::backend_error)
            }

            async fn list_templates(&self, org_id: uuid::Uuid, page: pixeld_core::page::PageRequest) -> pixeld_core::store::StoreResult<Vec<pixeld_core::store::TemplateRecord>> {
                let rows = sqlx::query(concat!("SELECT ", template_cols!(), " FROM templates WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT $3"))
                    .bind(org_id).bind(rows::after(&page)).bind(page.fetch())
                    .fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter().map(rows::template).collect::<Result<_, _>>().map_err(crate::backend_error)
            }

            async fn add_template_version(
                &self,
                org_id: uuid::Uuid,
                v: &pixeld_core::store::TemplateVersion,
                name: Option<&str>,
            ) -> pixeld_core::store::StoreResult<bool> {
                let mut tx = self.pool.begin().await.map_err(crate::backend_error)?;
                // The conditional update is the lock: of two concurrent saves of the same
                // version, one changes a row and the other none.
                let r = sqlx::query(
                    "UPDATE templates SET latest_version = $1, updated_at = $2, name = COALESCE($3, name) \
                     WHERE org_id = $4 AND id = $5 AND latest_version = $6",
                )
                .bind(v.version).bind(ts(v.created_at)).bind(name).bind(org_id).bind(v.template_id).bind(v.version - 1)
                .execute(&mut *tx).await.map_err(crate::backend_error)?;
                if r.rows_affected() == 0 {
                    return Ok(false);
                }
                sqlx::query(concat!("INSERT INTO template_versions (", template_version_cols!(), ") VALUES ($1, $2, $3, $4, $5)"))
                    .bind(v.template_id).bind(v.version).bind(&v.body).bind(v.created_by).bind(ts(v.created_at))
                    .execute(&mut *tx).await.map_err(crate::backend_error)?;
                tx.commit().await.map_err(crate::backend_error)?;
                Ok(true)
            }

            async fn template_version(&self, template_id: uuid::Uuid, version: i32) -> pixeld_core::store::StoreResult<Option<pixeld_core::store::TemplateVersion>> {
                let row = sqlx::query(concat!("SELECT ", template_version_cols!(), " FROM template_versions WHERE template_id = $1 AND version = $2"))
                    .bind(template_id).bind(version).fetch_optional(&self.pool).await.map_err(crate::backend_error)?;
                row.as_ref().map(rows::template_version).transpose().map_err(crate::backend_error)
            }

            async fn list_template_versions(
                &self,
                template_id: uuid::Uuid,
                before_version: Option<i32>,
                limit: i64,
            ) -> pixeld_core::store::StoreResult<Vec<pixeld_core::store::TemplateVersion>> {
                let rows = sqlx::query(concat!("SELECT ", template_version_cols!(), " FROM template_versions WHERE template_id = $1 AND version < $2 ORDER BY version DESC LIMIT $3"))
                    .bind(template_id).bind(before_version.unwrap_or(i32::MAX)).bind(limit)
                    .fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter().map(rows::template_version).collect::<Result<_, _>>().map_err(crate::backend_error)
            }

            async fn delete_template(&self, org_id: uuid::Uuid, id: uuid::Uuid) -> pixeld_core::store::StoreResult<Option<Vec<pixeld_core::store::RenderCacheEntry>>> {
                let mut tx = self.pool.begin().await.map_err(crate::backend_error)?;
                let found = sqlx::query("DELETE FROM templates WHERE org_id = $1 AND id = $2")
                    .bind(org_id).bind(id).execute(&mut *tx).await.map_err(crate::backend_error)?;
                if found.rows_affected() == 0 {
                    return Ok(None);
                }
                sqlx::query("DELETE FROM template_versions WHERE template_id = $1")
                    .bind(id).execute(&mut *tx).await.map_err(crate::backend_error)?;
                let cached = sqlx::query(concat!("DELETE FROM render_cache WHERE template_id = $1 RETURNING ", render_cache_cols!()))
                    .bind(id).fetch_all(&mut *tx).await.map_err(crate::backend_error)?;
                let cached = cached.iter().map(rows::render_cache).collect::<Result<Vec<_>, _>>().map_err(crate::backend_error)?;
                tx.commit().await.map_err(crate::backend_error)?;
                Ok(Some(cached))
            }

            async fn create_signing_key(&self, k: &pixeld_core::store::SigningKey) -> pixeld_core::store::StoreResult<()> {
                sqlx::query(concat!("INSERT INTO signing_keys (", signing_key_cols!(), ") VALUES ($1, $2, $3, $4, $5)"))
                    .bind(k.id).bind(k.org_id).bind(&k.secret).bind(ts(k.created_at)).bind(k.revoked_at.map(ts))
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(())
            }

            async fn list_signing_keys(&self, org_id: uuid::Uuid) -> pixeld_core::store::StoreResult<Vec<pixeld_core::store::SigningKey>> {
                let rows = sqlx::query(concat!("SELECT ", signing_key_cols!(), " FROM signing_keys WHERE org_id = $1 ORDER BY id DESC"))
                    .bind(org_id).fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter().map(rows::signing_key).collect::<Result<_, _>>().map_err(crate::backend_error)
            }

            async fn revoke_signing_key(&self, org_id: uuid::Uuid, id: uuid::Uuid, at: time::OffsetDateTime) -> pixeld_core::store::StoreResult<bool> {
                let r = sqlx::query("UPDATE signing_keys SET revoked_at = $1 WHERE org_id = $2 AND id = $3 AND revoked_at IS NULL")
                    .bind(ts(at)).bind(org_id).bind(id).execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(r.rows_affected() == 1)
            }

            async fn put_render_cache(&self, e: &pixeld_core::store::RenderCacheEntry) -> pixeld_core::store::StoreResult<()> {
                sqlx::query(concat!(
                    "INSERT INTO render_cache (", render_cache_cols!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     ON CONFLICT (cache_key) DO UPDATE SET format = excluded.format, bytes = excluded.bytes, \
                     width = excluded.width, height = excluded.height, object_key = excluded.object_key, \
                     created_at = excluded.created_at"
                ))
                .bind(&e.cache_key).bind(e.org_id).bind(e.template_id).bind(&e.format).bind(e.bytes).bind(e.width)
                .bind(e.height).bind(&e.object_key).bind(ts(e.created_at))
                .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(())
            }

            async fn render_cache(&self, cache_key: &str) -> pixeld_core::store::StoreResult<Option<pixeld_core::store::RenderCacheEntry>> {
                let row = sqlx::query(concat!("SELECT ", render_cache_cols!(), " FROM render_cache WHERE cache_key = $1"))
                    .bind(cache_key).fetch_optional(&self.pool).await.map_err(crate::backend_error)?;
                row.as_ref().map(rows::render_cache).transpose().map_err(crate::backend_error)
            }

            async fn stale_render_cache(&self, before: time::OffsetDateTime, limit: i64) -> pixeld_core::store::StoreResult<Vec<pixeld_core::store::RenderCacheEntry>> {
                let rows = sqlx::query(concat!("SELECT ", render_cache_cols!(), " FROM render_cache WHERE created_at < $1 ORDER BY created_at LIMIT $2"))
                    .bind(ts(before)).bind(limit).fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter().map(rows::render_cache).collect::<Result<_, _>>().map_err(crate::backend_error)
            }

            async fn delete_render_cache(&self, keys: &[String]) -> pixeld_core::store::StoreResult<u64> {
                let mut tx = self.pool.begin().await.map_err(crate::backend_error)?;
                let mut n = 0;
                for k in keys {
                    n += sqlx::query("DELETE FROM render_cache WHERE cache_key = $1").bind(k)
                        .execute(&mut *tx).await.map_err(crate::backend_error)?.rows_affected();
                }
                tx.commit().await.map_err(crate::backend_error)?;
                Ok(n)
            }

            async fn log_processing(&self, l: &pixeld_core::store::ProcessingLog) -> pixeld_core::store::StoreResult<()> {
                sqlx::query(concat!("INSERT INTO processing_logs (", log_cols!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"))
                    .bind(l.id).bind(l.org_id).bind(l.token_id).bind(l.image_id).bind(&l.op).bind(l.bytes_in)
                    .bind(l.bytes_out).bind(l.ms).bind(&l.status).bind(ts(l.created_at))
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(())
            }

            async fn list_processing_logs(&self, org_id: uuid::Uuid, page: pixeld_core::page::PageRequest) -> pixeld_core::store::StoreResult<Vec<pixeld_core::store::ProcessingLog>> {
                let rows = sqlx::query(concat!("SELECT ", log_cols!(), " FROM processing_logs WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT $3"))
                    .bind(org_id).bind(rows::after(&page)).bind(page.fetch())
                    .fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter().map(rows::log).collect::<Result<_, _>>().map_err(crate::backend_error)
            }

            async fn purge_processing_logs(&self, before: time::OffsetDateTime) -> pixeld_core::store::StoreResult<u64> {
                let r = sqlx::query("DELETE FROM processing_logs WHERE created_at < $1").bind(ts(before))
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(r.rows_affected())
            }

            async fn enqueue_job(&self, j: &pixeld_core::store::Job) -> pixeld_core::store::StoreResult<()> {
                Self::insert_job(j).execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(())
            }

            async fn claim_job(&self, now: time::OffsetDateTime, lease_until: time::OffsetDateTime) -> pixeld_core::store::StoreResult<Option<pixeld_core::store::Job>> {
                let row = sqlx::query(concat!(
                    "UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_until = $1, updated_at = $2 \
                     WHERE id = (SELECT id FROM jobs \
                        WHERE (state = 'queued' AND run_at <= $2) OR (state = 'running' AND locked_until < $2) \
                        ORDER BY run_at LIMIT 1", $skip_locked, ") \
                     RETURNING ", job_cols!()))
                    .bind(ts(lease_until)).bind(ts(now))
                    .fetch_optional(&self.pool).await.map_err(crate::backend_error)?;
                row.as_ref().map(rows::job).transpose().map_err(crate::backend_error)
            }

            async fn finish_job(&self, id: uuid::Uuid, state: &str, error: Option<&str>, at: time::OffsetDateTime) -> pixeld_core::store::StoreResult<()> {
                self.exec_one(sqlx::query("UPDATE jobs SET state = $1, last_error = $2, locked_until = NULL, updated_at = $3 WHERE id = $4")
                    .bind(state).bind(error).bind(ts(at)).bind(id)).await
            }

            async fn retry_job(&self, id: uuid::Uuid, run_at: time::OffsetDateTime, error: &str, at: time::OffsetDateTime) -> pixeld_core::store::StoreResult<()> {
                self.exec_one(sqlx::query("UPDATE jobs SET state = 'queued', run_at = $1, last_error = $2, locked_until = NULL, updated_at = $3 WHERE id = $4")
                    .bind(ts(run_at)).bind(error).bind(ts(at)).bind(id)).await
            }

            async fn job(&self, id: uuid::Uuid) -> pixeld_core::store::StoreResult<Option<pixeld_core::store::Job>> {
                let row = sqlx::query(concat!("SELECT ", job_cols!(), " FROM jobs WHERE id = $1"))
                    .bind(id).fetch_optional(&self.pool).await.map_err(crate::backend_error)?;
                row.as_ref().map(rows::job).transpose().map_err(crate::backend_error)
            }

            async fn purge_jobs(&self, before: time::OffsetDateTime) -> pixeld_core::store::StoreResult<u64> {
                let r = sqlx::query("DELETE FROM jobs WHERE state IN ('done', 'failed') AND updated_at < $1")
                    .bind(ts(before)).execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(r.rows_affected())
            }

            async fn job_counts(&self, overdue_before: time::OffsetDateTime) -> pixeld_core::store::StoreResult<Vec<pixeld_core::store::JobCount>> {
                let rows = sqlx::query("SELECT kind, state, COUNT(*) AS n, \
                        SUM(CASE WHEN state = 'queued' AND run_at < $1 THEN 1 ELSE 0 END) AS overdue \
                        FROM jobs GROUP BY kind, state ORDER BY kind, state")
                    .bind(ts(overdue_before)).fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter().map(|r| Ok(pixeld_core::store::JobCount {
                    kind: r.try_get("kind")?,
                    state: r.try_get("state")?,
                    count: r.try_get("n")?,
                    overdue: r.try_get::<Option<i64>, _>("overdue")?.unwrap_or(0),
                })).collect::<Result<_, sqlx::Error>>().map_err(crate::backend_error)
            }

            async fn create_render_job(&self, r: &pixeld_core::store::RenderJob, j: &pixeld_core::store::Job) -> pixeld_core::store::StoreResult<()> {
                let mut tx = self.pool.begin().await.map_err(crate::backend_error)?;
                sqlx::query(concat!("INSERT INTO render_jobs (", render_job_cols!(), ") VALUES \
                    ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)"))
                    .bind(r.id).bind(r.org_id).bind(r.token_id).bind(r.template_id).bind(r.version).bind(&r.request)
                    .bind(&r.webhook_url).bind(&r.metadata).bind(&r.status).bind(&r.format).bind(&r.cache_key)
                    .bind(r.width).bind(r.height).bind(r.bytes).bind(r.cached).bind(&r.error_type).bind(&r.error_detail)
                    .bind(ts(r.created_at)).bind(r.finished_at.map(ts)).bind(r.batch_id)
                    .execute(&mut *tx).await.map_err(crate::backend_error)?;
                Self::insert_job(j).execute(&mut *tx).await.map_err(crate::backend_error)?;
                tx.commit().await.map_err(crate::backend_error)?;
                Ok(())
            }

            async fn render_job(&self, org_id: uuid::Uuid, id: uuid::Uuid) -> pixeld_core::store::StoreResult<Option<pixeld_core::store::RenderJob>> {
                let row = sqlx::query(concat!("SELECT ", render_job_cols!(), " FROM render_jobs WHERE org_id = $1 AND id = $2"))
                    .bind(org_id).bind(id).fetch_optional(&self.pool).await.map_err(crate::backend_error)?;
                row.as_ref().map(rows::render_job).transpose().map_err(crate::backend_error)
            }

            async fn list_render_jobs(&self, org_id: uuid::Uuid, page: pixeld_core::page::PageRequest) -> pixeld_core::store::StoreResult<Vec<pixeld_core::store::RenderJob>> {
                let rows = sqlx::query(concat!("SELECT ", render_job_cols!(), " FROM render_jobs WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT $3"))
                    .bind(org_id).bind(rows::after(&page)).bind(page.fetch())
                    .fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter().map(rows::render_job).collect::<Result<_, _>>().map_err(crate::backend_error)
            }

            async fn render_batch(&self, org_id: uuid::Uuid, batch_id: uuid::Uuid, limit: i64) -> pixeld_core::store::StoreResult<Vec<pixeld_core::store::RenderJob>> {
                let rows = sqlx::query(concat!("SELECT ", render_job_cols!(), " FROM render_jobs WHERE org_id = $1 AND batch_id = $2 ORDER BY id LIMIT $3"))
                    .bind(org_id).bind(batch_id).bind(limit)
                    .fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter().map(rows::render_job).collect::<Result<_, _>>().map_err(crate::backend_error)
            }

            async fn finish_render_job(&self, r: &pixeld_core::store::RenderJob) -> pixeld_core::store::StoreResult<()> {
                self.exec_one(sqlx::query("UPDATE render_jobs SET status = $1, cache_key = $2, width = $3, height = $4, bytes = $5, \
                        cached = $6, error_type = $7, error_detail = $8, finished_at = $9 WHERE id = $10")
                    .bind(&r.status).bind(&r.cache_key).bind(r.width).bind(r.height).bind(r.bytes).bind(r.cached)
                    .bind(&r.error_type).bind(&r.error_detail).bind(r.finished_at.map(ts)).bind(r.id)).await
            }

            async fn purge_render_jobs(&self, before: time::OffsetDateTime) -> pixeld_core::store::StoreResult<u64> {
                let r = sqlx::query("DELETE FROM render_jobs WHERE created_at < $1")
                    .bind(ts(before)).execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(r.rows_affected())
            }

            async fn create_webhook_secret(&self, k: &pixeld_core::store::SigningKey) -> pixeld_core::store::StoreResult<()> {
                sqlx::query(concat!("INSERT INTO webhook_secrets (", signing_key_cols!(), ") VALUES ($1, $2, $3, $4, $5)"))
                    .bind(k.id).bind(k.org_id).bind(&k.secret).bind(ts(k.created_at)).bind(k.revoked_at.map(ts))
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(())
            }

            async fn list_webhook_secrets(&self, org_id: uuid::Uuid) -> pixeld_core::store::StoreResult<Vec<pixeld_core::store::SigningKey>> {
                let rows = sqlx::query(concat!("SELECT ", signing_key_cols!(), " FROM webhook_secrets WHERE org_id = $1 ORDER BY id DESC"))
                    .bind(org_id).fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter().map(rows::signing_key).collect::<Result<_, _>>().map_err(crate::backend_error)
            }

            async fn revoke_webhook_secret(&self, org_id: uuid::Uuid, id: uuid::Uuid, at: time::OffsetDateTime) -> pixeld_core::store::StoreResult<bool> {
                let r = sqlx::query("UPDATE webhook_secrets SET revoked_at = $1 WHERE org_id = $2 AND id = $3 AND revoked_at IS NULL")
                    .bind(ts(at)).bind(org_id).bind(id).execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(r.rows_affected() == 1)
            }

            async fn create_webhook_delivery(&self, d: &pixeld_core::store::WebhookDelivery, j: &pixeld_core::store::Job) -> pixeld_core::store::StoreResult<()> {
                let mut tx = self.pool.begin().await.map_err(crate::backend_error)?;
                sqlx::query(concat!("INSERT INTO webhook_deliveries (", delivery_cols!(), ") VALUES \
                    ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"))
                    .bind(d.id).bind(d.org_id).bind(&d.event).bind(&d.url).bind(&d.payload).bind(&d.status)
                    .bind(d.attempts).bind(d.next_attempt_at.map(ts)).bind(d.last_status).bind(&d.last_error)
                    .bind(ts(d.created_at)).bind(d.delivered_at.map(ts))
                    .execute(&mut *tx).await.map_err(crate::backend_error)?;
                Self::insert_job(j).execute(&mut *tx).await.map_err(crate::backend_error)?;
                tx.commit().await.map_err(crate::backend_error)?;
                Ok(())
            }

            async fn webhook_delivery(&self, org_id: Option<uuid::Uuid>, id: uuid::Uuid) -> pixeld_core::store::StoreResult<Option<pixeld_core::store::WebhookDelivery>> {
                let row = sqlx::query(concat!("SELECT ", delivery_cols!(), " FROM webhook_deliveries WHERE id = $1 AND ($2 IS NULL OR org_id = $2)"))
                    .bind(id).bind(org_id).fetch_optional(&self.pool).await.map_err(crate::backend_error)?;
                row.as_ref().map(rows::delivery).transpose().map_err(crate::backend_error)
            }

            async fn list_webhook_deliveries(&self, org_id: uuid::Uuid, page: pixeld_core::page::PageRequest) -> pixeld_core::store::StoreResult<Vec<pixeld_core::store::WebhookDelivery>> {
                let rows = sqlx::query(concat!("SELECT ", delivery_cols!(), " FROM webhook_deliveries WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT $3"))
                    .bind(org_id).bind(rows::after(&page)).bind(page.fetch())
                    .fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter().map(rows::delivery).collect::<Result<_, _>>().map_err(crate::backend_error)
            }

            async fn record_webhook_attempt(&self, d: &pixeld_core::store::WebhookDelivery, a: &pixeld_core::store::WebhookAttempt) -> pixeld_core::store::StoreResult<()> {
                let mut tx = self.pool.begin().await.map_err(crate::backend_error)?;
                sqlx::query(concat!("INSERT INTO webhook_attempts (", attempt_cols!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"))
                    .bind(a.id).bind(a.delivery_id).bind(a.attempt).bind(ts(a.at)).bind(a.status_code).bind(&a.error)
                    .bind(&a.response_excerpt).bind(a.ms)
                    .execute(&mut *tx).await.map_err(crate::backend_error)?;
                Self::update_delivery(d).execute(&mut *tx).await.map_err(crate::backend_error)?;
                tx.commit().await.map_err(crate::backend_error)?;
                Ok(())
            }

            async fn webhook_attempts(&self, delivery_id: uuid::Uuid) -> pixeld_core::store::StoreResult<Vec<pixeld_core::store::WebhookAttempt>> {
                let rows = sqlx::query(concat!("SELECT ", attempt_cols!(), " FROM webhook_attempts WHERE delivery_id = $1 ORDER BY attempt"))
                    .bind(delivery_id).fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter().map(rows::attempt).collect::<Result<_, _>>().map_err(crate::backend_error)
            }

            async fn requeue_webhook_delivery(&self, d: &pixeld_core::store::WebhookDelivery, j: &pixeld_core::store::Job) -> pixeld_core::store::StoreResult<()> {
                let mut tx = self.pool.begin().await.map_err(crate::backend_error)?;
                Self::update_delivery(d).execute(&mut *tx).await.map_err(crate::backend_error)?;
                Self::insert_job(j).execute(&mut *tx).await.map_err(crate::backend_error)?;
                tx.commit().await.map_err(crate::backend_error)?;
                Ok(())
            }

            async fn purge_webhook_deliveries(&self, before: time::OffsetDateTime) -> pixeld_core::store::StoreResult<u64> {
                let mut tx = self.pool.begin().await.map_err(crate::backend_error)?;
                sqlx::query("DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT id FROM webhook_deliveries WHERE created_at < $1)")
                    .bind(ts(before)).execute(&mut *tx).await.map_err(crate::backend_error)?;
                let r = sqlx::query("DELETE FROM webhook_deliveries WHERE created_at < $1")
                    .bind(ts(before)).execute(&mut *tx).await.map_err(crate::backend_error)?;
                tx.commit().await.map_err(crate::backend_error)?;
                Ok(r.rows_affected())
            }

            async fn create_font(&self, f: &pixeld_core::store::FontRecord) -> pixeld_core::store::StoreResult<()> {
                sqlx::query(concat!("INSERT INTO fonts (", font_cols!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"))
                    .bind(f.id).bind(f.org_id).bind(&f.families).bind(&f.file_name).bind(&f.format).bind(f.bytes)
                    .bind(&f.sha256).bind(&f.object_key).bind(f.created_by).bind(ts(f.created_at))
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(())
            }

            async fn list_fonts(&self, org_id: uuid::Uuid) -> pixeld_core::store::StoreResult<Vec<pixeld_core::store::FontRecord>> {
                let rows = sqlx::query(concat!("SELECT ", font_cols!(), " FROM fonts WHERE org_id = $1 ORDER BY id"))
                    .bind(org_id).fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter().map(rows::font).collect::<Result<_, _>>().map_err(crate::backend_error)
            }

            async fn delete_font(&self, org_id: uuid::Uuid, id: uuid::Uuid) -> pixeld_core::store::StoreResult<Option<pixeld_core::store::FontRecord>> {
                let row = sqlx::query(concat!("DELETE FROM fonts WHERE org_id = $1 AND id = $2 RETURNING ", font_cols!()))
                    .bind(org_id).bind(id).fetch_optional(&self.pool).await.map_err(crate::backend_error)?;
                row.as_ref().map(rows::font).transpose().map_err(crate::backend_error)
            }

            async fn ledger_credit(&self, e: &pixeld_core::ledger::LedgerEntry) -> pixeld_core::store::StoreResult<pixeld_core::ledger::Applied<pixeld_core::ledger::LedgerEntry>> {
                self.ledger_credit_tx(e).await
            }

            async fn ledger_debit(&self, e: &pixeld_core::ledger::LedgerEntry, now: time::OffsetDateTime) -> pixeld_core::store::StoreResult<pixeld_core::ledger::Debit<pixeld_core::ledger::LedgerEntry>> {
                self.ledger_debit_tx(e, now).await
            }

            async fn ledger_reserve(&self, r: &pixeld_core::ledger::Reservation, e: &pixeld_core::ledger::LedgerEntry, now: time::OffsetDateTime) -> pixeld_core::store::StoreResult<pixeld_core::ledger::Debit<pixeld_core::ledger::Reservation>> {
                self.ledger_reserve_grouped(r, e, now).await
            }

            async fn ledger_finish(&self, org_id: uuid::Uuid, reservation_id: uuid::Uuid, how: pixeld_core::ledger::Finish, e: &pixeld_core::ledger::LedgerEntry, now: time::OffsetDateTime) -> pixeld_core::store::StoreResult<pixeld_core::ledger::Finished> {
                match how {
                    pixeld_core::ledger::Finish::Settle { cost } => self.ledger_settle_grouped(org_id, reservation_id, cost, e, now).await,
                    _ => self.ledger_finish_tx(org_id, reservation_id, how, e, now).await,
                }
            }

            async fn ledger_expire(&self, now: time::OffsetDateTime, limit: i64) -> pixeld_core::store::StoreResult<u64> {
                self.ledger_expire_tx(now, limit).await
            }

            async fn ledger_balance(&self, org_id: uuid::Uuid) -> pixeld_core::store::StoreResult<i64> {
                let row = sqlx::query("SELECT balance FROM credit_balances WHERE org_id = $1")
                    .bind(org_id).fetch_optional(&self.pool).await.map_err(crate::backend_error)?;
                Ok(row.map(|r| r.try_get::<i64, _>("balance")).transpose().map_err(crate::backend_error)?.unwrap_or(0))
            }

            async fn ledger_entries(&self, org_id: uuid::Uuid, filter: &pixeld_core::ledger::EntryFilter, page: pixeld_core::page::PageRequest) -> pixeld_core::store::StoreResult<Vec<pixeld_core::ledger::LedgerEntry>> {
                // Kinds are a fixed vocabulary: matched as a comma-separated list so the
                // statement stays static on both backends.
                let kinds: String = filter.kinds.iter().map(|k| format!(",{},", k.as_str())).collect();
                let far = time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(365 * 1000);
                let rows = sqlx::query(concat!(
                    "SELECT ", entry_cols!(), " FROM credit_entries WHERE org_id = $1 AND id > $2 \
                     AND created_at >= $3 AND created_at < $4 \
                     AND ($5 = '' OR $5 LIKE '%,' || kind || ',%') ORDER BY id LIMIT $6"))
                    .bind(org_id).bind(rows::after(&page))
                    .bind(ts(filter.since.unwrap_or(time::OffsetDateTime::UNIX_EPOCH)))
                    .bind(ts(filter.until.unwrap_or(far)))
                    .bind(kinds).bind(page.fetch())
                    .fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter().map(ledger_sql::entry).collect::<Result<_, _>>().map_err(crate::backend_error)
            }

            async fn ledger_entry_by_key(&self, org_id: uuid::Uuid, key: &str) -> pixeld_core::store::StoreResult<Option<pixeld_core::ledger::LedgerEntry>> {
                ledger_sql::entry_by_key(&self.pool, org_id, key).await
            }

            async fn reservation(&self, org_id: uuid::Uuid, id: uuid::Uuid) -> pixeld_core::store::StoreResult<Option<pixeld_core::ledger::Reservation>> {
                ledger_sql::reservation_by_id(&self.pool, org_id, id).await
            }

            async fn stale_reservations(&self, now: time::OffsetDateTime, limit: i64) -> pixeld_core::store::StoreResult<Vec<pixeld_core::ledger::Reservation>> {
                let rows = sqlx::query(concat!("SELECT ", reservation_cols!(), " FROM credit_reservations \
                                                WHERE state = 'held' AND expires_at < $1 ORDER BY expires_at LIMIT $2"))
                    .bind(ts(now)).bind(limit)
                    .fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter().map(ledger_sql::reservation).collect::<Result<_, _>>().map_err(crate::backend_error)
            }

            async fn ledger_totals(&self, org_id: uuid::Uuid) -> pixeld_core::store::StoreResult<pixeld_core::ledger::Totals> {
                self.ledger_totals_q(org_id).await
            }

            fn ledger_group_stats(&self) -> pixeld_core::ledger::GroupStats {
                self.groups.stats()
            }

            async fn create_order(&self, o: &pixeld_core::billing::Order) -> pixeld_core::store::StoreResult<()> {
                sqlx::query(concat!("INSERT INTO payment_orders (", order_cols!(), ") \
                                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"))
                    .bind(o.id).bind(o.org_id).bind(o.created_by).bind(&o.provider).bind(&o.item_kind).bind(&o.item_id)
                    .bind(o.credits).bind(o.amount_minor).bind(&o.currency).bind(o.status.as_str())
                    .bind(&o.provider_ref).bind(&o.payment_ref).bind(&o.customer_ref).bind(o.refunded_minor)
                    .bind(ts(o.created_at)).bind(o.paid_at.map(ts)).bind(ts(o.updated_at))
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(())
            }

            async fn set_order_checkout(&self, id: uuid::Uuid, provider_ref: Option<&str>, status: pixeld_core::billing::OrderStatus, at: time::OffsetDateTime) -> pixeld_core::store::StoreResult<()> {
                self.exec_one(sqlx::query("UPDATE payment_orders SET provider_ref = $1, status = $2, updated_at = $3 WHERE id = $4")
                    .bind(provider_ref).bind(status.as_str()).bind(ts(at)).bind(id)).await
            }

            async fn order_in_org(&self, org_id: uuid::Uuid, id: uuid::Uuid) -> pixeld_core::store::StoreResult<Option<pixeld_core::billing::Order>> {
                let row = sqlx::query(concat!("SELECT ", order_cols!(), " FROM payment_orders WHERE org_id = $1 AND id = $2"))
                    .bind(org_id).bind(id).fetch_optional(&self.pool).await.map_err(crate::backend_error)?;
                row.as_ref().map(rows::order).transpose().map_err(crate::backend_error)
            }

            async fn order_by_id(&self, id: uuid::Uuid) -> pixeld_core::store::StoreResult<Option<pixeld_core::billing::Order>> {
                let row = sqlx::query(concat!("SELECT ", order_cols!(), " FROM payment_orders WHERE id = $1"))
                    .bind(id).fetch_optional(&self.pool).await.map_err(crate::backend_error)?;
                row.as_ref().map(rows::order).transpose().map_err(crate::backend_error)
            }

            async fn order_by_provider_ref(&self, provider: &str, r: &str) -> pixeld_core::store::StoreResult<Option<pixeld_core::billing::Order>> {
                let row = sqlx::query(concat!("SELECT ", order_cols!(), " FROM payment_orders WHERE provider = $1 AND provider_ref = $2"))
                    .bind(provider).bind(r).fetch_optional(&self.pool).await.map_err(crate::backend_error)?;
                row.as_ref().map(rows::order).transpose().map_err(crate::backend_error)
            }

            async fn order_by_payment_ref(&self, provider: &str, r: &str) -> pixeld_core::store::StoreResult<Option<pixeld_core::billing::Order>> {
                let row = sqlx::query(concat!("SELECT ", order_cols!(), " FROM payment_orders \
                                               WHERE provider = $1 AND payment_ref = $2 AND status IN ('paid', 'refunded') \
                                               ORDER BY id LIMIT 1"))
                    .bind(provider).bind(r).fetch_optional(&self.pool).await.map_err(crate::backend_error)?;
                row.as_ref().map(rows::order).transpose().map_err(crate::backend_error)
            }

            async fn mark_order_paid(&self, id: uuid::Uuid, payment_ref: Option<&str>, customer_ref: Option<&str>, at: time::OffsetDateTime) -> pixeld_core::store::StoreResult<bool> {
                let r = sqlx::query("UPDATE payment_orders SET status = 'paid', payment_ref = COALESCE($1, payment_ref), \
                                     customer_ref = COALESCE($2, customer_ref), paid_at = $3, updated_at = $3 \
                                     WHERE id = $4 AND status IN ('open', 'failed')")
                    .bind(payment_ref).bind(customer_ref).bind(ts(at)).bind(id)
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(r.rows_affected() == 1)
            }

            async fn claim_order_refund(&self, id: uuid::Uuid, from: i64, to: i64, status: pixeld_core::billing::OrderStatus, at: time::OffsetDateTime) -> pixeld_core::store::StoreResult<bool> {
                let r = sqlx::query("UPDATE payment_orders SET refunded_minor = $1, status = $2, updated_at = $3 \
                                     WHERE id = $4 AND refunded_minor = $5")
                    .bind(to).bind(status.as_str()).bind(ts(at)).bind(id).bind(from)
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(r.rows_affected() == 1)
            }

            async fn list_orders(&self, org_id: uuid::Uuid, page: pixeld_core::page::PageRequest) -> pixeld_core::store::StoreResult<Vec<pixeld_core::billing::Order>> {
                let rows = sqlx::query(concat!("SELECT ", order_cols!(), " FROM payment_orders WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT $3"))
                    .bind(org_id).bind(rows::after(&page)).bind(page.fetch())
                    .fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter().map(rows::order).collect::<Result<_, _>>().map_err(crate::backend_error)
            }

            async fn latest_customer_ref(&self, org_id: uuid::Uuid, provider: &str) -> pixeld_core::store::StoreResult<Option<String>> {
                let row = sqlx::query("SELECT customer_ref FROM payment_orders WHERE org_id = $1 AND provider = $2 \
                                       AND customer_ref IS NOT NULL ORDER BY id DESC LIMIT 1")
                    .bind(org_id).bind(provider).fetch_optional(&self.pool).await.map_err(crate::backend_error)?;
                row.map(|r| r.try_get::<String, _>("customer_ref")).transpose().map_err(crate::backend_error)
            }

            async fn payment_event(&self, provider: &str, event_id: &str) -> pixeld_core::store::StoreResult<Option<String>> {
                let row = sqlx::query("SELECT outcome FROM payment_events WHERE provider = $1 AND event_id = $2")
                    .bind(provider).bind(event_id).fetch_optional(&self.pool).await.map_err(crate::backend_error)?;
                row.map(|r| r.try_get::<String, _>("outcome")).transpose().map_err(crate::backend_error)
            }

            async fn anonymise_financial_records(&self, org_id: uuid::Uuid, buyer: &pixeld_core::invoices::Party) -> pixeld_core::store::StoreResult<u64> {
                let buyer = serde_json::to_string(buyer).map_err(|e| pixeld_core::store::StoreError::Backend(e.to_string()))?;
                let mut tx = self.pool.begin().await.map_err(crate::backend_error)?;
                let mut n = 0;
                n += sqlx::query("UPDATE invoices SET buyer = $1 WHERE org_id = $2").bind(&buyer).bind(org_id)
                    .execute(&mut *tx).await.map_err(crate::backend_error)?.rows_affected();
                n += sqlx::query("DELETE FROM billing_profiles WHERE org_id = $1").bind(org_id)
                    .execute(&mut *tx).await.map_err(crate::backend_error)?.rows_affected();
                n += sqlx::query("UPDATE payment_orders SET created_by = NULL, customer_ref = NULL WHERE org_id = $1").bind(org_id)
                    .execute(&mut *tx).await.map_err(crate::backend_error)?.rows_affected();
                // Operators' own entries keep who made them; the customer's side loses its people.
                n += sqlx::query("UPDATE credit_entries SET token_id = NULL, \
                                  actor_id = CASE WHEN source = 'admin' THEN actor_id ELSE NULL END WHERE org_id = $1")
                    .bind(org_id)
                    .execute(&mut *tx).await.map_err(crate::backend_error)?.rows_affected();
                n += sqlx::query("UPDATE credit_reservations SET token_id = NULL WHERE org_id = $1").bind(org_id)
                    .execute(&mut *tx).await.map_err(crate::backend_error)?.rows_affected();
                n += sqlx::query("UPDATE subscriptions SET customer_ref = NULL WHERE org_id = $1").bind(org_id)
                    .execute(&mut *tx).await.map_err(crate::backend_error)?.rows_affected();
                tx.commit().await.map_err(crate::backend_error)?;
                Ok(n)
            }

            async fn purge_payment_events(&self, before: time::OffsetDateTime) -> pixeld_core::store::StoreResult<u64> {
                let r = sqlx::query("DELETE FROM payment_events WHERE received_at < $1").bind(ts(before))
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(r.rows_affected())
            }

            async fn purge_financial_records(&self, before: time::OffsetDateTime) -> pixeld_core::store::StoreResult<u64> {
                let i = sqlx::query("DELETE FROM invoices WHERE issued_at < $1").bind(ts(before))
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                let o = sqlx::query("DELETE FROM payment_orders WHERE created_at < $1 AND id NOT IN (SELECT order_id FROM invoices)")
                    .bind(ts(before))
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(i.rows_affected() + o.rows_affected())
            }

            async fn record_payment_event(&self, provider: &str, event_id: &str, event_type: &str, outcome: &str, at: time::OffsetDateTime) -> pixeld_core::store::StoreResult<()> {
                sqlx::query("INSERT INTO payment_events (provider, event_id, event_type, outcome, received_at) \
                             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (provider, event_id) DO NOTHING")
                    .bind(provider).bind(event_id).bind(event_type).bind(outcome).bind(ts(at))
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(())
            }

            async fn billing_profile(&self, org_id: uuid::Uuid) -> pixeld_core::store::StoreResult<Option<pixeld_core::invoices::BillingProfile>> {
                let row = sqlx::query("SELECT org_id, party, updated_at FROM billing_profiles WHERE org_id = $1")
                    .bind(org_id).fetch_optional(&self.pool).await.map_err(crate::backend_error)?;
                let Some(row) = row else { return Ok(None) };
                let party: String = row.try_get("party").map_err(crate::backend_error)?;
                Ok(Some(pixeld_core::invoices::BillingProfile {
                    org_id,
                    party: serde_json::from_str(&party).map_err(|e| pixeld_core::store::StoreError::Backend(e.to_string()))?,
                    updated_at: read_ts(&row, "updated_at").map_err(crate::backend_error)?,
                }))
            }

            async fn put_billing_profile(&self, b: &pixeld_core::invoices::BillingProfile) -> pixeld_core::store::StoreResult<()> {
                let party = serde_json::to_string(&b.party).map_err(|e| pixeld_core::store::StoreError::Backend(e.to_string()))?;
                sqlx::query("INSERT INTO billing_profiles (org_id, party, updated_at) VALUES ($1, $2, $3) \
                             ON CONFLICT (org_id) DO UPDATE SET party = excluded.party, updated_at = excluded.updated_at")
                    .bind(b.org_id).bind(party).bind(ts(b.updated_at))
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(())
            }

            async fn create_invoice(&self, inv: &pixeld_core::invoices::Invoice, prefix: &str) -> pixeld_core::store::StoreResult<pixeld_core::ledger::Applied<pixeld_core::invoices::Invoice>> {
                use pixeld_core::ledger::Applied;
                let existing = |row: Option<$row>| -> pixeld_core::store::StoreResult<Option<pixeld_core::invoices::Invoice>> {
                    row.as_ref().map(rows::invoice).transpose().map_err(crate::backend_error)
                };
                let by_order = concat!("SELECT ", invoice_cols!(), " FROM invoices WHERE order_id = $1");
                if let Some(first) = existing(sqlx::query(by_order).bind(inv.order_id).fetch_optional(&self.pool).await.map_err(crate::backend_error)?)? {
                    return Ok(Applied::Replayed(first));
                }
                let enc = |e: serde_json::Error| pixeld_core::store::StoreError::Backend(e.to_string());
                let (seller, buyer, lines) = (
                    serde_json::to_string(&inv.seller).map_err(enc)?,
                    serde_json::to_string(&inv.buyer).map_err(enc)?,
                    serde_json::to_string(&inv.lines).map_err(enc)?,
                );
                let mut tx = self.pool.begin().await.map_err(crate::backend_error)?;
                // The counter row is the per-organisation lock, and it moves only if the
                // invoice is written: numbers have no gaps.
                let row = sqlx::query("INSERT INTO invoice_counters (org_id, last) VALUES ($1, 1) \
                                       ON CONFLICT (org_id) DO UPDATE SET last = invoice_counters.last + 1 RETURNING last")
                    .bind(inv.org_id).fetch_one(&mut *tx).await.map_err(crate::backend_error)?;
                let number: i64 = row.try_get("last").map_err(crate::backend_error)?;
                let mut inv = inv.clone();
                inv.number = number;
                // One series per organisation (the issue's gapless numbering), named by the
                // organisation so numbers are unique across the seller's customers.
                let series = inv.org_id.simple().to_string()[..8].to_ascii_uppercase();
                inv.display_number = if prefix.is_empty() { format!("{series}-{number:06}") } else { format!("{prefix}-{series}-{number:06}") };
                let r = sqlx::query(concat!("INSERT INTO invoices (", invoice_cols!(), ") \
                                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
                                     ON CONFLICT (order_id) DO NOTHING"))
                    .bind(inv.id).bind(inv.org_id).bind(inv.number).bind(&inv.display_number).bind(inv.order_id)
                    .bind(&inv.currency).bind(inv.subtotal_minor).bind(inv.tax_minor).bind(inv.total_minor)
                    .bind(&inv.tax_name).bind(inv.tax_rate_bps)
                    .bind(seller).bind(buyer).bind(lines)
                    .bind(&inv.provider).bind(ts(inv.issued_at))
                    .execute(&mut *tx).await.map_err(crate::backend_error)?;
                if r.rows_affected() == 0 {
                    // Issued concurrently: roll the counter back with this transaction.
                    drop(tx);
                    let first = existing(sqlx::query(by_order).bind(inv.order_id).fetch_optional(&self.pool).await.map_err(crate::backend_error)?)?;
                    return first.map(Applied::Replayed).ok_or(pixeld_core::store::StoreError::NotFound);
                }
                tx.commit().await.map_err(crate::backend_error)?;
                Ok(Applied::New(inv))
            }

            async fn invoice_in_org(&self, org_id: uuid::Uuid, id: uuid::Uuid) -> pixeld_core::store::StoreResult<Option<pixeld_core::invoices::Invoice>> {
                let row = sqlx::query(concat!("SELECT ", invoice_cols!(), " FROM invoices WHERE org_id = $1 AND id = $2"))
                    .bind(org_id).bind(id).fetch_optional(&self.pool).await.map_err(crate::backend_error)?;
                row.as_ref().map(rows::invoice).transpose().map_err(crate::backend_error)
            }

            async fn list_invoices(&self, org_id: uuid::Uuid, page: pixeld_core::page::PageRequest) -> pixeld_core::store::StoreResult<Vec<pixeld_core::invoices::Invoice>> {
                let rows = sqlx::query(concat!("SELECT ", invoice_cols!(), " FROM invoices WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT $3"))
                    .bind(org_id).bind(rows::after(&page)).bind(page.fetch())
                    .fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter().map(rows::invoice).collect::<Result<_, _>>().map_err(crate::backend_error)
            }

            async fn upsert_subscription(&self, s: &pixeld_core::plans::Subscription) -> pixeld_core::store::StoreResult<()> {
                sqlx::query(concat!("INSERT INTO subscriptions (", subscription_cols!(), ") \
                                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                                     ON CONFLICT (provider, provider_ref) DO UPDATE SET plan_id = excluded.plan_id, \
                                     status = excluded.status, customer_ref = COALESCE(excluded.customer_ref, subscriptions.customer_ref), \
                                     current_period_end = COALESCE(excluded.current_period_end, subscriptions.current_period_end), \
                                     cancel_at_period_end = excluded.cancel_at_period_end, updated_at = excluded.updated_at, \
                                     last_event_at = excluded.last_event_at"))
                    .bind(s.id).bind(s.org_id).bind(&s.provider).bind(&s.plan_id).bind(&s.status).bind(&s.provider_ref)
                    .bind(&s.customer_ref).bind(s.current_period_end.map(ts)).bind(s.cancel_at_period_end)
                    .bind(ts(s.created_at)).bind(ts(s.updated_at)).bind(s.last_event_at)
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(())
            }

            async fn subscription_by_ref(&self, provider: &str, r: &str) -> pixeld_core::store::StoreResult<Option<pixeld_core::plans::Subscription>> {
                let row = sqlx::query(concat!("SELECT ", subscription_cols!(), " FROM subscriptions WHERE provider = $1 AND provider_ref = $2"))
                    .bind(provider).bind(r).fetch_optional(&self.pool).await.map_err(crate::backend_error)?;
                row.as_ref().map(rows::subscription).transpose().map_err(crate::backend_error)
            }

            async fn live_subscription(&self, org_id: uuid::Uuid) -> pixeld_core::store::StoreResult<Option<pixeld_core::plans::Subscription>> {
                let row = sqlx::query(concat!("SELECT ", subscription_cols!(), " FROM subscriptions \
                                               WHERE org_id = $1 AND status IN ('active', 'trialing', 'past_due') ORDER BY id DESC LIMIT 1"))
                    .bind(org_id).fetch_optional(&self.pool).await.map_err(crate::backend_error)?;
                row.as_ref().map(rows::subscription).transpose().map_err(crate::backend_error)
            }

            async fn idempotency_claim(
                &self,
                caller: &str,
                key: &str,
                request_digest: &str,
                now: time::OffsetDateTime,
            ) -> pixeld_core::store::StoreResult<pixeld_core::store::IdempotencyClaim> {
                use pixeld_core::store::{IdempotencyClaim, IdempotentResponse};
                // A key older than the retention window is forgotten and may be reused.
                sqlx::query("DELETE FROM idempotency_keys WHERE caller = $1 AND key = $2 AND created_at < $3")
                    .bind(caller).bind(key).bind(ts(now - pixeld_core::idempotency::KEEP_FOR))
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                let inserted = sqlx::query(
                    "INSERT INTO idempotency_keys (caller, key, request_digest, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (caller, key) DO NOTHING",
                )
                .bind(caller).bind(key).bind(request_digest).bind(ts(now))
                .execute(&self.pool).await.map_err(crate::backend_error)?;
                if inserted.rows_affected() == 1 {
                    return Ok(IdempotencyClaim::Fresh);
                }
                let row = sqlx::query(
                    "SELECT request_digest, status, content_type, body FROM idempotency_keys WHERE caller = $1 AND key = $2",
                )
                .bind(caller).bind(key)
                .fetch_optional(&self.pool).await.map_err(crate::backend_error)?;
                // Deleted between the two statements by a concurrent purge: treat as in flight,
                // the client retries.
                let Some(row) = row else { return Ok(IdempotencyClaim::InFlight) };
                let stored: String = row.try_get("request_digest").map_err(crate::backend_error)?;
                if stored != request_digest {
                    return Ok(IdempotencyClaim::Mismatch);
                }
                let status: Option<i32> = row.try_get("status").map_err(crate::backend_error)?;
                match status {
                    None => Ok(IdempotencyClaim::InFlight),
                    Some(status) => Ok(IdempotencyClaim::Replay(IdempotentResponse {
                        status: status as u16,
                        content_type: row.try_get::<Option<String>, _>("content_type").map_err(crate::backend_error)?.unwrap_or_default(),
                        body: row.try_get::<Option<Vec<u8>>, _>("body").map_err(crate::backend_error)?.unwrap_or_default(),
                    })),
                }
            }

            async fn idempotency_complete(&self, caller: &str, key: &str, resp: &pixeld_core::store::IdempotentResponse) -> pixeld_core::store::StoreResult<()> {
                sqlx::query("UPDATE idempotency_keys SET status = $1, content_type = $2, body = $3 WHERE caller = $4 AND key = $5")
                    .bind(i32::from(resp.status)).bind(&resp.content_type).bind(&resp.body).bind(caller).bind(key)
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(())
            }

            async fn idempotency_release(&self, caller: &str, key: &str) -> pixeld_core::store::StoreResult<()> {
                sqlx::query("DELETE FROM idempotency_keys WHERE caller = $1 AND key = $2 AND status IS NULL")
                    .bind(caller).bind(key)
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(())
            }

            async fn idempotency_purge(&self, before: time::OffsetDateTime) -> pixeld_core::store::StoreResult<u64> {
                let r = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1").bind(ts(before))
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(r.rows_affected())
            }
        }

        impl $store {
            fn insert_job(j: &pixeld_core::store::Job) -> sqlx::query::Query<'_, $db, <$db as sqlx::Database>::Arguments> {
                sqlx::query(concat!("INSERT INTO jobs (", job_cols!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"))
                    .bind(j.id).bind(&j.kind).bind(j.org_id).bind(&j.payload).bind(&j.state).bind(j.attempts)
                    .bind(ts(j.run_at)).bind(j.locked_until.map(ts)).bind(&j.last_error).bind(ts(j.created_at))
                    .bind(ts(j.updated_at))
            }

            fn update_delivery(d: &pixeld_core::store::WebhookDelivery) -> sqlx::query::Query<'_, $db, <$db as sqlx::Database>::Arguments> {
                sqlx::query("UPDATE webhook_deliveries SET status = $1, attempts = $2, next_attempt_at = $3, last_status = $4, \
                        last_error = $5, delivered_at = $6 WHERE id = $7")
                    .bind(&d.status).bind(d.attempts).bind(d.next_attempt_at.map(ts)).bind(d.last_status)
                    .bind(&d.last_error).bind(d.delivered_at.map(ts)).bind(d.id)
            }

            /// Runs an UPDATE that must touch exactly one row.
            async fn exec_one<'q>(
                &self,
                q: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments>,
            ) -> pixeld_core::store::StoreResult<()> {
                let r = q.execute(&self.pool).await.map_err(crate::backend_error)?;
                if r.rows_affected() == 0 { Err(pixeld_core::store::StoreError::NotFound) } else { Ok(()) }
            }
        }
    };
}
