"""The answer both reports open with: which arm to use, chosen on target_val and measured on
target_test, and what the run cannot tell. Metrics come from `arm_metrics` on simulated predictions,
as evaluate computes them."""
import re

import numpy as np
import pandas as pd

from augment.answer import answer, answer_lines, label_group
from augment.report import arm_metrics, render_report, stack_predictions
from augment.report_html import render_html

N_VAL, N_TEST, SEEDS = 200, 600, (0, 1, 2)


def _frames(accuracy: dict[str, tuple[float, float]], seed: int = 0) -> dict:
    """arm -> seed -> predictions frame; accuracy[arm] = (on target_val, on target_test), each image
    right with that probability, independently per arm and seed."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, N_VAL + N_TEST)
    sets = ["target_val"] * N_VAL + ["target_test"] * (N_TEST - 50) + ["source_test"] * 50  # (arm_metrics wants one)
    paths = [f"t/{i}.png" for i in range(N_VAL + N_TEST)]
    out = {}
    for arm, (p_val, p_test) in accuracy.items():
        out[arm] = {}
        for s in SEEDS:
            p = np.where(np.arange(N_VAL + N_TEST) < N_VAL, p_val, p_test)
            right = rng.random(N_VAL + N_TEST) < p
            pred = np.where(right, labels, (labels + 1 + rng.integers(0, 9, len(labels))) % 10)
            out[arm][s] = pd.DataFrame({"eval_set": sets, "path": paths, "pred": pred, "label_index": labels})
    return out


def _run(accuracy: dict[str, tuple[float, float]], labeled_gans=frozenset(), without_val=False) -> dict:
    preds = _frames(accuracy)
    if without_val:
        preds = {a: {s: f[f.eval_set != "target_val"] for s, f in per.items()} for a, per in preds.items()}
    metrics = arm_metrics(preds, num_classes=10, samples=200, seed=0)
    metrics["run"] = {"seeds": list(SEEDS), "gan_seeds": [0], "device": "cpu", "wall_seconds": {},
                      "target_split": {"target_val": 0 if without_val else N_VAL, "target_test": N_TEST}}
    metrics["answer"] = answer(metrics, {a: stack_predictions(p, "target_test") for a, p in preds.items()},
                               labeled_gans=set(labeled_gans), groups=None, samples=200, seed=0)
    return metrics


def test_a_clear_winner_is_named_with_its_test_benefit_and_its_lead_over_the_runner_up():
    m = _run({"source_only": (0.4, 0.4), "classic": (0.55, 0.55), "cyclegan": (0.8, 0.8), "oracle": (0.95, 0.95)})
    a = m["answer"]
    assert a["chosen_on"] == "target_val" and a["none"]["ranked"] == ["cyclegan", "classic"]
    assert a["none"]["best_over_runner_up"]["runner_up"] == "classic"
    assert a["none"]["best_over_runner_up"]["accuracy_delta"]["ci95"][0] > 0.15
    assert 0.6 < a["oracle"]["gap_closed"] < 0.8
    text = "\n".join(answer_lines(m))
    assert "**Without target labels, use cyclegan**" in text and "It is ahead of the runner-up, classic" in text
    assert "chosen on the 200 target_val images, measured on the other 600" in text
    assert "helped (interval above 0): cyclegan, classic; no clear effect (interval includes 0): none" in text


def test_no_shift_says_so_and_names_no_arm_to_use():
    """Source and target alike: the oracle gains nothing, and no arm is recommended on noise."""
    m = _run({"source_only": (0.9, 0.9), "classic": (0.9, 0.9), "cyclegan": (0.9, 0.9), "oracle": (0.9, 0.9)})
    text = "\n".join(answer_lines(m))
    assert "**No measurable domain shift.**" in text
    assert "**No arm without target labels measurably raised target accuracy**" in text and "use " not in text
    assert "gap_closed" not in m["answer"]["oracle"]


def test_an_oracle_that_learned_nothing_where_the_source_classifier_drops_is_no_sign_of_no_shift():
    """A flat target: source_only read its own domain at 1.0 and the target at chance, the oracle at
    chance too, and the answer said "No measurable domain shift"."""
    m = _run({"source_only": (0.25, 0.25), "classic": (0.25, 0.25), "oracle": (0.25, 0.25)})
    m["source_test"]["source_only"]["accuracy"]["mean"] = 1.0
    text = "\n".join(answer_lines(m))
    assert "**The oracle did not measurably learn the target domain.**" in text and "No measurable domain shift" not in text
    assert "source_only reads its own domain at 1.000 and the target at 0.2" in text


def test_an_arm_without_target_labels_that_measurably_closed_a_shift_is_evidence_of_one_whatever_the_oracle_reads():
    """4 classes, 5 target test images each: source_only read its source at 0.333 and the target at
    0.250, the oracle's +0.250 had an interval reaching below 0, and an arm gained with its interval
    above 0; the answer opened "No measurable domain shift ... the target domain is read as well as
    the source classifier reads it". An arm that saw target labels is no such evidence: on two
    identical domains (GTSRB photos split in two) target_few gained +0.239 as any more labeled images
    would, and the answer said "there is a shift"."""
    m = _run({"source_only": (0.3, 0.3), "cyclegan": (0.7, 0.7), "target_few": (0.32, 0.32), "oracle": (0.35, 0.35)})
    m["source_test"]["source_only"]["accuracy"]["mean"] = 0.33  # within SHIFT_SEEN of the target: a weak baseline
    assert m["answer"]["none"]["verdict"]["cyclegan"] == "helped" and m["answer"]["oracle"]["verdict"] != "helped"
    text = "\n".join(answer_lines(m))
    assert "No measurable domain shift" not in text and "read as well as" not in text
    assert "**The oracle did not measurably learn the target domain.**" in text
    # an arm that gains may only learn the source better: no "there is a shift" without source_only's own drop
    assert re.search(r"while cyclegan measurably raised target accuracy \(\+0\.\d{3} \[\+0\.\d{3}, \+0\.\d{3}\]\): the target can be "
                     r"read better than it reads it, but nothing here measures how far \(too few .*\); and an arm that learns the "
                     r"source better gains too, so this alone is no evidence of a shift\. Every benefit", text), text
    m["source_test"]["source_only"]["accuracy"]["mean"] = 0.6  # reads its own domain 0.33 above the target: a shift
    text = "\n".join(answer_lines(m))
    assert re.search(r"source_only reads its own domain at 0\.600 and the target at 0\.\d{3} and cyclegan measurably raised target "
                     r"accuracy \(.*\): there is a shift, but nothing here measures how far it can be closed", text), text
    m = _run({"source_only": (0.3, 0.3), "cyclegan": (0.32, 0.32), "target_few": (0.7, 0.7), "oracle": (0.35, 0.35)})
    m["source_test"]["source_only"]["accuracy"]["mean"] = 0.33
    assert m["answer"]["few"]["verdict"]["target_few"] == "helped"
    text = "\n".join(answer_lines(m))
    assert "there is a shift" not in text and ("**No measurable domain shift.** The oracle, trained on the target's own labels, does not "
                                               "measurably beat source_only") in text
    assert ("and no arm without target labels measurably raised target accuracy (target_few, with a few target labels, did, as more "
            "labeled images would whatever their domain)") in text


def test_an_oracle_that_saw_no_label_of_a_tested_class_is_not_called_the_upper_bound_there():
    """The labeled target train lacked class 4, which the target test held: the oracle's row said it was
    no upper bound there, while the answer ended "With every target train label (the upper bound)"
    and no warning said so."""
    from augment.report import report_warnings

    m = _run({"source_only": (0.4, 0.4), "cyclegan": (0.8, 0.8), "oracle": (0.95, 0.95)})
    m["run"]["train_data"] = {"target_train_labeled_per_class": {str(c): 0 if c == 4 else 30 for c in range(10)}}
    m["run"]["target_split"]["target_test_per_class"] = {str(c): 60 for c in range(10)}
    text = "\n".join(answer_lines(m))
    assert "With every target train label (the upper bound but for 4, of which the labeled target train has no image): oracle +0." in text
    assert ("Classes without a target label: the labeled target train has no image of 4, which the target test holds. No arm saw a "
            "target label of it, so there the oracle is no upper bound") in "\n".join(report_warnings(m))
    m["run"]["target_split"]["target_test_per_class"]["4"] = 0  # not tested: nothing to say
    assert "(the upper bound):" in "\n".join(answer_lines(m)) and "Classes without a target label" not in "\n".join(report_warnings(m))


def test_an_oracle_below_other_arms_is_not_called_the_upper_bound():
    """About 36 labeled GTSRB images per class at 32 px: target_few 0.576, cyclegan_few 0.555, the
    oracle (those labels alone) 0.533. The answer still ended "With every target train label (the upper
    bound): oracle +0.186", the arms table said "(upper bound)", and no warning said otherwise."""
    from augment.report import report_warnings

    m = _run({"source_only": (0.35, 0.35), "cyclegan": (0.45, 0.45), "target_few": (0.6, 0.6), "oracle": (0.52, 0.52)})
    m["run"]["train_data"] = {"target_train_labeled_per_class": {str(c): 36 for c in range(10)}}
    text = "\n".join(answer_lines(m))
    assert "With every target train label (no upper bound here: target_few reads the target test better): oracle +0." in text
    assert "(the upper bound)" not in text
    warned = [w for w in report_warnings(m) if w.startswith("Oracle below other arms: target_few (0.")]
    assert len(warned) == 1 and "learns from the labeled target train alone (360 images)" in warned[0], report_warnings(m)
    assert "and 'the share of the oracle's gain' no share of a ceiling" in warned[0]
    from augment.report import arm_descriptions, with_oracle_beaten

    assert with_oracle_beaten(arm_descriptions(), m)["oracle"] == ("all labeled target train (no upper bound here: target_few reads "
                                                                 "the target test better)")
    m = _run({"source_only": (0.35, 0.35), "cyclegan": (0.45, 0.45), "target_few": (0.6, 0.6), "oracle": (0.9, 0.9)})
    assert "(the upper bound): oracle" in "\n".join(answer_lines(m)) and not any("Oracle below" in w for w in report_warnings(m))
    from augment.report import mark_unavailable

    mark_unavailable(m, {"cyclegan_few": "data.target_labels_per_class is 0"})  # an arm without figures: no KeyError
    assert not any("Oracle below" in w for w in report_warnings(m))


