#!/usr/bin/python3
"""Builds `sid-local`: speaker identification on REAL voice actors from Debian packages, in the
VoxCeleb1 identification layout.

  /usr/bin/python3 scripts/data/build_sid_local.py [--out data/sid-local] [--seed 0] [--small] [--non-free]

Output:
  <out>/vox1_dev_wav/wav/idXXXXX/<video>/<NNNNN>.wav   16 kHz mono 16-bit segments
  <out>/iden_split.txt     "<1|2|3> idXXXXX/<video>/<NNNNN>.wav"  (1 train, 2 validation, 3 test)
  <out>/vox1_meta.csv      VoxCeleb1's tab-separated speaker table; speakers.tsv; provenance.tsv;
  <out>/DATASET.md, licenses/
A "video" is a group of recordings from one source session (a Fish Fillets level, 10 consecutive
Asterisk prompts, one FOTAQ dialogue, one UQM line); every segment of a video is in one split.

Speakers (Debian main): Fish Fillets NG Czech and Dutch actors (small/big fish), the Asterisk
prompt voices (en/es Allison, fr June, it Carlo, ru, it Menardi, fr Armelle, es-co), and Joe from
Flight of the Amazon Queen. --non-free adds the Ur-Quan Masters voice cast (uqm-voice, CC BY-NC-SA)
through a private apt sources file under <out>/.apt (the system's sources are not touched).
--small: Asterisk en (Allison), fr-armelle, es-co, it-menardi only (about 40 MB of downloads).
"""

import argparse
import base64
import collections
import hashlib
import random
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import audiolib as al  # noqa: E402
import debpkg  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SR = 16000
MIN_S, KEEP_WHOLE_S, SEG_S = 1.0, 8.0, 4.0
WAV_DIR = "vox1_dev_wav"

# key, package(s), language, gender as given by the package (folder names); None: not stated
SPEAKERS_MAIN = [
    ("fillets-cs-small-fish", ["fillets-ng-data-cs"], "cs", None),
    ("fillets-cs-big-fish", ["fillets-ng-data-cs"], "cs", None),
    ("fillets-nl-small-fish", ["fillets-ng-data-nl"], "nl", None),
    ("fillets-nl-big-fish", ["fillets-ng-data-nl"], "nl", None),
    ("asterisk-allison", ["asterisk-core-sounds-en-wav", "asterisk-core-sounds-es-wav"], "en+es", "f"),
    ("asterisk-june", ["asterisk-core-sounds-fr-wav"], "fr", "f"),
    ("asterisk-carlo", ["asterisk-core-sounds-it-wav"], "it", "m"),
    ("asterisk-ivrvoiceru", ["asterisk-core-sounds-ru-wav"], "ru", "f"),
    ("asterisk-menardi", ["asterisk-prompt-it-menardi-wav"], "it", "f"),
    ("asterisk-armelle", ["asterisk-prompt-fr-armelle"], "fr", None),
    ("asterisk-es-co", ["asterisk-prompt-es-co"], "es", None),
    ("fotaq-joe", ["flight-of-the-amazon-queen"], "en", "m"),
]
SMALL_KEYS = ["asterisk-allison", "asterisk-armelle", "asterisk-es-co", "asterisk-menardi"]
SMALL_PKGS = {"asterisk-allison": ["asterisk-core-sounds-en-wav"]}
# UQM races left out: several voices in one folder (zoqfotpik), heavy processing (probe), possible
# duplicates of another race's cast (yehatrebels, commander); see debian-audio survey 5c.
UQM_SKIP = {"zoqfotpik", "probe", "yehatrebels", "commander"}


class Rec:
    """One source recording (a file) of a speaker, in a video group."""
    __slots__ = ("speaker", "video_key", "path", "package", "source", "duration")

    def __init__(self, speaker, video_key, path, package, source):
        self.speaker, self.video_key, self.path = speaker, video_key, Path(path)
        self.package, self.source, self.duration = package, source, None


def recs_fillets(key, pkg, root):
    who = "m" if "small" in key else "v"
    out = []
    for p in sorted(root.glob("usr/share/games/fillets-ng/sound/*/*/*.ogg")):
        m = re.match(r"^[^-]+-([a-z0-9]+)-.+\.ogg$", p.name)
        if m and m.group(1) == who:
            level = p.parent.parent.name
            out.append(Rec(key, f"{pkg}:{level}", p, pkg, str(p.relative_to(root))))
    return out


def recs_asterisk(key, pkg, root, per_video):
    """Prompts of one voice, `per_video` consecutive files (sorted by path within a folder) per video."""
    base = root / "usr/share/asterisk/sounds"
    files = [p for p in sorted(base.rglob("*")) if p.is_file() and p.suffix.lower() in (".wav", ".gsm")
             and "/silence/" not in str(p)]
    by_dir = collections.defaultdict(list)
    for p in files:
        by_dir[p.parent].append(p)
    out = []
    for d in sorted(by_dir):
        for i, p in enumerate(by_dir[d]):
            out.append(Rec(key, f"{pkg}:{d.relative_to(base)}:{i // per_video}", p, pkg, str(p.relative_to(root))))
    return out


