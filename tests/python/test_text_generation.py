"""text-generation parity: hfpipe vs transformers on tiny random decoder-only models.

Llama (plain, and with llama3 rope scaling + tied embeddings + biases, and with linear,
dynamic and yarn rope scaling), Qwen2, Mistral (a sliding window of 8), GPT-2, GPT-Neo (a local
layer), GPT-NeoX (partial rotary; parallel and sequential residual, dynamic rope), OPT
(project_in/out; post-norm), Phi-3 (longrope crossed while generating, sliding window), Qwen3,
Gemma 1/2/3 and a Gemma 3 multimodal checkpoint's language model, all made by
scripts/make_tiny_models.py (see its comments for what each exercises). Greedy decoding must
give transformers' token ids exactly and the logits must agree within 1e-4; sampling is
hfpipe's own random stream, so it is checked for reproducibility and shape, not values.
"""
from __future__ import annotations

import json
import os

import pytest

import hfpipe_helpers as H
import make_tiny_models as M

TASK = "text-generation"
MODELS = M.names(task=TASK)
GREEDY = {"do_sample": False}

# One OpenMP thread for hfpipe unless HFPIPE_TEST_THREADS says otherwise: the tiny models gain
# nothing from more, and on a busy 2-core machine the barriers of a second thread made a run
# of 36 decode steps take 6.5 s instead of 0.2 s.
ENV = {} if os.environ.get("HFPIPE_TEST_THREADS") else {"OMP_NUM_THREADS": "1"}

PROMPTS = [
    "The quick brown fox",
    "Hello, my name is",
    "In 1991, the remains of Russian Tsar Nicholas II and his family (except for Alexei and Maria)",
]


def reference_model(folder, **kwargs):
    return H.reference_model("AutoModelForCausalLM", folder, **kwargs)


def reference_ids(folder, prompt):
    return H.reference_tokenizer(folder)(prompt)["input_ids"]


def hfpipe_logits(run_hfpipe_raw, folder, ids, step=None):
    args = ["logits", "--model", str(folder)] + (["--step", str(step)] if step else []) + [json.dumps(ids)]
    proc = run_hfpipe_raw(args, env=ENV)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    return json.loads(proc.stdout)["logits"]


@pytest.mark.parametrize("model", MODELS)
def test_logits(run_hfpipe_raw, tiny_models, model):
    """Every position's logits, prefill at once and token by token through the cache."""
    import torch
    folder = tiny_models / model
    ref = reference_model(folder)
    ids = reference_ids(folder, PROMPTS[1])
    with torch.no_grad():
        want = ref(torch.tensor([ids])).logits[0]
    for step in (None, 1):
        got = torch.tensor(hfpipe_logits(run_hfpipe_raw, folder, ids, step))
        assert got.shape == want.shape
        diff = (got - want).abs().max().item()
        assert diff <= H.ATOL, f"{model} step={step}: max |logit diff| {diff:.3g}"


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("batch_size", [1, 3])
def test_greedy_ids(run_hfpipe, reference, tiny_models, model, batch_size):
    """32 greedy tokens: ids identical to transformers, alone and as a left-padded batch of 3."""
    folder = tiny_models / model
    params = {**GREEDY, "max_new_tokens": 32, "return_tensors": True}
    want = reference.reference_outputs(TASK, folder, PROMPTS, params)
    got = run_hfpipe(TASK, folder, PROMPTS, params, batch_size=batch_size, env=ENV)
    H.assert_each_same(got, want, PROMPTS, what=f"{model} batch_size={batch_size}")
    assert all(len(r[0]["generated_token_ids"]) > len(reference_ids(folder, p)) for r, p in zip(got, PROMPTS))


def _eos_from_greedy(reference, folder):
    """A token the model really produces: the 6th greedy token of the first prompt."""
    out = reference.reference_outputs(TASK, folder, PROMPTS[:1], {**GREEDY, "max_new_tokens": 8,
                                                                 "return_tensors": True})
    prompt_len = len(reference_ids(folder, PROMPTS[0]))
    return out[0][0]["generated_token_ids"][prompt_len + 5]


PIPELINE_PARAMS = {
    "new12": {**GREEDY, "max_new_tokens": 12},
    "new_text": {**GREEDY, "max_new_tokens": 12, "return_full_text": False},
    "prefix": {**GREEDY, "max_new_tokens": 10, "prefix": "Once upon a time, "},
    # max_length also truncates the prompt (the pipeline hands it to the tokenizer).
    "max_length": {**GREEDY, "max_new_tokens": None, "max_length": 40},
    "repetition_penalty": {**GREEDY, "max_new_tokens": 12, "repetition_penalty": 1.5},
    "no_cleanup": {**GREEDY, "max_new_tokens": 12, "clean_up_tokenization_spaces": False},
}


