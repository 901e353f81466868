"""Seeds for the weight-file fuzz targets cut from real model files: the tensor names, dtypes,
metadata, pickle layouts and GGUF key sets of real checkpoints, with every tensor shrunk to a
few elements so that a seed stays small enough for libFuzzer's -max_len. Written outside git
(default build-fuzz/corpus/<target>/), next to the checked-in synthetic seeds of corpus/.

    .venv/bin/python tests/fuzz/make_real_seeds.py [OUT] [MODEL_DIRS...]

MODEL_DIRS default to the tiny models ($HFPIPE_TINY_MODELS) and the real ones ($HFPIPE_REAL_MODELS).
"""

import io
import os
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

MAX_TENSORS = 24
MAX_ELEMENTS = 8


def shrink(t):
    """The first few elements of a tensor, keeping its dtype and (when possible) its rank."""
    flat = t.reshape(-1)[:MAX_ELEMENTS].clone()
    return flat.view(-1, 2) if t.dim() >= 2 and flat.numel() % 2 == 0 else flat


def shrunk_state(state):
    return OrderedDict((k, shrink(v)) for k, v in list(state.items())[:MAX_TENSORS])


def torch_bytes(obj, **kwargs):
    buf = io.BytesIO()
    torch.save(obj, buf, **kwargs)
    return buf.getvalue()


def safetensors_seeds(path):
    state = shrunk_state(load_safetensors(path.read_bytes()))
    yield "safetensors", save_safetensors(state, metadata={"format": "pt"})
    # the real header alone: the JSON paths with real names and offsets, and no data
    raw = path.read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    if header_len < 60000:
        yield "safetensors", raw[:8 + header_len]


def pytorch_bin_seeds(path):
    state = shrunk_state(torch.load(path, map_location="cpu", weights_only=True))
    archive = torch_bytes(state)
    yield "pytorch_bin", archive
    # the pickle of the real checkpoint (real names and storage keys) for fuzz_torch_pickle
    with zipfile.ZipFile(path) as z:
        pkl = z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
    if len(pkl) < 60000:
        yield "torch_pickle", pkl
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        yield "torch_pickle", z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))


def gguf_seeds(path):
    """The file's metadata with arrays cut to 32 entries, and one small tensor per type it uses
    (the raw bytes of the first blocks of a real tensor of that type)."""
    import gguf
    import tempfile

    reader = gguf.GGUFReader(str(path))
    arch = str(bytes(reader.fields["general.architecture"].parts[-1]), "utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "seed.gguf"
        writer = gguf.GGUFWriter(str(out), arch)
        for field in reader.fields.values():
            if field.name.startswith("GGUF.") or field.name == "general.architecture":
                continue
            value = field.contents()
            if isinstance(value, list):
                value = value[:32]
                if not value:
                    continue
            vtype = field.types[0]
            sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
            writer.add_key_value(field.name, value, vtype, sub_type=sub)
        seen = set()
        for t in reader.tensors:
            if t.tensor_type in seen:
                continue
            seen.add(t.tensor_type)
            data = np.asarray(t.data)  # (rows, bytes of a row) for quantised types
            rows = data[:2] if data.ndim >= 2 else data[:64]
            writer.add_tensor(t.name, rows.copy(), raw_dtype=t.tensor_type)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        yield "gguf", out.read_bytes()


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "build-fuzz/corpus")
    dirs = [Path(d) for d in sys.argv[2:]] or [Path(os.environ.get(v, "")) for v in
                                               ("HFPIPE_TINY_MODELS", "HFPIPE_REAL_MODELS") if os.environ.get(v)]
    makers = {".safetensors": safetensors_seeds, ".bin": pytorch_bin_seeds, ".gguf": gguf_seeds}
    count = 0
    for d in dirs:
        for path in sorted(d.rglob("*")):
            maker = makers.get(path.suffix)
            if not maker or not path.is_file() or (path.suffix != ".gguf" and path.stat().st_size > 64 << 20):
                continue
            try:
                for target, data in maker(path):
                    folder = out / target
                    folder.mkdir(parents=True, exist_ok=True)
                    (folder / f"{path.parent.name}-{path.stem}-{count}").write_bytes(data)
                    count += 1
            except Exception as e:  # a file these libraries cannot read is no seed
                print(f"skip {path}: {e}", file=sys.stderr)
    print(f"{count} seeds in {out}")


if __name__ == "__main__":
    main()
