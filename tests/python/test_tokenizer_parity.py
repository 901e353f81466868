"""Parity of `hfpipe tokenize` / `hfpipe detokenize` with transformers' fast tokenizers.

For every tokenizer folder, every line of tokenizer_corpus.txt is encoded by hfpipe (one
process per parameter set, `--jsonl`) and by `transformers.AutoTokenizer` (fast), alone and
as pairs of consecutive lines, with and without truncation (max_length 16, stride,
overflowing windows), padding and special tokens; ids, type ids, attention mask, offsets and
tokens must be identical, and so must decode() with and without skip_special_tokens.

Environment: HFPIPE_BIN (default <repo>/build/hfpipe); the shared folder is <repo>/../shared.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

os.environ.setdefault("RUST_BACKTRACE", "0")  # reference panics are expected on some inputs; keep logs short

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
TOKENIZERS = SHARED / "tokenizers"
HFPIPE = Path(os.environ.get("HFPIPE_BIN", REPO / "build" / "hfpipe"))
CORPUS = Path(__file__).with_name("tokenizer_corpus.txt")

# Folders of ../shared/tokenizers whose tokenizers use only the implemented components.
SHARED_FOLDERS = [
    "bert-base-uncased",
    "bert-base-cased-vocab",
    "bert-base-uncased-variant",
    "all-MiniLM-L6-v2",
    "roberta-base",
    "gpt2",
    "gpt2-ortext",
    # Other folders that need only these components (transformers classes with their own rules:
    # CodeGen, Whisper, CLIP's decode, Cohere's and Llama's bos/eos templates).
    "phi-2",
    "falcon",
    "cohere-embed",
    "clip",
    "whisper-tiny",
    "whisper-tiny.en",
    "whisper-large-v3",
    "phi-3-mini",
    # Unigram + Precompiled + Metaspace.
    "t5-small",
]
# Folders AutoTokenizer cannot open (a slow-only class, remote code) but whose tokenizer.json
# PreTrainedTokenizerFast.from_pretrained loads with the folder's tokenizer_config.json: the
# reference is that, and hfpipe treats an unknown class the same way.
GENERIC_FOLDERS = [
    "marian-nmt-sample",  # MarianTokenizer is slow-only; tokenizer.json: Precompiled, Metaspace, Unigram
    "chatglm",  # ChatGLMTokenizer is remote code; tokenizer.json: BPE + byte fallback, Split, Metaspace decoder
]
# Folders whose tokenizer.json the `tokenizers` library itself refuses: hfpipe must refuse too.
REFUSED_FOLDERS = [
    # U+00A0 in four tokens is written as a plain space, so the merge "   " is not two tokens
    # (test_llama2_pair_merges_parity covers the same vocabulary and merges in pair form).
    "llama2",
    "added-tokens-sample",  # "merges": {} is not a list
]
PIP_MPNET = "pip:all-mpnet-base-v2"

# Parameter sets: (name, params, which inputs).
PARAM_SETS = [
    ("plain", {}, "all"),
    ("no_special", {"add_special_tokens": False}, "all"),
    ("trunc16_stride4_overflow", {"truncation": True, "max_length": 16, "stride": 4, "return_overflowing_tokens": True}, "single"),
    ("trunc16_only_second_overflow", {"truncation": "only_second", "max_length": 16, "stride": 2, "return_overflowing_tokens": True}, "pair"),
    ("trunc16_longest_first", {"truncation": "longest_first", "max_length": 16}, "all"),
    ("pad_max_length_24", {"padding": "max_length", "max_length": 24, "truncation": True}, "all"),
    ("pad_longest_multiple_8_left", {"padding": True, "pad_to_multiple_of": 8, "padding_side": "left"}, "all"),
]
MAX_REPORTED = 5
# Parameter sets run on every input; the others on every SUBSET_STEP-th (the whole file must
# stay under three minutes).
FULL_SETS = ("plain", "no_special")
SUBSET_STEP = 4


def corpus_lines():
    text = CORPUS.read_bytes().decode("utf-8")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def train_corpus_spm(prefix: Path, kind: str, vocab_size: int, **options) -> Path:
    """A sentencepiece model of `kind` trained on CORPUS (one thread: deterministic) with a
    user-defined <sep2> and a control <ctl>; returns <prefix>.model."""
    import sentencepiece as spm

    spm.SentencePieceTrainer.train(input=str(CORPUS), model_prefix=str(prefix), model_type=kind, vocab_size=vocab_size,
                                   num_threads=1, character_coverage=0.98, minloglevel=2,
                                   user_defined_symbols=["<sep2>"], control_symbols=["<ctl>"], **options)
    return prefix.with_suffix(".model")


def build_inputs():
    lines = corpus_lines()
    singles = [(line, None) for line in lines]
    # Multi-line texts: newlines inside one input.
    singles += [(lines[i] + "\n" + lines[i + 1], None) for i in range(0, min(len(lines) - 1, 120), 6)]
    pairs = [(lines[i], lines[i + 1]) for i in range(0, len(lines) - 1, 2)]
    return singles, pairs


@pytest.fixture(scope="session")
def mpnet_folder(real_models):
    # The real all-mpnet-base-v2 folder, reassembled from its PyPI parts by
    # scripts/assemble_real_models.py (conftest's real_models fixture).
    return real_models / "all-mpnet-base-v2"


def run_hfpipe(command, folder, params, lines):
    cmd = [str(HFPIPE), command, "--model", str(folder), "--jsonl"]
    for k, v in params.items():
        cmd += ["--param", f"{k}={json.dumps(v)}"]
    stdin = "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines)
    proc = subprocess.run(cmd, input=stdin.encode("utf-8"), capture_output=True, timeout=600)
    out = [json.loads(line) for line in proc.stdout.decode("utf-8").split("\n") if line]
    if not out and proc.returncode != 0 and proc.stderr.startswith(b"hfpipe: error:"):
        # The parameters themselves were refused (e.g. padding without a pad token).
        return [{"error": proc.stderr.decode("utf-8", "replace").strip()} for _ in lines]
    assert len(out) == len(lines), f"hfpipe printed {len(out)} lines for {len(lines)} inputs: {proc.stderr.decode()[:2000]}"
    return out


def reference_encode(tok, text, pair, params):
    try:
        enc = tok(text, text_pair=pair, return_offsets_mapping=True, **params)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # noqa: BLE001 - any failure (even a Rust panic) is compared as a failure
        return {"error": str(e)}
    out = {}
    for k, v in enc.items():
        if k == "offset_mapping":
            v = [[list(o) for o in w] for w in v] if params.get("return_overflowing_tokens") else [list(o) for o in v]
        out[k] = v
    if params.get("return_overflowing_tokens"):
        out["tokens"] = [tok_enc.tokens for tok_enc in enc.encodings]
    else:
        out["tokens"] = enc.tokens()
    return out


def reference_encode_all(tok, inputs, params):
    """reference_encode of every (text, pair), batched where batching gives the same result.

    Padding (to the batch's longest) and overflowing windows (flattened across the batch)
    change with batching, and an empty text_pair is no pair only in a single call: those go
    one by one, as does a batch the reference refuses (one failing input fails the batch).
    """
    out = [None] * len(inputs)
    if not (params.get("padding") or params.get("return_overflowing_tokens")):
        for with_pair in (False, True):
            idx = [i for i, (_, p) in enumerate(inputs) if (p is not None and p != "") == with_pair and p != ""]
            if not idx:
                continue
            texts = [inputs[i][0] for i in idx]
            pairs = [inputs[i][1] for i in idx] if with_pair else None
            try:
                enc = tok(texts, text_pair=pairs, return_offsets_mapping=True, **params)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException:  # noqa: BLE001 - retried one by one below
                continue
            for k, i in enumerate(idx):
                item = {key: (([list(o) for o in v[k]]) if key == "offset_mapping" else v[k]) for key, v in enc.items()}
                item["tokens"] = enc.encodings[k].tokens
                out[i] = item
    return [o if o is not None else reference_encode(tok, t, p, params) for o, (t, p) in zip(out, inputs)]


def compare(name, expected, got, mismatches, where):
    if "error" in expected or "error" in got:
        if ("error" in expected) != ("error" in got):
            mismatches.append((name, where, expected, got))
        return
    if expected != got:
        mismatches.append((name, where, expected, got))


def parity(folder, generic=False, param_sets=PARAM_SETS):
    """Compares hfpipe with the reference on every input; returns {param set: mismatches}."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    if not HFPIPE.exists():
        pytest.fail(f"{HFPIPE} is not built (set HFPIPE_BIN)")
    tok = (PreTrainedTokenizerFast if generic else AutoTokenizer).from_pretrained(str(folder))
    assert tok.is_fast
    singles, pairs = build_inputs()
    mismatches = []
    counts = {}
    for name, params, which in param_sets:
        inputs = (singles if which in ("all", "single") else []) + (pairs if which in ("all", "pair") else [])
        if name not in FULL_SETS:
            inputs = inputs[::SUBSET_STEP]  # truncation / padding: every few inputs keep the run short
        lines = [text if pair is None else {"text": text, "text_pair": pair} for text, pair in inputs]
        got = run_hfpipe("tokenize", folder, params, lines)
        before = len(mismatches)
        for (text, pair), e, g in zip(inputs, reference_encode_all(tok, inputs, params), got):
            compare(name, e, g, mismatches, (text, pair))
        counts[name] = len(mismatches) - before
    # Decode the reference ids of every single input the reference can encode.
    decodable = []
    for (text, _), enc in zip(singles, reference_encode_all(tok, singles, {})):
        if "error" not in enc:
            decodable.append((text, enc["input_ids"]))
    ids = [i for _, i in decodable]
    for skip in (False, True):
        name = f"decode_skip_special={skip}"
        got = run_hfpipe("detokenize", folder, {"skip_special_tokens": skip}, ids)
        before = len(mismatches)
        for (text, i), g in zip(decodable, got):
            try:
                expected = tok.decode(i, skip_special_tokens=skip)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as e:  # noqa: BLE001 - a Rust panic: hfpipe must fail too
                expected = {"error": str(e)}
            if isinstance(expected, dict) != isinstance(g, dict) or (isinstance(expected, str) and expected != g):
                mismatches.append((name, (text, None), expected, g))
        counts[name] = len(mismatches) - before
    total = sum(counts.values())
    print(f"\n{folder.name}: {total} mismatches " + json.dumps(counts))
    for name, where, expected, got in mismatches[:MAX_REPORTED]:
        print(f"  [{name}] input={where!r}\n    transformers: {json.dumps(expected, ensure_ascii=False)[:1500]}\n"
              f"    hfpipe:       {json.dumps(got, ensure_ascii=False)[:1500]}")
    assert total == 0, f"{folder.name}: {total} mismatches {counts}"
    return counts


@pytest.mark.parametrize("name", SHARED_FOLDERS)
def test_shared_tokenizer_parity(name):
    folder = TOKENIZERS / name
    if not folder.is_dir():
        pytest.fail(f"{folder} is not there")
    parity(folder)


@pytest.mark.parametrize("name", GENERIC_FOLDERS)
def test_generic_tokenizer_parity(name):
    parity(TOKENIZERS / name, generic=True)


@pytest.mark.parametrize("name", REFUSED_FOLDERS)
def test_refused_tokenizer_json(name):
    from tokenizers import Tokenizer

    path = TOKENIZERS / name / "tokenizer.json"
    with pytest.raises(Exception):
        Tokenizer.from_file(str(path))
    proc = subprocess.run([str(HFPIPE), "tokenize", "--model", str(path.parent), "--jsonl"], input=b'"x"\n',
                          capture_output=True, timeout=60)
    assert proc.returncode != 0 and b"tokenizer.json" in proc.stderr, proc.stderr


def test_llama2_pair_merges_parity(tmp_path):
    """llama2's tokenizer.json with its merges re-serialised as [a, b] pairs: the form
    scripts/make_tiny_models.py gives the tiny Llama / Mistral / Gemma models, read by both."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("make_tiny_models", REPO / "scripts" / "make_tiny_models.py")
    mtm = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_tiny_models", mtm)  # its dataclasses look their module up
    spec.loader.exec_module(sys.modules["make_tiny_models"])
    mtm = sys.modules["make_tiny_models"]
    folder = tmp_path / "llama2-pairs"
    folder.mkdir()
    for f in (TOKENIZERS / "llama2").iterdir():
        if f.name != "SOURCE.txt":
            (folder / f.name).write_bytes(f.read_bytes())
    (folder / "tokenizer.json").write_bytes(mtm.llama2_pair_merges((TOKENIZERS / "llama2" / "tokenizer.json").read_bytes()))
    parity(folder)


def test_pip_mpnet_parity(mpnet_folder):
    parity(mpnet_folder)
