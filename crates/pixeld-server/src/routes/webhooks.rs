//! Asynchronous renders' status, webhook secrets and the webhook delivery log.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use pixeld_core::store::{RenderJob, SigningKey, WebhookAttempt, WebhookDelivery};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::PageParams;
use crate::AppState;
use crate::extract::{Auth, Json, Path, Query};
use crate::problem::{ApiError, ApiResult};

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/render-jobs", get(list_render_jobs))
        .route("/v1/render-jobs/{id}", get(get_render_job))
        .route("/v1/webhook-secrets", get(list_secrets).post(create_secret))
        .route(
            "/v1/webhook-secrets/{id}",
            axum::routing::delete(revoke_secret),
        )
        .route("/v1/webhook-deliveries", get(list_deliveries))
        .route("/v1/webhook-deliveries/{id}", get(get_delivery))
        .route("/v1/webhook-deliveries/{id}/redeliver", post(redeliver))
}

/// A finished render's output.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RenderJobResult {
    /// The render's content key.
    pub id: String,
    /// Where to download it (with an API credential of the organisation).
    pub url: String,
    /// Format.
    pub format: String,
    /// Width in pixels.
    pub width: Option<i32>,
    /// Height in pixels.
    pub height: Option<i32>,
    /// Size in bytes.
    pub bytes: Option<i64>,
    /// Served from the render cache.
    pub cached: bool,
}

/// Why a render failed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RenderJobError {
    /// Problem type URL (as in problem+json answers).
    #[serde(rename = "type")]
    pub type_: String,
    /// What went wrong.
    pub detail: Option<String>,
}

/// An asynchronous render. The webhook's `data.render` is this same object.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RenderJobView {
    /// Render id.
    pub id: Uuid,
    /// `pending`, `completed` or `failed`.
    pub status: String,
    /// Template id.
    pub template: Uuid,
    /// Template version rendered.
    pub version: i32,
    /// Output format.
    pub format: String,
    /// Where the outcome is POSTed.
    pub webhook_url: Option<String>,
    /// The caller's metadata.
    #[schema(value_type = Object)]
    pub metadata: Option<serde_json::Value>,
    /// The output, once completed.
    pub result: Option<RenderJobResult>,
    /// Why it failed.
    pub error: Option<RenderJobError>,
    /// Accepted at.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Finished at.
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
}

impl RenderJobView {
    /// The view of a render job: exactly the JSON its webhook carries.
    pub fn new(r: &RenderJob, public_url: &str) -> Self {
        serde_json::from_value(pixeld_core::render_jobs::render_job_json(r, public_url))
            .expect("render_job_json matches RenderJobView")
    }
}

/// A page of render jobs.
#[derive(Debug, Serialize, ToSchema)]
pub struct RenderJobPage {
    /// Render jobs, oldest first.
    pub items: Vec<RenderJobView>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
}

/// A webhook signing secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookSecretView {
    /// Id.
    pub id: Uuid,
    /// Check `Pixeld-Signature`: HMAC-SHA256 of `{t}.{raw body}` with this secret, hex, is one
    /// of the header's `v1` values; reject timestamps older than a few minutes.
    pub secret: String,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it stopped signing.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

impl From<&SigningKey> for WebhookSecretView {
    fn from(k: &SigningKey) -> Self {
        Self {
            id: k.id,
            secret: k.secret.clone(),
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// A webhook event for one URL and its delivery state.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    /// Delivery id (the event's `id`, and the `Pixeld-Delivery` header).
    pub id: Uuid,
    /// `render.completed` or `render.failed`.
    pub event: String,
    /// Destination.
    pub url: String,
    /// `pending`, `delivered` or `failed` (no more attempts).
    pub status: String,
    /// Attempts made.
    pub attempts: i32,
    /// When the next attempt is due.
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
    /// HTTP status of the last attempt.
    pub last_status: Option<i32>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Created at.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Delivered at.
    #[serde(with = "time::serde::rfc3339::option")]
    pub delivered_at: Option<OffsetDateTime>,
}

impl From<&WebhookDelivery> for DeliveryView {
    fn from(d: &WebhookDelivery) -> Self {
        Self {
            id: d.id,
            event: d.event.clone(),
            url: d.url.clone(),
            status: d.status.clone(),
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_status: d.last_status,
            last_error: d.last_error.clone(),
            created_at: d.created_at,
            delivered_at: d.delivered_at,
        }
    }
}

/// One attempt at a delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    /// 1, 2, 3…
    pub attempt: i32,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The receiver's HTTP status, if it answered.
    pub status_code: Option<i32>,
    /// What went wrong.
    pub error: Option<String>,
    /// The start of the receiver's answer (at most 1 KiB).
    pub response_excerpt: Option<String>,
    /// Milliseconds taken.
    pub ms: i64,
}

impl From<&WebhookAttempt> for AttemptView {
    fn from(a: &WebhookAttempt) -> Self {
        Self {
            attempt: a.attempt,
            at: a.at,
            status_code: a.status_code,
            error: a.error.clone(),
            response_excerpt: a.response_excerpt.clone(),
            ms: a.ms,
        }
    }
}

/// A delivery with its body and every attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDetail {
    /// The delivery.
    #[serde(flatten)]
    pub delivery: DeliveryView,
    /// The JSON body sent.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// Attempts, first first.
    pub attempt_log: Vec<AttemptView>,
}

