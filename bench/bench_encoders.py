#!/usr/bin/env python3
"""hfpipe vs transformers on encoder models, in one invocation, on this machine.

usage: .venv/bin/python bench/bench_encoders.py [--threads 1,2] [--quick] [--hfpipe build/hfpipe]
                                                 [--json results.json]

Workloads (the same model folder and the same inputs on both sides):
- all-MiniLM-L6-v2 feature-extraction (token embeddings; models/, see scripts/assemble_real_models.py)
- a BERT-base-shaped classifier (random weights, fixed seed: 12 layers, hidden 768, 12 heads,
  intermediate 3072, 2 labels), made by this script into build/bench-models/
each on ~16- and ~128-token inputs at batch 1 and 32, in items/s.

How it measures:
- hfpipe: the CLI with --jsonl over N inputs and over 1 input; throughput = (N-1) / (t_N - t_1),
  so process start-up and model loading cancel out; best of R runs.
- transformers: pipeline(task, model=folder) in a worker process (torch.set_num_threads equal to
  hfpipe's --threads), warmed up, pipe(inputs, batch_size=B) timed; best of R runs.
- start-up: process start to the first result line on stdout, for one input: the hfpipe CLI vs
  `python -c` importing transformers, building the pipeline and printing pipe(text).
- peak RSS: ru_maxrss of each process, taken by a small runner that forks it (hfpipe: the
  largest of its runs; transformers: the worker that ran every configuration of the model),
  next to the size of the weights.

Prints progress on stderr and the results as markdown tables on stdout (for docs/performance.md).
Not part of the pytest run.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_TOKENIZERS = REPO.parent / "shared" / "tokenizers"
BENCH_MODELS = REPO / "build" / "bench-models"
SEED = 1234

TARGETS = {"batch1": 2.0, "batch32": 1.5, "startup_ms": 300, "rss_over_weights_mb": 100}

WORDS = ("time person year way day thing man world life hand part child eye woman place work "
         "week case point government company number group problem fact be have do say get make "
         "go know take see come think look want give use find tell ask seem feel try leave call "
         "good new first last long great little own other old right big high different small "
         "large next early young important few public bad same able city river music garden "
         "window paper market street doctor school water family story money night house "
         "morning friend mountain summer winter letter table kitchen forest ocean train").split()


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ models and inputs

def ensure_bench_model() -> Path:
    """build/bench-models/bert-base-cls2: BERT-base shape, random weights, 2 labels."""
    folder = BENCH_MODELS / "bert-base-cls2"
    stamp = folder / ".stamp"
    want = f"seed={SEED};v1"
    if stamp.is_file() and stamp.read_text() == want and (folder / "model.safetensors").is_file():
        return folder
    log(f"making {folder} ...")
    import torch
    from transformers import BertConfig, BertForSequenceClassification
    torch.manual_seed(SEED)
    cfg = BertConfig(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                     intermediate_size=3072, max_position_embeddings=512, num_labels=2,
                     id2label={0: "NEGATIVE", 1: "POSITIVE"}, label2id={"NEGATIVE": 0, "POSITIVE": 1})
    return save_bench_model(BertForSequenceClassification(cfg), folder, "bert-base-uncased", want)


def bench_model_ready(folder: Path, stamp: str) -> bool:
    """Whether `folder` holds a finished model made with `stamp`; else says it will be made."""
    file = folder / ".stamp"
    if file.is_file() and file.read_text() == stamp:
        return True
    log(f"making {folder} ...")
    return False


def save_bench_model(model, folder: Path, tokenizer: str, stamp: str) -> Path:
    """Saves `model` (eval mode) with shared/tokenizers/<tokenizer>'s files into `folder`, stamped
    with `stamp`. Written beside it and renamed into place, so an interrupted run never leaves a
    half-written folder that the stamp check would take for a finished one."""
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.eval().save_pretrained(tmp)
    for p in (SHARED_TOKENIZERS / tokenizer).iterdir():
        if p.is_file() and p.name != "SOURCE.txt":
            shutil.copyfile(p, tmp / p.name)
    (tmp / ".stamp").write_text(stamp)
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return folder


def ensure_real_model() -> Path:
    folder = REPO / "models" / "all-MiniLM-L6-v2"
    if not (folder / "config.json").is_file():
        subprocess.run([sys.executable, str(REPO / "scripts" / "assemble_real_models.py")], check=True,
                       stdout=subprocess.DEVNULL)
    return folder


def make_inputs(folder: Path, target_tokens: int, n: int) -> list[str]:
    """n distinct texts of about target_tokens tokens each ([CLS]/[SEP] included)."""
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(folder)
    rng = random.Random(SEED + target_tokens)
    texts = []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(max(1, target_tokens - 2))]
        text = " ".join(words).capitalize() + "."
        while len(tok(text)["input_ids"]) > target_tokens and len(words) > 1:
            words.pop()
            text = " ".join(words).capitalize() + "."
        texts.append(text)
    return texts


def weights_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.iterdir()
               if p.suffix in (".safetensors", ".bin")) / 2**20


# ------------------------------------------------------------------ process measurement

# ru_maxrss of a child forked from this (large) Python process starts at this process's own
# high-water mark (Linux carries the pre-exec mm's peak over exec), so the measured process is
# started by a small runner that forks it and reports its wait4 ru_maxrss: the floor is the
# runner's few MB instead of this process's hundreds.
RSS_RUNNER = r"""
import os, sys
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, rusage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(rusage.ru_maxrss))
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


