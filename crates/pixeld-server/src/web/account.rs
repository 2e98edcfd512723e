//! The signed-in user's pages: the dashboard, profile, security (password, two-factor sign-in,
//! sessions), API tokens and the privacy center (export, consents, restriction, deletion).

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::Response;
use axum::routing::{get, post};
use pixeld_core::consent::{ConsentPurpose, Objection, ProfileUpdate};
use pixeld_core::export::ExportStatus;
use pixeld_core::page::PageRequest;
use pixeld_core::tokens::{NewToken, Scope};
use time::Duration;
use uuid::Uuid;

use super::{Chrome, FormData, Web, message_of, page, page_with, see_other, status_of, when};
use crate::AppState;
use crate::extract::Query;
use crate::routes::auth::session_cookie_header;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/dashboard", get(dashboard))
        .route("/account", get(profile_page).post(save_profile))
        .route("/account/email", post(change_email))
        .route("/account/security", get(security_page))
        .route("/account/password", post(change_password))
        .route("/account/2fa/start", post(start_totp))
        .route("/account/2fa/confirm", post(confirm_totp))
        .route("/account/2fa/disable", post(disable_totp))
        .route("/account/2fa/recovery-codes", post(new_codes))
        .route("/account/sessions/{id}/revoke", post(revoke_session))
        .route("/account/sessions/revoke-others", post(revoke_others))
        .route("/account/tokens", get(tokens_page).post(create_token))
        .route("/account/tokens/{id}/revoke", post(revoke_token))
        .route("/account/privacy", get(privacy_page))
        .route("/account/privacy/export", post(request_export))
        .route("/account/privacy/consents", post(save_consents))
        .route("/account/privacy/processing", post(save_processing))
        .route("/account/delete", post(delete_account))
}

#[derive(serde::Deserialize)]
struct Done {
    done: Option<String>,
}

/// The message a page shows after a redirect from one of its forms.
fn notice_for(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "profile" => "Profile saved.",
        "switched" => "Switched organisation. The dashboard now acts in it.",
        "email" => "Open the link we sent to the new address to finish the change.",
        "2fa-off" => "Two-factor sign-in is off.",
        "session" => "That session is signed out.",
        "sessions" => "Every other session is signed out.",
        "revoked" => "Token revoked. Requests with it are refused from now on.",
        "export" => "Your export is being built. We email a download link when it is ready.",
        "consents" => "Your choices are saved.",
        "processing" => "Your processing choices are saved.",
        _ => return None,
    })
}

fn chrome(title: &str, nav: &'static str, w: &Web, done: Option<&str>) -> Chrome {
    w.chrome(title, nav).notice_if(notice_for(done))
}

// ---------------------------------------------------------------------------------------------
// Dashboard

#[derive(Template)]
#[template(path = "dashboard.html")]
struct Dashboard {
    c: Chrome,
    name: String,
    available: i64,
    held: i64,
    plan: String,
    monthly_credits: i64,
    two_factor: bool,
    tokens: usize,
}

async fn dashboard(State(st): State<AppState>, w: Web, Query(q): Query<Done>) -> Response {
    let p = w.principal();
    let balance = st.app.credit_balance(p).await;
    let plan = st.app.current_plan(p).await;
    let tokens = st
        .app
        .list_tokens(
            p,
            PageRequest {
                after: None,
                limit: 100,
            },
        )
        .await
        .map(|t| t.items.iter().filter(|t| t.revoked_at.is_none()).count())
        .unwrap_or(0);
    let (available, held) = balance.map(|b| (b.available, b.held)).unwrap_or((0, 0));
    let (plan, monthly_credits) = plan
        .map(|k| (k.plan_id, k.monthly_credits))
        .unwrap_or_else(|_| ("free".into(), 0));
    page(&Dashboard {
        c: chrome("Dashboard", "dashboard", &w, q.done.as_deref()),
        name: p.user.name.clone(),
        available,
        held,
        plan,
        monthly_credits,
        two_factor: p.user.totp_secret.is_some(),
        tokens,
    })
}

// ---------------------------------------------------------------------------------------------
// Profile

#[derive(Template)]
#[template(path = "account_profile.html")]
struct ProfilePage {
    c: Chrome,
    name: String,
    email: String,
    phone: String,
    company: String,
    address: String,
    tax_id: String,
    changes: Vec<(String, String)>,
}

