"""From per-seed predictions to `metrics.json` and a human-readable report.

`arm_metrics` builds the `target_test`, `source_test` and `benefit` sections of metrics.json
(its keys are a contract users and checks rely on); `render_report` and `plot_arms` present the same numbers. The notes and
warnings that both reports carry are made here once (report_html.py imports them).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from augment.answer import (
    COLLAPSE_RATIO, LOPSIDED_SHARE, above_oracle, answer_lines, collapsed_seeds, counted, label_group,
    labels_lost, largest_class_share, lopsided, not_learned, signed, unlabeled_test_classes, weak_baseline,
)
from augment.arms import ARMS, BASELINE, FEW, gan_seed_for, part_fractions
from augment.contract import class_names, listed, listed_classes
from augment.few_labels import capped_classes
from augment.metrics import SMALL_TEST, majority_class, majority_share, paired_delta, summarize
from augment.validation import VAL_SET

# An arm whose classifiers give one class to this share of the target test images (each seed's own
# most frequent class, mean over seeds) has stopped reading the images: its accuracy is that class's
# share of the test set, and a benefit between two such arms is 0 [0, 0] whether or not the arm helps.
# A sound classifier's share stays near the largest class's share of the test set (0.10 on the
# balanced digits test set, where every default arm gives 0.10-0.15 and source_only 0.33); 0.95 leaves
# at most one image in twenty to all other classes together, which no test set of two or more
# classes in sensible proportions asks for, and it still catches "nearly": a few stray answers.
DEGENERATE_SHARE = 0.95
# A target test set below SMALL_TEST images (augment.metrics) cannot tell the few points a benefit is
# usually worth. A class below SMALL_CLASS images moves its per-class accuracy (and macro-F1) by 0.2 or
# more per image. The default digits test set has 430 images, 42-44 per class.
SMALL_CLASS = 5
# The GANs learn the target domain from its train split (all of it, flat or labeled). Below
# FEW_TARGET_TRAIN images a discriminator can tell each of them apart, and the generator is pushed to
# make those images rather than the domain's look: what it learns may not carry to other target
# images. (The CycleGAN paper's unpaired sets hold 400 to 3,000 images a domain; the default digits
# 1,437, SynSigns -> GTSRB 1,561.) A source class below FEW_SOURCE_CLASS train images is learnt from
# those few by every arm, and the GAN arms translate the same few.
FEW_TARGET_TRAIN = 100
FEW_SOURCE_CLASS = 10
# Total variation between the source train's and the target test's class proportions above which the
# reports note a label shift (also at least twice what sampling the test set alone gives): the digits
# give 0.007, SynSigns -> GTSRB 0.14 (about its sampling noise over 43 classes and 439 images), a
# target with five of ten classes 5x rarer 0.33.
LABEL_SHIFT = 0.2

# What the stage-time table measures: a DVC stage's process start and DVC's hashing and lock writing
# cost 1-5 s a stage and are not in it (the flow's summary and log time whole stages).
STAGE_TIME_NOTE = ("Measured inside each stage's own code (`run.wall_seconds`): the process start, DVC's hashing of its inputs "
                   "and outputs, and the wait for a free slot are outside it; `domain-augment run` prints each whole stage's time. "
                   "test_time and adabn train nothing (their translations, statistics and readings are timed in evaluate), and index_raw, which runs on "
                   "every `dvc repro`, is not listed.")


def stack_predictions(per_seed: dict[int, pd.DataFrame], eval_set: str) -> tuple[np.ndarray, np.ndarray]:
    """Seeds' predictions on one eval set -> preds (S, N), labels (N,), checked to be the same images."""
    frames = [df[df.eval_set == eval_set].reset_index(drop=True) for _, df in sorted(per_seed.items())]
    first = frames[0]
    for seed, f in zip(sorted(per_seed), frames):
        if not f.path.equals(first.path):
            raise ValueError(f"seed {seed} predicted a different {eval_set} set than seed {min(per_seed)}; re-run the classifiers")
    return np.stack([f.pred.to_numpy() for f in frames]), first.label_index.to_numpy()


def arm_metrics(
    predictions: dict[str, dict[int, pd.DataFrame]], *, num_classes: int, samples: int, seed: int,
    gan_seed_of: dict[int, int] | None = None,
) -> dict:
    """predictions[arm][seed] is a predictions.csv frame; returns target_test, source_test, benefit,
    and target_val (accuracy and its delta over source_only) when frames hold target_val rows.

    `gan_seed_of[classifier seed]`: the GAN seed a GAN arm's classifier of that seed learned from.
    Every arm's bootstrap then resamples GAN seeds too (the same replicates for every arm, so
    benefits stay paired)."""
    out: dict = {"target_test": {}, "source_test": {}, "benefit": {}}
    with_val = any((df.eval_set == VAL_SET).any() for per_seed in predictions.values() for df in per_seed.values())
    if with_val:
        out[VAL_SET] = {}
    stacked = {}
    for arm, per_seed in predictions.items():
        groups = np.array([gan_seed_of[s] for s in sorted(per_seed)]) if gan_seed_of else None
        stats = {"samples": samples, "seed": seed, "groups": groups}
        preds_t, labels_t = stack_predictions(per_seed, "target_test")
        preds_s, labels_s = stack_predictions(per_seed, "source_test")
        stacked[arm] = {"target_test": (preds_t, labels_t)}
        out["target_test"][arm] = summarize(preds_t, labels_t, num_classes=num_classes, **stats)
        out["target_test"][arm]["majority_prediction_share"] = majority_share(preds_t)
        out["target_test"][arm]["majority_prediction_class"] = majority_class(preds_t)  # its index: run.target_split names it
        out["source_test"][arm] = summarize(preds_s, labels_s, num_classes=num_classes, with_f1=False, **stats)
        if with_val:
            preds_v, labels_v = stack_predictions(per_seed, VAL_SET)
            stacked[arm][VAL_SET] = (preds_v, labels_v)
            out[VAL_SET][arm] = summarize(preds_v, labels_v, num_classes=num_classes, with_f1=False, **stats)
        stacked[arm]["seeds"], stacked[arm]["groups"] = sorted(per_seed), groups
    if BASELINE in stacked:
        base = stacked[BASELINE]
        for arm, st in stacked.items():
            if arm == BASELINE:
                continue
            if st["seeds"] != base["seeds"]:
                raise ValueError(f"arm {arm!r} has seeds {st['seeds']} but {BASELINE} has {base['seeds']}; benefit is paired by seed")
            for section in ("target_test", VAL_SET) if with_val else ("target_test",):
                preds, labels = st[section]
                delta = paired_delta(preds, base[section][0], labels, samples=samples, seed=seed, groups=st["groups"])
                if section == "target_test":
                    out["benefit"][arm] = {"accuracy_delta": delta}
                else:
                    out[VAL_SET][arm]["accuracy_delta"] = delta
    return out


