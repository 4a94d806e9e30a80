"""The prepare stage's core: validated, resized images, `manifest.csv`, `rejected.csv`, `dataset.json`.

Output layout (under `out_dir`):
    pixels.npy      every accepted image, canonical size and channels: row i is manifest row i (augment/pixels.py)
    images/<domain>/<split>/<class or _unlabeled>/<id>.png   the same images as PNGs, for people (not hashed by DVC)
    manifest.csv    one row per accepted image (see MANIFEST_COLUMNS)
    rejected.csv    one row per unusable file: source_path, domain, split, reason
    duplicates.csv  one picture found in both a train and a test split (they inflate test scores)
    repeats.csv     one picture a test split holds more than once (each counts as often)
    label_conflicts.csv  one labeled picture filed under different classes (one image, two labels)
    domain_copies.csv    one picture found in both domains (target images that are source images)
    In these four, one picture is files whose images come out identical, pixel for pixel, at the prepared
    size and channels (`picture`): copies of a file, and a picture saved again in another lossless format
    or with other metadata; `sha256` says which of them are copies of one file.
    dataset.json    classes, domains, channels, image size, counts
    views/<consumer>.json  the sha256 of what each GAN stage reads (augment/prepared_views.py)
"""
from __future__ import annotations

import hashlib
import json
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from augment.contract import (FOLDER_REASONS, DataLayoutError, FoundFile, check_classes, discover, listed, rejection_kinds, shown,
                              source_classes, unreadable_splits)
from augment.images import DEFAULT_MAX_PIXELS, ImageRejected, canonical, decode, stored_pixels
from augment.io import StaleInput, atomic_dir, sha256_file, write_csv, write_json
from augment.pixels import PixelWriter, read_pixels, write_pngs
from augment.prepared_views import write_views

MANIFEST_COLUMNS = [
    "path", "source_path", "domain", "role", "split", "label", "label_index",
    "sha256", "picture", "width", "height",
]
REJECTED_COLUMNS = ["source_path", "domain", "split", "reason"]
UNLABELED = "_unlabeled"


@dataclass(frozen=True)
class PrepareConfig:
    dataset: str  # "digits" or "folders"
    root: str
    source: str
    target: str
    image_size: int
    channels: int
    split_seed: int = 0
    test_fraction_source: float = 0.2
    test_fraction_target: float = 0.3
    max_image_pixels: int = DEFAULT_MAX_PIXELS
    resize: str = "stretch"  # how a non-square image becomes square (augment/images.py RESIZE_MODES)
    colour_profiles: str = "as_stored"  # data.colour_profiles: srgb converts files that embed a colour profile
    classes: tuple[str, ...] = ()  # the classes kept (data.classes); () keeps all
    index: str | None = None  # index_raw's listing of data.root, which dvc.lock pins: every file read must match it (`_same_as_listed`)
    workers: int = 1  # files decoded at once (threads); the output does not depend on it


@dataclass(frozen=True)
class ReadFile:
    """One found file as prepare reads it: its canonical pixels, stored (width, height), the file's
    sha256 and the picture's (`picture_hash`); or none of these, and `file.problem` says why it is rejected."""
    file: FoundFile
    pixels: np.ndarray | None = None
    size: tuple[int, int] | None = None
    sha256: str | None = None
    picture: str | None = None


def picture_hash(pixels: np.ndarray) -> str:
    """The sha256 of canonical pixels with their shape: files that decode to one picture at the
    prepared size share it, whatever their format, metadata or bytes."""
    h = hashlib.sha256(repr(pixels.shape).encode())
    h.update(np.ascontiguousarray(pixels).tobytes())
    return h.hexdigest()


# Decoding threads pay only where decoding outweighs the Python work around each file, which holds
# the GIL. Measured on 2 cores with 2 threads: 32 px PNGs (SynSigns) 40% slower, 64 px PNGs 10%
# slower, 160x120 JPEGs the same, 320x240 JPEGs 1.3x faster, 256 px PNGs and 1280x720 JPEGs 1.7-1.8x.
THREADS_FROM_PIXELS = 160 * 120


