"""Parity of hfpipe's weight loaders with torch / safetensors / transformers.

Each test writes a checkpoint with the Python libraries, runs `hfpipe inspect-weights` on it
and compares every tensor's name, dtype, shape, sum and first values with torch's view of
the same data. Hostile pickles must be refused without running anything.

The binary is $HFPIPE_BIN, by default build/hfpipe under the repository root.
"""

import json
import math
import os
import pickle
import subprocess
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

REPO = Path(__file__).resolve().parents[2]
HFPIPE = Path(os.environ.get("HFPIPE_BIN", REPO / "build" / "hfpipe"))

# dtype hfpipe reports for each torch dtype: floating types are loaded as f32.
LOADED_DTYPE = {
    torch.float32: "F32", torch.float16: "F32", torch.bfloat16: "F32", torch.float64: "F32",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}


def run_inspect(path):
    assert HFPIPE.exists(), f"hfpipe binary not found at {HFPIPE}; build it or set HFPIPE_BIN"
    return subprocess.run([str(HFPIPE), "inspect-weights", str(path)], capture_output=True, text=True, timeout=300)


def inspect_ok(path):
    result = run_inspect(path)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["tensors"]


def as_loaded(t):
    """The values hfpipe should hold for `t`: floats become f32, others keep their type."""
    t = t.detach()
    return t.to(torch.float32) if t.is_floating_point() else t


def assert_matches(tensors, state_dict):
    assert sorted(tensors) == sorted(state_dict)
    for name, expected in state_dict.items():
        got = tensors[name]
        values = as_loaded(expected)
        assert got["dtype"] == LOADED_DTYPE[expected.dtype], name
        assert got["shape"] == list(expected.shape), name
        as_double = values.to(torch.float64)
        want_sum = as_double.sum().item()
        scale = as_double.abs().sum().item()
        assert math.isclose(got["sum"], want_sum, rel_tol=1e-4, abs_tol=1e-6 * scale + 1e-6), name
        want_first = as_double.flatten()[:4].tolist()
        assert len(got["first"]) == len(want_first), name
        for a, b in zip(got["first"], want_first):
            assert math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-7), (name, got["first"], want_first)


def mixed_state_dict():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(6, 5, generator=g)
    return OrderedDict(
        f32=torch.randn(3, 4, generator=g),
        f16=torch.randn(7, generator=g).to(torch.float16),
        bf16=torch.randn(2, 3, generator=g).to(torch.bfloat16),
        f64=torch.randn(4, generator=g).to(torch.float64),
        i64=torch.arange(-3, 9),
        i32=torch.arange(5, dtype=torch.int32) * 1000,
        i16=torch.tensor([-7, 300], dtype=torch.int16),
        i8=torch.tensor([-128, 5, 127], dtype=torch.int8),
        u8=torch.tensor([0, 200, 255], dtype=torch.uint8),
        flags=torch.tensor([True, False, True]),
        scalar=torch.tensor(2.5),
        empty=torch.empty(0, 3),
        # Views of one storage: hfpipe must honour offsets and strides.
        base=base,
        transposed=base.t(),
        columns=base[:, 1::2],
        rows=base[2:4],
        f16_transposed=torch.randn(3, 5, generator=g).to(torch.float16).t(),
        expanded=torch.randn(1, 4, generator=g).expand(3, 4),
    )


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_torch_save_dtypes_views_and_protocols(tmp_path, protocol):
    sd = mixed_state_dict()
    path = tmp_path / "weights.bin"
    torch.save(sd, path, pickle_protocol=protocol)
    assert_matches(inspect_ok(path), sd)


def test_large_tensor_and_shared_storage(tmp_path):
    g = torch.Generator().manual_seed(1)
    big = torch.randn(300, 300, generator=g)  # 360 KB, several zip alignment pages
    sd = {"big": big, "tied_a": big, "tied_b": big.view(90000)[100:], "bigger": torch.randn(1 << 20, generator=g)}
    path = tmp_path / "big.bin"
    torch.save(sd, path)
    assert_matches(inspect_ok(path), sd)


def test_deflated_archive(tmp_path):
    """Re-zipping a checkpoint with compression must not matter."""
    sd = mixed_state_dict()
    plain, deflated = tmp_path / "plain.bin", tmp_path / "deflated.bin"
    torch.save(sd, plain)
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(deflated, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
    assert_matches(inspect_ok(deflated), sd)


def test_zip64_archive(tmp_path):
    sd = {"w": torch.arange(10, dtype=torch.float32)}
    plain, zip64 = tmp_path / "plain.bin", tmp_path / "zip64.bin"
    torch.save(sd, plain)
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(zip64, "w") as dst:
        for info in src.infolist():
            with dst.open(info.filename, "w", force_zip64=True) as out:
                out.write(src.read(info.filename))
    assert_matches(inspect_ok(zip64), sd)


def test_module_state_dict_with_metadata(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3), torch.nn.Embedding(5, 2))
    sd = model.state_dict()
    torch.save(sd, tmp_path / "pytorch_model.bin")
    assert_matches(inspect_ok(tmp_path), sd)