async fn profile_view(st: &AppState, w: &Web, c: Chrome, input: Option<&FormData>) -> ProfilePage {
    let p = w.principal();
    let profile = st.app.profile(p).await.unwrap_or_default();
    let changes = st
        .app
        .profile_changes(p)
        .await
        .unwrap_or_default()
        .iter()
        .rev()
        .take(10)
        .map(|ch| (when(ch.changed_at), ch.fields.join(", ")))
        .collect();
    let from = |name: &str, stored: Option<String>| match input {
        Some(f) => f.get(name).to_string(),
        None => stored.unwrap_or_default(),
    };
    ProfilePage {
        c,
        name: from("name", Some(p.user.name.clone())),
        email: p.user.email.clone(),
        phone: from("phone", profile.phone),
        company: from("company", profile.company),
        address: from("address", Some(profile.address.join("\n"))),
        tax_id: from("tax_id", profile.tax_id),
        changes,
    }
}

async fn profile_page(State(st): State<AppState>, w: Web, Query(q): Query<Done>) -> Response {
    let c = chrome("Profile", "account", &w, q.done.as_deref());
    page(&profile_view(&st, &w, c, None).await)
}

async fn save_profile(State(st): State<AppState>, w: Web, f: FormData) -> Response {
    let address: Vec<String> = f
        .get("address")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    let update = ProfileUpdate {
        name: Some(f.get("name").to_string()),
        phone: Some(f.get("phone").to_string()),
        company: Some(f.get("company").to_string()),
        address: Some(address),
        tax_id: Some(f.get("tax_id").to_string()),
    };
    match st.app.update_profile(w.principal(), update).await {
        Ok(_) => see_other("/account?done=profile"),
        Err(e) => {
            let c = chrome("Profile", "account", &w, None).error(message_of(&e));
            page_with(status_of(&e), &profile_view(&st, &w, c, Some(&f)).await)
        }
    }
}

