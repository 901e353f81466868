"""fill-mask parity: hfpipe CLI vs transformers.pipeline on the same tiny folders.

One hfpipe process per (model, parameter set) with every input on stdin (--jsonl); the
reference is pipe(x, **params) per input. Inputs are written with the model's own mask token.
"""
from __future__ import annotations

import json
import logging

import pytest

import hfpipe_helpers as H
import make_tiny_models as M

TASK = "fill-mask"
MODELS = M.names(task=TASK)

TEMPLATES = [
    "The capital of France is {m}.",
    "{m} is the best thing about {m} and {m}",           # several masks, one at the very start
    "Unicode: café {m} 東京 😀 naïve",
    "{m}",
    "Hello world, it is a {m}",                          # mask at the end
    "  spaces   around {m}   here  ",
    "Don't {m} it, it's the {m}'s !",
]
# a probability gap below this between neighbours of a ranking is a near-tie: float rounding
# may order the two tokens either way, so the pair is compared as a set
NEAR_TIE = 1e-5


def texts_for(folder):
    mask = H.reference_pipeline(TASK, str(folder)).tokenizer.mask_token
    return [t.format(m=mask) for t in TEMPLATES]


def _rows(result):
    """The prediction lists of one result (one list per mask)."""
    return result if result and isinstance(result[0], list) else [result]


def assert_fill_same(got, want, inputs, what):
    """Exact tokens, strings and shapes, scores within H.ATOL; two neighbours whose reference
    scores are a near-tie may come in either order."""
    assert len(got) == len(want)
    for x, g, w in zip(inputs, got, want):
        assert isinstance(g, list) and isinstance(w, list) and len(g) == len(w), (x, g, w)
        if w and isinstance(w[0], list):
            assert g and isinstance(g[0], list), f"{what}: {x!r}: expected a list per mask, got {g}"
        for grow, wrow in zip(_rows(g), _rows(w)):
            grow = list(grow)
            for i in range(len(wrow) - 1):
                if (grow[i]["token"] != wrow[i]["token"] and grow[i]["token"] == wrow[i + 1]["token"]
                        and abs(wrow[i]["score"] - wrow[i + 1]["score"]) < NEAR_TIE):
                    grow[i], grow[i + 1] = grow[i + 1], grow[i]
            if grow and wrow and grow[-1]["token"] != wrow[-1]["token"]:
                # the last place: a near-tie with the first token left out is no error
                assert abs(grow[-1]["score"] - wrow[-1]["score"]) < NEAR_TIE, (what, x, grow[-1], wrow[-1])
                grow[-1] = wrow[-1] | {"score": grow[-1]["score"]}
            H.assert_same(grow, wrow, what=f"{what} {H.describe_input(x)}")


PARAMS = {
    "default": {},
    "top_k=1": {"top_k": 1},
    "top_k=12": {"top_k": 12},
    "top_k=0": {"top_k": 0},
    "targets-in-vocab": {"targets": "IN_VOCAB"},
    "targets-one-string": {"targets": "ONE"},
    "targets-top_k=1": {"targets": "IN_VOCAB", "top_k": 1},
    "targets-oov": {"targets": "OOV"},
    "tokenizer_kwargs": {"tokenizer_kwargs": {"truncation": True, "max_length": 64}},
}


def _targets(folder):
    """Targets from the folder's own vocabulary (the 200th to 205th entries and a repeat), one
    entry, and out-of-vocabulary words (replaced by their first token)."""
    tok = H.reference_pipeline(TASK, str(folder)).tokenizer
    vocab = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
    words = [w for w, _ in vocab[2000:2006]]
    return {"IN_VOCAB": words + words[:1], "ONE": words[0],
            "OOV": ["Zzyzxqwerty", "Schwarzenegger", words[1], "東京タワー"]}


def _resolve(params, targets):
    p = dict(params)
    if "targets" in p:
        p["targets"] = targets[p["targets"]]
    return p


@pytest.mark.parametrize("model", MODELS)
def test_parity(run_hfpipe, tiny_models, model):
    folder = tiny_models / model
    texts = texts_for(folder)
    targets = _targets(folder)
    for pid, params in PARAMS.items():
        params = _resolve(params, targets)
        got = run_hfpipe(TASK, folder, texts, params, batch_size=3)
        want = H.reference_outputs(TASK, folder, texts, params)
        assert_fill_same(got, want, texts, f"{model} {pid}")