def mark_unavailable(metrics: dict, unavailable: dict[str, str]) -> None:
    """An arm that cannot exist on the data appears, in every per-arm section, as its status and reason."""
    for arm, reason in unavailable.items():
        for section in ("target_test", "source_test", VAL_SET, "benefit"):
            if section in metrics and not (section == "benefit" and arm == BASELINE):
                metrics[section][arm] = {"status": "unavailable", "reason": reason}


def interval_note(gan_seeds: list[int], classifier_seeds: list[int], arms: list[str]) -> str:
    """What the intervals of this run cover, in words for both reports; nothing of GANs when none of
    the run's `arms` reads one."""
    note = ("Mean over classifier seeds with a 95% percentile bootstrap interval that resamples target test images and classifier "
            "seeds. ")
    if len(classifier_seeds) < 3:
        note += (f"With {len(classifier_seeds)} classifier seed{'' if len(classifier_seeds) == 1 else 's'} (classifier.seeds) the "
                 "interval can say little of how far another seed would land (resampling one or two seeds spans at most their "
                 "own figures, and an arm's seeds can differ by 0.1 or more); list three or more for that. ")
    gan_arms = any(ARMS[a].gan for a in arms if a in ARMS)
    if gan_arms and len(gan_seeds) > 1:
        pairs = ", ".join(f"{s}->{gan_seed_for(s, gan_seeds)}" for s in classifier_seeds)
        note += (f"GAN arms: one GAN of each kind per GAN seed {gan_seeds}; the classifier of seed s learns from GAN seed "
                 f"gan.seeds[s % {len(gan_seeds)}] ({pairs}), and each replicate first resamples GAN seeds, then classifier "
                 "seeds within them, so the interval includes the GAN's own training randomness. ")
    elif gan_arms:
        note += (f"Each GAN arm uses one trained GAN (gan.seeds = {gan_seeds}), so its interval does not include the GAN's own "
                 "training randomness; list two or more gan.seeds for that. ")
    return note + "Benefit is the arm minus source_only, paired by seed and image."


def _labels_text(per_class: dict[str, int]) -> str:
    """"10 labeled target images per class", or "labeled target images (a: 15, b: 9)" when the classes differ."""
    values = set(per_class.values())
    if len(values) == 1:
        n = values.pop()
        return f"{n} labeled target image{'' if n == 1 else 's'} per class"
    return "labeled target images (" + ", ".join(f"{c}: {n}" for c, n in zip(class_names(list(per_class)), per_class.values())) + ")"


def arm_descriptions(few_labels: dict | None = None, *, labeled_per_class: dict[str, int] | None = None,
                     labeled_gans: frozenset[str] | set[str] = frozenset()) -> dict[str, str]:
    """Each arm's training data for the reports; `few_labels` ({"used_per_class", "available_per_class"},
    the target_few classifier's record) puts in how many target labels the arms that see a few really saw.
    Without it (no target_few arm), `labeled_per_class` ({class: labeled target train images}) still
    says which classes the oracle saw no label of. `labeled_gans`: the GAN kinds that saw a few target
    labels (answer.label_group), said of the arms that learn from them and see none themselves (cgan)."""
    out = {name: arm.description for name, arm in ARMS.items()}
    for name in ARMS:
        if label_group(name, labeled_gans=set(labeled_gans)) != ARMS[name].target_labels:
            out[name] += ("; its GAN learned from a few target labels (data.target_labels_per_class), so the answer "
                          "counts it with the arms that see a few")
    if not few_labels:
        if labeled_per_class and any(labeled_per_class.values()):  # a labeled target train (not a flat one)
            _no_upper_bound_for(out, [c for c, n in labeled_per_class.items() if not n])
        return out
    used, available = few_labels["used_per_class"], few_labels["available_per_class"]
    unlabeled = [c for c in used if not available.get(c)]  # no labeled target train image at all
    capped = capped_classes(few_labels)
    seen = f"{_labels_text(used)} (data.target_labels_per_class, at most what a class has)"
    if used and len(capped) == len(used):
        seen += ": every labeled target train image, the same labels the oracle sees"
        out["oracle"] = ("all labeled target train: the very labels target_few saw, so here it is no upper bound on what more "
                         "target labels would give")
    elif capped:
        seen += f"; every labeled target train image of {', '.join(capped)}"
    for name, arm in ARMS.items():
        if arm.target_labels == "few":
            out[name] = arm.description.replace(FEW, seen)  # FEW ends each of these descriptions
    _no_upper_bound_for(out, unlabeled)
    return out


def with_oracle_beaten(arms_info: dict[str, str], metrics: dict) -> dict[str, str]:
    """`arm_descriptions` with the oracle's "(upper bound)" taken back where arms read the target test
    better (`above_oracle`)."""
    above = list(above_oracle(metrics))
    if not above or "oracle" not in arms_info:
        return arms_info
    said = f"(no upper bound here: {', '.join(above)} read{'s' if len(above) == 1 else ''} the target test better)"
    return {**arms_info, "oracle": arms_info["oracle"].replace("(upper bound)", said)}


def _no_upper_bound_for(out: dict[str, str], unlabeled: list[str]) -> None:
    if unlabeled:
        out["oracle"] += (f"; the labeled target train has no image of {listed_classes(unlabeled)}, so no arm saw a target label of "
                          f"{'it' if len(unlabeled) == 1 else 'them'} and the oracle is no upper bound there")


def capped_labels_warning(few_labels: dict | None) -> str | None:
    """When the arms that see a few target labels saw every labeled target train image of some class
    (data.target_labels_per_class asked for at least as many): there the oracle saw nothing more."""
    if not few_labels:
        return None
    used, capped = few_labels["used_per_class"], capped_classes(few_labels)
    if not capped:
        return None
    every = len(capped) == len(used)
    return (f"Few labels are all labels: the arms that see a few target labels saw every labeled target train image of "
            + ("every class" if every else listed_classes(capped)) + f" ({_labels_text({c: used[c] for c in capped})}), the very labels "
            "the oracle sees" + (": the oracle is no upper bound on what more target labels would give, and target_few's "
                                 "figure is the oracle's data at another mix." if every else " there."))


