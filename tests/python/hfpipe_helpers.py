"""Helpers shared by hfpipe's parity tests: running the CLI, the transformers reference side,
comparison of nested results, and the test inputs.

The conftest.py beside this file exposes them as fixtures; test modules may also import them.
"""
from __future__ import annotations

import functools
import json
import math
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts"
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

# Nothing may download: every model is a local folder.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ATOL = 1e-4          # scores and embeddings: absolute tolerance (DESIGN.md, numerical contract)
HFPIPE_TIMEOUT = 300  # seconds for one hfpipe process: a hang is a failure, not a stuck suite

# ------------------------------------------------------------------------------ inputs

TEXTS = {
    "plain": "The quick brown fox jumps over the lazy dog.",
    "empty": "",
    "whitespace": "  \t \n  ",
    "accents": "Café déjà vu: naïve résumé, señor Müller's façade — Ångström, Øresund, ÉCOLE.",
    "cjk": "自然言語処理はとても面白いです。我喜欢机器学习。한국어 텍스트도 있습니다.",
    "emoji": "I love this 😍🔥👍🏽!!! 👩‍💻 🇫🇷 ❤️ so much",
    "symbols": "Numbers 3.14159 and 1,000,000; mail someone@example.com, https://example.org/a?b=c&d=e #tag @user",
    "caps": "THIS IS ALL CAPS AND VERY LOUD!!! Isn't it?",
    "invisible": "zero\u200bwidth soft\u00adhyphen no\u00a0break tab\there",
    "one_word": "Hello",
}

PAIRS = {
    "pair": {"text": "What a wonderful movie!", "text_pair": "I did not like it at all."},
    "pair_empty_first": {"text": "", "text_pair": "Only the second segment."},
    "pair_unicode": {"text": "Café au lait?", "text_pair": "東京タワー 😀"},
}

_LONG_SENTENCES = [
    "The committee met on Tuesday to review the 2023 budget, which had grown by 7.5 percent.",
    "Researchers in Zürich and São Paulo reported that the new alloy withstands 1,200 degrees.",
    "She said the museum's collection includes paintings, manuscripts, and over 3,000 coins.",
    "After the storm, volunteers cleared roads, restored power lines, and reopened the school.",
    "Transformers process tokens in parallel; attention weighs every token against the others.",
    "My grandmother's recipe calls for flour, butter, two eggs, and a pinch of cinnamon.",
    "The quarterly report (unaudited) shows revenue of $4.2 billion and margins near 18%.",
    "Hikers reached the summit at dawn, exhausted but delighted by the view over the valley.",
]


def _long_text(min_words: int = 640) -> str:
    words: list[str] = []
    i = 0
    while len(words) < min_words:
        words.extend(_LONG_SENTENCES[i % len(_LONG_SENTENCES)].split())
        i += 1
    return " ".join(words)


LONG_TEXT = _long_text()            # over 512 tokens for every tokenizer used (checked in tests)
LONG_PAIR = {"text": LONG_TEXT, "text_pair": "A short second segment for the pair."}

# a batch of mixed lengths, deliberately unsorted
MIXED_BATCH = [
    "Short.",
    " ".join(_LONG_SENTENCES[:5]),
    "",
    "A medium sentence with a handful of words in it.",
    " ".join(_LONG_SENTENCES) * 1,
    "Two words",
    "Ünïcödé and emoji 🎉 in a short one.",
    " ".join(_LONG_SENTENCES[2:4]),
    "x",
]

REAL_SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.",
    "A monkey is playing drums.",
    "Someone in a gorilla costume is playing a set of drums.",
    "The new movie is awesome, but the ending felt rushed and the soundtrack was far too loud!",
    "Le chat est assis sur le tapis, près de la fenêtre.",
    "",
]

# ------------------------------------------------------------------------------ hfpipe runner


class HfpipeFailed(AssertionError):
    """hfpipe exited non-zero where a result was expected."""


