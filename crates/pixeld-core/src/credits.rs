//! Credits: prices of metered work, the free plan's monthly grant, reservations around work,
//! the balance and transaction history, and operators' grants and adjustments.
//!
//! Metered work calls [`Pixeld::reserve`] before it starts; the returned [`Hold`] is settled when
//! the work is done and released when it fails. A hold dropped without either (a panic, a
//! client that went away mid-request) is released in the background, and one whose process
//! died is released by the sweeper after [`CreditSettings::reservation_timeout`].

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Mutex;

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::ledger::{
    Applied, Debit, EntryFilter, EntryKind, Finish, Finished, GrantSource, LedgerEntry,
    Reservation, ReservationState, Totals,
};
use crate::page::{Page, PageRequest};
use crate::principal::Principal;
use crate::roles::Permission;
use crate::store::User;
use crate::tokens::Scope;
use crate::{Error, Pixeld, Result};

/// Work that costs credits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Metered {
    /// A template rendered (not served from the render cache).
    Render,
    /// An editor's preview of a template (not served from the render cache).
    Preview,
    /// An image resized, converted or compressed (not served from the cache).
    Optimize,
    /// An uploaded image checked and analysed.
    Analyze,
    /// An image described (alt text and tags) by an AI vision provider.
    Describe,
    /// An asset generated from a prompt.
    Generate,
    /// A product photo cut out and composed.
    Studio,
}

impl Metered {
    /// The operation's name in prices, entries and usage.
    pub const fn as_str(self) -> &'static str {
        match self {
            Metered::Render => "render",
            Metered::Preview => "preview",
            Metered::Optimize => "optimize",
            Metered::Analyze => "analyze",
            Metered::Describe => "describe",
            Metered::Generate => "generate",
            Metered::Studio => "studio",
        }
    }
}

/// Credits each metered operation costs. Zero makes an operation free (nothing is written).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Prices {
    /// A render that is not a cache hit.
    pub render: i64,
    /// A template preview that is not a cache hit (editors see the same state again for free).
    pub preview: i64,
    /// An image transform that is not a cache hit.
    pub optimize: i64,
    /// An upload's check and analysis.
    pub analyze: i64,
    /// An image's alt text and tags from the AI vision provider.
    pub describe: i64,
    /// A generated asset.
    pub generate: i64,
    /// A product-studio shot.
    pub studio: i64,
}

impl Default for Prices {
    fn default() -> Self {
        Self {
            render: 1,
            preview: 1,
            optimize: 1,
            analyze: 1,
            describe: 2,
            generate: 10,
            studio: 20,
        }
    }
}

impl Prices {
    /// The price of `op`.
    pub fn of(&self, op: Metered) -> i64 {
        match op {
            Metered::Render => self.render,
            Metered::Preview => self.preview,
            Metered::Optimize => self.optimize,
            Metered::Analyze => self.analyze,
            Metered::Describe => self.describe,
            Metered::Generate => self.generate,
            Metered::Studio => self.studio,
        }
    }
}

/// How credits work on this instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditSettings {
    /// Whether metered work costs credits at all (off: nothing is reserved or recorded).
    pub metering: bool,
    /// Prices of metered work.
    pub prices: Prices,
    /// Credits the free plan grants each calendar month (UTC); they expire at the month's end.
    pub free_monthly: i64,
    /// A reservation still held this long after it was made is treated as abandoned (its
    /// process died) and released by the sweeper. Longer than any request may take.
    pub reservation_timeout: time::Duration,
}

impl Default for CreditSettings {
    fn default() -> Self {
        Self {
            metering: true,
            prices: Prices::default(),
            free_monthly: 100,
            reservation_timeout: time::Duration::minutes(15),
        }
    }
}

/// How long a reservation for a queued job (an asynchronous render) may wait for a worker.
pub const QUEUED_RESERVATION_TIMEOUT: time::Duration = time::Duration::hours(24);

/// Largest single grant or adjustment an operator may make, so a typo cannot overflow a balance.
pub const MAX_ADJUSTMENT: i64 = 1_000_000_000;

/// Rows in one CSV export at most (a filter narrows a longer history).
pub const MAX_EXPORT_ROWS: usize = 100_000;