def judge_note(metrics: dict) -> str:
    """Whose features judged the GANs, and what FID/KID are worth when that classifier never saw a
    target label, or reads the target test itself less than halfway from chance to every image right."""
    g = next(iter(metrics["gan"].values()))
    if "feature_extractor_trained_on_target" not in g:
        return f"FID, KID and label preservation are judged by the {g['feature_extractor']}."
    if g.get("feature_extractor_kind") == "inception":  # evaluate.inception_weights: the classifier judges labels alone
        return (f"FID, KID, precision and recall are judged on the {g['feature_extractor']} (evaluate.inception_weights); label "
                f"preservation by the readings of the `{g['feature_extractor_arm']}` classifier"
                + (", trained on labeled target images." if g["feature_extractor_trained_on_target"] else
                   ", which never saw a target label (this run has no oracle): it may read target-looking images poorly."))
    note = f"FID, KID and label preservation are judged by the features and readings of the `{g['feature_extractor_arm']}` classifier"
    if g["feature_extractor_trained_on_target"]:
        own = metrics["target_test"].get(g["feature_extractor_arm"], {}).get("accuracy", {}).get("mean")
        classes = len(metrics["run"].get("target_split", {}).get("target_test_per_class") or {})
        if not_learned(own, classes):
            return (note + f", trained on labeled target images, which reads the target test itself at {own:.3f} (chance: "
                    f"{1 / classes:.3f}): features that tell the target's classes so poorly apart make FID, KID and label "
                    "preservation weak evidence here; look at the sample grids.")
        return note + ", trained on labeled target images."
    return (note + ", which never saw a target label (this run has no oracle). FID/KID are then weak evidence: a classifier that has "
            "not learned the target domain can read very different target-looking images alike, so even a GAN that draws one "
            "pattern for every input can score well. The diversity column needs no classifier.")


def names_warnings(metrics: dict) -> list[str]:
    """Signs that the two domains name classes differently: source_only reading the target test
    measurably below chance (it reads the target's images systematically as other classes), and pairs of
    classes it reads as each other (`target_test.source_only.read_as_each_other`)."""
    out = []
    base = metrics["target_test"].get(BASELINE, {})
    classes = len(metrics["run"].get("target_split", {}).get("target_test_per_class") or {})
    acc = base.get("accuracy")
    if acc and classes >= 2 and acc["ci95"][1] < 1 / classes:
        out.append(f"Below chance: {BASELINE} reads the target test at {_fmt(acc)}, measurably below chance ({1 / classes:.3f} "
                   f"with {classes} classes): it reads the target's images systematically as other classes, which a change of "
                   "look seldom does. Check that each class folder holds the same class in both domains (one domain may file a "
                   "class under another's name); the confusion matrices show which class it reads as which.")
    pairs = base.get("read_as_each_other") or []
    if pairs:
        said = "; ".join(f"{a} as {b} ({sa:.0%} of them) and {b} as {a} ({sb:.0%})"
                         for (a, b), (sa, sb) in ((class_names(p["classes"]), p["shares"]) for p in pairs))
        out.append(f"Classes read as each other: {BASELINE} reads the target test's {said}. A change of look seldom swaps two "
                   "classes both ways: the domains may file these classes under each other's names. Check their folders; "
                   "every arm's figures for them mean nothing until they agree.")
    out += misread_at_home_warnings(metrics)
    return out


def misread_at_home_warnings(metrics: dict) -> list[str]:
    """Classes that the classifier trained on a domain's own train labels reads as one other class
    in that domain's test set (`read_as_another`: source_only on source_test, the oracle on
    target_test), where it reads the rest well: no change of look is involved, and a train and a
    test folder that file a class differently, or a folder holding another class's images, explain it."""
    out = []
    per_class = {"source": metrics["run"].get("train_data", {}).get("source_train_per_class") or {},
                 "target": metrics["run"].get("target_split", {}).get("target_test_per_class") or {}}
    for block, arm, domain in (("source_test", BASELINE, "source"), ("target_test", "oracle", "target")):
        found = metrics.get(block, {}).get(arm, {})
        misread, acc = found.get("read_as_another") or [], found.get("accuracy", {}).get("mean")
        if not misread or acc is None or not_learned(acc, len(per_class[domain])):  # it reads the rest poorly too
            continue
        said = "; ".join(f"{c} as {d} ({p['share']:.0%} of them)" for p in misread for c, d in [class_names(p["classes"])])
        folders = sorted({p["classes"][0] for p in misread})
        out.append(f"Misread in its own domain: {arm}, trained on the {domain}'s train labels, reads the {domain} test's {said}, "
                   f"while it reads the {domain} test at {acc:.3f} in all. Within one domain a classifier that reads the rest "
                   f"well seldom reads half of a class as one other: the {domain}'s train and test folders may file "
                   f"{'this class' if len(folders) == 1 else 'these classes'} differently, or one folder holds another class's "
                   f"images. Compare the {domain}'s train/{folders[0]} and test/{folders[0]} folders"
                   + (" (and the others')" if len(folders) > 1 else "") + "; where the classes truly look alike at data.image_size, "
                   "a longer or wider classifier (classifier.steps, classifier.width) tells them apart.")
    return out


def weak_baseline_warning(metrics: dict) -> str | None:
    """`answer.weak_baseline`'s warning: every benefit then measures learning the task at all, not
    crossing the shift."""
    weak = weak_baseline(metrics)
    if weak is None:
        return None
    home, chance, classes = weak
    return (f"Weak baseline: {BASELINE} reads its own source test at {home:.3f} (chance: {chance:.3f} with {classes} classes), "
            "so it has not learned the task in its own domain, and every benefit below measures an arm learning the task at all, "
            "not crossing the domain shift. Train it longer or wider (classifier.steps, classifier.width), or look at the source "
            "labels.")


def warning_heading(text: str) -> tuple[str, str]:
    """A warning's heading and the rest ("Collapsed GAN", "cyclegan's translations ..."); ("", text) for a
    warning that opens with its subject instead ("mix.synthetic_fraction is 0: ...")."""
    head, sep, rest = text.partition(": ")
    if not sep or len(head) > 40 or "." in head:
        return "", text
    return head, rest


