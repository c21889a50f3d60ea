#!/usr/bin/python3
"""Time one optimizer step of the official HEAR code's training stages on this machine, for
`hear-bench --train STAGE --compare-reference PATH`.

The same work as hear-bench --train: random clips of --seconds at --batch (and, for the tokenizer,
random teacher features, as a feature cache would give them), forward + loss, backward, AdamW step,
zero_grad, at the official default (paper) sizes. Needs the official code (not bundled), Debian's
python3-torch, python3-torchaudio and python3-pydantic. Prints one JSON object.
"""
import argparse
import json
import statistics
import sys
import time


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repo", required=True, help="checkout of the official HEAR repository")
    p.add_argument("--stage", required=True, choices=["tokenizer", "pretrain", "finetune"])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--classes", type=int, default=50)
    a = p.parse_args()
    import torch
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    sys.path.insert(0, a.repo)
    try:
        from src.config import (AcousticModelConfig, ClassificationDecoderConfig, DecoderConfig,
                                TaskModelConfig, TokenizerConfig)
        from src.frameworks.pretrain_framework import PretrainFramework
        from src.frameworks.tokenizer_train_framework import TokenizerTrainFramework
        from src.hear import HEAR
        from src.params import TokenizerTrainParams
    except Exception as e:  # noqa: BLE001
        raise SystemExit(f"error: cannot import the official HEAR code from '{a.repo}': {e}")
    samples = int(round(a.seconds * 16000))
    patches = (samples // 160 + 1) // 2
    if a.stage == "finetune":
        model = HEAR(AcousticModelConfig(), TaskModelConfig(),
                     ClassificationDecoderConfig(num_classes=a.classes))
        def loss_of(wave, lengths):
            labels = torch.randint(a.classes, (a.batch,))
            return torch.nn.functional.cross_entropy(model(wave, lengths), labels)
    elif a.stage == "pretrain":
        model = PretrainFramework(AcousticModelConfig(), TokenizerConfig())
        def loss_of(wave, lengths):
            return model(wave, lengths)
    else:
        decoder = DecoderConfig()
        model = TokenizerTrainFramework(TokenizerConfig(), decoder, TokenizerTrainParams())
        def loss_of(wave, lengths):
            teacher = torch.randn(a.batch, patches, decoder.knowledge_hidden_size)
            return sum(model(wave, lengths, teacher, training=True))
    model.train()
    optimizer = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=1e-4)
    times = []
    for i in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        wave = torch.randn(a.batch, 1, samples) * 0.1
        lengths = torch.full((a.batch,), samples)
        loss = loss_of(wave, lengths)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        t = time.perf_counter() - t0
        if i >= a.warmup:
            times.append(t)
    times.sort()
    p90 = times[max(0, -(-9 * len(times) // 10) - 1)]
    print(json.dumps({"stage": a.stage, "batch": a.batch, "seconds": a.seconds,
                      "threads": a.threads, "steps": a.steps, "median_step_s":
                      statistics.median(times), "p90_step_s": p90, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