async fn change_email(State(st): State<AppState>, w: Web, f: FormData) -> Response {
    match st
        .app
        .request_email_change(
            &w.principal().user,
            f.get("current_password"),
            f.get("email"),
        )
        .await
    {
        Ok(()) => see_other("/account?done=email"),
        Err(e) => {
            let c = chrome("Profile", "account", &w, None).error(message_of(&e));
            page_with(status_of(&e), &profile_view(&st, &w, c, None).await)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Security

/// A session row.
struct SessionRow {
    id: Uuid,
    created: String,
    last_seen: String,
    ip: String,
    browser: String,
    current: bool,
}

/// What the two-factor panel shows.
enum TwoFactorPanel {
    /// Off; a button starts enrolment.
    Off,
    /// Enrolment started: scan, then confirm with a code.
    Enrolling { secret: String, qr_data_uri: String },
    /// Just turned on (or codes replaced): the recovery codes, shown once.
    Codes(Vec<String>),
    /// On.
    On { codes_left: i64 },
}

#[derive(Template)]
#[template(path = "account_security.html")]
struct SecurityPage {
    c: Chrome,
    two_factor: TwoFactorPanel,
    sessions: Vec<SessionRow>,
}

async fn security_view(
    st: &AppState,
    w: &Web,
    c: Chrome,
    panel: Option<TwoFactorPanel>,
) -> SecurityPage {
    let p = w.principal();
    // Re-read the user: 2FA may have changed in this very request.
    let user = st
        .app
        .store
        .user_by_id(p.user.id)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| p.user.clone());
    let panel = match panel {
        Some(panel) => panel,
        None if user.totp_secret.is_some() => TwoFactorPanel::On {
            codes_left: st.app.recovery_codes_left(user.id).await.unwrap_or(0),
        },
        None => TwoFactorPanel::Off,
    };
    let current = w.auth.session.id;
    let sessions = st
        .app
        .sessions_of(user.id)
        .await
        .unwrap_or_default()
        .iter()
        .map(|s| SessionRow {
            id: s.id,
            created: when(s.created_at),
            last_seen: when(s.last_seen_at),
            ip: s.ip.clone().unwrap_or_else(|| "unknown".into()),
            browser: s
                .user_agent
                .as_deref()
                .map(browser_name)
                .unwrap_or_else(|| "unknown".into()),
            current: s.id == current,
        })
        .collect();
    SecurityPage {
        c,
        two_factor: panel,
        sessions,
    }
}

/// A short name for a user agent: "Chrome on Linux".
fn browser_name(ua: &str) -> String {
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .iter()
    .find(|(k, _)| ua.contains(k))
    .map_or("A browser", |(_, v)| v);
    let os = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(k, _)| ua.contains(k))
    .map(|(_, v)| *v);
    match os {
        Some(os) => format!("{browser} on {os}"),
        None => browser.to_string(),
    }
}

async fn security_page(State(st): State<AppState>, w: Web, Query(q): Query<Done>) -> Response {
    let c = chrome("Security", "account", &w, q.done.as_deref());
    page(&security_view(&st, &w, c, None).await)
}

async fn security_error(
    st: &AppState,
    w: &Web,
    e: &pixeld_core::Error,
    panel: Option<TwoFactorPanel>,
) -> Response {
    let c = chrome("Security", "account", w, None).error(message_of(e));
    page_with(status_of(e), &security_view(st, w, c, panel).await)
}

async fn change_password(State(st): State<AppState>, w: Web, f: FormData) -> Response {
    let p = w.principal();
    match st
        .app
        .change_password(
            &p.user,
            f.get("current_password"),
            f.get("new_password"),
            Some(w.auth.session.id),
        )
        .await
    {
        Ok(()) => {
            let c = chrome("Security", "account", &w, None)
                .notice("Password changed. Every other session was signed out.");
            page(&security_view(&st, &w, c, None).await)
        }
        Err(e) => security_error(&st, &w, &e, None).await,
    }
}

async fn start_totp(State(st): State<AppState>, w: Web) -> Response {
    match st.app.begin_totp_enrolment(&w.principal().user).await {
        Ok(e) => {
            let c = chrome("Security", "account", &w, None);
            page(
                &security_view(
                    &st,
                    &w,
                    c,
                    Some(TwoFactorPanel::Enrolling {
                        secret: e.secret,
                        qr_data_uri: e.qr_svg_data_uri,
                    }),
                )
                .await,
            )
        }
        Err(e) => security_error(&st, &w, &e, None).await,
    }
}

async fn confirm_totp(State(st): State<AppState>, w: Web, f: FormData) -> Response {
    let user = &w.principal().user;
    match st.app.confirm_totp_enrolment(user, f.get("code")).await {
        Ok(codes) => {
            let c = chrome("Security", "account", &w, None)
                .notice("Two-factor sign-in is on. Save your recovery codes now.");
            page(&security_view(&st, &w, c, Some(TwoFactorPanel::Codes(codes))).await)
        }
        Err(e) => {
            // The pending secret is kept, so a mistyped code is retried on the same QR code.
            let panel = st
                .app
                .pending_totp_enrolment(user.id)
                .await
                .ok()
                .flatten()
                .map(|e| TwoFactorPanel::Enrolling {
                    secret: e.secret,
                    qr_data_uri: e.qr_svg_data_uri,
                });
            security_error(&st, &w, &e, panel).await
        }
    }
}

async fn disable_totp(State(st): State<AppState>, w: Web, f: FormData) -> Response {
    match st
        .app
        .disable_totp(&w.principal().user, f.get("code"))
        .await
    {
        Ok(()) => see_other("/account/security?done=2fa-off"),
        Err(e) => security_error(&st, &w, &e, None).await,
    }
}

async fn new_codes(State(st): State<AppState>, w: Web, f: FormData) -> Response {
    match st
        .app
        .regenerate_recovery_codes(&w.principal().user, f.get("code"))
        .await
    {
        Ok(codes) => {
            let c = chrome("Security", "account", &w, None)
                .notice("New recovery codes. The old ones no longer work.");
            page(&security_view(&st, &w, c, Some(TwoFactorPanel::Codes(codes))).await)
        }
        Err(e) => security_error(&st, &w, &e, None).await,
    }
}

async fn revoke_session(State(st): State<AppState>, w: Web, Path(id): Path<Uuid>) -> Response {
    match st.app.end_session(w.principal().user.id, id).await {
        Ok(()) if id == w.auth.session.id => {
            let mut r = see_other("/sign-in?done=signed-out");
            r.headers_mut()
                .insert(header::SET_COOKIE, session_cookie_header(&st, "", 0));
            r
        }
        Ok(()) => see_other("/account/security?done=session"),
        Err(e) => security_error(&st, &w, &e, None).await,
    }
}

async fn revoke_others(State(st): State<AppState>, w: Web) -> Response {
    match st
        .app
        .end_other_sessions(w.principal().user.id, w.auth.session.id)
        .await
    {
        Ok(_) => see_other("/account/security?done=sessions"),
        Err(e) => security_error(&st, &w, &e, None).await,
    }
}

// ---------------------------------------------------------------------------------------------
// API tokens

struct TokenRow {
    id: Uuid,
    name: String,
    prefix: String,
    scopes: String,
    created: String,
    expires: String,
    last_used: String,
    revoked: bool,
}

struct ScopeChoice {
    name: &'static str,
    about: &'static str,
    checked: bool,
}

#[derive(Template)]
#[template(path = "account_tokens.html")]
struct TokensPage {
    c: Chrome,
    /// Makes one form create one token, however often it is sent.
    nonce: String,
    created: Option<(String, String)>,
    name: String,
    scopes: Vec<ScopeChoice>,
    expiry: String,
    tokens: Vec<TokenRow>,
    next_cursor: Option<String>,
    base_url: String,
}

/// What each scope allows, for the token form.
fn scope_about(s: Scope) -> &'static str {
    match s {
        Scope::Render => "render images from templates",
        Scope::ImagesRead => "read images and their analysis",
        Scope::ImagesWrite => "upload, transform and delete images",
        Scope::Generate => "generate assets from prompts",
        Scope::Studio => "product studio shots",
        Scope::BillingRead => "read balance, transactions and invoices",
        Scope::BillingWrite => "buy credits and plans",
        Scope::AccountRead => "read the account and organisations",
        Scope::AccountWrite => "change the account, members and tokens",
        Scope::WorkspaceRead => "read projects, clients, tasks and invoices",
        Scope::WorkspaceWrite => "change projects, clients, tasks and invoices",
        Scope::Admin => "instance administration",
    }
}

