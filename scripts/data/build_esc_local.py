#!/usr/bin/python3
"""Builds `esc-local`: real recorded sound effects, ambiences and drum samples from Debian packages,
arranged exactly like ESC-50 (audio/{fold}-{src}-{take}-{target}.wav, 44.1 kHz mono 16-bit, 5.000 s;
meta/esc50.csv), 5 folds, no source recording in two folds.

  /usr/bin/python3 scripts/data/build_esc_local.py [--out data/esc-local] [--seed 0] [--small]

Sources (Debian `main`): 0ad-data (public.zip), hydrogen-drumkits, ufoai-sound, megaglest-data.
--small uses only ufoai-sound (19 MB download) and writes 4 classes x 5 clips, for CI.
Resumable: downloads are cached (scripts/data/debpkg.py), clips that exist are not rewritten.
"""

import argparse
import collections
import random
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import audiolib as al  # noqa: E402
import debpkg  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
RATE = 44100
CLIP_S = 5.0
HEADER = "filename,fold,target,category,esc10,src_file,take"

PKGS_FULL = ["0ad-data", "hydrogen-drumkits", "ufoai-sound", "megaglest-data"]
PKGS_SMALL = ["ufoai-sound"]
SMALL_CLASSES = ["footsteps", "gunshot", "human_cry", "water_flowing"]

# (class, kind, regex on the rule path). Rule paths: "0ad:audio/...", "ufoai:sound/...",
# "megaglest:<path under usr/share/games/megaglest>", "drum:<kit>/<instrument name>" (classified by
# drum_class below). kind "ambience": long recordings cut into up to --max-windows random 5-s windows
# (looped when shorter than 5 s); "event": one clip per file (first 5 s, zero-padded).
RULES = [
    ("arrow_impact", "event", r"^0ad:audio/attack/impact/arrow_\w*\d+\.ogg$"),
    ("arrow_impact", "event", r"^megaglest:.*/arrow_hit\d+\.wav$"),
    ("birds_daytime", "ambience", r"^0ad:audio/ambient/dayscape/day_\w+\.ogg$"),
    ("birds_daytime", "ambience", r"^megaglest:tilesets/[^/]+/sounds/(day|sunny_day)\.ogg$"),
    ("night_insects", "ambience", r"^megaglest:tilesets/[^/]+/sounds/(night|nightime)\.ogg$"),
    ("night_insects", "ambience", r"^ufoai:sound/ambience/cricket_loop\.ogg$"),
    ("rain", "ambience", r"^0ad:audio/ambient/weather/rain_\d+\.ogg$"),
    ("rain", "ambience", r"^megaglest:tilesets/[^/]+/sounds/rain\.(ogg|wav)$"),
    ("wind", "ambience", r"^0ad:audio/ambient/weather/(wind|windgust|windleaves|windstorm|snowstorm)_\d+\.ogg$"),
    ("wind", "ambience", r"^megaglest:tilesets/[^/]+/sounds/wind\.ogg$"),
    ("wind", "ambience", r"^ufoai:sound/ambience/arcticwind\.ogg$"),
    ("water_flowing", "ambience", r"^0ad:audio/ambient/water/(river_\w+|waterfall_\d+|wave\w*_\d+)\.ogg$"),
    ("water_flowing", "ambience", r"^ufoai:sound/ambience/(water\d*|waterfontain)\.ogg$"),
    ("water_flowing", "ambience", r"^megaglest:data/core/water_sounds/water\d\.wav$"),
    ("fire_crackling", "ambience", r"^ufoai:sound/ambience/(fire\d*|smallfire|firesoft)\.ogg$"),
    ("footsteps", "event", r"^0ad:audio/actor/singlesteps/fs_\w+\.ogg$"),
    ("footsteps", "event", r"^0ad:audio/actor/human/movement/(Footsteps/\w+|hstep_\w+)\.ogg$"),
    ("footsteps", "event", r"^ufoai:sound/footsteps/(carpet|dirt|grass|gravel|metal|sand|snow|splash|stone|tile|wood)\d*\.ogg$"),
    ("sword_clash", "event", r"^0ad:audio/attack/weapon/(swordhit_\w+|sword_attack_\d+)\.ogg$"),
    ("wood_chopping", "event", r"^0ad:audio/resource/lumbering/lumber_tree_\d+\.ogg$"),
    ("pickaxe", "event", r"^0ad:audio/resource/mining/mine_(metal|stone)_\d+\.ogg$"),
    ("human_cry", "event", r"^0ad:audio/actor/human/death/\w+\.ogg$"),
    ("human_cry", "event", r"^ufoai:sound/(soldiers|civilians)/\w*(death|hurt|scream)\w*\.ogg$"),
    ("gunshot", "event", r"^ufoai:sound/weapons/bullet-[a-z0-9-]+\.ogg$"),
    ("chicken", "event", r"^0ad:audio/actor/fauna/animal/chicken_\d+\.ogg$"),
    ("chicken", "event", r"^megaglest:techs/megapack/factions/[^/]+/units/chicken/sounds/\w+\.wav$"),
    ("chicken", "event", r"^megaglest:tilesets/[^/]+/sounds/chicken\.wav$"),
]
DRUM_KIND = "event"


