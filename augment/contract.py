"""The data contract: discovering `<root>/<domain>/<split>/<class>/<image>` and checking its shape.

Layout problems (missing folders, no classes, target classes unknown to the source) are errors
that name the folder; individual bad files and folders are not errors here, they are rejected.
"""
from __future__ import annotations

import os
import re
import unicodedata
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from augment.images import looks_like_image

SPLITS = ("train", "test")
_LAYOUT = "Expected <data.root>/<domain>/{train,test}/<class>/<images>"
# A file that is not an image, directly in a split that must be labeled (beside the class folders).
LOOSE_IN_LABELED = "not an image, beside the class folders of a labeled split: not read"


def shown(text: str) -> str:
    """`text` as valid UTF-8: bytes of a file name that are not UTF-8 (which Python holds as
    surrogates, 'caf\\udce9') written as '\\xe9', so CSV files, JSON and terminals take it."""
    return os.fsencode(text).decode("utf-8", "backslashreplace")


def class_label(name: str) -> str:
    """A class folder's name as its label: valid UTF-8 (`shown`) in Unicode's composed form (NFC), so
    a 'Ü' copied from a file system that stores it decomposed (macOS's HFS+) names the same class as a
    'Ü' typed elsewhere."""
    return shown(unicodedata.normalize("NFC", name))


def listed(items: list[str], most: int = 5, sep: str = ", ") -> str:
    """`a, b, c and 4 more`: the first `most` items of a list for a message, and how many are left out
    (`sep="; "` where the items have commas of their own, such as rejection reasons). One item over
    `most` is listed rather than counted: "and 1 more" hides it in as many words."""
    most = most + 1 if len(items) == most + 1 else most
    return sep.join(items[:most]) + (f" and {len(items) - most} more" if len(items) > most else "")


def class_names(classes: list[str]) -> list[str]:
    """Class names as printed in a list: quoted, all of them, when one holds a comma, a colon, a quote, a
    control character or spaces at its ends (`comma, "quoted": 4` would read as two classes)."""
    plain = all(c == c.strip() and c.isprintable() and not any(ch in c for ch in ",:'\"") for c in classes)
    return list(classes) if plain else [repr(c) for c in classes]


def reason_kind(reason: str) -> str:
    """What kind of refusal a rejection reason is, for counts by kind: its text before any ':' or ' ('
    ("a HEIC/HEIF photo", "unreadable", "zero-byte file")."""
    return reason.split(":")[0].split(" (")[0]


def rejection_kinds(reasons) -> dict[str, int]:
    """{kind: files} of rejection reasons (`reason_kind`), most first, then by name."""
    kinds = Counter(map(reason_kind, reasons))
    return dict(sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])))


def listed_classes(classes, most: int = 5, counts: dict | None = None) -> str:
    """`listed` for class names, quoted where one would read as several (`class_names`): `'x, y', b and 3
    more`; with `counts`, each followed by its count: `a (3), b (4)`."""
    classes = list(classes)
    names = class_names([str(c) for c in classes])
    return listed([f"{n} ({counts[c]})" if counts is not None else n for c, n in zip(classes, names)], most)


class DataLayoutError(ValueError):
    """The folders do not follow the data contract; the message names the folder and the fix."""

    def __init__(self, message: str):
        super().__init__(shown(message))  # it names folders, whose names may not be UTF-8


@dataclass(frozen=True)
class FoundFile:
    path: Path  # the file or folder as the OS names it (shown() makes it text)
    domain: str
    role: str  # "source" or "target"
    split: str  # "train" or "test"
    label: str | None  # class folder name, shown(); None for a flat (unlabeled) target train file
    problem: str | None = None  # why it is refused (a link, a hidden file, an undecodable image); rejected.csv says it


