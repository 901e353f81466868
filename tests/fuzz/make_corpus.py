"""Regenerates the seed corpora of the fuzz targets (corpus/<target>/) with torch and
safetensors (and gguf-py for GGUF, the sentencepiece trainer for .model files). Seeds are small,
valid files of each kind; the fuzzer mutates them.

    .venv/bin/python tests/fuzz/make_corpus.py                        # every target
    .venv/bin/python tests/fuzz/make_corpus.py sentencepiece_model    # only some
"""

import contextlib
import io
import shutil
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path

import torch
from safetensors.torch import save as save_safetensors

HERE = Path(__file__).resolve().parent


def torch_bytes(obj, **kwargs):
    buf = io.BytesIO()
    torch.save(obj, buf, **kwargs)
    return buf.getvalue()


def data_pkl(archive):
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        return z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))


def seeds():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(2, 3, generator=g)
    mixed = OrderedDict(w=w, wt=w.t(), h=torch.randn(3, generator=g).half(), b=torch.ones(2, dtype=torch.bfloat16),
                        i=torch.arange(3), m=torch.tensor([True, False]), s=torch.tensor(1.5), e=torch.empty(0, 2))
    linear = torch.nn.Linear(2, 2).state_dict()  # an OrderedDict with _metadata (BUILD)

    yield "safetensors/mixed.safetensors", save_safetensors({k: v.contiguous() for k, v in mixed.items()})
    yield "safetensors/metadata.safetensors", save_safetensors({"x": torch.ones(4)}, metadata={"format": "pt"})
    yield "safetensors/f64_i8.safetensors", save_safetensors(
        {"d": torch.ones(2, dtype=torch.float64), "c": torch.ones(3, dtype=torch.int8)})

    yield "pytorch_bin/mixed.bin", torch_bytes(mixed)
    yield "pytorch_bin/protocol4.bin", torch_bytes({"w": w, "x": w[1:]}, pickle_protocol=4)
    yield "pytorch_bin/linear.bin", torch_bytes(linear)
    yield "pytorch_bin/uint16_v3.bin", torch_bytes({"u": torch.ones(2, dtype=torch.uint16)})

    # torch_pickle: the target supplies storage "0" (64 bytes) and "1" (6 bytes), which is
    # what torch names the first two storages of these dicts.
    base = torch.zeros(16)
    yield "torch_pickle/views.pkl", data_pkl(torch_bytes(
        OrderedDict(a=base, t=base.view(4, 4).t(), s=base[3:9], e=base[:1].expand(5), u=torch.zeros(6, dtype=torch.uint8))))
    yield "torch_pickle/half.pkl", data_pkl(torch_bytes({"h": torch.zeros(32, dtype=torch.float16).view(4, 8)[:, ::2]}))
    yield "torch_pickle/protocol5.pkl", data_pkl(torch_bytes({"p": torch.nn.Parameter(base)}, pickle_protocol=5))
    yield "torch_pickle/linear.pkl", data_pkl(torch_bytes(OrderedDict(weight=base.view(4, 4), bias=torch.zeros(6, dtype=torch.uint8))))


def gguf_bytes(tensors, **metadata):
    """A small GGUF file; tensors: name -> (ggml type, float array)."""
    import tempfile
    import gguf
    import numpy as np
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "seed.gguf"
        writer = gguf.GGUFWriter(str(path), "llama")
        for key, value in metadata.items():
            writer.add_key_value(key, value, gguf.GGUFValueType.get_type(value))
        for name, (qtype, data) in tensors.items():
            data = np.asarray(data, dtype=np.float32)
            if qtype == gguf.GGMLQuantizationType.F32:
                writer.add_tensor(name, data)
            else:
                writer.add_tensor(name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)
        writer.write_header_to_file(); writer.write_kv_data_to_file(); writer.write_tensors_to_file(); writer.close()
        return path.read_bytes()


