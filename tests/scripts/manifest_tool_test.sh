#!/usr/bin/env bash
# hear-manifest over a generated folder tree: formats libsndfile reads (44.1 kHz stereo WAV, FLAC,
# Ogg), lengths from the headers at 16 kHz, an unreadable file skipped and named (an error with
# --strict), the summary of the paper's pre-training rule, labels from folders, bad inputs.
source "$(dirname "$0")/lib.sh"
MANIFEST="$BIN/hear-manifest"
mkdir -p corpus/a/b corpus/c
sox -n -r 44100 -c 2 corpus/a/x.wav synth 2.5 sine 440
sox -n -r 16000 -c 1 corpus/a/b/y.flac synth 13 pinknoise
sox -n -r 16000 -c 1 corpus/c/z.ogg synth 0.5 sine 300
echo "not audio" > corpus/c/bad.wav
echo "notes" > corpus/readme.txt
"$MANIFEST" corpus -o m.tsv > out.txt || { cat out.txt; fail "hear-manifest failed"; }
cat out.txt
/usr/bin/python3 - <<'PY'
import os
rows = [l.rstrip("\n").split("\t") for l in open("m.tsv")]
assert rows[0][:2] == ["path", "num_samples"], rows[0]
got = {os.path.relpath(r[0] if os.path.isabs(r[0]) else os.path.join(".", r[0]), "corpus"): int(r[1])
       for r in rows[1:]}
assert got == {"a/x.wav": 40000, "a/b/y.flac": 208000, "c/z.ogg": 8000}, got
PY
grep -q "m.tsv: 3 files, 16.0 s (0.0044 hours)" out.txt || fail "summary: $(head -1 out.txt)"
# 2.5 s -> 1 segment; 13 s -> 6 + 6 + 1 s; 0.5 s -> skipped.
grep -q "4 segments, 15.5 s (0.0043 hours) kept, 1 files too short" out.txt || fail "rule summary"
grep -q "1 unreadable files skipped" out.txt || fail "bad.wav not reported"
grep -q "bad.wav" out.txt || fail "bad.wav not named"
# Labels from the parent folder.
"$MANIFEST" corpus/a -o l.tsv --label-from-parent > /dev/null
cut -f3 l.tsv | sort | tr '\n' ' ' | grep -q "^a b label" || fail "labels: $(cut -f3 l.tsv)"
# --strict: the unreadable file is an error naming it, and no manifest is written.
if "$MANIFEST" corpus -o strict.tsv --strict 2> err.txt; then fail "--strict accepted bad.wav"; fi
grep -q "bad.wav" err.txt || fail "strict error unclear: $(cat err.txt)"
[ ! -e strict.tsv ] || fail "half-written manifest left behind"
# A missing input and a folder without audio.
if "$MANIFEST" nowhere -o n.tsv 2> err.txt; then fail "accepted a missing input"; fi
grep -q "'nowhere' is neither a folder nor a file" err.txt || fail "$(cat err.txt)"
mkdir empty
if "$MANIFEST" empty -o e.tsv 2> err.txt; then fail "wrote an empty manifest"; fi
grep -q "no readable audio file" err.txt || fail "$(cat err.txt)"
echo "manifest_tool_test: all checks passed"
