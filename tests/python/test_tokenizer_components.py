"""Every tokenizer.json component and option, one variant at a time, against `tokenizers`.

The shared tokenizer folders use only some of the components and options; here tokenizers
are assembled with the `tokenizers` package itself (models taken from the shared folders or
trained on the corpus, deterministic), saved as tokenizer.json, and compared with hfpipe on
the whole corpus through test_tokenizer_parity.parity (single inputs and pairs, with and
without special tokens, decode).
"""
import functools
import json

import pytest

from test_tokenizer_parity import TOKENIZERS, corpus_lines, parity

PARAM_SETS = [
    ("plain", {}, "all"),
    ("no_special", {"add_special_tokens": False}, "all"),
]


def load(name):
    return json.loads((TOKENIZERS / name / "tokenizer.json").read_text(encoding="utf-8"))


def trained_bpe(**kwargs):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="[UNK]", **kwargs))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=3000, special_tokens=["[UNK]", "[CLS]", "[SEP]", "[PAD]"],
                                  show_progress=False, **kwargs)
    tok.train_from_iterator(corpus_lines(), trainer)
    return json.loads(tok.to_str())["model"]


def bert_template():
    return {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [101], "tokens": ["[CLS]"]},
                               "[SEP]": {"id": "[SEP]", "ids": [102], "tokens": ["[SEP]"]}}}


def unigram_with_bytes():
    m = load("t5-small")["model"]
    m = dict(m, byte_fallback=True)
    m["vocab"] = m["vocab"] + [[f"<0x{b:02X}>", -30.0] for b in range(256)]
    return m


