//! `/privacy`: the privacy policy, generated from the retention classes in force and the running
//! configuration, so it states exactly what this instance does — the windows the sweeper
//! enforces, the processors that are switched on, the cookies the server sets. `/v1/privacy` is
//! the same as JSON.

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::Response;
use axum::routing::get;
use serde::Serialize;
use utoipa::ToSchema;

use super::pages::escape as esc;
use crate::AppState;
use crate::config::{Config, ObjectsConfig};
use crate::extract::Json;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/privacy", get(page))
        .route("/v1/privacy", get(policy))
}

/// A cookie pixeld can set.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CookieView {
    /// Its name.
    pub name: String,
    /// What it is for.
    pub purpose: String,
    /// When it is set.
    pub set_when: String,
    /// How long it lasts.
    pub lasts: String,
    /// Always `strictly necessary`: pixeld sets no analytics or advertising cookies.
    pub category: String,
}

/// A third party that receives data, when switched on.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProcessorView {
    /// What it does for this instance.
    pub role: String,
    /// Who it is.
    pub name: String,
    /// What it receives.
    pub receives: String,
}

/// One retention class as the policy states it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClassView {
    /// Its id (`uploads`, `request_logs`, …).
    pub id: String,
    /// Its name.
    pub name: String,
    /// What it holds.
    pub what: String,
    /// Why it is kept.
    pub why: String,
    /// How long, as configured (`24h`, `90d`, `7y`); absent: while the account exists.
    pub keep: Option<String>,
    /// The same for people.
    pub keep_text: String,
    /// Request logs: when the IP address is cut to its network.
    pub truncate_ip_after: Option<String>,
    /// What happens then.
    pub then: String,
}

/// The privacy policy of this instance.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PolicyView {
    /// The policy version (a date), also its last-updated date.
    pub version: String,
    /// Who runs the instance.
    pub controller: Option<String>,
    /// Where to ask.
    pub contact: Option<String>,
    /// Minimum age of users.
    pub minimum_age: u8,
    /// What is kept, how long, what then.
    pub classes: Vec<ClassView>,
    /// Every cookie the server can set.
    pub cookies: Vec<CookieView>,
    /// Third parties that are switched on.
    pub processors: Vec<ProcessorView>,
}

fn cookies(config: &Config) -> Vec<CookieView> {
    vec![
        CookieView {
            name: crate::extract::SESSION_COOKIE.into(),
            purpose: "Keeps you signed in (a random id; the server stores only its hash).".into(),
            set_when: "When you sign in; removed when you sign out or delete your account.".into(),
            lasts: format!(
                "Until you sign out, {} minutes without use, or {} hours after sign-in.",
                config.session.idle_minutes, config.session.absolute_hours
            ),
            category: "strictly necessary".into(),
        },
        CookieView {
            name: super::billing::CURRENCY_COOKIE.into(),
            purpose: "Remembers the currency you chose for prices.".into(),
            set_when: "Only when you choose a currency on the pricing page.".into(),
            lasts: "1 year.".into(),
            category: "strictly necessary".into(),
        },
        CookieView {
            name: crate::web::ORG_COOKIE.into(),
            purpose: "Remembers which of your organisations the dashboard acts in.".into(),
            set_when: "Only when you switch organisation in the dashboard.".into(),
            lasts: "1 year, or until you switch back to your personal organisation.".into(),
            category: "strictly necessary".into(),
        },
    ]
}

