#!/usr/bin/env bash
# Picture Optimizer over HTTP under load: uploads (raw image/jpeg body) and transforms
# (GET /v1/images/{id}/content?w=…&format=webp&q=80) with cache misses and with cache hits.
#
#   bench/images-http/run.sh
#   DURATION=20s CONNECTIONS=4 bench/images-http/run.sh
#
# Builds the release binary, installs `wrk` and `mate-backgrounds` (the photos) from Debian if
# missing, starts one server on a free loopback port (SQLite, temporary data directory, rate limits
# out of the way), creates a user with the admin CLI, signs in with the session cookie, creates an
# `images:read images:write` token, and runs wrk against 127.0.0.1 only, one bounded run per row.
# Prints one table with requests/s, p50 and p99, and the server's peak RSS (VmHWM, which only
# grows: each row shows the peak so far). Numbers only; nothing asserts on them.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/bench/images-http"
cd "$ROOT"
# What the build links (C toolchain, nasm, libdav1d), idempotently.
scripts/setup run >/dev/null

DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-4}
THREADS=${THREADS:-1}
PHOTOS=/usr/share/backgrounds/mate/nature
LARGE=${LARGE:-$PHOTOS/TwoWings.jpg}    # 2560×1600, 4.1 MP, 881 KB
SMALL=${SMALL:-$PHOTOS/GreenMeadow.jpg} # 1280×1024, 1.3 MP, 183 KB
MISS_COPIES=${MISS_COPIES:-8}           # uploads per photo for the miss runs: 201 widths each

