#!/usr/bin/env bash
# pixeld-imaging vs sharp vs libvips, same inputs, same run, one thread each.
# Installs its peers (Debian: libvips-tools, time, mate-backgrounds; npm: sharp), builds the
# bench example in release mode, generates exact-megapixel inputs from Debian wallpapers,
# and prints a table of time, peak RSS, output size and SSIM with ours ÷ peer ratios.
#   RUNS=9 bench/imaging/run.sh
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
export RUNS="${RUNS:-9}"
export WORK="${BENCH_WORK:-$ROOT/bench/results/imaging}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"

# 1. System peers, fixtures and what our build links (idempotent).
missing=()
for p in libvips-tools time mate-backgrounds nasm libdav1d-dev pkg-config; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# 2. sharp from npm, pinned by package-lock.json.
if [ ! -d "$HERE/node_modules/sharp" ]; then
  (cd "$HERE" && npm ci --no-audit --no-fund)
fi

# 3. Our side, release build.
CARGO_TARGET_DIR="$TARGET" cargo build --release -j "${BENCH_BUILD_JOBS:-1}" --example bench \
  --manifest-path "$ROOT/crates/pixeld-imaging/Cargo.toml"
export OURS="$TARGET/release/examples/bench"

# 4. Inputs at exact sizes, made from real photographs (not committed). Saved like a
#    camera does: quality 90, 4:2:0 chroma subsampling, baseline.
mkdir -p "$WORK"
BG=/usr/share/backgrounds/mate
CAMERA="Q=90,subsample-mode=on,strip"
[ -f "$WORK/12mp.jpg" ] || vips crop "$BG/abstract/Elephants_5640x3172.jpg" "$WORK/12mp.jpg[$CAMERA]" 820 86 4000 3000
[ -f "$WORK/4mp.jpg" ] || vips crop "$BG/nature/Wood.jpg" "$WORK/4mp.jpg[$CAMERA]" 128 96 2304 1728
if [ ! -f "$WORK/24mp.jpg" ]; then
  vips resize "$BG/abstract/Elephants_5640x3172.jpg" "$WORK/24mp-up.v" 1.27
  vips crop "$WORK/24mp-up.v" "$WORK/24mp.jpg[$CAMERA]" 581 14 6000 4000
  rm -f "$WORK/24mp-up.v"
fi
[ -f "$WORK/screenshot.png" ] || cp "$BG/desktop/Float-into-MATE.png" "$WORK/screenshot.png"

# 5. Measure and print.
python3 "$HERE/compare.py"
