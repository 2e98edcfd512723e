//! Credits: the balance, prices and the ledger's entries (JSON pages and CSV).

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use pixeld_core::credits::Prices;
use pixeld_core::ledger::{EntryFilter, EntryKind, LedgerEntry};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::AppState;
use crate::extract::{Auth, Json, Query};
use crate::problem::ApiResult;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/credits", get(balance))
        .route("/v1/credits/entries", get(list_entries))
        .route("/v1/credits/entries.csv", get(export_entries))
}

/// The organisation's credits and what work costs.
#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceView {
    /// Credits that can be spent now.
    pub available: i64,
    /// Credits held by work in progress (returned if it fails).
    pub held: i64,
    /// Credits the free plan adds each calendar month (UTC); they expire at the month's end.
    pub free_monthly: i64,
    /// Whether this instance meters work at all.
    pub metering: bool,
    /// Credits per operation; cache hits cost nothing.
    pub prices: PricesView,
}

/// Credits per metered operation.
#[derive(Debug, Serialize, ToSchema)]
pub struct PricesView {
    /// A render not served from the render cache.
    pub render: i64,
    /// A template preview not served from the render cache.
    pub preview: i64,
    /// An image transform not served from the cache.
    pub optimize: i64,
    /// An upload's check and analysis.
    pub analyze: i64,
    /// An asset generated from a prompt.
    pub generate: i64,
    /// A product-studio shot.
    pub studio: i64,
}

impl From<Prices> for PricesView {
    fn from(p: Prices) -> Self {
        Self {
            render: p.render,
            preview: p.preview,
            optimize: p.optimize,
            analyze: p.analyze,
            generate: p.generate,
            studio: p.studio,
        }
    }
}

/// One ledger entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntryView {
    /// Entry id (time-ordered).
    pub id: Uuid,
    /// `grant`, `reserve`, `settle`, `release`, `refund`, `expire` or `adjust`.
    pub kind: String,
    /// Credits added (positive) or taken (negative).
    pub amount: i64,
    /// The balance right after this entry.
    pub balance_after: i64,
    /// For grants: `plan`, `purchase`, `promo` or `admin`; for reservations: the operation.
    pub source: Option<String>,
    /// Why (operators' adjustments always say).
    pub reason: Option<String>,
    /// The reservation this entry belongs to.
    pub reservation_id: Option<Uuid>,
    /// The API token whose request did the work.
    pub token_id: Option<Uuid>,
    /// When granted credits expire.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<&LedgerEntry> for EntryView {
    fn from(e: &LedgerEntry) -> Self {
        Self {
            id: e.id,
            kind: e.kind.as_str().into(),
            amount: e.amount,
            balance_after: e.balance_after,
            source: e.source.clone(),
            reason: e.reason.clone(),
            reservation_id: e.reservation_id,
            token_id: e.token_id,
            expires_at: e.expires_at,
            created_at: e.created_at,
        }
    }
}

/// A page of entries.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntryPage {
    /// Entries, oldest first.
    pub items: Vec<EntryView>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
}

/// An entry kind to filter by.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KindParam {
    /// Credits added.
    Grant,
    /// Credits held for work.
    Reserve,
    /// Work finished.
    Settle,
    /// Work failed; credits returned.
    Release,
    /// A charge given back.
    Refund,
    /// Credits expired.
    Expire,
    /// An operator's correction.
    Adjust,
}

impl From<KindParam> for EntryKind {
    fn from(k: KindParam) -> Self {
        match k {
            KindParam::Grant => EntryKind::Grant,
            KindParam::Reserve => EntryKind::Reserve,
            KindParam::Settle => EntryKind::Settle,
            KindParam::Release => EntryKind::Release,
            KindParam::Refund => EntryKind::Refund,
            KindParam::Expire => EntryKind::Expire,
            KindParam::Adjust => EntryKind::Adjust,
        }
    }
}

/// Filters (and, for pages, the cursor) of the entry list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EntryParams {
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// Only entries of this kind.
    #[param(inline)]
    pub kind: Option<KindParam>,
    /// Only entries made at or after this time (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    pub since: Option<OffsetDateTime>,
    /// Only entries made before this time (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    pub until: Option<OffsetDateTime>,
}

impl EntryParams {
    fn filter(&self) -> EntryFilter {
        EntryFilter {
            kinds: self.kind.map(EntryKind::from).into_iter().collect(),
            since: self.since,
            until: self.until,
        }
    }
}

/// The organisation's balance and the price of each metered operation. Owners and admins
/// (`billing:read`).
#[utoipa::path(get, path = "/v1/credits", tag = "credits",
    responses((status = 200, description = "The balance", body = BalanceView)))]
pub async fn balance(State(st): State<AppState>, Auth(p): Auth) -> ApiResult<Json<BalanceView>> {
    let b = st.app.credit_balance(&p).await?;
    let s = &st.app.settings.credits;
    Ok(Json(BalanceView {
        available: b.available,
        held: b.held,
        free_monthly: s.free_monthly,
        metering: s.metering,
        prices: s.prices.into(),
    }))
}

/// The ledger: every grant, reservation, settlement, release, refund, expiry and adjustment,
/// oldest first, each with the balance after it.
#[utoipa::path(get, path = "/v1/credits/entries", tag = "credits", params(EntryParams),
    responses((status = 200, description = "A page of entries", body = EntryPage)))]
pub async fn list_entries(
    State(st): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<EntryParams>,
) -> ApiResult<Json<EntryPage>> {
    let page = pixeld_core::page::PageRequest::parse(q.cursor.as_deref(), q.limit)?;
    let page = st.app.credit_entries(&p, &q.filter(), page).await?;
    Ok(Json(EntryPage {
        items: page.items.iter().map(EntryView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// The same entries as a CSV file (all pages; `cursor` and `limit` are ignored), at most
/// 100 000 rows: narrow with `since`/`until` for longer histories.
#[utoipa::path(get, path = "/v1/credits/entries.csv", tag = "credits", params(EntryParams),
    responses((status = 200, description = "CSV with a header row", content_type = "text/csv", body = String)))]
pub async fn export_entries(
    State(st): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<EntryParams>,
) -> ApiResult<Response> {
    // Checked like the JSON list, so a bad cursor or limit is the same 422 in both.
    pixeld_core::page::PageRequest::parse(q.cursor.as_deref(), q.limit)?;
    let csv = st.app.credit_entries_csv(&p, &q.filter()).await?;
    let mut resp = csv.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"pixeld-credits.csv\""),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(resp)
}