def report_warnings(metrics: dict) -> list[str]:
    """Lines that say when a figure of the reports does not mean what it seems to: classes the target
    test set lacks, a target test set too small to measure on, an arm whose classifiers give (nearly) every target test image one
    class (unless the test set is itself nearly one class), a GAN whose translations collapsed or whose filtered set lacks classes."""
    out = []
    if BASELINE not in metrics["target_test"]:
        out.append(f"No {BASELINE} arm (classifier.arms): there is no baseline, so no benefit is computed and test_time cannot "
                   f"run (GAN quality too needs a judge: the oracle, else {BASELINE}). Add {BASELINE} to classifier.arms to "
                   "measure what the other arms add.")
    out += mix_warnings(metrics["run"].get("mix", {}), [a for a in metrics["target_test"] if a in ARMS])
    split = metrics["run"].get("target_split", {})
    out += [w for w in (absent_classes_warning(split), small_test_warning(split)) if w]
    out += few_train_images_warnings(metrics["run"].get("train_data", {}))
    out += [w for w in [capped_labels_warning(metrics["run"].get("target_labels"))] if w]
    unseen = unlabeled_test_classes(metrics)
    if unseen and "accuracy" in metrics["target_test"].get("oracle", {}):
        out.append(f"Classes without a target label: the labeled target train has no image of {listed_classes(unseen)}, which the target test "
                   f"holds. No arm saw a target label of {'it' if len(unseen) == 1 else 'them'}, so there the oracle is no upper bound "
                   "on what target labels would give.")
    above = above_oracle(metrics)
    if above:
        labeled = sum((metrics["run"].get("train_data", {}).get("target_train_labeled_per_class") or {}).values())
        out.append(f"Oracle below other arms: {', '.join(f'{arm} ({acc:.3f})' for arm, acc in above.items())} read the target test "
                   f"better than the oracle ({metrics['target_test']['oracle']['accuracy']['mean']:.3f}), which learns from the "
                   f"labeled target train alone" + (f" ({labeled} images)" if labeled else "") + ": those labels teach less than the "
                   "source does with them (too few of them, or a target too hard to learn from its own images), so the oracle is no "
                   "upper bound on what the arms can reach" + (", and 'the share of the oracle's gain' no share of a ceiling"
                                                             if "gap_closed" in metrics.get("answer", {}).get("oracle", {}) else "") + ".")
    out += data_files_warnings(metrics["run"].get("data_files", {}))
    moved = {gan: g["pseudo_moved"] for gan, g in metrics.get("gan", {}).items() if "pseudo_moved" in g}
    shifted = label_shift_warning(metrics["run"].get("train_data", {}).get("source_train_per_class", {}),
                                  split.get("target_test_per_class", {}), moved=moved)
    out += [shifted] if shifted else []
    stuck = {arm: t["majority_prediction_share"] for arm, t in metrics["target_test"].items()
             if t.get("majority_prediction_share", 0) >= DEGENERATE_SHARE}
    names = list(split.get("target_test_per_class") or {})  # the classes in their order: a majority_prediction_class indexes them

    def which(arm: str) -> str:  # "'stop, yield'": the class an arm reads most images as, where the run recorded it
        k = metrics["target_test"][arm].get("majority_prediction_class")
        return class_names(names)[k] if k is not None and 0 <= k < len(names) else ""
    largest = largest_class_share(metrics)
    if largest >= DEGENERATE_SHARE:  # the test set itself is (nearly) one class: reading it so is right, reading it as
        # another class is not (its accuracy then stays far below that class's share)
        stuck = {arm: share for arm, share in stuck.items() if metrics["target_test"][arm]["accuracy"]["mean"] < largest / 2}
    if stuck:
        shares = ", ".join(f"{arm} ({share:.0%}" + (f", {which(arm)}" if which(arm) else "") + ")" for arm, share in stuck.items())
        out.append(f"Degenerate classifiers: {shares} give one class to at least {DEGENERATE_SHARE:.0%} of the target test images. "
                   "Their accuracy is that class's share of the test set, a benefit over such a source_only is measured from that "
                   "floor, and one between two of them (even +0.000 [0.000, 0.000]) says only that they predict alike, not that the "
                   "arm has no effect.")
    leaning = {arm: share for arm in metrics["target_test"] if (share := lopsided(metrics, arm)) and share < DEGENERATE_SHARE}
    base = leaning.pop(BASELINE, None)
    if base:
        out.append(f"Lopsided baseline: {BASELINE} gives one class" + (f" ({which(BASELINE)})" if which(BASELINE) else "")
                   + f" to {base:.0%} of the target test images"
                   + (f" (the largest class is {largest:.0%} of them)" if largest else "") + ": it has mostly stopped reading the "
                   "target domain. Every benefit is measured from that floor: a large one says an arm reads the target at all, "
                   f"not how far it is ahead of a {BASELINE} classifier that works there.")
    if leaning:
        shares = ", ".join(f"{arm} ({share:.0%}" + (f", {which(arm)}" if which(arm) else "") + ")" for arm, share in leaning.items())
        out.append(f"Lopsided arms: {shares} give{'s' if len(leaning) == 1 else ''} one class to at least {LOPSIDED_SHARE:.0%} of the "
                   "target test images"
                   + (f" (the largest class is {largest:.0%} of them)" if largest else "") + ". Such a classifier calls most images "
                   "one class: what it gains over the baseline is a few classes matched that way, not a reading of the target domain "
                   "(its macro-F1 says more than its accuracy; a GAN that draws one pattern for every input gives such arms).")
    weak = weak_baseline_warning(metrics)
    out += [weak] if weak else []
    out += names_warnings(metrics)
    out += reference_warnings(metrics)
    own = metrics.get("gan_reference", {}).get("target_spread_ratio")
    for gan, g in metrics.get("gan", {}).items():
        low, floor = collapsed_seeds(metrics, g)
        if low:
            which = ", ".join(f"GAN seed {s}: {r:.3f}" if s else f"{r:.3f}" for s, r in low.items())
            target = f", {COLLAPSE_RATIO} of the {own:.3f} at which the target's own images lie next to the source's" if own and own < 1 else ""
            out.append(f"Collapsed GAN: {gan}'s translations of same-label images lie far closer together than their sources do "
                       f"(diversity ratio {which}; below {floor:.3f}{target}, it draws nearly the same image whatever its input). "
                       "Its FID, KID and benefit are no evidence that it learned the target domain.")
        lost = labels_lost(metrics, g)
        if lost:
            kept, reads = lost
            judge = "oracle" if g["feature_extractor_arm"] == "oracle" else f"{g['feature_extractor_arm']} classifier"
            fixes = ("more steps, or lambda_semantic; synthesize.filter is confirmed already: the source classifier that kept these "
                     f"translations read them as their label, the {judge} does not" if g.get("filter") == "confirmed" else
                     "more steps, lambda_semantic, or synthesize.filter: confirmed, which keeps only the translations a source "
                     "classifier reads as their label")
            out.append(f"Labels not kept: the {judge} reads {kept:.2f} of {gan}'s translations as their source "
                       f"label, against {reads:.2f} of the real target test images: many of its synthetic images teach a wrong label "
                       f"(look at its samples; {fixes}).")
        dropped = {s: q["classes_with_none_kept"] for s, q in g.get("per_seed", {}).items() if q.get("classes_with_none_kept")}
        if dropped:
            classes = [str(c) for c in metrics["run"].get("target_split", {}).get("target_test_per_class", {})]

            def named(none: list[str]) -> str:  # the classes kept, where they are the fewer
                dropped_here = set(map(str, none))
                kept = [c for c in classes if c not in dropped_here]
                return f"all but {listed_classes(kept)}" if classes and len(kept) < len(none) else listed_classes(none)

            which = "; ".join(f"GAN seed {s}: {named(c)}" for s, c in dropped.items())
            out.append(f"Classes filtered out: synthesize.filter kept no translation of some classes by {gan} ({which}). Its arm's "
                       "synthetic images hold none of them, so its benefit says nothing about translating them, and its label "
                       "preservation and FID are over the other classes.")
    return out