def test_an_oracle_measurably_worse_than_the_baseline_is_named_no_upper_bound_not_no_shift():
    """A labeled target train that lacked the class most target test images hold: the oracle read 0.2
    against source_only's 0.9, and the answer said "No measurable domain shift ... the target domain
    is read as well as the source classifier reads it"."""
    m = _run({"source_only": (0.9, 0.9), "cyclegan": (0.9, 0.9), "oracle": (0.2, 0.2)})
    text = "\n".join(answer_lines(m))
    assert "**The oracle is no upper bound here.**" in text and "reads the target test worse than source_only (-0.7" in text
    assert "No measurable domain shift" not in text and "did not measurably learn" not in text


def test_an_answer_that_names_an_arm_whose_gan_the_warnings_doubt_says_so_beside_it():
    """The answer said "use cyclegan" while the same report warned that cyclegan had collapsed and that
    its FID, KID and benefit were no evidence."""
    m = _run({"source_only": (0.4, 0.4), "classic": (0.55, 0.55), "cyclegan": (0.8, 0.8), "oracle": (0.95, 0.95)})
    assert "But the warning" not in "\n".join(answer_lines(m))
    m["gan"] = {"cyclegan": {"diversity_ratio": 0.03, "per_seed": {"0": {"diversity_ratio": 0.03}}, "label_preservation": 0.3,
                             "feature_extractor_arm": "oracle"}}
    text = "\n".join(answer_lines(m))
    assert "**Without target labels, use cyclegan**" in text
    assert 'But the warnings "Collapsed GAN" and "Labels not kept" concern cyclegan, the GAN behind it' in text
    from augment.report import report_warnings

    warned = "\n".join(report_warnings(m))  # the warnings it names, from the same checks
    assert "Collapsed GAN: cyclegan" in warned and "Labels not kept: the oracle reads 0.30 of cyclegan" in warned


