"""The run's answer in a few sentences: which arm to use, and how sure this run is of it.

`answer` builds metrics.json's `answer` block; `answer_lines` turns it into the sentences both
reports open with. The arms fall into three groups by what they may see of the target's labels:
none (classic, cyclegan, cyclegan_classic, test_time, adabn, and the cgan when it sees no target
label), a few (`target_few`, `cyclegan_few`, `cgan_few`, and the cgan when `data.target_labels_per_class`
shows it some), and all (`oracle`, the upper bound). A team with no target labels can use only the
first group, so its best arm is the answer; a team with a few gets the second group's best, and
whether a GAN adds anything to its labels (the best GAN arm there against `target_few`, paired).

The best arm is chosen on `target_val` when one is held out and measured on `target_test`, which no
choice reads: choosing the best of several arms by their test figures and reporting that figure
reports the luckiest arm (the winner's curse). Whether it is told apart from the runner-up is a
paired interval on `target_test` (same images, same seeds), not two intervals that overlap or not.
The same paired interval measures it against the arm that trains nothing (`adabn`) when that arm
ranks below the runner-up: whether the best arm's training buys anything over the free adaptation.
"""
from __future__ import annotations

import numpy as np

from augment.arms import ARMS, BASELINE
from augment.contract import listed_classes
from augment.few_labels import capped_classes
from augment.metrics import SMALL_TEST, paired_delta
from augment.validation import VAL_SET

ORDER = list(ARMS)
# Set by `domain-augment run` and `demo`, which print the benefits and the answer after the stage
# table: the evaluate stage, whose output they echo as it runs, then leaves them to that summary
# (a `dvc repro`, or a deployment's run log, still gets them from the stage).
ANSWER_AT_END_ENV = "DOMAIN_AUGMENT_ANSWER_AT_END"
GROUPS = ("none", "few")  # arms grouped by the target labels they may see; the oracle (all) is the bound
LABELS_ALONE = "target_few"  # the few labels with no GAN: what a GAN arm that saw them has to beat


def label_group(arm: str, *, labeled_gans: set[str]) -> str:
    """"none", "few" or "all": the target labels `arm`'s classifiers, or the GAN they learn from, may see.
    `labeled_gans`: the GAN kinds that saw some target labels in this run (a conditional GAN, when
    `data.target_labels_per_class` is above 0 and the target train split has labels)."""
    a = ARMS[arm]
    if a.target_labels != "none":
        return a.target_labels
    return "few" if a.gan in labeled_gans and not a.test_time else "none"


def counted(n: object, singular: str, plural: str) -> str:
    """"1 image", "2 images", "? images" (a count the record lacks)."""
    return f"{n} {singular if n == 1 else plural}"


def is_free(arm: str) -> bool:
    """An arm that costs no training and no GAN (`adabn`): what a trained arm has to beat to be worth its cost."""
    return ARMS[arm].test_time and not ARMS[arm].gan


_VERDICT_WORDS = {"helped": "helped", "unclear": "no clear effect", "hurt": "hurt"}  # the label-free line's words for answer's verdicts


def _verdict(delta: dict) -> str:
    lo, hi = delta["ci95"]
    return "helped" if lo > 0 else "hurt" if hi < 0 else "unclear"


