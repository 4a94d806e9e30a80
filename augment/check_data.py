"""`domain-augment check-data`: the checks `prepare` makes, before any run, without writing anything.

Discovers `<root>/<source>/` and `<root>/<target>/` exactly as `prepare` does, decodes every file
with the same reader (so the same files are rejected, for the same reasons), and reports images
per domain, split and class, the rejected files, and the problems that would stop the pipeline.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from augment.contract import (DataLayoutError, check_classes, class_folder_labels, class_names, discover, held_labels, listed, listed_classes, natural_key,
                              rejection_kinds, shown, source_classes, unreadable_splits)
from augment.colour import colour_sample_notes
from augment.images import DEFAULT_MAX_PIXELS
from augment.prepare import domain_copies, label_conflicts, read_files, repeated_copies, test_repeats, train_test_duplicates
from augment.answer import unlabeled_tested
from augment.arms import nothing_measurable, unavailable_on_data
from augment.report import few_train_images_warnings, label_shift_warning, small_test_warning
from augment.validation import validation_count


@dataclass
class DataCheck:
    counts: Counter = field(default_factory=Counter)  # (domain, split, class or "(unlabeled)") -> readable images
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    problems: list[str] = field(default_factory=list)  # anything that stops the pipeline
    notes: list[str] = field(default_factory=list)  # what the run survives but its figures will not cover
    # Groups of files of one picture (prepare's `picture`), each a list of (file, split) or (file, class): one image in both a
    # train and a test split; one image filed under two classes.
    duplicates: list[list[tuple[str, str]]] = field(default_factory=list)
    conflicts: list[list[tuple[str, str]]] = field(default_factory=list)
    copies: list[list[tuple[str, str]]] = field(default_factory=list)  # one image in both domains: (file, domain)
    copied: int = 0  # target images among the copies
    classes: list[str] = field(default_factory=list)
    settings: str = ""  # how the images were read: size, channels, resize

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self, most: int | None = None) -> list[str]:
        quoted = dict(zip(self.classes, class_names(self.classes)))
        out = [self.settings] if self.settings else []
        out += [f"classes ({len(self.classes)}): {', '.join(quoted.values())}"] if self.classes else []
        if not self.classes and not self.problems:
            out.append("classes: none found")
        by_split = Counter()
        for (domain, split, _), n in self.counts.items():
            by_split[(domain, split)] += n
        for (domain, split), n in sorted(by_split.items()):
            per_class = ", ".join(f"{quoted.get(c, c)} {k}" for (d, s, c), k in sorted(self.counts.items()) if (d, s) == (domain, split))
            out.append(f"{domain}/{split}: {n} images ({per_class})")
        if self.counts or self.rejected:  # not before a layout problem that stopped the check before any file was read
            kinds = rejection_kinds(reason for _, reason in self.rejected)
            by_kind = "; ".join(f"{kind} {n}" for kind, n in kinds.items())  # kinds may hold commas: "a ZIP archive, not an image"
            out.append(f"rejected: {len(self.rejected)} file(s)" + (f" ({by_kind})" if len(kinds) > 1 else ""))
        # the files that may matter first: hidden ones (.DS_Store, ._x.png) are never images
        shown_first = sorted(self.rejected, key=lambda pr: pr[1].startswith("hidden"))
        out += _first([f"  {path}: {reason}" for path, reason in shown_first], most)
        if self.duplicates:
            out.append(f"duplicates: {len(self.duplicates)} image(s) in both a train and a test split ({_files_in(self.duplicates)} "
                       "files with identical pixels; they inflate test scores); one line per image:")
            out += _first([_same(group) for group in self.duplicates], most)
        if self.conflicts:
            out.append(f"label conflicts: {len(self.conflicts)} image(s) filed under different classes ({_files_in(self.conflicts)} "
                       "files with identical pixels; one image, two labels: no classifier reads both right); one line per image:")
            out += _first([_same(group) for group in self.conflicts], most)
        if self.copies:
            out.append(f"domain copies: {self.copied} target image(s) identical to source images (they shrink the shift every arm "
                       "is measured on); one line per image:")
            out += _first([_same(group) for group in self.copies], most)
        out += [f"note: {n}" for n in self.notes]
        out += [f"problem: {p}" for p in self.problems]
        out.append("ok: the pipeline would run on this data" if self.ok else "not ok: the run would stop (see problems above)")
        return out




def _files_in(groups: list[list[tuple[str, str]]]) -> int:
    return sum(len(group) for group in groups)


def _same(group: list[tuple[str, str]], most: int = 4) -> str:
    """One image's copies on one line, `a.png (train) = b.png (test)`: `most` of them, then a count."""
    shown = " = ".join(f"{path} ({what})" for path, what in group[:most])
    return f"  {shown}" + (f" = {len(group) - most} more copies" if len(group) > most else "")


