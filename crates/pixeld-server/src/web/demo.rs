//! The landing page's live demo: the starter card rendered by this server's own engine with
//! the visitor's words. No account and no credits; bounded text, a per-IP rate limit
//! (`rate_limit.demo_per_minute`) and a small in-memory cache keep it cheap.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use pixeld_render::{Data, Format, Template};

use crate::AppState;
use crate::extract::{ClientIp, Query};
use crate::problem::ApiError;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/demo.webp", get(demo))
}

/// The headline shown before the visitor types one.
pub const DEFAULT_TITLE: &str = "Render images from templates, fast";
/// The second line shown before the visitor types one.
pub const DEFAULT_SUBTITLE: &str = "pixeld.example";
const MAX_TITLE: usize = 100;
const MAX_SUBTITLE: usize = 40;
/// The card's own 1200 × 630, shown at half that size (sharp on high-density screens).
const SCALE: f32 = 1.0;
const CACHED: usize = 64;

/// What the visitor typed.
#[derive(Debug, Default, serde::Deserialize)]
pub struct DemoQuery {
    /// Headline.
    pub title: Option<String>,
    /// Second line.
    pub subtitle: Option<String>,
}

/// The words to render, or why they cannot be: `(title, subtitle)`.
pub fn words(q: &DemoQuery) -> Result<(String, String), String> {
    let clean = |v: Option<&String>, default: &str, max: usize, what: &str| {
        let v = v
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .unwrap_or(default);
        if v.chars().count() > max {
            Err(format!("The {what} can be at most {max} characters."))
        } else if v.chars().any(char::is_control) {
            Err(format!("The {what} cannot contain control characters."))
        } else {
            Ok(v.to_string())
        }
    };
    Ok((
        clean(q.title.as_ref(), DEFAULT_TITLE, MAX_TITLE, "title")?,
        clean(
            q.subtitle.as_ref(),
            DEFAULT_SUBTITLE,
            MAX_SUBTITLE,
            "second line",
        )?,
    ))
}

/// The image URL for these words.
pub fn src(title: &str, subtitle: &str) -> String {
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("title", title)
        .append_pair("subtitle", subtitle)
        .finish();
    format!("/demo.webp?{q}")
}

fn template() -> Result<Arc<Template>, ApiError> {
    static T: OnceLock<Result<Arc<Template>, String>> = OnceLock::new();
    T.get_or_init(|| {
        pixeld_render::parse(
            super::templates::STARTER.as_bytes(),
            &pixeld_render::Limits::default(),
        )
        .map(Arc::new)
        .map_err(|e| e.to_string())
    })
    .clone()
    .map_err(|e| ApiError::from(pixeld_core::Error::Internal(e)))
}

/// A demo's words: title and second line.
type Words = (String, String);

/// The most recent demo renders by their words (the newest last).
#[derive(Debug, Default)]
pub struct DemoCache(Mutex<VecDeque<(Words, Arc<Vec<u8>>)>>);

fn image(bytes: Arc<Vec<u8>>) -> Response {
    let mut r = bytes.as_ref().clone().into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/webp"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    r
}

async fn demo(
    State(st): State<AppState>,
    parts: Parts,
    Query(q): Query<DemoQuery>,
) -> Result<Response, ApiError> {
    let (title, subtitle) =
        words(&q).map_err(|e| ApiError::from(pixeld_core::Error::invalid("title", e)))?;
    let key = (title, subtitle);
    let hit = st
        .demo
        .0
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.clone());
    if let Some(bytes) = hit {
        return Ok(image(bytes));
    }
    let ip = ClientIp::from_parts(&parts, st.config.trust_proxy_headers)
        .text()
        .unwrap_or_else(|| "unknown".into());
    crate::middleware::check(&st.limiters.demo, &ip)?;
    let data: Data = [
        ("title".to_string(), key.0.clone()),
        ("subtitle".to_string(), key.1.clone()),
        ("tag".to_string(), "LIVE DEMO".to_string()),
    ]
    .into_iter()
    .collect();
    let bytes = Arc::new(
        st.app
            .render_demo(template()?, data, Format::Webp, SCALE)
            .await?,
    );
    let mut c = st.demo.0.lock().unwrap_or_else(|e| e.into_inner());
    if c.len() >= CACHED {
        c.pop_front();
    }
    c.push_back((key, bytes.clone()));
    drop(c);
    Ok(image(bytes))
}
