#!/usr/bin/env bash
# Credit ledger benchmark: debits per second and per-debit latency (hold + settle, the two
# transactions every metered request makes) on SQLite and on PostgreSQL, at 1 and 32 concurrent
# debiters, all on one organisation (every debit queues on the same balance row) and each on
# its own.
#
#   bench/credits/run.sh                       # 10 s per run, both backends
#   SECONDS_PER_RUN=5 BACKENDS=postgres bench/credits/run.sh
#
# Each run gets a fresh SQLite file or a fresh PostgreSQL database (dropped at the end) and checks
# afterwards that the ledger still adds up. Numbers only; nothing asserts on them.
# Target (credits issue): p99 debit <= 5 ms on PostgreSQL at 32 concurrent.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
SECS=${SECONDS_PER_RUN:-10}
BACKENDS=${BACKENDS:-sqlite postgres}
PG_ADMIN=${PIXELD_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}

cargo build --quiet --release -p pixeld-store --example ledger_bench
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
BIN="$TARGET_DIR/release/examples/ledger_bench"

WORK=$(mktemp -d)
DBS=()
cleanup() {
  for db in "${DBS[@]}"; do psql "$PG_ADMIN" -qc "drop database if exists $db with (force)" >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

results="$WORK/results.jsonl"
for backend in $BACKENDS; do
  for conc in 1 32; do
    for orgs in one each; do
      [[ $conc -eq 1 && $orgs == each ]] && continue
      if [[ $backend == sqlite ]]; then
        url="sqlite://$WORK/ledger-$conc-$orgs.db"
      else
        db="pixeld_bench_ledger_$$_${conc}_$orgs"
        psql "$PG_ADMIN" -qc "create database $db" >/dev/null
        DBS+=("$db")
        url="${PG_ADMIN%/*}/$db"
      fi
      "$BIN" "$url" "$conc" "$SECS" "$orgs" | tee -a "$results" >&2
    done
  done
done

python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print()
print("| backend | concurrent | organisations | debits/s | p50 ms | p99 ms |")
print("|---|---:|---|---:|---:|---:|")
for r in rows:
    print(f"| {r['backend']} | {r['concurrency']} | {r['orgs']} | {r['debits_per_s']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} |")
PY
