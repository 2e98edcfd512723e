//! The OpenAPI 3.1 document, generated from the handlers' annotations, with the error responses
//! every operation shares added in one place.

use std::sync::LazyLock;

use utoipa::OpenApi;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};

use crate::routes::{
    account, analytics, auth, billing, fonts, images, orgs, privacy, rights, support, system,
    templates, tokens, usage, webhooks,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "pixeld API",
        description = "Render, optimize, generate and compose images; run an agency workspace. \
            Authenticate with `Authorization: Bearer pxd_…` (API token) or the `pixeld_session` cookie. \
            Errors are `application/problem+json` (RFC 9457). Every POST accepts an `Idempotency-Key`.",
        license(name = "Apache-2.0")
    ),
    paths(
        system::healthz, system::readyz, system::metrics, system::openapi,
        auth::sign_up, auth::verify_email, auth::resend_verification, auth::sign_in, auth::sign_in_2fa,
        auth::sign_out, auth::request_reset, auth::confirm_reset, auth::current_session,
        account::me, account::change_password, account::change_email, account::confirm_email,
        account::list_sessions, account::revoke_session, account::revoke_other_sessions,
        account::two_factor_status, account::begin_totp, account::confirm_totp, account::disable_totp,
        account::new_recovery_codes,
        tokens::create_token, tokens::list_tokens, tokens::get_token, tokens::revoke_token,
        orgs::create_org, orgs::list_orgs, orgs::get_org, orgs::rename_org, orgs::list_members,
        orgs::set_role, orgs::remove_member, orgs::invite, orgs::list_invites, orgs::revoke_invite,
        orgs::accept_invite,
        images::upload, images::list_images, images::get_image, images::delete_image, images::content,
        images::optimize, images::describe, images::list_logs,
        templates::create_template, templates::list_templates, templates::get_template,
        templates::save_template, templates::delete_template, templates::list_versions,
        templates::get_version, templates::preview, templates::thumbnail, templates::create_render, templates::get_render,
        templates::signed_render, templates::template_schema, templates::create_key,
        templates::list_keys, templates::revoke_key,
        webhooks::list_render_jobs, webhooks::get_render_job, webhooks::create_secret,
        webhooks::list_secrets, webhooks::revoke_secret, webhooks::list_deliveries,
        webhooks::get_delivery, webhooks::redeliver,
        fonts::upload_font, fonts::list_fonts, fonts::delete_font,
        billing::balance, billing::list_entries, billing::export_entries,
        billing::list_packs, billing::list_plans, billing::subscription, billing::choose_currency, billing::checkout, billing::list_orders, billing::get_order,
        billing::confirm_razorpay, billing::portal, billing::webhook,
        billing::get_profile, billing::put_profile, billing::list_invoices, billing::get_invoice,
        billing::invoice_pdf,
        usage::list_usage, usage::export_usage, usage::daily_usage, usage::route_metrics,
        rights::delete_account, rights::cancel_deletion, rights::my_requests, rights::open_requests, rights::operator_delete, privacy::policy,
        rights::get_profile, rights::patch_profile, rights::profile_changes, rights::get_consents, rights::put_consent,
        rights::get_processing, rights::put_processing, rights::request_export, rights::list_exports,
        rights::download_export, analytics::collect, analytics::report,
        support::open_request, support::list_requests, support::get_request, support::reply,
        support::close, support::queue, support::operator_get, support::operator_reply,
        support::operator_close,
    ),
    components(schemas(crate::problem::Problem, crate::problem::ProblemField)),
    tags(
        (name = "auth", description = "Sign-up, sign-in, verification, password reset"),
        (name = "account", description = "The caller's account, sessions and two-factor sign-in"),
        (name = "tokens", description = "Scoped, expiring API tokens"),
        (name = "orgs", description = "Organisations, members, roles, invitations"),
        (name = "images", description = "Upload, analyse, transform and optimize images (deleted within 24 hours)"),
        (name = "templates", description = "Templates with versions, renders, signed render URLs"),
        (name = "webhooks", description = "Webhook secrets and the delivery log"),
        (name = "credits", description = "The credit balance, prices and the ledger"),
        (name = "privacy", description = "Your data rights: deleting your account, your requests; open requests for operators"),
        (name = "support", description = "Writing to the operators of this instance, and their answers; the queue for operators"),
        (name = "usage", description = "Your API request log and daily totals; route latency for operators"),
        (name = "system", description = "Health, readiness, metrics, this document"),
    )
)]
struct ApiDoc;

