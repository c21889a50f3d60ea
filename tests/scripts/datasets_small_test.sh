#!/usr/bin/env bash
# The local benchmark set builders' --small modes (real recordings from Debian packages, fetched
# with apt-get download + dpkg-deb -x; scripts/data/check_small_builds.sh checks their layouts),
# then the C++ on what they built: the Speech Commands split rule against the lists (a gtest run
# on the kws set), and the dataset readers: hear-finetune (tiny model, 1 epoch) reads each
# set through data.format and scores exactly the builders' test splits. Exit 77 (skipped) when the
# builders' tools are missing (scripts/setup_data.sh installs them).
source "$(dirname "$0")/lib.sh"
set +e
HEAR_SMALL_OUT="$T/data" bash "$SRC/scripts/data/check_small_builds.sh"
rc=$?
set -e
[ $rc -eq 0 ] || exit $rc
# The C++ Speech Commands split rule reproduces the lists the builder made with Python's hashlib
# (the gtest SpeechCommandsSplit.ReproducesLocalLists, which skips without HEAR_KWS_ROOT).
HEAR_KWS_ROOT="$T/data/kws-local/speech_commands_v0.02" \
  "${HEAR_BUILD_DIR:-$SRC/build/release}/tests/hear_tests" \
  --gtest_filter=SpeechCommandsSplit.ReproducesLocalLists > split.log 2>&1 ||
  { cat split.log; fail "split rule"; }
grep -q "SKIPPED" split.log && { cat split.log; fail "split rule test skipped"; }
grep -q "PASSED.* 1 test" split.log || { cat split.log; fail "split rule test did not run"; }
tune() {  # tune NAME OVERRIDES...: one tiny epoch from scratch
  local name=$1
  shift
  "$BIN/hear-finetune" --config "$SRC/configs/finetune_tiny.yaml" run_dir="runs/$name" epochs=1 \
    train.log_every=100 "$@" > "$name.log" 2>&1 || { tail -20 "$name.log"; fail "$name"; }
}
tune esc data.format=esc50 data.root=data/esc-local 'data.test_folds=[1]'
tune kws data.format=speech_commands data.protocol=gscv2 \
  data.root=data/kws-local/speech_commands_v0.02 data.loader.segments.pad_to_seconds=1.0
tune ks1 data.format=speech_commands data.protocol=gscv1 \
  data.root=data/kws-local/speech_commands_v0.02 \
  data.test_root=data/kws-local/speech_commands_test_set_v0.02 data.loader.segments.pad_to_seconds=1.0
tune sid data.format=voxceleb1 data.root=data/sid-local
/usr/bin/python3 - <<'PY'
import csv, json, os
def clips(path):
    return json.load(open(path))["clips"]
esc = list(csv.DictReader(open("data/esc-local/meta/esc50.csv")))
assert clips("runs/esc/fold1/test.json") == sum(r["fold"] == "1" for r in esc)
assert not os.path.exists("runs/esc/fold2"), "test_folds [1] ran another fold"
kws = "data/kws-local/speech_commands_v0.02"
testing = [l for l in open(f"{kws}/testing_list.txt").read().split() if l]
assert clips("runs/kws/test.json") == len(testing), (clips("runs/kws/test.json"), len(testing))
assert len(open("runs/kws/labels.tsv").read().splitlines()) == 35
ts = "data/kws-local/speech_commands_test_set_v0.02"
n = sum(len(os.listdir(os.path.join(ts, d))) for d in os.listdir(ts))
assert clips("runs/ks1/test.json") == n, (clips("runs/ks1/test.json"), n)
labels = [l.split("\t")[1] for l in open("runs/ks1/labels.tsv").read().splitlines()]
assert labels == "yes no up down left right on off stop go _unknown_ _silence_".split(), labels
split = [l.split() for l in open("data/sid-local/iden_split.txt")]
assert clips("runs/sid/test.json") == sum(s == "3" for s, _ in split)
assert clips("runs/sid/valid.json") == sum(s == "2" for s, _ in split)
print("readers on the small local sets: ESC-50 fold 1, Speech Commands gscv2 + KS1 test set, "
      "VoxCeleb1 splits scored as built")
PY
echo "datasets_small_test: all checks passed"
