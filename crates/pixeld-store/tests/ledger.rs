//! The credit ledger on SQLite and on PostgreSQL (a fresh database per test): grants, holds,
//! settlements, releases, refunds, expiry, idempotency, concurrency, and a property test that
//! any interleaving keeps balance = sum of entries = credits in lots, and never negative.

use std::sync::Arc;

use pixeld_core::ledger::*;
use pixeld_core::page::PageRequest;
use pixeld_core::store::{Org, Store};
use pixeld_store::testing::{Backend, TestDb, on_both};
use proptest::prelude::*;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

fn t0() -> OffsetDateTime {
    pixeld_core::clock::truncate(OffsetDateTime::now_utc())
}

async fn org(store: &Arc<dyn Store>) -> Uuid {
    let o = Org {
        id: Uuid::now_v7(),
        name: "Acme".into(),
        personal: false,
        created_at: t0(),
    };
    // An org needs an owner row in the foundation schema; the ledger itself needs none.
    let owner = pixeld_core::store::User {
        id: Uuid::now_v7(),
        email: format!("{}@example.com", o.id.simple()),
        name: "Owner".into(),
        password_hash: "$argon2id$fake".into(),
        email_verified_at: None,
        is_admin: false,
        disabled_at: None,
        totp_secret: None,
        totp_pending_secret: None,
        totp_last_step: None,
        personal_org_id: o.id,
        created_at: o.created_at,
    };
    store.create_user(&owner, &o).await.unwrap();
    o.id
}

async fn grant(
    store: &Arc<dyn Store>,
    org: Uuid,
    key: &str,
    amount: i64,
    expires_at: Option<OffsetDateTime>,
    at: OffsetDateTime,
) -> Applied<LedgerEntry> {
    let mut e = LedgerEntry::new(org, EntryKind::Grant, key, at);
    e.amount = amount;
    e.source = Some("promo".into());
    e.expires_at = expires_at;
    store.ledger_credit(&e).await.unwrap()
}

async fn reserve(
    store: &Arc<dyn Store>,
    org: Uuid,
    key: &str,
    amount: i64,
    at: OffsetDateTime,
) -> Debit<Reservation> {
    let r = Reservation {
        id: Uuid::now_v7(),
        org_id: org,
        op: "render".into(),
        amount,
        cost: None,
        state: ReservationState::Held,
        token_id: None,
        expires_at: at + Duration::minutes(15),
        created_at: at,
        finished_at: None,
    };
    let e = LedgerEntry::new(org, EntryKind::Reserve, key, at);
    store.ledger_reserve(&r, &e, at).await.unwrap()
}

async fn finish(
    store: &Arc<dyn Store>,
    org: Uuid,
    rid: Uuid,
    how: Finish,
    at: OffsetDateTime,
) -> Finished {
    let e = LedgerEntry::new(org, how.kind(), format!("{}:{rid}", how.kind()), at);
    store.ledger_finish(org, rid, how, &e, at).await.unwrap()
}

fn held(d: Debit<Reservation>) -> Reservation {
    match d {
        Debit::Done(Applied::New(r)) => r,
        other => panic!("expected a new reservation, got {other:?}"),
    }
}

async fn consistent(store: &Arc<dyn Store>, org: Uuid) -> Totals {
    let t = store.ledger_totals(org).await.unwrap();
    assert!(t.consistent(), "ledger out of balance: {t:?}");
    t
}

#[tokio::test]
async fn a_retried_grant_applies_once() {
    on_both(|store| async move {
        let org = org(&store).await;
        let at = t0();
        let first = grant(&store, org, "promo:launch", 40, None, at).await;
        assert!(first.is_new());
        let again = grant(&store, org, "promo:launch", 40, None, at).await;
        assert_eq!(again, Applied::Replayed(first.clone().into_inner()));
        assert_eq!(store.ledger_balance(org).await.unwrap(), 40);
        assert_eq!(first.into_inner().balance_after, 40);
        assert_eq!(consistent(&store, org).await.entries, 40);
    })
    .await;
}

