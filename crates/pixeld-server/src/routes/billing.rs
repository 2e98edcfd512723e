//! Credits and buying them: the balance, prices and the ledger's entries (JSON pages and CSV);
//! credit packs, checkouts, orders, and the payment providers' webhooks.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use pixeld_core::credits::Prices;
use pixeld_core::ledger::{EntryFilter, EntryKind, LedgerEntry};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::AppState;
use crate::extract::{Auth, ClientIp, Json, Path, Query};
use crate::problem::ApiResult;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/credits", get(balance))
        .route("/v1/credits/entries", get(list_entries))
        .route("/v1/credits/entries.csv", get(export_entries))
        .route("/v1/billing/packs", get(list_packs))
        .route("/v1/billing/plans", get(list_plans))
        .route("/v1/billing/subscription", get(subscription))
        .route("/v1/billing/currency", axum::routing::put(choose_currency))
        .route("/v1/billing/checkout", post(checkout))
        .route("/v1/billing/orders", get(list_orders))
        .route("/v1/billing/orders/{id}", get(get_order))
        .route(
            "/v1/billing/orders/{id}/razorpay-payment",
            post(confirm_razorpay),
        )
        .route("/v1/billing/portal", post(portal))
        .route("/v1/payments/{provider}/webhook", post(webhook))
        .route("/v1/billing/profile", get(get_profile).put(put_profile))
        .route("/v1/billing/invoices", get(list_invoices))
        .route("/v1/billing/invoices/{id}", get(get_invoice))
        .route("/v1/billing/invoices/{id}/pdf", get(invoice_pdf))
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
    Ok(super::csv_download(csv, "pixeld-credits.csv"))
}

/// A credit pack on sale.
#[derive(Debug, Serialize, ToSchema)]
pub struct PackView {
    /// Pack id, for `POST /v1/billing/checkout`.
    pub id: String,
    /// Name.
    pub name: String,
    /// Credits it adds; purchased credits do not expire.
    pub credits: i64,
    /// Price per currency in minor units (cents, paise), keyed by lowercase ISO 4217 code.
    #[schema(value_type = Object)]
    pub prices: std::collections::BTreeMap<String, i64>,
}

/// The packs on sale and the payment providers that take payments here.
#[derive(Debug, Serialize, ToSchema)]
pub struct PacksView {
    /// Packs.
    pub packs: Vec<PackView>,
    /// `stripe` and/or `razorpay`; empty when this instance sells nothing.
    pub providers: Vec<String>,
    /// The currency to show: the buyer's choice (`PUT /v1/billing/currency`), else the one for
    /// their approximate country, else the default.
    pub currency: String,
    /// The approximate country of the request's address (ISO 3166-1 alpha-2), when known.
    pub country: Option<String>,
}

/// Name of the cookie that remembers a chosen currency (strictly necessary: it only holds the
/// choice the visitor made).
pub const CURRENCY_COOKIE: &str = "pixeld_currency";

/// The currency a request has chosen or should see, and its approximate country.
pub fn buyer_currency(
    st: &AppState,
    ip: ClientIp,
    headers: &axum::http::HeaderMap,
) -> (Option<String>, Option<String>) {
    let chosen = axum_extra::extract::CookieJar::from_headers(headers)
        .get(CURRENCY_COOKIE)
        .map(|c| c.value().to_ascii_lowercase())
        .filter(|c| st.app.packs().iter().all(|p| p.prices.contains_key(c)));
    let country = ip.0.and_then(|ip| st.geo.country(ip));
    (chosen, country)
}

/// Credit packs on sale, with prices per currency, and the currency to show this visitor.
/// Public, for the pricing page.
#[utoipa::path(get, path = "/v1/billing/packs", tag = "credits",
    responses((status = 200, description = "Packs", body = PacksView)))]
pub async fn list_packs(
    State(st): State<AppState>,
    ip: ClientIp,
    headers: axum::http::HeaderMap,
) -> Json<PacksView> {
    let (chosen, country) = buyer_currency(&st, ip, &headers);
    let currency = chosen.unwrap_or_else(|| st.app.suggest_currency(country.as_deref()));
    Json(PacksView {
        currency,
        country,
        packs: st
            .app
            .packs()
            .iter()
            .map(|p| PackView {
                id: p.id.clone(),
                name: p.name.clone(),
                credits: p.credits,
                prices: p.prices.clone(),
            })
            .collect(),
        providers: st
            .app
            .payments
            .names()
            .into_iter()
            .map(String::from)
            .collect(),
    })
}

