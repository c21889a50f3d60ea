#!/usr/bin/python3
"""Plot a run directory's metrics.jsonl as PNG curves in RUN_DIR/plots/.

One figure per metric family (losses, accuracies, learning rate, other), training values against
step, validation values as markers. Needs Debian's python3-matplotlib.

  plot_metrics.py runs/finetune_esc50 [--out DIR]
"""
import argparse
import collections
import json
import math
import os
import sys


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir")
    p.add_argument("--out", help="output folder (default RUN_DIR/plots)")
    a = p.parse_args()
    path = os.path.join(a.run_dir, "metrics.jsonl")
    if not os.path.exists(path):
        sys.exit(f"error: '{path}' not found (is '{a.run_dir}' a run directory?)")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = collections.defaultdict(list)
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except ValueError:
                sys.exit(f"error: {path}:{n} is not JSON")
            step = row.get("step")
            for k, v in row.items():
                if k == "step" or not isinstance(v, (int, float)) or v is None or not math.isfinite(v):
                    continue
                series[k].append((step, v))
    if not series:
        sys.exit(f"error: '{path}' holds no metric values")

    def family(name):
        n = name.lower()
        if n == "lr":
            return "learning_rate"
        if "loss" in n:
            return "loss"
        if "acc" in n:
            return "accuracy"
        return "other"

    groups = collections.defaultdict(list)
    for k in sorted(series):
        groups[family(k)].append(k)
    out = a.out or os.path.join(a.run_dir, "plots")
    os.makedirs(out, exist_ok=True)
    written = []
    for fam, keys in groups.items():
        fig, ax = plt.subplots(figsize=(7, 4))
        for k in keys:
            xs, ys = zip(*series[k])
            style = "o-" if k.startswith("valid") else "-"
            ax.plot(xs, ys, style, label=k, markersize=3)
        ax.set_xlabel("step")
        ax.set_ylabel(fam.replace("_", " "))
        if fam == "loss" and all(v > 0 for k in keys for _, v in series[k]):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
        ax.set_title(os.path.basename(os.path.normpath(a.run_dir)))
        fig.tight_layout()
        target = os.path.join(out, fam + ".png")
        fig.savefig(target + ".tmp.png", dpi=100)
        os.replace(target + ".tmp.png", target)
        plt.close(fig)
        written.append(target)
    print("wrote " + ", ".join(written))


if __name__ == "__main__":
    main()