def test_every_answer_naming_an_arm_of_a_doubted_gan_says_so_beside_it():
    """The few-label answer said "use cyclegan_few" and the no-arm answer named a collapsed cyclegan as
    the best, each with no word of the warnings the same report gave about its GAN."""
    collapsed = {"diversity_ratio": 0.03, "per_seed": {"0": {"diversity_ratio": 0.03}}}
    few = _run({"source_only": (0.4, 0.4), "cyclegan_few": (0.9, 0.9), "target_few": (0.6, 0.6)})
    assert "But the warning" not in "\n".join(answer_lines(few))
    few["gan"] = {"cyclegan": collapsed}
    text = "\n".join(answer_lines(few))
    assert re.search(r"\*\*With a few target labels, use cyclegan_few\*\*: .*\. But the warning \"Collapsed GAN\" concerns cyclegan, "
                     r"the GAN behind it: the gain is measured", text)
    none = _run({"source_only": (0.4, 0.4), "cyclegan": (0.41, 0.41)})
    none["gan"] = {"cyclegan": collapsed}
    text = "\n".join(answer_lines(none))
    assert "**No arm without target labels measurably raised target accuracy**" in text
    assert 'an interval that includes 0. And the warning "Collapsed GAN" concerns cyclegan, the GAN behind it.' in text