# Post-processing does not depend on the architecture: every parameter set on Llama and GPT-2
# (SentencePiece and byte-level BPE tokenizers), two on the others (the test file's time budget).
FULL_PIPELINE = ("llama-causal-lm", "gpt2-causal-lm")


# The rope-scaling and second-layout variants add nothing to post-processing and eos handling:
# those two tests run on one model per family (the suite's time budget).
FAMILY_MODELS = [m for m in MODELS if m not in M.GEN_A_VARIANTS]


@pytest.mark.parametrize("model", FAMILY_MODELS)
def test_pipeline_outputs(run_hfpipe, reference, tiny_models, model):
    folder = tiny_models / model
    pids = list(PIPELINE_PARAMS) if model in FULL_PIPELINE else ["new_text", "prefix"]
    for pid in pids:
        params = PIPELINE_PARAMS[pid]
        want = reference.reference_outputs(TASK, folder, PROMPTS, params)
        got = run_hfpipe(TASK, folder, PROMPTS, params, env=ENV)
        H.assert_each_same(got, want, PROMPTS, what=f"{model} {pid}")


@pytest.mark.parametrize("model", FAMILY_MODELS)
def test_eos_stopping(run_hfpipe, reference, tiny_models, model):
    """Generation stops at an eos id the model produces; min_new_tokens holds it off."""
    folder = tiny_models / model
    eos = _eos_from_greedy(reference, folder)
    for params in ({**GREEDY, "max_new_tokens": 20, "eos_token_id": eos},
                   {**GREEDY, "max_new_tokens": 20, "eos_token_id": [eos, 3], "return_tensors": True},
                   {**GREEDY, "max_new_tokens": 20, "eos_token_id": eos, "min_new_tokens": 10,
                    "return_tensors": True}):
        want = reference.reference_outputs(TASK, folder, PROMPTS[:1], params)
        got = run_hfpipe(TASK, folder, PROMPTS[:1], params, env=ENV)
        H.assert_each_same(got, want, PROMPTS[:1], what=f"{model} {params}")
    short = reference.reference_outputs(TASK, folder, PROMPTS[:1],
                                        {**GREEDY, "max_new_tokens": 20, "eos_token_id": eos,
                                         "return_tensors": True})
    assert len(short[0][0]["generated_token_ids"]) < len(reference_ids(folder, PROMPTS[0])) + 20


@pytest.mark.parametrize("model", ["gpt2-causal-lm", "llama-causal-lm"])
def test_empty_prompt_starts_from_bos(run_hfpipe, reference, tiny_models, model):
    folder = tiny_models / model
    params = {**GREEDY, "max_new_tokens": 6}
    for p in (params, {**params, "return_tensors": True}):
        H.assert_each_same(run_hfpipe(TASK, folder, [""], p, env=ENV),
                           reference.reference_outputs(TASK, folder, [""], p), [""], what=f"{model} empty prompt {p}")


@pytest.mark.parametrize("model", ["llama-causal-lm", "gpt2-causal-lm"])
def test_sampling(run_hfpipe, reference, tiny_models, model):
    """Same seed, same samples; another seed, other samples; the records as transformers shapes them."""
    folder = tiny_models / model
    params = {"do_sample": True, "max_new_tokens": 8, "num_return_sequences": 3, "top_k": 0, "top_p": 0.95,
              "temperature": 1.5, "min_p": 0.01, "return_tensors": True}
    a = run_hfpipe(TASK, folder, PROMPTS, {**params, "seed": 7}, env=ENV)
    b = run_hfpipe(TASK, folder, PROMPTS, {**params, "seed": 7}, batch_size=3, env=ENV)
    c = run_hfpipe(TASK, folder, PROMPTS, {**params, "seed": 8}, env=ENV)
    assert a == b, "the same seed gave different samples (batch size 1 vs 3)"
    assert a != c, "different seeds gave the same samples"
    for result in a:
        assert len(result) == 3 and len({len(r["generated_token_ids"]) for r in result}) == 1
    assert len({json.dumps(r) for r in a[2]}) > 1, "three samples of one prompt are all equal"
    want = reference.reference_outputs(TASK, folder, PROMPTS, {**params, "return_tensors": None,
                                                               "return_full_text": True})
    got = run_hfpipe(TASK, folder, PROMPTS, {**params, "seed": 7, "return_tensors": None, "return_full_text": True},
                     env=ENV)
    for g, w, prompt in zip(got, want, PROMPTS):
        assert [list(r) for r in g] == [list(r) for r in w] == [["generated_text"]] * 3
        assert all(r["generated_text"].startswith(prompt) for r in g)