def drum_class(name):
    """Class of a Hydrogen drum-kit instrument from its name in drumkit.xml, or None."""
    n = name.lower()
    if re.search(r"clap", n):
        return "hand_clap"
    if "cowbell" in n:
        return "cowbell"
    if re.search(r"kick|bass ?drum", n):
        return "kick"
    if re.search(r"hi-?hat|\bhat\b|\bhh\b|hi hat", n):
        if re.search(r"semi|pedal|swish|choke|free|side|ring|low", n):
            return None
        if re.search(r"clos|\bcl\b", n):
            return "hihat_closed"
        if re.search(r"open|\bop\b", n):
            return "hihat_open"
        return None
    if re.search(r"\btom", n):
        return "tom"
    if "snare" in n and not re.search(r"roll|rim", n):
        return "snare"
    if "crash" in n and "ride" not in n:
        return "crash"
    if "ride" in n and not re.search(r"crash|bell|cup", n):
        return "ride"
    return None


class Candidate:
    __slots__ = ("cls", "kind", "path", "package", "source", "source_key", "duration", "takes")

    def __init__(self, cls, kind, path, package, source, source_key):
        self.cls, self.kind, self.path, self.package = cls, kind, Path(path), package
        self.source, self.source_key = source, source_key
        self.duration = None
        self.takes = []  # [(start_s or None, repeat)]


def list_0ad(root):
    zpath = next(root.glob("usr/share/games/0ad/mods/public/public.zip"))
    members = al.zip_members(zpath, r"^audio/(actor|ambient|attack|resource)/.*\.ogg$",
                             root / "_members")
    rel = zpath.relative_to(root)
    return [(f"0ad:{m}", p, f"{rel}!{m}") for m, p in sorted(members.items())]


def list_ufoai(root):
    zpath = next(root.glob("usr/share/games/ufoai/base/0snd.pk3"))
    members = al.zip_members(zpath, r"^sound/.*\.(ogg|wav)$", root / "_members")
    rel = zpath.relative_to(root)
    return [(f"ufoai:{m}", p, f"{rel}!{m}") for m, p in sorted(members.items())]


def list_megaglest(root):
    base = root / "usr/share/games/megaglest"
    out = []
    for p in sorted(base.rglob("*")):
        if p.suffix.lower() in (".ogg", ".wav") and p.is_file():
            out.append((f"megaglest:{p.relative_to(base)}", p, str(p.relative_to(root))))
    return out


def _local(tag):
    return tag.rsplit("}", 1)[-1]


def list_drums(root):
    """[(class, kit/instrument source key, path, package-relative source)] from every drumkit.xml."""
    out = []
    for xml in sorted(root.glob("usr/share/hydrogen/data/drumkits/*/drumkit.xml")):
        kit = xml.parent
        tree = ET.parse(xml).getroot()
        for ins in tree.iter():
            if _local(ins.tag) != "instrument":
                continue
            names = [c.text or "" for c in ins if _local(c.tag) == "name"]
            cls = drum_class(names[0]) if names else None
            if cls is None:
                continue
            files = [e.text for e in ins.iter() if _local(e.tag) == "filename" and e.text]
            for f in files:
                p = kit / f
                if p.is_file():
                    out.append((cls, f"drum:{kit.name}/{names[0]}", p, str(p.relative_to(root))))
    return out


