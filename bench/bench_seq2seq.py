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

import argparse
import json
import os
import shutil
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
    stamp = folder / ".stamp"
    want = f"seed={B.SEED};{kind};v1"
    if stamp.is_file() and stamp.read_text() == want:
        return folder
    B.log(f"making {folder} ...")
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
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.eval().save_pretrained(tmp)
    for p in (B.SHARED_TOKENIZERS / tokenizer).iterdir():
        if p.is_file() and p.name != "SOURCE.txt":
            shutil.copyfile(p, tmp / p.name)
    (tmp / ".stamp").write_text(want)
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return folder


def bench_hfpipe(binary, folder, inputs, batch, threads, repeats) -> float:
    """items/s of the CLI, with the call's keyword arguments as --param."""
    params = [a for k, v in KWARGS.items() for a in ("--param", f"{k}={json.dumps(v)}")]
    return B.bench_hfpipe(binary, "text2text-generation", folder, inputs, batch, threads, repeats,
                          params)["items_per_s"]


def report(rows, args, n1, n8, repeats) -> str:
    out = ["## Seq2seq generation: hfpipe vs transformers\n",
           f"Machine: {B.machine_info()}.  ",
           f"Command: `.venv/bin/python bench/bench_seq2seq.py --threads "
           f"{','.join(map(str, args.threads))}{' --quick' if args.quick else ''}` "
           f"({n1} items at batch 1, {n8} at batch 8, best of {repeats}; ~48-token inputs, "
           f"4 beams, {NEW_TOKENS} new tokens).\n",
           "| model | threads | batch | hfpipe tokens/s | transformers tokens/s | ratio | goal >= 2x |",
           "|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        ratio = r["hfpipe"] / r["transformers"]
        out.append(f"| {r['model']} | {r['threads']} | {r['batch']} | {r['hfpipe']:.1f} | "
                   f"{r['transformers']:.1f} | {ratio:.2f}x | {B.mark(ratio >= GOAL)} |")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hfpipe", type=Path, default=Path(os.environ.get("HFPIPE_BIN", B.REPO / "build" / "hfpipe")))
    ap.add_argument("--threads", default="1", help="comma-separated thread counts (default: 1)")
    ap.add_argument("--quick", action="store_true", help="fewer items and repeats (a smoke run)")
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    args = ap.parse_args()
    args.threads = [int(t) for t in str(args.threads).split(",") if t]
    if not args.hfpipe.is_file():
        print(f"bench_seq2seq: hfpipe not found at {args.hfpipe}", file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # N = 1 + a multiple of the batch: (N-1) / (t_N - t_1) then times whole batches only.
    n1, n8, repeats = (2, 9, 1) if args.quick else (5, 17, 3)
    rows = []
    try:
        for kind in ("t5-small", "distilbart-6-6"):
            folder = ensure_model(kind)
            inputs = B.make_inputs(folder, 48, max(n1, n8))
            for t in args.threads:
                configs = [{"batch": 1, "inputs": inputs[:n1]}, {"batch": 8, "inputs": inputs[:n8]}]
                B.log(f"[{kind}, {t} thread(s)] transformers ...")
                tf_res, _ = B.bench_transformers("text2text-generation", folder, configs, t, repeats, KWARGS)
                for cfg, tf in zip(configs, tf_res):
                    B.log(f"[{kind}, {t} thread(s)] hfpipe batch {cfg['batch']} ...")
                    hf = bench_hfpipe(args.hfpipe, folder, cfg["inputs"], cfg["batch"], t, repeats)
                    rows.append({"model": f"{kind} shape", "threads": t, "batch": cfg["batch"],
                                 "hfpipe": hf * NEW_TOKENS, "transformers": tf["items_per_s"] * NEW_TOKENS})
                if args.json:
                    args.json.write_text(json.dumps(rows, indent=1))
    except KeyboardInterrupt:
        B.log("interrupted: reporting what was measured so far")
    print(report(rows, args, n1, n8, repeats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
