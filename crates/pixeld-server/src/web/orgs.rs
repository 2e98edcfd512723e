//! Organisation pages: the switcher and the list of one's organisations, members and roles,
//! invitations (sending, withdrawing, and the page behind the emailed link), URL signing keys
//! and webhook secrets with rotation, and the webhook delivery log.
//!
//! Every page acts in the organisation chosen with the switcher (see [`super::ORG_COOKIE`]).

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use pixeld_core::roles::{Permission, Role};
use pixeld_core::store::SigningKey;
use uuid::Uuid;

use super::{
    Chrome, FormData, ORG_COOKIE, Web, framed_with, list_page, message_of, page, page_with,
    safe_next, see_other, status_of, when,
};
use crate::AppState;
use crate::extract::Query;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/orgs", get(orgs_page).post(create_org))
        .route("/orgs/switch", post(switch))
        .route("/org", get(org_page))
        .route("/org/name", post(rename))
        .route("/org/members/{id}/role", post(set_role))
        .route("/org/members/{id}/remove", post(remove_member))
        .route("/org/invites", post(invite))
        .route("/org/invites/{id}/revoke", post(revoke_invite))
        .route("/invites/accept", get(invite_page).post(accept_invite))
        .route("/org/keys", get(keys_page))
        .route("/org/signing-keys", post(create_signing_key))
        .route("/org/signing-keys/{id}/revoke", post(revoke_signing_key))
        .route("/org/webhook-secrets", post(create_webhook_secret))
        .route(
            "/org/webhook-secrets/{id}/revoke",
            post(revoke_webhook_secret),
        )
        .route("/org/webhooks", get(deliveries_page))
        .route("/org/webhooks/{id}", get(delivery_page))
        .route("/org/webhooks/{id}/redeliver", post(redeliver))
}

#[derive(serde::Deserialize)]
struct OrgQuery {
    done: Option<String>,
    cursor: Option<String>,
    members: Option<String>,
}

fn notice_for(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "created" => "Organisation created. You are its owner, and the dashboard now acts in it.",
        "switched" => "Switched. The dashboard now acts in this organisation.",
        "renamed" => "Organisation renamed.",
        "role" => "Role changed.",
        "removed" => "Member removed; their API tokens here are revoked.",
        "left" => "You left the organisation.",
        "invited" => "Invitation sent. The link works for 7 days.",
        "withdrawn" => "Invitation withdrawn; its link no longer works.",
        "joined" => "Welcome! You joined the organisation, and the dashboard now acts in it.",
        "key" => "Signing key created. Sign new URLs with it, then revoke the old one.",
        "key-revoked" => "Signing key revoked. URLs signed with it answer 403 from now on.",
        "secret" => "Webhook secret created. Webhooks are signed with every live secret.",
        "secret-revoked" => "Webhook secret revoked.",
        "redelivered" => "Sending again now.",
        _ => return None,
    })
}

fn chrome(title: &str, w: &Web, done: Option<&str>) -> Chrome {
    w.chrome(title, "org").notice_if(notice_for(done))
}

/// A `Set-Cookie` choosing the organisation pages act in (`None`: the personal one).
fn org_cookie(st: &AppState, org: Option<Uuid>) -> HeaderValue {
    match org {
        Some(id) => crate::routes::auth::cookie_header(st, ORG_COOKIE, &id.to_string(), 31_536_000),
        None => crate::routes::auth::cookie_header(st, ORG_COOKIE, "", 0),
    }
}

/// A redirect that also switches the organisation.
fn switch_to(st: &AppState, org: Option<Uuid>, to: &str) -> Response {
    let mut r = see_other(to);
    r.headers_mut()
        .insert(header::SET_COOKIE, org_cookie(st, org));
    r
}

/// The organisation to store in the cookie: `None` for the user's personal one.
fn chosen(w: &Web, org_id: Uuid) -> Option<Uuid> {
    Some(org_id).filter(|id| *id != w.principal().user.personal_org_id)
}

