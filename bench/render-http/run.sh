#!/usr/bin/env bash
# Render-cache hits over HTTP (server time from Server-Timing) and the idle RSS of pixeld serve.
# Usage: RUNS=2000 bench/render-http/run.sh   (CARGO_TARGET_DIR is honoured)
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/setup bench >/dev/null
target="${CARGO_TARGET_DIR:-target}"
cargo build --release -p pixeld -j 1 >/dev/null 2>&1 || cargo build --release -p pixeld -j 1
python3 bench/render-http/bench.py "$target/release/pixeld"
