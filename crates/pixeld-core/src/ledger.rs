//! The credit ledger's vocabulary and rules, shared by both storage backends.
//!
//! The ledger is append-only: every change to an organisation's credits is one [`LedgerEntry`]
//! with a business key that is unique per organisation, so a retried operation finds its first
//! entry instead of applying twice. The balance is the sum of the entries' amounts; storage
//! caches it in a row that a conditional update keeps at zero or above.
//!
//! Credits come in lots (one per grant or positive adjustment) that may expire. Spending takes
//! from the lot that expires soonest first (never-expiring lots last), so expiring credits are
//! used before they are lost. Metered work reserves its price first ([`EntryKind::Reserve`]),
//! then settles (keeping what the work cost and returning the rest) or releases (returning
//! all); a settled charge can be refunded. Returned credits go back to the lots they came from.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// Credits added: a plan's monthly grant, a purchase, a promotion or an operator.
    Grant,
    /// Credits held for work about to run (negative).
    Reserve,
    /// Work finished: what it did not cost goes back (zero or positive).
    Settle,
    /// Work failed or was abandoned: the whole reservation goes back (positive).
    Release,
    /// A settled charge given back (positive).
    Refund,
    /// Credits of a lot that reached its expiry unspent (negative).
    Expire,
    /// An operator's correction, either sign, with a reason.
    Adjust,
}

impl EntryKind {
    /// Every kind, in documentation order.
    pub const ALL: [EntryKind; 7] = [
        EntryKind::Grant,
        EntryKind::Reserve,
        EntryKind::Settle,
        EntryKind::Release,
        EntryKind::Refund,
        EntryKind::Expire,
        EntryKind::Adjust,
    ];

    /// The stored and wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            EntryKind::Grant => "grant",
            EntryKind::Reserve => "reserve",
            EntryKind::Settle => "settle",
            EntryKind::Release => "release",
            EntryKind::Refund => "refund",
            EntryKind::Expire => "expire",
            EntryKind::Adjust => "adjust",
        }
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EntryKind {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        EntryKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                crate::Error::invalid(
                    "kind",
                    "must be one of grant, reserve, settle, release, refund, expire, adjust",
                )
            })
    }
}

/// Where granted credits came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GrantSource {
    /// A plan's periodic grant (the free tier's or a subscription's).
    Plan,
    /// A purchased credit pack.
    Purchase,
    /// A promotion.
    Promo,
    /// An operator.
    Admin,
}

impl GrantSource {
    /// The stored and wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            GrantSource::Plan => "plan",
            GrantSource::Purchase => "purchase",
            GrantSource::Promo => "promo",
            GrantSource::Admin => "admin",
        }
    }

    /// Parses a stored or typed name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            GrantSource::Plan,
            GrantSource::Purchase,
            GrantSource::Promo,
            GrantSource::Admin,
        ]
        .into_iter()
        .find(|g| g.as_str() == s)
    }
}

/// One ledger entry. Entries are never changed or deleted while the ledger is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    /// UUIDv7, so entries list in the order they were made.
    pub id: Uuid,
    /// The organisation whose credits changed.
    pub org_id: Uuid,
    /// What happened.
    pub kind: EntryKind,
    /// Credits added (positive) or taken (negative).
    pub amount: i64,
    /// The balance right after this entry.
    pub balance_after: i64,
    /// Unique per organisation: the same operation retried finds this entry.
    pub business_key: String,
    /// For grants, where the credits came from; for reservations, the metered operation.
    pub source: Option<String>,
    /// Why (required for operator adjustments).
    pub reason: Option<String>,
    /// The user who made it, for operator actions and purchases.
    pub actor_id: Option<Uuid>,
    /// The API token of the request that did the work.
    pub token_id: Option<Uuid>,
    /// The reservation this entry belongs to.
    pub reservation_id: Option<Uuid>,
    /// The lot a grant created or an expiry emptied.
    pub lot_id: Option<Uuid>,
    /// When a grant's credits expire.
    pub expires_at: Option<OffsetDateTime>,
    /// When.
    pub created_at: OffsetDateTime,
}

