"""Decoding strategies beyond greedy/sampling: hfpipe vs transformers on the tiny decoders.

- Beam search (num_beams 4): token ids identical to transformers' pipeline, with 1 and 4
  returned sequences, length_penalty != 1, early_stopping True / False / "never", an eos the
  model really produces (so that beams finish at different lengths and get padded), and a
  batch of 3 prompts of different lengths equal to one prompt at a time.
- no_repeat_ngram_size, bad_words_ids, stop_strings, forced_eos_token_id: greedy ids identical.
- The warpers that only act under sampling (typical_p; top_k / top_p / min_p / temperature /
  repetition_penalty re-checked, with beam sampling's min_tokens_to_keep) draw from hfpipe's own
  random stream, so their *processed scores* are compared instead: hfpipe's chain
  (tests/tools/generation_processors.cpp) against transformers' LogitsProcessorList from
  model._get_logits_processor on the same scores (1e-5; -inf positions identical).
- Bad input: clear errors.
"""
from __future__ import annotations

import functools
import json
import os

import pytest

import hfpipe_helpers as H

TASK = "text-generation"
ENV = {} if os.environ.get("HFPIPE_TEST_THREADS") else {"OMP_NUM_THREADS": "1"}
GREEDY = {"do_sample": False, "return_tensors": True}
BEAMS = {**GREEDY, "num_beams": 4}
PROMPTS = [
    "The quick brown fox",
    "Hello, my name is",
    "In 1991, the remains of Russian Tsar Nicholas II and his family",
]
# Beam search on every decoder family; the heavier variations on Llama (SentencePiece) and
# GPT-2 (byte-level BPE, learned positions).
BEAM_MODELS = ["llama-causal-lm", "gpt2-causal-lm", "qwen2-causal-lm", "mistral-causal-lm"]
FULL = ["llama-causal-lm", "gpt2-causal-lm"]


def reference(folder, prompts, params):
    """transformers' pipeline, one prompt at a time (a tokenizer object may be in params)."""
    return H.reference_outputs(TASK, folder, prompts, params)


def hfpipe(run_hfpipe, folder, prompts, params, batch_size=None):
    return run_hfpipe(TASK, folder, prompts, params, batch_size=batch_size, env=ENV)


def new_ids(folder, result, prompt):
    tok = H.reference_pipeline(TASK, str(folder)).tokenizer
    return result["generated_token_ids"][len(tok(prompt)["input_ids"]):]


@functools.lru_cache(maxsize=None)
def produced_token(folder: str) -> int:
    """A token 4-beam search really produces (the 4th new token of the best beam of the first
    prompt), to use as eos so that beams finish early and at different lengths."""
    out = reference(folder, PROMPTS[:1], {**BEAMS, "max_new_tokens": 10})
    return new_ids(folder, out[0][0], PROMPTS[0])[3]


# ------------------------------------------------------------------------------ beam search

BEAM_CASES = {
    "plain": {"max_new_tokens": 12},
    "four_lp0.5": {"max_new_tokens": 12, "num_return_sequences": 4, "length_penalty": 0.5},
    "early_true_lp2": {"max_new_tokens": 12, "num_return_sequences": 2, "early_stopping": True,
                       "length_penalty": 2.0},
    "never_lp-1": {"max_new_tokens": 12, "num_return_sequences": 4, "early_stopping": "never",
                   "length_penalty": -1.0},
}
# With an eos the model produces: beams finish at different steps.
EOS_CASES = {
    "eos_false": {"max_new_tokens": 14, "num_return_sequences": 4, "early_stopping": False},
    "eos_true": {"max_new_tokens": 14, "num_return_sequences": 4, "early_stopping": True},
    "eos_never_lp1.5": {"max_new_tokens": 14, "num_return_sequences": 4, "early_stopping": "never",
                        "length_penalty": 1.5},
    "eos_list_lp0": {"max_new_tokens": 14, "num_return_sequences": 3, "length_penalty": 0.0, "eos_list": True},
}


