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

source "$(dirname "$0")/apt_install.sh"
apt_install setup_data "${PACKAGES[@]}"
