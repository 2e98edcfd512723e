#!/usr/bin/env bash
# Installs what the pixeld-imaging tests need: nasm (the SIMD parts of mozjpeg and rav1e
# are assembled at build time), libdav1d-dev (the AV1 decoder behind AVIF input) and real photographs and graphics from Debian's wallpaper
# package (nothing large is committed). Idempotent; run as root (or with sudo).
set -euo pipefail

PKGS=(nasm libdav1d-dev mate-backgrounds)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
test -f /usr/share/backgrounds/mate/nature/Garden.jpg
echo "pixeld-imaging fixtures ready: /usr/share/backgrounds/mate"
