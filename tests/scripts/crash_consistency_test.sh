#!/usr/bin/env bash
# Crash consistency of the three stage programs (issue 17), on tiny configs with 1 thread:
#   - kill -9 at random moments (and at each named point of a checkpoint save, HEAR_FAULT_POINT),
#     then --resume until done: the final weights equal an uninterrupted run's bitwise, and a
#     resume loses at most one checkpoint interval;
#   - a truncated or corrupted `last` is detected on resume (checksums in state.yaml) and
#     `last.old` is used with a warning;
#   - a file-size limit on save (RLIMIT_FSIZE, as a full disk) exits non-zero with a clear error and
#     leaves the previous checkpoint intact;
#   - a second program on the same run directory refuses (RUN_DIR/lock with the pid);
#   - a manifest entry deleted or truncated mid-run: data.on_error stop names it and exits 1, skip
#     counts it and finishes; NaN audio is rejected by name.
# Every fault's exit code, first error or warning line and what is left on disk go into a table that
# must equal the one in docs/reliability.md (HEAR_UPDATE_DOCS=1 rewrites it there instead).
# HEAR_CRASH_SEED picks the random kill moments (printed; default: from the clock).
source "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1
SEED=${HEAR_CRASH_SEED:-$(date +%s)}
RANDOM=$SEED
echo "kill moments seeded with HEAR_CRASH_SEED=$SEED"

py "$SRC/scripts/make_synthetic_dataset.py" data --per-class 6 --max-seconds 2 --unlabeled 8 --seed 3 > /dev/null
cat data/train.tsv data/unlabeled.tsv > data/pretrain.tsv
STEPS=30
EVERY=2  # checkpoint interval (steps)
common=(train.threads=1 train.checkpoint_every=$EVERY train.log_every=1 train.progress_bar=false)

# The rows of the fault table (docs/reliability.md), filled by row().
: > table.md
# row FAULT PROGRAM EXIT LOG PATTERN KEPT: one row; the message is LOG's first line matching PATTERN.
row() { table_row table.md "$1" "$2" "$3" "$(table_message "$4" "$5")" "$6"; }

# checkpoints RUN_DIR: what RUN_DIR/checkpoints holds, for the table.
checkpoints() {
  local names
  names=$(ls "$1/checkpoints" 2>/dev/null | sed 's/.*/`&`/' | paste -sd, - | sed 's/,/, /g')
  echo "checkpoints: ${names:-none}"
}

# start NAME DIR [ARGS...]: replaces the shell with stage NAME in DIR (resumed when DIR has a
# checkpoint), so that `(start ...) &` gives the program's own pid.
start() {
  local name=$1 dir=$2
  shift 2
  local prog
  case $name in
    tok) prog=hear-tokenizer-train ;;
    mam) prog=hear-pretrain ;;
    ft) prog=hear-finetune ;;
  esac
  if [ -e "$dir/checkpoints/last" ] || [ -e "$dir/checkpoints/last.old" ]; then
    exec "$BIN/$prog" --resume "$dir" "$@"
  fi
  case $name in
    tok) exec "$BIN/$prog" --config "$SRC/configs/tokenizer_tiny.yaml" run_dir="$dir" \
      data.train_manifest=data/pretrain.tsv train.steps=$STEPS "${common[@]}" "$@" ;;
    mam) exec "$BIN/$prog" --config "$SRC/configs/pretrain_tiny.yaml" run_dir="$dir" \
      tokenizer_weights=ref_tok/tokenizer.safetensors data.train_manifest=data/pretrain.tsv \
      data.valid_manifest=data/valid.tsv train.validate_every=4 train.steps=$STEPS "${common[@]}" "$@" ;;
    ft) exec "$BIN/$prog" --config "$SRC/configs/finetune_tiny.yaml" run_dir="$dir" setting=scratch \
      data.train_manifest=data/train.tsv data.valid_manifest=data/valid.tsv \
      data.test_manifest=data/test.tsv epochs=8 "${common[@]}" "$@" ;;
  esac
}
# The file holding a finished run's final weights.
final_weights() {
  case $1 in
    tok) echo "$2/tokenizer.safetensors" ;;
    mam) echo "$2/acoustic_model.safetensors" ;;
    ft) echo "$2/checkpoints/last/model.safetensors" ;;
  esac
}
done_run() { [ -f "$(final_weights "$1" "$2")" ] && { [ "$1" != ft ] || [ -f "$2/test.json" ]; }; }

