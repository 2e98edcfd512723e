//! Cross-cutting request handling: request ids, problem documents for every error, metrics,
//! rate limits, CSRF protection and `Idempotency-Key`.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use pixeld_core::idempotency;
use pixeld_core::store::{IdempotencyClaim, IdempotentResponse};

use crate::AppState;
use crate::extract::{ClientIp, bearer, session_cookie};
use crate::problem::{ApiError, PROBLEM_JSON, problem_for_status};

/// Header carrying the request id, both ways.
pub const REQUEST_ID: &str = "x-request-id";

/// The id of the request being handled.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The route template that matched, copied onto the response for metrics.
#[derive(Debug, Clone)]
struct Route(String);

/// Set by a handler whose response holds a secret shown once: the idempotency store keeps this
/// body instead, so a replay never reveals (and storage never holds) the secret.
#[derive(Debug, Clone)]
pub struct RedactForReplay(pub Vec<u8>);

/// Outermost layer: request id, tracing span, metrics, and every error turned into a problem
/// document carrying the request id.
pub async fn edge(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let span = tracing::info_span!("request", request_id = %id, %method, %path);
    let started = Instant::now();
    let mut resp = tracing::Instrument::instrument(next.run(req), span.clone()).await;
    let status = resp.status();
    // Pages answer errors with their own HTML (a form shown again with what was wrong).
    let is_html = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if (status.is_client_error() || status.is_server_error()) && !is_html {
        resp = ensure_problem(resp, &id).await;
    }
    if is_html {
        crate::web::security_headers(resp.headers_mut());
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    let route = resp
        .extensions()
        .get::<Route>()
        .map(|r| r.0.clone())
        .unwrap_or_else(|| "unmatched".into());
    let elapsed = started.elapsed();
    // Time spent in the server, for clients and benchmarks (W3C Server Timing).
    if let Ok(v) = HeaderValue::from_str(&format!("app;dur={:.3}", elapsed.as_secs_f64() * 1e3)) {
        resp.headers_mut().insert("server-timing", v);
    }
    metrics::counter!("pixeld_http_requests_total", "method" => method.to_string(), "route" => route.clone(), "status" => status.as_u16().to_string()).increment(1);
    metrics::histogram!("pixeld_http_request_duration_seconds", "method" => method.to_string(), "route" => route).record(elapsed.as_secs_f64());
    let _g = span.enter();
    if status.is_server_error() {
        tracing::error!(
            status = status.as_u16(),
            ms = elapsed.as_millis() as u64,
            "request failed"
        );
    } else {
        tracing::debug!(
            status = status.as_u16(),
            ms = elapsed.as_millis() as u64,
            "request"
        );
    }
    resp
}

/// Copies the matched route template onto the response (installed as a route layer).
pub async fn record_route(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let mut resp = next.run(req).await;
    if let Some(r) = route {
        resp.extensions_mut().insert(Route(r));
    }
    resp
}

async fn ensure_problem(resp: Response, request_id: &str) -> Response {
    let is_problem = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    let (mut parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, 1024 * 1024)
        .await
        .unwrap_or_default();
    let mut doc: serde_json::Value = if is_problem {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| serde_json::json!({}))
    } else {
        let detail = String::from_utf8_lossy(&bytes).trim().to_string();
        let detail = (!detail.is_empty()).then_some(detail);
        let p = problem_for_status(parts.status, detail).problem();
        serde_json::to_value(p).unwrap_or_default()
    };
    doc["request_id"] = serde_json::Value::String(request_id.to_string());
    let body = serde_json::to_vec(&doc).unwrap_or_default();
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// The three keyed rate limiters.
pub struct Limiters {
    per_ip: DefaultKeyedRateLimiter<String>,
    per_credential: DefaultKeyedRateLimiter<String>,
    sign_in: DefaultKeyedRateLimiter<String>,
    /// The landing page's demo render, per IP.
    pub demo: DefaultKeyedRateLimiter<String>,
}

fn quota(per_minute: u32) -> Quota {
    let n = NonZeroU32::new(per_minute.max(1)).expect("non-zero");
    Quota::per_minute(n).allow_burst(n)
}

impl Limiters {
    /// Builds limiters from the configuration.
    pub fn new(c: &crate::config::RateLimitConfig) -> Self {
        Self {
            per_ip: RateLimiter::keyed(quota(c.per_ip_per_minute)),
            per_credential: RateLimiter::keyed(quota(c.per_credential_per_minute)),
            sign_in: RateLimiter::keyed(quota(c.sign_in_per_minute)),
            demo: RateLimiter::keyed(quota(c.demo_per_minute)),
        }
    }

    /// Forgets keys that are back to a full burst, bounding memory.
    pub fn prune(&self) {
        self.per_ip.retain_recent();
        self.per_credential.retain_recent();
        self.sign_in.retain_recent();
        self.demo.retain_recent();
    }
}

pub(crate) fn check(l: &DefaultKeyedRateLimiter<String>, key: &String) -> Result<(), ApiError> {
    l.check_key(key).map_err(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        ApiError::rate_limited(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
    })
}

/// Routes whose abuse means guessing passwords or spamming inboxes.
fn is_sensitive(path: &str) -> bool {
    matches!(
        path,
        "/v1/auth/signin"
            | "/v1/auth/signin/2fa"
            | "/v1/auth/signup"
            | "/v1/auth/password-reset"
            | "/v1/auth/password-reset/confirm"
            | "/v1/auth/verify-email"
            | "/v1/auth/verify-email/resend"
            | "/v1/account/deletion/cancel"
            | "/verify-email"
            | "/reset-password"
            | "/cancel-deletion"
    )
}

/// Per-IP, per-credential and (on sign-in routes) strict per-IP limits; 429 with `Retry-After`.
pub async fn rate_limit(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let ip = ClientIp::from_parts(&parts, st.config.trust_proxy_headers)
        .text()
        .unwrap_or_else(|| "unknown".into());
    let credential = bearer(&parts.headers)
        .map(str::to_string)
        .or_else(|| session_cookie(&parts.headers));
    let mut result = check(&st.limiters.per_ip, &ip);
    if result.is_ok()
        && let Some(c) = credential
    {
        result = check(
            &st.limiters.per_credential,
            &pixeld_core::secret::digest(&c),
        );
    }
    if result.is_ok() && parts.method == Method::POST && is_sensitive(parts.uri.path()) {
        result = check(&st.limiters.sign_in, &ip);
    }
    match result {
        Ok(()) => next.run(Request::from_parts(parts, body)).await,
        Err(e) => {
            metrics::counter!("pixeld_rate_limited_total").increment(1);
            e.into_response()
        }
    }
}

/// Refuses state-changing requests that carry the session cookie unless they come from our own
/// origin, and form posts unless they carry the session's CSRF token.
pub async fn csrf(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        // Authenticated by the link's own signature, never by the cookie, and must work in one
        // click from a mail client.
        || req.uri().path() == "/unsubscribe";
    let Some(cookie) = session_cookie(req.headers()) else {
        // Without a session there is nothing to ride on, except for the site's own forms: a
        // cross-site post to sign-in would sign the victim into the attacker's account.
        // Browsers send `Origin` on every cross-site POST, so one that is absent is not one.
        if !safe
            && !req.uri().path().starts_with("/v1/")
            && request_origin(&req).is_some()
            && !same_origin(&st, &req)
        {
            return ApiError::new(
                "csrf",
                "cross-site form refused: the Origin header is missing or not this site",
            )
            .into_response();
        }
        return next.run(req).await;
    };
    if safe || bearer(req.headers()).is_some() {
        return next.run(req).await;
    }
    if !same_origin(&st, &req) {
        return ApiError::new(
            "csrf",
            "cross-site request refused: the Origin header is missing or not this site",
        )
        .into_response();
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let is_form = content_type.starts_with("application/x-www-form-urlencoded")
        || content_type.starts_with("multipart/form-data");
    if !is_form {
        return next.run(req).await;
    }
    let expected = pixeld_core::sessions::csrf_token(&cookie);
    let header_token = req
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(t) = header_token {
        return if pixeld_core::secret::constant_time_eq(t.as_bytes(), expected.as_bytes()) {
            next.run(req).await
        } else {
            ApiError::new("csrf", "the CSRF token does not match this session").into_response()
        };
    }
    if content_type.starts_with("multipart/form-data") {
        // A file form without JavaScript cannot set a header, and its body is not read here,
        // so the token may come in the form's action URL instead.
        let in_query = req.uri().query().and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "csrf_token")
                .map(|(_, v)| v.into_owned())
        });
        return match in_query {
            Some(t) if pixeld_core::secret::constant_time_eq(t.as_bytes(), expected.as_bytes()) => {
                next.run(req).await
            }
            _ => ApiError::new(
                "csrf",
                "send the CSRF token in the X-CSRF-Token header or the csrf_token query parameter",
            )
            .into_response(),
        };
    }
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, st.config.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new("payload-too-large", "the request body is too large")
                .into_response();
        }
    };
    let token = url::form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == "csrf_token")
        .map(|(_, v)| v.into_owned());
    match token {
        Some(t) if pixeld_core::secret::constant_time_eq(t.as_bytes(), expected.as_bytes()) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        _ => ApiError::new(
            "csrf",
            "the form's CSRF token is missing or does not match this session",
        )
        .into_response(),
    }
}