def _trains_like(arm: str, mix: dict) -> str | None:
    """The arm listed first in ARMS whose batches `arm`'s batches are under these mix fractions (the
    same parts at the same shares), if another's are. `mix` is `run.mix`, which evaluate writes with both fractions."""
    def batches(name: str) -> tuple:
        shares = part_fractions(ARMS[name], mix["synthetic_fraction"], mix["target_fraction"])
        parts = {p: f for p, f in shares.items() if f > 0}
        transformed = ARMS[name].classic and any(p not in ("source", "target_few", "target") for p in parts)
        return tuple(sorted(parts.items())), transformed

    return next((other for other, a in ARMS.items() if other != arm and not a.test_time and batches(other) == batches(arm)), None)


def mix_warnings(mix: dict, arms: list[str]) -> list[str]:
    """Warnings for a mix fraction of 0 or 1 (`run.mix`): the arms it governs then trained as another
    arm does (a benefit over that arm of 0 by construction) or on the added images alone."""
    out = []
    for key, reads in (("synthetic_fraction", lambda a: ARMS[a].gan or ARMS[a].classic), ("target_fraction", lambda a: ARMS[a].target_labels == "few")):
        named = [a for a in arms if reads(a) and not ARMS[a].test_time]
        value = mix.get(key)
        if not named or value not in (0, 1):
            continue
        if value == 0:
            like: dict[str, list[str]] = {}
            for arm in named:
                like.setdefault(_trains_like(arm, mix) or BASELINE, []).append(arm)
            said = "; ".join(f"{', '.join(group)} as {other} does" + (", on the real source alone" if other == BASELINE else "")
                             for other, group in like.items())
            out.append(f"mix.{key} is 0: {', '.join(named)} drew no image of the part it sets into any batch and trained as "
                       f"another arm does ({said}); a benefit of theirs over that arm is 0 by construction, not a finding.")
        else:
            # target_fraction 1 leaves a few-label arm's GAN part no row either: cyclegan_few trains as target_few, the
            # arm listed before it, does (that one trains on the few labels alone)
            order = list(ARMS)
            like = {arm: other for arm in named if (other := _trains_like(arm, mix)) and order.index(other) < order.index(arm)}
            alone = [arm for arm in named if arm not in like]
            if alone:
                out.append(f"mix.{key} is 1: {', '.join(alone)} trained on the added images alone, with no real source image in any "
                           "batch (the arm descriptions' \"source +\" does not hold).")
            if like and key == "target_fraction":
                said = "; ".join(f"{arm} as {other} does" for arm, other in like.items())
                out.append(f"mix.{key} is 1: {', '.join(like)} drew no image but the few target labels into any batch and trained "
                           f"as another arm does ({said}); a benefit of theirs over that arm is 0 by construction, not a finding.")
    return out


def absent_classes_warning(split: dict) -> str | None:
    """The warning for classes without a single target test image (after target_val is held out):
    the target figures say nothing about them. None when every class has one, or when the run
    recorded only the classes it found (before absent ones were counted as 0)."""
    per_class = split.get("target_test_per_class") or {}
    absent = [c for c, k in per_class.items() if k == 0]
    if not absent:
        return None
    present = len(per_class) - len(absent)
    return (f"No target test images of {len(absent)} of the {counted(len(per_class), 'class', 'classes')}: {listed_classes(absent)}. The target-test "
            f"figures (accuracy, macro-F1, every benefit) say nothing about how the arms read these classes in the target "
            f"domain: accuracy is over the other classes' images, and macro-F1 averages the {counted(present, 'class that has', 'classes that have')} test "
            f"images (a target image given one of these classes still counts as wrong). Add labeled target test images of "
            f"them; images held out as target_val (evaluate.validation_fraction) are not counted here.")


def few_train_images_warnings(train: dict) -> list[str]:
    """Warnings for a target train split of fewer than FEW_TARGET_TRAIN images (what the GANs learn the
    target domain from) and for source classes of fewer than FEW_SOURCE_CLASS train images. `train` is
    `run.train_data` ({} for a run recorded before it was counted: nothing to judge). check-data
    prints the same lines before a run."""
    out = []
    target, per_class = train.get("target_train"), train.get("source_train_per_class") or {}
    if target is not None and target < FEW_TARGET_TRAIN:
        out.append(f"Few target train images: the GANs learn the target domain from only {target}. With fewer than "
                   f"{FEW_TARGET_TRAIN} a discriminator can tell each of them apart, and a generator learns to make those images "
                   "rather than the domain's look, so a GAN arm's benefit may not hold on other target images. Add target "
                   "train images (unlabeled ones are enough).")
    few = sorted((k, c) for c, k in per_class.items() if k < FEW_SOURCE_CLASS)
    if few:
        named = listed_classes([c for _, c in few], counts={c: k for k, c in few})
        out.append(f"Few source train images of some classes: {named}. Every arm learns these classes from those images alone "
                   f"(the GAN arms translate the same ones), so their target figures depend on which few images they are. "
                   f"Add source train images of them (at least {FEW_SOURCE_CLASS} each).")
    return out