def decoding_threads(files: list[FoundFile], workers: int, *, sample: int = 32) -> int:
    """`workers`, or 1 when the median image (of `sample` spread over the readable files, from their
    headers) is smaller than THREADS_FROM_PIXELS."""
    if workers <= 1:
        return 1
    readable = [f for f in files if f.problem is None]
    pixels = [n for f in readable[:: max(1, len(readable) // sample)][:sample] if (n := stored_pixels(f.path))]
    return workers if pixels and float(np.median(pixels)) >= THREADS_FROM_PIXELS else 1


def read_files(files: Iterable[FoundFile], *, size: int, channels: int, max_pixels: int = DEFAULT_MAX_PIXELS,
               resize: str = "stretch", colour_profiles: str = "as_stored", workers: int = 1) -> Iterator[ReadFile]:
    """Decode and hash each file, in the order given, `workers` at a time. Threads, not processes:
    PIL decodes and resizes and hashlib hashes with the GIL released, so threads use the cores, and
    the pixels need no copy between processes; small images are read without them
    (`decoding_threads`). The result does not depend on `workers`."""
    def one(f: FoundFile) -> ReadFile:
        if f.problem is not None:
            return ReadFile(f)
        try:
            arr, stored = decode(f.path, size=size, channels=channels, max_pixels=max_pixels, resize=resize,
                                 colour_profiles=colour_profiles)
            return ReadFile(f, arr, stored, sha256_file(f.path), picture_hash(arr))
        except ImageRejected as exc:
            return ReadFile(replace(f, problem=str(exc)))
        except OSError as exc:  # decoded, then gone or unreadable before it was hashed
            return ReadFile(replace(f, problem=f"unreadable: {exc}"))

    files = list(files)
    workers = decoding_threads(files, workers)
    if workers <= 1:
        yield from map(one, files)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="decode") as pool:
        ahead: deque[Future] = deque()  # a few files per thread in flight, not a future per file of a large folder
        for f in files:
            ahead.append(pool.submit(one, f))
            if len(ahead) >= 8 * workers:
                yield ahead.popleft().result()
        while ahead:
            yield ahead.popleft().result()


def train_test_duplicates(files: pd.DataFrame) -> pd.DataFrame:
    """Rows (picture, sha256, source_path, domain, split) of one picture present in both a train and a
    test split, of any domain: a test image also seen in training makes the test score look better."""
    groups = files.groupby("picture").split.transform(lambda s: {"train", "test"} <= set(s))
    dup = files[groups.astype(bool)] if len(files) else files
    return dup[["picture", "sha256", "source_path", "domain", "split"]].sort_values(["picture", "split", "source_path"]).reset_index(drop=True)


def test_repeats(files: pd.DataFrame) -> pd.DataFrame:
    """Rows (picture, sha256, source_path, domain, split) of one picture that a test split holds more than
    once (a copy, a hard link, a link to a file of the same folder, the picture saved again as another
    file): each picture counts as often as it is there, and every figure over that split leans on it as
    often, with intervals narrower than the images allow."""
    columns = ["picture", "sha256", "source_path", "domain", "split"]
    tests = files[files.split == "test"] if len(files) else files
    if tests.empty:
        return tests.reindex(columns=columns)
    again = tests.groupby(["domain", "picture"]).picture.transform("size") > 1
    return tests.loc[again, columns].sort_values(["domain", "picture", "source_path"]).reset_index(drop=True)


def repeated_copies(repeats: pd.DataFrame) -> int:
    """The copies beyond each picture's first among `test_repeats` rows (what repeats.csv holds)."""
    return int(repeats[["domain", "picture"]].duplicated().sum())


def folders_not_searched(rejected_csv: Path, root: str | Path | None = None) -> list[str]:
    """The folders under data.root that `prepare` did not search (hidden, links it does not follow, or
    beside train/ and test/), from its rejected.csv, each by its path under `root` (data.root):
    `cat/train/dog/.thumbnails` is a folder inside class `dog`, not a class; [] where there is none or no file."""
    if not Path(rejected_csv).is_file():
        return []
    rows = pd.read_csv(rejected_csv, keep_default_na=False, dtype=str)
    rows = rows[rows.reason.isin(FOLDER_REASONS)]

    def named(row) -> str:
        under = os.path.relpath(row.source_path, root) if root is not None else ".."
        return Path(under).as_posix() if not under.startswith("..") else "/".join(p for p in (row.domain, row.split, Path(row.source_path).name) if p)

    return [named(r) for r in rows.itertuples()]


def domain_copies(files: pd.DataFrame) -> pd.DataFrame:
    """Rows (picture, sha256, source_path, domain, split) of one picture present in both domains, in
    any split: target images that are source images shrink the shift every arm is measured on (a
    target folder copied from the source, or frames filed under both)."""
    columns = ["picture", "sha256", "source_path", "domain", "split"]
    if files.empty:
        return files.reindex(columns=columns)
    both = files.groupby("picture").domain.transform("nunique") > 1
    return files.loc[both, columns].sort_values(["picture", "domain", "source_path"]).reset_index(drop=True)


def files_not_read(rejected_csv: Path) -> dict[str, int]:
    """{kind of refusal: files} of the files (not folders) in prepare's rejected.csv, most first
    (`contract.rejection_kinds`): what the reports say was left out; {} where there is none or no file."""
    if not Path(rejected_csv).is_file():
        return {}
    rows = pd.read_csv(rejected_csv, keep_default_na=False, dtype=str)
    return rejection_kinds(rows.reason[~rows.reason.isin(FOLDER_REASONS)])


def label_conflicts(labeled: pd.DataFrame) -> pd.DataFrame:
    """Rows (picture, sha256, source_path, domain, split, label) of one picture among `labeled` (rows
    that carry a class) filed under different classes, in any domain or split: one image with two
    labels, which no classifier reads right both times (in a test split it caps every arm's accuracy)."""
    columns = ["picture", "sha256", "source_path", "domain", "split", "label"]
    if labeled.empty:
        return labeled.reindex(columns=columns)
    clash = labeled.groupby("picture").label.transform("nunique") > 1
    return labeled.loc[clash, columns].sort_values(["picture", "label", "source_path"]).reset_index(drop=True)


def _finish(rows: list[dict], rejected: list[dict], classes: list[str], cfg: PrepareConfig, out_dir: Path,
            pixels: PixelWriter) -> pd.DataFrame:
    pixels.close(empty_shape=(cfg.image_size, cfg.image_size, cfg.channels))
    manifest = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
    write_csv(manifest, out_dir / "manifest.csv")
    write_pngs(out_dir, manifest)
    write_csv(pd.DataFrame(rejected, columns=REJECTED_COLUMNS), out_dir / "rejected.csv")
    write_csv(train_test_duplicates(manifest), out_dir / "duplicates.csv")
    write_csv(test_repeats(manifest), out_dir / "repeats.csv")
    write_csv(label_conflicts(manifest[manifest.label_index >= 0]), out_dir / "label_conflicts.csv")
    write_csv(domain_copies(manifest), out_dir / "domain_copies.csv")
    target_train = manifest[(manifest.role == "target") & (manifest.split == "train")]
    write_json({
        "classes": classes,
        "source": cfg.source,
        "target": cfg.target,
        "channels": cfg.channels,
        "image_size": cfg.image_size,
        "resize": cfg.resize,
        "target_train_labeled": int((target_train.label_index >= 0).sum()),
        "target_train_unlabeled": int((target_train.label_index < 0).sum()),
        "counts": {f"{d}/{s}": int(n) for (d, s), n in manifest.groupby(["domain", "split"]).size().items()},
        "rejected": len(rejected),
    }, out_dir / "dataset.json")
    return manifest


def _record(pixels: PixelWriter, arr: np.ndarray, rel: Path, **fields) -> dict:
    pixels.append(arr)  # row i of pixels.npy is manifest row i
    return {"path": rel.as_posix(), **fields}


def prepare_folders(cfg: PrepareConfig, out_dir: Path) -> pd.DataFrame:
    files, _ = discover(cfg.root, cfg.source, cfg.target, classes=cfg.classes)
    rows, rejected, pixels = [], [], PixelWriter(out_dir)
    read = read_files(files, size=cfg.image_size, channels=cfg.channels, max_pixels=cfg.max_image_pixels, resize=cfg.resize,
                      colour_profiles=cfg.colour_profiles,
                      workers=cfg.workers)
    decoded: list[tuple[FoundFile, str]] = []  # each decoded file with its sha256, checked against the index below
    for i, r in enumerate(read):
        f = files[i] = r.file
        if f.problem:  # file names need not be UTF-8; what is written must be
            rejected.append({"source_path": shown(str(f.path)), "domain": f.domain, "split": f.split, "reason": shown(f.problem)})
            continue
        rows.append(_record(
            pixels, r.pixels, _image_rel(f, i), source_path=shown(str(f.path)), domain=f.domain, role=f.role, split=f.split,
            label=f.label if f.label is not None else "", label_index=-1, sha256=r.sha256, picture=r.picture, width=r.size[0], height=r.size[1],
        ))
        decoded.append((f, r.sha256))
    if cfg.index is not None:
        _same_as_listed(decoded, cfg.root, cfg.index, [cfg.source, cfg.target])
    # The classes are those with a decoded source train image: a class folder holding only junk is no class.
    classes = source_classes(files)
    check_classes(classes, files, Path(cfg.root) / cfg.source, Path(cfg.root) / cfg.target)
    unreadable = unreadable_splits(files, Path(cfg.root), (cfg.source, cfg.target))
    if unreadable:
        raise DataLayoutError(unreadable[0])
    index = {c: i for i, c in enumerate(classes)}
    for row in rows:
        row["label_index"] = index[row["label"]] if row["label"] else -1
    return _finish(rows, rejected, classes, cfg, out_dir, pixels)


def _same_as_listed(read: list[tuple[FoundFile, str]], root: str, index: str, domains: list[str]) -> None:
    """Stop (StaleInput) where a file read differs from index_raw's listing of data.root (`index`), which
    dvc.lock pins as what prepare read: a file added or rewritten between the two (a nightly upload
    still copying) would be prepared, then stay in the prepared set, unlisted, after it went again.
    Nothing is checked against a listing of other `domains` (in a DVC run index_raw has just listed
    these; a prepare started by hand may find another run's)."""
    listing = json.loads(Path(index).read_text())
    if listing.get("domains") != domains:
        return
    listed_now = {e["path"]: e.get("sha256") for e in listing.get("entries", []) if e.get("kind") == "file"}
    changed = []
    for f, digest in read:
        rel = Path(os.path.relpath(f.path, root)).as_posix()
        if listed_now.get(rel) != digest:
            changed.append(f"{shown(rel)} ({'changed' if rel in listed_now else 'added'} since)")
    if changed:
        raise StaleInput(f"{root}: {len(changed)} file(s) changed while the run read the folder, after index_raw listed it moments before "
                         f"({listed(changed, 3, sep='; ')}); nothing was prepared. Run again once the folder is no longer being written to")


def _image_rel(f: FoundFile, i: int) -> Path:
    return Path("images") / f.domain / f.split / (f.label or UNLABELED) / f"{i:06d}.png"


def prepare_digits(cfg: PrepareConfig, out_dir: Path) -> pd.DataFrame:
    from augment.digits import load_digits_domains

    domains = load_digits_domains(
        test_fraction_source=cfg.test_fraction_source, test_fraction_target=cfg.test_fraction_target, seed=cfg.split_seed
    )
    classes = [str(c) for c in range(10) if not cfg.classes or str(c) in cfg.classes]
    index = {c: i for i, c in enumerate(classes)}
    rows, i, pixels = [], 0, PixelWriter(out_dir)
    for domain, role in ((cfg.source, "source"), (cfg.target, "target")):
        for split, (images, labels) in domains[domain].items():
            for j, (img, label) in enumerate(zip(images, labels)):
                if str(int(label)) not in index:  # a digit data.classes leaves out
                    continue
                arr = canonical(Image.fromarray(img, mode="L"), size=cfg.image_size, channels=cfg.channels)
                f = FoundFile(Path(f"{domain}/{split}/{j}"), domain, role, split, str(int(label)))
                rows.append(_record(
                    pixels, arr, _image_rel(f, i), source_path=f"digits:{domain}/{split}/{j}", domain=domain, role=role,
                    split=split, label=f.label, label_index=index[f.label], sha256=hashlib.sha256(img.tobytes()).hexdigest(),
                    picture=picture_hash(arr), width=img.shape[1], height=img.shape[0],
                ))
                i += 1
    return _finish(rows, [], classes, cfg, out_dir, pixels)


PREPARERS = {"digits": prepare_digits, "folders": prepare_folders}


def prepare(cfg: PrepareConfig, out_dir: str | Path) -> pd.DataFrame:
    """Build `out_dir` whole, atomically: a failure leaves any previous `out_dir` as it was."""
    if cfg.dataset not in PREPARERS:
        raise ValueError(f"Unknown dataset {cfg.dataset!r}. Valid: {', '.join(PREPARERS)}")
    with atomic_dir(out_dir) as tmp:
        manifest = PREPARERS[cfg.dataset](cfg, tmp)
        info = json.loads((tmp / "dataset.json").read_text())
        write_views(tmp, manifest, read_pixels(tmp, len(manifest)), info)  # what each GAN stage reads, pinned
    return manifest
