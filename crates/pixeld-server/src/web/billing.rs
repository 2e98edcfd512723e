//! Usage and billing in the browser: requests and credits per day as a server-drawn chart, the
//! request log with filters, the balance, buying credits (the provider's hosted checkout), the
//! ledger and invoices.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use pixeld_core::ledger::EntryFilter;
use pixeld_core::page::PageRequest;
use pixeld_core::usage::UsageFilter;
use time::{Date, Duration, OffsetDateTime, Time};

use super::{Chrome, FormData, Web, message_of, page, page_with, status_of, when};
use crate::AppState;
use crate::extract::{ClientIp, Query};

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/usage", get(usage))
        .route("/billing", get(billing))
        .route("/billing/checkout", post(checkout))
        .route("/billing/paid", get(paid))
}

/// One day's bar pair in the chart.
struct Bar {
    day: String,
    requests: i64,
    credits: i64,
    x: u32,
    req_y: u32,
    req_h: u32,
    cred_y: u32,
    cred_h: u32,
}

const CHART_H: u32 = 120;
const DAY_W: u32 = 24;

/// Bars for the days `from..=to`, scaled to the busiest day (requests and credits each).
fn bars(days: &[pixeld_core::usage::DailyUsage], from: Date, to: Date) -> Vec<Bar> {
    let out: Vec<(Date, i64, i64)> = (0..=(to - from).whole_days())
        .map(|i| {
            let d = from + Duration::days(i);
            let (requests, credits) = days
                .iter()
                .filter(|u| u.day == d)
                .fold((0, 0), |(r, c), u| (r + u.requests, c + u.credits));
            (d, requests, credits)
        })
        .collect();
    let max_r = out.iter().map(|b| b.1).max().unwrap_or(0).max(1);
    let max_c = out.iter().map(|b| b.2).max().unwrap_or(0).max(1);
    out.into_iter()
        .enumerate()
        .map(|(i, (day, requests, credits))| {
            let req_h = (requests * i64::from(CHART_H) / max_r) as u32;
            let cred_h = (credits * i64::from(CHART_H) / max_c) as u32;
            Bar {
                day: day.to_string(),
                requests,
                credits,
                x: i as u32 * DAY_W,
                req_y: CHART_H - req_h,
                req_h,
                cred_y: CHART_H - cred_h,
                cred_h,
            }
        })
        .collect()
}

struct UsageRow {
    at: String,
    route: String,
    status: u16,
    ms: String,
    credits: i64,
    ip: String,
    country: String,
}

#[derive(Template)]
#[template(path = "usage.html")]
struct UsagePage {
    c: Chrome,
    bars: Vec<Bar>,
    chart_w: u32,
    total_requests: i64,
    total_credits: i64,
    rows: Vec<UsageRow>,
    next: Option<String>,
    route: String,
    status: String,
    since: String,
    csv: String,
}

#[derive(serde::Deserialize, Default)]
struct UsageQuery {
    route: Option<String>,
    status: Option<String>,
    since: Option<String>,
    cursor: Option<String>,
}

fn day_start(d: &str) -> Option<OffsetDateTime> {
    let d = Date::parse(d, time::macros::format_description!("[year]-[month]-[day]")).ok()?;
    Some(d.with_time(Time::MIDNIGHT).assume_utc())
}

