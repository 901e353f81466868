#!/usr/bin/env python3
"""hfpipe vs transformers, onnxruntime and CTranslate2, one thread each, in one invocation.

usage: .venv/bin/python bench/bench_competitors.py [--quick] [--threads 1] [--skip-generation]
                                                    [--hfpipe build/hfpipe]
                                                    [--driver build/hfpipe_bench_generation]
                                                    [--json results.json]

Encoders (the main part): the workloads of bench_encoders.py, the same model folders and the
same inputs (bench_encoders.make_inputs):
- all-MiniLM-L6-v2 feature-extraction (token embeddings = the last hidden state), models/;
- the BERT-base-shaped classifier with random weights (build/bench-models/bert-base-cls2, made
  by bench_encoders.ensure_bench_model), text-classification (softmax over its 2 labels);
each on ~16- and ~128-token inputs at batch 1 and 32, in items/s, on four engines:
- hfpipe: the CLI with --jsonl over N inputs and over 1 input, throughput = (N-1) / (t_N - t_1)
  (start-up and loading cancel out), as bench_encoders does. Its work includes its own
  tokenizer and writing each result as a JSON line.
- transformers (float32): pipeline(task, model=folder) in a warm worker process,
  pipe(inputs, batch_size=B) timed (its fast tokenizer; results converted to Python lists).
- onnxruntime (float32): the model exported from the same folder to ONNX by
  torch.onnx.export (the TorchScript exporter, dynamo=False; eager attention; opset 17; batch
  and sequence dynamic), into build/bench-models/competitors/onnx/; an InferenceSession with
  ORT_ENABLE_ALL, intra_op_num_threads = inter_op_num_threads = 1, sequential execution.
- CTranslate2 (float32): ctranslate2.converters.TransformersConverter on the same folder, into
  build/bench-models/competitors/ct2/; ctranslate2.Encoder(intra_threads=1, inter_threads=1)
  .forward_batch. Its converter takes BertConfig folders as BertModel only (the encoder and
  its pooler; no classifier head), so for the classifier the head (classifier.weight/bias
  read from the folder's model.safetensors) and the softmax run in numpy on its pooler output.
For onnxruntime and CTranslate2 the pipeline-equivalent work is timed in Python: tokenization
with the `tokenizers` library on the folder's tokenizer.json (padding to the longest of the
batch for onnxruntime, no padding for CTranslate2, which takes ragged id lists; no truncation,
as the pipeline), the forward pass, then per item the unpadded rows of the last hidden state
(feature-extraction, kept as numpy arrays) or the softmax, top label and score (classifier).
Every engine runs in its own process, warmed up on the first batch (or 2 items at batch 1),
best of R runs, one thread (OMP_NUM_THREADS=1, torch.set_num_threads(1)). Each figure is taken
in wall-clock time and in CPU time (process_time in the Python workers; for hfpipe the
RUSAGE_CHILDREN user+system time of each CLI run, again as (N-1) / (cpu_N - cpu_1)): on a
loaded machine only the CPU-time figures mean much.

Agreement: 8 inputs (4 of ~16 and 4 of ~128 tokens, one padded batch) through each engine's
timed code path, compared with transformers' model run directly in this process: the max abs
difference of the last hidden state (feature-extraction, unpadded rows) or of the logits and
the probabilities (classifier; hfpipe gives probabilities only, with top_k=None).

Generation (second part; --skip-generation leaves it out): greedy decoding of exactly 128 new
tokens after a 64-token prompt at batch 1 and 8 on bench_generation.py's GPT-2-small-shaped
random model (build/bench-models/gpt2-small-shape) and its prompts: hfpipe's driver
build/hfpipe_bench_generation and transformers' model.generate as bench_generation.py runs
them, and a CTranslate2 Generator (converted from the same folder, float32, intra_threads=1,
inter_threads=1; generate_batch with include_prompt_in_result=False, max_length = min_length =
128, prompts given as the vocabulary's token strings; the time to first token taken by the
per-token callback). tokens/s = batch x 128 / total time; the new ids are compared with
transformers'. onnxruntime is not measured for generation: an ONNX export of GPT-2 with a
key/value cache (past_key_values as inputs and outputs) and a greedy loop around it would be a
generation engine of its own written here, not onnxruntime's.

Prints progress on stderr and markdown tables on stdout. Not part of the pytest run.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_encoders as B  # noqa: E402

COMPETITORS = B.BENCH_MODELS / "competitors"
ENGINES = ("hfpipe", "transformers", "onnxruntime", "ctranslate2")
TITLES = {"hfpipe": "hfpipe", "transformers": "transformers", "onnxruntime": "onnxruntime",
          "ctranslate2": "CTranslate2"}
STAMP_VERSION = "v1"


log = B.log


def versions() -> str:
    import importlib.metadata as md
    out = []
    for p in ("onnxruntime", "onnx", "ctranslate2", "tokenizers"):
        try:
            out.append(f"{p} {md.version(p)}")
        except md.PackageNotFoundError:
            out.append(f"{p} missing")
    return ", ".join(out)


# ------------------------------------------------------------------ conversions

def source_stamp(folder: Path, extra: str) -> str:
    """What a converted model was made from: the weights' size and mtime, and how."""
    w = folder / "model.safetensors"
    st = w.stat()
    return f"{w}:{st.st_size}:{int(st.st_mtime)};{extra};{STAMP_VERSION}"


