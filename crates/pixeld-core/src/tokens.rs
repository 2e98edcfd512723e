//! API tokens: `pxd_` + 32 random base62 characters + a 6-character CRC32 checksum, so secret
//! scanners can recognise a leaked token and a typo is caught before any lookup. Only the
//! SHA-256 digest and a short visible prefix are stored.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Every token starts with this.
pub const TOKEN_PREFIX: &str = "pxd_";
const RANDOM_LEN: usize = 32;
const CHECK_LEN: usize = 6;
/// Total length of a token.
pub const TOKEN_LEN: usize = TOKEN_PREFIX.len() + RANDOM_LEN + CHECK_LEN;
/// How many characters of the token are kept in clear to let users tell tokens apart.
pub const VISIBLE_LEN: usize = TOKEN_PREFIX.len() + 6;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A freshly minted token: the secret is shown to the user once and never again.
#[derive(Debug, Clone)]
pub struct NewTokenSecret {
    /// The whole token, e.g. `pxd_…`.
    pub secret: String,
    /// Its SHA-256 digest (hex), the only form stored.
    pub digest: String,
    /// The visible prefix, e.g. `pxd_a1B2c3`.
    pub prefix: String,
}

/// Mints a new random token.
pub fn mint() -> NewTokenSecret {
    let random = crate::secret::random_base62(RANDOM_LEN);
    let secret = format!("{TOKEN_PREFIX}{random}{}", checksum(&random));
    NewTokenSecret {
        digest: crate::secret::digest(&secret),
        prefix: secret[..VISIBLE_LEN].to_string(),
        secret,
    }
}

/// Checks a presented token's shape and checksum; returns its digest for the lookup.
/// Malformed tokens never reach storage.
pub fn digest_if_well_formed(presented: &str) -> Option<String> {
    if presented.len() != TOKEN_LEN || !presented.starts_with(TOKEN_PREFIX) {
        return None;
    }
    let body = &presented[TOKEN_PREFIX.len()..];
    if !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let (random, check) = body.split_at(RANDOM_LEN);
    if !crate::secret::constant_time_eq(checksum(random).as_bytes(), check.as_bytes()) {
        return None;
    }
    Some(crate::secret::digest(presented))
}

fn checksum(random: &str) -> String {
    let mut n = crc32fast::hash(random.as_bytes()) as u64;
    let mut out = [b'0'; CHECK_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out.to_vec()).expect("base62 is ascii")
}

/// What a token may do. Each API operation names the scope it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Scope {
    /// Render images from templates.
    Render,
    /// Read images and their analysis.
    ImagesRead,
    /// Upload, transform and delete images.
    ImagesWrite,
    /// Generate assets from prompts.
    Generate,
    /// Product studio (cutout + studio shot).
    Studio,
    /// Read balance, transactions and invoices.
    BillingRead,
    /// Buy credits and plans.
    BillingWrite,
    /// Read the account, its organisations and members.
    AccountRead,
    /// Change the account, organisations, members and tokens.
    AccountWrite,
    /// Read projects, clients, tasks, time and invoices.
    WorkspaceRead,
    /// Change projects, clients, tasks, time and invoices.
    WorkspaceWrite,
    /// Instance administration (instance admins only).
    Admin,
}

impl Scope {
    /// Every scope, in documentation order.
    pub const ALL: [Scope; 12] = [
        Scope::Render,
        Scope::ImagesRead,
        Scope::ImagesWrite,
        Scope::Generate,
        Scope::Studio,
        Scope::BillingRead,
        Scope::BillingWrite,
        Scope::AccountRead,
        Scope::AccountWrite,
        Scope::WorkspaceRead,
        Scope::WorkspaceWrite,
        Scope::Admin,
    ];

    /// The scope's name on the wire, e.g. `images:read`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Render => "render",
            Scope::ImagesRead => "images:read",
            Scope::ImagesWrite => "images:write",
            Scope::Generate => "generate",
            Scope::Studio => "studio",
            Scope::BillingRead => "billing:read",
            Scope::BillingWrite => "billing:write",
            Scope::AccountRead => "account:read",
            Scope::AccountWrite => "account:write",
            Scope::WorkspaceRead => "workspace:read",
            Scope::WorkspaceWrite => "workspace:write",
            Scope::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|sc| sc.as_str() == s)
            .ok_or_else(|| format!("unknown scope `{s}`"))
    }
}

