"""Fixtures of hfpipe's Python parity tests.

Environment:
  HFPIPE_BIN           the hfpipe binary (default: <repo>/build/hfpipe)
  HFPIPE_TINY_MODELS   where the tiny models are made (default: <repo>/build/tiny-models)
  HFPIPE_REAL_MODELS   where the real models are assembled (default: <repo>/models)
  HFPIPE_TEST_THREADS  --threads for every hfpipe run (default: none given, hfpipe's default)
  HFPIPE_TEST_TORCH_THREADS  torch threads of the reference side (default: 1)
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import hfpipe_helpers as H

REPO = H.REPO


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Make `--dist loadgroup` group again under pytest 9.2.

    pytest-xdist 3.8 tags each item of an xdist_group by appending "@<group>" to
    `item._nodeid`; pytest 9.2 keeps the node id in `item._id` (a NodeId), so the tag is lost
    and every test of a group is scheduled on its own (seen: the SmolLM2 GGUF tests on both
    workers, each loading the 60 s reference). This adds the tag where xdist's did not take,
    the same string xdist would have made; with a pytest where xdist's works, it does nothing."""
    if not getattr(config.option, "loadgroup", False):
        return
    for item in items:
        names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                        for m in item.iter_markers("xdist_group")})
        suffix = "@" + "_".join(names)
        if not names or item.nodeid.endswith(suffix):
            continue
        from _pytest.nodeid import NodeId
        item._id = NodeId.parse(item.nodeid + suffix)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def hfpipe_bin() -> Path:
    path = Path(os.environ.get("HFPIPE_BIN", REPO / "build" / "hfpipe"))
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(f"hfpipe binary not found or not executable at {path}: build it first "
                    "(cmake -S . -B build && cmake --build build) or set HFPIPE_BIN", pytrace=False)
    return path


def _run_script(script: str, out: Path) -> None:
    """Run a folder-making script under an exclusive lock on a file named after <out>.

    Each xdist worker has its own session, so without the lock both workers of a plain
    `pytest -n 2` on a fresh tree built the same folders at once (measured: 306 s and 287 s of
    setup, in parallel, into the same temporary folders). With it the second worker waits and
    then finds the folders up to date (the scripts are idempotent: ~1 s). The lock file is
    in the temporary directory, not beside <out>, which may be another tree's (models/)."""
    import fcntl
    import hashlib
    import tempfile
    cmd = [sys.executable, str(REPO / "scripts" / script), "--out", str(out)]
    key = hashlib.sha1(str(out.resolve()).encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"hfpipe-{script}-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n"
                    f"{proc.stderr[-3000:]}", pytrace=False)


@pytest.fixture(scope="session")
def tiny_models() -> Path:
    """The tiny models folder, made (or found up to date) once per session."""
    out = Path(os.environ.get("HFPIPE_TINY_MODELS", REPO / "build" / "tiny-models"))
    _run_script("make_tiny_models.py", out)
    return out


@pytest.fixture(scope="session")
def real_models() -> Path:
    """The real pretrained models (all-MiniLM-L6-v2, all-mpnet-base-v2), assembled once."""
    out = Path(os.environ.get("HFPIPE_REAL_MODELS", REPO / "models"))
    _run_script("assemble_real_models.py", out)
    return out


@pytest.fixture(scope="session")
def run_hfpipe(hfpipe_bin):
    """run_hfpipe(task, model, inputs, params=None, jsonl=True, batch_size=None, threads=None,
    extra=(), env=None) -> parsed JSON (a list of lines with jsonl, else the one document)."""
    def run(task, model, inputs, params=None, **kw):
        return H.run_hfpipe(hfpipe_bin, task, model, inputs, params, **kw)
    return run


@pytest.fixture(scope="session")
def run_hfpipe_raw(hfpipe_bin):
    """run_hfpipe_raw(args, stdin=None, env=None, cwd=None) -> CompletedProcess (bytes)."""
    def run(args, stdin=None, env=None, cwd=None):
        return H.run_raw([str(hfpipe_bin), *args], stdin=stdin, env=env, cwd=cwd)
    return run


@pytest.fixture(scope="session")
def assert_same():
    return H.assert_same


@pytest.fixture(scope="module", autouse=True)
def _references_per_module():
    """Each test module loads its own reference objects (H.reference_pipeline, reference_model,
    reference_tokenizer, ...), as when each kept its own cache: what one module changes on a
    tokenizer (src_lang) does not reach the next, and the models are freed after it."""
    yield
    H.clear_reference_caches()


@pytest.fixture(scope="module")
def reference():
    """The transformers / sentence-transformers reference side, cached per folder for the
    module (H.reference_outputs, H.reference_call, H.reference_sentence_embeddings)."""
    return H