impl LedgerEntry {
    /// An entry with the fields every kind has; storage fills `amount` and `balance_after`
    /// where the rules decide them.
    pub fn new(
        org_id: Uuid,
        kind: EntryKind,
        business_key: impl Into<String>,
        at: OffsetDateTime,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            org_id,
            kind,
            amount: 0,
            balance_after: 0,
            business_key: business_key.into(),
            source: None,
            reason: None,
            actor_id: None,
            token_id: None,
            reservation_id: None,
            lot_id: None,
            expires_at: None,
            created_at: at,
        }
    }
}

/// Where a reservation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReservationState {
    /// Credits are held for work in progress.
    Held,
    /// The work finished and its cost was kept.
    Settled,
    /// The work failed or was abandoned; everything went back.
    Released,
    /// The settled cost was given back.
    Refunded,
}

impl ReservationState {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ReservationState::Held => "held",
            ReservationState::Settled => "settled",
            ReservationState::Released => "released",
            ReservationState::Refunded => "refunded",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            ReservationState::Held,
            ReservationState::Settled,
            ReservationState::Released,
            ReservationState::Refunded,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// Credits held for one piece of metered work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// UUIDv7.
    pub id: Uuid,
    /// Whose credits.
    pub org_id: Uuid,
    /// The metered operation (`render`, `optimize`, …).
    pub op: String,
    /// Credits held.
    pub amount: i64,
    /// What the work cost, once settled.
    pub cost: Option<i64>,
    /// Where it stands.
    pub state: ReservationState,
    /// The API token of the request.
    pub token_id: Option<Uuid>,
    /// A reservation still held after this was abandoned (its process died); the sweeper
    /// releases it.
    pub expires_at: OffsetDateTime,
    /// When.
    pub created_at: OffsetDateTime,
    /// When it was settled, released or refunded.
    pub finished_at: Option<OffsetDateTime>,
}

/// How a reservation ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// Keep `cost` credits (at most the amount held) and return the rest.
    Settle {
        /// Credits the work cost.
        cost: i64,
    },
    /// Return everything held.
    Release,
    /// Give back a settled reservation's cost.
    Refund,
}

impl Finish {
    /// The entry kind this finish writes.
    pub const fn kind(self) -> EntryKind {
        match self {
            Finish::Settle { .. } => EntryKind::Settle,
            Finish::Release => EntryKind::Release,
            Finish::Refund => EntryKind::Refund,
        }
    }

    /// The state it leaves the reservation in.
    pub const fn state(self) -> ReservationState {
        match self {
            Finish::Settle { .. } => ReservationState::Settled,
            Finish::Release => ReservationState::Released,
            Finish::Refund => ReservationState::Refunded,
        }
    }
}

/// What a ledger write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied<T> {
    /// It was applied now.
    New(T),
    /// The same business key was applied before; this is what it did then.
    Replayed(T),
}

impl<T> Applied<T> {
    /// The entry or reservation, whether new or replayed.
    pub fn into_inner(self) -> T {
        match self {
            Applied::New(t) | Applied::Replayed(t) => t,
        }
    }

    /// Whether this call applied it.
    pub fn is_new(&self) -> bool {
        matches!(self, Applied::New(_))
    }
}

/// The outcome of a write that takes credits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Debit<T> {
    /// Done (now or before).
    Done(Applied<T>),
    /// The balance is smaller than the amount; nothing was written.
    Insufficient {
        /// The balance at the time.
        balance: i64,
    },
}

/// The outcome of finishing a reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finished {
    /// Done now; the entry written.
    New(LedgerEntry),
    /// It had already ended this same way.
    Replayed(LedgerEntry),
    /// It had ended another way (e.g. released, asked to settle), or cannot end this way
    /// (refunding a reservation that was never settled).
    Conflict(ReservationState),
    /// No such reservation in this organisation.
    NotFound,
}

