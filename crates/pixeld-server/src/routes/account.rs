//! The caller's own account: profile, password, email, sessions and two-factor sign-in.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use pixeld_core::principal::Credential;
use pixeld_core::tokens::Scope;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::SessionView;
use super::{MessageView, UserView};
use crate::AppState;
use crate::extract::{Auth, Json, Path};
use crate::middleware::RedactForReplay;
use crate::problem::ApiResult;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/me", get(me))
        .route("/v1/account/password", post(change_password))
        .route("/v1/account/email", post(change_email))
        .route("/v1/account/email/confirm", post(confirm_email))
        .route("/v1/account/sessions", get(list_sessions))
        .route("/v1/account/sessions/{id}", delete(revoke_session))
        .route(
            "/v1/account/sessions/revoke-others",
            post(revoke_other_sessions),
        )
        .route("/v1/account/2fa", get(two_factor_status))
        .route("/v1/account/2fa/totp", post(begin_totp))
        .route("/v1/account/2fa/totp/confirm", post(confirm_totp))
        .route("/v1/account/2fa/disable", post(disable_totp))
        .route("/v1/account/2fa/recovery-codes", post(new_recovery_codes))
}

/// How the request authenticated.
#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialView {
    /// `token` or `session`.
    pub kind: String,
    /// The token's id, for `token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_id: Option<Uuid>,
    /// The token's scopes, for `token` (a session has every scope its role allows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
}

/// The organisation a request acts in.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActingOrg {
    /// Id.
    pub id: Uuid,
    /// The caller's role there.
    pub role: String,
}

/// Who am I.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeResponse {
    /// The account.
    pub user: UserView,
    /// The organisation this request acts in.
    pub org: ActingOrg,
    /// The credential used.
    pub credential: CredentialView,
}

/// The caller: account, acting organisation and credential.
#[utoipa::path(get, path = "/v1/me", tag = "account", security(("bearer" = ["account:read"]), ("session" = [])),
    responses((status = 200, description = "The caller", body = MeResponse)))]
pub async fn me(Auth(p): Auth) -> ApiResult<Json<MeResponse>> {
    p.require_scope(Scope::AccountRead)?;
    let credential = match &p.credential {
        Credential::Session { .. } => CredentialView {
            kind: "session".into(),
            token_id: None,
            scopes: None,
        },
        Credential::Token { token_id, scopes } => CredentialView {
            kind: "token".into(),
            token_id: Some(*token_id),
            scopes: Some(scopes.iter().map(|s| s.as_str().to_string()).collect()),
        },
    };
    Ok(Json(MeResponse {
        user: (&p.user).into(),
        org: ActingOrg {
            id: p.org_id,
            role: p.role.as_str().into(),
        },
        credential,
    }))
}

/// A password change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    /// The current password (re-authentication).
    pub current_password: String,
    /// The new password: 8 to 128 characters, not a common password.
    #[schema(min_length = 8, max_length = 128)]
    pub new_password: String,
}

/// Changes the password; every other session is signed out.
#[utoipa::path(post, path = "/v1/account/password", tag = "account", request_body = ChangePasswordRequest,
    responses((status = 204, description = "Changed")))]
pub async fn change_password(
    State(st): State<AppState>,
    Auth(p): Auth,
    Json(req): Json<ChangePasswordRequest>,
) -> ApiResult<StatusCode> {
    p.require_scope(Scope::AccountWrite)?;
    st.app
        .change_password(
            &p.user,
            &req.current_password,
            &req.new_password,
            p.session_id(),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An email change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeEmailRequest {
    /// The current password (re-authentication).
    pub current_password: String,
    /// The new address; a confirmation link is sent to it.
    #[schema(format = Email, max_length = 254)]
    pub email: String,
}

/// Starts an email change: a link goes to the new address, a notice to the old one.
#[utoipa::path(post, path = "/v1/account/email", tag = "account", request_body = ChangeEmailRequest,
    responses((status = 202, description = "Confirmation link sent to the new address", body = MessageView)))]
pub async fn change_email(
    State(st): State<AppState>,
    Auth(p): Auth,
    Json(req): Json<ChangeEmailRequest>,
) -> ApiResult<(StatusCode, Json<MessageView>)> {
    p.require_scope(Scope::AccountWrite)?;
    st.app
        .request_email_change(&p.user, &req.current_password, &req.email)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(MessageView::new(
            "open the link sent to the new address to finish the change",
        )),
    ))
}

/// Finishes an email change with the token from the link.
#[utoipa::path(post, path = "/v1/account/email/confirm", tag = "account", request_body = super::auth::TokenRequest,
    responses((status = 200, description = "Address changed", body = super::auth::UserResponse)))]
pub async fn confirm_email(
    State(st): State<AppState>,
    Json(req): Json<super::auth::TokenRequest>,
) -> ApiResult<Json<super::auth::UserResponse>> {
    let user = st.app.confirm_email_change(&req.token).await?;
    Ok(Json(super::auth::UserResponse {
        user: (&user).into(),
    }))
}

/// The caller's sessions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    /// Live sessions, newest first.
    pub items: Vec<SessionView>,
}

/// Lists the caller's live sessions (devices).
#[utoipa::path(get, path = "/v1/account/sessions", tag = "account",
    responses((status = 200, description = "Sessions", body = SessionList)))]
