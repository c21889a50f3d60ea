#!/usr/bin/python3
"""Time the official HEAR Python model on this machine, for `hear-bench --compare-reference`.

Needs a checkout of the official code (github.com/HarunoriKawano/HEAR; not bundled) and Debian's
python3-torch + python3-torchaudio (+ python3-pydantic for its config classes). Prints one JSON
object: median and p90 seconds and the RTF of HEAR(...)(waveform, lengths) at batch 1.
"""
import argparse
import json
import statistics
import sys
import time


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repo", required=True, help="checkout of the official HEAR repository")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--classes", type=int, default=50)
    a = p.parse_args()
    import torch
    torch.set_num_threads(a.threads)
    sys.path.insert(0, a.repo)
    try:
        from src.config import AcousticModelConfig, ClassificationDecoderConfig, TaskModelConfig
        from src.hear import HEAR
    except Exception as e:  # noqa: BLE001
        raise SystemExit(f"error: cannot import the official HEAR code from '{a.repo}': {e}")
    model = HEAR(AcousticModelConfig(), TaskModelConfig(),
                 ClassificationDecoderConfig(num_classes=a.classes)).eval()
    samples = int(round(a.seconds * 16000))
    wave = torch.randn(1, 1, samples) * 0.1
    lengths = torch.tensor([samples])
    times = []
    with torch.inference_mode():
        for i in range(a.warmup + a.runs):
            t0 = time.perf_counter()
            model(wave, lengths)
            t = time.perf_counter() - t0
            if i >= a.warmup:
                times.append(t)
    times.sort()
    p90 = times[max(0, -(-9 * len(times) // 10) - 1)]
    med = statistics.median(times)
    print(json.dumps({"seconds": a.seconds, "threads": a.threads, "median_s": med, "p90_s": p90,
                      "rtf": med / a.seconds, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
