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

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use pixeld_core::ledger::{
    Applied, Debit, EntryKind, Finished, GroupStats, LedgerEntry, Lot, Reservation,
    ReservationState, draw,
};
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
    fn take(&self) -> Vec<Op> {
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

/// Ends the leader (see [`Groups::abandon`]) unless it stopped because nothing waited: a
/// leader that panicked, or whose task was dropped with its runtime, must not leave the queue
/// marked as led.
pub(crate) struct LeaderGuard<'a> {
    groups: &'a Groups,
    done: bool,
}

impl<'a> LeaderGuard<'a> {
    /// Guards the leader of `groups`.
    pub(crate) fn new(groups: &'a Groups) -> Self {
        Self {
            groups,
            done: false,
        }
    }

    /// The next group (see [`Groups::take`]); once it is empty the leader is done.
    pub(crate) fn take(&mut self) -> Vec<Op> {
        let ops = self.groups.take();
        self.done = ops.is_empty();
        ops
    }
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.groups.abandon();
        }
    }
}

/// The answer a waiting caller gets when its leader died before answering.
pub(crate) fn leader_gone() -> StoreError {
    StoreError::Backend("ledger: the transaction holding this request stopped".into())
}

/// The balance rows a group locked: organisation → (balance before the group, balance after
/// the holds planned so far). Organisations left out (no balance row, a lot due to expire)
/// have their ops answered one at a time.
pub(crate) type Balances = BTreeMap<Uuid, (i64, i64)>;

/// A settle a group writes: the reservation it ends and its entry (`source` and `token_id`
/// still to be filled from the reservation row).
pub(crate) struct PlannedSettle {
    /// Position of its op in the group.
    pub(crate) i: usize,
    pub(crate) org: Uuid,
    pub(crate) rid: Uuid,
    /// Credits the work cost: settled here only when it is the whole amount held (nothing goes
    /// back to lots).
    pub(crate) cost: i64,
    pub(crate) at: OffsetDateTime,
    pub(crate) entry: LedgerEntry,
}

/// The settles of a group whose organisations are locked: the first settle of each
/// reservation (a second one is answered alone, as a replay, after the commit). They go
/// before the holds and give nothing back, so each entry's balance is the balance before.
pub(crate) fn plan_settles(ops: &[Op], balances: &Balances) -> Vec<PlannedSettle> {
    let mut out: Vec<PlannedSettle> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let Op::Settle {
            org,
            rid,
            cost,
            e,
            now,
            ..
        } = op
        else {
            continue;
        };
        let Some(&(balance, _)) = balances.get(org) else {
            continue;
        };
        if out.iter().any(|s| s.rid == *rid) {
            continue;
        }
        let mut entry = e.clone();
        entry.id = Uuid::now_v7();
        entry.org_id = *org;
        entry.kind = EntryKind::Settle;
        entry.amount = 0;
        entry.balance_after = balance;
        entry.reservation_id = Some(*rid);
        out.push(PlannedSettle {
            i,
            org: *org,
            rid: *rid,
            cost: (*cost).max(0),
            at: *now,
            entry,
        });
    }
    out
}

/// What a group writes for its holds.
#[derive(Default)]
pub(crate) struct PlannedHolds<'a> {
    /// Position of the op in the group, and its reservation.
    pub(crate) held: Vec<(usize, &'a Reservation)>,
    /// Their `reserve` entries, in the same order.
    pub(crate) entries: Vec<LedgerEntry>,
    /// `(reservation, seq, lot, amount)` rows of `credit_allocations`.
    pub(crate) allocations: Vec<(Uuid, i32, Uuid, i64)>,
    /// Credits taken from each lot.
    pub(crate) lots: Vec<(Uuid, i64)>,
    /// How much each organisation's balance moves.
    pub(crate) moved: Vec<(Uuid, i64)>,
}