/// Process-local memory of free-plan grants already made, so metered requests do not write
/// them again every time.
#[derive(Debug, Default)]
pub struct CreditState {
    granted: Mutex<HashSet<(Uuid, i32, u8)>>,
}

/// An organisation's credits as its members see them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Balance {
    /// Credits that can be spent now.
    pub available: i64,
    /// Credits held by work in progress.
    pub held: i64,
}

/// Credits held for one piece of work: call [`Hold::settle`] when it is done and
/// [`Hold::release`] when it failed. Dropping it unfinished releases it in the background.
#[must_use = "a hold must be settled or released"]
pub struct Hold {
    app: Option<Pixeld>,
    org_id: Uuid,
    reservation: Option<Uuid>,
    amount: i64,
}

impl std::fmt::Debug for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hold")
            .field("org_id", &self.org_id)
            .field("reservation", &self.reservation)
            .field("amount", &self.amount)
            .finish()
    }
}

impl Hold {
    /// A hold for free work (nothing reserved).
    pub fn free(org_id: Uuid) -> Self {
        Self {
            app: None,
            org_id,
            reservation: None,
            amount: 0,
        }
    }

    /// The reservation behind it (none for free work).
    pub fn reservation(&self) -> Option<Uuid> {
        self.reservation
    }

    /// Credits held.
    pub fn amount(&self) -> i64 {
        self.amount
    }

    /// Keeps the whole amount: the work was done.
    pub async fn settle(mut self) -> Result<()> {
        let (Some(app), Some(id)) = (self.app.take(), self.reservation) else {
            return Ok(());
        };
        let cost = self.amount;
        match app
            .finish_reservation(self.org_id, id, Finish::Settle { cost })
            .await
        {
            Ok(_) => {
                crate::usage::note_charge(cost);
                Ok(())
            }
            // Released by the sweeper meanwhile (the work outlived the reservation timeout):
            // the work is done and stays free rather than failing now.
            Err(Error::State(why)) => {
                tracing::warn!(reservation = %id, why, "settling a reservation that had ended");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Returns the whole amount: the work failed or was not needed.
    pub async fn release(mut self) -> Result<()> {
        let (Some(app), Some(id)) = (self.app.take(), self.reservation) else {
            return Ok(());
        };
        match app
            .finish_reservation(self.org_id, id, Finish::Release)
            .await
        {
            Ok(_) => Ok(()),
            // Already settled or released (a retried job, the sweeper): nothing to give back.
            Err(Error::State(why)) => {
                tracing::debug!(reservation = %id, why, "releasing a reservation that had ended");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Settles when the work succeeded and releases when it failed, passing its result on.
    pub async fn conclude<T>(self, work: Result<T>) -> Result<T> {
        match work {
            Ok(v) => {
                self.settle().await?;
                Ok(v)
            }
            Err(e) => {
                self.release().await?;
                Err(e)
            }
        }
    }

    /// Hands the reservation to someone else (a queued job) to finish; this hold forgets it.
    pub fn detach(mut self) -> Option<Uuid> {
        if self.app.take().is_some() {
            // Held for queued work: the request that queued it is what spent the credits.
            crate::usage::note_charge(self.amount);
        }
        self.reservation
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        let (Some(app), Some(id)) = (self.app.take(), self.reservation) else {
            return;
        };
        let org = self.org_id;
        // Dropped mid-work (cancelled request, panic): give the credits back now rather than
        // when the sweeper finds the reservation.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = app.finish_reservation(org, id, Finish::Release).await {
                    tracing::warn!(reservation = %id, error = %e, "could not release an abandoned hold; the sweeper will");
                }
            });
        }
    }
}

/// The first instant of the calendar month (UTC) after `t`'s.
fn next_month(t: OffsetDateTime) -> OffsetDateTime {
    let (y, m) = match t.month() {
        time::Month::December => (t.year() + 1, time::Month::January),
        m => (t.year(), m.next()),
    };
    time::Date::from_calendar_date(y, m, 1)
        .map(|d| d.midnight().assume_utc())
        .unwrap_or(t)
}

/// A reason given by an operator: required, one line, at most 500 characters.
fn check_reason(reason: &str) -> Result<String> {
    let r = reason.trim();
    if r.is_empty() {
        return Err(Error::invalid(
            "reason",
            "is required: say why, for the audit trail",
        ));
    }
    if r.chars().count() > 500 || r.chars().any(char::is_control) {
        return Err(Error::invalid(
            "reason",
            "must be one line of at most 500 characters",
        ));
    }
    Ok(r.to_string())
}

fn check_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > 200 || key.chars().any(|c| c.is_control()) {
        return Err(Error::invalid(
            "key",
            "must be 1–200 characters without control characters",
        ));
    }
    Ok(())
}

impl Pixeld {
    /// Makes the free plan's grant for the current month if it was not made yet.
    pub async fn ensure_monthly_grant(&self, org_id: Uuid) -> Result<()> {
        let s = &self.settings.credits;
        if !s.metering || s.free_monthly <= 0 {
            return Ok(());
        }
        let now = self.now();
        let period = (org_id, now.year(), u8::from(now.month()));
        if self
            .credits
            .granted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&period)
        {
            return Ok(());
        }
        // A paid plan's periods bring its own credits instead (for the rest of this month, as
        // remembered below, so metered requests do not ask again each time).
        if self.store.live_subscription(org_id).await?.is_some() {
            self.credits
                .granted
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(period);
            return Ok(());
        }
        let mut e = LedgerEntry::new(
            org_id,
            EntryKind::Grant,
            format!("plan:free:{:04}-{:02}", now.year(), u8::from(now.month())),
            now,
        );
        e.amount = s.free_monthly;
        e.source = Some(GrantSource::Plan.as_str().into());
        e.reason = Some("free plan, monthly credits".into());
        e.expires_at = Some(next_month(now));
        self.store.ledger_credit(&e).await?;
        self.credits
            .granted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(period);
        Ok(())
    }

