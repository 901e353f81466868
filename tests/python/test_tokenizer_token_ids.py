"""Token ids at the edges of u32 / int32, hfpipe against the `tokenizers` package.

The library reads ids as u32. hfpipe holds them as int32 (its encodings, the models'
embedding lookups), so for each tokenizer.json below:
  - the library refuses it (a float, a negative id, 2^32): hfpipe refuses it too;
  - the library accepts it and every id it gives fits int32: hfpipe gives the same ids;
  - the library accepts an id in [2^31, 2^32): hfpipe refuses the file at load, naming the id
    and the file (never a wrapped, negative id).
tests/cpp/test_text_token_ids.cpp covers the non-JSON files (vocab.json, tiktoken,
sentencepiece) and says why each path is safe.
"""
import json
import subprocess

import pytest

from test_tokenizer_parity import HFPIPE

INT32_MAX = 2**31 - 1


def added(content, id_=0):
    return {"id": id_, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": False, "special": True}


def word_level(vocab, **extra):
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": None,
            "pre_tokenizer": {"type": "WhitespaceSplit"}, "post_processor": None, "decoder": None,
            "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}, **extra}


def template(ids, type_id=0):
    return {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": type_id}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": ids, "tokens": ["[CLS]"]}}}


V = {"[UNK]": 0, "a": 1}
CASES = {
    "vocab_int32_max": word_level({"[UNK]": 0, "a": INT32_MAX}),
    "vocab_2^31": word_level({"[UNK]": 0, "a": 2**31}),
    "vocab_u32_max": word_level({"[UNK]": 0, "a": 2**32 - 1}),
    "vocab_2^32": word_level({"[UNK]": 0, "a": 2**32}),
    "vocab_float": word_level({"[UNK]": 0, "a": 5.0}),
    "vocab_negative": word_level({"[UNK]": 0, "a": -1}),
    "bpe_vocab_2^31": dict(word_level(V), model={"type": "BPE", "vocab": {"a": 0, "b": 2**31}, "merges": []}),
    "added_id_u32_max_ignored": word_level(V, added_tokens=[added("[X]", 2**32 - 1)]),
    "added_id_2^32": word_level(V, added_tokens=[added("[X]", 2**32)]),
    "added_id_negative": word_level(V, added_tokens=[added("[X]", -1)]),
    "added_after_model_token": word_level({"[UNK]": 0, "a": 1, "b": 7},
                                          added_tokens=[added("b"), added("[X]"), added("[Y]")]),
    "added_after_int32_max_model_token": word_level({"[UNK]": 0, "a": INT32_MAX},
                                                    added_tokens=[added("a"), added("[X]"), added("[Y]")]),
    "bert_sep_2^31": word_level(V, post_processor={"type": "BertProcessing", "sep": ["[SEP]", 2**31],
                                                   "cls": ["[CLS]", 1]}),
    "template_ids_int32_max": word_level(V, post_processor=template([INT32_MAX])),
    "template_ids_2^31": word_level(V, post_processor=template([2**31])),
    "template_ids_float": word_level(V, post_processor=template([2.0])),
    "template_type_id_int32_max": word_level(V, post_processor=template([1], INT32_MAX)),
    "template_type_id_2^31": word_level(V, post_processor=template([1], 2**31)),
    "pad_id_2^31": word_level(V, padding={"strategy": {"Fixed": 4}, "direction": "Right", "pad_to_multiple_of": None,
                                          "pad_id": 2**31, "pad_type_id": 0, "pad_token": "[PAD]"}),
    "pad_id_negative": word_level(V, padding={"strategy": {"Fixed": 4}, "direction": "Right", "pad_to_multiple_of": None,
                                              "pad_id": -1, "pad_type_id": 0, "pad_token": "[PAD]"}),
    "pad_type_id_2^32": word_level(V, padding={"strategy": {"Fixed": 4}, "direction": "Right",
                                               "pad_to_multiple_of": None, "pad_id": 0, "pad_type_id": 2**32,
                                               "pad_token": "[PAD]"}),
    "unigram_unk_id_2^31": dict(word_level(V), model={"type": "Unigram", "unk_id": 2**31,
                                                      "vocab": [["<unk>", 0.0], ["a", -1.0]]}),
    "unigram_unk_id_float": dict(word_level(V), model={"type": "Unigram", "unk_id": 0.0,
                                                       "vocab": [["<unk>", 0.0], ["a", -1.0]]}),
}
TEXT = "a b [X] [Y]"


def reference(tokenizer_json: str):
    """(ids, type_ids, largest id or type id the file can produce) from the `tokenizers`
    package, or None when it refuses the file."""
    from tokenizers import Tokenizer
    try:
        tok = Tokenizer.from_str(tokenizer_json)
    except Exception:
        return None
    pad = tok.padding or {}  # the file's padding: its pad ids count too
    tok.no_padding()  # as transformers' tokenizer(text) does
    e = tok.encode(TEXT)
    return e.ids, e.type_ids, max(e.ids + e.type_ids + [pad.get("pad_id", 0), pad.get("pad_type_id", 0)])


@pytest.mark.parametrize("name", sorted(CASES))
def test_token_id_range_matches_tokenizers_or_is_refused(name, tmp_path):
    text = json.dumps(CASES[name])
    (tmp_path / "tokenizer.json").write_text(text)
    want = reference(text)
    proc = subprocess.run([str(HFPIPE), "tokenize", "--model", str(tmp_path), TEXT], capture_output=True, timeout=60)
    stderr = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode >= 0, f"hfpipe crashed (signal {-proc.returncode}): {stderr[-1000:]}"
    if want is None:
        assert proc.returncode != 0 and "hfpipe: error:" in stderr, (
            f"tokenizers refuses {name}; hfpipe printed {proc.stdout[:300]!r}")
        assert "tokenizer.json" in stderr, stderr
        return
    ids, type_ids, largest = want
    if largest > INT32_MAX:
        assert proc.returncode != 0, f"{name}: an id past int32 was accepted: {proc.stdout[:300]!r}"
        assert str(tmp_path / "tokenizer.json") in stderr and "larger than 2147483647" in stderr, stderr
        assert str(largest) in stderr, stderr
        return
    assert proc.returncode == 0, f"{name}: tokenizers gives {ids}; hfpipe failed: {stderr[-1000:]}"
    got = json.loads(proc.stdout)
    assert got["input_ids"] == ids, name
    if "token_type_ids" in got:
        assert got["token_type_ids"] == type_ids, name


def test_decoder_start_token_id_outside_int32_is_refused():
    """A text2text-generation parameter: decoder_start_token_id 2^32 was cast to int32, i.e. 0,
    T5's real start id, so generation went on as if it were valid. Now a clear error.
    (The tiny models folder is read as it is, without the tiny_models fixture's rebuild.)"""
    import os
    from pathlib import Path
    folder = Path(os.environ.get("HFPIPE_TINY_MODELS", HFPIPE.parent / "tiny-models")) / "t5-seq2seq"
    if not folder.is_dir():
        pytest.skip(f"no tiny model at {folder}")
    for value in (2**32, -(2**31) - 1):
        proc = subprocess.run([str(HFPIPE), "text2text-generation", "--model", str(folder), "--param",
                               f"decoder_start_token_id={value}", "--param", "max_new_tokens=2", "hello"],
                              capture_output=True, timeout=300)
        stderr = proc.stderr.decode("utf-8", "replace")
        assert proc.returncode > 0, f"{value}: exit {proc.returncode}, stdout {proc.stdout[:200]!r}"
        assert "decoder_start_token_id" in stderr and str(value) in stderr, stderr
