//! The storage contract. `pixeld-store` implements it on SQLite and on PostgreSQL, and one
//! conformance suite runs the same behaviour on both.
//!
//! Methods that must be atomic (consuming a single-use token, advancing the TOTP step, accepting
//! an invite) are single methods here, so each backend can make them one statement or one
//! transaction.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::billing::{Order, OrderStatus};
use crate::invoices::{BillingProfile, Invoice};
use crate::ledger::{
    Applied, Debit, EntryFilter, Finish, Finished, GroupStats, LedgerEntry, Reservation, Totals,
};
use crate::page::PageRequest;
use crate::plans::Subscription;
use crate::roles::Role;

/// What can go wrong in storage, in terms the use cases understand.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist.
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was broken; the text names what (e.g. "email address already registered").
    #[error("{0}")]
    Conflict(String),
    /// The database failed.
    #[error("storage: {0}")]
    Backend(String),
}

/// Result of a storage call.
pub type StoreResult<T> = Result<T, StoreError>;

/// How many jobs of one kind are in one state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobCount {
    /// `render`, `webhook`…
    pub kind: String,
    /// `queued`, `running`, `done`, `failed`.
    pub state: String,
    /// How many.
    pub count: i64,
    /// Of those, queued and due for a while already.
    pub overdue: i64,
}

/// A user account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// UUIDv7.
    pub id: Uuid,
    /// Unique, normalised.
    pub email: String,
    /// Display name.
    pub name: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// When the address was confirmed.
    pub email_verified_at: Option<OffsetDateTime>,
    /// Operator flag: may use the `admin` scope.
    pub is_admin: bool,
    /// Operator flag: may not sign in or use tokens.
    pub disabled_at: Option<OffsetDateTime>,
    /// Confirmed TOTP secret (base32); 2FA is on when set.
    pub totp_secret: Option<String>,
    /// Secret proposed during enrolment, not yet confirmed.
    pub totp_pending_secret: Option<String>,
    /// Last accepted TOTP time step, so it cannot be replayed.
    pub totp_last_step: Option<i64>,
    /// The organisation created for the user at sign-up.
    pub personal_org_id: Uuid,
    /// Creation time.
    pub created_at: OffsetDateTime,
}

/// An organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    /// UUIDv7.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// Whether this is someone's personal organisation.
    pub personal: bool,
    /// Creation time.
    pub created_at: OffsetDateTime,
}

/// A user's membership in an organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// Organisation.
    pub org_id: Uuid,
    /// Member.
    pub user_id: Uuid,
    /// Role in this organisation.
    pub role: Role,
    /// When they joined.
    pub created_at: OffsetDateTime,
}

/// A member, joined with their account's public fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The user's id.
    pub user_id: Uuid,
    /// Their email.
    pub email: String,
    /// Their name.
    pub name: String,
    /// Their role.
    pub role: Role,
    /// When they joined.
    pub joined_at: OffsetDateTime,
}

/// An organisation the user belongs to, with their role there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgWithRole {
    /// The organisation.
    pub org: Org,
    /// The user's role in it.
    pub role: Role,
}

/// A server-side session. The id itself is only held by the browser; storage has its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Public id used to list and revoke sessions (not the cookie value).
    pub id: Uuid,
    /// SHA-256 of the cookie value.
    pub secret_digest: String,
    /// Owner.
    pub user_id: Uuid,
    /// Sign-in time.
    pub created_at: OffsetDateTime,
    /// Last request.
    pub last_seen_at: OffsetDateTime,
    /// Absolute end of the session, however active.
    pub expires_at: OffsetDateTime,
    /// Client IP at sign-in.
    pub ip: Option<String>,
    /// Client user agent at sign-in.
    pub user_agent: Option<String>,
}

/// An API token as stored: never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// UUIDv7.
    pub id: Uuid,
    /// The organisation it acts in.
    pub org_id: Uuid,
    /// The user it acts as.
    pub user_id: Uuid,
    /// A label chosen by the user.
    pub name: String,
    /// The visible prefix, e.g. `pxd_a1B2c3`.
    pub prefix: String,
    /// SHA-256 of the secret, hex.
    pub secret_digest: String,
    /// Space-separated scopes.
    pub scopes: String,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Optional expiry.
    pub expires_at: Option<OffsetDateTime>,
    /// Last successful use.
    pub last_used_at: Option<OffsetDateTime>,
    /// Client IP at last use.
    pub last_used_ip: Option<String>,
    /// When revoked.
    pub revoked_at: Option<OffsetDateTime>,
}

/// What a single-use token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Confirms an email address at sign-up.
    VerifyEmail,
    /// Resets a forgotten password.
    ResetPassword,
    /// Confirms a new email address; `data` holds the new address.
    ChangeEmail,
    /// Second step of a sign-in with 2FA on.
    SignIn2fa,
    /// Cancels a requested account deletion during its grace period.
    CancelDeletion,
}

impl Purpose {
    /// Stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Purpose::VerifyEmail => "verify_email",
            Purpose::ResetPassword => "reset_password",
            Purpose::ChangeEmail => "change_email",
            Purpose::SignIn2fa => "sign_in_2fa",
            Purpose::CancelDeletion => "cancel_deletion",
        }
    }
}

/// A single-use token (email link, pending sign-in), stored by digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneTimeToken {
    /// SHA-256 of the secret.
    pub digest: String,
    /// What it does.
    pub purpose: Purpose,
    /// Whose it is.
    pub user_id: Uuid,
    /// Purpose-specific payload (e.g. the new email address).
    pub data: String,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// After this it is refused.
    pub expires_at: OffsetDateTime,
}

/// An invitation to join an organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    /// UUIDv7.
    pub id: Uuid,
    /// Organisation.
    pub org_id: Uuid,
    /// Invited address.
    pub email: String,
    /// Role on acceptance.
    pub role: Role,
    /// SHA-256 of the link token.
    pub secret_digest: String,
    /// Who invited.
    pub invited_by: Uuid,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// After this it is refused.
    pub expires_at: OffsetDateTime,
    /// When accepted.
    pub accepted_at: Option<OffsetDateTime>,
    /// When withdrawn.
    pub revoked_at: Option<OffsetDateTime>,
}