// ---------------------------------------------------------------------------------------------
// The list and the switcher

struct OrgRow {
    id: Uuid,
    name: String,
    personal: bool,
    role: &'static str,
    created: String,
    current: bool,
}

#[derive(Template)]
#[template(path = "orgs.html")]
struct OrgsPage {
    c: Chrome,
    orgs: Vec<OrgRow>,
    next_cursor: Option<String>,
    name: String,
}

async fn orgs_view(
    st: &AppState,
    w: &Web,
    c: Chrome,
    cursor: Option<&str>,
    name: &str,
) -> OrgsPage {
    let (orgs, next_cursor) = match st.app.orgs_of(w.principal(), list_page(cursor)).await {
        Ok(p) => (p.items, p.next_cursor),
        Err(_) => (Vec::new(), None),
    };
    OrgsPage {
        c,
        orgs: orgs
            .iter()
            .map(|o| OrgRow {
                id: o.org.id,
                name: o.org.name.clone(),
                personal: o.org.personal,
                role: o.role.as_str(),
                created: when(o.org.created_at),
                current: o.org.id == w.org.id,
            })
            .collect(),
        next_cursor,
        name: name.into(),
    }
}

async fn orgs_page(State(st): State<AppState>, w: Web, Query(q): Query<OrgQuery>) -> Response {
    let c = chrome("Organisations", &w, q.done.as_deref());
    page(&orgs_view(&st, &w, c, q.cursor.as_deref(), "").await)
}

async fn create_org(State(st): State<AppState>, w: Web, f: FormData) -> Response {
    match st.app.create_org(w.principal(), f.get("name")).await {
        Ok(org) => switch_to(&st, Some(org.id), "/org?done=created"),
        Err(e) => {
            let c = chrome("Organisations", &w, None).error(message_of(&e));
            page_with(
                status_of(&e),
                &orgs_view(&st, &w, c, None, f.get("name")).await,
            )
        }
    }
}

