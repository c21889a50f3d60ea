#!/usr/bin/python3
"""Convert an official SSAST checkpoint (SSAST-Base-Frame-400.pth) to safetensors for the C++ teacher.

Runs on Debian's /usr/bin/python3 with python3-torch (no other packages). Every tensor keeps its
official name, DataParallel `module.` prefix included (`module.v.blocks.0.attn.qkv.weight`, ...);
hear::teacher::load_ssast_weights reads the file as it is.

  convert_ssast_checkpoint.py SSAST-Base-Frame-400.pth ssast_base_frame_400.safetensors
  convert_ssast_checkpoint.py SSAST-Base-Frame-400.pth teacher.safetensors --teacher-only

Options:
  --teacher-only   drop the pre-training and classification heads the teacher never uses
                   (module.mask_embed, module.v.head*, module.v.head_dist*, module.cpredlayer.*,
                   module.gpredlayer.*); module.p_input_fdim/tdim are kept as sanity checks
  --force          convert even when the checkpoint does not look like an SSAST Frame model

The checkpoint must be an SSAST *Frame* model (patch embedding [E, 1, 128, 2]): HEAR's teacher
code hard-codes frame patches, so a Patch (16x16) checkpoint cannot serve as its teacher.
"""
import argparse
import collections
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from convert_reference_checkpoint import extract_state_dict, sha256, write_safetensors  # noqa: E402

HEAD_PREFIXES = ("mask_embed", "v.head.", "v.head_dist.", "cpredlayer.", "gpredlayer.")


def bare(key):
    return key[len("module."):] if key.startswith("module.") else key


def is_head(key):
    k = bare(key)
    return k == "mask_embed" or any(k.startswith(p) for p in HEAD_PREFIXES[1:])


def check_frame_model(sd, path):
    """Returns a list of problems (empty when the checkpoint looks like an SSAST Frame model)."""
    problems = []
    by_bare = {bare(k): v for k, v in sd.items()}
    w = by_bare.get("v.patch_embed.proj.weight")
    if w is None:
        return [f"'{path}' has no v.patch_embed.proj.weight: not an SSAST checkpoint"]
    if w.dim() != 4 or w.shape[1] != 1 or w.shape[3] != 2:
        problems.append(f"patch embedding is {list(w.shape)}, not [E, 1, 128, 2]: this is not an "
                        "SSAST Frame model (a Patch model has [E, 1, 16, 16]); HEAR's teacher needs "
                        "SSAST-Base-Frame-400")
    for name, want in (("p_input_fdim", 128), ("p_input_tdim", 1024)):
        v = by_bare.get(name)
        if v is not None and v.numel() == 1 and int(v.item()) != want:
            problems.append(f"{name} is {int(v.item())}, expected {want}: the teacher's pos_embed "
                            "would need SSAST's re-fit, which the C++ loader does not do")
    pos = by_bare.get("v.pos_embed")
    if pos is not None and w.dim() == 4 and (pos.dim() != 3 or pos.shape[1] != 514):
        problems.append(f"v.pos_embed is {list(pos.shape)}, expected [1, 514, E]")
    return problems


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--teacher-only", action="store_true")
    p.add_argument("--force", action="store_true")
    args = p.parse_args()
    if not os.path.exists(args.input):
        raise SystemExit(f"error: '{args.input}' not found")
    try:
        obj = torch.load(args.input, map_location="cpu")
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a bad input file
        raise SystemExit(f"error: cannot read '{args.input}' as a PyTorch checkpoint: {e}")
    sd = extract_state_dict(obj, args.input)
    problems = check_frame_model(sd, args.input)
    if problems and not args.force:
        raise SystemExit(f"error: '{args.input}': " + "; ".join(problems) + " (--force converts anyway)")
    for msg in problems:
        print(f"warning: {msg}", file=sys.stderr)

    out = collections.OrderedDict()
    dropped = []
    for key, value in sd.items():
        if not isinstance(value, torch.Tensor):
            print(f"warning: skipping non-tensor entry '{key}'", file=sys.stderr)
            continue
        if args.teacher_only and is_head(key):
            dropped.append(key)
            continue
        out[key] = value
    metadata = {"source": os.path.basename(args.input), "source_sha256": sha256(args.input),
                "converter": "hear-cpp convert_ssast_checkpoint.py",
                "teacher_only": "true" if args.teacher_only else "false"}
    write_safetensors(args.output, out, metadata)
    n = sum(t.numel() for t in out.values())
    print(f"wrote {len(out)} tensors ({n:,} values) to {args.output}"
          + (f"; dropped {len(dropped)} head tensors" if dropped else ""))


if __name__ == "__main__":
    sys.exit(main())
