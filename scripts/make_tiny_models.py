#!/usr/bin/env python3
"""Make the tiny randomly-initialised models hfpipe's parity tests run on.

usage: make_tiny_models.py [--out DIR] [--force]      (default: <repo>/build/tiny-models)

Every model is built with transformers' own classes from a fixed seed (one seed per model
name, so a model does not depend on which others are made) and gets real tokenizer files:
bert-base-uncased's for BERT and DistilBERT, roberta-base's for RoBERTa and for XLM-RoBERTa
(with tokenizer_class RobertaTokenizer in tokenizer_config.json, as XLM-R's own sentencepiece
tokenizer is a later issue), all-mpnet-base-v2's for MPNet (read from the installed zip parts,
see assemble_real_models.py), and bert-base-uncased's for ALBERT, ELECTRA, DeBERTa and
DeBERTa-v2/v3: ELECTRA's own tokenizer is BERT's, and for the others tokenizer_config.json gets
tokenizer_class BertTokenizer (their sentencepiece / BPE tokenizers are being added to the
tokenizer engine separately; the model code does not care which vocabulary feeds it). Tokenizer files are copied from ../shared/tokenizers into the
output folder only, never into the repository.

Sizes: hidden 32, 2 layers, 4 heads, intermediate 37, vocab of the tokenizer; ALBERT and
ELECTRA with embedding_size 16 (the embedding projection), ALBERT with 4 layers in 2 shared
groups of 2 inner layers, DeBERTa v1 with max_relative_positions 16, DeBERTa-v2 ("debertav2") with 8 log
position buckets, the convolution layer and every option off its default, and "debertav3" in
the shape of deberta-v3-base (256 buckets, shared keys, no absolute positions, non-legacy
masked-LM head). The initialiser
range is 0.2 (instead of 0.02) and every parameter that starts out constant (LayerNorm weights,
biases) gets noise too, so that scores spread out and a wrong bias or norm shows up in the
comparison.

Made (see SPECS; DIR/manifest.json lists them with their attributes):
- <arch>-base           AutoModel (state-dict names without the `bert.`/`roberta.` prefix)
- <arch>-cls2 / -cls5   sequence classification, 2 and 5 labels (named)
- <arch>-multilabel     4 labels, problem_type multi_label_classification
- <arch>-regression     num_labels 1, problem_type regression
- <arch>-single         num_labels 1, no problem_type (the sigmoid default)
- <arch>-ner            token classification, B-/I- tags of 4 entity types and O
- <arch>-qa             question answering (start/end logits)
- <arch>-mlm            masked LM (decoder tied to the word embeddings)
- <arch>-nli            sequence classification neutral/entailment/contradiction (zero-shot)
  (ALBERT, ELECTRA and the DeBERTas get base, cls2, ner, qa, mlm and nli only: HEADS_OF)
- loading variants: pytorch_model.bin, sharded safetensors, sharded .bin, float16 (config key
  `torch_dtype`), bfloat16 (config key `dtype`), a base model whose names carry the prefix,
  a .bin with TensorFlow-era LayerNorm gamma/beta names
- st-*                  sentence-transformers folders (modules.json, 1_Pooling, Normalize): two
                        in the Hub's classic layout, one as sentence-transformers 5.x saves it

Idempotent: DIR/.stamp holds a hash of this script, its inputs and the library versions; when
it matches, nothing is rebuilt. Every loadable folder is checked to reload in transformers with
no missing or unexpected weights (a reference with randomly filled weights would be useless).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_TOKENIZERS = REPO.parent / "shared" / "tokenizers"
DEFAULT_OUT = REPO / "build" / "tiny-models"

ARCHS = ["bert", "distilbert", "roberta", "xlmr", "mpnet", "albert", "electra", "deberta", "debertav2",
         "debertav3"]
HEADS = ["base", "cls2", "cls5", "multilabel", "regression", "single", "ner", "qa", "mlm", "nli"]
# The later families get the heads their own code adds, not the label-handling variants the
# text-classification tests already cover on the first five (keeps the suite fast).
REDUCED_HEADS = ["base", "cls2", "ner", "qa", "mlm", "nli"]
HEADS_OF = {a: (HEADS if a in ("bert", "distilbert", "roberta", "xlmr", "mpnet") else REDUCED_HEADS)
            for a in ARCHS}
LABELS = {
    "cls2": ["NEGATIVE", "POSITIVE"],
    "cls5": ["very negative", "negative", "neutral", "positive", "very positive"],
    "multilabel": ["toxic", "insult", "threat", "obscene"],
    "regression": ["rating"],
    "single": None,  # transformers' default LABEL_0
    # token classification: B-/I- tags (IOB2) and O in a non-leading position
    "ner": ["B-PER", "I-PER", "O", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"],
    # NLI for zero-shot: entailment neither first nor last (transformers' fallback is -1)
    "nli": ["neutral", "entailment", "contradiction"],
}
# The task each head serves and the transformers auto class that builds it.
HEAD_TASK = {"base": "feature-extraction", "ner": "token-classification", "qa": "question-answering",
             "mlm": "fill-mask", "nli": "zero-shot-classification"}
HEAD_AUTO = {"base": "AutoModel", "ner": "AutoModelForTokenClassification",
             "qa": "AutoModelForQuestionAnswering", "mlm": "AutoModelForMaskedLM"}
PROBLEM_TYPE = {"multilabel": "multi_label_classification", "regression": "regression"}
TOKENIZER_OF = {"bert": "bert-base-uncased", "distilbert": "bert-base-uncased",
                "roberta": "roberta-base", "xlmr": "roberta-base", "mpnet": "all-mpnet-base-v2",
                "albert": "bert-base-uncased", "electra": "bert-base-uncased",
                "deberta": "bert-base-uncased", "debertav2": "bert-base-uncased",
                "debertav3": "bert-base-uncased"}
MODEL_TYPE = {"bert": "bert", "distilbert": "distilbert", "roberta": "roberta",
              "xlmr": "xlm-roberta", "mpnet": "mpnet", "albert": "albert", "electra": "electra",
              "deberta": "deberta", "debertav2": "deberta-v2", "debertav3": "deberta-v2"}
# Families whose own tokenizer (sentencepiece, or DeBERTa's BPE) the tokenizer engine does not
# cover yet: their tiny models get a WordPiece vocabulary under tokenizer_class BertTokenizer.
BERT_TOKENIZER_CLASS = {"albert", "deberta", "debertav2", "debertav3"}


@dataclass(frozen=True)
class Spec:
    name: str
    arch: str
    head: str                       # one of HEADS
    variant: str = ""               # "" for the plain matrix; else what the variant exercises
    serialization: str = "safetensors"   # "safetensors" | "bin"
    max_shard_size: str | None = None
    dtype: str | None = None        # "float16" | "bfloat16"
    dtype_key: str = "dtype"        # config key written for dtype: "dtype" or "torch_dtype"
    prefixed_base: bool = False     # base model saved with the `<prefix>.` names
    gamma_beta: bool = False        # LayerNorm.weight/bias saved as LayerNorm.gamma/beta
    st: dict | None = field(default=None, hash=False, compare=False)  # sentence-transformers

    @property
    def task(self) -> str:
        return HEAD_TASK.get(self.head, "text-classification")

    @property
    def auto_class(self) -> str:
        return HEAD_AUTO.get(self.head, "AutoModelForSequenceClassification")

    @property
    def labels(self):
        return LABELS.get(self.head)


def _specs() -> list[Spec]:
    specs = [Spec(f"{a}-{h}", a, h) for a in ARCHS for h in HEADS_OF[a]]
    specs += [
        Spec("bert-cls2-bin", "bert", "cls2", variant="pytorch_model.bin", serialization="bin"),
        Spec("roberta-cls5-sharded", "roberta", "cls5", variant="sharded safetensors",
             max_shard_size="1MB"),
        Spec("distilbert-cls2-bin-sharded", "distilbert", "cls2", variant="sharded pytorch_model.bin",
             serialization="bin", max_shard_size="1MB"),
        Spec("bert-cls2-fp16", "bert", "cls2", variant="float16 weights (torch_dtype)",
             dtype="float16", dtype_key="torch_dtype"),
        Spec("mpnet-cls5-bf16", "mpnet", "cls5", variant="bfloat16 weights (dtype)", dtype="bfloat16"),
        Spec("xlmr-base-bf16", "xlmr", "base", variant="bfloat16 weights (dtype)", dtype="bfloat16"),
        Spec("bert-base-fp16-bin", "bert", "base", variant="float16 pytorch_model.bin",
             serialization="bin", dtype="float16", dtype_key="torch_dtype"),
        Spec("bert-base-prefixed", "bert", "base", variant="base model with bert. prefix",
             prefixed_base=True),
        Spec("roberta-base-prefixed", "roberta", "base", variant="base model with roberta. prefix",
             prefixed_base=True),
        Spec("bert-cls2-gamma-beta", "bert", "cls2", variant="LayerNorm gamma/beta names (.bin)",
             serialization="bin", gamma_beta=True),
        Spec("st-bert-mean-norm", "bert", "base",
             variant="sentence-transformers (Hub layout): mean pooling + Normalize",
             st={"format": "classic", "pooling": "mean", "normalize": True, "max_seq_length": 128}),
        Spec("st-mpnet-cls", "mpnet", "base",
             variant="sentence-transformers (Hub layout): CLS pooling, no Normalize",
             st={"format": "classic", "pooling": "cls", "normalize": False, "max_seq_length": 64}),
        Spec("st-roberta-mean-norm-st5", "roberta", "base",
             variant="sentence-transformers 5.x save layout: mean pooling + Normalize",
             st={"format": "native", "pooling": "mean", "normalize": True, "max_seq_length": 48}),
    ]
    return specs


SPECS: list[Spec] = _specs()
BY_NAME = {s.name: s for s in SPECS}

# ------------------------------------------------------------------ decoders (text-generation)
# Decoder-only language models for the text-generation parity tests, kept apart from the
# encoder matrix above. Sizes: hidden 64, 2 layers, 4 attention heads over 2 key/value heads
# (GQA), intermediate 96, max_position_embeddings 128 (small, so that the too-long prompt
# check is cheap). Variants exercise the config flags the Llama code reads: llama3 rope
# scaling, tied embeddings and attention/MLP biases; Qwen2's q/k/v biases and rope_theta;
# Mistral's sliding window (8, shorter than the test prompts plus generations).

DECODER_ARCHS = ["llama", "qwen2", "mistral", "gpt2"]
HEAD_TASK["causal-lm"] = "text-generation"
HEAD_AUTO["causal-lm"] = "AutoModelForCausalLM"
# Qwen2 has no tokenizer in ../shared/tokenizers: it uses GPT-2's byte-level BPE files.
TOKENIZER_OF.update({"llama": "llama2", "qwen2": "gpt2", "mistral": "llama2", "gpt2": "gpt2"})
MODEL_TYPE.update({a: a for a in DECODER_ARCHS})


def llama2_pair_merges(tokenizer_json: bytes) -> bytes:
    """The llama2 tokenizer.json's merges as [left, right] pairs.

    This copy (from onnxruntime-extensions) has U+00A0 written as a plain space in four tokens
    (ids 8655, 17891, 20246, 30081: "\xa0\xa0", "\xa0"*4, "▁\xa0", "\xa0" in Llama 2's
    tokenizer.model), so three of its "a b" merge strings ("   ", "     ", "▁  ") do not split
    into two tokens at one space: `tokenizers` 0.22 refuses the file ("Merges text file
    invalid"), AutoTokenizer with it (the folder has no tokenizer.model to convert instead),
    and hfpipe too. The [a, b] pair form, which `tokenizers` also reads, carries the same
    merges unambiguously: each is split at the one space where both halves and their
    concatenation are vocabulary tokens (unique for every merge of this file; checked). The
    space tokens cannot be produced by encoding (the normalizer turns every space into "▁").
    """
    doc = json.loads(tokenizer_json)
    vocab = doc["model"]["vocab"]
    pairs = []
    for merge in doc["model"]["merges"]:
        splits = [(merge[:i], merge[i + 1:]) for i, ch in enumerate(merge)
                  if ch == " " and merge[:i] in vocab and merge[i + 1:] in vocab
                  and merge[:i] + merge[i + 1:] in vocab]
        if len(splits) != 1:
            raise SystemExit(f"make_tiny_models: llama2 merge {merge!r} splits {len(splits)} ways")
        pairs.append(list(splits[0]))
    doc["model"]["merges"] = pairs
    return json.dumps(doc, ensure_ascii=False).encode()


# Chat input of the text-generation pipeline: two decoders get a real chat template, copied at
# make time from a model of the same tokenizer family (Phi-3's onto the llama2 SentencePiece
# tokenizer, Llama 3's onto GPT-2's byte-level BPE), and Qwen2's tokenizer a model_max_length of
# its 128 positions, so that handle_long_generation="hole" has a window to keep to.
CHAT_TEMPLATE_OF = {"llama": "phi-3-mini", "qwen2": "llama3-tiktoken"}
MODEL_MAX_LENGTH_OF = {"qwen2": 128}


def with_chat_template(arch: str, tokenizer_config: bytes) -> bytes:
    cfg = json.loads(tokenizer_config)
    source = json.loads((SHARED_TOKENIZERS / CHAT_TEMPLATE_OF[arch] / "tokenizer_config.json").read_text())
    cfg["chat_template"] = source["chat_template"]
    if arch in MODEL_MAX_LENGTH_OF:
        cfg["model_max_length"] = MODEL_MAX_LENGTH_OF[arch]
    return json.dumps(cfg, indent=2, ensure_ascii=False).encode()


def _decoder_specs() -> list[Spec]:
    specs = [Spec(f"{a}-causal-lm", a, "causal-lm") for a in DECODER_ARCHS]
    specs.append(Spec("llama-causal-lm-llama3rope-tied-bias", "llama", "causal-lm",
                      variant="llama3 rope scaling, tied embeddings, attention and MLP biases"))
    return specs


def make_decoder_config(spec: Spec, vocab_size: int):
    import transformers as tf
    if spec.arch in GEMMA_QWEN3_ARCHS:
        return make_gemma_qwen3_config(spec, vocab_size)
    common = dict(vocab_size=vocab_size, initializer_range=0.2)
    llama_like = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      intermediate_size=96, max_position_embeddings=128, rms_norm_eps=1e-6, **common)
    if spec.arch == "llama":
        extra = {}
        if spec.variant:
            extra = dict(tie_word_embeddings=True, attention_bias=True, mlp_bias=True,
                         rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                       "high_freq_factor": 4.0, "original_max_position_embeddings": 32})
        return tf.LlamaConfig(bos_token_id=1, eos_token_id=2, **llama_like, **extra)
    if spec.arch == "qwen2":
        return tf.Qwen2Config(rope_theta=1000000.0, bos_token_id=None, eos_token_id=50256, **llama_like)
    if spec.arch == "mistral":
        return tf.MistralConfig(sliding_window=8, bos_token_id=1, eos_token_id=2, **llama_like)
    if spec.arch == "gpt2":
        return tf.GPT2Config(n_embd=64, n_layer=2, n_head=4, n_positions=128, bos_token_id=50256,
                             eos_token_id=50256, **common)
    raise ValueError(spec.arch)


SPECS += _decoder_specs()

# GPT-Neo, GPT-NeoX (Pythia), OPT and Phi-3, plus Llama with the linear, dynamic and yarn
# rope_scaling types. Each switches on its family's options: GPT-Neo a local attention layer
# (window 8); GPT-NeoX partial rotary with the parallel residual, and a second one with the
# sequential residual, tied embeddings, no attention bias and dynamic NTK (max_position_
# embeddings 32, which generation passes); OPT project_in/out (word_embed_proj_dim 32), and a
# post-norm one; Phi-3 partial rotary, longrope (original length 32, passed while generating)
# and a sliding window of 16. The dynamic Llama's max_position_embeddings (40) is above every
# test prompt and below prompt + generation.
GEN_A_ARCHS = ["gpt_neo", "gpt_neox", "opt", "phi3"]
DECODER_ARCHS += GEN_A_ARCHS
TOKENIZER_OF.update({"gpt_neo": "gpt2", "gpt_neox": "gpt2", "opt": "gpt2", "phi3": "phi-3-mini"})
MODEL_TYPE.update({a: a for a in GEN_A_ARCHS})
GEN_A_VARIANTS = {
    "gpt_neox-causal-lm-sequential-dynamic": ("gpt_neox", "sequential residual, tied, dynamic NTK rope"),
    "opt-causal-lm-postnorm": ("opt", "post-norm layers (OPT-350m's layout)"),
    "llama-causal-lm-linear-rope": ("llama", "linear rope scaling"),
    "llama-causal-lm-dynamic-rope": ("llama", "dynamic NTK rope scaling"),
    "llama-causal-lm-yarn-rope": ("llama", "yarn rope scaling"),
}


def _gen_a_specs() -> list[Spec]:
    specs = [Spec(f"{a}-causal-lm", a, "causal-lm") for a in GEN_A_ARCHS]
    specs += [Spec(name, arch, "causal-lm", variant=v) for name, (arch, v) in GEN_A_VARIANTS.items()]
    return specs


GEN_A_NAMES = {s.name for s in _gen_a_specs()}


def make_gen_a_config(spec: Spec, vocab_size: int):
    import transformers as tf
    common = dict(vocab_size=vocab_size, initializer_range=0.2)
    gpt2_ids = dict(bos_token_id=50256, eos_token_id=50256)
    name = spec.name
    if spec.arch == "llama":
        scaling = {"llama-causal-lm-linear-rope": ({"rope_type": "linear", "factor": 2.0}, 128),
                   "llama-causal-lm-dynamic-rope": ({"rope_type": "dynamic", "factor": 2.0}, 40),
                   "llama-causal-lm-yarn-rope": ({"rope_type": "yarn", "factor": 4.0,
                                                  "original_max_position_embeddings": 32}, 128)}[name]
        return tf.LlamaConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                              intermediate_size=96, max_position_embeddings=scaling[1], rms_norm_eps=1e-6,
                              rope_scaling=scaling[0], bos_token_id=1, eos_token_id=2, **common)
    if spec.arch == "gpt_neo":
        return tf.GPTNeoConfig(hidden_size=64, num_layers=2, num_heads=4, intermediate_size=96,
                               attention_types=[[["global", "local"], 1]], window_size=8,
                               max_position_embeddings=128, **gpt2_ids, **common)
    if spec.arch == "gpt_neox":
        neox = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=96, **gpt2_ids,
                    **common)
        if spec.variant:
            return tf.GPTNeoXConfig(rotary_pct=0.25, use_parallel_residual=False, tie_word_embeddings=True,
                                    attention_bias=False, max_position_embeddings=32,
                                    rope_scaling={"rope_type": "dynamic", "factor": 2.0}, **neox)
        return tf.GPTNeoXConfig(rotary_pct=0.5, use_parallel_residual=True, max_position_embeddings=128, **neox)
    if spec.arch == "opt":
        opt = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, ffn_dim=96,
                   max_position_embeddings=128, **gpt2_ids, **common)
        if spec.variant:
            return tf.OPTConfig(do_layer_norm_before=False, **opt)
        return tf.OPTConfig(word_embed_proj_dim=32, **opt)
    if spec.arch == "phi3":
        rotary_half = 64 // 4 // 2 // 2   # head 16, partial_rotary_factor 0.5 -> 8 rotary dims
        return tf.Phi3Config(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                             intermediate_size=96, max_position_embeddings=128, original_max_position_embeddings=32,
                             partial_rotary_factor=0.5, sliding_window=16,
                             rope_scaling={"type": "longrope",
                                           "short_factor": [1.0 + 0.1 * i for i in range(rotary_half)],
                                           "long_factor": [2.0 + 1.5 * i for i in range(rotary_half)]},
                             bos_token_id=1, eos_token_id=32000, pad_token_id=32000, **common)
    raise ValueError(spec.arch)


SPECS += _gen_a_specs()
BY_NAME.update({s.name: s for s in SPECS})

# Gemma 1/2/3 and Qwen3 (text-generation). Gemma has no tokenizer in ../shared/tokenizers: its
# models use llama2's SentencePiece-BPE tokenizer.json (the closest: Gemma's is also a
# SentencePiece BPE with byte fallback), with bos/eos set to llama2's ids 1/2; Qwen3 uses GPT-2's
# byte-level BPE as Qwen2 does. What each exercises:
# - gemma:  MQA (1 key/value head, as Gemma 1 2B), head_dim 32 != hidden / heads, GeGLU,
#           (1 + weight) RMSNorm, sqrt(hidden) embedding scale, tied embeddings.
#           The others have an LM head of their own: with random weights, the sqrt(hidden)-scaled
#           embeddings dominate the residual stream and a tied head then mostly repeats the last
#           token, which would make 32 greedy tokens a weak test.
# - gemma2: 3 layers alternating sliding (window 6, shorter than the prompts and far shorter than
#           the 32 generated tokens) and full attention, query_pre_attn_scalar 24 != head_dim,
#           attention soft-capping 2.0 (eager attention only; sdpa, transformers' default,
#           ignores it) and final logit soft-capping 4.0, both small enough to change the logits.
# - gemma3: gemma3_text with sliding_window_pattern 3 (layers slide, slide, full), window 6,
#           q/k norms, global rope_theta 1e6 with linear rope_scaling 8 and local base 10000.
# - qwen3:  q/k per-head RMSNorm, explicit head_dim 32, no q/k/v bias.
# - gemma3mm: a gemma3 (multimodal) checkpoint, Gemma3ForConditionalGeneration with a 1-layer
#           SigLIP tower. save_pretrained writes the Hub's layout (language_model.model.*,
#           language_model.lm_head, vision_tower.*, ...; transformers renames them at load);
#           the language model is the gemma3 one above. text-generation runs the language model.
GEMMA_QWEN3_ARCHS = ["gemma", "gemma2", "gemma3", "qwen3", "gemma3mm"]
DECODER_ARCHS += GEMMA_QWEN3_ARCHS
TOKENIZER_OF.update({"gemma": "llama2", "gemma2": "llama2", "gemma3": "llama2", "qwen3": "gpt2", "gemma3mm": "llama2"})
MODEL_TYPE.update({"gemma": "gemma", "gemma2": "gemma2", "gemma3": "gemma3_text", "qwen3": "qwen3",
                   "gemma3mm": "gemma3"})


def make_gemma_qwen3_config(spec: Spec, vocab_size: int):
    import transformers as tf
    common = dict(vocab_size=vocab_size, initializer_range=0.2, hidden_size=64, intermediate_size=96,
                  max_position_embeddings=128, rms_norm_eps=1e-6)
    gemma_ids = dict(bos_token_id=1, eos_token_id=2, pad_token_id=0)
    if spec.arch == "gemma":
        return tf.GemmaConfig(num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1, head_dim=32,
                              hidden_act="gelu_pytorch_tanh", **gemma_ids, **common)
    if spec.arch == "gemma2":
        return tf.Gemma2Config(num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                               query_pre_attn_scalar=24, sliding_window=6, attn_logit_softcapping=2.0,
                               final_logit_softcapping=4.0, tie_word_embeddings=False, **gemma_ids, **common)
    gemma3_text = dict(num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                       query_pre_attn_scalar=32, sliding_window=6, sliding_window_pattern=3, rope_theta=1000000.0,
                       rope_local_base_freq=10000.0, rope_scaling={"rope_type": "linear", "factor": 8.0},
                       tie_word_embeddings=False, **gemma_ids, **common)
    if spec.arch == "gemma3":
        return tf.Gemma3TextConfig(**gemma3_text)
    if spec.arch == "gemma3mm":
        vision = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=1, num_attention_heads=2,
                      image_size=28, patch_size=7)
        return tf.Gemma3Config(text_config=gemma3_text, vision_config=vision, mm_tokens_per_image=4,
                               initializer_range=0.2, **gemma_ids)
    if spec.arch == "qwen3":
        return tf.Qwen3Config(num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=32,
                              rope_theta=1000000.0, bos_token_id=None, eos_token_id=50256, **common)
    raise ValueError(spec.arch)


SPECS += [Spec(f"{a}-causal-lm", a, "causal-lm",
               variant="Gemma3ForConditionalGeneration, Hub layout" if a == "gemma3mm" else "")
          for a in GEMMA_QWEN3_ARCHS]
BY_NAME.update({s.name: s for s in SPECS})


# ------------------------------------------------------------------ seq2seq (text2text-generation)
# Encoder-decoder models for the summarization / translation / text2text-generation parity tests.
# T5 v1.0 (ReLU MLP, lm_head tied to the shared embedding, so the d_model**-0.5 rescale runs)
# with t5-small's task_specific_params (prefixes and per-task generation defaults); T5 v1.1 /
# FLAN-T5 shape (gated-gelu, untied lm_head, 3 layers per stack, fewer relative-position
# buckets with a short max_distance so that short inputs reach the log buckets). Encoder and
# decoder depths are equal: transformers 4.57 sizes generate's cache by num_layers and fails
# (IndexError) when num_decoder_layers is larger. Sizes: d_model 32, 4 heads of d_kv 8, d_ff 37; the t5-small tokenizer.

#
# BART (post-norm, learned positions offset 2, layernorm_embedding, final_logits_bias, config's
# forced_eos_token_id 2) with bart-large-cnn's summarization task_specific_params; a
# DistilBART-shaped one (more encoder than decoder layers, forced_bos_token_id 0, gelu MLP);
# mBART and Pegasus (the pre-norm variants; Pegasus with sinusoidal positions and scaled
# embeddings). BART and mBART use roberta-base's tokenizer, Pegasus t5-small's (under
# tokenizer_class overrides where the model type would pick another class): the model code
# does not care which vocabulary feeds it. Sizes: d_model 32, 4 heads, ffn 37 (41 in the
# decoder), max_position_embeddings 64 (so the too-long-input check is cheap).

SEQ2SEQ_ARCHS = ["t5", "bart", "distilbart", "mbart", "pegasus", "marian", "mbart50", "m2m100", "nllb"]
HEAD_TASK["seq2seq"] = "text2text-generation"
HEAD_AUTO["seq2seq"] = "AutoModelForSeq2SeqLM"
TOKENIZER_OF.update({"t5": "t5-small", "bart": "roberta-base", "distilbart": "roberta-base",
                     "mbart": "roberta-base", "pegasus": "t5-small"})
MODEL_TYPE.update({"t5": "t5", "bart": "bart", "distilbart": "bart", "mbart": "mbart", "pegasus": "pegasus",
                   "marian": "marian"})
TOKENIZER_CLASS_OVERRIDE = {"mbart": "RobertaTokenizer", "pegasus": "T5Tokenizer"}

# The multilingual translation models (mBART-50, M2M100, NLLB) need their own tokenizer classes
# for their language codes, and no real files of those exist offline (nor of a Marian folder that
# MarianTokenizer reads: marian-nmt-sample's vocab.joint.spm is one transformers cannot load): a small sentencepiece BPE
# model is trained here on tests/python/tokenizer_corpus.txt (one thread: deterministic), and
# the transformers class writes the folder with its own save_pretrained, as
# tests/python/test_tokenizer_seq2seq.py does. M2M100 is fairseq-shaped: vocab.json starts
# <s> <pad> </s> <unk>, and its __xx__ language ids follow the vocabulary.
TRAINED_SPM = {"mbart50": "MBart50TokenizerFast", "m2m100": "M2M100Tokenizer", "nllb": "NllbTokenizerFast",
               "marian": "MarianTokenizer"}
CORPUS = REPO / "tests" / "python" / "tokenizer_corpus.txt"
TOKENIZER_OF.update({a: f"trained-spm:{c}" for a, c in TRAINED_SPM.items()})
MODEL_TYPE.update({"mbart50": "mbart", "m2m100": "m2m_100", "nllb": "m2m_100"})


def trained_spm_tokenizer_files(arch: str) -> dict[str, bytes]:
    import tempfile

    import sentencepiece as spm
    import transformers
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        spm.SentencePieceTrainer.train(input=str(CORPUS), model_prefix=str(root / "spm"), model_type="bpe",
                                       vocab_size=700, num_threads=1, character_coverage=0.98, minloglevel=2,
                                       byte_fallback=True)
        model_file = root / "spm.model"
        cls = TRAINED_SPM[arch]
        if cls == "M2M100Tokenizer":
            sp = spm.SentencePieceProcessor(model_file=str(model_file))
            vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
            for i in range(sp.get_piece_size()):
                vocab.setdefault(sp.id_to_piece(i), len(vocab))
            (root / "vocab.json").write_text(json.dumps(vocab))
            tok = transformers.M2M100Tokenizer(str(root / "vocab.json"), str(model_file))
        elif cls == "MarianTokenizer":
            # OPUS-MT's layout: </s> 0, <unk> 1, the pieces, <pad> last (the config decodes
            # from it); one model serves as source.spm and target.spm (shared vocabulary).
            sp = spm.SentencePieceProcessor(model_file=str(model_file))
            vocab = {"</s>": 0, "<unk>": 1}
            for i in range(sp.get_piece_size()):
                vocab.setdefault(sp.id_to_piece(i), len(vocab))
            vocab["<pad>"] = len(vocab)
            (root / "vocab.json").write_text(json.dumps(vocab))
            tok = transformers.MarianTokenizer(str(model_file), str(model_file), str(root / "vocab.json"))
        else:
            tok = getattr(transformers, cls)(vocab_file=str(model_file))
        tok.save_pretrained(root / "out")
        return {p.name: p.read_bytes() for p in (root / "out").iterdir() if p.is_file()}


def tokenizer_vocab_size(tok) -> int:
    """The model's vocab_size for a tokenizer: M2M100's language ids follow len(tokenizer)."""
    if type(tok).__name__ == "M2M100Tokenizer":
        return max(tok.get_lang_id(c) for c in tok.lang_code_to_id) + 1
    return len(tok)
BART_CNN_TASK_SPECIFIC_PARAMS = {
    "summarization": {"early_stopping": True, "length_penalty": 2.0, "max_length": 142, "min_length": 56,
                      "no_repeat_ngram_size": 3, "num_beams": 4}}

# t5-small's config.json task_specific_params (what the Hub checkpoint ships).
T5_TASK_SPECIFIC_PARAMS = {
    "summarization": {"early_stopping": True, "length_penalty": 2.0, "max_length": 200, "min_length": 30,
                      "no_repeat_ngram_size": 3, "num_beams": 4, "prefix": "summarize: "},
    "translation_en_to_de": {"early_stopping": True, "max_length": 300, "num_beams": 4,
                             "prefix": "translate English to German: "},
    "translation_en_to_fr": {"early_stopping": True, "max_length": 300, "num_beams": 4,
                             "prefix": "translate English to French: "},
    "translation_en_to_ro": {"early_stopping": True, "max_length": 300, "num_beams": 4,
                             "prefix": "translate English to Romanian: "},
}


def _seq2seq_specs() -> list[Spec]:
    return [Spec("t5-seq2seq", "t5", "seq2seq"),
            Spec("t5-v11-seq2seq", "t5", "seq2seq",
                 variant="T5 v1.1: gated-gelu, untied lm_head, 3 layers, 16 buckets / max distance 20"),
            Spec("bart-seq2seq", "bart", "seq2seq"),
            Spec("distilbart-seq2seq", "distilbart", "seq2seq"),
            Spec("mbart-seq2seq", "mbart", "seq2seq"),
            Spec("pegasus-seq2seq", "pegasus", "seq2seq"),
            Spec("marian-seq2seq", "marian", "seq2seq"),
            Spec("mbart50-seq2seq", "mbart50", "seq2seq"),
            Spec("m2m100-seq2seq", "m2m100", "seq2seq"),
            Spec("nllb-seq2seq", "nllb", "seq2seq")]


def make_seq2seq_config(spec: Spec, vocab_size: int):
    import transformers as tf
    common = dict(vocab_size=vocab_size, d_model=32, d_kv=8, num_heads=4, d_ff=37, num_layers=2,
                  initializer_factor=1.0, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    bart_like = dict(vocab_size=vocab_size, d_model=32, encoder_layers=2, decoder_layers=2,
                     encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=37, decoder_ffn_dim=41,
                     max_position_embeddings=64, init_std=0.2)
    if spec.arch == "bart":
        return tf.BartConfig(task_specific_params=BART_CNN_TASK_SPECIFIC_PARAMS, **bart_like)
    if spec.arch == "distilbart":
        bart_like.update(encoder_layers=3)
        return tf.BartConfig(forced_bos_token_id=0, **bart_like)
    if spec.arch == "mbart":
        return tf.MBartConfig(scale_embedding=True, **bart_like)
    if spec.arch == "mbart50":
        # mbart-large-50-many-to-many-mmt's ids: <s> 0, <pad> 1, </s> 2 (decoding starts from it);
        # 256 positions, as the small trained vocabulary makes the test texts long.
        bart_like.update(max_position_embeddings=256)
        return tf.MBartConfig(scale_embedding=True, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                              decoder_start_token_id=2, forced_eos_token_id=2, **bart_like)
    if spec.arch in ("m2m100", "nllb"):
        # m2m100_418M / nllb-200's ids and shape (relu MLP, scaled embeddings); NLLB names its
        # tokenizer class in config.json as the Hub checkpoints do, and gets one more encoder layer.
        if spec.arch == "nllb":
            bart_like.update(encoder_layers=3)
        extra = {"tokenizer_class": "NllbTokenizer"} if spec.arch == "nllb" else {}
        return tf.M2M100Config(scale_embedding=True, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                               decoder_start_token_id=2, activation_function="relu", **extra, **bart_like)
    if spec.arch == "pegasus":
        return tf.PegasusConfig(scale_embedding=True, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
                                forced_eos_token_id=1, **bart_like)
    if spec.arch == "marian":
        # OPUS-MT's shape: swish MLP, decoding from the pad token, eos 0 forced at the end;
        # 256 positions, as the small trained vocabulary makes the test texts long.
        bart_like.update(max_position_embeddings=256)
        return tf.MarianConfig(decoder_vocab_size=vocab_size, pad_token_id=vocab_size - 1,
                               decoder_start_token_id=vocab_size - 1, eos_token_id=0, forced_eos_token_id=0,
                               activation_function="swish", **bart_like)
    if spec.variant:
        common.update(num_layers=3)
        return tf.T5Config(feed_forward_proj="gated-gelu", tie_word_embeddings=False,
                           relative_attention_num_buckets=16, relative_attention_max_distance=20, **common)
    return tf.T5Config(feed_forward_proj="relu", task_specific_params=T5_TASK_SPECIFIC_PARAMS, **common)


SPECS += _seq2seq_specs()
BY_NAME.update({s.name: s for s in SPECS})


def names(*, task: str | None = None, variants: bool | None = None, st: bool | None = None,
          arch: str | None = None, head: str | None = None) -> list[str]:
    """Model names filtered by attributes (for test parametrisation; imports nothing heavy)."""
    out = []
    for s in SPECS:
        if task is not None and s.task != task:
            continue
        if variants is not None and bool(s.variant) != variants:
            continue
        if st is not None and (s.st is not None) != st:
            continue
        if arch is not None and s.arch != arch:
            continue
        if head is not None and s.head != head:
            continue
        out.append(s.name)
    return out


# ------------------------------------------------------------------ tokenizer files

def tokenizer_files(arch: str) -> dict[str, bytes]:
    """File name -> content of the real tokenizer files for an architecture."""
    src = TOKENIZER_OF[arch]
    if arch in TRAINED_SPM:
        return trained_spm_tokenizer_files(arch)
    if src == "all-mpnet-base-v2":
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from assemble_real_models import open_mpnet_zip   # noqa: E402
        wanted = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"}
        files = {}
        with open_mpnet_zip() as zf:
            for info in zf.infolist():
                base = info.filename.rsplit("/", 1)[-1]
                if info.filename.count("/") == 1 and base in wanted:
                    files[base] = zf.read(info)
        missing = wanted - set(files)
        if missing:
            raise SystemExit(f"make_tiny_models: all-mpnet-base-v2 zip lacks {sorted(missing)}")
        return files
    folder = SHARED_TOKENIZERS / src
    if not folder.is_dir():
        raise SystemExit(f"make_tiny_models: tokenizer folder {folder} not found "
                         "(../shared/tokenizers must sit beside the repository)")
    files = {p.name: p.read_bytes() for p in folder.iterdir()
             if p.is_file() and p.name != "SOURCE.txt"}
    if src == "llama2":
        files["tokenizer.json"] = llama2_pair_merges(files["tokenizer.json"])
    if arch in CHAT_TEMPLATE_OF:
        files["tokenizer_config.json"] = with_chat_template(arch, files["tokenizer_config.json"])
    override = ({"xlmr": "RobertaTokenizer"} | {a: "BertTokenizer" for a in BERT_TOKENIZER_CLASS}
                | TOKENIZER_CLASS_OVERRIDE)
    if arch in override:
        cfg = json.loads(files["tokenizer_config.json"])
        cfg["tokenizer_class"] = override[arch]
        files["tokenizer_config.json"] = json.dumps(cfg, indent=2).encode()
    return files


def write_tokenizer(folder: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (folder / name).write_bytes(data)      # new files: writable even if the source is not


# ------------------------------------------------------------------ models

def make_config(spec: Spec, vocab_size: int):
    import transformers as tf
    if spec.name in GEN_A_NAMES:
        return make_gen_a_config(spec, vocab_size)
    if spec.arch in DECODER_ARCHS:
        return make_decoder_config(spec, vocab_size)
    if spec.arch in SEQ2SEQ_ARCHS:
        return make_seq2seq_config(spec, vocab_size)
    common = dict(vocab_size=vocab_size, initializer_range=0.2)
    if spec.arch == "bert":
        cfg = tf.BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                            intermediate_size=37, max_position_embeddings=512, type_vocab_size=2,
                            pad_token_id=0, **common)
    elif spec.arch == "distilbert":
        cfg = tf.DistilBertConfig(dim=32, n_layers=2, n_heads=4, hidden_dim=37,
                                  max_position_embeddings=512, pad_token_id=0, **common)
    elif spec.arch in ("roberta", "xlmr"):
        cls = tf.RobertaConfig if spec.arch == "roberta" else tf.XLMRobertaConfig
        cfg = cls(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                  max_position_embeddings=514, type_vocab_size=1, pad_token_id=1, bos_token_id=0,
                  eos_token_id=2, **common)
    elif spec.arch == "mpnet":
        cfg = tf.MPNetConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                             intermediate_size=37, max_position_embeddings=514,
                             relative_attention_num_buckets=32, pad_token_id=1, bos_token_id=0,
                             eos_token_id=2, **common)
    elif spec.arch == "albert":
        # 4 layers in 2 groups of 2 inner layers: each group is applied twice (layers 0, 1 ->
        # group 0; 2, 3 -> group 1) and every application runs both inner layers.
        # (transformers needs inner_group_num <= num_hidden_layers / num_hidden_groups.)
        cfg = tf.AlbertConfig(embedding_size=16, hidden_size=32, num_hidden_layers=4,
                              num_hidden_groups=2, inner_group_num=2, num_attention_heads=4,
                              intermediate_size=37, max_position_embeddings=512, type_vocab_size=2,
                              pad_token_id=0, **common)
    elif spec.arch == "electra":
        cfg = tf.ElectraConfig(embedding_size=16, hidden_size=32, num_hidden_layers=2,
                               num_attention_heads=4, intermediate_size=37, max_position_embeddings=512,
                               type_vocab_size=2, pad_token_id=0, **common)
    elif spec.arch == "deberta":
        # v1 as microsoft/deberta-base configures it (pos_att_type as the "c2p|p2c" string),
        # with max_relative_positions small so that long inputs hit the clamp.
        cfg = tf.DebertaConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                               intermediate_size=37, max_position_embeddings=512, type_vocab_size=0,
                               relative_attention=True, max_relative_positions=16,
                               pos_att_type="c2p|p2c", pad_token_id=0, **common)
    elif spec.arch == "debertav2":
        # v2 with every option moved off its default: log buckets small enough that short
        # inputs reach them, separate position projections, token types, an embedding
        # projection, the convolution layer, absolute positions added to the input too.
        cfg = tf.DebertaV2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                 intermediate_size=37, max_position_embeddings=512, type_vocab_size=2,
                                 embedding_size=24, relative_attention=True, position_buckets=8,
                                 max_relative_positions=32, pos_att_type=["c2p", "p2c"],
                                 share_att_key=False, norm_rel_ebd="layer_norm", conv_kernel_size=3,
                                 conv_act="gelu", position_biased_input=True, pad_token_id=0,
                                 hidden_act="gelu", **common)
    elif spec.arch == "debertav3":
        # the shape of microsoft/deberta-v3-base and the NLI checkpoints fine-tuned from it
        cfg = tf.DebertaV2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                 intermediate_size=37, max_position_embeddings=512, type_vocab_size=0,
                                 relative_attention=True, position_buckets=256, max_relative_positions=-1,
                                 pos_att_type=["p2c", "c2p"], share_att_key=True,
                                 norm_rel_ebd="layer_norm", position_biased_input=False,
                                 layer_norm_eps=1e-7, legacy=False, pad_token_id=0, **common)
    else:
        raise ValueError(spec.arch)
    if spec.arch == "debertav3" and spec.head == "mlm":
        # transformers 4.57 ties the non-legacy head's lm_head.dense (its "output embeddings")
        # to the word embeddings when tie_word_embeddings is on, which breaks its forward.
        cfg.tie_word_embeddings = False
    if spec.head not in ("base", "qa", "mlm"):
        labels = spec.labels
        cfg.num_labels = 1 if labels is None else len(labels)
        if labels is not None:
            cfg.id2label = {i: l for i, l in enumerate(labels)}
            cfg.label2id = {l: i for i, l in enumerate(labels)}
        cfg.problem_type = PROBLEM_TYPE.get(spec.head)
    return cfg


def build_model(spec: Spec, vocab_size: int):
    import torch
    import transformers as tf
    torch.manual_seed(zlib.crc32(spec.name.encode()))
    cfg = make_config(spec, vocab_size)
    model = getattr(tf, spec.auto_class).from_config(cfg)
    with torch.no_grad():
        for p in model.parameters():
            if p.numel() > 0 and bool((p == p.reshape(-1)[0]).all()):
                p.add_(0.1 * torch.randn_like(p))
    model.eval()
    if spec.dtype:
        model = model.to(getattr(torch, spec.dtype))
    return model


def save_model(spec: Spec, model, folder: Path) -> None:
    import torch
    kwargs = {"safe_serialization": spec.serialization == "safetensors"}
    if spec.max_shard_size:
        kwargs["max_shard_size"] = spec.max_shard_size
    model.save_pretrained(folder, **kwargs)
    prefix = model.base_model_prefix
    if spec.prefixed_base:
        from safetensors.torch import load_file, save_file
        path = folder / "model.safetensors"
        state = load_file(path)
        save_file({f"{prefix}.{k}": v for k, v in state.items()}, path, metadata={"format": "pt"})
    if spec.gamma_beta:
        path = folder / "pytorch_model.bin"
        state = torch.load(path, weights_only=True)
        renamed = {}
        for k, v in state.items():
            k = k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
            renamed[k] = v
        assert any(k.endswith("LayerNorm.gamma") for k in renamed)
        torch.save(renamed, path)
    if spec.dtype and spec.dtype_key != "dtype":
        cfg_path = folder / "config.json"
        cfg = json.loads(cfg_path.read_text())
        cfg[spec.dtype_key] = cfg.pop("dtype", spec.dtype)
        cfg_path.write_text(json.dumps(cfg, indent=2) + "\n")


def verify_loads(spec: Spec, folder: Path) -> None:
    """transformers must reload every weight (no random fill) and the tokenizer class."""
    import transformers as tf
    _, info = getattr(tf, spec.auto_class).from_pretrained(folder, output_loading_info=True)
    bad = {k: v for k, v in info.items() if v}   # missing/unexpected/mismatched keys, errors
    if bad:
        raise SystemExit(f"make_tiny_models: {spec.name}: transformers does not reload it cleanly: {bad}")
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["model_type"] == MODEL_TYPE[spec.arch], (spec.name, cfg["model_type"])


def make_st(spec: Spec, base_folder: Path, folder: Path) -> None:
    """A sentence-transformers folder around the base model in base_folder.

    format "classic": the layout of the checkpoints on the Hub (all-MiniLM-L6-v2,
    all-mpnet-base-v2): modules.json with sentence_transformers.models.* types,
    1_Pooling/config.json with pooling_mode_*_tokens flags, sentence_bert_config.json with
    max_seq_length; written by hand, then checked to load in SentenceTransformer.
    format "native": what SentenceTransformer.save of the pinned version writes.
    """
    import warnings
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    from sentence_transformers import SentenceTransformer, models
    st = spec.st
    if st["format"] == "native":
        transformer = models.Transformer(str(base_folder), max_seq_length=st["max_seq_length"])
        modules = [transformer, models.Pooling(32, pooling_mode=st["pooling"])]
        if st["normalize"]:
            modules.append(models.Normalize())
        SentenceTransformer(modules=modules, device="cpu").save(str(folder))
    else:
        for p in base_folder.iterdir():
            shutil.move(str(p), folder / p.name)
        modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                   {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
        if st["normalize"]:
            modules.append({"idx": 2, "name": "2", "path": "2_Normalize",
                            "type": "sentence_transformers.models.Normalize"})
        (folder / "modules.json").write_text(json.dumps(modules, indent=2))
        (folder / "1_Pooling").mkdir()
        (folder / "1_Pooling" / "config.json").write_text(json.dumps({
            "word_embedding_dimension": 32,
            "pooling_mode_cls_token": st["pooling"] == "cls",
            "pooling_mode_mean_tokens": st["pooling"] == "mean",
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False}, indent=2))
        (folder / "sentence_bert_config.json").write_text(json.dumps(
            {"max_seq_length": st["max_seq_length"], "do_lower_case": False}, indent=2))
        (folder / "config_sentence_transformers.json").write_text(json.dumps(
            {"__version__": {"sentence_transformers": "2.0.0", "transformers": "4.6.1",
                             "pytorch": "1.8.1"}}, indent=2))
    model = SentenceTransformer(str(folder), device="cpu")
    if model.max_seq_length != st["max_seq_length"] or len(model) != 2 + st["normalize"]:
        raise SystemExit(f"make_tiny_models: {spec.name}: SentenceTransformer reads it back as "
                         f"max_seq_length={model.max_seq_length}, {len(model)} modules")


def make_one(spec: Spec, out: Path, tok_cache: dict, vocab_cache: dict) -> Path:
    folder = out / spec.name
    tmp = out / f".{spec.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if spec.arch not in tok_cache:
        tok_cache[spec.arch] = tokenizer_files(spec.arch)
    write_tokenizer(tmp, tok_cache[spec.arch])
    if spec.arch not in vocab_cache:
        from transformers import AutoTokenizer
        # the model type decides the tokenizer class: write a minimal config first
        (tmp / "config.json").write_text(json.dumps({"model_type": MODEL_TYPE[spec.arch]}))
        tok = AutoTokenizer.from_pretrained(tmp)
        vocab_cache[spec.arch] = (tokenizer_vocab_size(tok), type(tok).__name__)
    vocab_size, _ = vocab_cache[spec.arch]
    model = build_model(spec, vocab_size)
    if spec.st:
        base_tmp = out / f".{spec.name}.base.tmp"
        shutil.rmtree(base_tmp, ignore_errors=True)
        tmp.rename(base_tmp)
        tmp.mkdir()
        save_model(spec, model, base_tmp)
        make_st(spec, base_tmp, tmp)
        shutil.rmtree(base_tmp)
    else:
        save_model(spec, model, tmp)
    verify_loads(spec, tmp)
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    return folder


def describe(folder: Path) -> str:
    files = sorted(p.name for p in folder.iterdir() if p.is_file())
    weights = [f for f in files if f.endswith((".safetensors", ".bin"))]
    size = sum((folder / f).stat().st_size for f in weights)
    w = weights[0] if len(weights) == 1 else f"{len(weights)} weight files"
    return f"{w}, {size / 1e6:.1f} MB"


def stamp_of() -> str:
    import importlib.metadata as md
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for script in (here / "make_tiny_models.py", here / "assemble_real_models.py"):
        h.update(script.read_bytes())
    for dist in ("torch", "transformers", "tokenizers", "safetensors", "sentence-transformers"):
        try:
            h.update(f"{dist}={md.version(dist)};".encode())
        except md.PackageNotFoundError:
            h.update(f"{dist}=none;".encode())
    h.update(CORPUS.read_bytes())
    for src in sorted(set(TOKENIZER_OF.values())):
        folder = SHARED_TOKENIZERS / src
        if folder.is_dir():
            for p in sorted(folder.iterdir()):
                h.update(f"{p.name}:{p.stat().st_size};".encode())
    return h.hexdigest()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT,
                    help="output folder (default: %(default)s)")
    ap.add_argument("--force", action="store_true", help="rebuild even if up to date")
    ap.add_argument("--only", nargs="*", help="make only these models (no stamp written)")
    args = ap.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    stamp_path = out / ".stamp"
    stamp = stamp_of()
    specs = [BY_NAME[n] for n in args.only] if args.only else SPECS
    if not args.force and not args.only and stamp_path.is_file() \
            and stamp_path.read_text().strip() == stamp \
            and all((out / s.name / "config.json").is_file() for s in SPECS):
        print(f"tiny models up to date in {out} ({len(SPECS)} folders)")
        return 0

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    start = time.time()
    tok_cache, vocab_cache = {}, {}
    manifest = {}
    for spec in specs:
        folder = make_one(spec, out, tok_cache, vocab_cache)
        d = asdict(spec)
        d.update(task=spec.task, model_type=MODEL_TYPE[spec.arch],
                 tokenizer=TOKENIZER_OF[spec.arch], tokenizer_class=vocab_cache[spec.arch][1])
        manifest[spec.name] = d
        print(f"{folder}  [{spec.task}{', ' + spec.variant if spec.variant else ''}; {describe(folder)}]")
    if not args.only:
        try:   # drop folders of models this script no longer makes
            old = json.loads((out / "manifest.json").read_text())
        except (OSError, ValueError):
            old = {}
        for name in set(old) - set(BY_NAME):
            shutil.rmtree(out / name, ignore_errors=True)
        (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        stamp_path.write_text(stamp + "\n")
    print(f"made {len(specs)} tiny models in {out} in {time.time() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