/// A visitor's currency choice.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CurrencyBody {
    /// A lowercase ISO 4217 code every pack is priced in.
    pub currency: String,
}

/// Remembers the visitor's currency in a cookie (a year; strictly necessary, it holds only this
/// choice). Public, for the pricing page.
#[utoipa::path(put, path = "/v1/billing/currency", tag = "credits", request_body = CurrencyBody,
    responses((status = 200, description = "Chosen", body = CurrencyBody)))]
pub async fn choose_currency(
    State(st): State<AppState>,
    Json(b): Json<CurrencyBody>,
) -> ApiResult<Response> {
    let c = b.currency.trim().to_ascii_lowercase();
    if !st.app.packs().iter().all(|p| p.prices.contains_key(&c)) || st.app.packs().is_empty() {
        let mut all: Vec<&String> = st
            .app
            .packs()
            .iter()
            .flat_map(|p| p.prices.keys())
            .collect();
        all.sort();
        all.dedup();
        return Err(pixeld_core::Error::invalid(
            "currency",
            format!(
                "prices are in {}",
                all.into_iter().cloned().collect::<Vec<_>>().join(", ")
            ),
        )
        .into());
    }
    let mut resp = Json(serde_json::json!({"currency": c})).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        super::auth::cookie_header(&st, CURRENCY_COOKIE, &c, 31_536_000),
    );
    Ok(resp)
}

/// A plan on the pricing page.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanView {
    /// `free` or a paid plan's id, for `POST /v1/billing/checkout`.
    pub id: String,
    /// Name.
    pub name: String,
    /// Credits each month brings (they expire when the month or paid period ends).
    pub monthly_credits: i64,
    /// Monthly price per currency in minor units (empty for the free plan).
    #[schema(value_type = Object)]
    pub prices: std::collections::BTreeMap<String, i64>,
    /// What it includes.
    pub features: Vec<String>,
}

/// The free plan and the paid plans on sale. Public, for the pricing page.
#[utoipa::path(get, path = "/v1/billing/plans", tag = "credits",
    responses((status = 200, description = "Plans", body = Vec<PlanView>)))]
pub async fn list_plans(State(st): State<AppState>) -> Json<Vec<PlanView>> {
    let s = &st.app.settings;
    let mut plans = vec![PlanView {
        id: "free".into(),
        name: "Free".into(),
        monthly_credits: s.credits.free_monthly,
        prices: Default::default(),
        features: vec![format!("{} credits every month", s.credits.free_monthly)],
    }];
    plans.extend(st.app.plans().iter().map(|k| PlanView {
        id: k.id.clone(),
        name: k.name.clone(),
        monthly_credits: k.monthly_credits,
        prices: k.prices.clone(),
        features: k.features.clone(),
    }));
    Json(plans)
}

/// The organisation's plan.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionView {
    /// `free` or a paid plan's id.
    pub plan: String,
    /// Credits each month brings.
    pub monthly_credits: i64,
    /// The provider's status of a paid plan (`active`, `past_due`, …).
    pub status: Option<String>,
    /// When the paid period ends.
    #[serde(with = "time::serde::rfc3339::option")]
    pub current_period_end: Option<OffsetDateTime>,
    /// Ends at the period's end instead of renewing.
    pub cancel_at_period_end: bool,
}

/// The organisation's plan and its subscription (`billing:read`); change or cancel it in the
/// customer portal (`POST /v1/billing/portal`).
#[utoipa::path(get, path = "/v1/billing/subscription", tag = "credits",
    responses((status = 200, description = "The plan", body = SubscriptionView)))]
pub async fn subscription(
    State(st): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<Json<SubscriptionView>> {
    let c = st.app.current_plan(&p).await?;
    Ok(Json(SubscriptionView {
        plan: c.plan_id,
        monthly_credits: c.monthly_credits,
        status: c.subscription.as_ref().map(|s| s.status.clone()),
        current_period_end: c.subscription.as_ref().and_then(|s| s.current_period_end),
        cancel_at_period_end: c
            .subscription
            .as_ref()
            .is_some_and(|s| s.cancel_at_period_end),
    }))
}

/// What to buy: a pack, or a plan to subscribe to.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutBody {
    /// Pack id from `GET /v1/billing/packs`.
    pub pack: Option<String>,
    /// Paid plan id from `GET /v1/billing/plans` (a monthly Stripe subscription).
    pub plan: Option<String>,
    /// ISO 4217 code the pack has a price in (default: its first).
    pub currency: Option<String>,
    /// `stripe` or `razorpay` (default: Razorpay for INR when configured, else Stripe).
    pub provider: Option<String>,
    /// Where the provider sends the buyer after paying (default: this site's billing page).
    pub success_url: Option<String>,
    /// Where Stripe sends a buyer who gives up.
    pub cancel_url: Option<String>,
    /// Razorpay: answer a Payment Link (`checkout_url`, Razorpay's hosted page; the buyer
    /// comes back to `success_url` with a signed query) instead of Checkout.js options.
    #[serde(default)]
    pub hosted: bool,
}

