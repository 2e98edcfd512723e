//! Browser sessions: a random id in an `HttpOnly` cookie, stored only as its digest, with an
//! idle timeout and an absolute lifetime.

use time::Duration;
use uuid::Uuid;

use crate::store::{Session, User};
use crate::{Error, Pixeld, Result, secret};

/// Activity is written at most this often per session, to keep reads cheap.
const TOUCH_EVERY: Duration = Duration::minutes(1);

/// Where a request came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// Client IP address.
    pub ip: Option<String>,
    /// `User-Agent` header, truncated.
    pub user_agent: Option<String>,
}

/// A session just started: the secret goes into the cookie and is not kept.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// Cookie value.
    pub secret: String,
    /// The stored session.
    pub session: Session,
}

/// The CSRF token of a session: derived from its secret, so nothing more is stored, and
/// useless without the cookie.
pub fn csrf_token(session_secret: &str) -> String {
    secret::digest(&format!("csrf\0{session_secret}"))[..40].to_string()
}

impl Pixeld {
    /// Starts a new session for a user (a fresh id on every sign-in).
    pub async fn start_session(&self, user: &User, client: ClientInfo) -> Result<NewSession> {
        let secret = secret::random_base62(43);
        let now = self.now();
        let session = Session {
            id: Uuid::now_v7(),
            secret_digest: secret::digest(&secret),
            user_id: user.id,
            created_at: now,
            last_seen_at: now,
            expires_at: now + self.settings.session_absolute,
            ip: client.ip,
            user_agent: client.user_agent.map(|ua| ua.chars().take(256).collect()),
        };
        self.store.create_session(&session).await?;
        Ok(NewSession { secret, session })
    }

    /// Finds the live session and user for a cookie value.
    pub async fn authenticate_session(&self, cookie: &str) -> Result<(Session, User)> {
        if cookie.is_empty() || cookie.len() > 128 {
            return Err(Error::Unauthenticated);
        }
        let session = self
            .store
            .session_by_digest(&secret::digest(cookie))
            .await?
            .ok_or(Error::Unauthenticated)?;
        let now = self.now();
        if now >= session.expires_at || now >= session.last_seen_at + self.settings.session_idle {
            // An expired session is removed on sight.
            self.store
                .delete_session(session.user_id, session.id)
                .await?;
            return Err(Error::Unauthenticated);
        }
        let user = self
            .store
            .user_by_id(session.user_id)
            .await?
            .ok_or(Error::Unauthenticated)?;
        if user.disabled_at.is_some() {
            return Err(Error::Unauthenticated);
        }
        if now - session.last_seen_at >= TOUCH_EVERY {
            self.store.touch_session(session.id, now).await?;
        }
        Ok((session, user))
    }

    /// Ends one session of a user (sign-out, or revoking a device).
    pub async fn end_session(&self, user_id: Uuid, session_id: Uuid) -> Result<()> {
        if self.store.delete_session(user_id, session_id).await? {
            Ok(())
        } else {
            Err(Error::NotFound)
        }
    }

    /// Signs out every other device; returns how many sessions ended.
    pub async fn end_other_sessions(&self, user_id: Uuid, keep: Uuid) -> Result<u64> {
        Ok(self
            .store
            .delete_other_sessions(user_id, Some(keep))
            .await?)
    }

    /// A user's live sessions, newest first.
    pub async fn sessions_of(&self, user_id: Uuid) -> Result<Vec<Session>> {
        let now = self.now();
        let idle = self.settings.session_idle;
        Ok(self
            .store
            .list_sessions(user_id)
            .await?
            .into_iter()
            .filter(|s| now < s.expires_at && now < s.last_seen_at + idle)
            .collect())
    }
}
