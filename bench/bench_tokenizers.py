#!/usr/bin/env python3
"""Tokenizer encode throughput: hfpipe's engine vs the `tokenizers` package, on the parity corpus.

usage: .venv/bin/python bench/bench_tokenizers.py [--repeats 3] [--bin build/hfpipe_bench_tokenizers]

For each tokenizer (bert-base-uncased, gpt2, llama2 from its sentencepiece .model, t5-small,
whisper-tiny) both sides load the same folder the way they would in use (hfpipe
Tokenizer::from_folder; transformers AutoTokenizer -> backend_tokenizer) and encode every line of
tests/python/tokenizer_corpus.txt:
- one thread: encode() line by line (tokenizers: Tokenizer.encode in a loop, RAYON_NUM_THREADS=1);
- batch: hfpipe encode_batch over OpenMP threads, tokenizers encode_batch over rayon threads
  (both use every core this process may use).
MB/s = corpus bytes / best time of --repeats runs. Prints a markdown table; ratio > 1 = hfpipe faster.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "tokenizers"
CORPUS = REPO / "tests" / "python" / "tokenizer_corpus.txt"
FOLDERS = ["bert-base-uncased", "gpt2", "llama2-spm", "t5-small", "whisper-tiny"]

REFERENCE = r"""
import json, sys, time
from transformers import AutoTokenizer
folder, corpus, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
t0 = time.perf_counter()
tok = AutoTokenizer.from_pretrained(folder).backend_tokenizer
load = time.perf_counter() - t0
lines = open(corpus, encoding="utf-8").read().split("\n")
if lines and lines[-1] == "":
    lines.pop()
size = sum(len(l.encode("utf-8")) for l in lines)
single = batch = 1e30
for _ in range(repeats):
    a = time.perf_counter()
    for l in lines:
        tok.encode(l)
    single = min(single, time.perf_counter() - a)
    b = time.perf_counter()
    tok.encode_batch(lines)
    batch = min(batch, time.perf_counter() - b)
print(json.dumps({"load_s": load, "single_mb_s": size / single / 1e6, "batch_mb_s": size / batch / 1e6}))
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--bin", default=str(REPO / "build" / "hfpipe_bench_tokenizers"))
    args = ap.parse_args()
    rows = []
    for name in FOLDERS:
        folder = SHARED / name
        mine = json.loads(subprocess.run([args.bin, str(folder), str(CORPUS), str(args.repeats)], check=True,
                                         capture_output=True, text=True).stdout)
        env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="true")
        ref = json.loads(subprocess.run([sys.executable, "-c", REFERENCE, str(folder), str(CORPUS), str(args.repeats)],
                                        check=True, capture_output=True, text=True, env=env).stdout.strip().split("\n")[-1])
        rows.append((name, mine, ref))
        print(f"{name}: hfpipe {mine} tokenizers {ref}", file=sys.stderr)
    print("| tokenizer | load ms hfpipe / transformers | 1 thread MB/s hfpipe / tokenizers (ratio) "
          "| batch MB/s hfpipe / tokenizers (ratio) |")
    print("|---|---|---|---|")
    for name, m, r in rows:
        print(f"| {name} | {m['load_s'] * 1e3:.0f} / {r['load_s'] * 1e3:.0f} | {m['single_mb_s']:.2f} / "
              f"{r['single_mb_s']:.2f} ({m['single_mb_s'] / r['single_mb_s']:.2f}x) | {m['batch_mb_s']:.2f} / "
              f"{r['batch_mb_s']:.2f} ({m['batch_mb_s'] / r['batch_mb_s']:.2f}x) |")


if __name__ == "__main__":
    main()
