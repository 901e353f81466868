"""Bad input at the CLI: every failure is a non-zero exit code (never a signal), one line on
stderr starting `hfpipe: error: `, and a message that says what is wrong (checked by keyword).
Nothing crashes, hangs, reads out of bounds or executes a pickle."""
from __future__ import annotations

import json
import os
import pickle
import shutil
import struct
from pathlib import Path

import pytest

import hfpipe_helpers as H

FE = "feature-extraction"
TC = "text-classification"


def copy_model(src: Path, dst: Path, exclude=()) -> Path:
    dst.mkdir(parents=True)
    for p in src.iterdir():
        if p.is_file() and p.name not in exclude:
            shutil.copyfile(p, dst / p.name)
    return dst


def has_any(line: str, *keywords) -> bool:
    low = line.lower()
    return any(k.lower() in low for k in keywords)


@pytest.fixture
def bert_base(tiny_models, tmp_path):
    return copy_model(tiny_models / "bert-base", tmp_path / "model")


# ------------------------------------------------------------------ inputs

def test_invalid_utf8_argument(run_hfpipe_raw, tiny_models):
    proc = run_hfpipe_raw([TC, "--model", str(tiny_models / "bert-cls2"), b"abc \xff\xfe def"])
    line = H.error_line(proc)
    assert has_any(line, "utf-8", "utf8"), line


def test_invalid_utf8_on_stdin(run_hfpipe_raw, tiny_models):
    proc = run_hfpipe_raw([TC, "--model", str(tiny_models / "bert-cls2"), "--jsonl"],
                          stdin=b'"fine"\n"abc \xc3\x28 def"\n')
    line = H.error_line(proc)
    assert has_any(line, "utf-8", "utf8"), line


def test_stdin_line_not_json(run_hfpipe_raw, tiny_models):
    proc = run_hfpipe_raw([TC, "--model", str(tiny_models / "bert-cls2"), "--jsonl"],
                          stdin=b"this is not json\n")
    line = H.error_line(proc)
    assert has_any(line, "json"), line


def test_stdin_line_of_wrong_type(run_hfpipe_raw, tiny_models):
    proc = run_hfpipe_raw([TC, "--model", str(tiny_models / "bert-cls2"), "--jsonl"],
                          stdin=b"42\n")
    line = H.error_line(proc)
    assert has_any(line, "string", "text", "input"), line


@pytest.mark.parametrize("task,model", [(TC, "bert-cls2"), (FE, "roberta-base")])
def test_text_over_the_limit_without_truncation(run_hfpipe_raw, tiny_models, task, model):
    """transformers fails deep inside the embedding (IndexError); hfpipe says what is wrong."""
    proc = run_hfpipe_raw([task, "--model", str(tiny_models / model), H.LONG_TEXT])
    line = H.error_line(proc)
    assert has_any(line, "truncat", "too long", "longer than", "exceed", "maximum", "limit"), line


@pytest.mark.parametrize("task,model", [(TC, "bert-cls2"), (FE, "roberta-base")])
def test_text_over_the_limit_with_truncation(run_hfpipe, reference, tiny_models, task, model):
    folder = tiny_models / model
    got = run_hfpipe(task, folder, [H.LONG_TEXT], {"truncation": True}, jsonl=False)
    H.assert_same(got, reference.reference_call(task, folder, H.LONG_TEXT, {"truncation": True}),
                  what="long text with truncation")


@pytest.mark.parametrize("text", ["", "   ", "\t\n"], ids=["empty", "spaces", "tab-newline"])
def test_empty_and_whitespace_text_work(run_hfpipe, reference, tiny_models, text):
    """Not errors: transformers tokenizes them to [CLS] [SEP]."""
    for task, model in ((TC, "bert-cls2"), (FE, "roberta-base")):
        folder = tiny_models / model
        got = run_hfpipe(task, folder, [text], jsonl=False)
        H.assert_same(got, reference.reference_call(task, folder, text), what=f"{task} {text!r}")


def test_no_input(run_hfpipe_raw, tiny_models):
    """No INPUT argument and no --jsonl: an empty input list is an error, not a hang on stdin."""
    proc = run_hfpipe_raw([TC, "--model", str(tiny_models / "bert-cls2")])
    line = H.error_line(proc)
    assert has_any(line, "input"), line


# ------------------------------------------------------------------ task and parameters

