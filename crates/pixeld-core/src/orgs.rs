//! Organisations, members, roles and invitations.

use time::Duration;
use uuid::Uuid;

use crate::email::EmailAddress;
use crate::mail::Message;
use crate::page::{Page, PageRequest};
use crate::principal::{Credential, Principal};
use crate::roles::{Permission, Role};
use crate::store::{Invite, Member, Org, OrgWithRole};
use crate::tokens::Scope;
use crate::{Error, Pixeld, Result, secret};

/// How long an invitation link works.
pub const INVITE_TTL: Duration = Duration::days(7);

fn validate_org_name(name: &str) -> Result<String> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 100 || n.chars().any(char::is_control) {
        return Err(Error::invalid(
            "name",
            "must be 1 to 100 printable characters",
        ));
    }
    Ok(n.to_string())
}

impl Pixeld {
    /// The caller, acting in `org_id`: a token only ever acts in its own organisation; a session
    /// in any organisation the user belongs to. Anything else is `NotFound`, never `Forbidden`.
    pub async fn principal_in(&self, p: &Principal, org_id: Uuid) -> Result<Principal> {
        if org_id == p.org_id {
            return Ok(p.clone());
        }
        if matches!(p.credential, Credential::Token { .. }) {
            return Err(Error::NotFound);
        }
        let m = self
            .store
            .membership(org_id, p.user.id)
            .await?
            .ok_or(Error::NotFound)?;
        Ok(Principal {
            org_id,
            role: m.role,
            ..p.clone()
        })
    }

    /// Creates an organisation owned by the caller.
    pub async fn create_org(&self, p: &Principal, name: &str) -> Result<Org> {
        p.require_scope(Scope::AccountWrite)?;
        if matches!(p.credential, Credential::Token { .. }) {
            // A token is bound to one organisation; creating others is a signed-in action.
            return Err(Error::Forbidden(
                "organisations are created from a signed-in session".into(),
            ));
        }
        let org = Org {
            id: Uuid::now_v7(),
            name: validate_org_name(name)?,
            personal: false,
            created_at: self.now(),
        };
        self.store.create_org(&org, p.user.id).await?;
        Ok(org)
    }

    /// The organisations the caller can act in (a token: only its own).
    pub async fn orgs_of(&self, p: &Principal, page: PageRequest) -> Result<Page<OrgWithRole>> {
        p.require_scope(Scope::AccountRead)?;
        if matches!(p.credential, Credential::Token { .. }) {
            let org = self
                .store
                .org_by_id(p.org_id)
                .await?
                .ok_or(Error::NotFound)?;
            let rows = if page.after.is_some_and(|a| a >= org.id) {
                vec![]
            } else {
                vec![OrgWithRole { org, role: p.role }]
            };
            return Ok(page.finish(rows, |o| o.org.id));
        }
        let rows = self.store.orgs_of_user(p.user.id, page).await?;
        Ok(page.finish(rows, |o| o.org.id))
    }

    /// One organisation.
    pub async fn get_org(&self, p: &Principal, org_id: Uuid) -> Result<OrgWithRole> {
        let p = self.principal_in(p, org_id).await?;
        p.require(Scope::AccountRead, Permission::OrgRead)?;
        let org = self.store.org_by_id(org_id).await?.ok_or(Error::NotFound)?;
        Ok(OrgWithRole { org, role: p.role })
    }

    /// Renames an organisation.
    pub async fn rename_org(&self, p: &Principal, org_id: Uuid, name: &str) -> Result<Org> {
        let p = self.principal_in(p, org_id).await?;
        p.require(Scope::AccountWrite, Permission::OrgManage)?;
        let name = validate_org_name(name)?;
        self.store.rename_org(org_id, &name).await?;
        self.store.org_by_id(org_id).await?.ok_or(Error::NotFound)
    }