#[tokio::test]
async fn work_holds_then_settles_releases_or_refunds() {
    on_both(|store| async move {
        let org = org(&store).await;
        let at = t0();
        grant(&store, org, "g", 10, None, at).await;

        // Settled work keeps its cost and returns the rest.
        let a = held(reserve(&store, org, "reserve:a", 4, at).await);
        assert_eq!(store.ledger_balance(org).await.unwrap(), 6);
        assert_eq!(consistent(&store, org).await.held, 4);
        let Finished::New(s) = finish(&store, org, a.id, Finish::Settle { cost: 3 }, at).await
        else {
            panic!("settle")
        };
        assert_eq!(
            (s.kind, s.amount, s.balance_after),
            (EntryKind::Settle, 1, 7)
        );
        // Settling again is a no-op that finds the first settlement.
        assert_eq!(
            finish(&store, org, a.id, Finish::Settle { cost: 3 }, at).await,
            Finished::Replayed(s)
        );
        // A settled reservation cannot be released.
        assert_eq!(
            finish(&store, org, a.id, Finish::Release, at).await,
            Finished::Conflict(ReservationState::Settled)
        );

        // Failed work gets everything back.
        let b = held(reserve(&store, org, "reserve:b", 5, at).await);
        assert_eq!(store.ledger_balance(org).await.unwrap(), 2);
        let Finished::New(r) = finish(&store, org, b.id, Finish::Release, at).await else {
            panic!("release")
        };
        assert_eq!((r.amount, r.balance_after), (5, 7));

        // A refund gives back what a settled reservation cost, once.
        let Finished::New(f) = finish(&store, org, a.id, Finish::Refund, at).await else {
            panic!("refund")
        };
        assert_eq!(
            (f.kind, f.amount, f.balance_after),
            (EntryKind::Refund, 3, 10)
        );
        assert!(matches!(
            finish(&store, org, a.id, Finish::Refund, at).await,
            Finished::Replayed(_)
        ));
        // A released reservation was never charged: nothing to refund.
        assert_eq!(
            finish(&store, org, b.id, Finish::Refund, at).await,
            Finished::Conflict(ReservationState::Released)
        );
        assert_eq!(
            finish(&store, org, Uuid::now_v7(), Finish::Release, at).await,
            Finished::NotFound
        );
        let t = consistent(&store, org).await;
        assert_eq!((t.balance, t.held), (10, 0));
    })
    .await;
}

#[tokio::test]
async fn a_balance_too_small_refuses_the_whole_hold_and_writes_nothing() {
    on_both(|store| async move {
        let org = org(&store).await;
        let at = t0();
        // An organisation that never had credits.
        assert_eq!(
            reserve(&store, org, "reserve:x", 1, at).await,
            Debit::Insufficient { balance: 0 }
        );
        grant(&store, org, "g", 3, None, at).await;
        assert_eq!(
            reserve(&store, org, "reserve:y", 4, at).await,
            Debit::Insufficient { balance: 3 }
        );
        let entries = store
            .ledger_entries(org, &EntryFilter::default(), PageRequest::default())
            .await
            .unwrap();
        assert_eq!(entries.len(), 1, "only the grant: {entries:?}");
        // A retried reservation finds the first one instead of holding twice.
        let first = held(reserve(&store, org, "reserve:z", 2, at).await);
        assert_eq!(
            reserve(&store, org, "reserve:z", 2, at).await,
            Debit::Done(Applied::Replayed(first))
        );
        assert_eq!(store.ledger_balance(org).await.unwrap(), 1);
        consistent(&store, org).await;
    })
    .await;
}

