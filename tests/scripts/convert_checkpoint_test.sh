#!/usr/bin/env bash
# convert_reference_checkpoint.py: .pth -> safetensors -> .pth keeps names, dtypes and values;
# prefixes and filters behave; bad input is a clear error with a non-zero exit.
source "$(dirname "$0")/lib.sh"
CONV="$SRC/scripts/convert_reference_checkpoint.py"
/usr/bin/python3 - <<'PY'
import collections, torch
torch.manual_seed(0)
sd = collections.OrderedDict()
sd["module.preprocessor.spectrogram.window"] = torch.hann_window(400)
sd["module.encoder.feature_extractor.conv.weight"] = torch.randn(8, 128, 2)
sd["module.encoder.contextual_encoder.layers.0.self_attn.query_bias1"] = torch.randn(4, 2)
sd["module.out_linear.weight"] = torch.randn(16, 8).to(torch.bfloat16)
sd["module.decoder.batch_norm.num_batches_tracked"] = torch.tensor(7)
sd["module.mask"] = torch.tensor([True, False])
torch.save(sd, "ref.pth")
torch.save({"state_dict": sd}, "wrapped.pth")
PY
/usr/bin/python3 "$CONV" to-safetensors ref.pth all.safetensors
/usr/bin/python3 "$CONV" to-safetensors wrapped.pth enc.safetensors --select encoder.
/usr/bin/python3 "$CONV" to-pth all.safetensors back.pth
/usr/bin/python3 - <<'PY'
import json, struct, torch
ref = torch.load("ref.pth")
back = torch.load("back.pth")
want = {k[len("module."):]: v for k, v in ref.items() if not k.startswith("module.preprocessor.")}
assert list(back) == list(want), (list(back), list(want))
for k in want:
    assert back[k].dtype == want[k].dtype and torch.equal(back[k], want[k]), k
b = open("enc.safetensors", "rb").read()
h = json.loads(b[8:8 + struct.unpack("<Q", b[:8])[0]])
keys = sorted(k for k in h if k != "__metadata__")
assert keys == ["contextual_encoder.layers.0.self_attn.query_bias1", "feature_extractor.conv.weight"], keys
assert len(h["__metadata__"]["source_sha256"]) == 64
print("round trip ok")
PY
# Bad input: not a checkpoint (named, nothing written), missing file.
echo "not a pickle" > bad.pth
expect_error "bad.pth" py "$CONV" to-safetensors bad.pth x.safetensors
[ ! -e x.safetensors ] || fail "left an output behind"
expect_error "missing.pth" py "$CONV" to-safetensors missing.pth x.safetensors
echo "convert_checkpoint_test: all checks passed"