def _error(run_hfpipe_raw, folder, inputs, params):
    cmd = H.hfpipe_command("x", TASK, folder, inputs, params)[1:]
    return H.error_line(run_hfpipe_raw(cmd, stdin=H.jsonl_stdin(inputs), env=ENV))


def test_bad_input(run_hfpipe_raw, reference, tiny_models):
    qwen, llama = tiny_models / "qwen2-causal-lm", tiny_models / "llama-causal-lm"
    # Qwen2 has no bos token and GPT-2's tokenizer adds none: transformers refuses an empty prompt.
    with pytest.raises(ValueError, match="bos_token_id"):
        reference.reference_outputs(TASK, qwen, [""], {**GREEDY, "max_new_tokens": 4})
    assert "bos_token_id" in _error(run_hfpipe_raw, qwen, [""], {**GREEDY, "max_new_tokens": 4})
    assert "unknown parameter 'max_tokens'" in _error(run_hfpipe_raw, llama, ["Hi"], {"max_tokens": 4})
    long_prompt = " ".join(["word"] * 200)
    assert "max_position_embeddings (128)" in _error(run_hfpipe_raw, llama, [long_prompt], {"max_new_tokens": 4})
    chat = [{"role": "user", "content": "Hi"}]   # GPT-2 has no chat template (test_text_generation_chat.py)
    assert "chat_template is not set" in _error(run_hfpipe_raw, tiny_models / "gpt2-causal-lm", [chat],
                                                {"max_new_tokens": 4})
    assert "mutually exclusive" in _error(run_hfpipe_raw, llama, ["Hi"], {"return_text": True,
                                                                           "return_full_text": False})
    assert "strictly positive float" in _error(run_hfpipe_raw, llama, ["Hi"], {"do_sample": True, "temperature": -1.0})
    assert "num_return_sequences" in _error(run_hfpipe_raw, llama, ["Hi"], {**GREEDY, "num_return_sequences": 2})
    assert "`max_length` is set to 3" in _error(run_hfpipe_raw, llama, ["Hello there my friend"], {"max_length": 3,
                                                                                                "max_new_tokens": None})


# ------------------------------------------------------------ Gemma 2/3: sliding windows, eager
# The tiny Gemma 2 and Gemma 3 models attend within a window of 6 on their sliding layers; the
# longest prompt is ~30 tokens, so most of its positions see only part of it. Gemma 2's
# attention soft-capping runs only in transformers' eager attention: its default, sdpa, skips
# attn_logit_softcapping; hfpipe does what the asked-for implementation does (model_kwargs /
# logits --attn-implementation), sdpa by default.
SLIDING_MODELS = [m for m in MODELS if m.split("-")[0] in ("gemma2", "gemma3")]
EAGER = {"attn_implementation": "eager"}


def reference_logits(folder, ids, attn):
    import torch
    model = reference_model(folder, **EAGER) if attn == "eager" else reference_model(folder)
    assert model.config._attn_implementation == attn
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0]


def hfpipe_logits_with(run_hfpipe_raw, folder, ids, step, attn):
    args = ["logits", "--model", str(folder), "--attn-implementation", attn] + (["--step", str(step)] if step else [])
    proc = run_hfpipe_raw(args + [json.dumps(ids)], env=ENV)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    return json.loads(proc.stdout)["logits"]


# Gemma 3 has no attention soft-capping, so eager and sdpa agree there: sdpa only.
@pytest.mark.parametrize("model,attn", [(m, a) for m in SLIDING_MODELS for a in ("sdpa", "eager")
                                        if a == "sdpa" or m.startswith("gemma2")])
def test_logits_past_sliding_window(run_hfpipe_raw, tiny_models, model, attn):
    """Every position of the longest prompt, at once, token by token and in chunks of 7 (a chunk
    straddling the window edge), under both attention implementations."""
    import torch
    folder = tiny_models / model
    ids = reference_ids(folder, PROMPTS[2])
    window = json.loads((folder / "config.json").read_text())["sliding_window"]
    assert len(ids) > 4 * window
    want = reference_logits(folder, ids, attn)
    for step in (None, 1, 7):
        got = torch.tensor(hfpipe_logits_with(run_hfpipe_raw, folder, ids, step, attn))
        diff = (got - want).abs().max().item()
        assert diff <= H.ATOL, f"{model} {attn} step={step}: max |logit diff| {diff:.3g}"


