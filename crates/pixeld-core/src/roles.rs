//! Roles in an organisation and the one table that says what each may do.
//!
//! | permission        | owner | admin | member | viewer | client |
//! |-------------------|:-----:|:-----:|:------:|:------:|:------:|
//! | read org, members |   ✓   |   ✓   |   ✓    |   ✓    |        |
//! | read content      |   ✓   |   ✓   |   ✓    |   ✓    |        |
//! | write content     |   ✓   |   ✓   |   ✓    |        |        |
//! | create own tokens |   ✓   |   ✓   |   ✓    |   ✓¹   |        |
//! | manage all tokens |   ✓   |   ✓   |        |        |        |
//! | manage org        |   ✓   |   ✓   |        |        |        |
//! | manage members    |   ✓   |   ✓²  |        |        |        |
//! | manage owners     |   ✓   |       |        |        |        |
//! | read billing      |   ✓   |   ✓   |        |        |        |
//! | manage billing    |   ✓   |       |        |        |        |
//!
//! ¹ a viewer's tokens can only carry read scopes. ² admins cannot grant or remove `owner`.
//! `client` is reserved for the client portal, which grants access per project, not per org.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::tokens::Scope;

/// A member's role in one organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Full control, including billing and other owners.
    Owner,
    /// Everything but billing changes and owners.
    Admin,
    /// Uses the products; manages own tokens.
    Member,
    /// Read-only.
    Viewer,
    /// A client of the agency, seen through the client portal only.
    Client,
}

/// Something a role may or may not do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// See the organisation and its members.
    OrgRead,
    /// Rename the organisation, change its settings.
    OrgManage,
    /// Invite, re-role and remove non-owner members.
    MembersManage,
    /// Grant or remove the owner role, delete the organisation.
    OwnersManage,
    /// Create and revoke one's own API tokens.
    TokensOwn,
    /// See and revoke every member's tokens.
    TokensManageAll,
    /// Read the organisation's images, templates, projects…
    ContentRead,
    /// Create and change them.
    ContentWrite,
    /// See balance, transactions, invoices.
    BillingRead,
    /// Buy credits, change plans.
    BillingManage,
}

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Role; 5] = [
        Role::Owner,
        Role::Admin,
        Role::Member,
        Role::Viewer,
        Role::Client,
    ];

    /// The permission table. The only place where roles are interpreted.
    pub fn allows(self, p: Permission) -> bool {
        use Permission::*;
        use Role::*;
        match p {
            OrgRead | ContentRead | TokensOwn => matches!(self, Owner | Admin | Member | Viewer),
            ContentWrite => matches!(self, Owner | Admin | Member),
            OrgManage | MembersManage | TokensManageAll | BillingRead => {
                matches!(self, Owner | Admin)
            }
            OwnersManage | BillingManage => matches!(self, Owner),
        }
    }

    /// Whether a token created by a member with this role may carry `scope`.
    pub fn may_grant(self, scope: Scope) -> bool {
        match scope {
            Scope::AccountRead | Scope::ImagesRead | Scope::WorkspaceRead => {
                self.allows(Permission::ContentRead)
            }
            Scope::BillingRead => self.allows(Permission::BillingRead),
            Scope::BillingWrite => self.allows(Permission::BillingManage),
            Scope::Render
            | Scope::ImagesWrite
            | Scope::Generate
            | Scope::Studio
            | Scope::WorkspaceWrite
            | Scope::AccountWrite => self.allows(Permission::ContentWrite),
            // Instance administration is granted by the instance flag, not by an org role.
            Scope::Admin => true,
        }
    }

    /// The role's name on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Viewer => "viewer",
            Role::Client => "client",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                crate::Error::invalid(
                    "role",
                    "must be one of owner, admin, member, viewer, client",
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_permission_table_is_what_the_docs_say() {
        assert!(Role::Owner.allows(Permission::OwnersManage));
        assert!(!Role::Admin.allows(Permission::OwnersManage));
        assert!(Role::Admin.allows(Permission::MembersManage));
        assert!(!Role::Member.allows(Permission::MembersManage));
        assert!(Role::Viewer.allows(Permission::ContentRead));
        assert!(!Role::Viewer.allows(Permission::ContentWrite));
        assert!(!Role::Client.allows(Permission::OrgRead));
        assert!(Role::Viewer.may_grant(Scope::ImagesRead));
        assert!(!Role::Viewer.may_grant(Scope::ImagesWrite));
    }
}