def test_the_arms_table_says_which_arm_learned_from_target_labels_through_its_gan():
    """The cgan arm, whose GAN saw the few target labels, was described as source + translations and
    answered with the few-label arms, with no word of why."""
    from augment.report import arm_descriptions

    plain = arm_descriptions()
    seen = arm_descriptions(labeled_gans={"cgan"})
    assert "target labels" not in plain["cgan"]
    assert seen["cgan"].startswith(plain["cgan"]) and "its GAN learned from a few target labels (data.target_labels_per_class)" in seen["cgan"]
    assert {a for a in seen if seen[a] != plain[a]} == {"cgan"}  # cgan_few says so already; test_time reads no cgan


def test_an_answer_on_a_handful_of_test_images_says_it_is_a_hint_first():
    """On 4-5 target test images the answer named an arm "ahead of the runner-up" with nothing beside it
    but the separate small-test-set warning."""
    m = _run({"source_only": (0.4, 0.4), "classic": (0.55, 0.55), "cyclegan": (0.8, 0.8)})
    assert not any("A hint, not a measurement" in line for line in answer_lines(m))
    m["run"]["target_split"]["target_test"] = 5
    lines = answer_lines(m)
    assert lines[0].startswith("**A hint, not a measurement:** what follows rests on 5 target test images") and "use cyclegan" in lines[1]


def test_the_arm_target_val_picks_is_the_answer_even_when_another_wins_on_test():
    """Choosing by the test figures would report the luckiest arm: target_val chooses, target_test measures."""
    m = _run({"source_only": (0.4, 0.4), "classic": (0.75, 0.70), "cyclegan": (0.60, 0.78)})
    a = m["answer"]["none"]
    assert a["best"] == "classic" and a["best_over_runner_up"]["runner_up"] == "cyclegan"
    text = "\n".join(answer_lines(m))
    assert "use classic" in text and "On target_test the runner-up, cyclegan" in text and "is ahead of it" in text


def test_two_arms_alike_are_not_told_apart_and_the_cheaper_is_named():
    """cyclegan_few ahead of target_few by one target_val image, behind it on target_test: "either
    would do" said nothing of which one costs a GAN."""
    m = _run({"source_only": (0.4, 0.4), "classic": (0.7, 0.7), "cyclegan": (0.8, 0.7)})  # cyclegan first on target_val
    text = "\n".join(answer_lines(m))
    assert m["answer"]["none"]["best"] == "cyclegan"
    assert "This run does not tell it apart from the runner-up" in text and "Either would do" in text
    assert "Either would do on this evidence, and classic is the cheaper: it needs no GAN." in text
    m = _run({"source_only": (0.4, 0.4), "cyclegan": (0.8, 0.7), "adabn": (0.7, 0.7)})
    assert ", and adabn is the cheaper: it trains nothing and needs no GAN." in "\n".join(answer_lines(m))
    m = _run({"source_only": (0.4, 0.4), "classic": (0.8, 0.7), "cyclegan": (0.7, 0.7)})  # classic first: nothing cheaper
    text = "\n".join(answer_lines(m))
    assert "Either would do" in text and "is the cheaper" not in text


