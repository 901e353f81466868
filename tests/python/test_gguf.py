"""GGUF: hfpipe's reader against gguf-py, the library transformers loads GGUF files with.

Each test writes a GGUF file with gguf.GGUFWriter, runs `hfpipe inspect-weights --values` on
it and compares the metadata and every dequantised tensor with what gguf.GGUFReader +
gguf.quants.dequantize give (transformers' load_gguf_checkpoint path): bit-identical f32.
The k-quants (Q2_K ... Q6_K) have no quantiser in gguf-py, so their blocks are random bytes
with sane f16 scales; every byte pattern is a valid block. Corrupt files must give a clear
error and exit status 1, never a crash.
"""
import json
import os
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
Q = gguf.GGMLQuantizationType

REPO = Path(__file__).resolve().parents[2]
HFPIPE = Path(os.environ.get("HFPIPE_BIN", REPO / "build" / "hfpipe"))

# Quantisable by gguf-py from floats.
QUANTISED = [Q.F32, Q.F16, Q.BF16, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0]
# Dequantise-only in gguf-py: written as random blocks.
K_QUANTS = [Q.Q2_K, Q.Q3_K, Q.Q4_K, Q.Q5_K, Q.Q6_K]
# Byte offsets of each k-quant block's f16 scale fields (d, dmin); random bytes there could be
# inf/NaN, which would make the comparison meaningless.
K_SCALE_OFFSETS = {Q.Q2_K: (80, 82), Q.Q3_K: (108,), Q.Q4_K: (0, 2), Q.Q5_K: (0, 2), Q.Q6_K: (208,)}


def inspect(path, values=True):
    args = [str(HFPIPE), "inspect-weights"] + (["--values"] if values else []) + [str(path)]
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def inspect_ok(path):
    result = inspect(path)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def random_k_blocks(rng, qtype, rows, blocks_per_row):
    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    data = rng.integers(0, 256, size=(rows, blocks_per_row, type_size), dtype=np.uint8)
    for offset in K_SCALE_OFFSETS[qtype]:
        scales = rng.uniform(-0.05, 0.05, size=(rows, blocks_per_row)).astype(np.float16)
        data[:, :, offset:offset + 2] = scales.view(np.uint8).reshape(rows, blocks_per_row, 2)
    return data.reshape(rows, blocks_per_row * type_size)


