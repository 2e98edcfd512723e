//! Data-subject rights over HTTP: deleting one's account (with a grace period and a cancel
//! link), one's own request records, and for operators the open requests and deleting an
//! account at once.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use pixeld_core::consent::{ConsentPurpose, ConsentRecord, Objection, Profile, ProfileUpdate};
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
        .route("/v1/account/export", post(request_export))
        .route("/v1/account/exports", get(list_exports))
        .route("/v1/account/exports/{id}/download", get(download_export))
        .route("/v1/account/profile", get(get_profile).patch(patch_profile))
        .route("/v1/account/profile/changes", get(profile_changes))
        .route("/v1/account/consents", get(get_consents))
        .route("/v1/account/consents/{purpose}", put(put_consent))
        .route(
            "/v1/account/processing",
            get(get_processing).put(put_processing),
        )
}

/// Re-authentication for deleting the account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteAccountRequest {
    /// The current password.
    #[schema(max_length = 128)]
    pub current_password: String,
    /// A current two-factor code or a recovery code (required when 2FA is on).
    #[serde(default)]
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

/// The caller's profile.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileView {
    /// Display name.
    pub name: String,
    /// Email address (change it with `POST /v1/account/email`).
    pub email: String,
    /// Phone number.
    pub phone: Option<String>,
    /// Company.
    pub company: Option<String>,
    /// Address lines.
    pub address: Vec<String>,
    /// Tax id.
    pub tax_id: Option<String>,
}

fn profile_view(u: &pixeld_core::store::User, p: &Profile) -> ProfileView {
    ProfileView {
        name: u.name.clone(),
        email: u.email.clone(),
        phone: p.phone.clone(),
        company: p.company.clone(),
        address: p.address.clone(),
        tax_id: p.tax_id.clone(),
    }
}

/// The caller's name, email, phone, company, address and tax id (`account:read`).
#[utoipa::path(get, path = "/v1/account/profile", tag = "privacy",
    responses((status = 200, description = "The profile", body = ProfileView)))]
pub async fn get_profile(
    State(st): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<Json<ProfileView>> {
    let profile = st.app.profile(&p).await?;
    Ok(Json(profile_view(&p.user, &profile)))
}

/// A profile change: omitted fields stay, an empty string (or list) clears one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    /// Display name (1 to 100 characters).
    #[schema(min_length = 1, max_length = 100)]
    #[serde(default)]
    pub name: Option<String>,
    /// Phone number: digits, spaces and `+ - ( ) .`, 5 to 15 digits.
    #[schema(max_length = 32)]
    #[serde(default)]
    pub phone: Option<String>,
    /// Company.
    #[schema(max_length = 200)]
    #[serde(default)]
    pub company: Option<String>,
    /// Address lines (at most 6).
    #[schema(max_items = 6)]
    #[serde(default)]
    pub address: Option<Vec<String>>,
    /// Tax id.
    #[schema(max_length = 64)]
    #[serde(default)]
    pub tax_id: Option<String>,
}

/// Corrects the caller's profile (`account:write`). Every change is audited by the fields it
/// touched and recorded as a rectification request.
#[utoipa::path(patch, path = "/v1/account/profile", tag = "privacy", request_body = ProfilePatch,
    responses((status = 200, description = "The profile now", body = ProfileView)))]
pub async fn patch_profile(
    State(st): State<AppState>,
    Auth(p): Auth,
    Json(req): Json<ProfilePatch>,
) -> ApiResult<Json<ProfileView>> {
    let (user, profile) = st
        .app
        .update_profile(
            &p,
            ProfileUpdate {
                name: req.name,
                phone: req.phone,
                company: req.company,
                address: req.address,
                tax_id: req.tax_id,
            },
        )
        .await?;
    Ok(Json(profile_view(&user, &profile)))
}

/// One audited profile change.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileChangeView {
    /// The fields changed.
    pub fields: Vec<String>,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub changed_at: OffsetDateTime,
}

/// Audited changes.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileChangeList {
    /// Oldest first.
    pub items: Vec<ProfileChangeView>,
}

/// The audit of the caller's profile changes: which fields, when (`account:read`).
#[utoipa::path(get, path = "/v1/account/profile/changes", tag = "privacy",
    responses((status = 200, description = "Profile changes", body = ProfileChangeList)))]
