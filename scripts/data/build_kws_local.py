#!/usr/bin/python3
"""Builds `kws-local`: a keyword-spotting set in the Speech Commands v0.02 layout (35 words,
16 kHz mono 1-s clips) spoken by text-to-speech voices (espeak-ng variants, flite, festival) with
per-speaker rate and pitch, mixed with REAL background recordings from Debian packages.
THE SPEECH IS SYNTHETIC; the noise is real.

  /usr/bin/python3 scripts/data/build_kws_local.py [--out data/kws-local] [--seed 0] [--small]

Output:
  <out>/speech_commands_v0.02/<word>/<speaker>_nohash_<n>.wav, _background_noise_/,
      validation_list.txt, testing_list.txt     (split by voice, consistent with the SHA-1 rule)
  <out>/speech_commands_test_set_v0.02/{yes,no,...,go,_unknown_,_silence_}/   (SUPERB KS1 test)
  <out>/DATASET.md, provenance.tsv, speakers.tsv, licenses/
Needs: sox, espeak-ng, flite, festival + festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts
(scripts/setup_data.sh). Noise packages: ufoai-sound, megaglest-data, 0ad-data (--small: ufoai-sound).
"""

import argparse
import collections
import hashlib
import math
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import audiolib as al  # noqa: E402
import debpkg  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SR = 16000
CORE = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
AUX = ["bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow",
       "backward", "forward", "follow", "learn", "visual"]
WORDS = CORE + AUX
SUPERB_WORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
MAIN_DIR = "speech_commands_v0.02"
TEST_DIR = "speech_commands_test_set_v0.02"

ESPEAK_ACCENTS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc",
                  "en-gb-x-gbclan", "en-gb-x-gbcwmd"]
ESPEAK_SKIP_VARIANTS = {"fast"}  # a test variant
# (engine, voice, human group). Voices built on the same recorded person share a group so that
# they never straddle two splits.
RECORDED_VOICES = [
    ("flite", "kal", "human:kal"), ("flite", "kal16", "human:kal"), ("flite", "awb", "human:awb"),
    ("flite", "rms", "human:rms"), ("flite", "slt", "human:slt"),
    ("festival", "kal_diphone", "human:kal"), ("festival", "ked_diphone", "human:ked"),
    ("festival", "cmu_us_slt_arctic_hts", "human:slt"),
]
SMALL_RECORDED = [("flite", "kal", "human:kal"), ("flite", "slt", "human:slt"),
                  ("festival", "ked_diphone", "human:ked")]

# (package, regex on the path inside the package or archive member, name in _background_noise_)
NOISE_FULL = [
    ("ufoai-sound", r"^sound/ambience/arcticwind\.ogg$", "arctic_wind"),
    ("ufoai-sound", r"^sound/ambience/minepump03\.ogg$", "mine_pump"),
    ("ufoai-sound", r"^sound/ambience/city_abnd_ufoai_atm\.ogg$", "abandoned_city"),
    ("0ad-data", r"^audio/ambient/weather/rain_11\.ogg$", "rain"),
    ("0ad-data", r"^audio/ambient/water/river_med_21\.ogg$", "river"),
    ("0ad-data", r"^audio/ambient/dayscape/day_temperate_gen_01\.ogg$", "birds_day"),
    ("0ad-data", r"^audio/ambient/building/amb_farm_12\.ogg$", "farm"),
    ("megaglest-data", r"^usr/share/games/megaglest/tilesets/forest/sounds/night\.ogg$", "forest_night"),
]
NOISE_SMALL = NOISE_FULL[:3]


def seeded(*parts):
    """A random.Random whose state depends only on the parts (so parallel order does not matter)."""
    h = hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()
    return random.Random(int(h[:16], 16))


def espeak_variants():
    """The voice-variant files of espeak-ng (espeak-ng-data/voices/!v). An unknown variant would
    silently fall back to the plain voice, so the names are taken from the files themselves."""
    r = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, check=True)
    m = re.search(r"Data at:\s*(\S+)", r.stdout)
    vdir = Path(m.group(1) if m else "/usr/lib/x86_64-linux-gnu/espeak-ng-data") / "voices" / "!v"
    out = [p.name for p in vdir.iterdir() if p.is_file() and " " not in p.name]
    return sorted(v for v in out if v not in ESPEAK_SKIP_VARIANTS)


