#!/usr/bin/env bash
# The three stages end to end on a generated labelled set (tiny configs): stage 1 -> stage 2 ->
# stage 3 in its four settings, losses fall, tau follows its schedule, a run killed with SIGKILL
# resumes from `last`, transfer leaves the acoustic model bitwise unchanged, no_spectrum has no
# gate, bad configs and manifests are clear errors.
source "$(dirname "$0")/lib.sh"

py "$SRC/scripts/make_synthetic_dataset.py" data --per-class 15 --max-seconds 4 --unlabeled 16 --seed 1
cat data/train.tsv data/unlabeled.tsv > data/pretrain.tsv

# first and last value of a metric in metrics.jsonl
first_last() { py - "$1" "$2" <<'PY'
import json, sys
v = [json.loads(l)[sys.argv[2]] for l in open(sys.argv[1]) if sys.argv[2] in json.loads(l)]
print(v[0], v[-1])
PY
}

echo "== stage 1: tokenizer (teacher none) =="
"$BIN/hear-tokenizer-train" --config "$SRC/configs/tokenizer_tiny.yaml" run_dir=tok \
  data.train_manifest=data/pretrain.tsv data.valid_manifest=data/valid.tsv train.steps=40
[ -f tok/tokenizer.safetensors ] || fail "no tokenizer export"
read a b < <(first_last tok/metrics.jsonl loss); py -c "import sys; assert $b < $a, ($a, $b)" || fail "tokenizer loss did not fall ($a -> $b)"
# tau: 2.0 * 0.98^40 after 40 steps, saved in the checkpoint.
py - <<'PY'
import re
s = open("tok/checkpoints/last/state.yaml").read()
tau = float(re.search(r"gumbel_temperature:\s*\"?([0-9.e+-]+)", s).group(1))
want = max(0.5, 2.0 * 0.98 ** 40)
assert abs(tau - want) < 1e-9, (tau, want)
print("tau", tau)
PY
# Without an explicit teacher choice stage 1 refuses to start.
if "$BIN/hear-tokenizer-train" --config "$SRC/configs/tokenizer_tiny.yaml" run_dir=tok2 teacher.kind= \
    data.train_manifest=data/pretrain.tsv 2> err.txt; then fail "started without a teacher"; fi
grep -q "teacher.kind" err.txt || fail "teacher error unclear: $(cat err.txt)"

echo "== stage 2: MAM pre-training =="
"$BIN/hear-pretrain" --config "$SRC/configs/pretrain_tiny.yaml" run_dir=mam \
  tokenizer_weights=tok/tokenizer.safetensors data.train_manifest=data/pretrain.tsv \
  data.valid_manifest=data/valid.tsv train.steps=40
[ -f mam/acoustic_model.safetensors ] || fail "no acoustic model export"
read a b < <(first_last mam/metrics.jsonl loss); py -c "assert $b < $a" || fail "MAM loss did not fall ($a -> $b)"

echo "== stage 1 again, distilled from the MAM acoustic model (teacher.kind: hear) =="
"$BIN/hear-tokenizer-train" --config "$SRC/configs/tokenizer_tiny.yaml" run_dir=tok_hear \
  data.train_manifest=data/pretrain.tsv teacher.kind=hear teacher.weights=mam/acoustic_model.safetensors \
  teacher.hear_model.hidden_size=64 teacher.hear_model.intermediate_size=128 \
  teacher.hear_model.num_attention_heads=4 teacher.hear_model.num_transformer_layers=2 \
  train.steps=20 > tok_hear.log 2>&1 || { cat tok_hear.log; fail "teacher.kind=hear failed"; }
read a b < <(first_last tok_hear/metrics.jsonl distillation)
py -c "assert 0 < $b < $a" || fail "distillation from the HEAR teacher did not fall ($a -> $b)"
expect_error "knowledge_hidden_size" "$BIN/hear-tokenizer-train" --config "$SRC/configs/tokenizer_tiny.yaml" \
  run_dir=tok_bad data.train_manifest=data/pretrain.tsv teacher.kind=hear teacher.weights=mam/acoustic_model.safetensors