impl TryFrom<String> for Scope {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Scope> for String {
    fn from(s: Scope) -> Self {
        s.as_str().to_string()
    }
}

/// Serialises a scope set for storage: space-separated, sorted (the OAuth convention).
pub fn scopes_to_string(scopes: &[Scope]) -> String {
    let mut v: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    v.sort_unstable();
    v.dedup();
    v.join(" ")
}

/// Reads a stored scope set; unknown names (from a newer version) are ignored, never granted.
pub fn scopes_from_string(s: &str) -> Vec<Scope> {
    s.split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_token_has_the_documented_shape_and_validates() {
        let t = mint();
        assert_eq!(t.secret.len(), TOKEN_LEN);
        assert!(t.secret.starts_with("pxd_"));
        assert!(t.secret.starts_with(&t.prefix));
        assert_eq!(
            digest_if_well_formed(&t.secret).as_deref(),
            Some(t.digest.as_str())
        );
        assert_ne!(t.digest, t.secret);
    }

    #[test]
    fn a_typo_breaks_the_checksum() {
        let t = mint();
        let mut chars: Vec<char> = t.secret.chars().collect();
        chars[10] = if chars[10] == 'a' { 'b' } else { 'a' };
        let typo: String = chars.into_iter().collect();
        assert!(digest_if_well_formed(&typo).is_none());
        assert!(digest_if_well_formed("pxd_short").is_none());
        assert!(digest_if_well_formed(&t.secret.replace("pxd_", "ghp_")).is_none());
    }

    #[test]
    fn scopes_round_trip_and_unknown_names_are_refused() {
        for s in Scope::ALL {
            assert_eq!(s.as_str().parse::<Scope>().unwrap(), s);
        }
        assert!("images:delete".parse::<Scope>().is_err());
        let stored = scopes_to_string(&[Scope::Render, Scope::ImagesRead, Scope::Render]);
        assert_eq!(stored, "images:read render");
        assert_eq!(
            scopes_from_string(&stored),
            vec![Scope::ImagesRead, Scope::Render]
        );
    }
}

/// Recently authenticated tokens, so the hot path of every API call does not need the database.
///
/// An entry lives for the configured time (one second by default). Everything that can make a
/// token stop working through this process (revocation, role change, member removal) clears the
/// cache; expiry is checked on every hit against the application clock.
pub struct AuthCache {
    ttl: std::time::Duration,
    entries: std::sync::Mutex<std::collections::HashMap<String, CachedAuth>>,
}

/// When it was cached, who it is, and when the token expires.
type CachedAuth = (
    std::time::Instant,
    crate::principal::Principal,
    Option<time::OffsetDateTime>,
);

/// Entries kept at most; the cache is emptied when full (a rare event with one-second entries).
const AUTH_CACHE_MAX: usize = 10_000;

impl AuthCache {
    /// A cache keeping entries for `ttl` (zero disables it).
    pub fn new(ttl: std::time::Duration) -> Self {
        Self {
            ttl,
            entries: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    fn get(&self, digest: &str, now: time::OffsetDateTime) -> Option<crate::principal::Principal> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.lock().ok()?;
        let (at, p, expires_at) = entries.get(digest)?;
        (at.elapsed() < self.ttl && expires_at.is_none_or(|e| now < e)).then(|| p.clone())
    }

    fn put(
        &self,
        digest: String,
        p: crate::principal::Principal,
        expires_at: Option<time::OffsetDateTime>,
    ) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= AUTH_CACHE_MAX {
                entries.clear();
            }
            entries.insert(digest, (std::time::Instant::now(), p, expires_at));
        }
    }

    /// Forgets everything (after anything that can revoke access).
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }
}

mod use_cases {
    use time::OffsetDateTime;
    use uuid::Uuid;

    use super::{Scope, digest_if_well_formed, mint, scopes_from_string, scopes_to_string};
    use crate::page::{Page, PageRequest};
    use crate::principal::{Credential, Principal};
    use crate::roles::Permission;
    use crate::store::ApiToken;
    use crate::{Error, Pixeld, Result, secret};

    /// Token use is written at most this often (or when the IP changes), to keep auth cheap.
    const TOUCH_EVERY: time::Duration = time::Duration::minutes(1);
    /// Longest allowed lifetime of a token with an expiry.
    pub const MAX_LIFETIME: time::Duration = time::Duration::days(366);

    /// What a user asks for when creating a token.
    #[derive(Debug, Clone)]
    pub struct NewToken {
        /// Label, 1..=100 characters.
        pub name: String,
        /// Scope names, e.g. `render`, `images:read`.
        pub scopes: Vec<String>,
        /// Optional expiry, in the future and within a year.
        pub expires_at: Option<OffsetDateTime>,
    }

    impl Pixeld {
        /// Authenticates a bearer token. Every failure (malformed, unknown, expired, revoked,
        /// disabled user, removed member) is the same `Unauthenticated`.
        pub async fn authenticate_token(
            &self,
            presented: &str,
            ip: Option<&str>,
        ) -> Result<Principal> {
            let digest = digest_if_well_formed(presented).ok_or(Error::Unauthenticated)?;
            if let Some(p) = self.auth_cache.get(&digest, self.now()) {
                return Ok(p);
            }
            // One round trip for token, user and membership: this runs on every API call.
            let (token, user, role) = self
                .store
                .token_with_owner(&digest)
                .await?
                .ok_or(Error::Unauthenticated)?;
            // The lookup is by digest already; compare once more without early exit anyway.
            if !secret::constant_time_eq(token.secret_digest.as_bytes(), digest.as_bytes()) {
                return Err(Error::Unauthenticated);
            }
            let now = self.now();
            if token.revoked_at.is_some() || token.expires_at.is_some_and(|e| now >= e) {
                return Err(Error::Unauthenticated);
            }
            if user.disabled_at.is_some() {
                return Err(Error::Unauthenticated);
            }
            let role = role.ok_or(Error::Unauthenticated)?;
            let stale = token.last_used_at.is_none_or(|t| now - t >= TOUCH_EVERY);
            if stale || token.last_used_ip.as_deref() != ip {
                self.store.touch_token(token.id, now, ip).await?;
            }
            let principal = Principal {
                user,
                org_id: token.org_id,
                role,
                credential: Credential::Token {
                    token_id: token.id,
                    scopes: scopes_from_string(&token.scopes),
                },
            };
            self.auth_cache
                .put(digest, principal.clone(), token.expires_at);
            Ok(principal)
        }