def natural_key(name: str) -> tuple:
    """'2' < '10' and '00' < '01': ASCII numbers compare as numbers, the rest as text. A total order:
    names that compare equal as numbers ('1', '01') fall back to their text, so class order (and with
    it label_index) never depends on the order the names came in."""
    # ASCII digits only: str.isdigit also takes '²' and '①', which int() refuses, and \d other scripts' digits.
    parts = re.split(r"([0-9]+)", name)  # the digit runs are at the odd positions
    return tuple(int(tok) if i % 2 else tok for i, tok in enumerate(parts)), name


def _not_listed(exc: OSError) -> str:
    return f"folder not readable: [Errno {exc.errno}] {exc.strerror}" if exc.strerror else f"folder not readable: {exc}"


def _link_problem(path: Path, root: Path) -> str | None:
    """Why a symlink cannot be used, or None: broken, a loop, out of the data root (and of its domain's
    folder, where that is a link), not a file."""
    try:
        target = path.resolve(strict=True)
    except FileNotFoundError:
        return "broken symlink (its target does not exist)"
    except (RuntimeError, OSError) as exc:  # a loop: RuntimeError or ELOOP, by Python version
        return f"symlink loop ({exc})"
    domain = root / path.relative_to(root).parts[0]  # a domain folder may itself be a link to elsewhere: inside it is inside
    if not (target.is_relative_to(root.resolve()) or target.is_relative_to(domain.resolve())):
        return f"symlink out of the data root (to {target}); refused"
    if not target.is_file():
        return "symlink to something that is not a file"
    return None


def _children(folder: Path) -> list[os.DirEntry]:
    """What `folder` holds, by name; OSError when it cannot be listed."""
    with os.scandir(folder) as entries:
        return sorted(entries, key=lambda e: e.name)


# The reasons a folder under data.root is not searched, as rejected.csv gives them (the reports name such folders)
LINKED_FOLDER = "symlinked folder, not followed"
HIDDEN_FOLDER = "hidden folder, not searched"
SYSTEM_FOLDER = "a NAS's, an archive's or a file system's own folder (thumbnails, metadata, a recycle bin), not searched"
_BESIDE = " beside train/ and test/ (the only splits the pipeline reads): not read"
FOLDER_BESIDE_SPLITS, FILE_BESIDE_SPLITS = "folder" + _BESIDE, "file" + _BESIDE
FOLDER_REASONS = (LINKED_FOLDER, HIDDEN_FOLDER, SYSTEM_FOLDER, FOLDER_BESIDE_SPLITS)
# Folders that NAS indexers, archivers and file systems write beside people's files: a Synology's
# @eaDir holds five resized copies of every image beside it (a class would count each image six times),
# QNAP's and Synology's recycle bins and snapshots hold deleted or older copies, macOS's zip __MACOSX
# its resource forks. Matched without regard to case.
SYSTEM_FOLDERS = frozenset(n.casefold() for n in (
    "@eaDir", "#recycle", "#snapshot", "@Recycle", "@Recently-Snapshot", "@__thumb", "__MACOSX", "$RECYCLE.BIN",
    "System Volume Information", "lost+found"))


def _scan(folder: Path, root: Path) -> tuple[list[Path], list[tuple[Path, str | None]]]:
    """The folders to search inside `folder`, and its other entries, each with the reason it is refused
    before reading, or None (then it is tried as an image; a wrong suffix shows up in rejected.csv).
    Hidden files and folders (.DS_Store, ._foo.png, .cache/) and SYSTEM_FOLDERS (@eaDir/) are never data
    and symlinked folders are not followed: they are listed with the reason instead of silently skipped. OSError when `folder`
    cannot be listed."""
    folders, entries = [], []
    for e in _children(folder):
        path, hidden = Path(e.path), e.name.startswith(".")
        if e.is_symlink():
            if os.path.isdir(path):
                entries.append((path, LINKED_FOLDER))
            else:
                entries.append((path, "hidden file (names starting with '.' are never images)" if hidden else _link_problem(path, root)))
        elif e.is_dir(follow_symlinks=False):
            if hidden:
                entries.append((path, HIDDEN_FOLDER))
            elif e.name.casefold() in SYSTEM_FOLDERS:
                entries.append((path, SYSTEM_FOLDER))
            else:
                folders.append(path)
        else:
            entries.append((path, "hidden file (names starting with '.' are never images)" if hidden else None))
    return folders, entries


