"""Model resolution from a Hugging Face cache (HF_HUB_CACHE / HF_HOME layout, offline):
`--model org/name [--revision R]` finds models--org--name/snapshots/<rev>/ through refs/."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

import hfpipe_helpers as H

TC = "text-classification"
REV_A = "a" * 40
REV_B = "0123456789abcdef0123456789abcdef01234567"


def add_snapshot(cache: Path, repo_id: str, rev: str, folder: Path) -> None:
    """The layout huggingface_hub writes: blobs by hash, snapshot files as relative symlinks."""
    root = cache / ("models--" + repo_id.replace("/", "--"))
    snap = root / "snapshots" / rev
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    for p in folder.rglob("*"):
        if not p.is_file():
            continue
        data = p.read_bytes()
        blob = root / "blobs" / hashlib.sha256(data).hexdigest()
        if not blob.exists():
            blob.write_bytes(data)
        link = snap / p.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))


def set_ref(cache: Path, repo_id: str, ref: str, rev: str) -> None:
    refs = cache / ("models--" + repo_id.replace("/", "--")) / "refs"
    refs.mkdir(parents=True, exist_ok=True)
    (refs / ref).write_text(rev)


@pytest.fixture(scope="module")
def hub_cache(tiny_models, tmp_path_factory):
    cache = tmp_path_factory.mktemp("hf-home") / "hub"
    add_snapshot(cache, "tiny-org/tiny-bert", REV_A, tiny_models / "bert-cls2")
    add_snapshot(cache, "tiny-org/tiny-bert", REV_B, tiny_models / "bert-cls5")
    set_ref(cache, "tiny-org/tiny-bert", "main", REV_A)
    set_ref(cache, "tiny-org/tiny-bert", "v2", REV_B)
    return cache


def _env(cache: Path, how: str) -> dict:
    if how == "HF_HUB_CACHE":
        return {"HF_HUB_CACHE": str(cache), "HF_HOME": str(cache.parent / "unused-home"),
                "HF_HUB_OFFLINE": "1"}
    return {"HF_HOME": str(cache.parent), "HF_HUB_CACHE": "", "HF_HUB_OFFLINE": "1"}


def _run(env: dict, *args) -> subprocess.CompletedProcess:
    """Run with env applied on top of os.environ; a value of "" removes the variable."""
    full = {k: v for k, v in os.environ.items() if env.get(k) != ""}
    full.update({k: v for k, v in env.items() if v != ""})
    return subprocess.run([str(a) for a in args], capture_output=True, env=full,
                          timeout=H.HFPIPE_TIMEOUT)


@pytest.mark.parametrize("how", ["HF_HUB_CACHE", "HF_HOME"])
def test_hub_id_resolves_refs_main(hfpipe_bin, reference, tiny_models, hub_cache, how):
    text = H.TEXTS["plain"]
    proc = _run(_env(hub_cache, how), str(hfpipe_bin), TC, "--model", "tiny-org/tiny-bert",
                "--param", "top_k=null", text)
    assert proc.returncode == 0, proc.stderr.decode()
    H.assert_same(json.loads(proc.stdout),
                  reference.reference_call(TC, tiny_models / "bert-cls2", text, {"top_k": None}),
                  what=f"tiny-org/tiny-bert via {how}")


@pytest.mark.parametrize("revision", [REV_B, "v2"], ids=["commit-hash", "ref-name"])
def test_revision(hfpipe_bin, reference, tiny_models, hub_cache, revision):
    text = H.TEXTS["plain"]
    proc = _run(_env(hub_cache, "HF_HUB_CACHE"), str(hfpipe_bin), TC, "--model",
                "tiny-org/tiny-bert", "--revision", revision, "--param", "top_k=null", text)
    assert proc.returncode == 0, proc.stderr.decode()
    H.assert_same(json.loads(proc.stdout),
                  reference.reference_call(TC, tiny_models / "bert-cls5", text, {"top_k": None}),
                  what=f"--revision {revision}")


def test_missing_hub_id_says_where_it_looked(hfpipe_bin, hub_cache):
    proc = _run(_env(hub_cache, "HF_HUB_CACHE"), str(hfpipe_bin), TC, "--model",
                "tiny-org/absent-model", "hi")
    line = H.error_line(proc)
    assert "tiny-org/absent-model" in line or "absent-model" in line, line
    assert str(hub_cache) in line or "cache" in line.lower(), line


def test_missing_revision(hfpipe_bin, hub_cache):
    proc = _run(_env(hub_cache, "HF_HUB_CACHE"), str(hfpipe_bin), TC, "--model",
                "tiny-org/tiny-bert", "--revision", "no-such-branch", "hi")
    line = H.error_line(proc)
    assert "no-such-branch" in line, line