/// The sums a consistent ledger agrees on; see [`Totals::consistent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Totals {
    /// The cached balance.
    pub balance: i64,
    /// The sum of every entry's amount.
    pub entries: i64,
    /// Credits left in lots.
    pub lots: i64,
    /// Credits held by reservations still open.
    pub held: i64,
}

impl Totals {
    /// Balance = sum of entries = credits left in lots, and never negative.
    pub fn consistent(&self) -> bool {
        self.balance >= 0 && self.balance == self.entries && self.balance == self.lots
    }
}

/// How holds and settles shared transactions (the store's group commit), counted since the
/// store was opened in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct GroupStats {
    /// Holds and settles answered.
    pub requests: u64,
    /// Transactions they took.
    pub transactions: u64,
}

/// Which entries to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryFilter {
    /// Only these kinds (all when empty).
    pub kinds: Vec<EntryKind>,
    /// Made at or after.
    pub since: Option<OffsetDateTime>,
    /// Made before.
    pub until: Option<OffsetDateTime>,
}

/// A lot as the spending rule sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lot {
    /// Its id.
    pub id: Uuid,
    /// Credits left.
    pub remaining: i64,
    /// When it expires.
    pub expires_at: Option<OffsetDateTime>,
    /// When it was made.
    pub created_at: OffsetDateTime,
}

/// Takes `amount` from `lots`: soonest expiry first, never-expiring last, older first among
/// equals. Returns `(lot, taken)` in the order taken; empty when the lots hold too little.
pub fn draw(lots: &[Lot], amount: i64) -> Vec<(Uuid, i64)> {
    let mut order: Vec<&Lot> = lots.iter().filter(|l| l.remaining > 0).collect();
    order.sort_by_key(|l| (l.expires_at.is_none(), l.expires_at, l.created_at, l.id));
    let mut left = amount;
    let mut taken = Vec::new();
    for l in order {
        if left == 0 {
            break;
        }
        let take = l.remaining.min(left);
        taken.push((l.id, take));
        left -= take;
    }
    if left > 0 { Vec::new() } else { taken }
}

/// Splits `amount` returned to a reservation over what it drew, last drawn first (so what is
/// kept stays on the soonest-expiring lots). `drawn` is `(seq, lot, still drawn)` in draw
/// order; returns `(seq, lot, returned)`.
pub fn give_back(drawn: &[(i32, Uuid, i64)], amount: i64) -> Vec<(i32, Uuid, i64)> {
    let mut left = amount;
    let mut out = Vec::new();
    for &(seq, lot, have) in drawn.iter().rev() {
        if left == 0 {
            break;
        }
        let back = have.min(left);
        if back > 0 {
            out.push((seq, lot, back));
            left -= back;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lot(n: u128, remaining: i64, expires_in_days: Option<i64>) -> Lot {
        let t0 = OffsetDateTime::UNIX_EPOCH;
        Lot {
            id: Uuid::from_u128(n),
            remaining,
            expires_at: expires_in_days.map(|d| t0 + time::Duration::days(d)),
            created_at: t0 + time::Duration::seconds(n as i64),
        }
    }

    #[test]
    fn credits_that_expire_soonest_are_spent_first() {
        let lots = [lot(1, 10, None), lot(2, 5, Some(30)), lot(3, 5, Some(10))];
        let taken = draw(&lots, 12);
        assert_eq!(
            taken,
            vec![
                (Uuid::from_u128(3), 5),
                (Uuid::from_u128(2), 5),
                (Uuid::from_u128(1), 2)
            ]
        );
        assert!(draw(&lots, 21).is_empty(), "20 credits cannot cover 21");
    }

    #[test]
    fn unused_credits_go_back_to_the_latest_lot_first() {
        let drawn = [(0, Uuid::from_u128(3), 5), (1, Uuid::from_u128(1), 2)];
        assert_eq!(
            give_back(&drawn, 4),
            vec![(1, Uuid::from_u128(1), 2), (0, Uuid::from_u128(3), 2)]
        );
    }
}