#[tokio::test]
async fn expiring_credits_are_spent_first_and_the_rest_expire_on_time() {
    on_both(|store| async move {
        let org = org(&store).await;
        let at = t0();
        grant(&store, org, "forever", 10, None, at).await;
        grant(&store, org, "monthly", 5, Some(at + Duration::days(30)), at).await;
        grant(&store, org, "weekly", 5, Some(at + Duration::days(7)), at).await;

        // 7 credits: the weekly lot's 5, then 2 of the monthly lot.
        let r = held(reserve(&store, org, "reserve:a", 7, at).await);
        finish(&store, org, r.id, Finish::Settle { cost: 7 }, at).await;

        // After 8 days the weekly lot is empty (nothing to expire); after 31 the monthly
        // lot's last 3 expire and the 10 that never expire remain.
        assert_eq!(
            store
                .ledger_expire(at + Duration::days(8), 100)
                .await
                .unwrap(),
            1
        );
        assert_eq!(store.ledger_balance(org).await.unwrap(), 13);
        assert_eq!(
            store
                .ledger_expire(at + Duration::days(31), 100)
                .await
                .unwrap(),
            1
        );
        assert_eq!(store.ledger_balance(org).await.unwrap(), 10);
        // Expiring is idempotent.
        assert_eq!(
            store
                .ledger_expire(at + Duration::days(32), 100)
                .await
                .unwrap(),
            0
        );
        let expired = store
            .ledger_entries(
                org,
                &EntryFilter {
                    kinds: vec![EntryKind::Expire],
                    ..EntryFilter::default()
                },
                PageRequest::default(),
            )
            .await
            .unwrap();
        assert_eq!(
            expired.iter().map(|e| e.amount).collect::<Vec<_>>(),
            vec![-3]
        );
        consistent(&store, org).await;
    })
    .await;
}

#[tokio::test]
async fn expired_credits_cannot_be_spent_even_before_the_sweeper_runs() {
    on_both(|store| async move {
        let org = org(&store).await;
        let at = t0();
        grant(&store, org, "week", 5, Some(at + Duration::days(7)), at).await;
        let later = at + Duration::days(8);
        assert_eq!(
            reserve(&store, org, "reserve:late", 1, later).await,
            Debit::Insufficient { balance: 0 }
        );
        let t = consistent(&store, org).await;
        assert_eq!(t.balance, 0);
    })
    .await;
}

#[tokio::test]
async fn credits_released_after_their_lot_expired_expire_too() {
    on_both(|store| async move {
        let org = org(&store).await;
        let at = t0();
        grant(&store, org, "week", 5, Some(at + Duration::days(7)), at).await;
        let r = held(reserve(&store, org, "reserve:long", 5, at).await);
        // The lot expires while its credits are held (nothing left in it to expire).
        store
            .ledger_expire(at + Duration::days(8), 100)
            .await
            .unwrap();
        let Finished::New(rel) =
            finish(&store, org, r.id, Finish::Release, at + Duration::days(8)).await
        else {
            panic!("release")
        };
        assert_eq!(rel.amount, 5);
        assert_eq!(store.ledger_balance(org).await.unwrap(), 0);
        let kinds: Vec<(EntryKind, i64)> = store
            .ledger_entries(org, &EntryFilter::default(), PageRequest::default())
            .await
            .unwrap()
            .iter()
            .map(|e| (e.kind, e.amount))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (EntryKind::Grant, 5),
                (EntryKind::Reserve, -5),
                (EntryKind::Release, 5),
                (EntryKind::Expire, -5)
            ]
        );
        consistent(&store, org).await;
    })
    .await;
}