echo "== stage 3: fine-tuning =="
ft() { "$BIN/hear-finetune" --config "$SRC/configs/finetune_tiny.yaml" data.train_manifest=data/train.tsv \
  data.valid_manifest=data/valid.tsv data.test_manifest=data/test.tsv "$@"; }
ft run_dir=scratch setting=scratch epochs=12 | tee scratch.txt
py -c "
import json; t = json.load(open('scratch/test.json'))
print('scratch test accuracy', t['accuracy'])
assert t['accuracy'] >= 0.9, t['accuracy']
assert 'best validation accuracy' in t['selection_rule']"
ft run_dir=base setting=base pretrained=mam/acoustic_model.safetensors epochs=2
ft run_dir=transfer setting=transfer pretrained=mam/acoustic_model.safetensors epochs=2
ft run_dir=nospec setting=no_spectrum pretrained=mam/acoustic_model.safetensors epochs=2
py - "$SRC" <<'PY'
import sys
sys.path.insert(0, sys.argv[1] + "/scripts")
import torch, convert_reference_checkpoint as c
pre, _ = c.read_safetensors("mam/acoustic_model.safetensors")
tr, _ = c.read_safetensors("transfer/checkpoints/last/model.safetensors")
for k, v in pre.items():
    assert torch.equal(tr["acoustic_model." + k], v), k
base, _ = c.read_safetensors("base/checkpoints/last/model.safetensors")
assert any(not torch.equal(base["acoustic_model." + k], v) for k, v in pre.items()), "base did not train"
ns, _ = c.read_safetensors("nospec/checkpoints/last/model.safetensors")
assert not any(k.startswith("spectrogram_mixture.") for k in ns), "no_spectrum has gate weights"
print("transfer frozen, no_spectrum without gate: ok")
PY
"$BIN/hear-evaluate" --run scratch --manifest data/test.tsv -o evald
py -c "
import json; a=json.load(open('evald/evaluation.json')); b=json.load(open('scratch/test.json'))
assert abs(a['accuracy'] - b['accuracy']) < 1e-12, (a['accuracy'], b['accuracy'])"

echo "== SIGKILL mid-run, then --resume =="
# exec: $! must be hear-finetune itself (a backgrounded function is a subshell, and killing it
# would leave the program running beside the resumed one).
(exec "$BIN/hear-finetune" --config "$SRC/configs/finetune_tiny.yaml" data.train_manifest=data/train.tsv \
  data.valid_manifest=data/valid.tsv data.test_manifest=data/test.tsv run_dir=killed setting=scratch \
  epochs=40 train.checkpoint_every=3) > killed.log 2>&1 &
pid=$!
for i in $(seq 1 600); do
  [ -f killed/checkpoints/last/state.yaml ] && break
  sleep 0.1
done
kill -9 $pid 2>/dev/null || true
wait $pid 2>/dev/null || true
[ -f killed/checkpoints/last/state.yaml ] || fail "no checkpoint before the kill"
step=$(sed -n 's/^step: *//p' killed/checkpoints/last/state.yaml)
"$BIN/hear-finetune" --resume killed epochs=4 > resumed.log 2>&1 || { cat resumed.log; fail "resume failed"; }
grep -q "test accuracy" resumed.log || fail "resumed run did not finish"
echo "resumed from step $step"

echo "== bad input =="
expect_error "train.optimizer.lrr" ft run_dir=bad1 setting=scratch train.optimizer.lrr=1
expect_error "setting" ft run_dir=bad2 setting=frozen
printf 'missing.wav\t16000\ttone\n' > data/missing.tsv
expect_error "missing.wav" ft run_dir=bad3 setting=scratch data.train_manifest=data/missing.tsv
: > data/empty.tsv
expect_error "empty.tsv" ft run_dir=bad4 setting=scratch data.train_manifest=data/empty.tsv
expect_error "pretrained" ft run_dir=bad5 setting=base
expect_error "train.device='cuda:0'" ft run_dir=bad6 setting=scratch train.device=cuda:0
expect_error "train.precision: fp16" ft run_dir=bad7 setting=scratch train.precision=fp16
expect_error "not found" "$BIN/hear-pretrain" --config "$SRC/configs/nonexistent.yaml"
echo "stages_test: all checks passed"
