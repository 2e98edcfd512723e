//! The operator's pages (instance administrators only): system health, open data-subject
//! requests, API latency and visits; users with their balances, credit corrections, disabling
//! and deleting at once. Anyone else is answered 404, as if the pages were not there.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use pixeld_core::ledger::GrantSource;
use pixeld_core::rights::DataRequest;
use pixeld_core::store::{JobCount, User};
use time::Duration;
use uuid::Uuid;

use super::{
    Chrome, FormData, Web, framed_with, list_page, message_of, page, page_with, see_other,
    status_of, when,
};
use crate::AppState;
use crate::extract::Query;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(overview))
        .route("/admin/users", get(users_page))
        .route("/admin/users/{id}", get(user_page))
        .route("/admin/users/{id}/credits", post(change_credits))
        .route("/admin/users/{id}/disable", post(disable))
        .route("/admin/users/{id}/enable", post(enable))
        .route("/admin/users/{id}/delete", post(delete_now))
}

#[derive(serde::Deserialize)]
struct AdminQuery {
    done: Option<String>,
    cursor: Option<String>,
    requests: Option<String>,
    email: Option<String>,
}

fn notice_for(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "credits" => "Credits changed; the entry is in their transactions.",
        "replayed" => "That change was applied already; nothing was applied twice.",
        "disabled" => "Account disabled: signed out everywhere, tokens refused.",
        "enabled" => "Account enabled.",
        "deleted" => "The account was deleted.",
        _ => return None,
    })
}

/// Only instance administrators see these pages; to anyone else they do not exist.
pub(super) fn refused(w: &Web) -> Option<Response> {
    (!w.principal().user.is_admin).then(|| {
        framed_with(
            StatusCode::NOT_FOUND,
            w.chrome("Not found", ""),
            "<h1>Not found</h1><p>There is no page here.</p>",
        )
    })
}

fn chrome(title: &str, w: &Web, done: Option<&str>) -> Chrome {
    w.chrome(title, "admin").notice_if(notice_for(done))
}

// ---------------------------------------------------------------------------------------------
// Health, requests, latency and visits

struct RequestRow {
    user_id: Uuid,
    user: String,
    kind: &'static str,
    status: &'static str,
    requested: String,
    due: String,
    overdue: bool,
    detail: String,
}

struct RouteRow {
    route: String,
    requests: i64,
    p50: String,
    p95: String,
    p99: String,
}

struct SiteRow {
    name: &'static str,
    views: i64,
    visitors: i64,
    top: Vec<(String, i64)>,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct Overview {
    c: Chrome,
    backend: &'static str,
    database: Result<(), String>,
    database_ms: u64,
    users: i64,
    disabled: i64,
    jobs: Vec<JobCount>,
    backlog: i64,
    requests: Vec<RequestRow>,
    requests_cursor: Option<String>,
    routes: Vec<RouteRow>,
    sites: Vec<SiteRow>,
}

fn ms(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.0} ms")
    }
}

async fn request_row(st: &AppState, r: &DataRequest, now: time::OffsetDateTime) -> RequestRow {
    let user = match st.app.store.user_by_id(r.user_id).await {
        Ok(Some(u)) => u.email,
        _ => "(deleted account)".into(),
    };
    RequestRow {
        user_id: r.user_id,
        user,
        kind: r.kind.as_str(),
        status: r.status.as_str(),
        requested: when(r.requested_at),
        due: when(r.due_at),
        overdue: r.completed_at.is_none() && r.due_at < now,
        detail: r.detail.clone(),
    }
}

async fn overview(State(st): State<AppState>, w: Web, Query(q): Query<AdminQuery>) -> Response {
    if let Some(r) = refused(&w) {
        return r;
    }
    let p = w.principal();
    let mut c = chrome("Operator", &w, q.done.as_deref());
    let health = match st.app.system_health(p).await {
        Ok(h) => h,
        Err(e) => {
            return framed_with(status_of(&e), c.error(message_of(&e)), "<h1>Operator</h1>");
        }
    };
    let now = st.app.now();
    let (requests, requests_cursor) = match st
        .app
        .open_data_requests(p, list_page(q.requests.as_deref()))
        .await
    {
        Ok(pg) => {
            let mut rows = Vec::new();
            for r in &pg.items {
                rows.push(request_row(&st, r, now).await);
            }
            (rows, pg.next_cursor)
        }
        Err(e) => {
            c = c.error(message_of(&e));
            (Vec::new(), None)
        }
    };
    let today = now.date();
    let from = today - Duration::days(6);
    let mut routes: Vec<RouteRow> = st
        .app
        .route_metrics(p, from, today)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|m| RouteRow {
            route: m.route,
            requests: m.requests,
            p50: ms(m.p50_ms),
            p95: ms(m.p95_ms),
            p99: ms(m.p99_ms),
        })
        .collect();
    routes.sort_by(|a, b| b.requests.cmp(&a.requests).then(a.route.cmp(&b.route)));
    routes.truncate(20);
    let mut sites = Vec::new();
    for (site, name) in [("website", "Website"), ("dashboard", "Dashboard")] {
        if let Ok(r) = st.app.analytics_report(p, site, from, today).await {
            sites.push(SiteRow {
                name,
                views: r.views,
                visitors: r.visitors,
                top: r
                    .top_pages
                    .into_iter()
                    .take(5)
                    .map(|t| (t.key, t.views))
                    .collect(),
            });
        }
    }
    page(&Overview {
        c,
        backend: health.backend,
        database_ms: health.database_ms,
        users: health.users.0,
        disabled: health.users.1,
        backlog: health.backlog(),
        database: health.database,
        jobs: health.jobs,
        requests,
        requests_cursor,
        routes,
        sites,
    })
}