    /// Holds the price of `op` for organisation `org_id`, or answers
    /// [`Error::InsufficientCredits`]. `key` makes a retried reservation find the first one
    /// (e.g. a job id); without it each call reserves anew.
    pub async fn reserve(
        &self,
        org_id: Uuid,
        token_id: Option<Uuid>,
        op: Metered,
        key: Option<&str>,
    ) -> Result<Hold> {
        self.reserve_for(
            org_id,
            token_id,
            op,
            key,
            self.settings.credits.reservation_timeout,
        )
        .await
    }

    /// Like [`Pixeld::reserve`], with the time after which the sweeper treats the reservation
    /// as abandoned.
    pub async fn reserve_for(
        &self,
        org_id: Uuid,
        token_id: Option<Uuid>,
        op: Metered,
        key: Option<&str>,
        timeout: time::Duration,
    ) -> Result<Hold> {
        let price = self.settings.credits.prices.of(op);
        if !self.settings.credits.metering || price <= 0 {
            return Ok(Hold::free(org_id));
        }
        self.ensure_monthly_grant(org_id).await?;
        let now = self.now();
        let id = Uuid::now_v7();
        let r = Reservation {
            id,
            org_id,
            op: op.as_str().into(),
            amount: price,
            cost: None,
            state: ReservationState::Held,
            token_id,
            expires_at: now + timeout,
            created_at: now,
            finished_at: None,
        };
        let key = match key {
            Some(k) => format!("reserve:{k}"),
            None => format!("reserve:{id}"),
        };
        let e = LedgerEntry::new(org_id, EntryKind::Reserve, key, now);
        match self.store.ledger_reserve(&r, &e, now).await? {
            Debit::Done(held) => {
                let held = held.into_inner();
                Ok(Hold {
                    app: (held.state == ReservationState::Held).then(|| self.clone()),
                    org_id,
                    reservation: Some(held.id),
                    amount: held.amount,
                })
            }
            Debit::Insufficient { balance } => {
                tracing::debug!(org = %org_id, op = op.as_str(), balance, "not enough credits");
                Err(Error::InsufficientCredits {
                    needed: price,
                    balance,
                })
            }
        }
    }

    /// A hold on a reservation made earlier (by the request that queued a job).
    pub fn resume_hold(&self, org_id: Uuid, reservation: Option<Uuid>, amount: i64) -> Hold {
        Hold {
            app: reservation.is_some().then(|| self.clone()),
            org_id,
            reservation,
            amount,
        }
    }

