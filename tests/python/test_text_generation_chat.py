"""text-generation with chat input and the pipeline parameters around it, against transformers.

Chat input: the tiny Llama carries Phi-3's chat template (on llama2's SentencePiece tokenizer)
and the tiny Qwen2 Llama 3's (on GPT-2's byte-level BPE); scripts/make_tiny_models.py copies
them from ../shared/tokenizers. A chat goes as one --jsonl line (pipe(chat)) or as the call's
input with --input-json (pipe(chat) and pipe([chat, chat]) through Pipeline::operator()).
Greedy outputs must equal transformers' exactly: message lists, new text, token ids.
Also here: handle_long_generation="hole", stop_sequence, truncation / tokenizer_encode_kwargs,
and the bad inputs of issue 5 (each refused with a clear error, as transformers refuses it).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import hfpipe_helpers as H

TASK = "text-generation"
CHAT_MODELS = ["llama-causal-lm", "qwen2-causal-lm"]
GREEDY = {"do_sample": False, "max_new_tokens": 10}
ENV = {} if os.environ.get("HFPIPE_TEST_THREADS") else {"OMP_NUM_THREADS": "1"}

CHATS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    # a system message, extra keys on a message (Llama 3's template on GPT-2's BPE spends ~30
    # tokens a message: the tiny models have 128 positions)
    [{"role": "system", "content": "Be terse."},
     {"role": "user", "content": "Café 東京 😀?", "name": "bob"}],
    # ends with the assistant: a prefill the model continues (continue_final_message default)
    [{"role": "user", "content": "Tell me a story."},
     {"role": "assistant", "content": "Once upon a time", "thinking": "kept off the output"}],
]

PARAMS = {
    "full": GREEDY,
    "new_text": {**GREEDY, "return_full_text": False},
    "tensors": {**GREEDY, "return_tensors": True},
    "continue": {**GREEDY, "continue_final_message": True},
    "no_continue": {**GREEDY, "continue_final_message": False},
}


def _error(run_hfpipe_raw, folder, inputs, params, extra=()):
    cmd = H.hfpipe_command("x", TASK, folder, inputs, params, extra=extra)[1:]
    return H.error_line(run_hfpipe_raw(cmd, stdin=H.jsonl_stdin(inputs), env=ENV))


def _call_error(run_hfpipe_raw, folder, value, params):
    cmd = H.hfpipe_command("x", TASK, folder, [], params, jsonl=False,
                           extra=["--input-json", json.dumps(value, ensure_ascii=False)])[1:]
    return H.error_line(run_hfpipe_raw(cmd, env=ENV))


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_chat_outputs(run_hfpipe, reference, tiny_models, model):
    """pipe(chat): message list with the new assistant message, new text, ids, prefill."""
    folder = tiny_models / model
    for pid, params in PARAMS.items():
        want = reference.reference_outputs(TASK, folder, CHATS, params)
        got = run_hfpipe(TASK, folder, CHATS, params, env=ENV)
        H.assert_each_same(got, want, CHATS, what=f"{model} {pid}")
    # the shapes transformers gives (so a change in both is still noticed)
    full = reference.reference_outputs(TASK, folder, CHATS[:1], GREEDY)[0]
    assert full[0]["generated_text"][:1] == CHATS[0] and full[0]["generated_text"][1]["role"] == "assistant"


def test_chat_as_the_call_input(run_hfpipe, reference, tiny_models):
    """Pipeline::operator(): a list of messages is one chat, a list of lists a batch of chats."""
    folder = tiny_models / "qwen2-causal-lm"
    for value, batch_size in ((CHATS[1], None), (CHATS, None), (CHATS, 3)):
        want = reference.reference_call(TASK, folder, value, GREEDY)
        got = run_hfpipe(TASK, folder, [], GREEDY, jsonl=False, batch_size=batch_size, env=ENV,
                         extra=["--input-json", json.dumps(value, ensure_ascii=False)])
        H.assert_same(got, want, what=f"--input-json batch_size={batch_size}")


def test_chat_template_arguments(run_hfpipe, reference, tiny_models):
    """tokenizer_encode_kwargs reach apply_chat_template: another template and its variables."""
    folder = tiny_models / "llama-causal-lm"
    template = ("{% for m in messages %}<{{ m['role'] }}|{{ greeting }}>{{ m['content'] }}\n{% endfor %}"
                "{% if add_generation_prompt %}<assistant>{% endif %}")
    params = {**GREEDY, "tokenizer_encode_kwargs": {"chat_template": template, "greeting": "hey"}}
    H.assert_each_same(run_hfpipe(TASK, folder, CHATS, params, env=ENV),
                       reference.reference_outputs(TASK, folder, CHATS, params), CHATS, what="custom template")


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_unknown_role_as_the_template_treats_it(run_hfpipe, reference, tiny_models, model):
    """transformers does not check roles: the template decides (Phi-3's and Llama 3's render any)."""
    folder = tiny_models / model
    chat = [{"role": "critic", "content": "Be harsh."}, {"role": "user", "content": "Rate this."}]
    H.assert_each_same(run_hfpipe(TASK, folder, [chat], GREEDY, env=ENV),
                       reference.reference_outputs(TASK, folder, [chat], GREEDY), [chat], what=model)


def test_hole_keeps_the_end_of_a_long_prompt(run_hfpipe, reference, tiny_models):
    """Qwen2's tokenizer has model_max_length 128: "hole" keeps the last 128 - max_new_tokens tokens."""
    folder = tiny_models / "qwen2-causal-lm"
    prompt = " ".join(f"word{i}" for i in range(150))
    for params in ({**GREEDY, "handle_long_generation": "hole"},
                   {**GREEDY, "handle_long_generation": "hole", "return_tensors": True},
                   {**GREEDY, "handle_long_generation": "hole", "return_full_text": False}):
        H.assert_each_same(run_hfpipe(TASK, folder, [prompt], params, env=ENV),
                           reference.reference_outputs(TASK, folder, [prompt], params), [prompt], what=str(params))
    ids = run_hfpipe(TASK, folder, [prompt], {**GREEDY, "handle_long_generation": "hole", "return_tensors": True},
                     env=ENV)[0][0]["generated_token_ids"]
    assert len(ids) == 128
    # a short prompt is left alone
    short = {**GREEDY, "handle_long_generation": "hole"}
    H.assert_each_same(run_hfpipe(TASK, folder, ["Hello"], short, env=ENV),
                       reference.reference_outputs(TASK, folder, ["Hello"], short), ["Hello"], what="short")


