//! Instance administration: what the operator pages show and do. Every operation needs the
//! `admin` scope, which only instance administrators' credentials carry.

use std::time::Instant;

use time::Duration;
use uuid::Uuid;

use crate::credits::Balance;
use crate::page::{Page, PageRequest};
use crate::principal::Principal;
use crate::rights::{DataRequest, RequestKind, RequestStatus};
use crate::store::{JobCount, OrgWithRole, User};
use crate::tokens::Scope;
use crate::{Error, Pixeld, Result};

/// Queued work due longer ago than this counts as a backlog.
pub const BACKLOG_AFTER: Duration = Duration::minutes(5);

/// One account as an operator sees it.
#[derive(Debug, Clone)]
pub struct OperatorUser {
    /// The account.
    pub user: User,
    /// The balance of their personal organisation.
    pub balance: Balance,
    /// Organisations they belong to (the first 50).
    pub orgs: Vec<OrgWithRole>,
    /// Their data-subject requests, newest last.
    pub requests: Vec<DataRequest>,
}

/// How the instance is doing.
#[derive(Debug, Clone)]
pub struct SystemHealth {
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// Whether the database answered, and why not.
    pub database: std::result::Result<(), String>,
    /// How long a round trip to the database took, in milliseconds.
    pub database_ms: u64,
    /// Accounts, and how many of them are disabled.
    pub users: (i64, i64),
    /// Background jobs per kind and state.
    pub jobs: Vec<JobCount>,
}

impl SystemHealth {
    /// Queued jobs that have waited longer than [`BACKLOG_AFTER`].
    pub fn backlog(&self) -> i64 {
        self.jobs.iter().map(|j| j.overdue).sum()
    }
}

impl Pixeld {
    /// Every account, by id.
    pub async fn operator_users(&self, p: &Principal, page: PageRequest) -> Result<Page<User>> {
        p.require_scope(Scope::Admin)?;
        let rows = self.store.list_users(page).await?;
        Ok(page.finish(rows, |u| u.id))
    }

    /// The account with this email address.
    pub async fn operator_find_user(&self, p: &Principal, email: &str) -> Result<User> {
        p.require_scope(Scope::Admin)?;
        let email = email.trim().to_lowercase();
        self.store
            .user_by_email(&email)
            .await?
            .ok_or(Error::NotFound)
    }

    /// One account with its balance, organisations and requests.
    pub async fn operator_user(&self, p: &Principal, user_id: Uuid) -> Result<OperatorUser> {
        p.require_scope(Scope::Admin)?;
        let user = self
            .store
            .user_by_id(user_id)
            .await?
            .ok_or(Error::NotFound)?;
        let t = self.store.ledger_totals(user.personal_org_id).await?;
        let orgs = self
            .store
            .orgs_of_user(
                user.id,
                PageRequest {
                    after: None,
                    limit: 50,
                },
            )
            .await?;
        let requests = self.store.data_requests_of(user.id).await?;
        Ok(OperatorUser {
            user,
            balance: Balance {
                available: t.balance,
                held: t.held,
            },
            orgs: orgs.into_iter().take(50).collect(),
            requests,
        })
    }

    /// Disables an account (it cannot sign in; its sessions end and its tokens are refused) or
    /// enables it again. An account waiting out its deletion grace period stays disabled: only
    /// its owner can cancel the deletion.
    pub async fn operator_set_disabled(
        &self,
        p: &Principal,
        user_id: Uuid,
        disabled: bool,
    ) -> Result<User> {
        p.require_scope(Scope::Admin)?;
        if user_id == p.user.id {
            return Err(Error::invalid(
                "user",
                "operators cannot disable their own account",
            ));
        }
        let user = self
            .store
            .user_by_id(user_id)
            .await?
            .ok_or(Error::NotFound)?;
        if disabled {
            self.store.set_disabled(user_id, Some(self.now())).await?;
            self.store.delete_other_sessions(user_id, None).await?;
        } else {
            let deleting = self
                .store
                .data_requests_of(user_id)
                .await?
                .iter()
                .any(|r| r.kind == RequestKind::Erasure && r.status == RequestStatus::Open);
            if deleting {
                return Err(Error::State(
                    "this account is being deleted; only its owner can cancel that, from the \
                     link in the email they were sent"
                        .into(),
                ));
            }
            self.store.set_disabled(user_id, None).await?;
        }
        self.auth_cache.clear();
        tracing::info!(actor = %p.user.id, user_id = %user_id, disabled, "operator changed an account");
        self.store.user_by_id(user.id).await?.ok_or(Error::NotFound)
    }

    /// The balance of any organisation.
    pub async fn operator_balance(&self, p: &Principal, org_id: Uuid) -> Result<Balance> {
        p.require_scope(Scope::Admin)?;
        self.store.org_by_id(org_id).await?.ok_or(Error::NotFound)?;
        let t = self.store.ledger_totals(org_id).await?;
        Ok(Balance {
            available: t.balance,
            held: t.held,
        })
    }

    /// The database, accounts and background work at a glance.
    pub async fn system_health(&self, p: &Principal) -> Result<SystemHealth> {
        p.require_scope(Scope::Admin)?;
        let started = Instant::now();
        let database = self.store.ping().await.map_err(|e| e.to_string());
        let database_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (users, jobs) = if database.is_ok() {
            (
                self.store.count_users().await?,
                self.store.job_counts(self.now() - BACKLOG_AFTER).await?,
            )
        } else {
            ((0, 0), Vec::new())
        };
        Ok(SystemHealth {
            backend: self.store.backend(),
            database,
            database_ms,
            users,
            jobs,
        })
    }
}