def answer(metrics: dict, target_preds: dict[str, tuple[np.ndarray, np.ndarray]], *, labeled_gans: set[str],
           groups: np.ndarray | None, samples: int, seed: int) -> dict:
    """metrics.json's `answer` block, from its `benefit` (and `target_val`) sections.

    `target_preds[arm]`: (preds (S, N), labels (N,)) on target_test, as the benefits were computed
    from; `groups` and the bootstrap settings as in `arm_metrics`, so the best-against-runner-up
    interval resamples what every benefit does."""
    benefit = {arm: b["accuracy_delta"] for arm, b in metrics.get("benefit", {}).items() if "accuracy_delta" in b}
    if BASELINE not in metrics.get("target_test", {}):
        return {}
    val = metrics.get(VAL_SET) or {}
    chosen_on = VAL_SET if all("accuracy_delta" in val.get(arm, {}) for arm in benefit) and val else "target_test"
    out: dict = {"chosen_on": chosen_on}
    for group in GROUPS:
        arms = [a for a in benefit if a in ARMS and label_group(a, labeled_gans=labeled_gans) == group]
        if not arms:
            continue
        score = {a: (val[a]["accuracy_delta"] if chosen_on == VAL_SET else benefit[a])["mean"] for a in arms}
        # a tie (two arms that trained alike) goes to the arm ARMS lists first: target_few before the GAN arms that add to it
        ranked = sorted(arms, key=lambda a: (-score[a], ORDER.index(a)))
        entry = {"ranked": ranked, "verdict": {a: _verdict(benefit[a]) for a in ranked}, "best": ranked[0]}
        def lead(other: str) -> dict:  # the best arm minus `other` on target_test, paired by image and seed
            (p_best, labels), (p_other, _) = target_preds[ranked[0]], target_preds[other]
            return paired_delta(p_best, p_other, labels, samples=samples, seed=seed, groups=groups)

        if len(ranked) > 1:
            entry["best_over_runner_up"] = {"runner_up": ranked[1], "accuracy_delta": lead(ranked[1])}
        free = [a for a in ranked[2:] if is_free(a)]  # the runner-up's lead is measured already
        if free and not is_free(ranked[0]):
            entry["best_over_free"] = {"free": free[0], "accuracy_delta": lead(free[0])}
        if LABELS_ALONE in ranked[2:] and ARMS[ranked[0]].gan:  # what the GAN adds to the few labels, where not measured already
            entry["best_over_labels_alone"] = {"labels_alone": LABELS_ALONE, "accuracy_delta": lead(LABELS_ALONE)}
        out[group] = entry
    if "oracle" in benefit:
        out["oracle"] = {"verdict": _verdict(benefit["oracle"])}
        best = out.get("none", {}).get("best")
        if best and out["oracle"]["verdict"] == "helped":
            out["oracle"]["gap_closed"] = benefit[best]["mean"] / benefit["oracle"]["mean"]
    return out


# How far source_only may read the target below its own domain before an oracle that does not beat it
# means the oracle failed, not that there is no shift; and how far below source_only an oracle must
# read the target (its interval below 0 too) to be named no upper bound at all.
SHIFT_SEEN = 0.1

# A GAN whose translations of same-label pairs lie this much closer together than their sources do
# draws (nearly) the same image whatever its input. A real domain shift may shrink pixel distances
# too (night is darker, the digits' target blurrier): the default digits GANs, whose samples follow
# their inputs, give 0.90-0.92 (cyclegan) and 0.81 (cgan; 0.48-0.69 at ngf 16); a collapsed one gives a few hundredths.
COLLAPSE_RATIO = 0.2
# A GAN whose translations the oracle reads as their source label for less than this share of what it
# reads right of real target test images loses labels: the default digits' CycleGAN keeps 0.80 (the
# oracle reads 0.99 of the target), a cgan at ngf 16 on two identical domains kept 0.55-0.75 of 0.97.
LABELS_KEPT = 0.75


def collapsed_seeds(metrics: dict, g: dict) -> tuple[dict[str, float], float]:
    """A GAN kind's (`metrics["gan"][kind]`) seeds whose diversity ratio lies below the collapse floor
    ({seed: ratio}, seed "" for a record without seeds), and that floor: COLLAPSE_RATIO of the smaller
    of 1 and the target's own spread next to the source's (a low-contrast target brings faithful
    translations low too; one whose images are all alike, spread 0, leaves no floor)."""
    own = metrics.get("gan_reference", {}).get("target_spread_ratio")
    floor = COLLAPSE_RATIO * min(1.0, own) if own is not None else COLLAPSE_RATIO
    ratios = {s: q["diversity_ratio"] for s, q in g.get("per_seed", {}).items() if "diversity_ratio" in q} or (
        {"": g["diversity_ratio"]} if "diversity_ratio" in g else {})
    return {s: r for s, r in ratios.items() if r < floor}, floor


