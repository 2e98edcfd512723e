//! One router module per feature.

pub mod account;
pub mod analytics;
pub mod auth;
pub mod billing;
pub mod fonts;
pub mod image_options;
pub mod images;
pub mod orgs;
pub mod pages;
pub mod privacy;
pub mod rights;
pub mod support;
pub mod system;
pub mod templates;
pub mod tokens;
pub mod usage;
pub mod webhooks;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// `?cursor=…&limit=…` on every list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

impl PageParams {
    /// Validates into a page request.
    pub fn page(&self) -> pixeld_core::Result<pixeld_core::page::PageRequest> {
        pixeld_core::page::PageRequest::parse(self.cursor.as_deref(), self.limit)
    }
}

/// A UTC day given as `YYYY-MM-DD`, or a 422 naming `field`.
pub fn parse_day(field: &str, s: &str) -> pixeld_core::Result<time::Date> {
    let f = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, f)
        .map_err(|_| pixeld_core::Error::invalid(field, "must be a date like 2026-12-01"))
}

/// A CSV download: `text/csv`, saved as `filename`, never cached.
pub fn csv_download(csv: String, filename: &'static str) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    use axum::response::IntoResponse;
    let mut resp = csv.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    resp
}

/// A user as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    /// Id.
    pub id: Uuid,
    /// Email address.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Whether the address is confirmed.
    pub email_verified: bool,
    /// Whether two-factor sign-in is on.
    pub two_factor_enabled: bool,
    /// Instance administrator.
    pub is_admin: bool,
    /// The user's personal organisation.
    pub personal_org_id: Uuid,
    /// Sign-up time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<&pixeld_core::store::User> for UserView {
    fn from(u: &pixeld_core::store::User) -> Self {
        Self {
            id: u.id,
            email: u.email.clone(),
            name: u.name.clone(),
            email_verified: u.email_verified_at.is_some(),
            two_factor_enabled: u.totp_secret.is_some(),
            is_admin: u.is_admin,
            personal_org_id: u.personal_org_id,
            created_at: u.created_at,
        }
    }
}

/// A short confirmation.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageView {
    /// What happened, for people.
    pub message: String,
}

impl MessageView {
    /// A message.
    pub fn new(m: impl Into<String>) -> Self {
        Self { message: m.into() }
    }
}

/// Timestamps in RFC 3339 for optional fields.
pub mod opt_rfc3339 {
    pub use time::serde::rfc3339::option::*;
}

/// OpenAPI schemas for string fields whose allowed values come from the core, so the document
/// states the same rules the server enforces (one source: the core's own lists).
pub mod schema {
    use pixeld_core::roles::Role;
    use pixeld_core::tokens::Scope;
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};

    /// A role that can be granted through the API (`client` is granted by the client portal).
    pub fn assignable_role() -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("`owner`, `admin`, `member` or `viewer`."))
            .enum_values(Some(
                Role::ALL
                    .into_iter()
                    .filter(|r| *r != Role::Client)
                    .map(|r| r.as_str()),
            ))
            .examples(["member"])
    }

    /// A set of token scopes.
    pub fn scopes() -> ArrayBuilder {
        ArrayBuilder::new()
            .description(Some(
                "Scopes the token carries (at least one); `admin` is for instance administrators, \
                 and a token can only grant scopes it has itself.",
            ))
            .min_items(Some(1))
            .items(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(Scope::ALL.into_iter().map(Scope::as_str))),
            )
            .examples([serde_json::json!(["account:read", "render"])])
    }
}
