//! Health, readiness, metrics, the OpenAPI document, the API reference page and the problem
//! type pages.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::extract::{Json, Path};
use crate::problem::{ApiError, ApiResult, KINDS};

const REDOC_JS: &[u8] = include_bytes!("../../../../web/vendor/redoc.standalone.js");

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/docs", get(docs))
        .route("/assets/redoc.standalone.js", get(redoc_js))
        .route("/problems/{slug}", get(problem_page))
}

/// Liveness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
    /// Server version.
    pub version: String,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "system", security(()),
    responses((status = 200, description = "Alive", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

/// Readiness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    /// `ready`.
    pub status: String,
    /// `sqlite` or `postgres`.
    pub database: String,
}

/// The database answers.
#[utoipa::path(get, path = "/readyz", tag = "system", security(()),
    responses((status = 200, description = "Ready", body = Ready), (status = 503, description = "Database unreachable", body = crate::problem::Problem)))]
pub async fn readyz(State(st): State<AppState>) -> ApiResult<Json<Ready>> {
    st.app.store.ping().await.map_err(|e| {
        tracing::warn!(error = %e, "readiness check failed");
        ApiError::new("timeout", "the database does not answer")
    })?;
    Ok(Json(Ready {
        status: "ready".into(),
        database: st.app.store.backend().into(),
    }))
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "system", security(()),
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn metrics(State(st): State<AppState>) -> Response {
    let mut r = st.metrics.render().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(get, path = "/openapi.json", tag = "system", security(()),
    responses((status = 200, description = "OpenAPI 3.1 document", body = Object)))]
pub async fn openapi() -> Response {
    let mut r = crate::openapi::json().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

async fn docs() -> Response {
    let mut r = Html(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>pixeld API reference</title></head>
<body><redoc spec-url="/openapi.json"></redoc><script src="/assets/redoc.standalone.js"></script></body></html>"#,
    )
    .into_response();
    // ReDoc styles itself with injected <style> elements and searches in a blob worker; its
    // scripts still come only from this site.
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
             img-src 'self' data:; font-src 'self' data:; worker-src blob:; object-src 'none'; \
             base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    r
}

async fn redoc_js() -> Response {
    let mut r = REDOC_JS.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    r
}

async fn problem_page(Path(slug): Path<String>) -> Result<Html<String>, (StatusCode, ApiError)> {
    let Some((slug, status, title)) = KINDS.iter().find(|k| k.0 == slug) else {
        return Err((
            StatusCode::NOT_FOUND,
            ApiError::new("not-found", "no such problem type"),
        ));
    };
    Ok(Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head><body>\
         <h1>{title}</h1><p>Problem type <code>/problems/{slug}</code>, HTTP status {status}.</p>\
         <p>Responses of this type are <code>application/problem+json</code> documents (RFC 9457); \
         their <code>detail</code> says what went wrong and <code>request_id</code> identifies the request.</p>\
         </body></html>"
    )))
}
