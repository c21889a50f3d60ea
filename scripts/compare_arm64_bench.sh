#!/usr/bin/env bash
# Runs the cross-compiled aarch64 hear-bench under qemu-aarch64-static and the host's x86-64
# hear-bench with the same options, and checks that parameter counts and MACs are identical
# (they are counted, not measured, so they must not depend on the CPU). Prints the arm64 run's
# report, emulation warning included. Exit status: 0 identical, 1 different or a run failed,
# 77 a prerequisite is missing (arm64 binary, sysroot, qemu, x86 binary).
#
#   scripts/compare_arm64_bench.sh [ARM64_HEAR_BENCH [X86_HEAR_BENCH]] [-- hear-bench options]
#
# Defaults: build/arm64/bin/hear-bench, build/release/bin/hear-bench, options
# "--seconds 1 --runs 1 --warmup 1" (the x86 run adds --no-timing). Sysroot: $HEAR_ARM64_SYSROOT or
# ~/.cache/hear-cpp/arm64-sysroot (scripts/make_arm64_sysroot.sh).
set -euo pipefail
SRC="$(cd "$(dirname "$0")/.." && pwd)"
ARM_BIN="$SRC/build/arm64/bin/hear-bench"
X86_BIN="$SRC/build/release/bin/hear-bench"
[[ $# -gt 0 && "$1" != "--" ]] && { ARM_BIN="$1"; shift; }
[[ $# -gt 0 && "$1" != "--" ]] && { X86_BIN="$1"; shift; }
[[ "${1:-}" == "--" ]] && shift
OPTS=("$@")
[[ ${#OPTS[@]} -gt 0 ]] || OPTS=(--seconds 1 --runs 1 --warmup 1)
SYSROOT="${HEAR_ARM64_SYSROOT:-$HOME/.cache/hear-cpp/arm64-sysroot}"

skip() { echo "compare_arm64_bench: SKIP: $*" >&2; exit 77; }
[[ -x "$ARM_BIN" ]] || skip "no arm64 hear-bench at $ARM_BIN (scripts/build_arm64.sh builds it)"
[[ -x "$X86_BIN" ]] || skip "no host hear-bench at $X86_BIN (scripts/build.sh builds it)"
[[ -f "$SYSROOT/.hear-libdirs" ]] || skip "no arm64 sysroot at $SYSROOT (scripts/make_arm64_sysroot.sh)"
QEMU=$(command -v qemu-aarch64-static || command -v qemu-aarch64 || true)
[[ -n "$QEMU" ]] || skip "qemu-aarch64-static not installed (apt-get install qemu-user-static)"

LIBPATH=""
while read -r d; do LIBPATH="${LIBPATH:+$LIBPATH:}$SYSROOT$d"; done <"$SYSROOT/.hear-libdirs"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

echo "== arm64: $QEMU -L $SYSROOT $ARM_BIN ${OPTS[*]}"
start=$(date +%s%N)
"$QEMU" -L "$SYSROOT" -E "LD_LIBRARY_PATH=$LIBPATH" -E OMP_NUM_THREADS=1 \
  "$ARM_BIN" "${OPTS[@]}" --json "$T/arm64.json" || { echo "FAIL: the arm64 run failed"; exit 1; }
echo "(arm64 run: $((($(date +%s%N) - start) / 1000000)) ms wall-clock)"
OMP_NUM_THREADS=1 "$X86_BIN" "${OPTS[@]}" --no-timing --json - >"$T/x86.json" ||
  { echo "FAIL: the host run failed"; exit 1; }

/usr/bin/python3 - "$T/arm64.json" "$T/x86.json" <<'PY'
import json, sys
arm, x86 = (json.load(open(p)) for p in sys.argv[1:3])
bad = []
if arm["machine"]["architecture"] != "aarch64":
    bad.append("the arm64 binary reports architecture %r" % arm["machine"]["architecture"])
if x86["machine"]["architecture"] == arm["machine"]["architecture"]:
    bad.append("both binaries report architecture %r" % arm["machine"]["architecture"])
if arm["machine"]["host_architecture"] != "aarch64" and not arm["machine"]["emulated"]:
    bad.append("the arm64 binary runs on a %s host but does not report emulation"
               % arm["machine"]["host_architecture"])
# Keys only one side has (the two builds come from different checkouts) are named, not compared;
# the core counts must be on both sides.
only = set()
def common(a, b, where, required):
    for k in required:
        if k not in a or k not in b:
            bad.append("%s: %r missing from the %s output" % (where, k, "arm64" if k not in a else "x86"))
    only.update("%s.%s" % (where, k) for k in set(a) ^ set(b))
    keys = sorted(set(a) & set(b))
    return {k: a[k] for k in keys}, {k: b[k] for k in keys}
pa, px = common(arm["parameters"], x86["parameters"], "parameters", ["hear_classifier", "acoustic_model"])
if pa != px:
    bad.append("parameters differ:\n  arm64 %s\n  x86   %s" % (pa, px))
if len(arm["lengths"]) != len(x86["lengths"]):
    bad.append("%d clip lengths against %d" % (len(arm["lengths"]), len(x86["lengths"])))
rows_a = []
for ra, rx in zip(arm["lengths"], x86["lengths"]):
    ra = {k: v for k, v in ra.items() if k != "timing"}
    a, x = common(ra, rx, "lengths", ["seconds", "patches", "acoustic_windows", "total_macs", "macs"])
    if a != x:
        bad.append("MACs differ:\n  arm64 %s\n  x86   %s" % (a, x))
    rows_a.append(ra)
if only:
    print("note: not compared (only one build has them; rebuild the older one): " + ", ".join(sorted(only)))
print("parameters: %s" % ", ".join("%s=%d" % kv for kv in arm["parameters"].items()))
for r in rows_a:
    print("clip %g s: total_macs=%d (%s)" % (r["seconds"], r["total_macs"],
          ", ".join("%s=%d" % kv for kv in r["macs"].items())))
for r in arm["lengths"]:
    if "timing" in r:
        t = r["timing"]["total"]
        print("clip %g s: arm64 RTF %.3f (%s)" % (
            r["seconds"], t["rtf"],
            "under emulation: meaningless" if arm["machine"]["emulated"] else "native"))
if bad:
    print("FAIL: " + "\n".join(bad))
    sys.exit(1)
print("OK: parameters and MACs of the arm64 build are identical to the host build's "
      "(%d clip length(s))" % len(rows_a))
PY