def test_gemma2_attention_softcap_matters(tiny_models):
    """The tiny Gemma 2's soft-capping changes its logits (so the eager parity above means
    something), and its sliding window does too: attending to everything gives other logits."""
    import torch
    folder = tiny_models / "gemma2-causal-lm"
    ids = reference_ids(folder, PROMPTS[2])
    sdpa, eager = reference_logits(folder, ids, "sdpa"), reference_logits(folder, ids, "eager")
    assert (sdpa - eager).abs().max().item() > 100 * H.ATOL
    wide = reference_model(folder, sliding_window=len(ids) + 1)
    with torch.no_grad():
        assert (wide(torch.tensor([ids])).logits[0] - sdpa).abs().max().item() > 100 * H.ATOL


@pytest.mark.parametrize("batch_size", [1, 3])
def test_greedy_ids_eager_gemma2(run_hfpipe, tiny_models, batch_size):
    """pipeline(model_kwargs={"attn_implementation": "eager"}): soft-capped attention over 32
    greedy tokens, alone and as a left-padded batch (the window then counts the padding)."""
    folder = tiny_models / "gemma2-causal-lm"
    params = {**GREEDY, "max_new_tokens": 32, "return_tensors": True}
    pipe = H.reference_pipeline(TASK, str(folder), **EAGER)
    assert pipe.model.config._attn_implementation == "eager"
    want = [H._jsonable(pipe(p, **params)) for p in PROMPTS]
    got = run_hfpipe(TASK, folder, PROMPTS, {**params, "model_kwargs": EAGER}, batch_size=batch_size, env=ENV)
    H.assert_each_same(got, want, PROMPTS, what=f"gemma2 eager batch_size={batch_size}")


def test_bad_model_kwargs(run_hfpipe_raw, tiny_models):
    folder = tiny_models / "gemma2-causal-lm"
    assert "supported: sdpa, eager" in _error(run_hfpipe_raw, folder, ["Hi"],
                                              {"model_kwargs": {"attn_implementation": "flash_attention_2"}})
    assert "model_kwargs key 'device_map'" in _error(run_hfpipe_raw, folder, ["Hi"], {"model_kwargs": {"device_map": "auto"}})
    proc = run_hfpipe_raw(["logits", "--model", str(folder), "--attn-implementation", "flex", "[1, 2]"], env=ENV)
    assert proc.returncode == 1 and b"supported: sdpa, eager" in proc.stderr


def test_gemma3_multimodal_layouts(run_hfpipe_raw, tiny_models, tmp_path):
    """A gemma3 (multimodal) checkpoint under transformers' in-memory names (model.language_model.*)
    loads like the Hub layout the tiny model has; one without language-model weights is refused."""
    import shutil
    import torch
    from safetensors.torch import load_file, save_file
    src = tiny_models / "gemma3mm-causal-lm"
    state = load_file(src / "model.safetensors")
    assert any(k.startswith("language_model.model.") for k in state)
    moves = {"language_model.model.": "model.language_model.", "language_model.lm_head.": "lm_head.",
             "vision_tower.": "model.vision_tower.", "multi_modal_projector.": "model.multi_modal_projector."}
    renamed = tmp_path / "renamed"
    shutil.copytree(src, renamed)
    save_file({next(new + k[len(old):] for old, new in moves.items() if k.startswith(old)): v for k, v in state.items()},
              renamed / "model.safetensors", metadata={"format": "pt"})
    ids = reference_ids(src, PROMPTS[1])
    ref = reference_model(renamed)
    with torch.no_grad():
        want = ref(torch.tensor([ids])).logits[0]
    got = torch.tensor(hfpipe_logits(run_hfpipe_raw, renamed, ids))
    assert (got - want).abs().max().item() <= H.ATOL

    vision_only = tmp_path / "vision-only"
    shutil.copytree(src, vision_only)
    save_file({k: v for k, v in state.items() if not k.startswith("language_model.")},
              vision_only / "model.safetensors", metadata={"format": "pt"})
    proc = run_hfpipe_raw(["logits", "--model", str(vision_only), json.dumps(ids)], env=ENV)
    assert proc.returncode == 1 and b"holds no language model weights" in proc.stderr, proc.stderr


