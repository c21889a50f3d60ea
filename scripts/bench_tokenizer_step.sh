#!/usr/bin/env bash
# Stage-1 step time with the live SSAST-Base teacher vs the teacher-feature cache, at the paper's
# tokenizer size (configs/tokenizer.yaml) on 6 s segments. The teacher has random weights of the
# SSAST-Base-Frame-400 shapes (the checkpoint cannot be downloaded here): its cost does not depend
# on the values. The batch is smaller than the paper's 64 so that the measurement fits a CPU.
#
#   bash scripts/bench_tokenizer_step.sh [--batch 8] [--steps 5] [--threads 2] [--out DIR]
# Prints the median step time (steps after the first) of both runs and the one-off cache cost.
set -euo pipefail
SRC="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${HEAR_BIN:-$SRC/build/release/bin}"
BATCH=8
STEPS=5
THREADS=2
OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --batch) BATCH="$2"; shift 2 ;;
    --steps) STEPS="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ -z "$OUT" ]; then OUT=$(mktemp -d); trap 'rm -rf "$OUT"' EXIT; fi
mkdir -p "$OUT"
cd "$OUT"
CLIPS=$((BATCH * STEPS))
/usr/bin/python3 - "$SRC/scripts" "$SRC/tests/golden/ssast_base_frame_checkpoint_keys.txt" "$CLIPS" <<'PY'
import os, struct, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from convert_reference_checkpoint import write_safetensors
import torch
g = torch.Generator().manual_seed(0)
weights = {}
for line in open(sys.argv[2]):
    key, dtype, shape = line.rstrip("\n").split("\t")
    shape = [int(s) for s in shape.strip("[]").split(",") if s.strip()]
    if dtype != "float32":
        continue
    t = torch.randn(shape, generator=g) * 0.02
    if key.endswith("norm.weight") or key.endswith("norm1.weight") or key.endswith("norm2.weight"):
        t = torch.ones(shape)
    weights[key] = t
write_safetensors("ssast_random.safetensors", weights, {"note": "random SSAST-Base-Frame shapes"})
os.makedirs("audio", exist_ok=True)
rng = np.random.RandomState(0)
with open("m.tsv", "w") as f:
    f.write("path\tlength\n")
    for i in range(int(sys.argv[3])):
        t = np.arange(96000) / 16000.0
        x = 0.1 * np.sin(2 * np.pi * (200 + 50 * i) * t) + 0.05 * rng.standard_normal(96000)
        data = x.astype("<f4").tobytes()
        fmt = struct.pack("<HHIIHH", 3, 1, 16000, 64000, 4, 32)
        with open(f"audio/c{i:03d}.wav", "wb") as w:
            w.write(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE")
            w.write(b"fmt " + struct.pack("<I", len(fmt)) + fmt)
            w.write(b"data" + struct.pack("<I", len(data)) + data)
        f.write(f"audio/c{i:03d}.wav\t96000\n")
PY
echo "== teacher cache over $CLIPS segments of 6 s =="
rm -rf cache
"$BIN/hear-teacher-cache" m.tsv --teacher ssast_random.safetensors -o cache --batch-size "$BATCH" \
  --threads "$THREADS" 2>&1 | tail -1 | tee cache.txt
common=(data.train_manifest=m.tsv data.loader.segments.mode=consecutive
  data.loader.sampler.batch_size="$BATCH" data.loader.sampler.shuffle=false data.loader.num_workers=1
  train.steps="$STEPS" train.log_every=1 train.threads="$THREADS" train.checkpoint_every=0
  train.validate_every=0 train.schedule.warmup_steps=1)
for kind in ssast cache; do
  echo "== hear-tokenizer-train, teacher.kind=$kind, batch $BATCH, $STEPS steps, $THREADS threads =="
  rm -rf "run_$kind"
  extra=(teacher.kind="$kind")
  if [ "$kind" = ssast ]; then extra+=(teacher.weights=ssast_random.safetensors); fi
  if [ "$kind" = cache ]; then extra+=(teacher.cache=cache); fi
  "$BIN/hear-tokenizer-train" --config "$SRC/configs/tokenizer.yaml" run_dir="run_$kind" \
    "${common[@]}" "${extra[@]}" > "run_$kind.txt" 2>&1 || { tail -20 "run_$kind.txt"; exit 1; }
done
/usr/bin/python3 - "$BATCH" "$THREADS" <<'PY'
import json, statistics, sys
batch, threads = int(sys.argv[1]), int(sys.argv[2])
res = {}
for kind in ("ssast", "cache"):
    rows = [json.loads(l) for l in open(f"run_{kind}/metrics.jsonl")]
    steps = [r["step_s"] for r in rows if "step_s" in r][1:]  # the first step includes warm-up
    res[kind] = statistics.median(steps)
    print(f"teacher.kind={kind:5s}: median step {res[kind]:.3f} s over {len(steps)} steps "
          f"({batch / res[kind]:.2f} segments/s)")
print(f"speed-up of the cache: {res['ssast'] / res['cache']:.1f}x per step "
      f"(batch {batch}, {threads} threads)")
json.dump({"batch": batch, "threads": threads, "median_step_s": res},
          open("tokenizer_step.json", "w"), indent=2)
PY