def ensure_onnx(name: str, folder: Path, kind: str) -> Path:
    """build/bench-models/competitors/onnx/<name>/model.onnx, exported from `folder`
    (kind "features": the last hidden state; "classifier": the logits)."""
    import torch
    out = COMPETITORS / "onnx" / name
    want = source_stamp(folder, f"onnx;{kind};torch {torch.__version__};opset 17;eager")
    if (out / ".stamp").is_file() and (out / ".stamp").read_text() == want:
        return out / "model.onnx"
    log(f"exporting {folder} to ONNX in {out} ...")
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer
    cls = AutoModel if kind == "features" else AutoModelForSequenceClassification
    model = cls.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()

    class Head(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            o = self.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return o.last_hidden_state if kind == "features" else o.logits

    tok = AutoTokenizer.from_pretrained(folder)
    enc = tok(["a short one.", "a somewhat longer example sentence for the export."], padding=True,
              return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    output = "last_hidden_state" if kind == "features" else "logits"
    tmp = out.with_name(out.name + ".tmp")
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with torch.no_grad():
        torch.onnx.export(Head(model), tuple(enc[n] for n in names), str(tmp / "model.onnx"),
                          input_names=names, output_names=[output], opset_version=17, dynamo=False,
                          dynamic_axes={n: {0: "batch", 1: "sequence"} for n in names + [output]})
    (tmp / ".stamp").write_text(want)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out / "model.onnx"


def ensure_ct2(name: str, folder: Path) -> Path:
    """build/bench-models/competitors/ct2/<name>: TransformersConverter's float32 model."""
    import ctranslate2
    out = COMPETITORS / "ct2" / name
    want = source_stamp(folder, f"ct2 {ctranslate2.__version__};float32")
    if (out / ".stamp").is_file() and (out / ".stamp").read_text() == want:
        return out
    log(f"converting {folder} with CTranslate2 into {out} ...")
    import shutil
    from ctranslate2.converters import TransformersConverter
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    TransformersConverter(str(folder)).convert(str(tmp), quantization="float32", force=True)
    (tmp / ".stamp").write_text(want)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


# ------------------------------------------------------------------ Python-side engines

# One worker process per engine: loads it, then for each configuration a warm-up and R timed
# runs over the inputs in batches; prints [{"items_per_s", "items_per_cpu_s"}] as its last line.
# With spec["check_out"], it first runs the check inputs as one batch through the same code and
# saves each item's output (features: unpadded hidden rows; classifier: logits) to that .npz.
WORKER = r"""
import json, sys, time
spec = json.loads(sys.stdin.read())
import numpy as np
engine, kind, threads = spec["engine"], spec["kind"], spec["threads"]

def softmax_top(logits):
    z = logits - logits.max(axis=-1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=-1, keepdims=True)
    best = p.argmax(axis=-1)
    return [(int(b), float(p[i, b])) for i, b in enumerate(best)]

if engine == "transformers":
    import torch
    torch.set_num_threads(threads)
    import transformers
    transformers.logging.set_verbosity_error()
    from transformers import pipeline
    pipe = pipeline("feature-extraction" if kind == "features" else "text-classification",
                    model=spec["folder"], device="cpu", dtype=torch.float32)
    def run(texts, batch):
        res = pipe(texts, batch_size=batch)
        assert len(res) == len(texts)
        return res
else:
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(spec["tokenizer"])
    tok.no_truncation()          # as the pipeline (tokenizer.json may carry its own settings)
    tok.no_padding()
    if engine == "onnxruntime":
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(spec["onnx"], so, providers=["CPUExecutionProvider"])
        tok.enable_padding(pad_id=spec["pad_id"], pad_token=spec["pad_token"])
        feeds_names = [i.name for i in sess.get_inputs()]
        def forward(texts):
            encs = tok.encode_batch(texts)
            arrays = {"input_ids": np.array([e.ids for e in encs], dtype=np.int64),
                      "attention_mask": np.array([e.attention_mask for e in encs], dtype=np.int64),
                      "token_type_ids": np.array([e.type_ids for e in encs], dtype=np.int64)}
            out = sess.run(None, {n: arrays[n] for n in feeds_names})[0]
            return out, arrays["attention_mask"].sum(axis=1)
    elif engine == "ctranslate2":
        import ctranslate2
        enc = ctranslate2.Encoder(spec["ct2"], device="cpu", compute_type="float32",
                                  intra_threads=threads, inter_threads=1)
        if kind == "classifier":
            from safetensors import safe_open
            with safe_open(spec["weights"], "np") as f:
                W = f.get_tensor("classifier.weight").astype(np.float32)
                b = f.get_tensor("classifier.bias").astype(np.float32)
        def forward(texts):
            ids = [e.ids for e in tok.encode_batch(texts)]
            o = enc.forward_batch(ids)
            if kind == "features":
                out = np.asarray(o.last_hidden_state)
            else:
                out = np.asarray(o.pooler_output) @ W.T + b
            return out, np.array([len(x) for x in ids])
    else:
        raise SystemExit(f"unknown engine {engine}")
    def run(texts, batch):
        res = []
        for s in range(0, len(texts), batch):
            out, lengths = forward(texts[s:s + batch])
            if kind == "features":
                res += [out[i, :n] for i, n in enumerate(lengths)]
            else:
                res += softmax_top(out)
        assert len(res) == len(texts)
        return res

if spec.get("check_out") and engine != "transformers":
    texts = spec["check_inputs"]
    out, lengths = forward(texts)
    items = [out[i, :n] for i, n in enumerate(lengths)] if kind == "features" else list(out)
    np.savez(spec["check_out"], *items)

results = []
for cfg in spec["configs"]:
    texts, batch = cfg["inputs"], cfg["batch"]
    run(texts[: max(batch, 2)], batch)                 # warm-up
    best_w = best_c = None
    for _ in range(spec["repeats"]):
        w0, c0 = time.perf_counter(), time.process_time()
        run(texts, batch)
        w, c = time.perf_counter() - w0, time.process_time() - c0
        best_w = w if best_w is None else min(best_w, w)
        best_c = c if best_c is None else min(best_c, c)
    results.append({"items_per_s": len(texts) / best_w, "items_per_cpu_s": len(texts) / best_c})
print(json.dumps(results), flush=True)
"""


def bench_python_engine(engine: str, spec: dict, threads: int) -> list[dict]:
    spec = dict(spec, engine=engine, threads=threads)
    r = B.run_measured([sys.executable, "-c", WORKER], json.dumps(spec), B.child_env(threads), rss=False)
    if r["rc"] != 0:
        raise RuntimeError(f"{engine} worker failed: {r['stderr'][-3000:]}")
    return json.loads(r["last"])


# ------------------------------------------------------------------ hfpipe

def hfpipe_outputs(binary, task, folder, inputs, threads) -> list:
    """hfpipe's parsed results for `inputs` in one batch (classifier: every label's score)."""
    import subprocess
    extra = ["--param", "top_k=null"] if task == "text-classification" else []
    stdin = "".join(json.dumps(x) + "\n" for x in inputs)
    p = subprocess.run(B.hfpipe_cmd(binary, task, folder, len(inputs), threads, extra), input=stdin,
                       capture_output=True, text=True, env=B.child_env(threads))
    if p.returncode != 0:
        raise RuntimeError(f"hfpipe failed: {p.stderr[-500:]}")
    return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


# ------------------------------------------------------------------ agreement

def reference(folder: Path, kind: str, texts: list[str]):
    """transformers' outputs for `texts` as one padded batch: per item the unpadded last hidden
    state (features) or the logits (classifier)."""
    import torch
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer
    cls = AutoModel if kind == "features" else AutoModelForSequenceClassification
    model = cls.from_pretrained(folder, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(folder)
    enc = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**enc)
    lengths = enc["attention_mask"].sum(dim=1).tolist()
    if kind == "features":
        return [out.last_hidden_state[i, :n].numpy() for i, n in enumerate(lengths)]
    return [row.numpy() for row in out.logits]


def softmax(x):
    import numpy as np
    z = np.exp(x - x.max())
    return z / z.sum()


def max_diff(ref: list, got: list) -> float | str:
    import numpy as np
    if len(ref) != len(got):
        return f"{len(got)} items, expected {len(ref)}"
    worst = 0.0
    for a, b in zip(ref, got):
        b = np.asarray(b, dtype=np.float32)
        if a.shape != b.shape:
            return f"shape {b.shape} vs {a.shape}"
        worst = max(worst, float(np.abs(a - b).max()))
    return worst


def check_agreement(name, kind, folder, task, texts, npz: dict, args) -> list[dict]:
    """Rows {model, engine, compared, max_abs_diff} against transformers' reference."""
    import numpy as np
    ref = reference(folder, kind, texts)
    rows = []
    what = "last hidden state" if kind == "features" else "logits"
    for engine, path in npz.items():
        if path is None or not Path(path).is_file():
            rows.append({"model": name, "engine": engine, "compared": what, "max_abs_diff": "no output"})
            continue
        with np.load(path) as f:
            got = [f[f"arr_{i}"] for i in range(len(f.files))]
        rows.append({"model": name, "engine": engine, "compared": what, "max_abs_diff": max_diff(ref, got)})
        if kind == "classifier":
            rows.append({"model": name, "engine": engine, "compared": "probabilities",
                         "max_abs_diff": max_diff([softmax(r) for r in ref], [softmax(g) for g in got])})
    try:
        out = hfpipe_outputs(args.hfpipe, task, folder, texts, args.threads)
        if kind == "features":
            got = [np.asarray(o, dtype=np.float32).reshape(-1, ref[0].shape[-1]) for o in out]
            rows.append({"model": name, "engine": "hfpipe", "compared": what, "max_abs_diff": max_diff(ref, got)})
        else:
            cfg = json.loads((folder / "config.json").read_text())
            label2id = cfg["label2id"]
            got = []
            for o in out:
                p = np.zeros(len(label2id), dtype=np.float32)
                for d in (o if isinstance(o, list) else [o]):
                    p[int(label2id[d["label"]])] = d["score"]
                got.append(p)
            rows.append({"model": name, "engine": "hfpipe", "compared": "probabilities (top_k=None)",
                         "max_abs_diff": max_diff([softmax(r) for r in ref], got)})
    except Exception as e:  # noqa: BLE001 - the check reports, it does not stop the benchmark
        rows.append({"model": name, "engine": "hfpipe", "compared": what, "max_abs_diff": f"failed: {e}"[:200]})
    return rows


# ------------------------------------------------------------------ the encoder benchmark

def run_encoders(args, n_items, repeats, results) -> None:
    from transformers import AutoTokenizer
    models = [("all-MiniLM-L6-v2", "feature-extraction", "features", B.ensure_real_model()),
              ("BERT-base classifier (random)", "text-classification", "classifier", B.ensure_bench_model())]
    for name, task, kind, folder in models:
        short = folder.name
        onnx_path = ensure_onnx(short, folder, kind)
        ct2_path = ensure_ct2(short, folder)
        tok = AutoTokenizer.from_pretrained(folder)
        inputs = {tokens: B.make_inputs(folder, tokens, max(n_items[tokens])) for tokens in (16, 128)}
        configs = [{"tokens": tokens, "batch": batch, "inputs": inputs[tokens][:n]}
                   for tokens in (16, 128) for batch, n in zip((1, 32), n_items[tokens])]
        check_inputs = inputs[16][:4] + inputs[128][:4]
        spec = {"kind": kind, "folder": str(folder), "tokenizer": str(folder / "tokenizer.json"),
                "onnx": str(onnx_path), "ct2": str(ct2_path), "weights": str(folder / "model.safetensors"),
                "pad_id": tok.pad_token_id, "pad_token": tok.pad_token, "repeats": repeats,
                "configs": [{"batch": c["batch"], "inputs": c["inputs"]} for c in configs],
                "check_inputs": check_inputs}
        measured = {}
        npz = {}
        with tempfile.TemporaryDirectory(prefix="bench-competitors-") as tmp:
            for engine in ("transformers", "onnxruntime", "ctranslate2"):
                log(f"[{name}] {engine} ...")
                out = str(Path(tmp) / f"{engine}.npz") if engine != "transformers" else None
                try:
                    measured[engine] = bench_python_engine(engine, dict(spec, check_out=out), args.threads)
                except RuntimeError as e:
                    log(str(e))
                    results["failures"].append(f"{name}, {engine}: {str(e).splitlines()[-1][:300]}")
                    measured[engine] = [None] * len(configs)
                if out:
                    npz[engine] = out
            log(f"[{name}] agreement ...")
            results["agreement"] += check_agreement(name, kind, folder, task, check_inputs, npz, args)
        hf = []
        for cfg in configs:
            log(f"[{name}] hfpipe ~{cfg['tokens']} tokens, batch {cfg['batch']} ...")
            hf.append(B.bench_hfpipe(args.hfpipe, task, folder, cfg["inputs"], cfg["batch"], args.threads, repeats))
        for i, cfg in enumerate(configs):
            row = {"model": name, "tokens": cfg["tokens"], "batch": cfg["batch"], "items": len(cfg["inputs"]),
                   "hfpipe": hf[i]}
            for engine in ("transformers", "onnxruntime", "ctranslate2"):
                row[engine] = measured[engine][i]
            results["encoders"].append(row)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))


