"""text-generation with pipeline(..., torch_dtype="bfloat16").

hfpipe keeps a decoder's weight matrices in bfloat16 (half the bytes a decoding step reads),
rounds every product's input rows to bfloat16 and accumulates in float32; everything between
the products (norms, attention, residuals, the KV cache) stays float32. Block-quantised GGUF
weights keep their own format: decoding multiplies their decoded values by rounded inputs, a
prefill rounds decoded slices to bf16 for oneDNN's bf16 matmul. transformers' bfloat16 keeps every activation in bfloat16, so the two are different
numbers: parity means hfpipe's bfloat16 logits are no further from the float32 reference than
transformers' own bfloat16 logits are (x1.25), and really are bfloat16 ones (not float32's).
Greedy ids are compared within hfpipe (batched vs one by one): on tiny random models the top
logits are near ties that either precision may order differently.
"""
from __future__ import annotations

import copy
import functools
import json

import pytest

import hfpipe_helpers as H
import make_tiny_models as M

TASK = "text-generation"
MODELS = M.names(task=TASK)
ENV = {"OMP_NUM_THREADS": "1"}
# ~25 tokens: more than the 8 rows the decoding kernel takes, so the prefill runs the bf16
# matrix product (oneDNN) and the token-by-token pass the decoding kernel.
PROMPT = "In 1991, the remains of Russian Tsar Nicholas II and his family (except for Alexei and Maria)"
PROMPTS = ["The quick brown fox", "Hello, my name is", PROMPT]
BF16 = {"torch_dtype": "bfloat16"}



def hfpipe_logits(run_hfpipe_raw, path, ids, dtype, step=None, threads=1):
    args = ["logits", "--model", str(path), "--dtype", dtype, *(["--step", str(step)] if step else []),
            json.dumps(ids)]
    proc = run_hfpipe_raw(args, env={"OMP_NUM_THREADS": str(threads)})
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    return json.loads(proc.stdout)["logits"]


@functools.lru_cache(maxsize=None)
def _transformers_model(folder: str, dtype: str, gguf_file: str | None = None):
    H._quiet_transformers()
    import torch
    from transformers import AutoModelForCausalLM
    kw = {"gguf_file": gguf_file} if gguf_file else {}
    return AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, dtype), **kw).eval()


def _transformers_logits(folder, ids, dtype, gguf_file=None):
    import torch
    with torch.no_grad():
        out = _transformers_model(str(folder), dtype, gguf_file)(torch.tensor([ids])).logits[0]
    return out.float()


def _check_closeness(name, ours, f32, theirs):
    import torch
    ours_error = (torch.tensor(ours) - f32).abs().max().item()
    bound = 1.25 * (theirs - f32).abs().max().item()
    assert ours_error <= bound, f"{name}: hfpipe bf16 {ours_error:.2e} from float32, bound {bound:.2e}"
    assert ours_error > 1e-4, f"{name}: bf16 logits equal float32 ones ({ours_error:.1e}): products not in bf16?"
    return ours_error


@pytest.mark.parametrize("model", MODELS)
def test_logits_as_close_as_transformers_bf16(run_hfpipe_raw, tiny_models, model):
    """Every position's logits, prefill at once (the bf16 GEMM) and token by token (the
    decoding kernel over bf16 weights), against transformers in float32 and in bfloat16."""
    folder = tiny_models / model
    ids = H.reference_tokenizer(folder)(PROMPT)["input_ids"]
    f32 = _transformers_logits(folder, ids, "float32")
    theirs = _transformers_logits(folder, ids, "bfloat16")
    prefill = hfpipe_logits(run_hfpipe_raw, folder, ids, "bfloat16")
    by_token = hfpipe_logits(run_hfpipe_raw, folder, ids, "bfloat16", step=1)
    _check_closeness(f"{model} prefill", prefill, f32, theirs)
    _check_closeness(f"{model} token by token", by_token, f32, theirs)


@pytest.mark.parametrize("model", ["gpt2-causal-lm", "llama-causal-lm", "gpt_neox-causal-lm", "opt-causal-lm"])
def test_batched_greedy_ids_equal_one_by_one(run_hfpipe, run_hfpipe_raw, tiny_models, model):
    """A left-padded batch of 3 gives each row the ids it gets alone, in bf16 as in f32."""
    folder = tiny_models / model
    params = {**BF16, "do_sample": False, "max_new_tokens": 24, "return_tensors": True}
    alone = run_hfpipe(TASK, folder, PROMPTS, params, batch_size=1, env=ENV)
    batched = run_hfpipe(TASK, folder, PROMPTS, params, batch_size=3, env=ENV)
    assert batched == alone
    f32 = run_hfpipe(TASK, folder, PROMPTS, {**params, "torch_dtype": "float32"}, batch_size=1, env=ENV)
    assert len(f32) == len(alone)


def test_dtype_spellings_and_model_kwargs(run_hfpipe, run_hfpipe_raw, tiny_models):
    """torch_dtype, dtype, the torch. prefix and model_kwargs all ask for the same bf16 model."""
    folder = tiny_models / "llama-causal-lm"
    base = {"do_sample": False, "max_new_tokens": 16, "return_tensors": True}
    want = run_hfpipe(TASK, folder, [PROMPT], {**base, **BF16}, env=ENV)
    for extra in ({"dtype": "bfloat16"}, {"torch_dtype": "torch.bfloat16"},
                  {"model_kwargs": {"torch_dtype": "bfloat16"}}):
        assert run_hfpipe(TASK, folder, [PROMPT], {**base, **extra}, env=ENV) == want, extra


