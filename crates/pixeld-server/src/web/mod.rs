//! The website and dashboard: server-rendered pages (askama templates in `templates/`) that
//! call the same core operations as the JSON API. Every page works without JavaScript; htmx
//! and a small script (both served from `/static`, never a CDN) only make it quicker.
//!
//! Forms post back to the page they came from and answer with a redirect (so a reload does not
//! submit twice) or, when something was wrong, the same form again with the reason. Secrets
//! shown once (tokens, recovery codes) are rendered into the POST's response and never stored.

mod account;
mod admin;
mod assets;
mod batch;
mod billing;
mod demo;
mod images;
mod orgs;
mod public;
mod support;
mod templates;

use askama::Template;
use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use pixeld_core::principal::Principal;
use pixeld_core::roles::Role;
use pixeld_core::sessions::csrf_token;
use uuid::Uuid;

pub use demo::DemoCache;

use crate::AppState;
use crate::extract::SessionAuth;

/// The routes of the website and dashboard.
pub fn router(max_upload: usize) -> Router<AppState> {
    Router::new()
        .merge(assets::router())
        .merge(public::router())
        .merge(account::router())
        .merge(images::router(max_upload))
        .merge(billing::router())
        .merge(templates::router())
        .merge(orgs::router())
        .merge(admin::router())
        .merge(support::router())
        .merge(demo::router())
        .merge(batch::router())
}

/// No such route: a page for a browser (a mistyped or stale link), problem+json for the API.
pub async fn not_found(req: Request) -> Response {
    let wants_page = !req.uri().path().starts_with("/v1/")
        && req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
    if wants_page {
        framed_with(
            StatusCode::NOT_FOUND,
            Chrome::new("Page not found", "", None),
            "<h1>Page not found</h1><p>There is no page at this address. It may have moved, or \
             the link may be mistyped.</p><p><a href=\"/\">pixeld home</a> · \
             <a href=\"/dashboard\">Your dashboard</a> · <a href=\"/docs\">API reference</a></p>",
        )
    } else {
        crate::problem::ApiError::new("not-found", "no such route").into_response()
    }
}

/// Content Security Policy for pages: scripts and styles only from this site, no inline script,
/// no framing. Images may be data URIs (QR codes, previews) and blobs (upload previews).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
                   connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
                   form-action 'self'; frame-ancestors 'none'";

/// Adds the security headers every HTML response carries, unless the handler set its own.
pub fn security_headers(h: &mut HeaderMap) {
    let defaults = [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    for (name, value) in defaults {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    }
    if !h.contains_key("permissions-policy") {
        h.insert(
            "permissions-policy",
            HeaderValue::from_static(
                "camera=(), microphone=(), geolocation=(), interest-cohort=()",
            ),
        );
    }
    if !h.contains_key("cross-origin-opener-policy") {
        h.insert(
            "cross-origin-opener-policy",
            HeaderValue::from_static("same-origin"),
        );
    }
}

/// The signed-in user as the page header shows them.
#[derive(Debug, Clone)]
pub struct NavUser {
    /// Display name.
    pub name: String,
    /// Email address.
    pub email: String,
    /// Instance operator.
    pub is_admin: bool,
}

/// What every page's frame needs: title, navigation, the signed-in user, the CSRF token for
/// its forms, and a notice or error to show above the content.
#[derive(Debug, Clone)]
pub struct Chrome {
    /// The page title (before " · pixeld").
    pub title: String,
    /// Which navigation entry is current.
    pub nav: &'static str,
    /// The signed-in user, if any.
    pub user: Option<NavUser>,
    /// The CSRF token for forms (empty when signed out).
    pub csrf: String,
    /// A success message.
    pub notice: Option<String>,
    /// What went wrong.
    pub error: Option<String>,
    /// Busts browser caches of `/static` when the assets change.
    pub asset_version: &'static str,
    /// The server version.
    pub version: &'static str,
    /// The organisation the dashboard acts in (signed-in pages).
    pub org: Option<OrgChip>,
}

impl Chrome {
    /// The frame of a page for a visitor who may or may not be signed in.
    pub fn new(title: impl Into<String>, nav: &'static str, session: Option<&SessionAuth>) -> Self {
        Self {
            title: title.into(),
            nav,
            user: session.map(|s| NavUser {
                name: s.principal.user.name.clone(),
                email: s.principal.user.email.clone(),
                is_admin: s.principal.user.is_admin,
            }),
            csrf: session.map(|s| csrf_token(&s.secret)).unwrap_or_default(),
            notice: None,
            error: None,
            asset_version: assets::version(),
            version: env!("CARGO_PKG_VERSION"),
            org: None,
        }
    }

    /// With a success message.
    pub fn notice(mut self, n: impl Into<String>) -> Self {
        self.notice = Some(n.into());
        self
    }

    /// With a success message, if there is one (a redirect's `?done=` turned into words).
    pub fn notice_if(self, n: Option<&str>) -> Self {
        match n {
            Some(n) => self.notice(n),
            None => self,
        }
    }

    /// With an error message.
    pub fn error(mut self, e: impl Into<String>) -> Self {
        self.error = Some(e.into());
        self
    }
}

#[derive(Template)]
#[template(path = "framed.html")]
struct Framed<'a> {
    c: Chrome,
    body: &'a str,
}

