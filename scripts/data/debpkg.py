"""Fetch Debian packages' data without installing them: `apt-get download` + `dpkg-deb -x`.

Shared by the local benchmark set builders in scripts/data/. Everything is cached and resumable:

  $HEAR_DEB_CACHE (default ~/.cache/hear-cpp/debs)/<pkg>_<ver>_<arch>.deb   the downloaded package
  $HEAR_DEB_CACHE/x/<pkg>/...                                               its unpacked file tree

A .deb is downloaded into a temporary folder and renamed into place only once it is complete and its
size matches the archive's index, so an interrupted run never leaves a truncated file that a later run
would trust. An unpacked tree is marked done per set of member patterns, so a package unpacked only in
part (0ad-data: just public.zip) is finished by a later call that asks for more.

No root is needed: `apt-get download` runs as any user. Packages from `contrib`/`non-free` are reached
through a private apt configuration (sources, lists and cache under a folder the caller names); the
system's sources list is never edited.
"""

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


def log(msg):
    print(msg, flush=True)


def cache_dir():
    d = Path(os.environ.get("HEAR_DEB_CACHE") or Path.home() / ".cache" / "hear-cpp" / "debs")
    d.mkdir(parents=True, exist_ok=True)
    return d


@contextlib.contextmanager
def _locked(name):
    """Serialises work on one package between builders running at the same time."""
    lockdir = cache_dir() / ".locks"
    lockdir.mkdir(exist_ok=True)
    with open(lockdir / (name + ".lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class AptSource:
    """The apt configuration packages are fetched with: the system's, or a private one that adds
    `contrib non-free` (for uqm-voice) with its own lists under `root`."""

    def __init__(self, options=None, label="main"):
        self.options = options or []
        self.label = label

    @staticmethod
    def system():
        return AptSource()

    @staticmethod
    def nonfree(root):
        """Writes root/sources.list (contrib + non-free of the system's Debian mirror) and runs
        `apt-get update` on it once. The system's /etc/apt is only read."""
        root = Path(root).resolve()
        (root / "lists" / "partial").mkdir(parents=True, exist_ok=True)
        (root / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
        mirror, suite = _system_mirror()
        src = root / "sources.list"
        src.write_text(f"deb [signed-by={KEYRING}] {mirror} {suite} contrib non-free\n")
        opts = [
            f"-o=Dir::Etc::SourceList={src}",
            "-o=Dir::Etc::SourceParts=/dev/null",
            f"-o=Dir::State::Lists={root / 'lists'}",
            f"-o=Dir::Cache={root / 'cache'}",
            "-o=Debug::NoLocking=1",
        ]
        if not any((root / "lists").glob("*Packages*")):
            log(f"debpkg: apt-get update for contrib/non-free ({mirror} {suite}) into {root}")
            subprocess.run(["apt-get", *opts, "update"], check=True, stdout=subprocess.DEVNULL)
        return AptSource(opts, "contrib/non-free")


def _system_mirror():
    """The Debian mirror and release of the system's main sources (deb822 or one-line format)."""
    mirror, suite = "http://deb.debian.org/debian", "bookworm"
    texts = []
    for p in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")) + [Path("/etc/apt/sources.list")]:
        if p.exists():
            texts.append(p.read_text())
    for t in texts:
        for block in t.split("\n\n"):
            uris = re.search(r"^URIs:\s*(\S+)", block, re.M)
            suites = re.search(r"^Suites:\s*(\S+)", block, re.M)
            if uris and suites and "security" not in uris.group(1):
                return uris.group(1).rstrip("/"), suites.group(1)
        for line in t.splitlines():
            m = re.match(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+", line)
            if m and "security" not in m.group(1):
                return m.group(1).rstrip("/"), m.group(2)
    return mirror, suite


_URI_INFO = {}  # (apt source label, package) -> (file name, size); apt-get is slow to start


def prefetch(pkgs, source=None):
    """Looks up the candidate .deb of several packages with one `apt-get download --print-uris`."""
    source = source or AptSource.system()
    todo = [p for p in pkgs if (source.label, p) not in _URI_INFO]
    if not todo:
        return
    r = subprocess.run(["apt-get", *source.options, "download", "--print-uris", *todo],
                       capture_output=True, text=True)
    if r.returncode != 0 and len(todo) > 1:
        for p in todo:  # one unknown package fails the whole call: ask one by one
            prefetch([p], source)
        return
    for p in todo:
        _URI_INFO[(source.label, p)] = (None, None)
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0].startswith("'"):
            name = parts[1]
            pkg = name.split("_", 1)[0]
            if pkg in todo:
                _URI_INFO[(source.label, pkg)] = (name, int(parts[2]))


def _uri_info(pkg, source):
    """(file name, size in bytes) of the candidate version, from `apt-get download --print-uris`."""
    prefetch([pkg], source)
    return _URI_INFO[(source.label, pkg)]


def _cached_deb(pkg):
    debs = sorted(cache_dir().glob(f"{pkg}_*.deb"))
    return debs[-1] if debs else None


def download(pkg, source=None):
    """Path of the cached .deb of `pkg`, downloading it when missing. Offline, a cached copy of any
    version is used."""
    source = source or AptSource.system()
    with _locked(pkg):
        name, size = _uri_info(pkg, source)
        if name is None:
            cached = _cached_deb(pkg)
            if cached:
                return cached
            raise RuntimeError(f"debpkg: package {pkg} not found by apt ({source.label} sources) and not cached"
                               f" in {cache_dir()}")
        dest = cache_dir() / name
        if dest.exists() and dest.stat().st_size == size:
            return dest
        log(f"debpkg: downloading {name} ({size / 1e6:.1f} MB, {source.label}) into {cache_dir()}")
        tmp = Path(tempfile.mkdtemp(prefix=f".dl-{pkg}-", dir=cache_dir()))
        try:
            r = subprocess.run(["apt-get", *source.options, "download", pkg], cwd=tmp,
                               capture_output=True, text=True)
            got = tmp / name
            if r.returncode != 0 or not got.exists():
                raise RuntimeError(f"debpkg: apt-get download {pkg} failed: {r.stderr.strip()[-500:]}")
            if got.stat().st_size != size:
                raise RuntimeError(f"debpkg: {name} has {got.stat().st_size} bytes, the index says {size}")
            for old in cache_dir().glob(f"{pkg}_*.deb"):
                old.unlink()
            os.replace(got, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return dest


def deb_version(deb):
    return subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], capture_output=True, text=True,
                          check=True).stdout.strip()


def extract(pkg, members=None, source=None):
    """Root folder of the unpacked package (download included). `members`: tar wildcard patterns of
    the paths to unpack (e.g. ['./usr/share/games/0ad/data/mods/public/public.zip']); None unpacks all.
    The package's /usr/share/doc is always unpacked, for its copyright file."""
    deb = download(pkg, source)
    root = cache_dir() / "x" / pkg
    spec = "<all>" if members is None else "|".join(members)
    key = hashlib.sha1((deb.name + "|" + spec).encode()).hexdigest()[:12]
    marker = root / f".extracted-{key}"
    with _locked(pkg):
        if marker.exists():
            return root
        version_file = root / ".deb"
        if root.exists() and (not version_file.exists() or version_file.read_text() != deb.name):
            shutil.rmtree(root)  # another version was unpacked here
        root.mkdir(parents=True, exist_ok=True)
        what = "all" if members is None else (", ".join(members) or "copyright only")
        log(f"debpkg: unpacking {deb.name} ({what}) into {root}")
        if members is None:
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        else:
            pats = list(members) + ["./usr/share/doc/*"]
            p1 = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
            r = subprocess.run(["tar", "-x", "-C", str(root), "--wildcards", *pats], stdin=p1.stdout)
            p1.stdout.close()
            if p1.wait() != 0 or r.returncode != 0:
                raise RuntimeError(f"debpkg: unpacking {members} from {deb} failed")
        version_file.write_text(deb.name)
        marker.write_text(what + "\n")
        return root


def copyright_text(pkg, root=None, source=None):
    """The text of /usr/share/doc/<pkg>/copyright inside the unpacked package. When the doc folder
    is a symlink to another package's (0ad-data -> 0ad-data-common), that package is unpacked too."""
    if root is None:
        # Any earlier unpacking of this version included /usr/share/doc.
        cached = cache_dir() / "x" / pkg
        deb = download(pkg, source)
        ok = (cached / ".deb").exists() and (cached / ".deb").read_text() == deb.name
        root = cached if ok and (cached / "usr/share/doc" / pkg).exists() else extract(pkg, [], source)
    root = Path(root)
    doc = root / "usr" / "share" / "doc" / pkg
    if (doc / "copyright").is_file():
        return (doc / "copyright").read_text(errors="replace")
    if doc.is_symlink():
        other = os.path.basename(os.readlink(doc))
        if other and other != pkg:
            return copyright_text(other, extract(other, [], source), source)
    raise RuntimeError(f"debpkg: no usr/share/doc/{pkg}/copyright in {root}")


def licence_summary(text):
    """The distinct licence short names of a copyright file (DEP-5 `License:` fields), or its first
    lines when it is not machine-readable."""
    main, names = None, []
    for para in re.split(r"\n\s*\n", text):
        m = re.search(r"^License:\s*(.+)$", para, re.M)
        if not m:
            continue
        n = m.group(1).strip()
        files = re.search(r"^Files:\s*(.+)$", para, re.M)
        if files and files.group(1).strip() == "*" and main is None:
            main = n
        elif files and files.group(1).strip().startswith("debian/"):
            continue  # the packaging's own licence
        elif n and n not in names:
            names.append(n)
    main_base = main
    if main and main.lower() in ("other", "custom", "unknown"):
        m = re.search(r"Creative\s+Commons\s+([A-Za-z-]+\s+[0-9.]*[0-9])", text)
        if m:
            main += " (Creative Commons " + " ".join(m.group(1).split()) + ")"
    if main or names:
        others = [n for n in names if n != main_base]
        s = main or ", ".join(others[:4])
        if main and others:
            s += " (other files: " + ", ".join(others[:4]) + (", ..." if len(others) > 4 else "") + ")"
        return s
    # Free-form copyright file: name the licences its text mentions.
    found = []
    for rx, name in [(r"GNU (Library|Lesser) General Public License", "LGPL"),
                     (r"GNU General Public License", "GPL"),
                     (r"common-licenses/(GPL-[0-9.]+)", None),
                     (r"Creative Commons[^.\n]*", None), (r"\bCC[- ]BY[-A-Z0-9. ]*", None),
                     (r"public domain", "public domain"), (r"\bBSD\b", "BSD"), (r"\bMIT\b", "MIT")]:
        for m in re.finditer(rx, text, re.I):
            n = name or m.group(m.lastindex or 0).strip()
            if n not in found:
                found.append(n)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return ("free-form copyright file mentioning: " + ", ".join(found[:5])) if found else \
        " ".join(lines[:3])[:200]


def main(argv):
    """Command-line use: debpkg.py [--non-free DIR] PKG... -> prints each unpacked root."""
    source = None
    if len(argv) >= 2 and argv[0] == "--non-free":
        source = AptSource.nonfree(argv[1])
        argv = argv[2:]
    for pkg in argv:
        print(extract(pkg, None, source))


if __name__ == "__main__":
    main(sys.argv[1:])
