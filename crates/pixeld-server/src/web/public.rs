//! Pages for visitors: the landing page, pricing, sign-up, sign-in (with the 2FA step), password
//! reset and sign-out.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use pixeld_core::accounts::{SignIn, SignUp};
use pixeld_core::sessions::{ClientInfo, NewSession};

use super::{Chrome, FormData, Web, message_of, page, page_with, safe_next, see_other, status_of};
use crate::AppState;
use crate::extract::{ClientIp, Query, SessionAuth, user_agent};
use crate::routes::auth::session_cookie_header;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(landing))
        .route("/pricing", get(pricing))
        .route("/sign-up", get(sign_up_form).post(sign_up))
        .route("/sign-in", get(sign_in_form).post(sign_in))
        .route("/sign-in/code", post(sign_in_code))
        .route("/sign-out", post(sign_out))
        .route("/forgot-password", get(forgot_form).post(forgot))
}

#[derive(Template)]
#[template(path = "landing.html")]
struct Landing {
    c: Chrome,
    free_monthly: i64,
    title: String,
    subtitle: String,
    demo_src: String,
}

async fn landing(
    State(st): State<AppState>,
    session: Option<SessionAuth>,
    Query(q): Query<super::demo::DemoQuery>,
) -> Response {
    let mut c = Chrome::new(
        "Images from templates, optimized and private",
        "home",
        session.as_ref(),
    );
    // Without JavaScript the demo form submits here; typed words come back rendered.
    let (title, subtitle) = match super::demo::words(&q) {
        Ok(w) => w,
        Err(e) => {
            c = c.error(e);
            (
                super::demo::DEFAULT_TITLE.to_string(),
                super::demo::DEFAULT_SUBTITLE.to_string(),
            )
        }
    };
    let status = if c.error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    page_with(
        status,
        &Landing {
            c,
            free_monthly: st.app.settings.credits.free_monthly,
            demo_src: super::demo::src(&title, &subtitle),
            title,
            subtitle,
        },
    )
}

/// A plan or pack with its price in the visitor's currency.
struct Offer {
    name: String,
    credits: i64,
    price: Option<String>,
    features: Vec<String>,
}

#[derive(Template)]
#[template(path = "pricing.html")]
struct Pricing {
    c: Chrome,
    currency: String,
    free_monthly: i64,
    plans: Vec<Offer>,
    packs: Vec<Offer>,
    prices: Vec<(String, i64)>,
}

async fn pricing(
    State(st): State<AppState>,
    session: Option<SessionAuth>,
    ip: ClientIp,
    headers: HeaderMap,
) -> Response {
    let (chosen, country) = crate::routes::billing::buyer_currency(&st, ip, &headers);
    let currency = chosen.unwrap_or_else(|| st.app.suggest_currency(country.as_deref()));
    let price = |prices: &std::collections::BTreeMap<String, i64>| {
        prices
            .get(&currency)
            .map(|m| pixeld_core::invoices::money(*m, &currency))
    };
    let s = &st.app.settings;
    let p = &s.credits.prices;
    page(&Pricing {
        c: Chrome::new("Pricing", "pricing", session.as_ref()),
        currency: currency.to_uppercase(),
        free_monthly: s.credits.free_monthly,
        plans: st
            .app
            .plans()
            .iter()
            .map(|k| Offer {
                name: k.name.clone(),
                credits: k.monthly_credits,
                price: price(&k.prices),
                features: k.features.clone(),
            })
            .collect(),
        packs: st
            .app
            .packs()
            .iter()
            .map(|k| Offer {
                name: k.name.clone(),
                credits: k.credits,
                price: price(&k.prices),
                features: Vec::new(),
            })
            .collect(),
        prices: vec![
            ("Render an image from a template".into(), p.render),
            ("Preview in the template editor".into(), p.preview),
            ("Optimize an image".into(), p.optimize),
            ("Analyze an image".into(), p.analyze),
            ("Generate an asset from a prompt".into(), p.generate),
            ("Product studio shot".into(), p.studio),
        ],
    })
}

#[derive(Template)]
#[template(path = "sign_up.html")]
struct SignUpPage {
    c: Chrome,
    email: String,
    name: String,
    minimum_age: u8,
    done: bool,
}

async fn sign_up_form(State(st): State<AppState>, session: Option<SessionAuth>) -> Response {
    if session.is_some() {
        return see_other("/dashboard");
    }
    page(&SignUpPage {
        c: Chrome::new("Create your account", "sign-up", None),
        email: String::new(),
        name: String::new(),
        minimum_age: st.app.settings.minimum_age,
        done: false,
    })
}