def gguf_seeds():
    import gguf
    import numpy as np
    Q = gguf.GGMLQuantizationType
    rng = np.random.default_rng(0)
    yield "gguf/f32_meta.gguf", gguf_bytes({"w": (Q.F32, rng.normal(size=(2, 4)))},
                                           **{"general.name": "seed", "t.tokens": ["a", "b"], "t.n": 3})
    yield "gguf/q8_q4.gguf", gguf_bytes({"a": (Q.Q8_0, rng.normal(size=(1, 32))),
                                         "b": (Q.Q4_0, rng.normal(size=(1, 32)))})


# A few normalisation rules in sentencepiece's TSV form (source code points, tab, target code
# points), so that a seed carries a precompiled charsmap of a few hundred bytes instead of
# nmt_nfkc's 240 KB: fullwidth A-C, the fi ligature, no-break space, a two-code-point source.
CHARSMAP_RULES = "FF21\t41\nFF22\t42\nFF23\t43\nFB01\t66 69\nA0\t20\n65 301\tE9\n"


def sentencepiece_bytes(tmp, **options):
    """A sentencepiece model trained on the Latin-script lines of the tokenizer parity corpus."""
    import sentencepiece as spm
    lines = (HERE.parent / "python" / "tokenizer_corpus.txt").read_text(encoding="utf-8").splitlines()
    latin = [line for line in lines if line and all(ord(c) < 0x250 for c in line)]
    if options.pop("charsmap", False):
        (Path(tmp) / "rules.tsv").write_text(CHARSMAP_RULES)
        options["normalization_rule_tsv"] = "rules.tsv"  # relative: the model records the path
    else:
        options["normalization_rule_name"] = "identity"
    buf = io.BytesIO()
    # One thread, a fixed corpus and no temporary path in the trainer spec: the same bytes on every run.
    with contextlib.chdir(tmp):
        spm.SentencePieceTrainer.train(sentence_iterator=iter(latin), model_writer=buf, character_coverage=0.9995,
                                       hard_vocab_limit=False, num_threads=1, minloglevel=2, **options)
    return buf.getvalue()


def sentencepiece_seeds():
    """Small models (a few hundred pieces, < 10 KB) so that mutations reach the Unigram / BPE
    converters and the tokenizer rather than only the protobuf reader's error paths."""
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        folder = "sentencepiece_model"
        yield f"{folder}/small_unigram.model", sentencepiece_bytes(tmp, model_type="unigram", vocab_size=300)
        yield f"{folder}/small_unigram_byte_fallback.model", sentencepiece_bytes(
            tmp, model_type="unigram", vocab_size=450, byte_fallback=True, charsmap=True,
            user_defined_symbols=["<sep>", "<mask>"], control_symbols=["<cls>"])
        yield f"{folder}/small_bpe.model", sentencepiece_bytes(
            tmp, model_type="bpe", vocab_size=300, add_dummy_prefix=False, unk_surface="<?>")
        yield f"{folder}/small_bpe_byte_fallback.model", sentencepiece_bytes(
            tmp, model_type="bpe", vocab_size=450, byte_fallback=True, charsmap=True, split_digits=True,
            remove_extra_whitespaces=False, pad_id=3, unk_id=1, bos_id=0, eos_id=2)


# The folders make_corpus.py owns outright (cleared and rewritten); sentencepiece_model also
# holds older seeds and fuzz reproducers, so its seeds are only (re)written.
GENERATORS = {"safetensors": seeds, "pytorch_bin": seeds, "torch_pickle": seeds, "gguf": gguf_seeds,
              "sentencepiece_model": sentencepiece_seeds}
OWNED = {"safetensors", "pytorch_bin", "torch_pickle", "gguf"}


def main():
    targets = sys.argv[1:] or list(GENERATORS)
    for target in targets:
        if target in OWNED:
            shutil.rmtree(HERE / "corpus" / target, ignore_errors=True)
        (HERE / "corpus" / target).mkdir(parents=True, exist_ok=True)
    for generator in dict.fromkeys(GENERATORS[t] for t in targets):
        for name, data in generator():
            if name.split("/")[0] in targets:
                (HERE / "corpus" / name).write_bytes(data)
                print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