#[derive(serde::Deserialize)]
struct TokensQuery {
    done: Option<String>,
    cursor: Option<String>,
}

async fn tokens_view(
    st: &AppState,
    w: &Web,
    c: Chrome,
    cursor: Option<String>,
    form: Option<&FormData>,
) -> TokensPage {
    let p = w.principal();
    let page = match cursor.as_deref() {
        Some(cur) => PageRequest::parse(Some(cur), Some(50)),
        None => Ok(PageRequest {
            after: None,
            limit: 50,
        }),
    };
    let (tokens, next_cursor) = match page {
        Ok(pr) => match st.app.list_tokens(p, pr).await {
            Ok(pg) => (pg.items, pg.next_cursor),
            Err(_) => (Vec::new(), None),
        },
        Err(_) => (Vec::new(), None),
    };
    let chosen: Vec<&str> = form.map(|f| f.all("scopes")).unwrap_or_default();
    let scopes = Scope::ALL
        .iter()
        .filter(|s| **s != Scope::Admin || p.user.is_admin)
        .map(|s| ScopeChoice {
            name: s.as_str(),
            about: scope_about(*s),
            checked: chosen.contains(&s.as_str()),
        })
        .collect();
    TokensPage {
        c,
        // A form shown again after an error keeps its nonce; a fresh form gets a new one.
        nonce: form
            .and_then(|f| f.opt("nonce"))
            .map_or_else(|| Uuid::new_v4().to_string(), str::to_string),
        created: None,
        name: form.map(|f| f.get("name").to_string()).unwrap_or_default(),
        scopes,
        expiry: form
            .map(|f| f.get("expiry").to_string())
            .unwrap_or_else(|| "90".into()),
        tokens: tokens
            .iter()
            .map(|t| TokenRow {
                id: t.id,
                name: t.name.clone(),
                prefix: t.prefix.clone(),
                scopes: t.scopes.replace(' ', ", "),
                created: when(t.created_at),
                expires: t.expires_at.map(when).unwrap_or_else(|| "never".into()),
                last_used: t.last_used_at.map(when).unwrap_or_else(|| "never".into()),
                revoked: t.revoked_at.is_some(),
            })
            .collect(),
        next_cursor,
        base_url: st.config.public_url(),
    }
}

async fn tokens_page(State(st): State<AppState>, w: Web, Query(q): Query<TokensQuery>) -> Response {
    let c = chrome("API tokens", "tokens", &w, q.done.as_deref());
    page(&tokens_view(&st, &w, c, q.cursor, None).await)
}