def hfpipe_command(binary, task, model, inputs=(), params=None, *, jsonl=True, batch_size=None,
                   threads=None, extra=()) -> list[str]:
    cmd = [str(binary), task, "--model", str(model)]
    if threads is None and os.environ.get("HFPIPE_TEST_THREADS"):
        threads = os.environ["HFPIPE_TEST_THREADS"]     # default: hfpipe's own default
    if batch_size is not None:
        cmd += ["--batch-size", str(batch_size)]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    for key, value in (params or {}).items():
        cmd += ["--param", f"{key}={json.dumps(value, ensure_ascii=False)}"]
    cmd += list(extra)
    if jsonl:
        cmd.append("--jsonl")
    else:
        cmd += list(inputs)
    return cmd


def run_raw(cmd, *, stdin: bytes | str | None = None, env=None, cwd=None,
            timeout=HFPIPE_TIMEOUT) -> subprocess.CompletedProcess:
    """Run a command, capturing bytes; stdin as bytes or text (UTF-8)."""
    if isinstance(stdin, str):
        stdin = stdin.encode("utf-8")
    full_env = dict(os.environ)
    full_env.update(env or {})
    try:
        return subprocess.run(cmd, input=stdin if stdin is not None else b"",
                              capture_output=True, env=full_env, cwd=cwd, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"hfpipe did not finish within {timeout} s: {shell_line(cmd)}") from e


def shell_line(cmd) -> str:
    import shlex
    return " ".join(shlex.quote(os.fsdecode(c)) for c in cmd)


def jsonl_stdin(inputs) -> str:
    return "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in inputs)


def run_hfpipe(binary, task, model, inputs, params=None, *, jsonl=True, batch_size=None,
               threads=None, extra=(), env=None):
    """Run hfpipe and return the parsed JSON.

    jsonl=True: each input goes as one JSON line on stdin; returns the list of parsed output
    lines (one per input). jsonl=False: the inputs are arguments (strings only); returns the
    one parsed document hfpipe prints.
    """
    inputs = list(inputs)
    cmd = hfpipe_command(binary, task, model, inputs, params, jsonl=jsonl,
                         batch_size=batch_size, threads=threads, extra=extra)
    proc = run_raw(cmd, stdin=jsonl_stdin(inputs) if jsonl else None, env=env)
    stderr = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise HfpipeFailed(f"hfpipe exited with {proc.returncode}: {shell_line(cmd)}\n"
                           f"stderr: {stderr[-2000:]}")
    out = proc.stdout.decode("utf-8")
    if jsonl:
        lines = [l for l in out.split("\n") if l.strip()]
        assert len(lines) == len(inputs), (
            f"hfpipe --jsonl printed {len(lines)} lines for {len(inputs)} inputs: {shell_line(cmd)}\n"
            f"stdout starts: {out[:500]!r}")
        return [json.loads(l) for l in lines]
    try:
        return json.loads(out)
    except ValueError as e:
        raise AssertionError(f"hfpipe printed no single JSON document: {shell_line(cmd)}\n"
                             f"stdout starts: {out[:500]!r}") from e


def tool_binary(env_var: str, target: str) -> str:
    """A test tool built beside hfpipe (build/<target>), or the one env_var names; a test
    failure naming the CMake target to build when it is not there."""
    import pytest
    path = os.environ.get(env_var, str(REPO / "build" / target))
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} not found: build the {target} target", pytrace=False)
    return path


def error_line(proc: subprocess.CompletedProcess) -> str:
    """The `hfpipe: error:` line of a failed run (asserting the failure contract)."""
    stderr = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode != 0, (
        f"expected a failure, got exit code 0; stdout: {proc.stdout[:300]!r}; stderr: {stderr[:300]!r}")
    assert proc.returncode > 0, f"hfpipe died by signal {-proc.returncode} (a crash); stderr: {stderr[-1000:]}"
    lines = [l for l in stderr.splitlines() if l.startswith("hfpipe: error: ")]
    assert lines, f"no line starting 'hfpipe: error: ' on stderr: {stderr[-1000:]!r}"
    return lines[0]


# ------------------------------------------------------------------------------ comparison

def _fmt(v) -> str:
    s = json.dumps(v, ensure_ascii=False) if not isinstance(v, float) else repr(v)
    return s if len(s) <= 200 else s[:200] + "…"