# ------------------------------------------------------------------ generation

CT2_GEN_WORKER = r"""
import json, sys, time
spec = json.loads(sys.stdin.read())
import ctranslate2
gen = ctranslate2.Generator(spec["ct2"], device="cpu", compute_type="float32",
                            intra_threads=spec["threads"], inter_threads=1)
vocab = json.load(open(spec["vocabulary"]))
out = []
for batch in spec["batches"]:
    prompts = [[vocab[i] for i in p] for p in spec["prompts"][:batch]]
    kw = dict(beam_size=1, sampling_topk=1, include_prompt_in_result=False, end_token=[spec["eos"]])
    gen.generate_batch(prompts, max_length=4, min_length=4, **kw)                 # warm-up
    best = {}
    for _ in range(spec["repeats"]):
        first = {}
        def callback(step, t0=None):
            if "w" not in first:
                first["w"], first["c"] = time.perf_counter(), time.process_time()
            return False
        w0, c0 = time.perf_counter(), time.process_time()
        res = gen.generate_batch(prompts, max_length=spec["new_tokens"], min_length=spec["new_tokens"],
                                 callback=callback, **kw)
        w, c = time.perf_counter(), time.process_time()
        run = {"ttft_s": first["w"] - w0, "total_s": w - w0, "ttft_cpu_s": first["c"] - c0,
               "total_cpu_s": c - c0}
        best = {k: min(v, best.get(k, v)) for k, v in run.items()}
    out.append({"batch": batch, **best, "ids": [r.sequences_ids[0] for r in res]})
print(json.dumps(out), flush=True)
"""


