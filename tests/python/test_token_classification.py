"""token-classification (ner) parity: hfpipe CLI vs transformers.pipeline on the same tiny folders.

One hfpipe process per (model, parameter set) with every input on stdin (--jsonl); the
reference is pipe(x, **params) per input. The tiny models are random, so their labels are
spread over B-/I- tags of every type and O: groups, touching entities and entities at the end
of a text come up by themselves (test_cases_are_exercised checks that they do).
"""
from __future__ import annotations

import functools
import json
import shutil

import pytest

import hfpipe_helpers as H
import make_tiny_models as M

TASK = "token-classification"
MODELS = M.names(task=TASK)

TEXTS = [
    "My name is Wolfgang Amadeus Mozart and I live in Berlin",
    # words cut into many subwords
    "Antidisestablishmentarianism and pneumonoultramicroscopicsilicovolcanoconiosis baffled Schwarzenegger",
    "Dr. Smith-Jones (Ph.D.) visited the U.S.A.'s capital, Washington D.C., in 2023!",
    H.TEXTS["accents"],
    H.TEXTS["cjk"],
    H.TEXTS["emoji"],
    H.TEXTS["symbols"],
    H.TEXTS["caps"],
    "tab\tand  double  spaces\nnew line",
    "Hello",
    "",
    "   ",
]

# Every strategy on every model; the parameter spellings that only map onto a strategy
# (deprecated flags, upper case, ignore_labels variants) on one word-aware (WordPiece "##")
# and one byte-level BPE model, as their handling does not depend on the architecture.
CORE_PARAMS = {
    "none": {},
    "simple": {"aggregation_strategy": "simple"},
    "first": {"aggregation_strategy": "first"},
    "average": {"aggregation_strategy": "average"},
    "max": {"aggregation_strategy": "max"},
    "first,ignore-PER": {"aggregation_strategy": "first", "ignore_labels": ["O", "PER"]},
}
SPELLING_PARAMS = {
    "SIMPLE-upper": {"aggregation_strategy": "SIMPLE"},
    "none-explicit,ignore3": {"aggregation_strategy": "none", "ignore_labels": ["O", "B-PER", "I-LOC"]},
    "simple,ignore-none": {"aggregation_strategy": "simple", "ignore_labels": []},
    "grouped": {"grouped_entities": True},
    "grouped,ignore_subwords": {"grouped_entities": True, "ignore_subwords": True},
    "grouped=false": {"grouped_entities": False},
    "ignore_subwords-only": {"ignore_subwords": True},
}
PARAMS = {**CORE_PARAMS, **SPELLING_PARAMS}
SPELLING_MODELS = [m for m in ("bert-ner", "roberta-ner") if m in MODELS]


def _matrix():
    for model in MODELS:
        for pid in PARAMS:
            if pid in CORE_PARAMS or model in SPELLING_MODELS:
                yield pytest.param(model, pid, id=f"{model}-{pid}")


NEAR_TIE = 1e-5   # a token whose two best labels are closer than this is not compared


def _near_tie_inputs(folder, texts):
    return _near_tie_cached(str(folder), json.dumps(texts))


@functools.lru_cache(maxsize=None)
def _near_tie_cached(folder, texts_json):
    """Inputs where some token's two best label probabilities are within NEAR_TIE: float
    rounding could flip their argmax, so they are left out of the label comparison."""
    import torch
    texts = json.loads(texts_json)
    pipe = H.reference_pipeline(TASK, folder)
    out = set()
    for i, t in enumerate(texts):
        words = isinstance(t, list)
        enc = pipe.tokenizer(t, is_split_into_words=words, return_tensors="pt", truncation=True)
        with torch.no_grad():
            probs = pipe.model(**enc).logits[0].softmax(-1)
        top2 = probs.topk(2, dim=-1).values
        if bool(((top2[:, 0] - top2[:, 1]) < NEAR_TIE).any()):
            out.add(i)
    return out


def _compare(run_hfpipe, folder, inputs, params, **kw):
    got = run_hfpipe(TASK, folder, inputs, params, **kw)
    want = H.reference_outputs(TASK, folder, inputs, params)
    skip = _near_tie_inputs(folder, inputs)
    assert len(skip) <= len(inputs) // 4, f"{folder.name}: too many near-tie inputs {sorted(skip)}"
    keep = [i for i in range(len(inputs)) if i not in skip]
    H.assert_each_same([got[i] for i in keep], [want[i] for i in keep], [inputs[i] for i in keep],
                       what=f"{folder.name} {params}")
    return got, want