def test_safetensors_dtypes(tmp_path):
    g = torch.Generator().manual_seed(2)
    sd = {
        "f32": torch.randn(4, 3, generator=g),
        "f16": torch.tensor([1.0, -2.0, 6.1e-5, 5.96e-8, 65504.0, 0.0], dtype=torch.float16),  # incl. subnormals
        "bf16": torch.randn(5, generator=g).to(torch.bfloat16),
        "f64": torch.randn(3, generator=g).to(torch.float64),
        "i64": torch.arange(7),
        "i32": torch.arange(3, dtype=torch.int32),
        "u8": torch.tensor([1, 2, 255], dtype=torch.uint8),
        "flags": torch.tensor([False, True]),
        "scalar": torch.tensor(3.0),
        "empty": torch.empty(2, 0),
    }
    path = tmp_path / "model.safetensors"
    safetensors_torch.save_file(sd, str(path), metadata={"format": "pt"})
    assert_matches(inspect_ok(path), sd)
    assert_matches(inspect_ok(tmp_path), sd)


def tiny_bert():
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=64, max_position_embeddings=64)
    torch.manual_seed(0)
    return transformers.BertModel(config).eval()


@pytest.mark.parametrize("safe", [True, False])
def test_sharded_checkpoints(tmp_path, safe):
    model = tiny_bert()
    model.save_pretrained(tmp_path, safe_serialization=safe, max_shard_size="20KB")
    index = "model.safetensors.index.json" if safe else "pytorch_model.bin.index.json"
    assert (tmp_path / index).exists()
    shards = set(json.loads((tmp_path / index).read_text())["weight_map"].values())
    assert len(shards) > 2
    sd = {k: v for k, v in model.state_dict().items()}
    assert_matches(inspect_ok(tmp_path), sd)
    assert_matches(inspect_ok(tmp_path / index), sd)


def test_sharded_missing_shard(tmp_path):
    model = tiny_bert()
    model.save_pretrained(tmp_path, max_shard_size="20KB")
    victim = sorted(tmp_path.glob("model-*.safetensors"))[-1]
    victim.unlink()
    result = run_inspect(tmp_path)
    assert result.returncode != 0
    assert victim.name in result.stderr


# ---- hostile and broken files ----

class Reduce:
    """An object whose unpickling calls fn(*args): the classic pickle exploit."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def marker_payloads(marker):
    return {
        "os.system": Reduce(os.system, f"touch {marker}"),
        "builtins.eval": Reduce(eval, f"__import__('pathlib').Path({str(marker)!r}).touch()"),
        "builtins.exec": Reduce(exec, f"open({str(marker)!r}, 'w').close()"),
        "torch.load": Reduce(torch.load, str(marker)),
        "subprocess.call": Reduce(subprocess.call, ["touch", str(marker)]),
    }


@pytest.mark.parametrize("kind", ["os.system", "builtins.eval", "builtins.exec", "torch.load", "subprocess.call"])
def test_malicious_pickles_are_refused(tmp_path, kind):
    marker = tmp_path / "pwned"
    payload = marker_payloads(marker)[kind]
    path = tmp_path / "pytorch_model.bin"
    # torch.save pickles the payload object as it would a tensor, as an attacker's file would.
    torch.save({"weight": torch.ones(2), "evil": payload}, path)
    result = run_inspect(path)
    assert result.returncode != 0
    assert "refusing" in result.stderr
    assert not marker.exists()


def test_malicious_pickle_payload_is_real(tmp_path):
    """The payload above does run under an unrestricted unpickler: the test is meaningful."""
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.bin"
    torch.save({"evil": marker_payloads(marker)["os.system"]}, path)
    code = f"import torch; torch.load({str(path)!r}, weights_only=False)"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    assert marker.exists()


def test_raw_pickle_inside_archive_is_refused(tmp_path):
    """A data.pkl replaced by a protocol-0/2 exploit, not written through torch.save."""
    marker = tmp_path / "pwned"
    plain, evil = tmp_path / "plain.bin", tmp_path / "evil.bin"
    torch.save({"w": torch.ones(1)}, plain)
    bomb = pickle.dumps(Reduce(os.system, f"touch {marker}"), protocol=2)
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(evil, "w") as dst:
        for info in src.infolist():
            data = bomb if info.filename.endswith("data.pkl") else src.read(info.filename)
            dst.writestr(info.filename, data)
    result = run_inspect(evil)
    assert result.returncode != 0 and "refusing" in result.stderr and "system" in result.stderr
    assert not marker.exists()


def test_legacy_torch_format_is_reported(tmp_path):
    path = tmp_path / "old.bin"
    torch.save({"w": torch.ones(2)}, path, _use_new_zipfile_serialization=False)
    result = run_inspect(path)
    assert result.returncode == 1
    assert result.stderr.startswith("hfpipe: error:") and "legacy" in result.stderr


def test_corrupt_files_fail_cleanly(tmp_path):
    good = tmp_path / "good.safetensors"
    safetensors_torch.save_file({"w": torch.randn(64, 64)}, str(good))
    data = good.read_bytes()
    cases = {
        "truncated.safetensors": data[: len(data) // 2],
        "header_only.safetensors": data[:20],
        "garbage.safetensors": b"\xff" * 64,
        "truncated.bin": None,
    }
    bin_path = tmp_path / "ok.bin"
    torch.save({"w": torch.randn(64, 64)}, bin_path)
    cases["truncated.bin"] = bin_path.read_bytes()[:-200]
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        result = run_inspect(path)
        assert result.returncode == 1, (name, result.stderr)
        assert result.stderr.startswith("hfpipe: error:"), (name, result.stderr)


def test_missing_weights_lists_candidates(tmp_path):
    result = run_inspect(tmp_path)
    assert result.returncode == 1
    for name in ["model.safetensors", "model.safetensors.index.json", "pytorch_model.bin.index.json", "pytorch_model.bin"]:
        assert name in result.stderr
    assert str(tmp_path) in result.stderr