def class_folder_labels(split_dir: Path) -> set[str]:
    """The labels of the class folders `discover` searches in a split folder (not hidden, system or linked ones)."""
    return {class_label(p.name) for p in _scan(split_dir, split_dir)[0]}


def _class_files(folder: Path, root: Path) -> list[tuple[Path, str | None]]:
    """Every entry under class folder `folder`, with the reason it is refused or None. Folders inside
    it are that class; one that cannot be listed is an entry with the reason, not a silent gap."""
    found, todo = [], [folder]
    while todo:  # depth first, in name order; a loop, not recursion: folders may nest deeper than Python recurses
        here = todo.pop()
        try:
            folders, entries = _scan(here, root)
        except OSError as exc:
            found.append((here, _not_listed(exc)))
            continue
        found += entries
        todo += reversed(folders)
    return found


def _split_dir(root: Path, domain: str, split: str) -> Path:
    d = root / domain / split
    if d.is_symlink():
        raise DataLayoutError(f"{d}: a symlinked folder; symlinked folders are not followed. Put the folder itself there. {_LAYOUT}")
    if d.exists() and not d.is_dir():
        raise DataLayoutError(f"{d}: a file, not a folder. {_LAYOUT}")
    if not d.is_dir():
        raise DataLayoutError(f"{d}: missing. {_LAYOUT}; found under {root / domain}: {sorted(p.name for p in (root / domain).iterdir())}")
    return d


def _beside_splits(root: Path, domain: str, role: str) -> list[FoundFile]:
    """What a domain folder holds besides train/ and test/ (a val/ split, a README): never read, and
    listed in rejected.csv with the reason rather than silently ignored. One row per folder."""
    try:
        entries = _children(root / domain)
    except OSError as exc:
        raise DataLayoutError(f"{root / domain}: {_not_listed(exc)}; the {role} domain folder must be readable") from None
    out = []
    for e in sorted(entries, key=lambda e: natural_key(e.name)):
        if e.name not in SPLITS:
            why = FOLDER_BESIDE_SPLITS if os.path.isdir(e.path) else FILE_BESIDE_SPLITS
            out.append(FoundFile(Path(e.path), domain, role, "", None, why))
    return out


def _refused_folders(entries: list[tuple[Path, str | None]]) -> str:
    """'; not searched: c (symlinked folder, not followed), ...' for the refused folders among `entries`."""
    refused = [f"{p.name} ({why})" for p, why in entries if why and os.path.isdir(p)]
    return f"; not searched: {', '.join(refused)}" if refused else ""


