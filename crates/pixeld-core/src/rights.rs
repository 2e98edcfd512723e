//! Data-subject rights: erasure with a grace period, and a record of every request with its due
//! date and completion.
//!
//! Deleting an account ([`Pixeld::request_account_deletion`]) needs the password (and a second
//! factor when 2FA is on). It disables the account at once, signs it out everywhere, revokes
//! its tokens and emails a link that cancels the deletion during the grace period
//! (`deleted_accounts` in `privacy.toml`, 30 days). When the period ends the sweeper purges the
//! account ([`Pixeld::purge_account`]): the user, their sessions, tokens, memberships,
//! invitations and request-log rows, and every organisation they were the only member of with
//! its content and stored objects. Financial records of those organisations stay, anonymised.

use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::mail::Message;
use crate::page::{Page, PageRequest};
use crate::principal::Principal;
use crate::privacy::DataClass;
use crate::store::Purpose;
use crate::tokens::Scope;
use crate::{Error, Pixeld, Result};

/// How long pixeld has to answer a data-subject request.
pub const RESPONSE_DUE: Duration = Duration::days(30);

/// Which right a request exercises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestKind {
    /// A copy of one's data (export).
    Access,
    /// Correcting one's data.
    Rectification,
    /// Deleting one's account.
    Erasure,
    /// Restricting processing.
    Restriction,
    /// Objecting to a purpose.
    Objection,
}

impl RequestKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Access => "access",
            RequestKind::Rectification => "rectification",
            RequestKind::Erasure => "erasure",
            RequestKind::Restriction => "restriction",
            RequestKind::Objection => "objection",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "access" => RequestKind::Access,
            "rectification" => RequestKind::Rectification,
            "erasure" => RequestKind::Erasure,
            "restriction" => RequestKind::Restriction,
            "objection" => RequestKind::Objection,
            _ => return None,
        })
    }
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestStatus {
    /// Not done yet.
    Open,
    /// Done.
    Completed,
    /// Withdrawn by the user.
    Cancelled,
}

impl RequestStatus {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Open => "open",
            RequestStatus::Completed => "completed",
            RequestStatus::Cancelled => "cancelled",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "open" => RequestStatus::Open,
            "completed" => RequestStatus::Completed,
            "cancelled" => RequestStatus::Cancelled,
            _ => return None,
        })
    }
}

/// A data-subject request as recorded (no personal data: the account's id only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRequest {
    /// UUIDv7.
    pub id: Uuid,
    /// Whose.
    pub user_id: Uuid,
    /// Which right.
    pub kind: RequestKind,
    /// Where it stands.
    pub status: RequestStatus,
    /// What was asked and done, for operators.
    pub detail: String,
    /// When it was made.
    pub requested_at: OffsetDateTime,
    /// When it must be done by.
    pub due_at: OffsetDateTime,
    /// When it was done or withdrawn.
    pub completed_at: Option<OffsetDateTime>,
}

impl DataRequest {
    /// A new open request made `now`.
    pub fn open(user_id: Uuid, kind: RequestKind, detail: String, now: OffsetDateTime) -> Self {
        Self {
            id: Uuid::now_v7(),
            user_id,
            kind,
            status: RequestStatus::Open,
            detail,
            requested_at: now,
            due_at: now + RESPONSE_DUE,
            completed_at: None,
        }
    }
}

/// A requested account deletion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountDeletion {
    /// Whose account.
    pub user_id: Uuid,
    /// The erasure request it belongs to.
    pub request_id: Uuid,
    /// When it was asked for.
    pub requested_at: OffsetDateTime,
    /// When the purge happens.
    pub purge_after: OffsetDateTime,
    /// When the user cancelled it.
    pub cancelled_at: Option<OffsetDateTime>,
    /// When the account was purged.
    pub purged_at: Option<OffsetDateTime>,
}

impl AccountDeletion {
    /// Still waiting for its purge.
    pub fn is_pending(&self) -> bool {
        self.cancelled_at.is_none() && self.purged_at.is_none()
    }
}

fn date(t: OffsetDateTime) -> String {
    let f = time::macros::format_description!("[day] [month repr:long] [year]");
    t.format(f).unwrap_or_default()
}