/// A page whose content was built (and escaped) by its handler, in the site's frame.
pub fn framed(c: Chrome, body_html: &str) -> Response {
    framed_with(StatusCode::OK, c, body_html)
}

/// [`framed`] with a status.
pub fn framed_with(status: StatusCode, c: Chrome, body_html: &str) -> Response {
    page_with(status, &Framed { c, body: body_html })
}

/// Renders a page as `200 OK`.
pub fn page<T: Template>(t: &T) -> Response {
    page_with(StatusCode::OK, t)
}

/// Renders a page with a status (a form shown again after an error answers 422).
pub fn page_with<T: Template>(status: StatusCode, t: &T) -> Response {
    match t.render() {
        Ok(body) => {
            let mut r = (status, body).into_response();
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            // Pages show account data; nothing may keep them.
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "page template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                "<!doctype html><title>Error</title><p>This page could not be shown.</p>",
            )
                .into_response()
        }
    }
}

/// The status a form shown again after `e` answers with.
pub fn status_of(e: &pixeld_core::Error) -> StatusCode {
    use pixeld_core::Error as E;
    match e {
        E::BadCredentials | E::Unauthenticated => StatusCode::UNAUTHORIZED,
        E::MissingScope(_) | E::Forbidden(_) | E::EmailNotVerified | E::AccountDisabled => {
            StatusCode::FORBIDDEN
        }
        E::NotFound => StatusCode::NOT_FOUND,
        E::BadSignature(_) => StatusCode::BAD_REQUEST,
        E::Conflict(_) | E::State(_) => StatusCode::CONFLICT,
        E::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

/// What a person reads when an operation failed: every invalid field, in plain words.
pub fn message_of(e: &pixeld_core::Error) -> String {
    use pixeld_core::Error as E;
    let text = match e {
        E::Invalid(fields) => fields
            .iter()
            .map(|f| format!("{} {}", f.field.replace('_', " "), f.message))
            .collect::<Vec<_>>()
            .join(". "),
        E::Internal(_) => {
            tracing::error!(error = %e, "page operation failed");
            "something went wrong on our side; try again in a moment".into()
        }
        other => other.to_string(),
    };
    let mut c = text.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect::<String>() + ".",
        None => String::new(),
    }
    .replace("..", ".")
}

/// The cookie holding the organisation the dashboard acts in (strictly necessary: without it
/// every page would act in the personal organisation).
pub const ORG_COOKIE: &str = "pixeld_org";

/// The organisation a page acts in, as the header shows it.
#[derive(Debug, Clone)]
pub struct OrgChip {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// The user's personal organisation.
    pub personal: bool,
    /// The user's role there.
    pub role: Role,
}

/// A signed-in visitor (session cookie), acting in the organisation chosen with the switcher
/// (the `pixeld_org` cookie; personal by default). Anyone else is sent to the sign-in page, and
/// comes back to where they were going after signing in.
pub struct Web {
    /// The session, with the principal in the chosen organisation.
    pub auth: SessionAuth,
    /// That organisation.
    pub org: OrgChip,
}

impl Web {
    /// The caller, in the organisation the dashboard acts in.
    pub fn principal(&self) -> &Principal {
        &self.auth.principal
    }

    /// The frame of a page for this visitor.
    pub fn chrome(&self, title: impl Into<String>, nav: &'static str) -> Chrome {
        let mut c = Chrome::new(title, nav, Some(&self.auth));
        c.org = Some(self.org.clone());
        c
    }
}

impl FromRequestParts<AppState> for Web {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        let mut auth = match <SessionAuth as FromRequestParts<AppState>>::from_request_parts(
            parts, st,
        )
        .await
        {
            Ok(s) => s,
            Err(_) => {
                let next = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/dashboard");
                let to = format!(
                    "/sign-in?next={}",
                    url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
                );
                return Err(Redirect::to(&to).into_response());
            }
        };
        let chosen = axum_extra::extract::CookieJar::from_headers(&parts.headers)
            .get(ORG_COOKIE)
            .and_then(|c| Uuid::parse_str(c.value()).ok())
            .filter(|id| *id != auth.principal.org_id);
        if let Some(org_id) = chosen {
            // A left or removed organisation falls back to the personal one.
            if let Ok(p) = st.app.principal_in(&auth.principal, org_id).await {
                auth.principal = p;
                crate::middleware::UsageSlot::fill(parts, &auth.principal);
            }
        }
        let org = st
            .app
            .store
            .org_by_id(auth.principal.org_id)
            .await
            .ok()
            .flatten()
            .ok_or_else(|| {
                (StatusCode::INTERNAL_SERVER_ERROR, "organisation not found").into_response()
            })?;
        let org = OrgChip {
            id: org.id,
            name: org.name,
            personal: org.personal,
            role: auth.principal.role,
        };
        Ok(Web { auth, org })
    }
}