def label_shift_warning(source_per_class: dict[str, int], target_per_class: dict[str, int], *,
                        moved: dict[str, float] | None = None) -> str | None:
    """When the target test set's class proportions differ from the source train's by more than
    LABEL_SHIFT (total variation) and by twice what sampling that many test images alone gives.
    `moved`: each GAN's share of target images its balanced pseudo-labels moved (`gan.<gan>.pseudo_moved`)."""
    s_total, t_total = sum(source_per_class.values()), sum(target_per_class.values())
    if not s_total or not t_total or len(source_per_class) < 2:
        return None
    p = {c: source_per_class.get(c, 0) / s_total for c in source_per_class}
    q = {c: target_per_class.get(c, 0) / t_total for c in source_per_class}
    tv = 0.5 * sum(abs(p[c] - q[c]) for c in p)
    noise = 0.5 * sum(np.sqrt(2 * p[c] * (1 - p[c]) / (np.pi * t_total)) for c in p)  # E[TV] of a sample of t_total from p
    if tv <= LABEL_SHIFT or tv <= 2 * noise:
        return None
    worst = sorted(p, key=lambda c: -abs(p[c] - q[c]))[:3]
    shown = ", ".join(f"{c}: {q[c]:.0%} against {p[c]:.0%}" for c in worst)
    return (f"Class proportions differ: the target test images are spread over the classes otherwise than the source train images "
            f"(total variation {tv:.2f}, where sampling {t_total} images alone gives about {noise:.2f}; {shown}). Every arm's classifier "
            "learns the source's proportions, and the CycleGAN's balanced pseudo-labels (its default) pull the target's classes toward "
            "them, as far as gan.cyclegan.balance_strength lets them" + _moved_text(moved or {}) + "; gan.cyclegan.pseudo_labels: "
            "confident assumes nothing of them (README, \"The translators\").")


def _moved_text(moved: dict[str, float]) -> str:
    """What the balancing did in this run: the share of target train images it labelled otherwise than
    C's neighbour-averaged reading at the end of training, each GAN kind's mean over its seeds."""
    if not moved:
        return ""
    return " (here they gave " + ", ".join(f"{share:.0%} of the target train images another class than the GAN's semantic "
                                          f"classifier read them as, averaged over neighbours: gan.{gan}.pseudo_moved" for gan, share in moved.items()) + ")"


def data_files_warnings(files: dict) -> list[str]:
    """Warnings for what `prepare` found in the files (`run.data_files`; {} for a run recorded before
    they were counted): files it left out, target or source test images identical to a train
    image (pixel for pixel at the prepared size: prepare's `picture`), one image filed under two classes,
    and target images that are source images."""
    out = []
    if files.get("rejected"):
        folders = files.get("folders_not_searched") or []
        loose = files["rejected"] - len(folders)
        kinds = files.get("files_not_read") or {}
        by_kind = f" ({'; '.join(f'{kind} {n}' for kind, n in kinds.items())})" if kinds and sum(kinds.values()) == loose else ""
        parts = [f"{loose} file(s){by_kind}"] if loose or not folders else []
        if folders:
            parts.append(f"{len(folders)} folder(s) not searched ({listed(folders)}: hidden, a link not followed, a NAS's "
                         "or an archive's own folder, or beside train/ and test/; a class folder among them is a class left out)")
        what = " and ".join(parts)
        out.append(f"Files not read: {what} under data.root were left out (data/prepared/rejected.csv gives "
                   "each with its reason). Every figure is over the images that were read; if some of those files matter, "
                   "convert or replace them and run again.")
    if files.get("target_test_in_train"):
        out.append(f"Target test images seen in training: {files['target_test_in_train']} of the target test images are "
                   "identical to a train image (data/prepared/duplicates.csv: a copy, or the picture saved again). An arm that trained on the copy (or whose "
                   "GANs learned from it) reads it from memory, so the target figures are inflated; remove one copy.")
    if files.get("source_test_in_train"):
        out.append(f"Source test images seen in training: {files['source_test_in_train']} of the source test images are "
                   "identical to a train image (data/prepared/duplicates.csv), so the source accuracy column is inflated "
                   "(the target figures are not); remove one copy.")
    if files.get("target_test_repeats"):
        out.append(f"Target test images counted twice: {files['target_test_repeats']} target test image(s) are identical "
                   "copies of another in the same split (a copy, a hard link, a link to a file beside it, or the picture saved again; "
                   "data/prepared/repeats.csv). Each picture counts as often as it is there, so every target figure leans on it "
                   "that much more, and the intervals come out narrower than the images allow; keep one copy.")
    if files.get("label_conflicts"):
        out.append(f"One image, two labels: {files['label_conflicts']} labeled files are identical to a file filed under "
                   "another class (data/prepared/label_conflicts.csv). No classifier reads both copies right: in a test split "
                   "they cap every arm's accuracy, in a train split they teach both classes. Keep each image in one class.")
    copied, target = files.get("target_in_source"), files.get("target_images")
    if copied:
        what = (f"all {target} target images are" if copied == target else f"{copied} of the {target} target images are")
        out.append(f"Target images that are source images: {what} identical to source images (data/prepared/domain_copies.csv). "
                   + ("The target domain is a copy of the source: there is no shift to close, and no arm's figure says anything "
                      "about a real target domain; check that data.target names the target folder."
                      if copied == target else
                      "Those carry no shift: the target figures mix source pictures in, and the gaps between the arms are "
                      "not those of the target domain alone; remove the copies from one domain."))
    return out


def small_test_warning(split: dict) -> str | None:
    """The warning for a target test set (what is left after target_val) of fewer than SMALL_TEST
    images, or with classes of fewer than SMALL_CLASS; None when it is large enough."""
    n, per_class = split.get("target_test"), split.get("target_test_per_class") or {}
    if n is None:
        return None
    few = sorted((k, c) for c, k in per_class.items() if 0 < k < SMALL_CLASS)
    held = (f", or lower evaluate.validation_fraction ({split['target_val']} of them are held out as target_val: any fraction above 0 "
            "holds out one image of each class of two or more, 0 none)" if split.get("target_val") else "")  # advice only where some are held out
    if n < SMALL_TEST:
        return (f"Small target test set: every target-test figure rests on {counted(n, 'image', 'images')}. One image moves an accuracy by "
                f"{1 / max(n, 1):.3f}, a bootstrap over so few images understates the uncertainty, and two arms that agree on "
                f"all of them show a benefit of +0.000 [0.000, 0.000] that says nothing. Add labeled target test images{held}.")
    if few:
        named = listed_classes([c for _, c in few], counts={c: k for k, c in few})
        return (f"Few target test images of some classes: {named}. Their per-class accuracy moves by "
                f"{1 / max(few[0][0], 1):.2f} or more per image, and they weigh in macro-F1 as much as any class; the overall "
                f"accuracy rests on all {counted(n, 'image', 'images')}. Add labeled target test images of these classes{held}.")
    return None