    /// Members of an organisation.
    pub async fn members(
        &self,
        p: &Principal,
        org_id: Uuid,
        page: PageRequest,
    ) -> Result<Page<Member>> {
        let p = self.principal_in(p, org_id).await?;
        p.require(Scope::AccountRead, Permission::OrgRead)?;
        let rows = self.store.list_members(org_id, page).await?;
        Ok(page.finish(rows, |m| m.user_id))
    }

    /// Changes a member's role. Only owners grant or take away `owner`; the last owner stays.
    pub async fn set_role(
        &self,
        p: &Principal,
        org_id: Uuid,
        user_id: Uuid,
        role: Role,
    ) -> Result<()> {
        let p = self.principal_in(p, org_id).await?;
        p.require(Scope::AccountWrite, Permission::MembersManage)?;
        if role == Role::Client {
            return Err(Error::invalid(
                "role",
                "`client` is granted through the client portal, per project",
            ));
        }
        let current = self
            .store
            .membership(org_id, user_id)
            .await?
            .ok_or(Error::NotFound)?;
        if (role == Role::Owner || current.role == Role::Owner)
            && !p.role.allows(Permission::OwnersManage)
        {
            return Err(Error::Forbidden(
                "only owners can grant or remove the owner role".into(),
            ));
        }
        if current.role == Role::Owner
            && role != Role::Owner
            && self.store.count_owners(org_id).await? <= 1
        {
            return Err(Error::State(
                "an organisation needs at least one owner; make someone else owner first".into(),
            ));
        }
        self.store.set_member_role(org_id, user_id, role).await?;
        self.auth_cache.clear();
        Ok(())
    }

    /// Removes a member (or lets a member leave); their tokens there are revoked.
    pub async fn remove_member(&self, p: &Principal, org_id: Uuid, user_id: Uuid) -> Result<()> {
        let p = self.principal_in(p, org_id).await?;
        let org = self.store.org_by_id(org_id).await?.ok_or(Error::NotFound)?;
        if user_id == p.user.id {
            p.require(Scope::AccountWrite, Permission::OrgRead)?;
        } else {
            p.require(Scope::AccountWrite, Permission::MembersManage)?;
        }
        let target = self
            .store
            .membership(org_id, user_id)
            .await?
            .ok_or(Error::NotFound)?;
        if org.personal && target.role == Role::Owner {
            return Err(Error::State(
                "the owner of a personal organisation cannot leave it".into(),
            ));
        }
        if target.role == Role::Owner {
            if user_id != p.user.id && !p.role.allows(Permission::OwnersManage) {
                return Err(Error::Forbidden("only owners can remove an owner".into()));
            }
            if self.store.count_owners(org_id).await? <= 1 {
                return Err(Error::State(
                    "an organisation needs at least one owner; make someone else owner first"
                        .into(),
                ));
            }
        }
        self.store
            .remove_member(org_id, user_id, self.now())
            .await?;
        self.auth_cache.clear();
        Ok(())
    }

