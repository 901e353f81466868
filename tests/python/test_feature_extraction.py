"""feature-extraction parity: token embeddings vs transformers.pipeline, and sentence embeddings
(--param sentence_embedding=true) vs sentence_transformers.SentenceTransformer(folder).encode."""
from __future__ import annotations

import json

import pytest

import hfpipe_helpers as H
import make_tiny_models as M

TASK = "feature-extraction"

TEXTS = list(H.TEXTS.values())
WITH_LONG = TEXTS + [H.LONG_TEXT]

BASE_MODELS = M.names(task=TASK, variants=False)                 # <arch>-base
VARIANTS = M.names(task=TASK, variants=True, st=False)           # bf16, fp16 .bin, prefixed
ST_MODELS = M.names(st=True)
# classification checkpoints (names with the bert./roberta./... prefix and a head) loaded as
# the base model, as pipeline("feature-extraction", model=<classifier folder>) does
PREFIXED_HEADS = [f"{a}-cls2" for a in M.ARCHS]

PARAMS = {
    "default": ({}, TEXTS),
    "truncation=true": ({"truncation": True}, WITH_LONG),
    "tokenize_kwargs=truncation,max_length=16": (
        {"tokenize_kwargs": {"truncation": True, "max_length": 16}}, WITH_LONG),
}


def _check(run_hfpipe, reference, folder, inputs, params, **kw):
    got = run_hfpipe(TASK, folder, inputs, params, **kw)
    want = reference.reference_outputs(TASK, folder, inputs, params)
    H.assert_each_same(got, want, inputs, what=f"{folder.name} {params}")
    return got


@pytest.mark.parametrize("model", BASE_MODELS + VARIANTS + PREFIXED_HEADS + ST_MODELS)
@pytest.mark.parametrize("pid", list(PARAMS))
def test_jsonl_parity(run_hfpipe, reference, tiny_models, model, pid):
    params, inputs = PARAMS[pid]
    _check(run_hfpipe, reference, tiny_models / model, inputs, params)


@pytest.mark.parametrize("model", ["bert-base", "xlmr-base"])
def test_arguments_output_shape(run_hfpipe, reference, tiny_models, model):
    """One argument: [1][seq][hidden]; several: a list of those, as pipe(text) / pipe([...])."""
    folder = tiny_models / model
    one = H.TEXTS["plain"]
    H.assert_same(run_hfpipe(TASK, folder, [one], jsonl=False),
                  reference.reference_call(TASK, folder, one), what="single argument")
    several = [H.TEXTS["plain"], H.TEXTS["empty"], H.TEXTS["cjk"]]
    H.assert_same(run_hfpipe(TASK, folder, several, jsonl=False),
                  reference.reference_call(TASK, folder, several), what="several arguments")


@pytest.mark.parametrize("model", BASE_MODELS)
def test_batch_size_mixed_lengths(run_hfpipe, reference, tiny_models, model):
    """--batch-size 1 and 4 give the unpadded [1][seq][hidden] of each input, identical.
    (transformers itself returns padded sequences with batch_size > 1; the reference is
    transformers unbatched.)"""
    folder = tiny_models / model
    inputs = H.MIXED_BATCH + [H.LONG_TEXT]
    params = {"truncation": True}
    b1 = _check(run_hfpipe, reference, folder, inputs, params, batch_size=1)
    b4 = _check(run_hfpipe, reference, folder, inputs, params, batch_size=4)
    H.assert_identical(b4, b1, what=f"{model} --batch-size 4 vs 1")


@pytest.mark.parametrize("model", ["bert-base", "deberta-base", "mpnet-base"])
def test_two_threads_match_one(run_hfpipe, reference, tiny_models, model):
    """The multi-threaded kernels (OpenMP / oneDNN with --threads 2) give transformers' values
    and the single-threaded ones. scripts/test.sh runs the suite with one hfpipe thread per
    pytest worker, so this is where the threaded path is checked."""
    folder = tiny_models / model
    inputs = H.MIXED_BATCH + [H.LONG_TEXT]
    params = {"truncation": True}
    t2 = _check(run_hfpipe, reference, folder, inputs, params, batch_size=4, threads=2)
    t1 = _check(run_hfpipe, reference, folder, inputs, params, batch_size=4, threads=1)
    H.assert_identical(t2, t1, what=f"{model} --threads 2 vs 1")


