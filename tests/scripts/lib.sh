# The shared preamble of the script tests (tests/scripts/*_test.sh), sourced first:
#   source "$(dirname "$0")/lib.sh"
# Strict mode, then:
#   SRC  the source tree: $HEAR_SOURCE_DIR (set by ctest), else two folders above this file
#   BIN  the programs: $HEAR_BIN (set by ctest), else $SRC/build/release/bin
#   T    a fresh temporary folder, removed on exit; the test runs in it
# and the helpers fail, expect_error and py.
set -euo pipefail
SRC="${HEAR_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
BIN="${HEAR_BIN:-$SRC/build/release/bin}"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"

# fail MESSAGE...: report and stop the test.
fail() {
  echo "FAIL: $*"
  exit 1
}

# expect_error PATTERN COMMAND...: COMMAND must fail with PATTERN in its stderr (left in err.txt).
expect_error() {
  local pattern=$1
  shift
  if "$@" > out.txt 2> err.txt; then fail "accepted: $*"; fi
  grep -q -- "$pattern" err.txt || fail "error for '$*' lacks '$pattern': $(cat err.txt)"
}

py() { /usr/bin/python3 "$@"; }