/// An order as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderView {
    /// Order id.
    pub id: Uuid,
    /// `open`, `paid`, `refunded` or `failed`.
    pub status: String,
    /// `stripe` or `razorpay`.
    pub provider: String,
    /// The pack bought.
    pub pack: String,
    /// Credits it adds when paid.
    pub credits: i64,
    /// Price in minor units.
    pub amount: i64,
    /// Lowercase ISO 4217.
    pub currency: String,
    /// Refunded so far, in minor units.
    pub refunded: i64,
    /// Created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Paid.
    #[serde(with = "time::serde::rfc3339::option")]
    pub paid_at: Option<OffsetDateTime>,
}

impl From<&pixeld_core::billing::Order> for OrderView {
    fn from(o: &pixeld_core::billing::Order) -> Self {
        Self {
            id: o.id,
            status: o.status.as_str().into(),
            provider: o.provider.clone(),
            pack: o.item_id.clone(),
            credits: o.credits,
            amount: o.amount_minor,
            currency: o.currency.clone(),
            refunded: o.refunded_minor,
            created_at: o.created_at,
            paid_at: o.paid_at,
        }
    }
}

/// An opened checkout.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckoutView {
    /// The order (open until the provider's webhook says it is paid).
    pub order: OrderView,
    /// Stripe: send the buyer to this hosted page.
    pub checkout_url: Option<String>,
    /// Razorpay: the options for Checkout.js (`new Razorpay(options).open()`); no secret.
    #[schema(value_type = Option<Object>)]
    pub razorpay: Option<serde_json::Value>,
}

/// Opens a checkout for a credit pack. Owners only (`billing:write`). Send an
/// `Idempotency-Key`: a retried request then answers with the same order instead of a second.
#[utoipa::path(post, path = "/v1/billing/checkout", tag = "credits", request_body = CheckoutBody,
    responses((status = 201, description = "Checkout opened", body = CheckoutView),
              (status = 502, description = "The payment provider refused or failed", body = crate::problem::Problem,
               content_type = "application/problem+json")))]
pub async fn checkout(
    State(st): State<AppState>,
    Auth(p): Auth,
    ip: ClientIp,
    headers: axum::http::HeaderMap,
    Json(b): Json<CheckoutBody>,
) -> ApiResult<(axum::http::StatusCode, Json<CheckoutView>)> {
    let (chosen, country) = buyer_currency(&st, ip, &headers);
    let (order, c) = st
        .app
        .checkout(
            &p,
            pixeld_core::billing::CheckoutInput {
                pack: b.pack.unwrap_or_default(),
                plan: b.plan,
                currency: b.currency,
                preferred_currency: chosen,
                country,
                provider: b.provider,
                success_url: b.success_url,
                cancel_url: b.cancel_url,
                hosted: b.hosted,
            },
        )
        .await?;
    Ok((
        axum::http::StatusCode::CREATED,
        Json(CheckoutView {
            order: OrderView::from(&order),
            checkout_url: c.url,
            razorpay: c.client_payload,
        }),
    ))
}

/// A page of orders.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderPage {
    /// Orders, oldest first.
    pub items: Vec<OrderView>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
}

/// The organisation's orders, oldest first (`billing:read`).
#[utoipa::path(get, path = "/v1/billing/orders", tag = "credits", params(super::PageParams),
    responses((status = 200, description = "A page of orders", body = OrderPage)))]
