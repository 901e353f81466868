"""Multilingual translation parity: mBART-50, M2M100 and NLLB with src_lang / tgt_lang, hfpipe vs
transformers' TranslationPipeline on the tiny models of scripts/make_tiny_models.py (their
tokenizers are trained there on the tokenizer corpus and saved by the transformers classes).

What transformers does and these tests hold hfpipe to: the tokenizer's _build_translation_inputs
encodes the source with src_lang's token where the class puts it (mBART-50 / NLLB: "lang X </s>",
M2M100: "__lang__ X </s>"), no pipeline prefix, and generation gets forced_bos_token_id = the
tgt_lang token, so every output starts decoder_start, tgt_lang; a task id translation_xx_to_yy
names the languages when the call gives neither. Greedy and 4-beam ids must be identical, alone
and in batches of mixed lengths; the M2M100 encoder/decoder must agree within 1e-4 where its
positions depend on pad tokens inside the ids. Bad input fails with a clear error.
"""
from __future__ import annotations

import json
import os
import subprocess

import pytest

import hfpipe_helpers as H
from test_seq2seq import ENV, GREEDY, TEXTS, forward_bin

# model, src_lang, tgt_lang
CASES = [("m2m100-seq2seq", "en", "fr"), ("nllb-seq2seq", "eng_Latn", "fra_Latn"),
         ("mbart50-seq2seq", "en_XX", "ro_RO")]
IDS = [c[0] for c in CASES]


def _tgt_id(folder, tgt):
    tok = H.reference_tokenizer(folder)
    return tok.get_lang_id(tgt) if hasattr(tok, "get_lang_id") else tok.convert_tokens_to_ids(tgt)


@pytest.mark.parametrize("model,src,tgt", CASES, ids=IDS)
def test_greedy_ids(run_hfpipe, reference, tiny_models, model, src, tgt):
    folder = tiny_models / model
    params = {**GREEDY, "max_new_tokens": 12, "return_tensors": True, "src_lang": src, "tgt_lang": tgt}
    want = reference.reference_outputs("translation", folder, TEXTS, params)
    got = run_hfpipe("translation", folder, TEXTS, params, env=ENV)
    H.assert_each_same(got, want, TEXTS, what=f"translation {model}")
    # forced_bos_token_id: the target language follows decoder_start.
    assert all(r[0]["translation_token_ids"][1] == _tgt_id(folder, tgt) for r in got)


@pytest.mark.parametrize("model,src,tgt", CASES, ids=IDS)
def test_beam_ids(run_hfpipe, reference, tiny_models, model, src, tgt):
    """The pipeline's default num_beams=4, two sequences back, other languages than above."""
    folder = tiny_models / model
    src, tgt = {"m2m100-seq2seq": ("de", "ja"), "nllb-seq2seq": ("zho_Hans", "deu_Latn"),
                "mbart50-seq2seq": ("fr_XX", "zh_CN")}[model]
    params = {"max_new_tokens": 10, "num_return_sequences": 2, "return_tensors": True, "src_lang": src,
              "tgt_lang": tgt}
    want = reference.reference_outputs("translation", folder, TEXTS[:3], params)
    got = run_hfpipe("translation", folder, TEXTS[:3], params, env=ENV)
    H.assert_each_same(got, want, TEXTS[:3], what=f"beam translation {model}")


@pytest.mark.parametrize("model,src,tgt", CASES, ids=IDS)
def test_batches_of_mixed_lengths(run_hfpipe, reference, tiny_models, model, src, tgt):
    """batch_size 3 and 4 (padded encoder batches: M2M100's positions skip the pads) give the
    one-by-one results of transformers, greedy and with beams."""
    folder = tiny_models / model
    for extra in (GREEDY, {"num_beams": 3}):
        params = {**extra, "max_new_tokens": 8, "return_tensors": True, "src_lang": src, "tgt_lang": tgt}
        want = reference.reference_outputs("translation", folder, TEXTS, params)
        for batch_size in (3, 4):
            got = run_hfpipe("translation", folder, TEXTS, params, batch_size=batch_size, env=ENV)
            H.assert_each_same(got, want, TEXTS, what=f"{model} {extra} batch_size={batch_size}")


