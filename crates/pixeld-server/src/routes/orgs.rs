//! Organisations, members, roles and invitations.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, patch, post};
use pixeld_core::roles::Role;
use pixeld_core::store::{Invite, Member, OrgWithRole};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::PageParams;
use crate::AppState;
use crate::extract::{Auth, Json, Path, Query};
use crate::problem::ApiResult;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/orgs", get(list_orgs).post(create_org))
        .route("/v1/orgs/{org_id}", get(get_org).patch(rename_org))
        .route("/v1/orgs/{org_id}/members", get(list_members))
        .route(
            "/v1/orgs/{org_id}/members/{user_id}",
            patch(set_role).delete(remove_member),
        )
        .route("/v1/orgs/{org_id}/invites", get(list_invites).post(invite))
        .route(
            "/v1/orgs/{org_id}/invites/{invite_id}",
            delete(revoke_invite),
        )
        .route("/v1/invites/accept", post(accept_invite))
}

/// An organisation, with the caller's role.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrgView {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Whether it is someone's personal organisation.
    pub personal: bool,
    /// The caller's role.
    #[schema(example = "owner")]
    pub role: String,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<&OrgWithRole> for OrgView {
    fn from(o: &OrgWithRole) -> Self {
        Self {
            id: o.org.id,
            name: o.org.name.clone(),
            personal: o.org.personal,
            role: o.role.as_str().into(),
            created_at: o.org.created_at,
        }
    }
}

/// A page of organisations.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrgPage {
    /// Items.
    pub items: Vec<OrgView>,
    /// Next page cursor.
    pub next_cursor: Option<String>,
}

/// A name.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NameRequest {
    /// 1 to 100 printable characters.
    #[schema(
        example = "Acme Studio",
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*\S[^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: String,
}

/// Creates an organisation owned by the caller (signed-in sessions only).
#[utoipa::path(post, path = "/v1/orgs", tag = "orgs", request_body = NameRequest,
    responses((status = 201, description = "Created", body = OrgView)))]
pub async fn create_org(
    State(st): State<AppState>,
    Auth(p): Auth,
    Json(req): Json<NameRequest>,
) -> ApiResult<(StatusCode, Json<OrgView>)> {
    let org = st.app.create_org(&p, &req.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(OrgView::from(&OrgWithRole {
            org,
            role: Role::Owner,
        })),
    ))
}

/// The organisations the caller can act in.
#[utoipa::path(get, path = "/v1/orgs", tag = "orgs", params(PageParams),
    responses((status = 200, description = "A page of organisations", body = OrgPage)))]
pub async fn list_orgs(
    State(st): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<PageParams>,
) -> ApiResult<Json<OrgPage>> {
    let page = st.app.orgs_of(&p, q.page()?).await?;
    Ok(Json(OrgPage {
        items: page.items.iter().map(OrgView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One organisation.
#[utoipa::path(get, path = "/v1/orgs/{org_id}", tag = "orgs", params(("org_id" = Uuid, Path, description = "Organisation id")),
    responses((status = 200, description = "The organisation", body = OrgView)))]
pub async fn get_org(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(org_id): Path<Uuid>,
) -> ApiResult<Json<OrgView>> {
    Ok(Json(OrgView::from(&st.app.get_org(&p, org_id).await?)))
}

/// Renames an organisation (owners and admins).
#[utoipa::path(patch, path = "/v1/orgs/{org_id}", tag = "orgs", request_body = NameRequest,
    params(("org_id" = Uuid, Path, description = "Organisation id")),
    responses((status = 200, description = "Renamed", body = OrgView)))]
pub async fn rename_org(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(org_id): Path<Uuid>,
    Json(req): Json<NameRequest>,
) -> ApiResult<Json<OrgView>> {
    let org = st.app.rename_org(&p, org_id, &req.name).await?;
    let role = st.app.principal_in(&p, org_id).await?.role;
    Ok(Json(OrgView::from(&OrgWithRole { org, role })))
}

/// A member.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    /// User id.
    pub user_id: Uuid,
    /// Email.
    pub email: String,
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Joined.
    #[serde(with = "time::serde::rfc3339")]
    pub joined_at: OffsetDateTime,
}

impl From<&Member> for MemberView {
    fn from(m: &Member) -> Self {
        Self {
            user_id: m.user_id,
            email: m.email.clone(),
            name: m.name.clone(),
            role: m.role.as_str().into(),
            joined_at: m.joined_at,
        }
    }
}

/// A page of members.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberPage {
    /// Items.
    pub items: Vec<MemberView>,
    /// Next page cursor.
    pub next_cursor: Option<String>,
}

/// Members of an organisation.
#[utoipa::path(get, path = "/v1/orgs/{org_id}/members", tag = "orgs",
    params(("org_id" = Uuid, Path, description = "Organisation id"), PageParams),
    responses((status = 200, description = "A page of members", body = MemberPage)))]
