//! Extractors: who is calling (token or session), from where, and JSON/query input whose
//! rejections are problem documents.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{
    ConnectInfo, FromRef, FromRequest, FromRequestParts, OptionalFromRequestParts, Request,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum_extra::extract::CookieJar;
use pixeld_core::principal::{Credential, Principal};
use pixeld_core::store::Session;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::AppState;
use crate::problem::ApiError;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "pixeld_session";
/// Header choosing the organisation a session request acts in (tokens are bound to one).
pub const ORG_HEADER: &str = "x-pixeld-org";

/// The client's IP address (from the socket, or `X-Forwarded-For` when trusted).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl ClientIp {
    /// Reads the address from request parts.
    pub fn from_parts(parts: &Parts, trust_proxy: bool) -> Self {
        if trust_proxy && let Some(ip) = forwarded_for(&parts.headers) {
            return ClientIp(Some(ip));
        }
        ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        )
    }

    /// The address as text.
    pub fn text(&self) -> Option<String> {
        self.0.map(|ip| ip.to_string())
    }
}

fn forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    headers
        .get("x-forwarded-for")?
        .to_str()
        .ok()?
        .split(',')
        .next()?
        .trim()
        .parse()
        .ok()
}

impl<S> FromRequestParts<S> for ClientIp
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let st = AppState::from_ref(state);
        Ok(Self::from_parts(parts, st.config.trust_proxy_headers))
    }
}

/// The `User-Agent` header, if any.
pub fn user_agent(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(256).collect())
}

/// The bearer token in `Authorization`, if that header is a bearer one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// The session cookie's value, if present.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    CookieJar::from_headers(headers)
        .get(SESSION_COOKIE)
        .map(|c| c.value().to_string())
}

/// An authenticated caller: a bearer token, or else a session cookie. Any failure answers 401
/// with the same body.
#[derive(Debug, Clone)]
pub struct Auth(pub Principal);

impl<S> FromRequestParts<S> for Auth
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(p) = parts.extensions.get::<Auth>() {
            return Ok(p.clone());
        }
        let st = AppState::from_ref(state);
        let ip = ClientIp::from_parts(parts, st.config.trust_proxy_headers);
        let principal = if parts.headers.contains_key(header::AUTHORIZATION) {
            let token = bearer(&parts.headers).ok_or(pixeld_core::Error::Unauthenticated)?;
            st.app
                .authenticate_token(token, ip.text().as_deref())
                .await?
        } else {
            <SessionAuth as FromRequestParts<S>>::from_request_parts(parts, state)
                .await?
                .principal
        };
        crate::middleware::UsageSlot::fill(parts, &principal);
        let auth = Auth(principal);
        parts.extensions.insert(auth.clone());
        Ok(auth)
    }
}

/// A caller authenticated by session cookie only (sign-out, session management).
#[derive(Debug, Clone)]
pub struct SessionAuth {
    /// The session.
    pub session: Session,
    /// The cookie value (to derive the CSRF token).
    pub secret: String,
    /// The caller, in the organisation chosen by `X-Pixeld-Org` (personal by default).
    pub principal: Principal,
}

impl<S> FromRequestParts<S> for SessionAuth
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(s) = parts.extensions.get::<SessionAuth>() {
            return Ok(s.clone());
        }
        let st = AppState::from_ref(state);
        let secret = session_cookie(&parts.headers).ok_or(pixeld_core::Error::Unauthenticated)?;
        let (session, user) = st.app.authenticate_session(&secret).await?;
        let base = Principal {
            org_id: user.personal_org_id,
            role: pixeld_core::roles::Role::Owner,
            user,
            credential: Credential::Session {
                session_id: session.id,
            },
        };
        let org_id = match parts.headers.get(ORG_HEADER) {
            None => base.org_id,
            Some(v) => v
                .to_str()
                .ok()
                .and_then(|s| Uuid::parse_str(s).ok())
                .ok_or_else(|| {
                    ApiError::bad_request(format!("{ORG_HEADER} must be an organisation id"))
                })?,
        };
        // Resolve the real role even for the personal organisation.
        let m = st
            .app
            .store
            .membership(org_id, base.user.id)
            .await
            .map_err(pixeld_core::Error::from)?;
        let principal = match m {
            Some(m) => Principal {
                org_id,
                role: m.role,
                ..base
            },
            None => return Err(pixeld_core::Error::NotFound.into()),
        };
        crate::middleware::UsageSlot::fill(parts, &principal);
        let s = SessionAuth {
            session,
            secret,
            principal,
        };
        parts.extensions.insert(s.clone());
        Ok(s)
    }
}

impl<S> OptionalFromRequestParts<S> for SessionAuth
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        if session_cookie(&parts.headers).is_none() {
            return Ok(None);
        }
        match <SessionAuth as FromRequestParts<S>>::from_request_parts(parts, state).await {
            Ok(s) => Ok(Some(s)),
            Err(_) => Ok(None),
        }
    }
}

/// A JSON body whose rejections are problem documents.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::rejection::JsonRejection as R;
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(R::JsonDataError(e)) => Err(ApiError::new("validation", e.body_text())),
            Err(R::MissingJsonContentType(_)) => Err(ApiError::new(
                "unsupported-media-type",
                "send the body as JSON with Content-Type: application/json",
            )),
            Err(R::BytesRejection(e))
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE =>
            {
                Err(ApiError::new(
                    "payload-too-large",
                    "the request body is larger than this server accepts",
                ))
            }
            Err(e) => Err(ApiError::bad_request(e.body_text())),
        }
    }
}

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// A query string whose rejections are problem documents.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(e) => Err(ApiError::new("validation", e.body_text())),
        }
    }
}

/// A path parameter whose rejections are 404 problems (a malformed id names nothing).
#[derive(Debug, Clone, Copy)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match <axum::extract::Path<T> as FromRequestParts<S>>::from_request_parts(parts, state)
            .await
        {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(_) => Err(ApiError::new("not-found", "no such resource")),
        }
    }
}
