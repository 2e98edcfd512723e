//! The site's own stylesheet and script and the vendored htmx, compiled into the binary.

use std::sync::OnceLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use crate::AppState;

/// `(name, content type, bytes)` of every file under `/static`.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../../web/static/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../../web/static/app.js"),
    ),
    (
        "htmx.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../../web/vendor/htmx.min.js"),
    ),
];

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/static/{file}", get(file))
}

/// A short hash of every asset, added to their URLs so a new release is fetched at once while
/// an unchanged one is cached for a year.
pub fn version() -> &'static str {
    static V: OnceLock<String> = OnceLock::new();
    V.get_or_init(|| {
        let mut h = Sha256::new();
        for (_, _, bytes) in FILES {
            h.update(bytes);
        }
        hex::encode(&h.finalize()[..6])
    })
}

async fn file(Path(name): Path<String>) -> Response {
    let Some((_, ty, bytes)) = FILES.iter().find(|f| f.0 == name) else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "no such file",
        )
            .into_response();
    };
    let mut r = bytes.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ty));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}