@pytest.mark.parametrize("model", BEAM_MODELS)
def test_beam_search_ids(run_hfpipe, tiny_models, model):
    folder = tiny_models / model
    # Every early_stopping / length_penalty case on Llama; GPT-2 adds the eos cases to one of them.
    cases = dict(BEAM_CASES) if model == "llama-causal-lm" else {"four_lp0.5": BEAM_CASES["four_lp0.5"]}
    eos = produced_token(str(folder))
    if model in FULL:
        for name, case in EOS_CASES.items():
            case = dict(case)
            case["eos_token_id"] = [eos, 5] if case.pop("eos_list", False) else eos
            cases[name] = case
    outputs = {}
    for name, case in cases.items():
        # Two prompts for one case per model, one for the others (the file's time budget).
        prompts = PROMPTS[:2] if name == "four_lp0.5" else PROMPTS[:1]
        params = {**BEAMS, **case}
        want = reference(folder, prompts, params)
        got = outputs[name] = hfpipe(run_hfpipe, folder, prompts, params)
        H.assert_each_same(got, want, prompts, what=f"{model} {name}")
        assert all(len(r) == params.get("num_return_sequences", 1) for r in got)
    if model in FULL:
        # Not vacuous: with length_penalty 0 a beam that met eos early is returned, its tail
        # filled (with eos: these models have no pad token).
        early = [new_ids(folder, r, PROMPTS[0]) for r in outputs["eos_list_lp0"][0]]
        assert any(eos in ids[:-1] for ids in early), early


@pytest.mark.parametrize("model", FULL)
def test_beam_search_batch_equals_one_by_one(run_hfpipe, tiny_models, model):
    """3 prompts of different lengths (left-padded together, each with its own limits) give
    what each gives alone, and that is transformers' result."""
    folder = tiny_models / model
    params = {**BEAMS, "max_new_tokens": 10, "num_return_sequences": 2, "eos_token_id": produced_token(str(folder))}
    batched = hfpipe(run_hfpipe, folder, PROMPTS, params, batch_size=3)
    alone = hfpipe(run_hfpipe, folder, PROMPTS, params, batch_size=1)
    H.assert_each_same(batched, alone, PROMPTS, what=f"{model} batch 3 vs 1")
    H.assert_each_same(batched, reference(folder, PROMPTS, params), PROMPTS, what=f"{model} batch 3 vs transformers")


def test_beam_search_text_output(run_hfpipe, tiny_models):
    """generated_text of beams (full and new text), with eos-padded shorter beams."""
    folder = tiny_models / "llama-causal-lm"
    eos = produced_token(str(folder))
    for extra in ({}, {"return_full_text": False}):
        params = {"do_sample": False, "num_beams": 4, "num_return_sequences": 4, "max_new_tokens": 10,
                  "eos_token_id": eos, **extra}
        H.assert_each_same(hfpipe(run_hfpipe, folder, PROMPTS[:2], params), reference(folder, PROMPTS[:2], params),
                           PROMPTS[:2], what=f"text {extra}")


def test_generation_config_defaults_and_overrides(run_hfpipe, tiny_models, tmp_path):
    """The new keys in a model's generation_config.json are honoured, and a call overrides them."""
    source = tiny_models / "gpt2-causal-lm"
    folder = tmp_path / "gpt2-beams"
    folder.mkdir()
    for f in source.iterdir():
        if f.name != "generation_config.json":
            (folder / f.name).symlink_to(f)
    config = json.loads((source / "generation_config.json").read_text())
    config.update({"num_beams": 3, "num_return_sequences": 2, "length_penalty": 0.7, "no_repeat_ngram_size": 2,
                   "bad_words_ids": [[13]], "early_stopping": "never"})
    (folder / "generation_config.json").write_text(json.dumps(config))
    for params in ({**GREEDY, "max_new_tokens": 10}, {**GREEDY, "max_new_tokens": 10, "num_beams": 1,
                                                       "num_return_sequences": 1, "no_repeat_ngram_size": 0}):
        want = reference(folder, PROMPTS[:1], params)
        got = hfpipe(run_hfpipe, folder, PROMPTS[:1], params)
        H.assert_each_same(got, want, PROMPTS[:1], what=f"generation_config.json defaults {params}")
        assert len(got[0]) == (2 if "num_beams" not in params else 1)


# ------------------------------------------------------------------------------ greedy processors

def _greedy_new(folder, prompt, n=16):
    out = reference(folder, [prompt], {**GREEDY, "max_new_tokens": n})
    return new_ids(folder, out[0][0], prompt)