def labels_lost(metrics: dict, g: dict) -> tuple[float, float] | None:
    """(label preservation, the judge's target test accuracy) where the GAN judge (the oracle, or
    source_only in a run without one) reads a GAN kind's translations as their label for less than
    LABELS_KEPT of what it reads right of real target images. A translation that keeps its label and
    looks like the target is read as well as a real target image, by any judge: source_only reads it
    no worse than the target it was not trained on, and better where the translation kept some of the
    source's look."""
    judge = g.get("feature_extractor_arm")
    reads = metrics["target_test"].get(judge, {}).get("accuracy", {}).get("mean") if judge else None
    kept = g.get("label_preservation")
    if reads and kept is not None and kept < LABELS_KEPT * reads:
        return kept, reads
    return None


def _doubts(metrics: dict, arm: str, *, gained: bool = True) -> str:
    """The report warnings that put in doubt what an arm's GAN learned, named for the answer; "" for none.
    `gained`: the answer recommends the arm for a measured gain (else it names the arm as the best of none)."""
    g = metrics.get("gan", {}).get(ARMS[arm].gan or "")
    if not g:
        return ""
    names = [name for name, hit in (("Collapsed GAN", collapsed_seeds(metrics, g)[0]), ("Labels not kept", labels_lost(metrics, g))) if hit]
    if not names:
        return ""
    quoted = " and ".join(f'"{n}"' for n in names)
    concern = f"the warning{'s' if len(names) > 1 else ''} {quoted} concern{'' if len(names) > 1 else 's'} {ARMS[arm].gan}, the GAN behind it"
    if not gained:
        return f" And {concern}."
    return (f" But {concern}: the gain is measured, but it may not come from translating into the target's "
            "look; read them before relying on it.")


def unlabeled_tested(labeled: dict[str, int], tested: dict[str, int]) -> list[str]:
    """Classes the target test holds ({class: images}) and the labeled target train has no image of, where
    it has some (a flat target train has none at all, and no oracle): no arm saw a target label of them,
    so the oracle is no upper bound there."""
    if not any(labeled.values()):
        return []
    return [c for c, n in labeled.items() if not n and tested.get(c)]


def unlabeled_test_classes(metrics: dict) -> list[str]:
    """`unlabeled_tested` of a run, from metrics.json's counts."""
    run = metrics.get("run", {})
    return unlabeled_tested(run.get("train_data", {}).get("target_train_labeled_per_class") or {},
                            run.get("target_split", {}).get("target_test_per_class") or {})


def signed(d: dict) -> str:
    return f"{d['mean']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]"


def _listed(arms: list[str]) -> str:
    return ", ".join(arms) if arms else "none"


# A baseline that reads its own source test less than halfway from chance to every image right has not
# learned the task (43 sign classes at 12 px and 80 steps: 0.05, chance 0.02); the default digits give 0.98.
WEAK_AT_HOME = 0.5


# A classifier that gives one class to half the target test images (and at least 3x the largest
# class's share of them) reads the target domain hardly at all. As a baseline, benefits over it are
# large by construction (the default digits source_only gives 0.33, the largest class 0.10; a 16 px
# grey source_only on an MNIST -> MNIST-M pair gave 0.82); as the arm to use, its gain is a few classes
# matched by calling most images one of them (a test_time arm whose translator had collapsed gave 0.79
# on a target whose largest class was 0.11, and was recommended).
LOPSIDED_SHARE = 0.5
LOPSIDED_OVER_LARGEST = 3


def largest_class_share(metrics: dict) -> float:
    """The largest class's share of the target test images (0 where the run does not say)."""
    tested = list((metrics["run"].get("target_split", {}).get("target_test_per_class") or {}).values())
    return max(tested) / sum(tested) if tested and sum(tested) else 0.0


def lopsided(metrics: dict, arm: str) -> float | None:
    """The share of the target test images `arm` gives its most frequent class, where that is
    LOPSIDED_SHARE or more and LOPSIDED_OVER_LARGEST times the largest class's share; else None."""
    share = metrics["target_test"].get(arm, {}).get("majority_prediction_share", 0)
    return share if share >= LOPSIDED_SHARE and share >= LOPSIDED_OVER_LARGEST * largest_class_share(metrics) else None


def not_learned(accuracy: float | None, classes: int) -> bool:
    """Whether a classifier that reads a test set at `accuracy` over `classes` classes is less than
    WEAK_AT_HOME of the way from chance to every image right; False where nothing says."""
    return accuracy is not None and classes >= 2 and accuracy < 1 / classes + WEAK_AT_HOME * (1 - 1 / classes)


