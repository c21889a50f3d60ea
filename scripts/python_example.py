"""The README's hear_cpp example: embed a folder of WAV files with the shipped cpu-preset model,
save scene embeddings for a downstream probe. Usage: python_example.py FOLDER OUT.npz
(PYTHONPATH=build/release/python, or after cmake --install)."""
import sys, wave, pathlib
import numpy as np
import hear_cpp

model = hear_cpp.load_model("models/hear-cpu-w128-l4/acoustic_model.safetensors",
                            config="models/hear-cpu-w128-l4/model.yaml", threads=2)
names, scenes = [], []
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.wav")):
    with wave.open(str(path)) as w:  # 16 kHz mono 16-bit; resample others first (hear-embed does)
        audio = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768
    emb, ts = hear_cpp.get_timestamp_embeddings(audio[None, :], model)
    scenes.append(hear_cpp.get_scene_embeddings(audio[None, :], model)[0])
    names.append(path.name)
    print(f"{path.name}: {emb.shape[1]} frames x {emb.shape[2]}, last at {ts[0, -1]:.0f} ms")
np.savez(sys.argv[2], names=np.array(names), scene=np.stack(scenes))
print(f"saved {len(names)} scene embeddings of size {model.scene_embedding_size} to {sys.argv[2]}")
