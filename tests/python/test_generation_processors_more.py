"""The generate parameters added after the first set, hfpipe vs transformers 4.57.6 on the tiny
decoders:

- sequence_bias, suppress_tokens, begin_suppress_tokens, exponential_decay_length_penalty,
  remove_invalid_values, renormalize_logits and the sampling warpers epsilon_cutoff /
  eta_cutoff: processed scores through tests/tools/generation_processors.cpp against
  transformers' LogitsProcessorList (1e-5, -inf positions identical: for the warpers, the kept
  set of tokens);
- the same through the text-generation pipeline: greedy and 4-beam token ids identical;
- what transformers refuses (the decoding modes it moved to the Hub: group / constrained beam
  search, contrastive search, DoLa; sequence_bias' checks; low_memory with beams) hfpipe
  refuses too, and what hfpipe does not do (guidance_scale, max_time, ...) is refused clearly
  rather than ignored; unknown parameters are refused by both.
"""
from __future__ import annotations

import json

import pytest

import hfpipe_helpers as H
from test_generation_strategies import (BEAMS, ENV, GREEDY, PROMPTS, TASK, _error, _greedy_new,
                                        _compare_processed, hfpipe, new_ids, reference)

# ------------------------------------------------------------------------------ processed scores

PROCESSOR_CONFIGS = {
    "sequence_bias": {"do_sample": False, "sequence_bias": [[[4], -2.5], [[3, 4], 3.0], [[21, 22], 1.25],
                                                            [[7], 0.5], [[9, 5, 6], -4.0], [[7], 1.5]]},
    "sequence_bias_and_rep": {"do_sample": False, "sequence_bias": [[[3], 2.0], [[4, 3], 1.0]],
                              "repetition_penalty": 1.3},
    "suppress_tokens": {"do_sample": False, "suppress_tokens": [0, 5, 17, 31999, 40000]},
    "begin_suppress_tokens": {"do_sample": False, "begin_suppress_tokens": [2, 8, 11], "prompt_length": 8},
    "begin_suppress_not_yet": {"do_sample": False, "begin_suppress_tokens": [2, 8, 11], "suppress_tokens": [9]},
    "exponential_decay": {"do_sample": False, "exponential_decay_length_penalty": [2, 1.7], "eos_token_id": [2, 7]},
    "remove_invalid_values": {"do_sample": False, "forced_eos_token_id": [2, 9], "max_length": 9,
                              "remove_invalid_values": True},
    "renormalize_greedy": {"do_sample": False, "renormalize_logits": True, "bad_words_ids": [[11]]},
    "epsilon": {"do_sample": True, "top_k": None, "epsilon_cutoff": 3e-4},
    "eta": {"do_sample": True, "top_k": None, "eta_cutoff": 2e-3},
    "epsilon_eta_warpers_renormalize": {"do_sample": True, "temperature": 0.8, "top_k": 400, "top_p": 0.97,
                                        "epsilon_cutoff": 1e-4, "eta_cutoff": 1e-3, "renormalize_logits": True},
    # Beam sampling keeps len(eos) + 1 tokens in every warper.
    "beam_sampling_keep_cutoffs": {"do_sample": True, "num_beams": 4, "top_k": None, "epsilon_cutoff": 0.9,
                                   "eta_cutoff": 0.9, "eos_token_id": [2, 7]},
}


@pytest.mark.parametrize("name", list(PROCESSOR_CONFIGS))
def test_processed_scores(tiny_models, name):
    import torch
    model = H.reference_model("AutoModelForCausalLM", tiny_models / "llama-causal-lm")
    vocab = model.config.vocab_size
    scores = torch.randn(3, vocab, generator=torch.Generator().manual_seed(4321)) * 3.0
    # Rows that end with the biased sequences' prefixes (3; 21; 9 5), length 8.
    sequences = [[1, 3, 4, 11, 3, 4, 17, 3], [1, 20, 21, 22, 20, 21, 40, 21], [1, 5, 6, 7, 8, 3, 9, 5]]
    config = dict(PROCESSOR_CONFIGS[name])
    prompt_length = config.pop("prompt_length", 3)
    got = _compare_processed(name, model, config, prompt_length, sequences, scores)
    if name == "begin_suppress_not_yet":  # only suppress_tokens acted: the rows are past the first new token
        assert all(row[8] is not None and row[9] is None for row in got)


# ------------------------------------------------------------------------------ pipeline ids