pub async fn profile_changes(
    State(st): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<Json<ProfileChangeList>> {
    let rows = st.app.profile_changes(&p).await?;
    Ok(Json(ProfileChangeList {
        items: rows
            .into_iter()
            .map(|c| ProfileChangeView {
                fields: c.fields,
                changed_at: c.changed_at,
            })
            .collect(),
    }))
}

/// One consent decision.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentView {
    /// `marketing_email`, `ai_training` or `age_confirmation`.
    pub purpose: String,
    /// Given or withdrawn.
    pub granted: bool,
    /// `signup`, `settings`, `api` or `unsubscribe_link`.
    pub source: String,
    /// The privacy policy version then.
    pub policy_version: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: OffsetDateTime,
}

impl From<&ConsentRecord> for ConsentView {
    fn from(c: &ConsentRecord) -> Self {
        Self {
            purpose: c.purpose.as_str().into(),
            granted: c.granted,
            source: c.source.clone(),
            policy_version: c.policy_version.clone(),
            recorded_at: c.recorded_at,
        }
    }
}

/// Consents in force and their history.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentsView {
    /// News and offers by email.
    pub marketing_email: bool,
    /// Training AI models on your uploads, prompts and outputs (off unless you turn it on).
    pub ai_training: bool,
    /// The one-click link that withdraws marketing consent without signing in.
    pub unsubscribe_url: String,
    /// Every decision, oldest first.
    pub history: Vec<ConsentView>,
}

fn in_force(h: &[ConsentRecord], purpose: ConsentPurpose) -> bool {
    h.iter()
        .rev()
        .find(|c| c.purpose == purpose)
        .is_some_and(|c| c.granted)
}

/// The caller's consents (`account:read`).
#[utoipa::path(get, path = "/v1/account/consents", tag = "privacy",
    responses((status = 200, description = "Consents", body = ConsentsView)))]
pub async fn get_consents(
    State(st): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<Json<ConsentsView>> {
    let history = st.app.consents(&p).await?;
    Ok(Json(ConsentsView {
        marketing_email: in_force(&history, ConsentPurpose::MarketingEmail),
        ai_training: in_force(&history, ConsentPurpose::AiTraining),
        unsubscribe_url: st.app.unsubscribe_link(p.user.id).await?,
        history: history.iter().map(ConsentView::from).collect(),
    }))
}

/// A consent a user can give or withdraw.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChoosablePurpose {
    /// News and offers by email.
    MarketingEmail,
    /// Training AI models on your uploads, prompts and outputs.
    AiTraining,
}

impl From<ChoosablePurpose> for ConsentPurpose {
    fn from(p: ChoosablePurpose) -> Self {
        match p {
            ChoosablePurpose::MarketingEmail => ConsentPurpose::MarketingEmail,
            ChoosablePurpose::AiTraining => ConsentPurpose::AiTraining,
        }
    }
}

/// A consent decision.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentRequest {
    /// Give (`true`) or withdraw (`false`).
    pub granted: bool,
}

/// Gives or withdraws `marketing_email` or `ai_training` (`account:write`); recorded with the
/// time, the source and the policy version.
#[utoipa::path(put, path = "/v1/account/consents/{purpose}", tag = "privacy", request_body = ConsentRequest,
    params(("purpose" = inline(ChoosablePurpose), Path, description = "`marketing_email` or `ai_training`")),
    responses((status = 200, description = "The decision recorded", body = ConsentView)))]
pub async fn put_consent(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(purpose): Path<ChoosablePurpose>,
    Json(req): Json<ConsentRequest>,
) -> ApiResult<Json<ConsentView>> {
    let r = st.app.set_consent(&p, purpose.into(), req.granted).await?;
    Ok(Json((&r).into()))
}

/// A purpose one can object to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ObjectionParam {
    /// Marketing email.
    Marketing,
    /// Page-view and feature analytics.
    Analytics,
    /// Sending data to AI providers.
    AiProviders,
}

impl From<ObjectionParam> for Objection {
    fn from(o: ObjectionParam) -> Self {
        match o {
            ObjectionParam::Marketing => Objection::Marketing,
            ObjectionParam::Analytics => Objection::Analytics,
            ObjectionParam::AiProviders => Objection::AiProviders,
        }
    }
}

impl From<Objection> for ObjectionParam {
    fn from(o: Objection) -> Self {
        match o {
            Objection::Marketing => ObjectionParam::Marketing,
            Objection::Analytics => ObjectionParam::Analytics,
            Objection::AiProviders => ObjectionParam::AiProviders,
        }
    }
}

/// Restriction and objections.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessingView {
    /// Keep my data but stop every non-essential use of it (marketing, analytics, AI providers).
    pub restricted: bool,
    /// Purposes objected to.
    #[schema(max_items = 3)]
    pub objections: Vec<ObjectionParam>,
}