/// The request's `Origin`, or else the origin of its `Referer`.
fn request_origin(req: &Request) -> Option<String> {
    req.headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            let r = req.headers().get(header::REFERER)?.to_str().ok()?;
            let u = url::Url::parse(r).ok()?;
            Some(u.origin().ascii_serialization())
        })
}

/// Whether the request's origin is this site.
fn same_origin(st: &AppState, req: &Request) -> bool {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let origin = request_origin(req);
    let public = st.config.public_url();
    origin.as_deref().is_some_and(|o| {
        o == public || o == format!("http://{host}") || o == format!("https://{host}")
    })
}

/// `Idempotency-Key` on POST: the first request runs; a retry with the same key and request gets
/// the stored response; the same key with a different request gets 422.
pub async fn idempotency(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(key) = req
        .headers()
        .get("idempotency-key")
        .map(|v| v.to_str().unwrap_or("").to_string())
    else {
        return next.run(req).await;
    };
    if !idempotency::valid_key(&key) {
        return ApiError::bad_request("Idempotency-Key must be 1 to 255 visible ASCII characters")
            .into_response();
    }
    let (parts, body) = req.into_parts();
    let caller = match bearer(&parts.headers)
        .map(str::to_string)
        .or_else(|| session_cookie(&parts.headers))
    {
        Some(c) => idempotency::caller_digest(&c),
        None => {
            let ip = ClientIp::from_parts(&parts, st.config.trust_proxy_headers)
                .text()
                .unwrap_or_default();
            idempotency::caller_digest(&format!("ip:{ip}"))
        }
    };
    let bytes: Bytes = match axum::body::to_bytes(body, st.config.max_request_bytes()).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new("payload-too-large", "the request body is too large")
                .into_response();
        }
    };
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let digest = idempotency::request_digest(parts.method.as_str(), path, &bytes);
    let store = st.app.store.clone();
    let claim = match store
        .idempotency_claim(&caller, &key, &digest, st.app.now())
        .await
    {
        Ok(c) => c,
        Err(e) => return ApiError::from(pixeld_core::Error::from(e)).into_response(),
    };
    match claim {
        IdempotencyClaim::Replay(r) => {
            let mut resp = (
                StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK),
                r.body,
            )
                .into_response();
            if let Ok(ct) = HeaderValue::from_str(&r.content_type) {
                resp.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            resp.headers_mut()
                .insert("idempotency-replayed", HeaderValue::from_static("true"));
            resp
        }
        IdempotencyClaim::Mismatch => ApiError::new(
            "idempotency-key-reused",
            "this Idempotency-Key was already used with a different request; use a new key",
        )
        .into_response(),
        IdempotencyClaim::InFlight => {
            let mut r = ApiError::new(
                "idempotency-in-flight",
                "a request with this Idempotency-Key is still running; retry shortly",
            )
            .into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(1));
            r
        }
        IdempotencyClaim::Fresh => {
            let resp = next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
            let status = resp.status();
            if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                // Not a result worth replaying: let the client retry with the same key.
                let _ = store.idempotency_release(&caller, &key).await;
                return resp;
            }
            let (parts, body) = resp.into_parts();
            let body = axum::body::to_bytes(body, 16 * 1024 * 1024)
                .await
                .unwrap_or_default();
            let stored_body = parts
                .extensions
                .get::<RedactForReplay>()
                .map(|r| r.0.clone())
                .unwrap_or_else(|| body.to_vec());
            let content_type = parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/json")
                .to_string();
            let saved = IdempotentResponse {
                status: status.as_u16(),
                content_type,
                body: stored_body,
            };
            if let Err(e) = store.idempotency_complete(&caller, &key, &saved).await {
                tracing::warn!(error = %e, "could not store the idempotent response");
            }
            Response::from_parts(parts, Body::from(body))
        }
    }
}