/// A page of deliveries.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    /// Deliveries, oldest first.
    pub items: Vec<DeliveryView>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
}

/// The organisation's asynchronous renders, oldest first.
#[utoipa::path(get, path = "/v1/render-jobs", tag = "templates", params(PageParams),
    responses((status = 200, description = "A page of render jobs", body = RenderJobPage)))]
pub async fn list_render_jobs(
    State(st): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<PageParams>,
) -> ApiResult<Json<RenderJobPage>> {
    let page = st.app.render_jobs(&p, q.page()?).await?;
    let base = st.config.public_url();
    Ok(Json(RenderJobPage {
        items: page
            .items
            .iter()
            .map(|r| RenderJobView::new(r, &base))
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

/// An asynchronous render's status and, once completed, its output's URL.
#[utoipa::path(get, path = "/v1/render-jobs/{id}", tag = "templates",
    params(("id" = Uuid, Path, description = "Render id")),
    responses((status = 200, description = "The render", body = RenderJobView)))]
pub async fn get_render_job(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<RenderJobView>> {
    let r = st.app.render_job(&p, id).await?;
    Ok(Json(RenderJobView::new(&r, &st.config.public_url())))
}

/// Creates a webhook secret. Rotate by creating a new one (both sign from then on), updating
/// your receiver, then revoking the old one.
#[utoipa::path(post, path = "/v1/webhook-secrets", tag = "webhooks",
    responses((status = 201, description = "Created", body = WebhookSecretView)))]
pub async fn create_secret(
    State(st): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<(StatusCode, Json<WebhookSecretView>)> {
    let k = st.app.create_webhook_secret(&p).await?;
    Ok((StatusCode::CREATED, Json(WebhookSecretView::from(&k))))
}

/// The organisation's webhook secrets, newest first. One is created with the first webhook.
#[utoipa::path(get, path = "/v1/webhook-secrets", tag = "webhooks",
    responses((status = 200, description = "Secrets", body = Vec<WebhookSecretView>)))]
pub async fn list_secrets(
    State(st): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<Json<Vec<WebhookSecretView>>> {
    let keys = st.app.webhook_secrets(&p).await?;
    Ok(Json(keys.iter().map(WebhookSecretView::from).collect()))
}

/// Revokes a webhook secret (not the last live one).
#[utoipa::path(delete, path = "/v1/webhook-secrets/{id}", tag = "webhooks",
    params(("id" = Uuid, Path, description = "Secret id")),
    responses((status = 204, description = "Revoked")))]
pub async fn revoke_secret(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    st.app.revoke_webhook_secret(&p, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The webhook delivery log, oldest first (kept 30 days).
#[utoipa::path(get, path = "/v1/webhook-deliveries", tag = "webhooks", params(PageParams),
    responses((status = 200, description = "A page of deliveries", body = DeliveryPage)))]
pub async fn list_deliveries(
    State(st): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<PageParams>,
) -> ApiResult<Json<DeliveryPage>> {
    let page = st.app.webhook_deliveries(&p, q.page()?).await?;
    Ok(Json(DeliveryPage {
        items: page.items.iter().map(DeliveryView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One delivery: its body and every attempt (status, error, the receiver's answer).
#[utoipa::path(get, path = "/v1/webhook-deliveries/{id}", tag = "webhooks",
    params(("id" = Uuid, Path, description = "Delivery id")),
    responses((status = 200, description = "The delivery", body = DeliveryDetail)))]
pub async fn get_delivery(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<DeliveryDetail>> {
    let (d, attempts) = st.app.webhook_delivery(&p, id).await?;
    let payload = serde_json::from_str(&d.payload)
        .map_err(|e| ApiError::from(pixeld_core::Error::Internal(e.to_string())))?;
    Ok(Json(DeliveryDetail {
        delivery: DeliveryView::from(&d),
        payload,
        attempt_log: attempts.iter().map(AttemptView::from).collect(),
    }))
}

/// Sends a delivered or failed event again now (same id and body, a fresh signature).
#[utoipa::path(post, path = "/v1/webhook-deliveries/{id}/redeliver", tag = "webhooks",
    params(("id" = Uuid, Path, description = "Delivery id")),
    responses((status = 202, description = "Queued", body = DeliveryView)))]
pub async fn redeliver(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<(StatusCode, Json<DeliveryView>)> {
    let d = st.app.redeliver_webhook(&p, id).await?;
    Ok((StatusCode::ACCEPTED, Json(DeliveryView::from(&d))))
}