async fn sign_up(State(st): State<AppState>, f: FormData) -> Response {
    let result = st
        .app
        .sign_up(SignUp {
            email: f.get("email").to_string(),
            password: f.get("password").to_string(),
            name: f.opt("name").map(str::to_string),
            age_confirmed: f.checked("age_confirmed"),
            marketing_emails: f.checked("marketing_emails"),
        })
        .await;
    let mut p = SignUpPage {
        c: Chrome::new("Create your account", "sign-up", None),
        email: f.get("email").to_string(),
        name: f.get("name").to_string(),
        minimum_age: st.app.settings.minimum_age,
        done: false,
    };
    match result {
        Ok(_) => {
            p.done = true;
            p.c.title = "Check your inbox".into();
            page(&p)
        }
        Err(e) => {
            p.c = p.c.error(message_of(&e));
            page_with(status_of(&e), &p)
        }
    }
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    c: Chrome,
    email: String,
    next: String,
}

#[derive(Template)]
#[template(path = "sign_in_code.html")]
struct CodePage {
    c: Chrome,
    challenge: String,
    next: String,
}

#[derive(serde::Deserialize)]
struct NextParam {
    next: Option<String>,
    done: Option<String>,
}

async fn sign_in_form(session: Option<SessionAuth>, Query(q): Query<NextParam>) -> Response {
    let next = safe_next(q.next.as_deref().unwrap_or("/dashboard")).to_string();
    if session.is_some() {
        return see_other(&next);
    }
    let mut c = Chrome::new("Sign in", "sign-in", None);
    match q.done.as_deref() {
        Some("signed-out") => c = c.notice("You are signed out."),
        Some("password-changed") => c = c.notice("Password changed. Sign in with the new one."),
        _ => {}
    }
    page(&SignInPage {
        c,
        email: String::new(),
        next,
    })
}

fn client(ip: ClientIp, headers: &HeaderMap) -> ClientInfo {
    ClientInfo {
        ip: ip.text(),
        user_agent: user_agent(headers),
    }
}

/// Sets the session cookie (ending whatever session the browser had) and goes on to `next`.
async fn signed_in(st: &AppState, headers: &HeaderMap, new: NewSession, next: &str) -> Response {
    crate::routes::auth::end_previous_session(st, headers).await;
    let max_age = (new.session.expires_at - st.app.now()).whole_seconds();
    let mut r = see_other(safe_next(next));
    r.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie_header(st, &new.secret, max_age),
    );
    r
}

async fn sign_in(
    State(st): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    f: FormData,
) -> Response {
    let next = f.opt("next").unwrap_or("/dashboard").to_string();
    match st
        .app
        .sign_in(f.get("email"), f.get("password"), client(ip, &headers))
        .await
    {
        Ok(SignIn::Done(new)) => signed_in(&st, &headers, new, &next).await,
        Ok(SignIn::NeedsSecondFactor { challenge }) => page(&CodePage {
            c: Chrome::new("Two-factor sign-in", "sign-in", None),
            challenge,
            next,
        }),
        Err(e) => page_with(
            status_of(&e),
            &SignInPage {
                c: Chrome::new("Sign in", "sign-in", None).error(message_of(&e)),
                email: f.get("email").to_string(),
                next,
            },
        ),
    }
}

async fn sign_in_code(
    State(st): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    f: FormData,
) -> Response {
    let next = f.opt("next").unwrap_or("/dashboard").to_string();
    match st
        .app
        .sign_in_second_factor(f.get("challenge"), f.get("code"), client(ip, &headers))
        .await
    {
        Ok(new) => signed_in(&st, &headers, new, &next).await,
        // An expired challenge cannot be retried: start again from the password.
        Err(pixeld_core::Error::InvalidToken) => page_with(
            StatusCode::UNAUTHORIZED,
            &SignInPage {
                c: Chrome::new("Sign in", "sign-in", None)
                    .error("That sign-in took too long. Enter your password again."),
                email: String::new(),
                next,
            },
        ),
        Err(e) => page_with(
            status_of(&e),
            &CodePage {
                c: Chrome::new("Two-factor sign-in", "sign-in", None).error(message_of(&e)),
                challenge: f.get("challenge").to_string(),
                next,
            },
        ),
    }
}

async fn sign_out(State(st): State<AppState>, w: Web) -> Response {
    let s = &w.auth.session;
    if let Err(e) = st.app.end_session(s.user_id, s.id).await {
        tracing::warn!(error = %e, "sign-out could not end the session");
    }
    let mut r = see_other("/sign-in?done=signed-out");
    r.headers_mut()
        .insert(header::SET_COOKIE, session_cookie_header(&st, "", 0));
    r
}

#[derive(Template)]
#[template(path = "forgot_password.html")]
struct ForgotPage {
    c: Chrome,
    sent: bool,
}

async fn forgot_form() -> Response {
    page(&ForgotPage {
        c: Chrome::new("Reset your password", "sign-in", None),
        sent: false,
    })
}

async fn forgot(State(st): State<AppState>, f: FormData) -> Response {
    match st.app.request_password_reset(f.get("email")).await {
        Ok(()) => page(&ForgotPage {
            c: Chrome::new("Reset your password", "sign-in", None),
            sent: true,
        }),
        Err(e) => page_with(
            status_of(&e),
            &ForgotPage {
                c: Chrome::new("Reset your password", "sign-in", None).error(message_of(&e)),
                sent: false,
            },
        ),
    }
    .into_response()
}
