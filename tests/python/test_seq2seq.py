"""text2text-generation / summarization / translation parity: hfpipe vs transformers on tiny
random encoder-decoder models made by scripts/make_tiny_models.py (seq2seq section).

The encoder's last hidden state and the decoder's logits (fed token by token through the
key/value cache, cross-attention over a padded batch) must agree within 1e-4 (hfpipe's side is
tests/tools/seq2seq_forward.cpp); greedy generation must give transformers' ids exactly, alone
and in length-sorted batches of mixed lengths; the pipelines' task handling (task_specific_params
prefixes and generation defaults, translation_xx_to_yy, return_tensors, truncation,
clean_up_tokenization_spaces, list flattening) must give transformers' outputs.

Marian (OPUS-MT) runs with a MarianTokenizer over a sentencepiece model trained at make time (the
offline marian-nmt-sample folder is one transformers cannot load either). Greedy cases pass num_beams=1 (the pipelines' default is 4); beam cases use the
pipelines' real defaults (4 beams, and t5-small's / bart-large-cnn's summarization defaults:
length_penalty 2.0, no_repeat_ngram_size 3, early_stopping, min_length) and vary them.
"""
from __future__ import annotations

import json
import os
import subprocess

import pytest

import hfpipe_helpers as H
import make_tiny_models as M

MODELS = M.names(task="text2text-generation")
PIPELINE_MODELS = MODELS
T5 = "t5-seq2seq"  # with t5-small's task_specific_params
ENV = {} if os.environ.get("HFPIPE_TEST_THREADS") else {"OMP_NUM_THREADS": "1"}
GREEDY = {"num_beams": 1, "do_sample": False}

TEXTS = [
    "The tower is 324 metres tall, about the same height as an 81-storey building.",
    "Hello there!",
    "In 1991, the remains of Russian Tsar Nicholas II and his family (except for Alexei and Maria) were "
    "discovered. The voice of Nicholas's young son, Tsarevich Alexei Nikolaevich, narrates the remainder.",
    "Short.",
]


def forward_bin():
    return H.tool_binary("HFPIPE_SEQ2SEQ_FORWARD_BIN", "hfpipe_seq2seq_forward")


@pytest.mark.parametrize("model", MODELS)
def test_encoder_and_decoder_logits(tiny_models, model):
    """Encoder output and every decoder position's logits of a padded batch within 1e-4."""
    import torch
    folder = tiny_models / model
    ref, tok = H.reference_model("AutoModelForSeq2SeqLM", folder), H.reference_tokenizer(folder)
    sources = [tok(t)["input_ids"][:60] for t in TEXTS[:3]]  # within max_position_embeddings 64
    # 7 decoder positions (the logits JSON of a 50k vocabulary is what costs time here).
    targets = [[0] + tok(t)["input_ids"][:6] for t in ("Das ist ein kleiner Test.", "Bonjour à tous, mes amis",
                                                        "Hello again, world of tests")]
    targets = [t + [5] * (7 - len(t)) for t in targets]
    request = {"input_ids": sources, "decoder_input_ids": targets}
    proc = subprocess.run([forward_bin(), str(folder)], input=json.dumps(request), capture_output=True, text=True,
                          env={**os.environ, **ENV}, timeout=H.HFPIPE_TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout)
    for b, (src, tgt) in enumerate(zip(sources, targets)):
        with torch.no_grad():
            out = ref(input_ids=torch.tensor([src]), decoder_input_ids=torch.tensor([tgt]))
        enc = (torch.tensor(got["encoder_last_hidden_state"][b]) - out.encoder_last_hidden_state[0]).abs().max().item()
        logits = (torch.tensor(got["logits"][b]) - out.logits[0]).abs().max().item()
        assert enc <= H.ATOL, f"{model} source {b}: max |encoder diff| {enc:.3g}"
        assert logits <= H.ATOL, f"{model} source {b}: max |logit diff| {logits:.3g}"