    /// Invites an address to join with a role; the link is emailed and works for 7 days.
    pub async fn invite(
        &self,
        p: &Principal,
        org_id: Uuid,
        email: &str,
        role: Role,
    ) -> Result<Invite> {
        let p = self.principal_in(p, org_id).await?;
        p.require(Scope::AccountWrite, Permission::MembersManage)?;
        let email = EmailAddress::parse(email)?;
        if role == Role::Client {
            return Err(Error::invalid(
                "role",
                "`client` is granted through the client portal, per project",
            ));
        }
        if role == Role::Owner && !p.role.allows(Permission::OwnersManage) {
            return Err(Error::Forbidden("only owners can invite owners".into()));
        }
        if let Some(existing) = self.store.user_by_email(email.as_str()).await?
            && self.store.membership(org_id, existing.id).await?.is_some()
        {
            return Err(Error::Conflict("this person is already a member".into()));
        }
        let org = self.store.org_by_id(org_id).await?.ok_or(Error::NotFound)?;
        let token = secret::random_base62(32);
        let now = self.now();
        let invite = Invite {
            id: Uuid::now_v7(),
            org_id,
            email: email.to_string(),
            role,
            secret_digest: secret::digest(&token),
            invited_by: p.user.id,
            created_at: now,
            expires_at: now + INVITE_TTL,
            accepted_at: None,
            revoked_at: None,
        };
        self.store.create_invite(&invite).await?;
        let link = format!("{}/invites/accept?token={token}", self.settings.public_url);
        self.mailer
            .send(Message {
                to: email.to_string(),
                subject: format!("{} invited you to {} on pixeld", p.user.name, org.name),
                body: format!(
                    "Hello,\n\n{} ({}) invited you to join \"{}\" on pixeld as {role}.\n\n\
                     Sign in or sign up with this address, then open this link within 7 days:\n\n{link}\n\n\
                     Or send the token with POST /v1/invites/accept: {token}\n",
                    p.user.name, p.user.email, org.name
                ),
                attachments: Vec::new(),
            })
            .await?;
        Ok(invite)
    }

    /// Open invitations of an organisation.
    pub async fn invites(
        &self,
        p: &Principal,
        org_id: Uuid,
        page: PageRequest,
    ) -> Result<Page<Invite>> {
        let p = self.principal_in(p, org_id).await?;
        p.require(Scope::AccountRead, Permission::MembersManage)?;
        let rows = self.store.list_invites(org_id, page).await?;
        Ok(page.finish(rows, |i| i.id))
    }

    /// Withdraws an invitation.
    pub async fn revoke_invite(&self, p: &Principal, org_id: Uuid, invite_id: Uuid) -> Result<()> {
        let p = self.principal_in(p, org_id).await?;
        p.require(Scope::AccountWrite, Permission::MembersManage)?;
        if self
            .store
            .revoke_invite(org_id, invite_id, self.now())
            .await?
        {
            Ok(())
        } else {
            Err(Error::NotFound)
        }
    }

    /// Accepts an invitation as the signed-in user, whose address must be the invited one.
    pub async fn accept_invite(&self, p: &Principal, token: &str) -> Result<OrgWithRole> {
        p.require_scope(Scope::AccountWrite)?;
        let invite = self
            .store
            .invite_by_digest(&secret::digest(token))
            .await?
            .ok_or(Error::InvalidToken)?;
        let now = self.now();
        if invite.accepted_at.is_some() || invite.revoked_at.is_some() || now >= invite.expires_at {
            return Err(Error::InvalidToken);
        }
        if !invite.email.eq_ignore_ascii_case(&p.user.email) {
            return Err(Error::Forbidden(format!(
                "this invitation is for another email address; sign in as {}",
                invite.email
            )));
        }
        if !self.store.accept_invite(invite.id, p.user.id, now).await? {
            return Err(Error::InvalidToken);
        }
        let org = self
            .store
            .org_by_id(invite.org_id)
            .await?
            .ok_or(Error::NotFound)?;
        let role = self
            .store
            .membership(invite.org_id, p.user.id)
            .await?
            .map_or(invite.role, |m| m.role);
        Ok(OrgWithRole { org, role })
    }

    /// The invitation behind an emailed link and its organisation, while it can still be
    /// accepted (so the page can say what joining means before anyone presses the button).
    /// Looking does not spend the link.
    pub async fn invite_by_token(&self, token: &str) -> Result<(Invite, Org)> {
        let invite = self
            .store
            .invite_by_digest(&secret::digest(token))
            .await?
            .ok_or(Error::InvalidToken)?;
        if invite.accepted_at.is_some()
            || invite.revoked_at.is_some()
            || self.now() >= invite.expires_at
        {
            return Err(Error::InvalidToken);
        }
        let org = self
            .store
            .org_by_id(invite.org_id)
            .await?
            .ok_or(Error::InvalidToken)?;
        Ok((invite, org))
    }
}
