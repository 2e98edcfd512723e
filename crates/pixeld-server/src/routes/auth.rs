//! Sign-up, verification, sign-in (with 2FA step), sign-out and password reset.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use pixeld_core::accounts::{SignIn, SignUp};
use pixeld_core::sessions::{ClientInfo, NewSession, csrf_token};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{MessageView, UserView};
use crate::AppState;
use crate::extract::{ClientIp, Json, SESSION_COOKIE, SessionAuth, session_cookie, user_agent};
use crate::middleware::RedactForReplay;
use crate::problem::ApiResult;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/auth/signup", post(sign_up))
        .route("/v1/auth/verify-email", post(verify_email))
        .route("/v1/auth/verify-email/resend", post(resend_verification))
        .route("/v1/auth/signin", post(sign_in))
        .route("/v1/auth/signin/2fa", post(sign_in_2fa))
        .route("/v1/auth/signout", post(sign_out))
        .route("/v1/auth/password-reset", post(request_reset))
        .route("/v1/auth/password-reset/confirm", post(confirm_reset))
        .route("/v1/auth/session", get(current_session))
}

/// Sign-up input.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignUpRequest {
    /// Email address; a verification link is sent to it.
    #[schema(example = "ada@example.com", format = Email, max_length = 254)]
    pub email: String,
    /// 8 to 128 characters, not a common password.
    #[schema(
        example = "correct horse battery staple",
        min_length = 8,
        max_length = 128
    )]
    pub password: String,
    /// Display name (defaults to the part of the email before `@`), at most 100 characters.
    #[schema(max_length = 100, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    pub name: Option<String>,
    /// Confirms the user is at least the minimum age (16 by default; see `/privacy`). Must be
    /// `true`.
    #[serde(default)]
    #[schema(example = true)]
    pub age_confirmed: bool,
    /// Opt in to news and offers by email (off unless sent as `true`; withdraw any time).
    #[serde(default)]
    pub marketing_emails: bool,
}

/// Sign-up result.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignUpResponse {
    /// The new account.
    pub user: UserView,
    /// What to do next.
    pub message: String,
}

/// Creates an account and emails a verification link.
#[utoipa::path(post, path = "/v1/auth/signup", tag = "auth", request_body = SignUpRequest,
    responses((status = 201, description = "Account created; verify the email address next", body = SignUpResponse)))]
pub async fn sign_up(
    State(st): State<AppState>,
    Json(req): Json<SignUpRequest>,
) -> ApiResult<(StatusCode, Json<SignUpResponse>)> {
    let user = st
        .app
        .sign_up(SignUp {
            email: req.email,
            password: req.password,
            name: req.name,
            age_confirmed: req.age_confirmed,
            marketing_emails: req.marketing_emails,
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(SignUpResponse {
            user: (&user).into(),
            message: "check your inbox for a link to confirm your email address".into(),
        }),
    ))
}

/// A token from an emailed link.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The `token` parameter of the link.
    pub token: String,
}

/// The account after a change.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserResponse {
    /// The account.
    pub user: UserView,
}

/// Confirms an email address with the token from the verification email.
#[utoipa::path(post, path = "/v1/auth/verify-email", tag = "auth", request_body = TokenRequest,
    responses((status = 200, description = "Address confirmed", body = UserResponse)))]
pub async fn verify_email(
    State(st): State<AppState>,
    Json(req): Json<TokenRequest>,
) -> ApiResult<Json<UserResponse>> {
    let user = st.app.verify_email(&req.token).await?;
    Ok(Json(UserResponse {
        user: (&user).into(),
    }))
}

/// An email address.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailRequest {
    /// The address.
    #[schema(format = Email, max_length = 254)]
    pub email: String,
}

/// Sends a new verification link if the address belongs to an unverified account.
#[utoipa::path(post, path = "/v1/auth/verify-email/resend", tag = "auth", request_body = EmailRequest,
    responses((status = 202, description = "Sent if the address needs it (the answer is the same either way)", body = MessageView)))]