def run_measured(cmd, stdin_text: str, env=None, rss=True) -> dict:
    """Run cmd; return wall time, CPU time (user + system of the process and everything it
    started, from RUSAGE_CHILDREN: commands run one at a time), time to the first stdout line,
    peak RSS in MB (rss=True: via RSS_RUNNER, which adds ~10 ms to both times), number of stdout
    lines, exit code."""
    import resource
    import tempfile

    def children_cpu() -> float:
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        return ru.ru_utime + ru.ru_stime
    rss_file = None
    if rss:
        fd, rss_file = tempfile.mkstemp(prefix="bench-rss-")
        os.close(fd)
        cmd = [sys.executable, "-S", "-E", "-c", RSS_RUNNER, rss_file, *map(str, cmd)]
    t0, cpu0 = time.perf_counter(), children_cpu()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)

    def feed():
        try:
            proc.stdin.write(stdin_text.encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass

    feeder = threading.Thread(target=feed)
    feeder.start()
    stderr_chunks = []
    err_reader = threading.Thread(target=lambda: stderr_chunks.append(proc.stderr.read()))
    err_reader.start()
    first = None
    lines = 0
    last_line = b""
    for line in proc.stdout:
        if first is None:
            first = time.perf_counter() - t0
        lines += 1
        last_line = line
    proc.wait()
    wall, cpu = time.perf_counter() - t0, children_cpu() - cpu0
    feeder.join()
    err_reader.join()
    rss_mb = float("nan")
    if rss_file:
        try:
            rss_mb = int(Path(rss_file).read_text() or 0) / 1024
        except (OSError, ValueError):
            pass
        os.unlink(rss_file)
    return {"wall": wall, "cpu": cpu, "first": first, "rss_mb": rss_mb, "lines": lines,
            "rc": proc.returncode, "stderr": b"".join(stderr_chunks).decode("utf-8", "replace"),
            "last": last_line}


def child_env(threads: int) -> dict:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    return env


# ------------------------------------------------------------------ hfpipe side

def hfpipe_cmd(binary, task, folder, batch, threads, extra=()):
    return [str(binary), task, "--model", str(folder), "--batch-size", str(batch),
            "--threads", str(threads), "--jsonl", *extra]


def bench_hfpipe(binary, task, folder, inputs, batch, threads, repeats, extra=()) -> dict:
    """Items/s as (N-1) / (t_N - t_1) (start-up and loading cancel out), best of `repeats` for
    each of t_N and t_1, by wall-clock and by CPU time. extra: more CLI arguments (e.g. --param
    key=JSON)."""
    stdin_n = "".join(json.dumps(x) + "\n" for x in inputs)
    stdin_1 = json.dumps(inputs[0]) + "\n"
    env = child_env(threads)
    best = {}
    rss = 0.0
    for _ in range(repeats):
        r1 = run_measured(hfpipe_cmd(binary, task, folder, batch, threads, extra), stdin_1, env)
        rn = run_measured(hfpipe_cmd(binary, task, folder, batch, threads, extra), stdin_n, env)
        for r, n in ((r1, 1), (rn, len(inputs))):
            if r["rc"] != 0 or r["lines"] != n:
                raise RuntimeError(f"hfpipe failed (exit {r['rc']}, {r['lines']} lines of {n}): "
                                   f"{r['stderr'][-500:]}")
        for key, value in (("t1", r1["wall"]), ("tn", rn["wall"]), ("c1", r1["cpu"]), ("cn", rn["cpu"])):
            best[key] = min(value, best.get(key, value))
        rss = max(rss, r1["rss_mb"], rn["rss_mb"])
    n = len(inputs) - 1
    return {"items_per_s": n / max(best["tn"] - best["t1"], 1e-9),
            "items_per_cpu_s": n / max(best["cn"] - best["c1"], 1e-9),
            "t1": best["t1"], "tn": best["tn"], "rss_mb": rss}


def startup_hfpipe(binary, task, folder, text, threads, repeats, extra=()) -> float:
    best = None
    for _ in range(repeats):
        r = run_measured([str(binary), task, "--model", str(folder), "--threads", str(threads), *extra, text],
                         "", child_env(threads), rss=False)
        if r["rc"] != 0:
            raise RuntimeError(f"hfpipe failed: {r['stderr'][-500:]}")
        best = r["first"] if best is None else min(best, r["first"])
    return best


# ------------------------------------------------------------------ transformers side

WORKER = r"""
import json, sys, time
spec = json.loads(sys.stdin.read())
import torch
torch.set_num_threads(spec["threads"])
import transformers
transformers.logging.set_verbosity_error()
from transformers import pipeline
pipe = pipeline(spec["task"], model=spec["folder"], device="cpu", dtype=getattr(torch, spec["dtype"]))
out = []
kwargs = spec.get("kwargs", {})
for cfg in spec["configs"]:
    inputs, batch = cfg["inputs"], cfg["batch"]
    pipe(inputs[: max(batch, 2)], batch_size=batch, **kwargs)          # warm-up
    best = None
    for _ in range(spec["repeats"]):
        t0 = time.perf_counter()
        res = pipe(inputs, batch_size=batch, **kwargs)
        dt = time.perf_counter() - t0
        assert len(res) == len(inputs)
        best = dt if best is None else min(best, dt)
    out.append({"items_per_s": len(inputs) / best})
print(json.dumps(out), flush=True)
"""

STARTUP = r"""
import sys, json
from transformers import pipeline
import torch
torch.set_num_threads(int(sys.argv[3]))
p = pipeline(sys.argv[1], model=sys.argv[2], device="cpu", dtype=getattr(torch, sys.argv[5]))
print(json.dumps(p(sys.argv[4]))[:200], flush=True)
"""


def bench_transformers(task, folder, configs, threads, repeats, kwargs=None, dtype="float32") -> tuple[list, float]:
    """kwargs: the pipeline call's keyword arguments (e.g. candidate_labels); dtype: the
    pipeline's (float32 or bfloat16)."""
    spec = {"task": task, "folder": str(folder), "threads": threads, "repeats": repeats,
            "configs": configs, "kwargs": kwargs or {}, "dtype": dtype}
    r = run_measured([sys.executable, "-c", WORKER], json.dumps(spec), child_env(threads))
    if r["rc"] != 0:
        raise RuntimeError(f"transformers worker failed: {r['stderr'][-2000:]}")
    return json.loads(r["last"]), r["rss_mb"]


def startup_transformers(task, folder, text, threads, repeats, dtype="float32") -> float:
    best = None
    for _ in range(repeats):
        r = run_measured([sys.executable, "-c", STARTUP, task, str(folder), str(threads), text, dtype], "",
                         child_env(threads), rss=False)
        if r["rc"] != 0:
            raise RuntimeError(f"transformers start-up run failed: {r['stderr'][-1000:]}")
        best = r["first"] if best is None else min(best, r["first"])
    return best


# ------------------------------------------------------------------ report

def machine_info() -> str:
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import importlib.metadata as md
    try:
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
    except OSError:
        rev = "?"
    return (f"{cpu}, {os.cpu_count()} logical CPUs; Python {platform.python_version()}, "
            f"torch {md.version('torch')}, transformers {md.version('transformers')}; "
            f"hfpipe at {rev or '?'}")


def mark(ok: bool) -> str:
    return "yes" if ok else "**no**"


# ------------------------------------------------------------------ shared by the task benchmarks
# (bench_encoder_tasks.py, bench_seq2seq.py, bench_generation.py): one workload = one pipeline
# call's keyword arguments, run on both sides at several batch sizes, reported as one table.

def bench_args(doc: str, script: str, bfloat16: bool = False) -> argparse.Namespace | None:
    """The benchmarks' command line (--hfpipe, --threads, --quick, --json, and --dtype where the
    benchmarked tasks run bfloat16; args.dtype is float32 otherwise); None, after a message on
    stderr (build it, or pass --hfpipe), when the hfpipe binary is missing."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--hfpipe", type=Path, default=Path(os.environ.get("HFPIPE_BIN", REPO / "build" / "hfpipe")))
    ap.add_argument("--threads", default="1",
                    help="comma-separated thread counts, each run on both sides (default: 1)")
    ap.add_argument("--quick", action="store_true", help="fewer items and repeats (a smoke run)")
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    if bfloat16:
        ap.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                        help="torch_dtype of both sides (bfloat16 also times transformers in float32)")
    args = ap.parse_args()
    args.dtype = getattr(args, "dtype", "float32")
    args.threads = [int(t) for t in str(args.threads).split(",") if t]
    args.script = script
    if not args.hfpipe.is_file():
        print(f"{Path(script).stem}: hfpipe not found at {args.hfpipe} (build it, or pass --hfpipe)", file=sys.stderr)
        return None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return args


def dtype_params(dtype: str) -> list[str]:
    """hfpipe's arguments for the benchmark's --dtype (none for float32, its default)."""
    return ["--param", f'torch_dtype="{dtype}"'] if dtype != "float32" else []


def bench_hfpipe_call(binary, task, folder, inputs, batch, threads, repeats, kwargs, dtype="float32") -> float:
    """items/s of the CLI, with the call's keyword arguments passed as --param key=JSON."""
    params = [a for k, v in kwargs.items() for a in ("--param", f"{k}={json.dumps(v)}")] + dtype_params(dtype)
    return bench_hfpipe(binary, task, folder, inputs, batch, threads, repeats, params)["items_per_s"]


def compare_batches(args, name, task, folder, inputs, batches, kwargs, repeats) -> list[dict]:
    """One workload on both sides at each (batch, item count) of `batches`, for every --threads:
    rows {threads, batch, hfpipe, transformers[, transformers_f32]} in items/s, both sides in
    args.dtype (and transformers also in float32 when that is not float32). transformers runs
    every batch size in one warm worker; the first `count` inputs are timed."""
    rows = []
    for t in args.threads:
        configs = [{"batch": batch, "inputs": inputs[:count]} for batch, count in batches]
        log(f"[{name}, {t} thread(s)] transformers ...")
        tf_res, _ = bench_transformers(task, folder, configs, t, repeats, kwargs, args.dtype)
        tf32_res = tf_res if args.dtype == "float32" else bench_transformers(task, folder, configs, t, repeats, kwargs)[0]
        for cfg, tf, tf32 in zip(configs, tf_res, tf32_res):
            log(f"[{name}, {t} thread(s)] hfpipe batch {cfg['batch']} ...")
            hf = bench_hfpipe_call(args.hfpipe, task, folder, cfg["inputs"], cfg["batch"], t, repeats, kwargs, args.dtype)
            rows.append({"threads": t, "batch": cfg["batch"], "hfpipe": hf, "transformers": tf["items_per_s"],
                         "transformers_f32": tf32["items_per_s"]})
    return rows


def ratio_report(title: str, args, detail: str, columns, rows, unit: str, goal: float, digits: int = 2) -> str:
    """A markdown report: the title, the machine, the command that produced it (`detail` says
    how many items, what inputs) and one row per measurement. `columns` are (header, key) pairs
    of the leading columns; numbers are right-aligned. Each row has "hfpipe" and "transformers"
    in `unit`; their ratio is checked against `goal`."""
    out = [f"## {title}\n",
           f"Machine: {machine_info()}.  ",
           f"Command: `{command_line(args)}` ({detail}).\n"] + dtype_note(args)
    bf16 = args.dtype != "float32"
    numeric = [bool(rows) and isinstance(rows[0][key], (int, float)) for _, key in columns]
    out.append("| " + " | ".join([h for h, _ in columns] + [f"hfpipe {unit}", f"transformers {unit}", "ratio",
                                                             f"goal >= {goal:g}x"]
                              + ([f"transformers float32 {unit}", "ratio to float32"] if bf16 else [])) + " |")
    out.append("|" + "|".join(["---:" if n else "---" for n in numeric] + ["---:"] * 3 + ["---"]
                              + (["---:"] * 2 if bf16 else [])) + "|")
    for r in rows:
        ratio = r["hfpipe"] / r["transformers"]
        cells = [str(r[key]) for _, key in columns]
        cells += [f"{r['hfpipe']:.{digits}f}", f"{r['transformers']:.{digits}f}", f"{ratio:.2f}x", mark(ratio >= goal)]
        if bf16:
            cells += [f"{r['transformers_f32']:.{digits}f}", f"{r['hfpipe'] / r['transformers_f32']:.2f}x"]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def command_line(args) -> str:
    """The command that reproduces this run (as the reports print it)."""
    return (f".venv/bin/python bench/{args.script} --threads {','.join(map(str, args.threads))}"
            f"{' --quick' if args.quick else ''}{f' --dtype {args.dtype}' if args.dtype != 'float32' else ''}")


def dtype_note(args) -> list[str]:
    """The line a report opens its table with when both sides ran in another dtype."""
    if args.dtype == "float32":
        return []
    return [f"Both sides with torch_dtype={args.dtype}; the last columns compare hfpipe with transformers "
            "in float32 (its default).\n"]


def run_and_report(args, measure, report) -> int:
    """Runs measure(rows) (which appends rows and may write args.json as it goes), then prints
    report(rows): an interrupted run still reports what it measured."""
    rows: list[dict] = []
    try:
        measure(rows)
    except KeyboardInterrupt:
        log("interrupted: reporting what was measured so far")
    print(report(rows))
    return 0


def report(results: dict, args) -> str:
    out = []
    out.append("## Encoder benchmark: hfpipe vs transformers\n")
    out.append(f"Machine: {results['machine']}.  ")
    out.append(f"Command: `{command_line(args)}`"
               f" ({results['n_batch1']} items at batch 1, {results['n_batch32']} at batch 32, "
               f"best of {results['repeats']}).\n")
    for t in args.threads:
        out.append(f"### {t} thread{'s' if t > 1 else ''}\n")
        bf16 = args.dtype != "float32"
        out += dtype_note(args)
        out.append("| model | task | tokens | batch | hfpipe items/s | transformers items/s | ratio | target |"
                   + (" transformers float32 items/s | ratio to float32 |" if bf16 else ""))
        out.append("|---|---|---:|---:|---:|---:|---:|---|" + ("---:|---:|" if bf16 else ""))
        for row in results["throughput"]:
            if row["threads"] != t:
                continue
            ratio = row["hfpipe"] / row["transformers"]
            target = TARGETS["batch1"] if row["batch"] == 1 else TARGETS["batch32"]
            out.append(f"| {row['model']} | {row['task']} | ~{row['tokens']} | {row['batch']} | "
                       f"{row['hfpipe']:.1f} | {row['transformers']:.1f} | {ratio:.2f}x | "
                       f">= {target}x: {mark(ratio >= target)} |"
                       + (f" {row['transformers_f32']:.1f} | {row['hfpipe'] / row['transformers_f32']:.2f}x |"
                          if bf16 else ""))
        out.append("")
        out.append("| model | start-up hfpipe (ms) | start-up transformers (ms) | ratio | under 300 ms |")
        out.append("|---|---:|---:|---:|---|")
        for row in results["startup"]:
            if row["threads"] != t:
                continue
            out.append(f"| {row['model']} | {row['hfpipe'] * 1000:.0f} | {row['transformers'] * 1000:.0f} | "
                       f"{row['transformers'] / row['hfpipe']:.1f}x faster | "
                       f"{mark(row['hfpipe'] * 1000 < TARGETS['startup_ms'])} |")
        out.append("")
        out.append("| model | weights (MB) | peak RSS hfpipe (MB) | peak RSS transformers (MB) | hfpipe under weights + 100 MB |")
        out.append("|---|---:|---:|---:|---|")
        for row in results["memory"]:
            if row["threads"] != t:
                continue
            out.append(f"| {row['model']} | {row['weights_mb']:.0f} | {row['hfpipe_mb']:.0f} | "
                       f"{row['transformers_mb']:.0f} | "
                       f"{mark(row['hfpipe_mb'] < row['weights_mb'] + TARGETS['rss_over_weights_mb'])} |")
        out.append("")
    out.append("Throughput of hfpipe is (N-1)/(t_N - t_1) over whole CLI runs (start-up and loading "
               "cancel out); transformers is timed in a warm process. Start-up is process start to "
               "the first result line for one input. Peak RSS is ru_maxrss of each process.")
    return "\n".join(out)


def main() -> int:
    args = bench_args(__doc__, "bench_encoders.py", bfloat16=True)
    if args is None:
        return 2
    import transformers
    transformers.logging.set_verbosity_error()

    n1, n32, repeats = (16, 64, 1) if args.quick else (64, 256, 3)
    models = [
        ("all-MiniLM-L6-v2", "feature-extraction", ensure_real_model()),
        ("BERT-base classifier (random)", "text-classification", ensure_bench_model()),
    ]
    results = {"machine": machine_info(), "n_batch1": n1, "n_batch32": n32, "repeats": repeats,
               "throughput": [], "startup": [], "memory": []}
    try:
        run_all(args, models, results, n1, n32, repeats)
    except KeyboardInterrupt:
        log("interrupted: reporting what was measured so far")
    md = report(results, args)
    print(md)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


def run_all(args, models, results, n1, n32, repeats) -> None:
    for name, task, folder in models:
        inputs = {tokens: make_inputs(folder, tokens, max(n1, n32)) for tokens in (16, 128)}
        for t in args.threads:
            configs = []
            for tokens in (16, 128):
                for batch, n in ((1, n1), (32, n32)):
                    configs.append({"tokens": tokens, "batch": batch, "inputs": inputs[tokens][:n]})
            log(f"[{name}, {t} thread(s)] transformers ...")
            tf_res, tf_rss = bench_transformers(task, folder, configs, t, repeats, dtype=args.dtype)
            tf32_res = tf_res
            if args.dtype != "float32":
                log(f"[{name}, {t} thread(s)] transformers float32 ...")
                tf32_res, _ = bench_transformers(task, folder, configs, t, repeats)
            extra = dtype_params(args.dtype)
            hf_rss = 0.0
            for cfg, tf, tf32 in zip(configs, tf_res, tf32_res):
                log(f"[{name}, {t} thread(s)] hfpipe ~{cfg['tokens']} tokens, batch {cfg['batch']} ...")
                hf = bench_hfpipe(args.hfpipe, task, folder, cfg["inputs"], cfg["batch"], t, repeats, extra)
                hf_rss = max(hf_rss, hf["rss_mb"])
                results["throughput"].append({
                    "model": name, "task": task, "threads": t, "tokens": cfg["tokens"],
                    "batch": cfg["batch"], "hfpipe": hf["items_per_s"],
                    "transformers": tf["items_per_s"], "transformers_f32": tf32["items_per_s"],
                    "hfpipe_t1": hf["t1"], "hfpipe_tn": hf["tn"]})
            log(f"[{name}, {t} thread(s)] start-up ...")
            text = inputs[16][0]
            results["startup"].append({
                "model": name, "threads": t,
                "hfpipe": startup_hfpipe(args.hfpipe, task, folder, text, t, max(repeats, 3), extra),
                "transformers": startup_transformers(task, folder, text, t, repeats, args.dtype)})
            results["memory"].append({"model": name, "threads": t, "weights_mb": weights_mb(folder),
                                      "hfpipe_mb": hf_rss, "transformers_mb": tf_rss})
            if args.json:   # partial results survive an interrupted run
                args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    sys.exit(main())