def validation_note(metrics: dict) -> str:
    """Which split is for what, in one paragraph for the reports."""
    split = metrics["run"].get("target_split", {})
    val, test = split.get("target_val", "?"), split.get("target_test", "?")
    # a share, since at least one image of each class of two or more goes: on small classes more than the fraction asks
    share = f"{val / (val + test):.0%} of them: " if isinstance(val, int) and isinstance(test, int) and val + test else ""
    return (f"{counted(val, 'labeled target test image', 'labeled target test images')} ({share}evaluate.validation_fraction of each class, at "
            f"least one of a class of two or more, fixed by evaluate.validation_seed) {'is' if val == 1 else 'are'} held out as `target_val`: choose settings on them (`dvc exp show`, "
            f"`domain-augment sweep`). Every target-test figure above is on the other {counted(test, 'image', 'images')}, "
            "which no choice in this pipeline reads.")


def filter_note(gans: dict) -> str:
    """One sentence on synthesize.filter: what it kept of each GAN's translations."""
    kinds = {g.get("filter", "none") for g in gans.values()}
    if kinds <= {"none"}:
        return "Synthetic filtering: none (synthesize.filter); every translation is used."
    kept = "; ".join(f"{gan} kept {with_spread(g, 'kept_fraction')}" for gan, g in gans.items() if "kept_fraction" in g)
    return ("Synthetic filtering: confirmed (synthesize.filter): a translation is kept only when a classifier trained on real "
            f"source alone reads it as its label. Share kept: {kept}. Label preservation is measured on the kept images.")


DIVERSITY_NOTE = ("Diversity vs source: the mean pixel distance between two translations of the same label over that between the "
                  "two source images they came from (about 1: the translations keep what tells their sources apart; near the target's "
                  "own spread next to the source's when the shift lowers contrast, as fog or night does; below "
                  f"{COLLAPSE_RATIO} of the smaller of 1 and that spread: collapse). It needs no classifier.")


def diversity_text(quality: dict) -> str:
    return with_spread(quality, "diversity_ratio", 2) if "diversity_ratio" in quality else "-"


LABEL_PRESERVATION_NOTE = ("Label preservation: the feature classifier's accuracy on the translated images against the labels of the "
                           "source images they came from (a classifier the GANs never trained against).")
SEED_SPREAD_NOTE = ("With several GAN seeds, a figure is their mean ± the standard deviation over them, each seed's own figure in "
                    "brackets; KID's \"subsets ±\" is its spread over random subsets of the images.")


def header_line(metrics: dict, dataset: dict) -> str:
    """The line under both reports' title: the domains, the data's shape, the seeds, the device."""
    channels = dataset["channels"]
    run = metrics["run"]
    gans = f"; GAN seeds {run['gan_seeds']}" if metrics.get("gan") and run.get("gan_seeds") else ""
    resized = f" ({dataset['resize']}: data.resize)" if dataset.get("resize") else ""  # how a non-square image became square
    return (f"{len(dataset['classes'])} classes, {dataset['image_size']} px{resized}, {channels} channel{'' if channels == 1 else 's'}. "
            f"Classifier seeds {run['seeds']}{gans}. Device: {run['device']}.")


def source_cell(metrics: dict, arm: str, fmt) -> str:
    """An arm's source test accuracy for the reports' tables: an arm that adapts at test time reads source
    images with the source_only classifier as it is, so its figure is source_only's by construction."""
    if ARMS.get(arm) and ARMS[arm].test_time:
        return f"{BASELINE}'s (source images are read unadapted)"
    return fmt(metrics["source_test"][arm]["accuracy"])


GAN_COLUMNS = ["gan", "FID", "KID", "label preservation", "precision / recall", "diversity vs source", "feature extractor"]
REFERENCE_NOTE = ("Precision / recall (Kynkaanniemi et al. 2019, 3 nearest neighbours on the same features): the share of translations "
                  "that look like some target test image, and the share of target test images that some translation looks like "
                  "(how much of the target's variety the GAN covers). The row 'no translation' scores the source train images as "
                  "they are: a GAN has moved its images toward the target where its FID, KID and recall beat that row, and its "
                  "label preservation is only as telling as the judge's reading of the untranslated images.")


def gan_table(metrics: dict) -> list[list[str]]:
    """The GAN quality table's rows (GAN_COLUMNS), each GAN kind and then the untranslated reference, as text."""
    rows = [[gan, with_spread(g, "fid"), with_spread(g, "kid", 4) + kid_subsets(g), with_spread(g, "label_preservation"),
             _precision_recall(g), diversity_text(g), g["feature_extractor"]] for gan, g in metrics.get("gan", {}).items()]
    ref = metrics.get("gan_reference")
    if rows and ref:
        spread = f"target's own: {ref['target_spread_ratio']:.2f}" if "target_spread_ratio" in ref else "-"
        rows.append(["no translation (source train as it is)", _figure(ref["fid"]), _figure(ref["kid"], 4) + kid_subsets(ref),
                     _figure(ref["label_preservation"]), _precision_recall(ref), spread, ref["feature_extractor"]])
    return rows


def _precision_recall(quality: dict) -> str:
    if "recall" not in quality:
        return "-"
    per_seed = quality.get("per_seed", {})
    if len(per_seed) > 1 and all("recall" in q for q in per_seed.values()):
        return f"{quality['precision']:.2f} / {quality['recall']:.2f} (seeds " + ", ".join(
            f"{s}: {q['precision']:.2f} / {q['recall']:.2f}" for s, q in per_seed.items()) + ")"
    return f"{quality['precision']:.2f} / {quality['recall']:.2f}"


def reference_warnings(metrics: dict) -> list[str]:
    """GANs that do worse than no translation by the judge's features: further from the target (FID), or
    covering less of its variety (recall)."""
    ref, out = metrics.get("gan_reference"), []
    if not ref:
        return out
    for gan, g in metrics.get("gan", {}).items():
        worse = []
        if g["fid"] is not None and ref["fid"] is not None and g["fid"] >= ref["fid"]:
            worse.append(f"FID {g['fid']:.2f} against {ref['fid']:.2f}: its translations lie no closer to the target than "
                         "the source images do")
        if "recall" in g and "recall" in ref and g["recall"] < ref["recall"]:
            worse.append(f"recall {g['recall']:.2f} against {ref['recall']:.2f}: its translations cover less of the target "
                         "test images' variety than the untranslated source does (they look like a part of the target domain "
                         "only, e.g. one kind of background; look at the samples)")
        if worse:
            out.append(f"Worse than no translation: by the judge's features, {gan} does worse than the untranslated source "
                       f"train images ({'; and '.join(worse)}). Whatever its arms gain rests on what it does cover; an arm that covers "
                       "more (classic, or another GAN) may do better on the rest of the target.")
    return out