pub async fn list_members(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(org_id): Path<Uuid>,
    Query(q): Query<PageParams>,
) -> ApiResult<Json<MemberPage>> {
    let page = st.app.members(&p, org_id, q.page()?).await?;
    Ok(Json(MemberPage {
        items: page.items.iter().map(MemberView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// A role.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleRequest {
    /// `owner`, `admin`, `member` or `viewer`.
    #[schema(schema_with = super::schema::assignable_role)]
    pub role: String,
}

/// Changes a member's role (owners and admins; only owners touch `owner`).
#[utoipa::path(patch, path = "/v1/orgs/{org_id}/members/{user_id}", tag = "orgs", request_body = RoleRequest,
    params(("org_id" = Uuid, Path, description = "Organisation id"), ("user_id" = Uuid, Path, description = "Member's user id")),
    responses((status = 204, description = "Changed")))]
pub async fn set_role(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path((org_id, user_id)): Path<(Uuid, Uuid)>,
    Json(req): Json<RoleRequest>,
) -> ApiResult<StatusCode> {
    let role: Role = req.role.parse()?;
    st.app.set_role(&p, org_id, user_id, role).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a member (or leaves, with one's own id); their tokens there are revoked.
#[utoipa::path(delete, path = "/v1/orgs/{org_id}/members/{user_id}", tag = "orgs",
    params(("org_id" = Uuid, Path, description = "Organisation id"), ("user_id" = Uuid, Path, description = "Member's user id")),
    responses((status = 204, description = "Removed")))]
pub async fn remove_member(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path((org_id, user_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    st.app.remove_member(&p, org_id, user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An invitation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    /// Address to invite.
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// Role on acceptance: `owner`, `admin`, `member` or `viewer`.
    #[schema(schema_with = super::schema::assignable_role)]
    pub role: String,
}

/// An open invitation.
#[derive(Debug, Serialize, ToSchema)]
pub struct InviteView {
    /// Id.
    pub id: Uuid,
    /// Invited address.
    pub email: String,
    /// Role on acceptance.
    pub role: String,
    /// Who invited.
    pub invited_by: Uuid,
    /// Sent.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Link expiry (7 days after sending).
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

impl From<&Invite> for InviteView {
    fn from(i: &Invite) -> Self {
        Self {
            id: i.id,
            email: i.email.clone(),
            role: i.role.as_str().into(),
            invited_by: i.invited_by,
            created_at: i.created_at,
            expires_at: i.expires_at,
        }
    }
}

/// A page of invitations.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitePage {
    /// Items.
    pub items: Vec<InviteView>,
    /// Next page cursor.
    pub next_cursor: Option<String>,
}

/// Invites an address by email; the link works for 7 days.
#[utoipa::path(post, path = "/v1/orgs/{org_id}/invites", tag = "orgs", request_body = InviteRequest,
    params(("org_id" = Uuid, Path, description = "Organisation id")),
    responses((status = 201, description = "Invitation sent", body = InviteView)))]
pub async fn invite(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(org_id): Path<Uuid>,
    Json(req): Json<InviteRequest>,
) -> ApiResult<(StatusCode, Json<InviteView>)> {
    let role: Role = req.role.parse()?;
    let i = st.app.invite(&p, org_id, &req.email, role).await?;
    Ok((StatusCode::CREATED, Json(InviteView::from(&i))))
}

/// Open invitations.
#[utoipa::path(get, path = "/v1/orgs/{org_id}/invites", tag = "orgs",
    params(("org_id" = Uuid, Path, description = "Organisation id"), PageParams),
    responses((status = 200, description = "A page of invitations", body = InvitePage)))]
pub async fn list_invites(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(org_id): Path<Uuid>,
    Query(q): Query<PageParams>,
) -> ApiResult<Json<InvitePage>> {
    let page = st.app.invites(&p, org_id, q.page()?).await?;
    Ok(Json(InvitePage {
        items: page.items.iter().map(InviteView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Withdraws an invitation.
#[utoipa::path(delete, path = "/v1/orgs/{org_id}/invites/{invite_id}", tag = "orgs",
    params(("org_id" = Uuid, Path, description = "Organisation id"), ("invite_id" = Uuid, Path, description = "Invitation id")),
    responses((status = 204, description = "Withdrawn")))]
pub async fn revoke_invite(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path((org_id, invite_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    st.app.revoke_invite(&p, org_id, invite_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Accepts an invitation as the signed-in user (whose address must be the invited one).
#[utoipa::path(post, path = "/v1/invites/accept", tag = "orgs", request_body = super::auth::TokenRequest,
    responses((status = 200, description = "Joined", body = OrgView)))]
pub async fn accept_invite(
    State(st): State<AppState>,
    Auth(p): Auth,
    Json(req): Json<super::auth::TokenRequest>,
) -> ApiResult<Json<OrgView>> {
    Ok(Json(OrgView::from(
        &st.app.accept_invite(&p, &req.token).await?,
    )))
}