def engine_versions():
    def first(cmd, rx):
        r = subprocess.run(cmd, capture_output=True, text=True)
        m = re.search(rx, r.stdout + r.stderr)
        return m.group(1) if m else "?"
    return {"espeak-ng": first(["espeak-ng", "--version"], r"text-to-speech:\s*(\S+)"),
            "flite": first(["flite", "--version"], r"version:\s*(\S+)"),
            "festival": first(["festival", "--version"], r"System:\s*([0-9.]+)")}


def base_voices(args, rng):
    """[(engine, voice, group)]: espeak-ng accent+variant pairs (grouped by variant: the variant
    sets the voice quality) plus the voices built on recorded people."""
    variants = espeak_variants()
    if args.small:
        variants = sorted(rng.sample(variants, 4))
    out = []
    for v in variants:
        for acc in sorted(rng.sample(ESPEAK_ACCENTS, args.accents_per_variant)):
            out.append(("espeak-ng", f"{acc}+{v}", f"espeak:{v}"))
    out += SMALL_RECORDED if args.small else RECORDED_VOICES
    return out


def assign_splits(groups, rng):
    """group -> split: recorded-human groups and espeak groups are split separately, ~10 % of
    each to validation and to testing (at least one each)."""
    out = {}
    for kind in ("human:", "espeak:"):
        gs = sorted(g for g in groups if g.startswith(kind))
        rng.shuffle(gs)
        n_each = max(1, round(0.1 * len(gs))) if len(gs) >= 3 else 0
        for i, g in enumerate(gs):
            out[g] = "testing" if i < n_each else "validation" if i < 2 * n_each else "training"
    return out


def speaker_id(split, used, rng):
    """A random 8-hex id that the official SHA-1 rule puts in `split` (re-drawn until it does)."""
    while True:
        h = "%08x" % rng.getrandbits(32)
        if h not in used and al.sha1_split(h + "_nohash_0.wav") == split:
            used.add(h)
            return h


def synth_all(pairs, tts_dir, jobs):
    """Renders each needed (engine, voice, word) once at the engine's default rate and pitch;
    speakers then vary rate and pitch in post-processing. Festival runs once per voice on a Scheme
    script."""
    todo = []
    fest = collections.defaultdict(list)
    for eng, voice, w in sorted(pairs):
        p = tts_path(tts_dir, eng, voice, w)
        if p.exists() and p.stat().st_size > 1000:
            continue
        p.parent.mkdir(parents=True, exist_ok=True)
        if eng == "festival":
            fest[voice].append((w, p))
        else:
            todo.append((eng, voice, w, p))

    def one(job):
        eng, voice, w, p = job
        tmp = p.with_name(p.stem + ".tmp.wav")
        cmd = (["espeak-ng", "-v", voice, "-w", str(tmp), w] if eng == "espeak-ng"
               else ["flite", "-voice", voice, "-t", w, "-o", str(tmp)])
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.replace(tmp, p)

    al.parallel(one, todo, jobs)
    for voice, items in fest.items():
        scm = tts_dir / "festival" / f"{voice}.scm"
        lines = [f"(voice_{voice})"]
        for w, p in items:
            lines.append(f'(utt.save.wave (SynthText "{w}") "{p.with_name(p.stem + ".tmp.wav")}" \'riff)')
        scm.write_text("\n".join(lines) + "\n")
        subprocess.run(["festival", "-b", str(scm)], check=True, stdout=subprocess.DEVNULL)
        for w, p in items:
            os.replace(p.with_name(p.stem + ".tmp.wav"), p)
    return len(todo) + sum(len(v) for v in fest.values())


def tts_path(tts_dir, eng, voice, word):
    return tts_dir / eng / voice.replace("+", "_") / f"{word}.wav"