def test_unknown_task(run_hfpipe_raw, tiny_models):
    proc = run_hfpipe_raw(["text-clasification", "--model", str(tiny_models / "bert-cls2"), "hi"])
    line = H.error_line(proc)
    assert has_any(line, "task"), line
    assert "text-clasification" in line, line


@pytest.mark.parametrize("task,model", [(TC, "bert-cls2"), (FE, "bert-base")])
def test_unknown_parameter(run_hfpipe_raw, tiny_models, task, model):
    proc = run_hfpipe_raw([task, "--model", str(tiny_models / model), "--param", "foo=1", "hi"])
    line = H.error_line(proc)
    assert "foo" in line, line


@pytest.mark.parametrize("value", ['"bogus"', "3"])
def test_bad_function_to_apply(run_hfpipe_raw, tiny_models, value):
    proc = run_hfpipe_raw([TC, "--model", str(tiny_models / "bert-cls2"),
                           "--param", f"function_to_apply={value}", "hi"])
    line = H.error_line(proc)
    assert has_any(line, "function_to_apply"), line


# ------------------------------------------------------------------ model folder

def test_missing_model_folder(run_hfpipe_raw, tmp_path):
    missing = tmp_path / "no-such-model"
    proc = run_hfpipe_raw([TC, "--model", str(missing), "hi"])
    line = H.error_line(proc)
    assert "no-such-model" in line, line


def test_config_json_missing(run_hfpipe_raw, tiny_models, tmp_path):
    folder = copy_model(tiny_models / "bert-cls2", tmp_path / "m", exclude={"config.json"})
    line = H.error_line(run_hfpipe_raw([TC, "--model", str(folder), "hi"]))
    assert "config.json" in line, line


@pytest.mark.parametrize("content", ["{ not json", "", "[1, 2]", '{"model_type": 7}'],
                         ids=["garbage", "empty", "array", "model_type-not-string"])
def test_config_json_invalid(run_hfpipe_raw, bert_base, content):
    (bert_base / "config.json").write_text(content)
    line = H.error_line(run_hfpipe_raw([FE, "--model", str(bert_base), "hi"]))
    assert "config.json" in line or "model_type" in line, line


def test_unsupported_model_type(run_hfpipe_raw, bert_base):
    cfg = json.loads((bert_base / "config.json").read_text())
    cfg["model_type"] = "foo"
    cfg["architectures"] = ["FooModel"]
    (bert_base / "config.json").write_text(json.dumps(cfg))
    line = H.error_line(run_hfpipe_raw([FE, "--model", str(bert_base), "hi"]))
    assert "foo" in line, line
    assert "bert" in line, f"the message should list the supported model types: {line}"


def test_no_weights(run_hfpipe_raw, bert_base):
    (bert_base / "model.safetensors").unlink()
    line = H.error_line(run_hfpipe_raw([FE, "--model", str(bert_base), "hi"]))
    assert has_any(line, "safetensors", "weights", "pytorch_model.bin"), line


# ------------------------------------------------------------------ safetensors

def read_safetensors(path: Path):
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), data[8 + n:]


def write_safetensors(path: Path, header: dict, body: bytes, header_len: int | None = None):
    raw = json.dumps(header).encode()
    n = len(raw) if header_len is None else header_len
    path.write_bytes(struct.pack("<Q", n) + raw + body)


@pytest.mark.parametrize("keep", [0.5, 0.999, 100, 5], ids=["half", "last-byte-missing", "header-cut", "5-bytes"])
def test_truncated_safetensors(run_hfpipe_raw, bert_base, keep):
    path = bert_base / "model.safetensors"
    data = path.read_bytes()
    n = int(len(data) * keep) if isinstance(keep, float) else keep
    path.write_bytes(data[:n])
    line = H.error_line(run_hfpipe_raw([FE, "--model", str(bert_base), "hi"]))
    assert has_any(line, "safetensor", "truncat", "corrupt"), line