@pytest.mark.parametrize("model", MODELS)
def test_batch_size_and_shapes(run_hfpipe, tiny_models, model):
    """--batch-size 1 and 4 agree; one argument prints pipe(text), several pipe([texts])."""
    folder = tiny_models / model
    texts = texts_for(folder)
    b1 = run_hfpipe(TASK, folder, texts, {"top_k": 3}, batch_size=1)
    b4 = run_hfpipe(TASK, folder, texts, {"top_k": 3}, batch_size=4)
    H.assert_identical(b4, b1, what=f"{model} --batch-size 4 vs 1")
    for args in (texts[:1], texts[1:2], texts[:3]):
        got = run_hfpipe(TASK, folder, args, {"top_k": 2}, jsonl=False)
        if len(args) == 1:
            want = H.reference_call(TASK, folder, args[0], {"top_k": 2})
            assert_fill_same([got], [want], args, f"{model} one argument")
        else:
            want = H.reference_call(TASK, folder, args, {"top_k": 2})
            assert_fill_same(got, want, args, f"{model} several arguments")


def _transformers_warnings(fn):
    """Runs fn with transformers' warnings captured; returns (result, messages)."""
    import transformers
    logger = logging.getLogger("transformers.pipelines.fill_mask")
    records = []
    handler = logging.Handler()
    handler.emit = lambda r: records.append(r.getMessage())
    logger.addHandler(handler)
    level = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_warning()
    try:
        return fn(), records
    finally:
        transformers.logging.set_verbosity(level)
        logger.removeHandler(handler)


@pytest.mark.parametrize("model", MODELS)
def test_out_of_vocabulary_target_warnings(run_hfpipe_raw, tiny_models, model):
    """The replacement warnings go to stderr with transformers' text; stdout keeps the result."""
    folder = tiny_models / model
    text = texts_for(folder)[0]
    targets = _targets(folder)["OOV"]
    pipe = H.reference_pipeline(TASK, str(folder))
    want, messages = _transformers_warnings(lambda: pipe(text, targets=targets))
    assert messages
    proc = run_hfpipe_raw([TASK, "--model", str(folder), "--param", f"targets={json.dumps(targets)}", text])
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.decode().splitlines() == messages
    assert_fill_same([json.loads(proc.stdout)], [H._jsonable(want)], [text], f"{model} oov")


# ------------------------------------------------------------------ bad input


def _reference_error(folder, text, params):
    pipe = H.reference_pipeline(TASK, str(folder))
    with pytest.raises(Exception) as info:
        pipe(text, **params)
    return info.value


@pytest.mark.parametrize("model", MODELS)
def test_no_mask_token(run_hfpipe_raw, tiny_models, model):
    """Same text as transformers' PipelineException, naming the model's own mask token."""
    folder = tiny_models / model
    for text in ("no mask here", ""):
        err = _reference_error(folder, text, {})
        line = H.error_line(run_hfpipe_raw([TASK, "--model", str(folder), text]))
        assert line.endswith(str(err)), (line, str(err))


@pytest.mark.parametrize("params,keyword", [
    ({"top_k": 10**6}, "top_k"),
    ({"top_k": -1}, "top_k"),
    ({"targets": []}, "At least one target must be provided when passed."),
])
def test_refused_parameters(run_hfpipe_raw, tiny_models, params, keyword):
    folder = tiny_models / MODELS[0]
    text = texts_for(folder)[0]
    _reference_error(folder, text, params)
    args = [TASK, "--model", str(folder)]
    for k, v in params.items():
        args += ["--param", f"{k}={json.dumps(v)}"]
    line = H.error_line(run_hfpipe_raw(args + [text]))
    assert keyword in line, line


def test_unknown_parameter_and_non_string(run_hfpipe_raw, tiny_models):
    folder = tiny_models / MODELS[0]
    text = texts_for(folder)[0]
    _reference_error(folder, text, {"bogus": 1})
    line = H.error_line(run_hfpipe_raw([TASK, "--model", str(folder), "--param", "bogus=1", text]))
    assert "bogus" in line, line
    _reference_error(folder, 42, {})
    line = H.error_line(run_hfpipe_raw([TASK, "--model", str(folder), "--jsonl"], stdin=b"42\n"))
    assert "string" in line, line


def test_too_long_input(run_hfpipe_raw, tiny_models):
    """transformers fails inside the embedding; hfpipe says what is wrong and how to truncate,
    and with tokenizer_kwargs truncation matches transformers."""
    folder = tiny_models / MODELS[0]
    mask = H.reference_pipeline(TASK, str(folder)).tokenizer.mask_token
    text = f"A {mask} here. " + H.LONG_TEXT
    line = H.error_line(run_hfpipe_raw([TASK, "--model", str(folder), text]))
    assert "tokenizer_kwargs" in line, line
    params = {"tokenizer_kwargs": {"truncation": True}}
    proc = run_hfpipe_raw([TASK, "--model", str(folder), "--param", f"tokenizer_kwargs={json.dumps(params['tokenizer_kwargs'])}", text])
    assert proc.returncode == 0, proc.stderr
    assert_fill_same([json.loads(proc.stdout)], [H.reference_call(TASK, folder, text, params)], [text], "truncated")