def discover_domain(root: Path, domain: str, role: str, names: dict[str, tuple[str, Path]] | None = None) -> list[FoundFile]:
    """The domain's files, each with its class label; `names` (label -> the class folder's name in NFC
    and the first folder of that label), shared between the domains' calls, finds two different
    folder names that print as one label (`_one_label`)."""
    names = {} if names is None else names
    found: list[FoundFile] = _beside_splits(root, domain, role)
    for split in SPLITS:
        d = _split_dir(root, domain, split)
        try:
            class_dirs, flat = _scan(d, root)
        except OSError as exc:
            raise DataLayoutError(f"{d}: {_not_listed(exc)}; the {role} {split} split must be readable") from None
        labeled_required = role == "source" or split == "test"
        if labeled_required:  # an image here has no class; anything else (a README, labels.csv, Thumbs.db) is listed, not read
            loose = [p for p, why in flat if why is None and looks_like_image(p)]
            if loose:
                raise DataLayoutError(
                    f"{d}: {len(loose)} image(s) directly in the folder (e.g. {loose[0].name}); the {role} {split} split must be "
                    f"labeled, one sub-folder per class. Only the target train split may be flat."
                )
            flat = [(p, why or LOOSE_IN_LABELED) for p, why in flat]
        if labeled_required and not class_dirs:
            raise DataLayoutError(f"{d}: no class folders; expected {d}/<class>/<images>{_refused_folders(flat)}")
        for f, why in flat:
            found.append(FoundFile(f, domain, role, split, None, why))
        named: dict[str, Path] = {}
        for cd in sorted(class_dirs, key=lambda p: natural_key(p.name)):
            label = class_label(cd.name)
            _one_label(label, cd, names, named.get(label))
            named[label] = cd
            for f, why in _class_files(cd, root):
                found.append(FoundFile(f, domain, role, split, label, why))
        here = [ff for ff in found if ff.split == split and ff.domain == domain]
        if not any(ff.problem is None for ff in here):
            what = ("no usable files, only hidden or refused ones" if here else
                    f"only empty class folders ({listed(sorted((c.name for c in class_dirs), key=natural_key))})" if class_dirs else
                    "an empty folder")
            raise DataLayoutError(f"{d}: {what}; expected image files (any format Pillow reads, "
                                  f"whatever their extension){_refused_folders(flat)}")
    return found


def _one_label(label: str, folder: Path, names: dict[str, tuple[str, Path]], in_split: Path | None) -> None:
    """Stop where two class folders of different names print as one label, anywhere (a name with
    bytes that are not UTF-8 prints them as '\\xe9', which a folder may also be named with, typed out),
    or where one split has two folders of the same label (`in_split`: the first)."""
    composed = unicodedata.normalize("NFC", folder.name)
    first_name, first = names.setdefault(label, (composed, folder))
    if first_name != composed:
        raise DataLayoutError(f"{first} and {folder}: two class folders whose names print as the same label {label!r}: one has "
                              "bytes that are not UTF-8 (written as \\x and two hex digits), the other those characters typed out. "
                              "Rename one of them")
    if in_split is not None:
        raise DataLayoutError(f"{in_split} and {folder}: two class folders named {label!r} once their Unicode is composed "
                              "(NFC; the same letters, stored two ways). Merge them into one folder")


def discover(root: str | Path, source: str, target: str, not_domains: Collection[str] = (),
             classes: Collection[str] = ()) -> tuple[list[FoundFile], list[str]]:
    """All candidate files of both domains, and the sorted source classes of those not refused yet
    (prepare and check-data check again once the images are decoded). `not_domains`: folders of `root`
    that a missing domain's message does not offer as domains present (what the pipeline writes there);
    `classes` (data.classes): the classes kept, where not all (`keep_classes`)."""
    root = Path(root)
    if not root.is_dir():
        raise DataLayoutError(f"data.root {root}: not a folder. It must hold <source>/ and <target>/ (data.source={source!r}, data.target={target!r})")
    try:
        present = sorted(e.name for e in _children(root)  # .git, .dvc: no domain
                         if os.path.isdir(e.path) and not e.name.startswith(".") and e.name not in not_domains)
    except OSError as exc:
        raise DataLayoutError(f"data.root {root}: {_not_listed(exc)}") from None
    for domain, key in ((source, "data.source"), (target, "data.target")):
        d = root / domain
        if d.exists() and not d.is_dir():
            raise DataLayoutError(f"{d}: a file, not a folder ({key}={domain!r}); it must be the {key.split('.')[1]} domain's folder")
        if not d.is_dir():
            same = [p for p in present if unicodedata.normalize("NFC", p) == unicodedata.normalize("NFC", domain)]
            raise DataLayoutError(f"{d}: missing ({key}={domain!r}); domains present in {root}: {present or 'none'}" + (
                f"; {same[0]!r} there is the same name with its accents stored another way ({ascii(same[0])} against "
                f"{ascii(domain)}, as macOS and Linux may write them): rename the folder, typing its name, or give {key} "
                "copied from the folder's name" if same else ""))
    if os.path.samefile(root / source, root / target):
        raise DataLayoutError(f"{root / target}: the same folder as {root / source} (data.source={source!r}, data.target={target!r}; "
                              "one is a link to the other); the target domain must be its own images")
    names: dict[str, tuple[str, Path]] = {}
    files = discover_domain(root, source, "source", names) + discover_domain(root, target, "target", names)
    files = keep_classes(files, classes, root, (source, target))
    kept = source_classes(files)
    check_classes(kept, files, root / source, root / target)
    return files, kept