def weak_baseline(metrics: dict) -> tuple[float, float, int] | None:
    """(source accuracy, chance, classes) when source_only has `not_learned` its own domain's test set,
    measurably (the upper end of its interval too); None when it learned the task, may have, or nothing says."""
    classes = len(metrics["run"].get("train_data", {}).get("source_train_per_class") or {})
    home = metrics.get("source_test", {}).get(BASELINE, {}).get("accuracy", {})
    # its interval's upper end: 0.528 [0.389, 0.667] on 48 source test images is no evidence of a baseline below 0.54
    high = (home.get("ci95") or [None, home.get("mean")])[1]
    return (home["mean"], 1 / classes, classes) if not_learned(high, classes) else None


def answer_lines(metrics: dict) -> list[str]:
    """The answer's sentences (markdown emphasis with **), or [] without a baseline."""
    ans = metrics.get("answer") or {}
    if not ans:
        return []
    benefit = {arm: b["accuracy_delta"] for arm, b in metrics["benefit"].items() if "accuracy_delta" in b}
    acc = {arm: t["accuracy"]["mean"] for arm, t in metrics["target_test"].items() if "accuracy" in t}
    split = metrics["run"].get("target_split", {})
    few_val = isinstance(split.get("target_val"), int) and split["target_val"] < SMALL_TEST  # 25 images picked arms by noise
    where = (f"chosen on the {counted(split.get('target_val', '?'), 'target_val image', 'target_val images')}"
             f"{', too few to rank close arms by' if few_val else ''}, measured on the other {split.get('target_test', '?')}"
             if ans["chosen_on"] == VAL_SET else
             f"chosen and measured on the same {counted(split.get('target_test', '?'), 'target_test image', 'target_test images')}, "
             "none being held out as target_val "
             + ("(no class has a second target test image to hold out)" if split.get("validation_fraction") else "(evaluate.validation_fraction)")
             + ", so its figure is somewhat optimistic")
    lines = []

    if split.get("target_test") is not None and split["target_test"] < SMALL_TEST:
        lines.append(f"**A hint, not a measurement:** what follows rests on {counted(split['target_test'], 'target test image', 'target test images')} (see the "
                     "warning \"Small target test set\"); the arm it names, and any lead it finds, may not hold on more images.")
    weak = weak_baseline(metrics)
    if weak:
        lines.append(f"**Measured from a baseline that has not learned the task:** {BASELINE} reads its own source test at {weak[0]:.3f} "
                     f"(chance: {weak[1]:.3f}; see the warning \"Weak baseline\"), so every benefit below measures an arm learning the "
                     "task at all, not crossing the domain shift.")
    oracle = ans.get("oracle", {})
    at_home = metrics.get("source_test", {}).get(BASELINE, {}).get("accuracy", {}).get("mean")
    if oracle and oracle["verdict"] == "hurt" and benefit["oracle"]["mean"] < -SHIFT_SEEN:
        lines.append(f"**The oracle is no upper bound here.** Trained on the target's own labels, it reads the target test worse "
                     f"than {BASELINE} ({signed(benefit['oracle'])}): its labels lack classes the test has, or are too few to learn "
                     "from (see the oracle's row and the warnings). Whether the domains differ is not measured, every benefit below "
                     "is measured against no working upper bound, and the GAN table's judge is that oracle.")
    elif oracle and oracle["verdict"] != "helped" and (shift := _shift_seen(ans, benefit, at_home, acc[BASELINE])):
        dropped = _dropped(at_home, acc[BASELINE])
        lines.append(f"**The oracle did not measurably learn the target domain.** Trained on the target's own labels, it does not "
                     f"measurably beat {BASELINE} ({signed(benefit['oracle'])}), while {shift}"
                     + (": there is a shift, but nothing here measures how far it can be closed" if dropped else
                        ": the target can be read better than it reads it, but nothing here measures how far")
                     + " (too few target labels or test images, or target images that barely tell the classes apart)"
                     + ("" if dropped else "; and an arm that learns the source better gains too, so this alone is no evidence of a shift")
                     + ". "
                     "Every benefit below is measured against no working upper bound, and the GAN table's judge is that oracle.")
    elif oracle and oracle["verdict"] != "helped":
        labeled = [a for a in ans.get("few", {}).get("ranked", []) if ans["few"]["verdict"][a] == "helped"]
        lines.append(f"**No measurable domain shift.** The oracle, trained on the target's own labels, does not measurably beat {BASELINE} "
                     f"({signed(benefit['oracle'])}), and no arm without target labels measurably raised target accuracy"
                     + (f" ({_listed(labeled)}, with a few target labels, did, as more labeled images would whatever their domain)"
                        if labeled else "")
                     + ": on this test set nothing reads the target domain measurably better than the source classifier does, so this "
                     "run finds little shift for an arm to correct.")
    none = ans.get("none")
    if none:
        best = none["best"]
        misread = _misreads(metrics, best) if none["verdict"][best] == "helped" else ""
        if misread:
            lines.append(f"**Without target labels, no arm is shown to read the target domain**: the best ({where}), {best}, raised "
                         f"target accuracy {acc[BASELINE]:.3f} -> {acc[best]:.3f} ({signed(benefit[best])} over {BASELINE}), but "
                         f"{misread}." + _doubts(metrics, best, gained=False))
        elif none["verdict"][best] == "helped":
            text = (f"**Without target labels, use {best}**: target accuracy {acc[BASELINE]:.3f} -> {acc[best]:.3f}, "
                    f"{signed(benefit[best])} over {BASELINE} ({where})")
            if "gap_closed" in oracle and oracle["gap_closed"] <= 1 and not above_oracle(metrics):  # a share of no ceiling says nothing
                text += f"; that is {oracle['gap_closed']:.0%} of the oracle's gain"
            lines.append(text + "." + _doubts(metrics, best))
        elif ans["chosen_on"] != VAL_SET and any(none["verdict"][a] == "helped" for a in none["ranked"]):
            # Ranked by the same target_test means their intervals come from: an arm of a lower mean and a
            # narrower interval measurably helped, and nothing held out can say which of the two to use.
            first = next(a for a in none["ranked"] if none["verdict"][a] == "helped")
            lines.append(f"**Without target labels, {first} measurably raised target accuracy**: {signed(benefit[first])} over "
                         f"{BASELINE}, an interval above 0 ({where}). {best} has the higher mean, {signed(benefit[best])}, "
                         f"but an interval that {'lies below' if none['verdict'][best] == 'hurt' else 'includes'} 0; hold out "
                         "target_val (evaluate.validation_fraction) to choose between them." + _doubts(metrics, first))
        else:
            helped = [a for a in none["ranked"] if none["verdict"][a] == "helped"]
            gained = "gained" if benefit[best]["mean"] >= 0 else "changed it by"
            lines.append(f"**No arm without target labels measurably raised target accuracy** over {BASELINE}: the best "
                         f"({where}), {best}, {gained} {signed(benefit[best])}, an interval that "
                         + ("lies below 0." if none["verdict"][best] == "hurt" else "includes 0.")
                         + _doubts(metrics, best, gained=False)
                         + (f" Measured on target_test alone, {_listed(helped)} did, but target_val did not pick "
                            f"{'it' if len(helped) == 1 else 'them'}." if helped else ""))
        lines += [] if misread else _runner_up(none, benefit) + _over_free(none, benefit)  # no lead of a misreading arm
        hurt = [a for a in none["ranked"] if none["verdict"][a] == "hurt"]
        lines.append(f"Without target labels: helped (interval above 0): "
                     f"{_listed([a for a in none['ranked'] if none['verdict'][a] == 'helped'])}; no clear effect (interval "
                     f"includes 0): {_listed([a for a in none['ranked'] if none['verdict'][a] == 'unclear'])}; "
                     f"hurt (interval below 0): {_listed(hurt)}.")
    few = ans.get("few")
    if few:
        per_class = metrics["run"].get("target_labels", {}).get("used_per_class")
        seen = f" ({sum(per_class.values())} target labels in all)" if per_class else ""
        if per_class and metrics["run"].get("mix", {}).get("target_fraction") == 0:  # see the warning on mix fractions
            seen = seen[:-1] + ", which mix.target_fraction 0 kept out of every batch of the arms that mix them in)"
        best = few["best"]
        misread = _misreads(metrics, best) if few["verdict"][best] == "helped" else ""
        if len(few["ranked"]) > 1 and misread:
            lines.append(f"**With a few target labels{seen}, no arm is shown to read the target domain**: the best ({where}), {best}, "
                         f"raised target accuracy {acc[BASELINE]:.3f} -> {acc[best]:.3f} ({signed(benefit[best])} over {BASELINE}), "
                         f"but {misread}.")
            seen = ""
        elif len(few["ranked"]) > 1 and few["verdict"][best] == "helped":
            lines.append(f"**With a few target labels{seen}, use {best}**: target accuracy {acc[BASELINE]:.3f} -> {acc[best]:.3f}, "
                         f"{signed(benefit[best])} over {BASELINE} ({where})." + _doubts(metrics, best))
            lines += _runner_up(few, benefit) + _over_labels_alone(few, benefit)
            seen = ""
        lines.append(f"With a few target labels{seen}: " + "; ".join(f"{a} {signed(benefit[a])} ({_VERDICT_WORDS[few['verdict'][a]]})"
                                                                for a in few["ranked"]) + ".")
    if "oracle" in benefit and oracle.get("verdict") == "helped":
        few = metrics["run"].get("target_labels")
        same = few and len(capped_classes(few)) == len(few["used_per_class"])
        unseen = unlabeled_test_classes(metrics)
        above = above_oracle(metrics)
        bound = ("the same labels the few-label arms saw, so no upper bound here" if same else
                 f"no upper bound here: {_listed(list(above))} read{'s' if len(above) == 1 else ''} the target test better"
                 if above else
                 f"the upper bound but for {listed_classes(unseen)}, of which the labeled target train has no image" if unseen else "the upper bound")
        lines.append(f"With every target train label ({bound}): oracle {signed(benefit['oracle'])}.")
    return lines