def test_task_id_names_the_languages(run_hfpipe, reference, tiny_models):
    """translation_de_to_fr on M2M100 is src_lang de, tgt_lang fr (_sanitize_parameters); text out."""
    folder = tiny_models / "m2m100-seq2seq"
    params = {**GREEDY, "max_new_tokens": 8}
    want = reference.reference_outputs("translation_de_to_fr", folder, TEXTS[:2], params)
    got = run_hfpipe("translation_de_to_fr", folder, TEXTS[:2], params, env=ENV)
    H.assert_each_same(got, want, TEXTS[:2], what="translation_de_to_fr")
    tensors = run_hfpipe("translation_de_to_fr", folder, TEXTS[:2], {**params, "return_tensors": True}, env=ENV)
    same = run_hfpipe("translation", folder, TEXTS[:2], {**params, "return_tensors": True, "src_lang": "de",
                                                          "tgt_lang": "fr"}, env=ENV)
    assert tensors == same
    # Explicit languages win over the task id's.
    other = run_hfpipe("translation_de_to_fr", folder, TEXTS[:2], {**params, "return_tensors": True,
                                                                   "src_lang": "de", "tgt_lang": "es"}, env=ENV)
    assert all(r[0]["translation_token_ids"][1] == _tgt_id(folder, "es") for r in other)


def test_empty_and_long_sources(run_hfpipe, reference, tiny_models):
    """"" is "__en__ </s>" and generates. M2M100's sinusoidal positions have no end (transformers
    grows the table), so a source past max_position_embeddings (64) runs, without truncation."""
    folder = tiny_models / "m2m100-seq2seq"
    long_text = H._long_text(120)
    inputs = ["", long_text]
    params = {**GREEDY, "max_new_tokens": 6, "return_tensors": True, "src_lang": "en", "tgt_lang": "fr"}
    tok = H.reference_tokenizer(folder)
    assert len(tok(long_text)["input_ids"]) > 64
    H.assert_each_same(run_hfpipe("translation", folder, inputs, params, env=ENV),
                       reference.reference_outputs("translation", folder, inputs, params), ["empty", "long"])


def test_m2m100_positions_skip_pad_ids(tiny_models):
    """create_position_ids_from_input_ids: a pad id inside the source gets the zero position row
    and is not counted. In the decoder, fed one token per step through the cache as generation
    does, a pad id gets the zero row but every earlier token counts (past_key_values_length).
    Encoder output and logits within 1e-4."""
    import torch
    folder = tiny_models / "m2m100-seq2seq"
    ref, tok = H.reference_model("AutoModelForSeq2SeqLM", folder), H.reference_tokenizer(folder)
    pad = tok.pad_token_id
    a = tok("Hello there, my friend.")["input_ids"]
    sources = [a[:3] + [pad] + a[3:], tok("Short.")["input_ids"]]
    targets = [[2, 9, pad, 40, 41, pad], [2, 30, 31, 32, 33, 34]]
    proc = subprocess.run([forward_bin(), str(folder)], input=json.dumps({"input_ids": sources,
                                                                        "decoder_input_ids": targets}),
                          capture_output=True, text=True, env={**os.environ, **ENV}, timeout=H.HFPIPE_TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout)
    for b, (src, tgt) in enumerate(zip(sources, targets)):
        with torch.no_grad():
            encoder = ref.get_encoder()(input_ids=torch.tensor([src]))
            past, logits = None, []
            for token in tgt:
                out = ref(encoder_outputs=encoder, decoder_input_ids=torch.tensor([[token]]), past_key_values=past,
                          use_cache=True)
                past = out.past_key_values
                logits.append(out.logits[0, -1])
        enc = (torch.tensor(got["encoder_last_hidden_state"][b]) - encoder.last_hidden_state[0]).abs().max().item()
        diff = (torch.tensor(got["logits"][b]) - torch.stack(logits)).abs().max().item()
        assert enc <= H.ATOL and diff <= H.ATOL, (b, enc, diff)


