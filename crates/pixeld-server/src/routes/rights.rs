//! Data-subject rights over HTTP: deleting one's account (with a grace period and a cancel
//! link), one's own request records, and for operators the open requests and deleting an
//! account at once.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use pixeld_core::rights::{AccountDeletion, DataRequest};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{PageParams, UserView};
use crate::AppState;
use crate::extract::{Auth, Json, Path, Query};
use crate::problem::ApiResult;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/account", delete(delete_account))
        .route("/v1/account/deletion/cancel", post(cancel_deletion))
        .route("/v1/account/data-requests", get(my_requests))
        .route("/v1/admin/data-requests", get(open_requests))
        .route("/v1/admin/users/{id}", delete(operator_delete))
}

/// Re-authentication for deleting the account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteAccountRequest {
    /// The current password.
    #[schema(max_length = 128)]
    pub current_password: String,
    /// A current two-factor code or a recovery code (required when 2FA is on).
    #[schema(max_length = 64)]
    pub code: Option<String>,
}

/// A scheduled deletion.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeletionView {
    /// `scheduled`.
    pub status: String,
    /// When the account and its data are purged.
    #[serde(with = "time::serde::rfc3339")]
    pub purge_after: OffsetDateTime,
    /// The erasure request's id.
    pub request_id: Uuid,
    /// What happens now, for people.
    pub message: String,
}

impl From<&AccountDeletion> for DeletionView {
    fn from(d: &AccountDeletion) -> Self {
        Self {
            status: "scheduled".into(),
            purge_after: d.purge_after,
            request_id: d.request_id,
            message: "the account is disabled and signed out everywhere; it is purged after the \
                      grace period unless you use the link we emailed to keep it"
                .into(),
        }
    }
}

/// Deletes the caller's account: disabled at once (signed out everywhere, tokens revoked), purged
/// after the 30-day grace period unless cancelled with the emailed link. Financial records stay,
/// anonymised. Needs the password, and a code when 2FA is on (`account:write`). Refused (409)
/// while the caller is the only owner of an organisation with other members.
#[utoipa::path(delete, path = "/v1/account", tag = "privacy", request_body = DeleteAccountRequest,
    responses((status = 202, description = "Deletion scheduled", body = DeletionView)))]
pub async fn delete_account(
    State(st): State<AppState>,
    Auth(p): Auth,
    Json(req): Json<DeleteAccountRequest>,
) -> ApiResult<Response> {
    let d = st
        .app
        .request_account_deletion(&p, &req.current_password, req.code.as_deref())
        .await?;
    let mut resp = (StatusCode::ACCEPTED, Json(DeletionView::from(&d))).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        super::auth::session_cookie_header(&st, "", 0),
    );
    Ok(resp)
}

/// The token from the cancel link.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelDeletionRequest {
    /// From the emailed link.
    #[schema(max_length = 128)]
    pub token: String,
}

/// Keeps an account whose deletion is pending, with the emailed link's token (no sign-in: the
/// account is signed out). API tokens revoked by the deletion stay revoked.
#[utoipa::path(post, path = "/v1/account/deletion/cancel", tag = "privacy", request_body = CancelDeletionRequest,
    responses((status = 200, description = "The account, working again", body = UserView)))]
pub async fn cancel_deletion(
    State(st): State<AppState>,
    Json(req): Json<CancelDeletionRequest>,
) -> ApiResult<Json<UserView>> {
    let u = st.app.cancel_account_deletion(&req.token).await?;
    Ok(Json((&u).into()))
}

/// A data-subject request.
#[derive(Debug, Serialize, ToSchema)]
pub struct DataRequestView {
    /// Id.
    pub id: Uuid,
    /// The account it is about.
    pub user_id: Uuid,
    /// `access`, `rectification`, `erasure`, `restriction` or `objection`.
    pub kind: String,
    /// `open`, `completed` or `cancelled`.
    pub status: String,
    /// What was asked and done.
    pub detail: String,
    /// When it was made.
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
    /// When it is due (30 days after it was made).
    #[serde(with = "time::serde::rfc3339")]
    pub due_at: OffsetDateTime,
    /// When it was completed or withdrawn.
    #[serde(with = "super::opt_rfc3339")]
    pub completed_at: Option<OffsetDateTime>,
}

impl From<&DataRequest> for DataRequestView {
    fn from(r: &DataRequest) -> Self {
        Self {
            id: r.id,
            user_id: r.user_id,
            kind: r.kind.as_str().into(),
            status: r.status.as_str().into(),
            detail: r.detail.clone(),
            requested_at: r.requested_at,
            due_at: r.due_at,
            completed_at: r.completed_at,
        }
    }
}

/// Requests.
#[derive(Debug, Serialize, ToSchema)]
pub struct DataRequestList {
    /// Oldest first.
    pub items: Vec<DataRequestView>,
    /// Cursor of the next page (operators' list).
    pub next_cursor: Option<String>,
}

/// The caller's own data-subject requests and where they stand (`account:read`).
#[utoipa::path(get, path = "/v1/account/data-requests", tag = "privacy",
    responses((status = 200, description = "The caller's requests", body = DataRequestList)))]
pub async fn my_requests(
    State(st): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<Json<DataRequestList>> {
    let rows = st.app.my_data_requests(&p).await?;
    Ok(Json(DataRequestList {
        items: rows.iter().map(DataRequestView::from).collect(),
        next_cursor: None,
    }))
}

/// Open data-subject requests of every user, soonest due first. Instance administrators
/// (`admin`).
#[utoipa::path(get, path = "/v1/admin/data-requests", tag = "privacy", params(PageParams),
    responses((status = 200, description = "A page of open requests", body = DataRequestList)))]
pub async fn open_requests(
    State(st): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<PageParams>,
) -> ApiResult<Json<DataRequestList>> {
    let page = st.app.open_data_requests(&p, q.page()?).await?;
    Ok(Json(DataRequestList {
        items: page.items.iter().map(DataRequestView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Why an operator deletes an account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorDeleteRequest {
    /// Recorded with the erasure request, e.g. "reported as a child's account".
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
}

/// Deletes an account at once, without a grace period (e.g. a child's account reported to the
/// operator). Instance administrators (`admin`).
#[utoipa::path(delete, path = "/v1/admin/users/{id}", tag = "privacy", request_body = OperatorDeleteRequest,
    params(("id" = Uuid, Path, description = "The account")),
    responses((status = 204, description = "Purged")))]
pub async fn operator_delete(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
    Json(req): Json<OperatorDeleteRequest>,
) -> ApiResult<StatusCode> {
    p.require_scope(pixeld_core::tokens::Scope::Admin)?;
    st.app
        .operator_delete_account(&p.user, id, &req.reason)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