def _cases(plain, eos):
    """Each case changes the greedy continuation `plain` of PROMPTS[0] (checked below)."""
    return {
        "bias_single": {"sequence_bias": [[[plain[0]], -100.0], [[plain[3]], -3.5]]},
        "bias_pair": {"sequence_bias": [[[plain[1], plain[2]], -100.0]]},
        "suppress": {"suppress_tokens": [plain[2], plain[4]]},
        "begin_suppress": {"begin_suppress_tokens": [plain[0]]},
        "decay": {"exponential_decay_length_penalty": [2, 4.0], "eos_token_id": eos},
        "renormalize_ngram": {"renormalize_logits": True, "no_repeat_ngram_size": 2, "remove_invalid_values": True},
    }


@pytest.mark.parametrize("model", ["llama-causal-lm", "gpt2-causal-lm"])
def test_greedy_and_beam_ids(run_hfpipe, tiny_models, model):
    folder = tiny_models / model
    plain = _greedy_new(folder, PROMPTS[0])
    eos = plain[6]
    changed = set()
    for name, case in _cases(plain, eos).items():
        for mode in ("greedy", "beams"):
            params = {**(GREEDY if mode == "greedy" else {**BEAMS, "num_return_sequences": 2}), "max_new_tokens": 12,
                      **case}
            want = reference(folder, PROMPTS[:2], params)
            got = hfpipe(run_hfpipe, folder, PROMPTS[:2], params)
            H.assert_each_same(got, want, PROMPTS[:2], what=f"{model} {name} {mode}")
            if mode == "greedy" and new_ids(folder, got[0][0], PROMPTS[0]) != plain[:12]:
                changed.add(name)
    # Not vacuous: each processor changed the greedy continuation (renormalize_logits alone
    # cannot change an argmax; no_repeat_ngram_size may not have to).
    assert set(_cases(plain, eos)) - {"renormalize_ngram"} <= changed, changed


@pytest.mark.parametrize("model", ["llama-causal-lm", "qwen2-causal-lm"])
def test_sampling_epsilon_keeps_one_token(run_hfpipe, tiny_models, model):
    """Sampling through the pipeline with epsilon_cutoff 0.999: only the most likely token is
    kept (min_tokens_to_keep 1), so hfpipe's and torch's draws both give transformers' greedy ids;
    and with a reachable cutoff hfpipe's draws stay reproducible for a seed."""
    folder = tiny_models / model
    params = {"do_sample": True, "top_k": None, "epsilon_cutoff": 0.999, "max_new_tokens": 10, "return_tensors": True,
              "seed": 5}
    got = hfpipe(run_hfpipe, folder, PROMPTS[:2], params)
    H.assert_each_same(got, reference(folder, PROMPTS[:2], {k: v for k, v in params.items() if k != "seed"}),
                       PROMPTS[:2], what=f"{model} epsilon 0.999")
    H.assert_each_same(got, reference(folder, PROMPTS[:2], {**GREEDY, "max_new_tokens": 10}), PROMPTS[:2],
                       what=f"{model} epsilon 0.999 vs greedy")
    loose = {**params, "epsilon_cutoff": 1e-4, "eta_cutoff": 1e-4, "temperature": 1.3}
    assert hfpipe(run_hfpipe, folder, PROMPTS[:1], loose) == hfpipe(run_hfpipe, folder, PROMPTS[:1], loose)


@pytest.mark.parametrize("model", ["llama-causal-lm", "gpt2-causal-lm", "qwen2-causal-lm"])
def test_guidance_scale_ids(run_hfpipe, tiny_models, model):
    """Classifier-free guidance (UnbatchedClassifierFreeGuidanceLogitsProcessor: the prompt's last
    token as unconditional context): greedy ids identical, with other processors after it, and a
    batch of prompts of different lengths equal to one by one."""
    folder = tiny_models / model
    plain = reference(folder, PROMPTS, {**GREEDY, "max_new_tokens": 12})
    for case in ({"guidance_scale": 1.5}, {"guidance_scale": 3.0, "repetition_penalty": 1.2, "min_new_tokens": 4},
                 {"guidance_scale": 0.5, "renormalize_logits": True, "num_return_sequences": 1}):
        params = {**GREEDY, "max_new_tokens": 12, **case}
        want = reference(folder, PROMPTS, params)
        got = hfpipe(run_hfpipe, folder, PROMPTS, params)
        H.assert_each_same(got, want, PROMPTS, what=f"{model} {case}")
        assert want != plain, f"{case} changed nothing"
        H.assert_each_same(hfpipe(run_hfpipe, folder, PROMPTS, params, batch_size=3), got, PROMPTS,
                           what=f"{model} {case} batch 3 vs 1")


