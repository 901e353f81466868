"""Streaming text-generation (Pipeline::stream through the CLI's --stream).

The contract: the streamed pieces are valid UTF-8 and add up to exactly the result's new text
(generated_text with return_full_text=False, the assistant's content for a chat), and the
result of a streamed call equals the non-streamed one, which equals transformers'. With
--jsonl each piece is a {"chunk": ...} line; a piece that split a character would come out
of the JSON encoder as U+FFFD and break the equality. The exact hold-back rules (a character
spread over byte-fallback tokens, clean-up spaces) are unit-tested in tests/cpp/test_streaming.cpp.
"""
from __future__ import annotations

import json
import os

import pytest

import hfpipe_helpers as H

TASK = "text-generation"
ENV = {} if os.environ.get("HFPIPE_TEST_THREADS") else {"OMP_NUM_THREADS": "1"}
GREEDY = {"do_sample": False, "max_new_tokens": 24}
PROMPTS = ["The quick brown fox", "Café 東京 😀, isn't it?", ""]
CHAT = [{"role": "user", "content": "Tell me a story."}, {"role": "assistant", "content": "Once upon"}]


def stream_jsonl(run_hfpipe_raw, folder, inputs, params):
    """[(chunks, result)] per input, from --stream --jsonl."""
    cmd = H.hfpipe_command("x", TASK, folder, inputs, params, extra=["--stream"])[1:]
    proc = run_hfpipe_raw(cmd, stdin=H.jsonl_stdin(inputs), env=ENV)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    out, chunks = [], []
    for line in proc.stdout.decode("utf-8").splitlines():
        value = json.loads(line)
        if isinstance(value, dict) and list(value) == ["chunk"]:
            chunks.append(value["chunk"])
        else:
            out.append((chunks, value))
            chunks = []
    assert len(out) == len(inputs) and not chunks
    return out


def new_text(record, prompt):
    text = record["generated_text"]
    return text[-1]["content"][len(prompt[-1]["content"]):] if isinstance(text, list) else text


@pytest.mark.parametrize("model", ["llama-causal-lm", "gpt2-causal-lm"])
def test_streamed_text_is_the_final_text(run_hfpipe, run_hfpipe_raw, reference, tiny_models, model):
    folder = tiny_models / model
    prompts = PROMPTS if model.startswith("gpt2") else PROMPTS + [CHAT]   # GPT-2 has no chat template
    for params in (GREEDY, {**GREEDY, "clean_up_tokenization_spaces": False, "skip_special_tokens": False}):
        streamed = stream_jsonl(run_hfpipe_raw, folder, prompts, params)
        want = reference.reference_outputs(TASK, folder, prompts, params)
        H.assert_each_same([r for _, r in streamed], want, prompts, what=f"{model} streamed result {params}")
        plain = run_hfpipe(TASK, folder, prompts, {**params, "return_full_text": False}, env=ENV)
        for (chunks, _), p, prompt in zip(streamed, plain, prompts):
            assert "".join(chunks) == p[0]["generated_text"], f"{model} {prompt!r}: {chunks}"
            assert all(chunks), "an empty chunk"
            assert len(chunks) > 1, "nothing was streamed before the end"


def test_sampled_text_with_partial_characters(run_hfpipe, run_hfpipe_raw, tiny_models):
    """Sampling at a high temperature over llama2's byte-fallback tokens and GPT-2's byte-level
    BPE: the pieces still add up to the final text (same seed, same tokens)."""
    params = {"do_sample": True, "temperature": 3.0, "top_k": 0, "max_new_tokens": 48, "return_full_text": False}
    non_ascii = 0
    for model in ("llama-causal-lm", "qwen2-causal-lm"):
        folder = tiny_models / model
        for seed in range(3):
            p = {**params, "seed": seed}
            (chunks, result), = stream_jsonl(run_hfpipe_raw, folder, ["Hello"], p)
            final = run_hfpipe(TASK, folder, ["Hello"], p, env=ENV)[0]
            assert result == final
            assert "".join(chunks) == final[0]["generated_text"]
            non_ascii += any(ord(ch) > 127 for ch in final[0]["generated_text"])
    assert non_ascii >= 3, "the samples never reached multi-byte characters: the test proves little"


def test_raw_stream_and_call_input(run_hfpipe, run_hfpipe_raw, tiny_models):
    """--stream without --jsonl prints the raw new text and a newline per input."""
    folder = tiny_models / "llama-causal-lm"
    params = {**GREEDY, "return_full_text": False}
    want = run_hfpipe(TASK, folder, PROMPTS[:2], params, env=ENV)
    proc = run_hfpipe_raw(H.hfpipe_command("x", TASK, folder, PROMPTS[:2], params, jsonl=False,
                                           extra=["--stream"])[1:], env=ENV)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode("utf-8") == "".join(w[0]["generated_text"] + "\n" for w in want)
    # a chat as the call's input (Pipeline::stream with a list of messages)
    chat = json.dumps(CHAT)
    proc = run_hfpipe_raw(H.hfpipe_command("x", TASK, folder, [], GREEDY, jsonl=False,
                                           extra=["--stream", "--input-json", chat])[1:], env=ENV)
    assert proc.returncode == 0, proc.stderr.decode()
    full = run_hfpipe(TASK, folder, [CHAT], GREEDY, env=ENV)[0]
    assert proc.stdout.decode("utf-8") == new_text(full[0], CHAT) + "\n"


def test_streaming_refusals(run_hfpipe_raw, tiny_models):
    llama = tiny_models / "llama-causal-lm"

    def error(inputs, params, task=TASK, folder=llama):
        cmd = H.hfpipe_command("x", task, folder, inputs, params, extra=["--stream"])[1:]
        return H.error_line(run_hfpipe_raw(cmd, stdin=H.jsonl_stdin(inputs), env=ENV))

    assert "num_return_sequences must be 1" in error(["Hi"], {"do_sample": True, "num_return_sequences": 2})
    assert "not a list of inputs" in error([["Hi", "there"]], GREEDY)
    assert "does not stream" in error(["Hi"], {}, task="fill-mask", folder=tiny_models / "bert-mlm")
