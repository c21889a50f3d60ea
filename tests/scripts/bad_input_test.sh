#!/usr/bin/env bash
# Bad input to the programs (issue 17): hostile weights files, broken audio, mistyped configs and
# overrides, malformed manifests and dataset metadata. Each must end in one clear error line naming
# the file, key or value, exit 1, and leave no half-written output. The rows (input, program, exit,
# message) must equal the `inputs` table of docs/reliability.md (HEAR_UPDATE_DOCS=1 rewrites it).
source "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1
: > rows.md
sox -R -n -r 16000 -c 1 -b 16 ok.wav synth 1.2 sine 440
MODEL=(--config "$SRC/configs/hear_tiny.yaml")

# case DESCRIPTION PROGRAM ARGS...: runs bin/PROGRAM ARGS, which must fail with exit 1, print an
# "error:" line and leave no *.tmp* file behind.
case_() {
  local what=$1 prog=$2
  shift 2
  set +e
  "$BIN/$prog" "$@" > out.log 2> err.log
  local rc=$?
  set -e
  [ $rc = 1 ] || { cat err.log; fail "$what: exit $rc, expected 1"; }
  grep -q "error:" err.log || fail "$what: no error line: $(cat err.log)"
  [ "$(grep -c . err.log)" -le 2 ] || fail "$what: more than one message: $(cat err.log)"
  ! find . -name "*.tmp*" | grep -q . || fail "$what: left $(find . -name '*.tmp*')"
  table_row rows.md "$what" "$prog" $rc "$(table_message err.log "error:")"
}

echo "== weights files =="
py - <<'PY'
import json, struct
def st(header, blob=b"", length=None):
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h) if length is None else length) + h + blob
open("huge_header.safetensors", "wb").write(st({}, length=1 << 60))
open("not_json.safetensors", "wb").write(struct.pack("<Q", 8) + b"{nojson]")
open("out_of_range.safetensors", "wb").write(st({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 8))
open("bad_dtype.safetensors", "wb").write(st({"w": {"dtype": "F31", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4))
open("shape_mismatch.safetensors", "wb").write(st({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 4]}}, b"\0" * 4))
open("empty.safetensors", "wb").write(b"")
PY
for f in huge_header not_json out_of_range bad_dtype shape_mismatch empty; do
  case_ "weights: $f.safetensors" hear-embed "${MODEL[@]}" -w $f.safetensors ok.wav -o emb
done
cp "$SRC/tests/golden/mam_tiny.safetensors" wrong_model.safetensors
case_ "weights of another architecture" hear-embed "${MODEL[@]}" -w wrong_model.safetensors ok.wav -o emb

echo "== audio files =="
head -c 200 ok.wav > truncated.wav
echo "plain text" > text.wav
: > empty.wav
sox -R -n -r 16000 -c 1 -b 16 silent_header.wav trim 0 0
case_ "audio: truncated WAV" hear-features truncated.wav
case_ "audio: a text file named .wav" hear-features text.wav
case_ "audio: empty file" hear-features empty.wav
case_ "audio: no samples" hear-features silent_header.wav
case_ "audio: missing file" hear-features nothere.wav

echo "== configs and overrides =="
FT=(--config "$SRC/configs/finetune_tiny.yaml" data.train_manifest=m.tsv run_dir=run)
printf 'ok.wav\t19200\ta\nok.wav\t19200\tb\n' > m.tsv
case_ "config: mistyped key" hear-finetune "${FT[@]}" train.optimizr.lr=1e-3
case_ "config: value of the wrong type" hear-finetune "${FT[@]}" epochs=three
case_ "config: value out of range" hear-finetune "${FT[@]}" data.loader.sampler.batch_size=0
case_ "config: unknown choice" hear-finetune "${FT[@]}" setting=frozen
case_ "config: override without =" hear-finetune "${FT[@]}" epochs
printf 'epochs: [1\n' > broken.yaml
case_ "config: malformed YAML" hear-finetune --config broken.yaml
case_ "config: missing file" hear-finetune --config nothere.yaml
case_ "resume: no run there" hear-finetune --resume nothere

echo "== manifests =="
printf 'ok.wav\tlots\ta\n' > bad_len.tsv
printf 'ok.wav\n' > one_column.tsv
printf 'gone.wav\t16000\ta\n' > missing_clip.tsv
: > empty.tsv
for m in bad_len one_column missing_clip empty; do
  case_ "manifest: $m" hear-finetune "${FT[@]}" data.train_manifest=$m.tsv
done

echo "== dataset metadata =="
FTD=(--config "$SRC/configs/finetune_tiny.yaml" run_dir=run)
mkdir -p esc/audio esc/meta vox/wav/id10001/v sc/yes
cp ok.wav esc/audio/1-1-A-0.wav
printf 'filename,fold,target\n1-1-A-0.wav,1,0\n' > esc/meta/esc50.csv
case_ "ESC-50: esc50.csv without the category column" hear-finetune "${FTD[@]}" data.format=esc50 data.root=esc
printf 'filename,fold,target,category,esc10,src_file,take\n1-1-A-0.wav,x,0,dog,True,1,A\n' > esc/meta/esc50.csv
case_ "ESC-50: a fold that is not a number" hear-finetune "${FTD[@]}" data.format=esc50 data.root=esc
cp ok.wav vox/wav/id10001/v/00001.wav
printf '1 id10001/v/00001.wav\n7 id10001/v/00001.wav\n' > vox/iden_split.txt
case_ "VoxCeleb1: iden_split.txt with split 7" hear-finetune "${FTD[@]}" data.format=voxceleb1 data.root=vox
printf '1 id10001/v/00002.wav\n' > vox/iden_split.txt
case_ "VoxCeleb1: a listed file that is missing" hear-finetune "${FTD[@]}" data.format=voxceleb1 data.root=vox
cp ok.wav sc/yes/a_nohash_0.wav
printf 'yes/b_nohash_0.wav\n' > sc/validation_list.txt
: > sc/testing_list.txt
case_ "Speech Commands: validation_list.txt names a missing file" hear-finetune "${FTD[@]}" \
  data.format=speech_commands data.protocol=gscv2 data.root=sc

check_doc_table inputs "| bad input | program | exit | message |" rows.md
echo "bad_input_test: all checks passed"