@pytest.mark.parametrize("model", FULL + ["qwen2-causal-lm"])
def test_processors_greedy_ids(run_hfpipe, tiny_models, model):
    folder = tiny_models / model
    tok = H.reference_pipeline(TASK, str(folder)).tokenizer
    plain = _greedy_new(folder, PROMPTS[0])
    prompt_ids = tok(PROMPTS[0])["input_ids"]
    # bad words: a single token the greedy run produces, and a pair that ends its 6th token.
    whole = prompt_ids + plain
    pair = whole[len(prompt_ids) + 4: len(prompt_ids) + 6]
    cases = {
        "no_repeat_2": {"no_repeat_ngram_size": 2},
        "no_repeat_1": {"no_repeat_ngram_size": 1},
        "bad_single": {"bad_words_ids": [[plain[2]]]},
        "bad_pair_and_single": {"bad_words_ids": [pair, [plain[0]], [4, 5, 6]]},
        "forced_eos": {"forced_eos_token_id": plain[0], "max_new_tokens": 9},
        "forced_eos_list_min_new": {"forced_eos_token_id": [plain[1], 3], "max_new_tokens": 7, "min_new_tokens": 3},
        "repetition_ngram_bad": {"repetition_penalty": 1.3, "no_repeat_ngram_size": 3, "bad_words_ids": [[plain[1]]]},
    }
    changed = []
    if model not in FULL:
        cases = {k: cases[k] for k in ("no_repeat_2", "bad_pair_and_single", "forced_eos")}
    for name, case in cases.items():
        params = {**GREEDY, "max_new_tokens": 16, **case}
        want = reference(folder, PROMPTS[:2], params)
        got = hfpipe(run_hfpipe, folder, PROMPTS[:2], params)
        H.assert_each_same(got, want, PROMPTS[:2], what=f"{model} {name}")
        if new_ids(folder, got[0][0], PROMPTS[0]) != plain[:len(new_ids(folder, got[0][0], PROMPTS[0]))]:
            changed.append(name)
    # Not vacuous: the banned / forced tokens did change the continuation.
    assert {"bad_single", "bad_pair_and_single", "forced_eos"} & set(cases) <= set(changed), changed


def _stop_string_for(folder, prompt):
    """A stop string the greedy continuation contains: 3 characters ending inside its 5th new
    token's text, so the row must stop exactly there."""
    tok = H.reference_pipeline(TASK, str(folder)).tokenizer
    plain = _greedy_new(folder, prompt)
    prompt_ids = tok(prompt)["input_ids"]
    for k in range(4, len(plain)):
        before = tok.decode(prompt_ids + plain[:k])
        upto = tok.decode(prompt_ids + plain[:k + 1])
        if upto.startswith(before) and len(upto.strip()) - len(before.strip()) >= 1 and len(upto.rstrip()) >= 3:
            text = upto.rstrip()
            return text[-3:]
    pytest.skip("no usable stop string in the greedy continuation")


@pytest.mark.parametrize("model", FULL)
def test_stop_strings_greedy_and_beams(run_hfpipe, tiny_models, model):
    """stop_strings end a row at the token that completes them (transformers: the tokenizer has
    to be passed to the call; hfpipe uses the pipeline's)."""
    folder = tiny_models / model
    pipe_tok = H.reference_pipeline(TASK, str(folder)).tokenizer
    stop = _stop_string_for(folder, PROMPTS[0])
    for base, stops in ((GREEDY, stop), (GREEDY, ["zzqx", stop]), ({**BEAMS, "num_return_sequences": 2}, [stop])):
        params = {**base, "max_new_tokens": 16, "stop_strings": stops}
        want = reference(folder, PROMPTS[:2], {**params, "tokenizer": pipe_tok})
        got = hfpipe(run_hfpipe, folder, PROMPTS[:2], params)
        H.assert_each_same(got, want, PROMPTS[:2], what=f"{model} stop {stops!r} {base}")
    got = hfpipe(run_hfpipe, folder, PROMPTS[:1], {**GREEDY, "max_new_tokens": 16, "stop_strings": stop})
    assert len(new_ids(folder, got[0][0], PROMPTS[0])) < 16, "the stop string did not stop the row"


# ------------------------------------------------------------------------------ processed scores

PROCESSOR_CONFIGS = {
    "temperature_top_k": {"do_sample": True, "temperature": 0.7, "top_k": 20},
    "top_p": {"do_sample": True, "top_k": None, "top_p": 0.9},
    "min_p": {"do_sample": True, "top_k": None, "min_p": 0.2, "temperature": 1.5},
    "typical_0.9": {"do_sample": True, "top_k": None, "typical_p": 0.9},
    "typical_0.2_top_k": {"do_sample": True, "top_k": 100, "typical_p": 0.2},
    "all_warpers_rep": {"do_sample": True, "temperature": 0.8, "top_k": 200, "top_p": 0.95, "min_p": 0.01,
                        "typical_p": 0.95, "repetition_penalty": 1.2},
    # Beam sampling keeps len(eos) + 1 tokens in every warper.
    "beam_sampling_keep": {"do_sample": True, "num_beams": 4, "top_k": 1, "top_p": 0.0001, "min_p": 1.0,
                           "typical_p": 0.0001, "eos_token_id": [2, 7]},
    "beam_sampling_no_eos": {"do_sample": True, "num_beams": 2, "top_k": 1, "typical_p": 0.001,
                             "eos_token_id": None},
    "greedy_chain": {"do_sample": False, "repetition_penalty": 0.8, "no_repeat_ngram_size": 2,
                     "bad_words_ids": [[11], [3, 4], [2]], "min_new_tokens": 6},
    "forced_eos_step": {"do_sample": False, "forced_eos_token_id": [2, 9], "max_length": 9},
    "forced_bos_first": {"do_sample": False, "forced_bos_token_id": 5},
}