def test_a_lopsided_best_arm_is_not_recommended():
    """Target digits filed under other names (d as (d+5) % 10): source_only read the target at 0.006, and
    a test_time arm whose translator drew one blob for every input called 79% of the images 8, matched
    the permutation's 3 -> 8 by chance, and was the answer: "use test_time", 15% of the oracle's gain."""
    from augment.report import report_warnings

    m = _run({"source_only": (0.1, 0.1), "test_time": (0.3, 0.3), "oracle": (0.95, 0.95)})
    m["run"]["target_split"]["target_test_per_class"] = {str(c): 55 for c in range(10)}
    assert "**Without target labels, use test_time**" in "\n".join(answer_lines(m))
    m["target_test"]["test_time"].update(majority_prediction_share=0.79, majority_prediction_class=8)
    m["target_test"]["test_time"]["macro_f1"] = {"mean": 0.065, "ci95": [0.05, 0.08]}
    text = "\n".join(answer_lines(m))
    assert "use test_time" not in text and "of the oracle's gain" not in text, text
    assert ("**Without target labels, no arm is shown to read the target domain**: the best (chosen on the 200 target_val images, "
            "measured on the other 600), test_time, raised target accuracy") in text, text
    assert ("but it gives one class to 79% of the target test images (the largest class is 10% of them): see the warning \"Lopsided "
            "arms\"; and its macro-F1, 0.065, is no better than chance (0.100)") in text, text
    assert "It is ahead of the runner-up" not in text and "Against adabn" not in text  # no lead of an arm that misreads
    assert [w for w in report_warnings(m) if w.startswith("Lopsided arms: test_time (79%, 8) gives one class to at least 50%")]
    assert not any(w.startswith("Lopsided baseline") for w in report_warnings(m))


def test_a_best_arm_that_lost_accuracy_is_not_said_to_have_gained_it():
    m = _run({"source_only": (0.5, 0.5), "classic": (0.45, 0.45)})
    text = "\n".join(answer_lines(m))
    assert re.search(r"the best \(.*\), classic, changed it by -0\.\d{3} \[", text) and "gained -" not in text, text


def test_without_target_val_it_says_the_choice_read_the_test_set_and_why_none_was_held_out():
    """With one target test image per class nothing can be held out, whatever the fraction: the answer
    blamed evaluate.validation_fraction (0.2)."""
    m = _run({"source_only": (0.4, 0.4), "cyclegan": (0.8, 0.8)}, without_val=True)
    assert m["answer"]["chosen_on"] == "target_test"
    assert "none being held out as target_val (evaluate.validation_fraction), so its figure is somewhat optimistic" in "\n".join(answer_lines(m))
    m["run"]["target_split"]["validation_fraction"] = 0.2
    assert ("none being held out as target_val (no class has a second target test image to hold out), so its figure is somewhat "
            "optimistic") in "\n".join(answer_lines(m))


def test_an_arm_that_saw_target_labels_is_not_the_label_free_answer():
    """The cgan that saw the few target labels ranks with target_few, not with the arms that saw none."""
    m = _run({"source_only": (0.4, 0.4), "cyclegan": (0.6, 0.6), "cgan": (0.8, 0.8), "target_few": (0.85, 0.85)},
             labeled_gans={"cgan"})
    assert m["answer"]["none"]["ranked"] == ["cyclegan"] and m["answer"]["few"]["ranked"] == ["target_few", "cgan"]
    assert "use cyclegan" in "\n".join(answer_lines(m))
    assert label_group("cgan", labeled_gans=set()) == "none" and label_group("test_time", labeled_gans={"cyclegan"}) == "none"


