#!/usr/bin/env python3
"""hfpipe vs transformers on the encoder tasks of issue 4, in one invocation, on this machine.

usage: .venv/bin/python bench/bench_encoder_tasks.py [--threads 1,2] [--quick] [--hfpipe build/hfpipe]
                                                      [--json results.json]

Workloads (BERT-base-shaped models with random weights and a fixed seed: 12 layers, hidden 768,
12 heads, intermediate 3072, bert-base-uncased's tokenizer; made by this script into
build/bench-models/), each at batch 1 and 16, in items/s:
- token-classification (aggregation_strategy "simple", 9 B-/I- labels) on ~48-token sentences
- question-answering: a ~20-token question over a ~384-token context (max_seq_len 384, so the
  context overflows into a second chunk, as it does in real use)
- zero-shot-classification: ~32-token texts against 10 candidate labels (10 pairs per item)

Measured as bench_encoders.py measures (its runners are reused, the call's keyword arguments
passed to both sides): hfpipe's CLI with --jsonl,
throughput = (N-1) / (t_N - t_1) so start-up and loading cancel out; transformers' pipeline in a
warm worker process with torch.set_num_threads equal to hfpipe's --threads; best of R runs.
Prints markdown tables on stdout. Not part of the pytest run.
"""
from __future__ import annotations

import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_encoders as B  # noqa: E402

GOAL = 2.0
NER_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
NLI_LABELS = ["contradiction", "neutral", "entailment"]
CANDIDATES = ["politics", "sports", "music", "science", "cooking", "travel", "finance", "health",
              "weather", "film"]


def ensure_model(kind: str) -> Path:
    """build/bench-models/bert-base-<kind>: BERT-base shape, random weights."""
    folder = B.BENCH_MODELS / f"bert-base-{kind}"
    want = f"seed={B.SEED};{kind};v1"
    if B.bench_model_ready(folder, want):
        return folder
    import torch
    import transformers as tf
    torch.manual_seed(B.SEED)
    shape = dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072, max_position_embeddings=512)
    if kind == "ner":
        cfg = tf.BertConfig(**shape, id2label=dict(enumerate(NER_LABELS)),
                            label2id={l: i for i, l in enumerate(NER_LABELS)})
        model = tf.BertForTokenClassification(cfg)
    elif kind == "qa":
        model = tf.BertForQuestionAnswering(tf.BertConfig(**shape))
    else:
        cfg = tf.BertConfig(**shape, id2label=dict(enumerate(NLI_LABELS)),
                            label2id={l: i for i, l in enumerate(NLI_LABELS)})
        model = tf.BertForSequenceClassification(cfg)
    return B.save_bench_model(model, folder, "bert-base-uncased", want)


def sentences(folder: Path, tokens: int, n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    texts = B.make_inputs(folder, tokens, n)
    # make_inputs draws words only; add capitalised names so NER has something to group
    return [t.replace(" ", f" {rng.choice(['Paris', 'Anna', 'Google', 'Berlin'])} ", 1) for t in texts]


def qa_inputs(folder: Path, n: int) -> list[dict]:
    questions = B.make_inputs(folder, 20, n)
    contexts = B.make_inputs(folder, 384, n)
    return [{"question": q.rstrip(".") + "?", "context": c} for q, c in zip(questions, contexts)]


def workloads(n: int):
    ner, qa, nli = ensure_model("ner"), ensure_model("qa"), ensure_model("nli")
    return [
        ("token-classification", "~48-token sentences", ner, sentences(ner, 48, n, 1),
         {"aggregation_strategy": "simple"}),
        ("question-answering", "20-token question, 384-token context", qa, qa_inputs(qa, n),
         {"max_seq_len": 384}),
        ("zero-shot-classification", "~32-token texts x 10 labels", nli, B.make_inputs(nli, 32, n),
         {"candidate_labels": CANDIDATES}),
    ]


def main() -> int:
    args = B.bench_args(__doc__, "bench_encoder_tasks.py", bfloat16=True)
    if args is None:
        return 2
    n1, n16, repeats = (8, 32, 1) if args.quick else (32, 128, 3)

    def measure(rows):
        for task, label, folder, inputs, kwargs in workloads(max(n1, n16)):
            for row in B.compare_batches(args, task, task, folder, inputs, [(1, n1), (16, n16)], kwargs, repeats):
                rows.append({"task": task, "input": label, **row})
            if args.json:
                args.json.write_text(json.dumps(rows, indent=1))

    def report(rows):
        return B.ratio_report("Encoder tasks: hfpipe vs transformers", args,
                              f"{n1} items at batch 1, {n16} at batch 16, best of {repeats}",
                              [("task", "task"), ("input", "input"), ("threads", "threads"), ("batch", "batch")],
                              rows, "items/s", GOAL)

    return B.run_and_report(args, measure, report)


if __name__ == "__main__":
    sys.exit(main())
