#!/usr/bin/env bash
# A finished hear-finetune run for the Python tests: 4 synthetic classes, width 64, 2 epochs.
# Usage: make_tiny_run.sh RUN_DIR   (HEAR_BIN: the programs; HEAR_SOURCE_DIR: the checkout)
set -euo pipefail
run=$1
src=${HEAR_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${HEAR_BIN:-$src/build/release/bin}
data=$(dirname "$run")/data
/usr/bin/python3 "$src/scripts/make_synthetic_dataset.py" "$data" --per-class 4 --max-seconds 2 \
  --unlabeled 0 --seed 3
"$bin/hear-finetune" --config "$src/configs/finetune_tiny.yaml" run_dir="$run" epochs=2 \
  data.train_manifest="$data/train.tsv" data.valid_manifest="$data/valid.tsv" train.threads=1