# task, model, params: greedy ids (return_tensors) over ~20 tokens.
GREEDY_CASES = [
    ("text2text-generation", T5, {"max_new_tokens": 20}),
    ("text2text-generation", "t5-v11-seq2seq", {"max_new_tokens": 20}),
    # t5-small's summarization params: prefix "summarize: ", min_length 30 (eos held off).
    ("summarization", T5, {"max_new_tokens": 36}),
    ("translation_en_to_de", T5, {"max_new_tokens": 20}),
    ("translation", T5, {"max_new_tokens": 20}),  # → translation_en_to_de's prefix
    ("translation_en_to_fr", T5, {"max_new_tokens": None, "max_length": 12}),
    # bart-large-cnn's summarization params: min_length 56 against forced_eos_token_id at the
    # last of 20 tokens (transformers' processor order decides: the eos is forced).
    ("summarization", "bart-seq2seq", {"max_new_tokens": 20}),
    ("text2text-generation", "bart-seq2seq", {"max_new_tokens": 20}),
    ("text2text-generation", "distilbart-seq2seq", {"max_new_tokens": 20}),  # + forced_bos_token_id
    ("text2text-generation", "mbart-seq2seq", {"max_new_tokens": 20}),
    ("text2text-generation", "pegasus-seq2seq", {"max_new_tokens": 20}),
    ("translation", "marian-seq2seq", {"max_new_tokens": 20}),  # OPUS-MT's use: MarianTokenizer
]


@pytest.mark.parametrize("task,model,params", GREEDY_CASES, ids=[f"{t}-{m}" for t, m, _ in GREEDY_CASES])
def test_greedy_ids(run_hfpipe, reference, tiny_models, task, model, params):
    folder = tiny_models / model
    params = {**GREEDY, **params, "return_tensors": True}
    want = reference.reference_outputs(task, folder, TEXTS, params)
    got = run_hfpipe(task, folder, TEXTS, params, env=ENV)
    H.assert_each_same(got, want, TEXTS, what=f"{task} {model}")
    assert all(len(r[0][next(iter(r[0]))]) > 5 for r in got)


@pytest.mark.parametrize("model", PIPELINE_MODELS)
def test_batches_of_mixed_lengths(run_hfpipe, reference, tiny_models, model):
    """batch_size 3 over four texts of different lengths (length-sorted, padded encoder batches)
    gives the one-by-one results of transformers."""
    folder = tiny_models / model
    params = {**GREEDY, "max_new_tokens": 16, "return_tensors": True}
    want = reference.reference_outputs("text2text-generation", folder, TEXTS, params)
    for batch_size in (3, 4):
        got = run_hfpipe("text2text-generation", folder, TEXTS, params, batch_size=batch_size, env=ENV)
        H.assert_each_same(got, want, TEXTS, what=f"{model} batch_size={batch_size}")


# Beam search with the pipelines' defaults (num_beams=4; the summarization cases add the task
# defaults of t5-small / bart-large-cnn: length_penalty 2.0, no_repeat_ngram_size 3,
# early_stopping, min_length) and variations of them.
BEAM_CASES = [
    ("summarization", T5, {"max_new_tokens": 24}),
    ("summarization", T5, {"max_new_tokens": None, "max_length": 14, "min_length": 4, "num_return_sequences": 2}),
    ("summarization", "bart-seq2seq", {"max_new_tokens": 20}),
    ("translation_en_to_de", T5, {"max_new_tokens": 16}),
    ("text2text-generation", T5, {"max_new_tokens": 16, "num_return_sequences": 2}),
    ("text2text-generation", "t5-v11-seq2seq", {"max_new_tokens": 16, "length_penalty": 0.5,
                                                "early_stopping": "never", "no_repeat_ngram_size": 3}),
    ("text2text-generation", "bart-seq2seq", {"max_new_tokens": 16, "early_stopping": True,
                                              "num_return_sequences": 2}),
    ("text2text-generation", "distilbart-seq2seq", {"max_new_tokens": 16, "no_repeat_ngram_size": 3,
                                                    "length_penalty": 2.0, "num_return_sequences": 2}),
    ("text2text-generation", "mbart-seq2seq", {"max_new_tokens": 16, "length_penalty": 2.0, "early_stopping": True,
                                               "no_repeat_ngram_size": 3}),
    ("text2text-generation", "pegasus-seq2seq", {"max_new_tokens": 16, "no_repeat_ngram_size": 3,
                                                 "num_return_sequences": 2, "early_stopping": True}),
    ("translation", "marian-seq2seq", {"max_new_tokens": 16, "num_return_sequences": 2}),
]