def gather(pkgs, args):
    """All candidate recordings of the packages, classified and de-duplicated by content."""
    cands = []
    for pkg in pkgs:
        root = debpkg.extract(pkg, ["*/mods/public/public.zip"] if pkg == "0ad-data" else None)
        if pkg == "hydrogen-drumkits":
            for cls, key, p, src in list_drums(root):
                cands.append(Candidate(cls, DRUM_KIND, p, pkg, src, key))
            continue
        lister = {"0ad-data": list_0ad, "ufoai-sound": list_ufoai, "megaglest-data": list_megaglest}[pkg]
        for rule_path, p, src in lister(root):
            for cls, kind, rx in RULES:
                if re.search(rx, rule_path):
                    cands.append(Candidate(cls, kind, p, pkg, src, source_key(rule_path, args)))
                    break
    # De-duplicate identical files (megaglest ships one recording in several tilesets).
    seen, unique = {}, []
    for c in cands:
        h = al.md5_file(c.path)
        if h in seen:
            continue
        seen[h] = c
        unique.append(c)
    durs = al.durations([c.path for c in unique])
    out = []
    for c in unique:
        c.duration = durs.get(str(c.path))
        if c.duration and c.duration >= 0.05:
            out.append(c)
    al.log(f"esc: {len(cands)} classified files, {len(unique)} after removing duplicates, "
           f"{len(out)} readable")
    return out


def source_key(rule_path, args):
    """The source recording a file belongs to. Default: the file itself, except that variant
    suffixes (swordhit_12a / 12b) join their base take. --strict-sources: the whole numbered
    family (lumber_tree_01..26 -> lumber_tree_) counts as one recording."""
    base = re.sub(r"\.\w+$", "", rule_path)
    base = re.sub(r"(\d+)[a-z]$", r"\1", base)
    if args.strict_sources:
        base = re.sub(r"[-_]?\d+$", "", base)
    return base


