//! The request log: an organisation's own API requests (pages and CSV) and daily totals; for
//! operators, latency percentiles per route.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use pixeld_core::usage::{DailyUsage, RouteMetrics, UsageEvent, UsageFilter};
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::AppState;
use crate::extract::{Auth, Json, Query};
use crate::problem::ApiResult;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/usage", get(list_usage))
        .route("/v1/usage.csv", get(export_usage))
        .route("/v1/usage/daily", get(daily_usage))
        .route("/v1/admin/metrics/routes", get(route_metrics))
}

/// One API request.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageView {
    /// Id (UUIDv7).
    pub id: Uuid,
    /// When it arrived.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// HTTP method.
    pub method: String,
    /// Route template, e.g. `/v1/images/{id}`.
    pub route: String,
    /// Response status.
    pub status: u16,
    /// Time in the server, milliseconds.
    pub latency_ms: f64,
    /// Request body bytes.
    pub bytes_in: i64,
    /// Response body bytes (0 when streamed without a known length).
    pub bytes_out: i64,
    /// Credits spent (or held for queued work).
    pub credits: i64,
    /// The user who made it.
    pub user_id: Option<Uuid>,
    /// The API token used (its id; secrets are never stored), absent for sessions.
    pub token_id: Option<Uuid>,
    /// The client address; after 7 days only its network (/24 or /48).
    pub ip: Option<String>,
    /// Approximate country (ISO code) at the time.
    pub country: Option<String>,
    /// The client's `User-Agent`.
    pub user_agent: Option<String>,
}

impl From<&UsageEvent> for UsageView {
    fn from(e: &UsageEvent) -> Self {
        Self {
            id: e.id,
            at: e.at,
            method: e.method.clone(),
            route: e.route.clone(),
            status: e.status,
            latency_ms: (e.latency_us as f64) / 1000.0,
            bytes_in: e.bytes_in,
            bytes_out: e.bytes_out,
            credits: e.credits,
            user_id: e.user_id,
            token_id: e.token_id,
            ip: e.ip.clone().or_else(|| e.ip_network.clone()),
            country: e.country.clone(),
            user_agent: e.user_agent.clone(),
        }
    }
}

/// A page of requests.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsagePage {
    /// Requests, oldest first.
    pub items: Vec<UsageView>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
}

/// Filters (and, for pages, the cursor) of the request log.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UsageParams {
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// Only requests at or after this time (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    pub since: Option<OffsetDateTime>,
    /// Only requests before this time (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    pub until: Option<OffsetDateTime>,
    /// Only this route template, e.g. `/v1/renders`.
    #[param(max_length = 200)]
    pub route: Option<String>,
    /// Only this status code.
    #[param(minimum = 100, maximum = 599)]
    pub status: Option<u16>,
    /// Only this class of status: 2 for 2xx, 4 for 4xx, ….
    #[param(minimum = 1, maximum = 5)]
    pub status_class: Option<u16>,
    /// Only requests made with this API token.
    pub token_id: Option<Uuid>,
    /// `asc` (oldest first, the default) or `desc` (newest first; `next_cursor` then pages
    /// back in time).
    #[param(inline)]
    pub order: Option<Order>,
}

/// Which way a log is listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Oldest first.
    Asc,
    /// Newest first.
    Desc,
}

impl UsageParams {
    fn filter(&self) -> pixeld_core::Result<UsageFilter> {
        if let Some(s) = self.status
            && !(100..=599).contains(&s)
        {
            return Err(pixeld_core::Error::invalid("status", "must be 100 to 599"));
        }
        if self.route.as_ref().is_some_and(|r| r.len() > 200) {
            return Err(pixeld_core::Error::invalid(
                "route",
                "must be at most 200 characters",
            ));
        }
        Ok(UsageFilter {
            since: self.since,
            until: self.until,
            route: self.route.clone().filter(|r| !r.is_empty()),
            status: self.status,
            status_class: self.status_class,
            token_id: self.token_id,
            newest_first: self.order == Some(Order::Desc),
        })
    }
}

/// The organisation's API requests, oldest first (`order=desc` for newest first): who, which route, status, latency, bytes,
/// credits, address, country and user agent. Owners and admins (`billing:read`). Rows are kept
/// 90 days; the address is cut to its network after 7.
#[utoipa::path(get, path = "/v1/usage", tag = "usage", params(UsageParams),
    responses((status = 200, description = "A page of requests", body = UsagePage)))]