def _same_name(a: str, b: str) -> bool:
    """Two class names a person may take for one: the same but for case or spaces at the ends, or the
    same number (`1` and `01`)."""
    a, b = a.strip().casefold(), b.strip().casefold()
    return a == b or a.isdecimal() and b.isdecimal() and int(a) == int(b)


def keep_classes(files: list[FoundFile], classes: Collection[str], root: Path, domains: tuple[str, str]) -> list[FoundFile]:
    """`files` without those filed under a class that `classes` (data.classes) leaves out, in any split
    (unlabeled target images stay); all of them where `classes` is empty. Each kept class must have a
    source train folder, and each labeled split an image of a kept class."""
    if not classes:
        return files
    present = {f.label for f in files if f.role == "source" and f.split == "train" and f.label is not None}
    missing = [c for c in classes if c not in present]
    if missing:
        near = [f"{c!r} is {k!r} there" for c in missing for k in sorted(present, key=natural_key) if _same_name(c, k)]
        raise DataLayoutError(
            f"data.classes: {listed_classes(missing, 10)} not among the class folders of {root / domains[0] / 'train'} "
            f"({listed_classes(sorted(present, key=natural_key), 10)})" + (f"; {'; '.join(near)}" if near else ""))
    kept = set(classes)
    files = [f for f in files if f.label is None or f.label in kept]
    for domain, role in zip(domains, ("source", "target")):
        for split in SPLITS:
            here = [f for f in files if (f.domain, f.split) == (domain, split) and f.problem is None]
            labeled = [f for f in here if f.label is not None]
            if not labeled and (role, split) != ("target", "train") or not here:
                raise DataLayoutError(f"{root / domain / split}: no image of the classes data.classes keeps "
                                      f"({listed_classes(sorted(kept, key=natural_key), 10)}); each split needs some")
    return files


def source_classes(files: list[FoundFile]) -> list[str]:
    """The sorted classes of the source train files not refused (`problem` None): before decoding,
    those that may hold an image; after it (refusals added), those that do. `check_classes` next."""
    return sorted({f.label for f in files if f.role == "source" and f.split == "train" and f.label is not None and f.problem is None},
                  key=natural_key)


def unreadable_splits(files: list[FoundFile], root: Path, domains: tuple[str, str]) -> list[str]:
    """One problem per split of `domains` in which no file decoded (`files` with their refusals added):
    the folder and its first reasons. prepare stops on the first before it writes rejected.csv, so
    the message itself says why the files went; check-data lists them all."""
    out = []
    for domain in domains:
        for split in SPLITS:
            in_split = [f for f in files if (f.domain, f.split) == (domain, split)]
            if not any(f.problem is None for f in in_split):
                split_dir = root / domain / split  # a file by its class folder too: names repeat across classes
                why = listed([shown(f"{f.path.relative_to(split_dir) if f.path.is_relative_to(split_dir) else f.path.name}: {f.problem}")
                              for f in in_split], 3, sep="; ") or "no image files"
                out.append(f"{root / domain / split}: no readable images ({why}); prepare needs at least one in each split")
    return out


def held_labels(files: list[FoundFile], role: str, split: str) -> set[str]:
    """The class folders of a split that hold something besides hidden entries: a folder with only a
    .DS_Store (what a folder emptied in a file manager keeps) is an empty folder, passed over."""
    return {f.label for f in files if f.role == role and f.split == split and f.label is not None
            and not (f.problem or "").startswith("hidden")}