def _reference_processed(model, config, prompt_length, sequences, scores):
    import torch
    from transformers import GenerationConfig, LogitsProcessorList
    gc = GenerationConfig(**{"eos_token_id": 2, **config})
    model._prepare_special_tokens(gc, kwargs_has_attention_mask=True, device="cpu")
    ids = torch.tensor(sequences)
    gc = model._prepare_generated_length(gc, has_default_max_length="max_length" not in config,
                                         has_default_min_length="min_length" not in config,
                                         model_input_name="input_ids", input_ids_length=prompt_length,
                                         inputs_tensor=ids[:, :prompt_length])
    processors = model._get_logits_processor(generation_config=gc, input_ids_seq_length=prompt_length,
                                             encoder_input_ids=ids[:, :prompt_length], logits_processor=LogitsProcessorList(),
                                             device="cpu")
    return processors(ids, scores.clone()), gc


@pytest.mark.parametrize("name", list(PROCESSOR_CONFIGS))
def test_processed_scores(tiny_models, name):
    import torch
    model = H.reference_model("AutoModelForCausalLM", tiny_models / "llama-causal-lm")
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(1234)
    scores = torch.randn(3, vocab, generator=g) * 3.0
    # Rows whose history repeats n-grams and holds the bad words' prefixes; length 8, prompt 3
    # (forced_bos_first uses one-token rows, where ForcedBOS acts).
    sequences = [[1, 3, 4, 11, 3, 4, 17, 3], [1, 20, 21, 22, 20, 21, 40, 41], [1, 5, 6, 7, 8, 3, 9, 10]]
    prompt_length = 3
    if name == "forced_bos_first":
        sequences, prompt_length = [[1], [4], [9]], 1
    _compare_processed(name, model, dict(PROCESSOR_CONFIGS[name]), prompt_length, sequences, scores)


def _compare_processed(name, model, config, prompt_length, sequences, scores):
    """Runs `config`'s logits processors over (sequences, scores) in transformers and in
    hfpipe_generation_processors, checks they agree (_check_processed) and returns hfpipe's rows."""
    if "max_length" not in config:
        config["max_new_tokens"] = 20
    want, _ = _reference_processed(model, config, prompt_length, sequences, scores)
    request = {"config": {"eos_token_id": 2, **config}, "prompt_length": prompt_length,
               "sequences": sequences, "scores": scores.tolist()}
    tool = H.tool_binary("HFPIPE_GENERATION_PROCESSORS_BIN", "hfpipe_generation_processors")
    proc = H.run_raw([tool], stdin=json.dumps(request), env=ENV)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    got = json.loads(proc.stdout)["scores"]
    _check_processed(name, got, want, scores)
    return got


def _check_processed(name, got, want, scores):
    """hfpipe's processed scores `got` (None for -inf) against transformers' `want`: the same
    -inf positions, finite scores within 1e-5, and the processors did change something."""
    changed = False
    for r, (g_row, w_row) in enumerate(zip(got, want.tolist())):
        w_inf = [i for i, v in enumerate(w_row) if v == float("-inf")]
        g_inf = [i for i, v in enumerate(g_row) if v is None]
        assert g_inf == w_inf, f"{name} row {r}: -inf at {g_inf[:20]} (hfpipe) vs {w_inf[:20]} (transformers)"
        finite = [(g, w) for g, w in zip(g_row, w_row) if g is not None]
        worst = max(abs(g - w) for g, w in finite)
        assert worst <= 1e-5, f"{name} row {r}: max |score diff| {worst:.3g}"
        changed = changed or bool(w_inf) or any(abs(w - s) > 1e-6 for w, s in zip(w_row, scores[r].tolist()))
    assert changed, f"{name}: the processors changed nothing (the test would not catch a missing one)"


