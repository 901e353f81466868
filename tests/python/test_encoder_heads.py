"""Encoder heads vs transformers, below the pipelines: last hidden state and head logits
(sequence classification, token classification, question answering, masked LM) of every tiny
model with a head, compared within 1e-4 with the transformers model class on the same token
ids. hfpipe's side is tests/tools/encoder_logits.cpp (build target hfpipe_encoder_logits).

One hfpipe_encoder_logits process per model runs all batches: a padded batch of four lengths,
single sequences, and long sequences (beyond DeBERTa v1's max_relative_positions and the
DeBERTa-v2 tiny model's position buckets; 512 tokens for the deberta-v3-shaped one, so every
distance its 256 log buckets can see is computed once).
"""
from __future__ import annotations

import json
import random
import shutil

import pytest

import hfpipe_helpers as H
import make_tiny_models as M

NEW_ARCHS = ["albert", "electra", "deberta", "debertav2", "debertav3"]
OLD_HEADS = ["ner", "qa", "mlm"]     # the families before these got their heads with them
MODELS = ([f"{a}-{h}" for a in NEW_ARCHS for h in M.HEADS_OF[a]]
          + [f"{a}-{h}" for a in M.ARCHS if a not in NEW_ARCHS for h in OLD_HEADS])

# which head the tool loads for a tiny model's head name
TOOL_HEAD = {"base": "base", "cls2": "sequence", "nli": "sequence", "ner": "token", "qa": "qa",
             "mlm": "mlm"}
LENGTHS = [[7, 40, 2, 19], [12], [70], [300]]
LONGEST = {"debertav3": 512}         # max_position_embeddings of the tiny models: 512 (514)
MLM_POSITIONS_PER_BATCH = 3          # vocabulary-wide rows: keep the JSON small


@pytest.fixture(scope="session")
def logits_bin():
    return H.tool_binary("HFPIPE_ENCODER_LOGITS_BIN", "hfpipe_encoder_logits")


def _batches(spec: M.Spec, config: dict) -> list[dict]:
    """Random ids above the special tokens of every tokenizer used (all below 1000)."""
    rng = random.Random(f"{spec.name}-ids")
    lengths = LENGTHS + [[LONGEST[spec.arch]]] if spec.arch in LONGEST else LENGTHS
    batches = []
    for lens in lengths:
        ids = [[rng.randrange(1000, config["vocab_size"]) for _ in range(n)] for n in lens]
        batch = {"input_ids": ids}
        if spec.head == "mlm":
            batch["positions"] = [[b, rng.randrange(len(ids[b]))]
                                  for b in (rng.randrange(len(ids)) for _ in range(MLM_POSITIONS_PER_BATCH))]
        batches.append(batch)
    return batches


def _reference(spec: M.Spec, folder, batches: list[dict]) -> list[dict]:
    """The transformers model class of the head, float32, on the same right-padded batches."""
    import torch
    model = H.reference_model(spec.auto_class, folder)
    pad = model.config.pad_token_id or 0
    out = []
    for batch in batches:
        seqs = batch["input_ids"]
        longest = max(map(len, seqs))
        ids = torch.tensor([s + [pad] * (longest - len(s)) for s in seqs])
        mask = torch.tensor([[1] * len(s) + [0] * (longest - len(s)) for s in seqs])
        with torch.no_grad():
            o = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        unpad = lambda t: [t[b, :len(s)].tolist() for b, s in enumerate(seqs)]  # noqa: E731
        result = {"last_hidden_state": unpad(o.hidden_states[-1])}
        kind = TOOL_HEAD[spec.head]
        if kind == "sequence":
            result["logits"] = o.logits.tolist()
        elif kind == "token":
            result["logits"] = unpad(o.logits)
        elif kind == "qa":
            result["logits"] = unpad(torch.stack([o.start_logits, o.end_logits], dim=-1))
        elif kind == "mlm":
            result["logits"] = [o.logits[b, s].tolist() for b, s in batch["positions"]]
        out.append(result)
    return out


def _run_tool(logits_bin, folder, head: str, batches) -> list[dict]:
    proc = H.run_raw([logits_bin, str(folder), head], stdin=json.dumps(batches))
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return json.loads(proc.stdout)


@pytest.mark.parametrize("model", MODELS)
def test_head_parity(logits_bin, tiny_models, model):
    spec = M.BY_NAME[model]
    folder = tiny_models / model
    batches = _batches(spec, json.loads((folder / "config.json").read_text()))
    got = _run_tool(logits_bin, folder, TOOL_HEAD[spec.head], batches)
    want = _reference(spec, folder, batches)
    assert len(got) == len(want)
    for batch, g, w in zip(batches, got, want):
        lengths = [len(s) for s in batch["input_ids"]]
        H.assert_same(g, w, what=f"{model} ({TOOL_HEAD[spec.head]} head), lengths {lengths}")


# Options hfpipe does not implement must be refused by name, never computed wrongly.
UNSUPPORTED = {
    "deberta-pos-att-p2p": ("deberta-base", {"pos_att_type": "c2p|p2p"}, "pos_att_type"),
    "deberta-talking-head": ("deberta-base", {"talking_head": True}, "talking_head"),
    "debertav2-norm-rel-ebd": ("debertav2-base", {"norm_rel_ebd": "layer_norm|scale"}, "norm_rel_ebd"),
    "debertav2-even-conv": ("debertav2-base", {"conv_kernel_size": 4}, "conv_kernel_size"),
    "albert-relative-key": ("albert-base", {"position_embedding_type": "relative_key"},
                            "position_embedding_type"),
    "electra-relative-key": ("electra-base", {"position_embedding_type": "relative_key_query"},
                             "position_embedding_type"),
}


@pytest.mark.parametrize("case", list(UNSUPPORTED))
def test_unsupported_option_is_named(run_hfpipe_raw, tiny_models, tmp_path, case):
    base, change, option = UNSUPPORTED[case]
    src = tiny_models / base
    for p in src.iterdir():
        if p.name != "config.json":
            (tmp_path / p.name).symlink_to(p)
    config = json.loads((src / "config.json").read_text())
    config.update(change)
    (tmp_path / "config.json").write_text(json.dumps(config))
    proc = run_hfpipe_raw(["feature-extraction", "--model", str(tmp_path), "a short text"])
    line = H.error_line(proc)
    assert proc.returncode == 1 and option in line and "not supported" in line, line