def test_an_arm_that_hurts_is_listed_as_such_and_both_reports_open_with_the_answer():
    m = _run({"source_only": (0.6, 0.6), "classic": (0.3, 0.3), "cyclegan": (0.8, 0.8)})
    assert "hurt (interval below 0): classic" in "\n".join(answer_lines(m))
    dataset = {"source": "s", "target": "t", "classes": [str(c) for c in range(10)], "image_size": 16, "channels": 1}
    md = render_report(m, arms_info={}, unavailable={}, dataset=dataset, samples={})
    assert md.index("## The answer") < md.index("## Target-domain test accuracy by arm")
    page = render_html(m, arms_info={}, unavailable={}, dataset=dataset, per_class={}, images={})
    assert "<b>Without target labels, use cyclegan</b>" in page and "**" not in page


def test_the_best_arm_is_measured_against_the_arm_that_trains_nothing():
    """Is the GAN worth its training? The best label-free arm against adabn, paired, when adabn is
    not already the runner-up."""
    m = _run({"source_only": (0.4, 0.4), "adabn": (0.6, 0.6), "classic": (0.65, 0.65), "cyclegan": (0.8, 0.8), "oracle": (0.95, 0.95)})
    none = m["answer"]["none"]
    assert none["ranked"] == ["cyclegan", "classic", "adabn"] and none["best_over_free"]["free"] == "adabn"
    assert none["best_over_free"]["accuracy_delta"]["ci95"][0] > 0.1
    text = "\n".join(answer_lines(m))
    assert re.search(r"Against adabn, which trains nothing \(\+0\.\d{3} \[.*\]: the source_only classifiers adapted at test time\), "
                     r"cyclegan adds \+0\.\d{3} \[\+0\.\d{3}, \+0\.\d{3}\] on target_test, paired by image and seed\.", text), text
    assert "buys nothing" not in text

    even = _run({"source_only": (0.4, 0.4), "adabn": (0.7, 0.7), "classic": (0.72, 0.66), "cyclegan": (0.75, 0.7)})
    assert even["answer"]["none"]["ranked"] == ["cyclegan", "classic", "adabn"]
    lo, hi = even["answer"]["none"]["best_over_free"]["accuracy_delta"]["ci95"]
    assert lo < 0 < hi
    assert "cyclegan adds" in "\n".join(answer_lines(even)) and "its training buys nothing measurable here." in "\n".join(answer_lines(even))

    # adabn the runner-up (measured there already) or the best itself: no second comparison
    assert "best_over_free" not in _run({"source_only": (0.4, 0.4), "adabn": (0.7, 0.7), "cyclegan": (0.8, 0.8)})["answer"]["none"]
    assert "best_over_free" not in _run({"source_only": (0.4, 0.4), "adabn": (0.8, 0.8), "classic": (0.6, 0.6),
                                         "cyclegan": (0.7, 0.7)})["answer"]["none"]