def test_single_pair_tokenizer_ignores_languages(run_hfpipe, reference, tiny_models):
    """An mBART model with a tokenizer without language codes (RobertaTokenizer here) translates
    as transformers does: src_lang / tgt_lang have no effect."""
    folder = tiny_models / "mbart-seq2seq"
    params = {**GREEDY, "max_new_tokens": 8, "return_tensors": True, "src_lang": "en_XX", "tgt_lang": "fr_XX"}
    got = run_hfpipe("translation", folder, TEXTS[:2], params, env=ENV)
    H.assert_each_same(got, reference.reference_outputs("translation", folder, TEXTS[:2], params), TEXTS[:2])
    plain = {k: v for k, v in params.items() if k not in ("src_lang", "tgt_lang")}
    assert run_hfpipe("translation", folder, TEXTS[:2], plain, env=ENV) == got


def _error(run_hfpipe_raw, task, folder, params, inputs=("Hi",)):
    cmd = H.hfpipe_command("x", task, folder, list(inputs), params)[1:]
    return H.error_line(run_hfpipe_raw(cmd, stdin=H.jsonl_stdin(list(inputs)), env=ENV))


def _reference_raises(task, folder, params, exc):
    pipe = H.reference_pipeline(task, str(folder))
    with pytest.raises(exc) as info:
        pipe("Hi", **params)
    return str(info.value)


def test_bad_input(run_hfpipe_raw, tiny_models):
    m2m, nllb, mbart50 = (tiny_models / m for m in IDS)
    greedy = {**GREEDY, "max_new_tokens": 4}
    # tgt_lang (or both) missing for a multilingual model: transformers' ValueError.
    for folder, params in ((m2m, {"src_lang": "en"}), (nllb, {"src_lang": "eng_Latn"}), (mbart50, {})):
        want = _reference_raises("translation", folder, {**greedy, **params}, ValueError)
        err = _error(run_hfpipe_raw, "translation", folder, {**greedy, **params})
        assert want in err and "Translation requires a `src_lang` and a `tgt_lang`" in err
    # A task id naming a language the model lacks. M2M100 raises a KeyError; NLLB's and mBART-50's
    # classes would silently use <unk>'s id: hfpipe refuses all three, naming the known codes.
    _reference_raises("translation_en_to_xx", m2m, greedy, KeyError)
    err = _error(run_hfpipe_raw, "translation_en_to_xx", m2m, greedy)
    assert "unknown language code 'xx'" in err and "fr, " in err, err
    err = _error(run_hfpipe_raw, "translation_en_to_fr", nllb, greedy)
    assert "unknown language code 'en'" in err and "eng_Latn" in err, err
    err = _error(run_hfpipe_raw, "translation", mbart50, {**greedy, "src_lang": "en_XX", "tgt_lang": "english"})
    assert "unknown language code 'english'" in err and "ro_RO" in err, err
    _reference_raises("translation", m2m, {**greedy, "src_lang": "xx", "tgt_lang": "fr"}, KeyError)
    assert "unknown language code 'xx'" in _error(run_hfpipe_raw, "translation", m2m,
                                                  {**greedy, "src_lang": "xx", "tgt_lang": "fr"})
    # forced_bos_token_id given too: generate() gets it twice (transformers' TypeError).
    params = {**greedy, "src_lang": "en", "tgt_lang": "fr", "forced_bos_token_id": 5}
    assert "multiple values" in _reference_raises("translation", m2m, params, TypeError)
    assert "multiple values for keyword argument 'forced_bos_token_id'" in _error(run_hfpipe_raw, "translation",
                                                                                  m2m, params)
    # mBART-50's learned positions end at 256: a longer source without truncation is refused.
    assert "at most 256" in _error(run_hfpipe_raw, "translation", mbart50,
                                   {**greedy, "src_lang": "en_XX", "tgt_lang": "fr_XX"}, [H._long_text(300)])
    assert "must be a string" in _error(run_hfpipe_raw, "translation", m2m, {**greedy, "src_lang": 3,
                                                                             "tgt_lang": "fr"})