@functools.lru_cache(maxsize=None)
def variants():
    bert = load("bert-base-uncased")
    t5 = load("t5-small")
    gpt2 = load("gpt2")
    wp = bert["model"]
    uni = t5["model"]
    bpe = gpt2["model"]
    word_level = {"type": "WordLevel", "vocab": wp["vocab"], "unk_token": "[UNK]"}
    meta = lambda scheme, split=True: {"type": "Metaspace", "replacement": "▁", "prepend_scheme": scheme, "split": split}
    bl = lambda aps, trim, regex=True: {"type": "ByteLevel", "add_prefix_space": aps, "trim_offsets": trim, "use_regex": regex}
    wp_dec = {"type": "WordPiece", "prefix": "##", "cleanup": True}
    eot = lambda type_id: {"SpecialToken": {"id": "<|endoftext|>", "type_id": type_id}}
    out = {
        # Normalizers
        "nfd_strip_accents_lowercase": dict(normalizer={"type": "Sequence", "normalizers": [
            {"type": "NFD"}, {"type": "StripAccents"}, {"type": "Lowercase"}]},
            pre_tokenizer={"type": "Whitespace"}, model=wp, post_processor=bert_template(), decoder=wp_dec),
        "nfkd_whitespace_split": dict(normalizer={"type": "NFKD"}, pre_tokenizer={"type": "WhitespaceSplit"}, model=wp,
                                      decoder=wp_dec),
        "bert_normalizer_options": dict(normalizer={"type": "BertNormalizer", "clean_text": False,
                                                    "handle_chinese_chars": False, "strip_accents": True, "lowercase": False},
                                        pre_tokenizer={"type": "BertPreTokenizer"}, model=wp,
                                        post_processor={"type": "BertProcessing", "sep": ["[SEP]", 102], "cls": ["[CLS]", 101]},
                                        decoder=wp_dec),
        "nfkc_strip_replace_prepend": dict(normalizer={"type": "Sequence", "normalizers": [
            {"type": "NFKC"}, {"type": "Strip", "strip_left": True, "strip_right": True},
            {"type": "Replace", "pattern": {"Regex": "\\d+"}, "content": "#"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}, {"type": "Prepend", "prepend": "▁"}]},
            model=uni, decoder={"type": "Sequence", "decoders": [
                {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
                {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}),
        "nfc_lowercase_byte_level_normalizer": dict(normalizer={"type": "Sequence", "normalizers": [
            {"type": "NFC"}, {"type": "Lowercase"}, {"type": "ByteLevel"}]}, model=bpe,
            decoder=bl(True, True)),
        # Metaspace and Unigram
        "metaspace_first_nosplit": dict(normalizer=t5["normalizer"], pre_tokenizer=meta("first", False), model=uni,
                                        decoder=meta("first", False)),
        "metaspace_never": dict(pre_tokenizer=meta("never"), model=uni, decoder=meta("never")),
        "unigram_byte_fallback": dict(pre_tokenizer=meta("always"), model=unigram_with_bytes(), decoder={
            "type": "Sequence", "decoders": [{"type": "ByteFallback"}, meta("always")]}),
        "unigram_no_unk": dict(pre_tokenizer=meta("always"), model=dict(uni, unk_id=None), decoder=meta("always")),
        # Other pre-tokenizers
        "unicode_scripts": dict(pre_tokenizer={"type": "UnicodeScripts"}, model=uni, decoder={"type": "Fuse"}),
        "char_delimiter_wordlevel": dict(pre_tokenizer={"type": "CharDelimiterSplit", "delimiter": " "}, model=word_level),
        "fixed_length_4": dict(pre_tokenizer={"type": "FixedLength", "length": 4}, model=uni),
        "punctuation_digits": dict(normalizer={"type": "Lowercase"}, pre_tokenizer={"type": "Sequence", "pretokenizers": [
            {"type": "WhitespaceSplit"}, {"type": "Punctuation", "behavior": "MergedWithPrevious"},
            {"type": "Digits", "individual_digits": True}]}, model=wp, decoder=wp_dec),
        "punctuation_merged_with_next": dict(normalizer={"type": "Lowercase"}, pre_tokenizer={
            "type": "Sequence", "pretokenizers": [{"type": "Punctuation", "behavior": "MergedWithNext"},
                                                  {"type": "Digits", "individual_digits": False}]}, model=wp),
        "split_invert_contiguous": dict(normalizer={"type": "Lowercase"}, pre_tokenizer={
            "type": "Split", "pattern": {"Regex": "\\w+"}, "behavior": "Contiguous", "invert": True}, model=wp),
        # Negated shorthands inside character classes (Oniguruma: in a class, ² ½ are not \w).
        "split_negated_classes": dict(normalizer={"type": "Lowercase"}, pre_tokenizer={"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "[^\\S\\n]+"}, "behavior": "Removed", "invert": False},
            {"type": "Split", "pattern": {"Regex": "[^\\W\\d_]+"}, "behavior": "Isolated", "invert": False},
            {"type": "Split", "pattern": {"Regex": "[^\\D]+"}, "behavior": "Isolated", "invert": False},
            {"type": "Split", "pattern": {"Regex": "[\\W_]"}, "behavior": "MergedWithNext", "invert": False}]},
            model=wp),
        "split_string_removed": dict(normalizer={"type": "Lowercase"}, pre_tokenizer={
            "type": "Split", "pattern": {"String": " "}, "behavior": "Removed", "invert": False}, model=wp),
        "byte_level_no_regex_prefix_untrimmed": dict(pre_tokenizer=bl(True, False, False), model=bpe,
                                                     post_processor=bl(True, False), decoder=bl(True, True)),
        "byte_level_prefix_roberta_untrimmed": dict(pre_tokenizer=bl(True, False), model=bpe, post_processor={
            "type": "RobertaProcessing", "sep": ["<|endoftext|>", 50256], "cls": ["<|endoftext|>", 50256],
            "trim_offsets": False, "add_prefix_space": True}, decoder=bl(True, True)),
        "post_processor_sequence": dict(pre_tokenizer=bl(False, True), model=bpe, post_processor={
            "type": "Sequence", "processors": [bl(False, True), {
                "type": "TemplateProcessing",
                "single": [eot(0), {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [eot(0), {"Sequence": {"id": "A", "type_id": 0}}, eot(1), {"Sequence": {"id": "B", "type_id": 1}}],
                "special_tokens": {"<|endoftext|>": {"id": "<|endoftext|>", "ids": [50256], "tokens": ["<|endoftext|>"]}}}]},
            decoder=bl(True, True)),
        # Models
        "wordpiece_max_chars_5": dict(normalizer=bert["normalizer"], pre_tokenizer={"type": "BertPreTokenizer"},
                                      model=dict(wp, max_input_chars_per_word=5), decoder=wp_dec),
        "bpe_prefix_suffix_trained": dict(pre_tokenizer={"type": "Whitespace"},
                                          model=trained_bpe(continuing_subword_prefix="##", end_of_word_suffix="</w>"),
                                          decoder={"type": "BPEDecoder", "suffix": "</w>"}),
        "bpe_ignore_merges_fuse_unk": dict(pre_tokenizer={"type": "Whitespace"},
                                           model=dict(trained_bpe(), ignore_merges=True, fuse_unk=True),
                                           decoder={"type": "CTC", "pad_token": "[PAD]", "word_delimiter_token": "e",
                                                    "cleanup": True}),
    }
    return out


def added_tokens():
    from tokenizers import AddedToken

    return [AddedToken("hello", single_word=True), AddedToken("[X]", lstrip=True, rstrip=True, special=True),
            AddedToken("ÉCOLE", normalized=True), AddedToken("München", normalized=False),
            AddedToken("<mask>", lstrip=True, special=True), AddedToken(" the", rstrip=True)]


VARIANT_NAMES = [
    "nfd_strip_accents_lowercase", "nfkd_whitespace_split", "bert_normalizer_options", "nfkc_strip_replace_prepend",
    "nfc_lowercase_byte_level_normalizer", "metaspace_first_nosplit", "metaspace_never", "unigram_byte_fallback",
    "unigram_no_unk", "unicode_scripts", "char_delimiter_wordlevel", "fixed_length_4", "punctuation_digits",
    "punctuation_merged_with_next", "split_invert_contiguous", "split_negated_classes", "split_string_removed",
    "byte_level_no_regex_prefix_untrimmed", "byte_level_prefix_roberta_untrimmed", "post_processor_sequence",
    "wordpiece_max_chars_5", "bpe_prefix_suffix_trained", "bpe_ignore_merges_fuse_unk",
]


def write_variant(root, name, spec, with_added):
    from tokenizers import Tokenizer

    doc = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": None,
           "pre_tokenizer": None, "post_processor": None, "decoder": None}
    doc.update(spec)
    tok = Tokenizer.from_str(json.dumps(doc))
    if with_added:
        tok.add_tokens(added_tokens())
    folder = root / name
    folder.mkdir()
    tok.save(str(folder / "tokenizer.json"))
    return folder


def test_every_variant_is_listed():
    assert sorted(variants()) == sorted(VARIANT_NAMES)


@pytest.mark.parametrize("name", VARIANT_NAMES)
def test_component_parity(name, tmp_path_factory):
    # The folder name must not contain a model type (hfpipe, like AutoConfig, looks for one in
    # the path when nothing else names the class).
    root = tmp_path_factory.mktemp("cv")
    parity(write_variant(root, "v", variants()[name], with_added=name.startswith(("nfd", "metaspace_first", "byte_level_no"))),
           generic=True, param_sets=PARAM_SETS)