def test_with_a_few_labels_the_best_arm_is_named_and_measured_against_the_labels_alone():
    """A team with a few target labels asks whether a GAN adds anything to them: the best arm of the
    few-label group, and the best GAN arm there against target_few, paired, when target_few is not
    the runner-up already."""
    m = _run({"source_only": (0.4, 0.4), "cyclegan": (0.7, 0.7), "target_few": (0.75, 0.75), "cgan_few": (0.8, 0.8),
              "cyclegan_few": (0.9, 0.9), "oracle": (0.95, 0.95)})
    few = m["answer"]["few"]
    assert few["ranked"] == ["cyclegan_few", "cgan_few", "target_few"] and label_group("cyclegan_few", labeled_gans=set()) == "few"
    assert few["best_over_runner_up"]["runner_up"] == "cgan_few" and few["best_over_labels_alone"]["labels_alone"] == "target_few"
    assert few["best_over_labels_alone"]["accuracy_delta"]["ci95"][0] > 0.1
    text = "\n".join(answer_lines(m))
    assert "**Without target labels, use cyclegan**" in text and "**With a few target labels, use cyclegan_few**" in text
    assert re.search(r"Against target_few, the same few labels without a GAN \(\+0\.\d{3} \[.*\]\), cyclegan_few adds "
                     r"\+0\.\d{3} \[\+0\.\d{3}, \+0\.\d{3}\] on target_test, paired by image and seed\.", text), text
    assert re.search(r"With a few target labels: cyclegan_few \+0\.\d{3} \[[^]]*\] \(helped\); cgan_few .*; target_few ", text), text

    even = _run({"source_only": (0.4, 0.4), "target_few": (0.8, 0.78), "cyclegan_few": (0.82, 0.78), "cgan_few": (0.81, 0.7)})
    assert even["answer"]["few"]["ranked"] == ["cyclegan_few", "cgan_few", "target_few"]
    assert "its GAN adds nothing measurable to the labels here" in "\n".join(answer_lines(even))
    unclear = _run({"source_only": (0.4, 0.4), "target_few": (0.41, 0.41), "cgan_few": (0.2, 0.2)})
    assert re.search(r"With a few target labels: target_few [-+]0\.0\d\d \[-0\.\d+, \+0\.\d+\] \(no clear effect\); "
                     r"cgan_few -0\.\d+ \[-0\.\d+, -0\.\d+\] \(hurt\)\.", "\n".join(answer_lines(unclear)))
    # target_few the runner-up (its lead is the runner-up's) or the best itself: no second comparison
    assert "best_over_labels_alone" not in _run({"source_only": (0.4, 0.4), "target_few": (0.8, 0.8),
                                                 "cyclegan_few": (0.85, 0.85)})["answer"]["few"]
    best_alone = _run({"source_only": (0.4, 0.4), "target_few": (0.9, 0.9), "cyclegan_few": (0.85, 0.85), "cgan_few": (0.8, 0.8)})
    assert "best_over_labels_alone" not in best_alone["answer"]["few"]
    assert "**With a few target labels, use target_few**" in "\n".join(answer_lines(best_alone))
    # mix.target_fraction 0: no batch of those arms held a target label, though the answer counted them
    best_alone["run"].update(target_labels={"used_per_class": {"a": 5, "b": 5}}, mix={"synthetic_fraction": 0.5, "target_fraction": 0})
    assert ("**With a few target labels (10 target labels in all, which mix.target_fraction 0 kept out of every batch of the "
            "arms that mix them in), use target_few**") in "\n".join(answer_lines(best_alone))


def test_two_arms_that_trained_alike_tie_to_the_one_without_a_gan():
    """mix.synthetic_fraction 0: cyclegan_few trains exactly as target_few does. The tie went to the
    name first in the alphabet, so the answer said "use cyclegan_few", a GAN arm that drew no GAN image."""
    preds = _frames({"source_only": (0.4, 0.4), "target_few": (0.7, 0.7), "oracle": (0.95, 0.95)})
    preds["cyclegan_few"] = {s: f.copy() for s, f in preds["target_few"].items()}
    metrics = arm_metrics(preds, num_classes=10, samples=200, seed=0)
    metrics["run"] = {"seeds": list(SEEDS), "gan_seeds": [0], "device": "cpu", "wall_seconds": {},
                      "target_split": {"target_val": N_VAL, "target_test": N_TEST}}
    metrics["answer"] = answer(metrics, {a: stack_predictions(p, "target_test") for a, p in preds.items()},
                               labeled_gans=set(), groups=None, samples=200, seed=0)
    assert metrics["answer"]["few"]["ranked"] == ["target_few", "cyclegan_few"]
    assert "use target_few**" in "\n".join(answer_lines(metrics))


