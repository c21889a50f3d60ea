#!/usr/bin/env bash
# Runs the --small modes of the local benchmark set builders (scripts/data/build_*_local.py) into a
# temporary folder and checks their layouts: ESC-50 (CSV header, folds, sources in one fold, 5-s
# 44.1 kHz clips), Speech Commands (35 word folders, lists disjoint and consistent with the SHA-1
# rule, 1-s 16 kHz clips, SUPERB test folders), VoxCeleb1 (iden_split.txt format, files present,
# videos in one split), the pre-training manifest (lengths match the files, downstream evaluation
# sources excluded), and that a rebuild is resumable (writes nothing) and deterministic.
#
# Needs: /usr/bin/python3 with numpy, sox, espeak-ng, flite, festival + voices (scripts/setup_data.sh)
# and either network access to the Debian mirror or a filled package cache ($HEAR_DEB_CACHE,
# default ~/.cache/hear-cpp/debs; about 90 MB for all four small modes). Exit 77 = skipped because a
# program is missing.
set -euo pipefail

SRC="${HEAR_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
PY=/usr/bin/python3
for t in "$PY" sox soxi espeak-ng flite festival apt-get dpkg-deb; do
  if ! command -v "$t" >/dev/null 2>&1; then
    echo "SKIP: $t not found (run scripts/setup_data.sh)"
    exit 77
  fi
done
if ! "$PY" -c 'import numpy' 2>/dev/null; then
  echo "SKIP: python3-numpy missing (run scripts/setup_data.sh)"
  exit 77
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
# HEAR_SMALL_OUT=DIR keeps the four small sets in DIR (for tests that read them afterwards).
OUT="${HEAR_SMALL_OUT:-$TMP/data}"
D="$SRC/scripts/data"
start=$(date +%s)

run() {  # run NAME CMD...: logs to $TMP/NAME.log, shows the log on failure
  local name=$1
  shift
  local t0=$(date +%s)
  if ! "$@" >"$TMP/$name.log" 2>&1; then
    echo "FAIL: $name: $*"
    tail -40 "$TMP/$name.log"
    exit 1
  fi
  echo "ok: $name ($(($(date +%s) - t0)) s): $(grep -E '^(esc|kws|sid|pretrain): [0-9]+ (classes|words|speakers|files),' "$TMP/$name.log" | head -1)"
}

run esc "$PY" "$D/build_esc_local.py" --small --out "$OUT/esc-local" --seed 1
run kws "$PY" "$D/build_kws_local.py" --small --out "$OUT/kws-local" --seed 1
run sid "$PY" "$D/build_sid_local.py" --small --out "$OUT/sid-local" --seed 1
run pretrain "$PY" "$D/build_pretrain_local.py" --small --out "$OUT/pretrain-local" --seed 1

# Resumable: a second run writes no clip. Deterministic: a fresh build gives the same CSV and audio.
run esc_again "$PY" "$D/build_esc_local.py" --small --out "$OUT/esc-local" --seed 1
grep -q ' 0 written now' "$TMP/esc_again.log" || { echo "FAIL: esc rerun rewrote clips"; cat "$TMP/esc_again.log"; exit 1; }
run esc_fresh "$PY" "$D/build_esc_local.py" --small --out "$TMP/esc2" --seed 1
cmp "$OUT/esc-local/meta/esc50.csv" "$TMP/esc2/meta/esc50.csv" || { echo "FAIL: esc rebuild differs"; exit 1; }
(cd "$OUT/esc-local/audio" && md5sum *.wav) >"$TMP/m1"
(cd "$TMP/esc2/audio" && md5sum *.wav) >"$TMP/m2"
cmp "$TMP/m1" "$TMP/m2" || { echo "FAIL: esc rebuild audio differs"; exit 1; }

"$PY" - "$OUT" <<'EOF'
import collections, hashlib, os, re, subprocess, sys, wave
out = sys.argv[1]
fails = []
def check(cond, msg):
    if not cond:
        fails.append(msg)