/// An uploaded image. Its bytes live in object storage under `object_key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    /// UUIDv7.
    pub id: Uuid,
    /// Owning organisation.
    pub org_id: Uuid,
    /// The user who uploaded it.
    pub uploaded_by: Uuid,
    /// The token used, if any.
    pub token_id: Option<Uuid>,
    /// Original file name, if given.
    pub filename: Option<String>,
    /// Where it was fetched from, for `{"url": …}` uploads.
    pub source_url: Option<String>,
    /// Detected format (`jpeg`, `png`, …).
    pub format: String,
    /// Its media type.
    pub mime: String,
    /// Size in bytes.
    pub bytes: i64,
    /// Width as displayed.
    pub width: i32,
    /// Height as displayed.
    pub height: i32,
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
    /// The analysis, as JSON.
    pub analysis: String,
    /// The AI description (alt text and tags), as JSON, once one was asked for.
    pub description: Option<String>,
    /// Object storage key.
    pub object_key: String,
    /// Upload time.
    pub created_at: OffsetDateTime,
    /// When the sweeper deletes it (at most 24 h after upload by default).
    pub expires_at: OffsetDateTime,
}

/// A stored transformed output of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageVariant {
    /// The source image.
    pub image_id: Uuid,
    /// Hash of the source and the resolved options.
    pub cache_key: String,
    /// Output format.
    pub format: String,
    /// Output media type.
    pub mime: String,
    /// Output size.
    pub bytes: i64,
    /// Output width.
    pub width: i32,
    /// Output height.
    pub height: i32,
    /// Object storage key.
    pub object_key: String,
    /// When it was made.
    pub created_at: OffsetDateTime,
}

/// A render template. Its content lives in immutable [`TemplateVersion`]s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRecord {
    /// UUIDv7.
    pub id: Uuid,
    /// Owning organisation.
    pub org_id: Uuid,
    /// Display name.
    pub name: String,
    /// The newest version number (1 for a new template).
    pub latest_version: i32,
    /// Who created it.
    pub created_by: Uuid,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Time of the last saved version or rename.
    pub updated_at: OffsetDateTime,
}

/// One immutable saved state of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateVersion {
    /// The template.
    pub template_id: Uuid,
    /// 1, 2, 3…
    pub version: i32,
    /// The template JSON.
    pub body: String,
    /// Who saved it.
    pub created_by: Uuid,
    /// When.
    pub created_at: OffsetDateTime,
}

/// An organisation's key for signing render URLs. Several may be active during a rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKey {
    /// UUIDv7.
    pub id: Uuid,
    /// Owning organisation.
    pub org_id: Uuid,
    /// The HMAC key (it must be usable to verify, so it is stored as is).
    pub secret: String,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// When it stopped being accepted.
    pub revoked_at: Option<OffsetDateTime>,
}

/// A cached render output (bytes in object storage).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderCacheEntry {
    /// Hash of template version, data, images, fonts and output options.
    pub cache_key: String,
    /// Owning organisation.
    pub org_id: Uuid,
    /// The template rendered.
    pub template_id: Uuid,
    /// Output format (`png`, …).
    pub format: String,
    /// Size in bytes.
    pub bytes: i64,
    /// Width in pixels.
    pub width: i32,
    /// Height in pixels.
    pub height: i32,
    /// Object storage key.
    pub object_key: String,
    /// When it was rendered.
    pub created_at: OffsetDateTime,
}

/// One processing request, for the user's log and for operators. Kept 90 days by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessingLog {
    /// UUIDv7.
    pub id: Uuid,
    /// Organisation.
    pub org_id: Uuid,
    /// Token used, if any.
    pub token_id: Option<Uuid>,
    /// Image, if the request got as far as one.
    pub image_id: Option<Uuid>,
    /// `upload`, `transform`, `optimize`, `analyze`, `delete`.
    pub op: String,
    /// Bytes read.
    pub bytes_in: i64,
    /// Bytes produced.
    pub bytes_out: i64,
    /// Milliseconds spent.
    pub ms: i64,
    /// `ok`, `cached`, or the problem kind.
    pub status: String,
    /// When.
    pub created_at: OffsetDateTime,
}

/// A stored response for an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentResponse {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type` of the body.
    pub content_type: String,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// Outcome of claiming an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// First use: go ahead, then call `idempotency_complete`.
    Fresh,
    /// Same key, same request, finished: replay this.
    Replay(IdempotentResponse),
    /// Same key, same request, still running elsewhere.
    InFlight,
    /// Same key, different request: refuse.
    Mismatch,
}

/// A unit of background work in the shared queue. Workers on any node claim due jobs with a
/// lease; a job whose worker died is claimed again once the lease runs out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// UUIDv7.
    pub id: Uuid,
    /// What to do: `render`, `webhook`.
    pub kind: String,
    /// The organisation the work is for.
    pub org_id: Uuid,
    /// The kind's parameters (JSON).
    pub payload: String,
    /// `queued`, `running`, `done` or `failed`.
    pub state: String,
    /// Claims so far (the running one included).
    pub attempts: i32,
    /// Not before this time.
    pub run_at: OffsetDateTime,
    /// While running: the lease's end.
    pub locked_until: Option<OffsetDateTime>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Enqueued at.
    pub created_at: OffsetDateTime,
    /// Last state change.
    pub updated_at: OffsetDateTime,
}

/// An asynchronous render: what was asked, and how it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderJob {
    /// UUIDv7 (the render id the API answers with).
    pub id: Uuid,
    /// Organisation.
    pub org_id: Uuid,
    /// Token that asked, if any.
    pub token_id: Option<Uuid>,
    /// Template.
    pub template_id: Uuid,
    /// Template version (resolved when the request was accepted).
    pub version: i32,
    /// The request (JSON: data, modifications, output options).
    pub request: String,
    /// Where to POST the outcome.
    pub webhook_url: Option<String>,
    /// The caller's metadata, echoed in the webhook (JSON).
    pub metadata: Option<String>,
    /// `pending`, `completed` or `failed`.
    pub status: String,
    /// Output format.
    pub format: String,
    /// The render cache key of the result.
    pub cache_key: Option<String>,
    /// Result width.
    pub width: Option<i32>,
    /// Result height.
    pub height: Option<i32>,
    /// Result size in bytes.
    pub bytes: Option<i64>,
    /// Served from the render cache.
    pub cached: bool,
    /// Problem slug when failed.
    pub error_type: Option<String>,
    /// Problem detail when failed.
    pub error_detail: Option<String>,
    /// Accepted at.
    pub created_at: OffsetDateTime,
    /// Finished at.
    pub finished_at: Option<OffsetDateTime>,
    /// The CSV batch it is a row of, if any.
    pub batch_id: Option<Uuid>,
}

