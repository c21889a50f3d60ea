#!/usr/bin/env bash
# Training-step table of issue 12: every stage at paper size (ours vs the official code, same run)
# and the width-128 CPU-sized models, optionally against another hear-bench build (`--before`,
# e.g. the previous release) so before / after come from the same run and load.
#
#   bash scripts/bench_training.sh [--steps 3] [--threads 2] [--before OTHER/hear-bench]
#        [--reference ../shared/reference/hear-official] [--out results.json]
# Prints a markdown table; --out keeps every run's JSON.
set -euo pipefail
SRC="$(cd "$(dirname "$0")/.." && pwd)"
BENCH="${HEAR_BIN:-$SRC/build/release/bin}/hear-bench"
STEPS=3
THREADS=2
BEFORE=""
REFERENCE=""
OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) STEPS="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --before) BEFORE="$2"; shift 2 ;;
    --reference) REFERENCE="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    *) echo "bench_training.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -x "$BENCH" ] || { echo "bench_training.sh: no hear-bench at $BENCH (build first)" >&2; exit 1; }
[ -z "$BEFORE" ] || [ -x "$BEFORE" ] || { echo "bench_training.sh: --before $BEFORE is not a program" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# name | stage | batch | overrides (the small models: width 128, 3 layers where the paper has 6)
ROWS=(
  "paper|finetune|16|"
  "paper|pretrain|8|"
  "paper|tokenizer|8|"
  "small|finetune|16|acoustic_model.hidden_size=128 acoustic_model.intermediate_size=512 acoustic_model.num_transformer_layers=3 task_model.hidden_size=128 task_model.intermediate_size=512 decoder.hidden_size=128"
  "small|pretrain|16|encoder.hidden_size=128 encoder.intermediate_size=512 encoder.num_transformer_layers=3 tokenizer.num_transformer_layers=3"
  "small|tokenizer|16|tokenizer.num_transformer_layers=3"
)
i=0
for row in "${ROWS[@]}"; do
  IFS='|' read -r size stage batch overrides <<<"$row"
  args=(--train "$stage" --batch "$batch" --seconds 6 --steps "$STEPS" --threads "$THREADS" --json -)
  # shellcheck disable=SC2206
  [ -z "$overrides" ] || args+=($overrides)
  if [ -n "$BEFORE" ]; then
    echo "[$size $stage] before" >&2
    "$BEFORE" "${args[@]}" >"$TMP/$i.before.json"
  fi
  ref=()
  if [ -n "$REFERENCE" ] && [ "$size" = paper ]; then ref=(--compare-reference "$REFERENCE"); fi
  echo "[$size $stage] ours${ref:+ + reference}" >&2
  "$BENCH" "${args[@]}" "${ref[@]}" >"$TMP/$i.ours.json"
  echo "$size|$stage|$batch" >"$TMP/$i.row"
  i=$((i + 1))
done
echo "load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
/usr/bin/python3 - "$TMP" "$i" "${OUT:-}" <<'PY'
import json, os, sys
tmp, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def load(p):
    return json.load(open(p))["train"] if os.path.exists(p) else None
print("| model | stage | batch | before s/step | ours s/step | before clips/s | ours clips/s | speed-up | reference s/step | ours / reference | G MACs/step | achieved GFLOP/s | of 1-core GEMM |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
everything = []
for i in range(n):
    size, stage, batch = open(f"{tmp}/{i}.row").read().strip().split("|")
    ours, before = load(f"{tmp}/{i}.ours.json"), load(f"{tmp}/{i}.before.json")
    everything.append({"model": size, "stage": stage, "ours": ours, "before": before})
    ref = ours.get("reference")
    f = lambda v, d=3: "-" if v is None else f"{v:.{d}f}"
    print(f"| {size} | {stage} | {batch} | {f(before and before['median_step_s'])} | {f(ours['median_step_s'])} | "
          f"{f(before and before['clips_per_s'], 2)} | {f(ours['clips_per_s'], 2)} | "
          f"{f(before and before['median_step_s'] / ours['median_step_s'], 2)} | "
          f"{f(ref and ref['median_step_s'])} | {f(ours.get('ratio_to_reference'), 2)} | "
          f"{ours['executed_macs_per_step'] / 1e9:.1f} | {ours['achieved_gflops']:.1f} | "
          f"{ours['of_1_thread_gemm']:.2f} x |")
if out:
    with open(out + ".tmp", "w") as fh:
        json.dump(everything, fh, indent=2)
    os.replace(out + ".tmp", out)
PY