@pytest.mark.parametrize("model", ["gpt2-causal-lm", "llama-causal-lm"])
def test_stop_sequence_and_tokenizer_arguments(run_hfpipe, reference, tiny_models, model):
    folder = tiny_models / model
    prompt = ["The quick brown fox"]
    base = reference.reference_outputs(TASK, folder, prompt, {**GREEDY, "max_new_tokens": 12,
                                                               "return_full_text": False})
    ids = reference.reference_outputs(TASK, folder, prompt, {**GREEDY, "max_new_tokens": 12,
                                                              "return_tensors": True})[0][0]["generated_token_ids"]
    tok = reference.reference_pipeline(TASK, str(folder)).tokenizer
    stop = tok.decode(ids[-8:-7])   # the 5th new token: a token the model does write
    cases = [
        {**GREEDY, "max_new_tokens": 12, "stop_sequence": stop},
        {**GREEDY, "max_new_tokens": 12, "stop_sequence": stop, "return_tensors": True},
        {**GREEDY, "truncation": True, "max_length": 3, "max_new_tokens": 5},
        {**GREEDY, "tokenizer_encode_kwargs": {"truncation": True, "max_length": 2}},
        {**GREEDY, "max_length": 30, "max_new_tokens": None, "truncation": False},
    ]
    for params in cases:
        H.assert_each_same(run_hfpipe(TASK, folder, prompt, params, env=ENV),
                           reference.reference_outputs(TASK, folder, prompt, params), prompt, what=str(params))
    # GPT-2's byte-level BPE gives the token back for its text (SentencePiece adds a "▁"): there
    # the stop sequence must have cut the text short
    if model.startswith("gpt2"):
        assert tok(stop, add_special_tokens=False)["input_ids"] == ids[-8:-7]
        stopped = run_hfpipe(TASK, folder, prompt, cases[0], env=ENV)[0][0]["generated_text"]
        assert len(stopped) < len(prompt[0] + base[0][0]["generated_text"])