impl Pixeld {
    /// Deletes the caller's account after the grace period; see the module documentation.
    /// Refused while the caller is the only owner of an organisation that has other members.
    pub async fn request_account_deletion(
        &self,
        p: &Principal,
        password: &str,
        code: Option<&str>,
    ) -> Result<AccountDeletion> {
        p.require_scope(Scope::AccountWrite)?;
        let user = &p.user;
        self.reauthenticate(user, password).await?;
        if user.totp_secret.is_some() {
            let code = code.filter(|c| !c.trim().is_empty()).ok_or_else(|| {
                Error::invalid(
                    "code",
                    "two-factor sign-in is on: send a current code or a recovery code",
                )
            })?;
            if !self.check_second_factor(user, code).await? {
                return Err(Error::invalid("code", "is not a valid current code"));
            }
        }
        let blocking = self.store.orgs_blocking_deletion(user.id).await?;
        if !blocking.is_empty() {
            let names: Vec<String> = blocking.iter().map(|o| format!("“{}”", o.name)).collect();
            return Err(Error::Conflict(format!(
                "you are the only owner of {} and it has other members: make one of them an owner, \
                 or remove them, before deleting your account",
                names.join(", ")
            )));
        }
        let now = self.now();
        let grace = self.settings.retention.window(DataClass::DeletedAccounts);
        let purge_after = now + grace;
        let request = DataRequest::open(
            user.id,
            RequestKind::Erasure,
            format!("account deletion; purge after {}", date(purge_after)),
            now,
        );
        let deletion = AccountDeletion {
            user_id: user.id,
            request_id: request.id,
            requested_at: now,
            purge_after,
            cancelled_at: None,
            purged_at: None,
        };
        self.store
            .create_account_deletion(&deletion, &request)
            .await?;
        self.store.set_disabled(user.id, Some(now)).await?;
        let tokens = self.store.revoke_user_tokens(user.id, now).await?;
        let sessions = self.store.delete_other_sessions(user.id, None).await?;
        self.auth_cache.clear();
        let token = self
            .issue_one_time(user.id, Purpose::CancelDeletion, String::new(), grace)
            .await?;
        let link = format!("{}/cancel-deletion?token={token}", self.settings.public_url);
        self.mailer
            .send(Message {
                to: user.email.clone(),
                subject: "Your pixeld account will be deleted".into(),
                body: format!(
                    "Hello {},\n\nyou asked for your pixeld account to be deleted. It is disabled now: \
                     you are signed out everywhere and your API tokens no longer work.\n\n\
                     On {} your account, your content and the organisations only you belong to \
                     will be deleted for good. Invoices stay, anonymised, as tax law requires.\n\n\
                     Changed your mind? Keep your account until then with this link:\n{link}\n",
                    user.name,
                    date(purge_after)
                ),
                attachments: Vec::new(),
            })
            .await?;
        tracing::info!(user_id = %user.id, tokens, sessions, purge_after = %purge_after, "account deletion requested");
        Ok(deletion)
    }

    /// Cancels a pending deletion with the emailed link's token: the account works again
    /// (tokens stay revoked; make new ones).
    pub async fn cancel_account_deletion(&self, token: &str) -> Result<crate::store::User> {
        let t = self
            .consume_one_time(token, Purpose::CancelDeletion)
            .await?;
        let now = self.now();
        if !self.store.cancel_account_deletion(t.user_id, now).await? {
            return Err(Error::InvalidToken);
        }
        self.store.set_disabled(t.user_id, None).await?;
        tracing::info!(user_id = %t.user_id, "account deletion cancelled");
        self.store
            .user_by_id(t.user_id)
            .await?
            .ok_or(Error::InvalidToken)
    }

    /// The caller's pending deletion, if any.
    pub async fn account_deletion(&self, user_id: Uuid) -> Result<Option<AccountDeletion>> {
        Ok(self
            .store
            .account_deletion(user_id)
            .await?
            .filter(AccountDeletion::is_pending))
    }

    /// Purges an account now: see the module documentation. Idempotent.
    pub async fn purge_account(&self, user_id: Uuid) -> Result<()> {
        for e in self.store.exports_of(user_id).await? {
            if let Some(k) = &e.object_key {
                self.blobs.delete(k).await?;
            }
        }
        let orgs = self.store.sole_member_orgs(user_id).await?;
        for org in &orgs {
            for key in self.store.org_object_keys(*org).await? {
                self.blobs.delete(&key).await?;
            }
            self.anonymise_financial_records(*org).await?;
        }
        let rows = self.store.erase_account(user_id, &orgs, self.now()).await?;
        self.auth_cache.clear();
        tracing::info!(user_id = %user_id, orgs = orgs.len(), rows, "account purged");
        Ok(())
    }

    /// Purges every account whose grace period has ended; returns how many.
    pub async fn purge_due_accounts(&self) -> Result<u64> {
        let mut n = 0;
        loop {
            let due = self.store.due_account_deletions(self.now(), 50).await?;
            if due.is_empty() {
                return Ok(n);
            }
            for d in due {
                self.purge_account(d.user_id).await?;
                n += 1;
            }
        }
    }

    /// An operator deletes an account at once, without a grace period (e.g. a child's account
    /// reported to them). Recorded as a completed erasure request.
    pub async fn operator_delete_account(
        &self,
        actor: &crate::store::User,
        user_id: Uuid,
        reason: &str,
    ) -> Result<()> {
        if !actor.is_admin {
            return Err(Error::Forbidden("instance administrators only".into()));
        }
        let reason = reason.trim();
        if reason.is_empty() || reason.len() > 500 {
            return Err(Error::invalid("reason", "must be 1 to 500 characters"));
        }
        if actor.id == user_id {
            return Err(Error::invalid(
                "user",
                "operators delete their own account from their account settings",
            ));
        }
        self.store
            .user_by_id(user_id)
            .await?
            .ok_or(Error::NotFound)?;
        let now = self.now();
        let mut request = DataRequest::open(
            user_id,
            RequestKind::Erasure,
            format!("deleted at once by an operator: {reason}"),
            now,
        );
        request.status = RequestStatus::Completed;
        request.completed_at = Some(now);
        self.store.create_data_request(&request).await?;
        self.store.set_disabled(user_id, Some(now)).await?;
        self.purge_account(user_id).await?;
        tracing::info!(actor = %actor.id, user_id = %user_id, "operator deleted an account");
        Ok(())
    }

    /// The caller's own data-subject requests, newest last.
    pub async fn my_data_requests(&self, p: &Principal) -> Result<Vec<DataRequest>> {
        p.require_scope(Scope::AccountRead)?;
        Ok(self.store.data_requests_of(p.user.id).await?)
    }

    /// Open data-subject requests of every user, soonest due first (instance administrators).
    pub async fn open_data_requests(
        &self,
        p: &Principal,
        page: PageRequest,
    ) -> Result<Page<DataRequest>> {
        p.require_scope(Scope::Admin)?;
        let rows = self.store.open_data_requests(page).await?;
        Ok(page.finish(rows, |r| r.id))
    }
}