/// The caller's restriction switch and objections (`account:read`).
#[utoipa::path(get, path = "/v1/account/processing", tag = "privacy",
    responses((status = 200, description = "Restriction and objections", body = ProcessingView)))]
pub async fn get_processing(
    State(st): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<Json<ProcessingView>> {
    let c = st.app.processing_choices(&p).await?;
    Ok(Json(ProcessingView {
        restricted: c.restricted,
        objections: c.objections.iter().map(|o| (*o).into()).collect(),
    }))
}

/// Sets the restriction switch and objections (`account:write`); each change is recorded as a
/// data-subject request.
#[utoipa::path(put, path = "/v1/account/processing", tag = "privacy", request_body = ProcessingView,
    responses((status = 200, description = "Restriction and objections now", body = ProcessingView)))]
pub async fn put_processing(
    State(st): State<AppState>,
    Auth(p): Auth,
    Json(req): Json<ProcessingView>,
) -> ApiResult<Json<ProcessingView>> {
    if req.objections.len() > 3 {
        return Err(pixeld_core::Error::invalid(
            "objections",
            "names at most the 3 purposes, each once",
        )
        .into());
    }
    let objections = req.objections.iter().map(|o| (*o).into()).collect();
    let c = st
        .app
        .set_processing_choices(&p, req.restricted, objections)
        .await?;
    Ok(Json(ProcessingView {
        restricted: c.restricted,
        objections: c.objections.iter().map(|o| (*o).into()).collect(),
    }))
}

/// A data export.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportView {
    /// Id.
    pub id: Uuid,
    /// `pending`, `ready` or `failed`.
    pub status: String,
    /// Size of the ZIP, once ready.
    pub bytes: Option<i64>,
    /// When it was asked for.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it was built.
    #[serde(with = "super::opt_rfc3339")]
    pub finished_at: Option<OffsetDateTime>,
    /// When it is deleted (7 days after it was asked for).
    #[serde(with = "time::serde::rfc3339")]
    pub deleted_after: OffsetDateTime,
}

fn export_view(st: &AppState, e: &pixeld_core::export::Export) -> ExportView {
    ExportView {
        id: e.id,
        status: e.status.as_str().into(),
        bytes: e.bytes,
        created_at: e.created_at,
        finished_at: e.finished_at,
        deleted_after: e.created_at
            + st.app
                .settings
                .retention
                .window(pixeld_core::privacy::DataClass::Exports),
    }
}

/// Exports.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportList {
    /// Oldest first.
    pub items: Vec<ExportView>,
}

/// Builds a ZIP of everything pixeld holds about the caller (one JSON file per data class with a
/// README and a schema version, plus templates, uploads, rendered images, fonts and invoice
/// PDFs) in the background, and emails a download link valid 24 hours (`account:read`). One at a
/// time (409 while one is being built).
#[utoipa::path(post, path = "/v1/account/export", tag = "privacy",
    responses((status = 202, description = "Export queued", body = ExportView)))]
pub async fn request_export(
    State(st): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<(StatusCode, Json<ExportView>)> {
    let e = st.app.request_export(&p).await?;
    Ok((StatusCode::ACCEPTED, Json(export_view(&st, &e))))
}

/// The caller's exports and where they stand (`account:read`).
#[utoipa::path(get, path = "/v1/account/exports", tag = "privacy",
    responses((status = 200, description = "Exports", body = ExportList)))]
pub async fn list_exports(
    State(st): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<Json<ExportList>> {
    let rows = st.app.exports(&p).await?;
    Ok(Json(ExportList {
        items: rows.iter().map(|e| export_view(&st, e)).collect(),
    }))
}

/// The signed link's parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DownloadParams {
    /// Unix time the link stops working.
    pub expires: i64,
    /// The link's signature.
    #[param(max_length = 128)]
    pub sig: String,
}

/// Downloads an export with the emailed link (no sign-in; the link is the proof, for 24 hours).
#[utoipa::path(get, path = "/v1/account/exports/{id}/download", tag = "privacy",
    params(("id" = Uuid, Path, description = "The export"), DownloadParams),
    responses((status = 200, description = "The ZIP", content_type = "application/zip", body = Vec<u8>)))]
pub async fn download_export(
    State(st): State<AppState>,
    Path(id): Path<Uuid>,
    Query(q): Query<DownloadParams>,
) -> ApiResult<Response> {
    let zip = st.app.download_export(id, q.expires, &q.sig).await?;
    let mut resp = zip.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/zip"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        axum::http::HeaderValue::from_static("attachment; filename=\"pixeld-export.zip\""),
    );
    h.insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("private, no-store"),
    );
    Ok(resp)
}