pub async fn list_orders(
    State(st): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<super::PageParams>,
) -> ApiResult<Json<OrderPage>> {
    let page = st.app.orders(&p, q.page()?).await?;
    Ok(Json(OrderPage {
        items: page.items.iter().map(OrderView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One order (`billing:read`).
#[utoipa::path(get, path = "/v1/billing/orders/{id}", tag = "credits",
    params(("id" = Uuid, Path, description = "Order id")),
    responses((status = 200, description = "The order", body = OrderView)))]
pub async fn get_order(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<OrderView>> {
    Ok(Json(OrderView::from(&st.app.order(&p, id).await?)))
}

/// What Razorpay Checkout.js hands the page after a payment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RazorpayPaymentBody {
    /// `razorpay_order_id` from the handler.
    pub razorpay_order_id: String,
    /// `razorpay_payment_id` from the handler.
    pub razorpay_payment_id: String,
    /// `razorpay_signature` from the handler.
    pub razorpay_signature: String,
}

/// Confirms a Razorpay payment from the browser: the signature is checked and the order's
/// credits are added at once (the `payment.captured` webhook does the same, only once in all).
#[utoipa::path(post, path = "/v1/billing/orders/{id}/razorpay-payment", tag = "credits",
    params(("id" = Uuid, Path, description = "Order id")), request_body = RazorpayPaymentBody,
    responses((status = 200, description = "The paid order", body = OrderView)))]
pub async fn confirm_razorpay(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
    Json(b): Json<RazorpayPaymentBody>,
) -> ApiResult<Json<OrderView>> {
    let o = st
        .app
        .confirm_razorpay_payment(
            &p,
            id,
            &b.razorpay_order_id,
            &b.razorpay_payment_id,
            &b.razorpay_signature,
        )
        .await?;
    Ok(Json(OrderView::from(&o)))
}

/// Where the portal sends the buyer back.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortalBody {
    /// Default: this site's billing page.
    pub return_url: Option<String>,
}

/// A link to the payment provider's page.
#[derive(Debug, Serialize, ToSchema)]
pub struct PortalView {
    /// Stripe's customer portal (receipts, payment methods), valid for a short while.
    pub url: String,
}

/// Opens Stripe's customer portal for the organisation (after its first Stripe purchase).
#[utoipa::path(post, path = "/v1/billing/portal", tag = "credits", request_body = PortalBody,
    responses((status = 200, description = "Portal link", body = PortalView)))]
pub async fn portal(
    State(st): State<AppState>,
    Auth(p): Auth,
    Json(b): Json<PortalBody>,
) -> ApiResult<Json<PortalView>> {
    let url = st.app.billing_portal(&p, b.return_url).await?;
    Ok(Json(PortalView { url }))
}

/// What a webhook did.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAnswer {
    /// For the provider's delivery log.
    pub outcome: String,
}

/// A payment provider's webhook (`stripe` or `razorpay`). No credential: the provider's
/// signature over the raw body is checked instead. Redeliveries are recognised by event id; an
/// event that cannot apply yet (a refund before its payment) answers 409 so it is sent again.
#[utoipa::path(post, path = "/v1/payments/{provider}/webhook", tag = "credits",
    params(("provider" = String, Path, description = "`stripe` or `razorpay`")),
    request_body(content = String, content_type = "application/json", description = "The provider's signed event"),
    responses((status = 200, description = "Handled", body = WebhookAnswer)))]
pub async fn webhook(
    State(st): State<AppState>,
    Path(provider): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Json<WebhookAnswer>> {
    let outcome = st.app.payment_webhook(&provider, &headers, &body).await?;
    Ok(Json(WebhookAnswer { outcome }))
}

/// Billing details printed on invoices.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartyView {
    /// Company or person.
    #[serde(default)]
    pub name: String,
    /// Address lines (at most 6).
    #[serde(default)]
    pub address: Vec<String>,
    /// ISO 3166-1 alpha-2 country code.
    pub country: Option<String>,
    /// VAT/GST/tax number.
    pub tax_id: Option<String>,
    /// Where receipts are emailed (default: the member who buys).
    pub email: Option<String>,
}

impl From<pixeld_core::invoices::Party> for PartyView {
    fn from(p: pixeld_core::invoices::Party) -> Self {
        Self {
            name: p.name,
            address: p.address,
            country: p.country,
            tax_id: p.tax_id,
            email: p.email,
        }
    }
}

impl From<PartyView> for pixeld_core::invoices::Party {
    fn from(p: PartyView) -> Self {
        Self {
            name: p.name,
            address: p.address,
            country: p.country,
            tax_id: p.tax_id,
            email: p.email,
        }
    }
}

/// The organisation's billing details (`billing:read`).
#[utoipa::path(get, path = "/v1/billing/profile", tag = "credits",
    responses((status = 200, description = "Billing details", body = PartyView)))]
pub async fn get_profile(State(st): State<AppState>, Auth(p): Auth) -> ApiResult<Json<PartyView>> {
    Ok(Json(st.app.billing_profile(&p).await?.into()))
}

