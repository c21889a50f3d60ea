#!/usr/bin/python3
"""Builds `pretrain-local`: an unlabeled corpus of real recordings (speech, sound effects,
ambiences, instrument samples, music) from Debian packages, converted to 16 kHz mono FLAC, with a
manifest for hear-cpp's `manifest` reader.

  /usr/bin/python3 scripts/data/build_pretrain_local.py [--out data/pretrain-local] [--seed 0]
      [--small] [--non-free] [--exclude-from DIR ...]

Output:
  <out>/audio/<package>/<path inside the package>.flac   (archive members: <archive>/<member>)
  <out>/manifest.tsv      "path<TAB>num_samples" (16 kHz samples, paths relative to <out>, header line)
  <out>/provenance.tsv, DATASET.md, licenses/

Downstream evaluation material is left out: every source recording that another builder's
provenance.tsv marks with eval=1 (all esc-local folds, sid-local validation/test segments, the
kws-local background recordings, which are mixed into its test clips). By default the sibling
folders esc-local, kws-local and sid-local of --out are read; --exclude-from adds others. Identical
files (same MD5) of an excluded recording are left out too.
Files shorter than 1 s (letters, digits, clicks) are joined per folder, with 0.1 s gaps, into
packs of up to 6 s, so that the pre-training reader (which skips < 1 s) keeps them.
"""

import argparse
import collections
import os
import random
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import audiolib as al  # noqa: E402
import debpkg  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SR = 16000
SPEECH = ["flight-of-the-amazon-queen", "fillets-ng-data", "fillets-ng-data-cs", "fillets-ng-data-nl",
          "asterisk-core-sounds-en-wav", "asterisk-core-sounds-es-wav", "asterisk-core-sounds-fr-wav",
          "asterisk-core-sounds-it-wav", "asterisk-core-sounds-ru-wav", "asterisk-prompt-it-menardi-wav",
          "asterisk-prompt-fr-armelle", "asterisk-prompt-es-co", "klettres-data", "gcin-voice"]
SFX = ["0ad-data", "megaglest-data", "ufoai-sound", "hydrogen-drumkits", "wordwarvi-sound"]
MUSIC = ["planetblupi-music-ogg", "singularity-music", "drascula-music", "asterisk-moh-opsound-wav"]
PKGS_FULL = SPEECH + SFX + MUSIC
PKGS_SMALL = ["ufoai-sound", "wordwarvi-sound", "asterisk-prompt-fr-armelle", "asterisk-prompt-es-co"]
SMALL_SECONDS = 240.0
AUDIO_RX = r"\.(wav|ogg|oga|mp3|flac|gsm)$"
SKIP_RX = r"(^|/)usr/share/doc/|/sounds/[^/]+/silence/|/silence/"
PACK_S, GAP_S, SHORT_S = 6.0, 0.1, 1.0


class Src:
    __slots__ = ("package", "source", "path", "category", "duration", "md5")

    def __init__(self, package, source, path):
        self.package, self.source, self.path = package, source, Path(path)
        self.category = category(package, source)
        self.duration = self.md5 = None


def category(pkg, source):
    if re.search(r"music|/moh/", source, re.I) or pkg in MUSIC:
        return "music"
    return "speech" if pkg in SPEECH else "sfx"


def list_sources(pkg, source=None):
    root = debpkg.extract(pkg, ["*/mods/public/public.zip"] if pkg == "0ad-data" else None, source)
    out = []
    if pkg == "flight-of-the-amazon-queen":
        q = next(root.glob("usr/share/*/flight-of-the-amazon-queen/queen.1c"))
        names = [n for n, _, _ in al.qtbl_entries(q) if n.endswith(".SB")]
        files = al.qtbl_extract(q, names, root / "_members" / "queen.1c", suffix=".mp3")
        rel = q.relative_to(root)
        return [Src(pkg, f"{rel}!{n}", files[n]) for n in sorted(names)]
    for p in sorted(root.rglob("*")):
        if not p.is_file() or "/_members/" in str(p):
            continue
        rel = str(p.relative_to(root))
        if re.search(SKIP_RX, "/" + rel):
            continue
        if p.suffix.lower() in (".zip", ".pk3", ".uqm"):
            members = al.zip_members(p, AUDIO_RX, root / "_members")
            out += [Src(pkg, f"{rel}!{m}", f) for m, f in sorted(members.items())]
        elif re.search(AUDIO_RX, p.name, re.I):
            out.append(Src(pkg, rel, p))
    return out


def read_excludes(dirs):
    """(package, source) pairs marked eval=1 in the provenance.tsv of each folder."""
    ex, used = set(), []
    for d in dirs:
        p = Path(d) / "provenance.tsv"
        if not p.exists():
            continue
        used.append(str(d))
        for row in al.read_provenance(p):
            if row.get("eval") == "1" and not row["package"].startswith(("tts:", "sox")):
                ex.add((row["package"], row["source"]))
    return ex, used


