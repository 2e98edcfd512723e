//! Support requests over HTTP: a user's own requests and their messages, and for operators
//! the queue of every request, answers and closing.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use pixeld_core::support::{
    Author, Category, NewTicket, QueuedTicket, Status, Ticket, TicketMessage,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::PageParams;
use crate::AppState;
use crate::extract::{Auth, Json, Path, Query};
use crate::problem::ApiResult;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/support/requests",
            post(open_request).get(list_requests),
        )
        .route("/v1/support/requests/{id}", get(get_request))
        .route("/v1/support/requests/{id}/messages", post(reply))
        .route("/v1/support/requests/{id}/close", post(close))
        .route("/v1/admin/support/requests", get(queue))
        .route("/v1/admin/support/requests/{id}", get(operator_get))
        .route(
            "/v1/admin/support/requests/{id}/messages",
            post(operator_reply),
        )
        .route(
            "/v1/admin/support/requests/{id}/close",
            post(operator_close),
        )
}

/// What a request is about.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SupportCategory {
    /// Anything else.
    General,
    /// Credits, plans, payments, invoices.
    Billing,
    /// Something does not work.
    Technical,
    /// A question about your data or a privacy right.
    Privacy,
}

impl From<SupportCategory> for Category {
    fn from(c: SupportCategory) -> Self {
        match c {
            SupportCategory::General => Category::General,
            SupportCategory::Billing => Category::Billing,
            SupportCategory::Technical => Category::Technical,
            SupportCategory::Privacy => Category::Privacy,
        }
    }
}

/// A new support request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSupportRequest {
    /// One line.
    #[schema(min_length = 1, max_length = 200)]
    pub subject: String,
    /// What it is about (default `general`).
    #[serde(default)]
    pub category: Option<SupportCategory>,
    /// The first message.
    #[schema(min_length = 1, max_length = 10000)]
    pub body: String,
}

/// A message to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSupportMessage {
    /// The text; line breaks are kept.
    #[schema(min_length = 1, max_length = 10000)]
    pub body: String,
}

/// A support request.
#[derive(Debug, Serialize, ToSchema)]
pub struct SupportRequestView {
    /// Id.
    pub id: Uuid,
    /// One line.
    pub subject: String,
    /// `general`, `billing`, `technical` or `privacy`.
    pub category: String,
    /// `open` (waiting for the operators), `answered` (waiting for you) or `closed`.
    pub status: String,
    /// When it was opened.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Its last message or change; it is deleted two years after this (the `support` class).
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// When it was closed, while it is.
    #[serde(with = "time::serde::rfc3339::option")]
    pub closed_at: Option<OffsetDateTime>,
    /// The requester's email address (operators' views only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requester_email: Option<String>,
    /// The requester's name (operators' views only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requester_name: Option<String>,
}

impl From<&Ticket> for SupportRequestView {
    fn from(t: &Ticket) -> Self {
        Self {
            id: t.id,
            subject: t.subject.clone(),
            category: t.category.as_str().into(),
            status: t.status.as_str().into(),
            created_at: t.created_at,
            updated_at: t.updated_at,
            closed_at: t.closed_at,
            requester_email: None,
            requester_name: None,
        }
    }
}

impl From<&QueuedTicket> for SupportRequestView {
    fn from(q: &QueuedTicket) -> Self {
        Self {
            requester_email: Some(q.email.clone()),
            requester_name: Some(q.name.clone()),
            ..SupportRequestView::from(&q.ticket)
        }
    }
}

/// One message.
#[derive(Debug, Serialize, ToSchema)]
pub struct SupportMessageView {
    /// Id.
    pub id: Uuid,
    /// `user` (the requester) or `operator` (the team).
    pub from: String,
    /// The text.
    pub body: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<&TicketMessage> for SupportMessageView {
    fn from(m: &TicketMessage) -> Self {
        Self {
            id: m.id,
            from: match m.author {
                Author::User => "user",
                Author::Operator => "operator",
            }
            .into(),
            body: m.body.clone(),
            created_at: m.created_at,
        }
    }
}

/// A request with its messages, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SupportThreadView {
    /// The request.
    pub request: SupportRequestView,
    /// Its messages, oldest first.
    pub messages: Vec<SupportMessageView>,
}

/// A page of requests.
#[derive(Debug, Serialize, ToSchema)]
pub struct SupportRequestList {
    /// The requests.
    pub items: Vec<SupportRequestView>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
}

/// Opens a support request with its first message; the operators are told by email
/// (`account:write`). At most 10 requests may be open at once (409 beyond).
#[utoipa::path(post, path = "/v1/support/requests", tag = "support", request_body = NewSupportRequest,
    responses((status = 201, description = "Opened", body = SupportThreadView),
              (status = 409, description = "Ten requests are open already")))]
pub async fn open_request(
    State(st): State<AppState>,
    Auth(p): Auth,
    Json(req): Json<NewSupportRequest>,
) -> ApiResult<(StatusCode, Json<SupportThreadView>)> {
    let thread = st
        .app
        .open_support_request(
            &p,
            NewTicket {
                subject: req.subject,
                category: req.category.map_or(Category::General, Category::from),
                body: req.body,
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(SupportThreadView {
            request: SupportRequestView::from(&thread.ticket),
            messages: thread
                .messages
                .iter()
                .map(SupportMessageView::from)
                .collect(),
        }),
    ))
}

