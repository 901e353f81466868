"""pipeline(..., torch_dtype=...) / dtype=...: bfloat16 products for the encoder tasks
(text-generation's, and the seq2seq tasks' refusal: test_generation_dtype.py).

hfpipe's bfloat16 rounds the input and the weight of every encoder-layer product to bfloat16
and accumulates in float32 (AMX / AVX-512-BF16 kernels; on AVX2 CPUs f32 kernels over the
bf16-rounded values, so every CPU runs the tests below), keeping everything between
the products (LayerNorm, softmax, residuals) in float32. transformers' bfloat16 keeps every
activation in bfloat16. The two are different numbers, so parity here means: hfpipe's bfloat16
result is no further from the float32 reference than transformers' own bfloat16 result is, and
it really is a bfloat16 result (not the float32 one). Labels and spans are not compared on the
tiny random models: their scores are near ties that either precision may order differently.
"""
from __future__ import annotations

import functools

import numpy as np
import pytest

import hfpipe_helpers as H

TEXTS = [H.TEXTS["plain"], H.TEXTS["accents"], H.TEXTS["cjk"], H.TEXTS["emoji"], H.LONG_TEXT[:400]]
ARCHS = ["bert", "distilbert", "roberta", "xlmr", "mpnet", "albert", "electra", "deberta", "debertav2", "debertav3"]
BF16 = {"torch_dtype": "bfloat16"}


@functools.lru_cache(maxsize=None)
def _transformers_bf16(task: str, folder: str):
    H._quiet_transformers()
    import torch
    from transformers import pipeline
    return pipeline(task, model=folder, dtype=torch.bfloat16, device="cpu")


def _arrays(results):
    return [np.asarray(r, dtype=np.float64) for r in results]


def _max_abs(a, b):
    return max(float(np.abs(x - y).max()) for x, y in zip(_arrays(a), _arrays(b)))


def _transformers_bf16_outputs(task, folder, inputs):
    """transformers' bfloat16 outputs, or None where transformers cannot run the model in
    bfloat16 (DeBERTa v1's relative attention multiplies a float32 by a bfloat16 tensor)."""
    pipe = _transformers_bf16(task, str(folder))
    try:
        return [H._jsonable(pipe(x)) for x in inputs]
    except RuntimeError as e:
        if "same dtype" in str(e):
            return None
        raise



@pytest.mark.parametrize("arch", ARCHS)
def test_hidden_states_as_close_as_transformers_bf16(run_hfpipe, run_hfpipe_raw, reference, tiny_models, arch):
    folder = tiny_models / f"{arch}-base"
    f32 = reference.reference_outputs("feature-extraction", folder, TEXTS)
    ours = run_hfpipe("feature-extraction", folder, TEXTS, BF16)
    theirs = _transformers_bf16_outputs("feature-extraction", folder, TEXTS)
    ours_error = _max_abs(ours, f32)
    bound = 1.25 * _max_abs(theirs, f32) if theirs is not None else 0.05
    assert ours_error <= bound, f"{arch}: hfpipe bf16 {ours_error:.2e} from float32, bound {bound:.2e}"
    assert ours_error > 1e-3, f"{arch}: bf16 output equals float32 ({ours_error:.1e}): products not in bf16?"


def test_real_model_embeddings(run_hfpipe, run_hfpipe_raw, reference, real_models):
    """all-MiniLM-L6-v2: token embeddings closer to float32 than transformers' bfloat16 ones,
    every sequence's cosine with the float32 one >= 0.9999."""
    folder = real_models / "all-MiniLM-L6-v2"
    f32 = reference.reference_outputs("feature-extraction", folder, TEXTS)
    ours = run_hfpipe("feature-extraction", folder, TEXTS, BF16)
    theirs = _transformers_bf16_outputs("feature-extraction", folder, TEXTS)
    assert _max_abs(ours, f32) <= _max_abs(theirs, f32)
    for o, r in zip(_arrays(ours), _arrays(f32)):
        cosine = float(o.ravel() @ r.ravel() / np.linalg.norm(o) / np.linalg.norm(r))
        assert cosine >= 0.9999