pub async fn resend_verification(
    State(st): State<AppState>,
    Json(req): Json<EmailRequest>,
) -> ApiResult<(StatusCode, Json<MessageView>)> {
    st.app.resend_verification(&req.email).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(MessageView::new(
            "if this address has an unverified account, a new link is on its way",
        )),
    ))
}

/// Sign-in input.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    /// Email address.
    pub email: String,
    /// Password.
    pub password: String,
}

/// Second sign-in step.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondFactorRequest {
    /// The `challenge` from the first step.
    pub challenge: String,
    /// A 6-digit code from the authenticator app, or a recovery code.
    pub code: String,
}

/// A session as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// Public id (not the cookie value).
    pub id: Uuid,
    /// Sign-in time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last request.
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
    /// Absolute end.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// IP at sign-in.
    pub ip: Option<String>,
    /// Browser at sign-in.
    pub user_agent: Option<String>,
    /// Whether this is the session making the request.
    pub current: bool,
}

impl SessionView {
    /// The view of a stored session.
    pub fn new(s: &pixeld_core::store::Session, current: bool) -> Self {
        Self {
            id: s.id,
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            expires_at: s.expires_at,
            ip: s.ip.clone(),
            user_agent: s.user_agent.clone(),
            current,
        }
    }
}

/// The result of a sign-in step.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignInResponse {
    /// `signed_in`, or `second_factor_required` (send a code to `/v1/auth/signin/2fa`).
    #[schema(example = "signed_in")]
    pub status: String,
    /// For `second_factor_required`: the challenge to send with the code (valid 5 minutes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub challenge: Option<String>,
    /// For `signed_in`: the account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<UserView>,
    /// For `signed_in`: the session (its secret is in the `pixeld_session` cookie only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionView>,
    /// For `signed_in`: the token to send as `X-CSRF-Token` or a `csrf_token` form field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
}

fn client(ip: ClientIp, headers: &HeaderMap) -> ClientInfo {
    ClientInfo {
        ip: ip.text(),
        user_agent: user_agent(headers),
    }
}

/// Builds the session cookie.
pub fn session_cookie_header(st: &AppState, value: &str, max_age: i64) -> HeaderValue {
    cookie_header(st, SESSION_COOKIE, value, max_age)
}

/// A `Set-Cookie` value for one of the site's own cookies: HttpOnly, SameSite=Lax, the whole
/// site, and `Secure` when the public URL is https. `max_age` 0 removes it.
pub fn cookie_header(st: &AppState, name: &str, value: &str, max_age: i64) -> HeaderValue {
    let secure = if st.config.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; HttpOnly; SameSite=Lax; Path=/; Max-Age={max_age}{secure}"
    ))
    .expect("cookie is ascii")
}

/// Rotation at sign-in: whatever session the browser had before is ended, so a session id
/// planted before sign-in is worthless after it.
pub async fn end_previous_session(st: &AppState, headers: &HeaderMap) {
    if let Some(old) = session_cookie(headers)
        && let Ok((s, _)) = st.app.authenticate_session(&old).await
    {
        let _ = st.app.end_session(s.user_id, s.id).await;
    }
}

async fn signed_in(st: &AppState, headers: &HeaderMap, new: NewSession) -> ApiResult<Response> {
    end_previous_session(st, headers).await;
    let user = st
        .app
        .store
        .user_by_id(new.session.user_id)
        .await
        .map_err(pixeld_core::Error::from)?
        .ok_or(pixeld_core::Error::Unauthenticated)?;
    let body = SignInResponse {
        status: "signed_in".into(),
        challenge: None,
        user: Some((&user).into()),
        session: Some(SessionView::new(&new.session, true)),
        csrf_token: Some(csrf_token(&new.secret)),
    };
    let max_age = (new.session.expires_at - st.app.now()).whole_seconds();
    let mut resp = Json(body).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie_header(st, &new.secret, max_age),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // A replay must not hand out the CSRF token of a session cookie it does not set.
    resp.extensions_mut()
        .insert(RedactForReplay(br#"{"status":"signed_in"}"#.to_vec()));
    Ok(resp)
}

/// Checks email and password. Answers `signed_in` with a session cookie, or
/// `second_factor_required` with a challenge when 2FA is on.
#[utoipa::path(post, path = "/v1/auth/signin", tag = "auth", request_body = SignInRequest,
    responses((status = 200, description = "Signed in (cookie set) or second factor required", body = SignInResponse)))]
