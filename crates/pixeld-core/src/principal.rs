//! Who is asking, in which organisation, with which scopes; and the one check every operation
//! makes.

use uuid::Uuid;

use crate::roles::{Permission, Role};
use crate::store::User;
use crate::tokens::Scope;
use crate::{Error, Result};

/// How the caller authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A browser session (all scopes, limited by role).
    Session {
        /// The session's public id.
        session_id: Uuid,
    },
    /// An API token (its scopes, limited by role).
    Token {
        /// The token's id.
        token_id: Uuid,
        /// Its scopes.
        scopes: Vec<Scope>,
    },
}

/// An authenticated caller acting in one organisation.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The user.
    pub user: User,
    /// The organisation the request acts in.
    pub org_id: Uuid,
    /// The user's role there.
    pub role: Role,
    /// Session or token.
    pub credential: Credential,
}

impl Principal {
    /// Allows the operation only if the credential has `scope` and the role has `permission`.
    /// A missing scope answers 403 naming it; a role that forbids answers 403 too.
    pub fn require(&self, scope: Scope, permission: Permission) -> Result<()> {
        self.require_scope(scope)?;
        if !self.role.allows(permission) {
            return Err(Error::Forbidden(format!(
                "the `{}` role cannot do this",
                self.role
            )));
        }
        Ok(())
    }

    /// Allows the operation only if the credential has `scope` (for account-level operations that
    /// do not depend on an organisation role).
    pub fn require_scope(&self, scope: Scope) -> Result<()> {
        if scope == Scope::Admin && !self.user.is_admin {
            return Err(Error::Forbidden("instance administrators only".into()));
        }
        match &self.credential {
            Credential::Session { .. } => Ok(()),
            Credential::Token { scopes, .. } if scopes.contains(&scope) => Ok(()),
            Credential::Token { .. } => Err(Error::MissingScope(scope.as_str())),
        }
    }

    /// The token id, when authenticated by token.
    pub fn token_id(&self) -> Option<Uuid> {
        match &self.credential {
            Credential::Token { token_id, .. } => Some(*token_id),
            Credential::Session { .. } => None,
        }
    }

    /// The session id, when authenticated by session.
    pub fn session_id(&self) -> Option<Uuid> {
        match &self.credential {
            Credential::Session { session_id } => Some(*session_id),
            Credential::Token { .. } => None,
        }
    }
}
