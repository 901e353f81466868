"""text-classification parity: hfpipe CLI vs transformers.pipeline on the same tiny folders.

Each hfpipe process gets many inputs (--jsonl); the reference is pipe(x, **params) per input,
with the parameters given at call time, as the CLI contract says.
"""
from __future__ import annotations

import pytest

import hfpipe_helpers as H
import make_tiny_models as M

TASK = "text-classification"

SHORT = list(H.TEXTS.values()) + list(H.PAIRS.values())
WITH_LONG = SHORT + [H.LONG_TEXT, H.LONG_PAIR]

# Parameters given at call time (pipe(x, **params)); ids name them in the test report.
CORE_PARAMS = {
    "default": {},
    "top_k=null": {"top_k": None},
    "top_k=null,fn=none": {"top_k": None, "function_to_apply": "none"},
    "return_all_scores=true": {"return_all_scores": True},
}
ALL_PARAMS = {
    **CORE_PARAMS,
    "top_k=1": {"top_k": 1},
    "top_k=2": {"top_k": 2},
    "top_k=10": {"top_k": 10},
    "fn=sigmoid": {"function_to_apply": "sigmoid"},
    "fn=softmax": {"function_to_apply": "softmax"},
    "fn=none": {"function_to_apply": "none"},
    "fn=SIGMOID": {"function_to_apply": "SIGMOID"},
    "top_k=null,fn=sigmoid": {"top_k": None, "function_to_apply": "sigmoid"},
    "return_all_scores=false": {"return_all_scores": False},
    "return_all_scores=true,fn=softmax": {"return_all_scores": True, "function_to_apply": "softmax"},
    "return_all_scores=true,top_k=2": {"return_all_scores": True, "top_k": 2},
}
TRUNC_PARAMS = {
    "truncation=true": {"truncation": True},
    "truncation=true,top_k=null": {"truncation": True, "top_k": None},
}

# Post-processing does not depend on the architecture: every parameter set on BERT and MPNet,
# the core sets on the other architectures; every head everywhere.
FULL_ARCHS = ("bert", "mpnet")
CLASSIFIERS = M.names(task=TASK, variants=False)
VARIANTS = M.names(task=TASK, variants=True)


def _matrix():
    for name in CLASSIFIERS:
        arch = M.BY_NAME[name].arch
        for pid, params in (ALL_PARAMS if arch in FULL_ARCHS else CORE_PARAMS).items():
            yield pytest.param(name, params, id=f"{name}-{pid}")


def _check_jsonl(run_hfpipe, reference, folder, inputs, params, **kw):
    got = run_hfpipe(TASK, folder, inputs, params, **kw)
    want = reference.reference_outputs(TASK, folder, inputs, params)
    H.assert_each_same(got, want, inputs, what=f"{folder.name} {params}")
    return got


@pytest.mark.parametrize("model,params", list(_matrix()))
def test_jsonl_parity(run_hfpipe, reference, tiny_models, model, params):
    _check_jsonl(run_hfpipe, reference, tiny_models / model, SHORT, params)


@pytest.mark.parametrize("model", CLASSIFIERS)
@pytest.mark.parametrize("pid", list(TRUNC_PARAMS))
def test_truncation_of_long_inputs(run_hfpipe, reference, tiny_models, model, pid):
    """A ~640-word text (and a pair holding it) with truncation=true, among short inputs."""
    _check_jsonl(run_hfpipe, reference, tiny_models / model, WITH_LONG, TRUNC_PARAMS[pid])


@pytest.mark.parametrize("model", VARIANTS)
@pytest.mark.parametrize("pid", ["default", "top_k=null,fn=none"])
def test_loading_variants(run_hfpipe, reference, tiny_models, model, pid):
    """.bin, sharded, float16/bfloat16 and gamma/beta checkpoints classify as transformers does."""
    _check_jsonl(run_hfpipe, reference, tiny_models / model, SHORT, CORE_PARAMS[pid])


ARGS_MODELS = ["bert-cls5", "bert-single", "roberta-regression"]
ARGS_PARAMS = ["default", "top_k=1", "top_k=2", "top_k=null", "return_all_scores=true",
               "return_all_scores=false", "fn=none"]


@pytest.mark.parametrize("model", ARGS_MODELS)
@pytest.mark.parametrize("pid", ARGS_PARAMS)
def test_arguments_single_input_shape(run_hfpipe, reference, tiny_models, model, pid):
    """One INPUT argument prints exactly pipe(text, **params) (e.g. [{...}] vs [[...]])."""
    folder, params = tiny_models / model, ALL_PARAMS[pid]
    text = H.TEXTS["plain"]
    got = run_hfpipe(TASK, folder, [text], params, jsonl=False)
    H.assert_same(got, reference.reference_call(TASK, folder, text, params),
                  what=f"{model} {params} single argument")


