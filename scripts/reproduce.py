#!/usr/bin/env python3
"""The paper's pipeline end to end on the local real-audio sets (scripts/reproduce.sh is the entry).

  1. local sets (scripts/data/build_*_local.py, resumable),
  2. stage 1 tokenizer and stage 2 MAM on pretrain-local,
  3. stage 3: esc-local (5-fold CV), sid-local, kws-local gscv2 and gscv1, each in the four Table IV
     settings (base / scratch / no_spectrum / transfer), several seeds where there are no folds,
  4. results/<preset>/table4.md, table3.md, runs/*.json and settings.png.

Every step is resumable: a finished run is skipped (its result lives in results/<preset>/runs/, which is
committed), an interrupted one continues from its `last` checkpoint. `--status` prints what is done,
what remains and an ETA from the measured time of the runs so far.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("HEAR_BIN", REPO / "build" / "release" / "bin"))
PY = "/usr/bin/python3"

PAPER_TABLE4 = {  # accuracy %, Table IV
    "base": {"esc": 84.9, "gscv1": 94.3, "gscv2": 95.1, "sid": 87.9},
    "scratch": {"esc": 62.1, "gscv1": 88.1, "gscv2": 89.5, "sid": 72.2},
    "no_spectrum": {"esc": 84.7, "gscv1": 94.7, "gscv2": 95.0, "sid": 87.6},
    "transfer": {"esc": 78.5, "gscv1": 95.1, "gscv2": 95.8, "sid": 76.0},
}
SETTINGS = ["base", "scratch", "no_spectrum", "transfer"]
TASK_NAMES = {"esc": "esc-local (ESC-50 layout)", "sid": "sid-local (VoxCeleb1 layout)",
              "gscv2": "kws-local GSCv2 (35 words)", "gscv1": "kws-local GSCv1 (12 classes)"}

# The fine-tuning grid of each preset: dataset overrides, epochs, seeds (folds give the spread on ESC).
# cpu: sized from hear-bench --train finetune on this 2-core machine (width 128, 4 layers): 26 clips/s
# at 5 s, ~45 at 3 s, 204 at 1 s. Measured per run: esc 5 folds x 5 epochs ~10 min, sid (2,339 x 4 s)
# ~2.5 min per epoch, gsc (9,991 x 1 s) ~1.5 min: ~100 minutes for the 40 runs. sid-local is near its
# ceiling after 2 epochs (base 95.8 %, scratch 96.0 %), so it gets 1 epoch.
PRESETS = {
    "cpu": {
        "configs": REPO / "configs" / "reproduce" / "cpu",
        "expected": "stages 1+2 ~65 min, fine-tuning grid ~90 min on a 2-core x86-64 (AVX-512) VM",
        "tasks": {
            "esc": {"args": ["data.format=esc50", "data.root=data/esc-local", "epochs=5",
                             "train.optimizer.lr=1e-3", "data.loader.sampler.batch_size=16"],
                    "seeds": [0], "cv": True},
            "sid": {"args": ["data.format=voxceleb1", "data.root=data/sid-local", "epochs=1",
                             "train.optimizer.lr=1e-3", "data.loader.sampler.batch_size=16"],
                    "seeds": [0, 1, 2]},
            "gscv2": {"args": ["data.format=speech_commands", "data.protocol=gscv2",
                               "data.root=data/kws-local/speech_commands_v0.02", "epochs=1",
                               "train.optimizer.lr=1e-3", "data.loader.sampler.batch_size=32"],
                      "seeds": [0, 1, 2]},
            "gscv1": {"args": ["data.format=speech_commands", "data.protocol=gscv1",
                               "data.root=data/kws-local/speech_commands_v0.02",
                               "data.test_root=data/kws-local/speech_commands_test_set_v0.02",
                               "epochs=1", "train.optimizer.lr=1e-3",
                               "data.loader.sampler.batch_size=32"],
                      "seeds": [0, 1, 2]},
        },
    },
    "paper": {
        "configs": REPO / "configs",
        "expected": ("the paper's schedules: tokenizer 540k x 64 and MAM 450k x 128 six-second "
                     "segments; at the measured 2.46 s per 16-clip fine-tuning step and ~1.4 s per "
                     "8-segment MAM step on this CPU that is roughly 2.5 years of stage 2 alone: run "
                     "it on GPUs (train.device=cuda, torchrun for several)"),
        "tasks": {
            "esc": {"config": "finetune/esc50.yaml", "args": ["data.root=data/esc-local"],
                    "seeds": [0], "cv": True},
            "sid": {"config": "finetune/voxceleb.yaml", "args": ["data.root=data/sid-local"],
                    "seeds": [0, 1, 2]},
            "gscv2": {"config": "finetune/gscv2.yaml",
                      "args": ["data.root=data/kws-local/speech_commands_v0.02"], "seeds": [0, 1, 2]},
            "gscv1": {"config": "finetune/gscv1.yaml",
                      "args": ["data.root=data/kws-local/speech_commands_v0.02",
                               "data.test_root=data/kws-local/speech_commands_test_set_v0.02"],
                      "seeds": [0, 1, 2]},
        },
    },
}


def log(msg):
    print(f"[reproduce {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run(cmd, log_file):
    log(" ".join(str(c) for c in cmd) + f"  (log: {log_file})")
    log_file.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    with open(log_file, "a") as f:
        rc = subprocess.call([str(c) for c in cmd], stdout=f, stderr=subprocess.STDOUT, cwd=REPO)
    if rc != 0:
        tail = "".join(open(log_file).readlines()[-15:])
        sys.exit(f"reproduce: step failed (exit {rc}): {' '.join(map(str, cmd))}\n{tail}")
    return time.time() - t0


def stage(program, config, run_dir, export, extra, log_file):
    """Runs a stage program unless its export exists; continues an interrupted run."""
    run_dir = REPO / run_dir
    if (run_dir / export).exists():
        log(f"{program}: done ({run_dir / export})")
        return 0.0
    if (run_dir / "checkpoints").exists():
        return run([BIN / program, "--resume", run_dir], log_file)
    return run([BIN / program, "--config", config, f"run_dir={run_dir}", *extra], log_file)


def build_sets():
    for name, check in [("esc", "esc-local/meta/esc50.csv"), ("kws", "kws-local/DATASET.md"),
                        ("sid", "sid-local/iden_split.txt"), ("pretrain", "pretrain-local/manifest.tsv")]:
        if (REPO / "data" / check).exists():
            log(f"{name}-local: present")
            continue
        run([PY, REPO / "scripts" / "data" / f"build_{name}_local.py"],
            REPO / "runs" / "reproduce" / "logs" / f"build_{name}.log")


def pretrain_stages(preset, work, use_shipped=True):
    cfg = PRESETS[preset]["configs"]
    # Weights committed by an earlier run (models/<name>/) are used as they are: on a fresh clone
    # the grid continues from them instead of pre-training again.
    shipped = REPO / "models" / MODEL_NAMES.get(preset, "-")
    for s, export in [("tokenizer", "tokenizer.safetensors"),
                      ("pretrain", "acoustic_model.safetensors")]:
        run_dir = REPO / work / s
        if use_shipped and (shipped / export).exists() and not (run_dir / export).exists() and \
                not (run_dir / "checkpoints").exists():
            run_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shipped / export, run_dir / export)
            (run_dir / "SHIPPED").write_text(f"copied from {shipped / export}\n")
            log(f"{s}: the shipped {(shipped / export).relative_to(REPO)}")
    t = stage("hear-tokenizer-train", cfg / "tokenizer.yaml", work / "tokenizer",
              "tokenizer.safetensors", [], work / "logs" / "tokenizer.log")
    t += stage("hear-pretrain", cfg / "pretrain.yaml", work / "pretrain", "acoustic_model.safetensors",
               [f"tokenizer_weights={REPO / work / 'tokenizer' / 'tokenizer.safetensors'}"],
               work / "logs" / "pretrain.log")
    return t


MODEL_NAMES = {"cpu": "hear-cpu-w128-l4"}


def iterate(preset, work, results):
    """BEATs-style iteration (issue 14): tokenizer 1 distilled from MAM 0's acoustic model
    (teacher.kind hear), MAM 1 on it, then Base fine-tuning on esc-local and sid-local exactly as in
    the grid; results/<preset>/iteration1/ (runs/*.json, iteration.md) beside the grid's."""
    cfg = PRESETS[preset]["configs"]
    name = MODEL_NAMES[preset]
    mam0 = REPO / work / "pretrain" / "acoustic_model.safetensors"
    if not mam0.exists():
        mam0 = REPO / "models" / name / "acoustic_model.safetensors"  # the shipped MAM 0
    it = work / "iteration1"
    committed = REPO / "models" / f"{name}-iter1" / "tokenizer.safetensors"  # tokenizer 1
    if committed.exists() and not (REPO / it / "tokenizer" / "tokenizer.safetensors").exists():
        (REPO / it / "tokenizer").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(committed, REPO / it / "tokenizer" / "tokenizer.safetensors")
        shutil.copyfile(results / "iteration1" / "tokenizer_metrics.csv",
                        REPO / it / "tokenizer" / "metrics.csv")
        log(f"tokenizer 1: the committed {committed}")
    arch = model_arch(cfg / "model.yaml")
    teacher = [f"teacher.hear_model.{k}={v}" for k, v in arch.items()]
    stage("hear-tokenizer-train", cfg / "tokenizer.yaml", it / "tokenizer", "tokenizer.safetensors",
          ["teacher.kind=hear", f"teacher.weights={mam0}", *teacher], it / "logs" / "tokenizer.log")
    stage("hear-pretrain", cfg / "pretrain.yaml", it / "pretrain", "acoustic_model.safetensors",
          [f"tokenizer_weights={REPO / it / 'tokenizer' / 'tokenizer.safetensors'}"],
          it / "logs" / "pretrain.log")
    ship_iteration(preset, it, mam0)
    out = results / "iteration1"
    mam1 = REPO / it / "pretrain" / "acoustic_model.safetensors"
    for task in ("esc", "sid"):
        for seed in PRESETS[preset]["tasks"][task]["seeds"]:
            finetune_run(preset, it, out, task, "base", seed, mam1)
    iteration_table(preset, work, it, results)


# Investigation trials of the cpu preset (issue 14: why Base does not beat Scratch on esc / sid).
# A trial either pre-trains its own MAM (`pretrain`: MAM 0's stage 2, same tokenizer 0, data,
# steps and seed, plus these overrides) or reuses MAM 0, then fine-tunes `setting` (default base)
# with the grid's schedule plus `finetune` overrides on `tasks` (default esc and sid).
TRIALS = {
    "cpu": {
        "scratch_no_spectrum": {
            "setting": "scratch", "finetune": ["model.use_spectrogram=false"],
            "what": "Scratch without the spectrum branch (the pair of w/o Spectrum: is pre-training "
                    "worth anything to the acoustic path alone?)"},
        "frozen_random_no_spectrum": {
            "setting": "scratch", "tasks": ["esc"],
            "finetune": ["model.use_spectrogram=false", "model.freeze_acoustic_model=true"],
            "what": "a frozen random acoustic model, no spectrum branch: the task model on random "
                    "features"},
        "frozen_mam0_no_spectrum": {
            "setting": "transfer", "tasks": ["esc"], "finetune": ["model.use_spectrogram=false"],
            "what": "frozen MAM 0, no spectrum branch: a probe of the pre-trained features"},
        "mask65": {"pretrain": ["model.mask_rate=0.655"], "tasks": ["esc"],
                   "what": "MAM with 65.5 % masking (the reference's effective rate) instead of "
                           "40 %, then Base"},
    },
}


def trials(preset, work, results, names):
    name0 = MODEL_NAMES[preset]
    tokenizer = REPO / work / "tokenizer" / "tokenizer.safetensors"
    mam0 = REPO / work / "pretrain" / "acoustic_model.safetensors"
    if not mam0.exists():  # the shipped iteration 0
        tokenizer = REPO / "models" / name0 / "tokenizer.safetensors"
        mam0 = REPO / "models" / name0 / "acoustic_model.safetensors"
    cfg = PRESETS[preset]["configs"]
    for name in names:
        if name not in TRIALS.get(preset, {}):
            sys.exit(f"reproduce: unknown trial '{name}' (known: {', '.join(TRIALS.get(preset, {}))})")
        trial, tw = TRIALS[preset][name], work / "trials" / name
        out = results / "trials" / name
        out.mkdir(parents=True, exist_ok=True)
        mam = mam0
        if "pretrain" in trial:
            stage("hear-pretrain", cfg / "pretrain.yaml", tw / "pretrain",
                  "acoustic_model.safetensors", [f"tokenizer_weights={tokenizer}", *trial["pretrain"]],
                  tw / "logs" / "pretrain.log")
            shutil.copyfile(REPO / tw / "pretrain" / "metrics.csv", out / "pretrain_metrics.csv")
            mam = REPO / tw / "pretrain" / "acoustic_model.safetensors"
        for task in trial.get("tasks", ["esc", "sid"]):
            for seed in PRESETS[preset]["tasks"][task]["seeds"]:
                finetune_run(preset, tw, out, task, trial.get("setting", "base"), seed, mam,
                             trial.get("finetune", []))
    trials_table(preset, results)


def trials_table(preset, results):
    mam0 = csv_rows(results / "pretrain_metrics.csv")
    lines = [f"# Investigation trials ({preset} preset)", "",
             "Written by `scripts/reproduce.sh --preset " + preset + " --stages trials`. The grid's "
             "settings first (MAM 0: 40 % masking, masked accuracy "
             f"{last_mean(mam0, 'masked_acc'):.4f}), then each trial: a fine-tuning variant on MAM 0, "
             "or a MAM pre-trained with one change (its masked accuracy: mean of the last 8 report "
             "intervals), fine-tuned with the grid's schedule. Accuracy %, mean +- std over the 5 "
             "esc-local folds / 3 sid-local seeds.", "",
             "| run | what | esc-local | sid-local |", "|---|---|---|---|"]
    for setting in SETTINGS:
        lines.append(f"| grid: {setting} | Table IV setting | {accuracy_cell(results, 'esc', setting)} "
                     f"| {accuracy_cell(results, 'sid', setting)} |")
    for name, trial in TRIALS.get(preset, {}).items():
        out = results / "trials" / name
        if not (out / "runs").exists():
            continue
        what = trial["what"]
        if (out / "pretrain_metrics.csv").exists():
            acc = last_mean(csv_rows(out / "pretrain_metrics.csv"), "masked_acc")
            what += f" (masked accuracy {acc:.4f})"
        setting = trial.get("setting", "base")
        lines.append(f"| {name} | {what} | {accuracy_cell(out, 'esc', setting)} | "
                     f"{accuracy_cell(out, 'sid', setting)} |")
    (results / "trials").mkdir(parents=True, exist_ok=True)
    (results / "trials" / "trials.md").write_text("\n".join(lines) + "\n")
    log(f"wrote {results / 'trials' / 'trials.md'}")


def accuracy_cell(rdir, task, setting):
    """mean +- std (n) over every fold / seed of rdir/runs/TASK__SETTING__seed*.json."""
    v = []
    for f in sorted((rdir / "runs").glob(f"{task}__{setting}__seed*.json")):
        v.extend(100 * x for x in json.load(open(f))["per_fold_or_run"])
    if not v:
        return "-"
    return f"{statistics.mean(v):.1f} +- {statistics.stdev(v) if len(v) > 1 else 0:.1f} (n={len(v)})"


def last_mean(rows, key, n=8):
    tail = rows[-n:]
    return sum(r[key] for r in tail) / len(tail)


def ship_iteration(preset, it, mam0):
    """models/<name>-iter1/: tokenizer 1, MAM 1's acoustic model, their configs and MODEL.md."""
    name = f"{MODEL_NAMES[preset]}-iter1"
    dest = REPO / "models" / name
    dest.mkdir(parents=True, exist_ok=True)
    cfg = PRESETS[preset]["configs"]
    for src in (REPO / it / "tokenizer" / "tokenizer.safetensors",
                REPO / it / "pretrain" / "acoustic_model.safetensors"):
        if not (dest / src.name).exists() or sha256(dest / src.name) != sha256(src):
            shutil.copyfile(src, dest / src.name)
    shutil.copyfile(REPO / it / "tokenizer" / "config.yaml", dest / "tokenizer_train.yaml")
    shutil.copyfile(REPO / it / "pretrain" / "config.yaml", dest / "pretrain.yaml")
    shutil.copyfile(cfg / "model.yaml", dest / "model.yaml")
    tok, mam = csv_rows(REPO / it / "tokenizer" / "metrics.csv"), metrics(it / "pretrain")
    files = sorted(p for p in dest.iterdir() if p.is_file() and p.name != "MODEL.md")
    size = sum(p.stat().st_size for p in files)
    lines = [
        f"# {name}", "",
        f"Iteration 1 of the BEATs-style self-distillation of `scripts/reproduce.sh --preset {preset} "
        "--stages iterate` (issue 14), the same architecture as "
        f"`models/{MODEL_NAMES[preset]}` (width 128, 4 layers; `model.yaml`):", "",
        f"- **tokenizer 1** (`tokenizer_train.yaml`): {tok[-1]['step']:.0f} steps x 16 six-second "
        "blocks of pretrain-local with `teacher.kind: hear`, distilling the final-layer features of "
        f"MAM 0's acoustic model (`{mam0.relative_to(REPO)}`). Last 8 report intervals: "
        f"reconstruction {last_mean(tok, 'reconstruction'):.4f}, distillation "
        f"{last_mean(tok, 'distillation'):.4f}, hard codes used per batch "
        f"{last_mean(tok, 'codes_used'):.0f} of 1024, soft perplexity "
        f"{last_mean(tok, 'perplexity'):.0f}.",
        f"- **MAM 1** (`pretrain.yaml`, MAM 0's config on tokenizer 1): {mam[-1]['step']} steps x 16 "
        f"blocks, 40 % masking; MAM loss {last_mean(mam, 'loss'):.4f}, masked accuracy "
        f"{last_mean(mam, 'masked_acc'):.4f} (last 8 report intervals; first: "
        f"{mam[0]['masked_acc']:.4f}). Masked accuracy is not comparable with MAM 0's: the "
        "targets are another tokenizer's codes.",
        "- downstream (Base on esc-local and sid-local against iteration 0 and Scratch): "
        "`results/cpu/iteration1/iteration.md`.", "",
        f"Fine-tune: `hear-finetune --config models/{MODEL_NAMES[preset]}/finetune.yaml "
        f"pretrained=models/{name}/acoustic_model.safetensors data.format=... data.root=...`.", "",
        f"## Files ({size / 1e6:.2f} MB)", "", "| file | bytes | SHA-256 |", "|---|---|---|"]
    lines += [f"| {p.name} | {p.stat().st_size} | `{sha256(p)}` |" for p in files]
    (dest / "MODEL.md").write_text("\n".join(lines) + "\n")
    if size > 10e6:
        sys.exit(f"reproduce: {dest} is {size / 1e6:.1f} MB (> 10 MB)")
    log(f"shipped {dest} ({size / 1e6:.2f} MB)")


def model_arch(model_yaml):
    """The acoustic_model section of a model.yaml (flow mapping of ints)."""
    for line in open(model_yaml):
        if line.startswith("acoustic_model:"):
            body = line.split("{", 1)[1].rsplit("}", 1)[0]
            return {k.strip(): int(v) for k, v in (kv.split(":") for kv in body.split(","))}
    sys.exit(f"reproduce: no acoustic_model section in {model_yaml}")


def iteration_table(preset, work, it, results):
    tok1 = csv_rows(REPO / it / "tokenizer" / "metrics.csv")
    mam1 = metrics(it / "pretrain")
    tok0 = [r for r in csv_rows(results / "tokenizer_metrics.csv")]
    mam0 = [r for r in csv_rows(results / "pretrain_metrics.csv")]
    lines = [f"# teacher.kind hear: one BEATs-style iteration ({preset} preset)", "",
             "Tokenizer 1 is distilled from MAM 0's acoustic model (the shipped "
             f"`models/{MODEL_NAMES[preset]}`), MAM 1 is pre-trained on tokenizer 1 with MAM 0's "
             "config, and Base is fine-tuned from each exactly as in the grid. Accuracy %, mean +- "
             "std over the 5 esc-local folds / 3 sid-local seeds; tokenizer and MAM figures are "
             "means of the last 8 report intervals.", "",
             "| | codes used / batch | perplexity | masked acc | esc-local Base | sid-local Base |",
             "|---|---|---|---|---|---|",
             f"| iteration 0 (teacher none) | {last_mean(tok0, 'codes_used'):.0f} | "
             f"{last_mean(tok0, 'perplexity'):.0f} | {last_mean(mam0, 'masked_acc'):.4f} | "
             f"{accuracy_cell(results, 'esc', 'base')} | {accuracy_cell(results, 'sid', 'base')} |",
             f"| iteration 1 (teacher hear) | {last_mean(tok1, 'codes_used'):.0f} | "
             f"{last_mean(tok1, 'perplexity'):.0f} | {last_mean(mam1, 'masked_acc'):.4f} | "
             f"{accuracy_cell(results / 'iteration1', 'esc', 'base')} | "
             f"{accuracy_cell(results / 'iteration1', 'sid', 'base')} |",
             f"| Scratch (no pre-training) | | | | {accuracy_cell(results, 'esc', 'scratch')} | "
             f"{accuracy_cell(results, 'sid', 'scratch')} |"]
    out = results / "iteration1"
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO / it / "pretrain" / "metrics.csv", out / "pretrain_metrics.csv")
    (out / "iteration.md").write_text("\n".join(lines) + "\n")
    log(f"wrote {out / 'iteration.md'}")


def csv_rows(path):
    import csv
    return [{k: float(v) for k, v in r.items() if v != ""} for r in csv.DictReader(open(path))]


def sha256(path):
    import hashlib
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def metrics(run_dir):
    rows = [json.loads(l) for l in open(REPO / run_dir / "metrics.jsonl")]
    return [r for r in rows if "loss" in r]


def loss_curve(work, out_png):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(11, 3))
    tok, mam = metrics(work / "tokenizer"), metrics(work / "pretrain")
    axes[0].plot([r["step"] for r in tok], [r["reconstruction"] for r in tok])
    axes[0].set_title("stage 1: reconstruction loss")
    axes[1].plot([r["step"] for r in mam], [r["loss"] for r in mam])
    axes[1].set_title("stage 2: MAM loss")
    axes[2].plot([r["step"] for r in mam], [r["masked_acc"] for r in mam])
    axes[2].set_title("stage 2: masked accuracy")
    for ax in axes:
        ax.set_xlabel("step")
    fig.tight_layout()
    fig.savefig(out_png, dpi=90)


def ship(preset, work):
    """models/<name>/: the acoustic model and tokenizer, their config, finetune.yaml, MODEL.md."""
    name = MODEL_NAMES[preset]
    dest = REPO / "models" / name
    if (REPO / work / "pretrain" / "SHIPPED").exists():
        log(f"{dest.relative_to(REPO)}: kept (stages 1+2 came from it)")
        return
    dest.mkdir(parents=True, exist_ok=True)
    acoustic = REPO / work / "pretrain" / "acoustic_model.safetensors"
    tokenizer = REPO / work / "tokenizer" / "tokenizer.safetensors"
    for src in (acoustic, tokenizer):
        shutil.copyfile(src, dest / src.name)
    cfg = PRESETS[preset]["configs"]
    shutil.copyfile(cfg / "tokenizer.yaml", dest / "tokenizer_train.yaml")
    shutil.copyfile(cfg / "pretrain.yaml", dest / "pretrain.yaml")
    shutil.copyfile(cfg / "model.yaml", dest / "model.yaml")
    ft = (cfg / "finetune.yaml").read_text()
    ft = ft.replace("pretrained: runs/reproduce/cpu/pretrain/acoustic_model.safetensors",
                    "pretrained: ${CONFIG_DIR}/acoustic_model.safetensors")
    ft = ft.replace("run_dir: runs/reproduce/cpu/finetune/run", f"run_dir: runs/finetune_{name}")
    ft = ("# Fine-tune the shipped weights: hear-finetune --config models/" + name + "/finetune.yaml\n"
          "#   data.format=esc50|speech_commands|voxceleb1 data.root=DIR [data.protocol=gscv1|gscv2]\n"
          "#   [setting=scratch for the baseline]. `pretrained` is found beside this file.\n" + ft)
    (dest / "finetune.yaml").write_text(ft)
    loss_curve(work, dest / "loss_curve.png")
    tok, mam = metrics(work / "tokenizer"), metrics(work / "pretrain")
    last_tok, last_mam = tok[-1], mam[-1]
    tail = mam[-8:]
    files = sorted(p for p in dest.iterdir() if p.is_file() and p.name != "MODEL.md")
    size = sum(p.stat().st_size for p in files)
    lines = [
        f"# {name}", "",
        f"A HEAR acoustic model pre-trained by `scripts/reproduce.sh --preset {preset}` on this "
        "project's 2-core CPU machine: width 128, 4 relative-position Transformer layers "
        "(the paper's is 384 x 6), MAM over a frozen Gumbel tokenizer (1024 codes x 32).", "",
        "## Data",
        "pretrain-local (`scripts/data/build_pretrain_local.py`): 15,954 files, 21.72 h of real "
        "recordings from Debian packages (speech 11.33 h, sound effects 1.63 h, music 8.76 h), "
        "every downstream evaluation source excluded; consecutive <= 6 s blocks, blocks < 1 s "
        "dropped (20,837 blocks per epoch).", "",
        "## Training",
        f"- stage 1 (`tokenizer_train.yaml`): {last_tok['step']} steps x 16 blocks, teacher.kind "
        f"none (no SSAST checkpoint here); final reconstruction {last_tok['reconstruction']:.4f}, "
        f"diversity {last_tok['diversity']:.5f}, tau {last_tok['tau']:.3f}, hard codes used per "
        f"batch {last_tok['codes_used']:.0f} of 1024, soft perplexity {last_tok['perplexity']:.0f}.",
        f"- stage 2 (`pretrain.yaml`): {last_mam['step']} steps x 16 blocks, 40 % masking; final "
        f"MAM loss {statistics.mean(r['loss'] for r in tail):.4f} and masked accuracy "
        f"{statistics.mean(r['masked_acc'] for r in tail):.4f} (mean of the last {len(tail)} "
        f"report intervals; first interval: loss {mam[0]['loss']:.4f}, masked accuracy "
        f"{mam[0]['masked_acc']:.4f}).",
        "- curves: `loss_curve.png`.", "",
        "## Use",
        f"`hear-finetune --config models/{name}/finetune.yaml data.format=esc50 data.root=DIR` "
        f"(add `setting=scratch` for the baseline); `hear-embed --config models/{name}/model.yaml -w "
        f"models/{name}/acoustic_model.safetensors FILES -o OUT` embeds with the acoustic model "
        "alone (`model.yaml`: the architecture).", "",
        f"## Files ({size / 1e6:.2f} MB)", "", "| file | bytes | SHA-256 |", "|---|---|---|"]
    lines += [f"| {p.name} | {p.stat().st_size} | `{sha256(p)}` |" for p in files]
    (dest / "MODEL.md").write_text("\n".join(lines) + "\n")
    if size > 10e6:
        sys.exit(f"reproduce: {dest} is {size / 1e6:.1f} MB (> 10 MB)")
    log(f"shipped {dest} ({size / 1e6:.2f} MB)")


def grid_runs(preset, tasks=None, settings=None):
    out = []
    for task, spec in PRESETS[preset]["tasks"].items():
        for setting in SETTINGS:
            for seed in spec["seeds"]:
                if (not tasks or task in tasks) and (not settings or setting in settings):
                    out.append((task, setting, seed))
    return out


def result_path(results, task, setting, seed):
    return results / "runs" / f"{task}__{setting}__seed{seed}.json"


def finetune_run(preset, work, results, task, setting, seed, pretrained, extra=()):
    spec = PRESETS[preset]["tasks"][task]
    out = result_path(results, task, setting, seed)
    if out.exists():
        return 0.0
    run_dir = REPO / work / "finetune" / f"{task}__{setting}__seed{seed}"
    config = (PRESETS[preset]["configs"] / "finetune.yaml" if "config" not in spec
              else REPO / "configs" / spec["config"])
    args = [*spec["args"], f"setting={setting}", f"train.seed={seed}", f"pretrained={pretrained}",
            *extra]
    log_file = work / "logs" / f"finetune__{task}__{setting}__seed{seed}.log"
    if (run_dir / "checkpoints").exists() or (run_dir / "fold1" / "checkpoints").exists():
        cmd = [BIN / "hear-finetune", "--resume", run_dir]
    else:
        cmd = [BIN / "hear-finetune", "--config", config, f"run_dir={run_dir}", *args]
    seconds = run(cmd, log_file)
    if spec.get("cv"):
        cv = json.load(open(run_dir / "cv.json"))
        accuracy, runs = cv["mean_accuracy"], [f["accuracy"] for f in cv["folds"]]
    else:
        test = json.load(open(run_dir / "test.json"))
        accuracy, runs = test["accuracy"], [test["accuracy"]]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    json.dump({"task": task, "setting": setting, "seed": seed, "accuracy": accuracy,
               "per_fold_or_run": runs, "wall_s": seconds, "command": [str(c) for c in cmd],
               "preset": preset}, open(tmp, "w"), indent=2)
    tmp.rename(out)
    return seconds


def table4(preset, results):
    rows = {}
    for f in sorted((results / "runs").glob("*.json")):
        r = json.load(open(f))
        rows.setdefault((r["task"], r["setting"]), []).extend(r["per_fold_or_run"])
    tasks = list(PRESETS[preset]["tasks"])
    lines = [f"# Table IV on the local sets ({preset} preset)", "",
             "Accuracy % as mean +- std over folds (esc-local, 5-fold CV) or seeds (others), "
             "n = number of runs; the paper's Table IV (real ESC-50 / Speech Commands / VoxCeleb1, "
             "the 15 M model pre-trained on 10,000 h) in brackets, for orientation only.", "",
             "| setting | " + " | ".join(TASK_NAMES[t] for t in tasks) + " |",
             "|---|" + "---|" * len(tasks)]
    for s in SETTINGS:
        cells = []
        for t in tasks:
            v = [100 * x for x in rows.get((t, s), [])]
            paper = PAPER_TABLE4[s][t]
            if not v:
                cells.append(f"- ({paper})")
            else:
                sd = statistics.stdev(v) if len(v) > 1 else 0.0
                cells.append(f"{statistics.mean(v):.1f} +- {sd:.1f} (n={len(v)}) ({paper})")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    (results / "table4.md").write_text("\n".join(lines) + "\n")
    return rows


def plot(preset, results, rows):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib missing: no settings.png")
        return
    tasks = list(PRESETS[preset]["tasks"])
    fig, ax = plt.subplots(figsize=(8, 3.5))
    width = 0.2
    for i, s in enumerate(SETTINGS):
        means = [100 * statistics.mean(rows[(t, s)]) if rows.get((t, s)) else 0 for t in tasks]
        sds = [100 * statistics.stdev(rows[(t, s)]) if len(rows.get((t, s), [])) > 1 else 0
               for t in tasks]
        ax.bar([k + (i - 1.5) * width for k in range(len(tasks))], means, width, yerr=sds,
               label=s, capsize=2)
    ax.set_xticks(range(len(tasks)))
    ax.set_xticklabels([TASK_NAMES[t].split(" (")[0] for t in tasks])
    ax.set_ylabel("accuracy %")
    ax.set_title(f"HEAR {preset} preset: Table IV settings on the local sets")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(results / "settings.png", dpi=100)


def table3(preset, results, work):
    """Params, G MACs and RTF (10 s, 1 thread) of the preset model and of the paper model."""
    lines = [f"# Table III quantities on this machine ({preset} preset)", "",
             "| model | parameters | G MACs (10 s) | RTF (10 s, 1 thread) |", "|---|---|---|---|"]
    cfg = PRESETS[preset]["configs"] / "model.yaml"
    models = ([("preset model", ["--config", cfg])] if cfg.exists() else []) + [("paper model", [])]
    for name, extra in models:
        out = work / f"bench_{name.split()[0]}.json"
        run([BIN / "hear-bench", *extra, "--seconds", "10", "--threads", "1", "--json", out],
            work / "logs" / "bench.log")
        b = json.load(open(REPO / out))
        L = b["lengths"][0]
        lines.append(f"| {name} | {b['parameters']['hear_classifier']:,} | "
                     f"{L['total_macs'] / 1e9:.2f} | {L['timing']['total']['rtf']:.4f} |")
    (results / "table3.md").write_text("\n".join(lines) + "\n")


def status(preset, work, results):
    done = [r for r in grid_runs(preset) if result_path(results, *r).exists()]
    todo = [r for r in grid_runs(preset) if not result_path(results, *r).exists()]
    times = [json.load(open(result_path(results, *r)))["wall_s"] for r in done]
    for s, e in [("tokenizer", "tokenizer.safetensors"), ("pretrain", "acoustic_model.safetensors")]:
        p = REPO / work / s
        shipped = REPO / "models" / MODEL_NAMES.get(preset, "-") / e
        state = "done" if (p / e).exists() else (
            "interrupted (resumable)" if (p / "checkpoints").exists() else
            f"shipped ({shipped.relative_to(REPO)}; rerun not needed)" if shipped.exists() else
            "not started")
        print(f"stage {s}: {state}")
    eta = statistics.mean(times) * len(todo) if times else None
    print(f"fine-tuning grid: {len(done)} of {len(done) + len(todo)} runs done"
          + (f", ETA {eta / 60:.0f} min" if eta else ""))
    for r in todo[:8]:
        print("  to do:", *r)
    # The optional stages (--stages iterate, trials): finished fine-tuning results per folder.
    seeds = {t: len(spec["seeds"]) for t, spec in PRESETS[preset]["tasks"].items()}
    for label, folder, tasks in [("iterate", results / "iteration1", ["esc", "sid"])] + [
            (f"trial {n}", results / "trials" / n, t.get("tasks", ["esc", "sid"]))
            for n, t in TRIALS.get(preset, {}).items()]:
        done = len(list((folder / "runs").glob("*.json"))) if (folder / "runs").exists() else 0
        print(f"{label}: {done} of {sum(seeds[t] for t in tasks)} fine-tuning runs done")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    ap.add_argument("--stages", default="data,pretrain,ship,grid,tables",
                    help="comma-separated subset of data,pretrain,ship,grid,tables; also "
                         "'iterate' (not by default): tokenizer 1 distilled from MAM 0 "
                         "(teacher.kind hear) -> MAM 1 -> Base on esc and sid; and "
                         "'trials' (not by default): the investigation runs of --trials")
    ap.add_argument("--trials", help="trials: comma-separated names of TRIALS (default: all)")
    ap.add_argument("--status", action="store_true", help="print progress and exit")
    ap.add_argument("--pretrain-again", action="store_true",
                    help="run stages 1+2 even when models/<name>/ holds committed weights (which "
                         "are otherwise used as they are)")
    ap.add_argument("--tasks", help="grid: only these tasks (comma-separated: esc,sid,gscv2,gscv1)")
    ap.add_argument("--settings", help="grid: only these settings (comma-separated)")
    a = ap.parse_args()
    a.tasks = a.tasks.split(",") if a.tasks else None
    a.settings = a.settings.split(",") if a.settings else None
    work = Path("runs") / "reproduce" / a.preset
    results = REPO / "results" / a.preset
    if a.status:
        return status(a.preset, work, results)
    log(f"preset {a.preset}: expected cost {PRESETS[a.preset]['expected']}")
    stages = a.stages.split(",")
    if "data" in stages:
        build_sets()
    if "pretrain" in stages:
        pretrain_stages(a.preset, work, use_shipped=not a.pretrain_again)
    pretrained = REPO / work / "pretrain" / "acoustic_model.safetensors"
    if "ship" in stages and a.preset in MODEL_NAMES:
        ship(a.preset, work)
    if "grid" in stages:
        if not pretrained.exists():
            sys.exit(f"reproduce: the grid needs {pretrained} (stage 2)")
        for task, setting, seed in grid_runs(a.preset, a.tasks, a.settings):
            finetune_run(a.preset, work, results, task, setting, seed, pretrained)
    if "iterate" in stages:
        iterate(a.preset, work, results)
    if "trials" in stages:
        trials(a.preset, work, results,
               a.trials.split(",") if a.trials else list(TRIALS.get(a.preset, {})))
    if "tables" in stages:
        results.mkdir(parents=True, exist_ok=True)
        rows = table4(a.preset, results)
        plot(a.preset, results, rows)
        table3(a.preset, results, work)
        log(f"wrote {results}/table4.md, table3.md, settings.png")


if __name__ == "__main__":
    main()