// ---------------------------------------------------------------------------------------------
// Users

struct UserRow {
    id: Uuid,
    email: String,
    name: String,
    created: String,
    tags: Vec<&'static str>,
    disabled: bool,
}

impl From<&User> for UserRow {
    fn from(u: &User) -> Self {
        let mut tags = Vec::new();
        if u.is_admin {
            tags.push("operator");
        }
        if u.email_verified_at.is_none() {
            tags.push("unverified");
        }
        if u.totp_secret.is_some() {
            tags.push("2FA");
        }
        if u.disabled_at.is_some() {
            tags.push("disabled");
        }
        Self {
            id: u.id,
            email: u.email.clone(),
            name: u.name.clone(),
            created: when(u.created_at),
            tags,
            disabled: u.disabled_at.is_some(),
        }
    }
}

#[derive(Template)]
#[template(path = "admin_users.html")]
struct UsersPage {
    c: Chrome,
    email: String,
    users: Vec<UserRow>,
    next_cursor: Option<String>,
}

async fn users_page(State(st): State<AppState>, w: Web, Query(q): Query<AdminQuery>) -> Response {
    if let Some(r) = refused(&w) {
        return r;
    }
    let mut c = chrome("Users", &w, q.done.as_deref());
    let email = q.email.unwrap_or_default();
    let (users, next_cursor, status) = if email.trim().is_empty() {
        match st
            .app
            .operator_users(w.principal(), list_page(q.cursor.as_deref()))
            .await
        {
            Ok(pg) => (pg.items, pg.next_cursor, StatusCode::OK),
            Err(e) => {
                c = c.error(message_of(&e));
                (Vec::new(), None, status_of(&e))
            }
        }
    } else {
        match st.app.operator_find_user(w.principal(), &email).await {
            Ok(u) => (vec![u], None, StatusCode::OK),
            Err(_) => (Vec::new(), None, StatusCode::OK),
        }
    };
    page_with(
        status,
        &UsersPage {
            c,
            email,
            users: users.iter().map(UserRow::from).collect(),
            next_cursor,
        },
    )
}

struct OrgRow {
    id: Uuid,
    name: String,
    personal: bool,
    role: &'static str,
    available: i64,
    chosen: bool,
}

#[derive(Template)]
#[template(path = "admin_user.html")]
struct UserPage {
    c: Chrome,
    u: UserRow,
    is_self: bool,
    available: i64,
    held: i64,
    orgs: Vec<OrgRow>,
    requests: Vec<RequestRow>,
    key: String,
    amount: String,
    kind: String,
    reason: String,
}

async fn user_view(
    st: &AppState,
    w: &Web,
    c: Chrome,
    id: Uuid,
    form: Option<&FormData>,
    status: StatusCode,
) -> Response {
    match st.app.operator_user(w.principal(), id).await {
        Ok(o) => {
            let now = st.app.now();
            let mut requests = Vec::new();
            for r in &o.requests {
                requests.push(request_row(st, r, now).await);
            }
            let chosen = form
                .and_then(|f| Uuid::parse_str(f.get("org")).ok())
                .unwrap_or(o.user.personal_org_id);
            let mut orgs = Vec::new();
            for m in &o.orgs {
                orgs.push(OrgRow {
                    id: m.org.id,
                    name: m.org.name.clone(),
                    personal: m.org.personal,
                    role: m.role.as_str(),
                    available: st
                        .app
                        .operator_balance(w.principal(), m.org.id)
                        .await
                        .map_or(0, |b| b.available),
                    chosen: m.org.id == chosen,
                });
            }
            page_with(
                status,
                &UserPage {
                    c,
                    is_self: o.user.id == w.principal().user.id,
                    u: UserRow::from(&o.user),
                    available: o.balance.available,
                    held: o.balance.held,
                    orgs,
                    requests,
                    // A form sent twice (a reload, a double click) applies once.
                    key: form
                        .and_then(|f| f.opt("key"))
                        .map_or_else(|| Uuid::now_v7().to_string(), str::to_string),
                    amount: form
                        .map(|f| f.get("amount").to_string())
                        .unwrap_or_default(),
                    kind: form.map_or("adjust", |f| f.get("kind")).to_string(),
                    reason: form
                        .map(|f| f.get("reason").to_string())
                        .unwrap_or_default(),
                },
            )
        }
        Err(e) => framed_with(
            status_of(&e),
            chrome("User", w, None).error(message_of(&e)),
            "<h1>Operator</h1><p><a href=\"/admin/users\">All users</a></p>",
        ),
    }
}