/// The caller's support requests, newest first (`account:read`).
#[utoipa::path(get, path = "/v1/support/requests", tag = "support", params(PageParams),
    responses((status = 200, description = "A page of requests", body = SupportRequestList)))]
pub async fn list_requests(
    State(st): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<PageParams>,
) -> ApiResult<Json<SupportRequestList>> {
    let page = st.app.support_requests(&p, q.page()?).await?;
    Ok(Json(SupportRequestList {
        items: page.items.iter().map(SupportRequestView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One of the caller's requests with its messages (`account:read`).
#[utoipa::path(get, path = "/v1/support/requests/{id}", tag = "support",
    params(("id" = Uuid, Path, description = "The request")),
    responses((status = 200, description = "The request and its messages", body = SupportThreadView)))]
pub async fn get_request(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<SupportThreadView>> {
    let t = st.app.support_request(&p, id).await?;
    Ok(Json(SupportThreadView {
        request: SupportRequestView::from(&t.ticket),
        messages: t.messages.iter().map(SupportMessageView::from).collect(),
    }))
}

/// Adds a message to one of the caller's requests; an answered or closed request opens again
/// (`account:write`).
#[utoipa::path(post, path = "/v1/support/requests/{id}/messages", tag = "support", request_body = NewSupportMessage,
    params(("id" = Uuid, Path, description = "The request")),
    responses((status = 201, description = "Added", body = SupportMessageView),
              (status = 409, description = "The request holds 200 messages already")))]
pub async fn reply(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
    Json(req): Json<NewSupportMessage>,
) -> ApiResult<(StatusCode, Json<SupportMessageView>)> {
    let m = st.app.reply_to_support_request(&p, id, &req.body).await?;
    Ok((StatusCode::CREATED, Json(SupportMessageView::from(&m))))
}

/// Closes one of the caller's requests (`account:write`).
#[utoipa::path(post, path = "/v1/support/requests/{id}/close", tag = "support",
    params(("id" = Uuid, Path, description = "The request")),
    responses((status = 200, description = "Closed", body = SupportRequestView)))]
pub async fn close(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<SupportRequestView>> {
    let t = st.app.close_support_request(&p, id).await?;
    Ok(Json(SupportRequestView::from(&t)))
}

/// Which requests the operators' queue shows.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SupportQueueStatus {
    /// Waiting for an answer (the default).
    Open,
    /// Answered, waiting for the requester.
    Answered,
    /// Closed.
    Closed,
    /// Every request.
    All,
}

/// The operators' queue: which requests, and which page.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QueueParams {
    /// `open` (default: waiting for an answer), `answered`, `closed` or `all`.
    pub status: Option<SupportQueueStatus>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

/// Support requests of every account, oldest first; by default those waiting for an answer.
/// Instance administrators (`admin`).
#[utoipa::path(get, path = "/v1/admin/support/requests", tag = "support", params(QueueParams),
    responses((status = 200, description = "A page of requests", body = SupportRequestList)))]
pub async fn queue(
    State(st): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<QueueParams>,
) -> ApiResult<Json<SupportRequestList>> {
    let status = match q.status.unwrap_or(SupportQueueStatus::Open) {
        SupportQueueStatus::Open => Some(Status::Open),
        SupportQueueStatus::Answered => Some(Status::Answered),
        SupportQueueStatus::Closed => Some(Status::Closed),
        SupportQueueStatus::All => None,
    };
    let page = pixeld_core::page::PageRequest::parse(q.cursor.as_deref(), q.limit)?;
    let page = st.app.support_queue(&p, status, page).await?;
    Ok(Json(SupportRequestList {
        items: page.items.iter().map(SupportRequestView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Any support request with its messages and requester (`admin`).
#[utoipa::path(get, path = "/v1/admin/support/requests/{id}", tag = "support",
    params(("id" = Uuid, Path, description = "The request")),
    responses((status = 200, description = "The request and its messages", body = SupportThreadView)))]
pub async fn operator_get(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<SupportThreadView>> {
    let (q, messages) = st.app.operator_support_request(&p, id).await?;
    Ok(Json(SupportThreadView {
        request: SupportRequestView::from(&q),
        messages: messages.iter().map(SupportMessageView::from).collect(),
    }))
}

/// Answers a support request; it becomes `answered` and its requester is told by email
/// (`admin`).
#[utoipa::path(post, path = "/v1/admin/support/requests/{id}/messages", tag = "support", request_body = NewSupportMessage,
    params(("id" = Uuid, Path, description = "The request")),
    responses((status = 201, description = "Added", body = SupportMessageView),
              (status = 409, description = "The request holds 200 messages already")))]
pub async fn operator_reply(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
    Json(req): Json<NewSupportMessage>,
) -> ApiResult<(StatusCode, Json<SupportMessageView>)> {
    let m = st.app.operator_reply(&p, id, &req.body).await?;
    Ok((StatusCode::CREATED, Json(SupportMessageView::from(&m))))
}

/// Closes any support request (`admin`).
#[utoipa::path(post, path = "/v1/admin/support/requests/{id}/close", tag = "support",
    params(("id" = Uuid, Path, description = "The request")),
    responses((status = 200, description = "Closed", body = SupportRequestView)))]
pub async fn operator_close(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<SupportRequestView>> {
    let t = st.app.operator_close(&p, id).await?;
    Ok(Json(SupportRequestView::from(&t)))
}