def write_gguf(path, tensors, metadata=()):
    """tensors: name -> (ggml type, array: floats for QUANTISED, raw bytes for K_QUANTS)."""
    writer = gguf.GGUFWriter(str(path), "llama")
    for key, kind, value in metadata:
        getattr(writer, f"add_{kind}")(key, value)
    for name, (qtype, data) in tensors.items():
        if qtype in (Q.F32, Q.F16):
            writer.add_tensor(name, data.astype(np.float32 if qtype == Q.F32 else np.float16))
        elif qtype in K_QUANTS:
            writer.add_tensor(name, data, raw_dtype=qtype)
        else:
            writer.add_tensor(name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def reference(path):
    """What transformers' GGUF loader sees: name -> dequantised f32 array (PyTorch order)."""
    reader = gguf.GGUFReader(str(path))
    out = {}
    for t in reader.tensors:
        values = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        out[t.name] = (t.tensor_type.name, values.reshape([int(d) for d in reversed(t.shape)]))
    return out


def assert_tensors_equal(got, expected):
    assert sorted(got) == sorted(expected)
    for name, (type_name, values) in expected.items():
        g = got[name]
        assert g["ggml_type"] == type_name, name
        assert g["dtype"] == "F32", name
        assert g["shape"] == list(values.shape), name
        mine = np.array(g["first"], dtype=np.float64).astype(np.float32)
        np.testing.assert_array_equal(mine, values.reshape(-1), err_msg=name)


def test_every_type_dequantises_bit_identically(tmp_path):
    rng = np.random.default_rng(0)
    tensors = {}
    for qtype in QUANTISED:
        # 3 rows of 2 blocks (a 256-wide row is a whole block for every type here)
        tensors[f"w.{qtype.name}"] = (qtype, rng.normal(0, 0.5, size=(3, 256)).astype(np.float32))
    for qtype in K_QUANTS:
        tensors[f"w.{qtype.name}"] = (qtype, random_k_blocks(rng, qtype, rows=3, blocks_per_row=2))
    tensors["bias.vector"] = (Q.F32, rng.normal(size=(7,)).astype(np.float32))
    tensors["three.dims"] = (Q.Q8_0, rng.normal(size=(2, 3, 64)).astype(np.float32))
    path = tmp_path / "all-types.gguf"
    write_gguf(path, tensors)
    got = inspect_ok(path)
    assert_tensors_equal(got["tensors"], reference(path))


def test_metadata_of_every_value_type(tmp_path):
    metadata = [
        ("general.name", "string", "tiny ünïcode model"),
        ("t.u32", "uint32", 4000000000), ("t.i32", "int32", -7), ("t.u64", "uint64", 2**40 + 3),
        ("t.i64", "int64", -(2**40)), ("t.f32", "float32", 0.1), ("t.f64", "float64", 1e-300),
        ("t.u8", "uint8", 255), ("t.i8", "int8", -128), ("t.u16", "uint16", 65535), ("t.i16", "int16", -32768),
        ("t.bool", "bool", True), ("t.tokens", "array", ["<s>", "a b", "\u2581x", ""]),
        ("t.ints", "array", [1, 2, 3]), ("t.floats", "array", [0.5, -1.25]),
    ]
    path = tmp_path / "meta.gguf"
    write_gguf(path, {"w": (Q.F32, np.ones((2, 32), np.float32))}, metadata)
    got = inspect_ok(path)["metadata"]
    reader = gguf.GGUFReader(str(path))
    for key, _, value in metadata:
        field = reader.fields[key]
        expected = field.contents()
        if key == "t.f32":   # stored as f32: compare with the f32 value, widened
            expected = float(np.float32(value))
        if key == "t.floats":
            expected = [float(np.float32(v)) for v in value]
        assert got[key] == expected, key
    assert got["general.architecture"] == "llama"
    assert got["general.alignment"] if "general.alignment" in got else True


def test_custom_alignment_is_honoured(tmp_path):
    path = tmp_path / "aligned.gguf"
    rng = np.random.default_rng(1)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_custom_alignment(64)
    writer.add_tensor("a", rng.normal(size=(3,)).astype(np.float32))
    writer.add_tensor("b", rng.normal(size=(2, 32)).astype(np.float16))
    writer.write_header_to_file(); writer.write_kv_data_to_file(); writer.write_tensors_to_file(); writer.close()
    assert_tensors_equal(inspect_ok(path)["tensors"], reference(path))


# ------------------------------------------------------------------ corrupt files

def _header(version=3, tensors=0, keys=0):
    return b"GGUF" + struct.pack("<IQQ", version, tensors, keys)


def _string(s: bytes):
    return struct.pack("<Q", len(s)) + s


def _tensor_info(name=b"w", dims=(32,), qtype=0, offset=0):
    return _string(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims) + \
        struct.pack("<IQ", qtype, offset)


def _pad(data, alignment=32):
    return data + b"\0" * (-len(data) % alignment)


CORRUPT = {
    "empty": b"",
    "bad magic": b"GGUG" + b"\0" * 20,
    "version 1": _header(version=1),
    "version 99": _header(version=99),
    "truncated header": _header()[:10],
    "huge key count": _header(keys=2**40),
    "huge tensor count": _header(tensors=2**40),
    "truncated key": _header(keys=1) + struct.pack("<Q", 100) + b"abc",
    "unknown value type": _header(keys=1) + _string(b"k") + struct.pack("<I", 77),
    "huge string": _header(keys=1) + _string(b"k") + struct.pack("<IQ", 8, 2**62),
    "huge array": _header(keys=1) + _string(b"k") + struct.pack("<IIQ", 9, 4, 2**50),
    "bad bool": _header(keys=1) + _string(b"k") + struct.pack("<IB", 7, 2),
    "duplicate key": _header(keys=2) + (_string(b"k") + struct.pack("<IB", 0, 1)) * 2,
    "zero dims": _header(tensors=1) + _string(b"w") + struct.pack("<I", 0),
    "five dims": _header(tensors=1) + _tensor_info(dims=(1, 1, 1, 1, 1)),
    "unknown tensor type": _pad(_header(tensors=1) + _tensor_info(qtype=123)) + b"\0" * 128,
    "Q4_0 row not whole blocks": _pad(_header(tensors=1) + _tensor_info(dims=(33,), qtype=2)) + b"\0" * 64,
    "tensor past end": _pad(_header(tensors=1) + _tensor_info(dims=(32,))) + b"\0" * 64,
    "misaligned offset": _pad(_header(tensors=1) + _tensor_info(dims=(4,), offset=4)) + b"\0" * 64,
    "huge offset": _pad(_header(tensors=1) + _tensor_info(dims=(4,), offset=2**63)) + b"\0" * 64,
    "overlapping tensors": _pad(_header(tensors=2) + _tensor_info(b"a", dims=(16,)) +
                                _tensor_info(b"b", dims=(16,), offset=32)) + b"\0" * 256,
    "duplicate tensor": _pad(_header(tensors=2) + _tensor_info(b"a", dims=(8,)) +
                             _tensor_info(b"a", dims=(8,), offset=32)) + b"\0" * 256,
    "bad alignment": _pad(_header(keys=1) + _string(b"general.alignment") + struct.pack("<II", 4, 3)),
}


@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_corrupt_file_is_a_clear_error(tmp_path, case):
    path = tmp_path / "bad.gguf"
    path.write_bytes(CORRUPT[case])
    result = inspect(path, values=False)
    assert result.returncode == 1, (case, result.returncode, result.stdout[:200], result.stderr)
    assert "hfpipe: error:" in result.stderr and "bad.gguf" in result.stderr, result.stderr


def test_valid_hand_made_file_loads(tmp_path):
    """The hand-made layout the corrupt cases start from is itself valid."""
    path = tmp_path / "ok.gguf"
    path.write_bytes(_pad(_header(tensors=1) + _tensor_info(dims=(4,))) + struct.pack("<4f", 1, 2, 3, 4))
    got = inspect_ok(path)["tensors"]["w"]
    assert got["first"] == [1.0, 2.0, 3.0, 4.0] and got["ggml_type"] == "F32"


def test_truncation_at_every_byte_is_an_error(tmp_path):
    rng = np.random.default_rng(2)
    full = tmp_path / "full.gguf"
    write_gguf(full, {"w": (Q.Q4_K, random_k_blocks(rng, Q.Q4_K, 1, 1))}, [("general.name", "string", "x")])
    tensor = gguf.GGUFReader(str(full)).tensors[-1]
    data = full.read_bytes()[:tensor.data_offset + tensor.n_bytes]   # the writer pads after the data
    cut = tmp_path / "cut.gguf"
    for n in sorted(set(range(0, len(data), 7)) | {len(data) - 1}):
        cut.write_bytes(data[:n])
        result = inspect(cut, values=False)
        assert result.returncode == 1, (n, result.stderr)