#[tokio::test]
async fn abandoned_reservations_are_found_after_their_timeout() {
    on_both(|store| async move {
        let org = org(&store).await;
        let at = t0();
        grant(&store, org, "g", 5, None, at).await;
        let r = held(reserve(&store, org, "reserve:crash", 2, at).await);
        assert!(
            store
                .stale_reservations(at + Duration::minutes(14), 10)
                .await
                .unwrap()
                .is_empty()
        );
        let stale = store
            .stale_reservations(at + Duration::minutes(16), 10)
            .await
            .unwrap();
        assert_eq!(stale.iter().map(|s| s.id).collect::<Vec<_>>(), vec![r.id]);
        finish(
            &store,
            org,
            r.id,
            Finish::Release,
            at + Duration::minutes(16),
        )
        .await;
        assert!(
            store
                .stale_reservations(at + Duration::minutes(16), 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.ledger_balance(org).await.unwrap(), 5);
    })
    .await;
}

#[tokio::test]
async fn an_adjustment_can_take_credits_but_never_below_zero() {
    on_both(|store| async move {
        let org = org(&store).await;
        let at = t0();
        grant(&store, org, "g", 5, None, at).await;
        let mut e = LedgerEntry::new(org, EntryKind::Adjust, "admin:fix", at);
        e.amount = -6;
        e.reason = Some("duplicate grant".into());
        assert_eq!(
            store.ledger_debit(&e, at).await.unwrap(),
            Debit::Insufficient { balance: 5 }
        );
        e.amount = -4;
        let Debit::Done(Applied::New(d)) = store.ledger_debit(&e, at).await.unwrap() else {
            panic!("debit")
        };
        assert_eq!(d.balance_after, 1);
        assert!(matches!(
            store.ledger_debit(&e, at).await.unwrap(),
            Debit::Done(Applied::Replayed(_))
        ));
        consistent(&store, org).await;
    })
    .await;
}

#[tokio::test]
async fn entries_page_and_filter_by_kind_and_time() {
    on_both(|store| async move {
        let org = org(&store).await;
        let at = t0();
        for i in 0..5 {
            grant(
                &store,
                org,
                &format!("g{i}"),
                1,
                None,
                at + Duration::seconds(i),
            )
            .await;
        }
        let r = held(reserve(&store, org, "reserve:r", 2, at + Duration::seconds(10)).await);
        finish(
            &store,
            org,
            r.id,
            Finish::Settle { cost: 2 },
            at + Duration::seconds(11),
        )
        .await;
        let all = EntryFilter::default();
        let p1 = store
            .ledger_entries(
                org,
                &all,
                PageRequest {
                    after: None,
                    limit: 3,
                },
            )
            .await
            .unwrap();
        assert_eq!(p1.len(), 4, "limit + 1 rows tell that a next page exists");
        let p2 = store
            .ledger_entries(
                org,
                &all,
                PageRequest {
                    after: Some(p1[2].id),
                    limit: 10,
                },
            )
            .await
            .unwrap();
        assert_eq!(p2.len(), 4);
        let grants = EntryFilter {
            kinds: vec![EntryKind::Grant],
            since: Some(at + Duration::seconds(2)),
            until: Some(at + Duration::seconds(4)),
        };
        let g = store
            .ledger_entries(org, &grants, PageRequest::default())
            .await
            .unwrap();
        assert_eq!(
            g.iter()
                .map(|e| e.business_key.as_str())
                .collect::<Vec<_>>(),
            vec!["g2", "g3"]
        );
        // Other organisations see none of it.
        let other = self::org(&store).await;
        assert!(
            store
                .ledger_entries(other, &all, PageRequest::default())
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.reservation(other, r.id).await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn two_hundred_concurrent_holds_on_fifty_credits_exactly_fifty_succeed() {
    on_both(|store| async move {
        let org = org(&store).await;
        let at = t0();
        grant(&store, org, "g", 50, None, at).await;
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(
                    async move { reserve(&store, org, &format!("reserve:{i}"), 1, at).await },
                )
            })
            .collect();
        let mut ok = 0;
        let mut refused = 0;
        for t in tasks {
            match t.await.unwrap() {
                Debit::Done(Applied::New(_)) => ok += 1,
                Debit::Insufficient { balance: 0 } => refused += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((ok, refused), (50, 150));
        let t = consistent(&store, org).await;
        assert_eq!((t.balance, t.held), (0, 50));
    })
    .await;
}

#[tokio::test]
async fn concurrent_holds_and_settles_of_one_organisation_share_transactions() {
    on_both(|store| async move {
        let org = org(&store).await;
        let at = t0();
        grant(&store, org, "g", 1000, None, at).await;
        let before = store.ledger_group_stats();
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let r = held(reserve(&store, org, &format!("reserve:{i}"), 3, at).await);
                    (
                        r.id,
                        finish(&store, org, r.id, Finish::Settle { cost: 3 }, at).await,
                    )
                })
            })
            .collect();
        let mut ids = std::collections::HashSet::new();
        for t in tasks {
            let (rid, done) = t.await.unwrap();
            match done {
                Finished::New(e) => {
                    assert_eq!(
                        (e.kind, e.amount, e.reservation_id),
                        (EntryKind::Settle, 0, Some(rid))
                    );
                }
                other => panic!("expected a new settle, got {other:?}"),
            }
            assert!(ids.insert(rid));
        }
        let t = consistent(&store, org).await;
        assert_eq!((t.balance, t.held), (1000 - 64 * 3, 0));
        let entries = store
            .ledger_entries(
                org,
                &EntryFilter::default(),
                PageRequest {
                    after: None,
                    limit: 500,
                },
            )
            .await
            .unwrap();
        let count = |k: EntryKind| entries.iter().filter(|e| e.kind == k).count();
        assert_eq!(
            (count(EntryKind::Reserve), count(EntryKind::Settle)),
            (64, 64)
        );
        // Every entry's balance_after is the sum of the entries up to it, in id order.
        let mut balance = 0;
        for e in &entries {
            balance += e.amount;
            assert_eq!(e.balance_after, balance, "{e:?}");
        }
        for id in &ids {
            let r = store.reservation(org, *id).await.unwrap().unwrap();
            assert_eq!((r.state, r.cost), (ReservationState::Settled, Some(3)));
            assert!(r.finished_at.is_some());
        }
        let after = store.ledger_group_stats();
        let (requests, transactions) = (
            after.requests - before.requests,
            after.transactions - before.transactions,
        );
        assert_eq!(requests, 128);
        assert!(
            transactions < requests,
            "128 concurrent holds and settles took {transactions} transactions"
        );
    })
    .await;
}

#[tokio::test]
async fn concurrent_debits_of_many_organisations_share_transactions_and_each_adds_up() {
    on_both(|store| async move {
        let at = t0();
        let mut orgs = Vec::new();
        for i in 0..16 {
            let o = org(&store).await;
            grant(&store, o, "g", 100 + i, None, at).await;
            orgs.push(o);
        }
        // A second organisation of the group has a lot due to expire: its holds go one at a
        // time (the lot expires first), beside the others' in groups.
        let expiring = org(&store).await;
        grant(
            &store,
            expiring,
            "soon",
            10,
            Some(at + Duration::hours(1)),
            at,
        )
        .await;
        grant(&store, expiring, "later", 10, None, at).await;
        let later = at + Duration::hours(2);
        let before = store.ledger_group_stats();
        let mut tasks = Vec::new();
        for round in 0..4 {
            for (i, o) in orgs.iter().enumerate() {
                let (store, o) = (store.clone(), *o);
                tasks.push(tokio::spawn(async move {
                    let r = held(
                        reserve(
                            &store,
                            o,
                            &format!("reserve:{round}"),
                            1 + i as i64 % 3,
                            later,
                        )
                        .await,
                    );
                    let cost = 1 + i as i64 % 3;
                    assert!(matches!(
                        finish(&store, o, r.id, Finish::Settle { cost }, later).await,
                        Finished::New(_)
                    ));
                }));
            }
            for k in 0..2 {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    let _ =
                        reserve(&store, expiring, &format!("reserve:{round}:{k}"), 3, later).await;
                }));
            }
        }
        for t in tasks {
            t.await.unwrap();
        }
        for (i, o) in orgs.iter().enumerate() {
            let t = consistent(&store, *o).await;
            assert_eq!(
                (t.balance, t.held),
                (100 + i as i64 - 4 * (1 + i as i64 % 3), 0)
            );
        }
        // The due lot expired before any hold: 10 credits left, three holds of 3 fit.
        let t = consistent(&store, expiring).await;
        assert_eq!((t.balance, t.held), (1, 9));
        let entries = store
            .ledger_entries(expiring, &EntryFilter::default(), PageRequest::default())
            .await
            .unwrap();
        assert_eq!(
            entries
                .iter()
                .filter(|e| e.kind == EntryKind::Expire)
                .count(),
            1
        );
        let after = store.ledger_group_stats();
        let requests = after.requests - before.requests;
        let transactions = after.transactions - before.transactions;
        assert_eq!(requests, 16 * 4 * 2 + 8);
        assert!(
            transactions < requests,
            "{requests} concurrent holds and settles took {transactions} transactions"
        );
    })
    .await;
}