need=()
command -v wrk >/dev/null || need+=(wrk)
[[ -f "$LARGE" && -f "$SMALL" ]] || need+=(mate-backgrounds)
if ((${#need[@]})); then
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; fi
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

cargo build --quiet --release -p pixeld
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
BIN="$TARGET_DIR/release/pixeld"

SERVER_PID=""
WORK=""
cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
  if [[ -n "$WORK" ]]; then rm -rf "$WORK"; WORK=""; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

hwm_mb() { awk '/^VmHWM:/ { printf "%.0f", $2 / 1024 }' "/proc/$SERVER_PID/status"; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pixeld-bench-images.XXXXXX")
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export PIXELD_DATA="$WORK/data"
export PIXELD_LISTEN="127.0.0.1:$port"
export PIXELD_PUBLIC_URL="http://127.0.0.1:$port"
export PIXELD_RATE_LIMIT__PER_IP_PER_MINUTE=100000000
export PIXELD_RATE_LIMIT__PER_CREDENTIAL_PER_MINUTE=100000000
export PIXELD_RATE_LIMIT__SIGN_IN_PER_MINUTE=100000
export RUST_LOG=${RUST_LOG:-warn}
unset PIXELD_DATABASE_URL
base="http://127.0.0.1:$port"
password="correct horse battery staple"
PIXELD_ADMIN_PASSWORD="$password" "$BIN" admin create-user --email bench@example.com --admin >/dev/null
# Uploads and transform misses are metered (a credit each, see the README's Credits): grant
# enough for every run, so that metering stays on and its ledger writes are part of what is
# measured, without the free monthly allowance running out a few seconds in (402).
"$BIN" admin credits grant --user bench@example.com --amount 100000000 \
  --reason "images-http benchmark" --by bench@example.com >/dev/null

"$BIN" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do
  curl -fsS "$base/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
jar="$WORK/cookies"
curl -fsS -c "$jar" -H 'Content-Type: application/json' -H "Origin: $base" \
  -d "{\"email\":\"bench@example.com\",\"password\":\"$password\"}" "$base/v1/auth/signin" >/dev/null
TOKEN=$(curl -fsS -b "$jar" -H 'Content-Type: application/json' -H "Origin: $base" \
  -d '{"name":"bench","scopes":["images:read","images:write"]}' "$base/v1/tokens" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
export TOKEN HERE
upload() {
  curl -fsS -H "Authorization: Bearer $TOKEN" -H 'Content-Type: image/jpeg' \
    --data-binary "@$1" "$base/v1/images" | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])'
}
idle_hwm=$(hwm_mb)

ROWS=()
LOAD=()
# run LABEL URL-PATH SCRIPT [ENV=VALUE...]: one bounded wrk run, one table row.
run() {
  local label=$1 path=$2 script=$3
  shift 3
  local out
  out=$(env "$@" WRK_THREADS="$THREADS" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" \
    --latency --timeout 30s -s "$HERE/$script" "$base$path")
  LOAD+=("$label: $(uptime | sed 's/.*load average/load average/')")
  echo "--- $label ---"
  echo "$out" | grep -v '^RESULT'
  local line
  line=$(grep '^RESULT' <<<"$out")
  field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$line"; }
  local cache="-"
  if [[ $(field misses) != 0 || $(field hits) != 0 ]]; then
    cache="$(field misses) miss / $(field hits) hit"
  fi
  if [[ $(field non2xx) != 0 ]]; then
    echo "$label: $(field non2xx) requests failed; the server's log ends:" >&2
    tail -n 20 "$WORK/server.log" >&2
    exit 1
  fi
  ROWS+=("$(printf '| %-30s | %8s | %8s | %8s | %8s | %7s | %-18s | %11s |' \
    "$label" "$(field requests)" "$(field rps)" "$(field p50_ms)" "$(field p99_ms)" \
    "$(field non2xx)" "$cache" "$(hwm_mb)")")
}

desc() {
  python3 - "$1" <<'PY'
import struct, sys, os
d = open(sys.argv[1], "rb").read(); i = 2
while i < len(d):
    m = d[i + 1]; n = struct.unpack(">H", d[i + 2:i + 4])[0]
    if m in (0xC0, 0xC1, 0xC2):
        h, w = struct.unpack(">HH", d[i + 5:i + 9])
        print(f"{w}x{h} {w * h / 1e6:.1f} MP {len(d) // 1024} KB"); break
    i += 2 + n
PY
}

echo "uptime before: $(uptime)"
# Warm-up: a few uploads and transforms (page cache, connection pool, allocator).
warm=$(upload "$SMALL")
curl -fsS -o /dev/null -H "Authorization: Bearer $TOKEN" "$base/v1/images/$warm/content?w=640&format=webp&q=80"

for photo in "$LARGE" "$SMALL"; do
  run "upload $(basename "$photo") ($(desc "$photo"))" /v1/images upload.lua BODY_FILE="$photo"
done

for photo in "$LARGE" "$SMALL"; do
  ids=()
  for _ in $(seq "$MISS_COPIES"); do ids+=("$(upload "$photo")"); done
  run "transform miss $(basename "$photo")" / transform.lua MODE=miss IDS="${ids[*]}"
  # Cache hits: w=800 of the first copy, made once here.
  curl -fsS -o /dev/null -H "Authorization: Bearer $TOKEN" \
    "$base/v1/images/${ids[0]}/content?w=800&format=webp&q=80"
  run "transform hit $(basename "$photo")" / transform.lua MODE=hit IDS="${ids[*]}"
done

echo
echo "pixeld $(git -C "$ROOT" rev-parse --short HEAD), release build, SQLite; wrk -t$THREADS -c$CONNECTIONS -d$DURATION on 127.0.0.1;"
echo "CPU cores: $(nproc) (shared by server and wrk); transforms: w=700..900 (miss) or w=800 (hit), format=webp, q=80"
echo "| run                            | requests |    req/s |  p50 ms  |  p99 ms  | non-2xx | cache              | peak RSS MB |"
echo "|--------------------------------|----------|----------|----------|----------|---------|--------------------|-------------|"
printf '%s\n' "${ROWS[@]}"
echo "server RSS peak before the load (VmHWM): ${idle_hwm} MB; the column is VmHWM after each run (it only grows)"
echo "machine load during the runs (uptime at the end of each):"
printf '  %s\n' "${LOAD[@]}"