def test_jsonl_over_several_windows(run_hfpipe, run_hfpipe_raw, reference, tiny_models):
    """--jsonl runs the pipeline over windows of max(64, 2 x batch size) stdin lines and prints
    each window's results before reading on (so a long input does not hold every result):
    150 mixed-length inputs at batch 4 come back in input order with transformers' values, and
    a bad line after the first window is still an error naming its line number."""
    folder = tiny_models / "bert-base"
    pool = H.MIXED_BATCH + list(H.TEXTS.values())
    inputs = [f"{i} {pool[i % len(pool)]}" for i in range(150)]
    _check(run_hfpipe, reference, folder, inputs, {}, batch_size=4)
    stdin = "".join(json.dumps(t) + "\n" for t in inputs[:100]) + "{not json\n"
    proc = run_hfpipe_raw([TASK, "--model", str(folder), "--batch-size", "4", "--jsonl"], stdin=stdin.encode())
    assert "stdin line 101" in H.error_line(proc)
    assert len(proc.stdout.decode().splitlines()) == 64  # the first window was printed


def test_truncation_given_twice_is_an_error(run_hfpipe_raw, reference, tiny_models):
    """transformers: ValueError "truncation parameter defined twice"."""
    folder = tiny_models / "bert-base"
    with pytest.raises(ValueError):
        reference.reference_call(TASK, folder, "x", {"truncation": True,
                                                     "tokenize_kwargs": {"truncation": True}})
    proc = run_hfpipe_raw([TASK, "--model", str(folder), "--param", "truncation=true",
                           "--param", 'tokenize_kwargs={"truncation": true}', "x"])
    line = H.error_line(proc)
    assert "truncation" in line, line


# ------------------------------------------------------------------ sentence embeddings

SE = {"sentence_embedding": True}


@pytest.mark.parametrize("model", ST_MODELS)
def test_sentence_embedding_jsonl(run_hfpipe, reference, tiny_models, model):
    folder = tiny_models / model
    got = run_hfpipe(TASK, folder, TEXTS, SE)
    want = reference.reference_sentence_embeddings(folder, TEXTS)
    H.assert_each_same(got, want, TEXTS, what=f"{model} sentence embeddings")


@pytest.mark.parametrize("model", ST_MODELS)
def test_sentence_embedding_truncates_at_max_seq_length(run_hfpipe, reference, tiny_models, model):
    """SentenceTransformer.encode always truncates at max_seq_length (sentence_bert_config.json,
    or the tokenizer's model_max_length in the sentence-transformers 5 layout), with no
    truncation parameter."""
    folder = tiny_models / model
    inputs = [H.LONG_TEXT, H.MIXED_BATCH[4]]
    got = run_hfpipe(TASK, folder, inputs, SE)
    H.assert_each_same(got, reference.reference_sentence_embeddings(folder, inputs), inputs,
                       what=f"{model} long inputs")


@pytest.mark.parametrize("model", ST_MODELS)
def test_sentence_embedding_batch_sizes(run_hfpipe, reference, tiny_models, model):
    folder = tiny_models / model
    inputs = H.MIXED_BATCH
    want = reference.reference_sentence_embeddings(folder, inputs)
    b1 = run_hfpipe(TASK, folder, inputs, SE, batch_size=1)
    b4 = run_hfpipe(TASK, folder, inputs, SE, batch_size=4)
    H.assert_each_same(b1, want, inputs, what=f"{model} --batch-size 1")
    H.assert_each_same(b4, want, inputs, what=f"{model} --batch-size 4")
    H.assert_identical(b4, b1, what=f"{model} sentence embeddings --batch-size 4 vs 1")


def test_sentence_embedding_arguments_shape(run_hfpipe, reference, tiny_models):
    """One argument: a flat list of floats; several: a list of those."""
    folder = tiny_models / "st-bert-mean-norm"
    one = H.TEXTS["plain"]
    got = run_hfpipe(TASK, folder, [one], SE, jsonl=False)
    H.assert_same(got, reference.reference_sentence_embeddings(folder, [one])[0], what="single argument")
    several = [H.TEXTS["plain"], H.TEXTS["accents"]]
    got = run_hfpipe(TASK, folder, several, SE, jsonl=False)
    H.assert_same(got, reference.reference_sentence_embeddings(folder, several), what="several arguments")


def test_sentence_embedding_without_modules_json_is_an_error(run_hfpipe_raw, tiny_models):
    proc = run_hfpipe_raw([TASK, "--model", str(tiny_models / "bert-base"),
                           "--param", "sentence_embedding=true", "hello"])
    line = H.error_line(proc)
    assert any(k in line.lower() for k in ("modules.json", "sentence")), line


def test_st_folders_are_what_they_claim(tiny_models):
    """Guard on the fixtures: the classic folders hold the Hub layout, Normalize where asked."""
    classic = json.loads((tiny_models / "st-bert-mean-norm" / "1_Pooling" / "config.json").read_text())
    assert classic["pooling_mode_mean_tokens"] is True
    mods = json.loads((tiny_models / "st-bert-mean-norm" / "modules.json").read_text())
    assert mods[-1]["type"].endswith("Normalize")
