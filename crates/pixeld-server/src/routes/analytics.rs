//! Cookieless analytics over HTTP: pages report views and feature events (no cookie is set; a
//! session cookie, if sent, is only read to honour that user's objection), operators read
//! aggregates.

use axum::Router;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use pixeld_core::analytics::{Count, Hit, HitSource, Report};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::extract::{Auth, ClientIp, Json, Query, SessionAuth};
use crate::problem::ApiResult;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/analytics/events", post(collect))
        .route("/v1/admin/analytics", get(report))
}

/// Which site a hit is from.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SiteParam {
    /// The public website.
    Website,
    /// The signed-in dashboard.
    Dashboard,
}

/// What a hit is.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HitKind {
    /// A page was shown.
    Pageview,
    /// A feature was used.
    Event,
}

/// What a page reports.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HitRequest {
    /// Which site.
    pub site: SiteParam,
    /// Page view or feature event.
    pub kind: HitKind,
    /// The page path (its query string is dropped) or the feature event's name.
    #[schema(
        example = "/pricing",
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: String,
    /// `document.referrer`; only its host is kept, and not when it is this site.
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub referrer: Option<String>,
}

impl HitRequest {
    fn site(&self) -> &'static str {
        match self.site {
            SiteParam::Website => "website",
            SiteParam::Dashboard => "dashboard",
        }
    }

    fn kind(&self) -> &'static str {
        match self.kind {
            HitKind::Pageview => "pageview",
            HitKind::Event => "event",
        }
    }
}

/// Whether the hit counted.
#[derive(Debug, Serialize, ToSchema)]
pub struct HitResponse {
    /// False when the visitor asked not to be counted (`DNT`, `Sec-GPC`, an objection).
    pub counted: bool,
}

/// `DNT: 1` or `Sec-GPC: 1`.
pub fn do_not_track(headers: &HeaderMap) -> bool {
    ["dnt", "sec-gpc"].iter().any(|h| {
        headers
            .get(*h)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() == "1")
    })
}

/// The source of a hit, from a request.
pub fn source(st: &AppState, parts: &Parts, user_id: Option<uuid::Uuid>) -> HitSource {
    let ip = ClientIp::from_parts(parts, st.config.trust_proxy_headers).0;
    HitSource {
        ip: ip.map(|i| i.to_string()),
        user_agent: crate::extract::user_agent(&parts.headers),
        country: ip.and_then(|i| st.geo.country(i)),
        do_not_track: do_not_track(&parts.headers),
        user_id,
        own_host: url::Url::parse(&st.config.public_url())
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase)),
    }
}

/// Counts a page view or feature event without cookies: the visitor is a hash of a daily salt
/// (deleted after 48 h), the site, the address and the user agent, so nobody can be followed
/// across days; nothing identifying is stored. Not counted with `DNT: 1`, `Sec-GPC: 1`, or for a
/// signed-in user who objected to analytics or restricted processing.
#[utoipa::path(post, path = "/v1/analytics/events", tag = "privacy", request_body = HitRequest,
    responses((status = 202, description = "Received", body = HitResponse)))]
pub async fn collect(
    State(st): State<AppState>,
    parts: Parts,
    session: Option<SessionAuth>,
    Json(req): Json<HitRequest>,
) -> ApiResult<(StatusCode, Json<HitResponse>)> {
    if req
        .referrer
        .as_ref()
        .is_some_and(|r| r.chars().count() > 2000)
    {
        return Err(
            pixeld_core::Error::invalid("referrer", "must be at most 2000 characters").into(),
        );
    }
    let src = source(&st, &parts, session.map(|s| s.principal.user.id));
    let counted = st
        .app
        .record_hit(
            Hit {
                site: req.site().into(),
                kind: req.kind().into(),
                name: req.name,
                referrer: req
                    .referrer
                    .or_else(|| header_text(&parts.headers, header::REFERER)),
            },
            src,
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(HitResponse { counted })))
}

fn header_text(h: &HeaderMap, name: header::HeaderName) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The report's span.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportParams {
    /// Which site (default `website`).
    #[param(inline)]
    pub site: Option<SiteParam>,
    /// First UTC day (default: 29 days before `until`).
    #[param(value_type = Option<String>, format = Date)]
    pub since: Option<String>,
    /// Last UTC day (default: today).
    #[param(value_type = Option<String>, format = Date)]
    pub until: Option<String>,
}

/// A count under one key.
#[derive(Debug, Serialize, ToSchema)]
pub struct CountView {
    /// The page, event, referrer, country or device.
    pub key: String,
    /// Hits.
    pub views: i64,
    /// Distinct visitors per day, summed.
    pub visitors: i64,
}

/// Aggregates only: no visitor, address or user agent ever leaves the server.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportView {
    /// Page views.
    pub views: i64,
    /// Feature events.
    pub events: i64,
    /// Distinct visitors per day, summed.
    pub visitors: i64,
    /// Top pages.
    pub top_pages: Vec<CountView>,
    /// Top feature events.
    pub top_events: Vec<CountView>,
    /// Referring hosts.
    pub referrers: Vec<CountView>,
    /// Countries.
    pub countries: Vec<CountView>,
    /// `desktop`, `mobile`, `tablet` (bots are not counted).
    pub devices: Vec<CountView>,
}

fn counts(c: Vec<Count>) -> Vec<CountView> {
    c.into_iter()
        .map(|c| CountView {
            key: c.key,
            views: c.views,
            visitors: c.visitors,
        })
        .collect()
}

impl From<Report> for ReportView {
    fn from(r: Report) -> Self {
        Self {
            views: r.views,
            events: r.events,
            visitors: r.visitors,
            top_pages: counts(r.top_pages),
            top_events: counts(r.top_events),
            referrers: counts(r.referrers),
            countries: counts(r.countries),
            devices: counts(r.devices),
        }
    }
}

/// Views, visitors, top pages and events, referrers, countries and devices of one site, for at
/// most 31 days. Instance administrators (`admin`).
#[utoipa::path(get, path = "/v1/admin/analytics", tag = "privacy", params(ReportParams),
    responses((status = 200, description = "Aggregates", body = ReportView)))]
pub async fn report(
    State(st): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<ReportParams>,
) -> ApiResult<Json<ReportView>> {
    let until = match &q.until {
        Some(s) => super::parse_day("until", s)?,
        None => st.app.now().date(),
    };
    let since = match &q.since {
        Some(s) => super::parse_day("since", s)?,
        None => until - time::Duration::days(29),
    };
    let r = st
        .app
        .analytics_report(
            &p,
            match q.site.unwrap_or(SiteParam::Website) {
                SiteParam::Website => "website",
                SiteParam::Dashboard => "dashboard",
            },
            since,
            until,
        )
        .await?;
    Ok(Json(r.into()))
}