@pytest.mark.parametrize("task,model,params", BEAM_CASES, ids=[f"{t}-{m}-{i}" for i, (t, m, _) in enumerate(BEAM_CASES)])
def test_beam_ids(run_hfpipe, reference, tiny_models, task, model, params):
    folder = tiny_models / model
    params = {**params, "return_tensors": True}
    want = reference.reference_outputs(task, folder, TEXTS, params)
    got = run_hfpipe(task, folder, TEXTS, params, env=ENV)
    H.assert_each_same(got, want, TEXTS, what=f"{task} {model} beams")


@pytest.mark.parametrize("model", PIPELINE_MODELS)
def test_beam_batches_of_mixed_lengths(run_hfpipe, reference, tiny_models, model):
    """4 beams with no_repeat_ngram_size 3 over length-sorted batches = transformers one by one."""
    folder = tiny_models / model
    params = {"max_new_tokens": 12, "no_repeat_ngram_size": 3, "num_return_sequences": 2, "return_tensors": True}
    want = reference.reference_outputs("text2text-generation", folder, TEXTS, params)
    got = run_hfpipe("text2text-generation", folder, TEXTS, params, batch_size=3, env=ENV)
    H.assert_each_same(got, want, TEXTS, what=f"{model} beams batch_size=3")


TEXT_CASES = {
    "text": ("text2text-generation", {"max_new_tokens": 12}),
    "clean_up": ("text2text-generation", {"max_new_tokens": 12, "clean_up_tokenization_spaces": True}),
    "return_tensors_false": ("text2text-generation", {"max_new_tokens": 8, "return_tensors": False}),
    "summary_text": ("summarization", {"max_new_tokens": 10}),
    "summary_min_length": ("summarization", {"max_new_tokens": None, "max_length": 14, "min_length": 5,
                                             }),
    "translation_text": ("translation_en_to_ro", {"max_new_tokens": 10}),
    "stop_sequence": ("text2text-generation", {"max_new_tokens": 12, "stop_sequence": "ß"}),
}


@pytest.mark.parametrize("case", list(TEXT_CASES))
def test_pipeline_outputs(run_hfpipe, reference, tiny_models, case):
    task, params = TEXT_CASES[case]
    folder = tiny_models / T5
    params = {**GREEDY, **params}
    want = reference.reference_outputs(task, folder, TEXTS, params)
    got = run_hfpipe(task, folder, TEXTS, params, env=ENV)
    H.assert_each_same(got, want, TEXTS, what=f"{case}")


def test_list_call_is_flattened(run_hfpipe, reference, tiny_models):
    """pipe([a, b]) returns one record per text (not a list of lists), as transformers' __call__."""
    folder = tiny_models / T5
    params = {**GREEDY, "max_new_tokens": 6}
    want = reference.reference_call("summarization", folder, TEXTS[:2], {**params})
    got = run_hfpipe("summarization", folder, TEXTS[:2], {**params}, jsonl=False, env=ENV)
    assert got == want and isinstance(got[0], dict)
    # num_return_sequences > 1 (sampling): the per-text lists stay.
    got = run_hfpipe("text2text-generation", folder, TEXTS[:2],
                     {"num_beams": 1, "do_sample": True, "num_return_sequences": 2, "max_new_tokens": 4, "seed": 3},
                     jsonl=False, env=ENV)
    assert [len(r) for r in got] == [2, 2] and all(list(x) == ["generated_text"] for r in got for x in r)


def test_truncation(run_hfpipe, reference, tiny_models):
    """truncation=True cuts the source to the tokenizer's model_max_length (512 for t5-small)."""
    folder = tiny_models / T5
    long_text = H._long_text(700)
    params = {**GREEDY, "max_new_tokens": 8, "truncation": True, "return_tensors": True}
    want = reference.reference_outputs("text2text-generation", folder, [long_text], params)
    got = run_hfpipe("text2text-generation", folder, [long_text], params, env=ENV)
    H.assert_each_same(got, want, ["long"], what="truncation")
    untruncated = run_hfpipe("text2text-generation", folder, [long_text], {**params, "truncation": False}, env=ENV)
    assert untruncated != got  # T5's relative positions take the whole text, as transformers does


def test_empty_text(run_hfpipe, reference, tiny_models):
    """"" is a source of just </s> for T5: it generates, as transformers does."""
    folder = tiny_models / T5
    params = {**GREEDY, "max_new_tokens": 6, "return_tensors": True}
    H.assert_each_same(run_hfpipe("text2text-generation", folder, [""], params, env=ENV),
                       reference.reference_outputs("text2text-generation", folder, [""], params), [""])


