#!/usr/bin/env bash
# The README's main job: install, build, then the three HEAR stages end to end on a small set
# generated here (tiny configs), then the efficiency benchmark at the paper's configuration.
# Everything lands in runs/main_job/ (HEAR_WORK overrides it). Takes ~10-15 minutes on 2 cores
# after the build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
BIN=build/release/bin
WORK="${HEAR_WORK:-runs/main_job}"
rm -rf "$WORK"
mkdir -p "$WORK"

echo "== data: a generated 4-class set (tones, noise, chirps, click trains; 1-8 s, some 44.1 kHz stereo) =="
/usr/bin/python3 scripts/make_synthetic_dataset.py "$WORK/data" --per-class 30 --unlabeled 40
cat "$WORK/data/train.tsv" "$WORK/data/unlabeled.tsv" > "$WORK/data/pretrain.tsv"

echo "== frontend on one clip =="
"$BIN/hear-features" --kaldi "$WORK/data/audio/tone/tone_000.wav"

echo "== stage 1a: teacher features (the tiny random SSAST of tests/golden; the real SSAST-Base-Frame-400 checkpoint cannot be downloaded here) =="
# The cache covers the training clips and the validation clips (stage 1 validates on the latter).
cat "$WORK/data/pretrain.tsv" "$WORK/data/valid.tsv" > "$WORK/data/teacher.tsv"
"$BIN/hear-teacher-cache" "$WORK/data/teacher.tsv" --teacher tests/golden/ssast_tiny.safetensors \
  --weights-prefix weights/ --tiny-config -o "$WORK/teacher_cache" --batch-size 8

echo "== stage 1b: tokenizer (tiny), distilled from the cached teacher features =="
"$BIN/hear-tokenizer-train" --config configs/tokenizer_tiny.yaml run_dir="$WORK/tokenizer" \
  teacher.kind=cache teacher.cache="$WORK/teacher_cache" data.loader.segments.mode=consecutive \
  data.train_manifest="$WORK/data/pretrain.tsv" data.valid_manifest="$WORK/data/valid.tsv" train.steps=60

echo "== stage 2: MAM pre-training (tiny) =="
"$BIN/hear-pretrain" --config configs/pretrain_tiny.yaml run_dir="$WORK/pretrain" \
  tokenizer_weights="$WORK/tokenizer/tokenizer.safetensors" \
  data.train_manifest="$WORK/data/pretrain.tsv" data.valid_manifest="$WORK/data/valid.tsv" train.steps=100

echo "== stage 3: fine-tuning (tiny), pre-trained (base) and from scratch =="
for setting in base scratch; do
  "$BIN/hear-finetune" --config configs/finetune_tiny.yaml run_dir="$WORK/finetune_$setting" \
    setting=$setting pretrained="$WORK/pretrain/acoustic_model.safetensors" epochs=10 \
    data.train_manifest="$WORK/data/train.tsv" data.valid_manifest="$WORK/data/valid.tsv" \
    data.test_manifest="$WORK/data/test.tsv"
done
/usr/bin/python3 scripts/plot_metrics.py "$WORK/finetune_base" || true

echo "== benchmark: paper configuration, 10 s clip, 1 thread =="
"$BIN/hear-bench" --seconds 10 --threads 1 --runs 5 --json "$WORK/bench.json"
echo "main job done: results in $WORK"
