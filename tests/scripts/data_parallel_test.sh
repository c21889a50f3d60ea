#!/usr/bin/env bash
# Data-parallel training on this machine (loopback, Gloo): two processes launched by torchrun
# finish each stage and rank 0 alone writes the run; a rank killed mid-run makes the other exit non-zero with
# a clear error (no hang); a 2-process run resumes as 1 process (same global batch) at its step.
source "$(dirname "$0")/lib.sh"
command -v torchrun > /dev/null || fail "torchrun (python3-torch) is missing"

py "$SRC/scripts/make_synthetic_dataset.py" data --per-class 8 --max-seconds 2 --seed 3
port() { py -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"; }
ft_args=(--config "$SRC/configs/finetune_tiny.yaml" data.train_manifest=data/train.tsv
  data.valid_manifest=data/valid.tsv data.test_manifest=data/test.tsv setting=scratch
  train.threads=1 data.loader.num_workers=0)

echo "== torchrun, 2 processes x batch 4 =="
# -r 1 -t 1: Debian's torchrun (torch 1.13 on Python 3.11) fails on its default "-r 0".
timeout 300 torchrun --nproc_per_node 2 --no_python -r 1 -t 1 --log_dir torchrun_logs --master_addr 127.0.0.1 --master_port "$(port)" \
  "$BIN/hear-finetune" "${ft_args[@]}" run_dir=dp epochs=2 data.loader.sampler.batch_size=4 \
  > dp.log 2>&1 || { cat dp.log; fail "2-process run failed"; }
grep -q "data parallel: 2 processes" dp.log || fail "no data-parallel start line: $(cat dp.log)"
[ -f dp/test.json ] && [ -f dp/checkpoints/last/state.yaml ] || fail "rank 0 wrote no results"
# The test set was scored in halves by the two ranks and the counts summed: one process scoring
# the same checkpoint gives the same evaluation.
"$BIN/hear-evaluate" --run dp --checkpoint best --manifest data/test.tsv -o eval1 > eval1.log 2>&1 ||
  { cat eval1.log; fail "hear-evaluate failed"; }
py - <<'PY' || fail "2-process test evaluation differs from 1 process"
import json
a, b = json.load(open("dp/test.json")), json.load(open("eval1/evaluation.json"))
assert a["clips"] == b["clips"] and a["confusion"] == b["confusion"], (a, b)
assert abs(a["accuracy"] - b["accuracy"]) < 1e-12 and abs(a["loss"] - b["loss"]) < 1e-5, (a, b)
print("sharded test evaluation == 1 process:", a["accuracy"], a["clips"], "clips")
PY
# Rank 0 alone writes: one metrics row per step reported, no duplicates.
py - <<'PY' || fail "metrics.csv has duplicate steps"
import csv
steps = [r["step"] for r in csv.DictReader(open("dp/metrics.csv")) if r.get("loss")]
assert steps and len(steps) == len(set(steps)), steps
PY

echo "== stages 1 and 2 under torchrun: the tokenizer, then MAM pre-training on it =="
cat data/train.tsv data/unlabeled.tsv > data/pretrain.tsv
for stage in tokenizer pretrain; do
  case $stage in
    tokenizer) prog=hear-tokenizer-train; cfg=tokenizer_tiny; extra=() ;;
    pretrain) prog=hear-pretrain; cfg=pretrain_tiny; extra=(tokenizer_weights=tok/tokenizer.safetensors) ;;
  esac
  timeout 300 torchrun --nproc_per_node 2 --no_python -r 1 -t 1 --log_dir "torchrun_$stage" \
    --master_addr 127.0.0.1 --master_port "$(port)" "$BIN/$prog" --config "$SRC/configs/$cfg.yaml" \
    run_dir=$([ $stage = tokenizer ] && echo tok || echo mam) data.train_manifest=data/pretrain.tsv \
    data.valid_manifest=data/valid.tsv train.steps=6 train.threads=1 data.loader.num_workers=0 \
    data.loader.sampler.batch_size=4 "${extra[@]}" > "$stage.log" 2>&1 || { cat "$stage.log"; fail "2-process $prog failed"; }
  grep -q "data parallel: 2 processes" "$stage.log" || fail "$prog did not run data parallel"
done
[ -f tok/tokenizer.safetensors ] && [ -f mam/acoustic_model.safetensors ] || fail "rank 0 exported nothing"

echo "== 2 processes x batch 4 train the same weights as 1 process x batch 8 =="
# Fixed-length clips, so the shards' padded shapes are the global batch's: then dropout, MAM
# masks (counter-based, numbered over the global batch), the global masked-patch mean and the
# classifier's SyncBatchNorm make the two runs the same computation up to summation order.
py "$SRC/scripts/make_synthetic_dataset.py" fixed --per-class 17 --min-seconds 2 --max-seconds 2 \
  --unlabeled 8 --seed 5 > /dev/null
cat fixed/train.tsv fixed/unlabeled.tsv > fixed/pretrain.tsv
eq_args=(train.threads=1 data.loader.num_workers=0 train.log_every=1)
for world in 1 2; do
  batch=$((8 / world))
  launch=(torchrun --nproc_per_node $world --no_python -r 1 -t 1 --log_dir "tr_eq$world" --master_addr 127.0.0.1 --master_port "$(port)")
  timeout 300 "${launch[@]}" "$BIN/hear-finetune" "${ft_args[@]}" data.train_manifest=fixed/train.tsv \
    data.valid_manifest=fixed/valid.tsv data.test_manifest=fixed/test.tsv run_dir=ft_eq$world epochs=1 \
    data.loader.sampler.batch_size=$batch "${eq_args[@]}" > ft_eq$world.log 2>&1 || { cat ft_eq$world.log; fail "finetune world $world failed"; }
  timeout 300 "${launch[@]}" "$BIN/hear-pretrain" --config "$SRC/configs/pretrain_tiny.yaml" run_dir=mam_eq$world \
    tokenizer_weights=tok/tokenizer.safetensors data.train_manifest=fixed/pretrain.tsv data.valid_manifest= \
    train.steps=5 data.loader.sampler.batch_size=$batch "${eq_args[@]}" > mam_eq$world.log 2>&1 || { cat mam_eq$world.log; fail "pretrain world $world failed"; }