/// A submitted form, kept as its pairs: repeated names (checkbox groups) and missing fields
/// are the page's business, never a rejection.
#[derive(Debug, Default)]
pub struct FormData(Vec<(String, String)>);

impl FormData {
    /// The first value of `name`, or `""`.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// The first value of `name`, if sent and not blank.
    pub fn opt(&self, name: &str) -> Option<&str> {
        Some(self.get(name)).filter(|v| !v.trim().is_empty())
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Whether a checkbox `name` was ticked.
    pub fn checked(&self, name: &str) -> bool {
        self.0.iter().any(|(k, v)| k == name && v != "false")
    }
}

impl FromRequest<AppState> for FormData {
    type Rejection = Response;
    async fn from_request(req: Request, st: &AppState) -> Result<Self, Response> {
        let bytes = axum::body::to_bytes(req.into_body(), st.config.max_body_bytes)
            .await
            .map_err(|_| {
                (StatusCode::PAYLOAD_TOO_LARGE, "the form is too large").into_response()
            })?;
        Ok(FormData(
            url::form_urlencoded::parse(&bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        ))
    }
}

/// The page of a list a `?cursor=` names (50 rows); a bad cursor starts from the beginning.
pub fn list_page(cursor: Option<&str>) -> pixeld_core::page::PageRequest {
    pixeld_core::page::PageRequest::parse(cursor, Some(50)).unwrap_or(
        pixeld_core::page::PageRequest {
            after: None,
            limit: 50,
        },
    )
}

/// Where to go after signing in: a path on this site, never another site.
pub fn safe_next(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\") {
        next
    } else {
        "/dashboard"
    }
}

/// A `303 See Other` to `to`, optionally with a notice code the target page turns into a message.
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// Formats a time for people: `3 Dec 2026, 14:05 UTC`.
pub fn when(t: time::OffsetDateTime) -> String {
    let f = time::macros::format_description!(
        "[day padding:none] [month repr:short] [year], [hour]:[minute] UTC"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(f)
        .unwrap_or_default()
}