async fn create_token(State(st): State<AppState>, w: Web, f: FormData) -> Response {
    let expires_at = match f.get("expiry") {
        "never" => None,
        d => match d.parse::<i64>() {
            Ok(days @ 1..=365) => Some(st.app.now() + Duration::days(days)),
            _ => {
                let e = pixeld_core::Error::invalid(
                    "expiry",
                    "must be 7, 30, 90 or 365 days, or never",
                );
                let c = chrome("API tokens", "tokens", &w, None).error(message_of(&e));
                return page_with(
                    status_of(&e),
                    &tokens_view(&st, &w, c, None, Some(&f)).await,
                );
            }
        },
    };
    let input = NewToken {
        name: f.get("name").to_string(),
        scopes: f.all("scopes").into_iter().map(str::to_string).collect(),
        expires_at,
    };
    // The form's nonce makes it create once: the page answering it shows the secret and
    // cannot redirect, so a reload (or a double click) sends the same form again.
    let once = f
        .opt("nonce")
        .filter(|n| pixeld_core::idempotency::valid_key(n));
    let caller = pixeld_core::idempotency::caller_digest(&w.auth.secret);
    if let Some(nonce) = once {
        let key = format!("page:token:{nonce}");
        match st
            .app
            .store
            .idempotency_claim(&caller, &key, "token-form", st.app.now())
            .await
        {
            Ok(pixeld_core::store::IdempotencyClaim::Fresh) => {}
            Ok(_) => {
                let c = chrome("API tokens", "tokens", &w, None).notice(
                    "That token was created already; its secret was shown only once. \
                     If you did not copy it, revoke it below and create another.",
                );
                return page(&tokens_view(&st, &w, c, None, None).await);
            }
            Err(e) => {
                let e = pixeld_core::Error::from(e);
                let c = chrome("API tokens", "tokens", &w, None).error(message_of(&e));
                return page_with(
                    status_of(&e),
                    &tokens_view(&st, &w, c, None, Some(&f)).await,
                );
            }
        }
    }
    let key = once.map(|n| format!("page:token:{n}"));
    match st.app.create_token(w.principal(), input).await {
        Ok((token, secret)) => {
            if let Some(key) = &key {
                let done = pixeld_core::store::IdempotentResponse {
                    status: 200,
                    content_type: "text/plain".into(),
                    // Never the secret: only that it was made.
                    body: token.id.to_string().into_bytes(),
                };
                let _ = st.app.store.idempotency_complete(&caller, key, &done).await;
            }
            let c = chrome("API tokens", "tokens", &w, None).notice("Token created.");
            let mut v = tokens_view(&st, &w, c, None, None).await;
            v.created = Some((token.name, secret));
            page(&v)
        }
        Err(e) => {
            // The corrected form may use the same nonce.
            if let Some(key) = &key {
                let _ = st.app.store.idempotency_release(&caller, key).await;
            }
            let c = chrome("API tokens", "tokens", &w, None).error(message_of(&e));
            page_with(
                status_of(&e),
                &tokens_view(&st, &w, c, None, Some(&f)).await,
            )
        }
    }
}