async fn user_page(
    State(st): State<AppState>,
    w: Web,
    Path(id): Path<Uuid>,
    Query(q): Query<AdminQuery>,
) -> Response {
    if let Some(r) = refused(&w) {
        return r;
    }
    let c = chrome("User", &w, q.done.as_deref());
    user_view(&st, &w, c, id, None, StatusCode::OK).await
}

async fn user_error(
    st: &AppState,
    w: &Web,
    id: Uuid,
    e: &pixeld_core::Error,
    form: Option<&FormData>,
) -> Response {
    let c = chrome("User", w, None).error(message_of(e));
    user_view(st, w, c, id, form, status_of(e)).await
}

async fn change_credits(
    State(st): State<AppState>,
    w: Web,
    Path(id): Path<Uuid>,
    f: FormData,
) -> Response {
    if let Some(r) = refused(&w) {
        return r;
    }
    let actor = &w.principal().user;
    let result = async {
        let user = st.app.operator_user(w.principal(), id).await?;
        // Only an organisation the account belongs to; its personal one by default.
        let org = match f.opt("org") {
            None => user.user.personal_org_id,
            Some(o) => Uuid::parse_str(o)
                .ok()
                .filter(|o| user.orgs.iter().any(|m| m.org.id == *o))
                .ok_or_else(|| {
                    pixeld_core::Error::invalid("org", "must be one of the account's organisations")
                })?,
        };
        let amount: i64 = f.get("amount").trim().parse().map_err(|_| {
            pixeld_core::Error::invalid("amount", "must be a whole number of credits")
        })?;
        let key = f.opt("key");
        match f.get("kind") {
            "adjust" => {
                st.app
                    .admin_adjust_credits(actor, org, amount, f.get("reason"), key)
                    .await
            }
            kind => {
                let source = GrantSource::parse(kind)
                    .filter(|s| matches!(s, GrantSource::Promo | GrantSource::Admin))
                    .ok_or_else(|| {
                        pixeld_core::Error::invalid("kind", "must be correction, promo or grant")
                    })?;
                st.app
                    .admin_grant_credits(actor, org, amount, source, f.get("reason"), None, key)
                    .await
            }
        }
    }
    .await;
    match result {
        Ok(pixeld_core::ledger::Applied::New(_)) => {
            see_other(&format!("/admin/users/{id}?done=credits"))
        }
        Ok(pixeld_core::ledger::Applied::Replayed(_)) => {
            see_other(&format!("/admin/users/{id}?done=replayed"))
        }
        Err(e) => user_error(&st, &w, id, &e, Some(&f)).await,
    }
}

async fn set_disabled(st: AppState, w: Web, id: Uuid, disabled: bool) -> Response {
    if let Some(r) = refused(&w) {
        return r;
    }
    match st
        .app
        .operator_set_disabled(w.principal(), id, disabled)
        .await
    {
        Ok(_) => see_other(&format!(
            "/admin/users/{id}?done={}",
            if disabled { "disabled" } else { "enabled" }
        )),
        Err(e) => user_error(&st, &w, id, &e, None).await,
    }
}

async fn disable(State(st): State<AppState>, w: Web, Path(id): Path<Uuid>) -> Response {
    set_disabled(st, w, id, true).await
}

async fn enable(State(st): State<AppState>, w: Web, Path(id): Path<Uuid>) -> Response {
    set_disabled(st, w, id, false).await
}

async fn delete_now(
    State(st): State<AppState>,
    w: Web,
    Path(id): Path<Uuid>,
    f: FormData,
) -> Response {
    if let Some(r) = refused(&w) {
        return r;
    }
    let target = match st.app.operator_user(w.principal(), id).await {
        Ok(o) => o.user,
        Err(e) => return user_error(&st, &w, id, &e, None).await,
    };
    if !f.get("confirm").trim().eq_ignore_ascii_case(&target.email) {
        let e = pixeld_core::Error::invalid("confirm", "must be the account's email address");
        return user_error(&st, &w, id, &e, None).await;
    }
    match st
        .app
        .operator_delete_account(&w.principal().user, id, f.get("reason"))
        .await
    {
        Ok(()) => see_other("/admin/users?done=deleted"),
        Err(e) => user_error(&st, &w, id, &e, None).await,
    }
}
