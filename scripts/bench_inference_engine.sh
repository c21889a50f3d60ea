#!/usr/bin/env bash
# The inference engine's measurements (issue 15), one thread, side by side in one run:
#   1. hear-bench --sweep 10,60,600 of the paper model: BEFORE (a hear-bench built from an
#      earlier commit, optional) and this build, with peak memory per length;
#   2. hear-bench --int8 at 10 s: per-stage speed-up and float32 / int8 output cosine;
#   3. hear-embed --stream on generated 10-minute and 60-minute recordings: RTF and peak RSS.
# Usage: scripts/bench_inference_engine.sh OUT_DIR [BEFORE_HEAR_BENCH]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: $0 OUT_DIR [BEFORE_HEAR_BENCH]}
before=${2:-}
bin=${HEAR_BIN:-build/release/bin}
mkdir -p "$out"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$out/load.txt"
if [[ -n "$before" ]]; then
  "$before" --sweep 10,60,600 --threads 1 --no-executed-count --json "$out/sweep_before.json" \
    | tee "$out/sweep_before.txt"
fi
"$bin/hear-bench" --sweep 10,60,600 --threads 1 --no-executed-count --json "$out/sweep_after.json" \
  | tee "$out/sweep_after.txt"
"$bin/hear-bench" --seconds 10 --threads 1 --int8 --no-executed-count --json "$out/int8.json" \
  | tee "$out/int8.txt"
# Streaming: the shipped cpu-preset acoustic model on pink noise (any signal does for memory).
model=models/hear-cpu-w128-l4
for minutes in 10 60; do
  wav="$out/noise_${minutes}min.wav"
  [[ -f "$wav" ]] || sox -q -n -r 16000 -c 1 -b 16 "$wav" synth $((minutes * 60)) pinknoise vol 0.1
  "$bin/hear-embed" "$wav" --config "$model/model.yaml" -w "$model/acoustic_model.safetensors" \
    -o "$out/stream_${minutes}min" --stream --threads 1 | tee "$out/stream_${minutes}min.txt"
  rm -f "$out/stream_${minutes}min"/*.npy
  if [[ $minutes == 10 ]]; then  # the offline path on the same file, for contrast
    "$bin/hear-embed" "$wav" --config "$model/model.yaml" -w "$model/acoustic_model.safetensors" \
      -o "$out/offline_${minutes}min" --threads 1 | tee "$out/offline_${minutes}min.txt"
    rm -f "$out/offline_${minutes}min"/*.npy
  fi
done
rm -f "$out"/noise_*min.wav
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/load.txt"