def recs_fotaq(key, pkg, root):
    """Joe's lines ('J' as 7th name character) from queen.1c; a video is one dialogue (the first 4
    characters of the name)."""
    q = next(root.glob("usr/share/*/flight-of-the-amazon-queen/queen.1c"))
    names = [n for n, _, _ in al.qtbl_entries(q) if n.endswith(".SB") and len(n) > 6 and n[6] == "J"]
    files = al.qtbl_extract(q, names, root / "_members" / "queen.1c", suffix=".mp3")
    rel = q.relative_to(root)
    return [Rec(key, f"{pkg}:{n[:4]}", files[n], pkg, f"{rel}!{n}") for n in sorted(names)]


def recs_uqm(root):
    """UQM voice lines: speaker = race folder inside the .uqm (zip) archive, a video = one line."""
    out = []
    for z in sorted(root.rglob("*.uqm")):
        members = al.zip_members(z, r"\.ogg$", root / "_members")
        for name, p in sorted(members.items()):
            parts = name.split("/")
            if len(parts) < 2:
                continue
            race = parts[-2].lower()
            if race in UQM_SKIP:
                continue
            out.append(Rec(f"uqm-{race}", f"uqm-voice:{name}", p, "uqm-voice", f"{z.relative_to(root)}!{name}"))
    return out


def video_id(key):
    """An 11-character YouTube-like id, stable for a video key."""
    return base64.urlsafe_b64encode(hashlib.sha1(key.encode()).digest()).decode()[:11]