/// Operations anyone may call.
const PUBLIC: &[&str] = &[
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/v1/auth/signup",
    "/v1/auth/verify-email",
    "/v1/auth/verify-email/resend",
    "/v1/auth/signin",
    "/v1/auth/signin/2fa",
    "/v1/auth/password-reset",
    "/v1/auth/password-reset/confirm",
    "/v1/account/email/confirm",
    "/v1/account/deletion/cancel",
    "/v1/privacy",
    "/v1/account/exports/{id}/download",
    "/v1/analytics/events",
    "/r/{file}",
    "/schemas/template-v1.json",
    "/v1/billing/packs",
    "/v1/billing/plans",
    "/v1/billing/currency",
    "/v1/payments/{provider}/webhook",
];

/// Operations that cost credits (when not served from a cache): they answer 402 when the
/// balance does not cover them.
const METERED: &[(&str, &str)] = &[
    ("post", "/v1/images"),
    ("get", "/v1/images/{id}/content"),
    ("post", "/v1/images/{id}/optimize"),
    ("post", "/v1/renders"),
    ("post", "/v1/templates/{id}/preview"),
    ("get", "/r/{file}"),
];

/// Problem statuses any operation can answer.
const COMMON_ERRORS: &[(&str, &str)] = &[
    ("400", "Malformed request, or an invalid/expired link token"),
    (
        "401",
        "Not authenticated (missing, malformed, unknown, expired or revoked credential)",
    ),
    (
        "403",
        "Missing scope, role not allowed, or cross-site request",
    ),
    (
        "404",
        "Not found (including anything belonging to another organisation)",
    ),
    ("405", "Method not allowed"),
    ("409", "Conflict with existing data or state"),
    ("413", "Request body too large"),
    ("415", "Unsupported content type"),
    (
        "422",
        "Invalid input, or an Idempotency-Key reused with a different request",
    ),
    ("429", "Rate limited; see Retry-After"),
    ("500", "Internal error"),
    ("503", "Timed out or not ready"),
];

fn build() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            Http::builder()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("An API token, `pxd_…`"))
                .build(),
        ),
    );
    components.add_security_scheme(
        "session",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            "pixeld_session",
            "Browser session cookie",
        ))),
    );
    let problem = || {
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build()
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        let public = PUBLIC.contains(&path.as_str());
        let ops: [(&str, &mut Option<Operation>); 5] = [
            ("get", &mut item.get),
            ("post", &mut item.post),
            ("put", &mut item.put),
            ("patch", &mut item.patch),
            ("delete", &mut item.delete),
        ];
        for (method, op) in ops {
            let Some(op) = op else { continue };
            if METERED.contains(&(method, path.as_str())) {
                op.responses.responses.insert(
                    "402".into(),
                    ResponseBuilder::new()
                        .description(
                            "The credit balance does not cover this (nothing was done or charged)",
                        )
                        .content("application/problem+json", problem())
                        .build()
                        .into(),
                );
            }
            for (status, description) in COMMON_ERRORS {
                op.responses
                    .responses
                    .entry((*status).to_string())
                    .or_insert_with(|| {
                        ResponseBuilder::new()
                            .description(*description)
                            .content("application/problem+json", problem())
                            .build()
                            .into()
                    });
            }
            op.security = Some(if public {
                vec![SecurityRequirement::default()]
            } else {
                vec![
                    SecurityRequirement::new("bearer", Vec::<String>::new()),
                    SecurityRequirement::new("session", Vec::<String>::new()),
                ]
            });
        }
    }
    doc
}

static DOC: LazyLock<String> = LazyLock::new(|| {
    build()
        .to_pretty_json()
        .expect("the OpenAPI document serialises")
});

/// The document as JSON (built once).
pub fn json() -> String {
    DOC.clone()
}

#[cfg(test)]
mod tests {
    /// utoipa names a component schema after its Rust type and keeps the last one registered,
    /// so two `ToSchema` types of one name in different modules silently make one operation
    /// document the other's body (a support message's schema once stood in for the password
    /// reset's answer). Every schema type's name must be unique in the crate.
    #[test]
    fn every_schema_type_has_its_own_name() {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    out.push(p);
                }
            }
        }
        let mut files = Vec::new();
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut files,
        );
        let mut seen: std::collections::BTreeMap<String, String> = Default::default();
        let mut clashes = Vec::new();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            let mut derives_schema = false;
            for line in text.lines().map(str::trim) {
                if line.starts_with("#[derive(") && line.contains("ToSchema") {
                    derives_schema = true;
                } else if derives_schema
                    && let Some(rest) = line
                        .strip_prefix("pub struct ")
                        .or_else(|| line.strip_prefix("pub enum "))
                {
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    let here = f.display().to_string();
                    if let Some(other) = seen.insert(name.clone(), here.clone()) {
                        clashes.push(format!("{name}: {other} and {here}"));
                    }
                    derives_schema = false;
                } else if !line.starts_with("#[") && !line.starts_with("///") {
                    derives_schema = false;
                }
            }
        }
        assert!(seen.len() > 50, "the scan found the schema types");
        assert!(clashes.is_empty(), "schema names used twice: {clashes:#?}");
    }
}