def _grouped(rows: pd.DataFrame, what: str) -> list[list[tuple[str, str]]]:
    """Rows of files of one picture (a `picture` column) as one list per picture of (file, `what`)."""
    return [list(zip(group.source_path, group[what].astype(str))) for _, group in rows.groupby("picture", sort=False)]


def _first(lines: list[str], most: int | None) -> list[str]:
    """At most `most` of a listing (all with None), and a line saying how many were left out."""
    if most is None or len(lines) <= most:
        return lines
    return lines[:most] + [f"  ... and {len(lines) - most} more (--list 0 lists all; prepare writes every one to data/prepared)"]


# Images whose median shorter side is less than 1/UPSCALED of data.image_size are all enlarged that much
# or more: no detail is added, and the GANs and classifiers pay UPSCALED**2 times the pixels.
UPSCALED = 2


def upscaling_notes(sides: dict[str, list[int]], image_size: int) -> list[str]:
    """A note per domain ({domain: each readable image's shorter side}) whose median image is enlarged
    UPSCALED times or more to data.image_size, with the size that reads both at about their own."""
    medians = {d: float(np.median(s)) for d, s in sides.items() if s}
    small = {d: m for d, m in medians.items() if m * UPSCALED <= image_size}
    if not small:
        return []
    own = max(8, int(min(medians.values())) // 4 * 4)  # data.image_size: divisible by 4
    return [f"{domain}: the median image's shorter side is {m:.0f} px, and data.image_size is {image_size}: half its images or "
            f"more are enlarged {image_size / m:.1f}x or more, which adds no detail and costs the GANs and classifiers "
            f"{(image_size / m) ** 2:.0f}x the pixels; --image-size {own} (-S data.image_size={own} in a run) reads them at "
            "about their own size" for domain, m in small.items()]


def check_data(root: str | Path, source: str, target: str, *, image_size: int = 16, channels: int = 3,
               max_pixels: int = DEFAULT_MAX_PIXELS, resize: str = "stretch", colour_profiles: str = "as_stored", workers: int = 1,
               validation_fraction: float = 0.0, labels_per_class: int = 0, arms: list[str] | None = None,
               classes: list[str] | None = None) -> DataCheck:
    """What `prepare` would accept, reject and stop on, and notes on what the run's figures will rest
    on; `validation_fraction` is the run's evaluate.validation_fraction (the target test images it
    holds out as target_val), `labels_per_class` its data.target_labels_per_class, `arms` its
    classifier.arms (those that need target labels are noted where the target train has none), `classes`
    its data.classes (the classes kept; none: all)."""
    result = DataCheck(settings=f"read as {image_size} px, {channels} channel{'s' if channels > 1 else ''} "
                                f"({'grey' if channels == 1 else 'RGB'}), resize {resize}"
                                + (", colour profiles converted to sRGB" if colour_profiles == "srgb" else ""))
    if source == target:
        result.problems.append(f"--source and --target are both {source!r}: the source and target domains must be different folders")
        return result
    try:
        files, _ = discover(root, source, target, classes=classes or ())
    except DataLayoutError as exc:
        result.problems.append(str(exc))
        return result
    read, sides = [], {source: [], target: []}
    decoded = read_files(files, size=image_size, channels=channels, max_pixels=max_pixels, resize=resize,
                         colour_profiles=colour_profiles, workers=workers)
    for i, r in enumerate(decoded):
        f = files[i] = r.file
        if f.problem:  # as prepare writes them to rejected.csv: valid UTF-8 whatever the file names
            result.rejected.append((shown(str(f.path)), shown(f.problem)))
            continue
        sides[f.domain].append(min(r.size))
        result.counts[(f.domain, f.split, f.label if f.label is not None else "(unlabeled)")] += 1
        read.append({"picture": r.picture, "sha256": r.sha256, "source_path": shown(str(f.path)), "domain": f.domain, "split": f.split,
                     "label": f.label})
    result.classes = source_classes(files)  # the decoded ones: a class folder holding only junk is no class
    if classes:
        train = Path(root) / source / "train"
        others = sorted(class_folder_labels(train) - set(classes), key=natural_key)
        result.notes.append(f"data.classes keeps {len(classes)} of the {len(classes) + len(others)} classes of {train}: the folders of "
                            f"{listed_classes(others, 10)} are not read, in any split" if others else
                            f"data.classes names every class of {train}: [] (the default) reads the same")
        flat = sum(n for (d, s, c), n in result.counts.items() if (d, s, c) == (target, "train", "(unlabeled)"))
        if flat and others:
            result.notes.append(f"{Path(root) / target / 'train'}: its {flat} unlabeled images are all read, those of the classes "
                                "data.classes leaves out too (no label says which they are): the GANs learn the target domain "
                                "from them all, and give each a pseudo-label among the classes kept")
    alike: dict[str, list[str]] = {}
    for c in result.classes:
        alike.setdefault(c.strip().casefold(), []).append(c)
    for names in (n for n in alike.values() if len(n) > 1):
        result.notes.append(f"classes {listed_classes(names)} differ only in case or in spaces at their ends: {len(names)} classes "
                            "here, but one folder on a file system that ignores case (macOS, Windows), where a copy merges them; "
                            "if they are one class, put their images in one folder")
    try:
        check_classes(result.classes, files, Path(root) / source, Path(root) / target)
    except DataLayoutError as exc:
        result.problems.append(str(exc))
    read = pd.DataFrame(read, columns=["picture", "sha256", "source_path", "domain", "split", "label"])
    result.duplicates = _grouped(train_test_duplicates(read), "split")
    repeats = test_repeats(read)
    if len(repeats):
        first = repeats[repeats.picture == repeats.picture.iloc[0]].source_path.tolist()
        result.notes.append(f"{repeated_copies(repeats)} test image(s) repeated within their split, "
                            f"identical pixels (e.g. {listed(first, 3)}: a copy, a hard link, a link to a file beside it, or the picture "
                            "saved again): each counts "
                            "as often as it is there, and every figure over that split leans on it that much more; keep one copy")
    result.conflicts = _grouped(label_conflicts(read[read.label.notna()]), "label")
    copies = domain_copies(read)
    result.copies = _grouped(copies, "domain")
    result.copied, target_read = int((copies.domain == target).sum()), int((read.domain == target).sum())
    if target_read and result.copied == target_read:
        result.notes.append(f"{Path(root) / target}: every target image is identical to a source image: the target domain is a copy "
                            "of the source, so there is no shift to close and no arm's figure says anything about a real target domain")
    result.problems += unreadable_splits(files, Path(root), (source, target))
    tested = {c: result.counts[(target, "test", c)] for c in result.classes}
    if not result.problems:
        held = {c: validation_count(n, validation_fraction) for c, n in tested.items()}
        small = small_test_warning({"target_val": sum(held.values()), "target_test": sum(tested.values()) - sum(held.values()),
                                    "target_test_per_class": {c: n - held[c] for c, n in tested.items()}})
        result.notes += [small] if small else []
        shifted = label_shift_warning({c: result.counts[(source, "train", c)] for c in result.classes}, tested)
        result.notes += [shifted] if shifted else []
        result.notes += few_train_images_warnings({
            "target_train": sum(n for (d, s, _), n in result.counts.items() if (d, s) == (target, "train")),
            "source_train_per_class": {c: result.counts[(source, "train", c)] for c in result.classes}})
    readable = {domain: [f.path for f in files if f.domain == domain and not f.problem] for domain in (source, target)}
    result.notes += colour_sample_notes(readable, channels, colour_profiles)
    result.notes += upscaling_notes(sides, image_size)
    source_untested = [c for c in result.classes if not result.counts[(source, "test", c)]]
    if source_untested:
        result.notes.append(f"{Path(root) / source / 'test'}: no images of {listed_classes(source_untested, 10)}; the source-test figures "
                            "(how much each arm keeps of the source domain) will say nothing about them")
    untested = [c for c, n in tested.items() if not n]
    if untested and len(untested) < len(result.classes):
        result.notes.append(f"{Path(root) / target / 'test'}: no images of {len(untested)} of the {len(result.classes)} classes "
                            f"({listed_classes(untested, 10)}); the target-test figures will say nothing about them (the reports warn too)")
    for role, domain in (("source", source), ("target", target)):
        for split in ("train", "test"):
            folder = Path(root) / domain / split
            folders = class_folder_labels(folder)
            empty = sorted(folders & set(classes or folders) - held_labels(files, role, split))
            if empty:
                result.notes.append(f"{folder}: empty class folder(s) {listed_classes(empty, 10)} (nothing in them but hidden files, if "
                                    "anything): prepare passes over them")
    labeled = {c: result.counts[(target, "train", c)] for c in result.classes}
    unlabeled = unlabeled_tested(labeled, tested)
    if unlabeled:  # a labeled target train (not a flat one) that lacks classes the test has
        result.notes.append(f"{Path(root) / target / 'train'}: no labeled images of {listed_classes(unlabeled, 10)}, which the target test "
                            f"has; the arms that see a few target labels, cgan and the oracle see no target label of "
                            f"{'it' if len(unlabeled) == 1 else 'them'}, "
                            "so the oracle is no upper bound there (the reports say so too)")
    target_labeled = any(labeled.values())
    unavailable = unavailable_on_data(arms or [], target_labeled=target_labeled, labels_per_class=labels_per_class)
    needing = [] if target_labeled else list(unavailable)  # every arm that learns from target labels: there are none
    if needing and not result.problems:  # a flat target train, or class folders holding nothing
        result.notes.append(f"{Path(root) / target / 'train'}: no labeled images: {listed(needing, 10)} of classifier.arms will be "
                            "unavailable, as they learn from labeled target train images"
                            + (", and the answer will have no upper bound (the oracle)" if "oracle" in needing else "")
                            + ". File some target train images under class folders to measure them, or leave them out of classifier.arms")
    few = list(unavailable) if target_labeled else []  # there are labels: the arms that see a few, of which there are 0
    if few and not result.problems:
        result.notes.append(f"data.target_labels_per_class is 0: {listed(few, 10)} of classifier.arms will be unavailable, as they "
                            "see that many labeled target train images per class")
    nothing = nothing_measurable(arms or [], unavailable)
    if nothing and not result.problems:  # the run would train, then stop at evaluate
        result.problems.append(nothing)
    short = [f"{name}: {labeled[c]}" for c, name in zip(result.classes, class_names(result.classes)) if 0 < labeled[c] <= labels_per_class]
    if short:  # what the few_labels stage and the reports warn of after the run
        result.notes.append(f"{Path(root) / target / 'train'}: data.target_labels_per_class is {labels_per_class}, but some classes have "
                            f"no more labeled images ({listed(short, 10)}): there the arms that see a few target labels see every one, "
                            "the very labels the oracle sees")
    return result
