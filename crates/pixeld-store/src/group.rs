//! Group commit for the credit ledger.
//!
//! Every hold and settle writes its organisation's balance row and ends with a durable commit.
//! One at a time, the requests of one organisation queue on that row (with 32 in flight, each
//! waited for the 31 commits ahead of it), and those of different organisations queue on the
//! database's commits. Instead, holds and settles that arrive while a ledger transaction is
//! running wait in one queue, and the next transaction takes all of them (at most
//! [`MAX_GROUP`], of any organisations): one statement locks their balance rows, a few
//! multi-row statements write them, and one commit makes them durable. The rules (and every
//! answer) stay those of the one-at-a-time path, which still handles whatever a group does
//! not: lots due to expire, a balance too small, replayed keys, partial settles, releases and
//! refunds.
//!
//! One spawned task leads the groups while any wait, so a caller that goes away (a cancelled
//! request) cannot strand the others.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use pixeld_core::ledger::{Debit, Finished, GroupStats, LedgerEntry, Reservation};
use pixeld_core::store::{StoreError, StoreResult};
use time::OffsetDateTime;
use tokio::sync::oneshot;
use uuid::Uuid;

/// Most holds and settles one transaction takes (bounded so statements stay well inside
/// SQLite's and PostgreSQL's limits on bound parameters).
pub(crate) const MAX_GROUP: usize = 64;

/// A hold or settle waiting for its organisation's next transaction.
pub(crate) enum Op {
    /// `ledger_reserve`.
    Reserve {
        r: Reservation,
        e: LedgerEntry,
        now: OffsetDateTime,
        done: oneshot::Sender<StoreResult<Debit<Reservation>>>,
    },
    /// `ledger_finish` with `Finish::Settle { cost }`.
    Settle {
        org: Uuid,
        rid: Uuid,
        cost: i64,
        e: LedgerEntry,
        now: OffsetDateTime,
        done: oneshot::Sender<StoreResult<Finished>>,
    },
}

/// What a group transaction decided for one of its ops.
pub(crate) enum Outcome {
    /// Held, in the committed transaction.
    Reserved(Debit<Reservation>),
    /// Settled, in the committed transaction.
    Settled(Finished),
    /// Not written by the group (a balance too small, a reservation not held, a replayed
    /// key): the one-at-a-time path answers it after the commit.
    Alone,
}

/// Holds and settles waiting for the next transaction. `running` is true exactly while a
/// leader task runs.
#[derive(Default)]
pub(crate) struct Groups {
    queue: Mutex<Queue>,
    requests: AtomicU64,
    transactions: AtomicU64,
}

#[derive(Default)]
struct Queue {
    running: bool,
    waiting: Vec<Op>,
}

impl std::fmt::Debug for Groups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Groups")
            .field("requests", &self.requests.load(Ordering::Relaxed))
            .field("transactions", &self.transactions.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Groups {
    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `op`; `true` when no leader runs and the caller must start one.
    pub(crate) fn submit(&self, op: Op) -> bool {
        let mut q = self.queue();
        q.waiting.push(op);
        !std::mem::replace(&mut q.running, true)
    }

    /// The leader's next group, oldest first; empty (and the leader done, so the next op
    /// starts a new one) when nothing waits.
    pub(crate) fn take(&self) -> Vec<Op> {
        let mut q = self.queue();
        if q.waiting.is_empty() {
            q.running = false;
            return Vec::new();
        }
        let n = q.waiting.len().min(MAX_GROUP);
        q.waiting.drain(..n).collect()
    }

    /// Drops everything queued (its callers get an error) and ends the leader: a leader that
    /// panicked must not leave the queue waiting forever.
    fn abandon(&self) {
        let mut q = self.queue();
        q.waiting.clear();
        q.running = false;
    }

    /// Counts one transaction that answered `requests` holds and settles.
    pub(crate) fn count(&self, requests: usize) {
        self.requests.fetch_add(requests as u64, Ordering::Relaxed);
        self.transactions.fetch_add(1, Ordering::Relaxed);
    }

    /// Holds and settles answered so far, and the transactions they took.
    pub(crate) fn stats(&self) -> GroupStats {
        GroupStats {
            requests: self.requests.load(Ordering::Relaxed),
            transactions: self.transactions.load(Ordering::Relaxed),
        }
    }
}

/// Ends the leader (see [`Groups::abandon`]) if it unwinds.
pub(crate) struct LeaderGuard<'a>(pub(crate) &'a Groups);

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.abandon();
        }
    }
}

/// The answer a waiting caller gets when its leader died before answering.
pub(crate) fn leader_gone() -> StoreError {
    StoreError::Backend("ledger: the transaction holding this request stopped".into())
}