    /// Settles, releases or refunds a reservation. Finishing it the same way twice is a no-op.
    pub async fn finish_reservation(
        &self,
        org_id: Uuid,
        reservation: Uuid,
        how: Finish,
    ) -> Result<LedgerEntry> {
        let now = self.now();
        let e = LedgerEntry::new(
            org_id,
            how.kind(),
            format!("{}:{reservation}", how.kind()),
            now,
        );
        match self
            .store
            .ledger_finish(org_id, reservation, how, &e, now)
            .await?
        {
            Finished::New(e) | Finished::Replayed(e) => Ok(e),
            Finished::NotFound => Err(Error::NotFound),
            Finished::Conflict(state) => Err(Error::State(format!(
                "the reservation is already {}",
                state.as_str()
            ))),
        }
    }

    /// The organisation's balance. Members who may see billing only.
    pub async fn credit_balance(&self, p: &Principal) -> Result<Balance> {
        p.require(Scope::BillingRead, Permission::BillingRead)?;
        self.ensure_monthly_grant(p.org_id).await?;
        let t = self.store.ledger_totals(p.org_id).await?;
        Ok(Balance {
            available: t.balance,
            held: t.held,
        })
    }

    /// The organisation's ledger entries, oldest first.
    pub async fn credit_entries(
        &self,
        p: &Principal,
        filter: &EntryFilter,
        page: PageRequest,
    ) -> Result<Page<LedgerEntry>> {
        p.require(Scope::BillingRead, Permission::BillingRead)?;
        let rows = self.store.ledger_entries(p.org_id, filter, page).await?;
        Ok(page.finish(rows, |e| e.id))
    }

    /// The entries as CSV (RFC 4180, a header row, times in RFC 3339), at most
    /// [`MAX_EXPORT_ROWS`] rows.
    pub async fn credit_entries_csv(&self, p: &Principal, filter: &EntryFilter) -> Result<String> {
        p.require(Scope::BillingRead, Permission::BillingRead)?;
        let mut out = String::from(
            "id,created_at,kind,amount,balance_after,source,reason,reservation_id,token_id,expires_at\r\n",
        );
        let mut page = PageRequest {
            after: None,
            limit: crate::page::MAX_LIMIT,
        };
        let mut rows = 0;
        loop {
            let batch = self.store.ledger_entries(p.org_id, filter, page).await?;
            let more = batch.len() > page.limit as usize;
            for e in batch.iter().take(page.limit as usize) {
                if rows == MAX_EXPORT_ROWS {
                    return Err(Error::invalid(
                        "until",
                        format!("more than {MAX_EXPORT_ROWS} entries: export a shorter period"),
                    ));
                }
                rows += 1;
                let _ = write!(
                    out,
                    "{},{},{},{},{},{},{},{},{},{}\r\n",
                    e.id,
                    rfc3339(e.created_at),
                    e.kind,
                    e.amount,
                    e.balance_after,
                    csv_field(e.source.as_deref().unwrap_or("")),
                    csv_field(e.reason.as_deref().unwrap_or("")),
                    e.reservation_id.map(|u| u.to_string()).unwrap_or_default(),
                    e.token_id.map(|u| u.to_string()).unwrap_or_default(),
                    e.expires_at.map(rfc3339).unwrap_or_default(),
                );
            }
            if !more {
                return Ok(out);
            }
            page.after = batch.get(page.limit as usize - 1).map(|e| e.id);
        }
    }

    /// An operator grants credits to an organisation (`source` plan, purchase, promo or admin).
    /// The entry records who and why. The same `key` again does nothing.
    #[allow(clippy::too_many_arguments)]
    pub async fn admin_grant_credits(
        &self,
        actor: &User,
        org_id: Uuid,
        amount: i64,
        source: GrantSource,
        reason: &str,
        expires_at: Option<OffsetDateTime>,
        key: Option<&str>,
    ) -> Result<Applied<LedgerEntry>> {
        if !actor.is_admin {
            return Err(Error::Forbidden("instance administrators only".into()));
        }
        let reason = check_reason(reason)?;
        if !(1..=MAX_ADJUSTMENT).contains(&amount) {
            return Err(Error::invalid(
                "amount",
                format!("must be between 1 and {MAX_ADJUSTMENT}"),
            ));
        }
        let now = self.now();
        if expires_at.is_some_and(|t| t <= now) {
            return Err(Error::invalid("expires_at", "must be in the future"));
        }
        self.store.org_by_id(org_id).await?.ok_or(Error::NotFound)?;
        let key = key
            .map(str::to_owned)
            .unwrap_or_else(|| Uuid::now_v7().to_string());
        check_key(&key)?;
        let mut e = LedgerEntry::new(org_id, EntryKind::Grant, format!("admin-grant:{key}"), now);
        e.amount = amount;
        e.source = Some(source.as_str().into());
        e.reason = Some(reason);
        e.actor_id = Some(actor.id);
        e.expires_at = expires_at;
        let done = self.store.ledger_credit(&e).await?;
        tracing::info!(actor = %actor.id, org = %org_id, amount, new = done.is_new(), "operator granted credits");
        Ok(done)
    }