def run_generation(args, repeats, results) -> None:
    import bench_generation as G
    folder = G.ensure_gpt2_small()
    ct2 = ensure_ct2("gpt2-small-shape", folder)
    vocab_file = ct2 / "vocabulary.json"
    if not vocab_file.is_file():
        raise RuntimeError(f"{vocab_file} missing: the converter wrote {sorted(p.name for p in ct2.iterdir())}")
    facts = G.model_facts(folder, None)
    prompts = G.make_prompts(facts["vocab"], facts["special"], max(G.BATCHES))
    eos, t = facts["eos"], args.threads
    log("[GPT-2 small shape] transformers ...")
    tf, _ = G.bench_transformers(folder, None, prompts, eos, t, repeats)
    log("[GPT-2 small shape] CTranslate2 ...")
    spec = {"ct2": str(ct2), "vocabulary": str(vocab_file), "prompts": prompts, "eos": eos, "threads": t,
            "repeats": repeats, "batches": list(G.BATCHES), "new_tokens": G.NEW_TOKENS}
    r = B.run_measured([sys.executable, "-c", CT2_GEN_WORKER], json.dumps(spec), B.child_env(t), rss=False)
    if r["rc"] != 0:
        raise RuntimeError(f"CTranslate2 generation worker failed: {r['stderr'][-3000:]}")
    ct = json.loads(r["last"])
    hf = None
    if args.driver.is_file():
        log("[GPT-2 small shape] hfpipe ...")
        hf, _ = G.bench_hfpipe(args.driver, folder, prompts, eos, t, repeats)
    else:
        results["failures"].append(f"generation: hfpipe driver {args.driver} not found")
    for i, batch in enumerate(G.BATCHES):
        row = {"batch": batch, "new_tokens": G.NEW_TOKENS}
        for engine, res in (("hfpipe", hf), ("transformers", tf), ("ctranslate2", ct)):
            if res is None:
                row[engine] = None
                continue
            x = res[i]
            assert x["batch"] == batch
            n = batch * G.NEW_TOKENS
            lengths = sorted({len(ids) for ids in x["ids"]})
            same = sum(a == b for a, b in zip(x["ids"], tf[i]["ids"]))
            row[engine] = {"tps": n / x["total_s"], "tps_cpu": n / x["total_cpu_s"], "ttft": x["ttft_s"],
                           "ttft_cpu": x["ttft_cpu_s"], "lengths": lengths, "same_ids": f"{same}/{batch}"}
        results["generation"].append(row)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


