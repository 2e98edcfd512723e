//! The pages behind emailed links. Opening a link shows a button; only submitting it spends the
//! token, so mail scanners that prefetch links cannot use them up.

use axum::Form;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use crate::AppState;
use crate::extract::Query;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/verify-email", get(verify_form).post(verify_submit))
        .route("/reset-password", get(reset_form).post(reset_submit))
        .route(
            "/confirm-email",
            get(confirm_email_form).post(confirm_email_submit),
        )
        .route(
            "/cancel-deletion",
            get(cancel_deletion_form).post(cancel_deletion_submit),
        )
        .route(
            "/unsubscribe",
            get(unsubscribe_form).post(unsubscribe_submit),
        )
}

#[derive(Debug, Deserialize)]
struct TokenParam {
    token: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ResetForm {
    token: String,
    password: String,
}

/// Escapes text for HTML content and attribute values.
pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(title: &str, body: &str) -> Response {
    crate::web::framed(crate::web::Chrome::new(title, "", None), body)
}

fn token_form(action: &str, token: &str, button: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{action}\"><input type=\"hidden\" name=\"token\" value=\"{}\">\
         <button type=\"submit\">{button}</button></form>",
        escape(token)
    )
}

async fn verify_form(Query(q): Query<TokenParam>) -> Response {
    page(
        "Confirm your email address",
        &token_form(
            "/verify-email",
            q.token.as_deref().unwrap_or(""),
            "Confirm my address",
        ),
    )
}

async fn verify_submit(State(st): State<AppState>, Form(f): Form<TokenParam>) -> Response {
    match st.app.verify_email(f.token.as_deref().unwrap_or("")).await {
        Ok(u) => page(
            "Address confirmed",
            &format!(
                "<p>{} is confirmed. You can sign in now.</p>",
                escape(&u.email)
            ),
        ),
        Err(e) => page(
            "This link does not work",
            &format!("<p>{}</p>", escape(&e.to_string())),
        ),
    }
}

async fn reset_form(Query(q): Query<TokenParam>) -> Response {
    page(
        "Choose a new password",
        &format!(
            "<form method=\"post\" action=\"/reset-password\"><input type=\"hidden\" name=\"token\" value=\"{}\">\
             <label>New password <input type=\"password\" name=\"password\" minlength=\"8\" maxlength=\"128\" \
             autocomplete=\"new-password\" required></label> <button type=\"submit\">Set password</button></form>",
            escape(q.token.as_deref().unwrap_or(""))
        ),
    )
}

async fn reset_submit(State(st): State<AppState>, Form(f): Form<ResetForm>) -> Response {
    match st.app.reset_password(&f.token, &f.password).await {
        Ok(()) => page(
            "Password changed",
            "<p>Sign in with your new password. Every other session was signed out.</p>",
        ),
        Err(e) => page(
            "The password was not changed",
            &format!("<p>{}</p>", escape(&e.to_string())),
        ),
    }
}

async fn confirm_email_form(Query(q): Query<TokenParam>) -> Response {
    page(
        "Confirm your new address",
        &token_form(
            "/confirm-email",
            q.token.as_deref().unwrap_or(""),
            "Use this address",
        ),
    )
}

async fn confirm_email_submit(State(st): State<AppState>, Form(f): Form<TokenParam>) -> Response {
    match st
        .app
        .confirm_email_change(f.token.as_deref().unwrap_or(""))
        .await
    {
        Ok(u) => page(
            "Address changed",
            &format!("<p>Your account now uses {}.</p>", escape(&u.email)),
        ),
        Err(e) => page(
            "This link does not work",
            &format!("<p>{}</p>", escape(&e.to_string())),
        ),
    }
}

async fn cancel_deletion_form(Query(q): Query<TokenParam>) -> Response {
    page(
        "Keep your account",
        &format!(
            "<p>Your account is scheduled for deletion. Keep it, and everything in it?</p>{}",
            token_form(
                "/cancel-deletion",
                q.token.as_deref().unwrap_or(""),
                "Keep my account",
            )
        ),
    )
}

async fn cancel_deletion_submit(State(st): State<AppState>, Form(f): Form<TokenParam>) -> Response {
    match st
        .app
        .cancel_account_deletion(f.token.as_deref().unwrap_or(""))
        .await
    {
        Ok(u) => page(
            "Your account stays",
            &format!(
                "<p>{} will not be deleted. Sign in again; API tokens were revoked, so create new ones.</p>",
                escape(&u.email)
            ),
        ),
        Err(e) => page(
            "This link does not work",
            &format!("<p>{}</p>", escape(&e.to_string())),
        ),
    }
}

#[derive(Debug, Deserialize)]
struct UnsubscribeParams {
    u: Option<String>,
    sig: Option<String>,
}

async fn unsubscribe_form(Query(q): Query<UnsubscribeParams>) -> Response {
    page(
        "Unsubscribe",
        &format!(
            "<p>Stop news and offers by email? Service emails (sign-in links, receipts) still come.</p>\
             <form method=\"post\" action=\"/unsubscribe?u={}&amp;sig={}\">\
             <button type=\"submit\">Unsubscribe</button></form>",
            escape(q.u.as_deref().unwrap_or("")),
            escape(q.sig.as_deref().unwrap_or(""))
        ),
    )
}

/// One click (RFC 8058 `List-Unsubscribe-Post` sends the same POST): no sign-in needed.
async fn unsubscribe_submit(
    State(st): State<AppState>,
    Query(q): Query<UnsubscribeParams>,
) -> Response {
    let user = q.u.as_deref().and_then(|u| uuid::Uuid::parse_str(u).ok());
    let result = match (user, q.sig.as_deref()) {
        (Some(u), Some(sig)) => st.app.unsubscribe(u, sig).await,
        _ => Err(pixeld_core::Error::InvalidToken),
    };
    match result {
        Ok(()) => page(
            "You are unsubscribed",
            "<p>You will get no more news or offers by email. You can opt in again in your account settings.</p>",
        ),
        Err(e) => page(
            "This link does not work",
            &format!("<p>{}</p>", escape(&e.to_string())),
        ),
    }
}
