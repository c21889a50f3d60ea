#!/usr/bin/env bash
# convert_ssast_checkpoint.py: an SSAST-style .pth (the official key layout and dtypes, tiny
# shapes) -> safetensors keeps every name (module. included), order, dtype and value;
# --teacher-only drops exactly the pre-training heads; Patch models and bad files are clear errors.
source "$(dirname "$0")/lib.sh"
CONV="$SRC/scripts/convert_ssast_checkpoint.py"
/usr/bin/python3 - <<'PY'
import collections, torch
torch.manual_seed(0)
E, D, H = 8, 2, 3072 // 768 * 8


def checkpoint(fshape=128, tshape=2, tokens=514):
    # The order and dtypes of the official DataParallel state_dict (base_frame_checkpoint_keys.txt).
    sd = collections.OrderedDict()
    sd["module.p_input_fdim"] = torch.tensor(128)
    sd["module.p_input_tdim"] = torch.tensor(1024)
    sd["module.mask_embed"] = torch.randn(1, 1, E)
    sd["module.v.cls_token"] = torch.randn(1, 1, E)
    sd["module.v.pos_embed"] = torch.randn(1, tokens, E)
    sd["module.v.dist_token"] = torch.randn(1, 1, E)
    sd["module.v.patch_embed.proj.weight"] = torch.randn(E, 1, fshape, tshape)
    sd["module.v.patch_embed.proj.bias"] = torch.randn(E)
    for i in range(D):
        b = f"module.v.blocks.{i}."
        for name, shape in (("norm1.weight", [E]), ("norm1.bias", [E]), ("attn.qkv.weight", [3 * E, E]),
                            ("attn.qkv.bias", [3 * E]), ("attn.proj.weight", [E, E]), ("attn.proj.bias", [E]),
                            ("norm2.weight", [E]), ("norm2.bias", [E]), ("mlp.fc1.weight", [H, E]),
                            ("mlp.fc1.bias", [H]), ("mlp.fc2.weight", [E, H]), ("mlp.fc2.bias", [E])):
            sd[b + name] = torch.randn(*shape)
    sd["module.v.norm.weight"] = torch.randn(E)
    sd["module.v.norm.bias"] = torch.randn(E)
    sd["module.v.head.weight"] = torch.randn(1000, E)
    sd["module.v.head.bias"] = torch.randn(1000)
    sd["module.v.head_dist.weight"] = torch.randn(1000, E)
    sd["module.v.head_dist.bias"] = torch.randn(1000)
    for p in ("cpredlayer", "gpredlayer"):
        sd[f"module.{p}.0.weight"] = torch.randn(E, E)
        sd[f"module.{p}.0.bias"] = torch.randn(E)
        sd[f"module.{p}.2.weight"] = torch.randn(256, E)
        sd[f"module.{p}.2.bias"] = torch.randn(256)
    return sd


torch.save(checkpoint(), "frame.pth")
torch.save(checkpoint(16, 16, 2 + 8 * 64), "patch.pth")
PY
/usr/bin/python3 "$CONV" frame.pth full.safetensors
/usr/bin/python3 "$CONV" frame.pth teacher.safetensors --teacher-only
/usr/bin/python3 - "$SRC/scripts" <<'PY'
import sys, torch
sys.path.insert(0, sys.argv[1])
from convert_reference_checkpoint import read_safetensors
ref = torch.load("frame.pth")
full, meta = read_safetensors("full.safetensors")
assert list(full) == list(ref), "names or order changed"
for k, v in ref.items():
    assert full[k].dtype == v.dtype and full[k].shape == v.shape and torch.equal(full[k], v), k
assert full["module.p_input_tdim"].dtype == torch.int64 and full["module.p_input_tdim"].dim() == 0
assert int(full["module.p_input_tdim"]) == 1024
assert len(meta["source_sha256"]) == 64 and meta["teacher_only"] == "false", meta
teacher, meta = read_safetensors("teacher.safetensors")
dropped = sorted(set(ref) - set(teacher))
want = sorted(["module.mask_embed", "module.v.head.weight", "module.v.head.bias",
               "module.v.head_dist.weight", "module.v.head_dist.bias"] +
              [f"module.{p}.{i}.{w}" for p in ("cpredlayer", "gpredlayer") for i in (0, 2)
               for w in ("weight", "bias")])
assert dropped == want, dropped
assert list(teacher) == [k for k in ref if k not in want]
assert len(teacher) == 2 + 5 + 12 * 2 + 2, len(teacher)  # p_input x2, tokens/pos/patch, blocks, norm
for k in teacher:
    assert torch.equal(teacher[k], ref[k]), k
assert meta["teacher_only"] == "true"
print("round trip ok")
PY
# A Patch (16x16) model cannot be HEAR's teacher: refused (naming the file), unless --force.
expect_error "not an SSAST Frame model" py "$CONV" patch.pth p.safetensors
grep -q "patch.pth" err.txt || fail "error does not name the file: $(cat err.txt)"
[ ! -e p.safetensors ] || fail "left an output behind"
/usr/bin/python3 "$CONV" patch.pth p.safetensors --force 2> warn.txt
grep -q "warning" warn.txt && [ -s p.safetensors ]
# Bad input: not a checkpoint (named, nothing written), missing file.
echo "not a pickle" > bad.pth
expect_error "bad.pth" py "$CONV" bad.pth x.safetensors
[ ! -e x.safetensors ] || fail "left an output behind"
expect_error "missing.pth" py "$CONV" missing.pth x.safetensors
echo "convert_ssast_test: all checks passed"
