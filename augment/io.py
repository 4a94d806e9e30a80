"""Atomic writes (a killed stage leaves either the previous file/folder or the new one, never half of one), content hashes, and the manifest reader."""
from __future__ import annotations

import contextlib
import errno
import hashlib
import io
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


class BadInputFile(ValueError):
    """A file a params key names is missing or not what the key asks for; the message names both."""


class NoSpace(Exception):
    """Writing an output found no room: a full disk, a quota, a file size limit; the message names the output."""


def _mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


def _written(tmp: Path) -> int:
    """Disk space taken under `tmp` (a file, or a folder walked): blocks, not lengths, since many small
    files take a block each; 0 for what cannot be read."""
    def used(f: Path) -> int:
        st = f.stat()
        return st.st_blocks * 512 if hasattr(st, "st_blocks") else st.st_size

    try:
        return used(tmp) if tmp.is_file() else sum(used(f) for f in tmp.rglob("*") if f.is_file())
    except OSError:
        return 0


# What a write that found no room says, and what to do about it.
_NO_ROOM = {
    errno.ENOSPC: "free some space and run again",
    errno.EDQUOT: "free some space or raise your disk quota, and run again",
    errno.EFBIG: "a file may not grow that large here (the filesystem's limit, or `ulimit -f`)",
}


def _no_room(exc: OSError) -> int | None:
    """The errno of a write that found no room, also inside shutil.copytree's Error, which lists each
    file's failure as text; None for any other failure."""
    if exc.errno in _NO_ROOM:
        return exc.errno
    failures = exc.args[0] if isinstance(exc, shutil.Error) and exc.args and isinstance(exc.args[0], list) else []
    return next((code for failure in failures for code in _NO_ROOM if os.strerror(code) in str(failure)), None)


@contextlib.contextmanager
def _names_no_room(path: Path, tmp: Path) -> Iterator[None]:
    """A full disk, quota or file size limit, met anywhere while `path` is written (through `tmp`), is
    re-raised as NoSpace naming `path`, what had been written of it and the filesystem's size."""
    try:
        yield
    except OSError as exc:
        code = _no_room(exc)
        if code is None:
            raise
        try:
            size = f"on a filesystem of {_mib(shutil.disk_usage(path.parent).total)}"
        except OSError:
            size = "on its filesystem"
        raise NoSpace(f"{path}: {os.strerror(code).lower()} after {_mib(_written(tmp))} of it was written {size}; "
                      f"nothing was half-written: {_NO_ROOM[code]} (`dvc checkout` brings back the last good "
                      "outputs)") from exc


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
        with _names_no_room(path, tmp):
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
        with _names_no_room(path, tmp):
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
    save_torch({"arch": arch, "state_dict": module.state_dict()}, path)


def save_torch(obj: object, path: str | Path) -> None:
    """`torch.save`, serialised in memory and then written: a full disk then raises OSError (NoSpace
    naming `path`); torch.save to a file itself raises its opaque "unexpected pos" RuntimeError.
    The archive inside is named as for any buffer, not after the temporary file, so the same weights
    give the same bytes and DVC re-runs nothing downstream of an identical re-run."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getbuffer())


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