def wavinfo(p):
    try:
        with wave.open(p, "rb") as w:
            return w.getnframes(), w.getframerate(), w.getnchannels(), w.getsampwidth()
    except (OSError, wave.Error) as e:
        return f"unreadable: {e}"

# ESC-50
esc = os.path.join(out, "esc-local")
lines = open(os.path.join(esc, "meta", "esc50.csv")).read().splitlines()
check(lines[0] == "filename,fold,target,category,esc10,src_file,take", f"esc header {lines[0]!r}")
rows = [l.split(",") for l in lines[1:]]
check(len(rows) >= 10, f"esc: only {len(rows)} rows")
files = set(os.listdir(os.path.join(esc, "audio")))
check(files == {r[0] for r in rows}, "esc: audio/ and the CSV list different files")
src_folds = collections.defaultdict(set)
cls_target = {}
for fn, fold, target, cat, esc10, src, take in rows:
    check(re.fullmatch(r"[1-5]-\d+-[A-Z]+-\d+\.wav", fn) is not None, f"esc name {fn}")
    check(fn == f"{fold}-{src}-{take}-{target}.wav", f"esc name/CSV mismatch {fn}")
    check(esc10 == "False", f"esc10 {esc10}")
    src_folds[src].add(fold)
    check(cls_target.setdefault(cat, target) == target, f"esc: {cat} has two targets")
    check(wavinfo(os.path.join(esc, "audio", fn)) == (220500, 44100, 1, 2), f"esc clip format {fn}")
check(all(len(f) == 1 for f in src_folds.values()), "esc: a source is in two folds")
check({r[1] for r in rows} == {"1", "2", "3", "4", "5"}, "esc: not 5 folds")
check(len(cls_target) >= 2, "esc: fewer than 2 classes")
check(sorted(map(int, cls_target.values())) == list(range(len(cls_target))), "esc: targets not 0..N-1")

# Speech Commands
kws = os.path.join(out, "kws-local", "speech_commands_v0.02")
words = sorted(d for d in os.listdir(kws) if os.path.isdir(os.path.join(kws, d)) and d != "_background_noise_")
check(len(words) == 35, f"kws: {len(words)} word folders")
noise = [f for f in os.listdir(os.path.join(kws, "_background_noise_")) if f.endswith(".wav")]
check(len(noise) >= 3, "kws: background noise missing")
val = open(os.path.join(kws, "validation_list.txt")).read().split()
test = open(os.path.join(kws, "testing_list.txt")).read().split()
check(len(val) > 0 and len(test) > 0, "kws: empty lists")
check(not set(val) & set(test), "kws: validation and testing overlap")
def which_set(name):
    h = re.sub(r"_nohash_.*$", "", os.path.basename(name))
    p = (int(hashlib.sha1(h.encode()).hexdigest(), 16) % (2 ** 27)) * (100.0 / (2 ** 27 - 1))
    return "validation" if p < 10 else "testing" if p < 20 else "training"
allfiles = []
for w in words:
    for f in os.listdir(os.path.join(kws, w)):
        check(re.fullmatch(r"[0-9a-f]{8}_nohash_\d+\.wav", f) is not None, f"kws name {w}/{f}")
        allfiles.append(f"{w}/{f}")
for p in val + test:
    check(os.path.exists(os.path.join(kws, p)) and "\\" not in p, f"kws: listed {p} missing")
for p in allfiles:
    s = "validation" if p in set(val) else "testing" if p in set(test) else "training"
    check(which_set(p) == s, f"kws: {p} is in {s}, the hash rule says {which_set(p)}")
spk_split = collections.defaultdict(set)
for p in allfiles:
    spk_split[p.split("/")[1][:8]].add(which_set(p))