@pytest.mark.parametrize("model,pid", list(_matrix()))
def test_parity(run_hfpipe, tiny_models, model, pid):
    _compare(run_hfpipe, tiny_models / model, TEXTS, PARAMS[pid])


def _coverage(folder):
    """Which of the claimed cases the reference outputs of one model contain."""
    simple = H.reference_outputs(TASK, folder, TEXTS, PARAMS["simple"])
    first = H.reference_outputs(TASK, folder, TEXTS, PARAMS["first"])
    none = H.reference_outputs(TASK, folder, TEXTS, {})
    return {
        "long multi-token word grouped": any(len(e["word"]) > 12 for r in first for e in r),
        "touching entities": any(a["end"] >= b["start"] - 1 for r in simple for a, b in zip(r, r[1:])),
        "entity at the very end": any(r and r[-1]["end"] == len(t) for t, r in zip(TEXTS, simple)),
        # the subword-heavy text: "first" makes one entity of each word's many tokens
        "subwords merged by first": len([e for e in first[1] if e["start"] < 28]) <
                                    len([e for e in none[1] if e["start"] < 28]),
    }


def test_cases_are_exercised(tiny_models):
    """The reference outputs really contain what the parity tests claim to cover: words of
    several subwords grouped into one, two entities touching, an entity at the very end. Each
    random tiny model shows some of them; together they must show all, and every model at
    least two."""
    coverage = {model: _coverage(tiny_models / model) for model in MODELS}
    for case in next(iter(coverage.values())):
        assert any(c[case] for c in coverage.values()), f"no model exercises: {case}"
    for model, c in coverage.items():
        assert sum(c.values()) >= 2, f"{model} exercises only {[k for k, v in c.items() if v]}"


def _stride_folder(tiny_models, model, tmp_path_factory, max_length=24):
    """The model's folder with a small model_max_length, so that stride cuts a short text."""
    folder = tmp_path_factory.mktemp("stride") / model
    shutil.copytree(tiny_models / model, folder)
    cfg_path = folder / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["model_max_length"] = max_length
    cfg_path.write_text(json.dumps(cfg))
    return folder


STRIDE_TEXTS = [
    " ".join(H._LONG_SENTENCES[:5]),
    "Antidisestablishmentarianism " * 6 + "and Schwarzenegger in Zürich, São Paulo and 東京 end",
    "short one",
]
STRIDE_PARAMS = {
    "simple,stride=4": {"aggregation_strategy": "simple", "stride": 4},
    "first,stride=8": {"aggregation_strategy": "first", "stride": 8},
    "average,stride=0": {"aggregation_strategy": "average", "stride": 0},
    "max,stride=12": {"aggregation_strategy": "max", "stride": 12},
    "stride-only": {"stride": 6},
    "no-stride-truncates": {"aggregation_strategy": "simple"},
}


@pytest.mark.parametrize("model", MODELS)
def test_stride(run_hfpipe, tiny_models, tmp_path_factory, model):
    """Texts longer than model_max_length: overlapping windows merged as transformers merges
    them (and, without stride, the silent truncation to model_max_length)."""
    folder = _stride_folder(tiny_models, model, tmp_path_factory)
    tok = H.reference_pipeline(TASK, str(folder)).tokenizer
    assert len(tok(STRIDE_TEXTS[0])["input_ids"]) > 3 * 24
    for pid, params in STRIDE_PARAMS.items():
        got, _ = _compare(run_hfpipe, folder, STRIDE_TEXTS, params, batch_size=3)
        if pid == "simple,stride=4":
            one = run_hfpipe(TASK, folder, STRIDE_TEXTS, params, batch_size=1)
            H.assert_identical(got, one, what=f"{model} stride batch 3 vs 1")


@pytest.mark.parametrize("model", MODELS)
def test_batch_size(run_hfpipe, tiny_models, model):
    """--batch-size 4 gives the same results as 1 (inputs of mixed lengths)."""
    folder = tiny_models / model
    params = PARAMS["average"]
    b1 = run_hfpipe(TASK, folder, TEXTS, params, batch_size=1)
    b4 = run_hfpipe(TASK, folder, TEXTS, params, batch_size=4)
    H.assert_identical(b4, b1, what=f"{model} --batch-size 4 vs 1")


WORDS = [
    ["My", "name", "is", "Wolfgang", "Schwarzenegger", "from", "Zürich"],
    ["Antidisestablishmentarianism", "😀", "東京", "end"],
    ["New York", "City"],
]