# same_weights A B: every tensor of safetensors A equals B's bitwise (metadata holds run_dir).
same_weights() {
  py - "$SRC" "$1" "$2" <<'PY'
import sys
sys.path.insert(0, sys.argv[1] + "/scripts")
import torch, convert_reference_checkpoint as c
a, _ = c.read_safetensors(sys.argv[2])
b, _ = c.read_safetensors(sys.argv[3])
assert a.keys() == b.keys(), (sorted(a.keys() ^ b.keys()))[:5]
bad = [k for k in a if not torch.equal(a[k], b[k])]
assert not bad, f"{len(bad)} tensors differ, e.g. {bad[:3]}"
PY
}
# last_step RUN_DIR: the last step in metrics.jsonl (a line cut by the kill is ignored).
last_step() {
  py - "$1/metrics.jsonl" <<'PY'
import json, sys
step = 0
try:
    for line in open(sys.argv[1]):
        try:
            step = max(step, json.loads(line).get("step", 0))
        except ValueError:
            pass
except FileNotFoundError:
    pass
print(step)
PY
}
# resume_to_end NAME DIR [INTERVALS]: resumes until the run is done; the resume may start at most
# INTERVALS (default 1) checkpoint intervals before the last step reached.
resume_to_end() {
  local reached from allow=$((${3:-1} * EVERY))
  reached=$(last_step "$2")
  (start "$1" "$2") > "$2.resume.log" 2>&1 || { cat "$2.resume.log"; fail "$1: resume of $2 failed"; }
  from=$(sed -n "s/.*resumed from '.*' at step \([0-9]*\).*/\1/p" "$2.resume.log" | head -1)
  from=${from:-0}
  [ "$from" -ge $((reached - allow)) ] || fail "$1: $2 reached step $reached but resumed from $from"
  done_run "$1" "$2" || fail "$1: $2 not finished after resume"
  echo "  $2: killed after step $reached, resumed from step $from"
}
# killed_run NAME DIR SECONDS...: kills the run at each moment (fresh, then resumed), then resumes
# to the end and compares with the reference.
killed_run() {
  local name=$1 dir=$2
  shift 2
  local s pid reached from
  for s in "$@"; do
    done_run "$name" "$dir" && break
    reached=$(last_step "$dir")
    (start "$name" "$dir") > "$dir.$s.log" 2>&1 &
    pid=$!
    sleep "$s"
    kill -9 $pid 2>/dev/null || true
    wait $pid 2>/dev/null || true
    from=$(sed -n "s/.*resumed from '.*' at step \([0-9]*\).*/\1/p" "$dir.$s.log" | head -1)
    if [ -n "$from" ] && [ "$from" -lt $((reached - EVERY)) ]; then
      fail "$name: $dir reached step $reached but resumed from $from"
    fi
    echo "  launch killed after $s s: $(last_step "$dir") steps logged${from:+, had resumed from step $from}"
  done
  done_run "$name" "$dir" || resume_to_end "$name" "$dir"
  same_weights "$(final_weights "$name" ref_$name)" "$(final_weights "$name" "$dir")" ||
    fail "$name: $dir differs from the uninterrupted run"
}
rand_moments() {  # rand_moments SECONDS: three moments in (0.15, 0.9) x SECONDS, increasing run time
  local t=$1 i
  for i in 1 2 3; do py -c "print(round($t * (0.15 + 0.75 * $((RANDOM % 1000)) / 1000), 2))"; done
}

for name in tok mam ft; do
  echo "== $name: uninterrupted reference =="
  t0=$(date +%s.%N)
  (start $name ref_$name) > ref_$name.log 2>&1 || { cat ref_$name.log; fail "$name reference failed"; }
  wall=$(py -c "print($(date +%s.%N) - $t0)")
  echo "  ${wall} s"

  echo "== $name: kill -9 at random moments, resume =="
  mapfile -t moments < <(rand_moments "$wall")
  echo "  kill after ${moments[*]} s of each launch"
  killed_run $name rand_$name "${moments[@]}"

  echo "== $name: kill -9 inside a checkpoint save, resume =="
  for point in checkpoint.files_written checkpoint.tmp_complete checkpoint.previous_moved; do
    [ $name = mam ] || [ $point = checkpoint.previous_moved ] || continue
    dir=fault_${name}_$point
    set +e
    (export HEAR_FAULT_POINT=$point:3; start $name $dir) > $dir.log 2>&1
    rc=$?
    set -e
    [ $rc = 137 ] || { cat $dir.log; fail "$name: $point did not kill (exit $rc)"; }
    [ -e $dir/checkpoints/last.tmp ] || [ $point = checkpoint.previous_moved ] ||
      fail "$name: $point left no last.tmp"
    if [ $point = checkpoint.previous_moved ]; then
      # Killed between the renames of `last` or `best`: NAME.old without NAME.
      ls $dir/checkpoints
      [ ! -e $dir/checkpoints/last ] || [ ! -e $dir/checkpoints/best ] ||
        fail "$point: NAME still there"
    fi
    resume_to_end $name $dir
    same_weights "$(final_weights $name ref_$name)" "$(final_weights $name $dir)" ||
      fail "$name: $dir differs from the uninterrupted run"
    [ $name != mam ] || {
      case $point in
        checkpoint.files_written) kept="\`last\` (previous), partial \`last.tmp\`: replaced on the next save" ;;
        checkpoint.tmp_complete) kept="\`last\` (previous), complete \`last.tmp\`: replaced on the next save" ;;
        *) kept="\`last.old\` only: resumed from it" ;;
      esac
      row "kill -9 at \`$point\` (3rd save), then \`--resume\`" "hear-pretrain" "137, then 0" \
        $dir.resume.log "previous checkpoint" "$kept; final weights bitwise equal"
    }
  done
