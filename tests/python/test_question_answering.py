"""question-answering parity: hfpipe CLI vs transformers.pipeline on the same tiny folders.

One hfpipe process per (model, parameter set) answers every input (--jsonl); the reference is
pipe(x, **params) per input. Answers, start and end must be equal, scores within 1e-4.
"""
from __future__ import annotations

import json
import os

import pytest

import hfpipe_helpers as H
import make_tiny_models as M

TASK = "question-answering"
MODELS = M.names(task=TASK)
# One thread per hfpipe process: the tiny models gain nothing from more, and OpenMP threads
# spinning on a shared 2-core machine made each run ~40x more expensive in CPU time.
THREADS = os.environ.get("HFPIPE_TEST_THREADS", "1")

MEDIUM = " ".join(H._LONG_SENTENCES)
SHORT_CONTEXT = {"question": "What is the name of the capital city where the famous physicist worked for many years?",
                 "context": "Berlin."}

# Inputs whose answers every parameter set below can compare: each context offers more
# candidate spans than the largest top_k asks for (see ZERO_SPANS below for why that matters).
INPUTS = [
    {"question": "Where do I live?", "context": "My name is Wolfgang and I live in Berlin."},
    {"question": "Qui a écrit ce résumé?", "context": H.TEXTS["accents"]},
    {"question": "何が面白い?", "context": H.TEXTS["cjk"]},
    {"question": "What do I love?", "context": H.TEXTS["emoji"]},
    {"question": "How much revenue did the report show?", "context": MEDIUM},
    {"question": "What did the committee review?", "context": H.LONG_TEXT},
    # several questions over one context in one call: a list of answers
    [{"question": "Who met on Tuesday?", "context": MEDIUM},
     {"question": "What grew by 7.5 percent?", "context": MEDIUM},
     {"question": "Where did the hikers arrive?", "context": MEDIUM}],
    # a list of one example gives its bare result
    [{"question": "Where is the cat?", "context": "The cat sleeps in the garden behind the old house."}],
]
# A context shorter than the question: three candidate spans only ("Berlin", "Berlin.", ".").
# When fewer candidates than transformers asks for (2 * top_k + 10) have a positive score,
# numpy's argpartition fills the list with zero-score cells in an unspecified order; their
# answers score 0 and rank last, so results agree as long as top_k <= 3 here.
ZERO_SPANS = [SHORT_CONTEXT]

PARAMS = {
    "default": {},
    "top_k=3": {"top_k": 3},
    "handle_impossible": {"handle_impossible_answer": True, "top_k": 2},
    "align_to_words=false": {"align_to_words": False, "top_k": 3},
    "max_answer_len=2": {"max_answer_len": 2, "top_k": 2},
    # long contexts in many overlapping windows
    "windows-32/8": {"max_seq_len": 32, "doc_stride": 8},
    "windows-40/16,top_k=5": {"max_seq_len": 40, "doc_stride": 16, "top_k": 5},
    "windows-48/20,no-align,impossible": {"max_seq_len": 48, "doc_stride": 20, "align_to_words": False,
                                          "handle_impossible_answer": True, "top_k": 2},
}


def _inputs_for(params):
    return INPUTS + (ZERO_SPANS if params.get("top_k", 1) <= 3 else [])


def _check(run_hfpipe, reference, folder, inputs, params, **kw):
    got = run_hfpipe(TASK, folder, inputs, params, threads=THREADS, **kw)
    want = reference.reference_outputs(TASK, folder, inputs, params)
    H.assert_each_same(got, want, inputs, what=f"{folder.name} {params}")
    return got, want


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("pid", list(PARAMS))
def test_jsonl_parity(run_hfpipe, reference, tiny_models, model, pid):
    _check(run_hfpipe, reference, tiny_models / model, _inputs_for(PARAMS[pid]), PARAMS[pid])


def _window_edges(tokenizer, example, max_seq_len, doc_stride):
    """Character positions where the context's windows start and end."""
    enc = tokenizer(example["question"], example["context"], truncation="only_second", max_length=max_seq_len,
                    stride=doc_stride, return_overflowing_tokens=True, return_offsets_mapping=True)
    edges = set()
    for i in range(len(enc["input_ids"])):
        spans = [o for o, s in zip(enc["offset_mapping"][i], enc.sequence_ids(i)) if s == 1]
        edges.update((spans[0][0], spans[-1][1]))
    return edges


def _answers(result):
    return result if isinstance(result, list) else [result]


@pytest.mark.parametrize("model", MODELS)
def test_windows_batch_size_and_boundaries(run_hfpipe, reference, tiny_models, model):
    """Small windows over long contexts: --batch-size 4 (windows of several inputs in one
    batch) gives the answers of --batch-size 1 and of transformers, and among them are answers
    that cross the edge of a window (found in the next window, which overlaps it)."""
    folder, params = tiny_models / model, PARAMS["windows-40/16,top_k=5"]
    inputs = [x for x in INPUTS if isinstance(x, dict)]
    b1, want = _check(run_hfpipe, reference, folder, inputs, params, batch_size=1)
    b4, _ = _check(run_hfpipe, reference, folder, inputs, params, batch_size=4)
    H.assert_identical(b4, b1, what=f"{model} --batch-size 4 vs 1")
    tokenizer = reference.reference_pipeline(TASK, str(folder)).tokenizer
    crossing = 0
    for example, result in zip(inputs, want):
        edges = _window_edges(tokenizer, example, params["max_seq_len"], params["doc_stride"])
        crossing += sum(any(a["start"] < edge < a["end"] for edge in edges) for a in _answers(result))
    assert crossing > 0, "no answer crosses a window edge: the case does not test chunk boundaries"


