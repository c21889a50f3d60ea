#!/usr/bin/env bash
# Builds an arm64 (aarch64) sysroot from Debian bookworm's arm64 packages, for cross-compiling
# hear-bench (cmake/toolchains/aarch64-linux-gnu.cmake) and running it under qemu-aarch64-static.
#
#   scripts/make_arm64_sysroot.sh [--update] [SYSROOT]
#
# SYSROOT defaults to $HEAR_ARM64_SYSROOT or ~/.cache/hear-cpp/arm64-sysroot. The packages are
# resolved and downloaded with a private apt state (sources, lists, dpkg status, archive cache)
# under $HEAR_ARM64_APT (default ~/.cache/hear-cpp/arm64-apt), then unpacked with dpkg-deb: nothing
# is installed and the host's dpkg architectures and /etc/apt are never changed (installing
# libtorch-dev:arm64 on the host would remove the amd64 LibTorch). Resumable: downloaded .debs are
# kept, each unpacked .deb is marked done, and a second run only does what is missing. --update
# refreshes the package lists first (they are fetched only once otherwise).
set -euo pipefail

UPDATE=0
if [[ "${1:-}" == "--update" ]]; then
  UPDATE=1
  shift
fi
SYSROOT="${1:-${HEAR_ARM64_SYSROOT:-$HOME/.cache/hear-cpp/arm64-sysroot}}"
STATE="${HEAR_ARM64_APT:-$HOME/.cache/hear-cpp/arm64-apt}"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
TRIPLET=aarch64-linux-gnu

# What the hear library and hear-bench compile and link against (and libstdc++/libc headers for
# the cross compiler; libssl-dev: libcrypto, which CMakeLists.txt requires); apt adds the run-time
# closure. libopenblas0-openmp (as scripts/setup.sh on the host: LibTorch uses OpenMP too) makes
# OpenBLAS the provider of libblas.so.3/liblapack.so.3 rather than the slow reference BLAS.
PACKAGES=(libtorch-dev libsndfile1-dev libsoxr-dev libyaml-cpp-dev libspdlog-dev libfmt-dev
          libcli11-dev nlohmann-json3-dev libc6-dev libstdc++-12-dev libssl-dev
          libopenblas0-openmp)

log() { echo "make_arm64_sysroot: $*" >&2; }
for tool in apt-get dpkg-deb tar; do
  command -v "$tool" >/dev/null || { log "$tool not found (a Debian host is needed)"; exit 1; }
done

# The system's Debian mirror (deb822 or one-line sources), as scripts/data/debpkg.py finds it.
system_mirror() {
  local f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] || continue
    uri=$(awk '/^URIs:/ {print $2}' "$f" | grep -v security | head -n1 || true)
    [[ -n "$uri" ]] && { echo "${uri%/}"; return; }
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f "$f" ]] || continue
    uri=$(sed -nE 's/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+)[[:space:]]+.*/\2/p' "$f" |
          grep -v security | grep -i debian | head -n1 || true)
    [[ -n "$uri" ]] && { echo "${uri%/}"; return; }
  done
  echo "http://deb.debian.org/debian"
}

# Done before by this same script: nothing to do (--update redoes the resolution).
STAMP="$SYSROOT/.hear-complete"
STAMP_TEXT="$(sha1sum <"${BASH_SOURCE[0]}" | cut -d' ' -f1) ${PACKAGES[*]}"
if [[ $UPDATE == 0 && -f "$STAMP" && "$(cat "$STAMP")" == "$STAMP_TEXT" ]]; then
  log "sysroot up to date: $SYSROOT"
  echo "$SYSROOT"
  exit 0
fi
rm -f "$STAMP"

MIRROR="${HEAR_DEBIAN_MIRROR:-$(system_mirror)}"
SECURITY="${MIRROR%/debian}/debian-security"
mkdir -p "$STATE/lists/partial" "$STATE/cache/archives/partial" "$SYSROOT"
: >"$STATE/status"  # an empty dpkg status: apt resolves the whole closure, nothing counts as installed
cat >"$STATE/sources.list" <<EOF
deb [arch=arm64 signed-by=$KEYRING] $MIRROR bookworm main
deb [arch=arm64 signed-by=$KEYRING] $MIRROR bookworm-updates main
deb [arch=arm64 signed-by=$KEYRING] $SECURITY bookworm-security main
EOF
APT=(apt-get -q
     -o APT::Architecture=arm64 -o APT::Architectures=arm64
     -o Dir::State::Lists="$STATE/lists" -o Dir::State::Status="$STATE/status"
     -o Dir::Cache="$STATE/cache"
     -o Dir::Etc::SourceList="$STATE/sources.list" -o Dir::Etc::SourceParts=/dev/null
     -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null
     -o Debug::NoLocking=1 -o APT::Install-Recommends=0 -o APT::Install-Suggests=0)

