#!/usr/bin/env bash
# pixeld-render vs @takumi-rs/core vs satori + resvg: the same 1200×630 card, the same fonts
# and image bytes, in the same run, one thread each, PNG output.
# Installs its peers (Debian: time, and the build's nasm/libdav1d-dev/pkg-config; npm:
# @takumi-rs/core, satori, @resvg/resvg-js pinned by package-lock.json), builds the
# bench_card example in release mode, generates the card's images and prints a table of
# p50/p99/cold ms, ours ÷ peer ratios against the issue's targets, peak RSS, and a phase
# breakdown of our render.
#   RUNS=100 ROUNDS=3 bench/render/run.sh
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
export RUNS="${RUNS:-100}" ROUNDS="${ROUNDS:-3}"
export WORK="${BENCH_WORK:-$ROOT/bench/results/render}"
export FONTS="$ROOT/crates/pixeld-render/fonts"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"

# 1. System packages (idempotent): /usr/bin/time for peak RSS; what our build links.
missing=()
for p in time nasm libdav1d-dev pkg-config; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v node >/dev/null || missing+=(nodejs npm)
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# 2. The peers from npm, pinned by package-lock.json.
if [ ! -d "$HERE/node_modules/@takumi-rs/core" ] || [ ! -d "$HERE/node_modules/satori" ] \
  || [ ! -d "$HERE/node_modules/@resvg/resvg-js" ]; then
  (cd "$HERE" && npm ci --no-audit --no-fund)
fi

# 3. Our side, release build.
CARGO_TARGET_DIR="$TARGET" cargo build --release -j "${BENCH_BUILD_JOBS:-1}" --example bench_card \
  --manifest-path "$ROOT/crates/pixeld-render/Cargo.toml"
export OURS="$TARGET/release/examples/bench_card"

# 4. The card's images, generated (not committed): the same bytes go to all three engines.
mkdir -p "$WORK"
[ -f "$WORK/avatar.png" ] && [ -f "$WORK/logo.png" ] || python3 "$HERE/make-inputs.py" "$WORK"

# 5. Measure and print.
python3 "$HERE/compare.py"