def decode16k(path):
    cmd = ["sox", "-R", "-V1", *al.sox_input_args(path), str(path), "-t", "raw", "-e", "signed", "-b", "16", "-c", "1",
           "-r", str(SR), "-"]
    if al._channels(path) > 1:
        cmd += ["remix", "-"]
    cmd += ["rate", "-h", str(SR)]
    r = subprocess.run(cmd, capture_output=True, check=True)
    return np.frombuffer(r.stdout, dtype="<i2")


_RATES = {}


def info_rate(path):
    return _RATES.get(str(path))


def write_flac_from_pcm(pcm, dst):
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp")
    subprocess.run(["sox", "-R", "-V1", "-t", "raw", "-r", str(SR), "-e", "signed", "-b", "16", "-c", "1", "-",
                    "-t", "flac", str(tmp)], input=pcm.astype("<i2").tobytes(), check=True)
    os.replace(tmp, dst)


def out_name(s):
    rel = s.source.replace("!", "/")
    rel = re.sub(r"\.(wav|ogg|oga|mp3|flac|gsm|sb)$", "", rel, flags=re.I)
    return Path("audio") / s.package / (rel + ".flac")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "data" / "pretrain-local")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--small", action="store_true", help=f"CI mode: 4 small packages, ~{SMALL_SECONDS:.0f} s of audio")
    ap.add_argument("--non-free", action="store_true", help="add uqm-voice (Debian non-free, CC BY-NC-SA 2.5)")
    ap.add_argument("--exclude-from", type=Path, nargs="*", default=None,
                    help="builder outputs whose eval recordings to leave out (default: sibling "
                         "esc-local, kws-local, sid-local)")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    al.need_tools("sox", "soxi", "apt-get", "dpkg-deb")
    al.nice_self()
    timer = al.Timer()
    out = args.out.resolve()
    rng = random.Random(args.seed)
    ex_dirs = args.exclude_from if args.exclude_from is not None else \
        [out.parent / n for n in ("esc-local", "kws-local", "sid-local")]
    excluded, ex_used = read_excludes(ex_dirs)
    if not ex_used:
        al.log("pretrain: WARNING: no provenance.tsv found in " + ", ".join(map(str, ex_dirs)) +
               "; nothing is excluded (build esc/kws/sid first)")
    pkgs = list(PKGS_SMALL if args.small else PKGS_FULL)
    nonfree = debpkg.AptSource.nonfree(out / ".apt") if args.non_free else None
    srcs_of = lambda p: nonfree if p == "uqm-voice" else None  # noqa: E731
    debpkg.prefetch(pkgs)
    if args.non_free:
        pkgs.append("uqm-voice")
        SPEECH.append("uqm-voice")

    srcs = []
    for p in pkgs:
        srcs += list_sources(p, srcs_of(p))
    al.log(f"pretrain: {len(srcs)} audio files in {len(pkgs)} packages ({timer})")
    for s in srcs:
        s.md5 = al.md5_file(s.path)
    ex_md5 = {s.md5 for s in srcs if (s.package, s.source) in excluded}
    seen, keep, n_dup, n_ex = set(), [], 0, 0
    for s in srcs:
        if s.md5 in ex_md5:
            n_ex += 1
            continue
        if s.md5 in seen:
            n_dup += 1
            continue
        seen.add(s.md5)
        keep.append(s)
    gsm = [s for s in keep if s.path.suffix.lower() == ".gsm"]
    for s in gsm:
        s.duration = al.gsm_duration(s.path)
    d = al.durations([s.path for s in keep if s.path.suffix.lower() != ".gsm"])
    for s in keep:
        if s.duration is None:
            s.duration = d.get(str(s.path))
    unreadable = [s for s in keep if not s.duration]
    keep = [s for s in keep if s.duration]
    if args.small:
        rng.shuffle(keep)
        total, small = 0.0, []
        for s in keep:
            if total >= SMALL_SECONDS:
                break
            if s.duration <= 60:
                small.append(s)
                total += s.duration
        keep = small
    keep.sort(key=lambda s: (s.package, s.source))
    al.log(f"pretrain: {len(keep)} files kept, {n_ex} excluded as downstream eval material, {n_dup} duplicates, "
           f"{len(unreadable)} unreadable ({timer})")

    # Long files are converted one to one; short ones are packed per folder.
    singles = [s for s in keep if s.duration >= SHORT_S]
    shorts = collections.defaultdict(list)
    for s in keep:
        if s.duration < SHORT_S:
            shorts[(s.package, os.path.dirname(s.source.replace("!", "/")))].append(s)
    packs = []
    for (pkg, folder), items in sorted(shorts.items()):
        cur, t = [], 0.0
        for s in items:
            if cur and t + s.duration + GAP_S > PACK_S:
                packs.append((pkg, folder, cur))
                cur, t = [], 0.0
            cur.append(s)
            t += s.duration + GAP_S
        if cur:
            packs.append((pkg, folder, cur))
    counters = collections.Counter()
    pack_jobs = []
    for pkg, folder, items in packs:
        counters[(pkg, folder)] += 1
        pack_jobs.append((Path("audio") / pkg / folder / f"_short_pack_{counters[(pkg, folder)]:04d}.flac", items))

    def conv_single(s):
        dst = out / out_name(s)
        if not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_name(dst.name + ".tmp")
            cmd = ["sox", "-R", "-V1", *al.sox_input_args(s.path), str(s.path), "-r", str(SR), "-c", "1", "-b", "16",
                   "-t", "flac", str(tmp)] + (["remix", "-"] if al._channels(s.path) > 1 else []) + \
                  ["rate", "-h", str(SR)]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                tmp.unlink(missing_ok=True)
                return None
            os.replace(tmp, dst)
        return dst

    gap_dir = out / ".cache" / "gaps"
    gap_lock = threading.Lock()

    def gap_file(rate, ch):
        p = gap_dir / f"gap_{rate}_{ch}.wav"
        with gap_lock:
            if not p.exists():
                gap_dir.mkdir(parents=True, exist_ok=True)
                tmp = p.with_name(p.name + ".tmp")
                subprocess.run(["sox", "-R", "-V1", "-n", "-r", str(rate), "-c", str(ch), "-b", "16", "-t", "wav",
                                str(tmp), "trim", "0", str(GAP_S)], check=True)
                os.replace(tmp, p)
        return p

    def conv_pack(job):
        """Short files -> one FLAC with GAP_S of silence between them. When all parts share a sample
        rate and channel count (the usual case: one folder of one package) a single sox call
        concatenates them; otherwise each part is decoded on its own."""
        rel, items = job
        dst = out / rel
        offsets, t = [], 0.0
        for s in items:
            offsets.append((s, t, s.duration))
            t += s.duration + GAP_S
        if dst.exists():
            return dst, offsets
        fmts = {(info_rate(s.path), al._channels(s.path)) for s in items}
        if len(fmts) == 1 and None not in next(iter(fmts)) and not any(al.sox_input_args(s.path) for s in items):
            rate, ch = next(iter(fmts))
            inputs = []
            for s in items:
                inputs += [str(s.path), str(gap_file(rate, ch))]
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_name(dst.name + ".tmp")
            cmd = ["sox", "-R", "-V1", *inputs[:-1], "-r", str(SR), "-c", "1", "-b", "16", "-t", "flac", str(tmp)] + \
                  (["remix", "-"] if ch > 1 else []) + ["rate", "-h", str(SR)]
            if subprocess.run(cmd, capture_output=True).returncode == 0:
                os.replace(tmp, dst)
                return dst, offsets
            tmp.unlink(missing_ok=True)
        gap = np.zeros(int(GAP_S * SR), dtype="<i2")
        parts, offsets, t = [], [], 0
        for s in items:
            x = decode16k(s.path)
            offsets.append((s, t / SR, len(x) / SR))
            parts += [x, gap]
            t += len(x) + len(gap)
        write_flac_from_pcm(np.concatenate(parts[:-1]), dst)
        return dst, offsets

    nongsm = [s.path for s in keep if not al.sox_input_args(s.path)]
    al.prime_channels(nongsm)
    _RATES.update(al.soxi_batch([s.path for items in shorts.values() for s in items if not al.sox_input_args(s.path)],
                                "-r", int))
    made_s = al.parallel(conv_single, singles, args.jobs)
    made_p = al.parallel(conv_pack, pack_jobs, args.jobs)
    shutil.rmtree(gap_dir.parent, ignore_errors=True)  # keep the folder tree pure corpus audio
    al.log(f"pretrain: converted {len(singles)} files and {len(pack_jobs)} packs of short files ({timer})")

    files, prov = [], []
    failed = []
    for s, dst in zip(singles, made_s):
        if dst is None:
            failed.append(s)
            continue
        files.append(dst)
        prov.append(dict(file=str(dst.relative_to(out)), package=s.package, version="", source=s.source,
                         start_s=0.0, duration_s=s.duration, split=s.category, eval=0))
    for (dst, offsets) in made_p:
        files.append(dst)
        for s, start, dur in offsets:
            prov.append(dict(file=str(dst.relative_to(out)), package=s.package, version="", source=s.source,
                             start_s=start, duration_s=dur, split=s.category, eval=0))
    want = set(files)
    stale = [p for p in (out / "audio").rglob("*.flac") if p not in want]
    for p in stale:
        p.unlink()
    nsamp = {}
    for i in range(0, len(files), 200):
        part = files[i:i + 200]
        r = subprocess.run(["soxi", "-s", *map(str, part)], capture_output=True, text=True, check=True)
        for p, v in zip(part, r.stdout.split()):
            nsamp[p] = int(v)
    lines = ["path\tnum_samples"] + [f"{p.relative_to(out)}\t{nsamp[p]}" for p in sorted(files)]
    al.write_text_atomic(out / "manifest.tsv", "\n".join(lines) + "\n")
    versions = {p: debpkg.deb_version(debpkg.download(p, srcs_of(p))) for p in pkgs}
    for r in prov:
        r["version"] = versions[r["package"]]
    al.write_provenance(out / "provenance.tsv", prov)
    al.save_copyrights(pkgs, out / "licenses", srcs_of)

    # Stats: hours per package and category from the output sample counts.
    pkg_of_file = {}
    cat_secs = collections.Counter()
    for r in prov:
        pkg_of_file.setdefault(r["file"], (r["package"], r["split"]))
    pkg_secs = collections.Counter()
    for p in files:
        pkg, cat = pkg_of_file[str(p.relative_to(out))]
        pkg_secs[pkg] += nsamp[p] / SR
        cat_secs[cat] += nsamp[p] / SR
    total_h = sum(pkg_secs.values()) / 3600
    ex_by_pkg = collections.Counter(p for p, _ in excluded)
    al.log(f"pretrain: {len(files)} files, {total_h:.2f} h (speech {cat_secs['speech'] / 3600:.2f} h, "
           f"sfx {cat_secs['sfx'] / 3600:.2f} h, music {cat_secs['music'] / 3600:.2f} h), {len(failed)} failed, "
           f"{len(stale)} stale removed ({timer})")
    rows = [f"| `{p}` | {category(p, '')} | {pkg_secs[p] / 3600:.2f} | {ex_by_pkg[p]} |" for p in pkgs]
    for r in rows:
        al.log("  " + r)
    card = f"""# pretrain-local: unlabeled real recordings from Debian packages

Built by `scripts/data/build_pretrain_local.py{' --small' if args.small else ''}{' --non-free' if args.non_free else ''} --seed {args.seed}`.

{len(files)} files, **{total_h:.2f} h** at 16 kHz mono (FLAC): speech {cat_secs['speech'] / 3600:.2f} h, sound
effects / ambience / instrument samples {cat_secs['sfx'] / 3600:.2f} h, music {cat_secs['music'] / 3600:.2f} h.
Everything is a recording shipped in a Debian package (voice acting, announcer prompts, field and
foley recordings, drum samples, human-composed music); nothing is synthetic. The music is
mostly produced/sequenced; the speech + sfx part alone is {(cat_secs['speech'] + cat_secs['sfx']) / 3600:.2f} h.

## Layout
- `audio/<package>/<path inside the package>.flac`; members of archives (public.zip, .pk3,
  queen.1c) appear under the archive's path. Long files are kept whole (the reader cuts <= 6 s
  segments). Files shorter than {SHORT_S:.0f} s are joined per folder into `_short_pack_NNNN.flac`
  (up to {PACK_S:.0f} s, {GAP_S} s of silence between them).
- `manifest.tsv`: `path<TAB>num_samples` (16 kHz), relative to this folder, with a header line.
- `provenance.tsv`: each output file -> package, version, source path (`archive!member`), and for
  packs the offset and length of every part; `split` holds the category (speech/sfx/music).

## Excluded downstream material
Source recordings that the benchmark builders use for evaluation are left out (matched by package
+ path and by MD5): read from {', '.join(ex_used) if ex_used else 'nothing (no provenance found!)'}.
{n_ex} files were excluded ({len(excluded)} listed sources; per package: {', '.join(f'{p} {n}' for p, n in sorted(ex_by_pkg.items())) or 'none'}).
That covers every esc-local clip source (all folds are test folds in cross-validation), the
sid-local validation and test recordings (training recordings stay in, as usual for
self-supervised pre-training on the downstream training audio), and the kws-local background
recordings (they are mixed into its test clips). {n_dup} byte-identical duplicates were dropped;
{len(unreadable)} unreadable files (sox) skipped{', ' + str(len(failed)) + ' failed conversions' if failed else ''}.

## Hours per package

| package | category | hours kept | sources excluded |
|---|---|---|---|
""" + "\n".join(rows) + """

## Sources and licences
""" + al.licence_table(pkgs, srcs_of) + "\n"
    al.write_text_atomic(out / "DATASET.md", card)
    al.log(f"pretrain: wrote {out} ({timer})")


if __name__ == "__main__":
    main()
