//! API tokens: create (secret shown once), list, show, revoke.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use pixeld_core::store::ApiToken;
use pixeld_core::tokens::{NewToken, scopes_from_string};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::PageParams;
use crate::AppState;
use crate::extract::{Auth, Json, Path, Query};
use crate::middleware::RedactForReplay;
use crate::problem::ApiResult;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tokens", get(list_tokens).post(create_token))
        .route("/v1/tokens/{id}", get(get_token).delete(revoke_token))
}

/// A new token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// A label, 1 to 100 printable characters (no control characters).
    #[schema(
        example = "CI renders",
        min_length = 1,
        max_length = 100,
        pattern = r"\S"
    )]
    pub name: String,
    /// Scopes: `render`, `images:read`, `images:write`, `generate`, `studio`, `billing:read`,
    /// `account:read`, `account:write`, `workspace:read`, `workspace:write`, `admin`.
    #[schema(schema_with = super::schema::scopes)]
    pub scopes: Vec<String>,
    /// Optional expiry (RFC 3339), within 366 days.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

/// A token as listed: never the secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    /// Id.
    pub id: Uuid,
    /// Label.
    pub name: String,
    /// The first characters of the secret, to tell tokens apart.
    #[schema(example = "pxd_a1B2c3")]
    pub prefix: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// The organisation it acts in.
    pub org_id: Uuid,
    /// The user it acts as.
    pub user_id: Uuid,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Expiry, if any.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// Last successful use.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// Client IP at last use.
    pub last_used_ip: Option<String>,
    /// Revocation time, if revoked.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

impl From<&ApiToken> for TokenView {
    fn from(t: &ApiToken) -> Self {
        Self {
            id: t.id,
            name: t.name.clone(),
            prefix: t.prefix.clone(),
            scopes: scopes_from_string(&t.scopes)
                .iter()
                .map(|s| s.as_str().to_string())
                .collect(),
            org_id: t.org_id,
            user_id: t.user_id,
            created_at: t.created_at,
            expires_at: t.expires_at,
            last_used_at: t.last_used_at,
            last_used_ip: t.last_used_ip.clone(),
            revoked_at: t.revoked_at,
        }
    }
}

/// A created token, with its secret (shown this once).
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    /// The secret: `pxd_` + 32 base62 characters + 6-character checksum. Store it now; it
    /// cannot be shown again. `null` when this response is an `Idempotency-Key` replay.
    pub token: Option<String>,
    /// The token's details.
    #[serde(flatten)]
    pub details: TokenView,
}

/// One page of tokens.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPage {
    /// Tokens on this page.
    pub items: Vec<TokenView>,
    /// Cursor for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// Creates a token in the caller's organisation. The secret is in this response only.
#[utoipa::path(post, path = "/v1/tokens", tag = "tokens", request_body = CreateTokenRequest,
    responses((status = 201, description = "Created; the secret is shown once", body = CreatedToken)))]
pub async fn create_token(
    State(st): State<AppState>,
    Auth(p): Auth,
    Json(req): Json<CreateTokenRequest>,
) -> ApiResult<Response> {
    let (token, secret) = st
        .app
        .create_token(
            &p,
            NewToken {
                name: req.name,
                scopes: req.scopes,
                expires_at: req.expires_at,
            },
        )
        .await?;
    let view = TokenView::from(&token);
    // The stored replay carries no secret: secrets are never kept, not even there.
    let redacted = serde_json::to_vec(&CreatedToken {
        token: None,
        details: TokenView::from(&token),
    })
    .unwrap_or_default();
    let mut resp = (
        StatusCode::CREATED,
        Json(CreatedToken {
            token: Some(secret),
            details: view,
        }),
    )
        .into_response();
    resp.extensions_mut().insert(RedactForReplay(redacted));
    Ok(resp)
}

/// Lists tokens: owners and admins see the organisation's, others their own.
#[utoipa::path(get, path = "/v1/tokens", tag = "tokens", params(PageParams),
    responses((status = 200, description = "A page of tokens", body = TokenPage)))]
pub async fn list_tokens(
    State(st): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<PageParams>,
) -> ApiResult<Json<TokenPage>> {
    let page = st.app.list_tokens(&p, q.page()?).await?;
    Ok(Json(TokenPage {
        items: page.items.iter().map(TokenView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One token.
#[utoipa::path(get, path = "/v1/tokens/{id}", tag = "tokens", params(("id" = Uuid, Path, description = "Token id")),
    responses((status = 200, description = "The token", body = TokenView)))]
pub async fn get_token(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<TokenView>> {
    Ok(Json(TokenView::from(&st.app.get_token(&p, id).await?)))
}

/// Revokes a token at once; requests with it answer 401 from now on.
#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "tokens", params(("id" = Uuid, Path, description = "Token id")),
    responses((status = 204, description = "Revoked")))]
pub async fn revoke_token(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    st.app.revoke_token(&p, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
