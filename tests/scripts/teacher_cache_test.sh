#!/usr/bin/env bash
# hear-teacher-cache end to end: the golden SSAST tiny weights over a manifest whose first clip is
# the golden waveform -> the cached rows equal the official hidden_states (float16 precision);
# 6 s consecutive segments, shards and index as documented; clear errors for a second run without
# --overwrite, a teacher/config mismatch and a missing teacher.
source "$(dirname "$0")/lib.sh"
CACHE="$BIN/hear-teacher-cache"
GOLDEN="$SRC/tests/golden/ssast_tiny.safetensors"
/usr/bin/python3 - "$SRC/scripts" "$GOLDEN" <<'PY'
import struct, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from convert_reference_checkpoint import read_safetensors
g, _ = read_safetensors(sys.argv[2])


def write_float_wav(path, x):  # IEEE float32 mono 16 kHz, read back bit-exactly
    data = np.asarray(x, dtype="<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, 16000, 16000 * 4, 4, 32)
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE")
        f.write(b"fmt " + struct.pack("<I", len(fmt)) + fmt)
        f.write(b"data" + struct.pack("<I", len(data)) + data)


write_float_wav("golden.wav", g["waveform"].numpy())
rng = np.random.RandomState(0)
write_float_wav("long.wav", 0.1 * rng.standard_normal(16000 * 14))   # 6 s + 6 s + 2 s
write_float_wav("short.wav", 0.1 * rng.standard_normal(12000))       # < 1 s: skipped
with open("m.tsv", "w") as f:
    f.write("path\tlength\ngolden.wav\t96000\nlong.wav\t224000\nshort.wav\t12000\n")
PY
"$CACHE" m.tsv --teacher "$GOLDEN" --weights-prefix weights/ --tiny-config -o cache \
  --shard-size 2 --batch-size 3 --threads 1 | tee out.txt
grep -q "4 segments, 0.0056 hours of audio, 2 shards" out.txt
/usr/bin/python3 - "$SRC/scripts" "$GOLDEN" <<'PY'
import json, os, sys, torch
sys.path.insert(0, sys.argv[1])
from convert_reference_checkpoint import read_safetensors
g, _ = read_safetensors(sys.argv[2])
meta = json.load(open("cache/cache.json"))
assert meta["num_segments"] == 4 and meta["embed_dim"] == 64, meta
assert meta["identity"]["segment_rule"] == "consecutive max_seconds=6 min_seconds=1", meta
assert meta["identity"]["teacher_config"].startswith("embed_dim=64 num_heads=4 depth=2"), meta
rows = [l.rstrip("\n").split("\t") for l in open("cache/index.tsv")][1:]
assert [(os.path.basename(r[0]), int(r[1]), int(r[2]), int(r[6])) for r in rows] == [
    ("golden.wav", 0, 96000, 300), ("long.wav", 0, 96000, 300), ("long.wav", 96000, 96000, 300),
    ("long.wav", 192000, 32000, 100)], rows
shard, smeta = read_safetensors("cache/shard_00000.safetensors")
assert smeta["identity_digest"] == meta["identity_digest"]
got = shard[rows[0][5]].float()
want = g["hidden_states"][:300]
# float16 rounding (<= 2^-11 relative) on top of the float32 parity error (~5e-6 absolute)
diff = (got - want).abs()
print(f"cached golden rows vs official hidden_states: max abs error {diff.max().item():.2e}")
assert bool((diff <= 1e-3 * want.abs() + 2e-5).all()), (diff - 1e-3 * want.abs()).max()
PY
# A second run into the same directory needs --overwrite.
expect_error "already exists" \
  "$CACHE" m.tsv --teacher "$GOLDEN" --weights-prefix weights/ --tiny-config -o cache
# Weights that do not fit the configured teacher: a clear error naming the keys.
expect_error "v.pos_embed: file \[1, 514, 64\] vs model \[1, 514, 768\]" \
  "$CACHE" m.tsv --teacher "$GOLDEN" --weights-prefix weights/ -o c2
# No teacher at all.
expect_error "exactly one of --teacher" "$CACHE" m.tsv -o c3

# Stage 1 through the cache equals stage 1 with the live teacher: same data, same seed, the
# features differ only by float16 rounding, so the per-step losses agree to ~1e-3 relative.
/usr/bin/python3 - "$SRC/scripts" "$GOLDEN" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from convert_reference_checkpoint import read_safetensors, write_safetensors
g, _ = read_safetensors(sys.argv[2])
w = {k[len("weights/"):]: v for k, v in g.items() if k.startswith("weights/")}
write_safetensors("teacher.safetensors", w, {})
PY
TOKCFG="$SRC/configs/tokenizer_tiny.yaml"
common=(data.train_manifest=m.tsv data.loader.segments.mode=consecutive
  data.loader.sampler.batch_size=2 data.loader.num_workers=1 train.steps=6 train.log_every=1
  train.threads=1 train.checkpoint_every=0)
HEAR_TOK="$BIN/hear-tokenizer-train"
"$HEAR_TOK" --config "$TOKCFG" run_dir=live teacher.kind=ssast \
  teacher.weights=teacher.safetensors "${common[@]}" > live.txt 2>&1 || { cat live.txt; exit 1; }
"$HEAR_TOK" --config "$TOKCFG" run_dir=cached teacher.kind=cache teacher.cache=cache \
  "${common[@]}" > cached.txt 2>&1 || { cat cached.txt; exit 1; }
/usr/bin/python3 - <<'PY'
import json
def rows(run):
    return [r for r in map(json.loads, open(f"{run}/metrics.jsonl")) if "distillation" in r]
live, cached = rows("live"), rows("cached")
assert len(live) == len(cached) == 6, (len(live), len(cached))
worst = 0.0
for a, b in zip(live, cached):
    assert a["step"] == b["step"] and a["tau"] == b["tau"], (a, b)
    for k in ("loss", "reconstruction", "distillation", "diversity"):
        rel = abs(a[k] - b[k]) / max(abs(a[k]), 1e-12)
        worst = max(worst, rel)
        assert rel < 2e-3, (k, a["step"], a[k], b[k])
    assert a["distillation"] > 0
print(f"live teacher vs cache, 6 steps: worst relative loss difference {worst:.2e}")
PY
# A cache cut with another segment rule is refused by stage 1.
expect_error "segment rule" "$HEAR_TOK" --config "$TOKCFG" run_dir=bad teacher.kind=cache \
  teacher.cache=cache "${common[@]}" data.loader.segments.max_seconds=4
echo "teacher_cache_test: all checks passed"
