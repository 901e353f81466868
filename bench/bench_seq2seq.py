#!/usr/bin/env python3
"""hfpipe vs transformers on encoder-decoder generation (issue 6), in one invocation, on this machine.

usage: .venv/bin/python bench/bench_seq2seq.py [--threads 1,2] [--quick] [--hfpipe build/hfpipe]
                                                [--json results.json]

Workloads: text2text-generation with 4 beams and exactly 64 new tokens per input
(min_new_tokens = max_new_tokens = 64, so both sides generate the same count whatever the
random weights prefer), on ~48-token inputs, at batch 1 and 8, in generated tokens/s
(items/s x 64; the returned sequence's tokens, not the beams' candidates). Models with random
weights and a fixed seed, made by this script into build/bench-models/ with transformers' classes:
- t5-small shape (6+6 layers, d_model 512, d_ff 2048, 8 heads, ReLU, tied head), t5-small's tokenizer
- distilbart-cnn-6-6 shape (6+6 layers, d_model 1024, ffn 4096, 16 heads), roberta-base's tokenizer

Measured as bench_encoders.py measures (its runners are reused, the call's keyword arguments
passed to both sides): hfpipe's CLI with --jsonl, throughput = (N-1) / (t_N - t_1) so start-up
and loading cancel out; transformers' pipeline in a warm worker process with
torch.set_num_threads equal to hfpipe's --threads; best of R runs. Prints a markdown table on
stdout. Not part of the pytest run.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_encoders as B  # noqa: E402

GOAL = 2.0
NEW_TOKENS = 64
KWARGS = {"num_beams": 4, "min_new_tokens": NEW_TOKENS, "max_new_tokens": NEW_TOKENS}


def ensure_model(kind: str) -> Path:
    """build/bench-models/<kind>-shape: random weights, fixed seed, a real tokenizer."""
    folder = B.BENCH_MODELS / f"{kind}-shape"
    want = f"seed={B.SEED};{kind};v1"
    if B.bench_model_ready(folder, want):
        return folder
    import torch
    import transformers as tf
    torch.manual_seed(B.SEED)
    if kind == "t5-small":
        cfg = tf.T5Config(vocab_size=32128, d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_decoder_layers=6,
                          num_heads=8, feed_forward_proj="relu", tie_word_embeddings=True,
                          decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
        model, tokenizer = tf.T5ForConditionalGeneration(cfg), "t5-small"
    else:
        cfg = tf.BartConfig(vocab_size=50265, d_model=1024, encoder_layers=6, decoder_layers=6,
                            encoder_attention_heads=16, decoder_attention_heads=16, encoder_ffn_dim=4096,
                            decoder_ffn_dim=4096, max_position_embeddings=1024)
        model, tokenizer = tf.BartForConditionalGeneration(cfg), "roberta-base"
    return B.save_bench_model(model, folder, tokenizer, want)


def main() -> int:
    args = B.bench_args(__doc__, "bench_seq2seq.py")
    if args is None:
        return 2
    # N = 1 + a multiple of the batch: (N-1) / (t_N - t_1) then times whole batches only.
    n1, n8, repeats = (2, 9, 1) if args.quick else (5, 17, 3)

    def measure(rows):
        for kind in ("t5-small", "distilbart-6-6"):
            folder = ensure_model(kind)
            inputs = B.make_inputs(folder, 48, max(n1, n8))
            for row in B.compare_batches(args, kind, "text2text-generation", folder, inputs, [(1, n1), (8, n8)],
                                         KWARGS, repeats):
                rows.append({"model": f"{kind} shape", **row, "hfpipe": row["hfpipe"] * NEW_TOKENS,
                             "transformers": row["transformers"] * NEW_TOKENS})
            if args.json:
                args.json.write_text(json.dumps(rows, indent=1))

    def report(rows):
        return B.ratio_report("Seq2seq generation: hfpipe vs transformers", args,
                              f"{n1} items at batch 1, {n8} at batch 8, best of {repeats}; ~48-token inputs, "
                              f"4 beams, {NEW_TOKENS} new tokens",
                              [("model", "model"), ("threads", "threads"), ("batch", "batch")],
                              rows, "tokens/s", GOAL, digits=1)

    return B.run_and_report(args, measure, report)


if __name__ == "__main__":
    sys.exit(main())
