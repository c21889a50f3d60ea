#!/usr/bin/env bash
# Installs the Debian 12 (`main` only) tools the local benchmark set builders in scripts/data/ call:
# sox (+ all format handlers, for MP3 and GSM), the TTS engines espeak-ng, flite and festival with its
# English voices, and numpy. Idempotent: when everything is present it does nothing (no network).
# The builders themselves need no root: they fetch data packages with `apt-get download` and unpack
# them with `dpkg-deb -x` (scripts/data/debpkg.py); nothing they download is installed.
set -euo pipefail

PACKAGES=(
  python3 python3-numpy
  sox libsox-fmt-all           # libsox-fmt-all: MP3 (Flight of the Amazon Queen speech), GSM, Vorbis
  espeak-ng
  flite                        # voices kal, kal16, awb, rms, slt are built in
  festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts
  dpkg apt                     # apt-get download, dpkg-deb -x
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup_data: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup_data: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