def differences(actual, expected, atol=ATOL, path="", out=None, limit=10):
    """Differences between two JSON-like values; returns (list of messages, max float diff).

    Strings, bools, ints, None: exact; floats: within atol absolute (an int in the actual
    value is accepted for a float, as JSON does not tell 1 from 1.0); dicts: same keys in the
    same order; lists: same length; the same nesting throughout.
    """
    out = [] if out is None else out
    maxdiff = 0.0

    def add(msg):
        if len(out) < limit:
            out.append(msg)

    where = path or "<top>"
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            add(f"{where}: expected an object {_fmt(expected)}, got {_fmt(actual)}")
            return out, maxdiff
        if list(actual.keys()) != list(expected.keys()):
            add(f"{where}: keys {list(actual.keys())} != expected {list(expected.keys())}")
            return out, maxdiff
        for k in expected:
            _, m = differences(actual[k], expected[k], atol, f"{path}[{k!r}]", out, limit)
            maxdiff = max(maxdiff, m)
    elif isinstance(expected, (list, tuple)):
        if not isinstance(actual, list):
            add(f"{where}: expected a list of {len(expected)} {_fmt(expected)}, got {_fmt(actual)}")
            return out, maxdiff
        if len(actual) != len(expected):
            add(f"{where}: list of {len(actual)} items, expected {len(expected)}: "
                f"got {_fmt(actual)}, expected {_fmt(expected)}")
            return out, maxdiff
        for i, (a, e) in enumerate(zip(actual, expected)):
            _, m = differences(a, e, atol, f"{path}[{i}]", out, limit)
            maxdiff = max(maxdiff, m)
    elif isinstance(expected, bool) or expected is None or isinstance(expected, str):
        if type(actual) is not type(expected) or actual != expected:
            add(f"{where}: {_fmt(actual)} != expected {_fmt(expected)}")
    elif isinstance(expected, int):
        if isinstance(actual, bool) or not isinstance(actual, int) or actual != expected:
            add(f"{where}: {_fmt(actual)} != expected int {expected}")
    elif isinstance(expected, float):
        if isinstance(actual, bool) or not isinstance(actual, (int, float)):
            add(f"{where}: {_fmt(actual)} is not a number (expected {expected!r})")
        elif math.isnan(expected) or math.isnan(actual):
            if not (math.isnan(expected) and math.isnan(actual)):
                add(f"{where}: {actual!r} != expected {expected!r}")
        else:
            d = abs(actual - expected)
            maxdiff = d
            if not d <= atol:
                add(f"{where}: {actual!r} != expected {expected!r} (|diff| {d:.3g} > {atol:g})")
    else:
        add(f"{where}: unexpected reference type {type(expected).__name__}")
    return out, maxdiff


def assert_same(actual, expected, atol=ATOL, what=""):
    """Assert actual (hfpipe) matches expected (transformers); shows the first differences."""
    diffs, maxdiff = differences(actual, expected, atol)
    if diffs:
        head = f"{what}: " if what else ""
        raise AssertionError(f"{head}hfpipe differs from the reference "
                             f"(max |diff| seen {maxdiff:.3g}):\n  " + "\n  ".join(diffs))


# Outputs across batch sizes: labels, ids and structure exact; floats to float32 rounding.
# Not bit-exact: oneDNN's sgemm blocks the reduction differently for different row counts
# (a row's result differs between M=1, M=2 and M>=3), so a text in a batch of 4 can differ from
# the same text alone in the last bits (seen: up to 1.3e-6 on values near 1.4). docs/architecture.md has the measurement.
BATCH_ATOL = 1e-5


def assert_identical(a, b, what=""):
    """Equal outputs whatever the batch size: exact but for float32 rounding (BATCH_ATOL)."""
    diffs, maxdiff = differences(a, b, atol=BATCH_ATOL)
    if diffs:
        raise AssertionError(f"{what}: outputs differ across batch sizes (max |diff| {maxdiff:.3g}):\n  "
                             + "\n  ".join(diffs))


def describe_input(x) -> str:
    s = json.dumps(x, ensure_ascii=False)
    return s if len(s) <= 80 else s[:77] + "…"


def assert_each_same(got: list, want: list, inputs: list, what="", atol=ATOL):
    """Compare per input, naming the first inputs that differ."""
    assert len(got) == len(want) == len(inputs)
    failures = []
    for x, g, w in zip(inputs, got, want):
        diffs, maxdiff = differences(g, w, atol)
        if diffs:
            failures.append(f"input {describe_input(x)} (max |diff| {maxdiff:.3g}):\n    "
                            + "\n    ".join(diffs[:5]))
    if failures:
        raise AssertionError(f"{what}: {len(failures)} of {len(inputs)} inputs differ from the "
                             f"reference:\n  " + "\n  ".join(failures[:4]))


