"""Folders with no tokenizer.json: sentencepiece .model files and tiktoken rank files,
converted at load time by hfpipe and by transformers (AutoTokenizer converts the slow
tokenizer with convert_slow_tokenizer.py), compared on the whole corpus.

Real files: llama2-spm (Llama 2 BPE + byte fallback), the four Mistral models of
mistral-spm (each in its own folder named tokenizer.model, as LlamaTokenizer expects),
llama3-tiktoken. sentencepiece models trained here on the corpus (deterministic, one
thread) cover the Unigram converters (T5, XLM-RoBERTa) and Llama's non-legacy mode.
"""
import json
import shutil

import pytest

from test_tokenizer_parity import CORPUS, PARAM_SETS, TOKENIZERS, parity

QUICK = [p for p in PARAM_SETS if p[0] in ("plain", "no_special", "trunc16_longest_first")]


def folder_with(root, name, model_file, target_name, config=None):
    # Folder names carry the model type: with no config.json, AutoConfig (and hfpipe) look
    # for one in the path.
    folder = root / name
    folder.mkdir()
    shutil.copy(model_file, folder / target_name)
    if config is not None:
        (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("m")


@pytest.fixture(scope="module")
def trained(root):
    import sentencepiece as spm

    out = {}
    for kind, extra in (("unigram", {}), ("bpe", {"byte_fallback": True})):
        prefix = root / f"spm-{kind}"
        spm.SentencePieceTrainer.train(input=str(CORPUS), model_prefix=str(prefix), model_type=kind, vocab_size=800,
                                       num_threads=1, character_coverage=0.98, minloglevel=2,
                                       user_defined_symbols=["<sep2>"], control_symbols=["<ctl>"], **extra)
        out[kind] = prefix.with_suffix(".model")
    return out


def test_llama2_spm():
    parity(TOKENIZERS / "llama2-spm")


@pytest.mark.parametrize("version", ["tokenizer.model.v1", "mistral_instruct_tokenizer_240216.model.v2",
                                     "mistral_instruct_tokenizer_240323.model.v3",
                                     "mistral_instruct_tokenizer_241114.model.v7"])
def test_mistral_spm(root, version):
    folder = folder_with(root, "mistral-" + version.rsplit(".", 1)[-1], TOKENIZERS / "mistral-spm" / version,
                         "tokenizer.model")
    parity(folder, param_sets=QUICK)


def test_llama2_spm_non_legacy(root):
    folder = folder_with(root, "llama-nonlegacy", TOKENIZERS / "llama2-spm" / "tokenizer.model", "tokenizer.model",
                         {"tokenizer_class": "LlamaTokenizer", "legacy": False, "add_bos_token": True,
                          "add_eos_token": True})
    parity(folder, param_sets=QUICK)


def test_llama3_tiktoken():
    parity(TOKENIZERS / "llama3-tiktoken")


# T5Tokenizer's <extra_id_N> added tokens: the converted fast tokenizer does not strip around
# them (the normalizer's right Strip drops the space before one), so offsets exclude that space.
def test_trained_t5_unigram(root, trained):
    folder = folder_with(root, "t5-trained", trained["unigram"], "spiece.model",
                         {"tokenizer_class": "T5Tokenizer", "extra_ids": 10})
    parity(folder)


def test_trained_xlm_roberta_unigram(root, trained):
    folder = folder_with(root, "xlmr-trained", trained["unigram"], "sentencepiece.bpe.model",
                         {"tokenizer_class": "XLMRobertaTokenizer"})
    parity(folder, param_sets=QUICK)


def test_trained_llama_bpe_byte_fallback(root, trained):
    folder = folder_with(root, "llama-trained", trained["bpe"], "tokenizer.model", {"tokenizer_class": "LlamaTokenizer"})
    parity(folder)


@pytest.mark.parametrize("cut", [0, 1, 7, 100, 5000, -3])
def test_truncated_model_file_is_an_error(root, cut, hfpipe_bin):
    import subprocess

    data = (TOKENIZERS / "llama2-spm" / "tokenizer.model").read_bytes()
    folder = root / f"llama-cut{cut}"
    folder.mkdir()
    (folder / "tokenizer.model").write_bytes(data[:cut] if cut >= 0 else data[:cut] + b"\xff\xff\xff")
    proc = subprocess.run([str(hfpipe_bin), "tokenize", "--model", str(folder), "--jsonl"], input=b'"x"\n',
                          capture_output=True, timeout=60)
    assert proc.returncode != 0 and b"tokenizer.model" in proc.stderr, proc.stderr