fn processors(config: &Config) -> Vec<ProcessorView> {
    let mut out = Vec::new();
    if config.payments.stripe.is_some() {
        out.push(ProcessorView {
            role: "Payments".into(),
            name: "Stripe".into(),
            receives: "Your card details (entered on Stripe's page, never on pixeld), the amount, \
                       and the order id."
                .into(),
        });
    }
    if config.payments.razorpay.is_some() {
        out.push(ProcessorView {
            role: "Payments".into(),
            name: "Razorpay".into(),
            receives: "Your payment details (entered with Razorpay, never on pixeld), the amount, \
                       and the order id."
                .into(),
        });
    }
    if let Some(url) = &config.mail.smtp_url {
        let host = url::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| "the configured SMTP server".into());
        out.push(ProcessorView {
            role: "Email delivery".into(),
            name: host,
            receives: "Your email address and the messages sent to you.".into(),
        });
    }
    if let Some(v) = &config.ai.vision {
        let host = url::Url::parse(&v.api_base)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| v.api_base.clone());
        out.push(ProcessorView {
            role: "AI image descriptions".into(),
            name: format!("{host} (model {})", v.model),
            receives: "Only when you ask for an image's description: a copy of that image at most \
                       1024 pixels wide or tall, without its metadata (no EXIF, no GPS position, no \
                       file name), and no name, email or account id. The request asks the provider \
                       not to store it. Never sent if you restricted processing or objected to AI \
                       providers."
                .into(),
        });
    }
    if let ObjectsConfig::S3 {
        bucket, endpoint, ..
    } = &config.objects
    {
        let at = endpoint
            .as_deref()
            .and_then(|e| url::Url::parse(e).ok())
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| "Amazon S3".into());
        out.push(ProcessorView {
            role: "Object storage".into(),
            name: format!("{at} (bucket {bucket})"),
            receives: "Uploaded images, their outputs, rendered images and fonts.".into(),
        });
    }
    out
}

/// The policy in force.
pub fn policy_of(st: &AppState) -> PolicyView {
    let r = &st.app.settings.retention;
    let config = &st.config;
    let idle = st.app.settings.session_idle;
    let classes = r
        .classes()
        .map(|c| ClassView {
            id: c.id.as_str().into(),
            name: c.name.clone(),
            what: c.what.clone(),
            why: c.why.clone(),
            keep: c.keep.map(|w| w.to_string()),
            keep_text: match (c.id, c.keep) {
                (_, Some(w)) => w.human(),
                (pixeld_core::privacy::DataClass::Sessions, None) => format!(
                    "until the session ends (at most {} days without use, {} hours after sign-in)",
                    idle.whole_days().max(1),
                    config.session.absolute_hours
                ),
                (_, None) => "while your account exists".into(),
            },
            truncate_ip_after: c.truncate_ip_after.map(|w| w.to_string()),
            then: c.then.clone(),
        })
        .collect();
    PolicyView {
        version: r.policy_version.clone(),
        controller: config.privacy.controller.clone(),
        contact: config.privacy.contact.clone(),
        minimum_age: config.privacy.minimum_age,
        classes,
        cookies: cookies(config),
        processors: processors(config),
    }
}

/// This instance's privacy policy as data: retention classes, cookies, processors, contact.
#[utoipa::path(get, path = "/v1/privacy", tag = "privacy",
    responses((status = 200, description = "The policy in force", body = PolicyView)))]
pub async fn policy(State(st): State<AppState>) -> Json<PolicyView> {
    Json(policy_of(&st))
}