def segments(rec):
    """[(start, length)] of a recording: whole when 1-8 s, else consecutive 4-s pieces (a last piece
    of >= 2 s is kept)."""
    d = rec.duration or 0.0
    if d < MIN_S:
        return []
    if d <= KEEP_WHOLE_S:
        return [(0.0, None)]
    out, t = [], 0.0
    while d - t >= SEG_S:
        out.append((t, SEG_S))
        t += SEG_S
    if d - t >= 2.0:
        out.append((t, None))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "data" / "sid-local")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--non-free", action="store_true", help="add uqm-voice (Debian non-free, CC BY-NC-SA 2.5)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--max-train", type=int, default=200, help="train segments per speaker (cap)")
    ap.add_argument("--max-val", type=int, default=25)
    ap.add_argument("--max-test", type=int, default=50)
    ap.add_argument("--prompts-per-video", type=int, default=10, help="Asterisk prompts grouped into one video")
    args = ap.parse_args()
    if args.small:
        args.max_train, args.max_val, args.max_test, args.prompts_per_video = 8, 3, 4, 3
    al.need_tools("sox", "soxi", "apt-get", "dpkg-deb")
    al.nice_self()
    timer = al.Timer()
    out = args.out.resolve()
    rng = random.Random(args.seed)

    speakers = [s for s in SPEAKERS_MAIN if not args.small or s[0] in SMALL_KEYS]
    debpkg.prefetch([p for k, ps, _, _ in speakers for p in (SMALL_PKGS.get(k, ps) if args.small else ps)])
    nonfree = None
    recs, pkgs = [], []
    for key, spk_pkgs, _, _ in speakers:
        for pkg in (SMALL_PKGS.get(key, spk_pkgs) if args.small else spk_pkgs):
            root = debpkg.extract(pkg)
            pkgs.append(pkg)
            if pkg.startswith("fillets"):
                recs += recs_fillets(key, pkg, root)
            elif pkg.startswith("asterisk"):
                recs += recs_asterisk(key, pkg, root, args.prompts_per_video)
            else:
                recs += recs_fotaq(key, pkg, root)
    meta = {k: (lang, g) for k, _, lang, g in speakers}
    if args.non_free:
        nonfree = debpkg.AptSource.nonfree(out / ".apt")
        root = debpkg.extract("uqm-voice", None, nonfree)
        pkgs.append("uqm-voice")
        u = recs_uqm(root)
        recs += u
        for r in u:
            meta.setdefault(r.speaker, ("en", None))
    pkgs = sorted(set(pkgs))

    # Durations (GSM has no header: computed from its size).
    gsm = [r for r in recs if r.path.suffix.lower() == ".gsm"]
    for r in gsm:
        r.duration = al.gsm_duration(r.path)
    durs = al.durations([r.path for r in recs if r.path.suffix.lower() != ".gsm"])
    for r in recs:
        if r.duration is None:
            r.duration = durs.get(str(r.path))

    # Videos per speaker, split by video: test first, then validation, then train (capped).
    spk_keys = sorted({r.speaker for r in recs})
    ids = {k: f"id{10001 + i}" for i, k in enumerate(spk_keys)}
    videos = collections.defaultdict(lambda: collections.defaultdict(list))
    for r in recs:
        for start, length in segments(r):
            videos[r.speaker][r.video_key].append((r, start, length))
    plan = []  # (split, speaker, video key, [(rec, start, length)])
    for k in spk_keys:
        vkeys = sorted(videos[k])
        rng.shuffle(vkeys)
        total = sum(len(videos[k][v]) for v in vkeys)
        want = {3: min(args.max_test, max(1, round(0.15 * total))),
                2: min(args.max_val, max(1, round(0.075 * total))), 1: args.max_train}
        have = {1: 0, 2: 0, 3: 0}
        remaining = list(vkeys)
        for split in (3, 2, 1):
            for v in list(remaining):
                if have[split] + len(videos[k][v]) <= want[split]:
                    plan.append((split, k, v, videos[k][v]))
                    have[split] += len(videos[k][v])
                    remaining.remove(v)
            if have[split] == 0 and remaining:  # every split gets at least its smallest video
                v = min(remaining, key=lambda v: len(videos[k][v]))
                plan.append((split, k, v, videos[k][v]))
                have[split] += len(videos[k][v])
                remaining.remove(v)

    # Render.
    wav_root = out / WAV_DIR / "wav"
    jobs = []
    for split, k, v, segs in plan:
        vid = video_id(f"{k}|{v}")
        for i, (r, start, length) in enumerate(sorted(segs, key=lambda s: (str(s[0].path), s[1]))):
            rel = f"{ids[k]}/{vid}/{i + 1:05d}.wav"
            jobs.append(dict(split=split, spk=k, rel=rel, rec=r, start=start, length=length))

    def render(j):
        dst = wav_root / j["rel"]
        if dst.exists():
            return 0
        al.sox_convert(j["rec"].path, dst, SR, start=j["start"] or None, length=j["length"])
        return 1

    made = sum(al.parallel(render, jobs, args.jobs))
    want_files = {wav_root / j["rel"] for j in jobs}
    stale = [p for p in wav_root.rglob("*.wav") if p not in want_files] if wav_root.exists() else []
    for p in stale:
        p.unlink()

    al.write_text_atomic(out / "iden_split.txt",
                         "".join(f"{j['split']} {j['rel']}\n" for j in sorted(jobs, key=lambda j: j["rel"])))
    versions = {p: debpkg.deb_version(debpkg.download(p, nonfree if p == "uqm-voice" else None)) for p in pkgs}
    split_name = {1: "train", 2: "validation", 3: "test"}
    al.write_provenance(out / "provenance.tsv", [
        dict(file=f"{WAV_DIR}/wav/{j['rel']}", package=j["rec"].package, version=versions[j["rec"].package],
             source=j["rec"].source, start_s=float(j["start"]),
             duration_s=j["length"] if j["length"] else j["rec"].duration - j["start"],
             split=split_name[j["split"]], eval=int(j["split"] != 1)) for j in jobs])

    # Tables.
    cnt = collections.defaultdict(lambda: collections.Counter())
    secs = collections.defaultdict(float)
    nvid = collections.defaultdict(lambda: collections.Counter())
    for j in jobs:
        cnt[j["spk"]][j["split"]] += 1
        secs[j["spk"]] += j["length"] or (j["rec"].duration - j["start"])
    for split, k, v, segs in plan:
        nvid[k][split] += 1
    with open(out / "vox1_meta.csv", "w") as f:
        f.write("VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet\n")
        for k in spk_keys:
            lang, g = meta[k]
            f.write(f"{ids[k]}\t{k}\t{g or 'unknown'}\t{lang}\tdev\n")
    rows = []
    with open(out / "speakers.tsv", "w") as f:
        f.write("id\tspeaker\tlanguage\tgender\ttrain\tvalidation\ttest\tvideos_train\tvideos_val\tvideos_test\thours\n")
        for k in spk_keys:
            lang, g = meta[k]
            c, v = cnt[k], nvid[k]
            f.write(f"{ids[k]}\t{k}\t{lang}\t{g or 'unknown'}\t{c[1]}\t{c[2]}\t{c[3]}\t{v[1]}\t{v[2]}\t{v[3]}\t"
                    f"{secs[k] / 3600:.3f}\n")
            rows.append(f"| {ids[k]} | {k} | {lang} | {g or '?'} | {c[1]} / {c[2]} / {c[3]} | "
                        f"{v[1]} / {v[2]} / {v[3]} | {secs[k] / 60:.1f} |")
    al.save_copyrights(pkgs, out / "licenses", lambda p: nonfree if p == "uqm-voice" else None)
    tot = collections.Counter(j["split"] for j in jobs)
    hours = sum(secs.values()) / 3600
    al.log(f"sid: {len(spk_keys)} speakers, {len(jobs)} segments ({hours:.2f} h): train {tot[1]}, "
           f"validation {tot[2]}, test {tot[3]}; {made} written now, {len(stale)} stale removed ({timer})")
    for r in rows:
        al.log("  " + r)
    card = f"""# sid-local: speaker identification on real voice actors, VoxCeleb1 layout

Built by `scripts/data/build_sid_local.py{' --small' if args.small else ''}{' --non-free' if args.non_free else ''} --seed {args.seed}`.
Every segment is a real recording of a human voice actor or announcer shipped in a Debian
package{' (main, plus non-free uqm-voice)' if args.non_free else ' (all from main)'}; the builder only cuts, converts to 16 kHz mono and renames.

## Layout (as VoxCeleb1)
- `{WAV_DIR}/wav/idXXXXX/<video>/<NNNNN>.wav`: 16 kHz, mono, 16-bit. Readers that glob
  `<root>/*/wav/<path>` (s3prl) find them with `<root>` = this folder.
- `iden_split.txt`: `<set> idXXXXX/<video>/<NNNNN>.wav`, set 1 = train, 2 = validation, 3 = test.
- `vox1_meta.csv` (tab-separated, VoxCeleb1's columns; `VGGFace1 ID` holds our speaker name,
  `Nationality` the language), `speakers.tsv` (counts), `provenance.tsv` (segment -> package, path,
  start, length, split), `licenses/`.
- Speaker ids are dense from id10001 (the real VoxCeleb1 ids are also 10001-based).

## Segments and videos
- A recording of 1-8 s is one segment; a longer one is cut into consecutive 4-s segments (a last
  piece of >= 2 s is kept); recordings under 1 s are skipped.
- A "video" is a group of recordings from one source session: a Fish Fillets level (per actor),
  {args.prompts_per_video} consecutive prompts of one Asterisk folder, one FOTAQ dialogue (first 4 characters of the
  resource name), one UQM voice line. **All segments of a video are in one split; no recording is
  in two splits.** Per speaker, videos are shuffled (seeded); test takes the videos that fit
  in min({args.max_test}, 15 %) of the speaker's segments, then validation in min({args.max_val}, 7.5 %), then
  train up to {args.max_train} segments (each split takes at least one video). Videos left over are unused.

## Counts
{len(spk_keys)} speakers, {len(jobs)} segments, {hours:.2f} h. Train {tot[1]}, validation {tot[2]}, test {tot[3]}.

| id | speaker | language | gender | segments train / val / test | videos train / val / test | minutes |
|---|---|---|---|---|---|---|
""" + "\n".join(rows) + f"""

## Caveats: where language and recording conditions are confounded with speaker
- Languages and their speakers here: Czech (small fish, big fish), Dutch (small fish, big fish),
  French (June, Armelle), Italian (Carlo, Menardi), Spanish (Allison's es prompts, es-co), English
  (Allison's en prompts, FOTAQ Joe{' and the 23 UQM races' if args.non_free else ''}), Russian (IvrvoiceRU only).
  **Russian is fully confounded**: that speaker can be recognised by language alone. For every
  other language, language narrows the choice to 2 speakers{' (English: 25)' if args.non_free else ''},
  so part of the accuracy can come from language identification rather than voice.
- The within-language pairs are the honest contrasts: Czech and Dutch small vs big fish (each pair
  recorded for the same game, same conditions), June vs Armelle, Carlo vs Menardi, es-co vs
  Allison's Spanish half.
- Allison recorded both the English and the Mexican-Spanish Asterisk prompts; she is one speaker
  here, so one speaker spans two languages.
- Recording chains differ by package: Asterisk prompts are telephone-style studio prompts
  (8-16 kHz; Armelle and es-co are 8 kHz GSM), FOTAQ is 11 kHz 16 kbit/s MP3, Fish Fillets is
  game-quality Ogg Vorbis{', UQM is 3DO-era game audio' if args.non_free else ''}. Channel cues therefore also identify package groups.
- Genders come from the Asterisk folder names (`f`/`m`); the Menardi folder is `it_IT_f_Menardi`
  and its copyright names Marco Menardi and Paola Dal Zot (the voice), so it is listed as female.
  The others are not stated by the packages and are left `unknown`.
{'- UQM: one folder per alien race; some voices are processed (effects), and an actor may voice more than one race.' if args.non_free else ''}

## Sources and licences
""" + al.licence_table(pkgs, lambda p: nonfree if p == "uqm-voice" else None) + "\n"
    al.write_text_atomic(out / "DATASET.md", card)
    al.log(f"sid: wrote {out} ({timer})")


if __name__ == "__main__":
    main()