def test_sampling_is_reproducible(run_hfpipe, tiny_models):
    folder = tiny_models / T5
    params = {"num_beams": 1, "do_sample": True, "top_k": 0, "temperature": 1.5, "max_new_tokens": 8,
              "return_tensors": True}
    a = run_hfpipe("text2text-generation", folder, TEXTS, {**params, "seed": 1}, env=ENV)
    b = run_hfpipe("text2text-generation", folder, TEXTS, {**params, "seed": 1}, batch_size=4, env=ENV)
    c = run_hfpipe("text2text-generation", folder, TEXTS, {**params, "seed": 2}, env=ENV)
    assert a == b and a != c


def test_length_warnings(run_hfpipe_raw, tiny_models):
    """SummarizationPipeline / TranslationPipeline.check_inputs warnings, worded as transformers'."""
    folder = tiny_models / T5
    cmd = H.hfpipe_command("x", "summarization", folder, params={**GREEDY, "max_new_tokens": 4,
                                                                 "min_length": 30, "max_length": 20})[1:]
    proc = run_hfpipe_raw(cmd, stdin=H.jsonl_stdin(["Hello there!"]), env=ENV)
    assert proc.returncode == 0, proc.stderr.decode()
    err = proc.stderr.decode()
    assert "Your min_length=30 must be inferior than your max_length=20." in err
    length = len(H.reference_tokenizer(folder)("summarize: Hello there!")["input_ids"])
    assert f"Your max_length is set to 20, but your input_length is only {length}." in err
    cmd = H.hfpipe_command("x", "translation_en_to_de", folder, params={**GREEDY, "max_new_tokens": 4,
                                                                        "max_length": 10})[1:]
    proc = run_hfpipe_raw(cmd, stdin=H.jsonl_stdin([TEXTS[0]]), env=ENV)
    assert proc.returncode == 0, proc.stderr.decode()
    assert "is bigger than 0.9 * max_length: 10" in proc.stderr.decode()


def _error(run_hfpipe_raw, task, folder, inputs, params):
    cmd = H.hfpipe_command("x", task, folder, inputs, params)[1:]
    return H.error_line(run_hfpipe_raw(cmd, stdin=H.jsonl_stdin(inputs), env=ENV))


def test_bad_input(run_hfpipe_raw, tiny_models):
    t5 = tiny_models / T5
    # More sequences than beams (transformers' GenerationConfig.validate refuses it too).
    assert "num_return_sequences" in _error(run_hfpipe_raw, "summarization", t5, ["Hi"],
                                            {"num_beams": 2, "num_return_sequences": 3})
    # A language pair the model's task_specific_params do not list (transformers would echo).
    err = _error(run_hfpipe_raw, "translation_en_to_zz", t5, ["Hi"], GREEDY)
    assert "translation_en_to_zz" in err and "translation_en_to_de" in err
    assert "translation_XX_to_YY" in _error(run_hfpipe_raw, "translation_en_de", t5, ["Hi"], GREEDY)
    assert "takes texts" in _error(run_hfpipe_raw, "text2text-generation", t5, [{"text": "Hi"}], GREEDY)
    assert "num_return_sequences" in _error(run_hfpipe_raw, "text2text-generation", t5, ["Hi"],
                                            {**GREEDY, "num_return_sequences": 2})
    assert "unknown parameter 'max_tokens'" in _error(run_hfpipe_raw, "summarization", t5, ["Hi"],
                                                      {**GREEDY, "max_tokens": 3})
    # BART's learned positions end at 64: sources and generations past them are refused.
    bart = tiny_models / "bart-seq2seq"
    assert "at most 64" in _error(run_hfpipe_raw, "summarization", bart, [H._long_text(100)], {**GREEDY})
    assert "decoder positions" in _error(run_hfpipe_raw, "text2text-generation", bart, ["Hi"],
                                         {**GREEDY, "max_new_tokens": 80})
    # A decoder-only model is no encoder-decoder.
    assert "encoder-decoder" in _error(run_hfpipe_raw, "summarization", tiny_models / "gpt2-causal-lm", ["Hi"],
                                       GREEDY)