def test_bad_chat_input(run_hfpipe_raw, reference, tiny_models):
    llama, gpt2, qwen = (tiny_models / m for m in ("llama-causal-lm", "gpt2-causal-lm", "qwen2-causal-lm"))
    pipe = reference.reference_pipeline(TASK, str(llama))
    # a message without content
    bad = [{"role": "user", "text": "Hi"}]
    with pytest.raises(ValueError, match="'role' and 'content'"):
        pipe(bad, **GREEDY)
    assert "'role' and 'content'" in _error(run_hfpipe_raw, llama, [bad], GREEDY)
    assert "'role' and 'content'" in _call_error(run_hfpipe_raw, llama, bad, GREEDY)
    # a model without a chat template
    with pytest.raises(ValueError, match="chat_template is not set"):
        reference.reference_pipeline(TASK, str(gpt2))(CHATS[0], **GREEDY)
    assert "chat_template is not set" in _error(run_hfpipe_raw, gpt2, [CHATS[0]], GREEDY)
    # a template that refuses the roles (llama2's raise_exception)
    llama2 = (Path(__file__).parent / "chat_templates" / "llama2.jinja").read_text()
    odd = {**GREEDY, "tokenizer_encode_kwargs": {"chat_template": llama2}}
    critic = [{"role": "critic", "content": "Be harsh."}]
    with pytest.raises(Exception, match="Conversation roles must alternate"):
        pipe(critic, **odd)
    assert "Conversation roles must alternate" in _error(run_hfpipe_raw, llama, [critic], odd)
    # a template outside hfpipe's Jinja subset (transformers' jinja2 renders it)
    recursive = {**GREEDY, "tokenizer_encode_kwargs": {
        "chat_template": "{% for m in messages recursive %}{{ m['content'] }}{% endfor %}"}}
    assert "unsupported recursive for loop" in _error(run_hfpipe_raw, llama, [CHATS[0]], recursive)
    # nothing to continue: list-of-parts content, prefilled
    parts = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": [{"type": "image"}]}]
    assert "could not find any text to continue" in _error(run_hfpipe_raw, llama, [parts], GREEDY)
    # an empty list, a dict on its own, a list of chats inside one --jsonl line
    assert "a text-generation input is a string or a chat" in _error(run_hfpipe_raw, llama, [[]], GREEDY)
    assert "a text-generation input is a string or a chat" in _error(run_hfpipe_raw, llama, [CHATS[0][0]], GREEDY)
    assert "a text-generation input is a string or a chat" in _error(run_hfpipe_raw, llama, [CHATS[:2]], GREEDY)
    # a chat template argument the pipeline sets itself
    assert "cannot set 'add_generation_prompt'" in _error(
        run_hfpipe_raw, llama, [CHATS[0]], {**GREEDY, "tokenizer_encode_kwargs": {"add_generation_prompt": False}})
    # an empty chat as the call's input: transformers fails on text_inputs[0]; hfpipe says why
    assert "string or a chat" in _call_error(run_hfpipe_raw, qwen, [[]], GREEDY)


def test_bad_generation_parameters(run_hfpipe_raw, reference, tiny_models):
    qwen = tiny_models / "qwen2-causal-lm"
    pipe = reference.reference_pipeline(TASK, str(qwen))
    long_prompt = " ".join(f"word{i}" for i in range(150))
    for n in (0, -3):
        with pytest.raises(ValueError, match="must be greater than 0"):
            pipe("Hi", do_sample=False, max_new_tokens=n)
        assert "`max_new_tokens` must be greater than 0" in _error(run_hfpipe_raw, qwen, ["Hi"],
                                                                   {"do_sample": False, "max_new_tokens": n})
    with pytest.raises(ValueError, match="not a valid value for `handle_long_generation`"):
        pipe("Hi", handle_long_generation="tail")
    assert "not a valid value for `handle_long_generation`" in _error(run_hfpipe_raw, qwen, ["Hi"],
                                                                      {"handle_long_generation": "tail"})
    too_many = {**GREEDY, "max_new_tokens": 200, "handle_long_generation": "hole"}
    with pytest.raises(ValueError, match="We cannot use `hole`"):
        pipe(long_prompt, **too_many)
    assert "We cannot use `hole`" in _error(run_hfpipe_raw, qwen, [long_prompt], too_many)
    # hole without max_new_tokens: the new tokens are max_length (default 20) - prompt length
    no_new = {"do_sample": False, "handle_long_generation": "hole"}
    with pytest.raises(ValueError, match="cannot infer how many new tokens"):
        pipe(long_prompt, **no_new)
    assert "cannot infer how many new tokens" in _error(run_hfpipe_raw, qwen, [long_prompt], no_new)
    # without hole a prompt over the positions is refused, naming the way out
    err = _error(run_hfpipe_raw, qwen, [long_prompt], GREEDY)
    assert "max_position_embeddings (128)" in err and "hole" in err