async fn revoke_token(State(st): State<AppState>, w: Web, Path(id): Path<Uuid>) -> Response {
    match st.app.revoke_token(w.principal(), id).await {
        Ok(()) => see_other("/account/tokens?done=revoked"),
        Err(e) => {
            let c = chrome("API tokens", "tokens", &w, None).error(message_of(&e));
            page_with(status_of(&e), &tokens_view(&st, &w, c, None, None).await)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Privacy center

struct ExportRow {
    created: String,
    status: &'static str,
    size: String,
    link: Option<String>,
    deleted_after: String,
}

struct ObjectionChoice {
    name: &'static str,
    label: &'static str,
    checked: bool,
}

#[derive(Template)]
#[template(path = "account_privacy.html")]
struct PrivacyPage {
    c: Chrome,
    exports: Vec<ExportRow>,
    export_pending: bool,
    marketing: bool,
    ai_training: bool,
    restricted: bool,
    objections: Vec<ObjectionChoice>,
    two_factor: bool,
    grace_days: i64,
}

async fn privacy_view(st: &AppState, w: &Web, c: Chrome) -> PrivacyPage {
    let p = w.principal();
    let keep = st
        .app
        .settings
        .retention
        .window(pixeld_core::privacy::DataClass::Exports);
    let mut exports = Vec::new();
    let all = st.app.exports(p).await.unwrap_or_default();
    for e in all.iter().rev() {
        let link = if e.status == ExportStatus::Ready {
            st.app.export_link(e.id).await.ok()
        } else {
            None
        };
        exports.push(ExportRow {
            created: when(e.created_at),
            status: match e.status {
                ExportStatus::Pending => "being built",
                ExportStatus::Ready => "ready",
                ExportStatus::Failed => "failed",
            },
            size: e.bytes.map(super::images::size).unwrap_or_default(),
            link,
            deleted_after: when(e.created_at + keep),
        });
    }
    let consent = |purpose| {
        let st = st.clone();
        let id = p.user.id;
        async move { st.app.has_consent(id, purpose).await.unwrap_or(false) }
    };
    let choices = st.app.processing_choices(p).await.unwrap_or_default();
    PrivacyPage {
        c,
        export_pending: all.iter().any(|e| e.status == ExportStatus::Pending),
        exports,
        marketing: consent(ConsentPurpose::MarketingEmail).await,
        ai_training: consent(ConsentPurpose::AiTraining).await,
        restricted: choices.restricted,
        objections: Objection::ALL
            .iter()
            .map(|o| ObjectionChoice {
                name: o.as_str(),
                label: match o {
                    Objection::Marketing => "Marketing email",
                    Objection::Analytics => "Counting my page views and feature use",
                    Objection::AiProviders => "Sending my data to AI providers",
                },
                checked: choices.objections.contains(o),
            })
            .collect(),
        two_factor: p.user.totp_secret.is_some(),
        grace_days: st
            .app
            .settings
            .retention
            .window(pixeld_core::privacy::DataClass::DeletedAccounts)
            .whole_days(),
    }
}

async fn privacy_page(State(st): State<AppState>, w: Web, Query(q): Query<Done>) -> Response {
    let c = chrome("Privacy", "account", &w, q.done.as_deref());
    page(&privacy_view(&st, &w, c).await)
}

async fn privacy_error(st: &AppState, w: &Web, e: &pixeld_core::Error) -> Response {
    let c = chrome("Privacy", "account", w, None).error(message_of(e));
    page_with(status_of(e), &privacy_view(st, w, c).await)
}

async fn request_export(State(st): State<AppState>, w: Web) -> Response {
    match st.app.request_export(w.principal()).await {
        Ok(_) => see_other("/account/privacy?done=export"),
        Err(e) => privacy_error(&st, &w, &e).await,
    }
}

async fn save_consents(State(st): State<AppState>, w: Web, f: FormData) -> Response {
    let p = w.principal();
    for (purpose, field) in [
        (ConsentPurpose::MarketingEmail, "marketing_email"),
        (ConsentPurpose::AiTraining, "ai_training"),
    ] {
        let wanted = f.checked(field);
        let now = st
            .app
            .has_consent(p.user.id, purpose)
            .await
            .unwrap_or(false);
        // Only a change is recorded, so the consent history says when the user decided.
        if wanted != now
            && let Err(e) = st.app.set_consent(p, purpose, wanted).await
        {
            return privacy_error(&st, &w, &e).await;
        }
    }
    see_other("/account/privacy?done=consents")
}

async fn save_processing(State(st): State<AppState>, w: Web, f: FormData) -> Response {
    let objections = f
        .all("objections")
        .into_iter()
        .filter_map(Objection::parse)
        .collect();
    match st
        .app
        .set_processing_choices(w.principal(), f.checked("restricted"), objections)
        .await
    {
        Ok(_) => see_other("/account/privacy?done=processing"),
        Err(e) => privacy_error(&st, &w, &e).await,
    }
}

#[derive(Template)]
#[template(path = "account_deleted.html")]
struct DeletedPage {
    c: Chrome,
    email: String,
    purge_after: String,
}

async fn delete_account(State(st): State<AppState>, w: Web, f: FormData) -> Response {
    let p = w.principal();
    match st
        .app
        .request_account_deletion(p, f.get("password"), f.opt("code"))
        .await
    {
        Ok(d) => {
            let mut r = page(&DeletedPage {
                c: Chrome::new("Your account is scheduled for deletion", "", None),
                email: p.user.email.clone(),
                purge_after: when(d.purge_after),
            });
            // Every session ended with the request; the browser forgets this one too.
            r.headers_mut()
                .insert(header::SET_COOKIE, session_cookie_header(&st, "", 0));
            r
        }
        Err(e) => privacy_error(&st, &w, &e).await,
    }
}
