#!/usr/bin/env bash
# Configures and builds the Release tree in build/release (ccache, precompiled headers, unity).
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS="${HEAR_JOBS:-$(nproc)}"
cmake --preset release >/dev/null
cmake --build --preset release -j"$JOBS"