def check_classes(source_classes: list[str], files: list[FoundFile], source_dir: Path, target_dir: Path) -> None:
    """Every labeled class (source train, source test, target test, labeled target train) must have usable
    source train images: a class no arm can learn from the source would count against every arm but the oracle.
    A class folder holding nothing but hidden entries counts as empty, and empty ones are passed over."""
    known = set(source_classes)
    held = held_labels(files, "source", "train")
    source_train = [f for f in files if f.role == "source" and f.split == "train" and f.label in held]
    empty = sorted({f.label for f in source_train} - known, key=natural_key)
    if empty:
        why = listed([f"{f.path.name}: {f.problem}" for f in source_train if f.label == empty[0]], 3, sep="; ")
        raise DataLayoutError(
            f"{source_dir / 'train' / empty[0]}: no usable image ({why}); every class folder in {source_dir / 'train'} needs at "
            f"least one. Class folders without one: {empty}"
        )
    if len(source_classes) == 1:
        raise DataLayoutError(
            f"{source_dir / 'train'}: one class folder with usable images ({source_classes[0]}); a classifier needs at "
            f"least 2 classes to tell apart (every image of one class is read right by any model, so no arm could be "
            f"measured). Put each class's images in a folder of its own"
        )
    measured = sorted({f.label for f in files if f.role == "target" and f.split == "test" and f.label is not None and not f.problem},
                      key=natural_key)
    if len(measured) == 1:
        raise DataLayoutError(
            f"{target_dir / 'test'}: images of one class only ({measured[0]}); a classifier that reads every image as "
            f"{measured[0]} scores 1.000 there, so no arm could be measured or told apart from another. Add labeled target "
            f"test images of other classes (each class in a folder of its own)"
        )
    for role, folder in (("source", source_dir), ("target", target_dir)):
        for split in SPLITS:
            missing = sorted(held_labels(files, role, split) - known, key=natural_key)
            if missing:
                raise DataLayoutError(
                    f"{folder / split}: classes {missing} have no images in {source_dir / 'train'}; every labeled class "
                    f"needs labeled source train images. Source train classes: {source_classes}"
                    f"{_why_missing(missing, known, files, source_dir / 'train', unlabeled_allowed=(role, split) == ('target', 'train'))}"
                )


def _why_missing(missing: list[str], known: set[str], files: list[FoundFile], source_train: Path, *,
                 unlabeled_allowed: bool = False) -> str:
    """What may explain classes without source train images: a folder of that name in source train
    that was refused (a symlinked folder) or holds no usable image, a source class whose name differs
    only in case, in spaces at its ends or in leading zeros (`_same_name`), or, in the target train
    split, sub-folders of unlabeled images."""
    refused = {f.path.name: f.problem for f in files
               if f.role == "source" and f.split == "train" and f.label is None and f.problem and f.path.name in missing}
    out = [f"{name} in the source train split: {why}" for name, why in refused.items()]
    for name in missing:
        if name not in refused and (source_train / name).is_dir():
            held = [f for f in files if f.role == "source" and f.split == "train" and f.label == name]
            out.append(f"{source_train / name} is there but holds no usable image" + (" (see rejected.csv)" if held else ""))
    for name in missing:
        near = [k for k in sorted(known, key=natural_key) if _same_name(k, name)]
        if near:
            how = "in case or in spaces" if near[0].strip().casefold() == name.strip().casefold() else "in leading zeros"
            out.append(f"{name!r} differs from the source class {near[0]!r} only {how}")
    if unlabeled_allowed and len(out) == 0:
        out.append("if these folders hold unlabeled images rather than classes, put the images in the target train folder "
                   "itself: a flat target train split needs no labels")
    return f" ({'; '.join(out)})" if out else ""