/// Who made a request: organisation, user and (for tokens) the token's id.
pub type Caller = (uuid::Uuid, uuid::Uuid, Option<uuid::Uuid>);

/// Who a request turned out to be, filled in by the auth extractors, for the usage log.
#[derive(Debug, Clone, Default)]
pub struct UsageSlot(pub Arc<std::sync::Mutex<Option<Caller>>>);

impl UsageSlot {
    /// Notes the authenticated caller of the request these parts belong to.
    pub fn fill(parts: &axum::http::request::Parts, p: &pixeld_core::principal::Principal) {
        if let Some(slot) = parts.extensions.get::<UsageSlot>() {
            let token = match &p.credential {
                pixeld_core::principal::Credential::Token { token_id, .. } => Some(*token_id),
                pixeld_core::principal::Credential::Session { .. } => None,
            };
            *slot.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((p.org_id, p.user.id, token));
        }
    }
}

fn body_len(headers: &axum::http::HeaderMap, exact: Option<u64>) -> i64 {
    exact
        .or_else(|| {
            headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
        })
        .map_or(0, |n: u64| i64::try_from(n).unwrap_or(i64::MAX))
}

/// Writes a usage row for every API request (`/v1/…` and signed render URLs): who, which route,
/// status, latency, bytes, credits, address, country and user agent.
pub async fn usage(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let api = path.starts_with("/v1/") || path.starts_with("/r/");
    // A dashboard form that spends credits (optimizing on the images page) is logged too, so
    // the log accounts for every credit; other page views are not API use.
    let page_post = !api && req.method() == Method::POST;
    // Analytics hits are the website's own telemetry, not API use: logging their address and
    // user agent would undo the cookieless counting.
    if !st.config.usage.enabled || !(api || page_post) || path == "/v1/analytics/events" {
        return next.run(req).await;
    }
    let started = Instant::now();
    let at = st.app.now();
    let (mut parts, body) = req.into_parts();
    let ip = ClientIp::from_parts(&parts, st.config.trust_proxy_headers).0;
    let user_agent = crate::extract::user_agent(&parts.headers);
    let method = parts.method.to_string();
    let bytes_in = body_len(
        &parts.headers,
        axum::body::HttpBody::size_hint(&body).exact(),
    );
    let slot = UsageSlot::default();
    parts.extensions.insert(slot.clone());
    let (resp, credits) =
        pixeld_core::usage::metered(next.run(Request::from_parts(parts, body))).await;
    let route = resp
        .extensions()
        .get::<Route>()
        .map(|r| r.0.clone())
        .unwrap_or_else(|| "unmatched".into());
    let bytes_out = body_len(
        resp.headers(),
        axum::body::HttpBody::size_hint(resp.body()).exact(),
    );
    if !api && credits == 0 {
        return resp;
    }
    let who = slot.0.lock().unwrap_or_else(|e| e.into_inner()).take();
    let ip_text = ip.map(|i| i.to_string());
    st.app.record_usage(pixeld_core::usage::UsageEvent {
        id: uuid::Uuid::now_v7(),
        at,
        org_id: who.map(|w| w.0),
        user_id: who.map(|w| w.1),
        token_id: who.and_then(|w| w.2),
        method,
        route,
        status: resp.status().as_u16(),
        latency_us: i64::try_from(started.elapsed().as_micros()).unwrap_or(i64::MAX),
        bytes_in,
        bytes_out,
        credits,
        ip_network: ip_text
            .as_deref()
            .and_then(pixeld_core::privacy::truncate_ip),
        ip: ip_text,
        country: ip.and_then(|i| st.geo.country(i)),
        user_agent,
    });
    resp
}

/// Shared handle to the limiters.
pub type SharedLimiters = Arc<Limiters>;
