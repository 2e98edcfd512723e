#!/usr/bin/env bash
# Token-auth benchmark: `GET /v1/me` with a bearer token, on SQLite and on PostgreSQL.
#
#   bench/auth/run.sh                    # 20 s, 50 connections, both backends
#   DURATION=10s CONNECTIONS=50 BACKENDS=sqlite bench/auth/run.sh
#
# Builds the release binary, installs `wrk` from Debian if missing, and per backend: starts a
# fresh server on a free loopback port (fresh data dir / fresh PostgreSQL database, dropped at the
# end) with rate limits out of the way, creates a user and an `account:read` token, measures idle
# RSS, runs the load, measures RSS again. Prints one table. Numbers only; nothing asserts on them.
# Targets (from the foundation issue): p99 < 5 ms at 50 connections, idle RSS <= 30 MB.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/bench/auth"
cd "$ROOT"
# What the build links (C toolchain, nasm, libdav1d), idempotently.
scripts/setup run >/dev/null

DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-2}
BACKENDS=${BACKENDS:-sqlite postgres}
PG_ADMIN=${PIXELD_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}

if ! command -v wrk >/dev/null; then
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; fi
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi

cargo build --quiet --release -p pixeld
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
BIN="$TARGET_DIR/release/pixeld"

SERVER_PID=""
WORK=""
PG_DB=""
cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
  if [[ -n "$PG_DB" ]]; then
    psql "$PG_ADMIN" -qc "drop database if exists $PG_DB with (force)" >/dev/null 2>&1 || true
    PG_DB=""
  fi
  if [[ -n "$WORK" ]]; then rm -rf "$WORK"; WORK=""; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

ROWS=()
bench_one() {
  local backend=$1
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/pixeld-bench-auth.XXXXXX")
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  export PIXELD_DATA="$WORK/data"
  export PIXELD_LISTEN="127.0.0.1:$port"
  export PIXELD_RATE_LIMIT__PER_IP_PER_MINUTE=100000000
  export PIXELD_RATE_LIMIT__PER_CREDENTIAL_PER_MINUTE=100000000
  export PIXELD_RATE_LIMIT__SIGN_IN_PER_MINUTE=100000
  unset PIXELD_DATABASE_URL
  if [[ "$backend" == postgres ]]; then
    PG_DB="pixeld_bench_auth_$$"
    psql "$PG_ADMIN" -qc "create database $PG_DB" >/dev/null
    export PIXELD_DATABASE_URL="${PG_ADMIN%/*}/$PG_DB"
  fi
  local base="http://127.0.0.1:$port"
  local password="correct horse battery staple"
  PIXELD_ADMIN_PASSWORD="$password" "$BIN" admin create-user --email bench@example.com >/dev/null

  "$BIN" serve >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 100); do
    curl -fsS "$base/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  local jar="$WORK/cookies"
  curl -fsS -c "$jar" -H 'Content-Type: application/json' -H "Origin: $base" \
    -d "{\"email\":\"bench@example.com\",\"password\":\"$password\"}" "$base/v1/auth/signin" >/dev/null
  local token
  token=$(curl -fsS -b "$jar" -H 'Content-Type: application/json' -H "Origin: $base" \
    -d '{"name":"bench","scopes":["account:read"]}' "$base/v1/tokens" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
  curl -fsS -H "Authorization: Bearer $token" "$base/v1/me" >/dev/null
  sleep 1
  local rss_idle
  rss_idle=$(rss_kb "$SERVER_PID")

  # Short warm-up (connection pools, caches), then the measured run.
  wrk -t"$THREADS" -c"$CONNECTIONS" -d2s -H "Authorization: Bearer $token" "$base/v1/me" >/dev/null
  local out
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$HERE/report.lua" \
    -H "Authorization: Bearer $token" "$base/v1/me")
  echo "--- $backend ---"
  echo "$out" | grep -v '^RESULT'
  sleep 2
  local rss_after
  rss_after=$(rss_kb "$SERVER_PID")
  local line
  line=$(echo "$out" | grep '^RESULT')
  local rps p50 p99 errors
  rps=$(sed -n 's/.* rps=\([0-9.]*\).*/\1/p' <<<"$line")
  p50=$(sed -n 's/.* p50_ms=\([0-9.]*\).*/\1/p' <<<"$line")
  p99=$(sed -n 's/.* p99_ms=\([0-9.]*\).*/\1/p' <<<"$line")
  errors=$(sed -n 's/.* errors=\([0-9]*\).*/\1/p' <<<"$line")
  ROWS+=("$(printf '| %-8s | %9s | %7s | %7s | %6s | %10s | %11s |' \
    "$backend" "$rps" "$p50" "$p99" "$errors" "$(mb "$rss_idle")" "$(mb "$rss_after")")")
  cleanup
}

for b in $BACKENDS; do bench_one "$b"; done

echo
echo "GET /v1/me with a bearer token: $CONNECTIONS connections, $DURATION, wrk -t$THREADS, $(nproc) cores (shared with the load generator)"
echo "| backend  |     req/s | p50 ms  | p99 ms  | errors | idle RSS MB | RSS after MB |"
echo "|----------|-----------|---------|---------|--------|-------------|--------------|"
printf '%s\n' "${ROWS[@]}"
echo "targets: p99 < 5 ms, idle RSS <= 30 MB"