def test_without_target_val_an_arm_that_measurably_helped_is_not_called_no_arm():
    """Ranked by target_test means, the best mean's interval included 0 while a lower mean's lay above
    it: the answer said no arm measurably helped, and that target_val, which did not exist, passed it over."""
    d = lambda m, lo, hi: {"accuracy_delta": {"mean": m, "ci95": [lo, hi]}}
    metrics = {"benefit": {"test_time": d(0.05, -0.01, 0.11), "classic": d(0.03, 0.01, 0.05)},
               "target_test": {"source_only": {"accuracy": {"mean": 0.2}}, "test_time": {"accuracy": {"mean": 0.25}},
                               "classic": {"accuracy": {"mean": 0.23}}},
               "run": {"target_split": {"target_val": 0, "target_test": 539}},
               "answer": {"chosen_on": "target_test", "none": {"ranked": ["test_time", "classic"], "best": "test_time",
                                                               "verdict": {"test_time": "unclear", "classic": "helped"}}}}
    text = "\n".join(answer_lines(metrics))
    assert "**Without target labels, classic measurably raised target accuracy**: +0.030 [+0.010, +0.050]" in text
    assert "test_time has the higher mean, +0.050 [-0.010, +0.110], but an interval that includes 0" in text
    assert "No arm without target labels" not in text and "target_val did not pick" not in text


def test_an_answer_measured_from_a_baseline_that_has_not_learned_the_task_says_so_before_its_pick():
    """source_only read its own source test at 0.122 (43 classes, chance 0.023) and the answer led with
    "use adabn: 0.011 -> 0.096" with no word of it; only a warning further down said so."""
    m = _run({"source_only": (0.3, 0.3), "classic": (0.5, 0.5), "cyclegan": (0.7, 0.7)})
    m["run"]["train_data"] = {"source_train_per_class": {str(c): 20 for c in range(10)}}  # chance 0.1: weak below 0.55
    lines = answer_lines(m)
    weak = next(i for i, line in enumerate(lines) if line.startswith("**Measured from a baseline that has not learned the task:**"))
    assert weak < next(i for i, line in enumerate(lines) if "use cyclegan" in line), lines
    assert re.search(r"source_only reads its own source test at 0\.\d{3} \(chance: 0\.100; see the warning \"Weak baseline\"\)", lines[weak])
    m["source_test"]["source_only"]["accuracy"].update(mean=0.9, ci95=[0.85, 0.95])
    assert not any("has not learned the task" in line for line in answer_lines(m))
    # below the line, but on a small source test whose interval reaches above it (0.528 [0.389, 0.667] on 48 images): no evidence
    m["source_test"]["source_only"]["accuracy"].update(mean=0.5, ci95=[0.36, 0.64])
    assert not any("has not learned the task" in line for line in answer_lines(m))


def test_an_arm_measurably_ahead_of_the_one_target_val_picked_is_said_even_when_that_one_did_not_help():
    """Night GTSRB: target_val (25 images) picked cyclegan, which did not measurably help, while adabn
    did, and cyclegan minus adabn was -0.111 [-0.216, -0.010] on target_test: the answer never said so
    (leads were printed only for an arm that helped)."""
    m = _run({"source_only": (0.4, 0.4), "cyclegan": (0.75, 0.42), "adabn": (0.5, 0.7)})
    assert m["answer"]["none"]["best"] == "cyclegan" and m["answer"]["none"]["verdict"]["cyclegan"] != "helped"
    text = "\n".join(answer_lines(m))
    assert "(chosen on the 200 target_val images, measured on the other 600)" in text  # enough to rank by
    m["run"]["target_split"]["target_val"] = 25
    assert "(chosen on the 25 target_val images, too few to rank close arms by, measured on the other 600)" in "\n".join(answer_lines(m))
    assert re.search(r"On target_test adabn \(\+0\.\d{3} \[.*\]\) is measurably ahead of cyclegan: cyclegan minus adabn is -0\.\d{3} "
                     r"\[-0\.\d{3}, -0\.\d{3}\], paired by image and seed, an interval below 0; target_val ranked them the other way", text), text


def test_no_share_of_the_oracles_gain_is_given_where_an_arm_beats_the_oracle():
    """"that is 108% of the oracle's gain" beside "Oracle below other arms": a share of no ceiling."""
    m = _run({"source_only": (0.4, 0.4), "cyclegan": (0.8, 0.8), "oracle": (0.7, 0.7)})
    assert m["answer"]["oracle"]["gap_closed"] > 1
    text = "\n".join(answer_lines(m))
    assert "**Without target labels, use cyclegan**" in text and "of the oracle's gain" not in text