def above_oracle(metrics: dict) -> dict[str, float]:
    """The arms whose mean target test accuracy lies above the oracle's, {arm: accuracy}, best first:
    where the labeled target train alone teaches less than the source with some of it (few target
    labels, a hard target), the oracle is no upper bound on what the arms could reach."""
    tested = metrics.get("target_test", {})
    bound = tested.get("oracle", {}).get("accuracy", {}).get("mean")
    if bound is None:
        return {}
    above = {arm: t["accuracy"]["mean"] for arm, t in tested.items()  # an unavailable arm has no accuracy
             if arm != "oracle" and "accuracy" in t and t["accuracy"]["mean"] > bound}
    return dict(sorted(above.items(), key=lambda kv: -kv[1]))


def _misreads(metrics: dict, arm: str) -> str:
    """Why `arm`'s gain is no reading of the target domain, in words ("" where none is): it is
    `lopsided`, or its macro-F1 is no better than chance's."""
    said = []
    share = lopsided(metrics, arm)
    if share:
        largest = largest_class_share(metrics)
        said.append(f"it gives one class to {share:.0%} of the target test images"
                    + (f" (the largest class is {largest:.0%} of them)" if largest else "") + ": see the warning \"Lopsided arms\"")
    classes = len(metrics["run"].get("target_split", {}).get("target_test_per_class") or {})
    f1 = metrics["target_test"].get(arm, {}).get("macro_f1", {}).get("mean")
    if f1 is not None and classes >= 2 and f1 <= 1 / classes:
        said.append(f"its macro-F1, {f1:.3f}, is no better than chance ({1 / classes:.3f}): it calls most images a few classes")
    return "; and ".join(said)


