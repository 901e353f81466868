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

from test_tokenizer_parity import CORPUS, PARAM_SETS, TOKENIZERS, parity, train_corpus_spm

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
    return {kind: train_corpus_spm(root / f"spm-{kind}", kind, 800, **extra)
            for kind, extra in (("unigram", {}), ("bpe", {"byte_fallback": True}))}


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


# Whisper's tiktoken rank files (openai/whisper assets). transformers reads a .tiktoken file only
# as a folder's tokenizer.model through PreTrainedTokenizerFast (TikTokenConverter, with its own
# cl100k-style regex, not Whisper's GPT-2 one); multilingual.tiktoken ends with an empty token.
@pytest.mark.parametrize("rank_file", ["gpt2.tiktoken", "multilingual.tiktoken"])
def test_whisper_tiktoken(root, rank_file, hfpipe_bin):
    import subprocess

    import tiktoken
    from tiktoken.load import load_tiktoken_bpe
    from transformers.convert_slow_tokenizer import TikTokenConverter

    source = TOKENIZERS / "whisper-tiktoken" / rank_file
    specials = ["<|endoftext|>", "<|startoftranscript|>"]
    folder = folder_with(root, "whisper-" + rank_file.split(".")[0], source, "tokenizer.model",
                         {"tokenizer_class": "PreTrainedTokenizerFast", "additional_special_tokens": specials})
    parity(folder, generic=True, param_sets=QUICK)
    # tiktoken itself, with the converter's regex and the same special-token ids, as a second reference.
    ranks = load_tiktoken_bpe(str(source))
    enc = tiktoken.Encoding("w", pat_str=TikTokenConverter().pattern, mergeable_ranks=ranks,
                            special_tokens={t: len(ranks) + i for i, t in enumerate(specials)})
    lines = CORPUS.read_text(encoding="utf-8").split("\n")[:-1]
    stdin = "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines)
    proc = subprocess.run([str(hfpipe_bin), "tokenize", "--model", str(folder), "--jsonl", "--param",
                           "add_special_tokens=false"], input=stdin.encode(), capture_output=True, timeout=300)
    got = [json.loads(x)["input_ids"] for x in proc.stdout.decode().split("\n") if x]
    expected = [enc.encode(x, allowed_special="all") for x in lines]
    assert len(got) == len(lines), proc.stderr
    bad = [(x, e, g) for x, e, g in zip(lines, expected, got) if e != g]
    assert not bad, f"{len(bad)} lines differ from tiktoken, first: {bad[0]}"


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
