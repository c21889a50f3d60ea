#!/usr/bin/python3
"""Convert official HEAR PyTorch checkpoints (.pth) to safetensors and back, keeping key names.

Runs on Debian's /usr/bin/python3 with python3-torch (no other packages). Works for a bare
state_dict (the official `acoustic_model_weight.pth` / `tokenizer_weight.pth`), a dict wrapping one
(under 'state_dict', 'model' or 'model_state_dict'), or a pickled nn.Module.

  convert_reference_checkpoint.py to-safetensors acoustic_model_weight.pth acoustic.safetensors
  convert_reference_checkpoint.py to-pth acoustic.safetensors acoustic_model_weight.pth

Options for to-safetensors:
  --keep-module-prefix   keep a DataParallel 'module.' prefix (stripped by default)
  --exclude PREFIX       drop keys starting with PREFIX (repeatable; default: 'preprocessor.', the
                         torchaudio window/filterbank buffers, which the C++ frontend computes itself)
  --select PREFIX        keep only keys starting with PREFIX, with PREFIX removed (e.g. 'encoder.'
                         to take the acoustic model out of a PretrainFramework state_dict)
"""
import argparse
import collections
import hashlib
import json
import os
import struct
import sys
import tempfile

import torch

DTYPES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}
BY_NAME = {v: k for k, v in DTYPES.items()}


def tensor_bytes(t):
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata} if metadata else {}
    offset = 0
    blobs = []
    for name, t in tensors.items():
        if t.dtype not in DTYPES:
            raise SystemExit(f"error: tensor '{name}' has unsupported dtype {t.dtype}")
        b = tensor_bytes(t)
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    atomic_write(path, lambda f: (f.write(struct.pack("<Q", len(h))), f.write(h),
                                  [f.write(b) for b in blobs]))


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise SystemExit(f"error: '{path}' is too short to be safetensors")
    n = struct.unpack("<Q", data[:8])[0]
    if n > len(data) - 8:
        raise SystemExit(f"error: '{path}': header length {n} runs past the end of the file")
    try:
        header = json.loads(data[8:8 + n])
    except ValueError as e:
        raise SystemExit(f"error: '{path}': header is not JSON ({e})")
    body = data[8 + n:]
    metadata = header.pop("__metadata__", {})
    out = collections.OrderedDict()
    for name, info in header.items():
        if info["dtype"] not in BY_NAME:
            raise SystemExit(f"error: '{path}': tensor '{name}' has unknown dtype {info['dtype']}")
        dtype = BY_NAME[info["dtype"]]
        s, e = info["data_offsets"]
        if not 0 <= s <= e <= len(body):
            raise SystemExit(f"error: '{path}': tensor '{name}' has offsets out of range")
        raw = bytearray(body[s:e])
        if dtype == torch.bfloat16:
            t = torch.frombuffer(raw, dtype=torch.int16).view(torch.bfloat16) if raw else torch.empty(0, dtype=dtype)
        else:
            t = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(info["shape"]).clone()
    return out, metadata


def atomic_write(path, writer):
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=d, prefix=os.path.basename(path) + ".tmp.")
    try:
        with os.fdopen(fd, "wb") as f:
            writer(f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def extract_state_dict(obj, path):
    if isinstance(obj, torch.nn.Module):
        return obj.state_dict()
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state_dict"):
            if key in obj and isinstance(obj[key], dict):
                return obj[key]
        if all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
    raise SystemExit(f"error: '{path}' holds neither a state_dict nor a module "
                     f"(found {type(obj).__name__})")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def to_safetensors(args):
    try:
        obj = torch.load(args.input, map_location="cpu")
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a bad input file
        raise SystemExit(f"error: cannot read '{args.input}' as a PyTorch checkpoint: {e}")
    sd = extract_state_dict(obj, args.input)
    out = collections.OrderedDict()
    excludes = args.exclude if args.exclude is not None else ["preprocessor."]
    for key, value in sd.items():
        if not isinstance(value, torch.Tensor):
            continue
        if not args.keep_module_prefix and key.startswith("module."):
            key = key[len("module."):]
        if args.select:
            if not key.startswith(args.select):
                continue
            key = key[len(args.select):]
        if any(key.startswith(p) for p in excludes):
            continue
        out[key] = value
    if not out:
        raise SystemExit(f"error: no tensors left in '{args.input}' after the prefix filters")
    metadata = {"source": os.path.basename(args.input), "source_sha256": sha256(args.input),
                "converter": "hear-cpp convert_reference_checkpoint.py"}
    write_safetensors(args.output, out, metadata)
    print(f"wrote {len(out)} tensors ({sum(t.numel() for t in out.values()):,} values) to {args.output}")


def to_pth(args):
    tensors, _ = read_safetensors(args.input)
    atomic_write(args.output, lambda f: torch.save(tensors, f))
    print(f"wrote {len(tensors)} tensors to {args.output}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("to-safetensors")
    a.add_argument("input")
    a.add_argument("output")
    a.add_argument("--keep-module-prefix", action="store_true")
    a.add_argument("--exclude", action="append")
    a.add_argument("--select")
    b = sub.add_parser("to-pth")
    b.add_argument("input")
    b.add_argument("output")
    args = p.parse_args()
    if not os.path.exists(args.input):
        raise SystemExit(f"error: '{args.input}' not found")
    (to_safetensors if args.command == "to-safetensors" else to_pth)(args)


if __name__ == "__main__":
    sys.exit(main())