def test_bf16_streams_the_same_text(run_hfpipe, run_hfpipe_raw, tiny_models):
    """--stream in bf16 prints exactly the new text of the non-streamed bf16 result."""
    folder = tiny_models / "gpt2-causal-lm"
    params = {**BF16, "do_sample": False, "max_new_tokens": 16, "return_full_text": False}
    want = run_hfpipe(TASK, folder, [PROMPT], params, env=ENV)
    proc = run_hfpipe_raw(H.hfpipe_command("x", TASK, folder, [PROMPT], params, jsonl=False,
                                           extra=["--stream"])[1:], env=ENV)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode("utf-8") == want[0][0]["generated_text"] + "\n"


SMOLLM2 = ("SmolLM2-135M-Instruct-GGUF", "SmolLM2-135M-Instruct.Q4_1.gguf",
           [1, 504, 2365, 6354, 16438, 27003, 690, 260, 23790, 2767, 30, 1205, 1303, 253, 1345, 282])


def test_real_gguf_logits_as_close_as_transformers_bf16(run_hfpipe_raw, real_models):
    """SmolLM2-135M's Q4_1 file in bf16 (Q4_1 weights kept, inputs rounded; the Q8_0 tied head
    too): logits no further from transformers' float32 ones than transformers' bfloat16 are."""
    pytest.importorskip("gguf")
    folder, name, ids = SMOLLM2
    path = real_models / folder / name
    if not path.exists():
        pytest.skip(f"{path} is not assembled (scripts/assemble_real_models.py)")
    f32 = _transformers_logits(path.parent, ids, "float32", name)
    theirs = _transformers_logits(path.parent, ids, "bfloat16", name)
    ours = hfpipe_logits(run_hfpipe_raw, path, ids, "bfloat16")
    _check_closeness("SmolLM2 Q4_1", ours, f32, theirs)
    # Two threads split the decoding of weight slices and the products: the same logits.
    two = hfpipe_logits(run_hfpipe_raw, path, ids, "bfloat16", threads=2)
    assert max(abs(a - b) for ra, rb in zip(ours, two) for a, b in zip(ra, rb)) <= 1e-5
    # The greedy choice at every position agrees with float32's where transformers' bf16 does.
    import torch
    ours_top, f32_top, theirs_top = torch.tensor(ours).argmax(-1), f32.argmax(-1), theirs.argmax(-1)
    assert (ours_top == f32_top).sum() >= (theirs_top == f32_top).sum()


@pytest.mark.parametrize("task", ["text2text-generation", "summarization", "translation"])
def test_seq2seq_tasks_still_refuse_bf16(run_hfpipe_raw, tiny_models, task):
    proc = run_hfpipe_raw([task, "--model", str(tiny_models / "t5-seq2seq"), "--param", 'torch_dtype="bfloat16"',
                           "hello"])
    assert proc.returncode != 0
    assert b"torch_dtype bfloat16 is supported by text-generation and the encoder tasks" in proc.stderr


def _bf16_checkpoint_pair(tiny_models, model, tmp_path):
    """Two copies of a tiny model with bfloat16-representable weights: one saved in bfloat16,
    one in float32 (the same values widened), with the tokenizer files."""
    import shutil
    import torch
    from transformers import AutoModelForCausalLM
    folder = tiny_models / model
    bf16 = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16)
    pair = {}
    for dtype in ("bfloat16", "float32"):
        out = tmp_path / dtype
        (bf16 if dtype == "bfloat16" else copy.deepcopy(bf16).float()).save_pretrained(out)
        for f in folder.iterdir():
            if f.name not in ("config.json", "model.safetensors", "generation_config.json"):
                shutil.copy(f, out / f.name)
        pair[dtype] = out
    return pair


@pytest.mark.parametrize("model", ["llama-causal-lm", "gpt2-causal-lm", "gpt_neox-causal-lm", "phi3-causal-lm"])
def test_bf16_checkpoint_stays_bf16(run_hfpipe_raw, tiny_models, tmp_path, model):
    """A checkpoint saved in bfloat16, run in bfloat16: its matrices stay as stored (zero-copy,
    not widened to f32 and rounded back) and give exactly the logits of the same values saved in
    float32 — llama's tied embedding table, GPT-2's wte read as floats, GPT-NeoX's and Phi-3's
    fused projections split at load included. In float32 the bf16 file still matches
    transformers within 1e-4."""
    pair = _bf16_checkpoint_pair(tiny_models, model, tmp_path)
    ids = H.reference_tokenizer(tiny_models / model)(PROMPT)["input_ids"]
    for step in (None, 1):
        from_bf16 = hfpipe_logits(run_hfpipe_raw, pair["bfloat16"], ids, "bfloat16", step)
        from_f32 = hfpipe_logits(run_hfpipe_raw, pair["float32"], ids, "bfloat16", step)
        assert from_bf16 == from_f32, f"{model} step={step}"
    import torch
    want = _transformers_logits(pair["float32"], ids, "float32")
    got = torch.tensor(hfpipe_logits(run_hfpipe_raw, pair["bfloat16"], ids, "float32"))
    assert (got - want).abs().max().item() <= H.ATOL
