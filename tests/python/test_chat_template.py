"""Chat templates: `hfpipe chat-template` against transformers' apply_chat_template(tokenize=False).

Each family's template (tests/python/chat_templates/<family>.jinja, sources in
chat_templates/README.md) is put into a folder holding a small tokenizer.json (bert-base-uncased's, loaded as the generic
PreTrainedTokenizerFast) with the family's
special tokens, then rendered by both sides over the same message lists and options; the
output must be identical byte for byte, and a template that raises must raise the same
message. The phi-3-mini folder of ../shared/tokenizers carries its own template and is used as it is.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

import hfpipe_helpers as H

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "chat_templates"
SHARED_TOKENIZERS = H.REPO.parent / "shared" / "tokenizers"
BASE_TOKENIZER = SHARED_TOKENIZERS / "bert-base-uncased" / "tokenizer.json"

# family -> (bos_token, eos_token, extra tokenizer_config entries)
FAMILIES = {
    "llama2": ("<s>", "</s>", {}),
    "llama3": ("<|begin_of_text|>", "<|eot_id|>", {}),
    "llama3.1": ("<|begin_of_text|>", "<|eot_id|>", {}),
    "mistral": ("<s>", "</s>", {}),
    "qwen2.5": (None, "<|im_end|>", {"pad_token": "<|endoftext|>"}),
    "gemma": ("<bos>", "<eos>", {"pad_token": "<pad>"}),
    "phi3": ("<s>", "<|endoftext|>", {}),
    "smollm2": ("<|im_start|>", "<|im_end|>", {"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]}),
    "chatml": ("<|im_start|>", "<|im_end|>", {}),
    "chatglm": (None, "</s>", {}),
    "phi3-sample": ("<s>", "<|endoftext|>", {}),
}
# Folders of ../shared/tokenizers whose tokenizer_config.json has its own chat_template.
# (chatglm's and added-tokens-sample's tokenizer.json do not load in transformers 4.57, so
# their templates are fixtures above.)
SHARED_WITH_TEMPLATE = ["phi-3-mini"]

TRICKY = "He said \"hi\" & 'bye'\n\ttab — ünïcødé 😀 \\n {{ not a tag }} {% raw %}"
CONVERSATIONS = {
    "user": [{"role": "user", "content": "Hello!"}],
    "system_user": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi there"}],
    "multi_turn": [
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And 3+3?"},
    ],
    "system_multi_turn": [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me a joke."},
    ],
    "tricky_content": [{"role": "user", "content": TRICKY}, {"role": "assistant", "content": "  padded answer \n"}],
    "bad_alternation": [{"role": "user", "content": "one"}, {"role": "user", "content": "two"}],
}
CONTINUE_CONVERSATION = [
    {"role": "user", "content": "Write a haiku."},
    {"role": "assistant", "content": "An old silent pond"},
]

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather at a place — in °C",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string", "description": "City, e.g. \"Paris\""},
                           "days": {"type": "integer"}, "ratio": {"type": "number"}},
            "required": ["location"],
        },
    },
}
TOOL_CONVERSATION = [
    {"role": "system", "content": "Use tools."},
    {"role": "user", "content": "Weather in Zürich?"},
    {"role": "assistant", "content": "",
     "tool_calls": [{"type": "function", "function": {"name": "get_weather",
                                                       "arguments": {"location": "Zürich", "days": 2, "ratio": 0.5}}}]},
    {"role": "tool", "content": "{\"temp\": 21.5}"},
    {"role": "tool", "content": "second result"},
]


def _make_folder(root: Path, family: str) -> Path:
    bos, eos, extra = FAMILIES[family]
    folder = root / family
    folder.mkdir()
    shutil.copy(BASE_TOKENIZER, folder / "tokenizer.json")
    cfg = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 512}
    cfg["chat_template"] = (TEMPLATES / f"{family}.jinja").read_text(encoding="utf-8")
    cfg["bos_token"] = bos
    cfg["eos_token"] = eos
    cfg.update(extra)
    (folder / "tokenizer_config.json").write_text(json.dumps(cfg, ensure_ascii=False, indent=2), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("chat_templates")
    out = {family: _make_folder(root, family) for family in FAMILIES}
    for name in SHARED_WITH_TEMPLATE:
        out[name] = SHARED_TOKENIZERS / name
    return out


def reference(folder: Path, messages, params: dict) -> tuple[bool, str]:
    """(ok, rendered text or the exception's message) from transformers."""
    tokenizer = H.reference_tokenizer(folder)
    try:
        return True, tokenizer.apply_chat_template(messages, tokenize=False, **params)
    except Exception as e:  # the template's raise_exception, or transformers' own checks
        return False, str(e)


def render(hfpipe_bin: Path, folder: Path, messages, params: dict) -> tuple[bool, str]:
    args = [str(hfpipe_bin), "chat-template", "--model", str(folder)]
    for k, v in params.items():
        args += ["--param", f"{k}={json.dumps(v)}"]
    args.append(json.dumps(messages))
    proc = subprocess.run(args, capture_output=True, timeout=60)
    if proc.returncode == 0:
        return True, proc.stdout.decode("utf-8")
    err = proc.stderr.decode("utf-8")
    assert err.startswith("hfpipe: error: "), err
    return False, err[len("hfpipe: error: "):].rstrip("\n")


def check(hfpipe_bin, folder, messages, params):
    want = reference(folder, messages, params)
    got = render(hfpipe_bin, folder, messages, params)
    assert got == want


CASES = [(family, conv, gen) for family in list(FAMILIES) + SHARED_WITH_TEMPLATE
         for conv in CONVERSATIONS for gen in (False, True)]


@pytest.mark.parametrize("family,conversation,add_generation_prompt", CASES)
def test_family_matches_transformers(hfpipe_bin, folders, family, conversation, add_generation_prompt):
    check(hfpipe_bin, folders[family], CONVERSATIONS[conversation], {"add_generation_prompt": add_generation_prompt})


@pytest.mark.parametrize("family", ["llama3", "qwen2.5", "chatml", "smollm2", "phi3", "mistral"])
def test_continue_final_message(hfpipe_bin, folders, family):
    check(hfpipe_bin, folders[family], CONTINUE_CONVERSATION, {"continue_final_message": True})


@pytest.mark.parametrize("family,params", [
    ("qwen2.5", {"tools": [WEATHER_TOOL], "add_generation_prompt": True}),
    ("qwen2.5", {}),
    ("llama3.1", {"tools": [WEATHER_TOOL], "add_generation_prompt": True}),
    ("llama3.1", {"tools": [WEATHER_TOOL], "tools_in_user_message": False, "date_string": "01 Jan 2025"}),
    ("llama3.1", {"builtin_tools": ["code_interpreter", "brave_search"]}),
])
def test_tools(hfpipe_bin, folders, family, params):
    messages = TOOL_CONVERSATION if family == "qwen2.5" else TOOL_CONVERSATION[:4]
    check(hfpipe_bin, folders[family], messages, params)


def test_raise_exception_text(hfpipe_bin, folders):
    ok, text = render(hfpipe_bin, folders["gemma"], CONVERSATIONS["system_user"], {})
    assert not ok and text == "System role not supported"


def test_chat_template_file_overrides_config(hfpipe_bin, folders, tmp_path):
    folder = tmp_path / "with_file"
    shutil.copytree(folders["chatml"], folder)
    (folder / "chat_template.jinja").write_text((TEMPLATES / "gemma.jinja").read_text(encoding="utf-8"),
                                                encoding="utf-8")
    check(hfpipe_bin, folder, CONVERSATIONS["multi_turn"], {"add_generation_prompt": True})


def test_named_templates(hfpipe_bin, folders, tmp_path):
    folder = tmp_path / "named"
    shutil.copytree(folders["chatml"], folder)
    cfg = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    cfg["chat_template"] = [
        {"name": "default", "template": (TEMPLATES / "chatml.jinja").read_text(encoding="utf-8")},
        {"name": "tool_use", "template": (TEMPLATES / "qwen2.5.jinja").read_text(encoding="utf-8")},
    ]
    (folder / "tokenizer_config.json").write_text(json.dumps(cfg), encoding="utf-8")
    messages = CONVERSATIONS["user"]
    check(hfpipe_bin, folder, messages, {"add_generation_prompt": True})
    check(hfpipe_bin, folder, messages, {"tools": [WEATHER_TOOL]})
    check(hfpipe_bin, folder, messages, {"chat_template": "tool_use"})


def test_unsupported_construct_is_named(hfpipe_bin, folders):
    ok, text = render(hfpipe_bin, folders["chatml"], CONVERSATIONS["user"],
                      {"chat_template": "{{ messages[0].content | wordwrap(5) }}"})
    assert not ok and "unsupported filter 'wordwrap'" in text and "line 1" in text