async fn page(
    State(st): State<AppState>,
    parts: axum::http::request::Parts,
    session: Option<crate::extract::SessionAuth>,
) -> Response {
    // Counted like any page of the website: cookieless, and not at all with DNT or GPC.
    let src = super::analytics::source(&st, &parts, session.as_ref().map(|s| s.principal.user.id));
    let hit = pixeld_core::analytics::Hit {
        site: "website".into(),
        kind: "pageview".into(),
        name: "/privacy".into(),
        referrer: parts
            .headers
            .get(header::REFERER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    };
    if let Err(e) = st.app.record_hit(hit, src).await {
        tracing::warn!(error = %e, "analytics: could not count a page view");
    }
    let p = policy_of(&st);
    let mut h = String::new();
    let who = p
        .controller
        .as_deref()
        .map(esc)
        .unwrap_or_else(|| "The operator of this pixeld instance".into());
    h.push_str(&format!(
        "<p>Last updated <time data-policy-version=\"{v}\">{v}</time>. {who} runs this service. This page is \
         generated from the settings the server is running with: every window below is the one its \
         retention sweeper enforces.</p>",
        v = esc(&p.version)
    ));
    h.push_str(
        "<h2>What is kept, for how long</h2><div class=\"table-wrap\" tabindex=\"0\" role=\"region\" aria-label=\"Retention by kind of data\"><table><thead><tr><th scope=\"col\">Data</th>\
                <th scope=\"col\">What</th><th scope=\"col\">Why</th><th scope=\"col\">Kept</th>\
                <th scope=\"col\">Then</th></tr></thead><tbody>",
    );
    for c in &p.classes {
        let mut attrs = format!("data-class=\"{}\"", esc(&c.id));
        if let Some(k) = &c.keep {
            attrs.push_str(&format!(" data-keep=\"{}\"", esc(k)));
        }
        if let Some(t) = &c.truncate_ip_after {
            attrs.push_str(&format!(" data-truncate-ip-after=\"{}\"", esc(t)));
        }
        h.push_str(&format!(
            "<tr {attrs}><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&c.name),
            esc(&c.what),
            esc(&c.why),
            esc(&c.keep_text),
            esc(&c.then)
        ));
    }
    h.push_str("</tbody></table></div>");
    h.push_str(
        "<h2>Cookies</h2><p>Only strictly necessary cookies: none for analytics or advertising, \
         and none at all for a visitor who does not sign in or choose a currency.</p><ul>",
    );
    for c in &p.cookies {
        h.push_str(&format!(
            "<li data-cookie=\"{n}\"><code>{n}</code>: {} {} {}</li>",
            esc(&c.purpose),
            esc(&c.set_when),
            esc(&c.lasts),
            n = esc(&c.name)
        ));
    }
    h.push_str("</ul><h2>Who else receives data</h2>");
    if p.processors.is_empty() {
        h.push_str("<p>Nobody: this instance sends your data to no third party.</p>");
    } else {
        h.push_str("<ul>");
        for x in &p.processors {
            h.push_str(&format!(
                "<li data-processor=\"{}\"><strong>{}</strong> ({}): {}</li>",
                esc(&x.name),
                esc(&x.name),
                esc(&x.role),
                esc(&x.receives)
            ));
        }
        h.push_str("</ul>");
    }
    h.push_str(
        "<p>Your approximate country is looked up in a database on this server; your address is \
         not sent anywhere for it. Your data is never sold, and never used to train AI models.</p>",
    );
    h.push_str(&format!(
        "<h2>Your rights</h2><p>Everything below is in your <a href=\"/account/privacy\">privacy \
         center</a> once you sign in, and in the API.</p><ul>\
         <li>Get a copy of everything: <code>POST /v1/account/export</code> builds a ZIP (one JSON \
         file per kind of data, plus your templates, uploads, rendered images, fonts and invoices) \
         and emails a link that works for 24 hours; the file is deleted after 7 days.</li>\
         <li>See your API requests, credit entries and invoices: <code>GET /v1/usage</code>, \
         <code>/v1/credits/entries</code>, <code>/v1/billing/invoices</code> (also as CSV).</li>\
         <li>Correct your name, phone, company, address and tax id (<code>PATCH /v1/account/profile</code>; \
         every change is recorded), your email address and your billing details.</li>\
         <li>Restrict processing (keep your data, stop marketing, analytics and AI providers) or \
         object to one purpose: <code>PUT /v1/account/processing</code>.</li>\
         <li>Give or withdraw consent to marketing email and to AI training (off unless you turn \
         it on): <code>PUT /v1/account/consents/&lt;purpose&gt;</code>; every marketing email has a \
         one-click unsubscribe link.</li>\
         <li>Delete your account: <code>DELETE /v1/account</code>. It is disabled at once and purged \
         after the grace period; invoices stay, anonymised.</li>\
         <li>See where your requests stand: <code>GET /v1/account/data-requests</code>. Every \
         request is answered within 30 days.</li></ul>\
         <h2>Children</h2><p>pixeld is not for anyone under {age}. If you believe a child has an \
         account, tell us: we delete it at once.</p>",
        age = p.minimum_age
    ));
    h.push_str(&format!(
        "<h2>Contact</h2><p>{}</p>",
        p.contact
            .as_deref()
            .map(|c| format!("Questions and requests: {}.", esc(c)))
            .unwrap_or_else(|| "Contact the operator of this instance.".into())
    ));
    crate::web::framed(
        crate::web::Chrome::new("Privacy", "privacy", session.as_ref()),
        &h,
    )
}