pub async fn list_usage(
    State(st): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<UsageParams>,
) -> ApiResult<Json<UsagePage>> {
    let page = pixeld_core::page::PageRequest::parse(q.cursor.as_deref(), q.limit)?;
    let page = st.app.usage_events(&p, &q.filter()?, page).await?;
    Ok(Json(UsagePage {
        items: page.items.iter().map(UsageView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// The same requests as a CSV file (all pages; `cursor` and `limit` are ignored), at most
/// 100 000 rows.
#[utoipa::path(get, path = "/v1/usage.csv", tag = "usage", params(UsageParams),
    responses((status = 200, description = "CSV with a header row", content_type = "text/csv", body = String)))]
pub async fn export_usage(
    State(st): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<UsageParams>,
) -> ApiResult<Response> {
    pixeld_core::page::PageRequest::parse(q.cursor.as_deref(), q.limit)?;
    let csv = st.app.usage_csv(&p, &q.filter()?).await?;
    Ok(super::csv_download(csv, "pixeld-usage.csv"))
}

/// A day span, inclusive (UTC days, `YYYY-MM-DD`).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DayParams {
    /// First day (default: 30 days before `until`).
    #[param(value_type = Option<String>, format = Date)]
    pub since: Option<String>,
    /// Last day (default: today).
    #[param(value_type = Option<String>, format = Date)]
    pub until: Option<String>,
}

impl DayParams {
    fn span(&self, today: Date) -> pixeld_core::Result<(Date, Date)> {
        let until = match &self.until {
            Some(s) => super::parse_day("until", s)?,
            None => today,
        };
        let since = match &self.since {
            Some(s) => super::parse_day("since", s)?,
            None => until - time::Duration::days(30),
        };
        Ok((since, until))
    }
}

/// One day's totals for one route.
#[derive(Debug, Serialize, ToSchema)]
pub struct DailyView {
    /// UTC day.
    #[schema(value_type = String, format = Date)]
    pub day: String,
    /// `METHOD /route`.
    pub route: String,
    /// Requests.
    pub requests: i64,
    /// Requests answered 4xx or 5xx.
    pub errors: i64,
    /// Request bytes.
    pub bytes_in: i64,
    /// Response bytes.
    pub bytes_out: i64,
    /// Credits spent.
    pub credits: i64,
    /// Mean latency, milliseconds.
    pub mean_latency_ms: f64,
}

impl From<&DailyUsage> for DailyView {
    fn from(d: &DailyUsage) -> Self {
        Self {
            day: d.day.to_string(),
            route: d.route.clone(),
            requests: d.requests,
            errors: d.errors,
            bytes_in: d.bytes_in,
            bytes_out: d.bytes_out,
            credits: d.credits,
            mean_latency_ms: if d.requests > 0 {
                ((d.latency_us as f64) / (d.requests as f64) / 1000.0 * 1000.0).round() / 1000.0
            } else {
                0.0
            },
        }
    }
}

/// Daily totals.
#[derive(Debug, Serialize, ToSchema)]
pub struct DailyList {
    /// By day, then route.
    pub items: Vec<DailyView>,
}

/// The organisation's daily totals per route (kept while the organisation exists, also after
/// the rows themselves are deleted). Owners and admins (`billing:read`); at most 400 days.
#[utoipa::path(get, path = "/v1/usage/daily", tag = "usage", params(DayParams),
    responses((status = 200, description = "Daily totals", body = DailyList)))]
pub async fn daily_usage(
    State(st): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<DayParams>,
) -> ApiResult<Json<DailyList>> {
    let (since, until) = q.span(st.app.now().date())?;
    let days = st.app.usage_daily(&p, since, until).await?;
    Ok(Json(DailyList {
        items: days.iter().map(DailyView::from).collect(),
    }))
}

/// Latency percentiles of one route.
#[derive(Debug, Serialize, ToSchema)]
pub struct RouteMetricsView {
    /// `METHOD /route`.
    pub route: String,
    /// Requests in the period.
    pub requests: i64,
    /// Median, milliseconds.
    pub p50_ms: f64,
    /// 95th percentile, milliseconds.
    pub p95_ms: f64,
    /// 99th percentile, milliseconds.
    pub p99_ms: f64,
}

impl From<RouteMetrics> for RouteMetricsView {
    fn from(m: RouteMetrics) -> Self {
        Self {
            route: m.route,
            requests: m.requests,
            p50_ms: m.p50_ms,
            p95_ms: m.p95_ms,
            p99_ms: m.p99_ms,
        }
    }
}

/// Route metrics.
#[derive(Debug, Serialize, ToSchema)]
pub struct RouteMetricsList {
    /// By route.
    pub items: Vec<RouteMetricsView>,
}

/// Latency percentiles per route across every organisation (from a histogram with buckets about
/// 19 % wide). Instance administrators (`admin`).
#[utoipa::path(get, path = "/v1/admin/metrics/routes", tag = "usage", params(DayParams),
    responses((status = 200, description = "Per-route percentiles", body = RouteMetricsList)))]
pub async fn route_metrics(
    State(st): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<DayParams>,
) -> ApiResult<Json<RouteMetricsList>> {
    let (since, until) = q.span(st.app.now().date())?;
    let m = st.app.route_metrics(&p, since, until).await?;
    Ok(Json(RouteMetricsList {
        items: m.into_iter().map(RouteMetricsView::from).collect(),
    }))
}