/// Sets the billing details printed on future invoices (owners, `billing:write`); invoices
/// already issued keep what they printed.
#[utoipa::path(put, path = "/v1/billing/profile", tag = "credits", request_body = PartyView,
    responses((status = 200, description = "Saved", body = PartyView)))]
pub async fn put_profile(
    State(st): State<AppState>,
    Auth(p): Auth,
    Json(b): Json<PartyView>,
) -> ApiResult<Json<PartyView>> {
    Ok(Json(st.app.set_billing_profile(&p, b.into()).await?.into()))
}

/// An invoice line.
#[derive(Debug, Serialize, ToSchema)]
pub struct LineView {
    /// What was bought.
    pub description: String,
    /// How many.
    pub quantity: i64,
    /// Line total including tax, minor units.
    pub amount: i64,
}

/// An invoice, which is also the receipt of its paid order.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvoiceView {
    /// Id.
    pub id: Uuid,
    /// As printed, e.g. `INV-000001` (numbers have no gaps per organisation).
    pub number: String,
    /// The paid order.
    pub order_id: Uuid,
    /// Lowercase ISO 4217.
    pub currency: String,
    /// Total without tax, minor units.
    pub subtotal: i64,
    /// Tax included, minor units.
    pub tax: i64,
    /// Total paid, minor units.
    pub total: i64,
    /// The tax's name.
    pub tax_name: String,
    /// Its rate in basis points.
    pub tax_rate_bps: i32,
    /// Seller as printed.
    pub seller: PartyView,
    /// Buyer as printed.
    pub buyer: PartyView,
    /// Lines.
    pub lines: Vec<LineView>,
    /// Issued (paid) at.
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
    /// The PDF.
    pub pdf_url: String,
}

impl InvoiceView {
    fn new(i: &pixeld_core::invoices::Invoice, base: &str) -> Self {
        Self {
            id: i.id,
            number: i.display_number.clone(),
            order_id: i.order_id,
            currency: i.currency.clone(),
            subtotal: i.subtotal_minor,
            tax: i.tax_minor,
            total: i.total_minor,
            tax_name: i.tax_name.clone(),
            tax_rate_bps: i.tax_rate_bps,
            seller: i.seller.clone().into(),
            buyer: i.buyer.clone().into(),
            lines: i
                .lines
                .iter()
                .map(|l| LineView {
                    description: l.description.clone(),
                    quantity: l.quantity,
                    amount: l.amount_minor,
                })
                .collect(),
            issued_at: i.issued_at,
            pdf_url: format!("{base}/v1/billing/invoices/{}/pdf", i.id),
        }
    }
}

/// A page of invoices.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvoicePage {
    /// Invoices, oldest first.
    pub items: Vec<InvoiceView>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
}

/// The organisation's invoices, oldest first (`billing:read`).
#[utoipa::path(get, path = "/v1/billing/invoices", tag = "credits", params(super::PageParams),
    responses((status = 200, description = "A page of invoices", body = InvoicePage)))]
pub async fn list_invoices(
    State(st): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<super::PageParams>,
) -> ApiResult<Json<InvoicePage>> {
    let page = st.app.invoices(&p, q.page()?).await?;
    let base = st.config.public_url();
    Ok(Json(InvoicePage {
        items: page
            .items
            .iter()
            .map(|i| InvoiceView::new(i, &base))
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One invoice (`billing:read`).
#[utoipa::path(get, path = "/v1/billing/invoices/{id}", tag = "credits",
    params(("id" = Uuid, Path, description = "Invoice id")),
    responses((status = 200, description = "The invoice", body = InvoiceView)))]
pub async fn get_invoice(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<InvoiceView>> {
    let i = st.app.invoice(&p, id).await?;
    Ok(Json(InvoiceView::new(&i, &st.config.public_url())))
}

/// The invoice as a PDF with selectable text (`billing:read`).
#[utoipa::path(get, path = "/v1/billing/invoices/{id}/pdf", tag = "credits",
    params(("id" = Uuid, Path, description = "Invoice id")),
    responses((status = 200, description = "The PDF", content_type = "application/pdf", body = Vec<u8>)))]
pub async fn invoice_pdf(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let i = st.app.invoice(&p, id).await?;
    let pdf = st.app.invoice_pdf(&i).await?;
    let mut resp = pdf.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pdf"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"{}.pdf\"", i.display_number))
    {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(resp)
}
