"""Helpers shared by the local benchmark set builders: sox calls, WAV I/O, archive members,
parallel jobs, the provenance TSV and the DATASET.md licence table.

Only the Python standard library and numpy; audio conversion is done by the `sox` program.
"""

import concurrent.futures
import hashlib
import os
import re
import subprocess
import sys
import time
import wave
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import debpkg  # noqa: E402

AUDIO_EXT = (".wav", ".ogg", ".mp3", ".flac", ".aif", ".aiff", ".gsm", ".oga")

# file: output path relative to the set's folder; package (+ version) and source (path inside the
# package, `archive!member` for archive members) name the recording; start_s/duration_s: the part
# used; split: the output's split/fold/category; eval: 1 when the output serves evaluation (the
# pre-training builder leaves such sources out); note: free text (TTS settings, mixing, gain).
PROVENANCE_HEADER = ["file", "package", "version", "source", "start_s", "duration_s", "split", "eval", "note"]


def log(msg):
    print(msg, flush=True)


def need_tools(*tools):
    missing = [t for t in tools if subprocess.run(["sh", "-c", f"command -v {t}"],
                                                  stdout=subprocess.DEVNULL).returncode != 0]
    if missing:
        sys.exit(f"error: missing programs {missing}; run scripts/setup_data.sh (apt-get install)")


def sox_input_args(path):
    """sox options that must precede an input file whose type sox cannot guess."""
    p = str(path).lower()
    if p.endswith(".gsm"):
        return ["-t", "gsm", "-r", "8000", "-c", "1"]
    if p.endswith(".sb"):
        return ["-t", "mp3"]
    return []


def soxi_batch(paths, flag="-D", conv=float, chunk=200):
    """{path: value} of `soxi <flag>` (-D duration, -r rate, -c channels, -s samples) over many files,
    in batches; None for a file soxi cannot read."""
    out = {}
    paths = [str(p) for p in paths]
    for i in range(0, len(paths), chunk):
        part = paths[i:i + chunk]
        r = subprocess.run(["soxi", flag, *part], capture_output=True, text=True)
        vals = r.stdout.split()
        if r.returncode == 0 and len(vals) == len(part):
            for p, v in zip(part, vals):
                out[p] = conv(float(v))
        else:
            for p in part:
                r1 = subprocess.run(["soxi", flag, p], capture_output=True, text=True)
                try:
                    out[p] = conv(float(r1.stdout.strip())) if r1.returncode == 0 else None
                except ValueError:
                    out[p] = None
    return out


def durations(paths, chunk=200):
    """Duration in seconds of each file (soxi -D, in batches); None for a file soxi cannot read."""
    return soxi_batch(paths, "-D", float, chunk)


def prime_channels(paths):
    """Fills the channel-count cache of many files with batched soxi calls."""
    todo = [str(p) for p in paths if str(p) not in _CHANNELS and not str(p).lower().endswith((".gsm", ".sb"))]
    for p, c in soxi_batch(todo, "-c", int).items():
        _CHANNELS[p] = c or 1


def gsm_duration(path):
    # Raw GSM 06.10: 33-byte frames of 160 samples at 8 kHz.
    return os.path.getsize(path) // 33 * 160 / 8000.0


def sox_convert(src, dst, rate, start=None, length=None, pad_to=None, effects=(), bits=16):
    """src -> mono `rate` Hz 16-bit WAV at dst, cut to [start, start+length) and zero-padded to
    pad_to seconds (then cut to exactly pad_to). Written atomically (tmp file + rename)."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp")
    cmd = ["sox", "-R", "-V1", *sox_input_args(src), str(src), "-r", str(rate), "-c", "1",
           "-b", str(bits), "-t", "wav", str(tmp)]
    eff = []
    if start is not None or length is not None:
        eff += ["trim", f"{start or 0:.6f}"] + ([f"{length:.6f}"] if length is not None else [])
    eff += list(effects)
    # Channel mix-down and resampling go last so that trim times refer to the source.
    eff += ["remix", "-"] if _channels(src) > 1 else []
    eff += ["rate", "-h", str(rate)]
    if pad_to is not None:
        eff += ["pad", "0", f"{pad_to:.6f}", "trim", "0", f"{int(round(pad_to * rate))}s"]
    r = subprocess.run(cmd + eff, capture_output=True, text=True)
    if r.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"sox failed on {src}: {r.stderr.strip()[-400:]}")
    os.replace(tmp, dst)


_CHANNELS = {}


def _channels(path):
    p = str(path)
    if p.lower().endswith((".gsm", ".sb")):
        return 1
    if p not in _CHANNELS:
        r = subprocess.run(["soxi", "-c", p], capture_output=True, text=True)
        _CHANNELS[p] = int(r.stdout.strip() or 1) if r.returncode == 0 else 1
    return _CHANNELS[p]


def read_wav(path):
    """(float32 samples in [-1, 1], shape (n,) for mono / (n, ch), sample rate) of a 16-bit WAV."""
    with wave.open(str(path), "rb") as w:
        n, ch, sw, sr = w.getnframes(), w.getnchannels(), w.getsampwidth(), w.getframerate()
        raw = w.readframes(n)
    if sw != 2:
        raise RuntimeError(f"{path}: {8 * sw}-bit WAV, expected 16-bit")
    x = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    return (x if ch == 1 else x.reshape(-1, ch)), sr


def write_wav(path, x, sr):
    """Mono float samples -> 16-bit PCM WAV, clipped, written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = np.clip(np.round(np.asarray(x, dtype=np.float64) * 32767.0), -32768, 32767).astype("<i2")
    tmp = path.with_name(path.name + ".tmp")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())
    os.replace(tmp, path)