if [[ $UPDATE == 1 ]] || ! compgen -G "$STATE/lists/*binary-arm64_Packages*" >/dev/null; then
  log "apt-get update (arm64 lists of $MIRROR bookworm) into $STATE"
  "${APT[@]}" update >"$STATE/update.log" 2>&1 || { cat "$STATE/update.log" >&2; exit 1; }
fi

# The closure as apt resolves it against an empty system:
# "Inst <pkg> (<version> <release> [<arch>])" -> "<pkg> <version> <arch>".
"${APT[@]}" -s install "${PACKAGES[@]}" >"$STATE/plan.txt" 2>&1 || { cat "$STATE/plan.txt" >&2; exit 1; }
sed -nE 's/^Inst ([^ ]+) \(([^ ]+) .*\[([a-z0-9]+)\]\).*/\1 \2 \3/p' "$STATE/plan.txt" | sort -u \
  >"$STATE/closure.txt"
log "$(wc -l <"$STATE/closure.txt") packages in the closure of ${PACKAGES[*]}"

# Download what is missing (apt keeps complete, checksummed files in cache/archives only).
"${APT[@]}" -y --download-only install "${PACKAGES[@]}" >"$STATE/download.log" 2>&1 ||
  { tail -n 30 "$STATE/download.log" >&2; exit 1; }
grep -E '^(Need to get|Fetched)' "$STATE/download.log" | sed 's/^/make_arm64_sysroot: /' >&2 || true

# Usr-merged layout first, so that ./lib/... members land in usr/lib (tar keeps the links).
for d in bin sbin lib; do
  mkdir -p "$SYSROOT/usr/$d"
  [[ -e "$SYSROOT/$d" ]] || ln -s "usr/$d" "$SYSROOT/$d"
done
mkdir -p "$SYSROOT/.hear-debs"

# Unpack each .deb of the closure once; apt names them <pkg>_<version, ':' as %3a>_<arch>.deb.
unpacked=0
total_bytes=0
while read -r pkg ver arch; do
  name="${pkg}_${ver//:/%3a}_${arch}.deb"
  deb="$STATE/cache/archives/$name"
  [[ -f "$deb" ]] || { log "missing $deb after the download"; exit 1; }
  total_bytes=$((total_bytes + $(stat -c %s "$deb")))
  marker="$SYSROOT/.hear-debs/$name"
  [[ -f "$marker" ]] && continue
  dpkg-deb --fsys-tarfile "$deb" | tar -x --keep-directory-symlink -C "$SYSROOT" \
    --exclude='./usr/share/doc/*' --exclude='./usr/share/man/*' --exclude='./usr/share/locale/*'
  : >"$marker"
  unpacked=$((unpacked + 1))
done <"$STATE/closure.txt"
log "unpacked $unpacked new package(s); the closure's .debs total $((total_bytes / 1000000)) MB"

# Absolute symlinks (libfoo.so -> /lib/aarch64-linux-gnu/libfoo.so.1) would point into the host:
# make them relative to their place in the sysroot.
while IFS= read -r -d '' link; do
  target=$(readlink "$link")
  rel=$(realpath -m --relative-to="$(dirname "$link")" "$SYSROOT$target")
  ln -sfn "$rel" "$link"
done < <(find "$SYSROOT" -lname '/*' -print0)

# update-alternatives is not run by dpkg-deb -x: make the links it would make for BLAS, LAPACK and
# libopenblas.so.0 (which the linker needs to resolve libblas.so.3's symbols),
# preferring OpenBLAS (OpenMP, then pthread, then serial) over the reference implementation.
LIBDIR="$SYSROOT/usr/lib/$TRIPLET"
for lib in libblas.so.3 liblapack.so.3 libopenblas.so.0 libblas.so liblapack.so libopenblas.so; do
  for provider in openblas-openmp openblas-pthread openblas-serial blas lapack; do
    if [[ -e "$LIBDIR/$provider/$lib" ]]; then
      ln -sfn "$provider/$lib" "$LIBDIR/$lib"
      break
    fi
  done
done

# The run-time library folders (for LD_LIBRARY_PATH under qemu; ld.so's cache is the host's).
{
  echo "/usr/lib/$TRIPLET"
  for provider in openblas-openmp openblas-pthread openblas-serial blas lapack; do
    [[ -d "$LIBDIR/$provider" ]] && echo "/usr/lib/$TRIPLET/$provider"
  done
} >"$SYSROOT/.hear-libdirs"

[[ -f "$SYSROOT/usr/lib/$TRIPLET/libtorch.so" || -f "$SYSROOT/usr/lib/$TRIPLET/libtorch.so.1" ||
   -n "$(ls "$SYSROOT/usr/lib/$TRIPLET"/libtorch.so* 2>/dev/null)" ]] ||
  { log "no libtorch.so in $SYSROOT/usr/lib/$TRIPLET"; exit 1; }
echo "$STAMP_TEXT" >"$STAMP"
log "sysroot ready: $SYSROOT ($(du -sh "$SYSROOT" | cut -f1))"
echo "$SYSROOT"