    /// An operator corrects an organisation's balance by `delta` (either sign) with a reason.
    /// A negative adjustment larger than the balance is refused.
    pub async fn admin_adjust_credits(
        &self,
        actor: &User,
        org_id: Uuid,
        delta: i64,
        reason: &str,
        key: Option<&str>,
    ) -> Result<Applied<LedgerEntry>> {
        if !actor.is_admin {
            return Err(Error::Forbidden("instance administrators only".into()));
        }
        let reason = check_reason(reason)?;
        if delta == 0 || delta.abs() > MAX_ADJUSTMENT {
            return Err(Error::invalid(
                "amount",
                format!("must be non-zero and at most {MAX_ADJUSTMENT} either way"),
            ));
        }
        self.store.org_by_id(org_id).await?.ok_or(Error::NotFound)?;
        let now = self.now();
        let key = key
            .map(str::to_owned)
            .unwrap_or_else(|| Uuid::now_v7().to_string());
        check_key(&key)?;
        let mut e = LedgerEntry::new(
            org_id,
            EntryKind::Adjust,
            format!("admin-adjust:{key}"),
            now,
        );
        e.amount = delta;
        e.source = Some(GrantSource::Admin.as_str().into());
        e.reason = Some(reason);
        e.actor_id = Some(actor.id);
        let done = if delta > 0 {
            self.store.ledger_credit(&e).await?
        } else {
            match self.store.ledger_debit(&e, now).await? {
                Debit::Done(d) => d,
                Debit::Insufficient { balance } => {
                    return Err(Error::State(format!(
                        "the balance is {balance}: an adjustment cannot take it below zero"
                    )));
                }
            }
        };
        tracing::info!(actor = %actor.id, org = %org_id, delta, new = done.is_new(), "operator adjusted credits");
        Ok(done)
    }

    /// The ledger's sums for an organisation (operators' consistency check).
    pub async fn credit_totals(&self, org_id: Uuid) -> Result<Totals> {
        Ok(self.store.ledger_totals(org_id).await?)
    }

    /// Expires due lots and releases abandoned reservations; returns `(lots, reservations)`.
    pub async fn sweep_credits(&self) -> Result<(u64, u64)> {
        let now = self.now();
        let mut lots = 0;
        loop {
            let n = self.store.ledger_expire(now, 200).await?;
            lots += n;
            if n == 0 {
                break;
            }
        }
        let mut released = 0;
        loop {
            let stale = self.store.stale_reservations(now, 200).await?;
            if stale.is_empty() {
                break;
            }
            for r in &stale {
                match self
                    .finish_reservation(r.org_id, r.id, Finish::Release)
                    .await
                {
                    Ok(_) | Err(Error::State(_)) => released += 1,
                    Err(e) => return Err(e),
                }
            }
        }
        Ok((lots, released))
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A CSV field, quoted when needed; a leading `=`, `+`, `-` or `@` is prefixed with `'` so a
/// spreadsheet does not run it as a formula.
pub(crate) fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_credits_expire_at_the_start_of_next_month() {
        let t = time::macros::datetime!(2026-12-15 10:00 UTC);
        assert_eq!(next_month(t), time::macros::datetime!(2027-01-01 00:00 UTC));
        let t = time::macros::datetime!(2026-02-28 23:59 UTC);
        assert_eq!(next_month(t), time::macros::datetime!(2026-03-01 00:00 UTC));
    }

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=SUM(A1)"), "'=SUM(A1)");
    }
}