@pytest.mark.parametrize("model", MODELS[:2])
def test_question_and_context_parameters(run_hfpipe, reference, tiny_models, model):
    """hfpipe question-answering --param question=... --param context=... (no INPUT) prints
    pipe(question=..., context=...): one answer, or a list for a list of questions."""
    folder = tiny_models / model
    pipe = reference.reference_pipeline(TASK, str(folder))
    cases = [
        {"question": "Where do I live?", "context": "My name is Wolfgang and I live in Berlin."},
        {"question": ["Who met on Tuesday?", "What grew?"], "context": MEDIUM},
        {"question": ["Who met on Tuesday?"], "context": MEDIUM},
        {"question": ["Who?", "Where?"], "context": ["I am Sam.", "I live in Paris."], "top_k": 2},
    ]
    for case in cases:
        got = run_hfpipe(TASK, folder, [], case, jsonl=False, threads=THREADS)
        H.assert_same(got, H._jsonable(pipe(**case)), what=f"{model} {case}")


def test_top_k_larger_than_candidates_keeps_positive_answers(run_hfpipe, reference, tiny_models):
    """top_k above the number of positive-score spans: the positive answers agree; what else
    comes (score 0) depends on which zero cells numpy's argpartition happens to pick."""
    folder = tiny_models / "bert-qa"
    params = {"top_k": 6}
    got = run_hfpipe(TASK, folder, ZERO_SPANS, params, threads=THREADS)[0]
    want = reference.reference_outputs(TASK, folder, ZERO_SPANS, params)[0]
    positive = [a for a in want if a["score"] > 0]
    assert len(positive) == 3
    H.assert_same(got[:len(positive)], positive, what="positive answers")
    assert all(a["score"] == 0 for a in got[len(positive):])


# ------------------------------------------------------------------------------ bad input

def _reference_error(folder, call):
    pipe = H.reference_pipeline(TASK, str(folder))
    try:
        call(pipe)
    except BaseException as e:  # tokenizers' panics are BaseException
        return str(e.args[0]) if e.args else str(e)
    raise AssertionError("transformers accepted it")


CTX = "My name is Wolfgang and I live in Berlin."
BAD = {
    # id: (jsonl input or None for question=/context= params, params, transformers call or None)
    "empty question": ({"question": "", "context": CTX}, {}, lambda p: p({"question": "", "context": CTX})),
    "empty context": ({"question": "Where?", "context": ""}, {}, lambda p: p({"question": "Where?", "context": ""})),
    "missing context": ({"question": "Where?"}, {}, lambda p: p({"question": "Where?"})),
    "null question": ({"question": None, "context": CTX}, {}, lambda p: p({"question": None, "context": CTX})),
    "string input": ("Where do I live?", {}, lambda p: p("Where do I live?")),
    "doc_stride > max_seq_len": ({"question": "Where?", "context": CTX}, {"doc_stride": 40, "max_seq_len": 30},
                                 lambda p: p(question="Where?", context=CTX, doc_stride=40, max_seq_len=30)),
    "doc_stride = max_seq_len": ({"question": "Where?", "context": CTX}, {"doc_stride": 30, "max_seq_len": 30},
                                 lambda p: p(question="Where?", context=CTX, doc_stride=30, max_seq_len=30)),
    "stride over the room left by the question": (
        {"question": "Where?", "context": MEDIUM}, {"doc_stride": 15, "max_seq_len": 20},
        lambda p: p(question="Where?", context=MEDIUM, doc_stride=15, max_seq_len=20)),
    "question longer than the window": (
        {"question": SHORT_CONTEXT["question"], "context": MEDIUM}, {"max_seq_len": 16, "doc_stride": 2},
        lambda p: p(question=SHORT_CONTEXT["question"], context=MEDIUM, max_seq_len=16, doc_stride=2)),
    "top_k=0": ({"question": "Where?", "context": CTX}, {"top_k": 0}, lambda p: p(question="Where?", context=CTX, top_k=0)),
    "max_answer_len=0": ({"question": "Where?", "context": CTX}, {"max_answer_len": 0},
                         lambda p: p(question="Where?", context=CTX, max_answer_len=0)),
    "unknown parameter": ({"question": "Where?", "context": CTX}, {"temperature": 1}, None),
    "lists of different lengths": (None, {"question": ["a", "b"], "context": ["c"]},
                                   lambda p: p(question=["a", "b"], context=["c"])),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input(run_hfpipe_raw, tiny_models, case):
    """A clean error (no crash), with transformers' message where transformers has one."""
    folder = tiny_models / "bert-qa"
    item, params, call = BAD[case]
    args = [TASK, "--model", str(folder), "--threads", THREADS]
    for k, v in params.items():
        args += ["--param", f"{k}={json.dumps(v)}"]
    if item is not None:
        args.append("--jsonl")
    proc = run_hfpipe_raw(args, stdin=H.jsonl_stdin([item]) if item is not None else None)
    line = H.error_line(proc)
    if call is None:
        assert "temperature" in line, line
    else:
        assert _reference_error(folder, call) in line, line