done
# Every tensor of the models (buffers too) within 1e-5, and the same global loss at every step.
# Except, in the classifier, the directions that train-mode BatchNorm cancels exactly: the bias
# of the linear layer before it and the task encoder's last LayerNorm bias (a constant shift of
# all pooled features) get pure rounding noise as gradient, which AdamW turns into lr-sized
# steps in 1 process too, and the running mean follows those shifts. (Attention key biases,
# cancelled by softmax, are left out of the computation: nn/relative_attention.h.)
py - "$SRC/scripts" <<'PY' || fail "2-process training differs from 1 process"
import csv, sys
sys.path.insert(0, sys.argv[1])
from convert_reference_checkpoint import read_safetensors
free = {"decoder.linear.bias", "task_model.transformer.norm2.bias", "decoder.batch_norm.running_mean"}
for run in ("ft_eq", "mam_eq"):
    losses = [[float(r["loss"]) for r in csv.DictReader(open(f"{run}{w}/metrics.csv")) if r.get("loss")]
              for w in (1, 2)]
    assert len(losses[0]) == len(losses[1]) >= 5, (run, losses)
    worst_loss = max(abs(x - y) / abs(x) for x, y in zip(*losses))
    a, _ = read_safetensors(f"{run}1/checkpoints/last/model.safetensors")
    b, _ = read_safetensors(f"{run}2/checkpoints/last/model.safetensors")
    assert a.keys() == b.keys()
    diffs = {k: float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].numel()}
    compared = {k: d for k, d in diffs.items() if k not in free}
    worst = max(compared, key=compared.get)
    print(f"{run}: {len(losses[0])} steps, max relative loss difference {worst_loss:.1e}; "
          f"{len(compared)} of {len(a)} tensors compared, max |1 proc - 2 procs| = "
          f"{compared[worst]:.1e} ({worst})")
    assert worst_loss < 1e-5 and compared[worst] < 1e-5, run
    assert all(d == d for d in diffs.values()), "NaN in the weights"
PY

echo "== cross-validation under torchrun: the folds share one process group =="
awk 'NR % 2 == 1' data/train.tsv > data/fold1.tsv  # every class in both folds
awk 'NR % 2 == 0' data/train.tsv > data/fold2.tsv
timeout 300 torchrun --nproc_per_node 2 --no_python -r 1 -t 1 --log_dir torchrun_cv --master_addr 127.0.0.1 --master_port "$(port)" \
  "$BIN/hear-finetune" --folds "${ft_args[@]}" run_dir=cv epochs=1 data.loader.sampler.batch_size=4 \
  data.train_manifest= data.valid_manifest= data.test_manifest= "data.fold_manifests=[data/fold1.tsv,data/fold2.tsv]" \
  > cv.log 2>&1 || { cat cv.log; fail "2-process cross-validation failed"; }
py -c "import json; c = json.load(open('cv/cv.json')); assert len(c['folds']) == 2, c; print('cv folds:', [f['accuracy'] for f in c['folds']])"

echo "== a rank killed mid-run =="
P=$(port)
run_rank() {
  RANK=$1 WORLD_SIZE=2 LOCAL_RANK=$1 MASTER_ADDR=127.0.0.1 MASTER_PORT=$P \
    exec "$BIN/hear-finetune" "${ft_args[@]}" run_dir=killed epochs=5000 \
    data.loader.sampler.batch_size=4 train.checkpoint_every=4 train.log_every=1
}
run_rank 0 > rank0.log 2>&1 &
pid0=$!
run_rank 1 > rank1.log 2>&1 &
pid1=$!
for _ in $(seq 1 600); do
  [ -f killed/checkpoints/last/state.yaml ] && break
  sleep 0.1
done
[ -f killed/checkpoints/last/state.yaml ] || { kill -9 $pid0 $pid1 2> /dev/null; fail "no checkpoint"; }
kill -9 $pid1
start=$(date +%s)
while kill -0 $pid0 2> /dev/null && [ $(($(date +%s) - start)) -lt 120 ]; do sleep 0.2; done
if kill -0 $pid0 2> /dev/null; then
  kill -9 $pid0
  fail "rank 0 hung after its peer died"
fi
elapsed=$(($(date +%s) - start))
if wait $pid0; then
  tail -5 rank0.log
  fail "rank 0 exited 0 after its peer died"
fi
grep -q "data parallel" rank0.log || fail "rank 0's error does not name the cause: $(tail -3 rank0.log)"
echo "rank 0 exited within ${elapsed} s: $(grep -o 'data parallel[^:]*' rank0.log | head -1)"

echo "== resume the 2-process run as 1 process (batch 8 = the same global batch) =="
step=$(sed -n 's/^step: *//p' killed/checkpoints/last/state.yaml)
"$BIN/hear-finetune" --resume killed epochs=$((step / 3 + 2)) data.loader.sampler.batch_size=8 \
  > resumed.log 2>&1 || { cat resumed.log; fail "resume as 1 process failed"; }
grep -q "resumed from .* at step $step " resumed.log || fail "did not resume at step $step: $(grep resumed resumed.log)"
grep -q "test accuracy" resumed.log || fail "resumed run did not finish"
echo "resumed at step $step"
