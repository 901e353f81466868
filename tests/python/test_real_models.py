"""Real pretrained models shipped as PyPI packages (scripts/assemble_real_models.py):
feature-extraction vs transformers and sentence embeddings vs sentence-transformers, 1e-4."""
from __future__ import annotations

import json

import pytest

import hfpipe_helpers as H

TASK = "feature-extraction"
MODELS = ["all-MiniLM-L6-v2", "all-mpnet-base-v2"]
SE = {"sentence_embedding": True}


@pytest.mark.parametrize("model", MODELS)
def test_folder_is_complete(real_models, model):
    folder = real_models / model
    for f in ("config.json", "model.safetensors", "tokenizer.json", "modules.json",
              "1_Pooling/config.json", "sentence_bert_config.json"):
        assert (folder / f).is_file(), f"{folder} lacks {f}"
    assert not list(folder.rglob("desktop.ini"))


@pytest.mark.parametrize("model", MODELS)
def test_token_embeddings(run_hfpipe, reference, real_models, model):
    folder = real_models / model
    inputs = H.REAL_SENTENCES
    got = run_hfpipe(TASK, folder, inputs)
    H.assert_each_same(got, reference.reference_outputs(TASK, folder, inputs), inputs,
                       what=f"{model} token embeddings")


@pytest.mark.parametrize("model", MODELS)
def test_sentence_embeddings(run_hfpipe, reference, real_models, model):
    folder = real_models / model
    inputs = H.REAL_SENTENCES + [H.LONG_TEXT]      # the long one: truncated at max_seq_length
    want = reference.reference_sentence_embeddings(folder, inputs)
    b1 = run_hfpipe(TASK, folder, inputs, SE, batch_size=1)
    H.assert_each_same(b1, want, inputs, what=f"{model} sentence embeddings --batch-size 1")
    b8 = run_hfpipe(TASK, folder, inputs, SE, batch_size=8)
    H.assert_each_same(b8, want, inputs, what=f"{model} sentence embeddings --batch-size 8")
    H.assert_identical(b8, b1, what=f"{model} sentence embeddings --batch-size 8 vs 1")


@pytest.mark.parametrize("model", MODELS)
def test_sentence_embedding_argument(run_hfpipe, reference, real_models, model):
    folder = real_models / model
    text = H.REAL_SENTENCES[0]
    got = run_hfpipe(TASK, folder, [text], SE, jsonl=False)
    H.assert_same(got, reference.reference_sentence_embeddings(folder, [text])[0],
                  what=f"{model} one argument")


def test_truncated_token_embeddings(run_hfpipe, reference, real_models):
    folder = real_models / "all-MiniLM-L6-v2"
    inputs = [H.LONG_TEXT, H.REAL_SENTENCES[9]]
    params = {"truncation": True}
    got = run_hfpipe(TASK, folder, inputs, params)
    H.assert_each_same(got, reference.reference_outputs(TASK, folder, inputs, params), inputs,
                       what="all-MiniLM-L6-v2 truncation=true")
