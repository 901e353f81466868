"""GGUF weights kept block-quantised (ops/quantized.h) against the same file dequantised at load.

On CPUs with AVX2 or AVX-512 hfpipe keeps a GGUF file's Q4_0 / Q4_1 / Q5_0 / Q8_0 / Q4_K /
Q6_K weight matrices as they are stored and decodes them inside the matrix products;
HFPIPE_GGUF_DEQUANTIZE=1 makes it dequantise every tensor to f32 at load instead, as before.
Decoding token by token (up to 8 rows a product) the two must give the same bits; a prefill
(more rows) runs oneDNN over decoded slices instead of the f32 kernels over the whole matrix,
so there they agree up to float32 rounding: within PREFILL_ATOL, twice H.ATOL, as the two
orders of the sums through SmolLM2's 30 layers land ~1e-4 apart on logits up to 31 (as
transformers' own full forward and cached decoding do on this file: 9.8e-5). Both real files: SmolLM2 (Q4_1 layers, a Q8_0
embedding that is also the tied LM head) and Gemma-3-270M (Q5_0, Q8_0, Q4_K, Q6_K).
The comparisons with transformers live in test_gguf_decoder.py / test_gguf_pipeline.py and run
on the quantised path.
"""
from __future__ import annotations

import json

import pytest

import hfpipe_helpers as H

FILES = {
    "smollm2": ("SmolLM2-135M-Instruct-GGUF", "SmolLM2-135M-Instruct.Q4_1.gguf",
                [1, 504, 2365, 6354, 16438, 27003, 690, 260, 23790, 2767, 30]),
    "gemma3": ("gemma-3-270m-GGUF", "gemma-3-270m-q4_k_m.gguf",
               [2, 818, 5279, 529, 7001, 563, 9079, 236764, 532, 1041, 236764, 107]),
}


PREFILL_ATOL = 2 * H.ATOL


def has_avx2() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return " avx512f" in flags or (" avx2" in flags and " fma" in flags)


pytestmark = pytest.mark.skipif(not has_avx2(), reason="weights stay quantised on CPUs with AVX2 or AVX-512 only")


def logits(run_hfpipe_raw, path, ids, step, dequantize):
    args = ["logits", "--model", str(path), *(["--step", "1"] if step else []), json.dumps(ids)]
    proc = run_hfpipe_raw(args, env={"HFPIPE_GGUF_DEQUANTIZE": "1" if dequantize else "0"})
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    return json.loads(proc.stdout)["logits"]


@pytest.mark.parametrize("which", sorted(FILES))
def test_token_by_token_logits_are_bit_identical(run_hfpipe_raw, real_models, which):
    folder, name, ids = FILES[which]
    path = real_models / folder / name
    quantized = logits(run_hfpipe_raw, path, ids, True, False)
    dequantized = logits(run_hfpipe_raw, path, ids, True, True)
    assert len(quantized) == len(ids)
    assert quantized == dequantized


@pytest.mark.parametrize("which", sorted(FILES))
def test_prefill_logits_agree(run_hfpipe_raw, real_models, which):
    import numpy as np
    folder, name, ids = FILES[which]
    path = real_models / folder / name
    quantized = np.array(logits(run_hfpipe_raw, path, ids, False, False))
    dequantized = np.array(logits(run_hfpipe_raw, path, ids, False, True))
    assert quantized.shape == dequantized.shape == (len(ids), quantized.shape[1])
    diff = np.abs(quantized - dequantized).max()
    assert diff <= PREFILL_ATOL, f"max |logit diff| {diff:.3g}"