# ------------------------------------------------------------------ report

def fmt(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def ratio(a: float | None, b: float | None) -> str:
    return "n/a" if a is None or b is None else f"{a / b:.2f}x"


def report(results: dict, args, command: str) -> str:
    out = ["## hfpipe vs transformers, onnxruntime and CTranslate2 (one thread each)\n",
           f"Machine: {B.machine_info()}; {versions()}; load average {results['load']} at the start.  ",
           f"Command: `{command}` (encoders: {results['sizes']}; best of {results['repeats']}).\n",
           "onnxruntime and CTranslate2 are driven from Python: tokenization by the `tokenizers` library "
           "(the folder's tokenizer.json), the forward pass, then per item the unpadded hidden rows "
           "(feature-extraction) or softmax + top label (classifier). hfpipe is its CLI (its own tokenizer, "
           "results written as JSON lines); transformers is pipeline() (results as Python lists). "
           "CTranslate2's BERT converter keeps no classifier head: for the classifier it runs the encoder + "
           "pooler, and the 768x2 head and softmax run in numpy.\n"]
    for key, title in (("items_per_s", "items/s, wall-clock"), ("items_per_cpu_s", "items per CPU-second")):
        out += [f"### Encoders, {title}\n",
                "| model | tokens | batch | items | hfpipe | transformers | onnxruntime | CTranslate2 | "
                "hfpipe / transformers | hfpipe / onnxruntime | hfpipe / CTranslate2 |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in results["encoders"]:
            v = {e: (r[e][key] if r[e] else None) for e in ENGINES}
            out.append(f"| {r['model']} | ~{r['tokens']} | {r['batch']} | {r['items']} | " +
                       " | ".join(fmt(v[e]) for e in ENGINES) + " | " +
                       " | ".join(ratio(v["hfpipe"], v[e]) for e in ENGINES[1:]) + " |")
        out.append("")
    out += ["### Agreement with transformers (8 inputs: 4 of ~16 and 4 of ~128 tokens, one padded batch)\n",
            "| model | engine | compared | max abs diff |", "|---|---|---|---:|"]
    for r in results["agreement"]:
        d = r["max_abs_diff"]
        out.append(f"| {r['model']} | {TITLES[r['engine']]} | {r['compared']} | "
                   f"{d:.2e} |" if isinstance(d, float) else
                   f"| {r['model']} | {TITLES[r['engine']]} | {r['compared']} | {d} |")
    out.append("")
    if results["generation"]:
        out += ["### Greedy generation, GPT-2 small shape (random weights), 64-token prompts, 128 new tokens\n",
                "| batch | hfpipe tok/s | transformers tok/s | CTranslate2 tok/s | hfpipe / transformers | "
                "hfpipe / CTranslate2 | hfpipe tok/CPU-s | transformers tok/CPU-s | CTranslate2 tok/CPU-s | "
                "hfpipe / CTranslate2 (CPU) | TTFT hfpipe (ms) | TTFT transformers (ms) | TTFT CTranslate2 (ms) | "
                "new tokens per row (CTranslate2) | same ids as transformers: hfpipe, CTranslate2 |",
                "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
        for r in results["generation"]:
            g = {e: r.get(e) for e in ("hfpipe", "transformers", "ctranslate2")}
            val = (lambda e, k: g[e][k] if g[e] else None)
            out.append(
                f"| {r['batch']} | {fmt(val('hfpipe', 'tps'))} | {fmt(val('transformers', 'tps'))} | "
                f"{fmt(val('ctranslate2', 'tps'))} | {ratio(val('hfpipe', 'tps'), val('transformers', 'tps'))} | "
                f"{ratio(val('hfpipe', 'tps'), val('ctranslate2', 'tps'))} | {fmt(val('hfpipe', 'tps_cpu'))} | "
                f"{fmt(val('transformers', 'tps_cpu'))} | {fmt(val('ctranslate2', 'tps_cpu'))} | "
                f"{ratio(val('hfpipe', 'tps_cpu'), val('ctranslate2', 'tps_cpu'))} | "
                f"{fmt(val('hfpipe', 'ttft') and val('hfpipe', 'ttft') * 1e3, 0)} | "
                f"{fmt(val('transformers', 'ttft') and val('transformers', 'ttft') * 1e3, 0)} | "
                f"{fmt(val('ctranslate2', 'ttft') and val('ctranslate2', 'ttft') * 1e3, 0)} | "
                f"{val('ctranslate2', 'lengths')} | {val('hfpipe', 'same_ids')}, {val('ctranslate2', 'same_ids')} |")
        out += ["", "onnxruntime is not measured for generation (no KV-cache export and decoding loop here)."]
    if results["failures"]:
        out += ["", "Failures:", *[f"- {f}" for f in results["failures"]]]
    out += ["", "Encoders: hfpipe's throughput is (N-1)/(t_N - t_1) over whole CLI runs (CPU: the same with each "
            "run's CPU seconds); the others are timed in a warm process over N items, best of R; items/CPU-s "
            "uses the process's CPU time (all threads), which on an idle machine at one thread is the wall time."]
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hfpipe", type=Path, default=Path(os.environ.get("HFPIPE_BIN", B.REPO / "build" / "hfpipe")))
    ap.add_argument("--driver", type=Path,
                    default=Path(os.environ.get("HFPIPE_BENCH_GENERATION", B.REPO / "build" / "hfpipe_bench_generation")))
    ap.add_argument("--threads", type=int, default=1, help="threads of every engine (default: 1)")
    ap.add_argument("--quick", action="store_true", help="fewer items, best of 1 (a smoke run)")
    ap.add_argument("--skip-generation", action="store_true", help="encoders only")
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    args = ap.parse_args()
    if not args.hfpipe.is_file():
        print(f"bench_competitors: hfpipe not found at {args.hfpipe} (build it, or pass --hfpipe)", file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers
    transformers.logging.set_verbosity_error()
    command = ".venv/bin/python bench/bench_competitors.py" + "".join(f" {a}" for a in sys.argv[1:])
    # items at (batch 1, batch 32) for each input length; ~128 tokens costs ~8x more per item
    n_items = {16: (16, 64), 128: (4, 32)} if args.quick else {16: (64, 256), 128: (16, 64)}
    repeats = 1 if args.quick else 3
    results = {"load": " / ".join(f"{x:.1f}" for x in os.getloadavg()), "repeats": repeats,
               "sizes": "; ".join(f"~{t} tokens: {a} items at batch 1, {b} at batch 32" for t, (a, b) in n_items.items()),
               "encoders": [], "agreement": [], "generation": [], "failures": []}
    try:
        run_encoders(args, n_items, repeats, results)
        if not args.skip_generation:
            try:
                run_generation(args, repeats, results)
            except RuntimeError as e:
                log(str(e))
                results["failures"].append(f"generation: {str(e).splitlines()[-1][:300]}")
    except KeyboardInterrupt:
        log("interrupted: reporting what was measured so far")
    print(report(results, args, command))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
