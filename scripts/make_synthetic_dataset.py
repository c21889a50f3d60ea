#!/usr/bin/python3
"""Generate a small labelled audio set for tests and the demo: 4 classes of synthetic signals.

  tone   a harmonic tone (random pitch 200-2000 Hz, 1-3 harmonics) with vibrato
  noise  band-limited noise (random centre band)
  chirp  an exponential sweep up or down over the clip
  pulse  a click train (random rate 3-15 Hz)

Each clip is 1-8 s at 16 kHz (some at 44.1 kHz stereo to exercise resampling and downmixing),
with a random gain and a little white noise. Writes WAV files under OUT/audio/<class>/ and the
manifests OUT/{train,valid,test}.tsv (path, samples, label) and OUT/unlabeled.tsv (path, samples).
Deterministic for a given --seed. Needs only Debian's python3 + numpy.
"""
import argparse
import os
import wave

import numpy as np

CLASSES = ["tone", "noise", "chirp", "pulse"]


def synth(kind, n, sr, rng):
    t = np.arange(n) / sr
    if kind == "tone":
        f0 = rng.uniform(200, 2000)
        vib = 1 + 0.01 * np.sin(2 * np.pi * rng.uniform(3, 7) * t)
        x = sum(np.sin(2 * np.pi * f0 * h * np.cumsum(vib) / sr) / h for h in range(1, rng.integers(2, 5)))
    elif kind == "noise":
        w = rng.standard_normal(n)
        spec = np.fft.rfft(w)
        f = np.fft.rfftfreq(n, 1 / sr)
        fc = rng.uniform(500, 5000)
        spec *= np.exp(-0.5 * ((f - fc) / (0.3 * fc)) ** 2)
        x = np.fft.irfft(spec, n)
    elif kind == "chirp":
        f1, f2 = rng.uniform(100, 400), rng.uniform(2000, 6000)
        if rng.random() < 0.5:
            f1, f2 = f2, f1
        dur = n / sr
        k = (f2 / f1) ** (1 / dur)
        x = np.sin(2 * np.pi * f1 * (k ** t - 1) / np.log(k))
    else:
        rate = rng.uniform(3, 15)
        x = np.zeros(n)
        period = int(sr / rate)
        click = np.hanning(64) * np.sin(2 * np.pi * 3000 * np.arange(64) / sr)
        for s in range(int(rng.integers(0, period)), n - 64, period):
            x[s:s + 64] += click
    x = x / (np.abs(x).max() + 1e-9) * rng.uniform(0.2, 0.8)
    return x + 0.005 * rng.standard_normal(n)


def write_wav(path, x, sr, channels):
    x = np.clip(x, -1, 1)
    data = (x * 32767).astype("<i2")
    if channels == 2:
        data = np.stack([data, (data * 0.8).astype("<i2")], axis=1).reshape(-1)
    tmp = path + ".tmp"
    with wave.open(tmp, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(data.tobytes())
    os.replace(tmp, path)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("--per-class", type=int, default=24, help="clips per class (split 60/20/20)")
    p.add_argument("--min-seconds", type=float, default=1.0)
    p.add_argument("--max-seconds", type=float, default=8.0)
    p.add_argument("--unlabeled", type=int, default=24, help="extra unlabelled clips")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    rng = np.random.default_rng(a.seed)
    rows = {"train": [], "valid": [], "test": [], "unlabeled": []}
    for c in CLASSES:
        os.makedirs(os.path.join(a.out, "audio", c), exist_ok=True)
    os.makedirs(os.path.join(a.out, "audio", "unlabeled"), exist_ok=True)

    def make(kind, name, split, label):
        sec = rng.uniform(a.min_seconds, a.max_seconds)
        hi = rng.random() < 0.2  # some 44.1 kHz stereo files
        sr = 44100 if hi else 16000
        x = synth(kind, int(sec * sr), sr, rng)
        rel = os.path.join("audio", label or "unlabeled", name + ".wav")
        write_wav(os.path.join(a.out, rel), x, sr, 2 if hi else 1)
        n16 = int(round(len(x) * 16000 / sr))
        rows[split].append(f"{rel}\t{n16}" + (f"\t{label}" if label else ""))

    for c in CLASSES:
        for i in range(a.per_class):
            r = i % 5
            split = "train" if r < 3 else ("valid" if r == 3 else "test")
            make(c, f"{c}_{i:03d}", split, c)
    for i in range(a.unlabeled):
        make(CLASSES[i % len(CLASSES)], f"u_{i:03d}", "unlabeled", "")
    for split, lines in rows.items():
        with open(os.path.join(a.out, split + ".tsv"), "w") as f:
            f.write("\n".join(lines) + "\n")
    print(f"wrote {sum(len(v) for v in rows.values())} clips to {a.out}: "
          + ", ".join(f"{k} {len(v)}" for k, v in rows.items()))


if __name__ == "__main__":
    main()