/// The holds of a group that their organisations' balances cover, in arrival order, drawing
/// on `lots` (each organisation's lots with credits left) soonest expiry first, exactly as one
/// at a time would. Moves the balances' "after" and the lots' `remaining` as it goes.
pub(crate) fn plan_holds<'a>(
    ops: &'a [Op],
    balances: &mut Balances,
    lots: &mut BTreeMap<Uuid, Vec<Lot>>,
) -> StoreResult<PlannedHolds<'a>> {
    let mut plan = PlannedHolds::default();
    for (i, op) in ops.iter().enumerate() {
        let Op::Reserve { r, e, .. } = op else {
            continue;
        };
        let Some((_, after)) = balances.get_mut(&r.org_id) else {
            continue;
        };
        if r.amount <= 0 || e.org_id != r.org_id || *after < r.amount {
            continue;
        }
        let own = lots.entry(r.org_id).or_default();
        let taken = draw(own, r.amount);
        if taken.is_empty() {
            return Err(StoreError::Backend(format!(
                "ledger: the lots of {} hold less than its balance says",
                r.org_id
            )));
        }
        for (seq, (lot, take)) in taken.into_iter().enumerate() {
            if let Some(l) = own.iter_mut().find(|l| l.id == lot) {
                l.remaining -= take;
            }
            match plan.lots.iter_mut().find(|(id, _)| *id == lot) {
                Some((_, total)) => *total += take,
                None => plan.lots.push((lot, take)),
            }
            plan.allocations.push((r.id, seq as i32, lot, take));
        }
        *after -= r.amount;
        let mut entry = e.clone();
        entry.id = Uuid::now_v7();
        entry.amount = -r.amount;
        entry.balance_after = *after;
        entry.reservation_id = Some(r.id);
        entry.source = Some(r.op.clone());
        entry.token_id = r.token_id;
        plan.entries.push(entry);
        plan.held.push((i, r));
    }
    plan.moved = balances
        .iter()
        .filter(|(_, (before, after))| before != after)
        .map(|(org, (before, after))| (*org, after - before))
        .collect();
    Ok(plan)
}

/// The answer to a hold the group wrote.
pub(crate) fn held_outcome(r: &Reservation) -> Outcome {
    let mut r = r.clone();
    r.state = ReservationState::Held;
    r.cost = None;
    r.finished_at = None;
    Outcome::Reserved(Debit::Done(Applied::New(r)))
}

/// The latest request time in a group: lots due by then expire first (one at a time).
pub(crate) fn latest(ops: &[Op]) -> OffsetDateTime {
    ops.iter()
        .map(|op| match op {
            Op::Reserve { now, .. } | Op::Settle { now, .. } => *now,
        })
        .max()
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The organisations of a group, in the order their balance rows are locked.
pub(crate) fn orgs(ops: &[Op]) -> std::collections::BTreeSet<Uuid> {
    ops.iter()
        .map(|op| match op {
            Op::Reserve { r, .. } => r.org_id,
            Op::Settle { org, .. } => *org,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settle() -> (Op, oneshot::Receiver<StoreResult<Finished>>) {
        let (done, answer) = oneshot::channel();
        let now = OffsetDateTime::UNIX_EPOCH;
        let org = Uuid::from_u128(1);
        let e = LedgerEntry::new(org, EntryKind::Settle, "settle:2", now);
        let rid = Uuid::from_u128(2);
        let op = Op::Settle {
            org,
            rid,
            cost: 1,
            e,
            now,
            done,
        };
        (op, answer)
    }

    #[test]
    fn the_first_op_starts_a_leader_which_takes_everything_queued_and_then_hands_over() {
        let groups = Groups::default();
        assert!(groups.submit(settle().0), "nothing runs: start a leader");
        assert!(!groups.submit(settle().0), "a leader runs: wait for it");
        let mut leader = LeaderGuard::new(&groups);
        assert_eq!(leader.take().len(), 2);
        assert!(!groups.submit(settle().0));
        assert_eq!(leader.take().len(), 1);
        assert!(leader.take().is_empty());
        drop(leader);
        assert!(
            groups.submit(settle().0),
            "the leader is done: the next op starts one"
        );
    }

    #[test]
    fn a_group_is_at_most_max_group_ops() {
        let groups = Groups::default();
        for _ in 0..MAX_GROUP + 3 {
            groups.submit(settle().0);
        }
        let mut leader = LeaderGuard::new(&groups);
        assert_eq!(leader.take().len(), MAX_GROUP);
        assert_eq!(leader.take().len(), 3);
        assert!(leader.take().is_empty());
    }

    #[test]
    fn a_leader_dropped_midway_fails_its_waiters_and_frees_the_queue() {
        let groups = Groups::default();
        groups.submit(settle().0);
        let mut leader = LeaderGuard::new(&groups);
        let taken = leader.take();
        let (queued, mut answer) = settle();
        assert!(!groups.submit(queued));
        // The leader's task is dropped (a panic, or its runtime shutting down).
        drop(taken);
        drop(leader);
        assert!(
            answer.try_recv().is_err(),
            "the waiter is told, not left hanging"
        );
        assert!(groups.submit(settle().0), "the next op starts a new leader");
    }
}