async fn usage(State(st): State<AppState>, w: Web, Query(q): Query<UsageQuery>) -> Response {
    let p = w.principal();
    let mut c = w.chrome("Usage", "usage");
    let today = st.app.now().date();
    let from = today - Duration::days(29);
    let days = st.app.usage_daily(p, from, today).await.unwrap_or_default();
    let bars = bars(&days, from, today);
    let route = q.route.clone().unwrap_or_default().trim().to_string();
    let status = q.status.clone().unwrap_or_default();
    let since = q.since.clone().unwrap_or_default();
    let mut problems = Vec::new();
    // A log is read from the top: newest first, "Older" pages back.
    let mut filter = UsageFilter {
        route: (!route.is_empty()).then(|| route.clone()),
        newest_first: true,
        ..UsageFilter::default()
    };
    match status.as_str() {
        "2" | "3" | "4" | "5" => filter.status_class = status.parse().ok(),
        "" => {}
        _ => problems.push("Status must be 2xx, 3xx, 4xx or 5xx."),
    }
    if !since.is_empty() {
        match day_start(&since) {
            Some(t) => filter.since = Some(t),
            None => problems.push("From must be a date (YYYY-MM-DD)."),
        }
    }
    if !problems.is_empty() {
        c = c.error(problems.join(" "));
    }
    // Rows written in the last second may still be in the writer's buffer.
    let _ = st.app.flush_usage().await;
    let (rows, next) = match PageRequest::parse(q.cursor.as_deref(), Some(50)) {
        Ok(pr) => match st.app.usage_events(p, &filter, pr).await {
            Ok(pg) => (pg.items, pg.next_cursor),
            Err(e) => {
                c = c.error(message_of(&e));
                (Vec::new(), None)
            }
        },
        Err(e) => {
            c = c.error(message_of(&e));
            (Vec::new(), None)
        }
    };
    let mut csv = url::form_urlencoded::Serializer::new(String::new());
    if let Some(r) = &filter.route {
        csv.append_pair("route", r);
    }
    if let Some(s) = filter.status_class {
        csv.append_pair("status_class", &s.to_string());
    }
    if let Some(t) = filter.since
        && let Ok(s) = t.format(&time::format_description::well_known::Rfc3339)
    {
        csv.append_pair("since", &s);
    }
    page(&UsagePage {
        c,
        chart_w: bars.len() as u32 * DAY_W,
        total_requests: bars.iter().map(|b| b.requests).sum(),
        total_credits: bars.iter().map(|b| b.credits).sum(),
        bars,
        rows: rows
            .iter()
            .map(|e| UsageRow {
                at: when(e.at),
                route: format!("{} {}", e.method, e.route),
                status: e.status,
                ms: format!("{:.1}", e.latency_us as f64 / 1000.0),
                credits: e.credits,
                ip: e
                    .ip
                    .clone()
                    .or_else(|| e.ip_network.clone())
                    .unwrap_or_default(),
                country: e.country.clone().unwrap_or_default(),
            })
            .collect(),
        next: next.map(|cursor| {
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("route", &route)
                .append_pair("status", &status)
                .append_pair("since", &since)
                .append_pair("cursor", &cursor)
                .finish()
        }),
        route,
        status,
        since,
        csv: csv.finish(),
    })
}

struct PackOffer {
    id: String,
    name: String,
    credits: i64,
    price: String,
}

struct EntryRow {
    at: String,
    kind: &'static str,
    amount: i64,
    balance: i64,
    why: String,
}

struct InvoiceRow {
    id: uuid::Uuid,
    number: String,
    issued: String,
    total: String,
}

#[derive(Template)]
#[template(path = "billing.html")]
struct BillingPage {
    c: Chrome,
    available: i64,
    held: i64,
    plan: String,
    monthly_credits: i64,
    packs: Vec<PackOffer>,
    payments: bool,
    currency: String,
    entries: Vec<EntryRow>,
    invoices: Vec<InvoiceRow>,
}

async fn billing_view(
    st: &AppState,
    w: &Web,
    c: Chrome,
    ip: ClientIp,
    headers: &HeaderMap,
) -> BillingPage {
    let p = w.principal();
    let (chosen, country) = crate::routes::billing::buyer_currency(st, ip, headers);
    let currency = chosen.unwrap_or_else(|| st.app.suggest_currency(country.as_deref()));
    let balance = st.app.credit_balance(p).await.ok();
    let plan = st.app.current_plan(p).await.ok();
    let latest = |limit| PageRequest { after: None, limit };
    let mut entries = st
        .app
        .credit_entries(p, &EntryFilter::default(), latest(100))
        .await
        .map(|pg| pg.items)
        .unwrap_or_default();
    // Newest first, the last 20.
    entries.reverse();
    entries.truncate(20);
    let invoices = st
        .app
        .invoices(p, latest(50))
        .await
        .map(|pg| pg.items)
        .unwrap_or_default();
    BillingPage {
        c,
        available: balance.as_ref().map_or(0, |b| b.available),
        held: balance.as_ref().map_or(0, |b| b.held),
        plan: plan
            .as_ref()
            .map_or_else(|| "free".into(), |k| k.plan_id.clone()),
        monthly_credits: plan.as_ref().map_or(0, |k| k.monthly_credits),
        packs: st
            .app
            .packs()
            .iter()
            .filter_map(|k| {
                Some(PackOffer {
                    id: k.id.clone(),
                    name: k.name.clone(),
                    credits: k.credits,
                    price: pixeld_core::invoices::money(*k.prices.get(&currency)?, &currency),
                })
            })
            .collect(),
        payments: !st.app.payments.names().is_empty(),
        currency: currency.to_uppercase(),
        entries: entries
            .iter()
            .map(|e| EntryRow {
                at: when(e.created_at),
                kind: e.kind.as_str(),
                amount: e.amount,
                balance: e.balance_after,
                why: e
                    .reason
                    .clone()
                    .or_else(|| e.source.clone())
                    .unwrap_or_default(),
            })
            .collect(),
        invoices: invoices
            .iter()
            .map(|i| InvoiceRow {
                id: i.id,
                number: i.display_number.clone(),
                issued: when(i.issued_at),
                total: pixeld_core::invoices::money(i.total_minor, &i.currency),
            })
            .collect(),
    }
}