pub async fn sign_in(
    State(st): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    Json(req): Json<SignInRequest>,
) -> ApiResult<Response> {
    match st
        .app
        .sign_in(&req.email, &req.password, client(ip, &headers))
        .await?
    {
        SignIn::Done(new) => signed_in(&st, &headers, new).await,
        SignIn::NeedsSecondFactor { challenge } => {
            let body = SignInResponse {
                status: "second_factor_required".into(),
                challenge: Some(challenge),
                user: None,
                session: None,
                csrf_token: None,
            };
            let mut resp = Json(body).into_response();
            resp.extensions_mut().insert(RedactForReplay(
                br#"{"status":"second_factor_required"}"#.to_vec(),
            ));
            Ok(resp)
        }
    }
}

/// Finishes a sign-in with a TOTP code (each code once) or a recovery code (each code once).
#[utoipa::path(post, path = "/v1/auth/signin/2fa", tag = "auth", request_body = SecondFactorRequest,
    responses((status = 200, description = "Signed in (cookie set)", body = SignInResponse)))]
pub async fn sign_in_2fa(
    State(st): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    Json(req): Json<SecondFactorRequest>,
) -> ApiResult<Response> {
    let new = st
        .app
        .sign_in_second_factor(&req.challenge, &req.code, client(ip, &headers))
        .await?;
    signed_in(&st, &headers, new).await
}

/// Ends the current session and clears the cookie.
#[utoipa::path(post, path = "/v1/auth/signout", tag = "auth",
    responses((status = 204, description = "Signed out")))]
pub async fn sign_out(State(st): State<AppState>, s: SessionAuth) -> ApiResult<Response> {
    st.app.end_session(s.session.user_id, s.session.id).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, session_cookie_header(&st, "", 0));
    Ok(resp)
}

/// Emails a single-use reset link (valid 1 hour) if the account exists; answers the same either way.
#[utoipa::path(post, path = "/v1/auth/password-reset", tag = "auth", request_body = EmailRequest,
    responses((status = 202, description = "Sent if the account exists", body = MessageView)))]
pub async fn request_reset(
    State(st): State<AppState>,
    Json(req): Json<EmailRequest>,
) -> ApiResult<(StatusCode, Json<MessageView>)> {
    st.app.request_password_reset(&req.email).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(MessageView::new(
            "if an account uses this address, a reset link is on its way",
        )),
    ))
}

/// A new password with a reset token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    /// The `token` from the reset link.
    pub token: String,
    /// The new password: 8 to 128 characters, not a common password.
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
}

/// Sets a new password with the token from the reset email; every session is signed out.
#[utoipa::path(post, path = "/v1/auth/password-reset/confirm", tag = "auth", request_body = ResetRequest,
    responses((status = 204, description = "Password changed; sign in again")))]
pub async fn confirm_reset(
    State(st): State<AppState>,
    Json(req): Json<ResetRequest>,
) -> ApiResult<StatusCode> {
    st.app.reset_password(&req.token, &req.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The current session.
#[derive(Debug, Serialize, ToSchema)]
pub struct CurrentSession {
    /// The account.
    pub user: UserView,
    /// The session.
    pub session: SessionView,
    /// The CSRF token for forms and cookie-authenticated writes.
    pub csrf_token: String,
}

/// The signed-in user, their session and CSRF token.
#[utoipa::path(get, path = "/v1/auth/session", tag = "auth",
    responses((status = 200, description = "The current session", body = CurrentSession)))]
pub async fn current_session(s: SessionAuth) -> ApiResult<Json<CurrentSession>> {
    Ok(Json(CurrentSession {
        user: (&s.principal.user).into(),
        session: SessionView::new(&s.session, true),
        csrf_token: csrf_token(&s.secret),
    }))
}
