#!/usr/bin/env bash
# hear-embed and hear-bench end to end: outputs readable by numpy, bad files reported and skipped
# with a non-zero exit, MACs of the paper configuration, JSON output.
source "$(dirname "$0")/lib.sh"

# Weights: the golden tiny model's `weights/*` with the prefix removed.
/usr/bin/python3 - "$SRC" <<'PY'
import sys
sys.path.insert(0, sys.argv[1] + "/scripts")
import convert_reference_checkpoint as c
t, _ = c.read_safetensors(sys.argv[1] + "/tests/golden/hear_tiny.safetensors")
w = {k[len("weights/"):]: v for k, v in t.items() if k.startswith("weights/")}
c.write_safetensors("tiny.safetensors", w, {})
ac = {k[len("acoustic_model."):]: v for k, v in w.items() if k.startswith("acoustic_model.")}
c.write_safetensors("acoustic.safetensors", ac, {})
PY
sox -n -r 44100 -c 2 long.flac synth 7.3 sine 440 vol 0.3
sox -n -r 16000 short.wav synth 2.1 pinknoise vol 0.2
echo "not audio" > bad.wav

# Frame embeddings from the full model, batched: shapes and timestamps.
if "$BIN/hear-embed" --config "$SRC/configs/hear_tiny.yaml" -w tiny.safetensors -o out \
     --output task --batch-size 4 long.flac short.wav bad.wav 2> err.txt; then
  echo "FAIL: a bad file must make the exit status non-zero"; exit 1
fi
grep -q "bad.wav" err.txt || { echo "FAIL: bad file not named"; cat err.txt; exit 1; }
/usr/bin/python3 - <<'PY'
import json, numpy as np
idx = json.load(open("out/index.json"))
assert idx["failed"] == ["bad.wav"], idx["failed"]
files = {e["file"]: e for e in idx["files"]}
a = np.load("out/" + files["long.flac"]["npy"]); ts = np.load("out/" + files["long.flac"]["timestamps_npy"])
assert a.shape == (365, 32) and a.dtype == np.float32, a.shape
assert ts.shape == (365,) and ts[0] == 5.0 and ts[1] == 25.0
b = np.load("out/" + files["short.wav"]["npy"])
assert b.shape == (105, 32), b.shape
assert np.isfinite(a).all() and np.isfinite(b).all()
print("embed task ok")
PY
# Batch of one gives the same frames as the batch of two (batch invariance through the program).
"$BIN/hear-embed" --config "$SRC/configs/hear_tiny.yaml" -w tiny.safetensors -o solo --output task short.wav
/usr/bin/python3 -c "
import numpy as np
a=np.load('out/short.task.npy'); b=np.load('solo/short.task.npy')
assert np.abs(a-b).max() < 1e-5, np.abs(a-b).max()"
# An acoustic model alone: acoustic frames and scene vectors; task output refused.
"$BIN/hear-embed" --config "$SRC/configs/hear_tiny.yaml" -w acoustic.safetensors -o ac --output scene short.wav
/usr/bin/python3 -c "
import numpy as np
s=np.load('ac/short.scene.npy'); assert s.shape==(96,), s.shape"
expect_error "task_model" "$BIN/hear-embed" --config "$SRC/configs/hear_tiny.yaml" \
  -w acoustic.safetensors -o x --output logits short.wav

# hear-bench: paper configuration, 10 s: 9,573,504,768 MACs; JSON to stdout.
"$BIN/hear-bench" --no-timing --json - > bench.json
/usr/bin/python3 - <<'PY'
import json
b = json.load(open("bench.json"))
assert b["parameters"]["hear_classifier"] == 15097394, b["parameters"]
assert b["parameters"]["acoustic_model"] == 11445888
assert b["lengths"][0]["total_macs"] == 9573504768
assert b["machine"]["threads"] == 1
print("bench ok")
PY
"$BIN/hear-bench" --seconds 1 --runs 2 --warmup 1 --json timing.json > table.txt
grep -q "RTF" table.txt
/usr/bin/python3 -c "
import json; t=json.load(open('timing.json'))['lengths'][0]['timing']
assert t['total']['rtf'] > 0 and len(t['total']['runs']) == 2"
expect_error "abc" "$BIN/hear-bench" --sweep 1,abc
# --device: a device this LibTorch build lacks is refused naming the option (CUDA runs in
# scripts/gpu_check.sh).
if ! /usr/bin/python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2> /dev/null; then
  expect_error "\-\-device='cuda'.*no CUDA" "$BIN/hear-bench" --no-timing --device cuda
  expect_error "\-\-device='cuda:1'" "$BIN/hear-embed" --config "$SRC/configs/hear_tiny.yaml" \
    -w tiny.safetensors -o x --device cuda:1 short.wav
fi
expect_error "\-\-device='tpu'" "$BIN/hear-bench" --no-timing --device tpu

# Training steps of each stage (tiny widths through the stage's model keys): phases, JSON, MACs.
small_tok="tokenizer.hidden_size=32 tokenizer.intermediate_size=64 tokenizer.num_attention_heads=4
  tokenizer.num_transformer_layers=1 tokenizer.num_codebooks=64"
"$BIN/hear-bench" --train tokenizer --batch 2 --seconds 1 --steps 2 --json tok.json $small_tok \
  decoder.hidden_size=32 decoder.intermediate_size=64 decoder.num_attention_heads=4 \
  decoder.num_transformer_layers=1 decoder.knowledge_hidden_size=48 > tok.txt
grep -q "optimizer" tok.txt || fail "no phase table: $(cat tok.txt)"
"$BIN/hear-bench" --train pretrain --batch 2 --seconds 1 --steps 2 --json mam.json $small_tok \
  encoder.hidden_size=32 encoder.intermediate_size=64 encoder.num_attention_heads=4 \
  encoder.num_transformer_layers=1 > /dev/null
"$BIN/hear-bench" --train finetune --batch 2 --seconds 1 --steps 2 --classes 5 --json - \
  --config "$SRC/configs/hear_tiny.yaml" > ft.json
py - <<'PY'
import json
for f, stage in (("tok.json", "tokenizer"), ("mam.json", "pretrain"), ("ft.json", "finetune")):
    t = json.load(open(f))["train"]
    assert t["stage"] == stage and t["batch"] == 2 and t["seconds"] == 1 and t["steps"] == 2, t
    assert set(t["phases"]) == {"data", "frontend", "forward", "backward", "optimizer"}, t
    assert 0 < t["phases"]["forward"]["median_s"] <= t["median_step_s"], t
    # forward + backward products: at least twice the forward's
    assert t["executed_macs_per_step"] > 0 and t["achieved_gflops"] > 0 and t["gemm_gflops"] > 0, t
print("bench --train ok")
PY
expect_error "tokenizer" "$BIN/hear-bench" --train stage4
echo "embed_bench_test: all checks passed"