@pytest.mark.parametrize("model", MODELS)
def test_is_split_into_words(run_hfpipe, run_hfpipe_raw, tiny_models, model):
    """Pre-split words (one JSON list per line, or the words as arguments); byte-level BPE
    tokenizers without add_prefix_space refuse them, in transformers as in hfpipe."""
    folder = tiny_models / model
    pipe = H.reference_pipeline(TASK, str(folder))
    params_list = [{"is_split_into_words": True},
                   {"is_split_into_words": True, "aggregation_strategy": "first", "delimiter": "--"}]
    try:
        pipe(WORDS[0], is_split_into_words=True)
    except (ValueError, AssertionError) as e:     # RobertaTokenizerFast asserts add_prefix_space
        proc = run_hfpipe_raw([TASK, "--model", str(folder), "--param", "is_split_into_words=true", *WORDS[0]])
        line = H.error_line(proc)
        assert str(e) in line, (line, str(e))
        return
    for params in params_list:
        _compare(run_hfpipe, folder, WORDS, params)
        got = run_hfpipe(TASK, folder, WORDS[0], params, jsonl=False)
        H.assert_same(got, H.reference_call(TASK, folder, WORDS[0], params), what=f"{model} words as arguments")


@pytest.mark.parametrize("model", MODELS[:2])
def test_output_shapes(run_hfpipe, tiny_models, model):
    """One INPUT argument prints pipe(text); several print pipe([texts])."""
    folder = tiny_models / model
    for params in ({}, PARAMS["simple"]):
        got = run_hfpipe(TASK, folder, [TEXTS[0]], params, jsonl=False)
        H.assert_same(got, H.reference_call(TASK, folder, TEXTS[0], params), what="one argument")
        got = run_hfpipe(TASK, folder, TEXTS[:3], params, jsonl=False)
        H.assert_same(got, H.reference_call(TASK, folder, TEXTS[:3], params), what="several arguments")


def test_ner_alias(run_hfpipe, tiny_models):
    folder = tiny_models / MODELS[0]
    got = run_hfpipe("ner", folder, TEXTS[:3], PARAMS["simple"])
    H.assert_each_same(got, H.reference_outputs(TASK, folder, TEXTS[:3], PARAMS["simple"]), TEXTS[:3])


# ------------------------------------------------------------------ bad input


def _reference_error(folder, text, params):
    pipe = H.reference_pipeline(TASK, str(folder))
    with pytest.raises(Exception) as info:
        pipe(text, **params)
    return info.value


@pytest.mark.parametrize("params,keyword", [
    ({"aggregation_strategy": "bogus"}, "KeyError: 'BOGUS'"),
    ({"stride": 4, "aggregation_strategy": "none"}, "`stride` was provided to process all the text"),
    ({"stride": 4, "grouped_entities": False}, "`stride` was provided to process all the text"),
    ({"stride": 512, "aggregation_strategy": "simple"}, "`stride` must be less than `tokenizer.model_max_length`"),
    ({"ignore_labels": "O"}, "ignore_labels"),
])
def test_refused_parameters(run_hfpipe_raw, tiny_models, params, keyword):
    """What transformers refuses, hfpipe refuses, with transformers' message where it has one."""
    folder = tiny_models / MODELS[0]
    _reference_error(folder, TEXTS[0], params)
    args = [TASK, "--model", str(folder)]
    for k, v in params.items():
        args += ["--param", f"{k}={json.dumps(v)}"]
    line = H.error_line(run_hfpipe_raw(args + [TEXTS[0]]))
    assert keyword in line, line


def test_unknown_parameter(run_hfpipe_raw, tiny_models):
    folder = tiny_models / MODELS[0]
    _reference_error(folder, TEXTS[0], {"bogus": 1})
    line = H.error_line(run_hfpipe_raw([TASK, "--model", str(folder), "--param", "bogus=1", "text"]))
    assert "bogus" in line, line


@pytest.mark.parametrize("line_in,keyword", [
    (b"42\n", "At least one input is required."),
    (b'{"text": "x"}\n', "At least one input is required."),
    (b'["a", 3]\n', "must be an untokenized string"),
])
def test_non_string_input(run_hfpipe_raw, tiny_models, line_in, keyword):
    folder = tiny_models / MODELS[0]
    _reference_error(folder, json.loads(line_in), {})
    line = H.error_line(run_hfpipe_raw([TASK, "--model", str(folder), "--jsonl"], stdin=line_in))
    assert keyword in line, line


def test_over_the_model_limit_is_truncated(run_hfpipe, tiny_models):
    """transformers always truncates to model_max_length (512 here): a long text is not an error."""
    folder = tiny_models / MODELS[0]
    _compare(run_hfpipe, folder, [H.LONG_TEXT], PARAMS["simple"])