@pytest.mark.parametrize("model", ARGS_MODELS)
@pytest.mark.parametrize("pid", ARGS_PARAMS)
def test_arguments_several_inputs_shape(run_hfpipe, reference, tiny_models, model, pid):
    """Several INPUT arguments print exactly pipe([texts...], **params)."""
    folder, params = tiny_models / model, ALL_PARAMS[pid]
    texts = [H.TEXTS["plain"], H.TEXTS["empty"], H.TEXTS["accents"]]
    got = run_hfpipe(TASK, folder, texts, params, jsonl=False)
    H.assert_same(got, reference.reference_call(TASK, folder, texts, params),
                  what=f"{model} {params} several arguments")


def test_jsonl_pair_output_shape(run_hfpipe, reference, tiny_models):
    """pipe({"text","text_pair"}) gives a bare dict (not a list) unless top_k is passed."""
    folder = tiny_models / "bert-cls2"
    pair = H.PAIRS["pair"]
    for params in ({}, {"top_k": 1}, {"top_k": None}, {"return_all_scores": True}):
        got = run_hfpipe(TASK, folder, [pair], params)
        H.assert_same(got[0], reference.reference_call(TASK, folder, pair, params),
                      what=f"pair {params}")


@pytest.mark.parametrize("arch", M.ARCHS)
def test_batch_size_mixed_lengths(run_hfpipe, reference, tiny_models, arch):
    """A batch of mixed lengths: --batch-size 1 and 4 both match transformers (unbatched) and
    are identical to each other (results in input order, padding never leaks)."""
    model = f"{arch}-cls5" if f"{arch}-cls5" in M.BY_NAME else f"{arch}-cls2"  # HEADS_OF
    folder = tiny_models / model
    inputs = H.MIXED_BATCH + [H.PAIRS["pair"], H.LONG_TEXT]
    params = {"truncation": True, "top_k": None}
    b1 = _check_jsonl(run_hfpipe, reference, folder, inputs, params, batch_size=1)
    b4 = _check_jsonl(run_hfpipe, reference, folder, inputs, params, batch_size=4)
    H.assert_identical(b4, b1, what=f"{model} --batch-size 4 vs 1")


def test_batch_size_arguments(run_hfpipe, reference, tiny_models):
    folder = tiny_models / "roberta-multilabel"
    want = reference.reference_call(TASK, folder, H.MIXED_BATCH, {"top_k": None})
    b1 = run_hfpipe(TASK, folder, H.MIXED_BATCH, {"top_k": None}, jsonl=False, batch_size=1)
    b4 = run_hfpipe(TASK, folder, H.MIXED_BATCH, {"top_k": None}, jsonl=False, batch_size=4)
    H.assert_same(b1, want, what="arguments --batch-size 1")
    H.assert_same(b4, want, what="arguments --batch-size 4")
    H.assert_identical(b4, b1, what="arguments --batch-size 4 vs 1")


def test_sentiment_analysis_alias(run_hfpipe, reference, tiny_models):
    folder = tiny_models / "distilbert-cls2"
    got = run_hfpipe("sentiment-analysis", folder, SHORT)
    H.assert_each_same(got, reference.reference_outputs(TASK, folder, SHORT), SHORT,
                       what="sentiment-analysis alias")


@pytest.mark.parametrize("text", [H.TEXTS["empty"], H.TEXTS["whitespace"]], ids=["empty", "whitespace"])
def test_empty_and_whitespace_are_not_errors(run_hfpipe, reference, tiny_models, text):
    """transformers tokenizes them to [CLS] [SEP] and classifies that; so must hfpipe."""
    folder = tiny_models / "bert-cls2"
    got = run_hfpipe(TASK, folder, [text], jsonl=False)
    H.assert_same(got, reference.reference_call(TASK, folder, text), what=repr(text))


def test_function_to_apply_default_string(run_hfpipe_raw, reference, tiny_models):
    """function_to_apply="default" is documented but transformers 4.57.6 raises KeyError on it
    (ClassificationFunction has no DEFAULT). hfpipe may refuse it the same way (a clean error)
    or treat it as documented (the same result as no function_to_apply)."""
    folder = tiny_models / "bert-cls5"
    text = H.TEXTS["plain"]
    proc = run_hfpipe_raw([TASK, "--model", str(folder), "--param", 'function_to_apply="default"', text])
    if proc.returncode != 0:
        H.error_line(proc)
    else:
        import json
        H.assert_same(json.loads(proc.stdout), reference.reference_call(TASK, folder, text),
                      what='function_to_apply="default"')


def test_long_text_is_over_the_limit_for_every_tokenizer(tiny_models, reference):
    """The truncation tests only mean something if LONG_TEXT is over 512 tokens."""
    for arch in M.ARCHS:
        tok = reference.reference_pipeline(TASK, str(tiny_models / f"{arch}-cls2")).tokenizer
        n = len(tok(H.LONG_TEXT)["input_ids"])
        assert n > 520, f"{arch}: LONG_TEXT is only {n} tokens"