#[derive(serde::Deserialize)]
struct BillingQuery {
    done: Option<String>,
}

async fn billing(
    State(st): State<AppState>,
    w: Web,
    ip: ClientIp,
    headers: HeaderMap,
    Query(q): Query<BillingQuery>,
) -> Response {
    let mut c = w.chrome("Billing", "billing");
    match q.done.as_deref() {
        Some("paid") => {
            c = c.notice("Thank you. Your credits arrive as soon as the payment is confirmed.")
        }
        Some("cancelled") => c = c.notice("Checkout cancelled; nothing was charged."),
        Some("credited") => c = c.notice("Thank you. The credits are in your balance."),
        _ => {}
    }
    page(&billing_view(&st, &w, c, ip, &headers).await)
}

/// What a provider's hosted page sends the buyer back with: nothing from Stripe (its webhook
/// confirms), a signed query from a Razorpay Payment Link.
#[derive(serde::Deserialize)]
struct PaidQuery {
    razorpay_payment_id: Option<String>,
    razorpay_payment_link_id: Option<String>,
    razorpay_payment_link_reference_id: Option<String>,
    razorpay_payment_link_status: Option<String>,
    razorpay_signature: Option<String>,
}

/// Back from paying. A Razorpay callback is checked and fulfils the order at once; a forged
/// or altered one credits nothing and says so.
async fn paid(
    State(st): State<AppState>,
    w: Web,
    ip: ClientIp,
    headers: HeaderMap,
    Query(q): Query<PaidQuery>,
) -> Response {
    let (Some(link), Some(reference), Some(status), Some(payment), Some(sig)) = (
        q.razorpay_payment_link_id,
        q.razorpay_payment_link_reference_id,
        q.razorpay_payment_link_status,
        q.razorpay_payment_id,
        q.razorpay_signature,
    ) else {
        return super::see_other("/billing?done=paid");
    };
    match st
        .app
        .confirm_razorpay_link(w.principal(), &link, &reference, &status, &payment, &sig)
        .await
    {
        Ok(_) => super::see_other("/billing?done=credited"),
        Err(e) => {
            let c = w.chrome("Billing", "billing").error(message_of(&e));
            page_with(status_of(&e), &billing_view(&st, &w, c, ip, &headers).await)
        }
    }
}

async fn checkout(
    State(st): State<AppState>,
    w: Web,
    ip: ClientIp,
    headers: HeaderMap,
    f: FormData,
) -> Response {
    let (chosen, country) = crate::routes::billing::buyer_currency(&st, ip, &headers);
    let base = st.config.public_url();
    let result = st
        .app
        .checkout(
            w.principal(),
            pixeld_core::billing::CheckoutInput {
                pack: f.get("pack").to_string(),
                plan: f.opt("plan").map(str::to_string),
                currency: None,
                preferred_currency: chosen,
                country,
                // The provider's own hosted page: Stripe Checkout, or a Razorpay Payment Link
                // for INR (Razorpay's Checkout.js would need a third-party script here).
                provider: None,
                hosted: true,
                success_url: Some(format!("{base}/billing/paid")),
                cancel_url: Some(format!("{base}/billing?done=cancelled")),
            },
        )
        .await;
    match result {
        Ok((_, c)) if c.url.is_some() => super::see_other(c.url.as_deref().unwrap_or("/billing")),
        Ok(_) => {
            let c = w
                .chrome("Billing", "billing")
                .error("This payment method needs the provider's own page; use the API.");
            page_with(
                axum::http::StatusCode::CONFLICT,
                &billing_view(&st, &w, c, ip, &headers).await,
            )
        }
        Err(e) => {
            let c = w.chrome("Billing", "billing").error(message_of(&e));
            page_with(status_of(&e), &billing_view(&st, &w, c, ip, &headers).await)
        }
    }
}
