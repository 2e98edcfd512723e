//! Debits per second and per-debit latency of the credit ledger on one backend.
//!
//! A debit is what metered work does: hold the price (`ledger_reserve`), then settle it
//! (`ledger_finish`). `CONCURRENCY` tasks debit for `SECONDS` each run, either all on one
//! organisation (every debit queues on the same balance row: the worst case) or each on its
//! own. Prints one line of JSON per run (with how many holds and settles shared each
//! transaction, from the store's group commit); `bench/credits/run.sh` makes the table.
//!
//!   cargo run --release -p pixeld-store --example ledger_bench -- sqlite:///tmp/l.db 32 10 one

use std::sync::Arc;
use std::time::{Duration, Instant};

use pixeld_core::ledger::*;
use pixeld_core::store::{Org, Store, User};
use uuid::Uuid;

async fn org(store: &Arc<dyn Store>, credits: i64) -> Uuid {
    let now = pixeld_core::clock::truncate(time::OffsetDateTime::now_utc());
    let o = Org {
        id: Uuid::now_v7(),
        name: "bench".into(),
        personal: true,
        created_at: now,
    };
    let u = User {
        id: Uuid::now_v7(),
        email: format!("{}@bench.invalid", o.id.simple()),
        name: "bench".into(),
        password_hash: "-".into(),
        email_verified_at: None,
        is_admin: false,
        disabled_at: None,
        totp_secret: None,
        totp_pending_secret: None,
        totp_last_step: None,
        personal_org_id: o.id,
        created_at: now,
    };
    store.create_user(&u, &o).await.expect("org");
    let mut e = LedgerEntry::new(o.id, EntryKind::Grant, "bench", now);
    e.amount = credits;
    store.ledger_credit(&e).await.expect("grant");
    o.id
}

async fn debit(store: &Arc<dyn Store>, org: Uuid) {
    let now = pixeld_core::clock::truncate(time::OffsetDateTime::now_utc());
    let r = Reservation {
        id: Uuid::now_v7(),
        org_id: org,
        op: "render".into(),
        amount: 1,
        cost: None,
        state: ReservationState::Held,
        token_id: None,
        expires_at: now + time::Duration::minutes(15),
        created_at: now,
        finished_at: None,
    };
    let e = LedgerEntry::new(org, EntryKind::Reserve, format!("reserve:{}", r.id), now);
    match store.ledger_reserve(&r, &e, now).await.expect("reserve") {
        Debit::Done(_) => {}
        Debit::Insufficient { .. } => panic!("the bench balance ran out"),
    }
    let s = LedgerEntry::new(org, EntryKind::Settle, format!("settle:{}", r.id), now);
    let done = store
        .ledger_finish(org, r.id, Finish::Settle { cost: 1 }, &s, now)
        .await
        .expect("settle");
    assert!(matches!(done, Finished::New(_)));
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = args.get(1).expect("database URL");
    let concurrency: usize = args.get(2).map_or(1, |c| c.parse().expect("concurrency"));
    let seconds: u64 = args.get(3).map_or(10, |s| s.parse().expect("seconds"));
    let shared = args.get(4).is_none_or(|m| m == "one");
    let store = pixeld_store::open(url, true).await.expect("open the store");
    let one = org(&store, 1_000_000_000).await;
    let mut orgs = Vec::new();
    for _ in 0..concurrency {
        orgs.push(if shared {
            one
        } else {
            org(&store, 1_000_000_000).await
        });
    }
    let groups = store.ledger_group_stats();
    let stop = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = orgs
        .into_iter()
        .map(|o| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut lat = Vec::new();
                while Instant::now() < stop {
                    let t = Instant::now();
                    debit(&store, o).await;
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let groups_after = store.ledger_group_stats();
    let per_transaction = (groups_after.requests - groups.requests) as f64
        / (groups_after.transactions - groups.transactions).max(1) as f64;
    let check = store.ledger_totals(one).await.expect("totals");
    assert!(
        check.consistent(),
        "ledger inconsistent after the run: {check:?}"
    );
    println!(
        "{}",
        serde_json::json!({
            "backend": store.backend(),
            "concurrency": concurrency,
            "orgs": if shared { "one" } else { "each" },
            "debits": all.len(),
            "debits_per_s": (all.len() as f64 / elapsed).round(),
            "p50_ms": (percentile(&all, 0.50) * 100.0).round() / 100.0,
            "p99_ms": (percentile(&all, 0.99) * 100.0).round() / 100.0,
            "per_transaction": (per_transaction * 10.0).round() / 10.0,
        })
    );
}