def kid_subsets(quality: dict) -> str:
    """KID's own spread over its random subsets (torchmetrics' kid_std), when measured; not a spread of 0,
    which a set no larger than one subset gives (every subset is the whole set: it measures nothing)."""
    return f"; subsets ± {quality['kid_subset_std']:.4f}" if quality.get("kid_subset_std") else ""


def _figure(value: float | None, digits: int = 3) -> str:
    """A GAN figure as the reports show it; "-" where its set was too small to measure it (None)."""
    return "-" if value is None else f"{value:.{digits}f}"


def with_spread(quality: dict, key: str, digits: int = 3) -> str:
    """`mean ± std (per seed: a, b)` of one GAN figure for the reports; the plain value with one seed."""
    text = _figure(quality[key], digits)
    per_seed = quality.get("per_seed", {})
    if len(per_seed) > 1 and quality[key] is not None:
        text += f" ± {quality[f'{key}_seed_std']:.{digits}f} (seeds " + ", ".join(f"{s}: {_figure(q[key], digits)}" for s, q in per_seed.items()) + ")"
    return text


def _fmt(stat: dict) -> str:
    lo, hi = stat["ci95"]
    return f"{stat['mean']:.3f} [{lo:.3f}, {hi:.3f}]"


def render_report(metrics: dict, *, arms_info: dict[str, str], unavailable: dict[str, str], dataset: dict,
                  samples: dict[str, tuple[str, str]]) -> str:
    """report.md; `samples` maps a name to (path relative to the report, caption), shown in this order."""
    lines = [
        "# domain-augment report",
        "",
        f"Source domain `{dataset['source']}` -> target domain `{dataset['target']}`; {header_line(metrics, dataset)}",
        "",
    ]
    answer = answer_lines(metrics)
    if answer:
        lines += ["## The answer", "", *(f"{line}\n" for line in answer)]
    lines += [
        "## Target-domain test accuracy by arm",
        "",
        interval_note(metrics["run"]["gan_seeds"], metrics["run"]["seeds"], list(metrics["target_test"])),
        "",
        "| arm | target accuracy | target macro-F1 | source accuracy | benefit vs source_only | training data |",
        "|---|---|---|---|---|---|",
    ]
    for arm, t in metrics["target_test"].items():
        benefit = metrics["benefit"].get(arm, {}).get("accuracy_delta")
        lines.append(
            f"| {arm} | {_fmt(t['accuracy'])} | {_fmt(t['macro_f1'])} | {source_cell(metrics, arm, _fmt)} | "
            f"{signed(benefit) if benefit else '-'} | {table_cell(arms_info.get(arm, ''))} |"
        )
    for arm, reason in unavailable.items():
        lines.append(f"| {arm} | unavailable | | | | {table_cell(reason)} |")
    lines += [""] + [f"**Warning.** {w}\n" for w in report_warnings(metrics)] + ["![accuracy by arm](plots/arms.png)", ""]
    if metrics.get(VAL_SET):
        lines += ["## Target validation split (for choosing settings)", "", validation_note(metrics), "",
                  "| arm | validation accuracy | benefit vs source_only |", "|---|---|---|"]
        for arm, v in metrics[VAL_SET].items():
            lines.append(f"| {arm} | {_fmt(v['accuracy'])} | {signed(v['accuracy_delta']) if 'accuracy_delta' in v else '-'} |")
        lines.append("")
    if metrics.get("gan"):
        lines += ["## GANs", "", "| " + " | ".join(GAN_COLUMNS) + " |", "|" + "---|" * len(GAN_COLUMNS)]
        lines += ["| " + " | ".join(row) + " |" for row in gan_table(metrics)]
        lines += ["", judge_note(metrics), "", LABEL_PRESERVATION_NOTE, "", REFERENCE_NOTE, "", DIVERSITY_NOTE, "",
                  SEED_SPREAD_NOTE, "", filter_note(metrics["gan"]), ""]
    for name, (path, caption) in samples.items():
        lines += [caption, "", f"![{name}]({path})", ""]
    lines += ["## Time inside each stage (seconds)", "", STAGE_TIME_NOTE, "", "| stage | seconds | images/s |", "|---|---|---|"]
    lines += [f"| {k} | {v:.1f} | {throughput_text(metrics, k)} |" for k, v in metrics["run"]["wall_seconds"].items()]
    return _no_html("\n".join(lines) + "\n")


def _no_html(markdown: str) -> str:
    """report.md with every '<' that could open an HTML tag or comment written as '&lt;' (which Markdown
    shows as '<'): a class or folder named `<img src=x onerror=...>` is shown, never rendered or run.
    The report itself writes no HTML."""
    return re.sub(r"<(?=[A-Za-z/!?])", "&lt;", markdown)


def table_cell(text: str) -> str:
    """Free text (which may hold class names: `a|b`, a line break) as one cell of a Markdown table."""
    return " ".join(str(text).split("\n")).replace("|", "\\|")


def throughput_text(metrics: dict, stage: str) -> str:
    """A stage's images/s for the report ("train 9100, predict 41000"); "-" where it has none."""
    rates = metrics["run"].get("images_per_s", {}).get(stage, {})
    return ", ".join(f"{what} {rate:,.0f}" for what, rate in rates.items()) or "-"


def plot_arms(metrics: dict, path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from augment.io import atomic_path

    arms = list(metrics["target_test"])
    means = [metrics["target_test"][a]["accuracy"]["mean"] for a in arms]
    lows = [m - metrics["target_test"][a]["accuracy"]["ci95"][0] for a, m in zip(arms, means)]
    highs = [metrics["target_test"][a]["accuracy"]["ci95"][1] - m for a, m in zip(arms, means)]
    fig, ax = plt.subplots(figsize=(6, 0.6 * len(arms) + 1.2))
    ax.barh(arms, means, xerr=[lows, highs], color="#4C72B0", capsize=4)
    ax.set_xlim(0, 1)
    ax.set_xlabel("target-domain test accuracy (95% CI)")
    ax.invert_yaxis()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
