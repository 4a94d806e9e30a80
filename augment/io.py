"""Atomic writes (a killed stage leaves either the previous file/folder or the new one, never half of one), content hashes, and the manifest reader."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import pandas as pd


class StaleInput(Exception):
    """A file a stage reads differs from the content its DVC dependency pinned."""


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside `path`; on success rename it onto `path`, on error remove it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty temp folder beside `path`; on success it replaces `path` whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a killed earlier run
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def save_module(module, arch: dict, path: str | Path) -> None:
    """A network's state dict with the constructor arguments (`arch`, incl. "name") that rebuild it."""
    import torch

    with atomic_path(path) as tmp:
        torch.save({"arch": arch, "state_dict": module.state_dict()}, tmp)


def load_module(path: str | Path, build, *, device="cpu"):
    """Rebuild with `build(name, **arch)` and load the weights written by `save_module`; eval mode."""
    import torch

    blob = torch.load(path, map_location=device, weights_only=True)
    arch = dict(blob["arch"])
    net = build(arch.pop("name"), **arch)
    net.load_state_dict(blob["state_dict"])
    return net.to(device).eval()


def read_manifest(folder: str | Path, *, written_by: str) -> pd.DataFrame:
    """`<folder>/manifest.csv` as written by stage `written_by`; a missing one names the stage to run."""
    path = Path(folder) / "manifest.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; run the {written_by} stage first (dvc repro {written_by})")
    return pd.read_csv(path, dtype={"label": str}, keep_default_na=False)


def write_json(data: object, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_csv(df: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)


def write_text(text: str, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