check(all(len(s) == 1 for s in spk_split.values()), "kws: a speaker in two splits")
for p in allfiles[:: max(1, len(allfiles) // 40)]:
    check(wavinfo(os.path.join(kws, p)) == (16000, 16000, 1, 2), f"kws clip format {p}")
ts = os.path.join(out, "kws-local", "speech_commands_test_set_v0.02")
want = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "_unknown_", "_silence_"]
check(sorted(os.listdir(ts)) == sorted(want), f"kws test set folders {sorted(os.listdir(ts))}")
for d in want:
    check(len(os.listdir(os.path.join(ts, d))) > 0, f"kws test set {d} empty")
check("synthetic" in open(os.path.join(out, "kws-local", "DATASET.md")).read().lower(), "kws card must say synthetic")

# VoxCeleb1
sid = os.path.join(out, "sid-local")
split_of_video = {}
nsplit = collections.Counter()
spk = set()
for line in open(os.path.join(sid, "iden_split.txt")):
    m = re.fullmatch(r"([123]) (id\d{5})/([A-Za-z0-9_-]{11})/(\d{5})\.wav\n", line)
    check(m is not None, f"sid line {line!r}")
    if not m:
        continue
    s, i, v, _ = m.groups()
    nsplit[s] += 1
    spk.add(i)
    check(split_of_video.setdefault((i, v), s) == s, f"sid: video {i}/{v} in two splits")
    p = os.path.join(sid, "vox1_dev_wav", "wav", line.split()[1])
    check(os.path.exists(p), f"sid: {p} missing")
    info = wavinfo(p)
    check(isinstance(info, tuple) and info[1:] == (16000, 1, 2) and info[0] >= 16000, f"sid clip format {p}: {info}")
check(all(nsplit[s] > 0 for s in "123"), f"sid splits {dict(nsplit)}")
check(len(spk) >= 2, "sid: fewer than 2 speakers")

# Pre-training manifest and exclusion of evaluation sources
pre = os.path.join(out, "pretrain-local")
man = open(os.path.join(pre, "manifest.tsv")).read().splitlines()
check(man[0] == "path\tnum_samples", f"manifest header {man[0]!r}")
check(len(man) > 5, "manifest: too few files")
for l in man[1:]:
    p, n = l.split("\t")
    check(not os.path.isabs(p), f"manifest: absolute path {p}")
    r = subprocess.run(["soxi", "-s", os.path.join(pre, p)], capture_output=True, text=True)
    check(r.returncode == 0 and int(r.stdout) == int(n), f"manifest: {p} length {n} vs {r.stdout.strip()}")
def prov(d):
    rows = [l.rstrip("\n").split("\t") for l in open(os.path.join(d, "provenance.tsv"))]
    h = rows[0]
    return [dict(zip(h, r)) for r in rows[1:]]
ev = {(r["package"], r["source"]) for d in ("esc-local", "kws-local", "sid-local") for r in prov(os.path.join(out, d))
      if r["eval"] == "1"}
used = {(r["package"], r["source"]) for r in prov(pre)}
check(len(ev) > 0, "no evaluation sources recorded")
check(not (ev & used), f"pretrain uses evaluation sources: {sorted(ev & used)[:3]}")
for d in ("esc-local", "kws-local", "sid-local", "pretrain-local"):
    card = open(os.path.join(out, d, "DATASET.md")).read()
    check("Licence" in card or "licence" in card, f"{d}: no licence table")
    check(os.listdir(os.path.join(out, d, "licenses")), f"{d}: no copyright files")

if fails:
    print("\n".join("FAIL: " + f for f in fails[:30]))
    sys.exit(1)
print(f"layouts ok: esc {len(rows)} clips / {len(cls_target)} classes, kws {len(allfiles)} clips, "
      f"sid {sum(nsplit.values())} segments / {len(spk)} speakers, pretrain {len(man) - 1} files")
EOF
du -sh "$OUT"/* | sed 's/^/size: /'
echo "datasets_small_test: passed in $(($(date +%s) - start)) s"
