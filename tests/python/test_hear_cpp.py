"""hear_cpp, the Python module on the C++ library (python/hear_cpp.cpp), run by ctest with
Debian's python3 and pytest: shapes and values against the official model's golden outputs, against
hear-embed on the same files, numpy and torch inputs, batch invariance and bad-input errors."""
import json
import os
import struct
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

import hear_cpp

SOURCE = Path(os.environ.get("HEAR_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BIN = Path(os.environ.get("HEAR_BIN", SOURCE / "build" / "release" / "bin"))
GOLDEN = SOURCE / "tests" / "golden" / "hear_tiny.safetensors"
CONFIG = SOURCE / "configs" / "hear_tiny.yaml"

DTYPES = {"F32": np.float32, "I64": np.int64, "F64": np.float64, "BOOL": np.bool_}


def read_safetensors(path):
    data = Path(path).read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for key, spec in header.items():
        if key == "__metadata__":
            continue
        begin, end = spec["data_offsets"]
        raw = data[8 + n + begin:8 + n + end]
        out[key] = np.frombuffer(raw, dtype=DTYPES[spec["dtype"]]).reshape(spec["shape"])
    return out


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for key, array in tensors.items():
        raw = np.ascontiguousarray(array).tobytes()
        dtype = {np.dtype(v): k for k, v in DTYPES.items()}[array.dtype]
        header[key] = {"dtype": dtype, "shape": list(array.shape),
                       "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    Path(path).write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    tensors = read_safetensors(GOLDEN)
    weights = {k[len("weights/"):]: v for k, v in tensors.items() if k.startswith("weights/")}
    path = tmp_path_factory.mktemp("golden") / "hear_tiny.safetensors"
    write_safetensors(path, weights)
    return tensors, path


def test_equals_the_official_model_on_the_golden_weights(golden):
    tensors, path = golden
    task = hear_cpp.load_model(str(path), config=str(CONFIG), embedding="task")
    acoustic = hear_cpp.load_model(str(path), config=str(CONFIG))
    assert acoustic.sample_rate == 16000
    assert acoustic.timestamp_embedding_size == 32 and acoustic.scene_embedding_size == 96
    for clip in ("clip0", "clip1"):
        audio = tensors[f"{clip}/waveform"][None, :].astype(np.float32)
        emb, ts = hear_cpp.get_timestamp_embeddings(audio, acoustic)
        want = tensors[f"{clip}/acoustic"]
        assert emb.shape == (1,) + want.shape and ts.shape == emb.shape[:2]
        assert np.abs(emb[0] - want).max() < 1e-3
        emb, _ = hear_cpp.get_timestamp_embeddings(audio, task)
        assert np.abs(emb[0] - tensors[f"{clip}/task"]).max() < 1e-3
        assert np.abs(task.logits(audio)[0] - tensors[f"{clip}/logits"]).max() < 1e-3
        t = tensors[f"{clip}/task"]
        scene = np.concatenate([t.mean(0), t.max(0), t.std(0, ddof=1)])
        assert np.abs(hear_cpp.get_scene_embeddings(audio, task)[0] - scene).max() < 1e-3


def test_timestamps_are_patch_centres_without_drift(golden):
    _, path = golden
    model = hear_cpp.load_model(str(path), config=str(CONFIG))
    audio = np.zeros((1, 16000 * 60), np.float32) + 0.01 * np.random.default_rng(0).standard_normal(
        (1, 16000 * 60)).astype(np.float32)
    emb, ts = hear_cpp.get_timestamp_embeddings(audio, model)
    assert ts.shape == (1, 3000) and emb.shape == (1, 3000, 32)
    np.testing.assert_array_equal(ts[0], np.arange(3000) * 20.0 + 5.0)


def test_numpy_and_torch_inputs_and_batch_invariance(golden):
    torch = pytest.importorskip("torch")
    _, path = golden
    model = hear_cpp.load_model(str(path), config=str(CONFIG), embedding="task", threads=2)
    rng = np.random.default_rng(1)
    audio = (0.1 * rng.standard_normal((3, 24000))).astype(np.float32)
    emb, ts = hear_cpp.get_timestamp_embeddings(audio, model)
    temb, tts = hear_cpp.get_timestamp_embeddings(torch.from_numpy(audio), model)
    assert isinstance(temb, torch.Tensor) and isinstance(tts, torch.Tensor)
    np.testing.assert_allclose(temb.numpy(), emb, atol=1e-6)
    for i in range(3):
        alone, _ = hear_cpp.get_timestamp_embeddings(audio[i:i + 1], model)
        assert np.abs(alone[0] - emb[i]).max() < 1e-5
    scene = hear_cpp.get_scene_embeddings(torch.from_numpy(audio).double(), model)
    assert isinstance(scene, torch.Tensor) and tuple(scene.shape) == (3, 96)


def write_wav(path, samples):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


def test_equals_hear_embed_on_the_same_files(golden, tmp_path):
    _, path = golden
    rng = np.random.default_rng(2)
    files = []
    for i, n in enumerate((16000, 40000)):
        files.append(tmp_path / f"f{i}.wav")
        write_wav(files[-1], 0.1 * rng.standard_normal(n))
    out = tmp_path / "out"
    subprocess.run([str(BIN / "hear-embed"), *map(str, files), "--config", str(CONFIG), "-w",
                    str(path), "-o", str(out), "--output", "task"], check=True,
                   capture_output=True)
    model = hear_cpp.load_model(str(path), config=str(CONFIG), embedding="task")
    for f in files:
        with wave.open(str(f)) as w:
            audio = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768
        emb, ts = hear_cpp.get_timestamp_embeddings(audio[None, :], model)
        want = np.load(out / f"{f.stem}.task.npy")
        assert emb.shape[1:] == want.shape
        assert np.abs(emb[0] - want).max() < 1e-5
        np.testing.assert_array_equal(ts[0], np.load(out / f"{f.stem}.timestamps.npy"))


def test_run_directory_predicts_class_names(tmp_path):
    run = tmp_path / "run"
    subprocess.run(["bash", str(SOURCE / "tests" / "python" / "make_tiny_run.sh"), str(run)],
                   check=True, capture_output=True)
    model = hear_cpp.load_model(str(run), checkpoint="last")
    labels = model.labels
    assert len(labels) == 4 and model.has_task_model
    audio = (0.1 * np.random.default_rng(3).standard_normal((2, 16000))).astype(np.float32)
    names = model.predict(audio)
    assert len(names) == 2 and all(n in labels for n in names)
    logits = model.logits(audio)
    assert logits.shape == (2, 4)
    assert [labels[k] for k in logits.argmax(1)] == names


def test_bad_inputs_raise_clear_python_errors(golden, tmp_path):
    _, path = golden
    with pytest.raises(FileNotFoundError, match="nothing.safetensors"):
        hear_cpp.load_model(str(tmp_path / "nothing.safetensors"))
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="bad.safetensors"):
        hear_cpp.load_model(str(bad), config=str(CONFIG))
    with pytest.raises(ValueError, match="unknown option 'colour'"):
        hear_cpp.load_model(str(path), colour="red")
    model = hear_cpp.load_model(str(path), config=str(CONFIG))
    with pytest.raises(ValueError, match=r"\[n, samples\]"):
        hear_cpp.get_timestamp_embeddings(np.zeros(16000, np.float32), model)
    with pytest.raises(ValueError, match="too short"):
        hear_cpp.get_scene_embeddings(np.zeros((1, 100), np.float32), model)
    with pytest.raises(ValueError, match="NaN"):
        hear_cpp.get_scene_embeddings(np.full((1, 16000), np.nan, np.float32), model)
    tensors = read_safetensors(path)
    acoustic = tmp_path / "acoustic.safetensors"
    write_safetensors(acoustic, {k: v for k, v in tensors.items() if k.startswith("acoustic_model.")})
    alone = hear_cpp.load_model(str(acoustic), config=str(CONFIG))
    assert not alone.has_task_model
    with pytest.raises(ValueError, match="needs a full HEAR model"):
        alone.logits(np.zeros((1, 16000), np.float32))
    with pytest.raises(ValueError, match="needs a full HEAR model"):
        hear_cpp.load_model(str(acoustic), config=str(CONFIG), embedding="task")