done
row "kill -9 at random moments (3 per stage, HEAR_CRASH_SEED), then \`--resume\`" "all three stages" \
  "137, then 0" /dev/null x \
  "\`last\`/\`last.old\`; resume loses <= 1 checkpoint interval; final weights bitwise equal"

echo "== damaged last: truncated, corrupted =="
for damage in truncate corrupt; do
  dir=damaged_$damage
  set +e
  (export HEAR_FAULT_POINT=checkpoint.files_written:4; start mam $dir) > $dir.log 2>&1
  set -e
  rm -rf $dir/checkpoints/last.tmp
  f=$dir/checkpoints/last/model.safetensors
  if [ $damage = truncate ]; then
    truncate -s $(($(stat -c %s $f) / 2)) $f
  else
    printf '\x5a' | dd of=$f bs=1 seek=$(($(stat -c %s $f) - 100)) conv=notrunc status=none
  fi
  resume_to_end mam $dir 2  # the damaged `last` is one interval, the save cut by the kill another
  grep -q "using the previous checkpoint" $dir.resume.log || fail "$damage: no fallback warning"
  same_weights "$(final_weights mam ref_mam)" "$(final_weights mam $dir)" ||
    fail "$damage: differs from the uninterrupted run"
  [ $damage = truncate ] && what=truncated || what="corrupted (one byte)"
  row "\`last/model.safetensors\` $what, then \`--resume\`" hear-pretrain 0 $dir.resume.log \
    "previous checkpoint" "resumed from \`last.old\`; final weights bitwise equal"
done

echo "== full disk on save (RLIMIT_FSIZE) =="
dir=full_disk
set +e
(export HEAR_FAULT_POINT=checkpoint.files_written:2; start mam $dir) > $dir.log 2>&1
set -e
rm -rf $dir/checkpoints/last.tmp
before=$(cd $dir/checkpoints/last && sha256sum * | sha256sum)
# 64 KiB per file: metrics and config fit, the model file (~0.5 MB) does not.
set +e
(ulimit -f 64; start mam $dir) > $dir.resume.log 2>&1
rc=$?
set -e
[ $rc = 1 ] || { cat $dir.resume.log; fail "full disk: exit $rc, expected 1"; }
grep -q "File too large" $dir.resume.log || fail "full disk: unclear error: $(tail -3 $dir.resume.log)"
[ "$(cd $dir/checkpoints/last && sha256sum * | sha256sum)" = "$before" ] || fail "full disk: last changed"
[ ! -e $dir/checkpoints/last.tmp ] || fail "full disk: last.tmp left behind"
[ ! -e $dir/checkpoints/best.tmp ] || fail "full disk: best.tmp left behind"
row "file-size limit (\`ulimit -f 64\`, as a full disk) on save" hear-pretrain $rc $dir.resume.log \
  "error" "\`last\` unchanged (bitwise), no \`last.tmp\`; resumable"
resume_to_end mam $dir
same_weights "$(final_weights mam ref_mam)" "$(final_weights mam $dir)" || fail "full disk: resume differs"

echo "== two programs on one run directory =="
(start mam locked train.steps=100000) > locked.log 2>&1 &
pid=$!
for i in $(seq 1 300); do [ -f locked/checkpoints/last/state.yaml ] && break; sleep 0.1; done
set +e
"$BIN/hear-pretrain" --resume locked > second.log 2>&1
rc=$?
set -e
[ $rc = 1 ] || fail "second program: exit $rc"
grep -q "is in use by another process (pid $pid" second.log || fail "lock: $(cat second.log)"
row "a second program on a run directory in use" "any stage program" $rc second.log error \
  "the first run untouched; after it dies (even by kill -9) a resume starts"