pub async fn list_sessions(
    State(st): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<Json<SessionList>> {
    p.require_scope(Scope::AccountRead)?;
    let current = p.session_id();
    let items = st
        .app
        .sessions_of(p.user.id)
        .await?
        .iter()
        .map(|s| SessionView::new(s, Some(s.id) == current))
        .collect();
    Ok(Json(SessionList { items }))
}

/// Signs out one session (device).
#[utoipa::path(delete, path = "/v1/account/sessions/{id}", tag = "account", params(("id" = Uuid, Path, description = "Session id")),
    responses((status = 204, description = "Signed out")))]
pub async fn revoke_session(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    p.require_scope(Scope::AccountWrite)?;
    st.app.end_session(p.user.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// How many sessions ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevokedCount {
    /// Sessions signed out.
    pub revoked: u64,
}

/// Signs out every other device.
#[utoipa::path(post, path = "/v1/account/sessions/revoke-others", tag = "account",
    responses((status = 200, description = "Other sessions signed out", body = RevokedCount)))]
pub async fn revoke_other_sessions(
    State(st): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<Json<RevokedCount>> {
    p.require_scope(Scope::AccountWrite)?;
    let keep = p.session_id().unwrap_or(Uuid::nil());
    Ok(Json(RevokedCount {
        revoked: st.app.end_other_sessions(p.user.id, keep).await?,
    }))
}

/// Two-factor state.
#[derive(Debug, Serialize, ToSchema)]
pub struct TwoFactorStatus {
    /// Whether TOTP is on.
    pub enabled: bool,
    /// Unused recovery codes.
    pub recovery_codes_left: i64,
}

/// Whether 2FA is on and how many recovery codes remain.
#[utoipa::path(get, path = "/v1/account/2fa", tag = "account",
    responses((status = 200, description = "Two-factor state", body = TwoFactorStatus)))]
pub async fn two_factor_status(
    State(st): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<Json<TwoFactorStatus>> {
    p.require_scope(Scope::AccountRead)?;
    Ok(Json(TwoFactorStatus {
        enabled: p.user.totp_secret.is_some(),
        recovery_codes_left: st.app.recovery_codes_left(p.user.id).await?,
    }))
}

/// What an authenticator app needs.
#[derive(Debug, Serialize, ToSchema)]
pub struct TotpEnrolment {
    /// Base32 secret for manual entry.
    pub secret: String,
    /// `otpauth://` URL.
    pub otpauth_url: String,
    /// QR code of the URL, as an SVG data URI.
    pub qr_svg_data_uri: String,
}

/// Starts TOTP enrolment: scan the QR code, then confirm with a code.
#[utoipa::path(post, path = "/v1/account/2fa/totp", tag = "account",
    responses((status = 200, description = "Secret proposed; confirm it with a code", body = TotpEnrolment)))]
pub async fn begin_totp(State(st): State<AppState>, Auth(p): Auth) -> ApiResult<Response> {
    p.require_scope(Scope::AccountWrite)?;
    let e = st.app.begin_totp_enrolment(&p.user).await?;
    let mut resp = Json(TotpEnrolment {
        secret: e.secret,
        otpauth_url: e.otpauth_url,
        qr_svg_data_uri: e.qr_svg_data_uri,
    })
    .into_response();
    resp.extensions_mut().insert(RedactForReplay(
        br#"{"message":"enrolment started; the secret is shown once"}"#.to_vec(),
    ));
    Ok(resp)
}

/// A current code.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// 6-digit code from the authenticator app (or, where accepted, a recovery code).
    #[schema(example = "123456")]
    pub code: String,
}

/// Recovery codes, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveryCodes {
    /// Ten single-use codes; store them somewhere safe.
    pub recovery_codes: Vec<String>,
}

fn codes_response(codes: Vec<String>) -> Response {
    let mut resp = Json(RecoveryCodes {
        recovery_codes: codes,
    })
    .into_response();
    resp.extensions_mut().insert(RedactForReplay(
        br#"{"message":"recovery codes are shown once"}"#.to_vec(),
    ));
    resp
}

/// Confirms TOTP enrolment with a code; turns 2FA on and returns ten recovery codes.
#[utoipa::path(post, path = "/v1/account/2fa/totp/confirm", tag = "account", request_body = CodeRequest,
    responses((status = 200, description = "2FA on", body = RecoveryCodes)))]
pub async fn confirm_totp(
    State(st): State<AppState>,
    Auth(p): Auth,
    Json(req): Json<CodeRequest>,
) -> ApiResult<Response> {
    p.require_scope(Scope::AccountWrite)?;
    Ok(codes_response(
        st.app.confirm_totp_enrolment(&p.user, &req.code).await?,
    ))
}

/// Turns 2FA off; needs a current code.
#[utoipa::path(post, path = "/v1/account/2fa/disable", tag = "account", request_body = CodeRequest,
    responses((status = 204, description = "2FA off")))]
pub async fn disable_totp(
    State(st): State<AppState>,
    Auth(p): Auth,
    Json(req): Json<CodeRequest>,
) -> ApiResult<StatusCode> {
    p.require_scope(Scope::AccountWrite)?;
    st.app.disable_totp(&p.user, &req.code).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces the recovery codes; needs a current code.
#[utoipa::path(post, path = "/v1/account/2fa/recovery-codes", tag = "account", request_body = CodeRequest,
    responses((status = 200, description = "New codes", body = RecoveryCodes)))]
pub async fn new_recovery_codes(
    State(st): State<AppState>,
    Auth(p): Auth,
    Json(req): Json<CodeRequest>,
) -> ApiResult<Response> {
    p.require_scope(Scope::AccountWrite)?;
    Ok(codes_response(
        st.app.regenerate_recovery_codes(&p.user, &req.code).await?,
    ))
}