def loud_slots(path, floor_db=-40.0):
    """For each whole 5-s slot of a recording: is its peak above floor_db (a near-silent stretch of
    an ambience would make a clip without its class)?"""
    cmd = ["sox", "-R", "-V1", str(path), "-t", "raw", "-e", "signed", "-b", "16", "-c", "1", "-r", "8000", "-"]
    if al._channels(path) > 1:
        cmd += ["remix", "-"]
    x = np.abs(np.frombuffer(subprocess.run(cmd, capture_output=True, check=True).stdout, dtype="<i2"))
    n = int(CLIP_S * 8000)
    floor = 32768 * 10 ** (floor_db / 20)
    return [int(x[i * n:(i + 1) * n].max()) > floor for i in range(len(x) // n)]


def plan(cands, args, rng):
    """Selects clips per class and assigns sources to folds. Returns (classes, clips) where each
    clip is a dict (cls, cand, take index, start, repeat, fold)."""
    by_cls = collections.defaultdict(lambda: collections.defaultdict(list))
    for c in cands:
        by_cls[c.cls][c.source_key].append(c)
    clips, classes, dropped = [], [], []
    for cls in sorted(by_cls):
        if args.only_classes and cls not in args.only_classes:
            continue
        sources = by_cls[cls]
        # Fragments each source offers: ambience windows or one clip per file.
        offers = {}
        for key in sorted(sources):
            frags = []
            for c in sorted(sources[key], key=lambda c: str(c.path)):
                if c.kind == "ambience" and c.duration >= CLIP_S:
                    slots = [i for i, ok in enumerate(loud_slots(c.path)) if ok]
                    picks = sorted(rng.sample(slots, min(args.max_windows, len(slots))))
                    frags += [(c, s * CLIP_S, 1) for s in picks]
                elif c.kind == "ambience":
                    frags.append((c, 0.0, int(CLIP_S // c.duration) + 1))
                else:
                    frags.append((c, 0.0, 1))
            rng.shuffle(frags)
            offers[key] = frags
        n_avail = sum(len(v) for v in offers.values())
        if len(offers) < args.min_sources or n_avail < args.min_clips:
            dropped.append(f"{cls} ({len(offers)} sources, {n_avail} clips)")
            continue
        # Round-robin over sources (in seeded order) so that a capped class keeps its variety.
        order = sorted(offers)
        rng.shuffle(order)
        taken = collections.defaultdict(list)
        n = 0
        while n < args.clips_per_class and any(offers[k] for k in order):
            for k in order:
                if offers[k] and n < args.clips_per_class:
                    taken[k].append(offers[k].pop())
                    n += 1
        # Greedy fold assignment: biggest source first into the emptiest fold (ties broken at random).
        fold_n = [0] * 5
        keys = sorted(taken, key=lambda k: (-len(taken[k]), rng.random()))
        for k in keys:
            low = min(fold_n)
            fold = rng.choice([i for i in range(5) if fold_n[i] == low])
            fold_n[fold] += len(taken[k])
            for c, start, rep in taken[k]:
                clips.append(dict(cls=cls, cand=c, key=k, start=start, repeat=rep, fold=fold + 1))
        classes.append(cls)
    if dropped:
        al.log("esc: classes dropped (need >= %d sources and >= %d clips): %s"
               % (args.min_sources, args.min_clips, ", ".join(dropped)))
    return classes, clips


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "data" / "esc-local")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--small", action="store_true", help="CI mode: ufoai-sound only, 4 classes x 5 clips")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--clips-per-class", type=int, default=40)
    ap.add_argument("--min-clips", type=int, default=20)
    ap.add_argument("--min-sources", type=int, default=5)
    ap.add_argument("--max-windows", type=int, default=8, help="5-s windows per ambience file")
    ap.add_argument("--strict-sources", action="store_true",
                    help="treat a numbered file family (x_01..x_26) as one source recording")
    args = ap.parse_args()
    args.only_classes = None
    if args.small:
        args.clips_per_class, args.min_clips, args.max_windows = 5, 5, 2
        args.only_classes = SMALL_CLASSES
    al.need_tools("sox", "soxi", "apt-get", "dpkg-deb")
    al.nice_self()
    timer = al.Timer()
    rng = random.Random(args.seed)
    pkgs = PKGS_SMALL if args.small else PKGS_FULL
    out = args.out.resolve()

    debpkg.prefetch(pkgs)
    cands = gather(pkgs, args)
    classes, clips = plan(cands, args, rng)
    if not classes:
        sys.exit("esc: no class has enough clips")
    target = {c: i for i, c in enumerate(classes)}
    # Numeric source ids (ESC-50's src_file is the Freesound id) over all selected sources, sorted.
    keys = sorted({(cl["cand"].package, cl["key"]) for cl in clips})
    src_id = {k: 1000 + i for i, k in enumerate(keys)}
    takes = collections.Counter()
    for cl in sorted(clips, key=lambda c: (c["cand"].package, c["key"], str(c["cand"].path), c["start"])):
        sid = src_id[(cl["cand"].package, cl["key"])]
        cl["src"] = sid
        cl["take"] = chr(ord("A") + takes[sid]) if takes[sid] < 26 else f"Z{takes[sid]}"
        takes[sid] += 1
        cl["name"] = f"{cl['fold']}-{sid}-{cl['take']}-{target[cl['cls']]}.wav"

    audio = out / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    (out / "meta").mkdir(exist_ok=True)

    def render(cl):
        dst = audio / cl["name"]
        if dst.exists() and al.wav_frames(dst)[0] == int(CLIP_S * RATE):
            return False
        c = cl["cand"]
        effects = ["repeat", str(cl["repeat"] - 1)] if cl["repeat"] > 1 else []
        al.sox_convert(c.path, dst, RATE, start=cl["start"] if cl["start"] else None,
                       length=CLIP_S if c.kind == "ambience" and cl["repeat"] == 1 else None,
                       pad_to=CLIP_S, effects=effects)
        return True

    made = sum(al.parallel(render, clips, args.jobs))
    names = {cl["name"] for cl in clips}
    stale = [p for p in audio.glob("*.wav") if p.name not in names]
    for p in stale:
        p.unlink()
    for p in audio.glob("*.tmp"):
        p.unlink()

    rows = sorted(clips, key=lambda c: (c["fold"], c["src"], c["take"]))
    csv = [HEADER] + [f"{c['name']},{c['fold']},{target[c['cls']]},{c['cls']},False,{c['src']},{c['take']}"
                      for c in rows]
    al.write_text_atomic(out / "meta" / "esc50.csv", "\n".join(csv) + "\n")
    versions = {p: debpkg.deb_version(debpkg.download(p)) for p in pkgs}
    al.write_provenance(out / "provenance.tsv", [
        dict(file=f"audio/{c['name']}", package=c["cand"].package, version=versions[c["cand"].package],
             source=c["cand"].source, start_s=float(c["start"]),
             duration_s=min(CLIP_S, c["cand"].duration - c["start"]) if c["repeat"] == 1 else c["cand"].duration,
             split=f"fold{c['fold']}", eval=1) for c in clips])
    al.save_copyrights(pkgs, out / "licenses")

    # Counts and the dataset card.
    per = collections.defaultdict(lambda: [0] * 5)
    nsrc = collections.defaultdict(set)
    for c in clips:
        per[c["cls"]][c["fold"] - 1] += 1
        nsrc[c["cls"]].add(c["src"])
    fold_tot = [sum(per[c][f] for c in classes) for f in range(5)]
    hours = len(clips) * CLIP_S / 3600
    lines = [f"| {target[c]} | {c} | {sum(per[c])} | {len(nsrc[c])} | {', '.join(map(str, per[c]))} |"
             for c in classes]
    al.log(f"esc: {len(classes)} classes, {len(clips)} clips ({hours:.2f} h), {made} written now, "
           f"{len(stale)} stale removed, per fold {fold_tot}, in {timer}")
    for ln in lines:
        al.log("  " + ln)
    card = f"""# esc-local: real sound recordings from Debian packages in the ESC-50 layout

Built by `scripts/data/build_esc_local.py{' --small' if args.small else ''} --seed {args.seed}`
({'small CI mode' if args.small else 'full mode'}). Nothing here was synthesised: every clip is
cut from a recording shipped in a Debian `main` package (game sound effects, field-recorded
ambiences, drum-kit samples). The builder only converts, cuts, pads and resamples.

## Layout (as ESC-50)
- `audio/{{fold}}-{{src_file}}-{{take}}-{{target}}.wav`: 44.1 kHz, mono, 16-bit PCM, exactly 5.000 s.
- `meta/esc50.csv` with the header `{HEADER}`; `esc10` is always `False`; `category` is the class
  name, `target` its index (classes in alphabetical order).
- `src_file` is a numeric id of the source recording, `take` (A, B, ...) numbers the fragments
  cut from it. **All fragments of one source are in the same fold** (ESC-50's rule); folds are
  assigned greedily per class, biggest source first, to the emptiest fold.
- `provenance.tsv`: every clip -> package, version, path inside the package (`archive!member` for
  files inside a zip/pk3), start and length in the source. `licenses/`: the packages' copyright files.

## Counts
{len(classes)} classes, {len(clips)} clips, {hours:.2f} h. Clips per fold: {', '.join(map(str, fold_tot))}.

| target | category | clips | sources | clips in folds 1-5 |
|---|---|---|---|---|
""" + "\n".join(lines) + f"""

## How clips are made
- Ambience classes (birds_daytime, night_insects, rain, wind, water_flowing, fire_crackling): up
  to {args.max_windows} non-overlapping 5-s windows at random positions per recording, among the
  windows whose peak exceeds -40 dBFS (a recording shorter than 5 s is looped). Event classes: one clip per file, its first 5 s, zero-padded at the
  end (as ESC-50 pads short clips).
- Drum classes come from the 14 Hydrogen kits; `drumkit.xml` names each instrument. The velocity
  layers of one instrument of one kit are one source (takes A, B, ...).
- Identical files (same MD5) are used once. A class needs >= {args.min_sources} sources and
  >= {args.min_clips} clips and is capped at {args.clips_per_class} clips, taken round-robin over
  its sources.

## Caveats (read before quoting accuracies)
- A "source" is one file{' family (--strict-sources)' if args.strict_sources else ''}. Numbered
  series in a game pack (e.g. `lumber_tree_01`..`26`, `fs_grass1`..`8`) were probably cut from one
  recording session, so sibling files can sit in different folds, much like different Freesound
  clips of one uploader in ESC-50. `--strict-sources` groups such families into one source
  (fewer classes survive the >= {args.min_sources}-source rule).
- Folds are imbalanced for classes with few sources; per-fold counts are in the table above.
- Game sound effects are edited field/foley recordings. Drum classes are near-trivial for a strong
  model; the ambience, foley and human classes carry the difficulty.
- The original ESC-50 is CC BY-NC; this set carries the licences of the packages below.

## Sources and licences
""" + al.licence_table(pkgs) + "\n"
    al.write_text_atomic(out / "DATASET.md", card)
    al.log(f"esc: wrote {out} ({timer})")


if __name__ == "__main__":
    main()
