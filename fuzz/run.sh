#!/usr/bin/env bash
# Fuzzes pixeld-imaging's decode + analyze + process for a bounded time.
#   FUZZ_SECONDS=60 fuzz/run.sh
# With a nightly toolchain: installs cargo-fuzz (idempotent) and runs libFuzzer with
# -max_total_time. Without nightly (it cannot be fetched from a package registry), it
# falls back to replaying the corpus through the same harness as a normal test on stable.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
SECONDS_BUDGET="${FUZZ_SECONDS:-60}"
JOBS="${FUZZ_BUILD_JOBS:-1}"
cd "$HERE"

if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked -j "$JOBS"
  fi
  # Work on a copy so that new inputs found in CI do not dirty the checkout.
  WORK_CORPUS="${FUZZ_CORPUS_DIR:-$HERE/target/corpus/decode_analyze}"
  mkdir -p "$WORK_CORPUS"
  cp -n corpus/decode_analyze/* "$WORK_CORPUS"/ 2>/dev/null || true
  CARGO_BUILD_JOBS="$JOBS" cargo +nightly fuzz run decode_analyze --features fuzzing \
    "$WORK_CORPUS" -- -max_total_time="$SECONDS_BUDGET" -rss_limit_mb=2048 -max_len=65536
else
  echo "no nightly toolchain: replaying the corpus through the harness on stable instead" >&2
  cargo test -j "$JOBS" --release
fi
