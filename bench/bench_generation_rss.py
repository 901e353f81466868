#!/usr/bin/env python3
"""hfpipe's side of bench/bench_generation.py alone: peak RSS and CPU time of the driver.

usage: .venv/bin/python bench/bench_generation_rss.py [--driver build/hfpipe_bench_generation]
                                                       [--models gpt2-small,smollm2-135m]

For iterating on memory or speed: the same driver, runner (fork + wait4 ru_maxrss), environment
(one thread), fixed-seed prompts, batches (1 then 8) and 128 new tokens as bench_generation.py,
without loading transformers (which converts the GGUF slowly). Budgets (weights + KV cache of
batch 8 + 100 MB) are in docs/performance.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_encoders as B  # noqa: E402
import bench_generation as G  # noqa: E402

# model → (path maker, vocab size, eos id); the prompts avoid ids 0-2 and eos, as the bench's
# special tokens (bos / eos / pad) for these two models.
MODELS = {
    "gpt2-small": (lambda: G.ensure_gpt2_small(), 50257, 50256),
    "smollm2-135m": (lambda: G.ensure_real_gguf(G.SMOLLM_GGUF), 49152, 2),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--driver", type=Path, default=B.REPO / "build" / "hfpipe_bench_generation")
    ap.add_argument("--models", default=",".join(MODELS))
    args = ap.parse_args()
    for key in args.models.split(","):
        make, vocab, eos = MODELS[key]
        prompts = G.make_prompts(vocab, {0, 1, 2, eos}, max(G.BATCHES))
        results, rss = G.bench_hfpipe(args.driver, make(), prompts, eos, 1, 1)
        for r in results:
            step = (r["total_cpu_s"] - r["ttft_cpu_s"]) / (G.NEW_TOKENS - 1)
            print(f"{key} batch {r['batch']}: CPU {r['total_cpu_s']:.2f} s (TTFT {r['ttft_cpu_s'] * 1e3:.0f} ms, "
                  f"step {step * 1e3:.1f} ms), wall {r['total_s']:.2f} s")
        print(f"{key}: peak RSS {rss:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