# ------------------------------------------------------------------------------ beam sampling

def test_beam_sampling_is_reproducible(run_hfpipe, tiny_models):
    """do_sample with num_beams > 1 is beam sampling (candidates drawn without replacement from
    hfpipe's stream): same seed, same beams; another seed, other beams."""
    folder = tiny_models / "llama-causal-lm"
    params = {"do_sample": True, "num_beams": 3, "num_return_sequences": 3, "max_new_tokens": 8,
              "return_tensors": True, "temperature": 1.5}
    a = hfpipe(run_hfpipe, folder, PROMPTS[:2], {**params, "seed": 3})
    b = hfpipe(run_hfpipe, folder, PROMPTS[:2], {**params, "seed": 3}, batch_size=2)
    c = hfpipe(run_hfpipe, folder, PROMPTS[:2], {**params, "seed": 4})
    assert a == b
    assert a != c
    assert all(len(r) == 3 for r in a)
    beams = reference(folder, PROMPTS[:2], {**BEAMS, "num_return_sequences": 3, "max_new_tokens": 8})
    assert a != beams, "beam sampling gave exactly the deterministic beams"


# ------------------------------------------------------------------------------ bad input

def _error(run_hfpipe_raw, folder, params, inputs=("Hi",)):
    cmd = H.hfpipe_command("x", TASK, folder, inputs, params)[1:]
    return H.error_line(run_hfpipe_raw(cmd, stdin=H.jsonl_stdin(inputs), env=ENV))


def test_bad_input(run_hfpipe_raw, tiny_models):
    folder = tiny_models / "llama-causal-lm"
    ref = H.reference_pipeline(TASK, str(folder))
    # transformers refuses these too:
    with pytest.raises(ValueError, match="smaller or equal to `num_beams`"):
        ref("Hi", do_sample=False, num_beams=2, num_return_sequences=3, max_new_tokens=3)
    assert "has to be smaller or equal to `num_beams` (2)" in _error(
        run_hfpipe_raw, folder, {**BEAMS, "num_beams": 2, "num_return_sequences": 3})
    with pytest.raises(ValueError, match="typical_p"):
        ref("Hi", do_sample=True, typical_p=0.0, max_new_tokens=3)
    assert "`typical_p` has to be a float > 0" in _error(run_hfpipe_raw, folder, {"do_sample": True, "typical_p": 0.0})
    with pytest.raises(ValueError, match="bad_words_ids"):
        ref("Hi", do_sample=False, bad_words_ids=[1, 2], max_new_tokens=3)
    with pytest.raises(ValueError, match="early_stopping"):
        ref("Hi", do_sample=False, num_beams=2, early_stopping="sometimes", max_new_tokens=3)
    assert "'early_stopping' must be true, false or \"never\"" in _error(
        run_hfpipe_raw, folder, {**BEAMS, "early_stopping": "sometimes"})
    # hfpipe's own checks:
    assert "`num_beams` has to be a positive integer, but is 0" in _error(run_hfpipe_raw, folder, {"num_beams": 0})
    assert "`typical_p` has to be a float > 0" in _error(run_hfpipe_raw, folder, {"typical_p": 1.5})
    for bad in ([1, 2], [[]], [[-1]], "x", [], [[1, "a"]]):
        assert "'bad_words_ids' must be a non-empty list of non-empty lists" in _error(
            run_hfpipe_raw, folder, {**GREEDY, "bad_words_ids": bad})
    assert "The model vocabulary size is 32000" in _error(run_hfpipe_raw, folder,
                                                          {**GREEDY, "bad_words_ids": [[40000]]})
    assert "'stop_strings' must be a non-empty string" in _error(run_hfpipe_raw, folder,
                                                                 {**GREEDY, "stop_strings": [""]})
    assert "`no_repeat_ngram_size` has to be a non-negative" in _error(run_hfpipe_raw, folder,
                                                                       {**GREEDY, "no_repeat_ngram_size": -1})
    assert "`forced_eos_token_id` has to be a list of positive" in _error(run_hfpipe_raw, folder,
                                                                          {**GREEDY, "forced_eos_token_id": -3})
    # Beam search revises tokens: it cannot stream (transformers refuses a streamer with beams).
    cmd = H.hfpipe_command("x", TASK, folder, ["Hi"], {**BEAMS, "max_new_tokens": 3}, jsonl=False,
                           extra=["--stream"])[1:]
    assert "cannot be used with beam search" in H.error_line(run_hfpipe_raw(cmd, env=ENV))