#[tokio::test]
async fn a_hold_retried_while_the_first_is_in_flight_applies_once() {
    on_both(|store| async move {
        let org = org(&store).await;
        let at = t0();
        grant(&store, org, "g", 100, None, at).await;
        // Eight copies of one request (same key) among eight others, all at once.
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let store = store.clone();
                let key = if i % 2 == 0 {
                    "reserve:same".to_string()
                } else {
                    format!("reserve:{i}")
                };
                tokio::spawn(async move { (i % 2 == 0, reserve(&store, org, &key, 5, at).await) })
            })
            .collect();
        let (mut new, mut replayed) = (Vec::new(), Vec::new());
        for t in tasks {
            match t.await.unwrap() {
                (true, Debit::Done(Applied::New(r))) => new.push(r.id),
                (true, Debit::Done(Applied::Replayed(r))) => replayed.push(r.id),
                (false, Debit::Done(Applied::New(_))) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((new.len(), replayed.len()), (1, 7));
        assert!(replayed.iter().all(|id| *id == new[0]));
        let t = consistent(&store, org).await;
        assert_eq!((t.balance, t.held), (100 - 9 * 5, 9 * 5));
    })
    .await;
}

#[tokio::test]
async fn settles_sent_twice_at_once_or_for_less_than_held_apply_exactly() {
    on_both(|store| async move {
        let org = org(&store).await;
        let at = t0();
        grant(&store, org, "g", 100, None, at).await;
        let mut rids = Vec::new();
        for i in 0..8 {
            rids.push(held(reserve(&store, org, &format!("reserve:{i}"), 5, at).await).id);
        }
        // Every reservation settled twice at once; two of them for less than they hold.
        let tasks: Vec<_> = rids
            .iter()
            .chain(rids.iter())
            .enumerate()
            .map(|(n, rid)| {
                let (store, rid) = (store.clone(), *rid);
                let cost = if rid == rids[1] || rid == rids[5] {
                    2
                } else {
                    5
                };
                tokio::spawn(async move {
                    (
                        n,
                        rid,
                        finish(&store, org, rid, Finish::Settle { cost }, at).await,
                    )
                })
            })
            .collect();
        let mut firsts = std::collections::HashMap::new();
        let mut replays = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                (_, rid, Finished::New(e)) => {
                    assert!(firsts.insert(rid, e).is_none(), "settled twice")
                }
                (_, rid, Finished::Replayed(e)) => replays.push((rid, e)),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((firsts.len(), replays.len()), (8, 8));
        for (rid, e) in replays {
            assert_eq!(firsts[&rid], e);
        }
        assert_eq!(firsts[&rids[1]].amount, 3);
        assert_eq!(firsts[&rids[0]].amount, 0);
        let t = consistent(&store, org).await;
        assert_eq!((t.balance, t.held), (100 - 6 * 5 - 2 * 2, 0));
    })
    .await;
}