@pytest.mark.parametrize("model,drop", [
    ("gemma2-causal-lm", ["layer_types", "query_pre_attn_scalar", "final_logit_softcapping"]),
    ("gemma3-causal-lm", ["layer_types", "_sliding_window_pattern", "rope_local_base_freq"]),
])
def test_gemma_config_defaults(run_hfpipe_raw, tiny_models, tmp_path, model, drop):
    """Configs written before layer_types existed (Gemma 2's alternation, Gemma 3's
    sliding_window_pattern) and without keys whose defaults the config classes supply."""
    import shutil
    import torch
    folder = tmp_path / model
    shutil.copytree(tiny_models / model, folder)
    config = json.loads((folder / "config.json").read_text())
    for key in drop:
        config.pop(key)
    (folder / "config.json").write_text(json.dumps(config))
    ref = reference_model(folder)
    ids = reference_ids(tiny_models / model, PROMPTS[2])
    with torch.no_grad():
        want = ref(torch.tensor([ids])).logits[0]
    got = torch.tensor(hfpipe_logits(run_hfpipe_raw, folder, ids))
    assert (got - want).abs().max().item() <= H.ATOL


def _with_config(src, dst, **changes):
    """A copy of tiny model `src` whose config.json has `changes` (None deletes a key)."""
    import shutil
    shutil.copytree(src, dst)
    cfg = json.loads((dst / "config.json").read_text())
    for key, value in changes.items():
        if value is None:
            cfg.pop(key, None)
        else:
            cfg[key] = value
    (dst / "config.json").write_text(json.dumps(cfg))
    return dst


@pytest.mark.parametrize("model,changes,message", [
    ("llama-causal-lm-yarn-rope", {"rope_scaling": {"rope_type": "mystery", "factor": 2.0}},
     "rope_scaling type 'mystery' is not supported"),
    ("llama-causal-lm-yarn-rope", {"rope_scaling": {"rope_type": "yarn"}}, "rope_scaling is incomplete for 'yarn'"),
    ("llama-causal-lm-dynamic-rope", {"rope_scaling": {"rope_type": "dynamic"}},
     "rope_scaling is incomplete for 'dynamic'"),
    ("phi3-causal-lm", {"rope_scaling": {"type": "longrope", "short_factor": [1.0], "long_factor": [1.0]}},
     "must list rotary_dim / 2 = 4 numbers"),
    ("gpt_neox-causal-lm", {"partial_rotary_factor": 1.5}, "rotary dimension (24) must be even and at most"),
    ("gpt_neo-causal-lm", {"attention_types": [[["global", "local"], 2]]}, "describe 4 layers, num_layers is 2"),
    ("gpt_neo-causal-lm", {"attention_types": [[["sparse"], 2]]}, "attention type 'sparse' is not supported"),
    ("opt-causal-lm", {"layer_norm_elementwise_affine": False}, "layer_norm_elementwise_affine=false"),
])
def test_bad_decoder_config(run_hfpipe_raw, tiny_models, tmp_path, model, changes, message):
    """A config.json the family cannot run is one clear error line, never a crash."""
    folder = _with_config(tiny_models / model, tmp_path / model, **changes)
    proc = run_hfpipe_raw(["logits", "--model", str(folder), "[1, 2, 3]"], env=ENV)
    assert message in H.error_line(proc)


@pytest.mark.parametrize("legacy_type", [None, "yarn"])
def test_phi3_long_prompt_logits(run_hfpipe_raw, tiny_models, tmp_path, legacy_type):
    """A prompt past original_max_position_embeddings takes longrope's long factors from the
    first forward (and Phi3Config's legacy rope_scaling type "yarn" means longrope)."""
    import torch
    folder = tiny_models / "phi3-causal-lm"
    if legacy_type:
        scaling = json.loads((folder / "config.json").read_text())["rope_scaling"]
        scaling = {"type": legacy_type, "short_factor": scaling["short_factor"],
                   "long_factor": scaling["long_factor"]}
        folder = _with_config(folder, tmp_path / "phi3", rope_scaling=scaling)
    ref = reference_model(folder)
    ids = reference_ids(folder, PROMPTS[2] + " " + PROMPTS[2])
    assert len(ids) > 40
    with torch.no_grad():
        want = ref(torch.tensor([ids])).logits[0]
    got = torch.tensor(hfpipe_logits(run_hfpipe_raw, folder, ids))
    assert (got - want).abs().max().item() <= H.ATOL
