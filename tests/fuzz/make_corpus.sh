#!/usr/bin/env bash
# Writes the committed seed corpora tests/fuzz/corpus/<target>/ (deterministic): valid inputs of
# each format plus a few near-misses, so libFuzzer starts from the formats' real structure.
#   bash tests/fuzz/make_corpus.sh [BIN]   (BIN: a release build's bin/, for hear-teacher-cache)
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:-$SRC/build/release/bin}
C=$SRC/tests/fuzz/corpus
rm -rf "$C"
mkdir -p "$C"/{safetensors,audio,config,manifest,esc50,speech_commands,voxceleb1,teacher_cache}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

/usr/bin/python3 - "$C" <<'PY'
import json, struct, sys
C = sys.argv[1]
def st(tensors, meta=None):
    header, blob = {}, b""
    if meta: header["__metadata__"] = meta
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + blob
f32 = lambda *v: struct.pack(f"<{len(v)}f", *v)
seeds = {
    "two_tensors": st({"a.weight": ("F32", [2, 2], f32(1, 2, 3, 4)), "a.bias": ("F32", [2], f32(0.5, -1))},
                      {"format": "hear-checkpoint-1"}),
    "dtypes": st({"i": ("I64", [1], struct.pack("<q", 7)), "h": ("F16", [2], b"\x00\x3c\x00\xc0"),
                  "b": ("BF16", [1], b"\x80\x3f"), "u": ("U8", [3], b"\x01\x02\x03"),
                  "s": ("F32", [], f32(2.5)), "e": ("F32", [0, 4], b"")}),
    "bad_offsets": st({"x": ("F32", [4], f32(1, 2))}),
    "empty_header": struct.pack("<Q", 2) + b"{}",
}
for k, v in seeds.items():
    open(f"{C}/safetensors/{k}", "wb").write(v)
open(f"{C}/safetensors/huge_header_len", "wb").write(struct.pack("<Q", 1 << 62) + b"{}")

cfg = {
    "full": "sampler: {batch_size: 8, shuffle: true, drop_last: false, bucket_pool: 4, seed: 3}\n"
            "segments: {mode: consecutive, max_seconds: 6.0, min_seconds: 1.0}\nnum_workers: 2\n",
    "nested": "loader:\n  sampler:\n    batch_size: 16\n  segments:\n    mode: random_crop\n"
              "on_error: skip\nfolds: [1, 2, 3]\nname: esc\nrate: 0.25\n",
    "overrides": "loader: {num_workers: 1}\n\0loader.sampler.batch_size=4\0folds=[5, 6]\0on_error=stop\0rate=1e-1",
    "bad_key": "loader: {sampler: {batch_sise: 3}}\n\0loader.segments.mode=whole",
    "anchors": "a: &x {num_workers: 3}\nloader: *x\n",
}
for k, v in cfg.items():
    open(f"{C}/config/{k}", "w").write(v)

open(f"{C}/manifest/header", "w").write("path\tnum_samples\tlabel\ta.wav\t1600\tdog\nb/c.wav\t800\tcat\n".replace("label\t", "label\n", 1))
open(f"{C}/manifest/seconds_offset", "w").write("path\tduration\tlabel\toffset\na.wav\t0.1\tx\t0\nb/c.wav\t0.05\t\t100\n")
open(f"{C}/manifest/no_header", "w").write("a.wav\t1600\n")
open(f"{C}/manifest/bad", "w").write("a.wav\tlots\n\nmissing.wav\t3\n")

esc_head = "filename,fold,target,category,esc10,src_file,take\n"
open(f"{C}/esc50/valid", "w").write(esc_head + "1-100032-A-0.wav,1,0,dog,True,100032,A\n"
    "2-100038-A-14.wav,2,14,chirping_birds,False,100038,A\n3-100048-B-7.wav,3,7,insects,False,100048,B\n")
open(f"{C}/esc50/conflict", "w").write(esc_head + "1-100032-A-0.wav,1,0,dog,True,100032,A\n"
    "2-100038-A-14.wav,2,0,cat,False,100038,A\n")
open(f"{C}/esc50/short_row", "w").write(esc_head + "1-100032-A-0.wav,1\n")

open(f"{C}/speech_commands/lists", "w").write("yes/0a7c2a8d_nohash_1.wav\nno/0b40aa8e_nohash_0.wav\n\0stop/0c5027de_nohash_2.wav\n")
open(f"{C}/speech_commands/empty_lists", "w").write("\0")
open(f"{C}/speech_commands/missing", "w").write("yes/nothere_nohash_0.wav\n\0../escape.wav\n")

open(f"{C}/voxceleb1/valid", "w").write("1 id10001/1zcIwhmdeo4/00001.wav\n2 id10001/1zcIwhmdeo4/00002.wav\n"
    "3 id10002/6WO410QOeuo/00001.wav\n1 id10003/K5zRxtXc27s/00001.wav\n")
open(f"{C}/voxceleb1/bad", "w").write("4 id10001/1zcIwhmdeo4/00001.wav\n1\n")
PY

# Audio: the formats libsndfile reads, short, at several rates and channel counts.
sox -R -n -r 16000 -c 1 -b 16 "$C/audio/pcm16.wav" synth 0.05 sine 440
sox -R -n -r 44100 -c 2 -b 24 "$C/audio/stereo24_44k.wav" synth 0.03 sine 300 sine 500
sox -R -n -r 8000 -c 1 -e floating-point -b 32 "$C/audio/float_8k.wav" synth 0.05 noise
sox -R -n -r 22050 -c 1 "$C/audio/flac.flac" synth 0.04 sine 1000
sox -R -n -r 16000 -c 1 "$C/audio/vorbis.ogg" synth 0.05 sine 200
sox -R -n -r 11025 -c 1 -b 8 "$C/audio/aiff8.aiff" synth 0.03 square 100
sox -R -n -r 16000 -c 1 "$C/audio/au.au" synth 0.02 sine 700
head -c 60 "$C/audio/pcm16.wav" > "$C/audio/truncated.wav"

# A real teacher cache: the golden tiny SSAST over one 1.5 s clip.
sox -R -n -r 16000 -c 1 -e floating-point -b 32 "$T/clip.wav" synth 1.5 sine 300
printf 'path\tlength\nclip.wav\t24000\n' > "$T/m.tsv"
(cd "$T" && "$BIN/hear-teacher-cache" m.tsv --teacher "$SRC/tests/golden/ssast_tiny.safetensors" \
  --weights-prefix weights/ --tiny-config -o cache --threads 1 > /dev/null)
for s in "$T"/cache/shard_*.safetensors; do [ "$s" = "$T/cache/shard_00000.safetensors" ] || rm "$s"; done
{ cat "$T/cache/cache.json"; printf '\0'; cat "$T/cache/index.tsv"; printf '\0'; cat "$T/cache/shard_00000.safetensors"; } \
  > "$C/teacher_cache/tiny"
{ cat "$T/cache/cache.json"; printf '\0'; head -1 "$T/cache/index.tsv"; printf '\0'; } > "$C/teacher_cache/no_rows"
du -sh "$C"/*