@pytest.mark.parametrize("task,model,inputs,params", [
    ("text-classification", "bert-cls5", TEXTS, {"top_k": None}),
    ("zero-shot-classification", "debertav3-nli", TEXTS[:2], {"candidate_labels": ["a", "b c", "d"]}),
    ("token-classification", "roberta-ner", TEXTS[:3], {}),
    ("question-answering", "deberta-qa", [{"question": "Who?", "context": TEXTS[0]}], {}),
    ("fill-mask", "electra-mlm", ["Paris is the [MASK] of France."], {"top_k": 3}),
])
def test_every_encoder_task_takes_it(run_hfpipe, run_hfpipe_raw, tiny_models, task, model, inputs, params):
    """Each encoder task builds its model in bfloat16 and answers in the float32 run's shape;
    where every label gets a probability, label by label within 0.05 of the float32 one."""
    folder = tiny_models / model
    f32 = run_hfpipe(task, folder, inputs, params)
    bf16 = run_hfpipe(task, folder, inputs, {**params, "dtype": "torch.bfloat16"})

    def shape(x):
        if isinstance(x, dict):
            return {k: shape(v) for k, v in x.items() if k not in ("score", "start", "end", "answer", "word",
                                                                   "token", "token_str", "sequence", "entity",
                                                                   "index")}
        if isinstance(x, list):
            return [shape(v) for v in x]
        return type(x).__name__

    assert shape(bf16) == shape(f32)
    if task == "text-classification":
        for ours, want in zip(bf16, f32):
            want_by_label = {d["label"]: d["score"] for d in want}
            assert sorted(want_by_label) == sorted(d["label"] for d in ours)
            assert all(abs(d["score"] - want_by_label[d["label"]]) < 0.05 for d in ours)
    if task == "zero-shot-classification":
        for ours, want in zip(bf16, f32):
            want_by_label = dict(zip(want["labels"], want["scores"]))
            assert all(abs(s - want_by_label[lab]) < 0.05 for lab, s in zip(ours["labels"], ours["scores"]))


def test_auto_follows_the_checkpoint(run_hfpipe, run_hfpipe_raw, tiny_models):
    """torch_dtype="auto": a checkpoint whose config says bfloat16 runs bfloat16 products (the
    same output as asking for them), a float32 one runs float32 (the default output)."""
    bf16_folder, f32_folder = tiny_models / "xlmr-base-bf16", tiny_models / "xlmr-base"
    auto = {"torch_dtype": "auto"}
    H.assert_identical(run_hfpipe("feature-extraction", bf16_folder, TEXTS[:2], auto),
                       run_hfpipe("feature-extraction", bf16_folder, TEXTS[:2], BF16), what="auto on bf16")
    H.assert_identical(run_hfpipe("feature-extraction", f32_folder, TEXTS[:2], auto),
                       run_hfpipe("feature-extraction", f32_folder, TEXTS[:2]), what="auto on f32")


def test_batch_size_and_threads_do_not_change_bf16_results(run_hfpipe, run_hfpipe_raw, tiny_models):
    """A row's bf16 result does not depend on the rows multiplied with it (64-row chunks, padded
    batches) nor on the thread count (oneDNN splits the columns between threads)."""
    folder = tiny_models / "bert-base"
    inputs = H.MIXED_BATCH + [H.LONG_TEXT]
    params = {**BF16, "truncation": True}
    one = run_hfpipe("feature-extraction", folder, inputs, params, batch_size=1, threads=1)
    H.assert_same(run_hfpipe("feature-extraction", folder, inputs, params, batch_size=4, threads=1), one, atol=1e-6,
                  what="bf16 --batch-size 4 vs 1")
    H.assert_same(run_hfpipe("feature-extraction", folder, inputs, params, batch_size=4, threads=2), one, atol=1e-6,
                  what="bf16 --threads 2 vs 1")


@pytest.mark.parametrize("params,message", [
    ({"torch_dtype": "float16"}, "torch_dtype float16 is not supported on CPU"),
    ({"torch_dtype": "bf16"}, "unknown torch_dtype 'bf16'; supported: float32, bfloat16, auto"),
    ({"torch_dtype": 16}, "torch_dtype must be a string"),
    ({"torch_dtype": "bfloat16", "dtype": "bfloat16"}, "torch_dtype is given twice"),
    ({"dtype": "bfloat16", "model_kwargs": {"torch_dtype": "bfloat16"}}, "torch_dtype is given twice"),
])
def test_bad_values(run_hfpipe_raw, tiny_models, params, message):
    proc = run_hfpipe_raw(H.hfpipe_command("", "feature-extraction", tiny_models / "bert-base", ["x"], params,
                                           jsonl=False)[1:])
    assert proc.returncode != 0
    assert message in H.error_line(proc)


def test_float32_is_the_default(run_hfpipe, tiny_models):
    folder = tiny_models / "bert-base"
    for params in ({"torch_dtype": "float32"}, {"dtype": "torch.float32"}, {"torch_dtype": None},
                   {"model_kwargs": {"torch_dtype": "float32"}}):
        H.assert_identical(run_hfpipe("feature-extraction", folder, TEXTS[:2], params),
                           run_hfpipe("feature-extraction", folder, TEXTS[:2]), what=str(params))