kill -9 $pid; wait $pid 2>/dev/null || true
# The kernel dropped the dead holder's flock: a resume now starts.
(start mam locked train.steps=100000) > relock.log 2>&1 &
pid=$!
for i in $(seq 1 300); do grep -q "resumed from" relock.log && break; sleep 0.1; done
kill -9 $pid; wait $pid 2>/dev/null || true
grep -q "resumed from" relock.log || fail "stale lock blocked a resume: $(cat relock.log)"

echo "== data faults mid-run =="
# A copy of the set whose first training clip goes away once the run has started.
cp -r data fdata
victim=fdata/$(head -1 fdata/train.tsv | cut -f1)
ft_fault() {  # ft_fault DIR ARGS...: fine-tuning on fdata; $DAMAGE hits the victim clip mid-run
  local dir=$1
  shift
  cp "data/${victim#fdata/}" "$victim"
  ("$BIN/hear-finetune" --config "$SRC/configs/finetune_tiny.yaml" run_dir=$dir setting=scratch \
    data.train_manifest=fdata/train.tsv data.valid_manifest=data/valid.tsv \
    data.test_manifest=data/test.tsv epochs=40 train.threads=1 train.progress_bar=false \
    data.loader.num_workers=0 "$@") > $dir.log 2>&1 &
  local pid=$!
  # After the first validation, so `best` exists and the clip fails in a later epoch.
  for i in $(seq 1 600); do grep -q "validation at step" $dir.log && break; sleep 0.05; done
  $DAMAGE
  set +e
  wait $pid
  rc=$?
  set -e
}
DAMAGE="rm $victim"
ft_fault onerr_stop data.on_error=stop
[ $rc = 1 ] || { tail -3 onerr_stop.log; fail "deleted clip, stop: exit $rc"; }
grep -q "cannot decode '.*$victim'" onerr_stop.log || fail "deleted clip not named: $(tail -2 onerr_stop.log)"
row "a training clip deleted mid-run, \`data.on_error: stop\` (default)" hear-finetune $rc onerr_stop.log \
  error "the checkpoints saved before it (\`best\`), untouched"
ft_fault onerr_skip data.on_error=skip epochs=6
[ $rc = 0 ] || { tail -3 onerr_skip.log; fail "deleted clip, skip: exit $rc"; }
grep -q "skipped (data.on_error: skip" onerr_skip.log || fail "skip not logged"
grep -q "left out [0-9]* clip(s)" onerr_skip.log || fail "skip count not logged"
row "a training clip deleted mid-run, \`data.on_error: skip\`" hear-finetune $rc onerr_skip.log \
  skipped "the finished run; the count at the end of the log"
DAMAGE="truncate -s 100 $victim"
ft_fault truncated data.on_error=stop
[ $rc = 1 ] || fail "truncated clip: exit $rc"
grep -q "cannot decode '.*$victim'" truncated.log || fail "truncated clip not named"
row "a training clip truncated to 100 bytes mid-run" hear-finetune $rc truncated.log \
  error "the checkpoints saved before it (\`best\`), untouched"

# A float WAV holding NaN and Inf samples.
py - <<'PY'
import struct
n = 16000
samples = [0.1] * n
samples[1234], samples[5000] = float("nan"), float("inf")
data = struct.pack(f"<{n}f", *samples)
fmt = struct.pack("<HHIIHH", 3, 1, 16000, 64000, 4, 32)
wav = b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE"
wav += b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
open("data/nan.wav", "wb").write(wav)
PY
(cat data/train.tsv; printf 'nan.wav\t16000\ttone\n') > data/nan.tsv
set +e
"$BIN/hear-finetune" --config "$SRC/configs/finetune_tiny.yaml" run_dir=nan setting=scratch \
  data.train_manifest=data/nan.tsv data.valid_manifest=data/valid.tsv data.test_manifest=data/test.tsv \
  epochs=1 train.threads=1 > nan.log 2>&1
rc=$?
set -e
[ $rc = 1 ] || fail "NaN audio: exit $rc"
grep -q "nan.wav' contains a non-finite sample (NaN or Inf) at frame 1234" nan.log || fail "NaN: $(tail -2 nan.log)"
row "a training clip with NaN/Inf samples" hear-finetune $rc nan.log error "$(checkpoints nan)"

echo "== the table in docs/reliability.md =="
check_doc_table faults "| fault | program | exit | message (first error or warning line) | on disk afterwards |" table.md
echo "crash_consistency_test: all checks passed"