/// One step of the property test.
#[derive(Debug, Clone)]
enum Op {
    Grant {
        key: u8,
        amount: i64,
        expires_h: Option<i64>,
    },
    Reserve {
        key: u8,
        amount: i64,
    },
    Settle {
        which: usize,
        cost: i64,
    },
    Release {
        which: usize,
    },
    Refund {
        which: usize,
    },
    Adjust {
        key: u8,
        delta: i64,
    },
    Wait {
        hours: i64,
    },
    Expire,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..6, 1i64..40, proptest::option::of(1i64..72)).prop_map(|(key, amount, expires_h)| {
            Op::Grant {
                key,
                amount,
                expires_h,
            }
        }),
        (0u8..12, 1i64..25).prop_map(|(key, amount)| Op::Reserve { key, amount }),
        (0usize..12, 0i64..30).prop_map(|(which, cost)| Op::Settle { which, cost }),
        (0usize..12).prop_map(|which| Op::Release { which }),
        (0usize..12).prop_map(|which| Op::Refund { which }),
        (0u8..4, -30i64..30).prop_map(|(key, delta)| Op::Adjust { key, delta }),
        (0i64..48).prop_map(|hours| Op::Wait { hours }),
        Just(Op::Expire),
    ]
}

/// Runs `ops` against a fresh organisation and checks after every step that the ledger is
/// consistent, that a refusal happened only when the balance was short, and that a replay
/// changed nothing.
async fn run_ops(store: Arc<dyn Store>, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let org = org(&store).await;
    let mut now = t0();
    let mut reservations: Vec<Uuid> = Vec::new();
    for op in ops {
        let before = store.ledger_totals(org).await.unwrap();
        match op.clone() {
            Op::Grant {
                key,
                amount,
                expires_h,
            } => {
                grant(
                    &store,
                    org,
                    &format!("grant:{key}"),
                    amount,
                    expires_h.map(|h| now + Duration::hours(h)),
                    now,
                )
                .await;
            }
            Op::Reserve { key, amount } => {
                match reserve(&store, org, &format!("reserve:{key}"), amount, now).await {
                    Debit::Done(Applied::New(r)) => reservations.push(r.id),
                    Debit::Done(Applied::Replayed(_)) => {
                        let after = store.ledger_totals(org).await.unwrap();
                        prop_assert_eq!(after, before, "a replayed hold changed the ledger");
                    }
                    Debit::Insufficient { balance } => {
                        prop_assert!(
                            balance < amount,
                            "refused {amount} with a balance of {balance}"
                        );
                        prop_assert!(balance <= before.balance);
                    }
                }
            }
            Op::Settle { which, cost } => {
                if let Some(id) = reservations.get(which) {
                    finish(&store, org, *id, Finish::Settle { cost }, now).await;
                }
            }
            Op::Release { which } => {
                if let Some(id) = reservations.get(which) {
                    finish(&store, org, *id, Finish::Release, now).await;
                }
            }
            Op::Refund { which } => {
                if let Some(id) = reservations.get(which) {
                    finish(&store, org, *id, Finish::Refund, now).await;
                }
            }
            Op::Adjust { key, delta } if delta != 0 => {
                let mut e = LedgerEntry::new(org, EntryKind::Adjust, format!("adjust:{key}"), now);
                e.amount = delta;
                if delta > 0 {
                    store.ledger_credit(&e).await.unwrap();
                } else if let Debit::Insufficient { balance } =
                    store.ledger_debit(&e, now).await.unwrap()
                {
                    prop_assert!(balance < -delta);
                }
            }
            Op::Adjust { .. } => {}
            Op::Wait { hours } => now += Duration::hours(hours),
            Op::Expire => {
                store.ledger_expire(now, 100).await.unwrap();
            }
        }
        let t = store.ledger_totals(org).await.unwrap();
        prop_assert!(t.consistent(), "after {op:?}: {t:?}");
        prop_assert!(t.held >= 0);
    }
    Ok(())
}