# ------------------------------------------------------------------------------ reference side

@functools.lru_cache(maxsize=None)
def _setup_torch():
    """One torch thread (HFPIPE_TEST_TORCH_THREADS to change): the tiny models' matmuls are
    microseconds, and OpenMP threads spinning against the hfpipe processes on a 2-core machine
    made each reference call 50x slower. The thread count does not change the results beyond
    float rounding."""
    import torch
    torch.set_num_threads(int(os.environ.get("HFPIPE_TEST_TORCH_THREADS", "1")))


def _quiet_transformers():
    _setup_torch()
    import warnings
    warnings.filterwarnings("ignore", message=".*return_all_scores.*")
    import transformers
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


@functools.lru_cache(maxsize=None)
def reference_pipeline(task: str, folder: str, **model_kwargs):
    """transformers.pipeline on a local folder, computing in float32 (model_kwargs, such as
    attn_implementation="eager", go to pipeline's model_kwargs when given).

    transformers 4.57's pipeline() loads with dtype="auto", i.e. computes a float16/bfloat16
    checkpoint in that precision; hfpipe's contract (DESIGN.md, issue 2) is f16/bf16 weights
    converted to f32 at load and f32 activations, so the reference is the same checkpoint with
    dtype=float32 (a no-op for float32 checkpoints).
    """
    _quiet_transformers()
    import torch
    from transformers import pipeline
    extra = {"model_kwargs": dict(model_kwargs)} if model_kwargs else {}  # a copy: pipeline adds dtype to it
    return pipeline(task, model=folder, dtype=torch.float32, device="cpu", **extra)


@functools.lru_cache(maxsize=None)
def reference_sentence_transformer(folder: str):
    _setup_torch()
    import warnings
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    from sentence_transformers import SentenceTransformer
    return SentenceTransformer(folder, device="cpu")


def reference_model(auto_class: str, folder, **from_pretrained_kwargs):
    """transformers.<auto_class>.from_pretrained(folder, dtype=float32, **kwargs) in eval mode,
    loaded once per module (clear_reference_caches): the model class under a pipeline, for the
    tests that compare logits or scores below it."""
    return _reference_model(auto_class, str(folder), tuple(sorted(from_pretrained_kwargs.items())))


@functools.lru_cache(maxsize=None)
def _reference_model(auto_class: str, folder: str, kwargs: tuple):
    _quiet_transformers()
    import torch
    import transformers
    return getattr(transformers, auto_class).from_pretrained(folder, dtype=torch.float32, **dict(kwargs)).eval()


def reference_tokenizer(folder):
    """AutoTokenizer.from_pretrained(folder), loaded once per module (clear_reference_caches)."""
    return _reference_tokenizer(str(folder))


@functools.lru_cache(maxsize=None)
def _reference_tokenizer(folder: str):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(folder)


def clear_reference_caches():
    """Forget the per-folder reference objects (conftest.py does it after each test module, so
    a module's changes to a tokenizer, such as src_lang, stay in it). The GGUF ones are kept for
    the session: they are slow to load and read-only."""
    reference_pipeline.cache_clear()
    reference_sentence_transformer.cache_clear()
    _reference_model.cache_clear()
    _reference_tokenizer.cache_clear()


def reference_outputs(task, folder, inputs, params=None) -> list:
    """pipe(x, **params) for each input, as JSON values (what one --jsonl line must equal)."""
    pipe = reference_pipeline(task, str(folder))
    params = params or {}
    return [_jsonable(pipe(x, **params)) for x in inputs]


def reference_call(task, folder, inputs, params=None):
    """pipe(inputs, **params) for one str or a list (what hfpipe INPUT... must print)."""
    pipe = reference_pipeline(task, str(folder))
    return _jsonable(pipe(inputs, **(params or {})))


def reference_sentence_embeddings(folder, inputs) -> list:
    model = reference_sentence_transformer(str(folder))
    return [[float(v) for v in model.encode(x)] for x in inputs]