async fn switch(State(st): State<AppState>, w: Web, f: FormData) -> Response {
    let target = Uuid::parse_str(f.get("org")).ok();
    let ok = match target {
        Some(id) => st.app.get_org(w.principal(), id).await.ok(),
        None => None,
    };
    match ok {
        Some(o) => {
            let next = match f.opt("next") {
                Some(n) => safe_next(n).to_string(),
                None => "/dashboard?done=switched".into(),
            };
            switch_to(&st, chosen(&w, o.org.id), &next)
        }
        None => {
            let c = chrome("Organisations", &w, None)
                .error("You are not a member of that organisation.");
            page_with(
                StatusCode::NOT_FOUND,
                &orgs_view(&st, &w, c, None, "").await,
            )
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Members, roles, invitations

struct MemberRow {
    id: Uuid,
    name: String,
    email: String,
    role: &'static str,
    roles: Vec<(&'static str, bool)>,
    joined: String,
    you: bool,
}

struct InviteRow {
    id: Uuid,
    email: String,
    role: &'static str,
    sent: String,
    expires: String,
}

#[derive(Template)]
#[template(path = "org.html")]
struct OrgPage {
    c: Chrome,
    org_name: String,
    personal: bool,
    role: &'static str,
    can_manage: bool,
    can_members: bool,
    name: String,
    members: Vec<MemberRow>,
    members_cursor: Option<String>,
    invites: Vec<InviteRow>,
    assignable: Vec<(&'static str, bool)>,
    invite_email: String,
    matrix_roles: Vec<&'static str>,
    matrix: Vec<(&'static str, Vec<bool>)>,
}

/// Roles a member can be given here: `client` comes only through the client portal, and only
/// owners hand out `owner`.
fn assignable(by: Role) -> Vec<Role> {
    Role::ALL
        .into_iter()
        .filter(|r| *r != Role::Client)
        .filter(|r| *r != Role::Owner || by.allows(Permission::OwnersManage))
        .collect()
}

const PERMISSIONS: [(Permission, &str); 10] = [
    (Permission::OrgRead, "See the organisation and its members"),
    (Permission::ContentRead, "See images, templates and renders"),
    (
        Permission::ContentWrite,
        "Upload, render, edit templates, spend credits",
    ),
    (Permission::TokensOwn, "Create their own API tokens"),
    (
        Permission::TokensManageAll,
        "See and revoke everyone's tokens",
    ),
    (
        Permission::BillingRead,
        "See balance, transactions, invoices",
    ),
    (Permission::BillingManage, "Buy credits and change plans"),
    (
        Permission::OrgManage,
        "Rename, manage signing keys and webhook secrets",
    ),
    (
        Permission::MembersManage,
        "Invite, re-role and remove members",
    ),
    (Permission::OwnersManage, "Grant or remove the owner role"),
];

async fn org_view(
    st: &AppState,
    w: &Web,
    c: Chrome,
    members_cursor: Option<&str>,
    form: Option<&FormData>,
) -> OrgPage {
    let p = w.principal();
    let org = w.org.id;
    let role = p.role;
    let can_members = role.allows(Permission::MembersManage);
    let (members, next) = match st.app.members(p, org, list_page(members_cursor)).await {
        Ok(pg) => (pg.items, pg.next_cursor),
        Err(_) => (Vec::new(), None),
    };
    let invites = if can_members {
        st.app
            .invites(p, org, list_page(None))
            .await
            .map(|pg| pg.items)
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let choices = assignable(role);
    let invite_role = form.map_or("member", |f| f.get("role"));
    OrgPage {
        org_name: w.org.name.clone(),
        personal: w.org.personal,
        role: role.as_str(),
        can_manage: role.allows(Permission::OrgManage),
        can_members,
        name: form
            .and_then(|f| f.opt("name"))
            .unwrap_or(&w.org.name)
            .to_string(),
        members: members
            .iter()
            .map(|m| MemberRow {
                id: m.user_id,
                name: m.name.clone(),
                email: m.email.clone(),
                role: m.role.as_str(),
                roles: choices
                    .iter()
                    .chain(Some(&m.role).filter(|r| !choices.contains(r)))
                    .map(|r| (r.as_str(), *r == m.role))
                    .collect(),
                joined: when(m.joined_at),
                you: m.user_id == p.user.id,
            })
            .collect(),
        members_cursor: next,
        invites: invites
            .iter()
            .map(|i| InviteRow {
                id: i.id,
                email: i.email.clone(),
                role: i.role.as_str(),
                sent: when(i.created_at),
                expires: when(i.expires_at),
            })
            .collect(),
        assignable: choices
            .iter()
            .map(|r| (r.as_str(), r.as_str() == invite_role))
            .collect(),
        invite_email: form.map(|f| f.get("email").to_string()).unwrap_or_default(),
        matrix_roles: Role::ALL
            .iter()
            .filter(|r| **r != Role::Client)
            .map(|r| r.as_str())
            .collect(),
        matrix: PERMISSIONS
            .iter()
            .map(|(perm, about)| {
                (
                    *about,
                    Role::ALL
                        .iter()
                        .filter(|r| **r != Role::Client)
                        .map(|r| r.allows(*perm))
                        .collect(),
                )
            })
            .collect(),
        c,
    }
}

async fn org_page(State(st): State<AppState>, w: Web, Query(q): Query<OrgQuery>) -> Response {
    let c = chrome("Members", &w, q.done.as_deref());
    page(&org_view(&st, &w, c, q.members.as_deref(), None).await)
}

/// Shows the members page again with what went wrong.
async fn org_error(
    st: &AppState,
    w: &Web,
    e: &pixeld_core::Error,
    f: Option<&FormData>,
) -> Response {
    let c = chrome("Members", w, None).error(message_of(e));
    page_with(status_of(e), &org_view(st, w, c, None, f).await)
}

async fn rename(State(st): State<AppState>, w: Web, f: FormData) -> Response {
    match st
        .app
        .rename_org(w.principal(), w.org.id, f.get("name"))
        .await
    {
        Ok(_) => see_other("/org?done=renamed"),
        Err(e) => org_error(&st, &w, &e, Some(&f)).await,
    }
}

async fn set_role(
    State(st): State<AppState>,
    w: Web,
    Path(id): Path<Uuid>,
    f: FormData,
) -> Response {
    let result = match f.get("role").parse::<Role>() {
        Ok(role) => st.app.set_role(w.principal(), w.org.id, id, role).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => see_other("/org?done=role"),
        Err(e) => org_error(&st, &w, &e, None).await,
    }
}

async fn remove_member(State(st): State<AppState>, w: Web, Path(id): Path<Uuid>) -> Response {
    match st.app.remove_member(w.principal(), w.org.id, id).await {
        Ok(()) if id == w.principal().user.id => switch_to(&st, None, "/orgs?done=left"),
        Ok(()) => see_other("/org?done=removed"),
        Err(e) => org_error(&st, &w, &e, None).await,
    }
}

async fn invite(State(st): State<AppState>, w: Web, f: FormData) -> Response {
    let result = match f.get("role").parse::<Role>() {
        Ok(role) => {
            st.app
                .invite(w.principal(), w.org.id, f.get("email"), role)
                .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => see_other("/org?done=invited"),
        Err(e) => org_error(&st, &w, &e, Some(&f)).await,
    }
}

async fn revoke_invite(State(st): State<AppState>, w: Web, Path(id): Path<Uuid>) -> Response {
    match st.app.revoke_invite(w.principal(), w.org.id, id).await {
        Ok(()) => see_other("/org?done=withdrawn"),
        Err(e) => org_error(&st, &w, &e, None).await,
    }
}

#[derive(Template)]
#[template(path = "invite.html")]
struct InvitePage {
    c: Chrome,
    org_name: String,
    role: &'static str,
    email: String,
    you: String,
    wrong_user: bool,
    token: String,
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

fn dead_invite(w: &Web) -> Response {
    framed_with(
        StatusCode::NOT_FOUND,
        w.chrome("Invitation", ""),
        "<h1>This invitation link no longer works</h1>\
         <p>It was used already, withdrawn, or is more than 7 days old. Ask whoever invited you \
         to send a new one.</p><p><a href=\"/dashboard\">Go to your dashboard</a></p>",
    )
}

/// The page behind the emailed link: what joining means and a button. Opening it does not
/// spend the link (mail scanners prefetch links); only pressing the button does.
async fn invite_page(State(st): State<AppState>, w: Web, Query(q): Query<TokenQuery>) -> Response {
    let token = q.token.unwrap_or_default();
    match st.app.invite_by_token(&token).await {
        Ok((invite, org)) => {
            let you = w.principal().user.email.clone();
            page(&InvitePage {
                c: w.chrome(format!("Join {}", org.name), ""),
                org_name: org.name,
                role: invite.role.as_str(),
                wrong_user: !invite.email.eq_ignore_ascii_case(&you),
                email: invite.email,
                you,
                token,
            })
        }
        Err(_) => dead_invite(&w),
    }
}

async fn accept_invite(State(st): State<AppState>, w: Web, f: FormData) -> Response {
    match st.app.accept_invite(w.principal(), f.get("token")).await {
        Ok(o) => switch_to(&st, chosen(&w, o.org.id), "/org?done=joined"),
        Err(pixeld_core::Error::InvalidToken) => dead_invite(&w),
        Err(e) => framed_with(
            status_of(&e),
            w.chrome("Invitation", "").error(message_of(&e)),
            "<h1>Invitation</h1><p><a href=\"/dashboard\">Go to your dashboard</a></p>",
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Signing keys and webhook secrets

struct KeyRow {
    id: Uuid,
    short: String,
    secret: String,
    created: String,
    revoked: Option<String>,
}

impl From<&SigningKey> for KeyRow {
    fn from(k: &SigningKey) -> Self {
        Self {
            id: k.id,
            short: k.secret.chars().take(8).collect::<String>() + "…",
            secret: k.secret.clone(),
            created: when(k.created_at),
            revoked: k.revoked_at.map(when),
        }
    }
}

#[derive(Template)]
#[template(path = "org_keys.html")]
struct KeysPage {
    c: Chrome,
    org_name: String,
    signing: Vec<KeyRow>,
    webhook: Vec<KeyRow>,
}

async fn keys_view(st: &AppState, w: &Web, mut c: Chrome) -> (StatusCode, KeysPage) {
    let p = w.principal();
    let mut status = StatusCode::OK;
    let (signing, webhook) = match (
        st.app.signing_keys(p).await,
        st.app.webhook_secrets(p).await,
    ) {
        (Ok(s), Ok(h)) => (s, h),
        (Err(e), _) | (_, Err(e)) => {
            status = status_of(&e);
            if c.error.is_none() {
                c = c.error(format!(
                    "Only owners and admins manage keys and secrets. {}",
                    message_of(&e)
                ));
            }
            (Vec::new(), Vec::new())
        }
    };
    (
        status,
        KeysPage {
            c,
            org_name: w.org.name.clone(),
            signing: signing.iter().map(KeyRow::from).collect(),
            webhook: webhook.iter().map(KeyRow::from).collect(),
        },
    )
}

async fn keys_page(State(st): State<AppState>, w: Web, Query(q): Query<OrgQuery>) -> Response {
    let c = chrome("Keys and secrets", &w, q.done.as_deref());
    let (status, p) = keys_view(&st, &w, c).await;
    page_with(status, &p)
}

async fn keys_outcome<T>(
    st: &AppState,
    w: &Web,
    r: pixeld_core::Result<T>,
    done: &str,
) -> Response {
    match r {
        Ok(_) => see_other(&format!("/org/keys?done={done}")),
        Err(e) => {
            let c = chrome("Keys and secrets", w, None).error(message_of(&e));
            let (_, p) = keys_view(st, w, c).await;
            page_with(status_of(&e), &p)
        }
    }
}

async fn create_signing_key(State(st): State<AppState>, w: Web) -> Response {
    let r = st.app.create_signing_key(w.principal()).await;
    keys_outcome(&st, &w, r, "key").await
}

async fn revoke_signing_key(State(st): State<AppState>, w: Web, Path(id): Path<Uuid>) -> Response {
    let r = st.app.revoke_signing_key(w.principal(), id).await;
    keys_outcome(&st, &w, r, "key-revoked").await
}

async fn create_webhook_secret(State(st): State<AppState>, w: Web) -> Response {
    let r = st.app.create_webhook_secret(w.principal()).await;
    keys_outcome(&st, &w, r, "secret").await
}

async fn revoke_webhook_secret(
    State(st): State<AppState>,
    w: Web,
    Path(id): Path<Uuid>,
) -> Response {
    let r = st.app.revoke_webhook_secret(w.principal(), id).await;
    keys_outcome(&st, &w, r, "secret-revoked").await
}

// ---------------------------------------------------------------------------------------------
// The webhook delivery log

struct DeliveryRow {
    id: Uuid,
    event: String,
    url: String,
    status: String,
    attempts: i32,
    last: String,
    created: String,
}

impl From<&pixeld_core::store::WebhookDelivery> for DeliveryRow {
    fn from(d: &pixeld_core::store::WebhookDelivery) -> Self {
        Self {
            id: d.id,
            event: d.event.clone(),
            url: d.url.clone(),
            status: d.status.clone(),
            attempts: d.attempts,
            last: match (d.last_status, &d.last_error) {
                (Some(s), _) => format!("HTTP {s}"),
                (None, Some(e)) => e.clone(),
                (None, None) => "–".into(),
            },
            created: when(d.created_at),
        }
    }
}

#[derive(Template)]
#[template(path = "org_webhooks.html")]
struct DeliveriesPage {
    c: Chrome,
    org_name: String,
    rows: Vec<DeliveryRow>,
    next_cursor: Option<String>,
}

async fn deliveries_page(
    State(st): State<AppState>,
    w: Web,
    Query(q): Query<OrgQuery>,
) -> Response {
    let mut c = chrome("Webhook deliveries", &w, q.done.as_deref());
    let (rows, next_cursor, status) = match st
        .app
        .webhook_deliveries(w.principal(), list_page(q.cursor.as_deref()))
        .await
    {
        Ok(p) => (p.items, p.next_cursor, StatusCode::OK),
        Err(e) => {
            c = c.error(message_of(&e));
            (Vec::new(), None, status_of(&e))
        }
    };
    page_with(
        status,
        &DeliveriesPage {
            c,
            org_name: w.org.name.clone(),
            rows: rows.iter().map(DeliveryRow::from).collect(),
            next_cursor,
        },
    )
}

struct AttemptRow {
    n: i32,
    at: String,
    outcome: String,
    ms: i64,
    excerpt: String,
}

#[derive(Template)]
#[template(path = "org_webhook.html")]
struct DeliveryPage {
    c: Chrome,
    org_name: String,
    d: DeliveryRow,
    next_attempt: Option<String>,
    delivered: Option<String>,
    can_redeliver: bool,
    attempts: Vec<AttemptRow>,
    payload: String,
}

async fn delivery_view(st: &AppState, w: &Web, c: Chrome, id: Uuid) -> Response {
    match st.app.webhook_delivery(w.principal(), id).await {
        Ok((d, attempts)) => {
            let payload = serde_json::from_str::<serde_json::Value>(&d.payload)
                .and_then(|v| serde_json::to_string_pretty(&v))
                .unwrap_or_else(|_| d.payload.clone());
            let status = if c.error.is_some() {
                StatusCode::CONFLICT
            } else {
                StatusCode::OK
            };
            page_with(
                status,
                &DeliveryPage {
                    c,
                    org_name: w.org.name.clone(),
                    next_attempt: d.next_attempt_at.map(when),
                    delivered: d.delivered_at.map(when),
                    can_redeliver: d.status != "pending"
                        && w.principal().role.allows(Permission::ContentWrite),
                    d: DeliveryRow::from(&d),
                    attempts: attempts
                        .iter()
                        .map(|a| AttemptRow {
                            n: a.attempt,
                            at: when(a.at),
                            outcome: match (a.status_code, &a.error) {
                                (Some(s), _) => format!("HTTP {s}"),
                                (None, Some(e)) => e.clone(),
                                (None, None) => "–".into(),
                            },
                            ms: a.ms,
                            excerpt: a.response_excerpt.clone().unwrap_or_default(),
                        })
                        .collect(),
                    payload,
                },
            )
        }
        Err(e) => framed_with(
            status_of(&e),
            w.chrome("Webhook delivery", "org").error(message_of(&e)),
            "<h1>Webhook delivery</h1><p><a href=\"/org/webhooks\">All deliveries</a></p>",
        ),
    }
}

async fn delivery_page(
    State(st): State<AppState>,
    w: Web,
    Path(id): Path<Uuid>,
    Query(q): Query<OrgQuery>,
) -> Response {
    let c = chrome("Webhook delivery", &w, q.done.as_deref());
    delivery_view(&st, &w, c, id).await
}

async fn redeliver(State(st): State<AppState>, w: Web, Path(id): Path<Uuid>) -> Response {
    match st.app.redeliver_webhook(w.principal(), id).await {
        Ok(_) => see_other(&format!("/org/webhooks/{id}?done=redelivered")),
        Err(e) => {
            let c = chrome("Webhook delivery", &w, None).error(message_of(&e));
            delivery_view(&st, &w, c, id).await
        }
    }
}
