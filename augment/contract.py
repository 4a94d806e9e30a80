"""The data contract: discovering `<root>/<domain>/<split>/<class>/<image>` and checking its shape.

Layout problems (missing folders, no classes, target classes unknown to the source) are errors
that name the folder; individual bad files are not errors here, they are rejected later.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from augment.images import IMAGE_SUFFIXES

SPLITS = ("train", "test")


class DataLayoutError(ValueError):
    """The folders do not follow the data contract; the message names the folder and the fix."""


@dataclass(frozen=True)
class FoundFile:
    path: Path
    domain: str
    role: str  # "source" or "target"
    split: str  # "train" or "test"
    label: str | None  # class folder name; None for a flat (unlabeled) target train file
    problem: str | None = None  # why it is refused before it is read (a link, a hidden file); rejected.csv says it


def natural_key(name: str) -> tuple:
    """'2' < '10' and '00' < '01': numbers compare as numbers, the rest as text."""
    return tuple(int(tok) if tok.isdigit() else tok for tok in re.split(r"(\d+)", name))


def _link_problem(path: Path, root: Path) -> str | None:
    """Why a symlink cannot be used, or None: broken, a loop, out of the data root, not a file."""
    try:
        target = path.resolve(strict=True)
    except FileNotFoundError:
        return "broken symlink (its target does not exist)"
    except (RuntimeError, OSError) as exc:  # a loop: RuntimeError or ELOOP, by Python version
        return f"symlink loop ({exc})"
    if not target.is_relative_to(root.resolve()):
        return f"symlink out of the data root (to {target}); refused"
    if not target.is_file():
        return "symlink to something that is not a file"
    return None


def _entries(folder: Path, root: Path, *, recurse: bool) -> list[tuple[Path, str | None]]:
    """The files under `folder` (only its direct files when not `recurse`), each with the reason it is
    refused before reading, or None. Hidden files (.DS_Store, ._foo.png) and folders are never data
    and symlinked folders are not followed: they are listed with the reason instead of silently
    skipped. Every other file is tried; a wrong suffix shows up in rejected.csv, not as a skip."""
    found = []
    for here, dirs, files in os.walk(folder, followlinks=False):
        here = Path(here)
        kept = []
        for d in sorted(dirs):
            path = here / d
            if not recurse:
                continue
            if path.is_symlink():
                found.append((path, "symlinked folder, not followed"))
            elif d.startswith("."):
                found.append((path, "hidden folder, not searched"))
            else:
                kept.append(d)
        dirs[:] = kept
        for name in sorted(files):
            path = here / name
            if name.startswith("."):
                found.append((path, "hidden file (names starting with '.' are never images)"))
            elif path.is_symlink():
                found.append((path, _link_problem(path, root)))
            else:
                found.append((path, None))
        if not recurse:
            break
    return found


def _split_dir(root: Path, domain: str, split: str) -> Path:
    d = root / domain / split
    if d.exists() and not d.is_dir():
        raise DataLayoutError(f"{d}: a file, not a folder. Expected <data.root>/<domain>/{{train,test}}/<class>/<images>")
    if not d.is_dir():
        raise DataLayoutError(
            f"{d}: missing. Expected <data.root>/<domain>/{{train,test}}/<class>/<images>; "
            f"found under {root / domain}: {sorted(p.name for p in (root / domain).iterdir()) if (root / domain).is_dir() else 'nothing (folder missing)'}"
        )
    return d


def _beside_splits(root: Path, domain: str, role: str) -> list[FoundFile]:
    """What a domain folder holds besides train/ and test/ (a val/ split, a README): never read, and
    listed in rejected.csv with the reason rather than silently ignored. One row per folder."""
    out = []
    for p in sorted((root / domain).iterdir(), key=lambda p: natural_key(p.name)):
        if p.name in SPLITS:
            continue
        kind = "folder" if p.is_dir() else "file"
        out.append(FoundFile(p, domain, role, "", None, f"{kind} beside train/ and test/ (the only splits the pipeline reads): not read"))
    return out


def discover_domain(root: Path, domain: str, role: str) -> list[FoundFile]:
    found: list[FoundFile] = _beside_splits(root, domain, role)
    for split in SPLITS:
        d = _split_dir(root, domain, split)
        class_dirs = sorted((p for p in d.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")),
                            key=lambda p: natural_key(p.name))
        flat = [(p, why) for p, why in _entries(d, root, recurse=False) if why or p.is_file()]
        labeled_required = role == "source" or split == "test"
        if labeled_required and any(why is None for _, why in flat):
            first = next(p for p, why in flat if why is None)
            raise DataLayoutError(
                f"{d}: {sum(why is None for _, why in flat)} files directly in the folder (e.g. {first.name}); the {role} {split} split must be "
                f"labeled, one sub-folder per class. Only the target train split may be flat."
            )
        if labeled_required and not class_dirs:
            raise DataLayoutError(f"{d}: no class folders; expected {d}/<class>/<images>")
        for f, why in flat:
            found.append(FoundFile(f, domain, role, split, None, why))
        for cd in class_dirs:
            for f, why in _entries(cd, root, recurse=True):  # nested folders inside a class folder are that class
                found.append(FoundFile(f, domain, role, split, cd.name, why))
        if not any(ff.split == split and ff.domain == domain and ff.problem is None for ff in found):
            raise DataLayoutError(f"{d}: no files found; expected images with suffixes {', '.join(IMAGE_SUFFIXES)}")
    return found


def discover(root: str | Path, source: str, target: str) -> tuple[list[FoundFile], list[str]]:
    """All candidate files of both domains, and the sorted source classes."""
    root = Path(root)
    if not root.is_dir():
        raise DataLayoutError(f"data.root {root}: not a folder. It must hold <source>/ and <target>/ (data.source={source!r}, data.target={target!r})")
    for domain, key in ((source, "data.source"), (target, "data.target")):
        if not (root / domain).is_dir():
            present = sorted(p.name for p in root.iterdir() if p.is_dir())
            raise DataLayoutError(f"{root / domain}: missing ({key}={domain!r}); domains present in {root}: {present}")
    files = discover_domain(root, source, "source") + discover_domain(root, target, "target")
    classes = sorted({f.label for f in files if f.role == "source" and f.split == "train" and f.label is not None}, key=natural_key)
    check_classes(classes, files, root / source, root / target)
    return files, classes


def check_classes(source_classes: list[str], files: list[FoundFile], source_dir: Path, target_dir: Path) -> None:
    """Every labeled class (source test, target test, labeled target train) must have source train
    images: a class no arm can learn from the source would count against every arm but the oracle."""
    known = set(source_classes)
    for role, folder in (("source", source_dir), ("target", target_dir)):
        for split in SPLITS:
            labels = {f.label for f in files if f.role == role and f.split == split and f.label is not None}
            missing = sorted(labels - known, key=natural_key)
            if missing:
                raise DataLayoutError(
                    f"{folder / split}: classes {missing} have no images in {source_dir / 'train'}; every labeled class "
                    f"needs labeled source train images. Source train classes: {source_classes}"
                )