def _jsonable(x):
    """Round-trip through JSON as hfpipe's output is (tuples -> lists, numpy scalars -> float)."""
    # tolist() turns tensors (text2text's *_token_ids) into lists and 0-d ones / numpy scalars into numbers.
    return json.loads(json.dumps(x, default=lambda o: o.tolist() if hasattr(o, "tolist") else o.item()))


# ------------------------------------------------------------------------------ GGUF reference side
# transformers' GGUF loader is slow: it parses the file's metadata (every token string a numpy
# slice) once for the config and again for the weights or the tokenizer, and de-quantises in
# numpy (SmolLM2-135M: ~60 s for the model; Gemma-3-270M's 262,144-token tokenizer: ~65 s).
# The metadata is parsed once per process (_share_gguf_metadata), and each tokenizer and model
# is loaded once per session and shared by the tests of test_gguf_pipeline.py
# and test_gguf_decoder.py; their xdist_group marks keep those tests on one worker, so one
# worker pays each load once (scripts/test.sh runs pytest with --dist loadgroup).

@functools.lru_cache(maxsize=None)
def _gguf_metadata(path: str, mtime_ns: int, size: int):
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint
    return load_gguf_checkpoint(path, return_tensors=False)


@functools.lru_cache(maxsize=None)
def _share_gguf_metadata():
    """Parse a GGUF file's metadata once per process instead of three times.

    Loading a tokenizer and a model from one .gguf, transformers calls
    load_gguf_checkpoint(path, return_tensors=False) three times over (AutoTokenizer's config,
    the tokenizer, AutoModel's config), and a fourth time with the tensors; each metadata parse
    reads every token string through numpy (measured, CPU: 28.5 s for Gemma-3's 262,144 tokens,
    8.6 s for SmolLM2). The metadata-only result is a function of the file alone, so those
    calls get a deep copy of the first one (keyed by path, mtime and size); the call with the
    tensors, and everything else transformers does, runs unchanged."""
    import copy
    import importlib
    from transformers import modeling_gguf_pytorch_utils as gguf_utils
    original = gguf_utils.load_gguf_checkpoint

    def load_gguf_checkpoint(gguf_checkpoint_path, return_tensors=False, model_to_load=None):
        if return_tensors or model_to_load is not None:
            return original(gguf_checkpoint_path, return_tensors=return_tensors, model_to_load=model_to_load)
        st = os.stat(gguf_checkpoint_path)
        return copy.deepcopy(_gguf_metadata(os.fspath(gguf_checkpoint_path), st.st_mtime_ns, st.st_size))

    for name in ("transformers.configuration_utils", "transformers.tokenization_utils_fast",
                 "transformers.models.auto.tokenization_auto"):
        module = importlib.import_module(name)
        assert module.load_gguf_checkpoint is original, f"{name}.load_gguf_checkpoint is not transformers' own"
        module.load_gguf_checkpoint = load_gguf_checkpoint


@functools.lru_cache(maxsize=None)
def reference_gguf_tokenizer(path: str):
    """AutoTokenizer.from_pretrained(dir, gguf_file=name), as pipeline() loads it."""
    _quiet_transformers()
    _share_gguf_metadata()
    from transformers import AutoTokenizer
    p = Path(path)
    return AutoTokenizer.from_pretrained(str(p.parent), gguf_file=p.name)


@functools.lru_cache(maxsize=None)
def reference_gguf_model(path: str):
    """AutoModelForCausalLM.from_pretrained(dir, gguf_file=name) de-quantised to float32."""
    _quiet_transformers()
    _share_gguf_metadata()
    import torch
    from transformers import AutoModelForCausalLM
    p = Path(path)
    return AutoModelForCausalLM.from_pretrained(str(p.parent), gguf_file=p.name, dtype=torch.float32).eval()


@functools.lru_cache(maxsize=None)
def reference_gguf_generator(path: str):
    """The text-generation pipeline over the shared model and tokenizer: what
    pipeline("text-generation", model=dir, model_kwargs={"gguf_file": name}, dtype=float32)
    builds (it loads the same two objects the same way, the file parsed four times over)."""
    _quiet_transformers()
    from transformers import pipeline
    return pipeline("text-generation", model=reference_gguf_model(path),
                    tokenizer=reference_gguf_tokenizer(path), device="cpu")