/// One webhook event for one URL, with its delivery state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    /// UUIDv7 (also the event id receivers de-duplicate by).
    pub id: Uuid,
    /// Organisation.
    pub org_id: Uuid,
    /// `render.completed`, `render.failed`.
    pub event: String,
    /// Destination.
    pub url: String,
    /// The JSON body sent.
    pub payload: String,
    /// `pending`, `delivered` or `failed` (gave up).
    pub status: String,
    /// Attempts made.
    pub attempts: i32,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<OffsetDateTime>,
    /// HTTP status of the last attempt, if it got an answer.
    pub last_status: Option<i32>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Created at.
    pub created_at: OffsetDateTime,
    /// When a 2xx answer came.
    pub delivered_at: Option<OffsetDateTime>,
}

/// One try at delivering a webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookAttempt {
    /// UUIDv7.
    pub id: Uuid,
    /// The delivery.
    pub delivery_id: Uuid,
    /// 1, 2, 3…
    pub attempt: i32,
    /// When it was made.
    pub at: OffsetDateTime,
    /// HTTP status, if the receiver answered.
    pub status_code: Option<i32>,
    /// Connection or timeout error, or why a status counts as failure.
    pub error: Option<String>,
    /// The start of the receiver's answer (at most 1 KiB), for debugging.
    pub response_excerpt: Option<String>,
    /// Milliseconds the attempt took.
    pub ms: i64,
}

/// A font file an organisation uploaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FontRecord {
    /// UUIDv7.
    pub id: Uuid,
    /// Owning organisation.
    pub org_id: Uuid,
    /// Family names the file provides (JSON array).
    pub families: String,
    /// The uploaded file's name, if given.
    pub file_name: Option<String>,
    /// `ttf`, `otf`, `woff` or `woff2`.
    pub format: String,
    /// Size in bytes.
    pub bytes: i64,
    /// SHA-256 of the file, hex (one upload per file and organisation).
    pub sha256: String,
    /// Where the file is.
    pub object_key: String,
    /// Who uploaded it.
    pub created_by: Uuid,
    /// When.
    pub created_at: OffsetDateTime,
}