def test_guidance_refused_for_seq2seq(run_hfpipe_raw, tiny_models):
    cmd = H.hfpipe_command("x", "text2text-generation", tiny_models / "bart-seq2seq", ["Hi"],
                           {"guidance_scale": 2.0, "num_beams": 1})[1:]
    assert "`guidance_scale` is not supported for encoder-decoder models" in H.error_line(
        run_hfpipe_raw(cmd, stdin=H.jsonl_stdin(["Hi"]), env=ENV))


def test_generation_config_json_keys(run_hfpipe, run_hfpipe_raw, tiny_models, tmp_path):
    """The new keys in a model's generation_config.json are honoured; a Hub-only mode there is
    refused at the call, as transformers refuses it."""
    source = tiny_models / "gpt2-causal-lm"
    plain = _greedy_new(source, PROMPTS[0])

    def folder_with(name, extra):
        folder = tmp_path / name
        folder.mkdir()
        for f in source.iterdir():
            if f.name != "generation_config.json":
                (folder / f.name).symlink_to(f)
        config = json.loads((source / "generation_config.json").read_text())
        config.update(extra)
        (folder / "generation_config.json").write_text(json.dumps(config))
        return folder

    honoured = folder_with("keys", {"suppress_tokens": [plain[1]], "sequence_bias": [[[plain[0]], -50.0]],
                                    "output_scores": True, "use_cache": True})
    params = {**GREEDY, "max_new_tokens": 8}
    want = reference(honoured, PROMPTS[:1], params)
    got = hfpipe(run_hfpipe, honoured, PROMPTS[:1], params)
    H.assert_each_same(got, want, PROMPTS[:1], what="generation_config.json keys")
    assert new_ids(honoured, got[0][0], PROMPTS[0])[0] != plain[0]
    groups = folder_with("groups", {"num_beams": 4, "num_beam_groups": 2, "diversity_penalty": 0.5})
    ref = H.reference_pipeline(TASK, str(groups))
    with pytest.raises(ValueError, match="Group Beam Search requires `trust_remote_code=True`"):
        ref("Hi", **params)
    assert "Group Beam Search (num_beam_groups > 1) is not available" in _error(run_hfpipe_raw, groups, params)


# ------------------------------------------------------------------------------ refusals

HUB_MODES = {
    "Group Beam Search": {"num_beams": 4, "num_beam_groups": 2, "diversity_penalty": 1.0},
    "Constrained Beam Search": {"num_beams": 2, "force_words_ids": [[5]]},
    "Contrastive Search": {"penalty_alpha": 0.6, "top_k": 4},
    "Dola Generation": {"dola_layers": "high"},
}


@pytest.mark.parametrize("mode", list(HUB_MODES))
def test_hub_modes_refused_as_transformers(run_hfpipe_raw, tiny_models, mode):
    folder = tiny_models / "llama-causal-lm"
    params = {**GREEDY, "max_new_tokens": 3, **HUB_MODES[mode]}
    with pytest.raises(ValueError, match=f"{mode} requires `trust_remote_code=True`"):
        H.reference_pipeline(TASK, str(folder))("Hi", **params)
    message = _error(run_hfpipe_raw, folder, params)
    assert f"{mode} (" in message and "trust_remote_code=True" in message and "transformers-community/" in message


def test_flags_that_select_no_hub_mode_are_ignored_as_transformers(run_hfpipe, tiny_models):
    """num_beam_groups without beams, diversity_penalty alone, dola_layers with beams, penalty_alpha
    under sampling (top_k 1), output / cache flags: transformers ignores them, so does hfpipe."""
    folder = tiny_models / "llama-causal-lm"
    for extra in ({"num_beam_groups": 2, "diversity_penalty": 1.0}, {"penalty_alpha": 0.6, "top_k": 1},
                  {"output_scores": True, "use_cache": False, "num_assistant_tokens": 5},
                  {"num_beams": 2, "dola_layers": "low"}):
        params = {**GREEDY, "max_new_tokens": 6, **extra}
        H.assert_each_same(hfpipe(run_hfpipe, folder, PROMPTS[:1], params), reference(folder, PROMPTS[:1], params),
                           PROMPTS[:1], what=f"ignored {extra}")