def test_safetensors_offsets_outside_the_file(run_hfpipe_raw, bert_base):
    path = bert_base / "model.safetensors"
    header, body = read_safetensors(path)
    name = max((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"][1])
    begin, end = header[name]["data_offsets"]
    shift = 1 << 40
    header[name]["data_offsets"] = [begin + shift, end + shift]
    write_safetensors(path, header, body)
    line = H.error_line(run_hfpipe_raw([FE, "--model", str(bert_base), "hi"]))
    assert has_any(line, "safetensor", "offset", "outside", "out of", "bounds", "corrupt"), line


def test_safetensors_header_length_outside_the_file(run_hfpipe_raw, bert_base):
    path = bert_base / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[:8] = struct.pack("<Q", (1 << 62) + 17)
    path.write_bytes(bytes(data))
    line = H.error_line(run_hfpipe_raw([FE, "--model", str(bert_base), "hi"]))
    assert has_any(line, "safetensor", "header", "corrupt"), line


def test_safetensors_size_mismatch(run_hfpipe_raw, bert_base):
    """Offsets inside the file but not dtype x shape bytes long."""
    path = bert_base / "model.safetensors"
    header, body = read_safetensors(path)
    name = next(k for k in header if k != "__metadata__" and len(header[k]["shape"]) == 2)
    header[name]["shape"] = [header[name]["shape"][0], header[name]["shape"][1] + 1]
    write_safetensors(path, header, body)
    line = H.error_line(run_hfpipe_raw([FE, "--model", str(bert_base), "hi"]))
    assert has_any(line, "safetensor", "size", "shape", "corrupt"), line


def test_decoder_weight_of_the_wrong_rank(run_hfpipe_raw, tiny_models, tmp_path):
    """A decoder's q_proj stored 3-D (same bytes): a clear error, not a product over the wrong
    layout. The header keeps its length modulo 64, so the tensors stay mapped in place (the
    path that copies f32 weights into column panels on AVX-512 CPUs checks the shape itself)."""
    model = copy_model(tiny_models / "llama-causal-lm", tmp_path / "model")
    path = model / "model.safetensors"
    (old_length,) = struct.unpack("<Q", path.read_bytes()[:8])
    header, body = read_safetensors(path)
    name = next(k for k in header if k.endswith("layers.0.self_attn.q_proj.weight"))
    rows, cols = header[name]["shape"]
    header[name]["shape"] = [rows, cols // 2, 2]
    raw = json.dumps(header)
    raw += " " * ((old_length - len(raw)) % 64)  # safetensors pads its header with spaces too
    path.write_bytes(struct.pack("<Q", len(raw)) + raw.encode() + body)
    line = H.error_line(run_hfpipe_raw(["text-generation", "--model", str(model), "hello"]))
    assert has_any(line, "must be F32"), line
    assert "[out, in]" in line or "[rows, columns]" in line, line


# ------------------------------------------------------------------ pickle

class _Evil:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_pickle_with_a_non_tensor_global_is_refused(run_hfpipe_raw, bert_base, tmp_path):
    """A pytorch_model.bin (a real torch.save zip) whose pickle calls os.system: refused with a
    clear error, and the command never runs."""
    import torch
    from safetensors.torch import load_file
    marker = tmp_path / "marker"
    state = load_file(bert_base / "model.safetensors")
    state["evil"] = _Evil(f"touch {marker}")
    (bert_base / "model.safetensors").unlink()
    torch.save(state, bert_base / "pytorch_model.bin")
    raw = (bert_base / "pytorch_model.bin").read_bytes()
    assert raw[:2] == b"PK", "torch.save should write a zip"
    proc = run_hfpipe_raw([FE, "--model", str(bert_base), "hi"], cwd=tmp_path)
    line = H.error_line(proc)
    assert not marker.exists(), "hfpipe executed the pickle!"
    assert has_any(line, "pickle", "global", "system", "not allowed", "unsupported", "refus"), line


def test_plain_pickle_bin_is_refused(run_hfpipe_raw, bert_base, tmp_path):
    """Not even a zip: a bare pickle stream with a GLOBAL opcode."""
    marker = tmp_path / "marker2"
    (bert_base / "model.safetensors").unlink()
    (bert_base / "pytorch_model.bin").write_bytes(pickle.dumps(_Evil(f"touch {marker}"), protocol=2))
    proc = run_hfpipe_raw([FE, "--model", str(bert_base), "hi"], cwd=tmp_path)
    H.error_line(proc)
    assert not marker.exists(), "hfpipe executed the pickle!"


def test_truncated_pytorch_model_bin(run_hfpipe_raw, tiny_models, tmp_path):
    folder = copy_model(tiny_models / "bert-cls2-bin", tmp_path / "m")
    path = folder / "pytorch_model.bin"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    line = H.error_line(run_hfpipe_raw([TC, "--model", str(folder), "hi"]))
    assert has_any(line, "pytorch_model.bin", "zip", "truncat", "corrupt"), line
