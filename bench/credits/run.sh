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
# What the build links (C toolchain, nasm, libdav1d), idempotently.
scripts/setup run >/dev/null
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

# The peer: PostgreSQL's own pgbench (TPC-B-like: 5 statements in one transaction) on the same
# server, 32 clients, scale 1 (every transaction updates the one branch row, like debits of one
# organisation) and scale 32 (one branch per client, like one organisation each). A debit is two
# transactions (hold, then settle), so ours ÷ peer compares debits/s with pgbench tps / 2.
peer="$WORK/peer.txt"
if [[ " $BACKENDS " == *" postgres "* ]] && command -v pgbench >/dev/null; then
  for scale in 1 32; do
    db="pixeld_bench_pgbench_$$_$scale"
    psql "$PG_ADMIN" -qc "create database $db" >/dev/null
    DBS+=("$db")
    url="${PG_ADMIN%/*}/$db"
    pgbench -q -i -s "$scale" "$url" >/dev/null 2>&1
    out=$(pgbench -c 32 -j 2 -T "$SECS" -M prepared "$url" 2>/dev/null)
    tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out" | head -1)
    lat=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' <<<"$out")
    echo "$scale $tps $lat" | tee -a "$peer" >&2
  done
fi

python3 - "$results" "$peer" <<'PY'
import json, os, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
peer = {}
if os.path.exists(sys.argv[2]):
    for line in open(sys.argv[2]):
        scale, tps, lat = line.split()
        peer["one" if scale == "1" else "each"] = (float(tps), float(lat))
print()
print("| backend | concurrent | organisations | debits/s | p50 ms | p99 ms | per commit | pgbench tps (avg ms) | ours ÷ pgbench/2 |")
print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
for r in rows:
    p = peer.get(r["orgs"]) if r["backend"] == "postgres" and r["concurrency"] == 32 else None
    ptxt = f"{p[0]:.0f} ({p[1]:.1f})" if p else "—"
    ratio = f"{r['debits_per_s'] / (p[0] / 2):.2f}" if p else "—"
    print(f"| {r['backend']} | {r['concurrency']} | {r['orgs']} | {r['debits_per_s']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r.get('per_transaction', 1):.1f} | {ptxt} | {ratio} |")
PY
