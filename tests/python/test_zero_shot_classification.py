"""zero-shot-classification parity: hfpipe CLI vs transformers.pipeline on the same tiny NLI
folders (labels neutral/entailment/contradiction: entailment is neither first nor last).

One hfpipe process per (model, parameter set) classifies every input (--jsonl); the reference
is pipe(x, **params) per input. Labels and their order exact, scores within 1e-4.
"""
from __future__ import annotations

import json
import os
import shutil

import pytest

import hfpipe_helpers as H
import make_tiny_models as M

TASK = "zero-shot-classification"
MODELS = M.names(task=TASK)
# One thread per hfpipe process: the tiny models gain nothing from more, and OpenMP threads
# spinning on a shared 2-core machine made each run ~40x more expensive in CPU time.
THREADS = os.environ.get("HFPIPE_TEST_THREADS", "1")

INPUTS = [
    H.TEXTS["plain"],
    H.TEXTS["accents"],
    H.TEXTS["cjk"],
    H.TEXTS["emoji"],
    " ".join(H._LONG_SENTENCES[:3]),
    H.LONG_TEXT,  # over 512 tokens: truncated only_first to the tokenizer's model_max_length
    [H.TEXTS["caps"], H.TEXTS["symbols"]],  # a list in one call: a list of results
]

PARAMS = {
    "list": {"candidate_labels": ["sports", "politics", "science and technology"]},
    "labels with commas and spaces": {"candidate_labels": ["sports, games", " politics ", "food,", "a b  c"]},
    "comma-separated string": {"candidate_labels": "sports, politics ,, science  ,cooking,"},
    "multi_label": {"candidate_labels": ["sports", "politics", "science", "travel"], "multi_label": True},
    "template": {"candidate_labels": ["happy", "sad"], "hypothesis_template": "The writer feels {} today."},
    "template with braces": {"candidate_labels": ["news", "fiction"],
                             "hypothesis_template": "{{Genre}}: {0}, not {{}}."},
    "single label": {"candidate_labels": ["urgent"]},
    "single label, multi_label": {"candidate_labels": "urgent", "multi_label": True},
    "multi_class (deprecated)": {"candidate_labels": ["sports", "politics"], "multi_class": True},
}


def _check(run_hfpipe, reference, folder, inputs, params, **kw):
    got = run_hfpipe(TASK, folder, inputs, params, threads=THREADS, **kw)
    want = reference.reference_outputs(TASK, folder, inputs, params)
    H.assert_each_same(got, want, inputs, what=f"{folder.name} {params}")
    return got


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("pid", list(PARAMS))
def test_jsonl_parity(run_hfpipe, reference, tiny_models, model, pid):
    _check(run_hfpipe, reference, tiny_models / model, INPUTS, PARAMS[pid])


@pytest.mark.parametrize("model", MODELS)
def test_batch_size(run_hfpipe, reference, tiny_models, model):
    """All (sequence, label) pairs of a call in batches of 4: the results of batches of 1."""
    folder, params = tiny_models / model, PARAMS["labels with commas and spaces"]
    b1 = _check(run_hfpipe, reference, folder, INPUTS, params, batch_size=1)
    b4 = _check(run_hfpipe, reference, folder, INPUTS, params, batch_size=4)
    H.assert_identical(b4, b1, what=f"{model} --batch-size 4 vs 1")


def test_arguments(run_hfpipe, reference, tiny_models):
    """Several INPUT arguments print pipe([texts...], **params); one prints pipe(text)."""
    folder, params = tiny_models / "roberta-nli", PARAMS["list"]
    texts = [H.TEXTS["plain"], H.TEXTS["caps"]]
    H.assert_same(run_hfpipe(TASK, folder, texts, params, jsonl=False, threads=THREADS),
                  reference.reference_call(TASK, folder, texts, params), what="several arguments")
    H.assert_same(run_hfpipe(TASK, folder, texts[:1], params, jsonl=False, threads=THREADS),
                  reference.reference_call(TASK, folder, texts[0], params), what="one argument")


def _relabelled(src, dst, labels):
    """A copy of an NLI folder whose config names its three outputs `labels`."""
    shutil.copytree(src, dst)
    cfg = json.loads((dst / "config.json").read_text())
    cfg["id2label"] = {str(i): l for i, l in enumerate(labels)}
    cfg["label2id"] = {l: i for i, l in enumerate(labels)}
    (dst / "config.json").write_text(json.dumps(cfg, indent=2))
    return dst


@pytest.mark.parametrize("labels", [["ENTAILMENT", "neutral", "contradiction"],  # entailment first
                                    ["yes", "maybe", "no"],                         # none: -1 fallback
                                    ["contradiction", "neutral", "Entails"]],        # prefix, any case
                         ids=["entailment-first", "no-entailment-label", "entails-last"])
def test_entailment_position(run_hfpipe, reference, tiny_models, tmp_path, labels):
    """transformers' entailment id (first label2id key starting with "entail", else -1) and
    contradiction id (0, or -1 when entailment is 0) on both score paths."""
    folder = _relabelled(tiny_models / "bert-nli", tmp_path / "nli", labels)
    for params in (PARAMS["list"], PARAMS["multi_label"], PARAMS["single label"]):
        _check(run_hfpipe, reference, folder, INPUTS[:3], params)


# ------------------------------------------------------------------------------ bad input

def _reference_error(folder, text, params):
    pipe = H.reference_pipeline(TASK, str(folder))
    try:
        pipe(text, **params)
    except Exception as e:
        return str(e.args[0]) if e.args else str(e)
    raise AssertionError("transformers accepted it")


BAD = {
    "empty candidate_labels": ("Hello", {"candidate_labels": []}, True),
    "candidate_labels without a label": ("Hello", {"candidate_labels": " , ,"}, True),
    "empty sequence": ("", {"candidate_labels": ["a"]}, True),
    "template without {}": ("Hello", {"candidate_labels": ["a"], "hypothesis_template": "This example is."}, True),
    "missing candidate_labels": ("Hello", {}, False),   # transformers: TypeError on len(None)
    "unknown parameter": ("Hello", {"candidate_labels": ["a"], "top_k": 1}, False),  # transformers ignores it
    "non-string label": ("Hello", {"candidate_labels": ["a", 3]}, False),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input(run_hfpipe_raw, tiny_models, case):
    """A clean error (no crash), with transformers' message where transformers has one."""
    folder = tiny_models / "bert-nli"
    text, params, same_text = BAD[case]
    args = [TASK, "--model", str(folder), "--threads", THREADS, "--jsonl"]
    for k, v in params.items():
        args += ["--param", f"{k}={json.dumps(v)}"]
    line = H.error_line(run_hfpipe_raw(args, stdin=H.jsonl_stdin([text])))
    if same_text:
        assert _reference_error(folder, text, params) in line, line
    else:
        assert ("candidate_labels" in line) or ("top_k" in line), line