/// Everything pixeld keeps in its database (for the foundation: accounts, sessions, tokens,
/// organisations, idempotency).
#[async_trait]
pub trait Store: PrivacyStore + SupportStore + Send + Sync + 'static {
    /// Which backend this is (`sqlite` or `postgres`), for logs and health output.
    fn backend(&self) -> &'static str;
    /// Checks the connection (used by `/readyz`).
    async fn ping(&self) -> StoreResult<()>;

    // users
    /// Creates a user with their personal organisation and owner membership, atomically.
    /// Fails with `Conflict` if the email is taken.
    async fn create_user(&self, user: &User, personal_org: &Org) -> StoreResult<()>;
    /// Finds a user by id.
    async fn user_by_id(&self, id: Uuid) -> StoreResult<Option<User>>;
    /// Finds a user by email (exact, normalised).
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>>;
    /// Lists users by id.
    async fn list_users(&self, page: PageRequest) -> StoreResult<Vec<User>>;
    /// How many accounts there are, and how many of them are disabled.
    async fn count_users(&self) -> StoreResult<(i64, i64)>;
    /// Marks the email verified.
    async fn set_email_verified(&self, user_id: Uuid, at: OffsetDateTime) -> StoreResult<()>;
    /// Replaces the password hash.
    async fn set_password_hash(&self, user_id: Uuid, hash: &str) -> StoreResult<()>;
    /// Changes the email (and marks it verified at `verified_at`). `Conflict` if taken.
    async fn set_email(
        &self,
        user_id: Uuid,
        email: &str,
        verified_at: OffsetDateTime,
    ) -> StoreResult<()>;
    /// Sets or clears the instance-admin flag.
    async fn set_admin(&self, user_id: Uuid, admin: bool) -> StoreResult<()>;
    /// Disables (Some) or re-enables (None) an account.
    async fn set_disabled(&self, user_id: Uuid, at: Option<OffsetDateTime>) -> StoreResult<()>;
    /// Stores the secret proposed during TOTP enrolment.
    async fn set_totp_pending(&self, user_id: Uuid, secret: Option<&str>) -> StoreResult<()>;
    /// Turns 2FA on with `secret` (clearing the pending one) and records `step` as used, and
    /// replaces the recovery codes, atomically.
    async fn enable_totp(
        &self,
        user_id: Uuid,
        secret: &str,
        step: i64,
        recovery_digests: &[String],
    ) -> StoreResult<()>;
    /// Turns 2FA off and deletes the recovery codes.
    async fn disable_totp(&self, user_id: Uuid) -> StoreResult<()>;
    /// Records `step` as used if it is later than the last used one; false if it was not
    /// (a replay). Atomic.
    async fn advance_totp_step(&self, user_id: Uuid, step: i64) -> StoreResult<bool>;
    /// Replaces the recovery codes.
    async fn replace_recovery_codes(&self, user_id: Uuid, digests: &[String]) -> StoreResult<()>;
    /// Marks a recovery code used; false if unknown or already used. Atomic.
    async fn use_recovery_code(
        &self,
        user_id: Uuid,
        digest: &str,
        at: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// How many unused recovery codes remain.
    async fn recovery_codes_left(&self, user_id: Uuid) -> StoreResult<i64>;

    // single-use tokens
    /// Stores a single-use token.
    async fn create_one_time_token(&self, t: &OneTimeToken) -> StoreResult<()>;
    /// Consumes a token if it exists, has this purpose, is unused and unexpired. Atomic: two
    /// concurrent consumers cannot both succeed.
    async fn consume_one_time_token(
        &self,
        digest: &str,
        purpose: Purpose,
        now: OffsetDateTime,
    ) -> StoreResult<Option<OneTimeToken>>;
    /// Invalidates every unused token of a purpose for a user (e.g. older reset links).
    async fn invalidate_one_time_tokens(
        &self,
        user_id: Uuid,
        purpose: Purpose,
        now: OffsetDateTime,
    ) -> StoreResult<()>;

    // sessions
    /// Stores a new session.
    async fn create_session(&self, s: &Session) -> StoreResult<()>;
    /// Finds a session by the digest of its cookie value.
    async fn session_by_digest(&self, digest: &str) -> StoreResult<Option<Session>>;
    /// Records activity.
    async fn touch_session(&self, id: Uuid, at: OffsetDateTime) -> StoreResult<()>;
    /// Lists a user's sessions, newest first.
    async fn list_sessions(&self, user_id: Uuid) -> StoreResult<Vec<Session>>;
    /// Deletes one of a user's sessions; false if there was none.
    async fn delete_session(&self, user_id: Uuid, id: Uuid) -> StoreResult<bool>;
    /// Deletes all of a user's sessions but `keep`; returns how many.
    async fn delete_other_sessions(&self, user_id: Uuid, keep: Option<Uuid>) -> StoreResult<u64>;

    // api tokens
    /// Stores a new token.
    async fn create_token(&self, t: &ApiToken) -> StoreResult<()>;
    /// Finds a token by the digest of its secret.
    async fn token_by_digest(&self, digest: &str) -> StoreResult<Option<ApiToken>>;
    /// Finds a token with its user and the user's role in the token's organisation (`None` if
    /// no longer a member), in one round trip: this is the hot path of every API call.
    async fn token_with_owner(
        &self,
        digest: &str,
    ) -> StoreResult<Option<(ApiToken, User, Option<Role>)>>;
    /// Lists an organisation's tokens, optionally only one user's, by id.
    async fn list_tokens(
        &self,
        org_id: Uuid,
        user_id: Option<Uuid>,
        page: PageRequest,
    ) -> StoreResult<Vec<ApiToken>>;
    /// Finds one token of an organisation.
    async fn token_in_org(&self, org_id: Uuid, id: Uuid) -> StoreResult<Option<ApiToken>>;
    /// Revokes a token; false if it was not found or already revoked.
    async fn revoke_token(&self, org_id: Uuid, id: Uuid, at: OffsetDateTime) -> StoreResult<bool>;
    /// Records a use.
    async fn touch_token(&self, id: Uuid, at: OffsetDateTime, ip: Option<&str>) -> StoreResult<()>;

    // organisations
    /// Creates an organisation with `owner` as its owner, atomically.
    async fn create_org(&self, org: &Org, owner: Uuid) -> StoreResult<()>;
    /// Finds an organisation.
    async fn org_by_id(&self, id: Uuid) -> StoreResult<Option<Org>>;
    /// Renames an organisation.
    async fn rename_org(&self, id: Uuid, name: &str) -> StoreResult<()>;
    /// The organisations a user belongs to, by id.
    async fn orgs_of_user(&self, user_id: Uuid, page: PageRequest)
    -> StoreResult<Vec<OrgWithRole>>;
    /// A user's membership in an organisation.
    async fn membership(&self, org_id: Uuid, user_id: Uuid) -> StoreResult<Option<Membership>>;
    /// Members of an organisation, by user id.
    async fn list_members(&self, org_id: Uuid, page: PageRequest) -> StoreResult<Vec<Member>>;
    /// Changes a member's role; `NotFound` if not a member.
    async fn set_member_role(&self, org_id: Uuid, user_id: Uuid, role: Role) -> StoreResult<()>;
    /// Removes a member and revokes their tokens in that organisation; false if not a member.
    async fn remove_member(
        &self,
        org_id: Uuid,
        user_id: Uuid,
        at: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// How many owners an organisation has.
    async fn count_owners(&self, org_id: Uuid) -> StoreResult<i64>;

    // invites
    /// Stores an invite.
    async fn create_invite(&self, i: &Invite) -> StoreResult<()>;
    /// Open (not accepted, not revoked) invites of an organisation, by id.
    async fn list_invites(&self, org_id: Uuid, page: PageRequest) -> StoreResult<Vec<Invite>>;
    /// Finds an invite by the digest of its link token.
    async fn invite_by_digest(&self, digest: &str) -> StoreResult<Option<Invite>>;
    /// Marks the invite accepted and adds the membership (keeping a higher existing role out of
    /// scope: an existing member is left as is). False if it was no longer open. Atomic.
    async fn accept_invite(
        &self,
        invite_id: Uuid,
        user_id: Uuid,
        at: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// Withdraws an open invite; false if not found or not open.
    async fn revoke_invite(&self, org_id: Uuid, id: Uuid, at: OffsetDateTime) -> StoreResult<bool>;

    // images
    /// Stores an uploaded image's row.
    async fn create_image(&self, i: &ImageRecord) -> StoreResult<()>;
    /// One image of an organisation.
    async fn image_in_org(&self, org_id: Uuid, id: Uuid) -> StoreResult<Option<ImageRecord>>;
    /// Stores an image's AI description (JSON); false when the image is gone.
    async fn set_image_description(
        &self,
        org_id: Uuid,
        id: Uuid,
        description: &str,
    ) -> StoreResult<bool>;
    /// An organisation's images, by id.
    async fn list_images(&self, org_id: Uuid, page: PageRequest) -> StoreResult<Vec<ImageRecord>>;
    /// Deletes an image row and its variant rows; returns them (for object deletion), or `None`
    /// if there was no such image in the organisation.
    async fn delete_image(
        &self,
        org_id: Uuid,
        id: Uuid,
    ) -> StoreResult<Option<(ImageRecord, Vec<ImageVariant>)>>;
    /// Images whose `expires_at` is at or before `now`, oldest first, at most `limit`, with
    /// their variants.
    async fn expired_images(
        &self,
        now: OffsetDateTime,
        limit: i64,
    ) -> StoreResult<Vec<(ImageRecord, Vec<ImageVariant>)>>;
    /// Stores (or replaces) a variant row.
    async fn put_variant(&self, v: &ImageVariant) -> StoreResult<()>;
    /// A variant by cache key.
    async fn variant(&self, image_id: Uuid, cache_key: &str) -> StoreResult<Option<ImageVariant>>;

    // templates
    /// Stores a new template and its first version, atomically.
    async fn create_template(&self, t: &TemplateRecord, v: &TemplateVersion) -> StoreResult<()>;
    /// One template of an organisation.
    async fn template_in_org(&self, org_id: Uuid, id: Uuid) -> StoreResult<Option<TemplateRecord>>;
    /// A template by id, whatever its organisation (for signed URLs, which carry no credential).
    async fn template_by_id(&self, id: Uuid) -> StoreResult<Option<TemplateRecord>>;
    /// An organisation's templates, by id.
    async fn list_templates(
        &self,
        org_id: Uuid,
        page: PageRequest,
    ) -> StoreResult<Vec<TemplateRecord>>;
    /// Saves version `v.version`, which must be `latest_version + 1`, and renames if `name` is
    /// given; false when another save got there first (the caller reloads and retries).
    async fn add_template_version(
        &self,
        org_id: Uuid,
        v: &TemplateVersion,
        name: Option<&str>,
    ) -> StoreResult<bool>;
    /// One version of a template.
    async fn template_version(
        &self,
        template_id: Uuid,
        version: i32,
    ) -> StoreResult<Option<TemplateVersion>>;
    /// A template's versions, newest first, paged by version number.
    async fn list_template_versions(
        &self,
        template_id: Uuid,
        before_version: Option<i32>,
        limit: i64,
    ) -> StoreResult<Vec<TemplateVersion>>;
    /// Deletes a template, its versions and its render cache rows; returns the cache rows (for
    /// object deletion), or `None` if there was no such template in the organisation.
    async fn delete_template(
        &self,
        org_id: Uuid,
        id: Uuid,
    ) -> StoreResult<Option<Vec<RenderCacheEntry>>>;

    // signing keys
    /// Stores a new signing key.
    async fn create_signing_key(&self, k: &SigningKey) -> StoreResult<()>;
    /// An organisation's signing keys, newest first (revoked ones included).
    async fn list_signing_keys(&self, org_id: Uuid) -> StoreResult<Vec<SigningKey>>;
    /// Revokes a key; false if not found or already revoked.
    async fn revoke_signing_key(
        &self,
        org_id: Uuid,
        id: Uuid,
        at: OffsetDateTime,
    ) -> StoreResult<bool>;

    // render cache
    /// Records a cached render (replacing one with the same key).
    async fn put_render_cache(&self, e: &RenderCacheEntry) -> StoreResult<()>;
    /// A cached render by key.
    async fn render_cache(&self, cache_key: &str) -> StoreResult<Option<RenderCacheEntry>>;
    /// Cache rows created before `before`, oldest first, at most `limit`.
    async fn stale_render_cache(
        &self,
        before: OffsetDateTime,
        limit: i64,
    ) -> StoreResult<Vec<RenderCacheEntry>>;
    /// Deletes cache rows by key; returns how many.
    async fn delete_render_cache(&self, keys: &[String]) -> StoreResult<u64>;

    // processing logs
    /// Appends a processing log row.
    async fn log_processing(&self, l: &ProcessingLog) -> StoreResult<()>;
    /// An organisation's processing log, newest first by id page.
    async fn list_processing_logs(
        &self,
        org_id: Uuid,
        page: PageRequest,
    ) -> StoreResult<Vec<ProcessingLog>>;
    /// Deletes processing log rows created before `before`; returns how many.
    async fn purge_processing_logs(&self, before: OffsetDateTime) -> StoreResult<u64>;

    // jobs
    /// Adds a job to the queue.
    async fn enqueue_job(&self, job: &Job) -> StoreResult<()>;
    /// Claims the oldest due job (queued and `run_at <= now`, or running with an expired
    /// lease): marks it running until `lease_until` and counts the attempt. Concurrent callers
    /// never get the same job.
    async fn claim_job(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> StoreResult<Option<Job>>;
    /// Ends a running job: `done` or `failed`, with an error for `failed`.
    async fn finish_job(
        &self,
        id: Uuid,
        state: &str,
        error: Option<&str>,
        at: OffsetDateTime,
    ) -> StoreResult<()>;
    /// Puts a running job back in the queue, due at `run_at`.
    async fn retry_job(
        &self,
        id: Uuid,
        run_at: OffsetDateTime,
        error: &str,
        at: OffsetDateTime,
    ) -> StoreResult<()>;
    /// A job by id.
    async fn job(&self, id: Uuid) -> StoreResult<Option<Job>>;
    /// Deletes finished (done or failed) jobs last changed before `before`; returns how many.
    async fn purge_jobs(&self, before: OffsetDateTime) -> StoreResult<u64>;
    /// Jobs per kind and state, with how many queued ones were due before `overdue_before`
    /// (a backlog the workers are not keeping up with), by kind then state.
    async fn job_counts(&self, overdue_before: OffsetDateTime) -> StoreResult<Vec<JobCount>>;

    // asynchronous renders
    /// Records an accepted render and queues its job, atomically.
    async fn create_render_job(&self, r: &RenderJob, job: &Job) -> StoreResult<()>;
    /// A render job of an organisation.
    async fn render_job(&self, org_id: Uuid, id: Uuid) -> StoreResult<Option<RenderJob>>;
    /// The render jobs of one batch, in the order they were accepted (at most `limit`).
    async fn render_batch(
        &self,
        org_id: Uuid,
        batch_id: Uuid,
        limit: i64,
    ) -> StoreResult<Vec<RenderJob>>;
    /// An organisation's render jobs by id page (oldest first).
    async fn list_render_jobs(
        &self,
        org_id: Uuid,
        page: PageRequest,
    ) -> StoreResult<Vec<RenderJob>>;
    /// Stores a render job's outcome (status, result or error, finish time).
    async fn finish_render_job(&self, r: &RenderJob) -> StoreResult<()>;
    /// Deletes render jobs created before `before`; returns how many.
    async fn purge_render_jobs(&self, before: OffsetDateTime) -> StoreResult<u64>;

    // webhooks
    /// Stores a new webhook signing secret.
    async fn create_webhook_secret(&self, k: &SigningKey) -> StoreResult<()>;
    /// An organisation's webhook secrets, newest first (revoked ones included).
    async fn list_webhook_secrets(&self, org_id: Uuid) -> StoreResult<Vec<SigningKey>>;
    /// Revokes a webhook secret; false if not found or already revoked.
    async fn revoke_webhook_secret(
        &self,
        org_id: Uuid,
        id: Uuid,
        at: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// Records a delivery and queues its job, atomically.
    async fn create_webhook_delivery(&self, d: &WebhookDelivery, job: &Job) -> StoreResult<()>;
    /// A delivery by id (`org_id` limits it to one organisation).
    async fn webhook_delivery(
        &self,
        org_id: Option<Uuid>,
        id: Uuid,
    ) -> StoreResult<Option<WebhookDelivery>>;
    /// An organisation's deliveries by id page (oldest first).
    async fn list_webhook_deliveries(
        &self,
        org_id: Uuid,
        page: PageRequest,
    ) -> StoreResult<Vec<WebhookDelivery>>;
    /// Records an attempt and the delivery's new state, atomically.
    async fn record_webhook_attempt(
        &self,
        d: &WebhookDelivery,
        a: &WebhookAttempt,
    ) -> StoreResult<()>;
    /// A delivery's attempts, first first.
    async fn webhook_attempts(&self, delivery_id: Uuid) -> StoreResult<Vec<WebhookAttempt>>;
    /// Marks a delivery pending again and queues a job for it, atomically (a manual redelivery).
    async fn requeue_webhook_delivery(&self, d: &WebhookDelivery, job: &Job) -> StoreResult<()>;
    /// Deletes deliveries (and their attempts) created before `before`; returns how many.
    async fn purge_webhook_deliveries(&self, before: OffsetDateTime) -> StoreResult<u64>;

    // fonts
    /// Records an uploaded font (`Conflict` if the organisation has the same file).
    async fn create_font(&self, f: &FontRecord) -> StoreResult<()>;
    /// An organisation's fonts, oldest first.
    async fn list_fonts(&self, org_id: Uuid) -> StoreResult<Vec<FontRecord>>;
    /// Deletes a font row; returns it if it existed.
    async fn delete_font(&self, org_id: Uuid, id: Uuid) -> StoreResult<Option<FontRecord>>;

    // credit ledger (see `crate::ledger` for the rules every backend implements)
    /// Adds credits (a grant or a positive adjustment, `e.amount > 0`) as a new lot expiring at
    /// `e.expires_at`. A business key seen before replays the first entry.
    async fn ledger_credit(&self, e: &LedgerEntry) -> StoreResult<Applied<LedgerEntry>>;
    /// Takes credits outside a reservation (a negative adjustment, `e.amount < 0`), from the
    /// lots that expire soonest; refused whole when the balance is smaller.
    async fn ledger_debit(
        &self,
        e: &LedgerEntry,
        now: OffsetDateTime,
    ) -> StoreResult<Debit<LedgerEntry>>;
    /// Holds `r.amount` credits for work and writes its `reserve` entry `e`; refused whole when
    /// the balance is smaller. Lots due to expire by `now` expire first.
    async fn ledger_reserve(
        &self,
        r: &Reservation,
        e: &LedgerEntry,
        now: OffsetDateTime,
    ) -> StoreResult<Debit<Reservation>>;
    /// Ends a reservation: settle, release or refund, writing entry `e` (its id, key and time;
    /// the amount follows from the rules).
    async fn ledger_finish(
        &self,
        org_id: Uuid,
        reservation_id: Uuid,
        how: Finish,
        e: &LedgerEntry,
        now: OffsetDateTime,
    ) -> StoreResult<Finished>;
    /// Expires the unspent credits of lots due by `now` (at most `limit` lots); returns how
    /// many lots expired.
    async fn ledger_expire(&self, now: OffsetDateTime, limit: i64) -> StoreResult<u64>;
    /// The cached balance (zero for an organisation that never had credits).
    async fn ledger_balance(&self, org_id: Uuid) -> StoreResult<i64>;
    /// Entries of an organisation, oldest first.
    async fn ledger_entries(
        &self,
        org_id: Uuid,
        filter: &EntryFilter,
        page: PageRequest,
    ) -> StoreResult<Vec<LedgerEntry>>;
    /// The entry with this business key.
    async fn ledger_entry_by_key(
        &self,
        org_id: Uuid,
        key: &str,
    ) -> StoreResult<Option<LedgerEntry>>;
    /// A reservation of an organisation.
    async fn reservation(&self, org_id: Uuid, id: Uuid) -> StoreResult<Option<Reservation>>;
    /// Reservations still held after their `expires_at` (abandoned by a process that died).
    async fn stale_reservations(
        &self,
        now: OffsetDateTime,
        limit: i64,
    ) -> StoreResult<Vec<Reservation>>;
    /// The sums a consistent ledger agrees on, for checks.
    async fn ledger_totals(&self, org_id: Uuid) -> StoreResult<Totals>;
    /// How this process's holds and settles shared transactions: concurrent ones of one
    /// organisation are written together, one commit per group.
    fn ledger_group_stats(&self) -> GroupStats;

    // payments
    /// Writes a new order.
    async fn create_order(&self, o: &Order) -> StoreResult<()>;
    /// Records the provider's checkout id (or the failure to open one).
    async fn set_order_checkout(
        &self,
        id: Uuid,
        provider_ref: Option<&str>,
        status: OrderStatus,
        at: OffsetDateTime,
    ) -> StoreResult<()>;
    /// An order of an organisation.
    async fn order_in_org(&self, org_id: Uuid, id: Uuid) -> StoreResult<Option<Order>>;
    /// An order by id (webhooks carry it in metadata).
    async fn order_by_id(&self, id: Uuid) -> StoreResult<Option<Order>>;
    /// An order by the provider's checkout id.
    async fn order_by_provider_ref(&self, provider: &str, r: &str) -> StoreResult<Option<Order>>;
    /// A paid order by the provider's payment id.
    async fn order_by_payment_ref(&self, provider: &str, r: &str) -> StoreResult<Option<Order>>;
    /// Marks an open order paid (a paid one stays as it is); returns whether it changed.
    async fn mark_order_paid(
        &self,
        id: Uuid,
        payment_ref: Option<&str>,
        customer_ref: Option<&str>,
        at: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// Moves an order's refunded total from `from` to `to` and sets its status, only if it is
    /// still `from`; returns whether it did (a concurrent refund claimed it first otherwise).
    async fn claim_order_refund(
        &self,
        id: Uuid,
        from: i64,
        to: i64,
        status: OrderStatus,
        at: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// Orders of an organisation, oldest first.
    async fn list_orders(&self, org_id: Uuid, page: PageRequest) -> StoreResult<Vec<Order>>;
    /// The provider customer id of the organisation's latest paid order with that provider.
    async fn latest_customer_ref(
        &self,
        org_id: Uuid,
        provider: &str,
    ) -> StoreResult<Option<String>>;
    /// The outcome recorded for a provider event, if it was handled before.
    async fn payment_event(&self, provider: &str, event_id: &str) -> StoreResult<Option<String>>;
    /// Keeps an organisation's financial records but removes who they were about: the billing
    /// profile, the buyer printed on invoices (replaced by `buyer`), the member and token behind
    /// orders, entries and reservations, and the provider customer ids. Returns rows changed.
    async fn anonymise_financial_records(
        &self,
        org_id: Uuid,
        buyer: &crate::invoices::Party,
    ) -> StoreResult<u64>;
    /// Deletes provider events received before `before` (they only serve de-duplication).
    async fn purge_payment_events(&self, before: OffsetDateTime) -> StoreResult<u64>;
    /// Deletes orders and invoices made before `before` (past the 7 years financial records
    /// are kept); returns how many rows.
    async fn purge_financial_records(&self, before: OffsetDateTime) -> StoreResult<u64>;
    /// Records a handled provider event (a second record of the same event is ignored).
    async fn record_payment_event(
        &self,
        provider: &str,
        event_id: &str,
        event_type: &str,
        outcome: &str,
        at: OffsetDateTime,
    ) -> StoreResult<()>;

    // invoices
    /// An organisation's billing details.
    async fn billing_profile(&self, org_id: Uuid) -> StoreResult<Option<BillingProfile>>;
    /// Sets them.
    async fn put_billing_profile(&self, b: &BillingProfile) -> StoreResult<()>;
    /// Writes the invoice of an order with the organisation's next number (printed
    /// `{prefix}-{first 8 hex digits of the org id}-{number:06}`); an order's second invoice
    /// replays its first.
    async fn create_invoice(&self, inv: &Invoice, prefix: &str) -> StoreResult<Applied<Invoice>>;
    /// An invoice of an organisation.
    async fn invoice_in_org(&self, org_id: Uuid, id: Uuid) -> StoreResult<Option<Invoice>>;
    /// Invoices of an organisation, oldest first.
    async fn list_invoices(&self, org_id: Uuid, page: PageRequest) -> StoreResult<Vec<Invoice>>;

    // subscriptions
    /// Writes or updates a subscription by its provider id (the first write keeps the id and
    /// organisation; later ones change plan, status, period and cancellation).
    async fn upsert_subscription(&self, s: &Subscription) -> StoreResult<()>;
    /// A subscription by the provider's id.
    async fn subscription_by_ref(
        &self,
        provider: &str,
        r: &str,
    ) -> StoreResult<Option<Subscription>>;
    /// The organisation's live subscription (active, trialing or past due), newest first.
    async fn live_subscription(&self, org_id: Uuid) -> StoreResult<Option<Subscription>>;

    // idempotency
    /// Claims `(caller, key)` for a request with digest `request_digest`.
    async fn idempotency_claim(
        &self,
        caller: &str,
        key: &str,
        request_digest: &str,
        now: OffsetDateTime,
    ) -> StoreResult<IdempotencyClaim>;
    /// Stores the response for a claimed key.
    async fn idempotency_complete(
        &self,
        caller: &str,
        key: &str,
        response: &IdempotentResponse,
    ) -> StoreResult<()>;
    /// Releases a claim whose request failed before producing a response worth replaying.
    async fn idempotency_release(&self, caller: &str, key: &str) -> StoreResult<()>;
    /// Deletes keys created before `before`; returns how many.
    async fn idempotency_purge(&self, before: OffsetDateTime) -> StoreResult<u64>;
}

/// The request log, retention and the data-subject rights (`pixeld-store`'s `privacy.rs`).
#[async_trait]
pub trait PrivacyStore: Send + Sync + 'static {
    /// Writes a batch of request-log rows and adds their totals, in one transaction.
    async fn insert_usage(
        &self,
        rows: &[crate::usage::UsageEvent],
        daily: &[crate::usage::DailyDelta],
        latency: &[crate::usage::LatencyCount],
    ) -> StoreResult<()>;
    /// An organisation's request-log rows by id, filtered.
    async fn usage_events(
        &self,
        org_id: Uuid,
        filter: &crate::usage::UsageFilter,
        page: PageRequest,
    ) -> StoreResult<Vec<crate::usage::UsageEvent>>;
    /// An organisation's daily totals, `from` to `to` inclusive, by day then route.
    async fn usage_daily(
        &self,
        org_id: Uuid,
        from: time::Date,
        to: time::Date,
    ) -> StoreResult<Vec<crate::usage::DailyUsage>>;
    /// Latency histogram counts of every route, `from` to `to` inclusive.
    async fn route_latency(
        &self,
        from: time::Date,
        to: time::Date,
    ) -> StoreResult<Vec<crate::usage::LatencyCount>>;
    /// Clears the full IP address of rows older than `before` (the network stays).
    async fn truncate_usage_ips(&self, before: OffsetDateTime) -> StoreResult<u64>;
    /// Deletes request-log rows older than `before`.
    async fn purge_usage(&self, before: OffsetDateTime) -> StoreResult<u64>;
    /// Deletes sessions that have ended: past `now`, or unused since `idle_before`.
    async fn purge_ended_sessions(
        &self,
        now: OffsetDateTime,
        idle_before: OffsetDateTime,
    ) -> StoreResult<u64>;
    /// Deletes emailed-link tokens that expired before `before`.
    async fn purge_one_time_tokens(&self, before: OffsetDateTime) -> StoreResult<u64>;

    /// Records a requested deletion and its erasure request; `Conflict` while one is pending.
    async fn create_account_deletion(
        &self,
        d: &crate::rights::AccountDeletion,
        r: &crate::rights::DataRequest,
    ) -> StoreResult<()>;
    /// The user's latest deletion request.
    async fn account_deletion(
        &self,
        user_id: Uuid,
    ) -> StoreResult<Option<crate::rights::AccountDeletion>>;
    /// Cancels a pending deletion (and its request); `false` when none was pending.
    async fn cancel_account_deletion(&self, user_id: Uuid, at: OffsetDateTime)
    -> StoreResult<bool>;
    /// Pending deletions whose grace period ended by `now`.
    async fn due_account_deletions(
        &self,
        now: OffsetDateTime,
        limit: i64,
    ) -> StoreResult<Vec<crate::rights::AccountDeletion>>;
    /// Revokes every live API token of the user, in every organisation.
    async fn revoke_user_tokens(&self, user_id: Uuid, at: OffsetDateTime) -> StoreResult<u64>;
    /// Organisations (other than personal ones) where the user is the only owner and others
    /// are members.
    async fn orgs_blocking_deletion(&self, user_id: Uuid) -> StoreResult<Vec<Org>>;
    /// Organisations the user is the only member of (their personal one included).
    async fn sole_member_orgs(&self, user_id: Uuid) -> StoreResult<Vec<Uuid>>;
    /// Object-store keys of everything an organisation holds (uploads, outputs, renders, fonts).
    async fn org_object_keys(&self, org_id: Uuid) -> StoreResult<Vec<String>>;
    /// In one transaction: deletes the user (sessions, tokens, memberships, codes and links go
    /// with them), the invitations they sent or received, their request-log rows, and the
    /// organisations `orgs` with all their rows; marks the deletion purged and its request done.
    /// Returns the rows removed.
    async fn erase_account(
        &self,
        user_id: Uuid,
        orgs: &[Uuid],
        at: OffsetDateTime,
    ) -> StoreResult<u64>;
    /// Records a data-subject request.
    async fn create_data_request(&self, r: &crate::rights::DataRequest) -> StoreResult<()>;
    /// Marks an open request completed.
    async fn complete_data_request(&self, id: Uuid, at: OffsetDateTime) -> StoreResult<bool>;
    /// A user's requests, oldest first.
    async fn data_requests_of(&self, user_id: Uuid)
    -> StoreResult<Vec<crate::rights::DataRequest>>;
    /// Open requests of everyone, by id (requested first, due first).
    async fn open_data_requests(
        &self,
        page: PageRequest,
    ) -> StoreResult<Vec<crate::rights::DataRequest>>;

    /// Appends a consent decision.
    async fn insert_consent(&self, c: &crate::consent::ConsentRecord) -> StoreResult<()>;
    /// A user's consent decisions, oldest first.
    async fn consents_of(&self, user_id: Uuid) -> StoreResult<Vec<crate::consent::ConsentRecord>>;
    /// A user's restriction and objections (none recorded: nothing restricted).
    async fn processing_choices(
        &self,
        user_id: Uuid,
    ) -> StoreResult<crate::consent::ProcessingChoices>;
    /// Replaces a user's restriction and objections.
    async fn set_processing_choices(
        &self,
        user_id: Uuid,
        c: &crate::consent::ProcessingChoices,
    ) -> StoreResult<()>;
    /// A user's profile, if ever saved.
    async fn profile(&self, user_id: Uuid) -> StoreResult<Option<crate::consent::Profile>>;
    /// In one transaction: renames the user (when `name` is given), saves the profile and
    /// appends the audit row.
    async fn update_profile(
        &self,
        user_id: Uuid,
        name: Option<&str>,
        profile: &crate::consent::Profile,
        change: &crate::consent::ProfileChange,
    ) -> StoreResult<()>;
    /// A user's audited profile changes, oldest first.
    async fn profile_changes(
        &self,
        user_id: Uuid,
    ) -> StoreResult<Vec<crate::consent::ProfileChange>>;
    /// The instance key called `name`, created from `candidate` if there is none yet (every
    /// node then agrees on the first one written).
    async fn instance_key(
        &self,
        name: &str,
        candidate: &str,
        now: OffsetDateTime,
    ) -> StoreResult<String>;

    /// Records a new export.
    async fn create_export(&self, e: &crate::export::Export) -> StoreResult<()>;
    /// One export.
    async fn export_by_id(&self, id: Uuid) -> StoreResult<Option<crate::export::Export>>;
    /// A user's exports, oldest first.
    async fn exports_of(&self, user_id: Uuid) -> StoreResult<Vec<crate::export::Export>>;
    /// Marks an export built (or failed).
    async fn finish_export(
        &self,
        id: Uuid,
        status: crate::export::ExportStatus,
        object_key: Option<&str>,
        bytes: Option<i64>,
        error: Option<&str>,
        at: OffsetDateTime,
    ) -> StoreResult<()>;
    /// Exports made before `before`.
    async fn exports_before(
        &self,
        before: OffsetDateTime,
        limit: i64,
    ) -> StoreResult<Vec<crate::export::Export>>;
    /// Deletes an export's row.
    async fn delete_export(&self, id: Uuid) -> StoreResult<bool>;
    /// A user's request-log rows in every organisation, oldest first.
    async fn usage_of_user(
        &self,
        user_id: Uuid,
        limit: i64,
    ) -> StoreResult<Vec<crate::usage::UsageEvent>>;
    /// An organisation's cached renders, oldest first.
    async fn render_cache_of(&self, org_id: Uuid, limit: i64)
    -> StoreResult<Vec<RenderCacheEntry>>;

    /// The analytics salt of `day`, created from `candidate` if that day has none yet.
    async fn analytics_salt(
        &self,
        day: &str,
        candidate: &str,
        now: OffsetDateTime,
    ) -> StoreResult<String>;
    /// Deletes salts created before `before`.
    async fn purge_analytics_salts(&self, before: OffsetDateTime) -> StoreResult<u64>;
    /// Stores one analytics event.
    async fn insert_analytics_event(&self, e: &crate::analytics::AnalyticsEvent)
    -> StoreResult<()>;
    /// The raw events of `site` on days `from` to `to` (inclusive, `YYYY-MM-DD`).
    async fn analytics_events(
        &self,
        site: &str,
        from: &str,
        to: &str,
    ) -> StoreResult<Vec<crate::analytics::AnalyticsEvent>>;
    /// Deletes raw events older than `before`.
    async fn purge_analytics_events(&self, before: OffsetDateTime) -> StoreResult<u64>;
}

/// Support requests and their messages (`crate::support`).
#[async_trait]
pub trait SupportStore: Send + Sync + 'static {
    /// Inserts a request with its first message, unless its user already has `max_open`
    /// requests that are not closed (then `false`, nothing written).
    async fn create_ticket(
        &self,
        t: &crate::support::Ticket,
        first: &crate::support::TicketMessage,
        max_open: i64,
    ) -> StoreResult<bool>;
    /// A request by id.
    async fn ticket(&self, id: Uuid) -> StoreResult<Option<crate::support::Ticket>>;
    /// A user's requests, newest first (`page.after` is the last id of the previous page).
    async fn tickets_of(
        &self,
        user_id: Uuid,
        page: PageRequest,
    ) -> StoreResult<Vec<crate::support::Ticket>>;
    /// A request's messages, oldest first.
    async fn ticket_messages(
        &self,
        ticket_id: Uuid,
    ) -> StoreResult<Vec<crate::support::TicketMessage>>;
    /// Appends a message and sets the request's status (clearing `closed_at`), unless the
    /// request already holds `max_messages` (then `false`, nothing written).
    async fn add_ticket_message(
        &self,
        m: &crate::support::TicketMessage,
        status: crate::support::Status,
        max_messages: i64,
    ) -> StoreResult<bool>;
    /// Closes a request; `false` when it was closed already or does not exist.
    async fn close_ticket(&self, id: Uuid, at: OffsetDateTime) -> StoreResult<bool>;
    /// Requests of everyone with their requesters, oldest first, optionally of one status.
    async fn support_queue(
        &self,
        status: Option<crate::support::Status>,
        page: PageRequest,
    ) -> StoreResult<Vec<crate::support::QueuedTicket>>;
    /// One request with its requester.
    async fn queued_ticket(&self, id: Uuid) -> StoreResult<Option<crate::support::QueuedTicket>>;
    /// Deletes requests (with their messages) last updated before `before`.
    async fn purge_support_tickets(&self, before: OffsetDateTime) -> StoreResult<u64>;
    /// Email addresses of the enabled instance administrators.
    async fn operator_emails(&self) -> StoreResult<Vec<String>>;
}