def sox_word(src, tempo, cents):
    """TTS file -> float32 16 kHz word with leading/trailing silence stripped, tempo and pitch
    changed."""
    cmd = ["sox", "-R", "-V1", str(src), "-t", "raw", "-e", "signed", "-b", "16", "-c", "1", "-r", str(SR), "-",
           "silence", "1", "0.01", "-45d", "reverse", "silence", "1", "0.01", "-45d", "reverse",
           "tempo", "-s", f"{tempo:.4f}", "pitch", f"{cents:.1f}", "rate", "-h", str(SR)]
    r = subprocess.run(cmd, capture_output=True, check=True)
    return np.frombuffer(r.stdout, dtype="<i2").astype(np.float32) / 32768.0


def load_noises(pkgs_noise, out_dir, small):
    """Converts the background recordings to 16 kHz mono under _background_noise_/ (max 90 s each,
    20 s in --small) and adds white and pink noise made with sox, as in the original set.
    Returns {name: (samples, provenance row)}."""
    max_s = 10.0 if small else 90.0
    out_dir.mkdir(parents=True, exist_ok=True)
    noises = {}
    for pkg, rx, name in pkgs_noise:
        root = debpkg.extract(pkg, ["*/mods/public/public.zip"] if pkg == "0ad-data" else None)
        src, source = find_source(pkg, root, rx)
        dst = out_dir / f"{name}.wav"
        if not dst.exists():
            al.sox_convert(src, dst, SR, start=0.0, length=max_s)
        x, _ = al.read_wav(dst)
        noises[name] = (x, dict(file=f"{MAIN_DIR}/_background_noise_/{name}.wav", package=pkg,
                                version=debpkg.deb_version(debpkg.download(pkg)), source=source,
                                start_s=0.0, duration_s=len(x) / SR, split="noise", eval=1))
    for kind in ("white", "pink"):
        dst = out_dir / f"{kind}_noise.wav"
        if not dst.exists():
            tmp = dst.with_name(dst.name + ".tmp")
            subprocess.run(["sox", "-R", "-V1", "-n", "-r", str(SR), "-c", "1", "-b", "16", "-t", "wav", str(tmp),
                            "synth", "10" if small else "60", f"{kind}noise", "vol", "0.3"], check=True)
            os.replace(tmp, dst)
        x, _ = al.read_wav(dst)
        noises[f"{kind}_noise"] = (x, dict(file=f"{MAIN_DIR}/_background_noise_/{kind}_noise.wav",
                                           package="sox", version="", source=f"synth {kind}noise vol 0.3", note="generated",
                                           start_s=0.0, duration_s=len(x) / SR, split="noise", eval=0))
    (out_dir / "README.md").write_text(
        "Background noise for kws-local (as in Speech Commands' _background_noise_).\n"
        "Real recordings from Debian packages (see ../../provenance.tsv for the exact source of each\n"
        "file), plus white_noise.wav and pink_noise.wav generated with `sox -n synth ... vol 0.3`.\n")
    return noises


def find_source(pkg, root, rx):
    if pkg == "0ad-data":
        z = next(root.glob("usr/share/games/0ad/mods/public/public.zip"))
        m = al.zip_members(z, rx, root / "_members")
        name, p = next(iter(m.items()))
        return p, f"{z.relative_to(root)}!{name}"
    if pkg == "ufoai-sound":
        z = next(root.glob("usr/share/games/ufoai/base/0snd.pk3"))
        m = al.zip_members(z, rx, root / "_members")
        name, p = next(iter(m.items()))
        return p, f"{z.relative_to(root)}!{name}"
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if re.search(rx, rel):
            return p, rel
    raise RuntimeError(f"kws: no file matching {rx} in {pkg}")


