"""Oniguruma regex syntax in tokenizer.json (Split pre-tokenizer, Replace normalizer) against `tokenizers`.

hfpipe runs the patterns through PCRE2 after translating them (src/text/onig_syntax.cpp). Each
pattern here gets its own tokenizer.json, built and run with the `tokenizers` package, and hfpipe
must give the same offsets (Split) and ids (Replace) on every line of the parity corpus plus every
Unicode code point (in chunks), so a class that differs on any single character fails. Patterns
hfpipe cannot translate faithfully must be refused with an error naming the construct.
"""
import json

import pytest

from test_tokenizer_parity import corpus_lines, run_hfpipe

POSIX = ["alpha", "upper", "lower", "digit", "alnum", "space", "blank", "cntrl", "punct", "xdigit", "word",
         "graph", "print", "ascii"]

PATTERNS = (
    [f"[[:{n}:]]+" for n in POSIX] + [f"[[:^{n}:]]+" for n in POSIX]
    + [f"[^[:{n}:]_]+" for n in POSIX] + [f"[a-c[:{n}:]\\-]+" for n in POSIX]
    + [
        # nested classes, intersections (empty operands are empty sets), negation of the whole
        r"[a-z[0-9]]+", r"[^a-c[x-z]]+", r"[a-z&&[^aeiou]]+", r"[^a-z&&b-y]+", r"[\p{L}&&[^a-z]]+",
        r"[\w&&[^\d_]]+", r"[^\w&&\p{Latin}]+", r"[[:alpha:]&&[:^lower:]]+", r"[^a-c[x-z]&&\p{Ll}]+", r"[a&&]|b",
        r"[&&a]|b", r"[\s&&[^\n]]+", r"[[:punct:]&&[^\p{P}]]+",
        # shorthands and properties with Oniguruma's tables (newer Unicode than PCRE2's)
        r"\w+", r"\W+", r"[\w]+", r"[^\W\d_]+", r"\s+", r"[^\S\n]+", r"\d+", r"[\D]+", r"\h+", r"\p{L}+", r"\P{L}+",
        r"\p{^N}+", r"\p{Letter}+", r"\p{Mn}+", r"\p{Han}+", r"\p{Alpha}+", r"\p{Word}+", r"[\p{Word}]+", r"\p{Punct}+", r"[\p{Punct}]+",
        r" ?[^\s\p{L}\p{N}]+", r"\p{Uppercase_Letter}\p{Ll}+", r"\p{Emoji}",
        # anchors, boundaries, options and other syntax
        r"\b\w", r"\w\b", r"\B.", r"^\w+", r"\w+$", r"(?m).{1,5}", r"(?i:'s|'t|'re|'ve|'m|'ll|'d)", r"(?i)[a-z]+",
        r"\v|\t", r"\u00e9|\x{1F600}", r"a{,2}", r"\d{2,3}?", r"\w++", r"(?>\w+|\d)", r"\R", r"\w+\K\d",
        r"[\b\x41-\x43]", r"[]a]+", r"[^]a]+", r"[a-]+", r"[-a]+", r"\p{Lu}(?=\p{Ll})",
        # GPT-2 and Llama 3
        r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+",
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    ]
)

# Oniguruma syntax PCRE2 would read differently and hfpipe refuses, and three patterns Oniguruma
# refuses too (\xe9, [:foo:], a range from a class): (pattern, text in the error).
REFUSED = [
    (r"(?i)ss", "multi-character case folding"), ("(?i)gro\u00dfe", "non-ASCII literal"),
    (r"(?i)[[:upper:]]", "under (?i)"), (r"(?i)[\p{Lu}]", "under (?i)"), (r"a{1,2}+", "interval followed by '+'"),
    (r"\QQ\E", "\\Q"), (r"\X", "\\X"), (r"(?x) a b", "extended syntax"), (r"\xe9", "above 0x7F"),
    (r"\p{In_Basic_Latin}", "\\p{In_Basic_Latin}"), (r"[[:foo:]]", "[:foo:]"), (r"[[:alpha:]-z]", "range"),
]


def all_code_point_chunks(size=8192):
    text = "".join(chr(c) for c in range(1, 0x110000) if not 0xD800 <= c <= 0xDFFF and c != 0x0A)
    return [text[i:i + size] for i in range(0, len(text), size)]


@pytest.fixture(scope="module")
def inputs():
    return corpus_lines() + all_code_point_chunks()


def tokenizer_json(normalizer, pre_tokenizer):
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": normalizer,
           "pre_tokenizer": pre_tokenizer, "post_processor": None, "decoder": None,
           "model": {"type": "WordLevel", "vocab": {"[UNK]": 0, "\u2581": 1}, "unk_token": "[UNK]"}}


def write_tokenizer(folder, normalizer, pre_tokenizer):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(json.dumps(tokenizer_json(normalizer, pre_tokenizer)))
    folder.mkdir()
    tok.save(str(folder / "tokenizer.json"))
    return tok


def mismatches(tok, folder, lines):
    got = run_hfpipe("tokenize", folder, {"add_special_tokens": False}, lines)
    bad = []
    for line, enc, g in zip(lines, tok.encode_batch(lines, add_special_tokens=False), got):
        expected = {"input_ids": enc.ids, "offset_mapping": [list(o) for o in enc.offsets]}
        actual = {k: g.get(k) for k in expected} if "error" not in g else g
        if actual != expected:
            bad.append((line[:80], expected, actual))
    return bad


def split_regex(pattern, behavior="isolated"):
    return {"type": "Split", "pattern": {"Regex": pattern}, "behavior": behavior.capitalize().replace("_", ""),
            "invert": False}


@pytest.mark.parametrize("pattern", PATTERNS)
def test_split_regex_parity(pattern, inputs, tmp_path):
    # Isolated: every match is its own piece, so the offsets show each match exactly.
    tok = write_tokenizer(tmp_path / "v", None, split_regex(pattern))
    bad = mismatches(tok, tmp_path / "v", inputs)
    assert not bad, f"{len(bad)} mismatching lines for {pattern!r}; first: {bad[0]}"


@pytest.mark.parametrize("pattern", PATTERNS[::3])
def test_replace_regex_parity(pattern, inputs, tmp_path):
    # Replace every match by U+2581 and split there: ids show where replacements landed and the
    # offsets how they map back to the original text.
    normalizer = {"type": "Replace", "pattern": {"Regex": pattern}, "content": "\u2581"}
    pre = {"type": "Split", "pattern": {"String": "\u2581"}, "behavior": "Isolated", "invert": False}
    tok = write_tokenizer(tmp_path / "v", normalizer, pre)
    bad = mismatches(tok, tmp_path / "v", inputs)
    assert not bad, f"{len(bad)} mismatching lines for {pattern!r}; first: {bad[0]}"


@pytest.mark.parametrize("pattern,named", REFUSED)
def test_unsupported_syntax_is_refused(pattern, named, tmp_path):
    folder = tmp_path / "v"
    folder.mkdir()
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer_json(None, split_regex(pattern))), encoding="utf-8")
    got = run_hfpipe("tokenize", tmp_path / "v", {}, ["abc"])
    assert "error" in got[0], f"{pattern!r} was not refused: {got[0]}"
    assert named in got[0]["error"], got[0]["error"]