/// Runs `check` on one backend's fresh database for `PROPTEST_CASES` cases (default
/// `cases`) drawn from `strategy`, shrinking a failure to a minimal one.
fn property_on<S, F, Fut>(backend: Backend, cases: u32, strategy: S, check: F)
where
    S: Strategy,
    F: Fn(Arc<dyn Store>, S::Value) -> Fut,
    Fut: std::future::Future<Output = Result<(), TestCaseError>>,
{
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some((_db, store)) = rt.block_on(TestDb::store(backend)) else {
        return;
    };
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(cases);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        ..ProptestConfig::default()
    });
    if let Err(e) = runner.run(&strategy, |v| rt.block_on(check(store.clone(), v))) {
        panic!("{e}");
    }
}

fn sequential_property_on(backend: Backend) {
    property_on(backend, 48, proptest::collection::vec(op(), 1..40), run_ops);
}

#[test]
fn any_interleaving_keeps_balance_equal_to_the_entries_and_never_negative_on_sqlite() {
    sequential_property_on(Backend::Sqlite);
}

#[test]
fn any_interleaving_keeps_balance_equal_to_the_entries_and_never_negative_on_postgres() {
    sequential_property_on(Backend::Postgres);
}

/// Runs `waves` of ops against a fresh organisation, each wave's ops all at once (so holds
/// and settles meet in shared transactions), and checks after every wave that the ledger is
/// consistent and that what each op was told matches what the ledger holds.
async fn run_waves(store: Arc<dyn Store>, waves: Vec<Vec<Op>>) -> Result<(), TestCaseError> {
    let org = org(&store).await;
    let now = t0();
    let mut reservations: Vec<Uuid> = Vec::new();
    for wave in waves {
        let tasks: Vec<_> = wave
            .into_iter()
            .map(|op| {
                let store = store.clone();
                let target = match &op {
                    Op::Settle { which, .. } | Op::Release { which } | Op::Refund { which } => {
                        reservations.get(*which).copied()
                    }
                    _ => None,
                };
                tokio::spawn(async move {
                    match op {
                        Op::Grant {
                            key,
                            amount,
                            expires_h,
                        } => {
                            let expires = expires_h.map(|h| now + Duration::hours(h));
                            grant(&store, org, &format!("grant:{key}"), amount, expires, now).await;
                            None
                        }
                        Op::Reserve { key, amount } => {
                            match reserve(&store, org, &format!("reserve:{key}"), amount, now).await
                            {
                                Debit::Done(Applied::New(r)) => Some(r.id),
                                _ => None,
                            }
                        }
                        Op::Settle { cost, .. } => {
                            if let Some(id) = target {
                                finish(&store, org, id, Finish::Settle { cost }, now).await;
                            }
                            None
                        }
                        Op::Release { .. } => {
                            if let Some(id) = target {
                                finish(&store, org, id, Finish::Release, now).await;
                            }
                            None
                        }
                        Op::Refund { .. } => {
                            if let Some(id) = target {
                                finish(&store, org, id, Finish::Refund, now).await;
                            }
                            None
                        }
                        _ => None,
                    }
                })
            })
            .collect();
        for t in tasks {
            if let Some(id) = t.await.unwrap() {
                let r = store.reservation(org, id).await.unwrap().unwrap();
                prop_assert_eq!(r.org_id, org);
                reservations.push(id);
            }
        }
        let t = store.ledger_totals(org).await.unwrap();
        prop_assert!(t.consistent(), "after a wave: {t:?}");
        prop_assert!(t.held >= 0);
    }
    Ok(())
}

fn concurrent_property_on(backend: Backend) {
    let waves = proptest::collection::vec(proptest::collection::vec(op(), 1..12), 1..8);
    property_on(backend, 24, waves, run_waves);
}

#[test]
fn any_concurrent_mix_keeps_balance_equal_to_the_entries_and_never_negative_on_sqlite() {
    concurrent_property_on(Backend::Sqlite);
}

#[test]
fn any_concurrent_mix_keeps_balance_equal_to_the_entries_and_never_negative_on_postgres() {
    concurrent_property_on(Backend::Postgres);
}