def render_clip(job, noises, noise_names, args):
    """One 1-s clip: jittered word at a random offset, peak -12..-3 dBFS, real noise at 10-30 dB
    SNR in 80 % of clips. Returns the provenance note."""
    rng = seeded(args.seed, job["spk"], job["word"], job["rep"])
    tempo = job["rate"] * rng.uniform(0.95, 1.05)
    cents = job["pitch"] + rng.uniform(-30, 30)
    x = sox_word(job["tts"], tempo, cents)
    limit = int(0.95 * SR)
    if len(x) > limit:  # slow speakers: speed up so that the whole word fits in 1 s
        tempo *= len(x) / limit * 1.01
        x = sox_word(job["tts"], tempo, cents)[:limit]
    if len(x) < 160 or np.max(np.abs(x)) < 1e-4:
        raise RuntimeError(f"kws: empty synthesis for {job['tts']}")
    x = x * (10 ** (rng.uniform(-12, -3) / 20) / np.max(np.abs(x)))
    y = np.zeros(SR, dtype=np.float64)
    off = rng.randint(0, SR - len(x))
    y[off:off + len(x)] = x
    note = f"tempo={tempo:.3f} pitch={cents:+.0f}c"
    if rng.random() < 0.8:
        name = rng.choice(noise_names)
        n, _ = noises[name]
        start = rng.randint(0, len(n) - SR)
        seg = n[start:start + SR].astype(np.float64)
        snr = rng.uniform(10, 30)
        rms_s = math.sqrt(float(np.mean(x.astype(np.float64) ** 2)))
        rms_n = math.sqrt(float(np.mean(seg ** 2))) or 1e-9
        y += seg * (rms_s / rms_n / 10 ** (snr / 20))
        note += f" noise={name}@{start / SR:.2f}s snr={snr:.1f}dB"
    al.write_wav(job["dst"], np.clip(y, -1, 1), SR)
    return note


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "data" / "kws-local")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--small", action="store_true", help="CI mode: 7 voices, each word once, ufoai noise")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--accents-per-variant", type=int, default=2,
                    help="espeak-ng accents paired with each voice variant")
    ap.add_argument("--speakers-per-recorded-voice", type=int, default=4,
                    help="speakers (rate/pitch settings) per flite/festival voice")
    ap.add_argument("--keep-tts-cache", action="store_true",
                    help="keep <out>/.cache/tts (the raw TTS renders) after a successful build")
    args = ap.parse_args()
    if args.small:
        args.accents_per_variant, args.speakers_per_recorded_voice = 1, 1
    al.need_tools("sox", "espeak-ng", "flite", "festival", "apt-get", "dpkg-deb")
    al.nice_self()
    timer = al.Timer()
    rng = random.Random(args.seed)
    out = args.out.resolve()
    main_root, test_root = out / MAIN_DIR, out / TEST_DIR
    main_root.mkdir(parents=True, exist_ok=True)

    noise_spec = NOISE_SMALL if args.small else NOISE_FULL
    debpkg.prefetch(sorted({p for p, _, _ in noise_spec}))
    noises = load_noises(noise_spec, main_root / "_background_noise_", args.small)
    noise_names = sorted(noises)
    voices = base_voices(args, rng)
    split_of_group = assign_splits({g for _, _, g in voices}, rng)

    # Speakers: a base voice at a speaker-level rate (x0.8-1.2) and pitch (+-3 semitones).
    used, speakers = set(), []
    for eng, voice, group in voices:
        n = 1 if eng == "espeak-ng" else args.speakers_per_recorded_voice
        for k in range(n):
            srng = seeded(args.seed, "speaker", eng, voice, k)
            split = split_of_group[group]
            speakers.append(dict(id=speaker_id(split, used, srng), engine=eng, voice=voice, group=group,
                                 split=split, rate=srng.uniform(0.8, 1.2), pitch=srng.uniform(-300, 300)))
    jobs = []
    for s in speakers:
        wrng = seeded(args.seed, "reps", s["id"])
        for w in WORDS:
            reps = 1 if (args.small or w in AUX) else wrng.choice([1, 2, 3])
            for r in range(reps):
                jobs.append(dict(spk=s["id"], word=w, rep=r, rate=s["rate"], pitch=s["pitch"], split=s["split"],
                                 tts=tts_path(out / ".cache" / "tts", s["engine"], s["voice"], w),
                                 dst=main_root / w / f"{s['id']}_nohash_{r}.wav", speaker=s))

    def done(job):
        return job["dst"].exists() and al.wav_frames(job["dst"])[0] == SR

    # TTS only for the clips still to render (a finished build needs none).
    need = {(j["speaker"]["engine"], j["speaker"]["voice"], j["word"]) for j in jobs if not done(j)}
    n_tts = synth_all(need, out / ".cache" / "tts", args.jobs)
    al.log(f"kws: {len(voices)} base voices, {n_tts} TTS renders made now ({timer})")

    def do(job):
        return None if done(job) else render_clip(job, noises, noise_names, args)

    # Clips kept from an earlier run keep their provenance notes (tempo, noise, SNR).
    old_notes = {}
    if (out / "provenance.tsv").exists():
        for row in al.read_provenance(out / "provenance.tsv"):
            m = re.match(r"voice=\S+ word=\S+ (.*)$", row.get("source", ""))  # before the note column
            note = row.get("note") or (m.group(1) if m else "")
            if note and not note.startswith("("):
                old_notes[row["file"]] = note
    notes = al.parallel(do, jobs, args.jobs)
    notes = [n if n is not None else old_notes.get(f"{MAIN_DIR}/{j['word']}/{j['dst'].name}")
             for j, n in zip(jobs, notes)]
    made = sum(1 for n in notes if n is not None)
    al.log(f"kws: {len(jobs)} clips, {made} rendered now ({timer})")
    # Stale clips of earlier runs with other settings.
    want = {j["dst"] for j in jobs}
    for w in WORDS:
        for p in (main_root / w).glob("*"):
            if p not in want:
                p.unlink()

    lists = collections.defaultdict(list)
    for j in jobs:
        lists[j["split"]].append(f"{j['word']}/{j['dst'].name}")
    for split, fname in (("validation", "validation_list.txt"), ("testing", "testing_list.txt")):
        al.write_text_atomic(main_root / fname, "".join(p + "\n" for p in sorted(lists[split])))
    # Check: the lists agree with the official hash rule.
    bad = [p for s in lists for p in lists[s] if al.sha1_split(os.path.basename(p)) != s]
    if bad:
        sys.exit(f"kws: {len(bad)} files disagree with the SHA-1 split rule, e.g. {bad[:3]}")

    # SUPERB KS1-style test set: the 10 words of the test speakers, _unknown_ sampled from their
    # other words, _silence_ cut from the background recordings.
    if test_root.exists():
        shutil.rmtree(test_root)
    test_jobs = [j for j in jobs if j["split"] == "testing"]
    by_word = collections.defaultdict(list)
    for j in test_jobs:
        by_word[j["word"]].append(j)
    trng = random.Random(args.seed + 1)
    counts = {}
    for w in SUPERB_WORDS:
        for j in by_word[w]:
            d = test_root / w / j["dst"].name
            d.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(j["dst"], d)
        counts[w] = len(by_word[w])
    n_extra = max(1, round(sum(counts.values()) / len(SUPERB_WORDS)))
    unk_pool = sorted((j for j in test_jobs if j["word"] not in SUPERB_WORDS), key=lambda j: str(j["dst"]))
    unk = trng.sample(unk_pool, min(n_extra, len(unk_pool)))
    per_spk = collections.Counter()
    test_prov = []
    for j in unk:
        d = test_root / "_unknown_" / f"{j['spk']}_nohash_{per_spk[j['spk']]}.wav"
        per_spk[j["spk"]] += 1
        d.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(j["dst"], d)
        test_prov.append((d, j))
    counts["_unknown_"] = len(unk)
    sil_dir = test_root / "_silence_"
    sil_dir.mkdir(parents=True, exist_ok=True)
    sil_rows = []
    for i in range(n_extra):
        name = trng.choice(noise_names)
        n, row = noises[name]
        start = trng.randint(0, len(n) - SR)
        gain = trng.uniform(0.0, 1.0)
        d = sil_dir / f"{hashlib.sha1(f'{name}{i}'.encode()).hexdigest()[:8]}_nohash_{i}.wav"
        al.write_wav(d, n[start:start + SR] * gain, SR)
        sil_rows.append(dict(row, file=f"{TEST_DIR}/_silence_/{d.name}", start_s=start / SR, duration_s=1.0,
                             split="test_silence", note=f"gain={gain:.2f}"))
    counts["_silence_"] = n_extra

    # Provenance, speakers, licences, card.
    ver = engine_versions()
    prov = []
    for j, note in zip(jobs, notes):
        s = j["speaker"]
        prov.append(dict(file=f"{MAIN_DIR}/{j['word']}/{j['dst'].name}", package=f"tts:{s['engine']}",
                         version=ver[s["engine"]], source=f"voice={s['voice']} word={j['word']}",
                         note=note or "(settings unknown: rendered by an earlier run)", start_s=0.0, duration_s=1.0,
                         split=j["split"], eval=int(j["split"] != "training")))
    for d, j in test_prov:
        prov.append(dict(file=f"{TEST_DIR}/_unknown_/{d.name}", package=f"tts:{j['speaker']['engine']}",
                         version=ver[j["speaker"]["engine"]],
                         source=f"voice={j['speaker']['voice']} word={j['word']}",
                         note=f"copy of {MAIN_DIR}/{j['word']}/{j['dst'].name}",
                         start_s=0.0, duration_s=1.0, split="test_unknown", eval=1))
    for w in SUPERB_WORDS:
        for j in by_word[w]:
            prov.append(dict(file=f"{TEST_DIR}/{w}/{j['dst'].name}", package=f"tts:{j['speaker']['engine']}",
                             version=ver[j["speaker"]["engine"]],
                             source=f"voice={j['speaker']['voice']} word={w}",
                             note=f"copy of {MAIN_DIR}/{w}/{j['dst'].name}",
                             start_s=0.0, duration_s=1.0, split="test_word", eval=1))
    prov += [row for _, row in noises.values()] + sil_rows
    al.write_provenance(out / "provenance.tsv", prov)
    with open(out / "speakers.tsv", "w") as f:
        f.write("speaker\tengine\tvoice\tgroup\tsplit\trate\tpitch_cents\n")
        for s in sorted(speakers, key=lambda s: s["id"]):
            f.write(f"{s['id']}\t{s['engine']}\t{s['voice']}\t{s['group']}\t{s['split']}\t{s['rate']:.3f}\t"
                    f"{s['pitch']:.0f}\n")
    noise_pkgs = sorted({p for p, _, _ in noise_spec})
    tts_pkgs = ["espeak-ng-data", "flite", "festival", "festvox-kallpc16k", "festvox-kdlpc16k", "festvox-us-slt-hts"]
    al.save_copyrights(noise_pkgs, out / "licenses")
    for p in tts_pkgs:
        c = Path(f"/usr/share/doc/{p}/copyright")
        if c.exists():
            shutil.copyfile(c, out / "licenses" / f"{p}.copyright")

    nsplit = collections.Counter(j["split"] for j in jobs)
    nspk = collections.Counter(s["split"] for s in speakers)
    per_word = collections.Counter((j["word"], j["split"]) for j in jobs)
    hours = len(jobs) / 3600
    split_groups = collections.defaultdict(list)
    for g, s in split_of_group.items():
        split_groups[s].append(g)
    word_lines = [f"| {w} | {per_word[(w, 'training')]} | {per_word[(w, 'validation')]} | {per_word[(w, 'testing')]} |"
                  for w in WORDS]
    summary = (f"kws: {len(WORDS)} words, {len(speakers)} speakers from {len(voices)} base voices, {len(jobs)} clips "
               f"({hours:.2f} h): training {nsplit['training']}, validation {nsplit['validation']}, "
               f"testing {nsplit['testing']}; SUPERB test set {sum(counts.values())} clips {dict(counts)}")
    al.log(summary)
    engines = collections.Counter(s["engine"] for s in speakers)
    card = f"""# kws-local: keyword spotting in the Speech Commands layout (SYNTHETIC speech, real noise)

Built by `scripts/data/build_kws_local.py{' --small' if args.small else ''} --seed {args.seed}`.

**The speech in this set is synthetic**: every word is spoken by a text-to-speech engine
(espeak-ng {ver['espeak-ng']}, flite {ver['flite']}, festival {ver['festival']}). Accuracy on it
measures keyword spotting on synthetic voices, not on real speakers. Only the background noise is
real (recordings from Debian packages, listed below). Behind the voices there are only 5 recorded
people (flite/festival kal, awb, rms, slt, ked: diphone/HTS/cluster voices built from recordings);
all espeak-ng voices are formant synthesis variants.

## Layout
- `{MAIN_DIR}/`: as Speech Commands v0.02: one folder per word ({len(WORDS)} words),
  `<speaker>_nohash_<n>.wav` (16 kHz, mono, 16-bit, exactly 1.000 s), `_background_noise_/`,
  `validation_list.txt`, `testing_list.txt` (paths relative to the folder, `/`-separated).
- `{TEST_DIR}/`: a separate test set laid out like `speech_commands_test_set_v0.01/02`
  used by SUPERB KS1: folders `{' '.join(SUPERB_WORDS)} _unknown_ _silence_`, label = folder.
  The word folders copy the test-split clips of those words; `_unknown_` is a sample of the test
  speakers' other words; `_silence_` holds 1-s crops of the background files at random gain (0-1).
- `speakers.tsv`: speaker id -> engine, voice, voice group, split, rate, pitch.
  `provenance.tsv`: every file -> engine/package, voice, word, tempo, pitch, noise source, offset and SNR.

## Splits (voice-disjoint, consistent with the official hash rule)
A speaker is a base voice (espeak-ng accent + variant, or a flite/festival voice) with a
speaker-level rate (x0.8-1.2) and pitch (+-300 cents). Voices are grouped (espeak-ng by variant,
since the variant sets the voice quality across accents; flite/festival by the recorded person:
kal = flite kal/kal16 + festival kal_diphone, slt = flite slt + festival slt HTS) and whole groups
go to validation or testing (~10 % each, recorded-person and espeak groups separately). Each
speaker's 8-hex id is re-drawn until `which_set()` of TensorFlow's `input_data.py`
(SHA-1 of the name before `_nohash_`, mod 2^27) puts it in its group's split, so the lists and the
rule agree (checked by the builder).
- testing groups: {', '.join(sorted(split_groups['testing']))}
- validation groups: {', '.join(sorted(split_groups['validation']))}

## Counts
{len(speakers)} speakers ({', '.join(f'{e} {n}' for e, n in sorted(engines.items()))}) from {len(voices)} base voices;
speakers per split: training {nspk['training']}, validation {nspk['validation']}, testing {nspk['testing']}.
{len(jobs)} clips ({hours:.2f} h): training {nsplit['training']}, validation {nsplit['validation']},
testing {nsplit['testing']}. {'Every word is said once (--small).' if args.small else 'Core words (yes ... nine) are said 1-3 times per speaker, the others once.'}
SUPERB-style test set: {', '.join(f'{k} {v}' for k, v in counts.items())}.

| word | training | validation | testing |
|---|---|---|---|
""" + "\n".join(word_lines) + f"""

## How a clip is made
TTS render (once per base voice and word) -> sox: strip leading/trailing silence (-45 dB), tempo
(speaker rate x per-utterance +-5 %, sped up further if the word would exceed 0.95 s), pitch
(speaker pitch + per-utterance +-30 cents), 16 kHz -> peak-normalised to -12..-3 dBFS -> placed at
a random offset in 1.000 s -> in 80 % of clips a random 1-s crop of a `_background_noise_` file
added at an RMS SNR of 10-30 dB (speech RMS over the word's samples). Every random choice is seeded
from (--seed, speaker, word, repetition), so a rebuild is identical.

## Background noise and licences
`_background_noise_/` holds {len(noises)} files: real recordings ({', '.join(n for n in noise_names if 'noise' not in n)})
cut to {'10' if args.small else '90'} s, plus white and pink noise from sox.

""" + al.licence_table(noise_pkgs) + f"""

TTS engines (installed from Debian main by scripts/setup_data.sh; their copyright files are in
`licenses/`): {', '.join(tts_pkgs)}.
"""
    al.write_text_atomic(out / "DATASET.md", card)
    if not args.keep_tts_cache:
        shutil.rmtree(out / ".cache", ignore_errors=True)
    al.log(f"kws: wrote {out} in {timer}")


if __name__ == "__main__":
    main()