def _shift_seen(ans: dict, benefit: dict, at_home: float | None, on_target: float) -> str:
    """The evidence of a domain shift where the oracle shows none, in words ("" for none): the source
    classifier reading the target more than SHIFT_SEEN below its own domain, or an arm without target
    labels that measurably raised target accuracy (a weak or many-class baseline never drops by
    SHIFT_SEEN, and the answer said "No measurable domain shift" above an arm that closed one)."""
    seen = []
    if _dropped(at_home, on_target):
        seen.append(f"{BASELINE} reads its own domain at {at_home:.3f} and the target at {on_target:.3f}")
    # Arms without target labels only: more labeled images help a small source set whatever their domain
    # (on two identical domains target_few gained +0.24), which says nothing of a shift.
    helped = [a for a in ans.get("none", {}).get("ranked", []) if ans["none"]["verdict"][a] == "helped"]
    if helped:
        seen.append(f"{helped[0]} measurably raised target accuracy ({signed(benefit[helped[0]])})")
    return " and ".join(seen)


def _behind(best: str, other: str, d: dict, benefit: dict) -> list[str]:
    """Where the arm target_val picked did not measurably help and another measurably beats it on target_test."""
    return [f"On target_test {other} ({signed(benefit[other])}) is measurably ahead of {best}: {best} minus {other} is {signed(d)}, "
            "paired by image and seed, an interval below 0; target_val ranked them the other way, on fewer images."]