        /// Creates a token acting as the caller in the caller's organisation. The secret is
        /// returned once and never stored.
        pub async fn create_token(
            &self,
            p: &Principal,
            input: NewToken,
        ) -> Result<(ApiToken, String)> {
            p.require(Scope::AccountWrite, Permission::TokensOwn)?;
            let mut problems = Vec::new();
            let name = input.name.trim().to_string();
            // Control characters (NUL above all, which PostgreSQL text cannot hold) are refused,
            // as in organisation names.
            if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
                problems.push(field("name", "must be 1 to 100 printable characters"));
            }
            let mut scopes = Vec::new();
            if input.scopes.is_empty() {
                problems.push(field("scopes", "must name at least one scope"));
            }
            for s in &input.scopes {
                match s.parse::<Scope>() {
                    Err(e) => problems.push(field("scopes", &e)),
                    Ok(Scope::Admin) if !p.user.is_admin => problems.push(field(
                        "scopes",
                        "`admin` is for instance administrators only",
                    )),
                    Ok(sc) if !p.role.may_grant(sc) => problems.push(field(
                        "scopes",
                        &format!("your `{}` role cannot grant `{sc}`", p.role),
                    )),
                    // A token may only mint tokens with scopes it has itself.
                    Ok(sc) if matches!(&p.credential, Credential::Token { scopes, .. } if !scopes.contains(&sc)) => {
                        problems.push(field(
                            "scopes",
                            &format!("this token cannot grant `{sc}`, which it lacks"),
                        ))
                    }
                    Ok(sc) => scopes.push(sc),
                }
            }
            let now = self.now();
            if let Some(exp) = input.expires_at {
                if exp <= now {
                    problems.push(field("expires_at", "must be in the future"));
                } else if exp - now > MAX_LIFETIME {
                    problems.push(field(
                        "expires_at",
                        "must be within 366 days; omit it for a token that does not expire",
                    ));
                }
            }
            if !problems.is_empty() {
                return Err(Error::Invalid(problems));
            }
            let minted = mint();
            let token = ApiToken {
                id: Uuid::now_v7(),
                org_id: p.org_id,
                user_id: p.user.id,
                name,
                prefix: minted.prefix,
                secret_digest: minted.digest,
                scopes: scopes_to_string(&scopes),
                created_at: now,
                expires_at: input.expires_at.map(crate::clock::truncate),
                last_used_at: None,
                last_used_ip: None,
                revoked_at: None,
            };
            self.store.create_token(&token).await?;
            tracing::info!(token_id = %token.id, user_id = %p.user.id, org_id = %p.org_id, "api token created");
            Ok((token, minted.secret))
        }

        /// Lists tokens: all of the organisation's for owners and admins, one's own otherwise.
        pub async fn list_tokens(
            &self,
            p: &Principal,
            page: PageRequest,
        ) -> Result<Page<ApiToken>> {
            p.require(Scope::AccountRead, Permission::TokensOwn)?;
            let only = if p.role.allows(Permission::TokensManageAll) {
                None
            } else {
                Some(p.user.id)
            };
            let rows = self.store.list_tokens(p.org_id, only, page).await?;
            Ok(page.finish(rows, |t| t.id))
        }

        /// One token, if the caller may see it.
        pub async fn get_token(&self, p: &Principal, id: Uuid) -> Result<ApiToken> {
            p.require(Scope::AccountRead, Permission::TokensOwn)?;
            let t = self
                .store
                .token_in_org(p.org_id, id)
                .await?
                .ok_or(Error::NotFound)?;
            if t.user_id != p.user.id && !p.role.allows(Permission::TokensManageAll) {
                return Err(Error::NotFound);
            }
            Ok(t)
        }

        /// Revokes a token at once.
        pub async fn revoke_token(&self, p: &Principal, id: Uuid) -> Result<()> {
            p.require(Scope::AccountWrite, Permission::TokensOwn)?;
            let t = self.get_token(p, id).await?;
            if t.revoked_at.is_some() {
                return Ok(());
            }
            self.store.revoke_token(p.org_id, id, self.now()).await?;
            self.auth_cache.clear();
            tracing::info!(token_id = %id, by = %p.user.id, "api token revoked");
            Ok(())
        }
    }

    fn field(f: &str, m: &str) -> crate::error::FieldError {
        crate::error::FieldError {
            field: f.into(),
            message: m.into(),
        }
    }
}

pub use use_cases::{MAX_LIFETIME, NewToken};