def wav_frames(path):
    with wave.open(str(path), "rb") as w:
        return w.getnframes(), w.getframerate(), w.getnchannels()


def zip_members(zpath, pattern, dest_root):
    """Unpacks the members of zip `zpath` whose names match regex `pattern` under dest_root (skips
    those already there); returns {member name: unpacked path}."""
    out = {}
    with zipfile.ZipFile(zpath) as z:
        for info in z.infolist():
            if info.is_dir() or not re.search(pattern, info.filename):
                continue
            dst = Path(dest_root) / info.filename
            if not dst.exists() or dst.stat().st_size != info.file_size:
                dst.parent.mkdir(parents=True, exist_ok=True)
                tmp = dst.with_name(dst.name + ".tmp")
                with z.open(info) as f, open(tmp, "wb") as g:
                    while True:
                        b = f.read(1 << 20)
                        if not b:
                            break
                        g.write(b)
                os.replace(tmp, dst)
            out[info.filename] = dst
    return out


def md5_file(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def parallel(fn, items, jobs):
    """fn(item) for each item on `jobs` threads (the work is in sox subprocesses); results in order.
    The first exception is re-raised."""
    if jobs <= 1:
        return [fn(it) for it in items]
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as ex:
        return list(ex.map(fn, items))


def nice_self(level=10):
    """Builders are batch jobs on a shared machine: lower our (and our children's) priority."""
    try:
        os.nice(level)
    except OSError:
        pass


class Timer:
    def __init__(self):
        self.t0 = time.time()

    def __str__(self):
        return f"{time.time() - self.t0:.1f} s"


def write_provenance(path, rows):
    """rows: dicts with PROVENANCE_HEADER keys. Relative output paths, sorted, tab-separated."""
    rows = sorted(rows, key=lambda r: r["file"])
    tmp = Path(str(path) + ".tmp")
    with open(tmp, "w") as f:
        f.write("\t".join(PROVENANCE_HEADER) + "\n")
        for r in rows:
            vals = []
            for k in PROVENANCE_HEADER:
                v = r.get(k, "")
                if isinstance(v, float):
                    v = f"{v:.3f}"
                vals.append(str(v).replace("\t", " "))
            f.write("\t".join(vals) + "\n")
    os.replace(tmp, path)


def read_provenance(path):
    rows = []
    with open(path) as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            vals = line.rstrip("\n").split("\t")
            rows.append(dict(zip(header, vals)))
    return rows


def licence_table(pkgs, source_for=None):
    """Markdown table: package, version, download size, licences (from its copyright file)."""
    lines = ["| Package | Version | .deb MB | Licence (from usr/share/doc/<pkg>/copyright) |",
             "|---|---|---|---|"]
    for p in pkgs:
        src = source_for(p) if source_for else None
        deb = debpkg.download(p, src)
        text = debpkg.copyright_text(p, None, src)
        lines.append(f"| `{p}` | {debpkg.deb_version(deb)} | {deb.stat().st_size / 1e6:.1f} | "
                     f"{debpkg.licence_summary(text)} |")
    return "\n".join(lines)


def save_copyrights(pkgs, dest, source_for=None):
    """Copies each package's copyright file to dest/<pkg>.copyright (the licences travel with the data)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for p in pkgs:
        src = source_for(p) if source_for else None
        (dest / f"{p}.copyright").write_text(debpkg.copyright_text(p, None, src))


def write_text_atomic(path, text):
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def sha1_split(basename, validation_pct=10.0, testing_pct=10.0):
    """The Speech Commands split rule (TF input_data.which_set): hash of the name before `_nohash_`."""
    max_per_class = 2 ** 27 - 1  # MAX_NUM_WAVS_PER_CLASS in input_data.py
    h = re.sub(r"_nohash_.*$", "", os.path.basename(basename))
    p = (int(hashlib.sha1(h.encode("utf-8")).hexdigest(), 16) % (max_per_class + 1)) * (100.0 / max_per_class)
    if p < validation_pct:
        return "validation"
    if p < validation_pct + testing_pct:
        return "testing"
    return "training"


def qtbl_entries(path):
    """Entries of a Flight of the Amazon Queen data file with an embedded 'QTBL' table (queen.1c):
    [(name, offset, size)]. Layout: 'QTBL', a version string, big-endian u16 entry count at 0x0d,
    then 21-byte entries (12-byte NUL-padded name, 1-byte bundle, big-endian u32 offset and size)."""
    with open(path, "rb") as f:
        head = f.read(15)
        if head[:4] != b"QTBL":
            raise RuntimeError(f"{path}: no QTBL table")
        n = int.from_bytes(head[13:15], "big")
        table = f.read(21 * n)
    out = []
    for i in range(n):
        e = table[21 * i:21 * (i + 1)]
        name = e[:12].split(b"\0", 1)[0].decode("latin-1")
        out.append((name, int.from_bytes(e[13:17], "big"), int.from_bytes(e[17:21], "big")))
    return out


def qtbl_extract(path, names, dest, suffix=""):
    """Copies the named entries of a QTBL file to dest/<name><suffix> (skipping those present);
    returns {name: path}. FOTAQ's .SB entries are MP3: pass suffix='.mp3' so sox knows the type."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    want = set(names)
    out = {}
    with open(path, "rb") as f:
        for name, off, size in qtbl_entries(path):
            if name not in want:
                continue
            p = dest / (name + suffix)
            if not p.exists() or p.stat().st_size != size:
                f.seek(off)
                data = f.read(size)
                tmp = p.with_name(p.name + ".tmp")
                tmp.write_bytes(data)
                os.replace(tmp, p)
            out[name] = p
    return out