def _dropped(at_home: float | None, on_target: float) -> bool:
    """Whether source_only reads the target more than SHIFT_SEEN below its own domain: the one direct
    sign of a shift. An arm that gains on the target may only learn the source better (on two
    identical halves of GTSRB the corrected classic transforms gained +0.052 [+0.007, +0.105])."""
    return at_home is not None and at_home - on_target > SHIFT_SEEN


def _runner_up(group: dict, benefit: dict) -> list[str]:
    duel = group.get("best_over_runner_up")
    if not duel:
        return []
    best, other, d = group["best"], duel["runner_up"], duel["accuracy_delta"]
    if group["verdict"][best] != "helped":
        return _behind(best, other, d, benefit) if _verdict(d) == "hurt" else []
    verdict, paired = _verdict(d), f"{best} minus {other} is {signed(d)} on target_test, paired by image and seed"
    if verdict == "helped":
        return [f"It is ahead of the runner-up, {other} ({signed(benefit[other])}): {paired}."]
    cheaper = _cheaper(other, best)
    if verdict == "hurt":
        return [f"On target_test the runner-up, {other} ({signed(benefit[other])}), is ahead of it: {paired}. target_val "
                f"ranked them the other way; with both this close, either would do{cheaper}."]
    return [f"This run does not tell it apart from the runner-up, {other} ({signed(benefit[other])}): {paired}, an interval "
            f"that includes 0. Either would do on this evidence{cheaper}."]


def _cost(arm: str) -> int:
    """What an arm costs to run: 0 trains nothing new and needs no GAN (adabn), 1 trains a classifier
    without a GAN, 2 needs a GAN."""
    a = ARMS.get(arm)
    if a is None:
        return 2
    return 2 if a.gan else 0 if a.test_time else 1


def _cheaper(other: str, best: str) -> str:
    """", and {other} is the cheaper: ..." where the runner-up costs less to run than the best arm."""
    if _cost(other) >= _cost(best):
        return ""
    return f", and {other} is the cheaper: " + ("it trains nothing and needs no GAN" if _cost(other) == 0 else "it needs no GAN")


def _over_labels_alone(group: dict, benefit: dict) -> list[str]:
    return _lead_over(group, "best_over_labels_alone", "labels_alone", benefit,
                      lambda alone: f"the same few labels without a GAN ({signed(benefit[alone])})",
                      nothing="its GAN adds nothing measurable to the labels here")


def _over_free(group: dict, benefit: dict) -> list[str]:
    return _lead_over(group, "best_over_free", "free", benefit,
                      lambda free: f"which trains nothing ({signed(benefit[free])}: the {BASELINE} classifiers adapted at test time)",
                      nothing="its training buys nothing measurable here")


def _lead_over(group: dict, duel_key: str, other_key: str, benefit: dict, described, *, nothing: str) -> list[str]:
    """The group's best arm against the arm `group[duel_key][other_key]` (`described(other)` says what
    that arm is), paired on target_test; `nothing`: what a lead whose interval reaches 0 means."""
    duel = group.get(duel_key)
    if not duel:
        return []
    best, other, d = group["best"], duel[other_key], duel["accuracy_delta"]
    verdict = _verdict(d)
    if group["verdict"][best] != "helped":
        return _behind(best, other, d, benefit) if verdict == "hurt" else []
    against = f"Against {other}, {described(other)}, {best} adds {signed(d)} on target_test, paired by image and seed"
    if verdict == "helped":
        return [against + "."]
    return [against + f": {nothing}{'' if verdict == 'unclear' else ', and it does worse'}."]