def test_bad_values(run_hfpipe_raw, tiny_models):
    folder = tiny_models / "llama-causal-lm"
    ref = H.reference_pipeline(TASK, str(folder))
    base = {**GREEDY, "max_new_tokens": 3}
    # transformers refuses these, with these messages:
    for bad in ([[[5], -1]], [[[0], -1.0]], [[5, -1.0]]):
        with pytest.raises(ValueError, match="Each element in `sequence_bias` has to be"):
            ref("Hi", **base, sequence_bias=bad)
        assert "Each element in `sequence_bias` has to be a non-empty list of lists" in _error(
            run_hfpipe_raw, folder, {**base, "sequence_bias": bad})
    assert "pass a list of [[token ids], bias] pairs" in _error(run_hfpipe_raw, folder,
                                                                {**base, "sequence_bias": {"5": -1.0}})
    with pytest.raises(ValueError, match="following tokens were being biased"):
        ref("Hi", **base, sequence_bias=[[[40000], -1.0]])
    assert "The model vocabulary size is 32000, but the following tokens were being biased: [40000]" in _error(
        run_hfpipe_raw, folder, {**base, "sequence_bias": [[[40000], -1.0]]})
    with pytest.raises(ValueError, match="low_memory=True` is not supported"):
        ref("Hi", **base, num_beams=2, low_memory=True)
    assert "`low_memory=True` is not supported" in _error(run_hfpipe_raw, folder, {**base, "num_beams": 2,
                                                                                  "low_memory": True})
    with pytest.raises(ValueError, match="model_kwargs` are not used by the model: \\['no_such_flag'\\]"):
        ref("Hi", **base, no_such_flag=1)
    assert "unknown parameter 'no_such_flag' for text-generation" in _error(run_hfpipe_raw, folder,
                                                                            {**base, "no_such_flag": 1})
    # transformers applies these, hfpipe does not: refused, not ignored.
    assert "`guidance_scale` (1.5) is not supported with beam search" in _error(
        run_hfpipe_raw, folder, {**base, "guidance_scale": 1.5, "num_beams": 2})
    assert "`max_time` (5.0) is not supported" in _error(run_hfpipe_raw, folder, {**base, "max_time": 5.0})
    assert "`encoder_repetition_penalty` (1.5) is not supported" in _error(
        run_hfpipe_raw, folder, {**base, "encoder_repetition_penalty": 1.5})
    assert "`output_scores` with `return_dict_in_generate` is not supported" in _error(
        run_hfpipe_raw, folder, {**base, "return_dict_in_generate": True, "output_scores": True})
    # transformers skips a cutoff outside (0, 1) silently; hfpipe refuses it (as for typical_p).
    assert "`epsilon_cutoff` has to be a float > 0 and < 1, but is 1.5" in _error(
        run_hfpipe_raw, folder, {"do_sample": True, "epsilon_cutoff": 1.5})
    assert "`eta_cutoff` has to be a float > 0 and < 1" in _error(run_hfpipe_raw, folder, {"eta_cutoff": -0.5})
    # Wrong types: a clear error naming the key.
    assert "'exponential_decay_length_penalty' must be a [start_index, decay_factor] pair" in _error(
        run_hfpipe_raw, folder, {**base, "exponential_decay_length_penalty": 5})
    assert "'suppress_tokens' must be a list of token ids" in _error(run_hfpipe_raw, folder,
                                                                     {**base, "suppress_tokens": [1.5]})


# ------------------------------------------------------------------------------ encoder-decoder

def test_seq2seq_ids(run_hfpipe, tiny_models):
    """The same processors in text2text-generation (BART): the decoder start is the one-token
    prompt, so begin_suppress_tokens acts on the first generated token, or on the second after a
    forced bos."""
    task = "text2text-generation"
    folder = tiny_models / "bart-seq2seq"
    texts = ["The tower is 324 metres tall, about the same height as an 81-storey building.", "Hello there!"]
    base = {"num_beams": 1, "do_sample": False, "return_tensors": True, "max_new_tokens": 10}
    plain = H.reference_outputs(task, folder, texts[:1], base)[0][0]["generated_token_ids"]
    cases = {
        "begin_suppress": {"begin_suppress_tokens": [plain[1]]},
        "forced_bos_begin_suppress": {"forced_bos_token_id": 0, "begin_suppress_tokens": [plain[2]]},
        "suppress_bias_beams": {"num_beams": 3, "suppress_tokens": [plain[3]],
                                "sequence_bias": [[[plain[1]], -20.0], [[plain[2], plain[4]], 2.0]]},
        "decay_eos": {"exponential_decay_length_penalty": [1, 3.0], "eos_token_id": plain[5]},
    }
    for name, case in cases.items():
        params = {**base, **case}
        want = H.reference_outputs(task, folder, texts, params)
        got = run_hfpipe(task, folder, texts, params, env=ENV)
        H.assert_each_same(got, want, texts, what=f"bart {name}")
        assert got[0][0]["generated_token_ids"] != plain, f"{name} changed nothing"
